/* fp4io_internal.h - helpers shared by fp4io.c, fp4io_write.c and
 * fp4io_ckpt.c. Not installed, not part of the API. */
#ifndef FP4IO_INTERNAL_H
#define FP4IO_INTERNAL_H

#include "fp4io.h"

#include <cjson/cJSON.h>
#include <stdarg.h>

/* Sets the thread's message to "file: tensor 'name': <fmt>" (file and tensor
 * may be NULL) and returns st. Names are quoted with control bytes escaped
 * and long ones shortened, so the message stays one line. */
fp4_st_status fp4io_fail(fp4_st_status st, const char *file, const char *tensor,
                         const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* FP4_ST_E_IO for a path that cannot be used: kind FP4_ERR_INPUT when errno
 * `err` says the path itself is bad (missing, not a directory, permission,
 * symlink loop, ...; 0 for "not a regular file"), FP4_ERR_IO otherwise. */
fp4_st_status fp4io_fail_path(const char *path, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Appends `s` to buf (capacity n) as a quoted, escaped, shortened name. */
void fp4io_quote(char *buf, size_t n, const char *s);

/* fp4_st_tensor_size with the file and tensor named in its messages. */
fp4_st_status fp4io_tensor_size(fp4_st_dtype d, int32_t ndim, const int64_t *shape,
                                int64_t *numel, int64_t *nbytes, const char *file,
                                const char *tensor);

/* Strict UTF-8 (no overlongs, surrogates or code points above U+10FFFF).
 * On failure *bad is the offset of the first bad byte. */
bool fp4io_utf8_valid(const uint8_t *s, size_t n, size_t *bad);

/* Parses n bytes of JSON text that must be an object: strict UTF-8, no control
 * bytes, no \u0000 (then cJSON). Failures use `code`; `what` names the text
 * ("header", "index") in the message. */
fp4_st_status fp4io_json_parse(fp4_st_status code, const char *file, const char *what,
                               const uint8_t *s, size_t n, cJSON **root);
/* "null", "boolean", "number", "string", "array", "object". */
const char *fp4io_json_type(const cJSON *j);
/* A non-negative integer <= 2^53 held exactly; else *why says what it is. */
bool fp4io_json_uint(const cJSON *j, int64_t *out, const char **why);

char *fp4io_strdup(const char *s);
/* dir + "/" + rel (dir "" or NULL: rel alone). */
char *fp4io_path_join(const char *dir, const char *rel);
/* Directory part of a path ("." when there is none). */
char *fp4io_dirname(const char *path);
/* Reads a whole regular file of at most `max` bytes into a NUL-terminated
 * malloc'ed buffer. */
fp4_st_status fp4io_read_file(const char *path, size_t max, char **buf, size_t *len);
/* Writes `len` bytes through a temp file in the same directory + rename. The
 * callback streams the content; it returns 0 or an errno value. */
typedef int (*fp4io_emit_fn)(int fd, void *ctx);
fp4_st_status fp4io_write_atomic(const char *path, fp4io_emit_fn emit, void *ctx);
/* write() all of it, retrying on EINTR / short writes; 0 or errno. */
int fp4io_write_all(int fd, const void *buf, size_t len);

#endif
