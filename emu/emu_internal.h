/* emu_internal.h - shared internals of emu/: decoded operands, exact terms,
 * the block-FMA core and the instruction runner. Not installed. */
#ifndef FP4EMU_INTERNAL_H
#define FP4EMU_INTERNAL_H

#include "fp4emu.h"

/* One decoded operand element or scale: value = (-1)^sign * sig * 2^lsb.
 * e is the Khattak-Mikaitis exponent max(floor(log2|x|), emin of the
 * format); cls is an fp4_class (ZERO also for flushed subnormals). */
typedef struct emu_op {
    uint32_t sig;
    int16_t lsb;
    int16_t e;
    uint8_t sign;
    uint8_t cls;
} emu_op;

/* One term of a block sum: a product, a chunk sum or an accumulator value.
 * e is its alignment exponent (the one maxE is taken over). */
typedef struct emu_term {
    uint64_t sig;
    int32_t lsb;
    int32_t e;
    uint8_t sign;
    uint8_t cls;
} emu_term;

/* A pre-combined operand for the fast path: signed significand (scale
 * folded in), lsb exponent, alignment exponent; zero is sig 0. */
typedef struct emu_fop {
    int32_t sig;
    int16_t lsb;
    int16_t e;
} emu_fop;

/* How a block result is rounded. */
typedef struct emu_out {
    fp4_format fmt;  /* F32 or F16 (any IEEE-like format of ref/ works) */
    int bits;        /* fraction bits kept */
    fp4_round mode;
    bool subnormals; /* false: tiny results flush to signed zero */
    bool ovf_inf;    /* overflow -> +-Inf in every mode */
    bool ieee_zero;  /* exact zero sums get IEEE's sign (else +0, Khattak-Mikaitis) */
} emu_out;

/* ---- decode.c ---- */
static inline int emu_bitlen64(uint64_t x) { return x ? 64 - __builtin_clzll(x) : 0; }
uint64_t emu_code_at(const void *codes, int bytes, bool packed, int64_t i);
emu_op emu_op_decode(fp4_format f, uint64_t code, bool subnormals);
/* Decodes n codes (element i of `codes`, starting at index `first`). */
void emu_ops_decode(fp4_format f, const void *codes, bool packed, int64_t first, int64_t n,
                    bool subnormals, emu_op *out);
/* An accumulator code (F32/F16) as a term; e clamped to the format's emin. */
emu_term emu_term_of_code(fp4_format f, uint64_t code);
/* Canonical positive NaN / signed Inf / signed zero codes of f. */
uint64_t emu_nan_code(fp4_format f);
uint64_t emu_inf_code(fp4_format f, int sign);
uint64_t emu_zero_code(fp4_format f, int sign);
bool emu_input_check(const fp4emu_input *in);

/* ---- blockfma.c ---- */
/* The block FMA of numerics.md §5.1 over n terms (ZERO terms allowed: they
 * only decide the sign of an exact zero under ieee_zero). F is the window,
 * min_exp the lower limit on maxE. Returns a code of o->fmt. */
uint64_t emu_block(const emu_term *t, int n, int64_t F, int64_t min_exp, const emu_out *o);
/* Rounds the integer sum * 2^g (an exact block sum) like emu_block. */
uint64_t emu_round_int64(int64_t sum, int64_t g, const emu_out *o);
/* Correctly rounded RNE arithmetic on codes: ref/'s exact operations. */
static inline uint64_t emu_add_rn(fp4_format f, uint64_t x, uint64_t y) {
    return fp4_add(f, x, y, FP4_RNE, NULL, NULL);
}
static inline uint64_t emu_mul_rn(fp4_format f, uint64_t x, uint64_t y) {
    return fp4_mul(f, x, y, FP4_RNE, NULL, NULL);
}
static inline uint64_t emu_fma_rn(fp4_format f, uint64_t x, uint64_t y, uint64_t z) {
    return fp4_mul_add(f, x, y, z, FP4_RNE, NULL, NULL); /* x*y + z */
}

/* ---- instr.c ---- */
/* Decoded operands of one dot product, indexed by absolute K position. */
typedef struct emu_dotops {
    const emu_op *a, *b;   /* elements */
    const emu_op *sa, *sb; /* scales (NULL when unscaled), index k / scale_block */
    int scale_block;
    fp4_format a_fmt, b_fmt;
    const emu_fop *fa, *fb; /* pre-combined operands for the fast path, or NULL */
} emu_dotops;

/* ---- fastpath.c ---- */
/* Pre-combines n elements (and their scales) for model m; false if some
 * operand is NaN/Inf or the model scales per chunk (no fast path). */
bool emu_fops_build(const fp4emu_model *m, const emu_op *el, const emu_op *sc, int scale_block,
                    int64_t n, emu_fop *out);
/* Block p of an instruction without materialized terms; false if the
 * block needs the general path (nothing written then). */
bool emu_block_fast(const fp4emu_model *m, const emu_dotops *x, int64_t k0, int64_t len, int p,
                    uint64_t acc_code, const emu_out *o, uint64_t *out);
/* Test hook: false disables the fast path (process-wide; not thread-safe
 * to flip while running). */
void emu_fast_enable(bool on);
bool emu_fast_enabled(void);

/* Runs one instruction over K positions [k0, k0 + len) (len <= m->k; the
 * rest is zero padding) with accumulator code c. scratch: m->k + 1 terms. */
uint64_t emu_instr(const fp4emu_model *m, const emu_dotops *x, int64_t k0, int64_t len,
                   uint64_t c, emu_term *scratch);
/* The whole chain of fp4emu_dot over K positions [0, K). group_scale as in
 * fp4emu_dot (already validated). */
uint64_t emu_chain_run(const fp4emu_model *m, const emu_dotops *x, int64_t K, uint64_t c,
                       const fp4emu_chain *ch, const float *group_scale, emu_term *scratch);
/* The same over K positions [k_lo, k_hi) (one chunk of a split-K
 * structure): k_order is relative to the chunk's first step; group scales
 * are indexed by absolute position. */
uint64_t emu_chain_range(const fp4emu_model *m, const emu_dotops *x, int64_t k_lo, int64_t k_hi,
                         uint64_t c, const fp4emu_chain *ch, const float *group_scale,
                         emu_term *scratch);
/* Validates a chain against a model and K. */
int emu_chain_check(const fp4emu_model *m, const fp4emu_chain *ch, int64_t K, bool scaled_groups);
/* Checks the model can run these inputs (chunk mode needs narrow formats). */
int emu_model_input_check(const fp4emu_model *m, const fp4emu_input *in);

#endif
