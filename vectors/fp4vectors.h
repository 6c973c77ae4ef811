/* fp4vectors.h - public header of the vectors/ component (see docs/architecture.md).
 * The component is not implemented yet; its issue describes what lands here. */
#ifndef FP4VECTORS_H
#define FP4VECTORS_H
#include "fp4ref.h"
#endif
