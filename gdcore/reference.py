"""Pure-NumPy reference implementation of the gdcore kernels.

This module is the slow, obviously-correct twin of the C core. The test
suite compares the compiled kernels against it, and the benchmarks use
:class:`ReferenceMLP` as the "NumPy reference trainer".

It depends on NumPy only. ``scipy.special.erfc`` is used for the exact GELU
when SciPy is installed; otherwise a vectorised :func:`math.erfc` is used.
Nothing is imported from ``gdcore``.

Conventions
-----------
* Dense layers are row-major: ``Z = X @ W + b`` with ``X`` of shape
  ``(B, n_in)``, ``W`` of shape ``(n_in, n_out)``, ``b`` of shape
  ``(n_out,)`` and ``Z`` of shape ``(B, n_out)``.
* All functions work for ``float32`` and ``float64`` and compute in the dtype
  of their floating-point input (scalar hyper-parameters are converted to that
  dtype first, so nothing is silently upcast).
* Losses use mean reduction and match ``torch.nn.functional``, including the
  values and (sub)gradients that PyTorch's autograd gives at the kinks.
"""

import math

import numpy as np

try:  # SciPy's erfc has native float32 and float64 loops.
    from scipy.special import erfc as _erfc
except ImportError:  # pragma: no cover - exercised only without SciPy
    _erfc_vec = np.vectorize(math.erfc, otypes=[np.float64])

    def _erfc(x):
        x = np.asarray(x)
        return _erfc_vec(x).astype(x.dtype, copy=False)


def _std_normal_cdf(z):
    """``Phi(z) = 0.5 * (1 + erf(z / sqrt(2)))``, in the dtype of ``z``.

    Evaluated as ``0.5 * erfc(-z / sqrt(2))``, which is the same function but
    avoids the cancellation in ``1 + erf(.)`` for negative ``z`` (in float32,
    ``1 + erf(-5 / sqrt(2))`` keeps almost no correct digits).
    """
    t = z.dtype.type
    return t(0.5) * _erfc(z * t(-1.0 / math.sqrt(2.0)))


__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "act_forward",
    "act_backward",
    "loss_forward_backward",
    "penalty",
    "dense_forward",
    "dense_backward",
    "sgd_step",
    "ReferenceMLP",
]

ACTIVATIONS = ("identity", "relu", "leaky_relu", "sigmoid", "tanh", "gelu")
LOSSES = ("cross_entropy", "binary_cross_entropy", "mse", "mae", "huber", "hinge")


def _as_float_array(x):
    """Return ``x`` as a float32/float64 ndarray (other dtypes -> float64)."""
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    return x


def _check_activation(name):
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; expected one of {ACTIVATIONS}")


def _check_loss(name):
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; expected one of {LOSSES}")


# ---------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------


def _sigmoid(z):
    """Numerically stable logistic function in the dtype of ``z``.

    Uses ``e = exp(-|z|)`` (always in ``(0, 1]``, so it cannot overflow)::

        sigmoid(z) = 1 / (1 + e)   if z >= 0
                     e / (1 + e)   if z <  0
    """
    one = z.dtype.type(1)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, one / (one + e), e / (one + e))


def act_forward(name, z, negative_slope=0.01):
    """Apply an activation function element-wise.

    Parameters
    ----------
    name : str
        One of :data:`ACTIVATIONS`.
    z : ndarray, float32 or float64, any shape
        Pre-activations.
    negative_slope : float, optional
        Slope ``s`` of ``leaky_relu`` for ``z <= 0``.

    Returns
    -------
    a : ndarray, same shape and dtype as `z` (always a new array)
        * identity:   ``a = z``
        * relu:       ``a = max(z, 0)``
        * leaky_relu: ``a = z if z > 0 else s * z``
        * sigmoid:    ``a = 1 / (1 + exp(-z))`` (computed stably from
          ``exp(-|z|)``; no overflow even for ``|z| = 1e4``)
        * tanh:       ``a = tanh(z)``
        * gelu:       ``a = 0.5 * z * (1 + erf(z / sqrt(2))) = z * Phi(z)``
          (exact form, PyTorch's default ``approximate='none'``; evaluated as
          ``0.5 * z * erfc(-z / sqrt(2))``, which is more accurate for
          negative ``z`` in float32)
    """
    _check_activation(name)
    z = _as_float_array(z)
    t = z.dtype.type
    if name == "identity":
        return z.copy()
    if name == "relu":
        return np.where(z > 0, z, t(0))
    if name == "leaky_relu":
        return np.where(z > 0, z, t(negative_slope) * z)
    if name == "sigmoid":
        return _sigmoid(z)
    if name == "tanh":
        return np.tanh(z)
    # gelu
    return z * _std_normal_cdf(z)


def act_backward(name, z, a, grad_a, negative_slope=0.01):
    """Back-propagate through an element-wise activation.

    Parameters
    ----------
    name : str
        One of :data:`ACTIVATIONS`.
    z : ndarray, float32 or float64, any shape
        Pre-activations that were passed to :func:`act_forward`.
    a : ndarray, same shape and dtype as `z`
        The activations ``act_forward(name, z)``.
    grad_a : ndarray, same shape and dtype as `z`
        Gradient of the loss with respect to `a`.
    negative_slope : float, optional
        Slope ``s`` of ``leaky_relu``.

    Returns
    -------
    grad_z : ndarray, same shape and dtype as `z`
        ``grad_z = grad_a * act'(z)`` with

        * identity:   ``1``
        * relu:       ``1 if z > 0 else 0`` (so ``relu'(0) = 0``, as torch)
        * leaky_relu: ``1 if z > 0 else s`` (so ``leaky'(0) = s``, as torch)
        * sigmoid:    ``a * (1 - a)``
        * tanh:       ``1 - a**2``
        * gelu:       ``Phi(z) + z * phi(z)`` where
          ``Phi(z) = 0.5 * (1 + erf(z / sqrt(2)))`` and
          ``phi(z) = exp(-z**2 / 2) / sqrt(2 * pi)``
    """
    _check_activation(name)
    z = _as_float_array(z)
    t = z.dtype.type
    grad_a = np.asarray(grad_a, dtype=z.dtype)
    if name == "identity":
        return grad_a.copy()
    if name == "relu":
        return np.where(z > 0, grad_a, t(0))
    if name == "leaky_relu":
        return np.where(z > 0, grad_a, t(negative_slope) * grad_a)
    a = np.asarray(a, dtype=z.dtype)
    if name == "sigmoid":
        return grad_a * (a * (t(1) - a))
    if name == "tanh":
        return grad_a * (t(1) - a * a)
    # gelu
    cdf = _std_normal_cdf(z)
    with np.errstate(over="ignore", under="ignore"):
        # z*z may overflow to inf for huge |z|; exp(-inf) = 0 is then exact.
        pdf = np.exp(t(-0.5) * (z * z)) * t(1.0 / math.sqrt(2.0 * math.pi))
    return grad_a * (cdf + z * pdf)


# ---------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------


def _class_indices(y, batch, n_classes):
    y = np.asarray(y).reshape(-1)
    if y.shape[0] != batch:
        raise ValueError(f"expected {batch} class indices, got {y.shape[0]}")
    yi = y.astype(np.intp)
    if np.any(yi != y):
        raise ValueError("class indices must be integers")
    if batch and (yi.min() < 0 or yi.max() >= n_classes):
        raise ValueError(f"class indices must lie in [0, {n_classes})")
    return yi


def loss_forward_backward(name, out, y, delta=1.0):
    """Mean-reduced loss and its gradient with respect to the network output.

    Parameters
    ----------
    name : str
        One of :data:`LOSSES`.
    out : ndarray, float32 or float64, shape (B, O)
        Network output (logits for ``cross_entropy``,
        ``binary_cross_entropy`` and ``hinge``).
    y : ndarray
        Targets. Integer class indices of shape ``(B,)`` for
        ``cross_entropy`` and ``hinge``; real values of shape ``(B, O)``
        (anything with ``B*O`` elements is reshaped) for the others, with
        values in ``{0, 1}`` (or ``[0, 1]``) for ``binary_cross_entropy``.
    delta : float, optional
        Threshold of the Huber loss.

    Returns
    -------
    loss : float
        The mean loss, as a Python float. With ``N = B * O``, ``d = out - y``:

        * cross_entropy: ``mean_i(logsumexp(out_i) - out_i[y_i])`` (stable:
          the row max is subtracted first)
          -- ``F.cross_entropy``
        * binary_cross_entropy (with logits ``z``):
          ``sum(max(z, 0) - z*y + log1p(exp(-|z|))) / N``
          -- ``F.binary_cross_entropy_with_logits``
        * mse: ``sum(d**2) / N`` -- ``F.mse_loss``
        * mae: ``sum(|d|) / N`` -- ``F.l1_loss``
        * huber: ``sum(0.5 d**2 if |d| < delta else delta (|d| - delta/2)) / N``
          -- ``F.huber_loss``
        * hinge: ``mean_i(sum_{j != y_i} max(0, 1 - out[i, y_i] + out[i, j]) / O)``
          -- ``F.multi_margin_loss`` (``p=1, margin=1``)
    grad_out : ndarray, same shape and dtype as `out`
        ``d loss / d out``:

        * cross_entropy: ``(softmax(out) - onehot(y)) / B``
        * binary_cross_entropy: ``(sigmoid(z) - y) / N``
        * mse: ``2 d / N``
        * mae: ``sign(d) / N`` (``sign(0) = 0``)
        * huber: ``(d if |d| <= delta else delta * sign(d)) / N``
        * hinge: ``+1 / (O B)`` for every ``j != y_i`` with a positive margin
          term, ``-count_i / (O B)`` at ``j = y_i``
    """
    _check_loss(name)
    out = _as_float_array(out)
    if out.ndim != 2:
        raise ValueError(f"out must have shape (B, O), got {out.shape}")
    t = out.dtype.type
    B, O = out.shape
    rows = np.arange(B)

    if name == "cross_entropy":
        yi = _class_indices(y, B, O)
        shifted = out - out.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        s = e.sum(axis=1, keepdims=True)
        lse = np.log(s)[:, 0]
        loss = np.sum(lse - shifted[rows, yi]) / t(B)
        grad = e / s
        grad[rows, yi] -= t(1)
        grad /= t(B)
        return float(loss), grad

    if name == "hinge":
        yi = _class_indices(y, B, O)
        margins = t(1) - out[rows, yi][:, None] + out
        margins[rows, yi] = t(0)  # j == y_i is excluded from the sum
        positive = margins > 0
        loss = np.sum(np.where(positive, margins, t(0))) / t(O * B)
        grad = positive.astype(out.dtype)
        grad[rows, yi] = -positive.sum(axis=1).astype(out.dtype)
        grad /= t(O * B)
        return float(loss), grad

    y = np.asarray(y, dtype=out.dtype).reshape(out.shape)
    n = t(out.size)

    if name == "binary_cross_entropy":
        z = out
        elem = np.maximum(z, t(0)) - z * y + np.log1p(np.exp(-np.abs(z)))
        loss = np.sum(elem) / n
        grad = (_sigmoid(z) - y) / n
        return float(loss), grad

    d = out - y
    if name == "mse":
        return float(np.sum(d * d) / n), (t(2) / n) * d
    if name == "mae":
        return float(np.sum(np.abs(d)) / n), np.sign(d) / n
    # huber
    dl = t(delta)
    ad = np.abs(d)
    small = ad < dl
    elem = np.where(small, t(0.5) * d * d, dl * (ad - t(0.5) * dl))
    grad = np.where(small, d, dl * np.sign(d)) / n
    return float(np.sum(elem) / n), grad


def penalty(weights, l1=0.0, l2=0.0):
    """Elastic-net penalty on a list of weight matrices.

    Parameters
    ----------
    weights : list of ndarray
        Weight matrices ``W_k`` (biases are normally not included).
    l1, l2 : float, optional
        Penalty strengths.

    Returns
    -------
    value : float
        ``l1 * sum_k sum|W_k| + 0.5 * l2 * sum_k sum W_k**2``.
    grads : list of ndarray
        ``l1 * sign(W_k) + l2 * W_k``, one per matrix, same shape and dtype.
    """
    value = 0.0
    grads = []
    for W in weights:
        W = _as_float_array(W)
        t = W.dtype.type
        value += float(t(l1) * np.sum(np.abs(W)) + t(0.5 * l2) * np.sum(W * W))
        grads.append(t(l1) * np.sign(W) + t(l2) * W)
    return value, grads


# ---------------------------------------------------------------------------
# Dense layer
# ---------------------------------------------------------------------------


def dense_forward(X, W, b, activation, negative_slope=0.01):
    """Forward pass of one fully connected layer.

    Parameters
    ----------
    X : ndarray, shape (B, n_in)
    W : ndarray, shape (n_in, n_out)
    b : ndarray, shape (n_out,)
    activation : str
        One of :data:`ACTIVATIONS`.
    negative_slope : float, optional
        Slope of ``leaky_relu``.

    Returns
    -------
    Z : ndarray, shape (B, n_out)
        ``Z = X @ W + b``.
    A : ndarray, shape (B, n_out)
        ``A = act(Z)``.
    """
    Z = X @ W
    Z += b
    return Z, act_forward(activation, Z, negative_slope)


def dense_backward(X, W, Z, A, grad_A, activation, need_grad_X=True,
                   negative_slope=0.01):
    """Backward pass of one fully connected layer.

    Parameters
    ----------
    X : ndarray, shape (B, n_in)
        Layer input.
    W : ndarray, shape (n_in, n_out)
    Z, A : ndarray, shape (B, n_out)
        Pre-activations and activations from :func:`dense_forward`.
    grad_A : ndarray, shape (B, n_out)
        ``d loss / d A``.
    activation : str
        One of :data:`ACTIVATIONS`.
    need_grad_X : bool, optional
        Whether to compute ``grad_X`` (not needed for the first layer).
    negative_slope : float, optional
        Slope of ``leaky_relu``.

    Returns
    -------
    grad_W : ndarray, shape (n_in, n_out)
        ``X.T @ grad_Z`` where ``grad_Z = grad_A * act'(Z)``.
    grad_b : ndarray, shape (n_out,)
        ``grad_Z.sum(axis=0)``.
    grad_X : ndarray, shape (B, n_in), or None
        ``grad_Z @ W.T`` if `need_grad_X` else ``None``.
    """
    grad_Z = act_backward(activation, Z, A, grad_A, negative_slope)
    grad_W = X.T @ grad_Z
    grad_b = grad_Z.sum(axis=0)
    grad_X = grad_Z @ W.T if need_grad_X else None
    return grad_W, grad_b, grad_X


# ---------------------------------------------------------------------------
# Optimizer
# ---------------------------------------------------------------------------


def sgd_step(param, grad, buf, step, lr, momentum=0.0, dampening=0.0,
             nesterov=False, weight_decay=0.0):
    """One in-place SGD update, exactly as ``torch.optim.SGD``.

    With ``g = grad + weight_decay * param``::

        if momentum != 0:
            buf = g                                  if step == 0
                  momentum * buf + (1 - dampening) * g   otherwise
            g = g + momentum * buf   if nesterov else   buf
        param -= lr * g

    Parameters
    ----------
    param : ndarray, float32 or float64
        Parameter, updated in place.
    grad : ndarray, same shape as `param`
        Gradient (not modified).
    buf : ndarray, same shape and dtype as `param`, or None
        Momentum buffer, updated in place. May be ``None`` when
        ``momentum == 0``.
    step : int
        Number of steps already taken with this buffer (0 for the first).
    lr, momentum, dampening, weight_decay : float
        Hyper-parameters as in ``torch.optim.SGD``.
    nesterov : bool
        Use Nesterov momentum.

    Returns
    -------
    None
    """
    t = param.dtype.type
    g = np.asarray(grad, dtype=param.dtype)
    if weight_decay != 0:
        g = g + t(weight_decay) * param
    if momentum != 0:
        if buf is None:
            raise ValueError("a momentum buffer is required when momentum != 0")
        if step == 0:
            buf[...] = g
        else:
            buf *= t(momentum)
            buf += t(1.0 - dampening) * g
        g = g + t(momentum) * buf if nesterov else buf
    param -= t(lr) * g


# ---------------------------------------------------------------------------
# Whole network
# ---------------------------------------------------------------------------


class ReferenceMLP:
    """Multi-layer perceptron trained with mini-batch SGD, in plain NumPy.

    Layer ``k`` computes ``A_k = act_k(A_{k-1} @ W_k + b_k)`` with
    ``A_{-1} = X``; the network output is the last ``A``.

    Parameters
    ----------
    weights : list of ndarray
        ``[W0, b0, W1, b1, ...]`` with ``W_k`` of shape ``(n_k, n_{k+1})`` and
        ``b_k`` of shape ``(n_{k+1},)``. The arrays are copied; the dtype of
        ``W0`` (float32 or float64) is the dtype of the whole network.
    activations : list of str
        One activation name per layer (the last one is applied too; usually
        ``"identity"``).
    negative_slope : float, optional
        Slope of ``leaky_relu``.
    """

    def __init__(self, weights, activations, negative_slope=0.01):
        weights = list(weights)
        activations = list(activations)
        if len(weights) != 2 * len(activations) or not activations:
            raise ValueError("need one (W, b) pair per activation")
        for a in activations:
            _check_activation(a)
        dtype = _as_float_array(weights[0]).dtype
        self.dtype = dtype
        self.params = [np.array(w, dtype=dtype, copy=True) for w in weights]
        for k in range(len(activations)):
            W, b = self.params[2 * k], self.params[2 * k + 1]
            if W.ndim != 2 or b.shape != (W.shape[1],):
                raise ValueError(f"layer {k}: bad shapes W{W.shape}, b{b.shape}")
            if k and W.shape[0] != self.params[2 * k - 2].shape[1]:
                raise ValueError(f"layer {k}: input size does not match")
        self.activations = activations
        self.negative_slope = negative_slope
        self.buffers = [np.zeros_like(p) for p in self.params]
        self.step = 0  # SGD steps taken so far (shared by all parameters)
        # steps taken with momentum != 0: torch starts the buffer (buf = g) at the first of
        # them, which need not be the first step (momentum turned on later)
        self.momentum_steps = 0

    @property
    def n_layers(self):
        return len(self.activations)

    def get_weights(self):
        """Return copies of the parameters as ``[W0, b0, W1, b1, ...]``."""
        return [p.copy() for p in self.params]

    def _forward_cache(self, X):
        X = np.asarray(X, dtype=self.dtype)
        cache = []  # (input, Z, A) per layer
        A = X
        for k, act in enumerate(self.activations):
            W, b = self.params[2 * k], self.params[2 * k + 1]
            Z, A_next = dense_forward(A, W, b, act, self.negative_slope)
            cache.append((A, Z, A_next))
            A = A_next
        return cache

    def forward(self, X):
        """Network output for ``X`` of shape ``(B, n_0)``; shape ``(B, n_L)``."""
        return self._forward_cache(X)[-1][2]

    def loss_and_grad(self, X, y, loss, l1=0.0, l2=0.0, delta=1.0):
        """Loss (with penalty) and its gradient for one batch.

        Parameters
        ----------
        X : ndarray, shape (B, n_0)
        y : ndarray
            Targets, see :func:`loss_forward_backward`.
        loss : str
            One of :data:`LOSSES`.
        l1, l2 : float, optional
            Penalty ``l1 * sum|W| + 0.5 * l2 * sum W**2`` over the weight
            matrices (not the biases).
        delta : float, optional
            Huber threshold.

        Returns
        -------
        loss : float
            ``loss_forward_backward(loss, forward(X), y) + penalty``.
        grads : list of (ndarray, ndarray)
            ``[(dW0, db0), (dW1, db1), ...]``.
        """
        cache = self._forward_cache(X)
        value, grad_A = loss_forward_backward(loss, cache[-1][2], y, delta)
        grads = [None] * self.n_layers
        for k in range(self.n_layers - 1, -1, -1):
            inp, Z, A = cache[k]
            dW, db, grad_A = dense_backward(
                inp, self.params[2 * k], Z, A, grad_A, self.activations[k],
                need_grad_X=k > 0, negative_slope=self.negative_slope)
            grads[k] = (dW, db)
        if l1 != 0 or l2 != 0:
            pval, pgrads = penalty(self.params[0::2], l1, l2)
            value += pval
            for k, pg in enumerate(pgrads):
                grads[k][0][...] += pg
        return value, grads

    def train_epoch(self, X, y, perm, batch_size, loss, lr, momentum=0.0,
                    dampening=0.0, nesterov=False, weight_decay=0.0,
                    l1=0.0, l2=0.0, delta=1.0):
        """One epoch of mini-batch SGD over ``X[perm]``.

        For ``start in range(0, n, batch_size)`` the batch
        ``idx = perm[start:start + batch_size]`` is used to compute
        :meth:`loss_and_grad`, then :func:`sgd_step` is applied to every
        parameter array (weights and biases, so `weight_decay` also applies
        to biases, as with ``torch.optim.SGD`` on ``model.parameters()``).
        Momentum buffers and the step counter persist across epochs.

        Returns
        -------
        float
            ``sum_b(loss_b * B_b) / n``, the batch-size-weighted mean of the
            per-batch losses (penalty included), with ``n = len(perm)``.
        """
        X = np.asarray(X, dtype=self.dtype)
        y = np.asarray(y)
        perm = np.asarray(perm)
        n = perm.shape[0]
        total = 0.0
        for start in range(0, n, batch_size):
            idx = perm[start:start + batch_size]
            value, grads = self.loss_and_grad(X[idx], y[idx], loss, l1, l2, delta)
            total += value * idx.shape[0]
            for k, (dW, db) in enumerate(grads):
                for j, g in ((2 * k, dW), (2 * k + 1, db)):
                    sgd_step(self.params[j], g, self.buffers[j], self.momentum_steps, lr,
                             momentum, dampening, nesterov, weight_decay)
            self.step += 1
            self.momentum_steps += momentum != 0
        return total / n if n else 0.0
