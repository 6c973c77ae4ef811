/* test_formats_special.c - the special-value matrices of numerics.md §2.9
 * (Float32 -> E2M1 and Float32 -> E4M3, one column per producer) and the
 * related documented/measured facts of §2.2, §2.3 and §2.5, as hand-written
 * expected codes. These come from NVIDIA hardware, CUDA headers and library
 * measurements, not from ref/ or the oracle, so they must pass as written.
 * Each row is checked through fp4_encode_f32 and through the MPFR oracle.
 *
 * Column -> policy: PTX cvt .satfinite and CUDA __nv_cvt_* SATFINITE (sm_90,
 * host+device) and torch.compile = FP4_POLICY_SATFINITE; torch eager and
 * ml_dtypes float8_e4m3fn = NOSAT / ML_DTYPES; ml_dtypes float4_e2m1fn =
 * ML_DTYPES; CUTLASS host converters = CUTLASS_HOST; modelopt _cast_fp4 (and
 * its torch 8-bit casts) = MODELOPT. */
#include "mpfr_oracle.h"
#include "testutil.h"

#include <math.h>

typedef struct row {
    fp4_format f;
    fp4_policy p;
    float x;
    uint64_t code;
    const char *src; /* where the expected code comes from */
} row;

#define SAT FP4_POLICY_SATFINITE
#define NOSAT FP4_POLICY_NOSAT
#define MLD FP4_POLICY_ML_DTYPES
#define CUT FP4_POLICY_CUTLASS_HOST
#define MOPT FP4_POLICY_MODELOPT
#define E2M1 FP4_FMT_E2M1
#define E4M3 FP4_FMT_E4M3

/* Exact float inputs named in the tables. */
#define F_0_25P 0x1.000002p-2f    /* 0.25000003 */
#define F_5P 0x1.400002p+2f       /* 5.0000005 */
#define F_464M 0x1.cfffffp+8f     /* 463.99997 */
#define F_464P 0x1.d00002p+8f     /* 464.00003 */
#define F_TIE_P 0x1.000002p-10f   /* 2^-10 (1 + 2^-23) */
#define F_1_5_TIE 0x1.8p-10f      /* 1.5 * 2^-10 */

/* Ordinary values: "All implementations below agree on ordinary values and
 * ties" (§2.9, first paragraph), so every policy. */
static const struct {
    float x;
    uint8_t code;
} k_e2m1_common[] = {
    {0.25f, 0x0}, {F_0_25P, 0x1}, {-0.25f, 0x8}, {0.75f, 0x2}, {1.25f, 0x2},
    {1.75f, 0x4}, {2.5f, 0x4},    {3.5f, 0x6},   {5.0f, 0x6},  {F_5P, 0x7},
    {6.5f, 0x7},  {7.0f, 0x7},    {100.0f, 0x7},
};

static const row k_rows[] = {
    /* §2.9 E2M1, column "PTX cvt.rn.satfinite.e2m1x2" (-0 / -0.1 [INF];
     * inf, NaN [DOC]) = column "CUDA __nv_cvt_float_to_fp4 sm_90" [MEAS]. */
    {E2M1, SAT, -0.0f, 0x8, "§2.9 e2m1 PTX satfinite / CUDA sw"},
    {E2M1, SAT, -0.1f, 0x8, "§2.9 e2m1 PTX satfinite / CUDA sw"},
    {E2M1, SAT, INFINITY, 0x7, "§2.9 e2m1 PTX satfinite"},
    {E2M1, SAT, -INFINITY, 0xF, "§2.9 e2m1 PTX satfinite"},
    {E2M1, SAT, NAN, 0x7, "§2.9 e2m1 PTX satfinite: NaN -> +MAX_NORM"},
    {E2M1, SAT, -NAN, 0x7, "§2.9 e2m1 PTX satfinite: NaN -> +MAX_NORM"},
    /* §2.9 E2M1, column "CUTLASS scalar/host sw encoder" [SRC] */
    {E2M1, CUT, -0.0f, 0x8, "§2.9 e2m1 CUTLASS host"},
    {E2M1, CUT, -0.1f, 0x8, "§2.9 e2m1 CUTLASS host"},
    {E2M1, CUT, INFINITY, 0x7, "§2.9 e2m1 CUTLASS host"},
    {E2M1, CUT, -INFINITY, 0xF, "§2.9 e2m1 CUTLASS host"},
    {E2M1, CUT, NAN, 0x7, "§2.9 e2m1 CUTLASS host"},
    {E2M1, CUT, -NAN, 0xF, "§2.9 e2m1 CUTLASS host: nan_with_sign = -6"},
    /* §2.9 E2M1, column "ml_dtypes 0.6.0" [MEAS] */
    {E2M1, MLD, -0.0f, 0x8, "§2.9 e2m1 ml_dtypes"},
    {E2M1, MLD, -0.1f, 0x8, "§2.9 e2m1 ml_dtypes"},
    {E2M1, MLD, INFINITY, 0x7, "§2.9 e2m1 ml_dtypes"},
    {E2M1, MLD, -INFINITY, 0xF, "§2.9 e2m1 ml_dtypes"},
    {E2M1, MLD, NAN, 0x8, "§2.9 e2m1 ml_dtypes: quiet_NaN() is -0"},
    {E2M1, MLD, -NAN, 0x0, "§2.9 e2m1 ml_dtypes: -quiet_NaN() is +0"},
    /* §2.9 E2M1, column "modelopt _cast_fp4" [MEAS] */
    {E2M1, MOPT, -0.0f, 0x0, "§2.9 e2m1 modelopt: sign = (x < 0)"},
    {E2M1, MOPT, -0.1f, 0x8, "§2.9 e2m1 modelopt"},
    {E2M1, MOPT, INFINITY, 0x7, "§2.9 e2m1 modelopt"},
    {E2M1, MOPT, -INFINITY, 0xF, "§2.9 e2m1 modelopt"},
    {E2M1, MOPT, NAN, 0x7, "§2.9 e2m1 modelopt"},
    {E2M1, MOPT, -NAN, 0x7, "§2.9 e2m1 modelopt"},

    /* §2.9 E4M3, column "cvt.rn.satfinite.e4m3x2 / __nv_cvt... SATFINITE"
     * [MEAS]; column "torch.compile CUDA" [MEAS] is identical. */
    {E4M3, SAT, 448.0f, 0x7E, "§2.9 e4m3 satfinite"},
    {E4M3, SAT, 449.0f, 0x7E, "§2.9 e4m3 satfinite"},
    {E4M3, SAT, F_464M, 0x7E, "§2.9 e4m3 satfinite"},
    {E4M3, SAT, 464.0f, 0x7E, "§2.9 e4m3 satfinite"},
    {E4M3, SAT, F_464P, 0x7E, "§2.9 e4m3 satfinite"},
    {E4M3, SAT, 480.0f, 0x7E, "§2.9 e4m3 satfinite"},
    {E4M3, SAT, 500.0f, 0x7E, "§2.9 e4m3 satfinite"},
    {E4M3, SAT, 1e30f, 0x7E, "§2.9 e4m3 satfinite"},
    {E4M3, SAT, INFINITY, 0x7E, "§2.9 e4m3 satfinite"},
    {E4M3, SAT, -INFINITY, 0xFE, "§2.9 e4m3 satfinite"},
    {E4M3, SAT, NAN, 0x7F, "§2.9 e4m3 satfinite"},
    {E4M3, SAT, -NAN, 0x7F, "§2.9 e4m3 satfinite: sign dropped (measured)"},
    {E4M3, SAT, -0.0f, 0x80, "§2.9 e4m3 satfinite"},
    {E4M3, SAT, 0x1p-9f, 0x01, "§2.9 e4m3 satfinite"},
    {E4M3, SAT, F_1_5_TIE, 0x01, "§2.9 e4m3 satfinite"},
    {E4M3, SAT, 0x1p-10f, 0x00, "§2.9 e4m3 satfinite: tie to even"},
    {E4M3, SAT, F_TIE_P, 0x01, "§2.9 e4m3 satfinite"},
    {E4M3, SAT, 0x1p-11f, 0x00, "§2.9 e4m3 satfinite"},
    {E4M3, SAT, 1e-30f, 0x00, "§2.9 e4m3 satfinite"},
    /* §2.9 E4M3, column "CUTLASS host convert_float_to_fp8" [SRC] */
    {E4M3, CUT, 448.0f, 0x7E, "§2.9 e4m3 CUTLASS host"},
    {E4M3, CUT, 464.0f, 0x7E, "§2.9 e4m3 CUTLASS host"},
    {E4M3, CUT, F_464P, 0x7E, "§2.9 e4m3 CUTLASS host"},
    {E4M3, CUT, 1e30f, 0x7E, "§2.9 e4m3 CUTLASS host"},
    {E4M3, CUT, INFINITY, 0x7E, "§2.9 e4m3 CUTLASS host: +448"},
    {E4M3, CUT, -INFINITY, 0xFE, "§2.9 e4m3 CUTLASS host: -448"},
    {E4M3, CUT, NAN, 0x7F, "§2.9 e4m3 CUTLASS host"},
    {E4M3, CUT, -NAN, 0x7F, "§2.9 e4m3 CUTLASS host"},
    {E4M3, CUT, -0.0f, 0x80, "§2.9 e4m3 CUTLASS host [INF]"},

    /* §2.2 PTX cvt [DOC]: NaN -> +MAX_NORM and sign-preserved MAX_NORM on
     * overflow for the other formats without NaN. */
    {FP4_FMT_E2M3, SAT, NAN, 0x1F, "§2.2 PTX e2m3x2: NaN -> +MAX_NORM"},
    {FP4_FMT_E2M3, SAT, -NAN, 0x1F, "§2.2 PTX e2m3x2: NaN -> +MAX_NORM"},
    {FP4_FMT_E2M3, SAT, -100.0f, 0x3F, "§2.2 PTX: sign-preserved MAX_NORM"},
    {FP4_FMT_E3M2, SAT, NAN, 0x1F, "§2.2 PTX e3m2x2: NaN -> +MAX_NORM"},
    {FP4_FMT_E3M2, SAT, -1e30f, 0x3F, "§2.2 PTX: sign-preserved MAX_NORM"},
    {FP4_FMT_E5M2, SAT, 1e6f, 0x7B, "§2.2 PTX e5m2x2: sign-preserved MAX_NORM"},
    {FP4_FMT_E5M2, SAT, -INFINITY, 0xFB, "§2.2 PTX e5m2x2: sign-preserved MAX_NORM"},
    /* §2.5 CUTLASS float_ue4m3_t host: generic converter, sign dropped */
    {FP4_FMT_UE4M3, CUT, -3.0f, 0x44, "§2.5 CUTLASS ue4m3 host: |x|"},
    {FP4_FMT_UE4M3, CUT, NAN, 0x7F, "§2.5 CUTLASS ue4m3 host: NaN -> 0x7F"},
};

/* The E4M3 columns torch eager [MEAS], ml_dtypes [MEAS] and modelopt
 * (torch .to(float8_e4m3fn), §2.8) are identical: built for each policy. */
static const struct {
    float x;
    uint8_t code;
} k_e4m3_eager[] = {
    {448.0f, 0x7E},  {449.0f, 0x7E},     {F_464M, 0x7E},   {464.0f, 0x7E},    {F_464P, 0x7F},
    {480.0f, 0x7F},  {500.0f, 0x7F},     {1e30f, 0x7F},    {INFINITY, 0x7F},  {-INFINITY, 0xFF},
    {NAN, 0x7F},     {-NAN, 0xFF},       {-0.0f, 0x80},    {0x1p-9f, 0x01},   {F_1_5_TIE, 0x01},
    {0x1p-10f, 0x00}, {F_TIE_P, 0x01},   {0x1p-11f, 0x00}, {1e-30f, 0x00},
};

/* Documented producer behaviour fp4sim's policies do not (yet) model; printed
 * as notes, not failures (see the verification report). */
static const row k_divergent[] = {
    {FP4_FMT_UE8M0, SAT, -INFINITY, 0xFE,
     "§2.2/§2.9 PTX .satfinite .ue8m0x2: negative overflow -> positive MAX_NORM"},
    {FP4_FMT_UE8M0, SAT, -3e38f, 0xFE,
     "§2.2/§2.9 PTX .satfinite .ue8m0x2: negative overflow -> positive MAX_NORM"},
    {FP4_FMT_UE8M0, CUT, INFINITY, 0xFF, "§2.5 CUTLASS float_ue8m0_t host: Inf -> 0xFF"},
    {E4M3, NOSAT, -NAN, 0x7F, "§2.3/§2.9 __NV_NOSAT (measured): -NaN -> 0x7F (torch eager: 0xFF)"},
};

static void check_row(const row *r) {
    fp4_cvt_opts o = fp4_cvt_opts_default();
    o.policy = r->p;
    uint64_t got = ~0ull, orc = ~0ull;
    unsigned fl = 0, ofl = 0;
    fp4_encode_f32(r->f, r->x, &o, &got, &fl);
    fp4o_encode_f32(r->f, r->x, &o, &orc, &ofl);
    fp4t_check(got == r->code, "%s %s(%a) under %s: ref 0x%llx, expected 0x%llx", r->src,
               fp4_format_get(r->f)->name, (double)r->x, fp4_policy_name(r->p),
               (unsigned long long)got, (unsigned long long)r->code);
    fp4t_check(orc == r->code, "%s %s(%a) under %s: oracle 0x%llx, expected 0x%llx", r->src,
               fp4_format_get(r->f)->name, (double)r->x, fp4_policy_name(r->p),
               (unsigned long long)orc, (unsigned long long)r->code);
}

int main(void) {
    fp4o_init();
    fp4t_begin("test_formats_special");
    for (int p = 0; p < FP4_POLICY_COUNT; p++)
        for (size_t i = 0; i < sizeof k_e2m1_common / sizeof k_e2m1_common[0]; i++) {
            row r = {E2M1, (fp4_policy)p, k_e2m1_common[i].x, k_e2m1_common[i].code,
                     "§2.9 e2m1 ordinary values (all producers)"};
            check_row(&r);
        }
    for (size_t i = 0; i < sizeof k_rows / sizeof k_rows[0]; i++) check_row(&k_rows[i]);
    const fp4_policy eager[] = {NOSAT, MLD, MOPT};
    for (size_t p = 0; p < 3; p++)
        for (size_t i = 0; i < sizeof k_e4m3_eager / sizeof k_e4m3_eager[0]; i++) {
            row r = {E4M3, eager[p], k_e4m3_eager[i].x, k_e4m3_eager[i].code,
                     "§2.9 e4m3 torch eager / ml_dtypes / modelopt"};
            check_row(&r);
        }
    for (size_t i = 0; i < sizeof k_divergent / sizeof k_divergent[0]; i++) {
        const row *r = &k_divergent[i];
        fp4_cvt_opts o = fp4_cvt_opts_default();
        o.policy = r->p;
        uint64_t got = 0;
        fp4_encode_f32(r->f, r->x, &o, &got, NULL);
        if (got != r->code)
            printf("NOTE known divergence: %s: %s(%a) under %s gives 0x%llx, producer 0x%llx\n",
                   r->src, fp4_format_get(r->f)->name, (double)r->x, fp4_policy_name(r->p),
                   (unsigned long long)got, (unsigned long long)r->code);
    }
    return fp4t_end();
}
