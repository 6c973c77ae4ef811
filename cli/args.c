/* args.c - option table walker and the value parsers shared by subcommands. */
#include "args.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Messages                                                                  */
/* ------------------------------------------------------------------------ */

/* Formats the message and prints it as exactly one line: arguments echoed
 * back may contain newlines or other control characters, which would break
 * the "one line on stderr" contract scripts rely on, so they become '?'.
 * Very long echoes (a megabyte-long number) are cut, marked with "...". */
static void print_one_line(const char *fmt, va_list ap) {
    char buf[1024];
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    if (n >= (int)sizeof buf) memcpy(buf + sizeof buf - 4, "...", 4);
    for (char *p = buf; *p; p++)
        if (iscntrl((unsigned char)*p)) *p = '?';
    fprintf(stderr, "fp4sim: %s\n", buf);
}

int cli_usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    print_one_line(fmt, ap);
    va_end(ap);
    return CLI_USAGE;
}

int cli_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    print_one_line(fmt, ap);
    va_end(ap);
    return CLI_FAIL;
}

int cli_lib_error(const char *fmt, ...) {
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    const char *msg = fp4_last_error();
    if (!msg[0]) {
        cli_fail("%s: failed without a message (a bug: please report it)", prefix);
        return CLI_FAIL;
    }
    if (prefix[0]) cli_fail("%s: %s", prefix, msg);
    else cli_fail("%s", msg);
    return fp4_last_error_kind() == FP4_ERR_INPUT ? CLI_USAGE : CLI_FAIL;
}

/* ------------------------------------------------------------------------ */
/* Option walker                                                             */
/* ------------------------------------------------------------------------ */

/* "--name" or "--name=value" matches table entry `name`; *value points past
 * the '=' (NULL if there is none). */
static bool option_matches(const char *arg, const char *name, const char **value) {
    size_t len = strlen(name);
    if (strncmp(arg, name, len) != 0) return false;
    if (arg[len] == '\0') {
        *value = NULL;
        return true;
    }
    if (arg[len] == '=') {
        *value = arg + len + 1;
        return true;
    }
    return false;
}

/* Lists the valid options of a command into buf, for "unknown option". */
static void option_list(const cli_opt *opts, size_t nopts, char *buf, size_t n) {
    size_t k = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < nopts && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%s", i ? ", " : "", opts[i].name);
    if (k < n) snprintf(buf + k, n - k, "%s--help", nopts ? ", " : "");
}

/* Applies one option argument at argv[*i]; advances *i past its value. */
static int apply_option(int argc, char **argv, int *i, const char *cmd, const cli_opt *opts,
                        size_t nopts, void *state) {
    const char *arg = argv[*i];
    for (size_t k = 0; k < nopts; k++) {
        const char *value = NULL;
        if (!option_matches(arg, opts[k].name, &value)) continue;
        if (!opts[k].takes_value) {
            if (value) return cli_usage_error("%s: option %s takes no value", cmd, opts[k].name);
            return opts[k].apply(state, opts[k].name, NULL);
        }
        if (!value) {
            if (*i + 1 >= argc)
                return cli_usage_error("%s: option %s needs a value", cmd, opts[k].name);
            value = argv[++*i];
        }
        return opts[k].apply(state, opts[k].name, value);
    }
    char valid[512];
    option_list(opts, nopts, valid, sizeof valid);
    return cli_usage_error("%s: unknown option '%s' (valid: %s)", cmd, arg, valid);
}

/* Options start with "--" (a lone "-x" is left to the positional parser,
 * where "-0.5" and "-inf" are values). */
static bool looks_like_option(const char *arg) { return arg[0] == '-' && arg[1] == '-'; }

int cli_parse(int argc, char **argv, const char *cmd, const cli_opt *opts, size_t nopts,
              void *state, int (*positional)(void *state, const char *arg)) {
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        int rc;
        if (!options_done && strcmp(arg, "--") == 0) {
            options_done = true;
            continue;
        }
        if (!options_done && (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0))
            return CLI_HELP;
        if (!options_done && looks_like_option(arg))
            rc = apply_option(argc, argv, &i, cmd, opts, nopts, state);
        else if (positional)
            rc = positional(state, arg);
        else
            rc = cli_usage_error("%s: unexpected argument '%s'", cmd, arg);
        if (rc != CLI_OK) return rc;
    }
    return CLI_OK;
}

/* ------------------------------------------------------------------------ */
/* Value parsers                                                             */
/* ------------------------------------------------------------------------ */

const char *cli_round_names(void) { return "rne, rna, rz, ru, rd, rs"; }

const char *cli_policy_names(void) {
    return "satfinite, nosat, ml_dtypes, cutlass-host, modelopt";
}

int cli_parse_format(const char *cmd, const char *what, const char *s, fp4_format *out) {
    if (fp4_format_from_name(s, out) == 0) return CLI_OK;
    return cli_usage_error("%s: unknown format '%s' for %s (valid: %s)", cmd, s, what,
                           fp4_format_names());
}

int cli_parse_round(const char *cmd, const char *what, const char *s, fp4_round *out) {
    if (fp4_round_from_name(s, out) == 0) return CLI_OK;
    return cli_usage_error("%s: unknown rounding mode '%s' for %s (valid: %s)", cmd, s, what,
                           cli_round_names());
}

int cli_parse_policy(const char *cmd, const char *what, const char *s, fp4_policy *out) {
    if (fp4_policy_from_name(s, out) == 0) return CLI_OK;
    return cli_usage_error("%s: unknown policy '%s' for %s (valid: %s)", cmd, s, what,
                           cli_policy_names());
}

/* Splits a comma list and calls parse_one(item, index) for each item; items
 * are copied into a bounded buffer because argv strings stay untouched. */
typedef int (*item_parser)(const char *cmd, const char *what, const char *item, void *out,
                           int index);

static int parse_list(const char *cmd, const char *what, const char *s, int max, int *n,
                      item_parser parse_one, void *out) {
    char item[64];
    *n = 0;
    for (const char *p = s;; p++) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0) return cli_usage_error("%s: empty name in list '%s' for %s", cmd, s, what);
        if (*n >= max) return cli_usage_error("%s: too many names in '%s' for %s", cmd, s, what);
        if (len >= sizeof item) len = sizeof item - 1; /* cut: it is unknown anyway */
        memcpy(item, p, len);
        item[len] = '\0';
        int rc = parse_one(cmd, what, item, out, (*n)++);
        if (rc != CLI_OK) return rc;
        if (!end) return CLI_OK;
        p = end;
    }
}

static int format_item(const char *cmd, const char *what, const char *item, void *out, int i) {
    return cli_parse_format(cmd, what, item, (fp4_format *)out + i);
}

static int policy_item(const char *cmd, const char *what, const char *item, void *out, int i) {
    return cli_parse_policy(cmd, what, item, (fp4_policy *)out + i);
}

static bool is_all(const char *s) { return strcmp(s, "all") == 0; }

int cli_parse_format_list(const char *cmd, const char *what, const char *s, fp4_format *out,
                          int max, int *n) {
    if (!is_all(s)) return parse_list(cmd, what, s, max, n, format_item, out);
    *n = 0;
    for (int f = 0; f < FP4_FMT_COUNT && *n < max; f++) out[(*n)++] = (fp4_format)f;
    return CLI_OK;
}

int cli_parse_policy_list(const char *cmd, const char *what, const char *s, fp4_policy *out,
                          int max, int *n) {
    if (!is_all(s)) return parse_list(cmd, what, s, max, n, policy_item, out);
    *n = 0;
    for (int p = 0; p < FP4_POLICY_COUNT && *n < max; p++) out[(*n)++] = (fp4_policy)p;
    return CLI_OK;
}

/* Strict: digits only (after an optional 0x), no sign, no spaces, no
 * trailing junk, no overflow - strtoull alone accepts " -1" as 2^64-1. */
int cli_parse_uint(const char *cmd, const char *what, const char *s, uint64_t lo, uint64_t hi,
                   uint64_t *out) {
    bool hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
    const char *digits = hex ? s + 2 : s;
    bool ok = *digits != '\0';
    for (const char *p = digits; *p && ok; p++)
        ok = hex ? isxdigit((unsigned char)*p) != 0 : isdigit((unsigned char)*p) != 0;
    if (!ok) return cli_usage_error("%s: malformed integer '%s' for %s", cmd, s, what);
    errno = 0;
    *out = (uint64_t)strtoull(digits, NULL, hex ? 16 : 10);
    if (errno != ERANGE && *out >= lo && *out <= hi) return CLI_OK;
    if (hex) /* answer in the base the user wrote */
        return cli_usage_error("%s: %s %s out of range [0x%" PRIx64 ", 0x%" PRIx64 "]", cmd, what,
                               s, lo, hi);
    return cli_usage_error("%s: %s %s out of range [%" PRIu64 ", %" PRIu64 "]", cmd, what, s, lo,
                           hi);
}
