/* backend.c - the default GEMM backend: plain loops in the path precision.
 * An NVFP4 backend (oracle, emu preset, CUDA kernel) plugs in through
 * fp4m_gemm_backend with the same contract. */
#include "model_internal.h"

#include <math.h>
#include <stdlib.h>

/* Each output is one sequential fused multiply-add chain over k, in the
 * path precision: acc = fma(x[k], w[k], acc). That is what BLAS micro-
 * kernels do per output element (they vectorise across outputs, not along
 * k; K blocks continue the same chain through C), and it reproduces torch's
 * CPU sgemm bit for bit on the fixture's router logits (1024 of 1024
 * values; a double sum rounded once matches 11%). fma/fmaf are exact fused
 * operations whatever the CPU, so results do not depend on the machine;
 * the "fma" clone only makes them fast where the instruction exists. */
__attribute__((target_clones("fma", "default")))
static double dot_f64(const double *x, const double *w, int64_t k) {
    double s = 0.0;
    for (int64_t i = 0; i < k; i++) s = fma(x[i], w[i], s);
    return s;
}

__attribute__((target_clones("fma", "default")))
static float dot_f32(const float *x, const float *w, int64_t k) {
    float s = 0.0f;
    for (int64_t i = 0; i < k; i++) s = fmaf(x[i], w[i], s);
    return s;
}

/* Below this many multiply-adds a parallel region costs more than it saves. */
#define PAR_MIN ((int64_t)1 << 24)
/* Outputs computed together: independent chains keep the FMA units busy
 * (one chain is bound by the FMA latency); each chain keeps its order. */
#define NB 8

/* y[0 .. nb) of one input row x against weight rows w[0 .. nb): nb chains,
 * each over k in order. */
__attribute__((target_clones("fma", "default")))
static void block_f64(const double *x, const double *w, int64_t k, int64_t nb, double *y) {
    double a[NB] = {0};
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < nb; j++) a[j] = fma(x[i], w[j * k + i], a[j]);
    for (int64_t j = 0; j < nb; j++) y[j] = a[j];
}

__attribute__((target_clones("fma", "default")))
static void block_f32(const float *x, const float *w, int64_t k, int64_t nb, float *y) {
    float a[NB] = {0};
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < nb; j++) a[j] = fmaf(x[i], w[j * k + i], a[j]);
    for (int64_t j = 0; j < nb; j++) y[j] = a[j];
}

/* NB input rows against one weight row, x packed as xt[k][NB]: the NB
 * chains sit in SIMD lanes (a broadcast weight times NB contiguous inputs),
 * each still over k in order, so the bits equal block_*'s. */
__attribute__((target_clones("fma", "default")))
static void rows_f64(const double *restrict xt, const double *restrict w, int64_t k,
                     double *restrict out) {
    double a[NB] = {0};
    for (int64_t i = 0; i < k; i++)
        for (int r = 0; r < NB; r++) a[r] = fma(xt[i * NB + r], w[i], a[r]);
    for (int r = 0; r < NB; r++) out[r] = a[r];
}

__attribute__((target_clones("fma", "default")))
static void rows_f32(const float *restrict xt, const float *restrict w, int64_t k,
                     float *restrict out) {
    float a[NB] = {0};
    for (int64_t i = 0; i < k; i++)
        for (int r = 0; r < NB; r++) a[r] = fmaf(xt[i * NB + r], w[i], a[r]);
    for (int r = 0; r < NB; r++) out[r] = a[r];
}

/* OpenMP over independent outputs: (row block, output) for full blocks of
 * NB rows, (row, block of NB outputs) for the rest (decode: m = 1). */
static int gemm_f64(void *ctx, const fp4m_linear_desc *d, int64_t m, const double *x,
                    const double *w, double *y) {
    (void)ctx;
    const int64_t n = d->out, k = d->in, mb = m / NB, nblk = (n + NB - 1) / NB;
    double *xt = mb ? malloc((size_t)(mb * k * NB) * sizeof(double)) : NULL;
    if (mb && !xt) return fp4_fail("model: out of memory in GEMM");
    for (int64_t b = 0; b < mb; b++)
        for (int64_t i = 0; i < k; i++)
            for (int r = 0; r < NB; r++) xt[(b * k + i) * NB + r] = x[(b * NB + r) * k + i];
#pragma omp parallel for collapse(2) schedule(static) if (m * n * k >= PAR_MIN)
    for (int64_t b = 0; b < mb; b++)
        for (int64_t c = 0; c < n; c++) {
            double a[NB];
            rows_f64(xt + b * k * NB, w + c * k, k, a);
            for (int r = 0; r < NB; r++) y[(b * NB + r) * n + c] = a[r];
        }
#pragma omp parallel for collapse(2) schedule(static) if (m * n * k >= PAR_MIN)
    for (int64_t r = mb * NB; r < m; r++)
        for (int64_t b = 0; b < nblk; b++) {
            const int64_t c0 = b * NB, nb = n - c0 < NB ? n - c0 : NB;
            block_f64(x + r * k, w + c0 * k, k, nb, y + r * n + c0);
        }
    free(xt);
    return 0;
}

static int gemm_f32(void *ctx, const fp4m_linear_desc *d, int64_t m, const float *x,
                    const float *w, float *y) {
    (void)ctx;
    const int64_t n = d->out, k = d->in, mb = m / NB, nblk = (n + NB - 1) / NB;
    float *xt = mb ? malloc((size_t)(mb * k * NB) * sizeof(float)) : NULL;
    if (mb && !xt) return fp4_fail("model: out of memory in GEMM");
    for (int64_t b = 0; b < mb; b++)
        for (int64_t i = 0; i < k; i++)
            for (int r = 0; r < NB; r++) xt[(b * k + i) * NB + r] = x[(b * NB + r) * k + i];
#pragma omp parallel for collapse(2) schedule(static) if (m * n * k >= PAR_MIN)
    for (int64_t b = 0; b < mb; b++)
        for (int64_t c = 0; c < n; c++) {
            float a[NB];
            rows_f32(xt + b * k * NB, w + c * k, k, a);
            for (int r = 0; r < NB; r++) y[(b * NB + r) * n + c] = a[r];
        }
#pragma omp parallel for collapse(2) schedule(static) if (m * n * k >= PAR_MIN)
    for (int64_t r = mb * NB; r < m; r++)
        for (int64_t b = 0; b < nblk; b++) {
            const int64_t c0 = b * NB, nb = n - c0 < NB ? n - c0 : NB;
            block_f32(x + r * k, w + c0 * k, k, nb, y + r * n + c0);
        }
    free(xt);
    return 0;
}

static const fp4m_gemm_backend g_default = {"loops", NULL, gemm_f64, gemm_f32};

const fp4m_gemm_backend *fp4m_gemm_default(void) { return &g_default; }

/* Exposed to forward_impl.h for the non-weight contractions (q.k, router). */
double fp4m_dot_f64(const double *x, const double *w, int64_t k) { return dot_f64(x, w, k); }
float fp4m_dot_f32(const float *x, const float *w, int64_t k) { return dot_f32(x, w, k); }
