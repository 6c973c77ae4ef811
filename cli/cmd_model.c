/* cmd_model.c - `fp4sim model`: the DeepSeek-V3 / R1 forward of model/
 * from the command line.
 *
 *   model info DIR|config.json [--json]   layers, parameters, bytes per layer
 *                                         and storage kind (fp4m_count_*)
 *   model run DIR --prompt-ids ...        forward + greedy generation, top-5
 *                                         logits, optional trace / logits files
 *   model synth --config C --out DIR      small random checkpoint (Philox)
 *
 * synth weights: tensor t of the checkpoint (index in the fixed order of
 * synth_tensors below: embed_tokens, then per layer input_layernorm,
 * post_attention_layernorm, attention (q_a_proj, q_a_layernorm, q_b_proj or
 * q_proj, kv_a_proj_with_mqa, kv_a_layernorm, kv_b_proj, o_proj), then the
 * dense mlp gate/up/down or mlp.gate.weight, e_score_correction_bias, each
 * routed expert's gate/up/down, the shared experts' gate/up/down; then
 * model.norm, lm_head unless tied), element i (row-major) is
 * philox4x32({i lo, i hi, t, 0}, {seed lo, seed hi}).v[0..1] taken as a
 * 64-bit word x, u = (x >> 11) * 2^-53 in [0, 1), r = (2u - 1) * sqrt(3)
 * (uniform, mean 0, variance 1; no libm transcendental, so bit-identical on
 * every machine), then scaled: linear weights r / sqrt(in) (variance 1/in),
 * the embedding r, norm weights 1 + 0.2 r, e_score_correction_bias r;
 * computed in double, rounded to nearest-even into F32 (then BF16). Any
 * tensor can be regenerated alone from (seed, t, i). */
#include "args.h"
#include "commands.h"
#include "fp4io.h"
#include "fp4model.h"
#include "render.h"

#include <Random123/philox.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char k_help[] =
    "usage: fp4sim model info DIR|config.json [--json]\n"
    "       fp4sim model run DIR --prompt-ids ID[,ID...] [options]\n"
    "       fp4sim model synth --config CONFIG.json --out DIR [--seed S] [--dtype f32|bf16]\n"
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
    "  --policy P             GEMM policy: reference only (quantized backends: later)\n"
    "  --trace OUT            every traced intermediate as a safetensors file\n"
    "                         (fixture names, 'layers.L.OP'; decode steps get\n"
    "                         '@POS' appended)\n"
    "  --logits OUT           logits of every position computed, [positions, vocab],\n"
    "                         plus 'tokens' (I64), as safetensors\n"
    "  --json                 JSON output\n"
    "\n"
    "synth: random checkpoint (model.safetensors + config.json) for a config of\n"
    "  at most 2e9 parameters; weights from Philox-4x32 (counter = tensor index,\n"
    "  element index; key = seed): uniform with linear weights of variance 1/in,\n"
    "  norm weights 1 +- 0.35, e_score_correction_bias of variance 1.\n"
    "  --seed S (default 0), --dtype f32 (default) or bf16.\n";

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
        return cli_usage_error(CMD " info: %s", fp4_last_error());
    if (!st.json) {
        fp4m_print_info(&c, stdout);
        return CLI_OK;
    }
    cJSON *o = cJSON_CreateObject();
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
        if (strcmp(v, "reference") != 0)
            return cli_usage_error(CMD " run: unknown policy '%s' (valid: reference; quantized "
                                   "GEMM policies are not implemented yet)",
                                   v);
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

static int cmd_run(int argc, char **argv) {
    run_state st = {.prec = FP4M_F64};
    static const cli_opt opts[] = {
        {"--prompt-ids", true, run_opt}, {"--generate", true, run_opt},
        {"--precision", true, run_opt},  {"--options", true, run_opt},
        {"--policy", true, run_opt},     {"--trace", true, run_opt},
        {"--logits", true, run_opt},     {"--json", false, run_opt},
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
    trace_ctx tc = {0};
    fp4m_model *m = NULL;
    int64_t *tokens = NULL;
    void *logits = NULL;
    fp4_st_writer *lw = NULL;
    if (st.trace_path) {
        if (fp4_st_writer_create(st.trace_path, &tc.w) != FP4_ST_OK) {
            rc = cli_usage_error(CMD " run: --trace: %s", fp4_last_error());
            goto done;
        }
        o.trace = trace_cb;
        o.trace_ctx = &tc;
    }
    if (fp4m_open(st.dir, &o, &m) != 0) {
        rc = cli_usage_error(CMD " run: %s", fp4_last_error());
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
            rc = cli_fail(CMD " run: --trace: %s", fp4_last_error());
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
            rc = cli_usage_error(CMD " run: --logits: %s", fp4_last_error());
            goto done;
        }
        fp4_st_writer *w = lw;
        lw = NULL;
        if (fp4_st_writer_finish(w) != FP4_ST_OK) {
            rc = cli_usage_error(CMD " run: --logits: %s", fp4_last_error());
            goto done;
        }
    }

    const void *row = (const char *)logits + (size_t)last * (size_t)V * es;
    int64_t best[5];
    int nb = top5(row, st.prec, V, best);
    const char *prec_name = st.prec == FP4M_F64 ? "f64" : "f32";
    const char *opt_name = st.transformers ? "transformers" : "reference";
    if (st.json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "precision", prec_name);
        cJSON_AddStringToObject(j, "options", opt_name);
        cJSON_AddStringToObject(j, "policy", "reference");
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
        printf("model %s: precision %s, options %s, policy reference\n", st.dir, prec_name,
               opt_name);
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
        rc = CLI_OK;
    }
    goto done;
fwd_fail:
    rc = cli_fail(CMD " run: %s", fp4_last_error());
done:
    fp4_st_writer_abort(tc.w);
    fp4_st_writer_abort(lw);
    fp4m_close(m);
    free(prompt);
    free(tokens);
    free(logits);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* synth                                                                     */
/* ------------------------------------------------------------------------ */

enum { SYN_LINEAR = 0, SYN_NORM, SYN_EMBED, SYN_BIAS };

typedef struct syn_tensor {
    char name[128];
    int kind;
    int64_t out, in; /* in = 0: vector */
} syn_tensor;

typedef struct syn_list {
    syn_tensor *t;
    int64_t n, cap;
} syn_list;

static int syn_add(syn_list *l, int kind, int64_t out, int64_t in, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int syn_add(syn_list *l, int kind, int64_t out, int64_t in, const char *fmt, ...) {
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
    t->kind = kind;
    t->out = out;
    t->in = in;
    return 0;
}

static int syn_mlp(syn_list *l, int64_t H, int64_t inter, const char *p) {
    return syn_add(l, SYN_LINEAR, inter, H, "%s.gate_proj.weight", p) ||
                   syn_add(l, SYN_LINEAR, inter, H, "%s.up_proj.weight", p) ||
                   syn_add(l, SYN_LINEAR, H, inter, "%s.down_proj.weight", p)
               ? -1
               : 0;
}

/* Every tensor the loader expects, in the documented order (file header). */
static int synth_tensors(const fp4m_config *c, syn_list *l) {
    const int64_t H = c->hidden_size, nh = c->num_attention_heads;
    const int64_t dqk = c->qk_nope_head_dim + c->qk_rope_head_dim;
    if (syn_add(l, SYN_EMBED, c->vocab_size, H, "model.embed_tokens.weight")) return -1;
    for (int64_t i = 0; i < c->num_hidden_layers; i++) {
        char p[64], q[128];
        snprintf(p, sizeof p, "model.layers.%" PRId64, i);
        if (syn_add(l, SYN_NORM, H, 0, "%s.input_layernorm.weight", p) ||
            syn_add(l, SYN_NORM, H, 0, "%s.post_attention_layernorm.weight", p))
            return -1;
        if (c->q_lora_rank > 0) {
            if (syn_add(l, SYN_LINEAR, c->q_lora_rank, H, "%s.self_attn.q_a_proj.weight", p) ||
                syn_add(l, SYN_NORM, c->q_lora_rank, 0, "%s.self_attn.q_a_layernorm.weight", p) ||
                syn_add(l, SYN_LINEAR, nh * dqk, c->q_lora_rank, "%s.self_attn.q_b_proj.weight", p))
                return -1;
        } else if (syn_add(l, SYN_LINEAR, nh * dqk, H, "%s.self_attn.q_proj.weight", p)) {
            return -1;
        }
        if (syn_add(l, SYN_LINEAR, c->kv_lora_rank + c->qk_rope_head_dim, H,
                    "%s.self_attn.kv_a_proj_with_mqa.weight", p) ||
            syn_add(l, SYN_NORM, c->kv_lora_rank, 0, "%s.self_attn.kv_a_layernorm.weight", p) ||
            syn_add(l, SYN_LINEAR, nh * (c->qk_nope_head_dim + c->v_head_dim), c->kv_lora_rank,
                    "%s.self_attn.kv_b_proj.weight", p) ||
            syn_add(l, SYN_LINEAR, H, nh * c->v_head_dim, "%s.self_attn.o_proj.weight", p))
            return -1;
        if (!fp4m_layer_is_moe(c, i)) {
            snprintf(q, sizeof q, "%s.mlp", p);
            if (syn_mlp(l, H, c->intermediate_size, q)) return -1;
            continue;
        }
        if (syn_add(l, SYN_LINEAR, c->n_routed_experts, H, "%s.mlp.gate.weight", p) ||
            syn_add(l, SYN_BIAS, c->n_routed_experts, 0, "%s.mlp.gate.e_score_correction_bias", p))
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
    if (syn_add(l, SYN_NORM, H, 0, "model.norm.weight")) return -1;
    if (!c->tie_word_embeddings && syn_add(l, SYN_LINEAR, c->vocab_size, H, "lm_head.weight"))
        return -1;
    return 0;
}

/* Element i of tensor t (see the file header). */
static double synth_value(uint64_t seed, uint32_t t, uint64_t i, int kind, int64_t in) {
    philox4x32_key_t key = {{(uint32_t)seed, (uint32_t)(seed >> 32)}};
    philox4x32_ctr_t ctr = {{(uint32_t)i, (uint32_t)(i >> 32), t, 0}};
    philox4x32_ctr_t r = philox4x32(ctr, key);
    uint64_t x = (uint64_t)r.v[0] | (uint64_t)r.v[1] << 32;
    double u = (double)(x >> 11) * 0x1p-53;
    double v = (2.0 * u - 1.0) * sqrt(3.0);
    switch (kind) {
    case SYN_LINEAR: return v / sqrt((double)in);
    case SYN_NORM: return 1.0 + 0.2 * v;
    default: return v; /* embedding, bias */
    }
}

static uint16_t syn_bf16(float f) {
    uint32_t b;
    memcpy(&b, &f, 4);
    b += 0x7FFFu + ((b >> 16) & 1u); /* round to nearest even; values are finite */
    return (uint16_t)(b >> 16);
}

typedef struct synth_state {
    const char *config, *out;
    uint64_t seed;
    bool bf16;
} synth_state;

static int synth_opt(void *s, const char *name, const char *v) {
    synth_state *st = s;
    if (strcmp(name, "--config") == 0) st->config = v;
    else if (strcmp(name, "--out") == 0) st->out = v;
    else if (strcmp(name, "--seed") == 0)
        return cli_parse_uint(CMD " synth", name, v, 0, UINT64_MAX, &st->seed);
    else if (strcmp(name, "--dtype") == 0) {
        if (strcmp(v, "f32") == 0) st->bf16 = false;
        else if (strcmp(v, "bf16") == 0) st->bf16 = true;
        else return cli_usage_error(CMD " synth: unknown dtype '%s' (valid: f32, bf16)", v);
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

static int cmd_synth(int argc, char **argv) {
    synth_state st = {0};
    static const cli_opt opts[] = {{"--config", true, synth_opt},
                                   {"--out", true, synth_opt},
                                   {"--seed", true, synth_opt},
                                   {"--dtype", true, synth_opt}};
    int rc = cli_parse(argc, argv, CMD " synth", opts, 4, &st, NULL);
    if (rc == CLI_HELP) return fputs(k_help, stdout), CLI_OK;
    if (rc != CLI_OK) return rc;
    if (!st.config) return cli_usage_error(CMD " synth: --config is required");
    if (!st.out) return cli_usage_error(CMD " synth: --out is required");
    if (!path_exists(st.config))
        return cli_usage_error(CMD " synth: no such file or directory '%s'", st.config);
    fp4m_config c;
    if (fp4m_config_load(st.config, &c) != 0)
        return cli_usage_error(CMD " synth: %s", fp4_last_error());
    fp4m_counts total, active;
    fp4m_count_model(&c, &total, &active);
    if (total.params > 2000000000LL)
        return cli_usage_error(CMD " synth: config has %" PRId64 " parameters, more than the "
                               "2e9 synth writes",
                               total.params);
    struct stat sb;
    bool is_dir = stat(st.config, &sb) == 0 && S_ISDIR(sb.st_mode);
    char *cfg_path = NULL;
    if (is_dir) {
        size_t k = strlen(st.config) + 16;
        cfg_path = malloc(k);
        if (cfg_path) snprintf(cfg_path, k, "%s/config.json", st.config);
    }
    size_t cfg_len = 0;
    char *cfg_text = slurp(is_dir ? cfg_path : st.config, &cfg_len);
    free(cfg_path);
    if (!cfg_text) return cli_usage_error(CMD " synth: cannot read the config '%s'", st.config);
    if (mkdir(st.out, 0777) != 0 && errno != EEXIST) {
        free(cfg_text);
        return cli_usage_error(CMD " synth: cannot create '%s': %s", st.out, strerror(errno));
    }
    size_t plen = strlen(st.out) + 32;
    char *path = malloc(plen);
    syn_list l = {0};
    void **bufs = NULL;
    fp4_st_writer *w = NULL;
    rc = CLI_OK;
    if (!path || synth_tensors(&c, &l) != 0 || !(bufs = calloc((size_t)l.n, sizeof *bufs))) {
        rc = cli_fail(CMD " synth: out of memory");
        goto done;
    }
    snprintf(path, plen, "%s/config.json", st.out);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(cfg_text, 1, cfg_len, f) != cfg_len || fclose(f) != 0) {
        rc = cli_usage_error(CMD " synth: cannot write '%s'", path);
        goto done;
    }
    snprintf(path, plen, "%s/model.safetensors", st.out);
    if (fp4_st_writer_create(path, &w) != FP4_ST_OK ||
        fp4_st_writer_set_metadata(w, "format", "pt") != FP4_ST_OK) {
        rc = cli_usage_error(CMD " synth: %s", fp4_last_error());
        goto done;
    }
    for (int64_t t = 0; t < l.n; t++) {
        const syn_tensor *s = &l.t[t];
        int64_t numel = s->out * (s->in > 0 ? s->in : 1);
        size_t es = st.bf16 ? 2 : 4;
        bufs[t] = malloc((size_t)numel * es);
        if (!bufs[t]) {
            rc = cli_fail(CMD " synth: out of memory");
            goto done;
        }
        for (int64_t i = 0; i < numel; i++) {
            float v = (float)synth_value(st.seed, (uint32_t)t, (uint64_t)i, s->kind, s->in);
            if (st.bf16) ((uint16_t *)bufs[t])[i] = syn_bf16(v);
            else ((float *)bufs[t])[i] = v;
        }
        int64_t shape[2] = {s->out, s->in};
        if (fp4_st_writer_add(w, s->name, st.bf16 ? FP4_ST_BF16 : FP4_ST_F32, s->in > 0 ? 2 : 1,
                              shape, bufs[t], numel * (int64_t)es) != FP4_ST_OK) {
            rc = cli_fail(CMD " synth: %s", fp4_last_error());
            goto done;
        }
    }
    fp4_st_writer *ww = w;
    w = NULL;
    if (fp4_st_writer_finish(ww) != FP4_ST_OK) {
        rc = cli_usage_error(CMD " synth: %s", fp4_last_error());
        goto done;
    }
    printf("wrote %s: %" PRId64 " tensors, %" PRId64 " parameters (%s, seed %" PRIu64 ") + config.json\n",
           path, l.n, total.params, st.bf16 ? "BF16" : "F32", st.seed);
done:
    fp4_st_writer_abort(w);
    if (bufs)
        for (int64_t t = 0; t < l.n; t++) free(bufs[t]);
    free(bufs);
    free(l.t);
    free(path);
    free(cfg_text);
    return rc;
}

/* ------------------------------------------------------------------------ */

int cli_cmd_model(int argc, char **argv) {
    if (argc < 2)
        return cli_usage_error(CMD ": missing subcommand (valid: info, run, synth, --help)");
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        fputs(k_help, stdout);
        return CLI_OK;
    }
    if (strcmp(sub, "info") == 0) return cmd_info(argc - 1, argv + 1);
    if (strcmp(sub, "run") == 0) return cmd_run(argc - 1, argv + 1);
    if (strcmp(sub, "synth") == 0) return cmd_synth(argc - 1, argv + 1);
    return cli_usage_error(CMD ": unknown subcommand '%s' (valid: info, run, synth, --help)", sub);
}
