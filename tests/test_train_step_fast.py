"""train_step's fast path (a Stepper bound on the first call): the same bits as the general path,
rebuilt whenever the optimizer, its state or the arguments change, and the same errors."""
import numpy as np
import pytest

import gdcore as gd
from gdcore.models import Sequential

OPTIMIZERS = {
    "sgd_nesterov": lambda: gd.optim.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda: gd.optim.Adam(lr=0.01),
    "adamw": lambda: gd.optim.AdamW(lr=0.01, weight_decay=0.1),
    "rmsprop_centered": lambda: gd.optim.RMSprop(lr=0.01, momentum=0.5, centered=True),
    "adagrad": lambda: gd.optim.Adagrad(lr=0.05),
}


def batches(loss, n_outputs, dtype, n=6, rows=16, n_inputs=8, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        X = rng.standard_normal((rows, n_inputs)).astype(dtype)
        if loss in ("cross_entropy", "hinge"):
            y = rng.integers(0, n_outputs, rows).astype(np.int64)
        elif loss == "binary_cross_entropy":
            y = rng.random((rows, n_outputs)).astype(dtype)
        else:
            y = rng.standard_normal((rows, n_outputs)).astype(dtype)
        out.append((X, y))
    return out


def count_general_calls(monkeypatch):
    calls = []
    general = Sequential._train_step

    def counting(self, *args):
        calls.append(1)
        return general(self, *args)
    monkeypatch.setattr(Sequential, "_train_step", counting)
    return calls


def make_model(dtype, n_outputs=3, dropout=0.0):
    layers = [gd.Dense(8, 16, activation="tanh")]
    if dropout:
        layers.append(gd.Dropout(dropout))
    layers.append(gd.Dense(16, n_outputs, activation="identity"))
    return Sequential(layers, dtype=dtype, seed=3)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("opt_name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("loss", ["cross_entropy", "mse", "binary_cross_entropy", "hinge"])
def test_fast_path_gives_the_general_paths_bits(monkeypatch, dtype, opt_name, loss):
    """Model A gets arrays in the core's layout (the fast path after its first call); model B
    gets lists, which always take the general path. Same losses and weights, bit for bit."""
    calls = count_general_calls(monkeypatch)
    fast, general = make_model(dtype), make_model(dtype)
    opt_fast, opt_general = OPTIMIZERS[opt_name](), OPTIMIZERS[opt_name]()
    data = batches(loss, 3, dtype)
    for X, y in data:
        a = fast.train_step(X, y, loss=loss, optimizer=opt_fast, l2=1e-3, n_threads=1)
        b = general.train_step(X.tolist(), y.tolist(), loss=loss, optimizer=opt_general, l2=1e-3,
                               n_threads=1)
        assert a == b
    for wa, wb in zip(fast.get_weights(), general.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    for sa, sb in zip(opt_fast.state["slots"], opt_general.state["slots"]):
        np.testing.assert_array_equal(sa, sb)
    assert opt_fast.state["step"] == opt_general.state["step"] == len(data)
    # model A took the general path once (to bind), model B every time
    assert len(calls) == 1 + len(data)


def test_fast_path_with_dropout_draws_the_same_masks():
    fast, general = make_model("float32", dropout=0.3), make_model("float32", dropout=0.3)
    for X, y in batches("cross_entropy", 3, np.float32):
        assert fast.train_step(X, y, optimizer="adam") == general.train_step(
            X.tolist(), y.tolist(), optimizer="adam")
    for wa, wb in zip(fast.get_weights(), general.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_changed_hyperparameters_and_state_rebind(monkeypatch):
    """A new lr, a reset, the optimizer used on another model, another loss or penalty: each call
    after such a change must see it (it takes the general path and binds again)."""
    calls = count_general_calls(monkeypatch)
    model, twin = make_model("float64"), make_model("float64")
    opt, twin_opt = gd.optim.SGD(lr=0.1, momentum=0.9), gd.optim.SGD(lr=0.1, momentum=0.9)
    other = make_model("float64")
    data = batches("cross_entropy", 3, np.float64, n=7)

    def both(step, X, y, **kwargs):
        a = model.train_step(X, y, optimizer=opt, **kwargs)
        b = twin.train_step(X.tolist(), y.tolist(), optimizer=twin_opt, **kwargs)
        assert a == b, step

    both(0, *data[0])
    both(1, *data[1])
    assert len(calls) == 3  # model binds once, twin every call
    opt.lr = twin_opt.lr = 0.01
    both(2, *data[2])
    opt.reset(), twin_opt.reset()
    both(3, *data[3])
    opt.slots(other), twin_opt.slots(other)  # the optimizers move to another model and back
    both(4, *data[4])
    both(5, *data[5], l2=0.01)
    both(6, *data[6], loss="hinge")
    for wa, wb in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert len(calls) == 3 + 5 * 2  # after each change: model rebinds (1), twin (1)


def test_mutated_loss_object_is_not_reused():
    model, twin = make_model("float64"), make_model("float64")
    huber, twin_huber = gd.losses.Huber(1.0), gd.losses.Huber(1.0)
    data = batches("mse", 3, np.float64, n=3)
    for i, (X, y) in enumerate(data):
        if i == 2:
            huber.delta = twin_huber.delta = 0.1
        a = model.train_step(X, y, loss=huber, optimizer="sgd")
        b = twin.train_step(X.tolist(), y.tolist(), loss=twin_huber, optimizer="sgd")
        assert a == b
    for wa, wb in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def bound_model():
    model = make_model("float32")
    X, y = batches("cross_entropy", 3, np.float32, n=1)[0]
    model.train_step(X, y, optimizer="sgd")
    assert model._fast_step is not None
    return model, X, y


@pytest.mark.parametrize("bad, match", [
    (lambda X, y: (np.where(np.arange(X.size).reshape(X.shape) == 5, np.nan, X), y),
     "X contains NaN or infinity"),
    (lambda X, y: (X, np.where(np.arange(y.size) == 2, 7, y)), "y"),
    (lambda X, y: (X[:, :5].copy(), y), "features"),
    (lambda X, y: (X, y[:-1].copy()), "y"),
    (lambda X, y: (X[::2], y[::2]), None),  # not contiguous: converted, no error
])
def test_bad_batches_after_binding_get_the_general_paths_answer(bad, match):
    model, X, y = bound_model()
    Xb, yb = bad(X, y)
    before = model.get_weights()
    if match is None:
        assert np.isfinite(model.train_step(Xb, yb, optimizer="sgd"))
        return
    with pytest.raises(ValueError, match=match):
        model.train_step(Xb, yb, optimizer="sgd")
    for w, w0 in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, w0)


@pytest.mark.parametrize("bad_target", [2.0, -0.5, np.nan])
def test_binary_targets_outside_0_1_are_refused_after_binding(bad_target):
    """The core reads y itself on the fast path; it must refuse what fit's check refuses."""
    model = make_model("float32", n_outputs=2)
    optimizer = gd.optim.SGD(lr=0.1, momentum=0.9)
    for X, y in batches("binary_cross_entropy", 2, np.float32, n=2):
        model.train_step(X, y, loss="binary_cross_entropy", optimizer=optimizer)
    assert model._fast_step is not None
    before, step = model.get_weights(), optimizer.state["step"]
    y_bad = y.copy()
    y_bad[3, 1] = bad_target
    with pytest.raises(ValueError, match=r"y (must be in \[0, 1\]|contains NaN)"):
        model.train_step(X, y_bad, loss="binary_cross_entropy", optimizer=optimizer)
    assert optimizer.state["step"] == step
    for w, w0 in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, w0)


@pytest.mark.parametrize("bind_first", [False, True])
def test_a_refused_step_leaves_the_dropout_generator_alone(bind_first):
    model, twin = make_model("float32", dropout=0.5), make_model("float32", dropout=0.5)
    data = batches("cross_entropy", 3, np.float32, n=3)
    for X, y in data[:2 if bind_first else 0]:
        assert model.train_step(X, y, optimizer="sgd") == twin.train_step(X, y, optimizer="sgd")
    X, y = data[2]
    with pytest.raises(ValueError, match="class indices outside"):
        model.train_step(X, y + 3, optimizer="sgd")
    assert model.train_step(X, y, optimizer="sgd") == twin.train_step(X, y, optimizer="sgd")
    for wa, wb in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_odd_argument_after_binding_is_refused_clearly():
    model, X, y = bound_model()
    with pytest.raises(ValueError, match="optimizer"):
        model.train_step(X, y, optimizer=np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="loss"):
        model.train_step(X, y, loss=np.array([1.0]), optimizer="sgd")


def test_overflowing_fast_step_is_undone(monkeypatch):
    """An update past float32's range on the fast path: DivergenceError, and the weights, the
    optimizer's buffers and its step count are those from before the call."""
    calls = count_general_calls(monkeypatch)
    model = make_model("float32")
    opt = gd.optim.SGD(lr=1e38, momentum=0.9)
    zeros_X, zeros_y = np.zeros((16, 8), np.float32), np.zeros((16, 3), np.float32)
    model.train_step(zeros_X, zeros_y, loss="mse", optimizer=opt)  # zero gradient: binds only
    X = batches("mse", 3, np.float32, n=1)[0][0]
    far_y = np.full((16, 3), 1e4, np.float32)  # gradients of ~100: lr·g is past 3.4e38
    before = model.get_weights()
    slots_before = [s.copy() for s in opt.state["slots"]]
    with pytest.raises(gd.DivergenceError, match="restored"):
        model.train_step(X, far_y, loss="mse", optimizer=opt)
    assert len(calls) == 1  # the overflowing step ran on the fast path
    for w, w0 in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, w0)
    for s, s0 in zip(opt.state["slots"], slots_before):
        np.testing.assert_array_equal(s, s0)
    assert opt.state["step"] == 1


def test_general_path_calls_keep_the_bound_stepper():
    """Inputs that always take the general path (lists) must not rebuild the stepper each call."""
    model = make_model("float32")
    opt = gd.optim.SGD(lr=0.01, momentum=0.9)
    X, y = batches("cross_entropy", 3, np.float32, n=1)[0]
    model.train_step(X.tolist(), y.tolist(), optimizer=opt)
    stepper = model._fast_step[-1]
    model.train_step(X.tolist(), y.tolist(), optimizer=opt)
    assert model._fast_step[-1] is stepper
    opt.lr = 0.02  # a real change still rebinds
    model.train_step(X.tolist(), y.tolist(), optimizer=opt)
    assert model._fast_step[-1] is not stepper


@pytest.mark.parametrize("kwargs, match", [
    (dict(l2=False), "l2"), (dict(l1=np.array(0.0)), "l1"), (dict(n_threads=2.0), "n_threads")])
def test_arguments_equal_to_the_bound_ones_but_of_another_type_are_checked(kwargs, match):
    """The fast path matched its key with ==: l2=False (== 0.0), n_threads=2.0 (== 2) and
    l1=np.array(0.0) stepped where the general path refuses them."""
    model = make_model("float32")
    X, y = batches("cross_entropy", 3, np.float32, n=1)[0]
    model.train_step(X, y, optimizer="sgd", l1=0.0, l2=0.0, n_threads=2)
    before = model._params.copy()
    with pytest.raises((TypeError, ValueError), match=match):
        model.train_step(X, y, optimizer="sgd", **{**dict(l1=0.0, l2=0.0, n_threads=2), **kwargs})
    np.testing.assert_array_equal(model._params, before)


def test_a_replaced_state_buffer_takes_the_general_path():
    """The bound Stepper holds the buffers' pointers: with a velocity replaced in the state's
    list it stepped the old, orphaned one (0.25 against 0.47)."""
    data = batches("cross_entropy", 3, np.float32, n=4)
    results = []
    for replace in (False, True):
        model, opt = make_model("float32"), gd.optim.SGD(lr=0.1, momentum=0.9)
        for i, (X, y) in enumerate(data):
            if i == 2:
                opt.state["slots"][0] = np.zeros_like(opt.state["slots"][0])
                if not replace:  # the same values through the general path from here on
                    model._fast_step = None
            model.train_step(X, y, optimizer=opt)
        results.append((model._params.copy(), opt.state["slots"][0].copy()))
    for mine, theirs in zip(*results):
        np.testing.assert_array_equal(mine, theirs)


def test_a_refused_step_leaves_another_models_optimizer_state_alone():
    """The state was taken over (started afresh for the refusing model) before the optimizer's
    hyperparameters were checked: model a lost its velocity and step count."""
    (X, y), = batches("cross_entropy", 3, np.float32, n=1)
    a, b = make_model("float32"), make_model("float32")
    opt = gd.optim.SGD(lr=0.1, momentum=0.9, nesterov=True)
    for _ in range(3):
        a.train_step(X, y, optimizer=opt)
    state = {k: v for k, v in opt.state.items()}
    velocity = opt.state["slots"][0].copy()
    opt.momentum = 0.0
    with pytest.raises(ValueError, match="nesterov momentum requires momentum > 0"):
        b.train_step(X, y, optimizer=opt)
    assert opt.state["owner"] is a and opt.state["step"] == state["step"] == 3
    np.testing.assert_array_equal(opt.state["slots"][0], velocity)


def test_train_step_records_its_loss_for_predict_proba_and_evaluate():
    """predict_proba gave a softmax for a model trained with binary cross-entropy by
    train_step (only fit recorded the loss), and evaluate asked for the loss."""
    X, y = batches("binary_cross_entropy", 3, np.float32, n=1)[0]
    for calls in (1, 3):  # the general path, then the fast path too
        model = make_model("float32")
        for _ in range(calls):
            model.train_step(X, y, loss="binary_cross_entropy", optimizer="sgd")
        proba = model.predict_proba(X)
        np.testing.assert_allclose(proba, 1 / (1 + np.exp(-model.predict(X).astype(np.float64))),
                                   rtol=1e-6)
        assert model.evaluate(X, y)["loss"] == model.evaluate(X, y, loss="bce")["loss"]


@pytest.mark.parametrize("l2", [0, np.float64(1e-4)])
def test_int_and_numpy_penalties_keep_the_fast_path(monkeypatch, l2):
    """The fast path's key held the converted floats, so an int or NumPy l2 never matched
    (every call took the general path, 40 us instead of 6)."""
    calls = count_general_calls(monkeypatch)
    model = make_model("float32")
    X, y = batches("cross_entropy", 3, np.float32, n=1)[0]
    for _ in range(5):
        model.train_step(X, y, optimizer="sgd", l2=l2)
    assert len(calls) == 1


def test_a_step_waiting_for_a_shared_optimizer_uses_its_hyperparameters_after_the_wait():
    """train_step read the optimizer's hyperparameters before waiting for its lock, and bound
    the fast path with them: a change made meanwhile (by the fit holding it) was ignored."""
    import threading
    import time
    (X, y), = batches("cross_entropy", 3, np.float32, n=1)
    opt = gd.optim.SGD(lr=0.01)
    model, expected = make_model("float32"), make_model("float32")
    with opt._lock:  # as a fit in another thread holds it
        worker = threading.Thread(target=lambda: model.train_step(X, y, optimizer=opt))
        worker.start()
        time.sleep(0.3)  # the worker waits for the lock
        opt.lr = 0.5
    worker.join()
    model.train_step(X, y, optimizer=opt)  # the fast path, bound by the first call
    twin_opt = gd.optim.SGD(lr=0.5)
    for _ in range(2):
        expected.train_step(X, y, optimizer=twin_opt)
    np.testing.assert_array_equal(model._params, expected._params)
