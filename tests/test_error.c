/* test_error.c - the one error channel (fp4ref.h "Errors"): messages built
 * from the previous message (the self-formatting bug of issue 11), wrapping,
 * kinds, one-line messages, per-thread isolation, and the kinds the I/O
 * layer and the kernels report. */
#include "fp4kernels.h"
#include "fp4ref.h"
#include "testutil.h"

#include <pthread.h>
#include <string.h>

static void test_self_format(void) {
    fp4_fail("inner %d", 42);
    /* Formatting the buffer into itself was undefined behaviour and garbled
     * the text (model/backend_quant.c did it in four places). */
    fp4_fail("outer: %s", fp4_last_error());
    fp4t_check(strcmp(fp4_last_error(), "outer: inner 42") == 0, "self-format gave '%s'",
               fp4_last_error());
    fp4_fail("%s and %s", fp4_last_error(), fp4_last_error());
    fp4t_check(strcmp(fp4_last_error(), "outer: inner 42 and outer: inner 42") == 0,
               "double self-format gave '%s'", fp4_last_error());
}

static void test_wrap(void) {
    fp4_fail_kind(FP4_ERR_IO, "x.safetensors: cannot open");
    fp4_fail_wrap("model: tensor '%s'", "w");
    fp4t_check(strcmp(fp4_last_error(), "model: tensor 'w': x.safetensors: cannot open") == 0,
               "wrap gave '%s'", fp4_last_error());
    fp4t_check(fp4_last_error_kind() == FP4_ERR_IO, "wrap changed the kind to %s",
               fp4_errkind_name(fp4_last_error_kind()));
    fp4_error_clear();
    fp4_fail_wrap("nothing before");
    fp4t_check(strcmp(fp4_last_error(), "nothing before") == 0 &&
                   fp4_last_error_kind() == FP4_ERR_INTERNAL,
               "wrap of nothing gave '%s' (%s)", fp4_last_error(),
               fp4_errkind_name(fp4_last_error_kind()));
    /* A long message is truncated, never overflowed. */
    char big[3000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    fp4_fail("%s", big);
    fp4_fail_wrap("%s", big);
    fp4t_check(strlen(fp4_last_error()) < 1024, "message of %zu bytes", strlen(fp4_last_error()));
}

static void test_one_line_and_kind(void) {
    fp4t_check(fp4_fail("a\nb\rc") == -1, "fp4_fail returns -1");
    fp4t_check(strcmp(fp4_last_error(), "a b c") == 0, "newlines kept: '%s'", fp4_last_error());
    fp4t_check(fp4_last_error_kind() == FP4_ERR_INPUT, "fp4_fail kind is %s",
               fp4_errkind_name(fp4_last_error_kind()));
    fp4_error_clear();
    fp4t_check(fp4_last_error()[0] == '\0' && fp4_last_error_kind() == FP4_ERR_NONE, "clear");
    for (int k = 0; k < FP4_ERR_KIND_COUNT; k++)
        fp4t_check(strcmp(fp4_errkind_name((fp4_errkind)k), "?") != 0, "kind %d has a name", k);
}

/* The I/O layer reports through the same channel. A path the user named
 * that cannot be opened is bad input (CLI exit 2), as docs/cli.md says. */
static void test_io_kind(void) {
    fp4_st_file *f = NULL;
    fp4_error_clear();
    fp4_st_status st = fp4_st_open("/nonexistent-dir/x.safetensors", &f);
    fp4t_check(st == FP4_ST_E_IO, "open of a missing file: status %s", fp4_st_status_name(st));
    fp4t_check(strstr(fp4_last_error(), "/nonexistent-dir/x.safetensors") != NULL,
               "message names the path: '%s'", fp4_last_error());
    fp4t_check(fp4_last_error_kind() == FP4_ERR_INPUT, "missing file: kind %s",
               fp4_errkind_name(fp4_last_error_kind()));
    st = fp4_st_open("/", &f);
    fp4t_check(st == FP4_ST_E_IO && fp4_last_error_kind() == FP4_ERR_INPUT &&
                   strstr(fp4_last_error(), "regular file"),
               "a directory: status %s, kind %s, '%s'", fp4_st_status_name(st),
               fp4_errkind_name(fp4_last_error_kind()), fp4_last_error());
    static const uint8_t junk[16] = {4, 0, 0, 0, 0, 0, 0, 0, '[', ']', ' ', ' '};
    st = fp4_st_open_memory(junk, sizeof junk, "junk", &f);
    fp4t_check(st != FP4_ST_OK && fp4_last_error_kind() == FP4_ERR_INPUT,
               "malformed header: kind %s", fp4_errkind_name(fp4_last_error_kind()));
}

/* Kernels report through it too (with or without CUDA and a GPU). */
static void test_kernels_kind(void) {
    fp4_error_clear();
    uint8_t d[4];
    const float s[4] = {0};
    fp4k_status st = fp4k_f32_to_e2m1_rne_sat(d, s, -1);
    fp4t_check(st != FP4K_OK && fp4_last_error()[0] != '\0', "kernel error has a message");
    if (!fp4k_built_with_cuda() || fp4k_device_count() == 0) {
        fp4_error_clear();
        st = fp4k_f32_to_e2m1_rne_sat(d, s, 4);
        fp4t_check(st != FP4K_OK && fp4_last_error_kind() == FP4_ERR_UNSUPPORTED,
                   "no GPU: status %d, kind %s, '%s'", (int)st,
                   fp4_errkind_name(fp4_last_error_kind()), fp4_last_error());
    }
}

static void *thread_body(void *arg) {
    fp4_fail("thread %d", *(int *)arg);
    return NULL;
}

static void test_thread_local(void) {
    fp4_fail("main");
    pthread_t t;
    int id = 7;
    pthread_create(&t, NULL, thread_body, &id);
    pthread_join(t, NULL);
    fp4t_check(strcmp(fp4_last_error(), "main") == 0, "another thread's error leaked: '%s'",
               fp4_last_error());
}

int main(void) {
    fp4t_begin("test_error");
    test_self_format();
    test_wrap();
    test_one_line_and_kind();
    test_io_kind();
    test_kernels_kind();
    test_thread_local();
    return fp4t_end();
}
