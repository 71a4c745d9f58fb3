"""What determinism costs: gdcore's epoch against a free-order reduction of the weight gradients.

gdcore computes each tile of a weight gradient as one GEMM over the whole batch (csrc/gd_train.c,
weight_tiling), so no sum depends on the thread count and there is no reduction to put in order:
the same seed gives the same bits with any number of threads. The usual data-parallel
alternative gives each thread a shard of the batch rows, lets it compute a partial dW, and adds
the partials in whatever order the threads finish (a free-order reduction; the bits then change
with timing and thread count). The C core has that variant behind a benchmark-only argument,
``_core.train(shard_work=...)``; this script times ``fit`` both ways, alternating the two in one
process, and prints the median seconds per epoch and their ratio. With one thread there is one
shard, so nothing is reduced: that row compares the default's row blocks of dW with one GEMM for
the whole of each dW.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benches/bench_reduction.py \\
        [--shapes small,wide] [--threads 2] [--repeats 7] [--markdown out.md]
"""
import argparse
import contextlib
import os
import statistics
import time

import numpy as np

from gdcore import _core
from gdcore._peers import synthetic_mnist
from gdcore.bench import LR, MOMENTUM, SHAPES
from gdcore.models import MLP
from gdcore.optim import SGD


@contextlib.contextmanager
def free_order_reduction(model, n_threads):
    """Run fit's epochs with the free-order weight gradients: the fit path is unchanged but for
    the one argument that switches the core's dW phase, added here to every _core.train call."""
    shard_work = np.empty(n_threads * model._network.shard_work_len, dtype=model.dtype)
    deterministic_train = _core.train

    def train(*args, **kwargs):
        return deterministic_train(*args, shard_work=shard_work, **kwargs)

    _core.train = train
    try:
        yield
    finally:
        _core.train = deterministic_train


def time_epoch(model, optimizer, X, y, batch_size, n_threads, free_order):
    mode = free_order_reduction(model, n_threads) if free_order else contextlib.nullcontext()
    with mode:
        start = time.perf_counter()
        model.fit(X, y, optimizer=optimizer, epochs=1, batch_size=batch_size, seed=0,
                  n_threads=n_threads, verbose=0)
        return time.perf_counter() - start


def measure(shape, X, y, n_threads, repeats):
    """Median epoch seconds of both ways, runs alternating (which goes first alternates too, so
    a slow spell of the machine falls on both), and the largest weight difference after each
    way's first epoch from the same start."""
    sizes, batch_size = SHAPES[shape]
    models = {mode: MLP(sizes, activation="relu", seed=0) for mode in ("deterministic", "free")}
    optimizers = {mode: SGD(lr=LR, momentum=MOMENTUM, nesterov=True) for mode in models}
    times = {mode: [] for mode in models}
    first_weights = {}
    for run in range(repeats):
        order = ("deterministic", "free") if run % 2 == 0 else ("free", "deterministic")
        for mode in order:
            times[mode].append(time_epoch(models[mode], optimizers[mode], X, y, batch_size,
                                          n_threads, mode == "free"))
            if run == 0:
                first_weights[mode] = np.concatenate(
                    [np.ravel(array) for layer in models[mode].get_weights() for array in layer])
    deterministic = statistics.median(times["deterministic"])
    free = statistics.median(times["free"])
    difference = np.abs(first_weights["deterministic"] - first_weights["free"]).max()
    return {"shape": shape, "threads": n_threads, "deterministic": deterministic, "free": free,
            "cost": deterministic / free - 1, "max_dw": float(difference)}


def format_table(rows, repeats):
    lines = [f"| shape | threads | deterministic (s/epoch) | free-order (s/epoch) | "
             f"cost of determinism | max abs Δw after 1 epoch |",
             "|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['shape']} | {row['threads']} | {row['deterministic']:.3f} | "
                     f"{row['free']:.3f} | {100 * row['cost']:+.1f}% | {row['max_dw']:.1e} |")
    lines.append("")
    lines.append(f"Medians of {repeats} epochs each, alternating; cost = deterministic / "
                 f"free-order − 1 (negative: determinism is faster).")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="small,wide")
    parser.add_argument("--threads", default=str(len(os.sched_getaffinity(0))),
                        help="comma-separated thread counts (default: all usable cores)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--samples", type=int, default=60_000)
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args(argv)
    shapes = args.shapes.split(",")
    unknown = [shape for shape in shapes if shape not in SHAPES]
    if unknown:
        parser.error(f"unknown shape(s) {unknown}; choose from {sorted(SHAPES)}")
    threads = [int(count) for count in args.threads.split(",")]
    if args.repeats < 1 or min(threads) < 1:
        parser.error("--repeats and --threads must be >= 1")

    X, y = synthetic_mnist(args.samples)
    rows = [measure(shape, X, y, n_threads, args.repeats)
            for shape in shapes for n_threads in threads]
    table = format_table(rows, args.repeats)
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as out:
            out.write(table + "\n")


if __name__ == "__main__":
    main()
