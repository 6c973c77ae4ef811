/* bench_convert.c - FP32 -> E2M1 and FP32 -> E4M3 (RNE, satfinite) in
 * elements per second, ours against baselines measured in the same run:
 *
 *   fast        fp4_f32_to_{e2m1,e4m3}_rne_sat, one thread, each SIMD variant
 *   codes       fp4_f32_to_codes (the array API, OpenMP), all threads
 *   in cache    the fast kernel on 16 Ki elements (L1/L2) and on 1 Mi (L3), and
 *               fp4_f32_to_codes on 1 Mi with all threads: compute, not DRAM,
 *               bound, so thread scaling shows there
 *   exact       fp4_encode_f32 per element, one thread (the oracle path)
 *   naive       what a straightforward C library does per element: frexpf for
 *               the exponent, ldexpf + nearbyintf to round, then pack fields
 *               (CPFloat's approach, written here; CPFloat itself is not
 *               packaged by Debian, so its numbers are quoted, not measured)
 *   mem floor   load FP32, store its low byte: the same memory traffic with no
 *               arithmetic, an upper bound for any single-thread converter
 *   decode      fp4_codes_to_f32, codes back to FP32 (256-entry table)
 *
 * Inputs: 2^26 random finite floats with exponents uniform in [-12, 9] (E4M3
 * subnormals to saturation; covers E2M1's range), and a 'specials' mix (NaN,
 * Inf, zeros, FP32 subnormals, huge values, exact ties, ordinary values).
 * Every variant's output is checked bit-identical to the exact path.
 * Timing: CLOCK_MONOTONIC, one warm-up run (also faults the pages in), then
 * best and median of R runs.
 *
 * Usage: bench_convert [-n LOG2_ELEMS] [-r REPS] [-R SLOW_REPS]
 */
#include "fp4ref.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------------ */
/* Utilities                                                                 */
/* ------------------------------------------------------------------------ */

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void *xmalloc(size_t n) {
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "bench_convert: out of memory (%zu bytes)\n", n);
        exit(2);
    }
    return p;
}

static float f32_from_bits(uint32_t b) {
    float x;
    memcpy(&x, &b, sizeof x);
    return x;
}

/* splitmix64: a fixed seed, so every run converts the same data. */
static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ------------------------------------------------------------------------ */
/* Inputs                                                                    */
/* ------------------------------------------------------------------------ */

/* Random sign and mantissa, exponent uniform in [-12, 9]. */
static float finite_input(uint64_t r) {
    uint32_t sign = (uint32_t)(r >> 63) << 31;
    uint32_t e = (uint32_t)(127 - 12 + (int)((r >> 32) % 22));
    return f32_from_bits(sign | (e << 23) | ((uint32_t)r & 0x7FFFFFu));
}

/* One in eight each: NaN (any payload), Inf, zero, FP32 subnormal, huge,
 * an exact E2M1 or E4M3 tie; two in eight ordinary finite values. */
static float special_input(uint64_t r) {
    static const uint32_t ties[] = {0x3E800000u, 0x3F400000u, 0x3FA00000u, 0x3FE00000u,
                                    0x40200000u, 0x40600000u, 0x40A00000u, 0x3A800000u,
                                    0x3B400000u, 0x43E80000u, 0x3F880000u, 0x42D00000u};
    uint32_t sign = (uint32_t)(r >> 63) << 31, m = (uint32_t)r & 0x7FFFFFu;
    switch ((r >> 40) & 7) {
    case 0: return f32_from_bits(sign | 0x7F800000u | (m ? m : 1u));
    case 1: return f32_from_bits(sign | 0x7F800000u);
    case 2: return f32_from_bits(sign);
    case 3: return f32_from_bits(sign | m);
    case 4: return f32_from_bits(sign | ((uint32_t)(136 + (r >> 44) % 118) << 23) | m);
    case 5: return f32_from_bits(sign | ties[(r >> 44) % (sizeof ties / sizeof ties[0])]);
    default: return finite_input(r);
    }
}

static void fill_inputs(float *x, int64_t n, bool specials) {
    uint64_t s = specials ? 0x5BEC1A15ull : 0xF1A17Eull;
    for (int64_t i = 0; i < n; i++) {
        uint64_t r = rng_next(&s);
        x[i] = specials ? special_input(r) : finite_input(r);
    }
}

/* ------------------------------------------------------------------------ */
/* Baselines                                                                 */
/* ------------------------------------------------------------------------ */

/* The exact path, element by element. */
static void exact_loop(fp4_format f, uint8_t *dst, const float *src, int64_t n) {
    fp4_cvt_opts o = fp4_cvt_opts_default();
    for (int64_t i = 0; i < n; i++) {
        uint64_t c = 0;
        fp4_encode_f32(f, src[i], &o, &c, NULL);
        dst[i] = (uint8_t)c;
    }
}

/* Rounds |x| (finite, non-zero, below the saturation point) the way a
 * straightforward C library does: take the binade from frexpf, clamp it to
 * the format's emin, scale the significand to an integer with ldexpf and
 * round it with nearbyintf (RNE in the default FP environment). Returns the
 * integer significand k (p bits when normal) and sets *e to the binade's
 * exponent; a carry to k = 2^p is folded into the next binade. */
static int naive_round(float a, int p, int emin, int *e) {
    int fe;
    frexpf(a, &fe); /* a = f * 2^fe, f in [0.5, 1) */
    int E = fe - 1 < emin ? emin : fe - 1;
    int k = (int)nearbyintf(ldexpf(a, (p - 1) - E));
    if (k == 1 << p) {
        k >>= 1;
        E += 1;
    }
    *e = E;
    return k;
}

/* Packs (sign, k, E) as a code with mbits = p - 1 and the given bias;
 * k < 2^(p-1) is a subnormal (E == emin). */
static uint8_t naive_pack(unsigned sign_bit, int k, int E, int p, int bias) {
    if (k < (1 << (p - 1))) return (uint8_t)(sign_bit | (unsigned)k);
    return (uint8_t)(sign_bit | (unsigned)(E + bias) << (p - 1) | (unsigned)(k - (1 << (p - 1))));
}

static uint8_t naive_e2m1(float x) {
    if (isnan(x)) return 0x7; /* PTX satfinite: NaN -> +6 */
    unsigned s = signbit(x) ? 0x8u : 0u;
    float a = fabsf(x);
    if (a >= 6.0f) return (uint8_t)(s | 0x7u); /* (5, 6) rounds to 6 anyway */
    if (a == 0.0f) return (uint8_t)s;
    int E, k = naive_round(a, 2, 0, &E);
    return naive_pack(s, k, E, 2, 1);
}

static uint8_t naive_e4m3(float x) {
    if (isnan(x)) return 0x7F; /* measured: sign dropped */
    unsigned s = signbit(x) ? 0x80u : 0u;
    float a = fabsf(x);
    if (a >= 448.0f) return (uint8_t)(s | 0x7Eu); /* (448, 464) rounds to 448 */
    if (a == 0.0f) return (uint8_t)s;
    int E, k = naive_round(a, 4, -6, &E);
    return naive_pack(s, k, E, 4, 7);
}

static void naive_loop(fp4_format f, uint8_t *dst, const float *src, int64_t n) {
    if (f == FP4_FMT_E2M1)
        for (int64_t i = 0; i < n; i++) dst[i] = naive_e2m1(src[i]);
    else
        for (int64_t i = 0; i < n; i++) dst[i] = naive_e4m3(src[i]);
}

/* Same loads and stores as a converter, no arithmetic. */
static void memory_floor(uint8_t *restrict dst, const float *restrict src, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, &src[i], sizeof b);
        dst[i] = (uint8_t)b;
    }
}

/* ------------------------------------------------------------------------ */
/* Timing                                                                    */
/* ------------------------------------------------------------------------ */

typedef enum variant {
    V_FAST,      /* fast kernel, current SIMD level, serial */
    V_CODES,     /* fp4_f32_to_codes, all threads */
    V_IN_CACHE,  /* fast kernel on a 16 Ki slice, repeated */
    V_L3_1,      /* fast kernel on a 1 Mi slice, repeated */
    V_L3_ALL,    /* fp4_f32_to_codes on a 1 Mi slice, repeated, all threads */
    V_EXACT,
    V_NAIVE,
    V_FLOOR,
    V_DECODE_1,  /* fp4_codes_to_f32 on one thread */
    V_DECODE_ALL /* fp4_codes_to_f32 on all threads */
} variant;

typedef struct bench_io {
    fp4_format f;
    const float *x;
    uint8_t *codes;
    float *decoded;
    int64_t n;
} bench_io;

/* Slices: 16 Ki elements (80 KiB in + out) stay in L1/L2; 1 Mi elements
 * (5 MiB) in a server's L3, where threads are not limited by DRAM. */
enum { IN_CACHE_N = 1 << 14, L3_N = 1 << 20 };

static void run_fast_kernel(fp4_format f, uint8_t *dst, const float *src, int64_t n) {
    if (f == FP4_FMT_E2M1)
        fp4_f32_to_e2m1_rne_sat(dst, src, n);
    else
        fp4_f32_to_e4m3_rne_sat(dst, src, n);
}

/* Converts the same slice of m elements over and over: n elements in all. */
static void run_slice(fp4_format f, uint8_t *dst, const float *src, int64_t n, int64_t m,
                      bool api) {
    for (int64_t done = 0; done < n; done += m) {
        if (api)
            fp4_f32_to_codes(f, dst, src, m, NULL, NULL);
        else
            run_fast_kernel(f, dst, src, m);
    }
}

static void decode_with_threads(const bench_io *io, int threads) {
    int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    fp4_codes_to_f32(io->f, io->decoded, io->codes, io->n);
    omp_set_num_threads(saved);
}

static void run_variant(variant v, const bench_io *io) {
    switch (v) {
    case V_FAST: run_fast_kernel(io->f, io->codes, io->x, io->n); break;
    case V_CODES: fp4_f32_to_codes(io->f, io->codes, io->x, io->n, NULL, NULL); break;
    case V_IN_CACHE: run_slice(io->f, io->codes, io->x, io->n, IN_CACHE_N, false); break;
    case V_L3_1: run_slice(io->f, io->codes, io->x, io->n, L3_N, false); break;
    case V_L3_ALL: run_slice(io->f, io->codes, io->x, io->n, L3_N, true); break;
    case V_EXACT: exact_loop(io->f, io->codes, io->x, io->n); break;
    case V_NAIVE: naive_loop(io->f, io->codes, io->x, io->n); break;
    case V_FLOOR: memory_floor(io->codes, io->x, io->n); break;
    case V_DECODE_1: decode_with_threads(io, 1); break;
    case V_DECODE_ALL: decode_with_threads(io, omp_get_max_threads()); break;
    }
}

typedef struct timing {
    double best, median; /* seconds */
} timing;

enum { MAX_REPS = 64 };

/* One warm-up run, then best and median of reps runs. */
static timing time_variant(variant v, const bench_io *io, int reps) {
    double t[MAX_REPS];
    run_variant(v, io);
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        run_variant(v, io);
        t[r] = now_s() - t0;
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp_double);
    timing out = {t[0], t[reps / 2]};
    return out;
}

/* ------------------------------------------------------------------------ */
/* Report                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct row_ref {
    double exact_rate, naive_rate; /* elements/s, for the ratio columns */
    const uint8_t *want;           /* exact codes, for the bit check */
} row_ref;

static void print_header(void) {
    printf("  %-37s %7s %11s %11s %8s %9s %9s %5s\n", "variant", "threads", "best M/s",
           "median M/s", "ns/elem", "vs exact", "vs naive", "bits");
}

static void print_row(const char *name, int threads, timing t, int64_t n, const row_ref *ref,
                      const char *bits) {
    double rate = (double)n / t.best;
    char vs_exact[16] = "-", vs_naive[16] = "-";
    if (ref->exact_rate > 0) snprintf(vs_exact, sizeof vs_exact, "%.1fx", rate / ref->exact_rate);
    if (ref->naive_rate > 0) snprintf(vs_naive, sizeof vs_naive, "%.1fx", rate / ref->naive_rate);
    printf("  %-37s %7d %11.1f %11.1f %8.3f %9s %9s %5s\n", name, threads, rate / 1e6,
           (double)n / t.median / 1e6, 1e9 * t.best / (double)n, vs_exact, vs_naive, bits);
}

/* "same" when codes equal the exact ones, "DIFF" otherwise, "-" for rows
 * whose output is not a conversion (floor, in-cache slice). */
static const char *bits_verdict(const bench_io *io, const row_ref *ref) {
    return memcmp(io->codes, ref->want, (size_t)io->n) == 0 ? "same" : "DIFF";
}

static const char *decode_verdict(const bench_io *io, const uint8_t *codes) {
    for (int64_t i = 0; i < io->n; i++) {
        float w = (float)fp4_to_f64(io->f, codes[i]);
        if (memcmp(&w, &io->decoded[i], sizeof w) != 0) return "DIFF";
    }
    return "same";
}

typedef struct bench_cfg {
    int64_t n;
    int reps, slow_reps, threads;
} bench_cfg;

/* The fast kernel once per SIMD variant this CPU has (the chosen one first). */
static void bench_fast_levels(bench_io *io, const bench_cfg *cfg, const row_ref *ref) {
    static const char *const levels[] = {"avx512", "avx2", "portable"};
    char auto_level[16], name[64];
    snprintf(auto_level, sizeof auto_level, "%s", fp4_simd_level());
    for (int l = 0; l < 3; l++) {
        if (fp4_simd_set(levels[l]) != 0) continue;
        timing t = time_variant(V_FAST, io, cfg->reps);
        snprintf(name, sizeof name, "fast kernel [%s]%s", levels[l],
                 strcmp(levels[l], auto_level) == 0 ? " (chosen)" : "");
        print_row(name, 1, t, io->n, ref, bits_verdict(io, ref));
    }
    fp4_simd_set(NULL);
}

static void bench_one(fp4_format f, const float *x, const bench_cfg *cfg, uint8_t *codes,
                      uint8_t *want, float *decoded) {
    bench_io io = {f, x, codes, decoded, cfg->n};
    row_ref ref = {0, 0, want};
    timing te = time_variant(V_EXACT, &io, cfg->slow_reps);
    memcpy(want, codes, (size_t)cfg->n);
    timing tn = time_variant(V_NAIVE, &io, cfg->slow_reps);
    const char *naive_bits = bits_verdict(&io, &ref);
    ref.exact_rate = (double)cfg->n / te.best;
    ref.naive_rate = (double)cfg->n / tn.best;

    bench_fast_levels(&io, cfg, &ref);
    timing tc = time_variant(V_CODES, &io, cfg->reps);
    print_row("fp4_f32_to_codes (OpenMP)", cfg->threads, tc, cfg->n, &ref, bits_verdict(&io, &ref));
    char per_core[64];
    timing tcore = {tc.best * cfg->threads, tc.median * cfg->threads};
    snprintf(per_core, sizeof per_core, "  ... per thread (all threads / %d)", cfg->threads);
    print_row(per_core, 1, tcore, cfg->n, &ref, "-");
    print_row("fast kernel, in L1/L2 (16 Ki elems)", 1, time_variant(V_IN_CACHE, &io, cfg->reps),
              cfg->n, &ref, "-");
    print_row("fast kernel, in L3 (1 Mi elems)", 1, time_variant(V_L3_1, &io, cfg->reps), cfg->n,
              &ref, "-");
    print_row("fp4_f32_to_codes, in L3 (1 Mi elems)", cfg->threads,
              time_variant(V_L3_ALL, &io, cfg->reps), cfg->n, &ref, "-");
    print_row("exact fp4_encode_f32 (baseline)", 1, te, cfg->n, &ref, "same");
    print_row("naive frexp/ldexp/nearbyint", 1, tn, cfg->n, &ref, naive_bits);
    print_row("memory floor (load f32, store u8)", 1, time_variant(V_FLOOR, &io, cfg->reps),
              cfg->n, &ref, "-");
    memcpy(codes, want, (size_t)cfg->n);
    row_ref none = {0, 0, want};
    timing td1 = time_variant(V_DECODE_1, &io, cfg->reps);
    print_row("decode codes -> f32 (table)", 1, td1, cfg->n, &none, decode_verdict(&io, want));
    memset(decoded, 0, sizeof(float) * (size_t)cfg->n);
    timing tdn = time_variant(V_DECODE_ALL, &io, cfg->reps);
    print_row("decode codes -> f32 (table)", cfg->threads, tdn, cfg->n, &none,
              decode_verdict(&io, want));
}

/* ------------------------------------------------------------------------ */
/* Machine description                                                       */
/* ------------------------------------------------------------------------ */

static void print_cpu_model(void) {
    FILE *fp = fopen("/proc/cpuinfo", "r");
    char line[512];
    const char *model = "unknown";
    while (fp && fgets(line, sizeof line, fp))
        if (strncmp(line, "model name", 10) == 0) {
            char *p = strchr(line, ':');
            if (p) {
                p += 1 + (p[1] == ' ');
                p[strcspn(p, "\n")] = 0;
                model = p;
            }
            break;
        }
    printf("CPU: %s, %d logical CPUs\n", model, omp_get_num_procs());
    if (fp) fclose(fp);
}

static void print_anchors(void) {
    printf("\nAnchors (quoted, not measured here; performance.md section 5.3):\n"
           "  ml_dtypes 0.6.0 astype, 1 thread, Intel Xeon host: f32->float8_e4m3fn 82.1 M/s,\n"
           "    f32->float4_e2m1fn 47.7-69.4 M/s; float8_e4m3fn->f32 101.0 M/s, "
           "float4_e2m1fn->f32 104.3 M/s\n"
           "  CPFloat cpfloatf, AMD EPYC Zen-5 VM: E4M3 RNE 569 M/s (2 threads 1221),\n"
           "    E2M1 RNE 264 M/s (2 threads 524)\n"
           "  CPFloat is not packaged by Debian (apt-cache finds no cpfloat): not run here.\n");
}

static int parse_args(int argc, char **argv, bench_cfg *cfg) {
    int log2n = 26;
    cfg->reps = 7;
    cfg->slow_reps = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "-n") == 0) log2n = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "-r") == 0) cfg->reps = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "-R") == 0) cfg->slow_reps = atoi(argv[i + 1]);
        else return -1;
    }
    if ((argc - 1) % 2 || log2n < 20 || log2n > 30 || cfg->reps < 1 || cfg->reps > MAX_REPS ||
        cfg->slow_reps < 1 || cfg->slow_reps > MAX_REPS)
        return -1;
    cfg->n = (int64_t)1 << log2n;
    cfg->threads = omp_get_max_threads();
    return 0;
}

int main(int argc, char **argv) {
    bench_cfg cfg;
    if (parse_args(argc, argv, &cfg) != 0) {
        fprintf(stderr, "usage: bench_convert [-n LOG2_ELEMS (20..30, default 26)] "
                        "[-r REPS (default 7)] [-R SLOW_REPS (default 3)]\n");
        return 2;
    }
    printf("bench_convert (fp4sim %s): FP32 -> E2M1 / E4M3, RNE + satfinite\n", FP4SIM_VERSION);
    print_cpu_model();
    char date[32];
    time_t now = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    printf("date: %s; compiler: %s; SIMD level chosen: %s; OpenMP threads: %d\n", date,
           __VERSION__, fp4_simd_level(), cfg.threads);
    printf("%lld elements per run; best and median of %d runs (%d for exact/naive), after one "
           "warm-up run\n",
           (long long)cfg.n, cfg.reps, cfg.slow_reps);
    float *x = xmalloc(sizeof(float) * (size_t)cfg.n);
    float *decoded = xmalloc(sizeof(float) * (size_t)cfg.n);
    uint8_t *codes = xmalloc((size_t)cfg.n), *want = xmalloc((size_t)cfg.n);
    for (int d = 0; d < 2; d++) {
        fill_inputs(x, cfg.n, d == 1);
        for (int fi = 0; fi < 2; fi++) {
            fp4_format f = fi == 0 ? FP4_FMT_E2M1 : FP4_FMT_E4M3;
            printf("\nf32 -> %s, %s inputs\n", fp4_format_get(f)->name,
                   d == 0 ? "finite (exponents -12..9)" : "specials mixed");
            print_header();
            bench_one(f, x, &cfg, codes, want, decoded);
        }
    }
    print_anchors();
    free(x);
    free(decoded);
    free(codes);
    free(want);
    return 0;
}
