/* selfcheck.h - the check groups behind `fp4sim selfcheck` (selfcheck_checks.c)
 * and the documented-behaviour tables it prints (cmd_selfcheck.c). */
#ifndef FP4SIM_CLI_SELFCHECK_H
#define FP4SIM_CLI_SELFCHECK_H

#include "fp4ref.h"

#include <stdbool.h>
#include <stdint.h>

/* Counts of one group of checks; the first few failures go to stderr. */
typedef struct sc_group {
    const char *name;
    long checks, failures;
    double seconds;
} sc_group;

/* Records one check; on failure prints "selfcheck: FAIL <group>: <msg>"
 * (at most a handful per group). Returns ok. */
bool sc_check(sc_group *g, bool ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Every non-NaN code of every format of <= 16 bits decodes and re-encodes to
 * itself exactly (ternary 0, no flags), also through FP32; NaN codes give a
 * NaN. */
void sc_roundtrip(sc_group *g);
/* fp4_f32_to_codes (vectorized, OpenMP) == fp4_encode_f32 for E2M1 and E4M3
 * on every rounding boundary and on n Philox-random inputs per format. */
void sc_fast_path(sc_group *g, uint64_t seed, int64_t n);
/* Nibble order: e2m1x2_pack puts element 2j low; PTX's cvt puts a high. */
void sc_packing(sc_group *g);

#endif
