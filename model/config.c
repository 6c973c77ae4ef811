/* config.c - DeepSeek-V3/R1 config.json in both layouts (ds §1.3):
 *   R1 / transformers 4.x: top-level "rope_theta", "rope_scaling"{"type":"yarn"},
 *                          "torch_dtype";
 *   transformers 5:        "rope_parameters"{"rope_type":"yarn","rope_theta"},
 *                          "dtype".
 * Defaults for absent keys are DeepseekV3Config's (ds §1.1 says they match R1
 * except rope and max_position_embeddings). */
#include "model_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Integer key: absent/null -> dflt; must be a non-negative integral number. */
static int get_int(const cJSON *root, const char *key, int64_t dflt, int64_t *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) {
        *out = dflt;
        return 0;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9007199254740992.0 ||
        v->valuedouble != floor(v->valuedouble))
        return fp4_fail("config: \"%s\" must be a non-negative integer", key);
    *out = (int64_t)v->valuedouble;
    return 0;
}

static int get_num(const cJSON *root, const char *key, double dflt, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) {
        *out = dflt;
        return 0;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return fp4_fail("config: \"%s\" must be a finite number", key);
    *out = v->valuedouble;
    return 0;
}

static int get_bool(const cJSON *root, const char *key, bool dflt, bool *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) {
        *out = dflt;
        return 0;
    }
    if (!cJSON_IsBool(v)) return fp4_fail("config: \"%s\" must be true or false", key);
    *out = cJSON_IsTrue(v);
    return 0;
}

/* String key copied into buf; absent -> dflt. */
static int get_str(const cJSON *root, const char *key, const char *dflt, char *buf, size_t n) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    const char *s = dflt;
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsString(v)) return fp4_fail("config: \"%s\" must be a string", key);
        s = v->valuestring;
    }
    if (strlen(s) >= n) return fp4_fail("config: \"%s\" value too long", key);
    memcpy(buf, s, strlen(s) + 1);
    return 0;
}

/* "yarn" (type or rope_type) fields, from rope_scaling or rope_parameters. */
static int parse_rope_block(const cJSON *rs, const char *where, fp4m_config *c) {
    char type[32];
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
    if (get_str(rs, t ? "rope_type" : "type", "default", type, sizeof type)) return -1;
    if (strcmp(type, "default") == 0) {
        c->rope_kind = FP4M_ROPE_DEFAULT;
        return 0;
    }
    if (strcmp(type, "yarn") != 0)
        return fp4_fail("config: %s type \"%s\" unsupported (yarn or default)", where, type);
    c->rope_kind = FP4M_ROPE_YARN;
    if (get_num(rs, "factor", 1.0, &c->rope_factor) ||
        get_int(rs, "original_max_position_embeddings", 0, &c->original_max_position_embeddings) ||
        get_num(rs, "beta_fast", 32.0, &c->beta_fast) ||
        get_num(rs, "beta_slow", 1.0, &c->beta_slow) || get_num(rs, "mscale", 0.0, &c->mscale) ||
        get_num(rs, "mscale_all_dim", 0.0, &c->mscale_all_dim) ||
        get_num(rs, "attention_factor", 0.0, &c->attention_factor) ||
        get_bool(rs, "truncate", true, &c->rope_truncate))
        return -1;
    if (c->original_max_position_embeddings == 0)
        return fp4_fail("config: %s needs original_max_position_embeddings", where);
    if (!(c->rope_factor > 0)) return fp4_fail("config: %s factor must be > 0", where);
    return 0;
}

/* R1 layout: rope_theta at top level, optional rope_scaling. v5 layout:
 * rope_parameters holding rope_theta too. */
static int parse_rope(const cJSON *root, fp4m_config *c) {
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(root, "rope_parameters");
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
    c->rope_kind = FP4M_ROPE_DEFAULT;
    c->rope_factor = 1.0;
    c->rope_truncate = true;
    if (rp && cJSON_IsObject(rp)) {
        snprintf(c->layout, sizeof c->layout, "v5");
        if (get_num(rp, "rope_theta", 10000.0, &c->rope_theta)) return -1;
        return parse_rope_block(rp, "rope_parameters", c);
    }
    snprintf(c->layout, sizeof c->layout, "r1");
    if (get_num(root, "rope_theta", 10000.0, &c->rope_theta)) return -1;
    if (rs && cJSON_IsObject(rs)) return parse_rope_block(rs, "rope_scaling", c);
    if (rs && !cJSON_IsNull(rs)) return fp4_fail("config: \"rope_scaling\" must be an object");
    return 0;
}

static int parse_quant(const cJSON *root, fp4m_config *c) {
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(root, "quantization_config");
    c->fp8_block[0] = c->fp8_block[1] = 0;
    if (!q || cJSON_IsNull(q)) return 0;
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(q, "weight_block_size");
    if (!b) return 0;
    if (!cJSON_IsArray(b) || cJSON_GetArraySize(b) != 2)
        return fp4_fail("config: quantization_config.weight_block_size must be [rows, cols]");
    for (int i = 0; i < 2; i++) {
        const cJSON *e = cJSON_GetArrayItem(b, i);
        if (!cJSON_IsNumber(e) || e->valuedouble < 1 || e->valuedouble > 1e9)
            return fp4_fail("config: quantization_config.weight_block_size[%d] invalid", i);
        c->fp8_block[i] = (int64_t)e->valuedouble;
    }
    return 0;
}

/* q_lora_rank: absent -> 1536 (DeepseekV3Config); null -> no compression. */
static int get_q_lora_rank(const cJSON *r, int64_t *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, "q_lora_rank");
    if (v && cJSON_IsNull(v)) {
        *out = 0;
        return 0;
    }
    return get_int(r, "q_lora_rank", 1536, out);
}

/* Everything but rope and quantization. Defaults: DeepseekV3Config. */
static int parse_sizes(const cJSON *r, fp4m_config *c) {
    return get_int(r, "vocab_size", 129280, &c->vocab_size) ||
           get_int(r, "hidden_size", 7168, &c->hidden_size) ||
           get_int(r, "intermediate_size", 18432, &c->intermediate_size) ||
           get_int(r, "moe_intermediate_size", 2048, &c->moe_intermediate_size) ||
           get_int(r, "num_hidden_layers", 61, &c->num_hidden_layers) ||
           get_int(r, "num_attention_heads", 128, &c->num_attention_heads) ||
           /* DeepseekV3Config's default is 128 whatever the head count (ds §0 row 10) */
           get_int(r, "num_key_value_heads", 128, &c->num_key_value_heads) ||
           get_q_lora_rank(r, &c->q_lora_rank) ||
           get_int(r, "kv_lora_rank", 512, &c->kv_lora_rank) ||
           get_int(r, "qk_nope_head_dim", 128, &c->qk_nope_head_dim) ||
           get_int(r, "qk_rope_head_dim", 64, &c->qk_rope_head_dim) ||
           get_int(r, "v_head_dim", 128, &c->v_head_dim) ||
           get_int(r, "n_routed_experts", 256, &c->n_routed_experts) ||
           get_int(r, "n_shared_experts", 1, &c->n_shared_experts) ||
           get_int(r, "num_experts_per_tok", 8, &c->num_experts_per_tok) ||
           get_int(r, "n_group", 8, &c->n_group) || get_int(r, "topk_group", 4, &c->topk_group) ||
           get_int(r, "first_k_dense_replace", 3, &c->first_k_dense_replace) ||
           get_int(r, "moe_layer_freq", 1, &c->moe_layer_freq) ||
           get_bool(r, "norm_topk_prob", true, &c->norm_topk_prob) ||
           get_num(r, "routed_scaling_factor", 2.5, &c->routed_scaling_factor) ||
           get_num(r, "rms_norm_eps", 1e-6, &c->rms_norm_eps) ||
           get_int(r, "max_position_embeddings", 4096, &c->max_position_embeddings) ||
           get_int(r, "num_nextn_predict_layers", 0, &c->num_nextn_predict_layers) ||
           get_bool(r, "tie_word_embeddings", false, &c->tie_word_embeddings)
               ? -1
               : 0;
}

/* Keys whose values select code we do not have. */
static int check_supported(const cJSON *r) {
    char s[32];
    if (get_str(r, "hidden_act", "silu", s, sizeof s)) return -1;
    if (strcmp(s, "silu") != 0) return fp4_fail("config: hidden_act \"%s\" unsupported (silu)", s);
    if (get_str(r, "scoring_func", "sigmoid", s, sizeof s)) return -1;
    if (strcmp(s, "sigmoid") != 0)
        return fp4_fail("config: scoring_func \"%s\" unsupported (sigmoid)", s);
    if (get_str(r, "topk_method", "noaux_tc", s, sizeof s)) return -1;
    if (strcmp(s, "noaux_tc") != 0)
        return fp4_fail("config: topk_method \"%s\" unsupported (noaux_tc)", s);
    return 0;
}

/* Sizes that the forward divides by or indexes with. */
static int check_consistent(const fp4m_config *c) {
    if (c->vocab_size < 1 || c->hidden_size < 1 || c->num_hidden_layers < 1 ||
        c->num_attention_heads < 1 || c->kv_lora_rank < 1 || c->v_head_dim < 1)
        return fp4_fail("config: vocab_size, hidden_size, num_hidden_layers, "
                        "num_attention_heads, kv_lora_rank, v_head_dim must be >= 1");
    if (c->qk_rope_head_dim < 2 || c->qk_rope_head_dim % 2)
        return fp4_fail("config: qk_rope_head_dim must be even and >= 2");
    /* transformers repeats K/V heads by heads / kv_heads; with MLA every head
     * has its own K/V, and 128 by default breaks tiny models (ds §0 row 10). */
    if (c->num_key_value_heads != c->num_attention_heads)
        return fp4_fail("config: num_key_value_heads (%lld) must equal num_attention_heads (%lld)",
                        (long long)c->num_key_value_heads, (long long)c->num_attention_heads);
    if (c->moe_layer_freq < 1) return fp4_fail("config: moe_layer_freq must be >= 1");
    if (c->n_routed_experts > 0) {
        if (c->moe_intermediate_size < 1 || c->num_experts_per_tok < 1 ||
            c->num_experts_per_tok > c->n_routed_experts)
            return fp4_fail("config: need 1 <= num_experts_per_tok <= n_routed_experts and "
                            "moe_intermediate_size >= 1");
        if (c->n_group < 1 || c->n_routed_experts % c->n_group ||
            c->topk_group < 1 || c->topk_group > c->n_group)
            return fp4_fail("config: n_group must divide n_routed_experts and "
                            "1 <= topk_group <= n_group");
        if (c->num_experts_per_tok > c->topk_group * (c->n_routed_experts / c->n_group))
            return fp4_fail("config: num_experts_per_tok exceeds the experts of topk_group groups");
        if (c->n_routed_experts / c->n_group < 2)
            return fp4_fail("config: groups need >= 2 experts (group score = top-2 sum)");
    }
    if (c->first_k_dense_replace > 0 && c->intermediate_size < 1)
        return fp4_fail("config: intermediate_size must be >= 1");
    if (!(c->rms_norm_eps > 0)) return fp4_fail("config: rms_norm_eps must be > 0");
    return 0;
}

int fp4m_config_parse(const char *json, fp4m_config *out) {
    if (!json || !out) return fp4_fail("config: null argument");
    cJSON *root = cJSON_Parse(json);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return fp4_fail("config: not a JSON object");
    }
    fp4m_config c;
    memset(&c, 0, sizeof c);
    int rc = -1;
    if (check_supported(root) || parse_sizes(root, &c) || parse_rope(root, &c) ||
        parse_quant(root, &c) || get_bool(root, "rope_interleave", true, &c.rope_interleave))
        goto done;
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(root, "dtype");
    if (get_str(root, dt ? "dtype" : "torch_dtype", "", c.dtype, sizeof c.dtype)) goto done;
    if (check_consistent(&c)) goto done;
    *out = c;
    rc = 0;
done:
    cJSON_Delete(root);
    return rc;
}

char *fp4m_read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n >= 0 && n < (1L << 26) && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1))) {
            if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
                free(buf);
                buf = NULL;
            } else {
                buf[n] = 0;
            }
        }
    }
    fclose(f);
    return buf;
}

int fp4m_config_load(const char *path, fp4m_config *out) {
    if (!path) return fp4_fail("config: null path");
    char *file = fp4m_join_if_dir(path, "config.json");
    if (!file) return fp4_fail("config: out of memory");
    char *text = fp4m_read_text(file);
    if (!text) {
        fp4_fail("config: cannot read %s", file);
        free(file);
        return -1;
    }
    int rc = fp4m_config_parse(text, out);
    if (rc) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", fp4_last_error());
        fp4_fail("%s (%s)", msg, file);
    }
    free(text);
    free(file);
    return rc;
}

bool fp4m_layer_is_moe(const fp4m_config *c, int64_t l) {
    return c->n_routed_experts > 0 && l >= c->first_k_dense_replace && l % c->moe_layer_freq == 0;
}

/* transformers' get_mscale (modeling_rope_utils): 1 for factor <= 1. */
static double yarn_mscale(double factor, double mscale) {
    return factor <= 1.0 ? 1.0 : 0.1 * mscale * log(factor) + 1.0;
}

/* ds §2.4: d_qk^-0.5, times m^2 with m = 0.1 mscale_all_dim ln(factor) + 1
 * when YaRN is on and mscale_all_dim is set (transformers' rule; official
 * uses args.mscale = 1.0 for the same value on R1). */
double fp4m_softmax_scale(const fp4m_config *c) {
    double s = 1.0 / sqrt((double)(c->qk_nope_head_dim + c->qk_rope_head_dim));
    if (c->rope_kind == FP4M_ROPE_YARN && c->mscale_all_dim != 0.0) {
        double m = yarn_mscale(c->rope_factor, c->mscale_all_dim);
        s = s * m * m;
    }
    return s;
}

/* transformers' attention_factor multiplying cos/sin (ds §2.5): explicit
 * value, else get_mscale(f, mscale)/get_mscale(f, mscale_all_dim) when both
 * are set, else get_mscale(f). 1.0 for R1 and for plain RoPE. */
double fp4m_rope_cos_factor(const fp4m_config *c) {
    if (c->rope_kind != FP4M_ROPE_YARN) return 1.0;
    if (c->attention_factor != 0.0) return c->attention_factor;
    if (c->mscale != 0.0 && c->mscale_all_dim != 0.0)
        return yarn_mscale(c->rope_factor, c->mscale) / yarn_mscale(c->rope_factor, c->mscale_all_dim);
    return yarn_mscale(c->rope_factor, 1.0);
}
