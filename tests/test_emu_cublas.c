/* test_emu_cublas.c - the emu engine with a kernel structure reproduces, bit
 * for bit, every output of the recorded H100 cuBLASLt GEMMs
 * (tests/data/h100-cublaslt-gemm: M = N = 64, K in {32, 64, 128, 256, 1024},
 * FP8 E4M3 `_scaled_mm` and F16 `mm`, FP32 out; its README). The structures
 * (docs/emu.md "Kernel structure of H100 cuBLASLt"):
 *
 *   FP8  emu:sm90-qgmma-e4m3-f32;promote=128   k32 QGMMA steps ascending, the
 *        tensor-core accumulator restarted at +0 every 128 of K and each
 *        block result added into an FP32 register accumulator (RN)
 *   F16  emu:sm90-hgmma-f16                    one ascending k16 HGMMA chain
 *        over all of K, no promotion, no split-K
 *
 * found by an exhaustive search over promotion intervals, K order, split-K
 * partitions and reductions (tools/cublas_search.c). Controls show the
 * comparison discriminates: the neighbouring structures (promotion every
 * 256 or never; an F16 split) lose most outputs. The data cannot tell a
 * single-CTA promotion from split-K at multiples of 128 (every FP32 add of
 * the block results is exact on it); a constructed input shows the two
 * structures differ where it matters, with values derived by hand.
 *
 * usage: test_emu_cublas DATA_DIR */
#include "fp4conform.h"
#include "testutil.h"

#include <string.h>

static fp4_st_file *g_file;

/* Outputs of `spec` on recorded case `name` equal to the recording, of 4096. */
static int64_t matches(const char *spec, const char *name) {
    char n[64];
    const fp4_st_tensor *t[3];
    const char *suffix[3] = {"A", "B", "C"};
    for (int i = 0; i < 3; i++) {
        snprintf(n, sizeof n, "%s.%s", name, suffix[i]);
        t[i] = fp4_st_find(g_file, n);
        if (!fp4t_check(t[i] != NULL, "%s: no tensor %s", name, n)) return -1;
    }
    fp4_format fmt = t[0]->dtype == FP4_ST_U8 ? FP4_FMT_E4M3 : FP4_FMT_F16;
    fp4_tensor A = fp4_tensor_plain(fmt, t[0]->shape[0], t[0]->shape[1], t[0]->data);
    fp4_tensor B = fp4_tensor_plain(fmt, t[1]->shape[0], t[1]->shape[1], t[1]->data);
    const int64_t n_out = t[2]->numel;
    uint32_t *d = malloc((size_t)n_out * 4);
    uint32_t *want = malloc((size_t)n_out * 4);
    memcpy(want, t[2]->data, (size_t)n_out * 4);
    fp4_gemm_call c = fp4_gemm_call_make(&A, &B, d);
    c.epi = FP4_EPI_F32; /* cuBLASLt's alpha * acc + beta * C in FP32 (alpha 1, beta 0) */
    fp4_engine *e = NULL;
    int64_t same = -1;
    if (fp4t_check(fp4conf_engine_open(spec, &e) == 0 && fp4_engine_gemm(e, &c) == 0,
                   "%s on %s: %s", spec, name, fp4_last_error())) {
        same = 0;
        for (int64_t i = 0; i < n_out; i++) same += d[i] == want[i];
    }
    fp4_engine_close(e);
    free(d), free(want);
    return same;
}

static const char *const k_fp8 = "emu:sm90-qgmma-e4m3-f32;promote=128";
static const char *const k_f16 = "emu:sm90-hgmma-f16";

static void test_all_shapes(void) {
    const int ks[] = {32, 64, 128, 256, 1024};
    for (int i = 0; i < 5; i++) {
        char name[32];
        snprintf(name, sizeof name, "fp8.K%d", ks[i]);
        int64_t m = matches(k_fp8, name);
        fp4t_check(m == 4096, "%s: %s reproduces %lld of 4096", k_fp8, name, (long long)m);
        snprintf(name, sizeof name, "f16.K%d", ks[i]);
        m = matches(k_f16, name);
        fp4t_check(m == 4096, "%s: %s reproduces %lld of 4096", k_f16, name, (long long)m);
    }
}

/* Neighbouring structures must lose (else the comparison proves nothing).
 * Bounds are loose on purpose: the search measured 46 / 26 / 407 / 978. */
static void test_controls(void) {
    struct { const char *spec, *name; } bad[] = {
        {"emu:sm90-qgmma-e4m3-f32;promote=256", "fp8.K1024"},
        {"emu:sm90-qgmma-e4m3-f32", "fp8.K1024"},
        {"emu:sm90-qgmma-e4m3-f32", "fp8.K256"},
        {"emu:sm90-hgmma-f16;promote=32", "f16.K256"},
        {"emu:sm90-hgmma-f16;split=2", "f16.K1024"},
        {"ref", "fp8.K1024"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t m = matches(bad[i].spec, bad[i].name);
        fp4t_check(m >= 0 && m < 3500, "control %s on %s still reproduces %lld of 4096",
                   bad[i].spec, bad[i].name, (long long)m);
    }
    /* What the data cannot separate: split-K at multiples of 128 with any
     * reduction gives the same bits here (every block add is exact). */
    const char *same[] = {"emu:sm90-qgmma-e4m3-f32;promote=128,split=2",
                          "emu:sm90-qgmma-e4m3-f32;split=8,reduce=rev",
                          "emu:sm90-qgmma-e4m3-f32;split=8,reduce=tree"};
    for (int i = 0; i < 3; i++) {
        int64_t m = matches(same[i], "fp8.K1024");
        fp4t_check(m == 4096, "%s on fp8.K1024: %lld of 4096 (expected the same bits)", same[i],
                   (long long)m);
    }
}

/* A row that separates one CTA promoting every 128 from split-K
 * [0, 512) + [512, 1024): block 0 = 128 x 448 x 448 = X = 25690112 (exact:
 * 49 x 2^19), block 4 = -X, block 5 = 1.0 x 0.5 = 0.5, others 0. One chain
 * of block results: ((X + 0) ... + -X) + 0.5 = 0.5 exactly. Split-K: chunk 0
 * = X, chunk 1 = RN32(-X + 0.5) = -X (ulp(X) = 4, 0.5 is below half of it),
 * total 0. E4M3: 448 = 0x7E, -448 = 0xFE, 1.0 = 0x38, 0.5 = 0x30. */
static void test_separating_row(void) {
    enum { K = 1024 };
    uint8_t a[K] = {0}, b[K] = {0};
    for (int k = 0; k < 128; k++) a[k] = 0x7E, b[k] = 0x7E;
    for (int k = 512; k < 640; k++) a[k] = 0xFE, b[k] = 0x7E;
    a[640] = 0x38, b[640] = 0x30;
    fp4_tensor A = fp4_tensor_plain(FP4_FMT_E4M3, 1, K, a);
    fp4_tensor B = fp4_tensor_plain(FP4_FMT_E4M3, 1, K, b);
    struct { const char *spec; float want; } cases[] = {
        {"emu:sm90-qgmma-e4m3-f32;promote=128", 0.5f},
        {"emu:sm90-qgmma-e4m3-f32;promote=128,split=2", 0.0f},
    };
    for (int i = 0; i < 2; i++) {
        uint32_t d = 0xFFFFFFFFu;
        fp4_gemm_call c = fp4_gemm_call_make(&A, &B, &d);
        fp4_engine *e = NULL;
        if (fp4t_check(fp4conf_engine_open(cases[i].spec, &e) == 0 && fp4_engine_gemm(e, &c) == 0,
                       "%s: %s", cases[i].spec, fp4_last_error()))
            fp4t_check(d == fp4t_f32_bits(cases[i].want), "%s: separating row gives 0x%08x, "
                       "expected %g", cases[i].spec, d, (double)cases[i].want);
        fp4_engine_close(e);
    }
}

int main(int argc, char **argv) {
    fp4t_begin("test_emu_cublas");
    if (argc != 2) {
        fprintf(stderr, "usage: test_emu_cublas DATA_DIR\n");
        return 2;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/h100-cublaslt-gemm/h100-cublaslt-gemm.safetensors", argv[1]);
    if (!fp4t_check(fp4_st_open(path, &g_file) == FP4_ST_OK, "%s: %s", path, fp4_last_error()))
        return fp4t_end();
    test_all_shapes();
    test_controls();
    test_separating_row();
    fp4_st_close(g_file);
    return fp4t_end();
}
