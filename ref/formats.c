/* formats.c - format table, exact decode, and the one rounding routine every
 * conversion in fp4sim goes through.
 *
 * Sources for the format definitions: PTX ISA 9.1 §5.2.3 (E2M1, E4M3, UE4M3,
 * UE8M0), OCP OFP8 v1.0 and OCP MX v1.0 (E2M1, E2M3, E3M2, E5M2, E8M0), IEEE
 * 754-2019 (binary16/32/64), bfloat16. Summary table: numerics.md §1.1 in the
 * project's reference material; our own summary with all policies lives in
 * docs/formats.md.
 */
#include "fp4ref.h"

#include <ctype.h>
#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Format table                                                              */
/* ------------------------------------------------------------------------ */

static const fp4_format_info k_formats[FP4_FMT_COUNT] = {
    [FP4_FMT_E2M1] = {"e2m1", 4, 2, 1, 1, true, false, true, true, FP4_NAN_NONE, 0x7, 0, 0, 2,
                      "PTX ISA 9.1 §5.2.3 .e2m1; OCP MX v1.0 FP4 E2M1 (max 6, no Inf/NaN)"},
    [FP4_FMT_E2M3] = {"e2m3", 6, 2, 3, 1, true, false, true, true, FP4_NAN_NONE, 0x1F, 0, 0, 2,
                      "PTX ISA 9.1 §5.2.3 .e2m3; OCP MX v1.0 FP6 E2M3 (max 7.5)"},
    [FP4_FMT_E3M2] = {"e3m2", 6, 3, 2, 3, true, false, true, true, FP4_NAN_NONE, 0x1F, 0, -2, 4,
                      "PTX ISA 9.1 §5.2.3 .e3m2; OCP MX v1.0 FP6 E3M2 (max 28)"},
    [FP4_FMT_E4M3] = {"e4m3", 8, 4, 3, 7, true, false, true, true, FP4_NAN_ALL_ONES, 0x7E, 0x7F,
                      -6, 8, "PTX ISA 9.1 §5.2.3 .e4m3; OCP OFP8 v1.0 E4M3 (FN: NaN S.1111.111)"},
    [FP4_FMT_UE4M3] = {"ue4m3", 7, 4, 3, 7, false, false, true, true, FP4_NAN_ALL_ONES, 0x7E,
                       0x7F, -6, 8,
                       "PTX ISA 9.1 §5.2.3 .ue4m3 (7-bit unsigned in a .b8, NaN 0x7F only)"},
    [FP4_FMT_E5M2] = {"e5m2", 8, 5, 2, 15, true, true, true, true, FP4_NAN_IEEE, 0x7B, 0x7F, -14,
                      15, "PTX ISA 9.1 §5.2.3 .e5m2; OCP OFP8 v1.0 E5M2 (IEEE-like)"},
    [FP4_FMT_UE8M0] = {"ue8m0", 8, 8, 0, 127, false, false, false, false, FP4_NAN_ALL_ONES, 0xFE,
                       0xFF, -127, 127,
                       "PTX ISA 9.1 §5.2.3 .ue8m0; OCP MX v1.0 E8M0 (2^(e-127), 0xFF NaN)"},
    [FP4_FMT_F16] = {"f16", 16, 5, 10, 15, true, true, true, true, FP4_NAN_IEEE, 0x7BFF, 0x7FFF,
                     -14, 15, "IEEE 754-2019 binary16"},
    [FP4_FMT_BF16] = {"bf16", 16, 8, 7, 127, true, true, true, true, FP4_NAN_IEEE, 0x7F7F, 0x7FFF,
                      -126, 127, "bfloat16 (top half of binary32)"},
    [FP4_FMT_F32] = {"f32", 32, 8, 23, 127, true, true, true, true, FP4_NAN_IEEE, 0x7F7FFFFF,
                     0x7FFFFFFF, -126, 127, "IEEE 754-2019 binary32"},
    [FP4_FMT_F64] = {"f64", 64, 11, 52, 1023, true, true, true, true, FP4_NAN_IEEE,
                     0x7FEFFFFFFFFFFFFFull, 0x7FFFFFFFFFFFFFFFull, -1022, 1023,
                     "IEEE 754-2019 binary64"},
};

const fp4_format_info *fp4_format_get(fp4_format f) {
    if ((int)f < 0 || f >= FP4_FMT_COUNT) return NULL;
    return &k_formats[f];
}

uint64_t fp4_format_ncodes(fp4_format f) {
    const fp4_format_info *fi = fp4_format_get(f);
    if (!fi) return 0;
    return fi->bits >= 64 ? 0 : (1ull << fi->bits); /* 0 means 2^64 for F64 */
}

int fp4_format_code_bytes(fp4_format f) {
    const fp4_format_info *fi = fp4_format_get(f);
    if (!fi) return 0;
    return fi->bits <= 8 ? 1 : fi->bits <= 16 ? 2 : fi->bits <= 32 ? 4 : 8;
}

struct name_alias {
    const char *name;
    fp4_format f;
};

static const struct name_alias k_format_aliases[] = {
    {"e2m1", FP4_FMT_E2M1},        {"fp4", FP4_FMT_E2M1},          {"float4_e2m1fn", FP4_FMT_E2M1},
    {"fp4_e2m1", FP4_FMT_E2M1},    {"e2m3", FP4_FMT_E2M3},         {"fp6_e2m3", FP4_FMT_E2M3},
    {"float6_e2m3fn", FP4_FMT_E2M3}, {"e3m2", FP4_FMT_E3M2},       {"fp6_e3m2", FP4_FMT_E3M2},
    {"float6_e3m2fn", FP4_FMT_E3M2}, {"e4m3", FP4_FMT_E4M3},       {"e4m3fn", FP4_FMT_E4M3},
    {"float8_e4m3fn", FP4_FMT_E4M3}, {"f8_e4m3", FP4_FMT_E4M3},    {"fp8_e4m3", FP4_FMT_E4M3},
    {"ue4m3", FP4_FMT_UE4M3},      {"e5m2", FP4_FMT_E5M2},         {"float8_e5m2", FP4_FMT_E5M2},
    {"f8_e5m2", FP4_FMT_E5M2},     {"fp8_e5m2", FP4_FMT_E5M2},     {"ue8m0", FP4_FMT_UE8M0},
    {"e8m0", FP4_FMT_UE8M0},       {"float8_e8m0fnu", FP4_FMT_UE8M0}, {"f8_e8m0", FP4_FMT_UE8M0},
    {"f16", FP4_FMT_F16},          {"fp16", FP4_FMT_F16},          {"half", FP4_FMT_F16},
    {"float16", FP4_FMT_F16},      {"binary16", FP4_FMT_F16},      {"bf16", FP4_FMT_BF16},
    {"bfloat16", FP4_FMT_BF16},    {"f32", FP4_FMT_F32},           {"fp32", FP4_FMT_F32},
    {"float", FP4_FMT_F32},        {"float32", FP4_FMT_F32},       {"binary32", FP4_FMT_F32},
    {"f64", FP4_FMT_F64},          {"fp64", FP4_FMT_F64},          {"double", FP4_FMT_F64},
    {"float64", FP4_FMT_F64},      {"binary64", FP4_FMT_F64},
};

static int name_eq(const char *a, const char *b) {
    for (; *a && *b; a++, b++) {
        int ca = tolower((unsigned char)*a), cb = tolower((unsigned char)*b);
        if (ca == '-') ca = '_';
        if (cb == '-') cb = '_';
        if (ca != cb) return 0;
    }
    return *a == *b;
}

int fp4_format_from_name(const char *name, fp4_format *out) {
    if (!name) return -1;
    for (size_t i = 0; i < sizeof k_format_aliases / sizeof k_format_aliases[0]; i++)
        if (name_eq(name, k_format_aliases[i].name)) {
            *out = k_format_aliases[i].f;
            return 0;
        }
    return -1;
}

const char *fp4_format_names(void) {
    return "e2m1, e2m3, e3m2, e4m3, ue4m3, e5m2, ue8m0, f16, bf16, f32, f64";
}

/* ------------------------------------------------------------------------ */
/* Modes and policies                                                        */
/* ------------------------------------------------------------------------ */

static const char *const k_round_names[FP4_ROUND_COUNT] = {"rne", "rna", "rz", "ru", "rd", "rs"};

const char *fp4_round_name(fp4_round r) {
    return ((int)r >= 0 && r < FP4_ROUND_COUNT) ? k_round_names[r] : "?";
}

int fp4_round_from_name(const char *name, fp4_round *out) {
    static const struct {
        const char *n;
        fp4_round r;
    } t[] = {{"rne", FP4_RNE}, {"rn", FP4_RNE},  {"nearest", FP4_RNE}, {"rna", FP4_RNA},
             {"rz", FP4_RZ},   {"trunc", FP4_RZ}, {"ru", FP4_RU},      {"rp", FP4_RU},
             {"rd", FP4_RD},   {"rm", FP4_RD},   {"rs", FP4_RS},       {"stochastic", FP4_RS}};
    if (!name) return -1;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (name_eq(name, t[i].n)) {
            *out = t[i].r;
            return 0;
        }
    return -1;
}

static const char *const k_policy_names[FP4_POLICY_COUNT] = {"satfinite", "nosat", "ml_dtypes",
                                                              "cutlass-host", "modelopt"};
static const char *const k_policy_evidence[FP4_POLICY_COUNT] = {
    "PTX ISA 9.1 §9.7.9.21 cvt .satfinite (NaN -> NaN, or +MAX_NORM for e2m1/e2m3/e3m2; "
    "|x| > MAX_NORM -> sign-preserved MAX_NORM); E4M3 measured on sm_90, CUDA 13.0 "
    "(numerics.md §2.3, §2.9)",
    "IEEE 754 overflow by rounding mode; no-Inf formats give NaN with sign as PyTorch "
    "eager c10/util/Float8_e4m3fn.h (measured: 464.00003 -> 0x7F, -inf -> 0xFF); "
    "formats with neither saturate (numerics.md §2.6)",
    "ml_dtypes 0.6.0 ConvertImpl: float4/6 quiet_NaN() is the -0 pattern, NaN -> 0x8, "
    "-NaN -> 0x0, overflow -> infinity() = +-max; float8_e4m3fn overflow -> NaN "
    "(numerics.md §2.7, measured)",
    "CUTLASS @7107b055 exmy_base.h / float8.h host converters: RNE, overflow -> MAX, "
    "NaN -> nan_with_sign = +-max for e2m1, 0x7F for e4m3; float_ue4m3_t host drops the "
    "sign (numerics.md §2.5)",
    "modelopt @a2fbac7 nvfp4_tensor.py _cast_fp4: sign bit = (x < 0) so -0.0 -> 0x0, "
    "NaN and -NaN -> 0x7 (measured); 8-bit casts are torch .to(float8_e4m3fn) = nosat "
    "(numerics.md §2.8)",
};

const char *fp4_policy_name(fp4_policy p) {
    return ((int)p >= 0 && p < FP4_POLICY_COUNT) ? k_policy_names[p] : "?";
}
const char *fp4_policy_evidence(fp4_policy p) {
    return ((int)p >= 0 && p < FP4_POLICY_COUNT) ? k_policy_evidence[p] : "?";
}

int fp4_policy_from_name(const char *name, fp4_policy *out) {
    static const struct {
        const char *n;
        fp4_policy p;
    } t[] = {{"satfinite", FP4_POLICY_SATFINITE},  {"sat", FP4_POLICY_SATFINITE},
             {"ptx", FP4_POLICY_SATFINITE},        {"nosat", FP4_POLICY_NOSAT},
             {"ieee", FP4_POLICY_NOSAT},           {"torch", FP4_POLICY_NOSAT},
             {"ml_dtypes", FP4_POLICY_ML_DTYPES},  {"cutlass_host", FP4_POLICY_CUTLASS_HOST},
             {"cutlass", FP4_POLICY_CUTLASS_HOST}, {"modelopt", FP4_POLICY_MODELOPT}};
    if (!name) return -1;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (name_eq(name, t[i].n)) {
            *out = t[i].p;
            return 0;
        }
    return -1;
}

int fp4_rs_default_width(fp4_format f) {
    /* PTX ISA 9.1 cvt: rbits gives 16 bits per .bf16 operand, 13 LSBs per .f16
     * operand, 8 bits per operand of the x4 e4m3/e5m2/e2m3/e3m2/e2m1 forms. */
    if (f == FP4_FMT_BF16) return 16;
    if (f == FP4_FMT_F16) return 13;
    return 8;
}

fp4_cvt_opts fp4_cvt_opts_default(void) {
    fp4_cvt_opts o = {FP4_RNE, FP4_POLICY_SATFINITE, 0u, 0u, 0};
    return o;
}

/* ------------------------------------------------------------------------ */
/* Decoding                                                                  */
/* ------------------------------------------------------------------------ */

static uint64_t low_mask(int bits) { return bits >= 64 ? ~0ull : ((1ull << bits) - 1); }

static fp4_value make_finite(int sign, uint64_t sig, int32_t exp) {
    fp4_value v = {FP4_CLASS_FINITE, sign, sig, exp};
    if (sig == 0) {
        v.cls = FP4_CLASS_ZERO;
        v.exp = 0;
        return v;
    }
    int tz = __builtin_ctzll(sig);
    v.sig = sig >> tz;
    v.exp = exp + tz;
    return v;
}

bool fp4_code_valid(fp4_format f, uint64_t code) {
    const fp4_format_info *fi = fp4_format_get(f);
    return fi && (fi->bits >= 64 || code < (1ull << fi->bits));
}

fp4_value fp4_decode(fp4_format f, uint64_t code) {
    const fp4_format_info *fi = fp4_format_get(f);
    fp4_value nan = {FP4_CLASS_NAN, 0, 0, 0};
    if (!fi || !fp4_code_valid(f, code)) return nan;
    int magbits = fi->is_signed ? fi->bits - 1 : fi->bits;
    int sign = fi->is_signed ? (int)(code >> magbits) & 1 : 0;
    uint64_t mag = code & low_mask(magbits);
    uint64_t e = mag >> fi->mbits, m = mag & low_mask(fi->mbits);
    uint64_t emask = low_mask(fi->ebits);
    nan.sign = sign;
    if (fi->nan == FP4_NAN_ALL_ONES && mag == low_mask(magbits)) return nan;
    if (fi->nan == FP4_NAN_IEEE && e == emask && m != 0) return nan;
    if (fi->has_inf && e == emask && m == 0) {
        fp4_value inf = {FP4_CLASS_INF, sign, 0, 0};
        return inf;
    }
    if (!fi->has_subnormals) /* UE8M0: every field value is a power of two */
        return make_finite(sign, 1, (int32_t)e - fi->bias);
    if (e == 0) {
        fp4_value z = make_finite(sign, m, fi->emin - fi->mbits);
        z.sign = sign;
        return z;
    }
    return make_finite(sign, m | (1ull << fi->mbits), (int32_t)e - fi->bias - fi->mbits);
}

fp4_value fp4_value_from_f64(double x) {
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    return fp4_decode(FP4_FMT_F64, b);
}

fp4_value fp4_value_from_f32(float x) {
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return fp4_decode(FP4_FMT_F32, b);
}

double fp4_value_to_f64(const fp4_value *v) {
    double s = v->sign ? -1.0 : 1.0;
    switch (v->cls) {
    case FP4_CLASS_ZERO: return s * 0.0;
    case FP4_CLASS_INF: return s * INFINITY;
    case FP4_CLASS_NAN: return v->sign ? -NAN : NAN;
    default: break;
    }
    /* sig < 2^64; (double)sig rounds only when sig > 2^53, which no fp4sim
     * format produces; ldexp is then exact unless the result is subnormal. */
    return s * ldexp((double)v->sig, v->exp);
}

double fp4_to_f64(fp4_format f, uint64_t code) {
    fp4_value v = fp4_decode(f, code);
    return fp4_value_to_f64(&v);
}

/* ------------------------------------------------------------------------ */
/* Encoding: the one rounding routine                                        */
/* ------------------------------------------------------------------------ */

/* Code magnitude field layout helpers. */
static uint64_t sign_bit(const fp4_format_info *fi) {
    return fi->is_signed ? (1ull << (fi->bits - 1)) : 0;
}

static uint64_t with_sign(const fp4_format_info *fi, int sign, uint64_t mag) {
    return (sign && fi->is_signed) ? (mag | sign_bit(fi)) : mag;
}

/* Quiet NaN with the given sign as IEEE software produces it (top fraction
 * bit set); for all-ones formats it is the only NaN. */
static uint64_t quiet_nan(const fp4_format_info *fi, int sign) {
    uint64_t mag = fi->nan == FP4_NAN_IEEE
                       ? ((low_mask(fi->ebits) << fi->mbits) | (1ull << (fi->mbits - 1)))
                       : fi->canonical_nan;
    return with_sign(fi, sign, mag);
}

/* Policy as applied to a given format: the narrow formats without NaN
 * (E2M1/E2M3/E3M2) are where producers disagree; for the others modelopt
 * behaves as torch eager (nosat) and cutlass-host as satfinite. */
static bool sat_on_overflow(const fp4_format_info *fi, fp4_policy p) {
    switch (p) {
    case FP4_POLICY_SATFINITE:
    case FP4_POLICY_CUTLASS_HOST: return true;
    default: return !fi->has_inf && fi->nan == FP4_NAN_NONE;
    }
}

/* Result of a NaN input. */
static uint64_t nan_result(const fp4_format_info *fi, fp4_policy p, int sign) {
    bool has_nan = fi->nan != FP4_NAN_NONE;
    switch (p) {
    case FP4_POLICY_SATFINITE: /* PTX: canonical NaN, or positive MAX_NORM */
        return has_nan ? fi->canonical_nan : fi->max_finite;
    case FP4_POLICY_CUTLASS_HOST: /* nan_with_sign: +-max where there is no NaN */
        return has_nan ? fi->canonical_nan : with_sign(fi, sign, fi->max_finite);
    case FP4_POLICY_ML_DTYPES: /* quiet_NaN() of float4/6 = 0b1..0 (-0); sign flips it */
        return has_nan ? quiet_nan(fi, sign) : (sign ? 0 : sign_bit(fi));
    case FP4_POLICY_MODELOPT: /* _cast_fp4: NaN compares false everywhere -> index 7 */
    case FP4_POLICY_NOSAT:
    default: return has_nan ? quiet_nan(fi, sign) : fi->max_finite;
    }
}

/* Result for an infinite (overflowing) value of the given sign when the
 * policy does not saturate: Inf, else NaN, else max. */
static uint64_t inf_result(const fp4_format_info *fi, int sign) {
    if (fi->has_inf) return with_sign(fi, sign, low_mask(fi->ebits) << fi->mbits);
    if (fi->nan != FP4_NAN_NONE) return quiet_nan(fi, sign);
    return with_sign(fi, sign, fi->max_finite);
}

static int ternary_for(int sign, int magnitude_up) {
    return (magnitude_up ? 1 : -1) * (sign ? -1 : 1);
}

static void set_flags(unsigned *flags, unsigned f) {
    if (flags) *flags |= f;
}

/* A zero result of the given sign. `exact_zero` says the input itself was
 * zero: modelopt's caster computes the sign bit as (x < 0), which is false
 * for -0.0 but true for a tiny negative that rounds to zero. */
static int encode_zero(const fp4_format_info *fi, int sign, bool exact_zero, const fp4_cvt_opts *o,
                       uint64_t *code, unsigned *flags) {
    if (!fi->has_zero) { /* UE8M0: smallest code 2^-127 stands in for zero */
        *code = 0;
        set_flags(flags, FP4_FLAG_INEXACT | FP4_FLAG_UNDERFLOW);
        return 1;
    }
    bool drop_sign = !fi->is_signed ||
                     (exact_zero && o->policy == FP4_POLICY_MODELOPT && fi->nan == FP4_NAN_NONE);
    *code = drop_sign ? 0 : with_sign(fi, sign, 0);
    return 0;
}

/* Overflow: the rounded magnitude exceeds max_finite. */
static int encode_overflow(const fp4_format_info *fi, int sign, const fp4_cvt_opts *o,
                           uint64_t *code, unsigned *flags) {
    set_flags(flags, FP4_FLAG_OVERFLOW | FP4_FLAG_INEXACT);
    bool to_inf;
    if (sat_on_overflow(fi, o->policy)) {
        to_inf = false;
    } else {
        switch (o->round) {
        case FP4_RZ: to_inf = false; break;
        case FP4_RU: to_inf = !sign; break;
        case FP4_RD: to_inf = sign; break;
        default: to_inf = true; break; /* RNE, RNA, RS round away */
        }
    }
    if (!to_inf) {
        *code = with_sign(fi, sign, fi->max_finite);
        if (sat_on_overflow(fi, o->policy)) set_flags(flags, FP4_FLAG_SATURATED);
        return ternary_for(sign, 0);
    }
    *code = inf_result(fi, sign);
    if (!fi->has_inf) {
        if (fi->nan != FP4_NAN_NONE) return 0; /* NaN result */
        set_flags(flags, FP4_FLAG_SATURATED);
        return ternary_for(sign, 0);
    }
    return ternary_for(sign, 1);
}

/* A normalized m (in [2^62, 2^63), with the 64 bits lo and a sticky bit
 * below it) cut at bit `shift` (>= 1): the kept part m >> shift, whether
 * anything non-zero was cut, and whether the mode adds one unit to it. */
typedef struct cut {
    uint64_t kept;
    bool inexact, up;
} cut;

static cut round_at(uint64_t m, uint64_t lo, bool sticky, int64_t shift, int sign,
                    const fp4_cvt_opts *o) {
    cut c = {0, false, false};
    uint64_t rem;
    if (shift >= 64) {
        rem = m;
    } else {
        c.kept = m >> shift;
        rem = m & low_mask((int)shift);
    }
    /* round bit = bit (shift-1) of m; below it plus sticky = the rest. */
    bool round_bit = shift <= 64 ? ((rem >> (shift - 1)) & 1) != 0 : false;
    bool below =
        shift <= 64 ? ((rem & low_mask((int)shift - 1)) != 0 || lo != 0 || sticky) : true;
    c.inexact = round_bit || below;

    switch (o->round) {
    case FP4_RNE: c.up = round_bit && (below || (c.kept & 1)); break;
    case FP4_RNA: c.up = round_bit; break;
    case FP4_RZ: c.up = false; break;
    case FP4_RU: c.up = c.inexact && !sign; break;
    case FP4_RD: c.up = c.inexact && sign; break;
    case FP4_RS: {
        /* PTX .rs: add the K random bits to the top K discarded bits; a carry
         * out rounds away from zero (bits below those K never matter). */
        int K = o->rbits_width > 0 ? o->rbits_width : 8;
        if (K > 32) K = 32;
        uint64_t top;
        if (shift >= K) top = (shift - K >= 64) ? 0 : rem >> (shift - K);
        else /* K - shift <= 32 - 10: the rest of the top K bits come from lo */
            top = (rem << (K - shift)) | (lo >> (64 - (K - shift)));
        uint64_t r = (uint64_t)o->rbits & low_mask(K);
        c.up = top + r >= (1ull << K);
        break;
    }
    default: break;
    }
    return c;
}

/* Tininess (IEEE 754-2019 §7.5) of |x| = m * 2^q with floor(log2|x|) = E.
 * Before rounding (the default): |x| < 2^emin. After rounding
 * (FP4_OPT_TININESS_AFTER, SoftFloat's softfloat_tininess_afterRounding):
 * |x| rounded in the same mode to the format's precision (mbits + 1 bits)
 * with an unbounded exponent range is < 2^emin. The two differ only in the
 * binade [2^(emin-1), 2^emin), when that rounding carries up to 2^emin. */
static bool is_tiny(const fp4_format_info *fi, int64_t E, uint64_t m, uint64_t lo, bool sticky,
                    int sign, const fp4_cvt_opts *o) {
    if (E >= fi->emin) return false;
    if (!(o->options & FP4_OPT_TININESS_AFTER) || E < (int64_t)fi->emin - 1) return true;
    cut c = round_at(m, lo, sticky, 62 - fi->mbits, sign, o); /* ulp 2^(E - mbits) */
    return c.kept + c.up < (1ull << (fi->mbits + 1));
}

/* Rounds |x| = (m + lo*2^-64 + sticky*tiny) * 2^q, m != 0, of the given sign.
 * lo carries the 64 bits below m: stochastic rounding into f64 looks at up
 * to 53 + 32 bits, more than m holds (big-integer inputs; found by
 * tests/test_formats_bigint). */
static int round_finite(const fp4_format_info *fi, int sign, uint64_t m, uint64_t lo, int64_t q,
                        bool sticky, const fp4_cvt_opts *o, uint64_t *code, unsigned *flags) {
    if (sign && (o->options & FP4_OPT_RELU)) { /* PTX .relu: negative -> +0 */
        set_flags(flags, FP4_FLAG_INEXACT);
        return (encode_zero(fi, 0, false, o, code, flags), 1);
    }
    if (sign && !fi->is_signed) {
        if (o->policy != FP4_POLICY_CUTLASS_HOST) {
            set_flags(flags, FP4_FLAG_INVALID);
            *code = fi->canonical_nan;
            return 0;
        }
        sign = 0; /* CUTLASS float_ue4m3_t host path converts |x| */
    }

    /* Normalize m to [2^62, 2^63): leaves headroom and >= 10 guard bits.
     * Bits move between m and lo; a 64-bit m (possible through
     * fp4_encode_value, where shifting by lz - 1 = -1 was UB) gives one. */
    int lz = __builtin_clzll(m);
    if (lz == 0) {
        sticky = sticky || (lo & 1);
        lo = (lo >> 1) | (m << 63);
        m >>= 1;
        q += 1;
    } else if (lz > 1) {
        m = (m << (lz - 1)) | (lo >> (65 - lz));
        lo <<= (lz - 1);
        q -= (lz - 1);
    }
    const int64_t E = q + 62; /* floor(log2 |x|) */
    const int mb = fi->mbits;

    if (!fi->has_subnormals && E < fi->emin) { /* UE8M0 below 2^-127: no zero */
        *code = 0;
        set_flags(flags, FP4_FLAG_INEXACT);
        if (is_tiny(fi, E, m, lo, sticky, sign, o)) set_flags(flags, FP4_FLAG_UNDERFLOW);
        return 1;
    }
    if (E > (int64_t)fi->emax + 1) /* certainly beyond the largest binade */
        return encode_overflow(fi, sign, o, code, flags);

    int64_t Qe = (E > fi->emin ? E : fi->emin) - mb; /* exponent of the result's ulp */
    cut c = round_at(m, lo, sticky, Qe - q, sign, o); /* Qe - q >= 62 - mbits >= 10 */
    uint64_t kept = c.kept;
    bool inexact = c.inexact, up = c.up;
    kept += up;
    if (kept >> (mb + 1)) { /* carried into the next binade */
        kept >>= 1;
        Qe += 1;
    }
    if (inexact) {
        set_flags(flags, FP4_FLAG_INEXACT);
        if (is_tiny(fi, E, m, lo, sticky, sign, o)) set_flags(flags, FP4_FLAG_UNDERFLOW);
    }
    int tern = inexact ? ternary_for(sign, up) : 0;

    if (kept == 0) /* underflow to zero */
        return (encode_zero(fi, sign, false, o, code, flags), tern);

    uint64_t mag;
    if (kept >> mb) { /* normal */
        int64_t e = Qe + mb;
        if (e > fi->emax) return encode_overflow(fi, sign, o, code, flags);
        mag = ((uint64_t)(e + fi->bias) << mb) | (kept & low_mask(mb));
        if (mag > fi->max_finite) return encode_overflow(fi, sign, o, code, flags);
    } else { /* subnormal (only when Qe == emin - mbits) */
        mag = kept;
        if (o->options & FP4_OPT_FTZ) {
            set_flags(flags, FP4_FLAG_FLUSHED | FP4_FLAG_UNDERFLOW | FP4_FLAG_INEXACT);
            encode_zero(fi, sign, false, o, code, flags);
            return ternary_for(sign, 0);
        }
    }
    *code = with_sign(fi, sign, mag);
    return tern;
}

static const fp4_cvt_opts *opts_or_default(const fp4_cvt_opts *o, fp4_cvt_opts *tmp, fp4_format f) {
    *tmp = o ? *o : fp4_cvt_opts_default();
    if (tmp->rbits_width <= 0) tmp->rbits_width = fp4_rs_default_width(f);
    return tmp;
}

/* A NaN operand raises invalid when it is signaling (IEEE 754-2019 §6.2,
 * §7.2(a); SoftFloat and TestFloat: a quiet NaN converts silently between
 * formats that have NaNs) and, like a NaN converted to an integer format
 * (§7.2(j)), whenever the destination has no NaN to carry it: E2M1, E2M3
 * and E3M2 deliver a number chosen by the policy instead (docs/formats.md,
 * "NaN inputs and the invalid flag"). */
static int encode_special(const fp4_format_info *fi, const fp4_value *v, bool snan,
                          const fp4_cvt_opts *o, uint64_t *code, unsigned *flags) {
    if (v->cls == FP4_CLASS_NAN) {
        if (snan || fi->nan == FP4_NAN_NONE) set_flags(flags, FP4_FLAG_INVALID);
        *code = (o->options & FP4_OPT_RELU) && fi->nan != FP4_NAN_NONE
                    ? fi->canonical_nan
                    : nan_result(fi, o->policy, v->sign);
        return 0;
    }
    if (v->cls == FP4_CLASS_ZERO) return encode_zero(fi, v->sign, true, o, code, flags);
    /* infinity */
    int sign = v->sign;
    if (sign && (o->options & FP4_OPT_RELU)) {
        /* -Inf -> +0 changes the value (ternary 1), so it is inexact, as in
         * round_finite's .relu path (found by tests/test_formats_exhaustive). */
        set_flags(flags, FP4_FLAG_INEXACT);
        return (encode_zero(fi, 0, false, o, code, flags), 1);
    }
    if (sign && !fi->is_signed) {
        if (o->policy != FP4_POLICY_CUTLASS_HOST) {
            set_flags(flags, FP4_FLAG_INVALID);
            *code = fi->canonical_nan;
            return 0;
        }
        sign = 0;
    }
    if (fi->has_inf && !sat_on_overflow(fi, o->policy)) {
        *code = inf_result(fi, sign);
        return 0;
    }
    set_flags(flags, FP4_FLAG_INEXACT);
    if (sat_on_overflow(fi, o->policy) || fi->nan == FP4_NAN_NONE) {
        set_flags(flags, FP4_FLAG_SATURATED);
        *code = with_sign(fi, sign, fi->max_finite);
        return ternary_for(sign, 0);
    }
    set_flags(flags, FP4_FLAG_OVERFLOW);
    *code = inf_result(fi, sign); /* NaN in a format without Inf */
    return 0;
}

/* fp4_encode_value with the source NaN's kind (snan: signaling). */
static int encode_value(fp4_format f, const fp4_value *v, bool snan, const fp4_cvt_opts *o,
                        uint64_t *code, unsigned *flags) {
    const fp4_format_info *fi = fp4_format_get(f);
    fp4_cvt_opts tmp;
    o = opts_or_default(o, &tmp, f);
    if (v->cls != FP4_CLASS_FINITE || v->sig == 0) {
        fp4_value z = *v;
        if (z.cls == FP4_CLASS_FINITE) z.cls = FP4_CLASS_ZERO;
        return encode_special(fi, &z, snan, o, code, flags);
    }
    return round_finite(fi, v->sign, v->sig, 0, v->exp, false, o, code, flags);
}

int fp4_encode_value(fp4_format f, const fp4_value *v, const fp4_cvt_opts *o, uint64_t *code,
                     unsigned *flags) {
    return encode_value(f, v, false, o, code, flags); /* a bare value's NaN is quiet */
}

/* Bits [pos, pos + 64) of the n-limb integer L (zeros below bit 0). */
static uint64_t limb_bits(const uint64_t *limbs, size_t n, int64_t pos) {
    if (pos <= -64) return 0;
    if (pos < 0) return limbs[0] << -pos;
    size_t w = (size_t)(pos / 64);
    int b = (int)(pos % 64);
    uint64_t v = w < n ? limbs[w] >> b : 0;
    if (b && w + 1 < n) v |= limbs[w + 1] << (64 - b);
    return v;
}

int fp4_encode_bigint(fp4_format f, int sign, const uint64_t *limbs, size_t nlimbs, int64_t exp,
                      const fp4_cvt_opts *o, uint64_t *code, unsigned *flags) {
    const fp4_format_info *fi = fp4_format_get(f);
    fp4_cvt_opts tmp;
    o = opts_or_default(o, &tmp, f);
    size_t top = nlimbs;
    while (top > 0 && limbs[top - 1] == 0) top--;
    if (top == 0) {
        fp4_value z = {FP4_CLASS_ZERO, sign ? 1 : 0, 0, 0};
        return encode_special(fi, &z, false, o, code, flags);
    }
    /* Take the top 63 significant bits into m, the next 64 into lo (RS into
     * f64 needs up to 53 + 32 bits), the rest into sticky. */
    uint64_t hi = limbs[top - 1];
    int hb = 64 - __builtin_clzll(hi);                        /* bits in the top limb */
    int64_t bitlen = (int64_t)(top - 1) * 64 + hb;            /* total significant bits */
    int64_t drop = bitlen > 63 ? bitlen - 63 : 0;             /* low bits not in m */
    uint64_t m = hi; /* drop == 0 implies a single limb */
    uint64_t lo = 0;
    bool sticky = false;
    if (drop > 0) {
        m = limb_bits(limbs, top, drop) & low_mask(63);
        lo = limb_bits(limbs, top, drop - 64);
        if (drop > 64) {
            size_t w = (size_t)((drop - 64) / 64);
            int b = (int)((drop - 64) % 64);
            if (b && (limbs[w] & low_mask(b))) sticky = true;
            for (size_t i = 0; i < w && !sticky; i++) sticky = limbs[i] != 0;
        }
    }
    /* The caller's exp may be anywhere in int64: exp + drop, and the +62 and
     * -(lz-1) inside round_finite, must not overflow (UB; with wrap-around
     * 1*2^INT64_MIN came out as 1.0). Beyond +-2^40 every format has long
     * overflowed or underflowed (grid exponents lie in [-1074, 1023], RS
     * looks at most 32 bits further), so saturating there changes no result.
     * Found by tests/test_formats_bigint. */
    const int64_t lim = (int64_t)1 << 40;
    int64_t q;
    if (__builtin_add_overflow(exp, drop, &q)) q = lim;
    if (q > lim) q = lim;
    if (q < -lim) q = -lim;
    return round_finite(fi, sign ? 1 : 0, m, lo, q, sticky, o, code, flags);
}

/* Whether a code that decodes as NaN is a signaling NaN. IEEE formats and
 * E5M2 (the top byte of a binary16): the first fraction bit is 0 (IEEE
 * 754-2019 §6.2.1, as x86, Arm and SoftFloat read it). E4M3, UE4M3 and
 * UE8M0 have one NaN code, the one every producer returns for an invalid
 * operation: quiet. A code outside the format is no datum at all and is
 * treated as signaling (it raises invalid wherever it goes). */
bool fp4_nan_is_signaling(fp4_format f, uint64_t code) {
    const fp4_format_info *fi = fp4_format_get(f);
    if (!fi || !fp4_code_valid(f, code)) return true;
    if (fp4_decode(f, code).cls != FP4_CLASS_NAN || fi->nan != FP4_NAN_IEEE) return false;
    return ((code >> (fi->mbits - 1)) & 1) == 0;
}

int fp4_convert(fp4_format dst, fp4_format src, uint64_t src_code, const fp4_cvt_opts *o,
                uint64_t *code, unsigned *flags) {
    fp4_value v = fp4_decode(src, src_code);
    const fp4_format_info *si = fp4_format_get(src);
    bool snan = v.cls == FP4_CLASS_NAN && fp4_nan_is_signaling(src, src_code);
    if (o && (o->options & FP4_OPT_DAZ) && si && si->has_subnormals && v.cls == FP4_CLASS_FINITE) {
        int magbits = si->is_signed ? si->bits - 1 : si->bits;
        uint64_t mag = src_code & low_mask(magbits);
        if ((mag >> si->mbits) == 0) { /* exponent field zero, non-zero fraction */
            v.cls = FP4_CLASS_ZERO;
            v.sig = 0;
            set_flags(flags, FP4_FLAG_FLUSHED);
        }
    }
    return encode_value(dst, &v, snan, o, code, flags);
}

int fp4_encode_f32(fp4_format f, float x, const fp4_cvt_opts *o, uint64_t *code, unsigned *flags) {
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return fp4_convert(f, FP4_FMT_F32, b, o, code, flags);
}

int fp4_encode_f64(fp4_format f, double x, const fp4_cvt_opts *o, uint64_t *code,
                   unsigned *flags) {
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    return fp4_convert(f, FP4_FMT_F64, b, o, code, flags);
}

/* SoftFloat-style wrappers. */
#define FP4_DEFINE_CVT(dst, ctype, FMT)                                                     \
    ctype f32_to_##dst(float x, const fp4_cvt_opts *o, int *ternary, unsigned *flags) {    \
        uint64_t c = 0;                                                                     \
        int t = fp4_encode_f32(FMT, x, o, &c, flags);                                      \
        if (ternary) *ternary = t;                                                          \
        return (ctype)c;                                                                    \
    }                                                                                       \
    ctype f64_to_##dst(double x, const fp4_cvt_opts *o, int *ternary, unsigned *flags) {   \
        uint64_t c = 0;                                                                     \
        int t = fp4_encode_f64(FMT, x, o, &c, flags);                                      \
        if (ternary) *ternary = t;                                                          \
        return (ctype)c;                                                                    \
    }                                                                                       \
    float dst##_to_f32(ctype code) { return (float)fp4_to_f64(FMT, code); }                \
    double dst##_to_f64(ctype code) { return fp4_to_f64(FMT, code); }
FP4_DEFINE_CVT(e2m1, uint8_t, FP4_FMT_E2M1)
FP4_DEFINE_CVT(e2m3, uint8_t, FP4_FMT_E2M3)
FP4_DEFINE_CVT(e3m2, uint8_t, FP4_FMT_E3M2)
FP4_DEFINE_CVT(e4m3, uint8_t, FP4_FMT_E4M3)
FP4_DEFINE_CVT(ue4m3, uint8_t, FP4_FMT_UE4M3)
FP4_DEFINE_CVT(e5m2, uint8_t, FP4_FMT_E5M2)
FP4_DEFINE_CVT(ue8m0, uint8_t, FP4_FMT_UE8M0)
FP4_DEFINE_CVT(f16, uint16_t, FP4_FMT_F16)
FP4_DEFINE_CVT(bf16, uint16_t, FP4_FMT_BF16)
#undef FP4_DEFINE_CVT

/* ------------------------------------------------------------------------ */
/* Packing                                                                   */
/* ------------------------------------------------------------------------ */

void e2m1_pack(uint8_t *dst, const uint8_t *codes, int64_t n) {
    for (int64_t j = 0; 2 * j < n; j++) {
        uint8_t odd = (2 * j + 1 < n) ? codes[2 * j + 1] : 0;
        dst[j] = e2m1x2_pack(codes[2 * j], odd);
    }
}

void e2m1_unpack(uint8_t *codes, const uint8_t *src, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        codes[i] = (i & 1) ? e2m1x2_odd(src[i / 2]) : e2m1x2_even(src[i / 2]);
}
