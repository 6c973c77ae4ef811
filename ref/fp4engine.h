/* fp4engine.h - the GEMM engine interface (part of ref/, included by
 * fp4ref.h): the exact oracle, an emu/ datapath model with a kernel
 * structure, a recorded result, a CUDA kernel or a plugin are
 * interchangeable behind one struct of function pointers, with
 * capabilities and an evidence string.
 *
 * Engines are opened by a spec string through the registry of
 * conformance/ (fp4conform.h, fp4conf_engine_open): "ref", "emu:PRESET
 * [:overrides][;structure]", "replay:FILE", "plugin:LIB.so[:args]",
 * "cuda:INSTR". ref/ itself provides the "ref" engine; nothing below the
 * registry needs to know the others, and model/ only ever receives an
 * engine object.
 *
 * Plugins: a shared library exporting
 *     int fp4sim_engine_open_v1(const char *args, fp4_engine **out);
 * fills an fp4_engine it owns (abi = FP4_ENGINE_ABI_VERSION, name, kind
 * "plugin", evidence, caps, gemm, close, optionally error) and returns 0.
 * A plugin needs this header's types only: it may decode codes itself (the
 * formats are documented in docs/formats.md) and report failures through
 * its `error` function instead of linking fp4sim. The ABI is versioned: a
 * change of any struct in this header or of fp4_tensor / fp4_gemm_call
 * bumps FP4_ENGINE_ABI_VERSION and the symbol's suffix. Example:
 * examples/plugin/ (docs/engines.md).
 */
/* The component's one header first: it includes this one, in dependency order. */
#include "fp4ref.h"
#ifndef FP4ENGINE_H
#define FP4ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FP4_ENGINE_ABI_VERSION 1

typedef struct fp4_engine_caps {
    uint32_t kinds_a, kinds_b; /* FP4_TK_BIT(kind) masks of the operand kinds accepted */
    bool mixed;                /* A and B may be of different kinds */
    uint32_t outs;             /* (1u << FP4_FMT_F32) | ... : output formats */
    uint32_t epilogues;        /* (1u << FP4_EPI_EXACT) | (1u << FP4_EPI_F32) */
    bool exact;                /* every result is the oracle's (correctly rounded) */
    bool device;               /* runs on a GPU */
    int64_t k_multiple;        /* K must be a multiple of this (1: any) */
} fp4_engine_caps;

typedef struct fp4_engine fp4_engine;
struct fp4_engine {
    uint32_t abi;         /* FP4_ENGINE_ABI_VERSION */
    char name[256];       /* the spec it answers to, e.g. "emu:sm90-qgmma-e4m3-f32;promote=128" */
    char kind[16];        /* "ref", "emu", "replay", "plugin", "cuda", "cmd" */
    char evidence[1024];  /* where its arithmetic comes from (paper, measurement, source) */
    fp4_engine_caps caps;
    /* Computes the call (already checked against caps by fp4_engine_gemm).
     * 0, or -1 with a message (fp4_fail, or the engine's `error`). */
    int (*gemm)(fp4_engine *self, const fp4_gemm_call *call);
    void (*close)(fp4_engine *self);              /* frees the engine itself too */
    const char *(*error)(fp4_engine *self);       /* optional: the last failure's message */
    void *ctx;
};

/* Entry point a plugin exports (see the header comment). */
typedef int (*fp4_engine_open_v1_fn)(const char *args, fp4_engine **out);
#define FP4_ENGINE_PLUGIN_SYMBOL "fp4sim_engine_open_v1"

/* Why `e` cannot run `c` (kinds, output, epilogue, K), in why[n]; true if it can. */
bool fp4_engine_supports(const fp4_engine *e, const fp4_gemm_call *c, char *why, size_t n);
/* Checks the call (fp4_gemm_call_check) and the engine's capabilities
 * (FP4_ERR_UNSUPPORTED naming what is missing), then runs it; a failure
 * inside the engine is reported as "engine NAME: message". 0 or -1. */
int fp4_engine_gemm(fp4_engine *e, const fp4_gemm_call *c);
void fp4_engine_close(fp4_engine *e); /* NULL is fine */
/* Capability helpers for engine writers. */
uint32_t fp4_engine_kinds_all(void);
void fp4_engine_caps_describe(const fp4_engine_caps *c, char *buf, size_t n);

/* The exact oracle as an engine ("ref"): fp4_gemm_exact for every kind,
 * both epilogues, F32/F16/BF16 outputs. */
int fp4_engine_ref_open(fp4_engine **out);

#ifdef __cplusplus
}
#endif
#endif
