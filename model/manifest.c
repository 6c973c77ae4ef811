/* manifest.c - every tensor of a DeepSeek-V3 / R1 checkpoint (ds §3) from
 * its config: names, shapes, roles and policy classes. The one list; the
 * loader (weights.c), the counts (counts.c), the synthetic checkpoint
 * writer (synth_write.c) and the tests enumerate it. */
#include "model_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

typedef struct emit {
    fp4m_manifest_fn fn;
    void *ctx;
    int rc;
} emit;

/* Emits one tensor (no-op after a callback stopped the walk). */
static void put(emit *e, fp4m_slot slot, int64_t layer, int64_t expert, bool shared, int64_t out,
                int64_t in, int lclass, const char *name) {
    if (e->rc) return;
    fp4m_tensor_info t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "%s", name);
    t.slot = slot;
    t.layer = layer;
    t.expert = expert;
    t.shared = shared;
    t.out = out;
    t.in = in;
    t.lclass = lclass;
    t.linear = lclass >= 0;
    t.synth = fp4m_synth_kind_of(name);
    e->rc = e->fn(e->ctx, &t);
}

static void putf(emit *e, fp4m_slot slot, int64_t layer, int64_t out, int64_t in, int lclass,
                 const char *prefix, const char *suffix) {
    char name[160];
    snprintf(name, sizeof name, "%s.%s", prefix, suffix);
    put(e, slot, layer, -1, false, out, in, lclass, name);
}

static void mlp(emit *e, int64_t l, int64_t expert, bool shared, int64_t H, int64_t inter,
                int lclass, const char *prefix) {
    char name[160];
    snprintf(name, sizeof name, "%s.gate_proj.weight", prefix);
    put(e, FP4M_SLOT_GATE, l, expert, shared, inter, H, lclass, name);
    snprintf(name, sizeof name, "%s.up_proj.weight", prefix);
    put(e, FP4M_SLOT_UP, l, expert, shared, inter, H, lclass, name);
    snprintf(name, sizeof name, "%s.down_proj.weight", prefix);
    put(e, FP4M_SLOT_DOWN, l, expert, shared, H, inter, lclass, name);
}

static void attention(emit *e, const fp4m_config *c, int64_t l, const char *p) {
    const int64_t H = c->hidden_size, nh = c->num_attention_heads;
    const int64_t dqk = c->qk_nope_head_dim + c->qk_rope_head_dim;
    if (c->q_lora_rank > 0) {
        putf(e, FP4M_SLOT_Q_A, l, c->q_lora_rank, H, FP4M_LC_ATTN, p, "self_attn.q_a_proj.weight");
        putf(e, FP4M_SLOT_Q_A_NORM, l, c->q_lora_rank, 0, -1, p, "self_attn.q_a_layernorm.weight");
        putf(e, FP4M_SLOT_Q_B, l, nh * dqk, c->q_lora_rank, FP4M_LC_ATTN, p, "self_attn.q_b_proj.weight");
    } else {
        putf(e, FP4M_SLOT_Q, l, nh * dqk, H, FP4M_LC_ATTN, p, "self_attn.q_proj.weight");
    }
    putf(e, FP4M_SLOT_KV_A, l, c->kv_lora_rank + c->qk_rope_head_dim, H, FP4M_LC_ATTN, p,
         "self_attn.kv_a_proj_with_mqa.weight");
    putf(e, FP4M_SLOT_KV_A_NORM, l, c->kv_lora_rank, 0, -1, p, "self_attn.kv_a_layernorm.weight");
    putf(e, FP4M_SLOT_KV_B, l, nh * (c->qk_nope_head_dim + c->v_head_dim), c->kv_lora_rank,
         FP4M_LC_ATTN, p, "self_attn.kv_b_proj.weight");
    putf(e, FP4M_SLOT_O, l, H, nh * c->v_head_dim, FP4M_LC_O_PROJ, p, "self_attn.o_proj.weight");
}

static void layer(emit *e, const fp4m_config *c, int64_t l) {
    const int64_t H = c->hidden_size;
    char p[64], q[128];
    snprintf(p, sizeof p, "model.layers.%" PRId64, l);
    putf(e, FP4M_SLOT_ATTN_NORM, l, H, 0, -1, p, "input_layernorm.weight");
    putf(e, FP4M_SLOT_FFN_NORM, l, H, 0, -1, p, "post_attention_layernorm.weight");
    attention(e, c, l, p);
    if (!fp4m_layer_is_moe(c, l)) {
        snprintf(q, sizeof q, "%s.mlp", p);
        mlp(e, l, -1, false, H, c->intermediate_size, FP4M_LC_DENSE, q);
        return;
    }
    /* The router stays in the path precision (not a policy class: ds §0,
     * docs/model.md "Precision policies"). */
    putf(e, FP4M_SLOT_ROUTER, l, c->n_routed_experts, H, -1, p, "mlp.gate.weight");
    putf(e, FP4M_SLOT_BIAS, l, c->n_routed_experts, 0, -1, p, "mlp.gate.e_score_correction_bias");
    for (int64_t x = 0; x < c->n_routed_experts && !e->rc; x++) {
        snprintf(q, sizeof q, "%s.mlp.experts.%" PRId64, p, x);
        mlp(e, l, x, false, H, c->moe_intermediate_size, FP4M_LC_EXPERT, q);
    }
    if (c->n_shared_experts > 0) {
        snprintf(q, sizeof q, "%s.mlp.shared_experts", p);
        mlp(e, l, -1, true, H, c->moe_intermediate_size * c->n_shared_experts, FP4M_LC_SHARED, q);
    }
}

int fp4m_manifest_layer(const fp4m_config *c, int64_t l, fp4m_manifest_fn fn, void *ctx) {
    emit e = {fn, ctx, 0};
    if (l < 0 || l >= c->num_hidden_layers)
        return fp4_fail("model: layer %" PRId64 " outside 0..%" PRId64, l, c->num_hidden_layers - 1);
    layer(&e, c, l);
    return e.rc;
}

int fp4m_manifest(const fp4m_config *c, fp4m_manifest_fn fn, void *ctx) {
    emit e = {fn, ctx, 0};
    const int64_t H = c->hidden_size;
    put(&e, FP4M_SLOT_EMBED, -1, -1, false, c->vocab_size, H, -1, "model.embed_tokens.weight");
    for (int64_t l = 0; l < c->num_hidden_layers && !e.rc; l++) layer(&e, c, l);
    put(&e, FP4M_SLOT_FINAL_NORM, -1, -1, false, H, 0, -1, "model.norm.weight");
    if (!c->tie_word_embeddings)
        put(&e, FP4M_SLOT_HEAD, -1, -1, false, c->vocab_size, H, FP4M_LC_HEAD, "lm_head.weight");
    return e.rc;
}
