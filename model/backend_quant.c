/* backend_quant.c - the GEMM backend that executes a precision policy
 * (policy.c): per linear layer class, native / BF16 / FP8 block / NVFP4
 * W4A16 / NVFP4 W4A4, with ref/'s exact oracle or an emu/ datapath model.
 *
 * Semantics of one linear y = x W^T (x: [m, K] in the path precision):
 *   BF16    xb = RN_bf16(x), wb = RN_bf16(W); y = round_out(xb . wb), the dot
 *           product in the path precision (the default backend's fma chain).
 *   W4A16   wq = e2m1 * s8 (exact in BF16) from the stored NVFP4 weight or
 *           weight_recipe; y = round_out((xb . wq) * g), g the tensor decode
 *           scale (ENCODE polarity: (xb . wq) / g), as weight-only kernels
 *           apply the tensor scale in the epilogue.
 *   W4A4    each activation row rounded to act_in and quantized by
 *           act_recipe; the tensor scale is the checkpoint's input scale when
 *           it has one (static, as served), else the row's own amax (dynamic
 *           per token: rows stay independent, so incremental decode is still
 *           bit-identical to the full forward). Then the policy's GEMM engine
 *           (fp4engine.h; the exact oracle when none is given: exact sum, one
 *           rounding to `out`).
 *   FP8     DeepSeek's FP8 inference (recipes.md §2.13): activations E4M3 per
 *           token per 128 channels with s = max(amax, 1e-4) / 448, weights
 *           the stored E4M3 + weight_scale_inv 128x128, or quantized with
 *           s = amax / 448 per 128x128 block (DeepSeek publishes no weight
 *           quantizer; this mirrors the activation rule); exact GEMM
 *           (fp4_gemm_block_scaled), K zero-padded to a multiple of 128 as
 *           the checkpoint's edge blocks are, through the policy's engine (an
 *           emu engine needs a promotion structure, e.g. promote=128).
 * The result, a BF16 or FP32 number, is stored exactly in the path type. */
#include "model_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct qctx {
    fp4m_policy p;
    const fp4_qrecipe *wrec, *arec;
    fp4_engine *engine; /* the policy's, or own_ref */
    fp4_engine *own_ref;
    double e2m1[16], ue4m3[128]; /* decoded codes (exact) */
} qctx;

/* One GEMM call's operands, the path type hidden behind f64. */
typedef struct qcall {
    const qctx *c;
    const fp4m_linear_desc *d;
    int64_t m, n, k;
    bool f64;
    const void *x, *w;
    void *y;
} qcall;

static double at(const void *p, int64_t i, bool f64) {
    return f64 ? ((const double *)p)[i] : (double)((const float *)p)[i];
}

static void put(void *p, int64_t i, bool f64, double v) {
    if (f64) ((double *)p)[i] = v;
    else ((float *)p)[i] = (float)v;
}

/* RNE to fmt (BF16 or F32; satfinite does not matter at these magnitudes
 * but keeps a huge activation finite), by ref/'s exact conversion. */
static uint64_t code_of(fp4_format fmt, double v) {
    const fp4_cvt_opts o = fp4_cvt_opts_default();
    uint64_t code = 0;
    fp4_encode_f64(fmt, v, &o, &code, NULL);
    return code;
}

/* The same, returned as its exact value. Inside the normal range (the
 * activations and weights of a model) a bit operation does it: BF16 keeps
 * the top 7 of the double's 52 fraction bits, so add half an ulp minus one
 * plus the kept lsb (ties to even) and clear the rest, one rounding from
 * the double (not via float: that would round twice). A carry into the
 * exponent stays within BF16's range because e <= 126 here; everything else
 * (subnormal, overflow, Inf, NaN) takes the exact path. test_model_policy
 * checks ties and double-rounding cases against ref/. */
static double round_to(fp4_format fmt, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    const int e = (int)((u >> 52) & 0x7FF) - 1023;
    if (e >= -126 && e <= 126) {
        if (fmt == FP4_FMT_F32) return (double)(float)v; /* hardware RNE */
        if (fmt == FP4_FMT_BF16) {
            u += ((uint64_t)1 << 44) - 1 + ((u >> 45) & 1);
            u &= ~(((uint64_t)1 << 45) - 1);
            memcpy(&v, &u, 8);
            return v;
        }
    }
    return fp4_to_f64(fmt, code_of(fmt, v));
}

static uint16_t bf16_code(double v) {
    float f = (float)round_to(FP4_FMT_BF16, v); /* exact: a BF16 value */
    uint32_t b;
    memcpy(&b, &f, 4);
    return (uint16_t)(b >> 16);
}

/* Output codes (uint32 F32 or uint16 BF16) -> path type. */
static void store_codes(const qcall *q, int64_t row0, int64_t rows, const void *codes) {
    for (int64_t i = 0; i < rows * q->n; i++) {
        uint64_t c = q->c->p.out == FP4_FMT_F32 ? ((const uint32_t *)codes)[i]
                                                : ((const uint16_t *)codes)[i];
        put(q->y, row0 * q->n + i, q->f64, fp4_to_f64(q->c->p.out, c));
    }
}

/* The default backend on arrays of the path type. */
static int native(const qcall *q, const void *x, const void *w, void *y) {
    const fp4m_gemm_backend *b = fp4m_gemm_default();
    return q->f64 ? b->gemm_f64(b->ctx, q->d, q->m, x, w, y)
                  : b->gemm_f32(b->ctx, q->d, q->m, x, w, y);
}

/* ---------------------------------------------------------------------------
 * NVFP4 weights: the stored codes, or quantized now by weight_recipe.
 * ------------------------------------------------------------------------- */

typedef struct nvw {
    fp4_tensor mat;
    double g;         /* decode multiplier for W4A16's epilogue ... */
    bool g_divides;   /* ... or divisor (compressed-tensors ENCODE scale) */
    fp4_qtensor own;  /* when quantized here */
    bool owned;
} nvw;

static int nvfp4_weight(const qcall *q, nvw *out) {
    memset(out, 0, sizeof *out);
    const fp4m_stored_weight *s = q->d->stored;
    if (q->k % 16) return fp4_fail("model: '%s': NVFP4 needs K %% 16 == 0 (K = %lld)", q->d->name, (long long)q->k);
    if (s && s->kind == FP4M_STORED_NVFP4) {
        out->mat = s->t; /* global_scale: the decode multiplier */
        out->g = s->weight_global;
        out->g_divides = s->gkind == FP4M_GSCALE_ENCODE;
        return 0;
    }
    float *wf = malloc((size_t)(q->n * q->k) * sizeof(float));
    if (!wf) return fp4_fail("model: out of memory quantizing '%s'", q->d->name);
    for (int64_t i = 0; i < q->n * q->k; i++) wf[i] = (float)at(q->w, i, q->f64);
    fp4_qopts o = fp4_qopts_default();
    int rc = fp4_quantize(q->c->wrec, FP4_FMT_F32, wf, q->n, q->k, &o, &out->own);
    free(wf);
    if (rc) return fp4_fail_wrap("model: quantizing '%s'", q->d->name);
    out->owned = true;
    out->mat = out->own.t;
    out->g = out->own.global_decode;
    return 0;
}

static void nvfp4_weight_free(nvw *w) {
    if (w->owned) fp4_qtensor_free(&w->own);
}

/* e2m1 * s8 of element (r, c): exact (at most 6 significant bits), from
 * the context's decode tables (filled from ref/ when the backend is made). */
static double nv_elem(const qctx *c, const fp4_tensor *m, int64_t r, int64_t col) {
    const uint8_t *codes = m->codes, *scales = m->scales;
    uint8_t byte = codes[(r * m->cols + col) / 2];
    uint8_t e = (col & 1) ? e2m1x2_odd(byte) : e2m1x2_even(byte);
    return c->e2m1[e] * c->ue4m3[scales[r * (m->cols / 16) + col / 16] & 0x7F];
}

/* ---------------------------------------------------------------------------
 * BF16 and W4A16: BF16 activations, path-precision dot products.
 * ------------------------------------------------------------------------- */

static int bf16_like(const qcall *q, bool w4) {
    const int64_t es = q->f64 ? 8 : 4;
    void *xb = malloc((size_t)(q->m * q->k * es)), *wb = malloc((size_t)(q->n * q->k * es));
    void *acc = malloc((size_t)(q->m * q->n * es));
    nvw nw;
    memset(&nw, 0, sizeof nw);
    int rc = !xb || !wb || !acc ? fp4_fail("model: out of memory in '%s'", q->d->name) : 0;
    if (!rc && w4) rc = nvfp4_weight(q, &nw);
    if (!rc) {
        for (int64_t i = 0; i < q->m * q->k; i++)
            put(xb, i, q->f64, round_to(FP4_FMT_BF16, at(q->x, i, q->f64)));
        for (int64_t r = 0; r < q->n; r++)
            for (int64_t c = 0; c < q->k; c++)
                put(wb, r * q->k + c, q->f64,
                    w4 ? nv_elem(q->c, &nw.mat, r, c) : round_to(FP4_FMT_BF16, at(q->w, r * q->k + c, q->f64)));
        rc = native(q, xb, wb, acc);
    }
    for (int64_t i = 0; !rc && i < q->m * q->n; i++) {
        double v = at(acc, i, q->f64);
        if (w4) v = q->f64 ? (nw.g_divides ? v / nw.g : v * nw.g)
                           : (double)(nw.g_divides ? (float)v / (float)nw.g : (float)v * (float)nw.g);
        put(q->y, i, q->f64, round_to(q->c->p.out, v));
    }
    nvfp4_weight_free(&nw);
    free(xb);
    free(wb);
    free(acc);
    return rc;
}

/* ---------------------------------------------------------------------------
 * W4A4: NVFP4 activations row by row.
 * ------------------------------------------------------------------------- */

/* Row r of x rounded to act_in, as the quantizer's input codes. */
static void act_row(const qcall *q, int64_t r, void *buf) {
    for (int64_t c = 0; c < q->k; c++) {
        double v = at(q->x, r * q->k + c, q->f64);
        if (q->c->p.act_in == FP4_FMT_BF16) ((uint16_t *)buf)[c] = bf16_code(v);
        else ((float *)buf)[c] = (float)v;
    }
}

/* The checkpoint's static input scale when it has one, else dynamic. */
static fp4_qopts act_opts(const qcall *q) {
    fp4_qopts o = fp4_qopts_default();
    const fp4m_stored_weight *s = q->d->stored;
    if (!s || s->kind != FP4M_STORED_NVFP4 || !(s->input_global > 0)) return o;
    o.global_source = s->gkind == FP4M_GSCALE_ENCODE ? FP4_QGS_ENCODE : FP4_QGS_DECODE;
    o.global_scale = s->input_global;
    return o;
}

/* D = A B^T by the policy's engine, rounded once to the policy's output. */
static int engine_gemm(const qcall *q, const fp4_tensor *A, const fp4_tensor *B, void *D) {
    fp4_gemm_call c = fp4_gemm_call_make(A, B, D);
    c.out = q->c->p.out;
    return fp4_engine_gemm(q->c->engine, &c);
}

static int w4a4(const qcall *q) {
    nvw nw;
    if (nvfp4_weight(q, &nw)) return -1;
    void *row = malloc((size_t)q->k * 4), *D = malloc((size_t)q->n * 4);
    int rc = !row || !D ? fp4_fail("model: out of memory in '%s'", q->d->name) : 0;
    const fp4_qopts o = act_opts(q);
    for (int64_t r = 0; !rc && r < q->m; r++) {
        fp4_qtensor qa;
        act_row(q, r, row);
        if (fp4_quantize(q->c->arec, q->c->p.act_in, row, 1, q->k, &o, &qa)) {
            rc = fp4_fail_wrap("model: quantizing the input of '%s'", q->d->name);
            break;
        }
        rc = engine_gemm(q, &qa.t, &nw.mat, D);
        fp4_qtensor_free(&qa);
        if (rc) rc = fp4_fail_wrap("model: NVFP4 GEMM of '%s'", q->d->name);
        else store_codes(q, r, 1, D);
    }
    nvfp4_weight_free(&nw);
    free(row);
    free(D);
    return rc;
}

/* ---------------------------------------------------------------------------
 * FP8 block (DeepSeek).
 * ------------------------------------------------------------------------- */

enum { FP8_B = 128 };

/* The weight as E4M3 + FP32 scales per 128x128: the stored form, or the
 * deepseek-fp8-weight recipe on the path-precision values (DeepSeek
 * publishes no weight quantizer; the recipe is act_quant's rule on tiles). */
static int fp8_weight(const qcall *q, fp4_qtensor *own, fp4_tensor *w) {
    const fp4m_stored_weight *s = q->d->stored;
    if (s && s->kind == FP4M_STORED_FP8_BLOCK) {
        if (s->t.block_rows != FP8_B || s->t.block != FP8_B)
            return fp4_fail("model: '%s': FP8 policy needs 128x128 weight blocks", q->d->name);
        *w = s->t;
        return 0;
    }
    float *wf = malloc((size_t)(q->n * q->k) * sizeof(float));
    if (!wf) return fp4_fail_kind(FP4_ERR_NOMEM, "model: out of memory in '%s'", q->d->name);
    for (int64_t i = 0; i < q->n * q->k; i++) wf[i] = (float)at(q->w, i, q->f64);
    int rc = fp4_quantize_by_name("deepseek-fp8-weight", FP4_FMT_F32, wf, q->n, q->k, NULL, own);
    free(wf);
    if (rc) return fp4_fail_wrap("model: quantizing '%s'", q->d->name);
    *w = own->t;
    return 0;
}

/* Activations rounded to act_in, then per row and 128 channels
 * s = max(amax, 1e-4) / 448 (deepseek-fp8-act, recipes.md §2.13). */
static int fp8_acts(const qcall *q, fp4_qtensor *own) {
    const bool bf = q->c->p.act_in == FP4_FMT_BF16;
    void *buf = malloc((size_t)(q->m * q->k) * (bf ? 2 : 4));
    if (!buf) return fp4_fail_kind(FP4_ERR_NOMEM, "model: out of memory in '%s'", q->d->name);
    for (int64_t i = 0; i < q->m * q->k; i++) {
        double v = at(q->x, i, q->f64);
        if (bf) ((uint16_t *)buf)[i] = bf16_code(v);
        else ((float *)buf)[i] = (float)v;
    }
    int rc = fp4_quantize_by_name("deepseek-fp8-act", q->c->p.act_in, buf, q->m, q->k, NULL, own);
    free(buf);
    return rc ? fp4_fail_wrap("model: quantizing the input of '%s'", q->d->name) : 0;
}

static int fp8_block(const qcall *q) {
    fp4_qtensor wq, xq;
    memset(&wq, 0, sizeof wq);
    memset(&xq, 0, sizeof xq);
    fp4_tensor W;
    void *D = malloc((size_t)(q->m * q->n) * 4);
    int rc = !D ? fp4_fail_kind(FP4_ERR_NOMEM, "model: out of memory in '%s'", q->d->name) : 0;
    if (!rc) rc = fp8_weight(q, &wq, &W);
    if (!rc) rc = fp8_acts(q, &xq);
    if (!rc) {
        rc = engine_gemm(q, &xq.t, &W, D);
        if (rc) rc = fp4_fail_wrap("model: FP8 GEMM of '%s'", q->d->name);
        else store_codes(q, 0, q->m, D);
    }
    fp4_qtensor_free(&wq);
    fp4_qtensor_free(&xq);
    free(D);
    return rc;
}

/* ---------------------------------------------------------------------------
 * Dispatch
 * ------------------------------------------------------------------------- */

static int run(void *ctx, const fp4m_linear_desc *d, int64_t m, const void *x, const void *w,
               void *y, bool f64) {
    const qctx *c = ctx;
    qcall q = {c, d, m, d->out, d->in, f64, x, w, y};
    switch (c->p.fmt[fp4m_linear_class(d)]) {
    case FP4M_Q_NATIVE: return native(&q, x, w, y);
    case FP4M_Q_BF16: return bf16_like(&q, false);
    case FP4M_Q_W4A16: return bf16_like(&q, true);
    case FP4M_Q_W4A4: return w4a4(&q);
    case FP4M_Q_FP8_BLOCK: return fp8_block(&q);
    default: return fp4_fail("model: bad policy format");
    }
}

static int run_f64(void *ctx, const fp4m_linear_desc *d, int64_t m, const double *x,
                   const double *w, double *y) {
    return run(ctx, d, m, x, w, y, true);
}

static int run_f32(void *ctx, const fp4m_linear_desc *d, int64_t m, const float *x,
                   const float *w, float *y) {
    return run(ctx, d, m, x, w, y, false);
}

int fp4m_policy_backend_new(const fp4m_policy *p, fp4m_gemm_backend **out) {
    if (!p || !out) return fp4_fail("model: null argument");
    *out = NULL;
    if ((p->out != FP4_FMT_BF16 && p->out != FP4_FMT_F32) ||
        (p->act_in != FP4_FMT_BF16 && p->act_in != FP4_FMT_F32))
        return fp4_fail("model: policy '%s': act_in and out must be BF16 or F32", p->name);
    qctx *c = calloc(1, sizeof *c);
    fp4m_gemm_backend *b = calloc(1, sizeof *b);
    if (!c || !b) {
        free(c);
        free(b);
        return fp4_fail("model: out of memory");
    }
    c->p = *p;
    for (int i = 0; i < 16; i++) c->e2m1[i] = fp4_to_f64(FP4_FMT_E2M1, (uint64_t)i);
    for (int i = 0; i < 128; i++) c->ue4m3[i] = fp4_to_f64(FP4_FMT_UE4M3, (uint64_t)i);
    int rc = fp4_qrecipe_from_name(p->weight_recipe, &c->wrec) || fp4_qrecipe_from_name(p->act_recipe, &c->arec) ? -1 : 0;
    if (!rc && (c->wrec->block != 16 || c->arec->block != 16))
        rc = fp4_fail("model: policy '%s': NVFP4 needs NVFP4 recipes (block 16), got '%s' / '%s'",
                      p->name, c->wrec->name, c->arec->name);
    c->engine = p->engine;
    if (!rc && !c->engine && fp4_engine_ref_open(&c->own_ref) == 0) c->engine = c->own_ref;
    if (!rc && !c->engine) rc = -1;
    if (rc) {
        free(c);
        free(b);
        return -1;
    }
    b->name = c->p.name;
    b->ctx = c;
    b->gemm_f64 = run_f64;
    b->gemm_f32 = run_f32;
    *out = b;
    return 0;
}

void fp4m_policy_backend_free(fp4m_gemm_backend *b) {
    if (!b) return;
    qctx *c = b->ctx;
    if (c) fp4_engine_close(c->own_ref);
    free(b->ctx);
    free(b);
}
