/* gemm_bs.c - the exact GEMM for every kind but NVFP4 x NVFP4 (which has its
 * fast path in gemm.c): MXFP4/6/8, DeepSeek FP8 1x128 / 128x128 blocks,
 * plain FP8/FP16/BF16/FP32, and mixed pairs. NVFP4 also runs here when
 * mixed with another kind, which gives tests a second, independent route to
 * the NVFP4 oracle.
 *
 * Exactness: elements of at most 16 bits are integers in a fixed unit per
 * format (E2M1 2^-1, E2M3 2^-3, E3M2 2^-4, E4M3 2^-9, E5M2 2^-16, F16 2^-24);
 * a block sum of their products is an exact __int128; every scale is
 * sig * 2^exp with sig < 2^24. One block's term S * sigA * sigB * 2^e goes
 * into a wide fixed-point accumulator (unit 2^WIDE_EXP, WIDE_LIMBS 64-bit
 * words, positive and negative parts kept apart), so the sum is exact
 * whatever the scales. BF16 and FP32 elements (no fixed unit fits 64 bits)
 * go product by product. The epilogue is epilogue.c's.
 */
#include "fp4ref.h"
#include "gemm_internal.h"

#include <gmp.h>
#include <stdlib.h>
#include <string.h>

/* Term exponents: an operand is elem * scale with elem >= 2^-149 (F32
 * subnormal) and scale >= 2^-127 (UE8M0), so a product is >= 2^-552; its
 * magnitude is below 2^255 * 2^255 and K adds < 40 bits: [-576, 576). F32
 * scales are only allowed on <= 8-bit elements (fp4_tensor_check). */
enum { WIDE_EXP = -576, WIDE_LIMBS = 18 };

typedef struct wide {
    uint64_t pos[WIDE_LIMBS], neg[WIDE_LIMBS];
} wide;

/* w += v * 2^shift (v < 2^128, 0 <= shift, shift + 128 <= 64*WIDE_LIMBS). */
static void wide_add_mag(uint64_t *w, unsigned __int128 v, int shift) {
    int word = shift / 64, b = shift % 64;
    uint64_t lo = (uint64_t)v, hi = (uint64_t)(v >> 64);
    uint64_t part[3] = {lo << b, b ? (lo >> (64 - b)) | (hi << b) : hi, b ? hi >> (64 - b) : 0};
    unsigned carry = 0;
    for (int i = 0; word + i < WIDE_LIMBS; i++) {
        uint64_t add = i < 3 ? part[i] : 0;
        if (i >= 3 && !carry) break;
        uint64_t s = w[word + i] + add;
        unsigned c1 = s < add;
        uint64_t s2 = s + carry;
        carry = c1 | (s2 < s);
        w[word + i] = s2;
    }
}

static void wide_add(wide *w, __int128 t, int exp) {
    if (t == 0) return;
    unsigned __int128 m = t < 0 ? (unsigned __int128)0 - (unsigned __int128)t : (unsigned __int128)t;
    wide_add_mag(t < 0 ? w->neg : w->pos, m, exp - WIDE_EXP);
}

/* ------------------------------------------------------------------------ */
/* Decoded operands                                                          */
/* ------------------------------------------------------------------------ */

/* Unit exponent of a format whose finite values are all integers times it
 * and fit 41 bits; 0 when there is none (BF16, F32: products go one by one). */
static int elem_unit(fp4_format f) {
    switch (f) {
    case FP4_FMT_E2M1: return -1;
    case FP4_FMT_E2M3: return -3;
    case FP4_FMT_E3M2: return -4;
    case FP4_FMT_E4M3: return -9;
    case FP4_FMT_E5M2: return -16;
    case FP4_FMT_F16: return -24;
    default: return 0;
    }
}

typedef struct wprep {
    int64_t r0, rows, k, sc; /* rows [r0, r0 + rows); sc scale columns per scale row */
    int unit;                /* elem_unit (0: elements as sig * 2^exp) */
    int64_t *v;              /* [rows][k]: integer in `unit`, or the signed significand */
    int16_t *vexp;           /* [rows][k]: exponents when unit == 0 */
    int64_t *ssig;           /* [rows][sc] signed scale significands (1 when unscaled) */
    int16_t *sexp;           /* [rows][sc] */
    uint8_t *special;        /* [rows]: a NaN/Inf element or scale in the row */
} wprep;

static void wprep_free(wprep *p) {
    free(p->v), free(p->vexp), free(p->ssig), free(p->sexp), free(p->special);
    memset(p, 0, sizeof *p);
}

static bool finite_value(const fp4_value *v) {
    return v->cls == FP4_CLASS_ZERO || v->cls == FP4_CLASS_FINITE;
}

/* Decodes rows [r0, r1) of a linear-layout X. */
static int wprep_make(wprep *p, const fp4_tensor *X, int64_t r0, int64_t r1) {
    memset(p, 0, sizeof *p);
    p->r0 = r0, p->rows = r1 - r0, p->k = X->cols;
    p->sc = fp4_tensor_scaled(X) ? fp4_tensor_scale_cols(X) : 1;
    p->unit = elem_unit(X->elem);
    size_t ne = (size_t)(p->rows * p->k) + 1, ns = (size_t)(p->rows * p->sc) + 1;
    p->v = malloc(ne * sizeof *p->v);
    p->vexp = p->unit ? NULL : malloc(ne * sizeof *p->vexp);
    p->ssig = malloc(ns * sizeof *p->ssig);
    p->sexp = malloc(ns * sizeof *p->sexp);
    p->special = calloc((size_t)p->rows + 1, 1);
    if (!p->v || (!p->unit && !p->vexp) || !p->ssig || !p->sexp || !p->special) {
        wprep_free(p);
        return fp4_fail_kind(FP4_ERR_NOMEM, "gemm: out of memory preparing a %lld x %lld operand",
                             (long long)(r1 - r0), (long long)X->cols);
    }
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < p->rows; r++) {
        for (int64_t k = 0; k < p->k; k++) {
            fp4_value v = fp4_decode(X->elem, fp4_tensor_code(X, r0 + r, k));
            int64_t at = r * p->k + k;
            if (!finite_value(&v)) p->special[r] = 1;
            int64_t sig = finite_value(&v) && v.cls == FP4_CLASS_FINITE ? (int64_t)v.sig : 0;
            if (v.sign) sig = -sig;
            if (p->unit) {
                p->v[at] = sig ? sig * ((int64_t)1 << (v.exp - p->unit)) : 0;
            } else {
                p->v[at] = sig;
                p->vexp[at] = (int16_t)(sig ? v.exp : 0);
            }
        }
        for (int64_t g = 0; g < p->sc; g++) {
            int64_t at = r * p->sc + g;
            p->ssig[at] = 1, p->sexp[at] = 0;
            if (!fp4_tensor_scaled(X)) continue;
            uint64_t code = fp4_tensor_scale_code(X, r0 + r, g * X->block);
            fp4_value s = fp4_decode(X->scale_fmt, code);
            if (!finite_value(&s)) p->special[r] = 1;
            int64_t sig = s.cls == FP4_CLASS_FINITE ? (int64_t)s.sig : 0;
            p->ssig[at] = s.sign ? -sig : sig;
            p->sexp[at] = (int16_t)(sig ? s.exp : 0);
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Accumulation                                                              */
/* ------------------------------------------------------------------------ */

typedef struct wplan {
    int64_t blk;   /* common block length: both operands' scales are constant inside */
    int64_t bA, bB; /* each operand's own block (K when unscaled) */
    bool blocked;  /* integer block sums (both operands have a unit) */
} wplan;

static wplan plan_of(const fp4_tensor *A, const fp4_tensor *B, const wprep *pa, const wprep *pb) {
    wplan w;
    const int64_t K = A->cols;
    w.bA = fp4_tensor_scaled(A) ? A->block : K;
    w.bB = fp4_tensor_scaled(B) ? B->block : K;
    int64_t lo = w.bA < w.bB ? w.bA : w.bB, hi = w.bA < w.bB ? w.bB : w.bA;
    /* Chunks inside which both scales are constant: a divisor of the smaller
     * block, at most 128 products so S * sigA * sigB stays below 2^127
     * (F16: 2^80 per product; F32 scales come with <= 8-bit elements only). */
    w.blk = lo;
    while (w.blk > 64 && w.blk % 2 == 0) w.blk /= 2;
    w.blocked = pa->unit && pb->unit && hi % lo == 0 && w.blk <= 128;
    return w;
}

/* Exact dot of rows m (of pa) and n (of pb) into w. */
static void accumulate(const wprep *pa, const wprep *pb, const wplan *pl, int64_t m, int64_t n,
                       wide *w) {
    memset(w, 0, sizeof *w);
    const int64_t K = pa->k, *av = pa->v + m * K, *bv = pb->v + n * K;
    const int64_t *sa = pa->ssig + m * pa->sc, *sb = pb->ssig + n * pb->sc;
    const int16_t *ea = pa->sexp + m * pa->sc, *eb = pb->sexp + n * pb->sc;
    if (pl->blocked) {
        for (int64_t k0 = 0; k0 < K; k0 += pl->blk) {
            __int128 S = 0;
            for (int64_t k = k0; k < k0 + pl->blk && k < K; k++) S += (__int128)av[k] * bv[k];
            int64_t ga = k0 / pl->bA, gb = k0 / pl->bB;
            __int128 ss = (__int128)sa[ga] * sb[gb];
            if (S == 0 || ss == 0) continue;
            wide_add(w, S * ss, pa->unit + pb->unit + ea[ga] + eb[gb]);
        }
        return;
    }
    for (int64_t k = 0; k < K; k++) {
        int64_t ga = k / pl->bA, gb = k / pl->bB;
        __int128 t = (__int128)av[k] * bv[k];
        if (t == 0 || sa[ga] == 0 || sb[gb] == 0) continue;
        t *= (__int128)sa[ga] * sb[gb];
        int e = ea[ga] + eb[gb];
        e += pa->unit ? pa->unit : pa->vexp[m * K + k];
        e += pb->unit ? pb->unit : pb->vexp[n * K + k];
        wide_add(w, t, e);
    }
}

/* Exact class of an output whose rows hold NaN or Inf: every product is
 * NaN (a NaN factor, or 0 * Inf), +-Inf or finite; their sum by IEEE rules. */
static fp4_value special_sum(const fp4_tensor *A, const fp4_tensor *B, int64_t m, int64_t n) {
    bool nan = false, pinf = false, ninf = false;
    for (int64_t k = 0; k < A->cols && !nan; k++) {
        fp4_value a = fp4_tensor_block_value(A, m, k), b = fp4_tensor_block_value(B, n, k);
        if (a.cls == FP4_CLASS_NAN || b.cls == FP4_CLASS_NAN) nan = true;
        bool inf = a.cls == FP4_CLASS_INF || b.cls == FP4_CLASS_INF;
        bool zero = a.cls == FP4_CLASS_ZERO || b.cls == FP4_CLASS_ZERO;
        if (inf && zero) nan = true;
        else if (inf && (a.sign ^ b.sign)) ninf = true;
        else if (inf) pinf = true;
    }
    fp4_value v = {FP4_CLASS_NAN, 0, 0, 0};
    if (!nan && !(pinf && ninf)) v.cls = FP4_CLASS_INF, v.sign = ninf;
    return v;
}

static void mpz_of_wide(mpz_t z, const wide *w) {
    mpz_t q;
    mpz_init(q);
    mpz_import(z, WIDE_LIMBS, -1, sizeof w->pos[0], 0, 0, w->pos);
    mpz_import(q, WIDE_LIMBS, -1, sizeof w->neg[0], 0, 0, w->neg);
    mpz_sub(z, z, q);
    mpz_clear(q);
}

int fp4i_gemm_wide(const fp4_gemm_call *c, const fp4_tensor *A, const fp4_tensor *B) {
    int64_t m0, m1, n0, n1;
    fp4_gemm_call_window(c, &m0, &m1, &n0, &n1);
    wprep pa, pb;
    if (wprep_make(&pa, A, m0, m1)) return -1;
    if (wprep_make(&pb, B, n0, n1)) {
        wprep_free(&pa);
        return -1;
    }
    const wplan pl = plan_of(A, B, &pa, &pb);
    const int64_t N = B->rows, mm = m1 - m0, nn = n1 - n0;
#pragma omp parallel
    {
        mpz_t z;
        mpz_init(z);
        wide w;
#pragma omp for schedule(dynamic, 16)
        for (int64_t t = 0; t < mm * nn; t++) {
            int64_t m = t / nn, n = t % nn, gm = m0 + m, gn = n0 + n;
            float cv = c->C ? c->C[gm * N + gn] : 0.0f;
            uint64_t code;
            if (pa.special[m] || pb.special[n]) {
                fp4_value s = special_sum(A, B, gm, gn);
                code = fp4i_gemm_finish(c, z, 0, &s, cv);
            } else {
                accumulate(&pa, &pb, &pl, m, n, &w);
                mpz_of_wide(z, &w);
                code = fp4i_gemm_finish(c, z, WIDE_EXP, NULL, cv);
            }
            fp4_gemm_store(c->D, c->out, gm * N + gn, code);
        }
        mpz_clear(z);
    }
    wprep_free(&pa);
    wprep_free(&pb);
    return 0;
}
