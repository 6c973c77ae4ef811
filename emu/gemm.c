/* gemm.c - runs a datapath model over a whole GEMM.
 *
 * Each output D[m][n] is one dot product chained over K in K steps of the
 * model's instruction K (emu_chain_run), then an FP32 epilogue in a fixed
 * order. Outputs are independent, so OpenMP over outputs gives the same
 * bits on any thread count, and M/N tiling cannot change a result; only
 * the K order and the promotion interval can, and both are options.
 * Operands are decoded once per matrix into exact emu_ops.
 */
#include "emu_internal.h"

#include <stdlib.h>
#include <string.h>

/* Below this many elements (or multiply-adds) a parallel region costs more
 * than it saves: threads would mostly wait at its barrier. */
enum { PARALLEL_MIN_WORK = 1 << 16 };

fp4emu_gemm_opts fp4emu_gemm_opts_default(const fp4emu_model *m) {
    fp4emu_gemm_opts o;
    memset(&o, 0, sizeof o);
    o.model = m;
    o.out = FP4_FMT_F32;
    o.out_round = FP4_RNE;
    o.alpha = 1.0f;
    o.beta = 0.0f;
    return o;
}

fp4emu_matrix fp4emu_matrix_plain(fp4_format fmt, int64_t rows, int64_t k, const void *codes) {
    fp4emu_matrix m;
    memset(&m, 0, sizeof m);
    m.fmt = fmt;
    m.rows = rows;
    m.k = k;
    m.codes = codes;
    m.scale_fmt = FP4_FMT_COUNT;
    m.group_rows = 1;
    m.global_scale = 1.0f;
    return m;
}

fp4emu_matrix fp4emu_matrix_nvfp4(const fp4_nvfp4_matrix *X) {
    fp4emu_matrix m;
    memset(&m, 0, sizeof m);
    m.fmt = FP4_FMT_E2M1;
    m.rows = X->rows;
    m.k = X->k;
    m.codes = X->codes;
    m.packed = true;
    m.scale_fmt = FP4_FMT_UE4M3;
    m.scale_block = 16;
    m.scales = X->scales;
    m.group_rows = 1;
    m.global_scale = X->global_scale;
    return m;
}

/* ------------------------------------------------------------------------ */
/* Argument checks                                                           */
/* ------------------------------------------------------------------------ */

static int64_t nscales(const fp4emu_matrix *X) {
    return X->scale_fmt == FP4_FMT_COUNT ? 0 : (X->k + X->scale_block - 1) / X->scale_block;
}

static int check_matrix(const fp4emu_matrix *X, const char *name) {
    if (X->rows < 0 || X->k < 1)
        return fp4_fail("emu gemm: %s has bad shape [%lld, %lld]", name, (long long)X->rows,
                        (long long)X->k);
    if (X->rows && !X->codes) return fp4_fail("emu gemm: %s codes are null", name);
    if (X->packed && (X->fmt != FP4_FMT_E2M1 || X->k % 2))
        return fp4_fail("emu gemm: %s: packing needs e2m1 and an even K", name);
    if (X->scale_fmt == FP4_FMT_COUNT) return 0;
    if (X->rows && !X->scales) return fp4_fail("emu gemm: %s scales are null", name);
    if (X->scale_fmt != FP4_FMT_UE4M3) return 0;
    for (int64_t i = 0; i < X->rows * nscales(X); i++)
        if (X->scales[i] & 0x80)
            return fp4_fail("emu gemm: %s scale byte 0x%02X at %lld has bit 7 set (UE4M3 is 7 "
                            "bits)", name, X->scales[i], (long long)i);
    return 0;
}

static int check_group_scales(const fp4emu_gemm_opts *o, const fp4emu_matrix *A,
                              const fp4emu_matrix *B) {
    bool ga = A->group_scales != NULL, gb = B->group_scales != NULL;
    if (!ga && !gb) return 0;
    if ((ga && A->group_rows < 1) || (gb && B->group_rows < 1))
        return fp4_fail("emu gemm: group_rows must be >= 1 with group scales");
    if (o->chain.promote_every <= 0)
        return fp4_fail("emu gemm: group scales need chain.promote_every > 0");
    return 0;
}

static int check_args(const fp4emu_gemm_opts *o, const fp4emu_matrix *A, const fp4emu_matrix *B,
                      const float *C, const void *D) {
    if (!o || !o->model || !A || !B || !D) return fp4_fail("emu gemm: null argument");
    if (fp4emu_model_check(o->model)) return -1;
    if (A->k != B->k)
        return fp4_fail("emu gemm: K mismatch: A [%lld, %lld], B [%lld, %lld]",
                        (long long)A->rows, (long long)A->k, (long long)B->rows, (long long)B->k);
    if (check_matrix(A, "A") || check_matrix(B, "B")) return -1;
    if (A->scale_fmt != B->scale_fmt ||
        (A->scale_fmt != FP4_FMT_COUNT && A->scale_block != B->scale_block))
        return fp4_fail("emu gemm: A and B must share the scale format and block");
    if (o->out != FP4_FMT_F32 && o->out != FP4_FMT_F16 && o->out != FP4_FMT_BF16)
        return fp4_fail("emu gemm: output format must be f32, f16 or bf16");
    if ((unsigned)o->out_round >= FP4_ROUND_COUNT || o->out_round == FP4_RS)
        return fp4_fail("emu gemm: bad output rounding");
    if (o->beta != 0.0f && !C) return fp4_fail("emu gemm: beta != 0 but C is null");
    fp4emu_input in = {A->fmt, B->fmt, A->scale_fmt, A->scale_block};
    if (emu_model_input_check(o->model, &in) || check_group_scales(o, A, B)) return -1;
    bool groups = A->group_scales || B->group_scales;
    return emu_chain_check(o->model, &o->chain, A->k, groups);
}

/* ------------------------------------------------------------------------ */
/* Decoded operands                                                          */
/* ------------------------------------------------------------------------ */

typedef struct dmat {
    emu_op *v, *s; /* [rows][k], [rows][ns] */
    emu_fop *f;    /* [rows][k] pre-combined for the fast path */
    uint8_t *fok;  /* [rows]: the row's f is usable */
    int64_t ns;
} dmat;

static void dmat_free(dmat *d) { free(d->v), free(d->s), free(d->f), free(d->fok); }

static int dmat_make(dmat *d, const fp4emu_matrix *X, const fp4emu_model *m) {
    d->ns = nscales(X);
    int64_t nv = X->rows * X->k, nsc = X->rows * d->ns;
    d->v = malloc((size_t)(nv ? nv : 1) * sizeof(emu_op));
    d->s = malloc((size_t)(nsc ? nsc : 1) * sizeof(emu_op));
    d->f = malloc((size_t)(nv ? nv : 1) * sizeof(emu_fop));
    d->fok = malloc((size_t)(X->rows ? X->rows : 1));
    if (!d->v || !d->s || !d->f || !d->fok) {
        dmat_free(d);
        return fp4_fail("emu gemm: out of memory decoding a [%lld, %lld] operand",
                        (long long)X->rows, (long long)X->k);
    }
#pragma omp parallel for schedule(static) if (nv > PARALLEL_MIN_WORK)
    for (int64_t r = 0; r < X->rows; r++) {
        emu_op *v = d->v + r * X->k, *s = d->ns ? d->s + r * d->ns : NULL;
        emu_ops_decode(X->fmt, X->codes, X->packed, r * X->k, X->k, m->in_subnormals, v);
        if (s) emu_ops_decode(X->scale_fmt, X->scales, false, r * d->ns, d->ns, m->in_subnormals, s);
        d->fok[r] = emu_fops_build(m, v, s, X->scale_block, X->k, d->f + r * X->k);
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* One output                                                                */
/* ------------------------------------------------------------------------ */

/* Per-group scale of output (m, n): RN32(sA * sB), or the one given. */
static void group_scales_of(const fp4emu_matrix *A, const fp4emu_matrix *B, int64_t m, int64_t n,
                            int64_t ngroups, float *out) {
    const float *ra = A->group_scales ? A->group_scales + (m / A->group_rows) * ngroups : NULL;
    const float *rb = B->group_scales ? B->group_scales + (n / B->group_rows) * ngroups : NULL;
    for (int64_t g = 0; g < ngroups; g++) {
        if (ra && rb)
            out[g] = fp4_f32_from_bits((uint32_t)emu_mul_rn(FP4_FMT_F32, fp4_f32_bits(ra[g]), fp4_f32_bits(rb[g])));
        else
            out[g] = ra ? ra[g] : rb[g];
    }
}

/* The documented FP32 epilogue (fp4emu.h), exact arithmetic, RN each step. */
static uint64_t epilogue(const fp4emu_gemm_opts *o, fp4_format accf, uint64_t acc, float gA,
                         float gB, float Cv) {
    fp4_cvt_opts co = {FP4_RNE, FP4_POLICY_NOSAT, 0, 0, 0};
    uint64_t a32 = acc;
    if (accf != FP4_FMT_F32) fp4_convert(FP4_FMT_F32, accf, acc, &co, &a32, NULL); /* exact */
    uint64_t s = emu_mul_rn(FP4_FMT_F32, fp4_f32_bits(o->alpha), fp4_f32_bits(gA));
    s = emu_mul_rn(FP4_FMT_F32, s, fp4_f32_bits(gB));
    uint64_t d = emu_mul_rn(FP4_FMT_F32, s, a32);
    if (o->beta != 0.0f) d = emu_fma_rn(FP4_FMT_F32, fp4_f32_bits(o->beta), fp4_f32_bits(Cv), d);
    co.round = o->out_round;
    uint64_t code = d;
    if (o->out != FP4_FMT_F32) fp4_convert(o->out, FP4_FMT_F32, d, &co, &code, NULL);
    return code;
}

static void store(void *D, fp4_format f, int64_t i, uint64_t code) {
    if (f == FP4_FMT_F32) ((uint32_t *)D)[i] = (uint32_t)code;
    else ((uint16_t *)D)[i] = (uint16_t)code;
}

typedef struct gemm_ctx {
    const fp4emu_gemm_opts *o;
    const fp4emu_matrix *A, *B;
    const dmat *da, *db;
    const float *C;
    void *D;
    fp4_format accf;
    int64_t ngroups;
} gemm_ctx;

static void one_output(const gemm_ctx *g, int64_t m, int64_t n, emu_term *scratch, float *gs) {
    const fp4emu_matrix *A = g->A, *B = g->B;
    int64_t K = A->k, N = B->rows;
    bool fast = g->da->fok[m] && g->db->fok[n];
    emu_dotops x = {g->da->v + m * K,
                    g->db->v + n * K,
                    g->da->ns ? g->da->s + m * g->da->ns : NULL,
                    g->db->ns ? g->db->s + n * g->db->ns : NULL,
                    A->scale_block,
                    A->fmt,
                    B->fmt,
                    fast ? g->da->f + m * K : NULL,
                    fast ? g->db->f + n * K : NULL};
    bool groups = A->group_scales || B->group_scales;
    if (groups) group_scales_of(A, B, m, n, g->ngroups, gs);
    uint64_t c0 = g->o->acc_init ? g->o->acc_init[m * N + n] : emu_zero_code(g->accf, 0);
    uint64_t acc = emu_chain_run(g->o->model, &x, K, c0, &g->o->chain, groups ? gs : NULL, scratch);
    float Cv = g->C ? g->C[m * N + n] : 0.0f;
    store(g->D, g->o->out, m * N + n,
          epilogue(g->o, g->accf, acc, A->global_scale, B->global_scale, Cv));
}

static int run_outputs(const gemm_ctx *g) {
    int64_t M = g->A->rows, N = g->B->rows;
    int failed = 0;
    int64_t work = M * N * g->A->k;
#pragma omp parallel if (work > PARALLEL_MIN_WORK)
    {
        emu_term *scratch = malloc((size_t)(g->o->model->k + 1) * sizeof(emu_term));
        float *gs = malloc((size_t)(g->ngroups + 1) * sizeof(float));
        if (!scratch || !gs) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 16)
        for (int64_t i = 0; i < M * N; i++)
            if (scratch && gs) one_output(g, i / N, i % N, scratch, gs);
        free(scratch);
        free(gs);
    }
    return failed ? fp4_fail("emu gemm: out of memory") : 0;
}

int fp4emu_gemm(const fp4emu_gemm_opts *o, const fp4emu_matrix *A, const fp4emu_matrix *B,
                const float *C, void *D) {
    if (check_args(o, A, B, C, D)) return -1;
    dmat da, db;
    if (dmat_make(&da, A, o->model)) return -1;
    if (dmat_make(&db, B, o->model)) {
        dmat_free(&da);
        return -1;
    }
    int64_t every = o->chain.promote_every;
    gemm_ctx g = {o, A, B, &da, &db, C, D, fp4emu_dot_format(o->model, &o->chain),
                  every > 0 ? (A->k + every - 1) / every : 0};
    int rc = run_outputs(&g);
    dmat_free(&da);
    dmat_free(&db);
    return rc;
}

int fp4emu_gemm_nvfp4(const fp4emu_gemm_opts *o, const fp4_nvfp4_matrix *A,
                      const fp4_nvfp4_matrix *B, const float *C, void *D) {
    if (!A || !B) return fp4_fail("emu gemm: null argument");
    if (A->k % 16 || B->k % 16)
        return fp4_fail("emu gemm: NVFP4 K = %lld is not a multiple of 16", (long long)A->k);
    fp4emu_matrix a = fp4emu_matrix_nvfp4(A), b = fp4emu_matrix_nvfp4(B);
    return fp4emu_gemm(o, &a, &b, C, D);
}
