/* test_quant_mx.c - OCP MX recipes (ref/quant_mx.c): MXFP4 and MXFP8
 * (E4M3, E5M2), block 32, E8M0 scale = floor(log2(bamax)) - emax_elem + 127
 * (clamped at 2^-127), elements saturated, rounded to nearest even or ties
 * away (microxcaling). Hand-derived blocks, every E2M1 tie under RNE and
 * RNA, extremes (zero, FP32 subnormal and FLT_MAX amax), an independent
 * re-implementation on random data, dequantization and errors. */
#include "fp4quant.h"
#include "testutil.h"

#include <math.h>
#include <string.h>

static int q32(const char *name, const float *x, int64_t cols, uint8_t *scales, uint8_t *codes) {
    fp4_qtensor q;
    if (fp4_quantize_by_name(name, FP4_FMT_F32, x, 1, cols, NULL, &q) != 0) return -1;
    for (int64_t i = 0; i < cols; i++) codes[i] = fp4_qtensor_code(&q, 0, i);
    for (int64_t b = 0; b < cols / 32; b++) scales[b] = fp4_qtensor_scale(&q, 0, b * 32);
    fp4_qtensor_free(&q);
    return 0;
}

/* MXFP4, bamax 6: floor(log2 6) = 2, shared exponent 2 - 2 = 0, scale byte
 * 127 = 0x7F, y = x. The seven ties: RNE 0.25->0, 0.75->1 (2), 1.25->1 (2),
 * 1.75->2 (4), 2.5->2 (4), 3.5->4 (6), 5->4 (6); RNA (away) 0.25->0.5 (1),
 * 0.75->1 (2), 1.25->1.5 (3), 1.75->2 (4), 2.5->3 (5), 3.5->4 (6), 5->6 (7).
 * 7 saturates to 6 (7); -0.0 keeps its sign (8); 0.1 -> 0. */
static void test_mxfp4_hand(void) {
    float x[32] = {6, 0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5, -0.25f, -0.75f, -1.25f, -1.75f,
                   -2.5f, -3.5f, -5, -0.0f, 0.1f, 7.0f, 1, 0.5f};
    const uint8_t rne[20] = {7, 0, 2, 2, 4, 4, 6, 6, 8, 0xA, 0xA, 0xC, 0xC, 0xE, 0xE, 8, 0, 7, 2, 1};
    const uint8_t rna[20] = {7, 1, 2, 3, 4, 5, 6, 7, 9, 0xA, 0xB, 0xC, 0xD, 0xE, 0xF, 8, 0, 7, 2, 1};
    uint8_t s, c[32];
    if (fp4t_check(q32("mxfp4", x, 32, &s, c) == 0, "mxfp4")) {
        fp4t_check(s == 0x7F, "mxfp4 scale %02x", s);
        for (int i = 0; i < 20; i++) fp4t_check(c[i] == rne[i], "mxfp4 rne [%d] %x want %x", i, c[i], rne[i]);
        for (int i = 20; i < 32; i++) fp4t_check(c[i] == 0, "mxfp4 zero tail");
    }
    if (fp4t_check(q32("mxfp4-rna", x, 32, &s, c) == 0, "mxfp4-rna")) {
        fp4t_check(s == 0x7F, "mxfp4-rna scale %02x", s);
        for (int i = 0; i < 20; i++) fp4t_check(c[i] == rna[i], "mxfp4 rna [%d] %x want %x", i, c[i], rna[i]);
    }
}

/* Scale exponents: bamax 8 -> 3-2 = 1 (0x80), 8/2 = 4 (6); bamax 0.3 ->
 * floor(log2 0.3) = -2, e = -4 (0x7B), 0.3*16 = 4.8 -> 4 (6); all-zero ->
 * -127 (0x00: microxcaling's FP32_MIN_NORMAL rule); FP32-subnormal amax
 * 2^-140 -> -142 clamps to -127 (0x00), 2^-140/2^-127 = 2^-13 -> 0;
 * FLT_MAX -> 127-2 = 125 (0xFC), FLT_MAX/2^125 = 7.99 -> saturates (7);
 * bamax 1 -> e -2 (0x7D), 4 (6); 2^-126 -> -128 clamps to -127 (0x00), y = 2
 * (4). */
static void test_mx_scales(void) {
    struct { float v; uint8_t scale, code; } cases[] = {
        {8.0f, 0x80, 6}, {0.3f, 0x7B, 6}, {0.0f, 0x00, 0}, {0x1p-140f, 0x00, 0},
        {3.4028234663852886e38f, 0xFC, 7}, {1.0f, 0x7D, 6}, {0x1p-126f, 0x00, 4},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        float x[32] = {cases[k].v};
        uint8_t s = 0xEE, c[32] = {0};
        if (!fp4t_check(q32("mxfp4", x, 32, &s, c) == 0, "mx scale case %zu", k)) continue;
        fp4t_check(s == cases[k].scale && c[0] == cases[k].code, "mxfp4 bamax %a: scale %02x code %x, want %02x %x",
                   (double)cases[k].v, s, c[0], cases[k].scale, cases[k].code);
    }
}

/* MXFP8: E4M3 (emax 8): bamax 448 -> e 0, 448 -> 0x7E; 500 -> e 0, saturates
 * to 0x7E; bamax 1 -> e -8 (0x77), 1*256 = 2^8 -> 0x78; 1 + 2^-4 at e 0 is
 * an E4M3 tie: RNE 1.0 (0x38), RNA 1.125 (0x39). E5M2 (emax 15): bamax 1 ->
 * e -15 (0x70), 2^15 -> 0x78; bamax 2 -> e -14 (0x71), 2 -> 2^15 (0x78) and
 * 1.125 -> 1.125*2^14, an E5M2 tie between 2^14 and 1.25*2^14: RNE 0x74,
 * RNA 0x75. BF16 6.0 into MXFP8 E4M3: e = 2-8 = -6 (0x79), 6*64 = 384 =
 * 1.5*2^8 -> 0x7C. */
static void test_mxfp8(void) {
    float a[32] = {448.0f, 1.0625f, -1.0625f}, b[32] = {500.0f}, c1[32] = {1.0f};
    uint8_t s, c[32];
    if (fp4t_check(q32("mxfp8-e4m3", a, 32, &s, c) == 0, "mxfp8"))
        fp4t_check(s == 0x7F && c[0] == 0x7E && c[1] == 0x38 && c[2] == 0xB8, "mxfp8 a: %02x %02x %02x %02x", s,
                   c[0], c[1], c[2]);
    if (fp4t_check(q32("mxfp8-rna", a, 32, &s, c) == 0, "mxfp8-rna"))
        fp4t_check(c[1] == 0x39 && c[2] == 0xB9, "mxfp8 rna tie: %02x %02x", c[1], c[2]);
    if (fp4t_check(q32("mxfp8", b, 32, &s, c) == 0, "mxfp8 sat"))
        fp4t_check(s == 0x7F && c[0] == 0x7E, "mxfp8 saturate: %02x %02x", s, c[0]);
    if (fp4t_check(q32("mxfp8", c1, 32, &s, c) == 0, "mxfp8 1"))
        fp4t_check(s == 0x77 && c[0] == 0x78, "mxfp8 1.0: %02x %02x", s, c[0]);
    float e[32] = {2.0f, 1.125f};
    if (fp4t_check(q32("mxfp8-e5m2", e, 32, &s, c) == 0, "e5m2"))
        fp4t_check(s == 0x71 && c[0] == 0x78 && c[1] == 0x74, "e5m2: %02x %02x %02x", s, c[0], c[1]);
    if (fp4t_check(q32("mxfp8-e5m2-rna", e, 32, &s, c) == 0, "e5m2 rna"))
        fp4t_check(c[1] == 0x75, "e5m2 rna tie: %02x", c[1]);
    if (fp4t_check(q32("mxfp8-e5m2", c1, 32, &s, c) == 0, "e5m2 1"))
        fp4t_check(s == 0x70 && c[0] == 0x78, "e5m2 1.0: %02x %02x", s, c[0]);
}

/* Independent model: e from frexp, y = ldexp(x, -e) exact in double, E2M1
 * by thresholds (RNE: ties to even, RNA: ties up), FP8 via fp4sim's
 * MPFR-checked f64 encoders. */
static uint8_t t_e2m1(double y, int rna) {
    static const double up[7] = {0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0};
    static const int tie_up_rne[7] = {0, 1, 0, 1, 0, 1, 0};
    double a = fabs(y);
    uint8_t m = 0;
    for (int i = 0; i < 7; i++) m += a > up[i] || (a == up[i] && (rna || tie_up_rne[i]));
    return (uint8_t)(m | (signbit(y) ? 8 : 0));
}

static void test_random(void) {
    const char *names[] = {"mxfp4", "mxfp4-rna", "mxfp8-e4m3", "mxfp8-e4m3-rna", "mxfp8-e5m2", "mxfp8-e5m2-rna"};
    const int64_t rows = 16, cols = 256;
    float *x = malloc((size_t)(rows * cols) * sizeof *x);
    for (int t = 0; t < 12; t++) {
        for (int64_t i = 0; i < rows * cols; i++) {
            uint32_t r = fp4t_rand32(fp4t_seed(), 300 + t, (uint64_t)i);
            int e = (int)((fp4t_rand32(fp4t_seed(), 400 + t, (uint64_t)(i / 32)) % 60)) - 40;
            x[i] = ldexpf((float)((int32_t)r) * 0x1p-31f, e);
            if (r % 97 == 0) x[i] = ldexpf((float)(r % 16) * 0.25f, e); /* exact ties */
        }
        for (int k = 0; k < 6; k++) {
            fp4_qtensor q;
            if (!fp4t_check(fp4_quantize_by_name(names[k], FP4_FMT_F32, x, rows, cols, NULL, &q) == 0, "%s", names[k]))
                continue;
            int rna = k % 2, emax = k < 2 ? 2 : (k < 4 ? 8 : 15);
            for (int64_t r = 0; r < rows; r++)
                for (int64_t b = 0; b < cols / 32; b++) {
                    float m = 0;
                    for (int i = 0; i < 32; i++) m = fmaxf(m, fabsf(x[r * cols + b * 32 + i]));
                    int fe;
                    frexp(m, &fe);
                    int e = m == 0 ? -127 : fe - 1 - emax;
                    if (e < -127) e = -127;
                    fp4t_check(fp4_qtensor_scale(&q, r, b * 32) == e + 127, "%s scale", names[k]);
                    fp4_cvt_opts o = fp4_cvt_opts_default();
                    o.round = rna ? FP4_RNA : FP4_RNE;
                    for (int i = 0; i < 32; i++) {
                        double y = ldexp((double)x[r * cols + b * 32 + i], -e);
                        uint8_t want = k < 2 ? t_e2m1(y, rna)
                                             : (k < 4 ? f64_to_e4m3(y, &o, NULL, NULL) : f64_to_e5m2(y, &o, NULL, NULL));
                        uint8_t got = fp4_qtensor_code(&q, r, b * 32 + i);
                        fp4t_check(got == want, "%s t=%d (%lld,%lld): y=%a code %02x want %02x", names[k], t,
                                   (long long)r, (long long)(b * 32 + i), y, got, want);
                        fp4_value v = fp4_qtensor_value(&q, r, b * 32 + i);
                        double dv = fp4_value_to_f64(&v);
                        double wv = fp4_to_f64(q.t.elem, want) * ldexp(1.0, e);
                        fp4t_check(dv == wv, "%s dequant", names[k]);
                    }
                }
            fp4_qtensor_free(&q);
        }
    }
    free(x);
}

static void test_errors(void) {
    float x[64] = {1};
    fp4_qtensor q;
    fp4t_check(fp4_quantize_by_name("mxfp4", FP4_FMT_F32, x, 1, 48, NULL, &q) == -1 &&
                   strstr(fp4_last_error(), "multiple of 32"), "cols %% 32: %s", fp4_last_error());
    x[3] = NAN;
    fp4t_check(fp4_quantize_by_name("mxfp4", FP4_FMT_F32, x, 1, 32, NULL, &q) == -1, "NaN refused");
    x[3] = INFINITY;
    fp4t_check(fp4_quantize_by_name("mxfp8", FP4_FMT_F32, x, 1, 32, NULL, &q) == -1, "Inf refused");
    x[3] = 0;
    fp4_qopts o = fp4_qopts_default();
    o.global_source = FP4_QGS_AMAX;
    o.amax = 1;
    fp4t_check(fp4_quantize_by_name("mxfp4", FP4_FMT_F32, x, 1, 32, &o, &q) == -1, "MX has no tensor scale");
    o = fp4_qopts_default();
    o.two_d = true;
    fp4t_check(fp4_quantize_by_name("mxfp4", FP4_FMT_F32, x, 1, 32, &o, &q) == -1, "2D is TE only");
    /* BF16 and FP16 inputs decode exactly. */
    uint16_t h[32] = {0x4600}; /* f16 6.0 */
    if (fp4t_check(fp4_quantize_by_name("mxfp4", FP4_FMT_F16, h, 1, 32, NULL, &q) == 0, "f16 input")) {
        fp4t_check(fp4_qtensor_scale(&q, 0, 0) == 0x7F && fp4_qtensor_code(&q, 0, 0) == 7, "f16 6.0");
        fp4t_check(q.codes_bytes == 16 && q.scales_bytes == 1, "mxfp4 sizes");
        fp4_qtensor_free(&q);
    }
    uint16_t bf[32] = {0x40C0}; /* bf16 6.0 */
    if (fp4t_check(fp4_quantize_by_name("mxfp8", FP4_FMT_BF16, bf, 1, 32, NULL, &q) == 0, "bf16 input")) {
        fp4t_check(fp4_qtensor_scale(&q, 0, 0) == 0x79 && fp4_qtensor_code(&q, 0, 0) == 0x7C, "bf16 6.0 mxfp8");
        fp4t_check(q.codes_bytes == 32, "mxfp8 one byte per element");
        fp4_qtensor_free(&q);
    }
}

int main(void) {
    fp4t_begin("test_quant_mx");
    test_mxfp4_hand();
    test_mx_scales();
    test_mxfp8();
    test_random();
    test_errors();
    return fp4t_end();
}
