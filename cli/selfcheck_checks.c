/* selfcheck_checks.c - quick self-consistency checks of the formats library,
 * run by `fp4sim selfcheck` (and so by scripts/run.sh). They are a smoke
 * test of a build on a new machine, not the test suite: the exhaustive and
 * cross-oracle checks live in tests/. */
#include "selfcheck.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_PRINTED_FAILURES = 10 };

bool sc_check(sc_group *g, bool ok, const char *fmt, ...) {
    g->checks++;
    if (ok) return true;
    if (g->failures++ < MAX_PRINTED_FAILURES) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "selfcheck: FAIL %s: ", g->name);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    return false;
}

/* ------------------------------------------------------------------------ */
/* Round trip of every code                                                  */
/* ------------------------------------------------------------------------ */

static void roundtrip_code(sc_group *g, fp4_format f, uint64_t code, const fp4_cvt_opts *o) {
    const char *name = fp4_format_get(f)->name;
    fp4_value v = fp4_decode(f, code);
    uint64_t back = 0, via32 = 0;
    unsigned flags = 0;
    int t = fp4_encode_value(f, &v, o, &back, &flags);
    if (v.cls == FP4_CLASS_NAN) {
        sc_check(g, fp4_decode(f, back).cls == FP4_CLASS_NAN, "%s 0x%llx (NaN) -> 0x%llx", name,
                 (unsigned long long)code, (unsigned long long)back);
        return;
    }
    sc_check(g, back == code && t == 0 && flags == 0, "%s 0x%llx -> 0x%llx ternary %d flags 0x%x",
             name, (unsigned long long)code, (unsigned long long)back, t, flags);
    /* Every value of these formats is a binary32 value too. */
    fp4_encode_f32(f, (float)fp4_value_to_f64(&v), o, &via32, NULL);
    sc_check(g, via32 == code, "%s 0x%llx via f32 -> 0x%llx", name, (unsigned long long)code,
             (unsigned long long)via32);
}

void sc_roundtrip(sc_group *g) {
    /* nosat keeps Inf and -0 as they are, so every non-NaN code maps back. */
    fp4_cvt_opts o = fp4_cvt_opts_default();
    o.policy = FP4_POLICY_NOSAT;
    for (int f = 0; f < FP4_FMT_COUNT; f++) {
        if (fp4_format_get((fp4_format)f)->bits > 16) continue;
        for (uint64_t c = 0; c < fp4_format_ncodes((fp4_format)f); c++)
            roundtrip_code(g, (fp4_format)f, c, &o);
    }
}

/* ------------------------------------------------------------------------ */
/* Fast path against the scalar encoder                                      */
/* ------------------------------------------------------------------------ */

typedef struct float_list {
    float *v;
    int64_t n, cap;
} float_list;

static bool push_bits(float_list *l, uint32_t bits) {
    if (l->n == l->cap) {
        int64_t cap = l->cap ? 2 * l->cap : 1024;
        float *v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return false;
        l->v = v;
        l->cap = cap;
    }
    memcpy(&l->v[l->n++], &bits, sizeof bits);
    return true;
}

static uint32_t float_bits(float x) {
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

/* x and its two neighbours on each side, both signs: where a tie or a
 * threshold sits, off-by-one-ulp mistakes show. */
static bool push_around(float_list *l, float x) {
    uint32_t b = float_bits(fabsf(x));
    bool ok = true;
    for (int d = -2; d <= 2; d++) {
        if ((d < 0 && b < (uint32_t)-d) || b + (uint32_t)d > 0x7F800000u) continue;
        ok = ok && push_bits(l, b + (uint32_t)d) && push_bits(l, (b + (uint32_t)d) | 0x80000000u);
    }
    return ok;
}

static const uint32_t k_special_bits[] = {
    0x00000000u, 0x80000000u, 0x7F800000u, 0xFF800000u, 0x7FC00000u, 0xFFC00000u,
    0x7F800001u, 0xFF800001u, 0x7FBFFFFFu, 0xFFFFFFFFu, 0x7F7FFFFFu, 0xFF7FFFFFu,
    0x00000001u, 0x80000001u, 0x007FFFFFu, 0x00800000u, 0x80800000u,
};

/* Every value of f, every midpoint between neighbours (ties), the overflow
 * threshold max + ulp/2, and the FP32 specials. */
static bool boundary_inputs(fp4_format f, float_list *l) {
    const fp4_format_info *fi = fp4_format_get(f);
    bool ok = true;
    for (size_t i = 0; i < sizeof k_special_bits / sizeof k_special_bits[0]; i++)
        ok = ok && push_bits(l, k_special_bits[i]);
    double prev = 0.0;
    for (uint64_t c = 0; ok && c <= fi->max_finite; c++) {
        double v = fp4_to_f64(f, c);
        ok = push_around(l, (float)v) && push_around(l, (float)((prev + v) / 2));
        if (c == fi->max_finite) ok = ok && push_around(l, (float)(v + (v - prev) / 2));
        prev = v;
    }
    return ok;
}

/* n random inputs: even slots raw 32-bit patterns (every class, mostly huge
 * or tiny), odd slots values within a few binades of the format's range. */
static bool random_inputs(float_list *l, uint64_t seed, uint32_t stream, int64_t n) {
    bool ok = true;
    for (int64_t i = 0; ok && i < n / 4; i++) {
        uint32_t r[4];
        fp4_philox4x32(seed, stream, FP4_RNG_SUB_PLAIN, (uint64_t)i, r);
        for (int k = 0; ok && k < 4; k += 2) {
            uint32_t near = (r[k + 1] & 0x807FFFFFu) | ((112u + (r[k + 1] >> 23) % 28u) << 23);
            ok = push_bits(l, r[k]) && push_bits(l, near);
        }
    }
    return ok;
}

/* One array conversion compared element by element with the scalar one. */
static void compare_array(sc_group *g, fp4_format f, const float_list *l, const fp4_cvt_opts *o) {
    uint8_t *codes = malloc((size_t)(l->n ? l->n : 1));
    if (!sc_check(g, codes != NULL, "out of memory") ||
        !sc_check(g, fp4_f32_to_codes(f, codes, l->v, l->n, o, NULL) == 0, "fp4_f32_to_codes")) {
        free(codes);
        return;
    }
    for (int64_t i = 0; i < l->n; i++) {
        uint64_t want = 0;
        fp4_encode_f32(f, l->v[i], o, &want, NULL);
        sc_check(g, codes[i] == want, "%s %s f32 0x%08x: array 0x%02x, scalar 0x%02llx",
                 fp4_format_get(f)->name, fp4_policy_name(o->policy), float_bits(l->v[i]),
                 codes[i], (unsigned long long)want);
    }
    free(codes);
}

void sc_fast_path(sc_group *g, uint64_t seed, int64_t n) {
    static const fp4_format k_fast[] = {FP4_FMT_E2M1, FP4_FMT_E4M3};
    fp4_cvt_opts sat = fp4_cvt_opts_default(), nosat = sat;
    nosat.policy = FP4_POLICY_NOSAT;
    for (uint32_t k = 0; k < 2; k++) {
        float_list edge = {0}, rnd = {0};
        bool ok = boundary_inputs(k_fast[k], &edge) && random_inputs(&rnd, seed, k, n);
        if (sc_check(g, ok, "out of memory")) {
            compare_array(g, k_fast[k], &edge, &sat); /* the vectorized kernels */
            compare_array(g, k_fast[k], &edge, &nosat); /* the OpenMP scalar loop */
            compare_array(g, k_fast[k], &rnd, &sat);
        }
        free(edge.v);
        free(rnd.v);
    }
}

/* ------------------------------------------------------------------------ */
/* Packing conventions (numerics.md §2.10)                                   */
/* ------------------------------------------------------------------------ */

static void packing_pairs(sc_group *g) {
    for (uint8_t even = 0; even < 16; even++)
        for (uint8_t odd = 0; odd < 16; odd++) {
            uint8_t byte = e2m1x2_pack(even, odd);
            sc_check(g, (byte & 0xF) == even && (byte >> 4) == odd,
                     "e2m1x2_pack(%u, %u) = 0x%02x: element 2j must be the low nibble", even, odd,
                     byte);
            sc_check(g, e2m1x2_even(byte) == even && e2m1x2_odd(byte) == odd,
                     "e2m1x2_even/odd of 0x%02x", byte);
            /* PTX cvt ... d, a, b puts a in d[7:4]: pass a = odd, b = even. */
            sc_check(g, e2m1x2_from_ptx_ab(odd, even) == byte,
                     "e2m1x2_from_ptx_ab(a=%u, b=%u) != e2m1x2_pack(%u, %u)", odd, even, even,
                     odd);
        }
}

static void packing_arrays(sc_group *g) {
    const uint8_t codes[7] = {0x1, 0x2, 0x3, 0xA, 0xF, 0x0, 0x7};
    uint8_t packed[4], back[7];
    float a = 0, b = 0;
    e2m1_pack(packed, codes, 7);
    e2m1_unpack(back, packed, 7);
    sc_check(g, packed[0] == 0x21 && packed[1] == 0xA3 && packed[2] == 0x0F,
             "e2m1_pack order: got %02x %02x %02x", packed[0], packed[1], packed[2]);
    sc_check(g, packed[3] == 0x07, "e2m1_pack odd count: last byte 0x%02x, want 0x07", packed[3]);
    sc_check(g, memcmp(back, codes, sizeof codes) == 0, "e2m1_unpack(e2m1_pack(x)) != x");
    e2m1x2_ptx_operands(1.0f, 2.0f, &a, &b);
    sc_check(g, a == 2.0f && b == 1.0f, "e2m1x2_ptx_operands(even 1, odd 2) gave a=%g b=%g",
             (double)a, (double)b);
}

void sc_packing(sc_group *g) {
    packing_pairs(g);
    packing_arrays(g);
}
