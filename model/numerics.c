/* numerics.c - reduction orders, RoPE frequencies and small helpers shared
 * by the FP64 and FP32 paths. */
#include "model_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

char *fp4m_join_if_dir(const char *path, const char *name) {
    struct stat st;
    size_t n = strlen(path);
    bool dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
    char *s = malloc(n + strlen(name) + 2);
    if (!s) return NULL;
    memcpy(s, path, n + 1);
    if (dir) {
        if (n == 0 || s[n - 1] != '/') strcat(s, "/");
        strcat(s, name);
    }
    return s;
}

/* ---------------------------------------------------------------------------
 * Reduction orders. torch.sum's own order (SumKernel.cpp) is in torch_math.c
 * (fp4m_sum_f32_torch / fp4m_sum_f64_torch); the softmax's 16-lane row sum
 * is a different kernel and stays here.
 * ------------------------------------------------------------------------- */

enum { LANES = 8 };

float fp4m_sum_f32_lanes16(const float *x, int64_t n) {
    float a[2 * LANES] = {0};
    for (int64_t j = 0; j < n; j++) a[j % (2 * LANES)] += x[j];
    for (int w = LANES; w >= 1; w /= 2)
        for (int i = 0; i < w; i++) a[i] += a[i + w];
    return a[0];
}

float fp4m_sum_f32_seq(const float *x, int64_t n) {
    float s = 0.0f;
    for (int64_t j = 0; j < n; j++) s += x[j];
    return s;
}

/* ---------------------------------------------------------------------------
 * RoPE / YaRN inverse frequencies (ds §2.5)
 * ------------------------------------------------------------------------- */

/* transformers find_correction_dim: dim ln(orig / (r 2 pi)) / (2 ln base). */
static double correction_dim(double rot, double dim, double base, double orig) {
    return dim * log(orig / (rot * 2.0 * 3.14159265358979323846)) / (2.0 * log(base));
}

/* [low, high] of the YaRN ramp, as find_correction_range (+0.001 if equal). */
static void correction_range(const fp4m_config *c, double *low, double *high) {
    double dim = (double)c->qk_rope_head_dim, orig = (double)c->original_max_position_embeddings;
    double lo = correction_dim(c->beta_fast, dim, c->rope_theta, orig);
    double hi = correction_dim(c->beta_slow, dim, c->rope_theta, orig);
    if (c->rope_truncate) {
        lo = floor(lo);
        hi = ceil(hi);
    }
    if (lo < 0) lo = 0;
    if (hi > dim - 1) hi = dim - 1;
    if (lo == hi) hi += 0.001;
    *low = lo;
    *high = hi;
}

/* Double: f_i = base^(-2i/d); YaRN blends f_i (extrapolation) and f_i/factor
 * (interpolation) with ramp_i = clamp((i - low)/(high - low), 0, 1). */
static void inv_freq_f64(const fp4m_config *c, double *f) {
    const int64_t half = c->qk_rope_head_dim / 2;
    double low = 0, high = 1;
    if (c->rope_kind == FP4M_ROPE_YARN) correction_range(c, &low, &high);
    for (int64_t i = 0; i < half; i++) {
        double pos = pow(c->rope_theta, (double)(2 * i) / (double)c->qk_rope_head_dim);
        double extra = 1.0 / pos;
        if (c->rope_kind != FP4M_ROPE_YARN) {
            f[i] = extra;
            continue;
        }
        double inter = 1.0 / (c->rope_factor * pos);
        double ramp = ((double)i - low) / (high - low);
        ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
        f[i] = inter * ramp + extra * (1.0 - ramp);
    }
}

/* transformers' fp32 tensor arithmetic, op by op (modeling_rope_utils
 * _compute_yarn_parameters / _compute_default_rope_parameters): every
 * intermediate is a float32 tensor, Python scalars enter as float. */
static void inv_freq_f32(const fp4m_config *c, float *f) {
    const int64_t half = c->qk_rope_head_dim / 2;
    const float base = (float)c->rope_theta, dim = (float)c->qk_rope_head_dim;
    double low = 0, high = 1;
    if (c->rope_kind == FP4M_ROPE_YARN) correction_range(c, &low, &high);
    for (int64_t i = 0; i < half; i++) {
        float pos = powf(base, (float)(2 * i) / dim);
        float extra = 1.0f / pos;
        if (c->rope_kind != FP4M_ROPE_YARN) {
            f[i] = extra;
            continue;
        }
        float inter = 1.0f / ((float)c->rope_factor * pos);
        float ramp = ((float)i - (float)low) / (float)(high - low);
        ramp = ramp < 0.0f ? 0.0f : ramp > 1.0f ? 1.0f : ramp;
        float ef = 1.0f - ramp; /* inv_freq_extrapolation_factor */
        f[i] = inter * (1.0f - ef) + extra * ef;
    }
}

void fp4m_yarn_range(const fp4m_config *c, double *low, double *high) {
    correction_range(c, low, high);
}

void fp4m_rope_frequencies(const fp4m_config *c, fp4m_rope_prec p, double *out) {
    const int64_t half = c->qk_rope_head_dim / 2;
    if (p == FP4M_ROPE_F64) {
        inv_freq_f64(c, out);
        return;
    }
    float *f = malloc((size_t)half * sizeof(float));
    if (!f) return;
    inv_freq_f32(c, f);
    for (int64_t i = 0; i < half; i++) out[i] = f[i];
    free(f);
}

/* transformers' float32 RoPE table for positions pos0 .. pos0+n-1:
 * theta = RN32(pos * inv_freq_f32) (the K = 1 float32 matmul of
 * DeepseekV3RotaryEmbedding), cos/sin from opts' source (trig.c), times the
 * attention factor in float32 when it is not 1. */
int fp4m_rope_table_f32(const fp4m_config *c, const fp4m_opts *o, int64_t pos0, int64_t n,
                        float *theta, float *cos_out, float *sin_out) {
    const int64_t half = c->qk_rope_head_dim / 2;
    if (half < 1 || pos0 < 0 || n < 0) return fp4_fail("model: RoPE table: bad arguments");
    float *fr = malloc((size_t)half * sizeof(float));
    if (!fr) return fp4_fail("model: out of memory in RoPE");
    inv_freq_f32(c, fr);
    for (int64_t t = 0; t < n; t++)
        for (int64_t i = 0; i < half; i++) theta[t * half + i] = (float)(pos0 + t) * fr[i];
    free(fr);
    if (fp4m_trig_f32(o, theta, cos_out, sin_out, n * half)) return -1;
    const double cf = fp4m_rope_cos_factor(c);
    if (cf != 1.0)
        for (int64_t k = 0; k < n * half; k++) {
            cos_out[k] *= (float)cf;
            sin_out[k] *= (float)cf;
        }
    return 0;
}

int fp4m_rope_init(fp4m_model *m) {
    if (fp4m_trig_check(&m->opts)) return -1;
    const int64_t half = m->cfg.qk_rope_head_dim / 2;
    m->inv_freq_f64 = malloc((size_t)half * sizeof(double));
    if (!m->inv_freq_f64) return fp4_fail("model: out of memory");
    inv_freq_f64(&m->cfg, m->inv_freq_f64);
    m->softmax_scale = fp4m_softmax_scale(&m->cfg);
    m->cos_factor = fp4m_rope_cos_factor(&m->cfg);
    return 0;
}

int fp4m_emit(fp4m_model *m, int64_t layer, const char *op, fp4m_dtype dt, void *data,
              int32_t ndim, const int64_t *shape, int64_t pos0, int64_t expert,
              const int64_t *rows) {
    if (!m->opts.trace) return 0;
    fp4m_event ev;
    memset(&ev, 0, sizeof ev);
    ev.layer = layer;
    ev.op = op;
    ev.dtype = dt;
    ev.data = data;
    ev.ndim = ndim;
    for (int32_t i = 0; i < ndim && i < 4; i++) ev.shape[i] = shape[i];
    ev.pos0 = pos0;
    ev.expert = expert;
    ev.rows = rows;
    if (m->opts.trace(m->opts.trace_ctx, &ev) != 0)
        return fp4_fail("model: trace callback stopped the forward at layer %lld, %s",
                        (long long)layer, op);
    return 0;
}
