/* gemm.c - runs a datapath model over a whole GEMM call in a kernel's
 * structure (fp4emu.h "Kernel structure and the GEMM driver").
 *
 * Each output D[m][n] is computed alone: for every split-K chunk, one chain
 * of instructions over the chunk's K range (emu_chain_range: K order and
 * promotion inside the chunk); the chunks' FP32 results are added in the
 * structure's reduction order; then the call's epilogue (ref/'s code).
 * Outputs are independent, so OpenMP over outputs gives the same bits on any
 * thread count, and no window or tiling can change a result; only the
 * structure can. Operands are decoded once per row into exact emu_ops.
 */
#include "emu_internal.h"

#include <stdlib.h>
#include <string.h>

/* Below this many multiply-adds a parallel region costs more than it saves. */
enum { PARALLEL_MIN_WORK = 1 << 16 };

fp4emu_gemm_opts fp4emu_gemm_opts_default(const fp4emu_model *m) {
    fp4emu_gemm_opts o;
    memset(&o, 0, sizeof o);
    o.model = m;
    o.st = fp4emu_structure_plain();
    return o;
}

/* ------------------------------------------------------------------------ */
/* Operands                                                                  */
/* ------------------------------------------------------------------------ */

/* Scales the MMA itself applies (UE4M3 / UE8M0); F32 block scales are
 * group scales, multiplied in at promotion. */
static bool mma_scaled(const fp4_tensor *t) {
    return fp4_tensor_scaled(t) && t->scale_fmt != FP4_FMT_F32;
}

static bool group_scaled(const fp4_tensor *t) {
    return fp4_tensor_scaled(t) && t->scale_fmt == FP4_FMT_F32;
}

static int check_operands(const fp4emu_gemm_opts *o, const fp4_tensor *A, const fp4_tensor *B) {
    if (mma_scaled(A) != mma_scaled(B) ||
        (mma_scaled(A) && (A->scale_fmt != B->scale_fmt || A->block != B->block)))
        return fp4_fail("emu gemm: A (%s) and B (%s) must share the block-scale format and block",
                        fp4_tkind_name(fp4_tensor_kind(A)), fp4_tkind_name(fp4_tensor_kind(B)));
    if ((mma_scaled(A) && A->block_rows != 1) || (mma_scaled(B) && B->block_rows != 1))
        return fp4_fail("emu gemm: MMA block scales are per row (block_rows 1)");
    for (int w = 0; w < 2 && A->scale_fmt == FP4_FMT_UE4M3; w++) {
        const fp4_tensor *X = w ? B : A;
        const uint8_t *s = X->scales;
        for (int64_t i = 0; i < fp4_tensor_scales_count(X); i++)
            if (s[i] & 0x80)
                return fp4_fail("emu gemm: %s scale byte 0x%02X at %lld has bit 7 set (UE4M3 is "
                                "7 bits)", w ? "B" : "A", s[i], (long long)i);
    }
    fp4emu_input in = {A->elem, B->elem, mma_scaled(A) ? A->scale_fmt : FP4_FMT_COUNT,
                       mma_scaled(A) ? A->block : 0};
    if (emu_model_input_check(o->model, &in)) return -1;
    if (!group_scaled(A) && !group_scaled(B)) return 0;
    int64_t every = o->st.chain.promote_every, ga = group_scaled(A) ? A->block : 0,
            gb = group_scaled(B) ? B->block : 0;
    if (every <= 0 || (ga && ga % every) || (gb && gb % every) || (ga && gb && ga != gb))
        return fp4_fail("emu gemm: FP32 block scales (per %lld / %lld elements) are applied at "
                        "promotion: promote_every (%lld) must divide the block",
                        (long long)ga, (long long)gb, (long long)every);
    return 0;
}

typedef struct dmat {
    int64_t r0, rows, k, ns; /* rows [r0, r0 + rows) */
    emu_op *v, *s;           /* [rows][k], [rows][ns] MMA scales */
    emu_fop *f;              /* [rows][k] pre-combined for the fast path */
    uint8_t *fok;            /* [rows]: the row's f is usable */
} dmat;

static void dmat_free(dmat *d) { free(d->v), free(d->s), free(d->f), free(d->fok); }

static int dmat_make(dmat *d, const fp4_tensor *X, int64_t r0, int64_t r1, const fp4emu_model *m) {
    memset(d, 0, sizeof *d);
    d->r0 = r0, d->rows = r1 - r0, d->k = X->cols;
    d->ns = mma_scaled(X) ? fp4_tensor_scale_cols(X) : 0;
    int64_t nv = d->rows * d->k, nsc = d->rows * d->ns;
    d->v = malloc((size_t)(nv ? nv : 1) * sizeof(emu_op));
    d->s = malloc((size_t)(nsc ? nsc : 1) * sizeof(emu_op));
    d->f = malloc((size_t)(nv ? nv : 1) * sizeof(emu_fop));
    d->fok = malloc((size_t)(d->rows ? d->rows : 1));
    if (!d->v || !d->s || !d->f || !d->fok) {
        dmat_free(d);
        return fp4_fail_kind(FP4_ERR_NOMEM, "emu gemm: out of memory decoding a [%lld, %lld] "
                             "operand", (long long)d->rows, (long long)d->k);
    }
#pragma omp parallel for schedule(static) if (nv > PARALLEL_MIN_WORK)
    for (int64_t r = 0; r < d->rows; r++) {
        emu_op *v = d->v + r * d->k, *s = d->ns ? d->s + r * d->ns : NULL;
        for (int64_t c = 0; c < d->k; c++)
            v[c] = emu_op_decode(X->elem, fp4_tensor_code(X, r0 + r, c), m->in_subnormals);
        for (int64_t g = 0; s && g < d->ns; g++)
            s[g] = emu_op_decode(X->scale_fmt, fp4_tensor_scale_code(X, r0 + r, g * X->block),
                                 m->in_subnormals);
        d->fok[r] = emu_fops_build(m, v, s, X->block, d->k, d->f + r * d->k);
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* One output                                                                */
/* ------------------------------------------------------------------------ */

typedef struct gemm_ctx {
    const fp4emu_gemm_opts *o;
    const fp4_gemm_call *c;
    const dmat *da, *db;
    int64_t at[FP4EMU_MAX_SPLIT + 1];
    fp4emu_chain chain[FP4EMU_MAX_SPLIT]; /* per chunk (k_desc: its descending step order) */
    fp4_format accf;   /* format of a chunk's result */
    int64_t ngroups;   /* FP32 group scales per row (promotion groups of K) */
} gemm_ctx;

/* Per-group scale of output (m, n): RN32(sA * sB), or the one given. */
static void group_scales_of(const gemm_ctx *g, int64_t m, int64_t n, float *out) {
    const fp4_tensor *A = g->c->A, *B = g->c->B;
    const int64_t every = g->o->st.chain.promote_every;
    for (int64_t j = 0; j < g->ngroups; j++) {
        int64_t k = j * every;
        bool ha = group_scaled(A), hb = group_scaled(B);
        uint32_t sa = ha ? (uint32_t)fp4_tensor_scale_code(A, m, k) : 0x3F800000u;
        uint32_t sb = hb ? (uint32_t)fp4_tensor_scale_code(B, n, k) : 0x3F800000u;
        out[j] = fp4_f32_from_bits(ha && hb ? f32_mul(sa, sb, FP4_RNE) : ha ? sa : sb);
    }
}

/* A chunk result as an FP32 code (exact widening of F16). */
static uint64_t to_f32(fp4_format f, uint64_t code) {
    if (f == FP4_FMT_F32) return code;
    fp4_cvt_opts co = {FP4_RNE, FP4_POLICY_NOSAT, 0, 0, 0};
    uint64_t out = 0;
    fp4_convert(FP4_FMT_F32, f, code, &co, &out, NULL);
    return out;
}

/* The chunks' results added in the structure's order (FP32 RN). */
static uint64_t reduce(const fp4emu_structure *st, uint64_t *p, int S) {
    switch (st->reduce) {
    case FP4EMU_REDUCE_REV: {
        uint64_t r = p[S - 1];
        for (int s = S - 2; s >= 0; s--) r = emu_add_rn(FP4_FMT_F32, r, p[s]);
        return r;
    }
    case FP4EMU_REDUCE_TREE:
        for (int w = S; w > 1;) { /* adjacent pairs; an odd last one moves up a level */
            int h = 0;
            for (int i = 0; i + 1 < w; i += 2) p[h++] = emu_add_rn(FP4_FMT_F32, p[i], p[i + 1]);
            if (w % 2) p[h++] = p[w - 1];
            w = h;
        }
        return p[0];
    case FP4EMU_REDUCE_ORDER: {
        uint64_t r = p[st->order[0]];
        for (int s = 1; s < S; s++) r = emu_add_rn(FP4_FMT_F32, r, p[st->order[s]]);
        return r;
    }
    default: {
        uint64_t r = p[0];
        for (int s = 1; s < S; s++) r = emu_add_rn(FP4_FMT_F32, r, p[s]);
        return r;
    }
    }
}

/* The accumulated value of output (m, n) as a code of *fmt. */
static uint64_t dot_of(const gemm_ctx *g, int64_t m, int64_t n, emu_term *scratch, float *gs,
                       fp4_format *fmt) {
    const fp4_tensor *A = g->c->A, *B = g->c->B;
    const dmat *da = g->da, *db = g->db;
    const int64_t K = A->cols, i = m - da->r0, j = n - db->r0;
    const fp4emu_structure *st = &g->o->st;
    bool fast = da->fok[i] && db->fok[j];
    emu_dotops x = {da->v + i * K, db->v + j * K, da->ns ? da->s + i * da->ns : NULL,
                    db->ns ? db->s + j * db->ns : NULL, A->block, A->elem, B->elem,
                    fast ? da->f + i * K : NULL, fast ? db->f + j * K : NULL};
    bool groups = group_scaled(A) || group_scaled(B);
    if (groups) group_scales_of(g, m, n, gs);
    const fp4emu_model *md = g->o->model;
    if (st->splits <= 1) {
        uint64_t c0 = g->o->acc_init ? g->o->acc_init[m * B->rows + n] : emu_zero_code(g->accf, 0);
        *fmt = g->accf;
        return emu_chain_range(md, &x, 0, K, c0, &g->chain[0], groups ? gs : NULL, scratch);
    }
    uint64_t part[FP4EMU_MAX_SPLIT];
    for (int s = 0; s < st->splits; s++) {
        uint64_t r = emu_chain_range(md, &x, g->at[s], g->at[s + 1], emu_zero_code(g->accf, 0),
                                     &g->chain[s], groups ? gs : NULL, scratch);
        part[s] = to_f32(g->accf, r);
    }
    *fmt = FP4_FMT_F32;
    return reduce(st, part, st->splits);
}

static void one_output(const gemm_ctx *g, int64_t m, int64_t n, emu_term *scratch, float *gs) {
    const fp4_gemm_call *c = g->c;
    fp4_format f;
    uint64_t acc = dot_of(g, m, n, scratch, gs, &f);
    const int64_t i = m * c->B->rows + n;
    float cv = c->C ? c->C[i] : 0.0f;
    uint64_t code;
    if (c->epi == FP4_EPI_F32) {
        code = fp4_epilogue_f32((uint32_t)to_f32(f, acc), c->alpha, c->A->global_scale,
                                c->B->global_scale, c->beta, cv, c->out, c->out_round);
    } else {
        fp4_value v = fp4_decode(f, acc);
        code = fp4_epilogue_exact(&v, c->alpha, c->A->global_scale, c->B->global_scale, c->beta,
                                  cv, c->out, c->out_round);
    }
    fp4_gemm_store(c->D, c->out, i, code);
}

static int run_outputs(const gemm_ctx *g, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    const int64_t nn = n1 - n0, count = (m1 - m0) * nn;
    int failed = 0;
    int64_t work = count * g->c->A->cols;
#pragma omp parallel if (work > PARALLEL_MIN_WORK)
    {
        emu_term *scratch = malloc((size_t)(g->o->model->k + 1) * sizeof(emu_term));
        float *gs = malloc((size_t)(g->ngroups + 1) * sizeof(float));
        if (!scratch || !gs) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 16)
        for (int64_t t = 0; t < count; t++)
            if (scratch && gs) one_output(g, m0 + t / nn, n0 + t % nn, scratch, gs);
        free(scratch);
        free(gs);
    }
    return failed ? fp4_fail_kind(FP4_ERR_NOMEM, "emu gemm: out of memory") : 0;
}

static int gemm_linear(const fp4emu_gemm_opts *o, const fp4_gemm_call *c) {
    const fp4_tensor *A = c->A, *B = c->B;
    if (check_operands(o, A, B) || fp4emu_structure_check(&o->st, o->model, A->cols)) return -1;
    if (o->acc_init && o->st.splits > 1)
        return fp4_fail("emu gemm: acc_init seeds one chain; it cannot go with split-K");
    int64_t m0, m1, n0, n1;
    fp4_gemm_call_window(c, &m0, &m1, &n0, &n1);
    dmat da, db;
    if (dmat_make(&da, A, m0, m1, o->model)) return -1;
    if (dmat_make(&db, B, n0, n1, o->model)) {
        dmat_free(&da);
        return -1;
    }
    const int64_t every = o->st.chain.promote_every;
    gemm_ctx g;
    memset(&g, 0, sizeof g);
    g.o = o;
    g.c = c;
    g.da = &da;
    g.db = &db;
    fp4emu_structure_bounds(&o->st, o->model, A->cols, g.at);
    g.accf = fp4emu_dot_format(o->model, &o->st.chain);
    g.ngroups = every > 0 ? (A->cols + every - 1) / every : 0;
    int64_t *desc[FP4EMU_MAX_SPLIT] = {NULL};
    int rc = 0;
    for (int s = 0; s < o->st.splits && !rc; s++) {
        g.chain[s] = o->st.chain;
        if (!o->st.k_desc) continue;
        const int64_t n = (g.at[s + 1] - g.at[s] + o->model->k - 1) / o->model->k;
        if (!(desc[s] = malloc((size_t)n * sizeof(int64_t))))
            rc = fp4_fail_kind(FP4_ERR_NOMEM, "emu gemm: out of memory");
        for (int64_t i = 0; !rc && i < n; i++) desc[s][i] = n - 1 - i;
        g.chain[s].k_order = desc[s];
    }
    if (!rc) rc = run_outputs(&g, m0, m1, n0, n1);
    for (int s = 0; s < FP4EMU_MAX_SPLIT; s++) free(desc[s]);
    dmat_free(&da);
    dmat_free(&db);
    return rc;
}

int fp4emu_gemm(const fp4emu_gemm_opts *o, const fp4_gemm_call *c) {
    if (!o || !o->model) return fp4_fail("emu gemm: null options or model");
    if (fp4emu_model_check(o->model) || fp4_gemm_call_check(c)) return -1;
    fp4_tensor A, B;
    void *ownA = NULL, *ownB = NULL;
    if (fp4_tensor_linearize(c->A, &A, &ownA)) return -1;
    if (fp4_tensor_linearize(c->B, &B, &ownB)) {
        free(ownA);
        return -1;
    }
    fp4_gemm_call lc = *c;
    lc.A = &A;
    lc.B = &B;
    int rc = gemm_linear(o, &lc);
    free(ownA);
    free(ownB);
    return rc;
}
