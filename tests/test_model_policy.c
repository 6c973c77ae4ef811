/* test_model_policy.c - precision policies (model/policy.c) and the GEMM
 * backend executing them (model/backend_quant.c).
 *
 * Each quantized format is checked on one linear layer against the value
 * the documented semantics give, computed here independently: operands
 * quantized by the named recipes, dequantized exactly, the dot product
 * summed exactly with MPFR and rounded once to the output format (FP8 and
 * NVFP4), or the path-precision fma chain of the BF16 operands (BF16,
 * W4A16). Rows are independent (m rows in one call = m calls of one row).
 * Then the tiny fixture model under modelopt-r1: incremental decode equals
 * the full forward, the BF16-class outputs are BF16 numbers, and the
 * logits move away from the reference but stay close. */
#include "test_model_util.h"
#include "fp4emu.h"

#include <mpfr.h>

#define M 3
#define N 130
#define K 192 /* a multiple of 16, not of 128: FP8 pads */

static double g_x[M * K], g_w[N * K];

static void fill(uint64_t seed) {
    for (int64_t i = 0; i < M * K; i++) /* N(0,1)-like with some large entries */
        g_x[i] = ((double)(fp4t_rand32(seed, 1, (uint64_t)i) >> 8) * 0x1p-24 - 0.5) *
                 ((i % 37) ? 4.0 : 40.0);
    for (int64_t i = 0; i < N * K; i++)
        g_w[i] = ((double)(fp4t_rand32(seed, 2, (uint64_t)i) >> 8) * 0x1p-24 - 0.5) * 0.2;
}

/* Exact sum of a[i] * b[i], rounded once to `bits` significant bits (8:
 * BF16, 24: FP32; no subnormals at these magnitudes). */
static double exact_dot(const double *a, const double *b, int64_t k, int bits) {
    mpfr_t s, p;
    mpfr_inits2(2200, s, p, (mpfr_ptr)0);
    mpfr_set_zero(s, 1);
    for (int64_t i = 0; i < k; i++) {
        mpfr_set_d(p, a[i], MPFR_RNDN);
        mpfr_mul_d(p, p, b[i], MPFR_RNDN); /* exact: 2200 bits */
        mpfr_add(s, s, p, MPFR_RNDN);
    }
    mpfr_prec_round(s, bits, MPFR_RNDN);
    double r = mpfr_get_d(s, MPFR_RNDN);
    mpfr_clears(s, p, (mpfr_ptr)0);
    return r;
}

static double rn(fp4_format f, double v) {
    fp4_cvt_opts o = fp4_cvt_opts_default();
    uint64_t c;
    fp4_encode_f64(f, v, &o, &c, NULL);
    return fp4_to_f64(f, c);
}

/* Runs the policy's backend on [m, K] x [N, K] in precision p (inputs
 * g_x/g_w converted), results widened into y. */
/* The engine the policies under test get (NULL: the exact oracle), and an
 * output format override (FP4_FMT_COUNT: the policy's). */
static fp4_engine *g_engine;
static fp4_format g_out = FP4_FMT_COUNT;

static int run_backend(const char *policy, const char *name, int64_t layer,
                       const fp4m_stored_weight *st, fp4m_prec p, int64_t row0, int64_t m, double *y) {
    fp4m_policy pol;
    fp4m_gemm_backend *b;
    if (fp4m_policy_from_name(policy, &pol)) return -1;
    pol.engine = g_engine;
    if (g_out != FP4_FMT_COUNT) pol.out = g_out;
    if (fp4m_policy_backend_new(&pol, &b)) return -1;
    fp4m_linear_desc d = {name, layer, -1, N, K, st, fp4t_lclass_of(name)};
    int rc;
    if (p == FP4M_F64) {
        rc = b->gemm_f64(b->ctx, &d, m, g_x + row0 * K, g_w, y);
    } else {
        float *xf = malloc(sizeof(float) * M * K), *wf = malloc(sizeof(float) * N * K),
              *yf = malloc(sizeof(float) * M * N);
        for (int64_t i = 0; i < M * K; i++) xf[i] = (float)g_x[i];
        for (int64_t i = 0; i < N * K; i++) wf[i] = (float)g_w[i];
        rc = b->gemm_f32(b->ctx, &d, m, xf + row0 * K, wf, yf);
        for (int64_t i = 0; i < m * N; i++) y[i] = yf[i];
        free(xf);
        free(wf);
        free(yf);
    }
    fp4m_policy_backend_free(b);
    return rc;
}

/* Path-precision value of an input as the backend sees it. */
static double in_x(fp4m_prec p, int64_t i) { return p == FP4M_F64 ? g_x[i] : (double)(float)g_x[i]; }
static double in_w(fp4m_prec p, int64_t i) { return p == FP4M_F64 ? g_w[i] : (double)(float)g_w[i]; }

/* Compares m rows from one call with the expected rows, and with m calls of one row. */
static void compare(const char *what, const char *policy, const char *name, int64_t layer,
                    const fp4m_stored_weight *st, fp4m_prec p, const double *want) {
    double y[M * N], y1[N];
    if (!fp4t_check(run_backend(policy, name, layer, st, p, 0, M, y) == 0, "%s: %s", what,
                    fp4_last_error()))
        return;
    int64_t bad = 0;
    for (int64_t i = 0; i < M * N; i++) bad += y[i] != want[i];
    fp4t_check(bad == 0, "%s (%s): %lld of %d outputs differ from the independent value (e.g. %.9g vs %.9g)",
               what, p == FP4M_F64 ? "f64" : "f32", (long long)bad, M * N, y[0], want[0]);
    for (int64_t r = 0; r < M; r++) {
        run_backend(policy, name, layer, st, p, r, 1, y1);
        fp4t_check(memcmp(y1, y + r * N, sizeof y1) == 0, "%s: row %lld alone differs", what, (long long)r);
    }
}

/* ------------------------------------------------------------------------- */

static void check_bf16(fp4m_prec p) {
    double want[M * N];
    for (int64_t r = 0; r < M; r++)
        for (int64_t n = 0; n < N; n++) {
            double acc = 0;
            float accf = 0;
            for (int64_t k = 0; k < K; k++) {
                double a = rn(FP4_FMT_BF16, in_x(p, r * K + k)), b = rn(FP4_FMT_BF16, in_w(p, n * K + k));
                acc = fma(a, b, acc);
                accf = fmaf((float)a, (float)b, accf);
            }
            want[r * N + n] = rn(FP4_FMT_BF16, p == FP4M_F64 ? acc : accf);
        }
    compare("bf16 (attention class)", "modelopt-r1", "model.layers.1.self_attn.q_b_proj.weight", 1,
            NULL, p, want);
}

/* Dequantized weight element: e2m1 * s8 (exact) and the decode scale. */
static double wq_elem(const fp4_qtensor *q, int64_t r, int64_t c) {
    return fp4_to_f64(FP4_FMT_E2M1, fp4_qtensor_code(q, r, c)) *
           fp4_to_f64(FP4_FMT_UE4M3, fp4_qtensor_scale(q, r, c));
}

static int quant_w(fp4m_prec p, fp4_qtensor *q) {
    float *wf = malloc(sizeof(float) * N * K);
    for (int64_t i = 0; i < N * K; i++) wf[i] = (float)in_w(p, i);
    fp4_qopts o = fp4_qopts_default();
    int rc = fp4_quantize_by_name("modelopt", FP4_FMT_F32, wf, N, K, &o, q);
    free(wf);
    return rc;
}

static void check_w4a16(fp4m_prec p) {
    fp4_qtensor q;
    if (!fp4t_check(quant_w(p, &q) == 0, "quantize: %s", fp4_last_error())) return;
    double want[M * N];
    for (int64_t r = 0; r < M; r++)
        for (int64_t n = 0; n < N; n++) {
            double acc = 0;
            float accf = 0;
            for (int64_t k = 0; k < K; k++) {
                double a = rn(FP4_FMT_BF16, in_x(p, r * K + k)), b = wq_elem(&q, n, k);
                acc = fma(a, b, acc);
                accf = fmaf((float)a, (float)b, accf);
            }
            double v = p == FP4M_F64 ? acc * (double)q.global_decode : (double)(accf * q.global_decode);
            want[r * N + n] = rn(FP4_FMT_BF16, v);
        }
    compare("nvfp4-w4a16 (dense MLP)", "nvfp4-w4a16", "model.layers.0.mlp.down_proj.weight", 0, NULL,
            p, want);
    fp4_qtensor_free(&q);
}

/* W4A4 expected rows: activation row quantized by flashinfer-fast from its
 * BF16 codes (global from `act` when given), exact dot, one rounding. */
static void w4a4_want(fp4m_prec p, const fp4_qtensor *wq, double wdec, const fp4_qopts *act,
                      double *want) {
    for (int64_t r = 0; r < M; r++) {
        uint16_t row[K];
        for (int64_t k = 0; k < K; k++) {
            fp4_cvt_opts o = fp4_cvt_opts_default();
            uint64_t c;
            fp4_encode_f64(FP4_FMT_BF16, in_x(p, r * K + k), &o, &c, NULL);
            row[k] = (uint16_t)c;
        }
        fp4_qtensor qa;
        if (!fp4t_check(fp4_quantize_by_name("flashinfer-fast", FP4_FMT_BF16, row, 1, K, act, &qa) == 0,
                        "act quantize: %s", fp4_last_error()))
            return;
        double a[K], b[K];
        for (int64_t n = 0; n < N; n++) {
            for (int64_t k = 0; k < K; k++) {
                a[k] = wq_elem(&qa, 0, k) * (double)qa.global_decode;
                b[k] = wq_elem(wq, n, k) * wdec; /* 30 significant bits at most: exact */
            }
            want[r * N + n] = exact_dot(a, b, K, 8);
        }
        fp4_qtensor_free(&qa);
    }
}

static void check_w4a4(fp4m_prec p) {
    fp4_qtensor q;
    if (!fp4t_check(quant_w(p, &q) == 0, "quantize: %s", fp4_last_error())) return;
    double want[M * N];
    fp4_qopts dyn = fp4_qopts_default();
    w4a4_want(p, &q, q.global_decode, &dyn, want);
    compare("nvfp4-w4a4 dynamic (expert)", "modelopt-r1", "model.layers.2.mlp.experts.4.gate_proj.weight",
            2, NULL, p, want);
    /* Stored weights: the codes given win over re-quantizing; ModelOpt's
     * decode scales and compressed-tensors' encode scales (bug A3). */
    for (int enc = 0; enc < 2; enc++) {
        const float wg = enc ? 1.0f / q.global_decode : q.global_decode;
        const float ig = enc ? 2688.0f / 30.0f : 30.0f / 2688.0f; /* static activation amax 30 */
        fp4m_stored_weight st = {FP4M_STORED_NVFP4,
                                 fp4_tensor_nvfp4(N, K, q.codes, q.scales, enc ? 1.0f / wg : wg),
                                 enc ? FP4M_GSCALE_ENCODE : FP4M_GSCALE_DECODE, wg, ig};
        fp4_qopts so = fp4_qopts_default();
        so.global_source = enc ? FP4_QGS_ENCODE : FP4_QGS_DECODE;
        so.global_scale = ig;
        w4a4_want(p, &q, enc ? (double)(1.0f / wg) : (double)wg, &so, want);
        /* Perturb the unquantized weights: the stored codes must be used. */
        for (int64_t i = 0; i < N * K; i++) g_w[i] *= 3.0;
        compare(enc ? "nvfp4-w4a4 stored, compressed-tensors" : "nvfp4-w4a4 stored, modelopt",
                "modelopt-r1", "model.layers.2.mlp.shared_experts.up_proj.weight", 2, &st, p, want);
        for (int64_t i = 0; i < N * K; i++) g_w[i] /= 3.0;
    }
    fp4_qtensor_free(&q);
}

static double e4m3(float v) {
    fp4_cvt_opts o = fp4_cvt_opts_default(); /* RNE satfinite */
    uint64_t c;
    fp4_encode_f32(FP4_FMT_E4M3, v, &o, &c, NULL);
    return fp4_to_f64(FP4_FMT_E4M3, c);
}

/* recipes.md §2.13: activations per token per 128 (K padded with zeros),
 * weights per 128x128 block, s = amax / 448 (activations: amax >= 1e-4). */
static void check_fp8(fp4m_prec p) {
    const int64_t KP = 256;
    static double xa[M][256], wb[N][256];
    memset(xa, 0, sizeof xa);
    memset(wb, 0, sizeof wb);
    for (int64_t r = 0; r < M; r++)
        for (int64_t g = 0; g < KP / 128; g++) {
            float amax = 1e-4f;
            for (int64_t k = g * 128; k < (g + 1) * 128 && k < K; k++)
                amax = fmaxf(amax, fabsf((float)rn(FP4_FMT_BF16, in_x(p, r * K + k))));
            float s = amax / 448.0f;
            for (int64_t k = g * 128; k < (g + 1) * 128 && k < K; k++)
                xa[r][k] = e4m3((float)rn(FP4_FMT_BF16, in_x(p, r * K + k)) / s) * s;
        }
    for (int64_t br = 0; br * 128 < N; br++)
        for (int64_t bc = 0; bc * 128 < K; bc++) {
            float amax = 0;
            for (int64_t n = br * 128; n < N && n < (br + 1) * 128; n++)
                for (int64_t k = bc * 128; k < K && k < (bc + 1) * 128; k++)
                    amax = fmaxf(amax, fabsf((float)in_w(p, n * K + k)));
            float s = amax / 448.0f;
            for (int64_t n = br * 128; n < N && n < (br + 1) * 128; n++)
                for (int64_t k = bc * 128; k < K && k < (bc + 1) * 128; k++)
                    wb[n][k] = e4m3((float)in_w(p, n * K + k) / s) * s;
        }
    double want[M * N];
    for (int64_t r = 0; r < M; r++)
        for (int64_t n = 0; n < N; n++) want[r * N + n] = exact_dot(xa[r], wb[n], K, 8);
    compare("fp8-block (attention class)", "fp8-block", "model.layers.1.self_attn.kv_b_proj.weight", 1,
            NULL, p, want);
}

/* An activation row with an all-zero 128-channel group (recipes.md §2.13:
 * amax = max(max|x|, 1e-4), so the group's scale is 1e-4/448 and its codes
 * are 0): row 1 zero in channels 0..127, row 2 zero in 128..191 (its
 * second group, padding included, is all zero). The expected values come
 * from check_fp8's own derivation; without the 1e-4 floor the group's
 * scale is 0 and 0/0 makes every output of the row NaN (issue 16 item 3c:
 * no test had an all-zero group). Row 0 keeps random data. */
static void check_fp8_zero_group(fp4m_prec p) {
    static double save[M * K];
    memcpy(save, g_x, sizeof save);
    for (int64_t k = 0; k < 128; k++) g_x[1 * K + k] = 0.0;
    for (int64_t k = 128; k < K; k++) g_x[2 * K + k] = 0.0;
    check_fp8(p);
    /* And the rows are finite: a NaN there would also fail check_fp8's
     * comparison, but say it plainly. */
    double y[M * N];
    if (fp4t_check(run_backend("fp8-block", "model.layers.1.self_attn.kv_b_proj.weight", 1, NULL, p, 0,
                               M, y) == 0, "fp8-block zero group: %s", fp4_last_error())) {
        int64_t nan = 0;
        for (int64_t i = 0; i < M * N; i++) nan += isnan(y[i]);
        fp4t_check(nan == 0, "fp8-block, all-zero 128-group (%s): %lld NaN outputs",
                   p == FP4M_F64 ? "f64" : "f32", (long long)nan);
    }
    memcpy(g_x, save, sizeof save);
}

/* BF16 rounding of the activations at its edge cases, through an identity
 * weight (y_k = RN_bf16(x_k) exactly): ties to even, values just above a
 * tie that rounding through FP32 first would get wrong, carries into the
 * exponent, the normal-range limits, subnormals and overflow. Expected
 * values: ref/'s exact conversion. */
static void check_bf16_edges(void) {
    static double x[K], w[K * K], y[K];
    const double tie = 1.0 + 0x1p-8; /* halfway between 1 and 1 + 2^-7 */
    const double base[] = {tie, 1.0 + 3 * 0x1p-8, tie + 0x1p-40, tie - 0x1p-40, 1.0 + 0x1p-7 - 0x1p-60,
                           2.0 - 0x1p-9, 0x1p-126, 0x1.ffp-127, 0x1p-130, 0x1.0080000001p-126,
                           0x1.ffp127, 0x1.ff8p127, 3.3895313892515355e38, 1e-300, 0.0, 1e300};
    const int nb = (int)(sizeof base / sizeof base[0]);
    for (int i = 0; i < K; i++) {
        x[i] = i < 2 * nb ? (i % 2 ? -base[i / 2] : base[i / 2])
                          : ldexp((double)fp4t_rand32(fp4t_seed(), 7, (uint64_t)i) / 4294967296.0 + 0.5,
                                  (int)(fp4t_rand32(fp4t_seed(), 8, (uint64_t)i) % 60) - 30);
        for (int j = 0; j < K; j++) w[i * K + j] = i == j;
    }
    fp4m_policy pol;
    fp4m_gemm_backend *b;
    if (fp4m_policy_from_name("bf16", &pol) || fp4m_policy_backend_new(&pol, &b)) return;
    fp4m_linear_desc d = {"model.layers.0.self_attn.q_a_proj.weight", 0, -1, K, K, NULL, FP4M_LC_ATTN};
    int bad = 0;
    if (fp4t_check(b->gemm_f64(b->ctx, &d, 1, x, w, y) == 0, "bf16 edges: %s", fp4_last_error()))
        for (int i = 0; i < K; i++) {
            double want = rn(FP4_FMT_BF16, x[i]);
            if (!(y[i] == want || (isnan(y[i]) && isnan(want))) && bad++ < 5)
                fprintf(stderr, "bf16(%a) = %a, expected %a\n", x[i], y[i], want);
        }
    fp4t_check(bad == 0, "bf16 edge cases: %d wrong", bad);
    fp4m_policy_backend_free(b);
}

static void check_names(void) {
    static const char *const ok[] = {"reference", "bf16", "fp8-block", "modelopt-r1",
                                     "modelopt-r1-v2", "nvfp4-w4a16", "nvfp4-all"};
    fp4m_policy pol;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        fp4t_check(fp4m_policy_from_name(ok[i], &pol) == 0, "policy %s", ok[i]);
    fp4t_check(fp4m_policy_from_name("nvfp4", &pol) != 0 && strstr(fp4_last_error(), "modelopt-r1"),
               "unknown policy error lists the valid ones: '%s'", fp4_last_error());
    /* ModelOpt R1 v1 (recipes.md §7.1): only MLP and expert linears NVFP4. */
    fp4m_policy_from_name("modelopt-r1", &pol);
    struct { const char *name; int64_t layer; fp4m_qfmt want; } cases[] = {
        {"model.layers.3.self_attn.q_a_proj.weight", 3, FP4M_Q_BF16},
        {"model.layers.3.self_attn.kv_b_proj.weight", 3, FP4M_Q_BF16},
        {"model.layers.3.self_attn.o_proj.weight", 3, FP4M_Q_BF16},
        {"model.layers.0.mlp.gate_proj.weight", 0, FP4M_Q_W4A4},
        {"model.layers.2.mlp.experts.4.gate_proj.weight", 2, FP4M_Q_W4A4},
        {"model.layers.3.mlp.experts.255.down_proj.weight", 3, FP4M_Q_W4A4},
        {"model.layers.3.mlp.shared_experts.up_proj.weight", 3, FP4M_Q_W4A4},
        {"lm_head.weight", -1, FP4M_Q_BF16},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fp4m_linear_desc d = {cases[i].name, cases[i].layer, -1, 1, 16, NULL,
                              fp4t_lclass_of(cases[i].name)};
        fp4t_check((int)d.lclass >= 0, "the manifest has no linear layer '%s'", cases[i].name);
        fp4t_check(pol.fmt[fp4m_linear_class(&d)] == cases[i].want, "modelopt-r1: %s is %s",
                   cases[i].name, fp4m_qfmt_name(pol.fmt[fp4m_linear_class(&d)]));
    }
    fp4m_policy_from_name("modelopt-r1-v2", &pol);
    fp4m_linear_desc o = {"model.layers.3.self_attn.o_proj.weight", 3, -1, 1, 16, NULL,
                          fp4t_lclass_of("model.layers.3.self_attn.o_proj.weight")};
    fp4t_check(pol.fmt[fp4m_linear_class(&o)] == FP4M_Q_W4A4, "modelopt-r1-v2 quantizes o_proj");
    fp4m_gemm_backend *b;
    fp4m_policy_from_name("modelopt-r1", &pol);
    snprintf(pol.act_recipe, sizeof pol.act_recipe, "mxfp4");
    fp4t_check(fp4m_policy_backend_new(&pol, &b) != 0, "MX recipe refused for NVFP4");
}

/* ------------------------------------------------------------------------- */

typedef struct bf16_scan {
    int64_t checked, not_bf16;
} bf16_scan;

/* Outputs of BF16-class (self_attn = o_proj) and NVFP4-class (layer 0 mlp =
 * down_proj) linears must be BF16 numbers under modelopt-r1. */
static int scan_cb(void *ctx, const fp4m_event *ev) {
    bf16_scan *s = ctx;
    if (ev->dtype != FP4M_DT_F32 || (strcmp(ev->op, "self_attn") && !(ev->layer == 0 && !strcmp(ev->op, "mlp"))))
        return 0;
    int64_t n = ev->shape[0] * ev->shape[1];
    for (int64_t i = 0; i < n; i++) {
        float v = ((const float *)ev->data)[i];
        s->checked++;
        s->not_bf16 += (fp4t_f32_bits(v) & 0xFFFFu) != 0;
    }
    return 0;
}

static int model_logits(const char *policy, bool split, bf16_scan *scan, float *logits) {
    fp4m_policy pol;
    fp4m_gemm_backend *b = NULL;
    if (fp4m_policy_from_name(policy, &pol) || fp4m_policy_backend_new(&pol, &b)) return -1;
    fp4m_opts o = fp4m_opts_reference(FP4M_F32);
    o.gemm = b;
    o.trace = scan ? scan_cb : NULL;
    o.trace_ctx = scan;
    fp4m_model *m = NULL;
    static const int64_t ids[8] = {17, 4, 250, 9, 77, 301, 2, 64};
    int rc = fp4m_open(TINY_DIR, &o, &m);
    const int64_t V = rc ? 0 : fp4m_model_config(m)->vocab_size;
    for (int64_t i = 0; rc == 0 && i < 8; i += split ? 1 : 8)
        rc = fp4m_forward(m, ids + i, split ? 1 : 8, false, logits + i * V);
    if (rc) fprintf(stderr, "%s\n", fp4_last_error());
    fp4m_close(m);
    fp4m_policy_backend_free(b);
    return rc;
}

static void check_model(void) {
    const int64_t n = 8 * 512;
    float *ref = malloc(n * 4), *full = malloc(n * 4), *inc = malloc(n * 4);
    bf16_scan scan = {0, 0}, scan_ref = {0, 0};
    int rc = model_logits("reference", false, &scan_ref, ref) | model_logits("modelopt-r1", false, &scan, full) |
             model_logits("modelopt-r1", true, NULL, inc);
    if (fp4t_check(rc == 0, "model runs")) {
        fp4t_check(memcmp(full, inc, n * 4) == 0, "modelopt-r1: incremental decode != full forward");
        /* Max |logit difference| / max |reference logit| per policy. The
         * error must grow with the format's coarseness (BF16 2^-8 relative
         * spacing, E4M3 2^-3, E2M1 2^-1), and stay below "unrelated". */
        static const char *const pols[] = {"bf16", "fp8-block", "nvfp4-w4a16", "modelopt-r1"};
        double rel[4], rmax = 0;
        for (int64_t i = 0; i < n; i++) rmax = fmax(rmax, fabs((double)ref[i]));
        for (int j = 0; j < 4; j++) {
            float *l = j == 3 ? full : inc;
            if (j < 3) model_logits(pols[j], false, NULL, inc);
            double d = 0;
            for (int64_t i = 0; i < n; i++) d = fmax(d, fabs((double)l[i] - ref[i]));
            rel[j] = d / rmax;
            printf("%-12s vs reference logits: max rel diff %.3g\n", pols[j], rel[j]);
        }
        fp4t_check(rel[0] > 0 && rel[0] < 0.05 && rel[0] < rel[1] && rel[1] < rel[3] && rel[3] < 1.5,
                   "logit errors not ordered bf16 < fp8 < nvfp4: %g %g %g", rel[0], rel[1], rel[3]);
        fp4t_check(scan.checked > 0 && scan.not_bf16 == 0, "%lld of %lld quantized-linear outputs not BF16",
                   (long long)scan.not_bf16, (long long)scan.checked);
        fp4t_check(scan_ref.not_bf16 > scan_ref.checked / 2, "reference outputs are not BF16 (scan works)");
    }
    free(ref);
    free(full);
    free(inc);
}

/* Policies take engines: the GEMMs of W4A4 and FP8 linears run on the
 * engine the caller gives. An explicitly opened "ref" equals the default
 * (NULL); the emu engines give other bits (FP16 block accumulation for
 * NVFP4, QGMMA with DeepSeek's promotion for FP8), and an FP8 engine that
 * cannot apply FP32 block scales (no promotion) fails with a message. */
static void check_engines(fp4m_prec p) {
    double y0[M * N], y1[M * N];
    const char *lin = "model.layers.2.mlp.experts.4.gate_proj.weight";
    g_out = FP4_FMT_F32; /* FP32 outputs: a BF16 rounding could hide the engine's bits */
    struct { const char *policy, *spec; bool differs; } cases[] = {
        {"modelopt-r1", "ref", false},
        {"modelopt-r1", "emu:f16-blocks", true},
        {"fp8-block", "ref", false},
        {"fp8-block", "emu:sm90-qgmma-e4m3-f32;promote=128", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        g_engine = NULL;
        int rc0 = run_backend(cases[i].policy, lin, 2, NULL, p, 0, M, y0);
        const char *spec = cases[i].spec;
        int rc = strncmp(spec, "emu:", 4) == 0 ? fp4emu_engine_open(spec + 4, &g_engine)
                                               : fp4_engine_ref_open(&g_engine);
        int rc1 = rc ? -1 : run_backend(cases[i].policy, lin, 2, NULL, p, 0, M, y1);
        fp4_engine_close(g_engine);
        g_engine = NULL;
        if (!fp4t_check(rc0 == 0 && rc1 == 0, "%s with %s: %s", cases[i].policy, spec, fp4_last_error()))
            continue;
        int64_t diff = 0;
        for (int j = 0; j < M * N; j++) diff += y0[j] != y1[j];
        fp4t_check(cases[i].differs ? diff > 0 : diff == 0, "%s with engine %s: %lld outputs differ "
                   "from the default engine", cases[i].policy, spec, (long long)diff);
    }
    fp4t_check(fp4emu_engine_open("sm90-qgmma-e4m3-f32", &g_engine) == 0, "open qgmma");
    fp4t_check(run_backend("fp8-block", lin, 2, NULL, p, 0, M, y1) != 0 &&
                   strstr(fp4_last_error(), "promot"),
               "FP8 on an engine without promotion: '%s'", fp4_last_error());
    fp4_engine_close(g_engine);
    g_engine = NULL;
    g_out = FP4_FMT_COUNT;
    fp4t_check(fp4emu_engine_open("no-such-preset", &g_engine) != 0 &&
                   strstr(fp4_last_error(), "no-such-preset"),
               "unknown preset: '%s'", fp4_last_error());
}

int main(void) {
    fp4t_begin("test_model_policy");
    fill(fp4t_seed());
    check_names();
    check_bf16_edges();
    for (int p = 0; p < 2; p++) {
        check_bf16((fp4m_prec)p);
        check_w4a16((fp4m_prec)p);
        check_w4a4((fp4m_prec)p);
        check_fp8((fp4m_prec)p);
        check_fp8_zero_group((fp4m_prec)p);
        check_engines((fp4m_prec)p);
    }
    check_model();
    mpfr_free_cache();
    return fp4t_end();
}
