/* fuzz_index.c - libFuzzer harness for the checkpoint index reader
 * (model.safetensors.index.json). Each input is written to a file in a
 * private temporary directory and opened with fp4_st_ckpt_open; names,
 * shard lookups and lazy gets (whose shards mostly do not exist) run on
 * whatever opens. Build and run as fuzz_safetensors (docs/io.md). */
#define _DEFAULT_SOURCE 1

#include "fp4io.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_path[512];

static void require(int ok, const char *what) {
    if (ok) return;
    fprintf(stderr, "invariant broken: %s (message: %s)\n", what, fp4_last_error());
    abort();
}

static void setup(void) {
    if (g_path[0]) return;
    const char *tmp = getenv("TMPDIR");
    char dir[400];
    snprintf(dir, sizeof dir, "%s/fp4io-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    require(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(g_path, sizeof g_path, "%s/model.safetensors.index.json", dir);
}

static void exercise(fp4_st_ckpt *c) {
    int64_t n = fp4_st_ckpt_count(c);
    for (int64_t i = 0; i < n; i++) {
        const char *name = fp4_st_ckpt_name(c, i);
        require(name && fp4_st_ckpt_has(c, name), "listed names are found");
        require(i == 0 || strcmp(fp4_st_ckpt_name(c, i - 1), name) < 0, "sorted, unique");
        int64_t s = fp4_st_ckpt_shard_of(c, name);
        require(s >= 0 && s < fp4_st_ckpt_nshards(c) && fp4_st_ckpt_shard_path(c, s), "shard");
        if (i < 4) {
            const fp4_st_tensor *t = NULL;
            fp4_st_status st = fp4_st_ckpt_get(c, name, &t);
            require(st == FP4_ST_OK || (t == NULL && fp4_last_error()[0]), "get");
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    setup();
    FILE *f = fopen(g_path, "wb");
    require(f != NULL, "temp file");
    fwrite(data, 1, size, f);
    fclose(f);
    fp4_st_ckpt *c = NULL;
    fp4_st_status st = fp4_st_ckpt_open(g_path, &c);
    if (st != FP4_ST_OK) {
        const char *m = fp4_last_error();
        require(c == NULL && m[0] && !strchr(m, '\n'), "one-line message on failure");
        return 0;
    }
    exercise(c);
    fp4_st_ckpt_close(c);
    return 0;
}
