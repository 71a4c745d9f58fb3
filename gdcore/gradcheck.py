"""gdcore.check_gradients: compare a model's backprop with central differences."""
import numpy as np

from . import losses
from ._validation import check_seed, check_X, check_y, finite_float
from .models import Sequential


def check_gradients(model, X, y, loss="mse", *, l1=0.0, l2=0.0, eps=1e-6, max_params=2000, seed=0):
    """Largest relative error between ``model.loss_and_grad`` and central differences.

    The check runs on a float64 copy of the model (float32 differences are too coarse), so the
    model itself is not touched. Each checked parameter ``p`` gets
    ``(L(p + eps) − L(p − eps)) / (2·eps)``, compared with the analytic gradient ``g`` as
    ``|numeric − g| / max(|numeric| + |g|, s)``, where ``s`` is the mean ``|g|`` over all the
    parameters (at least 1e-8): a parameter whose gradient is exactly 0 is then judged against
    the gradient's scale, not against the differences' rounding noise (1e-10 of it read as an
    error of 1e-2). Values near 1e-7 or below mean backprop is right, values near 1 mean it is
    wrong. Kinks (relu at 0, mae and hinge at their corners) can give isolated large errors at
    exact ties.

    Parameters
    ----------
    model : Sequential
    X : array-like of shape (n_samples, n_inputs)
    y : array-like
        Targets, as for fit.
    loss : str or Loss, default="mse"
    l1, l2 : float, default=0.0
        Weight penalties, as in fit.
    eps : float, default=1e-6
        Step of the central differences.
    max_params : int, default=2000
        Check at most this many parameters, drawn at random with ``seed`` (all when fewer).
    seed : int, default=0
        Seed of that draw (a non-negative int): the same seed checks the same parameters.
        Unused when the model has at most ``max_params`` parameters.

    Returns
    -------
    float
        The largest relative error over the checked parameters.
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a gdcore Sequential, got {type(model).__name__}")
    eps_f = finite_float(eps)
    if eps_f is None or not 0 < eps_f < 1:
        raise ValueError(f"eps must be a number in (0, 1), got {eps!r}")
    eps = eps_f
    check_seed(seed)
    if isinstance(max_params, bool) or not isinstance(max_params, (int, np.integer)) or max_params < 1:
        raise ValueError(f"max_params must be a positive int, got {max_params!r}")
    config = dict(model.get_config(), dtype="float64")
    probe = Sequential.from_config(config)
    probe._params[...] = model._params
    # checked as loss_and_grad checks them, once, in the probe's float64
    loss = losses.get(loss)
    X = check_X(X, probe.n_inputs, np.float64)
    y = check_y(y, loss, X.shape[0], probe.n_outputs, np.float64)

    _, grads = probe.loss_and_grad(X, y, loss=loss, l1=l1, l2=l2, n_threads=1)
    analytic = np.concatenate([np.concatenate([dW.ravel(), db]) for dW, db in grads])
    scale = max(float(np.mean(np.abs(analytic))), 1e-8)
    n = probe.n_params
    chosen = np.arange(n) if n <= max_params else \
        np.random.default_rng(seed).choice(n, size=max_params, replace=False)
    worst = 0.0
    for i in chosen:
        keep = probe._params[i]
        probe._params[i] = keep + eps
        plus, _ = probe.loss_and_grad(X, y, loss=loss, l1=l1, l2=l2, n_threads=1)
        probe._params[i] = keep - eps
        minus, _ = probe.loss_and_grad(X, y, loss=loss, l1=l1, l2=l2, n_threads=1)
        probe._params[i] = keep
        numeric = (plus - minus) / (2 * eps)
        error = abs(numeric - analytic[i]) / max(abs(numeric) + abs(analytic[i]), scale)
        worst = max(worst, error)
    return float(worst)
