/* cmd_model.c - `fp4sim model`: the DeepSeek-V3 / R1 forward of model/
 * from the command line.
 *
 *   model info DIR|config.json [--json]   layers, parameters, bytes per layer
 *                                         and storage kind (fp4m_count_*)
 *   model run DIR --prompt-ids ...        forward + greedy generation, top-5
 *                                         logits, optional trace / logits files
 *   model synth --config C --out DIR      small random checkpoint, any format
 *
 * synth weights are fp4m_synth_rows' (model/synth.c: a function of seed,
 * tensor name and element index), the values a synthetic model
 * (fp4m_open_synthetic) runs with; synth stores them as F32/BF16/F16, or
 * quantizes them into DeepSeek's FP8 blocks, ModelOpt NVFP4 or
 * compressed-tensors NVFP4 (docs/model.md "Quantized checkpoints"). */
#include "args.h"
#include "fp4conform.h"
#include "commands.h"
#include "fp4io.h"
#include "fp4model.h"
#include "render.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <sys/stat.h>
#include <time.h>

static const char k_help[] =
    "usage: fp4sim model info DIR|config.json [--json]\n"
    "       fp4sim model run DIR --prompt-ids ID[,ID...] [options]\n"
    "       fp4sim model run CONFIG --synthetic SEED --prompt-ids ID[,ID...] [options]\n"
    "       fp4sim model synth --config CONFIG.json --out DIR [--seed S] [--dtype D]\n"
    "                          [--input-amax A]\n"
    "       fp4sim model rope DIR|config.json [--positions N] [--start P] [--rope-trig T]\n"
    "\n"
    "DeepSeek-V3 / R1 forward pass (docs/model.md).\n"
    "\n"
    "info: layers, parameter counts and bytes per layer for F64, F32, BF16, FP8\n"
    "  (the R1 checkpoint as stored) and NVFP4; totals and active per token.\n"
    "\n"
    "run: forward of the prompt, then greedy generation (prefill, one token per\n"
    "  step with the KV cache, argmax with lowest id on ties); prints the\n"
    "  generated ids and the top-5 logits of the last position computed (the\n"
    "  one that chose the last token). Options:\n"
    "  --prompt-ids ID,...    prompt token ids (required)\n"
    "  --generate N           new tokens (default 0)\n"
    "  --precision P          f64 (default) or f32\n"
    "  --options O            reference (default) or transformers\n"
    "  --rope-trig T          cos/sin of transformers' float32 RoPE tables: cr\n"
    "                         (correctly rounded, default) or mkl (Intel MKL VML, what\n"
    "                         torch's x86-64 wheels use; needs libmkl_rt at run time,\n"
    "                         or its path in FP4SIM_MKL_LIB); with --options transformers\n"
    "  --policy P             linear-layer precision policy (docs/model.md): reference\n"
    "                         (default), bf16, fp8-block, modelopt-r1, modelopt-r1-v2,\n"
    "                         nvfp4-w4a16, nvfp4-all\n"
    "  --engine E             NVFP4 W4A4 GEMMs: ref (exact oracle, default) or\n"
    "                         emu:PRESET / emu:MODEL (an emu/ datapath model)\n"
    "  --weight-recipe R      NVFP4 recipe for weights not stored quantized (modelopt)\n"
    "  --act-recipe R         NVFP4 recipe for activations (flashinfer-fast)\n"
    "  --act-in F, --out F    bf16 (default) or f32: activations entering quantized\n"
    "                         GEMMs / their outputs\n"
    "  --synthetic SEED       no checkpoint: weights generated on demand from SEED\n"
    "                         (the values `synth --seed SEED` writes); DIR is then a\n"
    "                         config.json or a directory holding one; streams\n"
    "  --stream               hold one layer's weights at a time (default: all)\n"
    "  --trace OUT            every traced intermediate as a safetensors file\n"
    "                         (fixture names, 'layers.L.OP'; decode steps get\n"
    "                         '@POS' appended)\n"
    "  --logits OUT           logits of every position computed, [positions, vocab],\n"
    "                         plus 'tokens' (I64), as safetensors\n"
    "  --json                 JSON output\n"
    "\n"
    "synth: random checkpoint (model.safetensors + config.json) for a config of\n"
    "  at most 2e9 parameters, holding the synthetic weights of --synthetic SEED\n"
    "  (uniform; linear weights of variance 1/in, norm weights 1 +- 0.35).\n"
    "  --seed S               default 0\n"
    "  --dtype D              f32 (default), bf16, f16: every tensor in that dtype;\n"
    "                         fp8: R1's layout (linears but the router E4M3 +\n"
    "                         weight_scale_inv per 128x128, the rest BF16);\n"
    "                         nvfp4-modelopt: R1 NVFP4's (MLP/expert linears NVFP4\n"
    "                         by the modelopt recipe, + hf_quant_config.json);\n"
    "                         nvfp4-ct: compressed-tensors (linears but router and\n"
    "                         lm_head, compressed-tensors recipe)\n"
    "  --input-amax A         activation amax behind input_scale /\n"
    "                         input_global_scale (no calibration; default 32)\n"
    "\n"
    "rope: transformers' float32 RoPE table of a config, one line per position\n"
    "  and frequency: pos, i, then angle, cos, sin as float32 bit patterns (hex)\n"
    "  and decimals. --positions N (default 64), --start P (default 0),\n"
    "  --rope-trig cr|mkl (default cr). tests/data/rope-mkl-tiny.txt was made so.\n";

#define CMD "model"

/* ------------------------------------------------------------------------ */
/* Shared helpers                                                            */
/* ------------------------------------------------------------------------ */

static bool path_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

static cJSON *counts_json(const fp4m_counts *c) {
    static const char *const k_names[FP4M_STORE_COUNT] = {"f64", "f32", "bf16", "fp8", "nvfp4"};
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "params", (double)c->params);
    cJSON *b = cJSON_AddObjectToObject(o, "bytes");
    for (int s = 0; s < FP4M_STORE_COUNT; s++) cJSON_AddNumberToObject(b, k_names[s], (double)c->bytes[s]);
    return o;
}

/* ------------------------------------------------------------------------ */
/* info                                                                      */
/* ------------------------------------------------------------------------ */

typedef struct info_state {
    const char *path;
    bool json;
} info_state;

static int info_positional(void *s, const char *arg) {
    info_state *st = s;
    if (st->path) return cli_usage_error(CMD " info: unexpected argument '%s'", arg);
    st->path = arg;
    return CLI_OK;
}

static int info_json_opt(void *s, const char *n, const char *v) {
    (void)n, (void)v;
    ((info_state *)s)->json = true;
    return CLI_OK;
}

/* The checkpoint's quantization config (fp4m_quant_config) as JSON. */
static cJSON *quant_json(const fp4m_quant_config *q) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "method", fp4m_quant_method_name(q->method));
    cJSON_AddStringToObject(o, "source", q->source);
    if (q->method == FP4M_QUANT_FP8_BLOCK) {
        int b[2] = {(int)q->fp8_block[0], (int)q->fp8_block[1]};
        cJSON_AddItemToObject(o, "weight_block_size", cJSON_CreateIntArray(b, 2));
    }
    if (q->method != FP4M_QUANT_NVFP4_MODELOPT && q->method != FP4M_QUANT_NVFP4_CT) return o;
    cJSON_AddNumberToObject(o, "group_size", (double)q->group_size);
    cJSON_AddStringToObject(o, "producer", q->producer);
    cJSON_AddStringToObject(o, "format", q->format);
    cJSON_AddBoolToObject(o, "input_quant", q->input_quant);
    cJSON_AddStringToObject(o, "kv_cache", q->kv_cache);
    cJSON *a = cJSON_AddArrayToObject(o, "exclude");
    for (int64_t i = 0; i < q->n_patterns; i++) cJSON_AddItemToArray(a, cJSON_CreateString(q->patterns[i]));
    return o;
}

static int cmd_info(int argc, char **argv) {
    info_state st = {0};
    static const cli_opt opts[] = {{"--json", false, info_json_opt}};
    int rc = cli_parse(argc, argv, CMD " info", opts, 1, &st, info_positional);
    if (rc == CLI_HELP) return fputs(k_help, stdout), CLI_OK;
    if (rc != CLI_OK) return rc;
    if (!st.path) return cli_usage_error(CMD " info: missing DIR or config.json");
    if (!path_exists(st.path)) return cli_usage_error(CMD " info: no such file or directory '%s'", st.path);
    fp4m_config c;
    if (fp4m_config_load(st.path, &c) != 0)
        return cli_lib_error(CMD " info");
    fp4m_quant_config q;
    if (fp4m_quant_config_load(st.path, &q) != 0)
        return cli_lib_error(CMD " info");
    if (!st.json) {
        fp4m_print_info(&c, stdout);
        fp4m_quant_config_print(&q, stdout);
        fp4m_quant_config_free(&q);
        return CLI_OK;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "quantization", quant_json(&q));
    fp4m_quant_config_free(&q);
    cJSON_AddStringToObject(o, "layout", c.layout);
    cJSON_AddStringToObject(o, "dtype", c.dtype);
    cJSON_AddNumberToObject(o, "layers", (double)c.num_hidden_layers);
    cJSON_AddNumberToObject(o, "hidden_size", (double)c.hidden_size);
    cJSON_AddNumberToObject(o, "vocab_size", (double)c.vocab_size);
    cJSON_AddNumberToObject(o, "n_routed_experts", (double)c.n_routed_experts);
    cJSON_AddNumberToObject(o, "mtp_layers_not_counted", (double)c.num_nextn_predict_layers);
    fp4m_counts outer, total, active;
    fp4m_count_outer(&c, &outer);
    fp4m_count_model(&c, &total, &active);
    cJSON_AddItemToObject(o, "outer", counts_json(&outer));
    cJSON *layers = cJSON_AddArrayToObject(o, "per_layer");
    for (int64_t l = 0; l < c.num_hidden_layers; l++) {
        fp4m_layer_counts lc;
        fp4m_count_layer(&c, l, &lc);
        bool moe = fp4m_layer_is_moe(&c, l);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "layer", (double)l);
        cJSON_AddStringToObject(e, "kind", moe ? "moe" : "dense");
        cJSON_AddItemToObject(e, "total", counts_json(&lc.total));
        cJSON_AddItemToObject(e, "attention", counts_json(&lc.attn));
        cJSON_AddItemToObject(e, "norms", counts_json(&lc.norms));
        if (moe) {
            cJSON_AddItemToObject(e, "router", counts_json(&lc.router));
            cJSON_AddItemToObject(e, "expert", counts_json(&lc.expert));
            cJSON_AddItemToObject(e, "shared", counts_json(&lc.shared));
        } else {
            cJSON_AddItemToObject(e, "mlp", counts_json(&lc.mlp));
        }
        cJSON_AddItemToObject(e, "active", counts_json(&lc.active));
        cJSON_AddItemToArray(layers, e);
    }
    cJSON_AddItemToObject(o, "total", counts_json(&total));
    cJSON_AddItemToObject(o, "active", counts_json(&active));
    return cli_json_print(o);
}

/* ------------------------------------------------------------------------ */
/* run                                                                       */
/* ------------------------------------------------------------------------ */

typedef struct run_state {
    bool json;
    const char *dir, *ids_text, *trace_path, *logits_path;
    uint64_t generate;
    fp4m_prec prec;
    bool transformers;
    const char *policy, *engine, *wrecipe, *arecipe, *act_in, *out;
    bool synthetic, stream;
    uint64_t seed;
    fp4m_trig trig;
} run_state;

static int run_positional(void *s, const char *arg) {
    run_state *st = s;
    if (st->dir) return cli_usage_error(CMD " run: unexpected argument '%s'", arg);
    st->dir = arg;
    return CLI_OK;
}

static int run_opt(void *s, const char *name, const char *v) {
    run_state *st = s;
    if (strcmp(name, "--json") == 0) {
        st->json = true;
    } else if (strcmp(name, "--prompt-ids") == 0) {
        st->ids_text = v;
    } else if (strcmp(name, "--generate") == 0) {
        return cli_parse_uint(CMD " run", name, v, 0, 1u << 20, &st->generate);
    } else if (strcmp(name, "--precision") == 0) {
        if (strcmp(v, "f64") == 0) st->prec = FP4M_F64;
        else if (strcmp(v, "f32") == 0) st->prec = FP4M_F32;
        else return cli_usage_error(CMD " run: unknown precision '%s' (valid: f64, f32)", v);
    } else if (strcmp(name, "--options") == 0) {
        if (strcmp(v, "reference") == 0) st->transformers = false;
        else if (strcmp(v, "transformers") == 0) st->transformers = true;
        else
            return cli_usage_error(CMD " run: unknown options '%s' (valid: reference, transformers)",
                                   v);
    } else if (strcmp(name, "--policy") == 0) {
        st->policy = v;
    } else if (strcmp(name, "--engine") == 0) {
        st->engine = v;
    } else if (strcmp(name, "--weight-recipe") == 0) {
        st->wrecipe = v;
    } else if (strcmp(name, "--act-recipe") == 0) {
        st->arecipe = v;
    } else if (strcmp(name, "--act-in") == 0) {
        st->act_in = v;
    } else if (strcmp(name, "--out") == 0) {
        st->out = v;
    } else if (strcmp(name, "--synthetic") == 0) {
        st->synthetic = true;
        return cli_parse_uint(CMD " run", name, v, 0, UINT64_MAX, &st->seed);
    } else if (strcmp(name, "--stream") == 0) {
        st->stream = true;
    } else if (strcmp(name, "--rope-trig") == 0) {
        if (fp4m_trig_parse(v, &st->trig)) return cli_lib_error(CMD " run");
    } else if (strcmp(name, "--trace") == 0) {
        st->trace_path = v;
    } else if (strcmp(name, "--logits") == 0) {
        st->logits_path = v;
    }
    return CLI_OK;
}

/* "1,2,3" -> malloc'ed ids. */
static int parse_ids(const char *text, int64_t **out, int64_t *n) {
    int64_t cap = 1;
    for (const char *p = text; *p; p++) cap += *p == ',';
    int64_t *ids = malloc((size_t)cap * sizeof *ids);
    if (!ids) return cli_fail(CMD " run: out of memory");
    int64_t k = 0;
    const char *p = text;
    for (;;) {
        char *end;
        errno = 0;
        if (*p < '0' || *p > '9') goto bad;
        unsigned long long v = strtoull(p, &end, 10);
        if (errno || end == p || v > INT64_MAX) goto bad;
        ids[k++] = (int64_t)v;
        if (*end == '\0') break;
        if (*end != ',') goto bad;
        p = end + 1;
    }
    *out = ids;
    *n = k;
    return CLI_OK;
bad:
    free(ids);
    return cli_usage_error(CMD " run: --prompt-ids: expected comma-separated token ids, got '%s'",
                           text);
}

typedef struct trace_ctx {
    fp4_st_writer *w;
    int64_t count;
    int failed;
} trace_ctx;

static int trace_cb(void *ctx, const fp4m_event *ev) {
    trace_ctx *t = ctx;
    const char *op = ev->op;
    /* The fixture's (transformers hook) names for three ops. */
    if (strcmp(op, "self_attn.probs") == 0) op = "self_attn.1";
    else if (strcmp(op, "mlp.gate.weights") == 0) op = "mlp.gate.1";
    else if (strcmp(op, "mlp.gate.indices") == 0) op = "mlp.gate.2";
    char name[160], step[32] = "";
    if (ev->pos0 > 0) snprintf(step, sizeof step, "@%" PRId64, ev->pos0);
    int k;
    if (ev->expert >= 0)
        k = snprintf(name, sizeof name, "layers.%" PRId64 ".mlp.experts.%" PRId64 ".out%s",
                     ev->layer, ev->expert, step);
    else if (ev->layer >= 0)
        k = snprintf(name, sizeof name, "layers.%" PRId64 ".%s%s", ev->layer, op, step);
    else
        k = snprintf(name, sizeof name, "%s%s", op, step);
    if (k < 0 || (size_t)k >= sizeof name) return t->failed = 1;
    fp4_st_dtype dt = ev->dtype == FP4M_DT_F64 ? FP4_ST_F64
                      : ev->dtype == FP4M_DT_F32 ? FP4_ST_F32
                                                 : FP4_ST_I64;
    int64_t numel = 1;
    for (int i = 0; i < ev->ndim; i++) numel *= ev->shape[i];
    int64_t nbytes = numel * (dt == FP4_ST_F32 ? 4 : 8);
    if (fp4_st_writer_add_copy(t->w, name, dt, ev->ndim, ev->shape, ev->data, nbytes) != FP4_ST_OK)
        return t->failed = 1;
    t->count++;
    if (ev->rows) { /* token rows of an expert's output rows */
        char rname[200];
        snprintf(rname, sizeof rname, "layers.%" PRId64 ".mlp.experts.%" PRId64 ".rows%s",
                 ev->layer, ev->expert, step);
        if (fp4_st_writer_add_copy(t->w, rname, FP4_ST_I64, 1, ev->shape, ev->rows,
                                   ev->shape[0] * 8) != FP4_ST_OK)
            return t->failed = 1;
        t->count++;
    }
    return 0;
}

static double logit_at(const void *logits, fp4m_prec p, int64_t i) {
    return p == FP4M_F64 ? ((const double *)logits)[i] : (double)((const float *)logits)[i];
}

/* Argmax with lowest id on ties (fp4m_generate_greedy's rule). */
static int64_t argmax(const void *row, fp4m_prec p, int64_t v) {
    int64_t best = 0;
    for (int64_t i = 1; i < v; i++)
        if (logit_at(row, p, i) > logit_at(row, p, best)) best = i;
    return best;
}

/* Top 5 ids by logit, descending, lowest id first on ties. */
static int top5(const void *row, fp4m_prec p, int64_t v, int64_t *ids) {
    int n = 0;
    for (int64_t i = 0; i < v; i++) {
        double x = logit_at(row, p, i);
        int at = n;
        while (at > 0 && logit_at(row, p, ids[at - 1]) < x) at--;
        if (at >= 5) continue;
        if (n < 5) n++;
        for (int k = n - 1; k > at; k--) ids[k] = ids[k - 1];
        ids[at] = i;
    }
    return n;
}

static int fmt_opt(const char *what, const char *v, fp4_format *f) {
    if (strcmp(v, "bf16") == 0) *f = FP4_FMT_BF16;
    else if (strcmp(v, "f32") == 0) *f = FP4_FMT_F32;
    else return cli_usage_error(CMD " run: %s: unknown format '%s' (valid: bf16, f32)", what, v);
    return CLI_OK;
}

/* --policy and its overrides -> a GEMM backend (NULL for "reference": the
 * default loops, as without --policy). */
static int make_policy(const run_state *st, fp4m_policy *p, fp4_engine **e,
                       fp4m_gemm_backend **b) {
    *b = NULL;
    *e = NULL;
    if (fp4m_policy_from_name(st->policy ? st->policy : "reference", p) != 0)
        return cli_lib_error(CMD " run: --policy");
    if (st->engine && fp4conf_engine_open(st->engine, e) != 0)
        return cli_lib_error(CMD " run: --engine");
    p->engine = *e;
    if (st->wrecipe) snprintf(p->weight_recipe, sizeof p->weight_recipe, "%s", st->wrecipe);
    if (st->arecipe) snprintf(p->act_recipe, sizeof p->act_recipe, "%s", st->arecipe);
    int rc = CLI_OK;
    if (st->act_in && (rc = fmt_opt("--act-in", st->act_in, &p->act_in)) != CLI_OK) return rc;
    if (st->out && (rc = fmt_opt("--out", st->out, &p->out)) != CLI_OK) return rc;
    bool quantized = false;
    for (int c = 0; c < FP4M_LC_COUNT; c++) quantized |= p->fmt[c] != FP4M_Q_NATIVE;
    if (!quantized && !st->engine && !st->wrecipe && !st->arecipe) return CLI_OK;
    if (fp4m_policy_backend_new(p, b) != 0) return cli_lib_error(CMD " run");
    return CLI_OK;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Opens the checkpoint, or the synthetic model of DIR's config. */
static int open_model(const run_state *st, const fp4m_opts *o, fp4m_model **m) {
    if (!st->synthetic) return fp4m_open(st->dir, o, m);
    fp4m_config c;
    if (fp4m_config_load(st->dir, &c) != 0) return -1;
    return fp4m_open_synthetic(&c, st->seed, o, m);
}

static int cmd_run(int argc, char **argv) {
    run_state st = {.prec = FP4M_F64};
    static const cli_opt opts[] = {
        {"--prompt-ids", true, run_opt}, {"--generate", true, run_opt},
        {"--precision", true, run_opt},  {"--options", true, run_opt},
        {"--policy", true, run_opt},     {"--trace", true, run_opt},
        {"--logits", true, run_opt},     {"--json", false, run_opt},
        {"--engine", true, run_opt},     {"--weight-recipe", true, run_opt},
        {"--act-recipe", true, run_opt}, {"--act-in", true, run_opt},
        {"--out", true, run_opt},        {"--synthetic", true, run_opt},
        {"--stream", false, run_opt},    {"--rope-trig", true, run_opt},
    };
    int rc = cli_parse(argc, argv, CMD " run", opts, sizeof opts / sizeof opts[0], &st,
                       run_positional);
    if (rc == CLI_HELP) return fputs(k_help, stdout), CLI_OK;
    if (rc != CLI_OK) return rc;
    if (!st.dir) return cli_usage_error(CMD " run: missing checkpoint DIR");
    if (!st.ids_text) return cli_usage_error(CMD " run: --prompt-ids is required");
    if (!path_exists(st.dir))
        return cli_usage_error(CMD " run: no such file or directory '%s'", st.dir);
    int64_t *prompt = NULL, n_prompt = 0;
    if ((rc = parse_ids(st.ids_text, &prompt, &n_prompt)) != CLI_OK) return rc;

    fp4m_opts o = st.transformers ? fp4m_opts_transformers(st.prec) : fp4m_opts_reference(st.prec);
    o.rope_trig = st.trig;
    o.all_resident = !(st.stream || st.synthetic);
#ifdef __GLIBC__
    /* Streaming frees each layer's weights and allocates the next layer's of
     * the same sizes. glibc would hand such large blocks back to the kernel
     * (mmap/munmap) and fault every page in again: the full-R1 run spent 40%
     * of its time in page faults. Keep them in the heap for reuse. */
    if (!o.all_resident) {
        mallopt(M_MMAP_MAX, 0);
        mallopt(M_TRIM_THRESHOLD, INT32_MAX);
    }
#endif
    fp4m_policy policy;
    fp4m_gemm_backend *backend = NULL;
    fp4_engine *engine = NULL;
    if ((rc = make_policy(&st, &policy, &engine, &backend)) != CLI_OK) {
        fp4_engine_close(engine);
        free(prompt);
        return rc;
    }
    /* Only a policy replaces the GEMM: without one, the options' own GEMM
     * (torch's blocked dgemm order for --options transformers) stays. */
    if (backend) o.gemm = backend;
    const double t0 = now_s();
    trace_ctx tc = {0};
    fp4m_model *m = NULL;
    int64_t *tokens = NULL;
    void *logits = NULL;
    fp4_st_writer *lw = NULL;
    if (st.trace_path) {
        if (fp4_st_writer_create(st.trace_path, &tc.w) != FP4_ST_OK) {
            rc = cli_lib_error(CMD " run: --trace");
            goto done;
        }
        o.trace = trace_cb;
        o.trace_ctx = &tc;
    }
    if (open_model(&st, &o, &m) != 0) {
        rc = cli_lib_error(CMD " run");
        goto done;
    }
    const int64_t V = fp4m_model_config(m)->vocab_size;
    for (int64_t i = 0; i < n_prompt; i++)
        if (prompt[i] >= V) {
            rc = cli_usage_error(CMD " run: --prompt-ids: id %" PRId64 " out of range (vocab %" PRId64
                                 ")",
                                 prompt[i], V);
            goto done;
        }
    const int64_t n_new = (int64_t)st.generate;
    /* Positions computed: the prompt, then every generated token but the last. */
    const int64_t npos = n_prompt + (n_new > 0 ? n_new - 1 : 0);
    const size_t es = st.prec == FP4M_F64 ? 8 : 4;
    tokens = malloc((size_t)(n_prompt + n_new) * sizeof *tokens);
    logits = malloc((size_t)npos * (size_t)V * es);
    if (!tokens || !logits) {
        rc = cli_fail(CMD " run: out of memory");
        goto done;
    }
    memcpy(tokens, prompt, (size_t)n_prompt * sizeof *tokens);
    /* As fp4m_generate_greedy: prefill in one call, then one token per call. */
    int64_t last = n_prompt - 1; /* row of logits of the last position computed */
    if (fp4m_forward(m, prompt, n_prompt, false, logits) != 0) goto fwd_fail;
    for (int64_t g = 0; g < n_new; g++) {
        tokens[n_prompt + g] = argmax((char *)logits + (size_t)last * (size_t)V * es, st.prec, V);
        if (g + 1 == n_new) break;
        last++;
        if (fp4m_forward(m, &tokens[n_prompt + g], 1, true,
                         (char *)logits + (size_t)last * (size_t)V * es) != 0)
            goto fwd_fail;
    }
    if (tc.w) {
        fp4_st_writer *w = tc.w;
        tc.w = NULL;
        if (tc.failed || fp4_st_writer_finish(w) != FP4_ST_OK) {
            if (tc.failed) fp4_st_writer_abort(w);
            rc = cli_lib_error(CMD " run: --trace");
            goto done;
        }
    }
    if (st.logits_path) {
        int64_t shp[2] = {npos, V}, tshape[1] = {n_prompt + n_new};
        if (fp4_st_writer_create(st.logits_path, &lw) != FP4_ST_OK ||
            fp4_st_writer_add(lw, "logits", st.prec == FP4M_F64 ? FP4_ST_F64 : FP4_ST_F32, 2, shp,
                              logits, npos * V * (int64_t)es) != FP4_ST_OK ||
            fp4_st_writer_add(lw, "tokens", FP4_ST_I64, 1, tshape, tokens,
                              (n_prompt + n_new) * 8) != FP4_ST_OK) {
            fp4_st_writer_abort(lw);
            lw = NULL;
            rc = cli_lib_error(CMD " run: --logits");
            goto done;
        }
        fp4_st_writer *w = lw;
        lw = NULL;
        if (fp4_st_writer_finish(w) != FP4_ST_OK) {
            rc = cli_lib_error(CMD " run: --logits");
            goto done;
        }
    }

    const double seconds = now_s() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    const double rss_mib = (double)ru.ru_maxrss / 1024.0, wpeak_mib = (double)fp4m_weight_bytes_peak(m) / 1048576.0;
    const void *row = (const char *)logits + (size_t)last * (size_t)V * es;
    int64_t best[5];
    int nb = top5(row, st.prec, V, best);
    const char *prec_name = st.prec == FP4M_F64 ? "f64" : "f32";
    const char *opt_name = st.transformers ? "transformers" : "reference";
    if (st.json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "precision", prec_name);
        cJSON_AddStringToObject(j, "options", opt_name);
        cJSON_AddStringToObject(j, "policy", policy.name);
        if (backend) cJSON_AddStringToObject(j, "engine", engine ? engine->name : "ref");
        if (st.synthetic) cJSON_AddNumberToObject(j, "synthetic_seed", (double)st.seed);
        cJSON_AddNumberToObject(j, "seconds", seconds);
        cJSON_AddNumberToObject(j, "weights_peak_mib", wpeak_mib);
        cJSON_AddNumberToObject(j, "max_rss_mib", rss_mib);
        cJSON *a = cJSON_AddArrayToObject(j, "prompt");
        for (int64_t i = 0; i < n_prompt; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber((double)prompt[i]));
        a = cJSON_AddArrayToObject(j, "generated");
        for (int64_t i = 0; i < n_new; i++)
            cJSON_AddItemToArray(a, cJSON_CreateNumber((double)tokens[n_prompt + i]));
        cJSON_AddNumberToObject(j, "position", (double)last);
        a = cJSON_AddArrayToObject(j, "top5");
        for (int k = 0; k < nb; k++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "id", (double)best[k]);
            cJSON_AddNumberToObject(e, "logit", logit_at(row, st.prec, best[k]));
            cJSON_AddItemToArray(a, e);
        }
        if (st.trace_path) cJSON_AddNumberToObject(j, "trace_tensors", (double)tc.count);
        rc = cli_json_print(j);
    } else {
        printf("model %s%s: precision %s, options %s, policy %s%s%s\n", st.dir,
               st.synthetic ? " (synthetic weights)" : "", prec_name, opt_name, policy.name,
               backend ? ", engine " : "", backend ? (engine ? engine->name : "ref") : "");
        printf("prompt (%" PRId64 "):", n_prompt);
        for (int64_t i = 0; i < n_prompt; i++) printf(" %" PRId64, prompt[i]);
        printf("\ngenerated (%" PRId64 "):", n_new);
        for (int64_t i = 0; i < n_new; i++) printf(" %" PRId64, tokens[n_prompt + i]);
        printf("\ntop-5 logits at position %" PRId64 ":\n", last);
        for (int k = 0; k < nb; k++)
            printf("  %8" PRId64 "  %.*g\n", best[k], st.prec == FP4M_F64 ? 17 : 9,
                   logit_at(row, st.prec, best[k]));
        if (st.trace_path)
            printf("trace: %" PRId64 " tensors -> %s\n", tc.count, st.trace_path);
        if (st.logits_path) printf("logits: [%" PRId64 ", %" PRId64 "] -> %s\n", npos, V, st.logits_path);
        printf("time %.2f s (open + forward), weights held at peak %.1f MiB, max RSS %.1f MiB\n",
               seconds, wpeak_mib, rss_mib);
        rc = CLI_OK;
    }
    goto done;
fwd_fail:
    rc = cli_lib_error(CMD " run");
done:
    fp4_st_writer_abort(tc.w);
    fp4_st_writer_abort(lw);
    fp4m_close(m);
    fp4m_policy_backend_free(backend);
    fp4_engine_close(engine);
    free(prompt);
    free(tokens);
    free(logits);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* synth: the library's synthetic checkpoint writer (model/synth_write.c)    */
/* ------------------------------------------------------------------------ */

typedef struct synth_state {
    const char *config, *out;
    fp4m_synth_write_opts o;
} synth_state;

static int synth_opt(void *s, const char *name, const char *v) {
    synth_state *st = s;
    if (strcmp(name, "--config") == 0) st->config = v;
    else if (strcmp(name, "--out") == 0) st->out = v;
    else if (strcmp(name, "--seed") == 0)
        return cli_parse_uint(CMD " synth", name, v, 0, UINT64_MAX, &st->o.seed);
    else if (strcmp(name, "--dtype") == 0) {
        if (fp4m_synth_dtype_from_name(v, &st->o.dtype)) return cli_lib_error(CMD " synth: --dtype");
    } else if (strcmp(name, "--input-amax") == 0) {
        char *end;
        errno = 0;
        st->o.input_amax = strtod(v, &end);
        /* The bounds keep both producers' scales (A/2688, 2688/A) normal FP32 and BF16. */
        if (errno || end == v || *end || !(st->o.input_amax >= 1e-6) || st->o.input_amax > 1e30)
            return cli_usage_error(CMD " synth: --input-amax: expected a number in [1e-6, 1e30], "
                                   "got '%s'",
                                   v);
    }
    return CLI_OK;
}

static int cmd_synth(int argc, char **argv) {
    synth_state st = {.o = fp4m_synth_write_opts_default()};
    static const cli_opt opts[] = {{"--config", true, synth_opt},
                                   {"--out", true, synth_opt},
                                   {"--seed", true, synth_opt},
                                   {"--dtype", true, synth_opt},
                                   {"--input-amax", true, synth_opt}};
    int rc = cli_parse(argc, argv, CMD " synth", opts, sizeof opts / sizeof opts[0], &st, NULL);
    if (rc == CLI_HELP) return fputs(k_help, stdout), CLI_OK;
    if (rc != CLI_OK) return rc;
    if (!st.config) return cli_usage_error(CMD " synth: --config is required");
    if (!st.out) return cli_usage_error(CMD " synth: --out is required");
    if (!path_exists(st.config))
        return cli_usage_error(CMD " synth: no such file or directory '%s'", st.config);
    int64_t n = 0;
    if (fp4m_synth_write(st.config, st.out, &st.o, &n) != 0) return cli_lib_error(CMD " synth");
    printf("wrote %s/model.safetensors: %" PRId64 " tensors (%s, seed %" PRIu64 ") + config.json%s\n",
           st.out, n, fp4m_synth_dtype_name(st.o.dtype), st.o.seed,
           st.o.dtype == FP4M_SD_NVFP4_MO ? " + hf_quant_config.json" : "");
    return CLI_OK;
}

/* ------------------------------------------------------------------------ */
/* rope                                                                      */
/* ------------------------------------------------------------------------ */

typedef struct rope_state {
    const char *path;
    uint64_t positions, start;
    fp4m_trig trig;
} rope_state;

static int rope_positional(void *s, const char *arg) {
    rope_state *st = s;
    if (st->path) return cli_usage_error(CMD " rope: unexpected argument '%s'", arg);
    st->path = arg;
    return CLI_OK;
}

static int rope_opt(void *s, const char *name, const char *v) {
    rope_state *st = s;
    if (strcmp(name, "--positions") == 0)
        return cli_parse_uint(CMD " rope", name, v, 1, 1u << 24, &st->positions);
    if (strcmp(name, "--start") == 0) return cli_parse_uint(CMD " rope", name, v, 0, 1u << 30, &st->start);
    if (fp4m_trig_parse(v, &st->trig)) return cli_lib_error(CMD " rope");
    return CLI_OK;
}

static int cmd_rope(int argc, char **argv) {
    rope_state st = {.positions = 64};
    static const cli_opt opts[] = {
        {"--positions", true, rope_opt}, {"--start", true, rope_opt}, {"--rope-trig", true, rope_opt}};
    int rc = cli_parse(argc, argv, CMD " rope", opts, sizeof opts / sizeof opts[0], &st,
                       rope_positional);
    if (rc == CLI_HELP) return fputs(k_help, stdout), CLI_OK;
    if (rc != CLI_OK) return rc;
    if (!st.path) return cli_usage_error(CMD " rope: missing DIR or config.json");
    fp4m_config c;
    if (fp4m_config_load(st.path, &c) != 0) return cli_lib_error(CMD " rope");
    fp4m_opts o = fp4m_opts_transformers(FP4M_F64);
    o.rope_trig = st.trig;
    const int64_t half = c.qk_rope_head_dim / 2, n = (int64_t)st.positions, m = n * half;
    float *buf = malloc((size_t)(3 * m) * sizeof(float));
    if (!buf) return cli_fail(CMD " rope: out of memory");
    if (fp4m_rope_table_f32(&c, &o, (int64_t)st.start, n, buf, buf + m, buf + 2 * m) != 0) {
        free(buf);
        return cli_lib_error(CMD " rope");
    }
    printf("# fp4sim model rope: transformers' float32 RoPE table, cos/sin source '%s'\n",
           fp4m_trig_name(st.trig));
    printf("# pos i angle_bits cos_bits sin_bits angle cos sin\n");
    for (int64_t k = 0; k < m; k++)
        printf("%lld %lld 0x%08x 0x%08x 0x%08x %.9g %.9g %.9g\n", (long long)(st.start + k / half),
               (long long)(k % half), fp4_f32_bits(buf[k]), fp4_f32_bits(buf[m + k]),
               fp4_f32_bits(buf[2 * m + k]), buf[k], buf[m + k], buf[2 * m + k]);
    free(buf);
    return CLI_OK;
}

/* ------------------------------------------------------------------------ */

int cli_cmd_model(int argc, char **argv) {
    if (argc < 2)
        return cli_usage_error(CMD ": missing subcommand (valid: info, run, synth, rope, --help)");
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        fputs(k_help, stdout);
        return CLI_OK;
    }
    if (strcmp(sub, "info") == 0) return cmd_info(argc - 1, argv + 1);
    if (strcmp(sub, "run") == 0) return cmd_run(argc - 1, argv + 1);
    if (strcmp(sub, "synth") == 0) return cmd_synth(argc - 1, argv + 1);
    if (strcmp(sub, "rope") == 0) return cmd_rope(argc - 1, argv + 1);
    return cli_usage_error(CMD ": unknown subcommand '%s' (valid: info, run, synth, rope, --help)",
                           sub);
}
