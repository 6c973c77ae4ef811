/* test_probe.c - the tensor-core probe driver (emu/probe*.c) against
 * simulated GPUs: every measured sm_90 preset and every Blackwell
 * mxf4nvf4 candidate is recovered blind from its own outputs; a target no
 * candidate explains is reported as such with its failing cases; a probe
 * with a deliberate operand-layout bug is caught by the exact group; a GPU
 * that flushes subnormal results or writes another NaN is refined or
 * flagged; the fingerprint JSON parses and round-trips (model string,
 * counts, case inputs); emu's instruction table agrees with kernels/'.
 *
 * `test_probe nogpu FP4SIM`: `fp4sim probe` without a GPU and without
 * --simulate must fail with a clear message (skips, 77, where a GPU is
 * visible). */
#include "fp4emu.h"
#include "fp4kernels.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <omp.h>
#include <sys/wait.h>

enum { COUNT = 3000, TARGETED = 1024 };

static fp4emu_probe_opts small_opts(void) {
    fp4emu_probe_opts o = fp4emu_probe_opts_default();
    o.count = COUNT;
    o.targeted = TARGETED;
    o.seed = fp4t_seed();
    return o;
}

/* ------------------------------------------------------------------------ */
/* Tables                                                                    */
/* ------------------------------------------------------------------------ */

static void test_tables(void) {
    fp4t_check(fp4emu_probe_instr_count() == FP4K_PROBE_COUNT,
               "emu has %d instructions, kernels %d", fp4emu_probe_instr_count(),
               (int)FP4K_PROBE_COUNT);
    for (int i = 0; i < fp4emu_probe_instr_count(); i++) {
        const fp4emu_probe_instr *e = fp4emu_probe_instr_at(i);
        const fp4k_probe_desc *k = fp4k_probe_info(fp4k_probe_find(e->name));
        if (!fp4t_check(k != NULL, "%s: no kernels/ probe", e->name)) continue;
        fp4t_check(k->m == e->m && k->n == e->n && k->k == e->k, "%s: shapes differ", e->name);
        fp4t_check(k->acc_bits == fp4_format_get(e->acc)->bits, "%s: accumulator width differs",
                   e->name);
        fp4t_check((k->scale_block != 0) == (e->in.scale_fmt != FP4_FMT_COUNT) &&
                       (!k->scale_block || k->scale_block == e->in.scale_block),
                   "%s: scaling differs", e->name);
        fp4t_check((k->elem == FP4K_ELEM_16) == (fp4_format_code_bytes(e->in.a_fmt) == 2),
                   "%s: element width differs", e->name);
        fp4t_check((k->elem == FP4K_ELEM_4_PACKED || k->elem == FP4K_ELEM_4_IN_8) ==
                       (e->in.a_fmt == FP4_FMT_E2M1),
                   "%s: e2m1 packing differs", e->name);
        char list[512];
        snprintf(list, sizeof list, "%s", e->presets);
        for (char *s = NULL, *p = strtok_r(list, ",", &s); p; p = strtok_r(NULL, ",", &s))
            fp4t_check(fp4emu_preset_get(p) != NULL, "%s: preset %s does not exist", e->name, p);
    }
    fp4t_check(fp4emu_probe_instr_get("no-such") == NULL &&
                   strstr(fp4_last_error(), "sm120-mma-mxf4nvf4"),
               "unknown instruction: message lists the valid ones");
    fp4t_check(fp4k_probe_info(FP4K_PROBE_COUNT) == NULL, "out-of-range kernels probe");
}

/* ------------------------------------------------------------------------ */
/* Blind recovery                                                            */
/* ------------------------------------------------------------------------ */

static bool among_full_matches(const fp4emu_probe_result *r, const fp4emu_model *m) {
    for (int i = 0; i < r->fit.n_best && r->fit.best[i].matches == r->n_fit; i++)
        if (fp4emu_fit_cand_has(&r->fit.best[i], m)) return true;
    return false;
}

static void test_recover(const char *instr, const char *preset) {
    const fp4emu_probe_instr *ins = fp4emu_probe_instr_get(instr);
    const fp4emu_preset *p = fp4emu_preset_get(preset);
    if (!fp4t_check(ins && p, "%s / %s exist", instr, preset)) return;
    fp4emu_probe_target t = fp4emu_probe_target_model(&p->model, p->name);
    fp4emu_probe_opts o = small_opts();
    fp4emu_probe_result r;
    if (!fp4t_check(fp4emu_probe_run(ins, &t, &o, &r) == 0, "%s: %s", instr, fp4_last_error()))
        return;
    printf("%s simulated by %s: %s, %lld fitted samples, %lld full matches\n", instr, preset,
           fp4emu_probe_verdict_name(r.verdict), (long long)r.n_fit, (long long)r.fit.n_full);
    fp4t_check(r.verdict == FP4EMU_PROBE_EXPLAINED, "%s/%s: verdict %s", instr, preset,
               fp4emu_probe_verdict_name(r.verdict));
    fp4t_check(r.n[FP4EMU_PG_RANDOM] >= COUNT && r.n_mismatch == 0 && r.n_cases == 0,
               "%s/%s: %lld mismatches", instr, preset, (long long)r.n_mismatch);
    fp4t_check(among_full_matches(&r, &p->model), "%s/%s: the preset is not among the full matches",
               instr, preset);
    bool listed = false;
    for (int i = 0; i < r.n_presets; i++)
        if (r.presets[i].preset == p)
            listed = r.presets[i].fit_matches == r.n_fit &&
                     r.presets[i].all_matches ==
                         r.n_fit + r.n[FP4EMU_PG_SUBNORMAL] + r.n[FP4EMU_PG_SPECIAL];
    fp4t_check(listed, "%s/%s: the preset is not reported as reproducing every sample", instr,
               preset);
    for (int g = 0; g < FP4EMU_PG_COUNT; g++)
        fp4t_check(r.matched[g] == r.n[g], "%s/%s: group %s %lld/%lld", instr, preset,
                   fp4emu_probe_group_name((fp4emu_probe_group)g), (long long)r.matched[g],
                   (long long)r.n[g]);
    fp4emu_probe_result_free(&r);
}

/* ------------------------------------------------------------------------ */
/* Targets that misbehave                                                    */
/* ------------------------------------------------------------------------ */

typedef struct odd_gpu {
    const fp4emu_model *m;
    int kind; /* 0: flips the last bit of some outputs; 1: B rows 0/1 swapped; 2: other NaN */
} odd_gpu;

static int odd_run(void *ctx, const fp4emu_probe_instr *ins, const fp4emu_probe_batch *b,
                   uint32_t *d) {
    const odd_gpu *g = ctx;
    if (g->kind == 1) { /* the probe's own bug: rows 0 and 1 of B exchanged in every tile */
        const int bytes = fp4_format_code_bytes(ins->in.b_fmt), row = ins->k * bytes;
        uint8_t *tmp = malloc((size_t)row);
        for (int64_t t = 0; t < b->tiles; t++) {
            uint8_t *r0 = (uint8_t *)b->b + (t * ins->n) * row;
            memcpy(tmp, r0, (size_t)row), memcpy(r0, r0 + row, (size_t)row),
                memcpy(r0 + row, tmp, (size_t)row);
        }
        int rc = fp4emu_probe_run_model((void *)g->m, ins, b, d);
        for (int64_t t = 0; t < b->tiles; t++) { /* put the inputs back as they were */
            uint8_t *r0 = (uint8_t *)b->b + (t * ins->n) * row;
            memcpy(tmp, r0, (size_t)row), memcpy(r0, r0 + row, (size_t)row),
                memcpy(r0 + row, tmp, (size_t)row);
        }
        free(tmp);
        return rc;
    }
    if (fp4emu_probe_run_model((void *)g->m, ins, b, d)) return -1;
    const int64_t n = b->tiles * ins->m * ins->n, per = (int64_t)ins->m * ins->n;
    for (int64_t s = 0; s < n; s++) {
        if (g->kind == 0 && b->group[s / per] != FP4EMU_PG_EXACT &&
            fp4t_rand32(1, 77, (uint64_t)s) % 7 == 0)
            d[s] ^= 1;
        if (g->kind == 2 && d[s] == 0x7FFFFFFFu) d[s] = 0x7FC00000u;
    }
    return 0;
}

static void parse_hex_row(const char *s, uint16_t *out, int n) {
    for (int i = 0; i < n && s; i++) {
        char *end;
        out[i] = (uint16_t)strtoul(s, &end, 16);
        s = *end ? end + 1 : NULL;
    }
}

static void test_alien(void) {
    const fp4emu_probe_instr *ins = fp4emu_probe_instr_get("sm100-tcgen05-mxf4nvf4");
    odd_gpu g = {&fp4emu_preset_get("sm100-mxf4nvf4-cand-a")->model, 0};
    fp4emu_probe_target t = {odd_run, &g, "alien", 10, 0, 0, 0, true};
    fp4emu_probe_opts o = small_opts();
    fp4emu_probe_result r;
    if (!fp4t_check(fp4emu_probe_run(ins, &t, &o, &r) == 0, "alien: %s", fp4_last_error())) return;
    fp4emu_probe_print(stdout, &r);
    fp4t_check(r.verdict == FP4EMU_PROBE_UNEXPLAINED, "alien: verdict %s",
               fp4emu_probe_verdict_name(r.verdict));
    fp4t_check(r.n_cases > 0 && r.n_cases <= o.max_cases && r.n_mismatch >= r.n_cases,
               "alien: %d cases of %lld", r.n_cases, (long long)r.n_mismatch);
    /* The failing-cases file lists them with inputs that reproduce the model's value. */
    char *json = fp4emu_probe_cases_json(&r, 1);
    cJSON *root = json ? cJSON_Parse(json) : NULL;
    cJSON *cases = cJSON_GetObjectItem(
        cJSON_GetArrayItem(cJSON_GetObjectItem(root, "instructions"), 0), "cases");
    fp4t_check(cJSON_GetArraySize(cases) == r.n_cases, "alien: failing-cases JSON lists %d of %d",
               cJSON_GetArraySize(cases), r.n_cases);
    for (int i = 0; i < r.n_cases && i < cJSON_GetArraySize(cases); i++) {
        const cJSON *c = cJSON_GetArrayItem(cases, i);
        uint16_t a[64] = {0}, b[64] = {0}, sa16[4] = {0}, sb16[4] = {0};
        parse_hex_row(cJSON_GetObjectItem(c, "a")->valuestring, a, 64);
        parse_hex_row(cJSON_GetObjectItem(c, "b")->valuestring, b, 64);
        parse_hex_row(cJSON_GetObjectItem(c, "sa")->valuestring, sa16, 4);
        parse_hex_row(cJSON_GetObjectItem(c, "sb")->valuestring, sb16, 4);
        uint8_t a8[64], b8[64], sa[4], sb[4];
        for (int k = 0; k < 64; k++) a8[k] = (uint8_t)a[k], b8[k] = (uint8_t)b[k];
        for (int j = 0; j < 4; j++) sa[j] = (uint8_t)sa16[j], sb[j] = (uint8_t)sb16[j];
        uint64_t d = 0, cc = strtoull(cJSON_GetObjectItem(c, "c")->valuestring, NULL, 16);
        fp4emu_mma(&r.model, &ins->in, a8, b8, sa, sb, cc, &d);
        fp4t_check(memcmp(a, r.cases[i].a, sizeof a) == 0 && memcmp(b, r.cases[i].b, sizeof b) == 0,
                   "alien: case %d inputs round-trip", i);
        fp4t_check(d == strtoull(cJSON_GetObjectItem(c, "model")->valuestring, NULL, 16) &&
                       d == r.cases[i].model && r.cases[i].got != r.cases[i].model,
                   "alien: case %d model value reproduces", i);
    }
    cJSON_Delete(root);
    free(json);
    fp4emu_probe_result_free(&r);
}

static void test_layout_bug(void) {
    const fp4emu_probe_instr *ins = fp4emu_probe_instr_get("sm90-wgmma-e4m3-f32");
    odd_gpu g = {&fp4emu_preset_get("sm90-qgmma-e4m3-f32")->model, 1};
    fp4emu_probe_target t = {odd_run, &g, "swapped rows", 9, 0, 0, 0, true};
    fp4emu_probe_opts o = small_opts();
    fp4emu_probe_result r;
    if (!fp4t_check(fp4emu_probe_run(ins, &t, &o, &r) == 0, "layout: %s", fp4_last_error())) return;
    fp4t_check(r.verdict == FP4EMU_PROBE_LAYOUT_ERROR && !r.have_model, "layout: verdict %s",
               fp4emu_probe_verdict_name(r.verdict));
    fp4t_check(r.n_cases > 0 && r.cases[0].group == FP4EMU_PG_EXACT &&
                   r.matched[FP4EMU_PG_EXACT] < r.n[FP4EMU_PG_EXACT],
               "layout: the exact group carries the evidence");
    fp4emu_probe_result_free(&r);
}

/* A GPU that flushes subnormal results: the fit (which assumes subnormals)
 * still explains the fitted samples, and the refinement finds subout=0. */
static void test_refine_flush(void) {
    const fp4emu_probe_instr *ins = fp4emu_probe_instr_get("sm90-wgmma-bf16-f32");
    fp4emu_model m = fp4emu_preset_get("sm90-hgmma-bf16")->model;
    m.out_subnormals = false;
    fp4emu_probe_target t = fp4emu_probe_target_model(&m, "flushing");
    fp4emu_probe_opts o = small_opts();
    fp4emu_probe_result r;
    if (!fp4t_check(fp4emu_probe_run(ins, &t, &o, &r) == 0, "flush: %s", fp4_last_error())) return;
    fp4t_check(r.verdict == FP4EMU_PROBE_EXPLAINED && !r.model.out_subnormals &&
                   r.model.in_subnormals,
               "flush: verdict %s, subout=%d", fp4emu_probe_verdict_name(r.verdict),
               r.model.out_subnormals);
    int64_t hg = -1;
    for (int i = 0; i < r.n_presets; i++)
        if (!strcmp(r.presets[i].preset->name, "sm90-hgmma-bf16")) hg = r.presets[i].all_matches;
    fp4t_check(hg >= 0 && hg < r.n_fit + r.n[FP4EMU_PG_SUBNORMAL] + r.n[FP4EMU_PG_SPECIAL],
               "flush: the subnormal-keeping preset misses some samples");
    fp4emu_probe_result_free(&r);
}

/* Another NaN encoding: explained on finite samples only, the special
 * group's NaN outputs listed as cases. */
static void test_other_nan(void) {
    const fp4emu_probe_instr *ins = fp4emu_probe_instr_get("mma-f16-f32");
    odd_gpu g = {&fp4emu_preset_get("sm90-hmma-16816-f32")->model, 2};
    fp4emu_probe_target t = {odd_run, &g, "nan", 9, 0, 0, 0, true};
    fp4emu_probe_opts o = small_opts();
    fp4emu_probe_result r;
    if (!fp4t_check(fp4emu_probe_run(ins, &t, &o, &r) == 0, "nan: %s", fp4_last_error())) return;
    fp4t_check(r.verdict == FP4EMU_PROBE_EXPLAINED_FINITE, "nan: verdict %s",
               fp4emu_probe_verdict_name(r.verdict));
    bool all_special = r.n_cases > 0;
    for (int i = 0; i < r.n_cases; i++)
        all_special =
            all_special && r.cases[i].group == FP4EMU_PG_SPECIAL && r.cases[i].got == 0x7FC00000u;
    fp4t_check(all_special, "nan: cases are the special group's NaNs");
    fp4emu_probe_result_free(&r);
}

/* ------------------------------------------------------------------------ */
/* Fingerprint, determinism, bad arguments                                   */
/* ------------------------------------------------------------------------ */

static void test_fingerprint(void) {
    const fp4emu_probe_instr *ins[2] = {fp4emu_probe_instr_get("sm90-wgmma-e4m3-f16"),
                                        fp4emu_probe_instr_get("mma-e4m3-f16")};
    const fp4emu_preset *p = fp4emu_preset_get("sm90-qgmma-e4m3-f16");
    fp4emu_probe_target t = fp4emu_probe_target_model(&p->model, p->name);
    fp4emu_probe_opts o = small_opts();
    fp4emu_probe_result r[2];
    for (int i = 0; i < 2; i++)
        fp4t_check(fp4emu_probe_run(ins[i], &t, &o, &r[i]) == 0, "fingerprint run %d", i);
    const char *sass[2] = {"QGMMA.64x8x32.F16.E4M3.E4M3", NULL};
    char *json = fp4emu_probe_fingerprint(&t, &o, r, 2, sass);
    cJSON *root = json ? cJSON_Parse(json) : NULL;
    if (!fp4t_check(root != NULL, "fingerprint parses")) return;
    fp4t_check(cJSON_GetObjectItem(root, "fp4sim_fingerprint")->valueint == 1, "format version");
    const cJSON *dev = cJSON_GetObjectItem(root, "device");
    fp4t_check(cJSON_IsTrue(cJSON_GetObjectItem(dev, "simulated")) &&
                   !strcmp(cJSON_GetObjectItem(dev, "name")->valuestring, t.device),
               "device");
    const cJSON *a = cJSON_GetObjectItem(root, "instructions");
    fp4t_check(cJSON_GetArraySize(a) == 2, "two instructions");
    for (int i = 0; i < 2 && i < cJSON_GetArraySize(a); i++) {
        const cJSON *e = cJSON_GetArrayItem(a, i);
        fp4emu_model back;
        fp4t_check(!strcmp(cJSON_GetObjectItem(e, "name")->valuestring, ins[i]->name), "name %d",
                   i);
        fp4t_check(!strcmp(cJSON_GetObjectItem(e, "verdict")->valuestring,
                           fp4emu_probe_verdict_name(r[i].verdict)),
                   "verdict %d", i);
        fp4t_check(fp4emu_model_parse(cJSON_GetObjectItem(e, "model")->valuestring, &back) == 0 &&
                       fp4emu_model_equal(&back, &r[i].model),
                   "model string %d round-trips", i);
        const cJSON *rnd = cJSON_GetObjectItem(cJSON_GetObjectItem(e, "samples"), "random");
        fp4t_check((int64_t)cJSON_GetObjectItem(rnd, "n")->valuedouble ==
                           r[i].n[FP4EMU_PG_RANDOM] &&
                       (int64_t)cJSON_GetObjectItem(rnd, "matched")->valuedouble ==
                           r[i].matched[FP4EMU_PG_RANDOM],
                   "random counts %d", i);
        const cJSON *ss = cJSON_GetObjectItem(e, "sass_seen");
        fp4t_check(i == 0 ? cJSON_IsString(ss) && !strcmp(ss->valuestring, sass[0])
                          : cJSON_IsNull(ss),
                   "sass %d", i);
        fp4t_check(cJSON_GetArraySize(cJSON_GetObjectItem(e, "presets")) == r[i].n_presets,
                   "presets %d", i);
    }
    cJSON_Delete(root);
    free(json);
    for (int i = 0; i < 2; i++) fp4emu_probe_result_free(&r[i]);
}

static void test_determinism(void) {
    const fp4emu_probe_instr *ins = fp4emu_probe_instr_get("sm120-mma-mxf4nvf4");
    fp4emu_probe_batch b1, b2;
    fp4t_check(fp4emu_probe_batch_make(ins, COUNT, TARGETED, 42, &b1) == 0 &&
                   fp4emu_probe_batch_make(ins, COUNT, TARGETED, 42, &b2) == 0,
               "batches");
    const size_t na = (size_t)(b1.tiles * ins->m * ins->k),
                 nc = (size_t)(b1.tiles * ins->m * ins->n);
    fp4t_check(b1.tiles == b2.tiles && !memcmp(b1.a, b2.a, na) && !memcmp(b1.c, b2.c, nc * 4) &&
                   !memcmp(b1.group, b2.group, (size_t)b1.tiles),
               "same seed, same inputs");
    fp4emu_probe_batch_free(&b2);
    fp4t_check(fp4emu_probe_batch_make(ins, COUNT, TARGETED, 43, &b2) == 0 &&
                   memcmp(b1.a, b2.a, na) != 0,
               "another seed, other inputs");
    int groups[FP4EMU_PG_COUNT] = {0};
    for (int64_t t = 0; t < b1.tiles; t++) groups[b1.group[t]]++;
    for (int g = 0; g < FP4EMU_PG_COUNT; g++)
        fp4t_check(groups[g] > 0, "block-scaled batch has %s tiles",
                   fp4emu_probe_group_name((fp4emu_probe_group)g));
    fp4emu_probe_batch_free(&b1), fp4emu_probe_batch_free(&b2);

    const fp4emu_preset *p = fp4emu_preset_get("sm120-mxf4nvf4-cand-chunk");
    fp4emu_probe_target t = fp4emu_probe_target_model(&p->model, p->name);
    fp4emu_probe_opts o = small_opts();
    fp4emu_probe_result r1, r2;
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    fp4emu_probe_run(ins, &t, &o, &r1);
    omp_set_num_threads(2);
    fp4emu_probe_run(ins, &t, &o, &r2);
    omp_set_num_threads(saved);
    fp4t_check(r1.verdict == r2.verdict && fp4emu_model_equal(&r1.model, &r2.model) &&
                   !memcmp(r1.matched, r2.matched, sizeof r1.matched) &&
                   r1.fit.n_full == r2.fit.n_full,
               "same result on 1 and 2 threads");
    fp4emu_probe_result_free(&r1), fp4emu_probe_result_free(&r2);
}

static void test_bad_args(void) {
    fp4emu_probe_result r;
    fp4emu_probe_batch b;
    const fp4emu_probe_instr *ins = fp4emu_probe_instr_at(0);
    fp4emu_probe_target t =
        fp4emu_probe_target_model(&fp4emu_preset_get("sm90-hgmma-f16")->model, "x");
    fp4t_check(fp4emu_probe_run(NULL, &t, NULL, &r) != 0, "null instruction");
    fp4t_check(fp4emu_probe_batch_make(ins, 0, 10, 0, &b) != 0, "zero random samples");
    fp4t_check(fp4emu_probe_batch_make(ins, 10, -1, 0, &b) != 0, "negative targeted");
    /* A simulated model that does not have the instruction's shape. */
    fp4emu_probe_target bad =
        fp4emu_probe_target_model(&fp4emu_preset_get("sm90-qgmma-e4m3-f32")->model, "k32");
    fp4emu_probe_opts o = small_opts();
    fp4t_check(fp4emu_probe_run(ins, &bad, &o, &r) != 0 && strstr(fp4_last_error(), "k=16"),
               "model of the wrong K refused: %s", fp4_last_error());
}

/* ------------------------------------------------------------------------ */
/* fp4sim probe without a GPU                                                */
/* ------------------------------------------------------------------------ */

static int test_nogpu(const char *fp4sim) {
    if (fp4k_device_count() > 0) {
        printf("SKIP: a CUDA device is visible; the no-GPU error path cannot be exercised here\n");
        return 77;
    }
    fp4t_begin("probe_nogpu");
    char cmd[4096], out[4096] = "";
    snprintf(cmd, sizeof cmd, "'%s' probe --instr mma-f16-f32 2>&1", fp4sim);
    FILE *p = popen(cmd, "r");
    size_t n = p ? fread(out, 1, sizeof out - 1, p) : 0;
    out[n] = '\0';
    int st = p ? pclose(p) : -1;
    fp4t_check(WIFEXITED(st) && WEXITSTATUS(st) == 1, "exit status %d, want 1",
               WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    fp4t_check(strstr(out, "fp4sim: probe: ") == out &&
                   (strstr(out, "no CUDA GPU") || strstr(out, "without CUDA")) &&
                   strstr(out, "--simulate"),
               "message: %s", out);
    return fp4t_end();
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "nogpu")) return test_nogpu(argv[2]);
    fp4t_begin("test_probe");
    test_tables();
    const char *pairs[][2] = {
        {"sm90-wgmma-f16-f32", "sm90-hgmma-f16"},
        {"sm90-wgmma-bf16-f32", "sm90-hgmma-bf16"},
        {"sm90-wgmma-e4m3-f32", "sm90-qgmma-e4m3-f32"},
        {"sm90-wgmma-e4m3-f16", "sm90-qgmma-e4m3-f16"},
        {"mma-f16-f32", "sm90-hmma-16816-f32"},
        {"mma-e4m3-f32", "sm90-mmasync-e4m3"},
        {"mma-e4m3-f16", "sm90-mmasync-e4m3-f16"},
        {"sm100-tcgen05-mxf4nvf4", "sm100-mxf4nvf4-cand-a"},
        {"sm100-tcgen05-mxf4nvf4", "sm100-mxf4nvf4-cand-chunk"},
        {"sm100-tcgen05-mxf4nvf4", "sm100-mxf4nvf4-cand-f35"},
        {"sm120-mma-mxf4nvf4", "sm120-mxf4nvf4-cand-a"},
        {"sm120-mma-mxf4nvf4", "sm120-mxf4nvf4-cand-chunk"},
        {"sm120-mma-mxf4nvf4", "sm120-mxf4nvf4-cand-2x32"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
        test_recover(pairs[i][0], pairs[i][1]);
    test_alien();
    test_layout_bug();
    test_refine_flush();
    test_other_nan();
    test_fingerprint();
    test_determinism();
    test_bad_args();
    return fp4t_end();
}
