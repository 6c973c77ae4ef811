/* test_formats_exhaustive.c - every FP16 and every BF16 bit pattern (NaNs
 * and Infs included) converted by fp4_convert to one target format, in every
 * rounding mode (RS with fixed and Philox-random bits, several widths) and
 * every policy, plus DAZ/FTZ/RELU combinations: code, ternary and flags must
 * equal the MPFR oracle's.
 *
 * Usage: test_formats_exhaustive TARGET
 *   TARGET = e2m1 | e2m3 | e3m2 | e4m3 | ue4m3 | e5m2 | ue8m0 | f16 | bf16 | f32
 *            (sources f16 and bf16), or "narrow": every code of every format
 *            of <= 8 bits into every format.
 * Level: FP4SIM_FORMATS_LEVEL (see mpfr_oracle.h); level 0 keeps every input
 * and every mode x policy, with fewer RS bit patterns and option pairs.
 */
#include "mpfr_oracle.h"
#include "testutil.h"

#include <string.h>


/* Stream id of the random rbits: (source, target, configuration). */
static uint32_t rbits_stream(fp4_format src, fp4_format dst, int k) {
    return 0x45580000u | ((uint32_t)src << 12) | ((uint32_t)dst << 8) | (uint32_t)k;
}

static void report(fp4_format src, fp4_format dst, uint64_t c, const fp4_cvt_opts *o,
                   fp4o_res got, fp4o_res want) {
    char buf[96];
#pragma omp critical(fp4_report)
    fp4t_check(0, "%s 0x%llx -> %s (%s): ref 0x%llx t=%d fl=0x%x, oracle 0x%llx t=%d fl=0x%x",
               fp4_format_get(src)->name, (unsigned long long)c, fp4_format_get(dst)->name,
               fp4o_opts_string(o, buf, sizeof buf), (unsigned long long)got.code, got.ternary,
               got.flags, (unsigned long long)want.code, want.ternary, want.flags);
}

/* All codes of src -> dst under every configuration. Returns checks done. */
static long sweep(fp4_format src, fp4_format dst, int level) {
    fp4o_config cfg[FP4O_MAX_CONFIGS];
    int nc = fp4o_configs(dst, level, cfg, FP4O_MAX_CONFIGS);
    int64_t n = (int64_t)fp4_format_ncodes(src);
    uint64_t seed = fp4t_seed();
    long checks = 0;
#pragma omp parallel for schedule(dynamic, 512) reduction(+ : checks)
    for (int64_t c = 0; c < n; c++) {
        for (int k = 0; k < nc; k++) {
            fp4_cvt_opts o = cfg[k].o;
            if (cfg[k].random_rbits) o.rbits = fp4t_rand32(seed, rbits_stream(src, dst, k), c);
            fp4o_res got = {~0ull, 0, 0}, want = {~0ull, 0, 0};
            got.ternary = fp4o_sgn(fp4_convert(dst, src, (uint64_t)c, &o, &got.code, &got.flags));
            want.ternary = fp4o_convert(dst, src, (uint64_t)c, &o, &want.code, &want.flags);
            if (fp4o_res_eq(got, want)) checks++;
            else report(src, dst, (uint64_t)c, &o, got, want);
        }
    }
    return checks;
}

int main(int argc, char **argv) {
    static char name[64];
    const char *arg = argc > 1 ? argv[1] : "e2m1";
    snprintf(name, sizeof name, "test_formats_exhaustive %s", arg);
    fp4o_init();
    fp4t_begin(name);
    int level = fp4o_level();
    if (strcmp(arg, "narrow") == 0) {
        static const fp4_format narrow[] = {FP4_FMT_E2M1, FP4_FMT_E2M3, FP4_FMT_E3M2,
                                            FP4_FMT_E4M3, FP4_FMT_UE4M3, FP4_FMT_E5M2,
                                            FP4_FMT_UE8M0};
        for (size_t i = 0; i < sizeof narrow / sizeof narrow[0]; i++)
            for (int d = 0; d < FP4_FMT_COUNT; d++)
                fp4t_g.checks += sweep(narrow[i], (fp4_format)d, level);
    } else {
        fp4_format dst;
        if (fp4_format_from_name(arg, &dst) != 0) {
            fprintf(stderr, "unknown target format %s\n", arg);
            return 2;
        }
        fp4t_g.checks += sweep(FP4_FMT_F16, dst, level);
        fp4t_g.checks += sweep(FP4_FMT_BF16, dst, level);
    }
    printf("level %d\n", level);
    return fp4t_end();
}
