/* fp4io_write.c - safetensors writer and model.safetensors.index.json writer.
 *
 * Output matches what huggingface/safetensors writes (tensor.rs, prepare()):
 * tensors sorted by descending dtype (its enum order, fp4_st_dtype here),
 * then ascending name; compact serde_json header with "__metadata__" first;
 * header padded with spaces to a multiple of 8; data back to back. Because
 * larger dtypes come first and every dtype size divides the ones before it,
 * each tensor starts aligned to its element size. The library keeps metadata
 * in a HashMap (no fixed order); we sort the keys so output is reproducible.
 * Files are written to a temporary name and renamed, so a reader never sees a
 * half-written checkpoint. */
#define _DEFAULT_SOURCE 1 /* mkstemp, fchmod, fsync under -std=c17 too */

#include "fp4io_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct wtensor {
    char *name;
    fp4_st_dtype dtype;
    int32_t ndim;
    int64_t shape[FP4_ST_MAX_DIMS];
    const void *data;
    void *owned; /* the copy, for _add_copy */
    int64_t nbytes;
} wtensor;

struct fp4_st_writer {
    char *path; /* NULL: memory only */
    wtensor *t;
    int64_t n, cap;
    char **meta; /* key0, value0, ... */
    int64_t nmeta, metacap;
};

static const char *label(const fp4_st_writer *w) { return w->path ? w->path : "<memory>"; }

/* ---------------------------------------------------------------------------
 * A growable byte buffer; a failed allocation sticks and is checked once.
 * ------------------------------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_int(sbuf *b, int64_t v) {
    char num[32];
    snprintf(num, sizeof num, "%" PRId64, v);
    sb_puts(b, num);
}

/* One code point from valid UTF-8 (validated on the way in). */
static uint32_t utf8_next(const unsigned char **s) {
    const unsigned char *p = *s;
    uint32_t cp;
    int extra;
    if (p[0] < 0x80) { cp = p[0]; extra = 0; }
    else if (p[0] < 0xE0) { cp = p[0] & 0x1Fu; extra = 1; }
    else if (p[0] < 0xF0) { cp = p[0] & 0x0Fu; extra = 2; }
    else { cp = p[0] & 0x07u; extra = 3; }
    for (int i = 1; i <= extra; i++) cp = (cp << 6) | (p[i] & 0x3Fu);
    *s = p + 1 + extra;
    return cp;
}

static void sb_u16(sbuf *b, uint32_t unit) {
    char esc[16];
    snprintf(esc, sizeof esc, "\\u%04x", (unsigned)unit);
    sb_puts(b, esc);
}

/* The letter of a two-character JSON escape (\" \\ \b \f \n \r \t), or 0. */
static char short_escape(unsigned char c) {
    switch (c) {
    case '"': return '"';
    case '\\': return '\\';
    case '\b': return 'b';
    case '\f': return 'f';
    case '\n': return 'n';
    case '\r': return 'r';
    case '\t': return 't';
    default: return 0;
    }
}

/* A JSON string literal. ascii = false: serde_json's escaping (the
 * safetensors header); true: Python json.dumps' default ensure_ascii (the
 * index), where everything outside ' '..'~' becomes \uXXXX. Both use the
 * two-character escapes where they exist and lowercase hex otherwise. */
static void sb_json_string(sbuf *b, const char *s, bool ascii) {
    sb_put(b, "\"", 1);
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        char letter = short_escape(*p);
        if (letter) {
            char esc[2] = {'\\', letter};
            sb_put(b, esc, 2);
            p++;
        } else if (*p < 0x20 || (ascii && *p >= 0x7F)) {
            uint32_t cp = utf8_next(&p);
            if (cp >= 0x10000) { /* a UTF-16 surrogate pair, as Python writes it */
                sb_u16(b, 0xD800 + ((cp - 0x10000) >> 10));
                sb_u16(b, 0xDC00 + ((cp - 0x10000) & 0x3FF));
            } else {
                sb_u16(b, cp);
            }
        } else {
            sb_put(b, (const char *)p, 1);
            p++;
        }
    }
    sb_put(b, "\"", 1);
}

/* ---------------------------------------------------------------------------
 * Atomic file output
 * ------------------------------------------------------------------------- */

int fp4io_write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len > 0) {
        size_t chunk = len < ((size_t)1 << 30) ? len : ((size_t)1 << 30);
        ssize_t w = write(fd, p, chunk);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return w < 0 ? errno : EIO;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

fp4_st_status fp4io_write_atomic(const char *path, fp4io_emit_fn emit, void *ctx) {
    size_t n = strlen(path);
    char *tmp = malloc(n + 16);
    if (!tmp) return fp4io_fail(FP4_ST_E_NOMEM, path, NULL, "out of memory");
    snprintf(tmp, n + 16, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return fp4io_fail_path(path, e, "cannot create a temporary file next to it: %s",
                               strerror(e));
    }
    (void)fchmod(fd, 0644); /* mkstemp makes 0600; checkpoints are shared files */
    int err = emit(fd, ctx);
    if (!err && fsync(fd) != 0) err = errno; /* data on disk before the rename */
    if (close(fd) != 0 && !err) err = errno;
    if (!err && rename(tmp, path) != 0) err = errno;
    if (err) unlink(tmp);
    free(tmp);
    if (err) return fp4io_fail(FP4_ST_E_IO, path, NULL, "write failed: %s", strerror(err));
    return FP4_ST_OK;
}

/* ---------------------------------------------------------------------------
 * Writer: building
 * ------------------------------------------------------------------------- */

fp4_st_status fp4_st_writer_create(const char *path, fp4_st_writer **out) {
    if (!out) return fp4io_fail(FP4_ST_E_ARG, path, NULL, "NULL output pointer");
    *out = NULL;
    fp4_st_writer *w = calloc(1, sizeof *w);
    if (w && path && !(w->path = fp4io_strdup(path))) {
        free(w);
        w = NULL;
    }
    if (!w) return fp4io_fail(FP4_ST_E_NOMEM, path, NULL, "out of memory");
    *out = w;
    return FP4_ST_OK;
}

void fp4_st_writer_abort(fp4_st_writer *w) {
    if (!w) return;
    for (int64_t i = 0; i < w->n; i++) {
        free(w->t[i].name);
        free(w->t[i].owned);
    }
    for (int64_t i = 0; i < 2 * w->nmeta; i++) free(w->meta[i]);
    free(w->t);
    free(w->meta);
    free(w->path);
    free(w);
}

static bool valid_utf8_str(const char *s) {
    return fp4io_utf8_valid((const uint8_t *)s, strlen(s), NULL);
}

static fp4_st_status check_add(const fp4_st_writer *w, const char *name, fp4_st_dtype dtype,
                               int32_t ndim, const int64_t *shape, const void *data,
                               int64_t nbytes) {
    if (!name) return fp4io_fail(FP4_ST_E_ARG, label(w), NULL, "NULL tensor name");
    if (!valid_utf8_str(name))
        return fp4io_fail(FP4_ST_E_ARG, label(w), name, "name is not valid UTF-8");
    if (strcmp(name, "__metadata__") == 0)
        return fp4io_fail(FP4_ST_E_ARG, label(w), name, "name is reserved for the metadata");
    int64_t numel = 0, need = 0;
    fp4_st_status st = fp4io_tensor_size(dtype, ndim, shape, &numel, &need, label(w), name);
    if (st != FP4_ST_OK) return st;
    if (nbytes != need)
        return fp4io_fail(FP4_ST_E_SIZE, label(w), name, "%" PRId64 " bytes given, but the "
                          "dtype and shape need %" PRId64, nbytes, need);
    if (!data && nbytes > 0) return fp4io_fail(FP4_ST_E_ARG, label(w), name, "NULL data");
    return FP4_ST_OK;
}

static fp4_st_status add_tensor(fp4_st_writer *w, const char *name, fp4_st_dtype dtype,
                                int32_t ndim, const int64_t *shape, const void *data,
                                int64_t nbytes, bool copy) {
    if (!w) return fp4io_fail(FP4_ST_E_ARG, NULL, name, "NULL writer");
    fp4_st_status st = check_add(w, name, dtype, ndim, shape, data, nbytes);
    if (st != FP4_ST_OK) return st;
    if (w->n == w->cap) {
        int64_t cap = w->cap ? 2 * w->cap : 16;
        wtensor *t = realloc(w->t, (size_t)cap * sizeof *t);
        if (!t) return fp4io_fail(FP4_ST_E_NOMEM, label(w), name, "out of memory");
        w->t = t;
        w->cap = cap;
    }
    wtensor e = {.name = fp4io_strdup(name), .dtype = dtype, .ndim = ndim, .data = data,
                 .nbytes = nbytes};
    if (copy && nbytes > 0 && (e.owned = malloc((size_t)nbytes))) {
        memcpy(e.owned, data, (size_t)nbytes);
        e.data = e.owned;
    }
    if (!e.name || (copy && nbytes > 0 && !e.owned)) {
        free(e.name);
        free(e.owned);
        return fp4io_fail(FP4_ST_E_NOMEM, label(w), name, "out of memory");
    }
    for (int32_t i = 0; i < ndim; i++) e.shape[i] = shape[i];
    w->t[w->n++] = e;
    return FP4_ST_OK;
}

fp4_st_status fp4_st_writer_add(fp4_st_writer *w, const char *name, fp4_st_dtype dtype,
                                int32_t ndim, const int64_t *shape, const void *data,
                                int64_t nbytes) {
    return add_tensor(w, name, dtype, ndim, shape, data, nbytes, false);
}

fp4_st_status fp4_st_writer_add_copy(fp4_st_writer *w, const char *name, fp4_st_dtype dtype,
                                     int32_t ndim, const int64_t *shape, const void *data,
                                     int64_t nbytes) {
    return add_tensor(w, name, dtype, ndim, shape, data, nbytes, true);
}

fp4_st_status fp4_st_writer_set_metadata(fp4_st_writer *w, const char *key, const char *value) {
    if (!w || !key || !value) return fp4io_fail(FP4_ST_E_ARG, NULL, NULL, "NULL argument");
    if (!valid_utf8_str(key) || !valid_utf8_str(value))
        return fp4io_fail(FP4_ST_E_ARG, label(w), NULL, "metadata is not valid UTF-8");
    char *v = fp4io_strdup(value);
    if (!v) return fp4io_fail(FP4_ST_E_NOMEM, label(w), NULL, "out of memory");
    for (int64_t i = 0; i < w->nmeta; i++) {
        if (strcmp(w->meta[2 * i], key) == 0) {
            free(w->meta[2 * i + 1]);
            w->meta[2 * i + 1] = v;
            return FP4_ST_OK;
        }
    }
    if (w->nmeta == w->metacap) {
        int64_t cap = w->metacap ? 2 * w->metacap : 8;
        char **m = realloc(w->meta, (size_t)cap * 2 * sizeof *m);
        if (!m) {
            free(v);
            return fp4io_fail(FP4_ST_E_NOMEM, label(w), NULL, "out of memory");
        }
        w->meta = m;
        w->metacap = cap;
    }
    char *k = fp4io_strdup(key);
    if (!k) {
        free(v);
        return fp4io_fail(FP4_ST_E_NOMEM, label(w), NULL, "out of memory");
    }
    w->meta[2 * w->nmeta] = k;
    w->meta[2 * w->nmeta + 1] = v;
    w->nmeta++;
    return FP4_ST_OK;
}

/* ---------------------------------------------------------------------------
 * Writer: serializing
 * ------------------------------------------------------------------------- */

static int cmp_wname(const void *a, const void *b) {
    return strcmp((*(const wtensor *const *)a)->name, (*(const wtensor *const *)b)->name);
}

/* The reference layout: descending dtype, then ascending name. */
static int cmp_wlayout(const void *a, const void *b) {
    const wtensor *x = *(const wtensor *const *)a, *y = *(const wtensor *const *)b;
    if (x->dtype != y->dtype) return x->dtype > y->dtype ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int cmp_pair(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void header_metadata(sbuf *b, const fp4_st_writer *w) {
    sb_puts(b, "\"__metadata__\":{");
    for (int64_t i = 0; i < w->nmeta; i++) {
        if (i) sb_puts(b, ",");
        sb_json_string(b, w->meta[2 * i], false);
        sb_puts(b, ":");
        sb_json_string(b, w->meta[2 * i + 1], false);
    }
    sb_puts(b, "}");
}

static void header_tensor(sbuf *b, const wtensor *t, int64_t begin) {
    sb_json_string(b, t->name, false);
    sb_puts(b, ":{\"dtype\":\"");
    sb_puts(b, fp4_st_dtype_name(t->dtype));
    sb_puts(b, "\",\"shape\":[");
    for (int32_t i = 0; i < t->ndim; i++) {
        if (i) sb_puts(b, ",");
        sb_int(b, t->shape[i]);
    }
    sb_puts(b, "],\"data_offsets\":[");
    sb_int(b, begin);
    sb_puts(b, ",");
    sb_int(b, begin + t->nbytes);
    sb_puts(b, "]}");
}

/* Builds the padded header for tensors in `order`; *data_len gets the sum of
 * their sizes. */
static fp4_st_status build_header(const fp4_st_writer *w, wtensor *const *order, sbuf *b,
                                  int64_t *data_len) {
    int64_t pos = 0;
    sb_puts(b, "{");
    if (w->nmeta) header_metadata(b, w);
    for (int64_t i = 0; i < w->n; i++) {
        if (i || w->nmeta) sb_puts(b, ",");
        header_tensor(b, order[i], pos);
        if (order[i]->nbytes > INT64_MAX - pos)
            return fp4io_fail(FP4_ST_E_SIZE, label(w), NULL, "total size overflows int64");
        pos += order[i]->nbytes;
    }
    sb_puts(b, "}");
    while (b->len % 8) sb_puts(b, " ");
    if (b->oom) return fp4io_fail(FP4_ST_E_NOMEM, label(w), NULL, "out of memory");
    if (b->len > FP4_ST_MAX_HEADER)
        return fp4io_fail(FP4_ST_E_HEADER_LEN, label(w), NULL, "header would be %zu bytes, "
                          "above the %d-byte limit readers accept", b->len, FP4_ST_MAX_HEADER);
    *data_len = pos;
    return FP4_ST_OK;
}

/* Sorts names (for the duplicate check), then the layout order. */
static fp4_st_status plan(fp4_st_writer *w, wtensor ***order) {
    wtensor **o = malloc(((size_t)w->n + 1) * sizeof *o);
    if (!o) return fp4io_fail(FP4_ST_E_NOMEM, label(w), NULL, "out of memory");
    for (int64_t i = 0; i < w->n; i++) o[i] = &w->t[i];
    qsort(o, (size_t)w->n, sizeof *o, cmp_wname);
    for (int64_t i = 1; i < w->n; i++) {
        if (strcmp(o[i - 1]->name, o[i]->name) == 0) {
            fp4_st_status st = fp4io_fail(FP4_ST_E_DUPLICATE, label(w), o[i]->name,
                                          "added twice");
            free(o);
            return st;
        }
    }
    qsort(o, (size_t)w->n, sizeof *o, cmp_wlayout);
    if (w->nmeta) qsort(w->meta, (size_t)w->nmeta, 2 * sizeof *w->meta, cmp_pair);
    *order = o;
    return FP4_ST_OK;
}

typedef struct emit_ctx {
    const fp4_st_writer *w;
    wtensor *const *order;
    const sbuf *header;
} emit_ctx;

static void put_le64(uint8_t out[8], uint64_t v) {
    for (int i = 0; i < 8; i++) out[i] = (uint8_t)(v >> (8 * i));
}

static int emit_file(int fd, void *p) {
    const emit_ctx *c = p;
    uint8_t len[8];
    put_le64(len, (uint64_t)c->header->len);
    int err = fp4io_write_all(fd, len, 8);
    if (!err) err = fp4io_write_all(fd, c->header->p, c->header->len);
    for (int64_t i = 0; !err && i < c->w->n; i++)
        err = fp4io_write_all(fd, c->order[i]->data, (size_t)c->order[i]->nbytes);
    return err;
}

static fp4_st_status emit_memory(const emit_ctx *c, int64_t data_len, uint8_t **buf,
                                 size_t *len) {
    size_t total = 8 + c->header->len + (size_t)data_len;
    uint8_t *out = malloc(total ? total : 1);
    if (!out) return fp4io_fail(FP4_ST_E_NOMEM, label(c->w), NULL, "out of memory");
    put_le64(out, (uint64_t)c->header->len);
    memcpy(out + 8, c->header->p, c->header->len);
    size_t at = 8 + c->header->len;
    for (int64_t i = 0; i < c->w->n; i++) {
        if (c->order[i]->nbytes) memcpy(out + at, c->order[i]->data, (size_t)c->order[i]->nbytes);
        at += (size_t)c->order[i]->nbytes;
    }
    *buf = out;
    *len = total;
    return FP4_ST_OK;
}

/* to_memory: fill *buf and *len; otherwise write w->path. Frees w. */
static fp4_st_status finish(fp4_st_writer *w, bool to_memory, uint8_t **buf, size_t *len) {
    wtensor **order = NULL;
    sbuf header = {0};
    int64_t data_len = 0;
    fp4_st_status st = plan(w, &order);
    if (st == FP4_ST_OK) st = build_header(w, order, &header, &data_len);
    emit_ctx ctx = {w, order, &header};
    if (st == FP4_ST_OK && to_memory) st = emit_memory(&ctx, data_len, buf, len);
    if (st == FP4_ST_OK && !to_memory) st = fp4io_write_atomic(w->path, emit_file, &ctx);
    free(order);
    free(header.p);
    fp4_st_writer_abort(w);
    return st;
}

fp4_st_status fp4_st_writer_finish(fp4_st_writer *w) {
    if (!w) return fp4io_fail(FP4_ST_E_ARG, NULL, NULL, "NULL writer");
    if (!w->path) {
        fp4_st_writer_abort(w);
        return fp4io_fail(FP4_ST_E_ARG, "<memory>", NULL, "writer has no path; use "
                          "fp4_st_writer_finish_memory");
    }
    return finish(w, false, NULL, NULL);
}

fp4_st_status fp4_st_writer_finish_memory(fp4_st_writer *w, uint8_t **buf, size_t *len) {
    if (!w || !buf || !len) {
        fp4_st_writer_abort(w);
        return fp4io_fail(FP4_ST_E_ARG, NULL, NULL, "NULL argument");
    }
    *buf = NULL;
    *len = 0;
    return finish(w, true, buf, len);
}

/* ---------------------------------------------------------------------------
 * Index writer
 * ------------------------------------------------------------------------- */

typedef struct index_entry {
    const char *name, *shard;
} index_entry;

static int cmp_index_entry(const void *a, const void *b) {
    return strcmp(((const index_entry *)a)->name, ((const index_entry *)b)->name);
}

static void index_metadata(sbuf *b, int64_t total_size, int64_t total_parameters) {
    if (total_size < 0 && total_parameters < 0) {
        sb_puts(b, "  \"metadata\": {},\n");
        return;
    }
    sb_puts(b, "  \"metadata\": {\n");
    if (total_parameters >= 0) {
        sb_puts(b, "    \"total_parameters\": ");
        sb_int(b, total_parameters);
        sb_puts(b, total_size >= 0 ? ",\n" : "\n");
    }
    if (total_size >= 0) {
        sb_puts(b, "    \"total_size\": ");
        sb_int(b, total_size);
        sb_puts(b, "\n");
    }
    sb_puts(b, "  },\n");
}

static void index_weight_map(sbuf *b, const index_entry *e, int64_t n) {
    if (n == 0) {
        sb_puts(b, "  \"weight_map\": {}\n");
        return;
    }
    sb_puts(b, "  \"weight_map\": {\n");
    for (int64_t i = 0; i < n; i++) {
        sb_puts(b, "    ");
        sb_json_string(b, e[i].name, true);
        sb_puts(b, ": ");
        sb_json_string(b, e[i].shard, true);
        sb_puts(b, i + 1 < n ? ",\n" : "\n");
    }
    sb_puts(b, "  }\n");
}

static fp4_st_status index_entries(const char *path, int64_t n, const char *const *names,
                                   const char *const *shards, index_entry **out) {
    index_entry *e = malloc(((size_t)n + 1) * sizeof *e);
    if (!e) return fp4io_fail(FP4_ST_E_NOMEM, path, NULL, "out of memory");
    for (int64_t i = 0; i < n; i++) {
        e[i] = (index_entry){names[i], shards[i]};
        if (!e[i].name || !e[i].shard || !valid_utf8_str(e[i].name) ||
            !valid_utf8_str(e[i].shard)) {
            free(e);
            return fp4io_fail(FP4_ST_E_ARG, path, NULL, "entry %" PRId64 " has a NULL or "
                              "non-UTF-8 name or shard", i);
        }
    }
    qsort(e, (size_t)n, sizeof *e, cmp_index_entry);
    for (int64_t i = 1; i < n; i++) {
        if (strcmp(e[i - 1].name, e[i].name) == 0) {
            fp4_st_status st = fp4io_fail(FP4_ST_E_DUPLICATE, path, e[i].name,
                                          "listed twice in the index");
            free(e);
            return st;
        }
    }
    *out = e;
    return FP4_ST_OK;
}

static int emit_buffer(int fd, void *p) {
    const sbuf *b = p;
    return fp4io_write_all(fd, b->p, b->len);
}

fp4_st_status fp4_st_write_index(const char *path, int64_t n, const char *const *names,
                                 const char *const *shards, int64_t total_size,
                                 int64_t total_parameters) {
    if (!path || n < 0 || (n > 0 && (!names || !shards)))
        return fp4io_fail(FP4_ST_E_ARG, path, NULL, "bad argument to fp4_st_write_index");
    index_entry *e = NULL;
    fp4_st_status st = index_entries(path, n, names, shards, &e);
    if (st != FP4_ST_OK) return st;
    sbuf b = {0};
    sb_puts(&b, "{\n");
    index_metadata(&b, total_size, total_parameters);
    index_weight_map(&b, e, n);
    sb_puts(&b, "}\n");
    free(e);
    if (b.oom) st = fp4io_fail(FP4_ST_E_NOMEM, path, NULL, "out of memory");
    if (st == FP4_ST_OK) st = fp4io_write_atomic(path, emit_buffer, &b);
    free(b.p);
    return st;
}
