/* cublas_search.c - exploration tool: which K structure did H100 cuBLASLt use?
 *
 * Reads /work/shared/data/h100-cublaslt-gemm/h100-cublaslt-gemm.safetensors
 * (README there) and, for each shape, counts how many of the 64x64 recorded
 * FP32 outputs each candidate structure reproduces bit for bit.
 *
 * A candidate = instruction model (an emu preset, optionally overridden)
 *             + split of the K steps into S chunks (contiguous, boundaries on a
 *               unit grid of U steps)
 *             + per chunk: step order (ascending / descending) and promotion
 *               interval P steps (0 = the MMA accumulator carries the chunk;
 *               P > 0: the MMA accumulator restarts at +0 every P steps and is
 *               added into an FP32 register by acc = RN32(acc + D))
 *             + reduction of the S chunk results in FP32 RN (sequential,
 *               reversed, adjacent-pairwise tree, stride-half tree, exact sum
 *               then one RN).
 *
 * Chunk results are precomputed for every unit range [a, b) with one pass per
 * start (ascending) or per end (descending); partitions are then enumerated
 * with early-abort counting against the current top list. Candidates giving
 * identical output bits are reported as one group. The list of structures
 * that reproduce all 4096 outputs (--all-full) is complete for the enumerated
 * space; runner-up counts are exact but a runner-up can be missed by the
 * 128-output screening (heuristic, ~3 sigma). (S, grid) pairs with more than
 * --cap partitions are skipped and printed as "skip".
 *
 * Result on the recorded data (/work/notes/cublas-structure.md): FP8 = QGMMA k32 chains over
 * each 128-element K block from +0, block results summed in FP32; F16 = one
 * ascending HGMMA k16 chain over the whole K, no promotion, no split-K.
 *
 * Build (after the project's Release build in build/):
 *   cc -O2 -fopenmp -I ref -I emu tools/cublas_search.c build/emu/libfp4emu.a \
 *      build/ref/libfp4ref.a -lmpfr -lgmp -lcjson -lcrypto -lquadmath -lm \
 *      -o build/cublas_search
 * Usage: build/cublas_search [options] (see usage()).
 */
#include "emu_internal.h"
#include "fp4io.h"

#include <quadmath.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOUT 4096
#define DIM 64
#define MAXS 8
#define TOPN 40
#define SCREEN 128
#define SCREEN_SLACK 20

static const char *g_path =
    "/work/shared/data/h100-cublaslt-gemm/h100-cublaslt-gemm.safetensors";

/* ------------------------------------------------------------------------ */
/* FP32 helpers. Host SSE float addition is IEEE RNE; checked against the    */
/* exact emu_add_rn at start-up.                                              */
/* ------------------------------------------------------------------------ */
static inline uint32_t add32(uint32_t x, uint32_t y) {
    float a, b, s;
    memcpy(&a, &x, 4), memcpy(&b, &y, 4);
    s = a + b;
    uint32_t r;
    memcpy(&r, &s, 4);
    return r;
}
static inline float f32(uint32_t x) {
    float a;
    memcpy(&a, &x, 4);
    return a;
}
static inline uint32_t bits32(float a) {
    uint32_t r;
    memcpy(&r, &a, 4);
    return r;
}

static void selfcheck_add(void) {
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 200000; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        uint32_t x = (uint32_t)s, y = (uint32_t)(s >> 32);
        if (i & 1) y = (y & 0x807FFFFFu) | ((x & 0x7F800000u) + ((uint32_t)(i % 30) << 23));
        if (((x >> 23) & 0xFF) == 0xFF || ((y >> 23) & 0xFF) == 0xFF) continue;
        uint32_t h = add32(x, y), e = (uint32_t)emu_add_rn(FP4_FMT_F32, x, y);
        if (h != e && !(((h >> 23) & 0xFF) == 0xFF && ((e >> 23) & 0xFF) == 0xFF)) {
            fprintf(stderr, "selfcheck: host add %08x+%08x = %08x, emu %08x\n", x, y, h, e);
            exit(1);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* One shape                                                                  */
/* ------------------------------------------------------------------------ */
typedef struct shape {
    char name[32];
    fp4_format fmt;
    int K;
    const void *A, *B;
    const uint32_t *C;
    emu_op *opa, *opb;    /* decoded rows, [64][K] */
    emu_fop *fa, *fb;     /* fast-path rows or NULL */
} shape;

typedef struct cfg {
    const fp4emu_model *m;
    const char *mname;
    int order; /* 0 ascending, 1 descending */
    int P;     /* promotion interval in steps, 0 none */
} cfg;

static emu_dotops dotops(const shape *s, const fp4emu_model *m, int i, int j) {
    emu_dotops x = {s->opa + (size_t)i * s->K, s->opb + (size_t)j * s->K, NULL, NULL, 0,
                    s->fmt, s->fmt, NULL, NULL};
    (void)m;
    if (s->fa) x.fa = s->fa + (size_t)i * s->K, x.fb = s->fb + (size_t)j * s->K;
    return x;
}

static int load_shape(fp4_st_file *f, const char *t, int K, const fp4emu_model *m, shape *s) {
    char n[64];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s.K%d", t, K);
    s->fmt = strcmp(t, "fp8") == 0 ? FP4_FMT_E4M3 : FP4_FMT_F16;
    s->K = K;
    snprintf(n, sizeof n, "%s.A", s->name);
    const fp4_st_tensor *ta = fp4_st_find(f, n);
    snprintf(n, sizeof n, "%s.B", s->name);
    const fp4_st_tensor *tb = fp4_st_find(f, n);
    snprintf(n, sizeof n, "%s.C", s->name);
    const fp4_st_tensor *tc = fp4_st_find(f, n);
    if (!ta || !tb || !tc) return fprintf(stderr, "missing tensors for %s\n", s->name), -1;
    if (ta->numel != (int64_t)DIM * K || tb->numel != (int64_t)DIM * K || tc->numel != NOUT)
        return fprintf(stderr, "%s: unexpected shapes\n", s->name), -1;
    s->A = ta->data, s->B = tb->data, s->C = tc->data;
    size_t ne = (size_t)DIM * K;
    s->opa = malloc(ne * sizeof(emu_op)), s->opb = malloc(ne * sizeof(emu_op));
    s->fa = malloc(ne * sizeof(emu_fop)), s->fb = malloc(ne * sizeof(emu_fop));
    emu_ops_decode(s->fmt, s->A, false, 0, (int64_t)ne, true, s->opa);
    emu_ops_decode(s->fmt, s->B, false, 0, (int64_t)ne, true, s->opb);
    bool fast = true;
    for (int r = 0; r < DIM; r++) {
        fast &= emu_fops_build(m, s->opa + (size_t)r * K, NULL, 0, K, s->fa + (size_t)r * K);
        fast &= emu_fops_build(m, s->opb + (size_t)r * K, NULL, 0, K, s->fb + (size_t)r * K);
    }
    if (!fast) free(s->fa), free(s->fb), s->fa = s->fb = NULL;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Chunk results for every unit range                                         */
/* ------------------------------------------------------------------------ */
typedef struct table {
    int nU, U;        /* units, steps per unit */
    uint32_t *r;      /* [range index][NOUT] */
} table;

static inline int ridx(int nU, int a, int b) { /* a < b, 0..nU */
    return a * (2 * nU - a + 1) / 2 + (b - a - 1);
}

typedef struct chainst {
    uint64_t d;   /* MMA accumulator (model acc format) */
    uint32_t acc; /* FP32 register accumulator (promotion) */
    int cnt;
} chainst;

static inline uint32_t to_f32(const fp4emu_model *m, uint64_t d) {
    if (m->acc == FP4_FMT_F32) return (uint32_t)d;
    fp4_cvt_opts co = {FP4_RNE, FP4_POLICY_NOSAT, 0, 0, 0};
    uint64_t r;
    fp4_convert(FP4_FMT_F32, m->acc, d, &co, &r, NULL);
    return (uint32_t)r;
}

static inline void chain_step(const cfg *c, const emu_dotops *x, int step, chainst *st,
                              emu_term *scratch) {
    st->d = emu_instr(c->m, x, (int64_t)step * c->m->k, c->m->k, st->d, scratch);
    if (c->P && ++st->cnt == c->P) {
        st->acc = add32(st->acc, to_f32(c->m, st->d));
        st->d = emu_zero_code(c->m->acc, 0), st->cnt = 0;
    }
}

static inline uint32_t chain_final(const cfg *c, const chainst *st) {
    if (!c->P) return to_f32(c->m, st->d);
    return st->cnt ? add32(st->acc, to_f32(c->m, st->d)) : st->acc;
}

static void table_fill(const shape *s, const cfg *c, int U, table *t) {
    int nsteps = s->K / c->m->k;
    t->U = U, t->nU = nsteps / U;
    int nr = t->nU * (t->nU + 1) / 2;
    t->r = realloc(t->r, (size_t)nr * NOUT * sizeof(uint32_t));
    int nU = t->nU;
#pragma omp parallel
    {
        emu_term *scratch = malloc((size_t)(c->m->k + 1) * sizeof(emu_term));
#pragma omp for schedule(static)
        for (int o = 0; o < NOUT; o++) {
            emu_dotops x = dotops(s, c->m, o / DIM, o % DIM);
            for (int e = 0; e < nU; e++) { /* e = start (asc) or end-1 (desc) unit */
                chainst st = {emu_zero_code(c->m->acc, 0), 0, 0};
                if (c->order == 0) {
                    for (int st_i = e * U; st_i < nsteps; st_i++) {
                        chain_step(c, &x, st_i, &st, scratch);
                        if ((st_i + 1) % U == 0)
                            t->r[(size_t)ridx(nU, e, (st_i + 1) / U) * NOUT + o] =
                                chain_final(c, &st);
                    }
                } else {
                    for (int st_i = (e + 1) * U - 1; st_i >= 0; st_i--) {
                        chain_step(c, &x, st_i, &st, scratch);
                        if (st_i % U == 0)
                            t->r[(size_t)ridx(nU, st_i / U, e + 1) * NOUT + o] =
                                chain_final(c, &st);
                    }
                }
            }
        }
        free(scratch);
    }
}

/* ------------------------------------------------------------------------ */
/* Reductions of chunk results                                                */
/* ------------------------------------------------------------------------ */
enum { R_SEQ = 0, R_REV, R_TREE, R_HALF, R_EXACT, R_COUNT };
static const char *k_rname[R_COUNT] = {"seq", "rev", "tree-adj", "tree-half", "exact-RN"};

static uint32_t reduce(int how, const uint32_t *v, int S) {
    uint32_t w[MAXS];
    switch (how) {
    case R_SEQ: {
        uint32_t a = v[0];
        for (int i = 1; i < S; i++) a = add32(a, v[i]);
        return a;
    }
    case R_REV: {
        uint32_t a = v[S - 1];
        for (int i = S - 2; i >= 0; i--) a = add32(a, v[i]);
        return a;
    }
    case R_TREE: { /* (v0+v1), (v2+v3), ... ; an odd last one carries */
        memcpy(w, v, (size_t)S * 4);
        for (int n = S; n > 1;) {
            int m = 0;
            for (int i = 0; i + 1 < n; i += 2) w[m++] = add32(w[i], w[i + 1]);
            if (n & 1) w[m++] = w[n - 1];
            n = m;
        }
        return w[0];
    }
    case R_HALF: { /* v[i] += v[i + h], h = n / 2 rounded up */
        memcpy(w, v, (size_t)S * 4);
        for (int n = S; n > 1;) {
            int h = (n + 1) / 2;
            for (int i = 0; i + h < n; i++) w[i] = add32(w[i], w[i + h]);
            n = h;
        }
        return w[0];
    }
    default: {
        __float128 a = 0;
        for (int i = 0; i < S; i++) a += (__float128)f32(v[i]);
        return bits32((float)a);
    }
    }
}

/* ------------------------------------------------------------------------ */
/* Top list                                                                   */
/* ------------------------------------------------------------------------ */
/* Candidates are grouped by their output vector (FNV-1a hash of the 4096
 * codes): one group = structures that give identical bits on this data. */
#define GROUP_DESCS 8
typedef struct group {
    int count;
    uint64_t hash;
    int64_t members;
    char desc[GROUP_DESCS][160];
} group;

typedef struct top {
    int n;
    group g[TOPN];
    int64_t n_eval;
    char (*full)[160]; /* every candidate reproducing all outputs */
    int64_t n_full, cap_full;
} top;

/* Lowest count that can still enter the list. */
static int g_floor = 0; /* --floor: counts below it are not recorded */
static int top_threshold(const top *t) {
    int thr = t->n < TOPN ? 0 : t->g[t->n - 1].count;
    return thr > g_floor ? thr : g_floor;
}

static void top_add(top *t, int count, uint64_t hash, const char *desc) {
    if (count == NOUT) {
        if (t->n_full == t->cap_full) {
            t->cap_full = t->cap_full ? 2 * t->cap_full : 256;
            t->full = realloc(t->full, (size_t)t->cap_full * sizeof *t->full);
        }
        snprintf(t->full[t->n_full++], 160, "%s", desc);
    }
    for (int i = 0; i < t->n; i++)
        if (t->g[i].hash == hash && t->g[i].count == count) {
            if (t->g[i].members < GROUP_DESCS)
                snprintf(t->g[i].desc[t->g[i].members], 160, "%s", desc);
            t->g[i].members++;
            return;
        }
    if (t->n == TOPN && count <= t->g[t->n - 1].count) return;
    int i = t->n < TOPN ? t->n++ : TOPN - 1;
    while (i > 0 && t->g[i - 1].count < count) t->g[i] = t->g[i - 1], i--;
    t->g[i].count = count, t->g[i].hash = hash, t->g[i].members = 1;
    snprintf(t->g[i].desc[0], 160, "%s", desc);
}

/* ------------------------------------------------------------------------ */
/* Partition enumeration                                                      */
/* ------------------------------------------------------------------------ */
typedef struct search {
    const shape *s;
    const cfg *c;
    const table *t;
    top *tp;
    int S;
    int b[MAXS + 1];
    int coarser; /* units of this grid per unit of the coarser grid already searched, 0 none */
} search;

static void eval_partition(search *q) {
    const uint32_t *col[MAXS];
    for (int i = 0; i < q->S; i++)
        col[i] = q->t->r + (size_t)ridx(q->t->nU, q->b[i], q->b[i + 1]) * NOUT;
    int nred = q->S <= 2 ? 1 : R_COUNT;
    for (int how = 0; how < nred; how++) {
        int thr = top_threshold(q->tp);
        int maxmiss = NOUT - thr; /* more misses than this cannot enter the list */
        int miss = 0, o;
        uint32_t v[MAXS];
        uint64_t h = 1469598103934665603ull;
        /* screening: the first SCREEN outputs (row 0 and 1) must not fall clearly
           below the list's threshold (slack SCREEN_SLACK, ~3 sigma); heuristic */
        int thr_s = thr * SCREEN / NOUT - SCREEN_SLACK;
        for (o = 0; o < NOUT && miss <= maxmiss; o++) {
            if (o == SCREEN && SCREEN - miss < thr_s) break;
            for (int i = 0; i < q->S; i++) v[i] = col[i][o];
            uint32_t r = reduce(how, v, q->S);
            miss += r != q->s->C[o];
            h = (h ^ r) * 1099511628211ull;
        }
        if (o < NOUT) miss = NOUT + 1;
        q->tp->n_eval++;
        if (miss > maxmiss) continue;
        char d[200], bs[80] = "";
        int len = 0;
        for (int i = 0; i <= q->S; i++)
            len += snprintf(bs + len, sizeof bs - len, "%s%d", i ? "," : "",
                            q->b[i] * q->t->U * q->c->m->k);
        char pr[24];
        if (q->c->P) snprintf(pr, sizeof pr, "P=%d", q->c->P * q->c->m->k);
        else snprintf(pr, sizeof pr, "P=none");
        snprintf(d, sizeof d, "%s %s %s S=%d [%s] %s", q->c->mname,
                 q->c->order ? "desc" : "asc", pr, q->S, bs, q->S == 1 ? "-" : k_rname[how]);
        top_add(q->tp, NOUT - miss, h, d);
    }
}

static void enum_parts(search *q, int i) {
    if (i == q->S) {
        if (q->coarser) { /* done already on the coarser grid? */
            int on = 1;
            for (int j = 1; j < q->S; j++) on &= q->b[j] % q->coarser == 0;
            if (on) return;
        }
        eval_partition(q);
        return;
    }
    int lo = q->b[i - 1] + 1, hi = q->t->nU - (q->S - i);
    for (int v = lo; v <= hi; v++) q->b[i] = v, enum_parts(q, i + 1);
}

static double binom(int n, int k) {
    double r = 1;
    for (int i = 1; i <= k; i++) r = r * (n - k + i) / i;
    return r;
}

/* ------------------------------------------------------------------------ */
/* Baselines                                                                  */
/* ------------------------------------------------------------------------ */
static void baselines(const shape *s, top *tp) {
    int K = s->K;
    fp4emu_model ex;
    fp4emu_model_parse("sm90-hgmma-f16", &ex);
    ex.k = ex.block = K, ex.F = FP4EMU_F_EXACT, ex.out_bits = 23, ex.out_round = FP4_RNE;
    ex.min_exp_limit = FP4EMU_NO_EXP_LIMIT;
    int n_exact = 0, n_fma = 0, n_muladd = 0, n_fma_rev = 0;
    emu_term *scratch = malloc((size_t)(K + 1) * sizeof(emu_term));
    for (int o = 0; o < NOUT; o++) {
        int i = o / DIM, j = o % DIM;
        emu_dotops x = dotops(s, &ex, i, j);
        x.fa = x.fb = NULL;
        uint64_t d = emu_instr(&ex, &x, 0, K, 0, scratch);
        n_exact += (uint32_t)d == s->C[o];
        float acc = 0, acc2 = 0, acc3 = 0;
        for (int k = 0; k < K; k++) {
            int off = i * K + k, offb = j * K + k;
            float a = (float)fp4_to_f64(s->fmt, s->fmt == FP4_FMT_E4M3
                                                    ? ((const uint8_t *)s->A)[off]
                                                    : ((const uint16_t *)s->A)[off]);
            float b = (float)fp4_to_f64(s->fmt, s->fmt == FP4_FMT_E4M3
                                                    ? ((const uint8_t *)s->B)[offb]
                                                    : ((const uint16_t *)s->B)[offb]);
            acc = __builtin_fmaf(a, b, acc);
            volatile float p = a * b;
            acc2 = acc2 + p;
        }
        for (int k = K - 1; k >= 0; k--) {
            int off = i * K + k, offb = j * K + k;
            float a = (float)fp4_to_f64(s->fmt, s->fmt == FP4_FMT_E4M3
                                                    ? ((const uint8_t *)s->A)[off]
                                                    : ((const uint16_t *)s->A)[off]);
            float b = (float)fp4_to_f64(s->fmt, s->fmt == FP4_FMT_E4M3
                                                    ? ((const uint8_t *)s->B)[offb]
                                                    : ((const uint16_t *)s->B)[offb]);
            acc3 = __builtin_fmaf(a, b, acc3);
        }
        n_fma += bits32(acc) == s->C[o];
        n_muladd += bits32(acc2) == s->C[o];
        n_fma_rev += bits32(acc3) == s->C[o];
    }
    free(scratch);
    top_add(tp, n_exact, 1, "baseline exact->RN32");
    top_add(tp, n_fma, 2, "baseline sequential FP32 FMA asc");
    top_add(tp, n_fma_rev, 3, "baseline sequential FP32 FMA desc");
    top_add(tp, n_muladd, 4, "baseline sequential FP32 mul+add asc");
    printf("  baselines: exact->RN %d, seq FMA asc %d, seq FMA desc %d, seq mul+add %d\n",
           n_exact, n_fma, n_fma_rev, n_muladd);
}

/* How much this shape can tell reductions apart: the K range cut into blocks
 * of U steps, each an ascending chain from +0 without promotion; for every
 * output, are all FP32 adds of a sequential reduction exact, and on how many
 * outputs does each reduction differ from the sequential one and match C? */
static void reduce_report(const shape *s, const cfg *c, int U) {
    table t = {0};
    table_fill(s, c, U, &t);
    int S = t.nU;
    if (S > MAXS) {
        printf("  reduce-report: %d blocks > %d\n", S, MAXS);
        free(t.r);
        return;
    }
    int n_exact_adds = 0, differ[R_COUNT] = {0}, match[R_COUNT] = {0};
    for (int o = 0; o < NOUT; o++) {
        uint32_t v[MAXS];
        for (int i = 0; i < S; i++) v[i] = t.r[(size_t)ridx(S, i, i + 1) * NOUT + o];
        __float128 ex = f32(v[0]);
        int exact = 1;
        uint32_t a = v[0];
        for (int i = 1; i < S; i++) {
            a = add32(a, v[i]);
            ex += f32(v[i]);
            exact &= (__float128)f32(a) == ex;
        }
        n_exact_adds += exact;
        uint32_t r0 = reduce(R_SEQ, v, S);
        for (int h = 0; h < R_COUNT; h++) {
            uint32_t r = reduce(h, v, S);
            differ[h] += r != r0;
            match[h] += r == s->C[o];
        }
    }
    printf("  reduce-report %s %s, %d blocks of %d: sequential FP32 sum exact at every step "
           "on %d/4096 outputs\n",
           s->name, c->mname, S, U * c->m->k, n_exact_adds);
    for (int h = 0; h < R_COUNT; h++)
        printf("    %-9s differs from seq on %4d outputs, matches C on %4d\n", k_rname[h],
               differ[h], match[h]);
    free(t.r);
}

/* The found structures through the public API only (fp4emu_dot), as a
 * check independent of this file's chain code: FP8 with promote_every = 128,
 * F16 as one chain without promotion. Returns the number of mismatches. */
static int verify_public(fp4_st_file *f) {
    static const int Ks[5] = {32, 64, 128, 256, 1024};
    int bad = 0;
    for (int ti = 0; ti < 2; ti++)
        for (int ki = 0; ki < 5; ki++) {
            int K = Ks[ki];
            const char *t = ti == 0 ? "fp8" : "f16";
            fp4emu_model m;
            fp4emu_model_parse(ti == 0 ? "sm90-qgmma-e4m3-f32" : "sm90-hgmma-f16", &m);
            fp4_format fmt = ti == 0 ? FP4_FMT_E4M3 : FP4_FMT_F16;
            fp4emu_input in = fp4emu_input_plain(fmt, fmt);
            fp4emu_chain ch = {ti == 0 ? 128 : 0, false, NULL};
            char n[64];
            snprintf(n, sizeof n, "%s.K%d.A", t, K);
            const fp4_st_tensor *ta = fp4_st_find(f, n);
            snprintf(n, sizeof n, "%s.K%d.B", t, K);
            const fp4_st_tensor *tb = fp4_st_find(f, n);
            snprintf(n, sizeof n, "%s.K%d.C", t, K);
            const fp4_st_tensor *tc = fp4_st_find(f, n);
            if (!ta || !tb || !tc) return fprintf(stderr, "missing %s.K%d\n", t, K), -1;
            int eb = ti == 0 ? 1 : 2, hit = 0;
            for (int o = 0; o < NOUT; o++) {
                uint64_t d;
                const uint8_t *a = (const uint8_t *)ta->data + (size_t)(o / DIM) * K * eb;
                const uint8_t *b = (const uint8_t *)tb->data + (size_t)(o % DIM) * K * eb;
                if (fp4emu_dot(&m, &in, K, a, b, NULL, NULL, 0, &ch, NULL, &d))
                    return fprintf(stderr, "%s\n", fp4_last_error()), -1;
                hit += (uint32_t)d == ((const uint32_t *)tc->data)[o];
            }
            printf("verify %s.K%-4d %s promote_every=%lld: %d/4096\n", t, K,
                   ti == 0 ? "sm90-qgmma-e4m3-f32" : "sm90-hgmma-f16",
                   (long long)ch.promote_every, hit);
            bad += NOUT - hit;
        }
    return bad;
}

/* ------------------------------------------------------------------------ */
/* Driver                                                                     */
/* ------------------------------------------------------------------------ */
static void usage(void) {
    fprintf(stderr,
            "usage: cublas_search [--shape fp8.K256] [--model SPEC] [--smax N] [--units LIST]\n"
            "                     [--cap N] [--top N] [--file PATH]\n"
            "  --model SPEC  emu model string (default: sm90-qgmma-e4m3-f32 for fp8,\n"
            "                sm90-hgmma-f16 for f16); repeatable\n"
            "  --units LIST  boundary grids in elements, e.g. 32,64,128 (default k,64,128,256)\n"
            "  --smax N      largest split count (default 8)\n"
            "  --cap N       skip (S, unit) with more partitions than N (default 200000)\n"
            "  --pmax N      largest promotion interval in elements (default 1024)\n"
            "  --top N       result groups printed (default 12); --show N members each (6)\n"
            "  --all-full    list every candidate that reproduces all 4096 outputs\n"
            "  --verify      check the found structures with the public fp4emu_dot only\n"
            "  --floor N     record only candidates matching at least N outputs (faster)\n"
            "  --reduce-report U  only: cut K into blocks of U elements (ascending chains,\n"
            "                no promotion) and report how the reductions differ\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *only = NULL, *units_arg = NULL;
    const char *models[8];
    int nmodels = 0, rr_unit = 0, smax = 8, ntop = 12, pmax = 1024, nshow = 6, all_full = 0, verify = 0;
    double cap = 2e5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--shape") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--model") && i + 1 < argc && nmodels < 8)
            models[nmodels++] = argv[++i];
        else if (!strcmp(argv[i], "--smax") && i + 1 < argc) smax = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--units") && i + 1 < argc) units_arg = argv[++i];
        else if (!strcmp(argv[i], "--cap") && i + 1 < argc) cap = atof(argv[++i]);
        else if (!strcmp(argv[i], "--top") && i + 1 < argc) ntop = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--pmax") && i + 1 < argc) pmax = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--show") && i + 1 < argc) nshow = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--all-full")) all_full = 1;
        else if (!strcmp(argv[i], "--verify")) verify = 1;
        else if (!strcmp(argv[i], "--floor") && i + 1 < argc) g_floor = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reduce-report") && i + 1 < argc) rr_unit = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--file") && i + 1 < argc) g_path = argv[++i];
        else usage();
    }
    if (smax < 1 || smax > MAXS) smax = MAXS;
    selfcheck_add();
    fp4_st_file *f;
    if (fp4_st_open(g_path, &f) != FP4_ST_OK) {
        fprintf(stderr, "cannot open %s: %s\n", g_path, fp4_last_error());
        return 1;
    }
    if (verify) {
        int bad = verify_public(f);
        fp4_st_close(f);
        return bad == 0 ? 0 : 1;
    }
    static const char *types[2] = {"fp8", "f16"};
    static const int Ks[5] = {32, 64, 128, 256, 1024};
    for (int ti = 0; ti < 2; ti++)
        for (int ki = 0; ki < 5; ki++) {
            char nm[32];
            snprintf(nm, sizeof nm, "%s.K%d", types[ti], Ks[ki]);
            if (only && strcmp(only, nm)) continue;
            const char *ms[8];
            int nm_ = nmodels;
            for (int i = 0; i < nmodels; i++) ms[i] = models[i];
            if (!nm_) ms[nm_++] = ti == 0 ? "sm90-qgmma-e4m3-f32" : "sm90-hgmma-f16";
            top tp = {0};
            printf("== %s\n", nm);
            for (int mi = 0; mi < nm_; mi++) {
                fp4emu_model m;
                if (fp4emu_model_parse(ms[mi], &m)) {
                    fprintf(stderr, "bad model %s: %s\n", ms[mi], fp4_last_error());
                    return 1;
                }
                shape s;
                if (load_shape(f, types[ti], Ks[ki], &m, &s)) return 1;
                if (rr_unit > 0) {
                    cfg c = {&m, ms[mi], 0, 0};
                    if (rr_unit % m.k == 0 && s.K % rr_unit == 0)
                        reduce_report(&s, &c, rr_unit / m.k);
                    free(s.opa), free(s.opb), free(s.fa), free(s.fb);
                    continue;
                }
                if (mi == 0) baselines(&s, &tp);
                int nsteps = s.K / m.k;
                int units[8], nu = 0;
                if (units_arg) {
                    char buf[128];
                    snprintf(buf, sizeof buf, "%s", units_arg);
                    for (char *p = strtok(buf, ","); p && nu < 8; p = strtok(NULL, ","))
                        if (atoi(p) % m.k == 0 && atoi(p) <= s.K) units[nu++] = atoi(p) / m.k;
                } else {
                    int def[4] = {256, 128, 64, m.k};
                    for (int i = 0; i < 4; i++)
                        if (def[i] % m.k == 0 && def[i] <= s.K &&
                            (nu == 0 || def[i] / m.k != units[nu - 1]))
                            units[nu++] = def[i] / m.k;
                }
                /* promotion intervals: none, and powers of two steps below K */
                int Ps[16], np = 0;
                Ps[np++] = 0;
                for (int p = 1; p < nsteps && p * m.k <= pmax; p *= 2) Ps[np++] = p;
                table t = {0};
                for (int pi = 0; pi < np; pi++)
                    for (int order = 0; order < 2; order++) {
                        cfg c = {&m, ms[mi], order, Ps[pi]};
                        for (int ui = 0; ui < nu; ui++) {
                            table_fill(&s, &c, units[ui], &t);
                            fprintf(stderr, "  [%s %s P=%d U=%d]\n", ms[mi],
                                    order ? "desc" : "asc", Ps[pi] * m.k, units[ui] * m.k);
                            search q = {&s, &c, &t, &tp, 0, {0}, 0};
                            for (int S = 1; S <= smax && S <= t.nU; S++) {
                                /* grids run coarsest first; a finer grid skips the
                                   partitions the coarser one already had, unless that
                                   S was capped there */
                                q.coarser = 0;
                                if (ui > 0 && units[ui - 1] % units[ui] == 0 &&
                                    binom(s.K / m.k / units[ui - 1] - 1, S - 1) <= cap &&
                                    S <= s.K / m.k / units[ui - 1])
                                    q.coarser = units[ui - 1] / units[ui];
                                if (S == 1 && ui > 0) continue;
                                if (binom(t.nU - 1, S - 1) > cap) {
                                    printf("  skip %s P=%d %s U=%d S=%d (%.0f partitions)\n",
                                           ms[mi], Ps[pi] * m.k, order ? "desc" : "asc",
                                           units[ui] * m.k, S, binom(t.nU - 1, S - 1));
                                    continue;
                                }
                                q.S = S, q.b[0] = 0, q.b[S] = t.nU;
                                enum_parts(&q, 1);
                            }
                        }
                    }
                free(t.r);
                free(s.opa), free(s.opb), free(s.fa), free(s.fb);
            }
            printf("  evaluated %lld candidates; %lld reproduce all 4096 outputs\n",
                   (long long)tp.n_eval, (long long)tp.n_full);
            for (int i = 0; i < tp.n && i < ntop; i++) {
                printf("  %4d/4096  group of %lld:\n", tp.g[i].count, (long long)tp.g[i].members);
                for (int j = 0; j < tp.g[i].members && j < GROUP_DESCS && j < nshow; j++)
                    printf("             %s\n", tp.g[i].desc[j]);
                if (tp.g[i].members > nshow && nshow < GROUP_DESCS)
                    printf("             ...\n");
            }
            if (all_full)
                for (int64_t i = 0; i < tp.n_full; i++) printf("  FULL %s\n", tp.full[i]);
            free(tp.full);
            fflush(stdout);
        }
    fp4_st_close(f);
    return 0;
}
