/* test_io_fixture.c - the real headers of the tiny DeepSeek-V3 checkpoint
 * (tests/data/deepseek-v3-tiny, copied from shared/fixtures): every tensor the
 * model's manifest lists for its config is present with its dtype and shape,
 * and nothing else; index and shards agree,
 * and the writer reproduces the reference library's files byte for byte
 * (header, layout, padding) and transformers' index file exactly.
 * The files are rebuilt around the stored headers with zero-filled data. */
#include "fp4model.h"
#include "test_io_util.h"

#include <cjson/cJSON.h>

#define DATA_DIR FP4_IO_TEST_DATA "/deepseek-v3-tiny"

static const char *k_files[3] = {"model-00001-of-00002", "model-00002-of-00002", "activations"};

typedef struct image {
    uint8_t *buf;
    size_t len;
} image;

/* Largest data_offsets end in a header = its data area size. */
static int64_t data_extent(const char *header) {
    cJSON *root = cJSON_Parse(header);
    int64_t end = 0;
    for (const cJSON *e = root ? root->child : NULL; e; e = e->next) {
        const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        const cJSON *hi = off ? cJSON_GetArrayItem(off, 1) : NULL;
        if (hi && hi->valuedouble > (double)end) end = (int64_t)hi->valuedouble;
    }
    cJSON_Delete(root);
    return end;
}

static image load_image(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.header", DATA_DIR, name);
    size_t hlen = 0;
    uint8_t *h = tio_read(path, &hlen);
    image im = {NULL, 0};
    if (!fp4t_check(h != NULL, "cannot read %s", path)) return im;
    int64_t dlen = data_extent((const char *)h);
    im.len = 8 + hlen + (size_t)dlen;
    im.buf = calloc(1, im.len);
    tio_le64(im.buf, hlen);
    memcpy(im.buf + 8, h, hlen);
    free(h);
    return im;
}

static int64_t g_expected;

/* One manifest entry (model/manifest.c) must be in the checkpoint, F32,
 * with the manifest's shape: the manifest checked against a real
 * transformers checkpoint. */
static int expect_info(void *ctx, const fp4m_tensor_info *t) {
    fp4_st_ckpt *ck = ctx;
    const fp4_st_tensor *x = NULL;
    g_expected++;
    if (!fp4t_check(fp4_st_ckpt_get(ck, t->name, &x) == FP4_ST_OK, "%s", fp4_last_error())) return 0;
    int64_t shape[2] = {t->out, t->in};
    fp4t_check(fp4_st_expect(x, "fixture", FP4_ST_F32, t->in ? 2 : 1, shape) == FP4_ST_OK, "%s",
               fp4_last_error());
    return 0;
}

/* Writes the two shards and the index into a temp dir; returns the dir. */
static const char *stage_checkpoint(image *im) {
    const char *dir = tio_path("tiny");
    mkdir(dir, 0755);
    char path[700];
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s.safetensors", dir, k_files[i]);
        fp4t_check(tio_write(path, im[i].buf, im[i].len), "stage %s", path);
    }
    size_t len = 0;
    uint8_t *index = tio_read(DATA_DIR "/model.safetensors.index.json", &len);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    fp4t_check(index && tio_write(path, index, len), "stage index");
    free(index);
    return dir;
}

static void test_checkpoint(image *im) {
    const char *dir = stage_checkpoint(im);
    fp4_st_ckpt *ck = NULL;
    if (!fp4t_check(fp4_st_ckpt_open(dir, &ck) == FP4_ST_OK, "open: %s", fp4_last_error())) return;
    fp4t_check(fp4_st_ckpt_verify(ck) == FP4_ST_OK, "verify: %s", fp4_last_error());
    fp4m_config c;
    g_expected = 0;
    if (fp4t_check(fp4m_config_load(DATA_DIR "/config.json", &c) == 0, "config: %s", fp4_last_error()))
        fp4m_manifest(&c, expect_info, ck);
    fp4t_check(fp4_st_ckpt_count(ck) == g_expected && g_expected == 201,
               "checkpoint has %lld tensors, config implies %lld",
               (long long)fp4_st_ckpt_count(ck), (long long)g_expected);
    int64_t total = 0;
    for (int64_t i = 0; i < fp4_st_ckpt_count(ck); i++) {
        const fp4_st_tensor *t = NULL;
        fp4_st_ckpt_get(ck, fp4_st_ckpt_name(ck, i), &t);
        total += t ? t->nbytes : 0;
    }
    fp4t_check(total == fp4_st_ckpt_total_size(ck) && total == 24538816, "total_size %lld vs %lld",
               (long long)total, (long long)fp4_st_ckpt_total_size(ck));
    fp4_st_ckpt_close(ck);
}

/* The writer, fed a file's tensors and metadata, must emit the same bytes. */
static void test_rewrite(const image *im, const char *name) {
    fp4_st_file *f = NULL;
    if (!fp4t_check(fp4_st_open_memory(im->buf, im->len, name, &f) == FP4_ST_OK, "%s: %s", name,
                    fp4_last_error()))
        return;
    fp4_st_writer *w = NULL;
    fp4_st_writer_create(NULL, &w);
    tio_copy_tensors(f, w);
    uint8_t *out = NULL;
    size_t len = 0;
    fp4t_check(fp4_st_writer_finish_memory(w, &out, &len) == FP4_ST_OK, "rewrite %s", name);
    size_t diff = 0;
    while (out && diff < len && diff < im->len && out[diff] == im->buf[diff]) diff++;
    fp4t_check(out && len == im->len && diff == len, "%s: rewrite differs at byte %zu (%zu vs %zu "
               "bytes)", name, diff, len, im->len);
    free(out);
    fp4_st_close(f);
}

static void test_headers(image *im) {
    fp4_st_file *f[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3; i++)
        fp4t_check(fp4_st_open_memory(im[i].buf, im[i].len, k_files[i], &f[i]) == FP4_ST_OK,
                   "%s: %s", k_files[i], fp4_last_error());
    if (!f[0] || !f[1] || !f[2]) goto out;
    fp4t_check(fp4_st_count(f[0]) == 93 && fp4_st_count(f[1]) == 108 && fp4_st_count(f[2]) == 74,
               "tensor counts %lld %lld %lld", (long long)fp4_st_count(f[0]),
               (long long)fp4_st_count(f[1]), (long long)fp4_st_count(f[2]));
    for (int i = 0; i < 2; i++)
        fp4t_check(fp4_st_metadata(f[i], "format") && !strcmp(fp4_st_metadata(f[i], "format"), "pt"),
                   "%s format", k_files[i]);
    fp4t_check(!strcmp(fp4_st_metadata(f[2], "config"), "dev"), "activations metadata");
    const fp4_st_tensor *t = fp4_st_find(f[2], "input_ids");
    fp4t_check(t && fp4_st_expect(t, "act", FP4_ST_I64, 1, (int64_t[]){64}) == FP4_ST_OK, "ids");
    t = fp4_st_find(f[2], "f64.layers.2.self_attn.1");
    fp4t_check(t && fp4_st_expect(t, "act", FP4_ST_F64, 4, (int64_t[]){1, 4, 64, 64}) == FP4_ST_OK,
               "attention probabilities: %s", fp4_last_error());
    t = fp4_st_find(f[2], "f32.layers.3.mlp.gate.2");
    fp4t_check(t && fp4_st_expect(t, "act", FP4_ST_I64, 2, (int64_t[]){64, 4}) == FP4_ST_OK,
               "top-k ids");
    fp4t_check(fp4_st_at(f[2], 0)->dtype == FP4_ST_I64 &&
               fp4_st_at(f[2], 73)->dtype == FP4_ST_F32, "activations layout order");
out:
    for (int i = 0; i < 3; i++) fp4_st_close(f[i]);
}

static void test_index_rewrite(void) {
    fp4_st_ckpt *ck = NULL;
    if (!fp4t_check(fp4_st_ckpt_open(DATA_DIR "/model.safetensors.index.json", &ck) == FP4_ST_OK,
                    "index: %s", fp4_last_error()))
        return;
    int64_t n = fp4_st_ckpt_count(ck);
    const char **names = malloc((size_t)n * sizeof *names);
    const char **shards = malloc((size_t)n * sizeof *shards);
    for (int64_t i = 0; i < n; i++) {
        names[i] = fp4_st_ckpt_name(ck, i);
        const char *p = fp4_st_ckpt_shard_path(ck, fp4_st_ckpt_shard_of(ck, names[i]));
        shards[i] = strrchr(p, '/') + 1;
    }
    const char *out = tio_path("index.json");
    fp4t_check(fp4_st_write_index(out, n, names, shards, fp4_st_ckpt_total_size(ck), 6134656) ==
               FP4_ST_OK, "write index: %s", fp4_last_error());
    size_t a = 0, b = 0;
    uint8_t *got = tio_read(out, &a);
    uint8_t *want = tio_read(DATA_DIR "/model.safetensors.index.json", &b);
    fp4t_check(got && want && a == b && memcmp(got, want, a) == 0, "index rewrite differs");
    free(got);
    free(want);
    free(names);
    free(shards);
    fp4_st_ckpt_close(ck);
}

int main(void) {
    fp4t_begin("test_io_fixture");
    image im[3];
    for (int i = 0; i < 3; i++) im[i] = load_image(k_files[i]);
    if (im[0].buf && im[1].buf && im[2].buf) {
        test_headers(im);
        for (int i = 0; i < 3; i++) test_rewrite(&im[i], k_files[i]);
        test_checkpoint(im);
    }
    test_index_rewrite();
    for (int i = 0; i < 3; i++) free(im[i].buf);
    tio_cleanup();
    return fp4t_end();
}
