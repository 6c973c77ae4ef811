/* epilogue.c - the GEMM call (fp4gemm.h) and the two epilogues every engine
 * shares: the exact one (one rounding of alpha*gA*gB*acc + beta*C) and the
 * FP32 one in CUTLASS/cuBLASLt order (numerics.md §7.1), computed with
 * ref/'s exact FP32 operations (ops.c) so no bit depends on the host FPU. */
#include "fp4ref.h"
#include "gemm_internal.h"

#include <gmp.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* The call                                                                  */
/* ------------------------------------------------------------------------ */

fp4_gemm_call fp4_gemm_call_make(const fp4_tensor *A, const fp4_tensor *B, void *D) {
    fp4_gemm_call c;
    memset(&c, 0, sizeof c);
    c.A = A;
    c.B = B;
    c.D = D;
    c.alpha = 1.0f;
    c.epi = FP4_EPI_EXACT;
    c.out = FP4_FMT_F32;
    c.out_round = FP4_RNE;
    return c;
}

void fp4_gemm_call_window(const fp4_gemm_call *c, int64_t *m0, int64_t *m1, int64_t *n0,
                          int64_t *n1) {
    *m0 = c->m0;
    *n0 = c->n0;
    *m1 = c->m1 ? c->m1 : c->A->rows;
    *n1 = c->n1 ? c->n1 : c->B->rows;
}

int fp4_gemm_call_check(const fp4_gemm_call *c) {
    if (!c || !c->A || !c->B) return fp4_fail("gemm: null call or operand");
    if (fp4_tensor_check(c->A, "gemm: A") || fp4_tensor_check(c->B, "gemm: B")) return -1;
    if (c->A->cols != c->B->cols)
        return fp4_fail("gemm: K mismatch: A is [%lld, %lld], B is [%lld, %lld]",
                        (long long)c->A->rows, (long long)c->A->cols, (long long)c->B->rows,
                        (long long)c->B->cols);
    if (c->A->cols < 1) return fp4_fail("gemm: K must be at least 1");
    if (c->out != FP4_FMT_F32 && c->out != FP4_FMT_F16 && c->out != FP4_FMT_BF16)
        return fp4_fail("gemm: output format must be f32, f16 or bf16");
    if ((unsigned)c->out_round >= FP4_ROUND_COUNT || c->out_round == FP4_RS)
        return fp4_fail("gemm: the output rounding must be rne, rna, rz, ru or rd (stochastic "
                        "rounding of GEMM outputs takes no random bits here)");
    if ((unsigned)c->epi >= FP4_EPI_COUNT) return fp4_fail("gemm: unknown epilogue");
    if (c->beta != 0.0f && !c->C) return fp4_fail("gemm: beta != 0 but C is null");
    int64_t m0, m1, n0, n1;
    fp4_gemm_call_window(c, &m0, &m1, &n0, &n1);
    if (m0 < 0 || n0 < 0 || m0 > m1 || n0 > n1 || m1 > c->A->rows || n1 > c->B->rows)
        return fp4_fail("gemm: output window [%lld, %lld) x [%lld, %lld) is outside [%lld, %lld]",
                        (long long)m0, (long long)m1, (long long)n0, (long long)n1,
                        (long long)c->A->rows, (long long)c->B->rows);
    if ((m1 - m0) * (n1 - n0) > 0 && !c->D) return fp4_fail("gemm: null D");
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Exact epilogue                                                            */
/* ------------------------------------------------------------------------ */

static const char *const k_epi_names[FP4_EPI_COUNT] = {"exact", "f32"};

const char *fp4_epilogue_name(fp4_epilogue e) {
    return (unsigned)e < FP4_EPI_COUNT ? k_epi_names[e] : "?";
}

int fp4_epilogue_from_name(const char *s, fp4_epilogue *out) {
    for (int e = 0; s && e < FP4_EPI_COUNT; e++)
        if (strcmp(s, k_epi_names[e]) == 0) {
            *out = (fp4_epilogue)e;
            return 0;
        }
    return fp4_fail("unknown epilogue '%s' (valid: exact, f32)", s ? s : "(null)");
}

static uint64_t nan_code(fp4_format out) { return fp4_format_get(out)->canonical_nan; }

static uint64_t inf_code(fp4_format out, int sign, fp4_round mode) {
    fp4_cvt_opts co = {mode, FP4_POLICY_NOSAT, 0, 0, 0};
    uint64_t code = 0;
    fp4_encode_f64(out, sign ? -__builtin_inf() : __builtin_inf(), &co, &code, NULL);
    return code;
}

/* z * 2^e rounded into `out`. */
static uint64_t round_mpz(const mpz_t z, int64_t e, fp4_format out, fp4_round mode) {
    fp4_cvt_opts co = {mode, FP4_POLICY_NOSAT, 0, 0, 0};
    size_t cnt = 0, need = (mpz_sizeinbase(z, 2) + 63) / 64;
    uint64_t stackbuf[16];
    uint64_t *limbs = need <= 16 ? stackbuf : malloc(need * sizeof *limbs);
    if (!limbs) return nan_code(out);
    mpz_export(limbs, &cnt, -1, sizeof limbs[0], 0, 0, z);
    uint64_t code = 0;
    fp4_encode_bigint(out, mpz_sgn(z) < 0, limbs, cnt, e, &co, &code, NULL);
    if (limbs != stackbuf) free(limbs);
    return code;
}

/* z *= v (finite); adds its exponent to *e. */
static void mpz_mul_value(mpz_t z, const fp4_value *v, int64_t *e) {
    if (v->cls == FP4_CLASS_ZERO) {
        mpz_set_ui(z, 0);
        return;
    }
    uint64_t s = v->sig;
    mpz_t t;
    mpz_init(t);
    mpz_import(t, 1, -1, sizeof s, 0, 0, &s);
    mpz_mul(z, z, t);
    mpz_clear(t);
    if (v->sign) mpz_neg(z, z);
    *e += v->exp;
}

/* Class of a product of factors (NaN, Inf with sign, or finite). */
typedef struct pclass {
    fp4_class cls;
    int sign;
} pclass;

static pclass product_class(const fp4_value *f, int n) {
    pclass p = {FP4_CLASS_FINITE, 0};
    bool zero = false, inf = false;
    for (int i = 0; i < n; i++) {
        if (f[i].cls == FP4_CLASS_NAN) return (pclass){FP4_CLASS_NAN, 0};
        p.sign ^= f[i].sign;
        zero = zero || f[i].cls == FP4_CLASS_ZERO;
        inf = inf || f[i].cls == FP4_CLASS_INF;
    }
    if (inf) p.cls = zero ? FP4_CLASS_NAN : FP4_CLASS_INF;
    return p;
}

/* One rounding of alpha*gA*gB*(acc_z * 2^acc_e) + beta*C; acc given as a
 * finite mpz (acc_special NULL) or a non-finite value. acc_z is overwritten. */
uint64_t fp4i_epilogue_exact_z(mpz_t acc_z, int64_t acc_e, const fp4_value *acc_special,
                               float alpha, float gA, float gB, float beta, float c,
                               fp4_format out, fp4_round mode) {
    fp4_value t1[4] = {fp4_value_from_f32(alpha), fp4_value_from_f32(gA), fp4_value_from_f32(gB),
                       {FP4_CLASS_FINITE, 0, 1, 0}};
    if (acc_special) t1[3] = *acc_special;
    else if (mpz_sgn(acc_z) == 0) t1[3].cls = FP4_CLASS_ZERO;
    else t1[3].sign = mpz_sgn(acc_z) < 0;
    fp4_value t2[2] = {fp4_value_from_f32(beta), fp4_value_from_f32(c)};
    pclass p1 = product_class(t1, 4);
    pclass p2 = beta != 0.0f ? product_class(t2, 2) : (pclass){FP4_CLASS_ZERO, 0};
    if (p1.cls == FP4_CLASS_NAN || p2.cls == FP4_CLASS_NAN) return nan_code(out);
    if (p1.cls == FP4_CLASS_INF || p2.cls == FP4_CLASS_INF) {
        if (p1.cls == FP4_CLASS_INF && p2.cls == FP4_CLASS_INF && p1.sign != p2.sign)
            return nan_code(out);
        return inf_code(out, p1.cls == FP4_CLASS_INF ? p1.sign : p2.sign, mode);
    }
    /* All finite: the exact sum, rounded once (an exact zero is +0). */
    mpz_t z2;
    mpz_init(z2);
    int64_t e1 = acc_e, e2 = 0;
    if (acc_special) mpz_set_ui(acc_z, 0);
    for (int i = 0; i < 3; i++) mpz_mul_value(acc_z, &t1[i], &e1);
    if (beta != 0.0f) {
        mpz_set_ui(z2, 1);
        mpz_mul_value(z2, &t2[0], &e2);
        mpz_mul_value(z2, &t2[1], &e2);
    }
    if (mpz_sgn(z2) != 0 && mpz_sgn(acc_z) != 0) {
        if (e1 > e2) {
            mpz_mul_2exp(acc_z, acc_z, (mp_bitcnt_t)(e1 - e2));
            e1 = e2;
        } else {
            mpz_mul_2exp(z2, z2, (mp_bitcnt_t)(e2 - e1));
        }
        mpz_add(acc_z, acc_z, z2);
    } else if (mpz_sgn(acc_z) == 0) {
        mpz_swap(acc_z, z2);
        e1 = e2;
    }
    uint64_t code = round_mpz(acc_z, e1, out, mode);
    mpz_clear(z2);
    return code;
}

/* ------------------------------------------------------------------------ */
/* FP32 epilogue                                                             */
/* ------------------------------------------------------------------------ */

uint64_t fp4_epilogue_f32(uint32_t acc32, float alpha, float gA, float gB, float beta, float c,
                          fp4_format out, fp4_round out_round) {
    uint32_t s = f32_mul(fp4_f32_bits(alpha), fp4_f32_bits(gA), FP4_RNE);
    s = f32_mul(s, fp4_f32_bits(gB), FP4_RNE);
    uint32_t d = f32_mul(s, acc32, FP4_RNE);
    if (beta != 0.0f) d = f32_mulAdd(fp4_f32_bits(beta), fp4_f32_bits(c), d, FP4_RNE);
    if (out == FP4_FMT_F32) return d;
    fp4_cvt_opts co = {out_round, FP4_POLICY_NOSAT, 0, 0, 0};
    uint64_t code = 0;
    fp4_convert(out, FP4_FMT_F32, d, &co, &code, NULL);
    return code;
}

/* The FP32 epilogue of an exact accumulator: RN32 first. */
uint64_t fp4i_epilogue_f32_z(const mpz_t acc_z, int64_t acc_e, const fp4_value *acc_special,
                             float alpha, float gA, float gB, float beta, float c,
                             fp4_format out, fp4_round mode) {
    uint32_t a32;
    if (acc_special) {
        fp4_cvt_opts co = {FP4_RNE, FP4_POLICY_NOSAT, 0, 0, 0};
        uint64_t code = 0;
        fp4_encode_value(FP4_FMT_F32, acc_special, &co, &code, NULL);
        a32 = (uint32_t)code;
    } else {
        a32 = (uint32_t)round_mpz(acc_z, acc_e, FP4_FMT_F32, FP4_RNE);
    }
    return fp4_epilogue_f32(a32, alpha, gA, gB, beta, c, out, mode);
}

/* ------------------------------------------------------------------------ */
/* Public forms on an exact value                                            */
/* ------------------------------------------------------------------------ */

/* A finite fp4_value as mpz * 2^e. */
static void mpz_of_value(mpz_t z, const fp4_value *v, int64_t *e) {
    *e = 0;
    mpz_set_ui(z, 1);
    mpz_mul_value(z, v, e);
}

uint64_t fp4_epilogue_exact(const fp4_value *acc, float alpha, float gA, float gB, float beta,
                            float c, fp4_format out, fp4_round out_round) {
    mpz_t z;
    mpz_init(z);
    int64_t e = 0;
    bool special = acc->cls == FP4_CLASS_NAN || acc->cls == FP4_CLASS_INF;
    if (!special) mpz_of_value(z, acc, &e);
    uint64_t code = fp4i_epilogue_exact_z(z, e, special ? acc : NULL, alpha, gA, gB, beta, c,
                                          out, out_round);
    mpz_clear(z);
    return code;
}

uint64_t fp4_epilogue_apply(fp4_epilogue epi, const fp4_value *acc, float alpha, float gA,
                            float gB, float beta, float c, fp4_format out, fp4_round out_round) {
    if (epi == FP4_EPI_EXACT) return fp4_epilogue_exact(acc, alpha, gA, gB, beta, c, out, out_round);
    mpz_t z;
    mpz_init(z);
    int64_t e = 0;
    bool special = acc->cls == FP4_CLASS_NAN || acc->cls == FP4_CLASS_INF;
    if (!special) mpz_of_value(z, acc, &e);
    uint64_t code =
        fp4i_epilogue_f32_z(z, e, special ? acc : NULL, alpha, gA, gB, beta, c, out, out_round);
    mpz_clear(z);
    return code;
}

/* The epilogue a call asks for, on an exact accumulator (z overwritten). */
uint64_t fp4i_gemm_finish(const fp4_gemm_call *c, mpz_t z, int64_t e, const fp4_value *special,
                          float cv) {
    if (c->epi == FP4_EPI_EXACT)
        return fp4i_epilogue_exact_z(z, e, special, c->alpha, c->A->global_scale,
                                     c->B->global_scale, c->beta, cv, c->out, c->out_round);
    return fp4i_epilogue_f32_z(z, e, special, c->alpha, c->A->global_scale, c->B->global_scale,
                               c->beta, cv, c->out, c->out_round);
}
