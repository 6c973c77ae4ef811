/* test_formats_nan.c - NaN inputs and the invalid flag (issue 16, item 1).
 *
 * Berkeley TestFloat 3 against SoftFloat found fp4sim raising invalid for
 * quiet NaN inputs. The rule, derived here from IEEE 754-2019 and
 * SoftFloat's conversions, not from ref/:
 *  - a quiet NaN converts without any exception into a format that has a
 *    NaN (§6.2: "quiet NaNs ... propagate ... without signaling");
 *  - a signaling NaN raises invalid (§7.2(a)) and gives a quiet NaN;
 *  - any NaN into a format without NaN (E2M1, E2M3, E3M2) raises invalid,
 *    as a NaN converted to an integer format does (§7.2(j); SoftFloat's
 *    f32_to_i32 of a quiet NaN raises invalid too);
 *  - quiet/signaling is the first fraction bit of an IEEE-style NaN
 *    (§3.4, §6.2.1: 1 = quiet), E5M2 included (it is the top byte of a
 *    binary16); E4M3, UE4M3 and UE8M0 have one NaN code, quiet; a code
 *    outside its format counts as signaling.
 * For binary32 <-> binary64 the rule itself is checked against the FPU's
 * own exception flags (the SSE conversions are IEEE's).
 *
 * Inputs: every NaN pattern of f16, bf16 and e5m2 (both signs); the
 * one-bit, quiet-bit-plus-one-bit, all-ones and 2048 random payloads of
 * f32 and f64 (both signs); the NaN codes of e4m3, ue4m3, ue8m0; codes
 * outside their format. Each into all 11 formats under every policy and
 * the options none, relu, daz, ftz, daz+ftz+relu, through fp4_convert,
 * fp4_encode_f32/_f64 and the f32_to_* / f64_to_* wrappers; flags must be
 * exactly the rule's, ternary 0, the code a NaN of the destination when it
 * has one (decoded by the MPFR oracle's own decoder), and the oracle
 * (tests/mpfr_oracle.c) must agree code for code. */
#include "mpfr_oracle.h"
#include "testutil.h"

#include <fenv.h>
#include <math.h>

/* Field widths restated (IEEE 754-2019 Table 3.5, bfloat16, OCP OFP8). */
typedef struct ieee_src {
    fp4_format f;
    int ebits, mbits;
} ieee_src;

static const ieee_src k_ieee[] = {
    {FP4_FMT_F16, 5, 10}, {FP4_FMT_BF16, 8, 7}, {FP4_FMT_F32, 8, 23},
    {FP4_FMT_F64, 11, 52}, {FP4_FMT_E5M2, 5, 2},
};

/* Destinations that can hold a NaN (docs/formats.md table). */
static bool dst_has_nan(fp4_format d) {
    return d != FP4_FMT_E2M1 && d != FP4_FMT_E2M3 && d != FP4_FMT_E3M2;
}

static const unsigned k_options[] = {0, FP4_OPT_RELU, FP4_OPT_DAZ, FP4_OPT_FTZ,
                                     FP4_OPT_DAZ | FP4_OPT_FTZ | FP4_OPT_RELU};

static long g_cases;

/* The rule: invalid iff signaling, or the destination has no NaN. */
static unsigned want_flags(fp4_format d, bool signaling) {
    return (signaling || !dst_has_nan(d)) ? FP4_FLAG_INVALID : 0;
}

static void check_result(const char *via, fp4_format d, fp4_format s, uint64_t code, bool sig,
                         const fp4_cvt_opts *o, uint64_t got, int tern, unsigned flags) {
    char ob[96];
    unsigned want = want_flags(d, sig);
    fp4t_check(flags == want, "%s %s 0x%llx (%s) -> %s [%s]: flags 0x%x want 0x%x", via,
               fp4_format_get(s)->name, (unsigned long long)code, sig ? "sNaN" : "qNaN",
               fp4_format_get(d)->name, fp4o_opts_string(o, ob, sizeof ob), flags, want);
    fp4t_check(tern == 0, "%s %s 0x%llx -> %s: ternary %d", via, fp4_format_get(s)->name,
               (unsigned long long)code, fp4_format_get(d)->name, tern);
    fp4o_decoded r = fp4o_decode(d, got);
    bool is_nan = r.valid && r.cls == FP4_CLASS_NAN;
    fp4t_check(is_nan == dst_has_nan(d), "%s %s 0x%llx -> %s: code 0x%llx %s a NaN", via,
               fp4_format_get(s)->name, (unsigned long long)code, fp4_format_get(d)->name,
               (unsigned long long)got, is_nan ? "is" : "is not");
    g_cases++;
}

/* One source code, known quiet or signaling, into every destination. */
static void check_code(fp4_format s, uint64_t code, bool sig) {
    fp4t_check(fp4_nan_is_signaling(s, code) == sig, "fp4_nan_is_signaling(%s, 0x%llx) != %d",
               fp4_format_get(s)->name, (unsigned long long)code, sig);
    for (int d = 0; d < FP4_FMT_COUNT; d++) {
        for (int p = 0; p < FP4_POLICY_COUNT; p++) {
            for (size_t k = 0; k < sizeof k_options / sizeof k_options[0]; k++) {
                fp4_cvt_opts o = {p % 2 ? FP4_RZ : FP4_RNE, (fp4_policy)p, k_options[k], 0, 0};
                uint64_t c = 0, oc = 0;
                unsigned fl = 0, ofl = 0;
                int t = fp4_convert((fp4_format)d, s, code, &o, &c, &fl);
                check_result("convert", (fp4_format)d, s, code, sig, &o, c, t, fl);
                int ot = fp4o_convert((fp4_format)d, s, code, &o, &oc, &ofl);
                fp4t_check(c == oc && fl == ofl && t == ot,
                           "%s 0x%llx -> %s: ref 0x%llx/0x%x, oracle 0x%llx/0x%x",
                           fp4_format_get(s)->name, (unsigned long long)code,
                           fp4_format_get((fp4_format)d)->name, (unsigned long long)c, fl,
                           (unsigned long long)oc, ofl);
                if (s == FP4_FMT_F32) {
                    float x = fp4t_f32_from_bits((uint32_t)code);
                    c = 0, fl = 0;
                    t = fp4_encode_f32((fp4_format)d, x, &o, &c, &fl);
                    check_result("encode_f32", (fp4_format)d, s, code, sig, &o, c, t, fl);
                } else if (s == FP4_FMT_F64) {
                    double x;
                    memcpy(&x, &code, sizeof x);
                    c = 0, fl = 0;
                    t = fp4_encode_f64((fp4_format)d, x, &o, &c, &fl);
                    check_result("encode_f64", (fp4_format)d, s, code, sig, &o, c, t, fl);
                }
            }
        }
    }
}

/* The SoftFloat-style wrappers (default options: RNE, satfinite). */
static void check_wrappers(uint32_t f32_code, uint64_t f64_code, bool sig32, bool sig64) {
    float x = fp4t_f32_from_bits(f32_code);
    double y;
    memcpy(&y, &f64_code, sizeof y);
    fp4_cvt_opts o = fp4_cvt_opts_default();
    int t = 0;
    unsigned fl;
    uint64_t c;
#define W(dst, FMT)                                                                          \
    fl = 0;                                                                                 \
    c = f32_to_##dst(x, &o, &t, &fl);                                                       \
    check_result("f32_to_" #dst, FMT, FP4_FMT_F32, f32_code, sig32, &o, c, t, fl);           \
    fl = 0;                                                                                 \
    c = f64_to_##dst(y, &o, &t, &fl);                                                       \
    check_result("f64_to_" #dst, FMT, FP4_FMT_F64, f64_code, sig64, &o, c, t, fl);
    W(e2m1, FP4_FMT_E2M1)
    W(e2m3, FP4_FMT_E2M3)
    W(e3m2, FP4_FMT_E3M2)
    W(e4m3, FP4_FMT_E4M3)
    W(ue4m3, FP4_FMT_UE4M3)
    W(e5m2, FP4_FMT_E5M2)
    W(ue8m0, FP4_FMT_UE8M0)
    W(f16, FP4_FMT_F16)
    W(bf16, FP4_FMT_BF16)
#undef W
}

/* The FPU's verdict on a binary32/binary64 NaN: does converting it to the
 * other width raise FE_INVALID? (IEEE: only a signaling NaN does.) */
static bool fpu_invalid_f32(uint32_t b) {
    volatile float x = fp4t_f32_from_bits(b);
    feclearexcept(FE_ALL_EXCEPT);
    volatile double y = x;
    (void)y;
    return fetestexcept(FE_INVALID) != 0;
}

static bool fpu_invalid_f64(uint64_t b) {
    volatile double x;
    double t;
    memcpy(&t, &b, sizeof t);
    x = t;
    feclearexcept(FE_ALL_EXCEPT);
    volatile float y = (float)x;
    (void)y;
    return fetestexcept(FE_INVALID) != 0;
}

/* NaN code of an IEEE-style source with fraction `frac` (!= 0). */
static uint64_t nan_code(const ieee_src *s, int sign, uint64_t frac) {
    int bits = 1 + s->ebits + s->mbits;
    uint64_t emask = ((1ull << s->ebits) - 1) << s->mbits;
    return ((uint64_t)sign << (bits - 1)) | emask | frac;
}

static void check_ieee_source(const ieee_src *s) {
    uint64_t fmask = (s->mbits >= 64 ? ~0ull : (1ull << s->mbits) - 1);
    uint64_t qbit = 1ull << (s->mbits - 1);
    uint64_t fracs[4096];
    int n = 0;
    if (s->mbits <= 10) { /* f16, bf16, e5m2: every payload */
        for (uint64_t f = 1; f <= fmask; f++) fracs[n++] = f;
    } else { /* f32, f64: one bit, quiet bit + one bit, extremes, random */
        for (int i = 0; i < s->mbits; i++) fracs[n++] = 1ull << i;
        for (int i = 0; i < s->mbits - 1; i++) fracs[n++] = qbit | (1ull << i);
        fracs[n++] = fmask;
        fracs[n++] = fmask >> 1;
        uint64_t seed = fp4t_seed();
        for (int i = 0; i < 2048; i++) {
            uint64_t f = fp4t_rand64(seed, 1600 + (uint32_t)s->mbits, (uint64_t)i) & fmask;
            fracs[n++] = f ? f : 1;
        }
    }
    for (int sign = 0; sign < 2; sign++) {
        for (int i = 0; i < n; i++) {
            uint64_t code = nan_code(s, sign, fracs[i]);
            bool sig = (fracs[i] & qbit) == 0; /* §6.2.1: quiet iff d1 = 1 */
            if (s->f == FP4_FMT_F32)
                fp4t_check(fpu_invalid_f32((uint32_t)code) == sig,
                           "FPU: f32 0x%08llx -> f64 invalid != rule (%d)",
                           (unsigned long long)code, sig);
            if (s->f == FP4_FMT_F64)
                fp4t_check(fpu_invalid_f64(code) == sig, "FPU: f64 0x%016llx -> f32 invalid != rule",
                           (unsigned long long)code);
            check_code(s->f, code, sig);
        }
    }
}

int main(void) {
    fp4o_init();
    fp4t_begin("formats_nan");
    for (size_t i = 0; i < sizeof k_ieee / sizeof k_ieee[0]; i++) check_ieee_source(&k_ieee[i]);
    /* Single NaN codes: quiet. */
    check_code(FP4_FMT_E4M3, 0x7F, false);
    check_code(FP4_FMT_E4M3, 0xFF, false);
    check_code(FP4_FMT_UE4M3, 0x7F, false);
    check_code(FP4_FMT_UE8M0, 0xFF, false);
    /* Codes outside their format: signaling. */
    check_code(FP4_FMT_UE4M3, 0x80, true);
    check_code(FP4_FMT_UE4M3, 0xFF, true);
    check_code(FP4_FMT_E2M1, 0x10, true);
    check_code(FP4_FMT_F16, 0x10000, true);
    /* Not NaN: not signaling. */
    fp4t_check(!fp4_nan_is_signaling(FP4_FMT_F32, 0x7F800000u), "+inf is not a signaling NaN");
    fp4t_check(!fp4_nan_is_signaling(FP4_FMT_E2M1, 0x7), "e2m1 6.0 is not a signaling NaN");
    /* Wrappers: canonical quiet NaNs, the smallest signaling payloads, both signs. */
    check_wrappers(0x7FC00000u, 0x7FF8000000000000ull, false, false);
    check_wrappers(0xFFC00000u, 0xFFF8000000000000ull, false, false);
    check_wrappers(0x7F800001u, 0x7FF0000000000001ull, true, true);
    check_wrappers(0xFFBFFFFFu, 0xFFF7FFFFFFFFFFFFull, true, true);
    /* The NaN of <math.h> is quiet: no invalid into formats with NaN. */
    unsigned fl = 0;
    f32_to_e4m3(NAN, NULL, NULL, &fl);
    fp4t_check(fl == 0, "f32_to_e4m3(NAN): flags 0x%x want 0", fl);
    fl = 0;
    f32_to_e2m1(NAN, NULL, NULL, &fl);
    fp4t_check(fl == FP4_FLAG_INVALID, "f32_to_e2m1(NAN): flags 0x%x want invalid", fl);
    printf("formats_nan: %ld NaN conversions checked\n", g_cases);
    return fp4t_end();
}
