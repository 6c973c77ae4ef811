/* test_io_shared_fixture.c - the full tiny DeepSeek-V3 fixture, data
 * included (shared/fixtures/hf-deepseek-v3-tiny, or $FP4SIM_FIXTURES/...):
 * opened as a sharded checkpoint through the mmap path, verified, every file
 * rewritten byte for byte by the writer, and the recorded embedding output
 * checked against an embedding-table lookup through the reader.
 * Exits 77 (skipped) when the fixture is not there. */
#include "test_io_util.h"

#include <math.h>

static char g_dir[600];

static const char *fixture(const char *file) {
    static char p[800];
    snprintf(p, sizeof p, "%s/%s", g_dir, file);
    return p;
}

static void test_checkpoint(void) {
    fp4_st_ckpt *ck = NULL;
    if (!fp4t_check(fp4_st_ckpt_open(g_dir, &ck) == FP4_ST_OK, "open: %s", fp4_last_error()))
        return;
    fp4t_check(fp4_st_ckpt_verify(ck) == FP4_ST_OK, "verify: %s", fp4_last_error());
    int64_t total = 0;
    bool finite = true;
    for (int64_t i = 0; i < fp4_st_ckpt_count(ck); i++) {
        const fp4_st_tensor *t = NULL;
        if (!fp4t_check(fp4_st_ckpt_get(ck, fp4_st_ckpt_name(ck, i), &t) == FP4_ST_OK, "%s",
                        fp4_last_error()))
            continue;
        total += t->nbytes;
        for (int64_t k = 0; k < t->numel; k++) {
            float v;
            memcpy(&v, (const uint8_t *)t->data + 4 * k, 4);
            finite = finite && isfinite(v);
        }
        fp4_st_advise(NULL, t, FP4_ST_DONTNEED); /* NULL file: ignored */
    }
    fp4t_check(total == fp4_st_ckpt_total_size(ck), "total_size %lld, tensors %lld",
               (long long)fp4_st_ckpt_total_size(ck), (long long)total);
    fp4t_check(finite, "non-finite weight");
    fp4_st_ckpt_close(ck);
}

/* f32.embed[t] must be row input_ids[t] of the embedding table, bit for bit;
 * f64.embed the same values widened. */
static void test_embedding(void) {
    fp4_st_ckpt *ck = NULL;
    fp4_st_file *act = NULL;
    fp4_st_ckpt_open(g_dir, &ck);
    fp4_st_open(fixture("activations.safetensors"), &act);
    const fp4_st_tensor *table = NULL, *ids = NULL, *e32 = NULL, *e64 = NULL;
    fp4_st_status st = fp4_st_ckpt_get(ck, "model.embed_tokens.weight", &table);
    if (st == FP4_ST_OK) st = fp4_st_get(act, "input_ids", &ids);
    if (st == FP4_ST_OK) st = fp4_st_get(act, "f32.embed", &e32);
    if (st == FP4_ST_OK) st = fp4_st_get(act, "f64.embed", &e64);
    if (fp4t_check(st == FP4_ST_OK, "embedding tensors: %s", fp4_last_error())) {
        int64_t vocab = table->shape[0], hidden = table->shape[1], n = ids->shape[0];
        fp4t_check(e32->shape[0] == n && e32->shape[1] == hidden, "embed shape");
        for (int64_t t = 0; t < n; t++) {
            int64_t id;
            memcpy(&id, (const uint8_t *)ids->data + 8 * t, 8);
            if (!fp4t_check(id >= 0 && id < vocab, "token %lld out of range", (long long)id)) break;
            const uint8_t *row = (const uint8_t *)table->data + 4 * hidden * id;
            fp4t_check(memcmp(row, (const uint8_t *)e32->data + 4 * hidden * t, 4 * hidden) == 0,
                       "f32.embed row %lld", (long long)t);
            for (int64_t h = 0; h < hidden; h++) {
                float f;
                double d;
                memcpy(&f, row + 4 * h, 4);
                memcpy(&d, (const uint8_t *)e64->data + 8 * (hidden * t + h), 8);
                if (!fp4t_check(d == (double)f, "f64.embed[%lld][%lld]", (long long)t,
                                (long long)h))
                    break;
            }
        }
    }
    fp4_st_close(act);
    fp4_st_ckpt_close(ck);
}

/* The writer, fed every tensor (pointing into the mapping) and the
 * metadata of a real file, must reproduce the file exactly. */
static void test_rewrite(const char *file) {
    fp4_st_file *f = NULL;
    if (!fp4t_check(fp4_st_open(fixture(file), &f) == FP4_ST_OK, "%s", fp4_last_error())) return;
    const char *out = tio_path(file);
    fp4_st_writer *w = NULL;
    fp4_st_writer_create(out, &w);
    tio_copy_tensors(f, w);
    fp4t_check(fp4_st_writer_finish(w) == FP4_ST_OK, "write %s: %s", file, fp4_last_error());
    fp4_st_close(f);
    size_t a = 0, b = 0;
    uint8_t *orig = tio_read(fixture(file), &a);
    uint8_t *copy = tio_read(out, &b);
    fp4t_check(orig && copy && a == b && memcmp(orig, copy, a) == 0, "%s: rewrite differs", file);
    free(orig);
    free(copy);
    unlink(out);
}

int main(void) {
    fp4t_begin("test_io_shared_fixture");
    const char *root = getenv("FP4SIM_FIXTURES");
    snprintf(g_dir, sizeof g_dir, "%s/hf-deepseek-v3-tiny", root && *root ? root :
             FP4_IO_SHARED_FIXTURES);
    if (access(fixture("model.safetensors.index.json"), R_OK) != 0) {
        printf("test_io_shared_fixture: %s not found, skipped\n", g_dir);
        return 77;
    }
    test_checkpoint();
    test_embedding();
    test_rewrite("model-00001-of-00002.safetensors");
    test_rewrite("model-00002-of-00002.safetensors");
    test_rewrite("activations.safetensors");
    tio_cleanup();
    return fp4t_end();
}
