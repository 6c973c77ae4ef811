/* mpfr_oracle.c - independent MPFR oracle for ref/formats.c (see the header
 * for the method). Nothing here calls fp4_decode, fp4_encode_* or
 * fp4_convert: only fp4_format_get for the static format table. */
#define _GNU_SOURCE /* glibc issignaling (ISO/IEC TS 18661-1) */
#include "mpfr_oracle.h"

#include <float.h>
#include <gmp.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Formats as the oracle sees them                                           */
/* ------------------------------------------------------------------------ */

typedef struct code_entry {
    double mag;    /* exact value of a finite code with sign bit clear */
    uint64_t code;
} code_entry;

typedef struct fmt_view {
    const fp4_format_info *fi;
    bool ready;
    uint64_t ncodes;     /* 0 for F64 (2^64) */
    uint64_t sign_bit;   /* 0 for unsigned formats */
    long emin, qmin;     /* smallest normal 2^emin; smallest subnormal 2^qmin */
    bool has_inf, has_nan, has_zero, subnormals;
    uint64_t inf_mag;    /* magnitude bits of +Inf (if has_inf) */
    uint64_t qnan_mag;   /* magnitude bits of the NaN IEEE software produces */
    uint64_t max_code;   /* largest finite, from the code table */
    double max;
    code_entry *table;   /* sorted by value; formats of <= 16 bits */
    int64_t ntable;
} fmt_view;

static fmt_view g_view[FP4_FMT_COUNT];

static uint64_t ones(int n) { return n >= 64 ? ~0ull : (1ull << n) - 1; }

int fp4o_rs_width(fp4_format f) {
    /* PTX ISA 9.1 cvt.rs: 16 random bits per .bf16 result, 13 LSBs per .f16,
     * 8 per element of the x4 forms (e4m3x4, e5m2x4, e2m3x4, e3m2x4, e2m1x4). */
    switch (f) {
    case FP4_FMT_BF16: return 16;
    case FP4_FMT_F16: return 13;
    default: return 8;
    }
}

/* ------------------------------------------------------------------------ */
/* Decoding                                                                  */
/* ------------------------------------------------------------------------ */

static fp4o_decoded from_double(double v) {
    fp4o_decoded d = {true, FP4_CLASS_FINITE, signbit(v) ? 1 : 0, false, v, false};
    switch (fpclassify(v)) {
    case FP_NAN: d.cls = FP4_CLASS_NAN; break;
    case FP_INFINITE: d.cls = FP4_CLASS_INF; break;
    case FP_ZERO: d.cls = FP4_CLASS_ZERO; break;
    default: break;
    }
    return d;
}

/* Field formula of numerics.md §1.1: e = 0 -> m * 2^(1-bias-M); otherwise
 * (2^M + m) * 2^(e-bias-M); UE8M0 (no fraction, no subnormals) 2^(e-bias). */
static fp4o_decoded decode_fields(const fp4_format_info *fi, uint64_t code) {
    int magbits = fi->is_signed ? fi->bits - 1 : fi->bits;
    int sign = fi->is_signed ? (int)((code >> magbits) & 1) : 0;
    uint64_t mag = code & ones(magbits);
    uint64_t e = mag >> fi->mbits, m = mag & ones(fi->mbits);
    bool e_all_ones = e == ones(fi->ebits);
    fp4o_decoded d = {true, FP4_CLASS_NAN, sign, false, NAN, false};
    /* The single NaN code of E4M3/UE4M3/UE8M0 is quiet; IEEE-style (E5M2,
     * F16): quiet iff the first fraction bit is set (IEEE 754-2019 §3.4). */
    if (fi->nan == FP4_NAN_ALL_ONES && mag == ones(magbits)) return d;
    if (fi->nan == FP4_NAN_IEEE && e_all_ones && m != 0) {
        d.signaling = ((m >> (fi->mbits - 1)) & 1) == 0;
        return d;
    }
    double s = sign ? -1.0 : 1.0;
    if (fi->has_inf && e_all_ones && m == 0) {
        d.cls = FP4_CLASS_INF;
        d.value = s * INFINITY;
        return d;
    }
    if (!fi->has_subnormals) {
        d.cls = FP4_CLASS_FINITE;
        d.value = s * ldexp(1.0, (int)e - fi->bias);
        return d;
    }
    if (e == 0) {
        d.cls = m ? FP4_CLASS_FINITE : FP4_CLASS_ZERO;
        d.subnormal = m != 0;
        d.value = s * ldexp((double)m, 1 - fi->bias - fi->mbits);
        return d;
    }
    d.cls = FP4_CLASS_FINITE;
    d.value = s * ldexp((double)((1ull << fi->mbits) | m), (int)e - fi->bias - fi->mbits);
    return d;
}

fp4o_decoded fp4o_decode(fp4_format f, uint64_t code) {
    const fp4_format_info *fi = fp4_format_get(f);
    fp4o_decoded bad = {false, FP4_CLASS_NAN, 0, false, NAN, true};
    if (!fi || (fi->bits < 64 && code >> fi->bits)) return bad;
    fp4o_decoded d;
    if (f == FP4_FMT_F64) {
        double v;
        memcpy(&v, &code, sizeof v);
        d = from_double(v);
        d.subnormal = fpclassify(v) == FP_SUBNORMAL;
        d.signaling = issignaling(v);
    } else if (f == FP4_FMT_F32 || f == FP4_FMT_BF16) {
        /* bfloat16 is the top half of a binary32: let the FPU decode it
         * (its quiet bit is binary32's). */
        uint32_t b = f == FP4_FMT_BF16 ? (uint32_t)code << 16 : (uint32_t)code;
        float v;
        memcpy(&v, &b, sizeof v);
        d = from_double((double)v);
        d.subnormal = fpclassify(v) == FP_SUBNORMAL;
        d.signaling = issignaling(v);
#ifdef __FLT16_MANT_DIG__
    } else if (f == FP4_FMT_F16) { /* the compiler's binary16 */
        uint16_t b = (uint16_t)code;
        _Float16 v;
        memcpy(&v, &b, sizeof v);
        d = from_double((double)v);
        d.subnormal = d.cls == FP4_CLASS_FINITE && fabs(d.value) < 0x1p-14;
        d.signaling = d.cls == FP4_CLASS_NAN && !((b >> 9) & 1); /* no issignaling for _Float16 */
#endif
    } else {
        return decode_fields(fi, code);
    }
    if (d.cls == FP4_CLASS_NAN) d.value = NAN;
    return d;
}

/* ------------------------------------------------------------------------ */
/* Code tables                                                               */
/* ------------------------------------------------------------------------ */

static int cmp_entry(const void *a, const void *b) {
    double x = ((const code_entry *)a)->mag, y = ((const code_entry *)b)->mag;
    return (x > y) - (x < y);
}

static void build_table(fp4_format f, fmt_view *v) {
    v->table = malloc(sizeof(code_entry) * (size_t)v->ncodes);
    v->ntable = 0;
    for (uint64_t c = 0; c < v->ncodes; c++) {
        fp4o_decoded d = fp4o_decode(f, c);
        if (d.sign || (d.cls != FP4_CLASS_FINITE && d.cls != FP4_CLASS_ZERO)) continue;
        v->table[v->ntable].mag = d.value;
        v->table[v->ntable].code = c;
        v->ntable++;
    }
    qsort(v->table, (size_t)v->ntable, sizeof(code_entry), cmp_entry);
    for (int64_t i = 1; i < v->ntable; i++)
        if (!(v->table[i].mag > v->table[i - 1].mag)) {
            fprintf(stderr, "oracle: %s has two codes with value %a\n", v->fi->name,
                    v->table[i].mag);
            abort();
        }
    v->max = v->table[v->ntable - 1].mag;
    v->max_code = v->table[v->ntable - 1].code;
}

static void init_view(fp4_format f) {
    fmt_view *v = &g_view[f];
    const fp4_format_info *fi = fp4_format_get(f);
    int magbits = fi->is_signed ? fi->bits - 1 : fi->bits;
    v->fi = fi;
    v->ncodes = fi->bits >= 64 ? 0 : 1ull << fi->bits;
    v->sign_bit = fi->is_signed ? 1ull << (fi->bits - 1) : 0;
    v->subnormals = fi->has_subnormals;
    /* IEEE-style formats: smallest normal has exponent field 1; UE8M0 has no
     * subnormals and its field 0 is the normal 2^-bias. */
    v->emin = v->subnormals ? 1 - fi->bias : -fi->bias;
    v->qmin = v->emin - fi->mbits;
    v->has_inf = fi->has_inf;
    v->has_nan = fi->nan != FP4_NAN_NONE;
    v->has_zero = fi->has_zero;
    v->inf_mag = ones(fi->ebits) << fi->mbits;
    v->qnan_mag = fi->nan == FP4_NAN_IEEE ? v->inf_mag | (1ull << (fi->mbits - 1)) : ones(magbits);
    if (f == FP4_FMT_F32) {
        float m = FLT_MAX;
        uint32_t b;
        memcpy(&b, &m, sizeof b);
        v->max = FLT_MAX;
        v->max_code = b;
    } else if (f == FP4_FMT_F64) {
        double m = DBL_MAX;
        memcpy(&v->max_code, &m, sizeof m);
        v->max = DBL_MAX;
    } else {
        build_table(f, v);
    }
    v->ready = true;
}

void fp4o_init(void) {
    for (int f = 0; f < FP4_FMT_COUNT; f++)
        if (!g_view[f].ready) init_view((fp4_format)f);
}

static const fmt_view *view(fp4_format f) {
    if (!g_view[f].ready) {
        fprintf(stderr, "oracle: fp4o_init() not called\n");
        abort();
    }
    return &g_view[f];
}

double fp4o_max_finite(fp4_format f) { return view(f)->max; }
int64_t fp4o_count_nonneg(fp4_format f) { return view(f)->ntable; }
uint64_t fp4o_nonneg_code(fp4_format f, int64_t k) { return view(f)->table[k].code; }
double fp4o_nonneg_value(fp4_format f, int64_t k) { return view(f)->table[k].mag; }

/* Code of the finite magnitude `mag` (exact, representable) with a sign. */
static uint64_t code_of(fp4_format f, const fmt_view *v, int neg, double mag) {
    uint64_t c;
    if (f == FP4_FMT_F32) {
        float m = (float)mag;
        uint32_t b;
        memcpy(&b, &m, sizeof b);
        c = b;
    } else if (f == FP4_FMT_F64) {
        memcpy(&c, &mag, sizeof c);
    } else {
        int64_t lo = 0, hi = v->ntable - 1;
        while (lo < hi) { /* first entry >= mag */
            int64_t mid = lo + (hi - lo) / 2;
            if (v->table[mid].mag < mag) lo = mid + 1;
            else hi = mid;
        }
        if (v->table[lo].mag != mag) {
            fprintf(stderr, "oracle: %a is not a value of %s\n", mag, v->fi->name);
            abort();
        }
        c = v->table[lo].code;
    }
    return neg ? c | v->sign_bit : c;
}

/* ------------------------------------------------------------------------ */
/* Policies, restated per (format, policy) from fp4ref.h and numerics.md     */
/* ------------------------------------------------------------------------ */

typedef struct rules {
    bool saturate;       /* overflow and +-Inf inputs -> +-max (SATURATED) */
    bool unsigned_abs;   /* unsigned format converts |x| instead of NaN */
    bool zero_unsigned;  /* an exact zero input gives +0 whatever its sign */
    uint64_t nan_pos;    /* result of a +NaN input */
    uint64_t nan_neg;    /* result of a -NaN input */
} rules;

static rules rules_for(const fmt_view *v, fp4_policy p) {
    rules r = {false, false, false, 0, 0};
    uint64_t max_pos = v->max_code, max_neg = v->max_code | v->sign_bit;
    uint64_t qnan_pos = v->qnan_mag, qnan_neg = v->qnan_mag | v->sign_bit;
    uint64_t canon = v->fi->canonical_nan;
    /* Formats with neither Inf nor NaN (e2m1, e2m3, e3m2) have nothing to
     * overflow to: every producer saturates them (numerics.md §2.9). */
    bool neither = !v->has_inf && !v->has_nan;
    switch (p) {
    case FP4_POLICY_SATFINITE:
        /* PTX cvt .satfinite (§2.2): |x| > MAX_NORM -> +-MAX_NORM; NaN -> NaN
         * (sign dropped, measured for e4m3 on sm_90, §2.3/§2.9) or +MAX_NORM
         * where the format has no NaN. */
        r.saturate = true;
        r.nan_pos = r.nan_neg = v->has_nan ? canon : max_pos;
        break;
    case FP4_POLICY_NOSAT:
        /* IEEE overflow; torch eager float8_e4m3fn keeps the NaN sign (§2.6);
         * no producer defines NaN into e2m1 without saturation: +max (PTX). */
        r.saturate = neither;
        r.nan_pos = v->has_nan ? qnan_pos : max_pos;
        r.nan_neg = v->has_nan ? qnan_neg : max_pos;
        break;
    case FP4_POLICY_ML_DTYPES:
        /* ml_dtypes 0.6 (§2.7): float4/6 quiet_NaN() is the -0 pattern and a
         * negative NaN flips its sign: NaN -> 0x8.., -NaN -> 0x0. */
        r.saturate = neither;
        r.nan_pos = v->has_nan ? qnan_pos : v->sign_bit;
        r.nan_neg = v->has_nan ? qnan_neg : 0;
        break;
    case FP4_POLICY_CUTLASS_HOST:
        /* CUTLASS host (§2.5): overflow -> MAX; NaN -> nan_with_sign = +-max
         * without NaN, 0x7F for e4m3; float_ue4m3_t host converts |x|. */
        r.saturate = true;
        r.unsigned_abs = true;
        r.nan_pos = v->has_nan ? canon : max_pos;
        r.nan_neg = v->has_nan ? canon : max_neg;
        break;
    case FP4_POLICY_MODELOPT:
        /* modelopt _cast_fp4 (§2.8): sign bit = (x < 0) so -0.0 -> 0x0; NaN
         * and -NaN -> 0x7; its 8-bit casts are torch eager (= nosat). */
        r.saturate = neither;
        r.zero_unsigned = neither;
        r.nan_pos = v->has_nan ? qnan_pos : max_pos;
        r.nan_neg = v->has_nan ? qnan_neg : max_pos;
        break;
    default: abort();
    }
    return r;
}

/* ------------------------------------------------------------------------ */
/* Rounding with MPFR                                                        */
/* ------------------------------------------------------------------------ */

static int rs_width(fp4_format f, const fp4_cvt_opts *o) {
    int K = o->rbits_width > 0 ? o->rbits_width : fp4o_rs_width(f);
    return K > 32 ? 32 : K; /* rbits is a uint32_t */
}

/* PTX .rs: with lo the RZ result and ulp the grid spacing there,
 * D = floor((|x| - |lo|) / ulp * 2^K); away from zero iff D + r >= 2^K. */
static bool rs_away(mpfr_srcptr x, mpfr_srcptr lo, long ulp_exp, uint32_t rbits, int K) {
    mpfr_prec_t px = mpfr_get_prec(x), pl = mpfr_get_prec(lo);
    MPFR_DECL_INIT(d, px > pl ? px : pl); /* on the stack: no malloc per call */
    if (mpfr_sub(d, x, lo, MPFR_RNDN) != 0) abort(); /* exact by construction */
    mpfr_abs(d, d, MPFR_RNDN);
    mpfr_mul_2si(d, d, K - ulp_exp, MPFR_RNDN);
    uint64_t D = mpfr_get_ui(d, MPFR_RNDD);
    uint64_t r = (uint64_t)rbits & ones(K);
    return D + r >= (1ull << K);
}

/* |x| < 2^qmin (precision p < 1): the candidates are 0 and 2^qmin (r has
 * precision 1, enough for either). */
static void round_below_grid(const fmt_view *v, mpfr_ptr r, mpfr_srcptr x, const fp4_cvt_opts *o,
                             int K) {
    int s = mpfr_sgn(x);
    /* c = sign of |x| - 2^(qmin-1), the halfway point */
    int c = s > 0 ? mpfr_cmp_ui_2exp(x, 1, v->qmin - 1) : -mpfr_cmp_si_2exp(x, -1, v->qmin - 1);
    bool away = false;
    switch (o->round) {
    case FP4_RNE: away = c > 0; break; /* a tie goes to 0, the even one */
    case FP4_RNA: away = c >= 0; break;
    case FP4_RZ: away = false; break;
    case FP4_RU: away = s > 0; break;
    case FP4_RD: away = s < 0; break;
    case FP4_RS: {
        MPFR_DECL_INIT(zero, 2);
        mpfr_set_zero(zero, s);
        away = rs_away(x, zero, v->qmin, o->rbits, K);
        break;
    }
    default: abort();
    }
    if (away) mpfr_set_si_2exp(r, s, v->qmin, MPFR_RNDN);
    else mpfr_set_zero(r, s);
}

/* Effective precision of finite non-zero x in the format: p = min(mbits+1,
 * E - qmin + 1) with E = floor(log2|x|); *ulp_exp = exponent of the grid
 * spacing at x. p < 1 when |x| < 2^qmin. */
static long grid_precision(const fmt_view *v, mpfr_srcptr x, long *ulp_exp) {
    long E = (long)mpfr_get_exp(x) - 1; /* MPFR: x = 0.1b... * 2^exp */
    *ulp_exp = (E > v->emin ? E : v->emin) - v->fi->mbits;
    return E - *ulp_exp + 1;
}

/* Rounds finite non-zero x to the grid of the format: subnormal spacing
 * 2^qmin below 2^emin, mbits+1 bits above, no upper bound (overflow is the
 * caller's business). r's precision is max(p, 1). */
static void round_to_grid(const fmt_view *v, mpfr_ptr r, mpfr_srcptr x, const fp4_cvt_opts *o,
                          int K) {
    long ulp_exp;
    long p = grid_precision(v, x, &ulp_exp);
    if (p < 1) {
        round_below_grid(v, r, x, o, K);
        return;
    }
    switch (o->round) {
    case FP4_RNE: mpfr_set(r, x, MPFR_RNDN); break;
    case FP4_RNA: { /* a heap variable: MPFR swaps its significand inside */
        mpfr_t t;
        mpfr_init2(t, (mpfr_prec_t)p);
        mpfr_round_nearest_away(mpfr_set, t, x);
        mpfr_set(r, t, MPFR_RNDN); /* exact: same precision */
        mpfr_clear(t);
        break;
    }
    case FP4_RZ: mpfr_set(r, x, MPFR_RNDZ); break;
    case FP4_RU: mpfr_set(r, x, MPFR_RNDU); break;
    case FP4_RD: mpfr_set(r, x, MPFR_RNDD); break;
    case FP4_RS:
        mpfr_set(r, x, MPFR_RNDZ);
        if (rs_away(x, r, ulp_exp, o->rbits, K)) mpfr_set(r, x, MPFR_RNDA);
        break;
    default: abort();
    }
}

/* ------------------------------------------------------------------------ */
/* The conversion                                                            */
/* ------------------------------------------------------------------------ */

typedef struct outcome {
    uint64_t code;
    int ternary;
    unsigned flags;
} outcome;

static outcome make(uint64_t code, int ternary, unsigned flags) {
    outcome r = {code, ternary, flags};
    return r;
}

/* +-max with the ternary of a magnitude decrease. */
static outcome to_max(const fmt_view *v, int neg, unsigned flags) {
    return make(v->max_code | (neg ? v->sign_bit : 0), neg ? 1 : -1, flags);
}

static outcome zero_input(const fmt_view *v, const rules *R, int neg) {
    if (!v->has_zero) /* UE8M0: 2^-127 stands in for zero */
        return make(0, 1, FP4_FLAG_INEXACT | FP4_FLAG_UNDERFLOW);
    bool keep_sign = neg && !R->zero_unsigned;
    return make(keep_sign ? v->sign_bit : 0, 0, 0);
}

/* PTX .relu: a negative result becomes +0 (the value goes up). */
static outcome relu_zero(const fmt_view *v) {
    return make(0, 1, FP4_FLAG_INEXACT | (v->has_zero ? 0 : FP4_FLAG_UNDERFLOW));
}

static outcome inf_input(const fmt_view *v, const rules *R, int neg) {
    if (R->saturate) return to_max(v, neg, FP4_FLAG_INEXACT | FP4_FLAG_SATURATED);
    if (v->has_inf) return make(v->inf_mag | (neg ? v->sign_bit : 0), 0, 0);
    /* No Inf but a NaN (e4m3, ue4m3, ue8m0 unsaturated): Inf -> NaN, as
     * torch eager: inf -> 0x7F, -inf -> 0xFF. */
    return make(v->qnan_mag | (neg ? v->sign_bit : 0), 0, FP4_FLAG_INEXACT | FP4_FLAG_OVERFLOW);
}

/* The rounded magnitude exceeds max. IEEE 754 §7.4: nearest modes go to
 * Inf, directed modes to Inf or max by direction; fp4sim's RS goes to Inf
 * (its carry rounds away). */
static outcome overflow(const fmt_view *v, const rules *R, int neg, fp4_round mode) {
    unsigned fl = FP4_FLAG_OVERFLOW | FP4_FLAG_INEXACT;
    if (R->saturate) return to_max(v, neg, fl | FP4_FLAG_SATURATED);
    bool toward_zero = mode == FP4_RZ || (mode == FP4_RU && neg) || (mode == FP4_RD && !neg);
    if (toward_zero) return to_max(v, neg, fl);
    if (v->has_inf) return make(v->inf_mag | (neg ? v->sign_bit : 0), neg ? -1 : 1, fl);
    return make(v->qnan_mag | (neg ? v->sign_bit : 0), 0, fl); /* Inf -> NaN */
}

static int cmp_abs_d(mpfr_srcptr r, double m) {
    return mpfr_sgn(r) >= 0 ? mpfr_cmp_d(r, m) : -mpfr_cmp_d(r, -m);
}

/* Tininess after rounding (IEEE 754-2019 §7.5): x rounded in o's mode to
 * mbits + 1 bits with MPFR's (practically unbounded) exponent range lies
 * below 2^emin. RS: the RZ result moves away when the random bits carry out
 * of the discarded part, at that precision's ulp. */
static bool tiny_after_rounding(const fmt_view *v, mpfr_srcptr x, const fp4_cvt_opts *o, int K) {
    mpfr_prec_t p = v->fi->mbits + 1;
    mpfr_t r;
    mpfr_init2(r, p);
    switch (o->round) {
    case FP4_RNE: mpfr_set(r, x, MPFR_RNDN); break;
    case FP4_RNA: mpfr_round_nearest_away(mpfr_set, r, x); break;
    case FP4_RZ: mpfr_set(r, x, MPFR_RNDZ); break;
    case FP4_RU: mpfr_set(r, x, MPFR_RNDU); break;
    case FP4_RD: mpfr_set(r, x, MPFR_RNDD); break;
    case FP4_RS: {
        long ulp_exp = (long)mpfr_get_exp(x) - 1 - v->fi->mbits;
        mpfr_set(r, x, MPFR_RNDZ);
        if (rs_away(x, r, ulp_exp, o->rbits, K)) mpfr_set(r, x, MPFR_RNDA);
        break;
    }
    default: abort();
    }
    mpfr_abs(r, r, MPFR_RNDN);
    bool tiny = mpfr_cmp_ui_2exp(r, 1, v->emin) < 0; /* r != 0: x != 0, unbounded range */
    mpfr_clear(r);
    return tiny;
}

static outcome finite_input(fp4_format f, const fmt_view *v, const rules *R, mpfr_srcptr x,
                            const fp4_cvt_opts *o) {
    int neg = mpfr_sgn(x) < 0;
    bool below = neg ? mpfr_cmp_si_2exp(x, -1, v->emin) > 0 : mpfr_cmp_ui_2exp(x, 1, v->emin) < 0;
    bool tiny = below && (!(o->options & FP4_OPT_TININESS_AFTER) ||
                          tiny_after_rounding(v, x, o, rs_width(f, o)));
    if (!v->subnormals && below) /* UE8M0: nothing below 2^-127, no zero */
        return make(0, 1, FP4_FLAG_INEXACT | (tiny ? FP4_FLAG_UNDERFLOW : 0));
    long ulp_exp, p = grid_precision(v, x, &ulp_exp);
    MPFR_DECL_INIT(r, p > 1 ? p : 1); /* on the stack: no malloc per call */
    round_to_grid(v, r, x, o, rs_width(f, o));
    int c = mpfr_cmp(r, x);
    int tern = (c > 0) - (c < 0);
    outcome out;
    if (cmp_abs_d(r, v->max) > 0) {
        out = overflow(v, R, neg, o->round);
    } else {
        unsigned fl = tern ? FP4_FLAG_INEXACT | (tiny ? FP4_FLAG_UNDERFLOW : 0) : 0;
        bool result_subnormal = !mpfr_zero_p(r) && cmp_abs_d(r, ldexp(1.0, (int)v->emin)) < 0;
        if (mpfr_zero_p(r)) {
            out = make(neg ? v->sign_bit : 0, tern, fl);
        } else if (result_subnormal && (o->options & FP4_OPT_FTZ)) {
            /* FTZ: a subnormal result becomes a zero of the same sign */
            fl |= FP4_FLAG_FLUSHED | FP4_FLAG_UNDERFLOW | FP4_FLAG_INEXACT;
            out = make(neg ? v->sign_bit : 0, neg ? 1 : -1, fl);
        } else {
            double mag = fabs(mpfr_get_d(r, MPFR_RNDN)); /* exact: r has <= 53 bits */
            out = make(code_of(f, v, neg, mag), tern, fl);
        }
    }
    return out;
}

static outcome convert(fp4_format f, mpfr_srcptr x, bool src_subnormal, bool src_snan,
                       const fp4_cvt_opts *o) {
    const fmt_view *v = view(f);
    rules R = rules_for(v, o->policy);
    bool relu = (o->options & FP4_OPT_RELU) != 0;
    int neg = mpfr_signbit(x) ? 1 : 0;
    if (mpfr_nan_p(x)) { /* .relu: "NaN results are converted to canonical NaN" */
        uint64_t c = relu && v->has_nan ? v->fi->canonical_nan : neg ? R.nan_neg : R.nan_pos;
        /* SoftFloat's rule (invalid only for a signaling NaN); a format
         * without NaN cannot represent the operand at all (IEEE 754 §7.2). */
        return make(c, 0, src_snan || !v->has_nan ? FP4_FLAG_INVALID : 0);
    }
    if (mpfr_zero_p(x)) return zero_input(v, &R, neg);
    if (src_subnormal && (o->options & FP4_OPT_DAZ)) {
        outcome z = zero_input(v, &R, neg);
        z.flags |= FP4_FLAG_FLUSHED;
        return z;
    }
    if (neg && relu) return relu_zero(v);
    if (neg && !v->fi->is_signed) {
        if (!R.unsigned_abs) return make(v->fi->canonical_nan, 0, FP4_FLAG_INVALID);
        MPFR_DECL_INIT(a, mpfr_get_prec(x)); /* CUTLASS's unsigned host path: |x| */
        mpfr_abs(a, x, MPFR_RNDN);
        return mpfr_inf_p(a) ? inf_input(v, &R, 0) : finite_input(f, v, &R, a, o);
    }
    return mpfr_inf_p(x) ? inf_input(v, &R, neg) : finite_input(f, v, &R, x, o);
}

int fp4o_round(fp4_format f, mpfr_srcptr x, bool src_subnormal, bool src_snan,
               const fp4_cvt_opts *o, uint64_t *code, unsigned *flags) {
    fp4_cvt_opts def = fp4_cvt_opts_default();
    outcome r = convert(f, x, src_subnormal, src_snan, o ? o : &def);
    /* Self-check of the oracle: a changed value is always inexact. */
    if (r.ternary != 0 && !(r.flags & FP4_FLAG_INEXACT)) abort();
    *code = r.code;
    if (flags) *flags |= r.flags;
    return r.ternary;
}

/* ------------------------------------------------------------------------ */
/* Entry points from codes, floats and big integers                          */
/* ------------------------------------------------------------------------ */

static void set_decoded(mpfr_ptr x, const fp4o_decoded *d) {
    switch (d->cls) {
    case FP4_CLASS_NAN:
        mpfr_set_nan(x);
        mpfr_setsign(x, x, d->sign, MPFR_RNDN);
        break;
    case FP4_CLASS_INF: mpfr_set_inf(x, d->sign ? -1 : 1); break;
    case FP4_CLASS_ZERO: mpfr_set_zero(x, d->sign ? -1 : 1); break;
    default: mpfr_set_d(x, d->value, MPFR_RNDN); break; /* exact: 53 bits */
    }
}

static int round_decoded(fp4_format f, const fp4o_decoded *d, const fp4_cvt_opts *o,
                         uint64_t *code, unsigned *flags) {
    MPFR_DECL_INIT(x, 64);
    set_decoded(x, d);
    return fp4o_round(f, x, d->subnormal, d->cls == FP4_CLASS_NAN && d->signaling, o, code, flags);
}

int fp4o_convert(fp4_format dst, fp4_format src, uint64_t src_code, const fp4_cvt_opts *o,
                 uint64_t *code, unsigned *flags) {
    fp4o_decoded d = fp4o_decode(src, src_code);
    if (!d.valid) { /* ref/ reads a code out of range as a signaling +NaN */
        d.cls = FP4_CLASS_NAN;
        d.sign = 0;
        d.signaling = true;
    }
    return round_decoded(dst, &d, o, code, flags);
}

int fp4o_encode_f64(fp4_format f, double x, const fp4_cvt_opts *o, uint64_t *code,
                    unsigned *flags) {
    fp4o_decoded d = from_double(x);
    d.subnormal = fpclassify(x) == FP_SUBNORMAL;
    d.signaling = issignaling(x);
    return round_decoded(f, &d, o, code, flags);
}

int fp4o_encode_f32(fp4_format f, float x, const fp4_cvt_opts *o, uint64_t *code,
                    unsigned *flags) {
    fp4o_decoded d = from_double((double)x); /* (double) quiets a NaN: ask x */
    d.subnormal = fpclassify(x) == FP_SUBNORMAL;
    d.signaling = issignaling(x);
    return round_decoded(f, &d, o, code, flags);
}

/* Beyond |log2| = 2^28 every format overflows or underflows in the same way
 * (the largest grid exponent is 1023, the smallest -1074, and RS looks at
 * most 32 bits further), so such a value is replaced by +-2^(+-2^28), which
 * MPFR's default exponent range holds; the exact input is never needed. */
#define FP4O_HUGE_EXP (1L << 28)

int fp4o_encode_bigint(fp4_format f, int sign, const uint64_t *limbs, size_t nlimbs, int64_t exp,
                       const fp4_cvt_opts *o, uint64_t *code, unsigned *flags) {
    mpz_t z;
    mpz_init(z);
    if (nlimbs) mpz_import(z, nlimbs, -1, sizeof(uint64_t), 0, 0, limbs);
    mpfr_t x;
    if (mpz_sgn(z) == 0) {
        mpfr_init2(x, 2);
        mpfr_set_zero(x, sign ? -1 : 1);
    } else {
        size_t bitlen = mpz_sizeinbase(z, 2);
        __int128 top = (__int128)exp + (__int128)bitlen - 1; /* floor(log2 |x|) */
        mpfr_init2(x, (mpfr_prec_t)(bitlen < 2 ? 2 : bitlen));
        if (top > FP4O_HUGE_EXP) mpfr_set_ui_2exp(x, 1, FP4O_HUGE_EXP, MPFR_RNDN);
        else if (top < -FP4O_HUGE_EXP) mpfr_set_ui_2exp(x, 1, -FP4O_HUGE_EXP, MPFR_RNDN);
        else if (mpfr_set_z_2exp(x, z, (mpfr_exp_t)exp, MPFR_RNDN) != 0) abort();
        if (sign) mpfr_neg(x, x, MPFR_RNDN);
    }
    int t = fp4o_round(f, x, false, false, o, code, flags);
    mpfr_clear(x);
    mpz_clear(z);
    return t;
}

const char *fp4o_opts_string(const fp4_cvt_opts *o, char *buf, size_t n) {
    char opt[32] = "";
    if (o->options & FP4_OPT_DAZ) strcat(opt, "+daz");
    if (o->options & FP4_OPT_FTZ) strcat(opt, "+ftz");
    if (o->options & FP4_OPT_RELU) strcat(opt, "+relu");
    if (o->options & FP4_OPT_TININESS_AFTER) strcat(opt, "+after");
    if (o->round == FP4_RS)
        snprintf(buf, n, "%s/%s%s rbits=0x%x/%d", fp4_round_name(o->round),
                 fp4_policy_name(o->policy), opt, (unsigned)o->rbits, o->rbits_width);
    else
        snprintf(buf, n, "%s/%s%s", fp4_round_name(o->round), fp4_policy_name(o->policy), opt);
    return buf;
}

/* ------------------------------------------------------------------------ */
/* Test-harness helpers                                                      */
/* ------------------------------------------------------------------------ */

#if defined(__SANITIZE_ADDRESS__)
#define FP4O_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FP4O_SANITIZED 1
#endif
#endif

int fp4o_level(void) {
    const char *s = getenv("FP4SIM_FORMATS_LEVEL");
    if (s && *s) return atoi(s);
#ifdef FP4O_SANITIZED
    return 0;
#else
    return 1;
#endif
}

static void add_config(fp4o_config *out, int *n, int max, fp4_round r, fp4_policy p, unsigned opt,
                       uint32_t rbits, int width, bool random_rbits) {
    if (*n >= max) abort();
    fp4o_config c = {{r, p, opt, rbits, width}, random_rbits};
    out[(*n)++] = c;
}

int fp4o_configs(fp4_format f, int level, fp4o_config *out, int max) {
    int n = 0;
    uint32_t K = (uint32_t)fp4o_rs_width(f);
    uint32_t half = 1u << (K - 1), all = (uint32_t)ones((int)K);
    /* Level 1: the full cross product modes x policies x options (8 option
     * combinations). Level 0: every mode x policy without options and with
     * all three, plus every option combination on rne/satfinite. */
    for (unsigned opt = 0; opt < 8; opt++) {
        if (level < 1 && opt != 0 && opt != 7) continue;
        for (int p = 0; p < FP4_POLICY_COUNT; p++) {
            for (int r = FP4_RNE; r <= FP4_RD; r++) add_config(out, &n, max, r, p, opt, 0, 0, false);
            add_config(out, &n, max, FP4_RS, p, opt, 0, 0, true);  /* Philox bits */
            add_config(out, &n, max, FP4_RS, p, opt, all, 0, false);
            if (level < 1) continue;
            add_config(out, &n, max, FP4_RS, p, opt, 0, 0, false);
            add_config(out, &n, max, FP4_RS, p, opt, 1, 0, false);
            add_config(out, &n, max, FP4_RS, p, opt, half, 0, false);
            add_config(out, &n, max, FP4_RS, p, opt, 0, 1, true);  /* 1 random bit */
            add_config(out, &n, max, FP4_RS, p, opt, 0, 32, true); /* 32 random bits */
        }
    }
    if (level < 1)
        for (unsigned opt = 1; opt < 7; opt++)
            add_config(out, &n, max, FP4_RNE, FP4_POLICY_SATFINITE, opt, 0, 0, false);
    /* Tininess after rounding: every mode, alone and with DAZ+FTZ. */
    for (unsigned opt = 0; opt < 2; opt++) {
        unsigned o = FP4_OPT_TININESS_AFTER | (opt ? FP4_OPT_DAZ | FP4_OPT_FTZ : 0);
        for (int r = FP4_RNE; r <= FP4_RD; r++)
            add_config(out, &n, max, r, FP4_POLICY_SATFINITE, o, 0, 0, false);
        add_config(out, &n, max, FP4_RS, FP4_POLICY_SATFINITE, o, 0, 0, true);
        add_config(out, &n, max, FP4_RS, FP4_POLICY_SATFINITE, o, all, 0, false);
    }
    return n;
}
