/* fp4conform.h - public header of the conformance/ component (see docs/architecture.md).
 * The component is not implemented yet; its issue describes what lands here. */
#ifndef FP4CONFORM_H
#define FP4CONFORM_H
#include "fp4ref.h"
#endif
