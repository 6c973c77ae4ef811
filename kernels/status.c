/* status.c - kernels/ report failures through fp4sim's one error channel
 * (fp4ref.h): the status says what happened, fp4_last_error() says why. */
#include "fp4kernels.h"
#include "fp4ref.h"

#include <stdarg.h>
#include <stdio.h>

static fp4_errkind kind_of(fp4k_status st) {
    switch (st) {
    case FP4K_ERR_ARG: return FP4_ERR_INPUT;
    case FP4K_ERR_NO_DEVICE:
    case FP4K_ERR_NOT_BUILT:
    case FP4K_ERR_ARCH: return FP4_ERR_UNSUPPORTED;
    default: return FP4_ERR_INTERNAL;
    }
}

fp4k_status fp4k_fail(fp4k_status st, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fp4_fail_kind(kind_of(st), "%s", buf);
    return st;
}
