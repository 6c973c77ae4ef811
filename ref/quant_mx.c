/* quant_mx.c - OCP Microscaling MXFP4 / MXFP8 (block 32, E8M0 scale).
 *
 * Scale rule (OCP MX v1.0 §6.3; microsoft/microxcaling mx/mx_ops.py
 * _shared_exponents, recipes.md §2.12, numerics.md §10):
 *   shared_exp = floor(log2(max |x|)) - emax_elem, clamped below at -127
 *   (microxcaling adds FP32_MIN_NORMAL to a zero amax, so an all-zero block
 *   gets -127, byte 0x00); emax_elem = 2 (E2M1), 8 (E4M3), 15 (E5M2);
 *   scale byte = shared_exp + 127.
 * Elements: x / 2^shared_exp, saturated to the element's max normal
 * (saturate_normals=True), rounded to nearest even (the "mxfp*" recipes) or
 * ties away from zero (microxcaling's default round="nearest":
 * sign(A)*floor(|A|+0.5) at the element grid; the "-rna" recipes).
 *
 * Everything here is exact: the division by a power of two is done on the
 * exact value (microxcaling divides in FP32, which differs only below
 * 2^-126, where every element format rounds to zero anyway). floor(log2)
 * is taken exactly from the binary exponent; microxcaling's torch.log2 in
 * FP32 can round up for amax just below a power of two at large exponents
 * (a known reference-implementation artefact not reproduced here).
 * NaN and Inf inputs are refused: the spec leaves the codes of a NaN-scale
 * block undefined.
 */
#define FP4QUANT_INTERNAL 1
#include "fp4quant.h"

#include <math.h>

static int emax_of(fp4_format f) {
    switch (f) {
    case FP4_FMT_E2M1: return 2;
    case FP4_FMT_E4M3: return 8;
    default: return 15; /* E5M2 */
    }
}

/* floor(log2 a) for a finite a > 0, exact (subnormals included). */
static int floor_log2(float a) {
    fp4_value v = fp4_value_from_f32(a);
    return v.exp + 63 - __builtin_clzll(v.sig);
}

static int shared_exp(float bamax, int emax) {
    int e = bamax == 0.0f ? -127 : floor_log2(bamax) - emax;
    return e < -127 ? -127 : e;
}

static uint8_t mx_elem(fp4_format f, float x, int e, fp4_round rnd) {
    fp4_value v = fp4_value_from_f32(x);
    if (v.cls == FP4_CLASS_FINITE) v.exp -= e;
    fp4_cvt_opts o = fp4_cvt_opts_default();
    o.round = rnd;
    o.policy = FP4_POLICY_SATFINITE;
    uint64_t code = 0;
    fp4_encode_value(f, &v, &o, &code, NULL);
    return (uint8_t)code;
}

int fp4q_mx_run(const fp4_qrecipe *r, const float *x, int64_t rows, int64_t cols, uint8_t *codes,
                uint8_t *scales) {
    bool rna = r->id == FP4_QR_MXFP4_RNA || r->id == FP4_QR_MXFP8_E4M3_RNA ||
               r->id == FP4_QR_MXFP8_E5M2_RNA;
    fp4_round rnd = rna ? FP4_RNA : FP4_RNE;
    int emax = emax_of(r->elem);
    int64_t nb = cols / 32;
    for (int64_t i = 0; i < rows * cols; i++)
        if (!isfinite(x[i]))
            return fp4_fail("fp4_quantize: %s: NaN/Inf input at element %lld (the MX spec leaves "
                            "a NaN-scale block's codes undefined)",
                            r->name, (long long)i);
    for (int64_t row = 0; row < rows; row++) {
        for (int64_t b = 0; b < nb; b++) {
            const float *p = x + row * cols + b * 32;
            float m = 0.0f;
            for (int i = 0; i < 32; i++) m = fmaxf(m, fabsf(p[i]));
            int e = shared_exp(m, emax);
            scales[row * nb + b] = (uint8_t)(e + 127);
            for (int i = 0; i < 32; i++) codes[row * cols + b * 32 + i] = mx_elem(r->elem, p[i], e, rnd);
        }
    }
    return 0;
}
