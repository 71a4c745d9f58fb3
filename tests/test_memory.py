"""Memory: no growth over many fit/predict cycles, no allocation per batch inside an epoch."""
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import gdcore as gd

CYCLES = textwrap.dedent("""
    import numpy as np, gdcore as gd
    def rss_mb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20
    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 16)).astype(np.float32)
    y = rng.integers(0, 3, 256)
    def cycle(i):
        model = gd.Sequential([gd.Dense(16, 32, "relu"), gd.Dropout(0.1), gd.Dense(32, 3)], seed=i)
        model.fit(X, y, optimizer=gd.optim.Adam(), epochs=1, batch_size=64, verbose=0)
        model.predict(X)
        model.train_step(X[:8], y[:8])
    for i in range(100):
        cycle(i)
    before = rss_mb()
    for i in range(1000):
        cycle(i)
    print(before, rss_mb())
""")


def test_rss_does_not_grow_over_1000_fit_predict_cycles():
    result = subprocess.run([sys.executable, "-c", CYCLES], capture_output=True, text=True,
                            timeout=300, cwd=Path(__file__).parent)
    assert result.returncode == 0, result.stderr
    before, after = map(float, result.stdout.split())
    assert after - before < 8.0, f"RSS grew from {before:.1f} MB to {after:.1f} MB"


def test_an_epoch_allocates_nothing_per_batch():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(4096, 32)).astype(np.float32)
    y = rng.integers(0, 4, 4096)
    model = gd.MLP([32, 64, 4], seed=0)
    opt = gd.optim.SGD(lr=0.01, momentum=0.9)
    model.fit(X, y, optimizer=opt, epochs=1, batch_size=256, verbose=0)  # workspace, state

    def traced_peak(batch_size):
        tracemalloc.start()
        model.fit(X, y, optimizer=opt, epochs=1, batch_size=batch_size, verbose=0)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak

    # 256 batches or 16: Python allocates the same per epoch (the permutation, the history), so
    # nothing scales with the number of batches
    many, few = traced_peak(16), traced_peak(256)
    assert abs(many - few) < 16 * 1024
    assert many < X.nbytes // 4  # far below a copy of the data


def test_predict_with_more_threads_than_cores_sizes_its_workspace_by_the_cores():
    from gdcore._threads import usable_cores
    model = gd.MLP([4, 2000, 2], seed=0)
    X = np.random.default_rng(0).normal(size=(20_000, 4))
    expected = model.predict(X, n_threads=1)
    np.testing.assert_array_equal(model.predict(X, n_threads=4096), expected)
    assert model._forward_work.size <= usable_cores() * 2 * 128 * 2000  # not 4096 threads' worth


def test_a_workspace_beyond_memory_is_a_memory_error_naming_the_cause():
    model = gd.MLP([4, 10**6, 2], seed=0)  # 3 TiB of activations for 300,000 rows
    with pytest.raises(MemoryError, match=r"workspace of .* GiB\) for batches of this many rows: "
                                          r"use a smaller batch_size"):
        model.loss_and_grad(np.zeros((300_000, 4)), np.zeros(300_000, dtype=int),
                            loss="cross_entropy")
