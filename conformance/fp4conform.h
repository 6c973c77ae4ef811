/* fp4conform.h - public header of the conformance/ component: the engine
 * registry (every GEMM engine opened by a spec string), and the conformance
 * suites, runner, verdicts and reports (docs/conformance.md).
 *
 * Depends on ref (the oracle, the engine interface), emu (datapath models,
 * structures), kernels (device engines) and vectors (generators). Nothing
 * below it knows every engine: model/ and the suites receive engine objects.
 */
#ifndef FP4CONFORM_H
#define FP4CONFORM_H

#include "fp4ref.h"

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------
 * Engine registry (docs/engines.md)
 *   ref                          the exact oracle
 *   emu:PRESET[:k=v,...][;S]     an emu/ datapath model (preset or model spec) with a
 *                                kernel structure S (fp4emu_structure_parse), e.g.
 *                                emu:sm90-qgmma-e4m3-f32;promote=128,split=2
 *   replay:FILE[:u8=FMT]         recorded GEMM outputs (docs/engines.md "Replay files");
 *                                u8= says what U8 operand tensors hold (e.g. e4m3)
 *   plugin:LIB.so[:ARGS]         a shared library exporting fp4sim_engine_open_v1
 *   cuda:INSTR                   the GPU's tensor-core instruction INSTR (fp4sim probe
 *                                list), chained through C one K step at a time; "not
 *                                supported" without a GPU that has it
 * ------------------------------------------------------------------------- */

/* Opens an engine by spec. Failures: FP4_ERR_INPUT for a bad spec or file,
 * FP4_ERR_UNSUPPORTED for an engine this machine cannot run (no GPU, built
 * without CUDA). 0 or -1 with fp4_last_error(). */
int fp4conf_engine_open(const char *spec, fp4_engine **out);
/* The spec forms, the emu presets with their evidence status, the cuda
 * instructions, one per line (what `fp4sim engines` prints). */
void fp4conf_engine_help(FILE *f);

/* Adds one case to a replay file: the call's operands as P.A / P.B (+
 * scales, tensor scales, kind and format metadata) and its computed output
 * D as P.D (the whole output: the call must have no window). What a device
 * run records so any machine can replay it. 0 or -1. */
int fp4conf_replay_record(fp4_st_writer *w, const char *prefix, const fp4_gemm_call *c);

/* Individual engine kinds (the registry calls these). */
int fp4conf_replay_open(const char *args, fp4_engine **out);
int fp4conf_plugin_open(const char *args, fp4_engine **out);
int fp4conf_cuda_open(const char *args, fp4_engine **out);

#ifdef __cplusplus
}
#endif
#endif
