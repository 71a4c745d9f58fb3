/* Dense layer forward and backward. Compiled once per element type (gd_real.h). */
#include "gd_real.h"
#include "gd_dense.h"
#include "gd_act_inline.h"

void GD(gd_dense_forward)(const gd_ctx *ctx, int64_t B, int64_t n_in, int64_t n_out, const gd_real *X,
                          int64_t ldx, const gd_real *W, const gd_real *b, gd_act act,
                          gd_real negative_slope, gd_real *Z, gd_real *A)
{
    int64_t r, j;
    if (B <= 0 || n_out <= 0)
        return;
    GD_GEMM(ctx)(0, 0, B, n_out, n_in, 1, X, ldx, W, n_out, 0, Z, n_out);
    /* Epilogue, one pass over the output while the row is still in cache: bias, then act. */
    for (r = 0; r < B; r++) {
        gd_real *z = Z + r * n_out;
        for (j = 0; j < n_out; j++)
            z[j] += b[j];
        act_forward_inplace(act, negative_slope, n_out, z, A + r * n_out);
    }
}

void GD(gd_dense_backward_rows)(const gd_ctx *ctx, int64_t B, int64_t n_in, int64_t n_out, const gd_real *W,
                                const gd_real *Z, const gd_real *A, gd_act act,
                                gd_real negative_slope, gd_real *dA, gd_real *dX)
{
    if (B <= 0)
        return;
    act_backward_inplace(act, negative_slope, B * n_out, Z, A, dA, dA);
    if (dX != NULL)
        GD_GEMM(ctx)(0, 1, B, n_in, n_out, 1, dA, n_out, W, n_out, 0, dX, n_in);
}

void GD(gd_dense_backward_weights)(const gd_ctx *ctx, int64_t B, int64_t n_in, int64_t n_out,
                                   const gd_real *X, int64_t ldx, const gd_real *dZ, int64_t i0,
                                   int64_t i1, int64_t j0, int64_t j1, gd_real *dW, gd_real *db)
{
    int64_t r, j;
    (void)n_in;
    if (i1 <= i0 || j1 <= j0)
        return;
    GD_GEMM(ctx)(1, 0, i1 - i0, j1 - j0, B, 1, X + i0, ldx, dZ + j0, n_out, 0, dW + i0 * n_out + j0, n_out);
    if (i0 != 0)
        return;
    for (j = j0; j < j1; j++)
        db[j] = 0;
    for (r = 0; r < B; r++) { /* row order, the same for any tiling */
        const gd_real *dz = dZ + r * n_out;
        for (j = j0; j < j1; j++)
            db[j] += dz[j];
    }
}
