/* fp4emu.h - public header of the emu/ component (see docs/architecture.md).
 * The component is not implemented yet; its issue describes what lands here. */
#ifndef FP4EMU_H
#define FP4EMU_H
#include "fp4ref.h"
#endif
