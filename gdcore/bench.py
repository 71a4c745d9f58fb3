"""Epoch benchmark: gdcore against the pure-NumPy reference trainer, the BLAS roofline and peers.

Both train the same model (same initial weights, same batches in the same order, the same SGD
with Nesterov momentum and softmax cross-entropy) on MNIST-shaped synthetic data, one epoch per
run; the table gives the median seconds per epoch over the runs. The roofline is the same
epoch's GEMM calls alone, full-batch BLAS calls in a training step's order on each layer's own
buffers, with the same thread count, timed in the same process
(gdcore._core.gemm_epoch_seconds): no implementation of the epoch can beat it by much.

With ``--peers`` (``all`` or a list from numpy, torch, sklearn, jax, jax_scan) the same epoch is
also trained by PyTorch eager, scikit-learn's MLPClassifier, JAX (jit per step, and jit over a
lax.scan of the whole epoch): each measurement in a fresh process pinned to its cores, with the
framework's own thread settings (gdcore/_peers.py says exactly what is timed). Peers that are not
installed are skipped with a note. ``--markdown`` writes the table, ``--plot`` a bar chart
(needs matplotlib).

Run it with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset where the machine sets them
(``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE gdcore bench``): they slow OpenBLAS here.
"""
import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from . import _peers
from ._peers import CHECK_BATCHES, FRAMEWORKS, synthetic_mnist
from ._threads import MAX_THREADS, usable_cores, usable_cpu_ids
from .cli import output_file
from .models import MLP, epoch_permutation
from .optim import SGD
from .reference import ReferenceMLP

#: name → (layer sizes, batch size)
SHAPES = {
    "small": ([784, 128, 10], 64),
    "wide": ([784, 512, 512, 10], 128),
    "wide-b1024": ([784, 512, 512, 10], 1024),
}
LR, MOMENTUM = _peers.LR, _peers.MOMENTUM
#: the frameworks --peers may name, in table order (gdcore always runs: it is the baseline)
PEERS = ("numpy", "torch", "sklearn", "jax", "jax_scan")
#: a peer whose loss or weights differ more than this from gdcore's did not train the same way
#: (correct float32 runs: losses within ~2e-4, weights after the first batches within ~1e-6..1e-2)
LOSS_RTOL, WEIGHT_RTOL = 1e-3, 2e-2
#: other processes keeping more cores than this busy during a measurement make it suspect (the
#: figure is given only where /proc/stat's ticks alone cannot pass this: _peers.OTHER_LOAD_RESOLUTION)
BUSY_CORES = 0.2
#: the most --samples: about 3 GiB of float32 inputs (784 per row), 17 times MNIST. More is most
#: likely a typo, which NumPy refused only after the banner, with a traceback ("Unable to allocate
#: 2.79 PiB", "Maximum allowed dimension exceeded"), or allocated, taking the machine's memory
MAX_SAMPLES = 1_000_000
#: pause after a NumPy reference epoch: on this project's 2-core VM the two-thread run that came
#: next was up to 1.6x slower (the roofline's small epoch 0.30 s instead of 0.18) when it started
#: at once, and at its usual speed after a pause of 2 s
AFTER_REFERENCE_SECONDS = 2.0


def _seconds(run):
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def bench_shape(name, X, y, threads, repeats, with_numpy=True):
    """Median seconds per epoch of gdcore, the NumPy reference and the GEMM roofline.

    Their runs alternate (gdcore, roofline, pause, NumPy, pause, gdcore, ...) so that a slow
    phase of a shared machine (on this project's VM two-thread epochs, the roofline's too, run up
    to 1.5× slower in phases of seconds to minutes) falls on all three rather than on one of
    them; the roofline follows gdcore, as in the peer suite, and the pauses let BLAS's threads
    stop spinning (see _peers.blas_threads) and the machine settle after the reference's epoch
    (AFTER_REFERENCE_SECONDS)."""
    sizes, batch_size = SHAPES[name]
    n_samples = X.shape[0]
    model = MLP(sizes, activation="relu", seed=0)
    reference = ReferenceMLP(model.get_weights(), [layer.activation for layer in model.layers])
    optimizer = SGD(lr=LR, momentum=MOMENTUM, nesterov=True)
    perm = epoch_permutation(n_samples, 0, 0)
    times = {"gdcore": [], "numpy": [], "roofline": []}
    flops = 0.0
    for _ in range(repeats):
        times["gdcore"].append(_seconds(lambda: model.fit(
            X, y, optimizer=optimizer, epochs=1, batch_size=batch_size, seed=0,
            n_threads=threads, verbose=0)))
        seconds, flops = _peers.roofline_run(sizes, batch_size, n_samples, threads)
        times["roofline"].append(seconds)
        if with_numpy:
            with _peers.blas_threads(threads, pause=AFTER_REFERENCE_SECONDS):
                times["numpy"].append(_seconds(lambda: reference.train_epoch(
                    X, y, perm, batch_size, "cross_entropy", LR, momentum=MOMENTUM,
                    nesterov=True)))
    row = {"shape": name, "threads": threads, "gflop": flops / 1e9}
    row.update((key, statistics.median(runs)) for key, runs in times.items() if runs)
    return row


def format_table(rows):
    """Markdown table of benchmark rows."""
    lines = ["| shape | threads | gdcore s/epoch | NumPy s/epoch | speedup vs NumPy "
             "| gdcore GFLOP/s | roofline s/epoch | share of roofline |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        numpy_s = row.get("numpy")
        lines.append(
            f"| {row['shape']} | {row['threads']} | {row['gdcore']:.3f} | "
            + (f"{numpy_s:.3f} | {numpy_s / row['gdcore']:.2f}× | " if numpy_s else "– | – | ")
            + f"{row['gflop'] / row['gdcore']:.1f} | {row['roofline']:.3f} | "
            f"{100 * row['roofline'] / row['gdcore']:.0f}% |")
    return "\n".join(lines)


def parse_peers(text):
    """``--peers`` value → list of peer names in table order; ValueError naming the allowed ones."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if "all" in names:
        return list(PEERS)
    unknown = [name for name in names if name not in PEERS and name != "gdcore"]
    if unknown or not names:
        raise ValueError(f"unknown peer(s) {unknown or [text]}; choose from "
                         f"{', '.join(PEERS)} (comma-separated), or all")
    return [peer for peer in PEERS if peer in names]


def peer_installed(name):
    """Whether the framework a peer needs can be imported (checked without importing it)."""
    return importlib.util.find_spec(FRAMEWORKS[name][1]) is not None


def _usable_cpus():
    """The CPUs peers are pinned to (None: no affinity control, nothing is pinned)."""
    return usable_cpu_ids()


class PeerError(RuntimeError):
    """A measurement process failed; the message ends with its stderr."""


def run_measurement(framework, setup, batch_size, threads, cpus, repeats, max_seconds, workdir):
    """One measurement in a fresh process (gdcore/_peers.py as a script, pinned to ``cpus``).

    Returns the result dict of :func:`gdcore._peers.measure`, with ``weights`` read back.
    """
    out = os.path.join(workdir, f"{framework}-{threads}")
    command = [sys.executable, os.path.abspath(_peers.__file__), "--framework", framework,
               "--setup", setup, "--batch-size", str(batch_size), "--threads", str(threads),
               "--repeats", str(repeats), "--out", out]
    if cpus is not None:
        command += ["--cpus", ",".join(map(str, cpus))]
    if max_seconds:
        command += ["--max-seconds", str(max_seconds)]
    env = dict(os.environ, **_peers.thread_environment(threads, framework))
    proc = subprocess.run(command, env=env, cwd=workdir, capture_output=True, text=True)
    if proc.returncode != 0:
        raise PeerError(f"{framework} failed (exit {proc.returncode}):\n"
                        + "\n".join(proc.stderr.strip().splitlines()[-15:]))
    with open(out + ".json") as handle:
        result = json.load(handle)
    with np.load(out + ".npz") as weights:
        n_arrays = len(weights.files) // 2
        result["weights"] = [weights[f"epoch{i}"] for i in range(n_arrays)]
        result["check_weights"] = [weights[f"check{i}"] for i in range(n_arrays)]
    return result


def _relative_weight_difference(weights, reference, initial):
    """‖w − w_gdcore‖ / ‖w_gdcore − w_init‖ over all parameters: 0 for the same trajectory,
    about 1 for an unrelated one (a float32 run differs by ~1e-6..1e-3: rounding, relu kinks)."""
    flat = [np.concatenate([np.ravel(a).astype(np.float64) for a in ws])
            for ws in (weights, reference, initial)]
    return float(np.linalg.norm(flat[0] - flat[1]) / np.linalg.norm(flat[1] - flat[2]))


def _quietest_measurement(framework, common, retries, log):
    """run_measurement, repeated up to ``retries`` more times (15 s apart) while other
    processes kept more than BUSY_CORES cores busy; the quietest result, with ``attempts``."""
    best = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(15)
        result = run_measurement(framework, *common)
        result["attempts"] = attempt + 1
        if best is None or (result["other_load"] or 0) < (best["other_load"] or 0):
            best = result
        if (best["other_load"] or 0) <= BUSY_CORES:
            break
        log(f"note: {framework} ran beside {result['other_load']:.2f} busy cores"
            + ("; measuring again" if attempt < retries else ""))
    best["attempts"] = attempt + 1
    return best


def run_peer_suite(shapes, threads, peers, repeats, samples, max_seconds=None, log=print,
                   retries=0):
    """Every framework in ``["gdcore"] + peers`` for every shape and thread count.

    ``retries``: measure again (up to that many times) while other processes share the cores.
    Returns (rows, notes): one row per (shape, threads, framework) plus a ``roofline`` row per
    (shape, threads), dicts with ``framework``, ``label``, ``shape``, ``threads``, ``seconds``
    (median), ``times``, ``runs``, ``samples``, ``ratio`` (seconds / gdcore seconds), ``gflop``
    (the epoch's GEMM GFLOP), ``gflops``, ``roofline`` (seconds of the roofline), ``share``
    (roofline / seconds; gdcore rows), ``loss``, ``loss_rdiff`` (against gdcore),
    ``weight_rdiff`` (against gdcore after the first CHECK_BATCHES batches),
    ``weight_rdiff_epoch`` (after the epoch: chaotic, see gdcore._peers.measure), ``disagrees``, ``version``, ``capped``, ``cpus`` (the CPUs the process ran on),
    ``other_load`` (cores other processes kept busy during the timed runs, or None); and
    notes, a list of lines about failed measurements for the table's footer.
    """
    cpus_all = _usable_cpus()
    notes = []
    with tempfile.TemporaryDirectory(prefix="gdcore-bench-") as workdir:
        rows = []
        for shape in shapes:
            sizes, batch_size = SHAPES[shape]
            initial = MLP(sizes, activation="relu", seed=0).get_weights()
            setup = os.path.join(workdir, f"setup-{shape}.npz")
            np.savez(setup, perm=epoch_permutation(samples, 0, 0),
                     **{f"w{i}": w for i, w in enumerate(initial)})
            for n_threads in threads:
                cpus = cpus_all[:n_threads] if cpus_all is not None else None
                common = (setup, batch_size, n_threads, cpus, repeats, max_seconds, workdir)
                base = _quietest_measurement("gdcore", common, retries, log)
                config = {"shape": shape, "threads": n_threads, "samples": samples,
                          "gflop": base["flops"] / 1e9, "roofline": base["roofline"],
                          "all_cores": cpus_all is None or n_threads >= len(cpus_all),
                          "pinned": cpus is not None}
                gd_seconds = statistics.median(base["times"])
                new_rows = [dict(config, framework="roofline", label="GEMM roofline (BLAS only)",
                                 seconds=base["roofline"], times=[], runs=repeats, loss=None,
                                 loss_rdiff=None, weight_rdiff=None, weight_rdiff_epoch=None,
                                 version="", capped=False,
                                 cpus=base["cpus"], other_load=None, attempts=1)]
                for framework in ["gdcore"] + list(peers):
                    try:
                        result = base if framework == "gdcore" else _quietest_measurement(
                            framework, common, retries, log)
                    except PeerError as error:
                        log(f"note: {error}")
                        notes.append(f"{FRAMEWORKS[framework][0]} failed on {shape}, "
                                     f"{n_threads} thread(s): {str(error).splitlines()[-1]}")
                        continue
                    seconds = statistics.median(result["times"])
                    new_rows.append(dict(
                        config, framework=framework, label=FRAMEWORKS[framework][0],
                        seconds=seconds, times=result["times"], runs=len(result["times"]),
                        loss=result["loss"],
                        loss_rdiff=abs(result["loss"] - base["loss"]) / abs(base["loss"]),
                        weight_rdiff=_relative_weight_difference(
                            result["check_weights"], base["check_weights"], initial),
                        weight_rdiff_epoch=_relative_weight_difference(
                            result["weights"], base["weights"], initial),
                        version=result["version"], capped=result["capped"],
                        cpus=result["cpus"], other_load=result["other_load"],
                        attempts=result["attempts"]))
                for row in new_rows:
                    row["ratio"] = row["seconds"] / gd_seconds
                    row["gflops"] = row["gflop"] / row["seconds"]
                    row["share"] = row["roofline"] / row["seconds"] if row["framework"] == "gdcore" else None
                    row["disagrees"] = row["loss"] is not None and (
                        row["loss_rdiff"] > LOSS_RTOL or row["weight_rdiff"] > WEIGHT_RTOL)
                    if row["disagrees"]:
                        log(f"WARNING: {row['label']} on {shape}, {n_threads} thread(s) ends at "
                            f"loss {row['loss']:.6f} (gdcore {base['loss']:.6f}), weights "
                            f"{row['weight_rdiff']:.2g} apart after {CHECK_BATCHES} batches: it "
                            "does not train the same way")
                    if row["framework"] != "roofline":
                        log(format_peer_table([row], header=False), flush=True)
                rows += new_rows
    return rows, notes


def _threads_label(row):
    """'N (all cores)', '1 (pinned)', or the bare count for a row whose process was not pinned
    (``pinned`` false or absent: the default mode, and peers where there is no affinity)."""
    if row["all_cores"] and row["threads"] > 1:
        return f"{row['threads']} (all cores)"
    return f"{row['threads']} (pinned)" if row.get("pinned") else str(row["threads"])


def format_peer_table(rows, header=True):
    """Markdown table of peer-suite rows (see run_peer_suite)."""
    lines = ["| framework | shape | threads | s/epoch | runs | time / gdcore | GEMM GFLOP/s "
             f"| share of roofline | loss after epoch | Δw, {CHECK_BATCHES} batches | Δw, epoch "
             "| other load |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"] if header else []
    for row in rows:
        name = f"**{row['label']}**" if row["framework"] == "gdcore" else row["label"]
        if row["loss"] is None:
            loss = weight = weight_epoch = "–"
        elif row["framework"] == "gdcore":
            loss, weight, weight_epoch = f"{row['loss']:.6f}", "(baseline)", "(baseline)"
        else:
            loss = f"{row['loss']:.6f}" + (" ⚠" if row["loss_rdiff"] > LOSS_RTOL else "")
            weight = f"{row['weight_rdiff']:.0e}" + (" ⚠" if row["weight_rdiff"] > WEIGHT_RTOL else "")
            weight_epoch = f"{row['weight_rdiff_epoch']:.0e}"
        runs = f"{row['runs']}" + (" (capped)" if row["capped"] else "")
        share = f"{100 * row['share']:.0f}%" if row.get("share") else "–"
        other = row.get("other_load")
        other = "–" if other is None else f"{other:.2f}" + (" ⚠" if other > BUSY_CORES else "")
        lines.append(f"| {name} | {row['shape']} | {_threads_label(row)} | {row['seconds']:.3f} | "
                     f"{runs} | {row['ratio']:.2f}× | {row['gflops']:.1f} | {share} | {loss} | "
                     f"{weight} | {weight_epoch} | {other} |")
    return "\n".join(lines)


def suite_notes(rows, shapes, repeats, samples, max_seconds, skipped, failures, load=None,
                sgemm=None):
    """The footer of the peer table: what ran where, how, and anything to know. ``sgemm``:
    {threads: GFLOP/s} of _peers.sgemm_gflops at the fewest and most threads, if measured."""
    versions = {}
    for row in rows:
        if row["version"]:
            versions[row["label"]] = row["version"]
    shape_text = "; ".join(
        f"{name} = {'-'.join(map(str, SHAPES[name][0]))} at batch {SHAPES[name][1]}"
        + (f" ({samples // SHAPES[name][1]} full batches + one of {samples % SHAPES[name][1]})"
           if samples % SHAPES[name][1] else "") for name in shapes)
    lines = [
        f"{platform.processor() or platform.machine()} ({_cpu_model()}), {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; "
        + ", ".join(f"{label} {version}" for label, version in versions.items()) + ".",
        f"One epoch of {samples:,} MNIST-shaped synthetic rows (float32), relu MLP, softmax "
        f"cross-entropy, SGD lr {LR} with Nesterov momentum {MOMENTUM} (PyTorch's rule). "
        f"{shape_text}. Every framework starts from gdcore's initial weights "
        "(`MLP(sizes, seed=0)`) and visits the rows in the order of "
        "`epoch_permutation(n, 0, 0)`, in batches of the same rows (a smaller last batch where "
        "the batch size does not divide n, in every framework; JAX compiles a separate step for "
        "it, and lax.scan covers the full batches).",
        f"s/epoch: median over the runs (--repeats {repeats}) after one untimed warm-up epoch "
        "(JAX compiles there); each run starts from the initial weights and a fresh optimizer "
        "state; timed from the data set in the framework's own arrays to the trained weights "
        "(block_until_ready for JAX), the gather of each batch's rows included. Each "
        "measurement runs in a fresh process: '1 (pinned)' is pinned to one core "
        "(sched_setaffinity), which holds every framework to it, with every thread setting at 1 "
        "(OMP/OPENBLAS/MKL_NUM_THREADS, threadpoolctl, torch.set_num_threads; JAX has no thread "
        "count setting: XLA_FLAGS=--xla_cpu_multi_thread_eigen=false turns Eigen's threads off, "
        "and XLA's own threads share the one core); 'all cores' uses every core with the thread "
        "settings at the core count (JAX: its defaults).",
        "time / gdcore: s/epoch over gdcore's s/epoch in the same configuration (above 1: slower "
        "than gdcore). GEMM GFLOP/s: the epoch's true GEMM FLOPs (forward, weight gradients, input "
        "gradients above the first layer; from gemm_epoch_seconds) per second. GEMM roofline: the "
        "same GEMMs alone as full-batch BLAS calls with the same threads, in a training step's "
        "order on each layer's own buffers, timed in gdcore's process; share of roofline = "
        "roofline time / gdcore time.",
        "loss after epoch: the epoch's mean training loss (each batch's loss before its update); "
        "the labels are random, so it stays near ln 10 and what matters is the agreement with "
        f"gdcore (⚠ beyond a relative {LOSS_RTOL:g}). Δw = ‖w − w_gdcore‖ / ‖w_gdcore − w_init‖ "
        f"over all parameters, after the first {CHECK_BATCHES} batches (an extra untimed run) and "
        "after the epoch: the first is the setup check, ~1e-6..1e-2 for the same model, data, "
        "batches and update rule in float32 (the larger values where a relu input near 0 lands "
        "on the other side in one framework), ~0.1..1 for another row order, initialization, "
        "loss scaling or momentum rule (⚠ above "
        f"{WEIGHT_RTOL:g}). The second is not a check: a whole epoch is chaotic in float32 (most "
        "of all on wide, 469 steps on random labels), so rounding alone, even the NumPy reference "
        "with 1 against 2 BLAS threads or float32 against float64, takes two correct runs ~0.5 "
        "apart by the end of the epoch while their losses still agree to ~1e-4.",
    ]
    lines += _scaling_notes(rows, shapes, sgemm)
    busy = [row for row in rows if (row.get("other_load") or 0) > BUSY_CORES]
    measured = [row for row in rows if row["framework"] != "roofline"]
    unknown = [row for row in measured if row.get("other_load") is None]
    lines.append(
        "other load: how much of the measured process's own cores (the pinned one, or all) "
        "anything else kept busy during its timed epochs (not the roofline runs or the pauses "
        "between them), in cores, at most its own (from /proc/stat, hypervisor steal included): "
        "0 on a quiet machine. /proc/stat counts in 10 ms ticks, so the figure may be off by a "
        "tick per core and epoch; '–' where it is unknown: no /proc/stat, or epochs too short for "
        f"its ticks to give it within {_peers.OTHER_LOAD_RESOLUTION:g} cores (more --samples "
        "lengthen them, more --repeats do not help)."
        + (f" {len(unknown)} measurement(s) have no figure." if unknown else "")
        + (f" {len(busy)} measurement(s) ran beside more than {BUSY_CORES} busy cores (⚠): their "
           "times are too slow, most of all with all cores, where a thread that loses its core "
           "stalls the others at every barrier; rerun on a quiet machine to trust them."
           if busy else " No measurement with a figure shared the machine noticeably."
           if len(unknown) < len(measured) else ""))
    retried = [row for row in rows if row["attempts"] > 1]
    if retried:
        lines.append("Measured again because other processes shared the cores (--retries), the "
                     "quietest attempt kept: " + "; ".join(
                         f"{row['label']} on {row['shape']}, {row['threads']} thread(s): "
                         f"{row['attempts']} attempts" for row in retried) + ".")
    capped = [row for row in rows if row["capped"]]
    if capped:
        lines.append(f"Runs capped by --max-seconds {max_seconds:g}: " + "; ".join(
            f"{row['label']} on {row['shape']}, {row['threads']} thread(s): {row['runs']} of "
            f"{repeats} runs" for row in capped) + ".")
    if skipped:
        lines.append("Not installed, skipped: " + ", ".join(skipped) + ".")
    lines += failures
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if var in os.environ:
            lines.append(f"{var}={os.environ[var]} was set (it can slow OpenBLAS).")
    if load:
        lines.append(f"1-minute load average {load[0]:.2f} before the suite, {load[1]:.2f} after "
                     f"(anything above ~1 on top of the suite means another process shared the "
                     "cores, which hurts the all-cores rows most).")
    return lines


def _scaling_notes(rows, shapes, sgemm=None):
    """How much faster each framework ran on the most threads than on the fewest, per shape, next
    to the roofline's and sgemm's own speedups (the yardsticks of multi-core scaling)."""
    counts = sorted({row["threads"] for row in rows})
    if len(counts) < 2:
        return []
    fewest, most = counts[0], counts[-1]
    labels = {row["framework"]: row["label"] for row in rows}  # in table order
    per_shape = []
    for shape in shapes:
        at = {(row["framework"], row["threads"]): row["seconds"] for row in rows
              if row["shape"] == shape}
        gains = {name: at[(name, fewest)] / at[(name, most)] for name in labels
                 if (name, fewest) in at and (name, most) in at}
        if not gains:
            continue
        text = f"{shape}: " + ", ".join(f"{labels[name]} {gain:.2f}×"
                                        for name, gain in gains.items())
        gdcore = gains.get("gdcore")
        if sgemm and gdcore:
            share = gdcore / (sgemm[most] / sgemm[fewest])
            text += f" (gdcore's {gdcore:.2f}× is {100 * share:.0f}% of sgemm's)"
        per_shape.append(text)
    lines = []
    if per_shape:
        lines.append(f"Speedup from {fewest} to {most} threads (s/epoch on {fewest} over s/epoch "
                     f"on {most}): " + "; ".join(per_shape) + f". Near {most / fewest:g}× for "
                     "the roofline means the cores were fully available; much less means they "
                     "were not (a shared virtual machine), which holds back every all-cores row "
                     "of that run alike.")
    if sgemm:
        lines.append("SciPy's OpenBLAS sgemm, 2048³ (the BLAS that gdcore and the roofline call): "
                     f"{sgemm[fewest]:.0f} GFLOP/s on {fewest} thread(s), {sgemm[most]:.0f} on "
                     f"{most}, {sgemm[most] / sgemm[fewest]:.2f}×.")
    return lines


def _load_average():
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


#: bar colours: gdcore stands out, the peers are muted
_COLOURS = {"gdcore": "#d62728", "numpy": "#b8b8b8", "torch": "#8fb3de", "sklearn": "#c9b3de",
            "jax": "#a6d3a0", "jax_scan": "#5a9e55"}


def plot_rows(rows, path):
    """Bar chart of seconds per epoch: one panel per shape, bars grouped by thread count, one bar
    per framework (gdcore highlighted), the GEMM roofline as a dashed line over each group."""
    from .plot import _new_figure  # an Agg canvas: no pyplot, no change of the global backend

    shapes = list(dict.fromkeys(row["shape"] for row in rows))
    frameworks = [f for f in ["gdcore", *PEERS] if any(row["framework"] == f for row in rows)]
    figure = _new_figure((4.8 * len(shapes) + 0.6, 4.8), layout=None)  # tight_layout below
    axes = figure.subplots(1, len(shapes), squeeze=False)
    width = 0.8 / len(frameworks)
    for ax, shape in zip(axes[0], shapes):
        shape_rows = [row for row in rows if row["shape"] == shape]
        threads = list(dict.fromkeys(row["threads"] for row in shape_rows))
        for group, n_threads in enumerate(threads):
            group_rows = {row["framework"]: row for row in shape_rows if row["threads"] == n_threads}
            for k, framework in enumerate(frameworks):
                row = group_rows.get(framework)
                if row is None:
                    continue
                x = group - 0.4 + width * (k + 0.5)
                is_gdcore = framework == "gdcore"
                ax.bar(x, row["seconds"], width * 0.92, color=_COLOURS[framework],
                       edgecolor="black" if is_gdcore else "none", linewidth=1.2,
                       label=row["label"] if group == 0 else None, zorder=2)
                text = f"{row['seconds']:.3g} s" if is_gdcore else f"{row['ratio']:.2f}×"
                ax.annotate(text, (x, row["seconds"]), xytext=(0, 2), textcoords="offset points",
                            ha="center", va="bottom", fontsize=7, rotation=90 if len(frameworks) > 4 else 0,
                            fontweight="bold" if is_gdcore else "normal")
            if "roofline" in group_rows:
                ax.hlines(group_rows["roofline"]["seconds"], group - 0.42, group + 0.42,
                          colors="black", linestyles="dashed", linewidth=1, zorder=3,
                          label="GEMM roofline (BLAS only)" if group == 0 else None)
        ax.set_xticks(range(len(threads)))
        ticks = []
        for t in threads:  # "1 thread\n(pinned)", "2 threads\n(all cores)", "1 thread"
            _, _, qualifier = _threads_label(next(r for r in shape_rows if r["threads"] == t)).partition(" ")
            ticks.append(f"{t} thread{'s' if t > 1 else ''}" + (f"\n{qualifier}" if qualifier else ""))
        ax.set_xticklabels(ticks)
        sizes, batch_size = SHAPES[shape]
        ax.set_title(f"{shape}: {'-'.join(map(str, sizes))}, batch {batch_size}", fontsize=10)
        ax.set_ylim(0, max(row["seconds"] for row in shape_rows) * 1.25)
        ax.grid(axis="y", alpha=0.3, zorder=0)
        ax.spines[["top", "right"]].set_visible(False)
    axes[0][0].set_ylabel("seconds per epoch (lower is better)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: "roofline" in labels[i])  # roofline last
    handles, labels = [handles[i] for i in order], [labels[i] for i in order]
    # As many columns as the figure's width holds, 4 at most: one panel (5.4 in) holds two of
    # the longer labels ("scikit-learn MLPClassifier"), and 4 columns ran off both sides of it.
    renderer = figure.canvas.get_renderer()
    for ncol in range(min(4, len(labels)), 0, -1):
        legend = figure.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8,
                               frameon=False)
        box = legend.get_window_extent(renderer)
        if ncol == 1 or (box.x0 >= 0 and box.x1 <= figure.bbox.width):
            break
        legend.remove()
    samples = rows[0]["samples"]
    title = (f"One training epoch, {samples:,} samples, float32 (labels: gdcore in seconds, "
             "peers as time / gdcore)")
    if len(shapes) == 1:  # one panel is too narrow for the title on one line
        title = title.replace(" (labels", "\n(labels")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout(rect=(0, box.y1 / figure.bbox.height + 0.01, 1, 1))  # panels above it
    # bbox_inches: should anything still overrun the figure (a longer label), the image grows
    figure.savefig(path, dpi=130, bbox_inches="tight")  # no pyplot: nothing to close, the figure is just dropped


def _default_rows_for_plot(rows, samples):
    """The default table's rows in the peer-suite form, for --plot without --peers. Nothing is
    pinned in that mode (one process, every core allowed), and the chart says so."""
    cpus = _usable_cpus()
    out = []
    for row in rows:
        common = {"shape": row["shape"], "threads": row["threads"], "samples": samples,
                  "all_cores": cpus is None or row["threads"] >= len(cpus), "pinned": False}
        for framework, label in (("gdcore", "gdcore"), ("numpy", "NumPy reference"),
                                 ("roofline", "GEMM roofline (BLAS only)")):
            if row.get(framework):
                out.append(dict(common, framework=framework, label=label, seconds=row[framework],
                                ratio=row[framework] / row["gdcore"]))
    return out


def _samples(text):
    """argparse type of --samples: an int in [1, MAX_SAMPLES], refused while parsing."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_SAMPLES:
        raise argparse.ArgumentTypeError(f"expected an int in [1, {MAX_SAMPLES:,}], got {text!r}")
    return value


def _default_threads():
    """One thread, then all the cores this process may use: the two rows the suite compares."""
    cores = usable_cores()
    return "1" if cores == 1 else f"1,{cores}"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="gdcore bench", description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="small,wide",
                        help=f"comma-separated, from {', '.join(SHAPES)} (default: small,wide)")
    parser.add_argument("--threads", default=_default_threads(),
                        help="comma-separated thread counts (default: 1 and every usable core, "
                             f"here {_default_threads()})")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement; the median is kept")
    parser.add_argument("--samples", type=_samples, default=60000,
                        help=f"rows per epoch, at most {MAX_SAMPLES:,} (default 60000)")
    parser.add_argument("--no-numpy", action="store_true", help="skip the NumPy reference")
    parser.add_argument("--peers", help=f"also train with these peers, each in its own pinned process: "
                        f"all, or comma-separated from {', '.join(PEERS)}")
    parser.add_argument("--max-seconds", type=float, default=120,
                        help="with --peers: start no further run of a measurement once its timed "
                             "runs total this many seconds (default 120; the table says so)")
    parser.add_argument("--retries", type=int, default=0,
                        help="with --peers: measure again, up to this many times, when other "
                             "processes kept the cores busy (default 0)")
    parser.add_argument("--markdown", type=output_file, help="also write the table to this file")
    parser.add_argument("--plot", type=output_file,
                        help="write a bar chart (PNG) to this file; needs matplotlib")
    args = parser.parse_args(argv)
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown:
        parser.error(f"unknown shape(s) {unknown}; choose from {list(SHAPES)}")
    try:
        threads = [int(t) for t in args.threads.split(",")]
    except ValueError:
        parser.error(f"--threads takes comma-separated integers, got {args.threads!r}")
    if not shapes:
        parser.error("--shapes names no shape")
    if args.repeats < 1 or any(t < 1 for t in threads):
        parser.error("--repeats and --threads must be positive")
    if max(threads) > MAX_THREADS:
        parser.error(f"--threads must be at most {MAX_THREADS}, got {max(threads)}")
    if not 0 < args.max_seconds < float("inf"):  # also refuses nan
        parser.error(f"--max-seconds must be a finite number > 0, got {args.max_seconds}")
    if args.plot and not args.plot.lower().endswith(".png"):
        parser.error(f"--plot writes a PNG: give a .png file name, got {args.plot!r}")
    if args.retries < 0:
        parser.error("--retries must be 0 or more")
    peers = None
    if args.peers is not None:
        try:
            peers = parse_peers(args.peers)
        except ValueError as error:
            parser.error(str(error))
        cpus = _usable_cpus()
        if cpus is not None and max(threads) > len(cpus):
            parser.error(f"--threads {max(threads)} is more than the {len(cpus)} cores this "
                         "process may use; peers are pinned to distinct cores")
    plot = args.plot
    if plot and importlib.util.find_spec("matplotlib") is None:
        print(f"note: --plot {plot} needs matplotlib (pip install matplotlib); no plot will be "
              "written", file=sys.stderr)
        plot = None

    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if var in os.environ:
            print(f"note: {var}={os.environ[var]} is set; it can slow OpenBLAS (see --help)")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"{args.samples} samples per epoch, float32, SGD Nesterov, cross-entropy; "
          f"median of {args.repeats}")
    if peers is not None:
        return _main_peers(args, shapes, threads, peers, plot)

    X, y = synthetic_mnist(args.samples)
    rows = []
    for shape in shapes:
        for n_threads in threads:
            rows.append(bench_shape(shape, X, y, n_threads, args.repeats, not args.no_numpy))
            print(format_table(rows[-1:]).splitlines()[-1], flush=True)
    _report(format_table(rows), args.markdown, plot,
            _default_rows_for_plot(rows, args.samples) if plot else None)
    return rows


def _report(text, markdown, plot, chart_rows):
    """Print the table (and notes), write it to `markdown` and the chart to `plot` if given."""
    print()
    print(text)
    if markdown:
        with open(markdown, "w") as handle:
            handle.write(text + "\n")
    if plot:
        plot_rows(chart_rows, plot)
        print(f"plot written to {plot}")


def _main_peers(args, shapes, threads, peers, plot):
    if args.no_numpy and "numpy" in peers:
        peers.remove("numpy")
    skipped = [FRAMEWORKS[p][0] + f" ({p}: pip install {'scikit-learn' if p == 'sklearn' else FRAMEWORKS[p][1]})"
               for p in peers if not peer_installed(p)]
    for line in skipped:
        print(f"note: skipping {line}: not installed")
    peers = [p for p in peers if peer_installed(p)]
    print(format_peer_table([]), flush=True)
    load_before = _load_average()
    rows, failures = run_peer_suite(shapes, threads, peers, args.repeats, args.samples,
                                    args.max_seconds, retries=args.retries)
    load = (load_before, _load_average()) if load_before is not None else None
    sgemm = None
    if len(threads) > 1:  # the yardstick of the thread scaling, measured once the suite is done
        sgemm = {t: _peers.sgemm_gflops(t) for t in (min(threads), max(threads))}
    notes = suite_notes(rows, shapes, args.repeats, args.samples, args.max_seconds, skipped,
                        failures, load, sgemm)
    text = format_peer_table(rows) + "\n\n" + "\n".join(f"- {line}" for line in notes)
    _report(text, args.markdown, plot, rows)
    return rows


if __name__ == "__main__":  # through gdcore's command line, for its one-line errors
    from .cli import main as cli_main
    sys.exit(cli_main(["bench", *sys.argv[1:]]))
