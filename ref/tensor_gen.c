/* tensor_gen.c - random operands of every tensor kind: the generated inputs
 * of `fp4sim gemm` (docs/cli.md) and of anyone who needs a reproducible
 * operand. Codes come from fp4rng.h's frozen streams, so the bits depend on
 * (kind, shape, seed, stream) only. */
#include "fp4ref.h"

#include <stdlib.h>

static uint32_t word(uint64_t seed, uint32_t stream, uint64_t i) {
    return fp4_rand32(seed, stream, FP4_RNG_SUB_PLAIN, i);
}

/* Element code from one word: finite codes only (no NaN/Inf), exponents in
 * a band where products and sums stay normal. */
static uint64_t element_code(fp4_format f, uint32_t w) {
    switch (f) {
    case FP4_FMT_E4M3: { uint32_t i = w % 254; return i < 127 ? i : i + 1; } /* no 0x7F/0xFF */
    case FP4_FMT_E5M2: { uint32_t i = w % 248; return i < 124 ? i : i + 4; } /* no Inf/NaN */
    case FP4_FMT_F16: /* exponent field 5..24 (numerics.md §5.2's distribution) */
        return (w & 0x83FFu) | ((5u + (w >> 16) % 20u) << 10);
    case FP4_FMT_BF16: return (w & 0x807Fu) | ((100u + (w >> 16) % 51u) << 7);
    case FP4_FMT_F32: return (w & 0x807FFFFFu) | ((100u + (w >> 24) % 51u) << 23);
    default: return w & 0xFu; /* e2m1: every code is finite */
    }
}

/* Block scale from one word: UE4M3 0x30..0x3F (0.5 .. 1.875), UE8M0
 * 2^-4 .. 2^4, FP32 (1 + m 2^-23) 2^(-8 .. 8). */
static uint64_t scale_code(fp4_format f, uint32_t w) {
    if (f == FP4_FMT_UE4M3) return 0x30u + w % 16u;
    if (f == FP4_FMT_UE8M0) return 123u + w % 9u;
    return (w & 0x7FFFFFu) | ((119u + (w >> 23) % 17u) << 23);
}

/* The view of `kind` with no data (linear layout, global scale 1). */
static int empty_view(fp4_tkind kind, int64_t rows, int64_t cols, fp4_tensor *t) {
    switch (kind) {
    case FP4_TK_NVFP4: *t = fp4_tensor_nvfp4(rows, cols, NULL, NULL, 1.0f); return 0;
    case FP4_TK_MXFP4: *t = fp4_tensor_mx(FP4_FMT_E2M1, rows, cols, NULL, NULL); return 0;
    case FP4_TK_MXFP8_E4M3: *t = fp4_tensor_mx(FP4_FMT_E4M3, rows, cols, NULL, NULL); return 0;
    case FP4_TK_MXFP8_E5M2: *t = fp4_tensor_mx(FP4_FMT_E5M2, rows, cols, NULL, NULL); return 0;
    case FP4_TK_FP8_BLOCK128: *t = fp4_tensor_fp8_block(rows, cols, NULL, NULL, 1); return 0;
    case FP4_TK_E4M3: *t = fp4_tensor_plain(FP4_FMT_E4M3, rows, cols, NULL); return 0;
    case FP4_TK_E5M2: *t = fp4_tensor_plain(FP4_FMT_E5M2, rows, cols, NULL); return 0;
    case FP4_TK_F16: *t = fp4_tensor_plain(FP4_FMT_F16, rows, cols, NULL); return 0;
    case FP4_TK_BF16: *t = fp4_tensor_plain(FP4_FMT_BF16, rows, cols, NULL); return 0;
    case FP4_TK_F32: *t = fp4_tensor_plain(FP4_FMT_F32, rows, cols, NULL); return 0;
    default:
        return fp4_fail_kind(FP4_ERR_UNSUPPORTED, "random operands of kind %s are not generated",
                             fp4_tkind_name(kind));
    }
}

int fp4_tensor_random(fp4_tkind kind, int64_t rows, int64_t cols, uint64_t seed,
                      uint32_t stream, fp4_tensor *out, void **owned) {
    *owned = NULL;
    if (rows < 0 || cols < 0)
        return fp4_fail("random operand: shape [%lld, %lld] is negative", (long long)rows,
                        (long long)cols);
    fp4_tensor t;
    if (empty_view(kind, rows, cols, &t)) return -1;
    if (fp4_tensor_scaled(&t) && t.scale_fmt != FP4_FMT_F32 && cols % t.block)
        return fp4_fail("random operand: K = %lld is not a multiple of %d (the %s block)",
                        (long long)cols, t.block, fp4_tkind_name(kind));
    const int64_t nc = fp4_tensor_codes_bytes(&t), ns = fp4_tensor_scales_count(&t);
    const int cb = fp4_format_code_bytes(t.elem), sb = fp4_tensor_scale_bytes(&t);
    /* One block: codes, then the scales at a 4-byte aligned offset. */
    const int64_t soff = (nc + 3) & ~(int64_t)3;
    uint8_t *buf = malloc((size_t)(soff + ns * sb + 1));
    if (!buf) return fp4_fail_kind(FP4_ERR_NOMEM, "random operand: out of memory");
    if (t.packed) { /* NVFP4 / MXFP4: byte i from word i (two E2M1 codes) */
        for (int64_t i = 0; i < nc; i++) buf[i] = (uint8_t)word(seed, stream, (uint64_t)i);
    } else {
        for (int64_t i = 0; i < rows * cols; i++) {
            uint64_t code = element_code(t.elem, word(seed, stream, (uint64_t)i));
            if (cb == 1) buf[i] = (uint8_t)code;
            else if (cb == 2) ((uint16_t *)buf)[i] = (uint16_t)code;
            else ((uint32_t *)buf)[i] = (uint32_t)code;
        }
    }
    for (int64_t i = 0; i < ns; i++) {
        uint64_t s = scale_code(t.scale_fmt, word(seed, stream + 1, (uint64_t)i));
        if (sb == 1) buf[soff + i] = (uint8_t)s;
        else ((uint32_t *)(buf + soff))[i] = (uint32_t)s;
    }
    t.codes = buf;
    t.scales = fp4_tensor_scaled(&t) ? buf + soff : NULL;
    *out = t;
    *owned = buf;
    return 0;
}
