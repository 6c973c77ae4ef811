/* test_fast.c - the fast array paths against the exact scalar path.
 *
 * Default (label unit):
 *  - every FP32 pattern whose exponent lies within 3 binades of the E2M1 /
 *    E4M3 rounding thresholds (E2M1: 2^-5..2^5, E4M3: 2^-13..2^11, the
 *    latter from the smallest subnormal midpoint 2^-10 to the saturation
 *    point 464), plus the whole zero/subnormal and Inf/NaN exponent fields,
 *    both signs: fast kernel vs fp4_encode_f32, for every SIMD variant this
 *    CPU can run (fp4_simd_set reaches the portable copy too). Under
 *    sanitizers (or with FP4SIM_FAST_STRIDE=k) every k-th mantissa is taken,
 *    keeping all patterns within 64 ulps of a multiple of 2^19, where every
 *    tie and threshold of both formats lies;
 *  - edge patterns (all E2M1/E4M3 values and midpoints +-64 ulps, specials)
 *    and Philox-random patterns over all 2^32;
 *  - fp4_f32_to_codes on 1, 2 and 3 threads: identical bits; odd lengths and
 *    misaligned pointers; every other mode, policy and option (and RS with an
 *    rbits array) for every format against the scalar loop;
 *  - fp4_codes_to_f32 against the scalar decode, every code of every format.
 * --long (label long): all 2^32 inputs for both formats and every variant,
 * and fp4_f32_to_codes with all threads, timed.
 * Seed: FP4SIM_SEED (printed on failure).
 */
#include "fp4ref.h"
#include "testutil.h"

#include <math.h>
#include <omp.h>
#include <string.h>
#include <time.h>

static const char *const k_levels[] = {"portable", "avx2", "avx512"};
enum { NLEVELS = 3 };

/* Philox streams, one per use, so cases regenerate independently. */
enum { STREAM_RANDOM = 1, STREAM_THREADS, STREAM_MODES, STREAM_RBITS, STREAM_DECODE };

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "out of memory (%zu bytes)\n", n);
        exit(2);
    }
    return p;
}

/* ------------------------------------------------------------------------ */
/* Fast kernels vs exact                                                     */
/* ------------------------------------------------------------------------ */

typedef void (*fast_kernel)(uint8_t *, const float *, int64_t);

static fast_kernel kernel_for(fp4_format f) {
    return f == FP4_FMT_E2M1 ? fp4_f32_to_e2m1_rne_sat : fp4_f32_to_e4m3_rne_sat;
}

/* The exact codes, with the default options (RNE, satfinite), in parallel:
 * this is where the test spends its time. */
static void exact_codes(fp4_format f, const float *x, uint8_t *want, int64_t n) {
    fp4_cvt_opts o = fp4_cvt_opts_default();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        uint64_t c = 0;
        fp4_encode_f32(f, x[i], &o, &c, NULL);
        want[i] = (uint8_t)c;
    }
}

/* One check per element; the element-wise pass (with messages for the
 * mismatches, up to the print limit) only when memcmp finds a difference. */
static void compare_codes(const char *what, const char *level, fp4_format f, const float *x,
                          const uint8_t *got, const uint8_t *want, int64_t n) {
    if (memcmp(got, want, (size_t)n) == 0) {
        fp4t_g.checks += n;
        return;
    }
    for (int64_t i = 0; i < n; i++)
        fp4t_check(got[i] == want[i], "%s [%s] %s: x=0x%08" PRIX32 " (%a) got 0x%02X want 0x%02X",
                   what, level, fp4_format_get(f)->name, fp4t_f32_bits(x[i]), (double)x[i], got[i],
                   want[i]);
}

/* Runs the fast kernel of every SIMD variant on x and compares with want. */
static void check_all_levels(const char *what, fp4_format f, const float *x, const uint8_t *want,
                             int64_t n, uint8_t *scratch) {
    for (int l = 0; l < NLEVELS; l++) {
        if (fp4_simd_set(k_levels[l]) != 0) continue;
        memset(scratch, 0xAA, (size_t)n);
        kernel_for(f)(scratch, x, n);
        compare_codes(what, k_levels[l], f, x, scratch, want, n);
    }
    fp4_simd_set(NULL);
}

/* Exact codes of x, then every variant against them. */
static void check_fast(const char *what, fp4_format f, const float *x, int64_t n, uint8_t *want,
                       uint8_t *scratch) {
    exact_codes(f, x, want, n);
    check_all_levels(what, f, x, want, n, scratch);
}

/* True when mantissa m is within 64 ulps of a multiple of 2^19 (every E2M1
 * and E4M3 threshold, tie and representable value has such a mantissa). */
static bool near_grid(uint32_t m) {
    uint32_t r = m & ((1u << 19) - 1);
    return r <= 64 || r >= (1u << 19) - 64;
}

/* Fills x with the patterns of one binade (sign, biased exponent field)
 * that the sweep keeps; returns how many. */
static int64_t binade_patterns(uint32_t sign, uint32_t efield, uint32_t stride, float *x) {
    int64_t k = 0;
    for (uint32_t m = 0; m < (1u << 23); m++)
        if (stride <= 1 || m % stride == 0 || near_grid(m))
            x[k++] = fp4t_f32_from_bits((sign << 31) | (efield << 23) | m);
    return k;
}

/* The sweep's exponent fields for format f: 3 binades either side of the
 * threshold region, plus 0 (zero/subnormal) and 255 (Inf/NaN). */
static bool in_sweep(fp4_format f, uint32_t efield) {
    int e = (int)efield - 127;
    if (efield == 0 || efield == 255) return true;
    if (f == FP4_FMT_E2M1) return e >= -2 - 3 && e <= 2 + 3;
    return e >= -10 - 3 && e <= 8 + 3;
}

static uint32_t sweep_stride(void) {
    const char *s = getenv("FP4SIM_FAST_STRIDE");
    if (s) return (uint32_t)strtoul(s, NULL, 0);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
    return 16; /* sanitized exact path is several times slower */
#else
    return 1;
#endif
}

static void test_binade_sweep(void) {
    uint32_t stride = sweep_stride();
    float *x = xmalloc(sizeof(float) << 23);
    uint8_t *want = xmalloc(1u << 23), *got = xmalloc(1u << 23);
    double t0 = now_s();
    long before = fp4t_g.checks;
    for (int fi = 0; fi < 2; fi++) {
        fp4_format f = fi == 0 ? FP4_FMT_E2M1 : FP4_FMT_E4M3;
        for (uint32_t e = 0; e < 256; e++) {
            if (!in_sweep(f, e)) continue;
            for (uint32_t s = 0; s < 2; s++) {
                int64_t n = binade_patterns(s, e, stride, x);
                check_fast("binade sweep", f, x, n, want, got);
            }
        }
    }
    printf("binade sweep (stride %u): %ld checks in %.1f s\n", stride, fp4t_g.checks - before,
           now_s() - t0);
    free(x);
    free(want);
    free(got);
}

/* Magnitudes near which something happens: every E2M1 and E4M3 value and the
 * midpoints between neighbours, FP32 limits and the saturation points. */
static int64_t edge_magnitudes(uint32_t *out) {
    int64_t k = 0;
    static const uint32_t fixed[] = {0x00000000u, 0x00000001u, 0x007FFFFFu, 0x00800000u,
                                     0x3F800000u, 0x43E00000u /* 448 */, 0x43E80000u /* 464 */,
                                     0x43F00000u /* 480 */,   0x7F7FFFFFu, 0x7F800000u,
                                     0x7F800001u, 0x7FBFFFFFu, 0x7FC00000u, 0x7FFFFFFFu};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) out[k++] = fixed[i];
    fp4_format fmts[2] = {FP4_FMT_E2M1, FP4_FMT_E4M3};
    for (int fi = 0; fi < 2; fi++) {
        int maxc = fmts[fi] == FP4_FMT_E2M1 ? 0x7 : 0x7E;
        for (int c = 0; c <= maxc; c++) {
            double v = fp4_to_f64(fmts[fi], (uint64_t)c);
            out[k++] = fp4t_f32_bits((float)v);
            if (c < maxc) { /* midpoint: exact in FP32 (a few more bits) */
                double w = fp4_to_f64(fmts[fi], (uint64_t)c + 1);
                out[k++] = fp4t_f32_bits((float)((v + w) / 2));
            }
        }
    }
    return k;
}

static void test_edges(void) {
    uint32_t mags[512];
    int64_t nm = edge_magnitudes(mags);
    int64_t cap = nm * 129 * 2;
    float *x = xmalloc(sizeof(float) * (size_t)cap);
    uint8_t *want = xmalloc((size_t)cap), *got = xmalloc((size_t)cap);
    int64_t n = 0;
    for (int64_t i = 0; i < nm; i++)
        for (int d = -64; d <= 64; d++) {
            int64_t b = (int64_t)mags[i] + d;
            if (b < 0 || b > 0x7FFFFFFF) continue;
            x[n++] = fp4t_f32_from_bits((uint32_t)b);
            x[n++] = fp4t_f32_from_bits((uint32_t)b | 0x80000000u);
        }
    check_fast("edges", FP4_FMT_E2M1, x, n, want, got);
    check_fast("edges", FP4_FMT_E4M3, x, n, want, got);
    free(x);
    free(want);
    free(got);
}

/* Known answers, independent of the exact path (numerics.md §2.9). */
static void test_known_answers(void) {
    static const struct {
        uint32_t x;
        uint8_t e2m1, e4m3;
    } t[] = {
        {0x80000000u, 0x8, 0x80}, /* -0 */
        {0xBDCCCCCDu, 0x8, 0x9D}, /* -0.1: E2M1 rounds to -0 */
        {0x3E800000u, 0x0, 0x28}, /* 0.25: tie down to 0 */
        {0x3E800001u, 0x1, 0x28}, /* 0.25000003 */
        {0x40A00000u, 0x6, 0x4A}, /* 5.0: tie to 4 */
        {0x40A00001u, 0x7, 0x4A}, /* 5.0000005 */
        {0x43E80000u, 0x7, 0x7E}, /* 464 */
        {0xFF800000u, 0xF, 0xFE}, /* -inf */
        {0x7FC00000u, 0x7, 0x7F}, /* NaN */
        {0xFFC00000u, 0x7, 0x7F}, /* -NaN: sign dropped */
        {0x3A800000u, 0x0, 0x00}, /* 2^-10: tie to 0 */
        {0x3A800001u, 0x0, 0x01}, /* 2^-10 (1 + 2^-23) */
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        float x = fp4t_f32_from_bits(t[i].x);
        uint8_t a = 0, b = 0;
        fp4_f32_to_e2m1_rne_sat(&a, &x, 1);
        fp4_f32_to_e4m3_rne_sat(&b, &x, 1);
        fp4t_check(a == t[i].e2m1, "known e2m1(0x%08" PRIX32 ") = 0x%X want 0x%X", t[i].x, a,
                   t[i].e2m1);
        fp4t_check(b == t[i].e4m3, "known e4m3(0x%08" PRIX32 ") = 0x%02X want 0x%02X", t[i].x, b,
                   t[i].e4m3);
    }
}

static void test_random(void) {
    const int64_t n = 1 << 24;
    uint64_t seed = fp4t_seed();
    float *x = xmalloc(sizeof(float) * (size_t)n);
    uint8_t *want = xmalloc((size_t)n), *got = xmalloc((size_t)n);
    for (int64_t i = 0; i < n; i++)
        x[i] = fp4t_f32_from_bits(fp4t_rand32(seed, STREAM_RANDOM, (uint64_t)i));
    check_fast("random", FP4_FMT_E2M1, x, n, want, got);
    check_fast("random", FP4_FMT_E4M3, x, n, want, got);
    free(x);
    free(want);
    free(got);
}

enum { LEN_MAXN = 300, LEN_SLACK = 8, LEN_PAD = 64 };

/* The current variant on x[off..off+n): right codes, and the guard bytes
 * (0xAA) around them untouched. */
static bool lengths_case_ok(fp4_format f, const float *x, const uint8_t *want, int n, int off) {
    uint8_t got[LEN_MAXN + LEN_SLACK + LEN_PAD];
    memset(got, 0xAA, sizeof got);
    kernel_for(f)(got + off, x + off, n);
    bool ok = memcmp(got + off, want + off, (size_t)n) == 0;
    for (int i = 0; i < off; i++) ok = ok && got[i] == 0xAA;
    for (size_t i = (size_t)(off + n); i < sizeof got; i++) ok = ok && got[i] == 0xAA;
    return ok;
}

/* Every variant on short and misaligned arrays: the vector loops' prologue,
 * tail and scalar remainder paths. */
static void test_lengths_alignment(void) {
    uint64_t seed = fp4t_seed();
    float x[LEN_MAXN + LEN_SLACK];
    uint8_t want[LEN_MAXN + LEN_SLACK];
    for (int i = 0; i < LEN_MAXN + LEN_SLACK; i++) {
        uint32_t r = fp4t_rand32(seed, STREAM_RANDOM, 1ull << 40 | (uint64_t)i);
        x[i] = fp4t_f32_from_bits((r & 0x83FFFFFFu) | 0x38000000u); /* around 2^-15..2^16 */
    }
    for (int fi = 0; fi < 2; fi++) {
        fp4_format f = fi == 0 ? FP4_FMT_E2M1 : FP4_FMT_E4M3;
        exact_codes(f, x, want, LEN_MAXN + LEN_SLACK);
        for (int l = 0; l < NLEVELS; l++) {
            if (fp4_simd_set(k_levels[l]) != 0) continue;
            for (int n = 0; n <= LEN_MAXN; n += (n < 70 ? 1 : 37))
                for (int off = 0; off < LEN_SLACK; off += 3)
                    fp4t_check(lengths_case_ok(f, x, want, n, off), "lengths [%s] %s n=%d off=%d",
                               k_levels[l], fp4_format_get(f)->name, n, off);
        }
    }
    fp4_simd_set(NULL);
}

/* ------------------------------------------------------------------------ */
/* fp4_f32_to_codes: threads, modes, policies                                */
/* ------------------------------------------------------------------------ */

/* Random patterns biased towards the interesting range and specials. */
static float mixed_input(uint64_t seed, uint32_t stream, uint64_t i) {
    philox4x32_ctr_t r = fp4t_rand4(seed, stream, i);
    uint32_t sign = r.v[0] & 0x80000000u, m = r.v[1] & 0x7FFFFFu;
    switch (r.v[2] % 8) {
    case 0: return fp4t_f32_from_bits(r.v[3]);                           /* anything */
    case 1: return fp4t_f32_from_bits(sign | (r.v[3] % 4 == 0 ? 0u : m)); /* zero, subnormal */
    case 2: return fp4t_f32_from_bits(sign | 0x7F800000u | (r.v[3] % 2 ? m : 0u)); /* Inf, NaN */
    default: return fp4t_f32_from_bits(sign | ((uint32_t)(100 + r.v[3] % 60) << 23) | m);
    }
}

/* fp4_f32_to_codes with the given thread count into dst (1-byte codes). */
static int codes_with_threads(int threads, fp4_format f, void *dst, const float *x, int64_t n,
                              const fp4_cvt_opts *o, const uint32_t *rbits) {
    int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    int rc = fp4_f32_to_codes(f, dst, x, n, o, rbits);
    omp_set_num_threads(saved);
    return rc;
}

/* The fast case through the array API on 1, 2 and 3 threads, a length that
 * is not a multiple of the chunk: same bits, equal to the exact path. */
static void test_thread_determinism(void) {
    const int64_t n = 3 * (1 << 16) + 12345;
    uint64_t seed = fp4t_seed();
    float *x = xmalloc(sizeof(float) * (size_t)n);
    uint8_t *want = xmalloc((size_t)n), *got = xmalloc((size_t)n);
    for (int64_t i = 0; i < n; i++) x[i] = mixed_input(seed, STREAM_THREADS, (uint64_t)i);
    for (int fi = 0; fi < 2; fi++) {
        fp4_format f = fi == 0 ? FP4_FMT_E2M1 : FP4_FMT_E4M3;
        exact_codes(f, x, want, n);
        for (int t = 1; t <= 3; t++) {
            memset(got, 0xAA, (size_t)n);
            int rc = codes_with_threads(t, f, got, x, n, NULL, NULL);
            fp4t_check(rc == 0, "fp4_f32_to_codes rc=%d", rc);
            char what[32];
            snprintf(what, sizeof what, "codes %d threads", t);
            compare_codes(what, fp4_simd_level(), f, x, got, want, n);
        }
    }
    free(x);
    free(want);
    free(got);
}

/* The scalar loop every array call must equal. */
static void scalar_codes(fp4_format f, void *dst, const float *x, int64_t n, const fp4_cvt_opts *o,
                         const uint32_t *rbits) {
    int bytes = fp4_format_code_bytes(f);
    for (int64_t i = 0; i < n; i++) {
        fp4_cvt_opts e = *o;
        if (rbits) e.rbits = rbits[i];
        uint64_t c = 0;
        fp4_encode_f32(f, x[i], &e, &c, NULL);
        memcpy((char *)dst + i * bytes, &c, (size_t)bytes); /* little-endian low bytes */
    }
}

typedef struct mode_case {
    fp4_round round;
    fp4_policy policy;
    unsigned options;
} mode_case;

static const mode_case k_modes[] = {
    {FP4_RNE, FP4_POLICY_SATFINITE, 0},        /* the fast case for E2M1/E4M3 */
    {FP4_RNE, FP4_POLICY_NOSAT, 0},
    {FP4_RZ, FP4_POLICY_SATFINITE, 0},
    {FP4_RNA, FP4_POLICY_SATFINITE, 0},
    {FP4_RU, FP4_POLICY_NOSAT, 0},
    {FP4_RD, FP4_POLICY_SATFINITE, 0},
    {FP4_RS, FP4_POLICY_SATFINITE, 0},
    {FP4_RNE, FP4_POLICY_SATFINITE, FP4_OPT_FTZ | FP4_OPT_DAZ},
    {FP4_RNE, FP4_POLICY_SATFINITE, FP4_OPT_RELU},
    {FP4_RNE, FP4_POLICY_ML_DTYPES, 0},
    {FP4_RNE, FP4_POLICY_CUTLASS_HOST, 0},
    {FP4_RNE, FP4_POLICY_MODELOPT, 0},
};

static void check_mode(fp4_format f, const mode_case *mc, const float *x, const uint32_t *rbits,
                       int64_t n, void *want, void *got) {
    fp4_cvt_opts o = fp4_cvt_opts_default();
    o.round = mc->round;
    o.policy = mc->policy;
    o.options = mc->options;
    const uint32_t *rb = mc->round == FP4_RS ? rbits : NULL;
    size_t bytes = (size_t)fp4_format_code_bytes(f) * (size_t)n;
    scalar_codes(f, want, x, n, &o, rb);
    for (int t = 1; t <= 2; t++) {
        memset(got, 0xAA, bytes);
        int rc = codes_with_threads(t, f, got, x, n, &o, rb);
        fp4t_check(rc == 0 && memcmp(got, want, bytes) == 0,
                   "modes %s %s/%s opts 0x%x on %d threads: rc=%d, differs from the scalar loop",
                   fp4_format_get(f)->name, fp4_round_name(mc->round), fp4_policy_name(mc->policy),
                   mc->options, t, rc);
    }
}

static void test_modes(void) {
    const int64_t n = (1 << 16) + 777; /* above the parallel threshold */
    uint64_t seed = fp4t_seed();
    float *x = xmalloc(sizeof(float) * (size_t)n);
    uint32_t *rbits = xmalloc(sizeof(uint32_t) * (size_t)n);
    void *want = xmalloc(8 * (size_t)n), *got = xmalloc(8 * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        x[i] = mixed_input(seed, STREAM_MODES, (uint64_t)i);
        rbits[i] = fp4t_rand32(seed, STREAM_RBITS, (uint64_t)i);
    }
    for (int f = 0; f < FP4_FMT_COUNT; f++)
        for (size_t m = 0; m < sizeof k_modes / sizeof k_modes[0]; m++)
            check_mode((fp4_format)f, &k_modes[m], x, rbits, n, want, got);
    free(x);
    free(rbits);
    free(want);
    free(got);
}

static void test_bad_arguments(void) {
    float x = 1.0f;
    uint8_t c = 0;
    fp4_cvt_opts rs = fp4_cvt_opts_default();
    rs.round = FP4_RS;
    fp4t_check(fp4_f32_to_codes(FP4_FMT_COUNT, &c, &x, 1, NULL, NULL) == -1, "bad format");
    fp4t_check(fp4_f32_to_codes(FP4_FMT_E2M1, &c, &x, -1, NULL, NULL) == -1, "n < 0");
    fp4t_check(fp4_f32_to_codes(FP4_FMT_E2M1, NULL, &x, 1, NULL, NULL) == -1, "NULL dst");
    fp4t_check(fp4_f32_to_codes(FP4_FMT_E2M1, &c, &x, 1, &rs, NULL) == -1, "RS without rbits");
    fp4t_check(fp4_f32_to_codes(FP4_FMT_E2M1, NULL, NULL, 0, NULL, NULL) == 0, "n = 0");
    fp4t_check(fp4_codes_to_f32(FP4_FMT_COUNT, &x, &c, 1) == -1, "decode: bad format");
    fp4t_check(fp4_codes_to_f32(FP4_FMT_E4M3, NULL, &c, 1) == -1, "decode: NULL dst");
    fp4t_check(fp4_simd_set("sse9") == -1, "unknown SIMD level");
    fp4t_check(fp4_simd_set("portable") == 0, "portable is always there");
    fp4t_check(strcmp(fp4_simd_level(), "portable") == 0, "forced level is reported");
    fp4t_check(fp4_simd_set(NULL) == 0, "back to auto");
}

/* ------------------------------------------------------------------------ */
/* fp4_codes_to_f32                                                          */
/* ------------------------------------------------------------------------ */

/* A code of format f: every code in turn for formats up to 16 bits (and the
 * invalid ones just above), random 32/64-bit patterns for F32/F64. */
static uint64_t decode_input(fp4_format f, uint64_t seed, uint64_t i) {
    int bits = fp4_format_get(f)->bits;
    if (bits <= 16) return i % (fp4_format_code_bytes(f) == 1 ? 256u : 65536u);
    uint64_t r = fp4t_rand64(seed, STREAM_DECODE, i);
    return bits == 32 ? (r & 0xFFFFFFFFu) : r;
}

static void check_decode(fp4_format f, int64_t n, void *codes, float *want, float *got) {
    uint64_t seed = fp4t_seed();
    int bytes = fp4_format_code_bytes(f);
    for (int64_t i = 0; i < n; i++) {
        uint64_t c = decode_input(f, seed, (uint64_t)i);
        memcpy((char *)codes + i * bytes, &c, (size_t)bytes);
        want[i] = (float)fp4_to_f64(f, c);
    }
    for (int l = 0; l < NLEVELS; l++) {
        if (fp4_simd_set(k_levels[l]) != 0) continue;
        for (int t = 1; t <= 2; t++) {
            memset(got, 0xAA, sizeof(float) * (size_t)n);
            int saved = omp_get_max_threads();
            omp_set_num_threads(t);
            int rc = fp4_codes_to_f32(f, got, codes, n);
            omp_set_num_threads(saved);
            fp4t_check(rc == 0 && memcmp(got, want, sizeof(float) * (size_t)n) == 0,
                       "decode %s n=%" PRId64 " [%s] %d threads: rc=%d, differs from the scalar",
                       fp4_format_get(f)->name, n, k_levels[l], t, rc);
        }
    }
    fp4_simd_set(NULL);
}

static void test_decode(void) {
    const int64_t big = 1 << 17;
    void *codes = xmalloc(8 * (size_t)big);
    float *want = xmalloc(sizeof(float) * (size_t)big), *got = xmalloc(sizeof(float) * (size_t)big);
    for (int f = 0; f < FP4_FMT_COUNT; f++) {
        check_decode((fp4_format)f, big, codes, want, got);
        check_decode((fp4_format)f, 300, codes, want, got); /* below the table threshold */
    }
    free(codes);
    free(want);
    free(got);
}

/* ------------------------------------------------------------------------ */
/* --long: all 2^32 inputs                                                   */
/* ------------------------------------------------------------------------ */

static void test_all_f32(void) {
    const int64_t block = 1 << 24;
    float *x = xmalloc(sizeof(float) * (size_t)block);
    uint8_t *want = xmalloc((size_t)block), *got = xmalloc((size_t)block);
    double t0 = now_s();
    for (uint64_t base = 0; base < (1ull << 32); base += (uint64_t)block) {
        for (int64_t i = 0; i < block; i++) x[i] = fp4t_f32_from_bits((uint32_t)(base + (uint64_t)i));
        for (int fi = 0; fi < 2; fi++) {
            fp4_format f = fi == 0 ? FP4_FMT_E2M1 : FP4_FMT_E4M3;
            check_fast("all f32", f, x, block, want, got);
            memset(got, 0xAA, (size_t)block);
            fp4t_check(fp4_f32_to_codes(f, got, x, block, NULL, NULL) == 0, "rc");
            compare_codes("all f32 codes", fp4_simd_level(), f, x, got, want, block);
        }
    }
    printf("all 2^32 inputs x 2 formats (%d threads): %.1f s\n", omp_get_max_threads(),
           now_s() - t0);
    free(x);
    free(want);
    free(got);
}

int main(int argc, char **argv) {
    bool all = argc > 1 && strcmp(argv[1], "--long") == 0;
    fp4t_begin(all ? "test_fast --long" : "test_fast");
    printf("SIMD level: %s, threads: %d\n", fp4_simd_level(), omp_get_max_threads());
    double t0 = now_s();
    if (all) {
        test_all_f32();
    } else {
        test_bad_arguments();
        test_known_answers();
        test_edges();
        test_lengths_alignment();
        test_random();
        test_thread_determinism();
        test_modes();
        test_decode();
        test_binade_sweep();
    }
    printf("total %.1f s\n", now_s() - t0);
    return fp4t_end();
}
