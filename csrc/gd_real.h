/* Element type of one compilation of the templated sources.
 *
 * Every csrc/gd_*.c kernel file is written once in terms of `gd_real` and GD(name); the build
 * compiles it twice: without GD_DOUBLE (float, names end in _f32) and with it (double, _f64).
 * One source for both dtypes, so the two can never drift apart. <tgmath.h> picks expf/exp etc.
 * from the argument type. */
#ifndef GD_REAL_H
#define GD_REAL_H

#include <stddef.h>
#include <tgmath.h>
#include "gd_types.h"

#ifdef GD_DOUBLE
#define gd_real double
#define GD(name) name##_f64
#define GD_GEMM(ctx) ((ctx)->dgemm)
#else
#define gd_real float
#define GD(name) name##_f32
#define GD_GEMM(ctx) ((ctx)->sgemm)
#endif

#endif
