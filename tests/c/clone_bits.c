/* Prints a hash of the parameters after a short training run for every optimizer, activation
 * and loss, in float32 and float64, one line per case, and first the line "isa <name>" with the
 * clone of the element-wise loops that ran (gd_vector_isa). tests/test_c_core.py builds this
 * twice, with GD_VECTOR_CLONES and with -DGD_NO_VECTOR_CLONES, and compares the lines: the
 * AVX2/AVX-512 clones must round exactly as the baseline build. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gdcore.h"
#include "reference_gemm.h"

enum { N = 96, BATCH = 32, N_IN = 12, N_OUT = 3 };

/* 64-bit FNV-1a of n bytes. */
static uint64_t fnv1a(const void *data, size_t n)
{
    const unsigned char *bytes = data;
    uint64_t hash = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        hash = (hash ^ bytes[i]) * 0x100000001b3ull;
    return hash;
}

static double uniform(unsigned *state)
{
    *state = *state * 1103515245u + 12345u;
    return ((*state >> 8) & 0xFFFFFF) / (double)0x1000000 * 2.0 - 1.0;
}

/* One training run of a 12-24-16-3 network, in element type T (suffix S), hashed. */
#define TRAIN_AND_HASH(S, T)                                                                     \
    static uint64_t train_and_hash_##S(const gd_net *net, const gd_loss *loss,                   \
                                       const gd_optim *opt)                                      \
    {                                                                                            \
        const gd_ctx ctx = {ref_sgemm, ref_dgemm, 2};                                            \
        const int64_t n = gd_n_params(net), work_len = gd_train_workspace_len_##S(net, BATCH);   \
        T *X = malloc(N * N_IN * sizeof(T)), *y_real = malloc(N * N_OUT * sizeof(T));            \
        T *params = malloc(n * sizeof(T)), *grads = malloc(n * sizeof(T));                       \
        T *slots = calloc(3 * (size_t)n, sizeof(T)), *work = malloc(work_len * sizeof(T));       \
        int64_t y_index[N], perm[N], bad = -1;                                                   \
        unsigned seed = 5;                                                                       \
        double loss_sum = 0, correct = 0;                                                        \
        uint64_t hash;                                                                           \
        for (int i = 0; i < N * N_IN; i++)                                                       \
            X[i] = (T)uniform(&seed);                                                            \
        for (int i = 0; i < N; i++) {                                                            \
            y_index[i] = i % N_OUT;                                                              \
            perm[i] = (i * 37) % N;                                                              \
            for (int j = 0; j < N_OUT; j++)                                                      \
                y_real[i * N_OUT + j] = (T)((i + j) % 2);                                        \
        }                                                                                        \
        for (int64_t i = 0; i < n; i++)                                                          \
            params[i] = (T)(0.3 * uniform(&seed));                                               \
        gd_data_##S data = {N, X, y_real, y_index, NULL, 99u};                                   \
        gd_state_##S state = {params, grads, {slots, slots + n, slots + 2 * n}, 0};              \
        gd_status st = gd_train_batches_##S(&ctx, net, loss, opt, NULL, &data, perm, BATCH, 0,   \
                                            N / BATCH, &state, work, work_len, NULL, &loss_sum,  \
                                            &correct, &bad);                                     \
        hash = fnv1a(params, n * sizeof(T)) ^ (uint64_t)st;                                      \
        hash = (hash ^ fnv1a(&loss_sum, sizeof loss_sum)) * 0x100000001b3ull;                    \
        free(X), free(y_real), free(params), free(grads), free(slots), free(work);               \
        return hash;                                                                             \
    }
TRAIN_AND_HASH(f32, float)
TRAIN_AND_HASH(f64, double)

int main(void)
{
    const int32_t loss_kinds[] = {GD_LOSS_CROSS_ENTROPY, GD_LOSS_BCE, GD_LOSS_MSE,
                                  GD_LOSS_MAE, GD_LOSS_HUBER, GD_LOSS_HINGE};
    const int32_t hidden_acts[] = {GD_ACT_RELU, GD_ACT_LEAKY_RELU, GD_ACT_SIGMOID, GD_ACT_TANH,
                                   GD_ACT_GELU};
    /* kind, lr, weight decay, momentum, dampening, nesterov, beta1, beta2, eps, alpha,
     * centered, lr_decay */
    const gd_optim optims[] = {
        {GD_OPT_SGD, 0.05, 1e-3, 0.9, 0.0, 1, 0.9, 0.999, 1e-8, 0.99, 0, 0.0},
        {GD_OPT_ADAM, 0.01, 1e-3, 0.0, 0.0, 0, 0.9, 0.999, 1e-8, 0.99, 0, 0.0},
        {GD_OPT_ADAMW, 0.01, 1e-2, 0.0, 0.0, 0, 0.9, 0.999, 1e-8, 0.99, 0, 0.0},
        {GD_OPT_RMSPROP, 0.01, 0.0, 0.5, 0.0, 0, 0.9, 0.999, 1e-8, 0.9, 1, 0.0},
        {GD_OPT_ADAGRAD, 0.05, 0.0, 0.0, 0.0, 0, 0.9, 0.999, 1e-10, 0.99, 0, 0.01}};
    const int64_t sizes[] = {N_IN, 24, 16, N_OUT};
    const double dropout[] = {0.25, 0.0, 0.0};

    printf("isa %s\n", gd_vector_isa());
    for (size_t o = 0; o < sizeof optims / sizeof optims[0]; o++)
        for (size_t a = 0; a < sizeof hidden_acts / sizeof hidden_acts[0]; a++)
            for (size_t l = 0; l < sizeof loss_kinds / sizeof loss_kinds[0]; l++) {
                const int32_t acts[] = {hidden_acts[a], hidden_acts[a], GD_ACT_IDENTITY};
                const gd_net net = {3, sizes, acts, 0.01, NULL, NULL, o == 0 ? dropout : NULL};
                const gd_loss loss = {loss_kinds[l], 0.7, 1e-3, 1e-3};
                printf("optim %zu act %zu loss %zu: %016llx %016llx\n", o, a, l,
                       (unsigned long long)train_and_hash_f32(&net, &loss, &optims[o]),
                       (unsigned long long)train_and_hash_f64(&net, &loss, &optims[o]));
            }
    return 0;
}
