/* fp4kernels.h - public C API of the kernels/ component (CUDA inside).
 *
 * Every entry point validates its arguments and returns a status; nothing is
 * launched on bad input. When fp4sim was built without CUDA, or no GPU is
 * present, the functions return FP4K_ERR_NOT_BUILT / FP4K_ERR_NO_DEVICE. */
#ifndef FP4KERNELS_H
#define FP4KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum fp4k_status {
    FP4K_OK = 0,
    FP4K_ERR_ARG = 1,       /* bad argument (null, negative size, ...) */
    FP4K_ERR_NO_DEVICE = 2, /* no CUDA device visible */
    FP4K_ERR_CUDA = 3,      /* a CUDA call failed; see fp4_last_error() */
    FP4K_ERR_NOT_BUILT = 4, /* fp4sim was configured without CUDA */
    FP4K_ERR_ARCH = 5       /* the instruction does not exist on this GPU (or was not
                               compiled for it); fp4_last_error() says which */
} fp4k_status;

typedef struct fp4k_device_info {
    char name[256];
    int cc_major, cc_minor;
    int driver_version;  /* cudaDriverGetVersion, e.g. 13000 */
    int runtime_version; /* cudaRuntimeGetVersion */
    int sm_count;
    int clock_khz;       /* max SM clock */
} fp4k_device_info;

/* 1 if the library was built with CUDA. */
int fp4k_built_with_cuda(void);
/* Number of visible devices (0 without CUDA or GPU). */
int fp4k_device_count(void);
fp4k_status fp4k_get_device_info(int device, fp4k_device_info *out);
/* Every status other than FP4K_OK leaves a one-line message in fp4sim's
 * error channel, fp4_last_error() (fp4ref.h), with kind FP4_ERR_INPUT (bad
 * argument), FP4_ERR_UNSUPPORTED (no device, not built, wrong architecture)
 * or FP4_ERR_INTERNAL (a CUDA call failed). fp4k_fail sets it. */
fp4k_status fp4k_fail(fp4k_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* FP32 -> E2M1 / E4M3 with RNE + satfinite on the GPU (host buffers in and
 * out; one unpacked code per byte). On sm_100a/sm_120a this is the hardware
 * `cvt.rn.satfinite.{e2m1x2,e4m3x2}.f32`; on sm_90 E4M3 is hardware and E2M1
 * is cuda_fp4.h's emulation path. Used to check the device against ref/. */
fp4k_status fp4k_f32_to_e2m1_rne_sat(uint8_t *dst, const float *src, int64_t n);
fp4k_status fp4k_f32_to_e4m3_rne_sat(uint8_t *dst, const float *src, int64_t n);

/* ---------------------------------------------------------------------------
 * Tensor-core probes (docs/probe.md)
 *
 * A probe runs `tiles` independent tiles; every tile executes exactly one
 * MMA instruction of shape M x N x K on operands given as codes on the host,
 * and returns the raw output bits. Output (m, n) of a tile is the dot
 * product of A row m and B row n (both K long) plus C[m][n], so a tile
 * yields M*N measured dot products. Nothing but the one instruction touches
 * the values: operands are scattered into registers / shared memory /
 * tensor memory bit for bit, and D is read back bit for bit.
 * ------------------------------------------------------------------------- */

/* The probed instructions. Names (fp4k_probe_info) are the ones emu/ and
 * `fp4sim probe --instr` use. */
typedef enum fp4k_probe_instr {
    FP4K_PROBE_SM90_WGMMA_F16_F32 = 0, /* wgmma m64n8k16 .f32.f16.f16 (sm_90a) */
    FP4K_PROBE_SM90_WGMMA_F16_F16,     /* wgmma m64n8k16 .f16.f16.f16 */
    FP4K_PROBE_SM90_WGMMA_BF16_F32,    /* wgmma m64n8k16 .f32.bf16.bf16 */
    FP4K_PROBE_SM90_WGMMA_E4M3_F32,    /* wgmma m64n8k32 .f32.e4m3.e4m3 */
    FP4K_PROBE_SM90_WGMMA_E4M3_F16,    /* wgmma m64n8k32 .f16.e4m3.e4m3 */
    FP4K_PROBE_MMA_F16_F32,            /* mma.sync m16n8k16 .f32.f16.f16.f32 (sm_90a+) */
    FP4K_PROBE_MMA_E4M3_F32,           /* mma.sync m16n8k32 .f32.e4m3.e4m3.f32 */
    FP4K_PROBE_MMA_E4M3_F16,           /* mma.sync m16n8k32 .f16.e4m3.e4m3.f16 */
    FP4K_PROBE_SM100_MXF4NVF4,         /* tcgen05.mma kind::mxf4nvf4 block_scale 4X ue4m3,
                                          M128 N16 K64 (sm_100a) */
    FP4K_PROBE_SM100_F8F6F4_E4M3_F32,  /* tcgen05.mma kind::f8f6f4 e4m3, F32 D, M128 N16 K32 */
    FP4K_PROBE_SM100_F8F6F4_E4M3_F16,  /* same, F16 D */
    FP4K_PROBE_SM100_F8F6F4_E2M1_F32,  /* tcgen05.mma kind::f8f6f4 e2m1 (8-bit containers) */
    FP4K_PROBE_SM120_MXF4NVF4,         /* mma.sync m16n8k64 kind::mxf4nvf4 block_scale 4X
                                          ue4m3 (sm_120a) */
    FP4K_PROBE_SM120_F8F6F4_E2M1_F32,  /* mma.sync m16n8k32 kind::f8f6f4 .f32.e2m1.e2m1.f32 */
    FP4K_PROBE_COUNT
} fp4k_probe_instr;

/* How operand codes are laid out for the instruction. */
typedef enum fp4k_elem {
    FP4K_ELEM_16 = 0,   /* f16 / bf16: uint16_t codes */
    FP4K_ELEM_8,        /* e4m3: uint8_t codes */
    FP4K_ELEM_4_PACKED, /* e2m1 (mxf4nvf4): uint8_t codes (low nibble), packed two per byte
                           by the probe, lower K in the low nibble */
    FP4K_ELEM_4_IN_8    /* e2m1 (f8f6f4): uint8_t codes, each placed in the middle 4 bits
                           of a byte by the probe (PTX: "central 4 bits ... padding") */
} fp4k_elem;

typedef struct fp4k_probe_desc {
    const char *name;    /* e.g. "sm90-wgmma-f16-f32" */
    const char *ptx;     /* the PTX instruction as issued */
    const char *kernel;  /* the CUDA kernel's (extern "C") symbol, for cuobjdump -fun */
    int cc_major, cc_minor; /* 0, 0: any architecture fp4sim was built for (mma.sync);
                               else the arch-specific target it needs (9.0 = sm_90a) */
    int m, n, k;         /* tile shape */
    fp4k_elem elem;
    int acc_bits;        /* 32 (F32 C/D) or 16 (F16 C/D, in the low half of each word) */
    int scale_block;     /* 16: one UE4M3 scale per 16 elements of a row; 0: unscaled */
} fp4k_probe_desc;

/* Static description (also without CUDA). NULL for an out-of-range value. */
const fp4k_probe_desc *fp4k_probe_info(fp4k_probe_instr instr);
/* Instruction by name, or FP4K_PROBE_COUNT if unknown. */
fp4k_probe_instr fp4k_probe_find(const char *name);

typedef struct fp4k_probe_req {
    fp4k_probe_instr instr;
    int64_t tiles;
    const void *a;      /* tiles*M*K codes, [tile][m][k] (uint16_t for FP4K_ELEM_16, else
                           uint8_t, one code per byte) */
    const void *b;      /* tiles*N*K codes, [tile][n][k] (B is K x N; row n here is its
                           column n, K-major) */
    const uint8_t *sa;  /* scaled: tiles*M*(K/16) UE4M3 codes [tile][m][k/16]; else NULL */
    const uint8_t *sb;  /* scaled: tiles*N*(K/16) [tile][n][k/16]; else NULL */
    const uint32_t *c;  /* tiles*M*N accumulator codes [tile][m][n] */
} fp4k_probe_req;

/* Runs the probe on device 0: d receives tiles*M*N output codes [tile][m][n]
 * (F16 codes in the low 16 bits). FP4K_ERR_ARCH with a one-line message
 * ("... needs sm_100a (compute capability 10.0); this GPU is sm_90 (NVIDIA
 * H100 ...)") when the instruction cannot run here; nothing is launched. */
fp4k_status fp4k_probe_mma(const fp4k_probe_req *req, uint32_t *d);

/* The special-function reciprocal probe: rcp.approx.ftz.f32 (MUFU.RCP) on
 * every x = 1.m, m in [0, 2^23), compared with the correctly rounded
 * rcp.rn.f32. `table` (FP4K_RCP_TABLE_BYTES) receives one 2-bit code per
 * mantissa in the format of data/mufu-rcp-sm90 (byte j holds mantissas
 * 4j..4j+3, mantissa 4j+i in bits 2i..2i+1; 0 equal, 1 one ulp larger, 2 one
 * ulp smaller, 3 other). */
#define FP4K_RCP_TABLE_BYTES (1u << 21)
typedef struct fp4k_rcp_stats {
    int64_t equal, plus1, minus1, other; /* per code, over the 2^23 mantissas */
    int64_t exp_checked, exp_failures;   /* x * 2^e for e in {-120,-60,-10,-1,1,10,60,120}:
                                            bits(rcp) == bits(rcp(x)) - (e << 23) when
                                            both results are normal */
    uint32_t specials_in[8], specials_out[8]; /* +-0, +-inf, NaN, 6, a subnormal, 2^-126 */
    int n_specials;
} fp4k_rcp_stats;
fp4k_status fp4k_probe_rcp(uint8_t *table, fp4k_rcp_stats *stats);

#ifdef __cplusplus
}
#endif
#endif
