/* Losses with mean reduction and their gradients. Compiled once per element type (gd_real.h). */
#include "gd_real.h"
#include "gd_loss.h"
#include "gd_act_inline.h"

/* Cross-entropy of one row of logits z (C classes) with target class t:
 * loss = logsumexp(z) − z[t], grad = (softmax(z) − onehot(t))·scale. Max-shifted: no overflow. */
GD_VECTOR_CLONES
static gd_real cross_entropy_row(int64_t C, const gd_real *z, int64_t t, gd_real scale, gd_real *grad)
{
    gd_real zmax = z[0], sum = 0;
    int64_t j;
    for (j = 1; j < C; j++)
        zmax = z[j] > zmax ? z[j] : zmax;
    if (grad != NULL) { /* each exp once, kept in grad: exp is most of this row's time */
        gd_real inv_sum;
        for (j = 0; j < C; j++) {
            grad[j] = exp(z[j] - zmax);
            sum += grad[j];
        }
        inv_sum = GD_ONE / sum;
        for (j = 0; j < C; j++)
            grad[j] = grad[j] * inv_sum * scale;
        grad[t] -= scale;
    } else {
        for (j = 0; j < C; j++)
            sum += exp(z[j] - zmax);
    }
    /* log(sum) − (z[t] − zmax), not (zmax + log(sum)) − z[t]: at logits of ±1e4 the latter
     * cancels two large numbers and loses the small loss. */
    return (log(sum) - (z[t] - zmax)) * scale;
}

/* Multi-class margin loss of one row (torch MultiMarginLoss, p = 1, margin = 1):
 * loss = Σ_{j≠t} max(0, 1 − z[t] + z[j]) / C. */
GD_VECTOR_CLONES
static gd_real hinge_row(int64_t C, const gd_real *z, int64_t t, gd_real scale, gd_real *grad)
{
    gd_real total = 0, per_class = scale / (gd_real)C;
    int64_t j, n_active = 0;
    for (j = 0; j < C; j++) {
        gd_real margin = GD_ONE - z[t] + z[j];
        int active = j != t && !(margin <= 0); /* a NaN margin counts, so the loss shows it */
        if (active) {
            total += margin;
            n_active++;
        }
        if (grad != NULL)
            grad[j] = active ? per_class : GD_ZERO;
    }
    if (grad != NULL)
        grad[t] = -per_class * (gd_real)n_active;
    return total * per_class;
}

/* First index of the largest of z[0..n) (numpy's argmax). */
static int64_t argmax(int64_t n, const gd_real *z)
{
    int64_t j, best = 0;
    for (j = 1; j < n; j++)
        if (z[j] > z[best])
            best = j;
    return best;
}

/* Fraction of the n logits z on the side of 0 that the {0, 1} targets y say. */
static gd_real sign_agreement(int64_t n, const gd_real *z, const gd_real *y)
{
    int64_t j, agree = 0;
    for (j = 0; j < n; j++)
        agree += (z[j] > 0) == (y[j] > GD_HALF);
    return (gd_real)agree / (gd_real)n;
}

/* Whether all n targets y lie in [0, 1] (a NaN does not). */
static int targets_in_unit_interval(int64_t n, const gd_real *y)
{
    int64_t j;
    int inside = 1;
    for (j = 0; j < n; j++)
        inside &= y[j] >= GD_ZERO && y[j] <= GD_ONE;
    return inside;
}

/* Elementwise losses over one row of n_out outputs z with real targets y; scale = 1/(batch·n_out). */
GD_VECTOR_CLONES
static gd_real elementwise_row(int32_t kind, gd_real delta, int64_t n_out, const gd_real *z,
                               const gd_real *y, gd_real scale, gd_real *grad)
{
    gd_real total = 0, value, slope;
    int64_t j;
    for (j = 0; j < n_out; j++) {
        gd_real d = z[j] - y[j];
        switch (kind) {
        case GD_LOSS_BCE: /* with logits: max(z,0) − z·y + log(1 + e^{−|z|}), grad σ(z) − y */
            value = (z[j] > 0 ? z[j] : GD_ZERO) - z[j] * y[j] + log1p(exp(-fabs(z[j])));
            slope = sigmoid_stable(z[j]) - y[j];
            break;
        case GD_LOSS_MAE:
            value = fabs(d);
            slope = (gd_real)((d > 0) - (d < 0));
            break;
        case GD_LOSS_HUBER:
            if (fabs(d) < delta) {
                value = GD_HALF * d * d;
                slope = d;
            } else {
                value = delta * (fabs(d) - GD_HALF * delta);
                slope = d > 0 ? delta : -delta;
            }
            break;
        default: /* GD_LOSS_MSE */
            value = d * d;
            slope = 2 * d;
            break;
        }
        total += value;
        if (grad != NULL)
            grad[j] = slope * scale;
    }
    return total * scale;
}

GD_VECTOR_CLONES
gd_status GD(gd_loss_rows)(const gd_loss *loss, int64_t n_rows, double weight_total, int64_t n_out,
                           const gd_real *out, const gd_real *y_real, const int64_t *y_index,
                           const gd_real *weights, const int64_t *rows, gd_real *row_loss,
                           gd_real *row_correct, gd_real *grad)
{
    const int by_index = loss->kind == GD_LOSS_CROSS_ENTROPY || loss->kind == GD_LOSS_HINGE;
    /* A batch whose weights are all zero contributes nothing (not 0/0). */
    const gd_real inv_total = weight_total > 0 ? (gd_real)(1.0 / weight_total) : GD_ZERO;
    const gd_real inv_elements =
        weight_total > 0 ? GD_ONE / ((gd_real)weight_total * (gd_real)n_out) : GD_ZERO;
    int64_t r;

    if (n_rows < 0 || weight_total < 0 || n_out <= 0 || (by_index ? y_index == NULL : y_real == NULL))
        return GD_ERR_ARG;
    for (r = 0; r < n_rows; r++) {
        const int64_t src = rows != NULL ? rows[r] : r;
        const gd_real weight = weights != NULL ? weights[src] : GD_ONE;
        const gd_real *z = out + r * n_out;
        gd_real *g = grad != NULL ? grad + r * n_out : NULL;
        if (by_index) {
            const int64_t t = y_index[src];
            const gd_real scale = weight * inv_total;
            if (t < 0 || t >= n_out)
                return GD_ERR_LABEL;
            row_loss[r] = loss->kind == GD_LOSS_HINGE ? hinge_row(n_out, z, t, scale, g)
                                                     : cross_entropy_row(n_out, z, t, scale, g);
            if (row_correct != NULL)
                row_correct[r] = argmax(n_out, z) == t ? GD_ONE : GD_ZERO;
        } else {
            /* Python checks y before fit; this guards the calls that hand y straight to the core
             * (train_step's fast path): σ(z) − y with y = 2 would train on, finite and wrong. */
            if (loss->kind == GD_LOSS_BCE && !targets_in_unit_interval(n_out, y_real + src * n_out))
                return GD_ERR_TARGET;
            row_loss[r] = elementwise_row(loss->kind, (gd_real)loss->delta, n_out, z,
                                          y_real + src * n_out, weight * inv_elements, g);
            if (row_correct != NULL)
                row_correct[r] = loss->kind == GD_LOSS_BCE
                                     ? sign_agreement(n_out, z, y_real + src * n_out)
                                     : GD_ZERO;
        }
    }
    return GD_OK;
}

GD_VECTOR_CLONES
double GD(gd_penalty)(double l1, double l2, int64_t n, const gd_real *W, gd_real *grad_W)
{
    const gd_real a = (gd_real)l1, c = (gd_real)l2;
    double abs_sum = 0, sq_sum = 0;
    int64_t i;
    if (l1 == 0 && l2 == 0)
        return 0;
    for (i = 0; i < n; i++) {
        abs_sum += fabs(W[i]);
        sq_sum += (double)W[i] * W[i];
        grad_W[i] += a * (gd_real)((W[i] > 0) - (W[i] < 0)) + c * W[i];
    }
    return l1 * abs_sum + 0.5 * l2 * sq_sum;
}
