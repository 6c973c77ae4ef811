/* test_formats_tininess.c - tininess before and after rounding at every
 * format's smallest normal 2^emin (issue 16, item 2), against exact integer
 * arithmetic done here, and against the MPFR oracle.
 *
 * Inputs x = N * 2^t with t = emin - 1 - mbits - D (D = 6 extra bits), so
 * N / 2^D is x in units of u = 2^(emin - 1 - mbits), the ulp that the binade
 * [2^(emin-1), 2^emin) has at the format's precision (mbits + 1 bits). N
 * runs over the last three such ulps below 2^emin and two above, at 1/64 of
 * an ulp, plus three points in the binade below. The rule (IEEE 754-2019
 * §7.5, SoftFloat's softfloat_tininess_beforeRounding / afterRounding):
 *   tiny before = x < 2^emin                    <=> N < 2^(mbits+1+D)
 *   tiny after  = x rounded in the same mode to mbits + 1 bits with an
 *                 unbounded exponent range is < 2^emin
 *                                               <=> R(N / 2^D) < 2^(mbits+1)
 *     (R: the mode's rounding to an integer; rs adds the K random bits to
 *     the top K bits of the discarded fraction, a carry rounds away);
 *   inexact     = x is not on the format's grid, whose spacing is
 *                 2^(emin - mbits) = 2u on both sides of 2^emin
 *                                               <=> N mod 2^(D+1) != 0
 *     (ue8m0 has no subnormals and no zero: below 2^-127 always inexact);
 *   underflow   = tiny && inexact.
 * Every format, both signs, rne/rna/rz/ru/rd and rs at several widths and
 * random-bit values. The flags must be exactly inexact/underflow as derived;
 * the whole result must equal the oracle's. Hand examples in e2m1 first. */
#include "mpfr_oracle.h"
#include "testutil.h"

#include <fenv.h>
#include <math.h>

enum { D = 6 };

/* PTX's random-bit width per destination (restated: PTX ISA 9.1 cvt.rs). */
static int rs_width(fp4_format f) {
    return f == FP4_FMT_BF16 ? 16 : f == FP4_FMT_F16 ? 13 : 8;
}

/* R(N / 2^D) > N >> D: whether the mode rounds the magnitude up. */
static bool rounds_up(uint64_t n, int neg, const fp4_cvt_opts *o, int K) {
    uint64_t q = n >> D, r = n & ((1u << D) - 1), half = 1u << (D - 1);
    switch (o->round) {
    case FP4_RNE: return r > half || (r == half && (q & 1));
    case FP4_RNA: return r >= half;
    case FP4_RZ: return false;
    case FP4_RU: return r != 0 && !neg;
    case FP4_RD: return r != 0 && neg;
    case FP4_RS: {
        uint64_t top = K >= D ? r << (K - D) : r >> (D - K);
        uint64_t rb = (uint64_t)o->rbits & ((1ull << K) - 1);
        return top + rb >= (1ull << K);
    }
    default: abort();
    }
}

static unsigned want_flags(const fp4_format_info *fi, uint64_t n, int neg, const fp4_cvt_opts *o,
                           int K) {
    uint64_t top = 1ull << (fi->mbits + 1 + D); /* N of 2^emin */
    bool before = n < top;
    bool inexact = !fi->has_subnormals && before ? true : (n & ((2ull << D) - 1)) != 0;
    bool tiny = before;
    if ((o->options & FP4_OPT_TININESS_AFTER) && n >= top / 2) /* top binade only */
        tiny = (n >> D) + rounds_up(n, neg, o, K) < (1ull << (fi->mbits + 1));
    return (inexact ? FP4_FLAG_INEXACT : 0) | (inexact && tiny ? FP4_FLAG_UNDERFLOW : 0);
}

static long g_cases, g_after_differs, g_fpu;

#if defined(__x86_64__) && defined(__SSE2_MATH__)
/* x86 SSE detects tininess after rounding (SoftFloat's 8086 specialization
 * says so, and (float)0x1.ffffffp-127 -> FLT_MIN raises inexact alone): its
 * double -> float conversion is a second, hardware derivation of the f32
 * flags under the option. */
static bool fpu_f32(double x, fp4_round r, uint32_t *bits, unsigned *flags) {
    static const int k_mode[] = {[FP4_RNE] = FE_TONEAREST, [FP4_RZ] = FE_TOWARDZERO,
                                 [FP4_RU] = FE_UPWARD, [FP4_RD] = FE_DOWNWARD};
    if (r != FP4_RNE && r != FP4_RZ && r != FP4_RU && r != FP4_RD) return false;
    volatile double in = x;
    fesetround(k_mode[r]);
    feclearexcept(FE_ALL_EXCEPT);
    volatile float out = (float)in;
    int ex = fetestexcept(FE_UNDERFLOW | FE_INEXACT);
    fesetround(FE_TONEAREST);
    *bits = fp4t_f32_bits(out);
    *flags = (ex & FE_INEXACT ? FP4_FLAG_INEXACT : 0) | (ex & FE_UNDERFLOW ? FP4_FLAG_UNDERFLOW : 0);
    return true;
}
#else
static bool fpu_f32(double x, fp4_round r, uint32_t *bits, unsigned *flags) {
    (void)x, (void)r, (void)bits, (void)flags;
    return false;
}
#endif

static void check_point(fp4_format f, uint64_t n, int neg, const fp4_cvt_opts *o) {
    const fp4_format_info *fi = fp4_format_get(f);
    int64_t t = (int64_t)fi->emin - 1 - fi->mbits - D;
    int K = o->round == FP4_RS ? (o->rbits_width > 0 ? o->rbits_width : rs_width(f)) : 0;
    fp4o_res got = {0, 0, 0}, want = {0, 0, 0};
    got.ternary = fp4o_sgn(fp4_encode_bigint(f, neg, &n, 1, t, o, &got.code, &got.flags));
    want.ternary = fp4o_sgn(fp4o_encode_bigint(f, neg, &n, 1, t, o, &want.code, &want.flags));
    unsigned exact = want_flags(fi, n, neg, o, K);
    char ob[96];
    fp4t_check(got.flags == exact, "%s %s%llu*2^%lld [%s]: flags 0x%x, derived 0x%x", fi->name,
               neg ? "-" : "", (unsigned long long)n, (long long)t,
               fp4o_opts_string(o, ob, sizeof ob), got.flags, exact);
    fp4t_check(fp4o_res_eq(got, want),
               "%s %s%llu*2^%lld [%s]: ref 0x%llx/%d/0x%x, oracle 0x%llx/%d/0x%x", fi->name,
               neg ? "-" : "", (unsigned long long)n, (long long)t,
               fp4o_opts_string(o, ob, sizeof ob), (unsigned long long)got.code, got.ternary,
               got.flags, (unsigned long long)want.code, want.ternary, want.flags);
    uint32_t hb;
    unsigned hf;
    if (f == FP4_FMT_F32 && (o->options & FP4_OPT_TININESS_AFTER) &&
        fpu_f32(ldexp(neg ? -(double)n : (double)n, (int)t), o->round, &hb, &hf)) {
        fp4t_check(hb == got.code && hf == got.flags, "f32 %s%llu*2^%lld [%s]: FPU 0x%08x/0x%x, ref 0x%08llx/0x%x",
                   neg ? "-" : "", (unsigned long long)n, (long long)t,
                   fp4o_opts_string(o, ob, sizeof ob), hb, hf, (unsigned long long)got.code, got.flags);
        g_fpu++;
    }
    if (o->options & FP4_OPT_TININESS_AFTER) {
        fp4_cvt_opts b = *o;
        b.options &= ~FP4_OPT_TININESS_AFTER;
        g_after_differs += want_flags(fi, n, neg, &b, K) != exact;
    }
    g_cases++;
}

/* Modes: the five directed/nearest ones, rs at PTX's width and at 1, 3 and
 * 32 bits with rbits 0, 1, half, all ones and two random values. */
static int modes(fp4_format f, fp4_cvt_opts *out) {
    int n = 0;
    for (int r = FP4_RNE; r <= FP4_RD; r++) out[n++] = (fp4_cvt_opts){r, FP4_POLICY_SATFINITE, 0, 0, 0};
    const int widths[] = {0, 1, 3, 32};
    uint64_t seed = fp4t_seed();
    for (int w = 0; w < 4; w++) {
        int K = widths[w] ? widths[w] : rs_width(f);
        uint32_t all = K >= 32 ? 0xFFFFFFFFu : (1u << K) - 1;
        uint32_t vals[6] = {0, 1, 1u << (K - 1), all, fp4t_rand32(seed, 1700, (uint64_t)(f * 8 + w)) & all,
                            fp4t_rand32(seed, 1701, (uint64_t)(f * 8 + w)) & all};
        for (int v = 0; v < 6; v++)
            out[n++] = (fp4_cvt_opts){FP4_RS, FP4_POLICY_SATFINITE, 0, vals[v], widths[w]};
    }
    return n;
}

static void check_format(fp4_format f) {
    const fp4_format_info *fi = fp4_format_get(f);
    uint64_t top = 1ull << (fi->mbits + 1 + D), ulp = 1ull << D;
    uint64_t lo = top - 3 * ulp < top / 2 ? top / 2 : top - 3 * ulp;
    fp4_cvt_opts ms[32];
    int nm = modes(f, ms);
    for (int neg = 0; neg < (fi->is_signed ? 2 : 1); neg++) {
        for (int k = 0; k < nm; k++) {
            for (int after = 0; after < 2; after++) {
                fp4_cvt_opts o = ms[k];
                o.options = after ? FP4_OPT_TININESS_AFTER : 0;
                for (uint64_t n = lo; n <= top + 2 * ulp; n++) check_point(f, n, neg, &o);
                for (uint64_t j = 1; j <= 3; j++) check_point(f, top / 2 - j, neg, &o);
            }
        }
    }
}

/* Hand examples, e2m1 (emin = 0, grid 0.5 below 2; at 2 bits the binade
 * [0.5, 1) has ulp 0.25):
 *  - 0.875 = 3.5 * 0.25, RNE: before: tiny, inexact (-> 1.0): underflow.
 *    After: 3.5 ties to 4 -> 1.0 = 2^emin, not tiny: no underflow.
 *  - 0.8125 = 3.25 * 0.25, RNE: the result is 1.0 (1.625 * 0.5 -> 2 * 0.5)
 *    but at 2 bits it rounds to 0.75: tiny after rounding too: underflow.
 *  - 0.875, RZ: 3.5 -> 3 -> 0.75: tiny either way (result 0.5). */
static void hand_examples(void) {
    fp4_cvt_opts o = {FP4_RNE, FP4_POLICY_SATFINITE, 0, 0, 0};
    unsigned fl = 0;
    uint64_t c = 0;
    fp4_encode_f64(FP4_FMT_E2M1, 0.875, &o, &c, &fl);
    fp4t_check(c == 0x2 && fl == (FP4_FLAG_INEXACT | FP4_FLAG_UNDERFLOW), "0.875 before: 0x%llx 0x%x",
               (unsigned long long)c, fl);
    o.options = FP4_OPT_TININESS_AFTER;
    fl = 0;
    fp4_encode_f64(FP4_FMT_E2M1, 0.875, &o, &c, &fl);
    fp4t_check(c == 0x2 && fl == FP4_FLAG_INEXACT, "0.875 after: 0x%llx 0x%x", (unsigned long long)c, fl);
    fl = 0;
    fp4_encode_f64(FP4_FMT_E2M1, 0.8125, &o, &c, &fl);
    fp4t_check(c == 0x2 && fl == (FP4_FLAG_INEXACT | FP4_FLAG_UNDERFLOW), "0.8125 after: 0x%llx 0x%x",
               (unsigned long long)c, fl);
    o.round = FP4_RZ;
    fl = 0;
    fp4_encode_f64(FP4_FMT_E2M1, 0.875, &o, &c, &fl);
    fp4t_check(c == 0x1 && fl == (FP4_FLAG_INEXACT | FP4_FLAG_UNDERFLOW), "0.875 rz after: 0x%llx 0x%x",
               (unsigned long long)c, fl);
    /* binary32: 0x1.ffffffp-127 = (2^25 - 1) * 2^-151, just below FLT_MIN,
     * is a tie at 24 bits and goes to the even 2^24 * 2^-150 = FLT_MIN: not
     * tiny after rounding (and FLT_MIN on the subnormal grid too). */
    o.round = FP4_RNE;
    fl = 0;
    fp4_encode_f64(FP4_FMT_F32, 0x1.ffffffp-127, &o, &c, &fl);
    fp4t_check(c == 0x00800000u && fl == FP4_FLAG_INEXACT, "f32 below FLT_MIN after: 0x%llx 0x%x",
               (unsigned long long)c, fl);
    o.options = 0;
    fl = 0;
    fp4_encode_f64(FP4_FMT_F32, 0x1.ffffffp-127, &o, &c, &fl);
    fp4t_check(c == 0x00800000u && fl == (FP4_FLAG_INEXACT | FP4_FLAG_UNDERFLOW),
               "f32 below FLT_MIN before: 0x%llx 0x%x", (unsigned long long)c, fl);
}

int main(void) {
    fp4o_init();
    fp4t_begin("formats_tininess");
    hand_examples();
    for (int f = 0; f < FP4_FMT_COUNT; f++) check_format((fp4_format)f);
    printf("formats_tininess: %ld points x modes, %ld where after-rounding tininess changes the "
           "underflow flag, %ld f32 cases also against the FPU\n", g_cases, g_after_differs, g_fpu);
    fp4t_check(g_after_differs > 0, "no case distinguishes before from after");
    return fp4t_end();
}
