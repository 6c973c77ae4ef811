/* test_model_util.h - helpers for the model tests: the tiny DeepSeek-V3
 * fixture (tests/data/hf-deepseek-v3-tiny, recorded with transformers 5.17)
 * and a trace callback that compares each traced tensor with the fixture's
 * tensor of the same name, optionally replacing it (teacher forcing).
 *
 * Relative error of a tensor: max_i |a_i - b_i| / max_i |b_i| (b = fixture).
 * One number per tensor, insensitive to elements near zero. */
#ifndef TEST_MODEL_UTIL_H
#define TEST_MODEL_UTIL_H

#include "fp4io.h"
#include "fp4model.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FP4_MODEL_TEST_DATA
#error "FP4_MODEL_TEST_DATA must name tests/data"
#endif
#define TINY_DIR FP4_MODEL_TEST_DATA "/hf-deepseek-v3-tiny"

/* The policy class the manifest gives a linear layer's checkpoint name, in
 * R1's config with every layer but layer 0 an MoE layer (so one config has
 * every kind of name the tests use); -1 if the name is not a linear layer. */
typedef struct fp4t_find_ctx {
    const char *name;
    int lclass;
} fp4t_find_ctx;

static inline int fp4t_find_cb(void *ctx, const fp4m_tensor_info *t) {
    fp4t_find_ctx *x = (fp4t_find_ctx *)ctx;
    if (strcmp(t->name, x->name) != 0) return 0;
    x->lclass = t->lclass;
    return 1;
}

static inline fp4m_lclass fp4t_lclass_of(const char *name) {
    static fp4m_config c;
    static int loaded;
    if (!loaded) {
        loaded = fp4m_config_load(FP4_MODEL_TEST_DATA "/r1-config.json", &c) == 0 ? 1 : -1;
        c.first_k_dense_replace = 1;
        c.num_hidden_layers = 4;
    }
    fp4t_find_ctx x = {name, -1};
    if (loaded > 0) fp4m_manifest(&c, fp4t_find_cb, &x);
    return (fp4m_lclass)x.lclass;
}
#define TINY_ACTS TINY_DIR "/activations.safetensors"

/* Fixture name of a traced op ("layers.1.mlp.gate.1"), or 0 if the fixture
 * has no such tensor. */
static inline int tm_fixture_name(int64_t layer, const char *op, char *buf, size_t n) {
    static const char *const same[] = {"input_layernorm", "self_attn", "post_attention_layernorm",
                                        "mlp", "out", "mlp.gate"};
    const char *fx = NULL;
    if (layer < 0) {
        if (!strcmp(op, "embed") || !strcmp(op, "final_norm") || !strcmp(op, "logits")) fx = op;
        if (fx) snprintf(buf, n, "%s", fx);
        return fx != NULL;
    }
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++)
        if (!strcmp(op, same[i])) fx = op;
    if (!strcmp(op, "self_attn.probs")) fx = "self_attn.1";
    if (!strcmp(op, "mlp.gate.weights")) fx = "mlp.gate.1";
    if (!strcmp(op, "mlp.gate.indices")) fx = "mlp.gate.2";
    if (fx) snprintf(buf, n, "layers.%lld.%s", (long long)layer, fx);
    return fx != NULL;
}

/* Element i of a fixture tensor as double (F64, F32 or I64). */
static inline double tm_get(const fp4_st_tensor *t, int64_t i) {
    const unsigned char *p = t->data;
    if (t->dtype == FP4_ST_F64) {
        double v;
        memcpy(&v, p + 8 * i, 8);
        return v;
    }
    if (t->dtype == FP4_ST_F32) {
        float v;
        memcpy(&v, p + 4 * i, 4);
        return v;
    }
    int64_t v;
    memcpy(&v, p + 8 * i, 8);
    return (double)v;
}

static inline double tm_ev_get(const fp4m_event *ev, int64_t i) {
    if (ev->dtype == FP4M_DT_F64) return ((const double *)ev->data)[i];
    if (ev->dtype == FP4M_DT_F32) return ((const float *)ev->data)[i];
    return (double)((const int64_t *)ev->data)[i];
}

static inline void tm_ev_set(const fp4m_event *ev, int64_t i, double v) {
    if (ev->dtype == FP4M_DT_F64) ((double *)ev->data)[i] = v;
    else if (ev->dtype == FP4M_DT_F32) ((float *)ev->data)[i] = (float)v;
    else ((int64_t *)ev->data)[i] = (int64_t)v;
}

static inline int64_t tm_numel(const fp4m_event *ev) {
    int64_t n = 1;
    for (int32_t i = 0; i < ev->ndim; i++) n *= ev->shape[i];
    return n;
}

#define TM_MAX_OPS 128

typedef struct tm_stat {
    char name[64];
    double rel;       /* worst relative error seen */
    long index_diffs; /* routing: tokens whose expert sets differ */
    long order_diffs; /* routing: tokens whose top-k slot order differs from
                         torch.topk's (same set, other order) */
    long differ, total; /* elements not bit-identical / compared */
} tm_stat;

typedef struct tm_ctx {
    fp4_st_file *acts;
    const char *prefix; /* "f64." or "f32." */
    int force;          /* overwrite traced tensors with the fixture's */
    int64_t k;          /* experts per token */
    tm_stat st[TM_MAX_OPS];
    int nst;
    long compared;
} tm_ctx;

static inline tm_stat *tm_stat_for(tm_ctx *c, const char *name) {
    for (int i = 0; i < c->nst; i++)
        if (!strcmp(c->st[i].name, name)) return &c->st[i];
    if (c->nst == TM_MAX_OPS) return NULL;
    tm_stat *s = &c->st[c->nst++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    return s;
}

/* Routing tensors: the fixture's top-k order is torch's (unsorted), ours is
 * by score; compare per token after sorting by expert id. */
static inline void tm_sorted_slots(const int64_t *idx, int64_t k, int64_t *perm) {
    for (int64_t s = 0; s < k; s++) perm[s] = s;
    for (int64_t a = 1; a < k; a++)
        for (int64_t b = a; b > 0 && idx[perm[b - 1]] > idx[perm[b]]; b--) {
            int64_t t = perm[b];
            perm[b] = perm[b - 1];
            perm[b - 1] = t;
        }
}

/* Compares (and for teacher forcing copies) the routing pair of one call:
 * indices are remembered until the weights arrive. */
static inline void tm_routing(tm_ctx *c, const fp4m_event *ev, const fp4_st_tensor *t,
                              tm_stat *s) {
    static int64_t mine[4096], theirs[4096];
    const int64_t n = ev->shape[0], k = ev->shape[1];
    if (n * k > 4096) return;
    if (!strcmp(ev->op, "mlp.gate.indices")) {
        for (int64_t tok = 0; tok < n; tok++) {
            int64_t pa[64], pb[64], a[64], b[64];
            for (int64_t j = 0; j < k; j++) {
                a[j] = mine[tok * k + j] = (int64_t)tm_ev_get(ev, tok * k + j);
                b[j] = theirs[tok * k + j] = (int64_t)tm_get(t, (ev->pos0 + tok) * k + j);
            }
            tm_sorted_slots(a, k, pa);
            tm_sorted_slots(b, k, pb);
            int diff = 0, order = 0;
            for (int64_t j = 0; j < k; j++) diff |= a[pa[j]] != b[pb[j]];
            for (int64_t j = 0; j < k; j++) order |= a[j] != b[j];
            s->index_diffs += diff;
            s->order_diffs += !diff && order;
            /* forced: the weights will come in the fixture's slot order */
            if (c->force)
                for (int64_t j = 0; j < k; j++) mine[tok * k + j] = theirs[tok * k + j];
        }
        return;
    }
    /* weights: compare slot by slot after matching expert ids */
    double num = 0, den = 0;
    for (int64_t tok = 0; tok < n; tok++) {
        int64_t pa[64], pb[64];
        tm_sorted_slots(mine + tok * k, k, pa);
        tm_sorted_slots(theirs + tok * k, k, pb);
        for (int64_t j = 0; j < k; j++) {
            double x = tm_ev_get(ev, tok * k + pa[j]);
            double y = tm_get(t, (ev->pos0 + tok) * k + pb[j]);
            s->differ += x != y;
            s->total++;
            if (fabs(x - y) > num) num = fabs(x - y);
            if (fabs(y) > den) den = fabs(y);
        }
    }
    if (den > 0 && num / den > s->rel) s->rel = num / den;
}

static inline int tm_trace(void *vctx, const fp4m_event *ev) {
    tm_ctx *c = vctx;
    char fx[64], full[80];
    if (!tm_fixture_name(ev->layer, ev->op, fx, sizeof fx)) return 0;
    snprintf(full, sizeof full, "%s%s", c->prefix, fx);
    const fp4_st_tensor *t = fp4_st_find(c->acts, full);
    if (!t) return 0;
    tm_stat *s = tm_stat_for(c, fx);
    if (!s) return 0;
    c->compared++;
    const int64_t n = tm_numel(ev);
    /* Our rows are positions pos0..; the fixture holds positions 0..63. Probs:
     * ours [heads, n, ntot], fixture [1, heads, 64, 64]. */
    if (!strcmp(ev->op, "mlp.gate.indices") || !strcmp(ev->op, "mlp.gate.weights")) {
        tm_routing(c, ev, t, s);
        if (c->force)
            for (int64_t i = 0; i < n; i++) tm_ev_set(ev, i, tm_get(t, ev->pos0 * ev->shape[1] + i));
        return 0;
    }
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t j;
        if (ev->ndim == 3) { /* probs */
            int64_t h = i / (ev->shape[1] * ev->shape[2]), r = (i / ev->shape[2]) % ev->shape[1];
            int64_t col = i % ev->shape[2];
            j = (h * t->shape[2] + ev->pos0 + r) * t->shape[3] + col;
        } else {
            j = ev->pos0 * ev->shape[1] + i;
        }
        double y = tm_get(t, j), x = tm_ev_get(ev, i);
        s->differ += x != y;
        s->total++;
        if (fabs(x - y) > num || isnan(x)) num = isnan(x) ? INFINITY : fabs(x - y);
        if (fabs(y) > den) den = fabs(y);
        if (c->force) tm_ev_set(ev, i, y);
    }
    double rel = den > 0 ? num / den : num;
    if (rel > s->rel) s->rel = rel;
    return 0;
}

static inline void tm_print(const tm_ctx *c, const char *title) {
    printf("%s\n", title);
    for (int i = 0; i < c->nst; i++) {
        const tm_stat *s = &c->st[i];
        printf("  %-36s rel %.3e  (%ld of %ld elements differ)%s", s->name, s->rel, s->differ,
               s->total, s->index_diffs ? "  ROUTING DIFFERS" : "");
        if (s->order_diffs) printf("  top-k order differs on %ld tokens", s->order_diffs);
        printf("\n");
    }
}

/* Reads an I64 fixture tensor into out (n values). */
static inline int tm_read_i64(fp4_st_file *f, const char *name, int64_t *out, int64_t n) {
    const fp4_st_tensor *t = fp4_st_find(f, name);
    if (!t || t->numel < n) return -1;
    for (int64_t i = 0; i < n; i++) out[i] = (int64_t)tm_get(t, i);
    return 0;
}

/* ---------------------------------------------------------------------------
 * A recorded float32 RoPE table (tests/data/rope-mkl-tiny.txt, the output of
 * `fp4sim model rope`): angle, cos, sin bit patterns. tm_rope_lookup is an
 * fp4m_trig_fn (FP4M_TRIG_USER) that serves angles from it and fails on an
 * angle the table does not hold.
 * ------------------------------------------------------------------------- */

#define TM_ROPE_MAX 4096

typedef struct tm_rope_table {
    uint32_t angle[TM_ROPE_MAX], cos[TM_ROPE_MAX], sin[TM_ROPE_MAX];
    int n;
    long lookups;
} tm_rope_table;

static inline int tm_rope_load(const char *path, tm_rope_table *t) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[512];
    t->n = 0;
    t->lookups = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned a, c, s;
        long long pos, i;
        if (line[0] == '#') continue;
        if (sscanf(line, "%lld %lld %x %x %x", &pos, &i, &a, &c, &s) != 5 || t->n == TM_ROPE_MAX) {
            fclose(f);
            return -1;
        }
        t->angle[t->n] = a, t->cos[t->n] = c, t->sin[t->n] = s;
        t->n++;
    }
    fclose(f);
    return t->n > 0 ? 0 : -1;
}

static inline int tm_rope_lookup(void *ctx, const float *x, float *c, float *s, int64_t n) {
    tm_rope_table *t = ctx;
    for (int64_t k = 0; k < n; k++) {
        const uint32_t a = fp4t_f32_bits(x[k]);
        int j = 0;
        while (j < t->n && t->angle[j] != a) j++;
        if (j == t->n) return -1;
        c[k] = fp4t_f32_from_bits(t->cos[j]);
        s[k] = fp4t_f32_from_bits(t->sin[j]);
        t->lookups++;
    }
    return 0;
}

#endif
