/* cmd_gemm.c - `fp4sim gemm`: run the exact NVFP4 GEMM oracle
 * (fp4_gemm_nvfp4) on matrices read from safetensors files or generated from
 * a seed, print a summary with the SHA-256 of D and optionally write D
 * (docs/cli.md "fp4sim gemm"). */
#include "args.h"
#include "commands.h"
#include "fp4io.h"
#include "render.h"

#include <math.h>
#include <omp.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

static const char k_help[] =
    "usage: fp4sim gemm [options]\n"
    "\n"
    "D = alpha * (A x B^T) * gA * gB + beta * C with A [M, K] and B [N, K] NVFP4\n"
    "(E2M1 codes, UE4M3 scales per 16 along K, FP32 tensor scales gA, gB), by\n"
    "fp4sim's GEMM oracle. Prints shape, mode, time, GMAC/s, the SHA-256 of D's\n"
    "bytes (little-endian codes of --out-format) and the first values.\n"
    "\n"
    "inputs (from files):\n"
    "  --a FILE, --b FILE    safetensors with 'codes' U8 [rows, K/2], 'scales'\n"
    "                        F8_E4M3 (or U8) [rows, K/16] and optional\n"
    "                        'global_scale' F32 scalar (default 1)\n"
    "  --a-tensor NAME       read NAME, NAME_scale, NAME_scale_2 instead (ModelOpt\n"
    "  --b-tensor NAME       checkpoints, or the output of fp4sim quantize --out)\n"
    "  --c FILE              'C' F32 [M, N] (needed when --beta is not 0)\n"
    "inputs (generated, when --a/--b are not given):\n"
    "  --m M --n N --k K     shape (default 64 each; K a multiple of 16)\n"
    "  --seed S              Philox4x32-10 seed (default 0); see docs/cli.md\n"
    "options:\n"
    "  --acc MODE            exact (default), seq-f32, f16-blocks\n"
    "  --acc-round MODE      rounding of f16-blocks accumulation (default rne)\n"
    "  --epilogue E          exact (default) or f32\n"
    "  --out-format F        f32 (default), f16 or bf16\n"
    "  --round MODE          rounding of the conversion to the output format\n"
    "  --alpha X, --beta Y   epilogue scalars (default 1, 0)\n"
    "  --threads N           OpenMP threads (results do not depend on it)\n"
    "  --out FILE            write D as tensor 'D' [M, N] of --out-format\n"
    "  --json                JSON object instead of text\n";

enum { NSHOWN = 8 };

typedef struct gemm_state {
    const char *a_path, *b_path, *c_path, *out_path;
    const char *a_tensor, *b_tensor;
    uint64_t m, n, k, seed, threads;
    bool json, have_shape;
    fp4_gemm_opts opts;
} gemm_state;

/* One operand: pointers into a mapped file or into owned buffers. */
typedef struct operand {
    fp4_nvfp4_matrix mat;
    uint8_t *codes, *scales; /* owned copies */
} operand;

/* ------------------------------------------------------------------------ */
/* Options                                                                   */
/* ------------------------------------------------------------------------ */

#define STR_OPT(fn, field)                                                    \
    static int fn(void *s, const char *name, const char *v) {                 \
        ((gemm_state *)s)->field = v;                                         \
        return CLI_OK;                                                        \
    }
STR_OPT(opt_a, a_path)
STR_OPT(opt_b, b_path)
STR_OPT(opt_c, c_path)
STR_OPT(opt_out, out_path)
STR_OPT(opt_a_tensor, a_tensor)
STR_OPT(opt_b_tensor, b_tensor)

static int opt_dim(void *s, const char *name, const char *v) {
    gemm_state *st = s;
    uint64_t *dst = strcmp(name, "--m") == 0 ? &st->m : strcmp(name, "--n") == 0 ? &st->n : &st->k;
    st->have_shape = true;
    return cli_parse_uint("gemm", name, v, 1, 1u << 20, dst);
}

static int opt_seed(void *s, const char *name, const char *v) {
    return cli_parse_uint("gemm", name, v, 0, UINT64_MAX, &((gemm_state *)s)->seed);
}

static int opt_threads(void *s, const char *name, const char *v) {
    return cli_parse_uint("gemm", name, v, 1, 4096, &((gemm_state *)s)->threads);
}

static int opt_acc(void *s, const char *name, const char *v) {
    static const char *const names[] = {"exact", "seq-f32", "f16-blocks"};
    for (int i = 0; i < FP4_ACC_COUNT; i++)
        if (strcmp(v, names[i]) == 0) {
            ((gemm_state *)s)->opts.acc = (fp4_acc_mode)i;
            return CLI_OK;
        }
    return cli_usage_error("gemm: unknown accumulation '%s' for %s (valid: exact, seq-f32, "
                           "f16-blocks)",
                           v, name);
}

static int opt_epilogue(void *s, const char *name, const char *v) {
    gemm_state *st = s;
    if (strcmp(v, "exact") == 0) st->opts.epi = FP4_EPI_EXACT;
    else if (strcmp(v, "f32") == 0) st->opts.epi = FP4_EPI_F32;
    else return cli_usage_error("gemm: unknown epilogue '%s' for %s (valid: exact, f32)", v, name);
    return CLI_OK;
}

static int opt_out_format(void *s, const char *name, const char *v) {
    gemm_state *st = s;
    fp4_format f;
    int rc = cli_parse_format("gemm", name, v, &f);
    if (rc != CLI_OK) return rc;
    if (f != FP4_FMT_F32 && f != FP4_FMT_F16 && f != FP4_FMT_BF16)
        return cli_usage_error("gemm: %s must be f32, f16 or bf16, not '%s'", name, v);
    st->opts.out = f;
    return CLI_OK;
}

static int opt_round(void *s, const char *name, const char *v) {
    return cli_parse_round("gemm", name, v, &((gemm_state *)s)->opts.out_round);
}

static int opt_acc_round(void *s, const char *name, const char *v) {
    return cli_parse_round("gemm", name, v, &((gemm_state *)s)->opts.acc_round);
}

static int parse_float(const char *name, const char *v, float *out) {
    char *end;
    float x = strtof(v, &end);
    if (end == v || *end || !isfinite(x))
        return cli_usage_error("gemm: %s wants a finite number, got '%s'", name, v);
    *out = x;
    return CLI_OK;
}

static int opt_alpha(void *s, const char *name, const char *v) {
    return parse_float(name, v, &((gemm_state *)s)->opts.alpha);
}

static int opt_beta(void *s, const char *name, const char *v) {
    return parse_float(name, v, &((gemm_state *)s)->opts.beta);
}

static int opt_json(void *s, const char *n, const char *v) {
    ((gemm_state *)s)->json = true;
    return CLI_OK;
}

static const cli_opt k_opts[] = {
    {"--a", true, opt_a},           {"--b", true, opt_b},
    {"--c", true, opt_c},           {"--a-tensor", true, opt_a_tensor},
    {"--b-tensor", true, opt_b_tensor}, {"--m", true, opt_dim},
    {"--n", true, opt_dim},         {"--k", true, opt_dim},
    {"--seed", true, opt_seed},     {"--threads", true, opt_threads},
    {"--acc", true, opt_acc},       {"--acc-round", true, opt_acc_round},
    {"--epilogue", true, opt_epilogue}, {"--out-format", true, opt_out_format},
    {"--round", true, opt_round},   {"--alpha", true, opt_alpha},
    {"--beta", true, opt_beta},     {"--out", true, opt_out},
    {"--json", false, opt_json},
};

/* ------------------------------------------------------------------------ */
/* Inputs                                                                    */
/* ------------------------------------------------------------------------ */

/* Word 0 of Philox at (seed, stream, element i): fp4rng.h's frozen GEMM streams. */
static uint32_t rand32(uint64_t seed, uint32_t stream, uint64_t i) {
    return fp4_rand32(seed, stream, FP4_RNG_SUB_PLAIN, i);
}

/* Streams: 0/1 codes/scales of A, 2/3 of B, 4 C. Code byte i = low byte of
 * word 0; scale byte i = 0x30 + (word 0 % 16) (UE4M3 0.5 .. 1.875);
 * C[i] = (word 0 >> 8) * 2^-23 - 1; tensor scales 1. */
static int generate_operand(operand *op, uint64_t seed, uint32_t stream, int64_t rows,
                            int64_t k) {
    size_t nc = (size_t)(rows * k / 2), ns = (size_t)(rows * k / 16);
    op->codes = malloc(nc ? nc : 1);
    op->scales = malloc(ns ? ns : 1);
    if (!op->codes || !op->scales) return cli_fail("gemm: out of memory");
    for (size_t i = 0; i < nc; i++) op->codes[i] = (uint8_t)rand32(seed, stream, i);
    for (size_t i = 0; i < ns; i++)
        op->scales[i] = (uint8_t)(0x30 + rand32(seed, stream + 1, i) % 16);
    op->mat = (fp4_nvfp4_matrix){rows, k, op->codes, op->scales, 1.0f};
    return CLI_OK;
}

static int get_tensor(fp4_st_file *f, const char *which, const char *name, bool optional,
                      const fp4_st_tensor **t) {
    *t = fp4_st_find(f, name);
    if (!*t && !optional)
        return cli_usage_error("gemm: %s: %s has no tensor '%s'", which, fp4_st_path(f), name);
    return CLI_OK;
}

static int load_operand(operand *op, const char *which, const char *path, const char *prefix,
                        fp4_st_file **fout) {
    fp4_st_file *f = NULL;
    if (fp4_st_open(path, &f) != FP4_ST_OK)
        return cli_lib_error("gemm: %s", which);
    *fout = f;
    char n_codes[512], n_scales[512], n_global[512];
    if (prefix) {
        snprintf(n_codes, sizeof n_codes, "%s", prefix);
        snprintf(n_scales, sizeof n_scales, "%s_scale", prefix);
        snprintf(n_global, sizeof n_global, "%s_scale_2", prefix);
    } else {
        strcpy(n_codes, "codes");
        strcpy(n_scales, "scales");
        strcpy(n_global, "global_scale");
    }
    const fp4_st_tensor *tc, *ts, *tg;
    int rc = get_tensor(f, which, n_codes, false, &tc);
    if (rc == CLI_OK) rc = get_tensor(f, which, n_scales, false, &ts);
    if (rc == CLI_OK) rc = get_tensor(f, which, n_global, true, &tg);
    if (rc != CLI_OK) return rc;
    if (tc->dtype != FP4_ST_U8 || tc->ndim != 2)
        return cli_usage_error("gemm: %s: tensor '%s' is %s with %d dims; expected U8 [rows, K/2]",
                               which, tc->name, tc->dtype_name, (int)tc->ndim);
    int64_t rows = tc->shape[0], k = tc->shape[1] * 2;
    if (k % 16 != 0)
        return cli_usage_error("gemm: %s: K = %lld (2 x %lld columns of '%s') is not a multiple "
                               "of 16",
                               which, (long long)k, (long long)tc->shape[1], tc->name);
    if ((ts->dtype != FP4_ST_F8_E4M3 && ts->dtype != FP4_ST_U8) || ts->ndim != 2 ||
        ts->shape[0] != rows || ts->shape[1] != k / 16)
        return cli_usage_error("gemm: %s: tensor '%s' is %s %dd [%lld, %lld]; expected F8_E4M3 "
                               "[%lld, %lld] (linear layout)",
                               which, ts->name, ts->dtype_name, (int)ts->ndim,
                               (long long)ts->shape[0], (long long)ts->shape[1], (long long)rows,
                               (long long)(k / 16));
    float g = 1.0f;
    if (tg) {
        if (tg->dtype != FP4_ST_F32 || tg->numel != 1)
            return cli_usage_error("gemm: %s: tensor '%s' is %s with %lld elements; expected an "
                                   "F32 scalar",
                                   which, tg->name, tg->dtype_name, (long long)tg->numel);
        memcpy(&g, tg->data, 4);
    }
    op->codes = malloc((size_t)tc->nbytes + 1);
    op->scales = malloc((size_t)ts->nbytes + 1);
    if (!op->codes || !op->scales) return cli_fail("gemm: out of memory");
    memcpy(op->codes, tc->data, (size_t)tc->nbytes);
    memcpy(op->scales, ts->data, (size_t)ts->nbytes);
    op->mat = (fp4_nvfp4_matrix){rows, k, op->codes, op->scales, g};
    return CLI_OK;
}

static int load_c(const char *path, int64_t m, int64_t n, float **c) {
    fp4_st_file *f = NULL;
    if (fp4_st_open(path, &f) != FP4_ST_OK)
        return cli_lib_error("gemm: --c");
    const fp4_st_tensor *t = fp4_st_find(f, "C");
    int rc = CLI_OK;
    if (!t) rc = cli_usage_error("gemm: --c: %s has no tensor 'C'", path);
    else if (t->dtype != FP4_ST_F32 || t->ndim != 2 || t->shape[0] != m || t->shape[1] != n)
        rc = cli_usage_error("gemm: --c: tensor 'C' is %s %dd [%lld, %lld]; expected F32 [%lld, "
                             "%lld]",
                             t->dtype_name, (int)t->ndim, (long long)t->shape[0],
                             (long long)t->shape[1], (long long)m, (long long)n);
    else if (!(*c = malloc((size_t)t->nbytes + 1))) rc = cli_fail("gemm: out of memory");
    else memcpy(*c, t->data, (size_t)t->nbytes);
    fp4_st_close(f);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Output                                                                    */
/* ------------------------------------------------------------------------ */

static const char *acc_name(fp4_acc_mode a) {
    return a == FP4_ACC_EXACT ? "exact" : a == FP4_ACC_SEQ_F32 ? "seq-f32" : "f16-blocks";
}

static double d_value(fp4_format f, const void *d, int64_t i) {
    return f == FP4_FMT_F32 ? fp4_to_f64(f, ((const uint32_t *)d)[i])
                            : fp4_to_f64(f, ((const uint16_t *)d)[i]);
}

typedef struct gemm_result {
    int64_t m, n, k;
    double seconds, gmacs;
    char sha[65];
    bool files;
} gemm_result;

static cJSON *json_num(double x) {
    return isfinite(x) ? cJSON_CreateNumber(x)
                       : cJSON_CreateString(isnan(x) ? "nan" : x > 0 ? "inf" : "-inf");
}

static int print_result(const gemm_state *st, const gemm_result *r, const void *d) {
    const fp4_gemm_opts *o = &st->opts;
    int64_t nshow = r->m * r->n < NSHOWN ? r->m * r->n : NSHOWN;
    const char *fmt = fp4_format_get(o->out)->name;
    if (st->json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "m", (double)r->m);
        cJSON_AddNumberToObject(j, "n", (double)r->n);
        cJSON_AddNumberToObject(j, "k", (double)r->k);
        cJSON_AddStringToObject(j, "inputs", r->files ? "files" : "generated");
        if (!r->files) cJSON_AddNumberToObject(j, "seed", (double)st->seed);
        cJSON_AddStringToObject(j, "acc", acc_name(o->acc));
        cJSON_AddStringToObject(j, "epilogue", o->epi == FP4_EPI_EXACT ? "exact" : "f32");
        cJSON_AddStringToObject(j, "out_format", fmt);
        cJSON_AddStringToObject(j, "round", fp4_round_name(o->out_round));
        cJSON_AddNumberToObject(j, "alpha", o->alpha);
        cJSON_AddNumberToObject(j, "beta", o->beta);
        cJSON_AddNumberToObject(j, "threads", omp_get_max_threads());
        cJSON_AddNumberToObject(j, "seconds", r->seconds);
        cJSON_AddNumberToObject(j, "gmac_per_s", r->gmacs);
        cJSON_AddStringToObject(j, "sha256", r->sha);
        cJSON *first = cJSON_AddArrayToObject(j, "first");
        for (int64_t i = 0; i < nshow; i++) cJSON_AddItemToArray(first, json_num(d_value(o->out, d, i)));
        if (st->out_path) cJSON_AddStringToObject(j, "out", st->out_path);
        return cli_json_print(j);
    }
    printf("gemm: D [%lld x %lld] = A [%lld x %lld] x B [%lld x %lld]^T (%s)\n", (long long)r->m,
           (long long)r->n, (long long)r->m, (long long)r->k, (long long)r->n, (long long)r->k,
           r->files ? "from files" : "generated");
    printf("mode: acc %s, epilogue %s, out %s, round %s, alpha %.9g, beta %.9g\n",
           acc_name(o->acc), o->epi == FP4_EPI_EXACT ? "exact" : "f32", fmt,
           fp4_round_name(o->out_round), o->alpha, o->beta);
    printf("time: %.6f s, %.4f GMAC/s, %d threads\n", r->seconds, r->gmacs,
           omp_get_max_threads());
    printf("sha256: %s\n", r->sha);
    printf("first:");
    for (int64_t i = 0; i < nshow; i++) printf(" %.9g", d_value(o->out, d, i));
    printf("\n");
    if (st->out_path) printf("wrote %s\n", st->out_path);
    return CLI_OK;
}

static int sha256_hex(const void *data, size_t n, char hex[65]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, data, n) == 1 && EVP_DigestFinal_ex(ctx, md, &len) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok) return cli_fail("gemm: SHA-256 failed");
    for (unsigned i = 0; i < len && i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return CLI_OK;
}

static int write_d(const gemm_state *st, const void *d, int64_t m, int64_t n, size_t bytes) {
    fp4_st_writer *w = NULL;
    fp4_st_dtype dt = st->opts.out == FP4_FMT_F32 ? FP4_ST_F32
                      : st->opts.out == FP4_FMT_F16 ? FP4_ST_F16 : FP4_ST_BF16;
    int64_t shape[2] = {m, n};
    fp4_st_status s = fp4_st_writer_create(st->out_path, &w);
    if (s == FP4_ST_OK) s = fp4_st_writer_add(w, "D", dt, 2, shape, d, (int64_t)bytes);
    if (s == FP4_ST_OK) s = fp4_st_writer_set_metadata(w, "fp4sim_version", FP4SIM_VERSION);
    if (s == FP4_ST_OK) s = fp4_st_writer_set_metadata(w, "fp4sim_acc", acc_name(st->opts.acc));
    if (s == FP4_ST_OK) s = fp4_st_writer_set_metadata(w, "format", "pt");
    if (s == FP4_ST_OK) {
        s = fp4_st_writer_finish(w);
        w = NULL;
    }
    fp4_st_writer_abort(w);
    return s == FP4_ST_OK ? CLI_OK : cli_lib_error("gemm: --out");
}

/* ------------------------------------------------------------------------ */

static int run(gemm_state *st) {
    operand a = {0}, b = {0};
    fp4_st_file *fa = NULL, *fb = NULL;
    float *c = NULL;
    void *d = NULL;
    gemm_result r = {0};
    int rc = CLI_OK;
    r.files = st->a_path != NULL;
    if (r.files) {
        rc = load_operand(&a, "--a", st->a_path, st->a_tensor, &fa);
        if (rc == CLI_OK) rc = load_operand(&b, "--b", st->b_path, st->b_tensor, &fb);
        if (rc == CLI_OK && a.mat.k != b.mat.k)
            rc = cli_usage_error("gemm: shape mismatch: A is [%lld, %lld] but B is [%lld, %lld] "
                                 "(K must agree)",
                                 (long long)a.mat.rows, (long long)a.mat.k,
                                 (long long)b.mat.rows, (long long)b.mat.k);
    } else {
        if (st->k % 16 != 0)
            rc = cli_usage_error("gemm: --k %llu is not a multiple of 16",
                                 (unsigned long long)st->k);
        if (rc == CLI_OK) rc = generate_operand(&a, st->seed, FP4_RNG_GEMM_A, (int64_t)st->m, (int64_t)st->k);
        if (rc == CLI_OK) rc = generate_operand(&b, st->seed, FP4_RNG_GEMM_B, (int64_t)st->n, (int64_t)st->k);
    }
    r.m = a.mat.rows;
    r.n = b.mat.rows;
    r.k = a.mat.k;
    if (rc == CLI_OK && st->opts.beta != 0) {
        if (st->c_path) {
            rc = load_c(st->c_path, r.m, r.n, &c);
        } else if (r.files) {
            rc = cli_usage_error("gemm: --beta %g needs --c C.safetensors", st->opts.beta);
        } else {
            c = malloc((size_t)(r.m * r.n) * sizeof *c + 1);
            if (!c) rc = cli_fail("gemm: out of memory");
            for (int64_t i = 0; c && i < r.m * r.n; i++)
                c[i] = (float)(rand32(st->seed, FP4_RNG_GEMM_C, (uint64_t)i) >> 8) * 0x1p-23f - 1.0f;
        }
    }
    size_t width = st->opts.out == FP4_FMT_F32 ? 4 : 2;
    size_t dbytes = (size_t)(r.m * r.n) * width;
    if (rc == CLI_OK && !(d = malloc(dbytes + 1))) rc = cli_fail("gemm: out of memory");
    if (rc == CLI_OK) {
        double t0 = omp_get_wtime();
        if (fp4_gemm_nvfp4(&a.mat, &b.mat, c, d, &st->opts) != 0)
            rc = cli_lib_error("gemm");
        r.seconds = omp_get_wtime() - t0;
        r.gmacs = r.seconds > 0 ? (double)r.m * (double)r.n * (double)r.k / r.seconds / 1e9 : 0;
    }
    if (rc == CLI_OK) rc = sha256_hex(d, dbytes, r.sha);
    if (rc == CLI_OK && st->out_path) rc = write_d(st, d, r.m, r.n, dbytes);
    if (rc == CLI_OK) rc = print_result(st, &r, d);
    free(d);
    free(c);
    free(a.codes);
    free(a.scales);
    free(b.codes);
    free(b.scales);
    fp4_st_close(fa);
    fp4_st_close(fb);
    return rc;
}

int cli_cmd_gemm(int argc, char **argv) {
    gemm_state st = {.m = 64, .n = 64, .k = 64, .opts = fp4_gemm_opts_default()};
    int rc = cli_parse(argc, argv, "gemm", k_opts, sizeof k_opts / sizeof k_opts[0], &st, NULL);
    if (rc == CLI_HELP) return fputs(k_help, stdout) < 0 ? CLI_FAIL : CLI_OK;
    if (rc != CLI_OK) return rc;
    if ((st.a_path == NULL) != (st.b_path == NULL))
        return cli_usage_error("gemm: give both --a and --b, or neither (generated inputs)");
    if (st.a_path && st.have_shape)
        return cli_usage_error("gemm: --m/--n/--k describe generated inputs; not with --a/--b");
    if (!st.a_path && (st.a_tensor || st.b_tensor))
        return cli_usage_error("gemm: --a-tensor/--b-tensor need --a/--b");
    if (st.c_path && st.opts.beta == 0)
        return cli_usage_error("gemm: --c is only used with a non-zero --beta");
    if (st.threads) omp_set_num_threads((int)st.threads);
    return run(&st);
}
