/* render.c - shared text and JSON renderings of codes, values and flags. */
#include "render.h"

#include "args.h"

#include <stdlib.h>
#include <string.h>

void cli_code_hex(fp4_format f, uint64_t code, char *buf, size_t n) {
    const fp4_format_info *fi = fp4_format_get(f);
    int digits = fi ? (fi->bits + 3) / 4 : 1;
    snprintf(buf, n, "0x%0*llx", digits, (unsigned long long)code);
}

/* Appends `width` bits of `field` (MSB first) at buf[*k], bounded by n. */
static void put_bits(char *buf, size_t n, size_t *k, uint64_t field, int width) {
    for (int b = width - 1; b >= 0 && *k + 1 < n; b--) buf[(*k)++] = ((field >> b) & 1) ? '1' : '0';
    buf[*k < n ? *k : n - 1] = '\0';
}

static void put_sep(char *buf, size_t n, size_t *k) {
    if (*k + 1 < n) buf[(*k)++] = '|';
    buf[*k < n ? *k : n - 1] = '\0';
}

void cli_code_bits(fp4_format f, uint64_t code, char *buf, size_t n) {
    const fp4_format_info *fi = fp4_format_get(f);
    size_t k = 0;
    if (!fi || n == 0) return;
    buf[0] = '\0';
    uint64_t mmask = fi->mbits >= 64 ? ~0ull : (1ull << fi->mbits) - 1;
    uint64_t emask = (1ull << fi->ebits) - 1;
    if (fi->is_signed) {
        put_bits(buf, n, &k, code >> (fi->bits - 1), 1);
        put_sep(buf, n, &k);
    }
    put_bits(buf, n, &k, (code >> fi->mbits) & emask, fi->ebits);
    if (fi->mbits > 0) {
        put_sep(buf, n, &k);
        put_bits(buf, n, &k, code & mmask, fi->mbits);
    }
}

const char *cli_code_class(fp4_format f, uint64_t code) {
    const fp4_format_info *fi = fp4_format_get(f);
    fp4_value v = fp4_decode(f, code);
    switch (v.cls) {
    case FP4_CLASS_ZERO: return "zero";
    case FP4_CLASS_INF: return "inf";
    case FP4_CLASS_NAN: return "nan";
    default: break;
    }
    /* Finite non-zero: subnormal when the exponent field is zero. */
    uint64_t efield = (code >> fi->mbits) & ((1ull << fi->ebits) - 1);
    return (fi->has_subnormals && efield == 0) ? "subnormal" : "normal";
}

/* Runs a snprintf-style renderer twice: once to size, once to fill. */
static char *render_alloc(int (*render)(const fp4_value *, char *, size_t), const fp4_value *v) {
    int len = render(v, NULL, 0);
    if (len < 0) return NULL;
    char *s = malloc((size_t)len + 1);
    if (s) render(v, s, (size_t)len + 1);
    return s;
}

char *cli_value_decimal(const fp4_value *v) { return render_alloc(fp4_value_to_string, v); }

char *cli_value_sig_exp(const fp4_value *v) {
    return render_alloc(fp4_value_to_sig_exp_string, v);
}

const char *cli_ternary_name(int ternary) {
    return ternary > 0 ? "rounded up" : ternary < 0 ? "rounded down" : "exact";
}

static const struct {
    unsigned bit;
    const char *name;
} k_flags[] = {
    {FP4_FLAG_INEXACT, "inexact"},     {FP4_FLAG_UNDERFLOW, "underflow"},
    {FP4_FLAG_OVERFLOW, "overflow"},   {FP4_FLAG_DIVBYZERO, "divbyzero"},
    {FP4_FLAG_INVALID, "invalid"},     {FP4_FLAG_SATURATED, "saturated"},
    {FP4_FLAG_FLUSHED, "flushed"},
};
enum { NFLAGS = sizeof k_flags / sizeof k_flags[0] };

void cli_flag_names(unsigned flags, char *buf, size_t n) {
    size_t k = 0;
    snprintf(buf, n, "-");
    for (int i = 0; i < NFLAGS && k < n; i++)
        if (flags & k_flags[i].bit)
            k += (size_t)snprintf(buf + k, n - k, "%s%s", k ? "," : "", k_flags[i].name);
}

cJSON *cli_flags_json(unsigned flags) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < NFLAGS; i++)
        if (flags & k_flags[i].bit) cJSON_AddItemToArray(a, cJSON_CreateString(k_flags[i].name));
    return a;
}

/* ------------------------------------------------------------------------ */
/* Tables                                                                    */
/* ------------------------------------------------------------------------ */

void cli_table_init(cli_table *t, int ncols) {
    t->ncols = ncols;
    t->nrows = t->cap = 0;
    t->cells = NULL;
}

static int table_grow(cli_table *t) {
    size_t cap = t->cap ? 2 * t->cap : 16;
    char **cells = realloc(t->cells, cap * (size_t)t->ncols * sizeof *cells);
    if (!cells) return -1;
    t->cells = cells;
    t->cap = cap;
    return 0;
}

int cli_table_add(cli_table *t, const char *const *cells) {
    if (t->nrows == t->cap && table_grow(t) != 0) return -1;
    char **row = t->cells + t->nrows * (size_t)t->ncols;
    for (int c = 0; c < t->ncols; c++) {
        row[c] = strdup(cells[c] ? cells[c] : "");
        if (!row[c]) {
            while (c-- > 0) free(row[c]);
            return -1;
        }
    }
    t->nrows++;
    return 0;
}

void cli_table_print(const cli_table *t, FILE *out, const char *indent) {
    size_t width[16] = {0};
    int ncols = t->ncols < 16 ? t->ncols : 16;
    for (size_t r = 0; r < t->nrows; r++)
        for (int c = 0; c < ncols; c++) {
            size_t len = strlen(t->cells[r * (size_t)t->ncols + c]);
            if (len > width[c]) width[c] = len;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        fputs(indent ? indent : "", out);
        for (int c = 0; c < ncols; c++) {
            const char *cell = t->cells[r * (size_t)t->ncols + c];
            if (c + 1 < ncols) fprintf(out, "%-*s  ", (int)width[c], cell);
            else fputs(cell, out); /* last column: no trailing blanks */
        }
        fputc('\n', out);
    }
}

void cli_table_free(cli_table *t) {
    for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++) free(t->cells[i]);
    free(t->cells);
    cli_table_init(t, t->ncols);
}

cJSON *cli_json_number(double x) {
    if (x == x && x - x == 0) return cJSON_CreateNumber(x); /* finite */
    return cJSON_CreateString(x != x ? "nan" : x > 0 ? "inf" : "-inf");
}

int cli_json_print(cJSON *root) {
    char *text = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text) return cli_fail("out of memory while writing JSON");
    puts(text);
    free(text);
    return CLI_OK;
}
