"""What a pipeline feels per call: train_step and predict against the C time they wrap.

- train_step on a 16-16-2 relu model, batches of 32 rows (cross-entropy, SGD with momentum):
  microseconds per call, next to the C step alone (the same step run many times inside one C
  call, gd_train_batches over copies of the batch; it includes a 2 KB row gather).
- predict on one row of a 64-128-10 model: microseconds per call, next to the C forward alone
  (gdcore._core.forward with the buffers ready).
- predict on 10,000 rows of the same model against NumPy's matmul chain
  (relu(X·W0 + b0)·W1 + b1), both on one thread: predict(n_threads=1) and NumPy's BLAS held to
  one thread by threadpoolctl.

Every call runs on one thread (train_step with n_threads=1; predict of one row runs on one
whatever n_threads says).

Each figure is the median over --repeats rounds of the best of 5 timeit runs; run it on a quiet
machine with ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benches/bench_overhead.py``.
"""
import argparse
import statistics
import timeit

import numpy as np
from threadpoolctl import threadpool_limits

import gdcore as gd
from gdcore import _core


def per_call_us(fn, number):
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def train_step_figures(number):
    rng = np.random.default_rng(0)
    model = gd.MLP([16, 16, 2], seed=0)
    X = rng.standard_normal((32, 16)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    opt = gd.optim.SGD(lr=0.01, momentum=0.9)
    model.train_step(X, y, optimizer=opt, n_threads=1)  # binds the fast path
    total = per_call_us(lambda: model.train_step(X, y, optimizer=opt, n_threads=1), number)

    copies = 2000
    X_rep, y_rep = np.tile(X, (copies, 1)), np.tile(y, copies)
    perm = np.arange(len(X_rep), dtype=np.int64)
    loss = gd.losses.get("cross_entropy").spec()
    work = np.empty(model._network.train_workspace_len(32, False), dtype=np.float32)
    state = opt._state_for(model)

    def c_steps():
        _core.train(model._network, 1, loss, opt.spec(), None, model._params, model._grads,
                    opt.slots(model), state["step"], X_rep, None, y_rep, None, perm, 32, 0,
                    copies, work, False, 0)
    c_time = per_call_us(c_steps, 3) / copies
    return total, c_time


def predict_figures(number):
    rng = np.random.default_rng(0)
    model = gd.MLP([64, 128, 10], seed=0)
    x = rng.standard_normal((1, 64)).astype(np.float32)
    model.predict(x)
    total = per_call_us(lambda: model.predict(x), number)
    out = np.empty((1, 10), np.float32)
    work = model._forward_work
    c_time = per_call_us(lambda: _core.forward(model._network, 1, model._params, x, out, work),
                         number)

    X = rng.standard_normal((10_000, 64)).astype(np.float32)
    (W0, b0), (W1, b1) = [(layer.W, layer.b) for layer in model._dense]
    # One thread on both sides, as the table says: predict's default (n_threads=None) spreads
    # 10,000 rows over every core, and NumPy's matmul runs on OpenBLAS's default thread count.
    with threadpool_limits(1, user_api="blas"):
        many = per_call_us(lambda: model.predict(X, n_threads=1), 50)
        numpy_chain = per_call_us(lambda: np.maximum(X @ W0 + b0, 0) @ W1 + b1, 50)
    return total, c_time, many, numpy_chain


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="rounds; the median is kept")
    parser.add_argument("--number", type=int, default=20000, help="calls per timeit run")
    args = parser.parse_args(argv)
    rounds = [train_step_figures(args.number) + predict_figures(args.number)
              for _ in range(args.repeats)]
    step, step_c, one, one_c, many, chain = (statistics.median(column) for column in zip(*rounds))
    print(f"median of {args.repeats} rounds, every call on 1 thread (NumPy: 1 BLAS thread)")
    print("| call | per call | C part | above C |")
    print("|---|---|---|---|")
    print(f"| train_step, 16-16-2, 32 rows | {step:.2f} µs | {step_c:.2f} µs | {step - step_c:.2f} µs |")
    print(f"| predict, 64-128-10, 1 row | {one:.2f} µs | {one_c:.2f} µs | {one - one_c:.2f} µs |")
    print(f"| predict, 64-128-10, 10,000 rows, 1 thread | {many / 1000:.2f} ms | NumPy matmul "
          f"chain, 1 BLAS thread {chain / 1000:.2f} ms | {chain / many:.2f}× faster |")


if __name__ == "__main__":
    main()
