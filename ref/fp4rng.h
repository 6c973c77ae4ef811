/* fp4rng.h - fp4sim's one counter-based random number generator (part of
 * ref/, included by fp4ref.h).
 *
 * Philox4x32-10 (Salmon et al., SC'11; the Random123 reference) with
 *   key     = {seed low 32 bits, seed high 32 bits}
 *   counter = {counter low, counter high, stream, sub}
 * so any word can be regenerated alone from (seed, stream, sub, counter):
 * results never depend on thread counts, chunking or call order.
 *
 * FROZEN: golden vectors, synthetic checkpoints, probe inputs and the
 * pinned regression hashes depend on these bits and on the stream table
 * below. Never change a value; add new streams with new numbers (docs/
 * vectors.md "Versioning" says how a generator change is released).
 */
#ifndef FP4RNG_H
#define FP4RNG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Stream assignments (the third counter word) and sub-stream tags (the
 * fourth). The counter (first two words) is the element or word index the
 * user says.
 *   user                          stream                         sub
 *   generated GEMM operands       A codes 0, A scales 1,          0
 *   (fp4sim gemm, conform, vectors) B codes 2, B scales 3, C 4
 *   TE stochastic rounding bits   0x5352 ('SR')                  0
 *   probe inputs (emu/probe_gen)  tile index (low 32 bits)       FP4_RNG_SUB_PROBE
 *   synthetic weights (model/)    FNV-1a-64(tensor name) low     ... high 32 bits
 *   selfcheck random inputs       format index                   0
 *   golden vectors (vectors/)     FP4_RNG_VEC_STREAM(suite, family)  FP4_RNG_SUB_VECTORS
 *   conformance cases             FP4_RNG_VEC_STREAM(suite, family)  FP4_RNG_SUB_CONFORM */
enum {
    FP4_RNG_GEMM_A = 0,
    FP4_RNG_GEMM_A_SCALES = 1,
    FP4_RNG_GEMM_B = 2,
    FP4_RNG_GEMM_B_SCALES = 3,
    FP4_RNG_GEMM_C = 4,
    FP4_RNG_QUANT_SR = 0x5352,
};
#define FP4_RNG_SUB_PLAIN 0u
#define FP4_RNG_SUB_PROBE 0x50524F42u   /* "PROB" */
#define FP4_RNG_SUB_VECTORS 0x56454354u /* "VECT" */
#define FP4_RNG_SUB_CONFORM 0x434F4E46u /* "CONF" */
/* Stream of a (suite, family) pair of the vector and conformance
 * generators: suite in the high 16 bits, family in the low 16. */
#define FP4_RNG_VEC_STREAM(suite, family) ((uint32_t)(((uint32_t)(suite) << 16) | ((uint32_t)(family) & 0xFFFFu)))

/* The four 32-bit words of Philox4x32-10 at one counter. */
void fp4_philox4x32(uint64_t seed, uint32_t stream, uint32_t sub, uint64_t counter,
                    uint32_t out[4]);
/* Words of n consecutive counters counter0 .. counter0+n-1: out[4*i + w] is
 * word w of counter counter0 + i (the same bits as n single calls, computed
 * over SIMD lanes). */
void fp4_philox4x32_fill(uint64_t seed, uint32_t stream, uint32_t sub, uint64_t counter0,
                         int64_t n, uint32_t *out);
/* Convenience: word 0 of counter i; 64 bits from words 1:0. */
uint32_t fp4_rand32(uint64_t seed, uint32_t stream, uint32_t sub, uint64_t i);
uint64_t fp4_rand64(uint64_t seed, uint32_t stream, uint32_t sub, uint64_t i);
/* 64-bit FNV-1a of a string: the stream/sub of named things (synthetic
 * weights use it; 47k R1 tensor names collide with probability ~0 at 64 bits). */
uint64_t fp4_fnv1a64(const char *s);

#ifdef __cplusplus
}
#endif
#endif
