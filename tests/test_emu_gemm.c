/* test_emu_gemm.c - the GEMM driver of emu/: every output equals the dot
 * API on that row and column; promotion with per-group scales equals a
 * by-hand FP32 loop (host fmaf / mul+add on the dot API's group results);
 * split-K chunks and every reduction order equal host FP32 adds of the dot
 * API's chunk results; the epilogue equals a host FP32 computation in the
 * documented order; zero padding of a partial last K step; acc_init; FP16
 * outputs; results identical on 1..4 threads and for any output window;
 * structure strings; bad arguments rejected; and the DeepSeek observation
 * that promotion every 128 shrinks QGMMA's error over K=4096. */
#include "test_emu_common.h"

#include "emu_internal.h" /* emu_fast_enable: white-box check of the fast path */

#include <omp.h>

static uint8_t *rand_e4m3(int64_t n, uint32_t stream) {
    uint8_t *p = malloc((size_t)n);
    for (int64_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)fp4t_rand32(fp4t_seed(), stream, i);
        p[i] = (c & 0x7F) == 0x7F ? 0x38 : c; /* no NaN */
    }
    return p;
}

/* FP16 with exponent field 5..24 (numerics.md §5.2's distribution). */
static uint16_t *rand_f16(int64_t n, uint32_t stream) {
    uint16_t *p = malloc((size_t)n * 2);
    for (int64_t i = 0; i < n; i++) {
        uint32_t r = fp4t_rand32(fp4t_seed(), stream, i);
        p[i] = (uint16_t)((r & 0x83FF) | ((5 + (r >> 16) % 20) << 10));
    }
    return p;
}

static float *rand_scales(int64_t n, uint32_t stream) {
    float *p = malloc((size_t)n * sizeof *p);
    for (int64_t i = 0; i < n; i++)
        p[i] = ldexpf(1.0f + (float)(fp4t_rand32(fp4t_seed(), stream, i) % 1024) / 1024.0f,
                      (int)(fp4t_rand32(fp4t_seed(), stream + 1, i) % 16) - 8);
    return p;
}

static float fbits(uint64_t c) {
    uint32_t u = (uint32_t)c;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t bitsf(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* DeepSeek-style FP8 GEMM: QGMMA, promotion every 128 with 1x128 activation
 * scales and 128x128 weight-block scales, K steps permuted inside groups. */
static void test_promotion(bool fma) {
    enum { M = 5, N = 130, K = 384, G = 128, NG = K / G };
    fp4emu_model m = et_model("sm90-qgmma-e4m3-f32");
    uint8_t *a = rand_e4m3(M * K, 10), *b = rand_e4m3(N * K, 11);
    float *sa = rand_scales(M * NG, 12), *sb = rand_scales(2 * NG, 14);
    int64_t order[K / 32];
    for (int i = 0; i < K / 32; i++) order[i] = (i / 4) * 4 + 3 - i % 4; /* reversed in groups */
    /* DeepSeek's FP8 blocks: 1x128 activation and 128x128 weight FP32 scales. */
    fp4_tensor A = fp4_tensor_fp8_block(M, K, a, sa, 1);
    fp4_tensor B = fp4_tensor_fp8_block(N, K, b, sb, 128);
    fp4emu_gemm_opts o = fp4emu_gemm_opts_default(&m);
    o.st.chain.promote_every = G, o.st.chain.promote_fma = fma, o.st.chain.k_order = order;
    uint32_t *D = malloc(M * N * 4);
    fp4_gemm_call c = fp4_gemm_call_make(&A, &B, D);
    c.epi = FP4_EPI_F32;
    fp4t_check(fp4emu_gemm(&o, &c) == 0, "promotion gemm: %s", fp4_last_error());
    fp4emu_input in = fp4emu_input_plain(FP4_FMT_E4M3, FP4_FMT_E4M3);
    int64_t sub_order[4] = {3, 2, 1, 0};
    fp4emu_chain sub = {0, false, sub_order};
    for (int mi = 0; mi < M; mi++)
        for (int ni = 0; ni < N; ni++) {
            volatile float acc = 0.0f;
            for (int g = 0; g < NG; g++) {
                uint64_t part = 0;
                fp4emu_dot(&m, &in, G, a + mi * K + g * G, b + ni * K + g * G, NULL, NULL, 0, &sub,
                           NULL, &part);
                volatile float s = sa[mi * NG + g] * sb[(ni / 128) * NG + g];
                if (fma) acc = fmaf(s, fbits(part), acc);
                else {
                    volatile float t = s * fbits(part);
                    acc = acc + t;
                }
            }
            fp4t_check(D[mi * N + ni] == bitsf(acc), "promotion fma=%d (%d,%d): 0x%08X vs 0x%08X",
                       fma, mi, ni, D[mi * N + ni], bitsf(acc));
        }
    /* Per-output dot API agrees (same chain, same group scales). */
    float gs[NG];
    for (int g = 0; g < NG; g++) gs[g] = sa[2 * NG + g] * sb[NG + g];
    uint64_t d = 0;
    fp4emu_dot(&m, &in, K, a + 2 * K, b + 129 * K, NULL, NULL, 0, &o.st.chain, gs, &d);
    fp4t_check(d == D[2 * N + 129], "dot API vs gemm with promotion");
    free(a), free(b), free(sa), free(sb), free(D);
}

/* Every output equals fp4emu_dot, then the epilogue in host FP32. */
static void test_epilogue_and_padding(void) {
    enum { M = 6, N = 7, K = 100 }; /* K = 3 full steps of 32 and one of 4 */
    fp4emu_model m = et_model("sm90-mmasync-e4m3");
    uint8_t *a = rand_e4m3(M * K, 20), *b = rand_e4m3(N * K, 21);
    float C[M * N];
    for (int i = 0; i < M * N; i++) C[i] = ldexpf((float)(int32_t)fp4t_rand32(fp4t_seed(), 22, i), -26);
    fp4_tensor A = fp4_tensor_plain(FP4_FMT_E4M3, M, K, a);
    fp4_tensor B = fp4_tensor_plain(FP4_FMT_E4M3, N, K, b);
    A.global_scale = 0.1f, B.global_scale = 7.7f;
    fp4emu_gemm_opts o = fp4emu_gemm_opts_default(&m);
    uint32_t D[M * N];
    fp4_gemm_call c = fp4_gemm_call_make(&A, &B, D);
    c.C = C, c.alpha = 3.0f, c.beta = 0.5f, c.epi = FP4_EPI_F32;
    fp4t_check(fp4emu_gemm(&o, &c) == 0, "epilogue gemm: %s", fp4_last_error());
    fp4emu_input in = fp4emu_input_plain(FP4_FMT_E4M3, FP4_FMT_E4M3);
    uint8_t pa[128], pb[128];
    for (int mi = 0; mi < M; mi++)
        for (int ni = 0; ni < N; ni++) {
            uint64_t acc = 0, acc_pad = 0;
            fp4emu_dot(&m, &in, K, a + mi * K, b + ni * K, NULL, NULL, 0, NULL, NULL, &acc);
            memset(pa, 0, sizeof pa), memset(pb, 0, sizeof pb);
            memcpy(pa, a + mi * K, K), memcpy(pb, b + ni * K, K);
            fp4emu_dot(&m, &in, 128, pa, pb, NULL, NULL, 0, NULL, NULL, &acc_pad);
            fp4t_check(acc == acc_pad, "partial step = zero padding (%d,%d)", mi, ni);
            volatile float s = c.alpha * A.global_scale;
            s = s * B.global_scale;
            volatile float t = s * fbits(acc);
            float want = fmaf(c.beta, C[mi * N + ni], t);
            fp4t_check(D[mi * N + ni] == bitsf(want), "epilogue (%d,%d): 0x%08X vs 0x%08X", mi, ni,
                       D[mi * N + ni], bitsf(want));
        }
    /* FP16 output: the FP32 epilogue result converted once. */
    uint16_t D16[M * N];
    c.out = FP4_FMT_F16, c.out_round = FP4_RZ, c.D = D16;
    fp4emu_gemm(&o, &c);
    for (int i = 0; i < M * N; i++) {
        fp4_cvt_opts co = {FP4_RZ, FP4_POLICY_NOSAT, 0, 0, 0};
        uint64_t want = 0;
        fp4_convert(FP4_FMT_F16, FP4_FMT_F32, D[i], &co, &want, NULL);
        fp4t_check(D16[i] == want, "f16 output %d", i);
    }
    free(a), free(b);
}

/* acc_init seeds each dot's accumulator (here the F16 one of QGMMA-f16). */
static void test_acc_init(void) {
    enum { M = 3, N = 4, K = 64 };
    fp4emu_model m = et_model("sm90-qgmma-e4m3-f16");
    uint8_t *a = rand_e4m3(M * K, 30), *b = rand_e4m3(N * K, 31);
    for (int i = 0; i < M * K; i++) a[i] &= 0xB7; /* keep products small for FP16 */
    uint32_t init[M * N];
    for (int i = 0; i < M * N; i++) init[i] = (uint32_t)et_code(FP4_FMT_F16, (double)(i - 5) / 8);
    fp4_tensor A = fp4_tensor_plain(FP4_FMT_E4M3, M, K, a);
    fp4_tensor B = fp4_tensor_plain(FP4_FMT_E4M3, N, K, b);
    fp4emu_gemm_opts o = fp4emu_gemm_opts_default(&m);
    o.acc_init = init;
    uint16_t D[M * N];
    fp4_gemm_call c = fp4_gemm_call_make(&A, &B, D);
    c.out = FP4_FMT_F16, c.epi = FP4_EPI_F32;
    fp4t_check(fp4emu_gemm(&o, &c) == 0, "acc_init gemm: %s", fp4_last_error());
    fp4emu_input in = fp4emu_input_plain(FP4_FMT_E4M3, FP4_FMT_E4M3);
    for (int i = 0; i < M * N; i++) {
        uint64_t d = 0;
        fp4emu_dot(&m, &in, K, a + (i / N) * K, b + (i % N) * K, NULL, NULL, init[i], NULL, NULL, &d);
        fp4t_check(D[i] == d, "acc_init output %d: 0x%04X vs 0x%04llX", i, D[i], (unsigned long long)d);
    }
    free(a), free(b);
}

/* Same bits on 1, 2, 3 and 4 threads (FP16 HGMMA and NVFP4 candidates). */
static void test_threads(void) {
    enum { M = 37, N = 29, K = 160 };
    fp4emu_model mh = et_model("sm90-hgmma-f16"), mn = et_model("sm100-mxf4nvf4-cand-chunk");
    uint16_t *a = rand_f16(M * K, 40), *b = rand_f16(N * K, 41);
    uint8_t *qa = rand_e4m3(M * K / 2, 42), *qb = rand_e4m3(N * K / 2, 43);
    uint8_t *sa = rand_e4m3(M * K / 16, 44), *sb = rand_e4m3(N * K / 16, 45);
    for (int i = 0; i < M * K / 16; i++) sa[i] &= 0x7F;
    for (int i = 0; i < N * K / 16; i++) sb[i] &= 0x7F;
    fp4_tensor NA = fp4_tensor_nvfp4(M, K, qa, sa, 1.0f), NB = fp4_tensor_nvfp4(N, K, qb, sb, 2.0f);
    fp4_tensor A = fp4_tensor_plain(FP4_FMT_F16, M, K, a);
    fp4_tensor B = fp4_tensor_plain(FP4_FMT_F16, N, K, b);
    uint32_t ref1[M * N], ref2[M * N], d1[M * N], d2[M * N];
    fp4emu_gemm_opts oh = fp4emu_gemm_opts_default(&mh), on = fp4emu_gemm_opts_default(&mn);
    int saved = omp_get_max_threads();
    for (int t = 1; t <= 4; t++) {
        omp_set_num_threads(t);
        uint32_t *x = t == 1 ? ref1 : d1, *y = t == 1 ? ref2 : d2;
        fp4_gemm_call ch = fp4_gemm_call_make(&A, &B, x), cn = fp4_gemm_call_make(&NA, &NB, y);
        fp4t_check(fp4emu_gemm(&oh, &ch) == 0, "f16 gemm: %s", fp4_last_error());
        fp4t_check(fp4emu_gemm(&on, &cn) == 0, "nvfp4 gemm: %s", fp4_last_error());
        if (t > 1) {
            fp4t_check(memcmp(ref1, d1, sizeof d1) == 0, "f16 gemm differs on %d threads", t);
            fp4t_check(memcmp(ref2, d2, sizeof d2) == 0, "nvfp4 gemm differs on %d threads", t);
        }
    }
    omp_set_num_threads(saved);
    free(a), free(b), free(qa), free(qb), free(sa), free(sb);
}

static void test_bad_args(void) {
    fp4emu_model m = et_model("sm90-qgmma-e4m3-f32"), mc = et_model("sm100-mxf4nvf4-cand-chunk");
    uint8_t a[64] = {0}, s[4] = {0x38, 0x38, 0x38, 0x38};
    uint32_t D[4];
    float gsc[2] = {1, 1};
    fp4_tensor A = fp4_tensor_plain(FP4_FMT_E4M3, 1, 64, a);
    fp4_tensor B = fp4_tensor_plain(FP4_FMT_E4M3, 1, 64, a);
    fp4emu_gemm_opts o = fp4emu_gemm_opts_default(&m);
    fp4_gemm_call c = fp4_gemm_call_make(&A, &B, D);
    fp4t_check(fp4emu_gemm(&o, &c) == 0, "good call");
    fp4_tensor Bk = fp4_tensor_plain(FP4_FMT_E4M3, 1, 32, a);
    c.B = &Bk;
    fp4t_check(fp4emu_gemm(&o, &c) != 0, "K mismatch rejected");
    c.B = &B;
    o.st.chain.promote_every = 48;
    fp4t_check(fp4emu_gemm(&o, &c) != 0, "promotion not a multiple of k");
    o.st.chain.promote_every = 0;
    int64_t dup[2] = {0, 0};
    o.st.chain.k_order = dup;
    fp4t_check(fp4emu_gemm(&o, &c) != 0, "bad k_order: %s", fp4_last_error());
    o.st.chain.k_order = NULL;
    fp4_tensor G = fp4_tensor_fp8_block(1, 64, a, gsc, 1);
    c.A = &G;
    fp4t_check(fp4emu_gemm(&o, &c) != 0 && strstr(fp4_last_error(), "promot"),
               "FP32 block scales without promotion: %s", fp4_last_error());
    o.st.chain.promote_every = 32;
    fp4t_check(fp4emu_gemm(&o, &c) == 0, "FP32 blocks of 128 promoted every 32: %s", fp4_last_error());
    o.st.chain.promote_every = 0;
    c.A = &A;
    c.beta = 1.0f;
    fp4t_check(fp4emu_gemm(&o, &c) != 0, "beta without C");
    c.beta = 0.0f;
    fp4emu_gemm_opts oc = fp4emu_gemm_opts_default(&mc);
    fp4_tensor F = fp4_tensor_plain(FP4_FMT_F16, 1, 64, a);
    F.scale_fmt = FP4_FMT_UE8M0, F.block = 32, F.scales = s;
    c.A = c.B = &F;
    fp4t_check(fp4emu_gemm(&oc, &c) != 0, "chunk scaling of f16 rejected");
    uint8_t bad[4] = {0x38, 0x80, 0x38, 0x38};
    fp4_tensor NA = fp4_tensor_nvfp4(1, 64, a, bad, 1.0f);
    c.A = c.B = &NA;
    fp4t_check(fp4emu_gemm(&oc, &c) != 0 && strstr(fp4_last_error(), "bit 7"), "UE4M3 bit 7 rejected");
    c.A = &A, c.B = &B;
    fp4emu_model broken = m;
    broken.block = 5;
    o.model = &broken;
    fp4t_check(fp4emu_gemm(&o, &c) != 0, "invalid model rejected");
    o.model = &m;
    o.st.splits = 3; /* K = 64 has two steps of 32: a third chunk would be empty */
    fp4t_check(fp4emu_gemm(&o, &c) != 0 && strstr(fp4_last_error(), "empty"), "3 chunks of 2 steps: %s",
               fp4_last_error());
    o.st = fp4emu_structure_plain();
    o.st.splits = 2, o.st.split_at[1] = 16;
    fp4t_check(fp4emu_gemm(&o, &c) != 0 && strstr(fp4_last_error(), "multiple"), "boundary 16 of k32");
}

/* Host FP32 reduction of chunk results, written from the definitions of
 * the orders in fp4emu.h (not from emu/gemm.c). */
static float host_reduce(const float *p, int S, fp4emu_reduce red, const int *order) {
    volatile float r;
    if (red == FP4EMU_REDUCE_REV) {
        r = p[S - 1];
        for (int s = S - 2; s >= 0; s--) r = r + p[s];
        return r;
    }
    if (red == FP4EMU_REDUCE_ORDER) {
        r = p[order[0]];
        for (int s = 1; s < S; s++) r = r + p[order[s]];
        return r;
    }
    if (red == FP4EMU_REDUCE_TREE) {
        float q[FP4EMU_MAX_SPLIT];
        memcpy(q, p, (size_t)S * sizeof *q);
        int w = S;
        while (w > 1) {
            int h = 0;
            for (int i = 0; i + 1 < w; i += 2) {
                volatile float t = q[i] + q[i + 1];
                q[h++] = t;
            }
            if (w % 2) q[h++] = q[w - 1];
            w = h;
        }
        return q[0];
    }
    r = p[0];
    for (int s = 1; s < S; s++) r = r + p[s];
    return r;
}

/* Split-K: every output equals the dot API on each chunk (its own chain,
 * promotion and K order), the chunks then added on the host in the
 * structure's order. Even splits (the first nsteps % S chunks one step
 * longer), uneven boundaries, every reduction order, with and without
 * promotion, ascending and descending K. */
static void test_split_k(void) {
    enum { M = 4, N = 5, K = 16 * 13 };
    fp4emu_model m = et_model("sm90-hgmma-f16");
    uint16_t *a = rand_f16(M * K, 80), *b = rand_f16(N * K, 81);
    fp4_tensor A = fp4_tensor_plain(FP4_FMT_F16, M, K, a), B = fp4_tensor_plain(FP4_FMT_F16, N, K, b);
    fp4emu_input in = fp4emu_input_plain(FP4_FMT_F16, FP4_FMT_F16);
    const char *specs[] = {"split=2", "split=3,reduce=rev", "split=5,reduce=tree",
                           "split=4,reduce=order:2/0/3/1", "at=48/160", "at=16/32/64,reduce=tree",
                           "split=3,promote=32", "split=2,promote=48,fma=1,korder=desc",
                           "at=96,korder=desc,reduce=rev", "split=13,reduce=tree"};
    for (size_t t = 0; t < sizeof specs / sizeof specs[0]; t++) {
        fp4emu_gemm_opts o = fp4emu_gemm_opts_default(&m);
        if (!fp4t_check(fp4emu_structure_parse(specs[t], &o.st) == 0, "parse '%s': %s", specs[t],
                        fp4_last_error()))
            continue;
        uint32_t D[M * N];
        fp4_gemm_call c = fp4_gemm_call_make(&A, &B, D);
        c.epi = FP4_EPI_F32;
        if (!fp4t_check(fp4emu_gemm(&o, &c) == 0, "gemm '%s': %s", specs[t], fp4_last_error()))
            continue;
        /* Boundaries, derived here: given ones, or even in steps of 16. */
        int S = o.st.splits;
        int64_t at[FP4EMU_MAX_SPLIT + 1];
        at[0] = 0, at[S] = K;
        if (o.st.split_at[1]) {
            for (int i = 1; i < S; i++) at[i] = o.st.split_at[i];
        } else {
            int64_t steps = K / 16, step = 0;
            for (int i = 0; i < S; i++) at[i] = step * 16, step += steps / S + (i < steps % S);
        }
        for (int mi = 0; mi < M; mi++)
            for (int ni = 0; ni < N; ni++) {
                float part[FP4EMU_MAX_SPLIT];
                for (int ch = 0; ch < S; ch++) {
                    int64_t len = at[ch + 1] - at[ch], nst = len / 16, desc[16];
                    for (int64_t i = 0; i < nst; i++) desc[i] = nst - 1 - i;
                    fp4emu_chain chain = o.st.chain;
                    chain.k_order = o.st.k_desc ? desc : NULL;
                    uint64_t d = 0;
                    fp4emu_dot(&m, &in, len, a + mi * K + at[ch], b + ni * K + at[ch], NULL, NULL, 0,
                               &chain, NULL, &d);
                    part[ch] = fbits(d);
                }
                float want = host_reduce(part, S, o.st.reduce, o.st.order);
                fp4t_check(D[mi * N + ni] == bitsf(want), "%s (%d,%d): 0x%08X vs 0x%08X", specs[t],
                           mi, ni, D[mi * N + ni], bitsf(want));
            }
    }
    free(a), free(b);
}

/* Structure strings: parse -> format -> parse is the identity; malformed
 * or out-of-range values are refused with a message (no wrap-around). */
static void test_structure_strings(void) {
    const char *good[] = {"", "promote=128", "promote=128,fma=1,korder=desc,split=3,reduce=tree",
                          "at=64/192,reduce=order:2/0/1", "split=16"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        fp4emu_structure s1, s2;
        char buf[256];
        fp4t_check(fp4emu_structure_parse(good[i], &s1) == 0, "parse '%s': %s", good[i], fp4_last_error());
        fp4emu_structure_format(&s1, buf, sizeof buf);
        fp4t_check(fp4emu_structure_parse(buf, &s2) == 0 && memcmp(&s1, &s2, sizeof s1) == 0,
                   "'%s' -> '%s' does not parse back the same", good[i], buf);
    }
    const char *bad[] = {"split=0", "split=17", "promote=-1", "promote=99999999999999999999",
                         "promote=4294967310x", "reduce=sideways", "at=", "at=0", "foo=1",
                         "split=abc", "fma=2", "korder=up", "reduce=order:", "promote"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fp4emu_structure s;
        fp4t_check(fp4emu_structure_parse(bad[i], &s) != 0 && fp4_last_error()[0], "'%s' accepted",
                   bad[i]);
    }
    fp4emu_model m = et_model("sm90-qgmma-e4m3-f32");
    fp4emu_structure s;
    fp4emu_structure_parse("reduce=order:0/0,split=2", &s);
    fp4t_check(fp4emu_structure_check(&s, &m, 128) != 0, "order 0/0 accepted");
    fp4emu_structure_parse("at=96/64", &s);
    fp4t_check(fp4emu_structure_check(&s, &m, 128) != 0, "decreasing boundaries accepted");
}

/* An output window computes exactly the same bits as the whole call. */
static void test_windows(void) {
    enum { M = 9, N = 11, K = 96 };
    fp4emu_model m = et_model("sm90-qgmma-e4m3-f32");
    uint8_t *a = rand_e4m3(M * K, 90), *b = rand_e4m3(N * K, 91);
    fp4_tensor A = fp4_tensor_plain(FP4_FMT_E4M3, M, K, a), B = fp4_tensor_plain(FP4_FMT_E4M3, N, K, b);
    fp4emu_gemm_opts o = fp4emu_gemm_opts_default(&m);
    fp4emu_structure_parse("split=2,promote=32", &o.st);
    uint32_t all[M * N], win[M * N];
    fp4_gemm_call c = fp4_gemm_call_make(&A, &B, all);
    fp4emu_gemm(&o, &c);
    memset(win, 0, sizeof win);
    c.D = win;
    for (int q = 0; q < 4; q++) {
        c.m0 = q < 2 ? 0 : 4, c.m1 = q < 2 ? 4 : M, c.n0 = q % 2 ? 6 : 0, c.n1 = q % 2 ? N : 6;
        fp4t_check(fp4emu_gemm(&o, &c) == 0, "window %d: %s", q, fp4_last_error());
    }
    fp4t_check(memcmp(all, win, sizeof all) == 0, "windows differ from the whole call");
    free(a), free(b);
}

/* DeepSeek-V3 §3.3.2: QGMMA's 13-bit accumulation over K = 4096 loses
 * accuracy; promoting every 128 elements to FP32 recovers most of it. */
static void test_deepseek_effect(void) {
    enum { K = 4096, T = 24 };
    fp4emu_model m = et_model("sm90-qgmma-e4m3-f32");
    fp4emu_input in = fp4emu_input_plain(FP4_FMT_E4M3, FP4_FMT_E4M3);
    fp4emu_chain none = {0, false, NULL}, prom = {128, true, NULL};
    double err_none = 0, err_prom = 0;
    for (int t = 0; t < T; t++) {
        uint8_t *a = rand_e4m3(K, 50 + 2 * t), *b = rand_e4m3(K, 51 + 2 * t);
        for (int i = 0; i < K; i++) a[i] &= 0x7F, b[i] &= 0x7F; /* positive: no cancellation */
        double exact = 0;
        for (int i = 0; i < K; i++) exact += fp4_to_f64(FP4_FMT_E4M3, a[i]) * fp4_to_f64(FP4_FMT_E4M3, b[i]);
        uint64_t d0 = 0, d1 = 0;
        fp4emu_dot(&m, &in, K, a, b, NULL, NULL, 0, &none, NULL, &d0);
        fp4emu_dot(&m, &in, K, a, b, NULL, NULL, 0, &prom, NULL, &d1);
        err_none += fabs(fbits(d0) - exact) / exact;
        err_prom += fabs(fbits(d1) - exact) / exact;
        free(a), free(b);
    }
    printf("QGMMA K=4096 mean relative error: %.3g without promotion, %.3g with N_C=128\n",
           err_none / T, err_prom / T);
    fp4t_check(err_none > 4 * err_prom, "promotion reduces the error (%.3g vs %.3g)", err_none / T,
               err_prom / T);
}

/* The fast path (pre-combined operands, no terms) against the general
 * path on every preset and on variants that reach its edges: interleave,
 * reverse, C after, normalized exponents, F16 unpack, rz13, a window too
 * wide for 62 bits (fallback), F exact; rows with NaN/Inf (general path),
 * zeros, and BF16 over a wide exponent range. */
static void gemm_both_paths(const fp4emu_model *m, const fp4_tensor *A, const fp4_tensor *B,
                            const char *what) {
    enum { MAXO = 64 * 64 };
    static uint32_t d1[MAXO], d2[MAXO];
    fp4emu_gemm_opts o = fp4emu_gemm_opts_default(m);
    fp4_gemm_call c = fp4_gemm_call_make(A, B, d1);
    c.epi = FP4_EPI_F32;
    emu_fast_enable(true);
    int rc1 = fp4emu_gemm(&o, &c);
    emu_fast_enable(false);
    c.D = d2;
    int rc2 = fp4emu_gemm(&o, &c);
    emu_fast_enable(true);
    int64_t n = A->rows * B->rows, bad = 0;
    for (int64_t i = 0; i < n; i++) bad += d1[i] != d2[i];
    fp4t_check(rc1 == 0 && rc2 == 0 && bad == 0, "fast vs general %s: %lld of %lld differ (%s)",
               what, (long long)bad, (long long)n, fp4_last_error());
}

static void test_fast_path(void) {
    enum { M = 24, N = 20, K = 128 };
    const char *variants[] = {"", ":il=4", ":rev=1", ":c=after", ":pexp=exact", ":unpack=f16",
                              ":out=rz13", ":F=45", ":F=exact,minexp=none", ":out=rne23,F=10"};
    uint8_t *a8 = rand_e4m3(M * K, 60), *b8 = rand_e4m3(N * K, 61);
    uint16_t *a16 = rand_f16(M * K, 62), *b16 = rand_f16(N * K, 63);
    uint8_t *sa = rand_e4m3(M * K / 16, 64), *sb = rand_e4m3(N * K / 16, 65);
    for (int i = 0; i < M * K / 16; i++) sa[i] &= 0x7F;
    for (int i = 0; i < N * K / 16; i++) sb[i] &= 0x7F;
    for (int i = 0; i < K; i += 3) a8[5 * K + i] = 0, a16[5 * K + i] = 0x8000; /* zeros */
    a8[7 * K + 9] = 0x7F, a16[7 * K + 9] = 0x7C00, b16[3 * K + 1] = 0xFE01; /* NaN / Inf rows */
    sa[2 * K / 16 + 1] = 0x7F;                                               /* NaN scale */
    for (int i = 0; i < N * K; i += 7) b16[i] = (uint16_t)((b16[i] & 0x807F) | ((uint16_t)(i % 250) << 7));
    for (int p = 0; p < fp4emu_preset_count(); p++)
        for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
            const fp4emu_preset *pr = fp4emu_preset_at(p);
            char spec[128];
            snprintf(spec, sizeof spec, "%s%s", pr->name, variants[v]);
            fp4emu_model m;
            if (fp4emu_model_parse(spec, &m) != 0) continue; /* e.g. il=4 on a one-block model */
            fp4_tensor A, B;
            if (!strncmp(pr->inputs, "nvfp4", 5)) {
                A = fp4_tensor_nvfp4(M, K, a8, sa, 1.0f), B = fp4_tensor_nvfp4(N, K, b8, sb, 1.0f);
            } else if (pr->inputs[0] == 'e' || pr->inputs[0] == 'a') {
                A = fp4_tensor_plain(FP4_FMT_E4M3, M, K, a8), B = fp4_tensor_plain(FP4_FMT_E4M3, N, K, b8);
            } else {
                fp4_format f = pr->inputs[0] == 'b' ? FP4_FMT_BF16 : FP4_FMT_F16;
                A = fp4_tensor_plain(f, M, K, a16), B = fp4_tensor_plain(f, N, K, b16);
            }
            gemm_both_paths(&m, &A, &B, spec);
        }
    free(a8), free(b8), free(a16), free(b16), free(sa), free(sb);
}

int main(void) {
    fp4t_begin("test_emu_gemm");
    test_promotion(true);
    test_promotion(false);
    test_epilogue_and_padding();
    test_acc_init();
    test_threads();
    test_bad_args();
    test_split_k();
    test_structure_strings();
    test_windows();
    test_deepseek_effect();
    test_fast_path();
    return fp4t_end();
}
