"""The valgrind log reader that .ci/sanitize uses: it must flag gdcore's errors, not others'."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import valgrind_report  # noqa: E402

LOG = """==7== Memcheck, a memory error detector
==7==
==7== Conditional jump or move depends on uninitialised value(s)
==7==    at 0x4A: PyObject_Free (obmalloc.c:1)
==7==
==7== Invalid read of size 4
==7==    at 0x1B: gd_batch_step_f32 (gd_train.c:300)
==7==    by 0x2C: ??? (in /x/gdcore/_core.cpython-311-x86_64-linux-gnu.so)
==7==
==7== 64 bytes in 1 blocks are definitely lost in loss record 3 of 9
==7==    at 0x3D: malloc (vg_replace_malloc.c:1)
==7==    by 0x4E: PyMem_Malloc (obmalloc.c:2)
==7==
==7== ERROR SUMMARY: 3 errors from 3 contexts (suppressed: 0 from 0)
"""


def report(tmp_path, capsys, text):
    """(exit status, printed report) of valgrind_report on a log holding ``text``."""
    log = tmp_path / "valgrind.log"
    log.write_text(text)
    status = valgrind_report.main(str(log))
    return status, capsys.readouterr().out


def test_flags_only_records_involving_gdcore(tmp_path, capsys):
    status, out = report(tmp_path, capsys, LOG)
    assert status == 1
    assert "records involving gdcore: 1" in out and "gd_batch_step_f32" in out
    other = LOG.replace("gd_batch_step_f32 (gd_train.c", "PyList_Append (listobject.c")
    assert report(tmp_path, capsys, other.replace("_core.cpython", "x"))[0] == 0


IMPORTED = """==7== Use of uninitialised value of size 8
==7==    at 0x4A: Py_DECREF (object.h:537)
==7==    by 0x4B: tupledealloc (tupleobject.c:208)
==7==    by 0x4C: import_find_and_load (import.c:1748)
==7==    by 0x4D: PyImport_ImportModule (import.c:1465)
==7==    by 0x5E: ??? (in /x/gdcore/_core.cpython-311-x86_64-linux-gnu.so)
==7==    by 0x5F: PyModule_ExecDef (moduleobject.c:419)
==7==
==7== ERROR SUMMARY: 1 errors from 1 contexts (suppressed: 0 from 0)
"""


def test_reports_from_modules_that_gdcore_imports_are_theirs(tmp_path, capsys):
    # CPython's own report while gdcore's module init imports a dependency: not gdcore's
    assert report(tmp_path, capsys, IMPORTED) == (
        0, "valgrind: ERROR SUMMARY: 1 errors from 1 contexts (suppressed: 0 from 0); "
           "records involving gdcore: 0\n")
    # the same error in gdcore's own init code (above the import) is gdcore's
    own = IMPORTED.replace("by 0x4B: tupledealloc (tupleobject.c:208)",
                           "by 0x4B: ??? (in /x/gdcore/_core.cpython-311.so)")
    assert report(tmp_path, capsys, own)[0] == 1


def test_an_unfinished_run_fails(tmp_path):
    log = tmp_path / "valgrind.log"
    log.write_text("==7== Memcheck, a memory error detector\n")
    assert valgrind_report.main(str(log)) == 1
