/* cmd_probe.c - `fp4sim probe`: fingerprint the tensor cores of the GPU
 * present (or of a simulated one), `fp4sim probe rcp`: measure its
 * rcp.approx.ftz.f32 table, `fp4sim probe list`: the probed instructions
 * (docs/probe.md). Wires kernels/ (fp4k_probe_mma, fp4k_probe_rcp) into
 * emu/'s probe driver (fp4emu_probe_run) as its target. */
#include "args.h"
#include "commands.h"
#include "fp4emu.h"
#include "fp4kernels.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char k_help[] =
    "usage: fp4sim probe [options]\n"
    "       fp4sim probe rcp --out FILE\n"
    "       fp4sim probe list\n"
    "\n"
    "Runs one MMA instruction per tile on targeted and random inputs, fits the\n"
    "block-FMA datapath model blind (fp4emu_fit), compares the presets and\n"
    "writes a fingerprint (docs/probe.md). Exit status 0 when every probed\n"
    "instruction is explained by a model, 1 when one is not (its failing cases\n"
    "are saved) or no GPU is present, 2 for bad arguments.\n"
    "\n"
    "options:\n"
    "  --instr NAME|all      instruction ('fp4sim probe list'; default all: every\n"
    "                        instruction this GPU has, or that --simulate fits)\n"
    "  --count N             random dot products per instruction (default 100000)\n"
    "  --targeted N          dot products per targeted group (default 4096)\n"
    "  --seed S              Philox seed of the inputs (default 0)\n"
    "  --out FILE            write the fingerprint JSON to FILE\n"
    "  --cases FILE          write the mismatching cases to FILE (default, when an\n"
    "                        instruction is unexplained: FILE of --out + .failing.json,\n"
    "                        or probe-failing.json)\n"
    "  --simulate MODEL      probe a model instead of a GPU: a preset name or a\n"
    "                        model string ('sm90-qgmma-e4m3-f32:F=14')\n"
    "  --json                print the fingerprint on stdout instead of text\n"
    "\n"
    "probe rcp: rcp.approx.ftz.f32 over all 2^23 mantissas, written as\n"
    "data/mufu-rcp-sm90's 2-bit table (--out FILE, 2 MiB) and compared with it.\n";

typedef struct probe_state {
    const char *instr, *out, *cases, *simulate;
    uint64_t count, targeted, seed;
    bool json;
} probe_state;

#define STR_OPT(fn, field)                                                                         \
    static int fn(void *s, const char *name, const char *v) {                                      \
        ((probe_state *)s)->field = v;                                                             \
        return CLI_OK;                                                                             \
    }
STR_OPT(opt_instr, instr)
STR_OPT(opt_out, out)
STR_OPT(opt_cases, cases)
STR_OPT(opt_simulate, simulate)

static int opt_count(void *s, const char *name, const char *v) {
    return cli_parse_uint("probe", name, v, 1, 1u << 28, &((probe_state *)s)->count);
}
static int opt_targeted(void *s, const char *name, const char *v) {
    return cli_parse_uint("probe", name, v, 0, 1u << 24, &((probe_state *)s)->targeted);
}
static int opt_seed(void *s, const char *name, const char *v) {
    return cli_parse_uint("probe", name, v, 0, UINT64_MAX, &((probe_state *)s)->seed);
}
static int opt_json(void *s, const char *name, const char *v) {
    ((probe_state *)s)->json = true;
    return CLI_OK;
}

static const cli_opt k_opts[] = {
    {"--instr", true, opt_instr},       {"--count", true, opt_count},
    {"--targeted", true, opt_targeted}, {"--seed", true, opt_seed},
    {"--out", true, opt_out},           {"--cases", true, opt_cases},
    {"--simulate", true, opt_simulate}, {"--json", false, opt_json},
};

/* ------------------------------------------------------------------------ */
/* Targets                                                                   */
/* ------------------------------------------------------------------------ */

/* The GPU as the driver's target: one fp4k_probe_mma call per batch (the
 * layouts of fp4emu_probe_batch and fp4k_probe_req are the same). */
static int gpu_run(void *ctx, const fp4emu_probe_instr *ins, const fp4emu_probe_batch *b,
                   uint32_t *d) {
    (void)ctx;
    const fp4k_probe_instr ki = fp4k_probe_find(ins->name);
    if (ki == FP4K_PROBE_COUNT) return fp4_fail("probe: kernels/ has no probe for %s", ins->name);
    const fp4k_probe_req req = {ki, b->tiles, b->a, b->b, b->sa, b->sb, b->c};
    return fp4k_probe_mma(&req, d) == FP4K_OK ? 0 : -1;
}

static int gpu_target(fp4emu_probe_target *t) {
    if (!fp4k_built_with_cuda())
        return cli_fail(
            "probe: fp4sim was built without CUDA (no nvcc at configure time); rebuild with "
            "CUDA, or use --simulate PRESET to probe a model");
    if (fp4k_device_count() == 0)
        return cli_fail("probe: no CUDA GPU is visible; use --simulate PRESET to probe a model");
    fp4k_device_info di;
    if (fp4k_get_device_info(0, &di) != FP4K_OK) return cli_lib_error("probe");
    memset(t, 0, sizeof *t);
    t->run = gpu_run;
    snprintf(t->device, sizeof t->device, "%s", di.name);
    t->cc_major = di.cc_major, t->cc_minor = di.cc_minor;
    t->driver_version = di.driver_version, t->runtime_version = di.runtime_version;
    return CLI_OK;
}

/* ------------------------------------------------------------------------ */
/* Which instructions                                                        */
/* ------------------------------------------------------------------------ */

typedef struct instr_list {
    const fp4emu_probe_instr *v[64];
    int n;
} instr_list;

static bool model_fits(const fp4emu_model *m, const fp4emu_probe_instr *ins) {
    return m->k == ins->k && m->acc == ins->acc &&
           (m->scale_at != FP4EMU_SCALE_CHUNK || ins->in.scale_fmt != FP4_FMT_COUNT);
}

static bool gpu_fits(const fp4emu_probe_target *t, const fp4emu_probe_instr *ins) {
    const fp4k_probe_desc *d = fp4k_probe_info(fp4k_probe_find(ins->name));
    if (!d) return false;
    if (d->cc_major) return d->cc_major == t->cc_major;
    return t->cc_major * 10 + t->cc_minor >= 89;
}

static int pick_instrs(const probe_state *st, const fp4emu_probe_target *t, const fp4emu_model *sim,
                       instr_list *l) {
    l->n = 0;
    if (st->instr && strcmp(st->instr, "all") != 0) {
        const fp4emu_probe_instr *ins = fp4emu_probe_instr_get(st->instr);
        if (!ins) return cli_lib_error("probe");
        if (sim && !model_fits(sim, ins))
            return cli_usage_error(
                "probe: the --simulate model (k=%d, %s) cannot stand for %s (k=%d, %s)", sim->k,
                fp4_format_get(sim->acc)->name, ins->name, ins->k, fp4_format_get(ins->acc)->name);
        l->v[l->n++] = ins;
        return CLI_OK;
    }
    for (int i = 0; i < fp4emu_probe_instr_count(); i++) {
        const fp4emu_probe_instr *ins = fp4emu_probe_instr_at(i);
        if (sim ? model_fits(sim, ins) : gpu_fits(t, ins)) l->v[l->n++] = ins;
    }
    if (l->n == 0)
        return sim ? cli_usage_error(
                         "probe: no instruction has the shape of the --simulate model (k=%d, %s)",
                         sim->k, fp4_format_get(sim->acc)->name)
                   : cli_fail("probe: fp4sim has no probe for this GPU (%s, sm_%d%d)", t->device,
                              t->cc_major, t->cc_minor);
    return CLI_OK;
}

/* ------------------------------------------------------------------------ */
/* SASS                                                                      */
/* ------------------------------------------------------------------------ */

/* The MMA-related opcodes (…MMA, F2FP, MUFU) of a probe kernel, from
 * `cuobjdump -sass` on this executable (its fatbin holds the kernels), or
 * NULL when cuobjdump is not available. */
static char *sass_seen(const char *kernel, int cc_major, int cc_minor) {
    char cmd[4608], line[1024], exe[4096];
    const char *tool = "/usr/local/cuda/bin/cuobjdump";
    if (access(tool, X_OK) != 0)
        tool = system("command -v cuobjdump >/dev/null 2>&1") == 0 ? "cuobjdump" : NULL;
    /* This executable's own path: /proc/self/exe inside the popen'ed shell
     * would name the shell or cuobjdump. */
    const ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (!tool || len <= 0 || memchr(exe, '\'', (size_t)len)) return NULL;
    exe[len] = '\0';
    snprintf(cmd, sizeof cmd, "%s -sass -arch sm_%d%da -fun %s '%s' 2>/dev/null", tool, cc_major,
             cc_minor, kernel, exe);
    FILE *p = popen(cmd, "r");
    if (!p) return NULL;
    char *out = calloc(1, 1024);
    while (out && fgets(line, sizeof line, p)) {
        char *op = strstr(line, "*/");
        if (!op) continue;
        op += 2;
        op += strspn(op, " \t");
        if (*op == '@') op += strcspn(op, " \t"), op += strspn(op, " \t"); /* predicate */
        op[strcspn(op, " \t;\n")] = '\0';
        if (!strstr(op, "MMA") && !strstr(op, "F2FP") && !strstr(op, "MUFU")) continue;
        if (strstr(out, op) || strlen(out) + strlen(op) + 3 >= 1024) continue;
        if (*out) strcat(out, ", ");
        strcat(out, op);
    }
    pclose(p);
    if (out && !*out) free(out), out = NULL;
    return out;
}

/* ------------------------------------------------------------------------ */
/* Output                                                                    */
/* ------------------------------------------------------------------------ */

static int write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return cli_fail("probe: cannot write %s", path);
    bool ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    ok = fclose(f) == 0 && ok;
    return ok ? CLI_OK : cli_fail("probe: error writing %s", path);
}

static bool explained(const fp4emu_probe_result *r) {
    return r->verdict == FP4EMU_PROBE_EXPLAINED || r->verdict == FP4EMU_PROBE_EXPLAINED_FINITE;
}

/* The failing cases file: --cases, else next to --out, else in the cwd. */
static int save_cases(const probe_state *st, const fp4emu_probe_result *r, int n, bool any_bad) {
    if (!st->cases && !any_bad) return CLI_OK;
    char path[4096];
    if (st->cases)
        snprintf(path, sizeof path, "%s", st->cases);
    else
        snprintf(path, sizeof path, "%s%s", st->out ? st->out : "probe",
                 st->out ? ".failing.json" : "-failing.json");
    char *json = fp4emu_probe_cases_json(r, n);
    if (!json) return cli_lib_error("probe");
    int rc = write_text(path, json);
    free(json);
    if (rc == CLI_OK) fprintf(st->json ? stderr : stdout, "failing cases saved to %s\n", path);
    return rc;
}

static int report(const probe_state *st, const fp4emu_probe_target *t, const fp4emu_probe_opts *o,
                  const fp4emu_probe_result *r, int n) {
    const char *sass[64] = {0};
    char *owned[64] = {0};
    for (int i = 0; !t->simulated && i < n; i++) {
        const fp4k_probe_desc *d = fp4k_probe_info(fp4k_probe_find(r[i].instr->name));
        sass[i] = owned[i] = d ? sass_seen(d->kernel, t->cc_major, t->cc_minor) : NULL;
    }
    char *json = fp4emu_probe_fingerprint(t, o, r, n, sass);
    for (int i = 0; i < n; i++) free(owned[i]);
    if (!json) return cli_lib_error("probe");
    int rc = st->out ? write_text(st->out, json) : CLI_OK;
    if (st->json && rc == CLI_OK) rc = puts(json) < 0 ? CLI_FAIL : CLI_OK;
    free(json);
    if (rc == CLI_OK && st->out && !st->json) printf("fingerprint written to %s\n", st->out);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* probe                                                                     */
/* ------------------------------------------------------------------------ */

static int run_all(const probe_state *st, const fp4emu_probe_target *t, const instr_list *l) {
    fp4emu_probe_opts o = fp4emu_probe_opts_default();
    o.count = (int64_t)st->count, o.targeted = (int64_t)st->targeted, o.seed = st->seed;
    fp4emu_probe_result *r = calloc((size_t)l->n, sizeof *r);
    if (!r) return cli_fail("probe: out of memory");
    int rc = CLI_OK, done = 0;
    bool any_bad = false;
    if (!st->json && t->simulated)
        printf("device: %s\n", t->device);
    else if (!st->json)
        printf("device: %s (compute capability %d.%d)\n", t->device, t->cc_major, t->cc_minor);
    for (; done < l->n; done++) {
        if (fp4emu_probe_run(l->v[done], t, &o, &r[done])) {
            rc = cli_lib_error("probe: %s", l->v[done]->name);
            break;
        }
        if (!st->json) fp4emu_probe_print(stdout, &r[done]);
        if (!explained(&r[done])) {
            any_bad = true;
            fprintf(st->json ? stderr : stdout, "%s: %s\n", l->v[done]->name,
                    r[done].verdict == FP4EMU_PROBE_LAYOUT_ERROR
                        ? "LAYOUT ERROR: exact small-integer sums came back wrong (a probe bug, "
                          "not numerics)"
                        : "UNEXPLAINED: no candidate model reproduces this GPU's results");
        }
    }
    if (rc == CLI_OK) rc = report(st, t, &o, r, done);
    if (rc == CLI_OK) rc = save_cases(st, r, done, any_bad);
    for (int i = 0; i < done; i++) fp4emu_probe_result_free(&r[i]);
    free(r);
    return rc != CLI_OK ? rc : any_bad ? CLI_FAIL : CLI_OK;
}

static int cmd_main(int argc, char **argv) {
    probe_state st = {.count = 100000, .targeted = 4096};
    int rc = cli_parse(argc, argv, "probe", k_opts, sizeof k_opts / sizeof k_opts[0], &st, NULL);
    if (rc == CLI_HELP) return fputs(k_help, stdout) < 0 ? CLI_FAIL : CLI_OK;
    if (rc != CLI_OK) return rc;
    fp4emu_model sim;
    fp4emu_probe_target t;
    if (st.simulate) {
        if (fp4emu_model_parse(st.simulate, &sim))
            return cli_lib_error("probe: --simulate");
        t = fp4emu_probe_target_model(&sim, st.simulate);
    } else if (st.instr && strcmp(st.instr, "all") && !fp4emu_probe_instr_get(st.instr)) {
        return cli_lib_error("probe"); /* a bad name before any GPU question */
    } else if ((rc = gpu_target(&t)) != CLI_OK) {
        return rc;
    }
    instr_list l;
    if ((rc = pick_instrs(&st, &t, st.simulate ? &sim : NULL, &l)) != CLI_OK) return rc;
    return run_all(&st, &t, &l);
}

/* ------------------------------------------------------------------------ */
/* probe rcp, probe list                                                     */
/* ------------------------------------------------------------------------ */

static int rcp_out(void *s, const char *name, const char *v) {
    *(const char **)s = v;
    return CLI_OK;
}

static int cmd_rcp(int argc, char **argv) {
    const char *out = NULL;
    const cli_opt opts[] = {{"--out", true, rcp_out}};
    int rc = cli_parse(argc, argv, "probe rcp", opts, 1, &out, NULL);
    if (rc == CLI_HELP) return fputs(k_help, stdout) < 0 ? CLI_FAIL : CLI_OK;
    if (rc != CLI_OK) return rc;
    if (!out) return cli_usage_error("probe rcp: --out FILE is required (the 2 MiB table)");
    fp4emu_probe_target t;
    if ((rc = gpu_target(&t)) != CLI_OK) return rc;
    uint8_t *table = malloc(FP4K_RCP_TABLE_BYTES);
    fp4k_rcp_stats s;
    if (!table) return cli_fail("probe rcp: out of memory");
    if (fp4k_probe_rcp(table, &s) != FP4K_OK) {
        free(table);
        return cli_lib_error("probe rcp");
    }
    FILE *f = fopen(out, "wb");
    bool ok = f && fwrite(table, 1, FP4K_RCP_TABLE_BYTES, f) == FP4K_RCP_TABLE_BYTES;
    ok = f && fclose(f) == 0 && ok;
    const unsigned char *ref = fp4_mufu_rcp_sm90_table_bytes();
    int64_t differ = 0;
    for (uint32_t i = 0; ref && i < FP4K_RCP_TABLE_BYTES; i++)
        for (int j = 0; j < 4; j++)
            differ += ((table[i] >> (2 * j)) & 3) != ((ref[i] >> (2 * j)) & 3);
    free(table);
    if (!ok) return cli_fail("probe rcp: cannot write %s", out);
    printf("device: %s (compute capability %d.%d), driver %d, runtime %d\n", t.device, t.cc_major,
           t.cc_minor, t.driver_version, t.runtime_version);
    printf("rcp.approx.ftz.f32 vs rcp.rn.f32 over 2^23 mantissas: equal %lld, +1 ulp %lld, -1 ulp "
           "%lld, other %lld\n",
           (long long)s.equal, (long long)s.plus1, (long long)s.minus1, (long long)s.other);
    printf("exponent invariance: %lld of %lld scaled inputs differ\n", (long long)s.exp_failures,
           (long long)s.exp_checked);
    for (int i = 0; i < s.n_specials; i++)
        printf("  rcp(0x%08X) = 0x%08X\n", s.specials_in[i], s.specials_out[i]);
    printf(
        "table written to %s; %s the measured sm_90 table (data/mufu-rcp-sm90) on %lld mantissas\n",
        out, differ ? "differs from" : "identical to", (long long)differ);
    return CLI_OK;
}

static int cmd_list(void) {
    for (int i = 0; i < fp4emu_probe_instr_count(); i++) {
        const fp4emu_probe_instr *ins = fp4emu_probe_instr_at(i);
        printf("%-30s %-8s k=%-3d %-4s %s\n    SASS %s; presets: %s\n", ins->name, ins->arch,
               ins->k, fp4_format_get(ins->acc)->name, ins->ptx, ins->sass,
               *ins->presets ? ins->presets : "none");
    }
    return CLI_OK;
}

int cli_cmd_probe(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "rcp") == 0) return cmd_rcp(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "list") == 0)
        return argc == 2 ? cmd_list()
                         : cli_usage_error("probe list: unexpected argument '%s'", argv[2]);
    return cmd_main(argc, argv);
}
