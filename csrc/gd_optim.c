/* Optimizer updates over flat buffers, with torch.optim's semantics and order of operations.
 * Compiled once per element type (gd_real.h). Hyperparameters are rounded to the parameter
 * type, as torch does for a float32 tensor; the bias corrections are computed in double, as
 * torch computes them in Python. */
#include "gd_real.h"
#include "gd_optim.h"

/* torch's lerp a + w·(b − a), computed from the nearer end as torch's CPU kernel does. */
static inline gd_real lerp(gd_real a, gd_real b, gd_real w)
{
    return w < (gd_real)0.5 ? a + w * (b - a) : b - (b - a) * ((gd_real)1 - w);
}

/* Every update below returns whether a parameter it wrote is inf or NaN, checked as it is
 * written: a second pass would read the parameters back from L2 or L3 (the check is an integer
 * compare OR-ed in the same vector loop).
 *
 * SGD: g ← g + wd·p; v ← g (first step) or μ·v + (1 − dampening)·g; p ← p − lr·(g + μ·v if
 * nesterov else v). Each flag combination is a straight loop: the flags are constants at each
 * call below, so every variant vectorizes. */
static inline int sgd_momentum_loop(int first_step, int nesterov, int64_t n, gd_real lr,
                                     gd_real momentum, gd_real keep, gd_real decay,
                                     const gd_real *grad, gd_real *param, gd_real *velocity)
{
    int found = 0;
    int64_t i;
    for (i = 0; i < n; i++) {
        const gd_real g = grad[i] + decay * param[i];
        const gd_real v = first_step ? g : momentum * velocity[i] + keep * g;
        velocity[i] = v;
        param[i] -= lr * (nesterov ? g + momentum * v : v);
        found |= is_nonfinite(param[i]);
    }
    return found;
}

GD_VECTOR_CLONES
static int sgd_update(const gd_optim *opt, gd_real lr, int first_step, int64_t n,
                       const gd_real *grad, gd_real *param, gd_real *velocity)
{
    const gd_real momentum = (gd_real)opt->momentum, keep = (gd_real)(1.0 - opt->dampening);
    const gd_real decay = (gd_real)opt->weight_decay;
    int found = 0;
    int64_t i;

    if (opt->momentum == 0) {
        for (i = 0; i < n; i++) {
            param[i] -= lr * (grad[i] + decay * param[i]);
            found |= is_nonfinite(param[i]);
        }
        return found;
    }
    if (first_step)
        return opt->nesterov
                   ? sgd_momentum_loop(1, 1, n, lr, momentum, keep, decay, grad, param, velocity)
                   : sgd_momentum_loop(1, 0, n, lr, momentum, keep, decay, grad, param, velocity);
    return opt->nesterov
               ? sgd_momentum_loop(0, 1, n, lr, momentum, keep, decay, grad, param, velocity)
               : sgd_momentum_loop(0, 0, n, lr, momentum, keep, decay, grad, param, velocity);
}

/* Adam / AdamW (torch.optim, amsgrad off):
 *   Adam: g ← g + wd·p          AdamW: p ← p·(1 − lr·wd)
 *   m ← lerp(m, g, 1 − β1)
 *   v ← β2·v + (1 − β2)·g²
 *   p ← p − lr/(1 − β1^t) · m / (√v / √(1 − β2^t) + eps) */
GD_VECTOR_CLONES
static int adam_update(const gd_optim *opt, double lr, int64_t step, int decoupled, int64_t n,
                        const gd_real *grad, gd_real *param, gd_real *m, gd_real *v)
{
    const gd_real decay = (gd_real)opt->weight_decay, shrink = (gd_real)(1.0 - lr * opt->weight_decay);
    const gd_real mix1 = (gd_real)(1.0 - opt->beta1), beta2 = (gd_real)opt->beta2;
    const gd_real mix2 = (gd_real)(1.0 - opt->beta2), eps = (gd_real)opt->eps;
    const double correction1 = 1.0 - pow(opt->beta1, (double)step);
    const gd_real step_size = (gd_real)(lr / correction1);
    const gd_real correction2_sqrt = (gd_real)sqrt(1.0 - pow(opt->beta2, (double)step));
    int found = 0;
    int64_t i;

    for (i = 0; i < n; i++) {
        gd_real g = grad[i], p = param[i];
        if (decoupled)
            p *= shrink;
        else
            g += decay * p;
        m[i] = lerp(m[i], g, mix1);
        v[i] = beta2 * v[i] + mix2 * g * g;
        param[i] = p - step_size * (m[i] / (sqrt(v[i]) / correction2_sqrt + eps));
        found |= is_nonfinite(param[i]);
    }
    return found;
}

/* RMSprop (torch.optim): g ← g + wd·p; s ← α·s + (1 − α)·g²; centered: ḡ ← lerp(ḡ, g, 1 − α),
 * d = √(s − ḡ²) + eps, else d = √s + eps; momentum: b ← μ·b + g/d, p ← p − lr·b; else p ← p − lr·g/d. */
GD_VECTOR_CLONES
static int rmsprop_update(const gd_optim *opt, gd_real lr, int64_t n, const gd_real *grad,
                           gd_real *param, gd_real *square_avg, gd_real *momentum_buf,
                           gd_real *grad_avg)
{
    const gd_real decay = (gd_real)opt->weight_decay, alpha = (gd_real)opt->alpha;
    const gd_real mix = (gd_real)(1.0 - opt->alpha), eps = (gd_real)opt->eps;
    const gd_real momentum = (gd_real)opt->momentum;
    int found = 0;
    int64_t i;

    for (i = 0; i < n; i++) {
        const gd_real g = grad[i] + decay * param[i];
        gd_real avg;
        square_avg[i] = alpha * square_avg[i] + mix * g * g;
        if (opt->centered) {
            grad_avg[i] = lerp(grad_avg[i], g, mix);
            /* s = inf (g² overflowed) with ḡ² overflowing too gave inf − inf = NaN; torch's
             * fused multiply-add keeps the variance inf (a zero step), as s alone does */
            avg = sqrt(isinf(square_avg[i]) ? square_avg[i]
                                            : square_avg[i] - grad_avg[i] * grad_avg[i]) + eps;
        } else {
            avg = sqrt(square_avg[i]) + eps;
        }
        if (opt->momentum > 0) {
            momentum_buf[i] = momentum * momentum_buf[i] + g / avg;
            param[i] -= lr * momentum_buf[i];
        } else {
            param[i] -= lr * (g / avg);
        }
        found |= is_nonfinite(param[i]);
    }
    return found;
}

/* Adagrad (torch.optim): g ← g + wd·p; clr = lr / (1 + (t − 1)·lr_decay); s ← s + g²;
 * p ← p − clr·g / (√s + eps). */
GD_VECTOR_CLONES
static int adagrad_update(const gd_optim *opt, double lr, int64_t step, int64_t n,
                           const gd_real *grad, gd_real *param, gd_real *sum)
{
    const gd_real decay = (gd_real)opt->weight_decay, eps = (gd_real)opt->eps;
    const gd_real clr = (gd_real)(lr / (1.0 + (double)(step - 1) * opt->lr_decay));
    int found = 0;
    int64_t i;

    for (i = 0; i < n; i++) {
        const gd_real g = grad[i] + decay * param[i];
        sum[i] += g * g;
        param[i] -= clr * (g / (sqrt(sum[i]) + eps));
        found |= is_nonfinite(param[i]);
    }
    return found;
}

GD_VECTOR_CLONES
int GD(gd_optim_update)(const gd_optim *opt, double lr, int64_t step, int64_t n,
                        const gd_real *grad, gd_real *param, gd_real *const *slots)
{
    switch (opt->kind) {
    case GD_OPT_ADAM:
    case GD_OPT_ADAMW:
        return adam_update(opt, lr, step, opt->kind == GD_OPT_ADAMW, n, grad, param, slots[0],
                           slots[1]);
    case GD_OPT_RMSPROP:
        return rmsprop_update(opt, (gd_real)lr, n, grad, param, slots[0], slots[1], slots[2]);
    case GD_OPT_ADAGRAD:
        return adagrad_update(opt, lr, step, n, grad, param, slots[0]);
    default:
        return sgd_update(opt, (gd_real)lr, step == 1, n, grad, param, slots[0]);
    }
}
