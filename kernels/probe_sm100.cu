// probe_sm100.cu - Blackwell datacenter (sm_100a) probes: one
// tcgen05.mma.cta_group::1 per CTA tile of M = 128, N = 16:
//   kind::mxf4nvf4.block_scale.scale_vec::4X (E2M1 x E2M1, UE4M3 per 16, K 64)
//   kind::f8f6f4 (E4M3 with F32 or F16 D, E2M1 in 8-bit containers; K 32).
//
// Data path (PTX ISA 9.1 §9.7.16): A (128 x 32 bytes) and B (16 x 32 bytes)
// in shared memory behind matrix descriptors (K-major, no swizzle); C is
// written into the tensor-memory accumulator with tcgen05.st, the MMA runs
// with enable-input-d = 1 (D = A*B + D), and D is read back with tcgen05.ld.
// Scale factors are written into tensor memory with tcgen05.st as well.
//
// Tensor memory (32 columns allocated, §9.7.16.7.1 tcgen05.alloc):
//   columns  0..15  D (Layout D of §9.7.16.10.5: M = 128 with cta_group::1
//                   puts row m in lane m, column n in column n; an F16 D
//                   occupies the low 16 bits of its word, §9.7.16.10.4.1)
//   columns 16..19  SFA: row m = 32q + l of A in lane l, column 16 + q,
//                   byte j = scale of K chunk j, the 32 lanes repeated in
//                   all four 32-lane quarters ("Scale factors for A and B
//                   matrices need to be duplicated to all 32 lane partitions",
//                   §9.7.16.10.7; numerics.md §9.2: this is the 512-byte
//                   128x4 scale tile, lane = r % 32, column = r / 32)
//   column  24      SFB: row n < 16 of B in lane n, repeated the same way.
#include "probe_common.cuh"

namespace {

enum class Tc { MXF4NVF4, E4M3F32, E4M3F16, E2M1F32 };

#if FP4K_HAS_TCGEN05
constexpr int TC_M = 128, TC_N = 16, TC_COLS = 32, TC_SFA_COL = 16, TC_SFB_COL = 24;

// Instruction descriptors. kind::f8f6f4 (§9.7.16.4.2 Table 42): bits 4-5
// D type (F16 0, F32 1), 7-9 A type and 10-12 B type (E4M3 0, E2M1 5),
// 15/16 transpose (0: K-major), 17-22 N >> 3, 24-28 M >> 4. kind::mxf4nvf4
// (Table 44, numerics.md §3.2): no D type (F32 only), bits 4-5 SFB id 0,
// 7-9 / 10-11 A / B type (E2M1 1), 23 scale type (UE4M3 0), 24-28 M >> 4,
// 29-30 SFA id 0, 31 K = 64 (0).
__host__ __device__ constexpr uint32_t tc_idesc(Tc v) {
    const uint32_t shape =
        (static_cast<uint32_t>(TC_N >> 3) << 17) | (static_cast<uint32_t>(TC_M >> 4) << 24);
    switch (v) {
    case Tc::MXF4NVF4:
        return shape | (1u << 7) | (1u << 10);
    case Tc::E4M3F32:
        return shape | (1u << 4);
    case Tc::E4M3F16:
        return shape;
    default:
        return shape | (1u << 4) | (5u << 7) | (5u << 10);
    }
}

// Shared-memory descriptor (§9.7.16.4.1): bits 0-13 start address >> 4,
// 16-29 leading byte offset >> 4, 32-45 stride byte offset >> 4, 46-48 the
// fixed value 0b001, 49-51 base offset (0), 52 LBO mode (0: relative),
// 61-63 swizzle (0: none).
__device__ __forceinline__ uint64_t tc_desc(const void *smem) {
    const uint64_t addr = static_cast<uint64_t>(__cvta_generic_to_shared(smem));
    return ((addr & 0x3FFFFu) >> 4) | (static_cast<uint64_t>(FP4K_SMEM_LBO >> 4) << 16) |
           (static_cast<uint64_t>(FP4K_SMEM_SBO >> 4) << 32) | (1ull << 46);
}

__device__ __forceinline__ uint32_t smem_addr(const void *p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void tc_fence_before() {
    asm volatile("tcgen05.fence::before_thread_sync;\n" ::: "memory");
}
__device__ __forceinline__ void tc_fence_after() {
    asm volatile("tcgen05.fence::after_thread_sync;\n" ::: "memory");
}
// __syncthreads() with the tcgen05 fences that order tensor-memory
// operations across it (§9.7.16.6.4).
__device__ __forceinline__ void tc_sync() {
    tc_fence_before();
    __syncthreads();
    tc_fence_after();
}

// C into the accumulator: lane = thread's row, 16 columns.
__device__ __forceinline__ void tc_store_c(uint32_t taddr, const uint32_t (&v)[TC_N]) {
    asm volatile(
        "tcgen05.st.sync.aligned.32x32b.x16.b32 [%0], "
        "{%1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16};\n" ::"r"(taddr),
        "r"(v[0]), "r"(v[1]), "r"(v[2]), "r"(v[3]), "r"(v[4]), "r"(v[5]), "r"(v[6]), "r"(v[7]),
        "r"(v[8]), "r"(v[9]), "r"(v[10]), "r"(v[11]), "r"(v[12]), "r"(v[13]), "r"(v[14]), "r"(v[15])
        : "memory");
}

__device__ __forceinline__ void tc_load_d(uint32_t taddr, uint32_t (&v)[TC_N]) {
    asm volatile("tcgen05.ld.sync.aligned.32x32b.x16.b32 "
                 "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, [%16];\n"
                 : "=r"(v[0]), "=r"(v[1]), "=r"(v[2]), "=r"(v[3]), "=r"(v[4]), "=r"(v[5]),
                   "=r"(v[6]), "=r"(v[7]), "=r"(v[8]), "=r"(v[9]), "=r"(v[10]), "=r"(v[11]),
                   "=r"(v[12]), "=r"(v[13]), "=r"(v[14]), "=r"(v[15])
                 : "r"(taddr)
                 : "memory");
    asm volatile("tcgen05.wait::ld.sync.aligned;\n" ::: "memory");
}

// Scale words of this thread's lane: SFA columns 16..19, SFB column 24.
__device__ __forceinline__ void tc_store_scales(uint32_t lane_base, const uint32_t *sfa,
                                                const uint32_t *sfb, int t) {
    const uint32_t a0 = sfa[t], a1 = sfa[32 + t], a2 = sfa[64 + t], a3 = sfa[96 + t];
    const uint32_t b = t < TC_N ? sfb[t] : 0u;
    asm volatile("tcgen05.st.sync.aligned.32x32b.x4.b32 [%0], {%1, %2, %3, %4};\n" ::"r"(
                     lane_base + TC_SFA_COL),
                 "r"(a0), "r"(a1), "r"(a2), "r"(a3)
                 : "memory");
    asm volatile(
        "tcgen05.st.sync.aligned.32x32b.x1.b32 [%0], {%1};\n" ::"r"(lane_base + TC_SFB_COL), "r"(b)
        : "memory");
}

// The instruction, issued by one thread; then tcgen05.commit arrives on
// the mbarrier once it (and everything it read) is complete.
template <Tc V>
__device__ __forceinline__ void tc_mma(uint32_t tbase, uint64_t da, uint64_t db, uint32_t mbar) {
    constexpr uint32_t idesc = tc_idesc(V);
    if constexpr (V == Tc::MXF4NVF4)
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %6, 0;\n"
                     "tcgen05.mma.cta_group::1.kind::mxf4nvf4.block_scale.scale_vec::4X "
                     "[%0], %1, %2, %3, [%4], [%5], p;\n}\n" ::"r"(tbase),
                     "l"(da), "l"(db), "r"(idesc), "r"(tbase + TC_SFA_COL), "r"(tbase + TC_SFB_COL),
                     "r"(1)
                     : "memory");
    else
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %4, 0;\n"
                     "tcgen05.mma.cta_group::1.kind::f8f6f4 [%0], %1, %2, %3, p;\n}\n" ::"r"(tbase),
                     "l"(da), "l"(db), "r"(idesc), "r"(1)
                     : "memory");
    asm volatile(
        "tcgen05.commit.cta_group::1.mbarrier::arrive::one.shared::cluster.b64 [%0];\n" ::"r"(mbar)
        : "memory");
}

__device__ __forceinline__ void mbar_wait(uint32_t mbar, uint32_t phase) {
    uint32_t done = 0;
    while (!done)
        asm volatile("{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
                     "selp.u32 %0, 1, 0, p;\n}\n"
                     : "=r"(done)
                     : "r"(mbar), "r"(phase)
                     : "memory");
}
#endif

// One tile per CTA of 128 threads (four warps; warp w owns tensor-memory
// lanes 32w..32w+31, §9.7.16.8.1).
template <Tc V> __device__ __forceinline__ void tc_tile(const fp4k_probe_args &p) {
#if FP4K_HAS_TCGEN05
    __shared__ __align__(1024) uint8_t sa[TC_M * FP4K_ROW_BYTES];
    __shared__ __align__(128) uint8_t sb[TC_N * FP4K_ROW_BYTES];
    __shared__ uint32_t tmem_slot;
    __shared__ __align__(8) uint64_t mbar;
    const int64_t tile = blockIdx.x;
    const int tid = static_cast<int>(threadIdx.x), warp = tid / 32, lane = tid % 32;
    fp4k_rows_to_smem(sa, p.a + tile * TC_M * FP4K_ROW_BYTES, TC_M, tid, 128);
    fp4k_rows_to_smem(sb, p.b + tile * TC_N * FP4K_ROW_BYTES, TC_N, tid, 128);
    fp4k_fence_proxy_async_smem();
    if (warp == 0) {
        asm volatile("tcgen05.alloc.cta_group::1.sync.aligned.shared::cta.b32 [%0], %1;\n" ::"r"(
                         smem_addr(&tmem_slot)),
                     "r"(TC_COLS)
                     : "memory");
        asm volatile("tcgen05.relinquish_alloc_permit.cta_group::1.sync.aligned;\n" ::: "memory");
    }
    if (tid == 0) {
        asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;\n" ::"r"(smem_addr(&mbar)) : "memory");
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    tc_sync();
    const uint32_t tbase = tmem_slot, lane_base = tbase + (static_cast<uint32_t>(32 * warp) << 16);
    const int row = 32 * warp + lane;
    uint32_t v[TC_N];
    for (int n = 0; n < TC_N; n++) v[n] = p.c[(tile * TC_M + row) * TC_N + n];
    tc_store_c(lane_base, v);
    if constexpr (V == Tc::MXF4NVF4)
        tc_store_scales(lane_base, p.sfa + tile * TC_M, p.sfb + tile * TC_N, lane);
    asm volatile("tcgen05.wait::st.sync.aligned;\n" ::: "memory");
    tc_sync();
    if (tid == 0) tc_mma<V>(tbase, tc_desc(sa), tc_desc(sb), smem_addr(&mbar));
    mbar_wait(smem_addr(&mbar), 0);
    tc_fence_after();
    tc_load_d(lane_base, v);
    for (int n = 0; n < TC_N; n++) p.d[(tile * TC_M + row) * TC_N + n] = v[n];
    tc_sync();
    if (warp == 0)
        asm volatile("tcgen05.dealloc.cta_group::1.sync.aligned.b32 %0, %1;\n" ::"r"(tbase),
                     "r"(TC_COLS)
                     : "memory");
#else
    if (threadIdx.x == 0 && blockIdx.x == 0) *p.missing = 1;
#endif
}

} // namespace

extern "C" __global__ void __launch_bounds__(128) fp4k_probe_sm100_mxf4nvf4(fp4k_probe_args p) {
    tc_tile<Tc::MXF4NVF4>(p);
}
extern "C" __global__ void __launch_bounds__(128)
    fp4k_probe_sm100_f8f6f4_e4m3_f32(fp4k_probe_args p) {
    tc_tile<Tc::E4M3F32>(p);
}
extern "C" __global__ void __launch_bounds__(128)
    fp4k_probe_sm100_f8f6f4_e4m3_f16(fp4k_probe_args p) {
    tc_tile<Tc::E4M3F16>(p);
}
extern "C" __global__ void __launch_bounds__(128)
    fp4k_probe_sm100_f8f6f4_e2m1_f32(fp4k_probe_args p) {
    tc_tile<Tc::E2M1F32>(p);
}

typedef void (*probe_kernel)(fp4k_probe_args);

static probe_kernel sm100_kernel(fp4k_probe_instr instr) {
    switch (instr) {
    case FP4K_PROBE_SM100_MXF4NVF4:
        return fp4k_probe_sm100_mxf4nvf4;
    case FP4K_PROBE_SM100_F8F6F4_E4M3_F32:
        return fp4k_probe_sm100_f8f6f4_e4m3_f32;
    case FP4K_PROBE_SM100_F8F6F4_E4M3_F16:
        return fp4k_probe_sm100_f8f6f4_e4m3_f16;
    case FP4K_PROBE_SM100_F8F6F4_E2M1_F32:
        return fp4k_probe_sm100_f8f6f4_e2m1_f32;
    default:
        return nullptr;
    }
}

const void *fp4k_probe_kernel_sm100(fp4k_probe_instr instr) {
    return reinterpret_cast<const void *>(sm100_kernel(instr));
}

cudaError_t fp4k_probe_launch_sm100(fp4k_probe_instr instr, const fp4k_probe_args &a) {
    probe_kernel k = sm100_kernel(instr);
    if (!k) return cudaErrorInvalidValue;
    k<<<static_cast<unsigned>(a.tiles), 128>>>(a);
    return cudaGetLastError();
}
