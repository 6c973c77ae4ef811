/* probe_internal.h - shared internals of the probe driver (probe.c), its
 * input generators (probe_gen.c) and its JSON writers (probe_json.c). Not
 * installed. */
#ifndef FP4EMU_PROBE_INTERNAL_H
#define FP4EMU_PROBE_INTERNAL_H

#include "fp4emu.h"

/* Scales per row of a block-scaled instruction (0 when unscaled). */
static inline int probe_nscales(const fp4emu_probe_instr *ins) {
    return ins->in.scale_fmt == FP4_FMT_COUNT ? 0 : ins->k / ins->in.scale_block;
}

/* Code of operand element j of A row (t*M + m) or B row (t*N + n): rows are
 * stored K codes apart. */
static inline uint64_t probe_code(const void *codes, int bytes, int64_t i) {
    return bytes == 2 ? ((const uint16_t *)codes)[i] : ((const uint8_t *)codes)[i];
}

/* Inputs of sample s of a batch, as pointers into it. */
typedef struct probe_sample {
    const void *a, *b;      /* K codes each */
    const uint8_t *sa, *sb; /* K/16 scales each, or NULL */
    uint32_t c;
    fp4emu_probe_group group;
} probe_sample;

probe_sample probe_sample_at(const fp4emu_probe_instr *ins, const fp4emu_probe_batch *b, int64_t s);

/* Fills one tile of the batch with inputs of group g (probe_gen.c);
 * returns the group actually generated (a targeted group that cannot be
 * built for this instruction falls back to random). */
fp4emu_probe_group probe_gen_tile(const fp4emu_probe_instr *ins, fp4emu_probe_batch *b, int64_t t,
                                  fp4emu_probe_group g, uint64_t seed);

/* Whether group g applies to the instruction at all (scales: scaled only). */
bool probe_group_applies(const fp4emu_probe_instr *ins, fp4emu_probe_group g);

#endif
