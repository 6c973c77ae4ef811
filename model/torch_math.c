/* torch_math.c - the elementary functions, the top-k order and the sum order of torch's
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


/* ---------------------------------------------------------------------------
 * torch.sum on CPU (aten/src/ATen/native/cpu/SumKernel.cpp, cascade_sum) for
 * one contiguous row of n values, float32 or float64, as the serial kernel
 * adds them (a row of fewer than 32768 elements, or one thread; larger
 * multi-threaded sums are split across threads, not modelled).
 *
 * Which build: SumKernel.cpp registers with REGISTER_DISPATCH, which under
 * CPU_CAPABILITY_AVX512 registers nullptr (DispatchStub.h), and the dispatcher
 * then falls back to the AVX2 kernel (DispatchStub.cpp: "dispatch to AVX2,
 * since the AVX512 kernel is missing"; the file's comment: the AVX-512 sums
 * are less accurate for fp16 and slower). So an x86-64 wheel sums with the
 * AVX2 code on AVX2 and AVX-512 machines alike: Vectorized<float> = 8 lanes,
 * Vectorized<double> = 4 (32-byte vectors; the DEFAULT build's generic
 * Vectorized is 32 bytes too, so the order is the same there).
 *
 * The order (cascade_sum -> vectorized_inner_sum when n >= lanes, else
 * scalar_inner_sum / scalar_outer_sum; both call row_sum):
 *   row_sum(size items): the items viewed as rows of ILP = 4; the 4 columns
 *     summed by multi_row_sum, the size % 4 leftover items added to column 0,
 *     then column 0 += column 1, += column 2, += column 3.
 *   multi_row_sum(rows): 4 accumulators per column in a cascade of 4 levels:
 *     rows are added to level 0 in chunks of 2^p (p = max(4, ceil(log2
 *     rows) / 4)); after each chunk level j-1 is added into level j and
 *     cleared, going up while the row count is a multiple of 2^(j p); the
 *     rows after the last full chunk go to level 0; finally level 0 += level
 *     1, += level 2, += level 3.
 *   n >= lanes: row_sum over the n / lanes vectors (lane by lane), then
 *     s = 0, += the n % lanes tail values in order, += lanes 0 .. lanes-1.
 *   n < lanes: row_sum over the n scalars.
 * The output is filled with 0 and the row's sum added to it (0 + s).
 * Short rows, float32: n <= 4 and n = 8 are sequential; n = 6 is
 * ((((x0 + x4) + x5) + x1) + x2) + x3. float64: n = 6 is
 * ((((x4 + x5) + x0) + x1) + x2) + x3 and n = 8 is
 * (((x0 + x4) + (x1 + x5)) + (x2 + x6)) + (x3 + x7).
 * The order is the same in the revisions of SumKernel.cpp read (pytorch main
 * and an older one) and in torch 1.13, against which it was checked bit for
 * bit (Debian python3-torch, DEFAULT and AVX2 capabilities; 10^4 random
 * vectors for every n in 1..64 and fewer for 27 lengths up to 140000, float32
 * and float64, 1-D and 2-D sums: no difference; tools/torch_sum_table.py).
 * test_model_torchsum checks the recorded table tests/data/torch-sum.txt.
 * ------------------------------------------------------------------------- */

enum { TS_ILP = 4, TS_LEVELS = 4, TS_MAXLANES = 8 };

static int64_t ts_ceil_log2(int64_t x) { /* utils::CeilLog2: 1 for x <= 2 */
    return x <= 2 ? 1 : 64 - __builtin_clzll((unsigned long long)(x - 1));
}

/* Instantiated for float (8 lanes) and double (4 lanes). An item is `lanes`
 * consecutive values (a vector, or lanes = 1 for a scalar); item i, lane l
 * is x[i * lanes + l]. */
#define FP4M_DEFINE_TORCH_SUM(T, S, LANES)                                                  \
    static void ts_add_##S(T *a, const T *b, int lanes) {                                   \
        for (int l = 0; l < lanes; l++) a[l] += b[l];                                       \
    }                                                                                       \
    /* multi_row_sum over `rows` rows of TS_ILP items each (row i = items         \
     * TS_ILP i .. TS_ILP i + 3); out[k] = column k's sum. */                               \
    static void ts_multi_row_##S(const T *x, int64_t rows, int lanes,                       \
                                 T out[TS_ILP][TS_MAXLANES]) {                              \
        T acc[TS_LEVELS][TS_ILP][TS_MAXLANES];                                              \
        memset(acc, 0, sizeof acc);                                                         \
        int64_t lp = ts_ceil_log2(rows) / TS_LEVELS;                                        \
        if (lp < 4) lp = 4;                                                                 \
        const int64_t step = (int64_t)1 << lp, mask = step - 1;                             \
        int64_t i = 0;                                                                      \
        while (i + step <= rows) {                                                          \
            for (int64_t j = 0; j < step; j++, i++)                                         \
                for (int k = 0; k < TS_ILP; k++)                                            \
                    ts_add_##S(acc[0][k], x + (i * TS_ILP + k) * lanes, lanes);             \
            for (int j = 1; j < TS_LEVELS; j++) {                                           \
                for (int k = 0; k < TS_ILP; k++) {                                          \
                    ts_add_##S(acc[j][k], acc[j - 1][k], lanes);                            \
                    memset(acc[j - 1][k], 0, sizeof acc[j - 1][k]);                         \
                }                                                                           \
                if ((i & (mask << (j * lp))) != 0) break;                                   \
            }                                                                               \
        }                                                                                   \
        for (; i < rows; i++)                                                               \
            for (int k = 0; k < TS_ILP; k++)                                                \
                ts_add_##S(acc[0][k], x + (i * TS_ILP + k) * lanes, lanes);                 \
        for (int j = 1; j < TS_LEVELS; j++)                                                 \
            for (int k = 0; k < TS_ILP; k++) ts_add_##S(acc[0][k], acc[j][k], lanes);       \
        memcpy(out, acc[0], sizeof acc[0]);                                                 \
    }                                                                                       \
    /* row_sum over `items` items: the sum of each lane in out[0 .. lanes). */              \
    static void ts_row_##S(const T *x, int64_t items, int lanes, T out[TS_MAXLANES]) {      \
        T part[TS_ILP][TS_MAXLANES];                                                        \
        const int64_t rows = items / TS_ILP;                                                \
        ts_multi_row_##S(x, rows, lanes, part);                                             \
        for (int64_t i = rows * TS_ILP; i < items; i++) ts_add_##S(part[0], x + i * lanes, lanes); \
        for (int k = 1; k < TS_ILP; k++) ts_add_##S(part[0], part[k], lanes);               \
        memcpy(out, part[0], sizeof part[0]);                                               \
    }                                                                                       \
    T fp4m_sum_##S##_torch(const T *x, int64_t n) {                                         \
        T lane[TS_MAXLANES], s = 0;                                                         \
        if (n >= LANES) { /* vectorized_inner_sum */                                        \
            const int64_t nvec = n / LANES;                                                 \
            ts_row_##S(x, nvec, LANES, lane);                                               \
            for (int64_t k = nvec * LANES; k < n; k++) s += x[k];                           \
            for (int l = 0; l < LANES; l++) s += lane[l];                                   \
        } else if (n > 0) { /* scalar row_sum */                                            \
            ts_row_##S(x, n, 1, lane);                                                      \
            s = lane[0];                                                                    \
        }                                                                                   \
        return (T)0 + s;                                                                    \
    }

FP4M_DEFINE_TORCH_SUM(float, f32, 8)
FP4M_DEFINE_TORCH_SUM(double, f64, 4)
