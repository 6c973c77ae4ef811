/* fp4io.h - tensor file I/O for fp4sim: a bounds-checked safetensors reader
 * and writer, and sharded checkpoints (model.safetensors.index.json).
 *
 * Format (huggingface/safetensors; see docs/io.md for the rules we enforce):
 *   u64 little-endian header length N | N bytes of UTF-8 JSON | data area.
 *   JSON: {"__metadata__": {str: str}?, name: {"dtype": "F32", "shape": [..],
 *          "data_offsets": [begin, end]}, ...}, offsets relative to the data
 *   area. "F4" (torch float4_e2m1fn_x2) counts 4-bit elements in the shape.
 *
 * Reading maps the file read-only and parses only the header: tensor data is
 * paged in when touched, so a 671B checkpoint can be streamed shard by shard.
 * Every failure returns a status code and leaves a one-line message naming
 * the file (and the tensor where relevant) in fp4sim's one error channel,
 * fp4_last_error() (kind FP4_ERR_IO, FP4_ERR_NOMEM or FP4_ERR_INPUT).
 *
 * Conventions follow fp4ref.h: explicit widths, int64_t sizes and counts,
 * nothing global except the per-thread message. All names start fp4_st_.
 */
/* The component's one header first: it includes this one, in dependency order. */
#include "fp4ref.h"
#ifndef FP4IO_H
#define FP4IO_H


#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Most dimensions a tensor may have here (the format itself sets no limit;
 * no checkpoint fp4sim reads needs more than 4). */
#define FP4_ST_MAX_DIMS 8
/* Largest header accepted: the reference library's MAX_HEADER_SIZE. */
#define FP4_ST_MAX_HEADER 100000000
/* Largest integer accepted in "shape" and "data_offsets": 2^53, the last
 * integer a JSON double (cJSON's number type) holds exactly. */
#define FP4_ST_MAX_JSON_INT 9007199254740992LL

typedef enum fp4_st_status {
    FP4_ST_OK = 0,
    FP4_ST_E_IO,        /* open/stat/mmap/read/write/rename failed (missing file too) */
    FP4_ST_E_TRUNCATED, /* shorter than 8 bytes, or header length past the end */
    FP4_ST_E_HEADER_LEN,/* header length 0, or above FP4_ST_MAX_HEADER */
    FP4_ST_E_JSON,      /* header not UTF-8, not JSON, or not a JSON object */
    FP4_ST_E_ENTRY,     /* tensor entry not an object, field missing/duplicated/mistyped */
    FP4_ST_E_DTYPE,     /* unknown dtype string */
    FP4_ST_E_SHAPE,     /* dim negative/non-integer/too large, > 8 dims, count overflow */
    FP4_ST_E_OFFSETS,   /* data_offsets not [begin <= end] inside the data area */
    FP4_ST_E_SIZE,      /* end - begin != bytes the dtype and shape need; F4 odd last dim */
    FP4_ST_E_OVERLAP,   /* two tensors share bytes */
    FP4_ST_E_GAP,       /* bytes of the data area that belong to no tensor */
    FP4_ST_E_DUPLICATE, /* a name appears twice */
    FP4_ST_E_METADATA,  /* __metadata__ not an object of string -> string */
    FP4_ST_E_NOT_FOUND, /* no such tensor / shard / file in a checkpoint */
    FP4_ST_E_INDEX,     /* malformed model.safetensors.index.json */
    FP4_ST_E_MISMATCH,  /* tensor exists but dtype/shape differ from what was expected */
    FP4_ST_E_ARG,       /* bad argument from the caller */
    FP4_ST_E_NOMEM,
    FP4_ST_STATUS_COUNT
} fp4_st_status;

/* "ok", "io", "truncated", ... ; "?" for an out-of-range value. */
const char *fp4_st_status_name(fp4_st_status s);

/* ---------------------------------------------------------------------------
 * Dtypes, in the reference library's declaration order: the writer lays
 * tensors out by descending enum value, then by name, exactly as it does.
 * ------------------------------------------------------------------------- */
typedef enum fp4_st_dtype {
    FP4_ST_BOOL = 0,
    FP4_ST_F4,          /* E2M1, two per byte, element 2j in the low nibble */
    FP4_ST_F6_E2M3,     /* 6-bit, packed; element count must fill whole bytes */
    FP4_ST_F6_E3M2,
    FP4_ST_U8,
    FP4_ST_I8,
    FP4_ST_F8_E5M2,
    FP4_ST_F8_E4M3,     /* float8_e4m3fn */
    FP4_ST_F8_E8M0,     /* float8_e8m0fnu */
    FP4_ST_F8_E4M3FNUZ,
    FP4_ST_F8_E5M2FNUZ,
    FP4_ST_I16,
    FP4_ST_U16,
    FP4_ST_F16,
    FP4_ST_BF16,
    FP4_ST_I32,
    FP4_ST_U32,
    FP4_ST_F32,
    FP4_ST_C64,         /* complex64: two F32 */
    FP4_ST_F64,
    FP4_ST_I64,
    FP4_ST_U64,
    FP4_ST_DTYPE_COUNT
} fp4_st_dtype;

/* Exact, case-sensitive header spelling ("F8_E4M3"). 0 ok, -1 unknown. */
int fp4_st_dtype_from_name(const char *name, fp4_st_dtype *out);
/* Header spelling; NULL for an out-of-range value. */
const char *fp4_st_dtype_name(fp4_st_dtype d);
/* Bits per element: 4, 6, 8, 16, 32 or 64; 0 for an out-of-range value. */
int fp4_st_dtype_bits(fp4_st_dtype d);
/* Element count and byte size of a tensor under the reader's rules (dims in
 * [0, 2^53], no int64 overflow, whole bytes, F4 last dim even). FP4_ST_OK or
 * FP4_ST_E_SHAPE / FP4_ST_E_SIZE / FP4_ST_E_ARG with a message. */
fp4_st_status fp4_st_tensor_size(fp4_st_dtype d, int32_t ndim, const int64_t *shape,
                                 int64_t *numel, int64_t *nbytes);

/* ---------------------------------------------------------------------------
 * Reading one file
 * ------------------------------------------------------------------------- */

typedef struct fp4_st_tensor {
    const char *name;
    fp4_st_dtype dtype;
    const char *dtype_name;         /* header spelling, e.g. "BF16" */
    int32_t ndim;                   /* 0 for a scalar */
    int64_t shape[FP4_ST_MAX_DIMS]; /* entries past ndim are 0; F4 counts 4-bit elements */
    int64_t numel;                  /* product of shape; 1 for a scalar */
    int64_t nbytes;
    int64_t offset;                 /* of the first byte, from the start of the file */
    /* Into the read-only mapping, valid until the file is closed. Little-endian,
     * C order. Aligned to the element size in files the reference library (or
     * fp4_st_writer) wrote; other writers may leave it unaligned. */
    const void *data;
} fp4_st_tensor;

typedef struct fp4_st_file fp4_st_file;

/* Maps `path` read-only and validates the whole header (not the data). */
fp4_st_status fp4_st_open(const char *path, fp4_st_file **out);
/* Same rules on a caller-owned buffer that must outlive the handle; `label`
 * names it in messages (NULL: "<memory>"). */
fp4_st_status fp4_st_open_memory(const void *buf, size_t len, const char *label,
                                 fp4_st_file **out);
void fp4_st_close(fp4_st_file *f); /* NULL is fine */

const char *fp4_st_path(const fp4_st_file *f);  /* path or label */
int64_t fp4_st_count(const fp4_st_file *f);     /* number of tensors */
int64_t fp4_st_header_len(const fp4_st_file *f); /* N, padding included */
int64_t fp4_st_data_len(const fp4_st_file *f);   /* bytes after the header */
/* Tensor i in file order (ascending data offset; the header's order for files
 * the reference library wrote); NULL when i is out of range. */
const fp4_st_tensor *fp4_st_at(const fp4_st_file *f, int64_t i);
/* By name (binary search); NULL if absent, and no message is set. */
const fp4_st_tensor *fp4_st_find(const fp4_st_file *f, const char *name);
/* By name, with a message naming file and tensor when absent. */
fp4_st_status fp4_st_get(const fp4_st_file *f, const char *name, const fp4_st_tensor **out);
/* Checks dtype and shape (a dim of -1 matches any; ndim -1 skips the shape).
 * FP4_ST_E_MISMATCH with "where: tensor 'x': expected BF16 [7168], found F32 [256]"
 * (`where` names the file or checkpoint; NULL for none). */
fp4_st_status fp4_st_expect(const fp4_st_tensor *t, const char *where, fp4_st_dtype dtype,
                            int32_t ndim, const int64_t *shape);

/* __metadata__: value for key, or NULL. Entries are sorted by key. */
const char *fp4_st_metadata(const fp4_st_file *f, const char *key);
int64_t fp4_st_metadata_count(const fp4_st_file *f);
/* 0 ok, -1 out of range. */
int fp4_st_metadata_at(const fp4_st_file *f, int64_t i, const char **key, const char **value);

/* Paging hints for streaming: WILLNEED starts reading a tensor ahead of use;
 * DONTNEED drops its pages from this process (they are re-read from the file
 * if touched again; pages shared with neighbouring tensors go too). No-op for
 * memory-opened files. */
typedef enum fp4_st_advice { FP4_ST_WILLNEED = 0, FP4_ST_DONTNEED } fp4_st_advice;
void fp4_st_advise(const fp4_st_file *f, const fp4_st_tensor *t, fp4_st_advice advice);

/* ---------------------------------------------------------------------------
 * Writing one file. Tensors are laid out as the reference library does:
 * descending dtype (enum order above), then ascending name (bytewise); the
 * header is compact JSON with "__metadata__" first (keys sorted), then the
 * tensors in layout order, padded with spaces to a multiple of 8, so every
 * tensor's data is aligned to its element size. A file is written to a
 * temporary name in the same directory, fsync'ed and renamed over `path`.
 * ------------------------------------------------------------------------- */

typedef struct fp4_st_writer fp4_st_writer;

/* `path` may be NULL for a writer that only serializes to memory. */
fp4_st_status fp4_st_writer_create(const char *path, fp4_st_writer **out);
/* Adds a tensor whose `nbytes` must equal what dtype and shape need.
 * fp4_st_writer_add keeps only the pointer: `data` must stay valid and
 * unchanged until finish/abort. _copy copies it now. data may be NULL when
 * nbytes is 0. Names must be valid UTF-8 and not "__metadata__"; a repeated
 * name is reported by finish. */
fp4_st_status fp4_st_writer_add(fp4_st_writer *w, const char *name, fp4_st_dtype dtype,
                                int32_t ndim, const int64_t *shape, const void *data,
                                int64_t nbytes);
fp4_st_status fp4_st_writer_add_copy(fp4_st_writer *w, const char *name, fp4_st_dtype dtype,
                                     int32_t ndim, const int64_t *shape, const void *data,
                                     int64_t nbytes);
/* A __metadata__ entry (both copied, valid UTF-8); a repeated key replaces. */
fp4_st_status fp4_st_writer_set_metadata(fp4_st_writer *w, const char *key, const char *value);
/* Writes the file and frees the writer (also on failure, leaving no file). */
fp4_st_status fp4_st_writer_finish(fp4_st_writer *w);
/* Serializes to a malloc'ed buffer (*buf, *len; free() it) and frees the writer. */
fp4_st_status fp4_st_writer_finish_memory(fp4_st_writer *w, uint8_t **buf, size_t *len);
void fp4_st_writer_abort(fp4_st_writer *w); /* frees without writing; NULL is fine */

/* Writes a model.safetensors.index.json as transformers does (json.dumps
 * with indent=2, sort_keys=True, ASCII escapes, trailing newline):
 * {"metadata": {"total_parameters"?: P, "total_size": S}, "weight_map":
 * {name: shard}}. Negative total_parameters / total_size are left out.
 * Atomic like the file writer. */
fp4_st_status fp4_st_write_index(const char *path, int64_t n, const char *const *names,
                                 const char *const *shards, int64_t total_size,
                                 int64_t total_parameters);

/* ---------------------------------------------------------------------------
 * Checkpoints: a model.safetensors.index.json (weight_map: tensor name ->
 * shard file relative to the index), a directory holding one, a directory
 * holding a single model.safetensors, or one .safetensors file. Shards are
 * opened (mapped, header validated) on first use. fp4_st_ckpt_get and
 * fp4_st_ckpt_shard may be called from several threads at once.
 * ------------------------------------------------------------------------- */

typedef struct fp4_st_ckpt fp4_st_ckpt;

fp4_st_status fp4_st_ckpt_open(const char *path, fp4_st_ckpt **out);
void fp4_st_ckpt_close(fp4_st_ckpt *c); /* NULL is fine */

const char *fp4_st_ckpt_path(const fp4_st_ckpt *c); /* the index or the single file */
int64_t fp4_st_ckpt_count(const fp4_st_ckpt *c);
/* Tensor names in ascending bytewise order; NULL when out of range. */
const char *fp4_st_ckpt_name(const fp4_st_ckpt *c, int64_t i);
bool fp4_st_ckpt_has(const fp4_st_ckpt *c, const char *name);
/* Index of the shard holding `name`, or -1. */
int64_t fp4_st_ckpt_shard_of(const fp4_st_ckpt *c, const char *name);
int64_t fp4_st_ckpt_nshards(const fp4_st_ckpt *c);
/* Shard file path (index directory joined with the weight_map value). */
const char *fp4_st_ckpt_shard_path(const fp4_st_ckpt *c, int64_t i);
/* Opens shard i if needed. */
fp4_st_status fp4_st_ckpt_shard(fp4_st_ckpt *c, int64_t i, const fp4_st_file **out);
/* Finds a tensor, opening its shard if needed. Errors name the tensor, the
 * shard and the index: not in the index, shard missing or malformed, or the
 * shard lacks a tensor the index puts there. */
fp4_st_status fp4_st_ckpt_get(fp4_st_ckpt *c, const char *name, const fp4_st_tensor **out);
/* Opens every shard and checks that index and shards agree both ways. */
fp4_st_status fp4_st_ckpt_verify(fp4_st_ckpt *c);
/* Unmaps every open shard (pointers from earlier gets become invalid); they
 * reopen on demand. Not to be called concurrently with gets. */
void fp4_st_ckpt_release(fp4_st_ckpt *c);
/* The index's metadata.total_size, or -1 if absent (or a single file). */
int64_t fp4_st_ckpt_total_size(const fp4_st_ckpt *c);

#ifdef __cplusplus
}
#endif
#endif /* FP4IO_H */
