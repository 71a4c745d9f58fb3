/* Activations, elementwise. Templated header: include after gd_real.h (see gdcore.h). */

/* A = act(Z) over n values. A may alias Z. */
void GD(gd_act_forward)(gd_act act, gd_real negative_slope, int64_t n, const gd_real *Z, gd_real *A);

/* dZ = dA ⊙ act'(Z) over n values; act' is read from Z or from A = act(Z), whichever is cheaper.
 * dZ may alias dA. */
void GD(gd_act_backward)(gd_act act, gd_real negative_slope, int64_t n, const gd_real *Z,
                         const gd_real *A, const gd_real *dA, gd_real *dZ);
