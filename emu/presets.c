/* presets.c - named datapath models with their evidence.
 *
 * Every preset is keyed to (GPU, SASS opcode, toolkit), not to a PTX
 * mnemonic: the same PTX lowers to different hardware paths (numerics.md
 * §0 fact 4). Sources: numerics.md §5.2 (measured on the reference H100),
 * §5.3 (Khattak-Mikaitis' published parameters, their models/ folder), §6 (what is
 * unknown on Blackwell). min_exp_limit: -133 for FP32 and -21 for FP16
 * accumulation are Khattak-Mikaitis' values; the measurements did not
 * exercise it (numerics.md §5.2 "Not exercised").
 */
#include "emu_internal.h"

#include <ctype.h>
#include <string.h>

/* All fields, in struct order; pexp sum, subnormals in and out, overflow
 * to Inf (Khattak-Mikaitis) unless a preset says otherwise. */
#define MODEL(k, blk, il, F, minexp, unpack, scale, cpl, acc, bits, rnd)                        \
    {(k), (blk), (il), false, (F), (minexp), FP4EMU_PEXP_SUM, (unpack), (scale), true, (cpl),  \
     (acc), (bits), (rnd), true, true}

#define NOUNPACK FP4_FMT_COUNT
#define PROD FP4EMU_SCALE_PRODUCT
#define CHUNK FP4EMU_SCALE_CHUNK
#define CIN FP4EMU_C_IN_BLOCK
#define CAFTER FP4EMU_C_AFTER
#define F32 FP4_FMT_F32
#define F16 FP4_FMT_F16

#define H100_SYSTEM                                                                            \
    "H100 80GB HBM3 SXM (sm_90a), driver 580.159.04, CUDA 13.0 nvcc/ptxas; 262144 random dot " \
    "products (numerics.md §5.2)"
#define KM_SOURCE                                                                              \
    "Khattak & Mikaitis, Accurate Models of NVIDIA Tensor Cores (arXiv:2512.07004), "          \
    "north-numerical-computing/MATLAB-tensor-core models/"
#define UNKNOWN_MXF4NVF4                                                                       \
    "No public bit-accurate model of mxf4nvf4 accumulation exists (numerics.md §0 fact 5, §6); " \
    "DeepGEMM #176 tested 34-37 accumulator bits for mxf4nvf4 without a conclusion. "          \
    "A member of the candidate family to fit against probes, not a claim"

static const fp4emu_preset k_presets[] = {
    /* ---- measured on the reference H100 (numerics.md §5.2) ---- */
    {"sm90-hgmma-f16", MODEL(16, 16, 0, 25, -133, NOUNPACK, PROD, CIN, F32, 23, FP4_RZ),
     FP4EMU_MEASURED, "f16",
     "wgmma.mma_async.m64n8k16.f32.f16.f16 -> SASS HGMMA.64 (F32 accumulate); " H100_SYSTEM
     ": 262144/262144 match (exact->RN 134362, F=24 166563)"},
    {"sm90-hgmma-bf16", MODEL(16, 16, 0, 25, -133, NOUNPACK, PROD, CIN, F32, 23, FP4_RZ),
     FP4EMU_MEASURED, "bf16",
     "wgmma.mma_async.m64n8k16.f32.bf16.bf16 -> SASS HGMMA.64; " H100_SYSTEM
     ": 262144/262144 match (exact->RN 153348, F=24 214376)"},
    {"sm90-qgmma-e4m3-f32", MODEL(32, 32, 0, 13, -133, NOUNPACK, PROD, CIN, F32, 13, FP4_RZ),
     FP4EMU_MEASURED, "e4m3",
     "wgmma.mma_async.m64n8k32.f32.e4m3.e4m3 -> SASS QGMMA.64; " H100_SYSTEM
     ": 262144/262144 match; every output has its low 10 bits zero (F=13 then RZ23 191545, "
     "RNE13 226639, products-only block then +C RN 95571, F=25 76). e5m2 follows "
     "Khattak-Mikaitis H100TC (same parameters), not measured here"},
    {"sm90-qgmma-e4m3-f16", MODEL(32, 32, 0, 13, -21, NOUNPACK, PROD, CIN, F16, 10, FP4_RNE),
     FP4EMU_MEASURED, "e4m3",
     "wgmma.mma_async.m64n8k32.f16.e4m3.e4m3 -> SASS QGMMA.64 (F16 accumulate); " H100_SYSTEM
     ": 262144/262144 match: 13-bit aligned sum, then RNE to FP16 (exact->RNE 217722, "
     "F=13->RZ13->RNE 256999)"},
    {"sm90-hmma-16816-f32", MODEL(16, 16, 0, 25, -133, NOUNPACK, PROD, CIN, F32, 23, FP4_RZ),
     FP4EMU_MEASURED, "f16",
     "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 -> SASS HMMA.16816.F32; " H100_SYSTEM
     ": 262144/262144 match (exact->RN 134481)"},
    {"sm90-mmasync-e4m3", MODEL(32, 16, 2, 25, -133, F16, PROD, CAFTER, F32, 23, FP4_RZ),
     FP4EMU_MEASURED, "e4m3",
     "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 lowered by ptxas (CUDA 13.0) to "
     "F2FP.F16.E4M3.UNPACK_B x12 + HMMA.16816.F32 x2 + FADD x4: t1 = BFMA16(k mod 4 in {0,1}; "
     "C=0), t2 = BFMA16(k mod 4 in {2,3}; C=t1), d = RN32(c + t2); " H100_SYSTEM
     ": 262144/262144 match (single 32-block 163974, halves [0..15]/[16..31] 146567, k-mod-4 "
     "halves in the other order 158379, F=13 81-83). Toolkit dependent"},
    {"sm90-mmasync-e4m3-f16", MODEL(32, 16, 2, 25, -21, F16, PROD, CAFTER, F16, 10, FP4_RNE),
     FP4EMU_MEASURED, "e4m3",
     "mma.sync.aligned.m16n8k32.row.col.f16.e4m3.e4m3.f16 lowered to F2FP + HMMA.16816.F16 x2 + "
     "HADD2: each HMMA an F=25 aligned sum then RNE to FP16, d = RN16(c + t2); " H100_SYSTEM
     ": 262144/262144 match (exact->RNE 172898, RZ inside HMMA 101903). Toolkit dependent"},

    /* ---- Khattak-Mikaitis published models (numerics.md §5.3), not verified here ---- */
    {"sm100-km-f16-f32", MODEL(16, 16, 0, 25, -133, NOUNPACK, PROD, CIN, F32, 23, FP4_RZ),
     FP4EMU_PUBLISHED, "f16,bf16",
     "B200TC fp16/bf16 -> fp32: fma 16, neab 2 (F=25), RZ, min_exp_limit -133; " KM_SOURCE
     "B200TC.m (validated there with WMMA on B200, 10^5 random inputs). Published, not verified "
     "here"},
    {"sm100-km-f16-f16", MODEL(16, 16, 0, 25, -21, NOUNPACK, PROD, CIN, F16, 10, FP4_RNE),
     FP4EMU_PUBLISHED, "f16",
     "B200TC fp16 -> fp16: fma 16, F=25, final RNE, min_exp_limit -21 (numerics.md §5.3 table; "
     "later revisions of B200TC.m use -15); " KM_SOURCE "B200TC.m. Published, not verified here"},
    {"sm100-km-fp8-f32", MODEL(32, 32, 0, 25, -133, NOUNPACK, PROD, CIN, F32, 23, FP4_RZ),
     FP4EMU_PUBLISHED, "e4m3,e5m2",
     "B200TC fp8 -> fp32: fma 32 (two interleaved 16-element vectors joined), neab 2 (F=25), RZ; "
     "validated there with mma.sync m16n8k32 on B200. Consistent with DeepGEMM #176 (tcgen05 "
     "kind::f8f6f4 accumulator keeps 25 bits). " KM_SOURCE "B200TC.m. Published, not verified "
     "here"},
    {"sm100-km-fp8-f32-rn", MODEL(32, 32, 0, 25, -133, NOUNPACK, PROD, CIN, F32, 23, FP4_RNE),
     FP4EMU_PUBLISHED, "e4m3,e5m2",
     "B200TCRN: B200TC with a final RNE, a what-if variant used in the authors' experiments/; "
     KM_SOURCE "B200TCRN.m. Not a hardware claim; not verified here"},
    {"sm120-km-fp8-f32", MODEL(32, 32, 0, 25, -133, NOUNPACK, PROD, CIN, F32, 23, FP4_RZ),
     FP4EMU_PUBLISHED, "e4m3,e5m2",
     "RTXPRO6000TC.m simply reuses B200TC (not independently parameterized); " KM_SOURCE
     ". Published, not verified here"},
    {"sm120-km-f16-f32", MODEL(16, 16, 0, 25, -133, NOUNPACK, PROD, CIN, F32, 23, FP4_RZ),
     FP4EMU_PUBLISHED, "f16,bf16",
     "RTXPRO6000TC.m reuses B200TC fp16/bf16 -> fp32 (fma 16, F=25, RZ); " KM_SOURCE
     ". Published, not verified here"},

    /* ---- Blackwell mxf4nvf4: unknown, candidate family (numerics.md §6) ---- */
    {"sm100-mxf4nvf4-cand-a", MODEL(64, 64, 0, 25, -133, NOUNPACK, PROD, CIN, F32, 23, FP4_RZ),
     FP4EMU_CANDIDATE, "nvfp4",
     "tcgen05.mma.kind::mxf4nvf4.block_scale.scale_vec::4X (K=64): one 64-product block + C, "
     "scales applied per product, F=25 as sm100 FP8, RZ. " UNKNOWN_MXF4NVF4},
    {"sm100-mxf4nvf4-cand-chunk", MODEL(64, 64, 0, 25, -133, NOUNPACK, CHUNK, CIN, F32, 23, FP4_RZ),
     FP4EMU_CANDIDATE, "nvfp4",
     "tcgen05.mma.kind::mxf4nvf4 (K=64): four exact 16-element chunk sums, each times SFA*SFB, "
     "aligned with C, F=25, RZ (scale applied after the chunk sum). " UNKNOWN_MXF4NVF4},
    {"sm100-mxf4nvf4-cand-f35", MODEL(64, 64, 0, 35, -133, NOUNPACK, PROD, CIN, F32, 23, FP4_RZ),
     FP4EMU_CANDIDATE, "nvfp4",
     "tcgen05.mma.kind::mxf4nvf4 (K=64): one 64-product block + C with a 35-bit window (in "
     "DeepGEMM #176's tested 34-37 range), RZ. " UNKNOWN_MXF4NVF4},
    {"sm120-mxf4nvf4-cand-a", MODEL(64, 64, 0, 25, -133, NOUNPACK, PROD, CIN, F32, 23, FP4_RZ),
     FP4EMU_CANDIDATE, "nvfp4",
     "mma.sync.aligned.m16n8k64.row.col.kind::mxf4nvf4.block_scale.scale_vec::4X.f32.e2m1.e2m1."
     "f32.ue4m3 (sm_120a): one 64-product block + C, F=25, RZ. " UNKNOWN_MXF4NVF4},
    {"sm120-mxf4nvf4-cand-chunk", MODEL(64, 64, 0, 25, -133, NOUNPACK, CHUNK, CIN, F32, 23, FP4_RZ),
     FP4EMU_CANDIDATE, "nvfp4",
     "mma.sync m16n8k64 kind::mxf4nvf4 (sm_120a): exact chunk sums times scales, aligned with C, "
     "F=25, RZ. " UNKNOWN_MXF4NVF4},
    {"sm120-mxf4nvf4-cand-2x32", MODEL(64, 32, 0, 25, -133, NOUNPACK, PROD, CIN, F32, 23, FP4_RZ),
     FP4EMU_CANDIDATE, "nvfp4",
     "mma.sync m16n8k64 kind::mxf4nvf4 (sm_120a): two chained 32-product blocks (as the sm100 "
     "FP8 32-block, twice), F=25, RZ. " UNKNOWN_MXF4NVF4},

    /* ---- software references (not GPUs): what common host references compute ---- */
    {"cutlass-host-f32",
     {1, 1, 0, false, FP4EMU_F_EXACT, FP4EMU_NO_EXP_LIMIT, FP4EMU_PEXP_SUM, NOUNPACK, PROD, true,
      CIN, F32, 23, FP4_RNE, true, false},
     FP4EMU_REFERENCE, "any",
     "CUTLASS host reference (tools/util/include/cutlass/util/reference/host/gett.hpp, "
     "numerics.md §7.1): each element scaled in float (exact), acc = fma(a, b, acc) in FP32 RN "
     "over K in order; not a hardware model (numerics.md §8: it disagrees with the exact result "
     "on 95% of outputs)"},
    {"f16-blocks",
     {16, 16, 0, false, FP4EMU_F_EXACT, FP4EMU_NO_EXP_LIMIT, FP4EMU_PEXP_SUM, NOUNPACK, PROD,
      true, CIN, F16, 10, FP4_RNE, true, false},
     FP4EMU_REFERENCE, "any",
     "exact 16-element block partials (a*sa*sb summed exactly) accumulated in FP16, rounding "
     "each add by the output rounding (out=rz10 etc.): the 'NVFP4 with FP16 accumulation' "
     "software scheme (numerics.md §11 item 4); not a hardware model"},
};

enum { NPRESETS = (int)(sizeof k_presets / sizeof k_presets[0]) };

int fp4emu_preset_count(void) { return NPRESETS; }

const fp4emu_preset *fp4emu_preset_at(int i) {
    return i >= 0 && i < NPRESETS ? &k_presets[i] : NULL;
}

static bool name_eq(const char *a, const char *b) {
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return false;
    return *a == *b;
}

const fp4emu_preset *fp4emu_preset_get(const char *name) {
    for (int i = 0; name && i < NPRESETS; i++)
        if (name_eq(name, k_presets[i].name)) return &k_presets[i];
    fp4_fail("emu: unknown preset '%s' ('fp4sim engines' lists them)", name ? name : "(null)");
    return NULL;
}

const char *fp4emu_status_name(fp4emu_status s) {
    static const char *names[] = {"measured", "published", "candidate", "reference"};
    return (unsigned)s < FP4EMU_STATUS_COUNT ? names[s] : "?";
}

void fp4emu_preset_print(FILE *f, const fp4emu_preset *p) {
    char buf[256];
    fp4emu_model_format(&p->model, buf, sizeof buf);
    fprintf(f, "%s [%s]\n  inputs:   %s\n  model:    %s\n  evidence: %s\n", p->name,
            fp4emu_status_name(p->status), p->inputs, buf, p->evidence);
}

void fp4emu_preset_list(FILE *f) {
    char buf[256];
    for (int i = 0; i < NPRESETS; i++) {
        fp4emu_model_format(&k_presets[i].model, buf, sizeof buf);
        fprintf(f, "%-26s %-9s %-10s %s\n", k_presets[i].name,
                fp4emu_status_name(k_presets[i].status), k_presets[i].inputs, buf);
    }
}
