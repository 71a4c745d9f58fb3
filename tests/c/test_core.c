/* C-level tests of the core, with a plain reference GEMM instead of BLAS: shows the core is
 * free of Python and checks what the Python tests cannot reach directly (status codes on bad
 * arguments, no write on a non-finite loss). Built and run by tests/test_c_core.py; also by hand:
 *   cc -O1 -fopenmp -I../../csrc test_core.c <core objects> -lm && ./a.out
 * Prints "N passed, M failed". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gdcore.h"

static int n_passed, n_failed;

#define CHECK(cond, ...)                                                                         \
    do {                                                                                         \
        if (cond) {                                                                              \
            n_passed++;                                                                          \
        } else {                                                                                 \
            n_failed++;                                                                          \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                          \
            printf(__VA_ARGS__);                                                                 \
            printf("\n");                                                                        \
        }                                                                                        \
    } while (0)

#include "reference_gemm.h"

static double uniform(unsigned *state)
{
    *state = *state * 1103515245u + 12345u;
    return ((*state >> 8) & 0xFFFFFF) / (double)0x1000000 * 2.0 - 1.0;
}

/* Gradient of a 5-7-3 tanh net with cross-entropy + L2 against central differences. */
static void test_gradient_double(void)
{
    const int64_t sizes[] = {5, 7, 3};
    const int32_t acts[] = {GD_ACT_TANH, GD_ACT_IDENTITY};
    const gd_net net = {2, sizes, acts, 0.01};
    const gd_ctx ctx = {ref_sgemm, ref_dgemm, 1};
    const gd_loss loss = {GD_LOSS_CROSS_ENTROPY, 1.0, 0.0, 0.03};
    enum { B = 6 };
    double X[B * 5];
    int64_t y[B];
    unsigned seed = 7;
    int64_t n = gd_n_params(&net), work_len = gd_train_workspace_len_f64(&net, B);
    double *params = malloc(n * sizeof(double)), *grads = malloc(n * sizeof(double));
    double *scratch = malloc(n * sizeof(double)), *work = malloc(work_len * sizeof(double));
    double worst = 0, value, plus, minus;
    gd_data_f64 data = {B, X, NULL, y, NULL};
    gd_state_f64 state = {params, grads, {NULL, NULL, NULL}, 0};
    gd_state_f64 probe = {params, scratch, {NULL, NULL, NULL}, 0};

    for (int i = 0; i < B * 5; i++)
        X[i] = uniform(&seed);
    for (int i = 0; i < B; i++)
        y[i] = i % 3;
    for (int64_t i = 0; i < n; i++)
        params[i] = 0.5 * uniform(&seed);
    CHECK(gd_batch_step_f64(&ctx, &net, &loss, NULL, 0.0, &data, NULL, B, 0, &state, work, work_len,
                            &value, NULL) == GD_OK, "batch_step failed");
    for (int64_t i = 0; i < n; i++) {
        const double keep = params[i], eps = 1e-6;
        params[i] = keep + eps;
        gd_batch_step_f64(&ctx, &net, &loss, NULL, 0.0, &data, NULL, B, 0, &probe, work, work_len, &plus,
                          NULL);
        params[i] = keep - eps;
        gd_batch_step_f64(&ctx, &net, &loss, NULL, 0.0, &data, NULL, B, 0, &probe, work, work_len, &minus,
                          NULL);
        params[i] = keep;
        const double numeric = (plus - minus) / (2 * eps);
        const double err = fabs(numeric - grads[i]) / fmax(1e-8, fabs(numeric) + fabs(grads[i]));
        worst = err > worst ? err : worst;
    }
    CHECK(worst < 1e-7, "largest relative gradient error %g", worst);
    free(params), free(grads), free(scratch), free(work);
}

/* Training (with dropout and a layer penalty) with 1..4 threads gives the same bits; bad
 * arguments give status codes, no writes. */
static void test_threads_and_errors(void)
{
    const int64_t sizes[] = {40, 300, 200, 4};
    const int32_t acts[] = {GD_ACT_RELU, GD_ACT_GELU, GD_ACT_IDENTITY};
    const double dropout[] = {0.3, 0.1, 0.0}, layer_l2[] = {0.0, 0.01, 0.0};
    const gd_net net = {3, sizes, acts, 0.01, NULL, layer_l2, dropout};
    const gd_loss loss = {GD_LOSS_HINGE, 1.0, 0.001, 0.0};
    /* SGD, lr 0.05, weight decay 1e-4, Nesterov momentum 0.9 */
    const gd_optim opt = {GD_OPT_SGD, 0.05, 1e-4, 0.9, 0.0, 1, 0.9, 0.999, 1e-8, 0.99, 0, 0.0};
    enum { N = 300, BATCH = 128 };
    float *X = malloc(N * 40 * sizeof(float));
    int64_t y[N], perm[N], bad = -1;
    unsigned seed = 3;
    const int64_t n = gd_n_params(&net), work_len = gd_train_workspace_len_f32(&net, BATCH);
    float *first = malloc(n * sizeof(float));
    float *params = malloc(n * sizeof(float)), *grads = malloc(n * sizeof(float));
    float *velocity = malloc(n * sizeof(float)), *work = malloc(work_len * sizeof(float));
    gd_data_f32 data = {N, X, NULL, y, NULL, 12345u};
    volatile int stop = 0;
    double loss_sum = 0, correct = 0;

    for (int i = 0; i < N * 40; i++)
        X[i] = (float)uniform(&seed);
    for (int i = 0; i < N; i++) {
        y[i] = i % 4;
        perm[i] = (i * 37) % N;
    }
    for (int threads = 1; threads <= 4; threads++) {
        const gd_ctx ctx = {ref_sgemm, ref_dgemm, threads};
        gd_state_f32 state = {params, grads, {velocity, NULL, NULL}, 0};
        unsigned init = 11;
        for (int64_t i = 0; i < n; i++)
            params[i] = (float)(0.1 * uniform(&init));
        loss_sum = 0;
        gd_status st = gd_train_batches_f32(&ctx, &net, &loss, &opt, NULL, &data, perm, BATCH, 0,
                                            (N + BATCH - 1) / BATCH, &state, work, work_len,
                                            &stop, &loss_sum, &correct, &bad);
        CHECK(st == GD_OK && state.step == 3, "train_batches status %d step %lld", st,
              (long long)state.step);
        if (threads == 1)
            memcpy(first, params, n * sizeof(float));
        else
            CHECK(memcmp(first, params, n * sizeof(float)) == 0,
                  "weights after %d threads differ from 1 thread", threads);
    }

    const gd_ctx ctx = {ref_sgemm, ref_dgemm, 2};
    gd_state_f32 state = {params, grads, {velocity, NULL, NULL}, 1};
    CHECK(gd_train_batches_f32(&ctx, &net, &loss, &opt, NULL, &data, perm, BATCH, 0, 3, &state, work,
                               work_len - 1, &stop, &loss_sum, &correct, &bad) == GD_ERR_WORKSPACE,
          "a short workspace must be refused");
    CHECK(gd_train_batches_f32(&ctx, &net, &loss, &opt, NULL, &data, perm, BATCH, 0, 4, &state, work,
                               work_len, &stop, &loss_sum, &correct, &bad) == GD_ERR_ARG,
          "a batch range past the data must be refused");
    y[5] = 4;
    CHECK(gd_train_batches_f32(&ctx, &net, &loss, &opt, NULL, &data, perm, BATCH, 0, 3, &state, work,
                               work_len, &stop, &loss_sum, &correct, &bad) == GD_ERR_LABEL,
          "a class index out of range must be reported");
    y[5] = 1;
    memcpy(first, params, n * sizeof(float));
    X[perm[0] * 40] = INFINITY;
    CHECK(gd_train_batches_f32(&ctx, &net, &loss, &opt, NULL, &data, perm, BATCH, 0, 3, &state, work,
                               work_len, &stop, &loss_sum, &correct, &bad) == GD_ERR_NONFINITE && bad == 0,
          "an infinite input must stop training at batch 0 (bad = %lld)", (long long)bad);
    CHECK(memcmp(first, params, n * sizeof(float)) == 0, "a non-finite batch must not update");
    X[perm[0] * 40] = 0.5f;
    stop = 1;
    CHECK(gd_train_batches_f32(&ctx, &net, &loss, &opt, NULL, &data, perm, BATCH, 1, 3, &state, work,
                               work_len, &stop, &loss_sum, &correct, &bad) == GD_INTERRUPTED && bad == 1,
          "a raised stop flag must stop before the first batch (bad = %lld)", (long long)bad);
    CHECK(memcmp(first, params, n * sizeof(float)) == 0, "an interrupted call must not update");
    free(X), free(first), free(params), free(grads), free(velocity), free(work);
}

int main(void)
{
    test_gradient_double();
    test_threads_and_errors();
    printf("%d passed, %d failed\n", n_passed, n_failed);
    return n_failed != 0;
}
