/* probe_table.c - the static description of every probed instruction
 * (fp4kernels.h, docs/probe.md). Plain C so that the table exists with and
 * without CUDA: emu/'s instruction table is checked against it in tests.
 *
 * Shapes: wgmma m64n8kK (one warpgroup; N = 8 as in the numerics.md §5.2
 * measurements); mma.sync m16n8kK (one warp); tcgen05.mma cta_group::1
 * M = 128, N = 16 (PTX ISA 9.1 §9.7.16.2.1 Table 39: cta_group::1 with
 * M = 128 takes N = 8..256 in steps of 8; block-scaled kinds need M = 128;
 * 16 is a valid N for every kind). Every operand row
 * of every instruction is 32 bytes: K = 16 f16, 32 e4m3, 64 packed e2m1,
 * 32 e2m1 in 8-bit containers. */
#include "fp4kernels.h"

#include <string.h>

static const fp4k_probe_desc k_probes[FP4K_PROBE_COUNT] = {
    [FP4K_PROBE_SM90_WGMMA_F16_F32] = {"sm90-wgmma-f16-f32",
                                       "wgmma.mma_async.sync.aligned.m64n8k16.f32.f16.f16",
                                       "fp4k_probe_sm90_wgmma_f16_f32", 9, 0, 64, 8, 16,
                                       FP4K_ELEM_16, 32, 0},
    [FP4K_PROBE_SM90_WGMMA_F16_F16] = {"sm90-wgmma-f16-f16",
                                       "wgmma.mma_async.sync.aligned.m64n8k16.f16.f16.f16",
                                       "fp4k_probe_sm90_wgmma_f16_f16", 9, 0, 64, 8, 16,
                                       FP4K_ELEM_16, 16, 0},
    [FP4K_PROBE_SM90_WGMMA_BF16_F32] = {"sm90-wgmma-bf16-f32",
                                        "wgmma.mma_async.sync.aligned.m64n8k16.f32.bf16.bf16",
                                        "fp4k_probe_sm90_wgmma_bf16_f32", 9, 0, 64, 8, 16,
                                        FP4K_ELEM_16, 32, 0},
    [FP4K_PROBE_SM90_WGMMA_E4M3_F32] = {"sm90-wgmma-e4m3-f32",
                                        "wgmma.mma_async.sync.aligned.m64n8k32.f32.e4m3.e4m3",
                                        "fp4k_probe_sm90_wgmma_e4m3_f32", 9, 0, 64, 8, 32,
                                        FP4K_ELEM_8, 32, 0},
    [FP4K_PROBE_SM90_WGMMA_E4M3_F16] = {"sm90-wgmma-e4m3-f16",
                                        "wgmma.mma_async.sync.aligned.m64n8k32.f16.e4m3.e4m3",
                                        "fp4k_probe_sm90_wgmma_e4m3_f16", 9, 0, 64, 8, 32,
                                        FP4K_ELEM_8, 16, 0},
    [FP4K_PROBE_MMA_F16_F32] = {"mma-f16-f32", "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32",
                                "fp4k_probe_mma_f16_f32", 0, 0, 16, 8, 16, FP4K_ELEM_16, 32, 0},
    [FP4K_PROBE_MMA_E4M3_F32] = {"mma-e4m3-f32",
                                 "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32",
                                 "fp4k_probe_mma_e4m3_f32", 0, 0, 16, 8, 32, FP4K_ELEM_8, 32, 0},
    [FP4K_PROBE_MMA_E4M3_F16] = {"mma-e4m3-f16",
                                 "mma.sync.aligned.m16n8k32.row.col.f16.e4m3.e4m3.f16",
                                 "fp4k_probe_mma_e4m3_f16", 0, 0, 16, 8, 32, FP4K_ELEM_8, 16, 0},
    [FP4K_PROBE_SM100_MXF4NVF4] =
        {"sm100-tcgen05-mxf4nvf4",
         "tcgen05.mma.cta_group::1.kind::mxf4nvf4.block_scale.scale_vec::4X",
         "fp4k_probe_sm100_mxf4nvf4", 10, 0, 128, 16, 64, FP4K_ELEM_4_PACKED, 32, 16},
    [FP4K_PROBE_SM100_F8F6F4_E4M3_F32] = {"sm100-tcgen05-f8f6f4-e4m3-f32",
                                          "tcgen05.mma.cta_group::1.kind::f8f6f4",
                                          "fp4k_probe_sm100_f8f6f4_e4m3_f32", 10, 0, 128, 16, 32,
                                          FP4K_ELEM_8, 32, 0},
    [FP4K_PROBE_SM100_F8F6F4_E4M3_F16] = {"sm100-tcgen05-f8f6f4-e4m3-f16",
                                          "tcgen05.mma.cta_group::1.kind::f8f6f4",
                                          "fp4k_probe_sm100_f8f6f4_e4m3_f16", 10, 0, 128, 16, 32,
                                          FP4K_ELEM_8, 16, 0},
    [FP4K_PROBE_SM100_F8F6F4_E2M1_F32] = {"sm100-tcgen05-f8f6f4-e2m1-f32",
                                          "tcgen05.mma.cta_group::1.kind::f8f6f4",
                                          "fp4k_probe_sm100_f8f6f4_e2m1_f32", 10, 0, 128, 16, 32,
                                          FP4K_ELEM_4_IN_8, 32, 0},
    [FP4K_PROBE_SM120_MXF4NVF4] = {"sm120-mma-mxf4nvf4",
                                   "mma.sync.aligned.m16n8k64.row.col.kind::mxf4nvf4.block_scale."
                                   "scale_vec::4X.f32.e2m1.e2m1.f32.ue4m3",
                                   "fp4k_probe_sm120_mxf4nvf4", 12, 0, 16, 8, 64,
                                   FP4K_ELEM_4_PACKED, 32, 16},
    [FP4K_PROBE_SM120_F8F6F4_E2M1_F32] = {"sm120-mma-f8f6f4-e2m1-f32",
                                          "mma.sync.aligned.m16n8k32.row.col.kind::f8f6f4.f32.e2m1."
                                          "e2m1.f32",
                                          "fp4k_probe_sm120_f8f6f4_e2m1_f32", 12, 0, 16, 8, 32,
                                          FP4K_ELEM_4_IN_8, 32, 0},
};

const fp4k_probe_desc *fp4k_probe_info(fp4k_probe_instr instr) {
    return (unsigned)instr < FP4K_PROBE_COUNT ? &k_probes[instr] : NULL;
}

fp4k_probe_instr fp4k_probe_find(const char *name) {
    for (int i = 0; name && i < FP4K_PROBE_COUNT; i++)
        if (strcmp(name, k_probes[i].name) == 0) return (fp4k_probe_instr)i;
    return FP4K_PROBE_COUNT;
}
