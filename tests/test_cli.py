"""The command line: gdcore train (the main job), gdcore bench, gdcore config."""
import gzip
import io
import re
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
