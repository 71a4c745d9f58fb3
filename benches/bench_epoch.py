"""One training epoch: gdcore against the pure-NumPy reference trainer and the BLAS roofline.

The same as ``gdcore bench``; see gdcore/bench.py for what is measured and how. Run with
``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benches/bench_epoch.py [options]``.
"""
from gdcore.bench import main

if __name__ == "__main__":
    main()
