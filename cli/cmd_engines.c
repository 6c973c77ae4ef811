/* cmd_engines.c - `fp4sim engines [SPEC] [--json]`: the GEMM engines a
 * --engine SPEC can name (ref, emu presets with their evidence, replay,
 * plugins, the GPU's instructions), or what one spec opens to. */
#include "args.h"
#include "commands.h"
#include "fp4conform.h"
#include "fp4emu.h"
#include "fp4kernels.h"
#include "render.h"

#include <string.h>

static const char k_help[] =
    "usage: fp4sim engines [SPEC] [--json]\n"
    "\n"
    "Without SPEC: the engine kinds, every emu preset (status, operand formats,\n"
    "model, evidence) and the GPU instructions a cuda: engine can run.\n"
    "With SPEC (e.g. 'emu:sm90-qgmma-e4m3-f32;promote=128', quote the ';'):\n"
    "opens it and prints its name, kind, capabilities and evidence, or why it\n"
    "cannot be opened here (exit 2). docs/engines.md describes the specs.\n"
    "\n"
    "options:\n"
    "  --json    machine-readable output\n";

typedef struct eng_state {
    const char *spec;
    bool json;
} eng_state;

static int opt_json(void *s, const char *n, const char *v) {
    ((eng_state *)s)->json = true;
    return CLI_OK;
}

static int positional(void *s, const char *arg) {
    eng_state *st = s;
    if (st->spec) return cli_usage_error("engines: one SPEC at a time ('%s' and '%s')", st->spec, arg);
    st->spec = arg;
    return CLI_OK;
}

static const cli_opt k_opts[] = {{"--json", false, opt_json}};

static cJSON *presets_json(void) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < fp4emu_preset_count(); i++) {
        const fp4emu_preset *p = fp4emu_preset_at(i);
        char model[256];
        fp4emu_model_format(&p->model, model, sizeof model);
        char spec[128];
        snprintf(spec, sizeof spec, "emu:%s", p->name);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", p->name);
        cJSON_AddStringToObject(o, "spec", spec);
        cJSON_AddStringToObject(o, "status", fp4emu_status_name(p->status));
        cJSON_AddStringToObject(o, "inputs", p->inputs);
        cJSON_AddStringToObject(o, "model", model);
        cJSON_AddStringToObject(o, "evidence", p->evidence);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

static cJSON *instructions_json(void) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < FP4K_PROBE_COUNT; i++) {
        const fp4k_probe_desc *d = fp4k_probe_info((fp4k_probe_instr)i);
        cJSON *o = cJSON_CreateObject();
        char spec[96];
        snprintf(spec, sizeof spec, "cuda:%s", d->name);
        cJSON_AddStringToObject(o, "spec", spec);
        cJSON_AddStringToObject(o, "ptx", d->ptx);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

static int list_all(bool json) {
    if (!json) {
        fp4conf_engine_help(stdout);
        printf("\nevidence of each emu preset:\n");
        for (int i = 0; i < fp4emu_preset_count(); i++) {
            const fp4emu_preset *p = fp4emu_preset_at(i);
            printf("  %s [%s]: %s\n", p->name, fp4emu_status_name(p->status), p->evidence);
        }
        printf("\nOne engine in detail: fp4sim engines SPEC. Specs: docs/engines.md.\n");
        return CLI_OK;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *kinds = cJSON_AddArrayToObject(o, "kinds");
    const char *k[] = {"ref", "emu:PRESET[:KEY=VAL,...][;STRUCTURE]", "replay:FILE[:u8=FMT]",
                       "plugin:LIB.so[:ARGS]", "cuda:INSTR"};
    for (int i = 0; i < 5; i++) cJSON_AddItemToArray(kinds, cJSON_CreateString(k[i]));
    cJSON_AddItemToObject(o, "emu_presets", presets_json());
    cJSON_AddBoolToObject(o, "cuda_kernels_built", fp4k_built_with_cuda());
    cJSON_AddItemToObject(o, "cuda_instructions", instructions_json());
    return cli_json_print(o);
}

static int show_one(const char *spec, bool json) {
    fp4_engine *e = NULL;
    if (fp4conf_engine_open(spec, &e) != 0) return cli_lib_error("engines: '%s'", spec);
    char caps[512];
    fp4_engine_caps_describe(&e->caps, caps, sizeof caps);
    int rc;
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", e->name);
        cJSON_AddStringToObject(o, "kind", e->kind);
        cJSON_AddStringToObject(o, "capabilities", caps);
        cJSON_AddBoolToObject(o, "exact", e->caps.exact);
        cJSON_AddBoolToObject(o, "device", e->caps.device);
        cJSON_AddStringToObject(o, "evidence", e->evidence);
        rc = cli_json_print(o);
    } else {
        printf("engine:       %s\nkind:         %s\ncapabilities: %s\nevidence:     %s\n",
               e->name, e->kind, caps, e->evidence);
        rc = CLI_OK;
    }
    fp4_engine_close(e);
    return rc;
}

int cli_cmd_engines(int argc, char **argv) {
    eng_state st = {0};
    int rc = cli_parse(argc, argv, "engines", k_opts, 1, &st, positional);
    if (rc == CLI_HELP) {
        fputs(k_help, stdout);
        return CLI_OK;
    }
    if (rc != CLI_OK) return rc;
    return st.spec ? show_one(st.spec, st.json) : list_all(st.json);
}
