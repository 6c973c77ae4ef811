/* fp4io_ckpt.c - sharded checkpoints: model.safetensors.index.json
 * ({"metadata": {...}, "weight_map": {tensor: shard file}}), as transformers
 * and DeepSeek's releases write it, or a single model.safetensors.
 *
 * Only the index is read up front; a shard is mapped and its header checked
 * the first time one of its tensors is asked for, so loading one layer of a
 * 163-shard checkpoint touches only the shards that hold that layer. */
#define _DEFAULT_SOURCE 1

#include "fp4io_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* An index lists one entry per tensor: ~92k for DeepSeek-R1 (about 10 MB). */
#define INDEX_MAX_BYTES ((size_t)1 << 30)

typedef struct ck_shard {
    char *rel;          /* as the index spells it */
    char *path;         /* joined with the index's directory */
    fp4_st_file *file;  /* NULL until first use */
} ck_shard;

typedef struct ck_entry {
    char *name;
    int64_t shard;
} ck_entry;

struct fp4_st_ckpt {
    char *path;         /* the index, or the single file */
    ck_entry *e;        /* sorted by name */
    int64_t n;
    ck_shard *s;        /* sorted by rel */
    int64_t ns;
    int64_t total_size;
    pthread_mutex_t mu; /* guards lazy opening of shards */
};

/* ---------------------------------------------------------------------------
 * Lookup helpers
 * ------------------------------------------------------------------------- */

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const ck_entry *)a)->name, ((const ck_entry *)b)->name);
}

static int cmp_key_entry(const void *key, const void *elem) {
    return strcmp(key, ((const ck_entry *)elem)->name);
}

static const ck_entry *find_entry(const fp4_st_ckpt *c, const char *name) {
    if (!c || !name || c->n == 0) return NULL;
    return bsearch(name, c->e, (size_t)c->n, sizeof *c->e, cmp_key_entry);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_key_shard(const void *key, const void *elem) {
    return strcmp(key, ((const ck_shard *)elem)->rel);
}

/* ---------------------------------------------------------------------------
 * Building
 * ------------------------------------------------------------------------- */

void fp4_st_ckpt_close(fp4_st_ckpt *c) {
    if (!c) return;
    for (int64_t i = 0; i < c->ns; i++) {
        fp4_st_close(c->s[i].file);
        free(c->s[i].rel);
        free(c->s[i].path);
    }
    for (int64_t i = 0; i < c->n; i++) free(c->e[i].name);
    free(c->s);
    free(c->e);
    free(c->path);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* The index is data from the network: a shard name must stay inside the
 * checkpoint directory (relative, no ".." component). */
static bool safe_relative(const char *rel) {
    if (!*rel || rel[0] == '/') return false;
    for (const char *p = rel;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.') return false;
        if (!slash) return true;
        p = slash + 1;
    }
}

/* Sorted, de-duplicated shard list from the entries' shard names (passed in
 * rels[i], parallel to c->e before sorting, so we sort pairs together). */
static fp4_st_status build_shards(fp4_st_ckpt *c, char **rels, const char *dir) {
    char **u = malloc(((size_t)c->n + 1) * sizeof *u);
    if (!u) return fp4io_fail(FP4_ST_E_NOMEM, c->path, NULL, "out of memory");
    memcpy(u, rels, (size_t)c->n * sizeof *u);
    qsort(u, (size_t)c->n, sizeof *u, cmp_str);
    int64_t k = 0;
    for (int64_t i = 0; i < c->n; i++)
        if (k == 0 || strcmp(u[k - 1], u[i]) != 0) u[k++] = u[i];
    fp4_st_status st = FP4_ST_OK;
    if (!(c->s = calloc((size_t)k + 1, sizeof *c->s)))
        st = fp4io_fail(FP4_ST_E_NOMEM, c->path, NULL, "out of memory");
    for (int64_t i = 0; st == FP4_ST_OK && i < k; i++) {
        c->s[i].rel = fp4io_strdup(u[i]);
        c->s[i].path = fp4io_path_join(dir, u[i]);
        c->ns++;
        if (!c->s[i].rel || !c->s[i].path)
            st = fp4io_fail(FP4_ST_E_NOMEM, c->path, NULL, "out of memory");
    }
    free(u);
    return st;
}

/* Points each entry at its shard (rels[i] belongs to c->e[i]). */
static void link_entries(fp4_st_ckpt *c, char **rels) {
    for (int64_t i = 0; i < c->n; i++) {
        const ck_shard *s = bsearch(rels[i], c->s, (size_t)c->ns, sizeof *c->s, cmp_key_shard);
        c->e[i].shard = s ? (int64_t)(s - c->s) : -1; /* always found: built from rels */
    }
}

static fp4_st_status read_entry(fp4_st_ckpt *c, const cJSON *item, char **rel) {
    if (!cJSON_IsString(item))
        return fp4io_fail(FP4_ST_E_INDEX, c->path, item->string, "weight_map value is a JSON "
                          "%s, not a string", fp4io_json_type(item));
    if (!safe_relative(item->valuestring)) {
        char q[256] = "";
        fp4io_quote(q, sizeof q, item->valuestring);
        return fp4io_fail(FP4_ST_E_INDEX, c->path, item->string, "shard path %s must be a "
                          "relative path inside the index's directory", q);
    }
    c->e[c->n].name = fp4io_strdup(item->string);
    *rel = fp4io_strdup(item->valuestring);
    c->e[c->n].shard = -1;
    c->n++;
    if (!c->e[c->n - 1].name || !*rel)
        return fp4io_fail(FP4_ST_E_NOMEM, c->path, NULL, "out of memory");
    return FP4_ST_OK;
}

/* Sorts entries (with their rels) by name and rejects repeats. */
static fp4_st_status sort_entries(fp4_st_ckpt *c, char **rels) {
    /* Carry each rel through the sort by parking it in the shard slot. */
    for (int64_t i = 0; i < c->n; i++) c->e[i].shard = i;
    qsort(c->e, (size_t)c->n, sizeof *c->e, cmp_entry);
    char **sorted = malloc(((size_t)c->n + 1) * sizeof *sorted);
    if (!sorted) return fp4io_fail(FP4_ST_E_NOMEM, c->path, NULL, "out of memory");
    for (int64_t i = 0; i < c->n; i++) sorted[i] = rels[c->e[i].shard];
    memcpy(rels, sorted, (size_t)c->n * sizeof *rels);
    free(sorted);
    for (int64_t i = 1; i < c->n; i++)
        if (strcmp(c->e[i - 1].name, c->e[i].name) == 0)
            return fp4io_fail(FP4_ST_E_DUPLICATE, c->path, c->e[i].name,
                              "listed twice in weight_map");
    return FP4_ST_OK;
}

static fp4_st_status one_child(const fp4_st_ckpt *c, const cJSON *root, const char *key,
                               const cJSON **out) {
    *out = NULL;
    for (const cJSON *j = root->child; j; j = j->next) {
        if (strcmp(j->string, key) != 0) continue;
        if (*out)
            return fp4io_fail(FP4_ST_E_INDEX, c->path, NULL, "\"%s\" appears twice", key);
        *out = j;
    }
    return FP4_ST_OK;
}

/* metadata.total_size is informative only: read it when it is well formed. */
static void read_total_size(fp4_st_ckpt *c, const cJSON *meta) {
    if (!cJSON_IsObject(meta)) return;
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(meta, "total_size");
    const char *why = "";
    int64_t v = 0;
    if (ts && fp4io_json_uint(ts, &v, &why)) c->total_size = v;
}

static fp4_st_status read_weight_map(fp4_st_ckpt *c, const cJSON *map, const char *dir) {
    int count = cJSON_GetArraySize(map);
    char **rels = calloc((size_t)count + 1, sizeof *rels);
    fp4_st_status st = FP4_ST_OK;
    if (!rels || !(c->e = calloc((size_t)count + 1, sizeof *c->e)))
        st = fp4io_fail(FP4_ST_E_NOMEM, c->path, NULL, "out of memory");
    for (const cJSON *j = map->child; st == FP4_ST_OK && j; j = j->next)
        st = read_entry(c, j, &rels[c->n]);
    if (st == FP4_ST_OK) st = sort_entries(c, rels);
    if (st == FP4_ST_OK) st = build_shards(c, rels, dir);
    if (st == FP4_ST_OK) link_entries(c, rels);
    for (int i = 0; rels && i < count; i++) free(rels[i]);
    free(rels);
    return st;
}

static fp4_st_status load_index(fp4_st_ckpt *c) {
    char *text = NULL;
    size_t len = 0;
    cJSON *root = NULL;
    fp4_st_status st = fp4io_read_file(c->path, INDEX_MAX_BYTES, &text, &len);
    if (st == FP4_ST_OK)
        st = fp4io_json_parse(FP4_ST_E_INDEX, c->path, "index", (const uint8_t *)text, len, &root);
    free(text);
    const cJSON *map = NULL, *meta = NULL;
    if (st == FP4_ST_OK) st = one_child(c, root, "weight_map", &map);
    if (st == FP4_ST_OK) st = one_child(c, root, "metadata", &meta);
    if (st == FP4_ST_OK && !cJSON_IsObject(map))
        st = fp4io_fail(FP4_ST_E_INDEX, c->path, NULL, "no \"weight_map\" object (found %s)",
                        map ? fp4io_json_type(map) : "nothing");
    char *dir = NULL;
    if (st == FP4_ST_OK && !(dir = fp4io_dirname(c->path)))
        st = fp4io_fail(FP4_ST_E_NOMEM, c->path, NULL, "out of memory");
    if (st == FP4_ST_OK) st = read_weight_map(c, map, dir);
    if (st == FP4_ST_OK) read_total_size(c, meta);
    free(dir);
    cJSON_Delete(root);
    return st;
}

/* One file: one shard, opened now, every tensor in it. */
static fp4_st_status load_single(fp4_st_ckpt *c) {
    fp4_st_file *f = NULL;
    fp4_st_status st = fp4_st_open(c->path, &f);
    if (st != FP4_ST_OK) return st;
    int64_t n = fp4_st_count(f);
    c->s = calloc(1, sizeof *c->s);
    c->e = calloc((size_t)n + 1, sizeof *c->e);
    if (!c->s || !c->e) {
        fp4_st_close(f);
        return fp4io_fail(FP4_ST_E_NOMEM, c->path, NULL, "out of memory");
    }
    c->ns = 1;
    c->s[0] = (ck_shard){fp4io_strdup(c->path), fp4io_strdup(c->path), f};
    for (int64_t i = 0; i < n; i++) {
        c->e[i] = (ck_entry){fp4io_strdup(fp4_st_at(f, i)->name), 0};
        c->n++;
        if (!c->e[i].name) return fp4io_fail(FP4_ST_E_NOMEM, c->path, NULL, "out of memory");
    }
    if (!c->s[0].rel || !c->s[0].path)
        return fp4io_fail(FP4_ST_E_NOMEM, c->path, NULL, "out of memory");
    qsort(c->e, (size_t)c->n, sizeof *c->e, cmp_entry); /* names are unique in a file */
    return FP4_ST_OK;
}

static bool exists(const char *path) { return access(path, F_OK) == 0; }

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* A directory holds an index or a single model.safetensors. *target is
 * malloc'ed. */
static fp4_st_status resolve_dir(const char *dir, char **target, bool *is_index) {
    char *index = fp4io_path_join(dir, "model.safetensors.index.json");
    char *single = fp4io_path_join(dir, "model.safetensors");
    fp4_st_status st = FP4_ST_OK;
    if (!index || !single) st = fp4io_fail(FP4_ST_E_NOMEM, dir, NULL, "out of memory");
    else if (exists(index)) {
        *is_index = true;
        *target = index;
        index = NULL;
    } else if (exists(single)) {
        *is_index = false;
        *target = single;
        single = NULL;
    } else {
        st = fp4io_fail(FP4_ST_E_NOT_FOUND, dir, NULL, "directory has neither "
                        "model.safetensors.index.json nor model.safetensors");
    }
    free(index);
    free(single);
    return st;
}

static fp4_st_status resolve(const char *path, char **target, bool *is_index) {
    struct stat sb;
    if (stat(path, &sb) != 0) return fp4io_fail_path(path, errno, "cannot open: %s", strerror(errno));
    if (S_ISDIR(sb.st_mode)) return resolve_dir(path, target, is_index);
    *is_index = ends_with(path, ".json");
    if (!(*target = fp4io_strdup(path)))
        return fp4io_fail(FP4_ST_E_NOMEM, path, NULL, "out of memory");
    return FP4_ST_OK;
}

fp4_st_status fp4_st_ckpt_open(const char *path, fp4_st_ckpt **out) {
    if (!out || !path) return fp4io_fail(FP4_ST_E_ARG, path, NULL, "NULL argument");
    *out = NULL;
    char *target = NULL;
    bool is_index = false;
    fp4_st_status st = resolve(path, &target, &is_index);
    if (st != FP4_ST_OK) return st;
    fp4_st_ckpt *c = calloc(1, sizeof *c);
    if (!c) {
        free(target);
        return fp4io_fail(FP4_ST_E_NOMEM, path, NULL, "out of memory");
    }
    c->path = target;
    c->total_size = -1;
    pthread_mutex_init(&c->mu, NULL);
    st = is_index ? load_index(c) : load_single(c);
    if (st != FP4_ST_OK) {
        fp4_st_ckpt_close(c);
        return st;
    }
    *out = c;
    return FP4_ST_OK;
}

/* ---------------------------------------------------------------------------
 * Queries
 * ------------------------------------------------------------------------- */

const char *fp4_st_ckpt_path(const fp4_st_ckpt *c) { return c ? c->path : NULL; }
int64_t fp4_st_ckpt_count(const fp4_st_ckpt *c) { return c ? c->n : 0; }
int64_t fp4_st_ckpt_nshards(const fp4_st_ckpt *c) { return c ? c->ns : 0; }
int64_t fp4_st_ckpt_total_size(const fp4_st_ckpt *c) { return c ? c->total_size : -1; }

const char *fp4_st_ckpt_name(const fp4_st_ckpt *c, int64_t i) {
    return (c && i >= 0 && i < c->n) ? c->e[i].name : NULL;
}

bool fp4_st_ckpt_has(const fp4_st_ckpt *c, const char *name) { return find_entry(c, name) != NULL; }

int64_t fp4_st_ckpt_shard_of(const fp4_st_ckpt *c, const char *name) {
    const ck_entry *e = find_entry(c, name);
    return e ? e->shard : -1;
}

const char *fp4_st_ckpt_shard_path(const fp4_st_ckpt *c, int64_t i) {
    return (c && i >= 0 && i < c->ns) ? c->s[i].path : NULL;
}

/* Opens shard i once; `tensor` (may be NULL) names who asked, for messages. */
static fp4_st_status open_shard(fp4_st_ckpt *c, int64_t i, const char *tensor,
                                const fp4_st_file **out) {
    pthread_mutex_lock(&c->mu);
    fp4_st_status st = FP4_ST_OK;
    if (!c->s[i].file) st = fp4_st_open(c->s[i].path, &c->s[i].file);
    *out = c->s[i].file;
    pthread_mutex_unlock(&c->mu);
    if (st == FP4_ST_OK) return st;
    char q[256] = "";
    fp4io_quote(q, sizeof q, c->s[i].rel);
    return fp4io_fail(st, c->path, tensor, "shard %s: %s", q, fp4_last_error());
}

fp4_st_status fp4_st_ckpt_shard(fp4_st_ckpt *c, int64_t i, const fp4_st_file **out) {
    if (!c || !out || i < 0 || i >= c->ns)
        return fp4io_fail(FP4_ST_E_ARG, c ? c->path : NULL, NULL, "bad shard index %" PRId64, i);
    return open_shard(c, i, NULL, out);
}

static fp4_st_status not_in_shard(const fp4_st_ckpt *c, const char *name, int64_t shard) {
    char q[256] = "";
    fp4io_quote(q, sizeof q, c->s[shard].rel);
    return fp4io_fail(FP4_ST_E_NOT_FOUND, c->path, name, "the index puts it in shard %s, "
                      "which has no such tensor", q);
}

fp4_st_status fp4_st_ckpt_get(fp4_st_ckpt *c, const char *name, const fp4_st_tensor **out) {
    if (!c || !name || !out) return fp4io_fail(FP4_ST_E_ARG, NULL, NULL, "NULL argument");
    *out = NULL;
    const ck_entry *e = find_entry(c, name);
    if (!e)
        return fp4io_fail(FP4_ST_E_NOT_FOUND, c->path, name, "not in the checkpoint (%" PRId64
                          " tensors)", c->n);
    const fp4_st_file *f = NULL;
    fp4_st_status st = open_shard(c, e->shard, name, &f);
    if (st != FP4_ST_OK) return st;
    if (!(*out = fp4_st_find(f, name))) return not_in_shard(c, name, e->shard);
    return FP4_ST_OK;
}

/* Every tensor of shard i must be listed, and listed in shard i. */
static fp4_st_status verify_shard(fp4_st_ckpt *c, int64_t i) {
    const fp4_st_file *f = NULL;
    fp4_st_status st = open_shard(c, i, NULL, &f);
    for (int64_t k = 0; st == FP4_ST_OK && k < fp4_st_count(f); k++) {
        const char *name = fp4_st_at(f, k)->name;
        const ck_entry *e = find_entry(c, name);
        if (e && e->shard == i) continue;
        char q[256] = "", r[256] = "";
        fp4io_quote(q, sizeof q, c->s[i].rel);
        if (!e) {
            st = fp4io_fail(FP4_ST_E_INDEX, c->path, name, "shard %s holds it, but the index "
                            "does not list it", q);
        } else {
            fp4io_quote(r, sizeof r, c->s[e->shard].rel);
            st = fp4io_fail(FP4_ST_E_INDEX, c->path, name, "shard %s holds it, but the index "
                            "puts it in shard %s", q, r);
        }
    }
    return st;
}

fp4_st_status fp4_st_ckpt_verify(fp4_st_ckpt *c) {
    if (!c) return fp4io_fail(FP4_ST_E_ARG, NULL, NULL, "NULL checkpoint");
    fp4_st_status st = FP4_ST_OK;
    for (int64_t i = 0; st == FP4_ST_OK && i < c->ns; i++) st = verify_shard(c, i);
    for (int64_t i = 0; st == FP4_ST_OK && i < c->n; i++)
        if (!fp4_st_find(c->s[c->e[i].shard].file, c->e[i].name))
            st = not_in_shard(c, c->e[i].name, c->e[i].shard);
    return st;
}

void fp4_st_ckpt_release(fp4_st_ckpt *c) {
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    for (int64_t i = 0; i < c->ns; i++) {
        fp4_st_close(c->s[i].file);
        c->s[i].file = NULL;
    }
    pthread_mutex_unlock(&c->mu);
}
