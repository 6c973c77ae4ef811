/* test_model_trig.c - the cos/sin sources of transformers' float32 RoPE
 * tables (model/trig.c).
 *
 *  1. FP4M_TRIG_CR (MPFR) against an independent computation: the x87
 *     long double cosl/sinl (64-bit significand) rounded to float. The two
 *     can disagree only where the exact value lies within 2^-64 (relative)
 *     of a float rounding boundary; no such case is expected, so every
 *     disagreement fails. Swept: every 401st float in [2^-14, 2^7) (the RoPE
 *     angles of R1 reach a few hundred thousand radians only at long
 *     positions; see 3), all floats in a window around 1, the small-|x|
 *     shortcut of sin, and 2^20 random floats up to 2^20.
 *  2. fp4m_rope_table_f32 with FP4M_TRIG_CR on the fixture's config: the
 *     angles are RN32(pos * inv_freq) and cos/sin are the CR values.
 *  3. FP4M_TRIG_MKL, where Intel MKL can be loaded: equal to the recorded
 *     table tests/data/rope-mkl-tiny.txt (which reproduces the fixture's
 *     probabilities, test_model_fixture). Skipped parts say so.
 *  4. Errors: FP4M_TRIG_USER without a callback, a failing callback. */
#include "test_model_util.h"

#include <stdlib.h>

static float ld_round(long double v) { return (float)v; } /* one rounding, RNE */

static long sweep(float lo, float hi, uint32_t stride, long *count) {
    long bad = 0;
    uint32_t a = fp4t_f32_bits(lo), b = fp4t_f32_bits(hi);
    for (uint32_t u = a; u < b; u += stride) {
        float x = fp4t_f32_from_bits(u);
        float c = fp4m_cosf_cr(x), s = fp4m_sinf_cr(x);
        float cl = ld_round(cosl((long double)x)), sl = ld_round(sinl((long double)x));
        if (fp4t_f32_bits(c) != fp4t_f32_bits(cl) || fp4t_f32_bits(s) != fp4t_f32_bits(sl)) {
            if (bad < 5)
                printf("  x=%a: cr cos %a sin %a, long double cos %a sin %a\n", x, c, s, cl, sl);
            bad++;
        }
        ++*count;
        if (u > UINT32_MAX - stride) break;
    }
    return bad;
}

static void test_cr(void) {
    long n = 0, bad = 0;
    bad += sweep(0x1p-14f, 0x1p7f, 401, &n);
    bad += sweep(0.99f, 1.01f, 1, &n);
    fp4t_check(bad == 0, "CR cos/sin: %ld of %ld floats differ from long double", bad, n);
    /* sin(x) = x below 2^-12 (trig.c), also negative, subnormal and -0 */
    long tiny_bad = 0;
    for (uint32_t u = 1; u < fp4t_f32_bits(0x1p-12f); u += 4099) {
        float x = fp4t_f32_from_bits(u);
        tiny_bad += fp4m_sinf_cr(x) != ld_round(sinl((long double)x));
        tiny_bad += fp4m_sinf_cr(-x) != ld_round(sinl(-(long double)x));
    }
    fp4t_check(tiny_bad == 0, "CR sin below 2^-12: %ld differ", tiny_bad);
    fp4t_check(fp4t_f32_bits(fp4m_sinf_cr(-0.0f)) == 0x80000000u, "sin(-0) = -0");
    fp4t_check(fp4m_cosf_cr(0.0f) == 1.0f, "cos(0) = 1");
    fp4t_check(isnan(fp4m_cosf_cr(INFINITY)) && isnan(fp4m_sinf_cr(NAN)), "cos(inf), sin(nan) NaN");
    /* random floats up to 2^20 (large-argument reduction) */
    uint64_t st = 0x9e3779b97f4a7c15ull;
    long rbad = 0;
    for (int i = 0; i < (1 << 20); i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        float x = ldexpf((float)(st >> 40) / 16777216.0f, (int)((st >> 8) % 21));
        rbad += fp4m_cosf_cr(x) != ld_round(cosl((long double)x));
        rbad += fp4m_sinf_cr(x) != ld_round(sinl((long double)x));
    }
    fp4t_check(rbad == 0, "CR cos/sin, random up to 2^20: %ld differ", rbad);
    printf("CR: %ld floats swept + 2^20 random, all equal to long double rounded once\n", n);
}

static void test_table_cr(const fp4m_config *c) {
    fp4m_opts o = fp4m_opts_transformers(FP4M_F64);
    const int64_t half = c->qk_rope_head_dim / 2, n = 64, m = n * half;
    float th[64 * 8], cs[64 * 8], sn[64 * 8];
    if (!fp4t_check(half == 8, "fixture rope/2 = %lld", (long long)half)) return;
    fp4t_check(fp4m_rope_table_f32(c, &o, 0, n, th, cs, sn) == 0, "table: %s", fp4_last_error());
    double fr[8];
    fp4m_rope_frequencies(c, FP4M_ROPE_F32, fr);
    long bad = 0;
    for (int64_t k = 0; k < m; k++) {
        float a = (float)(k / half) * (float)fr[k % half];
        bad += fp4t_f32_bits(th[k]) != fp4t_f32_bits(a);
        bad += cs[k] != ld_round(cosl((long double)a)) || sn[k] != ld_round(sinl((long double)a));
    }
    fp4t_check(bad == 0, "CR RoPE table: %ld of %lld entries wrong", bad, (long long)m);
    /* pos0 shifts the positions: the table from 10 equals rows 10.. */
    float th2[8], cs2[8], sn2[8];
    fp4t_check(fp4m_rope_table_f32(c, &o, 10, 1, th2, cs2, sn2) == 0, "table at 10");
    fp4t_check(!memcmp(th2, th + 80, sizeof th2) && !memcmp(cs2, cs + 80, sizeof cs2) &&
                   !memcmp(sn2, sn + 80, sizeof sn2),
               "table at pos0 10 != rows 10 of the full table");
}

static void test_mkl(const fp4m_config *c, const tm_rope_table *t) {
    if (!fp4m_trig_mkl_available()) {
        printf("MKL: libmkl_rt not loadable here (set FP4SIM_MKL_LIB): MKL checks skipped\n");
        return;
    }
    fp4m_opts o = fp4m_opts_transformers(FP4M_F64);
    o.rope_trig = FP4M_TRIG_MKL;
    float th[512], cs[512], sn[512];
    fp4t_check(fp4m_rope_table_f32(c, &o, 0, 64, th, cs, sn) == 0, "MKL table: %s",
               fp4_last_error());
    long bad = 0;
    for (int k = 0; k < t->n && k < 512; k++)
        bad += fp4t_f32_bits(th[k]) != t->angle[k] || fp4t_f32_bits(cs[k]) != t->cos[k] ||
               fp4t_f32_bits(sn[k]) != t->sin[k];
    fp4t_check(bad == 0, "MKL here differs from rope-mkl-tiny.txt in %ld of %d entries", bad, t->n);
    printf("MKL: loaded, equal to the recorded table on all %d entries\n", t->n);
}

static int failing_trig(void *ctx, const float *x, float *c, float *s, int64_t n) {
    (void)ctx, (void)x, (void)c, (void)s, (void)n;
    return -1;
}

static void test_errors(void) {
    fp4m_model *m = NULL;
    fp4m_opts o = fp4m_opts_transformers(FP4M_F64);
    o.rope_trig = FP4M_TRIG_USER;
    fp4t_check(fp4m_open(TINY_DIR, &o, &m) != 0 && m == NULL &&
                   strstr(fp4_last_error(), "needs opts.trig_fn"),
               "user trig without a callback: %s", fp4_last_error());
    o.trig_fn = failing_trig;
    if (!fp4t_check(fp4m_open(TINY_DIR, &o, &m) == 0, "open: %s", fp4_last_error())) return;
    int64_t ids[2] = {1, 2};
    fp4t_check(fp4m_forward(m, ids, 2, true, NULL) != 0 &&
                   strstr(fp4_last_error(), "RoPE trig callback failed"),
               "failing callback: %s", fp4_last_error());
    fp4m_close(m);
    /* the reference options never use the fp32 table: no check there */
    fp4m_opts r = fp4m_opts_reference(FP4M_F64);
    r.rope_trig = FP4M_TRIG_USER;
    fp4t_check(fp4m_open(TINY_DIR, &r, &m) == 0, "reference opts + user trig: %s",
               fp4_last_error());
    fp4m_close(m);
    fp4m_trig t;
    fp4t_check(fp4m_trig_parse("mkl", &t) == 0 && t == FP4M_TRIG_MKL && !strcmp(fp4m_trig_name(t), "mkl"),
               "parse mkl");
    fp4t_check(fp4m_trig_parse("libm", &t) != 0 && strstr(fp4_last_error(), "unknown RoPE trig"),
               "parse libm: %s", fp4_last_error());
}

int main(void) {
    fp4t_begin("test_model_trig");
    fp4m_config c;
    if (!fp4t_check(fp4m_config_load(TINY_DIR, &c) == 0, "config: %s", fp4_last_error()))
        return fp4t_end();
    static tm_rope_table t;
    fp4t_check(tm_rope_load(FP4_MODEL_TEST_DATA "/rope-mkl-tiny.txt", &t) == 0 && t.n == 512,
               "rope-mkl-tiny.txt");
    test_cr();
    test_table_cr(&c);
    test_mkl(&c, &t);
    test_errors();
    return fp4t_end();
}
