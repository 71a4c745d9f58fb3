"""Build the C core with a C compiler and run its own tests (tests/c/test_core.c), which use a
plain reference GEMM: the core works without Python and BLAS, and reports bad arguments."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CSRC = ROOT / "csrc"
TEMPLATED = ["gd_act.c", "gd_dense.c", "gd_loss.c", "gd_optim.c", "gd_train.c"]


@pytest.mark.skipif(shutil.which(os.environ.get("CC", "cc")) is None, reason="no C compiler")
def test_c_core(tmp_path):
    cc = os.environ.get("CC", "cc")
    flags = ["-O1", "-g", "-std=c11", "-fopenmp", "-Wall", f"-I{CSRC}"]
    objects = []
    for name in TEMPLATED:  # each kernel source once per element type, as CMakeLists.txt does
        for suffix, defines in (("f32", []), ("f64", ["-DGD_DOUBLE"])):
            obj = tmp_path / f"{name}.{suffix}.o"
            subprocess.run([cc, *flags, *defines, "-c", str(CSRC / name), "-o", str(obj)], check=True)
            objects.append(str(obj))
    exe = tmp_path / "test_core"
    subprocess.run([cc, *flags, str(ROOT / "tests" / "c" / "test_core.c"), str(CSRC / "gd_common.c"),
                    *objects, "-o", str(exe), "-lm"], check=True)
    result = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failed" in result.stdout and "passed" in result.stdout
