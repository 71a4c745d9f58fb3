/* The C tests' GEMM: a plain row-major loop, C = alpha·op(A)·op(B) + beta·C, so the core is
 * tested without BLAS (ref_sgemm, ref_dgemm). */
#ifndef REFERENCE_GEMM_H
#define REFERENCE_GEMM_H

#include <stdint.h>

/* Row-major reference GEMM: C = alpha·op(A)·op(B) + beta·C. */
#define REFERENCE_GEMM(NAME, T)                                                                  \
    static void NAME(int ta, int tb, int64_t M, int64_t N, int64_t K, T alpha, const T *A,        \
                     int64_t lda, const T *B, int64_t ldb, T beta, T *C, int64_t ldc)            \
    {                                                                                            \
        for (int64_t i = 0; i < M; i++)                                                          \
            for (int64_t j = 0; j < N; j++) {                                                    \
                T acc = 0;                                                                       \
                for (int64_t k = 0; k < K; k++)                                                  \
                    acc += (ta ? A[k * lda + i] : A[i * lda + k]) *                              \
                           (tb ? B[j * ldb + k] : B[k * ldb + j]);                               \
                C[i * ldc + j] = alpha * acc + (beta == 0 ? 0 : beta * C[i * ldc + j]);          \
            }                                                                                    \
    }
REFERENCE_GEMM(ref_sgemm, float)
REFERENCE_GEMM(ref_dgemm, double)

#endif
