/* Optimizer updates over flat buffers. Compiled once per element type (gd_real.h). */
#include "gd_real.h"
#include "gd_optim.h"

/* The momentum loop with its two flags as compile-time constants at each call below, so every
 * variant is a straight loop the compiler vectorizes. */
static inline void sgd_momentum_loop(int first_step, int nesterov, int64_t n, gd_real lr,
                                     gd_real momentum, gd_real keep, gd_real decay,
                                     const gd_real *grad, gd_real *param, gd_real *velocity)
{
    int64_t i;
    for (i = 0; i < n; i++) {
        const gd_real g = grad[i] + decay * param[i];
        const gd_real v = first_step ? g : momentum * velocity[i] + keep * g;
        velocity[i] = v;
        param[i] -= lr * (nesterov ? g + momentum * v : v);
    }
}

void GD(gd_sgd_update)(const gd_sgd *opt, int first_step, int64_t n, const gd_real *grad,
                       gd_real *param, gd_real *velocity)
{
    /* Hyperparameters rounded to the parameter type, as torch does for a float32 tensor. */
    const gd_real lr = (gd_real)opt->lr, momentum = (gd_real)opt->momentum;
    const gd_real keep = (gd_real)(1.0 - opt->dampening), decay = (gd_real)opt->weight_decay;
    int64_t i;

    if (opt->momentum == 0) {
        for (i = 0; i < n; i++)
            param[i] -= lr * (grad[i] + decay * param[i]);
    } else if (first_step) {
        if (opt->nesterov)
            sgd_momentum_loop(1, 1, n, lr, momentum, keep, decay, grad, param, velocity);
        else
            sgd_momentum_loop(1, 0, n, lr, momentum, keep, decay, grad, param, velocity);
    } else {
        if (opt->nesterov)
            sgd_momentum_loop(0, 1, n, lr, momentum, keep, decay, grad, param, velocity);
        else
            sgd_momentum_loop(0, 0, n, lr, momentum, keep, decay, grad, param, velocity);
    }
}
