/* Losses with mean reduction as torch.nn.functional, and their gradient with respect to the
 * network output. Templated header: include after gd_real.h (see gdcore.h). */

/* Loss of `n_rows` rows of a batch. out: n_rows×O network outputs. Targets of row r are read
 * from row rows[r] of the target arrays (rows == NULL: row r), as class indices y_index
 * (cross_entropy, hinge) or real values y_real (the other losses; n_targets×O); weights
 * (NULL: all 1) give each row's weight, read the same way. The batch loss is the weighted mean
 * Σ w_r·l_r / weight_total, with l_r the row's loss (the mean over its O outputs for elementwise
 * losses) and weight_total the batch's Σ w (its row count without weights): a batch can then be
 * processed in blocks of rows.
 *   row_loss[r] = this row's share of the batch loss (Σ row_loss = batch loss)
 *   row_correct[r] (may be NULL) = 1 if the row is classified right (argmax = target), for
 *     binary_cross_entropy the fraction of outputs on the right side of 0; 0 for regression
 *   grad (n_rows×O, may be NULL) = ∂ batch loss / ∂ out
 * Stable for logits of ±1e4 (log-sum-exp, log1p(exp(−|z|))). Returns GD_ERR_LABEL for a class
 * index outside [0, O). */
gd_status GD(gd_loss_rows)(const gd_loss *loss, int64_t n_rows, double weight_total, int64_t n_out,
                           const gd_real *out, const gd_real *y_real, const int64_t *y_index,
                           const gd_real *weights, const int64_t *rows, gd_real *row_loss,
                           gd_real *row_correct, gd_real *grad);

/* Penalty l1·Σ|W| + ½·l2·Σ W² of one weight block of n values; adds its gradient
 * l1·sign(W) + l2·W into grad_W and returns the value. */
double GD(gd_penalty)(double l1, double l2, int64_t n, const gd_real *W, gd_real *grad_W);
