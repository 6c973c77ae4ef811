/* quant_layout.c - block-scale layouts: linear [rows, G] and the 128x4
 * swizzled tiles that cuBLASLt, CUTLASS (sm100_blockscaled_layout.hpp) and
 * TMA expect (numerics.md §9.2).
 *
 * A tile holds 128 rows x 4 scale columns in 512 bytes; tiles are laid out
 * K-first, then M. Inside a tile, row r and column g go to
 *   (r % 32) * 16 + ((r / 32) % 4) * 4 + g % 4,
 * so each aligned 32-bit word holds the 4 K-consecutive scales of one row
 * (the TMEM word). vLLM's swizzle_blockscale writes the same mapping as
 * reshape(1, M/128, 4, 32, G/4, 4).permute(0, 1, 4, 3, 2, 5) of the padded
 * matrix (TRT-LLM's SFOffset formula, also the same). Rows pad to a multiple of 128 and scale columns to a multiple of
 * 4; padding bytes are zero (FlashInfer zero-fills them, and an allocation
 * without the row padding is bugs-to-catch.md A4).
 */
#include "fp4quant.h"

#include <string.h>

static int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

int64_t fp4_swizzled_offset(int64_t row, int64_t sfcol, int64_t sfcols) {
    int64_t ktiles = round_up(sfcols, 4) / 4;
    int64_t tile = (row / 128) * ktiles + sfcol / 4;
    return tile * 512 + (row % 32) * 16 + ((row / 32) % 4) * 4 + sfcol % 4;
}

size_t fp4_swizzled_bytes(int64_t rows, int64_t sfcols) {
    if (rows <= 0 || sfcols <= 0) return 0;
    return (size_t)(round_up(rows, 128) * round_up(sfcols, 4));
}

static int check(const uint8_t *dst, const uint8_t *src, int64_t rows, int64_t sfcols) {
    if (!dst || !src) return fp4_fail("scale layout: null buffer");
    if (rows <= 0 || sfcols <= 0) return fp4_fail("scale layout: bad shape [%lld, %lld]",
                                                  (long long)rows, (long long)sfcols);
    return 0;
}

int fp4_scales_to_swizzled(uint8_t *dst, const uint8_t *src, int64_t rows, int64_t sfcols) {
    if (check(dst, src, rows, sfcols) != 0) return -1;
    memset(dst, 0, fp4_swizzled_bytes(rows, sfcols));
    for (int64_t r = 0; r < rows; r++)
        for (int64_t g = 0; g < sfcols; g++)
            dst[fp4_swizzled_offset(r, g, sfcols)] = src[r * sfcols + g];
    return 0;
}

int fp4_scales_from_swizzled(uint8_t *dst, const uint8_t *src, int64_t rows, int64_t sfcols) {
    if (check(dst, src, rows, sfcols) != 0) return -1;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t g = 0; g < sfcols; g++)
            dst[r * sfcols + g] = src[fp4_swizzled_offset(r, g, sfcols)];
    return 0;
}
