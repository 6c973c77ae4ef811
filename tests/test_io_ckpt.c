/* test_io_ckpt.c - sharded checkpoints: index + shards written here, opened
 * by index path and by directory, lazy shard opening (a missing shard only
 * fails the tensors in it), index/shard disagreements, malformed indexes,
 * single-file checkpoints, concurrent gets, and the index writer's exact
 * output format. */
#include "test_io_util.h"

#include <pthread.h>

static const char *k_names[] = {"a.w", "b.w", "c.w", "d.w"};
static const char *k_shards[] = {"model-00001-of-00002.safetensors",
                                 "model-00001-of-00002.safetensors",
                                 "model-00002-of-00002.safetensors",
                                 "model-00002-of-00002.safetensors"};
static uint8_t k_data[4][16];

static void write_shard(const char *dir, const char *file, int first, int count) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    struct { fp4_st_dtype d; int32_t nd; int64_t s[2]; int64_t bytes; } t[4] = {
        {FP4_ST_F32, 2, {2, 2}, 16}, {FP4_ST_BF16, 1, {3}, 6}, {FP4_ST_U8, 1, {5}, 5},
        {FP4_ST_F4, 2, {2, 4}, 4}};
    fp4_st_writer *w = NULL;
    fp4_st_writer_create(path, &w);
    fp4_st_writer_set_metadata(w, "format", "pt");
    for (int i = first; i < first + count; i++)
        fp4_st_writer_add(w, k_names[i], t[i].d, t[i].nd, t[i].s, k_data[i], t[i].bytes);
    fp4t_check(fp4_st_writer_finish(w) == FP4_ST_OK, "shard %s: %s", file, fp4_last_error());
}

/* dir/ with two shards and an index; returns dir. */
static const char *make_ckpt(const char *name) {
    const char *dir = tio_path(name);
    mkdir(dir, 0755);
    write_shard(dir, k_shards[0], 0, 2);
    write_shard(dir, k_shards[2], 2, 2);
    char index[700];
    snprintf(index, sizeof index, "%s/model.safetensors.index.json", dir);
    fp4t_check(fp4_st_write_index(index, 4, k_names, k_shards, 31, -1) == FP4_ST_OK, "index: %s",
               fp4_last_error());
    return dir;
}

static void check_contents(fp4_st_ckpt *c) {
    fp4t_check(fp4_st_ckpt_count(c) == 4 && fp4_st_ckpt_nshards(c) == 2, "counts");
    fp4t_check(fp4_st_ckpt_total_size(c) == 31, "total_size %lld",
               (long long)fp4_st_ckpt_total_size(c));
    for (int i = 0; i < 4; i++) {
        fp4t_check(!strcmp(fp4_st_ckpt_name(c, i), k_names[i]), "name %d", i);
        int64_t s = fp4_st_ckpt_shard_of(c, k_names[i]);
        fp4t_check(s == i / 2 && strstr(fp4_st_ckpt_shard_path(c, s), k_shards[i]), "shard of %d", i);
        const fp4_st_tensor *t = NULL;
        fp4t_check(fp4_st_ckpt_get(c, k_names[i], &t) == FP4_ST_OK, "get %s: %s", k_names[i],
                   fp4_last_error());
        fp4t_check(t && memcmp(t->data, k_data[i], (size_t)t->nbytes) == 0, "data %d", i);
    }
    fp4t_check(fp4_st_ckpt_name(c, 4) == NULL && fp4_st_ckpt_shard_path(c, 2) == NULL &&
               !fp4_st_ckpt_has(c, "zz") && fp4_st_ckpt_shard_of(c, "zz") == -1, "ranges");
    const fp4_st_tensor *t = NULL;
    fp4t_check(fp4_st_ckpt_get(c, "zz", &t) == FP4_ST_E_NOT_FOUND && t == NULL, "absent tensor");
    fp4t_check(strstr(fp4_last_error(), "tensor 'zz': not in the checkpoint") &&
               strstr(fp4_last_error(), "model.safetensors.index.json"), "msg: %s", fp4_last_error());
    fp4t_check(fp4_st_ckpt_verify(c) == FP4_ST_OK, "verify: %s", fp4_last_error());
}

static void test_open_ways(void) {
    const char *dir = make_ckpt("ck");
    char index[700];
    snprintf(index, sizeof index, "%s/model.safetensors.index.json", dir);
    fp4_st_ckpt *c = NULL;
    fp4t_check(fp4_st_ckpt_open(index, &c) == FP4_ST_OK, "open index: %s", fp4_last_error());
    if (c) check_contents(c);
    fp4_st_ckpt_release(c);
    if (c) check_contents(c); /* shards reopen after a release */
    fp4_st_ckpt_close(c);
    fp4t_check(fp4_st_ckpt_open(dir, &c) == FP4_ST_OK, "open dir: %s", fp4_last_error());
    if (c) check_contents(c);
    fp4_st_ckpt_close(c);
}

/* A missing shard fails only the tensors it holds, and names itself. */
static void test_lazy(void) {
    const char *dir = make_ckpt("lazy");
    char b[700];
    snprintf(b, sizeof b, "%s/%s", dir, k_shards[2]);
    unlink(b);
    fp4_st_ckpt *c = NULL;
    fp4t_check(fp4_st_ckpt_open(dir, &c) == FP4_ST_OK, "open without shard 2 failed");
    const fp4_st_tensor *t = NULL;
    fp4t_check(fp4_st_ckpt_get(c, "a.w", &t) == FP4_ST_OK, "shard 1 tensor: %s", fp4_last_error());
    fp4t_check(fp4_st_ckpt_get(c, "c.w", &t) == FP4_ST_E_IO, "missing shard not reported");
    const char *m = fp4_last_error();
    fp4t_check(tio_msg_ok(m) && strstr(m, "tensor 'c.w'") && strstr(m, k_shards[2]) &&
               strstr(m, "No such file"), "missing-shard message: %s", m);
    fp4t_check(fp4_st_ckpt_verify(c) == FP4_ST_E_IO, "verify passed without a shard");
    const fp4_st_file *f = NULL;
    fp4t_check(fp4_st_ckpt_shard(c, 0, &f) == FP4_ST_OK && fp4_st_count(f) == 2, "shard 0");
    fp4t_check(fp4_st_ckpt_shard(c, 5, &f) == FP4_ST_E_ARG, "shard 5");
    fp4_st_ckpt_close(c);
}

static void write_text(const char *path, const char *text) {
    fp4t_check(tio_write(path, text, strlen(text)), "cannot write %s", path);
}

/* Index and shards that disagree. */
static void test_disagreement(void) {
    const char *dir = make_ckpt("dis");
    char index[700];
    snprintf(index, sizeof index, "%s/model.safetensors.index.json", dir);
    const char *s1 = k_shards[0], *s2 = k_shards[2];
    char text[2048];
    /* e.w listed but absent; d.w (in shard 2) not listed. */
    snprintf(text, sizeof text, "{\"weight_map\": {\"a.w\": \"%s\", \"b.w\": \"%s\", \"c.w\": "
             "\"%s\", \"e.w\": \"%s\"}}", s1, s1, s2, s1);
    write_text(index, text);
    fp4_st_ckpt *c = NULL;
    fp4t_check(fp4_st_ckpt_open(index, &c) == FP4_ST_OK, "open: %s", fp4_last_error());
    const fp4_st_tensor *t = NULL;
    fp4t_check(fp4_st_ckpt_get(c, "e.w", &t) == FP4_ST_E_NOT_FOUND &&
               strstr(fp4_last_error(), "which has no such tensor"), "e.w: %s", fp4_last_error());
    fp4t_check(fp4_st_ckpt_verify(c) == FP4_ST_E_INDEX &&
               strstr(fp4_last_error(), "tensor 'd.w'") && strstr(fp4_last_error(), "does not list"),
               "verify unlisted: %s", fp4_last_error());
    fp4_st_ckpt_close(c);
    /* c.w placed in the wrong shard. */
    snprintf(text, sizeof text, "{\"weight_map\": {\"a.w\": \"%s\", \"b.w\": \"%s\", \"c.w\": "
             "\"%s\", \"d.w\": \"%s\"}}", s1, s1, s1, s2);
    write_text(index, text);
    fp4t_check(fp4_st_ckpt_open(index, &c) == FP4_ST_OK, "open: %s", fp4_last_error());
    fp4t_check(fp4_st_ckpt_verify(c) == FP4_ST_E_INDEX && strstr(fp4_last_error(), "puts it in"),
               "verify misplaced: %s", fp4_last_error());
    fp4_st_ckpt_close(c);
}

typedef struct bad_index {
    const char *what, *text;
    fp4_st_status want;
    const char *needle;
} bad_index;

static const bad_index k_bad_index[] = {
    {"not JSON", "{\"weight_map\": ", FP4_ST_E_INDEX, "not valid JSON"},
    {"array", "[]", FP4_ST_E_INDEX, "not an object"},
    {"no weight_map", "{\"metadata\": {}}", FP4_ST_E_INDEX, "no \"weight_map\""},
    {"weight_map array", "{\"weight_map\": []}", FP4_ST_E_INDEX, "found array"},
    {"weight_map twice", "{\"weight_map\": {}, \"weight_map\": {}}", FP4_ST_E_INDEX, "twice"},
    {"value not a string", "{\"weight_map\": {\"x\": 3}}", FP4_ST_E_INDEX, "tensor 'x'"},
    {"parent dir", "{\"weight_map\": {\"x\": \"../x.safetensors\"}}", FP4_ST_E_INDEX, "relative"},
    {"inner parent dir", "{\"weight_map\": {\"x\": \"a/../../x\"}}", FP4_ST_E_INDEX, "relative"},
    {"absolute", "{\"weight_map\": {\"x\": \"/etc/passwd\"}}", FP4_ST_E_INDEX, "relative"},
    {"empty shard", "{\"weight_map\": {\"x\": \"\"}}", FP4_ST_E_INDEX, "relative"},
    {"duplicate tensor", "{\"weight_map\": {\"x\": \"a\", \"x\": \"b\"}}", FP4_ST_E_DUPLICATE,
     "tensor 'x'"},
    {"bad UTF-8", "{\"weight_map\": {\"x\xff\": \"a\"}}", FP4_ST_E_INDEX, "UTF-8"},
};

static void test_bad_indexes(void) {
    const char *path = tio_path("bad.index.json");
    for (size_t i = 0; i < sizeof k_bad_index / sizeof k_bad_index[0]; i++) {
        const bad_index *b = &k_bad_index[i];
        write_text(path, b->text);
        fp4_st_ckpt *c = NULL;
        fp4_st_status st = fp4_st_ckpt_open(path, &c);
        fp4t_check(st == b->want && c == NULL, "%s: status %s (%s)", b->what,
                   fp4_st_status_name(st), fp4_last_error());
        const char *m = fp4_last_error();
        fp4t_check(tio_msg_ok(m) && strstr(m, "bad.index.json") && strstr(m, b->needle),
                   "%s: message %s", b->what, m);
        fp4_st_ckpt_close(c);
    }
    fp4_st_ckpt *c = NULL;
    fp4t_check(fp4_st_ckpt_open(tio_path("nope.json"), &c) == FP4_ST_E_IO &&
               strstr(fp4_last_error(), "nope.json"), "missing index: %s", fp4_last_error());
    /* Accepted: a subdirectory, an empty map, a malformed (ignored) total_size. */
    write_text(path, "{\"metadata\": {\"total_size\": \"x\"}, \"weight_map\": {\"x\": "
                     "\"sub/x.safetensors\"}}");
    fp4t_check(fp4_st_ckpt_open(path, &c) == FP4_ST_OK && fp4_st_ckpt_total_size(c) == -1,
               "subdir shard: %s", fp4_last_error());
    fp4_st_ckpt_close(c);
    write_text(path, "{\"weight_map\": {}}");
    fp4t_check(fp4_st_ckpt_open(path, &c) == FP4_ST_OK && fp4_st_ckpt_count(c) == 0 &&
               fp4_st_ckpt_verify(c) == FP4_ST_OK, "empty map: %s", fp4_last_error());
    fp4_st_ckpt_close(c);
}

static void test_single_file(void) {
    const char *dir = tio_path("single");
    mkdir(dir, 0755);
    write_shard(dir, "model.safetensors", 0, 4);
    fp4_st_ckpt *c = NULL;
    fp4t_check(fp4_st_ckpt_open(dir, &c) == FP4_ST_OK, "dir with model.safetensors: %s",
               fp4_last_error());
    const fp4_st_tensor *t = NULL;
    fp4t_check(c && fp4_st_ckpt_count(c) == 4 && fp4_st_ckpt_nshards(c) == 1 &&
               fp4_st_ckpt_total_size(c) == -1, "single counts");
    fp4t_check(fp4_st_ckpt_get(c, "d.w", &t) == FP4_ST_OK && t->dtype == FP4_ST_F4, "single get");
    fp4t_check(fp4_st_ckpt_verify(c) == FP4_ST_OK, "single verify: %s", fp4_last_error());
    fp4_st_ckpt_release(c);
    fp4t_check(fp4_st_ckpt_get(c, "a.w", &t) == FP4_ST_OK, "single reopen: %s", fp4_last_error());
    fp4_st_ckpt_close(c);
    char file[700];
    snprintf(file, sizeof file, "%s/model.safetensors", dir);
    fp4t_check(fp4_st_ckpt_open(file, &c) == FP4_ST_OK && fp4_st_ckpt_count(c) == 4,
               "file path: %s", fp4_last_error());
    fp4_st_ckpt_close(c);
    const char *empty = tio_path("emptydir");
    mkdir(empty, 0755);
    fp4t_check(fp4_st_ckpt_open(empty, &c) == FP4_ST_E_NOT_FOUND &&
               strstr(fp4_last_error(), "neither"), "empty dir: %s", fp4_last_error());
    write_text(file, "short");
    fp4t_check(fp4_st_ckpt_open(file, &c) == FP4_ST_E_TRUNCATED && c == NULL &&
               strstr(fp4_last_error(), "model.safetensors"), "bad single file: %s", fp4_last_error());
}

typedef struct thread_arg {
    fp4_st_ckpt *c;
    const fp4_st_tensor *got[4];
    int fails;
} thread_arg;

static void *getter(void *p) {
    thread_arg *a = p;
    for (int round = 0; round < 50; round++)
        for (int i = 0; i < 4; i++)
            if (fp4_st_ckpt_get(a->c, k_names[(i + round) % 4], &a->got[(i + round) % 4]) != FP4_ST_OK)
                a->fails++;
    return NULL;
}

/* Several threads race to open the same shards: one mapping each. */
static void test_threads(void) {
    const char *dir = make_ckpt("thr");
    fp4_st_ckpt *c = NULL;
    fp4_st_ckpt_open(dir, &c);
    thread_arg a[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (thread_arg){.c = c};
        pthread_create(&th[i], NULL, getter, &a[i]);
    }
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) {
        fp4t_check(a[i].fails == 0, "thread %d failed gets", i);
        for (int k = 0; k < 4; k++) fp4t_check(a[i].got[k] == a[0].got[k], "thread %d ptr %d", i, k);
    }
    fp4_st_ckpt_close(c);
}

static void expect_index_text(const char *what, int64_t n, const char *const *names,
                              const char *const *shards, int64_t size, int64_t params,
                              const char *want) {
    const char *path = tio_path("fmt.index.json");
    fp4t_check(fp4_st_write_index(path, n, names, shards, size, params) == FP4_ST_OK, "%s: %s",
               what, fp4_last_error());
    size_t len = 0;
    uint8_t *got = tio_read(path, &len);
    fp4t_check(got && !strcmp((char *)got, want), "%s: got\n%s\nwant\n%s", what, (char *)got, want);
    free(got);
}

/* json.dumps(index, indent=2, sort_keys=True) + "\n", ensure_ascii. */
static void test_index_format(void) {
    const char *names[] = {"b", "a\xc3\xa9", "\xf0\x9f\x98\x80\"\x7f"};
    const char *shards[] = {"s2", "s1", "s3"};
    expect_index_text("full", 3, names, shards, 10, 5,
                      "{\n  \"metadata\": {\n    \"total_parameters\": 5,\n    \"total_size\": 10\n"
                      "  },\n  \"weight_map\": {\n    \"a\\u00e9\": \"s1\",\n    \"b\": \"s2\",\n"
                      "    \"\\ud83d\\ude00\\\"\\u007f\": \"s3\"\n  }\n}\n");
    expect_index_text("size only", 1, names, shards, 7, -1,
                      "{\n  \"metadata\": {\n    \"total_size\": 7\n  },\n  \"weight_map\": {\n"
                      "    \"b\": \"s2\"\n  }\n}\n");
    expect_index_text("empty", 0, NULL, NULL, -1, -1,
                      "{\n  \"metadata\": {},\n  \"weight_map\": {}\n}\n");
    const char *dup[] = {"x", "x"};
    fp4t_check(fp4_st_write_index(tio_path("d.json"), 2, dup, shards, 0, -1) == FP4_ST_E_DUPLICATE,
               "duplicate index entry accepted");
    fp4t_check(fp4_st_write_index(NULL, 0, NULL, NULL, 0, 0) == FP4_ST_E_ARG, "NULL path");
}

int main(void) {
    fp4t_begin("test_io_ckpt");
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 16; k++) k_data[i][k] = (uint8_t)fp4t_rand32(fp4t_seed(), 7, i * 16 + k);
    test_open_ways();
    test_lazy();
    test_disagreement();
    test_bad_indexes();
    test_single_file();
    test_threads();
    test_index_format();
    tio_cleanup();
    return fp4t_end();
}
