# Declarations of the C core (csrc/gdcore.h) for the Cython boundary.
from libc.stdint cimport int32_t, int64_t, uint64_t

cdef extern from "gd_dropout.h" nogil:
    uint64_t gd_dropout_batch_key(uint64_t epoch_key, int64_t batch)
    uint64_t gd_dropout_row_key(uint64_t batch_key, int64_t layer, int64_t row)
    int gd_dropout_keep(uint64_t row_key, int64_t col, double rate)

cdef extern from "gdcore.h" nogil:
    ctypedef enum gd_status:
        GD_OK
        GD_ERR_ARG
        GD_ERR_NONFINITE
        GD_ERR_LABEL
        GD_ERR_WORKSPACE
        GD_INTERRUPTED
        GD_ERR_OVERFLOW
        GD_ERR_TARGET

    ctypedef void (*gd_sgemm_fn)(int, int, int64_t, int64_t, int64_t, float, const float *, int64_t,
                                 const float *, int64_t, float, float *, int64_t) noexcept nogil
    ctypedef void (*gd_dgemm_fn)(int, int, int64_t, int64_t, int64_t, double, const double *, int64_t,
                                 const double *, int64_t, double, double *, int64_t) noexcept nogil

    ctypedef struct gd_ctx:
        gd_sgemm_fn sgemm
        gd_dgemm_fn dgemm
        int n_threads
        void *shard_work
        int64_t blas_small_mnk

    ctypedef struct gd_net:
        int64_t n_layers
        const int64_t *sizes
        const int32_t *acts
        double negative_slope
        const double *l1
        const double *l2
        const double *dropout

    ctypedef struct gd_loss:
        int32_t kind
        double delta
        double l1
        double l2

    ctypedef struct gd_optim:
        int32_t kind
        double lr
        double weight_decay
        double momentum
        double dampening
        int32_t nesterov
        double beta1
        double beta2
        double eps
        double alpha
        int32_t centered
        double lr_decay

    ctypedef struct gd_data_f32:
        int64_t n
        const float *X
        const float *y_real
        const int64_t *y_index
        const float *weights
        uint64_t dropout_seed

    ctypedef struct gd_data_f64:
        int64_t n
        const double *X
        const double *y_real
        const int64_t *y_index
        const double *weights
        uint64_t dropout_seed

    ctypedef struct gd_state_f32:
        float *params
        float *grads
        float *slots[3]
        int64_t step

    ctypedef struct gd_state_f64:
        double *params
        double *grads
        double *slots[3]
        int64_t step

    int64_t gd_n_params(const gd_net *net)
    int gd_openmp_enabled()
    int gd_max_threads()
    int gd_team_cpus(int threads, int *ids, int cap)
    int gd_fork_limited()
    const char *gd_vector_isa()

    void gd_act_forward_f32(int act, float slope, int64_t n, const float *Z, float *A)
    void gd_act_forward_f64(int act, double slope, int64_t n, const double *Z, double *A)
    void gd_act_backward_f32(int act, float slope, int64_t n, const float *Z, const float *A,
                             const float *dA, float *dZ)
    void gd_act_backward_f64(int act, double slope, int64_t n, const double *Z, const double *A,
                             const double *dA, double *dZ)

    gd_status gd_loss_rows_f32(const gd_loss *loss, int64_t n_rows, double weight_total, int64_t O,
                               const float *out, const float *y_real, const int64_t *y_index,
                               const float *weights, const int64_t *rows, float *row_loss,
                               float *row_correct, float *grad)
    gd_status gd_loss_rows_f64(const gd_loss *loss, int64_t n_rows, double weight_total, int64_t O,
                               const double *out, const double *y_real, const int64_t *y_index,
                               const double *weights, const int64_t *rows, double *row_loss,
                               double *row_correct, double *grad)
    double gd_penalty_f32(double l1, double l2, int64_t n, const float *W, float *grad_W)
    double gd_penalty_f64(double l1, double l2, int64_t n, const double *W, double *grad_W)

    void gd_dense_forward_f32(const gd_ctx *ctx, int64_t B, int64_t n_in, int64_t n_out,
                              const float *X, int64_t ldx, const float *W, int64_t ldw,
                              const float *b, int act, float slope, float *Z, float *A, int64_t ldz)
    void gd_dense_forward_f64(const gd_ctx *ctx, int64_t B, int64_t n_in, int64_t n_out,
                              const double *X, int64_t ldx, const double *W, int64_t ldw,
                              const double *b, int act, double slope, double *Z, double *A,
                              int64_t ldz)
    void gd_dense_backward_input_f32(const gd_ctx *ctx, int64_t B, int64_t n_in, int64_t n_out,
                                     const float *dZ, int64_t lddz, const float *W, int64_t ldw,
                                     int act_in, float slope, const float *Z_in, const float *A_in,
                                     int64_t ld_in, float *dX, int64_t lddx)
    void gd_dense_backward_input_f64(const gd_ctx *ctx, int64_t B, int64_t n_in, int64_t n_out,
                                     const double *dZ, int64_t lddz, const double *W, int64_t ldw,
                                     int act_in, double slope, const double *Z_in,
                                     const double *A_in, int64_t ld_in, double *dX, int64_t lddx)
    void gd_dense_backward_weights_f32(const gd_ctx *ctx, int64_t B, int64_t I, int64_t O,
                                       const float *X, int64_t ldx, const float *dZ, int64_t i0,
                                       int64_t i1, int64_t j0, int64_t j1, float *dW, float *db)
    void gd_dense_backward_weights_f64(const gd_ctx *ctx, int64_t B, int64_t I, int64_t O,
                                       const double *X, int64_t ldx, const double *dZ, int64_t i0,
                                       int64_t i1, int64_t j0, int64_t j1, double *dW, double *db)

    int gd_optim_update_f32(const gd_optim *opt, double lr, int64_t step, int64_t n,
                             const float *grad, float *param, float **slots)
    int gd_optim_update_f64(const gd_optim *opt, double lr, int64_t step, int64_t n,
                             const double *grad, double *param, double **slots)

    int64_t gd_shard_work_len(const gd_net *net)
    int64_t gd_train_workspace_len_f32(const gd_net *net, int64_t batch_rows)
    int64_t gd_train_workspace_len_f64(const gd_net *net, int64_t batch_rows)
    int64_t gd_forward_workspace_len_f32(const gd_ctx *ctx, const gd_net *net)
    int64_t gd_forward_workspace_len_f64(const gd_ctx *ctx, const gd_net *net)
    int gd_any_nonfinite_f32(const gd_ctx *ctx, int64_t n, const float *x)
    int gd_any_nonfinite_f64(const gd_ctx *ctx, int64_t n, const double *x)
    gd_status gd_forward_f32(const gd_ctx *ctx, const gd_net *net, const float *params, int64_t n,
                             const float *X, float *out, float *work, int64_t work_len)
    gd_status gd_forward_f64(const gd_ctx *ctx, const gd_net *net, const double *params, int64_t n,
                             const double *X, double *out, double *work, int64_t work_len)
    gd_status gd_batch_step_f32(const gd_ctx *ctx, const gd_net *net, const gd_loss *loss,
                                const gd_optim *opt, double lr, const gd_data_f32 *data,
                                const int64_t *rows, int64_t B, uint64_t dropout_key,
                                gd_state_f32 *state, float *work,
                                int64_t work_len, double *loss_out, double *correct_out)
    gd_status gd_batch_step_f64(const gd_ctx *ctx, const gd_net *net, const gd_loss *loss,
                                const gd_optim *opt, double lr, const gd_data_f64 *data,
                                const int64_t *rows, int64_t B, uint64_t dropout_key,
                                gd_state_f64 *state, double *work,
                                int64_t work_len, double *loss_out, double *correct_out)
    gd_status gd_train_batches_f32(const gd_ctx *ctx, const gd_net *net, const gd_loss *loss,
                                   const gd_optim *opt, const double *lrs, const gd_data_f32 *data,
                                   const int64_t *perm, int64_t batch_size, int64_t first_batch,
                                   int64_t end_batch, gd_state_f32 *state, float *work,
                                   int64_t work_len, const volatile int *stop, double *loss_sum,
                                   double *correct_sum, int64_t *bad_batch)
    gd_status gd_train_batches_f64(const gd_ctx *ctx, const gd_net *net, const gd_loss *loss,
                                   const gd_optim *opt, const double *lrs, const gd_data_f64 *data,
                                   const int64_t *perm, int64_t batch_size, int64_t first_batch,
                                   int64_t end_batch, gd_state_f64 *state, double *work,
                                   int64_t work_len, const volatile int *stop, double *loss_sum,
                                   double *correct_sum, int64_t *bad_batch)
