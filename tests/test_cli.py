"""The command line: gdcore train (the main job), gdcore bench, gdcore config."""
import gzip
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
