/* test_model_config.c - config.json in both layouts, derived constants and
 * parameter/byte accounting against docs/reference/deepseek.md (ds):
 *  - tests/data/r1-config.json: the DeepSeek-R1 config (ds §1.1), R1 layout
 *    (rope_scaling {type: yarn}, rope_theta, torch_dtype);
 *  - the tiny fixture's config.json: transformers-5 layout (rope_parameters,
 *    dtype);
 *  - the R1 values written in the v5 layout parse to the same config;
 *  - unsupported or inconsistent configs fail naming the key. */
#define _GNU_SOURCE 1 /* open_memstream */
#include "fp4model.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define R1_CONFIG FP4_MODEL_TEST_DATA "/r1-config.json"
#define TINY_CONFIG FP4_MODEL_TEST_DATA "/hf-deepseek-v3-tiny/config.json"

#define EQ_I(a, b) fp4t_check((a) == (b), "%s = %lld, expected %lld", #a, (long long)(a), (long long)(b))
#define EQ_D(a, b, tol) \
    fp4t_check(fabs((double)(a) - (double)(b)) <= (tol) * fabs((double)(b)), "%s = %.12g, expected %.12g", #a, (double)(a), (double)(b))

static void check_r1(const fp4m_config *c) {
    EQ_I(c->num_hidden_layers, 61);
    EQ_I(c->hidden_size, 7168);
    EQ_I(c->intermediate_size, 18432);
    EQ_I(c->moe_intermediate_size, 2048);
    EQ_I(c->vocab_size, 129280);
    EQ_I(c->num_attention_heads, 128);
    EQ_I(c->q_lora_rank, 1536);
    EQ_I(c->kv_lora_rank, 512);
    EQ_I(c->qk_nope_head_dim, 128);
    EQ_I(c->qk_rope_head_dim, 64);
    EQ_I(c->v_head_dim, 128);
    EQ_I(c->n_routed_experts, 256);
    EQ_I(c->n_shared_experts, 1);
    EQ_I(c->num_experts_per_tok, 8);
    EQ_I(c->n_group, 8);
    EQ_I(c->topk_group, 4);
    EQ_I(c->first_k_dense_replace, 3);
    EQ_I(c->norm_topk_prob, 1);
    EQ_D(c->routed_scaling_factor, 2.5, 0);
    EQ_D(c->rms_norm_eps, 1e-6, 0);
    EQ_I(c->rope_kind, FP4M_ROPE_YARN);
    EQ_D(c->rope_theta, 10000, 0);
    EQ_D(c->rope_factor, 40, 0);
    EQ_I(c->original_max_position_embeddings, 4096);
    EQ_D(c->beta_fast, 32, 0);
    EQ_D(c->beta_slow, 1, 0);
    EQ_D(c->mscale, 1, 0);
    EQ_D(c->mscale_all_dim, 1, 0);
    EQ_I(c->max_position_embeddings, 163840);
    EQ_I(c->num_nextn_predict_layers, 1);
    EQ_I(c->tie_word_embeddings, 0);
    EQ_I(c->fp8_block[0], 128);
    EQ_I(c->fp8_block[1], 128);
    EQ_I(fp4m_layer_is_moe(c, 2), 0);
    EQ_I(fp4m_layer_is_moe(c, 3), 1);
    EQ_I(fp4m_layer_is_moe(c, 60), 1);
    /* ds §0 row 3: 192^-0.5 * (0.1 ln 40 + 1)^2 */
    EQ_D(fp4m_softmax_scale(c), 0.1352337789, 1e-9);
    EQ_D(fp4m_rope_cos_factor(c), 1.0, 0);
}

/* ds §2.5 table: low = 10, high = 23 and the YaRN frequencies. */
static void check_r1_rope(const fp4m_config *c) {
    double lo, hi, f[32], f32v[32];
    fp4m_yarn_range(c, &lo, &hi);
    EQ_D(lo, 10, 0);
    EQ_D(hi, 23, 0);
    fp4m_rope_frequencies(c, FP4M_ROPE_F64, f);
    fp4m_rope_frequencies(c, FP4M_ROPE_F32, f32v);
    const struct { int i; double v; } tab[] = {
        {0, 1.0},           {10, 5.623413e-02}, {11, 3.900693e-02}, {12, 2.687936e-02},
        {16, 5.500000e-03}, {19, 1.370514e-03}, {22, 1.778279e-04}, {23, 3.333804e-05},
        {31, 3.333804e-06}};
    for (size_t k = 0; k < sizeof tab / sizeof tab[0]; k++) {
        fp4t_check(fabs(f[tab[k].i] - tab[k].v) <= 1e-6 * tab[k].v, "f64 f_%d = %.7e, ds %.7e",
                   tab[k].i, f[tab[k].i], tab[k].v);
        fp4t_check(fabs(f32v[tab[k].i] - tab[k].v) <= 2e-6 * tab[k].v, "f32 f_%d = %.7e, ds %.7e",
                   tab[k].i, f32v[tab[k].i], tab[k].v);
    }
}

/* ds §3 sizes (params and FP8 checkpoint bytes, computed from the shapes). */
static void check_r1_counts(const fp4m_config *c) {
    fp4m_layer_counts d, m;
    fp4m_count_layer(c, 0, &d);
    fp4m_count_layer(c, 3, &m);
    EQ_I(d.attn.params, 187105280);
    EQ_I(d.attn.bytes[FP4M_STORE_FP8], 187151072);
    EQ_I(d.total.params, 583483392);
    EQ_I(d.total.bytes[FP4M_STORE_FP8], 583642336);
    EQ_I(m.expert.params, 44040192);
    EQ_I(m.expert.bytes[FP4M_STORE_FP8], 44050944);
    EQ_I(m.total.params, 11507286272LL);
    EQ_I(m.total.bytes[FP4M_STORE_FP8], 11511947488LL);
    EQ_I(m.total.bytes[FP4M_STORE_BF16], 2 * 11507286272LL);
    EQ_I(m.total.bytes[FP4M_STORE_F32], 4 * 11507286272LL);
    EQ_I(m.total.bytes[FP4M_STORE_F64], 8 * 11507286272LL);
    /* NVFP4: 0.5625 bytes per weight + 4 per tensor (ds: attention 105.2 MB,
     * expert 24.8 MB, weights only) */
    EQ_I(d.attn.bytes[FP4M_STORE_NVFP4], 187105280LL * 9 / 16 + 5 * 4);
    EQ_I(m.expert.bytes[FP4M_STORE_NVFP4], 44040192LL * 9 / 16 + 3 * 4);
    fp4m_counts total, active;
    fp4m_count_model(c, &total, &active);
    EQ_I(total.params, 671026419200LL); /* ds §3: 671.03 B */
    fp4t_check(active.params > 37000000000LL && active.params < 38000000000LL,
               "active params %lld, ds: ~37.6 B", (long long)active.params);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f) {
        fp4m_print_info(c, f);
        fclose(f);
        fp4t_check(text && strstr(text, "671026419200") && strstr(text, "layers 3-60 moe"),
                   "print_info output lacks totals or grouping:\n%s", text ? text : "");
        free(text);
    }
}

static void check_tiny_v5(void) {
    fp4m_config c;
    if (!fp4t_check(fp4m_config_load(TINY_CONFIG, &c) == 0, "tiny: %s", fp4_last_error())) return;
    fp4t_check(!strcmp(c.layout, "v5") && !strcmp(c.dtype, "float32"), "tiny layout %s dtype %s",
               c.layout, c.dtype);
    EQ_I(c.hidden_size, 256);
    EQ_I(c.num_hidden_layers, 4);
    EQ_I(c.first_k_dense_replace, 1);
    EQ_I(c.q_lora_rank, 96);
    EQ_I(c.kv_lora_rank, 64);
    EQ_I(c.n_routed_experts, 16);
    EQ_I(c.rope_kind, FP4M_ROPE_YARN);
    EQ_D(c.rope_factor, 4, 0);
    EQ_I(c.original_max_position_embeddings, 1024);
    EQ_I(c.rope_interleave, 1);
    double m = 0.1 * log(4.0) + 1.0;
    EQ_D(fp4m_softmax_scale(&c), m * m / sqrt(48.0), 1e-15);
    /* a directory argument reads dir/config.json */
    fp4m_config d;
    fp4t_check(fp4m_config_load(FP4_MODEL_TEST_DATA "/hf-deepseek-v3-tiny", &d) == 0 &&
                   d.hidden_size == 256, "config from directory");
}

/* R1 in the transformers-5 layout; absent keys take DeepseekV3Config's
 * defaults, which are R1's (ds §1.1). */
static const char *R1_V5 =
    "{\"dtype\": \"bfloat16\", \"max_position_embeddings\": 163840, \"num_nextn_predict_layers\": 1,"
    " \"quantization_config\": {\"weight_block_size\": [128, 128]},"
    " \"rope_parameters\": {\"rope_type\": \"yarn\", \"rope_theta\": 10000.0, \"factor\": 40.0,"
    " \"original_max_position_embeddings\": 4096, \"beta_fast\": 32.0, \"beta_slow\": 1.0,"
    " \"mscale\": 1.0, \"mscale_all_dim\": 1.0}}";

static void check_layouts_agree(const fp4m_config *r1) {
    fp4m_config v5;
    if (!fp4t_check(fp4m_config_parse(R1_V5, &v5) == 0, "r1 v5: %s", fp4_last_error())) return;
    fp4t_check(!strcmp(v5.layout, "v5") && !strcmp(r1->layout, "r1"), "layouts %s %s", v5.layout,
               r1->layout);
    fp4t_check(!strcmp(v5.dtype, r1->dtype), "dtype %s vs %s", v5.dtype, r1->dtype);
    check_r1(&v5);
    fp4m_config a = *r1, b = v5;
    memset(a.layout, 0, sizeof a.layout);
    memset(b.layout, 0, sizeof b.layout);
    fp4t_check(memcmp(&a, &b, sizeof a) == 0, "R1 config differs between layouts");
}

static void expect_fail(const char *json, const char *needle) {
    fp4m_config c;
    int rc = fp4m_config_parse(json, &c);
    fp4t_check(rc != 0 && strstr(fp4_last_error(), needle), "config %s: rc %d, message '%s' lacks '%s'",
               json, rc, rc ? fp4_last_error() : "", needle);
}

static void check_errors(void) {
    expect_fail("[1, 2]", "JSON object");
    expect_fail("{\"hidden_act\": \"gelu\"}", "hidden_act");
    expect_fail("{\"scoring_func\": \"softmax\"}", "scoring_func");
    expect_fail("{\"topk_method\": \"greedy\"}", "topk_method");
    expect_fail("{\"num_attention_heads\": 4}", "num_key_value_heads");
    expect_fail("{\"hidden_size\": -5}", "hidden_size");
    expect_fail("{\"hidden_size\": 7.5}", "hidden_size");
    expect_fail("{\"norm_topk_prob\": 1}", "norm_topk_prob");
    expect_fail("{\"n_group\": 7}", "n_group");
    expect_fail("{\"qk_rope_head_dim\": 63}", "qk_rope_head_dim");
    expect_fail("{\"rope_scaling\": {\"type\": \"linear\", \"factor\": 2}}", "linear");
    expect_fail("{\"rope_scaling\": {\"type\": \"yarn\", \"factor\": 4}}",
                "original_max_position_embeddings");
    expect_fail("{\"rope_parameters\": {\"rope_type\": \"yarn\", \"factor\": 0, "
                "\"original_max_position_embeddings\": 16}}", "factor");
    expect_fail("{\"quantization_config\": {\"weight_block_size\": [128]}}", "weight_block_size");
    fp4m_config c;
    fp4t_check(fp4m_config_load(FP4_MODEL_TEST_DATA "/no-such-config.json", &c) != 0 &&
                   strstr(fp4_last_error(), "no-such-config.json"), "missing file: %s", fp4_last_error());
    /* accepted variants: q_lora_rank null (no query compression), no rope
     * scaling, tied embeddings */
    fp4t_check(fp4m_config_parse("{\"q_lora_rank\": null, \"rope_scaling\": null, "
                                 "\"tie_word_embeddings\": true}", &c) == 0,
               "variants: %s", fp4_last_error());
    EQ_I(c.q_lora_rank, 0);
    EQ_I(c.rope_kind, FP4M_ROPE_DEFAULT);
    EQ_I(c.tie_word_embeddings, 1);
    EQ_D(fp4m_softmax_scale(&c), 1.0 / sqrt(192.0), 1e-15);
    fp4m_counts t, a;
    fp4m_count_model(&c, &t, &a);
    /* tied: one vocab x hidden matrix less; q_proj [24576, 7168] replaces
     * q_a_proj + q_a_layernorm + q_b_proj in each of 61 layers */
    const int64_t per_layer = 24576LL * 7168 - (1536LL * 7168 + 1536 + 24576LL * 1536);
    EQ_I(t.params, 671026419200LL - 129280LL * 7168 + 61 * per_layer);
}

int main(void) {
    fp4t_begin("test_model_config");
    fp4m_config r1;
    if (fp4t_check(fp4m_config_load(R1_CONFIG, &r1) == 0, "r1: %s", fp4_last_error())) {
        fp4t_check(!strcmp(r1.layout, "r1") && !strcmp(r1.dtype, "bfloat16"), "r1 layout %s dtype %s",
                   r1.layout, r1.dtype);
        check_r1(&r1);
        check_r1_rope(&r1);
        check_r1_counts(&r1);
        check_layouts_agree(&r1);
        fp4m_print_info(&r1, stdout);
    }
    check_tiny_v5();
    check_errors();
    return fp4t_end();
}
