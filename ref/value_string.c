/* value_string.c - exact decimal and sig*2^exp renderings of fp4_value.
 * Uses GMP for the exact decimal expansion (2^-1074 has 1074 fraction digits). */
#include "fp4ref.h"

#include <gmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int special_string(const fp4_value *v, char *buf, size_t n) {
    const char *s = v->sign ? "-" : "";
    switch (v->cls) {
    case FP4_CLASS_ZERO: return snprintf(buf, n, "%s0", s);
    case FP4_CLASS_INF: return snprintf(buf, n, "%sinf", s);
    case FP4_CLASS_NAN: return snprintf(buf, n, "%snan", s);
    default: return -1;
    }
}

int fp4_value_to_sig_exp_string(const fp4_value *v, char *buf, size_t n) {
    if (v->cls != FP4_CLASS_FINITE) return special_string(v, buf, n);
    return snprintf(buf, n, "%s%llu*2^%d", v->sign ? "-" : "", (unsigned long long)v->sig,
                    (int)v->exp);
}

/* sig * 2^exp exactly: for exp < 0 it is (sig * 5^-exp) / 10^-exp, so the
 * digits of sig*5^-exp with the point moved -exp places left. */
int fp4_value_to_string(const fp4_value *v, char *buf, size_t n) {
    if (v->cls != FP4_CLASS_FINITE) return special_string(v, buf, n);
    mpz_t z;
    mpz_init_set_ui(z, 0);
    mpz_import(z, 1, 1, sizeof v->sig, 0, 0, &v->sig);
    long frac = 0;
    if (v->exp >= 0) {
        mpz_mul_2exp(z, z, (mp_bitcnt_t)v->exp);
    } else {
        mpz_t p;
        mpz_init(p);
        mpz_ui_pow_ui(p, 5, (unsigned long)(-(long)v->exp));
        mpz_mul(z, z, p);
        mpz_clear(p);
        frac = -(long)v->exp;
    }
    char *digits = mpz_get_str(NULL, 10, z);
    mpz_clear(z);
    long nd = (long)strlen(digits);
    /* Build "int.frac" with leading zeros, then strip trailing zeros. */
    size_t cap = (size_t)(nd + frac + 4);
    char *out = malloc(cap);
    size_t k = 0;
    if (v->sign) out[k++] = '-';
    if (frac == 0) {
        memcpy(out + k, digits, (size_t)nd);
        k += (size_t)nd;
    } else if (nd > frac) {
        memcpy(out + k, digits, (size_t)(nd - frac));
        k += (size_t)(nd - frac);
        out[k++] = '.';
        memcpy(out + k, digits + nd - frac, (size_t)frac);
        k += (size_t)frac;
    } else {
        out[k++] = '0';
        out[k++] = '.';
        for (long i = 0; i < frac - nd; i++) out[k++] = '0';
        memcpy(out + k, digits, (size_t)nd);
        k += (size_t)nd;
    }
    if (frac > 0) {
        while (out[k - 1] == '0') k--;
        if (out[k - 1] == '.') k--;
    }
    out[k] = '\0';
    int r = snprintf(buf, n, "%s", out);
    free(out);
    free(digits);
    return r;
}
