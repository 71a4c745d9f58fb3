"""Adam, AdamW, RMSprop and Adagrad in the C core: against hand-worked steps and, when torch is
installed, against torch.optim over 100 steps on the same weights."""
import numpy as np
import pytest

import gdcore as gd
from gdcore import _core

CONFIGS = {
    "adam": (gd.optim.Adam, dict(lr=0.01)),
    "adam_decay": (gd.optim.Adam, dict(lr=0.005, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01)),
    "adam_low_beta": (gd.optim.Adam, dict(lr=0.01, betas=(0.3, 0.9))),  # lerp's other branch
    "adamw": (gd.optim.AdamW, dict(lr=0.01, weight_decay=0.1)),
    "rmsprop": (gd.optim.RMSprop, dict(lr=0.005)),
    "rmsprop_full": (gd.optim.RMSprop, dict(lr=0.002, alpha=0.9, momentum=0.5, centered=True,
                                            weight_decay=0.01)),
    "rmsprop_centered": (gd.optim.RMSprop, dict(lr=0.002, centered=True)),
    "adagrad": (gd.optim.Adagrad, dict(lr=0.05)),
    "adagrad_decay": (gd.optim.Adagrad, dict(lr=0.05, lr_decay=0.01, weight_decay=0.01,
                                             initial_accumulator_value=0.1)),
}


def torch_optimizer(torch, name, params):
    cls, kwargs = CONFIGS[name]
    kwargs = dict(kwargs)
    return getattr(torch.optim, cls.__name__)(params, **kwargs)


def test_adam_first_step_by_hand():
    # t = 1: m = 0.1 g, v = 0.001 g², step = lr/0.1 · m / (sqrt(v)/sqrt(0.001) + eps) = lr·sign(g)
    opt = gd.optim.Adam(lr=0.5, eps=0.0)
    param = np.array([1.0, -2.0, 3.0])
    grad = np.array([0.3, -4.0, 0.0])
    m, v = np.zeros(3), np.zeros(3)
    _core.optim_update(opt.spec(), 0.5, 1, grad, param, m, v)
    np.testing.assert_allclose(param[:2], [0.5, -1.5], rtol=1e-12)
    np.testing.assert_allclose(m, 0.1 * grad, rtol=1e-12)
    np.testing.assert_allclose(v, 0.001 * grad**2, rtol=1e-12)
    assert np.isnan(param[2])  # 0/0 with eps = 0: the formula, not a special case


def test_adagrad_and_rmsprop_by_hand():
    param, grad = np.array([1.0]), np.array([2.0])
    total = np.array([0.5])
    _core.optim_update(gd.optim.Adagrad(lr=0.1, eps=0.0, initial_accumulator_value=0.5).spec(),
                       0.1, 1, grad, param, total)
    np.testing.assert_allclose(total, [4.5])
    np.testing.assert_allclose(param, [1.0 - 0.1 * 2.0 / np.sqrt(4.5)])
    param, square = np.array([1.0]), np.zeros(1)
    _core.optim_update(gd.optim.RMSprop(lr=0.1, alpha=0.75, eps=0.0).spec(), 0.1, 1, grad, param,
                       square, np.zeros(1), np.zeros(1))
    np.testing.assert_allclose(square, [0.25 * 4.0])
    np.testing.assert_allclose(param, [1.0 - 0.1 * 2.0 / 1.0])


def test_adamw_decouples_weight_decay():
    # a zero gradient leaves Adam's moments at 0: only the decay moves the weight
    param, grad = np.array([2.0]), np.array([0.0])
    _core.optim_update(gd.optim.AdamW(lr=0.1, weight_decay=0.5).spec(), 0.1, 1, grad, param,
                       np.zeros(1), np.zeros(1))
    np.testing.assert_allclose(param, [2.0 * (1 - 0.1 * 0.5)])
    param = np.array([2.0])  # Adam adds it to the gradient instead: a full lr-sized step
    _core.optim_update(gd.optim.Adam(lr=0.1, weight_decay=0.5).spec(), 0.1, 1, grad, param,
                       np.zeros(1), np.zeros(1))
    np.testing.assert_allclose(param, [2.0 - 0.1], rtol=1e-6)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_100_steps_match_torch(name):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    model = gd.MLP([6, 9, 4], activation="tanh", seed=2)
    X = rng.normal(size=(32, 6)).astype(np.float32)
    y = rng.integers(0, 4, 32)
    layers = [torch.nn.Linear(6, 9), torch.nn.Tanh(), torch.nn.Linear(9, 4)]
    net = torch.nn.Sequential(*layers)
    with torch.no_grad():
        for linear, dense in zip((layers[0], layers[2]), model.layers):
            linear.weight.copy_(torch.from_numpy(dense.W.T.copy()))
            linear.bias.copy_(torch.from_numpy(dense.b.copy()))
    cls, kwargs = CONFIGS[name]
    ours = cls(**kwargs)
    theirs = torch_optimizer(torch, name, net.parameters())
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    for step in range(100):
        rows = slice((step * 8) % 32, (step * 8) % 32 + 8)
        model.train_step(X[rows], y[rows], loss="cross_entropy", optimizer=ours, n_threads=1)
        theirs.zero_grad()
        torch.nn.functional.cross_entropy(net(Xt[rows]), yt[rows]).backward()
        theirs.step()
    for linear, dense in zip((layers[0], layers[2]), model.layers):
        np.testing.assert_allclose(dense.W, linear.weight.detach().numpy().T, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(dense.b, linear.bias.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert ours.state["step"] == 100


@pytest.mark.parametrize("name", ["adam", "rmsprop_full", "adagrad_decay"])
def test_fit_with_adaptive_optimizers_is_deterministic_across_threads(name):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 20)).astype(np.float32)
    y = rng.integers(0, 3, 300)
    weights = []
    for threads in (1, 2, 3):
        model = gd.MLP([20, 200, 3], seed=1)
        cls, kwargs = CONFIGS[name]
        model.fit(X, y, optimizer=cls(**kwargs), epochs=2, batch_size=64, seed=4,
                  n_threads=threads, verbose=0)
        weights.append(model.get_weights())
    for other in weights[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(weights[0], other))


def test_adam_learns_the_digits():
    X, y = gd.datasets.load_digits()
    X = X / 16
    order = np.random.default_rng(0).permutation(len(X))
    train, test = order[:1400], order[1400:]
    model = gd.MLP([64, 64, 10], seed=0)
    model.fit(X[train], y[train], optimizer=gd.optim.Adam(lr=0.003), epochs=20, batch_size=32,
              verbose=0)
    assert model.evaluate(X[test], y[test])["accuracy"] >= 0.95


def test_optimizer_names_and_validation():
    assert isinstance(gd.optim.get("adamw", lr=0.1), gd.optim.AdamW)
    assert gd.optim.get("rmsprop").lr == 0.01
    with pytest.raises(ValueError, match="betas"):
        gd.optim.Adam(betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="betas"):
        gd.optim.Adam(betas=0.9)
    with pytest.raises(ValueError, match="alpha"):
        gd.optim.RMSprop(alpha=1.5)
    with pytest.raises(TypeError, match="centered"):
        gd.optim.RMSprop(centered=1)
    with pytest.raises(ValueError, match="initial_accumulator_value"):
        gd.optim.Adagrad(initial_accumulator_value=-1)
    with pytest.raises(ValueError, match="lr"):
        gd.optim.Adam(lr=0)


UPDATE_CONFIGS = dict(CONFIGS, sgd=(gd.optim.SGD, dict(lr=0.1)),
                      sgd_nesterov=(gd.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
                      sgd_first=(gd.optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.5)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(UPDATE_CONFIGS))
def test_update_reports_a_parameter_it_made_non_finite(name, dtype):
    """The kernel's return value is the fit path's overflow check (no second pass over the
    weights): False for a finite step, True when any one parameter, vector tail included, ends
    inf or NaN."""
    cls, kwargs = UPDATE_CONFIGS[name]
    opt = cls(**kwargs)
    rng = np.random.default_rng(5)
    n = 37  # not a multiple of any vector width

    def step(grad, param):
        slots = [np.full(n, 0.5, dtype=dtype) for _ in range(3)]
        return _core.optim_update(opt.spec(), opt.lr, 2, grad, param, *slots)

    param = rng.normal(size=n).astype(dtype)
    assert step(rng.normal(size=n).astype(dtype), param) is False
    assert np.isfinite(param).all()
    for bad in (0, 20, n - 1):
        grad = rng.normal(size=n).astype(dtype)
        grad[bad] = np.inf
        param = rng.normal(size=n).astype(dtype)
        assert step(grad, param) is True
        assert not np.isfinite(param[bad]) and np.isfinite(np.delete(param, bad)).all()


def test_sgd_update_reports_finite_gradients_that_overflow():
    param = np.full(5, 3e38, dtype=np.float32)
    grad = np.array([0, 0, 0, 0, -1e38], dtype=np.float32)
    assert _core.optim_update(gd.optim.SGD(lr=1.0).spec(), 1.0, 1, grad, param) is True
    assert param[4] == np.inf and (param[:4] == np.float32(3e38)).all()


def test_centered_rmsprop_with_overflowing_squares_takes_a_zero_step():
    """float32, g = 1e22: s and ḡ² both overflow, and s − ḡ² was inf − inf = NaN, refused as a
    divergence; torch (a fused multiply-add) keeps the variance inf, a zero step for that
    weight, as gdcore's non-centered RMSprop does. The bias (g = 1) still moves."""
    for centered in (True, False):
        model = gd.Sequential([gd.Dense(1, 1)], dtype="float32")
        model.layers[0].W[...] = 0.5
        model.layers[0].b[...] = 0.0
        X, y = np.array([[1e22]], np.float32), np.array([[-1e30]], np.float32)
        model.train_step(X, y, loss="mae", optimizer=gd.optim.RMSprop(lr=0.01, centered=centered))
        assert model.layers[0].W[0, 0] == 0.5
        assert np.isfinite(model.layers[0].b[0]) and model.layers[0].b[0] < 0
