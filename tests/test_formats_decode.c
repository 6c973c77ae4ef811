/* test_formats_decode.c - fp4_decode against the oracle's own decoder for
 * every code of every format of <= 16 bits (and samples of F32/F64), against
 * hand-written value tables from numerics.md §1.2, the static format table
 * against the decoded values, fp4_code_valid on out-of-range codes, and the
 * exact round trip decode -> fp4_encode_value of every non-NaN code in every
 * mode and policy. */
#include "mpfr_oracle.h"
#include "testutil.h"

#include <math.h>
#include <string.h>

static const fp4_format k_small[] = {FP4_FMT_E2M1,  FP4_FMT_E2M3, FP4_FMT_E3M2,
                                     FP4_FMT_E4M3,  FP4_FMT_UE4M3, FP4_FMT_E5M2,
                                     FP4_FMT_UE8M0, FP4_FMT_F16,  FP4_FMT_BF16};
#define NSMALL ((int)(sizeof k_small / sizeof k_small[0]))

static const char *fname(fp4_format f) { return fp4_format_get(f)->name; }

static bool same_double(double a, double b) { /* bit-identical, so -0 != +0 */
    return memcmp(&a, &b, sizeof a) == 0;
}

/* fp4_decode(f, code) equals the oracle's decoding: class, sign, value, and
 * the reduced (odd) significand. */
static void check_code(fp4_format f, uint64_t code) {
    fp4_value v = fp4_decode(f, code);
    fp4o_decoded d = fp4o_decode(f, code);
    fp4t_check(fp4_code_valid(f, code), "%s 0x%llx should be valid", fname(f),
               (unsigned long long)code);
    if (!fp4t_check(v.cls == d.cls && v.sign == d.sign,
                    "%s 0x%llx: class/sign %d/%d, oracle %d/%d", fname(f),
                    (unsigned long long)code, v.cls, v.sign, d.cls, d.sign))
        return;
    if (v.cls == FP4_CLASS_FINITE) {
        double x = ldexp((double)v.sig, v.exp) * (v.sign ? -1.0 : 1.0);
        fp4t_check((v.sig & 1) && same_double(x, d.value), "%s 0x%llx: %llu*2^%d, oracle %a",
                   fname(f), (unsigned long long)code, (unsigned long long)v.sig, (int)v.exp,
                   d.value);
    } else if (v.cls == FP4_CLASS_ZERO) {
        fp4t_check(v.sig == 0, "%s 0x%llx: zero with sig %llu", fname(f),
                   (unsigned long long)code, (unsigned long long)v.sig);
    }
    if (v.cls != FP4_CLASS_NAN)
        fp4t_check(same_double(fp4_to_f64(f, code), d.value), "%s 0x%llx: fp4_to_f64 %a vs %a",
                   fname(f), (unsigned long long)code, fp4_to_f64(f, code), d.value);
    else
        fp4t_check(isnan(fp4_to_f64(f, code)), "%s 0x%llx: fp4_to_f64 not NaN", fname(f),
                   (unsigned long long)code);
}

static void test_all_codes(void) {
    for (int i = 0; i < NSMALL; i++) {
        fp4_format f = k_small[i];
        uint64_t n = fp4_format_ncodes(f);
        for (uint64_t c = 0; c < n; c++) check_code(f, c);
    }
    /* F32 / F64: specials plus Philox samples (the FPU is the oracle). */
    const uint64_t f32_special[] = {0, 1, 0x007FFFFF, 0x00800000, 0x3F800000, 0x7F7FFFFF,
                                    0x7F800000, 0x7F800001, 0x7FC00000, 0x80000000,
                                    0x80000001, 0xFF800000, 0xFFFFFFFF};
    for (size_t i = 0; i < sizeof f32_special / sizeof f32_special[0]; i++)
        check_code(FP4_FMT_F32, f32_special[i]);
    const uint64_t f64_special[] = {0, 1, 0x000FFFFFFFFFFFFFull, 0x0010000000000000ull,
                                    0x3FF0000000000000ull, 0x7FEFFFFFFFFFFFFFull,
                                    0x7FF0000000000000ull, 0x7FF8000000000000ull,
                                    0x8000000000000000ull, 0xFFF0000000000001ull};
    for (size_t i = 0; i < sizeof f64_special / sizeof f64_special[0]; i++)
        check_code(FP4_FMT_F64, f64_special[i]);
    uint64_t seed = fp4t_seed();
    for (uint64_t i = 0; i < (1u << 18); i++) {
        check_code(FP4_FMT_F32, fp4t_rand32(seed, 1, i));
        check_code(FP4_FMT_F64, fp4t_rand64(seed, 2, i));
    }
}

/* ------------------------------------------------------------------------ */
/* Hand-written tables (numerics.md §1.1, §1.2)                              */
/* ------------------------------------------------------------------------ */

typedef struct known {
    fp4_format f;
    uint64_t code;
    fp4_class cls;
    double value; /* ignored for NaN */
} known;

#define FIN(f, c, v) {FP4_FMT_##f, c, FP4_CLASS_FINITE, v}
#define ZER(f, c, v) {FP4_FMT_##f, c, FP4_CLASS_ZERO, v}
#define INF(f, c, v) {FP4_FMT_##f, c, FP4_CLASS_INF, v}
#define NAN_(f, c) {FP4_FMT_##f, c, FP4_CLASS_NAN, 0}

static const known k_known[] = {
    /* E2M1 codes 0..7 = 0, 0.5, 1, 1.5, 2, 3, 4, 6; 0x8 = -0 (§1.2) */
    ZER(E2M1, 0x0, 0.0), FIN(E2M1, 0x1, 0.5), FIN(E2M1, 0x2, 1.0), FIN(E2M1, 0x3, 1.5),
    FIN(E2M1, 0x4, 2.0), FIN(E2M1, 0x5, 3.0), FIN(E2M1, 0x6, 4.0), FIN(E2M1, 0x7, 6.0),
    ZER(E2M1, 0x8, -0.0), FIN(E2M1, 0x9, -0.5), FIN(E2M1, 0xD, -3.0), FIN(E2M1, 0xF, -6.0),
    /* E4M3: subnormals m*2^-9, 2^-6 smallest normal, top binade 256..448,
     * 0x7F / 0xFF NaN (§1.2) */
    ZER(E4M3, 0x00, 0.0), FIN(E4M3, 0x01, 0x1p-9), FIN(E4M3, 0x07, 7 * 0x1p-9),
    FIN(E4M3, 0x08, 0x1p-6), FIN(E4M3, 0x38, 1.0), FIN(E4M3, 0x78, 256), FIN(E4M3, 0x79, 288),
    FIN(E4M3, 0x7A, 320), FIN(E4M3, 0x7B, 352), FIN(E4M3, 0x7C, 384), FIN(E4M3, 0x7D, 416),
    FIN(E4M3, 0x7E, 448), NAN_(E4M3, 0x7F), ZER(E4M3, 0x80, -0.0), FIN(E4M3, 0xFE, -448),
    NAN_(E4M3, 0xFF),
    /* UE4M3: the same magnitudes in 7 bits, NaN 0x7F only */
    ZER(UE4M3, 0x00, 0.0), FIN(UE4M3, 0x01, 0x1p-9), FIN(UE4M3, 0x7E, 448), NAN_(UE4M3, 0x7F),
    /* E5M2: max 57344 (0x7B), Inf 0x7C/0xFC, NaN 0x7D-0x7F (§1.1) */
    FIN(E5M2, 0x01, 0x1p-16), FIN(E5M2, 0x04, 0x1p-14), FIN(E5M2, 0x3C, 1.0),
    FIN(E5M2, 0x7B, 57344), INF(E5M2, 0x7C, INFINITY), NAN_(E5M2, 0x7D), NAN_(E5M2, 0x7E),
    NAN_(E5M2, 0x7F), INF(E5M2, 0xFC, -INFINITY), FIN(E5M2, 0xFB, -57344),
    /* UE8M0: 2^(e-127), 0x00 = 2^-127, 0xFF NaN, no zero (§1.2) */
    FIN(UE8M0, 0x00, 0x1p-127), FIN(UE8M0, 0x7F, 1.0), FIN(UE8M0, 0xFE, 0x1p127),
    NAN_(UE8M0, 0xFF),
    /* FP16, BF16 (§1.1) */
    FIN(F16, 0x0001, 0x1p-24), FIN(F16, 0x0400, 0x1p-14), FIN(F16, 0x3C00, 1.0),
    FIN(F16, 0x7BFF, 65504), INF(F16, 0x7C00, INFINITY), NAN_(F16, 0x7E00), ZER(F16, 0x8000, -0.0),
    FIN(BF16, 0x0001, 0x1p-133), FIN(BF16, 0x0080, 0x1p-126), FIN(BF16, 0x3F80, 1.0),
    FIN(BF16, 0x7F7F, 0x1.FEp127), INF(BF16, 0x7F80, INFINITY), NAN_(BF16, 0x7FC0),
};

/* E2M3 and E3M2 magnitudes, codes 0x00..0x1F in order (§1.2). */
static const double k_e2m3[32] = {0,    0.125, 0.25, 0.375, 0.5,  0.625, 0.75, 0.875,
                                  1,    1.125, 1.25, 1.375, 1.5,  1.625, 1.75, 1.875,
                                  2,    2.25,  2.5,  2.75,  3,    3.25,  3.5,  3.75,
                                  4,    4.5,   5,    5.5,   6,    6.5,   7,    7.5};
static const double k_e3m2[32] = {0,    0.0625, 0.125, 0.1875, 0.25, 0.3125, 0.375, 0.4375,
                                  0.5,  0.625,  0.75,  0.875,  1,    1.25,   1.5,   1.75,
                                  2,    2.5,    3,     3.5,    4,    5,      6,     7,
                                  8,    10,     12,    14,     16,   20,     24,    28};

static void check_known(const known *k) {
    fp4_value v = fp4_decode(k->f, k->code);
    fp4o_decoded d = fp4o_decode(k->f, k->code);
    fp4t_check(v.cls == k->cls && d.cls == k->cls, "%s 0x%llx: class %d / oracle %d, table %d",
               fname(k->f), (unsigned long long)k->code, v.cls, d.cls, k->cls);
    if (k->cls == FP4_CLASS_NAN) return;
    fp4t_check(same_double(fp4_to_f64(k->f, k->code), k->value) && same_double(d.value, k->value),
               "%s 0x%llx: %a / oracle %a, table %a", fname(k->f), (unsigned long long)k->code,
               fp4_to_f64(k->f, k->code), d.value, k->value);
}

static void test_known_tables(void) {
    for (size_t i = 0; i < sizeof k_known / sizeof k_known[0]; i++) check_known(&k_known[i]);
    for (int s = 0; s < 2; s++)
        for (uint64_t c = 0; c < 32; c++) {
            double sg = s ? -1.0 : 1.0;
            known a = {FP4_FMT_E2M3, c | (uint64_t)s << 5, c ? FP4_CLASS_FINITE : FP4_CLASS_ZERO,
                       sg * k_e2m3[c]};
            known b = {FP4_FMT_E3M2, c | (uint64_t)s << 5, c ? FP4_CLASS_FINITE : FP4_CLASS_ZERO,
                       sg * k_e3m2[c]};
            check_known(&a);
            check_known(&b);
        }
    /* E4M3: 126 non-zero finite non-negative codes, 2^-9 .. 448 (§1.2) */
    fp4t_check(fp4o_count_nonneg(FP4_FMT_E4M3) == 127, "e4m3: %lld non-negative finite codes",
               (long long)fp4o_count_nonneg(FP4_FMT_E4M3));
}

/* ------------------------------------------------------------------------ */
/* The static table against decoded values                                   */
/* ------------------------------------------------------------------------ */

static void test_format_table(void) {
    for (int f = 0; f < FP4_FMT_COUNT; f++) {
        const fp4_format_info *fi = fp4_format_get((fp4_format)f);
        fp4o_decoded mx = fp4o_decode((fp4_format)f, fi->max_finite);
        fp4t_check(mx.cls == FP4_CLASS_FINITE && mx.value == fp4o_max_finite((fp4_format)f),
                   "%s: max_finite code 0x%llx decodes to %a, largest finite is %a", fi->name,
                   (unsigned long long)fi->max_finite, mx.value, fp4o_max_finite((fp4_format)f));
        int ex = 0;
        frexp(mx.value, &ex); /* max = f * 2^ex, f in [0.5, 1): binade ex - 1 */
        fp4t_check(ex - 1 == fi->emax, "%s: emax %d vs max %a", fi->name, fi->emax, mx.value);
        /* smallest normal: exponent field 1 (UE8M0: field 0) is 2^emin */
        uint64_t min_normal = fi->has_subnormals ? 1ull << fi->mbits : 0;
        fp4o_decoded mn = fp4o_decode((fp4_format)f, min_normal);
        fp4t_check(mn.value == ldexp(1.0, fi->emin), "%s: emin %d vs %a", fi->name, fi->emin,
                   mn.value);
        if (fi->nan != FP4_NAN_NONE) {
            fp4o_decoded cn = fp4o_decode((fp4_format)f, fi->canonical_nan);
            fp4t_check(cn.cls == FP4_CLASS_NAN && cn.sign == 0, "%s: canonical NaN 0x%llx",
                       fi->name, (unsigned long long)fi->canonical_nan);
        }
        fp4t_check(fp4_rs_default_width((fp4_format)f) == fp4o_rs_width((fp4_format)f),
                   "%s: rs width %d, PTX %d", fi->name, fp4_rs_default_width((fp4_format)f),
                   fp4o_rs_width((fp4_format)f));
        fp4t_check(fi->has_zero == (fp4o_decode((fp4_format)f, 0).cls == FP4_CLASS_ZERO),
                   "%s: has_zero", fi->name);
    }
    fp4t_check(fp4_format_ncodes(FP4_FMT_UE4M3) == 128, "ue4m3 has 128 codes");
    fp4t_check(fp4_format_ncodes(FP4_FMT_E2M1) == 16, "e2m1 has 16 codes");
    fp4t_check(fp4_format_get(FP4_FMT_COUNT) == NULL, "format table bound");
}

/* Codes at and past the end of each format: invalid, decode as NaN. */
static void test_code_valid(void) {
    for (int i = 0; i < NSMALL; i++) {
        fp4_format f = k_small[i];
        uint64_t n = fp4_format_ncodes(f);
        const uint64_t bad[] = {n, n + 1, 2 * n - 1, 0x100000000ull, ~0ull};
        fp4t_check(fp4_code_valid(f, n - 1), "%s: 0x%llx valid", fname(f),
                   (unsigned long long)(n - 1));
        for (size_t j = 0; j < sizeof bad / sizeof bad[0]; j++) {
            fp4t_check(!fp4_code_valid(f, bad[j]), "%s: 0x%llx accepted", fname(f),
                       (unsigned long long)bad[j]);
            fp4t_check(fp4_decode(f, bad[j]).cls == FP4_CLASS_NAN, "%s: 0x%llx not NaN",
                       fname(f), (unsigned long long)bad[j]);
        }
    }
    fp4t_check(!fp4_code_valid(FP4_FMT_UE4M3, 0x80), "ue4m3 0x80 must be invalid");
    fp4t_check(!fp4_code_valid(FP4_FMT_UE4M3, 0xFF), "ue4m3 0xFF must be invalid");
    fp4t_check(!fp4_code_valid(FP4_FMT_E2M1, 0x10), "e2m1 0x10 must be invalid");
    fp4t_check(!fp4_code_valid(FP4_FMT_E2M3, 0x40), "e2m3 0x40 must be invalid");
    fp4t_check(!fp4_code_valid(FP4_FMT_F32, 0x100000000ull), "f32 2^32 must be invalid");
    fp4t_check(fp4_code_valid(FP4_FMT_F64, ~0ull), "f64 all ones is valid");
}

/* ------------------------------------------------------------------------ */
/* Exact round trip                                                          */
/* ------------------------------------------------------------------------ */

/* What encoding a decoded non-NaN code gives back. Exceptions (documented
 * policy behaviour, not rounding): +-Inf under satfinite / cutlass-host
 * saturate to +-max; modelopt writes -0 as +0 in formats without NaN
 * (its sign bit is x < 0). */
static fp4o_res expected_round_trip(fp4_format f, uint64_t code, fp4_policy p) {
    const fp4_format_info *fi = fp4_format_get(f);
    fp4o_decoded d = fp4o_decode(f, code);
    fp4o_res same = {code, 0, 0};
    bool sat = p == FP4_POLICY_SATFINITE || p == FP4_POLICY_CUTLASS_HOST;
    if (d.cls == FP4_CLASS_INF && sat) {
        fp4o_res r = {fi->max_finite | (d.sign ? 1ull << (fi->bits - 1) : 0), d.sign ? 1 : -1,
                      FP4_FLAG_INEXACT | FP4_FLAG_SATURATED};
        return r;
    }
    if (d.cls == FP4_CLASS_ZERO && d.sign && p == FP4_POLICY_MODELOPT &&
        fi->nan == FP4_NAN_NONE) {
        fp4o_res r = {0, 0, 0};
        return r;
    }
    return same;
}

static void round_trip_one(fp4_format f, uint64_t code, const fp4_cvt_opts *o) {
    fp4_value v = fp4_decode(f, code);
    if (v.cls == FP4_CLASS_NAN) return;
    fp4o_res want = expected_round_trip(f, code, o->policy);
    uint64_t got = ~0ull;
    unsigned fl = 0;
    int t = fp4o_sgn(fp4_encode_value(f, &v, o, &got, &fl));
    fp4o_res res = {got, t, fl};
    char buf[96];
    fp4t_check(fp4o_res_eq(res, want), "%s 0x%llx round trip (%s): 0x%llx t=%d fl=0x%x, want "
               "0x%llx t=%d fl=0x%x", fname(f), (unsigned long long)code,
               fp4o_opts_string(o, buf, sizeof buf), (unsigned long long)got, t, fl,
               (unsigned long long)want.code, want.ternary, want.flags);
    /* the same through fp4_convert from the format itself */
    got = ~0ull;
    fl = 0;
    t = fp4o_sgn(fp4_convert(f, f, code, o, &got, &fl));
    fp4o_res res2 = {got, t, fl};
    fp4t_check(fp4o_res_eq(res2, want), "%s 0x%llx convert to itself (%s): 0x%llx", fname(f),
               (unsigned long long)code, fp4o_opts_string(o, buf, sizeof buf),
               (unsigned long long)got);
}

static void test_round_trip(void) {
    static fp4o_config cfg[FP4O_MAX_CONFIGS];
    for (int i = 0; i < NSMALL; i++) {
        fp4_format f = k_small[i];
        int nc = fp4o_configs(f, 1, cfg, FP4O_MAX_CONFIGS);
        uint64_t n = fp4_format_ncodes(f);
        for (int k = 0; k < nc; k++) {
            if (cfg[k].o.options) continue; /* options change values by design */
            fp4_cvt_opts o = cfg[k].o;
            for (uint64_t c = 0; c < n; c++) {
                if (cfg[k].random_rbits) o.rbits = fp4t_rand32(fp4t_seed(), 3, c);
                round_trip_one(f, c, &o);
            }
        }
    }
    /* F32 / F64 samples, RNE and RS */
    fp4_cvt_opts o = fp4_cvt_opts_default();
    for (uint64_t i = 0; i < 4096; i++) {
        o.round = (i & 1) ? FP4_RS : FP4_RNE;
        o.rbits = fp4t_rand32(fp4t_seed(), 4, i);
        round_trip_one(FP4_FMT_F32, fp4t_rand32(fp4t_seed(), 5, i), &o);
        round_trip_one(FP4_FMT_F64, fp4t_rand64(fp4t_seed(), 6, i), &o);
    }
}

int main(void) {
    fp4o_init();
    fp4t_begin("test_formats_decode");
    test_all_codes();
    test_known_tables();
    test_format_table();
    test_code_valid();
    test_round_trip();
    return fp4t_end();
}
