"""Callbacks: user code that fit calls between epochs (or between batches, when asked).

Training runs in C; fit hands control back to Python only at the points some callback needs:
after every epoch, and after every batch only when a callback sets ``batch_frequency``.
"""
import math
import numbers
import os

from ._validation import finite_float


class Callback:
    """Base class. fit sets ``self.model`` and calls, in order: ``on_train_begin(logs)``, then per
    epoch ``on_epoch_begin(epoch, logs)``, ``on_batch_end(batch, logs)`` (only when
    ``batch_frequency`` is an int: every that many batches), ``on_epoch_end(epoch, logs)``, and
    finally ``on_train_end(logs)``. Setting ``self.model.stop_training = True`` ends training
    after the current epoch.
    """

    #: None: no per-batch calls; n: on_batch_end after every n batches (costs a C→Python return)
    batch_frequency = None

    def set_model(self, model):
        self.model = model

    def on_train_begin(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

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


class EarlyStopping(Callback):
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

    def __init__(self, monitor="val_loss", *, patience=0, min_delta=0.0, mode="auto",
                 restore_best_weights=False):
        if isinstance(patience, bool) or not isinstance(patience, numbers.Integral) or patience < 0:
            raise ValueError(f"patience must be an int >= 0, got {patience!r}")
        if finite_float(min_delta) is None or min_delta < 0:
            raise ValueError(f"min_delta must be a finite number >= 0, got {min_delta!r}")
        self.monitor = monitor
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.mode = _monitor_mode(monitor, mode)
        self.restore_best_weights = bool(restore_best_weights)

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


class ModelCheckpoint(Callback):
    """Save the model (and optimizer state) after epochs, with gdcore.save's atomic write.

    Parameters
    ----------
    path : str
        File path; may hold ``{epoch}`` and log keys, e.g. ``"ckpt-{epoch:03d}-{val_loss:.3f}.npz"``.
    monitor : str, default="val_loss"
    save_best_only : bool, default=False
        Save only when the monitored metric improves on the best so far, over every fit the
        callback is given to (as Keras's), a fit of a model loaded to resume included: a resumed
        fit does not overwrite the best file with a worse model. ``best = None`` starts afresh.
    mode : {"auto", "min", "max"}, default="auto"
    save_optimizer : bool, default=True
        Include the optimizer's state, so training can resume with the same bits.
    """

    def __init__(self, path, *, monitor="val_loss", save_best_only=False, mode="auto",
                 save_optimizer=True):
        self.path = str(path)
        self.monitor = monitor
        self.save_best_only = bool(save_best_only)
        self.mode = _monitor_mode(monitor, mode)
        self.save_optimizer = bool(save_optimizer)
        self.saved = []
        # The best monitored value saved so far, over every fit (a model loaded from a
        # checkpoint to resume is another object: still the same training). Set it to None to
        # start afresh, as for another model.
        self.best = None

    def check_logs(self, keys):
        if self.save_best_only and self.monitor not in keys:
            raise _missing_key("ModelCheckpoint", self.monitor, keys)
        try:  # every field of the path must be one the logs will fill (floats; epoch an int)
            path = self.path.format(epoch=0, **dict.fromkeys(keys, 0.0))
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
    """A callback from plain functions: ``on_epoch_end(epoch, logs)``, ``on_batch_end(batch,
    logs)`` (called every ``batch_frequency`` batches, default 1, when given),
    ``on_epoch_begin(epoch, logs)``, ``on_train_begin(logs)``, ``on_train_end(logs)``."""

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
