/* ops.c - exact add, multiply and fused multiply-add on codes of one format
 * (fp4gemm.h): the exact result of the operation, rounded once by ref/'s
 * one rounding routine (fp4_encode_bigint). IEEE 754-2019 §6 for special
 * values and signs of zero; the FP32 epilogue and emu/'s adds use these, so
 * no result depends on the host FPU. test_ops checks them against MPFR
 * (every pair of codes of the <= 8-bit formats, random F16/BF16/F32/F64)
 * and against the host's IEEE arithmetic in RNE, RZ, RU and RD. */
#include "fp4ref.h"

#include <gmp.h>
#include <stdlib.h>

/* The result of an invalid operation or a NaN operand. */
static uint64_t nan_result(fp4_format f, bool invalid, int *ternary, unsigned *flags) {
    if (ternary) *ternary = 0;
    if (flags && invalid) *flags |= FP4_FLAG_INVALID;
    return fp4_format_get(f)->canonical_nan;
}

static uint64_t inf_code(fp4_format f, int sign) {
    const fp4_format_info *fi = fp4_format_get(f);
    uint64_t mag = ((uint64_t)1 << (fi->bits - 1)) - ((uint64_t)1 << fi->mbits); /* exp all ones */
    return ((uint64_t)sign << (fi->bits - 1)) | mag;
}

static uint64_t zero_code(fp4_format f, int sign) {
    return (uint64_t)sign << (fp4_format_get(f)->bits - 1);
}

/* Rounds sign * z * 2^e (z >= 0) into f; exact-zero signs are the caller's. */
static uint64_t round_z(fp4_format f, int sign, const mpz_t z, int64_t e, fp4_round mode,
                        int *ternary, unsigned *flags) {
    fp4_cvt_opts o = {mode, FP4_POLICY_NOSAT, 0, 0, 0};
    size_t need = (mpz_sizeinbase(z, 2) + 63) / 64, cnt = 0;
    uint64_t stackbuf[8];
    uint64_t *limbs = need <= 8 ? stackbuf : malloc(need * sizeof *limbs);
    if (!limbs) return nan_result(f, false, ternary, NULL);
    mpz_export(limbs, &cnt, -1, sizeof limbs[0], 0, 0, z);
    uint64_t code = 0;
    unsigned fl = 0;
    int t = fp4_encode_bigint(f, sign, limbs, cnt, e, &o, &code, &fl);
    if (limbs != stackbuf) free(limbs);
    if (ternary) *ternary = t;
    if (flags) *flags |= fl;
    return code;
}

static void mpz_set_u64(mpz_t z, uint64_t v) { mpz_import(z, 1, -1, sizeof v, 0, 0, &v); }

static bool is_nan(const fp4_value *v) { return v->cls == FP4_CLASS_NAN; }

/* NaN operands: canonical NaN, invalid only for signaling ones (as fp4_convert). */
static bool nan_operand(fp4_format f, const uint64_t *codes, const fp4_value *v, int n,
                        uint64_t *res, int *ternary, unsigned *flags) {
    bool any = false, sig = false;
    for (int i = 0; i < n; i++)
        if (is_nan(&v[i])) {
            any = true;
            sig = sig || fp4_nan_is_signaling(f, codes[i]);
        }
    if (any) *res = nan_result(f, sig, ternary, flags);
    return any;
}

/* sign * x with x the exact sum of two signed terms (value = s * z * 2^e),
 * each given as (sign, odd significand, exponent) or zero. Handles the
 * sign of an exact zero: +0 unless both addends are -0 (or RD: -0). */
static uint64_t add_terms(fp4_format f, int s1, bool z1, const mpz_t m1, int64_t e1, int s2,
                          bool z2, const mpz_t m2, int64_t e2, fp4_round mode, int *ternary,
                          unsigned *flags) {
    if (z1 && z2) {
        if (ternary) *ternary = 0;
        int sign = (s1 && s2) || (mode == FP4_RD && (s1 || s2));
        return zero_code(f, sign);
    }
    mpz_t a, b;
    mpz_init(a), mpz_init(b);
    int64_t e = z1 ? e2 : z2 ? e1 : (e1 < e2 ? e1 : e2);
    if (!z1) mpz_mul_2exp(a, m1, (mp_bitcnt_t)(e1 - e));
    if (!z2) mpz_mul_2exp(b, m2, (mp_bitcnt_t)(e2 - e));
    if (s1) mpz_neg(a, a);
    if (s2) mpz_neg(b, b);
    mpz_add(a, a, b);
    uint64_t code;
    if (mpz_sgn(a) == 0) {
        if (ternary) *ternary = 0;
        code = zero_code(f, mode == FP4_RD);
    } else {
        int sign = mpz_sgn(a) < 0;
        mpz_abs(a, a);
        code = round_z(f, sign, a, e, mode, ternary, flags);
    }
    mpz_clear(a), mpz_clear(b);
    return code;
}

static bool bad_mode(fp4_round mode) { return (unsigned)mode >= FP4_ROUND_COUNT || mode == FP4_RS; }

uint64_t fp4_add(fp4_format f, uint64_t a, uint64_t b, fp4_round mode, int *ternary,
                 unsigned *flags) {
    if (bad_mode(mode)) return nan_result(f, false, ternary, NULL);
    const uint64_t codes[2] = {a, b};
    fp4_value v[2] = {fp4_decode(f, a), fp4_decode(f, b)};
    uint64_t res;
    if (nan_operand(f, codes, v, 2, &res, ternary, flags)) return res;
    if (v[0].cls == FP4_CLASS_INF || v[1].cls == FP4_CLASS_INF) {
        if (v[0].cls == FP4_CLASS_INF && v[1].cls == FP4_CLASS_INF && v[0].sign != v[1].sign)
            return nan_result(f, true, ternary, flags);
        if (ternary) *ternary = 0;
        return inf_code(f, v[0].cls == FP4_CLASS_INF ? v[0].sign : v[1].sign);
    }
    mpz_t m1, m2;
    mpz_init(m1), mpz_init(m2);
    mpz_set_u64(m1, v[0].sig), mpz_set_u64(m2, v[1].sig);
    res = add_terms(f, v[0].sign, v[0].cls == FP4_CLASS_ZERO, m1, v[0].exp, v[1].sign,
                    v[1].cls == FP4_CLASS_ZERO, m2, v[1].exp, mode, ternary, flags);
    mpz_clear(m1), mpz_clear(m2);
    return res;
}

/* a * b exactly as (sign, zero?, significand, exponent); false for an
 * invalid product (0 * Inf) or an infinite one (*inf set). */
static bool product(const fp4_value *a, const fp4_value *b, int *sign, bool *zero, mpz_t m,
                    int64_t *e, bool *inf, bool *invalid) {
    *sign = a->sign ^ b->sign;
    *inf = a->cls == FP4_CLASS_INF || b->cls == FP4_CLASS_INF;
    *zero = a->cls == FP4_CLASS_ZERO || b->cls == FP4_CLASS_ZERO;
    *invalid = *inf && *zero;
    if (*inf || *zero) return false;
    mpz_set_u64(m, a->sig);
    mpz_t t;
    mpz_init(t);
    mpz_set_u64(t, b->sig);
    mpz_mul(m, m, t);
    mpz_clear(t);
    *e = (int64_t)a->exp + b->exp;
    return true;
}

uint64_t fp4_mul(fp4_format f, uint64_t a, uint64_t b, fp4_round mode, int *ternary,
                 unsigned *flags) {
    if (bad_mode(mode)) return nan_result(f, false, ternary, NULL);
    const uint64_t codes[2] = {a, b};
    fp4_value v[2] = {fp4_decode(f, a), fp4_decode(f, b)};
    uint64_t res;
    if (nan_operand(f, codes, v, 2, &res, ternary, flags)) return res;
    int sign;
    bool zero, inf, invalid;
    int64_t e = 0;
    mpz_t m;
    mpz_init(m);
    if (product(&v[0], &v[1], &sign, &zero, m, &e, &inf, &invalid)) {
        res = round_z(f, sign, m, e, mode, ternary, flags);
    } else if (invalid) {
        res = nan_result(f, true, ternary, flags);
    } else {
        if (ternary) *ternary = 0;
        res = inf ? inf_code(f, sign) : zero_code(f, sign);
    }
    mpz_clear(m);
    return res;
}

uint64_t fp4_mul_add(fp4_format f, uint64_t a, uint64_t b, uint64_t c, fp4_round mode,
                     int *ternary, unsigned *flags) {
    if (bad_mode(mode)) return nan_result(f, false, ternary, NULL);
    const uint64_t codes[3] = {a, b, c};
    fp4_value v[3] = {fp4_decode(f, a), fp4_decode(f, b), fp4_decode(f, c)};
    uint64_t res;
    int sign;
    bool zero, inf, invalid;
    int64_t e = 0;
    mpz_t m, mc;
    mpz_init(m), mpz_init(mc);
    bool finite = product(&v[0], &v[1], &sign, &zero, m, &e, &inf, &invalid);
    /* IEEE 754 §7.2(c): fma(0, Inf, c) is invalid even when c is a quiet NaN. */
    if (invalid) {
        res = nan_result(f, true, ternary, flags);
    } else if (nan_operand(f, codes, v, 3, &res, ternary, flags)) {
    } else if (inf || v[2].cls == FP4_CLASS_INF) {
        if (inf && v[2].cls == FP4_CLASS_INF && sign != v[2].sign)
            res = nan_result(f, true, ternary, flags);
        else {
            if (ternary) *ternary = 0;
            res = inf_code(f, inf ? sign : v[2].sign);
        }
    } else {
        (void)finite;
        mpz_set_u64(mc, v[2].sig);
        res = add_terms(f, sign, zero, m, e, v[2].sign, v[2].cls == FP4_CLASS_ZERO, mc, v[2].exp,
                        mode, ternary, flags);
    }
    mpz_clear(m), mpz_clear(mc);
    return res;
}
