/* formats_array.c - array conversions: OpenMP over elements (each element is
 * independent, so results never depend on the thread count) and vectorized
 * kernels for the hot case, RNE + satfinite from FP32 into E2M1 and E4M3.
 *
 * The fast kernels are branch-free formulas on the FP32 bit pattern that the
 * compiler vectorizes; GCC's target_clones builds AVX-512, AVX2 and baseline
 * copies and picks one at load time. They must equal the exact path
 * (fp4_encode_f32 with satfinite) for all 2^32 inputs: tests/test_fast.c
 * checks that exhaustively (label `long`) and on every boundary (default).
 */
#include "fp4ref.h"

#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define FP4_CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define FP4_CLONES
#endif

const char *fp4_simd_level(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512bw")) return "avx512";
    if (__builtin_cpu_supports("avx2")) return "avx2";
#endif
    return "portable";
}

/* E2M1 RNE thresholds on |x| (numerics.md §2.1, CUTLASS e2m1_mag_f32_rne):
 * code = number of thresholds passed, with '>' at the ties that go down to
 * the even code (0.25, 1.25, 2.5, 5.0) and '>=' at those that go up (0.75,
 * 1.75, 3.5). FP32 bit patterns of non-negative values order like the
 * values, NaN patterns above +inf, so integer compares suffice. NaN -> +6
 * (PTX: positive MAX_NORM); every other input keeps its sign, including
 * those that round to zero (-0.1 -> 0x8). */
FP4_CLONES
void fp4_f32_to_e2m1_rne_sat(uint8_t *restrict dst, const float *restrict src, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, &src[i], 4);
        uint32_t a = b & 0x7FFFFFFFu;
        uint32_t c = (uint32_t)(a > 0x3E800000u) + (uint32_t)(a >= 0x3F400000u) +
                     (uint32_t)(a > 0x3FA00000u) + (uint32_t)(a >= 0x3FE00000u) +
                     (uint32_t)(a > 0x40200000u) + (uint32_t)(a >= 0x40600000u) +
                     (uint32_t)(a > 0x40A00000u);
        uint32_t s = (b >> 28) & 0x8u & (0u - (uint32_t)(a <= 0x7F800000u));
        dst[i] = (uint8_t)(c | s);
    }
}

/* E4M3 RNE satfinite: normal results by the integer carry trick (add the
 * rebias, 0x7FFFF and the kept LSB, then shift: RNE on the 20 dropped bits);
 * subnormal results (|x| < 2^-6) by adding 2^14, whose ulp is 2^-9 (the
 * E4M3 subnormal step), so the FPU's RNE does the rounding; |x| >= 448
 * (448 < |x| <= 464 rounds to 448 anyway) and Inf -> 0x7E; NaN -> 0x7F with
 * the sign dropped (measured on sm_90, numerics.md §2.3). */
FP4_CLONES
void fp4_f32_to_e4m3_rne_sat(uint8_t *restrict dst, const float *restrict src, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, &src[i], 4);
        uint32_t a = b & 0x7FFFFFFFu;
        uint32_t s = (b >> 24) & 0x80u;
        float af;
        memcpy(&af, &a, 4);
        float t = af + 16384.0f;
        uint32_t tb;
        memcpy(&tb, &t, 4);
        uint32_t sub = tb - 0x46800000u; /* bits(16384.0f) */
        uint32_t nrm = (a - 0x3C000000u + 0x7FFFFu + ((a >> 20) & 1u)) >> 20;
        uint32_t mag = a < 0x3C800000u ? sub : nrm;
        mag = a >= 0x43E00000u ? 0x7Eu : mag;
        uint32_t code = mag | s;
        code = a > 0x7F800000u ? 0x7Fu : code;
        dst[i] = (uint8_t)code;
    }
}

static bool is_fast_case(fp4_format f, const fp4_cvt_opts *o) {
    return (f == FP4_FMT_E2M1 || f == FP4_FMT_E4M3) && o->round == FP4_RNE &&
           o->policy == FP4_POLICY_SATFINITE && o->options == 0;
}

/* Serial below this many elements (thread start-up costs more). */
enum { FP4_PARALLEL_MIN = 1 << 16, FP4_CHUNK = 1 << 14 };

static void store_code(void *dst, int bytes, int64_t i, uint64_t c) {
    switch (bytes) {
    case 1: ((uint8_t *)dst)[i] = (uint8_t)c; break;
    case 2: ((uint16_t *)dst)[i] = (uint16_t)c; break;
    case 4: ((uint32_t *)dst)[i] = (uint32_t)c; break;
    default: ((uint64_t *)dst)[i] = c; break;
    }
}

int fp4_f32_to_codes(fp4_format f, void *dst, const float *src, int64_t n,
                     const fp4_cvt_opts *o, const uint32_t *rbits) {
    fp4_cvt_opts opts = o ? *o : fp4_cvt_opts_default();
    if (!fp4_format_get(f) || n < 0 || (n > 0 && (!dst || !src))) return -1;
    if (opts.round == FP4_RS && !rbits) return -1;
    int bytes = fp4_format_code_bytes(f);
    int64_t nchunks = (n + FP4_CHUNK - 1) / FP4_CHUNK;
    bool fast = is_fast_case(f, &opts);
#pragma omp parallel for schedule(static) if (n >= FP4_PARALLEL_MIN)
    for (int64_t ch = 0; ch < nchunks; ch++) {
        int64_t lo = ch * FP4_CHUNK, hi = lo + FP4_CHUNK < n ? lo + FP4_CHUNK : n;
        if (fast && f == FP4_FMT_E2M1) {
            fp4_f32_to_e2m1_rne_sat((uint8_t *)dst + lo, src + lo, hi - lo);
        } else if (fast) {
            fp4_f32_to_e4m3_rne_sat((uint8_t *)dst + lo, src + lo, hi - lo);
        } else {
            fp4_cvt_opts e = opts;
            for (int64_t i = lo; i < hi; i++) {
                uint64_t c = 0;
                if (rbits) e.rbits = rbits[i];
                fp4_encode_f32(f, src[i], &e, &c, NULL);
                store_code(dst, bytes, i, c);
            }
        }
    }
    return 0;
}
