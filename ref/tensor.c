/* tensor.c - the one block-scaled tensor type (fp4tensor.h): constructors,
 * checks, kinds, element and scale access in either scale layout. */
#include "fp4ref.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Constructors                                                              */
/* ------------------------------------------------------------------------ */

fp4_tensor fp4_tensor_plain(fp4_format elem, int64_t rows, int64_t cols, const void *codes) {
    fp4_tensor t;
    memset(&t, 0, sizeof t);
    t.elem = elem;
    t.rows = rows;
    t.cols = cols;
    t.codes = codes;
    t.scale_fmt = FP4_FMT_COUNT;
    t.block_rows = 1;
    t.layout = FP4_SCALE_LINEAR;
    t.global_scale = 1.0f;
    return t;
}

fp4_tensor fp4_tensor_nvfp4(int64_t rows, int64_t cols, const uint8_t *packed_codes,
                            const uint8_t *ue4m3_scales, float global_scale) {
    fp4_tensor t = fp4_tensor_plain(FP4_FMT_E2M1, rows, cols, packed_codes);
    t.packed = true;
    t.scale_fmt = FP4_FMT_UE4M3;
    t.block = 16;
    t.scales = ue4m3_scales;
    t.global_scale = global_scale;
    return t;
}

fp4_tensor fp4_tensor_mx(fp4_format elem, int64_t rows, int64_t cols, const void *codes,
                         const uint8_t *ue8m0_scales) {
    fp4_tensor t = fp4_tensor_plain(elem, rows, cols, codes);
    t.packed = elem == FP4_FMT_E2M1;
    t.scale_fmt = FP4_FMT_UE8M0;
    t.block = 32;
    t.scales = ue8m0_scales;
    return t;
}

fp4_tensor fp4_tensor_fp8_block(int64_t rows, int64_t cols, const uint8_t *codes,
                                const float *scales, int32_t block_rows) {
    fp4_tensor t = fp4_tensor_plain(FP4_FMT_E4M3, rows, cols, codes);
    t.scale_fmt = FP4_FMT_F32;
    t.block = 128;
    t.block_rows = block_rows;
    t.scales = scales;
    return t;
}

/* ------------------------------------------------------------------------ */
/* Kinds                                                                     */
/* ------------------------------------------------------------------------ */

static const char *const k_tkind_names[FP4_TK_COUNT] = {
    "f32",        "f16",        "bf16",       "e4m3",       "e5m2",         "e3m2",
    "e2m3",       "e2m1",       "nvfp4",      "mxfp4",      "mxfp6-e2m3",   "mxfp6-e3m2",
    "mxfp8-e4m3", "mxfp8-e5m2", "fp8-block128", "block-scaled",
};

const char *fp4_tkind_name(fp4_tkind k) {
    return (unsigned)k < FP4_TK_COUNT ? k_tkind_names[k] : "?";
}

const char *fp4_tkind_names(void) {
    static char buf[256];
    if (!buf[0])
        for (int k = 0; k < FP4_TK_OTHER; k++)
            snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", k ? ", " : "",
                     k_tkind_names[k]);
    return buf;
}

int fp4_tkind_from_name(const char *name, fp4_tkind *out) {
    for (int k = 0; name && k < FP4_TK_OTHER; k++)
        if (strcmp(name, k_tkind_names[k]) == 0) {
            *out = (fp4_tkind)k;
            return 0;
        }
    return fp4_fail("unknown operand kind '%s' (valid: %s)", name ? name : "(null)",
                    fp4_tkind_names());
}

bool fp4_tensor_scaled(const fp4_tensor *t) { return t->scale_fmt != FP4_FMT_COUNT; }

static fp4_tkind plain_kind(fp4_format f) {
    switch (f) {
    case FP4_FMT_F32: return FP4_TK_F32;
    case FP4_FMT_F16: return FP4_TK_F16;
    case FP4_FMT_BF16: return FP4_TK_BF16;
    case FP4_FMT_E4M3: return FP4_TK_E4M3;
    case FP4_FMT_E5M2: return FP4_TK_E5M2;
    case FP4_FMT_E3M2: return FP4_TK_E3M2;
    case FP4_FMT_E2M3: return FP4_TK_E2M3;
    case FP4_FMT_E2M1: return FP4_TK_E2M1;
    default: return FP4_TK_OTHER;
    }
}

fp4_tkind fp4_tensor_kind(const fp4_tensor *t) {
    if (!fp4_tensor_scaled(t)) return plain_kind(t->elem);
    if (t->scale_fmt == FP4_FMT_UE4M3 && t->block == 16 && t->elem == FP4_FMT_E2M1 && t->packed &&
        t->block_rows == 1)
        return FP4_TK_NVFP4;
    if (t->scale_fmt == FP4_FMT_UE8M0 && t->block == 32 && t->block_rows == 1) {
        switch (t->elem) {
        case FP4_FMT_E2M1: return t->packed ? FP4_TK_MXFP4 : FP4_TK_OTHER;
        case FP4_FMT_E2M3: return FP4_TK_MXFP6_E2M3;
        case FP4_FMT_E3M2: return FP4_TK_MXFP6_E3M2;
        case FP4_FMT_E4M3: return FP4_TK_MXFP8_E4M3;
        case FP4_FMT_E5M2: return FP4_TK_MXFP8_E5M2;
        default: return FP4_TK_OTHER;
        }
    }
    if (t->scale_fmt == FP4_FMT_F32 && t->block == 128 && t->elem == FP4_FMT_E4M3 &&
        (t->block_rows == 1 || t->block_rows == 128))
        return FP4_TK_FP8_BLOCK128;
    return FP4_TK_OTHER;
}

/* ------------------------------------------------------------------------ */
/* Sizes                                                                     */
/* ------------------------------------------------------------------------ */

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

int64_t fp4_tensor_codes_bytes(const fp4_tensor *t) {
    if (t->packed) return ceil_div(t->rows * t->cols, 2);
    return t->rows * t->cols * fp4_format_code_bytes(t->elem);
}

int64_t fp4_tensor_scale_rows(const fp4_tensor *t) {
    return fp4_tensor_scaled(t) ? ceil_div(t->rows, t->block_rows) : 0;
}

int64_t fp4_tensor_scale_cols(const fp4_tensor *t) {
    return fp4_tensor_scaled(t) ? ceil_div(t->cols, t->block) : 0;
}

int64_t fp4_tensor_scales_count(const fp4_tensor *t) {
    if (!fp4_tensor_scaled(t)) return 0;
    if (t->layout == FP4_SCALE_SWIZZLED)
        return (int64_t)fp4_swizzled_bytes(t->rows, fp4_tensor_scale_cols(t));
    return fp4_tensor_scale_rows(t) * fp4_tensor_scale_cols(t);
}

int fp4_tensor_scale_bytes(const fp4_tensor *t) { return t->scale_fmt == FP4_FMT_F32 ? 4 : 1; }

/* ------------------------------------------------------------------------ */
/* Checks                                                                    */
/* ------------------------------------------------------------------------ */

static bool elem_ok(fp4_format f) {
    switch (f) {
    case FP4_FMT_E2M1: case FP4_FMT_E2M3: case FP4_FMT_E3M2: case FP4_FMT_E4M3:
    case FP4_FMT_E5M2: case FP4_FMT_F16: case FP4_FMT_BF16: case FP4_FMT_F32: return true;
    default: return false;
    }
}

int fp4_tensor_check(const fp4_tensor *t, const char *name) {
    if (!t) return fp4_fail("%s: null tensor", name);
    if (!elem_ok(t->elem))
        return fp4_fail("%s: element format %s is not an operand format (e2m1, e2m3, e3m2, e4m3, "
                        "e5m2, f16, bf16, f32)", name, fp4_format_get(t->elem) ?
                        fp4_format_get(t->elem)->name : "?");
    if (t->rows < 0 || t->cols < 0)
        return fp4_fail("%s: bad shape [%lld, %lld]", name, (long long)t->rows, (long long)t->cols);
    if (t->packed && t->elem != FP4_FMT_E2M1)
        return fp4_fail("%s: only e2m1 codes can be packed two per byte", name);
    if (t->packed && t->cols % 2)
        return fp4_fail("%s: packed e2m1 rows need an even number of columns, got %lld", name,
                        (long long)t->cols);
    if (t->rows * t->cols > 0 && !t->codes) return fp4_fail("%s: null codes", name);
    if (!fp4_tensor_scaled(t)) return 0;
    if (t->scale_fmt != FP4_FMT_UE4M3 && t->scale_fmt != FP4_FMT_UE8M0 &&
        t->scale_fmt != FP4_FMT_F32)
        return fp4_fail("%s: block scales must be ue4m3, ue8m0 or f32", name);
    if (t->block < 1 || t->block_rows < 1)
        return fp4_fail("%s: block %d x %d rows is not positive", name, t->block, t->block_rows);
    /* Byte-scaled blocks (NVFP4, MX) are whole; DeepSeek's FP32-scaled 128
     * blocks may end in a partial one (the checkpoint's edge tiles, ds §3). */
    if (t->cols % t->block && t->scale_fmt != FP4_FMT_F32)
        return fp4_fail("%s: %lld columns are not a multiple of the block size %d", name,
                        (long long)t->cols, t->block);
    if (t->scale_fmt == FP4_FMT_F32 && fp4_format_code_bytes(t->elem) != 1)
        return fp4_fail("%s: f32 block scales go with 8-bit or narrower elements", name);
    if (t->layout == FP4_SCALE_SWIZZLED && (t->scale_fmt == FP4_FMT_F32 || t->block_rows != 1))
        return fp4_fail("%s: the swizzled layout holds byte scales of single rows only", name);
    if ((unsigned)t->layout > FP4_SCALE_SWIZZLED) return fp4_fail("%s: unknown scale layout", name);
    if (t->rows * t->cols > 0 && !t->scales) return fp4_fail("%s: null scales", name);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Access                                                                    */
/* ------------------------------------------------------------------------ */

uint64_t fp4_tensor_code(const fp4_tensor *t, int64_t r, int64_t c) {
    int64_t i = r * t->cols + c;
    if (t->packed) {
        uint8_t b = ((const uint8_t *)t->codes)[i / 2];
        return (i & 1) ? e2m1x2_odd(b) : e2m1x2_even(b);
    }
    switch (fp4_format_code_bytes(t->elem)) {
    case 1: return ((const uint8_t *)t->codes)[i];
    case 2: return ((const uint16_t *)t->codes)[i];
    case 4: return ((const uint32_t *)t->codes)[i];
    default: return ((const uint64_t *)t->codes)[i];
    }
}

uint64_t fp4_tensor_scale_code(const fp4_tensor *t, int64_t r, int64_t c) {
    if (!fp4_tensor_scaled(t)) return 0;
    int64_t g = c / t->block, sc = fp4_tensor_scale_cols(t);
    if (t->scale_fmt == FP4_FMT_F32) {
        uint32_t b;
        memcpy(&b, (const float *)t->scales + (r / t->block_rows) * sc + g, 4);
        return b;
    }
    int64_t at = t->layout == FP4_SCALE_SWIZZLED ? fp4_swizzled_offset(r, g, sc)
                                                 : (r / t->block_rows) * sc + g;
    return ((const uint8_t *)t->scales)[at];
}

/* Product of two exact values (NaN/Inf by IEEE rules; 0 * Inf = NaN). */
static fp4_value value_mul(const fp4_value *a, const fp4_value *b) {
    fp4_value v = {FP4_CLASS_NAN, 0, 0, 0};
    if (a->cls == FP4_CLASS_NAN || b->cls == FP4_CLASS_NAN) return v;
    v.sign = a->sign ^ b->sign;
    bool inf = a->cls == FP4_CLASS_INF || b->cls == FP4_CLASS_INF;
    bool zero = a->cls == FP4_CLASS_ZERO || b->cls == FP4_CLASS_ZERO;
    if (inf) {
        v.cls = zero ? FP4_CLASS_NAN : FP4_CLASS_INF;
        return v;
    }
    if (zero) {
        v.cls = FP4_CLASS_ZERO;
        return v;
    }
    /* Element and scale significands are below 2^24 each (F32 the widest):
     * the product fits 64 bits; reduce it to odd as fp4_value requires. */
    v.cls = FP4_CLASS_FINITE;
    v.sig = a->sig * b->sig;
    v.exp = a->exp + b->exp;
    while (!(v.sig & 1)) v.sig >>= 1, v.exp++;
    return v;
}

fp4_value fp4_tensor_block_value(const fp4_tensor *t, int64_t r, int64_t c) {
    fp4_value e = fp4_decode(t->elem, fp4_tensor_code(t, r, c));
    if (!fp4_tensor_scaled(t)) return e;
    uint64_t s = fp4_tensor_scale_code(t, r, c);
    if (t->scale_fmt == FP4_FMT_UE4M3) s &= 0x7F;
    fp4_value sv = fp4_decode(t->scale_fmt, s);
    return value_mul(&e, &sv);
}

fp4_value fp4_tensor_value(const fp4_tensor *t, int64_t r, int64_t c) {
    fp4_value v = fp4_tensor_block_value(t, r, c), g = fp4_value_from_f32(t->global_scale);
    return value_mul(&v, &g);
}

int fp4_tensor_linearize(const fp4_tensor *t, fp4_tensor *out, void **owned) {
    *owned = NULL;
    *out = *t;
    if (!fp4_tensor_scaled(t) || t->layout == FP4_SCALE_LINEAR) return 0;
    int64_t rows = t->rows, sc = fp4_tensor_scale_cols(t);
    uint8_t *lin = malloc((size_t)(rows * sc > 0 ? rows * sc : 1));
    if (!lin) return fp4_fail_kind(FP4_ERR_NOMEM, "out of memory linearizing scales");
    if (fp4_scales_from_swizzled(lin, t->scales, rows, sc)) {
        free(lin);
        return -1;
    }
    out->scales = lin;
    out->layout = FP4_SCALE_LINEAR;
    *owned = lin;
    return 0;
}
