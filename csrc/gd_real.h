/* Element type of one compilation of the templated sources.
 *
 * Every csrc/gd_*.c kernel file is written once in terms of `gd_real` and GD(name); the build
 * compiles it twice: without GD_DOUBLE (float, names end in _f32) and with it (double, _f64).
 * One source for both dtypes, so the two can never drift apart. <tgmath.h> picks expf/exp etc.
 * from the argument type. */
#ifndef GD_REAL_H
#define GD_REAL_H

#include <stddef.h>
#include <string.h>
#include <tgmath.h>
#include "gd_types.h"

#ifdef GD_DOUBLE
#define gd_real double
#define gd_bits uint64_t
#define GD_EXPONENT_MASK 0x7FF0000000000000ull
#define GD(name) name##_f64
#define GD_GEMM(ctx) ((ctx)->dgemm)
#else
#define gd_real float
#define gd_bits uint32_t
#define GD_EXPONENT_MASK 0x7F800000u
#define GD(name) name##_f32
#define GD_GEMM(ctx) ((ctx)->sgemm)
#endif

/* 1 if x is inf or NaN (all exponent bits set). An integer compare: OR-ed over a loop it
 * vectorizes without -ffast-math, and unlike a float sum it cannot overflow. */
static inline int is_nonfinite(gd_real x)
{
    gd_bits bits;
    memcpy(&bits, &x, sizeof bits);
    return (bits & GD_EXPONENT_MASK) == GD_EXPONENT_MASK;
}

/* 1 if any of x[0..n) is inf or NaN. */
static inline int any_nonfinite(int64_t n, const gd_real *x)
{
    int found = 0;
    int64_t i;
    for (i = 0; i < n; i++)
        found |= is_nonfinite(x[i]);
    return found;
}

#endif
