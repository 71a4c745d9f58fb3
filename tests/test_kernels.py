"""Every C kernel wrapper in ``gdcore._core`` against its pure-NumPy twin in ``gdcore.reference``.

float32 is compared with rtol 1e-5 and float64 with rtol 1e-12 (plus a small atol for values
near zero); the edge cases (logits of ±1e4, sigmoid of ±1e4, equal logits, bad class indices)
check that the C core stays finite and exact where the NumPy twin is.
"""
import math

import numpy as np
import pytest

import gdcore as gd
from gdcore import _core, losses
from gdcore import reference as ref
from gdcore.layers import ACTIVATIONS, NEGATIVE_SLOPE

DTYPES = (np.float32, np.float64)
ACT_NAMES = tuple(ACTIVATIONS)
LOSS_NAMES = ("cross_entropy", "binary_cross_entropy", "mse", "mae", "huber", "hinge")
INDEX_LOSSES = ("cross_entropy", "hinge")


def tol(dtype, atol32=1e-6, atol64=1e-14):
    """assert_allclose keywords for ``dtype``."""
    if dtype == np.float32:
        return {"rtol": 1e-5, "atol": atol32}
    return {"rtol": 1e-12, "atol": atol64}


def kind(name):
    return losses.get(name).kind


def pre_activations(rng, dtype):
    """Random values plus the awkward ones: zero, tiny, the saturating range, ±1e4."""
    special = [0.0, 1e-8, -1e-8, 0.5, -0.5, 1.0, -1.0, 3.0, -3.0, 5.0, -5.0, 20.0, -20.0,
               80.0, -80.0, 1e4, -1e4]
    return np.concatenate([rng.normal(scale=3.0, size=200), special]).astype(dtype)


def reference_activation(name, dtype, seed):
    """(Z, A, dA, dZ) from the NumPy twin: pre-activations, A = act(Z), a random upstream
    gradient dA and dZ = act'(Z)·dA."""
    rng = np.random.default_rng(seed)
    Z = pre_activations(rng, dtype)
    A = ref.act_forward(name, Z, NEGATIVE_SLOPE)
    dA = rng.normal(size=Z.shape).astype(dtype)
    return Z, A, dA, ref.act_backward(name, Z, A, dA, NEGATIVE_SLOPE)


def random_targets(rng, name, n_rows, n_out, dtype):
    """(y_real, y_index) for loss ``name``: exactly one of them is None."""
    if name in INDEX_LOSSES:
        return None, rng.integers(0, n_out, size=n_rows).astype(np.int64)
    if name == "binary_cross_entropy":
        return rng.uniform(0, 1, size=(n_rows, n_out)).astype(dtype), None
    return rng.normal(size=(n_rows, n_out)).astype(dtype), None


def c_loss(name, out, y_real, y_index, delta=1.0, with_grad=True):
    """Run _core.loss_rows; return (status, row_loss, grad or None)."""
    row_loss = np.full(out.shape[0], np.nan, dtype=out.dtype)
    grad = np.full_like(out, np.nan) if with_grad else None
    status = _core.loss_rows(kind(name), delta, out, y_real, y_index, row_loss, grad)
    return status, row_loss, grad


def ref_target(y_real, y_index):
    return y_index if y_real is None else y_real


# ------------------------------------------------------------------------------ activations
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ACT_NAMES)
def test_act_forward_matches_reference(name, dtype):
    rng = np.random.default_rng(1)
    Z = pre_activations(rng, dtype)
    A = np.full_like(Z, np.nan)
    _core.act_forward(ACTIVATIONS[name], NEGATIVE_SLOPE, Z, A)
    expected = ref.act_forward(name, Z, NEGATIVE_SLOPE)
    assert A.dtype == dtype
    np.testing.assert_allclose(A, expected, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ACT_NAMES)
def test_act_backward_matches_reference(name, dtype):
    Z, A, dA, expected = reference_activation(name, dtype, seed=2)
    dZ = np.full_like(Z, np.nan)
    _core.act_backward(ACTIVATIONS[name], NEGATIVE_SLOPE, Z, A, dA, dZ)
    np.testing.assert_allclose(dZ, expected, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_leaky_relu_uses_the_given_slope(dtype):
    Z = np.array([-2.0, -0.5, 0.0, 0.5, 2.0], dtype=dtype)
    A = np.empty_like(Z)
    _core.act_forward(ACTIVATIONS["leaky_relu"], 0.2, Z, A)
    np.testing.assert_allclose(A, [-0.4, -0.1, 0.0, 0.5, 2.0], **tol(dtype))
    dZ = np.empty_like(Z)
    _core.act_backward(ACTIVATIONS["leaky_relu"], 0.2, Z, A, np.ones_like(Z), dZ)
    # torch: leaky_relu'(0) = slope, relu'(0) = 0
    np.testing.assert_allclose(dZ, [0.2, 0.2, 0.2, 1.0, 1.0], **tol(dtype))
    _core.act_backward(ACTIVATIONS["relu"], 0.2, Z, A, np.ones_like(Z), dZ)
    np.testing.assert_array_equal(dZ, [0, 0, 0, 1, 1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ACT_NAMES)
def test_act_forward_and_backward_in_place(name, dtype):
    """The headers allow A to alias Z and dZ to alias dA (the dense layer relies on it)."""
    Z, expected_A, dA, expected_dZ = reference_activation(name, dtype, seed=3)
    buf = Z.copy()
    _core.act_forward(ACTIVATIONS[name], NEGATIVE_SLOPE, buf, buf)
    np.testing.assert_allclose(buf, expected_A, **tol(dtype))
    _core.act_backward(ACTIVATIONS[name], NEGATIVE_SLOPE, Z, expected_A, dA, dA)
    np.testing.assert_allclose(dA, expected_dZ, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_and_tanh_saturate_without_nan(dtype):
    Z = np.array([1e4, -1e4, 1e3, -1e3, 100.0, -100.0], dtype=dtype)
    for name, high, low in (("sigmoid", 1.0, 0.0), ("tanh", 1.0, -1.0)):
        A = np.full_like(Z, np.nan)
        _core.act_forward(ACTIVATIONS[name], NEGATIVE_SLOPE, Z, A)
        assert np.isfinite(A).all(), name
        np.testing.assert_array_equal(A[0:4:2], high)  # ±1e4, ±1e3: exactly saturated
        np.testing.assert_array_equal(A[1:4:2], low)
        np.testing.assert_allclose(A[4:], [high, low], rtol=0, atol=1e-30)
        dZ = np.full_like(Z, np.nan)
        _core.act_backward(ACTIVATIONS[name], NEGATIVE_SLOPE, Z, A, np.ones_like(Z), dZ)
        np.testing.assert_array_equal(dZ[:4], 0.0)
        np.testing.assert_allclose(dZ, 0.0, rtol=0, atol=1e-30)
    A = np.empty_like(Z)
    _core.act_forward(ACTIVATIONS["gelu"], NEGATIVE_SLOPE, Z, A)
    np.testing.assert_allclose(A, np.where(Z > 0, Z, 0), **tol(dtype))


# ------------------------------------------------------------------------------ losses
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", LOSS_NAMES)
def test_loss_rows_matches_reference(name, dtype):
    rng = np.random.default_rng(4)
    n_rows, n_out, delta = 7, 4, 0.7
    out = rng.normal(scale=2.0, size=(n_rows, n_out)).astype(dtype)
    y_real, y_index = random_targets(rng, name, n_rows, n_out, dtype)
    status, row_loss, grad = c_loss(name, out, y_real, y_index, delta)
    assert status == _core.OK
    value, expected_grad = ref.loss_forward_backward(name, out, ref_target(y_real, y_index), delta)
    assert row_loss.dtype == dtype and grad.dtype == dtype
    np.testing.assert_allclose(row_loss.sum(dtype=np.float64), value, **tol(dtype))
    np.testing.assert_allclose(grad, expected_grad, **tol(dtype, atol32=1e-7, atol64=1e-15))
    # Row r's share is the loss of row r alone divided by the number of rows.
    for r in range(n_rows):
        one = ref.loss_forward_backward(name, out[r:r + 1],
                                        ref_target(y_real, y_index)[r:r + 1], delta)[0]
        np.testing.assert_allclose(row_loss[r], one / n_rows, **tol(dtype))
    # Without a gradient buffer the row losses are the same.
    status, row_loss_only, _ = c_loss(name, out, y_real, y_index, delta, with_grad=False)
    assert status == _core.OK
    np.testing.assert_array_equal(row_loss_only, row_loss)


@pytest.mark.parametrize("dtype", DTYPES)
def test_loss_rows_at_the_kinks_follows_torch(dtype):
    """mae: sign(0) = 0; huber: |d| == delta is on the linear side; hinge: a zero margin is
    inactive -- the subgradients torch's autograd gives, as the reference documents."""
    out = np.array([[1.0, 2.0, 0.0], [0.5, -1.0, 3.0]], dtype=dtype)
    y = np.array([[1.0, 1.0, 0.5], [0.5, 0.0, 0.0]], dtype=dtype)
    for name, delta in (("mae", 1.0), ("huber", 1.0), ("huber", 0.5)):
        status, row_loss, grad = c_loss(name, out, y, None, delta)
        assert status == _core.OK
        value, expected_grad = ref.loss_forward_backward(name, out, y, delta)
        np.testing.assert_allclose(row_loss.sum(), value, **tol(dtype))
        np.testing.assert_allclose(grad, expected_grad, **tol(dtype))
    n_el = out.size
    _, _, grad = c_loss("mae", out, y, None)
    np.testing.assert_allclose(grad * n_el, [[0, 1, -1], [0, -1, 1]], **tol(dtype))
    logits = np.array([[1.0, 0.0, 0.0], [2.0, 1.0, 1.5]], dtype=dtype)
    y_index = np.array([0, 0], dtype=np.int64)  # margins: exactly 0 | 0, 0.5
    status, row_loss, grad = c_loss("hinge", logits, None, y_index)
    assert status == _core.OK
    np.testing.assert_allclose(row_loss.sum(), 0.5 / 3 / 2, **tol(dtype))
    np.testing.assert_allclose(grad * 6, [[0, 0, 0], [-1, 0, 1]], **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_logits_1e4_are_finite_and_exact(dtype):
    out = np.array([[1e4, -1e4, 0.0],
                    [1e4, -1e4, 0.0],
                    [-1e4, -1e4, 1e4],
                    [1e4, 1e4, -1e4]], dtype=dtype)
    y_index = np.array([0, 1, 0, 1], dtype=np.int64)
    status, row_loss, grad = c_loss("cross_entropy", out, None, y_index)
    assert status == _core.OK
    assert np.isfinite(row_loss).all() and np.isfinite(grad).all()
    # rows: log-sum-exp is 1e4 (or 1e4 + log 2); the loss is lse - z[y]
    expected = np.array([0.0, 2e4, 2e4, math.log(2.0)]) / 4
    np.testing.assert_allclose(row_loss, expected, **tol(dtype))
    expected_grad = np.array([[0, 0, 0], [1, -1, 0], [-1, 0, 1], [0.5, -0.5, 0]]) / 4
    np.testing.assert_allclose(grad, expected_grad, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_large_close_logits_keep_precision(dtype):
    """Logits of about 1e4 that differ by O(1): the loss is O(1) and must keep its relative
    precision (log-sum-exp relative to the row max, no 1e4 + 0.47 - 1e4 cancellation)."""
    out = np.array([[1e4, 1e4 - 0.5, -1e4],
                    [-1e4, -1e4 + 0.25, 3.0],
                    [1e3, 1e3 + 1.0, 1e3 - 2.0]], dtype=dtype)
    y_index = np.array([0, 1, 2], dtype=np.int64)
    status, row_loss, grad = c_loss("cross_entropy", out, None, y_index)
    assert status == _core.OK
    value, expected_grad = ref.loss_forward_backward("cross_entropy", out, y_index)
    for r in range(3):
        expected = ref.loss_forward_backward("cross_entropy", out[r:r + 1], y_index[r:r + 1])[0] / 3
        np.testing.assert_allclose(row_loss[r], expected, rtol=tol(dtype)["rtol"],
                                   err_msg=f"row {r}")
    np.testing.assert_allclose(grad, expected_grad, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_all_equal_logits(dtype):
    n_rows, n_out = 3, 5
    out = np.full((n_rows, n_out), 7.25, dtype=dtype)
    y_index = np.array([0, 4, 2], dtype=np.int64)
    status, row_loss, grad = c_loss("cross_entropy", out, None, y_index)
    assert status == _core.OK
    np.testing.assert_allclose(row_loss, math.log(n_out) / n_rows, **tol(dtype))
    expected_grad = np.full((n_rows, n_out), 1.0 / n_out)
    expected_grad[np.arange(n_rows), y_index] -= 1.0
    np.testing.assert_allclose(grad, expected_grad / n_rows, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_logits_1e4_are_finite_and_exact(dtype):
    out = np.array([[1e4, -1e4, 1e4, -1e4, 0.0]], dtype=dtype)
    y = np.array([[1.0, 1.0, 0.0, 0.0, 1.0]], dtype=dtype)
    status, row_loss, grad = c_loss("binary_cross_entropy", out, y, None)
    assert status == _core.OK
    assert np.isfinite(row_loss).all() and np.isfinite(grad).all()
    n_el = out.size
    np.testing.assert_allclose(row_loss.sum(), (0 + 1e4 + 1e4 + 0 + math.log(2.0)) / n_el,
                               **tol(dtype))
    np.testing.assert_allclose(grad, np.array([[0.0, -1.0, 1.0, 0.0, -0.5]]) / n_el, **tol(dtype))
    value, expected_grad = ref.loss_forward_backward("binary_cross_entropy", out, y)
    np.testing.assert_allclose(row_loss.sum(), value, **tol(dtype))
    np.testing.assert_allclose(grad, expected_grad, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", INDEX_LOSSES)
@pytest.mark.parametrize("bad", [3, -1, 2**40])
def test_class_index_out_of_range_is_err_label(name, dtype, bad):
    out = np.zeros((3, 3), dtype=dtype)
    y_index = np.array([0, bad, 1], dtype=np.int64)
    status, _, _ = c_loss(name, out, None, y_index)
    assert status == _core.ERR_LABEL
    status, _, _ = c_loss(name, out, None, y_index, with_grad=False)
    assert status == _core.ERR_LABEL


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bad", [1.5, -1e-3, np.nan, np.inf])
def test_binary_target_outside_0_1_is_err_target(dtype, bad):
    out = np.zeros((3, 2), dtype=dtype)
    y_real = np.array([[0, 1], [0.5, bad], [1, 0]], dtype=dtype)
    for with_grad in (True, False):
        status, _, _ = c_loss("binary_cross_entropy", out, y_real, None, with_grad=with_grad)
        assert status == _core.ERR_TARGET
    y_real[1, 1] = 1.0
    assert c_loss("binary_cross_entropy", out, y_real, None)[0] == _core.OK
    assert c_loss("mse", out, np.full_like(y_real, 7.0), None)[0] == _core.OK  # BCE only


@pytest.mark.parametrize("dtype", DTYPES)
def test_loss_rows_without_the_targets_it_needs_is_err_arg(dtype):
    out = np.zeros((2, 3), dtype=dtype)
    y_real = np.zeros((2, 3), dtype=dtype)
    y_index = np.zeros(2, dtype=np.int64)
    assert c_loss("cross_entropy", out, y_real, None)[0] == _core.ERR_ARG
    assert c_loss("mse", out, None, y_index)[0] == _core.ERR_ARG


# ------------------------------------------------------------------------------ penalty
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("l1, l2", [(0.0, 0.0), (0.03, 0.0), (0.0, 0.2), (0.03, 0.2)])
def test_penalty_matches_reference(l1, l2, dtype):
    rng = np.random.default_rng(5)
    W = rng.normal(size=40).astype(dtype)
    W[[3, 17]] = 0.0  # sign(0) = 0
    grad0 = rng.normal(size=40).astype(dtype)
    grad = grad0.copy()
    value = _core.penalty(l1, l2, W, grad)
    expected_value, (expected_grad,) = ref.penalty([W], l1, l2)
    np.testing.assert_allclose(value, expected_value, **tol(dtype))
    np.testing.assert_allclose(grad, grad0 + expected_grad, **tol(dtype))
    if l1 == 0 and l2 == 0:
        assert value == 0
        np.testing.assert_array_equal(grad, grad0)
    else:
        assert value > 0


# ------------------------------------------------------------------------------ dense layer
DENSE_SHAPES = [(9, 5, 4), (70, 130, 33)]


def dense_inputs(rng, dtype, B, n_in, n_out):
    X = rng.normal(size=(B, n_in)).astype(dtype)
    W = (rng.normal(size=(n_in, n_out)) / np.sqrt(n_in)).astype(dtype)
    b = rng.normal(size=n_out).astype(dtype)
    return X, W, b


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", DENSE_SHAPES)
@pytest.mark.parametrize("name", ACT_NAMES)
def test_dense_forward_matches_reference(name, shape, dtype):
    rng = np.random.default_rng(6)
    B, n_in, n_out = shape
    X, W, b = dense_inputs(rng, dtype, B, n_in, n_out)
    Z = np.full((B, n_out), np.nan, dtype=dtype)
    A = np.full((B, n_out), np.nan, dtype=dtype)
    _core.dense_forward(ACTIVATIONS[name], NEGATIVE_SLOPE, X, W, b, Z, A)
    expected_Z, expected_A = ref.dense_forward(X, W, b, name, NEGATIVE_SLOPE)
    np.testing.assert_allclose(Z, expected_Z, **tol(dtype, atol32=1e-5, atol64=1e-13))
    np.testing.assert_allclose(A, expected_A, **tol(dtype, atol32=1e-5, atol64=1e-13))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", DENSE_SHAPES)
@pytest.mark.parametrize("name", ACT_NAMES)
def test_dense_backward_matches_reference(name, shape, dtype):
    rng = np.random.default_rng(7)
    B, n_in, n_out = shape
    X, W, b = dense_inputs(rng, dtype, B, n_in, n_out)
    Z, A = ref.dense_forward(X, W, b, name, NEGATIVE_SLOPE)
    dA = rng.normal(size=(B, n_out)).astype(dtype)
    exp_dW, exp_db, exp_dX = ref.dense_backward(X, W, Z, A, dA, name, True, NEGATIVE_SLOPE)
    exp_dZ = ref.act_backward(name, Z, A, dA, NEGATIVE_SLOPE)
    close = tol(dtype, atol32=1e-4, atol64=1e-12)  # sums over up to 130 terms

    work = dA.copy()
    dW = np.full((n_in, n_out), np.nan, dtype=dtype)
    db = np.full(n_out, np.nan, dtype=dtype)
    dX = np.full((B, n_in), np.nan, dtype=dtype)
    _core.dense_backward(ACTIVATIONS[name], NEGATIVE_SLOPE, X, W, Z, A, work, dW, db, dX)
    np.testing.assert_allclose(work, exp_dZ, **tol(dtype))  # dA now holds dZ
    np.testing.assert_allclose(dW, exp_dW, **close)
    np.testing.assert_allclose(db, exp_db, **close)
    np.testing.assert_allclose(dX, exp_dX, **close)

    # Without dX (the first layer) the weight gradients are the same.
    work = dA.copy()
    dW2 = np.full_like(dW, np.nan)
    db2 = np.full_like(db, np.nan)
    _core.dense_backward(ACTIVATIONS[name], NEGATIVE_SLOPE, X, W, Z, A, work, dW2, db2, None)
    np.testing.assert_array_equal(dW2, dW)
    np.testing.assert_array_equal(db2, db)


# ------------------------------------------------------------------------------ SGD update
SGD_CONFIGS = {
    "plain": dict(lr=0.1),
    "weight_decay": dict(lr=0.1, weight_decay=0.05),
    "momentum": dict(lr=0.05, momentum=0.9),
    "dampening": dict(lr=0.05, momentum=0.9, dampening=0.3),
    "nesterov": dict(lr=0.05, momentum=0.8, nesterov=True),
    "everything": dict(lr=0.02, momentum=0.7, nesterov=True, weight_decay=0.01),
    "damped_decay": dict(lr=0.02, momentum=0.5, dampening=0.5, weight_decay=0.1),
}


def sgd_tuple(config):
    return (config["lr"], config.get("momentum", 0.0), config.get("dampening", 0.0),
            config.get("weight_decay", 0.0), int(config.get("nesterov", False)))


def sgd_update(hyper, first_step, grad, param, velocity):
    """One SGD step through the C optimizer kernel; hyper = (lr, momentum, dampening,
    weight_decay, nesterov)."""
    lr, momentum, dampening, weight_decay, nesterov = hyper
    spec = gd.optim.SGD(lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=bool(nesterov)).spec()
    _core.optim_update(spec, lr, 1 if first_step else 2, grad, param, velocity)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", list(SGD_CONFIGS))
def test_sgd_update_matches_reference(config, dtype):
    hyper = SGD_CONFIGS[config]
    rng = np.random.default_rng(8)
    n = 50
    param = rng.normal(size=n).astype(dtype)
    velocity = np.zeros(n, dtype=dtype)
    ref_param, ref_buf = param.copy(), np.zeros(n, dtype=dtype)
    for step in range(4):
        grad = rng.normal(size=n).astype(dtype)
        grad_before = grad.copy()
        sgd_update(sgd_tuple(hyper), step == 0, grad, param, velocity)
        ref.sgd_step(ref_param, grad, ref_buf, step, **hyper)
        np.testing.assert_array_equal(grad, grad_before)  # the gradient is read-only
        np.testing.assert_allclose(param, ref_param, **tol(dtype))
        if hyper.get("momentum", 0.0):
            np.testing.assert_allclose(velocity, ref_buf, **tol(dtype))
        else:
            np.testing.assert_array_equal(velocity, 0.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sgd_update_first_step_copies_the_gradient_into_velocity(dtype):
    """torch: on the first step buf = g (no (1 - dampening) factor), whatever velocity held."""
    grad = np.array([1.0, -2.0, 0.5], dtype=dtype)
    param = np.array([0.0, 1.0, 2.0], dtype=dtype)
    velocity = np.array([100.0, 100.0, 100.0], dtype=dtype)
    sgd_update((0.1, 0.9, 0.5, 0.0, 0), True, grad, param, velocity)
    np.testing.assert_allclose(velocity, grad, **tol(dtype))
    np.testing.assert_allclose(param, [-0.1, 1.2, 1.95], **tol(dtype))
    # second step: v = 0.9·v + 0.5·g; p -= 0.1·v
    sgd_update((0.1, 0.9, 0.5, 0.0, 0), False, grad, param, velocity)
    np.testing.assert_allclose(velocity, 1.4 * grad, **tol(dtype))
    np.testing.assert_allclose(param, [-0.24, 1.48, 1.88], **tol(dtype))


# ------------------------------------------------------------------------------ finiteness check
@pytest.mark.parametrize("dtype", DTYPES)
def test_any_nonfinite_matches_numpy(dtype):
    """fit's check of X, split into 65,536-element blocks over the threads: any inf or NaN, in
    any block, at either end of one or in a vector tail, is found on any thread count."""
    n = 3 * 65536 + 37
    x = np.random.default_rng(0).normal(size=n).astype(dtype)
    for threads in (1, 2, 3, 8):
        assert _core.any_nonfinite(x, threads) is False
    for position in (0, 65535, 65536, 2 * 65536 + 5, n - 1):
        for value in (np.nan, np.inf, -np.inf):
            y = x.copy()
            y[position] = value
            for threads in (1, 2, 3):
                assert _core.any_nonfinite(y, threads) is True, (position, value, threads)
    big = np.array([np.finfo(dtype).max, -np.finfo(dtype).max, np.finfo(dtype).tiny], dtype=dtype)
    assert _core.any_nonfinite(big, 2) is False
    assert _core.any_nonfinite(np.empty(0, dtype=dtype), 2) is False


def test_fit_refuses_a_nan_in_the_last_block_on_two_threads():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 40)).astype(np.float32)  # 80,000 values: two blocks
    X[-1, -1] = np.nan
    y = rng.integers(0, 3, 2000)
    model = gd.MLP([40, 8, 3], seed=0)
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"^X contains NaN or infinity"):
        model.fit(X, y, epochs=1, n_threads=2, verbose=0)
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)
