/* test_quant_recipes.c - every NVFP4 recipe (ref/quant_nvfp4.c) against
 * hand-derived bytes and its published formula (recipes.md §2-§4):
 *  - hand vectors: a unit-scale block with every E2M1 tie and signed zeros,
 *    the §4 underflow block {1e-8, 0...} (amax 1), the all-zero block, an
 *    all-zero tensor (amax 0), NaN and Inf inputs, subnormal block scales,
 *    the compressed-tensors BF16 global-scale example (3.1416 -> 856);
 *  - ties at every E2M1 boundary (and one FP32 ulp either side) under
 *    power-of-two global scales 2^-30..2^30 and every power-of-two block
 *    scale 2^-9..2^8, for every recipe and both torch devices;
 *  - the recipes re-implemented here from the formulas (independent code:
 *    float arithmetic in the test, an E2M1 threshold encoder) on random BF16
 *    tensors, byte for byte, for every recipe and device;
 *  - global-scale divergence counts of recipes.md §6 (1023 of 3968 ...);
 *  - TE options (2D tiles, stochastic rounding, RHT), dequantization, errors.
 */
#define FP4QUANT_INTERNAL 1 /* for fp4q_te_rht, tested directly */
#include "fp4quant.h"
#include "testutil.h"

#include <float.h>
#include <math.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

static const char *const k_nv[] = {"modelopt-v0.2x", "modelopt", "torchao", "torchao-2025", "te",
                                   "vllm-fast", "flashinfer-fast", "flashinfer-exact",
                                   "compressed-tensors", "vllm-exact"};
#define NNV ((int)(sizeof k_nv / sizeof k_nv[0]))

/* E2M1 magnitude code by the RNE thresholds of numerics.md §2.1. */
static uint8_t t_e2m1_mag(float a) {
    if (a <= 0.25f) return 0;
    if (a < 0.75f) return 1;
    if (a <= 1.25f) return 2;
    if (a < 1.75f) return 3;
    if (a <= 2.5f) return 4;
    if (a < 3.5f) return 5;
    if (a <= 5.0f) return 6;
    return 7;
}

static bool is_torch(const char *name) {
    const fp4_qrecipe *r = NULL;
    fp4_qrecipe_from_name(name, &r);
    return r && r->torch;
}

/* Quantizes one row of n FP32 values; returns 0 and fills scale bytes and
 * unpacked codes. */
static int q_row(const char *name, const float *x, int n, const fp4_qopts *o, uint8_t *scales,
                 uint8_t *codes, fp4_qtensor *keep) {
    fp4_qtensor q;
    if (fp4_quantize_by_name(name, FP4_FMT_F32, x, 1, n, o, &q) != 0) return -1;
    for (int i = 0; i < n; i++) codes[i] = fp4_qtensor_code(&q, 0, i);
    for (int b = 0; b < n / 16; b++) scales[b] = fp4_qtensor_scale(&q, 0, b * 16);
    if (keep) *keep = q;
    else fp4_qtensor_free(&q);
    return 0;
}

static fp4_qopts amax_opts(float amax, fp4_torch_device dev) {
    fp4_qopts o = fp4_qopts_default();
    o.global_source = FP4_QGS_AMAX;
    o.amax = amax;
    o.torch_device = dev;
    return o;
}

static void expect_block(const char *name, const char *what, const float *x, const fp4_qopts *o,
                         uint8_t want_scale, const uint8_t *want_codes) {
    uint8_t s = 0xEE, c[16] = {0};
    if (!fp4t_check(q_row(name, x, 16, o, &s, c, NULL) == 0, "%s %s: %s", name, what, fp4_last_error()))
        return;
    fp4t_check(s == want_scale, "%s %s: scale %02x, want %02x", name, what, s, want_scale);
    for (int i = 0; i < 16; i++)
        fp4t_check(c[i] == want_codes[i], "%s %s: code[%d] = %x, want %x (x = %a)", name, what, i,
                   c[i], want_codes[i], (double)x[i]);
}

/* ------------------------------------------------------------------------ */
/* Hand-derived vectors                                                      */
/* ------------------------------------------------------------------------ */

/* Block A, tensor amax 2688 given: every recipe's tensor scale is exactly 1.
 * Derivation (RN = FP32 round to nearest even):
 *  - 2688 * RN(1/2688): RN(1/2688) = 12782641 * 2^-35, times 2688 =
 *    2^35 + 640 units of 2^-35 -> 1 + 640*2^-35 rounds to 1 (torch CUDA
 *    `amax / 2688.0`, FlashInfer's reciprocal * 2688, CT);
 *  - 2688 * RN(1/6) = 448 + 896*2^-26 -> 448 (half ulp 2^-16 is larger),
 *    448 * RN(1/448) = 1 + 3*2^-26 -> 1 (modelopt-v0.2x on CUDA);
 *  - TE: S_enc = 2688/2688 = 1, S_dec = 1.
 * bamax = 6 and 6 * RN(1/6) = 1 + 2^-25 -> 1, so every block scale is 1.0 =
 * E4M3 0x38 and every element scale is 1: y = x, and the codes are the
 * E2M1 encoding of x itself: 6->7, 5->6 (tie to 4), 3.5->6 (tie to 4),
 * 2.5->4 (tie to 2), 1.75->4, 1.25->2 (tie to 1), 0.75->2, 0.25->0,
 * -0.25->8, -0.75->A, -3->D, 0.1->0, -0.1->8 (tiny negative keeps its sign
 * in every caster), 0->0, 1->2; -0.0 -> 0x0 for modelopt (_cast_fp4 sign =
 * x<0) and compressed-tensors (torch.sign(-0.) = 0), 0x8 for torchao (sign
 * bit) and the hardware cvt (TE, vLLM, FlashInfer). */
static void test_block_a(void) {
    const float x[16] = {6, 5, 3.5f, 2.5f, 1.75f, 1.25f, 0.75f, 0.25f,
                         -0.25f, -0.75f, -3, -0.0f, 0.1f, -0.1f, 0, 1};
    const uint8_t zero_pos[16] = {7, 6, 6, 4, 4, 2, 2, 0, 8, 0xA, 0xD, 0x0, 0, 8, 0, 2};
    const uint8_t zero_neg[16] = {7, 6, 6, 4, 4, 2, 2, 0, 8, 0xA, 0xD, 0x8, 0, 8, 0, 2};
    for (int dev = 0; dev < 2; dev++) {
        fp4_qopts o = amax_opts(2688.0f, (fp4_torch_device)dev);
        for (int k = 0; k < NNV; k++) {
            if (dev == 1 && !is_torch(k_nv[k])) continue;
            bool plus_zero = !strcmp(k_nv[k], "modelopt") || !strcmp(k_nv[k], "modelopt-v0.2x") ||
                             !strcmp(k_nv[k], "compressed-tensors");
            expect_block(k_nv[k], dev ? "block A (cpu)" : "block A", x, &o, 0x38,
                         plus_zero ? zero_pos : zero_neg);
        }
    }
}

/* The underflow block of recipes.md §4: {1e-8, 0 x 15}, tensor amax 1.
 *  - v0.2x: s = (1e-8/6)/wsf2 ~ 4.5e-6 < 2^-10 -> fp8 0x00 (no clamp);
 *    d = 0 * wsf2 = 0; 1e-8/0 = inf -> 0x7 and 0/0 = NaN -> 0x7 (§2.1).
 *  - modelopt: s ~ 4.5e-6 clamps to 2^-9 = 0x01; y = 1e-8/(2^-9*wsf2)
 *    ~ 0.0138 -> 0.
 *  - torchao: sbs ~ 4.5e-6 clamps to 2^-6 = 0x08; y ~ 1.7e-3 -> 0.
 *  - TE / FlashInfer exact: s8 = fp8(1e-8 * RN(2688*RN(1/6)) = 4.5e-6) =
 *    0x00; inv = min(1/0, FLT_MAX) = FLT_MAX; 1e-8*FLT_MAX -> 0x7, 0 -> 0.
 *  - vLLM: s8 = 0x00, guard SF != 0 -> outScale 0 -> all codes 0.
 *  - FlashInfer fast: guard vecMax != 0 passes, rcp(0 * rcp(SF)) = inf:
 *    1e-8*inf -> 0x7, 0*inf = NaN -> +6 = 0x7 (§2.7 edge case).
 *  - compressed-tensors: gs = 2688, s = gs*RN(1e-8/6) ~ 4.5e-6 -> fp8 0 ->
 *    0.125 = 0x20; y = 1e-8/(0.125/2688) ~ 2.2e-4 -> 0. */
static void test_block_underflow(void) {
    float x[16] = {1e-8f};
    uint8_t all7[16], first7[16] = {7}, zero[16] = {0};
    memset(all7, 7, sizeof all7);
    struct { const char *name; uint8_t scale; const uint8_t *codes; } cases[] = {
        {"modelopt-v0.2x", 0x00, all7},   {"modelopt", 0x01, zero},
        {"torchao", 0x08, zero},          {"torchao-2025", 0x08, zero},
        {"te", 0x00, first7},             {"flashinfer-exact", 0x00, first7},
        {"vllm-fast", 0x00, zero},        {"flashinfer-fast", 0x00, all7},
        {"compressed-tensors", 0x20, zero},
    };
    for (int dev = 0; dev < 2; dev++) {
        fp4_qopts o = amax_opts(1.0f, (fp4_torch_device)dev);
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
            if (dev == 1 && !is_torch(cases[k].name)) continue;
            expect_block(cases[k].name, "underflow block", x, &o, cases[k].scale, cases[k].codes);
        }
    }
}

/* An all-zero block inside a tensor whose amax is 1 (given): the zero-block
 * scale byte of each producer (recipes.md §0.5, §4), codes 0 (+0 inputs). */
static void test_zero_block(void) {
    float x[16] = {0};
    uint8_t zero[16] = {0};
    for (int k = 0; k < NNV; k++) {
        const fp4_qrecipe *r = NULL;
        fp4_qrecipe_from_name(k_nv[k], &r);
        for (int dev = 0; dev < 2; dev++) {
            fp4_qopts o = amax_opts(1.0f, (fp4_torch_device)dev);
            if (dev == 1 && !r->torch) continue;
            expect_block(k_nv[k], "zero block", x, &o, (uint8_t)r->zero_block_scale, zero);
        }
    }
    /* And the registry states recipes.md's table. */
    const char *names[] = {"modelopt-v0.2x", "modelopt", "torchao", "te", "vllm-fast",
                           "flashinfer-fast", "compressed-tensors", "mxfp4"};
    const int want[] = {0x38, 0x38, 0x08, 0x00, 0x00, 0x00, 0x20, 0x00};
    for (int i = 0; i < 8; i++) {
        const fp4_qrecipe *r = NULL;
        fp4_qrecipe_from_name(names[i], &r);
        fp4t_check(r && r->zero_block_scale == want[i], "%s zero_block_scale", names[i]);
    }
}

/* An all-zero tensor, amax computed = 0 (recipes.md §3 "Degenerate global
 * amax", derived here in full; CUDA NaN = +canonical, x86 NaN = 0xFFC00000):
 *  - modelopt: wsf2 = 0; s = 0/(6*0) = NaN -> clamp keeps NaN -> fp8 0x7F
 *    (CPU: the x86 NaN is negative and torch keeps the sign: 0xFF);
 *    y = 0/NaN -> code 0x7.
 *  - v0.2x: ps = 0 -> s = 1.0 (0x38); y = 0/(1*0) = NaN -> 0x7.
 *  - torchao: sbs = 0/0 = NaN -> 0x7F (CPU 0xFF); r = (1/0)/NaN = NaN; y = NaN
 *    -> bit trick: 0x7FFFFFFF -> 0x4 (CUDA), 0xFFC00000 -> 0xB (CPU).
 *  - TE: S_enc forced to 1; s8 = 0; inv = FLT_MAX; y = 0 -> 0x0.
 *  - vLLM: input_scale = 0, SF = 1/0 = inf, rcp(SF) = 0; SF*(0*rcp6) = NaN ->
 *    satfinite 0x7F; NaN != 0 so outScale = rcp(NaN) = NaN; y = NaN -> +6.
 *  - FlashInfer fast: SF = (1/0)*2688 = inf; s8 = NaN -> 0x7F; vecMax == 0 ->
 *    outScale 0 -> 0x0. Exact: s8 = 0*(inf*RN(1/6)) = NaN -> 0x7F; outScale
 *    = fminf(1/(NaN*0), FLT_MAX) = FLT_MAX; y = 0 -> 0x0.
 *  - compressed-tensors: amax clamps to 2^-126, 2^126*2688 overflows -> gs =
 *    inf; s = inf*0 = NaN -> 0x7F; y = 0/(NaN/inf) = NaN -> 0x0. */
static void test_amax_zero(void) {
    float x[32] = {0};
    struct { const char *name; int dev; uint8_t scale, code; } cases[] = {
        {"modelopt", 0, 0x7F, 7},        {"modelopt", 1, 0xFF, 7},
        {"modelopt-v0.2x", 0, 0x38, 7},  {"modelopt-v0.2x", 1, 0x38, 7},
        {"torchao", 0, 0x7F, 4},         {"torchao", 1, 0xFF, 0xB},
        {"torchao-2025", 0, 0x7F, 4},    {"torchao-2025", 1, 0xFF, 0xB},
        {"te", 0, 0x00, 0},              {"vllm-fast", 0, 0x7F, 7},
        {"flashinfer-fast", 0, 0x7F, 0}, {"flashinfer-exact", 0, 0x7F, 0},
        {"compressed-tensors", 0, 0x7F, 0}, {"compressed-tensors", 1, 0xFF, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        fp4_qopts o = fp4_qopts_default();
        o.torch_device = (fp4_torch_device)cases[k].dev;
        uint8_t want[32];
        memset(want, cases[k].code, sizeof want);
        uint8_t s[2] = {0xEE, 0xEE}, c[32] = {0};
        if (!fp4t_check(q_row(cases[k].name, x, 32, &o, s, c, NULL) == 0, "%s amax 0: %s",
                        cases[k].name, fp4_last_error()))
            continue;
        fp4t_check(s[0] == cases[k].scale && s[1] == cases[k].scale, "%s dev %d amax 0: scale %02x %02x want %02x",
                   cases[k].name, cases[k].dev, s[0], s[1], cases[k].scale);
        fp4t_check(memcmp(c, want, 32) == 0, "%s dev %d amax 0: code %x want %x", cases[k].name,
                   cases[k].dev, c[0], cases[k].code);
    }
}

/* NaN and Inf inputs with the tensor amax given (1):
 *  - torch recipes (CUDA): the block amax is NaN (torch reductions
 *    propagate it), so the block scale is NaN = 0x7F and every element of
 *    that block becomes NaN: modelopt 0x7, torchao 0x4 (bit trick of
 *    0x7FFFFFFF), compressed-tensors 0x0.
 *  - kernels (fmaxf / __hmax2 ignore NaN): the scale comes from the other
 *    elements (bamax 1 -> TE s8 = fp8(448) = 0x7E), the NaN element -> +6
 *    (cvt.satfinite), 1 -> 0x7 (y = 6), 0 -> 0.
 *  - Inf (amax 1 given): bamax = inf -> TE s8 = fp8sat(inf) = 0x7E, inv =
 *    1/(448*S_dec) = 6 (S_dec*448 = RN(1/6)), inf*6 -> 0x7, -inf -> 0xF.
 *  - NaN on the torch CPU model is refused, as is NaN with a computed amax
 *    for the kernel recipes. */
static void test_nan_inf(void) {
    float x[16] = {NAN, 1.0f, 0.0f};
    uint8_t s, c[16];
    struct { const char *name; uint8_t scale, nan_code, one_code; } cases[] = {
        {"modelopt", 0x7F, 7, 7},   {"modelopt-v0.2x", 0x7F, 7, 7}, {"torchao", 0x7F, 4, 4},
        {"torchao-2025", 0x7F, 4, 4}, {"compressed-tensors", 0x7F, 0, 0}, {"te", 0x7E, 7, 7},
        {"vllm-fast", 0x7E, 7, 7},  {"flashinfer-fast", 0x7E, 7, 7}, {"flashinfer-exact", 0x7E, 7, 7},
    };
    fp4_qopts o = amax_opts(1.0f, FP4_TORCH_CUDA);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        if (!fp4t_check(q_row(cases[k].name, x, 16, &o, &s, c, NULL) == 0, "%s NaN: %s",
                        cases[k].name, fp4_last_error()))
            continue;
        fp4t_check(s == cases[k].scale, "%s NaN block scale %02x want %02x", cases[k].name, s,
                   cases[k].scale);
        fp4t_check(c[0] == cases[k].nan_code && c[1] == cases[k].one_code, "%s NaN codes %x %x",
                   cases[k].name, c[0], c[1]);
    }
    fp4_qopts cpu = amax_opts(1.0f, FP4_TORCH_CPU);
    fp4t_check(q_row("modelopt", x, 16, &cpu, &s, c, NULL) == -1, "modelopt CPU NaN refused");
    fp4_qopts comp = fp4_qopts_default();
    fp4t_check(q_row("te", x, 16, &comp, &s, c, NULL) == -1, "te NaN with computed amax refused");
    fp4t_check(q_row("modelopt", x, 16, &comp, &s, c, NULL) == 0 && s == 0x7F && c[1] == 7,
               "modelopt NaN computed amax: every scale NaN");

    float y[16] = {INFINITY, -INFINITY, 1.0f, 0.0f};
    if (fp4t_check(q_row("te", y, 16, &o, &s, c, NULL) == 0, "te inf"))
        fp4t_check(s == 0x7E && c[0] == 7 && c[1] == 0xF && c[2] == 7 && c[3] == 0,
                   "te inf: %02x %x %x %x %x", s, c[0], c[1], c[2], c[3]);
    /* modelopt: inf / (s8*wsf2): bamax inf -> s = inf -> clamp 448 (0x7E). */
    if (fp4t_check(q_row("modelopt", y, 16, &o, &s, c, NULL) == 0, "modelopt inf"))
        fp4t_check(s == 0x7E && c[0] == 7 && c[1] == 0xF, "modelopt inf: %02x %x %x", s, c[0], c[1]);
}

/* Subnormal block scales: tensor scale 1 (amax 2688), bamax = 6*k*2^-9 for
 * k = 1..7 gives s = k*2^-9 exactly (the recipes' block-scale arithmetic is
 * exact here: see block A), i.e. the E4M3 subnormal code k; the block max
 * element then encodes as 6 (0x7) and half of it as 3 (0x5). torchao clamps
 * at 2^-6 (0x08) instead; modelopt's clamp at 2^-9 leaves them alone.
 * With s8 = k*2^-9 and a unit tensor scale every recipe's element step is
 * exact or, for the reciprocal recipes, off by < 1 ulp, which cannot move
 * 6 or 3 across a decision boundary. */
static void test_subnormal_scales(void) {
    for (int k = 1; k <= 7; k++) {
        float x[16] = {6.0f * k * 0x1p-9f, 3.0f * k * 0x1p-9f, -3.0f * k * 0x1p-9f};
        for (int i = 0; i < NNV; i++) {
            bool torchao = !strncmp(k_nv[i], "torchao", 7);
            uint8_t want[16] = {7, 5, 0xD};
            if (torchao) { /* s8 = 2^-6: y = x / 2^-6 */
                float y0 = x[0] * 64.0f, y1 = x[1] * 64.0f;
                want[0] = f32_to_e2m1(y0, NULL, NULL, NULL);
                want[1] = f32_to_e2m1(y1, NULL, NULL, NULL);
                want[2] = (uint8_t)(want[1] | 8);
            }
            fp4_qopts o = amax_opts(2688.0f, FP4_TORCH_CUDA);
            expect_block(k_nv[i], "subnormal scale", x, &o, torchao ? 0x08 : (uint8_t)k, want);
        }
    }
}

/* compressed-tensors for a BF16 model: amax 3.1416 -> bf16 3.140625;
 * reciprocal in bf16: RN(1/3.140625) = 0.31840796 -> bf16 0.318359375;
 * * 2688 = 855.75 -> bf16 856 (recipes.md §0.4 [MEAS]: 856.0). FP32 model:
 * RN(RN(1/3.1416) * 2688). */
static void test_ct_global(void) {
    uint16_t x[16];
    fp4_cvt_opts co = fp4_cvt_opts_default();
    for (int i = 0; i < 16; i++) x[i] = f32_to_bf16(i == 0 ? 3.1416f : 0.5f, &co, NULL, NULL);
    fp4_qtensor q;
    if (fp4t_check(fp4_quantize_by_name("ct", FP4_FMT_BF16, x, 1, 16, NULL, &q) == 0, "ct bf16")) {
        fp4t_check(q.global_stored == 856.0f, "ct bf16 gs = %.9g, want 856", (double)q.global_stored);
        fp4t_check(q.global_decode == 1.0f / 856.0f, "ct decode = RN(1/gs)");
        fp4_qtensor_free(&q);
    }
    float xf[16] = {3.1416f};
    if (fp4t_check(fp4_quantize_by_name("ct", FP4_FMT_F32, xf, 1, 16, NULL, &q) == 0, "ct f32")) {
        volatile float r = 1.0f / 3.1416f;
        fp4t_check(q.global_stored == r * 2688.0f, "ct f32 gs = reciprocal * 2688");
        fp4_qtensor_free(&q);
    }
}

/* CUDA vs CPU torch semantics differ where amax/2688 != amax*RN(1/2688):
 * find such a bf16 amax and check modelopt's weight_scale_2 follows. */
static void test_torch_device(void) {
    int found = 0;
    for (uint32_t m = 0; m < 128 && !found; m++) {
        float a = fp4t_f32_from_bits(0x3F800000u | (m << 16));
        volatile float inv = (float)(1.0 / 2688.0);
        float cuda = a * inv, cpu = a / 2688.0f;
        if (cuda == cpu) continue;
        found = 1;
        float xs[16] = {a};
        fp4_qtensor q;
        fp4_qopts o = fp4_qopts_default();
        if (fp4_quantize_by_name("modelopt", FP4_FMT_F32, xs, 1, 16, &o, &q) == 0) {
            fp4t_check(q.global_stored == cuda, "modelopt CUDA wsf2 = amax * RN(1/2688)");
            fp4_qtensor_free(&q);
        }
        o.torch_device = FP4_TORCH_CPU;
        if (fp4_quantize_by_name("modelopt", FP4_FMT_F32, xs, 1, 16, &o, &q) == 0) {
            fp4t_check(q.global_stored == cpu, "modelopt CPU wsf2 = amax / 2688");
            fp4_qtensor_free(&q);
        }
    }
    fp4t_check(found, "no bf16 amax where the devices differ");
    /* ATen's reciprocal in double then float equals float 1/x for the
     * constants the recipes divide by. */
    const double ks[] = {6.0, 448.0, 2688.0};
    for (int i = 0; i < 3; i++) {
        volatile float f = (float)ks[i];
        fp4t_check((float)(1.0 / ks[i]) == 1.0f / f, "reciprocal of %g", ks[i]);
    }
}

/* ------------------------------------------------------------------------ */
/* Ties at every E2M1 boundary under many scales                             */
/* ------------------------------------------------------------------------ */

/* With tensor amax 2688*2^j (tensor scale exactly 2^j in every recipe, see
 * block A) and bamax = 6*2^(j+k), every recipe's block scale is exactly 2^k
 * and its element step multiplies or divides by an exact power of two
 * (MUFU is exact on powers of two), so y = x / 2^(j+k) exactly. The block
 * holds 6*S (its max), the seven ties t*S and their FP32 neighbours
 * nextafter(t*S, +-inf), with S = 2^(j+k). Expected: ties to even, the
 * neighbours away from the tie. */
/* E4M3 code of 2^k, k in [-9, 8]. */
static uint8_t e4m3_from_pow2(int k) {
    return k >= -6 ? (uint8_t)((k + 7) << 3) : (uint8_t)(1 << (k + 9));
}

static uint8_t tie_code(float t, int dir) {
    /* code of t (a tie) moved by dir ulps: RNE results from numerics.md §2.1 */
    static const float ties[7] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};
    static const uint8_t even[7] = {0, 2, 2, 4, 4, 6, 6}, below[7] = {0, 1, 2, 3, 4, 5, 6},
                         above[7] = {1, 2, 3, 4, 5, 6, 7};
    for (int i = 0; i < 7; i++)
        if (ties[i] == t) return dir == 0 ? even[i] : dir < 0 ? below[i] : above[i];
    return 0xFF;
}

static void test_ties(void) {
    static const float ties[7] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};
    long blocks = 0;
    for (int j = -30; j <= 30; j += 3) {
        for (int k = -9; k <= 8; k++) {
            float S = ldexpf(1.0f, j + k);
            /* 3 blocks: ties, ties - 1 ulp, ties + 1 ulp (each with -t too). */
            float x[48];
            uint8_t want[48];
            for (int b = 0; b < 3; b++) {
                int dir = b == 0 ? 0 : (b == 1 ? -1 : 1);
                x[b * 16] = 6.0f * S;
                want[b * 16] = 7;
                for (int i = 0; i < 7; i++) {
                    float v = ties[i] * S;
                    if (dir) v = nextafterf(v, dir < 0 ? 0.0f : INFINITY);
                    x[b * 16 + 1 + i] = v;
                    x[b * 16 + 8 + i] = -v;
                    want[b * 16 + 1 + i] = tie_code(ties[i], dir);
                    want[b * 16 + 8 + i] = (uint8_t)(tie_code(ties[i], dir) | 8);
                }
                x[b * 16 + 15] = S; /* 1.0 */
                want[b * 16 + 15] = 2;
            }
            for (int dev = 0; dev < 2; dev++) {
                fp4_qopts o = amax_opts(2688.0f * ldexpf(1.0f, j), (fp4_torch_device)dev);
                for (int r = 0; r < NNV; r++) {
                    if (dev == 1 && !is_torch(k_nv[r])) continue;
                    if (k < -6 && !strncmp(k_nv[r], "torchao", 7)) continue; /* clamp 2^-6 */
                    uint8_t s[3], c[48];
                    if (!fp4t_check(q_row(k_nv[r], x, 48, &o, s, c, NULL) == 0, "%s ties", k_nv[r]))
                        continue;
                    uint8_t ws = e4m3_from_pow2(k);
                    for (int b = 0; b < 3; b++)
                        fp4t_check(s[b] == ws, "%s ties j=%d k=%d: scale %02x want %02x", k_nv[r], j, k,
                                   s[b], ws);
                    for (int i = 0; i < 48; i++)
                        fp4t_check(c[i] == want[i], "%s ties j=%d k=%d dev=%d: x[%d]=%a code %x want %x",
                                   k_nv[r], j, k, dev, i, (double)x[i], c[i], want[i]);
                    blocks += 3;
                }
            }
        }
    }
    fp4t_check(blocks > 1000, "tie blocks run: %ld", blocks);
}

/* Ties under every finite E4M3 block scale v (0x01..0x7E; torchao from
 * 2^-6): tensor scale 2^j, bamax = 6*v*2^j, elements t*v*2^j for the seven
 * ties t (exact in FP32: t has <= 3 significant bits, v <= 4). Every recipe
 * computes s8 = v exactly (6v*RN(1/6) = v(1 + 2^-25) rounds back to v:
 * the excess is below half an ulp of v). Then:
 *  - the division recipes (modelopt, modelopt-v0.2x, torchao-2025,
 *    compressed-tensors) get y = t exactly: ties to even, hand-known;
 *  - the reciprocal recipes (torchao, TE, vLLM, FlashInfer) get y =
 *    RN(x * r) with r = RN(1/(v*2^j)) or MUFU's: the tie survives only when
 *    r is exact, otherwise r's rounding direction decides. Expected codes
 *    come from the exact product in double, rounded once to FP32. */
static float recip_of(const char *name, uint8_t v, float g) {
    float f = e4m3_to_f32(v);
    if (!strcmp(name, "torchao")) return (1.0f / g) / f;
    if (!strcmp(name, "te")) {
        float enc = 2688.0f / (2688.0f * g);
        return fminf(1.0f / (f * (float)(1.0 / (double)enc)), FLT_MAX);
    }
    float sf = !strcmp(name, "vllm-fast") ? 1.0f / g : (1.0f / (2688.0f * g)) * 2688.0f;
    if (!strcmp(name, "flashinfer-exact")) return fminf(1.0f / (f * (1.0f / sf)), FLT_MAX);
    return fp4_mufu_rcp_sm90(f * fp4_mufu_rcp_sm90(sf));
}

static void test_ties_all_scales(void) {
    static const float ties[7] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};
    static const int js[] = {-12, 0, 9};
    long broken = 0, recip_ties = 0;
    for (size_t jj = 0; jj < sizeof js / sizeof js[0]; jj++) {
        float g = ldexpf(1.0f, js[jj]);
        for (uint8_t v = 1; v <= 0x7E; v++) {
            float sv = e4m3_to_f32(v) * g, x[16];
            x[0] = 6.0f * sv;
            for (int i = 0; i < 7; i++) x[1 + i] = ties[i] * sv, x[8 + i] = -ties[i] * sv;
            x[15] = sv;
            for (int r = 0; r < NNV; r++) {
                bool torchao = !strncmp(k_nv[r], "torchao", 7);
                if (torchao && v < 0x08) continue;
                bool exact = !strcmp(k_nv[r], "modelopt") || !strcmp(k_nv[r], "modelopt-v0.2x") ||
                             !strcmp(k_nv[r], "torchao-2025") || !strcmp(k_nv[r], "compressed-tensors");
                uint8_t want[16];
                want[0] = 7, want[15] = 2;
                float rc = exact ? 0.0f : recip_of(k_nv[r], v, g);
                for (int i = 0; i < 7; i++) {
                    uint8_t c = tie_code(ties[i], 0);
                    if (!exact) {
                        float y = (float)((double)x[1 + i] * (double)rc);
                        c = t_e2m1_mag(y);
                        broken += c != tie_code(ties[i], 0);
                        recip_ties++;
                    }
                    want[1 + i] = c, want[8 + i] = (uint8_t)(c | 8);
                }
                if (!exact) { /* the max element and 1.0 through the reciprocal too */
                    want[0] = t_e2m1_mag((float)((double)x[0] * rc));
                    want[15] = t_e2m1_mag((float)((double)x[15] * rc));
                }
                fp4_qopts o = amax_opts(2688.0f * g, FP4_TORCH_CUDA);
                expect_block(k_nv[r], "ties, every E4M3 scale", x, &o, v, want);
            }
        }
    }
    printf("ties under every E4M3 scale: reciprocal recipes moved %ld of %ld ties off ties-to-even\n",
           broken, recip_ties);
    fp4t_check(broken > 0, "some reciprocal ties must break");
}

/* ------------------------------------------------------------------------ */
/* The recipes re-implemented from recipes.md, on random BF16 tensors        */
/* ------------------------------------------------------------------------ */

/* Independent helpers: BF16 RNE by the bit trick, E2M1 by thresholds. */
static float t_bf16(float v) {
    uint32_t b = fp4t_f32_bits(v);
    b = (b + 0x7FFFu + ((b >> 16) & 1u)) & 0xFFFF0000u;
    return fp4t_f32_from_bits(b);
}


/* sign_rule 0: sign bit (hardware, torchao); 1: y < 0 (modelopt, CT). */
static uint8_t t_e2m1(float y, int sign_rule) {
    int neg = sign_rule ? (y < 0) : (signbit(y) != 0);
    return (uint8_t)(t_e2m1_mag(fabsf(y)) | (neg ? 8 : 0));
}

static float t_clamp(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }
static float f8(uint8_t b) { return e4m3_to_f32(b); }
static uint8_t e4m3_rne(float v) {
    fp4_cvt_opts o = fp4_cvt_opts_default();
    o.policy = FP4_POLICY_NOSAT;
    return f32_to_e4m3(v, &o, NULL, NULL);
}
static uint8_t e4m3_sat(float v) { return f32_to_e4m3(v, NULL, NULL, NULL); }
/* torch `tensor / python_float`: CUDA multiplies by RN(1/s). */
static float tdiv(float a, float s, int cpu) {
    if (cpu) return a / s;
    volatile float inv = 1.0f / s;
    return a * inv;
}

typedef struct ref_out { uint8_t s8, codes[16]; } ref_out;

static ref_out ref_block(const char *name, const float *x, float amax, int cpu) {
    ref_out o = {0, {0}};
    float bamax = 0;
    for (int i = 0; i < 16; i++) bamax = fmaxf(bamax, fabsf(x[i]));
    if (!strcmp(name, "modelopt")) {
        float wsf2 = tdiv(amax, 2688.0f, cpu), s = bamax / (6.0f * wsf2);
        if (s == 0) s = 1;
        o.s8 = e4m3_rne(t_clamp(s, 0x1p-9f, 448.0f));
        float d = f8(o.s8) * wsf2;
        for (int i = 0; i < 16; i++) o.codes[i] = t_e2m1(x[i] / d, 1);
    } else if (!strcmp(name, "modelopt-v0.2x")) {
        float wsf2 = tdiv(tdiv(amax, 6.0f, cpu), 448.0f, cpu), ps = tdiv(bamax, 6.0f, cpu);
        float s = ps == 0 ? 1.0f : ps / wsf2;
        o.s8 = e4m3_rne(s);
        float d = f8(o.s8) * wsf2;
        for (int i = 0; i < 16; i++) o.codes[i] = t_e2m1(x[i] / d, 1);
    } else if (!strncmp(name, "torchao", 7)) {
        float pts = tdiv(amax, 2688.0f, cpu), bs = tdiv(bamax, 6.0f, cpu);
        o.s8 = e4m3_rne(t_clamp(bs / pts, 0x1p-6f, 448.0f));
        float r = (1.0f / pts) / f8(o.s8), d = pts * f8(o.s8);
        for (int i = 0; i < 16; i++) {
            float y = strcmp(name, "torchao") ? x[i] / d : x[i] * r;
            o.codes[i] = t_e2m1(t_clamp(y, -6.0f, 6.0f), 0);
        }
    } else if (!strcmp(name, "te") || !strcmp(name, "flashinfer-exact")) {
        float enc = !strcmp(name, "te") ? fminf(2688.0f / amax, FLT_MAX) : (1.0f / amax) * 2688.0f;
        float dec = !strcmp(name, "te") ? (float)(1.0 / (double)enc) : 1.0f / enc;
        o.s8 = e4m3_sat(bamax * (enc * (1.0f / 6.0f)));
        float inv = fminf(1.0f / (f8(o.s8) * dec), FLT_MAX);
        for (int i = 0; i < 16; i++) o.codes[i] = t_e2m1(x[i] * inv, 0);
    } else if (!strcmp(name, "vllm-fast") || !strcmp(name, "flashinfer-fast")) {
        bool vllm = !strcmp(name, "vllm-fast");
        float sf = vllm ? 1.0f / tdiv(amax, 2688.0f, cpu) : (1.0f / amax) * 2688.0f;
        o.s8 = e4m3_sat(sf * (bamax * fp4_mufu_rcp_sm90(6.0f)));
        bool go = vllm ? f8(o.s8) != 0 : bamax != 0;
        float out = go ? fp4_mufu_rcp_sm90(f8(o.s8) * fp4_mufu_rcp_sm90(sf)) : 0.0f;
        for (int i = 0; i < 16; i++) o.codes[i] = t_e2m1(x[i] * out, 0);
    } else if (!strcmp(name, "vllm-exact")) { /* vLLM's order, IEEE divisions */
        float sf = 1.0f / tdiv(amax, 2688.0f, cpu);
        o.s8 = e4m3_sat(sf * (bamax * (1.0f / 6.0f)));
        float out = f8(o.s8) != 0 ? 1.0f / (f8(o.s8) * (1.0f / sf)) : 0.0f;
        for (int i = 0; i < 16; i++) o.codes[i] = t_e2m1(x[i] * out, 0);
    } else if (!strcmp(name, "compressed-tensors")) { /* BF16 model */
        float gs = t_bf16(t_bf16(1.0f / amax) * 2688.0f);
        float s = gs * t_bf16(tdiv(bamax, 6.0f, cpu));
        o.s8 = e4m3_rne(t_clamp(s, -448.0f, 448.0f));
        if (f8(o.s8) == 0) o.s8 = 0x20;
        float scale = f8(o.s8) / gs;
        for (int i = 0; i < 16; i++) o.codes[i] = t_e2m1(t_clamp(x[i] / scale, -6.0f, 6.0f), 1);
    }
    return o;
}

/* Random BF16 tensor: N(0,1)-ish values times 2^e, some blocks shrunk by
 * 2^-8..2^-14 (underflowing and subnormal block scales), a few outliers. */
static void make_tensor(uint16_t *x, int64_t rows, int64_t cols, uint32_t stream) {
    uint64_t seed = fp4t_seed();
    int e = (int)(fp4t_rand32(seed, stream, 0) % 41) - 20;
    fp4_cvt_opts co = fp4_cvt_opts_default();
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t c = 0; c < cols; c++) {
            int64_t i = r * cols + c;
            philox4x32_ctr_t v = fp4t_rand4(seed, stream, (uint64_t)i + 1);
            double u1 = (v.v[0] + 1.0) / 4294967297.0, u2 = v.v[1] / 4294967296.0;
            double g = sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
            uint32_t blk = fp4t_rand32(seed, stream + 1, (uint64_t)(r * (cols / 16) + c / 16));
            if (blk % 8 == 0) g = ldexp(g, -(int)(8 + blk / 8 % 7));
            if (v.v[2] % 1000 == 0) g *= 30;
            x[i] = f32_to_bf16((float)ldexp(g, e), &co, NULL, NULL);
        }
    }
}

static void test_formulas(void) {
    const int64_t rows = 32, cols = 256;
    uint16_t *x = malloc((size_t)(rows * cols) * sizeof *x);
    float *xf = malloc((size_t)(rows * cols) * sizeof *xf);
    long blocks = 0;
    for (uint32_t t = 0; t < 24; t++) {
        make_tensor(x, rows, cols, 100 + 2 * t);
        fp4_codes_to_f32(FP4_FMT_BF16, xf, x, rows * cols);
        float amax = 0;
        for (int64_t i = 0; i < rows * cols; i++) amax = fmaxf(amax, fabsf(xf[i]));
        for (int k = 0; k < NNV; k++) {
            for (int cpu = 0; cpu < 2; cpu++) {
                if (cpu && !is_torch(k_nv[k]) && strcmp(k_nv[k], "vllm-fast") && strcmp(k_nv[k], "vllm-exact")) continue;
                fp4_qopts o = fp4_qopts_default();
                o.torch_device = cpu ? FP4_TORCH_CPU : FP4_TORCH_CUDA;
                fp4_qtensor q;
                if (!fp4t_check(fp4_quantize_by_name(k_nv[k], FP4_FMT_BF16, x, rows, cols, &o, &q) == 0,
                                "%s: %s", k_nv[k], fp4_last_error()))
                    continue;
                fp4t_check(q.amax == amax, "%s amax", k_nv[k]);
                for (int64_t r = 0; r < rows; r++) {
                    for (int64_t b = 0; b < cols / 16; b++) {
                        ref_out want = ref_block(k_nv[k], xf + r * cols + b * 16, amax, cpu);
                        uint8_t s = fp4_qtensor_scale(&q, r, b * 16);
                        fp4t_check(s == want.s8, "%s cpu=%d t=%u (%lld,%lld): scale %02x want %02x", k_nv[k],
                                   cpu, t, (long long)r, (long long)b, s, want.s8);
                        for (int i = 0; i < 16; i++) {
                            uint8_t c = fp4_qtensor_code(&q, r, b * 16 + i);
                            fp4t_check(c == want.codes[i], "%s cpu=%d t=%u (%lld,%lld)[%d]: code %x want %x",
                                       k_nv[k], cpu, t, (long long)r, (long long)b, i, c, want.codes[i]);
                        }
                        blocks++;
                    }
                }
                fp4_qtensor_free(&q);
            }
        }
    }
    fp4t_check(blocks == 24L * 17 * rows * (cols / 16), "formula blocks: %ld", blocks); /* 10 recipes on CUDA + 7 on CPU */
    free(x), free(xf);
}

/* ------------------------------------------------------------------------ */
/* Global-scale divergence (recipes.md §6, first table)                      */
/* ------------------------------------------------------------------------ */

/* Over the 3968 bf16 amax values 2^-20 .. 2^11 (31 binades x 128), IEEE
 * FP32 (the CPU model recipes.md measured with): A/6/448 != A/2688 for
 * 1023, 1/(A/2688) != 2688/A for 1023, (float)(1/(double)(2688/A)) !=
 * A/2688 for 1147, bf16(2688/A) != 2688/A for 3844. The library's
 * modelopt-v0.2x vs modelopt weight_scale_2 (CPU) must differ on 1023. */
static void test_global_divergence(void) {
    long n = 0, d1 = 0, d2 = 0, d3 = 0, d4 = 0, lib = 0;
    for (int e = -20; e <= 10; e++) {
        for (uint32_t m = 0; m < 128; m++) {
            volatile float a = fp4t_f32_from_bits(((uint32_t)(127 + e) << 23) | (m << 16));
            float k6 = 6.0f, k448 = 448.0f, k2688 = 2688.0f;
            float dec = a / k2688, enc = k2688 / a;
            n++;
            d1 += (a / k6) / k448 != dec;
            d2 += 1.0f / dec != enc;
            d3 += (float)(1.0 / (double)enc) != dec;
            d4 += t_bf16(enc) != enc;
            float xs[16] = {a};
            fp4_qopts o = fp4_qopts_default();
            o.torch_device = FP4_TORCH_CPU;
            fp4_qtensor qa, qb;
            if (fp4_quantize_by_name("modelopt-v0.2x", FP4_FMT_F32, xs, 1, 16, &o, &qa) == 0 &&
                fp4_quantize_by_name("modelopt", FP4_FMT_F32, xs, 1, 16, &o, &qb) == 0) {
                lib += qa.global_stored != qb.global_stored;
                fp4t_check(qb.global_stored == dec, "modelopt CPU wsf2 = amax/2688");
                fp4_qtensor_free(&qa), fp4_qtensor_free(&qb);
            }
        }
    }
    printf("global-scale divergence over %ld bf16 amax: A/6/448!=A/2688 %ld, 1/(A/2688)!=2688/A %ld, "
           "(float)(1/(double)(2688/A))!=A/2688 %ld, bf16(2688/A)!=2688/A %ld; library v0.2x vs "
           "modelopt %ld\n", n, d1, d2, d3, d4, lib);
    fp4t_check(n == 3968, "values %ld", n);
    fp4t_check(d1 == 1023, "A/6/448 != A/2688: %ld (recipes.md 1023)", d1);
    fp4t_check(d2 == 1023, "1/(A/2688) != 2688/A: %ld (recipes.md 1023)", d2);
    fp4t_check(d3 == 1147, "(float)(1/(double)(2688/A)) != A/2688: %ld (recipes.md 1147)", d3);
    fp4t_check(d4 == 3844, "bf16(2688/A) != 2688/A: %ld (recipes.md 3844)", d4);
    fp4t_check(lib == d1, "library v0.2x vs modelopt wsf2 differ on %ld", lib);
}

/* ------------------------------------------------------------------------ */
/* Given global scales                                                       */
/* ------------------------------------------------------------------------ */

static void test_given_globals(void) {
    float x[16] = {1.0f, 0.5f};
    fp4_qtensor q;
    fp4_qopts o = fp4_qopts_default();
    o.global_source = FP4_QGS_DECODE;
    o.global_scale = 0.0123f;
    if (fp4t_check(fp4_quantize_by_name("modelopt", FP4_FMT_F32, x, 1, 16, &o, &q) == 0, "modelopt decode")) {
        fp4t_check(q.global_stored == 0.0123f && q.global_decode == 0.0123f, "modelopt wsf2 as given");
        fp4_qtensor_free(&q);
    }
    if (fp4t_check(fp4_quantize_by_name("vllm-fast", FP4_FMT_F32, x, 1, 16, &o, &q) == 0, "vllm decode")) {
        volatile float g = 0.0123f;
        fp4t_check(q.global_encode == 1.0f / g && q.global_stored == 0.0123f, "vllm SF = 1/input_scale");
        fp4_qtensor_free(&q);
    }
    if (fp4t_check(fp4_quantize_by_name("flashinfer-fast", FP4_FMT_F32, x, 1, 16, &o, &q) == 0, "fi inv")) {
        fp4t_check(q.global_encode == fp4_mufu_rcp_sm90(0.0123f), "flashinfer-fast inversed: rcp(x)");
        fp4_qtensor_free(&q);
    }
    if (fp4t_check(fp4_quantize_by_name("flashinfer-exact", FP4_FMT_F32, x, 1, 16, &o, &q) == 0, "fi inv")) {
        volatile float g = 0.0123f;
        fp4t_check(q.global_encode == 1.0f / g, "flashinfer-exact inversed: 1/x");
        fp4_qtensor_free(&q);
    }
    o.global_source = FP4_QGS_ENCODE;
    o.global_scale = 300.0f;
    if (fp4t_check(fp4_quantize_by_name("ct", FP4_FMT_F32, x, 1, 16, &o, &q) == 0, "ct encode")) {
        fp4t_check(q.global_stored == 300.0f && q.global_decode == 1.0f / 300.0f, "ct gs as given");
        fp4_qtensor_free(&q);
    }
    if (fp4t_check(fp4_quantize_by_name("vllm-fast", FP4_FMT_F32, x, 1, 16, &o, &q) == 0, "vllm encode")) {
        fp4t_check(q.global_encode == 300.0f, "vllm SF as given (compressed-tensors path)");
        fp4_qtensor_free(&q);
    }
    /* torchao single level, bamax 1: s8 = fp8(clamp(RN(1*RN(1/6)), 2^-6, 448));
     * 1/6 = 1.333*2^-3: biased exponent 4, mantissa 1.333 -> 1.375 (nearer
     * than 1.25) -> 0x23 = 0.171875; y = x * RN(1/0.171875) = x * 5.818:
     * 1 -> 5.8 -> 6 (0x7), 0.5 -> 2.9 -> 3 (0x5). */
    fp4_qopts sl = fp4_qopts_default();
    sl.single_level = true;
    if (fp4t_check(fp4_quantize_by_name("torchao", FP4_FMT_F32, x, 1, 16, &sl, &q) == 0, "torchao 1-level")) {
        fp4t_check(fp4_qtensor_scale(&q, 0, 0) == 0x23, "torchao single-level scale %02x",
                   fp4_qtensor_scale(&q, 0, 0));
        fp4t_check(fp4_qtensor_code(&q, 0, 0) == 7 && fp4_qtensor_code(&q, 0, 1) == 5,
                   "torchao single-level codes: 1/0.171875 = 5.8 -> 6, 2.9 -> 3");
        fp4t_check(q.global_decode == 1.0f, "single level: no tensor scale");
        fp4_qtensor_free(&q);
    }
}

/* TE's guard on a zero amax (recipes.md §2.5 step 1: "if global_amax == 0
 * or S_enc == 0 -> S_enc = 1.0"; S_dec = float(1.0 / double(1.0)) = 1).
 * Without it S_enc = fminf(2688/0 = inf, FLT_MAX) = FLT_MAX (issue 16 item
 * 3b: removing the guard failed no test, because an all-zero tensor gives
 * scale bytes and codes 0 either way):
 *  - all-zero tensor, amax computed: encode = decode = stored = 1.0;
 *  - amax given as 0 with a non-zero block (a calibrated amax of a layer
 *    that saw zeros): k1 = RN(1 * RN(1/6)); bamax 6: s8 = fp8sat(RN(6 *
 *    RN(1/6)) = RN(1 + 2^-25) = 1) = 0x38; inv = min(1/(1*1), FLT_MAX) = 1;
 *    y = x, so the codes are the E2M1 RNE codes of x itself: 6 -> 7,
 *    5 -> 6 (tie to 4), 3 -> 5, 1 -> 2, 0.5 -> 1, -2 -> 0xC, -1.5 -> 0xB,
 *    4 -> 6, +0 -> 0. (With S_enc = FLT_MAX the scale is 0x7E and every
 *    non-zero element saturates to +-6.) Both devices: TE is a CUDA kernel,
 *    its arithmetic does not depend on the torch model. */
static void test_te_zero_amax_guard(void) {
    float zeros[32] = {0};
    fp4_qopts o = fp4_qopts_default();
    fp4_qtensor q;
    if (fp4t_check(fp4_quantize_by_name("te", FP4_FMT_F32, zeros, 1, 32, &o, &q) == 0, "te zeros: %s",
                   fp4_last_error())) {
        fp4t_check(q.amax == 0.0f, "te zeros: amax %g", (double)q.amax);
        fp4t_check(q.global_encode == 1.0f && q.global_decode == 1.0f && q.global_stored == 1.0f,
                   "te amax 0: S_enc %a S_dec %a stored %a, want 1 (recipes.md §2.5 guard)",
                   (double)q.global_encode, (double)q.global_decode, (double)q.global_stored);
        fp4_qtensor_free(&q);
    }
    const float x[16] = {6, 5, 3, 1, 0.5f, -2, -1.5f, 4, 0, 6, 1, 3, 0, 0.5f, -2, 5};
    const uint8_t want[16] = {7, 6, 5, 2, 1, 0xC, 0xB, 6, 0, 7, 2, 5, 0, 1, 0xC, 6};
    for (int dev = 0; dev < 2; dev++) {
        fp4_qopts g = amax_opts(0.0f, (fp4_torch_device)dev);
        expect_block("te", "given amax 0", x, &g, 0x38, want);
        if (fp4t_check(fp4_quantize_by_name("te", FP4_FMT_F32, x, 1, 16, &g, &q) == 0, "te amax 0: %s",
                       fp4_last_error())) {
            fp4t_check(q.global_encode == 1.0f && q.global_decode == 1.0f,
                       "te given amax 0: S_enc %a S_dec %a, want 1", (double)q.global_encode,
                       (double)q.global_decode);
            fp4_qtensor_free(&q);
        }
    }
}

/* Global-scale polarity, every recipe, a case of its own (issue 16 item 3e:
 * a wrong polarity was caught by one assertion only). Tensor scale 64: the
 * amax 2688 * 64 = 172032 (given), or the scale itself in the polarity the
 * recipe takes (decode 64 = amax/2688 for modelopt's weight_scale_2,
 * torchao's per_tensor_scale, vLLM's input_scale, FlashInfer's inversed
 * form; encode 1/64 = 2688/amax for vLLM's SFScaleVal of a CT checkpoint,
 * FlashInfer's globalScale, CT's global_scale; recipes.md §2.1-2.8). Every
 * formula then gives decode 64 exactly (64 * the block-A derivation: e.g.
 * 172032 * RN(1/2688) = 64 (1 + 640 * 2^-35) -> 64, (172032/6)/448 = 64,
 * 2688/172032 = 2^-6), and with block amax 384 = 6 * 64 every recipe's
 * block scale is 384 / (6 * 64) = 1 (0x38; rcp(6) and 1/6 are within an
 * FP32 ulp, which E4M3 rounding absorbs). Elements x = 64 * y with y on the
 * E2M1 grid, so y = x / 64 (or x * 1/64, +-1 FP32 ulp for MUFU) codes to
 * E2M1(y) whatever the recipe's order. A polarity slip anywhere (1/64 taken
 * for 64) asks for a block scale of 4096: clamped to 448, saturated or
 * NaN, and y = 64/7 or worse: the codes change. Stored scale: decode for
 * modelopt, torchao and vLLM (input_scale), encode for TE, FlashInfer, CT. */
static void test_global_polarity(void) {
    const float y[16] = {6, 1, 0.5f, 1.5f, -1, 2, 3, 4, -6, -0.5f, -2, -3, -4, -1.5f, 0, 0};
    const uint8_t want[16] = {7, 2, 1, 3, 0xA, 4, 5, 6, 0xF, 9, 0xC, 0xD, 0xE, 0xB, 0, 0};
    float x[16];
    for (int i = 0; i < 16; i++) x[i] = 64.0f * y[i];
    static const struct {
        const char *name;
        bool decode_given, encode_given, stores_decode;
    } k[] = {
        {"modelopt-v0.2x", true, false, true}, {"modelopt", true, false, true},
        {"torchao", true, false, true},        {"torchao-2025", true, false, true},
        {"te", false, false, false},           {"vllm-fast", true, true, true},
        {"vllm-exact", true, true, true},      {"flashinfer-fast", true, true, false},
        {"flashinfer-exact", true, true, false}, {"compressed-tensors", false, true, false},
    };
    fp4t_check(sizeof k / sizeof k[0] == (size_t)NNV, "every NVFP4 recipe listed");
    for (size_t r = 0; r < sizeof k / sizeof k[0]; r++) {
        for (int dev = 0; dev < 2; dev++) {
            for (int src = 0; src < 3; src++) {
                fp4_qopts o = amax_opts(172032.0f, (fp4_torch_device)dev);
                const char *what = "amax 2688*64";
                if (src == 1) {
                    if (!k[r].decode_given) continue;
                    o.global_source = FP4_QGS_DECODE, o.global_scale = 64.0f, what = "decode 64";
                } else if (src == 2) {
                    if (!k[r].encode_given) continue;
                    o.global_source = FP4_QGS_ENCODE, o.global_scale = 0x1p-6f, what = "encode 1/64";
                }
                char label[64];
                snprintf(label, sizeof label, "polarity %s dev %d", what, dev);
                expect_block(k[r].name, label, x, &o, 0x38, want);
                fp4_qtensor q;
                if (fp4_quantize_by_name(k[r].name, FP4_FMT_F32, x, 1, 16, &o, &q) != 0) continue;
                /* decode 64 and encode 1/64, to an FP32 ulp (MUFU reciprocals) */
                fp4t_check(fabsf(q.global_decode - 64.0f) <= 64.0f * 0x1p-23f &&
                               fabsf(q.global_encode - 0x1p-6f) <= 0x1p-6f * 0x1p-23f,
                           "%s %s: decode %a encode %a, want 64 and 1/64", k[r].name, label,
                           (double)q.global_decode, (double)q.global_encode);
                fp4t_check(q.global_stored == (k[r].stores_decode ? q.global_decode : q.global_encode),
                           "%s %s: stored %a is not the %s scale", k[r].name, label,
                           (double)q.global_stored, k[r].stores_decode ? "decode" : "encode");
                fp4_qtensor_free(&q);
            }
        }
    }
}

/* ------------------------------------------------------------------------ */
/* TransformerEngine options                                                 */
/* ------------------------------------------------------------------------ */

/* 2D: the 16x16 tile's amax sets the scale of all its 16 rows. */
static void test_te_2d(void) {
    const int64_t rows = 40, cols = 64; /* 40 rows: a partial last tile */
    uint16_t *x = malloc((size_t)(rows * cols) * 2);
    float *xf = malloc((size_t)(rows * cols) * sizeof *xf);
    make_tensor(x, rows, cols, 900);
    fp4_codes_to_f32(FP4_FMT_BF16, xf, x, rows * cols);
    float amax = 0;
    for (int64_t i = 0; i < rows * cols; i++) amax = fmaxf(amax, fabsf(xf[i]));
    fp4_qopts o = fp4_qopts_default();
    o.two_d = true;
    fp4_qtensor q;
    if (fp4t_check(fp4_quantize_by_name("te", FP4_FMT_BF16, x, rows, cols, &o, &q) == 0, "te 2d")) {
        float enc = fminf(2688.0f / amax, FLT_MAX), dec = (float)(1.0 / (double)enc);
        for (int64_t r0 = 0; r0 < rows; r0 += 16) {
            for (int64_t b = 0; b < cols / 16; b++) {
                float tamax = 0;
                for (int64_t r = r0; r < rows && r < r0 + 16; r++)
                    for (int i = 0; i < 16; i++) tamax = fmaxf(tamax, fabsf(xf[r * cols + b * 16 + i]));
                uint8_t ws = e4m3_sat(tamax * (enc * (1.0f / 6.0f)));
                float inv = fminf(1.0f / (f8(ws) * dec), FLT_MAX);
                for (int64_t r = r0; r < rows && r < r0 + 16; r++) {
                    fp4t_check(fp4_qtensor_scale(&q, r, b * 16) == ws, "te 2d scale (%lld,%lld)",
                               (long long)r, (long long)b);
                    for (int i = 0; i < 16; i++)
                        fp4t_check(fp4_qtensor_code(&q, r, b * 16 + i) ==
                                       t_e2m1(xf[r * cols + b * 16 + i] * inv, 0),
                                   "te 2d code (%lld,%lld)", (long long)r, (long long)(b * 16 + i));
                }
            }
        }
        fp4_qtensor_free(&q);
    }
    free(x), free(xf);
}

/* Stochastic rounding with supplied bits (PTX cvt.rs: the 8 random bits are
 * added to the top 8 discarded bits, a carry rounds away): bits 0 truncate,
 * bits 0xFF round away unless the discarded part is < 1/256 ulp. Against an
 * independent model in double: f = fraction of the E2M1 step; up iff
 * floor(f*256) + r >= 256. */
static uint8_t t_sr(float y, uint32_t r) {
    static const double grid[8] = {0, 0.5, 1, 1.5, 2, 3, 4, 6};
    double a = fabs((double)y);
    int neg = signbit(y) != 0;
    if (a >= 6) return (uint8_t)(7 | (neg ? 8 : 0));
    int lo = 0;
    while (lo < 7 && grid[lo + 1] <= a) lo++;
    double f = (a - grid[lo]) / (grid[lo + 1] - grid[lo]);
    int up = (int)floor(f * 256) + (int)(r & 0xFF) >= 256;
    return (uint8_t)((lo + up) | (neg ? 8 : 0));
}

static void test_te_sr(void) {
    const int64_t rows = 8, cols = 64, n = rows * cols;
    float *x = malloc((size_t)n * sizeof *x);
    uint32_t *rb = malloc((size_t)n * sizeof *rb);
    for (int64_t i = 0; i < n; i++) {
        x[i] = (float)((int32_t)fp4t_rand32(fp4t_seed(), 950, (uint64_t)i)) * 0x1p-31f;
        rb[i] = fp4t_rand32(fp4t_seed(), 951, (uint64_t)i);
    }
    float amax = 0;
    for (int64_t i = 0; i < n; i++) amax = fmaxf(amax, fabsf(x[i]));
    float enc = fminf(2688.0f / amax, FLT_MAX), dec = (float)(1.0 / (double)enc);
    for (int mode = 0; mode < 3; mode++) {
        for (int64_t i = 0; i < n; i++) rb[i] = mode == 0 ? 0 : mode == 1 ? 0xFF : fp4t_rand32(fp4t_seed(), 951, (uint64_t)i);
        fp4_qopts o = fp4_qopts_default();
        o.stochastic = true;
        o.sr_bits = rb;
        fp4_qtensor q;
        if (!fp4t_check(fp4_quantize_by_name("te", FP4_FMT_F32, x, rows, cols, &o, &q) == 0, "te sr"))
            continue;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t b = 0; b < cols / 16; b++) {
                float bamax = 0;
                for (int i = 0; i < 16; i++) bamax = fmaxf(bamax, fabsf(x[r * cols + b * 16 + i]));
                uint8_t ws = e4m3_sat(bamax * (enc * (1.0f / 6.0f)));
                float inv = fminf(1.0f / (f8(ws) * dec), FLT_MAX);
                fp4t_check(fp4_qtensor_scale(&q, r, b * 16) == ws, "sr scale");
                for (int i = 0; i < 16; i++) {
                    int64_t k = r * cols + b * 16 + i;
                    fp4t_check(fp4_qtensor_code(&q, r, b * 16 + i) == t_sr(x[k] * inv, rb[k]),
                               "sr mode %d element %lld: y=%a bits %02x", mode, (long long)k,
                               (double)(x[k] * inv), rb[k] & 0xFF);
                }
            }
        fp4_qtensor_free(&q);
    }
    free(x), free(rb);

    /* Philox seed: deterministic, and unbiased at 8-bit granularity. A block
     * max of 6 (scale 1 with amax 2688) and elements 2.2: fraction 0.2 of
     * the step 2 -> 3, floor(0.2*256) = 51 -> P(up) = 51/256. */
    const int64_t m = 4096, k = 64;
    float *y = malloc((size_t)(m * k) * sizeof *y);
    for (int64_t i = 0; i < m * k; i++) y[i] = (i % 16 == 0) ? 6.0f : 2.2f;
    fp4_qopts o = amax_opts(2688.0f, FP4_TORCH_CUDA);
    o.stochastic = true;
    o.sr_seed = 12345;
    fp4_qtensor a, b;
    if (fp4t_check(fp4_quantize_by_name("te", FP4_FMT_F32, y, m, k, &o, &a) == 0 &&
                       fp4_quantize_by_name("te", FP4_FMT_F32, y, m, k, &o, &b) == 0,
                   "te sr philox")) {
        fp4t_check(memcmp(a.codes, b.codes, a.codes_bytes) == 0, "philox SR deterministic");
        long up = 0, tot = 0;
        for (int64_t i = 0; i < m * k; i++) {
            if (i % 16 == 0) continue;
            uint8_t c = fp4_qtensor_code(&a, i / k, i % k);
            up += c == 5;
            tot++;
            if (c != 4 && c != 5) fp4t_check(0, "SR of 2.2 gave %x", c);
        }
        double p = (double)up / (double)tot, want = 51.0 / 256.0;
        printf("SR: P(2.2 -> 3) = %.5f over %ld (8-bit model %.5f)\n", p, tot, want);
        fp4t_check(fabs(p - want) < 0.003, "SR frequency %.5f vs %.5f", p, want);
        fp4_qtensor_free(&a), fp4_qtensor_free(&b);
    }
    free(y);
}

/* RHT: y_j = bf16(sum_i x_i s_i H16[i][j] / 4). Hand vectors:
 *  - x = 4 e_0: every output 4 * 1 * 1 / 4 = 1;
 *  - x = 4 e_3 with TE's signs (s_3 = -1): y_j = -H[3][j] = -(-1)^popcount(3&j)
 *    = -1, +1, +1, -1 repeating;
 *  - x = e_0 + 2^-8 e_1: y_0 = (1 + 2^-8)/4, a BF16 tie (7 fraction bits)
 *    -> even -> 0.25; y_1 = (1 - 2^-8)/4 = 0.2490234375 exactly.
 * Through the quantizer (amax computed = 1 after the transform): S_enc =
 * 2688, s8 = fp8(1*448) = 0x7E, inv = 1/(448*S_dec) = 6, so +-1 -> 0x7/0xF. */
static void test_te_rht(void) {
    float x[16] = {4.0f}, y[16];
    memcpy(y, x, sizeof y);
    fp4q_te_rht(y, 1, 16, NULL);
    for (int j = 0; j < 16; j++) fp4t_check(y[j] == 1.0f, "rht e0: y[%d] = %g", j, (double)y[j]);
    float e3[16] = {0, 0, 0, 4.0f};
    fp4q_te_rht(e3, 1, 16, NULL);
    static const float pat[4] = {-1, 1, 1, -1};
    for (int j = 0; j < 16; j++) fp4t_check(e3[j] == pat[j % 4], "rht e3: y[%d] = %g", j, (double)e3[j]);
    float t[16] = {1.0f, 0x1p-8f};
    fp4q_te_rht(t, 1, 16, NULL);
    fp4t_check(t[0] == 0.25f && t[1] == 0.2490234375f, "rht bf16 tie: %a %a", (double)t[0], (double)t[1]);
    /* With all-ones signs the transform is H/4 and (H/4)(H/4) = H*H/16 = I:
     * twice returns x, exactly here (small integers: every partial result is
     * a multiple of 1/4 below 16, exact in BF16). */
    int8_t ones[16];
    memset(ones, 1, sizeof ones);
    float z[16];
    for (int i = 0; i < 16; i++) z[i] = (float)(i - 7);
    float w[16];
    memcpy(w, z, sizeof w);
    fp4q_te_rht(w, 1, 16, ones);
    fp4q_te_rht(w, 1, 16, ones);
    for (int i = 0; i < 16; i++) fp4t_check(w[i] == z[i], "rht twice [%d]: %g", i, (double)w[i]);

    uint16_t xb[32] = {0};
    fp4_cvt_opts co = fp4_cvt_opts_default();
    xb[3] = f32_to_bf16(4.0f, &co, NULL, NULL);
    xb[16] = f32_to_bf16(4.0f, &co, NULL, NULL);
    fp4_qopts o = fp4_qopts_default();
    o.rht = true;
    fp4_qtensor q;
    if (fp4t_check(fp4_quantize_by_name("te", FP4_FMT_BF16, xb, 1, 32, &o, &q) == 0, "te rht: %s",
                   fp4_last_error())) {
        fp4t_check(q.amax == 1.0f, "post-RHT amax %g", (double)q.amax);
        for (int j = 0; j < 32; j++) {
            uint8_t want = j < 16 ? (pat[j % 4] < 0 ? 0xF : 0x7) : 0x7;
            fp4t_check(fp4_qtensor_code(&q, 0, j) == want, "te rht code %d: %x want %x", j,
                       fp4_qtensor_code(&q, 0, j), want);
        }
        fp4t_check(fp4_qtensor_scale(&q, 0, 0) == 0x7E && fp4_qtensor_scale(&q, 0, 16) == 0x7E, "te rht scales");
        fp4_qtensor_free(&q);
    }
}

/* ------------------------------------------------------------------------ */
/* Dequantization and errors                                                 */
/* ------------------------------------------------------------------------ */

static void test_dequant(void) {
    const int64_t rows = 16, cols = 64;
    uint16_t *x = malloc((size_t)(rows * cols) * 2);
    double *d = malloc((size_t)(rows * cols) * sizeof *d);
    make_tensor(x, rows, cols, 990);
    static const double e2m1v[16] = {0, .5, 1, 1.5, 2, 3, 4, 6, -0.0, -.5, -1, -1.5, -2, -3, -4, -6};
    for (int k = 0; k < NNV; k++) {
        fp4_qtensor q;
        if (fp4_quantize_by_name(k_nv[k], FP4_FMT_BF16, x, rows, cols, NULL, &q) != 0) continue;
        fp4t_check(fp4_qtensor_dequantize(&q, d) == 0, "dequantize");
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < cols; c++) {
                double want = e2m1v[fp4_qtensor_code(&q, r, c)] * e4m3_to_f64(fp4_qtensor_scale(&q, r, c)) *
                              (double)q.global_decode;
                fp4t_check(d[r * cols + c] == want, "%s dequant (%lld,%lld)", k_nv[k], (long long)r,
                           (long long)c);
            }
        fp4_value v = fp4_qtensor_block_value(&q, 0, 0);
        double bv = fp4_value_to_f64(&v);
        fp4t_check(bv == e2m1v[fp4_qtensor_code(&q, 0, 0)] * e4m3_to_f64(fp4_qtensor_scale(&q, 0, 0)),
                   "%s block value", k_nv[k]);
        fp4_qtensor_free(&q);
    }
    free(x), free(d);
}

static void test_errors(void) {
    float x[48] = {1};
    fp4_qtensor q;
    fp4_qopts o = fp4_qopts_default();
    const fp4_qrecipe *r = NULL;
    fp4t_check(fp4_qrecipe_from_name("nvfp4-magic", &r) == -1 && strstr(fp4_last_error(), "unknown"),
               "unknown recipe: %s", fp4_last_error());
    fp4t_check(fp4_qrecipe_from_name("TRTLLM-Fast", &r) == 0 && r->id == FP4_QR_FLASHINFER_FAST, "alias");
    fp4t_check(fp4_qrecipe_from_name("modelopt-v0.23", &r) == 0 && r->id == FP4_QR_MODELOPT_V02X, "alias v0.23");
    fp4t_check(fp4_qrecipe_from_name("modelop", &r) == -1, "prefix is not a name");
    fp4t_check(fp4_quantize_by_name("te", FP4_FMT_F32, x, 1, 24, &o, &q) == -1 &&
                   strstr(fp4_last_error(), "multiple of 16"), "cols %% 16: %s", fp4_last_error());
    fp4t_check(fp4_quantize_by_name("te", FP4_FMT_E4M3, x, 1, 16, &o, &q) == -1, "bad input format");
    fp4t_check(fp4_quantize_by_name("te", FP4_FMT_F32, x, 0, 16, &o, &q) == -1, "zero rows");
    fp4t_check(fp4_quantize_by_name("te", FP4_FMT_F32, NULL, 1, 16, &o, &q) == -1, "null input");
    fp4t_check(fp4_quantize(NULL, FP4_FMT_F32, x, 1, 16, &o, &q) == -1, "null recipe");
    fp4_qopts t = o;
    t.two_d = true;
    fp4t_check(fp4_quantize_by_name("modelopt", FP4_FMT_F32, x, 1, 16, &t, &q) == -1, "2d on modelopt");
    t = o;
    t.rht = true;
    fp4t_check(fp4_quantize_by_name("te", FP4_FMT_F32, x, 1, 16, &t, &q) == -1, "rht needs bf16");
    int8_t bad[16] = {1, 1, 0};
    t.rht_signs = bad;
    uint16_t xb[16] = {0};
    fp4t_check(fp4_quantize_by_name("te", FP4_FMT_BF16, xb, 1, 16, &t, &q) == -1, "rht sign 0");
    t = o;
    t.single_level = true;
    fp4t_check(fp4_quantize_by_name("te", FP4_FMT_F32, x, 1, 16, &t, &q) == -1, "single level on te");
    t = o;
    t.global_source = FP4_QGS_ENCODE;
    t.global_scale = 1;
    fp4t_check(fp4_quantize_by_name("modelopt", FP4_FMT_F32, x, 1, 16, &t, &q) == -1, "modelopt encode");
    fp4t_check(fp4_quantize_by_name("torchao", FP4_FMT_F32, x, 1, 16, &t, &q) == -1, "torchao encode");
    t.global_source = FP4_QGS_DECODE;
    fp4t_check(fp4_quantize_by_name("ct", FP4_FMT_F32, x, 1, 16, &t, &q) == -1, "ct decode");
    fp4t_check(fp4_quantize_by_name("te", FP4_FMT_F32, x, 1, 16, &t, &q) == -1, "te decode");
    t.global_source = (fp4_qglobal_source)9;
    fp4t_check(fp4_quantize_by_name("te", FP4_FMT_F32, x, 1, 16, &t, &q) == -1, "bad source");
    t = o;
    t.layout = (fp4_scale_layout)5;
    fp4t_check(fp4_quantize_by_name("te", FP4_FMT_F32, x, 1, 16, &t, &q) == -1, "bad layout");
    fp4t_check(fp4_qrecipe_get((fp4_qrecipe_id)99) == NULL, "recipe id range");
    for (int i = 0; i < FP4_QR_COUNT; i++) {
        const fp4_qrecipe *p = fp4_qrecipe_get((fp4_qrecipe_id)i);
        fp4t_check(p && (int)p->id == i && p->source[0] && p->description[0] &&
                       strstr(fp4_qrecipe_names(), p->name),
                   "registry entry %d", i);
    }
}

int main(void) {
    fp4t_begin("test_quant_recipes");
    test_block_a();
    test_block_underflow();
    test_zero_block();
    test_amax_zero();
    test_nan_inf();
    test_subnormal_scales();
    test_ct_global();
    test_torch_device();
    test_ties();
    test_ties_all_scales();
    test_formulas();
    test_global_divergence();
    test_given_globals();
    test_te_zero_amax_guard();
    test_global_polarity();
    test_te_2d();
    test_te_sr();
    test_te_rht();
    test_dequant();
    test_errors();
    return fp4t_end();
}
