/* test_emu_common.h - small helpers shared by tests/test_emu_*.c: codes from
 * exact doubles, one-instruction runs from a model spec string. */
#ifndef FP4_TEST_EMU_COMMON_H
#define FP4_TEST_EMU_COMMON_H

#include "fp4emu.h"
#include "testutil.h"

#include <math.h>
#include <string.h>

/* Code of x in format f (x must be representable, or Inf/NaN). */
static inline uint64_t et_code(fp4_format f, double x) {
    fp4_cvt_opts o = {FP4_RNE, FP4_POLICY_NOSAT, 0, 0, 0};
    uint64_t c = 0;
    fp4_encode_f64(f, x, &o, &c, NULL);
    return c;
}

static inline uint64_t et_f32(double x) { return et_code(FP4_FMT_F32, x); }

/* Stores code into element i of an array of fp4_format_code_bytes(f) ints. */
static inline void et_store(fp4_format f, void *arr, int64_t i, uint64_t code) {
    switch (fp4_format_code_bytes(f)) {
    case 1: ((uint8_t *)arr)[i] = (uint8_t)code; break;
    case 2: ((uint16_t *)arr)[i] = (uint16_t)code; break;
    default: ((uint32_t *)arr)[i] = (uint32_t)code; break;
    }
}

static inline fp4emu_model et_model(const char *spec) {
    fp4emu_model m;
    memset(&m, 0, sizeof m);
    if (fp4emu_model_parse(spec, &m) != 0) {
        fprintf(stderr, "bad model spec '%s': %s\n", spec, fp4_last_error());
        exit(2);
    }
    return m;
}

/* One instruction of model `spec` on products a[i]*b[i] (i < n, the rest
 * zero) and accumulator value c (a double in the model's accumulator
 * format). Returns the output code. */
static inline uint64_t et_run(const char *spec, fp4_format fmt, int n, const double *a,
                              const double *b, double c) {
    fp4emu_model m = et_model(spec);
    uint16_t A[FP4EMU_MAX_K], B[FP4EMU_MAX_K];
    memset(A, 0, sizeof A), memset(B, 0, sizeof B);
    for (int i = 0; i < n; i++) {
        et_store(fmt, A, i, et_code(fmt, a[i]));
        et_store(fmt, B, i, et_code(fmt, b[i]));
    }
    fp4emu_input in = fp4emu_input_plain(fmt, fmt);
    uint64_t d = 0;
    if (fp4emu_mma(&m, &in, A, B, NULL, NULL, et_code(m.acc, c), &d) != 0) {
        fprintf(stderr, "mma failed: %s\n", fp4_last_error());
        exit(2);
    }
    return d;
}

#endif
