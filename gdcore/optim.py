"""Optimizers. An optimizer holds hyperparameters and its per-parameter state; the update itself
runs in the C core over the model's flat parameter buffer, in place."""
import numbers

import numpy as np


def _check_number(value, name, *, positive=False, upper=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < 0 or (positive and value == 0) or (upper is not None and value > upper):
        allowed = "> 0" if positive else ">= 0"
        if upper is not None:
            allowed += f" and <= {upper}"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return float(value)


class Optimizer:
    """Base class. Subclasses define ``spec()`` (the C struct's fields) and the state they keep."""

    def __init__(self):
        self.state = {}

    def _state_for(self, model):
        """Per-model state (momentum buffer and step count), reset if the model's layout changed."""
        n_params, dtype = model.n_params, model.dtype
        state = self.state
        if state.get("owner") is not model or state["velocity"].shape != (n_params,) \
                or state["velocity"].dtype != dtype:
            state.clear()
            state.update(owner=model, step=0, velocity=np.zeros(n_params, dtype=dtype))
        return state

    def reset(self):
        """Forget the momentum buffer and step count."""
        self.state.clear()


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening, Nesterov and weight decay.

    The update is PyTorch's (``torch.optim.SGD``), for gradient ``g`` of parameter ``p``::

        g ← g + weight_decay·p
        v ← g                                  (first step)
        v ← momentum·v + (1 − dampening)·g     (later steps; only when momentum ≠ 0)
        p ← p − lr·(g + momentum·v)            (nesterov)
        p ← p − lr·v                           (otherwise; p − lr·g when momentum = 0)

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

    def __init__(self, lr=0.01, *, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
        super().__init__()
        self.lr = _check_number(lr, "lr", positive=True)
        self.momentum = _check_number(momentum, "momentum")
        if self.momentum >= 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        self.dampening = _check_number(dampening, "dampening", upper=1)
        self.weight_decay = _check_number(weight_decay, "weight_decay")
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"nesterov must be a bool, got {nesterov!r}")
        if nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov momentum requires momentum > 0 and dampening = 0")
        self.nesterov = bool(nesterov)

    def spec(self, lr=None):
        """The (lr, momentum, dampening, weight_decay, nesterov) tuple the C core takes."""
        return (self.lr if lr is None else float(lr), self.momentum, self.dampening,
                self.weight_decay, int(self.nesterov))

    def __repr__(self):
        return (f"SGD(lr={self.lr}, momentum={self.momentum}, dampening={self.dampening}, "
                f"nesterov={self.nesterov}, weight_decay={self.weight_decay})")


_BY_NAME = {"sgd": SGD}


def get(optimizer, lr=None):
    """Return an Optimizer from a name ("sgd") or an Optimizer object (returned as is)."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() in _BY_NAME:
        return _BY_NAME[optimizer.lower()](**({} if lr is None else {"lr": lr}))
    raise ValueError(f"optimizer must be a gdcore.optim.Optimizer or one of {sorted(_BY_NAME)}, "
                     f"got {optimizer!r}")
