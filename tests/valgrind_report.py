"""Read a valgrind memcheck log and fail when an error or a definite leak involves gdcore.

CPython, NumPy and OpenBLAS produce valgrind reports of their own (uninitialised reads in the
interpreter, memory kept until exit); those are not ours. A record counts when one of its stack
frames is in gdcore's extension module or names a gd_ function, below any frame of CPython's
import machinery: a report from inside a module that gdcore's module init imports (SciPy's BLAS,
NumPy) has gdcore's init further down its stack, and is that module's. Usage:
    python tests/valgrind_report.py valgrind.log
"""
import re
import sys


def records(text):
    """Valgrind's reports, one string each (they are separated by a bare '==PID==' line)."""
    current = []
    for line in text.splitlines():
        body = re.sub(r"^==\d+== ?", "", line)
        if not body.strip():
            if current:
                yield "\n".join(current)
            current = []
        else:
            current.append(body)
    if current:
        yield "\n".join(current)


def ours(record):
    for frame in record.splitlines():
        if "_core.cpython" in frame or re.search(r"\bgd_\w+", frame):
            return True
        if re.search(r"\b(PyImport_\w+|import_find_and_load)\b", frame):
            return False
    return False


def main(path):
    text = open(path).read()
    if "ERROR SUMMARY" not in text:
        print(f"{path}: no valgrind summary: the run did not finish")
        return 1
    bad = [r for r in records(text)
           if ours(r) and ("Invalid" in r or "uninitialised" in r or "definitely lost" in r
                           or "Mismatched" in r or "overlap" in r)]
    summary = re.findall(r"ERROR SUMMARY: .*", text)[-1]
    print(f"valgrind: {summary}; records involving gdcore: {len(bad)}")
    for record in bad:
        print(record, end="\n\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
