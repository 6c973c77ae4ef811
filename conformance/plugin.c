/* plugin.c - "plugin:LIB.so[:ARGS]": an engine from a shared library that
 * exports fp4sim_engine_open_v1 (fp4engine.h). The library stays loaded
 * while the engine lives; closing the engine unloads it. */
#define _GNU_SOURCE 1
#include "fp4conform.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct plug {
    void *lib;
    fp4_engine *inner;
} plug;

static int plug_gemm(fp4_engine *self, const fp4_gemm_call *c) {
    plug *p = self->ctx;
    if (p->inner->gemm(p->inner, c) == 0) return 0;
    const char *msg = p->inner->error ? p->inner->error(p->inner) : NULL;
    return fp4_fail_kind(FP4_ERR_INTERNAL, "%s", msg && msg[0] ? msg : "failed without a message");
}

static void plug_close(fp4_engine *self) {
    if (!self) return;
    plug *p = self->ctx;
    if (p->inner && p->inner->close) p->inner->close(p->inner);
    if (p->lib) dlclose(p->lib);
    free(p);
    free(self);
}

int fp4conf_plugin_open(const char *args, fp4_engine **out) {
    char path[1024];
    const char *colon = strchr(args, ':');
    size_t n = colon ? (size_t)(colon - args) : strlen(args);
    if (n == 0 || n >= sizeof path) return fp4_fail("plugin: give the library path: plugin:LIB.so");
    memcpy(path, args, n);
    path[n] = '\0';
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) return fp4_fail("plugin: cannot load '%s': %s", path, dlerror());
    fp4_engine_open_v1_fn open_fn = NULL;
    *(void **)&open_fn = dlsym(lib, FP4_ENGINE_PLUGIN_SYMBOL);
    if (!open_fn) {
        dlclose(lib);
        return fp4_fail("plugin: '%s' does not export %s (the fp4sim engine ABI v%d)", path,
                        FP4_ENGINE_PLUGIN_SYMBOL, FP4_ENGINE_ABI_VERSION);
    }
    fp4_engine *inner = NULL;
    if (open_fn(colon ? colon + 1 : "", &inner) != 0 || !inner) {
        fp4_fail("plugin: '%s' refused to open%s%s", path, inner && inner->error ? ": " : "",
                 inner && inner->error ? inner->error(inner) : "");
        if (inner && inner->close) inner->close(inner);
        dlclose(lib);
        return -1;
    }
    if (inner->abi != FP4_ENGINE_ABI_VERSION || !inner->gemm) {
        if (inner->close) inner->close(inner);
        dlclose(lib);
        return fp4_fail("plugin: '%s' speaks engine ABI %u, this fp4sim %d", path, inner->abi,
                        FP4_ENGINE_ABI_VERSION);
    }
    fp4_engine *e = calloc(1, sizeof *e);
    plug *p = calloc(1, sizeof *p);
    if (!e || !p) {
        free(e), free(p);
        if (inner->close) inner->close(inner);
        dlclose(lib);
        return fp4_fail_kind(FP4_ERR_NOMEM, "out of memory");
    }
    p->lib = lib;
    p->inner = inner;
    *e = *inner;
    snprintf(e->name, sizeof e->name, "plugin:%.240s", args);
    snprintf(e->kind, sizeof e->kind, "plugin");
    e->gemm = plug_gemm;
    e->close = plug_close;
    e->error = NULL;
    e->ctx = p;
    *out = e;
    return 0;
}
