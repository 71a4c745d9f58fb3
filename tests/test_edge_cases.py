"""Numerical edge cases through the whole model, in float32 and float64 (issue #5, item 7)."""
import numpy as np
import pytest

import gdcore as gd
from gdcore import reference as ref

DTYPES = ["float32", "float64"]


def identity_model(n, dtype):
    """A 1-layer model whose output equals its input: the loss sees X itself as logits."""
    model = gd.Sequential([gd.Dense(n, n)], dtype=dtype)
    model.set_weights([np.eye(n), np.zeros(n)])
    return model


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", ["cross_entropy", "hinge"])
def test_logits_of_1e4_give_finite_exact_losses(dtype, loss):
    z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4 - 1], [5.0, 5.0, 5.0]])
    y = np.array([1, 2, 0])
    model = identity_model(3, dtype)
    value, grads = model.loss_and_grad(z, y, loss=loss)
    expected, expected_grad = ref.loss_forward_backward(loss, z, y)
    assert np.isfinite(value) and value == pytest.approx(expected, rel=1e-6)
    # dL/dW = zᵀ·dL/dz: finite and as the reference says
    np.testing.assert_allclose(grads[0][0], z.T @ expected_grad, rtol=1e-5, atol=1e-3)
    assert np.isfinite(model.predict_proba(z)).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_and_sigmoid_of_1e4(dtype):
    z = np.array([[1e4], [-1e4], [0.0]])
    y = np.array([[0.0], [1.0], [1.0]])
    model = identity_model(1, dtype)
    value, _ = model.loss_and_grad(z, y, loss="binary_cross_entropy")
    assert value == pytest.approx((1e4 + 1e4 + np.log(2)) / 3, rel=1e-6)
    proba = model.predict_proba(z)
    np.testing.assert_allclose(proba[:, 0], [1.0, 0.0, 0.5], atol=1e-12)
    sig = gd.Sequential([gd.Dense(1, 1, activation="sigmoid")], dtype=dtype)
    sig.set_weights([np.ones((1, 1)), np.zeros(1)])
    np.testing.assert_allclose(sig.predict(z)[:, 0], [1.0, 0.0, 0.5], atol=1e-12)
    _, grads = sig.loss_and_grad(z, y, loss="mse")
    assert all(np.isfinite(g).all() for pair in grads for g in pair)


@pytest.mark.parametrize("dtype", DTYPES)
def test_all_equal_logits(dtype):
    model = identity_model(4, dtype)
    z = np.full((3, 4), 7.0)
    value, _ = model.loss_and_grad(z, np.array([0, 1, 3]), loss="cross_entropy")
    assert value == pytest.approx(np.log(4), rel=1e-6)
    np.testing.assert_allclose(model.predict_proba(z), 0.25, rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_single_class_present_and_a_single_sample(dtype):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    model = gd.MLP([3, 5, 4], dtype=dtype, seed=0)
    history = model.fit(X, np.full(30, 2), epochs=20, optimizer=gd.optim.SGD(lr=0.5), verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert (model.predict_classes(X) == 2).all()
    one = gd.MLP([3, 5, 4], dtype=dtype, seed=0)
    history = one.fit(X[:1], [1], epochs=3, batch_size=10, verbose=0)
    assert len(history.epoch) == 3 and np.isfinite(history.history["loss"]).all()
    assert np.isfinite(one.predict(X[:1])).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_size_larger_than_the_data_is_full_batch(dtype):
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(7, 2)), rng.integers(0, 2, 7)
    big = gd.MLP([2, 3, 2], dtype=dtype, seed=4)
    full = gd.MLP([2, 3, 2], dtype=dtype, seed=4)
    big.fit(X, y, batch_size=1000, epochs=2, shuffle=False, verbose=0)
    full.fit(X, y, batch_size=7, epochs=2, shuffle=False, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(big.get_weights(), full.get_weights()))


@pytest.mark.parametrize("dtype", DTYPES)
def test_huge_and_tiny_inputs_stay_finite_or_refuse(dtype):
    model = gd.MLP([2, 4, 2], dtype=dtype, seed=0)
    tiny = np.full((5, 2), 1e-300 if dtype == "float64" else 1e-40)
    assert np.isfinite(model.predict(tiny)).all()
    huge = np.full((5, 2), 1e300 if dtype == "float64" else 1e30)
    before = model.get_weights()
    try:
        model.fit(huge, np.zeros(5, dtype=int), epochs=1, verbose=0)
    except gd.DivergenceError:
        pass
    assert all(np.isfinite(w).all() for w in model.get_weights())
    if dtype == "float32":
        with pytest.raises(ValueError, match="after conversion to float32"):
            model.predict(np.full((2, 2), 1e300))
    assert len(before) == 4


def test_layer_arrays_are_checked_in_a_model_and_out_of_one():
    """A ragged list assigned to layer.W leaked NumPy's "inhomogeneous shape" error; a Dense not
    yet in a model took anything as W (then Sequential called it "already belongs to a model"),
    and a b set before the model took it over stayed apart from the model's bias: W and b are
    the model's, and assigning them before there is one is refused."""
    model = gd.MLP([3, 4, 2], seed=0)
    layer = model.layers[0]
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"^W cannot be read as a rectangular array"):
        layer.W = [[1, 2, 3, 4], [1, 2]]
    with pytest.raises(ValueError, match=r"^b cannot be read as a rectangular array"):
        layer.b = [[1, 2], [1]]
    for w, w0 in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, w0)

    free = gd.Dense(3, 4)
    for name, value in (("W", "garbage"), ("W", np.ones((3, 4))), ("b", np.zeros(4))):
        with pytest.raises(AttributeError, match=f"^{name} is None until the layer is in a "
                                                 f"model, .* then assign layer.{name}"):
            setattr(free, name, value)
        assert free.W is None and free.b is None
    model = gd.Sequential([free])  # the refusals left it free
    assert np.shares_memory(free.W, model._params) and np.shares_memory(free.b, model._params)
    free.b = np.ones(4)  # in the model now: copied into its parameters
    np.testing.assert_array_equal(model.get_weights()[1], np.ones(4))
