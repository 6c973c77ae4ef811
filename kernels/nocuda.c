/* nocuda.c - the kernels/ API when fp4sim is configured without CUDA: every
 * call reports FP4K_ERR_NOT_BUILT so callers (and GPU tests) can say so. */
#include "fp4kernels.h"

static fp4k_status not_built(void) {
    return fp4k_fail(FP4K_ERR_NOT_BUILT, "fp4sim was built without CUDA (no nvcc at configure "
                                         "time): GPU kernels are not available");
}
int fp4k_built_with_cuda(void) { return 0; }
int fp4k_device_count(void) { return 0; }
fp4k_status fp4k_get_device_info(int device, fp4k_device_info *out) {
    (void)device;
    (void)out;
    return not_built();
}
fp4k_status fp4k_f32_to_e2m1_rne_sat(uint8_t *dst, const float *src, int64_t n) {
    (void)dst, (void)src, (void)n;
    return not_built();
}
fp4k_status fp4k_f32_to_e4m3_rne_sat(uint8_t *dst, const float *src, int64_t n) {
    (void)dst, (void)src, (void)n;
    return not_built();
}
fp4k_status fp4k_probe_mma(const fp4k_probe_req *req, uint32_t *d) {
    (void)req, (void)d;
    return not_built();
}
fp4k_status fp4k_probe_rcp(uint8_t *table, fp4k_rcp_stats *stats) {
    (void)table, (void)stats;
    return not_built();
}
