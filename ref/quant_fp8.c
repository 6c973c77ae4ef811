/* quant_fp8.c - DeepSeek-V3/R1's FP8 block quantization (recipes.md §2.13,
 * deepseek.md §2.3): E4M3 elements with one FP32 scale per block of 128
 * columns and `block_rows` rows (128x128 for weights, 1x128 for
 * activations). s = amax / 448 in FP32 (the activation rule floors amax at
 * 1e-4 first, act_quant_kernel; the weight rule uses s = 1 for an all-zero
 * tile), code = E4M3(x / s) rounded to nearest even and saturated (PTX
 * cvt.rn.satfinite.e4m3x2, what torch's .to(float8_e4m3fn) after the clamp
 * gives). A last block narrower than 128 columns takes the elements that
 * exist (the checkpoint's edge tiles). The model's fp8-block policy and the
 * synthetic FP8 checkpoint writer both use this one function. */
#define FP4QUANT_INTERNAL 1
#include "fp4quant.h"

#include <float.h>
#include <math.h>

#if FLT_EVAL_METHOD != 0
#error "the FP8 block rule needs float arithmetic in float (FLT_EVAL_METHOD 0)"
#endif

int fp4q_fp8_block_run(const fp4_qrecipe *r, const float *x, int64_t rows, int64_t cols,
                       uint8_t *codes, float *scales) {
    const bool act = r->id == FP4_QR_DEEPSEEK_FP8_ACT;
    const int64_t br = r->block_rows, bc = r->block, nbc = (cols + bc - 1) / bc;
    const int64_t nbr = (rows + br - 1) / br;
    for (int64_t i = 0; i < rows * cols; i++)
        if (!isfinite(x[i]))
            return fp4_fail("fp4_quantize: %s: NaN/Inf input at element %lld (the amax and every "
                            "code of its block would be undefined)", r->name, (long long)i);
    for (int64_t b = 0; b < nbr * nbc; b++) {
        const int64_t r0 = (b / nbc) * br, c0 = (b % nbc) * bc;
        const int64_t r1 = r0 + br < rows ? r0 + br : rows, c1 = c0 + bc < cols ? c0 + bc : cols;
        float amax = act ? 1e-4f : 0.0f;
        for (int64_t i = r0; i < r1; i++)
            for (int64_t j = c0; j < c1; j++) amax = fmaxf(amax, fabsf(x[i * cols + j]));
        const float s = act || amax > 0 ? amax / 448.0f : 1.0f;
        scales[b] = s;
        for (int64_t i = r0; i < r1; i++) {
            float q[128];
            int64_t n = 0;
            for (int64_t j = c0; j < c1; j++) q[n++] = x[i * cols + j] / s;
            fp4_f32_to_e4m3_rne_sat(codes + i * cols + c0, q, n);
        }
    }
    return 0;
}
