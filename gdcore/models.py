"""Models: a stack of Dense layers over one flat parameter buffer, trained by the C core."""
import copy
import math
import signal
import sys
import threading
import time
import warnings

import numpy as np

from . import _core, losses, optim, schedules
from . import callbacks as callbacks_module
from ._threads import blas_single_thread, new_lock, resolve_n_threads, usable_cores
from ._validation import (_conversion_note, check_bool, check_non_negative_number,
                          check_positive_int, check_seed, check_X, check_y, finite_float)
from .layers import NEGATIVE_SLOPE, ACTIVATIONS, Dense, Dropout, check_activation

_MAX_LAYERS = 64  # csrc/gd_train.c GD_MAX_LAYERS
# A weight the update made inf or NaN: a step beyond the dtype's range, or 0/0 (an adaptive
# optimizer with eps=0 on a parameter whose gradient has always been 0)
_UPDATE_NONFINITE = ("made a weight infinite or NaN (a step beyond the range of {}, or 0/0 as "
                     "with eps=0)")
_STEP_OVERFLOW = ("train_step: the update " + _UPDATE_NONFINITE + "; the weights are restored. "
                  "Try a smaller learning rate or weight decay")
_PREDICT_CHUNK_ROWS = 128  # csrc/gd_train.c GD_PREDICT_ROWS: one chunk runs without threads


def _check_sample_weight(sample_weight, n_samples):
    """sample_weight as an array of n_samples finite numbers >= 0, or an error naming it."""
    try:
        sw = np.asarray(sample_weight)
    except ValueError:  # ragged nested sequences
        raise ValueError(f"sample_weight must be a 1-D array of {n_samples} numbers") from None
    if sw.dtype.kind not in "biuf":
        raise TypeError(f"sample_weight must be numeric, got dtype {sw.dtype}")
    if sw.shape != (n_samples,):
        raise ValueError(f"sample_weight must have shape ({n_samples},), got {sw.shape}")
    if not np.isfinite(sw).all() or (sw < 0).any():
        raise ValueError("sample_weight must be finite and >= 0")
    return sw


def epoch_log_keys(accuracy, validation, skipped_batches=False):
    """The keys of every epoch's logs in fit (its History, callbacks and schedule monitors):
    loss, accuracy for class targets, both again as val_* with validation data, seconds, lr,
    and skipped_batches under on_divergence="ignore"."""
    scores = ["loss"] + (["accuracy"] if accuracy else [])
    keys = set(scores) | {"seconds", "lr"} | ({"skipped_batches"} if skipped_batches else set())
    return keys | ({"val_" + k for k in scores} if validation else set())


class DivergenceError(FloatingPointError):
    """Training diverged. ``epoch`` and ``batch`` say where (0-based). ``update`` is False when
    the loss or a gradient became NaN or infinite (the update of that batch was not applied),
    True when the update itself made a weight infinite or NaN (the weights were restored)."""

    def __init__(self, message, epoch=None, batch=None, update=False):
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch
        self.update = update


def _raise_for_status(status, what, model=None):
    if status == _core.OK:
        return
    if model is not None and status in (_core.ERR_NONFINITE, _core.ERR_OVERFLOW):
        model._check_params_finite(what)
    if status == _core.ERR_LABEL:
        raise ValueError(f"{what}: a class index in y is outside [0, n_outputs)")
    if status == _core.ERR_TARGET:
        raise ValueError(f"{what}: y must be in [0, 1] for binary_cross_entropy")
    if status == _core.ERR_NONFINITE:
        raise DivergenceError(f"{what}: the loss or a gradient is NaN or infinite")
    raise RuntimeError(f"{what}: the C core reported error {status} (a gdcore bug; please report it)")


def _sigmoid(z):
    """σ(z) in place, full relative precision for large |z| and no overflow: exp(−|z|) only."""
    e = np.exp(-np.abs(z))
    np.divide(np.where(z >= 0, 1.0, e), 1.0 + e, out=z)
    return z


def _dropout_key(seed, epoch):
    """Key of the dropout masks of epoch ``epoch`` of a fit with ``seed`` (a 64-bit hash)."""
    return int(np.random.SeedSequence([seed, epoch, 0x44524F50]).generate_state(1, np.uint64)[0])


def epoch_permutation(n_samples, seed, epoch):
    """The row order of epoch ``epoch`` (0-based) for a fit with ``seed``: a NumPy permutation
    drawn from ``default_rng([seed, epoch])``, so any epoch can be reproduced on its own."""
    return np.random.default_rng([seed, epoch]).permutation(n_samples).astype(np.int64, copy=False)


class History:
    """What fit recorded: ``history[name]`` is a list with one value per epoch.

    Keys: ``loss`` (mean training loss over the epoch, penalties included), ``accuracy``
    (training accuracy, for cross_entropy, hinge and binary_cross_entropy), ``skipped_batches``
    (batches left out, with ``on_divergence="ignore"`` only), ``seconds`` (wall time of the
    epoch's training), ``lr`` (learning rate of the epoch's first batch), and with validation
    data ``val_loss`` and, where ``accuracy`` is logged, ``val_accuracy``.
    """

    def __init__(self):
        self.history = {}
        self.epoch = []
        self.diverged = None  # (epoch, batch) when fit(on_divergence="stop") stopped there

    def _append(self, epoch, values):
        self.epoch.append(epoch)
        for key, value in values.items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={sorted(self.history)})"


class _Progress:
    """Progress of fit: a live bar on a terminal (tqdm when installed, else a plain one), one line
    per epoch when the output is not a terminal or verbose=2, nothing at verbose=0."""

    def __init__(self, verbose, epochs, n_batches, stream=None):
        self.stream = stream if stream is not None else sys.stderr
        self.verbose = verbose
        self.epochs = epochs
        self.n_batches = n_batches
        self.live = verbose == 1 and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.bar = None
        self._tqdm = None
        self._mid_line = False  # a plain bar drawn and its epoch's line not yet ended
        if self.live:
            try:
                from tqdm.auto import tqdm
                self._tqdm = tqdm
            except ImportError:
                pass

    def batches_per_update(self):
        return max(1, self.n_batches // 40) if self.live else self.n_batches

    def update(self, epoch, batches_done):
        if not self.live:
            return
        if self._tqdm is not None:
            if self.bar is None:
                self.bar = self._tqdm(total=self.n_batches, desc=f"Epoch {epoch + 1}/{self.epochs}",
                                      unit="batch", file=self.stream, leave=True)
            self.bar.update(batches_done - self.bar.n)
            return
        width = 30
        filled = width * batches_done // self.n_batches
        bar = "=" * filled + (">" if filled < width else "") + " " * (width - filled - 1)
        self.stream.write(f"\rEpoch {epoch + 1}/{self.epochs} [{bar[:width]}] "
                          f"{batches_done}/{self.n_batches}")
        self.stream.flush()
        self._mid_line = True

    def close(self):
        """End a bar left open by a fit that stopped mid-epoch (divergence, an exception,
        Ctrl-C), so that what is printed next starts on a line of its own."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self._mid_line:
            self.stream.write("\n")
            self.stream.flush()
        self._mid_line = False

    @staticmethod
    def _format(values):
        return " - ".join(f"{k} {v:.4g}" if k != "seconds" else f"{v:.3f}s"
                          for k, v in values.items() if k != "lr")

    def end_epoch(self, epoch, values):
        if not self.verbose:
            return
        if self.bar is not None:
            self.bar.set_postfix_str(self._format(values))
            self.bar.close()
            self.bar = None
            return
        prefix = "\r" if self.live else ""
        self.stream.write(f"{prefix}Epoch {epoch + 1}/{self.epochs} - {self._format(values)}"
                          + " " * 10 + "\n")
        self.stream.flush()
        self._mid_line = False


def _interruptible(main_thread):
    """Whether a core call catches SIGINT: only where Python would raise KeyboardInterrupt for
    it, in the main thread with Python's default handler. A process that ignores SIGINT
    (SIG_IGN, as multiprocessing pool workers often do) or handles it itself keeps that, the
    handler running after the C call. Asked before each call: a callback may install one."""
    return main_thread and signal.getsignal(signal.SIGINT) is signal.default_int_handler


class _DeferredSigint:
    """A block of bookkeeping that a Ctrl-C must not cut in two, such as fit's record of a
    trained epoch (its metrics, the schedule's step, the history entry): cut, it would leave an
    epoch trained but not in ``history_``, and a resume at ``initial_epoch=len(history_.epoch)``
    would train it twice. Where Python's default handler is in place (see _interruptible), one
    that only notes the signal stands in for the block, and KeyboardInterrupt(message) is raised
    at its end."""

    def __init__(self, main_thread, message):
        self.message = message
        self.deferring = _interruptible(main_thread)
        self.caught = False

    def _note(self, signum, frame):
        self.caught = True

    def __enter__(self):
        if self.deferring:
            signal.signal(signal.SIGINT, self._note)
        return self

    def __exit__(self, kind, error, traceback):
        if self.deferring and signal.getsignal(signal.SIGINT) == self._note:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        if self.caught and kind is None:
            raise KeyboardInterrupt(self.message)
        return False


def _same_arguments(cached, given):
    """Whether train_step's arguments (loss, optimizer, l1, l2, n_threads) are the ones its fast
    path was bound with. The numbers' types too: False == 0.0 and 2.0 == 2, but the general path
    refuses l2=False and n_threads=2.0, so they must not slip past it. (Written out, not as a
    loop: this runs on every call of the fast path, whose budget is a few microseconds.)"""
    try:
        return (cached == given and type(cached[2]) is type(given[2])
                and type(cached[3]) is type(given[3]) and type(cached[4]) is type(given[4]))
    except (TypeError, ValueError):  # an argument whose == is not a plain bool: not the same
        return False


def _same_buffers(slots, bound):
    """Whether the optimizer's state buffers are the very arrays a Stepper was bound to (the
    tuple ``bound``; it holds their pointers): a buffer replaced in the list must take the
    general path. Tuple equality tests each pair for identity first, which is all it does when
    nothing was replaced (3x faster than a loop of ``is``); a replaced buffer meets ndarray's
    ==, whose truth value raises for the two or more elements every buffer has."""
    try:
        return slots is not None and tuple(slots) == bound
    except ValueError:
        return False


class Sequential:
    """A multilayer perceptron: Dense layers applied in order.

    All weights and biases live in one contiguous buffer; ``layers[i].W`` (shape (n_in, n_out))
    and ``layers[i].b`` (shape (n_out,)) are NumPy views into it, so editing them edits the model.

    Parameters
    ----------
    layers : list of Dense
        Consecutive layers must agree: ``layers[i].n_out == layers[i + 1].n_in``.
    dtype : {"float32", "float64"}, default="float32"
        Element type of parameters and computation.
    seed : int, default=0
        Seeds the weight initialization and, when fit gets no seed, the shuffling.

    Examples
    --------
    >>> import gdcore as gd
    >>> model = gd.Sequential([gd.Dense(64, 32, activation="relu"), gd.Dense(32, 10)], seed=0)
    >>> X, y = gd.datasets.load_digits()
    >>> hist = model.fit(X / 16, y, loss="cross_entropy", optimizer=gd.optim.SGD(lr=0.1),
    ...                  epochs=5, verbose=0)
    """

    def __init__(self, layers, *, dtype="float32", seed=0):
        if isinstance(layers, (Dense, Dropout)):
            layers = [layers]
        elif isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
            raise TypeError(f"layers must be a list of gdcore.Dense/Dropout, got {type(layers).__name__}")
        layers = list(layers)
        for i, layer in enumerate(layers):
            if not isinstance(layer, (Dense, Dropout)):
                raise TypeError(f"layers[{i}] must be a gdcore.Dense or gdcore.Dropout, "
                                f"got {type(layer).__name__}")
            if isinstance(layer, Dense) and layer.W is not None:
                raise ValueError(f"layers[{i}] already belongs to a model; create a new Dense")
            # A Dense is a view into this model's parameters: listed twice, one of its two
            # places in the buffer would be trained but hidden from get_weights and set_weights.
            first = next(k for k, other in enumerate(layers) if other is layer)
            if isinstance(layer, Dense) and first < i:
                raise ValueError(f"layers[{i}] is the same Dense as layers[{first}]; give each "
                                 "layer its own Dense")
            if isinstance(layer, Dropout) and (i == 0 or i == len(layers) - 1
                                               or not isinstance(layers[i - 1], Dense)):
                raise ValueError(f"layers[{i}]: a Dropout must sit between two Dense layers")
        dense = [layer for layer in layers if isinstance(layer, Dense)]
        if not dense:
            raise ValueError("layers must hold at least one Dense layer")
        if len(dense) > _MAX_LAYERS:
            raise ValueError(f"layers: at most {_MAX_LAYERS} Dense layers are supported, got {len(dense)}")
        positions = [i for i, layer in enumerate(layers) if isinstance(layer, Dense)]
        for i, j in zip(positions, positions[1:]):
            if layers[i].n_out != layers[j].n_in:
                raise ValueError(f"layers[{i}] has {layers[i].n_out} outputs but layers[{j}] "
                                 f"expects {layers[j].n_in} inputs")
        try:  # np.dtype(None) is float64: refuse None explicitly
            dtype = np.dtype(dtype) if dtype is not None else None
        except TypeError:
            dtype = None
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        check_seed(seed)
        self.layers = layers
        self._dense = dense
        self.dtype = dtype
        self.seed = int(seed)
        self._rng = np.random.default_rng(self.seed)
        sizes = np.array([dense[0].n_in] + [layer.n_out for layer in dense], dtype=np.int64)
        acts = np.array([ACTIVATIONS[layer.activation] for layer in dense], dtype=np.int32)
        rates = np.zeros(len(dense))
        for i, layer in enumerate(layers):
            if isinstance(layer, Dropout):
                rates[dense.index(layers[i - 1])] = layer.rate
        n_params = sum((layer.n_in + 1) * layer.n_out for layer in dense)
        if n_params * dtype.itemsize > 2**40:
            raise ValueError(f"layers: the model would have {n_params} parameters, more than fit "
                             "in memory")
        self._network = _core.Network(
            sizes, acts, NEGATIVE_SLOPE, np.array([layer.l1 for layer in dense]),
            np.array([layer.l2 for layer in dense]), rates if rates.any() else None)
        try:
            self._params = np.zeros(n_params, dtype=self.dtype)
            self._grads = np.zeros_like(self._params)
        except MemoryError:
            raise ValueError(f"layers: cannot allocate the model's {n_params} parameters") from None
        self._grad_views = []
        offset = 0
        for layer in dense:
            n_w = layer.n_in * layer.n_out
            layer._bind(self._params[offset:offset + n_w].reshape(layer.n_in, layer.n_out),
                        self._params[offset + n_w:offset + n_w + layer.n_out])
            self._grad_views.append((self._grads[offset:offset + n_w].reshape(layer.n_in, layer.n_out),
                                     self._grads[offset + n_w:offset + n_w + layer.n_out]))
            offset += n_w + layer.n_out
            try:  # the initializers draw float64 temporaries as large as W
                layer.W[...] = layer._initial_weights(self._rng, self.dtype)
            except MemoryError:
                raise ValueError(f"layers: cannot allocate the initial weights of a "
                                 f"{layer.n_in}x{layer.n_out} layer") from None
        assert offset == self._params.size  # the views tile the flat buffer exactly
        self._train_work = np.empty(0, dtype=self.dtype)
        self._forward_work = np.empty(0, dtype=self.dtype)
        self._step_optimizers = {}
        self._has_dropout = bool(rates.any())
        self._fast_step = None  # (key, optimizer, state, slots, version, Stepper, loss)
        self._lock = new_lock(self)
        self.loss_ = None
        self.history_ = None

    # ------------------------------------------------------------------ structure
    @property
    def n_inputs(self):
        """Width of the input rows (the first Dense layer's n_in)."""
        return self._dense[0].n_in

    @property
    def n_outputs(self):
        """Width of the output (the last Dense layer's n_out)."""
        return self._dense[-1].n_out

    @property
    def n_params(self):
        """Number of weights and biases."""
        return self._params.size

    def get_config(self):
        """The model's structure as plain JSON-able data: ``Sequential.from_config(config)``
        rebuilds it (with fresh weights; see gdcore.save/gdcore.load for the parameters)."""
        return {"class": type(self).__name__, "dtype": self.dtype.name, "seed": self.seed,
                "layers": [{"type": "dense", "n_in": layer.n_in, "n_out": layer.n_out,
                            "activation": layer.activation, "init": layer.init,
                            "l1": layer.l1, "l2": layer.l2} if isinstance(layer, Dense)
                           else {"type": "dropout", "rate": layer.rate}
                           for layer in self.layers]}

    @classmethod
    def from_config(cls, config):
        """Build a model from ``get_config()`` output. Raises ValueError on a malformed config."""
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            raise ValueError("config must be a dict with a 'layers' list")
        try:
            layers = [Dropout(spec["rate"]) if spec.get("type") == "dropout" else
                      Dense(spec["n_in"], spec["n_out"], activation=spec["activation"],
                            init=spec.get("init", "auto"), l1=spec.get("l1", 0.0),
                            l2=spec.get("l2", 0.0)) for spec in config["layers"]]
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"config has a malformed layer: {exc!r}") from None
        return Sequential(layers, dtype=config.get("dtype", "float32"), seed=config.get("seed", 0))

    def __getstate__(self):
        """Pickle: structure, parameters, the loss of the last fit and the optimizers train_step
        was given by name (their state too); not the scratch buffers, the lock or the C network
        (rebuilt on load). Waits for a fit running in another thread, as get_weights does: never
        a copy taken in the middle of an update."""
        with self._lock:
            return {"config": self.get_config(), "params": self._params.copy(),
                    "loss": self.loss_, "history": self.history_,
                    "rng": self._rng.bit_generator.state,
                    "step_optimizers": dict(self._step_optimizers)}

    def __setstate__(self, state):
        model = Sequential.from_config(state["config"])
        self.__dict__.update(model.__dict__)
        self._lock = new_lock(self)
        if state["params"].shape != self._params.shape:
            raise ValueError("pickled parameters do not match the pickled structure")
        self._params[...] = state["params"]
        self.loss_ = state["loss"]
        self.history_ = state["history"]
        self._rng.bit_generator.state = state["rng"]
        # train_step's optimizers given by name, state included: a copy steps on as the original.
        # Copied here: copy.copy hands over the original's objects, which two models cannot share
        self._step_optimizers = {name: copy.deepcopy(opt)
                                 for name, opt in state.get("step_optimizers", {}).items()}

    def save(self, path, optimizer=None):
        """Save structure, parameters, generator state, last loss and, when given, the
        optimizer's hyperparameters and state to one versioned .npz file, atomically (a failed
        save leaves the previous file as it was). ``gdcore.load(path)`` reads it back."""
        from . import io  # here: gdcore.io imports this module
        io.save(self, path, optimizer=optimizer)

    def get_weights(self):
        """Return copies of the parameters: ``[W_0, b_0, W_1, b_1, ...]``. Waits for a fit or
        step running in another thread (it updates the weights in place)."""
        with self._lock:
            return [array.copy() for layer in self._dense for array in (layer.W, layer.b)]

    def set_weights(self, weights):
        """Copy ``[W_0, b_0, W_1, b_1, ...]`` into the model. Everything is checked before anything
        is written, so a bad list leaves the model unchanged."""
        if isinstance(weights, (str, bytes, np.ndarray)) or not hasattr(weights, "__iter__"):
            raise TypeError(f"weights must be a list of arrays [W_0, b_0, ...], got "
                            f"{type(weights).__name__}")
        weights = list(weights)
        expected = [array for layer in self._dense for array in (layer.W, layer.b)]
        if len(weights) != len(expected):
            raise ValueError(f"weights must hold {len(expected)} arrays [W_0, b_0, ...], got {len(weights)}")
        converted = []
        for i, (new, old) in enumerate(zip(weights, expected)):
            try:
                arr = np.asarray(new)
            except (TypeError, ValueError, OverflowError) as exc:
                raise ValueError(f"weights[{i}] cannot be read as an array: {exc}") from None
            if arr.dtype.kind not in "biuf":
                raise TypeError(f"weights[{i}] must be real-valued, got dtype {arr.dtype}")
            if arr.shape != old.shape:
                raise ValueError(f"weights[{i}] must have shape {old.shape}, got {arr.shape}")
            with np.errstate(over="ignore"):  # an overflow to inf is reported just below
                converted_arr = arr.astype(self.dtype)
            if not np.isfinite(converted_arr).all():
                raise ValueError(f"weights[{i}] contains NaN or infinity"
                                 + _conversion_note(arr, self.dtype))
            arr = converted_arr
            converted.append(arr)
        with self._lock:
            for new, old in zip(converted, expected):
                old[...] = new

    def __repr__(self):
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"{type(self).__name__}([{inner}], dtype={self.dtype.name!r})"

    # ------------------------------------------------------------------ helpers
    def _workspace(self, kind, length):
        """A scratch buffer of at least ``length`` elements, kept and reused across calls."""
        attr = "_train_work" if kind == "train" else "_forward_work"
        work = getattr(self, attr)
        if work.size < length:
            try:
                work = np.empty(length, dtype=self.dtype)
            except MemoryError:
                need = length * self.dtype.itemsize / 2**30
                cause = ("for batches of this many rows: use a smaller batch_size (or fewer rows "
                         "per train_step or loss_and_grad call)" if kind == "train"
                         else "to predict (it grows with n_threads and with the widest "
                         "hidden layer): use a smaller n_threads or narrower hidden layers")
                raise MemoryError(f"gdcore needs a workspace of {length:,} {self.dtype.name} "
                                  f"values ({need:.3g} GiB) {cause}") from None
            setattr(self, attr, work)
        return work

    def _targets(self, y, loss, n_samples, name="y", x_name="X"):
        y = check_y(y, loss, n_samples, self.n_outputs, self.dtype, name, x_name)
        return (None, y) if loss.targets == "index" else (y, None)

    def _check_params_finite(self, what):
        """On an error path only (one pass over the parameters): a NaN or inf written into the
        weights through a layer's ``W`` or ``b`` view (no check sees such a write) is named as
        such, not blamed on X or on the learning rate."""
        bad = np.flatnonzero(~np.isfinite(self._params))
        if bad.size == 0:
            return
        offset = 0
        for layer in self._dense:
            n_w = layer.n_in * layer.n_out
            if bad[0] < offset + n_w + layer.n_out:
                index, i = int(bad[0]) - offset, self.layers.index(layer)
                where = (f"layers[{i}].W[{index // layer.n_out}, {index % layer.n_out}]"
                         if index < n_w else f"layers[{i}].b[{index - n_w}]")
                break
            offset += n_w + layer.n_out
        raise ValueError(f"{what}: the model's weights contain NaN or infinity (first at "
                         f"{where}), written through a layer's W or b view; set finite weights "
                         "with set_weights")

    def _snapshot(self, state):
        """Copies of the parameters and the optimizer's state, to undo a step that overflowed."""
        return (self._params.copy(), [slot.copy() for slot in state["slots"]], state["step"])

    def _restore(self, snapshot, state):
        params, slots, step = snapshot
        self._params[...] = params
        for slot, saved in zip(state["slots"], slots):
            slot[...] = saved
        state["step"] = step

    def _run_epoch(self, epoch, seed, n_threads, loss_spec, opt_spec, lrs, state, slots, X, y_real,
                   y_index, weights, perm, batch_size, n_batches, work, main_thread,
                   on_divergence, progress, callbacks):
        """One epoch in C: in one call, or in slices of batches when the progress bar or a
        callback asks to see batches. Returns (Σ batch_loss·rows, rows classified right, rows
        trained on, batches skipped, (epoch, batch, why) or None when training must stop,
        whether a Ctrl-C came after the last batch: the epoch is whole, to record, then stop)."""
        loss_sum, correct, rows_used, skipped = 0.0, 0.0, X.shape[0], 0
        first = 0
        snapshot = self._snapshot(state)  # one copy per epoch, to undo an overflowing update
        batch_callbacks = [cb for i, cb in enumerate(callbacks)
                           if callbacks_module.check_batch_frequency(cb, i)]
        # A call ends at the next multiple of any of these, so that every callback (and the
        # progress bar) sees each multiple of its own frequency, whatever the others' are
        frequencies = [progress.batches_per_update()] + [cb.batch_frequency for cb in batch_callbacks]
        while first < n_batches:
            end = min([n_batches] + [(first // f + 1) * f for f in frequencies])
            # the sums go on in C, so the epoch's loss has the same bits however it is sliced
            status, loss_sum, correct, _, bad_batch = _core.train(
                self._network, n_threads, loss_spec, opt_spec, lrs, self._params, self._grads,
                slots, state["step"], X, y_real, y_index, weights, perm, batch_size, first, end,
                work, _interruptible(main_thread), _dropout_key(seed, epoch), state=state,
                loss_start=loss_sum, correct_start=correct)
            if status == _core.INTERRUPTED:
                if bad_batch == n_batches:  # after the epoch's last batch: the epoch is whole,
                    return loss_sum, correct, rows_used, skipped, None, True  # fit records it
                # Stopped between two batches: the model is consistent, history_ holds the
                # finished epochs.
                raise KeyboardInterrupt(f"fit interrupted at epoch {epoch}, batch {bad_batch}")
            if status == _core.ERR_NONFINITE:
                # The C core refused that batch's update: the weights are the last finite ones
                # (unless a callback wrote NaN into them through a layer's view: no divergence).
                self._check_params_finite("fit")
                if on_divergence == "raise":
                    raise DivergenceError(
                        f"fit: the loss or a gradient became NaN or infinite at epoch {epoch}, batch "
                        f"{bad_batch}; the weights are those before that batch. Try a smaller "
                        "learning rate", epoch=epoch, batch=bad_batch)
                if on_divergence == "stop":
                    return loss_sum, correct, rows_used, skipped, (
                        epoch, bad_batch, "the loss or a gradient became NaN or infinite at epoch "
                        f"{epoch}, batch {bad_batch}; the weights are those before that batch"), False
                skipped += 1  # "ignore": leave that batch out and go on
                rows_used -= min(batch_size, X.shape[0] - bad_batch * batch_size)
                first = bad_batch + 1
                if first < end:
                    continue  # the rest of the slice; one the skipped batch ends is reported
            elif status == _core.ERR_OVERFLOW:
                # An update made a weight inf or NaN: that batch's update cannot be undone in
                # place, so the weights go back to the start of the epoch, and training stops
                # under any on_divergence (there is no batch left to skip to).
                self._restore(snapshot, state)
                what = (f"the update of epoch {epoch}, batch {bad_batch} "
                        + _UPDATE_NONFINITE.format(self.dtype.name)
                        + f"; the weights are restored to the start of epoch {epoch}")
                if on_divergence == "raise":
                    raise DivergenceError(f"fit: {what}. Try a smaller learning rate",
                                          epoch=epoch, batch=bad_batch, update=True)
                return loss_sum, correct, rows_used, skipped, (epoch, bad_batch, what), False
            else:
                _raise_for_status(status, "fit")
            progress.update(epoch, end)
            rows_done = min(end * batch_size, X.shape[0]) - (X.shape[0] - rows_used)  # not skipped
            for callback, frequency in zip(batch_callbacks, frequencies[1:]):
                if end % frequency == 0 or end == n_batches:  # as checked for this epoch
                    callback.on_batch_end(end - 1, {"loss": loss_sum / rows_done if rows_done
                                                    else float("nan")})
            first = end
        return loss_sum, correct, rows_used, skipped, None, False

    def _sample_weights(self, sample_weight, class_weight, y_index, loss, n_samples):
        """Per-sample weights (model dtype) from sample_weight and class_weight, or None."""
        if sample_weight is None and class_weight is None:
            return None
        weights = np.ones(n_samples, dtype=np.float64)
        if sample_weight is not None:
            weights *= _check_sample_weight(sample_weight, n_samples)
        if class_weight is not None:
            if y_index is None:
                raise ValueError(f"class_weight needs class-index targets (cross_entropy, hinge), "
                                 f"not {loss.name}")
            counts = np.bincount(y_index, minlength=self.n_outputs)
            if isinstance(class_weight, str) and class_weight == "balanced":
                present = counts > 0
                per_class = np.zeros(self.n_outputs)
                per_class[present] = n_samples / (present.sum() * counts[present])
            elif isinstance(class_weight, dict):
                per_class = np.ones(self.n_outputs)
                for label, value in class_weight.items():
                    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) \
                            or not 0 <= label < self.n_outputs:
                        raise ValueError(f"class_weight has key {label!r}; classes are "
                                         f"0..{self.n_outputs - 1}")
                    value_f = finite_float(value)
                    if value_f is None or value_f < 0:
                        raise ValueError(f"class_weight[{label}] must be a finite number >= 0, "
                                         f"got {value!r}")
                    per_class[label] = value_f
            else:
                raise ValueError(f"class_weight must be a dict or 'balanced', got {class_weight!r}")
            with np.errstate(over="ignore"):  # an overflow is refused just below
                weights *= per_class[y_index]
        with np.errstate(over="ignore"):
            total = weights.sum()
        if not np.isfinite(total):
            raise ValueError("sample_weight and class_weight are too large: their products sum "
                             "to infinity; scale them down (only their ratios matter)")
        if not total > 0:
            raise ValueError("sample_weight and class_weight give every sample weight 0")
        # The loss is the weighted mean Σ w·l / Σ w, the same for weights scaled by any factor.
        # Scaled by a power of two so that the largest is in [0.5, 1): exact, so the same bits as
        # unscaled weights that float32 represents, and weights of 1e-46 or 1e39 no longer
        # underflow to 0 (a loss of 0, nothing trained) or overflow to inf in a float32 model.
        return np.ldexp(weights, -np.frexp(weights.max())[1]).astype(self.dtype)

    def _forward(self, X, n_threads, name="X", original=None):
        """Network output for a validated X; the C core checks X for inf/NaN as it reads it.
        ``original``: the caller's array X was converted from, if it was (for the message)."""
        out = np.empty((X.shape[0], self.n_outputs), dtype=self.dtype)
        n_threads = min(n_threads, -(-X.shape[0] // _PREDICT_CHUNK_ROWS))  # the team C will use
        if n_threads > 1:
            # Chunks of rows are independent (the same bits for any team), and each thread needs
            # a workspace of its own: more threads than cores only cost memory (n_threads=4096
            # asked 1.6 GB for a 2000-wide layer) and OS threads.
            n_threads = min(n_threads, usable_cores())
        work = self._forward_work
        if n_threads > 1 or work.size == 0:  # one thread's workspace, once sized, always fits
            work = self._workspace("forward", self._network.forward_workspace_len(
                n_threads, self.dtype == np.float64))
        if _core.blas_thread_control_installed():  # the core holds BLAS to one thread itself
            status = _core.forward(self._network, n_threads, self._params, X, out, work)
        else:
            with blas_single_thread():
                status = _core.forward(self._network, n_threads, self._params, X, out, work)
        if status in (_core.ERR_NONFINITE, _core.ERR_OVERFLOW):
            self._check_params_finite("predict")
        if status == _core.ERR_NONFINITE:
            raise ValueError(f"{name} contains NaN or infinity" + (
                "" if original is None else _conversion_note(original, self.dtype)))
        if status == _core.ERR_OVERFLOW:
            raise ValueError(f"{name}: the network's output overflows to inf or NaN for these finite "
                             f"inputs; their values are too large for this {self.dtype.name} model")
        _raise_for_status(status, "predict")
        return out

    def _predict_input(self, X, n_threads):
        """(X, thread count, the caller's X if it was converted, else None) for inference. The
        common case, a C-contiguous array of the model's dtype and width, skips conversion; few
        rows need no thread count (one chunk runs on the calling thread)."""
        original = None
        if not (type(X) is np.ndarray and X.dtype == self.dtype and X.ndim == 2
                and X.flags.c_contiguous and X.shape[1] == self.n_inputs and X.shape[0] > 0):
            original = X if getattr(X, "dtype", None) != self.dtype else None
            X = check_X(X, self.n_inputs, self.dtype, check_finite=False)
        if n_threads is None and X.shape[0] <= _PREDICT_CHUNK_ROWS:
            return X, 1, original
        return X, resolve_n_threads(n_threads), original

    def _loss_value(self, out, y_real, y_index, loss):
        row_loss = np.empty(out.shape[0], dtype=self.dtype)
        status = _core.loss_rows(loss.kind, float(getattr(loss, "delta", 1.0)), out, y_real, y_index,
                                 row_loss, None)
        _raise_for_status(status, "evaluate")
        return float(np.sum(row_loss, dtype=np.float64))

    def _resolve_loss(self, loss):
        if loss is None:
            if self.loss_ is None:
                raise ValueError("loss is required: this model has not been fit yet")
            return self.loss_
        return losses.get(loss)

    # ------------------------------------------------------------------ inference
    def predict(self, X, *, n_threads=None):
        """Network output for each row of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_inputs)
        n_threads : int, optional
            OpenMP threads; None or -1 uses all usable cores (a few rows run on one). Any
            count gives the same bits.

        Returns
        -------
        out : ndarray of shape (n_samples, n_outputs)
            Raw outputs (logits for a classifier; see predict_proba and predict_classes).
        """
        X, n_threads, original = self._predict_input(X, n_threads)
        with self._lock:
            return self._forward(X, n_threads, original=original)

    def predict_proba(self, X, *, n_threads=None):
        """Class probabilities: softmax of the outputs, or the sigmoid of each output when the
        model has one output or was last trained (fit or train_step) with binary_cross_entropy.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_inputs)
        n_threads : int, optional
            As predict.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_outputs)
        """
        out = self.predict(X, n_threads=n_threads)
        if self.n_outputs == 1 or (self.loss_ is not None and self.loss_.name == "binary_cross_entropy"):
            return _sigmoid(out)
        out -= out.max(axis=1, keepdims=True)
        np.exp(out, out=out)
        out /= out.sum(axis=1, keepdims=True)
        return out

    def predict_classes(self, X, *, n_threads=None):
        """Predicted class index per row: argmax of the outputs (output > 0 for one output).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_inputs)
        n_threads : int, optional
            As predict.

        Returns
        -------
        classes : ndarray of shape (n_samples,), int64
        """
        out = self.predict(X, n_threads=n_threads)
        if self.n_outputs == 1:
            return (out[:, 0] > 0).astype(np.int64)
        return out.argmax(axis=1)

    def evaluate(self, X, y, *, loss=None, n_threads=None):
        """Mean loss (penalties excluded) and, for classification losses, accuracy.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_inputs)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        loss : str or Loss, optional
            Defaults to the loss of the last fit or train_step.
        n_threads : int, optional
            As predict.

        Returns
        -------
        dict with ``loss`` and, for cross_entropy, hinge and binary_cross_entropy, ``accuracy``.
        """
        loss = self._resolve_loss(loss)
        X, n_threads, original = self._predict_input(X, n_threads)
        y_real, y_index = self._targets(y, loss, X.shape[0])
        with self._lock:
            out = self._forward(X, n_threads, original=original)
        return self._scores(out, y_real, y_index, loss)

    def _scores(self, out, y_real, y_index, loss):
        scores = {"loss": self._loss_value(out, y_real, y_index, loss)}
        if y_index is not None:
            scores["accuracy"] = float(np.mean(out.argmax(axis=1) == y_index))
        elif loss.name == "binary_cross_entropy":
            scores["accuracy"] = float(np.mean((out > 0) == (y_real > 0.5)))
        return scores

    # ------------------------------------------------------------------ training
    def loss_and_grad(self, X, y, *, loss="mse", l1=0.0, l2=0.0, sample_weight=None,
                      n_threads=None):
        """Loss on all of (X, y) and its gradient, without changing the model.

        With ``sample_weight`` the loss is the weighted mean ``Σ w_i·l_i / Σ w_i``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_inputs)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class indices for cross_entropy and hinge, else real targets.
        loss : str or Loss, default="mse"
        l1, l2 : float, default=0.0
            Penalties ``l1·Σ|W| + ½·l2·ΣW²`` over the weight matrices (not the biases).
        sample_weight : array-like of shape (n_samples,), optional
        n_threads : int, optional
            As fit; any count gives the same bits.

        Returns
        -------
        loss : float
            Mean loss plus ``l1·Σ|W| + ½·l2·ΣW²`` over every weight matrix.
        grads : list of (dW, db)
            One pair per layer, shaped like (W, b).
        """
        loss = losses.get(loss)
        l1 = check_non_negative_number(l1, "l1")
        l2 = check_non_negative_number(l2, "l2")
        X = check_X(X, self.n_inputs, self.dtype)
        y_real, y_index = self._targets(y, loss, X.shape[0])
        weights = self._sample_weights(sample_weight, None, y_index, loss, X.shape[0])
        n_threads = resolve_n_threads(n_threads)
        with self._lock, blas_single_thread():
            work = self._workspace("train", self._network.train_workspace_len(
                X.shape[0], self.dtype == np.float64))
            status, loss_sum, _, _, _ = _core.train(
                self._network, n_threads, loss.spec(l1, l2), None, None, self._params, self._grads,
                None, 0, X, y_real, y_index, weights, None, X.shape[0], 0, 1, work)
            _raise_for_status(status, "loss_and_grad", self)
            grads = [(dW.copy(), db.copy()) for dW, db in self._grad_views]
        return loss_sum / X.shape[0], grads

    def train_step(self, X, y, *, loss="cross_entropy", optimizer="sgd", l1=0.0, l2=0.0,
                   sample_weight=None, n_threads=None):
        """One gradient step on the batch (X, y), in place. Returns the batch loss before the step.

        ``optimizer`` given by name is created once per model and name and then reused, so its
        momentum carries over between calls, and to pickled or copied models; pass an Optimizer
        object to control it, or to save it (``save`` writes only the optimizer it is given).

        Repeated calls with the same loss, optimizer, penalties and thread count take a fast
        path (a few microseconds above the C step) when X is a C-contiguous array of the
        model's dtype and y int64 class indices (index losses) or a C-contiguous
        (n_samples, n_outputs) array of the model's dtype; any other input takes the general
        path, with the same result.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_inputs)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class indices for cross_entropy and hinge, else real targets.
        loss : str or Loss, default="cross_entropy"
        optimizer : str or Optimizer, default="sgd"
        l1, l2 : float, default=0.0
            Penalties, as loss_and_grad.
        sample_weight : array-like of shape (n_samples,), optional
        n_threads : int, optional
            As fit; any count gives the same bits.

        Returns
        -------
        loss : float
            The batch's loss (penalties included) at the weights before the step.

        Raises
        ------
        DivergenceError
            When the loss or a gradient is NaN or infinite (nothing changes), or the step made
            a weight infinite or NaN (the weights and optimizer state are restored).
        """
        if not self._has_dropout:
            return self._step_once(X, y, loss, optimizer, l1, l2, sample_weight, n_threads)
        # the step draws its dropout seed before the core has read the batch: a refused batch
        # must leave the generator where it was, as it leaves the weights. A step the core
        # applied keeps its draw, even if a Ctrl-C raises KeyboardInterrupt as the call returns
        # (the core sets the step count before returning: see _core._store_step)
        saved = self._rng.bit_generator.state
        stepped = []  # (the optimizer state the core call took, its step count before)
        try:
            return self._step_once(X, y, loss, optimizer, l1, l2, sample_weight, n_threads,
                                   stepped)
        except BaseException:
            if not stepped or stepped[0][0]["step"] == stepped[0][1]:
                self._rng.bit_generator.state = saved
            raise

    def _step_once(self, X, y, loss, optimizer, l1, l2, sample_weight, n_threads, stepped=None):
        fast = self._fast_step
        if fast is not None and sample_weight is None \
                and _same_arguments(fast[0], (loss, optimizer, l1, l2, n_threads)):
            _, opt, state, slots, version, stepper, step_loss = fast
            with opt._lock, self._lock:  # see Optimizer._lock
                if opt._version == version and _same_buffers(state.get("slots"), slots) \
                        and state.get("owner") is self and opt.state is state:
                    seed = int(self._rng.integers(2**63)) if self._has_dropout else 0
                    if stepped is not None:
                        stepped.append((state, state["step"]))
                    result = stepper.step(X, y, state, seed)
                    if result is not None:
                        status, batch_loss = result
                        if status == _core.OK:
                            self.loss_ = step_loss
                            return batch_loss
                        if status == _core.ERR_OVERFLOW:
                            raise DivergenceError(_STEP_OVERFLOW.format(self.dtype.name),
                                                  epoch=None, batch=0, update=True)
                    # a layout the fast path does not read, or a refused batch (nothing
                    # changed): the general path converts, or explains the refusal
                    return self._train_step(X, y, loss, optimizer, l1, l2, None, n_threads, seed,
                                            stepped)
        seed = int(self._rng.integers(2**63)) if self._has_dropout else 0
        return self._train_step(X, y, loss, optimizer, l1, l2, sample_weight, n_threads, seed,
                                stepped)

    def _train_step(self, X, y, loss_arg, optimizer_arg, l1, l2, sample_weight, n_threads, seed,
                    stepped=None):
        """train_step's general path: converts and validates everything, then binds the fast
        path for the next call with the same arguments."""
        loss = losses.get(loss_arg)
        optimizer = optimizer_arg
        if isinstance(optimizer, str):
            optimizer = self._step_optimizers.setdefault(optimizer.lower(), optim.get(optimizer))
        opt = optim.get(optimizer)
        key = (loss_arg, optimizer_arg, l1, l2, n_threads)  # as given: the fast path's check
        l1 = check_non_negative_number(l1, "l1")
        l2 = check_non_negative_number(l2, "l2")
        X = check_X(X, self.n_inputs, self.dtype)
        y_real, y_index = self._targets(y, loss, X.shape[0])
        weights = self._sample_weights(sample_weight, None, y_index, loss, X.shape[0])
        threads = resolve_n_threads(n_threads)
        with opt._lock, self._lock, blas_single_thread():  # see Optimizer._lock
            opt_spec = opt.spec()  # under the lock; refused before the state is taken (below)
            opt._check_range(self.dtype)
            work = self._workspace("train", self._network.train_workspace_len(
                X.shape[0], self.dtype == np.float64))
            state = opt._state_for(self)  # may start the state afresh: nothing refuses after
            snapshot = self._snapshot(state)
            if stepped is not None:
                stepped[:] = [(state, state["step"])]
            status, loss_sum, _, _, _ = _core.train(
                self._network, threads, loss.spec(l1, l2), opt_spec, None, self._params,
                self._grads, opt.slots(self), state["step"], X, y_real, y_index, weights, None,
                X.shape[0], 0, 1, work, False, seed, state=state)
            if status == _core.ERR_OVERFLOW:
                self._restore(snapshot, state)
                raise DivergenceError(_STEP_OVERFLOW.format(self.dtype.name), epoch=None, batch=0,
                                      update=True)
            _raise_for_status(status, "train_step", self)
            self.loss_ = loss  # trained with it: predict_proba and evaluate go by it, as after fit
            fast = self._fast_step
            still_bound = (fast is not None and _same_arguments(fast[0], key) and fast[1] is opt
                           and _same_buffers(state["slots"], fast[3])
                           and fast[4] == opt._version)
            # bind once, not on every general-path call (lists or other layouts take this path
            # each time, and a Stepper allocates a backup of the parameters and state)
            if not still_bound and _core.blas_thread_control_installed():
                key_loss = copy.copy(loss_arg) if isinstance(loss_arg, losses.Loss) else loss_arg
                self._fast_step = (
                    (key_loss,) + key[1:], opt, state,
                    tuple(state["slots"]), opt._version,
                    _core.Stepper(self._network, threads, loss.spec(l1, l2), opt_spec,
                                  self._params, self._grads, opt.slots(self),
                                  loss.targets == "index"), loss)
        return loss_sum / X.shape[0]

    def fit(self, X, y, *, loss="cross_entropy", optimizer="sgd", lr=None, epochs=10,
            batch_size=32, shuffle=True, seed=None, n_threads=None, validation_data=None,
            initial_epoch=0, schedule=None, validation_split=None, callbacks=None,
            sample_weight=None, class_weight=None, l1=0.0, l2=0.0, on_divergence="raise",
            verbose=1):
        """Train by mini-batch gradient descent; each epoch runs in C with the GIL released.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_inputs)
            Read at every batch, and not copied when it is already a C-contiguous array of
            the model's dtype (no second copy of the data in memory): leave X and y unchanged
            until fit returns (a callback writing into them changes the batches that follow).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class indices for cross_entropy and hinge; values in [0, 1] for
            binary_cross_entropy; real values for mse, mae and huber.
        loss : str or Loss, default="cross_entropy"
        optimizer : str or Optimizer, default="sgd"
            An Optimizer object keeps its momentum state across fit calls.
        lr : float, optional
            Learning rate for an optimizer given by name (default 0.01).
        epochs : int, default=10
            Index of the last epoch + 1, as Keras: training runs epochs initial_epoch..epochs-1.
        initial_epoch : int, default=0
            Epoch to start at; epoch k shuffles with ``epoch_permutation(n, seed, k)``, so
            ``fit(epochs=2)`` then ``fit(epochs=4, initial_epoch=2)`` (same seed, optimizer and
            schedule objects) gives the same bits as ``fit(epochs=4)``.
        batch_size : int, default=32
            1 is stochastic gradient descent; n_samples or more is full-batch gradient descent.
            The last batch of an epoch may be smaller.
        shuffle : bool, default=True
            Visit rows in a new seeded random order every epoch (see epoch_permutation).
        seed : int, optional
            Seed of the shuffling; by default drawn from the model's seeded generator.
        n_threads : int, optional
            None or -1: all usable cores. Results are bit-identical for any thread count.
        validation_data : (X_val, y_val), optional
            Evaluated after every epoch (val_loss, and val_accuracy for classification).
        validation_split : float, optional
            Hold out this fraction of the rows (the last ones, before any shuffling) as
            validation data; exclusive with validation_data.
        callbacks : list of gdcore.callbacks.Callback, optional
            EarlyStopping, ModelCheckpoint, LambdaCallback, or your own. The optimizer's
            hyperparameters (lr included) are read at each epoch's start, before
            on_epoch_begin: one that a callback changes takes effect from the next epoch.
        schedule : str or gdcore.schedules.Schedule, optional
            Learning-rate schedule scaling the optimizer's lr (see gdcore.schedules); all the
            rates of an epoch are computed before it, so per-batch warmup costs no Python per
            batch. A Schedule object continues across fit calls on the same model.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weight of each sample: each batch's loss is the weighted mean
            ``Σ w_i·l_i / Σ w_i`` (torch's convention for class weights).
        class_weight : dict or "balanced", optional
            Weight of each class (cross_entropy and hinge), multiplied into sample_weight;
            "balanced" is ``n_samples / (n_classes · count(class))``, as scikit-learn.
        l1, l2 : float, default=0.0
            Penalty ``l1·Σ|W| + ½·l2·ΣW²`` over every weight matrix (not biases).
        on_divergence : {"raise", "stop", "ignore"}, default="raise"
            What to do when a batch's loss or gradient is NaN or infinite. That batch's update is
            never applied, so the weights stay at the last finite state; then "raise" raises
            DivergenceError, "stop" ends training with a RuntimeWarning (``history.diverged``
            = (epoch, batch)), "ignore" skips the batch and goes on (``skipped_batches`` per
            epoch in the history). An update that itself makes a weight infinite or NaN (a
            step beyond the dtype's range, or 0/0) cannot be skipped: the weights go back to
            the start of that epoch, and training stops ("raise" raises).
        verbose : int, default=1
            0 silent; 1 a progress bar (redrawn in place on a terminal); 2 one line per epoch.

        Returns
        -------
        History
            Per epoch: loss, accuracy (classification), val_* with validation data, seconds, lr.

        Raises
        ------
        DivergenceError
            If the loss becomes NaN or infinite; the offending batch's update is not applied.
        KeyboardInterrupt
            On Ctrl-C (when fit runs in the main thread), within a batch's time: training stops
            between two batches, the model stays consistent, and ``model.history_`` holds the
            epochs finished.
        """
        loss = losses.get(loss)
        opt = optim.get(optimizer, lr)
        schedule = schedules.get(schedule)
        if lr is not None and not isinstance(optimizer, str):
            raise ValueError("lr is for an optimizer given by name; set lr on the Optimizer object")
        epochs = check_positive_int(epochs, "epochs")
        batch_size = check_positive_int(batch_size, "batch_size")
        l1 = check_non_negative_number(l1, "l1")
        l2 = check_non_negative_number(l2, "l2")
        check_bool(shuffle, "shuffle")
        if verbose not in (0, 1, 2, False, True):
            raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
        if on_divergence not in ("raise", "stop", "ignore"):
            raise ValueError(f"on_divergence must be 'raise', 'stop' or 'ignore', got {on_divergence!r}")
        if seed is not None:
            check_seed(seed)
        callbacks = callbacks_module.check(callbacks)
        if isinstance(initial_epoch, bool) or not isinstance(initial_epoch, (int, np.integer)) \
                or not 0 <= initial_epoch < epochs:
            raise ValueError(f"initial_epoch must be an int in [0, epochs), got {initial_epoch!r}")
        n_threads = resolve_n_threads(n_threads)
        X = check_X(X, self.n_inputs, self.dtype, n_threads=n_threads)
        n_samples = X.shape[0]
        y_real, y_index = self._targets(y, loss, n_samples)
        if sample_weight is not None:  # one per row of X, before validation_split takes some
            sample_weight = _check_sample_weight(sample_weight, n_samples)
        if validation_split is not None:
            if validation_data is not None:
                raise ValueError("pass validation_data or validation_split, not both")
            split = finite_float(validation_split)
            if split is None or not 0 < split < 1:
                raise ValueError(f"validation_split must be in (0, 1), got {validation_split!r}")
            validation_split = split
            n_val = int(round(n_samples * validation_split))
            if not 0 < n_val < n_samples:
                raise ValueError(f"validation_split={validation_split} leaves no rows for "
                                 f"training or validation out of {n_samples}")
            targets = y_real if y_index is None else y_index
            validation_data = (X[n_samples - n_val:], targets[n_samples - n_val:])
            X, n_samples = X[:n_samples - n_val], n_samples - n_val
            y_real = None if y_real is None else y_real[:n_samples]
            y_index = None if y_index is None else y_index[:n_samples]
            if sample_weight is not None:
                sample_weight = sample_weight[:n_samples]
        validation = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data must be a pair (X_val, y_val)")
            X_val = check_X(validation_data[0], self.n_inputs, self.dtype, "validation_data[0]",
                            n_threads=n_threads)
            validation = (X_val,) + self._targets(validation_data[1], loss, X_val.shape[0],
                                                  "validation_data[1]", "validation_data[0]")
        # every epoch's logs hold these keys: a schedule or callback monitoring another one is
        # refused now, before any weight moves, not after the first epoch
        with_accuracy = y_index is not None or loss.name == "binary_cross_entropy"
        log_keys = epoch_log_keys(with_accuracy, validation is not None, on_divergence == "ignore")
        if schedule.monitor is not None and schedule.monitor not in log_keys:
            raise callbacks_module._missing_key("schedule", schedule.monitor, log_keys)
        for callback in callbacks:
            callback.check_logs(log_keys)
        batch_size = min(batch_size, n_samples)
        n_batches = math.ceil(n_samples / batch_size)
        history = History()
        progress = _Progress(int(verbose), epochs, n_batches)
        loss_spec = loss.spec(l1, l2)
        opt.spec()  # refuses bad hyperparameters now; read for the fit under the lock, below
        opt._check_range(self.dtype)
        if schedule.monitor is not None and schedule._starts_afresh(self, initial_epoch):
            warnings.warn(f"{schedule!r} starts afresh at initial_epoch={initial_epoch}: it "
                          "cannot know the metrics of the epochs before. To resume it, pass "
                          "the schedule object of the interrupted fit (or a pickled copy of it)",
                          RuntimeWarning, stacklevel=2)
        weights = self._sample_weights(sample_weight, class_weight, y_index, loss, n_samples)
        main_thread = threading.current_thread() is threading.main_thread()  # _interruptible

        with opt._lock, self._lock, blas_single_thread():  # see Optimizer._lock
            # The last refusals, before anything of the model changes: a workspace beyond
            # memory (naming batch_size), and validation inputs whose outputs overflow already
            # at the starting weights (found at the first epoch's end, after it had trained).
            work = self._workspace("train", self._network.train_workspace_len(
                batch_size, self.dtype == np.float64))
            if validation is not None:
                self._forward(validation[0], n_threads, "validation_data[0]")
            if seed is None:  # drawn only now: a refused fit leaves the model's generator alone
                seed = int(self._rng.integers(2**63))
            if main_thread:  # a stale request (any call may become interruptible: a callback
                _core.clear_stop_request()  # can put Python's default handler back)
            self.history_ = history
            self.loss_ = loss
            self.stop_training = False
            self._fit_optimizer = opt  # for ModelCheckpoint
            # read again under the lock: a fit holding it may have changed them while we waited
            opt_spec, opt_version = opt.spec(), opt._version
            state = opt._state_for(self)
            slots = opt.slots(self)
            schedule.begin_fit(self, epochs=epochs - initial_epoch, n_batches=n_batches,
                               initial_epoch=initial_epoch, n_samples=n_samples)
            for callback in callbacks:
                callback.set_model(self)
                callback.on_train_begin({})
            try:
                for epoch in range(initial_epoch, epochs):
                    if opt._version != opt_version:
                        # a callback changed a hyperparameter: it takes effect from this epoch on
                        # (momentum turned on gets its velocity here)
                        opt_spec, opt_version = opt.spec(), opt._version
                        opt._check_range(self.dtype)
                        state, slots = opt._state_for(self), opt.slots(self)
                    lrs = schedule.batch_lrs(n_batches, opt.lr, n_samples=n_samples)
                    perm = (epoch_permutation(n_samples, seed, epoch) if shuffle
                            else np.arange(n_samples, dtype=np.int64))
                    for callback in callbacks:
                        callback.on_epoch_begin(epoch, {"lr": float(lrs[0])})
                    start = time.perf_counter()
                    loss_sum, correct, rows_used, skipped, diverged, interrupted = self._run_epoch(
                        epoch, seed, n_threads, loss_spec, opt_spec, lrs, state, slots, X, y_real, y_index,
                        weights, perm, batch_size, n_batches, work, main_thread, on_divergence,
                        progress, callbacks)
                    if diverged:
                        progress.close()  # the warning on a line of its own
                        warnings.warn(f"fit stopped: {diverged[2]}", RuntimeWarning, stacklevel=2)
                        history.diverged = diverged[:2]
                        break
                    seconds = time.perf_counter() - start
                    with _DeferredSigint(main_thread, f"fit interrupted after epoch {epoch}"):
                        values = {"loss": loss_sum / rows_used if rows_used else float("nan")}
                        if with_accuracy:
                            values["accuracy"] = correct / rows_used if rows_used else float("nan")
                        if on_divergence == "ignore":
                            values["skipped_batches"] = skipped
                        if validation is not None:
                            out = self._forward(validation[0], n_threads, "validation_data[0]")
                            values.update({"val_" + k: v for k, v in self._scores(
                                out, validation[1], validation[2], loss).items()})
                        values["seconds"] = seconds
                        values["lr"] = float(lrs[0])
                        schedule.epoch_end(values)
                        history._append(epoch, values)
                        if interrupted:
                            raise KeyboardInterrupt(f"fit interrupted after epoch {epoch}")
                    progress.end_epoch(epoch, values)
                    for callback in callbacks:
                        callback.on_epoch_end(epoch, values)
                    if self.stop_training:
                        break
            finally:  # a fit that stops mid-epoch ends the bar's line
                progress.close()
            for callback in callbacks:
                callback.on_train_end(dict(history.history))
        return history


class MLP(Sequential):
    """Sequential of Dense layers from a list of sizes.

    ``MLP([784, 128, 10], activation="relu")`` is
    ``Sequential([Dense(784, 128, activation="relu"), Dense(128, 10)])``.

    Parameters
    ----------
    sizes : list of int
        Input size, hidden sizes, output size (at least two entries).
    activation : str, default="relu"
        Activation of the hidden layers.
    output_activation : str, default="identity"
        Activation of the last layer (identity for logits).
    dtype, seed
        As Sequential.
    """

    def __init__(self, sizes, *, activation="relu", output_activation="identity", dtype="float32",
                 seed=0):
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
            raise TypeError(f"sizes must be a list of layer sizes, got {type(sizes).__name__}")
        sizes = list(sizes)
        check_activation(activation, "activation")
        check_activation(output_activation, "output_activation")
        if len(sizes) < 2:
            raise ValueError(f"sizes must list at least an input and an output size, got {sizes!r}")
        layers = [Dense(sizes[i], sizes[i + 1],
                        activation=activation if i < len(sizes) - 2 else output_activation)
                  for i in range(len(sizes) - 1)]
        super().__init__(layers, dtype=dtype, seed=seed)
