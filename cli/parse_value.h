/* parse_value.h - exact reading of the numbers given on the command line.
 *
 * A decimal or hexadecimal number is a real number, not a double: "0.1" is
 * one tenth, and a 40-digit decimal a hair above an E2M1 tie must round up
 * even though the nearest double is the tie itself. cli_parse_real keeps
 * enough of the value, exactly, to round it correctly into any fp4sim format.
 */
#ifndef FP4SIM_CLI_PARSE_VALUE_H
#define FP4SIM_CLI_PARSE_VALUE_H

#include "fp4ref.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A parsed real: for FINITE, |x| is (or, when `sticky`, lies strictly
 * between L*2^exp and the neighbouring values that no fp4sim format can tell
 * apart from it) L * 2^exp with L the little-endian 64-bit limbs. */
typedef struct cli_real {
    fp4_class cls; /* ZERO, FINITE, INF or NAN */
    int sign;      /* 0 or 1 (also for -0, -inf, -nan) */
    uint64_t *limbs;
    size_t nlimbs;
    int64_t exp;
    bool sticky; /* the text had more precision than kept: L ends in a sticky 1 bit */
} cli_real;

/* Parses text as [+-]digits[.digits][e[+-]digits], [+-]0x hex[.hex][p[+-]digits],
 * or [+-]inf / infinity / nan (any case). Returns CLI_OK, CLI_USAGE (message
 * printed, naming cmd and the text) or CLI_FAIL. */
int cli_parse_real(const char *cmd, const char *text, cli_real *out);
void cli_real_free(cli_real *r);

/* Rounds the real into format f: the ternary, as fp4_encode_*. */
int cli_real_encode(fp4_format f, const cli_real *r, const fp4_cvt_opts *o, uint64_t *code,
                    unsigned *flags);

/* Parses a code of format f (decimal or 0x-hex); out-of-range codes are a
 * usage error that names the format's range. */
int cli_parse_code(const char *cmd, fp4_format f, const char *text, uint64_t *code);

#endif
