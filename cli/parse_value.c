/* parse_value.c - exact parsing of command-line numbers with MPFR.
 *
 * MPFR reads the text at PREC bits, rounding toward zero. If that was exact
 * we keep the value as is. If not, the true value lies strictly between the
 * truncated value a and a + ulp (one unit in bit PREC); appending a single 1
 * bit below a (that is 2a+1 at half the ulp) gives a number in the same open
 * interval. No fp4sim format has a representable value, a rounding midpoint
 * or a stochastic-rounding threshold inside an interval that narrow (the
 * widest significand is FP64's 53 bits plus at most 32 random bits, far from
 * 320), so rounding the stand-in gives the same code, ternary and flags as
 * rounding the true value would.
 */
#include "parse_value.h"

#include "args.h"

#include <ctype.h>
#include <stdio.h> /* before gmp.h/mpfr.h: enables their FILE functions */
#include <gmp.h>
#include <mpfr.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { PREC_BITS = 320 };

/* Values beyond 2^(+-2^40) over/underflow every format the same way whatever
 * their significand, so they are replaced by exactly 2^(+-2^40); this keeps
 * exponent arithmetic in the rounding routine far from int64 limits. */
static const int64_t k_exp_limit = INT64_C(1) << 40;

/* ------------------------------------------------------------------------ */
/* Syntax                                                                    */
/* ------------------------------------------------------------------------ */

static size_t span_digits(const char *p, bool hex) {
    size_t n = 0;
    while (hex ? isxdigit((unsigned char)p[n]) : isdigit((unsigned char)p[n])) n++;
    return n;
}

/* Our grammar, checked before MPFR sees the text: mpfr_strtofr accepts more
 * (leading blanks, "0b" binary, "@inf@", trailing junk it silently stops
 * at), and "1.2.3" must be an error, not 1.2. */
static bool valid_number(const char *s) {
    const char *p = s + ((*s == '+' || *s == '-') ? 1 : 0);
    bool hex = p[0] == '0' && (p[1] == 'x' || p[1] == 'X');
    p += hex ? 2 : 0;
    size_t nint = span_digits(p, hex), nfrac = 0;
    p += nint;
    if (*p == '.') {
        nfrac = span_digits(++p, hex);
        p += nfrac;
    }
    if (nint + nfrac == 0) return false;
    if (tolower((unsigned char)*p) == (hex ? 'p' : 'e')) {
        p += (p[1] == '+' || p[1] == '-') ? 2 : 1;
        size_t nexp = span_digits(p, false);
        if (nexp == 0) return false;
        p += nexp;
    }
    return *p == '\0';
}

/* "inf", "infinity", "nan" with an optional sign, any case. */
static bool parse_special(const char *s, cli_real *out) {
    int sign = *s == '-';
    const char *p = s + ((*s == '+' || *s == '-') ? 1 : 0);
    if (strcasecmp(p, "inf") == 0 || strcasecmp(p, "infinity") == 0) out->cls = FP4_CLASS_INF;
    else if (strcasecmp(p, "nan") == 0) out->cls = FP4_CLASS_NAN;
    else return false;
    out->sign = sign;
    return true;
}

/* ------------------------------------------------------------------------ */
/* Building the integer form                                                 */
/* ------------------------------------------------------------------------ */

static int set_single(cli_real *out, uint64_t sig, int64_t exp) {
    out->limbs = malloc(sizeof *out->limbs);
    if (!out->limbs) return CLI_FAIL;
    out->limbs[0] = sig;
    out->nlimbs = 1;
    out->exp = exp;
    out->cls = FP4_CLASS_FINITE;
    return CLI_OK;
}

/* |z| * 2^e with z's magnitude exported as 64-bit little-endian limbs. */
static int set_from_mpz(cli_real *out, mpz_t z, int64_t e) {
    size_t bits = mpz_sizeinbase(z, 2);
    if ((int64_t)bits + e > k_exp_limit) return set_single(out, 1, k_exp_limit);
    if ((int64_t)bits + e < -k_exp_limit) return set_single(out, 1, -k_exp_limit);
    size_t count = (bits + 63) / 64;
    out->limbs = calloc(count, sizeof *out->limbs);
    if (!out->limbs) return CLI_FAIL;
    mpz_export(out->limbs, &count, -1, sizeof *out->limbs, 0, 0, z);
    out->nlimbs = count;
    out->exp = e;
    out->cls = FP4_CLASS_FINITE;
    return CLI_OK;
}

/* x is the truncated (toward zero) value; inexact says the text had more. */
static int set_from_mpfr(cli_real *out, mpfr_t x, bool inexact) {
    out->sign = mpfr_signbit(x) ? 1 : 0;
    if (mpfr_zero_p(x)) {
        out->cls = FP4_CLASS_ZERO;
        return CLI_OK;
    }
    mpz_t z;
    mpz_init(z);
    int64_t e = (int64_t)mpfr_get_z_2exp(z, x);
    mpz_abs(z, z);
    if (inexact) { /* sticky bit: 2z+1 at exponent e-1 */
        mpz_mul_2exp(z, z, 1);
        mpz_add_ui(z, z, 1);
        e -= 1;
        out->sticky = true;
    }
    int rc = set_from_mpz(out, z, e);
    mpz_clear(z);
    return rc;
}

/* MPFR's own exponent range is widened for the parse (the default stops at
 * 2^(2^30)); beyond even the widest range the flags say which way it went. */
static int parse_with_mpfr(const char *text, cli_real *out) {
    mpfr_exp_t emin = mpfr_get_emin(), emax = mpfr_get_emax();
    mpfr_set_emin(mpfr_get_emin_min());
    mpfr_set_emax(mpfr_get_emax_max());
    mpfr_t x;
    mpfr_init2(x, PREC_BITS);
    mpfr_clear_flags();
    int ternary = mpfr_strtofr(x, text, NULL, 0, MPFR_RNDZ);
    int rc;
    out->sign = text[0] == '-';
    if (mpfr_overflow_p()) {
        rc = set_single(out, 1, k_exp_limit);
        out->sticky = true;
    } else if (mpfr_underflow_p()) {
        rc = set_single(out, 1, -k_exp_limit);
        out->sticky = true;
    } else {
        rc = set_from_mpfr(out, x, ternary != 0);
    }
    mpfr_clear(x);
    mpfr_set_emin(emin);
    mpfr_set_emax(emax);
    return rc;
}

int cli_parse_real(const char *cmd, const char *text, cli_real *out) {
    memset(out, 0, sizeof *out);
    if (parse_special(text, out)) return CLI_OK;
    if (!valid_number(text))
        return cli_usage_error("%s: malformed number '%s' (expected decimal like 0.1 or 1e-40, "
                               "hex float like 0x1.8p-3, inf or nan)",
                               cmd, text);
    int rc = parse_with_mpfr(text, out);
    if (rc != CLI_OK) return cli_fail("%s: out of memory while parsing '%s'", cmd, text);
    return CLI_OK;
}

void cli_real_free(cli_real *r) {
    free(r->limbs);
    r->limbs = NULL;
    r->nlimbs = 0;
}

int cli_real_encode(fp4_format f, const cli_real *r, const fp4_cvt_opts *o, uint64_t *code,
                    unsigned *flags) {
    if (r->cls == FP4_CLASS_FINITE)
        return fp4_encode_bigint(f, r->sign, r->limbs, r->nlimbs, r->exp, o, code, flags);
    fp4_value v = {r->cls, r->sign, 0, 0};
    return fp4_encode_value(f, &v, o, code, flags);
}

int cli_parse_code(const char *cmd, fp4_format f, const char *text, uint64_t *code) {
    const fp4_format_info *fi = fp4_format_get(f);
    uint64_t ncodes = fp4_format_ncodes(f); /* 0 stands for 2^64 (f64) */
    char what[48];
    snprintf(what, sizeof what, "%s code", fi->name);
    return cli_parse_uint(cmd, what, text, 0, ncodes ? ncodes - 1 : UINT64_MAX, code);
}
