/* engine.c - the engine interface (fp4engine.h): capability checks shared
 * by every engine, and the "ref" engine (the exact oracle). */
#include "fp4ref.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint32_t fp4_engine_kinds_all(void) { return FP4_TK_BIT(FP4_TK_COUNT) - 1u; }

static void kinds_list(uint32_t mask, char *buf, size_t n) {
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < FP4_TK_COUNT && k < n; i++)
        if (mask & FP4_TK_BIT(i))
            k += (size_t)snprintf(buf + k, n - k, "%s%s", k ? "," : "", fp4_tkind_name((fp4_tkind)i));
}

void fp4_engine_caps_describe(const fp4_engine_caps *c, char *buf, size_t n) {
    char ka[256], kb[256];
    kinds_list(c->kinds_a, ka, sizeof ka);
    kinds_list(c->kinds_b, kb, sizeof kb);
    snprintf(buf, n, "A: %s; B: %s%s; out:%s%s%s; epilogue:%s%s; %s%s", ka, kb,
             c->mixed ? " (mixed kinds)" : "", c->outs & (1u << FP4_FMT_F32) ? " f32" : "",
             c->outs & (1u << FP4_FMT_F16) ? " f16" : "", c->outs & (1u << FP4_FMT_BF16) ? " bf16" : "",
             c->epilogues & (1u << FP4_EPI_EXACT) ? " exact" : "",
             c->epilogues & (1u << FP4_EPI_F32) ? " f32" : "", c->exact ? "exact" : "modelled",
             c->device ? ", device" : "");
}

bool fp4_engine_supports(const fp4_engine *e, const fp4_gemm_call *c, char *why, size_t n) {
    fp4_tkind ka = fp4_tensor_kind(c->A), kb = fp4_tensor_kind(c->B);
    const fp4_engine_caps *cp = &e->caps;
    if (!(cp->kinds_a & FP4_TK_BIT(ka)) || !(cp->kinds_b & FP4_TK_BIT(kb))) {
        snprintf(why, n, "operands %s x %s are not among its kinds", fp4_tkind_name(ka),
                 fp4_tkind_name(kb));
        return false;
    }
    if (ka != kb && !cp->mixed) {
        snprintf(why, n, "mixed operand kinds %s x %s", fp4_tkind_name(ka), fp4_tkind_name(kb));
        return false;
    }
    if (!(cp->outs & (1u << c->out))) {
        snprintf(why, n, "output format %s", fp4_format_get(c->out)->name);
        return false;
    }
    if (!(cp->epilogues & (1u << c->epi))) {
        snprintf(why, n, "the %s epilogue", fp4_epilogue_name(c->epi));
        return false;
    }
    if (cp->k_multiple > 1 && c->A->cols % cp->k_multiple) {
        snprintf(why, n, "K = %lld (needs a multiple of %lld)", (long long)c->A->cols,
                 (long long)cp->k_multiple);
        return false;
    }
    return true;
}

int fp4_engine_gemm(fp4_engine *e, const fp4_gemm_call *c) {
    if (!e) return fp4_fail("gemm: null engine");
    if (fp4_gemm_call_check(c)) return -1;
    char why[256];
    if (!fp4_engine_supports(e, c, why, sizeof why))
        return fp4_fail_kind(FP4_ERR_UNSUPPORTED, "engine %s does not support %s", e->name, why);
    fp4_error_clear();
    if (e->gemm(e, c) == 0) return 0;
    const char *msg = e->error ? e->error(e) : NULL;
    if (msg && msg[0]) return fp4_fail_kind(FP4_ERR_INTERNAL, "engine %s: %s", e->name, msg);
    return fp4_fail_wrap("engine %s", e->name);
}

void fp4_engine_close(fp4_engine *e) {
    if (e && e->close) e->close(e);
}

/* ------------------------------------------------------------------------ */
/* The ref engine                                                            */
/* ------------------------------------------------------------------------ */

static int ref_gemm(fp4_engine *self, const fp4_gemm_call *c) {
    (void)self;
    return fp4_gemm_exact(c);
}

static void ref_close(fp4_engine *self) { free(self); }

int fp4_engine_ref_open(fp4_engine **out) {
    fp4_engine *e = calloc(1, sizeof *e);
    if (!e) return fp4_fail_kind(FP4_ERR_NOMEM, "out of memory");
    e->abi = FP4_ENGINE_ABI_VERSION;
    snprintf(e->name, sizeof e->name, "ref");
    snprintf(e->kind, sizeof e->kind, "ref");
    snprintf(e->evidence, sizeof e->evidence,
             "fp4sim exact oracle %s: integer block sums in a wide fixed-point accumulator, one "
             "rounding (docs/gemm.md; checked against MPFR in test_gemm / test_gemm_bs)",
             FP4SIM_VERSION);
    e->caps.kinds_a = e->caps.kinds_b = fp4_engine_kinds_all();
    e->caps.mixed = true;
    e->caps.outs = (1u << FP4_FMT_F32) | (1u << FP4_FMT_F16) | (1u << FP4_FMT_BF16);
    e->caps.epilogues = (1u << FP4_EPI_EXACT) | (1u << FP4_EPI_F32);
    e->caps.exact = true;
    e->caps.k_multiple = 1;
    e->gemm = ref_gemm;
    e->close = ref_close;
    *out = e;
    return 0;
}
