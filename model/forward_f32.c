/* forward_f32.c - the FP32 path (see forward_impl.h). */
#define REAL float
#define IS_F64 0
#define DT FP4M_DT_F32
#define GEMM gemm_f32
#define DOT fp4m_dot_f32
#define REXP expf
#define FMA fmaf
#define FORWARD fp4m_forward_f32
#include "forward_impl.h"
