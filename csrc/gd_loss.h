/* Losses with mean reduction as torch.nn.functional, and their gradient with respect to the
 * network output. Templated header: include after gd_real.h (see gdcore.h). */

/* Loss of `n_rows` rows of a batch of `batch_rows` rows (the mean divides by the whole batch, so a
 * batch can be processed in row shards). out: n_rows×n_out network outputs. Targets of row r are read
 * from row rows[r] of the target array (rows == NULL: row r), as class indices y_index (cross_entropy,
 * hinge; shape n_targets) or real values y_real (the other losses; shape n_targets×n_out).
 *   row_loss[r] = this row's contribution to the batch mean (Σ row_loss = batch loss)
 *   grad (n_rows×n_out, may be NULL) = ∂ batch loss / ∂ out
 * Stable for logits of ±1e4 (log-sum-exp, log1p(exp(−|z|))). Returns GD_ERR_LABEL for a class
 * index outside [0, n_out). */
gd_status GD(gd_loss_rows)(const gd_loss *loss, int64_t n_rows, int64_t batch_rows, int64_t n_out,
                           const gd_real *out, const gd_real *y_real, const int64_t *y_index,
                           const int64_t *rows, gd_real *row_loss, gd_real *grad);

/* Penalty l1·Σ|W| + ½·l2·Σ W² of one weight block of n values; adds its gradient
 * l1·sign(W) + l2·W into grad_W and returns the value. */
double GD(gd_penalty)(double l1, double l2, int64_t n, const gd_real *W, gd_real *grad_W);
