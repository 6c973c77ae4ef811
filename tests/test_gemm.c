/* test_gemm.c - the exact NVFP4 GEMM oracle against MPFR, bit for bit, plus
 * the old non-exact reference modes (now the emu presets cutlass-host-f32
 * and f16-blocks) against straightforward re-implementations, hand-derived
 * cases, special scales, bad arguments, output windows and thread-count
 * independence.
 *
 * MPFR side: each output is sum_k (a_k*sa)(b_k*sb) computed with mpfr_sum at
 * a precision large enough to be exact, multiplied by alpha*gA*gB and added
 * to beta*C exactly, then rounded once to the output format with the
 * format's exponent range and subnormals (mpfr_check_range +
 * mpfr_subnormalize) - no code shared with ref/gemm.c. */
#include "fp4emu.h"
#include "fp4ref.h"
#include "testutil.h"

#include <math.h>
#include <mpfr.h>
#include <omp.h>
#include <string.h>

static const double k_e2m1[16] = {0, .5, 1, 1.5, 2, 3, 4, 6, -0.0, -.5, -1, -1.5, -2, -3, -4, -6};

typedef struct mat {
    int64_t rows, k;
    uint8_t *codes, *scales;
    fp4_tensor m;
} mat;

static double ue4m3_value(uint8_t b) { return fp4_to_f64(FP4_FMT_UE4M3, b); }

/* Random matrix; scale_kind: 0 random finite (incl. zero, subnormal, 448),
 * 1 all 0x38 (1.0). */
static mat mat_make(int64_t rows, int64_t k, uint32_t stream, int scale_kind, float g) {
    mat x = {rows, k, malloc((size_t)(rows * k / 2 + 1)), malloc((size_t)(rows * k / 16 + 1)), {0}};
    uint64_t seed = fp4t_seed();
    for (int64_t i = 0; i < rows * k / 2; i++) x.codes[i] = (uint8_t)fp4t_rand32(seed, stream, i);
    for (int64_t i = 0; i < rows * k / 16; i++) {
        uint32_t r = fp4t_rand32(seed, stream + 1000, i);
        uint8_t b = (uint8_t)(r % 0x7F); /* 0x00..0x7E: every finite UE4M3 */
        if ((r >> 8) % 16 == 0) b = 0x7E;
        if ((r >> 8) % 16 == 1) b = (uint8_t)((r >> 16) % 8); /* zero / subnormal */
        x.scales[i] = scale_kind == 1 ? 0x38 : b;
    }
    x.m = fp4_tensor_nvfp4(rows, k, x.codes, x.scales, g);
    return x;
}

static void mat_free(mat *x) { free(x->codes), free(x->scales); }

static double elem(const mat *x, int64_t r, int64_t c) {
    uint8_t byte = x->codes[r * (x->k / 2) + c / 2];
    uint8_t code = (c & 1) ? byte >> 4 : byte & 0xF;
    return k_e2m1[code] * ue4m3_value(x->scales[r * (x->k / 16) + c / 16]);
}

static mpfr_exp_t g_emin, g_emax;

/* MPFR rounding of `exact` into format f (f32/f16/bf16) in mode rnd. */
static uint64_t mpfr_round_to(fp4_format f, mpfr_t exact, mpfr_rnd_t rnd) {
    const fp4_format_info *fi = fp4_format_get(f);
    int prec = fi->mbits + 1;
    mpfr_set_emin(fi->emin - fi->mbits + 1); /* MPFR exponents: x = m * 2^e, m in [1/2, 1) */
    mpfr_set_emax(fi->emax + 1);
    mpfr_t r;
    mpfr_init2(r, prec);
    int t = mpfr_set(r, exact, rnd);
    t = mpfr_check_range(r, t, rnd);
    mpfr_subnormalize(r, t, rnd);
    double d = mpfr_get_d(r, MPFR_RNDN); /* exact: r fits a double */
    mpfr_clear(r);
    mpfr_set_emin(g_emin);
    mpfr_set_emax(g_emax);
    uint64_t code = 0;
    fp4_cvt_opts o = {FP4_RNE, FP4_POLICY_NOSAT, 0, 0, 0}; /* d is representable: exact */
    fp4_encode_f64(f, d, &o, &code, NULL);
    return code;
}

static mpfr_rnd_t to_mpfr_rnd(fp4_round r) {
    switch (r) {
    case FP4_RZ: return MPFR_RNDZ;
    case FP4_RU: return MPFR_RNDU;
    case FP4_RD: return MPFR_RNDD;
    default: return MPFR_RNDN;
    }
}

/* Exact expected output code for (m, n) via MPFR. */
static uint64_t mpfr_output(const mat *A, const mat *B, const float *C, int64_t m, int64_t n,
                            const fp4_gemm_call *o) {
    int64_t K = A->k;
    mpfr_t *terms = malloc((size_t)K * sizeof *terms);
    mpfr_ptr *ptrs = malloc((size_t)K * sizeof *ptrs);
    for (int64_t k = 0; k < K; k++) {
        mpfr_init2(terms[k], 64);
        mpfr_set_d(terms[k], elem(A, m, k), MPFR_RNDN);       /* exact: <= 6 bits */
        mpfr_mul_d(terms[k], terms[k], elem(B, n, k), MPFR_RNDN); /* exact: <= 12 bits */
        ptrs[k] = terms[k];
    }
    mpfr_t s, c;
    mpfr_init2(s, 2048); /* exact for any test shape (terms span < 2^60 * K) */
    mpfr_init2(c, 2048);
    mpfr_sum(s, ptrs, (unsigned long)K, MPFR_RNDN);
    mpfr_mul_d(s, s, (double)o->alpha, MPFR_RNDN);
    mpfr_mul_d(s, s, (double)A->m.global_scale, MPFR_RNDN);
    mpfr_mul_d(s, s, (double)B->m.global_scale, MPFR_RNDN);
    if (o->beta != 0.0f) {
        mpfr_set_d(c, (double)o->beta, MPFR_RNDN);
        mpfr_mul_d(c, c, (double)C[m * B->rows + n], MPFR_RNDN);
        mpfr_add(s, s, c, MPFR_RNDN);
    }
    uint64_t code = mpfr_round_to(o->out, s, to_mpfr_rnd(o->out_round));
    for (int64_t k = 0; k < K; k++) mpfr_clear(terms[k]);
    free(terms), free(ptrs);
    mpfr_clear(s), mpfr_clear(c);
    return code;
}

static uint64_t out_at(const void *D, fp4_format f, int64_t i) {
    return f == FP4_FMT_F32 ? ((const uint32_t *)D)[i] : ((const uint16_t *)D)[i];
}

/* Runs the oracle on one shape and compares `samples` outputs (all if 0). */
static void check_exact_shape(int64_t M, int64_t N, int64_t K, fp4_format out, fp4_round rnd,
                              float alpha, float beta, int64_t samples, uint32_t stream) {
    mat A = mat_make(M, K, stream, 0, 1.0f), B = mat_make(N, K, stream + 1, 0, 1.0f);
    A.m.global_scale = ldexpf(1.0f + (float)(stream % 7) / 8.0f, -3);
    B.m.global_scale = 0.7f;
    float *C = malloc((size_t)(M * N + 1) * sizeof *C);
    for (int64_t i = 0; i < M * N; i++)
        C[i] = ldexpf((float)(int32_t)fp4t_rand32(fp4t_seed(), stream + 2, i), -20);
    void *D = malloc((size_t)(M * N + 1) * 4);
    fp4_gemm_call o = fp4_gemm_call_make(&A.m, &B.m, D);
    o.C = C, o.out = out, o.out_round = rnd, o.alpha = alpha, o.beta = beta;
    int rc = fp4_gemm_exact(&o);
    fp4t_check(rc == 0, "gemm failed: %s", fp4_last_error());
    int64_t total = M * N, step = samples && samples < total ? total / samples : 1;
    for (int64_t i = 0; rc == 0 && i < total; i += step) {
        int64_t m = i / N, n = i % N;
        uint64_t want = mpfr_output(&A, &B, C, m, n, &o), got = out_at(D, out, i);
        fp4t_check(got == want, "M=%lld N=%lld K=%lld out=%s rnd=%s (m,n)=(%lld,%lld): got 0x%llX want 0x%llX",
                   (long long)M, (long long)N, (long long)K, fp4_format_get(out)->name,
                   fp4_round_name(rnd), (long long)m, (long long)n, (unsigned long long)got,
                   (unsigned long long)want);
    }
    mat_free(&A), mat_free(&B), free(C), free(D);
}

static void test_exact_vs_mpfr(void) {
    const int64_t shapes[][3] = {{1, 1, 16}, {3, 5, 16}, {7, 33, 80}, {33, 65, 64},
                                 {17, 40, 1008}, {2, 3, 4096}};
    const fp4_format outs[3] = {FP4_FMT_F32, FP4_FMT_F16, FP4_FMT_BF16};
    const fp4_round rnds[4] = {FP4_RNE, FP4_RZ, FP4_RU, FP4_RD};
    uint32_t stream = 10;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int f = 0; f < 3; f++)
            for (int r = 0; r < 4; r++, stream += 3) {
                float beta = (r % 2) ? 0.0f : 0.375f;
                check_exact_shape(shapes[s][0], shapes[s][1], shapes[s][2], outs[f], rnds[r], 1.5f,
                                  beta, 0, stream);
            }
    /* Huge K: 2^20 elements per dot crosses the int64 -> int128 flush (2^15 blocks). */
    check_exact_shape(1, 2, 1 << 20, FP4_FMT_F32, FP4_RNE, 1.0f, 0.0f, 0, 5000);
}

/* Hand-derived: all codes 1.0 with scale 1.0 gives exactly K; 6*448 squared
 * per element over K = 16 gives 16 * 2688^2 = 115605504 (exact in FP32);
 * a 0x7F scale anywhere in a row makes that row NaN. */
static void test_hand_cases(void) {
    enum { K = 64 };
    uint8_t ones[K / 2], sixes[K / 2], s1[K / 16], s448[K / 16];
    memset(ones, 0x22, sizeof ones), memset(sixes, 0x77, sizeof sixes);
    memset(s1, 0x38, sizeof s1), memset(s448, 0x7E, sizeof s448);
    fp4_tensor A = fp4_tensor_nvfp4(1, K, ones, s1, 1.0f), B = fp4_tensor_nvfp4(1, K, ones, s1, 1.0f);
    uint32_t d = 0;
    fp4_gemm_call o = fp4_gemm_call_make(&A, &B, &d);
    fp4_gemm_exact(&o);
    fp4t_check(d == 0x42800000u, "ones: got 0x%08X want 64.0f", d);
    fp4_tensor A6 = fp4_tensor_nvfp4(1, 16, sixes, s448, 1.0f);
    o.A = o.B = &A6;
    fp4_gemm_exact(&o);
    fp4t_check(d == 0x4CDC8000u, "max: got 0x%08X want 115605504.0f", d); /* 0x4CDC8000 = 1.15605504e8 */
    uint8_t snan[K / 16] = {0x38, 0x7F, 0x38, 0x38};
    fp4_tensor An = fp4_tensor_nvfp4(1, K, ones, snan, 1.0f);
    o.A = &An, o.B = &B;
    fp4_gemm_exact(&o);
    fp4t_check((d & 0x7F800000u) == 0x7F800000u && (d & 0x7FFFFF), "NaN scale: got 0x%08X", d);
    /* Zero scales and zero codes give +0. */
    uint8_t z[K / 16] = {0, 0, 0, 0};
    fp4_tensor Az = fp4_tensor_nvfp4(1, K, ones, z, 1.0f);
    o.A = &Az;
    fp4_gemm_exact(&o);
    fp4t_check(d == 0, "zero scales: got 0x%08X", d);
}

/* Output element i of an f32/f16/bf16 array as (bits, is NaN, value). */
static uint32_t out_bits(fp4_format f, const void *D, int64_t i) {
    return f == FP4_FMT_F32 ? ((const uint32_t *)D)[i] : ((const uint16_t *)D)[i];
}
static bool out_is_nan(fp4_format f, uint32_t b) {
    const fp4_format_info *fi = fp4_format_get(f);
    uint32_t emask = ((1u << fi->ebits) - 1) << fi->mbits, mmask = (1u << fi->mbits) - 1;
    return (b & emask) == emask && (b & mmask) != 0;
}

/* A NaN scale byte (0x7F) of B makes its output column NaN, as one of A
 * makes its row NaN: the scale multiplies every product of its block, and
 * NaN * x is NaN even for x = 0 (IEEE 754 §7.2; numerics.md §8: UE4M3 0x7F
 * is NaN). Every accumulation mode, epilogue and output format. A: row 0
 * all 1.0, row 1 all +0 (codes 0); B: 3 rows of 1.0, row 1 with a NaN
 * scale in block 2; every other scale 1.0 (0x38). Outputs off the NaN
 * column: row 0 = K * 1 * 1 = 64, row 1 = +0. The GEMM used to test only
 * A's scales for NaN; a B check removed made B's NaN scale act as zero
 * (64 -> 48) with no test failing (issue 16 item 3a). */
static void test_nan_scale_b(void) {
    enum { K = 64, M = 2, N = 3 };
    uint8_t ac[M * K / 2], bc[N * K / 2], as[M * K / 16], bs[N * K / 16];
    memset(ac, 0x22, K / 2), memset(ac + K / 2, 0x00, K / 2);
    memset(bc, 0x22, sizeof bc);
    memset(as, 0x38, sizeof as), memset(bs, 0x38, sizeof bs);
    bs[1 * (K / 16) + 2] = 0x7F;
    fp4_tensor A = fp4_tensor_nvfp4(M, K, ac, as, 1.0f), B = fp4_tensor_nvfp4(N, K, bc, bs, 1.0f);
    const fp4_format outs[3] = {FP4_FMT_F32, FP4_FMT_F16, FP4_FMT_BF16};
    const uint32_t want64[3] = {0x42800000u, 0x5400u, 0x4280u}; /* 64 in f32, f16, bf16 */
    /* The oracle, and the former non-exact modes of ref/ (now emu presets). */
    const char *engines[3] = {"ref", "emu:cutlass-host-f32", "emu:f16-blocks"};
    for (int e = 0; e < 3; e++)
        for (int epi = 0; epi < FP4_EPI_COUNT; epi++)
            for (int f = 0; f < 3; f++) {
                uint32_t D[M * N];
                fp4_engine *eng = NULL;
                int rc = e == 0 ? fp4_engine_ref_open(&eng) : fp4emu_engine_open(engines[e] + 4, &eng);
                fp4_gemm_call o = fp4_gemm_call_make(&A, &B, D);
                o.epi = (fp4_epilogue)epi, o.out = outs[f];
                if (!fp4t_check(rc == 0 && fp4_engine_gemm(eng, &o) == 0, "nan scale B %s: %s",
                                engines[e], fp4_last_error())) {
                    fp4_engine_close(eng);
                    continue;
                }
                fp4_engine_close(eng);
                for (int m = 0; m < M; m++)
                    for (int n = 0; n < N; n++) {
                        uint32_t b = out_bits(outs[f], D, m * N + n);
                        if (n == 1)
                            fp4t_check(out_is_nan(outs[f], b),
                                       "B NaN scale %s epi %d %s: D[%d][1] = 0x%X, want NaN",
                                       engines[e], epi, fp4_format_get(outs[f])->name, m, b);
                        else
                            fp4t_check(b == (m == 0 ? want64[f] : 0u),
                                       "B NaN scale %s epi %d %s: D[%d][%d] = 0x%X", engines[e],
                                       epi, fp4_format_get(outs[f])->name, m, n, b);
                    }
            }
}

/* The int64 -> int128 flush (numerics.md §8 bound). The largest block term
 * is all codes 6.0 with scales 448 = 14 * 2^5: 16 * 12 * 12 * 14 * 14 in
 * units of 2^-20 shifted by 2^28 = 451584 * 2^28 ~ 2^46.8, so an int64
 * holds 76 000 such blocks and gemm.c flushes every 2^15. K = 2^21 (2^17
 * blocks): a flush interval 4x longer overflows the int64 once. The sum is
 * K * 36 * 448^2 = 441 * 2^35 (exact in FP32), computed here in __int128;
 * B's second row repeats it negated (codes -6.0) to catch a sign slip. */
static void test_flush_overflow(void) {
    const int64_t K = (int64_t)1 << 21, N = 2;
    uint8_t *ac = malloc((size_t)(K / 2)), *bc = malloc((size_t)(N * K / 2));
    uint8_t *as = malloc((size_t)(K / 16)), *bs = malloc((size_t)(N * K / 16));
    memset(ac, 0x77, (size_t)(K / 2));                       /* +6.0 */
    memset(bc, 0x77, (size_t)(K / 2)), memset(bc + K / 2, 0xFF, (size_t)(K / 2)); /* +6, -6 */
    memset(as, 0x7E, (size_t)(K / 16)), memset(bs, 0x7E, (size_t)(N * K / 16)); /* 448 */
    fp4_tensor A = fp4_tensor_nvfp4(1, K, ac, as, 1.0f), B = fp4_tensor_nvfp4(N, K, bc, bs, 1.0f);
    __int128 exact = (__int128)K * 36 * 448 * 448;
    fp4t_check(exact == (__int128)441 << 35, "K*36*448^2 = 441*2^35");
    float want = (float)(double)exact; /* 441 * 2^35: exact in float */
    uint32_t D[2], wbits = fp4t_f32_bits(want), nbits = fp4t_f32_bits(-want);
    fp4_gemm_call o = fp4_gemm_call_make(&A, &B, D);
    if (fp4t_check(fp4_gemm_exact(&o) == 0, "flush: %s", fp4_last_error())) {
        fp4t_check(D[0] == wbits, "K=2^21 all 6*448: got 0x%08X want 0x%08X (441*2^35)", D[0], wbits);
        fp4t_check(D[1] == nbits, "K=2^21 6*448 x -6*448: got 0x%08X want 0x%08X", D[1], nbits);
    }
    free(ac), free(bc), free(as), free(bs);
}

/* The former ref/ modes, now emu presets behind the engine interface:
 * cutlass-host-f32 (SEQ_F32) against a plain fmaf loop written from the value
 * tables, f16-blocks (F16_BLOCKS, RNE) against _Float16 arithmetic on exact
 * doubles, both in a permuted block order (what ref's k_order gave). */
static void test_reference_modes(void) {
    int64_t M = 5, N = 7, K = 256, nb = K / 16;
    mat A = mat_make(M, K, 700, 0, 1.0f), B = mat_make(N, K, 701, 0, 1.0f);
    int64_t order[16], order_el[256];
    for (int64_t i = 0; i < nb; i++) order[i] = (i * 5) % nb; /* a permutation (5 coprime to 16) */
    for (int64_t i = 0; i < K; i++) order_el[i] = order[i / 16] * 16 + i % 16; /* per element */
    uint32_t d32[35];
    uint16_t d16[35];
    fp4_gemm_call c = fp4_gemm_call_make(&A.m, &B.m, d32);
    c.epi = FP4_EPI_F32;
    fp4emu_gemm_opts o = fp4emu_gemm_opts_default(&fp4emu_preset_get("cutlass-host-f32")->model);
    o.st.chain.k_order = order_el;
    fp4t_check(fp4emu_gemm(&o, &c) == 0, "seq: %s", fp4_last_error());
    fp4emu_gemm_opts o16 = fp4emu_gemm_opts_default(&fp4emu_preset_get("f16-blocks")->model);
    o16.st.chain.k_order = order;
    c.out = FP4_FMT_F16, c.D = d16;
    fp4t_check(fp4emu_gemm(&o16, &c) == 0, "f16: %s", fp4_last_error());
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            float acc = 0.0f;
            _Float16 h = 0;
            for (int64_t i = 0; i < nb; i++) {
                int64_t g = order[i];
                double part = 0;
                for (int64_t kk = 0; kk < 16; kk++) {
                    float a = (float)elem(&A, m, g * 16 + kk), b = (float)elem(&B, n, g * 16 + kk);
                    acc = fmaf(a, b, acc);
                    part += (double)a * b; /* exact: <= 20 significant bits overall */
                }
                h = (_Float16)((double)h + part); /* exact sum, one RNE rounding */
            }
            uint32_t want32;
            memcpy(&want32, &acc, 4);
            uint16_t want16;
            memcpy(&want16, &h, 2);
            fp4t_check(d32[m * N + n] == want32, "seq_f32 (%lld,%lld): got 0x%08X want 0x%08X",
                       (long long)m, (long long)n, d32[m * N + n], want32);
            fp4t_check(d16[m * N + n] == want16, "f16_blocks (%lld,%lld): got 0x%04X want 0x%04X",
                       (long long)m, (long long)n, d16[m * N + n], want16);
        }
    mat_free(&A), mat_free(&B);
}

static void test_bad_args(void) {
    uint8_t codes[64] = {0}, sc[8] = {0};
    fp4_tensor A = fp4_tensor_nvfp4(2, 24, codes, sc, 1.0f), B = fp4_tensor_nvfp4(2, 24, codes, sc, 1.0f);
    uint32_t d[4];
    fp4_gemm_call o = fp4_gemm_call_make(&A, &B, d);
    fp4t_check(fp4_gemm_exact(&o) != 0 && strstr(fp4_last_error(), "multiple of the block size 16"),
               "K=24 accepted (%s)", fp4_last_error());
    A.cols = 32, B.cols = 48;
    fp4t_check(fp4_gemm_exact(&o) != 0 && strstr(fp4_last_error(), "mismatch"), "K mismatch accepted");
    B.cols = 32;
    sc[1] = 0x80;
    fp4t_check(fp4_gemm_exact(&o) != 0 && strstr(fp4_last_error(), "bit 7"), "scale 0x80 accepted");
    sc[1] = 0;
    o.beta = 1.0f;
    fp4t_check(fp4_gemm_exact(&o) != 0, "beta without C accepted");
    o.beta = 0.0f;
    o.B = NULL;
    fp4t_check(fp4_gemm_exact(&o) != 0, "null B accepted");
    o.B = &B;
    o.out = FP4_FMT_E4M3;
    fp4t_check(fp4_gemm_exact(&o) != 0, "e4m3 output accepted");
    o.out = FP4_FMT_F32;
    o.out_round = FP4_RS;
    fp4t_check(fp4_gemm_exact(&o) != 0 && strstr(fp4_last_error(), "stochastic"), "rs output accepted");
    o.out_round = FP4_RNE;
    o.m0 = 1, o.m1 = 3;
    fp4t_check(fp4_gemm_exact(&o) != 0 && strstr(fp4_last_error(), "window"), "window past M accepted");
}

/* Thread count and output windows change no bit: every window of a split
 * equals the same outputs of the whole call, and cells outside a window are
 * left untouched. */
static void test_threads_and_windows(void) {
    int64_t M = 37, N = 70, K = 512;
    mat A = mat_make(M, K, 900, 0, 0.5f), B = mat_make(N, K, 901, 0, 3.0f);
    uint32_t *d1 = malloc((size_t)(M * N) * 4), *d2 = malloc((size_t)(M * N) * 4);
    fp4_gemm_call o = fp4_gemm_call_make(&A.m, &B.m, d1);
    omp_set_num_threads(1);
    fp4_gemm_exact(&o);
    omp_set_num_threads(4);
    o.D = d2;
    fp4_gemm_exact(&o);
    fp4t_check(memcmp(d1, d2, (size_t)(M * N) * 4) == 0, "results differ between 1 and 4 threads");
    memset(d2, 0xAB, (size_t)(M * N) * 4);
    const int64_t cuts[3][4] = {{0, 10, 0, 33}, {10, 37, 0, 70}, {0, 10, 33, 70}};
    for (int w = 0; w < 3; w++) {
        o.m0 = cuts[w][0], o.m1 = cuts[w][1], o.n0 = cuts[w][2], o.n1 = cuts[w][3];
        fp4t_check(fp4_gemm_exact(&o) == 0, "window %d: %s", w, fp4_last_error());
    }
    fp4t_check(memcmp(d1, d2, (size_t)(M * N) * 4) == 0, "windows differ from the whole call");
    o.m0 = 2, o.m1 = 3, o.n0 = 5, o.n1 = 6;
    memset(d2, 0xAB, (size_t)(M * N) * 4);
    fp4_gemm_exact(&o);
    int64_t touched = 0;
    for (int64_t i = 0; i < M * N; i++) touched += d2[i] != 0xABABABABu;
    fp4t_check(touched == 1 && d2[2 * N + 5] == d1[2 * N + 5], "a 1x1 window wrote %lld cells",
               (long long)touched);
    free(d1), free(d2), mat_free(&A), mat_free(&B);
}

int main(void) {
    g_emin = mpfr_get_emin();
    g_emax = mpfr_get_emax();
    fp4t_begin("gemm");
    test_hand_cases();
    test_nan_scale_b();
    test_flush_overflow();
    test_bad_args();
    test_reference_modes();
    test_threads_and_windows();
    test_exact_vs_mpfr();
    return fp4t_end();
}
