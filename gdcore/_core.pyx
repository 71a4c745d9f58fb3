# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The one boundary between Python and the C core (csrc/).

Python code (models.py, losses.py, optim.py) validates shapes, dtypes and values once; the
functions here take C-contiguous arrays of matching dtype, pass their pointers to C and release
the GIL for the whole call. They return the C status code; gdcore._errors turns it into an
exception. GEMM comes from SciPy's BLAS (scipy.linalg.cython_blas), handed to C as a pointer.
"""
from libc.signal cimport SIGINT
from posix.signal cimport sigaction, sigaction_t, sigemptyset
from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.string cimport memcpy
from scipy.linalg.cython_blas cimport sgemm, dgemm

ctypedef fused real:
    float
    double


# Row-major C = alpha·op(A)·op(B) + beta·C through column-major BLAS: a row-major matrix is its
# column-major transpose, so compute Cᵀ = op(B)ᵀ·op(A)ᵀ by swapping the operands.
cdef void _sgemm_row_major(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                           const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                           float *C, int64_t ldc) noexcept nogil:
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    cdef int m = <int>N, n = <int>M, k = <int>K
    cdef int ld_b = <int>ldb, ld_a = <int>lda, ld_c = <int>ldc
    sgemm(&tb, &ta, &m, &n, &k, &alpha, <float *>B, &ld_b, <float *>A, &ld_a, &beta, C, &ld_c)


cdef void _dgemm_row_major(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, double alpha,
                           const double *A, int64_t lda, const double *B, int64_t ldb, double beta,
                           double *C, int64_t ldc) noexcept nogil:
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    cdef int m = <int>N, n = <int>M, k = <int>K
    cdef int ld_b = <int>ldb, ld_a = <int>lda, ld_c = <int>ldc
    dgemm(&tb, &ta, &m, &n, &k, &alpha, <double *>B, &ld_b, <double *>A, &ld_a, &beta, C, &ld_c)


cdef int64_t _blas_small_mnk = 0  # see gd_ctx.blas_small_mnk; set by gdcore._threads


def set_blas_small_mnk(int64_t limit):
    """Tell the core the largest M·N·K that the BLAS computes without packing (0: none)."""
    global _blas_small_mnk
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    _blas_small_mnk = limit


def blas_small_mnk():
    return _blas_small_mnk


cdef gd_ctx _context(int n_threads) noexcept:
    cdef gd_ctx ctx
    ctx.sgemm = _sgemm_row_major
    ctx.dgemm = _dgemm_row_major
    ctx.n_threads = n_threads if n_threads > 0 else 1
    ctx.shard_work = NULL
    ctx.blas_small_mnk = _blas_small_mnk
    return ctx


# ---------------------------------------------------------------------------------------------
# BLAS held to one thread while the core runs: gdcore's OpenMP threads call BLAS themselves, and
# a multi-threaded BLAS inside them would oversubscribe the cores. The get/set functions of the
# BLAS that cython_blas calls are installed once (gdcore._threads finds them); holding costs two
# C calls, against tens of microseconds for a threadpoolctl context per call. Counted under the
# GIL, so nested or concurrent holders from several Python threads restore the setting once.

ctypedef int (*blas_get_threads_fn)() noexcept nogil
ctypedef void (*blas_set_threads_fn)(int) noexcept nogil
cdef blas_get_threads_fn _blas_get_threads = NULL
cdef blas_set_threads_fn _blas_set_threads = NULL
cdef int _blas_holders = 0
cdef int _blas_saved_threads = 1


def install_blas_thread_control(size_t get_address, size_t set_address):
    """Use these addresses of the BLAS's get/set_num_threads functions (0, 0: none)."""
    global _blas_get_threads, _blas_set_threads
    _blas_get_threads = <blas_get_threads_fn>get_address
    _blas_set_threads = <blas_set_threads_fn>set_address


def blas_thread_control_installed():
    return _blas_get_threads != NULL and _blas_set_threads != NULL


cdef void _blas_hold() noexcept:
    global _blas_holders, _blas_saved_threads
    if _blas_get_threads == NULL or _blas_set_threads == NULL:
        return
    if _blas_holders == 0:
        _blas_saved_threads = _blas_get_threads()
        if _blas_saved_threads != 1:
            _blas_set_threads(1)
    _blas_holders += 1


cdef void _blas_release() noexcept:
    global _blas_holders
    if _blas_get_threads == NULL or _blas_set_threads == NULL or _blas_holders == 0:
        return
    _blas_holders -= 1
    if _blas_holders == 0 and _blas_saved_threads != 1:
        _blas_set_threads(_blas_saved_threads)


OK = GD_OK
ERR_ARG = GD_ERR_ARG
ERR_NONFINITE = GD_ERR_NONFINITE
ERR_LABEL = GD_ERR_LABEL
ERR_WORKSPACE = GD_ERR_WORKSPACE
INTERRUPTED = GD_INTERRUPTED
ERR_OVERFLOW = GD_ERR_OVERFLOW
ERR_TARGET = GD_ERR_TARGET


# Ctrl-C during training: while the GIL is released Python's own SIGINT handler cannot run, so a
# C handler raises a flag that the epoch loop reads between batches; the caller restores Python's
# handler and raises KeyboardInterrupt at a batch boundary.
cdef volatile int _stop_requested = 0


cdef int _store_step(dict state, int64_t step) except -1:
    """Set the optimizer state's step count here, before returning: a SIGINT that Python's own
    handler caught while this call held the GIL raises KeyboardInterrupt as soon as the call
    returns, and a result the caller had yet to unpack would leave the step count behind the
    weights that already moved (Adam's bias corrections, saved checkpoints)."""
    if state is not None:
        state["step"] = step
    return 0


cdef void _on_sigint(int signum) noexcept nogil:
    global _stop_requested
    _stop_requested = 1


def openmp_enabled():
    """True when the C core was compiled with OpenMP."""
    return bool(gd_openmp_enabled())


def fork_limited():
    """True in a process forked from a parent that had threads besides the forking one (an
    OpenMP pool among them, gdcore's or another library's, such as PyTorch's) or had run a
    gdcore team: gdcore then runs on one thread there, since GNU OpenMP cannot start threads
    in a child forked after its pool existed, and does not say whether it had one."""
    return bool(gd_fork_limited())


def _request_stop():
    """What the SIGINT handler does during an interruptible train() (for tests of the flag)."""
    _on_sigint(SIGINT)


def clear_stop_request():
    """Forget a SIGINT that no train() call has reported (one that came with an error fit then
    raised): fit calls this before its first epoch."""
    global _stop_requested
    _stop_requested = 0


def vector_isa():
    """Which build of the element-wise loops runs on this CPU: "avx512f", "avx2", "baseline", or
    "baseline (built without clones)" (see GD_VECTOR_CLONES in csrc/gd_types.h)."""
    return gd_vector_isa().decode()


def team_cpus(int threads):
    """The CPU ids a team of ``threads`` OpenMP threads runs on, asked of the team's threads
    (gd_team_cpus), or None where that cannot be asked (not Linux, or no OpenMP)."""
    cdef int ids[1024]  # CPU_SETSIZE: the most a cpu_set_t holds
    cdef int n = gd_team_cpus(threads, ids, 1024)
    return [ids[i] for i in range(n)] if n > 0 else None


def max_threads():
    """omp_get_max_threads() capped by omp_get_thread_limit(): honours OMP_NUM_THREADS and
    OMP_THREAD_LIMIT; 1 without OpenMP."""
    return gd_max_threads()


cdef class Network:
    """Layer sizes, activations, per-layer penalties and dropout rates of an MLP, as the C core
    sees them (a gd_net)."""
    cdef gd_net net
    cdef readonly object sizes
    cdef readonly object acts
    cdef int64_t[::1] _sizes
    cdef int32_t[::1] _acts
    cdef double[::1] _l1
    cdef double[::1] _l2
    cdef double[::1] _dropout

    def __cinit__(self, int64_t[::1] sizes not None, int32_t[::1] acts not None, double negative_slope,
                  double[::1] l1=None, double[::1] l2=None, double[::1] dropout=None):
        cdef Py_ssize_t n_layers = acts.shape[0]
        if n_layers < 1 or sizes.shape[0] != n_layers + 1:
            raise ValueError("need n_layers >= 1 activations and n_layers + 1 sizes")
        for name, values in (("l1", l1), ("l2", l2), ("dropout", dropout)):
            if values is not None and values.shape[0] != n_layers:
                raise ValueError(f"{name} needs one value per layer")
        self._sizes = sizes
        self._acts = acts
        self._l1 = l1
        self._l2 = l2
        self._dropout = dropout
        self.sizes = sizes.base if sizes.base is not None else sizes
        self.acts = acts.base if acts.base is not None else acts
        self.net.n_layers = n_layers
        self.net.sizes = &self._sizes[0]
        self.net.acts = &self._acts[0]
        self.net.negative_slope = negative_slope
        self.net.l1 = &self._l1[0] if l1 is not None else NULL
        self.net.l2 = &self._l2[0] if l2 is not None else NULL
        self.net.dropout = &self._dropout[0] if dropout is not None else NULL

    @property
    def n_params(self):
        return gd_n_params(&self.net)

    @property
    def shard_work_len(self):
        """Elements of train(shard_work=...) each thread needs (benchmark only)."""
        return gd_shard_work_len(&self.net)

    def train_workspace_len(self, int64_t batch_rows, dtype_is_double):
        if dtype_is_double:
            return gd_train_workspace_len_f64(&self.net, batch_rows)
        return gd_train_workspace_len_f32(&self.net, batch_rows)

    def forward_workspace_len(self, int n_threads, dtype_is_double):
        cdef gd_ctx ctx = _context(n_threads)
        if dtype_is_double:
            return gd_forward_workspace_len_f64(&ctx, &self.net)
        return gd_forward_workspace_len_f32(&ctx, &self.net)


# ---------------------------------------------------------------------------------------------
# Single kernels: thin wrappers the tests compare with their NumPy twins (gdcore.reference).

def act_forward(int act, double negative_slope, real[::1] Z not None, real[::1] A not None):
    """A = act(Z), elementwise."""
    with nogil:
        if real is float:
            gd_act_forward_f32(act, <float>negative_slope, Z.shape[0], &Z[0], &A[0])
        else:
            gd_act_forward_f64(act, negative_slope, Z.shape[0], &Z[0], &A[0])


def act_backward(int act, double negative_slope, real[::1] Z not None, real[::1] A not None,
                 real[::1] dA not None, real[::1] dZ not None):
    """dZ = dA ⊙ act'(Z)."""
    with nogil:
        if real is float:
            gd_act_backward_f32(act, <float>negative_slope, Z.shape[0], &Z[0], &A[0], &dA[0], &dZ[0])
        else:
            gd_act_backward_f64(act, negative_slope, Z.shape[0], &Z[0], &A[0], &dA[0], &dZ[0])


def loss_rows(int kind, double delta, const real[:, ::1] out not None, const real[:, ::1] y_real,
              const int64_t[::1] y_index, real[::1] row_loss not None, real[:, ::1] grad,
              const real[::1] weights=None, real[::1] row_correct=None):
    """Per-row loss contributions (their sum is the mean loss, weighted by `weights` when given),
    if grad is given ∂loss/∂out, and if row_correct is given 1 for each row classified right."""
    cdef gd_loss spec
    cdef gd_status status
    cdef const real *y_ptr = NULL
    cdef const int64_t *index_ptr = NULL
    cdef const real *weight_ptr = NULL
    cdef real *grad_ptr = NULL
    cdef real *correct_ptr = NULL
    cdef double weight_total = out.shape[0]
    cdef int64_t r
    spec.kind = kind
    spec.delta = delta
    spec.l1 = 0
    spec.l2 = 0
    if y_real is not None:
        y_ptr = &y_real[0, 0]
    if y_index is not None:
        index_ptr = &y_index[0]
    if grad is not None:
        grad_ptr = &grad[0, 0]
    if row_correct is not None:
        correct_ptr = &row_correct[0]
    if weights is not None:
        weight_ptr = &weights[0]
        weight_total = 0
        for r in range(out.shape[0]):
            weight_total += weights[r]
    with nogil:
        if real is float:
            status = gd_loss_rows_f32(&spec, out.shape[0], weight_total, out.shape[1], &out[0, 0],
                                      y_ptr, index_ptr, weight_ptr, NULL, &row_loss[0], correct_ptr,
                                      grad_ptr)
        else:
            status = gd_loss_rows_f64(&spec, out.shape[0], weight_total, out.shape[1], &out[0, 0],
                                      y_ptr, index_ptr, weight_ptr, NULL, &row_loss[0], correct_ptr,
                                      grad_ptr)
    return status


def penalty(double l1, double l2, real[::1] W not None, real[::1] grad_W not None):
    """Return l1·Σ|W| + ½·l2·ΣW² and add its gradient into grad_W."""
    if real is float:
        return gd_penalty_f32(l1, l2, W.shape[0], &W[0], &grad_W[0])
    return gd_penalty_f64(l1, l2, W.shape[0], &W[0], &grad_W[0])


def dense_forward(int act, double negative_slope, real[:, ::1] X not None, real[:, ::1] W not None,
                  real[::1] b not None, real[:, ::1] Z not None, real[:, ::1] A not None):
    """Z = X·W + b, A = act(Z)."""
    cdef gd_ctx ctx = _context(1)
    cdef int64_t B = X.shape[0], I = X.shape[1], O = W.shape[1]
    with nogil:
        if real is float:
            gd_dense_forward_f32(&ctx, B, I, O, &X[0, 0], I, &W[0, 0], O, &b[0], act,
                                 <float>negative_slope, &Z[0, 0], &A[0, 0], O)
        else:
            gd_dense_forward_f64(&ctx, B, I, O, &X[0, 0], I, &W[0, 0], O, &b[0], act,
                                 negative_slope, &Z[0, 0], &A[0, 0], O)


def dense_backward(int act, double negative_slope, real[:, ::1] X not None, real[:, ::1] W not None,
                   real[:, ::1] Z not None, real[:, ::1] A not None, real[:, ::1] dA not None,
                   real[:, ::1] dW not None, real[::1] db not None, real[:, ::1] dX):
    """dZ = dA ⊙ act'(Z) (in place in dA), dW = Xᵀ·dZ, db = Σ dZ, dX = dZ·Wᵀ (when dX is given)."""
    cdef gd_ctx ctx = _context(1)
    cdef int64_t B = X.shape[0], I = X.shape[1], O = W.shape[1]
    with nogil:
        if real is float:
            gd_act_backward_f32(act, <float>negative_slope, B * O, &Z[0, 0], &A[0, 0], &dA[0, 0],
                                &dA[0, 0])
            gd_dense_backward_weights_f32(&ctx, B, I, O, &X[0, 0], I, &dA[0, 0], 0, I, 0, O,
                                          &dW[0, 0], &db[0])
            if dX is not None:
                gd_dense_backward_input_f32(&ctx, B, I, O, &dA[0, 0], O, &W[0, 0], O, 0, 0,
                                            NULL, NULL, I, &dX[0, 0], I)
        else:
            gd_act_backward_f64(act, negative_slope, B * O, &Z[0, 0], &A[0, 0], &dA[0, 0],
                                &dA[0, 0])
            gd_dense_backward_weights_f64(&ctx, B, I, O, &X[0, 0], I, &dA[0, 0], 0, I, 0, O,
                                          &dW[0, 0], &db[0])
            if dX is not None:
                gd_dense_backward_input_f64(&ctx, B, I, O, &dA[0, 0], O, &W[0, 0], O, 0, 0,
                                            NULL, NULL, I, &dX[0, 0], I)


cdef gd_optim _optim_spec(opt):
    """gd_optim from gdcore.optim's spec tuple (kind, lr, weight_decay, momentum, dampening,
    nesterov, beta1, beta2, eps, alpha, centered, lr_decay)."""
    cdef gd_optim spec
    (spec.kind, spec.lr, spec.weight_decay, spec.momentum, spec.dampening, spec.nesterov,
     spec.beta1, spec.beta2, spec.eps, spec.alpha, spec.centered, spec.lr_decay) = opt
    return spec


def optim_update(opt, double lr, int64_t step, real[::1] grad not None, real[::1] param not None,
                 real[::1] slot0=None, real[::1] slot1=None, real[::1] slot2=None):
    """One optimizer step in place (step is 1-based); slots are the optimizer's state buffers.
    Returns True if a parameter it wrote is inf or NaN."""
    cdef gd_optim spec = _optim_spec(opt)
    cdef real *slots[3]
    cdef int found
    slots[0] = &slot0[0] if slot0 is not None else NULL
    slots[1] = &slot1[0] if slot1 is not None else NULL
    slots[2] = &slot2[0] if slot2 is not None else NULL
    with nogil:
        if real is float:
            found = gd_optim_update_f32(&spec, lr, step, param.shape[0], &grad[0], &param[0], slots)
        else:
            found = gd_optim_update_f64(&spec, lr, step, param.shape[0], &grad[0], &param[0], slots)
    return found != 0


def dropout_keep_mask(uint64_t epoch_key, int64_t batch, int64_t layer, int64_t n_rows,
                      int64_t n_cols, double rate):
    """The keep mask (1 = kept) the C core draws for layer `layer` of batch `batch`: for tests."""
    import numpy as np
    mask = np.empty((n_rows, n_cols), dtype=np.uint8)
    cdef unsigned char[:, ::1] out = mask
    cdef uint64_t key = gd_dropout_batch_key(epoch_key, batch), row_key
    cdef int64_t r, c
    for r in range(n_rows):
        row_key = gd_dropout_row_key(key, layer, r)
        for c in range(n_cols):
            out[r, c] = gd_dropout_keep(row_key, c, rate)
    return mask.astype(bool)


# ---------------------------------------------------------------------------------------------
# Whole-network calls.

def any_nonfinite(const real[::1] x not None, int n_threads):
    """True if x holds an inf or NaN; on up to n_threads threads, without the GIL."""
    cdef gd_ctx ctx = _context(n_threads)
    cdef int found = 0
    if x.shape[0] == 0:
        return False
    with nogil:
        if real is float:
            found = gd_any_nonfinite_f32(&ctx, x.shape[0], &x[0])
        else:
            found = gd_any_nonfinite_f64(&ctx, x.shape[0], &x[0])
    return found != 0


def forward(Network network, int n_threads, const real[::1] params not None,
            const real[:, ::1] X not None,
            real[:, ::1] out not None, real[::1] work not None):
    """out = network(X); returns the C status."""
    cdef gd_ctx ctx = _context(n_threads)
    cdef gd_status status
    cdef real *X_ptr = NULL
    if X.shape[0] == 0:
        return GD_OK
    _blas_hold()
    with nogil:
        if real is float:
            status = gd_forward_f32(&ctx, &network.net, &params[0], X.shape[0], &X[0, 0],
                                    &out[0, 0], &work[0], work.shape[0])
        else:
            status = gd_forward_f64(&ctx, &network.net, &params[0], X.shape[0], &X[0, 0],
                                    &out[0, 0], &work[0], work.shape[0])
    _blas_release()
    return status


def train(Network network, int n_threads, loss, opt, double[::1] lrs, real[::1] params not None,
          real[::1] grads not None, slots, int64_t step, const real[:, ::1] X not None,
          const real[:, ::1] y_real, const int64_t[::1] y_index, const real[::1] weights,
          const int64_t[::1] perm,
          int64_t batch_size, int64_t first_batch, int64_t end_batch, real[::1] work not None,
          bint interruptible=False, uint64_t dropout_seed=0, real[::1] shard_work=None,
          dict state=None, double loss_start=0, double correct_start=0):
    """Run batches [first_batch, end_batch) of an epoch over perm with the GIL released.

    loss = (kind, delta, l1, l2); opt = gdcore.optim's spec tuple, or None for no update (then
    perm must be None and the one batch is all of X: loss_and_grad); lrs = the learning rate of
    every batch of the epoch (None: the optimizer's lr); slots = its three state buffers (None
    where unused). With perm None, one batch of all of X. interruptible: catch SIGINT (main
    thread only) and stop between batches. dropout_seed: key of the epoch's dropout masks (with
    perm None, of the one batch). Returns (status, loss_sum, correct, step, bad_batch):
    loss_sum = loss_start + Σ batch_loss·batch_rows, correct = correct_start + rows classified
    right (an epoch run in slices passes the sums so far: they are added up batch by batch, in
    one order, however the epoch is sliced); on GD_INTERRUPTED bad_batch is the first batch not
    run. shard_work: benchmark only (benches/bench_reduction.py),
    n_threads × network.shard_work_len elements: weight gradients summed from per-thread partials
    in the order the threads finish (see gd_ctx), so the bits depend on timing. state: the
    optimizer's state dict, whose "step" this call sets before it returns (see _store_step).
    """
    global _stop_requested
    cdef gd_ctx ctx = _context(n_threads)
    cdef gd_loss loss_spec
    cdef gd_optim opt_spec
    cdef const gd_optim *opt_ptr = NULL
    cdef gd_data_f32 data32
    cdef gd_data_f64 data64
    cdef gd_state_f32 state32
    cdef gd_state_f64 state64
    cdef gd_status status
    cdef double loss_sum = loss_start, batch_loss = 0, correct = correct_start, batch_correct = 0
    cdef double lr = 0
    cdef int64_t bad_batch = -1
    cdef const int64_t *perm_ptr = NULL
    cdef const double *lrs_ptr = NULL
    cdef real[::1] slot
    cdef sigaction_t on_sigint, previous_action
    cdef volatile int *stop_ptr = NULL  # only an interruptible call stops on a SIGINT
    cdef int i

    if shard_work is not None:
        if shard_work.shape[0] < <int64_t>ctx.n_threads * gd_shard_work_len(&network.net):
            raise ValueError(f"shard_work needs n_threads × shard_work_len = "
                             f"{ctx.n_threads * gd_shard_work_len(&network.net)} elements, "
                             f"got {shard_work.shape[0]}")
        ctx.shard_work = &shard_work[0]
    loss_spec.kind, loss_spec.delta, loss_spec.l1, loss_spec.l2 = loss
    if opt is not None:
        opt_spec = _optim_spec(opt)
        opt_ptr = &opt_spec
        lr = opt_spec.lr
    if perm is not None:
        perm_ptr = &perm[0]
    if lrs is not None:
        lrs_ptr = &lrs[0]
    if real is float:
        data32.n = X.shape[0]
        data32.X = &X[0, 0]
        data32.y_real = &y_real[0, 0] if y_real is not None else NULL
        data32.y_index = &y_index[0] if y_index is not None else NULL
        data32.weights = &weights[0] if weights is not None else NULL
        data32.dropout_seed = dropout_seed
        state32.params = &params[0]
        state32.grads = &grads[0]
        state32.step = step
        for i in range(3):
            slot = slots[i] if slots is not None else None
            state32.slots[i] = &slot[0] if slot is not None else NULL
    else:
        data64.n = X.shape[0]
        data64.X = &X[0, 0]
        data64.y_real = &y_real[0, 0] if y_real is not None else NULL
        data64.y_index = &y_index[0] if y_index is not None else NULL
        data64.weights = &weights[0] if weights is not None else NULL
        data64.dropout_seed = dropout_seed
        state64.params = &params[0]
        state64.grads = &grads[0]
        state64.step = step
        for i in range(3):
            slot = slots[i] if slots is not None else None
            state64.slots[i] = &slot[0] if slot is not None else NULL

    if interruptible:
        # sigaction, not signal(): signal() installs with SA_RESTART, and putting Python's
        # handler back that way left blocking reads (stdin, pipes, sockets) deaf to Ctrl-C
        # after any fit; the saved action comes back with its own flags and mask
        on_sigint.sa_handler = _on_sigint
        sigemptyset(&on_sigint.sa_mask)
        on_sigint.sa_flags = 0
        sigaction(SIGINT, &on_sigint, &previous_action)
        stop_ptr = &_stop_requested
    _blas_hold()
    with nogil:
        if perm_ptr == NULL:
            if real is float:
                status = gd_batch_step_f32(&ctx, &network.net, &loss_spec, opt_ptr, lr, &data32, NULL,
                                           data32.n, dropout_seed, &state32, &work[0], work.shape[0], &batch_loss,
                                           &batch_correct)
            else:
                status = gd_batch_step_f64(&ctx, &network.net, &loss_spec, opt_ptr, lr, &data64, NULL,
                                           data64.n, dropout_seed, &state64, &work[0], work.shape[0], &batch_loss,
                                           &batch_correct)
            loss_sum += batch_loss * X.shape[0]
            correct += batch_correct
        else:
            if real is float:
                status = gd_train_batches_f32(&ctx, &network.net, &loss_spec, opt_ptr, lrs_ptr,
                                              &data32, perm_ptr, batch_size, first_batch, end_batch,
                                              &state32, &work[0], work.shape[0], stop_ptr,
                                              &loss_sum, &correct, &bad_batch)
            else:
                status = gd_train_batches_f64(&ctx, &network.net, &loss_spec, opt_ptr, lrs_ptr,
                                              &data64, perm_ptr, batch_size, first_batch, end_batch,
                                              &state64, &work[0], work.shape[0], stop_ptr,
                                              &loss_sum, &correct, &bad_batch)
    _blas_release()
    if interruptible:
        sigaction(SIGINT, &previous_action, NULL)
        # A SIGINT after the last batch's check is reported here, at the boundary where the
        # call ended. One that came with a refused batch stays pending for the next call (fit
        # may skip that batch and go on); the flag is cleared only once reported, and by
        # clear_stop_request() when a fit starts.
        if _stop_requested and status == GD_OK and perm_ptr != NULL:
            status = GD_INTERRUPTED
            bad_batch = end_batch
        if status == GD_INTERRUPTED:
            _stop_requested = 0
    step = state32.step if real is float else state64.step
    _store_step(state, step)
    return status, loss_sum, correct, step, bad_batch


# ---------------------------------------------------------------------------------------------
# train_step's fast path. A pipeline that steps one model per event pays for every microsecond
# around the C step: argument parsing, memoryviews for ten buffers, spec tuples, a Python copy of
# the parameters. A Stepper binds all of that once; a call checks the batch's layout, copies the
# parameters and optimizer state with memcpy (so an overflowing update can be undone) and runs
# gd_batch_step.

cdef class Stepper:
    """One training step on a whole batch, with the network, loss, optimizer and buffers bound.

    ``step(X, y, state, dropout_seed)`` takes X and y only in the layout the core reads: C-contiguous
    arrays of the model's dtype (X of shape (B, n_inputs); y int64 class indices of shape (B,) for
    an index loss, else of shape (B, n_outputs)). For anything else it returns None having changed
    nothing, and the caller takes the general path, which converts or explains. Otherwise it sets
    the optimizer state's ``state["step"]`` (see _store_step) and returns (status, mean batch
    loss); on ERR_OVERFLOW the parameters and optimizer state are already restored. The arrays
    passed in must stay the model's and the optimizer's own buffers (the caller checks the
    optimizer's state is unchanged).
    """
    cdef Network network
    cdef gd_ctx ctx
    cdef gd_loss loss
    cdef gd_optim opt
    cdef bint double_precision, index_targets
    cdef int64_t n_in, n_out, n_params, n_slots, work_len
    cdef size_t itemsize
    cdef object arrays              # keeps the buffers below alive
    cdef object work
    cdef char *params
    cdef char *grads
    cdef char *slots[3]
    cdef char *backup               # params, then each used slot
    cdef char *work_ptr

    def __init__(self, Network network, int n_threads, loss, opt, params, grads, slots,
                 bint index_targets):
        import numpy as np
        cdef char[::1] raw
        cdef int i
        self.network = network
        self.ctx = _context(n_threads)
        self.loss.kind, self.loss.delta, self.loss.l1, self.loss.l2 = loss
        self.opt = _optim_spec(opt)
        self.double_precision = params.dtype == np.float64
        self.itemsize = params.dtype.itemsize
        self.index_targets = index_targets
        self.n_in = network.net.sizes[0]
        self.n_out = network.net.sizes[network.net.n_layers]
        self.n_params = params.shape[0]
        used = [slot for slot in slots if slot is not None]
        self.n_slots = len(used)
        backup = np.empty((1 + self.n_slots) * self.n_params, dtype=params.dtype)
        self.arrays = (params, grads, tuple(slots), backup)
        raw = params.view(np.uint8)
        self.params = &raw[0]
        raw = grads.view(np.uint8)
        self.grads = &raw[0]
        for i in range(3):
            self.slots[i] = NULL
            if slots[i] is not None:
                raw = slots[i].view(np.uint8)
                self.slots[i] = &raw[0]
        raw = backup.view(np.uint8)
        self.backup = &raw[0]
        self.work = None
        self.work_len = 0

    cdef int _reserve(self, int64_t rows) except -1:
        """Grow the workspace to a batch of `rows` (only when a larger batch first comes)."""
        cdef char[::1] raw
        cdef int64_t length
        if self.double_precision:
            length = gd_train_workspace_len_f64(&self.network.net, rows)
        else:
            length = gd_train_workspace_len_f32(&self.network.net, rows)
        if length > self.work_len:
            import numpy as np  # here, not per step: only a larger batch gets this far
            self.work = np.empty(length, dtype=np.float64 if self.double_precision else np.float32)
            raw = self.work.view(np.uint8)
            self.work_ptr = &raw[0]
            self.work_len = length
        return 0

    cdef void _copy_state(self, bint restore) noexcept nogil:
        cdef size_t size = <size_t>self.n_params * self.itemsize
        cdef int64_t i, k = 0
        if restore:
            memcpy(self.params, self.backup, size)
        else:
            memcpy(self.backup, self.params, size)
        for i in range(3):
            if self.slots[i] != NULL:
                k += 1
                if restore:
                    memcpy(self.slots[i], self.backup + k * size, size)
                else:
                    memcpy(self.backup + k * size, self.slots[i], size)

    def step(self, X, y, dict state, uint64_t dropout_seed):
        cdef const float[:, ::1] X32, y32
        cdef const double[:, ::1] X64, y64
        cdef const int64_t[::1] labels
        cdef gd_data_f32 data32
        cdef gd_data_f64 data64
        cdef gd_state_f32 state32
        cdef gd_state_f64 state64
        cdef gd_status status
        cdef double batch_loss = 0, correct = 0
        cdef int64_t B, width, target_rows, target_width = self.n_out, i
        cdef int64_t step = state["step"]
        try:
            if self.double_precision:
                X64 = X
                B, width = X64.shape[0], X64.shape[1]
            else:
                X32 = X
                B, width = X32.shape[0], X32.shape[1]
            if self.index_targets:
                labels = y
                target_rows = labels.shape[0]
            elif self.double_precision:
                y64 = y
                target_rows, target_width = y64.shape[0], y64.shape[1]
            else:
                y32 = y
                target_rows, target_width = y32.shape[0], y32.shape[1]
        except (TypeError, ValueError, BufferError):
            return None
        if B < 1 or width != self.n_in or target_rows != B or target_width != self.n_out:
            return None
        self._reserve(B)
        _blas_hold()
        with nogil:
            self._copy_state(False)
            if self.double_precision:
                data64.n = B
                data64.X = &X64[0, 0]
                data64.y_real = NULL if self.index_targets else &y64[0, 0]
                data64.y_index = &labels[0] if self.index_targets else NULL
                data64.weights = NULL
                data64.dropout_seed = dropout_seed
                state64.params = <double *>self.params
                state64.grads = <double *>self.grads
                for i in range(3):
                    state64.slots[i] = <double *>self.slots[i]
                state64.step = step
                status = gd_batch_step_f64(&self.ctx, &self.network.net, &self.loss, &self.opt,
                                           self.opt.lr, &data64, NULL, B, dropout_seed, &state64,
                                           <double *>self.work_ptr, self.work_len, &batch_loss,
                                           &correct)
                step = state64.step
            else:
                data32.n = B
                data32.X = &X32[0, 0]
                data32.y_real = NULL if self.index_targets else &y32[0, 0]
                data32.y_index = &labels[0] if self.index_targets else NULL
                data32.weights = NULL
                data32.dropout_seed = dropout_seed
                state32.params = <float *>self.params
                state32.grads = <float *>self.grads
                for i in range(3):
                    state32.slots[i] = <float *>self.slots[i]
                state32.step = step
                status = gd_batch_step_f32(&self.ctx, &self.network.net, &self.loss, &self.opt,
                                           self.opt.lr, &data32, NULL, B, dropout_seed, &state32,
                                           <float *>self.work_ptr, self.work_len, &batch_loss,
                                           &correct)
                step = state32.step
            if status == GD_ERR_OVERFLOW:
                self._copy_state(True)
        _blas_release()
        _store_step(state, step)
        return status, batch_loss


# ---------------------------------------------------------------------------------------------
# Benchmark support: the BLAS roofline of an epoch.

cdef inline void _roofline_gemm(gd_ctx *ctx, bint double_precision, int trans_a, int trans_b,
                                int64_t M, int64_t N, int64_t K, char *a, int64_t lda, char *b,
                                int64_t ldb, char *c, int64_t ldc) noexcept nogil:
    """C = op(a)·op(b), row-major, in the precision asked for (a, b, c point into one buffer)."""
    if double_precision:
        ctx.dgemm(trans_a, trans_b, M, N, K, 1, <double *>a, lda, <double *>b, ldb, 0,
                  <double *>c, ldc)
    else:
        ctx.sgemm(trans_a, trans_b, M, N, K, 1, <float *>a, lda, <float *>b, ldb, 0,
                  <float *>c, ldc)


def gemm_epoch_seconds(int64_t[::1] sizes not None, int64_t batch_size, int64_t n_samples,
                       bint double_precision=False):
    """Seconds that the GEMM calls of one training epoch take alone, as full-batch BLAS calls.

    Per batch of B rows, the calls of a training step in its order: the forward Z_l = A_{l-1}·W_l
    (B×I·I×O) of every layer I→O, then from the top layer down the weight gradient
    dW_l = A_{l-1}ᵀ·dZ_l (I×B·B×O) and, above the first layer, the input gradient
    dZ_{l-1} = dZ_l·W_lᵀ (B×O·O×I): the GEMM work that any implementation of the epoch has to
    do. Each layer has its own buffers (W_l, dW_l, Z_l = A_l, dZ_l; one B×I_0 input batch), as
    in any trainer: with one buffer shared by every layer's weights, layer 2's GEMMs of
    784-512-512-10 found their operand in the cache where layer 1's had just been, and the
    calls ran 5-8% faster on one thread and 14% on two than any epoch can. BLAS threads are
    whatever the caller set (threadpoolctl). Returns (seconds, flops).
    """
    import numpy as np
    import time
    cdef gd_ctx ctx = _context(1)
    cdef int64_t n_layers = sizes.shape[0] - 1, l, start, B, I, O, total
    cdef int64_t w_at[64], dw_at[64], z_at[64], dz_at[64]
    cdef double flops = 0
    cdef size_t item = 8 if double_precision else 4
    cdef unsigned char[::1] raw
    cdef char *base
    cdef char *a_in
    if not 1 <= n_layers <= 64 or np.asarray(sizes).min() < 1:
        raise ValueError(f"sizes must hold 2 to 65 layer widths, each >= 1, got "
                         f"{np.asarray(sizes).tolist()}")
    if batch_size < 1 or n_samples < 1:
        raise ValueError(f"batch_size and n_samples must be >= 1, got {batch_size} and {n_samples}")
    total = batch_size * sizes[0]  # the input batch comes first
    for l in range(n_layers):
        w_at[l] = total
        dw_at[l] = w_at[l] + sizes[l] * sizes[l + 1]
        z_at[l] = dw_at[l] + sizes[l] * sizes[l + 1]
        dz_at[l] = z_at[l] + batch_size * sizes[l + 1]
        total = dz_at[l] + batch_size * sizes[l + 1]
    # 0.01 everywhere: the values stay far from overflow and denormals in every product
    memory = np.full(total, 0.01, dtype=np.float64 if double_precision else np.float32)
    raw = memory.view(np.uint8)
    base = <char *>&raw[0]
    begin = time.perf_counter()
    with nogil:
        start = 0
        while start < n_samples:
            B = min(batch_size, n_samples - start)
            for l in range(n_layers):
                I = sizes[l]
                O = sizes[l + 1]
                a_in = base if l == 0 else base + z_at[l - 1] * item
                _roofline_gemm(&ctx, double_precision, 0, 0, B, O, I, a_in, I,
                               base + w_at[l] * item, O, base + z_at[l] * item, O)
                flops += 2.0 * B * I * O * (3 if l > 0 else 2)
            for l in range(n_layers - 1, -1, -1):
                I = sizes[l]
                O = sizes[l + 1]
                a_in = base if l == 0 else base + z_at[l - 1] * item
                _roofline_gemm(&ctx, double_precision, 1, 0, I, O, B, a_in, I,
                               base + dz_at[l] * item, O, base + dw_at[l] * item, O)
                if l > 0:
                    _roofline_gemm(&ctx, double_precision, 0, 1, B, I, O, base + dz_at[l] * item,
                                   O, base + w_at[l] * item, O, base + dz_at[l - 1] * item, I)
            start += B
    return time.perf_counter() - begin, flops
