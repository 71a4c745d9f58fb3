"""Dropout: inverted, seeded, the same bits for any thread count, off outside training; and the
other layer options (initializers, per-layer penalties)."""
import numpy as np
import pytest

import gdcore as gd
from gdcore import _core
from gdcore import reference as ref
from gdcore.models import _dropout_key


def test_masks_drop_the_requested_fraction_and_differ_by_layer_and_batch():
    mask = _core.dropout_keep_mask(123, 0, 0, 400, 500, 0.3)
    assert abs(1 - mask.mean() - 0.3) < 0.005
    assert not np.array_equal(mask, _core.dropout_keep_mask(123, 1, 0, 400, 500, 0.3))
    assert not np.array_equal(mask, _core.dropout_keep_mask(123, 0, 1, 400, 500, 0.3))
    assert np.array_equal(mask, _core.dropout_keep_mask(123, 0, 0, 400, 500, 0.3))
    assert _core.dropout_keep_mask(5, 0, 0, 10, 10, 0.0).all()


@pytest.mark.parametrize("n_inputs, rate", [
    (5, 0.4),
    (300, 0.4),  # 256+ inputs: layer 0 runs in two halves of them, added before act and dropout
    (300, 0.0),
])
def test_one_dropout_step_matches_a_numpy_twin_with_the_same_mask(n_inputs, rate):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(16, n_inputs)), rng.integers(0, 3, 16)
    dropout = [gd.Dropout(rate)] if rate else []
    model = gd.Sequential([gd.Dense(n_inputs, 7, activation="tanh")] + dropout + [gd.Dense(7, 3)],
                          dtype="float64", seed=1)
    W0, b0, W1, b1 = model.get_weights()
    model.fit(X, y, optimizer=gd.optim.SGD(lr=0.1), epochs=1, batch_size=16, shuffle=False,
              seed=9, n_threads=2, verbose=0)
    keep = _core.dropout_keep_mask(_dropout_key(9, 0), 0, 0, 16, 7, rate) if rate else 1.0
    Z0 = X @ W0 + b0
    A0 = np.tanh(Z0)
    M0 = A0 * keep / (1 - rate)
    out = M0 @ W1 + b1
    _, d_out = ref.loss_forward_backward("cross_entropy", out, y)
    dW1, db1 = M0.T @ d_out, d_out.sum(0)
    dZ0 = (d_out @ W1.T) * keep / (1 - rate) * (1 - A0**2)
    dW0, db0 = X.T @ dZ0, dZ0.sum(0)
    for got, start, grad in zip(model.get_weights(), (W0, b0, W1, b1), (dW0, db0, dW1, db1)):
        np.testing.assert_allclose(got, start - 0.1 * grad, rtol=1e-12, atol=1e-14)


def test_dropout_is_off_in_predict_and_loss_and_grad():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(20, 4)), rng.integers(0, 2, 20)
    with_dropout = gd.Sequential([gd.Dense(4, 6, activation="relu"), gd.Dropout(0.5),
                                  gd.Dense(6, 2)], seed=3)
    plain = gd.Sequential([gd.Dense(4, 6, activation="relu"), gd.Dense(6, 2)], seed=3)
    np.testing.assert_array_equal(with_dropout.predict(X), plain.predict(X))
    loss_a, grads_a = with_dropout.loss_and_grad(X, y, loss="cross_entropy")
    loss_b, grads_b = plain.loss_and_grad(X, y, loss="cross_entropy")
    assert loss_a == loss_b
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(grads_a, grads_b))


def test_dropout_training_is_bit_identical_across_threads():
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(600, 30)).astype(np.float32), rng.integers(0, 4, 600)
    results = []
    for threads in (1, 2, 4):
        model = gd.Sequential([gd.Dense(30, 300, activation="relu"), gd.Dropout(0.5),
                               gd.Dense(300, 200, activation="gelu"), gd.Dropout(0.2),
                               gd.Dense(200, 4)], seed=0)
        model.fit(X, y, epochs=2, batch_size=200, seed=5, n_threads=threads, verbose=0)
        results.append(model.get_weights())
    for other in results[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(results[0], other))


def test_dropout_placement_and_rate_are_checked():
    with pytest.raises(ValueError, match="rate"):
        gd.Dropout(1.0)
    with pytest.raises(ValueError, match="between two Dense"):
        gd.Sequential([gd.Dropout(0.1), gd.Dense(2, 2)])
    with pytest.raises(ValueError, match="between two Dense"):
        gd.Sequential([gd.Dense(2, 2), gd.Dropout(0.1)])
    with pytest.raises(ValueError, match="between two Dense"):
        gd.Sequential([gd.Dense(2, 2), gd.Dropout(0.1), gd.Dropout(0.1), gd.Dense(2, 2)])
    model = gd.Sequential([gd.Dense(2, 3), gd.Dropout(0.25), gd.Dense(3, 1)])
    assert len(model.get_weights()) == 4
    clone = gd.Sequential.from_config(model.get_config())
    assert repr(clone) == repr(model)


@pytest.mark.parametrize("init", ["he_uniform", "he_normal", "glorot_uniform", "glorot_normal"])
def test_initializers_have_the_right_scale(init):
    model = gd.Sequential([gd.Dense(400, 300, init=init)], dtype="float64", seed=0)
    W = model.layers[0].W
    fan = 400 if init.startswith("he") else 700
    assert W.std() == pytest.approx(np.sqrt(2.0 / fan), rel=0.02)
    if init.endswith("uniform"):
        assert np.abs(W).max() <= np.sqrt(6.0 / fan)
    again = gd.Sequential([gd.Dense(400, 300, init=init)], dtype="float64", seed=0)
    np.testing.assert_array_equal(W, again.layers[0].W)


def test_zeros_initializer_and_bad_names():
    assert not gd.Sequential([gd.Dense(3, 2, init="zeros")]).layers[0].W.any()
    with pytest.raises(ValueError, match="init"):
        gd.Dense(3, 2, init="orthogonal")
    with pytest.raises(ValueError, match="l2"):
        gd.Dense(3, 2, l2=-1)


def test_per_layer_penalties_add_to_the_global_ones():
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(10, 3)), rng.normal(size=(10, 2))
    model = gd.Sequential([gd.Dense(3, 4, activation="tanh", l2=0.5), gd.Dense(4, 2, l1=0.2)],
                          dtype="float64", seed=0)
    plain = gd.Sequential([gd.Dense(3, 4, activation="tanh"), gd.Dense(4, 2)], dtype="float64",
                          seed=0)
    value, grads = model.loss_and_grad(X, y, loss="mse", l2=0.1)
    base, base_grads = plain.loss_and_grad(X, y, loss="mse", l2=0.1)
    W0, _, W1, _ = plain.get_weights()
    assert value == pytest.approx(base + 0.25 * (W0**2).sum() + 0.2 * np.abs(W1).sum(), rel=1e-12)
    np.testing.assert_allclose(grads[0][0], base_grads[0][0] + 0.5 * W0, rtol=1e-12)
    np.testing.assert_allclose(grads[1][0], base_grads[1][0] + 0.2 * np.sign(W1), rtol=1e-12)
