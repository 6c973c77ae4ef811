/* counts.c - parameter and byte accounting per layer and storage kind, and
 * the `fp4sim model info` text. For R1 the numbers reproduce ds §3's table
 * (attention 187 105 280 params, MoE layer 11 507 286 272, main model
 * 671.03 B); tests/test_model_config.c checks them. */
#include "model_internal.h"

#include <inttypes.h>
#include <string.h>

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

static void add_counts(fp4m_counts *dst, const fp4m_counts *src, int64_t times) {
    dst->params += src->params * times;
    for (int s = 0; s < FP4M_STORE_COUNT; s++) dst->bytes[s] += src->bytes[s] * times;
}

/* One linear weight [out, in]. FP8: e4m3 + f32 scale_inv per block (ds §3);
 * NVFP4: E2M1 nibbles + one E4M3 byte per 16 in a row + one f32 per tensor. */
static void add_linear(fp4m_counts *c, const fp4m_config *cfg, int64_t out, int64_t in) {
    int64_t n = out * in;
    int64_t br = cfg->fp8_block[0] ? cfg->fp8_block[0] : 128;
    int64_t bc = cfg->fp8_block[1] ? cfg->fp8_block[1] : 128;
    c->params += n;
    c->bytes[FP4M_STORE_F64] += 8 * n;
    c->bytes[FP4M_STORE_F32] += 4 * n;
    c->bytes[FP4M_STORE_BF16] += 2 * n;
    c->bytes[FP4M_STORE_FP8] += n + 4 * cdiv(out, br) * cdiv(in, bc);
    c->bytes[FP4M_STORE_NVFP4] += out * cdiv(in, 2) + out * cdiv(in, 16) + 4;
}

/* A tensor kept in high precision by every quantised recipe: bf16 in the
 * checkpoint (f32 for e_score_correction_bias, ds §3). */
static void add_plain(fp4m_counts *c, int64_t n, int ckpt_bytes) {
    c->params += n;
    c->bytes[FP4M_STORE_F64] += 8 * n;
    c->bytes[FP4M_STORE_F32] += 4 * n;
    c->bytes[FP4M_STORE_BF16] += 2 * n;
    c->bytes[FP4M_STORE_FP8] += ckpt_bytes * n;
    c->bytes[FP4M_STORE_NVFP4] += ckpt_bytes * n;
}

/* Sorts one manifest entry of a layer into its unit (ds §3). */
typedef struct count_ctx {
    const fp4m_config *c;
    fp4m_layer_counts *out;
} count_ctx;

static int count_tensor(void *ctx, const fp4m_tensor_info *t) {
    count_ctx *x = ctx;
    fp4m_layer_counts *o = x->out;
    switch (t->slot) {
    case FP4M_SLOT_ATTN_NORM: case FP4M_SLOT_FFN_NORM: case FP4M_SLOT_Q_A_NORM:
    case FP4M_SLOT_KV_A_NORM:
        add_plain(&o->norms, t->out, 2);
        break;
    case FP4M_SLOT_ROUTER: add_plain(&o->router, t->out * t->in, 2); break;
    case FP4M_SLOT_BIAS: add_plain(&o->router, t->out, 4); break; /* f32 in the checkpoint */
    case FP4M_SLOT_GATE: case FP4M_SLOT_UP: case FP4M_SLOT_DOWN:
        if (t->expert > 0) break; /* one routed expert counted, times n_routed_experts below */
        add_linear(t->expert == 0 ? &o->expert : t->shared ? &o->shared : &o->mlp, x->c, t->out,
                   t->in);
        break;
    default: add_linear(&o->attn, x->c, t->out, t->in); break; /* q_a, q_b, q, kv_a, kv_b, o */
    }
    return 0;
}

void fp4m_count_layer(const fp4m_config *c, int64_t l, fp4m_layer_counts *out) {
    memset(out, 0, sizeof *out);
    count_ctx x = {c, out};
    fp4m_manifest_layer(c, l, count_tensor, &x);
    add_counts(&out->total, &out->attn, 1);
    add_counts(&out->total, &out->norms, 1);
    if (!fp4m_layer_is_moe(c, l)) {
        add_counts(&out->total, &out->mlp, 1);
        out->active = out->total;
        return;
    }
    out->active = out->total;
    add_counts(&out->active, &out->router, 1);
    add_counts(&out->active, &out->shared, 1);
    add_counts(&out->active, &out->expert, c->num_experts_per_tok);
    add_counts(&out->total, &out->router, 1);
    add_counts(&out->total, &out->shared, 1);
    add_counts(&out->total, &out->expert, c->n_routed_experts);
}

void fp4m_count_outer(const fp4m_config *c, fp4m_counts *out) {
    memset(out, 0, sizeof *out);
    int64_t n = c->vocab_size * c->hidden_size;
    add_plain(out, n, 2); /* embedding: bf16 in every recipe */
    if (!c->tie_word_embeddings) add_plain(out, n, 2);
    add_plain(out, c->hidden_size, 2);
}

void fp4m_count_model(const fp4m_config *c, fp4m_counts *total, fp4m_counts *active) {
    fp4m_count_outer(c, total);
    *active = *total;
    for (int64_t l = 0; l < c->num_hidden_layers; l++) {
        fp4m_layer_counts lc;
        fp4m_count_layer(c, l, &lc);
        add_counts(total, &lc.total, 1);
        add_counts(active, &lc.active, 1);
    }
}

static void print_row(FILE *f, const char *what, const fp4m_counts *c) {
    fprintf(f, "  %-22s %16" PRId64, what, c->params);
    for (int s = 0; s < FP4M_STORE_COUNT; s++) fprintf(f, " %18" PRId64, c->bytes[s]);
    fputc('\n', f);
}

static void print_config(const fp4m_config *c, FILE *f) {
    fprintf(f, "DeepSeek-V3 architecture (config layout %s, dtype %s)\n", c->layout,
            c->dtype[0] ? c->dtype : "?");
    fprintf(f, "  layers %" PRId64 " (dense %" PRId64 "), hidden %" PRId64 ", vocab %" PRId64
               ", heads %" PRId64 "\n",
            c->num_hidden_layers,
            c->first_k_dense_replace < c->num_hidden_layers ? c->first_k_dense_replace
                                                            : c->num_hidden_layers,
            c->hidden_size, c->vocab_size, c->num_attention_heads);
    fprintf(f, "  MLA: q_lora %" PRId64 ", kv_lora %" PRId64 ", qk nope/rope %" PRId64 "/%" PRId64
               ", v %" PRId64 "; softmax scale %.10f\n",
            c->q_lora_rank, c->kv_lora_rank, c->qk_nope_head_dim, c->qk_rope_head_dim,
            c->v_head_dim, fp4m_softmax_scale(c));
    fprintf(f, "  MoE: %" PRId64 " routed (top %" PRId64 " of %" PRId64 " groups, %" PRId64
               " per token) + %" PRId64 " shared, inter %" PRId64 " (dense %" PRId64
               "), scale %g\n",
            c->n_routed_experts, c->topk_group, c->n_group, c->num_experts_per_tok,
            c->n_shared_experts, c->moe_intermediate_size, c->intermediate_size,
            c->routed_scaling_factor);
    fprintf(f, "  RoPE: theta %g, %s", c->rope_theta,
            c->rope_kind == FP4M_ROPE_YARN ? "yarn" : "default");
    if (c->rope_kind == FP4M_ROPE_YARN)
        fprintf(f, " factor %g over %" PRId64 ", beta %g/%g, mscale %g/%g", c->rope_factor,
                c->original_max_position_embeddings, c->beta_fast, c->beta_slow, c->mscale,
                c->mscale_all_dim);
    fputc('\n', f);
}

void fp4m_print_info(const fp4m_config *c, FILE *f) {
    print_config(c, f);
    fprintf(f, "\nbytes: F64/F32/BF16 = all parameters at that width; FP8 = R1 checkpoint "
               "(e4m3 + f32 scale per block, rest bf16);\n"
               "NVFP4 = linear weights E2M1 + E4M3 per 16 + f32 per tensor, router and "
               "norms bf16, bias f32\n\n");
    fprintf(f, "  %-22s %16s %18s %18s %18s %18s %18s\n", "unit", "params", "F64", "F32", "BF16",
            "FP8", "NVFP4");
    fp4m_counts outer, total, active;
    fp4m_count_outer(c, &outer);
    print_row(f, "embed+head+norm", &outer);
    for (int64_t l = 0; l < c->num_hidden_layers;) {
        int64_t e = l + 1;
        bool moe = fp4m_layer_is_moe(c, l);
        while (e < c->num_hidden_layers && fp4m_layer_is_moe(c, e) == moe) e++;
        fp4m_layer_counts lc;
        fp4m_count_layer(c, l, &lc);
        char what[64];
        if (e - l == 1)
            snprintf(what, sizeof what, "layer %" PRId64 " %s", l, moe ? "moe" : "dense");
        else
            snprintf(what, sizeof what, "layers %" PRId64 "-%" PRId64 " %s (each)", l, e - 1,
                     moe ? "moe" : "dense");
        print_row(f, what, &lc.total);
        print_row(f, "  attention", &lc.attn);
        print_row(f, "  norms", &lc.norms);
        if (moe) {
            print_row(f, "  router", &lc.router);
            print_row(f, "  one routed expert", &lc.expert);
            print_row(f, "  shared expert", &lc.shared);
            print_row(f, "  active per token", &lc.active);
        } else {
            print_row(f, "  mlp", &lc.mlp);
        }
        l = e;
    }
    fp4m_count_model(c, &total, &active);
    print_row(f, "main model", &total);
    print_row(f, "active per token", &active);
    if (c->num_nextn_predict_layers > 0)
        fprintf(f, "  (%" PRId64 " MTP layer(s) not counted: unused by the main forward)\n",
                c->num_nextn_predict_layers);
}
