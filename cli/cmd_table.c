/* cmd_table.c - `fp4sim table FORMAT`: every code of a format with its bits,
 * class and exact value. */
#include "args.h"
#include "commands.h"
#include "render.h"

#include <stdlib.h>

static const char k_help[] =
    "usage: fp4sim table FORMAT [--json]\n"
    "\n"
    "Lists every code of FORMAT in increasing code order: code (hex), bits\n"
    "(sign|exponent|mantissa), class (zero, subnormal, normal, inf, nan), exact\n"
    "decimal value and sig*2^exp. FORMAT has at most 16 bits: e2m1, e2m3, e3m2,\n"
    "e4m3, ue4m3, e5m2, ue8m0, f16, bf16.\n"
    "\n"
    "options:\n"
    "  --json    JSON array, one object per code\n";

typedef struct table_state {
    bool json, have_format;
    fp4_format f;
} table_state;

static int opt_json(void *s, const char *n, const char *v) {
    ((table_state *)s)->json = true;
    return CLI_OK;
}

static int set_format(void *s, const char *arg) {
    table_state *st = s;
    if (st->have_format) return cli_usage_error("table: more than one FORMAT ('%s')", arg);
    st->have_format = true;
    return cli_parse_format("table", "FORMAT", arg, &st->f);
}

static const cli_opt k_opts[] = {{"--json", false, opt_json}};

/* The strings of one row; decimal and sig_exp are malloc'd. */
typedef struct row_text {
    char hex[24], bits[40];
    const char *cls;
    char *decimal, *sig_exp;
} row_text;

static int render_row(fp4_format f, uint64_t code, row_text *t) {
    fp4_value v = fp4_decode(f, code);
    cli_code_hex(f, code, t->hex, sizeof t->hex);
    cli_code_bits(f, code, t->bits, sizeof t->bits);
    t->cls = cli_code_class(f, code);
    t->decimal = cli_value_decimal(&v);
    t->sig_exp = cli_value_sig_exp(&v);
    return (t->decimal && t->sig_exp) ? CLI_OK : CLI_FAIL;
}

static void free_row(row_text *t) {
    free(t->decimal);
    free(t->sig_exp);
}

static cJSON *row_json(fp4_format f, const row_text *t) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "format", fp4_format_get(f)->name);
    cJSON_AddStringToObject(o, "code", t->hex);
    cJSON_AddStringToObject(o, "bits", t->bits);
    cJSON_AddStringToObject(o, "class", t->cls);
    cJSON_AddStringToObject(o, "value", t->decimal);
    cJSON_AddStringToObject(o, "sig_exp", t->sig_exp);
    return o;
}

static int print_json(fp4_format f) {
    cJSON *arr = cJSON_CreateArray();
    for (uint64_t c = 0; arr && c < fp4_format_ncodes(f); c++) {
        row_text t;
        bool ok = render_row(f, c, &t) == CLI_OK && cJSON_AddItemToArray(arr, row_json(f, &t));
        free_row(&t);
        if (!ok) {
            cJSON_Delete(arr);
            arr = NULL;
        }
    }
    return cli_json_print(arr);
}

static int print_text(fp4_format f) {
    static const char *const k_head[] = {"code", "bits", "class", "value", "sig*2^exp"};
    cli_table tab;
    cli_table_init(&tab, 5);
    bool ok = cli_table_add(&tab, k_head) == 0;
    for (uint64_t c = 0; ok && c < fp4_format_ncodes(f); c++) {
        row_text t;
        ok = render_row(f, c, &t) == CLI_OK;
        const char *cells[] = {t.hex, t.bits, t.cls, t.decimal, t.sig_exp};
        ok = ok && cli_table_add(&tab, cells) == 0;
        free_row(&t);
    }
    if (ok) cli_table_print(&tab, stdout, "");
    cli_table_free(&tab);
    return ok ? CLI_OK : cli_fail("table: out of memory");
}

int cli_cmd_table(int argc, char **argv) {
    table_state st = {0};
    int rc = cli_parse(argc, argv, "table", k_opts, 1, &st, set_format);
    if (rc == CLI_HELP) return fputs(k_help, stdout) < 0 ? CLI_FAIL : CLI_OK;
    if (rc != CLI_OK) return rc;
    if (!st.have_format)
        return cli_usage_error("table: no FORMAT given (valid: %s)", fp4_format_names());
    const fp4_format_info *fi = fp4_format_get(st.f);
    if (fi->bits > 16)
        return cli_usage_error("table: %s has 2^%d codes, too many to list; table takes formats "
                               "of at most 16 bits (e2m1, e2m3, e3m2, e4m3, ue4m3, e5m2, ue8m0, "
                               "f16, bf16)",
                               fi->name, fi->bits);
    return st.json ? print_json(st.f) : print_text(st.f);
}
