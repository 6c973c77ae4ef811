/* fit.c - finds datapath-model parameters that reproduce measured dot
 * products of one instruction.
 *
 * Method (the one numerics.md §5.2 used by hand): enumerate a candidate
 * space (block width, partition, F, C placement, output rounding, product
 * exponent convention, F16 unpacking, chunk scaling), run every candidate on
 * every sample, count bit-exact matches. To keep that affordable:
 *  - screening: each candidate runs on the first `screen` samples and stops
 *    after 2*slack+1 mismatches. If the best screened candidate has at most
 *    `slack` mismatches, every candidate within `slack` of it survives (its
 *    count is exact below the cap); otherwise screening is redone uncapped;
 *  - survivors run on all samples, with exact counts.
 * Thresholds come from complete passes, never from a race between threads,
 * so the report is the same on any thread count. A candidate that matches
 * every sample always survives screening.
 */
#include "emu_internal.h"

#include <stdlib.h>
#include <string.h>

fp4emu_fit_space fp4emu_fit_space_default(fp4_format acc) {
    fp4emu_fit_space s;
    memset(&s, 0, sizeof s);
    const int blocks[] = {4, 8, 16, 32, 64};
    for (int i = 0; i < 5; i++) s.blocks[i] = blocks[i];
    s.f_min = 8;
    s.f_max = 40;
    s.c_after = s.partitions = s.pexp_exact = s.unpack_f16 = s.scale_chunk = true;
    int i = 0;
    s.outs[i][0] = -1, s.outs[i++][1] = FP4_RZ;
    s.outs[i][0] = -1, s.outs[i++][1] = FP4_RNE;
    if (acc == FP4_FMT_F32) {
        s.outs[i][0] = 13, s.outs[i++][1] = FP4_RZ;
        s.outs[i][0] = 13, s.outs[i++][1] = FP4_RNE;
    }
    s.min_exp_limit = acc == FP4_FMT_F32 ? -133 : -21;
    s.screen = 64;
    s.slack = 4;
    return s;
}

/* ------------------------------------------------------------------------ */
/* Candidate enumeration                                                     */
/* ------------------------------------------------------------------------ */

typedef struct cand_list {
    fp4emu_model *m;
    int64_t n, cap;
} cand_list;

static int cand_push(cand_list *l, const fp4emu_model *m) {
    if (l->n == l->cap) {
        int64_t cap = l->cap ? l->cap * 2 : 1024;
        fp4emu_model *p = realloc(l->m, (size_t)cap * sizeof *p);
        if (!p) return fp4_fail("emu fit: out of memory");
        l->m = p, l->cap = cap;
    }
    l->m[l->n++] = *m;
    return 0;
}

/* Operand-side variants: (pexp, unpack, scale_at). */
typedef struct opvariant {
    fp4emu_pexp pexp;
    fp4_format unpack;
    fp4emu_scale_at scale;
} opvariant;

/* Unpacking to F16 only changes exponents of formats with a larger emin,
 * or of scaled elements (whose exponent is otherwise a sum of two). */
static bool unpack_matters(const fp4emu_input *in) {
    int emin16 = fp4_format_get(FP4_FMT_F16)->emin;
    return in->scale_fmt != FP4_FMT_COUNT || fp4_format_get(in->a_fmt)->emin > emin16 ||
           fp4_format_get(in->b_fmt)->emin > emin16;
}

static int op_variants(const fp4emu_fit_data *d, const fp4emu_fit_space *sp, opvariant *v) {
    int n = 0;
    v[n++] = (opvariant){FP4EMU_PEXP_SUM, FP4_FMT_COUNT, FP4EMU_SCALE_PRODUCT};
    if (sp->unpack_f16 && unpack_matters(&d->in))
        v[n++] = (opvariant){FP4EMU_PEXP_SUM, FP4_FMT_F16, FP4EMU_SCALE_PRODUCT};
    if (sp->pexp_exact) v[n++] = (opvariant){FP4EMU_PEXP_EXACT, FP4_FMT_COUNT, FP4EMU_SCALE_PRODUCT};
    fp4emu_model probe = {.scale_at = FP4EMU_SCALE_CHUNK};
    if (sp->scale_chunk && d->in.scale_fmt != FP4_FMT_COUNT &&
        emu_model_input_check(&probe, &d->in) == 0)
        v[n++] = (opvariant){FP4EMU_PEXP_SUM, FP4_FMT_COUNT, FP4EMU_SCALE_CHUNK};
    return n;
}

/* (interleave, reverse) pairs for a block width: contiguous first. */
static int partitions(int k, int block, bool more, int part[][2]) {
    int n = 0;
    part[n][0] = 0, part[n++][1] = 0;
    if (!more || k == block) return n;
    part[n][0] = 0, part[n++][1] = 1;
    for (int g = 1; g <= 8; g *= 2)
        if (g < block && block % g == 0) {
            part[n][0] = g, part[n++][1] = 0;
            part[n][0] = g, part[n++][1] = 1;
        }
    return n;
}

static fp4emu_model cand_base(const fp4emu_fit_data *d, const fp4emu_fit_space *sp,
                              const opvariant *v, fp4emu_cplace c) {
    fp4emu_model m;
    memset(&m, 0, sizeof m);
    m.k = d->k;
    m.min_exp_limit = sp->min_exp_limit;
    m.pexp = v->pexp;
    m.unpack = v->unpack;
    m.scale_at = v->scale;
    m.in_subnormals = m.out_subnormals = m.ovf_inf = true;
    m.c_place = c;
    m.acc = d->acc;
    return m;
}

/* Innermost loops: output modes, then F ascending. */
static int push_outs_and_f(cand_list *l, const fp4emu_fit_space *sp, fp4emu_model m) {
    int mb = fp4_format_get(m.acc)->mbits;
    for (int o = 0; o < 8 && sp->outs[o][0] != 0; o++) {
        m.out_bits = sp->outs[o][0] < 0 ? mb : sp->outs[o][0];
        m.out_round = (fp4_round)sp->outs[o][1];
        if (m.out_bits > mb) continue;
        for (int F = sp->f_min; F <= sp->f_max; F++) {
            m.F = F;
            if (cand_push(l, &m)) return -1;
        }
    }
    return 0;
}

static int enumerate(const fp4emu_fit_data *d, const fp4emu_fit_space *sp, cand_list *l) {
    opvariant v[4];
    int nv = op_variants(d, sp, v), part[16][2];
    for (int iv = 0; iv < nv; iv++)
        for (int c = 0; c < (sp->c_after ? 2 : 1); c++)
            for (int ib = 7; ib >= 0; ib--) { /* widest block first: one block is simplest */
                int block = sp->blocks[ib];
                if (block <= 0 || d->k % block) continue;
                int np = partitions(d->k, block, sp->partitions, part);
                for (int ip = 0; ip < np; ip++) {
                    fp4emu_model m = cand_base(d, sp, &v[iv], (fp4emu_cplace)c);
                    m.block = block;
                    m.interleave = part[ip][0];
                    m.reverse = part[ip][1];
                    if (push_outs_and_f(l, sp, m)) return -1;
                }
            }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Decoded samples and evaluation                                            */
/* ------------------------------------------------------------------------ */

/* Decoded samples, plus pre-combined fast-path operands for both unpack
 * settings (index 0: none, 1: F16) with a per-sample usability flag. */
typedef struct fit_set {
    const fp4emu_fit_data *d;
    emu_op *a, *b, *sa, *sb;
    emu_fop *fa[2], *fb[2];
    uint8_t *fok[2];
    int64_t ns; /* scales per sample */
} fit_set;

static void fit_set_free(fit_set *s) {
    free(s->a), free(s->b), free(s->sa), free(s->sb);
    for (int u = 0; u < 2; u++) free(s->fa[u]), free(s->fb[u]), free(s->fok[u]);
}

static void build_fops(fit_set *s, int u) {
    const fp4emu_fit_data *d = s->d;
    fp4emu_model m;
    memset(&m, 0, sizeof m);
    m.unpack = u ? FP4_FMT_F16 : FP4_FMT_COUNT;
    m.scale_at = FP4EMU_SCALE_PRODUCT;
    for (int64_t i = 0; i < d->n; i++) {
        const emu_op *sa = s->ns ? s->sa + i * s->ns : NULL, *sb = s->ns ? s->sb + i * s->ns : NULL;
        s->fok[u][i] = emu_fops_build(&m, s->a + i * d->k, sa, d->in.scale_block, d->k,
                                      s->fa[u] + i * d->k) &&
                       emu_fops_build(&m, s->b + i * d->k, sb, d->in.scale_block, d->k,
                                      s->fb[u] + i * d->k);
    }
}

static int fit_set_make(fit_set *s, const fp4emu_fit_data *d) {
    memset(s, 0, sizeof *s);
    s->d = d;
    bool scaled = d->in.scale_fmt != FP4_FMT_COUNT;
    s->ns = scaled ? (d->k + d->in.scale_block - 1) / d->in.scale_block : 0;
    size_t nv = (size_t)(d->n * d->k), nsc = (size_t)(d->n * s->ns);
    s->a = malloc(nv * sizeof(emu_op));
    s->b = malloc(nv * sizeof(emu_op));
    s->sa = malloc((nsc ? nsc : 1) * sizeof(emu_op));
    s->sb = malloc((nsc ? nsc : 1) * sizeof(emu_op));
    bool ok = s->a && s->b && s->sa && s->sb;
    for (int u = 0; u < 2; u++) {
        s->fa[u] = malloc(nv * sizeof(emu_fop));
        s->fb[u] = malloc(nv * sizeof(emu_fop));
        s->fok[u] = malloc((size_t)d->n);
        ok = ok && s->fa[u] && s->fb[u] && s->fok[u];
    }
    if (!ok) {
        fit_set_free(s);
        return fp4_fail("emu fit: out of memory");
    }
    emu_ops_decode(d->in.a_fmt, d->a, false, 0, (int64_t)nv, true, s->a);
    emu_ops_decode(d->in.b_fmt, d->b, false, 0, (int64_t)nv, true, s->b);
    if (scaled) {
        emu_ops_decode(d->in.scale_fmt, d->sa, false, 0, (int64_t)nsc, true, s->sa);
        emu_ops_decode(d->in.scale_fmt, d->sb, false, 0, (int64_t)nsc, true, s->sb);
    }
    build_fops(s, 0);
    build_fops(s, 1);
    return 0;
}

static uint64_t eval(const fit_set *s, const fp4emu_model *m, int64_t i, emu_term *scratch) {
    const fp4emu_fit_data *d = s->d;
    int u = m->unpack == FP4_FMT_F16;
    bool fast = m->scale_at == FP4EMU_SCALE_PRODUCT && (u || m->unpack == FP4_FMT_COUNT) &&
                s->fok[u][i];
    emu_dotops x = {s->a + i * d->k,
                    s->b + i * d->k,
                    s->ns ? s->sa + i * s->ns : NULL,
                    s->ns ? s->sb + i * s->ns : NULL,
                    d->in.scale_block,
                    d->in.a_fmt,
                    d->in.b_fmt,
                    fast ? s->fa[u] + i * d->k : NULL,
                    fast ? s->fb[u] + i * d->k : NULL};
    return emu_instr(m, &x, 0, d->k, d->c[i], scratch);
}

/* Mismatches of m on samples [0, n), stopping once `cap` is reached. */
static int64_t mismatches(const fit_set *s, const fp4emu_model *m, int64_t n, int64_t cap,
                          emu_term *scratch) {
    int64_t bad = 0;
    for (int64_t i = 0; i < n && bad < cap; i++) bad += eval(s, m, i, scratch) != s->d->d[i];
    return bad;
}

/* mism[c] for every candidate on the first n samples, capped. */
static int screen_all(const fit_set *s, const cand_list *l, int64_t n, int64_t cap, int64_t *mism) {
    int failed = 0;
#pragma omp parallel
    {
        emu_term *scratch = malloc((size_t)(s->d->k + 1) * sizeof(emu_term));
        if (!scratch) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 8)
        for (int64_t c = 0; c < l->n; c++)
            mism[c] = scratch ? mismatches(s, &l->m[c], n, cap, scratch) : cap;
        free(scratch);
    }
    return failed ? fp4_fail("emu fit: out of memory") : 0;
}

/* ------------------------------------------------------------------------ */
/* Report                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct scored {
    int64_t idx, matches;
} scored;

static int scored_cmp(const void *x, const void *y) {
    const scored *a = x, *b = y;
    if (a->matches != b->matches) return a->matches > b->matches ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

/* Same model as run c but for F == c->f_hi + 1, with the same count.
 * Enumeration puts F innermost, so such candidates sort next to each other. */
static bool extends_run(const fp4emu_fit_cand *c, const fp4emu_model *m, int64_t matches) {
    fp4emu_model x = *m;
    x.F = c->model.F;
    return matches == c->matches && m->F == c->f_hi + 1 && fp4emu_model_equal(&x, &c->model);
}

bool fp4emu_fit_cand_has(const fp4emu_fit_cand *c, const fp4emu_model *m) {
    fp4emu_model x = *m;
    x.F = c->model.F;
    return m->F >= c->model.F && m->F <= c->f_hi && fp4emu_model_equal(&x, &c->model);
}

static void residuals(const fit_set *s, fp4emu_fit_report *rep) {
    emu_term *scratch = malloc((size_t)(s->d->k + 1) * sizeof(emu_term));
    rep->n_resid = 0;
    for (int64_t i = 0; scratch && i < s->d->n && rep->n_resid < FP4EMU_FIT_MAX_RESID; i++) {
        uint64_t got = eval(s, &rep->best[0].model, i, scratch);
        if (got == s->d->d[i]) continue;
        rep->resid_index[rep->n_resid] = i;
        rep->resid_model[rep->n_resid++] = got;
    }
    free(scratch);
}

/* Full evaluation of the survivors, sorted into the report. */
static int rank(const fit_set *s, const cand_list *l, const int64_t *mism, int64_t keep_below,
                fp4emu_fit_report *rep) {
    int64_t ns = 0;
    scored *sv = malloc((size_t)(l->n ? l->n : 1) * sizeof *sv);
    if (!sv) return fp4_fail("emu fit: out of memory");
    for (int64_t c = 0; c < l->n; c++)
        if (mism[c] <= keep_below) sv[ns++] = (scored){c, 0};
    int failed = 0;
#pragma omp parallel
    {
        emu_term *scratch = malloc((size_t)(s->d->k + 1) * sizeof(emu_term));
        if (!scratch) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t i = 0; i < ns; i++)
            if (scratch)
                sv[i].matches = s->d->n - mismatches(s, &l->m[sv[i].idx], s->d->n, s->d->n + 1, scratch);
        free(scratch);
    }
    qsort(sv, (size_t)ns, sizeof *sv, scored_cmp);
    rep->n_evaluated = ns;
    rep->n_full = 0;
    for (int64_t i = 0; i < ns; i++) rep->n_full += sv[i].matches == s->d->n;
    rep->n_best = 0;
    for (int64_t i = 0; i < ns; i++) {
        const fp4emu_model *m = &l->m[sv[i].idx];
        fp4emu_fit_cand *last = rep->n_best ? &rep->best[rep->n_best - 1] : NULL;
        if (last && extends_run(last, m, sv[i].matches)) {
            last->f_hi = m->F;
            continue;
        }
        if (rep->n_best == FP4EMU_FIT_MAX_BEST) break;
        rep->best[rep->n_best++] = (fp4emu_fit_cand){*m, m->F, sv[i].matches};
    }
    free(sv);
    return failed ? fp4_fail("emu fit: out of memory") : 0;
}

static int check_data(const fp4emu_fit_data *d, const fp4emu_fit_space *sp) {
    if (!d || !d->a || !d->b || !d->c || !d->d) return fp4_fail("emu fit: null data");
    if (!emu_input_check(&d->in)) return -1;
    if (d->in.scale_fmt != FP4_FMT_COUNT && (!d->sa || !d->sb))
        return fp4_fail("emu fit: scaled input without scales");
    if (d->k < 1 || d->k > FP4EMU_MAX_K || d->n < 1)
        return fp4_fail("emu fit: need k in 1..%d and n >= 1", FP4EMU_MAX_K);
    if (d->acc != FP4_FMT_F32 && d->acc != FP4_FMT_F16)
        return fp4_fail("emu fit: accumulator format must be f32 or f16");
    if (sp->f_min > sp->f_max || sp->f_min < -64 || sp->slack < 0 || sp->screen < 1)
        return fp4_fail("emu fit: bad search space (F range, screen or slack)");
    return 0;
}

/* Screening pass (see the file comment); sets *best to the lowest screened
 * mismatch count. */
static int screen(const fit_set *s, const cand_list *l, const fp4emu_fit_space *sp, int64_t *mism,
                  int64_t *best) {
    int64_t n = sp->screen < s->d->n ? sp->screen : s->d->n, cap = 2 * (int64_t)sp->slack + 1;
    for (int pass = 0; pass < 2; pass++) {
        if (screen_all(s, l, n, pass == 0 ? cap : n + 1, mism)) return -1;
        *best = n + 1;
        for (int64_t c = 0; c < l->n; c++) *best = mism[c] < *best ? mism[c] : *best;
        if (*best <= sp->slack) break; /* else nothing is close: counts above the cap matter */
    }
    return 0;
}

static int fit_run(const fp4emu_fit_data *data, const fp4emu_fit_space *sp, const cand_list *l,
                   fp4emu_fit_report *rep) {
    fit_set s;
    if (fit_set_make(&s, data)) return -1;
    int64_t *mism = malloc((size_t)l->n * sizeof *mism), best = 0;
    int rc = mism ? screen(&s, l, sp, mism, &best) : fp4_fail("emu fit: out of memory");
    if (rc == 0) rc = rank(&s, l, mism, best + sp->slack, rep);
    if (rc == 0 && rep->n_best > 0) residuals(&s, rep);
    free(mism);
    fit_set_free(&s);
    return rc;
}

int fp4emu_fit(const fp4emu_fit_data *data, const fp4emu_fit_space *space,
               fp4emu_fit_report *rep) {
    if (!rep) return fp4_fail("emu fit: null report");
    fp4emu_fit_space sp = space ? *space : fp4emu_fit_space_default(data ? data->acc : FP4_FMT_F32);
    if (check_data(data, &sp)) return -1;
    memset(rep, 0, sizeof *rep);
    cand_list l = {NULL, 0, 0};
    int rc = enumerate(data, &sp, &l);
    if (rc == 0 && l.n == 0) rc = fp4_fail("emu fit: the search space is empty for K = %d", data->k);
    rep->n_samples = data->n;
    rep->n_candidates = l.n;
    if (rc == 0) rc = fit_run(data, &sp, &l, rep);
    free(l.m);
    return rc;
}

static void print_code(FILE *f, fp4_format fmt, uint64_t code) {
    char buf[64];
    fp4_value v = fp4_decode(fmt, code);
    fp4_value_to_string(&v, buf, sizeof buf);
    fprintf(f, "0x%0*llX (%s)", fp4_format_get(fmt)->bits / 4, (unsigned long long)code, buf);
}

void fp4emu_fit_print(FILE *f, const fp4emu_fit_data *data, const fp4emu_fit_report *rep) {
    char buf[256];
    fprintf(f, "fit: %lld samples, %lld candidates, %lld evaluated in full, %lld match all\n",
            (long long)rep->n_samples, (long long)rep->n_candidates, (long long)rep->n_evaluated,
            (long long)rep->n_full);
    int show = rep->n_best < 10 ? rep->n_best : 10;
    for (int i = 0; i < show; i++) {
        const fp4emu_fit_cand *c = &rep->best[i];
        fp4emu_model_format(&c->model, buf, sizeof buf);
        fprintf(f, "  %lld/%lld  %s", (long long)c->matches, (long long)rep->n_samples, buf);
        if (c->f_hi > c->model.F) fprintf(f, "  (any F in %d..%d)", c->model.F, c->f_hi);
        fputc('\n', f);
    }
    for (int i = 0; data && i < rep->n_resid; i++) {
        int64_t s = rep->resid_index[i];
        fprintf(f, "  mismatch sample %lld: C ", (long long)s);
        print_code(f, data->acc, data->c[s]);
        fprintf(f, " measured ");
        print_code(f, data->acc, data->d[s]);
        fprintf(f, " model ");
        print_code(f, data->acc, rep->resid_model[i]);
        fputc('\n', f);
    }
}
