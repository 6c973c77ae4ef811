/* error.c - the thread-local one-line error message shared by ref/. */
#include "fp4ref.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char g_msg[512];

const char *fp4_last_error(void) { return g_msg; }

int fp4_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    va_end(ap);
    return -1;
}
