/* Dense layer Y = act(X·W + b), row-major. Templated header: include after gd_real.h.
 * X: B×n_in, W: n_in×n_out, b: n_out, Z and A: B×n_out. Every matrix argument has its own row
 * stride (ld*), so each kernel can work on a block of a larger matrix: that is how the training
 * loop splits a batch's GEMMs into fixed tiles across threads. */

/* Z = b + X·W, then A = act(Z): Z is filled with b, the GEMM accumulates onto it, one pass over
 * the block applies act while it is in cache. A may alias Z (then only A = act(X·W + b) is kept, for inference). */
void GD(gd_dense_forward)(const gd_ctx *ctx, int64_t B, int64_t n_in, int64_t n_out,
                          const gd_real *X, int64_t ldx, const gd_real *W, int64_t ldw,
                          const gd_real *b, gd_act act, gd_real negative_slope, gd_real *Z,
                          gd_real *A, int64_t ldz);

/* Input gradient: dX = dZ·Wᵀ (B×n_in), then dX ⊙= act_in'(Z_in) where act_in is the activation
 * that produced X (pass GD_ACT_IDENTITY for none): the previous layer's ∂loss/∂Z comes out of
 * the GEMM block directly. Z_in and A_in (B×n_in, row stride ld_in) are that layer's
 * pre-activation and activation. */
void GD(gd_dense_backward_input)(const gd_ctx *ctx, int64_t B, int64_t n_in, int64_t n_out,
                                 const gd_real *dZ, int64_t lddz, const gd_real *W, int64_t ldw,
                                 gd_act act_in, gd_real negative_slope, const gd_real *Z_in,
                                 const gd_real *A_in, int64_t ld_in, gd_real *dX, int64_t lddx);

/* Weight gradient for the block of rows [i0, i1) and columns [j0, j1) of W (row stride n_out):
 * dW[i0:i1, j0:j1] = X[:, i0:i1]ᵀ·dZ[:, j0:j1] over all B rows, and db[j0:j1] = Σ_rows dZ[:, j0:j1]
 * when i0 == 0. Every entry sums over the whole batch in row order inside one call, so any split
 * into blocks gives the same bits. */
void GD(gd_dense_backward_weights)(const gd_ctx *ctx, int64_t B, int64_t n_in, int64_t n_out,
                                   const gd_real *X, int64_t ldx, const gd_real *dZ, int64_t i0,
                                   int64_t i1, int64_t j0, int64_t j1, gd_real *dW, gd_real *db);
