/* testutil.h - shared helpers for fp4sim's tests: a counter-based RNG keyed
 * by (seed, case index) so any failing case can be regenerated alone, the
 * seed taken from FP4SIM_SEED (printed on failure, as MPFR's tests do), and
 * a failure counter that stops printing after a limit. */
#ifndef FP4_TESTUTIL_H
#define FP4_TESTUTIL_H

#include "fp4rng.h"

#include <Random123/philox.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline uint64_t fp4t_seed(void) {
    const char *s = getenv("FP4SIM_SEED");
    return s ? strtoull(s, NULL, 0) : 0x5EEDF4ull;
}

/* 128 random bits for case `index` of stream `stream` under `seed`. */
static inline philox4x32_ctr_t fp4t_rand4(uint64_t seed, uint32_t stream, uint64_t index) {
    philox4x32_ctr_t r; /* the library's generator (fp4rng.h), sub-stream 0 */
    fp4_philox4x32(seed, stream, 0, index, r.v);
    return r;
}
static inline uint32_t fp4t_rand32(uint64_t seed, uint32_t stream, uint64_t index) {
    return fp4t_rand4(seed, stream, index).v[0];
}
static inline uint64_t fp4t_rand64(uint64_t seed, uint32_t stream, uint64_t index) {
    philox4x32_ctr_t r = fp4t_rand4(seed, stream, index);
    return ((uint64_t)r.v[1] << 32) | r.v[0];
}

/* FP32 <-> bit pattern, for tests that build inputs bit by bit. */
static inline uint32_t fp4t_f32_bits(float x) {
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}
static inline float fp4t_f32_from_bits(uint32_t b) {
    float x;
    memcpy(&x, &b, sizeof x);
    return x;
}

typedef struct fp4t_state {
    const char *name;
    long checks, failures, max_print;
} fp4t_state;

static fp4t_state fp4t_g = {"test", 0, 0, 20};

static inline void fp4t_begin(const char *name) {
    fp4t_g.name = name;
    fp4t_g.checks = fp4t_g.failures = 0;
}

/* Records one check; prints the first max_print failures. */
static inline int fp4t_check(int ok, const char *fmt, ...) {
    fp4t_g.checks++;
    if (ok) return 1;
    if (fp4t_g.failures++ < fp4t_g.max_print) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "FAIL %s: ", fp4t_g.name);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    return 0;
}

/* Summary line and exit status (1 on any failure, seed printed). */
static inline int fp4t_end(void) {
    if (fp4t_g.failures) {
        fprintf(stderr, "%s: %ld of %ld checks FAILED (FP4SIM_SEED=0x%" PRIx64 ")\n", fp4t_g.name,
                fp4t_g.failures, fp4t_g.checks, fp4t_seed());
        return 1;
    }
    printf("%s: %ld checks passed\n", fp4t_g.name, fp4t_g.checks);
    return 0;
}

#endif
