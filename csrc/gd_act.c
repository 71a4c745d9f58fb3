/* Activations: forward and derivative, elementwise. Compiled once per element type (gd_real.h). */
#include "gd_real.h"
#include "gd_act.h"
#include "gd_act_inline.h"

GD_VECTOR_CLONES
void GD(gd_act_forward)(gd_act act, gd_real negative_slope, int64_t n, const gd_real *Z, gd_real *A)
{
    act_forward_inplace(act, negative_slope, n, Z, A);
}

GD_VECTOR_CLONES
void GD(gd_act_backward)(gd_act act, gd_real negative_slope, int64_t n, const gd_real *Z,
                         const gd_real *A, const gd_real *dA, gd_real *dZ)
{
    act_backward_inplace(act, negative_slope, n, Z, A, dA, dZ);
}
