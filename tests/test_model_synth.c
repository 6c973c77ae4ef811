/* test_model_synth.c - synthetic weights generated on demand (model/synth.c).
 *
 *  1. fp4m_synth_rows is a function of (seed, name, element) only: any row
 *     range equals the same rows of the whole tensor, on 1 and 2 threads;
 *     another seed or name gives other values.
 *  2. The distributions are the documented ones (bounds exact, moments
 *     within sampling error).
 *  3. A model opened with fp4m_open_synthetic computes exactly what the same
 *     model computes from a checkpoint holding those values (the test writes
 *     the checkpoint itself, with the fixture's tensor names and shapes),
 *     in both paths, resident and streaming, and streaming holds less. */
#define _GNU_SOURCE 1 /* mkdtemp */
#include "test_model_util.h"

#include <Random123/philox.h>
#include <omp.h>
#include <unistd.h>

#define SEED 0x5EEDull

static uint32_t bits(float f) { return fp4t_f32_bits(f); }

/* The documented formula, element by element, with Random123's own
 * philox4x32 and FNV-1a written out here. */
static float formula(uint64_t seed, const char *name, int64_t in, int64_t i, double centre,
                     double scale) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const char *p = name; *p; p++) h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
    philox4x32_key_t key = {{(uint32_t)seed, (uint32_t)(seed >> 32)}};
    philox4x32_ctr_t ctr = {{(uint32_t)(i / 4), (uint32_t)((uint64_t)(i / 4) >> 32), (uint32_t)h,
                             (uint32_t)(h >> 32)}};
    philox4x32_ctr_t r = philox4x32(ctr, key);
    double u = (double)(2 * (r.v[i % 4] >> 8) + 1) / 16777216.0 - 1.0;
    return (float)(centre + scale * u);
}

static void check_formula(void) {
    const char *lin = "model.layers.60.mlp.experts.255.gate_proj.weight";
    const int64_t in = 7168;
    float v[3 * 7168];
    fp4m_synth_rows(SEED, lin, in, 2040, 3, v);
    int64_t bad = 0;
    for (int64_t j = 0; j < 3 * in; j++)
        bad += bits(v[j]) != bits(formula(SEED, lin, in, 2040 * in + j, 0.0, sqrt(3.0 / in)));
    float nv[100];
    fp4m_synth_rows(SEED, "model.norm.weight", 1, 0, 100, nv);
    for (int64_t j = 0; j < 100; j++)
        bad += bits(nv[j]) != bits(formula(SEED, "model.norm.weight", 1, j, 1.0, 0.2 * sqrt(3.0)));
    fp4t_check(bad == 0, "%lld values differ from Philox4x32-10 + FNV-1a as documented", (long long)bad);
}

static void check_rows(void) {
    const char *name = "model.layers.7.mlp.experts.200.down_proj.weight";
    const int64_t out = 37, in = 45; /* odd sizes: rows straddle Philox's 4-word groups */
    float *all = malloc(out * in * sizeof(float)), *part = malloc(out * in * sizeof(float));
    omp_set_num_threads(1);
    fp4m_synth_rows(SEED, name, in, 0, out, all);
    omp_set_num_threads(2);
    for (int64_t r0 = 0; r0 < out; r0 += 5) {
        int64_t nr = out - r0 < 7 ? out - r0 : 7;
        fp4m_synth_rows(SEED, name, in, r0, nr, part);
        for (int64_t i = 0; i < nr * in; i++)
            fp4t_check(bits(part[i]) == bits(all[r0 * in + i]), "rows %lld+%lld element %lld",
                       (long long)r0, (long long)nr, (long long)i);
    }
    /* Large enough for the OpenMP branch, 1 vs 2 threads. */
    const int64_t big = 1 << 21;
    float *a = malloc(big * sizeof(float)), *b = malloc(big * sizeof(float));
    omp_set_num_threads(1);
    fp4m_synth_rows(SEED, name, 1024, 0, big / 1024, a);
    omp_set_num_threads(2);
    fp4m_synth_rows(SEED, name, 1024, 0, big / 1024, b);
    fp4t_check(memcmp(a, b, big * sizeof(float)) == 0, "1 vs 2 threads differ");
    /* Other seed / other name: different streams (a match rate near 0). */
    int64_t same_seed = 0, same_name = 0;
    fp4m_synth_rows(SEED + 1, name, 1024, 0, 64, b);
    for (int64_t i = 0; i < 65536; i++) same_seed += bits(a[i]) == bits(b[i]);
    fp4m_synth_rows(SEED, "model.layers.7.mlp.experts.201.down_proj.weight", 1024, 0, 64, b);
    for (int64_t i = 0; i < 65536; i++) same_name += bits(a[i]) == bits(b[i]);
    fp4t_check(same_seed < 64 && same_name < 64, "streams overlap: %lld / %lld equal values",
               (long long)same_seed, (long long)same_name);
    free(a);
    free(b);
    free(all);
    free(part);
}

/* max |v| <= bound, mean ~ centre, variance ~ var (n samples, 5 sigma). */
static void check_dist(const char *name, int64_t in, double centre, double half_width) {
    const int64_t n = 1 << 20;
    float *v = malloc(n * sizeof(float));
    fp4m_synth_rows(SEED, name, in, 0, n / in, v);
    const int64_t cnt = n / in * in;
    double s = 0, s2 = 0, lo = 1e300, hi = -1e300;
    for (int64_t i = 0; i < cnt; i++) {
        s += v[i];
        s2 += (v[i] - centre) * (v[i] - centre);
        lo = fmin(lo, v[i]);
        hi = fmax(hi, v[i]);
    }
    const double var = half_width * half_width / 3.0, mean = s / cnt, m2 = s2 / cnt;
    fp4t_check(lo >= centre - half_width * (1 + 1e-6) && hi <= centre + half_width * (1 + 1e-6),
               "%s: range [%g, %g] outside %g +- %g", name, lo, hi, centre, half_width);
    fp4t_check(fabs(mean - centre) < 5 * sqrt(var / cnt), "%s: mean %g, expected %g", name, mean,
               centre);
    /* Var of (x - c)^2 for a uniform is 4 var^2 / 5. */
    fp4t_check(fabs(m2 - var) < 5 * sqrt(0.8 * var * var / cnt), "%s: variance %g, expected %g",
               name, m2, var);
    free(v);
}

static void check_kinds(void) {
    fp4t_check(fp4m_synth_kind_of("model.layers.3.self_attn.kv_a_layernorm.weight") == FP4M_SYN_NORM &&
                   fp4m_synth_kind_of("model.norm.weight") == FP4M_SYN_NORM &&
                   fp4m_synth_kind_of("model.embed_tokens.weight") == FP4M_SYN_EMBED &&
                   fp4m_synth_kind_of("model.layers.3.mlp.gate.e_score_correction_bias") == FP4M_SYN_BIAS &&
                   fp4m_synth_kind_of("model.layers.3.mlp.gate.weight") == FP4M_SYN_LINEAR &&
                   fp4m_synth_kind_of("lm_head.weight") == FP4M_SYN_LINEAR,
               "kinds by name");
    check_dist("model.layers.0.mlp.up_proj.weight", 7168, 0.0, sqrt(3.0 / 7168));
    check_dist("model.layers.0.input_layernorm.weight", 1, 1.0, 0.2 * sqrt(3.0));
    check_dist("model.embed_tokens.weight", 64, 0.0, sqrt(3.0));
}

/* ------------------------------------------------------------------------- */

static char g_dir[64];

/* The fixture's tensors (names, shapes), values from fp4m_synth_rows, F32. */
static int write_ckpt(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/fp4sim-synth-XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    char path[128], cmd[300];
    snprintf(cmd, sizeof cmd, "cp '%s/config.json' '%s/'", TINY_DIR, g_dir);
    if (system(cmd) != 0) return -1;
    fp4_st_ckpt *ck;
    fp4_st_writer *w;
    snprintf(path, sizeof path, "%s/model.safetensors", g_dir);
    if (fp4_st_ckpt_open(TINY_DIR, &ck) != FP4_ST_OK || fp4_st_writer_create(path, &w) != FP4_ST_OK)
        return -1;
    int rc = 0;
    for (int64_t i = 0; rc == 0 && i < fp4_st_ckpt_count(ck); i++) {
        const char *name = fp4_st_ckpt_name(ck, i);
        const fp4_st_tensor *t;
        if (fp4_st_ckpt_get(ck, name, &t) != FP4_ST_OK) return -1;
        const int64_t out = t->shape[0], in = t->ndim == 2 ? t->shape[1] : 1;
        float *v = malloc((size_t)(out * in) * sizeof(float));
        fp4m_synth_rows(SEED, name, in, 0, out, v);
        rc = fp4_st_writer_add_copy(w, name, FP4_ST_F32, t->ndim, t->shape, v, out * in * 4) ==
                     FP4_ST_OK
                 ? 0
                 : -1;
        free(v);
    }
    fp4_st_ckpt_close(ck);
    return rc || fp4_st_writer_finish(w) != FP4_ST_OK ? -1 : 0;
}

static const int64_t k_ids[8] = {3, 141, 59, 26, 5, 358, 97, 93};

/* Logits of the 8 tokens (and the weights peak). */
static int run(fp4m_prec p, bool synthetic, bool resident, void *logits, int64_t *peak) {
    fp4m_config c;
    fp4m_opts o = fp4m_opts_reference(p);
    o.all_resident = resident;
    fp4m_model *m = NULL;
    int rc = fp4m_config_load(TINY_DIR, &c) ? -1
             : synthetic                   ? fp4m_open_synthetic(&c, SEED, &o, &m)
                                           : fp4m_open(g_dir, &o, &m);
    if (!rc) rc = fp4m_forward(m, k_ids, 8, false, logits);
    if (!rc) *peak = fp4m_weight_bytes_peak(m);
    if (rc) fprintf(stderr, "%s\n", fp4_last_error());
    fp4m_close(m);
    return rc;
}

static void check_model(void) {
    if (!fp4t_check(write_ckpt() == 0, "cannot write the checkpoint in %s", g_dir)) return;
    fp4m_config c;
    fp4m_config_load(TINY_DIR, &c);
    const int64_t n = 8 * c.vocab_size;
    for (int p = 0; p < 2; p++) {
        const size_t es = p == FP4M_F64 ? 8 : 4;
        char *ref = malloc(n * es), *got = malloc(n * es);
        int64_t peak_ck = 0, peak_res = 0, peak_str = 0;
        int rc = run((fp4m_prec)p, false, true, ref, &peak_ck);
        rc |= run((fp4m_prec)p, true, true, got, &peak_res);
        fp4t_check(rc == 0 && memcmp(ref, got, n * es) == 0, "%s: synthetic != checkpoint",
                   p ? "f32" : "f64");
        rc = run((fp4m_prec)p, true, false, got, &peak_str);
        fp4t_check(rc == 0 && memcmp(ref, got, n * es) == 0, "%s: streaming synthetic differs",
                   p ? "f32" : "f64");
        fp4t_check(peak_res == peak_ck && peak_str < peak_res / 4,
                   "%s: weight peaks: checkpoint %lld, synthetic resident %lld, streaming %lld",
                   p ? "f32" : "f64", (long long)peak_ck, (long long)peak_res, (long long)peak_str);
        free(ref);
        free(got);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", g_dir);
}

int main(void) {
    fp4t_begin("test_model_synth");
    check_formula();
    check_rows();
    check_kinds();
    check_model();
    return fp4t_end();
}
