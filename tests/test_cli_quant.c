/* test_cli_quant.c - `fp4sim quantize` and `fp4sim gemm` checked against the
 * library calls they wrap (fp4_quantize, fp4_gemm_exact, the emu engines), by running the real
 * binary. Usage:
 *   test_cli_quant write DIR          deterministic inputs DIR/qin.safetensors
 *                                     (good) and DIR/qbad.safetensors (bad)
 *   test_cli_quant quant FP4SIM DIR   quantize: summary, --compare, --out
 *   test_cli_quant gemm FP4SIM DIR    gemm: generated and file inputs */
#include "fp4io.h"
#include "fp4quant.h"
#include "fp4emu.h"
#include "fp4ref.h"

#include <Random123/philox.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static int g_fail;
#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);     \
            fprintf(stderr, __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                \
            g_fail++;                                                           \
        }                                                                       \
    } while (0)
#define REQUIRE(cond, ...)                                                      \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);     \
            fprintf(stderr, __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                \
            exit(1);                                                            \
        }                                                                       \
    } while (0)

static const char *g_fp4sim, *g_dir, *g_mode = "";

static philox4x32_ctr_t rand4(uint64_t seed, uint32_t stream, uint64_t i) {
    philox4x32_key_t key = {{(uint32_t)seed, (uint32_t)(seed >> 32)}};
    philox4x32_ctr_t ctr = {{(uint32_t)i, (uint32_t)(i >> 32), stream, 0}};
    return philox4x32(ctr, key);
}

static char *path_in(const char *name) {
    static char buf[8][1024];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 1024, "%s/%s", g_dir, name);
    return p;
}

/* Runs `fp4sim ARGS > DIR/stdout.txt 2> DIR/stderr.txt`; returns the exit
 * status and the malloc'd stdout. */
static int run(char **out, const char *fmt, ...) {
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "'%s' %s > '%s/%s.stdout' 2> '%s/%s.stderr'", g_fp4sim, args,
             g_dir, g_mode, g_dir, g_mode);
    int st = system(cmd);
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    char so[256];
    snprintf(so, sizeof so, "%s.stdout", g_mode);
    FILE *f = fopen(path_in(so), "rb");
    REQUIRE(f, "cannot read stdout of %s", cmd);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    REQUIRE(buf && fread(buf, 1, (size_t)n, f) == (size_t)n, "read");
    buf[n] = 0;
    fclose(f);
    if (rc != 0) fprintf(stderr, "command: %s (rc %d)\n", cmd, rc);
    if (out) *out = buf;
    else free(buf);
    return rc;
}

static cJSON *run_json(const char *args) {
    char *out;
    int rc = run(&out, "%s", args);
    REQUIRE(rc == 0, "fp4sim %s exited %d", args, rc);
    cJSON *j = cJSON_Parse(out);
    REQUIRE(j, "fp4sim %s: stdout is not JSON:\n%s", args, out);
    free(out);
    return j;
}

static double jnum(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    REQUIRE(cJSON_IsNumber(v), "no number '%s'", key);
    return v->valuedouble;
}

static const char *jstr(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    REQUIRE(cJSON_IsString(v), "no string '%s'", key);
    return v->valuestring;
}

/* ------------------------------------------------------------------------ */
/* Inputs                                                                    */
/* ------------------------------------------------------------------------ */

enum { R1 = 32, C1 = 64, R2 = 16, C2 = 64 };
static float g_w1[R1 * C1];
static uint16_t g_w2[R2 * C2];

/* Roughly normal values with a wide spread of block amax; block 0 of row 3
 * is all zero. */
static void make_inputs(void) {
    for (int i = 0; i < R1 * C1; i++) {
        philox4x32_ctr_t r = rand4(11, 0, (uint64_t)i);
        double u = 0;
        for (int k = 0; k < 4; k++) u += (double)r.v[k] * 0x1p-32;
        double scale = ldexp(1.0, (int)(r.v[0] % 9) - 4);
        g_w1[i] = (float)((u - 2.0) * scale);
    }
    for (int c = 0; c < 16; c++) g_w1[3 * C1 + c] = 0;
    for (int i = 0; i < R2 * C2; i++) {
        philox4x32_ctr_t r = rand4(12, 0, (uint64_t)i);
        float x = (float)(((double)r.v[1] * 0x1p-32 - 0.5) * 10.0);
        uint32_t bits;
        memcpy(&bits, &x, 4);
        g_w2[i] = (uint16_t)(bits >> 16); /* BF16 by truncation */
    }
}

static void cmd_write(void) {
    make_inputs();
    fp4_st_writer *w;
    int64_t s1[2] = {R1, C1}, s2[2] = {R2, C2};
    REQUIRE(fp4_st_writer_create(path_in("qin.safetensors"), &w) == FP4_ST_OK, "%s",
            fp4_last_error());
    fp4_st_writer_add(w, "w_f32", FP4_ST_F32, 2, s1, g_w1, sizeof g_w1);
    fp4_st_writer_add(w, "w_bf16", FP4_ST_BF16, 2, s2, g_w2, sizeof g_w2);
    int32_t ints[16] = {0};
    int64_t s3[2] = {4, 4};
    fp4_st_writer_add(w, "ints", FP4_ST_I32, 2, s3, ints, sizeof ints);
    REQUIRE(fp4_st_writer_finish(w) == FP4_ST_OK, "%s", fp4_last_error());

    float odd[4 * 24] = {0}, vec[64] = {0};
    int64_t s4[2] = {4, 24}, s5[1] = {64};
    REQUIRE(fp4_st_writer_create(path_in("qbad.safetensors"), &w) == FP4_ST_OK, "%s",
            fp4_last_error());
    fp4_st_writer_add(w, "odd", FP4_ST_F32, 2, s4, odd, sizeof odd);
    fp4_st_writer_add(w, "vec", FP4_ST_F32, 1, s5, vec, sizeof vec);
    fp4_st_writer_add(w, "ints", FP4_ST_I32, 2, s3, ints, sizeof ints);
    /* codes with the wrong dtype for gemm */
    int64_t s6[2] = {16, 8}, s7[2] = {16, 1};
    static uint8_t zeros[128];
    fp4_st_writer_add(w, "codes", FP4_ST_I8, 2, s6, zeros, 128);
    fp4_st_writer_add(w, "scales", FP4_ST_F8_E4M3, 2, s7, zeros, 16);
    REQUIRE(fp4_st_writer_finish(w) == FP4_ST_OK, "%s", fp4_last_error());
}

/* ------------------------------------------------------------------------ */
/* quantize                                                                  */
/* ------------------------------------------------------------------------ */

static void quant_direct(const char *recipe, int which, fp4_scale_layout layout,
                         fp4_qtensor *q) {
    fp4_qopts o = fp4_qopts_default();
    o.layout = layout;
    int rc = which == 0 ? fp4_quantize_by_name(recipe, FP4_FMT_F32, g_w1, R1, C1, &o, q)
                        : fp4_quantize_by_name(recipe, FP4_FMT_BF16, g_w2, R2, C2, &o, q);
    REQUIRE(rc == 0, "fp4_quantize %s: %s", recipe, fp4_last_error());
}

static void check_compare(const cJSON *t, int which) {
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(t, "compare");
    REQUIRE(c, "no compare object");
    fp4_qtensor a, b;
    quant_direct("modelopt", which, FP4_SCALE_LINEAR, &a);
    quant_direct("vllm-fast", which, FP4_SCALE_LINEAR, &b);
    int64_t sd = 0, cd = 0;
    for (int64_t r = 0; r < a.t.rows; r++)
        for (int64_t cc = 0; cc < a.t.cols; cc++) {
            if (cc % 16 == 0) sd += fp4_qtensor_scale(&a, r, cc) != fp4_qtensor_scale(&b, r, cc);
            cd += fp4_qtensor_code(&a, r, cc) != fp4_qtensor_code(&b, r, cc);
        }
    CHECK(jnum(c, "scale_diff") == (double)sd, "scale_diff %g vs %lld", jnum(c, "scale_diff"),
          (long long)sd);
    CHECK(jnum(c, "code_diff") == (double)cd, "code_diff %g vs %lld", jnum(c, "code_diff"),
          (long long)cd);
    CHECK(jnum(c, "blocks") == (double)(a.t.rows * a.t.cols / 16), "blocks");
    CHECK(fabs(jnum(c, "code_diff_ppm") - 1e6 * (double)cd / (double)(a.t.rows * a.t.cols)) < 1e-6,
          "ppm");
    const cJSON *first = cJSON_GetObjectItemCaseSensitive(c, "first");
    int nf = cJSON_GetArraySize(first);
    CHECK(nf <= 5 && ((sd + cd == 0) == (nf == 0)), "first has %d entries", nf);
    const cJSON *d;
    cJSON_ArrayForEach(d, first) {
        int64_t r = (int64_t)jnum(d, "row"), g = (int64_t)jnum(d, "block");
        char want[8];
        snprintf(want, sizeof want, "0x%02x", fp4_qtensor_scale(&a, r, g * 16));
        CHECK(strcmp(jstr(d, "scale_a"), want) == 0, "scale_a");
        bool differ = fp4_qtensor_scale(&a, r, g * 16) != fp4_qtensor_scale(&b, r, g * 16);
        for (int k = 0; k < 16; k++)
            differ |= fp4_qtensor_code(&a, r, g * 16 + k) != fp4_qtensor_code(&b, r, g * 16 + k);
        CHECK(differ, "row %lld block %lld listed but equal", (long long)r, (long long)g);
    }
    fp4_qtensor_free(&a);
    fp4_qtensor_free(&b);
}

static void check_out(const char *file, fp4_scale_layout layout) {
    fp4_st_file *f;
    REQUIRE(fp4_st_open(path_in(file), &f) == FP4_ST_OK, "%s", fp4_last_error());
    CHECK(fp4_st_count(f) == 6, "%lld tensors", (long long)fp4_st_count(f));
    const char *meta = fp4_st_metadata(f, "fp4sim_recipe");
    CHECK(meta && strcmp(meta, "modelopt") == 0, "metadata recipe");
    CHECK(fp4_st_metadata(f, "fp4sim_version") != NULL, "metadata version");
    static const char *names[2] = {"w_f32", "w_bf16"};
    for (int w = 0; w < 2; w++) {
        fp4_qtensor q;
        quant_direct("modelopt", w, layout, &q);
        char n[64];
        const fp4_st_tensor *t = fp4_st_find(f, names[w]);
        int64_t shape[2] = {q.t.rows, q.t.cols / 2};
        REQUIRE(t && fp4_st_expect(t, file, FP4_ST_U8, 2, shape) == FP4_ST_OK, "%s",
                fp4_last_error());
        CHECK(memcmp(t->data, q.codes, q.codes_bytes) == 0, "codes of %s", names[w]);
        snprintf(n, sizeof n, "%s_scale", names[w]);
        t = fp4_st_find(f, n);
        if (layout == FP4_SCALE_LINEAR) {
            int64_t ss[2] = {q.t.rows, q.t.cols / 16};
            REQUIRE(t && fp4_st_expect(t, file, FP4_ST_F8_E4M3, 2, ss) == FP4_ST_OK, "%s",
                    fp4_last_error());
        } else {
            int64_t ss[2] = {(q.t.rows + 127) / 128 * 128, (q.t.cols / 16 + 3) / 4 * 4};
            REQUIRE(t && fp4_st_expect(t, file, FP4_ST_U8, 2, ss) == FP4_ST_OK, "%s",
                    fp4_last_error());
        }
        CHECK((size_t)t->nbytes == q.scales_bytes && memcmp(t->data, q.scales, q.scales_bytes) == 0,
              "scales of %s", names[w]);
        snprintf(n, sizeof n, "%s_scale_2", names[w]);
        t = fp4_st_find(f, n);
        REQUIRE(t && fp4_st_expect(t, file, FP4_ST_F32, 0, NULL) == FP4_ST_OK, "%s",
                fp4_last_error());
        float g;
        memcpy(&g, t->data, 4);
        CHECK(g == q.global_decode, "scale_2 %g vs %g", g, q.global_decode);
        fp4_qtensor_free(&q);
    }
    fp4_st_close(f);
}

static void cmd_quant(void) {
    make_inputs();
    char args[2048];
    snprintf(args, sizeof args,
             "quantize '%s' --recipe modelopt,torchao --compare modelopt,vllm-fast --json",
             path_in("qin.safetensors"));
    cJSON *j = run_json(args);
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(j, "tensors");
    REQUIRE(cJSON_GetArraySize(ts) == 2, "two tensors expected");
    const cJSON *t;
    cJSON_ArrayForEach(t, ts) {
        int which = strcmp(jstr(t, "name"), "w_f32") == 0 ? 0 : 1;
        CHECK(jnum(t, "rows") == (which ? R2 : R1), "rows");
        const cJSON *rs = cJSON_GetObjectItemCaseSensitive(t, "recipes");
        REQUIRE(cJSON_GetArraySize(rs) == 2, "two recipes");
        const cJSON *r0 = cJSON_GetArrayItem(rs, 0);
        CHECK(strcmp(jstr(r0, "recipe"), "modelopt") == 0, "recipe order");
        fp4_qtensor q;
        quant_direct("modelopt", which, FP4_SCALE_LINEAR, &q);
        CHECK(jnum(r0, "global_decode") == q.global_decode, "global_decode");
        int64_t zero = 0, sat = 0;
        for (int64_t r = 0; r < q.t.rows; r++)
            for (int64_t c = 0; c < q.t.cols; c++) {
                if (c % 16 == 0) zero += fp4_qtensor_scale(&q, r, c) == 0;
                sat += (fp4_qtensor_code(&q, r, c) & 7) == 7;
            }
        CHECK(jnum(r0, "zero_scale_blocks") == (double)zero, "zero blocks");
        CHECK(which != 0 || fp4_qtensor_scale(&q, 3, 0) == q.recipe->zero_block_scale,
              "the all-zero block has the recipe's zero-block scale");
        CHECK(jnum(r0, "saturated_codes") == (double)sat, "saturated");
        double e = jnum(r0, "rel_rms_error");
        CHECK(e > 0.01 && e < 0.3, "rel rms error %g", e);
        fp4_qtensor_free(&q);
        check_compare(t, which);
    }
    cJSON_Delete(j);

    /* Text mode prints every tensor and the comparison line. */
    char *out;
    CHECK(run(&out, "quantize '%s' --recipe mxfp4,modelopt --compare modelopt,te",
              path_in("qin.safetensors")) == 0, "text run");
    CHECK(strstr(out, "tensor w_f32: F32 [32 x 64]") && strstr(out, "compare modelopt vs te"),
          "text output:\n%s", out);
    free(out);

    snprintf(args, sizeof args, "quantize '%s' --recipe modelopt --out '%s' --json",
             path_in("qin.safetensors"), path_in("qout.safetensors"));
    cJSON_Delete(run_json(args));
    check_out("qout.safetensors", FP4_SCALE_LINEAR);
    snprintf(args, sizeof args,
             "quantize '%s' --tensor w_f32,w_bf16 --recipe modelopt --layout swizzled --out '%s' "
             "--json",
             path_in("qin.safetensors"), path_in("qswz.safetensors"));
    cJSON_Delete(run_json(args));
    check_out("qswz.safetensors", FP4_SCALE_SWIZZLED);
}

/* ------------------------------------------------------------------------ */
/* gemm                                                                      */
/* ------------------------------------------------------------------------ */

static void sha_hex(const void *d, size_t n, char hex[65]) {
    unsigned char md[32];
    unsigned len;
    EVP_Digest(d, n, md, &len, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

/* The generation rule of docs/cli.md, written again here. */
static void gen(uint64_t seed, uint32_t stream, int64_t rows, int64_t k, uint8_t *codes,
                uint8_t *scales) {
    for (int64_t i = 0; i < rows * k / 2; i++) codes[i] = (uint8_t)rand4(seed, stream, (uint64_t)i).v[0];
    for (int64_t i = 0; i < rows * k / 16; i++)
        scales[i] = (uint8_t)(0x30 + rand4(seed, stream + 1, (uint64_t)i).v[0] % 16);
}

static void check_d_file(const char *file, const void *want, fp4_st_dtype dt, int64_t m,
                         int64_t n, size_t bytes) {
    fp4_st_file *f;
    REQUIRE(fp4_st_open(path_in(file), &f) == FP4_ST_OK, "%s", fp4_last_error());
    const fp4_st_tensor *t = fp4_st_find(f, "D");
    int64_t shape[2] = {m, n};
    REQUIRE(t && fp4_st_expect(t, file, dt, 2, shape) == FP4_ST_OK, "%s", fp4_last_error());
    CHECK(memcmp(t->data, want, bytes) == 0, "D in %s differs from the library's GEMM", file);
    fp4_st_close(f);
}

static void cmd_gemm(void) {
    enum { M = 19, N = 23, K = 48 };
    const uint64_t seed = 7;
    static uint8_t ac[M * K / 2], as[M * K / 16], bc[N * K / 2], bs[N * K / 16];
    gen(seed, 0, M, K, ac, as);
    gen(seed, 2, N, K, bc, bs);
    fp4_tensor A = fp4_tensor_nvfp4(M, K, ac, as, 1.0f), B = fp4_tensor_nvfp4(N, K, bc, bs, 1.0f);
    static uint32_t d[M * N];
    fp4_gemm_call o = fp4_gemm_call_make(&A, &B, d);
    REQUIRE(fp4_gemm_exact(&o) == 0, "%s", fp4_last_error());
    char want[65];
    sha_hex(d, sizeof d, want);

    char args[2048];
    const char *sha[2];
    cJSON *js[2];
    for (int th = 1; th <= 2; th++) {
        snprintf(args, sizeof args,
                 "gemm --m %d --n %d --k %d --seed %llu --acc exact --threads %d --json --out '%s'",
                 M, N, K, (unsigned long long)seed, th, path_in("d.safetensors"));
        js[th - 1] = run_json(args);
        sha[th - 1] = jstr(js[th - 1], "sha256");
        CHECK(strcmp(sha[th - 1], want) == 0, "threads %d: sha %s, direct %s", th, sha[th - 1],
              want);
        check_d_file("d.safetensors", d, FP4_ST_F32, M, N, sizeof d);
    }
    CHECK(strcmp(sha[0], sha[1]) == 0, "1 vs 2 threads");
    CHECK(jnum(js[0], "m") == M && jnum(js[0], "k") == K, "shape in JSON");
    cJSON_Delete(js[0]);
    cJSON_Delete(js[1]);

    /* Non-default modes: bf16 out, f32 epilogue, seq-f32 (the emu preset
     * cutlass-host-f32), alpha. */
    static uint16_t d16[M * N];
    o.epi = FP4_EPI_F32;
    o.out = FP4_FMT_BF16;
    o.alpha = 0.5f;
    o.D = d16;
    fp4emu_gemm_opts eo = fp4emu_gemm_opts_default(&fp4emu_preset_get("cutlass-host-f32")->model);
    REQUIRE(fp4emu_gemm(&eo, &o) == 0, "%s", fp4_last_error());
    snprintf(args, sizeof args,
             "gemm --m %d --n %d --k %d --seed %llu --acc seq-f32 --epilogue f32 --out-format "
             "bf16 --alpha 0.5 --out '%s'",
             M, N, K, (unsigned long long)seed, path_in("d16.safetensors"));
    CHECK(run(NULL, "%s", args) == 0, "bf16 run");
    check_d_file("d16.safetensors", d16, FP4_ST_BF16, M, N, sizeof d16);

    /* File inputs: quantize --out, then gemm of w_f32 x w_f32^T. */
    make_inputs();
    snprintf(args, sizeof args, "quantize '%s' --tensor w_f32 --out '%s'",
             path_in("qin.safetensors"), path_in("qg.safetensors"));
    REQUIRE(run(NULL, "%s", args) == 0, "quantize --out");
    fp4_qtensor q;
    quant_direct("modelopt", 0, FP4_SCALE_LINEAR, &q);
    static uint32_t dq[R1 * R1];
    o = fp4_gemm_call_make(&q.t, &q.t, dq);
    REQUIRE(fp4_gemm_exact(&o) == 0, "%s", fp4_last_error());
    snprintf(args, sizeof args,
             "gemm --a '%s' --a-tensor w_f32 --b '%s' --b-tensor w_f32 --json --out '%s'",
             path_in("qg.safetensors"), path_in("qg.safetensors"), path_in("dq.safetensors"));
    cJSON *j = run_json(args);
    sha_hex(dq, sizeof dq, want);
    CHECK(strcmp(jstr(j, "sha256"), want) == 0, "file-input sha");
    cJSON_Delete(j);
    check_d_file("dq.safetensors", dq, FP4_ST_F32, R1, R1, sizeof dq);
    fp4_qtensor_free(&q);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "write") == 0) {
        g_dir = argv[2];
        cmd_write();
    } else if (argc == 4 && strcmp(argv[1], "quant") == 0) {
        g_fp4sim = argv[2];
        g_dir = argv[3];
        g_mode = argv[1];
        cmd_quant();
    } else if (argc == 4 && strcmp(argv[1], "gemm") == 0) {
        g_fp4sim = argv[2];
        g_dir = argv[3];
        g_mode = argv[1];
        cmd_gemm();
    } else {
        fprintf(stderr, "usage: test_cli_quant write DIR | quant FP4SIM DIR | gemm FP4SIM DIR\n");
        return 2;
    }
    if (g_fail) fprintf(stderr, "%d check(s) failed\n", g_fail);
    else printf("ok\n");
    return g_fail ? 1 : 0;
}
