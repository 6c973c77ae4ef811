/* model_internal.h - shared between the model/ sources; not installed. */
#ifndef FP4MODEL_INTERNAL_H
#define FP4MODEL_INTERNAL_H

#include "fp4io.h"
#include "fp4model.h"

#include <stdbool.h>
#include <stdint.h>

/* `path`/`name` if path is a directory, else a copy of path (malloc'ed). */
char *fp4m_join_if_dir(const char *path, const char *name);
/* Whole text file, NUL-terminated (malloc'ed), or NULL; files up to 64 MiB
 * (config.c). */
char *fp4m_read_text(const char *path);

/* ---------------------------------------------------------------------------
 * Weights. Names and shapes come from the config (ds §3); data is converted
 * to the path precision on load and NULL while not resident.
 * ------------------------------------------------------------------------- */

typedef struct m_tensor {
    char *name;       /* checkpoint name */
    int32_t ndim;     /* 1 (vector) or 2 ([out, in]) */
    int64_t out, in;  /* vectors: out = length, in = 1 */
    int64_t layer;    /* -1 outside the layers */
    int64_t expert;   /* routed expert id or -1 */
    int lclass;       /* the policy class of a linear layer (fp4m_lclass), -1 otherwise */
    void *data;       /* double* or float*, NULL until loaded */
    /* The stored quantized form (codes + scales, owned), loaded with data
     * when the checkpoint stores the tensor as FP8 blocks or NVFP4; NULL
     * otherwise. Handed to the GEMM backend through fp4m_linear_desc. */
    fp4m_stored_weight *stored;
} m_tensor;

typedef struct m_mlp {
    m_tensor gate, up, down;
} m_mlp;

typedef struct m_layer {
    int64_t index;
    bool moe;
    bool loaded; /* everything but the routed experts */
    m_tensor attn_norm, ffn_norm;
    m_tensor q_a, q_a_norm, q_b; /* q_lora_rank > 0 */
    m_tensor q;                  /* q_lora_rank == 0 */
    m_tensor kv_a, kv_a_norm, kv_b, o;
    m_mlp dense;
    m_tensor router, bias;
    m_mlp *experts; /* n_routed_experts, loaded on demand */
    m_mlp shared;
} m_layer;

/* KV cache of one layer, path precision, grown on demand. Naive form:
 * k [cap, heads, qk_nope + qk_rope], v [cap, heads, v_head_dim]. Absorbed
 * form: k [cap, kv_lora_rank] (normalised latent), v [cap, qk_rope] (rotated
 * k_pe). */
typedef struct m_cache {
    void *k, *v;
    int64_t k_row, v_row; /* elements per position */
} m_cache;

struct fp4m_model {
    fp4m_config cfg;
    fp4m_opts opts;
    fp4_st_ckpt *ck;
    int64_t esize; /* sizeof(double) or sizeof(float) */
    m_tensor embed, final_norm, head;
    m_layer *layers;
    m_cache *cache;
    int64_t cache_len, cache_cap;
    /* RoPE inverse frequencies (qk_rope/2): double and transformers' fp32. */
    double *inv_freq_f64;
    double softmax_scale, cos_factor;
    int64_t bytes_now, bytes_peak;
    /* hf_quant_config.json / quantization_config of the checkpoint directory
     * (weights.c reads it before checking the tensors; fp4m_quant_config). */
    fp4m_quant_config quant;
    uint64_t synth_seed; /* ck == NULL: weights from synth.c with this seed */
};

/* Opens with a checkpoint (ckpt_path) or, when it is NULL, synthetic
 * weights from `seed` (model.c). */
int fp4m_open_impl(const fp4m_config *cfg, const char *ckpt_path, uint64_t seed,
                   const fp4m_opts *opts, fp4m_model **out);
/* Rows [r0, r0+nr) of a synthetic tensor in the path precision (synth.c). */
int fp4m_synth_fill(fp4m_model *m, const m_tensor *w, int64_t r0, int64_t nr, void *dst);

/* Loads (converts) a tensor if not resident; counts bytes. */
int fp4m_tensor_load(fp4m_model *m, m_tensor *t);
void fp4m_tensor_free(fp4m_model *m, m_tensor *t);
/* Converts rows [r0, r0+nr) of a 2-D tensor straight from the checkpoint
 * into dst (path precision), without holding the whole tensor. */
int fp4m_tensor_rows(fp4m_model *m, const m_tensor *t, int64_t r0, int64_t nr, void *dst);
/* Everything in layer l except routed experts. */
int fp4m_layer_acquire(fp4m_model *m, int64_t l);
int fp4m_expert_acquire(fp4m_model *m, int64_t l, int64_t e);
/* Frees layer l (and its experts) unless opts.all_resident. */
void fp4m_layer_release(fp4m_model *m, int64_t l);
int fp4m_head_acquire(fp4m_model *m);
void fp4m_head_release(fp4m_model *m);
/* Builds descriptors for every tensor and checks them in the checkpoint. */
int fp4m_weights_init(fp4m_model *m);
void fp4m_weights_free(fp4m_model *m);

/* Ensures cache capacity for `need` positions. */
int fp4m_cache_reserve(fp4m_model *m, int64_t need);

/* ---------------------------------------------------------------------------
 * Numerics shared by both paths (numerics.c)
 * ------------------------------------------------------------------------- */

/* torch.sum of one contiguous row of n values on CPU, in the order of
 * aten/src/ATen/native/cpu/SumKernel.cpp's cascade_sum as x86-64 builds run
 * it (the AVX2 kernel, also on AVX-512 machines: 8 float / 4 double lanes):
 * n >= lanes: vectorized_inner_sum (row_sum over the vectors with 4 vector
 * accumulators and multi_row_sum's cascade, then the n % lanes tail, then
 * the lanes in order); n < lanes: row_sum over the scalars (4 accumulators,
 * the n % 4 leftovers into the first). Serial order (rows under 32768
 * elements or one thread). Derivation and checks: torch_math.c, docs/model.md
 * "torch's summation order". */
float fp4m_sum_f32_torch(const float *x, int64_t n);
double fp4m_sum_f64_torch(const double *x, int64_t n);
/* The softmax row sum as the fixture's torch computed it (found by fitting,
 * not read from the kernel): 16 lanes (lane = index mod 16, sequential; the
 * same as two 8-lane accumulators taking alternate vectors), then the tree
 * l[i] + l[i+8], l[i] + l[i+4], l[i] + l[i+2], l0 + l1 (vec::reduce_all on
 * AVX-512 Vectorized<float>). With MKL's RoPE table it reproduces all of
 * the fixture's 33280 non-zero probabilities; the AVX2 vec::reduce_all
 * order (8 lanes, then the lane tree) does not (docs/model.md). Lanes are
 * filled in index order,
 * so trailing masked zeros do not change the result. */
float fp4m_sum_f32_lanes16(const float *x, int64_t n);
/* Sequential float sum. */
float fp4m_sum_f32_seq(const float *x, int64_t n);

/* torch's CPU elementary functions, one vector lane each (torch_math.c;
 * torch 2.11, AVX2 capability): SLEEF Sleef_expf8_u10 (Vectorized<float>::exp:
 * softmax, sigmoid, SiLU) and Sleef_expd4_u10 (Vectorized<double>::exp:
 * float64 SiLU). Used only where the options select torch's kernels
 * (torch_order; docs/model.md). */
float fp4m_torch_expf(float x);
/* trig.c: validates opts' RoPE trig source at open; cos/sin of n angles. */
int fp4m_trig_check(const fp4m_opts *o);
int fp4m_trig_f32(const fp4m_opts *o, const float *x, float *c, float *s, int64_t n);
double fp4m_torch_exp(double x);
/* Indices of torch.topk(v[0..n), k, sorted=False) on CPU, in torch's output
 * order (libstdc++ nth_element / partial_sort as TopKImpl.h calls them). */
void fp4m_topk_torch(const double *v, int64_t n, int64_t k, int64_t *idx);

/* The default backend's dot products (backend.c), reused for q.k and the
 * router so every contraction of a path has one documented order. */
double fp4m_dot_f64(const double *x, const double *w, int64_t k);
float fp4m_dot_f32(const float *x, const float *w, int64_t k);

/* Fills inv_freq_f64 (ds §2.5), the softmax scale and the cos factor; checks
 * the RoPE trig source (trig.c). The fp32 tables: fp4m_rope_table_f32. */
int fp4m_rope_init(fp4m_model *m);

/* Precision-specific forwards (forward_f64.c, forward_f32.c). */
int fp4m_forward_f64(fp4m_model *m, const int64_t *tokens, int64_t n, bool last_only,
                     double *logits);
int fp4m_forward_f32(fp4m_model *m, const int64_t *tokens, int64_t n, bool last_only,
                     float *logits);

/* Trace helper: fills an event and calls the callback if any. */
int fp4m_emit(fp4m_model *m, int64_t layer, const char *op, fp4m_dtype dt, void *data,
              int32_t ndim, const int64_t *shape, int64_t pos0, int64_t expert,
              const int64_t *rows);

#endif
