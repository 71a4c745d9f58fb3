/* Dense layer Y = act(X·W + b), row-major. Templated header: include after gd_real.h.
 * X: B×n_in with row stride ldx, W: n_in×n_out, b: n_out, Z and A: B×n_out. */

/* Z = X·W + b, then A = act(Z): the GEMM writes Z, one pass over Z adds b and applies act.
 * A may alias Z (then only A = act(X·W + b) is kept, enough for inference). */
void GD(gd_dense_forward)(const gd_ctx *ctx, int64_t B, int64_t n_in, int64_t n_out, const gd_real *X,
                          int64_t ldx, const gd_real *W, const gd_real *b, gd_act act,
                          gd_real negative_slope, gd_real *Z, gd_real *A);

/* Row part of the backward pass for B rows: dZ = dA ⊙ act'(Z) in place in dA, then
 * dX = dZ·Wᵀ (B×n_in) unless dX is NULL. */
void GD(gd_dense_backward_rows)(const gd_ctx *ctx, int64_t B, int64_t n_in, int64_t n_out, const gd_real *W,
                                const gd_real *Z, const gd_real *A, gd_act act,
                                gd_real negative_slope, gd_real *dA, gd_real *dX);

/* Weight part for the block of rows [i0, i1) and columns [j0, j1) of W:
 * dW[i0:i1, j0:j1] = X[:, i0:i1]ᵀ·dZ[:, j0:j1] over all B rows, and db[j0:j1] = Σ_rows dZ[:, j0:j1]
 * when i0 == 0. Every entry sums over the whole batch in row order, so any block split gives the
 * same bits. */
void GD(gd_dense_backward_weights)(const gd_ctx *ctx, int64_t B, int64_t n_in, int64_t n_out,
                                   const gd_real *X, int64_t ldx, const gd_real *dZ, int64_t i0,
                                   int64_t i1, int64_t j0, int64_t j1, gd_real *dW, gd_real *db);
