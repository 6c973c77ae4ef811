/* test_emu_exact.c - with an infinite alignment window the block-FMA model
 * must be the correctly rounded dot product:
 *  - FP16 / BF16 / E4M3 / E5M2 inputs: one block of K products plus an FP32
 *    (or FP16) C, F = exact, output in RNE/RZ/RU/RD with IEEE overflow,
 *    against MPFR (mpfr_sum at 2048 bits, then one rounding with the
 *    format's exponent range and mpfr_subnormalize). No code shared with
 *    emu/. BF16 operands over their whole exponent range exercise the GMP
 *    path (windows wider than 126 bits).
 *  - NVFP4: the GEMM driver with the whole K as one block equals the exact
 *    oracle fp4_gemm_exact (with the same FP32 epilogue
 *    order), for per-product and chunk scaling, F16 unpacking and
 *    normalized product exponents (all exact when nothing is truncated).
 * An exact zero sum is +0 in the model (Khattak-Mikaitis), so a zero MPFR
 * result is expected as +0. */
#include "test_emu_common.h"

#include <mpfr.h>

static mpfr_exp_t g_emin, g_emax;

static mpfr_rnd_t mpfr_mode(fp4_round r) {
    return r == FP4_RZ ? MPFR_RNDZ : r == FP4_RU ? MPFR_RNDU : r == FP4_RD ? MPFR_RNDD : MPFR_RNDN;
}

/* Correct rounding of x into f (F32 or F16) with exponent range and
 * subnormals; an exact zero gives +0. */
static uint64_t mpfr_to_code(fp4_format f, mpfr_t x, fp4_round r) {
    if (mpfr_zero_p(x)) return 0;
    const fp4_format_info *fi = fp4_format_get(f);
    mpfr_set_emin(fi->emin - fi->mbits + 1);
    mpfr_set_emax(fi->emax + 1);
    mpfr_t y;
    mpfr_init2(y, fi->mbits + 1);
    int t = mpfr_set(y, x, mpfr_mode(r));
    t = mpfr_check_range(y, t, mpfr_mode(r));
    mpfr_subnormalize(y, t, mpfr_mode(r));
    double d = mpfr_get_d(y, MPFR_RNDN);
    mpfr_clear(y);
    mpfr_set_emin(g_emin);
    mpfr_set_emax(g_emax);
    return et_code(f, d);
}

/* A random finite code of f: `wide` draws any code; otherwise the
 * exponent field is limited to a narrow band so terms cancel. */
static uint64_t rand_code(fp4_format f, uint64_t r, bool wide) {
    const fp4_format_info *fi = fp4_format_get(f);
    for (;; r = r * 6364136223846793005ull + 1442695040888963407ull) {
        uint64_t code = (r >> 11) & ((1ull << fi->bits) - 1);
        if (!wide) {
            uint64_t band = fi->ebits > 3 ? 8 : (1ull << fi->ebits) - 2;
            uint64_t e = fi->bias - band / 2 + ((r >> 40) % band);
            code = (code & ~(((1ull << fi->ebits) - 1) << fi->mbits)) | (e << fi->mbits);
        }
        if (fp4_decode(f, code).cls <= FP4_CLASS_FINITE) return code;
    }
}

static uint64_t rand_c(fp4_format acc, uint64_t r, bool wide) {
    if (r % 4 == 0) return 0;
    return rand_code(acc, r >> 2, wide);
}

typedef struct dotcase {
    fp4_format in, acc;
    fp4_round mode;
    int K;
    bool wide;
} dotcase;

static void check_dot(const dotcase *dc, uint32_t stream, int trials) {
    char spec[160];
    const fp4_format_info *ai = fp4_format_get(dc->acc);
    snprintf(spec, sizeof spec,
             "sm90-hgmma-f16:k=%d,block=%d,F=exact,minexp=none,acc=%s,out=%s%d,ovf=ieee", dc->K,
             dc->K, ai->name, fp4_round_name(dc->mode), ai->mbits);
    fp4emu_model m = et_model(spec);
    fp4emu_input in = fp4emu_input_plain(dc->in, dc->in);
    uint16_t A[FP4EMU_MAX_K], B[FP4EMU_MAX_K];
    mpfr_t terms[FP4EMU_MAX_K + 1], sum;
    mpfr_ptr ptrs[FP4EMU_MAX_K + 1];
    for (int i = 0; i <= dc->K; i++) mpfr_init2(terms[i], 128), ptrs[i] = terms[i];
    mpfr_init2(sum, 2048);
    for (int t = 0; t < trials; t++) {
        uint64_t seed = fp4t_seed(), base = (uint64_t)t * 1000;
        for (int i = 0; i < dc->K; i++) {
            uint64_t ca = rand_code(dc->in, fp4t_rand64(seed, stream, base + 2 * i), dc->wide);
            uint64_t cb = rand_code(dc->in, fp4t_rand64(seed, stream, base + 2 * i + 1), dc->wide);
            et_store(dc->in, A, i, ca), et_store(dc->in, B, i, cb);
            mpfr_set_d(terms[i], fp4_to_f64(dc->in, ca), MPFR_RNDN);
            mpfr_mul_d(terms[i], terms[i], fp4_to_f64(dc->in, cb), MPFR_RNDN); /* exact: 128 bits */
        }
        uint64_t c = rand_c(dc->acc, fp4t_rand64(seed, stream + 1, (uint64_t)t), dc->wide);
        mpfr_set_d(terms[dc->K], fp4_to_f64(dc->acc, c), MPFR_RNDN);
        mpfr_sum(sum, ptrs, (unsigned long)dc->K + 1, MPFR_RNDN); /* exact at 2048 bits */
        uint64_t want = mpfr_to_code(dc->acc, sum, dc->mode), got = 0;
        fp4emu_mma(&m, &in, A, B, NULL, NULL, c, &got);
        if (!fp4t_check(got == want, "%s K=%d %s %s wide=%d trial %d: got 0x%llX want 0x%llX",
                        fp4_format_get(dc->in)->name, dc->K, ai->name, fp4_round_name(dc->mode),
                        dc->wide, t, (unsigned long long)got, (unsigned long long)want))
            break;
    }
    for (int i = 0; i <= dc->K; i++) mpfr_clear(terms[i]);
    mpfr_clear(sum);
}

static void test_vs_mpfr(void) {
    const fp4_format ins[4] = {FP4_FMT_F16, FP4_FMT_BF16, FP4_FMT_E4M3, FP4_FMT_E5M2};
    const fp4_round modes[4] = {FP4_RNE, FP4_RZ, FP4_RU, FP4_RD};
    const int ks[4] = {1, 16, 64, 200};
    uint32_t stream = 100;
    for (int f = 0; f < 4; f++)
        for (int r = 0; r < 4; r++)
            for (int k = 0; k < 4; k++)
                for (int w = 0; w < 2; w++, stream += 2) {
                    dotcase dc = {ins[f], FP4_FMT_F32, modes[r], ks[k], w == 1};
                    check_dot(&dc, stream, 200);
                    if (r < 2 && ins[f] != FP4_FMT_BF16) { /* FP16 accumulation */
                        dc.acc = FP4_FMT_F16;
                        check_dot(&dc, stream + 1, 200);
                    }
                }
}

/* ------------------------------------------------------------------------ */
/* NVFP4 against the exact oracle                                            */
/* ------------------------------------------------------------------------ */

typedef struct nmat {
    uint8_t *codes, *scales;
    fp4_tensor m;
} nmat;

static nmat nmat_make(int64_t rows, int64_t k, uint32_t stream, float g) {
    nmat x = {malloc((size_t)(rows * k / 2)), malloc((size_t)(rows * k / 16)), {0}};
    for (int64_t i = 0; i < rows * k / 2; i++) x.codes[i] = (uint8_t)fp4t_rand32(fp4t_seed(), stream, i);
    for (int64_t i = 0; i < rows * k / 16; i++)
        x.scales[i] = (uint8_t)(fp4t_rand32(fp4t_seed(), stream + 1, i) % 0x7F); /* finite */
    x.m = fp4_tensor_nvfp4(rows, k, x.codes, x.scales, g);
    return x;
}

static void check_nvfp4(const char *variant, int64_t M, int64_t N, int64_t K, uint32_t stream) {
    nmat A = nmat_make(M, K, stream, 0.375f), B = nmat_make(N, K, stream + 2, 1.0f / 3.0f);
    float *C = malloc((size_t)(M * N) * sizeof *C);
    for (int64_t i = 0; i < M * N; i++)
        C[i] = ldexpf((float)(int32_t)fp4t_rand32(fp4t_seed(), stream + 4, i), -24);
    uint32_t *want = malloc((size_t)(M * N) * 4), *got = malloc((size_t)(M * N) * 4);
    fp4_gemm_call ro = fp4_gemm_call_make(&A.m, &B.m, want);
    ro.C = C, ro.epi = FP4_EPI_F32;
    ro.alpha = 1.25f, ro.beta = -0.75f;
    fp4t_check(fp4_gemm_exact(&ro) == 0, "oracle: %s", fp4_last_error());
    char spec[160];
    snprintf(spec, sizeof spec, "sm100-mxf4nvf4-cand-a:k=%lld,block=%lld,F=exact,minexp=none,"
             "out=rne23,ovf=ieee,%s", (long long)K, (long long)K, variant);
    fp4emu_model m = et_model(spec);
    fp4emu_gemm_opts eo = fp4emu_gemm_opts_default(&m);
    fp4_gemm_call ec = ro;
    ec.D = got;
    fp4t_check(fp4emu_gemm(&eo, &ec) == 0, "emu: %s", fp4_last_error());
    int64_t bad = 0;
    for (int64_t i = 0; i < M * N; i++) bad += got[i] != want[i];
    fp4t_check(bad == 0, "nvfp4 %s K=%lld: %lld of %lld outputs differ (first 0x%08X vs 0x%08X)",
               variant, (long long)K, (long long)bad, (long long)(M * N), got[0], want[0]);
    free(A.codes), free(A.scales), free(B.codes), free(B.scales), free(C), free(want), free(got);
}

static void test_vs_oracle(void) {
    const char *variants[4] = {"scale=product", "scale=chunk", "unpack=f16", "pexp=exact"};
    const int64_t ks[3] = {16, 64, 256};
    uint32_t stream = 5000;
    for (int v = 0; v < 4; v++)
        for (int k = 0; k < 3; k++, stream += 8) check_nvfp4(variants[v], 7, 9, ks[k], stream);
}

int main(void) {
    fp4t_begin("test_emu_exact");
    g_emin = mpfr_get_emin();
    g_emax = mpfr_get_emax();
    test_vs_mpfr();
    test_vs_oracle();
    return fp4t_end();
}
