/* test_model_decode.c - KV cache, incremental decode, greedy generation,
 * streaming vs resident weights, the absorbed MLA form, the documented
 * options, the GEMM backend hook and trace aborts, on the tiny fixture.
 *
 * Incremental decode must equal the full forward bit for bit: the forward
 * computes every op per token in a fixed order (model/forward_impl.h), so
 * nothing depends on how the tokens are split into calls. */
#include "test_model_util.h"

#include <omp.h>
#include <stdint.h>

static int64_t g_ids[64], g_greedy[64];
static int64_t g_vocab;

static fp4m_model *open_tiny(const fp4m_opts *o) {
    fp4m_model *m = NULL;
    if (!fp4t_check(fp4m_open(TINY_DIR, o, &m) == 0, "open: %s", fp4_last_error())) return NULL;
    g_vocab = fp4m_model_config(m)->vocab_size;
    return m;
}

static size_t esize(const fp4m_opts *o) { return o->prec == FP4M_F64 ? 8 : 4; }

/* Logits of all 64 positions, fed in chunks of the given sizes. */
static void *logits_chunked(fp4m_model *m, const fp4m_opts *o, const int64_t *chunks, int nchunks) {
    const size_t row = (size_t)g_vocab * esize(o);
    unsigned char *out = malloc(64 * row);
    fp4m_reset(m);
    int64_t pos = 0;
    for (int i = 0; i < nchunks && out; i++) {
        if (!fp4t_check(fp4m_forward(m, g_ids + pos, chunks[i], false, out + pos * row) == 0,
                        "forward chunk %d: %s", i, fp4_last_error())) {
            free(out);
            return NULL;
        }
        pos += chunks[i];
    }
    fp4t_check(pos == 64 && fp4m_cache_len(m) == 64, "cache length %lld", (long long)fp4m_cache_len(m));
    return out;
}

static double rel_err(const void *a, const void *b, int64_t n, const fp4m_opts *o) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double x = o->prec == FP4M_F64 ? ((const double *)a)[i] : ((const float *)a)[i];
        double y = o->prec == FP4M_F64 ? ((const double *)b)[i] : ((const float *)b)[i];
        num = fabs(x - y) > num ? fabs(x - y) : num;
        den = fabs(y) > den ? fabs(y) : den;
    }
    return num / den;
}

/* Full forward vs one token at a time vs uneven chunks: identical bits. */
static void check_incremental(const fp4m_opts *o, const char *what) {
    fp4m_model *m = open_tiny(o);
    if (!m) return;
    const int64_t full[] = {64}, prefill16[] = {16, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                                1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                                1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
                  uneven[] = {5, 7, 1, 19, 2, 30};
    int64_t ones[64];
    for (int i = 0; i < 64; i++) ones[i] = 1;
    void *a = logits_chunked(m, o, full, 1);
    void *b = logits_chunked(m, o, ones, 64);
    void *c = logits_chunked(m, o, prefill16, 49);
    void *d = logits_chunked(m, o, uneven, 6);
    size_t bytes = 64 * (size_t)g_vocab * esize(o);
    if (a && b && c && d) {
        fp4t_check(memcmp(a, b, bytes) == 0, "%s: token-by-token decode != full forward (rel %.3e)",
                   what, rel_err(b, a, 64 * g_vocab, o));
        fp4t_check(memcmp(a, c, bytes) == 0, "%s: prefill 16 + decode != full forward", what);
        fp4t_check(memcmp(a, d, bytes) == 0, "%s: uneven chunks != full forward", what);
    }
    printf("%s: full forward, 64 single-token steps, 16+48, 5/7/1/19/2/30 chunks: %s\n", what,
           a && b && c && d && !memcmp(a, b, bytes) && !memcmp(a, c, bytes) && !memcmp(a, d, bytes)
               ? "bit-identical"
               : "DIFFER");
    free(a);
    free(b);
    free(c);
    free(d);
    fp4m_close(m);
}

/* transformers' greedy_f32: FP32 path, prompt of 16, 48 new tokens. */
static void check_greedy(void) {
    fp4m_opts o = fp4m_opts_transformers(FP4M_F32);
    fp4m_model *m = open_tiny(&o);
    if (!m) return;
    int64_t out[64];
    if (fp4t_check(fp4m_generate_greedy(m, g_ids, 16, 48, out) == 0, "generate: %s", fp4_last_error())) {
        int64_t first = -1;
        for (int i = 63; i >= 0; i--)
            if (out[i] != g_greedy[i]) first = i;
        fp4t_check(first < 0, "greedy token %lld: ours %lld, transformers %lld", (long long)first,
                   first >= 0 ? (long long)out[first] : 0LL, first >= 0 ? (long long)g_greedy[first] : 0LL);
        printf("greedy FP32, 16 + 48 tokens: %s greedy_f32\n", first < 0 ? "identical to" : "DIFFERS from");
    }
    fp4m_close(m);
}

/* Streaming weights (one layer at a time, experts on demand) give the same
 * bits as resident weights, with a smaller peak. */
static void check_streaming(void) {
    fp4m_opts o = fp4m_opts_transformers(FP4M_F64);
    const int64_t full[] = {64};
    fp4m_model *res = open_tiny(&o);
    o.all_resident = false;
    fp4m_model *str = open_tiny(&o);
    if (!res || !str) return;
    void *a = logits_chunked(res, &o, full, 1);
    void *b = logits_chunked(str, &o, full, 1);
    if (a && b)
        fp4t_check(memcmp(a, b, 64 * (size_t)g_vocab * 8) == 0, "streaming != resident logits");
    int64_t all = fp4m_weight_bytes_now(res), peak = fp4m_weight_bytes_peak(str);
    fp4t_check(fp4m_weight_bytes_now(str) == 0 || fp4m_weight_bytes_now(str) < all / 4,
               "streaming holds %lld bytes after the forward", (long long)fp4m_weight_bytes_now(str));
    /* one MoE layer with all 16 experts hit + lm_head + final norm, FP64 */
    fp4m_layer_counts lc;
    fp4m_counts outer;
    fp4m_count_layer(fp4m_model_config(str), 1, &lc);
    fp4m_count_outer(fp4m_model_config(str), &outer);
    int64_t bound = lc.total.bytes[FP4M_STORE_F64] + outer.bytes[FP4M_STORE_F64];
    fp4t_check(peak <= bound && peak < all, "streaming peak %lld > bound %lld (resident %lld)",
               (long long)peak, (long long)bound, (long long)all);
    printf("weights, FP64: resident %lld bytes; streaming peak %lld bytes (64-token batch)\n",
           (long long)all, (long long)peak);
    /* one token on a fresh streaming model: only the k experts it is routed
     * to are converted in each MoE layer */
    fp4m_model *one = open_tiny(&o);
    void *lg = malloc((size_t)g_vocab * 8);
    if (one && lg) {
        fp4t_check(fp4m_forward(one, g_ids, 1, true, lg) == 0, "stream decode: %s", fp4_last_error());
        const fp4m_config *c = fp4m_model_config(one);
        int64_t one_bound = lc.total.bytes[FP4M_STORE_F64] + outer.bytes[FP4M_STORE_F64] -
                            (c->n_routed_experts - c->num_experts_per_tok) * lc.expert.bytes[FP4M_STORE_F64];
        fp4t_check(fp4m_weight_bytes_peak(one) <= one_bound, "one-token peak %lld > %lld",
                   (long long)fp4m_weight_bytes_peak(one), (long long)one_bound);
        printf("weights, FP64: streaming peak for one token %lld bytes (bound %lld)\n",
               (long long)fp4m_weight_bytes_peak(one), (long long)one_bound);
    }
    free(lg);
    fp4m_close(one);
    free(a);
    free(b);
    fp4m_close(res);
    fp4m_close(str);
}

/* Absorbed MLA (latent cache) vs naive: same function, different order of
 * the contractions -> float64 agreement, not bit identity. */
static void check_absorb(void) {
    fp4m_opts on = fp4m_opts_reference(FP4M_F64), oa = on;
    oa.attn_form = FP4M_ATTN_ABSORB;
    const int64_t full[] = {64};
    fp4m_model *mn = open_tiny(&on), *ma = open_tiny(&oa);
    if (!mn || !ma) return;
    void *a = logits_chunked(mn, &on, full, 1);
    void *b = logits_chunked(ma, &oa, full, 1);
    if (a && b) {
        double r = rel_err(b, a, 64 * g_vocab, &on);
        fp4t_check(r <= 1e-12, "absorbed vs naive rel %.3e", r);
        printf("absorbed vs naive MLA, FP64 logits: rel %.3e\n", r);
    }
    free(a);
    free(b);
    fp4m_close(mn);
    fp4m_close(ma);
}

/* The documented alternatives run and stay close on this fixture. Slot vs
 * expert order is compared on the pure FP64 path: with transformers' FP32
 * RMSNorm the 1e-16 differences vanish in the final norm's rounding. */
static void check_options(void) {
    const int64_t full[] = {64};
    for (int v = 0; v < 5; v++) {
        fp4m_opts base = v < 2 ? fp4m_opts_reference(FP4M_F64) : fp4m_opts_transformers(FP4M_F64);
        fp4m_opts o = base;
        const char *name = "";
        double lo = 0, hi = 1e-5;
        switch (v) {
        case 0: o.moe_order = FP4M_MOE_SLOT_ORDER; name = "moe slot order (ref)"; lo = 1e-300; hi = 1e-13; break;
        case 1: o.group_mask = FP4M_MASK_ZERO; name = "group mask 0.0 (ref)"; hi = 0; break;
        case 2: o.norm_order = FP4M_NORM_WEIGHT_THEN_ROUND; name = "norm weight-then-round"; break;
        case 3: o.rope_prec = FP4M_ROPE_F64; name = "rope f64"; break;
        default: o.torch_order = false; name = "sequential fp32 sums"; break;
        }
        fp4m_model *m0 = open_tiny(&base), *m = open_tiny(&o);
        void *ref = m0 ? logits_chunked(m0, &base, full, 1) : NULL;
        void *lg = m ? logits_chunked(m, &o, full, 1) : NULL;
        if (lg && ref) {
            double r = rel_err(lg, ref, 64 * g_vocab, &o);
            fp4t_check(r >= lo && r <= hi, "option %s: rel %.3e vs default, expected [%.0e, %.0e]", name, r,
                       lo, hi);
            printf("option %-24s logits rel %.3e vs its default\n", name, r);
        }
        free(lg);
        free(ref);
        fp4m_close(m);
        fp4m_close(m0);
    }
}

/* A backend that counts calls and delegates to the default loops. */
typedef struct count_ctx {
    long calls;
    int saw_head, saw_expert;
} count_ctx;

static int count_f32(void *ctx, const fp4m_linear_desc *d, int64_t m, const float *x, const float *w,
                     float *y) {
    count_ctx *c = ctx;
    c->calls++;
    c->saw_head |= d->layer == -1 && !strcmp(d->name, "lm_head.weight");
    c->saw_expert |= d->expert >= 0 && strstr(d->name, ".mlp.experts.") != NULL;
    const fp4m_gemm_backend *b = fp4m_gemm_default();
    return b->gemm_f32(b->ctx, d, m, x, w, y);
}

static int stop_at_layer2(void *ctx, const fp4m_event *ev) {
    (void)ctx;
    return ev->layer == 2 && !strcmp(ev->op, "self_attn");
}

static void check_backend_and_abort(void) {
    count_ctx cc = {0, 0, 0};
    fp4m_gemm_backend be = {"counting", &cc, NULL, count_f32};
    fp4m_opts o = fp4m_opts_transformers(FP4M_F32);
    const int64_t full[] = {64};
    fp4m_model *m0 = open_tiny(&o);
    o.gemm = &be;
    fp4m_model *m1 = open_tiny(&o);
    if (!m0 || !m1) return;
    void *a = logits_chunked(m0, &o, full, 1), *b = logits_chunked(m1, &o, full, 1);
    if (a && b) fp4t_check(memcmp(a, b, 64 * (size_t)g_vocab * 4) == 0, "backend hook changed results");
    fp4t_check(cc.calls > 20 && cc.saw_head && cc.saw_expert, "backend: %ld calls, head %d, expert %d",
               cc.calls, cc.saw_head, cc.saw_expert);
    /* the same backend has no FP64 entry: a clear error */
    fp4m_opts o64 = fp4m_opts_transformers(FP4M_F64);
    o64.gemm = &be;
    fp4m_model *m2 = open_tiny(&o64);
    if (m2) {
        fp4t_check(fp4m_forward(m2, g_ids, 4, true, NULL) != 0 && strstr(fp4_last_error(), "counting"),
                   "missing gemm_f64 not reported: %s", fp4_last_error());
        fp4m_close(m2);
    }
    /* a trace callback stopping the forward: error, cache unchanged */
    fp4m_set_trace(m0, stop_at_layer2, NULL);
    fp4m_reset(m0);
    fp4t_check(fp4m_forward(m0, g_ids, 8, false, NULL) != 0 && strstr(fp4_last_error(), "trace"),
               "trace abort not reported");
    fp4t_check(fp4m_cache_len(m0) == 0, "cache advanced by a failed forward");
    int64_t bad = 1 << 20;
    fp4m_set_trace(m0, NULL, NULL);
    fp4t_check(fp4m_forward(m0, &bad, 1, true, NULL) != 0 && strstr(fp4_last_error(), "vocabulary"),
               "out-of-vocabulary token accepted");
    free(a);
    free(b);
    fp4m_close(m0);
    fp4m_close(m1);
}

/* A GEMM backend against its documented order, written out here: one fma
 * chain per K block (blocks[] lists the block lengths, in order), the block
 * results added in order; whichever kernel computes it (8-row packed or
 * per-row blocks) and however many threads run. 64 x 520 x 520 is above the
 * size where the GEMM goes parallel. Returns how many f64 outputs differ
 * from a single chain over K and (in *fixed256) from fixed blocks of 256, to
 * show that the blocking is visible. */
static long check_gemm_backend(const fp4m_gemm_backend *b, int64_t N, int64_t K,
                               const int64_t *blocks, uint32_t stream, const char *what,
                               long *fixed256) {
    const int64_t M = 64;
    int64_t nblk = 0, sum = 0;
    while (sum < K) sum += blocks[nblk++];
    if (!fp4t_check(sum == K, "%s: blocks do not add up to K = %lld", what, (long long)K)) return 0;
    double *x = malloc(M * K * 8), *w = malloc(N * K * 8), *y1 = malloc(M * N * 8), *y2 = malloc(M * N * 8);
    float *xf = malloc(M * K * 4), *wf = malloc(N * K * 4), *z1 = malloc(M * N * 4), *z2 = malloc(M * N * 4);
    for (int64_t i = 0; i < M * K; i++) xf[i] = (float)(x[i] = (double)(int32_t)fp4t_rand32(fp4t_seed(), stream, i) / 2147483648.0);
    for (int64_t i = 0; i < N * K; i++) wf[i] = (float)(w[i] = (double)(int32_t)fp4t_rand32(fp4t_seed(), stream + 1, i) / 2147483648.0);
    fp4m_linear_desc d = {"test", 0, -1, N, K, NULL, FP4M_LC_DENSE};
    long bad64 = 0, bad32 = 0, chain64 = 0, f256 = 0;
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        b->gemm_f64(b->ctx, &d, M, x, w, y1);
        b->gemm_f32(b->ctx, &d, M, xf, wf, z1);
        for (int64_t r = 0; r < M; r++) { /* one row at a time: the other kernel */
            b->gemm_f64(b->ctx, &d, 1, x + r * K, w, y2 + r * N);
            b->gemm_f32(b->ctx, &d, 1, xf + r * K, wf, z2 + r * N);
        }
        for (int64_t r = 0; r < M; r++)
            for (int64_t c = 0; c < N; c++) {
                double s = 0, one = 0, s256 = 0;
                float sf = 0;
                for (int64_t j = 0, k0 = 0; j < nblk; k0 += blocks[j++]) {
                    double bs = 0;
                    float bf = 0;
                    for (int64_t k = k0; k < k0 + blocks[j]; k++) {
                        bs = fma(x[r * K + k], w[c * K + k], bs);
                        bf = fmaf(xf[r * K + k], wf[c * K + k], bf);
                    }
                    s = k0 ? s + bs : bs;
                    sf = k0 ? sf + bf : bf;
                }
                for (int64_t k0 = 0; k0 < K; k0 += 256) {
                    double bs = 0;
                    for (int64_t k = k0; k < K && k < k0 + 256; k++) bs = fma(x[r * K + k], w[c * K + k], bs);
                    s256 = k0 ? s256 + bs : bs;
                }
                for (int64_t k = 0; k < K; k++) one = fma(x[r * K + k], w[c * K + k], one);
                bad64 += y1[r * N + c] != s || y2[r * N + c] != s;
                bad32 += z1[r * N + c] != sf || z2[r * N + c] != sf;
                chain64 += y1[r * N + c] != one;
                f256 += y1[r * N + c] != s256;
            }
    }
    fp4t_check(bad64 == 0 && bad32 == 0, "%s GEMM differs from its fma chains: %ld f64, %ld f32",
               what, bad64, bad32);
    printf("%s GEMM, 64x%lldx%lld, 1 and 2 threads, packed and per-row kernels: %s "
           "(of %lld: one chain over K differs on %ld, fixed 256-blocks on %ld)\n",
           what, (long long)N, (long long)K, bad64 || bad32 ? "DIFFER" : "bit-identical to its fma chains",
           (long long)(2 * M * N), chain64, f256);
    free(x);
    free(w);
    free(y1);
    free(y2);
    free(xf);
    free(wf);
    free(z1);
    free(z2);
    if (fixed256) *fixed256 = f256;
    return chain64;
}

/* The default backend: one fma chain over k in order. */
static void check_gemm_default(void) {
    const int64_t one[] = {520};
    check_gemm_backend(fp4m_gemm_default(), 520, 520, one, 1, "default", NULL);
}

/* fp4m_gemm_torch: the K blocks of backend.c's rule (256 while >= 512
 * remain, a remainder in (256, 512) halved, the first half taking an odd
 * one, a remainder <= 256 whole), written out here per K; the blocking is
 * visible (one chain over K differs for most outputs), and where the rule
 * is not fixed 256-blocks (K = 520, 384, 640, 301) that difference shows
 * too. */
static void check_gemm_torch(void) {
    static const struct {
        int64_t n, k, blocks[5];
        int fixed; /* the rule gives fixed 256-blocks */
    } cases[] = {
        {520, 520, {256, 132, 132}, 0}, {40, 384, {192, 192}, 0},
        {40, 640, {256, 192, 192}, 0},  {40, 301, {151, 150}, 0},
        {40, 1000, {256, 256, 244, 244}, 0}, {40, 512, {256, 256}, 1},
        {40, 768, {256, 256, 256}, 1},  {40, 256, {256}, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        long f256 = 0;
        long chain64 = check_gemm_backend(fp4m_gemm_torch(), cases[i].n, cases[i].k,
                                          cases[i].blocks, 3, "torch", &f256);
        if (cases[i].k > 256)
            fp4t_check(chain64 > 0, "torch GEMM equals one chain over K=%lld everywhere",
                       (long long)cases[i].k);
        fp4t_check(cases[i].fixed ? f256 == 0 : f256 > 0,
                   "torch GEMM K=%lld: %ld outputs differ from fixed 256-blocks", (long long)cases[i].k,
                   f256);
    }
}

int main(void) {
    fp4t_begin("test_model_decode");
    fp4_st_file *acts;
    if (fp4_st_open(TINY_ACTS, &acts) != FP4_ST_OK) {
        fprintf(stderr, "cannot open %s: %s\n", TINY_ACTS, fp4_last_error());
        return 1;
    }
    fp4t_check(tm_read_i64(acts, "input_ids", g_ids, 64) == 0, "input_ids");
    fp4t_check(tm_read_i64(acts, "greedy_f32", g_greedy, 64) == 0, "greedy_f32");
    fp4_st_close(acts);

    fp4m_opts o = fp4m_opts_transformers(FP4M_F64);
    check_incremental(&o, "FP64 transformers naive");
    o = fp4m_opts_transformers(FP4M_F32);
    check_incremental(&o, "FP32 transformers naive");
    o = fp4m_opts_reference(FP4M_F64);
    o.attn_form = FP4M_ATTN_ABSORB;
    check_incremental(&o, "FP64 reference absorbed");
    check_greedy();
    check_streaming();
    check_absorb();
    check_options();
    check_backend_and_abort();
    check_gemm_default();
    check_gemm_torch();
    return fp4t_end();
}
