// convert.cu - device conversions used to check a GPU's cvt against ref/.
#include "fp4kernels.h"
#include "probe_common.cuh"

#include <cuda_fp4.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>

static fp4k_status cuda_fail(cudaError_t e, const char *what) {
    return fp4k_fail(FP4K_ERR_CUDA, "%s: %s", what, cudaGetErrorString(e));
}
extern "C" int fp4k_built_with_cuda(void) { return 1; }

extern "C" int fp4k_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;
    return n;
}

extern "C" fp4k_status fp4k_get_device_info(int device, fp4k_device_info *out) {
    if (!out || device < 0) return fp4k_fail(FP4K_ERR_ARG, "device info: bad argument");
    if (device >= fp4k_device_count())
        return fp4k_fail(FP4K_ERR_NO_DEVICE, "no CUDA device %d (found %d)", device,
                         fp4k_device_count());
    cudaDeviceProp p;
    cudaError_t e = cudaGetDeviceProperties(&p, device);
    if (e != cudaSuccess) return cuda_fail(e, "cudaGetDeviceProperties");
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", p.name);
    out->cc_major = p.major;
    out->cc_minor = p.minor;
    out->sm_count = p.multiProcessorCount;
    cudaDeviceGetAttribute(&out->clock_khz, cudaDevAttrClockRate, device);
    cudaDriverGetVersion(&out->driver_version);
    cudaRuntimeGetVersion(&out->runtime_version);
    return FP4K_OK;
}

// Two elements per thread so the pair conversion (x.x -> low nibble) is used,
// exactly as CUTLASS's hardware path does.
__global__ void k_f32_to_e2m1(uint8_t *dst, const float *src, int64_t n) {
    int64_t i = 2 * ((int64_t)blockIdx.x * blockDim.x + threadIdx.x);
    if (i >= n) return;
    float2 v = make_float2(src[i], i + 1 < n ? src[i + 1] : 0.0f);
    __nv_fp4x2_storage_t p = __nv_cvt_float2_to_fp4x2(v, __NV_E2M1, cudaRoundNearest);
    dst[i] = (uint8_t)(p & 0xF);
    if (i + 1 < n) dst[i + 1] = (uint8_t)(p >> 4);
}

__global__ void k_f32_to_e4m3(uint8_t *dst, const float *src, int64_t n) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    dst[i] = (uint8_t)__nv_cvt_float_to_fp8(src[i], __NV_SATFINITE, __NV_E4M3);
}

template <typename Launch>
static fp4k_status run_convert(uint8_t *dst, const float *src, int64_t n, Launch launch) {
    if (n < 0 || (n > 0 && (!dst || !src))) return fp4k_fail(FP4K_ERR_ARG, "convert: bad argument");
    if (n == 0) return FP4K_OK;
    if (fp4k_device_count() == 0) return fp4k_fail(FP4K_ERR_NO_DEVICE, "no CUDA device visible");
    float *d_src = nullptr;
    uint8_t *d_dst = nullptr;
    cudaError_t e = cudaMalloc(&d_src, (size_t)n * sizeof(float));
    if (e != cudaSuccess) return cuda_fail(e, "cudaMalloc");
    e = cudaMalloc(&d_dst, (size_t)n);
    if (e == cudaSuccess) e = cudaMemcpy(d_src, src, (size_t)n * sizeof(float), cudaMemcpyHostToDevice);
    if (e == cudaSuccess) {
        launch(d_dst, d_src, n);
        e = cudaGetLastError();
    }
    if (e == cudaSuccess) e = cudaMemcpy(dst, d_dst, (size_t)n, cudaMemcpyDeviceToHost);
    cudaFree(d_src);
    cudaFree(d_dst);
    return e == cudaSuccess ? FP4K_OK : cuda_fail(e, "convert kernel");
}

extern "C" fp4k_status fp4k_f32_to_e2m1_rne_sat(uint8_t *dst, const float *src, int64_t n) {
    return run_convert(dst, src, n, [](uint8_t *d, const float *s, int64_t m) {
        int64_t pairs = (m + 1) / 2;
        k_f32_to_e2m1<<<(unsigned)((pairs + 255) / 256), 256>>>(d, s, m);
    });
}

extern "C" fp4k_status fp4k_f32_to_e4m3_rne_sat(uint8_t *dst, const float *src, int64_t n) {
    return run_convert(dst, src, n, [](uint8_t *d, const float *s, int64_t m) {
        k_f32_to_e4m3<<<(unsigned)((m + 255) / 256), 256>>>(d, s, m);
    });
}
