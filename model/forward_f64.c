/* forward_f64.c - the FP64 path (see forward_impl.h). */
#define REAL double
#define IS_F64 1
#define DT FP4M_DT_F64
#define GEMM gemm_f64
#define DOT fp4m_dot_f64
#define REXP exp
#define FMA fma
#define FORWARD fp4m_forward_f64
#include "forward_impl.h"
