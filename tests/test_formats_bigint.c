/* test_formats_bigint.c - fp4_encode_bigint((-1)^s * L * 2^exp) against the
 * MPFR oracle (mpfr_set_z_2exp at the full precision of L) into every format
 * (F32 and F64 included):
 *  - Philox-random L of 1..4 limbs in several bit patterns (uniform, sparse,
 *    single limb, all ones, runs) with exponents near each format's range,
 *    moderate, huge (|exp| ~ 2^40, random int64) and at the int64 extremes
 *    (the sum exp + bit length must not overflow inside ref/);
 *  - exact midpoints between adjacent codes spread over several limbs, with
 *    and without a sticky bit far below (L = M << s, M << s +- 1);
 *  - zero limbs (nlimbs 0..4) with both signs and extreme exponents;
 * in random modes (RS with random bits and widths), policies and options. */
#include "mpfr_oracle.h"
#include "testutil.h"

#include <limits.h>
#include <math.h>
#include <string.h>

#define NCASES 2000000

static void report(fp4_format f, int sign, const uint64_t *l, size_t n, int64_t exp,
                   const fp4_cvt_opts *o, fp4o_res got, fp4o_res want) {
    char buf[96], limbs[96] = "";
    for (size_t i = n; i-- > 0;) {
        char t[24];
        snprintf(t, sizeof t, "%016llx%s", (unsigned long long)l[i], i ? "_" : "");
        strncat(limbs, t, sizeof limbs - strlen(limbs) - 1);
    }
    fp4t_check(0, "%s%s*2^%lld -> %s (%s): ref 0x%llx t=%d fl=0x%x, oracle 0x%llx t=%d fl=0x%x",
               sign ? "-" : "", n ? limbs : "(no limbs)", (long long)exp, fp4_format_get(f)->name,
               fp4o_opts_string(o, buf, sizeof buf), (unsigned long long)got.code, got.ternary,
               got.flags, (unsigned long long)want.code, want.ternary, want.flags);
}

static void check(fp4_format f, int sign, const uint64_t *l, size_t n, int64_t exp,
                  const fp4_cvt_opts *o) {
    fp4o_res got = {~0ull, 0, 0}, want = {~0ull, 0, 0};
    got.ternary = fp4o_sgn(fp4_encode_bigint(f, sign, l, n, exp, o, &got.code, &got.flags));
    want.ternary = fp4o_encode_bigint(f, sign, l, n, exp, o, &want.code, &want.flags);
    if (fp4o_res_eq(got, want)) fp4t_check(1, "");
    else report(f, sign, l, n, exp, o, got, want);
}

/* Philox stream of case i. */
typedef struct rng {
    uint64_t seed, i;
    uint32_t k;
} rng;
static uint64_t next(rng *r) { return fp4t_rand64(r->seed, 0xB1600000u + r->k++, r->i); }
static int64_t uniform(rng *r, int64_t lo, int64_t hi) { /* [lo, hi] */
    return lo + (int64_t)(next(r) % (uint64_t)(hi - lo + 1));
}

static fp4_cvt_opts random_opts(rng *r) {
    fp4_cvt_opts o = fp4_cvt_opts_default();
    o.round = (fp4_round)(next(r) % FP4_ROUND_COUNT);
    o.policy = (fp4_policy)(next(r) % FP4_POLICY_COUNT);
    o.options = (unsigned)(next(r) % 8);
    o.rbits = (uint32_t)next(r);
    o.rbits_width = (next(r) % 3 == 0) ? (int)uniform(r, 1, 32) : 0;
    return o;
}

static size_t random_limbs(rng *r, uint64_t *l) {
    size_t n = 1 + (size_t)(next(r) % 4);
    int pattern = (int)(next(r) % 6);
    for (size_t i = 0; i < n; i++) {
        uint64_t a = next(r), b = next(r);
        switch (pattern) {
        case 0: l[i] = a; break;                                  /* uniform */
        case 1: l[i] = (a & 1) ? 1ull << (b % 64) : 0; break;      /* sparse */
        case 2: l[i] = i + 1 == n ? a : 0; break;                 /* top limb only */
        case 3: l[i] = ~0ull; break;                              /* all ones */
        case 4: l[i] = a & b; break;                              /* runs of zeros */
        default: l[i] = a | b; break;                             /* runs of ones */
        }
    }
    if (l[n - 1] == 0) l[n - 1] = 1ull << (next(r) % 64);
    return n;
}

static int64_t bitlen(const uint64_t *l, size_t n) {
    while (n > 0 && l[n - 1] == 0) n--;
    return n ? (int64_t)(n - 1) * 64 + (64 - __builtin_clzll(l[n - 1])) : 0;
}

static int64_t random_exp(rng *r, fp4_format f, int64_t bits) {
    const fp4_format_info *fi = fp4_format_get(f);
    int64_t qmin = (fi->has_subnormals ? fi->emin - fi->mbits : fi->emin);
    switch (next(r) % 8) {
    case 4: return (int64_t)next(r);                           /* anywhere in int64 */
    case 5: return (next(r) & 1 ? 1 : -1) * ((int64_t)1 << 40) + uniform(r, -300, 300);
    case 6: {
        const int64_t ext[] = {INT64_MAX, INT64_MIN, INT64_MAX - 255, INT64_MIN + 1,
                               INT64_MAX - 62, INT64_MIN + 62};
        return ext[next(r) % 6];
    }
    case 7: return uniform(r, -(1 << 20), 1 << 20);
    default: /* value's binade in or near the format's range */
        return uniform(r, qmin - 80, fi->emax + 80) - (bits - 1);
    }
}

static void random_cases(void) {
    uint64_t seed = fp4t_seed();
    for (uint64_t i = 0; i < NCASES; i++) {
        rng r = {seed, i, 0};
        fp4_format f = (fp4_format)(next(&r) % FP4_FMT_COUNT);
        uint64_t l[4];
        size_t n = random_limbs(&r, l);
        int64_t exp = random_exp(&r, f, bitlen(l, n));
        fp4_cvt_opts o = random_opts(&r);
        check(f, (int)(next(&r) & 1), l, n, exp, &o);
    }
}

/* Midpoint M * 2^e of adjacent codes (M odd) written as L = M << s with
 * exp = e - s, so the tie spreads over limbs; +-1 puts a sticky bit far
 * below the rounding position. */
static void midpoint_cases(void) {
    uint64_t seed = fp4t_seed();
    static const fp4_format fmts[] = {FP4_FMT_E2M1, FP4_FMT_E2M3, FP4_FMT_E3M2, FP4_FMT_E4M3,
                                      FP4_FMT_UE4M3, FP4_FMT_E5M2, FP4_FMT_UE8M0, FP4_FMT_F16,
                                      FP4_FMT_BF16};
    for (size_t fi = 0; fi < sizeof fmts / sizeof fmts[0]; fi++) {
        fp4_format f = fmts[fi];
        int64_t n = fp4o_count_nonneg(f);
        for (int64_t k = 0; k + 1 < n; k += (n > 512 ? 61 : 1)) {
            double mid = (fp4o_nonneg_value(f, k) + fp4o_nonneg_value(f, k + 1)) / 2;
            int e2;
            double fr = frexp(mid, &e2); /* mid = fr * 2^e2, fr in [0.5, 1) */
            uint64_t M = (uint64_t)ldexp(fr, 53);
            int64_t e = e2 - 53;
            for (int s = 0; s < 4 * 64 - 64; s += 37) {
                for (int d = -1; d <= 1; d++) {
                    rng r = {seed, (uint64_t)(k * 1000 + s * 3 + d + 1), (uint32_t)fi << 8};
                    uint64_t l[4] = {0, 0, 0, 0};
                    /* L = M << s, then + d (borrow/carry across limbs) */
                    int w = s / 64, b = s % 64;
                    l[w] = M << b;
                    if (b && w + 1 < 4) l[w + 1] = M >> (64 - b);
                    if (d > 0) l[0] |= 1; /* s > 0: bit 0 of M << s is clear */
                    if (d < 0) {
                        for (int j = 0; j < 4; j++)
                            if (l[j]-- != 0) break;
                    }
                    if (s == 0 && d != 0) continue;
                    fp4_cvt_opts o = random_opts(&r);
                    for (int sign = 0; sign < 2; sign++) check(f, sign, l, 4, e - s, &o);
                    o.round = FP4_RNE;
                    check(f, 0, l, 4, e - s, &o);
                }
            }
        }
    }
}

static void zero_cases(void) {
    const int64_t exps[] = {0, 1, -1, 12345, INT64_MAX, INT64_MIN, (int64_t)1 << 40};
    const uint64_t zeros[4] = {0, 0, 0, 0};
    fp4o_config cfg[FP4O_MAX_CONFIGS];
    for (int f = 0; f < FP4_FMT_COUNT; f++) {
        int nc = fp4o_configs((fp4_format)f, 0, cfg, FP4O_MAX_CONFIGS);
        for (int k = 0; k < nc; k++)
            for (size_t n = 0; n <= 4; n++)
                for (size_t e = 0; e < sizeof exps / sizeof exps[0]; e++)
                    for (int sign = 0; sign < 2; sign++)
                        check((fp4_format)f, sign, n ? zeros : NULL, n, exps[e], &cfg[k].o);
    }
}

/* Values with a single bit set at the int64 extremes of the exponent. */
static void extreme_cases(void) {
    const int64_t exps[] = {INT64_MAX, INT64_MIN, INT64_MAX - 63, INT64_MIN + 63,
                            INT64_MAX - 300, INT64_MIN + 300, INT64_MIN / 2, INT64_MAX / 2};
    fp4o_config cfg[FP4O_MAX_CONFIGS];
    for (int f = 0; f < FP4_FMT_COUNT; f++) {
        int nc = fp4o_configs((fp4_format)f, 0, cfg, FP4O_MAX_CONFIGS);
        for (int k = 0; k < nc; k++)
            for (size_t e = 0; e < sizeof exps / sizeof exps[0]; e++)
                for (int top = 0; top < 256; top += 63) {
                    uint64_t l[4] = {0, 0, 0, 0};
                    l[top / 64] = 1ull << (top % 64);
                    l[0] |= 1; /* sticky bit too */
                    for (int sign = 0; sign < 2; sign++)
                        check((fp4_format)f, sign, l, 4, exps[e], &cfg[k].o);
                }
    }
}

/* fp4_encode_value with a full 64-bit (odd) significand, which no decoder
 * produces but the API accepts: against the oracle's one-limb big integer. */
static void wide_sig_cases(void) {
    uint64_t seed = fp4t_seed();
    for (uint64_t i = 0; i < 200000; i++) {
        rng r = {seed, i, 0x5100};
        fp4_format f = (fp4_format)(next(&r) % FP4_FMT_COUNT);
        uint64_t sig = next(&r) | 1;
        if (next(&r) & 1) sig |= 1ull << 63; /* 64 significant bits */
        int64_t exp = random_exp(&r, f, 64 - __builtin_clzll(sig)) % 100000;
        int sign = (int)(next(&r) & 1);
        fp4_cvt_opts o = random_opts(&r);
        fp4_value v = {FP4_CLASS_FINITE, sign, sig, (int32_t)exp};
        fp4o_res got = {~0ull, 0, 0}, want = {~0ull, 0, 0};
        got.ternary = fp4o_sgn(fp4_encode_value(f, &v, &o, &got.code, &got.flags));
        want.ternary = fp4o_encode_bigint(f, sign, &sig, 1, exp, &o, &want.code, &want.flags);
        if (fp4o_res_eq(got, want)) fp4t_check(1, "");
        else report(f, sign, &sig, 1, exp, &o, got, want);
    }
}

int main(void) {
    fp4o_init();
    fp4t_begin("test_formats_bigint");
    wide_sig_cases();
    zero_cases();
    extreme_cases();
    midpoint_cases();
    random_cases();
    return fp4t_end();
}
