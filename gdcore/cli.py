"""The ``gdcore`` command: ``gdcore train`` (the main job), ``gdcore bench``, ``gdcore config``."""
import argparse
import os
import sys
import time

import numpy as np


def _has_test_files(folder):
    """Whether an MNIST folder holds a t10k images or labels file, under any of the names
    load_mnist looks for (-idx3-ubyte or .idx3-ubyte, either one gzipped)."""
    return any(name.startswith(("t10k-images", "t10k-labels")) for name in os.listdir(folder))


def _load_data(path):
    """(X, y, X_test, y_test or None, description) from the bundled digits, an .npz or an MNIST folder."""
    from . import datasets
    if path is None:
        X, y = datasets.load_digits()
        return X / 16.0, y, None, None, "bundled UCI digits (1,797 samples, 8×8)"
    if os.path.isdir(path):
        X, y = datasets.load_mnist(path, kind="train")
        try:
            X_test, y_test = datasets.load_mnist(path, kind="test")
        except FileNotFoundError as error:
            # Only a folder without any test file means "split the train set": half a pair is
            # a mistake (a download cut short), and the error names the missing file.
            if _has_test_files(path):
                raise FileNotFoundError(
                    f"--data {path}: the t10k test set is incomplete: {error}") from None
            return X / 255.0, y, None, None, f"MNIST files in {path}"
        if X_test.shape[1] != X.shape[1]:  # else fit's message names validation_data, not a file
            raise ValueError(f"--data {path}: the t10k test images have {X_test.shape[1]} pixels "
                             f"each, the train images {X.shape[1]}")
        return X / 255.0, y, X_test / 255.0, y_test, f"MNIST files in {path}"
    X, y = datasets.load_npz(path)
    return X, y, None, None, path


def _check_data(X, y):
    """Refuse data that fit would reject deep inside, with a message that says what the file
    should hold. (The loaders already give a 1-D y as long as X.)"""
    if X.dtype.kind not in "biuf" or y.dtype.kind not in "biuf":
        raise ValueError(f"--data: X and y must be numeric arrays, got dtypes {X.dtype} and {y.dtype}")
    if X.ndim != 2:
        raise ValueError(f"--data: X must be 2-D of shape (n_samples, n_features), got shape {X.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"--data: X is empty (shape {X.shape})")


def _check_labels(y, loss, n_train):
    """Class labels must be integers in [0, n_train): the output layer gets one unit per class
    up to the largest label, so a stray label such as 10**9 would otherwise allocate gigabytes."""
    valid = (y >= 0) & (y < n_train)
    if y.dtype.kind == "f":
        valid &= y == np.round(y)  # NaN fails every comparison, so it is refused too
    if not valid.all():
        bad = y[~valid][0].item()
        raise ValueError(f"--data: y must hold class labels that are integers in [0, {n_train}) for "
                         f"{loss.name} (no more classes than training samples), got {bad!r}")


def _split(X, y, test_fraction, seed):
    n_samples = X.shape[0]
    if n_samples < 2:
        raise ValueError(f"--data has {n_samples} sample(s); at least 2 are needed "
                         "to hold some out for testing")
    n_test = max(1, int(round(test_fraction * n_samples)))  # at least one test row
    if n_test >= n_samples:
        raise ValueError(f"--test-fraction {test_fraction} leaves no rows for training "
                         f"({n_test} of {n_samples} samples held out for testing)")
    order = np.random.default_rng(seed).permutation(n_samples)
    test, train = order[:n_test], order[n_test:]
    return X[train], y[train], X[test], y[test]


def train(args):
    import gdcore as gd
    if args.plot:  # fail before training, not after
        from . import plot
        plot.check_matplotlib()
    try:  # resolve aliases (log_loss, multi_margin, any case) before deciding on classification
        loss = gd.losses.get(args.loss)
    except ValueError:
        names = ", ".join(gd.losses.NAMES)
        raise ValueError(f"--loss must be one of {names}, got {args.loss!r}") from None
    if args.nesterov and args.momentum == 0:  # SGD's own message names no option to change
        raise ValueError("--momentum 0 turns momentum off, which Nesterov momentum (on by default) "
                         "needs: add --no-nesterov")
    X, y, X_test, y_test, description = _load_data(args.data)
    _check_data(X, y)
    if X_test is None:
        X, y, X_test, y_test = _split(X, y, args.test_fraction, args.seed)
    else:
        _check_data(X_test, y_test)
    classification = loss.targets == "index"
    if classification:
        _check_labels(y, loss, X.shape[0])
        _check_labels(y_test, loss, X.shape[0])
    n_outputs = int(max(y.max(), y_test.max())) + 1 if classification else (1 if y.ndim == 1 else y.shape[1])
    sizes = [X.shape[1]] + args.hidden + [n_outputs]
    model = gd.MLP(sizes, activation=args.activation, dtype=args.dtype, seed=args.seed)
    optimizer = gd.optim.SGD(lr=args.lr, momentum=args.momentum, nesterov=args.nesterov,
                             weight_decay=args.weight_decay)
    print(f"data: {description}; train {X.shape[0]}, test {X_test.shape[0]}")
    print(f"model: MLP {sizes}, {args.activation}, {args.dtype}; {optimizer}; loss {loss.name}")
    start = time.perf_counter()
    history = model.fit(X, y, loss=loss, optimizer=optimizer, epochs=args.epochs,
                        batch_size=args.batch_size, seed=args.seed, n_threads=args.threads,
                        validation_data=(X_test, y_test), verbose=1)
    elapsed = time.perf_counter() - start
    scores = model.evaluate(X_test, y_test, n_threads=args.threads)
    seconds = np.median(history.history["seconds"])
    print(f"test loss {scores['loss']:.4f}" +
          (f", test accuracy {100 * scores['accuracy']:.2f}%" if "accuracy" in scores else ""))
    print(f"{seconds:.4f} s per epoch (median of {args.epochs}), {elapsed:.2f} s in all")
    if args.plot:
        plot.training_report(history, model, X, y, args.plot, seed=args.seed,
                             n_threads=args.threads)
        print(f"plot: {args.plot}")
    return scores


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative int, got {text!r}")
    return value


def _fraction(text):
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 1:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be in (0, 1), got {text!r}")
    return value


def output_file(text):
    """argparse type of an output file name (--plot, --markdown): checked while parsing, so that
    a typo in the folder fails before training or benchmarking, not after.

    The checks follow what open(text, "w") will do: the name as given, not os.path.abspath's
    (which drops a trailing slash and resolves "missing/.." without looking), and the target of
    a symlink, a dangling one included."""
    if not text:  # else the folder of abspath("") is cwd's parent, and nothing is written
        raise argparse.ArgumentTypeError("expected a file name, got ''")
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text!r} is a folder; expected a file name")
    if os.path.basename(text) in ("", ".", ".."):  # "out/": a folder, whether it exists or not
        raise argparse.ArgumentTypeError(f"{text!r} names a folder; expected a file name")
    folder = os.path.dirname(text) or os.curdir
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError(f"folder {folder!r} does not exist")
    target = os.path.realpath(text)
    link = f" ({text!r} links to {target!r})" if os.path.islink(text) else ""
    if os.path.exists(target):
        if not os.access(target, os.W_OK):
            raise argparse.ArgumentTypeError(f"{text!r} is not writable{link}")
        return text
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError(f"folder {folder!r} does not exist{link}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"folder {folder!r} is not writable{link}")
    return text


def _int_list(text):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints, got {text!r}") from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return values


def build_parser():
    parser = argparse.ArgumentParser(prog="gdcore", description="Gradient-descent training on the CPU.")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train an MLP (default: on the bundled digits) and report test accuracy")
    t.add_argument("--data", help="an .npz with X and y, or a folder of MNIST IDX files (default: bundled digits)")
    t.add_argument("--hidden", type=_int_list, default=[64], help="hidden layer sizes, e.g. 128,64 (default 64)")
    t.add_argument("--activation", default="relu", help="hidden activation (default relu)")
    t.add_argument("--loss", default="cross_entropy", help="loss name (default cross_entropy)")
    t.add_argument("--lr", type=float, default=0.05, help="learning rate (default 0.05)")
    t.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    t.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=True,
                   help="Nesterov momentum (default on; needs --momentum > 0)")
    t.add_argument("--weight-decay", type=float, default=0.0)
    t.add_argument("--epochs", type=int, default=30)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--threads", type=int, default=None, help="OpenMP threads (default: all cores)")
    t.add_argument("--seed", type=_seed, default=0)
    t.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    t.add_argument("--test-fraction", type=_fraction, default=0.2,
                   help="held-out share when the data has no test set (default 0.2)")
    t.add_argument("--plot", metavar="PNG", type=output_file,
                   help="write the loss curve and the loss landscape around the trained weights "
                        "to this PNG (needs matplotlib: pip install 'gdcore[plot]')")
    sub.add_parser("bench", help="benchmark an epoch against NumPy and the BLAS roofline", add_help=False)
    sub.add_parser("config", help="print versions, OpenMP, BLAS and thread count")
    return parser


#: the errors a command reports in one line (exit status 2, as argparse's) rather than with a
#: traceback: for train, bad data or options found past parsing, a missing matplotlib, a run that
#: diverged (DivergenceError is a FloatingPointError) or needs more memory than there is; bench
#: checks all its options while parsing, which leaves a report it cannot write and memory. Any
#: other exception is a bug, and keeps its traceback.
USER_ERRORS = {
    "train": (ValueError, TypeError, OSError, ImportError, FloatingPointError, MemoryError),
    "bench": (OSError, MemoryError),
    "config": (),
}

#: exit statuses of a command stopped by a signal, as a shell reports them (128 + the signal)
EXIT_SIGINT, EXIT_SIGPIPE = 130, 141


def _message(error):
    """The text of a one-line error; Python's own MemoryError has none."""
    if isinstance(error, MemoryError):
        return "out of memory" + (f" ({error})" if str(error) else "")
    return str(error)


def _silence_stdout():
    """Point stdout at os.devnull once its reader is gone, so that the flush at exit does not
    fail again ("Exception ignored ... BrokenPipeError"), as the Python docs on SIGPIPE advise."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (pytest's capture): nothing to flush
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def main(argv=None):
    """Run the command line ``gdcore ARGV``; returns the exit status (argparse's errors exit 2)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = argv[0] if argv[:1] in (["bench"], ["config"]) else "train"
    try:
        if command == "bench":  # the benchmark has its own options
            from .bench import main as bench_main
            bench_main(argv[1:])
        else:
            args = build_parser().parse_args(argv)
            if args.command == "config":
                from . import show_config
                show_config()
            else:
                train(args)
        sys.stdout.flush()  # a reader gone (`gdcore bench | head -1`) fails here, not at exit
    except KeyboardInterrupt as interrupt:
        # Ctrl-C: one line and the status a shell gives a command SIGINT ended. Not a re-raised
        # SIGINT (which would also stop a calling shell script's loop): main is called in-process
        # too (the tests, other programs), and killing the process would kill its caller.
        print(f"gdcore {command}: interrupted" + (f" ({interrupt})" if str(interrupt) else ""),
              file=sys.stderr)
        return EXIT_SIGINT
    except BrokenPipeError:
        # stdout's reader has all it wanted: quiet, like a command that SIGPIPE ended (Python
        # ignores SIGPIPE, so a write raises this instead)
        _silence_stdout()
        return EXIT_SIGPIPE
    except USER_ERRORS[command] as error:
        print(f"gdcore {command}: error: {_message(error)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
