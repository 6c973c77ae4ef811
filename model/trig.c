/* trig.c - cos/sin of float32 angles for transformers' float32 RoPE tables.
 *
 * transformers builds the tables as `emb.cos()` / `emb.sin()` on a float32
 * tensor (modeling_deepseek_v3.py, DeepseekV3RotaryEmbedding.forward). What
 * those return depends on the torch build:
 *  - x86-64 builds with MKL (the pip wheels) call MKL's vector math library,
 *    vmsCos / vmsSin with mode VML_HA | VML_FTZDAZ_OFF | VML_ERRMODE_IGNORE
 *    (aten/src/ATen/cpu/vml.h, IMPLEMENT_VML_MKL). These results are not
 *    correctly rounded: MKL 2020.4 differs from the correctly rounded value
 *    in about 5% of random float arguments. The fixture's float64 run was
 *    recorded with it: with MKL's tables our FP64 path reproduces every
 *    probability of the fixture bit for bit, with correctly rounded tables
 *    4453 of 33280 differ (docs/model.md).
 *  - builds without MKL use Vectorized<float>::cos/sin (SLEEF; not modelled).
 * MKL's code is not public, so FP4M_TRIG_MKL loads the library at run time
 * (no build dependency) and fails with a message where it is missing. The
 * default is the correctly rounded value (MPFR): the same bits on every
 * machine. FP4M_TRIG_USER lets a caller supply any other source, e.g. a
 * table recorded once with MKL (the fixture test does that). */
#include "model_internal.h"

#include <dlfcn.h>
#include <math.h>
#include <mpfr.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

const char *fp4m_trig_name(fp4m_trig t) {
    switch (t) {
    case FP4M_TRIG_CR: return "cr";
    case FP4M_TRIG_MKL: return "mkl";
    case FP4M_TRIG_USER: return "user";
    }
    return "?";
}

int fp4m_trig_parse(const char *s, fp4m_trig *out) {
    if (!strcmp(s, "cr")) *out = FP4M_TRIG_CR;
    else if (!strcmp(s, "mkl")) *out = FP4M_TRIG_MKL;
    else return fp4_fail("model: unknown RoPE trig source '%s' (cr, mkl)", s);
    return 0;
}

/* ---------------------------------------------------------------------------
 * Correctly rounded (round to nearest even) cos/sin of a float, by MPFR at
 * 24 bits. Results are normal floats except sin near 0: for 0 < |x| <
 * 2^-12, |sin x - x| < |x|^3/6 < 2^-25 |x|, less than half an ulp below x,
 * so RN(sin x) = x; returning x there also keeps MPFR away from the
 * subnormal range (its exponent range is wider than float's).
 * ------------------------------------------------------------------------- */

static float mpfr_f32(float x, int (*fn)(mpfr_ptr, mpfr_srcptr, mpfr_rnd_t)) {
    mpfr_t a, r;
    mpfr_init2(a, 24);
    mpfr_init2(r, 24);
    mpfr_set_flt(a, x, MPFR_RNDN); /* exact: 24 bits hold any float */
    fn(r, a, MPFR_RNDN);
    float y = mpfr_get_flt(r, MPFR_RNDN); /* exact: r has 24 bits, normal range */
    mpfr_clear(a);
    mpfr_clear(r);
    return y;
}

float fp4m_cosf_cr(float x) {
    if (!isfinite(x)) return NAN;
    return mpfr_f32(x, mpfr_cos);
}

float fp4m_sinf_cr(float x) {
    if (!isfinite(x)) return NAN;
    if (fabsf(x) < 0x1p-12f) return x; /* also +-0 */
    return mpfr_f32(x, mpfr_sin);
}

/* ---------------------------------------------------------------------------
 * MKL, loaded at run time. The element count is MKL_INT: int in the LP64
 * interface (libmkl_rt's default), int64 in ILP64; it is passed in a 64-bit
 * register on x86-64, so an int64_t argument is read correctly by either.
 * The mode value is VML_HA (0x2) | VML_FTZDAZ_OFF (0x140000) |
 * VML_ERRMODE_IGNORE (0x100), the flags torch passes (vml.h). VML functions
 * are elementwise: the result of an element does not depend on the call's
 * length or alignment (checked on 2^20 floats with MKL 2020.4, AVX2 and
 * AVX-512 code paths alike), so tables can be computed per call.
 * ------------------------------------------------------------------------- */

#define FP4M_VML_MODE 0x140102LL

typedef void (*vml_fn)(int64_t n, const float *a, float *r, long long mode);

static struct {
    pthread_once_t once;
    vml_fn cos, sin;
    char err[512];
} mkl = {PTHREAD_ONCE_INIT, NULL, NULL, ""};

/* $FP4SIM_MKL_LIB, when set, is the only library tried. */
static void mkl_load(void) {
    const char *env = getenv("FP4SIM_MKL_LIB");
    const char *defaults[] = {"libmkl_rt.so.2", "libmkl_rt.so", "libmkl_rt.so.1"};
    const char *const *list = env && *env ? &env : defaults;
    const size_t ncand = env && *env ? 1 : sizeof defaults / sizeof defaults[0];
    for (size_t i = 0; i < ncand; i++) {
        void *h = dlopen(list[i], RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            const char *e = dlerror();
            snprintf(mkl.err, sizeof mkl.err, "%s", e ? e : list[i]);
            continue;
        }
        vml_fn c = (vml_fn)(uintptr_t)dlsym(h, "vmsCos");
        vml_fn s = (vml_fn)(uintptr_t)dlsym(h, "vmsSin");
        if (c && s) {
            mkl.cos = c;
            mkl.sin = s;
            return;
        }
        snprintf(mkl.err, sizeof mkl.err, "%s has no vmsCos/vmsSin", list[i]);
        dlclose(h);
    }
}

int fp4m_trig_mkl_available(void) {
    pthread_once(&mkl.once, mkl_load);
    return mkl.cos != NULL;
}

static int mkl_require(void) {
    if (fp4m_trig_mkl_available()) return 0;
    return fp4_fail("model: RoPE trig 'mkl' needs Intel MKL's libmkl_rt (vmsCos/vmsSin) at run "
                    "time; set FP4SIM_MKL_LIB to its path (last error: %s)",
                    mkl.err);
}

int fp4m_trig_check(const fp4m_opts *o) {
    if (o->rope_prec != FP4M_ROPE_F32) return 0;
    switch (o->rope_trig) {
    case FP4M_TRIG_CR: return 0;
    case FP4M_TRIG_MKL: return mkl_require();
    case FP4M_TRIG_USER:
        return o->trig_fn ? 0 : fp4_fail("model: RoPE trig 'user' needs opts.trig_fn");
    }
    return fp4_fail("model: unknown RoPE trig source %d", (int)o->rope_trig);
}

int fp4m_trig_f32(const fp4m_opts *o, const float *x, float *c, float *s, int64_t n) {
    switch (o->rope_trig) {
    case FP4M_TRIG_CR:
        for (int64_t i = 0; i < n; i++) {
            c[i] = fp4m_cosf_cr(x[i]);
            s[i] = fp4m_sinf_cr(x[i]);
        }
        return 0;
    case FP4M_TRIG_MKL:
        if (mkl_require()) return -1;
        mkl.cos(n, x, c, FP4M_VML_MODE);
        mkl.sin(n, x, s, FP4M_VML_MODE);
        return 0;
    case FP4M_TRIG_USER:
        if (!o->trig_fn) return fp4_fail("model: RoPE trig 'user' needs opts.trig_fn");
        if (o->trig_fn(o->trig_ctx, x, c, s, n))
            return fp4_fail("model: the RoPE trig callback failed (%lld angles)", (long long)n);
        return 0;
    }
    return fp4_fail("model: unknown RoPE trig source %d", (int)o->rope_trig);
}

