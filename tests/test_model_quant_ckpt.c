/* test_model_quant_ckpt.c - quantized checkpoints: ModelOpt NVFP4 (weight
 * U8 + weight_scale + weight_scale_2 + input_scale, recipes.md §7.1),
 * compressed-tensors NVFP4 (weight_packed + weight_scale +
 * weight_global_scale + input_global_scale, §7.2) and DeepSeek FP8 blocks
 * (§7.3); their quantization configs (hf_quant_config.json,
 * quantization_config); and what a loader must refuse without crashing.
 *
 * The test writes its own tiny model (its own config, tensor list from ds
 * §3, random values) with fp4_st_writer. Quantized tensors hold random
 * codes and scale bytes (every E2M1 nibble, subnormal and normal UE4M3
 * scales), so nothing depends on a quantizer. Expected values are decoded
 * here with ref's e2m1_to_f64 / e4m3_to_f64 and the formulas of recipes.md:
 *  - power-of-two global scales make every dequantized value a float: an
 *    F32 checkpoint of those values must give bit-identical logits in both
 *    precision paths (and ModelOpt with weight_scale_2 = d must equal
 *    compressed-tensors with weight_global_scale = 1/d; storing d there,
 *    bug A3, must not);
 *  - other global scales are checked element by element through a GEMM
 *    backend, which also checks that `stored` carries the exact codes,
 *    scale bytes and global scales the file holds. */
#define _GNU_SOURCE 1 /* mkdtemp, truncate */
#include "fp4io.h"
#include "fp4model.h"
#include "testutil.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------
 * The model: config and tensor list
 * ------------------------------------------------------------------------- */

enum { K_LIN = 0, K_NORM, K_EMBED, K_BIAS };

typedef struct tdesc {
    char name[96];
    int64_t out, in; /* in = 0: vector */
    int kind;
} tdesc;

static tdesc g_t[128];
static int g_nt;
static char g_dir[64];

/* vocab 64, hidden 64, 2 layers (0 dense, 1 MoE with 4 experts and a shared
 * one); every linear's in is a multiple of 16 unless moe_inter is not. */
static void config_text(char *buf, size_t n, int moe_inter, const char *qconfig) {
    snprintf(buf, n,
             "{\"vocab_size\": 64, \"hidden_size\": 64, \"intermediate_size\": 96,\n"
             " \"moe_intermediate_size\": %d, \"num_hidden_layers\": 2, \"num_attention_heads\": 2,\n"
             " \"num_key_value_heads\": 2, \"q_lora_rank\": 32, \"kv_lora_rank\": 32,\n"
             " \"qk_nope_head_dim\": 16, \"qk_rope_head_dim\": 16, \"v_head_dim\": 16,\n"
             " \"n_routed_experts\": 4, \"n_shared_experts\": 1, \"num_experts_per_tok\": 2,\n"
             " \"n_group\": 2, \"topk_group\": 1, \"first_k_dense_replace\": 1,\n"
             " \"norm_topk_prob\": true, \"routed_scaling_factor\": 2.5, \"rms_norm_eps\": 1e-6,\n"
             " \"rope_theta\": 10000.0, \"max_position_embeddings\": 256,\n"
             " \"tie_word_embeddings\": false%s%s}\n",
             moe_inter, qconfig ? ", \"quantization_config\": " : "", qconfig ? qconfig : "");
}

static void add_t(int64_t out, int64_t in, int kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add_t(int64_t out, int64_t in, int kind, const char *fmt, ...) {
    tdesc *d = &g_t[g_nt++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->name, sizeof d->name, fmt, ap);
    va_end(ap);
    d->out = out;
    d->in = in;
    d->kind = kind;
}

/* Names and shapes of ds §3 for the config above: the model's manifest. */
static int add_info(void *ctx, const fp4m_tensor_info *t) {
    (void)ctx;
    int kind = t->slot == FP4M_SLOT_EMBED ? K_EMBED : t->slot == FP4M_SLOT_BIAS ? K_BIAS
               : t->in == 0                ? K_NORM : K_LIN;
    add_t(t->out, t->in, kind, "%s", t->name);
    return 0;
}

static void build_list(int moe_inter) {
    char cfg[2048];
    fp4m_config c;
    g_nt = 0;
    config_text(cfg, sizeof cfg, moe_inter, NULL);
    if (fp4t_check(fp4m_config_parse(cfg, &c) == 0, "test config: %s", fp4_last_error()))
        fp4m_manifest(&c, add_info, NULL);
    /* embed; layer 0: 2 norms + 7 attention + 3 MLP; layer 1: 2 norms + 7
     * attention + router and bias + 4 experts x 3 + shared x 3; norm; lm_head. */
    fp4t_check(g_nt == 1 + 12 + 26 + 2, "the manifest of the test config has %d tensors, "
               "expected 41", g_nt);
}

static int find_t(const char *name) {
    for (int t = 0; t < g_nt; t++)
        if (!strcmp(g_t[t].name, name)) return t;
    return -1;
}

/* Element i of tensor t: uniform, linear weights ~ 1/sqrt(in). */
static float value(int t, int64_t i) {
    double u = (double)(int32_t)fp4t_rand32(fp4t_seed(), (uint32_t)t, (uint64_t)i) / 2147483648.0;
    switch (g_t[t].kind) {
    case K_LIN: return (float)(u * sqrt(3.0 / (double)g_t[t].in));
    case K_NORM: return (float)(1.0 + 0.2 * u);
    case K_BIAS: return (float)(0.1 * u);
    default: return (float)u;
    }
}

/* ---------------------------------------------------------------------------
 * What a checkpoint holds
 * ------------------------------------------------------------------------- */

typedef enum qfmt { Q_F32 = 0, Q_MODELOPT, Q_CT, Q_FP8 } qfmt;

typedef enum defect {
    D_NONE = 0,
    D_NO_DATA,      /* weight / weight_packed left out */
    D_NO_SCALE,     /* weight_scale (NVFP4) or weight_scale_inv (FP8) left out */
    D_NO_GLOBAL,    /* weight_scale_2 / weight_global_scale left out */
    D_SCALE_SHAPE,  /* weight_scale [out, in/16 - 1] */
    D_SCALE_F32,    /* weight_scale stored as F32 */
    D_DATA_SHAPE,   /* U8 [out, in/2 + 1] */
    D_DATA_UNPACKED,/* U8 [out, in]: one code per byte */
    D_DATA_I8,      /* I8 instead of U8 */
    D_BIT7,         /* one scale byte with bit 7 set */
    D_NAN_SCALE,    /* one scale byte 0x7F */
    D_GLOBAL_VALUE, /* global scale = spec.bad */
    D_GLOBAL_SHAPE, /* global scale F32 [2] */
    D_INPUT_VALUE,  /* input scale = spec.bad */
    D_BOTH,         /* compressed-tensors weight_packed and a plain weight */
} defect;

typedef struct spec {
    qfmt fmt;
    bool deq;        /* quantized set written as F32 dequantized values instead */
    bool pow2;       /* power-of-two global scales */
    bool shards;     /* index + two shards */
    bool inverted;   /* compressed-tensors global = the decode value (bug A3) */
    bool mlp_only;   /* compressed-tensors with ModelOpt's quantized set */
    int moe_inter;   /* 0: 32 */
    const char *hf;  /* hf_quant_config.json text (NULL: ModelOpt default / none) */
    const char *qc;  /* quantization_config (NULL: the format's default) */
    defect def;
    const char *target; /* the X.weight the defect hits */
    float bad;
} spec;

/* Which tensors a checkpoint stores quantized: ModelOpt the MLP and expert
 * linears (R1 NVFP4, recipes.md §7.1), the others every linear but the
 * router and lm_head. */
static bool quantized(const spec *s, const tdesc *d) {
    size_t n = strlen(d->name);
    if (s->fmt == Q_F32 || d->kind != K_LIN || !strcmp(d->name, "lm_head.weight") ||
        (n > 16 && !strcmp(d->name + n - 16, ".mlp.gate.weight")))
        return false;
    return !(s->fmt == Q_MODELOPT || s->mlp_only) || strstr(d->name, ".mlp.") != NULL;
}

/* Global scales as stored: ModelOpt weight_scale_2 (decode) and
 * compressed-tensors weight_global_scale (encode) of the same weights. */
static float mo_global(const spec *s) { return s->pow2 ? 0x1p-6f : 0.0171f; }
static float ct_global(const spec *s) {
    if (s->inverted) return 0x1p-6f; /* the decode value under the encode name */
    return s->pow2 ? 64.0f : 61.0f;
}
static float input_global(qfmt f) { return f == Q_MODELOPT ? 0.25f : 4.0f; }
static float fp8_sinv(const spec *s, int64_t b) { return s->pow2 ? 0x1p-7f : 0.00131f * (float)(b + 1); }

/* Random packed codes (every nibble value) and UE4M3 scale bytes: mostly
 * 2^-1..2^3, one block in 8 anywhere in 0x00..0x57 (subnormals included). */
static void nvfp4_data(int t, uint8_t *codes, uint8_t *scales) {
    const tdesc *d = &g_t[t];
    for (int64_t i = 0; i < d->out * d->in / 2; i++)
        codes[i] = (uint8_t)fp4t_rand32(fp4t_seed(), 1000u + (uint32_t)t, (uint64_t)i);
    for (int64_t b = 0; b < d->out * d->in / 16; b++) {
        uint32_t r = fp4t_rand32(fp4t_seed(), 2000u + (uint32_t)t, (uint64_t)b);
        scales[b] = (uint8_t)(r % 8 == 0 ? (r >> 8) % 0x58 : 0x30 + (r >> 8) % 0x20);
    }
}

/* Random E4M3 codes, no NaN, |value| <= 15. */
static void fp8_data(int t, uint8_t *codes) {
    const tdesc *d = &g_t[t];
    for (int64_t i = 0; i < d->out * d->in; i++) {
        uint32_t r = fp4t_rand32(fp4t_seed(), 3000u + (uint32_t)t, (uint64_t)i);
        codes[i] = (uint8_t)((r & 0x80) | ((r >> 8) % 0x58));
    }
}

/* The value element c of row r decodes to, in double (exact for ModelOpt:
 * 6 x 24 significant bits; one rounding for the compressed-tensors
 * quotient). */
static double nvfp4_value(const spec *s, const uint8_t *codes, const uint8_t *scales, int64_t in,
                          int64_t r, int64_t c) {
    uint8_t byte = codes[(r * in + c) / 2];
    uint8_t nib = c % 2 ? byte >> 4 : byte & 0xF;
    double a = e2m1_to_f64(nib) * e4m3_to_f64(scales[(r * in + c) / 16]);
    return s->fmt == Q_MODELOPT ? a * (double)mo_global(s) : a / (double)ct_global(s);
}

/* ---------------------------------------------------------------------------
 * Writing
 * ------------------------------------------------------------------------- */

typedef struct ow {
    fp4_st_writer *w[2];
    const char *names[512];
    const char *shard[512];
    int n;
    bool shards;
    int rc;
} ow;

static const char *const k_shard_names[2] = {"model-00001-of-00002.safetensors",
                                             "model-00002-of-00002.safetensors"};

static void put(ow *o, const char *name, fp4_st_dtype dt, int32_t ndim, int64_t d0, int64_t d1,
                const void *data, int64_t nbytes) {
    int64_t shape[2] = {d0, d1};
    int s = o->shards && strstr(name, "layers.1.") ? 1 : 0;
    if (o->rc) return;
    o->rc = fp4_st_writer_add_copy(o->w[s], name, dt, ndim, shape, data, nbytes) != FP4_ST_OK;
    if (o->rc) fprintf(stderr, "writer: %s\n", fp4_last_error());
    o->names[o->n] = strdup(name);
    o->shard[o->n++] = k_shard_names[s];
}

static void put_plain(ow *o, int t) {
    const tdesc *d = &g_t[t];
    int64_t n = d->out * (d->in ? d->in : 1);
    float *v = malloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++) v[i] = value(t, i);
    put(o, d->name, FP4_ST_F32, d->in ? 2 : 1, d->out, d->in, v, 4 * n);
    free(v);
}

/* X.weight -> X + suffix. */
static void sibling(const char *wname, const char *suffix, char *buf, size_t n) {
    snprintf(buf, n, "%.*s%s", (int)(strlen(wname) - 7), wname, suffix);
}

static void put_global(ow *o, const spec *s, const char *name, float g, bool mo, bool hit_shape) {
    float two[2] = {g, g};
    if (hit_shape) put(o, name, FP4_ST_F32, 1, 2, 0, two, 8);
    else put(o, name, FP4_ST_F32, mo ? 0 : 1, 1, 0, &g, 4);
    (void)s;
}

/* The dequantized values as F32 (exact when the global scale is a power of
 * two). */
static void put_deq(ow *o, const spec *s, int t, const uint8_t *codes, const uint8_t *scales) {
    const tdesc *d = &g_t[t];
    float *v = malloc((size_t)(d->out * d->in) * 4);
    for (int64_t r = 0; r < d->out; r++)
        for (int64_t c = 0; c < d->in; c++) v[r * d->in + c] = (float)nvfp4_value(s, codes, scales, d->in, r, c);
    put(o, d->name, FP4_ST_F32, 2, d->out, d->in, v, 4 * d->out * d->in);
    free(v);
}

static void put_nvfp4_data(ow *o, const spec *s, const tdesc *d, const char *name,
                           const uint8_t *codes, bool hit) {
    const int64_t nb = d->out * d->in / 2;
    if (hit && s->def == D_NO_DATA) return;
    if (hit && (s->def == D_DATA_SHAPE || s->def == D_DATA_UNPACKED)) {
        int64_t cols = s->def == D_DATA_SHAPE ? d->in / 2 + 1 : d->in;
        uint8_t *z = calloc((size_t)(d->out * cols), 1);
        put(o, name, FP4_ST_U8, 2, d->out, cols, z, d->out * cols);
        free(z);
        return;
    }
    put(o, name, hit && s->def == D_DATA_I8 ? FP4_ST_I8 : FP4_ST_U8, 2, d->out, d->in / 2, codes, nb);
}

static void put_nvfp4_scale(ow *o, const spec *s, const tdesc *d, const char *name,
                            uint8_t *scales, bool hit) {
    const int64_t sc = d->in / 16;
    if (hit && s->def == D_NO_SCALE) return;
    if (hit && s->def == D_BIT7) scales[5] |= 0x80;
    if (hit && s->def == D_NAN_SCALE) scales[3] = 0x7F;
    if (hit && s->def == D_SCALE_F32) {
        float *f = malloc((size_t)(d->out * sc) * 4);
        for (int64_t i = 0; i < d->out * sc; i++) f[i] = e4m3_to_f32(scales[i]);
        put(o, name, FP4_ST_F32, 2, d->out, sc, f, 4 * d->out * sc);
        free(f);
        return;
    }
    int64_t cols = hit && s->def == D_SCALE_SHAPE ? sc - 1 : sc;
    put(o, name, FP4_ST_F8_E4M3, 2, d->out, cols, scales, d->out * cols);
}

static void put_nvfp4(ow *o, const spec *s, int t) {
    const tdesc *d = &g_t[t];
    const bool mo = s->fmt == Q_MODELOPT, hit = s->target && !strcmp(s->target, d->name);
    uint8_t *codes = malloc((size_t)(d->out * d->in / 2)), *scales = malloc((size_t)(d->out * d->in / 16));
    char n1[128], n2[128], n3[128], n4[128];
    nvfp4_data(t, codes, scales);
    if (s->deq) {
        put_deq(o, s, t, codes, scales);
    } else {
        sibling(d->name, mo ? ".weight" : ".weight_packed", n1, sizeof n1);
        sibling(d->name, ".weight_scale", n2, sizeof n2);
        sibling(d->name, mo ? ".weight_scale_2" : ".weight_global_scale", n3, sizeof n3);
        sibling(d->name, mo ? ".input_scale" : ".input_global_scale", n4, sizeof n4);
        put_nvfp4_data(o, s, d, n1, codes, hit);
        put_nvfp4_scale(o, s, d, n2, scales, hit);
        if (!(hit && s->def == D_NO_GLOBAL))
            put_global(o, s, n3, hit && s->def == D_GLOBAL_VALUE ? s->bad : mo ? mo_global(s) : ct_global(s),
                       mo, hit && s->def == D_GLOBAL_SHAPE);
        put_global(o, s, n4, hit && s->def == D_INPUT_VALUE ? s->bad : input_global(s->fmt), mo, false);
        if (hit && s->def == D_BOTH) put_plain(o, t);
    }
    free(codes);
    free(scales);
}

static void put_fp8(ow *o, const spec *s, int t) {
    const tdesc *d = &g_t[t];
    const int64_t br = (d->out + 127) / 128, bc = (d->in + 127) / 128;
    uint8_t *codes = malloc((size_t)(d->out * d->in));
    float sinv[64];
    char name[128];
    fp8_data(t, codes);
    for (int64_t b = 0; b < br * bc; b++) sinv[b] = fp8_sinv(s, b);
    put(o, d->name, FP4_ST_F8_E4M3, 2, d->out, d->in, codes, d->out * d->in);
    snprintf(name, sizeof name, "%s_scale_inv", d->name);
    if (!(s->target && !strcmp(s->target, d->name) && s->def == D_NO_SCALE))
        put(o, name, FP4_ST_F32, 2, br, bc, sinv, 4 * br * bc);
    free(codes);
}

static const char k_hf_default[] =
    "{\"producer\": {\"name\": \"modelopt\", \"version\": \"0.23.0\"},\n"
    " \"quantization\": {\"quant_algo\": \"NVFP4\", \"kv_cache_quant_algo\": null,\n"
    "  \"group_size\": 16, \"exclude_modules\": [\"lm_head\", \"model.layers.*.self_attn*\",\n"
    "  \"model.layers.*.mlp.gate\"]}}\n";
static const char k_ct_default[] =
    "{\"quant_method\": \"compressed-tensors\", \"format\": \"nvfp4-pack-quantized\",\n"
    " \"config_groups\": {\"group_0\": {\"targets\": [\"Linear\"], \"weights\": {\"num_bits\": 4,\n"
    "  \"type\": \"float\", \"strategy\": \"tensor_group\", \"group_size\": 16, \"symmetric\": true,\n"
    "  \"dynamic\": false}, \"input_activations\": {\"num_bits\": 4, \"type\": \"float\",\n"
    "  \"strategy\": \"tensor_group\", \"group_size\": 16, \"dynamic\": \"local\"}}},\n"
    " \"ignore\": [\"lm_head\", \"re:.*mlp\\\\.gate$\"]}";
static const char k_fp8_default[] =
    "{\"quant_method\": \"fp8\", \"fmt\": \"e4m3\", \"activation_scheme\": \"dynamic\",\n"
    " \"weight_block_size\": [128, 128]}";

static void path_of(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", g_dir, name); }

static void clear_dir(void) {
    const char *files[] = {"config.json", "hf_quant_config.json", "model.safetensors",
                           "model.safetensors.index.json", k_shard_names[0], k_shard_names[1]};
    char p[128];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        path_of(p, sizeof p, files[i]);
        unlink(p);
    }
}

static int write_text(const char *name, const char *text) {
    char p[128];
    path_of(p, sizeof p, name);
    FILE *f = fopen(p, "wb");
    int ok = f && fwrite(text, 1, strlen(text), f) == strlen(text);
    if (f) ok = fclose(f) == 0 && ok;
    return ok ? 0 : -1;
}

static int write_configs(const spec *s) {
    char cfg[4096];
    const char *qc = s->qc ? s->qc : s->fmt == Q_CT ? k_ct_default : s->fmt == Q_FP8 ? k_fp8_default : NULL;
    if (s->deq) qc = NULL;
    config_text(cfg, sizeof cfg, s->moe_inter ? s->moe_inter : 32, qc);
    const char *hf = s->hf ? s->hf : s->fmt == Q_MODELOPT && !s->deq ? k_hf_default : NULL;
    if (hf && !*hf) hf = NULL; /* "": none */
    return write_text("config.json", cfg) || (hf && write_text("hf_quant_config.json", hf)) ? -1 : 0;
}

static int finish(ow *o) {
    char p[128];
    int rc = o->rc;
    for (int k = 0; k < (o->shards ? 2 : 1); k++) {
        if (rc) {
            fp4_st_writer_abort(o->w[k]);
            continue;
        }
        rc = fp4_st_writer_finish(o->w[k]) != FP4_ST_OK;
    }
    if (!rc && o->shards) {
        path_of(p, sizeof p, "model.safetensors.index.json");
        rc = fp4_st_write_index(p, o->n, o->names, o->shard, -1, -1) != FP4_ST_OK;
    }
    for (int i = 0; i < o->n; i++) free((void *)o->names[i]);
    return rc;
}

/* Writes g_dir for spec s: config.json (+ hf_quant_config.json) and
 * model.safetensors, or an index and two shards. */
static int write_ckpt(const spec *s) {
    ow o = {.shards = s->shards};
    char p[128];
    clear_dir();
    build_list(s->moe_inter ? s->moe_inter : 32);
    for (int k = 0; k < (s->shards ? 2 : 1) && !o.rc; k++) {
        path_of(p, sizeof p, s->shards ? k_shard_names[k] : "model.safetensors");
        o.rc = fp4_st_writer_create(p, &o.w[k]) != FP4_ST_OK;
    }
    for (int t = 0; t < g_nt && !o.rc; t++) {
        if (!quantized(s, &g_t[t])) put_plain(&o, t);
        else if (s->fmt == Q_FP8) put_fp8(&o, s, t);
        else put_nvfp4(&o, s, t);
    }
    int rc = finish(&o);
    return rc || write_configs(s) ? -1 : 0;
}

/* ---------------------------------------------------------------------------
 * A GEMM backend that checks what the loader hands it
 * ------------------------------------------------------------------------- */

typedef struct rec {
    const spec *s;
    bool seen[128];
    int64_t calls, elements;
} rec;

/* f = RN32(a / g)? f*g and its neighbours' products are exact in double
 * (24 + 24 bits) and within a factor 2 of a, so each distance to a is exact
 * (Sterbenz); ties must give the even float. */
static bool rn32_quotient(float f, double a, double g) {
    if (a == 0) return f == 0;
    double e = fabs((double)f * g - a);
    double el = fabs((double)nextafterf(f, -INFINITY) * g - a);
    double eh = fabs((double)nextafterf(f, INFINITY) * g - a);
    if (e > el || e > eh) return false;
    return (e != el && e != eh) || (fp4t_f32_bits(f) & 1) == 0;
}

/* Element (r, c) of the weight the forward got, against its decoding. */
static bool nvfp4_element_ok(const spec *s, const uint8_t *codes, const uint8_t *scales,
                             const tdesc *d, const void *w, bool f64, int64_t r, int64_t c) {
    const double v = nvfp4_value(s, codes, scales, d->in, r, c);
    if (f64) return ((const double *)w)[r * d->in + c] == v;
    const float f = ((const float *)w)[r * d->in + c];
    if (s->fmt == Q_MODELOPT) return f == (float)v; /* v exact: one rounding */
    uint8_t byte = codes[(r * d->in + c) / 2];
    double a = e2m1_to_f64(c % 2 ? byte >> 4 : byte & 0xF) * e4m3_to_f64(scales[(r * d->in + c) / 16]);
    return rn32_quotient(f, a, ct_global(s));
}

static void check_nvfp4(rec *x, int t, const fp4m_linear_desc *dd, const void *w, bool f64) {
    const tdesc *d = &g_t[t];
    const fp4m_stored_weight *st = dd->stored;
    const bool mo = x->s->fmt == Q_MODELOPT;
    uint8_t *codes = malloc((size_t)(d->out * d->in / 2)), *scales = malloc((size_t)(d->out * d->in / 16));
    nvfp4_data(t, codes, scales);
    fp4t_check(st->kind == FP4M_STORED_NVFP4 && st->t.rows == d->out && st->t.cols == d->in &&
                   fp4_tensor_kind(&st->t) == FP4_TK_NVFP4,
               "%s: stored kind %d [%lld, %lld]", d->name, st->kind, (long long)st->t.rows,
               (long long)st->t.cols);
    fp4t_check(!memcmp(st->t.codes, codes, (size_t)(d->out * d->in / 2)) &&
                   !memcmp(st->t.scales, scales, (size_t)(d->out * d->in / 16)),
               "%s: stored codes or scale bytes differ from the file", d->name);
    fp4t_check(st->gkind == (mo ? FP4M_GSCALE_DECODE : FP4M_GSCALE_ENCODE) &&
                   st->weight_global == (mo ? mo_global(x->s) : ct_global(x->s)) &&
                   st->input_global == input_global(x->s->fmt),
               "%s: stored global scales %d %g %g", d->name, st->gkind, (double)st->weight_global,
               (double)st->input_global);
    int64_t bad = 0;
    for (int64_t r = 0; r < d->out; r++)
        for (int64_t c = 0; c < d->in; c++) bad += !nvfp4_element_ok(x->s, codes, scales, d, w, f64, r, c);
    fp4t_check(bad == 0, "%s: %lld of %lld elements differ from their decoding (%s path)", d->name,
               (long long)bad, (long long)(d->out * d->in), f64 ? "f64" : "f32");
    x->elements += d->out * d->in;
    free(codes);
    free(scales);
}

static void check_fp8(rec *x, int t, const fp4m_linear_desc *dd, const void *w, bool f64) {
    const tdesc *d = &g_t[t];
    const fp4m_stored_weight *st = dd->stored;
    const int64_t bc = (d->in + 127) / 128;
    uint8_t *codes = malloc((size_t)(d->out * d->in));
    fp8_data(t, codes);
    bool sc_ok = st->t.block_rows == 128 && st->t.block == 128 && st->t.scale_fmt == FP4_FMT_F32;
    for (int64_t b = 0; sc_ok && b < ((d->out + 127) / 128) * bc; b++)
        sc_ok = ((const float *)st->t.scales)[b] == fp8_sinv(x->s, b);
    fp4t_check(st->kind == FP4M_STORED_FP8_BLOCK && sc_ok &&
                   !memcmp(st->t.codes, codes, (size_t)(d->out * d->in)),
               "%s: stored FP8 codes, tile or scale_inv differ from the file", d->name);
    int64_t bad = 0;
    for (int64_t r = 0; r < d->out; r++)
        for (int64_t c = 0; c < d->in; c++) {
            double v = e4m3_to_f64(codes[r * d->in + c]) * (double)fp8_sinv(x->s, (r / 128) * bc + c / 128);
            bad += f64 ? ((const double *)w)[r * d->in + c] != v : ((const float *)w)[r * d->in + c] != (float)v;
        }
    fp4t_check(bad == 0, "%s: %lld FP8 elements differ from e4m3 * scale_inv", d->name, (long long)bad);
    x->elements += d->out * d->in;
    free(codes);
}

static void check_linear(rec *x, const fp4m_linear_desc *dd, const void *w, bool f64) {
    int t = find_t(dd->name);
    x->calls++;
    if (!fp4t_check(t >= 0, "backend got unknown tensor '%s'", dd->name)) return;
    x->seen[t] = true;
    if (!quantized(x->s, &g_t[t])) {
        fp4t_check(dd->stored == NULL, "%s: stored set for an unquantized tensor", dd->name);
        return;
    }
    if (!fp4t_check(dd->stored != NULL, "%s: stored is NULL for a quantized tensor", dd->name)) return;
    if (x->s->fmt == Q_FP8) check_fp8(x, t, dd, w, f64);
    else check_nvfp4(x, t, dd, w, f64);
}

static int rec_f64(void *ctx, const fp4m_linear_desc *d, int64_t m, const double *x, const double *w,
                   double *y) {
    check_linear(ctx, d, w, true);
    const fp4m_gemm_backend *b = fp4m_gemm_default();
    return b->gemm_f64(b->ctx, d, m, x, w, y);
}

static int rec_f32(void *ctx, const fp4m_linear_desc *d, int64_t m, const float *x, const float *w,
                   float *y) {
    check_linear(ctx, d, w, false);
    const fp4m_gemm_backend *b = fp4m_gemm_default();
    return b->gemm_f32(b->ctx, d, m, x, w, y);
}

/* ---------------------------------------------------------------------------
 * Runs
 * ------------------------------------------------------------------------- */

#define NTOK 24

static void token_ids(int64_t *ids) {
    for (int i = 0; i < NTOK; i++) ids[i] = fp4t_rand32(fp4t_seed(), 77, (uint64_t)i) % 64;
}

/* Logits [NTOK, 64] of the checkpoint in g_dir (malloc'ed), or NULL. */
static void *logits_of(fp4m_prec prec, const fp4m_gemm_backend *b, bool resident) {
    fp4m_opts o = fp4m_opts_reference(prec);
    fp4m_model *m = NULL;
    int64_t ids[NTOK];
    token_ids(ids);
    o.gemm = b;
    o.all_resident = resident;
    if (!fp4t_check(fp4m_open(g_dir, &o, &m) == 0, "open: %s", fp4_last_error())) return NULL;
    void *lg = malloc((size_t)(NTOK * 64 * (prec == FP4M_F64 ? 8 : 4)));
    if (!fp4t_check(fp4m_forward(m, ids, NTOK, false, lg) == 0, "forward: %s", fp4_last_error())) {
        free(lg);
        lg = NULL;
    }
    fp4m_close(m);
    return lg;
}

static bool finite_all(const void *lg, fp4m_prec p) {
    for (int i = 0; i < NTOK * 64; i++)
        if (!isfinite(p == FP4M_F64 ? ((const double *)lg)[i] : ((const float *)lg)[i])) return false;
    return true;
}

static void *logits_spec(const spec *s, fp4m_prec p) {
    if (!fp4t_check(write_ckpt(s) == 0, "writing a checkpoint: %s", fp4_last_error())) return NULL;
    return logits_of(p, NULL, true);
}

/* Power-of-two global scales: the quantized checkpoint and an F32 one of
 * its decoded values give the same logits bit for bit, in both paths
 * (ModelOpt sharded, compressed-tensors single-file). ModelOpt with
 * weight_scale_2 = 2^-6 and compressed-tensors with weight_global_scale =
 * 2^6 of the same codes are the same model; compressed-tensors holding 2^-6
 * (the decode value under the encode name, bug A3) is not. */
static void check_exact(void) {
    for (int p = 0; p < 2; p++) {
        const fp4m_prec prec = p ? FP4M_F32 : FP4M_F64;
        const size_t bytes = (size_t)NTOK * 64 * (p ? 4 : 8);
        const char *pn = p ? "f32" : "f64";
        for (int f = 0; f < 2; f++) {
            spec q = {.fmt = f ? Q_CT : Q_MODELOPT, .pow2 = true, .shards = f == 0}, r = q;
            r.deq = true;
            void *a = logits_spec(&q, prec), *b = logits_spec(&r, prec);
            if (a && b)
                fp4t_check(memcmp(a, b, bytes) == 0 && finite_all(a, prec),
                           "%s %s: logits differ from the F32 checkpoint of the decoded values",
                           f ? "compressed-tensors" : "ModelOpt", pn);
            free(a);
            free(b);
        }
        spec mo = {.fmt = Q_MODELOPT, .pow2 = true}, ct = {.fmt = Q_CT, .pow2 = true, .mlp_only = true};
        spec inv = ct, plain = {.fmt = Q_F32};
        inv.inverted = true;
        void *a = logits_spec(&mo, prec), *b = logits_spec(&ct, prec), *c = logits_spec(&inv, prec);
        void *d = logits_spec(&plain, prec);
        if (a && b && c && d) {
            fp4t_check(memcmp(a, b, bytes) == 0, "%s: ModelOpt (2^-6) and compressed-tensors (2^6) "
                       "of the same codes differ: global-scale polarity (bug A3)", pn);
            fp4t_check(memcmp(a, c, bytes) != 0, "%s: an inverted compressed-tensors global scale "
                       "changed nothing (bug A3 undetectable)", pn);
            fp4t_check(memcmp(a, d, bytes) != 0, "%s: quantized == unquantized logits", pn);
        }
        free(a);
        free(b);
        free(c);
        free(d);
    }
    printf("NVFP4 ModelOpt / compressed-tensors == F32 of the decoded values (both paths); "
           "ModelOpt d == compressed-tensors 1/d; inverted global scale differs\n");
}

/* Other global scales, and FP8 blocks with non-power-of-two scale_inv: the
 * backend checks stored and every element (both paths; resident and
 * streaming). */
static void check_backend(void) {
    const spec specs[3] = {{.fmt = Q_MODELOPT}, {.fmt = Q_CT}, {.fmt = Q_FP8}};
    for (int k = 0; k < 3; k++)
        for (int p = 0; p < 2; p++) {
            rec x = {.s = &specs[k]};
            fp4m_gemm_backend b = {"check", &x, rec_f64, rec_f32};
            if (!fp4t_check(write_ckpt(&specs[k]) == 0, "writing: %s", fp4_last_error())) continue;
            void *lg = logits_of(p ? FP4M_F32 : FP4M_F64, &b, p == 1);
            int missing = 0;
            for (int t = 0; t < g_nt; t++)
                missing += quantized(&specs[k], &g_t[t]) && !strstr(g_t[t].name, ".experts.") && !x.seen[t];
            fp4t_check(lg && missing == 0 && x.elements > 0, "format %d: %d quantized tensors never "
                       "reached the backend", k, missing);
            printf("format %d %s: %lld GEMM calls, %lld quantized weight elements checked\n", k,
                   p ? "f32 streaming" : "f64 resident", (long long)x.calls, (long long)x.elements);
            free(lg);
        }
}

/* bytes_now counts the stored forms on top of the converted values, and
 * frees them with the tensor. */
static int64_t stored_bytes_expected(const spec *s) {
    int64_t n = 0;
    for (int t = 0; t < g_nt; t++) {
        const tdesc *d = &g_t[t];
        if (!quantized(s, d)) continue;
        n += (int64_t)sizeof(fp4m_stored_weight);
        if (s->fmt == Q_FP8)
            n += d->out * d->in + ((d->out + 127) / 128) * ((d->in + 127) / 128) * 4;
        else
            n += d->out * d->in / 2 + d->out * d->in / 16;
    }
    return n;
}

static int64_t bytes_after(const spec *s, bool resident, bool run) {
    fp4m_opts o = fp4m_opts_reference(FP4M_F32);
    fp4m_model *m = NULL;
    int64_t ids[NTOK], b = -1;
    token_ids(ids);
    o.all_resident = resident;
    if (write_ckpt(s) == 0 && fp4m_open(g_dir, &o, &m) == 0 &&
        (!run || fp4m_forward(m, ids, NTOK, true, NULL) == 0))
        b = fp4m_weight_bytes_now(m);
    fp4m_close(m);
    return b;
}

static void check_bytes(void) {
    const spec plain = {.fmt = Q_F32}, mo = {.fmt = Q_MODELOPT}, fp8 = {.fmt = Q_FP8};
    const int64_t base = bytes_after(&plain, true, false);
    const int64_t a = bytes_after(&mo, true, false), ea = stored_bytes_expected(&mo);
    const int64_t b = bytes_after(&fp8, true, false), eb = stored_bytes_expected(&fp8);
    fp4t_check(base > 0 && a - base == ea && b - base == eb,
               "resident bytes: ModelOpt +%lld (want %lld), FP8 +%lld (want %lld)",
               (long long)(a - base), (long long)ea, (long long)(b - base), (long long)eb);
    const int64_t s0 = bytes_after(&plain, false, true), s1 = bytes_after(&mo, false, true);
    fp4t_check(s0 >= 0 && s1 == s0, "after a streamed forward: %lld bytes held, %lld unquantized "
               "(stored forms not freed?)", (long long)s1, (long long)s0);
}

/* ---------------------------------------------------------------------------
 * Errors: each names the tensor (or file, or key) and nothing crashes
 * ------------------------------------------------------------------------- */

/* Opening g_dir (converting everything: data errors show at open) fails
 * with a message holding both needles. */
static void expect_open_error(const char *what, const char *n1, const char *n2) {
    fp4m_opts o = fp4m_opts_reference(FP4M_F32);
    fp4m_model *m = NULL;
    int rc = fp4m_open(g_dir, &o, &m);
    const char *msg = fp4_last_error();
    fp4t_check(rc != 0 && strstr(msg, n1) && strstr(msg, n2),
               "%s: rc %d, message '%s' (want '%s' and '%s')", what, rc, msg, n1, n2);
    printf("%-26s %s\n", what, msg);
    fp4m_close(m);
}

static void expect_error(const char *what, const spec *s, const char *n1, const char *n2) {
    if (fp4t_check(write_ckpt(s) == 0, "%s: writing: %s", what, fp4_last_error()))
        expect_open_error(what, n1, n2);
}

#define MO_T "model.layers.0.mlp.down_proj.weight"
#define CT_T "model.layers.1.self_attn.o_proj.weight"
#define FP8_T "model.layers.1.mlp.experts.2.up_proj.weight"

static void check_tensor_errors(void) {
    const float nan = NAN, inf = INFINITY;
    struct { const char *what; spec s; const char *n1, *n2; } c[] = {
        {"ModelOpt no weight", {.fmt = Q_MODELOPT, .def = D_NO_DATA, .target = MO_T}, MO_T "'", "missing"},
        {"ModelOpt no weight_scale", {.fmt = Q_MODELOPT, .def = D_NO_SCALE, .target = MO_T},
         MO_T "_scale'", "missing"},
        {"ModelOpt no weight_scale_2", {.fmt = Q_MODELOPT, .def = D_NO_GLOBAL, .target = MO_T},
         MO_T "_scale_2'", "missing"},
        {"scale shape", {.fmt = Q_MODELOPT, .def = D_SCALE_SHAPE, .target = MO_T}, MO_T "_scale'",
         "expected F8_E4M3 [64, 6] (one scale per 16), checkpoint has F8_E4M3 [64, 5]"},
        {"scale dtype F32", {.fmt = Q_MODELOPT, .def = D_SCALE_F32, .target = MO_T}, MO_T "_scale'",
         "checkpoint has F32 [64, 6]"},
        {"U8 weight [out, in/2+1]", {.fmt = Q_MODELOPT, .def = D_DATA_SHAPE, .target = MO_T}, MO_T "'",
         "expected U8 [64, 48] (two E2M1 codes per byte), checkpoint has U8 [64, 49]"},
        {"U8 weight unpacked", {.fmt = Q_MODELOPT, .def = D_DATA_UNPACKED, .target = MO_T}, MO_T "'",
         "checkpoint has U8 [64, 96]"},
        {"I8 weight", {.fmt = Q_MODELOPT, .def = D_DATA_I8, .target = MO_T}, MO_T "'",
         "expected shape [64, 96], checkpoint has [64, 48]"},
        {"scale bit 7", {.fmt = Q_MODELOPT, .def = D_BIT7, .target = MO_T}, MO_T "_scale'", "bit 7 set"},
        {"scale NaN", {.fmt = Q_CT, .def = D_NAN_SCALE, .target = CT_T},
         "model.layers.1.self_attn.o_proj.weight_scale'", "0x7F (NaN)"},
        {"weight_scale_2 = 0", {.fmt = Q_MODELOPT, .def = D_GLOBAL_VALUE, .target = MO_T, .bad = 0},
         MO_T "_scale_2'", "must be finite and > 0"},
        {"weight_scale_2 < 0", {.fmt = Q_MODELOPT, .def = D_GLOBAL_VALUE, .target = MO_T, .bad = -0.5f},
         MO_T "_scale_2'", "must be finite and > 0"},
        {"weight_global_scale NaN", {.fmt = Q_CT, .def = D_GLOBAL_VALUE, .target = CT_T, .bad = nan},
         "o_proj.weight_global_scale'", "must be finite and > 0"},
        {"weight_global_scale inf", {.fmt = Q_CT, .def = D_GLOBAL_VALUE, .target = CT_T, .bad = inf},
         "o_proj.weight_global_scale'", "must be finite and > 0"},
        {"weight_scale_2 [2]", {.fmt = Q_MODELOPT, .def = D_GLOBAL_SHAPE, .target = MO_T},
         MO_T "_scale_2'", "expected F32 scalar ([] or [1]), checkpoint has F32 [2]"},
        {"input_scale = 0", {.fmt = Q_MODELOPT, .def = D_INPUT_VALUE, .target = MO_T, .bad = 0},
         "model.layers.0.mlp.down_proj.input_scale'", "must be finite and > 0"},
        {"no weight_global_scale", {.fmt = Q_CT, .def = D_NO_GLOBAL, .target = CT_T},
         "o_proj.weight_global_scale'", "missing"},
        {"CT and plain weight", {.fmt = Q_CT, .def = D_BOTH, .target = CT_T}, CT_T "'",
         "also holds '" "model.layers.1.self_attn.o_proj.weight_packed'"},
        {"FP8 no scale_inv", {.fmt = Q_FP8, .def = D_NO_SCALE, .target = FP8_T}, FP8_T "_scale_inv'",
         "missing"},
        {"in % 16 != 0", {.fmt = Q_CT, .moe_inter = 40}, "down_proj.weight_packed'",
         "in = 40 is not a multiple of 16"},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) expect_error(c[i].what, &c[i].s, c[i].n1, c[i].n2);
}

/* Scale bytes are only read when a tensor is converted: streaming opens,
 * and the forward that reaches the tensor fails naming it. */
static void check_stream_error(void) {
    const spec s = {.fmt = Q_MODELOPT, .def = D_NAN_SCALE, .target = MO_T};
    fp4m_opts o = fp4m_opts_reference(FP4M_F64);
    fp4m_model *m = NULL;
    int64_t ids[NTOK];
    token_ids(ids);
    o.all_resident = false;
    if (!fp4t_check(write_ckpt(&s) == 0 && fp4m_open(g_dir, &o, &m) == 0, "streaming open: %s",
                    fp4_last_error()))
        return;
    int rc = fp4m_forward(m, ids, NTOK, true, NULL);
    fp4t_check(rc != 0 && strstr(fp4_last_error(), MO_T "_scale'"), "streamed NaN scale: rc %d, '%s'",
               rc, fp4_last_error());
    fp4m_close(m);
}

static const char k_hf_excl[] =
    "{\"quantization\": {\"quant_algo\": \"NVFP4\", \"group_size\": 16,\n"
    " \"exclude_modules\": [\"lm_head\", \"model.layers.[01].mlp.down_pro?\"]}}";
static const char k_hf_g32[] = "{\"quantization\": {\"quant_algo\": \"NVFP4\", \"group_size\": 32}}";
static const char k_hf_fp8[] = "{\"quantization\": {\"quant_algo\": \"FP8\", \"group_size\": 16}}";
static const char k_ct_bits8[] =
    "{\"quant_method\": \"compressed-tensors\", \"format\": \"nvfp4-pack-quantized\",\n"
    " \"config_groups\": {\"g\": {\"weights\": {\"num_bits\": 8, \"type\": \"float\",\n"
    " \"strategy\": \"tensor_group\", \"group_size\": 16}}}}";
static const char k_ct_ignore[] =
    "{\"quant_method\": \"compressed-tensors\", \"format\": \"nvfp4-pack-quantized\",\n"
    " \"config_groups\": {\"g\": {\"weights\": {\"num_bits\": 4, \"type\": \"float\",\n"
    " \"strategy\": \"tensor_group\", \"group_size\": 16}}},\n"
    " \"ignore\": [\"re:.*self_attn\\\\.o_proj$\"]}";

/* What the quantization config says must agree with the tensors. */
static void check_config_errors(void) {
    struct { const char *what; spec s; const char *n1, *n2; } c[] = {
        {"excluded but quantized", {.fmt = Q_MODELOPT, .hf = k_hf_excl}, MO_T "' is stored as NVFP4",
         "excludes module 'model.layers.0.mlp.down_proj' (pattern 'model.layers.[01].mlp.down_pro?')"},
        {"ignored but quantized", {.fmt = Q_CT, .qc = k_ct_ignore}, "o_proj.weight' is stored as NVFP4",
         "pattern 're:.*self_attn\\.o_proj$'"},
        {"CT tensors, ModelOpt cfg", {.fmt = Q_CT, .qc = "null", .hf = k_hf_default},
         "compressed-tensors layout", "hf_quant_config.json configures nvfp4-modelopt"},
        {"ModelOpt tensors, CT cfg", {.fmt = Q_MODELOPT, .qc = k_ct_default, .hf = ""},
         "weight' is stored in the ModelOpt layout", "config.json configures nvfp4-compressed-tensors"},
        {"hf + CT config", {.fmt = Q_MODELOPT, .qc = k_ct_default}, "hf_quant_config.json (ModelOpt)",
         "contradict"},
        {"hf without quant_algo", {.fmt = Q_MODELOPT, .hf = "{\"x\": 1}"},
         "quant config: hf_quant_config.json", "\"quant_algo\" missing"},
        {"group_size 32", {.fmt = Q_MODELOPT, .hf = k_hf_g32}, "hf_quant_config.json",
         "\"quantization.group_size\" must be 16"},
        {"quant_algo FP8", {.fmt = Q_MODELOPT, .hf = k_hf_fp8}, "\"quantization.quant_algo\" is \"FP8\"",
         "only \"NVFP4\""},
        {"num_bits 8", {.fmt = Q_CT, .qc = k_ct_bits8},
         "quantization_config.config_groups.g.weights.num_bits", "must be 4"},
        {"hf not JSON", {.fmt = Q_MODELOPT, .hf = "{\"quantization\": "}, "hf_quant_config.json",
         "not a JSON object"},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) expect_error(c[i].what, &c[i].s, c[i].n1, c[i].n2);
}

/* Rewrites bytes of a file in g_dir at `off`. */
static int patch_file(const char *name, long off, const void *bytes, size_t n) {
    char p[128];
    path_of(p, sizeof p, name);
    FILE *f = fopen(p, "r+b");
    int ok = f && fseek(f, off, SEEK_SET) == 0 && fwrite(bytes, 1, n, f) == n;
    if (f) ok = fclose(f) == 0 && ok;
    return ok ? 0 : -1;
}

static long file_size(const char *name) {
    char p[128];
    path_of(p, sizeof p, name);
    FILE *f = fopen(p, "rb");
    long n = f && fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (f) fclose(f);
    return n;
}

/* The last "data_offsets":[b,e] of the header gets an end with as many
 * digits, all 9: past the data area, header length unchanged. */
static int offset_past_end(const char *name) {
    char p[128], *h = NULL;
    uint64_t n = 0;
    path_of(p, sizeof p, name);
    FILE *f = fopen(p, "rb");
    if (!f || fread(&n, 8, 1, f) != 1 || n > 1000000 || !(h = calloc(n + 1, 1)) || fread(h, 1, n, f) != n) {
        if (f) fclose(f);
        free(h);
        return -1;
    }
    fclose(f);
    char *last = NULL;
    for (char *q = strstr(h, "\"data_offsets\":["); q; q = strstr(q + 1, "\"data_offsets\":[")) last = q;
    char *end = last ? strchr(last, ',') : NULL;
    int rc = -1;
    if (end) {
        for (char *d = end + 1; *d >= '0' && *d <= '9'; d++) *d = '9';
        rc = patch_file(name, 8, h, n);
    }
    free(h);
    return rc;
}

/* Broken files of a sharded ModelOpt checkpoint: messages name the shard. */
static void check_corrupt_files(void) {
    const spec s = {.fmt = Q_MODELOPT, .shards = true};
    char p[128];
    const char *s2 = k_shard_names[1];
    if (write_ckpt(&s) == 0) {
        path_of(p, sizeof p, s2);
        fp4t_check(truncate(p, file_size(s2) / 2) == 0, "truncate");
        expect_open_error("truncated shard", s2, "model.layers.1.");
    }
    if (write_ckpt(&s) == 0) {
        uint64_t big = (uint64_t)file_size(k_shard_names[0]) + 1000;
        fp4t_check(patch_file(k_shard_names[0], 0, &big, 8) == 0, "patch");
        expect_open_error("header length past end", k_shard_names[0], "past the end");
    }
    if (write_ckpt(&s) == 0) {
        fp4t_check(offset_past_end(s2) == 0, "patch offsets");
        expect_open_error("data offset out of range", s2, "model.layers.1.");
    }
    if (write_ckpt(&s) == 0) {
        uint64_t zero = 0;
        fp4t_check(patch_file(k_shard_names[0], 0, &zero, 8) == 0, "patch");
        expect_open_error("header length 0", k_shard_names[0], "header");
    }
}

/* ---------------------------------------------------------------------------
 * Quantization configs as text (fp4m_quant_config_parse)
 * ------------------------------------------------------------------------- */

static bool excl(const fp4m_quant_config *q, const char *module) {
    return fp4m_quant_excluded(q, module, NULL);
}

/* Matching as the consumers do it: vLLM fnmatch(prefix, pattern) for
 * ModelOpt (full match, '*' crosses dots, [..] classes); compressed-tensors
 * _match_name: exact name, or "re:" + re.match (anchored at the start
 * only). */
static void check_quant_config_text(void) {
    fp4m_quant_config q;
    const char *hf = "{\"producer\": {\"name\": \"modelopt\", \"version\": \"0.23.0\"},"
                     " \"quantization\": {\"quant_algo\": \"NVFP4\", \"kv_cache_quant_algo\": \"FP8\","
                     " \"group_size\": 16, \"exclude_modules\": [\"lm_head\","
                     " \"model.layers.*.self_attn*\", \"model.layers.*.mlp.gate\", \"model.layers.6[01]*\"]}}";
    if (fp4t_check(fp4m_quant_config_parse(NULL, hf, &q) == 0, "modelopt: %s", fp4_last_error())) {
        fp4t_check(q.method == FP4M_QUANT_NVFP4_MODELOPT && q.group_size == 16 && q.n_patterns == 4 &&
                       !strcmp(q.producer, "modelopt 0.23.0") && !strcmp(q.kv_cache, "FP8") && q.input_quant,
                   "modelopt fields");
        fp4t_check(excl(&q, "lm_head") && excl(&q, "model.layers.7.self_attn.o_proj") &&
                       excl(&q, "model.layers.12.mlp.gate") && excl(&q, "model.layers.61.mlp.experts.3.up_proj") &&
                       !excl(&q, "model.layers.12.mlp.gate_proj") && !excl(&q, "model.layers.3.mlp.experts.0.up_proj") &&
                       !excl(&q, "xlm_head") && !excl(&q, "model.layers.62.mlp.down_proj"),
                   "modelopt exclude_modules matching");
    }
    fp4m_quant_config_free(&q);
    char cfg[2048];
    snprintf(cfg, sizeof cfg, "{\"quantization_config\": %s}", k_ct_default);
    if (fp4t_check(fp4m_quant_config_parse(cfg, NULL, &q) == 0, "ct: %s", fp4_last_error())) {
        fp4t_check(q.method == FP4M_QUANT_NVFP4_CT && !strcmp(q.format, "nvfp4-pack-quantized") &&
                       q.input_quant && q.n_patterns == 2,
                   "compressed-tensors fields");
        fp4t_check(excl(&q, "lm_head") && excl(&q, "model.layers.3.mlp.gate") &&
                       !excl(&q, "model.layers.3.mlp.gate_proj") && !excl(&q, "model.lm_head"),
                   "compressed-tensors ignore matching");
    }
    fp4m_quant_config_free(&q);
    const char *anch = "{\"quantization_config\": {\"quant_method\": \"compressed-tensors\","
                       " \"format\": \"nvfp4-pack-quantized\", \"config_groups\": {\"g\": {\"weights\":"
                       " {\"num_bits\": 4, \"type\": \"float\", \"strategy\": \"tensor_group\","
                       " \"group_size\": 16}}}, \"ignore\": [\"re:mlp\"]}}";
    if (fp4t_check(fp4m_quant_config_parse(anch, NULL, &q) == 0, "ct2: %s", fp4_last_error()))
        fp4t_check(!excl(&q, "model.layers.3.mlp.gate") && excl(&q, "mlp.x") && !q.input_quant,
                   "\"re:\" must match at the start of the name only (re.match)");
    fp4m_quant_config_free(&q);
    snprintf(cfg, sizeof cfg, "{\"quantization_config\": {\"quant_method\": \"fp8\", \"weight_block_size\": [64, 32]}}");
    if (fp4t_check(fp4m_quant_config_parse(cfg, NULL, &q) == 0, "fp8: %s", fp4_last_error()))
        fp4t_check(q.method == FP4M_QUANT_FP8_BLOCK && q.fp8_block[0] == 64 && q.fp8_block[1] == 32,
                   "fp8 block");
    fp4m_quant_config_free(&q);
    fp4t_check(fp4m_quant_config_parse("{\"quantization_config\": {\"quant_method\": \"awq\"}}", NULL, &q) != 0 &&
                   strstr(fp4_last_error(), "\"quantization_config.quant_method\" \"awq\" unsupported"),
               "unknown quant_method: '%s'", fp4_last_error());
    fp4m_quant_config_free(&q);
    snprintf(cfg, sizeof cfg, "{\"quantization_config\": %s}", k_ct_default);
    fp4t_check(fp4m_quant_config_parse(cfg, hf, &q) != 0 && strstr(fp4_last_error(), "contradict"),
               "ModelOpt + compressed-tensors: '%s'", fp4_last_error());
    fp4m_quant_config_free(&q);
    fp4t_check(fp4m_quant_config_parse("{}", NULL, &q) == 0 && q.method == FP4M_QUANT_NONE, "no config");
    fp4m_quant_config_free(&q);
}

int main(void) {
    fp4t_begin("test_model_quant_ckpt");
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/fp4mq_XXXXXX", tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    check_exact();
    check_backend();
    check_bytes();
    check_tensor_errors();
    check_stream_error();
    check_config_errors();
    check_corrupt_files();
    check_quant_config_text();
    clear_dir();
    rmdir(g_dir);
    return fp4t_end();
}
