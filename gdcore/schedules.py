"""Learning-rate schedules.

An epoch runs in C with no Python between its batches, so a schedule is asked for the learning
rates of a whole epoch at once and told the epoch's metrics afterwards. One fit drives a schedule
like this (see ``Schedule`` for the details)::

    schedule.begin_fit(model, epochs=epochs, n_batches=n_batches)      # once, before epoch 0
    for each epoch:
        lrs = schedule.batch_lrs(n_batches, optimizer.lr, n_samples=n_samples)  # (n_batches,)
        ... train batch b with learning rate lrs[b] ...
        schedule.epoch_end({"loss": ..., "val_loss": ...})

The optimizer's ``lr`` is the *base* learning rate; a schedule never changes the optimizer.
Values follow ``torch.optim.lr_scheduler`` where torch has the same schedule: the lr of epoch
``e`` (0-based) is what torch's ``scheduler.get_last_lr()`` returns after ``e`` calls of
``scheduler.step()``. gdcore computes the closed forms; torch updates StepLR, ExponentialLR,
CosineAnnealingLR and LinearLR recursively, and the two agree to a few units in the last place
(tested to rtol 1e-12 over 50 epochs).

A schedule object keeps its position (epochs and batches done) across fit calls on the same model,
as an optimizer keeps its momentum, so ``fit(epochs=5)`` twice equals ``fit(epochs=10)`` once.
It restarts from epoch 0 when fit is given a different model, or after ``reset()``. A schedule given
to fit by name is created afresh by every fit call.
"""
import copy
import inspect
import math
import numbers
import weakref
from collections.abc import Mapping

import numpy as np

from ._validation import check_int, check_real

__all__ = ["Schedule", "Constant", "StepLR", "MultiStepLR", "ExponentialLR", "InverseTimeLR",
           "CosineAnnealingLR", "PiecewiseLR", "LinearWarmup", "ReduceLROnPlateau", "get"]


# ---------------------------------------------------------------------------------- validation
# Periods and milestones meet epoch, step and sample counts in int64 arithmetic
_MAX_PERIOD = 2**62


def _check_choice(value, name, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


# ---------------------------------------------------------------------------------- base class
class Schedule:
    """Base class of the learning-rate schedules.

    A schedule is a stateful object with a position: ``epochs_done``, ``steps_done`` (batches)
    and ``samples_done`` since the last ``reset()``. The methods fit calls, in order:

    ``begin_fit(owner, epochs=, n_batches=)``
        Once per fit call, before the first epoch. Restarts the schedule when ``owner`` (the
        model) is not the owner of the previous call; continues it otherwise.
    ``batch_lrs(n_batches, base_lr, n_samples=)``
        Before each epoch: the learning rate of every batch of the next epoch, as a new float64
        array of shape (n_batches,). Does not move the schedule; asking twice gives the same array.
    ``epoch_end(logs)``
        After each epoch, with the epoch's metrics (``{"loss": ..., "val_loss": ...}``): moves the
        schedule by one epoch and the ``n_batches``/``n_samples`` of the last ``batch_lrs`` call.

    An epoch that raised (for example ``DivergenceError``) never reaches ``epoch_end``, so the
    schedule stays where it was.
    """

    #: name of the metric epoch_end reads from ``logs``; None when the schedule reads none.
    monitor = None

    def __init__(self):
        self._owner = None
        self.reset()

    # -- state ------------------------------------------------------------------------------
    def reset(self):
        """Go back to epoch 0 and forget everything learned from metrics."""
        self.epochs_done = 0
        self.steps_done = 0
        self.samples_done = 0
        self._pending = (0, 0)

    @property
    def per_step(self):
        """True when the learning rate can change between the batches of one epoch."""
        return False

    @property
    def needs_n_samples(self):
        """True when ``batch_lrs`` needs ``n_samples`` (the schedule counts samples)."""
        return False

    def __getstate__(self):  # the owner is a weak reference: a pickle forgets it
        state = dict(self.__dict__)
        state["_owner"] = None
        return state

    def _same_owner(self, owner):
        if self._owner is None:
            return True
        if isinstance(self._owner, weakref.ref):
            return self._owner() is owner
        return self._owner == id(owner)

    # -- the calls fit makes ---------------------------------------------------------------
    def begin_fit(self, owner=None, *, epochs=None, n_batches=None, initial_epoch=0,
                  n_samples=None):
        """Prepare for a fit call of ``epochs`` epochs of ``n_batches`` batches on ``owner``.

        Restarts the schedule (``reset()``) when ``owner`` differs from the owner of the previous
        call, so one schedule object can be handed to several models in turn; with the same
        owner, the schedule continues where the previous fit left it. It also continues, for
        another owner, when ``initial_epoch`` k > 0 is the number of epochs it has run: the
        same training resumed by another model object (one loaded from a checkpoint), so a
        ReduceLROnPlateau keeps its reductions. ``epochs`` and ``n_batches`` let a schedule
        that anneals over "the whole training" (``T_max=None``) learn its length. A schedule at
        its start given ``initial_epoch`` k > 0 (fit resuming training with a new schedule)
        starts at epoch k (of ``n_samples`` rows each), as if it had run the k epochs before,
        its length then counting them too (one that reads metrics, ``monitor``, cannot replay
        them and starts from its first rate: fit warns).

        Parameters
        ----------
        owner : object, optional
            The model the schedule drives (None: no owner, nothing restarts).
        epochs : int, optional
            Epochs this fit call runs (from ``initial_epoch``).
        n_batches : int, optional
            Batches per epoch.
        initial_epoch : int, default=0
            The epoch this fit starts at.
        n_samples : int, optional
            Rows per epoch; needed with ``initial_epoch`` > 0.
        """
        if epochs is not None:
            epochs = check_int(epochs, "epochs", minimum=1)
        if n_batches is not None:
            n_batches = check_int(n_batches, "n_batches", minimum=1)
        initial_epoch = check_int(initial_epoch, "initial_epoch", minimum=0)
        if owner is not None:
            if self._restarts(owner, initial_epoch):
                self.reset()
            try:
                self._owner = weakref.ref(owner)
            except TypeError:  # an owner without weak references: remember its identity
                self._owner = id(owner)
        if initial_epoch and not (self.epochs_done or self.steps_done or self.samples_done):
            if n_batches is None or n_samples is None:
                raise ValueError("begin_fit(initial_epoch=...) needs n_batches and n_samples")
            self._skip_epochs(initial_epoch, n_batches, n_samples)
            epochs = None if epochs is None else epochs + initial_epoch
        self._plan(epochs, n_batches)

    def _restarts(self, owner, initial_epoch):
        """Whether begin_fit(owner, initial_epoch=...) resets the schedule: another owner,
        unless the schedule has run exactly the initial_epoch epochs (the same training,
        resumed by a model loaded from a checkpoint)."""
        resumed = initial_epoch > 0 and initial_epoch == self.epochs_done
        return owner is not None and not self._same_owner(owner) and not resumed

    def _starts_afresh(self, owner, initial_epoch):
        """Whether begin_fit(owner, initial_epoch=k) with k > 0 stands the schedule at epoch k
        without having run the epochs before (a ReduceLROnPlateau then knows none of their
        metrics)."""
        at_start = not (self.epochs_done or self.steps_done or self.samples_done)
        return initial_epoch > 0 and (self._restarts(owner, initial_epoch) or at_start)

    def _skip_epochs(self, k, n_batches, n_samples):
        """Stand at epoch ``k`` as if its first k epochs had run (no metrics observed)."""
        self.epochs_done = k
        self.steps_done = k * n_batches
        self.samples_done = k * n_samples

    def batch_lrs(self, n_batches, base_lr, *, n_samples=None):
        """Learning rates of the ``n_batches`` batches of the next epoch.

        Parameters
        ----------
        n_batches : int
            Number of batches in the epoch (> 0).
        base_lr : float
            The optimizer's learning rate (>= 0: one set to 0 later freezes the weights);
            schedules scale it (PiecewiseLR ignores it).
        n_samples : int, optional
            Number of training samples in the epoch; needed by ``InverseTimeLR(unit="sample")``.

        Returns
        -------
        lrs : ndarray of shape (n_batches,), dtype float64
            ``lrs[b]`` is the learning rate of batch ``b``; constant for per-epoch schedules.
        """
        n_batches = check_int(n_batches, "n_batches", minimum=1)
        base_lr = check_real(base_lr, "base_lr", low=0)
        if n_samples is not None:
            n_samples = check_int(n_samples, "n_samples", minimum=1)
        elif self.needs_n_samples:
            raise ValueError(f"{type(self).__name__} counts samples: batch_lrs needs n_samples")
        with np.errstate(over="ignore", invalid="ignore"):  # refused just below instead
            lrs = np.ascontiguousarray(self._lrs(n_batches, base_lr, n_samples), dtype=np.float64)
        if not np.isfinite(lrs).all() or (lrs < 0).any():
            raise ValueError(f"{self!r} gave a negative or non-finite learning rate at epoch "
                             f"{self.epochs_done} (base_lr={base_lr!r})")
        self._pending = (n_batches, n_samples or 0)
        return lrs

    def epoch_end(self, logs=None):
        """Move past the epoch whose learning rates the last ``batch_lrs`` call gave.

        Parameters
        ----------
        logs : dict, optional
            The epoch's metrics, e.g. ``{"loss": 0.31, "val_loss": 0.35}``; ReduceLROnPlateau
            reads ``logs[monitor]``, the other schedules ignore them.
        """
        if logs is not None and not isinstance(logs, Mapping):
            raise TypeError(f"logs must be a dict of metrics, got {type(logs).__name__}")
        self._observe(logs)
        n_batches, n_samples = self._pending
        self.epochs_done += 1
        self.steps_done += n_batches
        self.samples_done += n_samples
        self._pending = (0, 0)

    # -- introspection -----------------------------------------------------------------------
    def values(self, n_epochs, base_lr=1.0, *, n_batches=None, n_samples=None, logs=None):
        """The learning rates of a fresh ``n_epochs``-epoch fit, without touching this schedule.

        Runs a reset copy of the schedule through ``begin_fit``, ``batch_lrs`` and ``epoch_end``
        exactly as fit would.

        Parameters
        ----------
        n_epochs : int
        base_lr : float, default=1.0
            With the default, multiplicative schedules give their factors.
        n_batches : int, optional
            Batches per epoch; needed by schedules that change within an epoch (``per_step``).
        n_samples : int, optional
            Samples per epoch; needed by ``InverseTimeLR(unit="sample")``.
        logs : sequence of dict or of float, optional
            The metrics of each epoch, for ReduceLROnPlateau; a float stands for
            ``{monitor: value}``.

        Returns
        -------
        lrs : ndarray of shape (n_epochs,), or (n_epochs, n_batches) when n_batches is given
            Without ``n_batches``, the learning rate of each epoch.
        """
        n_epochs = check_int(n_epochs, "n_epochs", minimum=1)
        if n_batches is not None:  # 0 is no batch count at all, not "not given"
            n_batches = check_int(n_batches, "n_batches", minimum=1)
        if n_batches is None and self.per_step:
            raise ValueError(f"{self!r} changes the learning rate within an epoch: "
                             "values needs n_batches")
        if logs is not None:
            if isinstance(logs, (str, bytes, Mapping)) or not hasattr(logs, "__iter__"):
                raise TypeError(f"logs must be a list of per-epoch metrics, got "
                                f"{type(logs).__name__}")
            logs = list(logs)
            if len(logs) < n_epochs:
                raise ValueError(f"logs holds {len(logs)} epochs of metrics, "
                                 f"values needs {n_epochs}")
            for i, entry in enumerate(logs[:n_epochs]):
                if not isinstance(entry, (Mapping, numbers.Real)) or isinstance(entry, bool):
                    raise TypeError(f"logs[{i}] must be a dict of metrics or a number, got "
                                    f"{entry!r}")
            logs = [entry if isinstance(entry, Mapping)
                    else {self.monitor or "loss": float(entry)} for entry in logs]
        twin = copy.deepcopy(self)
        twin._owner = None
        twin.reset()
        twin.begin_fit(None, epochs=n_epochs, n_batches=n_batches or 1)
        rows = []
        for epoch in range(n_epochs):
            rows.append(twin.batch_lrs(n_batches or 1, base_lr, n_samples=n_samples))
            twin.epoch_end(None if logs is None else logs[epoch])
        rows = np.array(rows)
        return rows if n_batches is not None else rows[:, 0].copy()

    # -- for subclasses ----------------------------------------------------------------------
    def _lrs(self, n_batches, base_lr, n_samples):
        raise NotImplementedError

    def _observe(self, logs):
        """React to the metrics of the epoch that just ended (ReduceLROnPlateau)."""

    def _plan(self, epochs, n_batches):
        """Learn the length of the coming fit (CosineAnnealingLR with T_max=None)."""

    def _params(self):
        return {}

    def __repr__(self):
        args = ", ".join(f"{key}={value!r}" for key, value in self._params().items())
        return f"{type(self).__name__}({args})"


class _PositionSchedule(Schedule):
    """A schedule that is a closed-form function ``lr(t, base_lr)`` of its position ``t``:
    epochs done (``unit="epoch"``, constant within an epoch) or batches done (``unit="step"``,
    one value per batch)."""

    _UNITS = ("epoch", "step")

    def __init__(self, unit):
        self.unit = _check_choice(unit, "unit", self._UNITS)
        super().__init__()

    @property
    def per_step(self):
        return self.unit == "step"

    @property
    def needs_n_samples(self):
        return self.unit == "sample"

    def _positions(self, n_batches):
        if self.unit == "step":
            return self.steps_done + np.arange(n_batches, dtype=np.int64)
        start = self.epochs_done if self.unit == "epoch" else self.samples_done
        return np.full(n_batches, start, dtype=np.int64)

    def _lrs(self, n_batches, base_lr, n_samples):
        return self._lr(self._positions(n_batches), base_lr)

    def _lr(self, t, base_lr):
        """Learning rates at the positions ``t`` (int64 array); float64 array of t's shape."""
        raise NotImplementedError


# ---------------------------------------------------------------------------------- schedules
class Constant(_PositionSchedule):
    """The optimizer's learning rate, unchanged: ``lr = base_lr``."""

    def __init__(self):
        super().__init__("epoch")

    def _lr(self, t, base_lr):
        return np.full(t.shape, base_lr)


class StepLR(_PositionSchedule):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs, as torch's ``StepLR``::

        lr(t) = base_lr · gamma ** floor(t / step_size)

    with ``t`` the number of epochs (or, with ``unit="step"``, batches) done before.

    Parameters
    ----------
    step_size : int
        Period of the decay, in units (> 0).
    gamma : float, default=0.1
        Factor applied every period (> 0; above 1 the learning rate grows).
    unit : {"epoch", "step"}, default="epoch"
        What ``t`` and ``step_size`` count: epochs, or batches across epochs.
    """

    def __init__(self, step_size, *, gamma=0.1, unit="epoch"):
        self.step_size = check_int(step_size, "step_size", minimum=1, maximum=_MAX_PERIOD)
        self.gamma = check_real(gamma, "gamma", low=0, low_open=True)
        super().__init__(unit)

    def _lr(self, t, base_lr):
        return base_lr * np.power(self.gamma, t // self.step_size)

    def _params(self):
        return {"step_size": self.step_size, "gamma": self.gamma, "unit": self.unit}


class MultiStepLR(_PositionSchedule):
    """Multiply the learning rate by ``gamma`` at each milestone, as torch's ``MultiStepLR``::

        lr(t) = base_lr · gamma ** (number of milestones m with m <= t)

    Parameters
    ----------
    milestones : sequence of int
        Epochs (or batches, with ``unit="step"``) at which the decay happens; strictly increasing,
        each > 0.
    gamma : float, default=0.1
        Factor applied at each milestone (> 0).
    unit : {"epoch", "step"}, default="epoch"
    """

    def __init__(self, milestones, *, gamma=0.1, unit="epoch"):
        try:
            milestones = list(milestones)
        except TypeError:
            raise ValueError(f"milestones must be a sequence of ints, got {milestones!r}") from None
        if not milestones:
            raise ValueError("milestones must hold at least one epoch")
        milestones = [check_int(m, f"milestones[{i}]", minimum=1, maximum=_MAX_PERIOD)
                      for i, m in enumerate(milestones)]
        if any(b <= a for a, b in zip(milestones, milestones[1:])):
            raise ValueError(f"milestones must be strictly increasing, got {milestones!r}")
        self.milestones = milestones
        self.gamma = check_real(gamma, "gamma", low=0, low_open=True)
        super().__init__(unit)

    def _lr(self, t, base_lr):
        passed = np.searchsorted(np.asarray(self.milestones, dtype=np.int64), t, side="right")
        return base_lr * np.power(self.gamma, passed)

    def _params(self):
        return {"milestones": self.milestones, "gamma": self.gamma, "unit": self.unit}


class ExponentialLR(_PositionSchedule):
    """Multiply the learning rate by ``gamma`` every epoch, as torch's ``ExponentialLR``::

        lr(t) = base_lr · gamma ** t

    Parameters
    ----------
    gamma : float
        Factor per unit (> 0; above 1 the learning rate grows, as in a learning-rate range test).
    unit : {"epoch", "step"}, default="epoch"
    """

    def __init__(self, gamma, *, unit="epoch"):
        self.gamma = check_real(gamma, "gamma", low=0, low_open=True)
        super().__init__(unit)

    def _lr(self, t, base_lr):
        return base_lr * np.power(self.gamma, t)

    def _params(self):
        return {"gamma": self.gamma, "unit": self.unit}


class InverseTimeLR(_PositionSchedule):
    """Inverse scaling, scikit-learn's ``learning_rate="invscaling"``::

        lr(t) = base_lr / (t + 1) ** power_t

    Parameters
    ----------
    power_t : float, default=0.5
        Exponent (>= 0; 0 is a constant learning rate).
    unit : {"epoch", "step", "sample"}, default="epoch"
        What ``t`` counts:

        - ``"epoch"``: epochs done; epoch ``e`` trains at ``base_lr / (e + 1) ** power_t``.
        - ``"step"``: batches done, across epochs; batch ``s`` (0-based, counted from the start
          of training) trains at ``base_lr / (s + 1) ** power_t``.
        - ``"sample"``: samples seen in the epochs done, constant within an epoch; epoch ``e`` of
          ``n`` samples trains at ``base_lr / (e·n + 1) ** power_t``. This is exactly what
          scikit-learn's MLPClassifier/MLPRegressor do (their ``t_`` counts samples and the
          learning rate is updated at the end of each epoch); needs ``n_samples`` in batch_lrs.

    Notes
    -----
    scikit-learn documents ``learning_rate_init / pow(t, power_t)`` but computes
    ``learning_rate_init / (t + 1) ** power_t`` with ``t`` the samples seen; ``unit="sample"``
    follows the code. Counting samples makes the decay depend on the data set size (with
    ``power_t=0.5`` and 10,000 samples the second epoch already runs at 1% of ``base_lr``); the
    gdcore default counts epochs instead.
    """

    _UNITS = ("epoch", "step", "sample")

    def __init__(self, power_t=0.5, *, unit="epoch"):
        self.power_t = check_real(power_t, "power_t", low=0)
        super().__init__(unit)

    def _lr(self, t, base_lr):
        return base_lr / np.power(t + 1.0, self.power_t)

    def _params(self):
        return {"power_t": self.power_t, "unit": self.unit}


class CosineAnnealingLR(_PositionSchedule):
    """Cosine annealing from ``base_lr`` to ``eta_min`` over ``T_max`` epochs, as torch's
    ``CosineAnnealingLR``::

        lr(t) = eta_min + (base_lr − eta_min) · (1 + cos(π · t / T_max)) / 2

    The learning rate reaches ``eta_min`` at ``t = T_max``. As in torch, the formula keeps going
    after that: the learning rate climbs back to ``base_lr`` at ``t = 2·T_max`` (a period of
    ``2·T_max``, no restart). Set ``T_max`` to the length of training for a single descent.

    Parameters
    ----------
    T_max : int, optional
        Half period, in units (> 0). None: the length of the fit that starts the schedule
        (``epochs``, or ``epochs · n_batches`` with ``unit="step"``), learned in ``begin_fit``;
        it is kept when later fit calls continue the schedule, so training split over several
        fit calls anneals over the first call's epochs only: give ``T_max`` to split or resume
        training and get the bits of one fit.
    eta_min : float, default=0.0
        The lowest learning rate (>= 0).
    unit : {"epoch", "step"}, default="epoch"
    """

    def __init__(self, T_max=None, *, eta_min=0.0, unit="epoch"):
        self.T_max = None if T_max is None else check_int(T_max, "T_max", minimum=1,
                                                           maximum=_MAX_PERIOD)
        self.eta_min = check_real(eta_min, "eta_min", low=0)
        super().__init__(unit)

    def reset(self):
        super().reset()
        self.T_max_ = self.T_max  # the half period in use, T_max or learned from begin_fit

    def _plan(self, epochs, n_batches):
        if self.T_max is not None or (self.T_max_ is not None and self.epochs_done > 0):
            return
        if epochs is None or (self.unit == "step" and n_batches is None):
            raise ValueError("CosineAnnealingLR(T_max=None) anneals over the fit: begin_fit "
                             "needs epochs" + (" and n_batches" if self.unit == "step" else ""))
        self.T_max_ = epochs * n_batches if self.unit == "step" else epochs

    def _lr(self, t, base_lr):
        if self.T_max_ is None:
            raise ValueError("CosineAnnealingLR(T_max=None) learns T_max in begin_fit(epochs=...); "
                             "call it first, or pass T_max")
        return self.eta_min + (base_lr - self.eta_min) * (1 + np.cos(np.pi * t / self.T_max_)) / 2

    def _params(self):
        return {"T_max": self.T_max, "eta_min": self.eta_min, "unit": self.unit}


class PiecewiseLR(_PositionSchedule):
    """A preset learning rate per epoch; the last one is held after the list ends::

        lr(t) = lrs[min(t, len(lrs) − 1)]

    The values are learning rates, not factors: ``base_lr`` is ignored.

    Parameters
    ----------
    lrs : sequence of float
        One learning rate (> 0) per epoch (or per batch, with ``unit="step"``).
    unit : {"epoch", "step"}, default="epoch"
    """

    def __init__(self, lrs, *, unit="epoch"):
        if isinstance(lrs, (str, bytes, Mapping)) or not hasattr(lrs, "__len__") or len(lrs) == 0:
            raise ValueError(f"lrs must be a non-empty sequence of learning rates, got {lrs!r}")
        self.lrs = [check_real(lr, f"lrs[{i}]", low=0, low_open=True) for i, lr in enumerate(lrs)]
        super().__init__(unit)

    def _lr(self, t, base_lr):
        return np.asarray(self.lrs, dtype=np.float64)[np.minimum(t, len(self.lrs) - 1)]

    def _params(self):
        return {"lrs": self.lrs, "unit": self.unit}


class LinearWarmup(Schedule):
    """Ramp the learning rate of another schedule linearly up from ``start_factor`` of it::

        lr(e, s) = inner_lr(e, s) · (start_factor + (1 − start_factor) · min(t, W) / W)

    where ``inner_lr`` is the wrapped schedule's learning rate, ``W`` is ``warmup_epochs`` with
    ``t`` the epochs done, or ``warmup_steps`` with ``t`` the batches done (the ramp then rises
    batch by batch, across epoch boundaries). The ramp multiplies the wrapped schedule, which
    runs on its own clock from epoch 0: after the warmup the learning rates are exactly those of
    the wrapped schedule. This is torch's ``LinearLR(start_factor, end_factor=1,
    total_iters=W)``, and for a multiplicative wrapped schedule (Step, MultiStep, Exponential,
    Cosine with ``eta_min=0`` and ``T_max >= W``) torch's ``ChainedScheduler([LinearLR(...),
    inner])``.

    Parameters
    ----------
    schedule : Schedule or str, default="constant"
        The wrapped schedule (a name is passed to ``get``).
    warmup_epochs, warmup_steps : int
        Length of the ramp, in epochs or in batches (> 0); give exactly one.
    start_factor : float, default=1/3
        Factor of the first epoch (or batch), in [0, 1] (torch's default; torch refuses 0).
    """

    def __init__(self, schedule="constant", *, warmup_epochs=None, warmup_steps=None,
                 start_factor=1.0 / 3):
        if (warmup_epochs is None) == (warmup_steps is None):
            raise ValueError("LinearWarmup needs exactly one of warmup_epochs and warmup_steps, "
                             f"got warmup_epochs={warmup_epochs!r}, warmup_steps={warmup_steps!r}")
        if warmup_epochs is not None:
            self.warmup_epochs = check_int(warmup_epochs, "warmup_epochs", minimum=1,
                                            maximum=_MAX_PERIOD)
            self.warmup_steps = None
        else:
            self.warmup_steps = check_int(warmup_steps, "warmup_steps", minimum=1,
                                           maximum=_MAX_PERIOD)
            self.warmup_epochs = None
        self.start_factor = check_real(start_factor, "start_factor", low=0, high=1)
        self.schedule = get(schedule)
        super().__init__()

    @property
    def monitor(self):
        """The wrapped schedule's monitored metric (None when it reads none)."""
        return self.schedule.monitor

    @property
    def per_step(self):
        return self.warmup_steps is not None or self.schedule.per_step

    @property
    def needs_n_samples(self):
        return self.schedule.needs_n_samples

    def reset(self):
        super().reset()
        if hasattr(self, "schedule"):
            self.schedule.reset()

    def begin_fit(self, owner=None, *, epochs=None, n_batches=None, initial_epoch=0,
                  n_samples=None):
        super().begin_fit(owner, epochs=epochs, n_batches=n_batches,
                          initial_epoch=initial_epoch, n_samples=n_samples)
        self.schedule.begin_fit(owner, epochs=epochs, n_batches=n_batches,
                                initial_epoch=initial_epoch, n_samples=n_samples)

    def _lrs(self, n_batches, base_lr, n_samples):
        inner = self.schedule.batch_lrs(n_batches, base_lr, n_samples=n_samples)
        if self.warmup_steps is not None:
            t, length = self.steps_done + np.arange(n_batches, dtype=np.int64), self.warmup_steps
        else:
            t, length = np.full(n_batches, self.epochs_done, dtype=np.int64), self.warmup_epochs
        ramp = self.start_factor + (1.0 - self.start_factor) * np.minimum(t, length) / length
        return inner * ramp

    def _observe(self, logs):
        self.schedule.epoch_end(logs)

    def _params(self):
        out = {"schedule": self.schedule}
        if self.warmup_epochs is not None:
            out["warmup_epochs"] = self.warmup_epochs
        else:
            out["warmup_steps"] = self.warmup_steps
        out["start_factor"] = self.start_factor
        return out


class ReduceLROnPlateau(Schedule):
    """Reduce the learning rate when a monitored metric stops improving, as torch's
    ``ReduceLROnPlateau``.

    After each epoch, with ``x = logs[monitor]`` and ``best`` the best value so far (``mode="min"``
    shown; ``"max"`` mirrors it), an epoch *improves* when::

        x < best · (1 − threshold)     (threshold_mode="rel")
        x < best − threshold           (threshold_mode="abs")

    An improving epoch sets ``best = x`` and zeroes the count of bad epochs; any other epoch
    (NaN included) adds one. During the ``cooldown`` epochs after a reduction, bad epochs are
    not counted. When the count exceeds ``patience``, the learning rate is reduced, the count is
    zeroed and the cooldown starts::

        lr ← max(lr · factor, min_lr)      (skipped when it would change lr by eps or less)

    An epoch's learning rate is ``base_lr`` reduced once for every reduction triggered before
    it: the first epoch runs at ``base_lr``, and a reduction takes effect in the epoch after the
    one whose metric triggered it.

    Parameters
    ----------
    monitor : str, default="val_loss"
        Key of the metric in the logs fit passes to epoch_end ("loss", "val_loss", ...);
        "val_*" metrics need validation data in fit.
    mode : {"min", "max"}, default="min"
        Whether the metric improves by going down or up.
    factor : float, default=0.1
        Factor of a reduction, in (0, 1).
    patience : int, default=10
        Bad epochs tolerated before a reduction (>= 0).
    threshold : float, default=1e-4
        Smallest change that counts as an improvement (>= 0).
    threshold_mode : {"rel", "abs"}, default="rel"
        Whether ``threshold`` is relative to ``best`` or absolute.
    cooldown : int, default=0
        Epochs after a reduction during which bad epochs are not counted (>= 0).
    min_lr : float, default=0.0
        The learning rate is never reduced below this (>= 0).
    eps : float, default=1e-8
        A reduction that would change the learning rate by ``eps`` or less is skipped (>= 0).

    Attributes
    ----------
    best : float
        Best value of the metric so far (±inf before the first epoch).
    num_bad_epochs, cooldown_counter, n_reductions : int
        Bad epochs since the last improvement or reduction; epochs of cooldown left;
        reductions triggered since the last reset.
    """

    def __init__(self, monitor="val_loss", *, mode="min", factor=0.1, patience=10,
                 threshold=1e-4, threshold_mode="rel", cooldown=0, min_lr=0.0, eps=1e-8):
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(f"monitor must be the name of a metric such as 'val_loss' or 'loss', "
                             f"got {monitor!r}")
        self.monitor = monitor
        self.mode = _check_choice(mode, "mode", ("min", "max"))
        self.factor = check_real(factor, "factor", low=0, low_open=True, high=1, high_open=True)
        self.patience = check_int(patience, "patience", minimum=0)
        self.threshold = check_real(threshold, "threshold", low=0)
        self.threshold_mode = _check_choice(threshold_mode, "threshold_mode", ("rel", "abs"))
        self.cooldown = check_int(cooldown, "cooldown", minimum=0)
        self.min_lr = check_real(min_lr, "min_lr", low=0)
        self.eps = check_real(eps, "eps", low=0)
        super().__init__()

    def reset(self):
        super().reset()
        self.best = math.inf if self.mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.n_reductions = 0

    def _lrs(self, n_batches, base_lr, n_samples):
        # replay the reductions one by one, as torch applies them, for the same bits
        lr = base_lr
        for _ in range(self.n_reductions):
            new_lr = max(lr * self.factor, self.min_lr)
            if lr - new_lr <= self.eps:
                break  # lr stays put now, and so it will for every later reduction
            lr = new_lr
        return np.full(n_batches, lr)

    def _is_better(self, value):
        if self.mode == "min":
            bound = (self.best * (1.0 - self.threshold) if self.threshold_mode == "rel"
                     else self.best - self.threshold)
            return value < bound
        bound = (self.best * (1.0 + self.threshold) if self.threshold_mode == "rel"
                 else self.best + self.threshold)
        return value > bound

    def _observe(self, logs):
        if logs is None or self.monitor not in logs:
            have = sorted(logs) if logs else []
            hint = ("; fit needs validation_data, or use monitor='loss'"
                    if self.monitor.startswith("val_") else "")
            raise ValueError(f"ReduceLROnPlateau monitors {self.monitor!r}, but the epoch's logs "
                             f"hold only {have}{hint}")
        value = float(logs[self.monitor])
        if self._is_better(value):
            self.best = value
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs during the cooldown do not count
        if self.num_bad_epochs > self.patience:
            self.n_reductions += 1
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0

    def _params(self):
        return {"monitor": self.monitor, "mode": self.mode, "factor": self.factor,
                "patience": self.patience, "threshold": self.threshold,
                "threshold_mode": self.threshold_mode, "cooldown": self.cooldown,
                "min_lr": self.min_lr, "eps": self.eps}


# ---------------------------------------------------------------------------------- by name
# name: (class, default arguments, arguments the caller must give)
_BY_NAME = {
    "constant": (Constant, {}, ()),
    "step": (StepLR, {"step_size": 10}, ()),
    "multistep": (MultiStepLR, {}, ("milestones",)),
    "exponential": (ExponentialLR, {"gamma": 0.95}, ()),
    "invscaling": (InverseTimeLR, {}, ()),
    "inverse_time": (InverseTimeLR, {}, ()),
    "cosine": (CosineAnnealingLR, {}, ()),
    "piecewise": (PiecewiseLR, {}, ("lrs",)),
    "warmup": (LinearWarmup, {"warmup_epochs": 5}, ()),
    "plateau": (ReduceLROnPlateau, {}, ()),
}


def get(schedule=None, /, **kwargs):
    """Return a Schedule from a name, a Schedule (returned as is) or None (``Constant()``).

    Names and their defaults (``kwargs`` override them and are passed to the class):

    ================  ==========================================================
    "constant"        Constant()
    "step"            StepLR(step_size=10, gamma=0.1)
    "multistep"       MultiStepLR(milestones=..., gamma=0.1); milestones required
    "exponential"     ExponentialLR(gamma=0.95)
    "invscaling"      InverseTimeLR(power_t=0.5, unit="epoch"); also "inverse_time"
    "cosine"          CosineAnnealingLR(T_max=None, eta_min=0): one descent over the fit
    "piecewise"       PiecewiseLR(lrs=...); lrs required
    "warmup"          LinearWarmup("constant", warmup_epochs=5, start_factor=1/3)
    "plateau"         ReduceLROnPlateau(monitor="val_loss", factor=0.1, patience=10)
    ================  ==========================================================

    A name makes a new object on every call, so a schedule given to fit by name starts afresh
    in every fit call.
    """
    if schedule is None and "schedule" in kwargs:
        schedule = kwargs.pop("schedule")  # get(schedule="cosine"): given as a keyword
    if isinstance(schedule, Schedule):
        if kwargs:
            raise ValueError("keyword arguments are for a schedule given by name, "
                             f"not for the object {schedule!r}")
        return schedule
    if schedule is None:
        if kwargs:
            raise ValueError(f"keyword arguments {sorted(kwargs)} are for a schedule given by "
                             f"name, e.g. get('step', ...); schedule is None")
        return Constant()
    if isinstance(schedule, str) and schedule.lower() in _BY_NAME:
        cls, defaults, required = _BY_NAME[schedule.lower()]
        if cls is LinearWarmup and "warmup_steps" in kwargs:  # one or the other, not both
            defaults = {}
        accepted = inspect.signature(cls).parameters
        unknown = sorted(name for name in kwargs if name not in accepted)
        if unknown:
            raise TypeError(f"schedule {schedule!r} ({cls.__name__}) takes no argument "
                            f"{', '.join(unknown)}; it takes {', '.join(accepted) or 'none'}")
        missing = [name for name in required if name not in kwargs]
        if missing:
            raise ValueError(f"schedule {schedule!r} needs {', '.join(missing)}: "
                             f"get({schedule!r}, {missing[0]}=...) or {cls.__name__}(...)")
        return cls(**{**defaults, **kwargs})
    raise ValueError(f"schedule must be a gdcore.schedules.Schedule, None or one of "
                     f"{sorted(_BY_NAME)}, got {schedule!r}")
