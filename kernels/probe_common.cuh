// probe_common.cuh - what the probe files share (not installed): the device
// argument block, arch guards, the per-family launchers and the error buffer.
//
// Every probe moves bytes, never values: the host (probe_host.cu) turns the
// codes of one operand row into a 32-byte "row image" (the row exactly as
// the instruction reads it: f16 little-endian pairs, e4m3 bytes, e2m1 packed
// two per byte with the lower K in the low nibble, or e2m1 in the middle 4
// bits of a byte for kind::f8f6f4), and the kernels scatter those bytes into
// registers, shared memory or tensor memory. Every probed instruction has
// rows of exactly 32 bytes (K = 16 x 16 bit, 32 x 8 bit, 64 x 4 bit), so the
// register fragments of all mma.sync shapes are the same byte gathers
// (PTX ISA 9.1 §9.7.14.5.8-11) and every shared-memory operand is two core
// matrices wide (§9.7.15.5.1.2, §9.7.16.3).
#ifndef FP4K_PROBE_COMMON_CUH
#define FP4K_PROBE_COMMON_CUH

#include "fp4kernels.h"

#include <cuda_runtime.h>
#include <stdint.h>

// Bytes of one operand row of every probed instruction.
#define FP4K_ROW_BYTES 32

// Arch guards, evaluated in the device pass of each target. The 'a'
// (architecture-specific) targets define __CUDA_ARCH_FEAT_SMxx_ALL, the 'f'
// (family) targets __CUDA_ARCH_FAMILY_SPECIFIC__. Targets per the PTX ISA
// 9.1 instruction pages: wgmma needs sm_90a (§9.7.15.5.2), tcgen05.mma with
// .scale_vec::4X sm_100a / sm_103a (§9.7.16.10.9.1), mma.sync block_scale
// sm_120a / sm_121a or the sm_120f family (§9.7.14.5.14).
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define FP4K_HAS_WGMMA 1
#else
#define FP4K_HAS_WGMMA 0
#endif
#if defined(__CUDA_ARCH__) &&                                                                      \
    (defined(__CUDA_ARCH_FEAT_SM100_ALL) || defined(__CUDA_ARCH_FEAT_SM103_ALL))
#define FP4K_HAS_TCGEN05 1
#else
#define FP4K_HAS_TCGEN05 0
#endif
#if defined(__CUDA_ARCH__) &&                                                                      \
    (defined(__CUDA_ARCH_FEAT_SM120_ALL) || defined(__CUDA_ARCH_FEAT_SM121_ALL) ||                 \
     (defined(__CUDA_ARCH_FAMILY_SPECIFIC__) && __CUDA_ARCH_FAMILY_SPECIFIC__ == 1200))
#define FP4K_HAS_MMA_BLOCK_SCALE 1
#else
#define FP4K_HAS_MMA_BLOCK_SCALE 0
#endif
// mma.sync with e4m3 operands exists from sm_89 on (PTX ISA 9.1 §9.7.14.5.14).
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
#define FP4K_HAS_MMA_FP8 1
#else
#define FP4K_HAS_MMA_FP8 0
#endif

// Device view of one probe launch: tiles of row images, C and D.
struct fp4k_probe_args {
    const uint8_t *a;    // tiles * M rows * FP4K_ROW_BYTES
    const uint8_t *b;    // tiles * N rows * FP4K_ROW_BYTES
    const uint32_t *sfa; // tiles * M words (byte j = UE4M3 scale of K chunk j), or null
    const uint32_t *sfb; // tiles * N words, or null
    const uint32_t *c;   // tiles * M * N accumulator codes [tile][m][n]
    uint32_t *d;         // tiles * M * N output codes
    int *missing;        // set to 1 by a kernel compiled without its instruction
    int64_t tiles;
};

// Per-family launchers (probe_sm90.cu, probe_sm100.cu, probe_sm120.cu):
// launch the kernel of `instr` (cudaErrorInvalidValue if it is not theirs)
// and return its kernel function for cudaFuncGetAttributes.
cudaError_t fp4k_probe_launch_sm90(fp4k_probe_instr instr, const fp4k_probe_args &a);
cudaError_t fp4k_probe_launch_sm100(fp4k_probe_instr instr, const fp4k_probe_args &a);
cudaError_t fp4k_probe_launch_sm120(fp4k_probe_instr instr, const fp4k_probe_args &a);
const void *fp4k_probe_kernel_sm90(fp4k_probe_instr instr);
const void *fp4k_probe_kernel_sm100(fp4k_probe_instr instr);
const void *fp4k_probe_kernel_sm120(fp4k_probe_instr instr);

// The thread's fp4_last_error() buffer (convert.cu).

// Records "what: message" as the last error; returns FP4K_ERR_CUDA.
fp4k_status fp4k_probe_cuda_fail(cudaError_t e, const char *what);

#ifdef __CUDACC__
// ---- device helpers shared by the kernels -------------------------------

// 32-bit word at byte offset `off` of a row image (off % 4 == 0). Register
// j of an mma.sync fragment holds 32 consecutive bits of one row, element i
// of the register in bits [i*w, (i+1)*w): exactly the row image's bytes in
// little-endian order.
__device__ __forceinline__ uint32_t fp4k_row_word(const uint8_t *row, int off) {
    return *reinterpret_cast<const uint32_t *>(row + off);
}

// Byte offset of (row r, byte j of the row) in the canonical K-major,
// no-swizzle shared-memory layout ((8,m),(T,2k)):((1T,SBO),(1,LBO)) of PTX
// ISA 9.1 §9.7.15.5.1.2.1.3 (wgmma) and §9.7.16.3 (tcgen05): core matrices
// of 8 rows x 16 bytes stored contiguously; the two core matrices of a row
// group (the two 16-byte halves of a 32-byte row) LBO = 128 bytes apart,
// consecutive groups of 8 rows SBO = 256 bytes apart.
#define FP4K_SMEM_LBO 128u
#define FP4K_SMEM_SBO 256u
__device__ __forceinline__ uint32_t fp4k_core_offset(int r, int j) {
    return (uint32_t)(r / 8) * FP4K_SMEM_SBO + (uint32_t)(j / 16) * FP4K_SMEM_LBO +
           (uint32_t)(r % 8) * 16u + (uint32_t)(j % 16);
}

// Copies `rows` row images into shared memory in that layout, 16 bytes per
// thread and step (a core-matrix row is 16 contiguous bytes on both sides).
__device__ __forceinline__ void fp4k_rows_to_smem(uint8_t *smem, const uint8_t *rows, int nrows,
                                                  int tid, int nthreads) {
    for (int i = tid; i < nrows * 2; i += nthreads) {
        int r = i / 2, half = i % 2;
        const uint4 v = *reinterpret_cast<const uint4 *>(rows + r * FP4K_ROW_BYTES + half * 16);
        *reinterpret_cast<uint4 *>(smem + fp4k_core_offset(r, half * 16)) = v;
    }
}

// Makes generic-proxy writes to shared memory visible to the async proxy
// the tensor core reads operands through (PTX ISA 9.1, membar/fence:
// fence.proxy.async; wgmma and tcgen05.mma read shared memory through it).
__device__ __forceinline__ void fp4k_fence_proxy_async_smem() {
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}
#endif

#endif
