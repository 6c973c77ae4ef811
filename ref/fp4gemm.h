/* fp4gemm.h - exact NVFP4 GEMM oracle (part of ref/, included by fp4ref.h).
 *
 * D = alpha * (A_q x B_q^T) * gA * gB + beta * C, with A [M, K] and B [N, K]
 * NVFP4 matrices (packed E2M1 codes, element 2j in the low nibble of byte j;
 * UE4M3 block scales, one per 16 consecutive K elements, linear layout
 * [rows, K/16]; one FP32 tensor scale each).
 *
 * The exact mode computes every output exactly (integer 16-element block sums,
 * scale significands multiplied as integers, accumulated in a fixed-point
 * integer in units of 2^-20) and rounds once. The other accumulation modes
 * reproduce common references so users see how far they are from the exact
 * result. Facts used: numerics.md §8 (exactness), performance.md §5.2.
 */
#ifndef FP4GEMM_H
#define FP4GEMM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fp4_nvfp4_matrix {
    int64_t rows, k;          /* logical shape [rows, k]; k % 16 == 0 */
    const uint8_t *codes;     /* rows * k/2 bytes, row-major, 2 codes per byte */
    const uint8_t *scales;    /* rows * k/16 UE4M3 bytes, linear [rows, k/16] */
    float global_scale;       /* FP32 per-tensor scale (applied in the epilogue) */
} fp4_nvfp4_matrix;

typedef enum fp4_acc_mode {
    FP4_ACC_EXACT = 0,  /* exact sum of all products (the oracle) */
    FP4_ACC_SEQ_F32,    /* acc = fma(a*sa, b*sb, acc) in FP32 RN over k in the
                           given block order, as CUTLASS's host reference
                           (gett.hpp: per element, scale folded in float) */
    FP4_ACC_F16_BLOCKS, /* exact 16-element block partials (a*sa*sb summed
                           exactly) accumulated in FP16 with acc_round */
    FP4_ACC_COUNT
} fp4_acc_mode;

typedef enum fp4_epilogue {
    FP4_EPI_EXACT = 0, /* D = round_out(alpha*gA*gB*acc + beta*C), one rounding */
    FP4_EPI_F32,       /* CUTLASS order: a = RN32(acc); s = RN32(RN32(alpha*gA)*gB);
                          t = RN32(s*a); d = RN32(fma(beta, C, t)) (beta != 0);
                          then round_out(d) */
    FP4_EPI_COUNT
} fp4_epilogue;

typedef struct fp4_gemm_opts {
    fp4_acc_mode acc;
    fp4_epilogue epi;
    fp4_format out;          /* FP4_FMT_F32, F16 or BF16 (codes written to D) */
    fp4_round out_round;     /* rounding of the final conversion to `out` */
    fp4_round acc_round;     /* FP16 accumulation rounding (FP4_ACC_F16_BLOCKS) */
    const int64_t *k_order;  /* NULL: blocks in ascending K; else a permutation
                                of 0..K/16-1 giving the order blocks are added
                                (non-exact modes; the exact result has no order) */
    float alpha, beta;
} fp4_gemm_opts;

fp4_gemm_opts fp4_gemm_opts_default(void); /* exact, exact epilogue, F32 RNE, alpha 1, beta 0 */

/* C: M x N FP32 row-major (may be NULL when beta == 0). D: M x N codes of
 * opts->out (uint32_t for F32, uint16_t for F16/BF16), row-major. Returns 0,
 * or -1 with fp4_last_error() set (shape mismatch, K % 16 != 0, null
 * pointers, UE4M3 scale bytes with bit 7 set, bad k_order). A NaN scale
 * (0x7F) in a row or column makes every output that uses it NaN. OpenMP over
 * output rows; results do not depend on the thread count. */
int fp4_gemm_nvfp4(const fp4_nvfp4_matrix *A, const fp4_nvfp4_matrix *B, const float *C,
                   void *D, const fp4_gemm_opts *opts);


/* ---------------------------------------------------------------------------
 * Exact GEMM for other block-scaled formats, with a wide fixed-point
 * accumulator (the exact layer only: FP4_ACC_EXACT; the epilogue and output
 * options of fp4_gemm_opts apply as for NVFP4).
 * ------------------------------------------------------------------------- */
typedef enum fp4_bs_kind {
    FP4_BS_NVFP4 = 0,    /* E2M1 packed, UE4M3 scale per 16 (same data as fp4_nvfp4_matrix) */
    FP4_BS_MXFP4,        /* E2M1 packed, UE8M0 scale per 32 (OCP MX v1.0) */
    FP4_BS_MXFP8_E4M3,   /* E4M3 bytes, UE8M0 scale per 32 */
    FP4_BS_MXFP8_E5M2,   /* E5M2 bytes, UE8M0 scale per 32 */
    FP4_BS_FP8_BLOCK128, /* E4M3 bytes, FP32 scale per 128 K elements and per
                            `scale_rows` rows: 1 (1x128, DeepSeek activations) or
                            128 (128x128, DeepSeek weight_scale_inv) */
    FP4_BS_COUNT
} fp4_bs_kind;

typedef struct fp4_bs_matrix {
    fp4_bs_kind kind;
    int64_t rows, k;      /* k a multiple of the block (16, 32 or 128) */
    const uint8_t *codes; /* E2M1: rows*k/2 bytes (2j low); FP8: rows*k bytes */
    const void *scales;   /* uint8_t [rows][k/block] (UE4M3/UE8M0), or float
                             [ceil(rows/scale_rows)][k/128] for FP8_BLOCK128 */
    int64_t scale_rows;   /* FP8_BLOCK128 only: 1 or 128 */
    float global_scale;
} fp4_bs_matrix;

/* Block size of a kind (16, 32 or 128). */
int fp4_bs_block(fp4_bs_kind kind);
/* D = alpha * gA * gB * (A x B^T) + beta * C, exact then one rounding
 * (opts->acc must be FP4_ACC_EXACT). A and B must be of the same kind. NaN
 * or Inf elements/scales propagate by IEEE rules. 0 or -1 + fp4_last_error. */
int fp4_gemm_block_scaled(const fp4_bs_matrix *A, const fp4_bs_matrix *B, const float *C,
                          void *D, const fp4_gemm_opts *opts);

#ifdef __cplusplus
}
#endif
#endif
