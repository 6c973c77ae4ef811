/* gemm_bs.c - exact GEMM for block-scaled formats other than the NVFP4 fast
 * path: MXFP4, MXFP8 (E4M3/E5M2 with UE8M0 per 32, OCP MX v1.0) and
 * DeepSeek-style FP8 with FP32 scales per 1x128 / 128x128 block (the
 * weight_scale_inv layout, deepseek.md §3). NVFP4 also runs here, which gives
 * tests a second, independent route to the NVFP4 oracle.
 *
 * Exactness: every element is an integer in a fixed unit per kind (E2M1 in
 * 2^-1, E4M3 in 2^-9, E5M2 in 2^-16); a block sum of products is an exact
 * __int128; every scale is sig * 2^exp with sig < 2^24. One block's term is
 * S * sigA * sigB * 2^(2u + expA + expB) (< 2^128) and goes into a wide
 * fixed-point accumulator (unit 2^WIDE_EXP, WIDE_LIMBS 64-bit words, positive
 * and negative parts kept apart), so the sum is exact whatever the scales.
 * The epilogue is gemm.c's (one rounding, or the CUTLASS FP32 order).
 */
#include "fp4ref.h"
#include "gemm_internal.h"

#include <gmp.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Smallest term exponent: 2*(-16) (E5M2 unit squared) + 2*(-149) (FP32 scale
 * sig*2^exp with exp >= -149) = -330; largest top bit: 2*127 (UE8M0) + 2*(-1)
 * + 128 bits of term + 40 bits of K growth < 430. */
enum { WIDE_EXP = -384, WIDE_LIMBS = 13 };

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
/* Decoding elements and scales to integers                                  */
/* ------------------------------------------------------------------------ */

typedef struct kinfo {
    int block;       /* K elements per scale */
    int unit;        /* element unit exponent */
    bool packed_fp4; /* E2M1 two per byte */
} kinfo;

static const kinfo k_kinds[FP4_BS_COUNT] = {
    [FP4_BS_NVFP4] = {16, -1, true},       [FP4_BS_MXFP4] = {32, -1, true},
    [FP4_BS_MXFP8_E4M3] = {32, -9, false}, [FP4_BS_MXFP8_E5M2] = {32, -16, false},
    [FP4_BS_FP8_BLOCK128] = {128, -9, false},
};

int fp4_bs_block(fp4_bs_kind kind) {
    return ((unsigned)kind < FP4_BS_COUNT) ? k_kinds[kind].block : 0;
}

/* Element k of row r as an integer in the kind's unit; false if NaN/Inf
 * (then *special holds it as a double). */
static bool elem_int(const fp4_bs_matrix *X, int64_t r, int64_t k, int64_t *out, double *special) {
    const kinfo *ki = &k_kinds[X->kind];
    fp4_format f;
    uint64_t code;
    if (ki->packed_fp4) {
        uint8_t b = X->codes[r * (X->k / 2) + k / 2];
        code = (k & 1) ? b >> 4 : b & 0xF;
        f = FP4_FMT_E2M1;
    } else {
        code = X->codes[r * X->k + k];
        f = X->kind == FP4_BS_MXFP8_E5M2 ? FP4_FMT_E5M2 : FP4_FMT_E4M3;
    }
    fp4_value v = fp4_decode(f, code);
    if (v.cls == FP4_CLASS_NAN || v.cls == FP4_CLASS_INF) {
        *special = fp4_value_to_f64(&v);
        return false;
    }
    int64_t m = v.cls == FP4_CLASS_ZERO ? 0 : (int64_t)v.sig << (v.exp - ki->unit);
    *out = v.sign ? -m : m;
    return true;
}

/* Scale of (row r, block g) as sig * 2^exp; false if NaN/Inf. */
static bool scale_split(const fp4_bs_matrix *X, int64_t r, int64_t g, int64_t *sig, int *exp,
                        double *special) {
    int64_t nb = X->k / k_kinds[X->kind].block;
    fp4_value v;
    if (X->kind == FP4_BS_FP8_BLOCK128) {
        float s = ((const float *)X->scales)[(r / X->scale_rows) * nb + g];
        v = fp4_value_from_f32(s);
    } else {
        uint8_t b = ((const uint8_t *)X->scales)[r * nb + g];
        v = fp4_decode(X->kind == FP4_BS_NVFP4 ? FP4_FMT_UE4M3 : FP4_FMT_UE8M0, b);
    }
    if (v.cls == FP4_CLASS_NAN || v.cls == FP4_CLASS_INF) {
        *special = fp4_value_to_f64(&v);
        return false;
    }
    *sig = v.cls == FP4_CLASS_ZERO ? 0 : (v.sign ? -(int64_t)v.sig : (int64_t)v.sig);
    *exp = v.cls == FP4_CLASS_ZERO ? 0 : v.exp;
    return true;
}

/* Decoded operand: integer elements, split scales, rows with a NaN/Inf. */
typedef struct bsprep {
    int64_t rows, k, nb;
    int64_t *v;
    int64_t *ssig;
    int *sexp;
    uint8_t *special;
} bsprep;

static void bsprep_free(bsprep *p) {
    free(p->v), free(p->ssig), free(p->sexp), free(p->special);
}

static int bsprep_make(bsprep *p, const fp4_bs_matrix *X) {
    p->rows = X->rows, p->k = X->k, p->nb = X->k / k_kinds[X->kind].block;
    size_t ne = (size_t)(X->rows * X->k) + 1, ns = (size_t)(X->rows * p->nb) + 1;
    p->v = malloc(ne * sizeof *p->v);
    p->ssig = malloc(ns * sizeof *p->ssig);
    p->sexp = malloc(ns * sizeof *p->sexp);
    p->special = calloc((size_t)X->rows + 1, 1);
    if (!p->v || !p->ssig || !p->sexp || !p->special) {
        bsprep_free(p);
        return fp4_fail("gemm: out of memory preparing a %lld x %lld operand", (long long)X->rows,
                        (long long)X->k);
    }
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < X->rows; r++) {
        double sp;
        for (int64_t k = 0; k < X->k; k++)
            if (!elem_int(X, r, k, &p->v[r * X->k + k], &sp)) p->special[r] = 1, p->v[r * X->k + k] = 0;
        for (int64_t g = 0; g < p->nb; g++)
            if (!scale_split(X, r, g, &p->ssig[r * p->nb + g], &p->sexp[r * p->nb + g], &sp))
                p->special[r] = 1, p->ssig[r * p->nb + g] = 0;
    }
    return 0;
}

/* Value of an element times its scale as a double (for NaN/Inf outputs only,
 * where IEEE rules decide the result and finite parts cannot overflow). */
static double elem_scaled_f64(const fp4_bs_matrix *X, int64_t r, int64_t k) {
    int64_t e, sig;
    int ex;
    double se = 0, ss = 0;
    int bs = k_kinds[X->kind].block;
    double ev = elem_int(X, r, k, &e, &se) ? ldexp((double)e, k_kinds[X->kind].unit) : se;
    double sv = scale_split(X, r, k / bs, &sig, &ex, &ss) ? ldexp((double)sig, ex) : ss;
    return ev * sv;
}

/* ------------------------------------------------------------------------ */
/* Driver                                                                    */
/* ------------------------------------------------------------------------ */

static int check_bs(const fp4_bs_matrix *A, const fp4_bs_matrix *B, const float *C, const void *D,
                    const fp4_gemm_opts *o) {
    if (!A || !B || !D || !o) return fp4_fail("gemm: null argument");
    if ((unsigned)A->kind >= FP4_BS_COUNT || A->kind != B->kind)
        return fp4_fail("gemm: A and B must be of the same block-scaled kind");
    int bs = k_kinds[A->kind].block;
    if (A->rows < 0 || B->rows < 0 || A->k <= 0 || A->k != B->k)
        return fp4_fail("gemm: bad shapes A [%lld, %lld], B [%lld, %lld]", (long long)A->rows,
                        (long long)A->k, (long long)B->rows, (long long)B->k);
    if (A->k % bs)
        return fp4_fail("gemm: K = %lld is not a multiple of the block size %d", (long long)A->k, bs);
    if ((A->rows && (!A->codes || !A->scales)) || (B->rows && (!B->codes || !B->scales)))
        return fp4_fail("gemm: null codes or scales");
    if (A->kind == FP4_BS_FP8_BLOCK128 &&
        ((A->scale_rows != 1 && A->scale_rows != 128) || (B->scale_rows != 1 && B->scale_rows != 128)))
        return fp4_fail("gemm: FP8 block scales need scale_rows 1 (1x128) or 128 (128x128)");
    if (o->acc != FP4_ACC_EXACT)
        return fp4_fail("gemm: only the exact accumulation is implemented for this kind");
    if (o->out != FP4_FMT_F32 && o->out != FP4_FMT_F16 && o->out != FP4_FMT_BF16)
        return fp4_fail("gemm: output format must be f32, f16 or bf16");
    if (o->beta != 0.0f && !C) return fp4_fail("gemm: beta != 0 but C is null");
    if (A->kind == FP4_BS_NVFP4 && (fp4i_gemm_check_ue4m3(A->scales, A->rows, A->k, "A") ||
                                    fp4i_gemm_check_ue4m3(B->scales, B->rows, B->k, "B")))
        return -1;
    return 0;
}

/* Exact accumulation of one output into w. */
static void accumulate(const bsprep *a, const bsprep *b, int unit, int bs, int64_t m, int64_t n,
                       wide *w) {
    memset(w, 0, sizeof *w);
    const int64_t *av = a->v + m * a->k, *bv = b->v + n * b->k;
    for (int64_t g = 0; g < a->nb; g++) {
        __int128 S = 0;
        for (int i = 0; i < bs; i++) S += (__int128)av[g * bs + i] * bv[g * bs + i];
        __int128 ss = (__int128)a->ssig[m * a->nb + g] * b->ssig[n * b->nb + g];
        if (S == 0 || ss == 0) continue;
        /* |S| < 2^75 (E5M2, 32 products < 2^64 each); |ss| < 2^48: the product
         * can exceed 2^127 only for FP32-scaled E5M2, which no kind uses. */
        wide_add(w, S * ss, 2 * unit + a->sexp[m * a->nb + g] + b->sexp[n * b->nb + g]);
    }
}

static uint64_t finish_wide(wide *w, float gA, float gB, float Cv, const fp4_gemm_opts *o) {
    mpz_t p, q;
    mpz_init(p), mpz_init(q);
    mpz_import(p, WIDE_LIMBS, -1, sizeof w->pos[0], 0, 0, w->pos);
    mpz_import(q, WIDE_LIMBS, -1, sizeof w->neg[0], 0, 0, w->neg);
    mpz_sub(p, p, q);
    uint64_t code = fp4i_gemm_finish_z(p, WIDE_EXP, gA, gB, Cv, o);
    mpz_clear(p), mpz_clear(q);
    return code;
}

int fp4_gemm_block_scaled(const fp4_bs_matrix *A, const fp4_bs_matrix *B, const float *C,
                          void *D, const fp4_gemm_opts *o) {
    if (check_bs(A, B, C, D, o)) return -1;
    bsprep pa, pb;
    if (bsprep_make(&pa, A)) return -1;
    if (bsprep_make(&pb, B)) {
        bsprep_free(&pa);
        return -1;
    }
    const int unit = k_kinds[A->kind].unit, bs = k_kinds[A->kind].block;
    const int64_t M = A->rows, N = B->rows;
#pragma omp parallel for schedule(dynamic, 16)
    for (int64_t t = 0; t < M * N; t++) {
        int64_t m = t / N, n = t % N;
        float Cv = C ? C[t] : 0.0f;
        uint64_t code;
        if (pa.special[m] || pb.special[n]) {
            double acc = 0; /* NaN/Inf decide the result; IEEE double order is fine */
            for (int64_t k = 0; k < A->k; k++)
                acc += elem_scaled_f64(A, m, k) * elem_scaled_f64(B, n, k);
            if (isfinite(acc)) { /* e.g. Inf scale on zero elements: Inf*0 = NaN */
                acc = NAN;
            }
            code = fp4i_gemm_finish_special(acc, A->global_scale, B->global_scale, Cv, o);
        } else {
            wide w;
            accumulate(&pa, &pb, unit, bs, m, n, &w);
            code = finish_wide(&w, A->global_scale, B->global_scale, Cv, o);
        }
        fp4i_gemm_store(D, o->out, t, code);
    }
    bsprep_free(&pa);
    bsprep_free(&pb);
    return 0;
}
