"""The benchmark-only free-order weight gradients (_core.train(shard_work=...), timed by
benches/bench_reduction.py against the deterministic default): same training up to rounding,
and a clear error for a short buffer."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

import gdcore as gd
from gdcore import _core

RNG = np.random.default_rng(4)
X = RNG.random((700, 30))
Y = RNG.integers(0, 5, 700)
BENCH = Path(__file__).resolve().parents[1] / "benches" / "bench_reduction.py"


def fit(n_threads, shard_work=None, monkeypatch=None, **fit_args):
    model = gd.MLP([30, 200, 100, 5], seed=2, dtype=np.float64)
    if shard_work is not None:
        train = _core.train
        buffer = np.empty(shard_work(model), dtype=np.float64)
        monkeypatch.setattr(_core, "train",
                            lambda *args, **kwargs: train(*args, shard_work=buffer, **kwargs))
    history = model.fit(X, Y, optimizer=gd.optim.SGD(lr=0.1, momentum=0.9), epochs=2,
                        batch_size=64, seed=1, n_threads=n_threads, verbose=0, **fit_args)
    return history.history["loss"], np.concatenate(
        [np.ravel(array) for layer in model.get_weights() for array in layer])


@pytest.mark.parametrize("n_threads", [1, 2, 3])
@pytest.mark.parametrize("penalty", [{}, {"l1": 1e-3, "l2": 1e-2}])
def test_free_order_trains_like_the_deterministic_path(n_threads, penalty, monkeypatch):
    losses, weights = fit(n_threads, **penalty)
    free_losses, free_weights = fit(
        n_threads, lambda model: n_threads * model._network.shard_work_len, monkeypatch,
        **penalty)
    # float64: only the order of the batch sums differs, ~1e-16 relative per step
    np.testing.assert_allclose(free_losses, losses, rtol=1e-12)
    np.testing.assert_allclose(free_weights, weights, rtol=0, atol=1e-10)
    assert not np.array_equal(weights, np.zeros_like(weights))


def test_short_shard_work_is_refused_before_anything_runs(monkeypatch):
    with pytest.raises(ValueError, match=r"shard_work needs n_threads × shard_work_len = \d+"):
        fit(2, lambda model: 2 * model._network.shard_work_len - 1, monkeypatch)


def test_bench_prints_both_ways_and_writes_markdown(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_reduction", BENCH)
    bench_reduction = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_reduction)
    out = tmp_path / "reduction.md"
    deterministic_train = _core.train
    bench_reduction.main(["--shapes", "small", "--threads", "1,2", "--repeats", "1",
                          "--samples", "300", "--markdown", str(out)])
    table = capsys.readouterr().out
    assert table.count("| small |") == 2 and "cost of determinism" in table
    assert out.read_text().strip() == table.strip()
    assert _core.train is deterministic_train  # the switch is undone after each timed epoch
    with pytest.raises(SystemExit):
        bench_reduction.main(["--shapes", "tiny"])
