/* fp4gemm.h - the exact GEMM oracle, exact arithmetic on codes and the one
 * FP32 epilogue (part of ref/, included by fp4ref.h).
 *
 * D = epilogue(A x B^T, C) with A [M, K] and B [N, K] fp4_tensor operands
 * of any kinds (fp4tensor.h: NVFP4, MXFP4/6/8, DeepSeek FP8 blocks, plain
 * FP8/FP16/BF16/FP32, mixed). The oracle computes every output exactly
 * (integer block sums, scale significands multiplied as integers, a wide
 * fixed-point accumulator) and rounds once, in the exact epilogue, or
 * rounds the exact sum to FP32 and applies the FP32 epilogue that library
 * kernels use. ref/ holds only exact arithmetic: accumulation that rounds
 * (sequential FP32, FP16 blocks, tensor-core datapaths, K orders, split-K)
 * is an emu/ engine (fp4emu.h). Facts: numerics.md §8 (exactness),
 * performance.md §5.2 (speed).
 */
/* The component's one header first: it includes this one, in dependency order. */
#include "fp4ref.h"
#ifndef FP4GEMM_H
#define FP4GEMM_H


#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------
 * Exact arithmetic on codes of one format (F32, F16, BF16, F64, and the
 * narrow ones), SoftFloat's operation names: the exact result rounded once
 * in `mode` (FP4_RS is refused: -1 ternary, NaN). IEEE 754 special cases:
 * NaN operands or invalid operations (Inf - Inf, 0 * Inf) give the format's
 * canonical NaN and raise invalid (signaling NaNs only for the NaN rule,
 * as fp4_convert); overflow gives Inf or the largest finite by mode; an
 * exact zero sum is +0 (-0 in RD) unless both addends are -0. ternary and
 * flags may be NULL. Used by the FP32 epilogue (ref and emu alike) and by
 * emu's promotion and split-K adds.
 * ------------------------------------------------------------------------- */
uint64_t fp4_add(fp4_format f, uint64_t a, uint64_t b, fp4_round mode, int *ternary,
                 unsigned *flags);
uint64_t fp4_mul(fp4_format f, uint64_t a, uint64_t b, fp4_round mode, int *ternary,
                 unsigned *flags);
/* a * b + c with one rounding (fused). */
uint64_t fp4_mul_add(fp4_format f, uint64_t a, uint64_t b, uint64_t c, fp4_round mode,
                     int *ternary, unsigned *flags);
static inline uint32_t f32_add(uint32_t a, uint32_t b, fp4_round mode) {
    return (uint32_t)fp4_add(FP4_FMT_F32, a, b, mode, NULL, NULL);
}
static inline uint32_t f32_mul(uint32_t a, uint32_t b, fp4_round mode) {
    return (uint32_t)fp4_mul(FP4_FMT_F32, a, b, mode, NULL, NULL);
}
static inline uint32_t f32_mulAdd(uint32_t a, uint32_t b, uint32_t c, fp4_round mode) {
    return (uint32_t)fp4_mul_add(FP4_FMT_F32, a, b, c, mode, NULL, NULL);
}

/* ---------------------------------------------------------------------------
 * Epilogues: how the accumulated sum becomes D.
 * ------------------------------------------------------------------------- */
typedef enum fp4_epilogue {
    FP4_EPI_EXACT = 0, /* D = round_out(alpha * gA * gB * acc + beta * C): one rounding */
    FP4_EPI_F32,       /* CUTLASS / cuBLASLt order, FP32 RN each step (numerics.md §7.1):
                          a = RN32(acc); s = RN32(RN32(alpha * gA) * gB); t = RN32(s * a);
                          d = beta != 0 ? RN32(fma(beta, C, t)) : t; D = round_out(d) */
    FP4_EPI_COUNT
} fp4_epilogue;

/* The FP32 epilogue on an FP32 accumulator code acc32: D's code in `out`
 * (F32, F16 or BF16) rounded with out_round. */
uint64_t fp4_epilogue_f32(uint32_t acc32, float alpha, float gA, float gB, float beta, float c,
                          fp4_format out, fp4_round out_round);
/* The exact epilogue on an exact accumulator value (NaN/Inf by IEEE rules). */
uint64_t fp4_epilogue_exact(const fp4_value *acc, float alpha, float gA, float gB, float beta,
                            float c, fp4_format out, fp4_round out_round);
/* Either, on an exact accumulator: FP4_EPI_F32 first rounds it to FP32 RNE. */
uint64_t fp4_epilogue_apply(fp4_epilogue epi, const fp4_value *acc, float alpha, float gA,
                            float gB, float beta, float c, fp4_format out, fp4_round out_round);
const char *fp4_epilogue_name(fp4_epilogue e); /* "exact", "f32" */
int fp4_epilogue_from_name(const char *s, fp4_epilogue *out);

/* ---------------------------------------------------------------------------
 * One GEMM call: what every engine (fp4engine.h) computes.
 * ------------------------------------------------------------------------- */
typedef struct fp4_gemm_call {
    const fp4_tensor *A, *B; /* A [M, K], B [N, K]: D[m][n] = sum_k A[m][k] * B[n][k] */
    const float *C;          /* [M, N] FP32, row-major; may be NULL when beta == 0 */
    float alpha, beta;
    fp4_epilogue epi;
    fp4_format out;          /* FP4_FMT_F32, F16 or BF16 */
    fp4_round out_round;     /* of the final conversion to `out` (not FP4_RS) */
    void *D;                 /* [M, N] codes of `out` (uint32_t / uint16_t), row-major */
    /* Output window: only D[m][n] with m0 <= m < m1, n0 <= n < n1 is computed
     * and written (m1 / n1 = 0: to the end). Lets a caller split the work
     * (threads, MPI ranks, tiles) without changing any bit. */
    int64_t m0, m1, n0, n1;
} fp4_gemm_call;

/* A call with F32 RNE output, exact epilogue, alpha 1, beta 0, no C, the
 * whole output. */
fp4_gemm_call fp4_gemm_call_make(const fp4_tensor *A, const fp4_tensor *B, void *D);
/* Shape and argument checks shared by every engine: tensors valid, same K,
 * output format and rounding, C when beta != 0, window inside [M, N].
 * 0 or -1 with fp4_last_error(). */
int fp4_gemm_call_check(const fp4_gemm_call *c);
/* The window with the zeros resolved. */
void fp4_gemm_call_window(const fp4_gemm_call *c, int64_t *m0, int64_t *m1, int64_t *n0,
                          int64_t *n1);
/* Writes output code i of D (uint32_t for F32, uint16_t for F16/BF16). */
static inline void fp4_gemm_store(void *D, fp4_format f, int64_t i, uint64_t code) {
    if (f == FP4_FMT_F32) ((uint32_t *)D)[i] = (uint32_t)code;
    else ((uint16_t *)D)[i] = (uint16_t)code;
}

/* The exact oracle. Every kind and pair of kinds fp4tensor.h describes:
 * NVFP4 x NVFP4 through the fast integer path (int16 block sums, int64
 * accumulator flushed into int128), same-kind block-scaled operands through
 * integer block sums into a wide accumulator, anything else product by
 * product into the wide accumulator. A UE4M3 scale byte with bit 7 set is
 * refused (UE4M3 is 7 bits); NaN elements or scales make the outputs that
 * use them NaN, Inf propagates by IEEE rules. OpenMP over outputs; no bit
 * depends on the thread count. 0 or -1 with fp4_last_error(). */
int fp4_gemm_exact(const fp4_gemm_call *c);

#ifdef __cplusplus
}
#endif
#endif
