/* test_formats_long.c - all 2^32 FP32 bit patterns -> e2m1 and -> e4m3 (RNE,
 * satfinite) through fp4_encode_f32, against the MPFR oracle: code, ternary
 * and flags. OpenMP over the inputs; progress on stderr every 1/16 of the run.
 * Label "long" (not in default CI): ctest --test-dir build -L long.
 *
 * Usage: test_formats_long [COUNT [START]]
 *   COUNT inputs (default 2^32) from bit pattern START (default 0), e.g.
 *   test_formats_long 0x4000000 0x3F000000 for 2^26 inputs around 0.5..2. */
#include "mpfr_oracle.h"
#include "testutil.h"

#include <omp.h>
#include <string.h>

static void report(fp4_format f, uint32_t bits, fp4o_res got, fp4o_res want) {
    float x;
    memcpy(&x, &bits, sizeof x);
#pragma omp critical(fp4_report)
    fp4t_check(0, "f32 0x%08x (%a) -> %s: ref 0x%llx t=%d fl=0x%x, oracle 0x%llx t=%d fl=0x%x",
               bits, (double)x, fp4_format_get(f)->name, (unsigned long long)got.code,
               got.ternary, got.flags, (unsigned long long)want.code, want.ternary, want.flags);
}

static long check(fp4_format f, uint32_t bits, const fp4_cvt_opts *o) {
    float x;
    memcpy(&x, &bits, sizeof x);
    fp4o_res got = {~0ull, 0, 0}, want = {~0ull, 0, 0};
    got.ternary = fp4o_sgn(fp4_encode_f32(f, x, o, &got.code, &got.flags));
    want.ternary = fp4o_encode_f32(f, x, o, &want.code, &want.flags);
    if (fp4o_res_eq(got, want)) return 1;
    report(f, bits, got, want);
    return 0;
}

int main(int argc, char **argv) {
    uint64_t count = argc > 1 ? strtoull(argv[1], NULL, 0) : (1ull << 32);
    uint64_t start = argc > 2 ? strtoull(argv[2], NULL, 0) : 0;
    if (start + count > (1ull << 32)) count = (1ull << 32) - start;
    fp4o_init();
    fp4t_begin("test_formats_long");
    fp4_cvt_opts o = fp4_cvt_opts_default(); /* RNE, satfinite */
    const uint64_t chunk = 1u << 16, step = count / 16 ? count / 16 : 1;
    uint64_t done = 0, next_report = step;
    long checks = 0;
    double t0 = omp_get_wtime();
#pragma omp parallel for schedule(dynamic, 1) reduction(+ : checks)
    for (uint64_t c0 = 0; c0 < count; c0 += chunk) {
        uint64_t end = c0 + chunk < count ? c0 + chunk : count;
        for (uint64_t i = c0; i < end; i++) {
            uint32_t bits = (uint32_t)(start + i);
            checks += check(FP4_FMT_E2M1, bits, &o) + check(FP4_FMT_E4M3, bits, &o);
        }
#pragma omp critical(fp4_progress)
        {
            done += end - c0;
            if (done >= next_report || done == count) {
                double t = omp_get_wtime() - t0;
                fprintf(stderr, "test_formats_long: %llu / %llu inputs (%.1f%%), %.0f s, "
                        "about %.0f s left\n", (unsigned long long)done,
                        (unsigned long long)count, 100.0 * (double)done / (double)count, t,
                        t * (double)(count - done) / (double)done);
                while (next_report <= done) next_report += step;
            }
        }
    }
    fp4t_g.checks += checks;
    printf("test_formats_long: %llu inputs from 0x%08llx, 2 targets, %d threads, %.1f s\n",
           (unsigned long long)count, (unsigned long long)start, omp_get_max_threads(),
           omp_get_wtime() - t0);
    return fp4t_end();
}
