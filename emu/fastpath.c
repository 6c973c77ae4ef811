/* fastpath.c - the block FMA without materialized terms, for the common
 * case: every operand of the dot product finite (or zero), scales applied
 * per product, and a block whose aligned sum fits 62 bits (F up to ~50).
 *
 * Operands are pre-combined once per row (emu_fop: signed significand with
 * the scale folded in, lsb exponent, alignment exponent under the model's
 * unpack rule), so a product is one multiply and two adds. The block runs
 * the same arithmetic as emu_block's 64-bit path in two passes over the
 * operands (maxE and the smallest lsb, then the aligned sum), and anything
 * it does not cover (NaN/Inf, Inf accumulators, chunk scaling, wide
 * windows) is left to the general path, which gives the same bits;
 * tests/test_emu_gemm.c checks the two paths against each other.
 */
#include "emu_internal.h"

#include <limits.h>

static bool g_fast = true;

void emu_fast_enable(bool on) { g_fast = on; }
bool emu_fast_enabled(void) { return g_fast; }

/* Alignment exponent of an operand (element times optional scale) under
 * the model's unpack rule; pexp=exact is handled per product. */
static int fop_e(const fp4emu_model *m, const emu_op *el, const emu_op *sc, uint64_t sig, int lsb) {
    if (m->unpack == FP4_FMT_COUNT) return el->e + (sc ? sc->e : 0);
    int flog = emu_bitlen64(sig) - 1 + lsb, emin = fp4_format_get(m->unpack)->emin;
    return flog > emin ? flog : emin;
}

bool emu_fops_build(const fp4emu_model *m, const emu_op *el, const emu_op *sc, int scale_block,
                    int64_t n, emu_fop *out) {
    if (m->scale_at == FP4EMU_SCALE_CHUNK && sc) return false;
    for (int64_t k = 0; k < n; k++) {
        const emu_op *a = &el[k], *s = sc ? &sc[k / scale_block] : NULL;
        if (a->cls >= FP4_CLASS_INF || (s && s->cls >= FP4_CLASS_INF)) return false;
        if (a->cls == FP4_CLASS_ZERO || (s && s->cls == FP4_CLASS_ZERO)) {
            out[k] = (emu_fop){0, 0, 0};
            continue;
        }
        uint64_t sig = (uint64_t)a->sig * (s ? s->sig : 1);
        int lsb = a->lsb + (s ? s->lsb : 0);
        int32_t ssig = a->sign ? -(int32_t)sig : (int32_t)sig; /* < 2^24 for every format */
        out[k] = (emu_fop){ssig, (int16_t)lsb, (int16_t)fop_e(m, a, s, sig, lsb)};
    }
    return true;
}

/* Running statistics of a block's live terms. */
typedef struct fstats {
    int64_t maxE, minlsb;
    int live;
} fstats;

static inline void fstats_add(fstats *st, int64_t e, int64_t lsb) {
    if (e > st->maxE) st->maxE = e;
    if (lsb < st->minlsb) st->minlsb = lsb;
    st->live++;
}

static inline int64_t prod_e(const fp4emu_model *m, const emu_fop *a, const emu_fop *b, int64_t p) {
    if (m->pexp != FP4EMU_PEXP_EXACT) return (int64_t)a->e + b->e;
    uint64_t mag = p < 0 ? 0 - (uint64_t)p : (uint64_t)p;
    return emu_bitlen64(mag) - 1 + a->lsb + b->lsb;
}

/* sign(p) * floor(|p| * 2^sh), without branches: the signs of p and sh
 * are data dependent and mispredict. For a live term the caller's width
 * check keeps |p| * 2^sh below 2^62; zero products (whose lsb is arbitrary)
 * get shifts clamped to 63, giving 0 either way. */
static inline int64_t shifted(int64_t p, int64_t sh) {
    int64_t s = -(int64_t)(p < 0); /* 0 or -1 */
    uint64_t mag = (uint64_t)((p ^ s) - s);
    int64_t l = sh > 0 ? sh : 0, r = sh < 0 ? -sh : 0;
    uint64_t v = (mag << (l < 63 ? l : 63)) >> (r < 63 ? r : 63);
    return ((int64_t)v ^ s) - s;
}

/* Statistics and aligned sum over one contiguous run of positions. */
static void run_stats(const fp4emu_model *m, const emu_fop *a, const emu_fop *b, int j0, int j1,
                      fstats *st) {
    int64_t maxE = st->maxE, minlsb = st->minlsb;
    int live = 0;
    for (int j = j0; j < j1; j++) { /* zero products must not move maxE or minlsb */
        int64_t p = (int64_t)a[j].sig * b[j].sig, e = prod_e(m, &a[j], &b[j], p);
        int64_t lsb = (int64_t)a[j].lsb + b[j].lsb;
        maxE = p != 0 && e > maxE ? e : maxE;
        minlsb = p != 0 && lsb < minlsb ? lsb : minlsb;
        live += p != 0;
    }
    st->maxE = maxE, st->minlsb = minlsb, st->live += live;
}

static int64_t run_sum(const emu_fop *a, const emu_fop *b, int j0, int j1, int64_t g) {
    int64_t acc = 0;
    for (int j = j0; j < j1; j++)
        acc += shifted((int64_t)a[j].sig * b[j].sig, (int64_t)a[j].lsb + b[j].lsb - g);
    return acc;
}

/* Block p of an instruction as runs of consecutive positions: one run
 * [p*block, (p+1)*block) when contiguous, runs of g every g*(k/block) when
 * interleaved; positions >= len are padding. */
typedef struct fruns {
    int first, g, stride, k, len;
} fruns;

static fruns runs_of(const fp4emu_model *m, int64_t len, int p) {
    int g = m->interleave > 0 ? m->interleave : m->block;
    fruns r = {p * g, g, m->interleave > 0 ? g * (m->k / m->block) : m->k, m->k, (int)len};
    return r;
}

static int run_end(const fruns *r, int start) {
    int e = start + r->g;
    return e < r->len ? e : r->len;
}

bool emu_block_fast(const fp4emu_model *m, const emu_dotops *x, int64_t k0, int64_t len, int p,
                    uint64_t acc_code, const emu_out *o, uint64_t *out) {
    emu_term c = emu_term_of_code(m->acc, acc_code);
    if (c.cls >= FP4_CLASS_INF) return false;
    const emu_fop *a = x->fa + k0, *b = x->fb + k0;
    fruns r = runs_of(m, len, p);
    fstats st = {INT64_MIN, INT64_MAX, 0};
    for (int s = r.first; s < r.k; s += r.stride) run_stats(m, a, b, s, run_end(&r, s), &st);
    if (c.cls == FP4_CLASS_FINITE) fstats_add(&st, c.e, c.lsb);
    if (st.live == 0) {
        *out = emu_zero_code(m->acc, 0);
        return true;
    }
    int64_t topE = st.maxE, maxE = st.maxE < m->min_exp_limit ? m->min_exp_limit : st.maxE;
    int64_t g = maxE - m->F < st.minlsb ? st.minlsb : maxE - m->F;
    if (topE + 4 - g + emu_bitlen64((uint64_t)st.live) + 1 > 62) return false; /* as emu_block */
    int64_t sum = 0;
    for (int s = r.first; s < r.k; s += r.stride) sum += run_sum(a, b, s, run_end(&r, s), g);
    if (c.cls == FP4_CLASS_FINITE) {
        int64_t sc = c.sign ? -(int64_t)c.sig : (int64_t)c.sig;
        sum += shifted(sc, (int64_t)c.lsb - g);
    }
    *out = emu_round_int64(sum, g, o);
    return true;
}
