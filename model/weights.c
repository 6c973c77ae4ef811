/* weights.c - tensor names and shapes from the config (ds §3), checking them
 * against the checkpoint, and converting to the path precision on demand.
 *
 * Streaming design: a layer's tensors are converted just before the layer
 * runs and freed after it (opts.all_resident = false); routed experts are
 * converted only when a token of the batch is routed to them; the embedding
 * is read row by row from the mapping; converted pages of the mapping are
 * dropped (MADV_DONTNEED). So at most one layer's dense tensors plus the
 * experts that batch hits, plus lm_head at the end, are held at once. */
#include "model_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------
 * Descriptors
 * ------------------------------------------------------------------------- */

static int set_tensor(m_tensor *t, int64_t layer, int64_t expert, int64_t out, int64_t in,
                      const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int set_tensor(m_tensor *t, int64_t layer, int64_t expert, int64_t out, int64_t in,
                      const char *fmt, ...) {
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    t->name = strdup(buf);
    if (!t->name) return fp4_fail("model: out of memory");
    t->ndim = in > 0 ? 2 : 1;
    t->out = out;
    t->in = in > 0 ? in : 1;
    t->layer = layer;
    t->expert = expert;
    t->data = NULL;
    return 0;
}

static int set_mlp(m_mlp *p, int64_t l, int64_t e, int64_t H, int64_t inter, const char *prefix) {
    return set_tensor(&p->gate, l, e, inter, H, "%s.gate_proj.weight", prefix) ||
                   set_tensor(&p->up, l, e, inter, H, "%s.up_proj.weight", prefix) ||
                   set_tensor(&p->down, l, e, H, inter, "%s.down_proj.weight", prefix)
               ? -1
               : 0;
}

static int set_attn(m_layer *L, const fp4m_config *c, const char *p) {
    const int64_t l = L->index, H = c->hidden_size, nh = c->num_attention_heads;
    const int64_t dqk = c->qk_nope_head_dim + c->qk_rope_head_dim;
    if (c->q_lora_rank > 0) {
        if (set_tensor(&L->q_a, l, -1, c->q_lora_rank, H, "%s.self_attn.q_a_proj.weight", p) ||
            set_tensor(&L->q_a_norm, l, -1, c->q_lora_rank, 0,
                       "%s.self_attn.q_a_layernorm.weight", p) ||
            set_tensor(&L->q_b, l, -1, nh * dqk, c->q_lora_rank, "%s.self_attn.q_b_proj.weight", p))
            return -1;
    } else if (set_tensor(&L->q, l, -1, nh * dqk, H, "%s.self_attn.q_proj.weight", p)) {
        return -1;
    }
    return set_tensor(&L->kv_a, l, -1, c->kv_lora_rank + c->qk_rope_head_dim, H,
                      "%s.self_attn.kv_a_proj_with_mqa.weight", p) ||
                   set_tensor(&L->kv_a_norm, l, -1, c->kv_lora_rank, 0,
                              "%s.self_attn.kv_a_layernorm.weight", p) ||
                   set_tensor(&L->kv_b, l, -1, nh * (c->qk_nope_head_dim + c->v_head_dim),
                              c->kv_lora_rank, "%s.self_attn.kv_b_proj.weight", p) ||
                   set_tensor(&L->o, l, -1, H, nh * c->v_head_dim, "%s.self_attn.o_proj.weight", p)
               ? -1
               : 0;
}

static int set_ffn(m_layer *L, const fp4m_config *c, const char *p) {
    const int64_t l = L->index, H = c->hidden_size;
    char q[128];
    if (!L->moe) {
        snprintf(q, sizeof q, "%s.mlp", p);
        return set_mlp(&L->dense, l, -1, H, c->intermediate_size, q);
    }
    if (set_tensor(&L->router, l, -1, c->n_routed_experts, H, "%s.mlp.gate.weight", p) ||
        set_tensor(&L->bias, l, -1, c->n_routed_experts, 0, "%s.mlp.gate.e_score_correction_bias",
                   p))
        return -1;
    L->experts = calloc((size_t)c->n_routed_experts, sizeof(m_mlp));
    if (!L->experts) return fp4_fail("model: out of memory");
    for (int64_t e = 0; e < c->n_routed_experts; e++) {
        snprintf(q, sizeof q, "%s.mlp.experts.%" PRId64, p, e);
        if (set_mlp(&L->experts[e], l, e, H, c->moe_intermediate_size, q)) return -1;
    }
    if (c->n_shared_experts < 1) return 0;
    snprintf(q, sizeof q, "%s.mlp.shared_experts", p);
    return set_mlp(&L->shared, l, -1, H, c->moe_intermediate_size * c->n_shared_experts, q);
}

static int set_layer(m_layer *L, const fp4m_config *c, int64_t l) {
    char p[64];
    snprintf(p, sizeof p, "model.layers.%" PRId64, l);
    L->index = l;
    L->moe = fp4m_layer_is_moe(c, l);
    return set_tensor(&L->attn_norm, l, -1, c->hidden_size, 0, "%s.input_layernorm.weight", p) ||
                   set_tensor(&L->ffn_norm, l, -1, c->hidden_size, 0,
                              "%s.post_attention_layernorm.weight", p) ||
                   set_attn(L, c, p) || set_ffn(L, c, p)
               ? -1
               : 0;
}

/* Calls fn on every tensor descriptor of layer L. */
static int for_layer(fp4m_model *m, m_layer *L, int (*fn)(fp4m_model *, m_tensor *)) {
    m_tensor *list[] = {&L->attn_norm, &L->ffn_norm, &L->q_a,  &L->q_a_norm, &L->q_b,
                        &L->q,         &L->kv_a,     &L->kv_a_norm, &L->kv_b, &L->o,
                        &L->dense.gate, &L->dense.up, &L->dense.down, &L->router, &L->bias,
                        &L->shared.gate, &L->shared.up, &L->shared.down};
    for (size_t i = 0; i < sizeof list / sizeof list[0]; i++)
        if (list[i]->name && fn(m, list[i])) return -1;
    return 0;
}

static int for_experts(fp4m_model *m, m_layer *L, int (*fn)(fp4m_model *, m_tensor *)) {
    if (!L->experts) return 0;
    for (int64_t e = 0; e < m->cfg.n_routed_experts; e++) {
        m_mlp *x = &L->experts[e];
        if (fn(m, &x->gate) || fn(m, &x->up) || fn(m, &x->down)) return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------
 * Checking against the checkpoint
 * ------------------------------------------------------------------------- */

static void shape_str(const fp4_st_tensor *t, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int32_t i = 0; i < t->ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%" PRId64, i ? ", " : "", t->shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

static int block_rows(const fp4m_model *m) { return m->cfg.fp8_block[0] ? (int)m->cfg.fp8_block[0] : 128; }
static int block_cols(const fp4m_model *m) { return m->cfg.fp8_block[1] ? (int)m->cfg.fp8_block[1] : 128; }

static int lookup(fp4m_model *m, const char *name, const fp4_st_tensor **out) {
    if (fp4_st_ckpt_get(m->ck, name, out) != FP4_ST_OK)
        return fp4_fail("model: tensor '%s' missing or unreadable: %s", name, fp4_st_errmsg());
    return 0;
}

static bool same_shape(const fp4_st_tensor *t, int32_t ndim, int64_t d0, int64_t d1) {
    return t->ndim == ndim && t->shape[0] == d0 && (ndim == 1 || t->shape[1] == d1);
}

static int check_scale(fp4m_model *m, const m_tensor *w) {
    char sname[300];
    snprintf(sname, sizeof sname, "%s_scale_inv", w->name);
    const fp4_st_tensor *s;
    if (lookup(m, sname, &s)) return -1;
    int64_t r = cdiv(w->out, block_rows(m)), c = cdiv(w->in, block_cols(m));
    if (s->dtype != FP4_ST_F32 || !same_shape(s, 2, r, c)) {
        char got[96];
        shape_str(s, got, sizeof got);
        return fp4_fail("model: tensor '%s': expected F32 [%" PRId64 ", %" PRId64
                        "], checkpoint has %s %s",
                        sname, r, c, s->dtype_name, got);
    }
    return 0;
}

static int check_tensor(fp4m_model *m, m_tensor *w) {
    const fp4_st_tensor *t;
    if (lookup(m, w->name, &t)) return -1;
    if (!same_shape(t, w->ndim, w->out, w->in)) {
        char got[96], want[96];
        shape_str(t, got, sizeof got);
        if (w->ndim == 1)
            snprintf(want, sizeof want, "[%" PRId64 "]", w->out);
        else
            snprintf(want, sizeof want, "[%" PRId64 ", %" PRId64 "]", w->out, w->in);
        return fp4_fail("model: tensor '%s': expected shape %s, checkpoint has %s", w->name, want,
                        got);
    }
    switch (t->dtype) {
    case FP4_ST_F64: case FP4_ST_F32: case FP4_ST_BF16: case FP4_ST_F16: return 0;
    case FP4_ST_F8_E4M3: return w->ndim == 2 ? check_scale(m, w) : fp4_fail("model: tensor '%s': F8_E4M3 vector unsupported", w->name);
    default:
        return fp4_fail("model: tensor '%s': dtype %s unsupported (F64, F32, BF16, F16, F8_E4M3)",
                        w->name, t->dtype_name);
    }
}

/* ---------------------------------------------------------------------------
 * Conversion to the path precision
 * ------------------------------------------------------------------------- */

/* cols elements of t from element `off` into out, exactly (every readable
 * dtype is a subset of double). Unaligned data is read with memcpy. */
static void read_row(const fp4_st_tensor *t, int64_t off, int64_t cols, const float *e4m3,
                     double *out) {
    const uint8_t *p = (const uint8_t *)t->data;
    if (t->dtype == FP4_ST_F64) {
        memcpy(out, p + 8 * off, (size_t)cols * 8);
    } else if (t->dtype == FP4_ST_F32) {
        for (int64_t c = 0; c < cols; c++) {
            float v;
            memcpy(&v, p + 4 * (off + c), 4);
            out[c] = v;
        }
    } else if (t->dtype == FP4_ST_BF16) {
        for (int64_t c = 0; c < cols; c++) {
            uint16_t h;
            memcpy(&h, p + 2 * (off + c), 2);
            uint32_t u = (uint32_t)h << 16;
            float v;
            memcpy(&v, &u, 4);
            out[c] = v;
        }
    } else if (t->dtype == FP4_ST_F16) {
        for (int64_t c = 0; c < cols; c++) {
            uint16_t h;
            memcpy(&h, p + 2 * (off + c), 2);
            out[c] = f16_to_f64(h);
        }
    } else { /* F8_E4M3 (checked on open) */
        for (int64_t c = 0; c < cols; c++) out[c] = e4m3[p[off + c]];
    }
}

/* Rows [r0, r0+nr) of t into dst. FP8: w = e4m3 * scale_inv[r/br][c/bc],
 * exact in double (ds §2.3 dequantises in fp32 then rounds to bf16; the
 * product of a 4-bit and a 24-bit significand is exact in both). */
static int convert_rows(fp4m_model *m, const m_tensor *w, const fp4_st_tensor *t, int64_t r0,
                        int64_t nr, void *dst) {
    float e4m3[256];
    const fp4_st_tensor *s = NULL;
    const int64_t cols = w->in, br = block_rows(m), bc = block_cols(m), sc = cdiv(cols, bc);
    if (t->dtype == FP4_ST_F8_E4M3) {
        char sname[300];
        snprintf(sname, sizeof sname, "%s_scale_inv", w->name);
        if (lookup(m, sname, &s)) return -1;
        for (int i = 0; i < 256; i++) e4m3[i] = e4m3_to_f32((uint8_t)i);
    }
    double *row = malloc((size_t)cols * sizeof(double)), *srow = malloc((size_t)sc * sizeof(double));
    if (!row || !srow) {
        free(row);
        free(srow);
        return fp4_fail("model: out of memory converting '%s'", w->name);
    }
    for (int64_t r = r0; r < r0 + nr; r++) {
        const bool f64 = m->opts.prec == FP4M_F64;
        double *out = f64 ? (double *)dst + (r - r0) * cols : row;
        read_row(t, r * cols, cols, e4m3, out);
        if (s) {
            read_row(s, (r / br) * sc, sc, NULL, srow);
            for (int64_t c = 0; c < cols; c++) out[c] *= srow[c / bc];
        }
        if (!f64)
            for (int64_t c = 0; c < cols; c++) ((float *)dst)[(r - r0) * cols + c] = (float)row[c];
    }
    free(row);
    free(srow);
    return 0;
}

int fp4m_tensor_rows(fp4m_model *m, const m_tensor *w, int64_t r0, int64_t nr, void *dst) {
    const fp4_st_tensor *t;
    if (r0 < 0 || nr < 0 || r0 + nr > w->out)
        return fp4_fail("model: rows %" PRId64 "..%" PRId64 " outside tensor '%s'", r0, r0 + nr,
                        w->name);
    if (lookup(m, w->name, &t)) return -1;
    return convert_rows(m, w, t, r0, nr, dst);
}

static void drop_pages(fp4m_model *m, const char *name, const fp4_st_tensor *t) {
    const fp4_st_file *f;
    int64_t shard = fp4_st_ckpt_shard_of(m->ck, name);
    if (shard >= 0 && fp4_st_ckpt_shard(m->ck, shard, &f) == FP4_ST_OK)
        fp4_st_advise(f, t, FP4_ST_DONTNEED);
}

int fp4m_tensor_load(fp4m_model *m, m_tensor *w) {
    if (w->data || !w->name) return 0;
    const fp4_st_tensor *t;
    if (lookup(m, w->name, &t)) return -1;
    int64_t bytes = w->out * w->in * m->esize;
    w->data = malloc((size_t)(bytes > 0 ? bytes : 1));
    if (!w->data) return fp4_fail("model: out of memory loading '%s'", w->name);
    if (convert_rows(m, w, t, 0, w->out, w->data)) {
        free(w->data);
        w->data = NULL;
        return -1;
    }
    /* Streaming: the converted copy is what we use; give the mapping's pages
     * back now rather than waiting for memory pressure. */
    if (!m->opts.all_resident) drop_pages(m, w->name, t);
    m->bytes_now += bytes;
    if (m->bytes_now > m->bytes_peak) m->bytes_peak = m->bytes_now;
    return 0;
}

void fp4m_tensor_free(fp4m_model *m, m_tensor *w) {
    if (!w->data) return;
    free(w->data);
    w->data = NULL;
    m->bytes_now -= w->out * w->in * m->esize;
}

/* ---------------------------------------------------------------------------
 * Layers
 * ------------------------------------------------------------------------- */

int fp4m_layer_acquire(fp4m_model *m, int64_t l) {
    m_layer *L = &m->layers[l];
    if (L->loaded) return 0;
    if (for_layer(m, L, fp4m_tensor_load)) return -1;
    L->loaded = true;
    return 0;
}

int fp4m_expert_acquire(fp4m_model *m, int64_t l, int64_t e) {
    m_mlp *x = &m->layers[l].experts[e];
    return fp4m_tensor_load(m, &x->gate) || fp4m_tensor_load(m, &x->up) ||
                   fp4m_tensor_load(m, &x->down)
               ? -1
               : 0;
}

static int free_one(fp4m_model *m, m_tensor *t) {
    fp4m_tensor_free(m, t);
    return 0;
}

void fp4m_layer_release(fp4m_model *m, int64_t l) {
    if (m->opts.all_resident) return;
    m_layer *L = &m->layers[l];
    for_layer(m, L, free_one);
    for_experts(m, L, free_one);
    L->loaded = false;
}

int fp4m_head_acquire(fp4m_model *m) {
    return fp4m_tensor_load(m, &m->final_norm) || fp4m_tensor_load(m, &m->head) ? -1 : 0;
}

void fp4m_head_release(fp4m_model *m) {
    if (m->opts.all_resident) return;
    fp4m_tensor_free(m, &m->head);
}

static int free_name(fp4m_model *m, m_tensor *t) {
    fp4m_tensor_free(m, t);
    free(t->name);
    t->name = NULL;
    return 0;
}

void fp4m_weights_free(fp4m_model *m) {
    if (m->layers) {
        for (int64_t l = 0; l < m->cfg.num_hidden_layers; l++) {
            m_layer *L = &m->layers[l];
            for_layer(m, L, free_name);
            for_experts(m, L, free_name);
            free(L->experts);
        }
        free(m->layers);
        m->layers = NULL;
    }
    free_name(m, &m->embed);
    free_name(m, &m->final_norm);
    free_name(m, &m->head);
}

/* Every tensor the config implies must be in the checkpoint with its shape
 * and a readable dtype before any data is touched. */
static int check_all(fp4m_model *m) {
    if (check_tensor(m, &m->embed) || check_tensor(m, &m->final_norm) ||
        check_tensor(m, &m->head))
        return -1;
    for (int64_t l = 0; l < m->cfg.num_hidden_layers; l++)
        if (for_layer(m, &m->layers[l], check_tensor) || for_experts(m, &m->layers[l], check_tensor))
            return -1;
    return 0;
}

static int load_all(fp4m_model *m) {
    if (fp4m_head_acquire(m)) return -1;
    for (int64_t l = 0; l < m->cfg.num_hidden_layers; l++) {
        if (fp4m_layer_acquire(m, l) || for_experts(m, &m->layers[l], fp4m_tensor_load)) return -1;
    }
    return 0;
}

int fp4m_weights_init(fp4m_model *m) {
    const fp4m_config *c = &m->cfg;
    m->layers = calloc((size_t)c->num_hidden_layers, sizeof(m_layer));
    if (!m->layers) return fp4_fail("model: out of memory");
    if (set_tensor(&m->embed, -1, -1, c->vocab_size, c->hidden_size, "model.embed_tokens.weight") ||
        set_tensor(&m->final_norm, -1, -1, c->hidden_size, 0, "model.norm.weight") ||
        set_tensor(&m->head, -1, -1, c->vocab_size, c->hidden_size,
                   c->tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight"))
        return -1;
    for (int64_t l = 0; l < c->num_hidden_layers; l++)
        if (set_layer(&m->layers[l], c, l)) return -1;
    if (check_all(m)) return -1;
    return m->opts.all_resident ? load_all(m) : 0;
}
