/* Dense layer forward and backward. Compiled once per element type (gd_real.h). */
#include "gd_real.h"
#include "gd_dense.h"
#include "gd_act_inline.h"

GD_VECTOR_CLONES
void GD(gd_dense_forward)(const gd_ctx *ctx, int64_t B, int64_t n_in, int64_t n_out,
                          const gd_real *X, int64_t ldx, const gd_real *W, int64_t ldw,
                          const gd_real *b, gd_act act, gd_real negative_slope, gd_real *Z,
                          gd_real *A, int64_t ldz)
{
    int64_t r, j;
    if (B <= 0 || n_out <= 0)
        return;
    /* Z starts as the bias and the GEMM accumulates onto it (beta = 1): BLAS would otherwise
     * zero Z in a pass of its own, and the bias would need another. */
    for (r = 0; r < B; r++)
        for (j = 0; j < n_out; j++)
            Z[r * ldz + j] = b[j];
    GD_GEMM(ctx)(0, 0, B, n_out, n_in, 1, X, ldx, W, ldw, 1, Z, ldz);
    if (act != GD_ACT_IDENTITY || A != Z)
        for (r = 0; r < B; r++)
            act_forward_inplace(act, negative_slope, n_out, Z + r * ldz, A + r * ldz);
}

GD_VECTOR_CLONES
void GD(gd_dense_backward_input)(const gd_ctx *ctx, int64_t B, int64_t n_in, int64_t n_out,
                                 const gd_real *dZ, int64_t lddz, const gd_real *W, int64_t ldw,
                                 gd_act act_in, gd_real negative_slope, const gd_real *Z_in,
                                 const gd_real *A_in, int64_t ld_in, gd_real *dX, int64_t lddx)
{
    int64_t r;
    if (B <= 0 || n_in <= 0)
        return;
    GD_GEMM(ctx)(0, 1, B, n_in, n_out, 1, dZ, lddz, W, ldw, 0, dX, lddx);
    if (act_in == GD_ACT_IDENTITY)
        return;
    for (r = 0; r < B; r++)
        act_backward_inplace(act_in, negative_slope, n_in, Z_in + r * ld_in, A_in + r * ld_in,
                             dX + r * lddx, dX + r * lddx);
}

GD_VECTOR_CLONES
void GD(gd_dense_backward_weights)(const gd_ctx *ctx, int64_t B, int64_t n_in, int64_t n_out,
                                   const gd_real *X, int64_t ldx, const gd_real *dZ, int64_t i0,
                                   int64_t i1, int64_t j0, int64_t j1, gd_real *dW, gd_real *db)
{
    int64_t r, j;
    (void)n_in;
    if (i1 <= i0 || j1 <= j0)
        return;
    GD_GEMM(ctx)(1, 0, i1 - i0, j1 - j0, B, 1, X + i0, ldx, dZ + j0, n_out, 0,
                 dW + i0 * n_out + j0, n_out);
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
