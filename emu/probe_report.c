/* probe_report.c - what a probe says: the text summary, the fingerprint
 * JSON and the failing-cases JSON (docs/probe.md "Fingerprint format").
 * Codes are written as upper-case hex at the format's width, operand rows
 * as space-separated codes in K order (TestFloat's line style). */
#include "probe_internal.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

/* Hex digits of a code (every probed format has at most 32 bits). */
static int hex_width(fp4_format f) {
    const int w = (fp4_format_get(f)->bits + 3) / 4;
    return w < 1 ? 1 : w > 8 ? 8 : w;
}

static void hex_code(char *buf, size_t n, fp4_format f, uint64_t c) {
    snprintf(buf, n, "0x%0*llX", hex_width(f), (unsigned long long)c);
}

/* "3C00 4000 ..." : n codes of format f. */
static char *hex_row(fp4_format f, const void *codes, int bytes, int n) {
    const int w = hex_width(f);
    char *s = malloc((size_t)(n * (w + 1) + 1));
    if (!s) return NULL;
    char *p = s;
    for (int i = 0; i < n; i++)
        p += sprintf(p, "%s%0*llX", i ? " " : "", w,
                     (unsigned long long)probe_code(codes, bytes, i));
    *p = '\0';
    return s;
}

/* ------------------------------------------------------------------------ */
/* Text                                                                      */
/* ------------------------------------------------------------------------ */

static void print_groups(FILE *f, const fp4emu_probe_result *r) {
    fprintf(f, "  samples:");
    for (int g = 0; g < FP4EMU_PG_COUNT; g++)
        if (r->n[g])
            fprintf(f, " %s %lld/%lld", fp4emu_probe_group_name((fp4emu_probe_group)g),
                    (long long)r->matched[g], (long long)r->n[g]);
    fputc('\n', f);
}

static void print_case(FILE *f, const fp4emu_probe_instr *ins, const fp4emu_probe_case *c) {
    char cc[24], got[24], mod[24];
    hex_code(cc, sizeof cc, ins->acc, c->c);
    hex_code(got, sizeof got, ins->acc, c->got);
    hex_code(mod, sizeof mod, ins->acc, c->model);
    fprintf(f, "  mismatch %s sample %lld: C %s measured %s model %s\n",
            fp4emu_probe_group_name(c->group), (long long)c->sample, cc, got, mod);
}

/* Samples of every group but the exact one (the presets' "all" count). */
static int64_t measured_total(const fp4emu_probe_result *r) {
    int64_t n = 0;
    for (int g = FP4EMU_PG_EXACT + 1; g < FP4EMU_PG_COUNT; g++) n += r->n[g];
    return n;
}

void fp4emu_probe_print(FILE *f, const fp4emu_probe_result *r) {
    const fp4emu_probe_instr *ins = r->instr;
    char buf[256];
    fprintf(f, "%s (%s, %s): %s\n", ins->name, ins->arch, ins->ptx,
            fp4emu_probe_verdict_name(r->verdict));
    if (r->have_model) {
        fp4emu_model_format(&r->model, buf, sizeof buf);
        fprintf(f, "  model: %s", buf);
        if (r->f_hi > r->f_lo)
            fprintf(f, "  (any F in %d..%d on the fitted samples)", r->f_lo, r->f_hi);
        fputc('\n', f);
        fprintf(f, "  fit: %lld samples, %lld candidates, %lld evaluated in full, %lld match all\n",
                (long long)r->fit.n_samples, (long long)r->fit.n_candidates,
                (long long)r->fit.n_evaluated, (long long)r->fit.n_full);
    }
    print_groups(f, r);
    for (int i = 0; i < r->n_presets; i++) {
        const fp4emu_probe_preset_match *p = &r->presets[i];
        fprintf(f, "  preset %-26s %-9s fitted %lld/%lld, all %lld/%lld%s\n", p->preset->name,
                fp4emu_status_name(p->preset->status), (long long)p->fit_matches,
                (long long)r->n_fit, (long long)p->all_matches, (long long)measured_total(r),
                p->fit_matches == r->n_fit && r->n_fit ? "  <- reproduces the fitted samples" : "");
    }
    const int show = r->n_cases < 8 ? r->n_cases : 8;
    for (int i = 0; i < show; i++) print_case(f, ins, &r->cases[i]);
    if (r->n_mismatch > show)
        fprintf(f, "  ... %lld mismatching samples in all\n", (long long)r->n_mismatch);
}

/* ------------------------------------------------------------------------ */
/* JSON                                                                      */
/* ------------------------------------------------------------------------ */

static void add_hex(cJSON *o, const char *key, fp4_format f, uint64_t c) {
    char buf[24];
    hex_code(buf, sizeof buf, f, c);
    cJSON_AddStringToObject(o, key, buf);
}

static bool add_row(cJSON *o, const char *key, fp4_format f, const void *codes, int bytes, int n) {
    char *s = hex_row(f, codes, bytes, n);
    if (s) cJSON_AddStringToObject(o, key, s);
    free(s);
    return s != NULL;
}

static cJSON *case_json(const fp4emu_probe_instr *ins, const fp4emu_probe_case *c) {
    cJSON *o = cJSON_CreateObject();
    const int ns = probe_nscales(ins);
    cJSON_AddStringToObject(o, "group", fp4emu_probe_group_name(c->group));
    cJSON_AddNumberToObject(o, "sample", (double)c->sample);
    add_row(o, "a", ins->in.a_fmt, c->a, 2, ins->k);
    add_row(o, "b", ins->in.b_fmt, c->b, 2, ins->k);
    if (ns) {
        add_row(o, "sa", FP4_FMT_UE4M3, c->sa, 1, ns);
        add_row(o, "sb", FP4_FMT_UE4M3, c->sb, 1, ns);
    }
    add_hex(o, "c", ins->acc, c->c);
    add_hex(o, "measured", ins->acc, c->got);
    add_hex(o, "model", ins->acc, c->model);
    return o;
}

static cJSON *fit_json(const fp4emu_probe_result *r) {
    char buf[256];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "samples", (double)r->fit.n_samples);
    cJSON_AddNumberToObject(o, "candidates", (double)r->fit.n_candidates);
    cJSON_AddNumberToObject(o, "evaluated", (double)r->fit.n_evaluated);
    cJSON_AddNumberToObject(o, "full_matches", (double)r->fit.n_full);
    cJSON *best = cJSON_AddArrayToObject(o, "best");
    for (int i = 0; i < r->fit.n_best && i < 8; i++) {
        cJSON *e = cJSON_CreateObject();
        fp4emu_model_format(&r->fit.best[i].model, buf, sizeof buf);
        cJSON_AddStringToObject(e, "model", buf);
        cJSON_AddNumberToObject(e, "f_hi", r->fit.best[i].f_hi);
        cJSON_AddNumberToObject(e, "matches", (double)r->fit.best[i].matches);
        cJSON_AddItemToArray(best, e);
    }
    return o;
}

static cJSON *presets_json(const fp4emu_probe_result *r) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < r->n_presets; i++) {
        const fp4emu_probe_preset_match *p = &r->presets[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", p->preset->name);
        cJSON_AddStringToObject(e, "status", fp4emu_status_name(p->preset->status));
        cJSON_AddNumberToObject(e, "fit_matches", (double)p->fit_matches);
        cJSON_AddNumberToObject(e, "all_matches", (double)p->all_matches);
        cJSON_AddBoolToObject(e, "reproduces_fitted", r->n_fit && p->fit_matches == r->n_fit);
        cJSON_AddItemToArray(a, e);
    }
    return a;
}

static cJSON *groups_json(const fp4emu_probe_result *r) {
    cJSON *o = cJSON_CreateObject();
    for (int g = 0; g < FP4EMU_PG_COUNT; g++) {
        if (!r->n[g]) continue;
        cJSON *e = cJSON_AddObjectToObject(o, fp4emu_probe_group_name((fp4emu_probe_group)g));
        cJSON_AddNumberToObject(e, "n", (double)r->n[g]);
        cJSON_AddNumberToObject(e, "matched", (double)r->matched[g]);
    }
    return o;
}

static cJSON *result_json(const fp4emu_probe_result *r, const char *sass, int max_cases) {
    const fp4emu_probe_instr *ins = r->instr;
    char buf[256];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", ins->name);
    cJSON_AddStringToObject(o, "arch", ins->arch);
    cJSON_AddStringToObject(o, "ptx", ins->ptx);
    cJSON_AddStringToObject(o, "sass_expected", ins->sass);
    if (sass)
        cJSON_AddStringToObject(o, "sass_seen", sass);
    else
        cJSON_AddNullToObject(o, "sass_seen");
    cJSON_AddStringToObject(o, "verdict", fp4emu_probe_verdict_name(r->verdict));
    if (r->have_model) {
        fp4emu_model_format(&r->model, buf, sizeof buf);
        cJSON_AddStringToObject(o, "model", buf);
        cJSON *fr = cJSON_AddArrayToObject(o, "f_range");
        cJSON_AddItemToArray(fr, cJSON_CreateNumber(r->f_lo));
        cJSON_AddItemToArray(fr, cJSON_CreateNumber(r->f_hi));
        cJSON_AddItemToObject(o, "fit", fit_json(r));
    } else {
        cJSON_AddNullToObject(o, "model");
    }
    cJSON_AddItemToObject(o, "samples", groups_json(r));
    cJSON_AddItemToObject(o, "presets", presets_json(r));
    cJSON_AddNumberToObject(o, "mismatches", (double)r->n_mismatch);
    cJSON *cases = cJSON_AddArrayToObject(o, "cases");
    for (int i = 0; i < r->n_cases && i < max_cases; i++)
        cJSON_AddItemToArray(cases, case_json(ins, &r->cases[i]));
    return o;
}

static char *print_and_free(cJSON *root) {
    char *s = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!s) fp4_fail("probe: out of memory writing JSON");
    return s;
}

char *fp4emu_probe_fingerprint(const fp4emu_probe_target *t, const fp4emu_probe_opts *o,
                               const fp4emu_probe_result *r, int n, const char *const *sass) {
    if (!t || (n > 0 && !r)) {
        fp4_fail("probe: null target or results");
        return NULL;
    }
    const fp4emu_probe_opts opts = o ? *o : fp4emu_probe_opts_default();
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "fp4sim_fingerprint", 1);
    cJSON *dev = cJSON_AddObjectToObject(root, "device");
    char cc[16];
    snprintf(cc, sizeof cc, "%d.%d", t->cc_major, t->cc_minor);
    cJSON_AddStringToObject(dev, "name", t->device);
    cJSON_AddStringToObject(dev, "compute_capability", cc);
    cJSON_AddNumberToObject(dev, "driver", t->driver_version);
    cJSON_AddNumberToObject(dev, "cuda_runtime", t->runtime_version);
    cJSON_AddBoolToObject(dev, "simulated", t->simulated);
    cJSON *run = cJSON_AddObjectToObject(root, "run");
    cJSON_AddNumberToObject(run, "random", (double)opts.count);
    cJSON_AddNumberToObject(run, "targeted_per_group", (double)opts.targeted);
    cJSON_AddNumberToObject(run, "seed", (double)opts.seed);
    cJSON *a = cJSON_AddArrayToObject(root, "instructions");
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(a, result_json(&r[i], sass ? sass[i] : NULL, 16));
    return print_and_free(root);
}

char *fp4emu_probe_cases_json(const fp4emu_probe_result *r, int n) {
    cJSON *root = cJSON_CreateObject();
    cJSON *a = cJSON_AddArrayToObject(root, "instructions");
    for (int i = 0; r && i < n; i++) {
        if (!r[i].n_cases) continue;
        cJSON *e = cJSON_CreateObject();
        char buf[256];
        cJSON_AddStringToObject(e, "name", r[i].instr->name);
        cJSON_AddStringToObject(e, "verdict", fp4emu_probe_verdict_name(r[i].verdict));
        if (r[i].have_model) fp4emu_model_format(&r[i].model, buf, sizeof buf);
        cJSON_AddStringToObject(e, "reference",
                                r[i].verdict == FP4EMU_PROBE_LAYOUT_ERROR ? "exact sum"
                                : r[i].have_model                         ? buf
                                                                          : "none");
        cJSON_AddNumberToObject(e, "mismatches", (double)r[i].n_mismatch);
        cJSON *cases = cJSON_AddArrayToObject(e, "cases");
        for (int j = 0; j < r[i].n_cases; j++)
            cJSON_AddItemToArray(cases, case_json(r[i].instr, &r[i].cases[j]));
        cJSON_AddItemToArray(a, e);
    }
    return print_and_free(root);
}
