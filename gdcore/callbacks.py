"""Callbacks: user code that fit calls between epochs (or between batches, when asked).

Training runs in C; fit hands control back to Python only at the points some callback needs:
after every epoch, and after every batch only when a callback sets ``batch_frequency``.
"""
import math
import numbers
import os

from ._validation import check_bool, check_int, check_real


def _check_path(path):
    """A checkpoint path as a str: str() would turn None or a list into a file name."""
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str):  # bytes too: the path is filled with str.format
        raise TypeError(f"path must be a str or os.PathLike naming a file, got {path!r}")
    if not path:
        raise ValueError("path must not be empty")
    return path


class _CheckedSettings:
    """Runs ``_CHECKS[name]`` on every assignment of a setting, the constructor's and later
    ones (as the optimizers and Dense do): a flag set to "no" after construction would
    otherwise act as True at the next fit."""

    _CHECKS = {}

    def __setattr__(self, name, value):
        check = self._CHECKS.get(name)
        object.__setattr__(self, name, value if check is None else check(value))


class Callback:
    """Base class. fit sets ``self.model`` and calls, in order: ``on_train_begin(logs)``, then per
    epoch ``on_epoch_begin(epoch, logs)``, ``on_batch_end(batch, logs)`` (only when
    ``batch_frequency`` is a positive int, see below), ``on_epoch_end(epoch, logs)``, and
    finally ``on_train_end(logs)``. Setting ``self.model.stop_training = True`` ends training
    after the current epoch.

    With ``batch_frequency = n``, on_batch_end is called after every n-th batch of an epoch
    (0-based ``batch`` = n−1, 2n−1, ...) and also after the epoch's last batch when that is not
    one of them, so an epoch's last batch is always reported: n = 7 over 32 batches gives
    ``batch`` = 6, 13, 20, 27, 31. The count restarts with each epoch.
    """

    #: None or 0: no per-batch calls; n: on_batch_end after every n-th batch of an epoch and
    #: after its last batch (each call costs a return from C to Python). Read at the start of
    #: each epoch: a change made during an epoch applies from the next one.
    batch_frequency = None

    def set_model(self, model):
        """Called by fit before ``on_train_begin``: sets ``self.model``, the model it trains.

        Parameters
        ----------
        model : gdcore.Sequential
        """
        self.model = model

    def on_train_begin(self, logs=None):
        """Called once at the start of fit, before the first epoch.

        Parameters
        ----------
        logs : dict
            Empty.
        """

    def on_epoch_begin(self, epoch, logs=None):
        """Called at the start of each epoch.

        Parameters
        ----------
        epoch : int
            The epoch's 0-based number (a fit with ``initial_epoch=k`` starts at k).
        logs : dict
            ``{"lr": learning rate of the epoch's first batch}``.
        """

    def on_batch_end(self, batch, logs=None):
        """Called after every ``batch_frequency``-th batch of an epoch and after its last batch
        (n = 7 over 32 batches: ``batch`` = 6, 13, 20, 27, 31); never while
        ``batch_frequency`` is None or 0.

        Parameters
        ----------
        batch : int
            The 0-based index within the epoch of the batch just trained. A batch skipped
            under ``on_divergence="ignore"`` keeps its place in the count.
        logs : dict
            ``{"loss": mean loss over the rows trained so far in this epoch}`` (NaN when every
            batch so far was skipped).
        """

    def on_epoch_end(self, epoch, logs=None):
        """Called at the end of each epoch, after the validation scores and the schedule's
        step. Setting ``self.model.stop_training = True`` here ends training after this epoch.

        Parameters
        ----------
        epoch : int
            The epoch's number, 0-based.
        logs : dict
            The epoch's values, as recorded in fit's History: ``loss``, ``accuracy`` for
            class targets, ``val_loss`` and ``val_accuracy`` with validation data,
            ``skipped_batches`` under ``on_divergence="ignore"``, ``seconds`` and ``lr``.
        """

    def on_train_end(self, logs=None):
        """Called once at the end of fit, also when a callback or a divergence stopped it
        early (not when it raised).

        Parameters
        ----------
        logs : dict
            The History's ``history``: every key with its list of per-epoch values.
        """

    def check_logs(self, keys):
        """Called by fit before it trains, with the keys that every epoch's logs will hold:
        raise ValueError here for a key the callback will need and not find, so that the fit is
        refused before any weight moves rather than after its first epoch."""


def _missing_key(owner, monitor, keys):
    """fit's refusal of a monitor its epoch logs will not have."""
    hint = ("; pass validation_data or validation_split to fit"
            if monitor.startswith("val_") and "val_loss" not in keys else "")
    return ValueError(f"{owner} monitors {monitor!r}, but fit's epoch logs will have only "
                      f"{sorted(keys)}{hint}")


def _monitor_mode(monitor, mode):
    if not isinstance(monitor, str) or not monitor:
        raise TypeError(f"monitor must be a metric name such as 'val_loss', got {monitor!r}")
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        mode = "max" if "acc" in monitor else "min"
    return mode


class EarlyStopping(_CheckedSettings, Callback):
    """Stop training when a monitored metric stops improving.

    Parameters
    ----------
    monitor : str, default="val_loss"
        A key of the epoch logs (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``, ...).
    patience : int, default=0
        Epochs without improvement to wait before stopping.
    min_delta : float, default=0.0
        An improvement must exceed this.
    mode : {"auto", "min", "max"}, default="auto"
        "auto": max for metrics whose name contains "acc", else min.
    restore_best_weights : bool, default=False
        At the end, put back the weights of the best epoch.

    Attributes
    ----------
    best : float
    best_epoch : int
    stopped_epoch : int or None
    """

    _CHECKS = {"patience": lambda value: check_int(value, "patience", minimum=0),
               "min_delta": lambda value: check_real(value, "min_delta", low=0),
               "restore_best_weights": lambda value: check_bool(value, "restore_best_weights")}

    def __init__(self, monitor="val_loss", *, patience=0, min_delta=0.0, mode="auto",
                 restore_best_weights=False):
        self.patience = patience
        self.min_delta = min_delta
        self.mode = _monitor_mode(monitor, mode)
        self.monitor = monitor
        self.restore_best_weights = restore_best_weights

    def check_logs(self, keys):
        if self.monitor not in keys:
            raise _missing_key("EarlyStopping", self.monitor, keys)

    def on_train_begin(self, logs=None):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = None
        self.best_weights = None
        self.wait = 0
        self.stopped_epoch = None

    def _improved(self, value):
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, epoch, logs=None):
        if not logs or self.monitor not in logs:
            raise ValueError(f"EarlyStopping monitors {self.monitor!r}, but the epoch logs have "
                             f"only {sorted(logs or {})}")
        value = logs[self.monitor]
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(_CheckedSettings, Callback):
    """Save the model (and optimizer state) after epochs, with gdcore.save's atomic write.

    Parameters
    ----------
    path : str or os.PathLike
        File path; may hold ``{epoch}`` and log keys, e.g. ``"ckpt-{epoch:03d}-{val_loss:.3f}.npz"``.
    monitor : str, default="val_loss"
    save_best_only : bool, default=False
        Save only when the monitored metric improves on the best so far, over every fit the
        callback is given to (as Keras's), a fit of a model loaded to resume included: a resumed
        fit does not overwrite the best file with a worse model. ``best = None`` starts afresh.
    mode : {"auto", "min", "max"}, default="auto"
    save_optimizer : bool, default=True
        Include the optimizer's state, so training can resume with the same bits: load the
        file with ``gdcore.load(path, with_optimizer=True)`` and call ``fit(...,
        initial_epoch=k)`` with the same ``seed`` (with ``seed=None`` each fit draws another
        one, so the shuffling and the dropout masks differ) and the same schedule object (a
        ReduceLROnPlateau's state is not in the file; a pickle of the schedule keeps it).
    """

    _CHECKS = {"path": _check_path,
               "save_best_only": lambda value: check_bool(value, "save_best_only"),
               "save_optimizer": lambda value: check_bool(value, "save_optimizer")}

    def __init__(self, path, *, monitor="val_loss", save_best_only=False, mode="auto",
                 save_optimizer=True):
        self.path = path
        self.mode = _monitor_mode(monitor, mode)
        self.monitor = monitor
        self.save_best_only = save_best_only
        self.save_optimizer = save_optimizer
        self.saved = []
        # The best monitored value saved so far, over every fit (a model loaded from a
        # checkpoint to resume is another object: still the same training). Set it to None to
        # start afresh, as for another model.
        self.best = None

    def check_logs(self, keys):
        if self.save_best_only and self.monitor not in keys:
            raise _missing_key("ModelCheckpoint", self.monitor, keys)
        # every field of the path must be one the logs will fill (floats; the epoch and
        # skipped_batches ints)
        sample = {key: 0 if key == "skipped_batches" else 0.0 for key in keys}
        try:
            path = self.path.format(**{**sample, "epoch": 0})
        except (KeyError, IndexError, ValueError, TypeError, AttributeError) as error:
            raise ValueError(f"ModelCheckpoint path {self.path!r} cannot be filled from the "
                             f"epoch number and fit's epoch logs {sorted(keys)}: "
                             f"{type(error).__name__}: {error}") from None
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise ValueError(f"ModelCheckpoint path {self.path!r}: folder {folder!r} does not "
                             "exist")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            if self.monitor not in logs:
                raise ValueError(f"ModelCheckpoint monitors {self.monitor!r}, but the epoch logs "
                                 f"have only {sorted(logs)}")
            value = logs[self.monitor]
            if self.best is None:
                better = not math.isnan(value)
            else:
                better = value < self.best if self.mode == "min" else value > self.best
            if not better:
                return
            self.best = value
        path = self.path.format(epoch=epoch, **logs)
        optimizer = getattr(self.model, "_fit_optimizer", None) if self.save_optimizer else None
        self.model.save(path, optimizer=optimizer)
        self.saved.append(path)


class LambdaCallback(Callback):
    """A callback from plain functions, called as the Callback methods of the same names.

    Parameters
    ----------
    on_epoch_begin, on_epoch_end : callable, default=None
        ``fn(epoch, logs)``.
    on_batch_end : callable, default=None
        ``fn(batch, logs)``, called after every ``batch_frequency``-th batch of an epoch and
        after the epoch's last batch when that is not one of them (see the example).
    on_train_begin, on_train_end : callable, default=None
        ``fn(logs)``.
    batch_frequency : int or None, default=1
        How often ``on_batch_end`` is called; with no ``on_batch_end`` it must stay 1 or None.

    Examples
    --------
    With 7 as the frequency and 32 batches per epoch, the last batch (31) is also reported:

    >>> import numpy as np
    >>> import gdcore as gd
    >>> X, y = np.random.default_rng(0).normal(size=(320, 4)), np.arange(320) % 3
    >>> seen = []
    >>> every_7 = gd.callbacks.LambdaCallback(
    ...     on_batch_end=lambda batch, logs: seen.append(batch), batch_frequency=7)
    >>> _ = gd.MLP([4, 3]).fit(X, y, batch_size=10, epochs=1, callbacks=[every_7], verbose=0)
    >>> seen
    [6, 13, 20, 27, 31]
    """

    def __init__(self, *, on_epoch_begin=None, on_epoch_end=None, on_batch_end=None,
                 on_train_begin=None, on_train_end=None, batch_frequency=1):
        for name, fn in (("on_epoch_begin", on_epoch_begin), ("on_epoch_end", on_epoch_end),
                         ("on_batch_end", on_batch_end), ("on_train_begin", on_train_begin),
                         ("on_train_end", on_train_end)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name} must be callable, got {fn!r}")
            if fn is not None:
                setattr(self, name, fn)
        if on_batch_end is None and batch_frequency is None:
            return  # the base class's "no batch calls"
        if isinstance(batch_frequency, bool) or not isinstance(batch_frequency, numbers.Integral) \
                or batch_frequency < 1:
            raise ValueError(f"batch_frequency must be a positive int, got {batch_frequency!r}")
        if on_batch_end is None and batch_frequency != 1:
            raise ValueError(f"batch_frequency={batch_frequency!r} sets how often on_batch_end "
                             "is called, and no on_batch_end was given")
        if on_batch_end is not None:
            self.batch_frequency = int(batch_frequency)


def check(callbacks):
    """The list of callbacks fit was given, checked."""
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback):
        return [callbacks]
    if isinstance(callbacks, (str, bytes)) or not hasattr(callbacks, "__iter__"):
        raise TypeError(f"callbacks must be a list of gdcore.callbacks.Callback, got "
                        f"{type(callbacks).__name__}")
    callbacks = list(callbacks)
    for i, cb in enumerate(callbacks):
        if not isinstance(cb, Callback):
            raise TypeError(f"callbacks[{i}] must be a gdcore.callbacks.Callback, got {type(cb).__name__}")
        check_batch_frequency(cb, i)
    return callbacks


def check_batch_frequency(callback, i):
    """callbacks[i].batch_frequency, which a subclass sets as it likes (even in a hook): None
    or 0 for no batch calls, else a positive int. fit checks it before each epoch."""
    frequency = callback.batch_frequency
    if frequency is not None and (isinstance(frequency, bool) or not isinstance(
            frequency, numbers.Integral) or frequency < 0):
        raise ValueError(f"callbacks[{i}].batch_frequency must be None, 0 or a positive int, "
                         f"got {frequency!r}")
    return frequency
