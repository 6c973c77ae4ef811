/* probe.c - the tensor-core probe driver (docs/probe.md): the instruction
 * table, the input batch, a simulated target, and fp4emu_probe_run, which
 *   1. runs the batch on the target (a GPU through kernels/, or a model);
 *   2. checks the exact group: small-integer sums every model gets right,
 *      so a wrong one is a probe (operand layout) bug - verdict
 *      "layout-error", nothing is fitted;
 *   3. fits blind (fp4emu_fit, default space) over the random, window,
 *      c-large, ties and scales samples;
 *   4. refines the full matches on the subnormal and special samples
 *      (subnormals kept or flushed on input / output) and keeps the one
 *      that explains most of them without losing a fitted sample;
 *   5. compares the instruction's presets, and lists the samples the
 *      reported model misses, with their inputs.
 * Evaluation loops run on OpenMP over samples; counts are sums of
 * per-sample results and cases are taken in sample order, so nothing
 * depends on the thread count.
 */
#include "probe_internal.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Instructions                                                              */
/* ------------------------------------------------------------------------ */

#define IN_PLAIN(f)                                                                                \
    { (f), (f), FP4_FMT_COUNT, 0 }
#define IN_NVFP4                                                                                   \
    { FP4_FMT_E2M1, FP4_FMT_E2M1, FP4_FMT_UE4M3, 16 }

/* SASS opcodes: numerics.md §5.2 for sm_90 (measured with CUDA 13.0); the
 * Blackwell ones are the opcode families expected, not yet observed. */
static const fp4emu_probe_instr k_instrs[] = {
    {"sm90-wgmma-f16-f32", "sm_90a", "wgmma.mma_async.sync.aligned.m64n8k16.f32.f16.f16",
     "HGMMA.64x8x16.F32", IN_PLAIN(FP4_FMT_F16), FP4_FMT_F32, 64, 8, 16,
     "sm90-hgmma-f16,sm100-km-f16-f32"},
    {"sm90-wgmma-f16-f16", "sm_90a", "wgmma.mma_async.sync.aligned.m64n8k16.f16.f16.f16",
     "HGMMA.64x8x16.F16", IN_PLAIN(FP4_FMT_F16), FP4_FMT_F16, 64, 8, 16, "sm100-km-f16-f16"},
    {"sm90-wgmma-bf16-f32", "sm_90a", "wgmma.mma_async.sync.aligned.m64n8k16.f32.bf16.bf16",
     "HGMMA.64x8x16.F32.BF16", IN_PLAIN(FP4_FMT_BF16), FP4_FMT_F32, 64, 8, 16,
     "sm90-hgmma-bf16,sm100-km-f16-f32"},
    {"sm90-wgmma-e4m3-f32", "sm_90a", "wgmma.mma_async.sync.aligned.m64n8k32.f32.e4m3.e4m3",
     "QGMMA.64x8x32.F32.E4M3.E4M3", IN_PLAIN(FP4_FMT_E4M3), FP4_FMT_F32, 64, 8, 32,
     "sm90-qgmma-e4m3-f32,sm100-km-fp8-f32"},
    {"sm90-wgmma-e4m3-f16", "sm_90a", "wgmma.mma_async.sync.aligned.m64n8k32.f16.e4m3.e4m3",
     "QGMMA.64x8x32.F16.E4M3.E4M3", IN_PLAIN(FP4_FMT_E4M3), FP4_FMT_F16, 64, 8, 32,
     "sm90-qgmma-e4m3-f16"},
    {"mma-f16-f32", "sm_89+", "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32", "HMMA.16816.F32",
     IN_PLAIN(FP4_FMT_F16), FP4_FMT_F32, 16, 8, 16,
     "sm90-hmma-16816-f32,sm100-km-f16-f32,sm120-km-f16-f32"},
    {"mma-e4m3-f32", "sm_89+", "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32",
     "HMMA.16816.F32 (sm_90: after F2FP.F16.E4M3.UNPACK_B)", IN_PLAIN(FP4_FMT_E4M3), FP4_FMT_F32,
     16, 8, 32, "sm90-mmasync-e4m3,sm90-qgmma-e4m3-f32,sm100-km-fp8-f32,sm120-km-fp8-f32"},
    {"mma-e4m3-f16", "sm_89+", "mma.sync.aligned.m16n8k32.row.col.f16.e4m3.e4m3.f16",
     "HMMA.16816.F16 (sm_90: after F2FP.F16.E4M3.UNPACK_B)", IN_PLAIN(FP4_FMT_E4M3), FP4_FMT_F16,
     16, 8, 32, "sm90-mmasync-e4m3-f16,sm90-qgmma-e4m3-f16"},
    {"sm100-tcgen05-mxf4nvf4", "sm_100a",
     "tcgen05.mma.cta_group::1.kind::mxf4nvf4.block_scale.scale_vec::4X", "UTCOMMA (expected)",
     IN_NVFP4, FP4_FMT_F32, 128, 16, 64,
     "sm100-mxf4nvf4-cand-a,sm100-mxf4nvf4-cand-chunk,sm100-mxf4nvf4-cand-f35"},
    {"sm100-tcgen05-f8f6f4-e4m3-f32", "sm_100a",
     "tcgen05.mma.cta_group::1.kind::f8f6f4 (E4M3, F32 D)", "UTCQMMA (expected)",
     IN_PLAIN(FP4_FMT_E4M3), FP4_FMT_F32, 128, 16, 32, "sm100-km-fp8-f32,sm100-km-fp8-f32-rn"},
    {"sm100-tcgen05-f8f6f4-e4m3-f16", "sm_100a",
     "tcgen05.mma.cta_group::1.kind::f8f6f4 (E4M3, F16 D)", "UTCQMMA (expected)",
     IN_PLAIN(FP4_FMT_E4M3), FP4_FMT_F16, 128, 16, 32, "sm90-qgmma-e4m3-f16"},
    {"sm100-tcgen05-f8f6f4-e2m1-f32", "sm_100a",
     "tcgen05.mma.cta_group::1.kind::f8f6f4 (E2M1, F32 D)", "UTCQMMA (expected)",
     IN_PLAIN(FP4_FMT_E2M1), FP4_FMT_F32, 128, 16, 32, "sm100-km-fp8-f32"},
    {"sm120-mma-mxf4nvf4", "sm_120a",
     "mma.sync.aligned.m16n8k64.row.col.kind::mxf4nvf4.block_scale.scale_vec::4X.f32.e2m1.e2m1.f32."
     "ue4m3",
     "OMMA (expected)", IN_NVFP4, FP4_FMT_F32, 16, 8, 64,
     "sm120-mxf4nvf4-cand-a,sm120-mxf4nvf4-cand-chunk,sm120-mxf4nvf4-cand-2x32"},
    {"sm120-mma-f8f6f4-e2m1-f32", "sm_120a",
     "mma.sync.aligned.m16n8k32.row.col.kind::f8f6f4.f32.e2m1.e2m1.f32", "QMMA (expected)",
     IN_PLAIN(FP4_FMT_E2M1), FP4_FMT_F32, 16, 8, 32, "sm120-km-fp8-f32"},
};

enum { NINSTR = (int)(sizeof k_instrs / sizeof k_instrs[0]) };

int fp4emu_probe_instr_count(void) { return NINSTR; }

const fp4emu_probe_instr *fp4emu_probe_instr_at(int i) {
    return i >= 0 && i < NINSTR ? &k_instrs[i] : NULL;
}

const fp4emu_probe_instr *fp4emu_probe_instr_get(const char *name) {
    char names[1024] = "";
    for (int i = 0; i < NINSTR; i++) {
        if (name && strcmp(name, k_instrs[i].name) == 0) return &k_instrs[i];
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "",
                 k_instrs[i].name);
    }
    fp4_fail("probe: unknown instruction '%s' (valid: %s)", name ? name : "(null)", names);
    return NULL;
}

const char *fp4emu_probe_group_name(fp4emu_probe_group g) {
    static const char *names[FP4EMU_PG_COUNT] = {"exact", "random", "window",    "c-large",
                                                 "ties",  "scales", "subnormal", "special"};
    return (unsigned)g < FP4EMU_PG_COUNT ? names[g] : "?";
}

bool fp4emu_probe_group_fitted(fp4emu_probe_group g) {
    return g == FP4EMU_PG_RANDOM || g == FP4EMU_PG_WINDOW || g == FP4EMU_PG_C_LARGE ||
           g == FP4EMU_PG_TIES || g == FP4EMU_PG_SCALES;
}

static bool group_edge(fp4emu_probe_group g) {
    return g == FP4EMU_PG_SUBNORMAL || g == FP4EMU_PG_SPECIAL;
}

const char *fp4emu_probe_verdict_name(fp4emu_probe_verdict v) {
    static const char *names[FP4EMU_PROBE_VERDICT_COUNT] = {"explained", "explained-finite",
                                                            "unexplained", "layout-error"};
    return (unsigned)v < FP4EMU_PROBE_VERDICT_COUNT ? names[v] : "?";
}

/* ------------------------------------------------------------------------ */
/* Batches                                                                   */
/* ------------------------------------------------------------------------ */

static int64_t tiles_for(const fp4emu_probe_instr *ins, int64_t samples) {
    const int64_t per = (int64_t)ins->m * ins->n;
    return samples <= 0 ? 0 : (samples + per - 1) / per;
}

void fp4emu_probe_batch_free(fp4emu_probe_batch *b) {
    if (!b) return;
    free(b->a), free(b->b), free(b->sa), free(b->sb), free(b->c), free(b->group);
    memset(b, 0, sizeof *b);
}

static int batch_alloc(const fp4emu_probe_instr *ins, int64_t tiles, fp4emu_probe_batch *b) {
    memset(b, 0, sizeof *b);
    const int ns = probe_nscales(ins);
    b->tiles = tiles;
    b->a = calloc((size_t)(tiles * ins->m * ins->k), (size_t)fp4_format_code_bytes(ins->in.a_fmt));
    b->b = calloc((size_t)(tiles * ins->n * ins->k), (size_t)fp4_format_code_bytes(ins->in.b_fmt));
    b->c = calloc((size_t)(tiles * ins->m * ins->n), sizeof *b->c);
    b->group = calloc((size_t)tiles, 1);
    if (ns) {
        b->sa = calloc((size_t)(tiles * ins->m * ns), 1);
        b->sb = calloc((size_t)(tiles * ins->n * ns), 1);
    }
    if (!b->a || !b->b || !b->c || !b->group || (ns && (!b->sa || !b->sb))) {
        fp4emu_probe_batch_free(b);
        return fp4_fail("probe: out of memory for %lld tiles", (long long)tiles);
    }
    return 0;
}

int fp4emu_probe_batch_make(const fp4emu_probe_instr *ins, int64_t random, int64_t targeted,
                            uint64_t seed, fp4emu_probe_batch *b) {
    if (!ins || !b) return fp4_fail("probe: null instruction or batch");
    if (random < 1 || random > ((int64_t)1 << 28) || targeted < 0 || targeted > ((int64_t)1 << 24))
        return fp4_fail("probe: need 1 <= random dot products <= 2^28 and 0 <= targeted <= 2^24");
    int64_t count[FP4EMU_PG_COUNT] = {0}, total = 0;
    for (int g = 0; g < FP4EMU_PG_COUNT; g++) {
        int64_t want = g == FP4EMU_PG_RANDOM ? random : g == FP4EMU_PG_EXACT ? 512 : targeted;
        count[g] = probe_group_applies(ins, (fp4emu_probe_group)g) ? tiles_for(ins, want) : 0;
        total += count[g];
    }
    if (batch_alloc(ins, total, b)) return -1;
    int64_t t = 0;
    for (int g = 0; g < FP4EMU_PG_COUNT; g++)
        for (int64_t i = 0; i < count[g]; i++, t++)
            probe_gen_tile(ins, b, t, (fp4emu_probe_group)g, seed);
    return 0;
}

probe_sample probe_sample_at(const fp4emu_probe_instr *ins, const fp4emu_probe_batch *b,
                             int64_t s) {
    const int64_t per = (int64_t)ins->m * ins->n, t = s / per;
    const int m = (int)(s % per / ins->n), n = (int)(s % ins->n), ns = probe_nscales(ins);
    const int ab = fp4_format_code_bytes(ins->in.a_fmt), bb = fp4_format_code_bytes(ins->in.b_fmt);
    probe_sample x;
    x.a = (const uint8_t *)b->a + (size_t)((t * ins->m + m) * ins->k * ab);
    x.b = (const uint8_t *)b->b + (size_t)((t * ins->n + n) * ins->k * bb);
    x.sa = ns ? b->sa + (t * ins->m + m) * ns : NULL;
    x.sb = ns ? b->sb + (t * ins->n + n) * ns : NULL;
    x.c = b->c[s];
    x.group = (fp4emu_probe_group)b->group[t];
    return x;
}

/* ------------------------------------------------------------------------ */
/* Models on samples                                                         */
/* ------------------------------------------------------------------------ */

/* D of model m for sample s; a model that cannot take these inputs (e.g.
 * chunk scaling on unscaled operands) gives a value no output can have. */
static uint64_t model_d(const fp4emu_model *m, const fp4emu_probe_instr *ins,
                        const fp4emu_probe_batch *b, int64_t s) {
    const probe_sample x = probe_sample_at(ins, b, s);
    uint64_t d = 0;
    return fp4emu_mma(m, &ins->in, x.a, x.b, x.sa, x.sb, x.c, &d) == 0 ? d : ~(uint64_t)0;
}

int fp4emu_probe_run_model(void *ctx, const fp4emu_probe_instr *ins, const fp4emu_probe_batch *b,
                           uint32_t *d) {
    const fp4emu_model *m = ctx;
    if (!m || m->k != ins->k || m->acc != ins->acc)
        return fp4_fail("probe: the simulated model has k=%d acc=%s, %s needs k=%d acc=%s",
                        m ? m->k : 0, m ? fp4_format_get(m->acc)->name : "?", ins->name, ins->k,
                        fp4_format_get(ins->acc)->name);
    if (fp4emu_model_check(m)) return -1;
    const int64_t n = b->tiles * ins->m * ins->n;
#pragma omp parallel for schedule(static, 256)
    for (int64_t s = 0; s < n; s++) d[s] = (uint32_t)model_d(m, ins, b, s);
    return 0;
}

fp4emu_probe_target fp4emu_probe_target_model(const fp4emu_model *m, const char *label) {
    fp4emu_probe_target t;
    memset(&t, 0, sizeof t);
    t.run = fp4emu_probe_run_model;
    t.ctx = (void *)(uintptr_t)m;
    snprintf(t.device, sizeof t.device, "simulated: %s", label ? label : "model");
    t.simulated = true;
    return t;
}

/* miss[s] = 1 where model m differs from the measured d (samples with
 * want(group) only); returns the count of such samples and, in *seen, how
 * many were compared. */
static int64_t misses(const fp4emu_model *m, const fp4emu_probe_instr *ins,
                      const fp4emu_probe_batch *b, const uint32_t *d,
                      bool (*want)(fp4emu_probe_group), uint8_t *miss, int64_t *seen) {
    const int64_t n = b->tiles * ins->m * ins->n, per = (int64_t)ins->m * ins->n;
    int64_t bad = 0, cmp = 0;
#pragma omp parallel for schedule(static, 256) reduction(+ : bad, cmp)
    for (int64_t s = 0; s < n; s++) {
        const bool use = want((fp4emu_probe_group)b->group[s / per]);
        const bool wrong = use && model_d(m, ins, b, s) != d[s];
        if (miss) miss[s] = wrong;
        bad += wrong, cmp += use;
    }
    if (seen) *seen = cmp;
    return bad;
}

static bool want_fitted(fp4emu_probe_group g) { return fp4emu_probe_group_fitted(g); }
static bool want_edge(fp4emu_probe_group g) { return group_edge(g); }
static bool want_exact(fp4emu_probe_group g) { return g == FP4EMU_PG_EXACT; }
static bool want_measured(fp4emu_probe_group g) { return g != FP4EMU_PG_EXACT; }

/* The exact sum, correctly rounded: what every candidate gives on the
 * exact group. */
static fp4emu_model exact_model(const fp4emu_probe_instr *ins) {
    fp4emu_model m;
    memset(&m, 0, sizeof m);
    m.k = m.block = ins->k;
    m.F = FP4EMU_F_EXACT;
    m.min_exp_limit = FP4EMU_NO_EXP_LIMIT;
    m.pexp = FP4EMU_PEXP_SUM;
    m.unpack = FP4_FMT_COUNT;
    m.scale_at = FP4EMU_SCALE_PRODUCT;
    m.in_subnormals = m.out_subnormals = true;
    m.c_place = FP4EMU_C_IN_BLOCK;
    m.acc = ins->acc;
    m.out_bits = fp4_format_get(ins->acc)->mbits;
    m.out_round = FP4_RNE;
    m.ovf_inf = true;
    return m;
}

/* ------------------------------------------------------------------------ */
/* Fit and refinement                                                        */
/* ------------------------------------------------------------------------ */

typedef struct fit_arrays {
    fp4emu_fit_data d;
    void *a, *b;
    uint8_t *sa, *sb;
    uint64_t *c, *dd;
} fit_arrays;

static void fit_arrays_free(fit_arrays *f) {
    free(f->a), free(f->b), free(f->sa), free(f->sb), free(f->c), free(f->dd);
}

/* The fitted samples, copied into fp4emu_fit_data's layout. */
static int fit_arrays_make(const fp4emu_probe_instr *ins, const fp4emu_probe_batch *b,
                           const uint32_t *d, int64_t n_fit, fit_arrays *f) {
    memset(f, 0, sizeof *f);
    const int ab = fp4_format_code_bytes(ins->in.a_fmt), bb = fp4_format_code_bytes(ins->in.b_fmt);
    const int ns = probe_nscales(ins), k = ins->k;
    f->a = malloc((size_t)(n_fit * k * ab));
    f->b = malloc((size_t)(n_fit * k * bb));
    f->sa = malloc((size_t)(n_fit * ns + 1));
    f->sb = malloc((size_t)(n_fit * ns + 1));
    f->c = malloc((size_t)n_fit * sizeof *f->c);
    f->dd = malloc((size_t)n_fit * sizeof *f->dd);
    if (!f->a || !f->b || !f->sa || !f->sb || !f->c || !f->dd) {
        fit_arrays_free(f);
        return fp4_fail("probe: out of memory for %lld fitted samples", (long long)n_fit);
    }
    const int64_t n = b->tiles * ins->m * ins->n;
    int64_t j = 0;
    for (int64_t s = 0; s < n && j < n_fit; s++) {
        const probe_sample x = probe_sample_at(ins, b, s);
        if (!fp4emu_probe_group_fitted(x.group)) continue;
        memcpy((uint8_t *)f->a + j * k * ab, x.a, (size_t)(k * ab));
        memcpy((uint8_t *)f->b + j * k * bb, x.b, (size_t)(k * bb));
        if (ns) memcpy(f->sa + j * ns, x.sa, (size_t)ns), memcpy(f->sb + j * ns, x.sb, (size_t)ns);
        f->c[j] = x.c, f->dd[j] = d[s];
        j++;
    }
    f->d = (fp4emu_fit_data){ins->in,           k,    ins->acc, j, f->a, f->b, ns ? f->sa : NULL,
                             ns ? f->sb : NULL, f->c, f->dd};
    return 0;
}

/* Variant v of model m: bit 0 flushes subnormal inputs, bit 1 outputs. */
static fp4emu_model variant(const fp4emu_model *m, int v) {
    fp4emu_model x = *m;
    x.in_subnormals = !(v & 1);
    x.out_subnormals = !(v & 2);
    return x;
}

/* Among the full matches of the fit (each at both ends of its F run) and
 * their subnormal variants, the model that also explains the most
 * subnormal/special samples while keeping every fitted one. */
static void refine(const fp4emu_probe_instr *ins, const fp4emu_probe_batch *b, const uint32_t *d,
                   fp4emu_probe_result *r) {
    int64_t best_edge = -1;
    for (int e = 0; e < r->fit.n_best && r->fit.best[e].matches == r->n_fit; e++)
        for (int end = 0; end < 2; end++)
            for (int v = 0; v < 4; v++) {
                fp4emu_model m = variant(&r->fit.best[e].model, v);
                m.F = end ? r->fit.best[e].f_hi : r->fit.best[e].model.F;
                int64_t edge = 0, bad = misses(&m, ins, b, d, want_edge, NULL, &edge);
                edge -= bad;
                if (edge <= best_edge) continue;
                if (v && misses(&m, ins, b, d, want_fitted, NULL, NULL))
                    continue; /* loses fitted ones */
                best_edge = edge;
                r->model = m;
                r->f_lo = r->fit.best[e].model.F, r->f_hi = r->fit.best[e].f_hi;
            }
}

/* ------------------------------------------------------------------------ */
/* Results                                                                   */
/* ------------------------------------------------------------------------ */

static void preset_matches(const fp4emu_probe_instr *ins, const fp4emu_probe_batch *b,
                           const uint32_t *d, fp4emu_probe_result *r) {
    char list[512];
    snprintf(list, sizeof list, "%s", ins->presets);
    for (char *save = NULL, *name = strtok_r(list, ",", &save); name;
         name = strtok_r(NULL, ",", &save)) {
        const fp4emu_preset *p = fp4emu_preset_get(name);
        if (!p || p->model.k != ins->k || p->model.acc != ins->acc ||
            r->n_presets == FP4EMU_PROBE_MAX_PRESETS)
            continue;
        fp4emu_probe_preset_match *pm = &r->presets[r->n_presets++];
        int64_t all = 0, fit = 0;
        const int64_t bad_all = misses(&p->model, ins, b, d, want_measured, NULL, &all);
        const int64_t bad_fit = misses(&p->model, ins, b, d, want_fitted, NULL, &fit);
        pm->preset = p;
        pm->all_matches = all - bad_all;
        pm->fit_matches = fit - bad_fit;
    }
}

/* Per-group counts, the mismatches of `ref` (the model, or the exact sum
 * for a layout error) over the groups `want` selects, and the first
 * max_cases of them with their inputs. */
static int tally(const fp4emu_probe_instr *ins, const fp4emu_probe_batch *b, const uint32_t *d,
                 const fp4emu_model *ref, bool (*want)(fp4emu_probe_group), int max_cases,
                 fp4emu_probe_result *r) {
    const int64_t n = b->tiles * ins->m * ins->n, per = (int64_t)ins->m * ins->n;
    uint8_t *miss = malloc((size_t)n);
    if (!miss) return fp4_fail("probe: out of memory");
    r->n_mismatch = misses(ref, ins, b, d, want, miss, NULL);
    const int keep = r->n_mismatch < max_cases ? (int)r->n_mismatch : max_cases;
    r->cases = keep ? calloc((size_t)keep, sizeof *r->cases) : NULL;
    if (keep && !r->cases) {
        free(miss);
        return fp4_fail("probe: out of memory");
    }
    const int ns = probe_nscales(ins), ab = fp4_format_code_bytes(ins->in.a_fmt),
              bb = fp4_format_code_bytes(ins->in.b_fmt);
    for (int64_t s = 0; s < n; s++) {
        const fp4emu_probe_group g = (fp4emu_probe_group)b->group[s / per];
        r->n[g]++;
        r->matched[g] += want(g) ? !miss[s] : 0;
        if (!miss[s] || r->n_cases == keep) continue;
        const probe_sample x = probe_sample_at(ins, b, s);
        fp4emu_probe_case *c = &r->cases[r->n_cases++];
        c->group = g, c->sample = s, c->c = x.c, c->got = d[s];
        c->model = (uint32_t)model_d(ref, ins, b, s);
        for (int k = 0; k < ins->k && k < FP4EMU_PROBE_MAX_K; k++)
            c->a[k] = (uint16_t)probe_code(x.a, ab, k), c->b[k] = (uint16_t)probe_code(x.b, bb, k);
        for (int j = 0; j < ns && j < FP4EMU_PROBE_MAX_SCALES; j++)
            c->sa[j] = x.sa[j], c->sb[j] = x.sb[j];
    }
    free(miss);
    return 0;
}

fp4emu_probe_opts fp4emu_probe_opts_default(void) {
    fp4emu_probe_opts o;
    memset(&o, 0, sizeof o);
    o.count = 100000;
    o.targeted = 4096;
    o.max_cases = 256;
    return o;
}

void fp4emu_probe_result_free(fp4emu_probe_result *r) {
    if (!r) return;
    free(r->cases);
    memset(r, 0, sizeof *r);
}

/* Steps 3-5 on measured outputs whose exact group is right. */
static int fit_and_judge(const fp4emu_probe_instr *ins, const fp4emu_probe_batch *b,
                         const uint32_t *d, const fp4emu_probe_opts *o, fp4emu_probe_result *r) {
    for (int64_t t = 0; t < b->tiles; t++)
        r->n_fit += fp4emu_probe_group_fitted((fp4emu_probe_group)b->group[t]);
    r->n_fit *= (int64_t)ins->m * ins->n;
    fit_arrays f;
    if (fit_arrays_make(ins, b, d, r->n_fit, &f)) return -1;
    const fp4emu_fit_space sp = o->space ? *o->space : fp4emu_fit_space_default(ins->acc);
    int rc = fp4emu_fit(&f.d, &sp, &r->fit);
    fit_arrays_free(&f);
    if (rc) return -1;
    r->have_model = r->fit.n_best > 0;
    if (!r->have_model) return fp4_fail("probe: the fit returned no candidate");
    r->model = r->fit.best[0].model;
    r->f_lo = r->model.F, r->f_hi = r->fit.best[0].f_hi;
    if (r->fit.best[0].matches == r->n_fit) refine(ins, b, d, r);
    preset_matches(ins, b, d, r);
    if (tally(ins, b, d, &r->model, want_measured, o->max_cases, r)) return -1;
    bool fitted_ok = true;
    for (int g = 0; g < FP4EMU_PG_COUNT; g++)
        fitted_ok = fitted_ok &&
                    (!fp4emu_probe_group_fitted((fp4emu_probe_group)g) || r->matched[g] == r->n[g]);
    r->verdict = !fitted_ok      ? FP4EMU_PROBE_UNEXPLAINED
                 : r->n_mismatch ? FP4EMU_PROBE_EXPLAINED_FINITE
                                 : FP4EMU_PROBE_EXPLAINED;
    return 0;
}

int fp4emu_probe_run(const fp4emu_probe_instr *ins, const fp4emu_probe_target *t,
                     const fp4emu_probe_opts *o, fp4emu_probe_result *r) {
    if (!ins || !t || !t->run || !r) return fp4_fail("probe: null instruction, target or result");
    const fp4emu_probe_opts opts = o ? *o : fp4emu_probe_opts_default();
    if (opts.max_cases < 0) return fp4_fail("probe: max_cases must be >= 0");
    memset(r, 0, sizeof *r);
    r->instr = ins;
    fp4emu_probe_batch b;
    if (fp4emu_probe_batch_make(ins, opts.count, opts.targeted, opts.seed, &b)) return -1;
    uint32_t *d = calloc((size_t)(b.tiles * ins->m * ins->n), sizeof *d);
    int rc = d ? t->run(t->ctx, ins, &b, d) : fp4_fail("probe: out of memory");
    if (rc == 0) {
        const fp4emu_model exact = exact_model(ins);
        if (misses(&exact, ins, &b, d, want_exact, NULL, NULL)) {
            r->verdict = FP4EMU_PROBE_LAYOUT_ERROR;
            rc = tally(ins, &b, d, &exact, want_exact, opts.max_cases, r);
        } else {
            rc = fit_and_judge(ins, &b, d, &opts, r);
            r->matched[FP4EMU_PG_EXACT] = r->n[FP4EMU_PG_EXACT];
        }
    }
    free(d);
    fp4emu_probe_batch_free(&b);
    return rc;
}
