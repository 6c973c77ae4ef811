/* test_ops.c - ref's exact arithmetic on codes (fp4_add, fp4_mul,
 * fp4_mul_add; f32_add / f32_mul / f32_mulAdd), which the one FP32
 * epilogue and every emu promotion / split-K add use. Two independent
 * checks:
 *   1. MPFR: the exact result (mpfr at a precision that makes it exact),
 *      rounded by the test oracle's own rounding (tests/mpfr_oracle.c),
 *      compared in code, ternary and flags. Every pair of codes of every
 *      8-bit-or-less format (E2M1, E2M3, E3M2, E4M3, E5M2) for add and mul
 *      in all five modes; every triple of E2M1 codes and random E4M3 / E5M2
 *      triples for fma; random F16, BF16, F32 and F64 operands (with
 *      boundary-heavy distributions) for all three.
 *   2. The host FPU: F32 and F64 add, mul and fmaf/fma in RNE, RZ, RU, RD
 *      (fesetround), compared in code (NaN-ness for NaN) and in the
 *      invalid / overflow / inexact flags.
 * Specials follow IEEE 754: NaN operands give the canonical NaN, invalid
 * only for signaling ones; Inf - Inf, 0 x Inf and fma(0, Inf, c) are
 * invalid; an exact zero sum is +0 (-0 in RD) unless both addends are -0. */
#include "mpfr_oracle.h"
#include "testutil.h"

#include <fenv.h>
#include <math.h>
#include <string.h>

enum { OP_ADD, OP_MUL, OP_FMA };
static const char *const k_op[] = {"add", "mul", "fma"};
static const fp4_round k_modes[] = {FP4_RNE, FP4_RNA, FP4_RZ, FP4_RU, FP4_RD};

/* Exact value of a code as MPFR (NaN / Inf / signed zero kept). */
static void code_to_mpfr(mpfr_t x, fp4_format f, uint64_t code) {
    fp4o_decoded d = fp4o_decode(f, code);
    if (d.cls == FP4_CLASS_NAN) mpfr_set_nan(x);
    else mpfr_set_d(x, d.value, MPFR_RNDN); /* every value of every format is a double */
}

static bool is_snan(fp4_format f, uint64_t c) {
    fp4o_decoded d = fp4o_decode(f, c);
    return d.cls == FP4_CLASS_NAN && d.signaling;
}
static bool is_nan(fp4_format f, uint64_t c) { return fp4o_decode(f, c).cls == FP4_CLASS_NAN; }
static bool is_inf(fp4_format f, uint64_t c) { return fp4o_decode(f, c).cls == FP4_CLASS_INF; }
static bool is_zero(fp4_format f, uint64_t c) { return fp4o_decode(f, c).cls == FP4_CLASS_ZERO; }

/* What the operation must give, by MPFR and the IEEE special-case rules. */
static fp4o_res expected(int op, fp4_format f, fp4_round mode, const uint64_t *v) {
    int n = op == OP_FMA ? 3 : 2;
    bool any_nan = false, snan = false;
    for (int i = 0; i < n; i++) any_nan |= is_nan(f, v[i]), snan |= is_snan(f, v[i]);
    bool zero_inf = op != OP_ADD && ((is_zero(f, v[0]) && is_inf(f, v[1])) ||
                                     (is_inf(f, v[0]) && is_zero(f, v[1])));
    fp4o_res r = {0, 0, 0};
    const fp4_format_info *fi = fp4_format_get(f);
    mpfr_t a, b, c, x;
    mpfr_inits2(4400, a, b, c, x, (mpfr_ptr)0);
    code_to_mpfr(a, f, v[0]), code_to_mpfr(b, f, v[1]);
    if (n == 3) code_to_mpfr(c, f, v[2]);
    /* Exact at 4400 bits (an F64 fma spans 2^1024 .. 2^-2148); the mode only decides the sign of an exact zero. */
    mpfr_rnd_t zr = mode == FP4_RD ? MPFR_RNDD : MPFR_RNDN;
    if (op == OP_ADD) mpfr_add(x, a, b, zr);
    else if (op == OP_MUL) mpfr_mul(x, a, b, zr);
    else mpfr_fma(x, a, b, c, zr);
    if (any_nan || zero_inf || mpfr_nan_p(x)) {
        r.code = fi->canonical_nan;
        r.flags = (snan || zero_inf || (!any_nan && mpfr_nan_p(x))) ? FP4_FLAG_INVALID : 0;
    } else {
        fp4_cvt_opts o = {mode, FP4_POLICY_NOSAT, 0, 0, 0};
        r.ternary = fp4o_sgn(fp4o_round(f, x, false, false, &o, &r.code, &r.flags));
    }
    mpfr_clears(a, b, c, x, (mpfr_ptr)0);
    return r;
}

static fp4o_res actual(int op, fp4_format f, fp4_round mode, const uint64_t *v) {
    fp4o_res r = {0, 0, 0};
    int t = 0;
    if (op == OP_ADD) r.code = fp4_add(f, v[0], v[1], mode, &t, &r.flags);
    else if (op == OP_MUL) r.code = fp4_mul(f, v[0], v[1], mode, &t, &r.flags);
    else r.code = fp4_mul_add(f, v[0], v[1], v[2], mode, &t, &r.flags);
    r.ternary = fp4o_sgn(t);
    return r;
}

static int64_t g_cases;

static void check_one(int op, fp4_format f, fp4_round mode, const uint64_t *v) {
    fp4o_res want = expected(op, f, mode, v), got = actual(op, f, mode, v);
    g_cases++;
    fp4t_check(fp4o_res_eq(want, got),
               "%s %s %s(0x%llx, 0x%llx%s%llx): got 0x%llx t%d f%02x, expected 0x%llx t%d f%02x",
               fp4_format_get(f)->name, fp4_round_name(mode), k_op[op], (unsigned long long)v[0],
               (unsigned long long)v[1], op == OP_FMA ? ", 0x" : "",
               (unsigned long long)(op == OP_FMA ? v[2] : 0), (unsigned long long)got.code,
               got.ternary, got.flags, (unsigned long long)want.code, want.ternary, want.flags);
}

/* Every pair (and for E2M1 every triple) of codes of the small formats. */
static void exhaustive_small(void) {
    const fp4_format fs[] = {FP4_FMT_E2M1, FP4_FMT_E2M3, FP4_FMT_E3M2, FP4_FMT_E4M3,
                             FP4_FMT_E5M2};
    for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++) {
        const uint64_t nc = (uint64_t)1 << fp4_format_get(fs[i])->bits;
        for (int m = 0; m < 5; m++)
            for (uint64_t a = 0; a < nc; a++)
                for (uint64_t b = 0; b < nc; b++) {
                    uint64_t v[3] = {a, b, 0};
                    check_one(OP_ADD, fs[i], k_modes[m], v);
                    check_one(OP_MUL, fs[i], k_modes[m], v);
                    if (fs[i] == FP4_FMT_E2M1)
                        for (v[2] = 0; v[2] < nc; v[2]++) check_one(OP_FMA, fs[i], k_modes[m], v);
                }
    }
}

/* A code with a boundary-heavy distribution: random bits, an exponent near
 * another operand's (cancellation), subnormals, extremes, specials. */
static uint64_t pick(fp4_format f, uint64_t seed, uint64_t i, int j, uint64_t near) {
    const fp4_format_info *fi = fp4_format_get(f);
    const uint64_t w = fp4t_rand64(seed, 17 + (uint32_t)j, i);
    const uint64_t mmask = ((uint64_t)1 << fi->mbits) - 1, sbit = (uint64_t)1 << (fi->bits - 1);
    const uint64_t emax = ((uint64_t)1 << fi->ebits) - 1;
    const uint64_t bits_mask = fi->bits == 64 ? ~(uint64_t)0 : ((uint64_t)1 << fi->bits) - 1;
    switch ((w >> 58) & 7) {
    case 0: case 1: return w & bits_mask;                                  /* anything */
    case 2: return (near ^ (w & mmask)) & bits_mask;                        /* same exponent */
    case 3: return ((near & ~mmask) + ((w & 3) << fi->mbits) - ((uint64_t)1 << fi->mbits) +
                    (w & mmask) + ((w >> 8 & 1) ? sbit : 0)) & bits_mask;  /* neighbour exps */
    case 4: return (w & mmask) | ((w >> 9 & 1) ? sbit : 0);                /* subnormal / zero */
    case 5: return (((emax - 1 - (w >> 20) % 3) << fi->mbits) | (w & mmask)) |
                   ((w >> 9 & 1) ? sbit : 0);                              /* near overflow */
    case 6: return ((w >> 20) % 4 < 2 ? (emax << fi->mbits) : (emax << fi->mbits) | 1 |
                    ((w >> 21 & 1) << (fi->mbits - 1))) | ((w >> 9 & 1) ? sbit : 0); /* Inf/NaN */
    default: return ((uint64_t)((w >> 20) % 3) << fi->mbits) | (w & mmask) |
                    ((w >> 9 & 1) ? sbit : 0);                             /* smallest normals */
    }
}

static void random_wide(int64_t n) {
    const fp4_format fs[] = {FP4_FMT_F16, FP4_FMT_BF16, FP4_FMT_F32, FP4_FMT_F64};
    const uint64_t seed = fp4t_seed();
    for (size_t i = 0; i < 4; i++)
        for (int64_t k = 0; k < n; k++) {
            uint64_t v[3];
            v[0] = pick(fs[i], seed, (uint64_t)k, (int)i * 3, 0);
            v[1] = pick(fs[i], seed, (uint64_t)k, (int)i * 3 + 1, v[0]);
            v[2] = pick(fs[i], seed, (uint64_t)k, (int)i * 3 + 2, v[0]);
            fp4_round mode = k_modes[k % 5];
            for (int op = 0; op < 3; op++) check_one(op, fs[i], mode, v);
        }
    /* Small formats' fma on random triples. */
    for (int64_t k = 0; k < n; k++) {
        fp4_format f = k & 1 ? FP4_FMT_E5M2 : FP4_FMT_E4M3;
        uint64_t v[3] = {fp4t_rand32(seed, 31, (uint64_t)k) & 0xFF,
                         fp4t_rand32(seed, 32, (uint64_t)k) & 0xFF,
                         fp4t_rand32(seed, 33, (uint64_t)k) & 0xFF};
        check_one(OP_FMA, f, k_modes[k % 5], v);
    }
}

/* The host's IEEE arithmetic: float / double in the four IEEE modes. */
static unsigned host_flags(void) {
    unsigned f = 0;
    if (fetestexcept(FE_INVALID)) f |= FP4_FLAG_INVALID;
    if (fetestexcept(FE_OVERFLOW)) f |= FP4_FLAG_OVERFLOW;
    if (fetestexcept(FE_INEXACT)) f |= FP4_FLAG_INEXACT;
    return f;
}

static void host_compare(int64_t n) {
    const fp4_round modes[4] = {FP4_RNE, FP4_RZ, FP4_RU, FP4_RD};
    const int fe[4] = {FE_TONEAREST, FE_TOWARDZERO, FE_UPWARD, FE_DOWNWARD};
    const unsigned cmp = FP4_FLAG_INVALID | FP4_FLAG_OVERFLOW | FP4_FLAG_INEXACT;
    const uint64_t seed = fp4t_seed();
    for (int64_t k = 0; k < n; k++) {
        const int mi = (int)(k % 4);
        for (int wide = 0; wide < 2; wide++) {
            fp4_format f = wide ? FP4_FMT_F64 : FP4_FMT_F32;
            uint64_t v[3];
            v[0] = pick(f, seed, (uint64_t)k, 40 + wide * 3, 0);
            v[1] = pick(f, seed, (uint64_t)k, 41 + wide * 3, v[0]);
            v[2] = pick(f, seed, (uint64_t)k, 42 + wide * 3, v[0]);
            for (int op = 0; op < 3; op++) {
                uint64_t h;
                unsigned hf;
                fesetround(fe[mi]);
                feclearexcept(FE_ALL_EXCEPT);
                if (wide) {
                    volatile double a, b, c, r;
                    memcpy((void *)&a, &v[0], 8), memcpy((void *)&b, &v[1], 8);
                    memcpy((void *)&c, &v[2], 8);
                    r = op == OP_ADD ? a + b : op == OP_MUL ? a * b : fma(a, b, c);
                    hf = host_flags();
                    memcpy(&h, (const void *)&r, 8);
                } else {
                    volatile float a, b, c, r;
                    uint32_t u[3] = {(uint32_t)v[0], (uint32_t)v[1], (uint32_t)v[2]}, ur;
                    memcpy((void *)&a, &u[0], 4), memcpy((void *)&b, &u[1], 4);
                    memcpy((void *)&c, &u[2], 4);
                    r = op == OP_ADD ? a + b : op == OP_MUL ? a * b : fmaf(a, b, c);
                    hf = host_flags();
                    memcpy(&ur, (const void *)&r, 4);
                    h = ur;
                }
                fesetround(FE_TONEAREST);
                fp4o_res got = actual(op, f, modes[mi], v);
                bool same = is_nan(f, h) ? is_nan(f, got.code) : got.code == h;
                g_cases++;
                fp4t_check(same && (got.flags & cmp) == (hf & cmp),
                           "host %s %s %s(0x%llx, 0x%llx, 0x%llx): ours 0x%llx f%02x, host "
                           "0x%llx f%02x", fp4_format_get(f)->name, fp4_round_name(modes[mi]),
                           k_op[op], (unsigned long long)v[0], (unsigned long long)v[1],
                           (unsigned long long)v[2], (unsigned long long)got.code,
                           got.flags & cmp, (unsigned long long)h, hf & cmp);
            }
        }
    }
}

/* Named cases whose answers are IEEE 754's words, not a computation. */
static void specials(void) {
    /* fp4sim's canonical F32 NaN is 0x7FFFFFFF, what NVIDIA GPUs produce
     * (docs/formats.md); a quiet NaN operand 0x7FC00000 becomes it too. */
    const uint32_t pinf = 0x7F800000u, ninf = 0xFF800000u, cnan = 0x7FFFFFFFu,
                   qnan = 0x7FC00000u, snan = 0x7F800001u, one = 0x3F800000u, pz = 0,
                   nz = 0x80000000u;
    fp4t_check(fp4_format_get(FP4_FMT_F32)->canonical_nan == cnan, "canonical F32 NaN");
    unsigned fl = 0;
    fp4t_check(fp4_add(FP4_FMT_F32, pinf, ninf, FP4_RNE, NULL, &fl) == cnan &&
                   fl == FP4_FLAG_INVALID, "Inf - Inf");
    fl = 0;
    fp4t_check(fp4_add(FP4_FMT_F32, qnan, one, FP4_RNE, NULL, &fl) == cnan && fl == 0,
               "quiet NaN + 1 raises nothing");
    fl = 0;
    fp4t_check(fp4_add(FP4_FMT_F32, snan, one, FP4_RNE, NULL, &fl) == cnan &&
                   fl == FP4_FLAG_INVALID, "signaling NaN + 1 is invalid");
    fl = 0;
    fp4t_check(fp4_mul_add(FP4_FMT_F32, pz, pinf, qnan, FP4_RNE, NULL, &fl) == cnan &&
                   fl == FP4_FLAG_INVALID, "fma(0, Inf, qNaN) is invalid (our choice, §7.2c)");
    fp4t_check(f32_add(one, 0xBF800000u, FP4_RNE) == pz && f32_add(one, 0xBF800000u, FP4_RD) == nz,
               "x - x: +0, -0 in RD");
    fp4t_check(f32_add(nz, nz, FP4_RNE) == nz && f32_add(pz, nz, FP4_RNE) == pz,
               "-0 + -0 = -0, +0 + -0 = +0");
    fp4t_check(f32_mulAdd(one, nz, nz, FP4_RNE) == nz, "fma(1, -0, -0) = -0");
    fl = 0;
    int t = 5;
    fp4t_check(fp4_add(FP4_FMT_F32, one, one, FP4_RS, &t, &fl) == cnan && t == 0,
               "rs is refused (no random bits)");
}

int main(void) {
    fp4t_begin("test_ops");
    fp4o_init();
    const bool full = fp4o_level() >= 1;
    exhaustive_small();
    random_wide(full ? 200000 : 20000);
    host_compare(full ? 1000000 : 100000);
    specials();
    printf("test_ops: %lld cases\n", (long long)g_cases);
    return fp4t_end();
}
