/* test_model_loader.c - checkpoint loading: every tensor the config implies
 * is checked (name, shape, dtype) before any data is read, and errors name
 * the tensor; stored dtypes F64/F32/BF16/F16 and F8_E4M3 + weight_scale_inv
 * all load to the same values; MTP-layer tensors are ignored.
 *
 * Each case rewrites the tiny fixture as one model.safetensors (plus its
 * config.json) in a temporary directory, with one change. */
#define _GNU_SOURCE 1 /* mkdtemp */
#include "test_model_util.h"

#include <math.h>
#include <stdint.h>
#include <unistd.h>

typedef enum variant {
    V_PLAIN = 0,   /* every tensor as stored (F32) */
    V_MISSING,     /* one routed expert weight left out */
    V_SHAPE,       /* kv_b_proj one row short */
    V_DTYPE,       /* final norm stored as I32 */
    V_NO_SCALE,    /* an F8_E4M3 weight without weight_scale_inv */
    V_MIXED,       /* BF16, F16, F64 and F8_E4M3 + scale_inv tensors, + an MTP tensor */
    V_ROUNDED,     /* the values V_MIXED stores, all written as F32 */
    V_ARCH,        /* other architecture branches: q_lora_rank null (q_proj),
                      tied embeddings, no shared expert, plain RoPE */
} variant;

#define MISSING "model.layers.2.mlp.experts.5.up_proj.weight"
#define SHAPE "model.layers.1.self_attn.kv_b_proj.weight"
#define NORM "model.norm.weight"
#define FP8 "model.layers.0.self_attn.o_proj.weight"
#define BF16 "model.layers.1.mlp.experts.3.down_proj.weight"
#define F16 "model.layers.3.post_attention_layernorm.weight"
#define F64 "model.layers.2.self_attn.q_a_proj.weight"

static char g_dir[64];

static float read_f32(const fp4_st_tensor *t, int64_t i) {
    float v;
    memcpy(&v, (const unsigned char *)t->data + 4 * i, 4);
    return v;
}

/* FP8 with one power-of-two scale per 128x128 block, so that the
 * dequantised value e4m3 * scale is a float (V_ROUNDED stores it). */
static void quant_fp8(const fp4_st_tensor *t, uint8_t *codes, float *scales, float *deq) {
    const int64_t R = t->shape[0], C = t->shape[1], sr = (R + 127) / 128, sc = (C + 127) / 128;
    fp4_cvt_opts o = fp4_cvt_opts_default();
    for (int64_t b = 0; b < sr * sc; b++) {
        float amax = 0;
        for (int64_t r = (b / sc) * 128; r < R && r < (b / sc + 1) * 128; r++)
            for (int64_t c = (b % sc) * 128; c < C && c < (b % sc + 1) * 128; c++)
                amax = fmaxf(amax, fabsf(read_f32(t, r * C + c)));
        scales[b] = amax > 0 ? exp2f(ceilf(log2f(amax / 448.0f))) : 1.0f;
    }
    for (int64_t i = 0; i < R * C; i++) {
        float s = scales[(i / C / 128) * sc + (i % C) / 128];
        codes[i] = f32_to_e4m3(read_f32(t, i) / s, &o, NULL, NULL);
        deq[i] = e4m3_to_f32(codes[i]) * s;
    }
}

/* q_proj [heads * 48, 256] with random weights N(0, 1/256)-ish, under the
 * name of q_b_proj's layer. */
static int add_q_proj(fp4_st_writer *w, const char *qb_name, const fp4_st_tensor *qb) {
    char name[128];
    snprintf(name, sizeof name, "%.*sq_proj.weight", (int)(strstr(qb_name, "q_b_proj") - qb_name), qb_name);
    int64_t shape[2] = {qb->shape[0], 256};
    float *v = malloc((size_t)(shape[0] * shape[1]) * 4);
    for (int64_t i = 0; i < shape[0] * shape[1]; i++)
        v[i] = (float)((double)(int32_t)fp4t_rand32(fp4t_seed(), 7, i) / 2147483648.0 * 0.1);
    int rc = fp4_st_writer_add_copy(w, name, FP4_ST_F32, 2, shape, v, 4 * shape[0] * shape[1]);
    free(v);
    return rc;
}

/* Adds tensor t (F32 in the fixture) as variant v wants it. */
static int add_tensor(fp4_st_writer *w, const char *name, const fp4_st_tensor *t, variant v) {
    const int64_t n = t->numel;
    fp4_cvt_opts o = fp4_cvt_opts_default();
    int rc = 0;
    if (v == V_MISSING && !strcmp(name, MISSING)) return 0;
    if (v == V_ARCH) {
        if (strstr(name, "q_a_") || strstr(name, "shared_experts") || !strcmp(name, "lm_head.weight"))
            return 0;
        if (strstr(name, "q_b_proj")) return add_q_proj(w, name, t);
    }
    if (v == V_SHAPE && !strcmp(name, SHAPE)) {
        int64_t shape[2] = {t->shape[0] - 1, t->shape[1]};
        return fp4_st_writer_add(w, name, FP4_ST_F32, 2, shape, t->data, 4 * shape[0] * shape[1]);
    }
    if (v == V_DTYPE && !strcmp(name, NORM))
        return fp4_st_writer_add(w, name, FP4_ST_I32, t->ndim, t->shape, t->data, t->nbytes);
    if ((v == V_NO_SCALE || v == V_MIXED || v == V_ROUNDED) && !strcmp(name, FP8)) {
        const int64_t ns = ((t->shape[0] + 127) / 128) * ((t->shape[1] + 127) / 128);
        uint8_t *codes = malloc((size_t)n);
        float *scales = malloc((size_t)ns * 4), *deq = malloc((size_t)n * 4);
        quant_fp8(t, codes, scales, deq);
        if (v == V_ROUNDED) {
            rc = fp4_st_writer_add_copy(w, name, FP4_ST_F32, 2, t->shape, deq, 4 * n);
        } else {
            rc = fp4_st_writer_add_copy(w, name, FP4_ST_F8_E4M3, 2, t->shape, codes, n);
            int64_t sshape[2] = {(t->shape[0] + 127) / 128, (t->shape[1] + 127) / 128};
            if (!rc && v == V_MIXED)
                rc = fp4_st_writer_add_copy(w, FP8 "_scale_inv", FP4_ST_F32, 2, sshape, scales, 4 * ns);
        }
        free(codes);
        free(scales);
        free(deq);
        return rc;
    }
    if ((v == V_MIXED || v == V_ROUNDED) && (!strcmp(name, BF16) || !strcmp(name, F16))) {
        const bool bf = !strcmp(name, BF16);
        uint16_t *h = malloc((size_t)n * 2);
        float *r = malloc((size_t)n * 4);
        for (int64_t i = 0; i < n; i++) {
            h[i] = bf ? f32_to_bf16(read_f32(t, i), &o, NULL, NULL) : f32_to_f16(read_f32(t, i), &o, NULL, NULL);
            r[i] = bf ? bf16_to_f32(h[i]) : f16_to_f32(h[i]);
        }
        rc = v == V_MIXED ? fp4_st_writer_add_copy(w, name, bf ? FP4_ST_BF16 : FP4_ST_F16, t->ndim, t->shape, h, 2 * n)
                          : fp4_st_writer_add_copy(w, name, FP4_ST_F32, t->ndim, t->shape, r, 4 * n);
        free(h);
        free(r);
        return rc;
    }
    if (v == V_MIXED && !strcmp(name, F64)) {
        double *d = malloc((size_t)n * 8);
        for (int64_t i = 0; i < n; i++) d[i] = read_f32(t, i);
        rc = fp4_st_writer_add_copy(w, name, FP4_ST_F64, t->ndim, t->shape, d, 8 * n);
        free(d);
        return rc;
    }
    return fp4_st_writer_add(w, name, FP4_ST_F32, t->ndim, t->shape, t->data, t->nbytes);
}

/* Replaces the first `from` in s (in place; `to` no longer than `from`
 * plus the slack the buffer has). */
static void replace(char *s, const char *from, const char *to) {
    char *p = strstr(s, from);
    if (!p) return;
    memmove(p + strlen(to), p + strlen(from), strlen(p + strlen(from)) + 1);
    memcpy(p, to, strlen(to));
}

static int copy_config(variant v) {
    char path[128], text[8192];
    snprintf(path, sizeof path, "%s/config.json", g_dir);
    FILE *in = fopen(TINY_DIR "/config.json", "rb"), *out = fopen(path, "wb");
    size_t n = in ? fread(text, 1, sizeof text - 256, in) : 0;
    text[n] = 0;
    if (v == V_ARCH) {
        replace(text, "\"q_lora_rank\": 96", "\"q_lora_rank\": null");
        replace(text, "\"tie_word_embeddings\": false", "\"tie_word_embeddings\": true");
        replace(text, "\"n_shared_experts\": 1", "\"n_shared_experts\": 0");
        replace(text, "\"rope_type\": \"yarn\"", "\"rope_type\": \"default\"");
    }
    int ok = in && out && n > 0 && fwrite(text, 1, strlen(text), out) == strlen(text);
    if (in) fclose(in);
    if (out) fclose(out);
    return ok ? 0 : -1;
}

/* Writes g_dir/model.safetensors for variant v. */
static int write_variant(variant v) {
    fp4_st_ckpt *src;
    fp4_st_writer *w;
    char path[128];
    snprintf(path, sizeof path, "%s/model.safetensors", g_dir);
    if (fp4_st_ckpt_open(TINY_DIR, &src) != FP4_ST_OK || fp4_st_writer_create(path, &w) != FP4_ST_OK)
        return -1;
    int rc = 0;
    for (int64_t i = 0; i < fp4_st_ckpt_count(src) && !rc; i++) {
        const char *name = fp4_st_ckpt_name(src, i);
        const fp4_st_tensor *t;
        rc = fp4_st_ckpt_get(src, name, &t) != FP4_ST_OK || add_tensor(w, name, t, v) != FP4_ST_OK;
    }
    if (!rc && v == V_MIXED) { /* an MTP-layer tensor (layer num_hidden_layers): ignored */
        float z[4] = {1, 2, 3, 4};
        int64_t shape[1] = {4};
        rc = fp4_st_writer_add_copy(w, "model.layers.4.eh_proj.weight", FP4_ST_F32, 1, shape, z, 16);
    }
    if (rc) {
        fp4_st_writer_abort(w);
    } else {
        rc = fp4_st_writer_finish(w) != FP4_ST_OK;
    }
    fp4_st_ckpt_close(src);
    return rc || copy_config(v) ? -1 : 0;
}

static void expect_open_error(variant v, const char *needle1, const char *needle2) {
    fp4m_model *m = NULL;
    fp4m_opts o = fp4m_opts_reference(FP4M_F32);
    if (!fp4t_check(write_variant(v) == 0, "writing variant %d: %s", v, fp4_last_error())) return;
    int rc = fp4m_open(g_dir, &o, &m);
    fp4t_check(rc != 0 && strstr(fp4_last_error(), needle1) && strstr(fp4_last_error(), needle2),
               "variant %d: rc %d, message '%s' (want '%s', '%s')", v, rc, fp4_last_error(), needle1,
               needle2);
    printf("variant %d: %s\n", v, fp4_last_error());
    fp4m_close(m);
}

/* Logits of 24 tokens for the checkpoint now in g_dir, in one call or
 * (split) 10 + 14 single-token calls. */
static void *logits_opts(const fp4m_opts *o, const int64_t *ids, int split) {
    fp4m_model *m = NULL;
    if (!fp4t_check(fp4m_open(g_dir, o, &m) == 0, "open: %s", fp4_last_error())) return NULL;
    const int64_t V = fp4m_model_config(m)->vocab_size, es = o->prec == FP4M_F64 ? 8 : 4;
    unsigned char *lg = malloc((size_t)(24 * V * es));
    int rc = split ? fp4m_forward(m, ids, 10, false, lg) : fp4m_forward(m, ids, 24, false, lg);
    for (int64_t t = 10; split && t < 24 && !rc; t++) rc = fp4m_forward(m, ids + t, 1, false, lg + t * V * es);
    if (!fp4t_check(rc == 0, "forward: %s", fp4_last_error())) {
        free(lg);
        lg = NULL;
    }
    fp4m_close(m);
    return lg;
}

static void *logits_of(fp4m_prec prec, const int64_t *ids) {
    fp4m_opts o = fp4m_opts_transformers(prec);
    return logits_opts(&o, ids, 0);
}

/* The branches the fixture does not take run, decode incrementally to the
 * same bits, and absorbed MLA agrees with naive. */
static void check_arch(const int64_t *ids) {
    if (!fp4t_check(write_variant(V_ARCH) == 0, "writing V_ARCH: %s", fp4_last_error())) return;
    fp4m_opts on = fp4m_opts_reference(FP4M_F64), oa = on;
    oa.attn_form = FP4M_ATTN_ABSORB;
    double *a = logits_opts(&on, ids, 0), *b = logits_opts(&on, ids, 1), *c = logits_opts(&oa, ids, 0);
    if (a && b && c) {
        double num = 0, den = 0;
        for (int64_t i = 0; i < 24 * 512; i++) {
            num = fmax(num, fabs(c[i] - a[i]));
            den = fmax(den, fabs(a[i]));
        }
        fp4t_check(memcmp(a, b, 24 * 512 * 8) == 0, "V_ARCH: incremental != full");
        fp4t_check(num <= 1e-12 * den && den > 0, "V_ARCH: absorbed vs naive rel %.3e", num / den);
        printf("q_proj / tied / no shared / plain RoPE: runs; incremental == full; absorbed vs naive "
               "rel %.3e\n", num / den);
    }
    free(a);
    free(b);
    free(c);
}

static void check_dtypes(const int64_t *ids) {
    for (int p = 0; p < 2; p++) {
        fp4m_prec prec = p ? FP4M_F32 : FP4M_F64;
        void *a = write_variant(V_MIXED) == 0 ? logits_of(prec, ids) : NULL;
        void *b = write_variant(V_ROUNDED) == 0 ? logits_of(prec, ids) : NULL;
        void *c = write_variant(V_PLAIN) == 0 ? logits_of(prec, ids) : NULL;
        size_t bytes = 24 * 512 * (size_t)(p ? 4 : 8);
        if (a && b && c) {
            fp4t_check(memcmp(a, b, bytes) == 0, "prec %d: BF16/F16/F64/FP8 tensors load differently "
                       "from the same values in F32", p);
            fp4t_check(memcmp(a, c, bytes) != 0, "prec %d: rounding the weights changed nothing", p);
        }
        free(a);
        free(b);
        free(c);
    }
}

static void cleanup(void) {
    char path[128];
    snprintf(path, sizeof path, "%s/model.safetensors", g_dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/config.json", g_dir);
    unlink(path);
    rmdir(g_dir);
}

int main(void) {
    fp4t_begin("test_model_loader");
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/fp4m_XXXXXX", tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    fp4_st_file *acts;
    int64_t ids[64];
    if (fp4_st_open(TINY_ACTS, &acts) != FP4_ST_OK || tm_read_i64(acts, "input_ids", ids, 64)) {
        cleanup();
        return 1;
    }
    fp4_st_close(acts);

    expect_open_error(V_MISSING, MISSING, "missing");
    expect_open_error(V_SHAPE, SHAPE, "expected shape [256, 64], checkpoint has [255, 64]");
    expect_open_error(V_DTYPE, NORM, "I32");
    expect_open_error(V_NO_SCALE, FP8 "_scale_inv", "missing");
    fp4m_model *m = NULL;
    fp4m_opts o = fp4m_opts_reference(FP4M_F32);
    char nowhere[96];
    snprintf(nowhere, sizeof nowhere, "%s/nowhere", g_dir);
    fp4t_check(fp4m_open(nowhere, &o, &m) != 0, "open of a missing directory succeeded");
    check_dtypes(ids);
    check_arch(ids);
    cleanup();
    return fp4t_end();
}
