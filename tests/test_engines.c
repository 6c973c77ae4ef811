/* test_engines.c - one battery of GEMM calls run against every engine kind
 * through the registry (conformance/registry.c), so each engine passes the
 * same tests: the exact ones (ref, the example plugin, a replay of ref's
 * recorded outputs) must give the oracle's bits; the emu engine must give
 * fp4emu_gemm's bits. Shapes from one element to K = 1024, NaN scales,
 * alpha / beta / tensor scales with the FP32 epilogue, output windows,
 * thread counts, and refusals (a kind or output the engine does not have:
 * FP4_ERR_UNSUPPORTED naming the engine). Also: the recorded H100 cuBLASLt
 * file answers its own calls through replay.
 *
 * usage: test_engines PLUGIN.so DATA_DIR TMP_DIR */
#include "fp4conform.h"
#include "fp4emu.h"
#include "testutil.h"

#include <math.h>
#include <omp.h>
#include <string.h>

typedef struct opnd {
    uint8_t *codes, *scales;
    fp4_tensor t;
} opnd;

static opnd make_nvfp4(int64_t rows, int64_t k, uint32_t stream, float g) {
    opnd x;
    uint64_t seed = fp4t_seed();
    x.codes = malloc((size_t)(rows * k / 2));
    x.scales = malloc((size_t)(rows * k / 16));
    for (int64_t i = 0; i < rows * k / 2; i++) x.codes[i] = (uint8_t)fp4t_rand32(seed, stream, i);
    for (int64_t i = 0; i < rows * k / 16; i++) x.scales[i] = (uint8_t)(fp4t_rand32(seed, stream + 1, i) % 0x7F);
    x.t = fp4_tensor_nvfp4(rows, k, x.codes, x.scales, g);
    return x;
}

static void opnd_free(opnd *x) { free(x->codes), free(x->scales); }

enum { NCASES = 6 };
typedef struct battery {
    opnd A[NCASES], B[NCASES];
    float *C[NCASES];
    fp4_gemm_call call[NCASES];
    uint32_t *want[NCASES];
} battery;

static const int64_t k_shapes[NCASES][3] = {{1, 1, 16}, {7, 5, 64}, {33, 17, 1024},
                                            {3, 70, 272}, {64, 64, 128}, {2, 9, 48}};

/* The calls: FP32 epilogue and output (what every engine here has). */
static void battery_make(battery *b) {
    for (int i = 0; i < NCASES; i++) {
        int64_t M = k_shapes[i][0], N = k_shapes[i][1], K = k_shapes[i][2];
        b->A[i] = make_nvfp4(M, K, 100 + 10 * (uint32_t)i, i % 2 ? 0.5f : 1.0f);
        b->B[i] = make_nvfp4(N, K, 105 + 10 * (uint32_t)i, i % 3 ? 3.0f : 1.0f);
        if (i == 3) b->A[i].scales[5] = 0x7F; /* a NaN scale: row 0 is NaN */
        b->C[i] = malloc((size_t)(M * N) * sizeof(float));
        for (int64_t j = 0; j < M * N; j++)
            b->C[i][j] = ldexpf((float)(int32_t)fp4t_rand32(fp4t_seed(), 300 + (uint32_t)i, j), -28);
        b->want[i] = malloc((size_t)(M * N) * 4);
        fp4_gemm_call c = fp4_gemm_call_make(&b->A[i].t, &b->B[i].t, b->want[i]);
        c.epi = FP4_EPI_F32;
        c.C = b->C[i];
        c.alpha = i == 2 ? 0.37f : 1.0f;
        c.beta = i == 4 ? 0.75f : 0.0f;
        b->call[i] = c;
    }
}

static void battery_free(battery *b) {
    for (int i = 0; i < NCASES; i++) opnd_free(&b->A[i]), opnd_free(&b->B[i]), free(b->C[i]), free(b->want[i]);
}

/* Fills want[] with the oracle's (or, given an emu model, fp4emu_gemm's) bits. */
static void battery_expect(battery *b, const fp4emu_model *emu) {
    for (int i = 0; i < NCASES; i++) {
        fp4_gemm_call c = b->call[i];
        if (emu) {
            fp4emu_gemm_opts o = fp4emu_gemm_opts_default(emu);
            fp4t_check(fp4emu_gemm(&o, &c) == 0, "emu direct: %s", fp4_last_error());
        } else {
            fp4t_check(fp4_gemm_exact(&c) == 0, "oracle: %s", fp4_last_error());
        }
    }
}

/* Runs every case on engine `spec`: whole calls on 1 and 2 threads, then
 * four windows; all must equal want[]. replay engines cannot take beta. */
static void battery_run(const battery *b, const char *spec) {
    fp4_engine *e = NULL;
    if (!fp4t_check(fp4conf_engine_open(spec, &e) == 0, "open %s: %s", spec, fp4_last_error())) return;
    for (int i = 0; i < NCASES; i++) {
        fp4_gemm_call c = b->call[i];
        if (!strcmp(e->kind, "replay") && c.beta != 0.0f) continue;
        const int64_t M = c.A->rows, N = c.B->rows;
        uint32_t *d = malloc((size_t)(M * N) * 4), *w = malloc((size_t)(M * N) * 4);
        c.D = d;
        for (int th = 1; th <= 2; th++) {
            omp_set_num_threads(th);
            memset(d, 0xCD, (size_t)(M * N) * 4);
            if (!fp4t_check(fp4_engine_gemm(e, &c) == 0, "%s case %d: %s", spec, i, fp4_last_error()))
                continue;
            int64_t bad = 0;
            for (int64_t j = 0; j < M * N; j++) bad += d[j] != b->want[i][j];
            fp4t_check(bad == 0, "%s case %d (%lldx%lldx%lld, %d threads): %lld of %lld outputs "
                       "differ", spec, i, (long long)M, (long long)N, (long long)c.A->cols, th,
                       (long long)bad, (long long)(M * N));
        }
        memset(w, 0xCD, (size_t)(M * N) * 4);
        c.D = w;
        const int64_t mh = M / 2, nh = N / 2;
        for (int q = 0; q < 4; q++) {
            c.m0 = q < 2 ? 0 : mh, c.m1 = q < 2 ? mh : M, c.n0 = q % 2 ? nh : 0, c.n1 = q % 2 ? N : nh;
            if (c.m0 == c.m1 || c.n0 == c.n1) continue;
            fp4t_check(fp4_engine_gemm(e, &c) == 0, "%s case %d window %d: %s", spec, i, q, fp4_last_error());
        }
        int64_t bad = 0;
        for (int64_t j = 0; j < M * N; j++) bad += (mh && nh && w[j] != b->want[i][j]);
        fp4t_check(bad == 0, "%s case %d: windows differ on %lld outputs", spec, i, (long long)bad);
        free(d), free(w);
    }
    omp_set_num_threads(2);
    /* A call outside the engine's capabilities is refused, naming the engine. */
    uint16_t h[32] = {0};
    uint32_t d1 = 0;
    fp4_tensor H = fp4_tensor_plain(FP4_FMT_F16, 1, 16, h);
    fp4_gemm_call bad = fp4_gemm_call_make(&H, &H, &d1);
    bad.epi = FP4_EPI_F32;
    bool all = e->caps.kinds_a == fp4_engine_kinds_all();
    if (!all || !strcmp(e->kind, "replay")) {
        int rc = fp4_engine_gemm(e, &bad);
        fp4t_check(rc != 0 && fp4_last_error_kind() == FP4_ERR_UNSUPPORTED &&
                       strstr(fp4_last_error(), e->name) != NULL,
                   "%s: an f16 call: rc %d, kind %s, '%s'", spec, rc,
                   fp4_errkind_name(fp4_last_error_kind()), fp4_last_error());
    }
    fp4_engine_close(e);
}

/* Records the battery's oracle outputs into a replay file. */
static void record(const battery *b, const char *path) {
    fp4_st_writer *w = NULL;
    if (!fp4t_check(fp4_st_writer_create(path, &w) == FP4_ST_OK, "writer: %s", fp4_last_error())) return;
    for (int i = 0; i < NCASES; i++) {
        if (b->call[i].beta != 0.0f) continue;
        char p[32];
        snprintf(p, sizeof p, "case%d", i);
        fp4_gemm_call c = b->call[i];
        fp4t_check(fp4conf_replay_record(w, p, &c) == 0, "record %s: %s", p, fp4_last_error());
    }
    fp4t_check(fp4_st_writer_finish(w) == FP4_ST_OK, "finish: %s", fp4_last_error());
}

/* The recorded H100 file answers its own calls, bit for bit. */
static void test_h100_replay(const char *data_dir) {
    char path[1024], spec[1100];
    snprintf(path, sizeof path, "%s/h100-cublaslt-gemm/h100-cublaslt-gemm.safetensors", data_dir);
    snprintf(spec, sizeof spec, "replay:%s:u8=e4m3", path);
    fp4_engine *e = NULL;
    fp4_st_file *f = NULL;
    if (!fp4t_check(fp4conf_engine_open(spec, &e) == 0 && fp4_st_open(path, &f) == FP4_ST_OK,
                    "h100 replay: %s", fp4_last_error()))
        return;
    const char *cases[] = {"fp8.K32", "fp8.K1024", "f16.K256"};
    for (int i = 0; i < 3; i++) {
        char n[64];
        snprintf(n, sizeof n, "%s.A", cases[i]);
        const fp4_st_tensor *ta = fp4_st_find(f, n);
        snprintf(n, sizeof n, "%s.B", cases[i]);
        const fp4_st_tensor *tb = fp4_st_find(f, n);
        snprintf(n, sizeof n, "%s.C", cases[i]);
        const fp4_st_tensor *tc = fp4_st_find(f, n);
        fp4_format fmt = ta->dtype == FP4_ST_U8 ? FP4_FMT_E4M3 : FP4_FMT_F16;
        fp4_tensor A = fp4_tensor_plain(fmt, ta->shape[0], ta->shape[1], ta->data);
        fp4_tensor B = fp4_tensor_plain(fmt, tb->shape[0], tb->shape[1], tb->data);
        uint32_t *d = malloc((size_t)tc->nbytes);
        fp4_gemm_call c = fp4_gemm_call_make(&A, &B, d);
        c.epi = FP4_EPI_F32;
        fp4t_check(fp4_engine_gemm(e, &c) == 0 && memcmp(d, tc->data, (size_t)tc->nbytes) == 0,
                   "h100 replay %s: %s", cases[i], fp4_last_error());
        free(d);
    }
    /* An unrecorded call is "not recorded", not an answer. */
    uint8_t z[64 * 32] = {0};
    uint32_t d[64 * 64];
    fp4_tensor Z = fp4_tensor_plain(FP4_FMT_E4M3, 64, 32, z);
    fp4_gemm_call c = fp4_gemm_call_make(&Z, &Z, d);
    fp4t_check(fp4_engine_gemm(e, &c) != 0 && fp4_last_error_kind() == FP4_ERR_UNSUPPORTED &&
                   strstr(fp4_last_error(), "no case"),
               "unrecorded call: '%s'", fp4_last_error());
    fp4_st_close(f);
    fp4_engine_close(e);
}

static void test_registry_errors(const char *tmp) {
    const char *bad[] = {"", "bogus", "emu:", "emu:no-such-preset", "emu:sm90-hgmma-f16;split=0",
                         "emu:sm90-hgmma-f16:F=4294967310", "replay:", "replay:/nonexistent.st",
                         "plugin:/nonexistent.so", "plugin:", "cuda:no-such-instr"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fp4_engine *e = NULL;
        fp4t_check(fp4conf_engine_open(bad[i], &e) != 0 && fp4_last_error()[0] && !e,
                   "engine '%s' opened", bad[i]);
    }
    fp4_engine *e = NULL;
    int rc = fp4conf_engine_open("cuda:sm90-wgmma-f16-f32", &e);
    fp4t_check(rc == 0 || fp4_last_error_kind() == FP4_ERR_UNSUPPORTED,
               "cuda engine on a machine without that GPU: '%s'", fp4_last_error());
    fp4_engine_close(e);
    (void)tmp;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: test_engines PLUGIN.so DATA_DIR TMP_DIR\n");
        return 2;
    }
    fp4t_begin("test_engines");
    battery b;
    battery_make(&b);
    battery_expect(&b, NULL);
    char spec[1200], file[1024];
    battery_run(&b, "ref");
    snprintf(spec, sizeof spec, "plugin:%s", argv[1]);
    battery_run(&b, spec);
    snprintf(file, sizeof file, "%s/engines-replay.safetensors", argv[3]);
    record(&b, file);
    snprintf(spec, sizeof spec, "replay:%s", file);
    battery_run(&b, spec);
    const fp4emu_preset *p = fp4emu_preset_get("sm100-mxf4nvf4-cand-f35");
    battery_expect(&b, &p->model);
    battery_run(&b, "emu:sm100-mxf4nvf4-cand-f35");
    battery_free(&b);
    test_h100_replay(argv[2]);
    test_registry_errors(argv[3]);
    return fp4t_end();
}
