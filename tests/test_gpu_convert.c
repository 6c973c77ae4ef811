/* test_gpu_convert.c - the GPU's FP32 -> E2M1 / E4M3 conversions (RNE,
 * satfinite) against ref/ on every E2M1/E4M3 boundary neighbourhood, the
 * special values and Philox-random inputs. Exits 77 (skip) without a GPU. */
#include "fp4kernels.h"
#include "fp4ref.h"
#include "testutil.h"

#include <math.h>
#include <string.h>

/* Inputs: +-(every code's value and midpoints) +- 0..3 ulps, specials, random. */
static int64_t make_inputs(float *x, int64_t cap) {
    int64_t n = 0;
    const fp4_format fmts[2] = {FP4_FMT_E2M1, FP4_FMT_E4M3};
    for (int f = 0; f < 2; f++)
        for (uint64_t c = 0; c < 0x80 && c < fp4_format_ncodes(fmts[f]) / 2; c++) {
            double v = fp4_to_f64(fmts[f], c), w = fp4_to_f64(fmts[f], c + 1);
            double pts[2] = {v, isnan(w) ? v * 1.03 : (v + w) / 2};
            for (int p = 0; p < 2; p++) {
                uint32_t b;
                float pf = (float)pts[p];
                memcpy(&b, &pf, 4);
                for (int d = -3; d <= 3 && n + 2 <= cap; d++) {
                    x[n++] = fp4t_f32_from_bits(b + (uint32_t)d);
                    x[n++] = -fp4t_f32_from_bits(b + (uint32_t)d);
                }
            }
        }
    const uint32_t specials[] = {0x00000000u, 0x80000000u, 0x7F800000u, 0xFF800000u, 0x7FC00000u,
                                 0xFFC00000u, 0x7F800001u, 0x00000001u, 0x807FFFFFu, 0x7F7FFFFFu};
    for (size_t i = 0; i < sizeof specials / 4 && n < cap; i++) x[n++] = fp4t_f32_from_bits(specials[i]);
    for (uint64_t i = 0; n < cap; i++) x[n++] = fp4t_f32_from_bits(fp4t_rand32(fp4t_seed(), 7, i));
    return n;
}

int main(void) {
    if (fp4k_device_count() == 0) {
        printf("SKIP: no CUDA device visible (%s)\n",
               fp4k_built_with_cuda() ? "built with CUDA" : "fp4sim built without CUDA");
        return 77;
    }
    fp4k_device_info di;
    if (fp4k_get_device_info(0, &di) == FP4K_OK)
        printf("device: %s (sm_%d%d), driver %d, runtime %d\n", di.name, di.cc_major, di.cc_minor,
               di.driver_version, di.runtime_version);
    fp4t_begin("gpu_convert");
    enum { N = 1 << 20 };
    float *x = malloc(N * sizeof *x);
    uint8_t *gpu = malloc(N), *ref = malloc(N);
    int64_t n = make_inputs(x, N);
    fp4_cvt_opts o = fp4_cvt_opts_default();
    const fp4_format fmts[2] = {FP4_FMT_E2M1, FP4_FMT_E4M3};
    for (int f = 0; f < 2; f++) {
        fp4k_status st = f == 0 ? fp4k_f32_to_e2m1_rne_sat(gpu, x, n) : fp4k_f32_to_e4m3_rne_sat(gpu, x, n);
        if (!fp4t_check(st == FP4K_OK, "kernel failed: %s", fp4_last_error())) break;
        fp4_f32_to_codes(fmts[f], ref, x, n, &o, NULL);
        for (int64_t i = 0; i < n; i++) {
            uint32_t b;
            memcpy(&b, &x[i], 4);
            fp4t_check(gpu[i] == ref[i], "%s x=0x%08X gpu=0x%02X ref=0x%02X",
                       fp4_format_get(fmts[f])->name, b, gpu[i], ref[i]);
        }
    }
    free(x), free(gpu), free(ref);
    return fp4t_end();
}
