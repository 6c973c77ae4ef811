/* structure.c - kernel structures (fp4emu.h): split-K chunk boundaries,
 * reduction orders, and their text form "promote=128,split=2,reduce=seq". */
#include "emu_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

fp4emu_structure fp4emu_structure_plain(void) {
    fp4emu_structure s;
    memset(&s, 0, sizeof s);
    s.splits = 1;
    s.reduce = FP4EMU_REDUCE_SEQ;
    return s;
}

void fp4emu_structure_bounds(const fp4emu_structure *s, const fp4emu_model *m, int64_t K,
                             int64_t at[FP4EMU_MAX_SPLIT + 1]) {
    const int S = s->splits < 1 ? 1 : s->splits;
    bool given = false;
    for (int i = 1; i < S; i++) given = given || s->split_at[i] != 0;
    if (given) {
        for (int i = 0; i < S; i++) at[i] = s->split_at[i];
        at[0] = 0;
        at[S] = K;
        return;
    }
    /* Even in whole instruction steps: the first (nsteps % S) chunks take one more. */
    const int64_t nsteps = (K + m->k - 1) / m->k, base = nsteps / S, extra = nsteps % S;
    int64_t step = 0;
    for (int i = 0; i < S; i++) {
        at[i] = step * m->k < K ? step * m->k : K;
        step += base + (i < extra);
    }
    at[S] = K;
}

static int check_order(const int *order, int S) {
    int seen[FP4EMU_MAX_SPLIT] = {0};
    for (int i = 0; i < S; i++) {
        if (order[i] < 0 || order[i] >= S || seen[order[i]])
            return fp4_fail("emu structure: reduce=order needs a permutation of the %d chunks", S);
        seen[order[i]] = 1;
    }
    return 0;
}

int fp4emu_structure_check(const fp4emu_structure *s, const fp4emu_model *m, int64_t K) {
    if (!s || !m) return fp4_fail("emu structure: null argument");
    if (s->splits < 1 || s->splits > FP4EMU_MAX_SPLIT)
        return fp4_fail("emu structure: split = %d is outside 1..%d", s->splits, FP4EMU_MAX_SPLIT);
    if ((unsigned)s->reduce >= FP4EMU_REDUCE_COUNT)
        return fp4_fail("emu structure: unknown reduction order");
    if (s->reduce == FP4EMU_REDUCE_ORDER && check_order(s->order, s->splits)) return -1;
    if (s->k_desc && s->chain.k_order)
        return fp4_fail("emu structure: korder=desc and an explicit k_order exclude each other");
    if (s->splits > 1 && s->chain.k_order)
        return fp4_fail("emu structure: an explicit k_order goes with one chunk only (use "
                        "korder=desc with split-K)");
    int64_t at[FP4EMU_MAX_SPLIT + 1];
    fp4emu_structure_bounds(s, m, K, at);
    for (int i = 0; i < s->splits; i++) {
        if (at[i + 1] <= at[i])
            return fp4_fail("emu structure: chunk %d of K = %lld is empty or out of order "
                            "([%lld, %lld)); K has %lld instruction steps of %d", i, (long long)K,
                            (long long)at[i], (long long)at[i + 1],
                            (long long)((K + m->k - 1) / m->k), m->k);
        if (at[i] % m->k)
            return fp4_fail("emu structure: chunk boundary %lld is not a multiple of the "
                            "instruction K = %d", (long long)at[i], m->k);
        if (emu_chain_check(m, &s->chain, at[i + 1] - at[i], false)) return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Text form                                                                 */
/* ------------------------------------------------------------------------ */

static const char *const k_reduce_names[FP4EMU_REDUCE_COUNT] = {"seq", "rev", "tree", "order"};

/* Decimal integer in [lo, hi]; false otherwise (no wrap-around, no junk). */
static bool parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

/* "a/b/c" into v (at most max). */
static int parse_list(const char *s, int64_t lo, int64_t hi, int64_t *v, int max) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", s);
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
        if (n == max || !parse_i64(tok, lo, hi, &v[n])) return -1;
        n++;
    }
    return n;
}

static int set_key(fp4emu_structure *st, const char *key, const char *val, bool *k_desc) {
    int64_t v;
    if (strcmp(key, "promote") == 0) {
        if (!parse_i64(val, 0, (int64_t)1 << 40, &v))
            return fp4_fail("emu structure: promote=%s is not an integer in 0..2^40", val);
        st->chain.promote_every = v;
    } else if (strcmp(key, "fma") == 0) {
        if (strcmp(val, "0") && strcmp(val, "1")) return fp4_fail("emu structure: fma=%s (0 or 1)", val);
        st->chain.promote_fma = val[0] == '1';
    } else if (strcmp(key, "korder") == 0) {
        if (strcmp(val, "asc") && strcmp(val, "desc"))
            return fp4_fail("emu structure: korder=%s (asc or desc)", val);
        *k_desc = strcmp(val, "desc") == 0;
    } else if (strcmp(key, "split") == 0) {
        if (!parse_i64(val, 1, FP4EMU_MAX_SPLIT, &v))
            return fp4_fail("emu structure: split=%s is not in 1..%d", val, FP4EMU_MAX_SPLIT);
        st->splits = (int)v;
    } else if (strcmp(key, "at") == 0) {
        int64_t b[FP4EMU_MAX_SPLIT];
        int n = parse_list(val, 1, (int64_t)1 << 40, b, FP4EMU_MAX_SPLIT - 1);
        if (n < 1) return fp4_fail("emu structure: at=%s: boundaries B1/B2/... (positive, at most "
                                   "%d)", val, FP4EMU_MAX_SPLIT - 1);
        memset(st->split_at, 0, sizeof st->split_at);
        for (int i = 0; i < n; i++) st->split_at[i + 1] = b[i];
        st->splits = n + 1;
    } else if (strcmp(key, "reduce") == 0) {
        int r = -1;
        for (int i = 0; i < FP4EMU_REDUCE_ORDER; i++)
            if (strcmp(val, k_reduce_names[i]) == 0) r = i;
        if (r >= 0) {
            st->reduce = (fp4emu_reduce)r;
        } else if (strncmp(val, "order:", 6) == 0) {
            int64_t o[FP4EMU_MAX_SPLIT];
            int n = parse_list(val + 6, 0, FP4EMU_MAX_SPLIT - 1, o, FP4EMU_MAX_SPLIT);
            if (n < 1) return fp4_fail("emu structure: reduce=%s: order:I/J/... expected", val);
            for (int i = 0; i < n; i++) st->order[i] = (int)o[i];
            st->reduce = FP4EMU_REDUCE_ORDER;
        } else {
            return fp4_fail("emu structure: reduce=%s (valid: seq, rev, tree, order:I/J/...)", val);
        }
    } else {
        return fp4_fail("emu structure: unknown key '%s' (valid: promote, fma, korder, split, at, "
                        "reduce)", key);
    }
    return 0;
}

int fp4emu_structure_parse(const char *s, fp4emu_structure *out) {
    fp4emu_structure st = fp4emu_structure_plain();
    bool k_desc = false;
    char buf[1024];
    if (!s) s = "";
    if (strlen(s) >= sizeof buf) return fp4_fail("emu structure: too long");
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) return fp4_fail("emu structure: '%s' is not key=value", tok);
        *eq = '\0';
        if (set_key(&st, tok, eq + 1, &k_desc)) return -1;
    }
    st.k_desc = k_desc;
    *out = st;
    return 0;
}

int fp4emu_structure_format(const fp4emu_structure *s, char *buf, size_t n) {
    size_t k = 0;
    buf[0] = '\0';
#define PUT(...) k += (size_t)snprintf(buf + (k < n ? k : n), k < n ? n - k : 0, __VA_ARGS__)
    if (s->chain.promote_every) PUT("%spromote=%lld", k ? "," : "", (long long)s->chain.promote_every);
    if (s->chain.promote_fma) PUT("%sfma=1", k ? "," : "");
    if (s->k_desc) PUT("%skorder=desc", k ? "," : "");
    bool given = false;
    for (int i = 1; i < s->splits; i++) given = given || s->split_at[i];
    if (given) {
        PUT("%sat=", k ? "," : "");
        for (int i = 1; i < s->splits; i++) PUT("%s%lld", i > 1 ? "/" : "", (long long)s->split_at[i]);
    } else if (s->splits > 1) {
        PUT("%ssplit=%d", k ? "," : "", s->splits);
    }
    if (s->splits > 1 && s->reduce == FP4EMU_REDUCE_ORDER) {
        PUT("%sreduce=order:", k ? "," : "");
        for (int i = 0; i < s->splits; i++) PUT("%s%d", i ? "/" : "", s->order[i]);
    } else if (s->splits > 1 && s->reduce != FP4EMU_REDUCE_SEQ) {
        PUT("%sreduce=%s", k ? "," : "", k_reduce_names[s->reduce]);
    }
#undef PUT
    return (int)k;
}
