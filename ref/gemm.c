/* gemm.c - the exact GEMM oracle (fp4gemm.h): argument checks, dispatch,
 * and the NVFP4 fast path.
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
 * Other kinds go through the wide accumulator of gemm_bs.c.
 */
#include "fp4ref.h"
#include "gemm_internal.h"

#include <gmp.h>
#include <stdlib.h>
#include <string.h>

enum { NT = 64 };                       /* output columns per inner tile */
enum { FLUSH_BLOCKS = 1 << 15 };        /* int64 -> int128 flush interval */
static const int UNIT_EXP = -20;        /* accumulator unit 2^-20 */

/* 2 * E2M1 value for each 4-bit code (numerics.md §1.2: 0, .5, 1, 1.5, 2, 3, 4, 6). */
static const int8_t k_e2m1x2[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

/* UE4M3 byte -> sig * 2^ex (sig 0 for zero); returns false for NaN (0x7F). */
static bool ue4m3_split(uint8_t b, uint8_t *sig, int8_t *ex) {
    if (b == 0x7F) return false;
    unsigned e = b >> 3, m = b & 7u;
    *sig = (uint8_t)(e ? 8u + m : m);
    *ex = (int8_t)(e ? (int)e - 10 : -9);
    return true;
}

/* The oracle refuses UE4M3 bytes with bit 7 set: UE4M3 is 7 bits, and an
 * oracle must not guess what a kernel does with the eighth. */
static int check_ue4m3(const fp4_tensor *t, const char *name) {
    if (t->scale_fmt != FP4_FMT_UE4M3) return 0;
    const uint8_t *s = t->scales;
    int64_t sc = fp4_tensor_scale_cols(t), n = fp4_tensor_scale_rows(t) * sc;
    for (int64_t i = 0; i < n; i++)
        if (s[i] & 0x80)
            return fp4_fail("gemm: %s scale byte 0x%02X at row %lld, block %lld has bit 7 set "
                            "(UE4M3 is 7 bits)",
                            name, s[i], (long long)(i / sc), (long long)(i % sc));
    return 0;
}

/* ------------------------------------------------------------------------ */
/* NVFP4 operand preparation                                                 */
/* ------------------------------------------------------------------------ */

typedef struct prep {
    int64_t rows, k, nb, ld; /* rows prepared; ld: leading dimension of the transposed form */
    int8_t *v;               /* [rows][k] or, transposed, [k][ld] */
    uint8_t *sig;            /* [rows][nb] or [nb][ld] */
    int8_t *ex;              /* same layout as sig */
    uint8_t *nan;            /* [rows]: a NaN scale somewhere in the row */
} prep;

static void prep_free(prep *p) {
    free(p->v), free(p->sig), free(p->ex), free(p->nan);
    memset(p, 0, sizeof *p);
}

/* Decodes rows [r0, r1) of X into p; transposed (for B) if ld > 0, padding
 * columns to ld. */
static int prep_make(prep *p, const fp4_tensor *X, int64_t r0, int64_t r1, int64_t ld) {
    memset(p, 0, sizeof *p);
    const int64_t rows = r1 - r0, K = X->cols;
    p->rows = rows, p->k = K, p->nb = K / 16, p->ld = ld;
    int64_t vcount = ld ? K * ld : rows * K, scount = ld ? p->nb * ld : rows * p->nb;
    p->v = calloc((size_t)(vcount ? vcount : 1), 1);
    p->sig = calloc((size_t)(scount ? scount : 1), 1);
    p->ex = calloc((size_t)(scount ? scount : 1), 1);
    p->nan = calloc((size_t)(rows ? rows : 1), 1);
    if (!p->v || !p->sig || !p->ex || !p->nan) {
        prep_free(p);
        return fp4_fail_kind(FP4_ERR_NOMEM, "gemm: out of memory preparing a %lld x %lld operand",
                             (long long)rows, (long long)K);
    }
    const uint8_t *codes = X->codes, *scales = X->scales;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *row = codes + (r0 + r) * (K / 2);
        for (int64_t c = 0; c < K; c++) {
            uint8_t code = (c & 1) ? e2m1x2_odd(row[c / 2]) : e2m1x2_even(row[c / 2]);
            p->v[ld ? c * ld + r : r * K + c] = k_e2m1x2[code];
        }
        for (int64_t g = 0; g < p->nb; g++) {
            int64_t at = ld ? g * ld + r : r * p->nb + g;
            if (!ue4m3_split(scales[(r0 + r) * p->nb + g], &p->sig[at], &p->ex[at])) p->nan[r] = 1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Exact accumulation: one row of A against NT columns of B                  */
/* ------------------------------------------------------------------------ */

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
/* AVX-512 / AVX2 / baseline copies, picked at load time (the build is generic x86-64). */
__attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#endif
static void exact_tile(const prep *A, const prep *Bt, int64_t m, int64_t n0, __int128 out[NT]) {
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
    for (int j = 0; j < NT; j++) out[j] = acc128[j] + acc64[j];
}

static void mpz_set_i128(mpz_t z, __int128 x) {
    unsigned __int128 u = x < 0 ? (unsigned __int128)0 - (unsigned __int128)x : (unsigned __int128)x;
    uint64_t l[2] = {(uint64_t)u, (uint64_t)(u >> 64)};
    mpz_import(z, 2, -1, sizeof l[0], 0, 0, l);
    if (x < 0) mpz_neg(z, z);
}

static int nvfp4_fast(const fp4_gemm_call *c, const fp4_tensor *A, const fp4_tensor *B) {
    int64_t m0, m1, n0, n1;
    fp4_gemm_call_window(c, &m0, &m1, &n0, &n1);
    const int64_t N = B->rows, nn = n1 - n0, ntiles = (nn + NT - 1) / NT;
    prep pa, pb;
    if (prep_make(&pa, A, m0, m1, 0)) return -1;
    if (prep_make(&pb, B, n0, n1, ntiles * NT)) {
        prep_free(&pa);
        return -1;
    }
    const fp4_value nanv = {FP4_CLASS_NAN, 0, 0, 0};
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t t = 0; t < (m1 - m0) * ntiles; t++) {
        int64_t m = t / ntiles, j0 = (t % ntiles) * NT;
        __int128 acc[NT];
        exact_tile(&pa, &pb, m, j0, acc);
        mpz_t z;
        mpz_init(z);
        for (int j = 0; j < NT && j0 + j < nn; j++) {
            int64_t gm = m0 + m, gn = n0 + j0 + j;
            mpz_set_i128(z, acc[j]);
            float cv = c->C ? c->C[gm * N + gn] : 0.0f;
            bool nan = pa.nan[m] || pb.nan[j0 + j];
            fp4_gemm_store(c->D, c->out, gm * N + gn,
                           fp4i_gemm_finish(c, z, UNIT_EXP, nan ? &nanv : NULL, cv));
        }
        mpz_clear(z);
    }
    prep_free(&pa);
    prep_free(&pb);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Dispatch                                                                  */
/* ------------------------------------------------------------------------ */

int fp4_gemm_exact(const fp4_gemm_call *c) {
    if (fp4_gemm_call_check(c)) return -1;
    fp4_tensor A, B;
    void *ownA = NULL, *ownB = NULL;
    if (fp4_tensor_linearize(c->A, &A, &ownA)) return -1;
    if (fp4_tensor_linearize(c->B, &B, &ownB)) {
        free(ownA);
        return -1;
    }
    int rc = check_ue4m3(&A, "A") || check_ue4m3(&B, "B") ? -1 : 0;
    if (!rc) {
        fp4_gemm_call lc = *c;
        lc.A = &A;
        lc.B = &B;
        if (fp4_tensor_kind(&A) == FP4_TK_NVFP4 && fp4_tensor_kind(&B) == FP4_TK_NVFP4)
            rc = nvfp4_fast(&lc, &A, &B);
        else
            rc = fp4i_gemm_wide(&lc, &A, &B);
    }
    free(ownA);
    free(ownB);
    return rc;
}
