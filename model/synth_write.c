/* synth_write.c - writes a checkpoint holding a config's synthetic weights
 * (synth.c's values) in one of the layouts real checkpoints use: plain
 * F32/BF16/F16, DeepSeek FP8 blocks, ModelOpt NVFP4 or compressed-tensors
 * NVFP4 (docs/model.md "Quantized checkpoints"). The tensors come from the
 * manifest, the quantizers from ref/'s recipe table, the on-disk names from
 * ref/'s conventions (fp4_disk_write). */
#define _DEFAULT_SOURCE 1 /* mkdir under -std=c17 */
#include "model_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const k_dtypes[FP4M_SD_COUNT] = {"f32", "bf16", "f16", "fp8",
                                                    "nvfp4-modelopt", "nvfp4-ct"};

const char *fp4m_synth_dtype_name(fp4m_synth_dtype d) {
    return (unsigned)d < FP4M_SD_COUNT ? k_dtypes[d] : "?";
}

const char *fp4m_synth_dtype_names(void) { return "f32, bf16, f16, fp8, nvfp4-modelopt, nvfp4-ct"; }

int fp4m_synth_dtype_from_name(const char *s, fp4m_synth_dtype *out) {
    for (int d = 0; s && d < FP4M_SD_COUNT; d++)
        if (strcmp(s, k_dtypes[d]) == 0) {
            *out = (fp4m_synth_dtype)d;
            return 0;
        }
    return fp4_fail("unknown checkpoint dtype '%s' (valid: %s)", s ? s : "(null)",
                    fp4m_synth_dtype_names());
}

fp4m_synth_write_opts fp4m_synth_write_opts_default(void) {
    fp4m_synth_write_opts o = {0, FP4M_SD_F32, 32.0};
    return o;
}

typedef struct writer {
    fp4m_synth_write_opts o;
    const fp4_qrecipe *recipe; /* NVFP4 dtypes: modelopt / compressed-tensors */
    float input_amax;          /* bf16(input_amax) */
    float input_global;        /* input_scale or input_global_scale */
    fp4_st_writer *w;
    int64_t count;
} writer;

/* Whether dtype d stores t quantized. fp8: every attention, MLP and expert
 * linear (the original R1, ds §3); nvfp4-modelopt: the MLP and expert
 * linears only (R1 NVFP4 v1, recipes.md §0 item 8, §7.1); nvfp4-ct: every
 * linear but the router and lm_head (what the ignore list written says).
 * Never the embedding, norms, router or lm_head. */
static bool quantized(fp4m_synth_dtype d, const fp4m_tensor_info *t) {
    if (d < FP4M_SD_FP8 || !t->linear || t->lclass == FP4M_LC_HEAD) return false;
    if (d != FP4M_SD_NVFP4_MO) return true;
    return t->lclass == FP4M_LC_DENSE || t->lclass == FP4M_LC_EXPERT || t->lclass == FP4M_LC_SHARED;
}

/* Tensors a quantized format keeps unquantized: BF16 as in the R1
 * checkpoints, e_score_correction_bias F32 (ds §3). */
static fp4_st_dtype plain_dtype(fp4m_synth_dtype d, const fp4m_tensor_info *t) {
    if (d == FP4M_SD_F32) return FP4_ST_F32;
    if (d == FP4M_SD_BF16) return FP4_ST_BF16;
    if (d == FP4M_SD_F16) return FP4_ST_F16;
    return t->slot == FP4M_SLOT_BIAS ? FP4_ST_F32 : FP4_ST_BF16;
}

/* FP32 -> BF16 or F16 codes, round to nearest even (values are finite and
 * far inside both ranges). malloc'ed. */
static uint16_t *to_16(const float *v, int64_t n, bool f16) {
    fp4_cvt_opts o = fp4_cvt_opts_default();
    uint16_t *h = malloc((size_t)(n ? n : 1) * sizeof *h);
    for (int64_t i = 0; h && i < n; i++)
        h[i] = f16 ? f32_to_f16(v[i], &o, NULL, NULL) : f32_to_bf16(v[i], &o, NULL, NULL);
    return h;
}

static int put(writer *x, const char *name, fp4_st_dtype dt, int32_t ndim, int64_t d0, int64_t d1,
               const void *data, int64_t nbytes) {
    int64_t shape[2] = {d0, d1};
    return fp4_st_writer_add_copy(x->w, name, dt, ndim, shape, data, nbytes) == FP4_ST_OK ? 0 : -1;
}

static int write_plain(writer *x, const fp4m_tensor_info *t, const float *v) {
    const fp4_st_dtype dt = plain_dtype(x->o.dtype, t);
    const int64_t n = t->out * (t->in > 0 ? t->in : 1);
    const int32_t ndim = t->in > 0 ? 2 : 1;
    if (dt == FP4_ST_F32) return put(x, t->name, dt, ndim, t->out, t->in, v, 4 * n);
    uint16_t *h = to_16(v, n, dt == FP4_ST_F16);
    if (!h) return fp4_fail_kind(FP4_ERR_NOMEM, "model synth: out of memory");
    int rc = put(x, t->name, dt, ndim, t->out, t->in, h, 2 * n);
    free(h);
    return rc;
}

/* Module name of a weight: "X" for "X.weight". */
static void stem_of(const char *name, char *buf, size_t n) {
    size_t k = strlen(name);
    if (k >= 7 && strcmp(name + k - 7, ".weight") == 0) k -= 7;
    snprintf(buf, n, "%.*s", (int)k, name);
}

/* DeepSeek FP8 blocks: the deepseek-fp8-weight recipe, stored as
 * X.weight + X.weight_scale_inv. */
static int write_fp8(writer *x, const fp4m_tensor_info *t, const float *v) {
    fp4_qtensor q;
    if (fp4_quantize_by_name("deepseek-fp8-weight", FP4_FMT_F32, v, t->out, t->in, NULL, &q))
        return fp4_fail_wrap("model synth: '%s'", t->name);
    fp4_disk_tensor d = {.t = q.t, .conv = FP4_DISK_DEEPSEEK_FP8, .global_stored = 1.0f};
    char stem[200];
    stem_of(t->name, stem, sizeof stem);
    int rc = fp4_disk_write(x->w, stem, &d);
    fp4_qtensor_free(&q);
    return rc;
}

static float amax16(const uint16_t *bf, int64_t n) {
    float a = 0;
    for (int64_t i = 0; i < n; i++) {
        float v = bf16_to_f32(bf[i]);
        a = v > a ? v : -v > a ? -v : a;
    }
    return a;
}

/* ModelOpt's weight amax of t: gate_proj and up_proj of one MLP share
 * max(amax_gate, amax_up) (preprocess_linear_fusion, recipes.md §2.3), so
 * they get one weight_scale_2; the sibling's values are regenerated. */
static int modelopt_amax(const writer *x, const fp4m_tensor_info *t, const uint16_t *bf,
                         float *amax) {
    const int64_t n = t->out * t->in;
    *amax = amax16(bf, n);
    if (t->slot != FP4M_SLOT_GATE && t->slot != FP4M_SLOT_UP) return 0;
    char sib[200];
    const char *own = t->slot == FP4M_SLOT_GATE ? "gate_proj.weight" : "up_proj.weight";
    size_t stem = strlen(t->name) - strlen(own);
    snprintf(sib, sizeof sib, "%.*s%s", (int)stem, t->name,
             t->slot == FP4M_SLOT_GATE ? "up_proj.weight" : "gate_proj.weight");
    float *v = malloc((size_t)n * sizeof *v);
    uint16_t *h = NULL;
    if (v) fp4m_synth_rows(x->o.seed, sib, t->in, 0, t->out, v);
    if (v) h = to_16(v, n, false);
    if (h) {
        float s = amax16(h, n);
        if (s > *amax) *amax = s;
    }
    free(v);
    free(h);
    return h ? 0 : fp4_fail_kind(FP4_ERR_NOMEM, "model synth: out of memory");
}

/* NVFP4 with the producer's recipe (fp4_quantize) from the BF16-rounded
 * values, as ModelOpt quantized R1's BF16 weights and llm-compressor a BF16
 * model; stored under the producer's names (fp4_disk_write). */
static int write_nvfp4(writer *x, const fp4m_tensor_info *t, const float *v) {
    const bool mo = x->o.dtype == FP4M_SD_NVFP4_MO;
    if (t->in % 16)
        return fp4_fail("model synth: tensor '%s': in = %" PRId64 " is not a multiple of 16, the "
                        "NVFP4 block size", t->name, t->in);
    uint16_t *bf = to_16(v, t->out * t->in, false);
    if (!bf) return fp4_fail_kind(FP4_ERR_NOMEM, "model synth: out of memory");
    fp4_qopts o = fp4_qopts_default();
    fp4_qtensor q;
    int rc = 0;
    if (mo) {
        o.global_source = FP4_QGS_AMAX;
        rc = modelopt_amax(x, t, bf, &o.amax);
    }
    if (!rc && fp4_quantize(x->recipe, FP4_FMT_BF16, bf, t->out, t->in, &o, &q) != 0)
        rc = fp4_fail_wrap("model synth: '%s'", t->name);
    free(bf);
    if (rc) return rc;
    fp4_disk_tensor d = {.t = q.t, .conv = mo ? FP4_DISK_MODELOPT : FP4_DISK_CT,
                         .has_global = true, .global_encode = !mo, .global_stored = q.global_stored,
                         .has_input = true, .input_stored = x->input_global};
    char stem[200];
    stem_of(t->name, stem, sizeof stem);
    rc = fp4_disk_write(x->w, stem, &d);
    fp4_qtensor_free(&q);
    return rc;
}

/* input_scale (ModelOpt, decode: fp32(A) / 2688 as torch computes it,
 * recipes.md §2.1) or input_global_scale (compressed-tensors, encode: 2688 /
 * A in BF16, §2.8) from the activation amax A, taken as the BF16 number an
 * observer of BF16 activations reports: the recipe's own global scale of a
 * one-block tensor whose amax is A. */
static int input_global(writer *x) {
    uint16_t blk[16] = {0};
    fp4_cvt_opts co = fp4_cvt_opts_default();
    blk[0] = f32_to_bf16((float)x->o.input_amax, &co, NULL, NULL);
    x->input_amax = bf16_to_f32(blk[0]);
    fp4_qopts o = fp4_qopts_default();
    o.global_source = FP4_QGS_AMAX;
    o.amax = x->input_amax;
    fp4_qtensor q;
    if (fp4_quantize(x->recipe, FP4_FMT_BF16, blk, 1, 16, &o, &q) != 0)
        return fp4_fail_wrap("model synth: input scale");
    x->input_global = q.global_stored;
    fp4_qtensor_free(&q);
    return 0;
}

static int write_one(void *ctx, const fp4m_tensor_info *t) {
    writer *x = ctx;
    const int64_t cols = t->in > 0 ? t->in : 1;
    float *v = malloc((size_t)(t->out * cols) * sizeof *v);
    if (!v) return fp4_fail_kind(FP4_ERR_NOMEM, "model synth: out of memory");
    fp4m_synth_rows(x->o.seed, t->name, cols, 0, t->out, v);
    int rc;
    if (!quantized(x->o.dtype, t)) rc = write_plain(x, t, v);
    else if (x->o.dtype == FP4M_SD_FP8) rc = write_fp8(x, t, v);
    else rc = write_nvfp4(x, t, v);
    free(v);
    x->count++;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Config files                                                              */
/* ------------------------------------------------------------------------ */

/* config.json's quantization_config for fp8 (R1's own, recipes.md §7.3) and
 * nvfp4-ct (llm-compressor's NVFP4 scheme, §2.8: W4A4, weights static,
 * activations dynamic "local" block scales with a calibrated global). */
static cJSON *quant_config(fp4m_synth_dtype d) {
    cJSON *q = cJSON_CreateObject();
    if (d == FP4M_SD_FP8) {
        cJSON_AddStringToObject(q, "activation_scheme", "dynamic");
        cJSON_AddStringToObject(q, "fmt", "e4m3");
        cJSON_AddStringToObject(q, "quant_method", "fp8");
        int bs[2] = {128, 128};
        cJSON_AddItemToObject(q, "weight_block_size", cJSON_CreateIntArray(bs, 2));
        return q;
    }
    cJSON_AddStringToObject(q, "quant_method", "compressed-tensors");
    cJSON_AddStringToObject(q, "format", "nvfp4-pack-quantized");
    cJSON_AddStringToObject(q, "quantization_status", "compressed");
    cJSON *g = cJSON_AddObjectToObject(cJSON_AddObjectToObject(q, "config_groups"), "group_0");
    const char *targets[1] = {"Linear"};
    cJSON_AddItemToObject(g, "targets", cJSON_CreateStringArray(targets, 1));
    cJSON_AddStringToObject(g, "format", "nvfp4-pack-quantized");
    for (int k = 0; k < 2; k++) {
        cJSON *a = cJSON_AddObjectToObject(g, k ? "input_activations" : "weights");
        cJSON_AddNumberToObject(a, "num_bits", 4);
        cJSON_AddStringToObject(a, "type", "float");
        cJSON_AddStringToObject(a, "strategy", "tensor_group");
        cJSON_AddNumberToObject(a, "group_size", 16);
        cJSON_AddBoolToObject(a, "symmetric", true);
        if (k) cJSON_AddStringToObject(a, "dynamic", "local");
        else cJSON_AddBoolToObject(a, "dynamic", false);
    }
    const char *ignore[2] = {"lm_head", "re:.*mlp\\.gate$"};
    cJSON_AddItemToObject(q, "ignore", cJSON_CreateStringArray(ignore, 2));
    cJSON_AddNullToObject(q, "kv_cache_scheme");
    return q;
}

/* ModelOpt's hf_quant_config.json (recipes.md §7.1): exclude_modules is a
 * wildcard summary of every module with an unquantized weight. */
static char *hf_quant_config(void) {
    cJSON *o = cJSON_CreateObject(), *p = cJSON_AddObjectToObject(o, "producer");
    cJSON_AddStringToObject(p, "name", "fp4sim");
    cJSON_AddStringToObject(p, "version", "synth (modelopt recipe)");
    cJSON *q = cJSON_AddObjectToObject(o, "quantization");
    cJSON_AddStringToObject(q, "quant_algo", "NVFP4");
    cJSON_AddNullToObject(q, "kv_cache_quant_algo");
    cJSON_AddNumberToObject(q, "group_size", 16);
    const char *ex[7] = {"lm_head", "model.embed_tokens", "model.norm",
                         "model.layers.*.input_layernorm", "model.layers.*.post_attention_layernorm",
                         "model.layers.*.self_attn*", "model.layers.*.mlp.gate"};
    cJSON_AddItemToObject(q, "exclude_modules", cJSON_CreateStringArray(ex, 7));
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    return text;
}

static int write_text(const char *dir, const char *name, const char *text) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    size_t n = strlen(text);
    int ok = f && fwrite(text, 1, n, f) == n;
    if (f && fclose(f) != 0) ok = 0;
    return ok ? 0 : fp4_fail_kind(FP4_ERR_IO, "model synth: cannot write '%s': %s", path,
                                  strerror(errno));
}

/* config.json as given for unquantized dtypes; for quantized ones with the
 * quantization_config replaced (fp8, nvfp4-ct) or removed (nvfp4-modelopt,
 * as ModelOpt's DeepSeek script does, recipes.md §7.1) and
 * hf_quant_config.json beside it, which is removed otherwise so that a
 * directory written twice never keeps a stale one. */
static int write_configs(const char *out, fp4m_synth_dtype dtype, const char *cfg_text) {
    char hf[4096];
    snprintf(hf, sizeof hf, "%s/hf_quant_config.json", out);
    if (dtype != FP4M_SD_NVFP4_MO && remove(hf) != 0 && errno != ENOENT)
        return fp4_fail_kind(FP4_ERR_IO, "model synth: cannot remove '%s': %s", hf, strerror(errno));
    if (dtype < FP4M_SD_FP8) return write_text(out, "config.json", cfg_text);
    cJSON *root = cJSON_Parse(cfg_text);
    if (!root) return fp4_fail("model synth: the config is not JSON");
    cJSON_DeleteItemFromObjectCaseSensitive(root, "quantization_config");
    if (dtype != FP4M_SD_NVFP4_MO) cJSON_AddItemToObject(root, "quantization_config", quant_config(dtype));
    char *text = cJSON_Print(root), *hq = dtype == FP4M_SD_NVFP4_MO ? hf_quant_config() : NULL;
    cJSON_Delete(root);
    int rc = !text || (dtype == FP4M_SD_NVFP4_MO && !hq)
                 ? fp4_fail_kind(FP4_ERR_NOMEM, "model synth: out of memory")
                 : write_text(out, "config.json", text);
    if (!rc && hq) rc = write_text(out, "hf_quant_config.json", hq);
    free(text);
    free(hq);
    return rc;
}

/* __metadata__: what synth did, so a checkpoint says how it was made. */
static int metadata(const writer *x) {
    char seed[32], amax[32];
    snprintf(seed, sizeof seed, "%" PRIu64, x->o.seed);
    snprintf(amax, sizeof amax, "%.9g", (double)x->input_amax);
    const char *recipe = x->o.dtype == FP4M_SD_FP8 ? "deepseek-fp8-weight (amax/448 per 128x128 tile)"
                         : x->recipe               ? x->recipe->name
                                                   : "none";
    fp4_st_writer *w = x->w;
    return fp4_st_writer_set_metadata(w, "format", "pt") != FP4_ST_OK ||
                   fp4_st_writer_set_metadata(w, "fp4sim.synth.seed", seed) != FP4_ST_OK ||
                   fp4_st_writer_set_metadata(w, "fp4sim.synth.dtype", k_dtypes[x->o.dtype]) != FP4_ST_OK ||
                   fp4_st_writer_set_metadata(w, "fp4sim.synth.recipe", recipe) != FP4_ST_OK ||
                   (x->recipe && fp4_st_writer_set_metadata(w, "fp4sim.synth.input_amax", amax) != FP4_ST_OK)
               ? -1
               : 0;
}

/* A directory already holding a sharded checkpoint would keep being read
 * through its index (the loader prefers model.safetensors.index.json), so
 * the new weights would be silently ignored: refuse it. */
static int check_out_dir(const char *out) {
    char p[4096];
    struct stat sb;
    if (stat(out, &sb) == 0 && !S_ISDIR(sb.st_mode))
        return fp4_fail("model synth: --out '%s' exists and is not a directory", out);
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", out);
    if (lstat(p, &sb) == 0)
        return fp4_fail("model synth: '%s' holds a sharded checkpoint (%s): the loader would keep "
                        "reading its shards; give an empty or new directory",
                        out, "model.safetensors.index.json");
    return 0;
}

int fp4m_synth_write(const char *config_path, const char *out_dir, const fp4m_synth_write_opts *opts,
                     int64_t *ntensors) {
    writer x;
    memset(&x, 0, sizeof x);
    x.o = opts ? *opts : fp4m_synth_write_opts_default();
    if ((unsigned)x.o.dtype >= FP4M_SD_COUNT) return fp4_fail("model synth: bad dtype");
    if (!(x.o.input_amax >= 1e-6 && x.o.input_amax <= 1e30))
        return fp4_fail("model synth: input amax %g outside [1e-6, 1e30]", x.o.input_amax);
    fp4m_config c;
    if (fp4m_config_load(config_path, &c) != 0) return -1;
    fp4m_counts total, active;
    fp4m_count_model(&c, &total, &active);
    if (total.params > 2000000000LL)
        return fp4_fail("model synth: the config has %" PRId64 " parameters, more than the 2e9 "
                        "synth writes", total.params);
    if (check_out_dir(out_dir)) return -1;
    char *cfg_file = fp4m_join_if_dir(config_path, "config.json");
    char *cfg_text = cfg_file ? fp4m_read_text(cfg_file) : NULL;
    free(cfg_file);
    if (!cfg_text) return fp4_fail("model synth: cannot read the config '%s'", config_path);
    int rc = 0;
    if ((x.o.dtype == FP4M_SD_NVFP4_MO || x.o.dtype == FP4M_SD_NVFP4_CT) &&
        fp4_qrecipe_from_name(x.o.dtype == FP4M_SD_NVFP4_MO ? "modelopt" : "compressed-tensors",
                              &x.recipe) != 0)
        rc = -1;
    else if (mkdir(out_dir, 0777) != 0 && errno != EEXIST)
        rc = fp4_fail("model synth: cannot create '%s': %s", out_dir, strerror(errno));
    else
        rc = write_configs(out_dir, x.o.dtype, cfg_text);
    free(cfg_text);
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", out_dir);
    if (!rc && x.recipe) rc = input_global(&x);
    if (!rc && fp4_st_writer_create(path, &x.w) != FP4_ST_OK) rc = -1;
    if (!rc) rc = metadata(&x);
    if (!rc) rc = fp4m_manifest(&c, write_one, &x);
    fp4_st_writer *w = x.w;
    if (rc) fp4_st_writer_abort(w);
    else if (fp4_st_writer_finish(w) != FP4_ST_OK) rc = -1;
    if (!rc && ntensors) *ntensors = x.count;
    return rc;
}
