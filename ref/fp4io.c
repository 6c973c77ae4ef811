/* fp4io.c - safetensors reader: messages, dtypes, header validation,
 * memory mapping and lookup. Writer: fp4io_write.c; checkpoints: fp4io_ckpt.c.
 *
 * The rules follow huggingface/safetensors (tensor.rs, Metadata::validate)
 * and are listed with their reasons in docs/io.md. The file is never trusted:
 * every size comes from the header, so every size is checked before use. */
#define _DEFAULT_SOURCE 1 /* mmap, madvise, strdup under -std=c17 too */

#include "fp4io_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct fp4_st_file {
    char *path;            /* path or label, for messages */
    const uint8_t *base;   /* whole file */
    size_t size;
    bool mapped;           /* base came from mmap */
    int64_t header_len;
    const uint8_t *data;   /* base + 8 + header_len */
    int64_t data_len;
    int64_t ntensors;
    fp4_st_tensor *tensors;        /* file order */
    const fp4_st_tensor **by_name; /* sorted by name */
    int64_t nmeta;
    char **meta;                   /* key0, value0, key1, ... sorted by key */
};

/* ---------------------------------------------------------------------------
 * Messages
 * ------------------------------------------------------------------------- */

enum { MSG_MAX = 1024 };

/* The error kind of a status: who is at fault decides the CLI's exit code. */
static fp4_errkind status_kind(fp4_st_status st) {
    return st == FP4_ST_E_IO ? FP4_ERR_IO : st == FP4_ST_E_NOMEM ? FP4_ERR_NOMEM : FP4_ERR_INPUT;
}

static const char *const k_status_names[FP4_ST_STATUS_COUNT] = {
    "ok",    "io",      "truncated", "header-length", "json",      "entry",
    "dtype", "shape",   "offsets",   "size",          "overlap",   "gap",
    "duplicate", "metadata", "not-found", "index",    "mismatch",  "argument",
    "no-memory",
};

const char *fp4_st_status_name(fp4_st_status s) {
    return ((unsigned)s < FP4_ST_STATUS_COUNT) ? k_status_names[s] : "?";
}

/* Appends s to buf (capacity n), truncating. */
static void append(char *buf, size_t n, const char *s) {
    size_t used = strlen(buf);
    size_t add = strlen(s);
    if (used + 1 >= n) return;
    if (add > n - 1 - used) add = n - 1 - used;
    memcpy(buf + used, s, add);
    buf[used + add] = '\0';
}

/* Escapes one byte for a message: names come from untrusted files and must
 * not break the one-line format or the quoting. */
static void escape_byte(char out[8], unsigned char c, char quote) {
    if (c == '\\' || (quote && c == (unsigned char)quote)) {
        out[0] = '\\';
        out[1] = (char)c;
        out[2] = '\0';
    } else if (c < 0x20 || c == 0x7F) {
        snprintf(out, 8, "\\x%02x", c);
    } else {
        out[0] = (char)c;
        out[1] = '\0';
    }
}

/* Appends s escaped (at most `limit` source bytes, then "..."). */
static void append_escaped(char *buf, size_t n, const char *s, char quote, size_t limit) {
    char piece[8];
    size_t i = 0;
    for (; s[i] && i < limit; i++) {
        escape_byte(piece, (unsigned char)s[i], quote);
        append(buf, n, piece);
    }
    if (s[i]) append(buf, n, "...");
}

void fp4io_quote(char *buf, size_t n, const char *s) {
    append(buf, n, "'");
    append_escaped(buf, n, s ? s : "(null)", '\'', 160);
    append(buf, n, "'");
}

static fp4_st_status vfail(fp4_st_status st, fp4_errkind kind, const char *file,
                           const char *tensor, const char *fmt, va_list ap) {
    char line[MSG_MAX] = "";
    char rest[MSG_MAX];
    if (file) {
        append_escaped(line, sizeof line, file, 0, 400);
        append(line, sizeof line, ": ");
    }
    if (tensor) {
        append(line, sizeof line, "tensor ");
        fp4io_quote(line, sizeof line, tensor);
        append(line, sizeof line, ": ");
    }
    vsnprintf(rest, sizeof rest, fmt, ap);
    append(line, sizeof line, rest);
    fp4_fail_kind(kind, "%s", line); /* one line whatever fmt held */
    return st;
}

fp4_st_status fp4io_fail(fp4_st_status st, const char *file, const char *tensor,
                         const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfail(st, status_kind(st), file, tensor, fmt, ap);
    va_end(ap);
    return st;
}

/* A path the caller named cannot be used (missing, a directory, no
 * permission, a dangling or looping symlink, ...): FP4_ST_E_IO, but the
 * user's input is at fault (kind FP4_ERR_INPUT, CLI exit 2), unlike a
 * failing read or write of a file that could be opened (FP4_ERR_IO, exit 1). */
fp4_st_status fp4io_fail_path(const char *path, int err, const char *fmt, ...) {
    bool bad_path = err == ENOENT || err == ENOTDIR || err == EACCES || err == EPERM ||
                    err == EISDIR || err == ENAMETOOLONG || err == ELOOP || err == EROFS ||
                    err == ENXIO || err == 0;
    va_list ap;
    va_start(ap, fmt);
    vfail(FP4_ST_E_IO, bad_path ? FP4_ERR_INPUT : FP4_ERR_IO, path, NULL, fmt, ap);
    va_end(ap);
    return FP4_ST_E_IO;
}

/* ---------------------------------------------------------------------------
 * Dtypes
 * ------------------------------------------------------------------------- */

typedef struct dtype_info {
    const char *name;
    int bits;
} dtype_info;

static const dtype_info k_dtypes[FP4_ST_DTYPE_COUNT] = {
    [FP4_ST_BOOL] = {"BOOL", 8},       [FP4_ST_F4] = {"F4", 4},
    [FP4_ST_F6_E2M3] = {"F6_E2M3", 6}, [FP4_ST_F6_E3M2] = {"F6_E3M2", 6},
    [FP4_ST_U8] = {"U8", 8},           [FP4_ST_I8] = {"I8", 8},
    [FP4_ST_F8_E5M2] = {"F8_E5M2", 8}, [FP4_ST_F8_E4M3] = {"F8_E4M3", 8},
    [FP4_ST_F8_E8M0] = {"F8_E8M0", 8}, [FP4_ST_F8_E4M3FNUZ] = {"F8_E4M3FNUZ", 8},
    [FP4_ST_F8_E5M2FNUZ] = {"F8_E5M2FNUZ", 8},
    [FP4_ST_I16] = {"I16", 16},        [FP4_ST_U16] = {"U16", 16},
    [FP4_ST_F16] = {"F16", 16},        [FP4_ST_BF16] = {"BF16", 16},
    [FP4_ST_I32] = {"I32", 32},        [FP4_ST_U32] = {"U32", 32},
    [FP4_ST_F32] = {"F32", 32},        [FP4_ST_C64] = {"C64", 64},
    [FP4_ST_F64] = {"F64", 64},        [FP4_ST_I64] = {"I64", 64},
    [FP4_ST_U64] = {"U64", 64},
};

int fp4_st_dtype_from_name(const char *name, fp4_st_dtype *out) {
    if (!name) return -1;
    for (int d = 0; d < FP4_ST_DTYPE_COUNT; d++) {
        if (strcmp(name, k_dtypes[d].name) == 0) {
            if (out) *out = (fp4_st_dtype)d;
            return 0;
        }
    }
    return -1;
}

const char *fp4_st_dtype_name(fp4_st_dtype d) {
    return ((unsigned)d < FP4_ST_DTYPE_COUNT) ? k_dtypes[d].name : NULL;
}

int fp4_st_dtype_bits(fp4_st_dtype d) {
    return ((unsigned)d < FP4_ST_DTYPE_COUNT) ? k_dtypes[d].bits : 0;
}

/* "[2, 3]" */
static void format_shape(char *buf, size_t n, int32_t ndim, const int64_t *shape) {
    char num[32];
    snprintf(buf, n, "[");
    for (int32_t i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            snprintf(num, sizeof num, "%s?", i ? ", " : "");
        else
            snprintf(num, sizeof num, "%s%" PRId64, i ? ", " : "", shape[i]);
        append(buf, n, num);
    }
    append(buf, n, "]");
}

/* Element count: checked product, as the reference library does it (so a
 * later zero dim does not excuse an earlier overflow). */
static fp4_st_status count_elements(int32_t ndim, const int64_t *shape, int64_t *numel,
                                    const char *file, const char *tensor) {
    int64_t count = 1;
    for (int32_t i = 0; i < ndim; i++) {
        if (shape[i] < 0 || shape[i] > FP4_ST_MAX_JSON_INT)
            return fp4io_fail(FP4_ST_E_SHAPE, file, tensor, "dim %d is %" PRId64
                              ", outside [0, 2^53]", (int)i, shape[i]);
        if (shape[i] != 0 && count > INT64_MAX / shape[i])
            return fp4io_fail(FP4_ST_E_SHAPE, file, tensor,
                              "element count overflows int64 at dim %d", (int)i);
        count *= shape[i];
    }
    *numel = count;
    return FP4_ST_OK;
}

fp4_st_status fp4io_tensor_size(fp4_st_dtype d, int32_t ndim, const int64_t *shape,
                                 int64_t *numel, int64_t *nbytes, const char *file,
                                 const char *tensor) {
    if ((unsigned)d >= FP4_ST_DTYPE_COUNT)
        return fp4io_fail(FP4_ST_E_ARG, file, tensor, "dtype %d is not a safetensors dtype", (int)d);
    if (ndim < 0 || ndim > FP4_ST_MAX_DIMS || (ndim > 0 && !shape))
        return fp4io_fail(FP4_ST_E_ARG, file, tensor, "bad ndim %d (0..%d)", (int)ndim,
                          FP4_ST_MAX_DIMS);
    int64_t count = 0;
    fp4_st_status st = count_elements(ndim, shape, &count, file, tensor);
    if (st != FP4_ST_OK) return st;
    /* fp4sim packs F4 rows into whole bytes, so it asks for an even last dim;
     * the reference library only asks for an even total (stricter here). */
    if (d == FP4_ST_F4 && (ndim == 0 || shape[ndim - 1] % 2 != 0))
        return fp4io_fail(FP4_ST_E_SIZE, file, tensor,
                          "F4 needs an even last dimension (two 4-bit elements per byte)");
    int64_t bits = k_dtypes[d].bits;
    if (count > INT64_MAX / bits)
        return fp4io_fail(FP4_ST_E_SHAPE, file, tensor, "bit count overflows int64");
    if ((count * bits) % 8 != 0)
        return fp4io_fail(FP4_ST_E_SIZE, file, tensor, "%" PRId64 " %s elements do not fill "
                          "whole bytes", count, k_dtypes[d].name);
    *numel = count;
    *nbytes = count * bits / 8;
    return FP4_ST_OK;
}

fp4_st_status fp4_st_tensor_size(fp4_st_dtype d, int32_t ndim, const int64_t *shape,
                                 int64_t *numel, int64_t *nbytes) {
    int64_t a = 0, b = 0;
    fp4_st_status st = fp4io_tensor_size(d, ndim, shape, &a, &b, NULL, NULL);
    if (st == FP4_ST_OK) {
        if (numel) *numel = a;
        if (nbytes) *nbytes = b;
    }
    return st;
}

/* ---------------------------------------------------------------------------
 * Small shared helpers
 * ------------------------------------------------------------------------- */

/* Length of the UTF-8 sequence led by c and the lead's payload bits; 0 if c
 * cannot lead one. */
static size_t utf8_lead(uint8_t c, uint32_t *cp, uint32_t *min) {
    if ((c & 0xE0) == 0xC0) { *cp = c & 0x1Fu; *min = 0x80; return 2; }
    if ((c & 0xF0) == 0xE0) { *cp = c & 0x0Fu; *min = 0x800; return 3; }
    if ((c & 0xF8) == 0xF0) { *cp = c & 0x07u; *min = 0x10000; return 4; }
    return 0;
}

bool fp4io_utf8_valid(const uint8_t *s, size_t n, size_t *bad) {
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) { i++; continue; }
        uint32_t cp = 0, min = 0;
        size_t len = utf8_lead(s[i], &cp, &min);
        if (len == 0 || n - i < len) break;
        size_t k = 1;
        for (; k < len && (s[i + k] & 0xC0) == 0x80; k++) cp = (cp << 6) | (s[i + k] & 0x3Fu);
        if (k < len || cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) break;
        i += len;
    }
    if (i < n && bad) *bad = i;
    return i >= n;
}

char *fp4io_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

char *fp4io_path_join(const char *dir, const char *rel) {
    if (!dir || !*dir) return fp4io_strdup(rel);
    size_t a = strlen(dir), b = strlen(rel);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t at = a;
    if (dir[a - 1] != '/') p[at++] = '/';
    memcpy(p + at, rel, b + 1);
    return p;
}

char *fp4io_dirname(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return fp4io_strdup(".");
    if (slash == path) return fp4io_strdup("/");
    size_t n = (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, path, n);
    d[n] = '\0';
    return d;
}

static fp4_st_status read_fd(int fd, const char *path, char *buf, size_t len) {
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0)
            return fp4io_fail(FP4_ST_E_IO, path, NULL, "read failed: %s",
                              r < 0 ? strerror(errno) : "file shrank while reading");
        got += (size_t)r;
    }
    return FP4_ST_OK;
}

fp4_st_status fp4io_read_file(const char *path, size_t max, char **buf, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return fp4io_fail_path(path, errno, "cannot open: %s", strerror(errno));
    struct stat sb;
    fp4_st_status st = FP4_ST_OK;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
        st = fp4io_fail_path(path, 0, "not a readable regular file");
    else if ((uint64_t)sb.st_size > max)
        st = fp4io_fail(FP4_ST_E_IO, path, NULL, "file is %" PRId64 " bytes, above the %zu-byte "
                        "limit", (int64_t)sb.st_size, max);
    char *b = NULL;
    if (st == FP4_ST_OK && !(b = malloc((size_t)sb.st_size + 1)))
        st = fp4io_fail(FP4_ST_E_NOMEM, path, NULL, "out of memory");
    if (st == FP4_ST_OK) st = read_fd(fd, path, b, (size_t)sb.st_size);
    close(fd);
    if (st != FP4_ST_OK) {
        free(b);
        return st;
    }
    b[sb.st_size] = '\0';
    *buf = b;
    *len = (size_t)sb.st_size;
    return FP4_ST_OK;
}

/* ---------------------------------------------------------------------------
 * Header: length prefix, bytes, JSON
 * ------------------------------------------------------------------------- */

static fp4_st_status check_prefix(fp4_st_file *f) {
    if (f->size < 8)
        return fp4io_fail(FP4_ST_E_TRUNCATED, f->path, NULL, "file is %zu bytes, shorter than "
                          "the 8-byte header length", f->size);
    uint64_t n = 0;
    for (int i = 0; i < 8; i++) n |= (uint64_t)f->base[i] << (8 * i);
    if (n == 0) return fp4io_fail(FP4_ST_E_HEADER_LEN, f->path, NULL, "header length is 0");
    if (n > FP4_ST_MAX_HEADER)
        return fp4io_fail(FP4_ST_E_HEADER_LEN, f->path, NULL, "header length %" PRIu64
                          " exceeds the %d-byte limit", n, FP4_ST_MAX_HEADER);
    if (n > f->size - 8)
        return fp4io_fail(FP4_ST_E_TRUNCATED, f->path, NULL, "header length %" PRIu64 " runs "
                          "past the end of the file (%zu bytes follow the length)", n,
                          f->size - 8);
    f->header_len = (int64_t)n;
    f->data = f->base + 8 + n;
    f->data_len = (int64_t)(f->size - 8 - n);
    return FP4_ST_OK;
}

/* Sets *why and returns false: the "no, because" of the checks below. */
static bool why_false(const char **why, const char *reason) {
    *why = reason;
    return false;
}

/* Rejects, before cJSON sees the text, what JSON forbids but cJSON lets
 * through: control bytes (cJSON skips any byte <= 0x20 as whitespace and
 * keeps raw ones inside strings), and the \u0000 escape, which cJSON turns
 * into a C string cut short - two different names could then compare equal. */
static bool scan_header(const uint8_t *s, size_t n, size_t *at, const char **why) {
    bool in_string = false;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        *at = i;
        if (!in_string) {
            if (c == '"') in_string = true;
            else if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
                return why_false(why, "a control byte");
        } else if (c < 0x20) {
            return why_false(why, "a raw control byte inside a string");
        } else if (c == '"') {
            in_string = false;
        } else if (c == '\\' && i + 1 < n) {
            if (s[i + 1] == 'u' && n - i >= 6 && memcmp(s + i + 2, "0000", 4) == 0)
                return why_false(why, "a \\u0000 escape (NUL in a name or value)");
            i++; /* the escaped character cannot end the string */
        }
    }
    return true;
}

const char *fp4io_json_type(const cJSON *j) {
    if (cJSON_IsNull(j)) return "null";
    if (cJSON_IsBool(j)) return "boolean";
    if (cJSON_IsNumber(j)) return "number";
    if (cJSON_IsString(j)) return "string";
    if (cJSON_IsArray(j)) return "array";
    if (cJSON_IsObject(j)) return "object";
    return "invalid value";
}

fp4_st_status fp4io_json_parse(fp4_st_status code, const char *file, const char *what,
                               const uint8_t *s, size_t n, cJSON **root) {
    size_t at = 0;
    const char *why = "";
    if (!fp4io_utf8_valid(s, n, &at))
        return fp4io_fail(code, file, NULL, "%s is not valid UTF-8 (byte %zu)", what, at);
    if (!scan_header(s, n, &at, &why))
        return fp4io_fail(code, file, NULL, "%s has %s at byte %zu", what, why, at);
    char *text = malloc(n + 1);
    if (!text) return fp4io_fail(FP4_ST_E_NOMEM, file, NULL, "out of memory");
    memcpy(text, s, n);
    text[n] = '\0'; /* no NUL inside: scan_header rejected control bytes */
    const char *end = text;
    cJSON *r = cJSON_ParseWithOpts(text, &end, 1);
    size_t stop = end ? (size_t)(end - text) : 0;
    free(text);
    if (!r)
        return fp4io_fail(code, file, NULL, "%s is not valid JSON (error at byte %zu)", what,
                          stop);
    if (!cJSON_IsObject(r)) {
        fp4io_fail(code, file, NULL, "%s is a JSON %s, not an object", what, fp4io_json_type(r));
        cJSON_Delete(r);
        return code;
    }
    *root = r;
    return FP4_ST_OK;
}

static fp4_st_status parse_json(const fp4_st_file *f, cJSON **root) {
    return fp4io_json_parse(FP4_ST_E_JSON, f->path, "header", f->base + 8, (size_t)f->header_len,
                            root);
}

/* ---------------------------------------------------------------------------
 * Entries
 * ------------------------------------------------------------------------- */

/* A non-negative integer that a double holds exactly; *why says what is
 * wrong otherwise. Integral spellings such as 1.0 or 1e3 pass: cJSON does not
 * keep the text (the reference library would refuse them; harmless). */
bool fp4io_json_uint(const cJSON *j, int64_t *out, const char **why) {
    if (!cJSON_IsNumber(j)) return why_false(why, fp4io_json_type(j));
    double d = j->valuedouble;
    if (d < 0) return why_false(why, "negative");
    if (!(d <= (double)FP4_ST_MAX_JSON_INT)) return why_false(why, "larger than 2^53");
    int64_t v = (int64_t)d;
    if ((double)v != d) return why_false(why, "not an integer");
    *out = v;
    return true;
}

/* The one child named `key` (case-sensitive, as serde matches fields). */
static fp4_st_status unique_field(const fp4_st_file *f, const cJSON *obj, const char *name,
                                  const char *key, const cJSON **out) {
    const cJSON *found = NULL;
    for (const cJSON *c = obj->child; c; c = c->next) {
        if (strcmp(c->string, key) != 0) continue;
        if (found)
            return fp4io_fail(FP4_ST_E_ENTRY, f->path, name, "field \"%s\" appears twice", key);
        found = c;
    }
    if (!found) return fp4io_fail(FP4_ST_E_ENTRY, f->path, name, "missing \"%s\"", key);
    *out = found;
    return FP4_ST_OK;
}

static fp4_st_status parse_dtype(const fp4_st_file *f, const cJSON *j, fp4_st_tensor *t) {
    if (!cJSON_IsString(j))
        return fp4io_fail(FP4_ST_E_ENTRY, f->path, t->name, "\"dtype\" is a JSON %s, not a "
                          "string", fp4io_json_type(j));
    if (fp4_st_dtype_from_name(j->valuestring, &t->dtype) != 0) {
        char q[256] = "";
        fp4io_quote(q, sizeof q, j->valuestring);
        return fp4io_fail(FP4_ST_E_DTYPE, f->path, t->name, "unknown dtype %s", q);
    }
    t->dtype_name = k_dtypes[t->dtype].name;
    return FP4_ST_OK;
}

static fp4_st_status parse_shape(const fp4_st_file *f, const cJSON *j, fp4_st_tensor *t) {
    if (!cJSON_IsArray(j))
        return fp4io_fail(FP4_ST_E_ENTRY, f->path, t->name, "\"shape\" is a JSON %s, not an "
                          "array", fp4io_json_type(j));
    int n = cJSON_GetArraySize(j);
    if (n > FP4_ST_MAX_DIMS)
        return fp4io_fail(FP4_ST_E_SHAPE, f->path, t->name, "shape has %d dims; at most %d are "
                          "supported", n, FP4_ST_MAX_DIMS);
    int i = 0;
    const char *why = "";
    for (const cJSON *d = j->child; d; d = d->next, i++)
        if (!fp4io_json_uint(d, &t->shape[i], &why))
            return fp4io_fail(FP4_ST_E_SHAPE, f->path, t->name, "shape[%d] is %s%s", i,
                              cJSON_IsNumber(d) ? "" : "a JSON ", why);
    t->ndim = n;
    return fp4io_tensor_size(t->dtype, t->ndim, t->shape, &t->numel, &t->nbytes, f->path, t->name);
}

/* Stores begin in t->offset for now (relative to the data area). */
static fp4_st_status parse_offsets(const fp4_st_file *f, const cJSON *j, fp4_st_tensor *t) {
    if (!cJSON_IsArray(j))
        return fp4io_fail(FP4_ST_E_ENTRY, f->path, t->name, "\"data_offsets\" is a JSON %s, "
                          "not an array", fp4io_json_type(j));
    if (cJSON_GetArraySize(j) != 2)
        return fp4io_fail(FP4_ST_E_OFFSETS, f->path, t->name, "\"data_offsets\" has %d entries, "
                          "not 2", cJSON_GetArraySize(j));
    int64_t v[2] = {0, 0};
    const char *why = "";
    for (int i = 0; i < 2; i++)
        if (!fp4io_json_uint(cJSON_GetArrayItem(j, i), &v[i], &why))
            return fp4io_fail(FP4_ST_E_OFFSETS, f->path, t->name, "data_offsets[%d] is %s%s",
                              i, cJSON_IsNumber(cJSON_GetArrayItem(j, i)) ? "" : "a JSON ", why);
    if (v[0] > v[1])
        return fp4io_fail(FP4_ST_E_OFFSETS, f->path, t->name, "data_offsets [%" PRId64 ", %"
                          PRId64 "] end before they begin", v[0], v[1]);
    if (v[1] > f->data_len)
        return fp4io_fail(FP4_ST_E_OFFSETS, f->path, t->name, "data_offsets [%" PRId64 ", %"
                          PRId64 "] run past the %" PRId64 "-byte data area", v[0], v[1],
                          f->data_len);
    if (v[1] - v[0] != t->nbytes) {
        char s[200];
        format_shape(s, sizeof s, t->ndim, t->shape);
        return fp4io_fail(FP4_ST_E_SIZE, f->path, t->name, "data_offsets [%" PRId64 ", %" PRId64
                          "] hold %" PRId64 " bytes, but %s %s needs %" PRId64, v[0], v[1],
                          v[1] - v[0], t->dtype_name, s, t->nbytes);
    }
    t->offset = v[0];
    return FP4_ST_OK;
}

static fp4_st_status parse_tensor(const fp4_st_file *f, const cJSON *j, fp4_st_tensor *t) {
    if (!cJSON_IsObject(j))
        return fp4io_fail(FP4_ST_E_ENTRY, f->path, t->name, "entry is a JSON %s, not an object",
                          fp4io_json_type(j));
    const cJSON *dtype = NULL, *shape = NULL, *offsets = NULL;
    fp4_st_status st = unique_field(f, j, t->name, "dtype", &dtype);
    if (st == FP4_ST_OK) st = unique_field(f, j, t->name, "shape", &shape);
    if (st == FP4_ST_OK) st = unique_field(f, j, t->name, "data_offsets", &offsets);
    if (st == FP4_ST_OK) st = parse_dtype(f, dtype, t);
    if (st == FP4_ST_OK) st = parse_shape(f, shape, t);
    if (st == FP4_ST_OK) st = parse_offsets(f, offsets, t);
    return st;
}

static int cmp_meta(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static fp4_st_status parse_metadata(fp4_st_file *f, const cJSON *j) {
    if (cJSON_IsNull(j)) return FP4_ST_OK; /* serde reads null as "no metadata" */
    if (!cJSON_IsObject(j))
        return fp4io_fail(FP4_ST_E_METADATA, f->path, NULL, "\"__metadata__\" is a JSON %s, "
                          "not an object", fp4io_json_type(j));
    int n = cJSON_GetArraySize(j);
    if (!(f->meta = calloc((size_t)n * 2 + 1, sizeof *f->meta)))
        return fp4io_fail(FP4_ST_E_NOMEM, f->path, NULL, "out of memory");
    for (const cJSON *c = j->child; c; c = c->next) {
        if (!cJSON_IsString(c)) {
            char q[256] = "";
            fp4io_quote(q, sizeof q, c->string);
            return fp4io_fail(FP4_ST_E_METADATA, f->path, NULL, "__metadata__ value for %s is a "
                              "JSON %s, not a string", q, fp4io_json_type(c));
        }
        char **slot = &f->meta[2 * f->nmeta];
        f->nmeta++; /* counted first so close() frees a partial pair */
        if (!(slot[0] = fp4io_strdup(c->string)) || !(slot[1] = fp4io_strdup(c->valuestring)))
            return fp4io_fail(FP4_ST_E_NOMEM, f->path, NULL, "out of memory");
    }
    /* Pairs sort as units: qsort over 2-pointer records. */
    qsort(f->meta, (size_t)f->nmeta, 2 * sizeof *f->meta, cmp_meta);
    for (int64_t i = 1; i < f->nmeta; i++) {
        if (strcmp(f->meta[2 * i - 2], f->meta[2 * i]) == 0) {
            char q[256] = "";
            fp4io_quote(q, sizeof q, f->meta[2 * i]);
            return fp4io_fail(FP4_ST_E_DUPLICATE, f->path, NULL, "__metadata__ key %s appears "
                              "twice", q);
        }
    }
    return FP4_ST_OK;
}

static fp4_st_status parse_entries(fp4_st_file *f, const cJSON *root) {
    int n = cJSON_GetArraySize(root);
    if (!(f->tensors = calloc((size_t)n + 1, sizeof *f->tensors)))
        return fp4io_fail(FP4_ST_E_NOMEM, f->path, NULL, "out of memory");
    bool seen_meta = false;
    for (const cJSON *c = root->child; c; c = c->next) {
        fp4_st_status st = FP4_ST_OK;
        if (strcmp(c->string, "__metadata__") == 0) {
            if (seen_meta)
                return fp4io_fail(FP4_ST_E_DUPLICATE, f->path, NULL, "\"__metadata__\" appears "
                                  "twice");
            seen_meta = true;
            st = parse_metadata(f, c);
        } else {
            fp4_st_tensor *t = &f->tensors[f->ntensors++];
            if (!(t->name = fp4io_strdup(c->string)))
                return fp4io_fail(FP4_ST_E_NOMEM, f->path, NULL, "out of memory");
            st = parse_tensor(f, c, t);
        }
        if (st != FP4_ST_OK) return st;
    }
    return FP4_ST_OK;
}

/* ---------------------------------------------------------------------------
 * Names and layout
 * ------------------------------------------------------------------------- */

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp((*(const fp4_st_tensor *const *)a)->name,
                  (*(const fp4_st_tensor *const *)b)->name);
}

/* cJSON keeps every duplicate key, so repeated names are caught here. */
static fp4_st_status index_names(fp4_st_file *f) {
    free(f->by_name);
    if (!(f->by_name = malloc(((size_t)f->ntensors + 1) * sizeof *f->by_name)))
        return fp4io_fail(FP4_ST_E_NOMEM, f->path, NULL, "out of memory");
    for (int64_t i = 0; i < f->ntensors; i++) f->by_name[i] = &f->tensors[i];
    qsort(f->by_name, (size_t)f->ntensors, sizeof *f->by_name, cmp_tensor_name);
    for (int64_t i = 1; i < f->ntensors; i++)
        if (strcmp(f->by_name[i - 1]->name, f->by_name[i]->name) == 0)
            return fp4io_fail(FP4_ST_E_DUPLICATE, f->path, f->by_name[i]->name,
                              "name appears twice in the header");
    return FP4_ST_OK;
}

typedef struct span {
    int64_t begin, end, idx; /* idx: header position, the last tie-break */
} span;

static int cmp_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

/* Sorted by offset, the tensors must tile the data area exactly: each begins
 * where the previous ended and the last ends at the end of the file. This is
 * the reference library's rule (Metadata::validate plus its
 * MetadataIncompleteBuffer check), so gaps and trailing bytes are errors, not
 * warnings: the library refuses such files and so do we. */
static fp4_st_status check_tiling(const fp4_st_file *f, const span *s) {
    int64_t pos = 0;
    for (int64_t k = 0; k < f->ntensors; k++) {
        const fp4_st_tensor *t = &f->tensors[s[k].idx];
        if (s[k].begin < pos) {
            char q[256] = "";
            fp4io_quote(q, sizeof q, f->tensors[s[k - 1].idx].name);
            return fp4io_fail(FP4_ST_E_OVERLAP, f->path, t->name, "data [%" PRId64 ", %" PRId64
                              ") overlaps tensor %s, which ends at %" PRId64, s[k].begin,
                              s[k].end, q, pos);
        }
        if (s[k].begin > pos)
            return fp4io_fail(FP4_ST_E_GAP, f->path, NULL, "data area bytes [%" PRId64 ", %"
                              PRId64 ") belong to no tensor", pos, s[k].begin);
        pos = s[k].end;
    }
    if (pos != f->data_len)
        return fp4io_fail(FP4_ST_E_GAP, f->path, NULL, "the last %" PRId64 " bytes of the data "
                          "area belong to no tensor", f->data_len - pos);
    return FP4_ST_OK;
}

/* Puts the tensors in file order and points them into the data area. */
static fp4_st_status layout(fp4_st_file *f) {
    size_t n = (size_t)f->ntensors;
    span *s = malloc((n + 1) * sizeof *s);
    fp4_st_tensor *ordered = calloc(n + 1, sizeof *ordered);
    fp4_st_status st = FP4_ST_OK;
    if (!s || !ordered) st = fp4io_fail(FP4_ST_E_NOMEM, f->path, NULL, "out of memory");
    for (size_t i = 0; st == FP4_ST_OK && i < n; i++)
        s[i] = (span){f->tensors[i].offset, f->tensors[i].offset + f->tensors[i].nbytes,
                      (int64_t)i};
    if (st == FP4_ST_OK) {
        qsort(s, n, sizeof *s, cmp_span);
        st = check_tiling(f, s);
    }
    if (st == FP4_ST_OK) {
        for (size_t k = 0; k < n; k++) {
            ordered[k] = f->tensors[s[k].idx];
            ordered[k].data = f->data + ordered[k].offset;
            ordered[k].offset += 8 + f->header_len;
        }
        free(f->tensors);
        f->tensors = ordered;
        ordered = NULL;
    }
    free(s);
    free(ordered);
    return st;
}

static fp4_st_status parse_file(fp4_st_file *f) {
    fp4_st_status st = check_prefix(f);
    cJSON *root = NULL;
    if (st == FP4_ST_OK) st = parse_json(f, &root);
    if (st == FP4_ST_OK) st = parse_entries(f, root);
    cJSON_Delete(root);
    if (st == FP4_ST_OK) st = index_names(f);
    if (st == FP4_ST_OK) st = layout(f);
    if (st == FP4_ST_OK) st = index_names(f); /* again: pointers into the new order */
    return st;
}

/* ---------------------------------------------------------------------------
 * Open / close
 * ------------------------------------------------------------------------- */

void fp4_st_close(fp4_st_file *f) {
    if (!f) return;
    for (int64_t i = 0; i < f->ntensors; i++) free((char *)f->tensors[i].name);
    for (int64_t i = 0; i < 2 * f->nmeta; i++) free(f->meta[i]);
    free(f->tensors);
    free(f->by_name);
    free(f->meta);
    if (f->mapped && f->size) munmap((void *)f->base, f->size);
    free(f->path);
    free(f);
}

static fp4_st_status new_file(const char *label, fp4_st_file **out) {
    fp4_st_file *f = calloc(1, sizeof *f);
    if (f && !(f->path = fp4io_strdup(label))) {
        free(f);
        f = NULL;
    }
    if (!f) return fp4io_fail(FP4_ST_E_NOMEM, label, NULL, "out of memory");
    *out = f;
    return FP4_ST_OK;
}

static fp4_st_status finish_open(fp4_st_file *f, fp4_st_file **out) {
    fp4_st_status st = parse_file(f);
    if (st != FP4_ST_OK) {
        fp4_st_close(f);
        return st;
    }
    *out = f;
    return FP4_ST_OK;
}

fp4_st_status fp4_st_open_memory(const void *buf, size_t len, const char *label,
                                 fp4_st_file **out) {
    if (!out) return fp4io_fail(FP4_ST_E_ARG, label, NULL, "NULL output pointer");
    *out = NULL;
    if (!buf && len) return fp4io_fail(FP4_ST_E_ARG, label, NULL, "NULL buffer");
    fp4_st_file *f = NULL;
    fp4_st_status st = new_file(label ? label : "<memory>", &f);
    if (st != FP4_ST_OK) return st;
    f->base = buf ? buf : (const uint8_t *)"";
    f->size = len;
    return finish_open(f, out);
}

/* Maps the file; a file under 8 bytes is not mapped (mmap refuses length 0
 * and check_prefix reports it). */
static fp4_st_status map_file(fp4_st_file *f, int fd) {
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return fp4io_fail(FP4_ST_E_IO, f->path, NULL, "cannot stat: %s", strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return fp4io_fail_path(f->path, 0, "not a regular file");
    f->size = (size_t)sb.st_size;
    f->base = (const uint8_t *)"";
    if (f->size < 8) return FP4_ST_OK;
    void *p = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED)
        return fp4io_fail(FP4_ST_E_IO, f->path, NULL, "cannot map: %s", strerror(errno));
    f->base = p;
    f->mapped = true;
    return FP4_ST_OK;
}

/* O_NONBLOCK: opening a FIFO by mistake must fail (not a regular file), not
 * hang; it changes nothing for regular files. */
fp4_st_status fp4_st_open(const char *path, fp4_st_file **out) {
    if (!out) return fp4io_fail(FP4_ST_E_ARG, path, NULL, "NULL output pointer");
    *out = NULL;
    if (!path) return fp4io_fail(FP4_ST_E_ARG, NULL, NULL, "NULL path");
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return fp4io_fail_path(path, errno, "cannot open: %s", strerror(errno));
    fp4_st_file *f = NULL;
    fp4_st_status st = new_file(path, &f);
    if (st == FP4_ST_OK) st = map_file(f, fd);
    close(fd); /* the mapping stays valid */
    if (st != FP4_ST_OK) {
        fp4_st_close(f);
        return st;
    }
    return finish_open(f, out);
}

/* ---------------------------------------------------------------------------
 * Queries
 * ------------------------------------------------------------------------- */

const char *fp4_st_path(const fp4_st_file *f) { return f ? f->path : NULL; }
int64_t fp4_st_count(const fp4_st_file *f) { return f ? f->ntensors : 0; }
int64_t fp4_st_header_len(const fp4_st_file *f) { return f ? f->header_len : 0; }
int64_t fp4_st_data_len(const fp4_st_file *f) { return f ? f->data_len : 0; }

const fp4_st_tensor *fp4_st_at(const fp4_st_file *f, int64_t i) {
    return (f && i >= 0 && i < f->ntensors) ? &f->tensors[i] : NULL;
}

static int cmp_key_tensor(const void *key, const void *elem) {
    return strcmp(key, (*(const fp4_st_tensor *const *)elem)->name);
}

const fp4_st_tensor *fp4_st_find(const fp4_st_file *f, const char *name) {
    if (!f || !name || f->ntensors == 0) return NULL;
    const fp4_st_tensor *const *hit =
        bsearch(name, f->by_name, (size_t)f->ntensors, sizeof *f->by_name, cmp_key_tensor);
    return hit ? *hit : NULL;
}

fp4_st_status fp4_st_get(const fp4_st_file *f, const char *name, const fp4_st_tensor **out) {
    if (!f || !name || !out) return fp4io_fail(FP4_ST_E_ARG, NULL, NULL, "NULL argument");
    *out = fp4_st_find(f, name);
    if (!*out)
        return fp4io_fail(FP4_ST_E_NOT_FOUND, f->path, name, "no such tensor (the file has %"
                          PRId64 ")", f->ntensors);
    return FP4_ST_OK;
}

static bool shape_matches(const fp4_st_tensor *t, int32_t ndim, const int64_t *shape) {
    if (ndim < 0) return true;
    if (t->ndim != ndim) return false;
    for (int32_t i = 0; i < ndim; i++)
        if (shape[i] >= 0 && shape[i] != t->shape[i]) return false;
    return true;
}

fp4_st_status fp4_st_expect(const fp4_st_tensor *t, const char *where, fp4_st_dtype dtype,
                            int32_t ndim, const int64_t *shape) {
    if (!t || ndim > FP4_ST_MAX_DIMS || (ndim > 0 && !shape))
        return fp4io_fail(FP4_ST_E_ARG, where, NULL, "bad argument to fp4_st_expect");
    if (t->dtype == dtype && shape_matches(t, ndim, shape)) return FP4_ST_OK;
    char want[200] = "", have[200] = "";
    if (ndim >= 0) format_shape(want, sizeof want, ndim, shape);
    format_shape(have, sizeof have, t->ndim, t->shape);
    const char *wname = fp4_st_dtype_name(dtype);
    return fp4io_fail(FP4_ST_E_MISMATCH, where, t->name, "expected %s%s%s, found %s %s",
                      wname ? wname : "?", ndim >= 0 ? " " : "", want, t->dtype_name, have);
}

static int cmp_key_meta(const void *key, const void *elem) {
    return strcmp(key, *(char *const *)elem);
}

const char *fp4_st_metadata(const fp4_st_file *f, const char *key) {
    if (!f || !key || f->nmeta == 0) return NULL;
    char **hit = bsearch(key, f->meta, (size_t)f->nmeta, 2 * sizeof *f->meta, cmp_key_meta);
    return hit ? hit[1] : NULL;
}

int64_t fp4_st_metadata_count(const fp4_st_file *f) { return f ? f->nmeta : 0; }

int fp4_st_metadata_at(const fp4_st_file *f, int64_t i, const char **key, const char **value) {
    if (!f || i < 0 || i >= f->nmeta) return -1;
    if (key) *key = f->meta[2 * i];
    if (value) *value = f->meta[2 * i + 1];
    return 0;
}

void fp4_st_advise(const fp4_st_file *f, const fp4_st_tensor *t, fp4_st_advice advice) {
    if (!f || !t || !f->mapped || t->nbytes == 0) return;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = (uintptr_t)t->data & ~(page - 1);
    uintptr_t hi = (uintptr_t)t->data + (uintptr_t)t->nbytes;
    /* MADV_DONTNEED on a clean read-only file mapping only drops pages; the
     * next touch re-reads them (posix_madvise's DONTNEED is a no-op in glibc). */
    (void)madvise((void *)lo, hi - lo, advice == FP4_ST_DONTNEED ? MADV_DONTNEED : MADV_WILLNEED);
}
