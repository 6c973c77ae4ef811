/* main.c - fp4sim command-line front end: picks the subcommand, answers
 * --help and --version, and turns a failed write to stdout into an error
 * instead of a silently truncated result. */
#include "args.h"
#include "commands.h"
#include "fp4kernels.h"
#include "fp4model.h"
#include "render.h"

#include <gmp.h>
#include <mpfr.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

typedef struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} cli_command;

static const cli_command k_commands[] = {
    {"convert", cli_cmd_convert, "round values (exact decimals, hex floats, codes) into formats"},
    {"table", cli_cmd_table, "list every code of a format of <= 16 bits"},
    {"sha256", cli_cmd_sha256, "hash the codes of all 2^32 FP32 patterns, per format and policy"},
    {"formats", cli_cmd_formats, "formats, rounding modes and policies, with evidence"},
    {"selfcheck", cli_cmd_selfcheck, "readable tour of the formats plus quick self-checks"},
    {"quantize", cli_cmd_quantize, "quantize safetensors tensors with NVFP4/MX recipes"},
    {"gemm", cli_cmd_gemm, "run the exact NVFP4 GEMM oracle on files or generated inputs"},
    {"model", cli_cmd_model, "DeepSeek-V3/R1 forward: info, run, synth"},
    {"engines", cli_cmd_engines, "list the GEMM engines (--engine SPEC): presets, evidence"},
    {"probe", cli_cmd_probe, "fingerprint the GPU's tensor cores (fit the datapath model)"},
};
enum { NCOMMANDS = sizeof k_commands / sizeof k_commands[0] };

static void print_help(void) {
    puts("usage: fp4sim [--help] [--version [--json]] COMMAND [options] [args]\n"
         "\n"
         "fp4sim: bit-exact NVFP4 / FP8 / FP4 number formats.\n"
         "\n"
         "commands:");
    for (int i = 0; i < NCOMMANDS; i++)
        printf("  %-10s %s\n", k_commands[i].name, k_commands[i].summary);
    puts("\n'fp4sim COMMAND --help' describes a command. Results go to stdout (--json\n"
         "for machine-readable output). Exit status: 0 success, 1 internal failure or\n"
         "failed self-check, 2 bad arguments (one line on stderr).");
}

/* Optional pieces are reported, never silently substituted: without CUDA the
 * kernels report "not built"; without libmkl_rt, RoPE trig 'mkl' fails with
 * a message (the 'cr' default needs nothing). Everything else is required at
 * configure time. */
static int print_version(int argc, char **argv) {
    bool json = argc > 2 && strcmp(argv[2], "--json") == 0;
    if (argc > (json ? 3 : 2))
        return cli_usage_error("--version: unexpected argument '%s' (valid: --json)",
                               argv[json ? 3 : 2]);
    bool cuda = fp4k_built_with_cuda(), mkl = fp4m_trig_mkl_available() != 0;
    if (!json) {
        printf("fp4sim %s\n", FP4SIM_VERSION);
        printf("CUDA kernels built: %s; SIMD: %s\n", cuda ? "yes" : "no", fp4_simd_level());
        printf("optional: Intel MKL runtime (RoPE trig 'mkl'): %s\n",
               mkl ? "loaded" : "not found");
        printf("libraries: MPFR %s, GMP %s, %s, cJSON %s\n", mpfr_get_version(), gmp_version,
               OpenSSL_version(OPENSSL_VERSION), cJSON_Version());
        return CLI_OK;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "version", FP4SIM_VERSION);
    cJSON_AddBoolToObject(o, "cuda", cuda);
    cJSON_AddStringToObject(o, "simd", fp4_simd_level());
    cJSON *opt = cJSON_AddObjectToObject(o, "optional");
    cJSON_AddBoolToObject(opt, "cuda_kernels", cuda);
    cJSON_AddBoolToObject(opt, "mkl_runtime", mkl);
    cJSON *libs = cJSON_AddObjectToObject(o, "libraries");
    cJSON_AddStringToObject(libs, "mpfr", mpfr_get_version());
    cJSON_AddStringToObject(libs, "gmp", gmp_version);
    cJSON_AddStringToObject(libs, "openssl", OpenSSL_version(OPENSSL_VERSION));
    cJSON_AddStringToObject(libs, "cjson", cJSON_Version());
    return cli_json_print(o);
}

static const cli_command *find_command(const char *name) {
    for (int i = 0; i < NCOMMANDS; i++)
        if (strcmp(k_commands[i].name, name) == 0) return &k_commands[i];
    return NULL;
}

/* "convert, table, ..." from the command table, for error messages. */
static const char *command_names(void) {
    static char buf[256];
    if (!buf[0])
        for (int i = 0; i < NCOMMANDS; i++)
            snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", i ? ", " : "",
                     k_commands[i].name);
    return buf;
}

static int dispatch(int argc, char **argv) {
    if (argc < 2)
        return cli_usage_error("no command given (valid: %s); try 'fp4sim --help'",
                               command_names());
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        print_help();
        return CLI_OK;
    }
    if (strcmp(cmd, "--version") == 0) return print_version(argc, argv);
    const cli_command *c = find_command(cmd);
    if (!c)
        return cli_usage_error("unknown command '%s' (valid: %s, --help, --version)", cmd,
                               command_names());
    return c->run(argc - 1, argv + 1);
}

int main(int argc, char **argv) {
    int rc = dispatch(argc, argv);
    /* A full disk or closed pipe must not look like success. */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "fp4sim: error writing to stdout\n");
        if (rc == CLI_OK) rc = CLI_FAIL;
    }
    return rc;
}
