"""Sequential.loss_and_grad against central differences (float64, eps 1e-6) for every activation
and loss, with and without the l1/l2 penalties, and against gdcore.reference.ReferenceMLP.

Inputs and targets are placed away from every kink (relu at 0, |W| at 0 for l1, |d| at 0 for mae
and at delta for huber, zero margins for hinge) and each test asserts that it is, so the central
difference is the derivative.
"""
import warnings

import numpy as np
import pytest

import gdcore as gd
from gdcore import losses
from gdcore import reference as ref
from gdcore.layers import ACTIVATIONS, NEGATIVE_SLOPE

EPS = 1e-6
KINK_GAP = 1e-4  # every kink is at least this far away; a perturbation moves things by ~1e-6
ACT_NAMES = tuple(ACTIVATIONS)
LOSS_NAMES = ("cross_entropy", "binary_cross_entropy", "mse", "mae", "huber", "hinge")
HUBER_DELTA = 0.8


def loss_object(name):
    return losses.Huber(delta=HUBER_DELTA) if name == "huber" else losses.get(name)


def make_model(hidden, output="identity", *, dtype="float64", seed=0, sizes=(4, 5, 3)):
    layers = [gd.Dense(sizes[i], sizes[i + 1],
                       activation=hidden if i < len(sizes) - 2 else output)
              for i in range(len(sizes) - 1)]
    model = gd.Sequential(layers, dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed + 100)
    for layer in model.layers:  # non-zero biases, so db is not a special case
        layer.b[...] = rng.uniform(-0.5, 0.5, size=layer.b.shape)
    return model


def pre_activations(model, X):
    """Z of every layer, in float64, from the model's current weights."""
    out, zs = np.asarray(X, dtype=np.float64), []
    for layer in model.layers:
        Z = out @ layer.W.astype(np.float64) + layer.b
        zs.append(Z)
        out = ref.act_forward(layer.activation, Z, NEGATIVE_SLOPE)
    return zs, out


def targets_away_from_kinks(name, out, rng):
    """Targets for loss ``name`` given the network output ``out``, none of them near a kink."""
    n_rows, n_out = out.shape
    if name == "cross_entropy":
        return rng.integers(0, n_out, size=n_rows)
    if name == "binary_cross_entropy":
        return rng.uniform(0, 1, size=out.shape)
    if name == "mse":
        return rng.normal(size=out.shape)
    sign = rng.choice([-1.0, 1.0], size=out.shape)
    if name == "mae":
        return out + sign * rng.uniform(0.1, 1.0, size=out.shape)
    if name == "huber":  # both sides of delta: half quadratic, half linear
        quadratic = rng.uniform(0.1, 0.6, size=out.shape)
        linear = rng.uniform(1.0, 2.0, size=out.shape)
        return out + sign * np.where(rng.random(out.shape) < 0.5, quadratic, linear)
    if name == "hinge":
        return rng.integers(0, n_out, size=n_rows)
    raise AssertionError(name)


def assert_away_from_loss_kinks(name, out, y):
    if name == "mae":
        assert np.abs(out - y).min() > KINK_GAP
    elif name == "huber":
        d = np.abs(out - y)
        assert np.abs(d - HUBER_DELTA).min() > KINK_GAP
        assert (d < HUBER_DELTA).any() and (d > HUBER_DELTA).any()  # both branches are checked
    elif name == "hinge":
        rows = np.arange(out.shape[0])
        margins = 1 - out[rows, y][:, None] + out
        margins[rows, y] = np.inf  # j == y is not a term
        assert np.abs(margins).min() > KINK_GAP
        assert (margins[np.isfinite(margins)] > 0).any()  # some terms are active


def assert_away_from_act_kinks(model, zs):
    for layer, Z in zip(model.layers, zs):
        if layer.activation in ("relu", "leaky_relu"):
            assert np.abs(Z).min() > KINK_GAP, "a pre-activation sits on the relu kink"


def numerical_grads(model, X, y, **kwargs):
    """Central differences of model.loss_and_grad's loss, perturbing every W and b entry."""
    grads = []
    for layer in model.layers:
        pair = []
        for param in (layer.W, layer.b):
            flat = param.reshape(-1)  # a view: edits reach the model's buffer
            g = np.zeros(flat.shape)
            for i in range(flat.size):
                old = flat[i]
                flat[i] = old + EPS
                plus = model.loss_and_grad(X, y, **kwargs)[0]
                flat[i] = old - EPS
                minus = model.loss_and_grad(X, y, **kwargs)[0]
                flat[i] = old
                g[i] = (plus - minus) / (2 * EPS)
            pair.append(g.reshape(param.shape))
        grads.append(tuple(pair))
    return grads


def check_gradient(model, X, y, **kwargs):
    before = model.get_weights()
    value, grads = model.loss_and_grad(X, y, **kwargs)
    assert np.isfinite(value)
    numeric = numerical_grads(model, X, y, **kwargs)
    for k, ((dW, db), (num_dW, num_db)) in enumerate(zip(grads, numeric)):
        assert dW.shape == model.layers[k].W.shape and db.shape == model.layers[k].b.shape
        np.testing.assert_allclose(dW, num_dW, rtol=1e-5, atol=1e-8, err_msg=f"dW of layer {k}")
        np.testing.assert_allclose(db, num_db, rtol=1e-5, atol=1e-8, err_msg=f"db of layer {k}")
    # a wrong gradient of the right size is not an all-zero one
    assert max(np.abs(dW).max() for dW, _ in grads) > 1e-3
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)
    return value, grads


def problem(hidden, loss_name, output="identity", seed=0, n_rows=6):
    """A 4-5-3 model, 6 rows of data and targets, all away from kinks."""
    model = make_model(hidden, output, seed=seed)
    rng = np.random.default_rng(seed + 7)
    X = rng.normal(size=(n_rows, 4))
    zs, out = pre_activations(model, X)
    y = targets_away_from_kinks(loss_name, out, rng)
    assert_away_from_act_kinks(model, zs)
    assert_away_from_loss_kinks(loss_name, out, y)
    return model, X, y


@pytest.mark.parametrize("loss_name", LOSS_NAMES)
@pytest.mark.parametrize("hidden", ACT_NAMES)
def test_gradient_matches_central_differences(hidden, loss_name):
    model, X, y = problem(hidden, loss_name)
    check_gradient(model, X, y, loss=loss_object(loss_name))


@pytest.mark.parametrize("output", ACT_NAMES)
def test_gradient_through_every_output_activation(output):
    """The activation of the last layer is differentiated too (mse and bce on top of it)."""
    for loss_name in ("mse", "binary_cross_entropy"):
        model, X, y = problem("tanh", loss_name, output=output, seed=3)
        check_gradient(model, X, y, loss=loss_name)


@pytest.mark.parametrize("l1, l2", [(0.02, 0.0), (0.0, 0.3), (0.02, 0.3)])
@pytest.mark.parametrize("loss_name", ["cross_entropy", "mse"])
def test_gradient_with_penalties(loss_name, l1, l2):
    model, X, y = problem("gelu", loss_name, seed=1)
    for layer in model.layers:
        assert np.abs(layer.W).min() > KINK_GAP  # |W| is smooth here
    value, grads = check_gradient(model, X, y, loss=loss_name, l1=l1, l2=l2)
    plain_value, plain_grads = model.loss_and_grad(X, y, loss=loss_name)
    # the penalty covers weight matrices only: value and dW change by its own amount, db not at all
    weights = [layer.W for layer in model.layers]
    expected_penalty = sum(l1 * np.abs(W).sum() + 0.5 * l2 * (W ** 2).sum() for W in weights)
    np.testing.assert_allclose(value - plain_value, expected_penalty, rtol=1e-10)
    for (dW, db), (plain_dW, plain_db), W in zip(grads, plain_grads, weights):
        np.testing.assert_allclose(dW - plain_dW, l1 * np.sign(W) + l2 * W, rtol=1e-9, atol=1e-12)
        np.testing.assert_array_equal(db, plain_db)


def test_gradient_of_a_deeper_mixed_network():
    layers = [gd.Dense(3, 6, "gelu"), gd.Dense(6, 5, "sigmoid"), gd.Dense(5, 4, "leaky_relu"),
              gd.Dense(4, 2, "tanh"), gd.Dense(2, 3)]
    model = gd.Sequential(layers, dtype="float64", seed=4)
    rng = np.random.default_rng(4)
    for layer in model.layers:
        layer.b[...] = rng.uniform(-0.3, 0.3, size=layer.b.shape)
    X = rng.normal(size=(5, 3))
    zs, _ = pre_activations(model, X)
    assert_away_from_act_kinks(model, zs)
    check_gradient(model, X, rng.integers(0, 3, size=5), loss="cross_entropy", l2=0.1)


# ------------------------------------------------------------------------------ vs the reference
def reference_of(model):
    return ref.ReferenceMLP(model.get_weights(), [layer.activation for layer in model.layers],
                            negative_slope=NEGATIVE_SLOPE)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss_name", LOSS_NAMES)
@pytest.mark.parametrize("hidden", ACT_NAMES)
def test_loss_and_grad_matches_reference_mlp(hidden, loss_name, dtype):
    layers = [gd.Dense(7, 9, hidden), gd.Dense(9, 6, "tanh"), gd.Dense(6, 4)]
    model = gd.Sequential(layers, dtype=dtype, seed=5)
    rng = np.random.default_rng(5)
    for layer in model.layers:
        layer.b[...] = rng.uniform(-0.5, 0.5, size=layer.b.shape)
    X = rng.normal(size=(11, 7)).astype(dtype)
    out = reference_of(model).forward(X)
    y = targets_away_from_kinks(loss_name, out.astype(np.float64), rng)
    loss = loss_object(loss_name)
    l1, l2 = (0.01, 0.05) if loss_name in ("mse", "hinge") else (0.0, 0.0)
    before = model.get_weights()

    value, grads = model.loss_and_grad(X, y, loss=loss, l1=l1, l2=l2)
    expected_value, expected_grads = reference_of(model).loss_and_grad(
        X, y, loss_name, l1=l1, l2=l2, delta=HUBER_DELTA)

    if dtype == "float32":
        close = {"rtol": 1e-5, "atol": 1e-6}
    else:
        close = {"rtol": 1e-12, "atol": 1e-14}
    np.testing.assert_allclose(value, expected_value, **close)
    for k, ((dW, db), (exp_dW, exp_db)) in enumerate(zip(grads, expected_grads)):
        assert dW.dtype == np.dtype(dtype) and db.dtype == np.dtype(dtype)
        np.testing.assert_allclose(dW, exp_dW, **close, err_msg=f"dW of layer {k}")
        np.testing.assert_allclose(db, exp_db, **close, err_msg=f"db of layer {k}")
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_loss_and_grad_returns_copies_and_does_not_touch_the_optimizer_state():
    model = make_model("tanh", sizes=(4, 5, 3))
    rng = np.random.default_rng(6)
    X1, X2 = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    y = np.array([0, 1, 2, 0, 1, 2])
    value1, grads1 = model.loss_and_grad(X1, y, loss="cross_entropy")
    saved = [(dW.copy(), db.copy()) for dW, db in grads1]
    value2, grads2 = model.loss_and_grad(X2, y, loss="cross_entropy")
    assert value1 != value2
    for (dW, db), (old_dW, old_db), (dW2, _) in zip(grads1, saved, grads2):
        np.testing.assert_array_equal(dW, old_dW)  # the second call did not overwrite the first
        np.testing.assert_array_equal(db, old_db)
        assert not np.array_equal(dW, dW2)
        dW[...] = 0  # editing a returned gradient does not reach the model
    again = model.loss_and_grad(X1, y, loss="cross_entropy")
    assert again[0] == value1
    np.testing.assert_array_equal(again[1][0][0], saved[0][0])


# a float64 model, so that loss_and_grad's messages are those of check_gradients' float64 probe
BAD_X = {"complex": lambda X: X + 1j,
         "strings": lambda X: np.array([["a"] * 3] * len(X)),
         "ragged": lambda X: [[1.0, 2.0, 3.0], [1.0, 2.0]],
         "int beyond float64": lambda X: [[2**1100, 1, 1]] * len(X),
         "None": lambda X: None,
         "NaN": lambda X: np.where(X > 1, np.nan, X),
         "wrong width": lambda X: X[:, :2]}
BAD_Y = {"complex": lambda y: y + 1j, "strings": lambda y: np.array(["a"] * len(y)),
         "ragged": lambda y: [[0, 1], [1]], "None": lambda y: None,
         "too short": lambda y: y[:5], "out of range": lambda y: y + 5}


@pytest.mark.parametrize("case", [("X", name) for name in BAD_X] + [("y", name) for name in BAD_Y])
def test_check_gradients_refuses_what_loss_and_grad_refuses(case):
    """check_gradients read X with a bare np.asarray(X, dtype=float64): complex X lost its
    imaginary part with only a ComplexWarning, and strings, ragged lists, huge ints and None
    raised NumPy errors that did not name X."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(10, 3)), rng.integers(0, 2, 10)
    model = gd.MLP([3, 4, 2], dtype="float64", seed=0)
    which, name = case
    if which == "X":
        X = BAD_X[name](X)
    else:
        y = BAD_Y[name](y)
    with pytest.raises((TypeError, ValueError)) as expected:
        model.loss_and_grad(X, y, loss="cross_entropy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning on the way to the refusal
        with pytest.raises(expected.type) as got:
            gd.check_gradients(model, X, y, "cross_entropy")
    assert str(got.value) == str(expected.value)
    assert str(got.value).startswith(which)
