/* gdcore C core: types shared by both element types (float and double).
 *
 * Conventions for every kernel: row-major matrices, inputs const, outputs last, the caller owns
 * all memory (kernels never allocate), errors come back as a gd_status and never print. */
#ifndef GD_TYPES_H
#define GD_TYPES_H

#include <stdint.h>

/* The element-wise loops (optimizer, activations, loss, the finiteness checks, the batch
 * gather) are memory passes between GEMMs; compiled for baseline x86-64 they use 16-byte SSE2
 * vectors. GD_VECTOR_CLONES compiles a function three times, with AVX-512F, with AVX2 and for
 * the baseline, and the loader picks the best one the CPU runs (GCC's target_clones, an ELF
 * ifunc: glibc Linux only; elsewhere the baseline alone). ISA names, not arch=: GCC inlines the
 * static helpers into a clone only when the arch is the same. 784-128-10 at batch 64, one
 * thread on an AVX-512 CPU: 0.279 s → 0.231 s per epoch. The build keeps -ffp-contract=off, so
 * every clone rounds exactly as the baseline: no fused multiply-adds. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    defined(__GLIBC__) && !defined(GD_NO_VECTOR_CLONES)
#define GD_HAS_VECTOR_CLONES 1
#define GD_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define GD_HAS_VECTOR_CLONES 0
#define GD_VECTOR_CLONES
#endif

typedef enum {
    GD_OK = 0,
    GD_ERR_ARG = 1,        /* a size or pointer argument is invalid */
    GD_ERR_NONFINITE = 2,  /* the loss became NaN or infinite; the update of that batch was skipped */
    GD_ERR_LABEL = 3,      /* a class index is outside [0, n_classes) */
    GD_ERR_WORKSPACE = 4,  /* the workspace given is smaller than gd_workspace_len() asks */
    GD_INTERRUPTED = 5,    /* the stop flag was raised; training stopped between two batches */
    GD_ERR_OVERFLOW = 6,   /* finite inputs gave an inf or NaN: the network's output (gd_forward)
                              or the parameters after an optimizer step (gd_batch_step) */
    GD_ERR_TARGET = 7      /* a binary cross-entropy target is outside [0, 1] (or NaN) */
} gd_status;

typedef enum {
    GD_ACT_IDENTITY = 0,
    GD_ACT_RELU = 1,
    GD_ACT_LEAKY_RELU = 2,
    GD_ACT_SIGMOID = 3,
    GD_ACT_TANH = 4,
    GD_ACT_GELU = 5
} gd_act;

typedef enum {
    GD_LOSS_CROSS_ENTROPY = 0,  /* softmax + NLL over logits, class-index targets */
    GD_LOSS_BCE = 1,            /* binary cross-entropy with logits, targets in {0, 1} */
    GD_LOSS_MSE = 2,
    GD_LOSS_MAE = 3,
    GD_LOSS_HUBER = 4,
    GD_LOSS_HINGE = 5           /* multi-class margin, as torch.nn.MultiMarginLoss(p=1, margin=1) */
} gd_loss_kind;

/* Row-major GEMM: C = alpha·op(A)·op(B) + beta·C with op(A): M×K, op(B): K×N, C: M×N.
 * trans_a / trans_b are 0 or 1. The Python boundary passes BLAS (scipy.linalg.cython_blas);
 * C tests pass a plain reference loop. */
typedef void (*gd_sgemm_fn)(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K,
                            float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
                            float beta, float *C, int64_t ldc);
typedef void (*gd_dgemm_fn)(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K,
                            double alpha, const double *A, int64_t lda, const double *B, int64_t ldb,
                            double beta, double *C, int64_t ldc);

typedef struct {
    gd_sgemm_fn sgemm;
    gd_dgemm_fn dgemm;
    int n_threads;  /* upper bound on OpenMP threads; small work uses fewer */
    /* Benchmark only; NULL (what every caller but benches/bench_reduction.py passes) keeps each
     * result the same bits for any thread count. Non-NULL: gd_batch_step computes weight
     * gradients the data-parallel way, summing per-thread partials in the order the threads
     * finish (gd_train.c, free_order_weight_gradients), which needs n_threads ×
     * gd_shard_work_len(net) elements of the batch's element type here. */
    void *shard_work;
    /* The largest M·N·K that the BLAS computes without packing its operands, 0 where it has no
     * such path or it is not known: OpenBLAS's kernels for AVX-512 Skylake-family cores (used
     * on AVX-512 Intel and AMD Zen 4/5 CPUs) take a small-matrix kernel up to 100³. Tile shapes
     * use it (gd_train.c, batch_tiling); set once per process from the BLAS in use, so the bits
     * still never depend on the thread count. */
    int64_t blas_small_mnk;
} gd_ctx;

/* A multilayer perceptron: layer l maps sizes[l] inputs to sizes[l+1] outputs, y = act_l(x·W_l + b_l).
 * Parameters live in one flat buffer: W_0 (sizes[0]×sizes[1], row-major), b_0, W_1, b_1, ...
 * Gradients and optimizer state use the same layout. */
typedef struct {
    int64_t n_layers;
    const int64_t *sizes;   /* n_layers + 1 entries */
    const int32_t *acts;    /* n_layers gd_act values */
    double negative_slope;  /* of leaky_relu */
    const double *l1;       /* per-layer weight penalties added to gd_loss's (NULL: none) */
    const double *l2;
    const double *dropout;  /* per-layer rate of inverted dropout on the layer's output while
                               training with an optimizer (NULL: none; the last layer's is 0) */
} gd_net;

typedef struct {
    int32_t kind;   /* gd_loss_kind */
    double delta;   /* huber threshold */
    double l1;      /* penalty l1·Σ|W| over every weight matrix (not biases) */
    double l2;      /* penalty ½·l2·Σ W² over every weight matrix (not biases) */
} gd_loss;

typedef enum {
    GD_OPT_SGD = 0,
    GD_OPT_ADAM = 1,
    GD_OPT_ADAMW = 2,
    GD_OPT_RMSPROP = 3,
    GD_OPT_ADAGRAD = 4
} gd_optim_kind;

/* An optimizer's hyperparameters; each kind reads its own fields and follows torch.optim
 * (gd_optim.c states every rule). State lives in up to three buffers laid out like the
 * parameters (GD_OPTIM_SLOTS):
 *   SGD: momentum buffer v | Adam, AdamW: m, v | RMSprop: square avg, momentum buffer, grad avg |
 *   Adagrad: sum of squares. */
typedef struct {
    int32_t kind;          /* gd_optim_kind */
    double lr;             /* used when no per-batch learning rates are given */
    double weight_decay;   /* L2 added to the gradient; decoupled (p ← p·(1 − lr·wd)) for AdamW */
    double momentum;       /* SGD, RMSprop */
    double dampening;      /* SGD */
    int32_t nesterov;      /* SGD */
    double beta1, beta2;   /* Adam, AdamW */
    double eps;            /* Adam, AdamW, RMSprop, Adagrad */
    double alpha;          /* RMSprop smoothing */
    int32_t centered;      /* RMSprop */
    double lr_decay;       /* Adagrad */
} gd_optim;

#define GD_OPTIM_SLOTS 3

int64_t gd_n_params(const gd_net *net);
/* Elements of gd_ctx.shard_work one thread needs: the largest layer's W and b. */
int64_t gd_shard_work_len(const gd_net *net);
/* 1 when the core was built with OpenMP; the largest thread count OpenMP would use now. */
int gd_openmp_enabled(void);
int gd_max_threads(void);
/* The CPUs a team of `threads` OpenMP threads runs on (the union of their affinity masks;
 * Linux), ascending, into ids[0, cap): their count, or 0 where that cannot be asked. */
int gd_team_cpus(int threads, int *ids, int cap);
/* The thread count to run a parallel region with, given the one wanted: 1 in a child process
 * forked from a process that had other threads or ran a gdcore team (GNU OpenMP would hang
 * there if one of them was its pool; see gd_common.c). */
int gd_team_size(int wanted);
/* 1 in such a forked child. */
int gd_fork_limited(void);
/* Which clone of the element-wise loops runs here (GD_VECTOR_CLONES): "avx512f", "avx2",
 * "baseline", or "baseline (built without clones)". */
const char *gd_vector_isa(void);

#endif
