/* mpfr_oracle.h - an independent rounding oracle for fp4sim's formats.
 *
 * TestFloat's "slowfloat" idea: a second implementation of every conversion
 * in ref/formats.c, written by a different method, so that agreement of the
 * two on every input is evidence that both are right.
 *
 *  - Decoding uses the hardware/compiler where it can (float, double,
 *    _Float16, bfloat16 as the top half of a float) and otherwise the field
 *    formula of numerics.md §1.1; it never calls fp4_decode.
 *  - Rounding is MPFR's: the exact input rounded to an effective precision
 *    p = min(mbits+1, E - (emin - mbits) + 1), E = floor(log2|x|), with
 *    MPFR_RNDN/RNDZ/RNDU/RNDD and mpfr_round_nearest_away; p < 1 by hand;
 *    stochastic rounding from the RZ result and the grid spacing.
 *  - The value is mapped back to a code by searching a sorted table of every
 *    finite code's value (formats of <= 16 bits) or by the hardware's
 *    float/double bit patterns (F32, F64).
 *  - Special values follow the policy rules as stated in fp4ref.h and
 *    numerics.md §2.2-2.9, restated here as per-(format, policy) rules.
 * Only the format table (bits, ebits, mbits, bias, emin, nan kind, canonical
 * NaN code) is shared with ref/.
 */
#ifndef FP4_MPFR_ORACLE_H
#define FP4_MPFR_ORACLE_H

#include "fp4ref.h"

#include <mpfr.h>
#include <stdbool.h>
#include <stdint.h>

/* Builds the code tables. Call once, before any other fp4o_ function and
 * before starting threads (everything else is thread-safe afterwards). */
void fp4o_init(void);

/* A code as the oracle decodes it. `value` is exact (every value of every
 * format of fp4sim is a double) and signed (-0.0 for negative zero). */
typedef struct fp4o_decoded {
    bool valid;     /* code < number of codes of the format */
    fp4_class cls;  /* ZERO, FINITE, INF or NAN */
    int sign;       /* sign bit (0 for unsigned formats) */
    bool subnormal; /* finite non-zero below the smallest normal */
    double value;   /* for ZERO / FINITE / INF */
    bool signaling; /* NAN: a signaling NaN (or a code outside the format) */
} fp4o_decoded;

fp4o_decoded fp4o_decode(fp4_format f, uint64_t code);

/* Largest finite value of f, from the oracle's own code table. */
double fp4o_max_finite(fp4_format f);
/* Number of finite codes with sign bit clear (the non-negative ones) and the
 * k-th smallest of them (k = 0 is +0, or 2^-127 for UE8M0). Formats of <= 16
 * bits only. */
int64_t fp4o_count_nonneg(fp4_format f);
uint64_t fp4o_nonneg_code(fp4_format f, int64_t k);
double fp4o_nonneg_value(fp4_format f, int64_t k);

/* PTX's number of random bits for .rs into f (numerics.md §2.2, PTX ISA 9.1). */
int fp4o_rs_width(fp4_format f);

/* Rounds the exact value x (any precision; NaN sign taken from its sign bit)
 * into f under o. `src_subnormal` says x is a subnormal of its source format
 * (what FP4_OPT_DAZ flushes); `src_snan` that a NaN x was a signaling NaN
 * (MPFR keeps no NaN payload). Returns the ternary value; ORs flags. */
int fp4o_round(fp4_format f, mpfr_srcptr x, bool src_subnormal, bool src_snan,
               const fp4_cvt_opts *o, uint64_t *code, unsigned *flags);

/* The same entry points as ref/: a code of another format, float, double,
 * and (-1)^sign * L * 2^exp with L little-endian 64-bit limbs. */
int fp4o_convert(fp4_format dst, fp4_format src, uint64_t src_code, const fp4_cvt_opts *o,
                 uint64_t *code, unsigned *flags);
int fp4o_encode_f32(fp4_format f, float x, const fp4_cvt_opts *o, uint64_t *code,
                    unsigned *flags);
int fp4o_encode_f64(fp4_format f, double x, const fp4_cvt_opts *o, uint64_t *code,
                    unsigned *flags);
int fp4o_encode_bigint(fp4_format f, int sign, const uint64_t *limbs, size_t nlimbs, int64_t exp,
                       const fp4_cvt_opts *o, uint64_t *code, unsigned *flags);

/* "rne/satfinite/daz+ftz rbits=0x12/8" style description for messages. */
const char *fp4o_opts_string(const fp4_cvt_opts *o, char *buf, size_t n);

#endif

/* ---------------------------------------------------------------------------
 * Test-harness helpers shared by tests/test_formats_*.c
 * ------------------------------------------------------------------------- */

/* Work level: FP4SIM_FORMATS_LEVEL if set; otherwise 1 (full), or 0 (fewer
 * rounding configurations, every input still) in sanitizer builds. */
int fp4o_level(void);

/* A rounding configuration of a sweep; random_rbits: draw rbits per input. */
typedef struct fp4o_config {
    fp4_cvt_opts o;
    bool random_rbits;
} fp4o_config;

#define FP4O_MAX_CONFIGS 512

/* Configurations for destination f. Level >= 1: the full cross product of
 * modes (rne, rna, rz, ru, rd; rs with rbits 0, 1, 2^(K-1), 2^K-1 and
 * Philox-random at PTX's width K, rs with 1 and 32 random bits) x the five
 * policies x the 8 DAZ/FTZ/RELU combinations (480). Level 0: rne..rd and rs
 * (random, 2^K-1) x policies, without options and with all three, plus every
 * option combination on rne/satfinite (76). Both levels add rne..rd and rs
 * (random, 2^K-1) on satfinite with FP4_OPT_TININESS_AFTER, alone and with
 * DAZ+FTZ (14). Returns the count (<= max). */
int fp4o_configs(fp4_format f, int level, fp4o_config *out, int max);

/* One conversion result. */
typedef struct fp4o_res {
    uint64_t code;
    int ternary; /* normalized to -1, 0, 1 */
    unsigned flags;
} fp4o_res;

static inline int fp4o_sgn(int t) { return (t > 0) - (t < 0); }
static inline bool fp4o_res_eq(fp4o_res a, fp4o_res b) {
    return a.code == b.code && a.ternary == b.ternary && a.flags == b.flags;
}
