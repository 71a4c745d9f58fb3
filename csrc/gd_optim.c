/* Optimizer updates over flat buffers. Compiled once per element type (gd_real.h). */
#include "gd_real.h"
#include "gd_optim.h"

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
        return;
    }
    for (i = 0; i < n; i++) {
        gd_real g = grad[i] + decay * param[i];
        gd_real v = first_step ? g : momentum * velocity[i] + keep * g;
        velocity[i] = v;
        param[i] -= lr * (opt->nesterov ? g + momentum * v : v);
    }
}
