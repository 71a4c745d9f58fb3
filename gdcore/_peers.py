"""One benchmark measurement per process: one epoch of the same MLP in gdcore or in a peer.

``gdcore bench --peers ...`` (gdcore/bench.py) starts this file once per (framework, shape,
threads), as a script::

    python path/to/gdcore/_peers.py --framework torch --setup setup.npz --batch-size 64 \
        --threads 1 --cpus 0 --repeats 3 --out result

so that the CPU affinity and the thread settings (OMP/OPENBLAS/MKL_NUM_THREADS, XLA_FLAGS) are in
place before NumPy or the framework is loaded, and so that frameworks never share a process
(each brings its own OpenMP and BLAS). Nothing heavy is imported at module level for that reason;
``gdcore`` itself is imported only by the gdcore and NumPy-reference trainers.

Every trainer runs the same epoch: the float32 data of :func:`synthetic_mnist`, the rows in the
order of the permutation in the setup file (gdcore's ``epoch_permutation(n, 0, 0)``), batches of
``batch_size`` rows with a smaller last batch when ``batch_size`` does not divide ``n``, starting
from the weights in the setup file (gdcore's ``MLP(sizes, seed=0)``), relu hidden layers,
identity output, softmax cross-entropy (mean over the batch) and SGD with Nesterov momentum in
PyTorch's form (``v ← μv + g``, ``p ← p − lr·(g + μv)``, ``v`` starting at zero).

What one timed run covers: from the framework's copy of the data set (made once, untimed:
``torch.from_numpy``, ``jax.device_put``) and freshly reset weights and optimizer state (untimed)
to the trained weights, including each batch's row gather through the permutation and, for JAX,
``block_until_ready``. Every framework first trains one untimed warm-up epoch (JAX compiles
there; the others start their thread pools and fault in their memory). The loss reported is
the epoch's mean training loss ``Σ_b loss_b·B_b / n`` (each batch's loss before its update), as
gdcore's ``History`` and scikit-learn's ``loss_`` define it.
"""
import argparse
import contextlib
import functools
import json
import os
import statistics
import sys
import time
import warnings

LR, MOMENTUM = 0.01, 0.9
#: batches of the untimed setup check (see measure)
CHECK_BATCHES = 3
#: OpenBLAS's worker threads spin for a while after a multi-threaded call (THREAD_TIMEOUT: 2^28
#: cycles by default, ~0.1 s) before they sleep, and an epoch timed in that window shares the
#: cores with them (small at 2 threads right after a roofline run: 0.174 -> 0.222 s per epoch;
#: after this pause, 0.171-0.178 s). The benchmark waits this long after BLAS work of its own.
BLAS_SPIN_SECONDS = 0.5
#: /proc/stat counts busy time in clock ticks (USER_HZ: 10 ms), process_time in nanoseconds, so
#: each timed run's "other load" is off by up to a tick per CPU (a 0.6 ms run that saw /proc/stat
#: move by one tick read 15.8 busy cores on a one-core pin). The figure is given only where that
#: error, summed over the runs, stays within this many cores, gdcore bench's warning level
#: (bench.BUSY_CORES): rounding alone then never raises its warning. Else it is unknown (None).
OTHER_LOAD_RESOLUTION = 0.2


@contextlib.contextmanager
def blas_threads(threads, pause=BLAS_SPIN_SECONDS):
    """BLAS work in the benchmark's own process: on ``threads`` BLAS threads, then ``pause``
    seconds, so that a gdcore epoch timed next has the cores to itself."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(threads, user_api="blas"):
        yield
    time.sleep(pause)


def roofline_run(sizes, batch_size, n_samples, threads):
    """(seconds, FLOPs) of one run of an epoch's GEMMs alone, BLAS on ``threads`` threads."""
    import numpy as np
    from gdcore import _core
    with blas_threads(threads):
        return _core.gemm_epoch_seconds(np.array(sizes, dtype=np.int64), batch_size, n_samples)


def sgemm_gflops(threads, n=2048, repeats=3):
    """GFLOP/s of an n×n×n sgemm of SciPy's BLAS (the one gdcore and the roofline call) on
    ``threads`` BLAS threads: the best of ``repeats`` calls after a warm-up one, into a
    preallocated output. The reference for how far a multi-threaded epoch should scale: the
    issue measures 1 -> 16 threads against it."""
    import numpy as np
    from scipy.linalg.blas import sgemm
    a = np.full((n, n), 0.01, dtype=np.float32, order="F")
    c = np.zeros((n, n), dtype=np.float32, order="F")
    best = float("inf")
    with blas_threads(threads):
        for call in range(repeats + 1):
            start = time.perf_counter()
            sgemm(1.0, a, a, beta=0.0, c=c, overwrite_c=1)
            if call > 0:
                best = min(best, time.perf_counter() - start)
    return 2.0 * n ** 3 / best / 1e9


#: name → (label in tables, module that must be importable)
FRAMEWORKS = {
    "gdcore": ("gdcore", "gdcore"),
    "numpy": ("NumPy reference", "numpy"),
    "torch": ("PyTorch eager", "torch"),
    "sklearn": ("scikit-learn MLPClassifier", "sklearn"),
    "jax": ("JAX jit per step", "jax"),
    "jax_scan": ("JAX jit + lax.scan epoch", "jax"),
}


def synthetic_mnist(n_samples, seed=0):
    """MNIST-shaped data: 784 features in [0, 1), labels 0..9 (float32 X, int64 y)."""
    import numpy as np
    rng = np.random.default_rng(seed)
    return rng.random((n_samples, 784), dtype=np.float32), rng.integers(0, 10, n_samples)


def _batches(n_samples, batch_size):
    """(start, stop) of every batch: full batches, then the smaller last one if any."""
    return [(start, min(start + batch_size, n_samples)) for start in range(0, n_samples, batch_size)]


class _Trainer:
    """reset() restores the initial weights and optimizer state (untimed); epoch() trains one
    epoch and returns its mean loss (timed); weights() gives [W0, b0, ...] with W of shape
    (n_in, n_out) as NumPy arrays."""

    def __init__(self, X, y, perm, init, batch_size, threads):
        self.X, self.y, self.perm, self.init = X, y, perm, init
        self.batch_size = min(batch_size, X.shape[0])
        self.threads = threads
        self.sizes = [init[0].shape[0]] + [W.shape[1] for W in init[0::2]]

    def warm_up(self):
        """One untimed epoch: JAX compiles here; the others fault in their workspace, start
        their thread pools and fill the caches, which costs up to 2x on a first epoch here."""
        self.reset()
        self.epoch()

    def version(self):
        return ""


class GdcoreTrainer(_Trainer):
    def __init__(self, *args):
        super().__init__(*args)
        import numpy as np
        import gdcore
        self.gd = gdcore
        # The timed epoch is gdcore's own path: fit(seed=0) visits the rows in
        # epoch_permutation(n, 0, 0). Another order (the check's first batches) goes in as
        # pre-permuted rows with shuffle=False.
        self.own_order = np.array_equal(self.perm, gdcore.epoch_permutation(len(self.X), 0, 0))

    def version(self):
        return self.gd.__version__

    def reset(self):
        self.model = self.gd.MLP(self.sizes, activation="relu", seed=0)
        self.model.set_weights(self.init)
        self.optimizer = self.gd.optim.SGD(lr=LR, momentum=MOMENTUM, nesterov=True)

    def epoch(self):
        if self.own_order:
            X, y, order = self.X, self.y, {"seed": 0}
        else:
            X, y, order = self.X[self.perm], self.y[self.perm], {"shuffle": False}
        history = self.model.fit(X, y, optimizer=self.optimizer, epochs=1,
                                 batch_size=self.batch_size, n_threads=self.threads, verbose=0,
                                 **order)
        return history.history["loss"][0]

    def weights(self):
        return self.model.get_weights()

    def roofline(self):
        return roofline_run(self.sizes, self.batch_size, self.X.shape[0], self.threads)


class NumpyTrainer(_Trainer):
    def version(self):
        import numpy as np
        return np.__version__

    def reset(self):
        from gdcore.reference import ReferenceMLP
        activations = ["relu"] * (len(self.sizes) - 2) + ["identity"]
        self.reference = ReferenceMLP([w.copy() for w in self.init], activations)

    def epoch(self):
        return self.reference.train_epoch(self.X, self.y, self.perm, self.batch_size,
                                          "cross_entropy", LR, momentum=MOMENTUM, nesterov=True)

    def weights(self):
        return self.reference.get_weights()


class TorchTrainer(_Trainer):
    def __init__(self, *args):
        super().__init__(*args)
        import torch
        torch.set_num_threads(self.threads)
        self.torch = torch
        self.X_t, self.y_t = torch.from_numpy(self.X), torch.from_numpy(self.y)
        self.perm_t = torch.from_numpy(self.perm)

    def version(self):
        return self.torch.__version__

    def reset(self):
        torch = self.torch
        layers = []
        for i in range(len(self.sizes) - 1):
            linear = torch.nn.Linear(self.sizes[i], self.sizes[i + 1])
            with torch.no_grad():  # torch keeps the weight as (n_out, n_in): W.T
                linear.weight.copy_(torch.from_numpy(self.init[2 * i].T))
                linear.bias.copy_(torch.from_numpy(self.init[2 * i + 1]))
            layers.append(linear)
            if i < len(self.sizes) - 2:
                layers.append(torch.nn.ReLU())
        self.model = torch.nn.Sequential(*layers)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM,
                                         nesterov=True)

    def epoch(self):
        cross_entropy = self.torch.nn.functional.cross_entropy
        total = 0.0
        for start, stop in _batches(len(self.perm_t), self.batch_size):
            rows = self.perm_t[start:stop]
            loss = cross_entropy(self.model(self.X_t.index_select(0, rows)),
                                 self.y_t.index_select(0, rows))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += loss.item() * (stop - start)
        return total / len(self.perm_t)

    def weights(self):
        out = []
        for layer in self.model:
            if isinstance(layer, self.torch.nn.Linear):
                out += [layer.weight.detach().numpy().T.copy(), layer.bias.detach().numpy().copy()]
        return out


class SklearnTrainer(_Trainer):
    """MLPClassifier(solver="sgd") fed the pre-permuted rows with shuffle=False, one partial_fit
    per epoch. Its softmax output layer with log-loss is logits + cross-entropy, its gradient is
    divided by the batch size, alpha=0 removes the L2 term, and its Nesterov step
    (v ← μv − lr·g; p ← p + μv − lr·g) is PyTorch's with v scaled by −lr."""

    def version(self):
        import sklearn
        return sklearn.__version__

    def reset(self):
        import numpy as np
        from sklearn.neural_network import MLPClassifier
        self.model = MLPClassifier(
            hidden_layer_sizes=tuple(self.sizes[1:-1]), activation="relu", solver="sgd",
            alpha=0.0, batch_size=self.batch_size, learning_rate="constant",
            learning_rate_init=LR, momentum=MOMENTUM, nesterovs_momentum=True, shuffle=False,
            max_iter=1, random_state=0)
        # One partial_fit sets up the label binarizer, output activation and so on; then the
        # weights are replaced and the optimizer dropped, so the timed call starts a fresh one
        # (zero velocities) on the shared initial weights.
        with warnings.catch_warnings():  # "batch_size larger than sample size: clipped"
            warnings.simplefilter("ignore")
            self.model.partial_fit(self.X[:2], self.y[:2], classes=np.arange(self.sizes[-1]))
        self.model.coefs_ = [W.copy() for W in self.init[0::2]]
        self.model.intercepts_ = [b.copy() for b in self.init[1::2]]
        del self.model._optimizer

    def epoch(self):
        self.model.partial_fit(self.X[self.perm], self.y[self.perm])
        return float(self.model.loss_)

    def weights(self):
        out = []
        for W, b in zip(self.model.coefs_, self.model.intercepts_):
            out += [W.copy(), b.copy()]
        return out


@functools.lru_cache(maxsize=None)
def _jax_functions():
    """The jitted JAX step (one batch, size static) and scanned epoch (full batches)."""
    from functools import partial
    import jax
    import jax.numpy as jnp

    def loss_fn(params, X_batch, y_batch):
        hidden = X_batch
        for W, b in params[:-1]:
            hidden = jax.nn.relu(hidden @ W + b)
        W, b = params[-1]
        log_p = jax.nn.log_softmax(hidden @ W + b)
        return -jnp.mean(jnp.take_along_axis(log_p, y_batch[:, None], axis=1))

    def sgd_step(params, velocity, X_batch, y_batch):
        loss, grads = jax.value_and_grad(loss_fn)(params, X_batch, y_batch)
        velocity = jax.tree_util.tree_map(lambda v, g: MOMENTUM * v + g, velocity, grads)
        params = jax.tree_util.tree_map(lambda p, g, v: p - LR * (g + MOMENTUM * v),
                                        params, grads, velocity)
        return params, velocity, loss

    @partial(jax.jit, static_argnames="size", donate_argnums=(0, 1))
    def step(params, velocity, X, y, perm, start, size):
        rows = jax.lax.dynamic_slice(perm, (start,), (size,))
        return sgd_step(params, velocity, X[rows], y[rows])

    @partial(jax.jit, static_argnames=("batch_size", "n_batches"), donate_argnums=(0, 1))
    def scanned_epoch(params, velocity, X, y, perm, batch_size, n_batches):
        def body(carry, rows):
            params, velocity, loss = sgd_step(*carry, X[rows], y[rows])
            return (params, velocity), loss
        rows = perm[:n_batches * batch_size].reshape(n_batches, batch_size)
        (params, velocity), losses = jax.lax.scan(body, (params, velocity), rows)
        return params, velocity, losses

    return step, scanned_epoch


class JaxTrainer(_Trainer):
    """One jitted call per batch (the last, smaller batch has its own compiled step)."""
    scan = False

    def __init__(self, *args):
        super().__init__(*args)
        import numpy as np
        import jax
        self.jax = jax
        self.X_j = jax.device_put(self.X)
        self.y_j = jax.device_put(self.y.astype(np.int32))
        self.perm_j = jax.device_put(self.perm.astype(np.int32))
        self.step, self.scanned_epoch = _jax_functions()

    def version(self):
        return self.jax.__version__

    def reset(self):
        import numpy as np
        put = self.jax.device_put
        self.params = [(put(W), put(b)) for W, b in zip(self.init[0::2], self.init[1::2])]
        self.velocity = [(put(np.zeros_like(W)), put(np.zeros_like(b)))
                         for W, b in zip(self.init[0::2], self.init[1::2])]
        self.jax.block_until_ready((self.params, self.velocity))

    def epoch(self):
        import jax.numpy as jnp
        n_samples = len(self.perm)
        weighted_losses = []  # stay on the device: no sync per step
        if self.scan:
            n_full = n_samples // self.batch_size
            batches = [(n_full * self.batch_size, n_samples)] if n_samples % self.batch_size else []
            if n_full:
                self.params, self.velocity, losses = self.scanned_epoch(
                    self.params, self.velocity, self.X_j, self.y_j, self.perm_j,
                    batch_size=self.batch_size, n_batches=n_full)
                weighted_losses.append(losses.sum() * self.batch_size)
        else:
            batches = _batches(n_samples, self.batch_size)
        for start, stop in batches:
            self.params, self.velocity, loss = self.step(
                self.params, self.velocity, self.X_j, self.y_j, self.perm_j, start,
                size=stop - start)
            weighted_losses.append(loss * (stop - start))
        total = jnp.sum(jnp.stack(weighted_losses))
        self.jax.block_until_ready(self.params)
        return float(total) / n_samples

    def weights(self):
        import numpy as np
        out = []
        for W, b in self.params:
            out += [np.asarray(W), np.asarray(b)]
        return out


class JaxScanTrainer(JaxTrainer):
    """The full batches of the epoch as one jitted jax.lax.scan, then the smaller last batch
    (if any) through the per-step program."""
    scan = True


TRAINERS = {"gdcore": GdcoreTrainer, "numpy": NumpyTrainer, "torch": TorchTrainer,
            "sklearn": SklearnTrainer, "jax": JaxTrainer, "jax_scan": JaxScanTrainer}


def measure(framework, X, y, perm, init, batch_size, threads, repeats, max_seconds=None,
            roofline=False, check_batches=CHECK_BATCHES):
    """After one untimed warm-up epoch, train ``repeats`` epochs, each from the initial weights
    and a fresh optimizer state, and time each epoch.

    Returns a dict: ``times`` (seconds of each timed epoch), ``loss`` (mean training loss of
    the last, the same for every run up to rounding), ``weights`` ([W0, b0, ...] after the
    last), ``version``, ``capped`` (True when ``max_seconds`` stopped the runs early),
    ``other_load`` (how many of this process's cores anything else kept busy during the timed
    runs, see _OtherLoad; None where unknown), ``check_loss`` and ``check_weights`` (the
    same after only the first ``check_batches`` batches, untimed: see below), and with
    ``roofline`` (gdcore only) ``roofline`` (median seconds) and ``flops``: one roofline run
    after each timed epoch (then a pause, see blas_threads), so that a slow phase of a shared
    machine (on this project's VM two-thread epochs, the roofline's too, run up to 1.5× slower
    in phases of seconds to minutes) falls on both and the share of the roofline compares like
    with like.

    Why the check: a whole epoch of the wide model (469 steps, random labels) is chaotic in
    float32. Two correct runs that differ only in rounding (the NumPy reference with 1 and 2 BLAS
    threads, or float32 against float64) end with weights about 0.5 apart relative to the
    epoch's update, though their losses agree to 1e-4; after 10 batches they agree to ~1e-5.
    The first batches tell a different setup (order, weights, loss scaling, momentum rule, lr)
    from rounding; the epoch's loss tells that the whole epoch trained. Three batches, not more:
    a relu input within rounding of 0 may land on the other side in one framework, and from
    there the runs part a little more with every batch. On wide's first batch one unit's input
    is 6e-7 (float64); gdcore's float32 sum puts it on the other side of 0 from NumPy's and
    PyTorch's, and that one unit takes the weights 4e-3 apart after 1 batch, 6e-3 after 3 and
    3e-2 after 10, where a different setup is 0.1 or more from the first batch on.
    """
    trainer = TRAINERS[framework](X, y, perm, init, batch_size, threads)
    trainer.warm_up()
    times, roofline_runs, capped = [], [], False
    load = _OtherLoad()
    for run in range(repeats):
        trainer.reset()
        with load.window():  # the timed epoch alone: not the reset, the roofline or its pause
            start = time.perf_counter()
            loss = trainer.epoch()
            times.append(time.perf_counter() - start)
        if roofline:
            roofline_runs.append(trainer.roofline())
        if max_seconds is not None and sum(times) >= max_seconds and run + 1 < repeats:
            capped = True
            break
    result = {"times": times, "loss": loss, "weights": trainer.weights(),
              "version": trainer.version(), "capped": capped, "other_load": load.cores()}
    if roofline:
        result["roofline"] = statistics.median(seconds for seconds, _ in roofline_runs)
        result["flops"] = roofline_runs[0][1]
    check_rows = check_batches * trainer.batch_size
    if check_rows < len(perm):
        trainer = TRAINERS[framework](X, y, perm[:check_rows], init, batch_size, threads)
        trainer.reset()
        result["check_loss"] = trainer.epoch()
        result["check_weights"] = trainer.weights()
    else:
        result["check_loss"], result["check_weights"] = loss, result["weights"]
    return result


class _OtherLoad:
    """The ``other_load`` of measure: what the CPUs this process may run on spent busy
    (/proc/stat, hypervisor steal included) beyond this process's own CPU time (process_time),
    in cores, over the windows of the timed runs alone. One window over all the runs counted the
    roofline runs and the pause after each (blas_threads) too, where a process that waits for
    idle cores gets them and reads as load the timed runs never met."""

    def __init__(self):
        self.busy = self.own = self.wall = 0.0
        self.windows = 0
        self.known = True

    @contextlib.contextmanager
    def window(self):
        # process_time outside the /proc/stat reads: reading it is this process's own work
        own = time.process_time()
        busy, wall = _cpu_busy_seconds(), time.perf_counter()
        yield
        wall_end, busy_end = time.perf_counter(), _cpu_busy_seconds()
        own_end = time.process_time()
        if busy is None or busy_end is None:
            self.known = False
            return
        self.busy += busy_end - busy
        self.own += own_end - own
        self.wall += wall_end - wall
        self.windows += 1

    def cores(self):
        """Cores that anything else kept busy, in [0, the CPUs this process may run on]; None
        where /proc/stat could not be read, or where its ticks could be off by more than
        OTHER_LOAD_RESOLUTION cores over windows this short (more --samples: longer runs;
        more repeats add a window, and its tick, per run, so they do not help)."""
        cpus = _own_cpus()
        if not self.known or not self.windows or self.wall <= 0 or not cpus:
            return None
        if self.windows * len(cpus) * _clock_tick() / self.wall > OTHER_LOAD_RESOLUTION:
            return None
        return min(max(0.0, (self.busy - self.own) / self.wall), float(len(cpus)))


def _own_cpus():
    """The CPUs this process may run on, or None where that is not known (not Linux)."""
    try:
        return os.sched_getaffinity(0)
    except AttributeError:
        return None


def _clock_tick():
    """Seconds per /proc/stat tick (1 / USER_HZ)."""
    return 1.0 / os.sysconf("SC_CLK_TCK")


def _cpu_busy_seconds():
    """CPU seconds that the CPUs this process may run on have spent busy or stolen by the
    hypervisor (/proc/stat), or None where that is not known."""
    own = _own_cpus()
    if own is None:
        return None
    try:
        cpus = {f"cpu{cpu}" for cpu in own}
        total = 0
        with open("/proc/stat") as handle:
            for line in handle:
                fields = line.split()
                if fields and fields[0] in cpus:
                    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[1:9])
                    total += user + nice + system + irq + softirq + steal
        return total * _clock_tick()
    except (AttributeError, OSError, ValueError):
        return None


def thread_environment(threads, framework=None):
    """Environment variables that hold a framework to ``threads`` threads; set before import."""
    env = {name: str(threads) for name in
           ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    if framework in ("jax", "jax_scan") and threads == 1:
        # Eigen's multi-threaded kernels off. This does not hold JAX to one thread (XLA's CPU
        # client still runs work on threads of its own: two busy in a loop of jitted matmuls
        # here, with or without it); the affinity pin (--cpus) does, and JAX has no thread-count
        # setting. XLA_FLAGS takes only --flags: a bare word (this once held
        # "intra_op_parallelism_threads=1", a TensorFlow option) silently drops those after it.
        env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false"
    return env


def main(argv=None):
    parser = argparse.ArgumentParser(description="one epoch in one framework (see gdcore bench)")
    parser.add_argument("--framework", required=True, choices=sorted(TRAINERS))
    parser.add_argument("--setup", required=True,
                        help=".npz with perm and the initial weights W0, b0, W1, ...")
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--cpus", help="comma-separated CPU ids to pin the process to")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-seconds", type=float,
                        help="stop starting new runs once the timed runs total this long")
    parser.add_argument("--out", required=True, help="writes OUT.json and OUT.npz (weights)")
    args = parser.parse_args(argv)

    # Before NumPy, BLAS, OpenMP or the framework is loaded: their thread pools size themselves
    # from the affinity mask and these variables when they start.
    if args.cpus:
        os.sched_setaffinity(0, [int(cpu) for cpu in args.cpus.split(",")])
    os.environ.update(thread_environment(args.threads, args.framework))

    import numpy as np
    from threadpoolctl import threadpool_limits
    threadpool_limits(args.threads)  # NumPy's and SciPy's BLAS (numpy, sklearn, roofline)

    with np.load(args.setup) as setup:
        perm = setup["perm"]
        init = [setup[f"w{i}"] for i in range(len(setup.files) - 1)]
    X, y = synthetic_mnist(len(perm))
    result = measure(args.framework, X, y, perm, init, args.batch_size, args.threads,
                     args.repeats, args.max_seconds, roofline=args.framework == "gdcore")
    weights, check_weights = result.pop("weights"), result.pop("check_weights")
    np.savez(args.out + ".npz", **{f"epoch{i}": w for i, w in enumerate(weights)},
             **{f"check{i}": w for i, w in enumerate(check_weights)})
    result["cpus"] = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    with open(args.out + ".json", "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    # Run as a script, sys.path[0] is this package's folder, whose modules (optim, losses, ...)
    # would shadow top-level names a framework may import; the installed gdcore is found anyway.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    main()
