/* test_formats_boundaries.c - every rounding decision point of one target
 * format, as FP32 inputs (fp4_encode_f32) and FP64 inputs (fp4_encode_f64),
 * against the MPFR oracle in every mode and policy:
 *  - every finite value and the exact midpoint of every pair of adjacent
 *    finite codes, each also moved by -2, -1, +1, +2 FP32 ulps (when the
 *    point is a float) and -2..+2 FP64 ulps;
 *  - the overflow edge: max, max + half ulp (the overflow threshold), the
 *    first value past max and twice that; the underflow edge: 0, half the
 *    smallest subnormal (UE8M0: half of 2^-127), the smallest subnormal;
 *  - both signs, plus +-Inf, +-NaN and extreme float/double magnitudes.
 * Configurations: level 1 uses every mode (RS with several bit patterns and
 * widths) x every policy x every DAZ/FTZ/RELU combination for the narrow
 * formats. For f16/bf16 (64k points each) the options are used only on
 * rne/satfinite, and the policy rotates from point to point (policies cannot
 * differ on finite in-range values) except in the subnormal range and the
 * lowest normal binade and in the top binade plus the overflow edge, Inf
 * and NaN, where every policy is checked on every point. Level 0 (sanitizer
 * builds) keeps all policies only on the lowest 8 and highest 16 points.
 *
 * Usage: test_formats_boundaries TARGET (e2m1 ... ue8m0, f16, bf16).
 */
#include "mpfr_oracle.h"
#include "testutil.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct points {
    double *v;
    int64_t n, cap;
} points;

static void add(points *p, double x) {
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 1024;
        p->v = realloc(p->v, sizeof(double) * (size_t)p->cap);
    }
    p->v[p->n++] = x;
}

/* Decision points of f (non-negative; the sweep adds the negatives). */
static points base_points(fp4_format f) {
    points p = {NULL, 0, 0};
    int64_t n = fp4o_count_nonneg(f);
    const fp4_format_info *fi = fp4_format_get(f);
    double lo = fp4o_nonneg_value(f, 0);
    if (!fi->has_zero) { /* UE8M0: below 2^-127 everything is code 0 */
        add(&p, 0.0);
        add(&p, lo / 2);
        add(&p, lo / 4);
    }
    for (int64_t k = 0; k < n; k++) {
        add(&p, fp4o_nonneg_value(f, k));
        if (k + 1 < n) add(&p, (fp4o_nonneg_value(f, k) + fp4o_nonneg_value(f, k + 1)) / 2);
    }
    /* The first grid point past max: max + 2^(emax - mbits). */
    double max = fp4o_max_finite(f);
    double next = max + ldexp(1.0, fi->emax - fi->mbits);
    add(&p, (max + next) / 2); /* overflow threshold */
    add(&p, next);
    add(&p, 2 * next);
    add(&p, FLT_MAX);
    add(&p, DBL_MAX);
    add(&p, FLT_TRUE_MIN);
    add(&p, DBL_TRUE_MIN);
    add(&p, INFINITY);
    add(&p, NAN);
    return p;
}

/* x and its neighbours: +-1, +-2 ulps in float (when x is a float) and in
 * double, both signs. */
static int inputs_of(double b, double *dbl, int *nd, float *flt, int *nf) {
    *nd = *nf = 0;
    for (int s = 0; s < 2; s++) {
        double x = s ? -b : b;
        if (isnan(x) || (double)(float)x == x) {
            float fx = (float)x, up = fx, dn = fx;
            if (isnan(x)) fx = s ? -NAN : NAN;
            flt[(*nf)++] = fx;
            for (int k = 0; k < 2 && !isnan(x); k++) {
                up = nextafterf(up, INFINITY);
                dn = nextafterf(dn, -INFINITY);
                flt[(*nf)++] = up;
                flt[(*nf)++] = dn;
            }
        }
        double up = x, dn = x;
        if (isnan(x)) x = s ? -NAN : NAN;
        dbl[(*nd)++] = x;
        for (int k = 0; k < 2 && !isnan(x); k++) {
            up = nextafter(up, INFINITY);
            dn = nextafter(dn, -INFINITY);
            dbl[(*nd)++] = up;
            dbl[(*nd)++] = dn;
        }
    }
    return *nd + *nf;
}

static void report(fp4_format f, bool is_f32, double x, const fp4_cvt_opts *o, fp4o_res got,
                   fp4o_res want) {
    char buf[96];
#pragma omp critical(fp4_report)
    fp4t_check(0, "%s %a -> %s (%s): ref 0x%llx t=%d fl=0x%x, oracle 0x%llx t=%d fl=0x%x",
               is_f32 ? "f32" : "f64", x, fp4_format_get(f)->name,
               fp4o_opts_string(o, buf, sizeof buf), (unsigned long long)got.code, got.ternary,
               got.flags, (unsigned long long)want.code, want.ternary, want.flags);
}

static long check_one(fp4_format f, bool is_f32, double x, const fp4_cvt_opts *o) {
    fp4o_res got = {~0ull, 0, 0}, want = {~0ull, 0, 0};
    if (is_f32) {
        got.ternary = fp4o_sgn(fp4_encode_f32(f, (float)x, o, &got.code, &got.flags));
        want.ternary = fp4o_encode_f32(f, (float)x, o, &want.code, &want.flags);
    } else {
        got.ternary = fp4o_sgn(fp4_encode_f64(f, x, o, &got.code, &got.flags));
        want.ternary = fp4o_encode_f64(f, x, o, &want.code, &want.flags);
    }
    if (fp4o_res_eq(got, want)) return 1;
    report(f, is_f32, x, o, got, want);
    return 0;
}

/* Configurations: options only on rne/satfinite for the 16-bit formats,
 * but tininess after rounding in every mode (it matters at 2^emin). */
static int configs(fp4_format f, int level, fp4o_config *cfg) {
    fp4o_config all[FP4O_MAX_CONFIGS];
    int n = fp4o_configs(f, level, all, FP4O_MAX_CONFIGS), m = 0;
    bool wide = fp4_format_get(f)->bits > 8;
    for (int i = 0; i < n; i++) {
        const fp4_cvt_opts *o = &all[i].o;
        bool rne_sat = o->round == FP4_RNE && o->policy == FP4_POLICY_SATFINITE;
        bool after = (o->options & FP4_OPT_TININESS_AFTER) != 0;
        if (!wide || o->options == 0 || rne_sat || after) cfg[m++] = all[i];
    }
    return m;
}

/* Whether configuration c is checked at point i of n: everywhere in the
 * lowest lo_edge and highest hi_edge points, one policy in five elsewhere. */
static bool applies(const fp4o_config *c, int64_t i, int64_t n, int64_t lo_edge,
                    int64_t hi_edge) {
    if (i < lo_edge || i >= n - hi_edge) return true;
    return (int64_t)c->o.policy == i % FP4_POLICY_COUNT;
}

int main(int argc, char **argv) {
    static char name[64];
    const char *arg = argc > 1 ? argv[1] : "e2m1";
    fp4_format f;
    if (fp4_format_from_name(arg, &f) != 0) {
        fprintf(stderr, "unknown target format %s\n", arg);
        return 2;
    }
    snprintf(name, sizeof name, "test_formats_boundaries %s", arg);
    fp4o_init();
    fp4t_begin(name);
    static fp4o_config cfg[FP4O_MAX_CONFIGS];
    int nc = configs(f, fp4o_level(), cfg);
    points p = base_points(f);
    uint64_t seed = fp4t_seed();
    /* points come two per code (value, midpoint) in increasing order */
    const fp4_format_info *fi = fp4_format_get(f);
    int64_t lo_edge = p.n, hi_edge = 0;
    if (fi->bits > 8) {
        lo_edge = fp4o_level() >= 1 ? (int64_t)4 << fi->mbits : 8;
        hi_edge = fp4o_level() >= 1 ? ((int64_t)2 << fi->mbits) + 16 : 16;
    }
    long checks = 0;
#pragma omp parallel for schedule(dynamic, 64) reduction(+ : checks)
    for (int64_t i = 0; i < p.n; i++) {
        double dbl[10];
        float flt[10];
        int nd, nf;
        inputs_of(p.v[i], dbl, &nd, flt, &nf);
        for (int k = 0; k < nc; k++) {
            if (!applies(&cfg[k], i, p.n, lo_edge, hi_edge)) continue;
            fp4_cvt_opts o = cfg[k].o;
            for (int j = 0; j < nf + nd; j++) {
                if (cfg[k].random_rbits)
                    o.rbits = fp4t_rand32(seed, 0x42000000u | (uint32_t)k, (uint64_t)(i * 32 + j));
                checks += j < nf ? check_one(f, true, flt[j], &o)
                                 : check_one(f, false, dbl[j - nf], &o);
            }
        }
    }
    fp4t_g.checks += checks;
    printf("%lld decision points, %d configurations, level %d\n", (long long)p.n, nc,
           fp4o_level());
    free(p.v);
    return fp4t_end();
}
