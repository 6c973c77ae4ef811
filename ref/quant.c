/* quant.c - the quantizer registry, the quantize entry point (argument
 * checks, input decoding, output buffers, layouts) and exact dequantization.
 * The recipes themselves are in quant_nvfp4.c and quant_mx.c; the scale
 * layouts in quant_layout.c; the MUFU reciprocal in mufu.c. */
#define FP4QUANT_INTERNAL 1
#include "fp4quant.h"

#include <ctype.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Registry                                                                  */
/* ------------------------------------------------------------------------ */

#define NV(id, name, aliases, desc, src, pol, zero, torch, te)                                  \
    {id, name, aliases, desc, src, 16, 1, FP4_FMT_E2M1, FP4_FMT_UE4M3, pol, zero, torch, true, te}
#define MX(id, name, aliases, desc, elem)                                                       \
    {id,    name, aliases, desc,                                                               \
     "OCP Microscaling Formats (MX) v1.0 §6.3; microsoft/microxcaling mx/mx_ops.py "          \
     "_shared_exponents, _quantize_mx",                                                       \
     32,    1, elem, FP4_FMT_UE8M0, FP4_QGLOBAL_NONE, 0x00, false, false, false}

static const fp4_qrecipe k_recipes[FP4_QR_COUNT] = {
    NV(FP4_QR_MODELOPT_V02X, "modelopt-v0.2x", "modelopt-v0.23,modelopt-old,modelopt-r1",
       "wsf2=amax/6/448; s=(bamax/6)/wsf2, ps==0->1; s8=fp8(s) unclamped (torch); "
       "y=x/(s8*wsf2); _cast_fp4",
       "NVIDIA/Model-Optimizer@4c611e4 modelopt/torch/quantization/qtensor/nvfp4_tensor.py "
       "NVFP4QTensor.get_weights_scaling_factor{,_2}/quantize/_cast_fp4; "
       "examples/deepseek/quantize_to_nvfp4.py@2017cd906 (v0.25)",
       FP4_QGLOBAL_DECODE, 0x38, true, false),
    NV(FP4_QR_MODELOPT, "modelopt", "modelopt-2026",
       "wsf2=amax/2688; s=bamax/(6*wsf2), 0->1; s8=fp8(clamp(s,2^-9,448)); y=x/(s8*wsf2); "
       "_cast_fp4",
       "NVIDIA/Model-Optimizer@a2fbac7 modelopt/torch/quantization/qtensor/nvfp4_tensor.py "
       "NVFP4QTensor.get_weights_scaling_factor{,_2}/quantize/_cast_fp4 (clamp: 097293b, PR "
       "#1397)",
       FP4_QGLOBAL_DECODE, 0x38, true, false),
    NV(FP4_QR_TORCHAO, "torchao", "torchao-2026",
       "pts=amax/2688; s8=fp8(clamp((bamax/6)/pts,2^-6,448)); y=clamp(x*((1/pts)/s8),+-6); "
       "bit-trick RNE",
       "pytorch/ao@36027d8 torchao/prototype/mx_formats/nvfp4_tensor.py nvfp4_quantize, "
       "per_tensor_amax_to_scale (element step 5c0c814); custom_fp_utils.py "
       "_f32_to_floatx_unpacked",
       FP4_QGLOBAL_DECODE, 0x08, true, false),
    NV(FP4_QR_TORCHAO_2025, "torchao-2025", "",
       "as torchao but y=clamp(x/(pts*s8),+-6) (2025-09-30..2026-03-13)",
       "pytorch/ao@d407246 torchao/prototype/mx_formats/nvfp4_tensor.py nvfp4_quantize "
       "(until 5c0c814^)",
       FP4_QGLOBAL_DECODE, 0x08, true, false),
    NV(FP4_QR_TE, "te", "transformer-engine,transformerengine",
       "S_enc=min(2688/amax,FLT_MAX) (0->1); s8=fp8sat(bamax*(S_enc*(1/6))); "
       "y=x*min(1/(s8*S_dec),FLT_MAX); cvt.rn (or .rs); 2D 16x16; RHT",
       "NVIDIA/TransformerEngine@d0067d0 transformer_engine/common/cast/nvfp4/core_nvfp4.cuh "
       "compute_global_encode_scaling_factor_FP4/compute_decoding_scaling_factor, "
       "quantize_transpose_nvfp4.cuh; pytorch/tensor/nvfp4_tensor.py get_rht_matrix",
       FP4_QGLOBAL_ENCODE, 0x00, false, true),
    NV(FP4_QR_VLLM_FAST, "vllm-fast", "vllm",
       "SF=1/input_scale; s8=fp8sat(SF*(bamax*rcp(6))); out=SF!=0?rcp(s8*rcp(SF)):0; "
       "y=x*out; cvt.rn (MUFU rcp, sm_90 table)",
       "vllm-project/vllm (main 2026) csrc/quantization/fp4/nvfp4_utils.cuh "
       "cvt_warp_fp16_to_fp4; vllm/model_executor/layers/quantization/modelopt.py "
       "ModelOptNvFp4LinearMethod.process_weights_after_loading",
       FP4_QGLOBAL_DECODE, 0x00, false, false),
    NV(FP4_QR_FLASHINFER_FAST, "flashinfer-fast", "flashinfer,trtllm-fast,trtllm",
       "gs=2688/amax; s8=fp8sat(gs*(bamax*rcp(6))); out=bamax!=0?rcp(s8*rcp(gs)):0; y=x*out; "
       "cvt.rn (MUFU rcp, sm_90 table)",
       "flashinfer-ai/flashinfer@fb28d72 csrc/nv_internal/tensorrt_llm/kernels/"
       "quantization_utils.cuh cvt_warp_fp16_to_fp4; flashinfer/quantization/"
       "fp4_quantization.py fp4_quantize",
       FP4_QGLOBAL_ENCODE, 0x00, false, false),
    NV(FP4_QR_FLASHINFER_EXACT, "flashinfer-exact", "trtllm-exact",
       "gs=2688/amax; s8=fp8sat(bamax*(gs*(1/6))); out=min(1/(s8*(1/gs)),FLT_MAX); y=x*out; "
       "cvt.rn (= TE arithmetic)",
       "flashinfer-ai/flashinfer@fb28d72 csrc/nv_internal/tensorrt_llm/kernels/"
       "quantization_utils.cuh cvt_warp_fp16_to_fp4 under DISABLE_FP4_QUANT_FAST_MATH "
       "(envUtils.cpp:366)",
       FP4_QGLOBAL_ENCODE, 0x00, false, false),
    NV(FP4_QR_COMPRESSED_TENSORS, "compressed-tensors", "ct,llm-compressor",
       "gs=dt(dt(1/amax)*2688) (dt = model dtype); s=gs*dt(bamax/6); s8=fp8(clamp(s,+-448)), "
       "0->0.125; y=clamp(x/(s8/gs),+-6); cast_to_fp4+pack",
       "vllm-project/compressed-tensors quantization/utils/helpers.py generate_gparam, "
       "calculate_qparams; quantization/lifecycle/forward.py _quantize; compressors/"
       "quantized_compressors/fp4_quantized.py pack_fp4_to_uint8 (neuralmagic@52792be, "
       "llm-compressor@ab1ba3e)",
       FP4_QGLOBAL_ENCODE, 0x20, true, false),
    MX(FP4_QR_MXFP4, "mxfp4", "mxfp4-rne,mx-ocp",
       "e=floor(log2(bamax))-2 (>= -127); E8M0=e+127; E2M1 RNE of x/2^e, saturating",
       FP4_FMT_E2M1),
    MX(FP4_QR_MXFP4_RNA, "mxfp4-rna", "mxfp4-microxcaling",
       "as mxfp4 with ties away from zero (microxcaling round='nearest')", FP4_FMT_E2M1),
    MX(FP4_QR_MXFP8_E4M3, "mxfp8-e4m3", "mxfp8,mxfp8-rne",
       "e=floor(log2(bamax))-8 (>= -127); E4M3 RNE of x/2^e, saturating to 448",
       FP4_FMT_E4M3),
    MX(FP4_QR_MXFP8_E4M3_RNA, "mxfp8-e4m3-rna", "mxfp8-rna,mxfp8-microxcaling",
       "as mxfp8-e4m3 with ties away from zero", FP4_FMT_E4M3),
    MX(FP4_QR_MXFP8_E5M2, "mxfp8-e5m2", "",
       "e=floor(log2(bamax))-15 (>= -127); E5M2 RNE of x/2^e, saturating to 57344",
       FP4_FMT_E5M2),
    MX(FP4_QR_MXFP8_E5M2_RNA, "mxfp8-e5m2-rna", "",
       "as mxfp8-e5m2 with ties away from zero", FP4_FMT_E5M2),
    NV(FP4_QR_VLLM_EXACT, "vllm-exact", "",
       "vllm-fast's order with every rcp.approx replaced by an IEEE RN reciprocal: "
       "s8=fp8sat(SF*(bamax*RN(1/6))); out=SF!=0?RN(1/RN(s8*RN(1/SF))):0; y=x*out; cvt.rn",
       "vllm-project/vllm (main 2026) csrc/quantization/fp4/nvfp4_utils.cuh "
       "cvt_warp_fp16_to_fp4 (the kernel's formula, recipes.md §2.6) with exact "
       "reciprocals: what the kernel computes when built without fast math",
       FP4_QGLOBAL_DECODE, 0x00, false, false),
    /* DeepSeek-V3/R1 FP8 (recipes.md §2.13, deepseek.md §2.3, §3). DeepSeek
     * publishes no weight quantizer: the weight rule is act_quant's applied to
     * 128x128 tiles, s = 1 for an all-zero tile (the checkpoint's scale_inv
     * semantics w = e4m3 * s). */
    {FP4_QR_DEEPSEEK_FP8_WEIGHT, "deepseek-fp8-weight", "deepseek-fp8,fp8-block",
     "per 128x128 tile s=amax/448 (1 if amax=0) in FP32; code=e4m3(x/s) RNE satfinite; scale "
     "stored as weight_scale_inv",
     "deepseek-ai/DeepSeek-V3 inference/kernel.py act_quant (rule), inference/fp8_cast_bf16.py "
     "and the R1 checkpoint's weight_scale_inv layout (deepseek.md §3)",
     128, 128, FP4_FMT_E4M3, FP4_FMT_F32, FP4_QGLOBAL_NONE, 0x00, false, false, false},
    {FP4_QR_DEEPSEEK_FP8_ACT, "deepseek-fp8-act", "fp8-block-act",
     "per row and 128 channels s=max(amax,1e-4)/448 in FP32; code=e4m3(x/s) RNE satfinite",
     "deepseek-ai/DeepSeek-V3 inference/kernel.py act_quant_kernel (amax floor 1e-4)",
     128, 1, FP4_FMT_E4M3, FP4_FMT_F32, FP4_QGLOBAL_NONE, 0x00, false, false, false},
};

const fp4_qrecipe *fp4_qrecipe_get(fp4_qrecipe_id id) {
    if ((int)id < 0 || id >= FP4_QR_COUNT) return NULL;
    return &k_recipes[id];
}

static bool name_eq(const char *a, const char *b, size_t nb) {
    size_t i = 0;
    for (; i < nb && a[i]; i++)
        if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[i])) return false;
    return i == nb && a[i] == '\0';
}

/* Whether `name` is one of the comma-separated entries of `list`. */
static bool in_list(const char *name, const char *list) {
    while (*list) {
        const char *end = strchr(list, ',');
        size_t n = end ? (size_t)(end - list) : strlen(list);
        if (n && name_eq(name, list, n)) return true;
        if (!end) break;
        list = end + 1;
    }
    return false;
}

int fp4_qrecipe_from_name(const char *name, const fp4_qrecipe **out) {
    if (!name || !out) return fp4_fail("fp4_qrecipe_from_name: null argument");
    for (int i = 0; i < FP4_QR_COUNT; i++) {
        const fp4_qrecipe *r = &k_recipes[i];
        if (name_eq(name, r->name, strlen(r->name)) || in_list(name, r->aliases)) {
            *out = r;
            return 0;
        }
    }
    return fp4_fail("unknown quantization recipe '%s' (known: %s)", name, fp4_qrecipe_names());
}

/* From the table, in its order (the one list of recipe names). */
const char *fp4_qrecipe_names(void) {
    static char buf[512];
    if (!buf[0])
        for (int i = 0; i < FP4_QR_COUNT; i++)
            snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", i ? ", " : "",
                     k_recipes[i].name);
    return buf;
}

fp4_qopts fp4_qopts_default(void) {
    fp4_qopts o;
    memset(&o, 0, sizeof o);
    o.layout = FP4_SCALE_LINEAR;
    o.global_source = FP4_QGS_COMPUTE;
    o.torch_device = FP4_TORCH_CUDA;
    return o;
}

/* ------------------------------------------------------------------------ */
/* Argument checks                                                           */
/* ------------------------------------------------------------------------ */

static bool is_torchao(const fp4_qrecipe *r) {
    return r->id == FP4_QR_TORCHAO || r->id == FP4_QR_TORCHAO_2025;
}

static int check_opts(const fp4_qrecipe *r, fp4_format in_fmt, const fp4_qopts *o) {
    if ((unsigned)o->layout > FP4_SCALE_SWIZZLED) return fp4_fail("fp4_quantize: bad layout %d", o->layout);
    if ((unsigned)o->global_source > FP4_QGS_ENCODE)
        return fp4_fail("fp4_quantize: bad global_source %d", o->global_source);
    if ((unsigned)o->torch_device > FP4_TORCH_CPU)
        return fp4_fail("fp4_quantize: bad torch_device %d", o->torch_device);
    if ((o->two_d || o->stochastic || o->rht) && !r->te_features)
        return fp4_fail("fp4_quantize: two_d / stochastic / rht are TransformerEngine options; "
                        "recipe %s has none", r->name);
    if (o->rht && in_fmt != FP4_FMT_BF16)
        return fp4_fail("fp4_quantize: te rht takes BF16 input (TE's fused RHT kernel)");
    if (o->rht_signs)
        for (int i = 0; i < 16; i++)
            if (o->rht_signs[i] != 1 && o->rht_signs[i] != -1)
                return fp4_fail("fp4_quantize: rht_signs[%d] = %d, must be +1 or -1", i,
                                o->rht_signs[i]);
    if (o->single_level && !is_torchao(r))
        return fp4_fail("fp4_quantize: single_level is a torchao option (recipe %s)", r->name);
    if (r->scale == FP4_FMT_F32 && o->layout != FP4_SCALE_LINEAR)
        return fp4_fail("fp4_quantize: %s has FP32 block scales: linear layout only", r->name);
    if (r->global == FP4_QGLOBAL_NONE && o->global_source != FP4_QGS_COMPUTE)
        return fp4_fail("fp4_quantize: %s has no tensor scale; leave global_source COMPUTE", r->name);
    return 0;
}

static int check_args(const fp4_qrecipe *r, fp4_format in_fmt, const void *x, int64_t rows,
                      int64_t cols, const fp4_qtensor *out) {
    if (!r) return fp4_fail("fp4_quantize: null recipe");
    if (!x || !out) return fp4_fail("fp4_quantize: null input or output");
    if (in_fmt != FP4_FMT_F32 && in_fmt != FP4_FMT_BF16 && in_fmt != FP4_FMT_F16)
        return fp4_fail("fp4_quantize: input must be f32, bf16 or f16");
    if (rows <= 0 || cols <= 0)
        return fp4_fail("fp4_quantize: bad shape [%lld, %lld]", (long long)rows, (long long)cols);
    if (cols % r->block != 0 && r->scale != FP4_FMT_F32)
        return fp4_fail("fp4_quantize: cols (%lld) must be a multiple of %d for %s",
                        (long long)cols, r->block, r->name);
    if (rows > ((int64_t)1 << 40) / cols)
        return fp4_fail("fp4_quantize: tensor too large [%lld, %lld]", (long long)rows,
                        (long long)cols);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Quantize                                                                  */
/* ------------------------------------------------------------------------ */

static float *load_input(fp4_format in_fmt, const void *x, int64_t n, bool *has_nan) {
    float *f = malloc((size_t)n * sizeof *f);
    if (!f) return NULL;
    if (in_fmt == FP4_FMT_F32) {
        memcpy(f, x, (size_t)n * sizeof *f);
    } else if (in_fmt == FP4_FMT_BF16) { /* BF16 is the top half of FP32: exact */
        const uint16_t *h = x;
        for (int64_t i = 0; i < n; i++) {
            uint32_t b = (uint32_t)h[i] << 16;
            memcpy(&f[i], &b, sizeof b);
        }
    } else {
        fp4_codes_to_f32(in_fmt, f, x, n);
    }
    *has_nan = false;
    for (int64_t i = 0; i < n; i++) *has_nan |= isnan(f[i]) != 0;
    return f;
}

/* Packs per-element E2M1 codes (cols is even: a multiple of 16). */
static void pack_codes(uint8_t *dst, const uint8_t *codes, int64_t n) { e2m1_pack(dst, codes, n); }

static int finish_layout(fp4_qtensor *q, const fp4_qopts *o, uint8_t *lin) {
    q->t.layout = o->layout;
    if (o->layout == FP4_SCALE_LINEAR) {
        q->scales = lin;
        q->scales_bytes = (size_t)(fp4_tensor_scales_count(&q->t) * fp4_tensor_scale_bytes(&q->t));
        return 0;
    }
    q->scales_bytes = fp4_swizzled_bytes(q->t.rows, fp4_tensor_scale_cols(&q->t));
    q->scales = malloc(q->scales_bytes);
    if (!q->scales) return fp4_fail("fp4_quantize: out of memory");
    fp4_scales_to_swizzled(q->scales, lin, q->t.rows, fp4_tensor_scale_cols(&q->t));
    free(lin);
    return 0;
}

static int run_recipe(const fp4_qrecipe *r, fp4_format in_fmt, float *xf, bool has_nan,
                      const fp4_qopts *o, fp4_qtensor *q, uint8_t *codes, uint8_t *lin) {
    if (r->global == FP4_QGLOBAL_NONE) {
        q->amax = fp4q_tensor_amax(xf, q->t.rows * q->t.cols, true);
        q->global_encode = q->global_decode = q->global_stored = 1.0f;
        if (r->scale == FP4_FMT_F32)
            return fp4q_fp8_block_run(r, xf, q->t.rows, q->t.cols, codes, (float *)(void *)lin);
        return fp4q_mx_run(r, xf, q->t.rows, q->t.cols, codes, lin);
    }
    if (o->rht) {
        fp4q_te_rht(xf, q->t.rows, q->t.cols, o->rht_signs);
        for (int64_t i = 0; i < q->t.rows * q->t.cols; i++) has_nan |= isnan(xf[i]) != 0;
    }
    return fp4q_nvfp4_run(r, in_fmt, xf, q->t.rows, q->t.cols, o, has_nan, q, codes, lin);
}

int fp4_quantize(const fp4_qrecipe *r, fp4_format in_fmt, const void *x, int64_t rows,
                 int64_t cols, const fp4_qopts *opts, fp4_qtensor *out) {
    if (check_args(r, in_fmt, x, rows, cols, out) != 0) return -1;
    fp4_qopts dflt = fp4_qopts_default();
    const fp4_qopts *o = opts ? opts : &dflt;
    if (check_opts(r, in_fmt, o) != 0) return -1;

    memset(out, 0, sizeof *out);
    fp4_qtensor q;
    memset(&q, 0, sizeof q);
    q.recipe = r;
    q.t = fp4_tensor_plain(r->elem, rows, cols, NULL);
    q.t.packed = r->elem == FP4_FMT_E2M1;
    q.t.block = r->block;
    q.t.block_rows = r->block_rows;
    q.t.scale_fmt = r->scale;
    int64_t n = rows * cols;

    bool has_nan = false;
    float *xf = load_input(in_fmt, x, n, &has_nan);
    uint8_t *codes = malloc((size_t)n);
    uint8_t *lin = malloc((size_t)(fp4_tensor_scales_count(&q.t) * fp4_tensor_scale_bytes(&q.t)));
    if (!xf || !codes || !lin) {
        free(xf), free(codes), free(lin);
        return fp4_fail("fp4_quantize: out of memory");
    }
    int rc = run_recipe(r, in_fmt, xf, has_nan, o, &q, codes, lin);
    free(xf);
    if (rc != 0) {
        free(codes), free(lin);
        return -1;
    }
    if (r->elem == FP4_FMT_E2M1) {
        q.codes_bytes = (size_t)(n / 2);
        q.codes = malloc(q.codes_bytes);
        if (q.codes) pack_codes(q.codes, codes, n);
        free(codes);
    } else {
        q.codes_bytes = (size_t)n;
        q.codes = codes;
    }
    if (!q.codes) {
        free(lin);
        return fp4_fail("fp4_quantize: out of memory");
    }
    if (finish_layout(&q, o, lin) != 0) {
        free(q.codes), free(lin);
        return -1;
    }
    q.t.codes = q.codes;
    q.t.scales = q.scales;
    q.t.global_scale = r->global == FP4_QGLOBAL_NONE ? 1.0f : q.global_decode;
    *out = q;
    return 0;
}

int fp4_quantize_by_name(const char *recipe, fp4_format in_fmt, const void *x, int64_t rows,
                         int64_t cols, const fp4_qopts *opts, fp4_qtensor *out) {
    const fp4_qrecipe *r = NULL;
    if (fp4_qrecipe_from_name(recipe, &r) != 0) return -1;
    return fp4_quantize(r, in_fmt, x, rows, cols, opts, out);
}

void fp4_qtensor_free(fp4_qtensor *q) {
    if (!q) return;
    free(q->codes);
    free(q->scales);
    q->codes = q->scales = NULL;
}

/* ------------------------------------------------------------------------ */
/* Reading back, exact values                                                */
/* ------------------------------------------------------------------------ */

/* The result is an fp4_tensor: its accessors (tensor.c) read it. */
uint8_t fp4_qtensor_code(const fp4_qtensor *q, int64_t r, int64_t c) {
    return (uint8_t)fp4_tensor_code(&q->t, r, c);
}

uint8_t fp4_qtensor_scale(const fp4_qtensor *q, int64_t r, int64_t c) {
    return (uint8_t)fp4_tensor_scale_code(&q->t, r, c);
}

fp4_value fp4_qtensor_block_value(const fp4_qtensor *q, int64_t r, int64_t c) {
    return fp4_tensor_block_value(&q->t, r, c);
}

fp4_value fp4_qtensor_value(const fp4_qtensor *q, int64_t r, int64_t c) {
    return fp4_tensor_value(&q->t, r, c);
}

int fp4_qtensor_dequantize(const fp4_qtensor *q, double *dst) {
    if (!q || !dst || !q->codes || !q->scales) return fp4_fail("fp4_qtensor_dequantize: null argument");
    for (int64_t r = 0; r < q->t.rows; r++)
        for (int64_t c = 0; c < q->t.cols; c++) {
            fp4_value v = fp4_qtensor_value(q, r, c);
            dst[r * q->t.cols + c] = fp4_value_to_f64(&v);
        }
    return 0;
}
