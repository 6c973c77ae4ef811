/* test_io_roundtrip.c - the safetensors writer and reader agree: every dtype,
 * scalars, zero-size dims, 8 dims, F4/F6 packing, metadata, hostile names;
 * the writer's bytes equal the reference library's for its own test vectors
 * and its layout order; writer errors; atomic replacement; lookups. */
#include "test_io_util.h"

#include <math.h>

#define STREAM_DATA 1u

typedef struct spec {
    char name[48];
    fp4_st_dtype dtype;
    int32_t ndim;
    int64_t shape[FP4_ST_MAX_DIMS];
    int64_t nbytes;
    uint8_t *data;
} spec;

/* Shapes per dtype, with the last dim adjusted so sub-byte dtypes fill
 * whole bytes (F4: even last dim; F6: element count a multiple of 4). */
static int shapes_for(fp4_st_dtype d, int64_t out[][FP4_ST_MAX_DIMS], int32_t *ndim,
                      const char **tag) {
    int bits = fp4_st_dtype_bits(d);
    int64_t even = (bits == 4) ? 2 : (bits == 6) ? 4 : 1; /* last-dim multiple */
    int n = 0;
    if (bits % 8 == 0) { tag[n] = "scalar"; ndim[n++] = 0; }
    tag[n] = "empty"; ndim[n] = 1; out[n][0] = 0; n++;
    tag[n] = "zero_mid"; ndim[n] = 3; out[n][0] = 3; out[n][1] = 0; out[n][2] = 2 * even; n++;
    tag[n] = "vector"; ndim[n] = 1; out[n][0] = 5 * even; n++;
    tag[n] = "cube"; ndim[n] = 3; out[n][0] = 2; out[n][1] = 3; out[n][2] = 4; n++;
    tag[n] = "odd"; ndim[n] = 3; out[n][0] = 7; out[n][1] = 1; out[n][2] = (even == 1) ? 3 : even;
    n++;
    tag[n] = "eight_dims"; ndim[n] = 8;
    for (int i = 0; i < 7; i++) out[n][i] = 1 + (i % 2);
    out[n][7] = 2 * even;
    n++;
    return n;
}

static int make_specs(spec *s, uint64_t seed) {
    int n = 0;
    for (int d = 0; d < FP4_ST_DTYPE_COUNT; d++) {
        int64_t shp[8][FP4_ST_MAX_DIMS] = {{0}};
        int32_t nd[8];
        const char *tag[8];
        int k = shapes_for((fp4_st_dtype)d, shp, nd, tag);
        for (int i = 0; i < k; i++, n++) {
            spec *p = &s[n];
            snprintf(p->name, sizeof p->name, "%s.%s", fp4_st_dtype_name((fp4_st_dtype)d), tag[i]);
            p->dtype = (fp4_st_dtype)d;
            p->ndim = nd[i];
            memcpy(p->shape, shp[i], sizeof p->shape);
            fp4_st_status st = fp4_st_tensor_size(p->dtype, p->ndim, p->shape, NULL, &p->nbytes);
            fp4t_check(st == FP4_ST_OK, "size of %s: %s", p->name, fp4_last_error());
            p->data = malloc((size_t)p->nbytes + 1);
            for (int64_t b = 0; b < p->nbytes; b++)
                p->data[b] = (uint8_t)fp4t_rand32(seed, STREAM_DATA, (uint64_t)n * 4096 + b);
        }
    }
    return n;
}

static void add_specs(fp4_st_writer *w, spec *s, int n) {
    for (int i = 0; i < n; i++) {
        fp4_st_status st = (i % 2 ? fp4_st_writer_add_copy : fp4_st_writer_add)(
            w, s[i].name, s[i].dtype, s[i].ndim, s[i].shape, s[i].data, s[i].nbytes);
        fp4t_check(st == FP4_ST_OK, "add %s: %s", s[i].name, fp4_last_error());
    }
    fp4t_check(fp4_st_writer_set_metadata(w, "format", "pt") == FP4_ST_OK, "metadata");
    fp4t_check(fp4_st_writer_set_metadata(w, "creator", "fp4sim test") == FP4_ST_OK, "metadata");
}

static void check_tensor(const fp4_st_file *f, const spec *s) {
    const fp4_st_tensor *t = fp4_st_find(f, s->name);
    if (!fp4t_check(t != NULL, "%s missing", s->name)) return;
    fp4t_check(t->dtype == s->dtype && strcmp(t->dtype_name, fp4_st_dtype_name(s->dtype)) == 0,
               "%s dtype", s->name);
    fp4t_check(t->ndim == s->ndim, "%s ndim %d", s->name, t->ndim);
    int64_t numel = 1;
    for (int32_t i = 0; i < FP4_ST_MAX_DIMS; i++) {
        int64_t want = i < s->ndim ? s->shape[i] : 0;
        fp4t_check(t->shape[i] == want, "%s shape[%d]", s->name, i);
        if (i < s->ndim) numel *= s->shape[i];
    }
    fp4t_check(t->numel == numel && t->nbytes == s->nbytes, "%s sizes", s->name);
    fp4t_check(memcmp(t->data, s->data, (size_t)s->nbytes) == 0, "%s data", s->name);
    int align = fp4_st_dtype_bits(s->dtype) / 8;
    if (align > 1)
        fp4t_check((uintptr_t)t->data % (uintptr_t)align == 0, "%s unaligned", s->name);
    fp4t_check(fp4_st_expect(t, fp4_st_path(f), s->dtype, s->ndim, s->shape) == FP4_ST_OK,
               "%s expect", s->name);
}

/* File order is the reference layout: descending dtype, then name. */
static void check_order(const fp4_st_file *f) {
    for (int64_t i = 1; i < fp4_st_count(f); i++) {
        const fp4_st_tensor *a = fp4_st_at(f, i - 1), *b = fp4_st_at(f, i);
        bool ok = a->dtype > b->dtype || (a->dtype == b->dtype && strcmp(a->name, b->name) < 0);
        fp4t_check(ok, "layout order: %s before %s", a->name, b->name);
        fp4t_check(a->offset + a->nbytes == b->offset, "not contiguous at %s", b->name);
    }
}

static void check_file(const fp4_st_file *f, spec *s, int n) {
    fp4t_check(fp4_st_count(f) == n, "count %lld, want %d", (long long)fp4_st_count(f), n);
    fp4t_check(fp4_st_header_len(f) % 8 == 0, "header not padded to 8");
    for (int i = 0; i < n; i++) check_tensor(f, &s[i]);
    check_order(f);
    const char *k = NULL, *v = NULL;
    fp4t_check(fp4_st_metadata_count(f) == 2, "metadata count");
    fp4t_check(fp4_st_metadata_at(f, 0, &k, &v) == 0 && !strcmp(k, "creator"), "metadata sorted");
    fp4t_check(fp4_st_metadata(f, "format") && !strcmp(fp4_st_metadata(f, "format"), "pt"),
               "metadata value");
    fp4t_check(fp4_st_metadata(f, "absent") == NULL, "absent metadata");
    fp4t_check(fp4_st_metadata_at(f, 2, &k, &v) == -1, "metadata_at out of range");
}

static void test_all_dtypes(void) {
    spec s[FP4_ST_DTYPE_COUNT * 8];
    int n = make_specs(s, fp4t_seed());
    const char *path = tio_path("all.safetensors");
    fp4_st_writer *w = NULL;
    fp4t_check(fp4_st_writer_create(path, &w) == FP4_ST_OK, "create");
    add_specs(w, s, n);
    fp4t_check(fp4_st_writer_finish(w) == FP4_ST_OK, "finish: %s", fp4_last_error());
    fp4_st_writer *m = NULL;
    fp4_st_writer_create(NULL, &m);
    add_specs(m, s, n);
    uint8_t *mem = NULL;
    size_t mlen = 0;
    fp4t_check(fp4_st_writer_finish_memory(m, &mem, &mlen) == FP4_ST_OK, "finish_memory");
    size_t flen = 0;
    uint8_t *disk = tio_read(path, &flen);
    fp4t_check(disk && flen == mlen && memcmp(disk, mem, mlen) == 0, "file != memory image");
    fp4_st_file *f = NULL, *g = NULL;
    fp4t_check(fp4_st_open(path, &f) == FP4_ST_OK, "open: %s", fp4_last_error());
    fp4t_check(fp4_st_open_memory(mem, mlen, "mem", &g) == FP4_ST_OK, "open mem: %s",
               fp4_last_error());
    if (f) check_file(f, s, n);
    if (g) check_file(g, s, n);
    for (int64_t i = 0; f && i < fp4_st_count(f); i++) {
        fp4_st_advise(f, fp4_st_at(f, i), FP4_ST_DONTNEED);
        fp4_st_advise(f, fp4_st_at(f, i), FP4_ST_WILLNEED);
    }
    if (f) check_file(f, s, n); /* dropped pages come back from the file */
    fp4_st_close(f);
    fp4_st_close(g);
    free(mem);
    free(disk);
    for (int i = 0; i < n; i++) free(s[i].data);
}

/* Byte-exact vectors from the reference library's own unit tests. */
static void expect_image(const char *what, fp4_st_writer *w, const char *header, size_t hlen,
                         const void *data, size_t dlen) {
    uint8_t *buf = NULL;
    size_t len = 0;
    fp4t_check(fp4_st_writer_finish_memory(w, &buf, &len) == FP4_ST_OK, "%s: %s", what,
               fp4_last_error());
    uint8_t want[256];
    tio_le64(want, hlen);
    memcpy(want + 8, header, hlen);
    if (dlen) memcpy(want + 8 + hlen, data, dlen);
    bool same = buf && len == 8 + hlen + dlen && memcmp(buf, want, len) == 0;
    fp4t_check(same, "%s: got '%.*s'", what, buf ? (int)(len > 8 ? len - 8 : 0) : 0,
               buf ? (const char *)buf + 8 : "");
    free(buf);
}

static void test_reference_vectors(void) {
    float v[6] = {0, 1, 2, 3, 4, 5};
    fp4_st_writer *w = NULL;
    fp4_st_writer_create(NULL, &w);
    fp4_st_writer_add(w, "attn.0", FP4_ST_F32, 3, (int64_t[]){1, 2, 3}, v, 24);
    const char *h1 = "{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}";
    expect_image("attn.0", w, h1, 64, v, 24);
    fp4_st_writer_create(NULL, &w);
    fp4_st_writer_add(w, "attn0", FP4_ST_F32, 4, (int64_t[]){1, 1, 2, 3}, v, 24);
    const char *h2 =
        "{\"attn0\":{\"dtype\":\"F32\",\"shape\":[1,1,2,3],\"data_offsets\":[0,24]}}       ";
    expect_image("attn0 (padded)", w, h2, 72, v, 24);
    fp4_st_writer_create(NULL, &w);
    expect_image("empty", w, "{}      ", 8, NULL, 0);
    fp4_st_writer_create(NULL, &w);
    fp4_st_writer_set_metadata(w, "framework", "pt");
    expect_image("metadata only", w, "{\"__metadata__\":{\"framework\":\"pt\"}}     ", 40, NULL, 0);
}

/* Layout across dtypes: U64 I64 F64 C64 F32 ... BF16 ... U8 ... F4 BOOL. */
static void test_layout_order(void) {
    uint8_t z[64] = {0};
    struct { const char *name; fp4_st_dtype d; int64_t n; } t[] = {
        {"a", FP4_ST_U8, 1}, {"b", FP4_ST_F32, 1}, {"c", FP4_ST_I64, 1}, {"d", FP4_ST_BF16, 1},
        {"e", FP4_ST_F4, 2}, {"f", FP4_ST_BOOL, 1}, {"g", FP4_ST_C64, 1}, {"bb", FP4_ST_F32, 1},
    };
    fp4_st_writer *w = NULL;
    fp4_st_writer_create(NULL, &w);
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int64_t bytes = 0;
        fp4_st_tensor_size(t[i].d, 1, &t[i].n, NULL, &bytes);
        fp4_st_writer_add(w, t[i].name, t[i].d, 1, &t[i].n, z, bytes);
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    fp4_st_writer_finish_memory(w, &buf, &len);
    fp4_st_file *f = NULL;
    fp4t_check(fp4_st_open_memory(buf, len, "order", &f) == FP4_ST_OK, "open: %s", fp4_last_error());
    const char *want[] = {"c", "g", "b", "bb", "d", "a", "e", "f"};
    for (int i = 0; f && i < 8; i++)
        fp4t_check(!strcmp(fp4_st_at(f, i)->name, want[i]), "order[%d] = %s, want %s", i,
                   fp4_st_at(f, i)->name, want[i]);
    const char *hdr = (const char *)buf + 8;
    fp4t_check(strstr(hdr, "{\"c\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]},"
                           "\"g\":{\"dtype\":\"C64\"") == hdr, "header text: %.80s", hdr);
    fp4_st_close(f);
    free(buf);
}

/* Names that need JSON escapes; serde_json's spelling is checked too. */
static void test_escapes(void) {
    const char *names[] = {"q\"b\\s\x01\t\x1f \xc3\xa9\xf0\x9f\x98\x80", "", "__metadata",
                           "/slash\x7f"};
    uint8_t one = 7;
    int64_t n1 = 1;
    fp4_st_writer *w = NULL;
    fp4_st_writer_create(NULL, &w);
    for (int i = 0; i < 4; i++)
        fp4t_check(fp4_st_writer_add(w, names[i], FP4_ST_U8, 1, &n1, &one, 1) == FP4_ST_OK,
                   "add escaped %d: %s", i, fp4_last_error());
    fp4_st_writer_set_metadata(w, "k\n", "v\"");
    uint8_t *buf = NULL;
    size_t len = 0;
    fp4_st_writer_finish_memory(w, &buf, &len);
    fp4t_check(strstr((char *)buf + 8, "\"q\\\"b\\\\s\\u0001\\t\\u001f \xc3\xa9\xf0\x9f\x98\x80\"")
                   != NULL, "serde escapes: %s", (char *)buf + 8);
    fp4t_check(strstr((char *)buf + 8, "\"k\\n\":\"v\\\"\"") != NULL, "metadata escapes");
    fp4_st_file *f = NULL;
    fp4t_check(fp4_st_open_memory(buf, len, "esc", &f) == FP4_ST_OK, "open: %s", fp4_last_error());
    for (int i = 0; f && i < 4; i++)
        fp4t_check(fp4_st_find(f, names[i]) != NULL, "escaped name %d lost", i);
    fp4t_check(f && fp4_st_metadata(f, "k\n") && !strcmp(fp4_st_metadata(f, "k\n"), "v\""),
               "escaped metadata lost");
    fp4_st_close(f);
    free(buf);
}

static void expect_add_error(const char *what, fp4_st_status want, const char *name,
                             fp4_st_dtype d, int32_t ndim, const int64_t *shape, int64_t nbytes) {
    static uint8_t data[64];
    fp4_st_writer *w = NULL;
    fp4_st_writer_create(tio_path("never.safetensors"), &w);
    fp4_st_status st = fp4_st_writer_add(w, name, d, ndim, shape, data, nbytes);
    fp4t_check(st == want, "%s: status %s, want %s (%s)", what, fp4_st_status_name(st),
               fp4_st_status_name(want), fp4_last_error());
    fp4t_check(tio_msg_ok(fp4_last_error()) && strstr(fp4_last_error(), "never.safetensors"),
               "%s: message %s", what, fp4_last_error());
    fp4_st_writer_abort(w);
}

static void test_writer_errors(void) {
    int64_t s2[] = {2}, s3[] = {3}, neg[] = {-1}, s23[] = {2, 3}, big[] = {INT64_MAX};
    int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    expect_add_error("wrong nbytes", FP4_ST_E_SIZE, "w", FP4_ST_F32, 1, s2, 4);
    expect_add_error("F4 odd", FP4_ST_E_SIZE, "w", FP4_ST_F4, 1, s3, 2);
    expect_add_error("F4 odd last", FP4_ST_E_SIZE, "w", FP4_ST_F4, 2, s23, 3);
    expect_add_error("F6 partial", FP4_ST_E_SIZE, "w", FP4_ST_F6_E2M3, 1, s3, 3);
    expect_add_error("negative dim", FP4_ST_E_SHAPE, "w", FP4_ST_U8, 1, neg, 0);
    expect_add_error("huge dim", FP4_ST_E_SHAPE, "w", FP4_ST_U8, 1, big, 0);
    expect_add_error("nine dims", FP4_ST_E_ARG, "w", FP4_ST_U8, 9, nine, 1);
    expect_add_error("bad dtype", FP4_ST_E_ARG, "w", (fp4_st_dtype)99, 1, s2, 2);
    expect_add_error("reserved name", FP4_ST_E_ARG, "__metadata__", FP4_ST_U8, 1, s2, 2);
    expect_add_error("bad UTF-8 name", FP4_ST_E_ARG, "a\xff", FP4_ST_U8, 1, s2, 2);
    expect_add_error("NULL name", FP4_ST_E_ARG, NULL, FP4_ST_U8, 1, s2, 2);
    fp4_st_writer *w = NULL;
    fp4_st_writer_create(tio_path("dup.safetensors"), &w);
    uint8_t d[2] = {1, 2};
    fp4_st_writer_add(w, "x", FP4_ST_U8, 1, s2, d, 2);
    fp4_st_writer_add(w, "x", FP4_ST_I8, 1, s2, d, 2);
    fp4t_check(fp4_st_writer_finish(w) == FP4_ST_E_DUPLICATE, "duplicate accepted");
    fp4t_check(strstr(fp4_last_error(), "tensor 'x'") != NULL, "dup message: %s", fp4_last_error());
    fp4t_check(access(tio_path("dup.safetensors"), F_OK) != 0, "failed finish left a file");
    fp4_st_writer_create(tio_path("no/such/dir/x.safetensors"), &w);
    fp4t_check(fp4_st_writer_finish(w) == FP4_ST_E_IO, "missing dir accepted");
    fp4t_check(strstr(fp4_last_error(), "no/such/dir") != NULL, "io message: %s", fp4_last_error());
    fp4_st_writer_create(NULL, &w);
    fp4t_check(fp4_st_writer_finish(w) == FP4_ST_E_ARG, "finish without a path accepted");
    fp4t_check(fp4_st_writer_add(NULL, "x", FP4_ST_U8, 1, s2, d, 2) == FP4_ST_E_ARG, "NULL w");
    fp4_st_writer_create(NULL, &w);
    fp4t_check(fp4_st_writer_add(w, "x", FP4_ST_U8, 1, s2, NULL, 2) == FP4_ST_E_ARG, "NULL data");
    fp4t_check(fp4_st_writer_add(w, "z", FP4_ST_U8, 1, (int64_t[]){0}, NULL, 0) == FP4_ST_OK,
               "NULL data for an empty tensor refused");
    fp4_st_writer_abort(w);
}

static bool dir_has_tmp(void) {
    DIR *d = opendir(tio_dir());
    struct dirent *e;
    bool found = false;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".tmp")) found = true;
    if (d) closedir(d);
    return found;
}

/* _add keeps the pointer, _add_copy the bytes; finish replaces atomically. */
static void test_copy_and_replace(void) {
    const char *path = tio_path("replace.safetensors");
    int64_t s4[] = {4};
    uint8_t a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8};
    fp4_st_writer *w = NULL;
    fp4_st_writer_create(path, &w);
    fp4_st_writer_add(w, "ref", FP4_ST_U8, 1, s4, a, 4);
    fp4_st_writer_add_copy(w, "copy", FP4_ST_U8, 1, s4, b, 4);
    fp4_st_writer_set_metadata(w, "k", "old");
    fp4_st_writer_set_metadata(w, "k", "new");
    a[0] = 9; /* seen: referenced */
    b[0] = 9; /* not seen: copied */
    fp4t_check(fp4_st_writer_finish(w) == FP4_ST_OK, "finish: %s", fp4_last_error());
    fp4_st_file *f = NULL;
    fp4t_check(fp4_st_open(path, &f) == FP4_ST_OK, "open: %s", fp4_last_error());
    const fp4_st_tensor *t = NULL;
    fp4t_check(f && fp4_st_get(f, "ref", &t) == FP4_ST_OK && ((const uint8_t *)t->data)[0] == 9,
               "referenced data not read at finish");
    fp4t_check(f && fp4_st_get(f, "copy", &t) == FP4_ST_OK && ((const uint8_t *)t->data)[0] == 5,
               "copied data changed");
    fp4t_check(f && !strcmp(fp4_st_metadata(f, "k"), "new"), "metadata not replaced");
    fp4_st_close(f); /* replace the file while nobody maps it, then check again */
    fp4_st_writer_create(path, &w);
    fp4_st_writer_add(w, "other", FP4_ST_U8, 1, s4, b, 4);
    fp4t_check(fp4_st_writer_finish(w) == FP4_ST_OK, "second finish: %s", fp4_last_error());
    fp4t_check(fp4_st_open(path, &f) == FP4_ST_OK && fp4_st_count(f) == 1 &&
                   fp4_st_find(f, "other"), "file not replaced");
    fp4_st_close(f);
    fp4t_check(!dir_has_tmp(), "temporary file left behind");
    struct stat sb;
    fp4t_check(stat(path, &sb) == 0 && (sb.st_mode & 0444) == 0444, "file not world-readable");
}

static void test_lookups(void) {
    int64_t s2[] = {2};
    uint16_t d[2] = {1, 2};
    fp4_st_writer *w = NULL;
    fp4_st_writer_create(NULL, &w);
    fp4_st_writer_add(w, "w", FP4_ST_BF16, 1, s2, d, 4);
    uint8_t *buf = NULL;
    size_t len = 0;
    fp4_st_writer_finish_memory(w, &buf, &len);
    fp4_st_file *f = NULL;
    fp4_st_open_memory(buf, len, "look.safetensors", &f);
    const fp4_st_tensor *t = NULL;
    fp4t_check(fp4_st_get(f, "nope", &t) == FP4_ST_E_NOT_FOUND && t == NULL, "get absent");
    fp4t_check(strstr(fp4_last_error(), "look.safetensors: tensor 'nope'") != NULL, "msg: %s",
               fp4_last_error());
    fp4t_check(fp4_st_find(f, "nope") == NULL && fp4_st_at(f, -1) == NULL && fp4_st_at(f, 1) ==
               NULL, "out-of-range lookups");
    t = fp4_st_find(f, "w");
    fp4t_check(t && t->offset == 8 + fp4_st_header_len(f) && fp4_st_data_len(f) == 4, "offset");
    fp4t_check(fp4_st_expect(t, "ckpt", FP4_ST_F32, 1, (int64_t[]){2}) == FP4_ST_E_MISMATCH &&
               strstr(fp4_last_error(), "expected F32 [2], found BF16 [2]"), "expect dtype: %s",
               fp4_last_error());
    fp4t_check(fp4_st_expect(t, "ckpt", FP4_ST_BF16, 1, (int64_t[]){3}) == FP4_ST_E_MISMATCH,
               "expect shape");
    fp4t_check(fp4_st_expect(t, "ckpt", FP4_ST_BF16, 1, (int64_t[]){-1}) == FP4_ST_OK, "wildcard");
    fp4t_check(fp4_st_expect(t, "ckpt", FP4_ST_BF16, -1, NULL) == FP4_ST_OK, "any shape");
    fp4_st_close(f);
    free(buf);
    fp4t_check(fp4_st_count(NULL) == 0 && fp4_st_find(NULL, "w") == NULL, "NULL file");
    fp4_st_close(NULL);
}

static void test_dtype_table(void) {
    for (int d = 0; d < FP4_ST_DTYPE_COUNT; d++) {
        fp4_st_dtype back;
        fp4t_check(fp4_st_dtype_from_name(fp4_st_dtype_name((fp4_st_dtype)d), &back) == 0 &&
                   back == (fp4_st_dtype)d, "dtype %d name round trip", d);
    }
    fp4t_check(fp4_st_dtype_from_name("F8_E4M3FN", NULL) == -1, "torch spelling accepted");
    fp4t_check(fp4_st_dtype_name(FP4_ST_DTYPE_COUNT) == NULL && fp4_st_dtype_bits(-1) == 0, "range");
    fp4t_check(fp4_st_dtype_bits(FP4_ST_F4) == 4 && fp4_st_dtype_bits(FP4_ST_C64) == 64, "bits");
    int64_t numel = 0, nbytes = 0;
    fp4t_check(fp4_st_tensor_size(FP4_ST_F4, 2, (int64_t[]){3, 4}, &numel, &nbytes) ==
               FP4_ST_OK && numel == 12 && nbytes == 6, "F4 size");
    fp4t_check(fp4_st_tensor_size(FP4_ST_F64, 0, NULL, &numel, &nbytes) == FP4_ST_OK &&
               numel == 1 && nbytes == 8, "scalar size");
    for (int s = 0; s < FP4_ST_STATUS_COUNT; s++)
        fp4t_check(strcmp(fp4_st_status_name((fp4_st_status)s), "?") != 0, "status name %d", s);
}

int main(void) {
    fp4t_begin("test_io_roundtrip");
    test_all_dtypes();
    test_reference_vectors();
    test_layout_order();
    test_escapes();
    test_writer_errors();
    test_copy_and_replace();
    test_lookups();
    test_dtype_table();
    tio_cleanup();
    return fp4t_end();
}
