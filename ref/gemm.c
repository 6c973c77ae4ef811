/* gemm.c - exact NVFP4 GEMM oracle and two common non-exact references.
 *
 * Exactness (numerics.md §8): 2*E2M1 is an integer in [-12, 12], so a
 * 16-element block sum S = sum (2a)(2b) is an integer with |S| <= 2304 < 2^12.
 * A UE4M3 scale is sig * 2^ex with integer sig <= 15 and ex in [-9, 5]
 * (subnormal m*2^-9, normal (8+m)*2^(e-10)). One block contributes
 * S * sigA * sigB * 2^(exA + exB - 2), an integer below 2^19 times a power of
 * two 2^-20 ... 2^8, so in units of 2^-20 it is an integer below 2^47.
 * An int64 accumulator therefore holds 2^15 blocks safely; we flush it into
 * an __int128 every 2^15 blocks, which covers any K.
 *
 * Layout for speed: A is decoded to int8 (2*E2M1) row-major; B is decoded
 * and transposed to [K][N] so the inner loop runs over NT consecutive output
 * columns with vertical (vectorizable) multiply-adds and no horizontal sums.
 */
#include "fp4ref.h"
#include "gemm_internal.h"

#include <gmp.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { NT = 64 };                       /* output columns per inner tile */
enum { FLUSH_BLOCKS = 1 << 15 };        /* int64 -> int128 flush interval */
static const int UNIT_EXP = -20;        /* accumulator unit 2^-20 */

/* 2 * E2M1 value for each 4-bit code (numerics.md §1.2: 0, .5, 1, 1.5, 2, 3, 4, 6). */
static const int8_t k_e2m1x2[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

fp4_gemm_opts fp4_gemm_opts_default(void) {
    fp4_gemm_opts o;
    memset(&o, 0, sizeof o);
    o.acc = FP4_ACC_EXACT;
    o.epi = FP4_EPI_EXACT;
    o.out = FP4_FMT_F32;
    o.out_round = FP4_RNE;
    o.acc_round = FP4_RNE;
    o.alpha = 1.0f;
    o.beta = 0.0f;
    return o;
}

/* UE4M3 byte -> sig * 2^ex (sig 0 for zero); returns false for NaN (0x7F). */
static bool ue4m3_split(uint8_t b, uint8_t *sig, int8_t *ex) {
    if (b == 0x7F) return false;
    unsigned e = b >> 3, m = b & 7u;
    *sig = (uint8_t)(e ? 8u + m : m);
    *ex = (int8_t)(e ? (int)e - 10 : -9);
    return true;
}

/* ------------------------------------------------------------------------ */
/* Operand preparation                                                       */
/* ------------------------------------------------------------------------ */

typedef struct prep {
    int64_t rows, k, nb, ld; /* ld: leading dimension of the transposed form */
    int8_t *v;               /* [rows][k] or, transposed, [k][ld] */
    uint8_t *sig;            /* [rows][nb] or [nb][ld] */
    int8_t *ex;              /* same layout as sig */
    uint8_t *nan;            /* [rows]: a NaN scale somewhere in the row */
} prep;

static void prep_free(prep *p) {
    free(p->v), free(p->sig), free(p->ex), free(p->nan);
    memset(p, 0, sizeof *p);
}

/* Decodes X into p; transposed (for B) if ld > 0, padding columns to ld. */
static int prep_make(prep *p, const fp4_nvfp4_matrix *X, int64_t ld) {
    memset(p, 0, sizeof *p);
    p->rows = X->rows, p->k = X->k, p->nb = X->k / 16, p->ld = ld;
    int64_t vcount = ld ? X->k * ld : X->rows * X->k, scount = ld ? p->nb * ld : X->rows * p->nb;
    p->v = calloc((size_t)(vcount ? vcount : 1), 1);
    p->sig = calloc((size_t)(scount ? scount : 1), 1);
    p->ex = calloc((size_t)(scount ? scount : 1), 1);
    p->nan = calloc((size_t)(X->rows ? X->rows : 1), 1);
    if (!p->v || !p->sig || !p->ex || !p->nan) {
        prep_free(p);
        return fp4_fail("gemm: out of memory preparing a %lld x %lld operand",
                        (long long)X->rows, (long long)X->k);
    }
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < X->rows; r++) {
        const uint8_t *row = X->codes + r * (X->k / 2);
        for (int64_t c = 0; c < X->k; c++) {
            uint8_t code = (c & 1) ? (row[c / 2] >> 4) : (row[c / 2] & 0xF);
            p->v[ld ? c * ld + r : r * X->k + c] = k_e2m1x2[code];
        }
        for (int64_t g = 0; g < p->nb; g++) {
            int64_t at = ld ? g * ld + r : r * p->nb + g;
            if (!ue4m3_split(X->scales[r * p->nb + g], &p->sig[at], &p->ex[at])) p->nan[r] = 1;
        }
    }
    return 0;
}

int fp4i_gemm_check_ue4m3(const uint8_t *scales, int64_t rows, int64_t k, const char *name) {
    int64_t nb = k / 16, n = rows * nb;
    for (int64_t i = 0; i < n; i++)
        if (scales[i] & 0x80)
            return fp4_fail("gemm: %s scale byte 0x%02X at row %lld, block %lld has bit 7 set "
                            "(UE4M3 is 7 bits)",
                            name, scales[i], (long long)(i / nb), (long long)(i % nb));
    return 0;
}

static int check_args(const fp4_nvfp4_matrix *A, const fp4_nvfp4_matrix *B, const float *C,
                      const void *D, const fp4_gemm_opts *o) {
    if (!A || !B || !D || !o) return fp4_fail("gemm: null argument");
    if (A->rows < 0 || B->rows < 0 || A->k <= 0)
        return fp4_fail("gemm: bad shape A [%lld, %lld], B [%lld, %lld]", (long long)A->rows,
                        (long long)A->k, (long long)B->rows, (long long)B->k);
    if (A->k != B->k)
        return fp4_fail("gemm: K mismatch: A is [%lld, %lld], B is [%lld, %lld]",
                        (long long)A->rows, (long long)A->k, (long long)B->rows, (long long)B->k);
    if (A->k % 16 != 0)
        return fp4_fail("gemm: K = %lld is not a multiple of 16 (the NVFP4 block)", (long long)A->k);
    if ((A->rows && (!A->codes || !A->scales)) || (B->rows && (!B->codes || !B->scales)))
        return fp4_fail("gemm: null codes or scales");
    if (o->beta != 0.0f && !C) return fp4_fail("gemm: beta != 0 but C is null");
    if (o->out != FP4_FMT_F32 && o->out != FP4_FMT_F16 && o->out != FP4_FMT_BF16)
        return fp4_fail("gemm: output format must be f32, f16 or bf16");
    if ((unsigned)o->acc >= FP4_ACC_COUNT || (unsigned)o->epi >= FP4_EPI_COUNT)
        return fp4_fail("gemm: unknown accumulation mode or epilogue");
    if (o->k_order) {
        int64_t nb = A->k / 16;
        uint8_t *seen = calloc((size_t)nb, 1);
        if (!seen) return fp4_fail("gemm: out of memory");
        int bad = 0;
        for (int64_t i = 0; i < nb && !bad; i++) {
            int64_t g = o->k_order[i];
            bad = g < 0 || g >= nb || seen[g];
            if (!bad) seen[g] = 1;
        }
        free(seen);
        if (bad) return fp4_fail("gemm: k_order is not a permutation of 0..%lld", (long long)nb - 1);
    }
    if (fp4i_gemm_check_ue4m3(A->scales, A->rows, A->k, "A") ||
        fp4i_gemm_check_ue4m3(B->scales, B->rows, B->k, "B"))
        return -1;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Accumulated value: exact dyadic (or special), passed to the epilogue      */
/* ------------------------------------------------------------------------ */

typedef struct accval {
    fp4_class cls;  /* FINITE covers zero too (sig == 0) */
    int sign;       /* for INF */
    __int128 sig;   /* value = sig * 2^exp */
    int exp;
} accval;

static accval accval_from_f64(double x) {
    accval a = {FP4_CLASS_FINITE, 0, 0, 0};
    fp4_value v = fp4_value_from_f64(x);
    if (v.cls == FP4_CLASS_NAN || v.cls == FP4_CLASS_INF) {
        a.cls = v.cls;
        a.sign = v.sign;
        return a;
    }
    if (v.cls == FP4_CLASS_FINITE) {
        a.sig = v.sign ? -(__int128)v.sig : (__int128)v.sig;
        a.exp = v.exp;
    }
    return a;
}

/* |x| of a signed int128 as little-endian 64-bit limbs. */
static void i128_to_limbs(__int128 x, int *sign, uint64_t limbs[2]) {
    unsigned __int128 u = x < 0 ? (unsigned __int128)0 - (unsigned __int128)x : (unsigned __int128)x;
    *sign = x < 0;
    limbs[0] = (uint64_t)u;
    limbs[1] = (uint64_t)(u >> 64);
}

static void mpz_set_i128(mpz_t z, __int128 x) {
    int s;
    uint64_t l[2];
    i128_to_limbs(x, &s, l);
    mpz_import(z, 2, -1, sizeof l[0], 0, 0, l);
    if (s) mpz_neg(z, z);
}

/* z *= sig of the finite float f (returns its exponent); false if f is not finite. */
static bool mpz_mul_float(mpz_t z, float f, int64_t *exp) {
    fp4_value v = fp4_value_from_f32(f);
    if (v.cls == FP4_CLASS_NAN || v.cls == FP4_CLASS_INF) return false;
    if (v.cls == FP4_CLASS_ZERO) {
        mpz_set_ui(z, 0);
        return true;
    }
    mpz_mul_ui(z, z, (unsigned long)v.sig);
    if (v.sign) mpz_neg(z, z);
    *exp += v.exp;
    return true;
}

/* Rounds the integer z * 2^e into the output format. */
static uint64_t round_mpz(const mpz_t z, int64_t e, const fp4_gemm_opts *o) {
    fp4_cvt_opts co = {o->out_round, FP4_POLICY_NOSAT, 0, 0, 0};
    size_t cnt = 0;
    uint64_t stackbuf[16];
    size_t need = (mpz_sizeinbase(z, 2) + 63) / 64;
    uint64_t *limbs = need <= 16 ? stackbuf : malloc(need * sizeof *limbs);
    mpz_export(limbs, &cnt, -1, sizeof limbs[0], 0, 0, z);
    uint64_t code = 0;
    fp4_encode_bigint(o->out, mpz_sgn(z) < 0, limbs, cnt, e, &co, &code, NULL);
    if (limbs != stackbuf) free(limbs);
    return code;
}

/* IEEE double fallback for non-finite operands: NaN/Inf propagate by IEEE
 * rules there, and any finite part only decides signs. */
static uint64_t epilogue_special(const accval *a, float gA, float gB, float Cv,
                                 const fp4_gemm_opts *o) {
    double acc = a->cls == FP4_CLASS_NAN ? NAN
                 : a->cls == FP4_CLASS_INF ? (a->sign ? -INFINITY : INFINITY)
                                           : (double)a->sig * ldexp(1.0, a->exp);
    double d = (double)o->alpha * gA * gB * acc + (o->beta != 0.0f ? (double)o->beta * Cv : 0.0);
    fp4_cvt_opts co = {o->out_round, FP4_POLICY_NOSAT, 0, 0, 0};
    uint64_t code = 0;
    fp4_encode_f64(o->out, d, &co, &code, NULL);
    return code;
}

static bool epilogue_operands_finite(float gA, float gB, float Cv, const fp4_gemm_opts *o) {
    return isfinite(gA) && isfinite(gB) && isfinite(o->alpha) &&
           (o->beta == 0.0f || (isfinite(Cv) && isfinite(o->beta)));
}

/* FP4_EPI_EXACT on a finite accumulator acc * 2^e1 (acc is overwritten):
 * one rounding of alpha*gA*gB*acc + beta*C. */
static uint64_t epilogue_exact_z(mpz_t t1, int64_t e1, float gA, float gB, float Cv,
                                 const fp4_gemm_opts *o) {
    mpz_t t2;
    mpz_init(t2);
    int64_t e2 = 0;
    mpz_mul_float(t1, o->alpha, &e1);
    mpz_mul_float(t1, gA, &e1);
    mpz_mul_float(t1, gB, &e1);
    if (o->beta != 0.0f) {
        mpz_set_ui(t2, 1);
        mpz_mul_float(t2, o->beta, &e2);
        mpz_mul_float(t2, Cv, &e2);
    }
    /* Align to the smaller exponent, add exactly. */
    if (mpz_sgn(t2) != 0 && mpz_sgn(t1) != 0) {
        if (e1 > e2) {
            mpz_mul_2exp(t1, t1, (mp_bitcnt_t)(e1 - e2));
            e1 = e2;
        } else {
            mpz_mul_2exp(t2, t2, (mp_bitcnt_t)(e2 - e1));
        }
        mpz_add(t1, t1, t2);
    } else if (mpz_sgn(t1) == 0) {
        mpz_swap(t1, t2);
        e1 = e2;
    }
    uint64_t code = round_mpz(t1, e1, o);
    mpz_clear(t2);
    return code;
}

static uint64_t epilogue_exact(const accval *a, float gA, float gB, float Cv,
                               const fp4_gemm_opts *o) {
    if (a->cls != FP4_CLASS_FINITE || !epilogue_operands_finite(gA, gB, Cv, o))
        return epilogue_special(a, gA, gB, Cv, o);
    mpz_t t1;
    mpz_init(t1);
    mpz_set_i128(t1, a->sig);
    uint64_t code = epilogue_exact_z(t1, a->exp, gA, gB, Cv, o);
    mpz_clear(t1);
    return code;
}

static float f32_of_accval(const accval *a) {
    if (a->cls == FP4_CLASS_NAN) return NAN;
    if (a->cls == FP4_CLASS_INF) return a->sign ? -INFINITY : INFINITY;
    int s;
    uint64_t l[2], code = 0;
    i128_to_limbs(a->sig, &s, l);
    fp4_cvt_opts co = {FP4_RNE, FP4_POLICY_NOSAT, 0, 0, 0};
    fp4_encode_bigint(FP4_FMT_F32, s, l, 2, a->exp, &co, &code, NULL);
    uint32_t b = (uint32_t)code;
    float f;
    memcpy(&f, &b, 4);
    return f;
}

/* FP4_EPI_F32: CUTLASS gett_epilogue order (numerics.md §7.1): alpha' =
 * alpha*scale_a*scale_b in FP32, D = fma(beta, C, alpha'*acc). */
static uint64_t epilogue_f32_f(float acc32, float gA, float gB, float Cv, const fp4_gemm_opts *o) {
    volatile float s = o->alpha * gA; /* volatile: keep each FP32 rounding */
    s = s * gB;
    volatile float t = s * acc32;
    float d = o->beta != 0.0f ? fmaf(o->beta, Cv, t) : t;
    fp4_cvt_opts co = {o->out_round, FP4_POLICY_NOSAT, 0, 0, 0};
    uint64_t code = 0;
    fp4_encode_f32(o->out, d, &co, &code, NULL);
    return code;
}

static uint64_t epilogue_f32(const accval *a, float gA, float gB, float Cv,
                             const fp4_gemm_opts *o) {
    return epilogue_f32_f(f32_of_accval(a), gA, gB, Cv, o);
}

/* For gemm_bs.c: finish a finite wide accumulator acc * 2^e (acc is overwritten). */
uint64_t fp4i_gemm_finish_z(mpz_t acc, int64_t e, float gA, float gB, float Cv,
                            const fp4_gemm_opts *o) {
    if (o->epi == FP4_EPI_EXACT && epilogue_operands_finite(gA, gB, Cv, o))
        return epilogue_exact_z(acc, e, gA, gB, Cv, o);
    fp4_gemm_opts o32 = *o;
    o32.out = FP4_FMT_F32;
    o32.out_round = FP4_RNE;
    uint32_t b = (uint32_t)round_mpz(acc, e, &o32);
    float acc32;
    memcpy(&acc32, &b, 4);
    if (o->epi == FP4_EPI_F32) return epilogue_f32_f(acc32, gA, gB, Cv, o);
    accval a = accval_from_f64((double)acc32); /* non-finite operands: IEEE result */
    return epilogue_special(&a, gA, gB, Cv, o);
}

/* For gemm_bs.c: finish a non-finite accumulator (NaN or +-Inf as a double). */
uint64_t fp4i_gemm_finish_special(double acc, float gA, float gB, float Cv,
                                  const fp4_gemm_opts *o) {
    accval a = accval_from_f64(acc);
    return o->epi == FP4_EPI_EXACT ? epilogue_special(&a, gA, gB, Cv, o)
                                   : epilogue_f32_f((float)acc, gA, gB, Cv, o);
}

/* ------------------------------------------------------------------------ */
/* Exact accumulation: one row of A against NT columns of B                  */
/* ------------------------------------------------------------------------ */

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
/* AVX-512 / AVX2 / baseline copies, picked at load time (the build is generic x86-64). */
__attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#endif
static void exact_tile(const prep *A, const prep *Bt, int64_t m, int64_t n0, accval out[NT]) {
    int64_t acc64[NT];
    __int128 acc128[NT];
    for (int j = 0; j < NT; j++) acc64[j] = 0, acc128[j] = 0;
    const int8_t *arow = A->v + m * A->k;
    for (int64_t g = 0; g < A->nb; g++) {
        /* |block sum| <= 16 * 144 = 2304: int16 lanes hold it exactly, and
         * int16 multiply-adds vectorize twice as wide as int32. */
        int16_t s[NT];
        for (int j = 0; j < NT; j++) s[j] = 0;
        for (int kk = 0; kk < 16; kk++) {
            int16_t av = arow[g * 16 + kk];
            const int8_t *bt = Bt->v + (g * 16 + kk) * Bt->ld + n0;
            for (int j = 0; j < NT; j++) s[j] = (int16_t)(s[j] + av * (int16_t)bt[j]);
        }
        int32_t sa = A->sig[m * A->nb + g];
        int ea = A->ex[m * A->nb + g] + 18; /* exA + exB - 2 - UNIT_EXP */
        const uint8_t *sb = Bt->sig + g * Bt->ld + n0;
        const int8_t *eb = Bt->ex + g * Bt->ld + n0;
        for (int j = 0; j < NT; j++) {
            int64_t t = (int64_t)((int32_t)s[j] * (sa * (int32_t)sb[j])); /* |t| < 2^19 */
            acc64[j] += (int64_t)((uint64_t)t << (ea + eb[j]));  /* shift in [0, 28] */
        }
        if ((g & (FLUSH_BLOCKS - 1)) == FLUSH_BLOCKS - 1)
            for (int j = 0; j < NT; j++) acc128[j] += acc64[j], acc64[j] = 0;
    }
    for (int j = 0; j < NT; j++) {
        out[j].cls = FP4_CLASS_FINITE;
        out[j].sign = 0;
        out[j].sig = acc128[j] + acc64[j];
        out[j].exp = UNIT_EXP;
    }
}

/* ------------------------------------------------------------------------ */
/* Non-exact references (one output at a time; they are references, not     */
/* fast paths)                                                               */
/* ------------------------------------------------------------------------ */

static int64_t block_at(const fp4_gemm_opts *o, int64_t i) { return o->k_order ? o->k_order[i] : i; }

/* CUTLASS host reference: each element scaled in float (exact), then
 * acc = a*b + acc in FP32 RN (the product is exact, so fma == mul+add). */
static accval seq_f32(const prep *A, const prep *Bt, int64_t m, int64_t n, const fp4_gemm_opts *o) {
    float acc = 0.0f;
    for (int64_t i = 0; i < A->nb; i++) {
        int64_t g = block_at(o, i);
        float sa = ldexpf((float)A->sig[m * A->nb + g], A->ex[m * A->nb + g]);
        float sb = ldexpf((float)Bt->sig[g * Bt->ld + n], Bt->ex[g * Bt->ld + n]);
        for (int kk = 0; kk < 16; kk++) {
            float a = 0.5f * (float)A->v[m * A->k + g * 16 + kk] * sa;
            float b = 0.5f * (float)Bt->v[(g * 16 + kk) * Bt->ld + n] * sb;
            acc = fmaf(a, b, acc);
        }
    }
    return accval_from_f64((double)acc);
}

/* Exact block partials accumulated in FP16 with o->acc_round. Units of 2^-24
 * (FP16's smallest subnormal) hold both the FP16 accumulator and a block
 * partial (multiple of 2^-20) exactly. */
static accval f16_blocks(const prep *A, const prep *Bt, int64_t m, int64_t n,
                         const fp4_gemm_opts *o) {
    fp4_cvt_opts co = {o->acc_round, FP4_POLICY_NOSAT, 0, 0, 0};
    uint64_t acc16 = 0; /* +0 */
    for (int64_t i = 0; i < A->nb; i++) {
        int64_t g = block_at(o, i);
        int32_t s = 0;
        for (int kk = 0; kk < 16; kk++)
            s += (int32_t)A->v[m * A->k + g * 16 + kk] * (int32_t)Bt->v[(g * 16 + kk) * Bt->ld + n];
        int sh = A->ex[m * A->nb + g] + Bt->ex[g * Bt->ld + n] + 22; /* -2 + 24 */
        __int128 part = (__int128)((int64_t)s * A->sig[m * A->nb + g] * Bt->sig[g * Bt->ld + n]);
        fp4_value v = fp4_decode(FP4_FMT_F16, acc16);
        if (v.cls == FP4_CLASS_INF || v.cls == FP4_CLASS_NAN) break; /* stays Inf */
        __int128 cur = v.cls == FP4_CLASS_FINITE ? (__int128)v.sig << (v.exp + 24) : 0;
        if (v.sign) cur = -cur;
        __int128 sum = cur + part * ((__int128)1 << sh);
        if (sum == 0) { /* exact zero: keep the accumulator's zero (RNE: +0 + -0 = +0) */
            acc16 = (cur == 0 && part == 0) ? acc16 : (o->acc_round == FP4_RD ? 0x8000 : 0);
            continue;
        }
        int sg;
        uint64_t l[2];
        i128_to_limbs(sum, &sg, l);
        fp4_encode_bigint(FP4_FMT_F16, sg, l, 2, -24, &co, &acc16, NULL);
    }
    fp4_value v = fp4_decode(FP4_FMT_F16, acc16);
    return accval_from_f64(fp4_value_to_f64(&v));
}

/* ------------------------------------------------------------------------ */
/* Driver                                                                    */
/* ------------------------------------------------------------------------ */

static uint64_t finish(const accval *a, float gA, float gB, float Cv, const fp4_gemm_opts *o) {
    return o->epi == FP4_EPI_EXACT ? epilogue_exact(a, gA, gB, Cv, o)
                                   : epilogue_f32(a, gA, gB, Cv, o);
}

int fp4_gemm_nvfp4(const fp4_nvfp4_matrix *A, const fp4_nvfp4_matrix *B, const float *C, void *D,
                   const fp4_gemm_opts *opts) {
    if (check_args(A, B, C, D, opts)) return -1;
    const fp4_gemm_opts *o = opts;
    int64_t M = A->rows, N = B->rows, ntiles = (N + NT - 1) / NT;
    prep pa, pb;
    if (prep_make(&pa, A, 0)) return -1;
    if (prep_make(&pb, B, ntiles * NT)) {
        prep_free(&pa);
        return -1;
    }
    const accval nanv = {FP4_CLASS_NAN, 0, 0, 0};
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t t = 0; t < M * ntiles; t++) {
        int64_t m = t / ntiles, n0 = (t % ntiles) * NT;
        accval acc[NT];
        if (o->acc == FP4_ACC_EXACT) exact_tile(&pa, &pb, m, n0, acc);
        for (int j = 0; j < NT && n0 + j < N; j++) {
            int64_t n = n0 + j;
            accval a = o->acc == FP4_ACC_EXACT ? acc[j]
                       : o->acc == FP4_ACC_SEQ_F32 ? seq_f32(&pa, &pb, m, n, o)
                                                   : f16_blocks(&pa, &pb, m, n, o);
            if (pa.nan[m] || pb.nan[n]) a = nanv;
            float Cv = C ? C[m * N + n] : 0.0f;
            fp4i_gemm_store(D, o->out, m * N + n, finish(&a, A->global_scale, B->global_scale, Cv, o));
        }
    }
    prep_free(&pa);
    prep_free(&pb);
    return 0;
}
