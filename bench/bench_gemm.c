/* bench_gemm.c - exact NVFP4 GEMM oracle throughput vs the baselines the
 * issue names, measured in the same run on the same cores:
 *   (a) a naive FP32 loop like CUTLASS's host reference (acc += a*sa * b*sb,
 *       scales decoded per element, OpenMP over the same output rows), and
 *   (b) mpfr_dot (MPFR >= 4.1) on a sample of outputs, inputs pre-set.
 * Prints MAC/s and the ratios. Default shape M = N = 512, K = 7168; override
 * with `bench_gemm M N K [threads]`. */
#include "fp4ref.h"

#include <math.h>
#include <mpfr.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static uint64_t mix(uint64_t x) { /* splitmix64: benchmark data only */
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* An NVFP4 operand: the buffers and the fp4_tensor view of them. */
typedef struct bmat {
    int64_t rows, k;
    uint8_t *codes, *scales;
    fp4_tensor t;
} bmat;

static void fill(bmat *X, int64_t rows, int64_t k, uint64_t seed) {
    uint8_t *c = malloc((size_t)(rows * k / 2)), *s = malloc((size_t)(rows * k / 16));
    for (int64_t i = 0; i < rows * k / 2; i++) c[i] = (uint8_t)mix(seed + (uint64_t)i);
    for (int64_t i = 0; i < rows * k / 16; i++) s[i] = (uint8_t)(mix(~seed + (uint64_t)i) % 0x7F);
    X->rows = rows, X->k = k, X->codes = c, X->scales = s;
    X->t = fp4_tensor_nvfp4(rows, k, c, s, 1.0f);
}

static float decode_elem(const bmat *X, int64_t r, int64_t c, const float *lut,
                         const float *slut) {
    uint8_t b = X->codes[r * (X->k / 2) + c / 2];
    return lut[(c & 1) ? b >> 4 : b & 0xF] * slut[X->scales[r * (X->k / 16) + c / 16]];
}

/* Baseline (a): CUTLASS-host-style value reference in FP32. */
static void naive_f32(const bmat *A, const bmat *B, float *D) {
    float lut[16], slut[128];
    for (int i = 0; i < 16; i++) lut[i] = (float)fp4_to_f64(FP4_FMT_E2M1, (uint64_t)i);
    for (int i = 0; i < 128; i++) slut[i] = (float)fp4_to_f64(FP4_FMT_UE4M3, (uint64_t)i);
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t m = 0; m < A->rows; m++)
        for (int64_t n = 0; n < B->rows; n++) {
            float acc = 0.0f;
            for (int64_t k = 0; k < A->k; k++)
                acc += decode_elem(A, m, k, lut, slut) * decode_elem(B, n, k, lut, slut);
            D[m * B->rows + n] = acc;
        }
}

/* Baseline (b): mpfr_dot per output, operands pre-set (allocation not timed). */
static double mpfr_dot_rate(const bmat *A, const bmat *B, int samples) {
#if MPFR_VERSION >= MPFR_VERSION_NUM(4, 1, 0)
    int64_t K = A->k;
    mpfr_t *a = malloc((size_t)K * sizeof *a), *b = malloc((size_t)K * sizeof *b);
    mpfr_ptr *pa = malloc((size_t)K * sizeof *pa), *pb = malloc((size_t)K * sizeof *pb);
    for (int64_t k = 0; k < K; k++) {
        mpfr_init2(a[k], 24), mpfr_init2(b[k], 24);
        pa[k] = a[k], pb[k] = b[k];
    }
    mpfr_t r;
    mpfr_init2(r, 24);
    double t = 0;
    for (int s = 0; s < samples; s++) {
        int64_t m = s % A->rows, n = (s * 7) % B->rows;
        for (int64_t k = 0; k < K; k++) {
            mpfr_set_d(a[k], fp4_to_f64(FP4_FMT_E2M1, (A->codes[m * K / 2 + k / 2] >> (4 * (k & 1))) & 0xF) *
                                 fp4_to_f64(FP4_FMT_UE4M3, A->scales[m * K / 16 + k / 16]), MPFR_RNDN);
            mpfr_set_d(b[k], fp4_to_f64(FP4_FMT_E2M1, (B->codes[n * K / 2 + k / 2] >> (4 * (k & 1))) & 0xF) *
                                 fp4_to_f64(FP4_FMT_UE4M3, B->scales[n * K / 16 + k / 16]), MPFR_RNDN);
        }
        double t0 = now();
        mpfr_dot(r, pa, pb, (unsigned long)K, MPFR_RNDN);
        t += now() - t0;
    }
    for (int64_t k = 0; k < K; k++) mpfr_clear(a[k]), mpfr_clear(b[k]);
    mpfr_clear(r);
    free(a), free(b), free(pa), free(pb);
    return (double)samples * (double)K / t;
#else
    (void)A, (void)B, (void)samples;
    return 0.0;
#endif
}

static void cpu_model(char *buf, size_t n) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    snprintf(buf, n, "unknown CPU");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10)) {
            char *p = strchr(line, ':');
            if (p) snprintf(buf, n, "%s", p + 2);
            buf[strcspn(buf, "\n")] = 0;
            break;
        }
    fclose(f);
}

int main(int argc, char **argv) {
    int64_t M = argc > 1 ? atoll(argv[1]) : 512, N = argc > 2 ? atoll(argv[2]) : 512,
            K = argc > 3 ? atoll(argv[3]) : 7168;
    if (argc > 4) omp_set_num_threads(atoi(argv[4]));
    if (M <= 0 || N <= 0 || K <= 0 || K % 16) {
        fprintf(stderr, "bench_gemm: usage: bench_gemm [M N K [threads]] (K a multiple of 16)\n");
        return 2;
    }
    char cpu[256];
    cpu_model(cpu, sizeof cpu);
    int threads = omp_get_max_threads();
    printf("bench_gemm: NVFP4 x NVFP4, M=%lld N=%lld K=%lld, %d thread(s), %s\n", (long long)M,
           (long long)N, (long long)K, threads, cpu);
    bmat A, B;
    fill(&A, M, K, 1), fill(&B, N, K, 2);
    double macs = (double)M * (double)N * (double)K;
    uint32_t *D = malloc((size_t)(M * N) * 4);
    float *F = malloc((size_t)(M * N) * 4);
    fp4_gemm_call o = fp4_gemm_call_make(&A.t, &B.t, D);
    double best_exact = 1e30, best_naive = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
        if (fp4_gemm_exact(&o)) {
            fprintf(stderr, "bench_gemm: %s\n", fp4_last_error());
            return 1;
        }
        double t1 = now();
        naive_f32(&A, &B, F);
        double t2 = now();
        if (t1 - t0 < best_exact) best_exact = t1 - t0;
        if (t2 - t1 < best_naive) best_naive = t2 - t1;
    }
    int64_t differ = 0;
    for (int64_t i = 0; i < M * N; i++) {
        uint32_t fb;
        memcpy(&fb, &F[i], 4);
        differ += fb != D[i];
    }
    double r_exact = macs / best_exact, r_naive = macs / best_naive;
    double r_mpfr = mpfr_dot_rate(&A, &B, 16);
    printf("%-44s %10s %12s\n", "variant", "GMAC/s", "GMAC/s/core");
    printf("%-44s %10.3f %12.3f\n", "exact oracle (fp4_gemm_exact, RN to FP32)", r_exact * 1e-9,
           r_exact * 1e-9 / threads);
    printf("%-44s %10.3f %12.3f\n", "(a) naive FP32 loop (CUTLASS host style)", r_naive * 1e-9,
           r_naive * 1e-9 / threads);
    if (r_mpfr > 0)
        printf("%-44s %10.4f %12.4f\n", "(b) mpfr_dot, 1 thread, 16 sampled outputs", r_mpfr * 1e-9,
               r_mpfr * 1e-9);
    printf("ratio exact / naive FP32 = %.2fx (goal >= 4x)\n", r_exact / r_naive);
    if (r_mpfr > 0)
        printf("ratio exact per core / mpfr_dot = %.0fx (goal >= 500x)\n", r_exact / threads / r_mpfr);
    printf("naive FP32 differs from the correctly rounded result on %lld of %lld outputs\n",
           (long long)differ, (long long)(M * N));
    free(A.codes), free(A.scales), free(B.codes), free(B.scales);
    free(D), free(F);
    return 0;
}
