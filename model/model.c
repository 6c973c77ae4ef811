/* model.c - options, opening a checkpoint, the KV cache, the precision
 * dispatch and greedy generation. The forward itself: forward_impl.h. */
#include "model_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ds §7: the reference path computes everything in its own precision. */
fp4m_opts fp4m_opts_reference(fp4m_prec prec) {
    fp4m_opts o;
    memset(&o, 0, sizeof o);
    o.prec = prec;
    o.norm_prec = FP4M_ISLAND_NATIVE;
    o.norm_order = FP4M_NORM_ROUND_THEN_WEIGHT;
    o.router_prec = FP4M_ISLAND_NATIVE;
    o.softmax_prec = FP4M_ISLAND_NATIVE;
    o.rope_prec = FP4M_ROPE_F64;
    o.moe_order = FP4M_MOE_EXPERT_ORDER;
    o.group_mask = FP4M_MASK_NEG_INF;
    o.attn_form = FP4M_ATTN_NAIVE;
    o.torch_order = false;
    o.all_resident = true;
    return o;
}

/* transformers 5.17 (modeling_deepseek_v3.py, eager attention and experts)
 * running the model in `prec`: RMSNorm, router and softmax in float32 even
 * in a float64 model, fp32 RoPE tables, -inf group mask, expert-order
 * combine, torch's CPU reduction orders and float64 GEMM blocking (ds §6,
 * §9). */
fp4m_opts fp4m_opts_transformers(fp4m_prec prec) {
    fp4m_opts o = fp4m_opts_reference(prec);
    o.norm_prec = FP4M_ISLAND_F32;
    o.router_prec = FP4M_ISLAND_F32;
    o.softmax_prec = FP4M_ISLAND_F32;
    o.rope_prec = FP4M_ROPE_F32;
    o.torch_order = true;
    /* torch's float64 GEMM blocks K by 256 (backend.c); the float32 sgemm's
     * blocking is not established, so the FP32 path keeps one chain. */
    if (prec == FP4M_F64) o.gemm = fp4m_gemm_torch();
    return o;
}

const fp4m_config *fp4m_model_config(const fp4m_model *m) { return &m->cfg; }
const fp4m_opts *fp4m_model_opts(const fp4m_model *m) { return &m->opts; }
int64_t fp4m_cache_len(const fp4m_model *m) { return m->cache_len; }
int64_t fp4m_weight_bytes_peak(const fp4m_model *m) { return m->bytes_peak; }
int64_t fp4m_weight_bytes_now(const fp4m_model *m) { return m->bytes_now; }
void fp4m_reset(fp4m_model *m) { m->cache_len = 0; }

void fp4m_set_trace(fp4m_model *m, fp4m_trace_fn fn, void *ctx) {
    m->opts.trace = fn;
    m->opts.trace_ctx = ctx;
}

/* Row sizes per form: naive K [heads, nope + rope], V [heads, v]; absorbed
 * latent [kv_lora] and rotated k_pe [rope] (ds §2.4). */
static void cache_rows(const fp4m_model *m, int64_t *k_row, int64_t *v_row) {
    const fp4m_config *c = &m->cfg;
    if (m->opts.attn_form == FP4M_ATTN_ABSORB) {
        *k_row = c->kv_lora_rank;
        *v_row = c->qk_rope_head_dim;
        return;
    }
    *k_row = c->num_attention_heads * (c->qk_nope_head_dim + c->qk_rope_head_dim);
    *v_row = c->num_attention_heads * c->v_head_dim;
}

int fp4m_cache_reserve(fp4m_model *m, int64_t need) {
    if (need <= m->cache_cap) return 0;
    int64_t cap = m->cache_cap * 2 > need ? m->cache_cap * 2 : need;
    if (cap < 16) cap = 16;
    for (int64_t l = 0; l < m->cfg.num_hidden_layers; l++) {
        m_cache *C = &m->cache[l];
        cache_rows(m, &C->k_row, &C->v_row);
        void *k = realloc(C->k, (size_t)(cap * C->k_row * m->esize));
        if (k) C->k = k;
        void *v = k ? realloc(C->v, (size_t)(cap * C->v_row * m->esize)) : NULL;
        if (v) C->v = v;
        if (!k || !v) return fp4_fail("model: out of memory for a KV cache of %" PRId64 " tokens", cap);
    }
    m->cache_cap = cap;
    return 0;
}

void fp4m_close(fp4m_model *m) {
    if (!m) return;
    fp4m_weights_free(m);
    if (m->cache)
        for (int64_t l = 0; l < m->cfg.num_hidden_layers; l++) {
            free(m->cache[l].k);
            free(m->cache[l].v);
        }
    free(m->cache);
    free(m->inv_freq_f64);
    fp4_st_ckpt_close(m->ck);
    free(m);
}

int fp4m_open_config(const fp4m_config *cfg, const char *ckpt_path, const fp4m_opts *opts,
                     fp4m_model **out) {
    if (!ckpt_path) return fp4_fail("model: null checkpoint path");
    return fp4m_open_impl(cfg, ckpt_path, 0, opts, out);
}

int fp4m_open_impl(const fp4m_config *cfg, const char *ckpt_path, uint64_t seed,
                   const fp4m_opts *opts, fp4m_model **out) {
    if (!cfg || !opts || !out) return fp4_fail("model: null argument");
    *out = NULL;
    fp4m_model *m = calloc(1, sizeof *m);
    if (!m) return fp4_fail("model: out of memory");
    m->cfg = *cfg;
    m->opts = *opts;
    m->esize = opts->prec == FP4M_F64 ? (int64_t)sizeof(double) : (int64_t)sizeof(float);
    m->cache = calloc((size_t)cfg->num_hidden_layers, sizeof(m_cache));
    if (!m->cache) {
        fp4m_close(m);
        return fp4_fail("model: out of memory");
    }
    m->synth_seed = seed;
    if (ckpt_path && fp4_st_ckpt_open(ckpt_path, &m->ck) != FP4_ST_OK) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s", fp4_last_error());
        fp4m_close(m);
        return fp4_fail("model: cannot open checkpoint: %s", msg);
    }
    if (fp4m_rope_init(m) || fp4m_weights_init(m)) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s", fp4_last_error());
        fp4m_close(m);
        return fp4_fail("%s", msg);
    }
    *out = m;
    return 0;
}

int fp4m_open(const char *path, const fp4m_opts *opts, fp4m_model **out) {
    fp4m_config cfg;
    if (!path) return fp4_fail("model: null path");
    if (fp4m_config_load(path, &cfg)) return -1;
    return fp4m_open_config(&cfg, path, opts, out);
}

int fp4m_forward(fp4m_model *m, const int64_t *tokens, int64_t n, bool last_only, void *logits) {
    if (!m || !tokens || n < 1) return fp4_fail("model: forward needs a model and >= 1 token");
    if (m->opts.prec == FP4M_F64) return fp4m_forward_f64(m, tokens, n, last_only, logits);
    return fp4m_forward_f32(m, tokens, n, last_only, logits);
}

/* argmax, lowest id on ties. */
static int64_t argmax(const fp4m_model *m, const void *logits) {
    int64_t best = 0;
    for (int64_t v = 1; v < m->cfg.vocab_size; v++) {
        double a = m->opts.prec == FP4M_F64 ? ((const double *)logits)[v] : ((const float *)logits)[v];
        double b = m->opts.prec == FP4M_F64 ? ((const double *)logits)[best]
                                            : ((const float *)logits)[best];
        if (a > b) best = v;
    }
    return best;
}

/* As transformers' generate: prefill the prompt in one forward, then one
 * token per forward; the last token chosen is not run. */
int fp4m_generate_greedy(fp4m_model *m, const int64_t *prompt, int64_t n_prompt, int64_t n_new,
                         int64_t *out) {
    if (!m || !prompt || !out || n_prompt < 1 || n_new < 0)
        return fp4_fail("model: generate needs a prompt of >= 1 token");
    void *logits = malloc((size_t)(m->cfg.vocab_size * m->esize));
    if (!logits) return fp4_fail("model: out of memory");
    memcpy(out, prompt, (size_t)n_prompt * sizeof(int64_t));
    fp4m_reset(m);
    int rc = n_new > 0 ? fp4m_forward(m, prompt, n_prompt, true, logits) : 0;
    for (int64_t i = 0; rc == 0 && i < n_new; i++) {
        out[n_prompt + i] = argmax(m, logits);
        if (i + 1 < n_new) rc = fp4m_forward(m, out + n_prompt + i, 1, true, logits);
    }
    free(logits);
    return rc;
}
