"""The peer benchmark suite (gdcore bench --peers): every peer trains the same epoch as gdcore."""
import importlib.util
import re

import numpy as np
import pytest

import gdcore as gd
from gdcore import _peers, bench

SIZES, BATCH_SIZE = bench.SHAPES["small"]
N_SAMPLES = 520  # 8 full batches of 64 and a last one of 8: the ragged batch is exercised too


@pytest.fixture(scope="module")
def epoch_setup():
    X, y = _peers.synthetic_mnist(N_SAMPLES)
    initial = gd.MLP(SIZES, activation="relu", seed=0).get_weights()
    perm = gd.epoch_permutation(N_SAMPLES, 0, 0)
    return X, y, perm, initial


@pytest.fixture(scope="module")
def gdcore_epoch(epoch_setup):
    return _peers.measure("gdcore", *epoch_setup, BATCH_SIZE, threads=1, repeats=1,
                          check_batches=3)


@pytest.mark.parametrize("peer", bench.PEERS)
def test_each_peer_trains_the_same_epoch_as_gdcore(peer, epoch_setup, gdcore_epoch):
    pytest.importorskip(_peers.FRAMEWORKS[peer][1])
    X, y, perm, initial = epoch_setup
    result = _peers.measure(peer, X, y, perm, initial, BATCH_SIZE, threads=1, repeats=1,
                            check_batches=3)
    assert len(result["times"]) == 1 and result["times"][0] > 0
    # Same weights, batches and math: the same loss, and the same trained weights up to float32
    # rounding. Another row order, initialization, loss scaling or momentum rule is far off
    # (the weight difference is then of the order of the update itself, i.e. ~1).
    assert result["loss"] == pytest.approx(gdcore_epoch["loss"], rel=1e-5)
    difference = bench._relative_weight_difference(result["weights"], gdcore_epoch["weights"],
                                                   initial)
    assert difference < 1e-3
    for got, want in zip(result["weights"], gdcore_epoch["weights"]):
        assert got.shape == want.shape and got.dtype == np.float32
    # The setup check: the first 3 batches only (gdcore takes them as pre-permuted rows).
    assert result["check_loss"] == pytest.approx(gdcore_epoch["check_loss"], rel=1e-5)
    assert bench._relative_weight_difference(result["check_weights"],
                                             gdcore_epoch["check_weights"], initial) < 1e-3
    assert bench._relative_weight_difference(result["check_weights"], result["weights"],
                                             initial) > 0.1  # 3 batches are not the epoch


def test_setup_check_passes_a_correct_run_whose_relu_input_lands_on_the_other_side_of_zero():
    """In wide's first batch of the bench's data one second-layer unit's input is 6e-7 (float64),
    and gdcore's float32 sum puts it on the other side of 0 from NumPy's: both runs are right to
    rounding, and the check must pass them (over 10 batches the two part by 3e-2, which flagged
    every peer on wide)."""
    sizes, batch_size = bench.SHAPES["wide"]
    X, y = _peers.synthetic_mnist(60000)
    perm = gd.epoch_permutation(60000, 0, 0)[:_peers.CHECK_BATCHES * batch_size]
    initial = gd.MLP(sizes, activation="relu", seed=0).get_weights()
    runs = {framework: _peers.measure(framework, X, y, perm, initial, batch_size, threads=1,
                                      repeats=1)
            for framework in ("gdcore", "numpy")}
    assert bench._relative_weight_difference(runs["numpy"]["check_weights"],
                                             runs["gdcore"]["check_weights"],
                                             initial) < bench.WEIGHT_RTOL


def test_weight_difference_tells_another_trajectory_apart(epoch_setup, gdcore_epoch):
    X, y, perm, initial = epoch_setup
    reversed_order = _peers.measure("numpy", X, y, perm[::-1].copy(), initial, BATCH_SIZE,
                                    threads=1, repeats=1)
    assert bench._relative_weight_difference(reversed_order["weights"], gdcore_epoch["weights"],
                                             initial) > bench.WEIGHT_RTOL


def test_suite_writes_the_table_and_the_plot(tmp_path, capsys):
    markdown, png = tmp_path / "peers.md", tmp_path / "peers.png"
    rows = bench.main(["--peers", "numpy", "--shapes", "small", "--threads", "1", "--repeats", "1",
                       "--samples", "512", "--markdown", str(markdown), "--plot", str(png)])
    assert [row["framework"] for row in rows] == ["roofline", "gdcore", "numpy"]
    gdcore_row, numpy_row = rows[1], rows[2]
    assert gdcore_row["ratio"] == 1.0 and rows[0]["seconds"] == gdcore_row["roofline"] > 0
    assert gdcore_row["share"] == pytest.approx(gdcore_row["roofline"] / gdcore_row["seconds"])
    assert numpy_row["loss"] == pytest.approx(gdcore_row["loss"], rel=1e-5)
    assert not numpy_row["disagrees"] and len(numpy_row["cpus"]) == 1  # pinned to one core
    expected_flops = 512 * 2 * (2 * 784 * 128 + 3 * 128 * 10)
    assert numpy_row["gflop"] == pytest.approx(expected_flops / 1e9)
    assert numpy_row["gflops"] == pytest.approx(numpy_row["gflop"] / numpy_row["seconds"])

    lines = markdown.read_text().splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header == ["framework", "shape", "threads", "s/epoch", "runs", "time / gdcore",
                      "GEMM GFLOP/s", "share of roofline", "loss after epoch", "Δw, 3 batches",
                      "Δw, epoch", "other load"]
    table_rows = [line for line in lines[2:] if line.startswith("|")]
    assert len(table_rows) == 3
    assert all(len(line.strip("|").split("|")) == len(header) for line in table_rows)
    assert "| NumPy reference | small | 1 (pinned) |" in markdown.read_text()
    if importlib.util.find_spec("matplotlib") is None:
        assert not png.exists() and "needs matplotlib" in capsys.readouterr().err
    else:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_unknown_peer_is_a_clear_error(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--peers", "torch,tensorflow"])
    error = capsys.readouterr().err
    assert "unknown peer(s) ['tensorflow']" in error and "jax_scan" in error and "all" in error


def test_peer_names():
    assert bench.parse_peers("all") == list(bench.PEERS)
    assert bench.parse_peers("jax_scan, numpy,gdcore") == ["numpy", "jax_scan"]
    with pytest.raises(ValueError, match="unknown peer"):
        bench.parse_peers("")


@pytest.mark.parametrize("cores, expected", [(1, [1]), (2, [1, 2]), (16, [1, 16])])
def test_threads_default_to_one_and_every_usable_core(monkeypatch, cores, expected):
    monkeypatch.setattr(bench, "usable_cores", lambda: cores)
    monkeypatch.setattr(bench, "bench_shape", lambda shape, X, y, n_threads, *rest: {
        "shape": shape, "threads": n_threads, "gdcore": 1.0})
    monkeypatch.setattr(bench, "format_table", lambda rows: "table")
    rows = bench.main(["--shapes", "small", "--samples", "64"])
    assert [row["threads"] for row in rows] == expected


def test_missing_peer_is_skipped_with_a_note(monkeypatch, capsys):
    monkeypatch.setattr(bench, "peer_installed", lambda name: name != "torch")
    rows = bench.main(["--peers", "torch", "--shapes", "small", "--threads", "1", "--repeats", "1",
                       "--samples", "256"])
    assert "skipping PyTorch eager" in capsys.readouterr().out
    assert [row["framework"] for row in rows] == ["roofline", "gdcore"]


@pytest.mark.parametrize("double_precision", [False, True])
def test_roofline_counts_every_gemm_of_the_epoch(double_precision):
    from gdcore import _core
    sizes = np.array([7, 5, 3, 2], dtype=np.int64)
    seconds, flops = _core.gemm_epoch_seconds(sizes, 4, 10, double_precision)  # batches 4, 4, 2
    # forward and weight gradient of every layer, input gradient above the first: 2·I·O each
    per_row = 2 * (2 * 7 * 5 + 3 * 5 * 3 + 3 * 3 * 2)
    assert seconds > 0 and flops == 10 * per_row


@pytest.mark.parametrize("sizes, batch_size, n_samples, match", [
    ([784], 64, 10, "sizes"), ([784, 0, 10], 64, 10, "sizes"),
    ([784, 10], 0, 10, "batch_size"), ([784, 10], 64, 0, "n_samples")])
def test_roofline_refuses_shapes_it_cannot_time(sizes, batch_size, n_samples, match):
    from gdcore import _core
    with pytest.raises(ValueError, match=match):  # batch_size 0 would never finish the epoch
        _core.gemm_epoch_seconds(np.array(sizes, dtype=np.int64), batch_size, n_samples)


def test_scaling_notes_give_each_speedup_and_gdcores_share_of_sgemms():
    def row(framework, label, threads, seconds):
        return {"framework": framework, "label": label, "shape": "wide", "threads": threads,
                "seconds": seconds}
    rows = [row("gdcore", "gdcore", 1, 8.0), row("gdcore", "gdcore", 16, 1.0),
            row("torch", "PyTorch eager", 1, 9.0), row("torch", "PyTorch eager", 16, 3.0),
            row("roofline", "GEMM roofline (BLAS only)", 1, 6.0),
            row("roofline", "GEMM roofline (BLAS only)", 16, 0.75)]
    speedups, sgemm = bench._scaling_notes(rows, ["wide"], {1: 80.0, 16: 800.0})
    assert "wide: gdcore 8.00×, PyTorch eager 3.00×, GEMM roofline (BLAS only) 8.00×" in speedups
    assert "(gdcore's 8.00× is 80% of sgemm's)" in speedups  # sgemm went 10× faster
    assert "80 GFLOP/s on 1 thread(s), 800 on 16, 10.00×" in sgemm
    assert bench._scaling_notes(rows[:1] + rows[2:3], ["wide"]) == []  # one thread count only


def test_sgemm_yardstick_measures_a_positive_rate():
    assert _peers.sgemm_gflops(1, n=64, repeats=2) > 0


@pytest.mark.parametrize("args, match", [
    (["--shapes", ","], "--shapes names no shape"),
    (["--threads", "100000"], "--threads must be at most 4096"),
    (["--max-seconds", "nan"], "--max-seconds must be a finite number > 0"),
    (["--max-seconds", "0"], "--max-seconds must be a finite number > 0"),
    (["--plot", "chart.txt"], "--plot writes a PNG"),
    (["--plot", "no/such/folder/chart.png"], "argument --plot: folder .* does not exist"),
    (["--markdown", "no/such/folder/t.md"], "argument --markdown: folder .* does not exist"),
    (["--markdown", "."], "argument --markdown: '.' is a folder"),
])
def test_bad_options_are_refused_before_anything_runs(monkeypatch, capsys, args, match):
    monkeypatch.setattr(bench, "bench_shape", lambda *a, **k: pytest.fail("a benchmark ran"))
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--shapes", "small", "--samples", "64"] + args)
    assert exit_info.value.code == 2
    assert re.search(match, capsys.readouterr().err)


# ------------------------------------------------------------------ other load (stubbed clocks)
class _FakeClock:
    """Stands in for the time module in _peers: the wall clock, this process's CPU time and
    the CPU time of everything else on its CPUs, moved by hand."""
    def __init__(self, own=0.0):
        self.wall, self.own, self.others = 0.0, own, 0.0

    def perf_counter(self):
        return self.wall

    def process_time(self):
        return self.own

    def sleep(self, seconds):
        self.wall += seconds

    def work(self, seconds, others=0.0):
        """``seconds`` of this process on one core while the others take ``others`` CPU s."""
        self.wall += seconds
        self.own += seconds
        self.others += others


def _stub_measurement(monkeypatch, clock, epoch, roofline=(0.0, 0.0), cpus=(0,)):
    """measure("fake", ...) against ``clock``: each timed epoch is clock.work(*epoch), each
    roofline run clock.work(*roofline) then blas_threads' pause; /proc/stat in 10 ms ticks."""
    class FakeTrainer(_peers._Trainer):
        def reset(self):
            pass

        def epoch(self):
            clock.work(*epoch)
            return 2.3

        def weights(self):
            return [w.copy() for w in self.init]

        def roofline(self):
            clock.work(*roofline)
            clock.sleep(_peers.BLAS_SPIN_SECONDS)
            return 0.1, 1e6

    tick = 0.01
    monkeypatch.setitem(_peers.TRAINERS, "fake", FakeTrainer)
    monkeypatch.setattr(_peers, "time", clock)
    monkeypatch.setattr(_peers, "_cpu_busy_seconds",
                        lambda: np.floor((clock.own + clock.others) / tick + 1e-9) * tick)
    monkeypatch.setattr(_peers, "_own_cpus", lambda: set(cpus), raising=False)
    monkeypatch.setattr(_peers, "_clock_tick", lambda: tick, raising=False)
    X, y = np.zeros((20, 4), np.float32), np.zeros(20, np.int64)
    return X, y, np.arange(20), [np.zeros((4, 3), np.float32), np.zeros(3, np.float32)]


def test_other_load_counts_the_timed_epochs_only(monkeypatch):
    """A process that gets the core only while it is idle (a nice'd one, here during the pause
    after each roofline run) never met the timed epochs: one window from the first epoch to the
    last counted it (0.46 cores here), the timed epochs alone see what they shared (0.1)."""
    clock = _FakeClock()
    setup = _stub_measurement(monkeypatch, clock, epoch=(0.5, 0.05), roofline=(0.2, 0.5))
    result = _peers.measure("fake", *setup, batch_size=4, threads=1, repeats=3, roofline=True)
    assert result["other_load"] == pytest.approx(0.1, abs=0.021)  # a tick per epoch: 0.02


@pytest.mark.parametrize("own, epoch, cpus, expected", [
    # a 0.6 ms epoch (after the warm-up's) across a tick: /proc/stat moved 10 ms, which read
    # 15.7 busy cores on one; unknown
    (0.0093, (0.0006, 0.0), (0,), None),
    # 10 ms epochs on two cores: a tick per core could be 2 cores of error: unknown
    (0.0, (0.01, 0.0), (0, 1), None),
    # more busy than the CPUs it may run on (ticks land where they land): at most its own
    (0.0, (1.0, 3.0), (0,), 1.0),
    (0.0, (1.0, 0.5), (0, 1), 0.5),
    (0.0, (1.0, 0.0), (0,), 0.0),
])
def test_other_load_stays_within_the_pinned_cores_and_the_tick_resolution(monkeypatch, own, epoch,
                                                                         cpus, expected):
    clock = _FakeClock(own)
    setup = _stub_measurement(monkeypatch, clock, epoch=epoch, cpus=cpus)
    result = _peers.measure("fake", *setup, batch_size=4, threads=1, repeats=1)
    assert result["other_load"] == (None if expected is None else pytest.approx(expected, abs=0.011))


def test_the_table_says_why_other_load_is_unknown():
    row = {"framework": "gdcore", "label": "gdcore", "shape": "small", "threads": 1, "all_cores": False,
           "pinned": True, "seconds": 0.01, "runs": 1, "capped": False, "ratio": 1.0, "gflops": 1.0,
           "share": 0.9, "loss": 2.3, "other_load": None, "version": "", "attempts": 1}
    assert bench.format_peer_table([row], header=False).endswith("| – |")
    notes = " ".join(bench.suite_notes([row], ["small"], 1, 64, 120, [], []))
    assert "1 measurement(s) have no figure" in notes and "not the roofline runs" in notes
    assert "No measurement" not in notes  # with no figure, nothing to say it was quiet


# ---------------------------------------------------------------- bench_overhead: one thread
def test_overhead_bench_times_the_10000_row_predict_and_numpy_on_one_thread(monkeypatch):
    """Its table says one thread: predict's default (n_threads=None) took every core for 10,000
    rows, and NumPy's matmul chain ran on OpenBLAS's default thread count."""
    from pathlib import Path
    from threadpoolctl import threadpool_info, threadpool_limits
    path = Path(__file__).resolve().parents[1] / "benches" / "bench_overhead.py"
    spec = importlib.util.spec_from_file_location("bench_overhead", path)
    overhead = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(overhead)

    blas_threads_at_timing = []

    def per_call_us(fn, number):  # one call instead of the timeit runs, and the BLAS threads
        blas_threads_at_timing.append({info["num_threads"] for info in threadpool_info()
                                       if info["user_api"] == "blas"})
        fn()
        return 1.0

    predict_threads, predict = [], gd.MLP.predict

    def recording_predict(self, X, **kwargs):
        if len(X) == 10_000:
            predict_threads.append(kwargs.get("n_threads"))
        return predict(self, X, **kwargs)

    monkeypatch.setattr(overhead, "per_call_us", per_call_us)
    monkeypatch.setattr(gd.MLP, "predict", recording_predict)
    with threadpool_limits(2, user_api="blas"):  # OpenBLAS's default on a multi-core machine
        overhead.predict_figures(1)
    assert predict_threads == [1]
    assert blas_threads_at_timing[-2:] == [{1}, {1}]  # the 10,000-row predict, NumPy's chain


# ------------------------------------------------------------------------------------ the chart
def _chart(monkeypatch, rows):
    """plot_rows(rows) into a throwaway PNG; the matplotlib Figure it drew, drawn."""
    pytest.importorskip("matplotlib")
    import tempfile
    from gdcore import plot
    figures, new_figure = [], plot._new_figure
    monkeypatch.setattr(plot, "_new_figure", lambda *a, **k: figures.append(new_figure(*a, **k))
                        or figures[-1])
    with tempfile.TemporaryDirectory() as folder:
        bench.plot_rows(rows, f"{folder}/chart.png")
    figures[0].canvas.draw()
    return figures[0]


def test_chart_legend_fits_a_single_shape(monkeypatch):
    """One panel is 5.4 in wide: a 4-column legend of every framework ran off both sides."""
    rows = [dict(framework=f, label=_peers.FRAMEWORKS[f][0], shape="small", threads=1,
                 all_cores=False, pinned=True, samples=2048, seconds=0.01 * (k + 1), ratio=k + 1.0)
            for k, f in enumerate(["gdcore", *bench.PEERS])]
    rows.append(dict(rows[0], framework="roofline", label="GEMM roofline (BLAS only)",
                     seconds=0.009, ratio=0.9))
    figure = _chart(monkeypatch, rows)
    renderer = figure.canvas.get_renderer()
    (legend,) = figure.legends
    assert len(legend.get_texts()) == 7
    box = legend.get_window_extent(renderer)
    assert 0 <= box.x0 and box.x1 <= figure.bbox.width and 0 <= box.y0
    for ax in figure.axes:  # below the panels and their tick labels, not over them
        assert ax.get_tightbbox(renderer).y0 >= box.y1


def test_default_mode_chart_does_not_call_its_threads_pinned(monkeypatch):
    """gdcore bench without --peers runs in one process on every core: nothing is pinned."""
    rows = bench._default_rows_for_plot(
        [{"shape": "small", "threads": 1, "gdcore": 0.3, "numpy": 0.45, "roofline": 0.28}], 64)
    assert all("pinned" not in bench._threads_label(row) for row in rows)
    figure = _chart(monkeypatch, rows)
    ticks = [label.get_text() for label in figure.axes[0].get_xticklabels()]
    assert ticks == ["1 thread"]


# ------------------------------------------------------------------------------- JAX's threads
def test_jax_single_thread_settings_are_real_xla_flags_and_the_notes_credit_the_pin():
    """intra_op_parallelism_threads=1 is no XLA flag, and a bare word in XLA_FLAGS silently
    drops the flags after it; --xla_cpu_multi_thread_eigen=false does not hold JAX to one
    thread either: the affinity pin does, and the notes must say so."""
    flags = _peers.thread_environment(1, "jax")["XLA_FLAGS"].split()
    assert flags and all(flag.startswith("--") for flag in flags)
    assert "XLA_FLAGS" not in _peers.thread_environment(2, "jax")  # all cores: JAX's defaults
    notes = " ".join(bench.suite_notes([], ["small"], 1, 64, 120, [], []))
    assert "intra_op_parallelism_threads" not in notes
    assert all(flag in notes for flag in flags)
    assert "pinned to one core (sched_setaffinity), which holds every framework to it" in notes


def test_default_threads_fit_the_cpus_peers_are_pinned_to_under_omp_proc_bind():
    """Under OMP_PROC_BIND the default --threads counted the process's CPUs while the peers'
    pinning read the main thread's mask (one CPU once libgomp bound it): --peers refused its
    own default."""
    import os
    import subprocess
    import sys
    code = ("from gdcore import bench; threads = bench._default_threads().split(','); "
            "cpus = bench._usable_cpus(); print(cpus is None or max(map(int, threads)) <= len(cpus))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "OMP_PROC_BIND": "true"}, timeout=120,
                            cwd=os.path.dirname(__file__))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
