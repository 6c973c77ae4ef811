/* decode.c - codes to exact operands and terms for the datapath models.
 *
 * Decoding goes through ref/'s fp4_decode, so the value sets are the ones
 * the whole project agrees on (numerics.md §1.2). What this file adds is
 * the Khattak-Mikaitis exponent e = max(floor(log2|x|), emin): a subnormal
 * operand keeps its format's emin as exponent and a significand below 1,
 * which is what makes products "unnormalized" in the model (§5.1 step 2).
 */
#include "emu_internal.h"

uint64_t emu_code_at(const void *codes, int bytes, bool packed, int64_t i) {
    const uint8_t *p8 = codes;
    if (packed) return (i & 1) ? (uint64_t)(p8[i / 2] >> 4) : (uint64_t)(p8[i / 2] & 0xFu);
    switch (bytes) {
    case 1: return p8[i];
    case 2: return ((const uint16_t *)codes)[i];
    case 4: return ((const uint32_t *)codes)[i];
    default: return ((const uint64_t *)codes)[i];
    }
}

emu_op emu_op_decode(fp4_format f, uint64_t code, bool subnormals) {
    const fp4_format_info *fi = fp4_format_get(f);
    fp4_value v = fp4_decode(f, code);
    emu_op op = {0, 0, 0, (uint8_t)v.sign, (uint8_t)v.cls};
    if (v.cls != FP4_CLASS_FINITE) return op;
    int flog = emu_bitlen64(v.sig) - 1 + v.exp;
    if (!subnormals && flog < fi->emin) { /* DAZ: a subnormal code reads as zero */
        op.cls = FP4_CLASS_ZERO;
        return op;
    }
    op.sig = (uint32_t)v.sig;
    op.lsb = (int16_t)v.exp;
    op.e = (int16_t)(flog > fi->emin ? flog : fi->emin);
    return op;
}

void emu_ops_decode(fp4_format f, const void *codes, bool packed, int64_t first, int64_t n,
                    bool subnormals, emu_op *out) {
    int bytes = fp4_format_code_bytes(f);
    for (int64_t i = 0; i < n; i++)
        out[i] = emu_op_decode(f, emu_code_at(codes, bytes, packed, first + i), subnormals);
}

/* IEEE-like accumulator codes (F32, F16, BF16) straight from the fields;
 * the significand is left unreduced, which no caller needs. */
static emu_term ieee_term(const fp4_format_info *fi, uint64_t code) {
    uint64_t emask = (1ull << fi->ebits) - 1, fmask = (1ull << fi->mbits) - 1;
    uint64_t ef = (code >> fi->mbits) & emask, frac = code & fmask;
    emu_term t = {0, 0, 0, (uint8_t)((code >> (fi->bits - 1)) & 1), FP4_CLASS_FINITE};
    if (ef == emask) {
        t.cls = frac ? FP4_CLASS_NAN : FP4_CLASS_INF;
    } else if (ef == 0 && frac == 0) {
        t.cls = FP4_CLASS_ZERO;
    } else if (ef == 0) { /* subnormal: exponent emin (§5.1 step 3), significand < 1 */
        t.sig = frac;
        t.lsb = fi->emin - fi->mbits;
        t.e = fi->emin;
    } else {
        t.sig = frac | (1ull << fi->mbits);
        t.e = (int32_t)ef - fi->bias;
        t.lsb = t.e - fi->mbits;
    }
    return t;
}

emu_term emu_term_of_code(fp4_format f, uint64_t code) {
    const fp4_format_info *fi = fp4_format_get(f);
    if (f == FP4_FMT_F32 || f == FP4_FMT_F16 || f == FP4_FMT_BF16) return ieee_term(fi, code);
    fp4_value v = fp4_decode(f, code);
    emu_term t = {0, 0, 0, (uint8_t)v.sign, (uint8_t)v.cls};
    if (v.cls != FP4_CLASS_FINITE) return t;
    int flog = emu_bitlen64(v.sig) - 1 + v.exp;
    t.sig = v.sig;
    t.lsb = v.exp;
    t.e = flog > fi->emin ? flog : fi->emin; /* subnormal C: exponent emin (§5.1 step 3) */
    return t;
}

uint64_t emu_nan_code(fp4_format f) { return fp4_format_get(f)->canonical_nan; }

uint64_t emu_inf_code(fp4_format f, int sign) {
    const fp4_format_info *fi = fp4_format_get(f);
    uint64_t e = ((1ull << fi->ebits) - 1) << fi->mbits;
    return e | ((uint64_t)(sign != 0) << (fi->bits - 1));
}

uint64_t emu_zero_code(fp4_format f, int sign) {
    return (uint64_t)(sign != 0) << (fp4_format_get(f)->bits - 1);
}

static bool element_format_ok(fp4_format f) {
    switch (f) {
    case FP4_FMT_E2M1: case FP4_FMT_E2M3: case FP4_FMT_E3M2: case FP4_FMT_E4M3:
    case FP4_FMT_E5M2: case FP4_FMT_F16: case FP4_FMT_BF16:
        return true;
    default:
        return false;
    }
}

bool emu_input_check(const fp4emu_input *in) {
    if (!in) return fp4_fail("emu: null input description") == 0;
    if (!element_format_ok(in->a_fmt) || !element_format_ok(in->b_fmt))
        return fp4_fail("emu: operand formats must be e2m1, e2m3, e3m2, e4m3, e5m2, f16 or bf16")
               == 0;
    if (in->scale_fmt == FP4_FMT_COUNT) return true;
    if (in->scale_fmt != FP4_FMT_UE4M3 && in->scale_fmt != FP4_FMT_UE8M0)
        return fp4_fail("emu: scale format must be ue4m3 or ue8m0 (or none)") == 0;
    if (in->scale_block < 1) return fp4_fail("emu: scale_block must be >= 1") == 0;
    return true;
}

fp4emu_input fp4emu_input_plain(fp4_format a_fmt, fp4_format b_fmt) {
    fp4emu_input in = {a_fmt, b_fmt, FP4_FMT_COUNT, 0};
    return in;
}

fp4emu_input fp4emu_input_nvfp4(void) {
    fp4emu_input in = {FP4_FMT_E2M1, FP4_FMT_E2M1, FP4_FMT_UE4M3, 16};
    return in;
}
