/* torch_math.c - the elementary functions and the top-k order of torch's
 * CPU kernels (torch 2.11, AVX2 capability, x86-64), one lane at a time, so
 * that the FP32 islands of transformers (and torch's float64 SiLU) can be
 * reproduced bit for bit (docs/model.md, "The FP32 islands of transformers,
 * reproduced").
 *
 * torch evaluates exp in its vectorised kernels with
 *   - Vectorized<float>::exp  = Sleef_expf8_u10 (aten/src/ATen/cpu/vec/vec256/
 *     vec256_float.h), used by the sigmoid kernel (UnaryOpsKernel.cpp
 *     sigmoid_kernel), the SiLU kernel (Activation.cpp silu_kernel) and the
 *     softmax kernel (SoftMaxKernel.cpp _vec_softmax_lastdim: of SLEEF's
 *     expf, glibc's expf and torch's own Vectorized<float>::exp_u20, SLEEF's
 *     reproduces by far the most fixture probabilities, docs/model.md);
 *   - Vectorized<double>::exp = Sleef_expd4_u10 (vec256_double.h), the same
 *     kernels in float64.
 * SLEEF's AVX2 build (src/arch/helperavx2.h) defines ENABLE_FMA_SP/DP, so its
 * multiply-adds are fused; we write fmaf/fma exactly where the vector code
 * has a fused multiply-add and plain operations elsewhere (the library is
 * compiled with -ffp-contract=off). Every function is our own transcription
 * of the published algorithm: the constants, the operation order and the
 * rounding points are the facts being reproduced.
 *
 * The result of one lane does not depend on the other lanes, so a scalar
 * function per element gives the vector kernel's bits. Both exps were checked
 * bit for bit against the real Sleef_expf8_u10avx2 / Sleef_expd4_u10avx2 of
 * Debian's libsleef 3.5.1 (2e7 floats over [-104, 100], 5e6 doubles over
 * [-990, 710]: no difference); the scalar code needs no SLEEF at build time. */
#include "model_internal.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* floor(q / 2): SLEEF's arithmetic right shift by one (vsra ... 1), written
 * without relying on the implementation-defined shift of a negative int. */
static int half_floor(int q) { return (q - (q & 1)) / 2; }

/* ---------------------------------------------------------------------------
 * SLEEF xexpf (src/libm/sleefsimdsp.c, "xexpf", 1.0-ulp), AVX2 lane.
 * exp(d) = 2^q * e^s with q = rint(d / ln 2) (vrint_vi2_vf: cvtps2dq, round
 * to nearest even), s = d - q*ln2 by a two-constant Cody-Waite reduction
 * (L2Uf + L2Lf, two fused multiply-adds), e^s = 1 + s + s^2 * P(s) with a
 * degree-5 Horner polynomial P (fused), scaled by 2^q as two exact powers of
 * two (vldexp2_vf_vf_vi2: u * 2^(q>>1) * 2^(q - (q>>1)), two roundings).
 * d < -104 gives +0, d > 100 gives +inf.
 * ------------------------------------------------------------------------- */

#define SLEEF_R_LN2F 1.442695040888963407359924681001892137426645954152985934135449406931f
#define SLEEF_L2UF 0.693145751953125f
#define SLEEF_L2LF 1.428606765330187045e-06f

static float pow2i_f32(int e) { return fp4_f32_from_bits((uint32_t)(e + 127) << 23); }

float fp4m_torch_expf(float d) {
    if (isnan(d)) return d;
    if (d < -104.0f) return 0.0f;
    if (d > 100.0f) return INFINITY;
    const float qf = rintf(d * SLEEF_R_LN2F);
    const int q = (int)qf;
    float s = fmaf(qf, -SLEEF_L2UF, d);
    s = fmaf(qf, -SLEEF_L2LF, s);
    float u = 0.000198527617612853646278381f;
    u = fmaf(u, s, 0.00139304355252534151077271f);
    u = fmaf(u, s, 0.00833336077630519866943359f);
    u = fmaf(u, s, 0.0416664853692054748535156f);
    u = fmaf(u, s, 0.166666671633720397949219f);
    u = fmaf(u, s, 0.5f);
    u = 1.0f + fmaf(s * s, u, s);
    const int q1 = half_floor(q);
    return u * pow2i_f32(q1) * pow2i_f32(q - q1);
}

/* ---------------------------------------------------------------------------
 * SLEEF xexp (src/libm/sleefsimddp.c, "xexp", 1.0-ulp, ENABLE_FMA_DP branch),
 * AVX2 lane. u = rint(d / ln 2) (vrint_vd_vd, round to nearest even),
 * s = d - u*ln2 by two fused multiply-adds (L2U, L2L), the degree-9 part in
 * Estrin form (POLY10 of src/common/estrin.h: s2 = s*s, s4 = s2*s2,
 * s8 = s4*s4, each pair fma(s, c_odd, c_even), pairs combined with s2, s4,
 * s8 by fma), then three Horner steps fma(u, s, 0.5), fma(u, s, 1),
 * fma(u, s, 1), scaled by 2^q as two powers of two (vldexp2_vd_vd_vi).
 * d > 709.78... gives +inf, d < -1000 gives +0.
 * ------------------------------------------------------------------------- */

#define SLEEF_R_LN2 1.442695040888963407359924681001892137426645954152985934135449406931
#define SLEEF_L2U .69314718055966295651160180568695068359375
#define SLEEF_L2L .28235290563031577122588448175013436025525412068e-12

static double pow2i_f64(int e) { return fp4_f64_from_bits((uint64_t)(e + 1023) << 52); }

double fp4m_torch_exp(double d) {
    if (isnan(d)) return d;
    if (d > 709.78271114955742909217217426) return INFINITY;
    if (d < -1000.0) return 0.0;
    const double qd = rint(d * SLEEF_R_LN2);
    const int q = (int)qd;
    double s = fma(qd, -SLEEF_L2U, d);
    s = fma(qd, -SLEEF_L2L, s);
    const double s2 = s * s, s4 = s2 * s2, s8 = s4 * s4;
    /* coefficients c9 (highest) .. c0 of the degree-9 part */
    const double c9 = +0.2081276378237164457e-8, c8 = +0.2511210703042288022e-7,
                 c7 = +0.2755762628169491192e-6, c6 = +0.2755723402025388239e-5,
                 c5 = +0.2480158687479686264e-4, c4 = +0.1984126989855865850e-3,
                 c3 = +0.1388888888914497797e-2, c2 = +0.8333333333314938210e-2,
                 c1 = +0.4166666666666602598e-1, c0 = +0.1666666666666669072e+0;
    const double lo4 = fma(s2, fma(s, c3, c2), fma(s, c1, c0));
    const double hi4 = fma(s2, fma(s, c7, c6), fma(s, c5, c4));
    const double p8 = fma(s4, hi4, lo4);
    double u = fma(s8, fma(s, c9, c8), p8);
    u = fma(u, s, 0.5);
    u = fma(u, s, 1.0);
    u = fma(u, s, 1.0);
    const int q1 = half_floor(q);
    return u * pow2i_f64(q1) * pow2i_f64(q - q1);
}

/* ---------------------------------------------------------------------------
 * torch.topk(v, k, largest=True, sorted=False) on CPU
 * (aten/src/ATen/native/TopKImpl.h topk_impl_loop): a queue of (value,
 * index) pairs in index order, then std::partial_sort when k * 64 <= n, else
 * std::nth_element(queue, queue + k - 1), with the comparator "x is NaN and
 * y is not, or x > y"; the first k pairs in their resulting order are the
 * output. torch's wheels are built with GCC, so the orders are those of
 * libstdc++'s algorithms (bits/stl_algo.h __introselect,
 * __unguarded_partition_pivot, __move_median_to_first, __insertion_sort,
 * __heap_select; bits/stl_heap.h __make_heap, __adjust_heap, __push_heap,
 * __pop_heap, __sort_heap), transcribed below on an array.
 * ------------------------------------------------------------------------- */

typedef struct tk_elem {
    double v;
    int64_t i;
} tk_elem;

static int tk_less(const tk_elem *x, const tk_elem *y) {
    return (isnan(x->v) && !isnan(y->v)) || x->v > y->v;
}

static void tk_swap(tk_elem *a, tk_elem *b) {
    tk_elem t = *a;
    *a = *b;
    *b = t;
}

/* Heap with the "largest" element (under tk_less) at the root. */
static void tk_push_heap(tk_elem *a, int64_t hole, int64_t top, tk_elem v) {
    int64_t parent = (hole - 1) / 2;
    while (hole > top && tk_less(&a[parent], &v)) {
        a[hole] = a[parent];
        hole = parent;
        parent = (hole - 1) / 2;
    }
    a[hole] = v;
}

static void tk_adjust_heap(tk_elem *a, int64_t hole, int64_t len, tk_elem v) {
    const int64_t top = hole;
    int64_t child = hole;
    while (child < (len - 1) / 2) {
        child = 2 * (child + 1);
        if (tk_less(&a[child], &a[child - 1])) child--;
        a[hole] = a[child];
        hole = child;
    }
    if ((len & 1) == 0 && child == (len - 2) / 2) {
        child = 2 * (child + 1);
        a[hole] = a[child - 1];
        hole = child - 1;
    }
    tk_push_heap(a, hole, top, v);
}

static void tk_make_heap(tk_elem *a, int64_t len) {
    if (len < 2) return;
    for (int64_t parent = (len - 2) / 2;; parent--) {
        tk_adjust_heap(a, parent, len, a[parent]);
        if (parent == 0) return;
    }
}

/* Moves the root to *result and re-heaps [0, len) with *result's old value. */
static void tk_pop_heap(tk_elem *a, int64_t len, tk_elem *result) {
    tk_elem v = *result;
    *result = a[0];
    tk_adjust_heap(a, 0, len, v);
}

static void tk_heap_select(tk_elem *a, int64_t middle, int64_t last) {
    tk_make_heap(a, middle);
    for (int64_t i = middle; i < last; i++)
        if (tk_less(&a[i], &a[0])) tk_pop_heap(a, middle, &a[i]);
}

static void tk_sort_heap(tk_elem *a, int64_t len) {
    while (len > 1) {
        len--;
        tk_pop_heap(a, len, &a[len]);
    }
}

static void tk_insertion_sort(tk_elem *a, int64_t first, int64_t last) {
    if (first == last) return;
    for (int64_t i = first + 1; i != last; i++) {
        tk_elem v = a[i];
        if (tk_less(&v, &a[first])) {
            memmove(&a[first + 1], &a[first], (size_t)(i - first) * sizeof *a);
            a[first] = v;
        } else {
            int64_t j = i;
            while (tk_less(&v, &a[j - 1])) {
                a[j] = a[j - 1];
                j--;
            }
            a[j] = v;
        }
    }
}

static void tk_move_median_to_first(tk_elem *a, int64_t result, int64_t x, int64_t y, int64_t z) {
    if (tk_less(&a[x], &a[y])) {
        if (tk_less(&a[y], &a[z])) tk_swap(&a[result], &a[y]);
        else if (tk_less(&a[x], &a[z])) tk_swap(&a[result], &a[z]);
        else tk_swap(&a[result], &a[x]);
    } else if (tk_less(&a[x], &a[z])) {
        tk_swap(&a[result], &a[x]);
    } else if (tk_less(&a[y], &a[z])) {
        tk_swap(&a[result], &a[z]);
    } else {
        tk_swap(&a[result], &a[y]);
    }
}

/* Partition of [first, last) around the pivot a[pivot] (outside the range). */
static int64_t tk_unguarded_partition(tk_elem *a, int64_t first, int64_t last, int64_t pivot) {
    for (;;) {
        while (tk_less(&a[first], &a[pivot])) first++;
        last--;
        while (tk_less(&a[pivot], &a[last])) last--;
        if (!(first < last)) return first;
        tk_swap(&a[first], &a[last]);
        first++;
    }
}

static void tk_nth_element(tk_elem *a, int64_t nth, int64_t n) {
    if (n == 0 || nth == n) return;
    int64_t first = 0, last = n;
    int64_t depth = 2 * (63 - __builtin_clzll((unsigned long long)n)); /* std::__lg(n) * 2 */
    while (last - first > 3) {
        if (depth == 0) {
            tk_heap_select(a + first, nth + 1 - first, last - first);
            tk_swap(&a[first], &a[nth]);
            return;
        }
        depth--;
        const int64_t mid = first + (last - first) / 2;
        tk_move_median_to_first(a, first, first + 1, mid, last - 1);
        const int64_t cut = tk_unguarded_partition(a, first + 1, last, first);
        if (cut <= nth) first = cut;
        else last = cut;
    }
    tk_insertion_sort(a, first, last);
}

void fp4m_topk_torch(const double *v, int64_t n, int64_t k, int64_t *idx) {
    if (k <= 0 || n <= 0) return;
    tk_elem q[n];
    for (int64_t j = 0; j < n; j++) {
        q[j].v = v[j];
        q[j].i = j;
    }
    if (k * 64 <= n) {
        tk_heap_select(q, k, n); /* std::partial_sort = heap select + sort_heap */
        tk_sort_heap(q, k);
    } else {
        tk_nth_element(q, k - 1, n);
    }
    for (int64_t s = 0; s < k; s++) idx[s] = q[s].i;
}

