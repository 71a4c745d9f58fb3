"""The command line: gdcore train (the main job), gdcore bench, gdcore config."""
import gzip
import io
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gdcore
from gdcore import cli


def run_cli(*args, timeout=300):
    # Not from the repository root: there `python -m gdcore` would import the source folder,
    # which has no compiled core unless the install is editable.
    return subprocess.run([sys.executable, "-m", "gdcore", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=Path(__file__).parent)


def test_train_on_bundled_digits_reports_accuracy_and_epoch_time():
    result = run_cli("train", "--epochs", "15", "--threads", "1")
    assert result.returncode == 0, result.stderr
    accuracy = float(re.search(r"test accuracy ([0-9.]+)%", result.stdout).group(1))
    assert accuracy >= 93.0
    assert re.search(r"[0-9.]+ s per epoch", result.stdout)
    assert "Epoch 15/15" in result.stderr  # progress, one line per epoch when not on a terminal


def test_train_on_npz_regression(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    np.savez(tmp_path / "data.npz", X=X, y=y)
    result = run_cli("train", "--data", str(tmp_path / "data.npz"), "--loss", "mse", "--epochs", "40",
                     "--hidden", "16", "--activation", "tanh", "--lr", "0.01", "--dtype", "float64")
    assert result.returncode == 0, result.stderr
    test_loss = float(re.search(r"test loss ([0-9.]+)", result.stdout).group(1))
    assert test_loss < 0.1 * np.var(y)
    assert "accuracy" not in result.stdout


def _write_idx(path, array, magic):
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def test_train_on_mnist_folder_uses_its_test_files(tmp_path):
    rng = np.random.default_rng(1)
    for kind, n in (("train", 200), ("t10k", 50)):
        labels = rng.integers(0, 10, n)
        images = np.zeros((n, 4, 4), dtype=np.uint8)
        images.reshape(n, 16)[np.arange(n), labels] = 255  # class k lights pixel k
        _write_idx(tmp_path / f"{kind}-images-idx3-ubyte.gz", images, 0x803)
        _write_idx(tmp_path / f"{kind}-labels-idx1-ubyte.gz", labels, 0x801)
    result = run_cli("train", "--data", str(tmp_path), "--epochs", "30", "--hidden", "16")
    assert result.returncode == 0, result.stderr
    assert "train 200, test 50" in result.stdout
    assert float(re.search(r"test accuracy ([0-9.]+)%", result.stdout).group(1)) == 100.0


def test_train_reports_bad_input_without_a_traceback(tmp_path):
    result = run_cli("train", "--epochs", "0")
    assert result.returncode == 2
    assert "epochs" in result.stderr and "Traceback" not in result.stderr
    result = run_cli("train", "--data", str(tmp_path / "missing.npz"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    result = run_cli("train", "--hidden", "0")
    assert result.returncode == 2 and "sizes must be positive" in result.stderr


def _save_npz(path, X, y):
    np.savez(path, X=X, y=y)
    return str(path)


def _two_class_npz(tmp_path, n=40, name="data.npz"):
    X = np.random.default_rng(0).normal(size=(n, 3))
    return _save_npz(tmp_path / name, X, (X[:, 0] > 0).astype(np.int64))


def train_error(capsys, *argv):
    """(exit status, stderr) of ``gdcore train`` run in-process: argparse errors exit with
    SystemExit(2), errors found in the data return 2; any other exception fails the test."""
    try:
        status = cli.main(["train", "--epochs", "1", "--threads", "1", *argv])
    except SystemExit as exc:
        status = exc.code
    captured = capsys.readouterr()
    return status, captured.err, captured.out


@pytest.mark.parametrize("loss", ["log_loss", "CROSS_ENTROPY", "multi_margin", "Hinge"])
def test_train_resolves_class_index_loss_aliases(tmp_path, capsys, loss):
    # The model gets one output per class, not one output as for a regression loss.
    status, err, out = train_error(capsys, "--data", _two_class_npz(tmp_path), "--loss", loss,
                                   "--hidden", "8")
    assert status == 0, err
    assert "MLP [3, 8, 2]" in out and "test accuracy" in out


def test_train_refuses_an_unknown_loss_naming_the_option(capsys):
    status, err, _ = train_error(capsys, "--loss", "nope")
    assert status == 2 and "--loss must be one of" in err and "log_loss" in err


@pytest.mark.parametrize("X, y, message", [
    (np.zeros(40), np.zeros(40, np.int64), "--data: X must be 2-D of shape (n_samples, n_features)"),
    (np.zeros((40, 2, 2)), np.zeros(40, np.int64), "--data: X must be 2-D"),
    (np.zeros((40, 0)), np.zeros(40, np.int64), "--data: X is empty"),
    (np.zeros((40, 3)), np.array(["a", "b"] * 20), "--data: X and y must be numeric arrays"),
    (np.zeros((1, 3)), np.zeros(1, np.int64), "--data has 1 sample(s); at least 2 are needed"),
])
def test_train_refuses_malformed_data(tmp_path, capsys, X, y, message):
    status, err, _ = train_error(capsys, "--data", _save_npz(tmp_path / "bad.npz", X, y))
    assert status == 2 and message in err


@pytest.mark.parametrize("bad_label", [-1, 1000, 2.5, np.nan])
def test_train_refuses_class_labels_outside_zero_to_n_samples(tmp_path, capsys, bad_label):
    # Before the fix, 1000 built a 1001-unit output layer (and 10**9 asked for 30 GiB).
    y = np.zeros(40)
    y[:20] = 1
    y[7] = bad_label
    status, err, _ = train_error(capsys, "--data", _save_npz(tmp_path / "bad.npz", np.ones((40, 3)), y))
    assert status == 2
    assert "y must hold class labels that are integers in [0, 32) for cross_entropy" in err
    assert f"got {float(bad_label)!r}" in err


def _limit_memory():
    import resource  # a regression must fail with MemoryError, not take the machine's memory
    resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))


def test_train_refuses_a_huge_class_label_without_allocating(tmp_path):
    X = np.ones((40, 3))
    y = np.arange(40) % 2
    y[0] = 10**9
    result = subprocess.run([sys.executable, "-m", "gdcore", "train", "--epochs", "1",
                             "--data", _save_npz(tmp_path / "huge.npz", X, y)],
                            capture_output=True, text=True, timeout=120, cwd=Path(__file__).parent,
                            preexec_fn=_limit_memory)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "got 1000000000" in result.stderr


@pytest.mark.parametrize("fraction", ["1", "1.5", "nan", "-0.5", "0", "x"])
def test_train_refuses_a_test_fraction_outside_zero_one(capsys, fraction):
    status, err, _ = train_error(capsys, "--test-fraction", fraction)
    assert status == 2 and f"argument --test-fraction: must be in (0, 1), got {fraction!r}" in err


def test_train_refuses_a_split_that_leaves_no_training_rows(tmp_path, capsys):
    status, err, _ = train_error(capsys, "--data", _two_class_npz(tmp_path), "--test-fraction", "0.99")
    assert status == 2 and "--test-fraction 0.99 leaves no rows for training (40 of 40" in err


@pytest.mark.parametrize("seed", ["-1", "1.5"])
def test_train_refuses_a_negative_seed_naming_the_option(capsys, seed):
    status, err, _ = train_error(capsys, "--seed", seed)
    assert status == 2 and f"argument --seed: expected a non-negative int, got {seed!r}" in err


def test_train_checks_the_plot_folder_before_training(tmp_path, capsys):
    data = _two_class_npz(tmp_path)
    status, err, out = train_error(capsys, "--data", data, "--plot", str(tmp_path / "missing" / "r.png"))
    assert status == 2 and "argument --plot: folder" in err and "does not exist" in err
    assert "Epoch" not in err and "data:" not in out  # refused before loading and training
    status, err, _ = train_error(capsys, "--data", data, "--plot", str(tmp_path))
    assert status == 2 and "is a folder; expected a file name" in err


def test_bench_prints_a_table_against_numpy_and_the_roofline(tmp_path):
    out = tmp_path / "table.md"
    rows = cli_bench(["--shapes", "small", "--threads", "1", "--repeats", "1", "--samples", "640",
                      "--markdown", str(out)])
    assert len(rows) == 1 and rows[0]["shape"] == "small"
    assert rows[0]["gdcore"] > 0 and rows[0]["numpy"] > 0 and rows[0]["roofline"] > 0
    # 640 rows, batch 64, 784-128-10: forward 2·B·I·O per layer, dW per layer, dX above layer 0
    expected_flops = 640 * 2 * (2 * 784 * 128 + 3 * 128 * 10)
    assert rows[0]["gflop"] == pytest.approx(expected_flops / 1e9)
    table = out.read_text()
    assert "| small | 1 |" in table and "share of roofline" in table


def cli_bench(argv):
    from gdcore.bench import main
    return main(argv)


def test_bench_rejects_unknown_shapes():
    with pytest.raises(SystemExit):
        cli_bench(["--shapes", "huge"])


def test_show_config_names_versions_openmp_and_threads(capsys):
    gdcore.show_config()
    text = capsys.readouterr().out
    assert f"gdcore {gdcore.__version__}" in text
    assert f"numpy {np.__version__}" in text
    assert re.search(r"openmp: (on|OFF)", text)
    assert re.search(r"fit\(\) threads \(n_threads=None\): [1-9]", text)
    assert "openblas" in text.lower() or "blas" in text


def test_show_config_writes_to_a_stream_and_refuses_a_file_name():
    out = io.StringIO()
    gdcore.show_config(file=out)
    assert out.getvalue().startswith(f"gdcore {gdcore.__version__}\n")
    with pytest.raises(TypeError, match="file must be a writable text stream .* got 'x.txt'"):
        gdcore.show_config(file="x.txt")


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return next((line.split(":")[1].split() for line in cpuinfo
                         if line.startswith("flags")), [])
    except OSError:
        return []


def test_config_names_the_clone_of_the_elementwise_loops_this_cpu_runs(capsys):
    isa = gdcore._core.vector_isa()
    assert isa in ("avx512f", "avx2", "baseline", "baseline (built without clones)")
    gdcore.show_config()
    assert f"element-wise loops: {isa}\n" in capsys.readouterr().out
    if isa != "baseline (built without clones)":  # the resolver's choice follows the CPU
        flags = _cpu_flags()
        expected = "avx512f" if "avx512f" in flags else "avx2" if "avx2" in flags else "baseline"
        assert not flags or isa == expected


def test_config_command_matches_show_config():
    result = run_cli("config")
    assert result.returncode == 0 and "fit() threads" in result.stdout


def test_parser_has_the_documented_flags():
    args = cli.build_parser().parse_args(
        ["train", "--hidden", "32,16", "--activation", "tanh", "--loss", "hinge", "--lr", "0.2",
         "--momentum", "0.5", "--no-nesterov", "--weight-decay", "0.001", "--epochs", "3",
         "--batch-size", "8", "--threads", "2", "--seed", "4", "--data", "x.npz"])
    assert args.hidden == [32, 16] and args.nesterov is False and args.threads == 2
    assert args.batch_size == 8 and args.weight_decay == 0.001 and args.data == "x.npz"


def test_train_writes_the_plot(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "report.png"
    result = run_cli("train", "--epochs", "3", "--plot", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20000
    assert f"plot: {out}" in result.stdout


def test_train_reports_a_diverging_run_as_a_one_line_error(capsys):
    # DivergenceError is a FloatingPointError, which main did not catch: a traceback, exit 1.
    status, err, _ = train_error(capsys, "--lr", "1e30")
    assert status == 2 and "Traceback" not in err
    assert "gdcore train: error: fit: the loss or a gradient became NaN or infinite" in err


def _raise(exc):
    def raiser(*args, **kwargs):
        raise exc
    return raiser


def _no_run(monkeypatch):
    """Make a benchmark or a training run fail the test: the options must be refused first."""
    from gdcore import bench
    monkeypatch.setattr(bench, "synthetic_mnist", lambda *a: pytest.fail("a benchmark ran"))
    monkeypatch.setattr(cli, "_load_data", lambda *a: pytest.fail("data was loaded"))


BENCH = ["bench", "--shapes", "small", "--threads", "1", "--repeats", "1", "--samples", "64",
         "--no-numpy"]


def _main_not_interrupted(argv):
    """cli.main(argv); a KeyboardInterrupt it lets out fails the test instead of stopping pytest."""
    try:
        return cli.main(argv)
    except KeyboardInterrupt:
        pytest.fail("cli.main let a KeyboardInterrupt out")


@pytest.mark.parametrize("where, exc, message", [
    ("_load_data", KeyboardInterrupt(), "gdcore train: interrupted\n"),
    ("fit", KeyboardInterrupt("fit interrupted at epoch 0, batch 3"),
     "gdcore train: interrupted (fit interrupted at epoch 0, batch 3)\n"),
])
def test_train_interrupted_exits_130_with_one_line(monkeypatch, capsys, where, exc, message):
    if where == "fit":
        monkeypatch.setattr(gdcore.Sequential, "fit", _raise(exc))
    else:
        monkeypatch.setattr(cli, where, _raise(exc))
    status = _main_not_interrupted(["train", "--epochs", "1", "--threads", "1"])
    err = capsys.readouterr().err
    assert status == 130 and err.endswith(message) and "Traceback" not in err


def test_bench_interrupted_exits_130_with_one_line(monkeypatch, capsys):
    from gdcore import bench
    monkeypatch.setattr(bench, "bench_shape", _raise(KeyboardInterrupt()))
    status = _main_not_interrupted(BENCH)
    assert status == 130 and capsys.readouterr().err == "gdcore bench: interrupted\n"


def test_train_stops_on_sigint_without_a_traceback():
    # A real Ctrl-C, sent once training has started: the core turns it into KeyboardInterrupt.
    proc = subprocess.Popen([sys.executable, "-m", "gdcore", "train", "--epochs", "100000",
                             "--threads", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=Path(__file__).parent)
    try:
        first = proc.stderr.readline()  # one line per epoch: stderr is not a terminal
        assert first.startswith("Epoch 1/100000"), first
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130 and "Traceback" not in err
    # "(fit interrupted at epoch ..., batch ...)" follows when the signal came inside the core
    assert err.splitlines()[-1].startswith("gdcore train: interrupted")


def test_train_reports_running_out_of_memory_as_a_one_line_error(monkeypatch, capsys):
    # Python's own MemoryError has no message: the line says what it means.
    monkeypatch.setattr(gdcore, "MLP", _raise(MemoryError()))
    status, err, _ = train_error(capsys)
    assert status == 2 and err == "gdcore train: error: out of memory\n"


def test_bench_reports_running_out_of_memory_as_a_one_line_error(monkeypatch, capsys):
    from gdcore import bench
    monkeypatch.setattr(bench, "synthetic_mnist", _raise(MemoryError("Unable to allocate 1 GiB")))
    status = cli.main(BENCH)
    assert status == 2
    assert capsys.readouterr().err == "gdcore bench: error: out of memory (Unable to allocate 1 GiB)\n"


@pytest.mark.parametrize("samples", ["1000000000000", "99999999999999999999999", "1000001", "0",
                                     "1e3"])
def test_bench_bounds_samples_while_parsing(monkeypatch, capsys, samples):
    # Before, NumPy's "Unable to allocate 2.79 PiB" or "Maximum allowed dimension exceeded"
    # came as a traceback after the banner; a size it could allocate would take the machine.
    _no_run(monkeypatch)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["bench", "--shapes", "small", "--threads", "1", "--samples", samples])
    assert exit_info.value.code == 2
    assert f"argument --samples: expected an int in [1, 1,000,000], got {samples!r}" in \
        capsys.readouterr().err


@pytest.mark.parametrize("name", ["newdir/", "newdir/."])
def test_train_refuses_a_plot_path_naming_a_folder(tmp_path, monkeypatch, capsys, name):
    # abspath drops the trailing slash: "newdir/" passed as the file "newdir" in the current
    # folder, and failed after training, whether newdir existed or not.
    monkeypatch.chdir(tmp_path)
    _no_run(monkeypatch)
    status, err, _ = train_error(capsys, "--plot", name)
    assert status == 2 and f"argument --plot: {name!r} names a folder; expected a file name" in err
    (tmp_path / "newdir").mkdir()
    status, err, _ = train_error(capsys, "--plot", name)
    assert status == 2 and f"argument --plot: {name!r} is a folder; expected a file name" in err


def test_bench_refuses_a_markdown_path_naming_a_folder(tmp_path, monkeypatch, capsys):
    _no_run(monkeypatch)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(BENCH + ["--markdown", str(tmp_path / "newdir") + "/"])
    assert exit_info.value.code == 2 and "argument --markdown:" in capsys.readouterr().err


def test_output_file_follows_symlinks(tmp_path):
    # open() follows a symlink, a dangling one too: its target's folder must exist.
    dangling = tmp_path / "dangling.png"
    dangling.symlink_to(tmp_path / "missing" / "r.png")
    with pytest.raises(Exception, match=r"folder '.*missing' does not exist \('.*dangling.png' "
                                        r"links to '.*r.png'\)"):
        cli.output_file(str(dangling))
    into_existing = tmp_path / "link.png"
    into_existing.symlink_to(tmp_path / "r.png")
    assert cli.output_file(str(into_existing)) == str(into_existing)
    existing = tmp_path / "old.png"
    existing.write_bytes(b"")  # a writable file is overwritten
    assert cli.output_file(str(existing)) == str(existing)


def _without_root_override():
    """The command prefix that makes a root process subject to file permissions (setpriv drops
    CAP_DAC_OVERRIDE), [] when not root; skips the test where that cannot be done."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("root, and no setpriv to drop CAP_DAC_OVERRIDE with")
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search",
            "--inh-caps", "-dac_override,-dac_read_search"]


def test_train_refuses_a_read_only_plot_file_before_training(tmp_path):
    target = tmp_path / "ro.png"
    target.write_bytes(b"")
    target.chmod(0o444)
    result = subprocess.run(_without_root_override() + [
        sys.executable, "-m", "gdcore", "train", "--epochs", "1", "--threads", "1",
        "--plot", str(target)], capture_output=True, text=True, timeout=60, cwd=Path(__file__).parent)
    assert result.returncode == 2 and "data:" not in result.stdout
    assert f"argument --plot: {str(target)!r} is not writable" in result.stderr


def _fake_row(*args, **kwargs):
    return {"shape": "small", "threads": 1, "gflop": 1.0, "gdcore": 1.0, "roofline": 0.5}


def test_bench_reports_a_report_it_cannot_write_as_a_one_line_error(tmp_path, monkeypatch, capsys):
    # The folder checked while parsing is gone once the benchmark is done.
    from gdcore import bench
    folder = tmp_path / "out"
    folder.mkdir()

    def bench_shape(*args, **kwargs):
        folder.rmdir()
        return _fake_row()
    monkeypatch.setattr(bench, "bench_shape", bench_shape)
    status = cli.main(BENCH + ["--markdown", str(folder / "t.md")])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("gdcore bench: error: ") and "t.md" in err


@pytest.mark.parametrize("argv", [["train", "--epochs", "1", "--threads", "1"], BENCH])
def test_a_closed_pipe_ends_quietly(argv):
    # `gdcore bench | head -1`: stdout's reader is gone. Closed before the command starts, so
    # that its first write to stdout fails whatever the timing.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run([sys.executable, "-m", "gdcore", *argv], stdout=write_end,
                                stderr=subprocess.PIPE, text=True, timeout=60,
                                cwd=Path(__file__).parent)
    finally:
        os.close(write_end)
    assert result.returncode == 141  # 128 + SIGPIPE, as for a command the signal ended
    assert [line for line in result.stderr.splitlines() if not line.startswith("Epoch")] == []


@pytest.mark.parametrize("argv", [["train", "--plot", ""], BENCH + ["--markdown", ""],
                                  BENCH + ["--plot", ""]])
def test_an_empty_output_file_name_is_refused(monkeypatch, capsys, argv):
    # --plot "" passed the check (the folder of abspath("") is cwd's parent) and wrote nothing.
    _no_run(monkeypatch)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert f"argument {argv[-2]}: expected a file name, got ''" in capsys.readouterr().err


def test_train_evaluates_and_plots_on_the_given_threads(monkeypatch, capsys):
    from gdcore import plot
    seen = []
    evaluate = gdcore.Sequential.evaluate
    monkeypatch.setattr(gdcore.Sequential, "evaluate", lambda self, *a, **k: (
        seen.append(("evaluate", k.get("n_threads"))), evaluate(self, *a, **k))[1])
    monkeypatch.setattr(plot, "check_matplotlib", lambda: None)
    monkeypatch.setattr(plot, "training_report",
                        lambda *a, **k: seen.append(("training_report", k.get("n_threads"))))
    status, err, _ = train_error(capsys, "--threads", "1", "--plot", "unused.png")
    assert status == 0, err
    assert seen == [("evaluate", 1), ("training_report", 1)]


def _mnist_folder(folder, test_rows=4, test_files=("images", "labels")):
    rng = np.random.default_rng(2)
    for kind, n, side in (("train", 60, 4), ("t10k", 20, test_rows)):
        labels = rng.integers(0, 3, n)
        files = {"images": rng.integers(0, 256, (n, side, side)), "labels": labels}
        for part, magic in (("images", 0x803), ("labels", 0x801)):
            if kind == "train" or part in test_files:
                _write_idx(folder / f"{kind}-{part}-idx{magic & 0xFF}-ubyte.gz", files[part], magic)
    return str(folder)


@pytest.mark.parametrize("present, missing", [("images", "t10k-labels"), ("labels", "t10k-images")])
def test_train_refuses_half_an_mnist_test_pair(tmp_path, capsys, present, missing):
    # Before, any FileNotFoundError of the test files meant "no test set": the train set was
    # split, and the lone file ignored.
    status, err, out = train_error(capsys, "--data", _mnist_folder(tmp_path, test_files=(present,)))
    assert status == 2 and "Epoch" not in err
    assert f"--data {tmp_path}: the t10k test set is incomplete: no MNIST file in folder" in err
    assert f"looked for: {missing}-idx" in err


def test_train_splits_an_mnist_folder_without_test_files(tmp_path, capsys):
    status, err, out = train_error(capsys, "--data", _mnist_folder(tmp_path, test_files=()))
    assert status == 0, err
    assert "train 48, test 12" in out


def test_train_names_the_test_files_whose_image_size_differs(tmp_path, capsys):
    # Before: "validation_data[0] has 25 features, but the model expects 16".
    status, err, _ = train_error(capsys, "--data", _mnist_folder(tmp_path, test_rows=5))
    assert status == 2
    assert (f"--data {tmp_path}: the t10k test images have 25 pixels each, the train images 16"
            in err)


def test_train_momentum_zero_names_no_nesterov(capsys):
    # Nesterov is on by default: SGD's "nesterov momentum requires momentum > 0" named no option
    status, err, out = train_error(capsys, "--momentum", "0")
    assert status == 2 and "data:" not in out  # refused before loading the data
    assert "gdcore train: error: --momentum 0 turns momentum off" in err and "--no-nesterov" in err
    status, err, _ = train_error(capsys, "--momentum", "0", "--no-nesterov")
    assert status == 0, err
