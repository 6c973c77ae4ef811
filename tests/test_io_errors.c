/* test_io_errors.c - every malformation the safetensors reader must reject
 * gets its own file, built here byte by byte, and must produce the right
 * status and a one-line message naming the file (and the tensor where there
 * is one). Near-misses that real writers produce must be accepted. */
#include "test_io_util.h"

/* Headers are written with ' for " to keep the table readable. */
static char *dequote(const char *s) {
    char *d = strdup(s);
    for (char *p = d; *p; p++)
        if (*p == '\'') *p = '"';
    return d;
}

typedef struct bad_case {
    const char *what;
    const char *header; /* ' stands for " */
    size_t data_len;
    fp4_st_status want;
    const char *tensor; /* must be named in the message; NULL: none */
    const char *needle; /* must appear in the message; NULL: none */
} bad_case;

/* One tensor 'w' with the given raw dtype, shape and offsets JSON. */
#define W(dt, shape, off) "{'w':{'dtype':" dt ",'shape':" shape ",'data_offsets':" off "}}"
#define F32(name, n, b, e) \
    "'" name "':{'dtype':'F32','shape':[" #n "],'data_offsets':[" #b "," #e "]}"

static const bad_case k_bad[] = {
    /* JSON level */
    {"not JSON", "{'w':", 0, FP4_ST_E_JSON, NULL, "not valid JSON"},
    {"trailing garbage", "{} x", 0, FP4_ST_E_JSON, NULL, "not valid JSON"},
    {"two objects", "{}{}", 0, FP4_ST_E_JSON, NULL, "not valid JSON"},
    {"array root", "[]", 0, FP4_ST_E_JSON, NULL, "not an object"},
    {"string root", "'w'", 0, FP4_ST_E_JSON, NULL, "not an object"},
    {"number root", "42", 0, FP4_ST_E_JSON, NULL, "not an object"},
    {"only spaces", "        ", 0, FP4_ST_E_JSON, NULL, "not valid JSON"},
    {"invalid UTF-8", "{'w\xff':1}", 0, FP4_ST_E_JSON, NULL, "UTF-8"},
    {"overlong UTF-8", "{'w\xc0\xaf':1}", 0, FP4_ST_E_JSON, NULL, "UTF-8"},
    {"UTF-8 surrogate", "{'w\xed\xa0\x80':1}", 0, FP4_ST_E_JSON, NULL, "UTF-8"},
    {"truncated UTF-8", "{'w':1}\xe2\x82", 0, FP4_ST_E_JSON, NULL, "UTF-8"},
    {"control byte outside strings", "{\x01}", 0, FP4_ST_E_JSON, NULL, "control byte"},
    {"form feed as whitespace", "{\f}", 0, FP4_ST_E_JSON, NULL, "control byte"},
    {"raw newline in a name", "{'a\nb':1}", 0, FP4_ST_E_JSON, NULL, "control byte"},
    {"escaped NUL in a name", "{'a\\u0000b':1}", 0, FP4_ST_E_JSON, NULL, "u0000"},
    {"lone surrogate escape", "{'a\\ud800':1}", 0, FP4_ST_E_JSON, NULL, "not valid JSON"},
    /* entry level */
    {"entry is a number", "{'w':1}", 0, FP4_ST_E_ENTRY, "w", "not an object"},
    {"entry is an array", "{'w':[]}", 0, FP4_ST_E_ENTRY, "w", "not an object"},
    {"entry is null", "{'w':null}", 0, FP4_ST_E_ENTRY, "w", "not an object"},
    {"missing dtype", "{'w':{'shape':[1],'data_offsets':[0,4]}}", 4, FP4_ST_E_ENTRY, "w",
     "missing \"dtype\""},
    {"missing shape", "{'w':{'dtype':'F32','data_offsets':[0,4]}}", 4, FP4_ST_E_ENTRY, "w",
     "missing \"shape\""},
    {"missing data_offsets", "{'w':{'dtype':'F32','shape':[1]}}", 4, FP4_ST_E_ENTRY, "w",
     "missing \"data_offsets\""},
    {"field names are case-sensitive", "{'w':{'DTYPE':'F32','shape':[1],'data_offsets':[0,4]}}",
     4, FP4_ST_E_ENTRY, "w", "missing \"dtype\""},
    {"field twice", "{'w':{'dtype':'F32','dtype':'F32','shape':[1],'data_offsets':[0,4]}}", 4,
     FP4_ST_E_ENTRY, "w", "twice"},
    {"dtype is a number", W("7", "[1]", "[0,4]"), 4, FP4_ST_E_ENTRY, "w", "not a string"},
    {"dtype is null", W("null", "[1]", "[0,4]"), 4, FP4_ST_E_ENTRY, "w", "not a string"},
    {"shape is a string", W("'F32'", "'1'", "[0,4]"), 4, FP4_ST_E_ENTRY, "w", "not an array"},
    {"shape is an object", W("'F32'", "{}", "[0,4]"), 4, FP4_ST_E_ENTRY, "w", "not an array"},
    {"data_offsets is a number", W("'F32'", "[1]", "4"), 4, FP4_ST_E_ENTRY, "w", "not an array"},
    /* dtype */
    {"unknown dtype", W("'F7'", "[1]", "[0,1]"), 1, FP4_ST_E_DTYPE, "w", "'F7'"},
    {"lowercase dtype", W("'f32'", "[1]", "[0,4]"), 4, FP4_ST_E_DTYPE, "w", "'f32'"},
    {"torch dtype name", W("'float32'", "[1]", "[0,4]"), 4, FP4_ST_E_DTYPE, "w", "float32"},
    {"empty dtype", W("''", "[1]", "[0,4]"), 4, FP4_ST_E_DTYPE, "w", "unknown dtype"},
    /* shape */
    {"negative dim", W("'F32'", "[-1]", "[0,4]"), 4, FP4_ST_E_SHAPE, "w", "negative"},
    {"fractional dim", W("'F32'", "[1.5]", "[0,4]"), 4, FP4_ST_E_SHAPE, "w", "not an integer"},
    {"huge dim", W("'F32'", "[1e20]", "[0,4]"), 4, FP4_ST_E_SHAPE, "w", "2^53"},
    {"dim 2^53+2", W("'U8'", "[9007199254740994]", "[0,4]"), 4, FP4_ST_E_SHAPE, "w", "2^53"},
    {"dim is a string", W("'F32'", "['1']", "[0,4]"), 4, FP4_ST_E_SHAPE, "w", "string"},
    {"dim is null", W("'F32'", "[null]", "[0,4]"), 4, FP4_ST_E_SHAPE, "w", "null"},
    {"nine dims", W("'U8'", "[1,1,1,1,1,1,1,1,1]", "[0,1]"), 1, FP4_ST_E_SHAPE, "w", "9 dims"},
    {"element count overflow", W("'U8'", "[4294967296,4294967296]", "[0,1]"), 1, FP4_ST_E_SHAPE,
     "w", "overflow"},
    {"overflow before a zero dim", W("'U8'", "[9007199254740992,9007199254740992,0]", "[0,0]"),
     0, FP4_ST_E_SHAPE, "w", "overflow"},
    {"dim 2^62", W("'F64'", "[4611686018427387904]", "[0,8]"), 8, FP4_ST_E_SHAPE, "w", "2^53"},
    {"element count overflow, dims below 2^53", W("'F64'", "[4194304,4194304,4194304]", "[0,8]"),
     8, FP4_ST_E_SHAPE, "w", "element count overflows"},
    {"bit count overflow", W("'F64'", "[1073741824,1073741824]", "[0,8]"), 8, FP4_ST_E_SHAPE, "w",
     "bit count overflows"},
    /* data_offsets */
    {"three offsets", W("'F32'", "[1]", "[0,4,4]"), 4, FP4_ST_E_OFFSETS, "w", "not 2"},
    {"one offset", W("'F32'", "[1]", "[4]"), 4, FP4_ST_E_OFFSETS, "w", "not 2"},
    {"negative offset", W("'F32'", "[1]", "[-4,0]"), 4, FP4_ST_E_OFFSETS, "w", "negative"},
    {"fractional offset", W("'F32'", "[1]", "[0,4.5]"), 4, FP4_ST_E_OFFSETS, "w",
     "not an integer"},
    {"offset is a string", W("'F32'", "[1]", "[0,'4']"), 4, FP4_ST_E_OFFSETS, "w", "string"},
    {"begin after end", W("'F32'", "[1]", "[4,0]"), 4, FP4_ST_E_OFFSETS, "w", "end before"},
    {"end past the data", W("'F32'", "[1]", "[0,4]"), 3, FP4_ST_E_OFFSETS, "w", "3-byte data"},
    {"begin past the data", W("'U8'", "[0]", "[9,9]"), 4, FP4_ST_E_OFFSETS, "w", "4-byte data"},
    /* byte size */
    {"too few bytes", W("'F32'", "[2]", "[0,4]"), 4, FP4_ST_E_SIZE, "w", "needs 8"},
    {"too many bytes", W("'F32'", "[1]", "[0,8]"), 8, FP4_ST_E_SIZE, "w", "needs 4"},
    {"scalar needs its bytes", W("'F64'", "[]", "[0,4]"), 4, FP4_ST_E_SIZE, "w", "needs 8"},
    {"zero elements but bytes", W("'F32'", "[0,3]", "[0,4]"), 4, FP4_ST_E_SIZE, "w", "needs 0"},
    {"F4 odd element count", W("'F4'", "[3]", "[0,2]"), 2, FP4_ST_E_SIZE, "w", "even last"},
    {"F4 odd last dim", W("'F4'", "[2,3]", "[0,3]"), 3, FP4_ST_E_SIZE, "w", "even last"},
    {"F4 scalar", W("'F4'", "[]", "[0,1]"), 1, FP4_ST_E_SIZE, "w", "even last"},
    {"F4 counted in bytes", W("'F4'", "[4]", "[0,4]"), 4, FP4_ST_E_SIZE, "w", "needs 2"},
    {"F6 partial byte", W("'F6_E2M3'", "[3]", "[0,3]"), 3, FP4_ST_E_SIZE, "w", "whole bytes"},
    /* layout */
    {"overlap", "{" F32("a", 2, 0, 8) "," F32("b", 2, 4, 12) "}", 12, FP4_ST_E_OVERLAP, "b",
     "'a'"},
    {"same range twice", "{" F32("a", 1, 0, 4) "," F32("b", 1, 0, 4) "}", 4, FP4_ST_E_OVERLAP,
     "b", "'a'"},
    {"zero-size inside another", "{" F32("a", 2, 0, 8) "," F32("z", 0, 4, 4) "}", 8,
     FP4_ST_E_OVERLAP, "z", "'a'"},
    {"gap between tensors", "{" F32("a", 1, 0, 4) "," F32("b", 1, 8, 12) "}", 12, FP4_ST_E_GAP,
     NULL, "[4, 8)"},
    {"gap at the start", "{" F32("a", 1, 4, 8) "}", 8, FP4_ST_E_GAP, NULL, "[0, 4)"},
    {"trailing bytes", "{" F32("a", 1, 0, 4) "}", 8, FP4_ST_E_GAP, NULL, "last 4 bytes"},
    {"data but no tensors", "{}", 1, FP4_ST_E_GAP, NULL, "last 1 bytes"},
    /* names */
    {"duplicate tensor", "{" F32("a", 1, 0, 4) "," F32("a", 1, 4, 8) "}", 8, FP4_ST_E_DUPLICATE,
     "a", "twice"},
    {"duplicate zero-size tensor", "{" F32("z", 0, 0, 0) "," F32("z", 0, 0, 0) "}", 0,
     FP4_ST_E_DUPLICATE, "z", "twice"},
    {"duplicate __metadata__", "{'__metadata__':{},'__metadata__':{}}", 0, FP4_ST_E_DUPLICATE,
     NULL, "__metadata__"},
    {"duplicate metadata key", "{'__metadata__':{'k':'1','k':'2'}}", 0, FP4_ST_E_DUPLICATE, NULL,
     "'k'"},
    /* metadata */
    {"metadata is a string", "{'__metadata__':'pt'}", 0, FP4_ST_E_METADATA, NULL, "not an object"},
    {"metadata is an array", "{'__metadata__':[]}", 0, FP4_ST_E_METADATA, NULL, "not an object"},
    {"metadata value is a number", "{'__metadata__':{'format':1}}", 0, FP4_ST_E_METADATA, NULL,
     "'format'"},
    {"metadata value is an object", "{'__metadata__':{'a':{}}}", 0, FP4_ST_E_METADATA, NULL,
     "'a'"},
};

/* Files the reference library (or a tolerant writer) produces. */
typedef struct good_case {
    const char *what;
    const char *header;
    size_t data_len;
    int64_t ntensors;
} good_case;

static const good_case k_good[] = {
    {"empty object", "{}", 0, 0},
    {"padded with spaces", "{}      ", 0, 0},
    {"JSON whitespace around", " \t\r\n{ } \n", 0, 0},
    {"null metadata", "{'__metadata__':null}", 0, 0},
    {"empty metadata", "{'__metadata__':{}}", 0, 0},
    {"zero-size tensor at the end", "{" F32("a", 1, 0, 4) "," F32("z", 0, 4, 4) "}", 4, 2},
    {"zero-size tensors only", "{" F32("y", 0, 0, 0) "," F32("z", 0, 0, 0) "}", 0, 2},
    {"header order differs from file order", "{" F32("b", 1, 4, 8) "," F32("a", 1, 0, 4) "}", 8,
     2},
    {"extra fields are ignored", "{'w':{'dtype':'U8','shape':[2],'data_offsets':[0,2],'x':1}}", 2,
     1},
    {"unpadded header", "{'w':{'dtype':'U8','shape':[3],'data_offsets':[0,3]}}", 3, 1},
    {"dims spelled as floats", W("'F32'", "[2.0]", "[0,8e0]"), 8, 1},
    {"F4 even last dim", W("'F4'", "[3,2]", "[0,3]"), 3, 1},
    {"F6 four elements", W("'F6_E3M2'", "[4]", "[0,3]"), 3, 1},
    {"eight dims", W("'U8'", "[1,1,1,1,1,1,1,2]", "[0,2]"), 2, 1},
    {"escapes in names", "{'a\\'b\\\\c\\n\\u00e9':{'dtype':'U8','shape':[1],'data_offsets':[0,1]}}",
     1, 1},
    {"negative zero", W("'U8'", "[-0]", "[0,0]"), 0, 1},
};

static void check_message(const char *what, const char *label, const char *tensor,
                          const char *needle) {
    const char *m = fp4_last_error();
    fp4t_check(tio_msg_ok(m), "%s: message not one non-empty line: '%s'", what, m);
    fp4t_check(strstr(m, label) != NULL, "%s: message lacks the file: %s", what, m);
    if (tensor) {
        char q[128];
        snprintf(q, sizeof q, "tensor '%s'", tensor);
        fp4t_check(strstr(m, q) != NULL, "%s: message lacks %s: %s", what, q, m);
    }
    if (needle) fp4t_check(strstr(m, needle) != NULL, "%s: message lacks '%s': %s", what, needle, m);
}

static void run_bad(int i, const bad_case *c) {
    char *h = dequote(c->header);
    char label[64];
    snprintf(label, sizeof label, "bad-%02d.safetensors", i);
    size_t len = 0;
    uint8_t *img = tio_image(h, c->data_len, &len);
    fp4_st_file *f = (fp4_st_file *)1;
    fp4_st_status st = fp4_st_open_memory(img, len, label, &f);
    fp4t_check(st == c->want, "%s: status %s, want %s (%s)", c->what, fp4_st_status_name(st),
               fp4_st_status_name(c->want), fp4_last_error());
    fp4t_check(f == NULL, "%s: handle not NULL on failure", c->what);
    check_message(c->what, label, c->tensor, c->needle);
    fp4_st_close(f);
    free(img);
    free(h);
}

static void run_good(const good_case *c) {
    char *h = dequote(c->header);
    size_t len = 0;
    uint8_t *img = tio_image(h, c->data_len, &len);
    fp4_st_file *f = NULL;
    fp4_st_status st = fp4_st_open_memory(img, len, "good.safetensors", &f);
    fp4t_check(st == FP4_ST_OK, "%s: rejected: %s", c->what, fp4_last_error());
    if (f) fp4t_check(fp4_st_count(f) == c->ntensors, "%s: %lld tensors", c->what,
                      (long long)fp4_st_count(f));
    fp4_st_close(f);
    free(img);
    free(h);
}

/* Length-field cases: the header text is fine, the 8 bytes before it lie. */
static void run_length(const char *what, uint64_t n, size_t file_len, fp4_st_status want,
                       const char *needle) {
    uint8_t buf[64];
    memset(buf, ' ', sizeof buf);
    memcpy(buf + 8, "{}", 2);
    tio_le64(buf, n);
    fp4_st_file *f = NULL;
    fp4_st_status st = fp4_st_open_memory(buf, file_len, "len.safetensors", &f);
    fp4t_check(st == want, "%s: status %s, want %s (%s)", what, fp4_st_status_name(st),
               fp4_st_status_name(want), fp4_last_error());
    if (want != FP4_ST_OK) check_message(what, "len.safetensors", NULL, needle);
    fp4_st_close(f);
}

static void test_lengths(void) {
    run_length("empty file", 2, 0, FP4_ST_E_TRUNCATED, "0 bytes");
    run_length("7-byte file", 2, 7, FP4_ST_E_TRUNCATED, "7 bytes");
    run_length("header length 0", 0, 16, FP4_ST_E_HEADER_LEN, "is 0");
    run_length("header past the end", 9, 16, FP4_ST_E_TRUNCATED, "past the end");
    run_length("header far past the end", 4096, 16, FP4_ST_E_TRUNCATED, "past the end");
    run_length("header over 100 MB", 100000001, 16, FP4_ST_E_HEADER_LEN, "limit");
    run_length("header length 2^63", (uint64_t)1 << 63, 16, FP4_ST_E_HEADER_LEN, "limit");
    run_length("header length 2^64-1", UINT64_MAX, 16, FP4_ST_E_HEADER_LEN, "limit");
    run_length("header length exact", 8, 16, FP4_ST_OK, NULL);
}

/* The same rules through fp4_st_open (mmap), plus what only files have. */
static void test_files(void) {
    fp4_st_file *f = NULL;
    const char *missing = tio_path("missing.safetensors");
    fp4t_check(fp4_st_open(missing, &f) == FP4_ST_E_IO && f == NULL, "missing file accepted");
    check_message("missing file", "missing.safetensors", NULL, "No such file");
    fp4t_check(fp4_st_open(tio_dir(), &f) == FP4_ST_E_IO, "directory accepted");
    check_message("directory", tio_dir(), NULL, "regular file");
    const char *fifo = tio_path("fifo.safetensors");
    if (mkfifo(fifo, 0600) == 0) { /* must not block waiting for a writer */
        fp4t_check(fp4_st_open(fifo, &f) == FP4_ST_E_IO, "FIFO accepted");
        check_message("FIFO", "fifo.safetensors", NULL, "regular file");
    }
    const char *empty = tio_path("empty.safetensors");
    tio_write(empty, "", 0);
    fp4t_check(fp4_st_open(empty, &f) == FP4_ST_E_TRUNCATED, "empty file accepted");
    check_message("empty file", "empty.safetensors", NULL, "0 bytes");
    size_t len = 0;
    char *h = dequote("{" F32("a", 1, 0, 4) "}");
    uint8_t *img = tio_image(h, 8, &len);
    const char *trail = tio_path("trail.safetensors");
    tio_write(trail, img, len);
    fp4t_check(fp4_st_open(trail, &f) == FP4_ST_E_GAP, "trailing bytes accepted from a file");
    check_message("trailing bytes (file)", "trail.safetensors", NULL, "last 4 bytes");
    fp4t_check(fp4_st_open(NULL, &f) == FP4_ST_E_ARG, "NULL path accepted");
    fp4t_check(fp4_st_open(trail, NULL) == FP4_ST_E_ARG, "NULL out accepted");
    free(img);
    free(h);
}

/* Names from files are escaped in messages so they stay one line. */
static void test_hostile_names(void) {
    char *h = dequote("{'evil\\nname\\r\\u0007':{'dtype':'F7','shape':[1],'data_offsets':[0,1]}}");
    size_t len = 0;
    uint8_t *img = tio_image(h, 1, &len);
    fp4_st_file *f = NULL;
    fp4t_check(fp4_st_open_memory(img, len, "label\nwith newline", &f) == FP4_ST_E_DTYPE,
               "hostile name: wrong status");
    const char *m = fp4_last_error();
    fp4t_check(tio_msg_ok(m), "hostile name broke the line: %s", m);
    fp4t_check(strstr(m, "evil\\x0aname\\x0d\\x07") != NULL, "name not escaped: %s", m);
    free(img);
    free(h);
    char big[3000];
    memset(big, 'n', sizeof big);
    memcpy(big, "{'", 2);
    snprintf(big + 2000, sizeof big - 2000, "':1}");
    h = dequote(big);
    img = tio_image(h, 0, &len);
    fp4t_check(fp4_st_open_memory(img, len, "long.safetensors", &f) == FP4_ST_E_ENTRY,
               "long name: wrong status");
    fp4t_check(strstr(fp4_last_error(), "...") != NULL && strlen(fp4_last_error()) < 1024,
               "long name not shortened: %s", fp4_last_error());
    free(img);
    free(h);
}

int main(void) {
    fp4t_begin("test_io_errors");
    int nbad = (int)(sizeof k_bad / sizeof k_bad[0]);
    for (int i = 0; i < nbad; i++) run_bad(i, &k_bad[i]);
    for (size_t i = 0; i < sizeof k_good / sizeof k_good[0]; i++) run_good(&k_good[i]);
    test_lengths();
    test_files();
    test_hostile_names();
    tio_cleanup();
    return fp4t_end();
}
