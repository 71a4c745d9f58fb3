/* Whole-network passes and the mini-batch epoch loop. Templated header: include after gd_real.h.
 *
 * Threading and determinism: every GEMM of a batch (forward Z = A·W, weight gradient dW = Aᵀ·dZ,
 * input gradient dA = dZ·Wᵀ) is cut into tiles of its output whose size depends only on the
 * matrix shapes, never on the thread count, and each tile is one GEMM over the full inner
 * dimension (for dW: over the whole batch, in row order). Threads only choose which tiles they
 * compute, so the same seed gives the same bits for any n_threads, with no cross-thread
 * reduction at all. Weight-gradient tiles are blocks of whole rows on a static schedule, and
 * the optimizer step runs tile by tile on the same schedule, so a parameter's gradient and
 * update stay on one core. */

typedef struct {
    int64_t n;                  /* rows in X */
    const gd_real *X;           /* n × sizes[0] */
    const gd_real *y_real;      /* n × sizes[L], real targets (NULL for class-index losses) */
    const int64_t *y_index;     /* n class indices (NULL for real-target losses) */
    const gd_real *weights;     /* n sample weights >= 0 (NULL: all 1) */
    uint64_t dropout_seed;      /* key of this epoch's dropout masks (gd_dropout.h) */
} GD(gd_data);

typedef struct {
    gd_real *params;            /* gd_n_params() values */
    gd_real *grads;             /* same layout */
    gd_real *slots[GD_OPTIM_SLOTS]; /* optimizer state, same layout (gd_optim says which) */
    int64_t step;               /* optimizer steps taken so far */
} GD(gd_state);

/* Workspace (in gd_real elements) for training or loss_and_grad on batches of up to batch_rows. */
int64_t GD(gd_train_workspace_len)(const gd_net *net, int64_t batch_rows);
/* Workspace for gd_forward with the context's thread count. */
int64_t GD(gd_forward_workspace_len)(const gd_ctx *ctx, const gd_net *net);

/* out = network(X) for n rows; out: n × sizes[L]. Rows are done in chunks, chunks in parallel.
 * Returns GD_ERR_NONFINITE (out then undefined) when X holds an inf or NaN. */
gd_status GD(gd_forward)(const gd_ctx *ctx, const gd_net *net, const gd_real *params, int64_t n,
                         const gd_real *X, gd_real *out, gd_real *work, int64_t work_len);

/* 1 if any of x[0..n) is inf or NaN, on up to ctx->n_threads threads (fit's check of its data:
 * one memory-bound pass). */
int GD(gd_any_nonfinite)(const gd_ctx *ctx, int64_t n, const gd_real *x);

/* Loss and gradient (into state->grads) of one batch: the rows rows[0..B) of data (rows == NULL:
 * rows 0..B). When opt != NULL, then one optimizer step with learning rate lr on state (and
 * state->step += 1), with the network's dropout masks drawn from dropout_key (gd_dropout.h). *loss_out = batch loss including penalties; *correct_out (may be NULL)
 * = the number of rows classified right (see gd_loss_rows). A non-finite loss or gradient
 * returns GD_ERR_NONFINITE before any parameter changes; GD_ERR_OVERFLOW when the step itself
 * took a parameter past the type's range (the caller restores its copy: the C core keeps none). */
gd_status GD(gd_batch_step)(const gd_ctx *ctx, const gd_net *net, const gd_loss *loss,
                            const gd_optim *opt, double lr, const GD(gd_data) *data,
                            const int64_t *rows, int64_t B, uint64_t dropout_key,
                            GD(gd_state) *state, gd_real *work, int64_t work_len,
                            double *loss_out, double *correct_out);

/* Batches [first_batch, end_batch) of an epoch over the permutation perm (n entries): batch k is
 * rows perm[k·batch_size .. min(n, (k+1)·batch_size)), the last one may be smaller, and its
 * learning rate is lrs[k] (lrs == NULL: opt->lr) and its dropout key
 * gd_dropout_batch_key(data->dropout_seed, k). Adds Σ batch_loss·batch_rows to *loss_sum
 * and the rows classified right to *correct_sum.
 * Before each batch *stop is read: when non-zero, returns GD_INTERRUPTED with *bad_batch the
 * first batch not run (a signal handler sets it; the model is then at a batch boundary). On
 * GD_ERR_NONFINITE, *bad_batch is the batch index and that batch made no update. */
gd_status GD(gd_train_batches)(const gd_ctx *ctx, const gd_net *net, const gd_loss *loss,
                               const gd_optim *opt, const double *lrs, const GD(gd_data) *data,
                               const int64_t *perm, int64_t batch_size, int64_t first_batch,
                               int64_t end_batch, GD(gd_state) *state, gd_real *work,
                               int64_t work_len, const volatile int *stop, double *loss_sum,
                               double *correct_sum, int64_t *bad_batch);
