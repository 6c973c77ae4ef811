/* forward_impl.h - the DeepSeek-V3 forward pass, written once for both
 * precision paths. forward_f64.c and forward_f32.c include it with:
 *   REAL     element type of activations and weights (double / float)
 *   IS_F64   1 for the FP64 path, 0 for FP32
 *   DT       trace dtype (FP4M_DT_F64 / FP4M_DT_F32)
 *   GEMM     member of fp4m_gemm_backend (gemm_f64 / gemm_f32)
 *   DOT      fp4m_dot_f64 / fp4m_dot_f32 (order of non-weight contractions)
 *   REXP     exp / expf
 *   FMA      fma / fmaf (contractions are fused multiply-add chains, as BLAS)
 *   FORWARD  name of the entry point
 * Read top to bottom: scratch memory, linear, RMSNorm, RoPE, attention,
 * MLP, router, MoE, the layer loop. "ds §x" = docs/reference/deepseek.md.
 *
 * Every op works token by token in a fixed order (no reduction runs across
 * tokens), so a chunk of n tokens gives the same bits as n calls with one
 * token each: incremental decode == full forward, exactly. */
#include "model_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef REAL real;

/* Below this many multiply-adds a parallel region costs more than it saves. */
#define PAR_MIN ((int64_t)1 << 24)

typedef struct fwd {
    fp4m_model *m;
    const fp4m_config *c;
    const fp4m_opts *o;
    int64_t n;     /* tokens in this call */
    int64_t pos0;  /* position of the first one */
    int64_t ntot;  /* pos0 + n: keys visible to the last token */
    real *cos, *sin; /* [n, qk_rope/2] */
    void **scr;    /* scratch allocations, freed back to a mark */
    int64_t nscr, capscr;
} fwd;

/* ---------------------------------------------------------------------------
 * Scratch memory: per-call buffers released in stack order, so a layer's
 * temporaries are gone before the next layer runs.
 * ------------------------------------------------------------------------- */

static void *scratch_bytes(fwd *f, int64_t bytes) {
    if (f->nscr == f->capscr) {
        int64_t cap = f->capscr ? 2 * f->capscr : 64;
        void **p = realloc(f->scr, (size_t)cap * sizeof(void *));
        if (!p) {
            fp4_fail("model: out of memory (scratch list)");
            return NULL;
        }
        f->scr = p;
        f->capscr = cap;
    }
    void *b = calloc((size_t)(bytes > 0 ? bytes : 1), 1);
    if (!b) {
        fp4_fail("model: out of memory (%" PRId64 " bytes of scratch)", bytes);
        return NULL;
    }
    f->scr[f->nscr++] = b;
    return b;
}

static real *scratch(fwd *f, int64_t count) { return scratch_bytes(f, count * (int64_t)sizeof(real)); }

static void scratch_release(fwd *f, int64_t mark) {
    while (f->nscr > mark) free(f->scr[--f->nscr]);
}

static int emit(fwd *f, int64_t layer, const char *op, void *data, int64_t d0, int64_t d1) {
    const int64_t shape[2] = {d0, d1};
    return fp4m_emit(f->m, layer, op, DT, data, 2, shape, f->pos0, -1, NULL);
}

/* ---------------------------------------------------------------------------
 * Linear layers go through the GEMM backend (y = x W^T, ds §2.3).
 * ------------------------------------------------------------------------- */

static int linear(fwd *f, const m_tensor *w, int64_t rows, const real *x, real *y) {
    const fp4m_gemm_backend *b = f->o->gemm ? f->o->gemm : fp4m_gemm_default();
    fp4m_linear_desc d = {w->name, w->layer, w->expert, w->out, w->in, w->stored,
                          (fp4m_lclass)w->lclass};
    if (rows == 0) return 0;
    if (!b->GEMM) return fp4_fail("model: GEMM backend '%s' has no path for this precision", b->name);
    if (b->GEMM(b->ctx, &d, rows, x, (const real *)w->data, y)) return -1;
    return 0;
}

/* ---------------------------------------------------------------------------
 * RMSNorm (ds §2.2): y = w * x / sqrt(mean(x^2) + eps).
 * In FP32 (the FP32 path, or the FP32 island transformers keeps inside a
 * float64 model) we follow transformers op by op: x -> fp32, squares, torch's
 * sum order, / d, + eps (as fp32), 1/sqrt, x * r, then weight * n in the path
 * precision (round-then-weight) or (w * n) in fp32 rounded once.
 * ------------------------------------------------------------------------- */

static bool norm_in_f32(const fwd *f) { return !IS_F64 || f->o->norm_prec == FP4M_ISLAND_F32; }

static void rmsnorm_row_f32(const fwd *f, const real *x, int64_t d, const real *w, real *y,
                            float *sq) {
    for (int64_t i = 0; i < d; i++) {
        float v = (float)x[i];
        sq[i] = v * v;
    }
    float s = f->o->torch_order ? fp4m_sum_f32_torch(sq, d) : fp4m_sum_f32_seq(sq, d);
    float r = 1.0f / sqrtf(s / (float)d + (float)f->c->rms_norm_eps);
    bool round_first = f->o->norm_order == FP4M_NORM_ROUND_THEN_WEIGHT;
    for (int64_t i = 0; i < d; i++) {
        float nv = (float)x[i] * r;
        y[i] = round_first ? w[i] * (real)nv : (real)((float)w[i] * nv);
    }
}

/* Native float64 (the FP64 path's reference): the squares summed in order,
 * or with torch_order as torch.sum of x.pow(2) in float64 (SumKernel.cpp's
 * order, fp4m_sum_f64_torch). */
static void rmsnorm_row_f64(const fwd *f, const real *x, int64_t d, const real *w, real *y,
                            double *sq) {
    double s = 0.0;
    if (f->o->torch_order) {
        for (int64_t i = 0; i < d; i++) sq[i] = (double)x[i] * (double)x[i];
        s = fp4m_sum_f64_torch(sq, d);
    } else {
        for (int64_t i = 0; i < d; i++) s += (double)x[i] * (double)x[i];
    }
    double r = 1.0 / sqrt(s / (double)d + f->c->rms_norm_eps);
    for (int64_t i = 0; i < d; i++) y[i] = (real)((double)w[i] * ((double)x[i] * r));
}

/* rows of x with leading dimension ld -> dense y [rows, d]. */
static int rmsnorm(fwd *f, const real *x, int64_t rows, int64_t d, int64_t ld, const m_tensor *w,
                   real *y) {
    void *sq = scratch_bytes(f, d * (int64_t)sizeof(double)); /* squares, float or double */
    if (!sq) return -1;
    for (int64_t r = 0; r < rows; r++) {
        if (norm_in_f32(f))
            rmsnorm_row_f32(f, x + r * ld, d, (const real *)w->data, y + r * d, (float *)sq);
        else
            rmsnorm_row_f64(f, x + r * ld, d, (const real *)w->data, y + r * d, (double *)sq);
    }
    scratch_release(f, f->nscr - 1);
    return 0;
}

/* ---------------------------------------------------------------------------
 * RoPE (ds §2.5): interleaved pairs (x[2i], x[2i+1]) rotated by pos*f_i.
 * cos/sin are computed once per call for the call's positions, in double
 * or as transformers does in fp32 (fp4m_rope_table_f32, trig.c: angles
 * RN32(pos * inv_freq), cos/sin from opts.rope_trig, times the attention
 * factor in fp32), then widened to the path precision; cos_factor is
 * transformers' attention_factor (1 for R1).
 * ------------------------------------------------------------------------- */

static int rope_tables_f32(fwd *f, int64_t half) {
    const int64_t m = f->n * half;
    float *buf = malloc((size_t)(3 * m) * sizeof(float));
    if (!buf) return fp4_fail("model: out of memory in RoPE");
    float *th = buf, *c = buf + m, *s = buf + 2 * m;
    int rc = fp4m_rope_table_f32(f->c, f->o, f->pos0, f->n, th, c, s);
    for (int64_t k = 0; rc == 0 && k < m; k++) {
        f->cos[k] = (real)c[k];
        f->sin[k] = (real)s[k];
    }
    free(buf);
    return rc;
}

static int rope_tables(fwd *f) {
    const int64_t half = f->c->qk_rope_head_dim / 2;
    const double cf = f->m->cos_factor;
    f->cos = scratch(f, f->n * half);
    f->sin = scratch(f, f->n * half);
    if (!f->cos || !f->sin) return -1;
    if (f->o->rope_prec == FP4M_ROPE_F32) return rope_tables_f32(f, half);
    for (int64_t t = 0; t < f->n; t++)
        for (int64_t i = 0; i < half; i++) {
            double th = (double)(f->pos0 + t) * f->m->inv_freq_f64[i];
            f->cos[t * half + i] = (real)(cos(th) * cf);
            f->sin[t * half + i] = (real)(sin(th) * cf);
        }
    return 0;
}

/* x [qk_rope] of token t (row of this call), rotated in place. */
static void rope_apply(const fwd *f, int64_t t, real *x) {
    const int64_t half = f->c->qk_rope_head_dim / 2;
    const real *cs = f->cos + t * half, *sn = f->sin + t * half;
    for (int64_t i = 0; i < half; i++) {
        real a = x[2 * i], b = x[2 * i + 1];
        x[2 * i] = a * cs[i] - b * sn[i];
        x[2 * i + 1] = b * cs[i] + a * sn[i];
    }
}

/* ---------------------------------------------------------------------------
 * MLA attention (ds §2.4)
 * ------------------------------------------------------------------------- */

/* q [n, heads, nope + rope]: q_a -> q_a_layernorm -> q_b (or q_proj), then
 * RoPE on each head's last qk_rope values. */
static int attn_query(fwd *f, m_layer *L, const real *x, real *q) {
    const fp4m_config *c = f->c;
    const int64_t n = f->n, nh = c->num_attention_heads;
    const int64_t dqk = c->qk_nope_head_dim + c->qk_rope_head_dim;
    if (c->q_lora_rank > 0) {
        const int64_t mark = f->nscr, r = c->q_lora_rank;
        real *qa = scratch(f, n * r), *qn = scratch(f, n * r);
        if (!qa || !qn || linear(f, &L->q_a, n, x, qa) || rmsnorm(f, qa, n, r, r, &L->q_a_norm, qn) ||
            emit(f, L->index, "self_attn.q_a_layernorm", qn, n, r) || linear(f, &L->q_b, n, qn, q))
            return -1;
        scratch_release(f, mark);
    } else if (linear(f, &L->q, n, x, q)) {
        return -1;
    }
    for (int64_t t = 0; t < n; t++)
        for (int64_t h = 0; h < nh; h++) rope_apply(f, t, q + (t * nh + h) * dqk + c->qk_nope_head_dim);
    return 0;
}

/* kv_a -> [c_kv | k_pe]; ckv = kv_a_layernorm(c_kv) [n, kv_lora]; kpe =
 * RoPE(k_pe) [n, rope]. The norm applies to c_kv only, RoPE to the raw k_pe. */
static int attn_latent(fwd *f, m_layer *L, const real *x, real *ckv, real *kpe) {
    const fp4m_config *c = f->c;
    const int64_t n = f->n, r = c->kv_lora_rank, dr = c->qk_rope_head_dim;
    const int64_t mark = f->nscr;
    real *kv = scratch(f, n * (r + dr));
    if (!kv || linear(f, &L->kv_a, n, x, kv) || rmsnorm(f, kv, n, r, r + dr, &L->kv_a_norm, ckv) ||
        emit(f, L->index, "self_attn.kv_a_layernorm", ckv, n, r))
        return -1;
    for (int64_t t = 0; t < n; t++) {
        memcpy(kpe + t * dr, kv + t * (r + dr) + r, (size_t)dr * sizeof(real));
        rope_apply(f, t, kpe + t * dr);
    }
    scratch_release(f, mark);
    return 0;
}

/* Naive form: K = [k_nope | k_pe] and V per head from kv_b(ckv), cached. */
static int cache_naive(fwd *f, m_layer *L, const real *ckv, const real *kpe) {
    const fp4m_config *c = f->c;
    const int64_t n = f->n, nh = c->num_attention_heads, dn = c->qk_nope_head_dim;
    const int64_t dr = c->qk_rope_head_dim, dv = c->v_head_dim, w = dn + dv;
    m_cache *C = &f->m->cache[L->index];
    const int64_t mark = f->nscr;
    real *kvb = scratch(f, n * nh * w);
    if (!kvb || linear(f, &L->kv_b, n, ckv, kvb)) return -1;
    for (int64_t t = 0; t < n; t++) {
        real *K = (real *)C->k + (f->pos0 + t) * C->k_row;
        real *V = (real *)C->v + (f->pos0 + t) * C->v_row;
        for (int64_t h = 0; h < nh; h++) {
            memcpy(K + h * (dn + dr), kvb + (t * nh + h) * w, (size_t)dn * sizeof(real));
            memcpy(K + h * (dn + dr) + dn, kpe + t * dr, (size_t)dr * sizeof(real));
            memcpy(V + h * dv, kvb + (t * nh + h) * w + dn, (size_t)dv * sizeof(real));
        }
    }
    scratch_release(f, mark);
    return 0;
}

/* Absorbed form caches the latent (576 values per token for R1). */
static void cache_latent(fwd *f, m_layer *L, const real *ckv, const real *kpe) {
    m_cache *C = &f->m->cache[L->index];
    for (int64_t t = 0; t < f->n; t++) {
        memcpy((real *)C->k + (f->pos0 + t) * C->k_row, ckv + t * C->k_row,
               (size_t)C->k_row * sizeof(real));
        memcpy((real *)C->v + (f->pos0 + t) * C->v_row, kpe + t * C->v_row,
               (size_t)C->v_row * sizeof(real));
    }
}

/* Softmax over row[0..len) in place. transformers: softmax(scores, dtype=
 * float32) even in a float64 model. With torch_order, torch's CPU kernel
 * (SoftMaxKernel.cpp _vec_softmax_lastdim): max, exp(x - max) with SLEEF's
 * expf (Vectorized<float>::exp, torch_math.c), the sum in the 16-lane order
 * that fits the fixture (fp4m_sum_f32_lanes16), x * (1/sum); of the exps and
 * orders tried it reproduces the most fixture probabilities, but not all
 * (docs/model.md, "The FP32 islands"). Without
 * torch_order: glibc expf, sequential sum. Native FP64: exp, sequential sum,
 * divide. */
static void softmax_row(const fwd *f, real *row, int64_t len, float *tmp) {
    if (!IS_F64 || f->o->softmax_prec == FP4M_ISLAND_F32) {
        float mx = -INFINITY;
        for (int64_t j = 0; j < len; j++) {
            tmp[j] = (float)row[j];
            if (tmp[j] > mx) mx = tmp[j];
        }
        for (int64_t j = 0; j < len; j++)
            tmp[j] = f->o->torch_order ? fp4m_torch_expf(tmp[j] - mx) : expf(tmp[j] - mx);
        float s = f->o->torch_order ? fp4m_sum_f32_lanes16(tmp, len) : fp4m_sum_f32_seq(tmp, len);
        float inv = 1.0f / s;
        for (int64_t j = 0; j < len; j++) row[j] = (real)(tmp[j] * inv);
        return;
    }
    double mx = -INFINITY, s = 0.0;
    for (int64_t j = 0; j < len; j++) mx = row[j] > mx ? row[j] : mx;
    for (int64_t j = 0; j < len; j++) {
        row[j] = (real)exp((double)row[j] - mx);
        s += row[j];
    }
    for (int64_t j = 0; j < len; j++) row[j] = (real)(row[j] / s);
}

/* Absorbed query: q_abs[h] = q_nope[h] . W_UK[h] (kv_lora values), with
 * W_UK[h] = rows h*(nope+v) .. +nope of kv_b (ds §2.4, absorbed form). */
static void absorb_query(const fwd *f, const m_layer *L, const real *qh, int64_t h, real *qabs) {
    const fp4m_config *c = f->c;
    const int64_t dn = c->qk_nope_head_dim, r = c->kv_lora_rank;
    const real *W = (const real *)L->kv_b.data + h * (dn + c->v_head_dim) * r;
    for (int64_t k = 0; k < r; k++) {
        real s = 0;
        for (int64_t d = 0; d < dn; d++) s = FMA(qh[d], W[d * r + k], s);
        qabs[k] = s;
    }
}

/* Scores of query (h, t) against keys 0..p (causal: a query sees its own
 * position and earlier ones; later keys are left 0 in the probs row). */
static void scores_row(const fwd *f, const m_layer *L, const real *q, int64_t h, int64_t t,
                       real *row, real *qabs) {
    const fp4m_config *c = f->c;
    const m_cache *C = &f->m->cache[L->index];
    const int64_t nh = c->num_attention_heads, dn = c->qk_nope_head_dim;
    const int64_t dr = c->qk_rope_head_dim, dqk = dn + dr, p = f->pos0 + t;
    const real scale = (real)f->m->softmax_scale;
    const real *qh = q + (t * nh + h) * dqk;
    if (f->o->attn_form == FP4M_ATTN_ABSORB) {
        absorb_query(f, L, qh, h, qabs);
        for (int64_t j = 0; j <= p; j++)
            row[j] = (DOT(qabs, (const real *)C->k + j * C->k_row, c->kv_lora_rank) +
                      DOT(qh + dn, (const real *)C->v + j * C->v_row, dr)) *
                     scale;
        return;
    }
    for (int64_t j = 0; j <= p; j++)
        row[j] = DOT(qh, (const real *)C->k + j * C->k_row + h * dqk, dqk) * scale;
}

/* probs [heads, n, ntot] = softmax(q k^T * scale + causal mask). */
static int attn_probs(fwd *f, const m_layer *L, const real *q, real *probs) {
    const fp4m_config *c = f->c;
    const int64_t nh = c->num_attention_heads, n = f->n, ntot = f->ntot;
    int err = 0;
#pragma omp parallel if (nh * n * ntot * c->kv_lora_rank >= PAR_MIN)
    {
        float *tmp = malloc((size_t)ntot * sizeof(float));
        real *qabs = malloc((size_t)c->kv_lora_rank * sizeof(real));
        if (!tmp || !qabs) {
#pragma omp atomic write
            err = 1;
        }
#pragma omp for collapse(2) schedule(static)
        for (int64_t h = 0; h < nh; h++)
            for (int64_t t = 0; t < n; t++) {
                if (!tmp || !qabs) continue;
                real *row = probs + (h * n + t) * ntot;
                scores_row(f, L, q, h, t, row, qabs);
                softmax_row(f, row, f->pos0 + t + 1, tmp);
            }
        free(tmp);
        free(qabs);
    }
    return err ? fp4_fail("model: out of memory in attention") : 0;
}

/* o [n, heads * v] = probs . V (naive) or W_UV[h] (probs . latent) (absorbed). */
static void attn_values(const fwd *f, const m_layer *L, const real *probs, real *o) {
    const fp4m_config *c = f->c;
    const m_cache *C = &f->m->cache[L->index];
    const int64_t nh = c->num_attention_heads, n = f->n, dv = c->v_head_dim;
    const int64_t dn = c->qk_nope_head_dim, r = c->kv_lora_rank, ntot = f->ntot;
    const bool absorb = f->o->attn_form == FP4M_ATTN_ABSORB;
#pragma omp parallel for collapse(2) schedule(static) if (nh * n * ntot * r >= PAR_MIN)
    for (int64_t t = 0; t < n; t++)
        for (int64_t h = 0; h < nh; h++) {
            const real *pr = probs + (h * n + t) * ntot;
            const int64_t p = f->pos0 + t, width = absorb ? r : dv;
            real acc[width];
            memset(acc, 0, sizeof acc);
            for (int64_t j = 0; j <= p; j++) {
                const real *v = absorb ? (const real *)C->k + j * C->k_row
                                       : (const real *)C->v + j * C->v_row + h * dv;
                for (int64_t d = 0; d < width; d++) acc[d] = FMA(pr[j], v[d], acc[d]);
            }
            real *oh = o + (t * nh + h) * dv;
            if (!absorb) {
                memcpy(oh, acc, (size_t)dv * sizeof(real));
                continue;
            }
            const real *W = (const real *)L->kv_b.data + (h * (dn + dv) + dn) * r;
            for (int64_t d = 0; d < dv; d++) oh[d] = DOT(W + d * r, acc, r);
        }
}

/* The attention block: x [n, H] (normalised) -> out [n, H] (after o_proj). */
static int attention(fwd *f, m_layer *L, const real *x, real *out) {
    const fp4m_config *c = f->c;
    const int64_t n = f->n, nh = c->num_attention_heads, mark = f->nscr;
    const int64_t dqk = c->qk_nope_head_dim + c->qk_rope_head_dim;
    real *q = scratch(f, n * nh * dqk), *ckv = scratch(f, n * c->kv_lora_rank);
    real *kpe = scratch(f, n * c->qk_rope_head_dim), *o = scratch(f, n * nh * c->v_head_dim);
    real *probs = scratch(f, nh * n * f->ntot);
    if (!q || !ckv || !kpe || !o || !probs || attn_query(f, L, x, q) || attn_latent(f, L, x, ckv, kpe))
        return -1;
    if (f->o->attn_form == FP4M_ATTN_ABSORB)
        cache_latent(f, L, ckv, kpe);
    else if (cache_naive(f, L, ckv, kpe))
        return -1;
    if (attn_probs(f, L, q, probs)) return -1;
    const int64_t shape[3] = {nh, n, f->ntot};
    if (fp4m_emit(f->m, L->index, "self_attn.probs", DT, probs, 3, shape, f->pos0, -1, NULL))
        return -1;
    attn_values(f, L, probs, o);
    if (linear(f, &L->o, n, o, out)) return -1;
    scratch_release(f, mark);
    return 0;
}

/* ---------------------------------------------------------------------------
 * SwiGLU MLP (ds §2.7): down(silu(gate(x)) * up(x)); silu as torch computes
 * it, x / (1 + exp(-x)).
 * ------------------------------------------------------------------------- */

/* torch's silu_kernel (Activation.cpp): x / (1 + exp(-x)) with the
 * vectorised exp (SLEEF expf / exp, torch_math.c) when torch_order; the C
 * library's exp otherwise. torch's scalar tail (the last numel % 16 floats or
 * numel % 8 doubles of a call, glibc exp) is not modelled: we use the vector
 * form for every element, so a value does not depend on the batch size. */
static real silu(const fwd *f, real x) {
    if (!f->o->torch_order) return x / ((real)1 + REXP(-x));
#if IS_F64
    return x / ((real)1 + (real)fp4m_torch_exp((double)-x));
#else
    return x / ((real)1 + (real)fp4m_torch_expf((float)-x));
#endif
}

static int mlp(fwd *f, const m_mlp *p, int64_t rows, const real *x, real *y) {
    const int64_t inter = p->gate.out, mark = f->nscr;
    real *g = scratch(f, rows * inter), *u = scratch(f, rows * inter);
    if (!g || !u || linear(f, &p->gate, rows, x, g) || linear(f, &p->up, rows, x, u)) return -1;
    for (int64_t i = 0; i < rows * inter; i++) g[i] = silu(f, g[i]) * u[i];
    if (linear(f, &p->down, rows, g, y)) return -1;
    scratch_release(f, mark);
    return 0;
}

/* ---------------------------------------------------------------------------
 * Router (ds §2.6): s = sigmoid(x W_g^T); selection by s + bias in groups
 * (group score = sum of its top-2), topk_group groups kept, the rest masked
 * (-inf, or 0 as old transformers), top-k experts; combine weights are the
 * unbiased s of the chosen experts, normalised and scaled. Router values are
 * held in double; in FP32 (transformers casts hidden and weight to float32,
 * in every model dtype) every op is done in float.
 * ------------------------------------------------------------------------- */

static bool router_in_f32(const fwd *f) { return !IS_F64 || f->o->router_prec == FP4M_ISLAND_F32; }

/* logits [n, E]. FP32 island in the FP64 path: the fp32 dot product of the
 * float32-cast operands, as F.linear(hidden.float(), weight.float()). */
static void router_logits(fwd *f, const m_layer *L, const real *x, real *logits) {
    const int64_t n = f->n, E = f->c->n_routed_experts, H = f->c->hidden_size;
    const real *W = (const real *)L->router.data;
    const bool f32 = router_in_f32(f);
#pragma omp parallel for collapse(2) schedule(static) if (n * E * H >= PAR_MIN)
    for (int64_t t = 0; t < n; t++)
        for (int64_t e = 0; e < E; e++) {
            const real *xr = x + t * H, *wr = W + e * H;
            if (!IS_F64 || !f32) {
                logits[t * E + e] = DOT(xr, wr, H);
                continue;
            }
            float s = 0.0f;
            for (int64_t k = 0; k < H; k++) s = fmaf((float)xr[k], (float)wr[k], s);
            logits[t * E + e] = (real)s;
        }
}

/* FP32: torch's sigmoid_kernel (UnaryOpsKernel.cpp), vector form: 0 - x,
 * exp (SLEEF expf when torch_order), 1 + e, 1 / that. */
static double sigmoid_r(const fwd *f, double v) {
    if (router_in_f32(f)) {
        const float x = (float)v;
        const float e = f->o->torch_order ? fp4m_torch_expf(0.0f - x) : expf(-x);
        return 1.0f / (1.0f + e);
    }
    return 1.0 / (1.0 + exp(-v));
}

static double add_r(const fwd *f, double a, double b) {
    return router_in_f32(f) ? (double)((float)a + (float)b) : a + b;
}

/* Indices of the k largest of v[0..len) (lowest index on ties), by
 * descending value. */
static void topk(const double *v, int64_t len, int64_t k, int64_t *idx) {
    for (int64_t s = 0; s < k; s++) {
        int64_t best = -1;
        for (int64_t i = 0; i < len; i++) {
            bool used = false;
            for (int64_t u = 0; u < s; u++) used |= idx[u] == i;
            if (!used && (best < 0 || v[i] > v[best])) best = i;
        }
        idx[s] = best;
    }
}

/* With torch_order: torch.topk's CPU order (torch_math.c), which decides
 * the order of the top-k weights and so of their float sum; ties go as
 * torch's. Otherwise by descending value, lowest index on ties. */
static void topk_r(const fwd *f, const double *v, int64_t len, int64_t k, int64_t *idx) {
    if (f->o->torch_order) fp4m_topk_torch(v, len, k, idx);
    else topk(v, len, k, idx);
}

/* Expert selection for one token from its logits. ch, gs: scratch [E], [G]. */
static void route_token(const fwd *f, const m_layer *L, const real *logit, int64_t *idx,
                        double *ch, double *gs) {
    const fp4m_config *c = f->c;
    const int64_t E = c->n_routed_experts, G = c->n_group, per = E / G;
    const real *bias = (const real *)L->bias.data;
    int64_t gidx[G], top2[2];
    for (int64_t e = 0; e < E; e++) ch[e] = add_r(f, sigmoid_r(f, (double)logit[e]), (double)bias[e]);
    /* group score: topk(2).sum(-1); torch's order for two values is x0 + x1 */
    for (int64_t g = 0; g < G; g++) {
        topk_r(f, ch + g * per, per, 2, top2);
        gs[g] = add_r(f, ch[g * per + top2[0]], ch[g * per + top2[1]]);
    }
    topk_r(f, gs, G, c->topk_group, gidx);
    for (int64_t g = 0; g < G; g++) {
        bool keep = false;
        for (int64_t u = 0; u < c->topk_group; u++) keep |= gidx[u] == g;
        if (keep) continue;
        for (int64_t e = g * per; e < (g + 1) * per; e++)
            ch[e] = f->o->group_mask == FP4M_MASK_NEG_INF ? -INFINITY : 0.0;
    }
    topk_r(f, ch, E, c->num_experts_per_tok, idx);
}

/* Combine weights of one token: s[idx], / (sum + 1e-20) (transformers; the
 * official code has no epsilon), * routed_scaling_factor. The sum runs over
 * the top-k slots in their order (torch.topk's with torch_order): as
 * topk_weights.sum(dim=-1) with torch_order (SumKernel.cpp's order, e.g.
 * float32 top-6 = ((((v0 + v4) + v5) + v1) + v2) + v3; float32 top-4 and
 * top-8 are sequential, float64 top-8 is not), else sequentially. */
static void route_weights(const fwd *f, const real *logit, const int64_t *idx, real *w) {
    const fp4m_config *c = f->c;
    const int64_t k = c->num_experts_per_tok;
    const bool torch = f->o->torch_order;
    double v[k];
    for (int64_t s = 0; s < k; s++) v[s] = sigmoid_r(f, (double)logit[idx[s]]);
    if (router_in_f32(f)) {
        float vf[k], sum = 0.0f;
        for (int64_t s = 0; s < k; s++) vf[s] = (float)v[s];
        if (torch) {
            sum = fp4m_sum_f32_torch(vf, k);
        } else {
            for (int64_t s = 0; s < k; s++) sum += vf[s];
        }
        sum += 1e-20f;
        for (int64_t s = 0; s < k; s++) {
            float x = (float)v[s];
            if (c->norm_topk_prob) x = x / sum;
            w[s] = (real)(x * (float)c->routed_scaling_factor);
        }
        return;
    }
    double sum = 0.0;
    if (torch) {
        sum = fp4m_sum_f64_torch(v, k);
    } else {
        for (int64_t s = 0; s < k; s++) sum += v[s];
    }
    sum += 1e-20;
    for (int64_t s = 0; s < k; s++)
        w[s] = (real)((c->norm_topk_prob ? v[s] / sum : v[s]) * c->routed_scaling_factor);
}

static int router(fwd *f, const m_layer *L, const real *x, real *logits, int64_t *idx, real *w) {
    const fp4m_config *c = f->c;
    const int64_t n = f->n, E = c->n_routed_experts, k = c->num_experts_per_tok;
    router_logits(f, L, x, logits);
    if (emit(f, L->index, "mlp.gate", logits, n, E)) return -1;
    double *ch = (double *)scratch_bytes(f, E * (int64_t)sizeof(double));
    double *gs = (double *)scratch_bytes(f, c->n_group * (int64_t)sizeof(double));
    if (!ch || !gs) return -1;
    for (int64_t t = 0; t < n; t++) route_token(f, L, logits + t * E, idx + t * k, ch, gs);
    const int64_t shape[2] = {n, k};
    if (fp4m_emit(f->m, L->index, "mlp.gate.indices", FP4M_DT_I64, idx, 2, shape, f->pos0, -1, NULL))
        return -1;
    for (int64_t i = 0; i < n * k; i++)
        if (idx[i] < 0 || idx[i] >= E) return fp4_fail("model: expert index %" PRId64 " out of range", idx[i]);
    for (int64_t t = 0; t < n; t++) route_weights(f, logits + t * E, idx + t * k, w + t * k);
    return emit(f, L->index, "mlp.gate.weights", w, n, k);
}

/* ---------------------------------------------------------------------------
 * MoE (ds §2.6-2.7): routed experts run on the tokens sent to them, in
 * ascending expert id; out = sum of expert(x) * w (expert order as official
 * and transformers 5.17, or top-k slot order as the Hub code) + shared(x).
 * ------------------------------------------------------------------------- */

/* Runs expert e on its tokens; adds weighted rows to acc (expert order) or
 * stores them per slot in slots [n, k, H] (slot order). */
static int run_expert(fwd *f, m_layer *L, int64_t e, const real *x, const int64_t *idx,
                      const real *w, real *acc, real *slots) {
    const int64_t n = f->n, k = f->c->num_experts_per_tok, H = f->c->hidden_size;
    const int64_t mark = f->nscr;
    int64_t m = 0;
    int64_t *rows = (int64_t *)scratch_bytes(f, n * (int64_t)sizeof(int64_t));
    int64_t *slot = (int64_t *)scratch_bytes(f, n * (int64_t)sizeof(int64_t));
    if (!rows || !slot) return -1;
    for (int64_t t = 0; t < n; t++)
        for (int64_t s = 0; s < k; s++)
            if (idx[t * k + s] == e) {
                rows[m] = t;
                slot[m++] = s;
            }
    if (m == 0) {
        scratch_release(f, mark);
        return 0;
    }
    real *xe = scratch(f, m * H), *ye = scratch(f, m * H);
    if (!xe || !ye || fp4m_expert_acquire(f->m, L->index, e)) return -1;
    for (int64_t i = 0; i < m; i++) memcpy(xe + i * H, x + rows[i] * H, (size_t)H * sizeof(real));
    if (mlp(f, &L->experts[e], m, xe, ye)) return -1;
    const int64_t shape[2] = {m, H};
    if (fp4m_emit(f->m, L->index, "mlp.experts.out", DT, ye, 2, shape, f->pos0, e, rows)) return -1;
    for (int64_t i = 0; i < m; i++) {
        const real wt = w[rows[i] * k + slot[i]];
        real *dst = slots ? slots + (rows[i] * k + slot[i]) * H : acc + rows[i] * H;
        for (int64_t d = 0; d < H; d++) dst[d] = slots ? ye[i * H + d] * wt : dst[d] + ye[i * H + d] * wt;
    }
    scratch_release(f, mark);
    return 0;
}

static int moe(fwd *f, m_layer *L, const real *x, real *out) {
    const fp4m_config *c = f->c;
    const int64_t n = f->n, E = c->n_routed_experts, k = c->num_experts_per_tok, H = c->hidden_size;
    const int64_t mark = f->nscr;
    const bool by_slot = f->o->moe_order == FP4M_MOE_SLOT_ORDER;
    real *logits = scratch(f, n * E), *w = scratch(f, n * k), *acc = scratch(f, n * H);
    int64_t *idx = (int64_t *)scratch_bytes(f, n * k * (int64_t)sizeof(int64_t));
    real *slots = by_slot ? scratch(f, n * k * H) : NULL;
    if (!logits || !w || !acc || !idx || (by_slot && !slots) || router(f, L, x, logits, idx, w))
        return -1;
    for (int64_t e = 0; e < E; e++)
        if (run_expert(f, L, e, x, idx, w, acc, slots)) return -1;
    for (int64_t t = 0; by_slot && t < n; t++)
        for (int64_t s = 0; s < k; s++)
            for (int64_t d = 0; d < H; d++) acc[t * H + d] += slots[(t * k + s) * H + d];
    if (emit(f, L->index, "mlp.routed", acc, n, H)) return -1;
    if (c->n_shared_experts > 0) {
        if (mlp(f, &L->shared, n, x, out) || emit(f, L->index, "mlp.shared_experts", out, n, H))
            return -1;
        for (int64_t i = 0; i < n * H; i++) out[i] = acc[i] + out[i];
    } else {
        memcpy(out, acc, (size_t)(n * H) * sizeof(real));
    }
    scratch_release(f, mark);
    return 0;
}

/* ---------------------------------------------------------------------------
 * Layers and the model (ds §2.1, §2.8)
 * ------------------------------------------------------------------------- */

/* Pre-norm block: h += attn(norm(h)); h += ffn(norm(h)). */
static int layer(fwd *f, int64_t l, real *h) {
    const int64_t n = f->n, H = f->c->hidden_size, mark = f->nscr;
    if (fp4m_layer_acquire(f->m, l)) return -1;
    m_layer *L = &f->m->layers[l];
    real *x = scratch(f, n * H), *a = scratch(f, n * H);
    if (!x || !a || rmsnorm(f, h, n, H, H, &L->attn_norm, x) || emit(f, l, "input_layernorm", x, n, H) ||
        attention(f, L, x, a) || emit(f, l, "self_attn", a, n, H))
        return -1;
    for (int64_t i = 0; i < n * H; i++) h[i] = h[i] + a[i];
    if (rmsnorm(f, h, n, H, H, &L->ffn_norm, x) || emit(f, l, "post_attention_layernorm", x, n, H) ||
        (L->moe ? moe(f, L, x, a) : mlp(f, &L->dense, n, x, a)) || emit(f, l, "mlp", a, n, H))
        return -1;
    for (int64_t i = 0; i < n * H; i++) h[i] = h[i] + a[i];
    if (emit(f, l, "out", h, n, H)) return -1;
    fp4m_layer_release(f->m, l);
    scratch_release(f, mark);
    return 0;
}

static int embed(fwd *f, const int64_t *tokens, real *h) {
    const int64_t H = f->c->hidden_size;
    for (int64_t t = 0; t < f->n; t++) {
        if (tokens[t] < 0 || tokens[t] >= f->c->vocab_size)
            return fp4_fail("model: token %" PRId64 " (at %" PRId64 ") outside the vocabulary of %" PRId64,
                            tokens[t], t, f->c->vocab_size);
        if (fp4m_tensor_rows(f->m, &f->m->embed, tokens[t], 1, h + t * H)) return -1;
    }
    return emit(f, -1, "embed", h, f->n, H);
}

/* final norm over all rows, lm_head over all rows or the last. */
static int head(fwd *f, const real *h, bool last_only, real *logits) {
    const int64_t n = f->n, H = f->c->hidden_size, V = f->c->vocab_size, mark = f->nscr;
    real *x = scratch(f, n * H);
    if (!x || fp4m_head_acquire(f->m) || rmsnorm(f, h, n, H, H, &f->m->final_norm, x) ||
        emit(f, -1, "final_norm", x, n, H))
        return -1;
    const int64_t rows = last_only ? 1 : n;
    real *lg = scratch(f, rows * V);
    if (!lg || linear(f, &f->m->head, rows, x + (n - rows) * H, lg)) return -1;
    const int64_t shape[2] = {rows, V};
    if (fp4m_emit(f->m, -1, "logits", DT, lg, 2, shape, f->pos0 + n - rows, -1, NULL)) return -1;
    if (logits) memcpy(logits, lg, (size_t)(rows * V) * sizeof(real));
    fp4m_head_release(f->m);
    scratch_release(f, mark);
    return 0;
}

static int run(fwd *f, const int64_t *tokens, bool last_only, real *logits) {
    real *h = scratch(f, f->n * f->c->hidden_size);
    if (!h || rope_tables(f) || embed(f, tokens, h)) return -1;
    for (int64_t l = 0; l < f->c->num_hidden_layers; l++)
        if (layer(f, l, h)) return -1;
    return head(f, h, last_only, logits);
}

int FORWARD(fp4m_model *m, const int64_t *tokens, int64_t n, bool last_only, real *logits) {
    fwd f;
    memset(&f, 0, sizeof f);
    f.m = m;
    f.c = &m->cfg;
    f.o = &m->opts;
    f.n = n;
    f.pos0 = m->cache_len;
    f.ntot = m->cache_len + n;
    if (fp4m_cache_reserve(m, f.ntot)) return -1;
    int rc = run(&f, tokens, last_only, logits);
    scratch_release(&f, 0);
    free(f.scr);
    if (rc == 0) m->cache_len = f.ntot;
    return rc;
}
