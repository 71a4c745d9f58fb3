"""Epoch benchmark: gdcore against the pure-NumPy reference trainer and the BLAS roofline.

Both train the same model (same initial weights, same batches in the same order, the same SGD
with Nesterov momentum and softmax cross-entropy) on MNIST-shaped synthetic data, one epoch per
run; the table gives the median seconds per epoch over the runs. The roofline is the same
epoch's GEMM calls alone, full-batch BLAS calls with the same thread count, timed in the same
process (gdcore._core.gemm_epoch_seconds): no implementation of the epoch can beat it by much.

Run it with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset where the machine sets them
(``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE gdcore bench``): they slow OpenBLAS here.
"""
import argparse
import os
import platform
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from . import _core
from .models import MLP, epoch_permutation
from .optim import SGD
from .reference import ReferenceMLP

#: name → (layer sizes, batch size)
SHAPES = {
    "small": ([784, 128, 10], 64),
    "wide": ([784, 512, 512, 10], 128),
    "wide-b1024": ([784, 512, 512, 10], 1024),
}
LR, MOMENTUM = 0.01, 0.9


def synthetic_mnist(n_samples, seed=0):
    """MNIST-shaped data: 784 features in [0, 1), labels 0..9 (float32 X, int64 y)."""
    rng = np.random.default_rng(seed)
    return rng.random((n_samples, 784), dtype=np.float32), rng.integers(0, 10, n_samples)


def _median_seconds(run, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_shape(name, X, y, threads, repeats, with_numpy=True):
    """Median seconds per epoch of gdcore, the NumPy reference and the GEMM roofline."""
    sizes, batch_size = SHAPES[name]
    n_samples = X.shape[0]
    model = MLP(sizes, activation="relu", seed=0)
    reference = ReferenceMLP(model.get_weights(), [layer.activation for layer in model.layers])
    optimizer = SGD(lr=LR, momentum=MOMENTUM, nesterov=True)
    perm = epoch_permutation(n_samples, 0, 0)
    row = {"shape": name, "threads": threads}

    row["gdcore"] = _median_seconds(lambda: model.fit(
        X, y, optimizer=optimizer, epochs=1, batch_size=batch_size, seed=0, n_threads=threads,
        verbose=0), repeats)
    with threadpool_limits(threads, user_api="blas"):
        if with_numpy:
            row["numpy"] = _median_seconds(lambda: reference.train_epoch(
                X, y, perm, batch_size, "cross_entropy", LR, momentum=MOMENTUM, nesterov=True),
                repeats)
        size_array = np.array(sizes, dtype=np.int64)
        roofline = [_core.gemm_epoch_seconds(size_array, batch_size, n_samples)
                    for _ in range(repeats)]
    row["roofline"] = statistics.median(seconds for seconds, _ in roofline)
    row["gflop"] = roofline[0][1] / 1e9
    return row


def format_table(rows):
    """Markdown table of benchmark rows."""
    lines = ["| shape | threads | gdcore s/epoch | NumPy s/epoch | speedup vs NumPy "
             "| gdcore GFLOP/s | roofline s/epoch | share of roofline |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        numpy_s = row.get("numpy")
        lines.append(
            f"| {row['shape']} | {row['threads']} | {row['gdcore']:.3f} | "
            + (f"{numpy_s:.3f} | {numpy_s / row['gdcore']:.2f}× | " if numpy_s else "– | – | ")
            + f"{row['gflop'] / row['gdcore']:.1f} | {row['roofline']:.3f} | "
            f"{100 * row['roofline'] / row['gdcore']:.0f}% |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="gdcore bench", description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="small,wide",
                        help=f"comma-separated, from {', '.join(SHAPES)} (default: small,wide)")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts (default: 1,2)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement; the median is kept")
    parser.add_argument("--samples", type=int, default=60000, help="rows per epoch (default 60000)")
    parser.add_argument("--no-numpy", action="store_true", help="skip the NumPy reference")
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args(argv)
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown:
        parser.error(f"unknown shape(s) {unknown}; choose from {list(SHAPES)}")
    threads = [int(t) for t in args.threads.split(",")]
    if args.repeats < 1 or args.samples < 1 or any(t < 1 for t in threads):
        parser.error("--repeats, --samples and --threads must be positive")

    X, y = synthetic_mnist(args.samples)
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if var in os.environ:
            print(f"note: {var}={os.environ[var]} is set; it can slow OpenBLAS (see --help)")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"{args.samples} samples per epoch, float32, SGD Nesterov, cross-entropy; "
          f"median of {args.repeats}")
    rows = []
    for shape in shapes:
        for n_threads in threads:
            rows.append(bench_shape(shape, X, y, n_threads, args.repeats, not args.no_numpy))
            print(format_table(rows[-1:]).splitlines()[-1], flush=True)
    table = format_table(rows)
    print()
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as handle:
            handle.write(table + "\n")
    return rows


if __name__ == "__main__":
    main()
