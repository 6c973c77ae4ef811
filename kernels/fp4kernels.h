/* fp4kernels.h - public C API of the kernels/ component (CUDA inside).
 *
 * Every entry point validates its arguments and returns a status; nothing is
 * launched on bad input. When fp4sim was built without CUDA, or no GPU is
 * present, the functions return FP4K_ERR_NOT_BUILT / FP4K_ERR_NO_DEVICE. */
#ifndef FP4KERNELS_H
#define FP4KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum fp4k_status {
    FP4K_OK = 0,
    FP4K_ERR_ARG = 1,       /* bad argument (null, negative size, ...) */
    FP4K_ERR_NO_DEVICE = 2, /* no CUDA device visible */
    FP4K_ERR_CUDA = 3,      /* a CUDA call failed; see fp4k_last_error() */
    FP4K_ERR_NOT_BUILT = 4  /* fp4sim was configured without CUDA */
} fp4k_status;

typedef struct fp4k_device_info {
    char name[256];
    int cc_major, cc_minor;
    int driver_version;  /* cudaDriverGetVersion, e.g. 13000 */
    int runtime_version; /* cudaRuntimeGetVersion */
    int sm_count;
    int clock_khz;       /* max SM clock */
} fp4k_device_info;

/* 1 if the library was built with CUDA. */
int fp4k_built_with_cuda(void);
/* Number of visible devices (0 without CUDA or GPU). */
int fp4k_device_count(void);
fp4k_status fp4k_get_device_info(int device, fp4k_device_info *out);
/* One-line description of the last error in this thread. */
const char *fp4k_last_error(void);

/* FP32 -> E2M1 / E4M3 with RNE + satfinite on the GPU (host buffers in and
 * out; one unpacked code per byte). On sm_100a/sm_120a this is the hardware
 * `cvt.rn.satfinite.{e2m1x2,e4m3x2}.f32`; on sm_90 E4M3 is hardware and E2M1
 * is cuda_fp4.h's emulation path. Used to check the device against ref/. */
fp4k_status fp4k_f32_to_e2m1_rne_sat(uint8_t *dst, const float *src, int64_t n);
fp4k_status fp4k_f32_to_e4m3_rne_sat(uint8_t *dst, const float *src, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
