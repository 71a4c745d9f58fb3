/* Activation loops shared by gd_act.c and the fused dense epilogue (gd_dense.c). Private,
 * templated on gd_real. One loop per activation, the switch outside, so each loop vectorizes. */
#ifndef GD_ACT_INLINE_H
#define GD_ACT_INLINE_H

#define GD_HALF ((gd_real)0.5)
#define GD_ONE ((gd_real)1)
#define GD_ZERO ((gd_real)0)
#define GD_INV_SQRT2 ((gd_real)0.70710678118654752440)
#define GD_INV_SQRT2PI ((gd_real)0.39894228040143267794)

/* σ(z) without overflow for |z| up to the type's range: exp of a non-positive number only. */
static inline gd_real sigmoid_stable(gd_real z)
{
    gd_real e = exp(-fabs(z));
    return z >= 0 ? GD_ONE / (GD_ONE + e) : e / (GD_ONE + e);
}

/* Φ(z) = ½·erfc(−z/√2): the same function as ½(1 + erf(z/√2)), without the cancellation that
 * costs 1 + erf(...) most of its digits for negative z in float32. */
static inline gd_real std_normal_cdf(gd_real z) { return GD_HALF * erfc(-z * GD_INV_SQRT2); }

/* gelu(z) = z·Φ(z), the exact form (torch's default). */
static inline gd_real gelu_value(gd_real z) { return z * std_normal_cdf(z); }

/* gelu'(z) = Φ(z) + z·φ(z). */
static inline gd_real gelu_slope(gd_real z)
{
    return std_normal_cdf(z) + z * GD_INV_SQRT2PI * exp(-GD_HALF * z * z);
}

/* A[i] = act(Z[i]); A may alias Z. */
static inline void act_forward_inplace(gd_act act, gd_real slope, int64_t n, const gd_real *Z, gd_real *A)
{
    int64_t i;
    switch (act) {
    case GD_ACT_RELU:
        for (i = 0; i < n; i++) A[i] = Z[i] < 0 ? GD_ZERO : Z[i]; /* NaN passes through, as in torch */
        break;
    case GD_ACT_LEAKY_RELU:
        for (i = 0; i < n; i++) A[i] = Z[i] > 0 ? Z[i] : slope * Z[i];
        break;
    case GD_ACT_SIGMOID:
        for (i = 0; i < n; i++) A[i] = sigmoid_stable(Z[i]);
        break;
    case GD_ACT_TANH:
        for (i = 0; i < n; i++) A[i] = tanh(Z[i]);
        break;
    case GD_ACT_GELU:
        for (i = 0; i < n; i++) A[i] = gelu_value(Z[i]);
        break;
    default:
        if (A != Z)
            for (i = 0; i < n; i++) A[i] = Z[i];
        break;
    }
}

/* dZ[i] = dA[i]·act'(Z[i]); dZ may alias dA. Derivatives at 0 follow torch: relu'(0) = 0,
 * leaky_relu'(0) = slope. sigmoid and tanh read the derivative from A = act(Z). */
static inline void act_backward_inplace(gd_act act, gd_real slope, int64_t n, const gd_real *Z,
                                        const gd_real *A, const gd_real *dA, gd_real *dZ)
{
    int64_t i;
    switch (act) {
    case GD_ACT_RELU:
        for (i = 0; i < n; i++) dZ[i] = Z[i] <= 0 ? GD_ZERO : dA[i];
        break;
    case GD_ACT_LEAKY_RELU:
        for (i = 0; i < n; i++) dZ[i] = Z[i] > 0 ? dA[i] : slope * dA[i];
        break;
    case GD_ACT_SIGMOID:
        for (i = 0; i < n; i++) dZ[i] = dA[i] * A[i] * (GD_ONE - A[i]);
        break;
    case GD_ACT_TANH:
        for (i = 0; i < n; i++) dZ[i] = dA[i] * (GD_ONE - A[i] * A[i]);
        break;
    case GD_ACT_GELU:
        for (i = 0; i < n; i++) dZ[i] = dA[i] * gelu_slope(Z[i]);
        break;
    default:
        if (dZ != dA)
            for (i = 0; i < n; i++) dZ[i] = dA[i];
        break;
    }
}

#endif
