/* probe_gen.c - the probe's inputs, one tile at a time (docs/probe.md
 * "Inputs"). Every tile has a group; its random numbers come from Philox
 * keyed by (seed, tile index), so any tile can be regenerated alone.
 *
 * A tile's outputs pair every A row with every B row, so targeted tiles are
 * built so that the property holds for every pair: B rows share one pattern
 * (up to sign) where the structure matters, A rows carry the variation.
 *
 * Random inputs follow numerics.md §5.2 (e4m3: every finite code for FP32
 * accumulation, exponent field 2..9 for FP16; f16: exponent field 5..24;
 * bf16: 100..150; C: 25 % zero, else +-[2^-15, 2^15) for FP32), the
 * targeted groups its §6 probe plan.
 */
#include "probe_internal.h"

#include <string.h>

/* ------------------------------------------------------------------------ */
/* Random numbers and codes                                                  */
/* ------------------------------------------------------------------------ */

typedef struct prng {
    uint64_t seed, ctr;
    uint32_t stream, buf[4];
    int left;
} prng;

static prng prng_make(uint64_t seed, int64_t tile) {
    prng r;
    memset(&r, 0, sizeof r);
    r.seed = seed;
    r.stream = (uint32_t)tile;
    r.ctr = (uint64_t)tile >> 32 << 40; /* tiles beyond 2^32 get their own counter range */
    return r;
}

static uint32_t prng_next(prng *r) {
    if (r->left == 0) {
        fp4_philox4x32(r->seed, r->stream, FP4_RNG_SUB_PROBE, r->ctr, r->buf);
        r->left = 4;
        r->ctr++;
    }
    return r->buf[--r->left];
}

/* Uniform integer in [lo, hi] (hi >= lo). */
static int prng_range(prng *r, int lo, int hi) {
    return lo + (int)(prng_next(r) % (uint32_t)(hi - lo + 1));
}

static int clampi(int x, int lo, int hi) { return x < lo ? lo : x > hi ? hi : x; }

/* Code of (-1)^s (1 + frac/2^mbits) 2^e for e in the normal range, or of
 * the subnormal with leading bit 2^e (the remaining fraction bits from
 * frac); false if 2^e is not representable. A code that would be NaN (E4M3
 * S.1111.111) takes the next smaller fraction. */
static bool make_code(fp4_format fmt, int s, int e, uint32_t frac, uint64_t *code) {
    const fp4_format_info *fi = fp4_format_get(fmt);
    const int mb = fi->mbits;
    if (e > fi->emax) return false;
    const uint64_t sign = fi->is_signed && s ? 1ull << (fi->bits - 1) : 0;
    if (e >= fi->emin) {
        uint64_t c = sign | ((uint64_t)(e + fi->bias) << mb) | (frac & ((1ull << mb) - 1));
        if (fp4_decode(fmt, c).cls == FP4_CLASS_NAN) c--;
        *code = c;
        return true;
    }
    const int shift = fi->emin - e; /* subnormal: leading bit shift places below the hidden one */
    if (shift > mb) return false;
    *code = sign | (1ull << (mb - shift)) | (frac & ((1ull << (mb - shift)) - 1));
    return true;
}

/* A random code with exponent e clamped into [lo, hi] (both representable). */
static uint64_t rand_code(prng *r, fp4_format fmt, int e, int lo, int hi) {
    uint64_t c = 0;
    make_code(fmt, (int)(prng_next(r) & 1), clampi(e, lo, hi), prng_next(r), &c);
    return c;
}

static uint64_t pow2_code(fp4_format fmt, int s, int e) {
    uint64_t c = 0;
    return make_code(fmt, s, e, 0, &c) ? c : 0;
}

/* Smallest exponent of a power of two in fmt (its smallest subnormal). */
static int pow2_lo(fp4_format fmt) {
    const fp4_format_info *fi = fp4_format_get(fmt);
    return fi->emin - fi->mbits;
}

/* ------------------------------------------------------------------------ */
/* Tile access                                                               */
/* ------------------------------------------------------------------------ */

typedef struct tile {
    const fp4emu_probe_instr *ins;
    fp4emu_probe_batch *b;
    int64_t t;
    int ns;
    prng r;
} tile;

static void set_code(void *codes, fp4_format f, int64_t i, uint64_t c) {
    if (fp4_format_code_bytes(f) == 2)
        ((uint16_t *)codes)[i] = (uint16_t)c;
    else
        ((uint8_t *)codes)[i] = (uint8_t)c;
}

static void set_a(tile *x, int m, int k, uint64_t c) {
    set_code(x->b->a, x->ins->in.a_fmt, (x->t * x->ins->m + m) * x->ins->k + k, c);
}
static void set_b(tile *x, int n, int k, uint64_t c) {
    set_code(x->b->b, x->ins->in.b_fmt, (x->t * x->ins->n + n) * x->ins->k + k, c);
}
static void set_sa(tile *x, int m, int j, uint64_t c) {
    if (x->ns) x->b->sa[(x->t * x->ins->m + m) * x->ns + j] = (uint8_t)c;
}
static void set_sb(tile *x, int n, int j, uint64_t c) {
    if (x->ns) x->b->sb[(x->t * x->ins->n + n) * x->ns + j] = (uint8_t)c;
}
static void set_c(tile *x, int m, int n, uint64_t c) {
    x->b->c[(x->t * x->ins->m + m) * x->ins->n + n] = (uint32_t)c;
}

/* Every scale of the tile to 1.0 (UE4M3 0x38). */
static void unit_scales(tile *x) {
    for (int j = 0; j < x->ns; j++) {
        for (int m = 0; m < x->ins->m; m++) set_sa(x, m, j, pow2_code(FP4_FMT_UE4M3, 0, 0));
        for (int n = 0; n < x->ins->n; n++) set_sb(x, n, j, pow2_code(FP4_FMT_UE4M3, 0, 0));
    }
}

static void zero_c(tile *x) {
    for (int m = 0; m < x->ins->m; m++)
        for (int n = 0; n < x->ins->n; n++) set_c(x, m, n, 0);
}

/* Largest product exponent that keeps a K-term sum finite in the
 * accumulator (FP16 outputs: 32 products below 2^9 stay below 2^14). */
static int product_cap(const fp4emu_probe_instr *ins) { return ins->acc == FP4_FMT_F16 ? 7 : 1000; }

/* ------------------------------------------------------------------------ */
/* exact and random                                                          */
/* ------------------------------------------------------------------------ */

/* Elements in {0, +-1, +-2}, scales in {1, 2}, C in {0, +-1, ..., +-8}:
 * every sum is a small integer, exact in every candidate model. */
static void gen_exact(tile *x) {
    const fp4emu_probe_instr *ins = x->ins;
    for (int m = 0; m < ins->m; m++)
        for (int k = 0; k < ins->k; k++) {
            uint32_t v = prng_next(&x->r) % 5;
            set_a(x, m, k,
                  v == 0 ? 0 : pow2_code(ins->in.a_fmt, (int)(v & 1), (int)(v >> 1) - (v == 4)));
        }
    for (int n = 0; n < ins->n; n++)
        for (int k = 0; k < ins->k; k++) {
            uint32_t v = prng_next(&x->r) % 5;
            set_b(x, n, k,
                  v == 0 ? 0 : pow2_code(ins->in.b_fmt, (int)(v & 1), (int)(v >> 1) - (v == 4)));
        }
    for (int j = 0; j < x->ns; j++) {
        for (int m = 0; m < ins->m; m++)
            set_sa(x, m, j, pow2_code(FP4_FMT_UE4M3, 0, (int)(prng_next(&x->r) & 1)));
        for (int n = 0; n < ins->n; n++)
            set_sb(x, n, j, pow2_code(FP4_FMT_UE4M3, 0, (int)(prng_next(&x->r) & 1)));
    }
    for (int m = 0; m < ins->m; m++)
        for (int n = 0; n < ins->n; n++) {
            uint32_t v = prng_next(&x->r) % 9;
            set_c(x, m, n, v == 0 ? 0 : pow2_code(ins->acc, (int)(v & 1), (int)(v - 1) / 2));
        }
}

static uint64_t random_elem(fp4_format f, bool f16acc, uint32_t r) {
    switch (f) {
    case FP4_FMT_F16:
        return (r & 0x83FFu) | ((5u + (r >> 16) % 20u) << 10);
    case FP4_FMT_BF16:
        return (r & 0x807Fu) | ((100u + (r >> 16) % 51u) << 7);
    case FP4_FMT_E2M1:
        return r & 0xFu;
    default:
        if (f16acc) return (r & 0x87u) | ((2u + (r >> 16) % 8u) << 3);
        return (r & 0x7Fu) == 0x7Fu ? 0x38u : (r & 0xFFu);
    }
}

static uint64_t random_acc(fp4_format acc, prng *r) {
    uint32_t v = prng_next(r), mant = prng_next(r);
    if (v % 4 == 0) return 0;
    uint32_t s = (v >> 2) & 1, e = v >> 3;
    if (acc == FP4_FMT_F16) return ((uint64_t)s << 15) | ((10u + e % 11u) << 10) | (mant & 0x3FFu);
    return ((uint64_t)s << 31) | ((uint64_t)(112u + e % 30u) << 23) | (mant & 0x7FFFFFu);
}

/* UE4M3 scales: a narrow band around 1 on even tiles, anywhere on odd ones. */
static uint64_t random_scale(prng *r, bool narrow) {
    uint32_t v = prng_next(r);
    return narrow ? 0x30u + v % 0x10u : 1u + v % 0x7Eu;
}

static void gen_random(tile *x) {
    const fp4emu_probe_instr *ins = x->ins;
    const bool f16acc = ins->acc == FP4_FMT_F16, narrow = x->t % 2 == 0;
    for (int m = 0; m < ins->m; m++)
        for (int k = 0; k < ins->k; k++)
            set_a(x, m, k, random_elem(ins->in.a_fmt, f16acc, prng_next(&x->r)));
    for (int n = 0; n < ins->n; n++)
        for (int k = 0; k < ins->k; k++)
            set_b(x, n, k, random_elem(ins->in.b_fmt, f16acc, prng_next(&x->r)));
    for (int j = 0; j < x->ns; j++) {
        for (int m = 0; m < ins->m; m++) set_sa(x, m, j, random_scale(&x->r, narrow));
        for (int n = 0; n < ins->n; n++) set_sb(x, n, j, random_scale(&x->r, narrow));
    }
    for (int m = 0; m < ins->m; m++)
        for (int n = 0; n < ins->n; n++) set_c(x, m, n, random_acc(ins->acc, &x->r));
}

/* ------------------------------------------------------------------------ */
/* window: one huge product plus tiny ones                                   */
/* ------------------------------------------------------------------------ */

/* Exponent band of an operand format for targeted tiles: normal values,
 * bf16 limited to 40 binades below its top. */
static void band(fp4_format f, int cap, int *lo, int *hi) {
    const fp4_format_info *fi = fp4_format_get(f);
    *hi = fi->emax - 1 < cap ? fi->emax - 1 : cap;
    if (*hi < fi->emin) *hi = fi->emin;
    *lo = fi->emin > *hi - 40 ? fi->emin : *hi - 40;
}

/* One operand row: position p at exponent hi, the others at s + 0..2. */
static void window_row(tile *x, fp4_format f, int lo, int hi, int p, int s, bool is_a, int row) {
    for (int k = 0; k < x->ins->k; k++) {
        int e = k == p ? hi : s + prng_range(&x->r, 0, 2);
        uint64_t c = rand_code(&x->r, f, e, lo, hi);
        if (is_a)
            set_a(x, row, k, c);
        else
            set_b(x, row, k, c);
    }
}

/* Unscaled: A row m small exponent sA_m, B row n sB_n, both huge at one
 * position p, so output (m, n) has one product 2^(hiA+hiB) and the others
 * near 2^(sA_m+sB_n): spreads from ~2 to (hiA-loA)+(hiB-loB) bits. */
static void gen_window_plain(tile *x) {
    const fp4emu_probe_instr *ins = x->ins;
    const int cap = product_cap(ins);
    int loA, hiA, loB, hiB;
    band(ins->in.a_fmt, cap / 2, &loA, &hiA);
    band(ins->in.b_fmt, cap - cap / 2, &loB, &hiB);
    const int p = prng_range(&x->r, 0, ins->k - 1);
    for (int m = 0; m < ins->m; m++)
        window_row(x, ins->in.a_fmt, loA, hiA, p, prng_range(&x->r, loA, hiA), true, m);
    for (int n = 0; n < ins->n; n++)
        window_row(x, ins->in.b_fmt, loB, hiB, p, prng_range(&x->r, loB, hiB), false, n);
    unit_scales(x);
    for (int m = 0; m < ins->m; m++)
        for (int n = 0; n < ins->n; n++)
            set_c(
                x, m, n,
                prng_next(&x->r) % 2
                    ? 0
                    : rand_code(&x->r, ins->acc, loA + loB + prng_range(&x->r, 0, 8), -1000, cap));
}

/* Block-scaled: the huge product is alone in its 16-element chunk J, whose
 * scales are 2^7; the other chunks have scales 2^sA_m / 2^sB_n, sA, sB in
 * [-6, 6]: spreads up to ~32 bits plus the elements' own. */
static void gen_window_scaled(tile *x) {
    const fp4emu_probe_instr *ins = x->ins;
    const int p = prng_range(&x->r, 0, ins->k - 1), J = p / ins->in.scale_block;
    for (int m = 0; m < ins->m; m++) {
        const int s = prng_range(&x->r, -6, 6);
        for (int j = 0; j < x->ns; j++)
            set_sa(x, m, j, rand_code(&x->r, FP4_FMT_UE4M3, j == J ? 7 : s, -6, 8) & 0x7F);
        for (int k = 0; k < ins->k; k++)
            set_a(x, m, k, k / ins->in.scale_block == J && k != p ? 0 : 1 + prng_next(&x->r) % 15);
    }
    for (int n = 0; n < ins->n; n++) {
        const int s = prng_range(&x->r, -6, 6);
        for (int j = 0; j < x->ns; j++)
            set_sb(x, n, j, rand_code(&x->r, FP4_FMT_UE4M3, j == J ? 7 : s, -6, 8) & 0x7F);
        for (int k = 0; k < ins->k; k++) set_b(x, n, k, 1 + prng_next(&x->r) % 15);
    }
    zero_c(x);
}

/* ------------------------------------------------------------------------ */
/* C large or small against the products                                     */
/* ------------------------------------------------------------------------ */

static void gen_c_large(tile *x) {
    const fp4emu_probe_instr *ins = x->ins;
    int lo, hi;
    band(ins->in.a_fmt, 2, &lo, &hi);
    for (int m = 0; m < ins->m; m++)
        for (int k = 0; k < ins->k; k++)
            set_a(x, m, k, rand_code(&x->r, ins->in.a_fmt, prng_range(&x->r, -2, 2), lo, hi));
    band(ins->in.b_fmt, 2, &lo, &hi);
    for (int n = 0; n < ins->n; n++)
        for (int k = 0; k < ins->k; k++)
            set_b(x, n, k, rand_code(&x->r, ins->in.b_fmt, prng_range(&x->r, -2, 2), lo, hi));
    for (int j = 0; j < x->ns; j++) {
        for (int m = 0; m < ins->m; m++) set_sa(x, m, j, random_scale(&x->r, true));
        for (int n = 0; n < ins->n; n++) set_sb(x, n, j, random_scale(&x->r, true));
    }
    const int span = ins->acc == FP4_FMT_F16 ? 14 : 44;
    for (int m = 0; m < ins->m; m++)
        for (int n = 0; n < ins->n; n++)
            set_c(x, m, n, rand_code(&x->r, ins->acc, prng_range(&x->r, -span, span), -1000, 1000));
}

/* ------------------------------------------------------------------------ */
/* ties: sums exactly halfway between two outputs                            */
/* ------------------------------------------------------------------------ */

/* A tie of precision p: terms covering bits L..L-p of the sum with random
 * bits (each term one A element with a (mbits+1)-bit significand times a
 * power of two from B, and a power-of-two scale for block-scaled kinds),
 * then 2^(L-p-1) (half an ulp), then optionally +-2^(L-p-1-j). B rows
 * share one power-of-two pattern (up to sign), so every output of the tile
 * is the same kind of tie. */
typedef struct tie_plan {
    int nterm;
    int pos[FP4EMU_PROBE_MAX_K];  /* K position of each term */
    int ea[FP4EMU_PROBE_MAX_K];   /* A element exponent */
    int bits[FP4EMU_PROBE_MAX_K]; /* significant bits of the A element (1: a power of two) */
    int eb[FP4EMU_PROBE_MAX_K];   /* B power-of-two exponent */
    int chunk_e[FP4EMU_PROBE_MAX_SCALES]; /* SFA power-of-two exponents (scaled) */
    int next_pos, chunk;                  /* placement cursor */
    bool has_tiny;                        /* the last term is the tiny one (its sign may flip) */
} tie_plan;

/* Places a term of value (bits-bit significand) * 2^(E - bits + 1): leading
 * bit 2^E. false if no position can hold it. */
static bool tie_place(const fp4emu_probe_instr *ins, tie_plan *pl, int E, int bits) {
    const fp4_format_info *fa = fp4_format_get(ins->in.a_fmt);
    const int blo = pow2_lo(ins->in.b_fmt), bhi = fp4_format_get(ins->in.b_fmt)->emax;
    const int alo = bits > 1 ? fa->emin : pow2_lo(ins->in.a_fmt), ahi = fa->emax;
    const int sb = ins->in.scale_block ? ins->in.scale_block : ins->k;
    while (pl->next_pos < ins->k) {
        const int chunk = pl->next_pos / sb;
        if (ins->in.scale_fmt != FP4_FMT_COUNT && chunk != pl->chunk) { /* open a new chunk */
            pl->chunk = chunk;
            pl->chunk_e[chunk] = clampi(E - ahi - bhi, -9, 8);
        }
        const int shift = ins->in.scale_fmt != FP4_FMT_COUNT ? pl->chunk_e[pl->chunk] : 0;
        const int eb = clampi(E - shift - (alo + ahi) / 2, blo, bhi), ea = E - shift - eb;
        if (ea >= alo && ea <= ahi && bits <= fa->mbits + 1) {
            int i = pl->nterm++;
            pl->pos[i] = pl->next_pos++, pl->ea[i] = ea, pl->bits[i] = bits, pl->eb[i] = eb;
            return true;
        }
        if (ins->in.scale_fmt == FP4_FMT_COUNT) return false;
        pl->next_pos = (chunk + 1) * sb; /* try the next chunk with a fresh scale */
    }
    return false;
}

/* The plan for precision p with leading exponent L, or false. */
static bool tie_plan_make(const fp4emu_probe_instr *ins, int p, int L, int tiny, tie_plan *pl) {
    memset(pl, 0, sizeof *pl);
    pl->chunk = -1;
    for (int j = 0; j < FP4EMU_PROBE_MAX_SCALES; j++) pl->chunk_e[j] = 0;
    const int c = fp4_format_get(ins->in.a_fmt)->mbits + 1;
    for (int E = L; E >= L - p; E -= c) { /* bits L..L-p, the last term cut at L-p */
        int bits = E - (L - p) + 1 < c ? E - (L - p) + 1 : c;
        if (!tie_place(ins, pl, E, bits)) return false;
    }
    if (!tie_place(ins, pl, L - p - 1, 1)) return false;
    pl->has_tiny = tiny > 0;
    return tiny == 0 || tie_place(ins, pl, L - p - 1 - tiny, 1);
}

/* A row of the plan: term i's element with bits[i] random significant bits
 * (leading one included), everything else zero. */
static void tie_row_a(tile *x, const tie_plan *pl, int m, bool negative_tiny) {
    const fp4_format f = x->ins->in.a_fmt;
    const int mb = fp4_format_get(f)->mbits;
    for (int k = 0; k < x->ins->k; k++) set_a(x, m, k, 0);
    for (int i = 0; i < pl->nterm; i++) {
        uint32_t frac = pl->bits[i] > 1 ? (prng_next(&x->r) & ((1u << (pl->bits[i] - 1)) - 1))
                                              << (mb - pl->bits[i] + 1)
                                        : 0;
        uint64_t c = 0;
        make_code(f, negative_tiny && pl->has_tiny && i == pl->nterm - 1, pl->ea[i], frac, &c);
        set_a(x, m, pl->pos[i], c);
    }
}

static void gen_ties_from(tile *x, const tie_plan *pl) {
    const fp4emu_probe_instr *ins = x->ins;
    for (int m = 0; m < ins->m; m++) tie_row_a(x, pl, m, prng_next(&x->r) & 1);
    for (int n = 0; n < ins->n; n++) {
        const int s = (int)(prng_next(&x->r) & 1);
        for (int k = 0; k < ins->k; k++) set_b(x, n, k, 0);
        for (int i = 0; i < pl->nterm; i++)
            set_b(x, n, pl->pos[i], pow2_code(ins->in.b_fmt, s, pl->eb[i]));
    }
    for (int j = 0; j < x->ns; j++) {
        for (int m = 0; m < ins->m; m++)
            set_sa(x, m, j, pow2_code(FP4_FMT_UE4M3, 0, pl->chunk_e[j]));
        for (int n = 0; n < ins->n; n++) set_sb(x, n, j, pow2_code(FP4_FMT_UE4M3, 0, 0));
    }
    zero_c(x);
}

/* Tries output precisions 23 (FP32), 13 (the sm90 QGMMA grid) and 10
 * (FP16), widest first; false if none can be built for these formats. */
static bool gen_ties(tile *x) {
    const fp4emu_probe_instr *ins = x->ins;
    const int precs[3] = {23, 13, 10}, tiny = prng_range(&x->r, 0, 1) ? prng_range(&x->r, 1, 8) : 0;
    const int L = ins->acc == FP4_FMT_F16 ? product_cap(ins)
                                          : fp4_format_get(ins->in.a_fmt)->emax +
                                                fp4_format_get(ins->in.b_fmt)->emax - 1;
    for (int i = ins->acc == FP4_FMT_F16 ? 2 : 0; i < 3; i++) {
        tie_plan pl;
        if (tie_plan_make(ins, precs[i], L < 100 ? L : 100, tiny, &pl) ||
            (tiny && tie_plan_make(ins, precs[i], L < 100 ? L : 100, 0, &pl))) {
            gen_ties_from(x, &pl);
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------------------------ */
/* scales, subnormals, special values                                        */
/* ------------------------------------------------------------------------ */

/* Block-scaled: every chunk scale anywhere in the normal UE4M3 range, so
 * the chunks of one instruction differ by up to 2^14 each side. */
static void gen_scales(tile *x) {
    gen_random(x);
    for (int j = 0; j < x->ns; j++) {
        for (int m = 0; m < x->ins->m; m++)
            set_sa(x, m, j, rand_code(&x->r, FP4_FMT_UE4M3, prng_range(&x->r, -6, 8), -6, 8));
        for (int n = 0; n < x->ins->n; n++)
            set_sb(x, n, j, rand_code(&x->r, FP4_FMT_UE4M3, prng_range(&x->r, -6, 8), -6, 8));
    }
}

/* A subnormal code of f half the time, else a normal one in its lowest
 * binades (bf16: products below the FP32 range). */
static uint64_t tiny_code(prng *r, fp4_format f) {
    const fp4_format_info *fi = fp4_format_get(f);
    uint32_t v = prng_next(r);
    if (v & 1) {
        uint64_t mant = (v >> 1) & ((1ull << fi->mbits) - 1);
        return (fi->is_signed && (v >> 31) ? 1ull << (fi->bits - 1) : 0) | (mant ? mant : 1);
    }
    uint64_t c = 0;
    make_code(f, (int)(v >> 31), fi->emin + (int)((v >> 8) % 3), prng_next(r), &c);
    return c;
}

/* Even tiles: every A element subnormal and C = 0, so a subnormal operand
 * sets maxE (its alignment exponent is emin, or lower after an exact
 * unpack to F16: what tells `unpack` apart, docs/emu.md §4). Odd tiles: a
 * mix of subnormal and tiny normal codes everywhere. */
static void gen_subnormal(tile *x) {
    const fp4emu_probe_instr *ins = x->ins;
    const bool all_sub = x->t % 2 == 0;
    const fp4_format_info *fa = fp4_format_get(ins->in.a_fmt);
    for (int m = 0; m < ins->m; m++)
        for (int k = 0; k < ins->k; k++) {
            uint32_t v = prng_next(&x->r);
            uint64_t mant = (v & ((1u << fa->mbits) - 1)) | 1u,
                     sign = fa->is_signed && (v >> 31) ? 1ull << (fa->bits - 1) : 0;
            set_a(x, m, k, all_sub ? sign | mant : tiny_code(&x->r, ins->in.a_fmt));
        }
    /* B: tiny, or small normals 2^-12..2^0, so that (with bf16) products land
     * in FP32's subnormal range [2^-149, 2^-126). */
    const fp4_format_info *fb = fp4_format_get(ins->in.b_fmt);
    for (int n = 0; n < ins->n; n++)
        for (int k = 0; k < ins->k; k++)
            set_b(x, n, k,
                  prng_next(&x->r) % 2 ? tiny_code(&x->r, ins->in.b_fmt)
                                       : rand_code(&x->r, ins->in.b_fmt, prng_range(&x->r, -12, 0),
                                                   fb->emin, fb->emax));
    for (int j = 0; j < x->ns; j++) {
        for (int m = 0; m < ins->m; m++) set_sa(x, m, j, tiny_code(&x->r, FP4_FMT_UE4M3));
        for (int n = 0; n < ins->n; n++) set_sb(x, n, j, tiny_code(&x->r, FP4_FMT_UE4M3));
    }
    for (int m = 0; m < ins->m; m++)
        for (int n = 0; n < ins->n; n++)
            set_c(x, m, n, !all_sub && prng_next(&x->r) % 3 ? tiny_code(&x->r, ins->acc) : 0);
}

/* NaN / Inf codes of an element format (0 when it has none). */
static uint64_t nan_code(fp4_format f) { return fp4_format_get(f)->canonical_nan; }
static uint64_t inf_code(fp4_format f, int s) {
    const fp4_format_info *fi = fp4_format_get(f);
    return fi->has_inf ? ((uint64_t)s << (fi->bits - 1)) | (((1ull << fi->ebits) - 1) << fi->mbits)
                       : 0;
}

/* One special value in A row m: a NaN or Inf element, a NaN (0x7F) or zero
 * scale, an Inf/NaN C, or an overflowing row, whichever the formats have. */
static void special_row(tile *x, int m) {
    const fp4emu_probe_instr *ins = x->ins;
    const int k = prng_range(&x->r, 0, ins->k - 1), kind = prng_range(&x->r, 0, 4);
    const uint64_t nan = nan_code(ins->in.a_fmt),
                   inf = inf_code(ins->in.a_fmt, (int)(prng_next(&x->r) & 1));
    if (kind == 0 && nan)
        set_a(x, m, k, nan);
    else if (kind == 1 && inf)
        set_a(x, m, k, inf);
    else if (kind <= 1 && x->ns)
        set_sa(x, m, k / ins->in.scale_block, prng_next(&x->r) % 2 ? 0x7F : 0x00);
    else if (kind == 2) {
        const uint64_t c = prng_next(&x->r) % 2 ? nan_code(ins->acc)
                                                : inf_code(ins->acc, (int)(prng_next(&x->r) & 1));
        for (int n = 0; n < ins->n; n++) set_c(x, m, n, c);
    } else if (kind == 3) { /* overflow: the largest finite A elements, same sign */
        for (int j = 0; j < ins->k; j++) set_a(x, m, j, fp4_format_get(ins->in.a_fmt)->max_finite);
        for (int n = 0; n < ins->n; n++) set_c(x, m, n, fp4_format_get(ins->acc)->max_finite);
    } else
        set_a(x, m, k, 0); /* a zero element where B may hold Inf or NaN */
}

static void gen_special(tile *x) {
    const fp4emu_probe_instr *ins = x->ins;
    gen_random(x);
    for (int n = 0; n < ins->n; n++) { /* a quarter of B rows: large, with some Inf/NaN */
        if (prng_next(&x->r) % 4) continue;
        for (int k = 0; k < ins->k; k++) set_b(x, n, k, fp4_format_get(ins->in.b_fmt)->max_finite);
        const int k = prng_range(&x->r, 0, ins->k - 1);
        const uint64_t v =
            prng_next(&x->r) % 2 ? nan_code(ins->in.b_fmt) : inf_code(ins->in.b_fmt, 1);
        if (v)
            set_b(x, n, k, v);
        else if (x->ns)
            set_sb(x, n, k / ins->in.scale_block, 0x7F);
    }
    for (int m = 0; m < ins->m; m++) special_row(x, m);
}

/* ------------------------------------------------------------------------ */
/* Dispatch                                                                  */
/* ------------------------------------------------------------------------ */

bool probe_group_applies(const fp4emu_probe_instr *ins, fp4emu_probe_group g) {
    return g != FP4EMU_PG_SCALES || ins->in.scale_fmt != FP4_FMT_COUNT;
}

fp4emu_probe_group probe_gen_tile(const fp4emu_probe_instr *ins, fp4emu_probe_batch *b, int64_t t,
                                  fp4emu_probe_group g, uint64_t seed) {
    tile x = {ins, b, t, probe_nscales(ins), prng_make(seed, t)};
    switch (g) {
    case FP4EMU_PG_EXACT:
        gen_exact(&x);
        break;
    case FP4EMU_PG_WINDOW:
        if (x.ns)
            gen_window_scaled(&x);
        else
            gen_window_plain(&x);
        break;
    case FP4EMU_PG_C_LARGE:
        gen_c_large(&x);
        break;
    case FP4EMU_PG_TIES:
        if (!gen_ties(&x)) g = FP4EMU_PG_RANDOM, gen_random(&x);
        break;
    case FP4EMU_PG_SCALES:
        gen_scales(&x);
        break;
    case FP4EMU_PG_SUBNORMAL:
        gen_subnormal(&x);
        break;
    case FP4EMU_PG_SPECIAL:
        gen_special(&x);
        break;
    default:
        g = FP4EMU_PG_RANDOM, gen_random(&x);
        break;
    }
    b->group[t] = (uint8_t)g;
    return g;
}
