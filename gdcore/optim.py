"""Optimizers. An optimizer holds hyperparameters and its per-parameter state; the update itself
runs in the C core (csrc/gd_optim.c) over the model's flat parameter buffer, in place, with
torch.optim's semantics and order of operations."""

import inspect

import numpy as np

from ._threads import new_lock
from ._validation import check_bool, finite_float

# Codes of csrc/gd_types.h gd_optim_kind.
_SGD, _ADAM, _ADAMW, _RMSPROP, _ADAGRAD = 0, 1, 2, 3, 4


def _check_number(value, name, *, positive=False, below=None, upper=None):
    value_f = finite_float(value)
    if value_f is None:
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value_f < 0 or (positive and value_f == 0) or (below is not None and value_f >= below) \
            or (upper is not None and value_f > upper):
        allowed = "> 0" if positive else ">= 0"
        if below is not None:
            allowed += f" and < {below}"
        if upper is not None:
            allowed += f" and <= {upper}"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return value_f


def _number(name, **bounds):
    """The assignment check of a numeric hyperparameter (see Optimizer._checks)."""
    return lambda value: _check_number(value, name, **bounds)


def _flag(name):
    """The assignment check of a bool hyperparameter."""
    return lambda value: check_bool(value, name)


def _check_betas(betas):
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    return (_check_number(betas[0], "betas[0]", below=1),
            _check_number(betas[1], "betas[1]", below=1))


_FLOAT32_MAX = float(np.finfo(np.float32).max)
_HYPERPARAMETERS = {}  # optimizer class -> names of its hyperparameters (see _check_range)


class Optimizer:
    """Base class: hyperparameters, and per-model state buffers shaped like the flat parameters.

    Subclasses set ``kind`` and implement ``_fields()`` (the hyperparameters the C core reads)
    and ``_slot_init()`` (the initial value of each state buffer they use).
    """

    kind = None
    #: Counts attribute assignments: Sequential.train_step's fast path holds the C core's copy of
    #: the hyperparameters and rebuilds it when this changes.
    _version = 0
    #: The check of each hyperparameter, run on every assignment: the constructor's and any later
    #: one (``opt.lr = -1`` is refused as ``SGD(lr=-1)`` is, and the old value kept).
    #: A learning rate set later may be 0, as a schedule's can (a manual one too); a constructor's
    #: must be > 0.
    _checks = {"lr": _number("lr")}

    def __init__(self, lr):
        self.lr = _check_number(lr, "lr", positive=True)
        self.state = {}
        # Held by a fit or train_step for its whole run, taken before the model's lock (one order
        # for every caller: no deadlock): two models training with one optimizer in two threads
        # take turns instead of stepping with each other's state.
        self._lock = new_lock(self)

    def __setattr__(self, name, value):
        check = self._checks.get(name)
        object.__setattr__(self, name, value if check is None else check(value))
        object.__setattr__(self, "_version", self._version + 1)

    def _fields(self):
        return {}

    def _slot_init(self):
        """Initial values of the state buffers this optimizer uses (at most three)."""
        return []

    def spec(self, lr=None):
        """The tuple the C core takes: (kind, lr, weight_decay, momentum, dampening, nesterov,
        beta1, beta2, eps, alpha, centered, lr_decay)."""
        f = {"weight_decay": 0.0, "momentum": 0.0, "dampening": 0.0, "nesterov": False,
             "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "alpha": 0.99, "centered": False,
             "lr_decay": 0.0}
        f.update(self._fields())
        return (self.kind, self.lr if lr is None else float(lr), f["weight_decay"], f["momentum"],
                f["dampening"], int(f["nesterov"]), f["beta1"], f["beta2"], f["eps"], f["alpha"],
                int(f["centered"]), f["lr_decay"])

    def _check_range(self, dtype):
        """Refuse hyperparameters beyond the range of the model's ``dtype``: the C core casts
        them to it, and ``eps=1e39`` in a float32 model became inf and silently froze every
        weight. Run before fit or train_step changes anything."""
        if dtype != np.float32:
            return
        limit = _FLOAT32_MAX
        names = _HYPERPARAMETERS.get(type(self))
        if names is None:  # once per class: inspect.signature costs tens of microseconds
            names = _HYPERPARAMETERS[type(self)] = ("lr", *inspect.signature(type(self)).parameters)
        for name in names:
            value = getattr(self, name, None)
            for item in value if isinstance(value, tuple) else (value,):
                if isinstance(item, (int, float)) and not isinstance(item, bool) \
                        and abs(item) > limit:
                    raise ValueError(f"{name}={value!r} is beyond the range of this float32 "
                                     f"model (largest {limit:.4g})")

    def _state_for(self, model):
        """This optimizer's state for `model`: its buffers and step count, created on first use
        and started afresh if the model's size or dtype changed, for another model, or when a
        changed hyperparameter changed which buffers the optimizer keeps (SGD's momentum turned
        on: its first step then sets the velocity to the gradient, as torch's SGD does when it
        creates its momentum buffer)."""
        state = self.state
        slots = state.get("slots")
        fits = (slots is not None and self._slots_fit(len(slots))
                and all(s.shape == (model.n_params,) and s.dtype == model.dtype for s in slots))
        if state.get("owner") is None and fits and "step" in state:
            state["owner"] = model  # an unpickled optimizer resumes with the first model it meets
        if state.get("owner") is not model or not fits:
            state.clear()
            state.update(owner=model, step=0,
                         slots=[np.full(model.n_params, value, dtype=model.dtype)
                                for value in self._slot_init()])
        return state

    def _slots_fit(self, n_slots):
        """Whether state with n_slots buffers goes on with the current hyperparameters."""
        return n_slots == len(self._slot_init())

    def slots(self, model):
        """The three state-buffer arguments of the C core (None where unused)."""
        slots = self._state_for(model)["slots"]
        return tuple(slots) + (None,) * (3 - len(slots))

    def reset(self):
        """Forget the state (buffers and step count). A fit running (reset from a callback)
        goes on with the old state to the end of the epoch, then starts afresh."""
        self.state = {}  # a new dict: the running epoch keeps the one it holds

    def __getstate__(self):
        """Pickle and copy: hyperparameters and state, not the owning model nor the lock. Waits
        for a fit or train_step running with this optimizer in another thread (as a model's
        pickle does): the step count is stored when a core call returns, the buffers change at
        every batch, so a copy taken mid-epoch would pair an old step count with newer moments.
        The buffers are copied under the lock for the same reason."""
        with self._lock:
            state = dict(self.__dict__)
            state["state"] = {k: ([slot.copy() for slot in v] if k == "slots" else v)
                              for k, v in self.state.items() if k != "owner"}
        del state["_lock"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.__dict__["_lock"] = new_lock(self)
        slots = self.state.get("slots")
        if slots is not None:  # joblib's memory-mapped loads give read-only buffers
            self.state["slots"] = [s if s.flags.writeable else s.copy() for s in slots]

    def __repr__(self):
        fields = ", ".join(f"{k}={v}" for k, v in self._fields().items())
        return f"{type(self).__name__}(lr={self.lr}{', ' if fields else ''}{fields})"


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening, Nesterov and weight decay.

    The update is PyTorch's (``torch.optim.SGD``), for gradient ``g`` of parameter ``p``::

        g ← g + weight_decay·p
        v ← g                                  (first step)
        v ← momentum·v + (1 − dampening)·g     (later steps; only when momentum ≠ 0)
        p ← p − lr·(g + momentum·v)            (nesterov)
        p ← p − lr·v                           (otherwise; p − lr·g when momentum = 0)

    The first step is the first with momentum ≠ 0. A velocity is kept, unused, while momentum is
    set to 0 and goes on when it returns, as torch's momentum buffer does.

    Full-batch, stochastic or mini-batch gradient descent is chosen by ``batch_size`` in fit.

    Parameters
    ----------
    lr : float, default=0.01
        Learning rate, > 0.
    momentum : float, default=0.0
        Momentum factor in [0, 1).
    dampening : float, default=0.0
        Dampening of the momentum, in [0, 1].
    nesterov : bool, default=False
        Nesterov momentum; requires momentum > 0 and dampening = 0.
    weight_decay : float, default=0.0
        L2 coefficient added to the gradient (applies to biases too, as torch does).
    """

    kind = _SGD

    _checks = {**Optimizer._checks,
               "momentum": _number("momentum", below=1),
               "dampening": _number("dampening", upper=1),
               "weight_decay": _number("weight_decay"),
               "nesterov": _flag("nesterov")}

    def __init__(self, lr=0.01, *, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(lr)
        self.momentum = momentum
        self.dampening = dampening
        self.weight_decay = weight_decay
        self.nesterov = nesterov
        self._check_nesterov()

    def _check_nesterov(self):
        # across attributes, so checked when the optimizer is built and each time it is used
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov momentum requires momentum > 0 and dampening = 0")

    def spec(self, lr=None):
        self._check_nesterov()
        return super().spec(lr)

    def _fields(self):
        return {"momentum": self.momentum, "dampening": self.dampening, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay}

    def _slot_init(self):
        return [0.0] if self.momentum != 0 else []

    def _slots_fit(self, n_slots):
        # As torch's momentum_buffer: a velocity outlives a spell at momentum 0 (unused then)
        # and goes on when momentum returns; only one never created starts from v = g.
        return n_slots == 1 if self.momentum != 0 else n_slots in (0, 1)


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015), as ``torch.optim.Adam`` (amsgrad off), at step t::

        g ← g + weight_decay·p
        m ← β1·m + (1 − β1)·g            (torch's lerp form)
        v ← β2·v + (1 − β2)·g²
        p ← p − lr/(1 − β1^t) · m / (√v / √(1 − β2^t) + eps)

    Parameters
    ----------
    lr : float, default=0.001
    betas : (float, float), default=(0.9, 0.999)
        Each in [0, 1).
    eps : float, default=1e-8
    weight_decay : float, default=0.0
        L2 added to the gradient (see AdamW for the decoupled form).
    """

    kind = _ADAM

    _checks = {**Optimizer._checks,
               "betas": _check_betas,
               "eps": _number("eps"),
               "weight_decay": _number("weight_decay")}

    def __init__(self, lr=0.001, *, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(lr)
        self.betas = betas
        self.eps = eps
        self.weight_decay = weight_decay

    def _fields(self):
        return {"beta1": self.betas[0], "beta2": self.betas[1], "eps": self.eps,
                "weight_decay": self.weight_decay}

    def _slot_init(self):
        return [0.0, 0.0]


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter, 2019), as ``torch.optim.AdamW``: Adam with the weight decay
    decoupled from the gradient, ``p ← p·(1 − lr·weight_decay)`` before the Adam step.

    Parameters
    ----------
    lr : float, default=0.001
    betas : (float, float), default=(0.9, 0.999)
        Each in [0, 1).
    eps : float, default=1e-8
    weight_decay : float, default=0.01
        Decoupled decay factor (torch's default); 0 makes AdamW Adam.
    """

    kind = _ADAMW

    def __init__(self, lr=0.001, *, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(lr, betas=betas, eps=eps, weight_decay=weight_decay)


class RMSprop(Optimizer):
    """RMSprop, as ``torch.optim.RMSprop``::

        g ← g + weight_decay·p
        s ← α·s + (1 − α)·g²
        d = √(s − ḡ²) + eps with ḡ ← α·ḡ + (1 − α)·g    (centered)
        d = √s + eps                                     (otherwise)
        b ← momentum·b + g/d, p ← p − lr·b              (momentum > 0)
        p ← p − lr·g/d                                   (otherwise)

    Parameters
    ----------
    lr : float, default=0.01
    alpha : float, default=0.99
        Smoothing constant in [0, 1).
    eps : float, default=1e-8
    weight_decay : float, default=0.0
    momentum : float, default=0.0
        In [0, 1).
    centered : bool, default=False
        Normalize by the estimated variance of the gradient instead of its second moment.
    """

    kind = _RMSPROP

    _checks = {**Optimizer._checks,
               "alpha": _number("alpha", below=1),
               "eps": _number("eps"),
               "weight_decay": _number("weight_decay"),
               "momentum": _number("momentum", below=1),
               "centered": _flag("centered")}

    def __init__(self, lr=0.01, *, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False):
        super().__init__(lr)
        self.alpha = alpha
        self.eps = eps
        self.weight_decay = weight_decay
        self.momentum = momentum
        self.centered = centered

    def _fields(self):
        return {"alpha": self.alpha, "eps": self.eps, "weight_decay": self.weight_decay,
                "momentum": self.momentum, "centered": self.centered}

    def _slot_init(self):
        return [0.0, 0.0, 0.0]  # square average, momentum buffer, gradient average


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011), as ``torch.optim.Adagrad``, at step t::

        g ← g + weight_decay·p
        s ← s + g²                                   (s starts at initial_accumulator_value)
        p ← p − lr/(1 + (t − 1)·lr_decay) · g / (√s + eps)

    Parameters
    ----------
    lr : float, default=0.01
    lr_decay : float, default=0.0
    weight_decay : float, default=0.0
    initial_accumulator_value : float, default=0.0
    eps : float, default=1e-10
    """

    kind = _ADAGRAD

    _checks = {**Optimizer._checks,
               "lr_decay": _number("lr_decay"),
               "weight_decay": _number("weight_decay"),
               "initial_accumulator_value": _number("initial_accumulator_value"),
               "eps": _number("eps")}

    def __init__(self, lr=0.01, *, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0,
                 eps=1e-10):
        super().__init__(lr)
        self.lr_decay = lr_decay
        self.weight_decay = weight_decay
        self.initial_accumulator_value = initial_accumulator_value
        self.eps = eps

    def _fields(self):
        return {"lr_decay": self.lr_decay, "weight_decay": self.weight_decay, "eps": self.eps}

    def _slot_init(self):
        return [self.initial_accumulator_value]


_BY_NAME = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad}


def get(optimizer, lr=None):
    """Return an Optimizer from a name (sgd, adam, adamw, rmsprop, adagrad; their defaults, and
    ``lr`` when given) or an Optimizer object (returned as is)."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() in _BY_NAME:
        return _BY_NAME[optimizer.lower()](**({} if lr is None else {"lr": lr}))
    raise ValueError(f"optimizer must be a gdcore.optim.Optimizer or one of {sorted(_BY_NAME)}, "
                     f"got {optimizer!r}")
