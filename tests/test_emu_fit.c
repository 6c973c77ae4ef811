/* test_emu_fit.c - blind fitting on synthetic data: for every preset, 2000
 * random dot products of one instruction are generated with the preset,
 * then fp4emu_fit searches the default candidate space (block widths
 * 4..64, F 8..40, C in/after, rz/rne/rz13/rne13, partitions, product
 * exponent conventions, F16 unpacking, chunk scaling) without being told
 * the answer. The preset must be among the candidates that reproduce all
 * 2000 samples (other members of that set are equivalent on the data).
 * Also: corrupted samples show up as the residual cases of the best
 * candidate, and the report is identical on 1 and 2 threads.
 *
 * Input distributions follow numerics.md §5.2: e4m3 all finite codes (FP32
 * accumulation) or exponent field 2..9 (FP16), f16 exponent field 5..24,
 * bf16 100..150, C 25 % zero else +-[2^-15, 2^15) (FP32). */
#include "test_emu_common.h"

#include <omp.h>

enum { NSAMP = 2000 };

typedef struct synth {
    fp4emu_fit_data d;
    uint16_t *a, *b;
    uint8_t *sa, *sb;
    uint64_t *c, *dd;
} synth;

static fp4emu_input preset_input(const fp4emu_preset *p) {
    if (!strncmp(p->inputs, "nvfp4", 5)) return fp4emu_input_nvfp4();
    if (!strncmp(p->inputs, "bf16", 4)) return fp4emu_input_plain(FP4_FMT_BF16, FP4_FMT_BF16);
    if (!strncmp(p->inputs, "f16", 3)) return fp4emu_input_plain(FP4_FMT_F16, FP4_FMT_F16);
    return fp4emu_input_plain(FP4_FMT_E4M3, FP4_FMT_E4M3);
}

/* A random operand code of format f with an exponent field in [lo, hi]. */
static uint16_t rand_elem(fp4_format f, bool f16acc, uint32_t r) {
    switch (f) {
    case FP4_FMT_F16: return (uint16_t)((r & 0x83FF) | ((5 + (r >> 16) % 20) << 10));
    case FP4_FMT_BF16: return (uint16_t)((r & 0x807F) | ((100 + (r >> 16) % 51) << 7));
    case FP4_FMT_E2M1: return (uint16_t)(r & 0xF);
    default:
        if (f16acc) return (uint16_t)((r & 0x87) | ((2 + (r >> 16) % 8) << 3));
        return (uint16_t)((r & 0x7F) == 0x7F ? 0x38 : (r & 0xFF));
    }
}

/* UE4M3: half the samples in a narrow band around 1, half anywhere. */
static uint8_t rand_scale(uint32_t r, bool narrow) {
    return (uint8_t)(narrow ? 0x30 + r % 0x10 : 1 + r % 0x7E);
}

static uint64_t rand_acc(fp4_format acc, uint32_t r) {
    if (r % 4 == 0) return 0;
    uint32_t s = (r >> 2) & 1, m = r >> 3;
    if (acc == FP4_FMT_F16) return ((uint64_t)s << 15) | ((10 + m % 11) << 10) | ((m >> 8) & 0x3FF);
    return ((uint64_t)s << 31) | ((uint64_t)(112 + m % 30) << 23) | (fp4t_rand32(fp4t_seed(), 9, r) & 0x7FFFFF);
}

static synth synth_make(const fp4emu_preset *p, uint32_t stream) {
    synth s;
    memset(&s, 0, sizeof s);
    const fp4emu_model *m = &p->model;
    int k = m->k;
    fp4emu_input in = preset_input(p);
    bool scaled = in.scale_fmt != FP4_FMT_COUNT, f16acc = m->acc == FP4_FMT_F16;
    int ns = scaled ? k / in.scale_block : 0;
    s.a = malloc(NSAMP * k * 2), s.b = malloc(NSAMP * k * 2);
    s.sa = malloc(NSAMP * (ns + 1)), s.sb = malloc(NSAMP * (ns + 1));
    s.c = malloc(NSAMP * 8), s.dd = malloc(NSAMP * 8);
    uint8_t *a8 = (uint8_t *)s.a, *b8 = (uint8_t *)s.b;
    int bytes = fp4_format_code_bytes(in.a_fmt);
    uint64_t seed = fp4t_seed();
    for (int i = 0; i < NSAMP; i++) {
        for (int j = 0; j < k; j++) {
            uint16_t ca = rand_elem(in.a_fmt, f16acc, fp4t_rand32(seed, stream, (uint64_t)i * 256 + 2 * j));
            uint16_t cb = rand_elem(in.b_fmt, f16acc, fp4t_rand32(seed, stream, (uint64_t)i * 256 + 2 * j + 1));
            if (bytes == 1) a8[i * k + j] = (uint8_t)ca, b8[i * k + j] = (uint8_t)cb;
            else s.a[i * k + j] = ca, s.b[i * k + j] = cb;
        }
        for (int j = 0; j < ns; j++) {
            s.sa[i * ns + j] = rand_scale(fp4t_rand32(seed, stream + 1, (uint64_t)i * 16 + j), i % 2);
            s.sb[i * ns + j] = rand_scale(fp4t_rand32(seed, stream + 2, (uint64_t)i * 16 + j), i % 2);
        }
        s.c[i] = rand_acc(m->acc, fp4t_rand32(seed, stream + 3, (uint64_t)i));
        const void *pa = bytes == 1 ? (const void *)(a8 + i * k) : (const void *)(s.a + i * k);
        const void *pb = bytes == 1 ? (const void *)(b8 + i * k) : (const void *)(s.b + i * k);
        fp4emu_mma(m, &in, pa, pb, s.sa + i * ns, s.sb + i * ns, s.c[i], &s.dd[i]);
    }
    s.d = (fp4emu_fit_data){in, k, m->acc, NSAMP, s.a, s.b, scaled ? s.sa : NULL,
                            scaled ? s.sb : NULL, s.c, s.dd};
    return s;
}

static void synth_free(synth *s) { free(s->a), free(s->b), free(s->sa), free(s->sb), free(s->c), free(s->dd); }

static fp4emu_fit_space space_for(const fp4emu_preset *p) {
    return fp4emu_fit_space_default(p->model.acc); /* blind: the default space, always */
}

static int find_model(const fp4emu_fit_report *r, const fp4emu_model *m) {
    for (int i = 0; i < r->n_best; i++)
        if (fp4emu_fit_cand_has(&r->best[i], m)) return i;
    return -1;
}

static void test_recover(const fp4emu_preset *p, uint32_t stream) {
    synth s = synth_make(p, stream);
    fp4emu_fit_space sp = space_for(p);
    fp4emu_fit_report rep;
    double t0 = omp_get_wtime();
    int rc = fp4emu_fit(&s.d, &sp, &rep);
    double dt = omp_get_wtime() - t0;
    fp4t_check(rc == 0, "%s: fit failed: %s", p->name, fp4_last_error());
    int at = find_model(&rep, &p->model);
    int groups = 0;
    while (groups < rep.n_best && rep.best[groups].matches == NSAMP) groups++;
    printf("%s (%.2fs): ", p->name, dt);
    fp4emu_fit_print(stdout, NULL, &rep);
    fp4t_check(rep.n_full >= 1 && rep.best[0].matches == NSAMP, "%s: no full match", p->name);
    fp4t_check(at >= 0 && rep.best[at].matches == NSAMP, "%s: preset not among the full matches",
               p->name);
    fp4t_check(groups <= 4, "%s: %d groups of full matches (too ambiguous)", p->name, groups);
    fp4t_check(rep.n_resid == 0, "%s: residuals listed for a full match", p->name);
    synth_free(&s);
}

/* Corrupt a few samples: the preset stays the best candidate and exactly
 * those samples are its residual cases. Same report on 1 and 2 threads. */
static void test_noisy(void) {
    const fp4emu_preset *p = fp4emu_preset_get("sm90-mmasync-e4m3");
    synth s = synth_make(p, 900);
    const int64_t bad[5] = {3, 77, 500, 1234, 1999};
    for (int i = 0; i < 5; i++) s.dd[bad[i]] ^= 0x1000;
    fp4emu_fit_space sp = space_for(p);
    fp4emu_fit_report r1, r2;
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    fp4emu_fit(&s.d, &sp, &r1);
    omp_set_num_threads(2);
    fp4emu_fit(&s.d, &sp, &r2);
    omp_set_num_threads(saved);
    fp4t_check(r1.n_full == 0 && r1.best[0].matches == NSAMP - 5, "noisy: best has %lld matches",
               (long long)r1.best[0].matches);
    fp4t_check(find_model(&r1, &p->model) >= 0, "noisy: preset among the best");
    fp4t_check(r1.n_resid == 5, "noisy: %d residuals", r1.n_resid);
    for (int i = 0; i < 5 && i < r1.n_resid; i++)
        fp4t_check(r1.resid_index[i] == bad[i], "noisy: residual %d is sample %lld", i,
                   (long long)r1.resid_index[i]);
    bool same = r1.n_best == r2.n_best && r1.n_full == r2.n_full &&
                r1.n_evaluated == r2.n_evaluated && r1.n_resid == r2.n_resid;
    for (int i = 0; same && i < r1.n_best; i++)
        same = r1.best[i].matches == r2.best[i].matches &&
               fp4emu_model_equal(&r1.best[i].model, &r2.best[i].model);
    fp4t_check(same, "fit report differs between 1 and 2 threads");
    fp4emu_fit_print(stdout, &s.d, &r1);
    synth_free(&s);
}

static void test_bad_data(void) {
    fp4emu_fit_report r;
    fp4emu_fit_data d;
    memset(&d, 0, sizeof d);
    fp4t_check(fp4emu_fit(&d, NULL, &r) != 0, "null arrays rejected");
    fp4t_check(fp4emu_fit(NULL, NULL, &r) != 0, "null data rejected");
}

int main(void) {
    fp4t_begin("test_emu_fit");
    /* Every hardware preset (measured, published, candidate); the software
     * references (CUTLASS host loop, FP16 blocks) are not instructions to
     * fingerprint. */
    for (int i = 0; i < fp4emu_preset_count(); i++)
        if (fp4emu_preset_at(i)->status != FP4EMU_REFERENCE)
            test_recover(fp4emu_preset_at(i), 100 + 10 * (uint32_t)i);
    test_noisy();
    test_bad_data();
    return fp4t_end();
}
