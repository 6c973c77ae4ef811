/* formats_array.c - array conversions: OpenMP over elements (each element is
 * independent, so results never depend on the thread count) and vectorized
 * kernels for the hot case, RNE + satfinite from FP32 into E2M1 and E4M3,
 * plus table decoding of 8-bit codes back to FP32.
 *
 * The fast kernels are branch-free integer formulas on the FP32 bit pattern,
 * written once as inline per-element functions (E4M3 subnormals in two
 * forms, the cheaper one per ISA) and compiled three times: for x86-64-v4
 * (AVX-512), for AVX2 and for the baseline ISA. GCC auto-vectorizes each
 * copy (checked with -fopt-info-vec and objdump: zmm / ymm / xmm). The copy
 * is chosen at run time from the CPU's features, and fp4_simd_set() can
 * force a lower one so that tests reach every copy on one machine (what
 * target_clones / ifunc dispatch cannot do). They must equal the exact path
 * (fp4_encode_f32 with default options) for all 2^32 inputs:
 * tests/test_fast.c checks that exhaustively (label `long`) and on every
 * boundary region (label `unit`), per copy.
 *
 * No floating-point arithmetic is used in the kernels: the result then does
 * not depend on the FP environment (a caller's fesetround, or FTZ/DAZ set in
 * MXCSR by a library built with -ffast-math), and GCC, which must keep FP
 * operations that could trap from being speculated, can if-convert every
 * select and vectorize the loop.
 */
#include "fp4ref.h"

#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define FP4_X86_DISPATCH 1
/* Feature lists (added to the baseline), not arch= (which replaces it): with
 * -march=native the always_inline helpers carry the native features, and a
 * caller must hold every feature of an inlined callee (GCC refuses otherwise). */
#define FP4_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512cd,avx2,fma,bmi,bmi2,lzcnt,movbe,popcnt")))
#define FP4_TARGET_AVX2 __attribute__((target("avx2")))
#else
#define FP4_X86_DISPATCH 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define FP4_INLINE static inline __attribute__((always_inline))
#else
#define FP4_INLINE static inline
#endif

/* ------------------------------------------------------------------------ */
/* Per-element kernels                                                       */
/* ------------------------------------------------------------------------ */

/* The bit pattern as a signed int: |x| patterns are <= 0x7FFFFFFF, so signed
 * compares order them like the values (NaN patterns above +inf), and signed
 * 32-bit compares exist in every SIMD level (unsigned ones do not in AVX2). */
FP4_INLINE int32_t f32_bits(const float *p) {
    int32_t b;
    memcpy(&b, p, sizeof b); /* a plain 32-bit load once compiled */
    return b;
}

/* E2M1 RNE thresholds on |x| (numerics.md §2.1, CUTLASS e2m1_mag_f32_rne):
 * code = number of thresholds passed, with '>' at the ties that go down to
 * the even code (0.25, 1.25, 2.5, 5.0) and '>=' (written '> t-1') at those
 * that go up (0.75, 1.75, 3.5). Everything above 5.0, +-inf and NaN pass all
 * seven: 7 = 6.0 is the satfinite result. NaN -> +6 (PTX: positive
 * MAX_NORM); every other input keeps its sign, including those that round
 * to zero (-0.1 -> 0x8). */
FP4_INLINE uint8_t e2m1_rne_sat_one(int32_t b) {
    int32_t a = b & 0x7FFFFFFF;
    int32_t c = (a > 0x3E800000) + (a > 0x3F3FFFFF) + (a > 0x3FA00000) + (a > 0x3FDFFFFF) +
                (a > 0x40200000) + (a > 0x405FFFFF) + (a > 0x40A00000);
    int32_t s = a > 0x7F800000 ? 0 : (int32_t)(((uint32_t)b >> 28) & 0x8u);
    return (uint8_t)(c | s);
}

/* E4M3 subnormal results (|x| < 2^-6) are k * 2^-9, k = 0..8 (8 is the
 * smallest normal, code 0x08, so a carry needs no special case). Two ways to
 * get k, both checked against the exact path on every SIMD variant. */

/* Portable: count thresholds again, the midpoints (2k+1) * 2^-10, with '>'
 * where k is even (the tie goes down to k), '>=' where k is odd (up to
 * k+1). SSE2 has no per-lane variable shift, so this is its cheap way. */
FP4_INLINE int32_t e4m3_sub_mag_cmp(int32_t a) {
    return (a > 0x3A800000) + (a > 0x3B3FFFFF) + (a > 0x3BA00000) + (a > 0x3BDFFFFF) +
           (a > 0x3C100000) + (a > 0x3C2FFFFF) + (a > 0x3C500000) + (a > 0x3C6FFFFF);
}

/* AVX2 / AVX-512: k = RNE(M * 2^(e-141)) for the 24-bit significand M and
 * biased exponent e, by the carry trick with a per-lane shift s = 141 - e
 * (vpsrlvd / vpsllvd); 1.6x faster than the compares with AVX-512. For
 * e <= 116 (|x| < 2^-10) any s >= 25 gives 0, so s is clamped to 31, and to
 * 21 from below for the lanes that take the normal path (no UB in C). FP32
 * subnormals (e = 0) get the implicit bit too: they round to 0 either way. */
FP4_INLINE int32_t e4m3_sub_mag_shift(int32_t a) {
    int32_t e = a >> 23;
    int32_t m = (a & 0x7FFFFF) | 0x800000;
    int32_t s = 141 - e;
    s = s < 21 ? 21 : s;
    s = s > 31 ? 31 : s;
    return (m + (1 << (s - 1)) - 1 + ((m >> s) & 1)) >> s;
}

/* E4M3 normal results (2^-6 <= |x| < 448): rebias the exponent by
 * subtracting bits(2^-7) (FP32 bias 127 -> E4M3 bias 7), then RNE on the 20
 * dropped bits by the carry trick: add 0x7FFFF plus the kept LSB and shift.
 * A carry out of the 3 mantissa bits lands in the exponent, as it should. */
FP4_INLINE int32_t e4m3_norm_mag(int32_t a) {
    return (a - 0x3C000000 + 0x7FFFF + ((a >> 20) & 1)) >> 20;
}

/* E4M3 RNE satfinite from the bits b and the subnormal result sub of |x|.
 * |x| >= 448 and +-inf -> +-448 (0x7E/0xFE; 448 < |x| < 464 round to 448
 * anyway, |x| >= 464 saturate); NaN -> 0x7F with the sign dropped, as
 * measured on sm_90 (numerics.md §2.3, §2.9). */
FP4_INLINE uint8_t e4m3_rne_sat_from(int32_t b, int32_t sub) {
    int32_t a = b & 0x7FFFFFFF;
    int32_t s = (int32_t)(((uint32_t)b >> 24) & 0x80u);
    int32_t mag = a < 0x3C800000 ? sub : e4m3_norm_mag(a);
    mag = a >= 0x43E00000 ? 0x7E : mag;
    int32_t code = a > 0x7F800000 ? 0x7F : (mag | s);
    return (uint8_t)code;
}

FP4_INLINE uint8_t e4m3_rne_sat_cmp(int32_t b) {
    return e4m3_rne_sat_from(b, e4m3_sub_mag_cmp(b & 0x7FFFFFFF));
}

FP4_INLINE uint8_t e4m3_rne_sat_shift(int32_t b) {
    return e4m3_rne_sat_from(b, e4m3_sub_mag_shift(b & 0x7FFFFFFF));
}

/* ------------------------------------------------------------------------ */
/* One loop per kernel and ISA                                               */
/* ------------------------------------------------------------------------ */

/* Defines static void NAME_SUFFIX(dst, src, n) applying ONE per element,
 * compiled with the target attribute ATTR (empty = baseline ISA). restrict
 * tells the vectorizer that dst and src do not overlap. */
#define FP4_DEFINE_F32_KERNEL(name, suffix, one, attr)                                      \
    attr static void name##_##suffix(uint8_t *restrict dst, const float *restrict src,      \
                                      int64_t n) {                                          \
        for (int64_t i = 0; i < n; i++) dst[i] = one(f32_bits(&src[i]));                    \
    }

/* Table decode of 1-byte codes: dst[i] = lut[src[i]]. Vectorizes to gathers
 * on AVX2 / AVX-512. */
#define FP4_DEFINE_LUT_KERNEL(suffix, attr)                                                 \
    attr static void lut8_##suffix(float *restrict dst, const uint8_t *restrict src,        \
                                   int64_t n, const float *restrict lut) {                  \
        for (int64_t i = 0; i < n; i++) dst[i] = lut[src[i]];                               \
    }

#define FP4_DEFINE_ALL_KERNELS(suffix, attr, e4m3_one)                                      \
    FP4_DEFINE_F32_KERNEL(e2m1, suffix, e2m1_rne_sat_one, attr)                             \
    FP4_DEFINE_F32_KERNEL(e4m3, suffix, e4m3_one, attr)                                     \
    FP4_DEFINE_LUT_KERNEL(suffix, attr)

FP4_DEFINE_ALL_KERNELS(portable, , e4m3_rne_sat_cmp)
#if FP4_X86_DISPATCH
FP4_DEFINE_ALL_KERNELS(avx2, FP4_TARGET_AVX2, e4m3_rne_sat_shift)
FP4_DEFINE_ALL_KERNELS(avx512, FP4_TARGET_AVX512, e4m3_rne_sat_shift)
#endif

/* ------------------------------------------------------------------------ */
/* Run-time selection                                                        */
/* ------------------------------------------------------------------------ */

typedef enum simd_level { SIMD_PORTABLE = 0, SIMD_AVX2, SIMD_AVX512, SIMD_COUNT } simd_level;

static const char *const k_simd_names[SIMD_COUNT] = {"portable", "avx2", "avx512"};

/* Best level this CPU (and OS: libgcc checks XCR0) supports. The AVX-512
 * copy is built for x86-64-v4, so every feature of that level is required. */
static simd_level simd_best(void) {
#if FP4_X86_DISPATCH
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx2") &&
        __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2"))
        return SIMD_AVX512;
    if (__builtin_cpu_supports("avx2")) return SIMD_AVX2;
#endif
    return SIMD_PORTABLE;
}

/* -1 = not chosen yet (pick the best on first use). Atomic because kernels
 * read it from OpenMP threads; a race on the first pick is harmless since
 * every thread computes the same value, and every level gives the same bits. */
static atomic_int g_simd = -1;

static simd_level simd_current(void) {
    int v = atomic_load_explicit(&g_simd, memory_order_relaxed);
    if (v < 0) {
        v = (int)simd_best();
        atomic_store_explicit(&g_simd, v, memory_order_relaxed);
    }
    return (simd_level)v;
}

const char *fp4_simd_level(void) { return k_simd_names[simd_current()]; }

int fp4_simd_set(const char *level) {
    simd_level best = simd_best();
    if (!level || strcmp(level, "auto") == 0) {
        atomic_store(&g_simd, (int)best);
        return 0;
    }
    for (int l = 0; l < SIMD_COUNT; l++)
        if (strcmp(level, k_simd_names[l]) == 0) {
            if (l > (int)best) return -1; /* not on this CPU / this build */
            atomic_store(&g_simd, l);
            return 0;
        }
    return -1;
}

void fp4_f32_to_e2m1_rne_sat(uint8_t *dst, const float *src, int64_t n) {
    switch (simd_current()) {
#if FP4_X86_DISPATCH
    case SIMD_AVX512: e2m1_avx512(dst, src, n); break;
    case SIMD_AVX2: e2m1_avx2(dst, src, n); break;
#endif
    default: e2m1_portable(dst, src, n); break;
    }
}

void fp4_f32_to_e4m3_rne_sat(uint8_t *dst, const float *src, int64_t n) {
    switch (simd_current()) {
#if FP4_X86_DISPATCH
    case SIMD_AVX512: e4m3_avx512(dst, src, n); break;
    case SIMD_AVX2: e4m3_avx2(dst, src, n); break;
#endif
    default: e4m3_portable(dst, src, n); break;
    }
}

static void lut8(float *dst, const uint8_t *src, int64_t n, const float *lut) {
    switch (simd_current()) {
#if FP4_X86_DISPATCH
    case SIMD_AVX512: lut8_avx512(dst, src, n, lut); break;
    case SIMD_AVX2: lut8_avx2(dst, src, n, lut); break;
#endif
    default: lut8_portable(dst, src, n, lut); break;
    }
}

/* ------------------------------------------------------------------------ */
/* Array API                                                                 */
/* ------------------------------------------------------------------------ */

static bool is_fast_case(fp4_format f, const fp4_cvt_opts *o) {
    return (f == FP4_FMT_E2M1 || f == FP4_FMT_E4M3) && o->round == FP4_RNE &&
           o->policy == FP4_POLICY_SATFINITE && o->options == 0;
}

/* Work is cut into fixed chunks, so which elements a thread gets never
 * changes what it computes. Serial below FP4_PARALLEL_MIN elements: waking
 * the thread team costs more than converting them. */
enum { FP4_PARALLEL_MIN = 1 << 16, FP4_CHUNK = 1 << 14 };

static int64_t chunk_count(int64_t n) { return (n + FP4_CHUNK - 1) / FP4_CHUNK; }
static int64_t chunk_end(int64_t lo, int64_t n) { return lo + FP4_CHUNK < n ? lo + FP4_CHUNK : n; }

static void store_code(void *dst, int bytes, int64_t i, uint64_t c) {
    switch (bytes) {
    case 1: ((uint8_t *)dst)[i] = (uint8_t)c; break;
    case 2: ((uint16_t *)dst)[i] = (uint16_t)c; break;
    case 4: ((uint32_t *)dst)[i] = (uint32_t)c; break;
    default: ((uint64_t *)dst)[i] = c; break;
    }
}

static uint64_t load_code(const void *src, int bytes, int64_t i) {
    switch (bytes) {
    case 1: return ((const uint8_t *)src)[i];
    case 2: return ((const uint16_t *)src)[i];
    case 4: return ((const uint32_t *)src)[i];
    default: return ((const uint64_t *)src)[i];
    }
}

/* Elements [lo, hi) through the exact scalar path (any mode / policy). */
static void encode_range_exact(fp4_format f, void *dst, int bytes, const float *src, int64_t lo,
                               int64_t hi, const fp4_cvt_opts *o, const uint32_t *rbits) {
    fp4_cvt_opts e = *o;
    for (int64_t i = lo; i < hi; i++) {
        uint64_t c = 0;
        if (rbits) e.rbits = rbits[i];
        fp4_encode_f32(f, src[i], &e, &c, NULL);
        store_code(dst, bytes, i, c);
    }
}

int fp4_f32_to_codes(fp4_format f, void *dst, const float *src, int64_t n,
                     const fp4_cvt_opts *o, const uint32_t *rbits) {
    fp4_cvt_opts opts = o ? *o : fp4_cvt_opts_default();
    if (!fp4_format_get(f) || n < 0 || (n > 0 && (!dst || !src))) return -1;
    if (opts.round == FP4_RS && !rbits) return -1;
    int bytes = fp4_format_code_bytes(f);
    int64_t nchunks = chunk_count(n);
    bool fast = is_fast_case(f, &opts);
#pragma omp parallel for schedule(static) if (n >= FP4_PARALLEL_MIN)
    for (int64_t ch = 0; ch < nchunks; ch++) {
        int64_t lo = ch * FP4_CHUNK, hi = chunk_end(lo, n);
        if (fast && f == FP4_FMT_E2M1)
            fp4_f32_to_e2m1_rne_sat((uint8_t *)dst + lo, src + lo, hi - lo);
        else if (fast)
            fp4_f32_to_e4m3_rne_sat((uint8_t *)dst + lo, src + lo, hi - lo);
        else
            encode_range_exact(f, dst, bytes, src, lo, hi, &opts, rbits);
    }
    return 0;
}

/* The scalar decode every array decode must match (as e4m3_to_f32 etc.). */
static float decode_one(fp4_format f, uint64_t code) { return (float)fp4_to_f64(f, code); }

/* Below this many 1-byte codes, filling the 256-entry table costs more than
 * decoding each element directly. */
enum { FP4_LUT_MIN = 1024 };

int fp4_codes_to_f32(fp4_format f, float *dst, const void *src, int64_t n) {
    if (!fp4_format_get(f) || n < 0 || (n > 0 && (!dst || !src))) return -1;
    int bytes = fp4_format_code_bytes(f);
    int64_t nchunks = chunk_count(n);
    bool use_lut = bytes == 1 && n >= FP4_LUT_MIN;
    float lut[256];
    if (use_lut) /* every byte, so out-of-range codes decode as NaN here too */
        for (int c = 0; c < 256; c++) lut[c] = decode_one(f, (uint64_t)c);
#pragma omp parallel for schedule(static) if (n >= FP4_PARALLEL_MIN)
    for (int64_t ch = 0; ch < nchunks; ch++) {
        int64_t lo = ch * FP4_CHUNK, hi = chunk_end(lo, n);
        if (use_lut) {
            lut8(dst + lo, (const uint8_t *)src + lo, hi - lo, lut);
        } else {
            for (int64_t i = lo; i < hi; i++) dst[i] = decode_one(f, load_code(src, bytes, i));
        }
    }
    return 0;
}
