/* fuzz_safetensors.c - libFuzzer harness for the safetensors reader.
 *
 * Build (clang only): cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang
 *   -DFP4SIM_FUZZ=ON -DFP4SIM_CUDA=OFF && cmake --build build-fuzz --target fuzz_safetensors
 * Run: build-fuzz/tests/fuzz_safetensors -dict=tests/fuzz/safetensors.dict
 *   -max_len=4096 NEW_CORPUS_DIR tests/fuzz/corpus_safetensors
 * (docs/io.md). The reader's sources are compiled into this binary with
 * -fsanitize=fuzzer,address,undefined, so coverage guides the search and any
 * out-of-bounds read, leak or undefined behaviour is a crash. On top of the
 * sanitizers, the invariants a consumer relies on abort when broken. */
#include "fp4io.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void require(int ok, const char *what) {
    if (ok) return;
    fprintf(stderr, "invariant broken: %s (message: %s)\n", what, fp4_last_error());
    abort();
}

/* Tensors lie inside the input, tile the data area, and are found by name. */
static void check_file(const fp4_st_file *f, const uint8_t *data, size_t size) {
    int64_t pos = 8 + fp4_st_header_len(f);
    volatile uint8_t sink = 0;
    for (int64_t i = 0; i < fp4_st_count(f); i++) {
        const fp4_st_tensor *t = fp4_st_at(f, i);
        const uint8_t *d = t->data;
        int64_t numel = 0, nbytes = 0;
        require(fp4_st_tensor_size(t->dtype, t->ndim, t->shape, &numel, &nbytes) == FP4_ST_OK &&
                    numel == t->numel && nbytes == t->nbytes, "size rules");
        require(t->offset == pos && d == data + pos && (size_t)(pos + t->nbytes) <= size,
                "tensor inside the input, in order");
        require(fp4_st_find(f, t->name) == t, "lookup by name");
        if (t->nbytes) sink ^= d[0] ^ d[t->nbytes - 1];
        pos += t->nbytes;
    }
    require((size_t)pos == size, "data area tiled");
    for (int64_t i = 0; i < fp4_st_metadata_count(f); i++) {
        const char *k = NULL, *v = NULL;
        require(fp4_st_metadata_at(f, i, &k, &v) == 0 && fp4_st_metadata(f, k) == v, "metadata");
    }
    (void)sink;
}

/* Whatever the reader accepts, the writer reproduces and the reader rereads. */
static void check_roundtrip(const fp4_st_file *f) {
    fp4_st_writer *w = NULL;
    require(fp4_st_writer_create(NULL, &w) == FP4_ST_OK, "writer");
    for (int64_t i = 0; i < fp4_st_count(f); i++) {
        const fp4_st_tensor *t = fp4_st_at(f, i);
        require(fp4_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data, t->nbytes) ==
                    FP4_ST_OK, "writer accepts a read tensor");
    }
    for (int64_t i = 0; i < fp4_st_metadata_count(f); i++) {
        const char *k = NULL, *v = NULL;
        fp4_st_metadata_at(f, i, &k, &v);
        require(fp4_st_writer_set_metadata(w, k, v) == FP4_ST_OK, "writer accepts metadata");
    }
    uint8_t *out = NULL;
    size_t len = 0;
    require(fp4_st_writer_finish_memory(w, &out, &len) == FP4_ST_OK, "serialize");
    fp4_st_file *g = NULL;
    require(fp4_st_open_memory(out, len, "rewrite", &g) == FP4_ST_OK, "reread");
    require(fp4_st_count(g) == fp4_st_count(f), "same tensors");
    for (int64_t i = 0; i < fp4_st_count(f); i++) {
        const fp4_st_tensor *a = fp4_st_at(f, i), *b = fp4_st_find(g, a->name);
        require(b && b->dtype == a->dtype && b->nbytes == a->nbytes &&
                    (a->nbytes == 0 || memcmp(a->data, b->data, (size_t)a->nbytes) == 0),
                "same tensor after round trip");
    }
    fp4_st_close(g);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fp4_st_file *f = NULL;
    fp4_st_status st = fp4_st_open_memory(data, size, "fuzz-input", &f);
    if (st != FP4_ST_OK) {
        const char *m = fp4_last_error();
        require(f == NULL, "no handle on failure");
        require(m[0] && !strchr(m, '\n') && strncmp(m, "fuzz-input: ", 12) == 0,
                "one-line message naming the input");
        return 0;
    }
    check_file(f, data, size);
    check_roundtrip(f);
    fp4_st_close(f);
    return 0;
}
