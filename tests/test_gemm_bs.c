/* test_gemm_bs.c - the exact block-scaled GEMM (MXFP4, MXFP8 E4M3/E5M2,
 * DeepSeek FP8 1x128/128x128) against MPFR bit for bit; NVFP4 through this
 * second route equals the NVFP4 oracle (fp4_gemm_nvfp4); NaN/Inf handling;
 * bad arguments. MPFR side: exact sum of element*scale products at 4096
 * bits, times alpha*gA*gB, plus beta*C, one rounding with the output
 * format's exponent range and subnormals. No code shared with ref/. */
#include "fp4ref.h"
#include "testutil.h"

#include <math.h>
#include <mpfr.h>
#include <string.h>

typedef struct bsm {
    fp4_bs_matrix m;
    uint8_t *codes;
    void *scales;
} bsm;

static int64_t nscales(fp4_bs_kind kind, int64_t rows, int64_t k, int64_t srows) {
    int64_t nb = k / fp4_bs_block(kind);
    return kind == FP4_BS_FP8_BLOCK128 ? ((rows + srows - 1) / srows) * nb : rows * nb;
}

/* Random operand. UE8M0 scales cover the whole range 2^-127..2^127 when
 * `wide` is set (outputs then overflow/underflow FP32: also checked), else
 * 2^-20..2^20. */
static bsm make(fp4_bs_kind kind, int64_t rows, int64_t k, int64_t srows, int wide, uint32_t st) {
    bsm x;
    uint64_t seed = fp4t_seed();
    bool fp4 = kind == FP4_BS_NVFP4 || kind == FP4_BS_MXFP4;
    int64_t nc = fp4 ? rows * k / 2 : rows * k, ns = nscales(kind, rows, k, srows);
    x.codes = malloc((size_t)nc + 1);
    for (int64_t i = 0; i < nc; i++) {
        uint8_t c = (uint8_t)fp4t_rand32(seed, st, i);
        if (kind == FP4_BS_MXFP8_E4M3 || kind == FP4_BS_FP8_BLOCK128)
            c = (c & 0x7F) == 0x7F ? (uint8_t)(c & 0xFE) : c; /* finite only */
        if (kind == FP4_BS_MXFP8_E5M2) c = (c & 0x7C) == 0x7C ? (uint8_t)(c & 0xFB) : c;
        x.codes[i] = c;
    }
    if (kind == FP4_BS_FP8_BLOCK128) {
        float *s = malloc((size_t)ns * sizeof *s);
        for (int64_t i = 0; i < ns; i++) {
            uint32_t r = fp4t_rand32(seed, st + 1, i);
            s[i] = ldexpf(1.0f + (float)(r & 0xFFFFFF) / 16777216.0f, (int)((r >> 24) % 40) - 30);
        }
        x.scales = s;
    } else {
        uint8_t *s = malloc((size_t)ns + 1);
        for (int64_t i = 0; i < ns; i++) {
            uint32_t r = fp4t_rand32(seed, st + 1, i);
            if (kind == FP4_BS_NVFP4) s[i] = (uint8_t)(r % 0x7F);
            else s[i] = wide ? (uint8_t)(r % 0xFF) : (uint8_t)(107 + r % 41);
        }
        x.scales = s;
    }
    x.m = (fp4_bs_matrix){kind, rows, k, x.codes, x.scales, srows, 1.0f};
    return x;
}

static void bsm_free(bsm *x) { free(x->codes), free(x->scales); }

static double value(const bsm *x, int64_t r, int64_t k) {
    const fp4_bs_matrix *m = &x->m;
    double e;
    if (m->kind == FP4_BS_NVFP4 || m->kind == FP4_BS_MXFP4) {
        uint8_t b = m->codes[r * (m->k / 2) + k / 2];
        e = fp4_to_f64(FP4_FMT_E2M1, (k & 1) ? b >> 4 : b & 0xF);
    } else {
        e = fp4_to_f64(m->kind == FP4_BS_MXFP8_E5M2 ? FP4_FMT_E5M2 : FP4_FMT_E4M3,
                       m->codes[r * m->k + k]);
    }
    int64_t nb = m->k / fp4_bs_block(m->kind), g = k / fp4_bs_block(m->kind);
    double s;
    if (m->kind == FP4_BS_FP8_BLOCK128) s = ((const float *)m->scales)[(r / m->scale_rows) * nb + g];
    else
        s = fp4_to_f64(m->kind == FP4_BS_NVFP4 ? FP4_FMT_UE4M3 : FP4_FMT_UE8M0,
                       ((const uint8_t *)m->scales)[r * nb + g]);
    return e * s; /* exact: <= 24+4 significant bits, exponent in range */
}

static uint64_t mpfr_expected(const bsm *A, const bsm *B, const float *C, int64_t m, int64_t n,
                              const fp4_gemm_opts *o) {
    int64_t K = A->m.k;
    mpfr_t s, t;
    mpfr_init2(s, 4096);
    mpfr_init2(t, 4096);
    mpfr_set_zero(s, 1);
    for (int64_t k = 0; k < K; k++) {
        mpfr_set_d(t, value(A, m, k), MPFR_RNDN);
        mpfr_mul_d(t, t, value(B, n, k), MPFR_RNDN); /* exact at 4096 bits */
        mpfr_add(s, s, t, MPFR_RNDN);                /* exact: span < 1500 bits */
    }
    mpfr_mul_d(s, s, (double)o->alpha, MPFR_RNDN);
    mpfr_mul_d(s, s, (double)A->m.global_scale, MPFR_RNDN);
    mpfr_mul_d(s, s, (double)B->m.global_scale, MPFR_RNDN);
    if (o->beta != 0.0f) {
        mpfr_set_d(t, (double)o->beta, MPFR_RNDN);
        mpfr_mul_d(t, t, (double)C[m * B->m.rows + n], MPFR_RNDN);
        mpfr_add(s, s, t, MPFR_RNDN);
    }
    const fp4_format_info *fi = fp4_format_get(o->out);
    mpfr_exp_t emin = mpfr_get_emin(), emax = mpfr_get_emax();
    mpfr_set_emin(fi->emin - fi->mbits + 1);
    mpfr_set_emax(fi->emax + 1);
    mpfr_t r;
    mpfr_init2(r, fi->mbits + 1);
    int tr = mpfr_set(r, s, MPFR_RNDN);
    tr = mpfr_check_range(r, tr, MPFR_RNDN);
    mpfr_subnormalize(r, tr, MPFR_RNDN);
    double d = mpfr_get_d(r, MPFR_RNDN);
    mpfr_set_emin(emin);
    mpfr_set_emax(emax);
    mpfr_clears(s, t, r, (mpfr_ptr)0);
    fp4_cvt_opts co = {FP4_RNE, FP4_POLICY_NOSAT, 0, 0, 0};
    uint64_t code = 0;
    fp4_encode_f64(o->out, d, &co, &code, NULL); /* d representable: exact */
    return code;
}

static uint64_t out_at(const void *D, fp4_format f, int64_t i) {
    return f == FP4_FMT_F32 ? ((const uint32_t *)D)[i] : ((const uint16_t *)D)[i];
}

static void check_kind(fp4_bs_kind kind, int64_t M, int64_t N, int64_t K, int64_t sa, int64_t sb,
                       int wide, fp4_format out, float beta, uint32_t st) {
    bsm A = make(kind, M, K, sa, wide, st), B = make(kind, N, K, sb, wide, st + 2);
    A.m.global_scale = 0.75f, B.m.global_scale = 1.25f;
    float *C = malloc((size_t)(M * N) * sizeof *C);
    for (int64_t i = 0; i < M * N; i++) C[i] = (float)((int32_t)fp4t_rand32(fp4t_seed(), st + 4, i)) / 1024.0f;
    void *D = malloc((size_t)(M * N) * 4);
    fp4_gemm_opts o = fp4_gemm_opts_default();
    o.out = out, o.alpha = 1.5f, o.beta = beta;
    int rc = fp4_gemm_block_scaled(&A.m, &B.m, C, D, &o);
    fp4t_check(rc == 0, "kind %d: %s", kind, fp4_last_error());
    for (int64_t i = 0; rc == 0 && i < M * N; i++) {
        uint64_t want = mpfr_expected(&A, &B, C, i / N, i % N, &o), got = out_at(D, out, i);
        fp4t_check(got == want, "kind %d M=%lld N=%lld K=%lld wide=%d out=%s (%lld,%lld): got 0x%llX want 0x%llX",
                   kind, (long long)M, (long long)N, (long long)K, wide, fp4_format_get(out)->name,
                   (long long)(i / N), (long long)(i % N), (unsigned long long)got,
                   (unsigned long long)want);
    }
    bsm_free(&A), bsm_free(&B), free(C), free(D);
}

static void test_vs_mpfr(void) {
    uint32_t st = 100;
    const fp4_format outs[3] = {FP4_FMT_F32, FP4_FMT_F16, FP4_FMT_BF16};
    for (int f = 0; f < 3; f++, st += 50) {
        check_kind(FP4_BS_MXFP4, 5, 7, 96, 1, 1, 0, outs[f], 0.0f, st);
        check_kind(FP4_BS_MXFP4, 4, 6, 64, 1, 1, 1, outs[f], 0.5f, st + 6); /* full E8M0 range */
        check_kind(FP4_BS_MXFP8_E4M3, 5, 3, 64, 1, 1, 0, outs[f], 0.25f, st + 12);
        check_kind(FP4_BS_MXFP8_E5M2, 3, 5, 96, 1, 1, 1, outs[f], 0.0f, st + 18);
        check_kind(FP4_BS_FP8_BLOCK128, 3, 130, 256, 1, 128, 0, outs[f], 0.0f, st + 24);
        check_kind(FP4_BS_FP8_BLOCK128, 130, 2, 128, 128, 1, 0, outs[f], 1.0f, st + 30);
        check_kind(FP4_BS_NVFP4, 6, 5, 80, 1, 1, 0, outs[f], 0.0f, st + 36);
    }
}

/* NVFP4 via the wide accumulator equals the int64/int128 fast oracle. */
static void test_nvfp4_two_routes(void) {
    int64_t M = 19, N = 70, K = 1024;
    bsm A = make(FP4_BS_NVFP4, M, K, 1, 0, 900), B = make(FP4_BS_NVFP4, N, K, 1, 0, 902);
    fp4_nvfp4_matrix a = {M, K, A.codes, A.scales, 1.0f}, b = {N, K, B.codes, B.scales, 1.0f};
    uint32_t *d1 = malloc((size_t)(M * N) * 4), *d2 = malloc((size_t)(M * N) * 4);
    fp4_gemm_opts o = fp4_gemm_opts_default();
    fp4_gemm_nvfp4(&a, &b, NULL, d1, &o);
    fp4_gemm_block_scaled(&A.m, &B.m, NULL, d2, &o);
    int64_t diff = 0;
    for (int64_t i = 0; i < M * N; i++) diff += d1[i] != d2[i];
    fp4t_check(diff == 0, "NVFP4 routes differ on %lld outputs", (long long)diff);
    free(d1), free(d2), bsm_free(&A), bsm_free(&B);
}

/* A NaN scale in B (issue 16 item 3a) - UE4M3 0x7F for NVFP4, UE8M0 0xFF
 * for MXFP4/MXFP8 (OCP MX v1.0: E8M0 0xFF is NaN), an FP32 NaN for the FP8
 * 128-blocks - makes its output column NaN, whatever A holds there (A's
 * row 1 is all zeros: NaN * 0 = NaN). A: row 0 all 1.0, row 1 all +0; B:
 * three rows of 1.0, every scale 1.0 (UE4M3 0x38, UE8M0 127, 1.0f) but a
 * NaN in row 1's last block. K = 128: off the NaN column row 0 gives 128,
 * row 1 +0. A B-side NaN scale used to be able to act as zero unnoticed. */
static void test_nan_scale_b(void) {
    enum { K = 128, M = 2, N = 3 };
    static const struct {
        fp4_bs_kind kind;
        uint8_t one, zero; /* element codes of 1.0 and +0 (E2M1 bytes hold two) */
    } kinds[] = {
        {FP4_BS_NVFP4, 0x22, 0x00},       {FP4_BS_MXFP4, 0x22, 0x00},
        {FP4_BS_MXFP8_E4M3, 0x38, 0x00},  {FP4_BS_MXFP8_E5M2, 0x3C, 0x00},
        {FP4_BS_FP8_BLOCK128, 0x38, 0x00},
    };
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        fp4_bs_kind kind = kinds[k].kind;
        bool fp4 = kind == FP4_BS_NVFP4 || kind == FP4_BS_MXFP4;
        int64_t rowbytes = fp4 ? K / 2 : K, nb = K / fp4_bs_block(kind);
        uint8_t ac[M * K], bc[N * K], as8[M * K / 16], bs8[N * K / 16];
        float asf[M], bsf[N];
        memset(ac, kinds[k].one, (size_t)rowbytes), memset(ac + rowbytes, kinds[k].zero, (size_t)rowbytes);
        memset(bc, kinds[k].one, sizeof bc);
        uint8_t one_scale = kind == FP4_BS_NVFP4 ? 0x38 : 127;
        memset(as8, one_scale, sizeof as8), memset(bs8, one_scale, sizeof bs8);
        bs8[1 * nb + nb - 1] = kind == FP4_BS_NVFP4 ? 0x7F : 0xFF;
        for (int i = 0; i < M; i++) asf[i] = 1.0f;
        for (int i = 0; i < N; i++) bsf[i] = i == 1 ? NAN : 1.0f;
        bool f32s = kind == FP4_BS_FP8_BLOCK128;
        fp4_bs_matrix A = {kind, M, K, ac, f32s ? (const void *)asf : as8, 1, 1.0f};
        fp4_bs_matrix B = {kind, N, K, bc, f32s ? (const void *)bsf : bs8, 1, 1.0f};
        uint32_t D[M * N];
        fp4_gemm_opts o = fp4_gemm_opts_default();
        if (!fp4t_check(fp4_gemm_block_scaled(&A, &B, NULL, D, &o) == 0, "kind %d: %s", kind,
                        fp4_last_error()))
            continue;
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++) {
                uint32_t d = D[m * N + n];
                if (n == 1)
                    fp4t_check((d & 0x7FFFFFFFu) > 0x7F800000u, "kind %d B NaN scale: D[%d][1] = 0x%08X, want NaN",
                               kind, m, d);
                else
                    fp4t_check(d == (m == 0 ? 0x43000000u : 0u), "kind %d: D[%d][%d] = 0x%08X want %s", kind,
                               m, n, d, m == 0 ? "128.0f" : "+0");
            }
    }
}

static void test_specials_and_errors(void) {
    /* MXFP4 one block: elements 1.0, scale 0xFF (NaN) -> NaN; E5M2 Inf element
     * against 1.0 -> +Inf; Inf against 0 -> NaN. */
    uint8_t ones[16], s1[1] = {127}, snan[1] = {0xFF};
    memset(ones, 0x22, sizeof ones);
    fp4_bs_matrix A = {FP4_BS_MXFP4, 1, 32, ones, s1, 1, 1.0f}, An = A;
    An.scales = snan;
    uint32_t d = 0;
    fp4_gemm_opts o = fp4_gemm_opts_default();
    fp4_gemm_block_scaled(&A, &A, NULL, &d, &o);
    fp4t_check(d == 0x42000000u, "MXFP4 ones: got 0x%08X want 32.0f", d);
    fp4_gemm_block_scaled(&An, &A, NULL, &d, &o);
    fp4t_check((d & 0x7FFFFFFFu) > 0x7F800000u, "NaN scale: got 0x%08X", d);
    uint8_t e5[32], e5z[32];
    memset(e5, 0x3C, sizeof e5); /* 1.0 */
    memset(e5z, 0x00, sizeof e5z);
    e5[3] = 0x7C; /* +Inf */
    fp4_bs_matrix X = {FP4_BS_MXFP8_E5M2, 1, 32, e5, s1, 1, 1.0f}, Y = X, Z = X;
    uint8_t ones5[32];
    memset(ones5, 0x3C, sizeof ones5);
    Y.codes = ones5;
    Z.codes = e5z;
    fp4_gemm_block_scaled(&X, &Y, NULL, &d, &o);
    fp4t_check(d == 0x7F800000u, "Inf * 1: got 0x%08X", d);
    fp4_gemm_block_scaled(&X, &Z, NULL, &d, &o);
    fp4t_check((d & 0x7FFFFFFFu) > 0x7F800000u, "Inf * 0: got 0x%08X", d);
    /* Errors. */
    A.k = 48;
    fp4t_check(fp4_gemm_block_scaled(&A, &A, NULL, &d, &o) != 0 && strstr(fp4_last_error(), "multiple"),
               "K=48 for MXFP4 accepted");
    A.k = 32;
    fp4t_check(fp4_gemm_block_scaled(&A, &X, NULL, &d, &o) != 0, "mixed kinds accepted");
    o.acc = FP4_ACC_SEQ_F32;
    fp4t_check(fp4_gemm_block_scaled(&A, &A, NULL, &d, &o) != 0, "non-exact mode accepted");
    o.acc = FP4_ACC_EXACT;
    float fs[1] = {1.0f};
    uint8_t f8[128] = {0};
    fp4_bs_matrix F = {FP4_BS_FP8_BLOCK128, 1, 128, f8, fs, 7, 1.0f};
    fp4t_check(fp4_gemm_block_scaled(&F, &F, NULL, &d, &o) != 0, "scale_rows 7 accepted");
}

int main(void) {
    fp4t_begin("gemm_bs");
    test_specials_and_errors();
    test_nan_scale_b();
    test_nvfp4_two_routes();
    test_vs_mpfr();
    return fp4t_end();
}
