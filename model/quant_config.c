/* quant_config.c - the quantization config of a checkpoint: ModelOpt's
 * hf_quant_config.json (recipes.md §7.1), config.json's quantization_config
 * for compressed-tensors (§2.8, §7.2), ModelOpt-in-config.json, and
 * DeepSeek's FP8 blocks (§7.3). See fp4model.h for the keys read.
 *
 * The config only describes what a producer intended; the loader (weights.c)
 * detects each tensor's storage from the tensors and uses this to cross-check
 * and to report. Errors name the file and the key. */
#include "model_internal.h"

#include <cjson/cJSON.h>
#include <fnmatch.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The only NVFP4 block size (recipes.md §1; vLLM refuses others). */
#define NVFP4_GROUP 16

/* Member `key` of o, NULL when absent or JSON null. */
static const cJSON *member(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

/* String member copied into buf ("" when absent and not required). `path`
 * is the key's full name for messages. */
static int get_str(const cJSON *o, const char *file, const char *path, const char *key,
                   bool required, char *buf, size_t n) {
    const cJSON *v = member(o, key);
    buf[0] = '\0';
    if (!v) return required ? fp4_fail("quant config: %s: \"%s\" missing", file, path) : 0;
    if (!cJSON_IsString(v)) return fp4_fail("quant config: %s: \"%s\" must be a string", file, path);
    if (strlen(v->valuestring) >= n)
        return fp4_fail("quant config: %s: \"%s\" value too long", file, path);
    memcpy(buf, v->valuestring, strlen(v->valuestring) + 1);
    return 0;
}

/* Required integer member that must equal `want`. */
static int expect_int(const cJSON *o, const char *file, const char *path, const char *key,
                      int64_t want, const char *why) {
    const cJSON *v = member(o, key);
    if (!v) return fp4_fail("quant config: %s: \"%s\" missing", file, path);
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
        return fp4_fail("quant config: %s: \"%s\" must be an integer", file, path);
    if (v->valuedouble != (double)want)
        return fp4_fail("quant config: %s: \"%s\" must be %lld (%s), got %g", file, path,
                        (long long)want, why, v->valuedouble);
    return 0;
}

/* Required string member that must equal `want`. */
static int expect_str(const cJSON *o, const char *file, const char *path, const char *key,
                      const char *want, const char *why) {
    char s[64];
    if (get_str(o, file, path, key, true, s, sizeof s)) return -1;
    if (strcmp(s, want) != 0)
        return fp4_fail("quant config: %s: \"%s\" is \"%s\", only \"%s\" is supported (%s)", file,
                        path, s, want, why);
    return 0;
}

/* A POSIX extended regex anchored at the start, as Python's re.match. */
static int regex_compile(const char *pattern, regex_t *re) {
    size_t n = strlen(pattern) + 4;
    char *anchored = malloc(n);
    if (!anchored) return -1;
    snprintf(anchored, n, "^(%s)", pattern);
    int rc = regcomp(re, anchored, REG_EXTENDED | REG_NOSUB);
    free(anchored);
    return rc == 0 ? 0 : -1;
}

/* Array of strings -> q->patterns. compressed-tensors' "re:" entries must
 * compile. */
static int add_patterns(fp4m_quant_config *q, const cJSON *arr, const char *file, const char *path) {
    if (!arr) return 0;
    if (!cJSON_IsArray(arr))
        return fp4_fail("quant config: %s: \"%s\" must be an array of strings", file, path);
    int64_t n = cJSON_GetArraySize(arr);
    q->patterns = calloc((size_t)(n > 0 ? n : 1), sizeof *q->patterns);
    if (!q->patterns) return fp4_fail("quant config: out of memory");
    for (int64_t i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(arr, (int)i);
        if (!cJSON_IsString(e))
            return fp4_fail("quant config: %s: \"%s[%lld]\" must be a string", file, path,
                            (long long)i);
        if (q->method == FP4M_QUANT_NVFP4_CT && strncmp(e->valuestring, "re:", 3) == 0) {
            regex_t re;
            if (regex_compile(e->valuestring + 3, &re))
                return fp4_fail("quant config: %s: \"%s[%lld]\": regex '%s' does not compile as "
                                "a POSIX extended regex",
                                file, path, (long long)i, e->valuestring + 3);
            regfree(&re);
        }
        if (!(q->patterns[i] = strdup(e->valuestring))) return fp4_fail("quant config: out of memory");
        q->n_patterns = i + 1;
    }
    return 0;
}

/* ModelOpt (recipes.md §7.1, construct_quant_config): `root` is the whole
 * hf_quant_config.json, or config.json's quantization_config with
 * quant_method "modelopt", whose keys are nested under "quantization" or
 * flat. vLLM (modelopt.py) requires group_size, kv_cache_quant_algo and
 * exclude_modules; we require quant_algo and group_size, and read absent
 * kv_cache_quant_algo / exclude_modules as null / empty. */
static int parse_modelopt(const cJSON *root, const char *file, fp4m_quant_config *q) {
    const cJSON *prod = member(root, "producer");
    if (prod) {
        char name[32], version[32];
        if (!cJSON_IsObject(prod))
            return fp4_fail("quant config: %s: \"producer\" must be an object", file);
        if (get_str(prod, file, "producer.name", "name", false, name, sizeof name) ||
            get_str(prod, file, "producer.version", "version", false, version, sizeof version))
            return -1;
        snprintf(q->producer, sizeof q->producer, "%s%s%s", name, *version ? " " : "", version);
    }
    const cJSON *qz = member(root, "quantization");
    const char *pre = qz ? "quantization." : "";
    if (qz && !cJSON_IsObject(qz))
        return fp4_fail("quant config: %s: \"quantization\" must be an object", file);
    if (!qz) qz = root;
    char path[64];
    q->method = FP4M_QUANT_NVFP4_MODELOPT;
    q->group_size = NVFP4_GROUP;
    q->input_quant = true; /* NVFP4 is W4A4: every linear has an input_scale (§2.1) */
    snprintf(path, sizeof path, "%squant_algo", pre);
    if (expect_str(qz, file, path, "quant_algo", "NVFP4", "ModelOpt NVFP4, recipes.md §7.1"))
        return -1;
    snprintf(path, sizeof path, "%sgroup_size", pre);
    if (expect_int(qz, file, path, "group_size", NVFP4_GROUP, "NVFP4 block size")) return -1;
    snprintf(path, sizeof path, "%skv_cache_quant_algo", pre);
    if (get_str(qz, file, path, "kv_cache_quant_algo", false, q->kv_cache, sizeof q->kv_cache))
        return -1;
    snprintf(path, sizeof path, "%sexclude_modules", pre);
    return add_patterns(q, member(qz, "exclude_modules"), file, path);
}

/* One config_groups entry: NVFP4 weights (recipes.md §2.8 scheme NVFP4 /
 * NVFP4A16: num_bits 4, FLOAT, TENSOR_GROUP, group_size 16). */
static int parse_ct_group(const cJSON *g, const char *name, char *format, size_t fn,
                          fp4m_quant_config *q) {
    const char *file = "config.json";
    char path[160];
    snprintf(path, sizeof path, "quantization_config.config_groups.%s", name);
    if (!cJSON_IsObject(g)) return fp4_fail("quant config: %s: \"%s\" must be an object", file, path);
    const cJSON *w = member(g, "weights");
    char p[200];
    snprintf(p, sizeof p, "%s.weights", path);
    if (!w || !cJSON_IsObject(w)) return fp4_fail("quant config: %s: \"%s\" missing", file, p);
    char k1[240], k2[240], k3[240], k4[240];
    snprintf(k1, sizeof k1, "%s.num_bits", p);
    snprintf(k2, sizeof k2, "%s.type", p);
    snprintf(k3, sizeof k3, "%s.strategy", p);
    snprintf(k4, sizeof k4, "%s.group_size", p);
    if (expect_int(w, file, k1, "num_bits", 4, "NVFP4 weights") ||
        expect_str(w, file, k2, "type", "float", "NVFP4 weights") ||
        expect_str(w, file, k3, "strategy", "tensor_group", "NVFP4 weights") ||
        expect_int(w, file, k4, "group_size", NVFP4_GROUP, "NVFP4 block size"))
        return -1;
    const cJSON *a = member(g, "input_activations");
    if (a && !cJSON_IsObject(a))
        return fp4_fail("quant config: %s: \"%s.input_activations\" must be an object", file, path);
    if (a) q->input_quant = true;
    snprintf(p, sizeof p, "%s.format", path);
    char gf[32];
    if (get_str(g, file, p, "format", false, gf, sizeof gf)) return -1;
    if (*gf && !*format) snprintf(format, fn, "%s", gf);
    return 0;
}

/* compressed-tensors (recipes.md §2.8, §7.2). The format may be given at
 * the top level or per group (newer versions). */
static int parse_ct(const cJSON *qc, fp4m_quant_config *q) {
    const char *file = "config.json";
    q->method = FP4M_QUANT_NVFP4_CT;
    q->group_size = NVFP4_GROUP;
    if (get_str(qc, file, "quantization_config.format", "format", false, q->format,
                sizeof q->format))
        return -1;
    const cJSON *groups = member(qc, "config_groups");
    if (!groups || !cJSON_IsObject(groups) || !groups->child)
        return fp4_fail("quant config: %s: \"quantization_config.config_groups\" must be a "
                        "non-empty object",
                        file);
    for (const cJSON *g = groups->child; g; g = g->next)
        if (parse_ct_group(g, g->string, q->format, sizeof q->format, q)) return -1;
    if (strcmp(q->format, "nvfp4-pack-quantized") != 0)
        return fp4_fail("quant config: %s: \"quantization_config.format\" is \"%s\", only "
                        "\"nvfp4-pack-quantized\" is supported",
                        file, q->format);
    if (member(qc, "kv_cache_scheme")) snprintf(q->kv_cache, sizeof q->kv_cache, "kv_cache_scheme");
    return add_patterns(q, member(qc, "ignore"), file, "quantization_config.ignore");
}

/* DeepSeek FP8 (recipes.md §7.3): weight_block_size [rows, cols], 128 x 128
 * when absent (the R1 value and transformers' FineGrainedFP8Config default). */
static int parse_fp8(const cJSON *qc, fp4m_quant_config *q) {
    q->method = FP4M_QUANT_FP8_BLOCK;
    q->fp8_block[0] = q->fp8_block[1] = 128;
    const cJSON *b = member(qc, "weight_block_size");
    if (!b) return 0;
    if (!cJSON_IsArray(b) || cJSON_GetArraySize(b) != 2)
        return fp4_fail("quant config: config.json: \"quantization_config.weight_block_size\" "
                        "must be [rows, cols]");
    for (int i = 0; i < 2; i++) {
        const cJSON *e = cJSON_GetArrayItem(b, i);
        if (!cJSON_IsNumber(e) || e->valuedouble < 1 || e->valuedouble > 1e9 ||
            e->valuedouble != floor(e->valuedouble))
            return fp4_fail("quant config: config.json: \"quantization_config.weight_block_size"
                            "[%d]\" must be a positive integer", i);
        q->fp8_block[i] = (int64_t)e->valuedouble;
    }
    return 0;
}

/* config.json's quantization_config (absent or null: no config). */
static int parse_config_json(const cJSON *root, fp4m_quant_config *q) {
    const cJSON *qc = member(root, "quantization_config");
    if (!qc) return 0;
    if (!cJSON_IsObject(qc))
        return fp4_fail("quant config: config.json: \"quantization_config\" must be an object");
    char method[32];
    if (get_str(qc, "config.json", "quantization_config.quant_method", "quant_method", false,
                method, sizeof method))
        return -1;
    snprintf(q->source, sizeof q->source, "config.json");
    if (strcmp(method, "compressed-tensors") == 0) return parse_ct(qc, q);
    if (strcmp(method, "modelopt") == 0) return parse_modelopt(qc, "config.json", q);
    if (strcmp(method, "fp8") == 0 || (!*method && member(qc, "weight_block_size")))
        return parse_fp8(qc, q);
    if (!*method) return fp4_fail("quant config: config.json: \"quantization_config.quant_method\" missing");
    return fp4_fail("quant config: config.json: \"quantization_config.quant_method\" \"%s\" "
                    "unsupported (fp8, compressed-tensors, modelopt)",
                    method);
}

static cJSON *parse_object(const char *text, const char *file) {
    cJSON *root = cJSON_Parse(text);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        fp4_fail("quant config: %s: not a JSON object", file);
        return NULL;
    }
    return root;
}

void fp4m_quant_config_free(fp4m_quant_config *q) {
    if (!q) return;
    for (int64_t i = 0; i < q->n_patterns; i++) free(q->patterns[i]);
    free(q->patterns);
    memset(q, 0, sizeof *q);
}

/* hf_quant_config.json wins (ModelOpt writes it and vLLM looks for it
 * first); a config.json that names another NVFP4 producer contradicts it. */
int fp4m_quant_config_parse(const char *config_json, const char *hf_quant_json,
                            fp4m_quant_config *out) {
    if (!out) return fp4_fail("quant config: null argument");
    memset(out, 0, sizeof *out);
    cJSON *cfg = config_json ? parse_object(config_json, "config.json") : NULL;
    cJSON *hf = hf_quant_json ? parse_object(hf_quant_json, "hf_quant_config.json") : NULL;
    int rc = -1;
    if ((config_json && !cfg) || (hf_quant_json && !hf)) goto done;
    if (cfg && parse_config_json(cfg, out)) goto done;
    if (hf) {
        if (out->method == FP4M_QUANT_NVFP4_CT) {
            fp4_fail("quant config: hf_quant_config.json (ModelOpt) and a compressed-tensors "
                     "quantization_config in config.json contradict each other");
            goto done;
        }
        fp4m_quant_config_free(out); /* a leftover FP8 config.json entry (§7.1) */
        snprintf(out->source, sizeof out->source, "hf_quant_config.json");
        if (parse_modelopt(hf, "hf_quant_config.json", out)) goto done;
    }
    rc = 0;
done:
    if (rc) fp4m_quant_config_free(out);
    cJSON_Delete(cfg);
    cJSON_Delete(hf);
    return rc;
}

/* dir/name, malloc'ed. */
static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Directory part of a file path ("." when none), malloc'ed. */
static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    return d;
}

static bool is_file(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

int fp4m_quant_config_load(const char *path, fp4m_quant_config *out) {
    if (!path || !out) return fp4_fail("quant config: null argument");
    memset(out, 0, sizeof *out);
    struct stat sb;
    if (stat(path, &sb) != 0) return fp4_fail("quant config: cannot read %s", path);
    const bool dir = S_ISDIR(sb.st_mode);
    char *d = dir ? strdup(path) : dir_of(path);
    char *cfg_path = d && dir ? join(d, "config.json") : (d ? strdup(path) : NULL);
    char *hf_path = d ? join(d, "hf_quant_config.json") : NULL;
    char *cfg = NULL, *hf = NULL;
    int rc = -1;
    if (!cfg_path || !hf_path) {
        fp4_fail("quant config: out of memory");
        goto done;
    }
    if ((!dir || is_file(cfg_path)) && !(cfg = fp4m_read_text(cfg_path))) {
        fp4_fail("quant config: cannot read %s", cfg_path);
        goto done;
    }
    if (is_file(hf_path) && !(hf = fp4m_read_text(hf_path))) {
        fp4_fail("quant config: cannot read %s", hf_path);
        goto done;
    }
    rc = fp4m_quant_config_parse(cfg, hf, out);
    if (rc) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", fp4_last_error());
        fp4_fail("%s (in %s)", msg, d);
    }
done:
    free(d);
    free(cfg_path);
    free(hf_path);
    free(cfg);
    free(hf);
    return rc;
}

static bool regex_match(const char *pattern, const char *name) {
    regex_t re;
    if (regex_compile(pattern, &re)) return false; /* checked when parsed */
    bool hit = regexec(&re, name, 0, NULL, 0) == 0;
    regfree(&re);
    return hit;
}

bool fp4m_quant_excluded(const fp4m_quant_config *q, const char *module, const char **pattern) {
    for (int64_t i = 0; q && i < q->n_patterns; i++) {
        const char *p = q->patterns[i];
        bool hit;
        if (q->method == FP4M_QUANT_NVFP4_CT)
            hit = strncmp(p, "re:", 3) == 0 ? regex_match(p + 3, module) : strcmp(p, module) == 0;
        else /* Python fnmatch: no escapes, '*' crosses dots, case-sensitive on POSIX */
            hit = fnmatch(p, module, FNM_NOESCAPE) == 0;
        if (hit) {
            if (pattern) *pattern = p;
            return true;
        }
    }
    return false;
}

const char *fp4m_quant_method_name(fp4m_quant_method m) {
    switch (m) {
    case FP4M_QUANT_NONE: return "none";
    case FP4M_QUANT_FP8_BLOCK: return "fp8-block";
    case FP4M_QUANT_NVFP4_MODELOPT: return "nvfp4-modelopt";
    case FP4M_QUANT_NVFP4_CT: return "nvfp4-compressed-tensors";
    }
    return "?";
}

void fp4m_quant_config_print(const fp4m_quant_config *q, FILE *f) {
    fprintf(f, "quantization: %s", fp4m_quant_method_name(q->method));
    if (q->method == FP4M_QUANT_NONE) {
        fprintf(f, " (stored dtypes as found)\n");
        return;
    }
    fprintf(f, " (%s)", q->source);
    if (q->method == FP4M_QUANT_FP8_BLOCK) {
        fprintf(f, ": E4M3 weights, weight_scale_inv per %lld x %lld block\n",
                (long long)q->fp8_block[0], (long long)q->fp8_block[1]);
        return;
    }
    fprintf(f, ": group size %lld", (long long)q->group_size);
    if (*q->producer) fprintf(f, ", producer %s", q->producer);
    if (*q->format) fprintf(f, ", format %s", q->format);
    fprintf(f, ", activations %s", q->input_quant ? "NVFP4" : "not quantized");
    if (*q->kv_cache) fprintf(f, ", KV cache %s (not modelled)", q->kv_cache);
    fputc('\n', f);
    const char *what = q->method == FP4M_QUANT_NVFP4_CT ? "ignore" : "exclude_modules";
    fprintf(f, "  %s (%lld)%s", what, (long long)q->n_patterns, q->n_patterns ? ":" : "");
    for (int64_t i = 0; i < q->n_patterns; i++) fprintf(f, " %s", q->patterns[i]);
    fputc('\n', f);
}
