/* test_gemm_bs.c - the exact GEMM oracle on every kind but NVFP4 x NVFP4
 * (MXFP4, MXFP6, MXFP8 E4M3/E5M2, DeepSeek FP8 1x128/128x128, plain FP8,
 * FP16, BF16, FP32, and mixed pairs) against MPFR bit for bit; NVFP4
 * through the wide accumulator (mixed with another kind) equals the NVFP4
 * fast path; NaN/Inf handling; bad arguments. MPFR side: exact sum of
 * element*scale products at 4096 bits, times alpha*gA*gB, plus beta*C, one
 * rounding with the output format's exponent range and subnormals. The
 * element values come from the codes through this file's own tables. */
#include "fp4ref.h"
#include "testutil.h"

#include <math.h>
#include <mpfr.h>
#include <string.h>

typedef struct opnd {
    fp4_tensor t;
    void *codes, *scales;
} opnd;

static fp4_format elem_of(fp4_tkind k) {
    switch (k) {
    case FP4_TK_NVFP4: case FP4_TK_MXFP4: case FP4_TK_E2M1: return FP4_FMT_E2M1;
    case FP4_TK_MXFP6_E2M3: case FP4_TK_E2M3: return FP4_FMT_E2M3;
    case FP4_TK_MXFP6_E3M2: case FP4_TK_E3M2: return FP4_FMT_E3M2;
    case FP4_TK_MXFP8_E5M2: case FP4_TK_E5M2: return FP4_FMT_E5M2;
    case FP4_TK_F16: return FP4_FMT_F16;
    case FP4_TK_BF16: return FP4_FMT_BF16;
    case FP4_TK_F32: return FP4_FMT_F32;
    default: return FP4_FMT_E4M3;
    }
}

/* A random finite code of f from 32 random bits (narrow exponent bands for
 * the wide formats so products stay representable in double). */
static uint64_t rand_code(fp4_format f, uint32_t r) {
    switch (f) {
    case FP4_FMT_E2M1: return r & 0xF;
    case FP4_FMT_E2M3: case FP4_FMT_E3M2: return r & 0x3F;
    case FP4_FMT_E4M3: { uint32_t c = r & 0xFF; return (c & 0x7F) == 0x7F ? c & 0xFE : c; }
    case FP4_FMT_E5M2: { uint32_t c = r & 0xFF; return (c & 0x7C) == 0x7C ? c & 0xFB : c; }
    case FP4_FMT_F16: return (r & 0x83FFu) | ((1u + (r >> 16) % 29u) << 10);
    case FP4_FMT_BF16: return (r & 0x807Fu) | ((60u + (r >> 16) % 130u) << 7);
    default: return (r & 0x807FFFFFu) | ((60u + (r >> 24) % 130u) << 23);
    }
}

/* Random operand of kind k. UE8M0 scales cover 2^-127..2^127 when `wide`
 * (outputs then overflow/underflow: also checked), else 2^-20..2^20. */
static opnd make(fp4_tkind k, int64_t rows, int64_t K, int64_t srows, int wide, uint32_t st) {
    opnd x;
    uint64_t seed = fp4t_seed();
    fp4_format f = elem_of(k);
    bool packed = k == FP4_TK_NVFP4 || k == FP4_TK_MXFP4;
    int cb = fp4_format_code_bytes(f);
    int64_t n = rows * K;
    x.codes = calloc((size_t)(n * cb + 1), 1);
    for (int64_t i = 0; i < n; i++) {
        uint64_t c = rand_code(f, fp4t_rand32(seed, st, i));
        if (packed) ((uint8_t *)x.codes)[i / 2] |= (uint8_t)(c << (4 * (i & 1)));
        else if (cb == 1) ((uint8_t *)x.codes)[i] = (uint8_t)c;
        else if (cb == 2) ((uint16_t *)x.codes)[i] = (uint16_t)c;
        else ((uint32_t *)x.codes)[i] = (uint32_t)c;
    }
    x.t = fp4_tensor_plain(f, rows, K, x.codes);
    x.t.packed = packed;
    x.scales = NULL;
    if (k == FP4_TK_NVFP4) x.t.scale_fmt = FP4_FMT_UE4M3, x.t.block = 16;
    else if (k == FP4_TK_FP8_BLOCK128) x.t.scale_fmt = FP4_FMT_F32, x.t.block = 128, x.t.block_rows = (int32_t)srows;
    else if (k >= FP4_TK_MXFP4 && k <= FP4_TK_MXFP8_E5M2) x.t.scale_fmt = FP4_FMT_UE8M0, x.t.block = 32;
    if (!fp4_tensor_scaled(&x.t)) return x;
    int64_t ns = fp4_tensor_scales_count(&x.t);
    if (k == FP4_TK_FP8_BLOCK128) {
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
            if (k == FP4_TK_NVFP4) s[i] = (uint8_t)(r % 0x7F);
            else s[i] = wide ? (uint8_t)(r % 0xFF) : (uint8_t)(107 + r % 41);
        }
        x.scales = s;
    }
    x.t.scales = x.scales;
    return x;
}

static void opnd_free(opnd *x) { free(x->codes), free(x->scales); }

/* Element (r, k) times its scale, from the codes (exact in double). */
static double value(const opnd *x, int64_t r, int64_t k) {
    const fp4_tensor *t = &x->t;
    int64_t i = r * t->cols + k;
    uint64_t code;
    if (t->packed) code = (((const uint8_t *)t->codes)[i / 2] >> (4 * (i & 1))) & 0xF;
    else if (fp4_format_code_bytes(t->elem) == 1) code = ((const uint8_t *)t->codes)[i];
    else if (fp4_format_code_bytes(t->elem) == 2) code = ((const uint16_t *)t->codes)[i];
    else code = ((const uint32_t *)t->codes)[i];
    double e = fp4_to_f64(t->elem, code);
    if (t->scale_fmt == FP4_FMT_COUNT) return e;
    int64_t sc = (t->cols + t->block - 1) / t->block, g = k / t->block;
    double s;
    if (t->scale_fmt == FP4_FMT_F32) s = ((const float *)t->scales)[(r / t->block_rows) * sc + g];
    else s = fp4_to_f64(t->scale_fmt, ((const uint8_t *)t->scales)[r * sc + g]);
    return e * s;
}

static uint64_t mpfr_expected(const opnd *A, const opnd *B, const float *C, int64_t m, int64_t n,
                              const fp4_gemm_call *o) {
    int64_t K = A->t.cols;
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
    mpfr_mul_d(s, s, (double)A->t.global_scale, MPFR_RNDN);
    mpfr_mul_d(s, s, (double)B->t.global_scale, MPFR_RNDN);
    if (o->beta != 0.0f) {
        mpfr_set_d(t, (double)o->beta, MPFR_RNDN);
        mpfr_mul_d(t, t, (double)C[m * B->t.rows + n], MPFR_RNDN);
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

static void check_pair(fp4_tkind ka, fp4_tkind kb, int64_t M, int64_t N, int64_t K, int64_t sa,
                       int64_t sb, int wide, fp4_format out, float beta, uint32_t st) {
    opnd A = make(ka, M, K, sa, wide, st), B = make(kb, N, K, sb, wide, st + 2);
    A.t.global_scale = 0.75f, B.t.global_scale = 1.25f;
    float *C = malloc((size_t)(M * N) * sizeof *C);
    for (int64_t i = 0; i < M * N; i++) C[i] = (float)((int32_t)fp4t_rand32(fp4t_seed(), st + 4, i)) / 1024.0f;
    void *D = malloc((size_t)(M * N) * 4);
    fp4_gemm_call o = fp4_gemm_call_make(&A.t, &B.t, D);
    o.C = C, o.out = out, o.alpha = 1.5f, o.beta = beta;
    int rc = fp4_gemm_exact(&o);
    fp4t_check(rc == 0, "%s x %s: %s", fp4_tkind_name(ka), fp4_tkind_name(kb), fp4_last_error());
    for (int64_t i = 0; rc == 0 && i < M * N; i++) {
        uint64_t want = mpfr_expected(&A, &B, C, i / N, i % N, &o), got = out_at(D, out, i);
        fp4t_check(got == want, "%s x %s M=%lld N=%lld K=%lld wide=%d out=%s (%lld,%lld): got 0x%llX want 0x%llX",
                   fp4_tkind_name(ka), fp4_tkind_name(kb), (long long)M, (long long)N, (long long)K,
                   wide, fp4_format_get(out)->name, (long long)(i / N), (long long)(i % N),
                   (unsigned long long)got, (unsigned long long)want);
    }
    opnd_free(&A), opnd_free(&B), free(C), free(D);
}

static void check_kind(fp4_tkind k, int64_t M, int64_t N, int64_t K, int64_t sa, int64_t sb,
                       int wide, fp4_format out, float beta, uint32_t st) {
    check_pair(k, k, M, N, K, sa, sb, wide, out, beta, st);
}

static void test_vs_mpfr(void) {
    uint32_t st = 100;
    const fp4_format outs[3] = {FP4_FMT_F32, FP4_FMT_F16, FP4_FMT_BF16};
    for (int f = 0; f < 3; f++, st += 100) {
        check_kind(FP4_TK_MXFP4, 5, 7, 96, 1, 1, 0, outs[f], 0.0f, st);
        check_kind(FP4_TK_MXFP4, 4, 6, 64, 1, 1, 1, outs[f], 0.5f, st + 6); /* full E8M0 range */
        check_kind(FP4_TK_MXFP6_E2M3, 3, 4, 64, 1, 1, 0, outs[f], 0.0f, st + 9);
        check_kind(FP4_TK_MXFP6_E3M2, 4, 3, 96, 1, 1, 1, outs[f], 0.25f, st + 10);
        check_kind(FP4_TK_MXFP8_E4M3, 5, 3, 64, 1, 1, 0, outs[f], 0.25f, st + 12);
        check_kind(FP4_TK_MXFP8_E5M2, 3, 5, 96, 1, 1, 1, outs[f], 0.0f, st + 18);
        check_kind(FP4_TK_FP8_BLOCK128, 3, 130, 256, 1, 128, 0, outs[f], 0.0f, st + 24);
        check_kind(FP4_TK_FP8_BLOCK128, 130, 2, 128, 128, 1, 0, outs[f], 1.0f, st + 30);
        check_kind(FP4_TK_FP8_BLOCK128, 2, 3, 200, 1, 1, 0, outs[f], 0.0f, st + 33); /* edge block */
        /* plain formats (no block scales): FP8, FP16, BF16, FP32, E2M1 */
        check_kind(FP4_TK_E4M3, 4, 5, 100, 1, 1, 0, outs[f], 0.5f, st + 40);
        check_kind(FP4_TK_E5M2, 5, 4, 77, 1, 1, 0, outs[f], 0.0f, st + 44);
        check_kind(FP4_TK_F16, 3, 6, 150, 1, 1, 0, outs[f], 0.0f, st + 48);
        check_kind(FP4_TK_BF16, 6, 3, 64, 1, 1, 0, outs[f], 0.75f, st + 52);
        check_kind(FP4_TK_F32, 4, 4, 33, 1, 1, 0, outs[f], 0.0f, st + 56);
        check_kind(FP4_TK_E2M1, 3, 3, 20, 1, 1, 0, outs[f], 0.0f, st + 60);
        /* mixed pairs: the W4A16 / W4A8 shapes, FP8 x BF16, MX x plain */
        check_pair(FP4_TK_BF16, FP4_TK_NVFP4, 3, 5, 64, 1, 1, 0, outs[f], 0.0f, st + 64);
        check_pair(FP4_TK_E4M3, FP4_TK_NVFP4, 4, 3, 96, 1, 1, 0, outs[f], 0.0f, st + 68);
        check_pair(FP4_TK_MXFP8_E4M3, FP4_TK_MXFP4, 2, 5, 64, 1, 1, 0, outs[f], 0.0f, st + 72);
        check_pair(FP4_TK_F32, FP4_TK_F16, 5, 2, 48, 1, 1, 0, outs[f], 0.0f, st + 76);
        check_kind(FP4_TK_NVFP4, 6, 5, 80, 1, 1, 0, outs[f], 0.0f, st + 80);
    }
}

/* NVFP4 through the wide accumulator equals the int64/int128 fast path: the
 * same values run once as NVFP4 x NVFP4 (fast path) and once with A's codes
 * unpacked to one per byte, which makes A a generic block-scaled E2M1
 * tensor (FP4_TK_OTHER) and sends the pair through gemm_bs.c. */
static void test_nvfp4_two_routes(void) {
    int64_t M = 19, N = 70, K = 1024;
    opnd A = make(FP4_TK_NVFP4, M, K, 1, 0, 900), B = make(FP4_TK_NVFP4, N, K, 1, 0, 902);
    uint8_t *unp = malloc((size_t)(M * K));
    e2m1_unpack(unp, A.codes, M * K);
    fp4_tensor Au = A.t; /* same values: E2M1 one per byte, UE4M3 / 16: kind "block-scaled" */
    Au.codes = unp, Au.packed = false;
    uint32_t *d1 = malloc((size_t)(M * N) * 4), *d2 = malloc((size_t)(M * N) * 4);
    fp4_gemm_call o = fp4_gemm_call_make(&A.t, &B.t, d1);
    fp4t_check(fp4_tensor_kind(&Au) == FP4_TK_OTHER && fp4_gemm_exact(&o) == 0, "fast route");
    o.A = &Au, o.D = d2;
    fp4t_check(fp4_gemm_exact(&o) == 0, "wide route: %s", fp4_last_error());
    int64_t diff = 0;
    for (int64_t i = 0; i < M * N; i++) diff += d1[i] != d2[i];
    fp4t_check(diff == 0, "NVFP4 routes differ on %lld outputs", (long long)diff);
    free(unp), free(d1), free(d2), opnd_free(&A), opnd_free(&B);
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
        fp4_tkind kind;
        uint8_t one, zero; /* element codes of 1.0 and +0 (E2M1 bytes hold two) */
    } kinds[] = {
        {FP4_TK_NVFP4, 0x22, 0x00},       {FP4_TK_MXFP4, 0x22, 0x00},
        {FP4_TK_MXFP8_E4M3, 0x38, 0x00},  {FP4_TK_MXFP8_E5M2, 0x3C, 0x00},
        {FP4_TK_FP8_BLOCK128, 0x38, 0x00},
    };
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        fp4_tkind kind = kinds[k].kind;
        bool fp4 = kind == FP4_TK_NVFP4 || kind == FP4_TK_MXFP4;
        int64_t rowbytes = fp4 ? K / 2 : K, nb = K / (kind == FP4_TK_NVFP4 ? 16 : kind == FP4_TK_FP8_BLOCK128 ? 128 : 32);
        uint8_t ac[M * K], bc[N * K], as8[M * K / 16], bs8[N * K / 16];
        float asf[M], bsf[N];
        memset(ac, kinds[k].one, (size_t)rowbytes), memset(ac + rowbytes, kinds[k].zero, (size_t)rowbytes);
        memset(bc, kinds[k].one, sizeof bc);
        uint8_t one_scale = kind == FP4_TK_NVFP4 ? 0x38 : 127;
        memset(as8, one_scale, sizeof as8), memset(bs8, one_scale, sizeof bs8);
        bs8[1 * nb + nb - 1] = kind == FP4_TK_NVFP4 ? 0x7F : 0xFF;
        for (int i = 0; i < M; i++) asf[i] = 1.0f;
        for (int i = 0; i < N; i++) bsf[i] = i == 1 ? NAN : 1.0f;
        fp4_tensor A, B;
        if (kind == FP4_TK_NVFP4) A = fp4_tensor_nvfp4(M, K, ac, as8, 1.0f), B = fp4_tensor_nvfp4(N, K, bc, bs8, 1.0f);
        else if (kind == FP4_TK_FP8_BLOCK128) A = fp4_tensor_fp8_block(M, K, ac, asf, 1), B = fp4_tensor_fp8_block(N, K, bc, bsf, 1);
        else {
            fp4_format f = kind == FP4_TK_MXFP4 ? FP4_FMT_E2M1 : kind == FP4_TK_MXFP8_E4M3 ? FP4_FMT_E4M3 : FP4_FMT_E5M2;
            A = fp4_tensor_mx(f, M, K, ac, as8), B = fp4_tensor_mx(f, N, K, bc, bs8);
        }
        uint32_t D[M * N];
        fp4_gemm_call o = fp4_gemm_call_make(&A, &B, D);
        if (!fp4t_check(fp4_gemm_exact(&o) == 0, "kind %s: %s", fp4_tkind_name(kind), fp4_last_error()))
            continue;
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++) {
                uint32_t d = D[m * N + n];
                if (n == 1)
                    fp4t_check((d & 0x7FFFFFFFu) > 0x7F800000u, "kind %s B NaN scale: D[%d][1] = 0x%08X, want NaN",
                               fp4_tkind_name(kind), m, d);
                else
                    fp4t_check(d == (m == 0 ? 0x43000000u : 0u), "kind %s: D[%d][%d] = 0x%08X want %s",
                               fp4_tkind_name(kind), m, n, d, m == 0 ? "128.0f" : "+0");
            }
    }
}

static void test_specials_and_errors(void) {
    /* MXFP4 one block: elements 1.0, scale 0xFF (NaN) -> NaN; E5M2 Inf element
     * against 1.0 -> +Inf; Inf against 0 -> NaN; +Inf and -Inf -> NaN. */
    uint8_t ones[16], s1[1] = {127}, snan[1] = {0xFF};
    memset(ones, 0x22, sizeof ones);
    fp4_tensor A = fp4_tensor_mx(FP4_FMT_E2M1, 1, 32, ones, s1), An = A;
    An.scales = snan;
    uint32_t d = 0;
    fp4_gemm_call o = fp4_gemm_call_make(&A, &A, &d);
    fp4_gemm_exact(&o);
    fp4t_check(d == 0x42000000u, "MXFP4 ones: got 0x%08X want 32.0f", d);
    o.A = &An;
    fp4_gemm_exact(&o);
    fp4t_check((d & 0x7FFFFFFFu) > 0x7F800000u, "NaN scale: got 0x%08X", d);
    uint8_t e5[32], e5z[32], ones5[32], e5n[32];
    memset(e5, 0x3C, sizeof e5); /* 1.0 */
    memset(e5z, 0x00, sizeof e5z);
    memset(ones5, 0x3C, sizeof ones5);
    e5[3] = 0x7C; /* +Inf */
    memcpy(e5n, e5, sizeof e5n);
    e5n[4] = 0xFC; /* -Inf next to +Inf */
    fp4_tensor X = fp4_tensor_mx(FP4_FMT_E5M2, 1, 32, e5, s1), Y = X, Z = X, W = X;
    Y.codes = ones5, Z.codes = e5z, W.codes = e5n;
    o.A = &X, o.B = &Y;
    fp4_gemm_exact(&o);
    fp4t_check(d == 0x7F800000u, "Inf * 1: got 0x%08X", d);
    o.B = &Z;
    fp4_gemm_exact(&o);
    fp4t_check((d & 0x7FFFFFFFu) > 0x7F800000u, "Inf * 0: got 0x%08X", d);
    o.A = &W, o.B = &Y;
    fp4_gemm_exact(&o);
    fp4t_check((d & 0x7FFFFFFFu) > 0x7F800000u, "Inf - Inf: got 0x%08X", d);
    o.A = &X, o.B = &Y, o.epi = FP4_EPI_F32;
    fp4_gemm_exact(&o);
    fp4t_check(d == 0x7F800000u, "Inf * 1, f32 epilogue: got 0x%08X", d);
    o.epi = FP4_EPI_EXACT;
    /* Errors. */
    A.cols = 48;
    o.A = o.B = &A;
    fp4t_check(fp4_gemm_exact(&o) != 0 && strstr(fp4_last_error(), "multiple"), "K=48 for MXFP4 accepted");
    float fs[1] = {1.0f};
    uint8_t f8[128] = {0};
    fp4_tensor F = fp4_tensor_fp8_block(1, 128, f8, fs, 0);
    o.A = o.B = &F;
    fp4t_check(fp4_gemm_exact(&o) != 0, "block_rows 0 accepted");
    uint16_t h[16] = {0};
    fp4_tensor Hs = fp4_tensor_plain(FP4_FMT_F16, 1, 16, h);
    Hs.scale_fmt = FP4_FMT_F32, Hs.block = 16, Hs.scales = fs;
    o.A = o.B = &Hs;
    fp4t_check(fp4_gemm_exact(&o) != 0 && strstr(fp4_last_error(), "8-bit"), "f16 with f32 scales accepted");
}

int main(void) {
    fp4t_begin("gemm_bs");
    test_specials_and_errors();
    test_nan_scale_b();
    test_nvfp4_two_routes();
    test_vs_mpfr();
    return fp4t_end();
}
