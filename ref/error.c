/* error.c - the one error channel of fp4sim (fp4ref.h "Errors"): a
 * thread-local one-line message and its kind. */
#include "fp4ref.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum { MSG_MAX = 1024 };

static _Thread_local char g_msg[MSG_MAX];
static _Thread_local fp4_errkind g_kind;

static const char *const k_kind_names[FP4_ERR_KIND_COUNT] = {
    "none", "input", "io", "no-memory", "unsupported", "internal",
};

const char *fp4_last_error(void) { return g_msg; }
fp4_errkind fp4_last_error_kind(void) { return g_kind; }

const char *fp4_errkind_name(fp4_errkind k) {
    return (unsigned)k < FP4_ERR_KIND_COUNT ? k_kind_names[k] : "?";
}

void fp4_error_clear(void) {
    g_msg[0] = '\0';
    g_kind = FP4_ERR_NONE;
}

/* Stores text built elsewhere (never g_msg itself) as the message: one line,
 * so a message can always be printed after "fp4sim: ..." on stderr. */
static int store(fp4_errkind kind, const char *text) {
    size_t i = 0;
    for (; text[i] && i + 1 < MSG_MAX; i++)
        g_msg[i] = (text[i] == '\n' || text[i] == '\r') ? ' ' : text[i];
    g_msg[i] = '\0';
    g_kind = kind;
    return -1;
}

int fp4_fail(const char *fmt, ...) {
    char buf[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return store(FP4_ERR_INPUT, buf);
}

int fp4_fail_kind(fp4_errkind kind, const char *fmt, ...) {
    char buf[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return store(kind, buf);
}

int fp4_fail_wrap(const char *fmt, ...) {
    char buf[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    size_t used = n < 0 ? 0 : (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1;
    if (g_msg[0] && used + 3 < sizeof buf) { /* ": " + the old message, truncated */
        size_t room = sizeof buf - used - 3, len = strlen(g_msg);
        memcpy(buf + used, ": ", 2);
        memcpy(buf + used + 2, g_msg, len < room ? len : room);
        buf[used + 2 + (len < room ? len : room)] = '\0';
    }
    return store(g_kind == FP4_ERR_NONE ? FP4_ERR_INTERNAL : g_kind, buf);
}
