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

/* Where FP4M_ROPE_F32's cos/sin come from (trig.c). transformers builds its
 * float32 tables with torch's emb.cos()/sin(), whose bits depend on the
 * torch build: x86-64 wheels call Intel MKL (VML, HA mode), which is what
 * reproduces the fixture's float64 run bit for bit (docs/model.md). */
typedef enum fp4m_trig {
    FP4M_TRIG_CR = 0, /* correctly rounded (MPFR): the same bits on every machine */
    FP4M_TRIG_MKL,    /* MKL vmsCos/vmsSin, VML_HA | VML_FTZDAZ_OFF | VML_ERRMODE_IGNORE,
                         loaded at run time (libmkl_rt, or the path in $FP4SIM_MKL_LIB);
                         opening a model fails with a message where it is missing */
    FP4M_TRIG_USER,   /* opts.trig_fn */
} fp4m_trig;
/* cos and sin of n float32 angles; returns 0, or non-zero to fail the forward. */
typedef int (*fp4m_trig_fn)(void *ctx, const float *x, float *cos_out, float *sin_out, int64_t n);
const char *fp4m_trig_name(fp4m_trig t);
int fp4m_trig_parse(const char *s, fp4m_trig *out); /* "cr" | "mkl" */
int fp4m_trig_mkl_available(void);                   /* 1 if libmkl_rt could be loaded */
float fp4m_cosf_cr(float x);                         /* correctly rounded, RNE */
float fp4m_sinf_cr(float x);
void fp4m_yarn_range(const fp4m_config *c, double *low, double *high);

/* ---------------------------------------------------------------------------
 * The tensor manifest (manifest.c): every tensor a checkpoint of a config
 * holds (ds §3; MTP layers left out), with its role, policy class and
 * synthetic kind. The one list the loader, the parameter counts, the
 * synthetic checkpoint writer and the tests use.
 * ------------------------------------------------------------------------- */

/* Where a tensor sits in a layer (or outside the layers). */
typedef enum fp4m_slot {
    FP4M_SLOT_EMBED = 0, FP4M_SLOT_FINAL_NORM, FP4M_SLOT_HEAD,
    FP4M_SLOT_ATTN_NORM, FP4M_SLOT_FFN_NORM,
    FP4M_SLOT_Q_A, FP4M_SLOT_Q_A_NORM, FP4M_SLOT_Q_B, FP4M_SLOT_Q,
    FP4M_SLOT_KV_A, FP4M_SLOT_KV_A_NORM, FP4M_SLOT_KV_B, FP4M_SLOT_O,
    FP4M_SLOT_GATE, FP4M_SLOT_UP, FP4M_SLOT_DOWN, /* of the dense MLP, an expert or the shared one */
    FP4M_SLOT_ROUTER, FP4M_SLOT_BIAS,
    FP4M_SLOT_COUNT
} fp4m_slot;

typedef enum fp4m_synth_kind {
    FP4M_SYN_LINEAR = 0, /* U(-sqrt(3/in), sqrt(3/in)): variance 1/in */
    FP4M_SYN_NORM,       /* *norm.weight: 1 + 0.2 U(-sqrt 3, sqrt 3) */
    FP4M_SYN_EMBED,      /* model.embed_tokens.weight: U(-sqrt 3, sqrt 3) */
    FP4M_SYN_BIAS,       /* *e_score_correction_bias: U(-sqrt 3, sqrt 3) */
} fp4m_synth_kind;

typedef struct fp4m_tensor_info {
    char name[160];  /* checkpoint name, e.g. "model.layers.3.mlp.experts.7.up_proj.weight" */
    fp4m_slot slot;
    int64_t layer;   /* -1 outside the layers */
    int64_t expert;  /* routed expert id, else -1 */
    bool shared;     /* of the shared expert(s) */
    int64_t out, in; /* [out, in]; in = 0 for a vector of length out */
    bool linear;     /* a matrix the forward multiplies by (linear layers and lm_head,
                        not the router, the embedding or the norms) */
    int lclass;      /* linear layers: their fp4m_lclass (policy class); -1 otherwise */
    fp4m_synth_kind synth; /* how synthetic weights fill it */
} fp4m_tensor_info;

typedef int (*fp4m_manifest_fn)(void *ctx, const fp4m_tensor_info *t);
/* Calls fn for every tensor in checkpoint order: embedding, layer 0 ...
 * layer L-1 (norms, attention, MLP or router + experts + shared), final
 * norm, lm_head (unless tied). Stops at the first non-zero return, which it
 * returns. */
int fp4m_manifest(const fp4m_config *c, fp4m_manifest_fn fn, void *ctx);
/* The tensors of layer l only (same order). */
int fp4m_manifest_layer(const fp4m_config *c, int64_t l, fp4m_manifest_fn fn, void *ctx);

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
 * Quantization config of a checkpoint (recipes.md §7; model/quant_config.c)
 *
 * Where it comes from, first found wins:
 *  - hf_quant_config.json beside config.json: ModelOpt (recipes.md §7.1),
 *    {"producer": {name, version}, "quantization": {"quant_algo": "NVFP4",
 *    "group_size": 16, "kv_cache_quant_algo": null|"FP8",
 *    "exclude_modules": [wildcards]}};
 *  - config.json "quantization_config" with quant_method
 *    "compressed-tensors" (recipes.md §2.8, §7.2: format
 *    "nvfp4-pack-quantized", config_groups.*.weights {num_bits 4, type float,
 *    strategy tensor_group, group_size 16}, "ignore": names or "re:" regexes),
 *    "modelopt" (the same keys as hf_quant_config.json's, nested under
 *    "quantization" or flat), or "fp8" / none with weight_block_size
 *    (DeepSeek's FP8 blocks, recipes.md §7.3).
 * The loader detects each tensor's storage from the tensors themselves and
 * uses this only to cross-check (a module the config excludes must not be
 * stored quantized; ModelOpt names under a compressed-tensors config and the
 * reverse are errors). KV-cache quantization is recorded, not modelled.
 * ------------------------------------------------------------------------- */

typedef enum fp4m_quant_method {
    FP4M_QUANT_NONE = 0,       /* no quantization config */
    FP4M_QUANT_FP8_BLOCK,      /* DeepSeek FP8: E4M3 + weight_scale_inv per block */
    FP4M_QUANT_NVFP4_MODELOPT, /* ModelOpt NVFP4 (decode global scales) */
    FP4M_QUANT_NVFP4_CT,       /* compressed-tensors NVFP4 (encode global scales) */
} fp4m_quant_method;

typedef struct fp4m_quant_config {
    fp4m_quant_method method;
    char source[32];       /* "hf_quant_config.json", "config.json" or "" */
    char producer[64];     /* ModelOpt producer "name version"; "" if absent */
    char format[32];       /* compressed-tensors format string */
    char kv_cache[32];     /* kv_cache_quant_algo / kv_cache_scheme; "" when null */
    int64_t group_size;    /* NVFP4: 16; else 0 */
    int64_t fp8_block[2];  /* FP8: weight_block_size (default 128 x 128) */
    bool input_quant;      /* activations quantized too (W4A4; compressed-tensors
                              input_activations present; ModelOpt NVFP4 always) */
    int64_t n_patterns;
    char **patterns;       /* ModelOpt exclude_modules / compressed-tensors ignore */
} fp4m_quant_config;

/* From text: config_json and/or hf_quant_json may be NULL (absent). Errors
 * name the file and the key, e.g. 'hf_quant_config.json: "quantization.
 * group_size" must be 16 (NVFP4), got 32'. *out must be freed with
 * fp4m_quant_config_free (also after a failure: it is then empty). */
int fp4m_quant_config_parse(const char *config_json, const char *hf_quant_json,
                            fp4m_quant_config *out);
/* `path`: a directory (reads config.json and hf_quant_config.json there, each
 * if present) or a config file (reads it, and hf_quant_config.json from its
 * directory). */
int fp4m_quant_config_load(const char *path, fp4m_quant_config *out);
void fp4m_quant_config_free(fp4m_quant_config *q);
/* Whether `module` (a tensor name without ".weight", e.g. "lm_head") is
 * excluded from quantization by the config, as its producer matches:
 * ModelOpt exclude_modules are fnmatch wildcards on the module name (vLLM
 * modelopt.py is_layer_excluded: fnmatch(prefix, pattern)); compressed-
 * tensors ignore entries are exact names, or "re:" + a regex matched at the
 * start of the name (compressed_tensors/utils/match.py _match_name: re.match;
 * here POSIX extended regex). *pattern (may be NULL) gets the entry matched. */
bool fp4m_quant_excluded(const fp4m_quant_config *q, const char *module, const char **pattern);
const char *fp4m_quant_method_name(fp4m_quant_method m);
/* A few lines for `fp4sim model info`. */
void fp4m_quant_config_print(const fp4m_quant_config *q, FILE *f);

/* ---------------------------------------------------------------------------
 * GEMM backend: every linear layer of the forward (attention projections,
 * MLPs, experts, lm_head; not the router, see docs/model.md) calls it, so an
 * NVFP4 oracle, an emu preset or a GPU kernel can replace the plain loops.
 * ------------------------------------------------------------------------- */

/* A weight as the checkpoint stores it when it is stored quantized, so a
 * quantized backend can use the stored codes instead of re-quantizing the
 * dequantized values (recipes.md §7.1-7.3). */
typedef enum fp4m_stored_kind {
    FP4M_STORED_NONE = 0,  /* F64/F32/BF16/F16 (or synthetic): only the dequantized values */
    FP4M_STORED_FP8_BLOCK, /* original R1: E4M3 [out, in] + F32 weight_scale_inv per
                              block_rows x block_cols tile (w = e4m3 * scale_inv) */
    FP4M_STORED_NVFP4,     /* ModelOpt or compressed-tensors NVFP4 */
} fp4m_stored_kind;

typedef enum fp4m_gscale_kind {
    FP4M_GSCALE_DECODE = 0, /* ModelOpt: w = e2m1 * e4m3(scale) * weight_scale_2,
                               activation decode scale = input_scale */
    FP4M_GSCALE_ENCODE,     /* compressed-tensors: w = e2m1 * e4m3(scale) / weight_global_scale,
                               activation encode scale = input_global_scale (bug A3 if mixed up) */
} fp4m_gscale_kind;

typedef struct fp4m_stored_weight {
    fp4m_stored_kind kind;
    fp4_tensor t;                   /* as stored, [out, in]: FP8 = E4M3 + F32 scale_inv per
                                       block_rows x block (128 x 128 for R1); NVFP4 = packed
                                       E2M1 + UE4M3 per 16, global_scale = the decode multiplier
                                       (weight_scale_2, or RN32(1 / weight_global_scale)) */
    fp4m_gscale_kind gkind;         /* NVFP4 */
    float weight_global;            /* NVFP4: weight_scale_2 (DECODE) or weight_global_scale (ENCODE) */
    float input_global;             /* NVFP4: input_scale (DECODE) or input_global_scale (ENCODE);
                                       0 when the checkpoint has none (dynamic activations) */
} fp4m_stored_weight;

/* Linear layer classes a policy distinguishes (by checkpoint name). */
typedef enum fp4m_lclass {
    FP4M_LC_ATTN = 0, /* q_a_proj, q_b_proj, q_proj, kv_a_proj_with_mqa, kv_b_proj */
    FP4M_LC_O_PROJ,   /* self_attn.o_proj (ModelOpt R1 v2 quantizes it, v1 does not) */
    FP4M_LC_DENSE,    /* dense-layer mlp.{gate,up,down}_proj */
    FP4M_LC_EXPERT,   /* mlp.experts.N.* (routed) */
    FP4M_LC_SHARED,   /* mlp.shared_experts.* */
    FP4M_LC_HEAD,     /* lm_head */
    FP4M_LC_COUNT
} fp4m_lclass;

typedef struct fp4m_linear_desc {
    const char *name; /* checkpoint tensor, e.g. "model.layers.3.mlp.experts.7.up_proj.weight" */
    int64_t layer;    /* -1 for lm_head */
    int64_t expert;   /* routed expert id, -1 otherwise */
    int64_t out, in;  /* N, K */
    const fp4m_stored_weight *stored; /* NULL unless the checkpoint stores it quantized */
    fp4m_lclass lclass; /* the policy class, set when the model is opened (the manifest) */
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

/* The same loops with K split into blocks of 256 as torch's CPU dgemm does
 * (one fma chain per block, block results added in order): bit-identical to
 * the fixture's float64 linears, K = 512 included. fp4m_opts_transformers
 * selects it; equal to fp4m_gemm_default() when K <= 256. */
const fp4m_gemm_backend *fp4m_gemm_torch(void);

/* ---------------------------------------------------------------------------
 * Precision policies (model/policy.c, model/backend_quant.c): which linear
 * layers run quantized and how. A policy becomes a GEMM backend; the rest of
 * the forward (norms, attention scores, router, residuals) stays in the path
 * precision, so the difference from the reference run is the quantized
 * GEMMs' alone (docs/model.md "Precision policies").
 * ------------------------------------------------------------------------- */

typedef enum fp4m_qfmt {
    FP4M_Q_NATIVE = 0, /* the path precision (reference) */
    FP4M_Q_BF16,       /* BF16 weights and activations (RNE), output rounded to `out` */
    FP4M_Q_FP8_BLOCK,  /* DeepSeek FP8: E4M3 weights per 128x128 (stored, or amax/448),
                          activations E4M3 per token per 128 (amax/448), recipes.md §2.13 */
    FP4M_Q_W4A16,      /* NVFP4 weights (stored, or quantized by weight_recipe), BF16
                          activations; the tensor scale is applied in the epilogue */
    FP4M_Q_W4A4,       /* NVFP4 weights and activations (act_recipe, 16-element blocks) */
    FP4M_Q_COUNT
} fp4m_qfmt;


typedef struct fp4m_policy {
    char name[32];
    fp4m_qfmt fmt[FP4M_LC_COUNT];
    char weight_recipe[32]; /* NVFP4 weights the checkpoint does not store quantized */
    char act_recipe[32];    /* NVFP4 activations (W4A4) */
    fp4_format act_in;      /* FP4_FMT_BF16 (as served) or FP4_FMT_F32: activations are
                               rounded to this before quantizing / BF16 GEMMs use BF16 */
    fp4_format out;         /* output of each quantized linear: FP4_FMT_BF16 or FP4_FMT_F32 */
    fp4_engine *engine;     /* the GEMM engine of the FP8 and NVFP4 W4A4 linears (borrowed:
                               the caller opens and closes it, e.g. through conformance/'s
                               registry); NULL: the exact oracle. BF16 and W4A16 products are
                               summed in the path precision */
} fp4m_policy;

/* Named policies: reference, bf16, fp8-block, modelopt-r1 (MLP and expert
 * linears W4A4, the rest BF16: nvidia/DeepSeek-R1-FP4 v1), modelopt-r1-v2
 * (+ o_proj), nvfp4-w4a16, nvfp4-all. 0, or -1 naming the valid ones. */
int fp4m_policy_from_name(const char *name, fp4m_policy *out);
const char *fp4m_policy_names(void);
const char *fp4m_qfmt_name(fp4m_qfmt f);
/* A linear layer's policy class: d->lclass (set from the manifest at open). */
fp4m_lclass fp4m_linear_class(const fp4m_linear_desc *d);
/* A GEMM backend executing the policy (both precision paths). Checks the
 * recipes and the engine now. 0, or -1 with fp4_last_error(). */
int fp4m_policy_backend_new(const fp4m_policy *p, fp4m_gemm_backend **out);
void fp4m_policy_backend_free(fp4m_gemm_backend *b); /* NULL is fine */

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
    fp4m_trig rope_trig;  /* FP4M_ROPE_F32's cos/sin */
    fp4m_trig_fn trig_fn; /* FP4M_TRIG_USER */
    void *trig_ctx;
    fp4m_moe_order moe_order;
    fp4m_group_mask group_mask;
    fp4m_attn_form attn_form;
    /* torch's CPU kernels (torch 2.11, x86-64) where transformers' result
     * depends on them: torch.sum's order (SumKernel.cpp's cascade_sum, float32
     * and float64: RMSNorm mean of squares, the top-k weight sum), the
     * softmax row sum in 16 lanes, SLEEF's
     * vectorised exp (Sleef_expf8_u10 in the softmax and the sigmoid, and
     * Sleef_expd4_u10 / expf8 in SiLU, torch_math.c) and torch.topk's output
     * order (which fixes the order of the top-k weight sum). Makes the
     * RMSNorm, router and softmax islands bit-identical to the fixture (the
     * softmax given MKL's RoPE table, rope_trig; docs/model.md). false:
     * sequential sums, the C library's exp, our descending top-k. */
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

/* transformers' float32 table for positions pos0 .. pos0+n-1, [n][rope/2]
 * each: angles RN32(pos * inv_freq) and cos/sin (opts->rope_trig, times the
 * attention factor). What the FP4M_ROPE_F32 forward uses. */
int fp4m_rope_table_f32(const fp4m_config *c, const fp4m_opts *o, int64_t pos0, int64_t n,
                        float *theta, float *cos_out, float *sin_out);

/* ---------------------------------------------------------------------------
 * Model: weights, KV cache, forward, generation
 * ------------------------------------------------------------------------- */

typedef struct fp4m_model fp4m_model;

/* Opens a checkpoint: `path` is a directory holding config.json and a
 * model.safetensors.index.json (or a single model.safetensors). Checks
 * every tensor the config implies (name, shape, a form we can read: F64,
 * F32, BF16, F16, F8_E4M3 with its weight_scale_inv, ModelOpt or
 * compressed-tensors NVFP4 with their scales; docs/model.md "Quantized
 * checkpoints") before anything is loaded; an error names the tensor. MTP
 * layers (ds §2.9) are ignored.
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

/* ---------------------------------------------------------------------------
 * Synthetic weights (model/synth.c): any config, from a seed, on demand.
 * Element i of tensor `name` depends only on (seed, name, i) (Philox4x32-10
 * countered by i and a 64-bit hash of the name), so experts are generated
 * when routed to, in any order and on any thread count, always with the same
 * bits; `fp4sim model synth` writes the same values into a checkpoint.
 * ------------------------------------------------------------------------- */


fp4m_synth_kind fp4m_synth_kind_of(const char *name);
/* Rows [r0, r0 + nr) of tensor `name` with `in` columns (1 for vectors),
 * as FP32 values, row-major into dst. */
void fp4m_synth_rows(uint64_t seed, const char *name, int64_t in, int64_t r0, int64_t nr,
                     float *dst);
/* A model whose weights are generated on demand instead of read (same
 * values as `fp4sim model synth --seed seed --dtype f32` writes). With
 * opts->all_resident = false only one layer (and the experts a batch hits)
 * is held at a time, so the full R1 config runs on one machine. */
int fp4m_open_synthetic(const fp4m_config *cfg, uint64_t seed, const fp4m_opts *opts,
                        fp4m_model **out);

/* Writes a checkpoint (config.json, model.safetensors, and
 * hf_quant_config.json for ModelOpt) holding the synthetic weights of
 * `seed` for the config at config_path (a config.json or a directory holding
 * one) into out_dir, stored in one of the layouts real checkpoints use
 * (docs/model.md "Quantized checkpoints"; synth_write.c). Refuses a config
 * above 2e9 parameters and a directory that holds a sharded checkpoint (its
 * index would keep being read). *ntensors (may be NULL) gets the count. */
typedef enum fp4m_synth_dtype {
    FP4M_SD_F32 = 0, FP4M_SD_BF16, FP4M_SD_F16,
    FP4M_SD_FP8,       /* R1's layout: linears but the router E4M3 + weight_scale_inv per
                          128x128 (deepseek-fp8-weight), the rest BF16 */
    FP4M_SD_NVFP4_MO,  /* R1 NVFP4's: MLP/expert linears NVFP4 by the modelopt recipe */
    FP4M_SD_NVFP4_CT,  /* compressed-tensors: linears but router and lm_head */
    FP4M_SD_COUNT
} fp4m_synth_dtype;
typedef struct fp4m_synth_write_opts {
    uint64_t seed;
    fp4m_synth_dtype dtype;
    double input_amax; /* activation amax behind input_scale / input_global_scale (32) */
} fp4m_synth_write_opts;
fp4m_synth_write_opts fp4m_synth_write_opts_default(void);
const char *fp4m_synth_dtype_name(fp4m_synth_dtype d);
const char *fp4m_synth_dtype_names(void);
int fp4m_synth_dtype_from_name(const char *s, fp4m_synth_dtype *out);
int fp4m_synth_write(const char *config_path, const char *out_dir, const fp4m_synth_write_opts *o,
                     int64_t *ntensors);

/* Peak bytes of converted weights held at once since open (what the
 * "one layer resident" design bounds), and currently held. */
int64_t fp4m_weight_bytes_peak(const fp4m_model *m);
int64_t fp4m_weight_bytes_now(const fp4m_model *m);

#ifdef __cplusplus
}
#endif
#endif /* FP4MODEL_H */
