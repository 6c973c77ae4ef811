/* engine.c - an emu/ model with a kernel structure as a GEMM engine
 * (fp4engine.h): "emu:PRESET[:key=val,...][;structure]". */
#include "emu_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct emu_engine_ctx {
    fp4emu_model model;
    fp4emu_structure st;
} emu_engine_ctx;

static int emu_engine_gemm(fp4_engine *self, const fp4_gemm_call *c) {
    emu_engine_ctx *x = self->ctx;
    fp4emu_gemm_opts o = fp4emu_gemm_opts_default(&x->model);
    o.st = x->st;
    return fp4emu_gemm(&o, c);
}

static void emu_engine_close(fp4_engine *self) {
    if (!self) return;
    free(self->ctx);
    free(self);
}

int fp4emu_engine_new(const fp4emu_model *m, const fp4emu_structure *s, const char *name,
                      const char *evidence, fp4_engine **out) {
    if (!m || !out) return fp4_fail("emu engine: null argument");
    if (fp4emu_model_check(m)) return -1;
    fp4emu_structure st = s ? *s : fp4emu_structure_plain();
    if (st.chain.k_order)
        return fp4_fail("emu engine: an explicit k_order is not kept by an engine (use korder=)");
    fp4_engine *e = calloc(1, sizeof *e);
    emu_engine_ctx *x = calloc(1, sizeof *x);
    if (!e || !x) {
        free(e), free(x);
        return fp4_fail_kind(FP4_ERR_NOMEM, "out of memory");
    }
    x->model = *m;
    x->st = st;
    e->abi = FP4_ENGINE_ABI_VERSION;
    char mbuf[256], sbuf[256];
    fp4emu_model_format(m, mbuf, sizeof mbuf);
    fp4emu_structure_format(&st, sbuf, sizeof sbuf);
    if (name) snprintf(e->name, sizeof e->name, "%s", name);
    else snprintf(e->name, sizeof e->name, "emu:%.200s%s%.50s", mbuf, sbuf[0] ? ";" : "", sbuf);
    snprintf(e->kind, sizeof e->kind, "emu");
    snprintf(e->evidence, sizeof e->evidence, "model %s%s%s. %s", mbuf, sbuf[0] ? "; structure " : "",
             sbuf, evidence ? evidence : "a model given by its parameters (no evidence attached)");
    e->caps.kinds_a = e->caps.kinds_b = fp4_engine_kinds_all();
    e->caps.mixed = true;
    e->caps.outs = (1u << FP4_FMT_F32) | (1u << FP4_FMT_F16) | (1u << FP4_FMT_BF16);
    e->caps.epilogues = (1u << FP4_EPI_EXACT) | (1u << FP4_EPI_F32);
    e->caps.exact = false;
    e->caps.k_multiple = 1;
    e->gemm = emu_engine_gemm;
    e->close = emu_engine_close;
    e->ctx = x;
    *out = e;
    return 0;
}

int fp4emu_engine_open(const char *spec, fp4_engine **out) {
    if (!spec || !out) return fp4_fail("emu engine: null argument");
    char mspec[512];
    const char *semi = strchr(spec, ';');
    size_t mlen = semi ? (size_t)(semi - spec) : strlen(spec);
    if (mlen >= sizeof mspec) return fp4_fail("emu engine: spec too long");
    memcpy(mspec, spec, mlen);
    mspec[mlen] = '\0';
    if (!mspec[0])
        return fp4_fail("emu engine: 'emu:' needs a preset or a model spec (fp4sim engines lists "
                        "the presets)");
    fp4emu_model m;
    char base[512];
    snprintf(base, sizeof base, "%s", mspec);
    char *colon = strchr(base, ':');
    if (colon) *colon = '\0';
    const fp4emu_preset *p = strchr(base, '=') ? NULL : fp4emu_preset_get(base);
    if (!strchr(base, '=') && !p) return -1; /* unknown preset: fp4emu_preset_get said so */
    if (fp4emu_model_parse(mspec, &m)) return fp4_fail_wrap("emu engine '%s'", spec);
    fp4emu_structure st;
    if (fp4emu_structure_parse(semi ? semi + 1 : "", &st))
        return fp4_fail_wrap("emu engine '%s'", spec);
    char ev[900], name[256];
    if (p) snprintf(ev, sizeof ev, "preset %s [%s]: %s", p->name, fp4emu_status_name(p->status),
                    p->evidence);
    snprintf(name, sizeof name, "emu:%s", spec);
    return fp4emu_engine_new(&m, &st, name, p ? ev : NULL, out);
}
