/* synth.c - synthetic weights for any config, generated on demand.
 *
 * Element i (row-major index r*in + c) of the tensor called `name` is a
 * function of (seed, name, i) only: Philox4x32-10 (Random123) keyed by the
 * seed, with the counter (i / 4, FNV-1a-64(name)); word i % 4 of the 128-bit
 * output gives 24 uniform bits. So any row of any expert can be generated
 * alone, in any order, by any number of threads, and always has the same
 * bits: `fp4sim model synth` writes exactly these values to a checkpoint
 * and fp4m_open_synthetic() runs the same model without one (the full R1
 * shape, whose 671e9 parameters do not fit anywhere here, streams them).
 *
 * Distributions (variances chosen so activations keep their scale through
 * 61 layers, like a trained model's, not to look like R1's weights):
 *   linear weights  U(-sqrt(3/in), sqrt(3/in))   variance 1/in
 *   norm weights    1 + 0.2 U(-sqrt 3, sqrt 3)   as the fixture's 1 + 0.2 N(0,1)
 *   embedding, e_score_correction_bias  U(-sqrt 3, sqrt 3)  variance 1
 * Values are computed in double and rounded once to float, so they are FP32
 * numbers (a checkpoint's F32 tensor holds them exactly). */
#include "model_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

fp4m_synth_kind fp4m_synth_kind_of(const char *name) {
    if (ends_with(name, "norm.weight")) return FP4M_SYN_NORM; /* *_layernorm, model.norm */
    if (ends_with(name, "e_score_correction_bias")) return FP4M_SYN_BIAS;
    if (strcmp(name, "model.embed_tokens.weight") == 0) return FP4M_SYN_EMBED;
    return FP4M_SYN_LINEAR;
}

/* n values from n words: 24 bits -> u = (2j + 1) / 2^24 - 1 (exact, and
 * below 2^25 so the int32 conversion is exact), then add + mul * u rounded
 * once to float. */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void words_to_values(const uint32_t *w, int n, double add, double mul, float *dst) {
    for (int e = 0; e < n; e++) {
        double u = (double)(int32_t)(2 * (w[e] >> 8) + 1) * 0x1p-24 - 1.0;
        dst[e] = (float)(add + mul * u);
    }
}

enum { PB = 16 }; /* Philox counters per group (64 elements) */

void fp4m_synth_rows(uint64_t seed, const char *name, int64_t in, int64_t r0, int64_t nr,
                     float *dst) {
    const fp4m_synth_kind kind = fp4m_synth_kind_of(name);
    const uint64_t h = fp4_fnv1a64(name);
    if (in < 1) in = 1;
    /* u in (-1, 1) from 24 bits, centred: (2j + 1) / 2^24 - 1, exact. */
    const double amp = kind == FP4M_SYN_LINEAR ? sqrt(3.0 / (double)in) : sqrt(3.0);
    const double mul = kind == FP4M_SYN_NORM ? 0.2 * amp : amp;
    const double add = kind == FP4M_SYN_NORM ? 1.0 : 0.0;
    const int64_t i0 = r0 * in, i1 = i0 + nr * in;
    if (i1 <= i0) return;
    /* Element i is word i % 4 of the Philox output for counter i / 4; the
     * lanes cover groups of PB counters. */
    const int64_t g0 = i0 / (4 * PB), g1 = (i1 - 1) / (4 * PB);
#pragma omp parallel for schedule(static) if (i1 - i0 >= (1 << 20))
    for (int64_t g = g0; g <= g1; g++) {
        uint32_t r[PB * 4]; /* fp4rng.h: stream and sub are the name's hash */
        fp4_philox4x32_fill(seed, (uint32_t)h, (uint32_t)(h >> 32), (uint64_t)g * PB, PB, r);
        /* This group's elements [base, base + 4 PB) clipped to [i0, i1). */
        const int64_t base = g * 4 * PB;
        const int64_t lo = base > i0 ? base : i0, hi = base + 4 * PB < i1 ? base + 4 * PB : i1;
        words_to_values(r + (lo - base), (int)(hi - lo), add, mul, dst + (lo - i0));
    }
}

/* ---------------------------------------------------------------------------
 * The weights source of a model opened without a checkpoint (weights.c
 * calls these when m->ck is NULL).
 * ------------------------------------------------------------------------- */

int fp4m_synth_fill(fp4m_model *m, const m_tensor *w, int64_t r0, int64_t nr, void *dst) {
    if (m->opts.prec == FP4M_F32) {
        fp4m_synth_rows(m->synth_seed, w->name, w->in, r0, nr, dst);
        return 0;
    }
    /* FP64 path: the same FP32 values, widened (exact). Converted in row
     * chunks to keep the temporary small. */
    const int64_t chunk = 64;
    float *tmp = malloc((size_t)(chunk * w->in) * sizeof(float));
    if (!tmp) return fp4_fail("model: out of memory generating '%s'", w->name);
    for (int64_t r = r0; r < r0 + nr; r += chunk) {
        int64_t k = r0 + nr - r < chunk ? r0 + nr - r : chunk;
        fp4m_synth_rows(m->synth_seed, w->name, w->in, r, k, tmp);
        double *d = (double *)dst + (r - r0) * w->in;
        for (int64_t i = 0; i < k * w->in; i++) d[i] = tmp[i];
    }
    free(tmp);
    return 0;
}

int fp4m_open_synthetic(const fp4m_config *cfg, uint64_t seed, const fp4m_opts *opts,
                        fp4m_model **out) {
    return fp4m_open_impl(cfg, NULL, seed, opts, out);
}
