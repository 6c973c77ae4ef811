/* fp4_plugin_example.c - an example fp4sim engine plugin (engine ABI v1,
 * fp4engine.h), written the way an outside implementer would: it includes
 * fp4sim's public header for the types only, links nothing of fp4sim, and
 * decodes NVFP4 itself.
 *
 * What it computes: D = FP32 epilogue(A x B^T) for NVFP4 x NVFP4 operands
 * with F32 output, exactly: each product of two scaled E2M1 elements is an
 * integer multiple of 2^-20 (E2M1 in halves, UE4M3 = m * 2^(e-10) with an
 * integer m <= 15), the dot product is summed in a 64-bit integer (enough
 * for K <= 2^16), converted to float once (C's integer-to-float conversion
 * rounds to nearest), scaled by 2^-20 (exact), then the epilogue in IEEE
 * float arithmetic in CUTLASS's order. That is the oracle's FP4_EPI_F32
 * result, so the plugin passes the engine tests the exact engines pass.
 *
 * Build: cc -shared -fPIC -I<fp4sim>/ref fp4_plugin_example.c -o libfp4_plugin_example.so
 * Use:   fp4sim gemm --engine plugin:./libfp4_plugin_example.so
 */
#include "fp4engine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct example {
    char err[256];
} example;

/* 2 * E2M1 value of a code (docs/formats.md): 0, 1, 2, 3, 4, 6, 8, 12, negatives. */
static int twice_e2m1(unsigned code) {
    static const int v[8] = {0, 1, 2, 3, 4, 6, 8, 12};
    return (code & 8) ? -v[code & 7] : v[code & 7];
}

/* UE4M3 byte as m * 2^(e - 10): returns m, sets *sh = e - 10 + 9 (>= 0). */
static int ue4m3_int(unsigned b, int *sh) {
    unsigned e = (b >> 3) & 15, m = b & 7;
    if (e == 0) { *sh = 0; return (int)m; }        /* m * 2^-9 */
    *sh = (int)e - 1; return (int)(8 + m);           /* (8 + m) * 2^(e - 10) = * 2^-9 * 2^(e-1) */
}

static unsigned nibble(const uint8_t *row, int64_t c) { return (row[c / 2] >> (4 * (c & 1))) & 15; }

static int fail(example *x, const char *msg) {
    snprintf(x->err, sizeof x->err, "%s", msg);
    return -1;
}

static int example_gemm(fp4_engine *self, const fp4_gemm_call *c) {
    example *x = self->ctx;
    const fp4_tensor *A = c->A, *B = c->B;
    if (A->cols > 65536) return fail(x, "K above 2^16 overflows this plugin's int64 sum");
    if (A->layout != FP4_SCALE_LINEAR || B->layout != FP4_SCALE_LINEAR)
        return fail(x, "only linear scale layouts");
    const int64_t K = A->cols, N = B->rows, nb = K / 16;
    int64_t m0 = c->m0, m1 = c->m1 ? c->m1 : A->rows, n0 = c->n0, n1 = c->n1 ? c->n1 : N;
    const uint8_t *ac = A->codes, *bc = B->codes, *as = A->scales, *bs = B->scales;
    for (int64_t m = m0; m < m1; m++)
        for (int64_t n = n0; n < n1; n++) {
            int64_t sum = 0; /* units of 2^-2 * 2^-18 = 2^-20 */
            int nan = 0;
            for (int64_t g = 0; g < nb; g++) {
                unsigned sa = as[m * nb + g], sb = bs[n * nb + g];
                if (sa == 0x7F || sb == 0x7F) nan = 1;
                if ((sa | sb) & 0x80) return fail(x, "UE4M3 scale byte with bit 7 set");
                int sha, shb;
                int64_t ma = ue4m3_int(sa, &sha), mb = ue4m3_int(sb, &shb), blk = 0;
                for (int64_t k = g * 16; k < g * 16 + 16; k++)
                    blk += (int64_t)twice_e2m1(nibble(ac + m * (K / 2), k)) *
                           twice_e2m1(nibble(bc + n * (K / 2), k));
                sum += blk * ma * mb * ((int64_t)1 << (sha + shb));
            }
            float acc = nan ? NAN : ldexpf((float)sum, -20); /* one rounding, then exact */
            volatile float s = c->alpha * A->global_scale;
            s = s * B->global_scale;
            volatile float t = s * acc;
            float d = c->beta != 0.0f ? fmaf(c->beta, c->C[m * N + n], t) : t;
            uint32_t bits;
            memcpy(&bits, &d, 4);
            if (d != d) bits = 0x7FFFFFFFu; /* fp4sim's (and PTX's) canonical NaN */
            ((uint32_t *)c->D)[m * N + n] = bits;
        }
    return 0;
}

static const char *example_error(fp4_engine *self) { return ((example *)self->ctx)->err; }

static void example_close(fp4_engine *self) {
    free(self->ctx);
    free(self);
}

#ifndef FP4SIM_PLUGIN_EXPORT
#define FP4SIM_PLUGIN_EXPORT
#endif

FP4SIM_PLUGIN_EXPORT int fp4sim_engine_open_v1(const char *args, fp4_engine **out) {
    (void)args;
    fp4_engine *e = calloc(1, sizeof *e);
    example *x = calloc(1, sizeof *x);
    if (!e || !x) {
        free(e), free(x);
        return -1;
    }
    e->abi = FP4_ENGINE_ABI_VERSION;
    snprintf(e->name, sizeof e->name, "example");
    snprintf(e->kind, sizeof e->kind, "plugin");
    snprintf(e->evidence, sizeof e->evidence,
             "examples/plugin/fp4_plugin_example.c: exact NVFP4 in an int64 fixed-point sum, "
             "FP32 epilogue in IEEE float");
    e->caps.kinds_a = e->caps.kinds_b = FP4_TK_BIT(FP4_TK_NVFP4);
    e->caps.outs = 1u << FP4_FMT_F32;
    e->caps.epilogues = 1u << FP4_EPI_F32;
    e->caps.exact = true;
    e->caps.k_multiple = 16;
    e->gemm = example_gemm;
    e->close = example_close;
    e->error = example_error;
    e->ctx = x;
    *out = e;
    return 0;
}
