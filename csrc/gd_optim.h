/* Optimizer updates over flat buffers, in place. Templated header: include after gd_real.h. */

/* One SGD step (gd_sgd in gd_types.h gives the rule) over n parameters.
 * first_step != 0 initialises the momentum buffer v with g, as torch does. */
void GD(gd_sgd_update)(const gd_sgd *opt, int first_step, int64_t n, const gd_real *grad,
                       gd_real *param, gd_real *velocity);
