/* fp4emu.h - public header of the emu/ component: parametric tensor-core
 * datapath models (block FMA with global alignment), named presets with
 * their evidence, a GEMM driver that runs a model over a whole GEMM, and a
 * fitter that recovers model parameters from measured dot products.
 *
 * The model (docs/emu.md; numerics.md §5.1 restates the Khattak-Mikaitis
 * algorithm it generalizes): an instruction of `k` products is split into
 * blocks of `block` products. Each block FMA
 *   1. drops zero products; NaN/Inf short-circuit (IEEE rules);
 *   2. takes each product's alignment exponent (sum of the operands'
 *      exponents, each clamped to its format's emin: products stay
 *      unnormalized in [0, 4)) and the accumulator's exponent;
 *   3. maxE = max of those exponents, at least min_exp_limit;
 *   4. truncates every term toward zero to a multiple of 2^(maxE - F)
 *      (no sticky bit);
 *   5. sums exactly (integers, never a float);
 *   6. rounds once into the accumulator format with out_bits fraction bits.
 * Blocks chain (the output of one is the accumulator of the next). C joins
 * the first block, or is added after all blocks by a separate RN add.
 *
 * Everything is exact integer arithmetic (int64/__int128 significands, GMP
 * where a window is wider than 126 bits); results never depend on the host
 * floating-point environment or the thread count. Errors: functions return
 * -1 and set fp4_last_error() (fp4_fail convention of ref/).
 */
#ifndef FP4EMU_H
#define FP4EMU_H

#include "fp4ref.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------
 * Model parameters
 * ------------------------------------------------------------------------- */

/* Alignment window that truncates nothing: the block sum is exact. */
#define FP4EMU_F_EXACT 1000000
/* min_exp_limit value meaning "no lower limit on maxE". */
#define FP4EMU_NO_EXP_LIMIT (-1000000)
/* Largest instruction K a model may have. */
#define FP4EMU_MAX_K 4096

/* Where the instruction's C operand enters. */
typedef enum fp4emu_cplace {
    FP4EMU_C_IN_BLOCK = 0, /* aligned and truncated with the first block's products */
    FP4EMU_C_AFTER,        /* blocks start from +0; d = RN(c + blocks) in the accumulator
                              format (an FADD / HADD2 after the HMMAs) */
    FP4EMU_CPLACE_COUNT
} fp4emu_cplace;

/* Alignment exponent of a product (the exponent maxE is taken over). */
typedef enum fp4emu_pexp {
    FP4EMU_PEXP_SUM = 0, /* e(a) + e(b) [+ e(sa) + e(sb)], e(x) = max(floor(log2|x|), emin of
                            x's format): Khattak-Mikaitis, product kept unnormalized */
    FP4EMU_PEXP_EXACT,   /* floor(log2 |product|) (a normalizing multiplier) */
    FP4EMU_PEXP_COUNT
} fp4emu_pexp;

/* Where block scales (UE4M3 / UE8M0) are applied, for scaled inputs. */
typedef enum fp4emu_scale_at {
    FP4EMU_SCALE_PRODUCT = 0, /* every product is a*sa*b*sb, then aligned (one term each) */
    FP4EMU_SCALE_CHUNK,       /* products sharing a scale pair are summed exactly first, the
                                 sum times sa*sb is one term (alignment exponent floor(log2)) */
    FP4EMU_SCALE_AT_COUNT
} fp4emu_scale_at;

typedef struct fp4emu_model {
    /* Shape of one instruction. */
    int k;          /* products per instruction (the MMA's K), 1..FP4EMU_MAX_K */
    int block;      /* products per block FMA; divides k */
    int interleave; /* 0: block j holds products [j*block, (j+1)*block); g > 0: product i
                       goes to block (i / g) % (k / block) (sm90 mma.sync e4m3: g = 2) */
    bool reverse;   /* chain the blocks from the last to the first */
    /* Alignment. */
    int F;                 /* fraction bits kept below maxE (FP4EMU_F_EXACT: none dropped) */
    int min_exp_limit;     /* maxE = max(maxE, min_exp_limit); FP4EMU_NO_EXP_LIMIT: none */
    fp4emu_pexp pexp;      /* product alignment exponent */
    fp4_format unpack;     /* FP4_FMT_COUNT: operands keep their format. Else each (scaled)
                              operand is first converted, exactly, to this format (e.g. F16 for
                              the sm90 E4M3 -> F16 unpack), which only changes the emin used by
                              FP4EMU_PEXP_SUM */
    fp4emu_scale_at scale_at; /* scaled inputs only */
    bool in_subnormals;    /* false: subnormal element/scale codes read as zero */
    /* Accumulator and block output. */
    fp4emu_cplace c_place;
    fp4_format acc;        /* FP4_FMT_F32 or FP4_FMT_F16: format of C, D and every block output */
    int out_bits;          /* fraction bits of each block output (23 for FP32, 13 for the sm90
                              QGMMA, 10 for FP16); the grid is 2^(max(E, emin) - out_bits) */
    fp4_round out_round;   /* rounding of each block output (RZ, RNE, RNA, RU, RD) */
    bool out_subnormals;   /* false: results below the format's emin flush to signed zero */
    bool ovf_inf;          /* true: overflow gives +-Inf in every mode (Khattak-Mikaitis);
                              false: IEEE (RZ overflow gives the largest value on the grid) */
} fp4emu_model;

/* Validates a model; 0 or -1 with fp4_last_error() set. */
int fp4emu_model_check(const fp4emu_model *m);
/* "k=32 block=16 il=2 F=25 c=after acc=f32 out=rz23 ..." (every field).
 * snprintf semantics. */
int fp4emu_model_format(const fp4emu_model *m, char *buf, size_t n);
/* Parses "PRESET", "PRESET:key=val,key=val" or "key=val,..." (overrides on
 * top of sm90-hgmma-f16 when no preset is named). Keys as printed by
 * fp4emu_model_format: k block il rev F minexp pexp unpack scale subin c acc
 * out (rz23, rne13, ...) subout ovf. 0 or -1 with fp4_last_error(). */
int fp4emu_model_parse(const char *spec, fp4emu_model *out);
/* True if both models describe the same function field by field. */
bool fp4emu_model_equal(const fp4emu_model *a, const fp4emu_model *b);

/* ---------------------------------------------------------------------------
 * Presets
 * ------------------------------------------------------------------------- */

typedef enum fp4emu_status {
    FP4EMU_MEASURED = 0, /* bit-exact on every measured sample (numerics.md §5.2) */
    FP4EMU_PUBLISHED,    /* a third party's published model, not verified here */
    FP4EMU_CANDIDATE,    /* a hypothesis: one member of a candidate family, no claim */
    FP4EMU_REFERENCE,    /* a software reference's arithmetic (CUTLASS host loop, FP16
                            blocks): what common references compute, not a GPU */
    FP4EMU_STATUS_COUNT
} fp4emu_status;

typedef struct fp4emu_preset {
    const char *name;     /* e.g. "sm90-hgmma-f16" */
    fp4emu_model model;
    fp4emu_status status;
    const char *inputs;   /* the operand formats it was measured or published for */
    const char *evidence; /* GPU, SASS opcode, toolkit, match count, source */
} fp4emu_preset;

int fp4emu_preset_count(void);
const fp4emu_preset *fp4emu_preset_at(int i);          /* NULL out of range */
const fp4emu_preset *fp4emu_preset_get(const char *name); /* NULL (and fp4_last_error) if unknown */
const char *fp4emu_status_name(fp4emu_status s);       /* "measured", "published", "candidate" */
void fp4emu_preset_print(FILE *f, const fp4emu_preset *p); /* name, status, model, evidence */
void fp4emu_preset_list(FILE *f);                       /* one line per preset */

/* ---------------------------------------------------------------------------
 * Operands and one instruction
 * ------------------------------------------------------------------------- */

/* Operand types of a dot product. Codes are unsigned integers of
 * fp4_format_code_bytes(fmt) bytes each (one E2M1 code per byte here;
 * packed NVFP4 is taken by fp4emu_gemm_nvfp4 / fp4emu_matrix.packed). */
typedef struct fp4emu_input {
    fp4_format a_fmt, b_fmt; /* e2m1 e2m3 e3m2 e4m3 e5m2 f16 bf16 */
    fp4_format scale_fmt;    /* FP4_FMT_UE4M3 or FP4_FMT_UE8M0; FP4_FMT_COUNT: unscaled */
    int scale_block;         /* elements per scale byte (scaled inputs), e.g. 16 for NVFP4 */
} fp4emu_input;

fp4emu_input fp4emu_input_plain(fp4_format a_fmt, fp4_format b_fmt); /* unscaled */
fp4emu_input fp4emu_input_nvfp4(void); /* e2m1 x e2m1, UE4M3 per 16 */

/* One instruction: d = MMA(a[0..m->k), b[0..m->k), c). sa, sb hold
 * ceil(k / scale_block) scale bytes (ignored when unscaled). c and *d are
 * codes of m->acc. */
int fp4emu_mma(const fp4emu_model *m, const fp4emu_input *in, const void *a, const void *b,
               const uint8_t *sa, const uint8_t *sb, uint64_t c, uint64_t *d);

/* ---------------------------------------------------------------------------
 * A dot product over K: chaining and periodic promotion
 * ------------------------------------------------------------------------- */

typedef struct fp4emu_chain {
    int64_t promote_every; /* 0: the MMA accumulator carries the whole K (C = previous D).
                              > 0 (a multiple of the model's k): every promote_every
                              elements the partial D is added into an FP32 accumulator on
                              "CUDA cores" and the MMA accumulator restarts at +0 (DeepSeek's
                              N_C = 128) */
    bool promote_fma;      /* with a group scale s: true acc = RN32(acc + s*D) (FFMA), false
                              acc = RN32(acc + RN32(s*D)) (FMUL, FADD). Without one: RN32(acc + D) */
    const int64_t *k_order; /* NULL: K steps (of k elements) in ascending order; else a
                               permutation of 0..ceil(K/k)-1 */
} fp4emu_chain;

/* Format of c and *d in fp4emu_dot: FP4_FMT_F32 with promotion, else m->acc. */
fp4_format fp4emu_dot_format(const fp4emu_model *m, const fp4emu_chain *ch);

/* d = dot(a[0..K), b[0..K)) + c, K steps of m->k (the last zero-padded).
 * group_scale: NULL, or one FP32 scale per promotion group (group g covers
 * K elements [g*promote_every, (g+1)*promote_every)); requires promotion and
 * that each promotion window holds steps of one group. ch may be NULL. */
int fp4emu_dot(const fp4emu_model *m, const fp4emu_input *in, int64_t K, const void *a,
               const void *b, const uint8_t *sa, const uint8_t *sb, uint64_t c,
               const fp4emu_chain *ch, const float *group_scale, uint64_t *d);

/* ---------------------------------------------------------------------------
 * Kernel structure and the GEMM driver
 *
 * A library GEMM is not one chain along K (docs/emu.md "Kernel structure"):
 * it runs its instruction over K steps in some order, moves the MMA
 * accumulator into an FP32 register accumulator every promote_every
 * elements, and may split K into chunks computed separately (split-K, across
 * CTAs or warp groups) whose FP32 results are then added in a fixed order.
 * ------------------------------------------------------------------------- */

typedef enum fp4emu_reduce {
    FP4EMU_REDUCE_SEQ = 0, /* r = p0; r = RN32(r + p1); ... (ascending chunks) */
    FP4EMU_REDUCE_REV,     /* r = p[S-1]; r = RN32(r + p[S-2]); ... */
    FP4EMU_REDUCE_TREE,    /* pairwise: ((p0 + p1) + (p2 + p3)) + ..., odd one carried */
    FP4EMU_REDUCE_ORDER,   /* sequential in `order` */
    FP4EMU_REDUCE_COUNT
} fp4emu_reduce;

#define FP4EMU_MAX_SPLIT 16

typedef struct fp4emu_structure {
    fp4emu_chain chain;  /* inside each chunk: promotion and K order of its steps (k_order is a
                            permutation of the chunk's steps, relative to its first) */
    int splits;          /* S: chunks of K (1: no split-K) */
    int64_t split_at[FP4EMU_MAX_SPLIT + 1]; /* chunk s covers K elements [split_at[s],
                            split_at[s+1]); split_at[0] = 0, split_at[S] = K. All zero: S even
                            chunks in whole instruction steps (the first ones one step longer) */
    bool k_desc;         /* each chunk's instruction steps in descending K order */
    fp4emu_reduce reduce; /* how the chunks' FP32 results are added (RN) */
    int order[FP4EMU_MAX_SPLIT]; /* FP4EMU_REDUCE_ORDER: chunk indices in adding order */
} fp4emu_structure;

/* One chain over the whole K: no promotion, no split. */
fp4emu_structure fp4emu_structure_plain(void);
/* Parses "promote=N,fma=0|1,korder=asc|desc,split=S,at=B1/B2/...,reduce=seq|rev|tree|
 * order:i/j/...", every key optional ("" = plain). 0 or -1 with fp4_last_error(). */
int fp4emu_structure_parse(const char *s, fp4emu_structure *out);
/* The same form back (keys with default values left out; "" for plain). */
int fp4emu_structure_format(const fp4emu_structure *s, char *buf, size_t n);
/* Checks the structure for a model and K (boundaries, order, promotion). */
int fp4emu_structure_check(const fp4emu_structure *s, const fp4emu_model *m, int64_t K);
/* Resolves the chunk boundaries for K (even split when split_at is all zero). */
void fp4emu_structure_bounds(const fp4emu_structure *s, const fp4emu_model *m, int64_t K,
                             int64_t at[FP4EMU_MAX_SPLIT + 1]);

typedef struct fp4emu_gemm_opts {
    const fp4emu_model *model;
    fp4emu_structure st;
    const uint32_t *acc_init; /* NULL, or M*N codes in fp4emu_dot_format() that start each dot
                                 (the MMA accumulator, or the FP32 one with promotion); one
                                 chunk only */
} fp4emu_gemm_opts;

/* Model from the arguments; plain structure. */
fp4emu_gemm_opts fp4emu_gemm_opts_default(const fp4emu_model *m);

/* Runs a GEMM call (fp4gemm.h) through the model and structure: every
 * output D[m][n] is dot(A[m], B[n]) by the structure, then the call's
 * epilogue (exact, or the FP32 one; ref/'s code for both). Operands: any
 * element formats the model takes, with MMA-level block scales (UE4M3 /
 * UE8M0, one scale_block for A and B) or FP32 block scales applied at
 * promotion (DeepSeek FP8: F32 scales per 128 need promote_every dividing
 * 128, block_rows 1 or 128). OpenMP over outputs; no result depends on the
 * thread count or the call's window. 0, or -1 with fp4_last_error(). */
int fp4emu_gemm(const fp4emu_gemm_opts *o, const fp4_gemm_call *c);

/* The model and structure as an engine ("emu:..."): spec is what follows
 * "emu:", "PRESET[:key=val,...][;structure]" or a model spec. */
int fp4emu_engine_new(const fp4emu_model *m, const fp4emu_structure *s, const char *name,
                      const char *evidence, fp4_engine **out);
int fp4emu_engine_open(const char *spec, fp4_engine **out);

/* ---------------------------------------------------------------------------
 * Fitting a model to measured dot products of one instruction
 * ------------------------------------------------------------------------- */

typedef struct fp4emu_fit_data {
    fp4emu_input in;
    int k;              /* products per sample (the instruction's K) */
    fp4_format acc;     /* format of C and D (F32 or F16) */
    int64_t n;          /* samples */
    const void *a, *b;  /* n*k codes each (fp4_format_code_bytes wide) */
    const uint8_t *sa, *sb; /* n*ceil(k/scale_block) scale bytes (scaled inputs) */
    const uint64_t *c, *d;  /* n accumulator codes: C given, D measured */
} fp4emu_fit_data;

typedef struct fp4emu_fit_space {
    int blocks[8];    /* block widths tried (those dividing k), 0-terminated */
    int f_min, f_max; /* F range */
    bool c_after;     /* also try C added after the blocks */
    bool partitions;  /* also try interleaved partitions (g = 1, 2, 4, 8) and reverse order */
    bool pexp_exact;  /* also try normalized product exponents */
    bool unpack_f16;  /* also try operands unpacked to F16 first (inputs narrower than F16) */
    bool scale_chunk; /* also try chunk-scaled terms (scaled inputs) */
    int outs[8][2];   /* (out_bits, fp4_round) pairs tried; out_bits 0 terminates;
                         out_bits -1 means the accumulator format's full precision */
    int min_exp_limit;     /* used by every candidate */
    int screen;       /* samples in the screening pass (default 64) */
    int slack;        /* candidates within `slack` screening mismatches of the best are
                         evaluated on every sample (default 4) */
} fp4emu_fit_space;

/* Blocks {4,8,16,32,64}, F 8..40, everything on, outputs rz/rne at full
 * precision and rz13/rne13 for F32 (rne/rz for F16), min_exp_limit -133
 * (F32) / -21 (F16) as Khattak-Mikaitis, screen 64, slack 4. */
fp4emu_fit_space fp4emu_fit_space_default(fp4_format acc);

#define FP4EMU_FIT_MAX_BEST 64
#define FP4EMU_FIT_MAX_RESID 16

/* One entry of the report: a model, or a run of models that differ only in
 * F (model.F .. f_hi), all with the same match count. */
typedef struct fp4emu_fit_cand {
    fp4emu_model model;
    int f_hi;         /* last F of the run (== model.F for a single model) */
    int64_t matches;  /* samples reproduced bit for bit */
} fp4emu_fit_cand;

typedef struct fp4emu_fit_report {
    int64_t n_samples, n_candidates, n_evaluated; /* evaluated: survived screening */
    int64_t n_full;       /* candidates (single models) matching every sample */
    int n_best;           /* entries in best[]: by matches (desc), then enumeration order;
                             candidates differing only in consecutive F merged into runs */
    fp4emu_fit_cand best[FP4EMU_FIT_MAX_BEST];
    int n_resid;          /* mismatching samples of best[0] (first FP4EMU_FIT_MAX_RESID) */
    int64_t resid_index[FP4EMU_FIT_MAX_RESID];
    uint64_t resid_model[FP4EMU_FIT_MAX_RESID]; /* what best[0] gives there */
} fp4emu_fit_report;

/* Searches the space (NULL: default) for models reproducing the data.
 * Deterministic for any thread count. 0, or -1 with fp4_last_error(). */
int fp4emu_fit(const fp4emu_fit_data *data, const fp4emu_fit_space *space,
               fp4emu_fit_report *rep);
/* True if m is one of the models of entry c (same fields, F in its run). */
bool fp4emu_fit_cand_has(const fp4emu_fit_cand *c, const fp4emu_model *m);
/* Human-readable report: counts, best candidates, residual cases. */
void fp4emu_fit_print(FILE *f, const fp4emu_fit_data *data, const fp4emu_fit_report *rep);

/* ---------------------------------------------------------------------------
 * Probing a tensor core (docs/probe.md)
 *
 * A probe runs targeted and random dot products of one instruction on a
 * target - a GPU (cli/ wires kernels/' fp4k_probe_mma in) or a simulated
 * GPU (an emu model) - fits the datapath model blind (fp4emu_fit), refines
 * it on subnormal and special-value cases, compares the named presets, and
 * reports a verdict with the samples no model explains.
 * ------------------------------------------------------------------------- */

/* Largest K of a probed instruction, and scales per row (K / 16). */
#define FP4EMU_PROBE_MAX_K 64
#define FP4EMU_PROBE_MAX_SCALES 4

typedef struct fp4emu_probe_instr {
    const char *name;    /* "sm90-wgmma-f16-f32"; the names of kernels/ fp4k_probe_info */
    const char *arch;    /* where it runs: "sm_90a", "sm_100a", "sm_120a", "sm_89+" */
    const char *ptx;     /* the PTX instruction issued */
    const char *sass;    /* the SASS opcode expected (prefix; numerics.md §5.2 for sm_90,
                            not yet seen on Blackwell) */
    fp4emu_input in;     /* operand formats (and UE4M3 per 16 for block-scaled kinds) */
    fp4_format acc;      /* F32 or F16: C and D */
    int m, n, k;         /* one instruction: M x N outputs, K products each */
    const char *presets; /* comma-separated presets the fingerprint compares ("" none) */
} fp4emu_probe_instr;

int fp4emu_probe_instr_count(void);
const fp4emu_probe_instr *fp4emu_probe_instr_at(int i); /* NULL out of range */
/* NULL (and fp4_last_error naming the valid ones) if unknown. */
const fp4emu_probe_instr *fp4emu_probe_instr_get(const char *name);

/* Sample groups. Every tile of a batch belongs to one group. */
typedef enum fp4emu_probe_group {
    FP4EMU_PG_EXACT = 0, /* small integers whose sum every model gets exactly: a wrong result is
                            an operand-layout bug of the probe, not numerics */
    FP4EMU_PG_RANDOM,    /* numerics.md §5.2 distributions */
    FP4EMU_PG_WINDOW,    /* one huge product plus tiny ones, spreads 2..~60 bits (window F) */
    FP4EMU_PG_C_LARGE,   /* C far above or below the products (is C truncated?) */
    FP4EMU_PG_TIES,      /* exact sums halfway between outputs, +- a tiny term (RZ/RNE, sticky) */
    FP4EMU_PG_SCALES,    /* block-scaled: chunk scales of very different exponents */
    FP4EMU_PG_SUBNORMAL, /* subnormal elements, scales, C; tiny results */
    FP4EMU_PG_SPECIAL,   /* NaN/Inf operands and C, NaN (0x7F) and zero scales, overflow */
    FP4EMU_PG_COUNT
} fp4emu_probe_group;

const char *fp4emu_probe_group_name(fp4emu_probe_group g); /* "exact", "random", ... */
/* The groups the blind fit uses (random, window, c-large, ties, scales);
 * exact checks the probe, subnormal and special refine the fitted model. */
bool fp4emu_probe_group_fitted(fp4emu_probe_group g);

/* A batch of tiles, all of one instruction. Output (m, n) of tile t is
 * dot(A[t][m], B[t][n]) + C[t][m][n], sample index (t*M + m)*N + n. */
typedef struct fp4emu_probe_batch {
    int64_t tiles;
    void *a;          /* tiles*M*K codes [t][m][k], fp4_format_code_bytes(a_fmt) each */
    void *b;          /* tiles*N*K codes [t][n][k] */
    uint8_t *sa, *sb; /* scaled: tiles*M*(K/16) and tiles*N*(K/16) UE4M3 codes; else NULL */
    uint32_t *c;      /* tiles*M*N accumulator codes (F16 in the low 16 bits) */
    uint8_t *group;   /* tiles: fp4emu_probe_group of each tile */
} fp4emu_probe_batch;

/* Generates the probe's inputs: `random` dot products, `targeted` per
 * targeted group (rounded up to whole tiles; groups that do not apply to
 * the instruction are left out), Philox-random under `seed`. 0 or -1. */
int fp4emu_probe_batch_make(const fp4emu_probe_instr *ins, int64_t random, int64_t targeted,
                            uint64_t seed, fp4emu_probe_batch *b);
void fp4emu_probe_batch_free(fp4emu_probe_batch *b);

/* A target runs a batch; d receives tiles*M*N output codes. 0, or -1 with
 * fp4_last_error(). */
typedef int (*fp4emu_probe_run_fn)(void *ctx, const fp4emu_probe_instr *ins,
                                   const fp4emu_probe_batch *b, uint32_t *d);

typedef struct fp4emu_probe_target {
    fp4emu_probe_run_fn run;
    void *ctx;
    char device[256];      /* GPU name, or "simulated: <model>" */
    int cc_major, cc_minor; /* 0, 0 when simulated */
    int driver_version, runtime_version; /* cudaDriverGetVersion / cudaRuntimeGetVersion */
    bool simulated;
} fp4emu_probe_target;

/* A simulated GPU whose instruction is `m` (kept by pointer: m must outlive
 * the target); `label` names it in the fingerprint. */
fp4emu_probe_target fp4emu_probe_target_model(const fp4emu_model *m, const char *label);
/* Its run function (ctx is a const fp4emu_model *). */
int fp4emu_probe_run_model(void *ctx, const fp4emu_probe_instr *ins, const fp4emu_probe_batch *b,
                           uint32_t *d);

typedef struct fp4emu_probe_opts {
    int64_t count;    /* random dot products (default 100000) */
    int64_t targeted; /* dot products per targeted group (default 4096) */
    uint64_t seed;    /* Philox seed (default 0) */
    int max_cases;    /* mismatching samples kept with their inputs (default 256) */
    const fp4emu_fit_space *space; /* NULL: fp4emu_fit_space_default(acc) */
} fp4emu_probe_opts;

fp4emu_probe_opts fp4emu_probe_opts_default(void);

typedef enum fp4emu_probe_verdict {
    FP4EMU_PROBE_EXPLAINED = 0,    /* one model reproduces every sample, specials included */
    FP4EMU_PROBE_EXPLAINED_FINITE, /* every fitted sample; some subnormal/special ones differ */
    FP4EMU_PROBE_UNEXPLAINED,      /* no candidate reproduces the fitted samples */
    FP4EMU_PROBE_LAYOUT_ERROR,     /* exact sums came back wrong: the probe, not the GPU */
    FP4EMU_PROBE_VERDICT_COUNT
} fp4emu_probe_verdict;

const char *fp4emu_probe_verdict_name(fp4emu_probe_verdict v); /* "explained", ... */

/* One sample with its inputs (a mismatch of the reported model). */
typedef struct fp4emu_probe_case {
    fp4emu_probe_group group;
    int64_t sample;  /* index in the batch */
    uint16_t a[FP4EMU_PROBE_MAX_K], b[FP4EMU_PROBE_MAX_K];
    uint8_t sa[FP4EMU_PROBE_MAX_SCALES], sb[FP4EMU_PROBE_MAX_SCALES];
    uint32_t c;      /* C */
    uint32_t got;    /* D measured on the target */
    uint32_t model;  /* D of the reported model (exact group: the exact sum) */
} fp4emu_probe_case;

#define FP4EMU_PROBE_MAX_PRESETS 8

typedef struct fp4emu_probe_preset_match {
    const fp4emu_preset *preset;
    int64_t fit_matches; /* over the fitted samples */
    int64_t all_matches; /* over every sample but the exact group */
} fp4emu_probe_preset_match;

typedef struct fp4emu_probe_result {
    const fp4emu_probe_instr *instr;
    fp4emu_probe_verdict verdict;
    int64_t n[FP4EMU_PG_COUNT];       /* samples per group */
    int64_t matched[FP4EMU_PG_COUNT]; /* reproduced by `model` (exact: equal to the exact sum) */
    int64_t n_fit;                    /* samples of the fitted groups */
    fp4emu_fit_report fit;            /* the blind fit over them */
    bool have_model;                  /* false only for a layout error */
    fp4emu_model model;               /* the reported model: best fit, refined on subnormal and
                                         special samples; for "unexplained" the closest */
    int f_lo, f_hi;                   /* F values equivalent to model.F on the fitted samples */
    int n_presets;
    fp4emu_probe_preset_match presets[FP4EMU_PROBE_MAX_PRESETS];
    int64_t n_mismatch;               /* samples the model (or the exact sum) misses */
    int n_cases;
    fp4emu_probe_case *cases;         /* the first min(n_mismatch, max_cases) of them */
} fp4emu_probe_result;

/* Runs the whole probe of one instruction on a target. 0 (whatever the
 * verdict), or -1 with fp4_last_error() when the target or the fit failed.
 * Release r with fp4emu_probe_result_free. */
int fp4emu_probe_run(const fp4emu_probe_instr *ins, const fp4emu_probe_target *t,
                     const fp4emu_probe_opts *o, fp4emu_probe_result *r);
void fp4emu_probe_result_free(fp4emu_probe_result *r);
/* Human-readable summary (verdict, model, group counts, presets, cases). */
void fp4emu_probe_print(FILE *f, const fp4emu_probe_result *r);

/* The fingerprint (docs/probe.md "Fingerprint format") as a JSON string
 * (free() it): the device of t, the options, and one object per result;
 * sass[i] (may be NULL, or NULL entries) lists the SASS opcodes seen for
 * result i. NULL and fp4_last_error() on failure. */
char *fp4emu_probe_fingerprint(const fp4emu_probe_target *t, const fp4emu_probe_opts *o,
                               const fp4emu_probe_result *r, int n, const char *const *sass);
/* Every kept case of the results as JSON (free() it): the failing-cases file. */
char *fp4emu_probe_cases_json(const fp4emu_probe_result *r, int n);

#ifdef __cplusplus
}
#endif
#endif
