/* quant_nvfp4.c - the NVFP4 recipes, one short function per producer.
 *
 * Every formula below is quoted from the project's reference notes
 * (recipes.md §2-§4, "recipes.md" below) with the producer source they cite.
 * Each written operation is one FP32 rounding, done here as one C float
 * operation in the same order; nothing is fused (FP contraction is off for
 * this file) and FLT_EVAL_METHOD must be 0.
 *
 * Two arithmetic models:
 *  - CUDA kernels (TE, vLLM, FlashInfer/TRT-LLM) and PyTorch on CUDA: IEEE
 *    binary32 RN, every NaN produced by an operation is 0x7FFFFFFF;
 *  - PyTorch on CPU (x86): IEEE RN, a NaN operand propagates (quieted) and an
 *    invalid operation gives the x86 default NaN 0xFFC00000.
 * NaN bits matter: torch's float8 cast keeps the NaN's sign (0x7F vs 0xFF)
 * and torchao's E2M1 bit trick reads the NaN's payload.
 *
 * PyTorch operator facts used (ATen, all recent versions):
 *  - `tensor / python_float` on CUDA is tensor * RN32(1/python_float)
 *    (BinaryDivTrueKernel.cu: "compute a * reciprocal(b)"), on CPU an IEEE
 *    division;
 *  - `python_float / tensor` is tensor.reciprocal() * python_float
 *    (torch/_tensor.py __rtruediv__);
 *  - reductions (amax, max) and clamp propagate NaN; float8_e4m3fn casts do
 *    not saturate (> 464 -> NaN, numerics.md §2.6);
 *  - a bf16/f16 op computes in FP32 and rounds the result to bf16/f16.
 */
#define FP4QUANT_INTERNAL 1
#include "fp4quant.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if FLT_EVAL_METHOD != 0
#error "the quantizer recipes need float arithmetic in float (FLT_EVAL_METHOD 0)"
#endif
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

/* ------------------------------------------------------------------------ */
/* Context                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct nv_ctx {
    const fp4_qrecipe *r;
    const fp4_qopts *o;
    fp4_format in_fmt;
    bool x86;            /* PyTorch-on-CPU NaN model (torch recipes only) */
    bool torch_cuda;     /* torch `tensor / python_float` as a reciprocal multiply */
    float amax;          /* tensor amax (NaN when a given scale replaced it) */
    float enc, dec, stored;
    float k1, k2;        /* per-tensor constants, named in each recipe */
    const uint32_t *rbits; /* TE stochastic rounding: one word per element */
} nv_ctx;

/* One block: given its amax (the 16x16 tile's for TE 2D), quantize n
 * elements x[0..n) (global element index `base`) into codes[0..n) and
 * return the scale byte. */
typedef uint8_t (*nv_block_fn)(const nv_ctx *c, float bamax, const float *x, int n,
                               int64_t base, uint8_t *codes);
/* Per-tensor setup: fills enc/dec/stored/k1/k2 from the global source. */
typedef int (*nv_global_fn)(nv_ctx *c);

/* ------------------------------------------------------------------------ */
/* Arithmetic: one rounding per call, NaN bits per model                     */
/* ------------------------------------------------------------------------ */

static float nan_result(const nv_ctx *c, float a, float b) {
    if (!c->x86) return fp4_f32_from_bits(0x7FFFFFFFu);          /* CUDA canonical NaN */
    if (isnan(a)) return fp4_f32_from_bits(fp4_f32_bits(a) | 0x00400000u); /* first NaN operand, quieted */
    if (isnan(b)) return fp4_f32_from_bits(fp4_f32_bits(b) | 0x00400000u);
    return fp4_f32_from_bits(0xFFC00000u);                       /* x86 default NaN */
}

static float f_mul(const nv_ctx *c, float a, float b) {
    float r = a * b;
    return isnan(r) ? nan_result(c, a, b) : r;
}

static float f_div(const nv_ctx *c, float a, float b) {
    float r = a / b;
    return isnan(r) ? nan_result(c, a, b) : r;
}

/* PyTorch `tensor / python_float`. On CUDA ATen multiplies by the
 * reciprocal, computed in double and rounded to float (older versions: in
 * float; identical for the constants used here, 6, 448 and 2688, checked by
 * tests/test_quant_recipes.c). */
static float torch_div_scalar(const nv_ctx *c, float t, double s) {
    if (c->torch_cuda) return f_mul(c, t, (float)(1.0 / s));
    return f_div(c, t, (float)s);
}

/* PyTorch `python_float / tensor` = tensor.reciprocal() * python_float. */
static float torch_rdiv_scalar(const nv_ctx *c, double s, float t) {
    return f_mul(c, f_div(c, 1.0f, t), (float)s);
}

/* torch.clamp: NaN passes through unchanged. */
static float torch_clamp(float v, float lo, float hi) {
    if (isnan(v)) return v;
    return v < lo ? lo : (v > hi ? hi : v);
}

/* ------------------------------------------------------------------------ */
/* Casts                                                                     */
/* ------------------------------------------------------------------------ */

static uint8_t cvt8(fp4_format f, float v, fp4_policy p) {
    fp4_cvt_opts o = fp4_cvt_opts_default();
    o.policy = p;
    uint64_t code = 0;
    fp4_encode_f32(f, v, &o, &code, NULL);
    return (uint8_t)code;
}

/* torch eager `.to(torch.float8_e4m3fn)`: RNE, no saturation, NaN sign kept. */
static uint8_t e4m3_torch(float v) { return cvt8(FP4_FMT_E4M3, v, FP4_POLICY_NOSAT); }
/* CUDA __nv_fp8_e4m3(float) / cvt.rn.satfinite.e4m3x2: NaN -> 0x7F. */
static uint8_t e4m3_satfinite(float v) { return cvt8(FP4_FMT_E4M3, v, FP4_POLICY_SATFINITE); }
/* The FP32 value of an E4M3 byte (exact; NaN keeps the byte's sign). Decoded
 * here rather than through fp4_decode because it runs once per block. */
static float e4m3_value(uint8_t b) {
    int e = (b >> 3) & 0xF, m = b & 7;
    float v = (e == 0xF && m == 7) ? NAN : e ? ldexpf((float)(8 + m), e - 10) : ldexpf((float)m, -9);
    return (b & 0x80) ? -v : v;
}

/* Hardware cvt.rn.satfinite.e2m1x2.f32 (CUDA __nv_cvt_float2_to_fp4x2):
 * saturate to +-6, NaN -> +6, -0 -> 0x8 (numerics.md §2.2, §2.9; the sign
 * of a zero result is [INF] on sm_100). fp4sim's checked fast kernel. */
static void e2m1_hw(uint8_t *codes, const float *y, int n) { fp4_f32_to_e2m1_rne_sat(codes, y, n); }

/* cvt.rs.satfinite.e2m1x4.f32 with 8 random bits per element. */
static uint8_t e2m1_hw_rs(float y, uint32_t rbits) {
    fp4_cvt_opts o = fp4_cvt_opts_default();
    o.round = FP4_RS;
    o.rbits = rbits;
    o.rbits_width = 8;
    uint64_t code = 0;
    fp4_encode_f32(FP4_FMT_E2M1, y, &o, &code, NULL);
    return (uint8_t)code;
}

/* modelopt `_cast_fp4`: sign bit = (y < 0) so -0.0 -> 0x0; NaN -> 0x7;
 * fp4sim's FP4_POLICY_MODELOPT. It differs from the hardware cvt only on
 * -0.0, so the block runs through the fast kernel and fixes that one case
 * (tests compare with the policy's scalar path). */
static void e2m1_modelopt(uint8_t *codes, const float *y, int n) {
    e2m1_hw(codes, y, n);
    for (int i = 0; i < n; i++)
        if (y[i] == 0.0f) codes[i] = 0x0;
}

/* compressed-tensors: cast_to_fp4 (threshold table on |y| times
 * torch.sign(y)) then pack_fp4_to_uint8 (argmin magnitude | signbit << 3):
 * -0.0 -> 0x0 (sign(-0) = 0), a tiny negative -> 0x8 (0 * -1 = -0), NaN ->
 * 0x0 [MEAS, recipes.md §2.8]. Otherwise RNE with the sign of y. */
static void e2m1_ct(uint8_t *codes, const float *y, int n) {
    e2m1_hw(codes, y, n);
    for (int i = 0; i < n; i++)
        if (y[i] == 0.0f || isnan(y[i])) codes[i] = 0x0;
}

/* torchao `_f32_to_floatx_unpacked(y, ebits=2, mbits=1)` (custom_fp_utils.py
 * @36027d8), on the FP32 bit pattern, after the caller's clamp to +-6:
 *  - |y| >= 6 -> 7;
 *  - |y| < 1 (subnormal E2M1): bits(|y| + 2^22) - bits(2^22), an FP32 RNE
 *    add that rounds to a multiple of 0.5;
 *  - else the magic adder: bits + ((1-127) << 23) + (2^21 - 1) + mant_odd,
 *    shifted right by 22, truncated to uint8;
 *  - sign bit from the pattern's top bit (-0.0 -> 0x8).
 * NaN compares false in both tests and goes through the magic adder, so its
 * code depends on its payload: 0x7FFFFFFF (CUDA) -> 0x4, 0xFFC00000 (x86)
 * -> 0xB, 0x7FC00000 -> 0x3 (numerics.md §2.8 says 0x3/0xB [INF]). */
static uint8_t e2m1_torchao(float y) {
    uint32_t u = fp4_f32_bits(y);
    uint32_t sign = u >> 31, a = u & 0x7FFFFFFFu;
    float af = fp4_f32_from_bits(a);
    uint32_t mag;
    if (af >= 6.0f) {
        mag = 7;
    } else if (af < 1.0f) {
        const float magic = 4194304.0f; /* 2^22: its ulp is 0.5 */
        float t = af + magic;
        mag = fp4_f32_bits(t) - fp4_f32_bits(magic);
    } else {
        uint32_t mant_odd = (a >> 22) & 1u;
        uint32_t v = a + (uint32_t)((int32_t)(1 - 127) * (1 << 23)) + ((1u << 21) - 1u) + mant_odd;
        mag = (v >> 22) & 0xFFu;
    }
    return (uint8_t)(((mag & 0xFFu) | (sign << 3)) & 0xFFu);
}

/* ------------------------------------------------------------------------ */
/* BF16 / FP16 intermediates (compressed-tensors computes in the observed    */
/* dtype): RNE, IEEE overflow to inf, NaN -> a positive quiet NaN (c10 and   */
/* CUDA both drop the sign).                                                 */
/* ------------------------------------------------------------------------ */

static float round_obs(fp4_format f, float v) {
    if (f == FP4_FMT_F32) return v;
    if (isnan(v)) return fp4_f32_from_bits(0x7FC00000u);
    fp4_cvt_opts o = fp4_cvt_opts_default();
    o.policy = FP4_POLICY_NOSAT;
    if (f == FP4_FMT_BF16) return bf16_to_f32(f32_to_bf16(v, &o, NULL, NULL));
    return f16_to_f32(f32_to_f16(v, &o, NULL, NULL));
}

/* ------------------------------------------------------------------------ */
/* Global-scale helpers                                                      */
/* ------------------------------------------------------------------------ */

static int need_amax(const nv_ctx *c) {
    if (c->o->global_source == FP4_QGS_COMPUTE || c->o->global_source == FP4_QGS_AMAX) return 1;
    return 0;
}

static int refuse_source(const nv_ctx *c, const char *what) {
    return fp4_fail("fp4_quantize: recipe %s takes %s", c->r->name, what);
}

/* ------------------------------------------------------------------------ */
/* modelopt 2026                                                             */
/* ------------------------------------------------------------------------ */

/* Model-Optimizer @a2fbac7 modelopt/torch/quantization/qtensor/nvfp4_tensor.py
 * get_weights_scaling_factor_2: `wsf2 = amax.float() / (6.0 * 448.0)`
 * (recipes.md §2.1 step 1; a tensor / Python float). k1 = RN(6 * wsf2). */
static int modelopt_global(nv_ctx *c) {
    if (c->o->global_source == FP4_QGS_ENCODE)
        return refuse_source(c, "a decode-polarity scale (weight_scale_2 / input_scale)");
    float wsf2 = need_amax(c) ? torch_div_scalar(c, c->amax, 2688.0) : c->o->global_scale;
    c->dec = c->stored = wsf2;
    c->enc = f_div(c, 1.0f, wsf2);
    c->k1 = f_mul(c, 6.0f, wsf2);
    return 0;
}

/* get_weights_scaling_factor + quantize (recipes.md §2.1 steps 2-9):
 *   s = bamax / RN(6 * wsf2);  s == 0 -> 1.0;
 *   s8 = fp8(clamp(s, 2^-9, 448));  y = x / RN(fp32(s8) * wsf2);
 *   code = _cast_fp4(y). */
static uint8_t modelopt_block(const nv_ctx *c, float bamax, const float *x, int n, int64_t base,
                              uint8_t *codes) {
    float s = f_div(c, bamax, c->k1);
    if (s == 0.0f) s = 1.0f;
    uint8_t s8 = e4m3_torch(torch_clamp(s, 0x1p-9f, 448.0f));
    float d = f_mul(c, e4m3_value(s8), c->dec);
    float y[32];
    for (int i = 0; i < n; i++) y[i] = f_div(c, x[i], d);
    e2m1_modelopt(codes, y, n);
    return s8;
}

/* ------------------------------------------------------------------------ */
/* modelopt <= 0.33 (DeepSeek-R1 NVFP4 era)                                  */
/* ------------------------------------------------------------------------ */

/* Model-Optimizer 4c611e4 (2025-07-31) nvfp4_tensor.py and the v0.25
 * examples/deepseek/quantize_to_nvfp4.py (2017cd906):
 * `wsf2 = amax.float() / 6.0 / 448.0` (recipes.md §2.2 step 1). */
static int modelopt_v02x_global(nv_ctx *c) {
    if (c->o->global_source == FP4_QGS_ENCODE)
        return refuse_source(c, "a decode-polarity scale (weight_scale_2 / input_scale)");
    float wsf2 = c->o->global_scale;
    if (need_amax(c)) wsf2 = torch_div_scalar(c, torch_div_scalar(c, c->amax, 6.0), 448.0);
    c->dec = c->stored = wsf2;
    c->enc = f_div(c, 1.0f, wsf2);
    return 0;
}

/* recipes.md §2.2 steps 2-5: ps = bamax / 6.0; s = ps / wsf2; ps == 0 -> 1.0;
 * s8 = s.to(float8_e4m3fn) with no clamp (> 464 -> NaN, tiny -> 0);
 * y = x / RN(fp32(s8) * wsf2) (s8 == 0 gives +-inf -> +-6, 0/0 -> NaN -> 0x7). */
static uint8_t modelopt_v02x_block(const nv_ctx *c, float bamax, const float *x, int n,
                                   int64_t base, uint8_t *codes) {
    float ps = torch_div_scalar(c, bamax, 6.0);
    float s = f_div(c, ps, c->dec);
    if (ps == 0.0f) s = 1.0f;
    uint8_t s8 = e4m3_torch(s);
    float d = f_mul(c, e4m3_value(s8), c->dec);
    float y[32];
    for (int i = 0; i < n; i++) y[i] = f_div(c, x[i], d);
    e2m1_modelopt(codes, y, n);
    return s8;
}

/* ------------------------------------------------------------------------ */
/* torchao NVFP4Tensor                                                       */
/* ------------------------------------------------------------------------ */

/* pytorch/ao @36027d8 torchao/prototype/mx_formats/nvfp4_tensor.py
 * per_tensor_amax_to_scale: `pts = amax.to(float32) / (F8E4M3_MAX * F4_E2M1_MAX)`;
 * k1 = RN(1 / pts) (`1.0 / per_tensor_scale` = reciprocal). Single level:
 * no pts (recipes.md §2.4). */
static int torchao_global(nv_ctx *c) {
    if (c->o->single_level) {
        c->dec = c->stored = c->enc = c->k1 = 1.0f;
        return 0;
    }
    if (c->o->global_source == FP4_QGS_ENCODE)
        return refuse_source(c, "a decode-polarity scale (per_tensor_scale)");
    float pts = need_amax(c) ? torch_div_scalar(c, c->amax, 2688.0) : c->o->global_scale;
    c->dec = c->stored = pts;
    c->enc = c->k1 = f_div(c, 1.0f, pts);
    return 0;
}

/* Block scale shared by both torchao recipes (recipes.md §2.4):
 * bs = bamax / 6; two level: sbs = bs / pts; s8 = fp8(clamp(., 2^-6, 448))
 * (E4M3_EPS = finfo(float8_e4m3fn).tiny = 2^-6: no subnormal scales). */
static uint8_t torchao_scale(const nv_ctx *c, float bamax) {
    float bs = torch_div_scalar(c, bamax, 6.0);
    float sbs = c->o->single_level ? bs : f_div(c, bs, c->dec);
    return e4m3_torch(torch_clamp(sbs, 0x1p-6f, 448.0f));
}

/* Current element step (commit 5c0c814, 2026-03-13, "to match MSLK triton
 * kernel numerics"): r = RN(RN(1/pts) / fp32(s8)) (single level:
 * RN(1/fp32(s8))); y = clamp(x * r, -6, 6); code = bit-trick RNE. */
static uint8_t torchao_block(const nv_ctx *c, float bamax, const float *x, int n, int64_t base,
                             uint8_t *codes) {
    uint8_t s8 = torchao_scale(c, bamax);
    float r = f_div(c, c->k1, e4m3_value(s8));
    for (int i = 0; i < n; i++) codes[i] = e2m1_torchao(torch_clamp(f_mul(c, x[i], r), -6.0f, 6.0f));
    return s8;
}

/* 2025-09-30 (d407246) .. 2026-03-13: y = clamp(x / RN(pts * fp32(s8)), -6, 6)
 * (single level: x / fp32(s8)); inputs already .float() (recipes.md §2.4). */
static uint8_t torchao_2025_block(const nv_ctx *c, float bamax, const float *x, int n,
                                  int64_t base, uint8_t *codes) {
    uint8_t s8 = torchao_scale(c, bamax);
    float d = c->o->single_level ? e4m3_value(s8) : f_mul(c, c->dec, e4m3_value(s8));
    for (int i = 0; i < n; i++) codes[i] = e2m1_torchao(torch_clamp(f_div(c, x[i], d), -6.0f, 6.0f));
    return s8;
}

/* ------------------------------------------------------------------------ */
/* TransformerEngine NVFP4BlockScaling                                       */
/* ------------------------------------------------------------------------ */

/* NVIDIA/TransformerEngine @d0067d0 common/cast/nvfp4/core_nvfp4.cuh
 * compute_global_encode_scaling_factor_FP4 (recipes.md §2.5 steps 1-2):
 *   S_enc = 2688.0f / amax; S_enc = fminf(S_enc, FLT_MAX);
 *   amax == 0 or S_enc == 0 -> 1.0;  S_dec = float(1.0 / double(S_enc)).
 * k1 = RN(S_enc * fp4_max_inv), fp4_max_inv = 1.0f / 6.0f. */
static int te_global(nv_ctx *c) {
    if (!need_amax(c)) return refuse_source(c, "the tensor amax (computed or given)");
    float s_enc = fminf(f_div(c, 2688.0f, c->amax), FLT_MAX);
    if (c->amax == 0.0f || s_enc == 0.0f) s_enc = 1.0f;
    c->enc = c->stored = s_enc;
    c->dec = (float)(1.0 / (double)s_enc);
    c->k1 = f_mul(c, s_enc, 1.0f / 6.0f);
    return 0;
}

/* compute_decoding_scaling_factor + the cast loop (recipes.md §2.5 steps 3-5):
 *   s8 = fp8_satfinite(fminf(bamax * RN(S_enc * (1/6)), FLT_MAX));
 *   inv = fminf(1.0f / RN(fp32(s8) * S_dec), FLT_MAX);
 *   y = x * inv; code = cvt.rn.satfinite.e2m1 (or cvt.rs with the element's
 *   random bits when stochastic rounding is on). */
static uint8_t te_block(const nv_ctx *c, float bamax, const float *x, int n, int64_t base,
                        uint8_t *codes) {
    uint8_t s8 = e4m3_satfinite(fminf(f_mul(c, bamax, c->k1), FLT_MAX));
    float inv = fminf(f_div(c, 1.0f, f_mul(c, e4m3_value(s8), c->dec)), FLT_MAX);
    float y[32];
    for (int i = 0; i < n; i++) y[i] = f_mul(c, x[i], inv);
    if (c->rbits) {
        for (int i = 0; i < n; i++) codes[i] = e2m1_hw_rs(y[i], c->rbits[base + i]);
    } else {
        e2m1_hw(codes, y, n);
    }
    return s8;
}

/* ------------------------------------------------------------------------ */
/* vLLM scaled_fp4_quant and FlashInfer / TRT-LLM fp4_quantize (fast math)   */
/* ------------------------------------------------------------------------ */

/* vLLM csrc/quantization/fp4/nvfp4_utils.cuh (from TRT-LLM). SFScaleVal =
 * input_global_scale_inv = RN(1 / input_scale) (modelopt.py
 * process_weights_after_loading), input_scale = amax / 2688 as modelopt's
 * export computes it (a torch tensor / Python float); a CT checkpoint
 * feeds its input_global_scale directly (encode source). k1 = rcp(6),
 * k2 = rcp(SFScaleVal) (recipes.md §2.6). */
static int vllm_fast_global(nv_ctx *c) {
    float sf;
    if (c->o->global_source == FP4_QGS_ENCODE) {
        sf = c->o->global_scale;
        c->dec = c->stored = f_div(c, 1.0f, sf);
    } else {
        float input_scale = need_amax(c) ? torch_div_scalar(c, c->amax, 2688.0) : c->o->global_scale;
        c->dec = c->stored = input_scale;
        sf = f_div(c, 1.0f, input_scale);
    }
    c->enc = sf;
    c->k1 = fp4_mufu_rcp_sm90(6.0f);
    c->k2 = fp4_mufu_rcp_sm90(sf);
    return 0;
}

/* vllm-exact: vllm_fast_global with k1 = RN(1/6) and k2 = RN(1/SFScaleVal). */
static int vllm_exact_global(nv_ctx *c) {
    vllm_fast_global(c);
    c->k1 = f_div(c, 1.0f, 6.0f);
    c->k2 = f_div(c, 1.0f, c->enc);
    return 0;
}

/* FlashInfer @fb28d72 flashinfer/quantization/fp4_quantization.py
 * fp4_quantize: globalScale = (448 * 6) / x.abs().max() (caller's torch:
 * reciprocal * 2688); is_global_scale_inversed (decode source): the kernel
 * takes rcp(x) (fast) or __fdiv_rn(1, x) (exact) (recipes.md §2.7). */
static float flashinfer_sf(nv_ctx *c, bool fast) {
    if (c->o->global_source == FP4_QGS_ENCODE) return c->o->global_scale;
    if (c->o->global_source == FP4_QGS_DECODE)
        return fast ? fp4_mufu_rcp_sm90(c->o->global_scale) : f_div(c, 1.0f, c->o->global_scale);
    return torch_rdiv_scalar(c, 2688.0, c->amax);
}

static int flashinfer_fast_global(nv_ctx *c) {
    float sf = flashinfer_sf(c, true);
    c->enc = c->stored = sf;
    c->dec = f_div(c, 1.0f, sf);
    c->k1 = fp4_mufu_rcp_sm90(6.0f);
    c->k2 = fp4_mufu_rcp_sm90(sf);
    return 0;
}

/* Shared fast-math block scale: SF = SFScaleVal * RN(vecMax * rcp(6.0f))
 * (vecMax * rcp(6) first), s8 = __nv_fp8_e4m3(SF) (satfinite). */
static uint8_t fast_scale(const nv_ctx *c, float bamax) {
    return e4m3_satfinite(f_mul(c, c->enc, f_mul(c, bamax, c->k1)));
}

static void fast_elements(const nv_ctx *c, float out_scale, const float *x, int n, uint8_t *codes) {
    float y[32];
    for (int i = 0; i < n; i++) y[i] = f_mul(c, x[i], out_scale);
    e2m1_hw(codes, y, n);
}

/* vLLM: outScale = SF != 0 ? rcp(RN(fp32(s8) * rcp(SFScaleVal))) : 0.0f;
 * y = x * outScale; cvt.rn.satfinite.e2m1x2 (recipes.md §2.6 steps 1-5). */
static uint8_t vllm_fast_block(const nv_ctx *c, float bamax, const float *x, int n, int64_t base,
                               uint8_t *codes) {
    uint8_t s8 = fast_scale(c, bamax);
    float sf = e4m3_value(s8);
    float out_scale = sf != 0.0f ? fp4_mufu_rcp_sm90(f_mul(c, sf, c->k2)) : 0.0f;
    fast_elements(c, out_scale, x, n, codes);
    return s8;
}

/* vllm-exact block: vllm_fast_block with the outer reciprocal exact. */
static uint8_t vllm_exact_block(const nv_ctx *c, float bamax, const float *x, int n, int64_t base,
                                uint8_t *codes) {
    (void)base;
    uint8_t s8 = e4m3_satfinite(f_mul(c, c->enc, f_mul(c, bamax, c->k1)));
    float sf = e4m3_value(s8);
    float out_scale = sf != 0.0f ? f_div(c, 1.0f, f_mul(c, sf, c->k2)) : 0.0f;
    fast_elements(c, out_scale, x, n, codes);
    return s8;
}

/* FlashInfer / TRT-LLM quantization_utils.cuh cvt_warp_fp16_to_fp4, default:
 * as vLLM but guarded by vecMax != 0 (an underflowed s8 gives rcp(0) = inf:
 * x * inf -> +-6, 0 * inf = NaN -> +6) (recipes.md §2.7). */
static uint8_t flashinfer_fast_block(const nv_ctx *c, float bamax, const float *x, int n,
                                     int64_t base, uint8_t *codes) {
    uint8_t s8 = fast_scale(c, bamax);
    float sf = e4m3_value(s8);
    float out_scale = bamax != 0.0f ? fp4_mufu_rcp_sm90(f_mul(c, sf, c->k2)) : 0.0f;
    fast_elements(c, out_scale, x, n, codes);
    return s8;
}

/* Exact mode (FLASHINFER_/TRTLLM_DISABLE_FP4_QUANT_FAST_MATH, "Match TE's
 * encode scale"): k1 = RN(SFScaleVal * RN(1.0f/6.0f)), k2 = RN(1/SFScaleVal). */
static int flashinfer_exact_global(nv_ctx *c) {
    float sf = flashinfer_sf(c, false);
    c->enc = c->stored = sf;
    c->dec = f_div(c, 1.0f, sf);
    c->k1 = f_mul(c, sf, 1.0f / 6.0f);
    c->k2 = f_div(c, 1.0f, sf);
    return 0;
}

/* SF = vecMax * k1; s8 = satfinite; outScale = fminf(1 / RN(fp32(s8) * k2),
 * FLT_MAX); y = x * outScale (recipes.md §2.7). The vecMax != 0 guard, if the
 * exact path keeps it, changes no code: the block is all +-0 then. */
static uint8_t flashinfer_exact_block(const nv_ctx *c, float bamax, const float *x, int n,
                                      int64_t base, uint8_t *codes) {
    uint8_t s8 = e4m3_satfinite(f_mul(c, bamax, c->k1));
    float out_scale = fminf(f_div(c, 1.0f, f_mul(c, e4m3_value(s8), c->k2)), FLT_MAX);
    fast_elements(c, out_scale, x, n, codes);
    return s8;
}

/* ------------------------------------------------------------------------ */
/* compressed-tensors / llm-compressor                                       */
/* ------------------------------------------------------------------------ */

/* vllm-project/compressed-tensors helpers.py generate_gparam:
 * `global_scale = 448.0 * 6.0 / clamp(amax, min=finfo(float32).tiny)` then
 * `.to(float32)` (recipes.md §2.8). The observer keeps the model dtype, so for
 * a bf16/f16 model amax, the clamp bound, the reciprocal and the product are
 * rounded to that dtype; `2688.0 / t` is t.reciprocal() * 2688.0. */
static int ct_global(nv_ctx *c) {
    if (c->o->global_source == FP4_QGS_DECODE)
        return refuse_source(c, "an encode-polarity scale (global_scale = 2688/amax)");
    float gs = c->o->global_scale;
    if (need_amax(c)) {
        fp4_format obs = c->in_fmt;
        float a = round_obs(obs, c->amax);
        float tiny = round_obs(obs, 0x1p-126f); /* 0 in f16: clamp(min=0) */
        a = torch_clamp(a, tiny, INFINITY);
        float rcp = round_obs(obs, f_div(c, 1.0f, a));
        gs = round_obs(obs, f_mul(c, rcp, 2688.0f));
    }
    c->enc = c->stored = gs;
    c->dec = f_div(c, 1.0f, gs); /* vLLM: weight_global_scale = 1.0 / gs */
    return 0;
}

/* calculate_qparams (vllm-project) + lifecycle/forward.py _quantize:
 *   s = bf16(bamax / 6) (observed dtype); s = RN(gs * s); s8 = fp8(clamp(s,
 *   -448, 448)); fp8 zero -> 0.125 (0x20); scale = RN(fp32(s8) / gs);
 *   y = clamp(x / scale, -6, 6); code = cast_to_fp4 + pack (e2m1_ct). */
static uint8_t ct_block(const nv_ctx *c, float bamax, const float *x, int n, int64_t base,
                        uint8_t *codes) {
    float s = round_obs(c->in_fmt, torch_div_scalar(c, bamax, 6.0));
    s = f_mul(c, c->enc, s);
    uint8_t s8 = e4m3_torch(torch_clamp(s, -448.0f, 448.0f));
    if (e4m3_value(s8) == 0.0f) s8 = 0x20;
    float scale = f_div(c, e4m3_value(s8), c->enc);
    float y[32];
    for (int i = 0; i < n; i++) y[i] = torch_clamp(f_div(c, x[i], scale), -6.0f, 6.0f);
    e2m1_ct(codes, y, n);
    return s8;
}

/* ------------------------------------------------------------------------ */
/* Driver                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct nv_recipe_fns {
    fp4_qrecipe_id id;
    nv_global_fn global;
    nv_block_fn block;
    bool kernel_max; /* block amax with fmaxf / __hmax2 (NaN ignored), else torch */
} nv_recipe_fns;

static const nv_recipe_fns k_fns[] = {
    {FP4_QR_MODELOPT_V02X, modelopt_v02x_global, modelopt_v02x_block, false},
    {FP4_QR_MODELOPT, modelopt_global, modelopt_block, false},
    {FP4_QR_TORCHAO, torchao_global, torchao_block, false},
    {FP4_QR_TORCHAO_2025, torchao_global, torchao_2025_block, false},
    {FP4_QR_TE, te_global, te_block, true},
    {FP4_QR_VLLM_FAST, vllm_fast_global, vllm_fast_block, true},
    {FP4_QR_VLLM_EXACT, vllm_exact_global, vllm_exact_block, true},
    {FP4_QR_FLASHINFER_FAST, flashinfer_fast_global, flashinfer_fast_block, true},
    {FP4_QR_FLASHINFER_EXACT, flashinfer_exact_global, flashinfer_exact_block, true},
    {FP4_QR_COMPRESSED_TENSORS, ct_global, ct_block, false},
};

static const nv_recipe_fns *fns_for(fp4_qrecipe_id id) {
    for (size_t i = 0; i < sizeof k_fns / sizeof k_fns[0]; i++)
        if (k_fns[i].id == id) return &k_fns[i];
    return NULL;
}

/* max |x| with PyTorch semantics (NaN propagates) or CUDA fmaxf (ignored). */
static float abs_max(const float *x, int64_t n, int64_t stride, int64_t count, bool kernel) {
    float m = 0.0f;
    for (int64_t k = 0; k < count; k++) {
        const float *p = x + k * stride;
        for (int64_t i = 0; i < n; i++) {
            float a = fabsf(p[i]);
            if (kernel) m = fmaxf(m, a);
            else if (!isnan(m) && (isnan(a) || a > m)) m = a;
        }
    }
    return m;
}

float fp4q_tensor_amax(const float *x, int64_t n, bool kernel) { return abs_max(x, n, 0, 1, kernel); }

/* Stochastic-rounding bits: the caller's, or Philox4x32-10 keyed by the
 * seed with counter (element index, 'SR'): one word per element (not TE's
 * curanddx stream, which is out of reach of any CPU oracle). */
static int sr_bits(const fp4_qopts *o, int64_t n, uint32_t **owned, const uint32_t **bits) {
    *owned = NULL;
    *bits = o->sr_bits;
    if (o->sr_bits) return 0;
    uint32_t *b = malloc((size_t)n * sizeof *b);
    if (!b) return fp4_fail_kind(FP4_ERR_NOMEM, "fp4_quantize: out of memory");
    for (int64_t i = 0; i < n; i++) b[i] = fp4_rand32(o->sr_seed, FP4_RNG_QUANT_SR, FP4_RNG_SUB_PLAIN, (uint64_t)i);
    *owned = b;
    *bits = b;
    return 0;
}

/* 1D: one scale per 16 consecutive elements of a row. */
static void run_1d(const nv_ctx *c, const nv_recipe_fns *f, const float *x, int64_t rows,
                   int64_t cols, uint8_t *codes, uint8_t *scales) {
    int64_t nb = cols / 16;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t b = 0; b < nb; b++) {
            int64_t base = r * cols + b * 16;
            float bamax = abs_max(x + base, 16, 0, 1, f->kernel_max);
            scales[r * nb + b] = f->block(c, bamax, x + base, 16, base, codes + base);
        }
    }
}

/* TE 2D (weights): the amax of each 16x16 tile, repeated for its 16 rows
 * (reference _quantize_blockwise_reference: block_amax.repeat_interleave(16));
 * a last partial tile uses the rows present (TE pads with zeros). */
static void run_2d(const nv_ctx *c, const nv_recipe_fns *f, const float *x, int64_t rows,
                   int64_t cols, uint8_t *codes, uint8_t *scales) {
    int64_t nb = cols / 16;
    for (int64_t r0 = 0; r0 < rows; r0 += 16) {
        int64_t th = rows - r0 < 16 ? rows - r0 : 16;
        for (int64_t b = 0; b < nb; b++) {
            float tamax = abs_max(x + r0 * cols + b * 16, 16, cols, th, true);
            for (int64_t r = r0; r < r0 + th; r++) {
                int64_t base = r * cols + b * 16;
                scales[r * nb + b] = f->block(c, tamax, x + base, 16, base, codes + base);
            }
        }
    }
}

int fp4q_nvfp4_run(const fp4_qrecipe *r, fp4_format in_fmt, const float *x, int64_t rows,
                   int64_t cols, const fp4_qopts *o, bool has_nan, fp4_qtensor *q, uint8_t *codes,
                   uint8_t *scales) {
    const nv_recipe_fns *f = fns_for(r->id);
    if (!f) return fp4_fail("fp4_quantize: %s is not an NVFP4 recipe", r->name);
    nv_ctx c = {0};
    c.r = r;
    c.o = o;
    c.in_fmt = in_fmt;
    c.x86 = r->torch && o->torch_device == FP4_TORCH_CPU;
    /* Also vLLM's input_scale = amax / 2688, which modelopt's export computes
     * in torch before the kernel ever runs. */
    c.torch_cuda = o->torch_device == FP4_TORCH_CUDA;
    if (has_nan && c.x86)
        return fp4_fail("fp4_quantize: %s on CPU: NaN inputs give x86 operand-order-dependent "
                        "NaN bits; refused (use torch_device CUDA)", r->name);
    if (has_nan && f->kernel_max && o->global_source == FP4_QGS_COMPUTE)
        return fp4_fail("fp4_quantize: %s: the tensor amax of an input with NaN depends on the "
                        "caller's reduction; give the amax or the global scale", r->name);
    c.amax = NAN;
    if (o->global_source == FP4_QGS_COMPUTE) c.amax = fp4q_tensor_amax(x, rows * cols, f->kernel_max);
    if (o->global_source == FP4_QGS_AMAX) c.amax = o->amax;
    if (f->global(&c) != 0) return -1;

    uint32_t *owned = NULL;
    if (o->stochastic && sr_bits(o, rows * cols, &owned, &c.rbits) != 0) return -1;
    if (o->two_d) run_2d(&c, f, x, rows, cols, codes, scales);
    else run_1d(&c, f, x, rows, cols, codes, scales);
    free(owned);

    q->amax = c.amax;
    q->global_encode = c.enc;
    q->global_decode = c.dec;
    q->global_stored = c.stored;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* TE random Hadamard transform                                              */
/* ------------------------------------------------------------------------ */

/* TE pytorch/tensor/nvfp4_tensor.py get_wgrad_sign_vector (recipes.md §2.5). */
static const int8_t k_te_signs[16] = {1, 1, 1, -1, 1, -1, -1, -1, -1, -1, -1, 1, -1, 1, -1, -1};

/* Sylvester Hadamard entry H16[i][j] = (-1)^popcount(i & j). */
static int hadamard_sign(int i, int j) { return (__builtin_popcount((unsigned)(i & j)) & 1) ? -1 : 1; }

/* 384-bit two's-complement accumulator for the exact sum of 16 terms x/4:
 * units of 2^-151 (FP32's smallest subnormal / 4; BF16 needs 2^-135), top
 * bit below 2^128 * 16, so nothing is ever lost. */
#define ACC_LIMBS 6
#define ACC_EMIN (-151)

static void acc_add(uint64_t *acc, uint64_t sig, int32_t exp, int neg) {
    uint64_t t[ACC_LIMBS] = {0};
    int64_t sh = (int64_t)exp - ACC_EMIN; /* >= 0 */
    int64_t w = sh / 64, b = sh % 64;
    t[w] = sig << b;
    if (b && w + 1 < ACC_LIMBS) t[w + 1] = sig >> (64 - b);
    if (neg) { /* two's complement negate */
        unsigned carry = 1;
        for (int i = 0; i < ACC_LIMBS; i++) {
            uint64_t v = ~t[i] + carry;
            carry = carry && v == 0;
            t[i] = v;
        }
    }
    unsigned carry = 0;
    for (int i = 0; i < ACC_LIMBS; i++) {
        uint64_t s = acc[i] + t[i];
        unsigned c1 = s < acc[i];
        uint64_t s2 = s + carry;
        unsigned c2 = s2 < s;
        acc[i] = s2;
        carry = c1 | c2;
    }
}

/* One output of the transform, rounded once to BF16 (RNE, IEEE overflow):
 * bf16(sum_i x_i * sign_i * H[i][j] / 4). TE's matrix diag(s)*H/4 is exact
 * in BF16 and its MMA accumulates in FP32; the fused kernel rounds the
 * accumulator to BF16 ("Downcast to BF16 for bit-wise compatibility"). We
 * round the exact sum once, which equals FP32 accumulation whenever the
 * exact sum fits FP32's 24 bits (uncertain otherwise: MMA order unknown). */
static float rht_output(const float *x, const int8_t *signs, int j) {
    uint64_t acc[ACC_LIMBS] = {0};
    int pinf = 0, ninf = 0, nan = 0;
    for (int i = 0; i < 16; i++) {
        int neg = (signs[i] * hadamard_sign(i, j)) < 0;
        fp4_value v = fp4_value_from_f32(x[i]);
        if (v.cls == FP4_CLASS_NAN) nan = 1;
        if (v.cls == FP4_CLASS_INF) {
            if (v.sign ^ neg) ninf = 1;
            else pinf = 1;
        }
        if (v.cls == FP4_CLASS_FINITE) acc_add(acc, v.sig, v.exp - 2, v.sign ^ neg);
    }
    if (nan || (pinf && ninf)) return fp4_f32_from_bits(0x7FC00000u);
    if (pinf || ninf) return pinf ? INFINITY : -INFINITY;
    int sign = (int)(acc[ACC_LIMBS - 1] >> 63);
    if (sign) { /* magnitude of a negative sum */
        unsigned carry = 1;
        for (int i = 0; i < ACC_LIMBS; i++) {
            uint64_t v = ~acc[i] + carry;
            carry = carry && v == 0;
            acc[i] = v;
        }
    }
    fp4_cvt_opts o = fp4_cvt_opts_default();
    o.policy = FP4_POLICY_NOSAT;
    uint64_t code = 0;
    fp4_encode_bigint(FP4_FMT_BF16, sign, acc, ACC_LIMBS, ACC_EMIN, &o, &code, NULL);
    return bf16_to_f32((uint16_t)code);
}

void fp4q_te_rht(float *x, int64_t rows, int64_t cols, const int8_t *signs) {
    if (!signs) signs = k_te_signs;
    float in[16];
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t b = 0; b < cols / 16; b++) {
            float *p = x + r * cols + b * 16;
            memcpy(in, p, sizeof in);
            for (int j = 0; j < 16; j++) p[j] = rht_output(in, signs, j);
        }
    }
}
