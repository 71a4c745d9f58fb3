"""Tests of the pure-NumPy reference implementation ``gdcore.reference``.

The reference is checked against itself independently (central finite
differences, hand-worked values) and, when PyTorch is installed, against
``torch.nn.functional`` and ``torch.optim.SGD``.
"""

import math

import numpy as np
import pytest

from gdcore import reference as ref

ACTS = ("identity", "relu", "leaky_relu", "sigmoid", "tanh", "gelu")
LOSSES = ("cross_entropy", "binary_cross_entropy", "mse", "mae", "huber", "hinge")
EPS = 1e-6


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def numgrad(f, x, eps=EPS):
    """Central finite-difference gradient of scalar ``f`` at ``x`` (float64)."""
    x = np.array(x, dtype=np.float64)
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = f(x)
        flat[i] = old - eps
        fm = f(x)
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * eps)
    return g


def away_from(rng, shape, kinks, gap=1e-2, scale=2.0):
    """Random normal values at least ``gap`` away from every kink."""
    z = rng.normal(scale=scale, size=shape)
    for k in kinks:
        close = np.abs(z - k) < gap
        z[close] = k + np.where(z[close] >= k, gap, -gap) * 3
    return z


def make_targets(rng, name, B, O):
    if name in ("cross_entropy", "hinge"):
        return rng.integers(0, O, size=B)
    if name == "binary_cross_entropy":
        return rng.integers(0, 2, size=(B, O)).astype(np.float64)
    return rng.normal(size=(B, O))


def loss_inputs(rng, name, B=5, O=4, delta=0.7):
    """Outputs and targets with every element safely away from loss kinks."""
    for _ in range(1000):
        out = rng.normal(scale=1.5, size=(B, O))
        y = make_targets(rng, name, B, O)
        if name == "mae":
            ok = np.abs(out - y).min() > 1e-3
        elif name == "huber":
            ad = np.abs(out - y)
            ok = np.abs(ad - delta).min() > 1e-3 and (ad < delta).any() and (ad > delta).any()
        elif name == "hinge":
            rows = np.arange(B)
            m = 1 - out[rows, y][:, None] + out
            m[rows, y] = 5.0
            ok = np.abs(m).min() > 1e-3 and (m > 0).any() and (m < 0).any()
        else:
            ok = True
        if ok:
            return out, y
    raise AssertionError("could not draw inputs away from kinks")


def make_net(rng, sizes, dtype=np.float64):
    weights = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        weights.append(rng.normal(scale=1.0 / math.sqrt(n_in), size=(n_in, n_out)).astype(dtype))
        weights.append(rng.normal(scale=0.1, size=n_out).astype(dtype))
    return weights


# ---------------------------------------------------------------------------
# API
# ---------------------------------------------------------------------------


def test_public_names():
    assert ref.ACTIVATIONS == ACTS
    assert ref.LOSSES == LOSSES
    for name in ("act_forward", "act_backward", "loss_forward_backward", "penalty",
                 "dense_forward", "dense_backward", "sgd_step", "ReferenceMLP"):
        assert callable(getattr(ref, name))


def test_unknown_names_raise():
    z = np.zeros((2, 2))
    with pytest.raises(ValueError):
        ref.act_forward("softplus", z)
    with pytest.raises(ValueError):
        ref.act_backward("softplus", z, z, z)
    with pytest.raises(ValueError):
        ref.loss_forward_backward("kl_div", z, z)


# ---------------------------------------------------------------------------
# activations
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ACTS)
def test_activation_gradient_finite_differences(name):
    rng = np.random.default_rng(1)
    z = away_from(rng, (6, 7), kinks=[0.0])
    grad_a = rng.normal(size=z.shape)
    a = ref.act_forward(name, z, negative_slope=0.1)
    got = ref.act_backward(name, z, a, grad_a, negative_slope=0.1)
    num = numgrad(lambda v: np.sum(grad_a * ref.act_forward(name, v, negative_slope=0.1)), z)
    np.testing.assert_allclose(got, num, rtol=1e-6, atol=1e-8)


def test_activation_values():
    z = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    f = ref.act_forward
    np.testing.assert_array_equal(f("identity", z), z)
    np.testing.assert_array_equal(f("relu", z), [0, 0, 0, 0.5, 2])
    np.testing.assert_allclose(f("leaky_relu", z), [-0.02, -0.005, 0, 0.5, 2], rtol=1e-15)
    np.testing.assert_allclose(f("leaky_relu", z, negative_slope=0.2), [-0.4, -0.1, 0, 0.5, 2],
                               rtol=1e-15)
    np.testing.assert_allclose(f("sigmoid", z), 1 / (1 + np.exp(-z)), rtol=1e-15)
    np.testing.assert_allclose(f("tanh", z), np.tanh(z), rtol=1e-15)
    # gelu(z) = z * Phi(z); Phi(0.5) = 0.691462461274013, Phi(2) = 0.977249868051821
    np.testing.assert_allclose(
        f("gelu", z),
        [-2 * (1 - 0.977249868051821), -0.5 * (1 - 0.691462461274013), 0,
         0.5 * 0.691462461274013, 2 * 0.977249868051821], rtol=1e-13, atol=1e-300)
    # exact erf form, not the tanh approximation (which gives 1.954597694)
    assert abs(f("gelu", np.array([2.0]))[0] - 1.954499736103642) < 1e-12


def test_activation_derivatives_at_zero_and_hand_values():
    z = np.array([0.0, 0.0])
    g = np.array([1.0, 3.0])
    b = ref.act_backward
    fwd = ref.act_forward
    np.testing.assert_array_equal(b("relu", z, fwd("relu", z), g), [0.0, 0.0])
    np.testing.assert_allclose(b("leaky_relu", z, fwd("leaky_relu", z), g, negative_slope=0.1),
                               [0.1, 0.3], rtol=1e-15)
    np.testing.assert_allclose(b("identity", z, z, g), g)
    np.testing.assert_allclose(b("sigmoid", z, fwd("sigmoid", z), g), [0.25, 0.75])
    np.testing.assert_allclose(b("tanh", z, fwd("tanh", z), g), [1.0, 3.0])
    np.testing.assert_allclose(b("gelu", z, fwd("gelu", z), g), [0.5, 1.5])
    # gelu'(1) = Phi(1) + phi(1)
    one = np.array([1.0])
    expected = 0.8413447460685429 + math.exp(-0.5) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(b("gelu", one, fwd("gelu", one), np.ones(1)), [expected],
                               rtol=1e-14)
    # sigmoid' and tanh' use the passed activations a
    a = np.array([0.3])
    np.testing.assert_allclose(b("sigmoid", np.array([7.0]), a, np.ones(1)), [0.21])
    np.testing.assert_allclose(b("tanh", np.array([7.0]), a, np.ones(1)), [0.91])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ACTS)
def test_activation_dtype_preserved(name, dtype):
    rng = np.random.default_rng(2)
    z = rng.normal(size=(3, 4)).astype(dtype)
    a = ref.act_forward(name, z)
    g = ref.act_backward(name, z, a, np.ones_like(z))
    assert a.dtype == dtype and a.shape == z.shape
    assert g.dtype == dtype and g.shape == z.shape
    z64 = z.astype(np.float64)
    np.testing.assert_allclose(a, ref.act_forward(name, z64), rtol=1e-5, atol=1e-6)


def test_gelu_float32_accurate_in_left_tail():
    z = np.linspace(-7.0, -2.0, 51)
    truth = ref.act_forward("gelu", z)
    truth_grad = ref.act_backward("gelu", z, truth, np.ones_like(z))
    np.testing.assert_allclose(truth[[0, -1]], [-7 * 1.279812543885835e-12,
                                                -2 * 0.022750131948179195], rtol=1e-12)
    z32 = z.astype(np.float32)
    a32 = ref.act_forward("gelu", z32)
    g32 = ref.act_backward("gelu", z32, a32, np.ones_like(z32))
    np.testing.assert_allclose(a32, truth, rtol=1e-5)
    np.testing.assert_allclose(g32, truth_grad, rtol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_stable_for_huge_inputs(dtype):
    z = np.array([-1e4, -100.0, 0.0, 100.0, 1e4], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        a = ref.act_forward("sigmoid", z)
        g = ref.act_backward("sigmoid", z, a, np.ones_like(z))
        ge = ref.act_backward("gelu", z, ref.act_forward("gelu", z), np.ones_like(z))
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(g)) and np.all(np.isfinite(ge))
    assert a[0] == 0.0 and a[-1] == 1.0 and a[2] == 0.5
    assert 0 < a[1] < 1e-40 or dtype == np.float32
    np.testing.assert_array_equal(ge[[0, -1]], [0.0, 1.0])


# ---------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", LOSSES)
def test_loss_gradient_finite_differences(name):
    rng = np.random.default_rng(3)
    out, y = loss_inputs(rng, name)
    loss, grad = ref.loss_forward_backward(name, out, y, delta=0.7)
    assert isinstance(loss, float)
    assert grad.shape == out.shape and grad.dtype == np.float64
    num = numgrad(lambda v: ref.loss_forward_backward(name, v, y, delta=0.7)[0], out)
    np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", LOSSES)
def test_loss_dtype_preserved(name, dtype):
    rng = np.random.default_rng(4)
    out, y = loss_inputs(rng, name)
    loss, grad = ref.loss_forward_backward(name, out.astype(dtype), y)
    loss64, grad64 = ref.loss_forward_backward(name, out, y)
    assert isinstance(loss, float)
    assert grad.dtype == dtype
    np.testing.assert_allclose(loss, loss64, rtol=1e-5)
    np.testing.assert_allclose(grad, grad64, rtol=1e-4, atol=1e-7)


def test_cross_entropy_hand_values():
    loss, grad = ref.loss_forward_backward("cross_entropy", np.array([[0.0, 0.0]]), np.array([0]))
    assert loss == pytest.approx(math.log(2), rel=1e-15)
    np.testing.assert_allclose(grad, [[-0.5, 0.5]])
    # two samples, three classes
    out = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    y = np.array([2, 1])
    lse0 = math.log(math.e + math.e ** 2 + math.e ** 3)
    loss, grad = ref.loss_forward_backward("cross_entropy", out, y)
    assert loss == pytest.approx(((lse0 - 3.0) + math.log(3)) / 2, rel=1e-14)
    sm0 = np.exp(out[0]) / np.exp(out[0]).sum()
    expected = np.array([sm0 - [0, 0, 1], [1 / 3, 1 / 3 - 1, 1 / 3]]) / 2
    np.testing.assert_allclose(grad, expected, rtol=1e-14)


def test_bce_hand_values():
    out = np.array([[0.0, 2.0], [-1.0, 0.0]])
    y = np.array([[1.0, 0.0], [0.0, 0.0]])
    loss, grad = ref.loss_forward_backward("binary_cross_entropy", out, y)
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    elems = [math.log(2), -math.log(1 - sig(2.0)), -math.log(1 - sig(-1.0)), math.log(2)]
    assert loss == pytest.approx(sum(elems) / 4, rel=1e-14)
    expected = np.array([[0.5 - 1, sig(2.0)], [sig(-1.0), 0.5]]) / 4
    np.testing.assert_allclose(grad, expected, rtol=1e-14)


def test_mse_mae_hand_values():
    out = np.array([[1.0, 2.0], [3.0, 4.0]])
    y = np.array([[0.0, 2.0], [5.0, 3.5]])
    loss, grad = ref.loss_forward_backward("mse", out, y)
    assert loss == pytest.approx((1 + 0 + 4 + 0.25) / 4)
    np.testing.assert_allclose(grad, 2 * np.array([[1.0, 0.0], [-2.0, 0.5]]) / 4)
    loss, grad = ref.loss_forward_backward("mae", out, y)
    assert loss == pytest.approx((1 + 0 + 2 + 0.5) / 4)
    np.testing.assert_array_equal(grad, np.array([[1.0, 0.0], [-1.0, 1.0]]) / 4)  # sign(0) = 0
    # y with B*O elements in another shape is accepted for regression losses
    loss2, _ = ref.loss_forward_backward("mse", out[:, :1], y[:, 0])
    assert loss2 == pytest.approx((1 + 4) / 2)


def test_huber_both_branches():
    out = np.array([[0.5, 3.0, -2.0, 1.0]])
    y = np.zeros((1, 4))
    loss, grad = ref.loss_forward_backward("huber", out, y, delta=1.0)
    # 0.5*0.25, 1*(3-0.5), 1*(2-0.5), |d| == delta -> linear branch 1*(1-0.5) == 0.5*1
    assert loss == pytest.approx((0.125 + 2.5 + 1.5 + 0.5) / 4, rel=1e-15)
    np.testing.assert_allclose(grad, [[0.5 / 4, 1 / 4, -1 / 4, 1 / 4]], rtol=1e-15)
    loss, grad = ref.loss_forward_backward("huber", out, y, delta=2.5)
    assert loss == pytest.approx((0.125 + 2.5 * (3 - 1.25) + 0.5 * 4 + 0.5) / 4, rel=1e-15)
    np.testing.assert_allclose(grad, [[0.5 / 4, 2.5 / 4, -2 / 4, 1 / 4]], rtol=1e-15)


def test_hinge_hand_values():
    # torch.nn.MultiMarginLoss documentation example
    out = np.array([[0.1, 0.2, 0.4, 0.8]])
    loss, grad = ref.loss_forward_backward("hinge", out, np.array([3]))
    assert loss == pytest.approx((0.3 + 0.4 + 0.6) / 4, rel=1e-13)
    np.testing.assert_allclose(grad, [[0.25, 0.25, 0.25, -0.75]])
    # second sample: only one violated margin; batch mean over B = 2
    out = np.array([[0.1, 0.2, 0.4, 0.8], [3.0, 0.0, 2.5, -1.0]])
    loss, grad = ref.loss_forward_backward("hinge", out, np.array([3, 0]))
    # sample 1: margins 1-3+0 = -2, 1-3+2.5 = 0.5, 1-3-1 = -3
    assert loss == pytest.approx(((0.3 + 0.4 + 0.6) / 4 + 0.5 / 4) / 2, rel=1e-13)
    np.testing.assert_allclose(grad, [[0.125, 0.125, 0.125, -0.375], [-0.125, 0, 0.125, 0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_losses_stable_for_huge_logits(dtype):
    out = np.array([[1e4, -1e4], [-1e4, 1e4], [1e4, 1e4]], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        ce, gce = ref.loss_forward_backward("cross_entropy", out, np.array([1, 1, 0]))
        bce, gbce = ref.loss_forward_backward(
            "binary_cross_entropy", out, np.array([[0, 0], [0, 1], [1, 1]], dtype=dtype))
    assert ce == pytest.approx((2e4 + 0 + math.log(2)) / 3, rel=1e-6)
    np.testing.assert_allclose(gce, np.array([[1, -1], [0, 0], [-0.5, 0.5]]) / 3, atol=1e-7)
    # elements: 1e4, 0, 0, 0, 0, 0
    assert bce == pytest.approx(1e4 / 6, rel=1e-6)
    np.testing.assert_allclose(gbce, np.array([[1, 0], [0, 0], [0, 0]]) / 6, atol=1e-7)
    assert gce.dtype == dtype and gbce.dtype == dtype


def test_penalty_values_and_gradient():
    W0 = np.array([[1.0, -2.0], [0.0, 0.5]])
    W1 = np.array([[-3.0], [1.0]])
    value, grads = ref.penalty([W0, W1], l1=0.1, l2=0.2)
    abs_sum = 1 + 2 + 0 + 0.5 + 3 + 1
    sq_sum = 1 + 4 + 0 + 0.25 + 9 + 1
    assert value == pytest.approx(0.1 * abs_sum + 0.5 * 0.2 * sq_sum, rel=1e-15)
    np.testing.assert_allclose(grads[0], 0.1 * np.sign(W0) + 0.2 * W0)
    np.testing.assert_allclose(grads[1], 0.1 * np.sign(W1) + 0.2 * W1)
    assert grads[0][1, 0] == 0.0  # sign(0) = 0
    rng = np.random.default_rng(5)
    W = rng.normal(size=(3, 4))
    num = numgrad(lambda v: ref.penalty([v], l1=0.3, l2=0.7)[0], W)
    np.testing.assert_allclose(ref.penalty([W], l1=0.3, l2=0.7)[1][0], num, rtol=1e-6)
    value, grads = ref.penalty([W])
    assert value == 0.0 and not grads[0].any()


# ---------------------------------------------------------------------------
# dense layer
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("act", ACTS)
def test_dense_forward_backward(act):
    rng = np.random.default_rng(6)
    X = rng.normal(size=(5, 3))
    W = rng.normal(size=(3, 4))
    b = rng.normal(size=4)
    Z, A = ref.dense_forward(X, W, b, act, negative_slope=0.05)
    np.testing.assert_allclose(Z, X @ W + b, rtol=1e-14)
    np.testing.assert_allclose(A, ref.act_forward(act, X @ W + b, 0.05), rtol=1e-14)
    G = rng.normal(size=(5, 4))

    def f(X_, W_, b_):
        return np.sum(G * ref.dense_forward(X_, W_, b_, act, negative_slope=0.05)[1])

    gW, gb, gX = ref.dense_backward(X, W, Z, A, G, act, negative_slope=0.05)
    np.testing.assert_allclose(gW, numgrad(lambda v: f(X, v, b), W), rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(gb, numgrad(lambda v: f(X, W, v), b), rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(gX, numgrad(lambda v: f(v, W, b), X), rtol=1e-5, atol=1e-8)
    assert gW.shape == W.shape and gb.shape == b.shape and gX.shape == X.shape
    assert ref.dense_backward(X, W, Z, A, G, act, need_grad_X=False, negative_slope=0.05)[2] is None


def test_dense_float32():
    rng = np.random.default_rng(7)
    X, W, b = (rng.normal(size=s).astype(np.float32) for s in ((4, 3), (3, 2), (2,)))
    Z, A = ref.dense_forward(X, W, b, "tanh")
    gW, gb, gX = ref.dense_backward(X, W, Z, A, np.ones_like(A), "tanh")
    assert all(a.dtype == np.float32 for a in (Z, A, gW, gb, gX))


# ---------------------------------------------------------------------------
# optimizer
# ---------------------------------------------------------------------------


def run_sgd(grads, p0=1.0, **kw):
    p = np.array([p0])
    buf = np.zeros(1)
    for step, g in enumerate(grads):
        g = np.array([g])
        g_before = g.copy()
        assert ref.sgd_step(p, g, buf, step, 0.1, **kw) is None
        np.testing.assert_array_equal(g, g_before)  # grad is not modified
    return p[0], buf[0]


def test_sgd_plain_and_weight_decay():
    assert run_sgd([1.0, 2.0]) == pytest.approx((1 - 0.1 - 0.2, 0.0))
    # g0 = 1 + 0.1*1 = 1.1 -> 0.89; g1 = 2 + 0.1*0.89 = 2.089 -> 0.6811
    assert run_sgd([1.0, 2.0], weight_decay=0.1)[0] == pytest.approx(0.6811, rel=1e-14)


def test_sgd_momentum_hand_worked():
    # step 0: buf = 1, p = 1 - 0.1*1 = 0.9
    # step 1: buf = 0.9*1 + 2 = 2.9, p = 0.9 - 0.29 = 0.61
    p, buf = run_sgd([1.0, 2.0], momentum=0.9)
    assert p == pytest.approx(0.61, rel=1e-14) and buf == pytest.approx(2.9, rel=1e-14)
    # dampening does not apply to the first step: buf = 1; then 0.9 + 0.5*2 = 1.9
    p, buf = run_sgd([1.0, 2.0], momentum=0.9, dampening=0.5)
    assert p == pytest.approx(0.9 - 0.19, rel=1e-14) and buf == pytest.approx(1.9, rel=1e-14)


def test_sgd_nesterov_hand_worked():
    # step 0: buf = 1, g = 1 + 0.9*1 = 1.9, p = 1 - 0.19 = 0.81
    # step 1: buf = 0.9*1 + 2 = 2.9, g = 2 + 0.9*2.9 = 4.61, p = 0.81 - 0.461 = 0.349
    p, buf = run_sgd([1.0, 2.0], momentum=0.9, nesterov=True)
    assert p == pytest.approx(0.349, rel=1e-13) and buf == pytest.approx(2.9, rel=1e-14)
    # with weight decay 0.1: g0 = 1.1, buf = 1.1, g = 1.1 + 0.99 = 2.09, p = 0.791
    # g1 = 2 + 0.0791 = 2.0791, buf = 0.99 + 2.0791 = 3.0691,
    # g = 2.0791 + 0.9*3.0691 = 4.84129, p = 0.791 - 0.484129 = 0.306871
    p, buf = run_sgd([1.0, 2.0], momentum=0.9, nesterov=True, weight_decay=0.1)
    assert p == pytest.approx(0.306871, rel=1e-13) and buf == pytest.approx(3.0691, rel=1e-13)


def test_sgd_in_place_float32():
    p = np.ones((2, 3), dtype=np.float32)
    buf = np.zeros_like(p)
    p_id, buf_id = id(p), id(buf)
    ref.sgd_step(p, np.full((2, 3), 2.0, dtype=np.float32), buf, 0, 0.5, momentum=0.9)
    assert id(p) == p_id and id(buf) == buf_id and p.dtype == np.float32
    np.testing.assert_array_equal(p, np.zeros((2, 3)))
    np.testing.assert_array_equal(buf, np.full((2, 3), 2.0))
    ref.sgd_step(p, np.ones((2, 3), dtype=np.float32), None, 0, 0.5)  # no buffer needed
    np.testing.assert_array_equal(p, np.full((2, 3), -0.5))


# ---------------------------------------------------------------------------
# whole network
# ---------------------------------------------------------------------------


def test_mlp_forward_matches_manual():
    rng = np.random.default_rng(8)
    w = make_net(rng, [3, 5, 4, 2])
    net = ref.ReferenceMLP(w, ["relu", "tanh", "sigmoid"])
    X = rng.normal(size=(6, 3))
    h = np.maximum(X @ w[0] + w[1], 0)
    h = np.tanh(h @ w[2] + w[3])
    expected = 1 / (1 + np.exp(-(h @ w[4] + w[5])))
    np.testing.assert_allclose(net.forward(X), expected, rtol=1e-14)
    # weights are copied in and out
    w[0][...] = 0
    got = net.get_weights()
    assert len(got) == 6 and np.any(got[0] != 0)
    got[0][...] = 0
    np.testing.assert_allclose(net.forward(X), expected, rtol=1e-14)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("act", ACTS)
def test_mlp_loss_and_grad_finite_differences(act, loss):
    rng = np.random.default_rng(100 + 10 * ACTS.index(act) + LOSSES.index(loss))
    B, sizes = 6, [3, 5, 3]
    weights = make_net(rng, sizes)
    X = rng.normal(size=(B, sizes[0]))
    y = make_targets(rng, loss, B, sizes[-1])
    kw = dict(l1=0.01, l2=0.03, delta=0.5)

    def total(params):
        net = ref.ReferenceMLP(params, [act, "identity"], negative_slope=0.1)
        return net.loss_and_grad(X, y, loss, **kw)[0]

    net = ref.ReferenceMLP(weights, [act, "identity"], negative_slope=0.1)
    value, grads = net.loss_and_grad(X, y, loss, **kw)
    assert isinstance(value, float) and len(grads) == 2
    out = net.forward(X)
    plain = ref.loss_forward_backward(loss, out, y, delta=0.5)[0]
    assert value == pytest.approx(plain + ref.penalty(weights[0::2], 0.01, 0.03)[0], rel=1e-14)
    for j, w in enumerate(weights):
        def f(v, j=j):
            params = list(weights)
            params[j] = v
            return total(params)

        got = grads[j // 2][j % 2]
        assert got.shape == w.shape
        np.testing.assert_allclose(got, numgrad(f, w), rtol=1e-5, atol=1e-8,
                                   err_msg=f"parameter {j}")


def test_mlp_last_activation_is_applied():
    rng = np.random.default_rng(9)
    weights = make_net(rng, [4, 3, 2])
    X = rng.normal(size=(5, 4))
    y = rng.uniform(size=(5, 2))
    net = ref.ReferenceMLP(weights, ["gelu", "sigmoid"])
    out = net.forward(X)
    assert np.all((out > 0) & (out < 1))
    _, grads = net.loss_and_grad(X, y, "mse")

    def f(v):
        return ref.ReferenceMLP([weights[0], weights[1], v, weights[3]],
                                ["gelu", "sigmoid"]).loss_and_grad(X, y, "mse")[0]

    np.testing.assert_allclose(grads[1][0], numgrad(f, weights[2]), rtol=1e-5, atol=1e-9)


def test_mlp_float32():
    rng = np.random.default_rng(10)
    weights = make_net(rng, [4, 6, 3], dtype=np.float32)
    X = rng.normal(size=(8, 4))  # float64 input is cast to the network dtype
    y = rng.integers(0, 3, size=8)
    net = ref.ReferenceMLP(weights, ["relu", "identity"])
    assert net.forward(X).dtype == np.float32
    _, grads = net.loss_and_grad(X, y, "cross_entropy", l2=0.1)
    assert all(g.dtype == np.float32 for pair in grads for g in pair)
    net.train_epoch(X, y, np.arange(8), 3, "cross_entropy", 0.1, momentum=0.9)
    assert all(w.dtype == np.float32 for w in net.get_weights())


def test_train_epoch_matches_manual_loop():
    rng = np.random.default_rng(11)
    weights = make_net(rng, [4, 6, 3])
    n = 10
    X = rng.normal(size=(n, 4))
    y = rng.integers(0, 3, size=n)
    hp = dict(momentum=0.9, dampening=0.1, nesterov=False, weight_decay=0.01)
    net = ref.ReferenceMLP(weights, ["tanh", "identity"])
    manual = ref.ReferenceMLP(weights, ["tanh", "identity"])
    params = [w.copy() for w in weights]
    bufs = [np.zeros_like(w) for w in weights]
    step = 0
    for epoch in range(2):
        perm = rng.permutation(n)
        got = net.train_epoch(X, y, perm, 4, "cross_entropy", 0.05, l1=0.001, l2=0.002, **hp)
        total = 0.0
        for start in range(0, n, 4):  # batches of 4, 4, 2
            idx = perm[start:start + 4]
            manual_net = ref.ReferenceMLP(params, ["tanh", "identity"])
            value, grads = manual_net.loss_and_grad(X[idx], y[idx], "cross_entropy",
                                                    l1=0.001, l2=0.002)
            total += value * len(idx)
            flat = [g for pair in grads for g in pair]
            for p, g, b in zip(params, flat, bufs):
                ref.sgd_step(p, g, b, step, 0.05, **hp)
            step += 1
        assert got == pytest.approx(total / n, rel=1e-13)
        for a, b in zip(net.get_weights(), params):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    assert manual is not net


def test_train_epoch_reduces_loss():
    rng = np.random.default_rng(12)
    X = rng.normal(size=(200, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    net = ref.ReferenceMLP(make_net(rng, [2, 16, 2]), ["relu", "identity"])
    first = net.train_epoch(X, y, rng.permutation(200), 16, "cross_entropy", 0.1, momentum=0.9)
    for _ in range(30):
        last = net.train_epoch(X, y, rng.permutation(200), 16, "cross_entropy", 0.1,
                               momentum=0.9)
    assert last < 0.5 * first
    acc = np.mean(net.forward(X).argmax(1) == y)
    assert acc > 0.9


# ---------------------------------------------------------------------------
# against PyTorch (skipped when torch is not installed)
# ---------------------------------------------------------------------------


TORCH_ACT = {
    "identity": lambda torch, z, s: z,
    "relu": lambda torch, z, s: torch.nn.functional.relu(z),
    "leaky_relu": lambda torch, z, s: torch.nn.functional.leaky_relu(z, s),
    "sigmoid": lambda torch, z, s: torch.sigmoid(z),
    "tanh": lambda torch, z, s: torch.tanh(z),
    "gelu": lambda torch, z, s: torch.nn.functional.gelu(z),
}


def torch_loss(F, name, out, y, delta):
    if name == "cross_entropy":
        return F.cross_entropy(out, y)
    if name == "binary_cross_entropy":
        return F.binary_cross_entropy_with_logits(out, y)
    if name == "mse":
        return F.mse_loss(out, y)
    if name == "mae":
        return F.l1_loss(out, y)
    if name == "huber":
        return F.huber_loss(out, y, delta=delta)
    return F.multi_margin_loss(out, y, p=1, margin=1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ACTS)
def test_activations_vs_torch(name, dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(13)
    z = np.concatenate([rng.normal(scale=3, size=40), [0.0, -0.0, 1e-30, -1e-30, 30, -30, 1e4, -1e4]])
    z = z.astype(dtype)
    g = rng.normal(size=z.shape).astype(dtype)
    zt = torch.tensor(z, requires_grad=True)
    at = TORCH_ACT[name](torch, zt, 0.2)
    (gt,) = torch.autograd.grad(at, zt, torch.tensor(g))
    a = ref.act_forward(name, z, negative_slope=0.2)
    gz = ref.act_backward(name, z, a, g, negative_slope=0.2)
    # float32: tanh' = 1 - a**2 and torch's float32 gelu (1 + erf(.)) lose
    # absolute accuracy ~ulp(1) by cancellation, hence the atol.
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(a, at.detach().numpy(), **tol)
    np.testing.assert_allclose(gz, gt.numpy(), **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", LOSSES)
def test_losses_vs_torch(name, dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(14)
    B, O, delta = 7, 4, 0.75
    out = rng.normal(scale=1.5, size=(B, O))
    y = make_targets(rng, name, B, O)
    # exercise the kinks too (all values exact in float32 and float64):
    # zero residuals, |d| == delta, zero hinge margins
    if name in ("mae", "mse", "huber"):
        out[0, :] = y[0, :]
        out[1, :] = [0.25, -0.5, 1.0, 2.0]
        y[1, :] = out[1, :] + [delta, -delta, delta, -delta]
    if name == "hinge":
        out[0, :], y[0] = [0.5, 1.5, 0.25, -3.0], 1  # margin of class 0 is exactly 0
    if name in ("cross_entropy", "binary_cross_entropy", "hinge"):
        out[-1, :] = [1e4, -1e4, 0, 3]
    out = out.astype(dtype)
    if name not in ("cross_entropy", "hinge"):
        y = y.astype(dtype)
    loss, grad = ref.loss_forward_backward(name, out, y, delta=delta)
    ot = torch.tensor(out, requires_grad=True)
    lt = torch_loss(F, name, ot, torch.tensor(y), delta)
    (gt,) = torch.autograd.grad(lt, ot)
    tol = dict(rtol=2e-6, atol=1e-7) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(loss, lt.item(), **tol)
    np.testing.assert_allclose(grad, gt.numpy(), **tol)


SGD_CONFIGS = [
    dict(lr=0.1),
    dict(lr=0.05, weight_decay=0.01),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.02),
    dict(lr=0.05, momentum=0.8, nesterov=True),
    dict(lr=0.02, momentum=0.95, nesterov=True, weight_decay=0.05),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cfg", SGD_CONFIGS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_sgd_vs_torch(cfg, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(15)
    p = rng.normal(size=(3, 4)).astype(dtype)
    buf = np.zeros_like(p)
    pt = torch.nn.Parameter(torch.tensor(p))
    opt = torch.optim.SGD([pt], **cfg)
    kw = {k: v for k, v in cfg.items() if k != "lr"}
    for step in range(20):
        g = rng.normal(size=p.shape).astype(dtype)
        ref.sgd_step(p, g, buf, step, cfg["lr"], **kw)
        pt.grad = torch.tensor(g)
        opt.step()
    assert p.dtype == dtype
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(p, pt.detach().numpy(), **tol)
    if cfg.get("momentum", 0):
        np.testing.assert_allclose(buf, opt.state[pt]["momentum_buffer"].numpy(), **tol)


@pytest.mark.parametrize("loss", LOSSES)
def test_mlp_training_vs_torch(loss):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(16)
    n, sizes, acts = 23, [5, 8, 6, 3], ["gelu", "leaky_relu", "identity"]
    weights = make_net(rng, sizes)
    X = rng.normal(size=(n, sizes[0]))
    y = make_targets(rng, loss, n, sizes[-1])
    hp = dict(momentum=0.9, dampening=0.0, nesterov=True, weight_decay=0.01)
    l1, l2, delta, lr, bs = 0.001, 0.01, 1.0, 0.05, 8

    net = ref.ReferenceMLP(weights, acts, negative_slope=0.2)
    params = [torch.nn.Parameter(torch.tensor(w)) for w in weights]
    opt = torch.optim.SGD(params, lr=lr, **hp)
    Xt, yt = torch.tensor(X), torch.tensor(y)
    for epoch in range(3):
        perm = rng.permutation(n)
        got = net.train_epoch(X, y, perm, bs, loss, lr, l1=l1, l2=l2, **hp)
        total = 0.0
        for start in range(0, n, bs):
            idx = torch.tensor(perm[start:start + bs])
            h = Xt[idx]
            for k, act in enumerate(acts):
                h = TORCH_ACT[act](torch, h @ params[2 * k] + params[2 * k + 1], 0.2)
            lt = torch_loss(F, loss, h, yt[idx], delta)
            for W in params[0::2]:
                lt = lt + l1 * W.abs().sum() + 0.5 * l2 * (W * W).sum()
            opt.zero_grad()
            lt.backward()
            opt.step()
            total += lt.item() * len(idx)
        assert got == pytest.approx(total / n, rel=1e-10)
    for a, p in zip(net.get_weights(), params):
        np.testing.assert_allclose(a, p.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_reference_momentum_turned_on_later_starts_its_buffer_as_torch():
    """sgd_step was given the overall step count, so momentum switched on after the first
    step (with dampening) never started its buffer at g: 1.7e-2 from gdcore and torch."""
    import gdcore as gd

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(12, 4)), rng.integers(0, 3, 12)
    model = gd.Sequential([gd.Dense(4, 3)], dtype="float64", seed=0)
    twin = ref.ReferenceMLP(model.get_weights(), ["identity"])
    opt = gd.optim.SGD(lr=0.1)
    model.fit(X, y, optimizer=opt, epochs=1, batch_size=12, shuffle=False, verbose=0)
    twin.train_epoch(X, y, np.arange(12), 12, "cross_entropy", 0.1)
    opt.momentum, opt.dampening = 0.9, 0.5
    model.fit(X, y, optimizer=opt, epochs=2, batch_size=12, shuffle=False, verbose=0)
    for _ in range(2):
        twin.train_epoch(X, y, np.arange(12), 12, "cross_entropy", 0.1, momentum=0.9,
                         dampening=0.5)
    for ours, theirs in zip(model.get_weights(), twin.params):
        np.testing.assert_allclose(ours, theirs, rtol=1e-13, atol=1e-15)
