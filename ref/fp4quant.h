/* fp4quant.h - NVFP4 and MX quantizers, bit-exact per producer.
 *
 * No two real NVFP4 quantizers produce the same bits: they differ in FP32
 * order of operations, division vs multiplication by a reciprocal, the
 * polarity of the FP32 tensor scale (amax/2688 "decode" vs 2688/amax
 * "encode"), clamps, the all-zero block and the E2M1 caster's -0/NaN rules.
 * fp4sim reproduces each one as a named recipe (docs/recipes.md, the recipe
 * registry below, and one short function per recipe in ref/quant_nvfp4.c and
 * ref/quant_mx.c with its source cited). Formulas: the project's reference
 * notes, recipes.md §2-§5.
 *
 * Part of ref/: include fp4ref.h (which includes this header).
 *
 * Conventions:
 *  - Input: a row-major [rows, cols] tensor of FP32, BF16 or FP16 codes
 *    (float / uint16_t arrays). Blocks run along cols (16 for NVFP4, 32 for
 *    MX, 128 for DeepSeek FP8); cols must be a multiple of the block size,
 *    except for DeepSeek's FP32-scaled blocks, whose last block may be
 *    partial (the checkpoint's edge tiles, deepseek.md §3).
 *  - Output: packed E2M1 codes (element 2j in the low nibble of byte j) or
 *    one E4M3/E5M2 byte per element (MXFP8); one UE4M3 / UE8M0 scale byte per
 *    block in the linear [rows, cols/block] layout or the 128x4 swizzled
 *    layout of cuBLASLt/CUTLASS; the FP32 tensor scale in both polarities.
 *  - Every FP32 operation of a recipe is done in C float (FLT_EVAL_METHOD 0,
 *    no contraction) in the producer's order; the MUFU reciprocal comes from
 *    the measured sm_90 table; BF16/FP16 intermediates are rounded with
 *    fp4sim's own conversions.
 *  - Errors (bad shape, unknown recipe, NaN input where a recipe's result is
 *    not defined, ...) set fp4_last_error() and return -1.
 */
/* The component's one header first: it includes this one, in dependency order. */
#include "fp4ref.h"
#ifndef FP4QUANT_H
#define FP4QUANT_H


#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------
 * Recipes
 * ------------------------------------------------------------------------- */

typedef enum fp4_qrecipe_id {
    FP4_QR_MODELOPT_V02X = 0, /* modelopt <= 0.33 (DeepSeek-R1 NVFP4 era): two divisions */
    FP4_QR_MODELOPT,          /* modelopt 2026: amax/2688, clamp [2^-9, 448] */
    FP4_QR_TORCHAO,           /* torchao NVFP4Tensor 2026-03+: x * ((1/pts)/s8) */
    FP4_QR_TORCHAO_2025,      /* torchao 2025-09-30..2026-03-13: x / (pts*s8) */
    FP4_QR_TE,                /* TransformerEngine NVFP4BlockScaling kernels (1D/2D/SR/RHT) */
    FP4_QR_VLLM_FAST,         /* vLLM scaled_fp4_quant: MUFU rcp, guard SF != 0 */
    FP4_QR_FLASHINFER_FAST,   /* FlashInfer / TRT-LLM default: MUFU rcp, guard vecMax != 0 */
    FP4_QR_FLASHINFER_EXACT,  /* FlashInfer / TRT-LLM DISABLE_FP4_QUANT_FAST_MATH */
    FP4_QR_COMPRESSED_TENSORS,/* compressed-tensors / llm-compressor: inverse global scale */
    FP4_QR_MXFP4,             /* OCP MX v1.0 MXFP4: E8M0 per 32, E2M1 RNE */
    FP4_QR_MXFP4_RNA,         /* same, microxcaling's ties-away element rounding */
    FP4_QR_MXFP8_E4M3,        /* OCP MXFP8 E4M3 elements, RNE */
    FP4_QR_MXFP8_E4M3_RNA,    /* same, ties away */
    FP4_QR_MXFP8_E5M2,        /* OCP MXFP8 E5M2 elements, RNE */
    FP4_QR_MXFP8_E5M2_RNA,    /* same, ties away */
    FP4_QR_VLLM_EXACT,        /* vLLM scaled_fp4_quant order with IEEE RN reciprocals */
    FP4_QR_DEEPSEEK_FP8_WEIGHT, /* DeepSeek FP8 weights: E4M3, FP32 scale per 128x128, amax/448 */
    FP4_QR_DEEPSEEK_FP8_ACT,    /* DeepSeek FP8 activations: E4M3, FP32 scale per 1x128,
                                   max(amax, 1e-4)/448 (inference/kernel.py act_quant) */
    FP4_QR_COUNT
} fp4_qrecipe_id;

/* Which tensor scale a recipe stores and computes with. Dequantized value:
 * DECODE: e2m1 * s8 * global;  ENCODE: e2m1 * s8 / global;  NONE: MX. */
typedef enum fp4_qglobal_polarity {
    FP4_QGLOBAL_DECODE = 0, /* amax/2688: modelopt weight_scale_2/input_scale, torchao pts */
    FP4_QGLOBAL_ENCODE,     /* 2688/amax: TE S_enc, FlashInfer globalScale, CT *_global_scale */
    FP4_QGLOBAL_NONE        /* MX: no tensor scale */
} fp4_qglobal_polarity;

typedef struct fp4_qrecipe {
    fp4_qrecipe_id id;
    const char *name;        /* canonical name, e.g. "modelopt-v0.2x" */
    const char *aliases;     /* comma-separated other accepted names ("" if none) */
    const char *description; /* one line: the formula in short */
    const char *source;      /* repo@commit file function (recipes.md source index) */
    int block;               /* elements of a row per scale: 16 (NVFP4), 32 (MX), 128 (DeepSeek) */
    int block_rows;          /* rows per scale: 1, or 128 (DeepSeek weights) */
    fp4_format elem;         /* FP4_FMT_E2M1, FP4_FMT_E4M3 or FP4_FMT_E5M2 */
    fp4_format scale;        /* FP4_FMT_UE4M3, FP4_FMT_UE8M0 or FP4_FMT_F32 (DeepSeek) */
    fp4_qglobal_polarity global;
    int zero_block_scale;    /* scale byte of an all-zero block (finite non-zero amax) */
    bool torch;              /* PyTorch recipe: fp4_qopts.torch_device matters */
    bool nan_input;          /* NaN inputs have a defined result (else an error) */
    bool te_features;        /* accepts two_d / stochastic / rht */
} fp4_qrecipe;

const fp4_qrecipe *fp4_qrecipe_get(fp4_qrecipe_id id); /* NULL if out of range */
/* Canonical name or alias, case-insensitive. 0 ok, -1 unknown (fp4_fail). */
int fp4_qrecipe_from_name(const char *name, const fp4_qrecipe **out);
/* Comma-separated canonical names, for messages. */
const char *fp4_qrecipe_names(void);

/* ---------------------------------------------------------------------------
 * Options
 * ------------------------------------------------------------------------- */

/* Where the tensor scale comes from. */
typedef enum fp4_qglobal_source {
    FP4_QGS_COMPUTE = 0, /* amax = max |x| over the tensor (after RHT for TE+RHT) */
    FP4_QGS_AMAX,        /* amax given (calibrated): opts.amax */
    FP4_QGS_DECODE,      /* decode-polarity scale given (modelopt input_scale /
                            weight_scale_2, torchao per_tensor_scale): opts.global_scale */
    FP4_QGS_ENCODE       /* encode-polarity scale given (FlashInfer globalScale,
                            vLLM SFScaleVal, CT global_scale): opts.global_scale */
} fp4_qglobal_source;

/* PyTorch semantics that change bits between devices (torch recipes only):
 *  CUDA: `tensor / python_scalar` is computed as tensor * RN32(1/scalar)
 *        (ATen BinaryDivTrueKernel.cu "compute a * reciprocal(b)"); every
 *        NaN produced by arithmetic is the canonical 0x7FFFFFFF.
 *  CPU:  `tensor / python_scalar` is one IEEE division; NaNs come from x86
 *        (invalid operations give the default NaN 0xFFC00000, a NaN operand
 *        propagates); NaN inputs are refused (operand order decides).
 * `python_scalar / tensor` is tensor.reciprocal() * scalar on both.
 * vllm-fast uses it too, for the input_scale = amax/2688 that modelopt's
 * export computes before vLLM reads it (its kernel math is CUDA either way). */
typedef enum fp4_torch_device {
    FP4_TORCH_CUDA = 0,
    FP4_TORCH_CPU
} fp4_torch_device;

typedef struct fp4_qopts {
    fp4_scale_layout layout;
    fp4_qglobal_source global_source;
    float amax;           /* FP4_QGS_AMAX */
    float global_scale;   /* FP4_QGS_DECODE / FP4_QGS_ENCODE */
    fp4_torch_device torch_device;
    bool single_level;    /* torchao without per_tensor_scale (block scales only) */
    /* TransformerEngine ("te") only: */
    bool two_d;           /* 16x16 tiles share one scale (weights) */
    bool stochastic;      /* cvt.rs.satfinite.e2m1x4 with supplied bits */
    const uint32_t *sr_bits; /* rows*cols words, low 8 bits used per element;
                                NULL: Philox4x32-10 keyed by sr_seed (see docs) */
    uint64_t sr_seed;
    bool rht;             /* 16x16 random Hadamard transform before quantizing
                             (BF16 input; TE applies it to the columnwise copy:
                             pass the transposed tensor) */
    const int8_t *rht_signs; /* 16 entries of +-1; NULL = TE's wgrad vector */
} fp4_qopts;

/* Linear layout, computed amax, CUDA torch semantics, no TE features. */
fp4_qopts fp4_qopts_default(void);

/* ---------------------------------------------------------------------------
 * Result
 * ------------------------------------------------------------------------- */

typedef struct fp4_qtensor {
    fp4_tensor t;            /* the result as an fp4_tensor view of the buffers below: shape,
                                element and scale formats, block, layout, global_scale =
                                global_decode (1 for MX) */
    const fp4_qrecipe *recipe;
    uint8_t *codes;          /* owned. E2M1: rows*cols/2 packed bytes; MXFP8: rows*cols bytes */
    size_t codes_bytes;
    uint8_t *scales;         /* owned. linear: rows*(cols/block); swizzled: padded tiles */
    size_t scales_bytes;
    float amax;              /* tensor amax used (NaN when a given scale replaced it) */
    float global_encode;     /* FP32 encode scale as the recipe computed/used it */
    float global_decode;     /* FP32 decode scale: dequant = e2m1 * s8 * global_decode;
                                for ENCODE recipes the consumer's RN32(1/encode) */
    float global_stored;     /* what the producer stores (polarity: recipe->global) */
} fp4_qtensor;

/* Quantizes x ([rows, cols] codes of in_fmt: FP4_FMT_F32 as float, BF16/F16
 * as uint16_t). out is filled with malloc'ed buffers (free with
 * fp4_qtensor_free). Returns 0, or -1 with fp4_last_error() set. */
int fp4_quantize(const fp4_qrecipe *recipe, fp4_format in_fmt, const void *x, int64_t rows,
                 int64_t cols, const fp4_qopts *opts, fp4_qtensor *out);
int fp4_quantize_by_name(const char *recipe, fp4_format in_fmt, const void *x, int64_t rows,
                         int64_t cols, const fp4_qopts *opts, fp4_qtensor *out);
void fp4_qtensor_free(fp4_qtensor *q);

/* Element code (E2M1 nibble or FP8 byte) and block scale byte of (r, c),
 * whatever the layout. */
uint8_t fp4_qtensor_code(const fp4_qtensor *q, int64_t r, int64_t c);
uint8_t fp4_qtensor_scale(const fp4_qtensor *q, int64_t r, int64_t c);
/* Exact dequantized value: elem * scale * global_decode (MX: elem * 2^e).
 * NaN scale or element -> NaN; products follow IEEE rules for inf/0. */
fp4_value fp4_qtensor_value(const fp4_qtensor *q, int64_t r, int64_t c);
/* Exact value without the tensor scale: elem * scale. */
fp4_value fp4_qtensor_block_value(const fp4_qtensor *q, int64_t r, int64_t c);
/* All rows*cols values as double (exact: at most 30 significant bits). */
int fp4_qtensor_dequantize(const fp4_qtensor *q, double *dst);

/* ---------------------------------------------------------------------------
 * Scale layouts (numerics.md §9.2). One tile = 128 rows x 4 scale columns =
 * 512 bytes; rows pad to a multiple of 128, scale columns to a multiple of 4:
 *   off(r, g) = (r/128 * ceil(G/4) + g/4) * 512 + (r%32)*16 + ((r/32)%4)*4 + g%4
 * ------------------------------------------------------------------------- */

int64_t fp4_swizzled_offset(int64_t row, int64_t sfcol, int64_t sfcols);
size_t fp4_swizzled_bytes(int64_t rows, int64_t sfcols);
/* linear [rows, sfcols] -> swizzled (padding bytes written as 0) and back.
 * Return 0, or -1 for bad arguments. */
int fp4_scales_to_swizzled(uint8_t *dst, const uint8_t *src, int64_t rows, int64_t sfcols);
int fp4_scales_from_swizzled(uint8_t *dst, const uint8_t *src, int64_t rows, int64_t sfcols);

/* ---------------------------------------------------------------------------
 * sm_90 MUFU.RCP (`rcp.approx.ftz.f32`), from the measured table.
 * ------------------------------------------------------------------------- */

float fp4_mufu_rcp_sm90(float x);
/* Table entry for a mantissa: 0, +1 or -1 ulp relative to RN(1/1.m). */
int fp4_mufu_rcp_sm90_delta(uint32_t mantissa);
/* The embedded table (2 MiB) and the SHA-256 of the .bin it came from. */
const unsigned char *fp4_mufu_rcp_sm90_table_bytes(void);
const char *fp4_mufu_rcp_sm90_table_sha256_hex(void);

/* ---------------------------------------------------------------------------
 * Internal (ref/quant*.c only)
 * ------------------------------------------------------------------------- */
#ifdef FP4QUANT_INTERNAL
int fp4q_nvfp4_run(const fp4_qrecipe *r, fp4_format in_fmt, const float *x, int64_t rows,
                   int64_t cols, const fp4_qopts *o, bool has_nan, fp4_qtensor *q,
                   uint8_t *codes, uint8_t *scales);
int fp4q_mx_run(const fp4_qrecipe *r, const float *x, int64_t rows, int64_t cols,
                uint8_t *codes, uint8_t *scales);
int fp4q_fp8_block_run(const fp4_qrecipe *r, const float *x, int64_t rows, int64_t cols,
                       uint8_t *codes, float *scales);
void fp4q_te_rht(float *x, int64_t rows, int64_t cols, const int8_t *signs);
float fp4q_tensor_amax(const float *x, int64_t n, bool kernel);
#endif

#ifdef __cplusplus
}
#endif
#endif
