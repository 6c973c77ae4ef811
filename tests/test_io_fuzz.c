/* test_io_fuzz.c - deterministic mutation fuzzing of the safetensors reader.
 *
 * Valid files made by the writer are mutated (bit flips, byte pokes,
 * truncation, header-length edits, digit and token edits inside the JSON,
 * deletions, duplications, splices) with Philox-keyed choices, so iteration i
 * of seed s is always the same input. Each input sits in a buffer of exactly
 * its own length (AddressSanitizer sees any read past it). Every result must
 * be either a clean failure (status, NULL handle, one-line message naming the
 * input) or a file whose tensors all lie inside the buffer, tile the data
 * area, and survive a write/read round trip. FP4SIM_IO_FUZZ_ITERS overrides
 * the iteration count (default 20000); FP4SIM_SEED the seed. */
#include "test_io_util.h"

enum { STREAM_OP = 11, STREAM_ARG = 12 };

typedef struct buf {
    uint8_t *p;
    size_t len;
} buf;

typedef struct rng {
    uint64_t seed;
    uint64_t iter;
    uint32_t draws;
} rng;

static uint32_t draw(rng *r) {
    return fp4t_rand32(r->seed, STREAM_ARG, (r->iter << 16) | (r->draws++ & 0xFFFF));
}

static uint32_t below(rng *r, uint32_t n) { return n ? draw(r) % n : 0; }

/* ---------------------------------------------------------------------------
 * Seeds
 * ------------------------------------------------------------------------- */

static buf finish(fp4_st_writer *w) {
    buf b = {NULL, 0};
    fp4t_check(fp4_st_writer_finish_memory(w, &b.p, &b.len) == FP4_ST_OK, "seed: %s",
               fp4_last_error());
    return b;
}

static buf seed_mixed(void) {
    static uint8_t z[256];
    for (int i = 0; i < 256; i++) z[i] = (uint8_t)(i * 37);
    fp4_st_writer *w = NULL;
    fp4_st_writer_create(NULL, &w);
    fp4_st_writer_set_metadata(w, "format", "pt");
    fp4_st_writer_add(w, "model.layers.0.w", FP4_ST_BF16, 2, (int64_t[]){4, 8}, z, 64);
    fp4_st_writer_add(w, "model.layers.0.w_scale", FP4_ST_F8_E4M3, 2, (int64_t[]){4, 2}, z, 8);
    fp4_st_writer_add(w, "model.layers.0.w_scale_2", FP4_ST_F32, 0, NULL, z, 4);
    fp4_st_writer_add(w, "ids", FP4_ST_I64, 1, (int64_t[]){3}, z, 24);
    fp4_st_writer_add(w, "packed", FP4_ST_U8, 2, (int64_t[]){4, 8}, z, 32);
    return finish(w);
}

static buf seed_small_types(void) {
    static uint8_t z[64];
    fp4_st_writer *w = NULL;
    fp4_st_writer_create(NULL, &w);
    fp4_st_writer_add(w, "f4", FP4_ST_F4, 2, (int64_t[]){3, 4}, z, 6);
    fp4_st_writer_add(w, "f6", FP4_ST_F6_E3M2, 1, (int64_t[]){8}, z, 6);
    fp4_st_writer_add(w, "empty", FP4_ST_F16, 3, (int64_t[]){2, 0, 5}, NULL, 0);
    fp4_st_writer_add(w, "scalar", FP4_ST_C64, 0, NULL, z, 8);
    fp4_st_writer_add(w, "flag", FP4_ST_BOOL, 1, (int64_t[]){1}, z, 1);
    return finish(w);
}

static buf seed_names(void) {
    static uint8_t z[8];
    fp4_st_writer *w = NULL;
    fp4_st_writer_create(NULL, &w);
    fp4_st_writer_set_metadata(w, "k\"\\", "v\n\xc3\xa9");
    fp4_st_writer_add(w, "a\"b\\c\x01\xf0\x9f\x98\x80", FP4_ST_U8, 1, (int64_t[]){2}, z, 2);
    fp4_st_writer_add(w, "", FP4_ST_I16, 1, (int64_t[]){1}, z, 2);
    return finish(w);
}

static buf seed_empty(void) {
    fp4_st_writer *w = NULL;
    fp4_st_writer_create(NULL, &w);
    return finish(w);
}

/* ---------------------------------------------------------------------------
 * Mutations (each edits *b in place, reallocating as needed)
 * ------------------------------------------------------------------------- */

static uint64_t header_len(const buf *b) {
    uint64_t n = 0;
    for (int i = 0; b->len >= 8 && i < 8; i++) n |= (uint64_t)b->p[i] << (8 * i);
    return n;
}

/* Header byte range clipped to the buffer: [8, end). */
static size_t header_end(const buf *b) {
    uint64_t n = header_len(b);
    if (b->len < 8) return b->len;
    return (n > b->len - 8) ? b->len : (size_t)(8 + n);
}

static void set_header_len(buf *b, uint64_t n) {
    if (b->len >= 8) tio_le64(b->p, n);
}

static void replace(buf *b, size_t at, size_t del, const uint8_t *ins, size_t nins) {
    size_t len = b->len - del + nins;
    uint8_t *p = malloc(len + 1);
    memcpy(p, b->p, at);
    if (nins) memcpy(p + at, ins, nins);
    memcpy(p + at + nins, b->p + at + del, b->len - at - del);
    free(b->p);
    b->p = p;
    b->len = len;
}

static void mut_flip(buf *b, rng *r) {
    if (!b->len) return;
    for (uint32_t k = 1 + below(r, 8); k; k--) b->p[below(r, (uint32_t)b->len)] ^= (uint8_t)(1u << below(r, 8));
}

static void mut_poke(buf *b, rng *r) {
    static const char interesting[] = "\0\xff\"{}[],:-.e9\\ \x01u";
    if (!b->len) return;
    size_t at = below(r, 2) ? 8 + below(r, (uint32_t)(header_end(b) > 8 ? header_end(b) - 8 : 1))
                            : below(r, (uint32_t)b->len);
    if (at >= b->len) return;
    b->p[at] = below(r, 2) ? (uint8_t)draw(r) : (uint8_t)interesting[below(r, sizeof interesting - 1)];
}

static void mut_truncate(buf *b, rng *r) { b->len = below(r, (uint32_t)b->len + 1); }

static void mut_length(buf *b, rng *r) {
    uint64_t n = header_len(b);
    uint64_t choices[] = {0, 1, n + 1, n - 1, n + 8, n - 8, n * 2, b->len - 8, b->len - 7,
                          100000000, 100000001, UINT64_MAX, (uint64_t)1 << 63,
                          ((uint64_t)draw(r) << 32) | draw(r), n + below(r, 64), n - below(r, 64)};
    set_header_len(b, choices[below(r, sizeof choices / sizeof choices[0])]);
}

/* Rewrites a number inside the header: the edits that keep JSON valid but
 * move offsets and dims, where the interesting checks live. */
static void mut_digits(buf *b, rng *r) {
    size_t end = header_end(b), pos[512];
    int n = 0;
    for (size_t i = 8; i < end && n < 512; i++)
        if (b->p[i] >= '0' && b->p[i] <= '9') pos[n++] = i;
    if (!n) return;
    static const char *subs[] = {"0", "1", "-1", "1.5", "1e3", "9007199254740993", "4294967296",
                                 "99999999999999999999", "2", "-0", "7", "null", "\"8\"", "[]"};
    size_t at = pos[below(r, (uint32_t)n)];
    const char *s = below(r, 3) ? NULL : subs[below(r, sizeof subs / sizeof subs[0])];
    if (!s) {
        b->p[at] = (uint8_t)('0' + below(r, 10));
        return;
    }
    replace(b, at, 1, (const uint8_t *)s, strlen(s));
    if (below(r, 2)) set_header_len(b, header_len(b) + strlen(s) - 1);
}

/* Swaps a dtype string for another one (or garbage). */
static void mut_dtype(buf *b, rng *r) {
    static const char *names[] = {"F4", "F6_E2M3", "U8", "F8_E4M3", "BF16", "F32", "C64", "U64",
                                  "BOOL", "F7", "", "f32", "F8_E4M3FN"};
    size_t end = header_end(b);
    for (size_t i = 8 + below(r, (uint32_t)(end > 8 ? end - 8 : 1)); i + 9 < end; i++) {
        if (memcmp(b->p + i, "\"dtype\":\"", 9) != 0) continue;
        size_t s = i + 9, e = s;
        while (e < end && b->p[e] != '"') e++;
        const char *nm = names[below(r, sizeof names / sizeof names[0])];
        replace(b, s, e - s, (const uint8_t *)nm, strlen(nm));
        set_header_len(b, header_len(b) + strlen(nm) - (e - s));
        return;
    }
}

/* Position of the n-th (mod count) occurrence of pat in the header, or 0. */
static size_t find_nth(const buf *b, const char *pat, uint32_t n) {
    size_t end = header_end(b), m = strlen(pat), hits = 0, first = 0;
    for (size_t pass = 0; pass < 2; pass++) {
        size_t k = 0;
        for (size_t i = 8; i + m <= end; i++) {
            if (memcmp(b->p + i, pat, m) != 0) continue;
            if (pass == 1 && k == n % hits) return i;
            if (pass == 0 && hits++ == 0) first = i;
            k++;
        }
        if (hits == 0) return 0;
    }
    return first;
}

/* Moves one tensor's data_offsets by the same delta: sizes stay right, so
 * this is what reaches the overlap and gap checks. */
static void mut_shift(buf *b, rng *r) {
    size_t at = find_nth(b, "\"data_offsets\":[", draw(r));
    if (!at) return;
    size_t s = at + 16, e = s;
    while (e < header_end(b) && b->p[e] != ']') e++;
    unsigned long long lo = 0, hi = 0;
    char old[64];
    if (e - s >= sizeof old) return;
    memcpy(old, b->p + s, e - s);
    old[e - s] = 0;
    if (sscanf(old, "%llu,%llu", &lo, &hi) != 2) return;
    static const long long deltas[] = {-8, -4, -2, -1, 1, 2, 4, 8, 16, -16};
    long long d = deltas[below(r, 10)];
    char nu[64];
    snprintf(nu, sizeof nu, "%lld,%lld", (long long)lo + d, (long long)hi + d);
    replace(b, s, e - s, (const uint8_t *)nu, strlen(nu));
    set_header_len(b, header_len(b) + strlen(nu) - (e - s));
}

/* Repeats one tensor entry verbatim: the duplicate-name check. */
static void mut_dup_entry(buf *b, rng *r) {
    size_t o = find_nth(b, "{\"dtype\"", draw(r));
    if (o < 10 || b->p[o - 1] != ':' || b->p[o - 2] != '"') return;
    size_t ks = o - 3;
    while (ks > 8 && !(b->p[ks] == '"' && b->p[ks - 1] != '\\')) ks--;
    size_t e = o;
    while (e + 1 < header_end(b) && !(b->p[e] == ']' && b->p[e + 1] == '}')) e++;
    if (e + 1 >= header_end(b) || e + 2 - ks > 4096) return;
    size_t n = e + 2 - ks;
    uint8_t *copy = malloc(n + 1);
    copy[0] = ',';
    memcpy(copy + 1, b->p + ks, n);
    replace(b, e + 2, 0, copy, n + 1);
    set_header_len(b, header_len(b) + n + 1);
    free(copy);
}

static void mut_delete(buf *b, rng *r) {
    if (b->len < 9) return;
    size_t at = 8 + below(r, (uint32_t)(b->len - 8));
    size_t n = 1 + below(r, 16);
    if (n > b->len - at) n = b->len - at;
    bool in_header = at < header_end(b);
    replace(b, at, n, NULL, 0);
    if (in_header && below(r, 2)) set_header_len(b, header_len(b) - n);
}

static void mut_duplicate(buf *b, rng *r) {
    if (b->len < 9) return;
    size_t at = 8 + below(r, (uint32_t)(b->len - 8));
    size_t n = 1 + below(r, 32);
    if (n > b->len - at) n = b->len - at;
    uint8_t tmp[32];
    memcpy(tmp, b->p + at, n);
    bool in_header = at < header_end(b);
    replace(b, at, 0, tmp, n);
    if (in_header && below(r, 2)) set_header_len(b, header_len(b) + n);
}

/* Header of one seed with the data area of another. */
static void mut_splice(buf *b, rng *r, const buf *seeds, int nseeds) {
    const buf *o = &seeds[below(r, (uint32_t)nseeds)];
    size_t he = header_end(b), oe = header_end(o);
    replace(b, he, b->len - he, o->p + oe, o->len - oe);
}

static void mutate(buf *b, rng *r, const buf *seeds, int nseeds) {
    for (uint32_t k = 1 + below(r, 3); k; k--) {
        switch (fp4t_rand32(r->seed, STREAM_OP, r->iter * 4 + k) % 11) {
        case 0: mut_flip(b, r); break;
        case 1: mut_poke(b, r); break;
        case 2: mut_truncate(b, r); break;
        case 3: mut_length(b, r); break;
        case 4: mut_digits(b, r); break;
        case 5: mut_dtype(b, r); break;
        case 6: mut_delete(b, r); break;
        case 7: mut_duplicate(b, r); break;
        case 8: mut_shift(b, r); break;
        case 9: mut_dup_entry(b, r); break;
        default: mut_splice(b, r, seeds, nseeds); break;
        }
    }
}

/* ---------------------------------------------------------------------------
 * Checks
 * ------------------------------------------------------------------------- */

static long g_ok, g_fail[FP4_ST_STATUS_COUNT];

/* Everything a consumer may touch must lie inside the input. */
static void check_valid(const fp4_st_file *f, const buf *b, uint64_t iter) {
    const uint8_t *lo = b->p, *hi = b->p + b->len;
    int64_t pos = 8 + fp4_st_header_len(f);
    unsigned sum = 0;
    for (int64_t i = 0; i < fp4_st_count(f); i++) {
        const fp4_st_tensor *t = fp4_st_at(f, i);
        const uint8_t *d = t->data;
        int64_t numel = 0, nbytes = 0;
        fp4t_check(fp4_st_tensor_size(t->dtype, t->ndim, t->shape, &numel, &nbytes) == FP4_ST_OK &&
                   numel == t->numel && nbytes == t->nbytes, "iter %llu: sizes of %s",
                   (unsigned long long)iter, t->name);
        fp4t_check(d >= lo && d + t->nbytes <= hi && t->offset == pos && d == lo + pos,
                   "iter %llu: tensor %s outside the input", (unsigned long long)iter, t->name);
        fp4t_check(fp4_st_find(f, t->name) == t, "iter %llu: find(%s)", (unsigned long long)iter,
                   t->name);
        for (int64_t k = 0; k < t->nbytes; k++) sum += d[k]; /* ASan checks each byte */
        pos += t->nbytes;
    }
    fp4t_check((size_t)pos == b->len, "iter %llu: tensors do not tile the data area",
               (unsigned long long)iter);
    for (int64_t i = 0; i < fp4_st_metadata_count(f); i++) {
        const char *k = NULL, *v = NULL;
        fp4_st_metadata_at(f, i, &k, &v);
        fp4t_check(fp4_st_metadata(f, k) == v, "iter %llu: metadata lookup",
                   (unsigned long long)iter);
    }
    (void)sum;
}

/* What the reader accepts, the writer must reproduce and the reader reread. */
static void check_roundtrip(const fp4_st_file *f, uint64_t iter) {
    fp4_st_writer *w = NULL;
    fp4_st_writer_create(NULL, &w);
    tio_copy_tensors(f, w);
    uint8_t *out = NULL;
    size_t len = 0;
    fp4_st_status st = fp4_st_writer_finish_memory(w, &out, &len);
    fp4_st_file *g = NULL;
    if (st == FP4_ST_OK) st = fp4_st_open_memory(out, len, "rewrite", &g);
    fp4t_check(st == FP4_ST_OK && fp4_st_count(g) == fp4_st_count(f) &&
               fp4_st_metadata_count(g) == fp4_st_metadata_count(f),
               "iter %llu: round trip failed: %s", (unsigned long long)iter, fp4_last_error());
    fp4_st_close(g);
    free(out);
}

static fp4_st_status run_one(const buf *b, uint64_t iter, const char *label) {
    fp4_st_file *f = (fp4_st_file *)&g_ok; /* must be overwritten */
    fp4_st_status st = fp4_st_open_memory(b->p, b->len, label, &f);
    if (st == FP4_ST_OK) {
        g_ok++;
        check_valid(f, b, iter);
        check_roundtrip(f, iter);
        fp4_st_close(f);
        return st;
    }
    g_fail[st]++;
    const char *m = fp4_last_error();
    fp4t_check(f == NULL, "iter %llu: handle left on failure", (unsigned long long)iter);
    fp4t_check(tio_msg_ok(m) && strstr(m, label) == m, "iter %llu: bad message '%s'",
               (unsigned long long)iter, m);
    return st;
}

/* The mmap path must agree with the memory path on the same bytes. */
static void run_file(const buf *b, uint64_t iter, fp4_st_status want) {
    const char *path = tio_path("fuzz.safetensors");
    tio_write(path, b->p, b->len);
    fp4_st_file *f = NULL;
    fp4_st_status st = fp4_st_open(path, &f);
    fp4t_check(st == want, "iter %llu: file says %s, memory says %s", (unsigned long long)iter,
               fp4_st_status_name(st), fp4_st_status_name(want));
    fp4_st_close(f);
}

int main(void) {
    fp4t_begin("test_io_fuzz");
    const char *env = getenv("FP4SIM_IO_FUZZ_ITERS");
    uint64_t iters = env ? strtoull(env, NULL, 0) : 20000;
    buf seeds[4] = {seed_mixed(), seed_small_types(), seed_names(), seed_empty()};
    for (int s = 0; s < 4; s++)
        fp4t_check(run_one(&seeds[s], (uint64_t)-1, "seed") == FP4_ST_OK, "seed %d invalid", s);
    rng r = {fp4t_seed(), 0, 0};
    for (uint64_t i = 0; i < iters; i++) {
        r.iter = i;
        r.draws = 0;
        const buf *src = &seeds[fp4t_rand32(r.seed, STREAM_OP, i * 4) % 4];
        buf b = {malloc(src->len + 1), src->len};
        memcpy(b.p, src->p, src->len);
        mutate(&b, &r, seeds, 4);
        uint8_t *exact = malloc(b.len ? b.len : 1); /* no slack after the input */
        memcpy(exact, b.p, b.len);
        buf e = {exact, b.len};
        char label[48];
        snprintf(label, sizeof label, "fuzz-%llu", (unsigned long long)i);
        fp4_st_status st = run_one(&e, i, label);
        if (i % 400 == 0) run_file(&e, i, st);
        free(exact);
        free(b.p);
    }
    printf("test_io_fuzz: %llu inputs: %ld valid", (unsigned long long)iters, g_ok);
    for (int s = 1; s < FP4_ST_STATUS_COUNT; s++)
        if (g_fail[s]) printf(", %ld %s", g_fail[s], fp4_st_status_name((fp4_st_status)s));
    printf("\n");
    for (int s = 0; s < 4; s++) free(seeds[s].p);
    tio_cleanup();
    return fp4t_end();
}
