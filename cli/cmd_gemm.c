/* cmd_gemm.c - `fp4sim gemm`: one GEMM through any engine (the exact
 * oracle by default) on operands read from safetensors files or generated
 * from a seed; prints a summary with the SHA-256 of D and optionally writes
 * D (docs/cli.md "fp4sim gemm"). */
#include "args.h"
#include "commands.h"
#include "fp4conform.h"
#include "render.h"

#include <math.h>
#include <omp.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

static const char k_help[] =
    "usage: fp4sim gemm [options]\n"
    "\n"
    "D = epilogue(alpha * gA * gB * (A x B^T) + beta * C) with A [M, K] and B [N, K]\n"
    "by an engine: the exact oracle (default), an emu datapath model with a kernel\n"
    "structure, recorded outputs, a plugin or a GPU instruction. Prints shape,\n"
    "engine, time, GMAC/s, the SHA-256 of D's bytes (little-endian codes of\n"
    "--out-format) and the first values.\n"
    "\n"
    "inputs (from files):\n"
    "  --a FILE, --b FILE    safetensors with 'codes', 'scales' and optional\n"
    "                        'global_scale' (F32 scalar), or NAME, NAME_scale,\n"
    "                        NAME_scale_2 with --a-tensor / --b-tensor NAME (the\n"
    "                        output of fp4sim quantize --out). codes: U8 [rows, K/2]\n"
    "                        packed E2M1 with F8_E4M3 [rows, K/16] scales (NVFP4) or\n"
    "                        F8_E8M0 [rows, K/32] (MXFP4); F8_E4M3/F8_E5M2 [rows, K]\n"
    "                        with F8_E8M0 (MXFP8) or F32 per 128 (DeepSeek FP8)\n"
    "                        scales, or none; F16, BF16, F32 [rows, K]\n"
    "  --c FILE              'C' F32 [M, N] (needed when --beta is not 0)\n"
    "inputs (generated, when --a/--b are not given):\n"
    "  --m M --n N --k K     shape (default 64 each)\n"
    "  --kind KIND           nvfp4 (default), mxfp4, mxfp8-e4m3, mxfp8-e5m2,\n"
    "                        fp8-block128, e4m3, e5m2, f16, bf16, f32\n"
    "  --seed S              Philox4x32-10 seed (default 0); see docs/cli.md\n"
    "options:\n"
    "  --engine SPEC         ref (default), emu:PRESET[:K=V,..][;STRUCTURE],\n"
    "                        replay:FILE, plugin:LIB.so, cuda:INSTR ('fp4sim engines')\n"
    "  --acc MODE            shorthand: exact (= ref), seq-f32 (= emu:cutlass-host-f32),\n"
    "                        f16-blocks (= emu:f16-blocks, rounded by --acc-round)\n"
    "  --acc-round MODE      rounding of f16-blocks accumulation (default rne)\n"
    "  --epilogue E          exact (default) or f32\n"
    "  --out-format F        f32 (default), f16 or bf16\n"
    "  --round MODE          rounding of the conversion to the output format (rne,\n"
    "                        rna, rz, ru, rd)\n"
    "  --alpha X, --beta Y   epilogue scalars (default 1, 0)\n"
    "  --threads N           OpenMP threads (results do not depend on it)\n"
    "  --out FILE            write D as tensor 'D' [M, N] of --out-format\n"
    "  --json                JSON object instead of text\n";

enum { NSHOWN = 8 };

typedef struct gemm_state {
    const char *a_path, *b_path, *c_path, *out_path;
    const char *a_tensor, *b_tensor, *engine, *acc;
    uint64_t m, n, k, seed, threads;
    bool json, have_shape, have_kind, have_acc_round;
    fp4_tkind kind;
    fp4_round acc_round;
    fp4_gemm_call call;
} gemm_state;

/* One operand: a tensor view into a mapped file or into owned buffers. */
typedef struct operand {
    fp4_tensor t;
    void *codes, *scales; /* owned */
    fp4_st_file *f;
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
STR_OPT(opt_engine, engine)

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

static int opt_kind(void *s, const char *name, const char *v) {
    gemm_state *st = s;
    if (fp4_tkind_from_name(v, &st->kind)) return cli_lib_error("gemm: %s", name);
    st->have_kind = true;
    return CLI_OK;
}

static int opt_acc(void *s, const char *name, const char *v) {
    if (strcmp(v, "exact") && strcmp(v, "seq-f32") && strcmp(v, "f16-blocks"))
        return cli_usage_error("gemm: unknown accumulation '%s' for %s (valid: exact, seq-f32, "
                               "f16-blocks)", v, name);
    ((gemm_state *)s)->acc = v;
    return CLI_OK;
}

static int opt_epilogue(void *s, const char *name, const char *v) {
    if (fp4_epilogue_from_name(v, &((gemm_state *)s)->call.epi)) return cli_lib_error("gemm: %s", name);
    return CLI_OK;
}

static int opt_out_format(void *s, const char *name, const char *v) {
    gemm_state *st = s;
    fp4_format f;
    int rc = cli_parse_format("gemm", name, v, &f);
    if (rc != CLI_OK) return rc;
    if (f != FP4_FMT_F32 && f != FP4_FMT_F16 && f != FP4_FMT_BF16)
        return cli_usage_error("gemm: %s must be f32, f16 or bf16, not '%s'", name, v);
    st->call.out = f;
    return CLI_OK;
}

/* GEMM outputs take no random bits: stochastic rounding is refused here. */
static int parse_round_nors(const char *name, const char *v, fp4_round *out) {
    int rc = cli_parse_round("gemm", name, v, out);
    if (rc == CLI_OK && *out == FP4_RS)
        return cli_usage_error("gemm: %s rs: stochastic rounding needs random bits, which a GEMM "
                               "output does not take (use rne, rna, rz, ru or rd)", name);
    return rc;
}

static int opt_round(void *s, const char *name, const char *v) {
    return parse_round_nors(name, v, &((gemm_state *)s)->call.out_round);
}

static int opt_acc_round(void *s, const char *name, const char *v) {
    gemm_state *st = s;
    st->have_acc_round = true;
    return parse_round_nors(name, v, &st->acc_round);
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
    return parse_float(name, v, &((gemm_state *)s)->call.alpha);
}

static int opt_beta(void *s, const char *name, const char *v) {
    return parse_float(name, v, &((gemm_state *)s)->call.beta);
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
    {"--kind", true, opt_kind},     {"--engine", true, opt_engine},
    {"--seed", true, opt_seed},     {"--threads", true, opt_threads},
    {"--acc", true, opt_acc},       {"--acc-round", true, opt_acc_round},
    {"--epilogue", true, opt_epilogue}, {"--out-format", true, opt_out_format},
    {"--round", true, opt_round},   {"--alpha", true, opt_alpha},
    {"--beta", true, opt_beta},     {"--out", true, opt_out},
    {"--json", false, opt_json},
};

/* ------------------------------------------------------------------------ */
/* Inputs: generated (fp4_tensor_random) or files (fp4_disk_read)            */
/* ------------------------------------------------------------------------ */

static int generate_operand(operand *op, fp4_tkind kind, uint64_t seed, uint32_t stream,
                            int64_t rows, int64_t k) {
    if (fp4_tensor_random(kind, rows, k, seed, stream, &op->t, &op->codes))
        return cli_lib_error("gemm: --kind %s", fp4_tkind_name(kind));
    return CLI_OK;
}

/* fp4sim's on-disk convention: NAME, NAME_scale, NAME_scale_2 with
 * --a-tensor NAME, else the bare file's codes, scales, global_scale. */
static int load_operand(operand *op, const char *which, const char *path, const char *prefix) {
    if (fp4_st_open(path, &op->f) != FP4_ST_OK) return cli_lib_error("gemm: %s", which);
    fp4_disk_tensor d;
    if (fp4_disk_read(NULL, op->f, FP4_DISK_FP4SIM, prefix ? prefix : "", NULL, &d)) {
        if (!prefix && !fp4_st_find(op->f, "codes"))
            return cli_usage_error("gemm: %s: %s has no tensor 'codes' (or give --%c-tensor "
                                   "NAME)", which, path, which[2]);
        return cli_lib_error("gemm: %s: %s", which, path);
    }
    /* Private copies: the mapping may be unaligned for wide elements. */
    int64_t nc = fp4_tensor_codes_bytes(&d.t);
    int64_t ns = fp4_tensor_scales_count(&d.t) * fp4_tensor_scale_bytes(&d.t);
    op->codes = malloc((size_t)nc + 1);
    op->scales = malloc((size_t)ns + 1);
    if (!op->codes || !op->scales) return cli_fail("gemm: out of memory");
    memcpy(op->codes, d.t.codes, (size_t)nc);
    if (ns) memcpy(op->scales, d.t.scales, (size_t)ns);
    op->t = d.t;
    op->t.codes = op->codes;
    op->t.scales = ns ? op->scales : NULL;
    return CLI_OK;
}

static int load_c(const char *path, int64_t m, int64_t n, float **c) {
    fp4_st_file *f = NULL;
    if (fp4_st_open(path, &f) != FP4_ST_OK) return cli_lib_error("gemm: --c");
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

static double d_value(fp4_format f, const void *d, int64_t i) {
    return f == FP4_FMT_F32 ? fp4_to_f64(f, ((const uint32_t *)d)[i])
                            : fp4_to_f64(f, ((const uint16_t *)d)[i]);
}

typedef struct gemm_result {
    int64_t m, n, k;
    double seconds, gmacs;
    char sha[65];
    bool files;
    const fp4_engine *engine;
} gemm_result;

static int print_result(const gemm_state *st, const gemm_result *r, const void *d) {
    const fp4_gemm_call *o = &st->call;
    int64_t nshow = r->m * r->n < NSHOWN ? r->m * r->n : NSHOWN;
    const char *fmt = fp4_format_get(o->out)->name;
    const char *ka = fp4_tkind_name(fp4_tensor_kind(o->A)), *kb = fp4_tkind_name(fp4_tensor_kind(o->B));
    if (st->json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "m", (double)r->m);
        cJSON_AddNumberToObject(j, "n", (double)r->n);
        cJSON_AddNumberToObject(j, "k", (double)r->k);
        cJSON_AddStringToObject(j, "kind_a", ka);
        cJSON_AddStringToObject(j, "kind_b", kb);
        cJSON_AddStringToObject(j, "inputs", r->files ? "files" : "generated");
        if (!r->files) cJSON_AddNumberToObject(j, "seed", (double)st->seed);
        cJSON_AddStringToObject(j, "engine", r->engine->name);
        cJSON_AddStringToObject(j, "evidence", r->engine->evidence);
        cJSON_AddStringToObject(j, "epilogue", fp4_epilogue_name(o->epi));
        cJSON_AddStringToObject(j, "out_format", fmt);
        cJSON_AddStringToObject(j, "round", fp4_round_name(o->out_round));
        cJSON_AddNumberToObject(j, "alpha", o->alpha);
        cJSON_AddNumberToObject(j, "beta", o->beta);
        cJSON_AddNumberToObject(j, "threads", omp_get_max_threads());
        cJSON_AddNumberToObject(j, "seconds", r->seconds);
        cJSON_AddNumberToObject(j, "gmac_per_s", r->gmacs);
        cJSON_AddStringToObject(j, "sha256", r->sha);
        cJSON *first = cJSON_AddArrayToObject(j, "first");
        for (int64_t i = 0; i < nshow; i++) cJSON_AddItemToArray(first, cli_json_number(d_value(o->out, d, i)));
        if (st->out_path) cJSON_AddStringToObject(j, "out", st->out_path);
        return cli_json_print(j);
    }
    printf("gemm: D [%lld x %lld] = A [%lld x %lld] x B [%lld x %lld]^T, %s x %s (%s)\n",
           (long long)r->m, (long long)r->n, (long long)r->m, (long long)r->k, (long long)r->n,
           (long long)r->k, ka, kb, r->files ? "from files" : "generated");
    printf("engine: %s\n", r->engine->name);
    printf("mode: epilogue %s, out %s, round %s, alpha %.9g, beta %.9g\n",
           fp4_epilogue_name(o->epi), fmt, fp4_round_name(o->out_round), o->alpha, o->beta);
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

/* The historic 'fp4sim_acc' metadata value, kept so files stay comparable. */
static const char *acc_label(const gemm_state *st) {
    return st->acc ? st->acc : st->engine ? st->engine : "exact";
}

static int write_d(const gemm_state *st, const void *d, int64_t m, int64_t n, size_t bytes) {
    fp4_st_writer *w = NULL;
    fp4_st_dtype dt = st->call.out == FP4_FMT_F32 ? FP4_ST_F32
                      : st->call.out == FP4_FMT_F16 ? FP4_ST_F16 : FP4_ST_BF16;
    int64_t shape[2] = {m, n};
    fp4_st_status s = fp4_st_writer_create(st->out_path, &w);
    if (s == FP4_ST_OK) s = fp4_st_writer_add(w, "D", dt, 2, shape, d, (int64_t)bytes);
    if (s == FP4_ST_OK) s = fp4_st_writer_set_metadata(w, "fp4sim_version", FP4SIM_VERSION);
    if (s == FP4_ST_OK) s = fp4_st_writer_set_metadata(w, "fp4sim_acc", acc_label(st));
    if (s == FP4_ST_OK) s = fp4_st_writer_set_metadata(w, "format", "pt");
    if (s == FP4_ST_OK) {
        s = fp4_st_writer_finish(w);
        w = NULL;
    }
    fp4_st_writer_abort(w);
    return s == FP4_ST_OK ? CLI_OK : cli_lib_error("gemm: --out");
}

/* ------------------------------------------------------------------------ */

/* The engine spec of --acc (and --acc-round). */
static void acc_engine_spec(const gemm_state *st, char *buf, size_t n) {
    if (strcmp(st->acc, "exact") == 0) snprintf(buf, n, "ref");
    else if (strcmp(st->acc, "seq-f32") == 0) snprintf(buf, n, "emu:cutlass-host-f32");
    else snprintf(buf, n, "emu:f16-blocks:out=%s10", fp4_round_name(st->acc_round));
}

static int open_engine(const gemm_state *st, fp4_engine **e) {
    char spec[64];
    const char *s = st->engine ? st->engine : "ref";
    if (st->acc) {
        acc_engine_spec(st, spec, sizeof spec);
        s = spec;
    }
    if (fp4conf_engine_open(s, e)) return cli_lib_error("gemm: --engine %s", s);
    return CLI_OK;
}

static int inputs(gemm_state *st, operand *a, operand *b, gemm_result *r) {
    int rc = CLI_OK;
    if (r->files) {
        rc = load_operand(a, "--a", st->a_path, st->a_tensor);
        if (rc == CLI_OK) rc = load_operand(b, "--b", st->b_path, st->b_tensor);
        if (rc == CLI_OK && a->t.cols != b->t.cols)
            rc = cli_usage_error("gemm: shape mismatch: A is [%lld, %lld] but B is [%lld, %lld] "
                                 "(K must agree)", (long long)a->t.rows, (long long)a->t.cols,
                                 (long long)b->t.rows, (long long)b->t.cols);
    } else {
        rc = generate_operand(a, st->kind, st->seed, FP4_RNG_GEMM_A, (int64_t)st->m, (int64_t)st->k);
        if (rc == CLI_OK)
            rc = generate_operand(b, st->kind, st->seed, FP4_RNG_GEMM_B, (int64_t)st->n, (int64_t)st->k);
    }
    r->m = a->t.rows, r->n = b->t.rows, r->k = a->t.cols;
    return rc;
}

static int run(gemm_state *st) {
    operand a = {0}, b = {0};
    float *c = NULL;
    void *d = NULL;
    fp4_engine *eng = NULL;
    gemm_result r = {0};
    r.files = st->a_path != NULL;
    int rc = open_engine(st, &eng);
    if (rc == CLI_OK) rc = inputs(st, &a, &b, &r);
    if (rc == CLI_OK && st->call.beta != 0) {
        if (st->c_path) {
            rc = load_c(st->c_path, r.m, r.n, &c);
        } else if (r.files) {
            rc = cli_usage_error("gemm: --beta %g needs --c C.safetensors", st->call.beta);
        } else {
            c = malloc((size_t)(r.m * r.n) * sizeof *c + 1);
            if (!c) rc = cli_fail("gemm: out of memory");
            for (int64_t i = 0; c && i < r.m * r.n; i++)
                c[i] = (float)(fp4_rand32(st->seed, FP4_RNG_GEMM_C, FP4_RNG_SUB_PLAIN, (uint64_t)i) >> 8) * 0x1p-23f - 1.0f;
        }
    }
    size_t width = st->call.out == FP4_FMT_F32 ? 4 : 2;
    size_t dbytes = (size_t)(r.m * r.n) * width;
    if (rc == CLI_OK && !(d = malloc(dbytes + 1))) rc = cli_fail("gemm: out of memory");
    if (rc == CLI_OK) {
        st->call.A = &a.t, st->call.B = &b.t, st->call.C = c, st->call.D = d;
        r.engine = eng;
        double t0 = omp_get_wtime();
        if (fp4_engine_gemm(eng, &st->call) != 0) rc = cli_lib_error("gemm");
        r.seconds = omp_get_wtime() - t0;
        r.gmacs = r.seconds > 0 ? (double)r.m * (double)r.n * (double)r.k / r.seconds / 1e9 : 0;
    }
    if (rc == CLI_OK) rc = sha256_hex(d, dbytes, r.sha);
    if (rc == CLI_OK && st->out_path) rc = write_d(st, d, r.m, r.n, dbytes);
    if (rc == CLI_OK) rc = print_result(st, &r, d);
    fp4_engine_close(eng);
    free(d), free(c);
    free(a.codes), free(a.scales), free(b.codes), free(b.scales);
    fp4_st_close(a.f);
    fp4_st_close(b.f);
    return rc;
}

static int check_combination(const gemm_state *st) {
    if ((st->a_path == NULL) != (st->b_path == NULL))
        return cli_usage_error("gemm: give both --a and --b, or neither (generated inputs)");
    if (st->a_path && (st->have_shape || st->have_kind))
        return cli_usage_error("gemm: --m/--n/--k/--kind describe generated inputs; not with --a/--b");
    if (!st->a_path && (st->a_tensor || st->b_tensor))
        return cli_usage_error("gemm: --a-tensor/--b-tensor need --a/--b");
    if (st->c_path && st->call.beta == 0)
        return cli_usage_error("gemm: --c is only used with a non-zero --beta");
    if (st->acc && st->engine)
        return cli_usage_error("gemm: --acc is a shorthand for an engine; give --acc or --engine");
    if (st->have_acc_round && !(st->acc && strcmp(st->acc, "f16-blocks") == 0))
        return cli_usage_error("gemm: --acc-round only applies to --acc f16-blocks");
    return CLI_OK;
}

int cli_cmd_gemm(int argc, char **argv) {
    gemm_state st = {.m = 64, .n = 64, .k = 64, .kind = FP4_TK_NVFP4, .acc_round = FP4_RNE};
    st.call = fp4_gemm_call_make(NULL, NULL, NULL);
    int rc = cli_parse(argc, argv, "gemm", k_opts, sizeof k_opts / sizeof k_opts[0], &st, NULL);
    if (rc == CLI_HELP) return fputs(k_help, stdout) < 0 ? CLI_FAIL : CLI_OK;
    if (rc != CLI_OK) return rc;
    if ((rc = check_combination(&st)) != CLI_OK) return rc;
    if (st.threads) omp_set_num_threads((int)st.threads);
    return run(&st);
}
