// probe_sm90.cu - Hopper probes: one wgmma.mma_async (sm_90a) per warpgroup
// tile, and the mma.sync probes (f16 and e4m3, one instruction per warp
// tile) that run on every architecture fp4sim is built for.
//
// wgmma (PTX ISA 9.1 §9.7.15.5.2): A (64 x 32 bytes) and B (8 x 32 bytes)
// come from shared memory through matrix descriptors, both K-major (the
// only layout e4m3 allows); D starts as C in registers (scale-d = 1), so the
// instruction computes D = A*B + C with C entering the tensor core.
//
// mma.sync (§9.7.14.5.14): fragments are gathered straight from the row
// images (probe_common.cuh explains why one gather serves every shape).
#include "probe_common.cuh"

namespace {

// ---------------------------------------------------------------------------
// wgmma
// ---------------------------------------------------------------------------

enum class Wg { F16F32, F16F16, BF16F32, E4M3F32, E4M3F16 };

#if FP4K_HAS_WGMMA
__host__ __device__ constexpr bool wg_f32_acc(Wg v) {
    return v == Wg::F16F32 || v == Wg::BF16F32 || v == Wg::E4M3F32;
}

// Matrix descriptor (§9.7.15.5.1.2.2): bits 0-13 start address >> 4, 16-29
// leading-dimension byte offset >> 4, 32-45 stride byte offset >> 4, 62-63
// swizzle mode (0: none; base offset unused without swizzle).
__device__ __forceinline__ uint64_t wgmma_desc(const void *smem) {
    const uint64_t addr = static_cast<uint64_t>(__cvta_generic_to_shared(smem));
    return ((addr & 0x3FFFFu) >> 4) | (static_cast<uint64_t>(FP4K_SMEM_LBO >> 4) << 16) |
           (static_cast<uint64_t>(FP4K_SMEM_SBO >> 4) << 32);
}

// The instruction itself, F32 accumulator: d holds C on entry, D on exit.
// scale-d is a predicate set to 1 (D = A*B + D); imm-scale-a/b = 1 (no
// negation); f16/bf16 take imm-trans-a/b = 0 (K-major), e4m3 has none.
template <Wg V> __device__ __forceinline__ void wgmma_f32(float (&d)[4], uint64_t da, uint64_t db) {
    if constexpr (V == Wg::F16F32)
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %6, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n8k16.f32.f16.f16 "
                     "{%0, %1, %2, %3}, %4, %5, p, 1, 1, 0, 0;\n}\n"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "l"(da), "l"(db), "r"(1));
    else if constexpr (V == Wg::BF16F32)
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %6, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n8k16.f32.bf16.bf16 "
                     "{%0, %1, %2, %3}, %4, %5, p, 1, 1, 0, 0;\n}\n"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "l"(da), "l"(db), "r"(1));
    else
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %6, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n8k32.f32.e4m3.e4m3 "
                     "{%0, %1, %2, %3}, %4, %5, p, 1, 1;\n}\n"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "l"(da), "l"(db), "r"(1));
}

// F16 accumulator: two .f16x2 registers.
template <Wg V>
__device__ __forceinline__ void wgmma_f16(uint32_t (&d)[2], uint64_t da, uint64_t db) {
    if constexpr (V == Wg::F16F16)
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %4, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n8k16.f16.f16.f16 "
                     "{%0, %1}, %2, %3, p, 1, 1, 0, 0;\n}\n"
                     : "+r"(d[0]), "+r"(d[1])
                     : "l"(da), "l"(db), "r"(1));
    else
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %4, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n8k32.f16.e4m3.e4m3 "
                     "{%0, %1}, %2, %3, p, 1, 1;\n}\n"
                     : "+r"(d[0]), "+r"(d[1])
                     : "l"(da), "l"(db), "r"(1));
}
#endif

// One wgmma m64n8 tile per CTA of 128 threads (one warpgroup). Accumulator
// fragment (§9.7.15.5.1.1, Figures 149/153): warp w, lane = 4g + t; F32
// d_i is row 16w + g + 8(i/2), column 2t + (i%2); F16 register j holds
// row 16w + g + 8j, columns 2t (low half) and 2t + 1.
template <Wg V> __device__ __forceinline__ void wgmma_tile(const fp4k_probe_args &p) {
#if FP4K_HAS_WGMMA
    __shared__ __align__(128) uint8_t sa[64 * FP4K_ROW_BYTES];
    __shared__ __align__(128) uint8_t sb[8 * FP4K_ROW_BYTES];
    const int64_t tile = blockIdx.x;
    const int tid = static_cast<int>(threadIdx.x);
    fp4k_rows_to_smem(sa, p.a + tile * 64 * FP4K_ROW_BYTES, 64, tid, 128);
    fp4k_rows_to_smem(sb, p.b + tile * 8 * FP4K_ROW_BYTES, 8, tid, 128);
    fp4k_fence_proxy_async_smem();
    __syncthreads();
    const int w = tid / 32, g = (tid % 32) / 4, t = tid % 4;
    const uint32_t *c = p.c + tile * 64 * 8;
    uint32_t *d = p.d + tile * 64 * 8;
    const uint64_t da = wgmma_desc(sa), db = wgmma_desc(sb);
    if constexpr (wg_f32_acc(V)) {
        float r[4];
        for (int i = 0; i < 4; i++)
            r[i] = __uint_as_float(c[(16 * w + g + 8 * (i / 2)) * 8 + 2 * t + i % 2]);
        asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
        wgmma_f32<V>(r, da, db);
        asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
        asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
        // Pin the registers after the wait so no copy of them is read early.
        for (int i = 0; i < 4; i++) asm volatile("" : "+f"(r[i])::"memory");
        for (int i = 0; i < 4; i++)
            d[(16 * w + g + 8 * (i / 2)) * 8 + 2 * t + i % 2] = __float_as_uint(r[i]);
    } else {
        uint32_t r[2];
        for (int j = 0; j < 2; j++) {
            const uint32_t *row = c + (16 * w + g + 8 * j) * 8 + 2 * t;
            r[j] = (row[0] & 0xFFFFu) | (row[1] << 16);
        }
        asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
        wgmma_f16<V>(r, da, db);
        asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
        asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
        for (int j = 0; j < 2; j++) asm volatile("" : "+r"(r[j])::"memory");
        for (int j = 0; j < 2; j++) {
            uint32_t *row = d + (16 * w + g + 8 * j) * 8 + 2 * t;
            row[0] = r[j] & 0xFFFFu;
            row[1] = r[j] >> 16;
        }
    }
#else
    if (threadIdx.x == 0 && blockIdx.x == 0) *p.missing = 1;
#endif
}

// ---------------------------------------------------------------------------
// mma.sync m16n8k16 f16 and m16n8k32 e4m3 (any sm_89+ target)
// ---------------------------------------------------------------------------

enum class Mm { F16F32, E4M3F32, E4M3F16 };

// Fragments (§9.7.14.5.8 m16n8k16, §9.7.14.5.10 m16n8k32), lane = 4g + t:
// A register r: row g + 8(r & 1), bytes (r >> 1) * 16 + 4t of that row;
// B register r: row (= B column) g, bytes 16r + 4t. F32 C/D c_i: row
// g + 8(i/2), column 2t + (i % 2); F16 register j: row g + 8j, columns 2t
// (low half) and 2t + 1.
template <Mm V> __device__ __forceinline__ void mma_tile(const fp4k_probe_args &p) {
#if FP4K_HAS_MMA_FP8
    const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
    const int64_t tile = static_cast<int64_t>(blockIdx.x) * 4 + warp;
    if (tile >= p.tiles) return; // warp-uniform: the whole warp leaves together
    const int g = lane / 4, t = lane % 4;
    const uint8_t *A = p.a + tile * 16 * FP4K_ROW_BYTES, *B = p.b + tile * 8 * FP4K_ROW_BYTES;
    uint32_t a[4], b[2];
    for (int r = 0; r < 4; r++)
        a[r] = fp4k_row_word(A + (g + 8 * (r & 1)) * FP4K_ROW_BYTES, (r >> 1) * 16 + 4 * t);
    for (int r = 0; r < 2; r++) b[r] = fp4k_row_word(B + g * FP4K_ROW_BYTES, 16 * r + 4 * t);
    const uint32_t *c = p.c + tile * 16 * 8;
    uint32_t *d = p.d + tile * 16 * 8;
    if constexpr (V == Mm::E4M3F16) {
        uint32_t cr[2], dr[2];
        for (int j = 0; j < 2; j++) {
            const uint32_t *row = c + (g + 8 * j) * 8 + 2 * t;
            cr[j] = (row[0] & 0xFFFFu) | (row[1] << 16);
        }
        asm volatile("mma.sync.aligned.m16n8k32.row.col.f16.e4m3.e4m3.f16 "
                     "{%0, %1}, {%2, %3, %4, %5}, {%6, %7}, {%8, %9};\n"
                     : "=r"(dr[0]), "=r"(dr[1])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "r"(cr[0]),
                       "r"(cr[1]));
        for (int j = 0; j < 2; j++) {
            uint32_t *row = d + (g + 8 * j) * 8 + 2 * t;
            row[0] = dr[j] & 0xFFFFu;
            row[1] = dr[j] >> 16;
        }
    } else {
        float cr[4], dr[4];
        for (int i = 0; i < 4; i++)
            cr[i] = __uint_as_float(c[(g + 8 * (i / 2)) * 8 + 2 * t + i % 2]);
        if constexpr (V == Mm::F16F32)
            asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
                         "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%10, %11, %12, %13};\n"
                         : "=f"(dr[0]), "=f"(dr[1]), "=f"(dr[2]), "=f"(dr[3])
                         : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]),
                           "f"(cr[0]), "f"(cr[1]), "f"(cr[2]), "f"(cr[3]));
        else
            asm volatile("mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 "
                         "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%10, %11, %12, %13};\n"
                         : "=f"(dr[0]), "=f"(dr[1]), "=f"(dr[2]), "=f"(dr[3])
                         : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]),
                           "f"(cr[0]), "f"(cr[1]), "f"(cr[2]), "f"(cr[3]));
        for (int i = 0; i < 4; i++)
            d[(g + 8 * (i / 2)) * 8 + 2 * t + i % 2] = __float_as_uint(dr[i]);
    }
#else
    if (threadIdx.x == 0 && blockIdx.x == 0) *p.missing = 1;
#endif
}

} // namespace

// Kernels with C names so `cuobjdump -sass -fun NAME` finds them
// (fp4k_probe_desc.kernel).
extern "C" __global__ void __launch_bounds__(128) fp4k_probe_sm90_wgmma_f16_f32(fp4k_probe_args p) {
    wgmma_tile<Wg::F16F32>(p);
}
extern "C" __global__ void __launch_bounds__(128) fp4k_probe_sm90_wgmma_f16_f16(fp4k_probe_args p) {
    wgmma_tile<Wg::F16F16>(p);
}
extern "C" __global__ void __launch_bounds__(128)
    fp4k_probe_sm90_wgmma_bf16_f32(fp4k_probe_args p) {
    wgmma_tile<Wg::BF16F32>(p);
}
extern "C" __global__ void __launch_bounds__(128)
    fp4k_probe_sm90_wgmma_e4m3_f32(fp4k_probe_args p) {
    wgmma_tile<Wg::E4M3F32>(p);
}
extern "C" __global__ void __launch_bounds__(128)
    fp4k_probe_sm90_wgmma_e4m3_f16(fp4k_probe_args p) {
    wgmma_tile<Wg::E4M3F16>(p);
}
extern "C" __global__ void __launch_bounds__(128) fp4k_probe_mma_f16_f32(fp4k_probe_args p) {
    mma_tile<Mm::F16F32>(p);
}
extern "C" __global__ void __launch_bounds__(128) fp4k_probe_mma_e4m3_f32(fp4k_probe_args p) {
    mma_tile<Mm::E4M3F32>(p);
}
extern "C" __global__ void __launch_bounds__(128) fp4k_probe_mma_e4m3_f16(fp4k_probe_args p) {
    mma_tile<Mm::E4M3F16>(p);
}

typedef void (*probe_kernel)(fp4k_probe_args);

static probe_kernel sm90_kernel(fp4k_probe_instr instr) {
    switch (instr) {
    case FP4K_PROBE_SM90_WGMMA_F16_F32:
        return fp4k_probe_sm90_wgmma_f16_f32;
    case FP4K_PROBE_SM90_WGMMA_F16_F16:
        return fp4k_probe_sm90_wgmma_f16_f16;
    case FP4K_PROBE_SM90_WGMMA_BF16_F32:
        return fp4k_probe_sm90_wgmma_bf16_f32;
    case FP4K_PROBE_SM90_WGMMA_E4M3_F32:
        return fp4k_probe_sm90_wgmma_e4m3_f32;
    case FP4K_PROBE_SM90_WGMMA_E4M3_F16:
        return fp4k_probe_sm90_wgmma_e4m3_f16;
    case FP4K_PROBE_MMA_F16_F32:
        return fp4k_probe_mma_f16_f32;
    case FP4K_PROBE_MMA_E4M3_F32:
        return fp4k_probe_mma_e4m3_f32;
    case FP4K_PROBE_MMA_E4M3_F16:
        return fp4k_probe_mma_e4m3_f16;
    default:
        return nullptr;
    }
}

const void *fp4k_probe_kernel_sm90(fp4k_probe_instr instr) {
    return reinterpret_cast<const void *>(sm90_kernel(instr));
}

cudaError_t fp4k_probe_launch_sm90(fp4k_probe_instr instr, const fp4k_probe_args &a) {
    probe_kernel k = sm90_kernel(instr);
    if (!k) return cudaErrorInvalidValue;
    // wgmma: one tile per 128-thread CTA; mma.sync: four warp tiles per CTA.
    const bool wg = instr <= FP4K_PROBE_SM90_WGMMA_E4M3_F16;
    const int64_t blocks = wg ? a.tiles : (a.tiles + 3) / 4;
    k<<<static_cast<unsigned>(blocks), 128>>>(a);
    return cudaGetLastError();
}
