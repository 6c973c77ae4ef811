/* instr.c - one MMA instruction as a chain of block FMAs, and a dot product
 * over K as a chain of instructions with optional promotion.
 *
 * Instruction (numerics.md §5.1 step 7 and §5.2): the k products are split
 * into k/block blocks (contiguous, or interleaved by groups of g as the
 * sm90 mma.sync e4m3 lowering splits by k mod 4); acc starts at C (C in the
 * block) or +0 (C after); each block is d = BFMA(products, acc), acc = d;
 * with C after, d = RN(c + acc) in the accumulator format at the end.
 *
 * Promotion (DeepSeek-V3 §3.3.2): every N_C elements the MMA accumulator is
 * added into an FP32 accumulator by correctly rounded FP32 arithmetic, times
 * a per-group scale if given, and the MMA accumulator restarts at +0.
 */
#include "emu_internal.h"

#include <stdlib.h>
#include <string.h>

static emu_out model_out(const fp4emu_model *m) {
    emu_out o = {m->acc, m->out_bits, m->out_round, m->out_subnormals, m->ovf_inf, false};
    return o;
}

/* Smallest lsb exponent of a format's values (its smallest subnormal). */
static int min_lsb(fp4_format f) {
    const fp4_format_info *fi = fp4_format_get(f);
    return fi->emin - fi->mbits;
}

/* Exponent of an operand converted to the unpack format: floor(log2|x|)
 * clamped to that format's emin (the conversion itself is exact). */
static int unpacked_e(uint64_t sig, int lsb, fp4_format unpack) {
    int flog = emu_bitlen64(sig) - 1 + lsb, emin = fp4_format_get(unpack)->emin;
    return flog > emin ? flog : emin;
}

/* Class of a product of up to four factors (IEEE rules). */
static uint8_t product_class(const emu_op *const *f, int nf) {
    bool nan = false, inf = false, zero = false;
    for (int i = 0; i < nf; i++) {
        nan = nan || f[i]->cls == FP4_CLASS_NAN;
        inf = inf || f[i]->cls == FP4_CLASS_INF;
        zero = zero || f[i]->cls == FP4_CLASS_ZERO;
    }
    if (nan || (inf && zero)) return FP4_CLASS_NAN;
    return inf ? FP4_CLASS_INF : zero ? FP4_CLASS_ZERO : FP4_CLASS_FINITE;
}

/* Class of a product with a non-finite or zero factor; false if it is a
 * zero product (dropped, §5.1 step 1). */
static bool product_special(const emu_op *a, const emu_op *b, const emu_op *sa, const emu_op *sb,
                            emu_term *t) {
    const emu_op *f[4] = {a, b, sa, sb};
    t->cls = product_class(f, sa ? 4 : 2);
    t->sign = (uint8_t)(a->sign ^ b->sign);
    return t->cls != FP4_CLASS_ZERO;
}

/* The product at absolute position k as one term (per-product scales):
 * significands and lsb exponents multiply/add exactly; the alignment
 * exponent follows m->pexp and m->unpack. */
static inline bool product_term(const fp4emu_model *m, const emu_dotops *x, int64_t k,
                                emu_term *t) {
    const emu_op *a = &x->a[k], *b = &x->b[k];
    const emu_op *sa = x->sa ? &x->sa[k / x->scale_block] : NULL;
    const emu_op *sb = x->sb ? &x->sb[k / x->scale_block] : NULL;
    bool finite = a->cls == FP4_CLASS_FINITE && b->cls == FP4_CLASS_FINITE &&
                  (!sa || (sa->cls == FP4_CLASS_FINITE && sb->cls == FP4_CLASS_FINITE));
    if (!finite) return product_special(a, b, sa, sb, t);
    uint64_t ma = a->sig, mb = b->sig;
    int la = a->lsb, lb = b->lsb, ea = a->e, eb = b->e;
    if (sa) ma *= sa->sig, mb *= sb->sig, la += sa->lsb, lb += sb->lsb, ea += sa->e, eb += sb->e;
    if (m->unpack != FP4_FMT_COUNT) ea = unpacked_e(ma, la, m->unpack), eb = unpacked_e(mb, lb, m->unpack);
    t->cls = FP4_CLASS_FINITE;
    t->sign = (uint8_t)(a->sign ^ b->sign);
    t->sig = ma * mb;
    t->lsb = la + lb;
    t->e = m->pexp == FP4EMU_PEXP_EXACT ? emu_bitlen64(t->sig) - 1 + t->lsb : ea + eb;
    return true;
}

/* A running chunk sum (FP4EMU_SCALE_CHUNK): raw products summed exactly in
 * units of 2^ref, ref = the smallest possible product lsb. */
typedef struct chunk_acc {
    int64_t idx; /* scale index, -1 when empty */
    __int128 sum;
    bool nan;
} chunk_acc;

/* Emits the finished chunk as a term (if non-zero); returns terms added. */
static int chunk_flush(const emu_dotops *x, const chunk_acc *c, emu_term *out) {
    if (c->idx < 0) return 0;
    const emu_op *sa = &x->sa[c->idx], *sb = &x->sb[c->idx];
    emu_term t = {0, 0, 0, 0, FP4_CLASS_FINITE};
    if (c->nan || sa->cls == FP4_CLASS_NAN || sb->cls == FP4_CLASS_NAN) t.cls = FP4_CLASS_NAN;
    if (t.cls == FP4_CLASS_FINITE && (c->sum == 0 || sa->cls != FP4_CLASS_FINITE ||
                                      sb->cls != FP4_CLASS_FINITE))
        return 0; /* zero chunk or zero scale: dropped like a zero product */
    if (t.cls == FP4_CLASS_FINITE) {
        unsigned __int128 mag = c->sum < 0 ? -(unsigned __int128)c->sum : (unsigned __int128)c->sum;
        int lsb = min_lsb(x->a_fmt) + min_lsb(x->b_fmt) + sa->lsb + sb->lsb;
        while (!(mag & 1)) mag >>= 1, lsb++; /* < 2^50 after this for the allowed formats */
        t.sig = (uint64_t)mag * sa->sig * sb->sig;
        t.sign = c->sum < 0;
        t.lsb = lsb;
        t.e = emu_bitlen64(t.sig) - 1 + t.lsb;
    }
    *out = t;
    return 1;
}

static void chunk_add(const emu_dotops *x, chunk_acc *c, int64_t k) {
    const emu_op *a = &x->a[k], *b = &x->b[k];
    if (a->cls == FP4_CLASS_NAN || b->cls == FP4_CLASS_NAN) c->nan = true;
    if (a->cls != FP4_CLASS_FINITE || b->cls != FP4_CLASS_FINITE) return;
    int sh = a->lsb + b->lsb - min_lsb(x->a_fmt) - min_lsb(x->b_fmt);
    __int128 v = (__int128)((unsigned __int128)((uint64_t)a->sig * b->sig) << sh);
    c->sum += (a->sign ^ b->sign) ? -v : v;
}

/* Iterates the instruction positions j of block p in increasing order (so
 * positions sharing a scale come consecutively): runs of g positions every
 * g * (k / block), or one run of `block` for contiguous blocks. */
typedef struct pos_iter {
    int base, r, g, stride, k;
} pos_iter;

static pos_iter pos_begin(const fp4emu_model *m, int p) {
    int nb = m->k / m->block, g = m->interleave > 0 ? m->interleave : m->block;
    pos_iter it = {p * g, 0, g, m->interleave > 0 ? g * nb : m->k, m->k};
    return it;
}

static bool pos_next(pos_iter *it, int *j) {
    if (it->r == it->g || it->base + it->r >= it->k) {
        it->base += it->stride;
        it->r = 0;
    }
    if (it->base >= it->k) return false;
    *j = it->base + it->r++;
    return true;
}

/* Chunk-scaled terms of block p: consecutive positions sharing a scale
 * index are summed exactly, then scaled (one term per chunk). */
static int gather_chunks(const fp4emu_model *m, const emu_dotops *x, int64_t k0, int64_t len,
                         int p, emu_term *out) {
    int n = 0, j;
    pos_iter it = pos_begin(m, p);
    chunk_acc c = {-1, 0, false};
    while (pos_next(&it, &j) && j < len) {
        int64_t k = k0 + j, idx = k / x->scale_block;
        if (idx != c.idx) {
            n += chunk_flush(x, &c, &out[n]);
            c.idx = idx;
            c.sum = 0;
            c.nan = false;
        }
        chunk_add(x, &c, k);
    }
    return n + chunk_flush(x, &c, &out[n]);
}

/* Terms of block p for positions [k0, k0+len) (padding beyond len). */
static int gather(const fp4emu_model *m, const emu_dotops *x, int64_t k0, int64_t len, int p,
                  emu_term *out) {
    if (m->scale_at == FP4EMU_SCALE_CHUNK && x->sa) return gather_chunks(m, x, k0, len, p, out);
    int n = 0, j;
    if (m->interleave == 0) { /* contiguous block: a plain loop */
        int64_t j1 = (int64_t)(p + 1) * m->block < len ? (int64_t)(p + 1) * m->block : len;
        for (int64_t jj = (int64_t)p * m->block; jj < j1; jj++)
            if (product_term(m, x, k0 + jj, &out[n])) n++;
        return n;
    }
    pos_iter it = pos_begin(m, p);
    while (pos_next(&it, &j) && j < len)
        if (product_term(m, x, k0 + j, &out[n])) n++;
    return n;
}

uint64_t emu_instr(const fp4emu_model *m, const emu_dotops *x, int64_t k0, int64_t len,
                   uint64_t c, emu_term *scratch) {
    emu_out o = model_out(m);
    int nb = m->k / m->block;
    uint64_t acc = m->c_place == FP4EMU_C_IN_BLOCK ? c : emu_zero_code(m->acc, 0);
    bool fast = x->fa && x->fb && emu_fast_enabled();
    for (int i = 0; i < nb; i++) {
        int p = m->reverse ? nb - 1 - i : i;
        uint64_t next;
        if (fast && emu_block_fast(m, x, k0, len, p, acc, &o, &next)) {
            acc = next;
            continue;
        }
        int n = gather(m, x, k0, len, p, scratch);
        scratch[n] = emu_term_of_code(m->acc, acc); /* the accumulator joins the block */
        acc = emu_block(scratch, n + 1, m->F, m->min_exp_limit, &o);
    }
    if (m->c_place == FP4EMU_C_AFTER) acc = emu_add_rn(m->acc, c, acc);
    return acc;
}

/* ------------------------------------------------------------------------ */
/* Chains over K                                                             */
/* ------------------------------------------------------------------------ */

/* acc (FP32) += scale * d, d a code of the model's accumulator format. */
static uint64_t promote(const fp4emu_model *m, const fp4emu_chain *ch, uint64_t acc, uint64_t d,
                        const float *scale) {
    uint64_t d32 = d;
    if (m->acc != FP4_FMT_F32) {
        fp4_cvt_opts co = {FP4_RNE, FP4_POLICY_NOSAT, 0, 0, 0};
        fp4_convert(FP4_FMT_F32, m->acc, d, &co, &d32, NULL); /* exact widening */
    }
    if (!scale) return emu_add_rn(FP4_FMT_F32, acc, d32);
    uint64_t s = fp4_f32_bits(*scale);
    if (ch->promote_fma) return emu_fma_rn(FP4_FMT_F32, s, d32, acc);
    return emu_add_rn(FP4_FMT_F32, acc, emu_mul_rn(FP4_FMT_F32, s, d32));
}

static int64_t step_at(const fp4emu_chain *ch, int64_t i) {
    return ch && ch->k_order ? ch->k_order[i] : i;
}

uint64_t emu_chain_run(const fp4emu_model *m, const emu_dotops *x, int64_t K, uint64_t c,
                       const fp4emu_chain *ch, const float *group_scale, emu_term *scratch) {
    return emu_chain_range(m, x, 0, K, c, ch, group_scale, scratch);
}

uint64_t emu_chain_range(const fp4emu_model *m, const emu_dotops *x, int64_t k_lo, int64_t k_hi,
                         uint64_t c, const fp4emu_chain *ch, const float *group_scale,
                         emu_term *scratch) {
    int64_t nsteps = (k_hi - k_lo + m->k - 1) / m->k;
    int64_t every = ch ? ch->promote_every : 0;
    if (every == 0) {
        uint64_t acc = c;
        for (int64_t i = 0; i < nsteps; i++) {
            int64_t s = step_at(ch, i), k0 = k_lo + s * m->k;
            acc = emu_instr(m, x, k0, k_hi - k0 < m->k ? k_hi - k0 : m->k, acc, scratch);
        }
        return acc;
    }
    int64_t per = every / m->k, cnt = 0;
    uint64_t acc32 = c, mma = emu_zero_code(m->acc, 0);
    for (int64_t i = 0; i < nsteps; i++) {
        int64_t s = step_at(ch, i), k0 = k_lo + s * m->k;
        mma = emu_instr(m, x, k0, k_hi - k0 < m->k ? k_hi - k0 : m->k, mma, scratch);
        if (++cnt < per && i + 1 < nsteps) continue;
        const float *sc = group_scale ? &group_scale[k0 / every] : NULL;
        acc32 = promote(m, ch, acc32, mma, sc);
        mma = emu_zero_code(m->acc, 0);
        cnt = 0;
    }
    return acc32;
}

/* Every promotion window must hold steps of one scale group. */
static int check_windows(const fp4emu_model *m, const fp4emu_chain *ch, int64_t nsteps) {
    int64_t per = ch->promote_every / m->k;
    for (int64_t w = 0; w < nsteps; w += per) {
        int64_t g0 = step_at(ch, w) * m->k / ch->promote_every;
        for (int64_t i = w; i < w + per && i < nsteps; i++)
            if (step_at(ch, i) * m->k / ch->promote_every != g0)
                return fp4_fail("emu: with group scales every promotion window must hold K "
                                "steps of one group (window at %lld mixes groups)",
                                (long long)w);
    }
    return 0;
}

static int check_order(const int64_t *order, int64_t nsteps) {
    uint8_t *seen = calloc((size_t)(nsteps ? nsteps : 1), 1);
    if (!seen) return fp4_fail("emu: out of memory");
    int bad = 0;
    for (int64_t i = 0; i < nsteps && !bad; i++) {
        bad = order[i] < 0 || order[i] >= nsteps || seen[order[i]];
        if (!bad) seen[order[i]] = 1;
    }
    free(seen);
    if (bad) return fp4_fail("emu: k_order is not a permutation of 0..%lld", (long long)nsteps - 1);
    return 0;
}

int emu_chain_check(const fp4emu_model *m, const fp4emu_chain *ch, int64_t K, bool scaled_groups) {
    int64_t nsteps = (K + m->k - 1) / m->k;
    int64_t every = ch ? ch->promote_every : 0;
    if (every < 0 || every % m->k != 0)
        return fp4_fail("emu: promote_every = %lld is not a non-negative multiple of the "
                        "instruction K = %d", (long long)every, m->k);
    if (scaled_groups && every == 0) return fp4_fail("emu: group scales need promote_every > 0");
    if (ch && ch->k_order && check_order(ch->k_order, nsteps)) return -1;
    if (scaled_groups && check_windows(m, ch, nsteps)) return -1;
    return 0;
}

int emu_model_input_check(const fp4emu_model *m, const fp4emu_input *in) {
    if (!emu_input_check(in)) return -1;
    if (m->scale_at != FP4EMU_SCALE_CHUNK || in->scale_fmt == FP4_FMT_COUNT) return 0;
    fp4_format ok[4] = {FP4_FMT_E2M1, FP4_FMT_E2M3, FP4_FMT_E3M2, FP4_FMT_E4M3};
    bool a_ok = false, b_ok = false;
    for (int i = 0; i < 4; i++) a_ok |= in->a_fmt == ok[i], b_ok |= in->b_fmt == ok[i];
    if (!a_ok || !b_ok)
        return fp4_fail("emu: chunk-scaled terms need e2m1, e2m3, e3m2 or e4m3 elements");
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Public entry points for one instruction and one dot product               */
/* ------------------------------------------------------------------------ */

typedef struct dot_buf {
    emu_op *a, *b, *sa, *sb;
    emu_fop *fa, *fb;
    emu_term *scratch;
} dot_buf;

static void dot_buf_free(dot_buf *d) {
    free(d->a), free(d->b), free(d->sa), free(d->sb), free(d->fa), free(d->fb), free(d->scratch);
}

/* Decodes K elements and their scales into a fresh buffer. */
static int dot_decode(const fp4emu_model *m, const fp4emu_input *in, int64_t K, const void *a,
                      const void *b, const uint8_t *sa, const uint8_t *sb, dot_buf *buf,
                      emu_dotops *x) {
    bool scaled = in->scale_fmt != FP4_FMT_COUNT;
    int64_t ns = scaled ? (K + in->scale_block - 1) / in->scale_block : 0;
    memset(buf, 0, sizeof *buf);
    buf->a = malloc((size_t)(K ? K : 1) * sizeof(emu_op));
    buf->b = malloc((size_t)(K ? K : 1) * sizeof(emu_op));
    buf->sa = malloc((size_t)(ns ? ns : 1) * sizeof(emu_op));
    buf->sb = malloc((size_t)(ns ? ns : 1) * sizeof(emu_op));
    buf->fa = malloc((size_t)(K ? K : 1) * sizeof(emu_fop));
    buf->fb = malloc((size_t)(K ? K : 1) * sizeof(emu_fop));
    buf->scratch = malloc((size_t)(m->k + 1) * sizeof(emu_term));
    if (!buf->a || !buf->b || !buf->sa || !buf->sb || !buf->fa || !buf->fb || !buf->scratch) {
        dot_buf_free(buf);
        return fp4_fail("emu: out of memory");
    }
    emu_ops_decode(in->a_fmt, a, false, 0, K, m->in_subnormals, buf->a);
    emu_ops_decode(in->b_fmt, b, false, 0, K, m->in_subnormals, buf->b);
    if (scaled) {
        emu_ops_decode(in->scale_fmt, sa, false, 0, ns, m->in_subnormals, buf->sa);
        emu_ops_decode(in->scale_fmt, sb, false, 0, ns, m->in_subnormals, buf->sb);
    }
    const emu_op *psa = scaled ? buf->sa : NULL, *psb = scaled ? buf->sb : NULL;
    bool fast = emu_fops_build(m, buf->a, psa, in->scale_block, K, buf->fa) &&
                emu_fops_build(m, buf->b, psb, in->scale_block, K, buf->fb);
    emu_dotops d = {buf->a, buf->b, psa, psb, in->scale_block, in->a_fmt, in->b_fmt,
                    fast ? buf->fa : NULL, fast ? buf->fb : NULL};
    *x = d;
    return 0;
}

static int dot_args_check(const fp4emu_model *m, const fp4emu_input *in, const void *a,
                          const void *b, const uint8_t *sa, const uint8_t *sb, const void *d) {
    if (!m || !a || !b || !d) return fp4_fail("emu: null argument");
    if (fp4emu_model_check(m) || emu_model_input_check(m, in)) return -1;
    if (in->scale_fmt != FP4_FMT_COUNT && (!sa || !sb))
        return fp4_fail("emu: scaled input without scale bytes");
    return 0;
}

int fp4emu_mma(const fp4emu_model *m, const fp4emu_input *in, const void *a, const void *b,
               const uint8_t *sa, const uint8_t *sb, uint64_t c, uint64_t *d) {
    if (dot_args_check(m, in, a, b, sa, sb, d)) return -1;
    dot_buf buf;
    emu_dotops x;
    if (dot_decode(m, in, m->k, a, b, sa, sb, &buf, &x)) return -1;
    *d = emu_instr(m, &x, 0, m->k, c, buf.scratch);
    dot_buf_free(&buf);
    return 0;
}

fp4_format fp4emu_dot_format(const fp4emu_model *m, const fp4emu_chain *ch) {
    return ch && ch->promote_every > 0 ? FP4_FMT_F32 : m->acc;
}

int fp4emu_dot(const fp4emu_model *m, const fp4emu_input *in, int64_t K, const void *a,
               const void *b, const uint8_t *sa, const uint8_t *sb, uint64_t c,
               const fp4emu_chain *ch, const float *group_scale, uint64_t *d) {
    if (dot_args_check(m, in, a, b, sa, sb, d)) return -1;
    if (K < 0) return fp4_fail("emu: K = %lld < 0", (long long)K);
    if (emu_chain_check(m, ch, K, group_scale != NULL)) return -1;
    dot_buf buf;
    emu_dotops x;
    if (dot_decode(m, in, K, a, b, sa, sb, &buf, &x)) return -1;
    *d = emu_chain_run(m, &x, K, c, ch, group_scale, buf.scratch);
    dot_buf_free(&buf);
    return 0;
}
