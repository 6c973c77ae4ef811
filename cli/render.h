/* render.h - how the CLI shows codes, values, flags and tables, in text and
 * in JSON, so every subcommand spells the same thing the same way. */
#ifndef FP4SIM_CLI_RENDER_H
#define FP4SIM_CLI_RENDER_H

#include "fp4ref.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>

/* "0x7e": lower-case hex, as many digits as the format's width needs. */
void cli_code_hex(fp4_format f, uint64_t code, char *buf, size_t n);
/* Bit fields "sign|exponent|mantissa", e.g. "0|10|1" for E2M1 0x5; unsigned
 * formats have no sign field and UE8M0 no mantissa field. */
void cli_code_bits(fp4_format f, uint64_t code, char *buf, size_t n);
/* "zero", "subnormal", "normal", "inf" or "nan" (from the code's fields). */
const char *cli_code_class(fp4_format f, uint64_t code);

/* Exact decimal / "sig*2^exp" renderings; malloc'd (the decimal of an FP64
 * subnormal has over a thousand digits). NULL when out of memory. */
char *cli_value_decimal(const fp4_value *v);
char *cli_value_sig_exp(const fp4_value *v);

/* MPFR convention: "rounded up" when the result is above the input. */
const char *cli_ternary_name(int ternary);
/* "inexact,underflow" or "-" for no flags. */
void cli_flag_names(unsigned flags, char *buf, size_t n);
/* The same as a JSON array of strings. */
cJSON *cli_flags_json(unsigned flags);

/* Aligned text table: columns padded to their widest cell, two spaces
 * apart, no trailing blanks. Cells are copied. */
typedef struct cli_table {
    int ncols;
    size_t nrows, cap;
    char **cells; /* nrows * ncols */
} cli_table;

void cli_table_init(cli_table *t, int ncols);
/* Returns 0, or -1 when out of memory. */
int cli_table_add(cli_table *t, const char *const *cells);
void cli_table_print(const cli_table *t, FILE *out, const char *indent);
void cli_table_free(cli_table *t);

/* A number for JSON output: finite values as numbers, and NaN / infinities
 * spelled the one way every fp4sim JSON output uses: the strings "nan",
 * "inf" and "-inf" (JSON has no such numbers). */
cJSON *cli_json_number(double x);

/* Prints a JSON tree (indented) to stdout and deletes it. NULL root means an
 * allocation failed while building it: CLI_FAIL. */
int cli_json_print(cJSON *root);

#endif
