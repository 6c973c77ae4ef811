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
/* synth                                                                     */
/* ------------------------------------------------------------------------ */

/* How synth stores the checkpoint (docs/model.md "Quantized checkpoints"). */
typedef enum syn_dtype {
    SD_F32 = 0, SD_BF16, SD_F16, SD_FP8, SD_NVFP4_MO, SD_NVFP4_CT, SD_COUNT
} syn_dtype;
static const char *const k_syn_dtypes[SD_COUNT] = {"f32", "bf16", "f16", "fp8",
                                                   "nvfp4-modelopt", "nvfp4-ct"};
#define SYN_DTYPE_LIST "f32, bf16, f16, fp8, nvfp4-modelopt, nvfp4-ct"
/* Activation amax behind input_scale / input_global_scale when no
 * --input-amax is given: synth has no calibration data. About 3x the
 * largest GEMM input measured on synthetic models (docs/cli.md). */
#define SYN_INPUT_AMAX 32.0

typedef struct syn_tensor {
    char name[128];
    int64_t out, in; /* in = 0: vector */
} syn_tensor;

typedef struct syn_list {
    syn_tensor *t;
    int64_t n, cap;
} syn_list;

static int syn_add(syn_list *l, int64_t out, int64_t in, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int syn_add(syn_list *l, int64_t out, int64_t in, const char *fmt, ...) {
    if (l->n == l->cap) {
        int64_t cap = l->cap ? 2 * l->cap : 64;
        syn_tensor *t = realloc(l->t, (size_t)cap * sizeof *t);
        if (!t) return -1;
        l->t = t;
        l->cap = cap;
    }
    syn_tensor *t = &l->t[l->n++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    t->out = out;
    t->in = in;
    return 0;
}

static int syn_mlp(syn_list *l, int64_t H, int64_t inter, const char *p) {
    return syn_add(l, inter, H, "%s.gate_proj.weight", p) ||
                   syn_add(l, inter, H, "%s.up_proj.weight", p) ||
                   syn_add(l, H, inter, "%s.down_proj.weight", p)
               ? -1
               : 0;
}

/* Every tensor the loader expects (ds §3), MTP layers left out. */
static int synth_tensors(const fp4m_config *c, syn_list *l) {
    const int64_t H = c->hidden_size, nh = c->num_attention_heads;
    const int64_t dqk = c->qk_nope_head_dim + c->qk_rope_head_dim;
    if (syn_add(l, c->vocab_size, H, "model.embed_tokens.weight")) return -1;
    for (int64_t i = 0; i < c->num_hidden_layers; i++) {
        char p[64], q[128];
        snprintf(p, sizeof p, "model.layers.%" PRId64, i);
        if (syn_add(l, H, 0, "%s.input_layernorm.weight", p) ||
            syn_add(l, H, 0, "%s.post_attention_layernorm.weight", p))
            return -1;
        if (c->q_lora_rank > 0) {
            if (syn_add(l, c->q_lora_rank, H, "%s.self_attn.q_a_proj.weight", p) ||
                syn_add(l, c->q_lora_rank, 0, "%s.self_attn.q_a_layernorm.weight", p) ||
                syn_add(l, nh * dqk, c->q_lora_rank, "%s.self_attn.q_b_proj.weight", p))
                return -1;
        } else if (syn_add(l, nh * dqk, H, "%s.self_attn.q_proj.weight", p)) {
            return -1;
        }
        if (syn_add(l, c->kv_lora_rank + c->qk_rope_head_dim, H,
                    "%s.self_attn.kv_a_proj_with_mqa.weight", p) ||
            syn_add(l, c->kv_lora_rank, 0, "%s.self_attn.kv_a_layernorm.weight", p) ||
            syn_add(l, nh * (c->qk_nope_head_dim + c->v_head_dim), c->kv_lora_rank,
                    "%s.self_attn.kv_b_proj.weight", p) ||
            syn_add(l, H, nh * c->v_head_dim, "%s.self_attn.o_proj.weight", p))
            return -1;
        if (!fp4m_layer_is_moe(c, i)) {
            snprintf(q, sizeof q, "%s.mlp", p);
            if (syn_mlp(l, H, c->intermediate_size, q)) return -1;
            continue;
        }
        if (syn_add(l, c->n_routed_experts, H, "%s.mlp.gate.weight", p) ||
            syn_add(l, c->n_routed_experts, 0, "%s.mlp.gate.e_score_correction_bias", p))
            return -1;
        for (int64_t e = 0; e < c->n_routed_experts; e++) {
            snprintf(q, sizeof q, "%s.mlp.experts.%" PRId64, p, e);
            if (syn_mlp(l, H, c->moe_intermediate_size, q)) return -1;
        }
        if (c->n_shared_experts > 0) {
            snprintf(q, sizeof q, "%s.mlp.shared_experts", p);
            if (syn_mlp(l, H, c->moe_intermediate_size * c->n_shared_experts, q)) return -1;
        }
    }
    if (syn_add(l, H, 0, "model.norm.weight")) return -1;
    if (!c->tie_word_embeddings && syn_add(l, c->vocab_size, H, "lm_head.weight")) return -1;
    return 0;
}

static bool syn_ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Whether dtype d stores s quantized. fp8: every attention, MLP and expert
 * linear (the original R1, ds §3); nvfp4-modelopt: the MLP and expert
 * linears only (R1 NVFP4 v1, recipes.md §0 item 8, §7.1); nvfp4-ct: every
 * linear but the router and lm_head (what the ignore list written says).
 * Never the embedding, norms, router or lm_head. */
static bool syn_quantized(syn_dtype d, const syn_tensor *s) {
    if (d < SD_FP8 || s->in == 0 || fp4m_synth_kind_of(s->name) != FP4M_SYN_LINEAR ||
        syn_ends_with(s->name, ".mlp.gate.weight") || strcmp(s->name, "lm_head.weight") == 0)
        return false;
    return d != SD_NVFP4_MO || (strstr(s->name, ".mlp.") && syn_ends_with(s->name, "_proj.weight"));
}

/* Tensors a quantized format keeps unquantized: BF16 as in the R1
 * checkpoints, e_score_correction_bias F32 (ds §3). */
static fp4_st_dtype syn_plain_dtype(syn_dtype d, const char *name) {
    if (d == SD_F32) return FP4_ST_F32;
    if (d == SD_BF16) return FP4_ST_BF16;
    if (d == SD_F16) return FP4_ST_F16;
    return syn_ends_with(name, "e_score_correction_bias") ? FP4_ST_F32 : FP4_ST_BF16;
}

typedef struct syn_ctx {
    syn_dtype dtype;
    uint64_t seed;
    const fp4_qrecipe *recipe; /* NVFP4 dtypes: modelopt / compressed-tensors */
    float input_amax;          /* bf16(--input-amax) */
    float input_global;        /* input_scale or input_global_scale */
    fp4_st_writer *w;
} syn_ctx;

/* The values of s: fp4m_synth_rows, the same FP32 numbers a synthetic model
 * (fp4m_open_synthetic) computes with. malloc'ed. */
static float *syn_values(const syn_ctx *x, const char *name, int64_t out, int64_t in) {
    int64_t cols = in > 0 ? in : 1;
    float *v = malloc((size_t)(out * cols) * sizeof *v);
    if (v) fp4m_synth_rows(x->seed, name, cols, 0, out, v);
    return v;
}

/* FP32 -> BF16 or F16 codes, round to nearest even (values are finite and
 * far inside both ranges). malloc'ed. */
static uint16_t *syn_to_16(const float *v, int64_t n, bool f16) {
    fp4_cvt_opts o = fp4_cvt_opts_default();
    uint16_t *h = malloc((size_t)n * sizeof *h);
    for (int64_t i = 0; h && i < n; i++)
        h[i] = f16 ? f32_to_f16(v[i], &o, NULL, NULL) : f32_to_bf16(v[i], &o, NULL, NULL);
    return h;
}

static int syn_put(syn_ctx *x, const char *name, fp4_st_dtype dt, int32_t ndim, int64_t d0,
                   int64_t d1, const void *data, int64_t nbytes) {
    int64_t shape[2] = {d0, d1};
    if (fp4_st_writer_add_copy(x->w, name, dt, ndim, shape, data, nbytes) != FP4_ST_OK)
        return cli_lib_error(CMD " synth");
    return CLI_OK;
}

static int syn_write_plain(syn_ctx *x, const syn_tensor *s, const float *v) {
    const fp4_st_dtype dt = syn_plain_dtype(x->dtype, s->name);
    const int64_t n = s->out * (s->in > 0 ? s->in : 1);
    const int32_t ndim = s->in > 0 ? 2 : 1;
    if (dt == FP4_ST_F32) return syn_put(x, s->name, dt, ndim, s->out, s->in, v, 4 * n);
    uint16_t *h = syn_to_16(v, n, dt == FP4_ST_F16);
    if (!h) return cli_fail(CMD " synth: out of memory");
    int rc = syn_put(x, s->name, dt, ndim, s->out, s->in, h, 2 * n);
    free(h);
    return rc;
}

/* DeepSeek FP8 blocks (recipes.md §2.13, §7.3; ds §2.3): per 128 x 128 tile
 * s = amax / 448 in FP32 (1 for an all-zero tile), code = e4m3(x / s) RNE,
 * s stored as weight_scale_inv (w = e4m3 * s). DeepSeek publishes no weight
 * quantizer; this is act_quant's rule of inference/kernel.py on weight
 * tiles, the same rule the fp8-block policy applies to weights stored
 * unquantized (model/backend_quant.c). */
static int syn_write_fp8(syn_ctx *x, const syn_tensor *s, const float *v) {
    const int64_t R = s->out, C = s->in, br = (R + 127) / 128, bc = (C + 127) / 128;
    uint8_t *codes = malloc((size_t)(R * C));
    float *sinv = malloc((size_t)(br * bc) * sizeof *sinv);
    fp4_cvt_opts o = fp4_cvt_opts_default();
    if (!codes || !sinv) {
        free(codes);
        free(sinv);
        return cli_fail(CMD " synth: out of memory");
    }
    for (int64_t b = 0; b < br * bc; b++) {
        const int64_t r0 = (b / bc) * 128, c0 = (b % bc) * 128;
        float amax = 0;
        for (int64_t r = r0; r < R && r < r0 + 128; r++)
            for (int64_t c = c0; c < C && c < c0 + 128; c++) amax = fmaxf(amax, fabsf(v[r * C + c]));
        sinv[b] = amax > 0 ? amax / 448.0f : 1.0f;
        for (int64_t r = r0; r < R && r < r0 + 128; r++)
            for (int64_t c = c0; c < C && c < c0 + 128; c++)
                codes[r * C + c] = f32_to_e4m3(v[r * C + c] / sinv[b], &o, NULL, NULL);
    }
    char name[160];
    snprintf(name, sizeof name, "%s_scale_inv", s->name);
    int rc = syn_put(x, s->name, FP4_ST_F8_E4M3, 2, R, C, codes, R * C);
    if (rc == CLI_OK) rc = syn_put(x, name, FP4_ST_F32, 2, br, bc, sinv, 4 * br * bc);
    free(codes);
    free(sinv);
    return rc;
}

static float syn_amax16(const uint16_t *bf, int64_t n) {
    float a = 0;
    for (int64_t i = 0; i < n; i++) a = fmaxf(a, fabsf(bf16_to_f32(bf[i])));
    return a;
}

/* ModelOpt's weight amax of s: gate_proj and up_proj of one MLP share
 * max(amax_gate, amax_up) (preprocess_linear_fusion, recipes.md §2.3), so
 * they get one weight_scale_2; the sibling's values are regenerated. */
static int syn_modelopt_amax(const syn_ctx *x, const syn_tensor *s, const uint16_t *bf,
                             float *amax) {
    *amax = syn_amax16(bf, s->out * s->in);
    const bool gate = syn_ends_with(s->name, "gate_proj.weight");
    if (!gate && !syn_ends_with(s->name, "up_proj.weight")) return CLI_OK;
    char sib[160];
    size_t stem = strlen(s->name) - strlen(gate ? "gate_proj.weight" : "up_proj.weight");
    snprintf(sib, sizeof sib, "%.*s%s", (int)stem, s->name, gate ? "up_proj.weight" : "gate_proj.weight");
    float *v = syn_values(x, sib, s->out, s->in);
    uint16_t *h = v ? syn_to_16(v, s->out * s->in, false) : NULL;
    if (h) *amax = fmaxf(*amax, syn_amax16(h, s->out * s->in));
    free(v);
    free(h);
    return h ? CLI_OK : cli_fail(CMD " synth: out of memory");
}

/* NVFP4 with the producer's recipe (fp4_quantize) from the BF16-rounded
 * values, as ModelOpt quantized R1's BF16 weights and llm-compressor a BF16
 * model. ModelOpt: X.weight, X.weight_scale, X.weight_scale_2 and
 * X.input_scale (0-d F32, recipes.md §7.1); compressed-tensors:
 * X.weight_packed, X.weight_scale, X.weight_global_scale and
 * X.input_global_scale ([1] F32, §7.2). */
static int syn_write_nvfp4(syn_ctx *x, const syn_tensor *s, const float *v) {
    const bool mo = x->dtype == SD_NVFP4_MO;
    if (s->in % 16)
        return cli_usage_error(CMD " synth: tensor '%s': in = %" PRId64 " is not a multiple of 16, "
                               "the NVFP4 block size",
                               s->name, s->in);
    uint16_t *bf = syn_to_16(v, s->out * s->in, false);
    if (!bf) return cli_fail(CMD " synth: out of memory");
    fp4_qopts o = fp4_qopts_default();
    fp4_qtensor q;
    int rc = CLI_OK;
    if (mo) {
        o.global_source = FP4_QGS_AMAX;
        rc = syn_modelopt_amax(x, s, bf, &o.amax);
    }
    if (rc == CLI_OK && fp4_quantize(x->recipe, FP4_FMT_BF16, bf, s->out, s->in, &o, &q) != 0)
        rc = cli_lib_error(CMD " synth: '%s'", s->name);
    free(bf);
    if (rc != CLI_OK) return rc;
    char stem[160], n1[192], n2[192], n3[192], n4[192];
    snprintf(stem, sizeof stem, "%.*s", (int)(strlen(s->name) - strlen(".weight")), s->name);
    snprintf(n1, sizeof n1, "%s.%s", stem, mo ? "weight" : "weight_packed");
    snprintf(n2, sizeof n2, "%s.weight_scale", stem);
    snprintf(n3, sizeof n3, "%s.%s", stem, mo ? "weight_scale_2" : "weight_global_scale");
    snprintf(n4, sizeof n4, "%s.%s", stem, mo ? "input_scale" : "input_global_scale");
    const int32_t gdim = mo ? 0 : 1;
    rc = syn_put(x, n1, FP4_ST_U8, 2, s->out, s->in / 2, q.codes, (int64_t)q.codes_bytes);
    if (rc == CLI_OK)
        rc = syn_put(x, n2, FP4_ST_F8_E4M3, 2, s->out, s->in / 16, q.scales, (int64_t)q.scales_bytes);
    if (rc == CLI_OK) rc = syn_put(x, n3, FP4_ST_F32, gdim, 1, 0, &q.global_stored, 4);
    if (rc == CLI_OK) rc = syn_put(x, n4, FP4_ST_F32, gdim, 1, 0, &x->input_global, 4);
    fp4_qtensor_free(&q);
    return rc;
}

/* input_scale (ModelOpt, decode: fp32(A) / 2688 as torch computes it,
 * recipes.md §2.1) or input_global_scale (compressed-tensors, encode: 2688 /
 * A in BF16, §2.8) from the activation amax A, taken as the BF16 number an
 * observer of BF16 activations reports: the recipe's own global scale of a
 * one-block tensor whose amax is A. */
static int syn_input_global(syn_ctx *x) {
    uint16_t blk[16] = {0};
    fp4_cvt_opts co = fp4_cvt_opts_default();
    blk[0] = f32_to_bf16(x->input_amax, &co, NULL, NULL);
    x->input_amax = bf16_to_f32(blk[0]);
    fp4_qopts o = fp4_qopts_default();
    o.global_source = FP4_QGS_AMAX;
    o.amax = x->input_amax;
    fp4_qtensor q;
    if (fp4_quantize(x->recipe, FP4_FMT_BF16, blk, 1, 16, &o, &q) != 0)
        return cli_lib_error(CMD " synth: input scale");
    x->input_global = q.global_stored;
    fp4_qtensor_free(&q);
    return CLI_OK;
}

static int syn_write_one(syn_ctx *x, const syn_tensor *s) {
    float *v = syn_values(x, s->name, s->out, s->in);
    if (!v) return cli_fail(CMD " synth: out of memory");
    int rc;
    if (!syn_quantized(x->dtype, s)) rc = syn_write_plain(x, s, v);
    else if (x->dtype == SD_FP8) rc = syn_write_fp8(x, s, v);
    else rc = syn_write_nvfp4(x, s, v);
    free(v);
    return rc;
}

/* config.json's quantization_config for fp8 (R1's own, recipes.md §7.3) and
 * nvfp4-ct (llm-compressor's NVFP4 scheme, §2.8: W4A4, weights static,
 * activations dynamic "local" block scales with a calibrated global). */
static cJSON *syn_quant_config(syn_dtype d) {
    cJSON *q = cJSON_CreateObject();
    if (d == SD_FP8) {
        cJSON_AddStringToObject(q, "activation_scheme", "dynamic");
        cJSON_AddStringToObject(q, "fmt", "e4m3");
        cJSON_AddStringToObject(q, "quant_method", "fp8");
        int bs[2] = {128, 128};
        cJSON_AddItemToObject(q, "weight_block_size", cJSON_CreateIntArray(bs, 2));
        return q;
    }
    cJSON_AddStringToObject(q, "quant_method", "compressed-tensors");
    cJSON_AddStringToObject(q, "format", "nvfp4-pack-quantized");
    cJSON_AddStringToObject(q, "quantization_status", "compressed");
    cJSON *g = cJSON_AddObjectToObject(cJSON_AddObjectToObject(q, "config_groups"), "group_0");
    const char *targets[1] = {"Linear"};
    cJSON_AddItemToObject(g, "targets", cJSON_CreateStringArray(targets, 1));
    cJSON_AddStringToObject(g, "format", "nvfp4-pack-quantized");
    for (int k = 0; k < 2; k++) {
        cJSON *a = cJSON_AddObjectToObject(g, k ? "input_activations" : "weights");
        cJSON_AddNumberToObject(a, "num_bits", 4);
        cJSON_AddStringToObject(a, "type", "float");
        cJSON_AddStringToObject(a, "strategy", "tensor_group");
        cJSON_AddNumberToObject(a, "group_size", 16);
        cJSON_AddBoolToObject(a, "symmetric", true);
        if (k) cJSON_AddStringToObject(a, "dynamic", "local");
        else cJSON_AddBoolToObject(a, "dynamic", false);
    }
    const char *ignore[2] = {"lm_head", "re:.*mlp\\.gate$"};
    cJSON_AddItemToObject(q, "ignore", cJSON_CreateStringArray(ignore, 2));
    cJSON_AddNullToObject(q, "kv_cache_scheme");
    return q;
}

/* ModelOpt's hf_quant_config.json (recipes.md §7.1): exclude_modules is a
 * wildcard summary of every module with an unquantized weight. */
static char *syn_hf_quant_config(void) {
    cJSON *o = cJSON_CreateObject(), *p = cJSON_AddObjectToObject(o, "producer");
    cJSON_AddStringToObject(p, "name", "fp4sim");
    cJSON_AddStringToObject(p, "version", "synth (modelopt recipe)");
    cJSON *q = cJSON_AddObjectToObject(o, "quantization");
    cJSON_AddStringToObject(q, "quant_algo", "NVFP4");
    cJSON_AddNullToObject(q, "kv_cache_quant_algo");
    cJSON_AddNumberToObject(q, "group_size", 16);
    const char *ex[7] = {"lm_head", "model.embed_tokens", "model.norm",
                         "model.layers.*.input_layernorm", "model.layers.*.post_attention_layernorm",
                         "model.layers.*.self_attn*", "model.layers.*.mlp.gate"};
    cJSON_AddItemToObject(q, "exclude_modules", cJSON_CreateStringArray(ex, 7));
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    return text;
}

typedef struct synth_state {
    const char *config, *out;
    uint64_t seed;
    syn_dtype dtype;
    double input_amax;
} synth_state;

static int synth_opt(void *s, const char *name, const char *v) {
    synth_state *st = s;
    if (strcmp(name, "--config") == 0) st->config = v;
    else if (strcmp(name, "--out") == 0) st->out = v;
    else if (strcmp(name, "--seed") == 0)
        return cli_parse_uint(CMD " synth", name, v, 0, UINT64_MAX, &st->seed);
    else if (strcmp(name, "--dtype") == 0) {
        for (int d = 0; d < SD_COUNT; d++)
            if (strcmp(v, k_syn_dtypes[d]) == 0) return st->dtype = (syn_dtype)d, CLI_OK;
        return cli_usage_error(CMD " synth: unknown dtype '%s' (valid: " SYN_DTYPE_LIST ")", v);
    } else if (strcmp(name, "--input-amax") == 0) {
        char *end;
        errno = 0;
        st->input_amax = strtod(v, &end);
        /* The bounds keep both producers' scales (A/2688, 2688/A) normal FP32 and BF16. */
        if (errno || end == v || *end || !(st->input_amax >= 1e-6) || st->input_amax > 1e30)
            return cli_usage_error(CMD " synth: --input-amax: expected a number in [1e-6, 1e30], "
                                   "got '%s'",
                                   v);
    }
    return CLI_OK;
}

/* Reads a whole file (malloc'ed, NUL-terminated). */
static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (cap - n < 4096) {
            char *b = realloc(buf, cap = cap * 2 + 8192);
            if (!b) break;
            buf = b;
        }
        size_t k = fread(buf + n, 1, cap - n - 1, f);
        n += k;
        if (k == 0) break;
    }
    bool bad = ferror(f) != 0;
    fclose(f);
    if (bad || !buf) return free(buf), NULL;
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int syn_write_text(const char *dir, const char *name, const char *text) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    size_t n = strlen(text);
    if (!f || fwrite(text, 1, n, f) != n || fclose(f) != 0)
        return cli_usage_error(CMD " synth: cannot write '%s'", path);
    return CLI_OK;
}

/* config.json as given for unquantized dtypes; for quantized ones with the
 * quantization_config replaced (fp8, nvfp4-ct) or removed (nvfp4-modelopt,
 * as ModelOpt's DeepSeek script does, recipes.md §7.1) and
 * hf_quant_config.json beside it, which is removed otherwise so that a
 * directory written twice never keeps a stale one. */
static int syn_write_configs(const synth_state *st, const char *cfg_text) {
    char hf[4096];
    snprintf(hf, sizeof hf, "%s/hf_quant_config.json", st->out);
    if (st->dtype != SD_NVFP4_MO && remove(hf) != 0 && errno != ENOENT)
        return cli_usage_error(CMD " synth: cannot remove '%s': %s", hf, strerror(errno));
    if (st->dtype < SD_FP8) return syn_write_text(st->out, "config.json", cfg_text);
    cJSON *root = cJSON_Parse(cfg_text);
    if (!root) return cli_usage_error(CMD " synth: the config is not JSON");
    cJSON_DeleteItemFromObjectCaseSensitive(root, "quantization_config");
    if (st->dtype != SD_NVFP4_MO) cJSON_AddItemToObject(root, "quantization_config", syn_quant_config(st->dtype));
    char *text = cJSON_Print(root), *hq = st->dtype == SD_NVFP4_MO ? syn_hf_quant_config() : NULL;
    cJSON_Delete(root);
    int rc = !text || (st->dtype == SD_NVFP4_MO && !hq) ? cli_fail(CMD " synth: out of memory")
                                                        : syn_write_text(st->out, "config.json", text);
    if (rc == CLI_OK && hq) rc = syn_write_text(st->out, "hf_quant_config.json", hq);
    free(text);
    free(hq);
    return rc;
}

/* __metadata__: what synth did, so a checkpoint says how it was made. */
static int syn_metadata(const synth_state *st, const syn_ctx *x) {
    char seed[32], amax[32];
    snprintf(seed, sizeof seed, "%" PRIu64, st->seed);
    snprintf(amax, sizeof amax, "%.9g", (double)x->input_amax);
    const char *recipe = st->dtype == SD_FP8 ? "fp8-block (amax/448 per 128x128 tile)"
                         : x->recipe        ? x->recipe->name
                                            : "none";
    fp4_st_writer *w = x->w;
    if (fp4_st_writer_set_metadata(w, "format", "pt") != FP4_ST_OK ||
        fp4_st_writer_set_metadata(w, "fp4sim.synth.seed", seed) != FP4_ST_OK ||
        fp4_st_writer_set_metadata(w, "fp4sim.synth.dtype", k_syn_dtypes[st->dtype]) != FP4_ST_OK ||
        fp4_st_writer_set_metadata(w, "fp4sim.synth.recipe", recipe) != FP4_ST_OK ||
        (x->recipe && fp4_st_writer_set_metadata(w, "fp4sim.synth.input_amax", amax) != FP4_ST_OK))
        return cli_lib_error(CMD " synth");
    return CLI_OK;
}

/* The config text and model.safetensors of synth. */
static int syn_write_model(const synth_state *st, const fp4m_config *c, syn_ctx *x) {
    syn_list l = {0};
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", st->out);
    int rc = synth_tensors(c, &l) != 0 ? cli_fail(CMD " synth: out of memory") : CLI_OK;
    if (rc == CLI_OK && x->recipe) rc = syn_input_global(x);
    if (rc == CLI_OK && fp4_st_writer_create(path, &x->w) != FP4_ST_OK)
        rc = cli_lib_error(CMD " synth");
    if (rc == CLI_OK) rc = syn_metadata(st, x);
    for (int64_t t = 0; rc == CLI_OK && t < l.n; t++) rc = syn_write_one(x, &l.t[t]);
    fp4_st_writer *w = x->w;
    x->w = NULL;
    if (rc != CLI_OK) fp4_st_writer_abort(w);
    else if (fp4_st_writer_finish(w) != FP4_ST_OK) rc = cli_lib_error(CMD " synth");
    if (rc == CLI_OK)
        printf("wrote %s: %" PRId64 " tensors (%s, seed %" PRIu64 ") + config.json%s\n", path, l.n,
               k_syn_dtypes[st->dtype], st->seed,
               st->dtype == SD_NVFP4_MO ? " + hf_quant_config.json" : "");
    free(l.t);
    return rc;
}

static int cmd_synth(int argc, char **argv) {
    synth_state st = {.input_amax = SYN_INPUT_AMAX};
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
    fp4m_config c;
    if (fp4m_config_load(st.config, &c) != 0)
        return cli_lib_error(CMD " synth");
    fp4m_counts total, active;
    fp4m_count_model(&c, &total, &active);
    if (total.params > 2000000000LL)
        return cli_usage_error(CMD " synth: config has %" PRId64 " parameters, more than the "
                               "2e9 synth writes",
                               total.params);
    struct stat sb;
    bool is_dir = stat(st.config, &sb) == 0 && S_ISDIR(sb.st_mode);
    char cfg_path[4096];
    snprintf(cfg_path, sizeof cfg_path, is_dir ? "%s/config.json" : "%s", st.config);
    size_t cfg_len = 0;
    char *cfg_text = slurp(cfg_path, &cfg_len);
    if (!cfg_text) return cli_usage_error(CMD " synth: cannot read the config '%s'", st.config);
    syn_ctx x = {.dtype = st.dtype, .seed = st.seed, .input_amax = (float)st.input_amax};
    if ((st.dtype == SD_NVFP4_MO || st.dtype == SD_NVFP4_CT) &&
        fp4_qrecipe_from_name(st.dtype == SD_NVFP4_MO ? "modelopt" : "compressed-tensors",
                              &x.recipe) != 0)
        rc = cli_lib_error(CMD " synth");
    else if (mkdir(st.out, 0777) != 0 && errno != EEXIST)
        rc = cli_usage_error(CMD " synth: cannot create '%s': %s", st.out, strerror(errno));
    else
        rc = syn_write_configs(&st, cfg_text);
    if (rc == CLI_OK) rc = syn_write_model(&st, &c, &x);
    free(cfg_text);
    return rc;
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
