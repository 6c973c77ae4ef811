/* policy.c - named precision policies and the linear-layer classes they
 * address. The GEMM backend that executes a policy: backend_quant.c.
 *
 * Sources for the named policies:
 *   modelopt-r1     nvidia/DeepSeek-R1-FP4 (v1): only MLP and expert linears
 *                   NVFP4 (gate/up/down of dense MLPs, routed and shared
 *                   experts); attention, router, lm_head, embeddings BF16
 *                   (recipes.md §7.1 "Exclusions").
 *   modelopt-r1-v2  "-FP4-v2 additionally quantizes the wo module" (§7.1).
 *   fp8-block       the original R1 FP8 inference: every linear of the layers
 *                   FP8 with 128x128 weight / 1x128 activation scales, the
 *                   head in BF16 (recipes.md §2.13, deepseek.md §2.3).
 * Activations enter the quantizers as BF16 (the serving dtype) and each
 * quantized linear returns BF16, as the engines serving these checkpoints do;
 * both are policy fields. */
#include "model_internal.h"

#include <stdio.h>
#include <string.h>

typedef struct named_policy {
    const char *name;
    fp4m_qfmt fmt[FP4M_LC_COUNT]; /* ATTN, O_PROJ, DENSE, EXPERT, SHARED, HEAD */
} named_policy;

#define N_ FP4M_Q_NATIVE
#define B_ FP4M_Q_BF16
#define F8 FP4M_Q_FP8_BLOCK
#define W16 FP4M_Q_W4A16
#define W4 FP4M_Q_W4A4

static const named_policy k_policies[] = {
    {"reference", {N_, N_, N_, N_, N_, N_}},
    {"bf16", {B_, B_, B_, B_, B_, B_}},
    {"fp8-block", {F8, F8, F8, F8, F8, B_}},
    {"modelopt-r1", {B_, B_, W4, W4, W4, B_}},
    {"modelopt-r1-v2", {B_, W4, W4, W4, W4, B_}},
    {"nvfp4-w4a16", {B_, B_, W16, W16, W16, B_}},
    {"nvfp4-all", {W4, W4, W4, W4, W4, B_}},
};
#define N_POLICIES (sizeof k_policies / sizeof k_policies[0])

const char *fp4m_policy_names(void) {
    return "reference, bf16, fp8-block, modelopt-r1, modelopt-r1-v2, nvfp4-w4a16, nvfp4-all";
}

const char *fp4m_qfmt_name(fp4m_qfmt f) {
    static const char *const names[FP4M_Q_COUNT] = {"native", "bf16", "fp8-block", "nvfp4-w4a16",
                                                    "nvfp4-w4a4"};
    return (unsigned)f < FP4M_Q_COUNT ? names[f] : "?";
}

int fp4m_policy_from_name(const char *name, fp4m_policy *out) {
    if (!name || !out) return fp4_fail("model: null policy name");
    for (size_t i = 0; i < N_POLICIES; i++) {
        if (strcmp(name, k_policies[i].name) != 0) continue;
        memset(out, 0, sizeof *out);
        snprintf(out->name, sizeof out->name, "%s", name);
        memcpy(out->fmt, k_policies[i].fmt, sizeof out->fmt);
        /* modelopt's export recipe for weights (§2.1); activations as the
         * TensorRT-LLM / FlashInfer kernels that serve these checkpoints
         * quantize them (§2.7, fast-math reciprocal). */
        snprintf(out->weight_recipe, sizeof out->weight_recipe, "modelopt");
        snprintf(out->act_recipe, sizeof out->act_recipe, "flashinfer-fast");
        out->act_in = FP4_FMT_BF16;
        out->out = FP4_FMT_BF16;
        return 0;
    }
    return fp4_fail("model: unknown policy '%s' (valid: %s)", name, fp4m_policy_names());
}

/* Set once, from the manifest, when the model is opened (manifest.c). */
fp4m_lclass fp4m_linear_class(const fp4m_linear_desc *d) { return d->lclass; }
