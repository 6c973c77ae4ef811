/* registry.c - every GEMM engine by its spec string (fp4conform.h). */
#include "fp4conform.h"
#include "fp4emu.h"
#include "fp4kernels.h"

#include <string.h>

static bool has_prefix(const char *s, const char *p, const char **rest) {
    size_t n = strlen(p);
    if (strncmp(s, p, n) != 0) return false;
    *rest = s + n;
    return true;
}

int fp4conf_engine_open(const char *spec, fp4_engine **out) {
    if (!spec || !out) return fp4_fail("engine: null argument");
    *out = NULL;
    const char *rest;
    if (strcmp(spec, "ref") == 0) return fp4_engine_ref_open(out);
    if (has_prefix(spec, "emu:", &rest)) return fp4emu_engine_open(rest, out);
    if (has_prefix(spec, "replay:", &rest)) return fp4conf_replay_open(rest, out);
    if (has_prefix(spec, "plugin:", &rest)) return fp4conf_plugin_open(rest, out);
    if (has_prefix(spec, "cuda:", &rest)) return fp4conf_cuda_open(rest, out);
    return fp4_fail("unknown engine '%s' (valid: ref, emu:PRESET[;STRUCTURE], replay:FILE, "
                    "plugin:LIB.so, cuda:INSTR; 'fp4sim engines' lists them)", spec);
}

void fp4conf_engine_help(FILE *f) {
    fprintf(f, "engines (the --engine SPEC of fp4sim gemm, model run, conform):\n"
               "  ref                        exact oracle: every kind, correctly rounded\n"
               "  emu:PRESET[:K=V,...][;S]   datapath model PRESET (or a model spec), kernel "
               "structure S\n"
               "                             S: promote=N,fma=0|1,korder=asc|desc,split=S,"
               "at=B1/B2,...,\n"
               "                             reduce=seq|rev|tree|order:I/J/...\n"
               "  replay:FILE[:u8=FMT]       outputs recorded in FILE (docs/engines.md)\n"
               "  plugin:LIB.so[:ARGS]       a plugin exporting fp4sim_engine_open_v1\n"
               "  cuda:INSTR                 the GPU's instruction INSTR, one K step at a time\n"
               "\nemu presets (status: measured on hardware, published by others, candidate, "
               "reference software):\n");
    fp4emu_preset_list(f);
    fprintf(f, "\ncuda instructions (need the GPU that has them; CUDA kernels built: %s):\n",
            fp4k_built_with_cuda() ? "yes" : "no");
    for (int i = 0; i < FP4K_PROBE_COUNT; i++) {
        const fp4k_probe_desc *d = fp4k_probe_info((fp4k_probe_instr)i);
        fprintf(f, "  %-26s %s\n", d->name, d->ptx);
    }
}
