/* test_gpu_probe.c - the probes on the GPU present (label gpu; exits 77,
 * skipped, without one). For every instruction this GPU has:
 *   - fp4emu_probe_run with FP4SIM_PROBE_COUNT random dot products
 *     (default 100000, the "done" bar) plus the targeted groups must
 *     end "explained" or "explained-finite" (never "layout-error");
 *   - on sm_90 every measured preset listed for the instruction must
 *     reproduce all fitted samples (numerics.md §5.2 measured them on an
 *     H100 with CUDA 13.0);
 * an instruction of another architecture is refused with FP4K_ERR_ARCH
 * before any launch; and rcp.approx.ftz.f32 on sm_90 must reproduce the
 * shipped data/mufu-rcp-sm90 table exactly. The fingerprint goes to
 * FP4SIM_PROBE_OUT when set. */
#include "fp4emu.h"
#include "fp4kernels.h"
#include "testutil.h"

static int gpu_run(void *ctx, const fp4emu_probe_instr *ins, const fp4emu_probe_batch *b,
                   uint32_t *d) {
    (void)ctx;
    const fp4k_probe_req req = {
        fp4k_probe_find(ins->name), b->tiles, b->a, b->b, b->sa, b->sb, b->c};
    return fp4k_probe_mma(&req, d) == FP4K_OK ? 0 : -1;
}

static bool has_instr(const fp4k_probe_desc *d, const fp4k_device_info *di) {
    if (d->cc_major) return d->cc_major == di->cc_major;
    return di->cc_major * 10 + di->cc_minor >= 89;
}

static void check_presets(const fp4emu_probe_result *r, const fp4k_device_info *di) {
    for (int i = 0; i < r->n_presets; i++) {
        const fp4emu_probe_preset_match *p = &r->presets[i];
        printf("  %s: %lld/%lld fitted\n", p->preset->name, (long long)p->fit_matches,
               (long long)r->n_fit);
        if (di->cc_major == 9 && p->preset->status == FP4EMU_MEASURED &&
            !strncmp(p->preset->name, "sm90", 4) &&
            strstr(r->instr->presets, p->preset->name) ==
                r->instr->presets) /* the first one listed */
            fp4t_check(p->fit_matches == r->n_fit, "%s: measured preset %s reproduces %lld of %lld",
                       r->instr->name, p->preset->name, (long long)p->fit_matches,
                       (long long)r->n_fit);
    }
}

static void test_rcp(const fp4k_device_info *di) {
    uint8_t *t = malloc(FP4K_RCP_TABLE_BYTES);
    fp4k_rcp_stats s;
    if (!fp4t_check(fp4k_probe_rcp(t, &s) == FP4K_OK, "rcp probe: %s", fp4_last_error())) {
        free(t);
        return;
    }
    printf("rcp: equal %lld, +1 %lld, -1 %lld, other %lld; exponent failures %lld/%lld\n",
           (long long)s.equal, (long long)s.plus1, (long long)s.minus1, (long long)s.other,
           (long long)s.exp_failures, (long long)s.exp_checked);
    fp4t_check(s.equal + s.plus1 + s.minus1 + s.other == (1 << 23) && s.other == 0,
               "rcp: every mantissa within 1 ulp");
    if (di->cc_major == 9)
        fp4t_check(memcmp(t, fp4_mufu_rcp_sm90_table_bytes(), FP4K_RCP_TABLE_BYTES) == 0,
                   "rcp: sm_90 table equals data/mufu-rcp-sm90");
    free(t);
}

int main(void) {
    if (fp4k_device_count() == 0) {
        printf("SKIP: no CUDA device visible (%s)\n",
               fp4k_built_with_cuda() ? "built with CUDA" : "fp4sim built without CUDA");
        return 77;
    }
    fp4t_begin("gpu_probe");
    fp4k_device_info di;
    fp4k_get_device_info(0, &di);
    printf("device: %s (sm_%d%d), driver %d, runtime %d\n", di.name, di.cc_major, di.cc_minor,
           di.driver_version, di.runtime_version);
    fp4emu_probe_target t = {
        gpu_run, NULL, "", di.cc_major, di.cc_minor, di.driver_version, di.runtime_version, false};
    snprintf(t.device, sizeof t.device, "%s", di.name);
    fp4emu_probe_opts o = fp4emu_probe_opts_default();
    const char *cnt = getenv("FP4SIM_PROBE_COUNT");
    if (cnt) o.count = strtoll(cnt, NULL, 0);
    o.seed = fp4t_seed();
    fp4emu_probe_result r[FP4K_PROBE_COUNT];
    int n = 0;
    for (int i = 0; i < fp4emu_probe_instr_count(); i++) {
        const fp4emu_probe_instr *ins = fp4emu_probe_instr_at(i);
        const fp4k_probe_desc *d = fp4k_probe_info(fp4k_probe_find(ins->name));
        if (!has_instr(d, &di)) { /* refused before any launch, with the arch in the message */
            uint32_t out[1];
            const uint16_t zero[64 * 128] = {0};
            const uint32_t c[128 * 16] = {0};
            const fp4k_probe_req req = {
                fp4k_probe_find(ins->name), 1, zero, zero, (const uint8_t *)zero,
                (const uint8_t *)zero,      c};
            fp4t_check(fp4k_probe_mma(&req, out) == FP4K_ERR_ARCH &&
                           strstr(fp4_last_error(), "needs sm_"),
                       "%s refused on this GPU: %s", ins->name, fp4_last_error());
            continue;
        }
        if (!fp4t_check(fp4emu_probe_run(ins, &t, &o, &r[n]) == 0, "%s: %s", ins->name,
                        fp4_last_error()))
            continue;
        fp4emu_probe_print(stdout, &r[n]);
        fp4t_check(r[n].verdict == FP4EMU_PROBE_EXPLAINED ||
                       r[n].verdict == FP4EMU_PROBE_EXPLAINED_FINITE,
                   "%s: %s", ins->name, fp4emu_probe_verdict_name(r[n].verdict));
        check_presets(&r[n], &di);
        n++;
    }
    const char *out = getenv("FP4SIM_PROBE_OUT");
    char *json = out ? fp4emu_probe_fingerprint(&t, &o, r, n, NULL) : NULL;
    FILE *f = json ? fopen(out, "w") : NULL;
    if (f) fputs(json, f), fclose(f);
    free(json);
    for (int i = 0; i < n; i++) fp4emu_probe_result_free(&r[i]);
    test_rcp(&di);
    return fp4t_end();
}
