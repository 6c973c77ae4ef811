// probe_rcp.cu - the special-function reciprocal probe: rcp.approx.ftz.f32
// (MUFU.RCP) on every x = 1.m, m in [0, 2^23), against the correctly
// rounded rcp.rn.f32, written as the 2-bit delta table of
// data/mufu-rcp-sm90 (README there: byte j holds mantissas 4j..4j+3,
// mantissa 4j+i in bits 2i..2i+1; 0 equal, 1 approx = RN + 1 ulp, 2 approx =
// RN - 1 ulp, 3 anything else). Also counts, per mantissa, whether
// x * 2^e for e in {-120, -60, -10, -1, 1, 10, 60, 120} gives exactly the
// bits of rcp(x) moved by -e in the exponent (the "exponent invariance" that
// lets a table over [1, 2) stand for every normal input, numerics.md §2.4).
// PTX ISA 9.1 §9.7.3.13 (rcp.approx): "maximum ulp error is 1"; rounding
// unspecified. Runs on every architecture.
#include "probe_common.cuh"

#include <cstdio>
#include <cstring>

namespace {

__device__ __forceinline__ float rcp_approx(float x) {
    float r;
    asm volatile("rcp.approx.ftz.f32 %0, %1;\n" : "=f"(r) : "f"(x));
    return r;
}

__device__ __forceinline__ float rcp_rn(float x) {
    float r;
    asm volatile("rcp.rn.f32 %0, %1;\n" : "=f"(r) : "f"(x));
    return r;
}

__device__ __forceinline__ uint32_t delta_code(uint32_t approx, uint32_t rn) {
    return approx == rn ? 0u : approx == rn + 1 ? 1u : approx == rn - 1 ? 2u : 3u;
}

// Exponent field of an FP32 pattern is that of a normal number.
__device__ __forceinline__ bool is_normal_bits(uint32_t b) {
    const uint32_t e = (b >> 23) & 0xFFu;
    return e != 0 && e != 0xFF;
}

struct rcp_counts {
    unsigned long long code[4], exp_checked, exp_failures;
};

__device__ void exp_invariance(uint32_t xbits, uint32_t rbits, rcp_counts *cnt) {
    const int shifts[8] = {-120, -60, -10, -1, 1, 10, 60, 120};
    unsigned long long checked = 0, failed = 0;
    for (int s = 0; s < 8; s++) {
        const uint32_t xs = xbits + static_cast<uint32_t>(shifts[s] * (1 << 23));
        const uint32_t want = rbits - static_cast<uint32_t>(shifts[s] * (1 << 23));
        if (!is_normal_bits(want)) continue;
        const uint32_t got = __float_as_uint(rcp_approx(__uint_as_float(xs)));
        checked++;
        failed += got != want;
    }
    atomicAdd(&cnt->exp_checked, checked);
    atomicAdd(&cnt->exp_failures, failed);
}

// One thread per output byte: mantissas 4j..4j+3.
__global__ void __launch_bounds__(256) rcp_table_kernel(uint8_t *table, rcp_counts *cnt) {
    const uint32_t j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= FP4K_RCP_TABLE_BYTES) return;
    uint32_t byte = 0;
    for (uint32_t i = 0; i < 4; i++) {
        const uint32_t xbits = 0x3F800000u | (4 * j + i);
        const float x = __uint_as_float(xbits);
        const uint32_t approx = __float_as_uint(rcp_approx(x)), rn = __float_as_uint(rcp_rn(x));
        const uint32_t code = delta_code(approx, rn);
        byte |= code << (2 * i);
        atomicAdd(&cnt->code[code], 1ull);
        exp_invariance(xbits, approx, cnt);
    }
    table[j] = static_cast<uint8_t>(byte);
}

__global__ void rcp_specials_kernel(const uint32_t *in, uint32_t *out, int n) {
    const int i = static_cast<int>(threadIdx.x);
    if (i < n) out[i] = __float_as_uint(rcp_approx(__uint_as_float(in[i])));
}

} // namespace

extern "C" fp4k_status fp4k_probe_rcp(uint8_t *table, fp4k_rcp_stats *stats) {
    if (!table || !stats) return fp4k_fail(FP4K_ERR_ARG, "rcp probe: null argument");
    if (fp4k_device_count() == 0) return fp4k_fail(FP4K_ERR_NO_DEVICE, "no CUDA device visible");
    // +0, -0, +inf, -inf, NaN, 6 (numerics.md §2.4: RN(1/6)), the smallest
    // subnormal (.ftz: treated as 0), 2^-126 (result 2^126, normal).
    static const uint32_t specials[8] = {0x00000000u, 0x80000000u, 0x7F800000u, 0xFF800000u,
                                         0x7FC00000u, 0x40C00000u, 0x00000001u, 0x00800000u};
    memset(stats, 0, sizeof *stats);
    uint8_t *d_table = nullptr;
    rcp_counts *d_cnt = nullptr;
    uint32_t *d_sp = nullptr;
    cudaError_t e = cudaMalloc(&d_table, FP4K_RCP_TABLE_BYTES);
    if (e == cudaSuccess) e = cudaMalloc(&d_cnt, sizeof(rcp_counts));
    if (e == cudaSuccess) e = cudaMalloc(&d_sp, 2 * sizeof specials);
    if (e == cudaSuccess) e = cudaMemset(d_cnt, 0, sizeof(rcp_counts));
    if (e == cudaSuccess) e = cudaMemcpy(d_sp, specials, sizeof specials, cudaMemcpyHostToDevice);
    if (e == cudaSuccess) {
        rcp_table_kernel<<<FP4K_RCP_TABLE_BYTES / 256, 256>>>(d_table, d_cnt);
        rcp_specials_kernel<<<1, 32>>>(d_sp, d_sp + 8, 8);
        e = cudaDeviceSynchronize();
    }
    rcp_counts c;
    if (e == cudaSuccess)
        e = cudaMemcpy(table, d_table, FP4K_RCP_TABLE_BYTES, cudaMemcpyDeviceToHost);
    if (e == cudaSuccess) e = cudaMemcpy(&c, d_cnt, sizeof c, cudaMemcpyDeviceToHost);
    if (e == cudaSuccess)
        e = cudaMemcpy(stats->specials_out, d_sp + 8, sizeof specials, cudaMemcpyDeviceToHost);
    cudaFree(d_table);
    cudaFree(d_cnt);
    cudaFree(d_sp);
    if (e != cudaSuccess) return fp4k_probe_cuda_fail(e, "rcp probe");
    stats->equal = static_cast<int64_t>(c.code[0]);
    stats->plus1 = static_cast<int64_t>(c.code[1]);
    stats->minus1 = static_cast<int64_t>(c.code[2]);
    stats->other = static_cast<int64_t>(c.code[3]);
    stats->exp_checked = static_cast<int64_t>(c.exp_checked);
    stats->exp_failures = static_cast<int64_t>(c.exp_failures);
    memcpy(stats->specials_in, specials, sizeof specials);
    stats->n_specials = 8;
    return FP4K_OK;
}
