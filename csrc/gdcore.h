/* gdcore C core: the one header to include from outside (Python boundary, C tests).
 * Declares every kernel for float (_f32) and double (_f64). */
#ifndef GDCORE_H
#define GDCORE_H

#include "gd_types.h"

#define gd_real float
#define GD(name) name##_f32
#include "gd_act.h"
#include "gd_loss.h"
#include "gd_dense.h"
#include "gd_optim.h"
#include "gd_train.h"
#undef gd_real
#undef GD

#define gd_real double
#define GD(name) name##_f64
#include "gd_act.h"
#include "gd_loss.h"
#include "gd_dense.h"
#include "gd_optim.h"
#include "gd_train.h"
#undef gd_real
#undef GD

#endif
