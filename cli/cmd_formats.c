/* cmd_formats.c - `fp4sim formats`: the formats, rounding modes and
 * special-value policies fp4sim knows, each with where it comes from. */
#include "args.h"
#include "commands.h"
#include "render.h"

#include <stdlib.h>

static const char k_help[] =
    "usage: fp4sim formats [--json]\n"
    "\n"
    "Lists the number formats (bits, exponent/mantissa widths, bias, largest\n"
    "finite value, smallest normal and subnormal, Inf/NaN encodings, evidence),\n"
    "the rounding modes and the special-value policies with their evidence.\n"
    "\n"
    "options:\n"
    "  --json    one JSON object {formats, rounding_modes, policies}\n";

/* The library names the modes; what they mean is stated here once. */
static const char *const k_round_desc[FP4_ROUND_COUNT] = {
    [FP4_RNE] = "nearest, ties to even (PTX .rn)",
    [FP4_RNA] = "nearest, ties away from zero (PTX .rna, microxcaling)",
    [FP4_RZ] = "toward zero (PTX .rz)",
    [FP4_RU] = "toward +inf (PTX .rp)",
    [FP4_RD] = "toward -inf (PTX .rm)",
    [FP4_RS] = "stochastic: random bits added below the kept bits (PTX .rs; --rbits)",
};

static int opt_json(void *s, const char *n, const char *v) {
    *(bool *)s = true;
    return CLI_OK;
}

static const cli_opt k_opts[] = {{"--json", false, opt_json}};

static const char *nan_kind_name(fp4_nan_kind k) {
    return k == FP4_NAN_IEEE ? "ieee" : k == FP4_NAN_ALL_ONES ? "all-ones" : "none";
}

/* Exact decimal of 2^e, malloc'd. */
static char *pow2_decimal(int e) {
    fp4_value v = {FP4_CLASS_FINITE, 0, 1, e};
    return cli_value_decimal(&v);
}

static int min_subnormal_exp(const fp4_format_info *fi) { return fi->emin - fi->mbits; }

/* ------------------------------------------------------------------------ */
/* JSON                                                                      */
/* ------------------------------------------------------------------------ */

static void add_pow2(cJSON *o, const char *key, int e) {
    char *dec = pow2_decimal(e), key2[48], p2[24];
    snprintf(key2, sizeof key2, "%s_pow2", key);
    snprintf(p2, sizeof p2, "2^%d", e);
    cJSON_AddStringToObject(o, key, dec ? dec : "?");
    cJSON_AddStringToObject(o, key2, p2);
    free(dec);
}

static cJSON *format_json(fp4_format f) {
    const fp4_format_info *fi = fp4_format_get(f);
    fp4_value max = fp4_decode(f, fi->max_finite);
    char *max_dec = cli_value_decimal(&max), *max_se = cli_value_sig_exp(&max);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", fi->name);
    cJSON_AddNumberToObject(o, "bits", fi->bits);
    cJSON_AddNumberToObject(o, "sign_bits", fi->is_signed ? 1 : 0);
    cJSON_AddNumberToObject(o, "exponent_bits", fi->ebits);
    cJSON_AddNumberToObject(o, "mantissa_bits", fi->mbits);
    cJSON_AddNumberToObject(o, "bias", fi->bias);
    cJSON_AddStringToObject(o, "max", max_dec ? max_dec : "?");
    cJSON_AddStringToObject(o, "max_sig_exp", max_se ? max_se : "?");
    add_pow2(o, "min_normal", fi->emin);
    if (fi->has_subnormals) add_pow2(o, "min_subnormal", min_subnormal_exp(fi));
    else cJSON_AddNullToObject(o, "min_subnormal");
    cJSON_AddBoolToObject(o, "has_zero", fi->has_zero);
    cJSON_AddBoolToObject(o, "has_inf", fi->has_inf);
    cJSON_AddStringToObject(o, "nan", nan_kind_name(fi->nan));
    cJSON_AddStringToObject(o, "evidence", fi->evidence);
    free(max_dec);
    free(max_se);
    return o;
}

static cJSON *named_json(const char *name, const char *key, const char *text) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, key, text);
    return o;
}

static int print_json(void) {
    cJSON *root = cJSON_CreateObject();
    cJSON *fa = cJSON_AddArrayToObject(root, "formats");
    cJSON *ra = cJSON_AddArrayToObject(root, "rounding_modes");
    cJSON *pa = cJSON_AddArrayToObject(root, "policies");
    for (int f = 0; f < FP4_FMT_COUNT; f++) cJSON_AddItemToArray(fa, format_json((fp4_format)f));
    for (int r = 0; r < FP4_ROUND_COUNT; r++)
        cJSON_AddItemToArray(ra, named_json(fp4_round_name((fp4_round)r), "description",
                                            k_round_desc[r]));
    for (int p = 0; p < FP4_POLICY_COUNT; p++)
        cJSON_AddItemToArray(pa, named_json(fp4_policy_name((fp4_policy)p), "evidence",
                                            fp4_policy_evidence((fp4_policy)p)));
    if (!fa || !ra || !pa) {
        cJSON_Delete(root);
        root = NULL;
    }
    return cli_json_print(root);
}

/* ------------------------------------------------------------------------ */
/* Text                                                                      */
/* ------------------------------------------------------------------------ */

static int add_format_row(cli_table *t, fp4_format f) {
    const fp4_format_info *fi = fp4_format_get(f);
    fp4_value max = fp4_decode(f, fi->max_finite);
    char sem[16], bias[16], maxg[32], minn[16], mins[16];
    char *max_se = cli_value_sig_exp(&max);
    snprintf(sem, sizeof sem, "%d/%d/%d", fi->is_signed ? 1 : 0, fi->ebits, fi->mbits);
    snprintf(bias, sizeof bias, "%d", fi->bias);
    snprintf(maxg, sizeof maxg, "%.9g", fp4_value_to_f64(&max));
    snprintf(minn, sizeof minn, "2^%d", fi->emin);
    if (fi->has_subnormals) snprintf(mins, sizeof mins, "2^%d", min_subnormal_exp(fi));
    else snprintf(mins, sizeof mins, "-");
    char bits[8];
    snprintf(bits, sizeof bits, "%d", fi->bits);
    const char *cells[] = {fi->name, bits, sem, bias, maxg, max_se ? max_se : "?", minn, mins,
                           fi->has_inf ? "yes" : "no", nan_kind_name(fi->nan)};
    int rc = (max_se && cli_table_add(t, cells) == 0) ? 0 : -1;
    free(max_se);
    return rc;
}

static int print_formats_table(void) {
    static const char *const k_head[] = {"name", "bits", "s/e/m", "bias", "max", "max exact",
                                         "min normal", "min subnormal", "inf", "nan"};
    cli_table t;
    cli_table_init(&t, 10);
    int rc = cli_table_add(&t, k_head);
    for (int f = 0; rc == 0 && f < FP4_FMT_COUNT; f++) rc = add_format_row(&t, (fp4_format)f);
    if (rc == 0) cli_table_print(&t, stdout, "  ");
    cli_table_free(&t);
    return rc == 0 ? CLI_OK : cli_fail("formats: out of memory");
}

static void print_text_lists(void) {
    puts("\nformat evidence:");
    for (int f = 0; f < FP4_FMT_COUNT; f++) {
        const fp4_format_info *fi = fp4_format_get((fp4_format)f);
        printf("  %-6s %s\n", fi->name, fi->evidence);
    }
    puts("\nrounding modes (--round):");
    for (int r = 0; r < FP4_ROUND_COUNT; r++)
        printf("  %-4s %s\n", fp4_round_name((fp4_round)r), k_round_desc[r]);
    puts("\npolicies (--policy):");
    for (int p = 0; p < FP4_POLICY_COUNT; p++)
        printf("  %-13s %s\n", fp4_policy_name((fp4_policy)p),
               fp4_policy_evidence((fp4_policy)p));
}

static int print_text(void) {
    puts("formats:");
    int rc = print_formats_table();
    if (rc == CLI_OK) print_text_lists();
    return rc;
}

int cli_cmd_formats(int argc, char **argv) {
    bool json = false;
    int rc = cli_parse(argc, argv, "formats", k_opts, 1, &json, NULL);
    if (rc == CLI_HELP) return fputs(k_help, stdout) < 0 ? CLI_FAIL : CLI_OK;
    if (rc != CLI_OK) return rc;
    return json ? print_json() : print_text();
}
