/* cmd_convert.c - `fp4sim convert`: round values into formats and show the
 * code, its bits, its exact value, the ternary and the flags. */
#include "args.h"
#include "commands.h"
#include "parse_value.h"
#include "render.h"

#include <stdlib.h>
#include <string.h>

static const char k_help[] =
    "usage: fp4sim convert [options] VALUE...\n"
    "\n"
    "Rounds each VALUE into each target format and prints the code, its bits\n"
    "(sign|exponent|mantissa), the exact decimal value, sig*2^exp, the ternary\n"
    "(MPFR convention: 'rounded up' = result above the input) and the flags.\n"
    "\n"
    "VALUE is an exact real number: decimal of any length (0.1, 1e-40,\n"
    "123456789012345678901234567890), C99 hex float (0x1.8p-3), inf, -inf, nan,\n"
    "-nan. With --from FMT it is a code of FMT instead (0x7e or 126).\n"
    "\n"
    "options:\n"
    "  --from FMT            read VALUEs as codes of FMT\n"
    "  --to FMT[,FMT...]     target formats, or 'all' (default: e2m1,e2m3,e3m2,\n"
    "                        e4m3,ue4m3,e5m2,ue8m0,f16,bf16,f32)\n"
    "  --round MODE          rne (default), rna, rz, ru, rd, rs\n"
    "  --policy POLICY       satfinite (default), nosat, ml_dtypes, cutlass-host,\n"
    "                        modelopt\n"
    "  --rbits N             random bits for --round rs (default 0)\n"
    "  --rbits-width K       how many of them are used, 1..32 (default: PTX's\n"
    "                        width for the target: 16 bf16, 13 f16, 8 otherwise)\n"
    "  --daz                 subnormal inputs read as zero (only with --from)\n"
    "  --ftz                 subnormal results flushed to zero\n"
    "  --relu                negative results become +0 (PTX .relu)\n"
    "  --tininess-after      underflow flag: tiny after rounding (default: before)\n"
    "  --json                JSON array, one object per (value, format)\n"
    "\n"
    "formats: e2m1, e2m3, e3m2, e4m3, ue4m3, e5m2, ue8m0, f16, bf16, f32, f64\n"
    "(aliases such as fp4, e4m3fn, float8_e4m3fn, half, bfloat16 also work).\n";

enum { MAX_TARGETS = 64 };

typedef struct convert_input {
    const char *text;
    uint64_t code; /* with --from */
    cli_real real; /* without --from */
} convert_input;

typedef struct convert_state {
    bool have_from, json;
    fp4_format from;
    fp4_format to[MAX_TARGETS];
    int nto;
    fp4_cvt_opts opts;
    const char **values;
    int nvalues;
} convert_state;

/* ------------------------------------------------------------------------ */
/* Options                                                                   */
/* ------------------------------------------------------------------------ */

static int opt_from(void *s, const char *name, const char *v) {
    convert_state *st = s;
    st->have_from = true;
    return cli_parse_format("convert", name, v, &st->from);
}

static int opt_to(void *s, const char *name, const char *v) {
    convert_state *st = s;
    return cli_parse_format_list("convert", name, v, st->to, MAX_TARGETS, &st->nto);
}

static int opt_round(void *s, const char *name, const char *v) {
    return cli_parse_round("convert", name, v, &((convert_state *)s)->opts.round);
}

static int opt_policy(void *s, const char *name, const char *v) {
    return cli_parse_policy("convert", name, v, &((convert_state *)s)->opts.policy);
}

static int opt_rbits(void *s, const char *name, const char *v) {
    uint64_t x;
    int rc = cli_parse_uint("convert", name, v, 0, UINT32_MAX, &x);
    ((convert_state *)s)->opts.rbits = (uint32_t)x;
    return rc;
}

static int opt_rbits_width(void *s, const char *name, const char *v) {
    uint64_t x;
    int rc = cli_parse_uint("convert", name, v, 1, 32, &x);
    ((convert_state *)s)->opts.rbits_width = (int)x;
    return rc;
}

static int set_option_bit(void *s, unsigned bit) {
    ((convert_state *)s)->opts.options |= bit;
    return CLI_OK;
}
static int opt_daz(void *s, const char *n, const char *v) { return set_option_bit(s, FP4_OPT_DAZ); }
static int opt_ftz(void *s, const char *n, const char *v) { return set_option_bit(s, FP4_OPT_FTZ); }
static int opt_relu(void *s, const char *n, const char *v) {
    return set_option_bit(s, FP4_OPT_RELU);
}
static int opt_tininess_after(void *s, const char *n, const char *v) {
    return set_option_bit(s, FP4_OPT_TININESS_AFTER);
}

static int opt_json(void *s, const char *n, const char *v) {
    ((convert_state *)s)->json = true;
    return CLI_OK;
}

static int add_value(void *s, const char *arg) {
    convert_state *st = s;
    st->values[st->nvalues++] = arg;
    return CLI_OK;
}

static const cli_opt k_opts[] = {
    {"--from", true, opt_from},      {"--to", true, opt_to},
    {"--round", true, opt_round},    {"--policy", true, opt_policy},
    {"--rbits", true, opt_rbits},    {"--rbits-width", true, opt_rbits_width},
    {"--daz", false, opt_daz},       {"--ftz", false, opt_ftz},
    {"--relu", false, opt_relu},     {"--json", false, opt_json},
    {"--tininess-after", false, opt_tininess_after},
};

static void default_targets(convert_state *st) {
    static const fp4_format k_default[] = {FP4_FMT_E2M1, FP4_FMT_E2M3, FP4_FMT_E3M2,
                                           FP4_FMT_E4M3, FP4_FMT_UE4M3, FP4_FMT_E5M2,
                                           FP4_FMT_UE8M0, FP4_FMT_F16,  FP4_FMT_BF16,
                                           FP4_FMT_F32};
    st->nto = (int)(sizeof k_default / sizeof k_default[0]);
    memcpy(st->to, k_default, sizeof k_default);
}

/* ------------------------------------------------------------------------ */
/* Inputs                                                                    */
/* ------------------------------------------------------------------------ */

/* Parses every VALUE before anything is printed, so a bad one leaves stdout
 * empty and stderr with its single line. */
static int parse_inputs(const convert_state *st, convert_input *in) {
    for (int i = 0; i < st->nvalues; i++) {
        in[i].text = st->values[i];
        int rc = st->have_from ? cli_parse_code("convert", st->from, in[i].text, &in[i].code)
                               : cli_parse_real("convert", in[i].text, &in[i].real);
        if (rc != CLI_OK) return rc;
    }
    return CLI_OK;
}

static void free_inputs(convert_input *in, int n) {
    for (int i = 0; i < n; i++) cli_real_free(&in[i].real);
}

typedef struct convert_result {
    fp4_format f;
    uint64_t code;
    int ternary;
    unsigned flags;
} convert_result;

static convert_result convert_one(const convert_state *st, const convert_input *in, fp4_format f) {
    convert_result r = {f, 0, 0, 0};
    if (st->have_from)
        r.ternary = fp4_convert(f, st->from, in->code, &st->opts, &r.code, &r.flags);
    else
        r.ternary = cli_real_encode(f, &in->real, &st->opts, &r.code, &r.flags);
    return r;
}

/* ------------------------------------------------------------------------ */
/* Output                                                                    */
/* ------------------------------------------------------------------------ */

/* The strings shown for one result; decimal and sig_exp are malloc'd. */
typedef struct result_text {
    char hex[24], bits[80], flags[96];
    char *decimal, *sig_exp;
} result_text;

static int render_result(const convert_result *r, result_text *t) {
    fp4_value v = fp4_decode(r->f, r->code);
    cli_code_hex(r->f, r->code, t->hex, sizeof t->hex);
    cli_code_bits(r->f, r->code, t->bits, sizeof t->bits);
    cli_flag_names(r->flags, t->flags, sizeof t->flags);
    t->decimal = cli_value_decimal(&v);
    t->sig_exp = cli_value_sig_exp(&v);
    return (t->decimal && t->sig_exp) ? CLI_OK : CLI_FAIL;
}

static void free_result_text(result_text *t) {
    free(t->decimal);
    free(t->sig_exp);
}

static cJSON *result_json(const convert_state *st, const convert_input *in,
                          const convert_result *r, const result_text *t) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "input", in->text);
    if (st->have_from) cJSON_AddStringToObject(o, "from", fp4_format_get(st->from)->name);
    cJSON_AddStringToObject(o, "format", fp4_format_get(r->f)->name);
    cJSON_AddStringToObject(o, "code", t->hex);
    cJSON_AddStringToObject(o, "bits", t->bits);
    cJSON_AddStringToObject(o, "value", t->decimal);
    cJSON_AddStringToObject(o, "sig_exp", t->sig_exp);
    cJSON_AddStringToObject(o, "ternary", cli_ternary_name(r->ternary));
    cJSON_AddNumberToObject(o, "ternary_value", r->ternary > 0 ? 1 : r->ternary < 0 ? -1 : 0);
    cJSON_AddItemToObject(o, "flags", cli_flags_json(r->flags));
    cJSON_AddStringToObject(o, "round", fp4_round_name(st->opts.round));
    cJSON_AddStringToObject(o, "policy", fp4_policy_name(st->opts.policy));
    return o;
}

static int add_json_rows(const convert_state *st, const convert_input *in, cJSON *arr) {
    for (int k = 0; k < st->nto; k++) {
        convert_result r = convert_one(st, in, st->to[k]);
        result_text t;
        int rc = render_result(&r, &t);
        if (rc == CLI_OK) rc = cJSON_AddItemToArray(arr, result_json(st, in, &r, &t)) ? 0 : 1;
        free_result_text(&t);
        if (rc != CLI_OK) return CLI_FAIL;
    }
    return CLI_OK;
}

static int print_json(const convert_state *st, const convert_input *in) {
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; arr && i < st->nvalues; i++)
        if (add_json_rows(st, &in[i], arr) != CLI_OK) {
            cJSON_Delete(arr);
            arr = NULL;
        }
    return cli_json_print(arr);
}

/* "input 0.1" or, with --from, "input e4m3 0x7e = 448". */
static int print_input_header(const convert_state *st, const convert_input *in) {
    if (!st->have_from) return printf("input %s\n", in->text) < 0 ? CLI_FAIL : CLI_OK;
    fp4_value v = fp4_decode(st->from, in->code);
    char hex[24];
    char *dec = cli_value_decimal(&v);
    if (!dec) return CLI_FAIL;
    cli_code_hex(st->from, in->code, hex, sizeof hex);
    printf("input %s %s = %s\n", fp4_format_get(st->from)->name, hex, dec);
    free(dec);
    return CLI_OK;
}

static int add_text_row(cli_table *tab, const convert_result *r) {
    result_text t;
    int rc = render_result(r, &t);
    if (rc == CLI_OK) {
        const char *cells[] = {fp4_format_get(r->f)->name, t.hex, t.bits, t.decimal, t.sig_exp,
                               cli_ternary_name(r->ternary), t.flags};
        rc = cli_table_add(tab, cells) == 0 ? CLI_OK : CLI_FAIL;
    }
    free_result_text(&t);
    return rc;
}

static int print_text_one(const convert_state *st, const convert_input *in) {
    static const char *const k_head[] = {"format", "code", "bits", "value",
                                         "sig*2^exp", "ternary", "flags"};
    cli_table tab;
    cli_table_init(&tab, 7);
    int rc = cli_table_add(&tab, k_head) == 0 ? CLI_OK : CLI_FAIL;
    for (int k = 0; rc == CLI_OK && k < st->nto; k++) {
        convert_result r = convert_one(st, in, st->to[k]);
        rc = add_text_row(&tab, &r);
    }
    if (rc == CLI_OK) rc = print_input_header(st, in);
    if (rc == CLI_OK) cli_table_print(&tab, stdout, "  ");
    cli_table_free(&tab);
    return rc;
}

static int print_text(const convert_state *st, const convert_input *in) {
    printf("round %s, policy %s\n", fp4_round_name(st->opts.round),
           fp4_policy_name(st->opts.policy));
    for (int i = 0; i < st->nvalues; i++) {
        int rc = print_text_one(st, &in[i]);
        if (rc != CLI_OK) return cli_fail("convert: out of memory");
    }
    return CLI_OK;
}

/* ------------------------------------------------------------------------ */

static int run(convert_state *st) {
    convert_input *in = calloc((size_t)st->nvalues, sizeof *in);
    if (!in) return cli_fail("convert: out of memory");
    int rc = parse_inputs(st, in);
    if (rc == CLI_OK) rc = st->json ? print_json(st, in) : print_text(st, in);
    free_inputs(in, st->nvalues);
    free(in);
    return rc;
}

int cli_cmd_convert(int argc, char **argv) {
    convert_state st = {.opts = fp4_cvt_opts_default()};
    default_targets(&st);
    st.values = calloc((size_t)argc, sizeof *st.values);
    if (!st.values) return cli_fail("convert: out of memory");
    int rc = cli_parse(argc, argv, "convert", k_opts, sizeof k_opts / sizeof k_opts[0], &st,
                       add_value);
    if (rc == CLI_OK && st.nvalues == 0)
        rc = cli_usage_error("convert: no VALUE given (e.g. fp4sim convert 0.3 or "
                             "fp4sim convert --from e4m3 0x7e)");
    if (rc == CLI_HELP) rc = fputs(k_help, stdout) < 0 ? CLI_FAIL : CLI_OK;
    else if (rc == CLI_OK) rc = run(&st);
    free(st.values);
    return rc;
}
