/* consumer.c - a program outside the tree, built against an installed fp4sim
 * (tests/consumer/run.cmake builds it twice: CMake find_package and
 * pkg-config). It touches every installed library: the exact GEMM through
 * the engine registry (fp4conform -> fp4ref), an emu preset (fp4emu), the
 * model's option parser (fp4model) and the kernels' build report
 * (fp4kernels), and checks the GEMM bits against sums it computes itself. */
#include "fp4conform.h"
#include "fp4emu.h"
#include "fp4kernels.h"
#include "fp4model.h"
#include "fp4ref.h"

#include <stdio.h>
#include <string.h>

enum { M = 2, N = 3, K = 16 };

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

int main(void) {
    /* Small integers: every product and sum is exact in FP32 and double, so
     * the oracle's correctly rounded D equals the double sum here. */
    uint32_t a[M * K], b[N * K], d[M * N];
    for (int i = 0; i < M * K; i++) a[i] = f32_bits((float)(i % 7 - 3));
    for (int i = 0; i < N * K; i++) b[i] = f32_bits((float)(i % 5 - 2));
    fp4_tensor A = fp4_tensor_plain(FP4_FMT_F32, M, K, a);
    fp4_tensor B = fp4_tensor_plain(FP4_FMT_F32, N, K, b);
    fp4_gemm_call call = fp4_gemm_call_make(&A, &B, d);

    fp4_engine *e = NULL;
    if (fp4conf_engine_open("ref", &e) != 0 || fp4_engine_gemm(e, &call) != 0) {
        fprintf(stderr, "consumer: %s\n", fp4_last_error());
        return 1;
    }
    fp4_engine_close(e);
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += (double)((m * K + k) % 7 - 3) * (double)((n * K + k) % 5 - 2);
            if (d[m * N + n] != f32_bits((float)s)) {
                fprintf(stderr, "consumer: D[%d][%d] = 0x%08x, expected %g\n", m, n,
                        d[m * N + n], s);
                return 1;
            }
        }

    if (!fp4emu_preset_at(0)) {
        fprintf(stderr, "consumer: no emu presets\n");
        return 1;
    }
    fp4m_trig trig;
    if (fp4m_trig_parse("cr", &trig) != 0) {
        fprintf(stderr, "consumer: %s\n", fp4_last_error());
        return 1;
    }
    printf("consumer: fp4sim %s, exact GEMM ok, preset %s, CUDA kernels %s\n", FP4SIM_VERSION,
           fp4emu_preset_at(0)->name, fp4k_built_with_cuda() ? "built" : "not built");
    return 0;
}
