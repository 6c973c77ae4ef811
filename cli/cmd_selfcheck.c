/* cmd_selfcheck.c - `fp4sim selfcheck`, the job scripts/run.sh runs: a short
 * readable tour of the formats (the E2M1 value table and how each policy
 * treats ties, NaN, -0 and overflow around E2M1 and E4M3), then the quick
 * self-consistency checks of selfcheck_checks.c. */
#include "args.h"
#include "commands.h"
#include "fp4kernels.h"
#include "render.h"
#include "selfcheck.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

static const char k_help[] =
    "usage: fp4sim selfcheck [--seed N] [--random N] [--json]\n"
    "\n"
    "Prints the E2M1 value table and, for inputs around the E2M1 and E4M3 tie\n"
    "points and the special values, the code each policy produces (a '!' marks\n"
    "a difference from the measured tables in numerics.md section 2.9). Then\n"
    "checks that every code of every format of <= 16 bits re-encodes to itself,\n"
    "that the vectorized FP32->E2M1/E4M3 path equals the scalar encoder on\n"
    "every boundary and on Philox-random inputs, and the E2M1 nibble order.\n"
    "Prints 'selfcheck: N checks passed'; exit status 1 on any failure.\n"
    "\n"
    "options:\n"
    "  --seed N     Philox seed (default: $FP4SIM_SEED, else 0x5eedf4)\n"
    "  --random N   random inputs per format (default 2097152)\n"
    "  --json       one JSON object with the tables and the check counts\n";

typedef struct sc_state {
    uint64_t seed, nrandom;
    bool json;
} sc_state;

static int opt_seed(void *s, const char *name, const char *v) {
    return cli_parse_uint("selfcheck", name, v, 0, UINT64_MAX, &((sc_state *)s)->seed);
}
static int opt_random(void *s, const char *name, const char *v) {
    return cli_parse_uint("selfcheck", name, v, 0, UINT64_C(1) << 30, &((sc_state *)s)->nrandom);
}
static int opt_json(void *s, const char *n, const char *v) {
    ((sc_state *)s)->json = true;
    return CLI_OK;
}

static const cli_opt k_opts[] = {
    {"--seed", true, opt_seed}, {"--random", true, opt_random}, {"--json", false, opt_json}};

/* ------------------------------------------------------------------------ */
/* Policy matrices: measured behaviour, numerics.md §2.9                     */
/* ------------------------------------------------------------------------ */

/* One FP32 input (as bits) and the code each policy must give, in enum
 * order: satfinite, nosat, ml_dtypes, cutlass-host, modelopt. */
typedef struct policy_case {
    uint32_t bits;
    uint8_t want[FP4_POLICY_COUNT];
} policy_case;

#define SAME5(c) {c, c, c, c, c}
static const policy_case k_e2m1_cases[] = {
    {0x3E800000u, SAME5(0x0)}, /* 0.25: tie, to even 0 */
    {0x3E800001u, SAME5(0x1)}, /* 0.25000003 */
    {0x3F400000u, SAME5(0x2)}, /* 0.75: tie, up to 1.0 */
    {0x40200000u, SAME5(0x4)}, /* 2.5: tie, down to 2.0 */
    {0x40A00000u, SAME5(0x6)}, /* 5.0: tie, down to 4.0 */
    {0x40A00001u, SAME5(0x7)}, /* 5.0000005 */
    {0x40D00000u, SAME5(0x7)}, /* 6.5: beyond max */
    {0xBDCCCCCDu, SAME5(0x8)}, /* -0.1 rounds to -0 */
    {0x80000000u, {0x8, 0x8, 0x8, 0x8, 0x0}}, /* -0: modelopt's (x < 0) sign */
    {0x7F800000u, SAME5(0x7)},
    {0xFF800000u, SAME5(0xF)},
    {0x7FC00000u, {0x7, 0x7, 0x8, 0x7, 0x7}}, /* NaN: ml_dtypes gives the -0 pattern */
    {0xFFC00000u, {0x7, 0x7, 0x0, 0xF, 0x7}}, /* -NaN */
};

static const policy_case k_e4m3_cases[] = {
    {0x43E00000u, SAME5(0x7E)}, /* 448 */
    {0x43E80000u, SAME5(0x7E)}, /* 464: tie, to even 448 */
    {0x43E80001u, {0x7E, 0x7F, 0x7F, 0x7E, 0x7F}}, /* 464.00003: overflow */
    {0x7F800000u, {0x7E, 0x7F, 0x7F, 0x7E, 0x7F}},
    {0xFF800000u, {0xFE, 0xFF, 0xFF, 0xFE, 0xFF}},
    {0x7FC00000u, SAME5(0x7F)},
    {0xFFC00000u, {0x7F, 0xFF, 0xFF, 0x7F, 0xFF}}, /* -NaN: sign kept by torch/ml_dtypes */
    {0x80000000u, SAME5(0x80)},
    {0x3B000000u, SAME5(0x01)}, /* 2^-9: min subnormal */
    {0x3A800000u, SAME5(0x00)}, /* 2^-10: tie, to even 0 */
    {0x3A800001u, SAME5(0x01)}, /* 2^-10 (1 + 2^-23) */
};
#undef SAME5

typedef struct policy_matrix {
    fp4_format f;
    const policy_case *cases;
    int ncases;
} policy_matrix;

static const policy_matrix k_matrices[] = {
    {FP4_FMT_E2M1, k_e2m1_cases, (int)(sizeof k_e2m1_cases / sizeof k_e2m1_cases[0])},
    {FP4_FMT_E4M3, k_e4m3_cases, (int)(sizeof k_e4m3_cases / sizeof k_e4m3_cases[0])},
};

static uint64_t encode_bits(fp4_format f, uint32_t bits, fp4_policy p) {
    fp4_cvt_opts o = fp4_cvt_opts_default();
    float x;
    uint64_t code = 0;
    o.policy = p;
    memcpy(&x, &bits, sizeof x);
    fp4_encode_f32(f, x, &o, &code, NULL);
    return code;
}

/* Shortest decimal that reads back as the same float ("0.25000003"). */
static void float_label(uint32_t bits, char *buf, size_t n) {
    float x;
    memcpy(&x, &bits, sizeof x);
    if (x != x) {
        snprintf(buf, n, "%snan", (bits >> 31) ? "-" : "");
        return;
    }
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, n, "%.*g", prec, (double)x);
        if (strtof(buf, NULL) == x) return;
    }
}

/* Checks one matrix (group "policy matrix") and fills its text table. */
static int run_matrix(const policy_matrix *m, sc_group *g, cli_table *tab) {
    for (int i = 0; i < m->ncases; i++) {
        const policy_case *pc = &m->cases[i];
        char label[32], hexbits[16], cell[FP4_POLICY_COUNT][16];
        const char *cells[2 + FP4_POLICY_COUNT] = {label, hexbits};
        float_label(pc->bits, label, sizeof label);
        snprintf(hexbits, sizeof hexbits, "0x%08x", pc->bits);
        for (int p = 0; p < FP4_POLICY_COUNT; p++) {
            uint64_t got = encode_bits(m->f, pc->bits, (fp4_policy)p);
            bool ok = sc_check(g, got == pc->want[p], "%s %s %s: 0x%llx, measured 0x%x",
                               fp4_format_get(m->f)->name, fp4_policy_name((fp4_policy)p), label,
                               (unsigned long long)got, pc->want[p]);
            cli_code_hex(m->f, got, cell[p], sizeof cell[p]);
            if (!ok) strcat(cell[p], "!");
            cells[2 + p] = cell[p];
        }
        if (tab && cli_table_add(tab, cells) != 0) return CLI_FAIL;
    }
    return CLI_OK;
}

/* ------------------------------------------------------------------------ */
/* Text summary                                                              */
/* ------------------------------------------------------------------------ */

static int print_e2m1_values(void) {
    cli_table tab;
    int rc = 0;
    cli_table_init(&tab, 8);
    for (int row = 0; row < 2 && rc == 0; row++) {
        char cell[8][32];
        const char *cells[8];
        for (int k = 0; k < 8; k++) {
            fp4_value v = fp4_decode(FP4_FMT_E2M1, (uint64_t)(8 * row + k));
            char val[16];
            fp4_value_to_string(&v, val, sizeof val);
            snprintf(cell[k], sizeof cell[k], "0x%x = %s", 8 * row + k, val);
            cells[k] = cell[k];
        }
        rc = cli_table_add(&tab, cells);
    }
    puts("E2M1 codes and values (0x8..0xf are the negatives; no Inf, no NaN):");
    if (rc == 0) cli_table_print(&tab, stdout, "  ");
    cli_table_free(&tab);
    return rc == 0 ? CLI_OK : CLI_FAIL;
}

static int print_matrix(const policy_matrix *m, sc_group *g) {
    cli_table tab;
    cli_table_init(&tab, 2 + FP4_POLICY_COUNT);
    const char *head[2 + FP4_POLICY_COUNT] = {"input", "f32 bits"};
    for (int p = 0; p < FP4_POLICY_COUNT; p++) head[2 + p] = fp4_policy_name((fp4_policy)p);
    int rc = cli_table_add(&tab, head) == 0 ? CLI_OK : CLI_FAIL;
    if (rc == CLI_OK) rc = run_matrix(m, g, &tab);
    printf("\nFP32 -> %s, round rne, by policy:\n", fp4_format_get(m->f)->name);
    if (rc == CLI_OK) cli_table_print(&tab, stdout, "  ");
    cli_table_free(&tab);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Running the groups                                                        */
/* ------------------------------------------------------------------------ */

enum { G_MATRIX, G_ROUNDTRIP, G_FAST, G_PACKING, NGROUPS };

static void timed(sc_group *g, void (*fn)(sc_group *)) {
    double t0 = omp_get_wtime();
    fn(g);
    g->seconds += omp_get_wtime() - t0;
}

static void run_checks(const sc_state *st, sc_group *groups) {
    timed(&groups[G_ROUNDTRIP], sc_roundtrip);
    double t0 = omp_get_wtime();
    sc_fast_path(&groups[G_FAST], st->seed, (int64_t)st->nrandom);
    groups[G_FAST].seconds = omp_get_wtime() - t0;
    timed(&groups[G_PACKING], sc_packing);
}

static void init_groups(sc_group *groups) {
    static const char *const k_names[NGROUPS] = {
        "policy matrix (numerics.md 2.9)",
        "round trip of every code (formats <= 16 bits)",
        "vectorized FP32->e2m1/e4m3 == scalar (boundaries + random)",
        "e2m1 nibble order (pack, PTX a/b)",
    };
    for (int i = 0; i < NGROUPS; i++) groups[i] = (sc_group){k_names[i], 0, 0, 0.0};
}

static long total(const sc_group *groups, bool failures) {
    long n = 0;
    for (int i = 0; i < NGROUPS; i++) n += failures ? groups[i].failures : groups[i].checks;
    return n;
}

static void print_summary_line(const sc_group *groups) {
    long checks = total(groups, false), failures = total(groups, true);
    if (failures) printf("selfcheck: %ld of %ld checks FAILED\n", failures, checks);
    else printf("selfcheck: %ld checks passed\n", checks);
}

static int run_text(const sc_state *st, sc_group *groups) {
    printf("fp4sim %s selfcheck (SIMD %s, CUDA %s, %d threads, seed 0x%llx)\n\n", FP4SIM_VERSION,
           fp4_simd_level(), fp4k_built_with_cuda() ? "yes" : "no", omp_get_max_threads(),
           (unsigned long long)st->seed);
    int rc = print_e2m1_values();
    for (int i = 0; rc == CLI_OK && i < 2; i++) rc = print_matrix(&k_matrices[i], &groups[G_MATRIX]);
    if (rc != CLI_OK) return cli_fail("selfcheck: out of memory");
    run_checks(st, groups);
    puts("\nchecks:");
    for (int i = 0; i < NGROUPS; i++)
        printf("  %-60s %8ld checks, %ld failed (%.2f s)\n", groups[i].name, groups[i].checks,
               groups[i].failures, groups[i].seconds);
    print_summary_line(groups);
    return total(groups, true) ? CLI_FAIL : CLI_OK;
}

/* ------------------------------------------------------------------------ */
/* JSON                                                                      */
/* ------------------------------------------------------------------------ */

static cJSON *matrix_json(const policy_matrix *m) {
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; arr && i < m->ncases; i++) {
        char label[32], hex[24];
        cJSON *o = cJSON_CreateObject(), *codes = cJSON_CreateObject();
        float_label(m->cases[i].bits, label, sizeof label);
        cJSON_AddStringToObject(o, "input", label);
        snprintf(hex, sizeof hex, "0x%08x", m->cases[i].bits);
        cJSON_AddStringToObject(o, "f32_bits", hex);
        for (int p = 0; p < FP4_POLICY_COUNT; p++) {
            cli_code_hex(m->f, encode_bits(m->f, m->cases[i].bits, (fp4_policy)p), hex, sizeof hex);
            cJSON_AddStringToObject(codes, fp4_policy_name((fp4_policy)p), hex);
        }
        cJSON_AddItemToObject(o, "codes", codes);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

static cJSON *groups_json(const sc_group *groups) {
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; arr && i < NGROUPS; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", groups[i].name);
        cJSON_AddNumberToObject(o, "checks", (double)groups[i].checks);
        cJSON_AddNumberToObject(o, "failures", (double)groups[i].failures);
        cJSON_AddNumberToObject(o, "seconds", groups[i].seconds);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

static cJSON *e2m1_values_json(void) {
    cJSON *arr = cJSON_CreateArray();
    for (uint64_t c = 0; arr && c < 16; c++) {
        fp4_value v = fp4_decode(FP4_FMT_E2M1, c);
        char val[16];
        fp4_value_to_string(&v, val, sizeof val);
        cJSON_AddItemToArray(arr, cJSON_CreateString(val));
    }
    return arr;
}

static int run_json(const sc_state *st, sc_group *groups) {
    for (int i = 0; i < 2; i++) run_matrix(&k_matrices[i], &groups[G_MATRIX], NULL);
    run_checks(st, groups);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", FP4SIM_VERSION);
    cJSON_AddStringToObject(root, "simd", fp4_simd_level());
    cJSON_AddBoolToObject(root, "cuda", fp4k_built_with_cuda());
    cJSON_AddNumberToObject(root, "seed", (double)st->seed);
    cJSON_AddItemToObject(root, "e2m1_values", e2m1_values_json());
    cJSON_AddItemToObject(root, "e2m1_policies", matrix_json(&k_matrices[0]));
    cJSON_AddItemToObject(root, "e4m3_policies", matrix_json(&k_matrices[1]));
    cJSON_AddItemToObject(root, "groups", groups_json(groups));
    cJSON_AddNumberToObject(root, "checks", (double)total(groups, false));
    cJSON_AddNumberToObject(root, "failures", (double)total(groups, true));
    int rc = cli_json_print(root);
    return rc != CLI_OK ? rc : total(groups, true) ? CLI_FAIL : CLI_OK;
}

static uint64_t default_seed(void) {
    const char *s = getenv("FP4SIM_SEED");
    return s ? strtoull(s, NULL, 0) : UINT64_C(0x5EEDF4);
}

int cli_cmd_selfcheck(int argc, char **argv) {
    sc_state st = {default_seed(), UINT64_C(1) << 21, false};
    int rc = cli_parse(argc, argv, "selfcheck", k_opts, sizeof k_opts / sizeof k_opts[0], &st,
                       NULL);
    if (rc == CLI_HELP) return fputs(k_help, stdout) < 0 ? CLI_FAIL : CLI_OK;
    if (rc != CLI_OK) return rc;
    sc_group groups[NGROUPS];
    init_groups(groups);
    return st.json ? run_json(&st, groups) : run_text(&st, groups);
}
