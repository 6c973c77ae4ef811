/* args.h - the CLI's shared argument handling.
 *
 * Every subcommand describes its options as a table of cli_opt and hands it
 * to cli_parse, which walks argv once. Errors are reported the same way
 * everywhere: one line "fp4sim: <command>: <what>" on stderr and exit status
 * 2 (CLI_USAGE), so scripts can tell a bad call from an internal failure
 * (CLI_FAIL, 1).
 */
#ifndef FP4SIM_CLI_ARGS_H
#define FP4SIM_CLI_ARGS_H

#include "fp4ref.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exit statuses; CLI_HELP is internal: "--help was seen, print help, exit 0". */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2, CLI_HELP = 3 };

/* Prints "fp4sim: <message>" as one line on stderr and returns CLI_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Same wording, for internal failures (out of memory, library errors):
 * returns CLI_FAIL. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A library call failed: prints "fp4sim: <fmt>: <fp4_last_error()>" as one
 * line and returns the exit status its kind calls for (docs/cli.md): 2 for
 * bad input or arguments (FP4_ERR_INPUT), 1 for everything else (I/O, out of
 * memory, unsupported, internal). The one mapping of errors to exit codes. */
int cli_lib_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One option of a subcommand. apply() receives the command's state, the
 * option name as written in the table and its value (NULL for flags); it
 * returns CLI_OK or an exit status (after printing the error). */
typedef struct cli_opt {
    const char *name; /* "--to" */
    bool takes_value;
    int (*apply)(void *state, const char *name, const char *value);
} cli_opt;

/* Parses argv[1..argc) of subcommand `cmd` (argv[0] is its name).
 * Options are "--name VALUE", "--name=VALUE" or "--name"; "--" ends the
 * options; anything else (including "-0.5" or "-inf") is positional and goes
 * to positional(). Returns CLI_OK, CLI_HELP for --help/-h, or an exit status
 * after printing the error. */
int cli_parse(int argc, char **argv, const char *cmd, const cli_opt *opts, size_t nopts,
              void *state, int (*positional)(void *state, const char *arg));

/* Value parsers: each prints "fp4sim: <cmd>: ..." naming `what` (the option
 * or argument being parsed) and returns CLI_USAGE on bad input, CLI_OK on
 * success. */
int cli_parse_format(const char *cmd, const char *what, const char *s, fp4_format *out);
/* "FMT[,FMT...]" (or "all" when all_ok: every format). *n receives the count;
 * at most max entries. */
int cli_parse_format_list(const char *cmd, const char *what, const char *s, fp4_format *out,
                          int max, int *n);
int cli_parse_round(const char *cmd, const char *what, const char *s, fp4_round *out);
int cli_parse_policy(const char *cmd, const char *what, const char *s, fp4_policy *out);
/* "P[,P...]" or "all" (the five policies in enum order). */
int cli_parse_policy_list(const char *cmd, const char *what, const char *s, fp4_policy *out,
                          int max, int *n);
/* Unsigned integer, decimal or 0x-hex, in [lo, hi]. */
int cli_parse_uint(const char *cmd, const char *what, const char *s, uint64_t lo, uint64_t hi,
                   uint64_t *out);

/* Comma-separated names of the rounding modes / policies, for messages. */
const char *cli_round_names(void);
const char *cli_policy_names(void);

#endif
