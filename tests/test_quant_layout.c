/* test_quant_layout.c - the 128x4 swizzled scale layout (ref/quant_layout.c)
 * against an independent implementation of its reshape/permute description
 * (vLLM swizzle_blockscale: pad to (128, 4), reshape(M/128, 4, 32, G/4, 4),
 * permute(0, 3, 2, 1, 4), flatten - numerics.md §9.2), hand-computed
 * offsets, linear -> swizzled -> linear round trips for shapes that are not
 * multiples of 128 rows / 4 scale columns (K not a multiple of 64) with zero
 * padding, the quantizer's swizzled output, and bad arguments. */
#include "fp4quant.h"
#include "testutil.h"

#include <string.h>

static int64_t rup(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

/* Generic permute of a 5-D row-major array: out[o] for o over the permuted
 * shape, taken from in at the corresponding source coordinates. */
static void permute5(uint8_t *out, const uint8_t *in, const int64_t shape[5], const int perm[5]) {
    int64_t stride[5], pshape[5], total = 1;
    stride[4] = 1;
    for (int d = 3; d >= 0; d--) stride[d] = stride[d + 1] * shape[d + 1];
    for (int d = 0; d < 5; d++) pshape[d] = shape[perm[d]], total *= shape[d];
    for (int64_t o = 0; o < total; o++) {
        int64_t rem = o, src = 0;
        for (int d = 4; d >= 0; d--) {
            int64_t idx = rem % pshape[d];
            rem /= pshape[d];
            src += idx * stride[perm[d]];
        }
        out[o] = in[src];
    }
}

/* Reference swizzle: zero-pad to [Mp, Gp], view (Mp/128, 4, 32, Gp/4, 4)
 * = (mt, i4, i32, kt, k4), permute to (mt, kt, i32, i4, k4). */
static void ref_swizzle(uint8_t *dst, const uint8_t *src, int64_t rows, int64_t g) {
    int64_t mp = rup(rows, 128), gp = rup(g, 4);
    uint8_t *pad = calloc((size_t)(mp * gp), 1);
    for (int64_t r = 0; r < rows; r++) memcpy(pad + r * gp, src + r * g, (size_t)g);
    const int64_t shape[5] = {mp / 128, 4, 32, gp / 4, 4};
    const int perm[5] = {0, 3, 2, 1, 4};
    permute5(dst, pad, shape, perm);
    free(pad);
}

static void test_shape(int64_t rows, int64_t g, uint32_t stream) {
    size_t n = fp4_swizzled_bytes(rows, g);
    fp4t_check(n == (size_t)(rup(rows, 128) * rup(g, 4)), "size [%lld,%lld]", (long long)rows,
               (long long)g);
    uint8_t *lin = malloc((size_t)(rows * g)), *sw = malloc(n), *ref = malloc(n);
    uint8_t *back = malloc((size_t)(rows * g));
    for (int64_t i = 0; i < rows * g; i++) lin[i] = (uint8_t)(1 + fp4t_rand32(fp4t_seed(), stream, i) % 255);
    memset(sw, 0xAA, n); /* padding must come back as zero */
    fp4t_check(fp4_scales_to_swizzled(sw, lin, rows, g) == 0, "to_swizzled");
    ref_swizzle(ref, lin, rows, g);
    fp4t_check(memcmp(sw, ref, n) == 0, "swizzle vs permute [%lld,%lld]", (long long)rows, (long long)g);
    size_t nonzero = 0;
    for (size_t i = 0; i < n; i++) nonzero += sw[i] != 0;
    fp4t_check(nonzero == (size_t)(rows * g), "padding not zero [%lld,%lld]", (long long)rows,
               (long long)g);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < g; c++)
            if (sw[fp4_swizzled_offset(r, c, g)] != lin[r * g + c])
                fp4t_check(0, "offset(%lld,%lld)", (long long)r, (long long)c);
    fp4t_check(fp4_scales_from_swizzled(back, sw, rows, g) == 0, "from_swizzled");
    fp4t_check(memcmp(back, lin, (size_t)(rows * g)) == 0, "round trip [%lld,%lld]", (long long)rows,
               (long long)g);
    free(lin), free(sw), free(ref), free(back);
}

/* Offsets worked out by hand from off = (r/128*ceil(G/4) + g/4)*512 +
 * (r%32)*16 + ((r/32)%4)*4 + g%4. */
static void test_hand_offsets(void) {
    fp4t_check(fp4_swizzled_offset(0, 0, 4) == 0, "(0,0)");
    fp4t_check(fp4_swizzled_offset(0, 3, 4) == 3, "(0,3): same 32-bit word");
    fp4t_check(fp4_swizzled_offset(1, 0, 4) == 16, "(1,0): next row at +16");
    fp4t_check(fp4_swizzled_offset(32, 0, 4) == 4, "(32,0): row 32 shares row 0's 16 bytes");
    fp4t_check(fp4_swizzled_offset(127, 3, 4) == 31 * 16 + 3 * 4 + 3, "(127,3) = 511");
    fp4t_check(fp4_swizzled_offset(33, 5, 8) == 512 + 16 + 4 + 1, "(33,5) G=8 = 533");
    fp4t_check(fp4_swizzled_offset(128, 0, 8) == 2 * 512, "(128,0) G=8: tile row 1");
    fp4t_check(fp4_swizzled_offset(130, 5, 5) == (2 + 1) * 512 + 2 * 16 + 1, "(130,5) G=5 -> 1569");
}

/* The quantizer's swizzled scales equal the linear ones put through the
 * layout, for rows / K that need padding. */
static void test_quantizer_layouts(void) {
    static const int64_t shapes[][2] = {{1, 16}, {3, 48}, {130, 80}, {129, 128}, {257, 272}};
    const char *names[] = {"modelopt", "te", "mxfp4"};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        for (int k = 0; k < 3; k++) {
            int64_t rows = shapes[s][0], cols = shapes[s][1];
            if (k == 2) cols *= 2; /* MX needs multiples of 32 */
            float *x = malloc((size_t)(rows * cols) * sizeof *x);
            for (int64_t i = 0; i < rows * cols; i++)
                x[i] = (float)((int32_t)fp4t_rand32(fp4t_seed(), 7, i)) * 0x1p-28f;
            fp4_qopts o = fp4_qopts_default();
            fp4_qtensor a, b;
            int ra = fp4_quantize_by_name(names[k], FP4_FMT_F32, x, rows, cols, &o, &a);
            o.layout = FP4_SCALE_SWIZZLED;
            int rb = fp4_quantize_by_name(names[k], FP4_FMT_F32, x, rows, cols, &o, &b);
            fp4t_check(ra == 0 && rb == 0, "quantize %s: %s", names[k], fp4_last_error());
            if (ra == 0 && rb == 0) {
                uint8_t *sw = malloc(b.scales_bytes);
                fp4_scales_to_swizzled(sw, a.scales, rows, fp4_tensor_scale_cols(&a.t));
                fp4t_check(b.scales_bytes == fp4_swizzled_bytes(rows, fp4_tensor_scale_cols(&a.t)) &&
                               memcmp(sw, b.scales, b.scales_bytes) == 0,
                           "%s [%lld,%lld]: swizzled output", names[k], (long long)rows, (long long)cols);
                fp4t_check(memcmp(a.codes, b.codes, a.codes_bytes) == 0, "codes independent of layout");
                for (int64_t r = 0; r < rows; r++)
                    for (int64_t c = 0; c < cols; c += a.t.block)
                        if (fp4_qtensor_scale(&a, r, c) != fp4_qtensor_scale(&b, r, c))
                            fp4t_check(0, "fp4_qtensor_scale (%lld,%lld)", (long long)r, (long long)c);
                free(sw);
                fp4_qtensor_free(&a), fp4_qtensor_free(&b);
            }
            free(x);
        }
    }
}

static void test_bad_args(void) {
    uint8_t a[4] = {0}, b[512];
    fp4t_check(fp4_scales_to_swizzled(NULL, a, 1, 1) == -1, "null dst");
    fp4t_check(fp4_scales_to_swizzled(b, a, 0, 1) == -1, "zero rows");
    fp4t_check(fp4_scales_from_swizzled(a, b, 1, -1) == -1, "negative cols");
    fp4t_check(fp4_swizzled_bytes(0, 4) == 0, "empty size");
}

int main(void) {
    fp4t_begin("test_quant_layout");
    static const int64_t rows[] = {1, 5, 31, 32, 33, 127, 128, 129, 255, 256, 300};
    static const int64_t gs[] = {1, 2, 3, 4, 5, 7, 8, 9, 17, 36};
    uint32_t stream = 1;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        for (size_t j = 0; j < sizeof gs / sizeof gs[0]; j++) test_shape(rows[i], gs[j], stream++);
    test_hand_offsets();
    test_quantizer_layouts();
    test_bad_args();
    return fp4t_end();
}
