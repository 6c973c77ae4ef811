/* fp4model.h - public header of the model/ component (see docs/architecture.md).
 * The component is not implemented yet; its issue describes what lands here. */
#ifndef FP4MODEL_H
#define FP4MODEL_H
#include "fp4ref.h"
#endif
