/* Optimizer updates over flat buffers, in place. Templated header: include after gd_real.h. */

/* One optimizer step over n parameters: `step` is the 1-based number of this step (Adam's bias
 * correction, Adagrad's decay, SGD's first-step buffer) and lr its learning rate. slots are the
 * state buffers (gd_optim in gd_types.h says which each kind uses; unused ones may be NULL).
 * Returns 1 if a parameter it wrote is inf or NaN (finite gradients can still step a weight past
 * the type's range), else 0. */
int GD(gd_optim_update)(const gd_optim *opt, double lr, int64_t step, int64_t n,
                         const gd_real *grad, gd_real *param, gd_real *const *slots);
