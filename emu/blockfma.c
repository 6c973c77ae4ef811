/* blockfma.c - the block FMA with global alignment (numerics.md §5.1),
 * computed exactly.
 *
 * Terms are (sign, integer significand, lsb exponent, alignment exponent).
 * maxE is the largest alignment exponent (at least min_exp_limit); every
 * term is truncated toward zero to a multiple of 2^g, g = maxE - F, and the
 * truncated integers are summed exactly. When nothing is truncated (g below
 * every term's lsb) g is raised to the smallest lsb, which changes no value
 * and keeps the integers short. The sum lives in an __int128 when its width
 * allows (always for F up to ~110), otherwise in a GMP integer whose top 120
 * bits plus a sticky bit are then enough to round correctly into any
 * accumulator format (the rounding position is at most 24 bits down).
 *
 * Rounding: the grid of a result with leading exponent E is
 * 2^(max(E, emin) - out_bits), i.e. the FP32/FP16 grid with out_bits
 * fraction bits; below emin results are denormalized on that grid
 * (Khattak-Mikaitis' "denormalize, then round"), or flushed when
 * subnormals are off.
 */
#include "emu_internal.h"

#include <gmp.h>
#include <limits.h>

typedef unsigned __int128 u128;
typedef __int128 i128;

/* Exact sum: value = (-1)^sign * (mag + sticky fraction) * 2^exp. */
typedef struct emu_sum {
    int sign;
    u128 mag;
    int64_t exp;
    bool sticky; /* non-zero bits below mag's lsb (wide path only) */
} emu_sum;

static int bitlen128(u128 x) {
    uint64_t hi = (uint64_t)(x >> 64);
    return hi ? 64 + emu_bitlen64(hi) : emu_bitlen64((uint64_t)x);
}

/* NaN/Inf short-circuit: any NaN, or Infs of both signs, give NaN; else
 * an Inf gives that Inf. Returns true if the result is decided. */
static bool block_special(const emu_term *t, int n, fp4_format f, uint64_t *code) {
    bool pinf = false, ninf = false;
    for (int i = 0; i < n; i++) {
        if (t[i].cls == FP4_CLASS_NAN) {
            *code = emu_nan_code(f);
            return true;
        }
        if (t[i].cls == FP4_CLASS_INF && t[i].sign) ninf = true;
        if (t[i].cls == FP4_CLASS_INF && !t[i].sign) pinf = true;
    }
    if (!pinf && !ninf) return false;
    *code = (pinf && ninf) ? emu_nan_code(f) : emu_inf_code(f, ninf);
    return true;
}

/* Sign of an exact zero result. Khattak-Mikaitis return +0. IEEE: -0 only
 * when every term is a -0 (or the mode is RD and something cancelled). */
static uint64_t zero_result(const emu_term *t, int n, bool cancelled, const emu_out *o) {
    if (!o->ieee_zero) return emu_zero_code(o->fmt, 0);
    if (cancelled) return emu_zero_code(o->fmt, o->mode == FP4_RD);
    if (n == 0) return emu_zero_code(o->fmt, 0);
    bool all_neg = true;
    for (int i = 0; i < n; i++) all_neg = all_neg && t[i].sign;
    return emu_zero_code(o->fmt, all_neg || o->mode == FP4_RD);
}

/* FINITE terms are never zero (zero products are dropped, zero codes decode
 * as ZERO), so the class alone says whether a term enters the sum. */
static bool term_live(const emu_term *t) { return t->cls == FP4_CLASS_FINITE; }

/* sig * 2^(lsb - g), truncated toward zero (lsb < g drops low bits). */
static u128 align128(const emu_term *t, int64_t g) {
    int64_t sh = (int64_t)t->lsb - g;
    if (sh >= 0) return (u128)t->sig << sh;
    return -sh >= 64 ? 0 : (u128)(t->sig >> -sh);
}

/* The same in 64 bits, for windows up to 62 bits (the usual F <= ~50). */
static void sum64(const emu_term *t, int n, int64_t g, emu_sum *s) {
    int64_t acc = 0;
    for (int i = 0; i < n; i++) {
        if (!term_live(&t[i])) continue;
        int64_t sh = (int64_t)t[i].lsb - g;
        uint64_t v = sh >= 0 ? t[i].sig << sh : (-sh >= 64 ? 0 : t[i].sig >> -sh);
        acc += t[i].sign ? -(int64_t)v : (int64_t)v;
    }
    s->sign = acc < 0;
    s->mag = acc < 0 ? (u128)(0 - (uint64_t)acc) : (u128)acc;
    s->exp = g;
    s->sticky = false;
}

static void sum128(const emu_term *t, int n, int64_t g, emu_sum *s) {
    i128 acc = 0;
    for (int i = 0; i < n; i++) {
        if (!term_live(&t[i])) continue;
        u128 v = align128(&t[i], g);
        acc += t[i].sign ? -(i128)v : (i128)v;
    }
    s->sign = acc < 0;
    s->mag = acc < 0 ? (u128)0 - (u128)acc : (u128)acc;
    s->exp = g;
    s->sticky = false;
}

static u128 mpz_low128(const mpz_t z) {
    uint64_t limbs[2] = {0, 0};
    size_t cnt = 0;
    mpz_export(limbs, &cnt, -1, sizeof limbs[0], 0, 0, z);
    return ((u128)limbs[1] << 64) | limbs[0];
}

/* Same as sum128 for windows wider than 126 bits, then compressed to the
 * top 120 bits and a sticky bit. */
static void sum_wide(const emu_term *t, int n, int64_t g, emu_sum *s) {
    mpz_t acc, v;
    mpz_init(acc);
    mpz_init(v);
    for (int i = 0; i < n; i++) {
        if (!term_live(&t[i])) continue;
        uint64_t sig = t[i].sig;
        mpz_import(v, 1, -1, sizeof sig, 0, 0, &sig);
        int64_t sh = (int64_t)t[i].lsb - g;
        if (sh >= 0) mpz_mul_2exp(v, v, (mp_bitcnt_t)sh);
        else mpz_fdiv_q_2exp(v, v, (mp_bitcnt_t)-sh); /* v >= 0: floor = truncation */
        if (t[i].sign) mpz_sub(acc, acc, v);
        else mpz_add(acc, acc, v);
    }
    s->sign = mpz_sgn(acc) < 0;
    mpz_abs(acc, acc);
    s->exp = g;
    s->sticky = false;
    size_t nb = mpz_sgn(acc) ? mpz_sizeinbase(acc, 2) : 0;
    if (nb > 126) {
        mp_bitcnt_t drop = (mp_bitcnt_t)(nb - 120);
        s->sticky = mpz_scan1(acc, 0) < drop;
        mpz_fdiv_q_2exp(acc, acc, drop);
        s->exp += (int64_t)drop;
    }
    s->mag = mpz_low128(acc);
    mpz_clear(acc);
    mpz_clear(v);
}

/* Whether to add one unit at the rounding position. */
static bool round_up(fp4_round mode, int sign, bool odd, int cmp_half, bool inexact) {
    switch (mode) {
    case FP4_RZ: return false;
    case FP4_RU: return !sign && inexact;
    case FP4_RD: return sign && inexact;
    case FP4_RNA: return cmp_half >= 0 && inexact;
    default: return cmp_half > 0 || (cmp_half == 0 && odd); /* RNE (RS is not a datapath mode) */
    }
}

/* Drops the low `sh` bits of mag (sh > 0) with the sticky bit below them;
 * returns the kept part, sets cmp (remainder vs half: -1, 0, 1) and inexact. */
static u128 drop_bits(u128 mag, bool sticky, int64_t sh, int *cmp, bool *inexact) {
    if (sh > 127) { /* mag < 2^127 <= half */
        *cmp = -1;
        *inexact = mag != 0 || sticky;
        return 0;
    }
    u128 one = 1, rem = mag & ((one << sh) - 1), half = one << (sh - 1);
    *cmp = rem > half ? 1 : rem < half ? -1 : (sticky ? 1 : 0);
    *inexact = rem != 0 || sticky;
    return mag >> sh;
}

/* Bit pattern of (-1)^sign * m * 2^q, which is on f's grid and finite
 * (m > 0). Accumulator formats are IEEE-like (implicit bit, subnormals). */
static uint64_t encode_exact(fp4_format f, int sign, u128 m, int64_t q) {
    const fp4_format_info *fi = fp4_format_get(f);
    int bl = bitlen128(m);
    int64_t E = bl - 1 + q;
    uint64_t frac, biased = 0;
    if (E < fi->emin) {
        frac = (uint64_t)(m << (q - (fi->emin - fi->mbits))); /* subnormal: units of 2^(emin-mbits) */
    } else {
        if (bl - 1 > fi->mbits) m >>= bl - 1 - fi->mbits; /* a carried-out power of two: exact */
        else m <<= fi->mbits - (bl - 1);
        frac = (uint64_t)m & ((1ull << fi->mbits) - 1);
        biased = (uint64_t)(E + fi->bias);
    }
    return ((uint64_t)(sign != 0) << (fi->bits - 1)) | (biased << fi->mbits) | frac;
}

static uint64_t overflow_result(int sign, const emu_out *o, const fp4_format_info *fi) {
    bool to_inf = o->ovf_inf || o->mode == FP4_RNE || o->mode == FP4_RNA ||
                  (o->mode == FP4_RU && !sign) || (o->mode == FP4_RD && sign);
    if (to_inf) return emu_inf_code(o->fmt, sign);
    u128 maxm = ((u128)1 << (o->bits + 1)) - 1; /* largest value on the out_bits grid */
    return encode_exact(o->fmt, sign, maxm, fi->emax - o->bits);
}

/* Rounds a non-zero exact sum into o's format and grid. */
static uint64_t round_sum(const emu_sum *s, const emu_out *o) {
    const fp4_format_info *fi = fp4_format_get(o->fmt);
    int64_t E = bitlen128(s->mag) - 1 + s->exp;
    if (!o->subnormals && E < fi->emin) return emu_zero_code(o->fmt, s->sign);
    int64_t q = (E > fi->emin ? E : fi->emin) - o->bits;
    u128 kept;
    if (q <= s->exp) {
        kept = s->mag << (s->exp - q); /* already on the grid (sticky is never set here) */
    } else {
        int cmp;
        bool inexact;
        kept = drop_bits(s->mag, s->sticky, q - s->exp, &cmp, &inexact);
        if (round_up(o->mode, s->sign, kept & 1, cmp, inexact)) kept++;
    }
    if (kept == 0) return emu_zero_code(o->fmt, s->sign);
    if (bitlen128(kept) - 1 + q > fi->emax) return overflow_result(s->sign, o, fi);
    return encode_exact(o->fmt, s->sign, kept, q);
}

/* Every term is below 2^(e + 4): products of at most four factors, each
 * below 2^(its e + 1) (clamping e to emin only raises it); accumulator and
 * chunk terms are below 2^(e + 1). */
enum { TERM_HEADROOM = 4 };

uint64_t emu_block(const emu_term *t, int n, int64_t F, int64_t min_exp, const emu_out *o) {
    int64_t maxE = INT64_MIN, minlsb = INT64_MAX;
    int live = 0;
    bool special = false;
    for (int i = 0; i < n; i++) {
        if (t[i].cls != FP4_CLASS_FINITE) {
            special = special || t[i].cls >= FP4_CLASS_INF;
            continue;
        }
        live++;
        if (t[i].e > maxE) maxE = t[i].e;
        if (t[i].lsb < minlsb) minlsb = t[i].lsb;
    }
    uint64_t code;
    if (special && block_special(t, n, o->fmt, &code)) return code;
    if (live == 0) return zero_result(t, n, false, o);
    int64_t topE = maxE; /* the largest term is below 2^(topE + TERM_HEADROOM) */
    if (maxE < min_exp) maxE = min_exp;
    int64_t g = maxE - F;
    if (g < minlsb) g = minlsb; /* nothing truncated: same value, shorter integers */
    emu_sum s;
    int64_t width = topE + TERM_HEADROOM - g + emu_bitlen64((uint64_t)live) + 1;
    if (width <= 62) sum64(t, n, g, &s);
    else if (width <= 126) sum128(t, n, g, &s);
    else sum_wide(t, n, g, &s);
    if (s.mag == 0 && !s.sticky) return zero_result(t, n, true, o);
    return round_sum(&s, o);
}

uint64_t emu_round_int64(int64_t sum, int64_t g, const emu_out *o) {
    if (sum == 0) return zero_result(NULL, 0, true, o);
    emu_sum s = {sum < 0, sum < 0 ? (u128)(0 - (uint64_t)sum) : (u128)sum, g, false};
    return round_sum(&s, o);
}
