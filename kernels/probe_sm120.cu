// probe_sm120.cu - Blackwell GeForce / RTX PRO (sm_120a) probes: one
// mma.sync per warp tile (16 x 8):
//   m16n8k64 kind::mxf4nvf4.block_scale.scale_vec::4X .f32.e2m1.e2m1.f32.ue4m3
//   m16n8k32 kind::f8f6f4 .f32.e2m1.e2m1.f32 (E2M1 in 8-bit containers)
//
// Fragments (PTX ISA 9.1 §9.7.14.5.10-11) are the byte gathers of
// probe_sm90.cu's mma_tile: A register r = row g + 8(r & 1), bytes
// (r >> 1) * 16 + 4t; B register r = row g, bytes 16r + 4t; lane = 4g + t.
//
// Scales (§9.7.14.3, numerics.md §3.3): scale-a-data / scale-b-data are one
// 32-bit word per thread whose byte j is the UE4M3 scale of K chunk j
// (scale_vec::4X: all four bytes count, byte-id must be 0). With
// thread-id-a = 0 the thread pair lane % 4 in {0, 1} supplies SF_A; CUTLASS
// (cute/atom/mma_traits_sm120.hpp, SM120_16x8x64_TN_VS) maps lane to row
// m = 8 (lane % 2) + lane / 4, i.e. t = 0 gives row g and t = 1 row g + 8.
// Every thread here loads the word of row g + 8 (t & 1), so the pair the
// hardware picks holds the right rows whichever of t or t ^ 2 it reads.
// With thread-id-b = 0 the thread lane % 4 == 0 supplies SF_B of column g;
// every thread loads column g's word.
#include "probe_common.cuh"

namespace {

enum class Bs { MXF4NVF4, E2M1F32 };

template <Bs V> __device__ __forceinline__ void bs_tile(const fp4k_probe_args &p) {
#if FP4K_HAS_MMA_BLOCK_SCALE
    const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
    const int64_t tile = static_cast<int64_t>(blockIdx.x) * 4 + warp;
    if (tile >= p.tiles) return; // warp-uniform
    const int g = lane / 4, t = lane % 4;
    const uint8_t *A = p.a + tile * 16 * FP4K_ROW_BYTES, *B = p.b + tile * 8 * FP4K_ROW_BYTES;
    uint32_t a[4], b[2];
    for (int r = 0; r < 4; r++)
        a[r] = fp4k_row_word(A + (g + 8 * (r & 1)) * FP4K_ROW_BYTES, (r >> 1) * 16 + 4 * t);
    for (int r = 0; r < 2; r++) b[r] = fp4k_row_word(B + g * FP4K_ROW_BYTES, 16 * r + 4 * t);
    const uint32_t *c = p.c + tile * 16 * 8;
    uint32_t *d = p.d + tile * 16 * 8;
    float cr[4], dr[4];
    for (int i = 0; i < 4; i++) cr[i] = __uint_as_float(c[(g + 8 * (i / 2)) * 8 + 2 * t + i % 2]);
    if constexpr (V == Bs::MXF4NVF4) {
        const uint32_t sfa = p.sfa[tile * 16 + g + 8 * (t & 1)], sfb = p.sfb[tile * 8 + g];
        const uint16_t zero = 0;
        asm volatile("mma.sync.aligned.m16n8k64.row.col.kind::mxf4nvf4.block_scale.scale_vec::4X."
                     "f32.e2m1.e2m1.f32.ue4m3 "
                     "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%10, %11, %12, %13}, "
                     "%14, {%15, %16}, %17, {%18, %19};\n"
                     : "=f"(dr[0]), "=f"(dr[1]), "=f"(dr[2]), "=f"(dr[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(cr[0]),
                       "f"(cr[1]), "f"(cr[2]), "f"(cr[3]), "r"(sfa), "h"(zero), "h"(zero), "r"(sfb),
                       "h"(zero), "h"(zero));
    } else {
        asm volatile("mma.sync.aligned.m16n8k32.row.col.kind::f8f6f4.f32.e2m1.e2m1.f32 "
                     "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%10, %11, %12, %13};\n"
                     : "=f"(dr[0]), "=f"(dr[1]), "=f"(dr[2]), "=f"(dr[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(cr[0]),
                       "f"(cr[1]), "f"(cr[2]), "f"(cr[3]));
    }
    for (int i = 0; i < 4; i++) d[(g + 8 * (i / 2)) * 8 + 2 * t + i % 2] = __float_as_uint(dr[i]);
#else
    if (threadIdx.x == 0 && blockIdx.x == 0) *p.missing = 1;
#endif
}

} // namespace

extern "C" __global__ void __launch_bounds__(128) fp4k_probe_sm120_mxf4nvf4(fp4k_probe_args p) {
    bs_tile<Bs::MXF4NVF4>(p);
}
extern "C" __global__ void __launch_bounds__(128)
    fp4k_probe_sm120_f8f6f4_e2m1_f32(fp4k_probe_args p) {
    bs_tile<Bs::E2M1F32>(p);
}

typedef void (*probe_kernel)(fp4k_probe_args);

static probe_kernel sm120_kernel(fp4k_probe_instr instr) {
    switch (instr) {
    case FP4K_PROBE_SM120_MXF4NVF4:
        return fp4k_probe_sm120_mxf4nvf4;
    case FP4K_PROBE_SM120_F8F6F4_E2M1_F32:
        return fp4k_probe_sm120_f8f6f4_e2m1_f32;
    default:
        return nullptr;
    }
}

const void *fp4k_probe_kernel_sm120(fp4k_probe_instr instr) {
    return reinterpret_cast<const void *>(sm120_kernel(instr));
}

cudaError_t fp4k_probe_launch_sm120(fp4k_probe_instr instr, const fp4k_probe_args &a) {
    probe_kernel k = sm120_kernel(instr);
    if (!k) return cudaErrorInvalidValue;
    k<<<static_cast<unsigned>((a.tiles + 3) / 4), 128>>>(a);
    return cudaGetLastError();
}
