/* gemm_internal.h - pieces shared by the exact GEMM paths (gemm.c: NVFP4
 * fast path and dispatch; gemm_bs.c: wide accumulator paths) and the
 * epilogues (epilogue.c). Not installed. */
#ifndef FP4_GEMM_INTERNAL_H
#define FP4_GEMM_INTERNAL_H
#include "fp4ref.h"
#include <gmp.h>

/* The call's epilogue on an exact accumulator z * 2^e (z is overwritten), or
 * on a non-finite accumulator `special` (then z is ignored). */
uint64_t fp4i_gemm_finish(const fp4_gemm_call *c, mpz_t z, int64_t e, const fp4_value *special,
                          float cv);
uint64_t fp4i_epilogue_exact_z(mpz_t acc_z, int64_t acc_e, const fp4_value *acc_special,
                               float alpha, float gA, float gB, float beta, float c,
                               fp4_format out, fp4_round mode);
uint64_t fp4i_epilogue_f32_z(const mpz_t acc_z, int64_t acc_e, const fp4_value *acc_special,
                             float alpha, float gA, float gB, float beta, float c,
                             fp4_format out, fp4_round mode);
/* Exact GEMM of linear-layout operands through the wide accumulator (any
 * kinds); the call is checked. */
int fp4i_gemm_wide(const fp4_gemm_call *c, const fp4_tensor *A, const fp4_tensor *B);
#endif
