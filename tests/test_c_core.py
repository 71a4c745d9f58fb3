"""Build the C core with a C compiler and run its own tests (tests/c/test_core.c), which use a
plain reference GEMM: the core works without Python and BLAS, and reports bad arguments. Also
checks that the vectorized clones of the element-wise loops round as the baseline build."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CSRC = ROOT / "csrc"
TEMPLATED = ["gd_act.c", "gd_dense.c", "gd_loss.c", "gd_optim.c", "gd_train.c"]
CC = os.environ.get("CC", "cc")
needs_cc = pytest.mark.skipif(shutil.which(CC) is None, reason="no C compiler")


def build(tmp_path, program, flags):
    """Compile the core (each kernel source once per element type, as CMakeLists.txt does) and
    tests/c/<program>.c with `flags`; returns the executable."""
    flags = [*flags, "-fopenmp", "-Wall", f"-I{CSRC}"]
    objects = []
    for name in TEMPLATED:
        for suffix, defines in (("f32", []), ("f64", ["-DGD_DOUBLE"])):
            obj = tmp_path / f"{name}.{suffix}.o"
            subprocess.run([CC, *flags, *defines, "-c", str(CSRC / name), "-o", str(obj)], check=True)
            objects.append(str(obj))
    exe = tmp_path / program
    subprocess.run([CC, *flags, str(ROOT / "tests" / "c" / f"{program}.c"), str(CSRC / "gd_common.c"),
                    *objects, "-o", str(exe), "-lm"], check=True)
    return exe


@needs_cc
def test_c_core(tmp_path):
    exe = build(tmp_path, "test_core", ["-O1", "-g", "-std=c11"])
    result = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failed" in result.stdout and "passed" in result.stdout


@needs_cc
def test_vector_clones_round_as_the_baseline(tmp_path):
    """Every optimizer, activation and loss, float32 and float64: the same bits from the build
    with GD_VECTOR_CLONES (the CPU's best clone runs) as from the baseline-only build. The flags
    are the release build's (CMakeLists.txt): -O3 vectorizes, -ffp-contract=off forbids FMAs."""
    flags = ["-O3", "-std=gnu11", "-fno-math-errno", "-ffp-contract=off"]
    runs = {}
    for label, extra in (("clones", []), ("baseline", ["-DGD_NO_VECTOR_CLONES"])):
        folder = tmp_path / label
        folder.mkdir()
        exe = build(folder, "clone_bits", [*flags, *extra])
        result = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        runs[label] = result.stdout.splitlines()
    isa = runs["clones"][0]
    assert runs["baseline"][0] == "isa baseline (built without clones)"
    assert isa.startswith("isa ")
    assert len(runs["clones"]) == len(runs["baseline"]) == 1 + 5 * 5 * 6
    differing = [(a, b) for a, b in zip(runs["clones"][1:], runs["baseline"][1:]) if a != b]
    assert not differing, f"{isa}: {len(differing)} cases round differently, e.g. {differing[:3]}"
