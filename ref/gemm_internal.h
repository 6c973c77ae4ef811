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
#endif
