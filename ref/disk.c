/* disk.c - the one place that knows how quantized tensors are stored in
 * safetensors files (fp4tensor.h "On-disk conventions"; recipes.md §7,
 * deepseek.md §3): ModelOpt NVFP4, compressed-tensors NVFP4, DeepSeek FP8
 * blocks and fp4sim's own files. Readers check every dtype and shape and
 * name the tensor at fault; writers lay the same names out. */
#include "fp4ref.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const k_conv_names[FP4_DISK_COUNT] = {"fp4sim", "modelopt",
                                                          "compressed-tensors", "deepseek-fp8"};

const char *fp4_disk_conv_name(fp4_disk_conv c) {
    return (unsigned)c < FP4_DISK_COUNT ? k_conv_names[c] : "?";
}

int fp4_disk_names_of(fp4_disk_conv c, const char *stem, fp4_disk_names *o) {
    memset(o, 0, sizeof *o);
#define NAME(field, fmt) snprintf(o->field, sizeof o->field, fmt, stem)
    switch (c) {
    case FP4_DISK_FP4SIM:
        if (!stem[0]) { /* the bare NVFP4 file (gemm --a without --a-tensor) */
            NAME(codes, "%scodes"), NAME(scale, "%sscales"), NAME(global, "%sglobal_scale");
            break;
        }
        NAME(codes, "%s"), NAME(scale, "%s_scale"), NAME(global, "%s_scale_2");
        break;
    case FP4_DISK_MODELOPT: /* recipes.md §7.1 */
        NAME(codes, "%s.weight"), NAME(scale, "%s.weight_scale"), NAME(global, "%s.weight_scale_2");
        NAME(input, "%s.input_scale");
        break;
    case FP4_DISK_CT: /* recipes.md §2.8, §7.2 */
        NAME(codes, "%s.weight_packed"), NAME(scale, "%s.weight_scale");
        NAME(global, "%s.weight_global_scale"), NAME(input, "%s.input_global_scale");
        break;
    case FP4_DISK_DEEPSEEK_FP8: /* recipes.md §7.3, deepseek.md §3 */
        NAME(codes, "%s.weight"), NAME(scale, "%s.weight_scale_inv");
        break;
    default: return fp4_fail("unknown on-disk convention %d", (int)c);
    }
#undef NAME
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Lookup in a checkpoint or a file                                          */
/* ------------------------------------------------------------------------ */

typedef struct src {
    fp4_st_ckpt *ck;
    const fp4_st_file *f;
} src;

static bool has(const src *s, const char *name) {
    return s->ck ? fp4_st_ckpt_has(s->ck, name) : fp4_st_find(s->f, name) != NULL;
}

/* The tensor if present (no message otherwise). */
static const fp4_st_tensor *find_any(const src *s, const char *name) {
    const fp4_st_tensor *t = NULL;
    if (s->ck) {
        if (fp4_st_ckpt_has(s->ck, name) && fp4_st_ckpt_get(s->ck, name, &t) != FP4_ST_OK) t = NULL;
        return t;
    }
    return fp4_st_find(s->f, name);
}

static int lookup(const src *s, const char *name, const fp4_st_tensor **t) {
    if (s->ck) {
        if (fp4_st_ckpt_get(s->ck, name, t) != FP4_ST_OK)
            return fp4_fail_wrap("tensor '%s' missing or unreadable", name);
        return 0;
    }
    if (fp4_st_get(s->f, name, t) != FP4_ST_OK)
        return fp4_fail("tensor '%s' missing in %s", name, fp4_st_path(s->f));
    return 0;
}

int fp4_disk_detect(fp4_st_ckpt *ck, const fp4_st_file *f, const char *stem, fp4_disk_conv *out) {
    const src s = {ck, f};
    char w[320], packed[320];
    snprintf(w, sizeof w, "%s.weight", stem);
    snprintf(packed, sizeof packed, "%s.weight_packed", stem);
    if (has(&s, packed)) {
        if (has(&s, w))
            return fp4_fail("tensor '%s': the checkpoint also holds '%s' (two layouts of one "
                            "weight)", w, packed);
        *out = FP4_DISK_CT;
        return 0;
    }
    if (!has(&s, w)) return 1;
    const fp4_st_tensor *t;
    if (lookup(&s, w, &t)) return -1;
    if (t->ndim == 2 && t->dtype == FP4_ST_U8) *out = FP4_DISK_MODELOPT;
    else if (t->ndim == 2 && t->dtype == FP4_ST_F8_E4M3) *out = FP4_DISK_DEEPSEEK_FP8;
    else return 1;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Checks                                                                    */
/* ------------------------------------------------------------------------ */

static void shape_str(const fp4_st_tensor *t, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int32_t i = 0; i < t->ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%" PRId64, i ? ", " : "", t->shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

static int mismatch(const char *want, const fp4_st_tensor *t) {
    char got[96];
    shape_str(t, got, sizeof got);
    return fp4_fail("tensor '%s': expected %s, checkpoint has %s %s", t->name, want, t->dtype_name,
                    got);
}

static bool is2d(const fp4_st_tensor *t, int64_t d0, int64_t d1) {
    return t->ndim == 2 && (d0 < 0 || t->shape[0] == d0) && (d1 < 0 || t->shape[1] == d1);
}

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* A tensor scale: F32, 0-d (ModelOpt, §7.1) or [1] (compressed-tensors,
 * §7.2), finite and > 0 in either polarity (a zero, negative or NaN one would
 * zero, flip or poison the whole tensor). Absent and not required: *out = 0. */
static int read_global(const src *s, const char *name, bool required, float *out, bool *present) {
    const fp4_st_tensor *t;
    *out = 0;
    *present = false;
    if (!name[0] || (!required && !has(s, name))) return 0;
    if (lookup(s, name, &t)) return -1;
    if (t->dtype != FP4_ST_F32 || t->ndim > 1 || t->numel != 1)
        return mismatch("F32 scalar ([] or [1])", t);
    memcpy(out, t->data, 4);
    if (!isfinite(*out) || !(*out > 0))
        return fp4_fail("tensor '%s': global scale %g must be finite and > 0", name, (double)*out);
    *present = true;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Readers                                                                   */
/* ------------------------------------------------------------------------ */

/* NVFP4 (ModelOpt, compressed-tensors, fp4sim): packed codes + UE4M3 / 16. */
static int read_nvfp4(const src *s, const fp4_disk_names *nm, const fp4_disk_want *w,
                      fp4_disk_tensor *o) {
    const fp4_st_tensor *tc, *ts;
    char want[128];
    if (lookup(s, nm->codes, &tc)) return -1;
    int64_t rows = w->rows >= 0 ? w->rows : tc->shape[0];
    int64_t cols = w->cols >= 0 ? w->cols : (tc->ndim == 2 ? 2 * tc->shape[1] : -1);
    if (cols >= 0 && cols % 16)
        return fp4_fail("tensor '%s': in = %" PRId64 " is not a multiple of 16, the NVFP4 block "
                        "size", tc->name, cols);
    snprintf(want, sizeof want, "U8 [%" PRId64 ", %" PRId64 "] (two E2M1 codes per byte)", rows,
             cols / 2);
    if (tc->dtype != FP4_ST_U8 || !is2d(tc, rows, cols / 2)) return mismatch(want, tc);
    if (lookup(s, nm->scale, &ts)) return -1;
    bool swz = o->conv == FP4_DISK_FP4SIM && ts->dtype == FP4_ST_U8 &&
               is2d(ts, cdiv(rows, 128) * 128, cdiv(cols / 16, 4) * 4) && !is2d(ts, rows, cols / 16);
    snprintf(want, sizeof want, "F8_E4M3 [%" PRId64 ", %" PRId64 "] (one scale per 16)", rows,
             cols / 16);
    bool lin_ok = (ts->dtype == FP4_ST_F8_E4M3 || (o->conv == FP4_DISK_FP4SIM && ts->dtype == FP4_ST_U8)) &&
                  is2d(ts, rows, cols / 16);
    if (!lin_ok && !swz) return mismatch(want, ts);
    o->t = fp4_tensor_nvfp4(rows, cols, tc->data, ts->data, 1.0f);
    if (swz) o->t.layout = FP4_SCALE_SWIZZLED;
    return 0;
}

/* fp4sim's own files: NVFP4 as above, or element tensors of any operand
 * dtype with optional MX (F8_E8M0 per 32) or FP32 (per 128) block scales. */
static int read_fp4sim(const src *s, const fp4_disk_names *nm, const fp4_disk_want *w,
                       fp4_disk_tensor *o) {
    const fp4_st_tensor *tc, *ts = NULL;
    if (lookup(s, nm->codes, &tc)) return -1;
    const fp4_st_tensor *sc = find_any(s, nm->scale);
    if (tc->dtype == FP4_ST_U8 && !(sc && sc->dtype == FP4_ST_F8_E8M0)) return read_nvfp4(s, nm, w, o);
    fp4_format f;
    switch (tc->dtype) {
    case FP4_ST_F32: f = FP4_FMT_F32; break;
    case FP4_ST_F16: f = FP4_FMT_F16; break;
    case FP4_ST_BF16: f = FP4_FMT_BF16; break;
    case FP4_ST_F8_E4M3: f = FP4_FMT_E4M3; break;
    case FP4_ST_F8_E5M2: f = FP4_FMT_E5M2; break;
    case FP4_ST_F4: f = FP4_FMT_E2M1; break;
    case FP4_ST_U8: f = FP4_FMT_E2M1; break; /* packed, with MX scales (MXFP4) */
    default:
        return fp4_fail("tensor '%s': dtype %s is not an operand (U8 packed NVFP4, F4, F8_E4M3, "
                        "F8_E5M2, F16, BF16, F32)", tc->name, tc->dtype_name);
    }
    if (tc->ndim != 2 || (w->rows >= 0 && tc->shape[0] != w->rows) ||
        (w->cols >= 0 && tc->shape[1] != w->cols)) {
        char want[96];
        snprintf(want, sizeof want, "a 2-D tensor [%" PRId64 ", %" PRId64 "]", w->rows, w->cols);
        return mismatch(want, tc);
    }
    const int64_t rows = tc->shape[0], cols = tc->dtype == FP4_ST_U8 ? 2 * tc->shape[1] : tc->shape[1];
    o->t = fp4_tensor_plain(f, rows, cols, tc->data);
    o->t.packed = f == FP4_FMT_E2M1;
    if (has(s, nm->scale) && lookup(s, nm->scale, &ts)) return -1;
    if (!ts) return 0;
    o->t.scales = ts->data;
    if (ts->dtype == FP4_ST_F8_E8M0) {
        o->t.scale_fmt = FP4_FMT_UE8M0, o->t.block = 32;
        if (!is2d(ts, rows, cols / 32)) return mismatch("F8_E8M0 [rows, cols/32] (MX)", ts);
    } else if (ts->dtype == FP4_ST_F32 && f == FP4_FMT_E4M3) {
        o->t.scale_fmt = FP4_FMT_F32, o->t.block = 128;
        o->t.block_rows = ts->ndim == 2 && ts->shape[0] == rows ? 1 : 128;
        if (!is2d(ts, cdiv(rows, o->t.block_rows), cdiv(cols, 128)))
            return mismatch("F32 [rows or rows/128, cols/128] (DeepSeek FP8 blocks)", ts);
    } else {
        return mismatch("F8_E8M0 (MX) or, for F8_E4M3 codes, F32 per 128 (FP8 blocks)", ts);
    }
    return 0;
}

static int read_deepseek(const src *s, const fp4_disk_names *nm, const fp4_disk_want *w,
                         fp4_disk_tensor *o) {
    const fp4_st_tensor *tc, *ts;
    if (lookup(s, nm->codes, &tc)) return -1;
    int64_t rows = w->rows >= 0 ? w->rows : tc->shape[0], cols = w->cols >= 0 ? w->cols : tc->shape[1];
    char want[96];
    snprintf(want, sizeof want, "F8_E4M3 [%" PRId64 ", %" PRId64 "]", rows, cols);
    if (tc->dtype != FP4_ST_F8_E4M3 || !is2d(tc, rows, cols)) return mismatch(want, tc);
    if (lookup(s, nm->scale, &ts)) return -1;
    int64_t br = w->fp8_block[0] ? w->fp8_block[0] : 128, bc = w->fp8_block[1] ? w->fp8_block[1] : 128;
    int64_t r = cdiv(rows, br), c = cdiv(cols, bc);
    snprintf(want, sizeof want, "F32 [%" PRId64 ", %" PRId64 "]", r, c);
    if (ts->dtype != FP4_ST_F32 || !is2d(ts, r, c)) return mismatch(want, ts);
    o->t = fp4_tensor_fp8_block(rows, cols, tc->data, ts->data, (int32_t)br);
    o->t.block = (int32_t)bc;
    return 0;
}

int fp4_disk_read(fp4_st_ckpt *ck, const fp4_st_file *f, fp4_disk_conv c, const char *stem,
                  const fp4_disk_want *want, fp4_disk_tensor *out) {
    if ((!ck) == (!f) || !stem || !out) return fp4_fail("disk read: give a checkpoint or a file");
    const src s = {ck, f};
    const fp4_disk_want any = {-1, -1, {0, 0}};
    const fp4_disk_want *w = want ? want : &any;
    fp4_disk_names nm;
    if (fp4_disk_names_of(c, stem, &nm)) return -1;
    memset(out, 0, sizeof *out);
    out->conv = c;
    out->global_stored = 1.0f;
    int rc;
    switch (c) {
    case FP4_DISK_FP4SIM: rc = read_fp4sim(&s, &nm, w, out); break;
    case FP4_DISK_DEEPSEEK_FP8: rc = read_deepseek(&s, &nm, w, out); break;
    default: rc = read_nvfp4(&s, &nm, w, out); break;
    }
    if (rc) return -1;
    bool present;
    float g = 0;
    if (read_global(&s, nm.global, c == FP4_DISK_MODELOPT || c == FP4_DISK_CT, &g, &present))
        return -1;
    if (present) {
        out->has_global = true;
        out->global_stored = g;
        out->global_encode = c == FP4_DISK_CT;
        /* The GEMM takes a decode scale: the consumer's RN32(1/encode) (§2.8). */
        out->t.global_scale = out->global_encode ? 1.0f / g : g;
    }
    if (read_global(&s, nm.input, false, &out->input_stored, &out->has_input)) return -1;
    return fp4_tensor_check(&out->t, stem);
}

/* ------------------------------------------------------------------------ */
/* Writer                                                                    */
/* ------------------------------------------------------------------------ */

static fp4_st_dtype codes_dtype(const fp4_disk_tensor *d) {
    if (d->t.packed) return FP4_ST_U8;
    switch (d->t.elem) {
    case FP4_FMT_E4M3: return FP4_ST_F8_E4M3;
    case FP4_FMT_E5M2: return FP4_ST_F8_E5M2;
    case FP4_FMT_F16: return FP4_ST_F16;
    case FP4_FMT_BF16: return FP4_ST_BF16;
    case FP4_FMT_F32: return FP4_ST_F32;
    default: return FP4_ST_U8; /* E2M3 / E3M2: one code per byte */
    }
}

static fp4_st_dtype scale_dtype(const fp4_disk_tensor *d) {
    if (d->t.layout == FP4_SCALE_SWIZZLED) return FP4_ST_U8; /* padded tiles, not a tensor of values */
    return d->t.scale_fmt == FP4_FMT_UE8M0 ? FP4_ST_F8_E8M0
           : d->t.scale_fmt == FP4_FMT_F32 ? FP4_ST_F32 : FP4_ST_F8_E4M3;
}

static int put(fp4_st_writer *w, const char *name, fp4_st_dtype dt, int32_t ndim, int64_t d0,
               int64_t d1, const void *data, int64_t nbytes) {
    int64_t shape[2] = {d0, d1};
    return fp4_st_writer_add_copy(w, name, dt, ndim, shape, data, nbytes) == FP4_ST_OK ? 0 : -1;
}

int fp4_disk_write(fp4_st_writer *w, const char *stem, const fp4_disk_tensor *d) {
    fp4_disk_names nm;
    if (!w || !d || fp4_disk_names_of(d->conv, stem, &nm) || fp4_tensor_check(&d->t, stem)) return -1;
    const fp4_tensor *t = &d->t;
    const int64_t cb = fp4_tensor_codes_bytes(t);
    if (put(w, nm.codes, codes_dtype(d), 2, t->rows, t->packed ? t->cols / 2 : t->cols, t->codes, cb))
        return -1;
    if (fp4_tensor_scaled(t)) {
        int64_t r = fp4_tensor_scale_rows(t), c = fp4_tensor_scale_cols(t);
        if (t->layout == FP4_SCALE_SWIZZLED) r = cdiv(t->rows, 128) * 128, c = cdiv(c, 4) * 4;
        if (put(w, nm.scale, scale_dtype(d), 2, r, c, t->scales, r * c * fp4_tensor_scale_bytes(t)))
            return -1;
    }
    /* ModelOpt and fp4sim store 0-d scalars, compressed-tensors [1] (§7.1, §7.2). */
    const int32_t gdim = d->conv == FP4_DISK_CT ? 1 : 0;
    if (nm.global[0] && d->has_global && put(w, nm.global, FP4_ST_F32, gdim, 1, 0, &d->global_stored, 4))
        return -1;
    if (nm.input[0] && d->has_input && put(w, nm.input, FP4_ST_F32, gdim, 1, 0, &d->input_stored, 4))
        return -1;
    return 0;
}
