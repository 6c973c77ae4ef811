/* cmd_sha256.c - `fp4sim sha256`: SHA-256 of the codes of all 2^32 FP32 bit
 * patterns, in pattern order, so another implementation can be compared
 * against fp4sim with one line per (format, policy). The byte stream is
 * specified in docs/cli.md. */
#include "args.h"
#include "commands.h"
#include "render.h"

#include <omp.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

static const char k_help[] =
    "usage: fp4sim sha256 [--format FMT[,FMT...]] [--policy P[,P...]|all]\n"
    "                     [--round MODE] [--threads N] [--json]\n"
    "\n"
    "Converts every FP32 bit pattern 0x00000000 .. 0xFFFFFFFF, in increasing\n"
    "order, into each format under each policy and prints the SHA-256 of the\n"
    "code stream (one byte per code for formats of <= 8 bits; wider formats\n"
    "write their code little-endian in 2, 4 or 8 bytes) and the seconds taken.\n"
    "See docs/cli.md for the exact byte stream.\n"
    "\n"
    "options:\n"
    "  --format FMT[,FMT]  formats (default: e2m1,e4m3)\n"
    "  --policy P[,P]|all  policies (default: all five)\n"
    "  --round MODE        rne (default), rna, rz, ru, rd (not rs)\n"
    "  --threads N         OpenMP threads (default: OpenMP's choice)\n"
    "  --json              JSON array, one object per (format, policy)\n";

enum { MAX_LIST = 32, CHUNK = 1 << 24 };
static const uint64_t k_all_patterns = UINT64_C(1) << 32;

typedef struct sha_state {
    fp4_format formats[MAX_LIST];
    fp4_policy policies[MAX_LIST];
    int nformats, npolicies;
    fp4_round round;
    uint64_t threads, first, limit; /* patterns first .. first+limit-1 */
    bool json;
} sha_state;

/* ------------------------------------------------------------------------ */
/* Options                                                                   */
/* ------------------------------------------------------------------------ */

static int opt_format(void *s, const char *name, const char *v) {
    sha_state *st = s;
    return cli_parse_format_list("sha256", name, v, st->formats, MAX_LIST, &st->nformats);
}

static int opt_policy(void *s, const char *name, const char *v) {
    sha_state *st = s;
    return cli_parse_policy_list("sha256", name, v, st->policies, MAX_LIST, &st->npolicies);
}

static int opt_round(void *s, const char *name, const char *v) {
    sha_state *st = s;
    int rc = cli_parse_round("sha256", name, v, &st->round);
    if (rc == CLI_OK && st->round == FP4_RS)
        rc = cli_usage_error("sha256: --round rs needs per-element random bits and has no "
                             "defined stream (valid: rne, rna, rz, ru, rd)");
    return rc;
}

static int opt_threads(void *s, const char *name, const char *v) {
    return cli_parse_uint("sha256", name, v, 1, 4096, &((sha_state *)s)->threads);
}

/* Not in --help (documented in docs/cli.md): a slice of the stream, for
 * tests and quick comparisons; the full stream is the reference. */
static int opt_limit(void *s, const char *name, const char *v) {
    return cli_parse_uint("sha256", name, v, 1, k_all_patterns, &((sha_state *)s)->limit);
}

static int opt_first(void *s, const char *name, const char *v) {
    return cli_parse_uint("sha256", name, v, 0, k_all_patterns - 1, &((sha_state *)s)->first);
}

static int opt_json(void *s, const char *n, const char *v) {
    ((sha_state *)s)->json = true;
    return CLI_OK;
}

static const cli_opt k_opts[] = {
    {"--format", true, opt_format}, {"--policy", true, opt_policy},
    {"--round", true, opt_round},   {"--threads", true, opt_threads},
    {"--limit", true, opt_limit},   {"--first", true, opt_first},
    {"--json", false, opt_json},
};

static void set_defaults(sha_state *st) {
    memset(st, 0, sizeof *st);
    st->formats[0] = FP4_FMT_E2M1;
    st->formats[1] = FP4_FMT_E4M3;
    st->nformats = 2;
    for (int p = 0; p < FP4_POLICY_COUNT; p++) st->policies[p] = (fp4_policy)p;
    st->npolicies = FP4_POLICY_COUNT;
    st->round = FP4_RNE;
}

/* Without --limit the slice runs to the last pattern, 0xFFFFFFFF. */
static int resolve_range(sha_state *st) {
    uint64_t rest = k_all_patterns - st->first;
    if (st->limit == 0) st->limit = rest;
    if (st->limit > rest)
        return cli_usage_error("sha256: --first 0x%llx --limit %llu runs past pattern 0xffffffff",
                               (unsigned long long)st->first, (unsigned long long)st->limit);
    return CLI_OK;
}

/* ------------------------------------------------------------------------ */
/* Hashing                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct sha_buffers {
    float *src;     /* CHUNK FP32 patterns */
    void *codes;    /* CHUNK codes in the library's code type */
    uint8_t *bytes; /* CHUNK * 8 serialized bytes (wide formats only) */
} sha_buffers;

static int alloc_buffers(sha_buffers *b) {
    b->src = malloc((size_t)CHUNK * sizeof(float));
    b->codes = malloc((size_t)CHUNK * sizeof(uint64_t));
    b->bytes = malloc((size_t)CHUNK * sizeof(uint64_t));
    return (b->src && b->codes && b->bytes) ? CLI_OK : CLI_FAIL;
}

static void free_buffers(sha_buffers *b) {
    free(b->src);
    free(b->codes);
    free(b->bytes);
}

/* Patterns base .. base+n-1 as floats: copied as bits, never through an FP
 * operation, so signalling NaN patterns arrive unchanged. */
static void fill_patterns(float *src, uint64_t base, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        uint32_t bits = (uint32_t)(base + (uint64_t)i);
        memcpy(&src[i], &bits, sizeof bits);
    }
}

/* Codes wider than a byte are written little-endian whatever the host. */
static const uint8_t *serialize(const void *codes, int width, int64_t n, uint8_t *out) {
    if (width == 1) return codes;
    for (int64_t i = 0; i < n; i++) {
        uint64_t c = width == 2   ? ((const uint16_t *)codes)[i]
                     : width == 4 ? ((const uint32_t *)codes)[i]
                                  : ((const uint64_t *)codes)[i];
        for (int b = 0; b < width; b++) out[i * width + b] = (uint8_t)(c >> (8 * b));
    }
    return out;
}

static int hash_stream(fp4_format f, const fp4_cvt_opts *o, uint64_t first, uint64_t count,
                       sha_buffers *b, EVP_MD_CTX *ctx) {
    int width = fp4_format_code_bytes(f);
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) return CLI_FAIL;
    for (uint64_t done = 0; done < count; done += CHUNK) {
        int64_t n = (int64_t)(count - done < CHUNK ? count - done : CHUNK);
        fill_patterns(b->src, first + done, n);
        if (fp4_f32_to_codes(f, b->codes, b->src, n, o, NULL) != 0) return CLI_FAIL;
        const uint8_t *bytes = serialize(b->codes, width, n, b->bytes);
        if (EVP_DigestUpdate(ctx, bytes, (size_t)n * (size_t)width) != 1) return CLI_FAIL;
    }
    return CLI_OK;
}

typedef struct sha_result {
    fp4_format f;
    fp4_policy p;
    char hex[65];
    double seconds;
} sha_result;

static int hash_one(const sha_state *st, sha_result *r, sha_buffers *b) {
    fp4_cvt_opts o = fp4_cvt_opts_default();
    o.round = st->round;
    o.policy = r->p;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    double t0 = omp_get_wtime();
    int rc = ctx ? hash_stream(r->f, &o, st->first, st->limit, b, ctx) : CLI_FAIL;
    if (rc == CLI_OK && EVP_DigestFinal_ex(ctx, md, &mdlen) != 1) rc = CLI_FAIL;
    r->seconds = omp_get_wtime() - t0;
    EVP_MD_CTX_free(ctx);
    for (unsigned i = 0; rc == CLI_OK && i < mdlen && i < 32; i++)
        snprintf(r->hex + 2 * i, 3, "%02x", md[i]);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Output                                                                    */
/* ------------------------------------------------------------------------ */

static cJSON *result_json(const sha_state *st, const sha_result *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "format", fp4_format_get(r->f)->name);
    cJSON_AddStringToObject(o, "policy", fp4_policy_name(r->p));
    cJSON_AddStringToObject(o, "round", fp4_round_name(st->round));
    cJSON_AddNumberToObject(o, "first", (double)st->first);
    cJSON_AddNumberToObject(o, "count", (double)st->limit);
    cJSON_AddNumberToObject(o, "bytes_per_code", fp4_format_code_bytes(r->f));
    cJSON_AddStringToObject(o, "sha256", r->hex);
    cJSON_AddNumberToObject(o, "seconds", r->seconds);
    cJSON_AddNumberToObject(o, "threads", omp_get_max_threads());
    return o;
}

static void print_header(const sha_state *st) {
    printf("# sha256 of the codes of FP32 patterns 0x%08llx .. 0x%08llx in order; round %s; "
           "threads: %d; SIMD: %s\n",
           (unsigned long long)st->first, (unsigned long long)(st->first + st->limit - 1),
           fp4_round_name(st->round), omp_get_max_threads(), fp4_simd_level());
}

static void print_line(const sha_result *r) {
    printf("%-6s %-13s %s %8.2f s\n", fp4_format_get(r->f)->name, fp4_policy_name(r->p), r->hex,
           r->seconds);
    fflush(stdout); /* a full run takes minutes: show each line as it lands */
}

static int run(const sha_state *st) {
    sha_buffers b;
    cJSON *arr = st->json ? cJSON_CreateArray() : NULL;
    int rc = alloc_buffers(&b);
    if (rc == CLI_OK && st->json && !arr) rc = CLI_FAIL;
    if (rc == CLI_OK && !st->json) print_header(st);
    for (int i = 0; rc == CLI_OK && i < st->nformats; i++)
        for (int k = 0; rc == CLI_OK && k < st->npolicies; k++) {
            sha_result r = {st->formats[i], st->policies[k], {0}, 0.0};
            rc = hash_one(st, &r, &b);
            if (rc == CLI_OK && st->json) cJSON_AddItemToArray(arr, result_json(st, &r));
            else if (rc == CLI_OK) print_line(&r);
        }
    free_buffers(&b);
    if (rc != CLI_OK) {
        cJSON_Delete(arr);
        return cli_fail("sha256: out of memory or OpenSSL failure");
    }
    return st->json ? cli_json_print(arr) : CLI_OK;
}

int cli_cmd_sha256(int argc, char **argv) {
    sha_state st;
    set_defaults(&st);
    int rc = cli_parse(argc, argv, "sha256", k_opts, sizeof k_opts / sizeof k_opts[0], &st, NULL);
    if (rc == CLI_HELP) return fputs(k_help, stdout) < 0 ? CLI_FAIL : CLI_OK;
    if (rc == CLI_OK) rc = resolve_range(&st);
    if (rc != CLI_OK) return rc;
    if (st.threads) omp_set_num_threads((int)st.threads);
    return run(&st);
}
