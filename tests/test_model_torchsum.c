/* test_model_torchsum.c - torch.sum's CPU order (model/torch_math.c
 * fp4m_sum_f32_torch / fp4m_sum_f64_torch) and its use in the forward.
 *
 *  1. Against torch itself: tests/data/torch-sum.txt holds sums computed by
 *     torch (Debian's 1.13, AVX2 kernel, one thread; recorded by
 *     tools/torch_sum_table.py, which also checks the model against 10^4
 *     vectors per length) for 16 inputs of every length 1..64 and 27 longer
 *     lengths up to 140000 (every level of multi_row_sum's cascade), float32
 *     and float64. The inputs are regenerated here from the table's Philox
 *     definition; every sum must be bit-identical. The table must also tell
 *     the orders apart: a sequential sum must miss some of float32 n = 5..7
 *     and float64 n = 5..8 (so the check fails if the order is sequential),
 *     while float32 n <= 4 and n = 8 and float64 n <= 4 are sequential
 *     in torch as well. FP4_TORCH_SUM_TABLE names another table of the same
 *     form (e.g. a 10^4-case one from `torch_sum_table.py record --cases
 *     10000 --out FILE`).
 *  2. The short closed forms quoted in the docs, on random inputs.
 *  3. The forward: a synthetic model (the fixture's config) with top-k = 5..8
 *     routed experts; every traced top-k weight must equal
 *     v / (sum + 1e-20) * scale with the sum in torch's order when
 *     torch_order is set (FP32 path, FP64 path with the float32 router
 *     island, FP64 path with a float64 router) and sequential otherwise;
 *     with torch_order some tokens must differ from the sequential form.
 *  4. The FP64 path's float64 RMSNorm with torch_order: input_layernorm of
 *     layer 0 from the traced embedding, the sum of squares in torch's
 *     float64 order (and sequential without torch_order). */
#include "model_internal.h"
#include "test_model_util.h"

#define TABLE_SEED 0x70C55E0Dull
#define SYN_SEED 0x7A11ull

/* ---------------------------------------------------------------------------
 * The table's inputs (tools/torch_sum_table.py, module docstring).
 * ------------------------------------------------------------------------- */

static philox4x32_ctr_t table_bits(int dtag, int64_t n, int64_t c, int64_t i) {
    return fp4t_rand4(TABLE_SEED, (uint32_t)(dtag << 24 | n), (uint64_t)c << 32 | (uint64_t)i);
}

static int table_exponent(int64_t c, uint32_t v2) {
    return c % 2 ? (int)(v2 % 24) - 12 : -1 - (int)(v2 % 6);
}

static void table_input_f32(int64_t n, int64_t c, float *x) {
    for (int64_t i = 0; i < n; i++) {
        philox4x32_ctr_t r = table_bits(0, n, c, i);
        uint32_t sign = c % 2 ? r.v[1] >> 31 : 0;
        uint32_t b = sign << 31 | (uint32_t)(127 + table_exponent(c, r.v[2])) << 23 |
                     (r.v[0] & 0x7FFFFFu);
        x[i] = fp4t_f32_from_bits(b);
    }
}

static void table_input_f64(int64_t n, int64_t c, double *x) {
    for (int64_t i = 0; i < n; i++) {
        philox4x32_ctr_t r = table_bits(1, n, c, i);
        uint64_t sign = c % 2 ? r.v[1] >> 31 : 0;
        uint64_t b = sign << 63 | (uint64_t)(1023 + table_exponent(c, r.v[2])) << 52 |
                     (uint64_t)(r.v[1] & 0xFFFFFu) << 32 | r.v[0];
        memcpy(&x[i], &b, sizeof b);
    }
}

static uint64_t f64_bits(double x) {
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

static double seq_f64(const double *x, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += x[i];
    return s;
}

/* ---------------------------------------------------------------------------
 * 1. The recorded torch sums
 * ------------------------------------------------------------------------- */

enum { SHORT = 64 };

typedef struct table_stats {
    long lines, bad[2], seq_differ[2][SHORT + 1], cases[2][SHORT + 1];
} table_stats;

static int check_line(const char *dt, int64_t n, int64_t c, uint64_t want, table_stats *st) {
    const int d = !strcmp(dt, "F64");
    if ((!d && strcmp(dt, "F32")) || n < 1 || n > (1 << 20) || c < 0)
        return fp4t_check(0, "torch-sum table: bad line '%s %lld %lld'", dt, (long long)n,
                          (long long)c);
    uint64_t got, seq;
    if (d) {
        double *x = malloc((size_t)n * sizeof *x);
        table_input_f64(n, c, x);
        got = f64_bits(fp4m_sum_f64_torch(x, n));
        seq = f64_bits(seq_f64(x, n));
        free(x);
    } else {
        float *x = malloc((size_t)n * sizeof *x);
        table_input_f32(n, c, x);
        got = fp4t_f32_bits(fp4m_sum_f32_torch(x, n));
        seq = fp4t_f32_bits(fp4m_sum_f32_seq(x, n));
        free(x);
    }
    st->lines++;
    if (n <= SHORT) {
        st->cases[d][n]++;
        st->seq_differ[d][n] += seq != want;
    }
    if (got != want) {
        st->bad[d]++;
        return fp4t_check(0, "%s n=%lld case %lld: torch %0*llX, ours %0*llX", dt, (long long)n,
                          (long long)c, d ? 16 : 8, (unsigned long long)want, d ? 16 : 8,
                          (unsigned long long)got);
    }
    return 1;
}

/* Orders that are torch's and sequential at the same time (see torch_math.c). */
static int same_as_sequential(int d, int64_t n) { return n <= 4 || (!d && n == 8); }

static void check_table(void) {
    const char *path = getenv("FP4_TORCH_SUM_TABLE");
    if (!path) path = FP4_MODEL_TEST_DATA "/torch-sum.txt";
    FILE *f = fopen(path, "r");
    if (!fp4t_check(f != NULL, "cannot open %s", path)) return;
    static table_stats st;
    char line[256], dt[8];
    long long n, c;
    unsigned long long want;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        if (!fp4t_check(sscanf(line, "%7s %lld %lld %llx", dt, &n, &c, &want) == 4,
                        "%s: unreadable line: %s", path, line))
            break;
        check_line(dt, n, c, want, &st);
    }
    fclose(f);
    printf("%s: %ld sums; differing from ours: F32 %ld, F64 %ld\n", path, st.lines, st.bad[0],
           st.bad[1]);
    for (int d = 0; d < 2; d++) {
        printf("  %s, sequential sum != torch (of %ld cases) for n = 1..%d:", d ? "F64" : "F32",
               st.cases[d][1], SHORT);
        for (int64_t k = 1; k <= SHORT; k++) printf(" %ld", st.seq_differ[d][k]);
        printf("\n");
        for (int64_t k = 1; k <= SHORT; k++) {
            fp4t_check(st.cases[d][k] > 0, "%s n=%lld: no cases in the table", d ? "F64" : "F32",
                       (long long)k);
            if (same_as_sequential(d, k))
                fp4t_check(st.seq_differ[d][k] == 0,
                           "%s n=%lld: torch is sequential here, yet %ld cases differ",
                           d ? "F64" : "F32", (long long)k, st.seq_differ[d][k]);
        }
        /* The orders that matter for top-k: a sequential sum must be caught. */
        for (int64_t k = 5; k <= 8; k++)
            if (!same_as_sequential(d, k))
                fp4t_check(st.seq_differ[d][k] > 0,
                           "%s n=%lld: the table cannot tell torch's order from sequential",
                           d ? "F64" : "F32", (long long)k);
    }
    fp4t_check(st.lines >= 2 * (SHORT * 16), "%s: %ld sums, expected at least %d", path, st.lines,
               2 * SHORT * 16);
}

/* ---------------------------------------------------------------------------
 * 2. Closed forms of short sums
 * ------------------------------------------------------------------------- */

static void check_closed_forms(void) {
    long bad = 0;
    for (uint64_t c = 0; c < 20000; c++) {
        float f[8];
        double d[8];
        for (int i = 0; i < 8; i++) {
            philox4x32_ctr_t r = fp4t_rand4(fp4t_seed(), 77, c * 8 + (uint64_t)i);
            /* positive values of mixed size: [2^-7, 1.5 2^-7) times 1 .. 64 */
            f[i] = fp4t_f32_from_bits(0x3C000000u | (r.v[0] & 0x3FFFFFu)) *
                   (float)(1 + r.v[1] % 64);
            d[i] = ((double)r.v[2] + 0x1p32 * (double)(r.v[3] & 0xFFFFF)) * 0x1p-52 *
                   (double)(1 + r.v[1] % 64);
        }
        float f6 = ((((f[0] + f[4]) + f[5]) + f[1]) + f[2]) + f[3];
        float f7 = (((((f[0] + f[4]) + f[5]) + f[6]) + f[1]) + f[2]) + f[3];
        double d6 = ((((d[4] + d[5]) + d[0]) + d[1]) + d[2]) + d[3];
        double d8 = (((d[0] + d[4]) + (d[1] + d[5])) + (d[2] + d[6])) + (d[3] + d[7]);
        bad += fp4t_f32_bits(fp4m_sum_f32_torch(f, 6)) != fp4t_f32_bits(f6);
        bad += fp4t_f32_bits(fp4m_sum_f32_torch(f, 7)) != fp4t_f32_bits(f7);
        bad += fp4t_f32_bits(fp4m_sum_f32_torch(f, 8)) != fp4t_f32_bits(fp4m_sum_f32_seq(f, 8));
        bad += f64_bits(fp4m_sum_f64_torch(d, 6)) != f64_bits(d6);
        bad += f64_bits(fp4m_sum_f64_torch(d, 8)) != f64_bits(d8);
        bad += f64_bits(fp4m_sum_f64_torch(d, 4)) != f64_bits(seq_f64(d, 4));
    }
    fp4t_check(bad == 0, "closed forms of short sums: %ld mismatches", bad);
    float z = 0.0f;
    fp4t_check(fp4m_sum_f32_torch(&z, 0) == 0.0f && fp4m_sum_f64_torch(NULL, 0) == 0.0,
               "empty sums are 0");
}

/* ---------------------------------------------------------------------------
 * 3, 4. The forward on a synthetic model
 * ------------------------------------------------------------------------- */

typedef struct fwd_ctx {
    const fp4m_config *c;
    const fp4m_opts *o;
    double logits[64 * 64];
    int64_t idx[64 * 16];
    double embed[64 * 1024];
    long weights, bad, seq_would_differ; /* top-k weights checked / wrong / order-sensitive */
    long norm_rows, norm_bad, norm_seq_differ;
} fwd_ctx;

static bool router_f32(const fwd_ctx *x) {
    return x->o->prec == FP4M_F32 || x->o->router_prec == FP4M_ISLAND_F32;
}

/* The weight of each slot as route_weights must compute it, with the sum in
 * torch's order (torch = true) or sequential. */
static void expected_weights(const fwd_ctx *x, const double *logit, const int64_t *idx, int64_t k,
                             bool torch, double *w) {
    const double scale = x->c->routed_scaling_factor;
    if (router_f32(x)) {
        float v[16] = {0}, s = 0.0f;
        for (int64_t j = 0; j < k; j++) {
            float l = (float)logit[idx[j]];
            float e = x->o->torch_order ? fp4m_torch_expf(0.0f - l) : expf(-l);
            v[j] = 1.0f / (1.0f + e);
        }
        s = torch ? fp4m_sum_f32_torch(v, k) : fp4m_sum_f32_seq(v, k);
        s += 1e-20f;
        for (int64_t j = 0; j < k; j++) w[j] = (double)(v[j] / s * (float)scale);
        return;
    }
    double v[16] = {0}, s;
    for (int64_t j = 0; j < k; j++) v[j] = 1.0 / (1.0 + exp(-logit[idx[j]]));
    s = torch ? fp4m_sum_f64_torch(v, k) : seq_f64(v, k);
    s += 1e-20;
    for (int64_t j = 0; j < k; j++) w[j] = v[j] / s * scale;
}

static void check_weights(fwd_ctx *x, const fp4m_event *ev) {
    const int64_t n = ev->shape[0], k = ev->shape[1];
    for (int64_t t = 0; t < n; t++) {
        double want[16], seq[16];
        const double *logit = x->logits + t * x->c->n_routed_experts;
        expected_weights(x, logit, x->idx + t * k, k, x->o->torch_order, want);
        expected_weights(x, logit, x->idx + t * k, k, false, seq);
        bool differs = false, bad = false;
        for (int64_t j = 0; j < k; j++) {
            double got = tm_ev_get(ev, t * k + j);
            bad |= f64_bits(got) != f64_bits(want[j]);
            differs |= f64_bits(got) != f64_bits(seq[j]);
        }
        x->weights += k;
        x->bad += bad;
        x->seq_would_differ += differs;
    }
}

/* input_layernorm of layer 0 in float64 from the embedding. */
static void check_norm(fwd_ctx *x, const fp4m_event *ev) {
    const int64_t n = ev->shape[0], d = ev->shape[1];
    float w[1024];
    double sq[1024];
    fp4m_synth_rows(SYN_SEED, "model.layers.0.input_layernorm.weight", 1, 0, d, w);
    for (int64_t t = 0; t < n; t++) {
        const double *e = x->embed + t * d;
        for (int64_t i = 0; i < d; i++) sq[i] = e[i] * e[i];
        double s_t = fp4m_sum_f64_torch(sq, d), s_q = seq_f64(sq, d);
        double r_t = 1.0 / sqrt(s_t / (double)d + x->c->rms_norm_eps);
        double r_q = 1.0 / sqrt(s_q / (double)d + x->c->rms_norm_eps);
        double r = x->o->torch_order ? r_t : r_q;
        bool bad = false, differs = false;
        for (int64_t i = 0; i < d; i++) {
            double got = tm_ev_get(ev, t * d + i);
            bad |= f64_bits(got) != f64_bits((double)w[i] * (e[i] * r));
            differs |= f64_bits(got) != f64_bits((double)w[i] * (e[i] * r_q));
        }
        x->norm_rows++;
        x->norm_bad += bad;
        x->norm_seq_differ += differs;
    }
}

static int trace_fwd(void *ctx, const fp4m_event *ev) {
    fwd_ctx *x = ctx;
    const int64_t numel = tm_numel(ev);
    if (!strcmp(ev->op, "embed") && numel <= 64 * 1024)
        for (int64_t i = 0; i < numel; i++) x->embed[i] = tm_ev_get(ev, i);
    if (!strcmp(ev->op, "mlp.gate") && numel <= 64 * 64)
        for (int64_t i = 0; i < numel; i++) x->logits[i] = tm_ev_get(ev, i);
    if (!strcmp(ev->op, "mlp.gate.indices") && numel <= 64 * 16)
        for (int64_t i = 0; i < numel; i++) x->idx[i] = (int64_t)tm_ev_get(ev, i);
    if (!strcmp(ev->op, "mlp.gate.weights")) check_weights(x, ev);
    if (ev->layer == 0 && !strcmp(ev->op, "input_layernorm") && ev->dtype == FP4M_DT_F64 &&
        x->o->norm_prec == FP4M_ISLAND_NATIVE)
        check_norm(x, ev);
    return 0;
}

static const int64_t k_ids[32] = {3,   141, 59,  26,  5,   358, 97,  93,  238, 46,  264,
                                  338, 327, 95,  28,  84,  197, 169, 399, 375, 105, 82,
                                  97,  494, 459, 230, 78,  164, 62,  86,  208, 99};

static void run_case(const char *what, const fp4m_opts *base, bool torch_order, int64_t k) {
    fp4m_config c;
    if (!fp4t_check(fp4m_config_load(TINY_DIR, &c) == 0, "config: %s", fp4_last_error())) return;
    c.num_experts_per_tok = k; /* top-k of the 8 experts in topk_group = 2 groups of 4 */
    fp4m_opts o = *base;
    o.torch_order = torch_order;
    static fwd_ctx x;
    memset(&x, 0, sizeof x);
    x.c = &c;
    x.o = &o;
    o.trace = trace_fwd;
    o.trace_ctx = &x;
    fp4m_model *m = NULL;
    int rc = fp4m_open_synthetic(&c, SYN_SEED, &o, &m);
    if (!rc) rc = fp4m_forward(m, k_ids, 32, false, NULL);
    fp4t_check(rc == 0, "%s k=%lld: %s", what, (long long)k, rc ? fp4_last_error() : "");
    fp4m_close(m);
    const long tokens = x.weights / k;
    printf("  %-34s torch_order=%d k=%lld: %ld weights, %ld tokens wrong, %ld of %ld tokens "
           "differ from a sequential sum",
           what, torch_order, (long long)k, x.weights, x.bad, x.seq_would_differ, tokens);
    if (x.norm_rows)
        printf("; norm rows %ld wrong, %ld of %ld differ from sequential", x.norm_bad,
               x.norm_seq_differ, x.norm_rows);
    printf("\n");
    fp4t_check(x.weights == 3 * 32 * k, "%s k=%lld: %ld weights traced", what, (long long)k,
               x.weights);
    fp4t_check(x.bad == 0, "%s k=%lld torch_order=%d: %ld tokens with other weights", what,
               (long long)k, torch_order, x.bad);
    /* Where torch's order is not sequential, the check must be able to fail. */
    const int d = !router_f32(&x);
    if (torch_order && !same_as_sequential(d, k))
        fp4t_check(x.seq_would_differ > 0, "%s k=%lld: no token tells the orders apart", what,
                   (long long)k);
    if (!torch_order)
        fp4t_check(x.seq_would_differ == 0, "%s k=%lld: not sequential without torch_order",
                   what, (long long)k);
    if (x.norm_rows) {
        fp4t_check(x.norm_bad == 0, "%s: %ld float64 RMSNorm rows differ", what, x.norm_bad);
        if (torch_order)
            fp4t_check(x.norm_seq_differ > 0, "%s: no RMSNorm row tells the orders apart", what);
    }
}

static void check_forward(void) {
    const fp4m_opts f32 = fp4m_opts_transformers(FP4M_F32);
    const fp4m_opts f64_island = fp4m_opts_transformers(FP4M_F64);
    const fp4m_opts f64_ref = fp4m_opts_reference(FP4M_F64);
    printf("forward, synthetic model (fixture config), 32 tokens, 3 MoE layers:\n");
    for (int64_t k = 5; k <= 8; k++) {
        run_case("FP32 path", &f32, true, k);
        run_case("FP64 path, float32 router", &f64_island, true, k);
        run_case("FP64 path, float64 router + norm", &f64_ref, true, k);
    }
    run_case("FP32 path", &f32, false, 6);
    run_case("FP64 path, float64 router + norm", &f64_ref, false, 6);
}

int main(void) {
    fp4t_begin("test_model_torchsum");
    check_table();
    check_closed_forms();
    check_forward();
    return fp4t_end();
}
