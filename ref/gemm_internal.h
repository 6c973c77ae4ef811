/* gemm_internal.h - epilogue shared by gemm.c (NVFP4) and gemm_bs.c (other
 * block-scaled kinds). Not installed. */
#ifndef FP4_GEMM_INTERNAL_H
#define FP4_GEMM_INTERNAL_H
#include "fp4ref.h"
#include <gmp.h>

/* Finite accumulator acc * 2^e (acc is overwritten) -> output code. */
uint64_t fp4i_gemm_finish_z(mpz_t acc, int64_t e, float gA, float gB, float Cv,
                            const fp4_gemm_opts *o);
/* Non-finite accumulator (NaN or +-Inf) -> output code by IEEE rules. */
uint64_t fp4i_gemm_finish_special(double acc, float gA, float gB, float Cv,
                                  const fp4_gemm_opts *o);
/* Rejects UE4M3 scale bytes with bit 7 set ([rows, k/16] linear), naming
 * the operand and position. 0 or -1 with fp4_last_error() set. */
int fp4i_gemm_check_ue4m3(const uint8_t *scales, int64_t rows, int64_t k, const char *name);
/* Writes output code i of D (uint32_t for F32, uint16_t for F16/BF16). */
static inline void fp4i_gemm_store(void *D, fp4_format f, int64_t i, uint64_t code) {
    if (f == FP4_FMT_F32) ((uint32_t *)D)[i] = (uint32_t)code;
    else ((uint16_t *)D)[i] = (uint16_t)code;
}
#endif
