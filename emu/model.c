/* model.c - validating, printing and parsing fp4emu_model.
 *
 * The printed form ("k=32 block=16 il=2 rev=0 F=25 ...") lists every field,
 * so two models print the same iff they are the same function; the parser
 * reads the same keys, as overrides on top of a preset.
 */
#include "emu_internal.h"

#include <errno.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static bool round_ok(fp4_round r) {
    return r == FP4_RNE || r == FP4_RNA || r == FP4_RZ || r == FP4_RU || r == FP4_RD;
}

static int check_shape(const fp4emu_model *m) {
    if (m->k < 1 || m->k > FP4EMU_MAX_K)
        return fp4_fail("emu: model k = %d outside 1..%d", m->k, FP4EMU_MAX_K);
    if (m->block < 1 || m->k % m->block != 0)
        return fp4_fail("emu: block = %d does not divide k = %d", m->block, m->k);
    if (m->interleave < 0 || (m->interleave > 0 && m->block % m->interleave != 0))
        return fp4_fail("emu: interleave = %d must be 0 or divide block = %d", m->interleave,
                        m->block);
    return 0;
}

int fp4emu_model_check(const fp4emu_model *m) {
    if (!m) return fp4_fail("emu: null model");
    if (check_shape(m)) return -1;
    if (m->F < -64 || m->F > FP4EMU_F_EXACT)
        return fp4_fail("emu: F = %d outside -64..%d", m->F, FP4EMU_F_EXACT);
    if (m->min_exp_limit < FP4EMU_NO_EXP_LIMIT || m->min_exp_limit > 100000)
        return fp4_fail("emu: min_exp_limit = %d out of range", m->min_exp_limit);
    if ((unsigned)m->pexp >= FP4EMU_PEXP_COUNT || (unsigned)m->scale_at >= FP4EMU_SCALE_AT_COUNT ||
        (unsigned)m->c_place >= FP4EMU_CPLACE_COUNT)
        return fp4_fail("emu: bad enum value in model");
    if (m->unpack != FP4_FMT_COUNT && !fp4_format_get(m->unpack))
        return fp4_fail("emu: bad unpack format");
    if (m->acc != FP4_FMT_F32 && m->acc != FP4_FMT_F16 && m->acc != FP4_FMT_BF16)
        return fp4_fail("emu: accumulator format must be f32, f16 or bf16");
    int mb = fp4_format_get(m->acc)->mbits;
    if (m->out_bits < 0 || m->out_bits > mb)
        return fp4_fail("emu: out_bits = %d outside 0..%d for %s", m->out_bits, mb,
                        fp4_format_get(m->acc)->name);
    if (!round_ok(m->out_round)) return fp4_fail("emu: output rounding must be rne, rna, rz, ru or rd");
    return 0;
}

bool fp4emu_model_equal(const fp4emu_model *a, const fp4emu_model *b) {
    return a->k == b->k && a->block == b->block && a->interleave == b->interleave &&
           a->reverse == b->reverse && a->F == b->F && a->min_exp_limit == b->min_exp_limit &&
           a->pexp == b->pexp && a->unpack == b->unpack && a->scale_at == b->scale_at &&
           a->in_subnormals == b->in_subnormals && a->c_place == b->c_place && a->acc == b->acc &&
           a->out_bits == b->out_bits && a->out_round == b->out_round &&
           a->out_subnormals == b->out_subnormals && a->ovf_inf == b->ovf_inf;
}

/* ------------------------------------------------------------------------ */
/* Printing                                                                  */
/* ------------------------------------------------------------------------ */

static const char *fmt_name(fp4_format f) {
    return f == FP4_FMT_COUNT ? "none" : fp4_format_get(f)->name;
}

int fp4emu_model_format(const fp4emu_model *m, char *buf, size_t n) {
    char fbuf[16], ebuf[16];
    if (m->F >= FP4EMU_F_EXACT) snprintf(fbuf, sizeof fbuf, "exact");
    else snprintf(fbuf, sizeof fbuf, "%d", m->F);
    if (m->min_exp_limit <= FP4EMU_NO_EXP_LIMIT) snprintf(ebuf, sizeof ebuf, "none");
    else snprintf(ebuf, sizeof ebuf, "%d", m->min_exp_limit);
    return snprintf(buf, n,
                    "k=%d block=%d il=%d rev=%d F=%s minexp=%s pexp=%s unpack=%s scale=%s "
                    "subin=%d c=%s acc=%s out=%s%d subout=%d ovf=%s",
                    m->k, m->block, m->interleave, m->reverse ? 1 : 0, fbuf, ebuf,
                    m->pexp == FP4EMU_PEXP_SUM ? "sum" : "exact", fmt_name(m->unpack),
                    m->scale_at == FP4EMU_SCALE_PRODUCT ? "product" : "chunk",
                    m->in_subnormals ? 1 : 0, m->c_place == FP4EMU_C_IN_BLOCK ? "in" : "after",
                    fmt_name(m->acc), fp4_round_name(m->out_round), m->out_bits,
                    m->out_subnormals ? 1 : 0, m->ovf_inf ? "inf" : "ieee");
}

/* ------------------------------------------------------------------------ */
/* Parsing                                                                   */
/* ------------------------------------------------------------------------ */

/* A decimal int; out-of-range values are refused, never wrapped (F=4294967310
 * must not run as F=14). Model fields are far inside +-10^7; the range
 * checks of fp4emu_model_check say which values a field takes. */
static int parse_int(const char *key, const char *v, int *out) {
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end) return fp4_fail("emu: %s=%s is not an integer", key, v);
    if (errno == ERANGE || x < -10000000 || x > 10000000)
        return fp4_fail("emu: %s=%s is out of range (|value| <= 10^7)", key, v);
    *out = (int)x;
    return 0;
}

static int parse_bool(const char *key, const char *v, bool *out) {
    if (!strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "on")) return *out = true, 0;
    if (!strcmp(v, "0") || !strcmp(v, "no") || !strcmp(v, "off")) return *out = false, 0;
    return fp4_fail("emu: %s=%s is not 0/1", key, v);
}

static int parse_format(const char *key, const char *v, fp4_format *out) {
    if (!strcmp(v, "none")) return *out = FP4_FMT_COUNT, 0;
    if (fp4_format_from_name(v, out)) return fp4_fail("emu: %s=%s: unknown format", key, v);
    return 0;
}

/* "rz23", "rne13": mode name then fraction bits. */
static int parse_out(const char *v, fp4emu_model *m) {
    char mode[8];
    size_t i = 0;
    while (v[i] && isalpha((unsigned char)v[i]) && i < sizeof mode - 1) mode[i] = v[i], i++;
    mode[i] = 0;
    if (fp4_round_from_name(mode, &m->out_round) || !v[i])
        return fp4_fail("emu: out=%s: expected a mode and fraction bits, e.g. rz23", v);
    return parse_int("out", v + i, &m->out_bits);
}

static int parse_choice(const char *key, const char *v, const char *a, const char *b, int *out) {
    if (!strcmp(v, a)) return *out = 0, 0;
    if (!strcmp(v, b)) return *out = 1, 0;
    return fp4_fail("emu: %s=%s: expected %s or %s", key, v, a, b);
}

static int set_field(fp4emu_model *m, const char *key, const char *v) {
    int x = 0, rc;
    if (!strcmp(key, "k")) return parse_int(key, v, &m->k);
    if (!strcmp(key, "block")) return parse_int(key, v, &m->block);
    if (!strcmp(key, "il")) return parse_int(key, v, &m->interleave);
    if (!strcmp(key, "rev")) return parse_bool(key, v, &m->reverse);
    if (!strcmp(key, "F"))
        return !strcmp(v, "exact") ? (m->F = FP4EMU_F_EXACT, 0) : parse_int(key, v, &m->F);
    if (!strcmp(key, "minexp"))
        return !strcmp(v, "none") ? (m->min_exp_limit = FP4EMU_NO_EXP_LIMIT, 0)
                                  : parse_int(key, v, &m->min_exp_limit);
    if (!strcmp(key, "unpack")) return parse_format(key, v, &m->unpack);
    if (!strcmp(key, "acc")) return parse_format(key, v, &m->acc);
    if (!strcmp(key, "subin")) return parse_bool(key, v, &m->in_subnormals);
    if (!strcmp(key, "subout")) return parse_bool(key, v, &m->out_subnormals);
    if (!strcmp(key, "out")) return parse_out(v, m);
    if (!strcmp(key, "pexp")) {
        rc = parse_choice(key, v, "sum", "exact", &x);
        m->pexp = (fp4emu_pexp)x;
    } else if (!strcmp(key, "scale")) {
        rc = parse_choice(key, v, "product", "chunk", &x);
        m->scale_at = (fp4emu_scale_at)x;
    } else if (!strcmp(key, "c")) {
        rc = parse_choice(key, v, "in", "after", &x);
        m->c_place = (fp4emu_cplace)x;
    } else if (!strcmp(key, "ovf")) {
        rc = parse_choice(key, v, "ieee", "inf", &x);
        m->ovf_inf = x == 1;
    } else {
        rc = fp4_fail("emu: unknown model key '%s'", key);
    }
    return rc;
}

/* Applies "key=val" items separated by ',' or spaces. */
static int apply_overrides(fp4emu_model *m, const char *list) {
    char item[96];
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ", ");
        if (n >= sizeof item) return fp4_fail("emu: model item too long");
        memcpy(item, p, n);
        item[n] = 0;
        p += n + (p[n] ? 1 : 0);
        if (!n) continue;
        char *eq = strchr(item, '=');
        if (!eq) return fp4_fail("emu: model item '%s' is not key=value", item);
        *eq = 0;
        if (set_field(m, item, eq + 1)) return -1;
    }
    return 0;
}

int fp4emu_model_parse(const char *spec, fp4emu_model *out) {
    if (!spec || !out) return fp4_fail("emu: null argument");
    char name[64];
    const char *colon = strchr(spec, ':');
    size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
    bool named = !memchr(spec, '=', n);
    const char *base = named ? NULL : "sm90-hgmma-f16";
    if (named) {
        if (n >= sizeof name) return fp4_fail("emu: preset name too long");
        memcpy(name, spec, n);
        name[n] = 0;
        base = name;
    }
    const fp4emu_preset *p = fp4emu_preset_get(base);
    if (!p) return -1;
    fp4emu_model m = p->model;
    const char *rest = named ? (colon ? colon + 1 : "") : spec;
    if (apply_overrides(&m, rest) || fp4emu_model_check(&m)) return -1;
    *out = m;
    return 0;
}
