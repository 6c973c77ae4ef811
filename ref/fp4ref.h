/* fp4ref.h - the fp4sim oracle: bit-exact number formats and conversions.
 *
 * Public header of the ref/ component. Everything in fp4sim that touches a
 * code (E2M1 nibble, E4M3 byte, FP32 bit pattern, ...) goes through here.
 *
 * Conventions (see docs/formats.md for the full story and sources):
 *  - Codes are unsigned integers holding the format's bit pattern in the low
 *    bits: uint8_t for formats of <= 8 bits, uint16_t for FP16/BF16,
 *    uint32_t for FP32, uint64_t for FP64 and for the generic API.
 *  - Exact values are (class, sign, integer significand, binary exponent),
 *    never floats: value = (-1)^sign * sig * 2^exp.
 *  - Rounding mode, special-value policy and options travel explicitly in an
 *    fp4_cvt_opts struct; nothing is global (SoftFloat's known complaint).
 *  - Every rounding function returns the MPFR ternary value: negative if the
 *    result is below the exact value, 0 if equal, positive if above.
 *    NaN results have ternary 0.
 *  - Exception flags use TestFloat's bits, with fp4sim-only bits above.
 */
#ifndef FP4REF_H
#define FP4REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FP4SIM_VERSION "0.1.0"

/* ---------------------------------------------------------------------------
 * Errors: the one channel of every fp4sim library (ref, io, emu, kernels,
 * conformance, vectors, model). A failing function returns -1 (or a status
 * code) and leaves a one-line message naming the offending input in a
 * thread-local buffer, with a kind that says whose fault it was.
 * ------------------------------------------------------------------------- */

typedef enum fp4_errkind {
    FP4_ERR_NONE = 0,
    FP4_ERR_INPUT,       /* bad argument or bad input data (CLI exit status 2) */
    FP4_ERR_IO,          /* a file could not be read or written (exit 1) */
    FP4_ERR_NOMEM,       /* out of memory (exit 1) */
    FP4_ERR_UNSUPPORTED, /* valid request this build / device / engine cannot do (exit 1) */
    FP4_ERR_INTERNAL,    /* a computation failed that should not have (exit 1) */
    FP4_ERR_KIND_COUNT
} fp4_errkind;

/* The last message on this thread ("" if none), and its kind. */
const char *fp4_last_error(void);
fp4_errkind fp4_last_error_kind(void);
const char *fp4_errkind_name(fp4_errkind k); /* "input", "io", ... */
void fp4_error_clear(void);
/* Sets the message (printf-style, made one line) with kind FP4_ERR_INPUT and
 * returns -1, so callers can `return fp4_fail(...)`. The arguments may
 * include fp4_last_error() itself: the text is built before it is stored. */
int fp4_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same with an explicit kind. */
int fp4_fail_kind(fp4_errkind kind, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefixes the current message: "<fmt>: <previous message>", keeping its
 * kind (FP4_ERR_INTERNAL if there was none). Returns -1. */
int fp4_fail_wrap(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---------------------------------------------------------------------------
 * Formats
 * ------------------------------------------------------------------------- */

typedef enum fp4_format {
    FP4_FMT_E2M1 = 0, /* OCP FP4, PTX .e2m1: no Inf, no NaN, max 6 */
    FP4_FMT_E2M3,     /* OCP FP6, PTX .e2m3: no Inf, no NaN, max 7.5 */
    FP4_FMT_E3M2,     /* OCP FP6, PTX .e3m2: no Inf, no NaN, max 28 */
    FP4_FMT_E4M3,     /* E4M3FN: NaN = S.1111.111 only, no Inf, max 448 */
    FP4_FMT_UE4M3,    /* unsigned E4M3 in 7 bits (NVFP4 block scale), NaN 0x7F */
    FP4_FMT_E5M2,     /* IEEE-like: Inf and NaN, max 57344 */
    FP4_FMT_UE8M0,    /* OCP E8M0: 2^(e-127), e=0..254, 0xFF NaN, no zero */
    FP4_FMT_F16,      /* IEEE binary16 */
    FP4_FMT_BF16,     /* bfloat16 */
    FP4_FMT_F32,      /* IEEE binary32 */
    FP4_FMT_F64,      /* IEEE binary64 */
    FP4_FMT_COUNT
} fp4_format;

/* How a format spells NaN. */
typedef enum fp4_nan_kind {
    FP4_NAN_NONE = 0,  /* no NaN code (E2M1, E2M3, E3M2) */
    FP4_NAN_IEEE,      /* exponent all ones, mantissa != 0 */
    FP4_NAN_ALL_ONES,  /* only exponent and mantissa all ones (E4M3FN, UE4M3, UE8M0) */
} fp4_nan_kind;

typedef struct fp4_format_info {
    const char *name;        /* canonical lower-case name, e.g. "e2m1" */
    int bits;                /* code width in bits */
    int ebits, mbits;        /* exponent and fraction field widths */
    int bias;
    bool is_signed;          /* has a sign bit (MSB of the code) */
    bool has_inf;
    bool has_zero;           /* false only for UE8M0 */
    bool has_subnormals;     /* false only for UE8M0 */
    fp4_nan_kind nan;
    uint64_t max_finite;     /* code of the largest positive finite value */
    uint64_t canonical_nan;  /* code produced for a positive NaN result (0 if none) */
    int emin;                /* exponent of the smallest normal: 2^emin */
    int emax;                /* exponent of the largest binade with finite values */
    const char *evidence;    /* where the definition comes from */
} fp4_format_info;

/* Static description of a format; NULL for an out-of-range enum. */
const fp4_format_info *fp4_format_get(fp4_format f);
/* Number of codes: 2^bits (UE4M3 has 128: bit 7 must be zero). */
uint64_t fp4_format_ncodes(fp4_format f);
/* Parses a name or alias ("e2m1", "fp4", "e4m3fn", "float8_e4m3fn", "f32",
 * "fp32", "float32", "half", ...), case-insensitive. Returns 0 on success,
 * -1 for an unknown name. */
int fp4_format_from_name(const char *name, fp4_format *out);
/* Comma-separated list of canonical names, for messages. */
const char *fp4_format_names(void);

/* ---------------------------------------------------------------------------
 * Rounding modes, policies, options, flags
 * ------------------------------------------------------------------------- */

typedef enum fp4_round {
    FP4_RNE = 0, /* nearest, ties to even (PTX .rn) */
    FP4_RNA,     /* nearest, ties away from zero (PTX .rna, microxcaling) */
    FP4_RZ,      /* toward zero (PTX .rz) */
    FP4_RU,      /* toward +inf (PTX .rp) */
    FP4_RD,      /* toward -inf (PTX .rm) */
    FP4_RS,      /* stochastic with caller bits (PTX .rs), see fp4_cvt_opts */
    FP4_ROUND_COUNT
} fp4_round;

/* Special-value and overflow policies, one per producer family. Each is
 * documented with its source in docs/formats.md and in formats.c. */
typedef enum fp4_policy {
    FP4_POLICY_SATFINITE = 0, /* PTX cvt .satfinite: |x|>max -> +-max; Inf -> +-max;
                                 NaN -> canonical NaN, or +max where no NaN exists */
    FP4_POLICY_NOSAT,         /* IEEE overflow (by mode); Inf kept; where the format has
                                 no Inf an infinite result becomes NaN (sign kept, as
                                 PyTorch eager float8_e4m3fn), where it has neither it
                                 saturates; NaN -> NaN with sign (or +max, invalid) */
    FP4_POLICY_ML_DTYPES,     /* ml_dtypes 0.6: as NOSAT, but formats without NaN map
                                 NaN -> code 0x8.. (the "-0" pattern), -NaN -> 0x0 */
    FP4_POLICY_CUTLASS_HOST,  /* CUTLASS host converters: satfinite; NaN -> +-max keeping
                                 sign where no NaN exists; unsigned formats take |x| */
    FP4_POLICY_MODELOPT,      /* modelopt _cast_fp4: sign = (x < 0) so -0 -> 0x0,
                                 NaN (either sign) -> 0x7; 8-bit formats as PyTorch eager */
    FP4_POLICY_COUNT
} fp4_policy;

/* Option bits for fp4_cvt_opts.options. */
#define FP4_OPT_DAZ  0x1u /* subnormal inputs (of the source format) read as signed zero */
#define FP4_OPT_FTZ  0x2u /* subnormal results flushed to signed zero */
#define FP4_OPT_RELU 0x4u /* PTX .relu: negative results -> +0; NaN stays NaN */
#define FP4_OPT_TININESS_AFTER 0x8u /* underflow flag: tininess detected after rounding
                                       (IEEE 754 §7.5; SoftFloat's
                                       softfloat_tininess_afterRounding); default before */

/* Exception flags (TestFloat's bits; fp4sim-only bits from 0x20). */
#define FP4_FLAG_INEXACT   0x01u
#define FP4_FLAG_UNDERFLOW 0x02u /* tiny and inexact; tiny before rounding unless
                                     FP4_OPT_TININESS_AFTER */
#define FP4_FLAG_OVERFLOW  0x04u
#define FP4_FLAG_DIVBYZERO 0x08u
#define FP4_FLAG_INVALID   0x10u /* signaling NaN input, any NaN into a format without NaN
                                     (e2m1/e2m3/e3m2), negative input to an unsigned format;
                                     a quiet NaN into a format with NaN raises nothing */
#define FP4_FLAG_SATURATED 0x20u /* result clamped to +-max by the policy */
#define FP4_FLAG_FLUSHED   0x40u /* input or result flushed by DAZ/FTZ */

typedef struct fp4_cvt_opts {
    fp4_round round;
    fp4_policy policy;
    unsigned options;   /* FP4_OPT_* bits */
    uint32_t rbits;     /* random bits for FP4_RS (low rbits_width bits used) */
    int rbits_width;    /* number of random bits; 0 = PTX's width for the
                           destination: 16 for BF16, 13 for FP16, 8 otherwise */
} fp4_cvt_opts;

/* Default: RNE, satfinite, no options. */
fp4_cvt_opts fp4_cvt_opts_default(void);
/* Parses "rne","rn","rna","rz","ru","rp","rd","rm","rs". 0 ok, -1 unknown. */
int fp4_round_from_name(const char *name, fp4_round *out);
const char *fp4_round_name(fp4_round r);
/* Parses "satfinite","nosat","ml_dtypes","cutlass-host","modelopt". */
int fp4_policy_from_name(const char *name, fp4_policy *out);
const char *fp4_policy_name(fp4_policy p);
const char *fp4_policy_evidence(fp4_policy p);
/* PTX's number of random bits for .rs into format f. */
int fp4_rs_default_width(fp4_format f);

/* ---------------------------------------------------------------------------
 * Exact values
 * ------------------------------------------------------------------------- */

typedef enum fp4_class {
    FP4_CLASS_ZERO = 0,
    FP4_CLASS_FINITE, /* non-zero finite */
    FP4_CLASS_INF,
    FP4_CLASS_NAN
} fp4_class;

/* value = (-1)^sign * sig * 2^exp. For FINITE, sig != 0 and is reduced
 * (odd), so equal values have equal representations. */
typedef struct fp4_value {
    fp4_class cls;
    int sign;      /* 0 or 1 */
    uint64_t sig;
    int32_t exp;
} fp4_value;

/* Decodes a code. Codes >= fp4_format_ncodes(f) decode as NaN (and
 * fp4_code_valid returns false for them). */
fp4_value fp4_decode(fp4_format f, uint64_t code);
bool fp4_code_valid(fp4_format f, uint64_t code);
/* Whether a NaN code is signaling: IEEE formats and E5M2 when the first
 * fraction bit is 0 (IEEE 754-2019 §6.2.1); never for the single NaN code
 * of E4M3/UE4M3/UE8M0; always for a code outside the format. False for
 * codes that are not NaN. */
bool fp4_nan_is_signaling(fp4_format f, uint64_t code);
double fp4_to_f64(fp4_format f, uint64_t code);
/* Exact value of a double / float. */
fp4_value fp4_value_from_f64(double x);
fp4_value fp4_value_from_f32(float x);
/* Converts an exact value to double, rounding to nearest even (exact for
 * every value of every fp4sim format). */
double fp4_value_to_f64(const fp4_value *v);
/* Writes the exact value as decimal (all digits), e.g. "-0.001953125",
 * "448", "inf", "nan". Returns the length written (snprintf semantics). */
int fp4_value_to_string(const fp4_value *v, char *buf, size_t n);
/* Writes it as "sig*2^exp" (e.g. "-7*2^-3"). */
int fp4_value_to_sig_exp_string(const fp4_value *v, char *buf, size_t n);

/* ---------------------------------------------------------------------------
 * Encoding (rounding) - all return the ternary value
 * ------------------------------------------------------------------------- */

/* Rounds an exact value into format f. fp4_value holds no NaN payload, so a
 * NaN value is converted as a quiet NaN; the code-based entry points below
 * (fp4_convert, fp4_encode_f32/_f64) see the payload and raise invalid for
 * a signaling NaN. */
int fp4_encode_value(fp4_format f, const fp4_value *v, const fp4_cvt_opts *o,
                     uint64_t *code, unsigned *flags);
/* Rounds (-1)^sign * L * 2^exp into f, where L is the little-endian
 * multi-word integer limbs[0..nlimbs) of any size (L may be zero). */
int fp4_encode_bigint(fp4_format f, int sign, const uint64_t *limbs, size_t nlimbs,
                      int64_t exp, const fp4_cvt_opts *o, uint64_t *code, unsigned *flags);
/* From binary32 / binary64 (DAZ looks at the source format). */
int fp4_encode_f32(fp4_format f, float x, const fp4_cvt_opts *o, uint64_t *code,
                   unsigned *flags);
int fp4_encode_f64(fp4_format f, double x, const fp4_cvt_opts *o, uint64_t *code,
                   unsigned *flags);
/* From a code of another format (DAZ looks at the source format). */
int fp4_convert(fp4_format dst, fp4_format src, uint64_t src_code, const fp4_cvt_opts *o,
                uint64_t *code, unsigned *flags);

/* SoftFloat-style named conversions. ternary and flags may be NULL. */
#define FP4_DECLARE_CVT(dst, ctype)                                                        \
    ctype f32_to_##dst(float x, const fp4_cvt_opts *o, int *ternary, unsigned *flags);      \
    ctype f64_to_##dst(double x, const fp4_cvt_opts *o, int *ternary, unsigned *flags);     \
    float dst##_to_f32(ctype code);                                                         \
    double dst##_to_f64(ctype code);
FP4_DECLARE_CVT(e2m1, uint8_t)
FP4_DECLARE_CVT(e2m3, uint8_t)
FP4_DECLARE_CVT(e3m2, uint8_t)
FP4_DECLARE_CVT(e4m3, uint8_t)
FP4_DECLARE_CVT(ue4m3, uint8_t)
FP4_DECLARE_CVT(e5m2, uint8_t)
FP4_DECLARE_CVT(ue8m0, uint8_t)
FP4_DECLARE_CVT(f16, uint16_t)
FP4_DECLARE_CVT(bf16, uint16_t)
#undef FP4_DECLARE_CVT

/* ---------------------------------------------------------------------------
 * Bit views of IEEE binary32/binary64 (memcpy: no aliasing, no UB).
 * ------------------------------------------------------------------------- */

static inline uint32_t fp4_f32_bits(float x) {
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}
static inline float fp4_f32_from_bits(uint32_t b) {
    float x;
    memcpy(&x, &b, sizeof x);
    return x;
}
static inline uint64_t fp4_f64_bits(double x) {
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}
static inline double fp4_f64_from_bits(uint64_t b) {
    double x;
    memcpy(&x, &b, sizeof x);
    return x;
}

/* ---------------------------------------------------------------------------
 * E2M1 packing. The universal convention: element 2j in the LOW nibble of
 * byte j, element 2j+1 in the high nibble (modelopt, torchao, torch
 * float4_e2m1fn_x2, __nv_cvt_float2_to_fp4x2 with x.x low). PTX
 * `cvt.rn.satfinite.e2m1x2.f32 d, a, b` puts a in d[7:4] and b in d[3:0], so
 * to store x[2j], x[2j+1] you pass a = x[2j+1], b = x[2j].
 * ------------------------------------------------------------------------- */

/* Byte holding elements (2j, 2j+1) = (even, odd). */
static inline uint8_t e2m1x2_pack(uint8_t even, uint8_t odd) {
    return (uint8_t)((even & 0xFu) | ((odd & 0xFu) << 4));
}
static inline uint8_t e2m1x2_even(uint8_t byte) { return (uint8_t)(byte & 0xFu); }
static inline uint8_t e2m1x2_odd(uint8_t byte) { return (uint8_t)(byte >> 4); }
/* Byte that PTX `cvt ... e2m1x2 d, a, b` produces from the codes of a and b. */
static inline uint8_t e2m1x2_from_ptx_ab(uint8_t a, uint8_t b) {
    return (uint8_t)(((a & 0xFu) << 4) | (b & 0xFu));
}
/* PTX operands (a, b) to pass so that `even` lands in the low nibble. */
static inline void e2m1x2_ptx_operands(float even, float odd, float *a, float *b) {
    *a = odd;
    *b = even;
}
/* n unpacked codes -> (n+1)/2 bytes (odd n: last high nibble 0). */
void e2m1_pack(uint8_t *dst, const uint8_t *codes, int64_t n);
/* (n+1)/2 bytes -> n codes. */
void e2m1_unpack(uint8_t *codes, const uint8_t *src, int64_t n);

/* ---------------------------------------------------------------------------
 * Arrays. dst receives one code per element in the narrowest C type that
 * holds it (see fp4_format_code_bytes). Bit-identical to the scalar path for
 * every input, on any thread count. RNE + satfinite into E2M1/E4M3 uses a
 * vectorized path picked at run time (AVX-512 / AVX2 / portable).
 * rbits: per-element random bits for FP4_RS (NULL otherwise).
 * Returns 0, or -1 for bad arguments.
 * ------------------------------------------------------------------------- */
int fp4_format_code_bytes(fp4_format f); /* 1, 2, 4 or 8 */
int fp4_f32_to_codes(fp4_format f, void *dst, const float *src, int64_t n,
                     const fp4_cvt_opts *o, const uint32_t *rbits);
/* The fast kernels themselves (RNE, satfinite, no options); serial. */
void fp4_f32_to_e2m1_rne_sat(uint8_t *dst, const float *src, int64_t n);
void fp4_f32_to_e4m3_rne_sat(uint8_t *dst, const float *src, int64_t n);
/* Which SIMD variant the fast kernels use on this machine ("avx512", "avx2",
 * "portable"). */
const char *fp4_simd_level(void);
/* Forces a SIMD variant for tests and benchmarks ("avx512", "avx2",
 * "portable"; NULL or "auto" = the best this CPU supports). Every variant
 * gives the same bits; only speed changes. Process-wide. Returns 0, or -1
 * for an unknown name or one this CPU / build lacks (nothing changed). */
int fp4_simd_set(const char *level);
/* Decodes n codes of format f (src as fp4_format_code_bytes(f) wide
 * integers) to FP32, each as the scalar f##_to_f32 / (float)fp4_to_f64 does:
 * exact for every format but F64 (rounded by the FPU), NaN codes give a NaN
 * with the code's sign, codes >= fp4_format_ncodes(f) give NaN. 1-byte
 * formats go through a 256-entry table. Returns 0, or -1 for bad arguments. */
int fp4_codes_to_f32(fp4_format f, float *dst, const void *src, int64_t n);

#ifdef __cplusplus
}
#endif

#include "fp4rng.h"    /* Philox4x32-10 by (seed, stream, sub, counter), frozen streams */
#include "fp4io.h"     /* safetensors reader/writer, sharded checkpoints */
#include "fp4tensor.h" /* the one block-scaled tensor type; on-disk conventions */
#include "fp4quant.h"  /* quantization recipes, scale layouts, MUFU reciprocal */
#include "fp4gemm.h"   /* exact GEMM oracle, exact FP32 operations, the FP32 epilogue */
#include "fp4engine.h" /* the GEMM engine interface (ref, emu, replay, plugin, cuda) */

#endif /* FP4REF_H */
