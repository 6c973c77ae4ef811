/* fp4tensor.h - the one block-scaled tensor type of fp4sim (part of ref/,
 * included by fp4ref.h), and the one place that knows the on-disk names of
 * quantized tensors (ModelOpt, compressed-tensors, DeepSeek FP8, fp4sim's
 * own).
 *
 * A tensor is a row-major [rows, cols] matrix of element codes, optionally
 * with one block scale per `block` consecutive elements of a row (and per
 * `block_rows` rows), and one FP32 tensor scale. Its exact value is
 *     x[r][c] = elem(code[r][c]) * scale(r, c) * global_scale
 * (scale = 1 when there are none). The GEMM engines (fp4engine.h), the
 * exact oracle (fp4gemm.h), the quantizers (fp4quant.h, whose result holds
 * one), emu/, model/ and the vector and conformance suites all speak it.
 * NVFP4 = E2M1 packed + UE4M3 per 16 + FP32 global (decode polarity);
 * MXFP4/6/8 = E2M1/E2M3/E3M2/E4M3/E5M2 + UE8M0 per 32; DeepSeek FP8 =
 * E4M3 + FP32 per 128 (1x128 activations, 128x128 weights).
 */
/* The component's one header first: it includes this one, in dependency order. */
#include "fp4ref.h"
#ifndef FP4TENSOR_H
#define FP4TENSOR_H


#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum fp4_scale_layout {
    FP4_SCALE_LINEAR = 0, /* [ceil(rows/block_rows), ceil(cols/block)] row-major (checkpoints) */
    FP4_SCALE_SWIZZLED    /* 128x4 tiles (cuBLASLt / CUTLASS / TMA), zero padding; byte
                             scales with block_rows 1 only (numerics.md §9.2) */
} fp4_scale_layout;

typedef struct fp4_tensor {
    fp4_format elem;         /* element format: E2M1 E2M3 E3M2 E4M3 E5M2 F16 BF16 F32 */
    bool packed;             /* E2M1 only: two codes per byte, element 2j in the low nibble
                                (PTX nibble order, numerics.md §2.10); rows*cols even */
    int64_t rows, cols;      /* logical shape; blocks run along cols (K for GEMM operands) */
    const void *codes;       /* row-major; fp4_format_code_bytes(elem) bytes per element */
    fp4_format scale_fmt;    /* UE4M3, UE8M0 or F32; FP4_FMT_COUNT: no block scales */
    int32_t block;           /* elements of a row per scale (16, 32, 128) */
    int32_t block_rows;      /* rows per scale (1; 128 for DeepSeek 128x128 weights) */
    fp4_scale_layout layout;
    const void *scales;      /* uint8_t codes, or float for F32 scales */
    float global_scale;      /* FP32 tensor scale, decode polarity (1 when none) */
} fp4_tensor;

/* Named kinds of a tensor (what engines list in their capabilities). */
typedef enum fp4_tkind {
    FP4_TK_F32 = 0, FP4_TK_F16, FP4_TK_BF16, FP4_TK_E4M3, FP4_TK_E5M2, FP4_TK_E3M2,
    FP4_TK_E2M3, FP4_TK_E2M1,          /* unscaled (a global scale is allowed) */
    FP4_TK_NVFP4,                      /* E2M1 packed + UE4M3 / 16 */
    FP4_TK_MXFP4,                      /* E2M1 packed + UE8M0 / 32 */
    FP4_TK_MXFP6_E2M3, FP4_TK_MXFP6_E3M2, FP4_TK_MXFP8_E4M3, FP4_TK_MXFP8_E5M2, /* UE8M0 / 32 */
    FP4_TK_FP8_BLOCK128,               /* E4M3 + F32 / 128 (block_rows 1 or 128) */
    FP4_TK_OTHER,                      /* any other valid combination (e.g. E2M1 + UE8M0 / 16) */
    FP4_TK_COUNT
} fp4_tkind;

#define FP4_TK_BIT(k) (1u << (k))

/* Constructors of views (nothing is copied; global scale 1, linear layout). */
fp4_tensor fp4_tensor_plain(fp4_format elem, int64_t rows, int64_t cols, const void *codes);
fp4_tensor fp4_tensor_nvfp4(int64_t rows, int64_t cols, const uint8_t *packed_codes,
                            const uint8_t *ue4m3_scales, float global_scale);
/* MX: elem E2M1 (packed), E2M3, E3M2, E4M3 or E5M2; UE8M0 per 32. */
fp4_tensor fp4_tensor_mx(fp4_format elem, int64_t rows, int64_t cols, const void *codes,
                         const uint8_t *ue8m0_scales);
/* DeepSeek FP8: E4M3 codes, float scales per 128 columns and block_rows rows. */
fp4_tensor fp4_tensor_fp8_block(int64_t rows, int64_t cols, const uint8_t *codes,
                                const float *scales, int32_t block_rows);

/* Checks the description (formats, shape, block sizes, layout, pointers);
 * `name` labels messages ("A"). 0 or -1 with fp4_last_error(). */
int fp4_tensor_check(const fp4_tensor *t, const char *name);
fp4_tkind fp4_tensor_kind(const fp4_tensor *t);
const char *fp4_tkind_name(fp4_tkind k); /* "nvfp4", "mxfp8-e4m3", "f16", ... */
/* Accepts the names above; -1 (fp4_fail, naming the valid ones) if unknown. */
int fp4_tkind_from_name(const char *name, fp4_tkind *out);
const char *fp4_tkind_names(void);
bool fp4_tensor_scaled(const fp4_tensor *t);

/* Sizes: bytes of the codes; scale rows/columns of the linear layout and
 * the number of scale entries stored (swizzled: padded tiles). */
int64_t fp4_tensor_codes_bytes(const fp4_tensor *t);
int64_t fp4_tensor_scale_rows(const fp4_tensor *t);
int64_t fp4_tensor_scale_cols(const fp4_tensor *t);
int64_t fp4_tensor_scales_count(const fp4_tensor *t);
int fp4_tensor_scale_bytes(const fp4_tensor *t); /* 1, or 4 for F32 scales */

/* Element code at (r, c) (an E2M1 nibble when packed), and the scale that
 * applies to it (the byte, or the float's bit pattern), whatever the layout. */
uint64_t fp4_tensor_code(const fp4_tensor *t, int64_t r, int64_t c);
uint64_t fp4_tensor_scale_code(const fp4_tensor *t, int64_t r, int64_t c);
/* Exact value elem * scale (no tensor scale), and with it. NaN codes or
 * scales give NaN; a UE4M3 scale byte with bit 7 set is read as its low 7
 * bits (callers that must refuse it check first). */
fp4_value fp4_tensor_block_value(const fp4_tensor *t, int64_t r, int64_t c);
fp4_value fp4_tensor_value(const fp4_tensor *t, int64_t r, int64_t c);

/* A view with linear scales: *out = *t when already linear, else the
 * scales are copied out of the tiles into *owned (free() it; NULL when
 * nothing was allocated). 0 or -1. */
int fp4_tensor_linearize(const fp4_tensor *t, fp4_tensor *out, void **owned);

/* A reproducible random operand (the generated inputs of `fp4sim gemm`,
 * docs/cli.md): finite element codes from fp4rng.h stream `stream` (word i
 * gives element i, or byte i of packed E2M1), block scales from stream + 1
 * (UE4M3 0.5..1.875, UE8M0 2^-4..2^4, FP32 2^-8..2^8), linear layout, global
 * scale 1. K must be a multiple of the block (1x16 / 1x32; FP8 blocks of 128
 * take any K). Codes and scales live in *owned (free() it). 0 or -1. */
int fp4_tensor_random(fp4_tkind kind, int64_t rows, int64_t cols, uint64_t seed,
                      uint32_t stream, fp4_tensor *out, void **owned);

/* ---------------------------------------------------------------------------
 * On-disk conventions of quantized linear weights (recipes.md §7): which
 * tensors of a safetensors file hold one fp4_tensor, and how the tensor
 * scale is stored. `stem` is the module name ("model.layers.3.mlp.down_proj"
 * or, for fp4sim's own files, any name).
 *   MODELOPT  NVFP4: stem.weight U8 [out, in/2], stem.weight_scale F8_E4M3
 *             [out, in/16], stem.weight_scale_2 F32 [] (decode), stem.input_scale
 *             F32 [] (decode, optional)                                  (§7.1)
 *   CT        compressed-tensors NVFP4: stem.weight_packed U8, stem.weight_scale
 *             F8_E4M3, stem.weight_global_scale F32 [1] (ENCODE polarity),
 *             stem.input_global_scale F32 [1] (encode, optional)        (§2.8, §7.2)
 *   DEEPSEEK  FP8: stem.weight F8_E4M3 [out, in], stem.weight_scale_inv F32
 *             [ceil(out/128), ceil(in/128)] (w = e4m3 * scale_inv)      (§7.3)
 *   FP4SIM    fp4sim's own files (quantize --out, gemm --a, vectors): stem U8
 *             codes (or F8_E4M3 / F8_E5M2 for FP8 elements), stem_scale
 *             F8_E4M3 / F8_E8M0 (U8 [padded tiles] when swizzled), stem_scale_2
 *             F32 [] (decode); the recipe, kind and layout in __metadata__.
 *             With the empty stem "", the bare NVFP4 file of `fp4sim gemm
 *             --a`: codes U8 [rows, K/2], scales F8_E4M3 or U8 [rows, K/16],
 *             global_scale F32 scalar (decode, optional).
 * ------------------------------------------------------------------------- */

typedef enum fp4_disk_conv {
    FP4_DISK_FP4SIM = 0,
    FP4_DISK_MODELOPT,
    FP4_DISK_CT,
    FP4_DISK_DEEPSEEK_FP8,
    FP4_DISK_COUNT
} fp4_disk_conv;

/* Names of the tensors that hold a quantized tensor under a convention;
 * "" where the convention has none. */
typedef struct fp4_disk_names {
    char codes[320], scale[320], global[320], input[320];
} fp4_disk_names;

const char *fp4_disk_conv_name(fp4_disk_conv c); /* "fp4sim", "modelopt", "compressed-tensors",
                                                    "deepseek-fp8" */
int fp4_disk_names_of(fp4_disk_conv c, const char *stem, fp4_disk_names *out);
/* Which checkpoint convention stores module `stem` in ck or f: compressed-
 * tensors when stem.weight_packed exists, ModelOpt when stem.weight is U8,
 * DeepSeek FP8 when it is F8_E4M3. Returns 0 (found), 1 (stem.weight is a
 * plain float tensor, or absent) or -1 (both stem.weight_packed and
 * stem.weight: two layouts of one weight). FP4SIM files are not detected:
 * their reader asks for them by name. */
int fp4_disk_detect(fp4_st_ckpt *ck, const fp4_st_file *f, const char *stem, fp4_disk_conv *out);

/* A quantized tensor as stored: the view, the stored tensor-scale value in
 * the convention's polarity, and the optional activation scale. */
typedef struct fp4_disk_tensor {
    fp4_tensor t;          /* global_scale: the decode multiplier (ENCODE: RN32(1/stored)) */
    fp4_disk_conv conv;
    bool has_global;       /* a tensor scale is stored */
    bool global_encode;    /* the stored scale is an encode scale (compressed-tensors) */
    float global_stored;   /* as stored (1 when there is none) */
    bool has_input;
    float input_stored;    /* input_scale / input_global_scale as stored */
} fp4_disk_tensor;

/* What the caller expects (NULL: whatever the file holds). */
typedef struct fp4_disk_want {
    int64_t rows, cols;    /* the logical shape [out, in]; -1: any */
    int64_t fp8_block[2];  /* DeepSeek FP8 tile (0: 128 x 128, quantization_config.weight_block_size) */
} fp4_disk_want;

/* Reads `stem` under convention c from a checkpoint (ck) or one file (f;
 * exactly one of them), checking every dtype and shape; errors name the
 * tensor ("tensor 'X': expected U8 [64, 48] (two E2M1 codes per byte),
 * checkpoint has U8 [64, 49]"). Tensor scales must be finite and > 0. The
 * view points into the mapping (valid while it stays open). Block-scale
 * bytes are not inspected (that needs the data; the GEMMs refuse bit 7). */
int fp4_disk_read(fp4_st_ckpt *ck, const fp4_st_file *f, fp4_disk_conv c, const char *stem,
                  const fp4_disk_want *want, fp4_disk_tensor *out);
/* Adds the tensors of `d` under its convention to a writer (data copied). */
int fp4_disk_write(fp4_st_writer *w, const char *stem, const fp4_disk_tensor *d);

#ifdef __cplusplus
}
#endif
#endif
