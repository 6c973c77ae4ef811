/* fp4model.h - DeepSeek-V3 / R1 forward pass for fp4sim (the model/ component).
 *
 * A forward you can read top to bottom (model/forward_impl.h): embedding,
 * per layer RMSNorm -> MLA attention -> residual -> RMSNorm -> dense SwiGLU
 * MLP or MoE (sigmoid router, group-limited top-k, shared expert) ->
 * residual, final RMSNorm, lm_head. Two precision paths, FP64 and FP32, are
 * one source compiled twice. Every named intermediate goes to an optional
 * trace callback so a run can be compared op by op with a reference (and
 * driven from it: the callback may overwrite the tensor it is shown).
 *
 * Semantics follow the decisions of docs/reference/deepseek.md §0 (cited as
 * "ds §n" in the sources); where the official code and transformers differ
 * the choice is an option in fp4m_opts (see docs/model.md for the table).
 *
 * Conventions as fp4ref.h: explicit widths, int64_t sizes; functions that
 * can fail return 0 or -1 with fp4_last_error() set (fp4_fail), naming the
 * tensor or config key at fault. Weight matrices are [out, in] row-major
 * (y = x W^T), activations [tokens, features] row-major.
 */
#ifndef FP4MODEL_H
#define FP4MODEL_H

#include "fp4ref.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------
 * Configuration (HF config.json, both layouts; ds §1)
 * ------------------------------------------------------------------------- */

typedef enum fp4m_rope_kind {
    FP4M_ROPE_DEFAULT = 0, /* plain RoPE (no rope_scaling) */
    FP4M_ROPE_YARN,        /* rope_scaling / rope_parameters type "yarn" */
} fp4m_rope_kind;

typedef struct fp4m_config {
    int64_t vocab_size, hidden_size, intermediate_size, moe_intermediate_size;
    int64_t num_hidden_layers, num_attention_heads, num_key_value_heads;
    int64_t q_lora_rank; /* 0: no query compression (single q_proj, ds §8) */
    int64_t kv_lora_rank, qk_nope_head_dim, qk_rope_head_dim, v_head_dim;
    int64_t n_routed_experts, n_shared_experts, num_experts_per_tok;
    int64_t n_group, topk_group, first_k_dense_replace, moe_layer_freq;
    bool norm_topk_prob;
    double routed_scaling_factor;
    double rms_norm_eps;
    /* RoPE + YaRN (ds §2.5). mscale / mscale_all_dim: 0 when absent, which
     * changes transformers' cos/sin factor and softmax scale (ds §0 row 10). */
    fp4m_rope_kind rope_kind;
    double rope_theta, rope_factor;
    int64_t original_max_position_embeddings;
    double beta_fast, beta_slow, mscale, mscale_all_dim;
    double attention_factor; /* explicit "attention_factor", 0 when absent */
    bool rope_truncate;      /* floor/ceil of the correction range (default true) */
    bool rope_interleave;    /* informational: our RoPE is always interleaved (ds §0 row 1) */
    int64_t max_position_embeddings;
    int64_t num_nextn_predict_layers; /* MTP layers: never loaded (ds §2.9) */
    bool tie_word_embeddings;
    int64_t fp8_block[2]; /* quantization_config.weight_block_size; 0 if none */
    char dtype[16];       /* "torch_dtype" (R1 layout) or "dtype" (v5 layout) */
    char layout[8];       /* "r1" (rope_scaling / rope_theta) or "v5" (rope_parameters) */
} fp4m_config;

/* Parses config.json text. Rejects what this forward cannot run (hidden_act
 * other than silu, scoring_func other than sigmoid, topk_method other than
 * noaux_tc, rope type other than yarn/default, num_key_value_heads !=
 * num_attention_heads) and inconsistent sizes, naming the key. */
int fp4m_config_parse(const char *json, fp4m_config *out);
/* Reads a config.json file, or `dir`/config.json when `path` is a directory. */
int fp4m_config_load(const char *path, fp4m_config *out);
/* Layer `l` uses MoE (HF: l >= first_k_dense_replace; V2's moe_layer_freq kept). */
bool fp4m_layer_is_moe(const fp4m_config *c, int64_t l);

/* Derived constants, all in double from the config (ds §0 row 3, §2.5). */
double fp4m_softmax_scale(const fp4m_config *c); /* R1: 0.1352337789 */
double fp4m_rope_cos_factor(const fp4m_config *c); /* transformers' attention_factor */

/* RoPE inverse frequencies f_i, i < qk_rope_head_dim/2, after YaRN (ds §2.5)
 * as this forward uses them: FP4M_ROPE_F64 in double, FP4M_ROPE_F32 by
 * transformers' float32 formulas (widened). Also the YaRN ramp ends. */
typedef enum fp4m_rope_prec {
    FP4M_ROPE_F64 = 0, /* inv_freq, angles pos*inv_freq and cos/sin in double (ds §7.2) */
    FP4M_ROPE_F32,     /* inv_freq by transformers' fp32 YaRN formulas, fp32
                          angles and cos/sin (ds §0 row 7; official also uses
                          fp32 angles, with its own fp32 inv_freq formula) */
} fp4m_rope_prec;
void fp4m_rope_frequencies(const fp4m_config *c, fp4m_rope_prec p, double *out);
void fp4m_yarn_range(const fp4m_config *c, double *low, double *high);

/* Parameter and byte accounting for `fp4sim model info`. Storage kinds:
 * F64/F32/BF16: every parameter at that width. FP8: the R1 checkpoint as
 * stored (linear weights e4m3 + f32 scale_inv per 128x128 tile, the rest
 * bf16, e_score_correction_bias f32). NVFP4: every linear weight but the
 * router as E2M1 + one E4M3 scale per 16 + one f32 per tensor, the rest as
 * in FP8's non-linear part. */
enum { FP4M_STORE_F64 = 0, FP4M_STORE_F32, FP4M_STORE_BF16, FP4M_STORE_FP8, FP4M_STORE_NVFP4,
       FP4M_STORE_COUNT };
typedef struct fp4m_counts {
    int64_t params;
    int64_t bytes[FP4M_STORE_COUNT];
} fp4m_counts;
typedef struct fp4m_layer_counts {
    fp4m_counts attn;    /* 5 (or 4) linear weights of MLA */
    fp4m_counts norms;   /* input/post-attention/q_a/kv_a RMSNorm weights */
    fp4m_counts mlp;     /* dense layers: gate/up/down */
    fp4m_counts router;  /* MoE: gate.weight + e_score_correction_bias */
    fp4m_counts expert;  /* MoE: ONE routed expert */
    fp4m_counts shared;  /* MoE: the shared expert(s) */
    fp4m_counts total;   /* the whole layer, all routed experts included */
    fp4m_counts active;  /* what one token touches (top-k experts) */
} fp4m_layer_counts;
void fp4m_count_layer(const fp4m_config *c, int64_t l, fp4m_layer_counts *out);
/* Embedding + lm_head + final norm (lm_head counted once if tied). */
void fp4m_count_outer(const fp4m_config *c, fp4m_counts *out);
void fp4m_count_model(const fp4m_config *c, fp4m_counts *total, fp4m_counts *active);
/* Human-readable summary: config, per-layer parameters and bytes per
 * storage kind (consecutive identical layers grouped), totals. */
void fp4m_print_info(const fp4m_config *c, FILE *f);

/* ---------------------------------------------------------------------------
 * GEMM backend: every linear layer of the forward (attention projections,
 * MLPs, experts, lm_head; not the router, see docs/model.md) calls it, so an
 * NVFP4 oracle, an emu preset or a GPU kernel can replace the plain loops.
 * ------------------------------------------------------------------------- */

typedef struct fp4m_linear_desc {
    const char *name; /* checkpoint tensor, e.g. "model.layers.3.mlp.experts.7.up_proj.weight" */
    int64_t layer;    /* -1 for lm_head */
    int64_t expert;   /* routed expert id, -1 otherwise */
    int64_t out, in;  /* N, K */
} fp4m_linear_desc;

typedef struct fp4m_gemm_backend {
    const char *name;
    void *ctx;
    /* y[m, n] = sum_k x[m, k] * w[n, k] for m rows; row-major. Must compute
     * each output row from its own input row only (the forward relies on it
     * for incremental decode == full forward). 0 or -1 with fp4_fail. */
    int (*gemm_f64)(void *ctx, const fp4m_linear_desc *d, int64_t m, const double *x,
                    const double *w, double *y);
    int (*gemm_f32)(void *ctx, const fp4m_linear_desc *d, int64_t m, const float *x,
                    const float *w, float *y);
} fp4m_gemm_backend;

/* Plain loops, OpenMP over output elements: each output is one sequential
 * fused multiply-add chain over k in the path precision, acc = fma(x, w,
 * acc), as BLAS micro-kernels compute it (bit-identical to torch's CPU
 * sgemm/dgemm on the fixture). Independent of thread count and CPU. */
const fp4m_gemm_backend *fp4m_gemm_default(void);

/* ---------------------------------------------------------------------------
 * Trace / hook API
 * ------------------------------------------------------------------------- */

typedef enum fp4m_dtype { FP4M_DT_F64 = 0, FP4M_DT_F32, FP4M_DT_I64 } fp4m_dtype;

/* Op names (layer = -1 for the first and last three):
 *   "embed"                       [n, H]
 *   "input_layernorm"             [n, H]
 *   "self_attn.q_a_layernorm"     [n, q_lora_rank]   (absent when q_lora_rank = 0)
 *   "self_attn.kv_a_layernorm"    [n, kv_lora_rank]
 *   "self_attn.probs"             [heads, n, pos0 + n]  softmax output, 0 where masked
 *   "self_attn"                   [n, H]  attention block output (after o_proj)
 *   "post_attention_layernorm"    [n, H]
 *   "mlp.gate"                    [n, E]  router logits (before the sigmoid)
 *   "mlp.gate.indices"            [n, k]  I64, by descending selection score
 *   "mlp.gate.weights"            [n, k]  combine weights, same slot order
 *   "mlp.experts.out"             [m, H]  one routed expert's output before
 *                                         weighting; expert = id, rows[i] =
 *                                         token row of output row i
 *   "mlp.routed"                  [n, H]  weighted sum of the routed experts
 *   "mlp.shared_experts"          [n, H]
 *   "mlp"                         [n, H]  MLP / MoE block output
 *   "out"                         [n, H]  layer output (residual stream)
 *   "final_norm"                  [n, H]
 *   "logits"                      [n, V]  (rows computed: all, or the last)
 * Float tensors have the path's precision (FP4M_DT_F64 / FP4M_DT_F32). */
typedef struct fp4m_event {
    int64_t layer;
    const char *op;
    fp4m_dtype dtype;
    /* The live buffer. The callback may overwrite it (same shape): the
     * forward continues from what it finds there, which gives teacher
     * forcing op by op. */
    void *data;
    int32_t ndim;
    int64_t shape[4];
    int64_t pos0;        /* position of row 0 (tokens already in the KV cache) */
    int64_t expert;      /* "mlp.experts.out" only; else -1 */
    const int64_t *rows; /* "mlp.experts.out" only; else NULL */
} fp4m_event;

/* Return 0 to continue; nonzero aborts the forward with an error. */
typedef int (*fp4m_trace_fn)(void *ctx, const fp4m_event *ev);

/* ---------------------------------------------------------------------------
 * Options: precision path and the documented official-vs-transformers
 * choices (ds §0). fp4m_opts_reference() is the recommended reference
 * (ds §7: everything in the path precision); fp4m_opts_transformers()
 * reproduces transformers 5.17 running a model in that dtype.
 * ------------------------------------------------------------------------- */

typedef enum fp4m_prec { FP4M_F64 = 0, FP4M_F32 } fp4m_prec;

typedef enum fp4m_island {
    FP4M_ISLAND_NATIVE = 0, /* computed in the path precision */
    FP4M_ISLAND_F32,        /* computed in FP32 and widened, as transformers
                               does inside a float64 model (ds §6) */
} fp4m_island;


typedef enum fp4m_moe_order {
    FP4M_MOE_EXPERT_ORDER = 0, /* official and transformers 5.17: routed outputs
                                  added in ascending expert id, then + shared */
    FP4M_MOE_SLOT_ORDER,       /* Hub remote code: summed over top-k slots */
} fp4m_moe_order;

typedef enum fp4m_group_mask {
    FP4M_MASK_NEG_INF = 0, /* official since 1398800, transformers 5.17 (ds §0 row 4) */
    FP4M_MASK_ZERO,        /* transformers 4.5x, early v5, R1 Hub code */
} fp4m_group_mask;

typedef enum fp4m_norm_order {
    FP4M_NORM_ROUND_THEN_WEIGHT = 0, /* transformers: n = x*rsqrt(..) in the norm
                                        precision, rounded, then weight * n in the
                                        path precision (ds §2.2 (b)) */
    FP4M_NORM_WEIGHT_THEN_ROUND,     /* F.rms_norm / official: (x*r)*w in the norm
                                        precision, rounded once (ds §2.2 (a)) */
} fp4m_norm_order;

typedef enum fp4m_attn_form {
    FP4M_ATTN_NAIVE = 0, /* expand K/V per head and cache them (transformers) */
    FP4M_ATTN_ABSORB,    /* absorb W_UK/W_UV, cache the 576-value latent (official default) */
} fp4m_attn_form;

typedef struct fp4m_opts {
    fp4m_prec prec;
    fp4m_island norm_prec;       /* RMSNorm normalisation */
    fp4m_norm_order norm_order;
    fp4m_island router_prec;     /* router logits, sigmoid, top-k weights */
    fp4m_island softmax_prec;    /* attention softmax */
    fp4m_rope_prec rope_prec;
    fp4m_moe_order moe_order;
    fp4m_group_mask group_mask;
    fp4m_attn_form attn_form;
    /* FP32 reductions (norm mean of squares, softmax sum) in the order of
     * torch's AVX2 CPU kernels (cascade_sum / reduce_all), which makes the
     * FP32 islands bit-identical to transformers on CPU. false: sequential. */
    bool torch_order;
    /* Keep every layer's weights after use (true) or stream: load a layer's
     * tensors (and only the routed experts a batch hits) just before use,
     * free them after, and drop the checkpoint pages (false). */
    bool all_resident;
    const fp4m_gemm_backend *gemm; /* NULL: fp4m_gemm_default() */
    fp4m_trace_fn trace;           /* NULL: no trace */
    void *trace_ctx;
} fp4m_opts;

fp4m_opts fp4m_opts_reference(fp4m_prec prec);
fp4m_opts fp4m_opts_transformers(fp4m_prec prec);

/* ---------------------------------------------------------------------------
 * Model: weights, KV cache, forward, generation
 * ------------------------------------------------------------------------- */

typedef struct fp4m_model fp4m_model;

/* Opens a checkpoint: `path` is a directory holding config.json and a
 * model.safetensors.index.json (or a single model.safetensors). Checks
 * every tensor the config implies (name, shape, a dtype we can read: F64,
 * F32, BF16, F16, or F8_E4M3 with its weight_scale_inv) before anything is
 * loaded; an error names the tensor. MTP layers (ds §2.9) are ignored.
 * With opts->all_resident the weights are converted now. */
int fp4m_open(const char *path, const fp4m_opts *opts, fp4m_model **out);
/* Same with a config given separately (config.json not read). */
int fp4m_open_config(const fp4m_config *cfg, const char *ckpt_path, const fp4m_opts *opts,
                     fp4m_model **out);
void fp4m_close(fp4m_model *m); /* NULL is fine */

const fp4m_config *fp4m_model_config(const fp4m_model *m);
const fp4m_opts *fp4m_model_opts(const fp4m_model *m);
void fp4m_set_trace(fp4m_model *m, fp4m_trace_fn fn, void *ctx);

/* Forgets the KV cache (next forward starts at position 0). */
void fp4m_reset(fp4m_model *m);
/* Tokens in the KV cache = position of the next token. */
int64_t fp4m_cache_len(const fp4m_model *m);

/* Runs n tokens at positions cache_len .. cache_len+n-1 (causal within the
 * chunk, attending to everything cached) and appends them to the cache.
 * logits: NULL, or [n, vocab] (last_only: [1, vocab], the last token) in the
 * path precision (double or float). Incremental decode (n = 1 per call)
 * gives bit-identical results to one call with all tokens: every op works
 * per token in a fixed order. */
int fp4m_forward(fp4m_model *m, const int64_t *tokens, int64_t n, bool last_only, void *logits);

/* Greedy decoding (argmax, lowest id on ties): prefill `prompt` in one call,
 * then one token per call. out: n_prompt + n_new ids (prompt copied).
 * Resets the cache first. */
int fp4m_generate_greedy(fp4m_model *m, const int64_t *prompt, int64_t n_prompt, int64_t n_new,
                         int64_t *out);

/* Peak bytes of converted weights held at once since open (what the
 * "one layer resident" design bounds), and currently held. */
int64_t fp4m_weight_bytes_peak(const fp4m_model *m);
int64_t fp4m_weight_bytes_now(const fp4m_model *m);

#ifdef __cplusplus
}
#endif
#endif /* FP4MODEL_H */
