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
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------
 * Descriptors, from the manifest (manifest.c)
 * ------------------------------------------------------------------------- */

/* The descriptor a manifest entry fills. */
static m_tensor *slot_of(fp4m_model *m, const fp4m_tensor_info *t) {
    if (t->layer < 0)
        return t->slot == FP4M_SLOT_EMBED ? &m->embed
               : t->slot == FP4M_SLOT_FINAL_NORM ? &m->final_norm : &m->head;
    m_layer *L = &m->layers[t->layer];
    m_mlp *p = t->expert >= 0 ? &L->experts[t->expert] : t->shared ? &L->shared : &L->dense;
    switch (t->slot) {
    case FP4M_SLOT_ATTN_NORM: return &L->attn_norm;
    case FP4M_SLOT_FFN_NORM: return &L->ffn_norm;
    case FP4M_SLOT_Q_A: return &L->q_a;
    case FP4M_SLOT_Q_A_NORM: return &L->q_a_norm;
    case FP4M_SLOT_Q_B: return &L->q_b;
    case FP4M_SLOT_Q: return &L->q;
    case FP4M_SLOT_KV_A: return &L->kv_a;
    case FP4M_SLOT_KV_A_NORM: return &L->kv_a_norm;
    case FP4M_SLOT_KV_B: return &L->kv_b;
    case FP4M_SLOT_O: return &L->o;
    case FP4M_SLOT_GATE: return &p->gate;
    case FP4M_SLOT_UP: return &p->up;
    case FP4M_SLOT_DOWN: return &p->down;
    case FP4M_SLOT_ROUTER: return &L->router;
    default: return &L->bias;
    }
}

static int set_from_info(m_tensor *w, const fp4m_tensor_info *t) {
    w->name = strdup(t->name);
    if (!w->name) return fp4_fail_kind(FP4_ERR_NOMEM, "model: out of memory");
    w->ndim = t->in > 0 ? 2 : 1;
    w->out = t->out;
    w->in = t->in > 0 ? t->in : 1;
    w->layer = t->layer;
    w->expert = t->expert;
    w->lclass = t->lclass;
    w->data = NULL;
    return 0;
}

static int place(void *ctx, const fp4m_tensor_info *t) {
    return set_from_info(slot_of(ctx, t), t);
}

/* Layer records and every descriptor; a tied lm_head reads the embedding. */
static int set_descriptors(fp4m_model *m) {
    const fp4m_config *c = &m->cfg;
    for (int64_t l = 0; l < c->num_hidden_layers; l++) {
        m_layer *L = &m->layers[l];
        L->index = l;
        L->moe = fp4m_layer_is_moe(c, l);
        if (L->moe && !(L->experts = calloc((size_t)c->n_routed_experts, sizeof(m_mlp))))
            return fp4_fail_kind(FP4_ERR_NOMEM, "model: out of memory");
    }
    if (fp4m_manifest(c, place, m)) return -1;
    if (!c->tie_word_embeddings) return 0;
    fp4m_tensor_info head = {.slot = FP4M_SLOT_HEAD, .layer = -1, .expert = -1, .out = c->vocab_size,
                             .in = c->hidden_size, .linear = true, .lclass = FP4M_LC_HEAD};
    snprintf(head.name, sizeof head.name, "model.embed_tokens.weight");
    return set_from_info(&m->head, &head);
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
        return fp4_fail_wrap("model: tensor '%s' missing or unreadable", name);
    return 0;
}

static bool same_shape(const fp4_st_tensor *t, int32_t ndim, int64_t d0, int64_t d1) {
    return t->ndim == ndim && t->shape[0] == d0 && (ndim == 1 || t->shape[1] == d1);
}

/* ---------------------------------------------------------------------------
 * How a weight is stored, detected per tensor from what the checkpoint holds
 * (recipes.md §7; ds §3). A linear weight X.weight [out, in] may be:
 *   plain      X.weight F64/F32/BF16/F16 [out, in]
 *   FP8 block  X.weight F8_E4M3 [out, in] + X.weight_scale_inv F32
 *              [ceil(out/br), ceil(in/bc)]                        (§7.3)
 *   ModelOpt   X.weight U8 [out, in/2] + X.weight_scale F8_E4M3 [out, in/16]
 *   NVFP4      + X.weight_scale_2 F32 [] or [1] (+ X.input_scale)  (§7.1)
 *   compressed X.weight_packed U8 [out, in/2] + X.weight_scale F8_E4M3
 *   -tensors   [out, in/16] + X.weight_global_scale F32 [1]
 *   NVFP4      (+ X.input_global_scale)                            (§2.8, §7.2)
 * input_scale / input_global_scale are optional: ModelOpt's W4A4 export and
 * llm-compressor's NVFP4 scheme always write them, weight-only schemes
 * (NVFP4A16) do not; absent, the stored form says 0 (dynamic activations).
 * ------------------------------------------------------------------------- */

typedef enum w_format { WF_PLAIN = 0, WF_FP8_BLOCK, WF_NVFP4_MODELOPT, WF_NVFP4_CT } w_format;

typedef struct w_src {
    w_format fmt;
    const fp4_st_tensor *t;     /* the values: X.weight, or X.weight_packed */
    const fp4_st_tensor *scale; /* X.weight_scale_inv (FP8) or X.weight_scale (NVFP4) */
    float wglobal, iglobal;     /* NVFP4 global scales as stored; iglobal 0: absent */
} w_src;

#define NVFP4_BLOCK 16 /* elements per E4M3 block scale (recipes.md §1) */

/* Module name of a weight: "X" for "X.weight". */
static void stem_of(const m_tensor *w, char *buf, size_t n) {
    size_t k = strlen(w->name);
    if (k >= 7 && strcmp(w->name + k - 7, ".weight") == 0) k -= 7;
    snprintf(buf, n, "%.*s", (int)k, w->name);
}

static const w_format k_conv_format[FP4_DISK_COUNT] = {
    [FP4_DISK_MODELOPT] = WF_NVFP4_MODELOPT,
    [FP4_DISK_CT] = WF_NVFP4_CT,
    [FP4_DISK_DEEPSEEK_FP8] = WF_FP8_BLOCK,
};

/* A quantized weight through ref/'s reader of the on-disk conventions
 * (ref/disk.c: every dtype, shape and tensor scale checked there). */
static int resolve_quantized(fp4m_model *m, const m_tensor *w, fp4_disk_conv conv, w_src *s) {
    char stem[300];
    stem_of(w, stem, sizeof stem);
    const fp4_disk_want want = {w->out, w->in, {block_rows(m), block_cols(m)}};
    fp4_disk_tensor d;
    if (fp4_disk_read(m->ck, NULL, conv, stem, &want, &d)) return fp4_fail_wrap("model");
    fp4_disk_names nm;
    fp4_disk_names_of(conv, stem, &nm);
    s->fmt = k_conv_format[conv];
    s->wglobal = d.global_stored;
    s->iglobal = d.has_input ? d.input_stored : 0;
    return lookup(m, nm.codes, &s->t) || lookup(m, nm.scale, &s->scale) ? -1 : 0;
}

/* Finds w's tensors and checks their dtypes and shapes (not the data). */
static int resolve(fp4m_model *m, const m_tensor *w, w_src *s) {
    memset(s, 0, sizeof *s);
    if (w->ndim == 2) {
        char stem[300];
        fp4_disk_conv conv;
        stem_of(w, stem, sizeof stem);
        int rc = fp4_disk_detect(m->ck, NULL, stem, &conv);
        if (rc < 0) return fp4_fail_wrap("model");
        if (rc == 0) return resolve_quantized(m, w, conv, s);
    }
    if (lookup(m, w->name, &s->t)) return -1;
    if (!same_shape(s->t, w->ndim, w->out, w->in)) {
        char got[96], want[96];
        shape_str(s->t, got, sizeof got);
        if (w->ndim == 1)
            snprintf(want, sizeof want, "[%" PRId64 "]", w->out);
        else
            snprintf(want, sizeof want, "[%" PRId64 ", %" PRId64 "]", w->out, w->in);
        return fp4_fail("model: tensor '%s': expected shape %s, checkpoint has %s", w->name, want,
                        got);
    }
    switch (s->t->dtype) {
    case FP4_ST_F64: case FP4_ST_F32: case FP4_ST_BF16: case FP4_ST_F16: return 0;
    case FP4_ST_F8_E4M3: return fp4_fail("model: tensor '%s': F8_E4M3 vector unsupported", w->name);
    default:
        return fp4_fail("model: tensor '%s': dtype %s unsupported (F64, F32, BF16, F16, F8_E4M3; "
                        "U8 for NVFP4 linear weights)",
                        w->name, s->t->dtype_name);
    }
}

/* What the quantization config says about an NVFP4 tensor: the layout must
 * be the configured producer's, and its module must not be excluded. */
static int check_against_config(const fp4m_model *m, const m_tensor *w, const w_src *s) {
    const fp4m_quant_config *q = &m->quant;
    const bool ct = s->fmt == WF_NVFP4_CT;
    if ((ct && q->method == FP4M_QUANT_NVFP4_MODELOPT) || (!ct && q->method == FP4M_QUANT_NVFP4_CT))
        return fp4_fail("model: tensor '%s' is stored in the %s layout but %s configures %s",
                        w->name, ct ? "compressed-tensors" : "ModelOpt", q->source,
                        fp4m_quant_method_name(q->method));
    char module[300];
    const char *pattern = NULL;
    stem_of(w, module, sizeof module);
    if ((q->method == FP4M_QUANT_NVFP4_MODELOPT || q->method == FP4M_QUANT_NVFP4_CT) &&
        fp4m_quant_excluded(q, module, &pattern))
        return fp4_fail("model: tensor '%s' is stored as NVFP4 but %s excludes module '%s' "
                        "(pattern '%s')",
                        w->name, q->source, module, pattern);
    return 0;
}

static int check_tensor(fp4m_model *m, m_tensor *w) {
    w_src s;
    if (resolve(m, w, &s)) return -1;
    return s.fmt == WF_NVFP4_MODELOPT || s.fmt == WF_NVFP4_CT ? check_against_config(m, w, &s) : 0;
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

/* Block scales of NVFP4 row r. They are UE4M3 (PTX ISA §5.2.3: 7-bit codes,
 * MSB zero; docs/formats.md): a byte with bit 7 set would be a negative
 * E4M3 scale and 0x7F is NaN. No producer writes either (the scale is
 * bamax/6 >= 0, clamped or saturated; recipes.md §2), so they mean a corrupt
 * or misread tensor. */
static int check_scale_row(const fp4_st_tensor *s, int64_t r, int64_t nb) {
    const uint8_t *p = (const uint8_t *)s->data + r * nb;
    for (int64_t b = 0; b < nb; b++) {
        if (p[b] & 0x80)
            return fp4_fail("model: tensor '%s': scale byte 0x%02X at row %" PRId64 ", block %" PRId64
                            " has bit 7 set (a negative E4M3; NVFP4 block scales are UE4M3)",
                            s->name, p[b], r, b);
        if (p[b] == 0x7F)
            return fp4_fail("model: tensor '%s': scale byte 0x7F (NaN) at row %" PRId64
                            ", block %" PRId64,
                            s->name, r, b);
    }
    return 0;
}

/* NVFP4 row r: w = e2m1[nibble] * fp32(scale) * weight_scale_2 (ModelOpt,
 * decode polarity, recipes.md §7.1) or e2m1[nibble] * fp32(scale) /
 * weight_global_scale (compressed-tensors, encode polarity, §7.2; using one
 * rule for both is bug A3). Element 2j is the low nibble of byte j (§0 item
 * 7). e2m1 * scale has at most 2 + 4 significant bits, so the decode product
 * (<= 30 bits) is exact in double; the encode quotient is rounded once, to
 * double. */
static void nvfp4_row(const w_src *s, int64_t r, int64_t cols, const float *e2m1,
                      const float *e4m3, double *out) {
    const uint8_t *codes = (const uint8_t *)s->t->data + r * (cols / 2);
    const uint8_t *sc = (const uint8_t *)s->scale->data + r * (cols / NVFP4_BLOCK);
    const double g = s->wglobal;
    for (int64_t c = 0; c < cols; c++) {
        uint8_t nib = c & 1 ? e2m1x2_odd(codes[c / 2]) : e2m1x2_even(codes[c / 2]);
        double v = (double)e2m1[nib] * (double)e4m3[sc[c / NVFP4_BLOCK]];
        out[c] = s->fmt == WF_NVFP4_MODELOPT ? v * g : v / g;
    }
}

/* Rows [r0, r0+nr) of w into dst in the path precision. FP8: w = e4m3 *
 * scale_inv[r/br][c/bc], exact in double (ds §2.3 dequantises in fp32 then
 * rounds to bf16; the product of a 4-bit and a 24-bit significand is exact
 * in both). The FP32 path rounds the double once to float; for the NVFP4
 * encode quotient that double rounding gives the correctly rounded float of
 * the exact quotient (Figueroa, "When is double rounding innocuous?", 1995:
 * division rounded to 53 bits then 24 is innocuous since 53 >= 2*24 + 2). */
static int convert_rows(fp4m_model *m, const m_tensor *w, const w_src *s, int64_t r0, int64_t nr,
                        void *dst) {
    float e4m3[256], e2m1[16];
    const int64_t cols = w->in, br = block_rows(m), bc = block_cols(m), sc = cdiv(cols, bc);
    const bool f64 = m->opts.prec == FP4M_F64;
    for (int i = 0; i < 256; i++) e4m3[i] = e4m3_to_f32((uint8_t)i);
    for (int i = 0; i < 16; i++) e2m1[i] = e2m1_to_f32((uint8_t)i);
    double *row = malloc((size_t)cols * sizeof(double)), *srow = malloc((size_t)sc * sizeof(double));
    if (!row || !srow) {
        free(row);
        free(srow);
        return fp4_fail("model: out of memory converting '%s'", w->name);
    }
    int rc = 0;
    for (int64_t r = r0; r < r0 + nr && !rc; r++) {
        double *out = f64 ? (double *)dst + (r - r0) * cols : row;
        if (s->fmt == WF_NVFP4_MODELOPT || s->fmt == WF_NVFP4_CT) {
            if ((rc = check_scale_row(s->scale, r, cols / NVFP4_BLOCK))) break;
            nvfp4_row(s, r, cols, e2m1, e4m3, out);
        } else {
            read_row(s->t, r * cols, cols, e4m3, out);
        }
        if (s->fmt == WF_FP8_BLOCK) {
            read_row(s->scale, (r / br) * sc, sc, NULL, srow);
            for (int64_t c = 0; c < cols; c++) out[c] *= srow[c / bc];
        }
        if (!f64)
            for (int64_t c = 0; c < cols; c++) ((float *)dst)[(r - r0) * cols + c] = (float)row[c];
    }
    free(row);
    free(srow);
    return rc;
}

/* ---------------------------------------------------------------------------
 * The stored quantized form (fp4m_stored_weight), owned copies
 * ------------------------------------------------------------------------- */

static int64_t stored_code_bytes(const fp4m_stored_weight *st) {
    return fp4_tensor_codes_bytes(&st->t);
}

static int64_t stored_scale_bytes(const fp4m_stored_weight *st) {
    return fp4_tensor_scales_count(&st->t) * fp4_tensor_scale_bytes(&st->t);
}

/* Bytes a stored form holds (counted in bytes_now / bytes_peak). */
static int64_t stored_bytes(const fp4m_stored_weight *st) {
    return st ? (int64_t)sizeof *st + stored_code_bytes(st) + stored_scale_bytes(st) : 0;
}

static void free_stored(m_tensor *w) {
    if (!w->stored) return;
    free((void *)w->stored->t.codes);
    free((void *)w->stored->t.scales);
    free(w->stored);
    w->stored = NULL;
}

/* Copies codes, block scales and global scales of an FP8-block or NVFP4
 * tensor into w->stored (nothing for plain dtypes). The FP8 scale_inv grid
 * is copied as float (F32 little-endian, as the reader assumes). */
static int make_stored(fp4m_model *m, m_tensor *w, const w_src *s) {
    if (s->fmt == WF_PLAIN) return 0;
    fp4m_stored_weight *st = calloc(1, sizeof *st);
    if (!st) return fp4_fail("model: out of memory loading '%s'", w->name);
    if (s->fmt == WF_FP8_BLOCK) {
        st->kind = FP4M_STORED_FP8_BLOCK;
        st->t = fp4_tensor_fp8_block(w->out, w->in, NULL, NULL, (int32_t)block_rows(m));
        st->t.block = (int32_t)block_cols(m);
    } else {
        st->kind = FP4M_STORED_NVFP4;
        st->gkind = s->fmt == WF_NVFP4_MODELOPT ? FP4M_GSCALE_DECODE : FP4M_GSCALE_ENCODE;
        st->weight_global = s->wglobal;
        st->input_global = s->iglobal;
        /* The GEMM takes a decode scale: the consumer's RN32(1/encode) (recipes.md §2.8). */
        st->t = fp4_tensor_nvfp4(w->out, w->in, NULL, NULL,
                                 st->gkind == FP4M_GSCALE_ENCODE ? 1.0f / s->wglobal : s->wglobal);
    }
    uint8_t *codes = malloc((size_t)stored_code_bytes(st));
    void *scales = malloc((size_t)stored_scale_bytes(st));
    st->t.codes = codes;
    st->t.scales = scales;
    w->stored = st;
    if (!codes || !scales) {
        free_stored(w);
        return fp4_fail("model: out of memory loading '%s'", w->name);
    }
    memcpy(codes, s->t->data, (size_t)stored_code_bytes(st));
    memcpy(scales, s->scale->data, (size_t)stored_scale_bytes(st));
    return 0;
}

int fp4m_tensor_rows(fp4m_model *m, const m_tensor *w, int64_t r0, int64_t nr, void *dst) {
    if (r0 < 0 || nr < 0 || r0 + nr > w->out)
        return fp4_fail("model: rows %" PRId64 "..%" PRId64 " outside tensor '%s'", r0, r0 + nr,
                        w->name);
    if (!m->ck) return fp4m_synth_fill(m, w, r0, nr, dst); /* synthetic weights */
    w_src s;
    if (resolve(m, w, &s)) return -1;
    return convert_rows(m, w, &s, r0, nr, dst);
}

static void drop_pages(fp4m_model *m, const char *name, const fp4_st_tensor *t) {
    const fp4_st_file *f;
    int64_t shard = fp4_st_ckpt_shard_of(m->ck, name);
    if (shard >= 0 && fp4_st_ckpt_shard(m->ck, shard, &f) == FP4_ST_OK)
        fp4_st_advise(f, t, FP4_ST_DONTNEED);
}

int fp4m_tensor_load(fp4m_model *m, m_tensor *w) {
    if (w->data || !w->name) return 0;
    w_src s = {.fmt = WF_PLAIN};
    if (m->ck && resolve(m, w, &s)) return -1;
    int64_t bytes = w->out * w->in * m->esize;
    w->data = malloc((size_t)(bytes > 0 ? bytes : 1));
    if (!w->data) return fp4_fail("model: out of memory loading '%s'", w->name);
    /* Synthetic weights (synth.c) are generated, not read: no stored form,
     * no mapping to drop. */
    int rc = m->ck ? convert_rows(m, w, &s, 0, w->out, w->data) || make_stored(m, w, &s)
                   : fp4m_synth_fill(m, w, 0, w->out, w->data);
    if (rc) {
        free(w->data);
        w->data = NULL;
        return -1;
    }
    /* Streaming: the converted copy is what we use; give the mapping's pages
     * back now rather than waiting for memory pressure. */
    if (m->ck && !m->opts.all_resident) {
        drop_pages(m, s.t->name, s.t);
        if (s.scale) drop_pages(m, s.scale->name, s.scale);
    }
    bytes += stored_bytes(w->stored);
    m->bytes_now += bytes;
    if (m->bytes_now > m->bytes_peak) m->bytes_peak = m->bytes_now;
    return 0;
}

void fp4m_tensor_free(fp4m_model *m, m_tensor *w) {
    if (!w->data) return;
    free(w->data);
    w->data = NULL;
    m->bytes_now -= w->out * w->in * m->esize + stored_bytes(w->stored);
    free_stored(w);
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
    fp4m_quant_config_free(&m->quant);
}

/* The quantization config in the checkpoint's directory (that of its index
 * or single file): hf_quant_config.json, config.json (fp4m_quant_config). */
static int load_quant(fp4m_model *m) {
    const char *p = fp4_st_ckpt_path(m->ck), *slash = p ? strrchr(p, '/') : NULL;
    char *dir = !slash ? strdup(".") : strndup(p, slash == p ? 1 : (size_t)(slash - p));
    if (!dir) return fp4_fail("model: out of memory");
    int rc = fp4m_quant_config_load(dir, &m->quant);
    free(dir);
    return rc;
}

/* Every tensor the config implies must be in the checkpoint with its shape
 * and a readable dtype before any data is touched. */
static int check_all(fp4m_model *m) {
    if (load_quant(m)) return -1;
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
    if (set_descriptors(m)) return -1;
    if (m->ck && check_all(m)) return -1; /* synthetic weights need no check */
    return m->opts.all_resident ? load_all(m) : 0;
}
