/* test_io_util.h - helpers for the fp4io tests: a private temporary
 * directory, whole-file read/write, and safetensors images built from a
 * literal header so each test states exactly the bytes it feeds the reader. */
#ifndef FP4_TEST_IO_UTIL_H
#define FP4_TEST_IO_UTIL_H

#define _DEFAULT_SOURCE 1

#include "fp4io.h"
#include "testutil.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tio_dir_buf[512];

/* A fresh directory under $TMPDIR (or /tmp), made on first use. */
static inline const char *tio_dir(void) {
    if (tio_dir_buf[0]) return tio_dir_buf;
    const char *base = getenv("TMPDIR");
    snprintf(tio_dir_buf, sizeof tio_dir_buf, "%s/fp4io-test-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tio_dir_buf)) {
        perror("mkdtemp");
        exit(2);
    }
    return tio_dir_buf;
}

/* dir/name in a rotating set of buffers (enough for one statement). */
static inline const char *tio_path(const char *name) {
    static char bufs[8][640];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", tio_dir(), name);
    return b;
}

/* Removes the directory tree made by tio_dir (one level of subdirectories). */
static inline void tio_rmtree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        size_t n = strlen(dir) + strlen(e->d_name) + 2;
        char *p = malloc(n);
        snprintf(p, n, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) tio_rmtree(p);
        else unlink(p);
        free(p);
    }
    closedir(d);
    rmdir(dir);
}

static inline void tio_cleanup(void) {
    if (tio_dir_buf[0]) tio_rmtree(tio_dir_buf);
}

static inline bool tio_write(const char *path, const void *buf, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fwrite(buf, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

/* Whole file, NUL-terminated; NULL on failure. */
static inline uint8_t *tio_read(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) {
        b[n] = 0;
        *len = (size_t)n;
    }
    return b;
}

static inline void tio_le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* A file image: 8-byte length (= the header's length), the header bytes as
 * given (no padding added), then data_len bytes counting 0, 1, 2, ... */
static inline uint8_t *tio_image_n(const char *header, size_t hlen, size_t data_len, size_t *len) {
    *len = 8 + hlen + data_len;
    uint8_t *b = malloc(*len + 1);
    tio_le64(b, hlen);
    memcpy(b + 8, header, hlen);
    for (size_t i = 0; i < data_len; i++) b[8 + hlen + i] = (uint8_t)i;
    return b;
}

static inline uint8_t *tio_image(const char *header, size_t data_len, size_t *len) {
    return tio_image_n(header, strlen(header), data_len, len);
}

/* A message is usable: non-empty and a single line. */
static inline bool tio_msg_ok(const char *m) {
    return m && *m && !strchr(m, '\n') && !strchr(m, '\r');
}

/* Adds every tensor and metadata entry of f to w, in file order (the
 * rewrite checks compare the result byte for byte with the original). */
static inline void tio_copy_tensors(const fp4_st_file *f, fp4_st_writer *w) {
    for (int64_t i = 0; i < fp4_st_count(f); i++) {
        const fp4_st_tensor *t = fp4_st_at(f, i);
        fp4_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data, t->nbytes);
    }
    for (int64_t i = 0; i < fp4_st_metadata_count(f); i++) {
        const char *k = NULL, *v = NULL;
        fp4_st_metadata_at(f, i, &k, &v);
        fp4_st_writer_set_metadata(w, k, v);
    }
}

#endif
