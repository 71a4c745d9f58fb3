"""SGD: train_step against a step worked by hand from loss_and_grad, against torch.optim.SGD
(when torch is installed), and fit against repeated train_step and against
gdcore.reference.ReferenceMLP.train_epoch fed the same row order; optimizer validation."""
import numpy as np
import pytest

import gdcore as gd
from gdcore import reference as ref
from gdcore.layers import NEGATIVE_SLOPE

SGD_CONFIGS = {
    "plain": dict(lr=0.1),
    "weight_decay": dict(lr=0.1, weight_decay=0.05),
    "momentum": dict(lr=0.05, momentum=0.9),
    "dampening": dict(lr=0.05, momentum=0.9, dampening=0.3),
    "nesterov": dict(lr=0.05, momentum=0.9, nesterov=True),
    "nesterov_decay": dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.02),
    "all_but_nesterov": dict(lr=0.05, momentum=0.7, dampening=0.5, weight_decay=0.02),
}


def flat(arrays):
    return np.concatenate([np.ravel(a) for a in arrays])


def flat_grads(grads):
    return flat([a for pair in grads for a in pair])


def make_model(sizes=(4, 5, 3), *, activation="tanh", dtype="float64", seed=0):
    model = gd.MLP(list(sizes), activation=activation, dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed + 50)
    for layer in model.layers:
        layer.b[...] = rng.uniform(-0.3, 0.3, size=layer.b.shape)
    return model


def data(loss, n_rows, n_in, n_out, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, n_in))
    if loss in ("cross_entropy", "hinge"):
        y = rng.integers(0, n_out, size=n_rows)
    else:
        y = rng.normal(size=(n_rows, n_out))
    return X, y


def reference_of(model):
    return ref.ReferenceMLP(model.get_weights(), [layer.activation for layer in model.layers],
                            negative_slope=NEGATIVE_SLOPE)


# ------------------------------------------------------------------------------ by hand
@pytest.mark.parametrize("config", list(SGD_CONFIGS))
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_train_step_matches_a_hand_worked_step(config, loss):
    hyper = SGD_CONFIGS[config]
    lr, momentum = hyper["lr"], hyper.get("momentum", 0.0)
    dampening, weight_decay = hyper.get("dampening", 0.0), hyper.get("weight_decay", 0.0)
    nesterov = hyper.get("nesterov", False)
    model = make_model()
    opt = gd.optim.SGD(**hyper)
    X, y = data(loss, 24, 4, 3)
    velocity = None
    for step in range(4):  # momentum only shows from the second step on
        rows = slice(6 * step, 6 * step + 6)
        value, grads = model.loss_and_grad(X[rows], y[rows], loss=loss)
        p = flat(model.get_weights())
        g = flat_grads(grads) + weight_decay * p
        if momentum:
            velocity = g if step == 0 else momentum * velocity + (1 - dampening) * g
            update = g + momentum * velocity if nesterov else velocity
        else:
            update = g
        expected = p - lr * update

        returned = model.train_step(X[rows], y[rows], loss=loss, optimizer=opt)
        np.testing.assert_allclose(returned, value, rtol=1e-13)  # the loss before the step
        np.testing.assert_allclose(flat(model.get_weights()), expected, rtol=1e-12, atol=1e-14,
                                   err_msg=f"step {step}")
    assert opt.state["step"] == 4


def test_train_step_with_l2_penalty_and_named_optimizer():
    """optimizer="sgd" is SGD(lr=0.01), created once per model, and l2 adds l2·W to dW only."""
    model = make_model()
    X, y = data("mse", 12, 4, 3)
    for _ in range(2):
        value, grads = model.loss_and_grad(X, y, loss="mse", l2=0.5)
        expected = flat(model.get_weights()) - 0.01 * flat_grads(grads)
        returned = model.train_step(X, y, loss="mse", optimizer="sgd", l2=0.5)
        np.testing.assert_allclose(returned, value, rtol=1e-13)
        np.testing.assert_allclose(flat(model.get_weights()), expected, rtol=1e-12, atol=1e-14)


def test_optimizer_state_is_per_model():
    """A momentum SGD moved to another model starts that model with a first step (v = g)."""
    X, y = data("cross_entropy", 6, 4, 3)
    opt = gd.optim.SGD(lr=0.1, momentum=0.9)
    first = make_model(seed=1)
    for _ in range(3):
        first.train_step(X, y, optimizer=opt)
    second = make_model(seed=2)
    _, grads = second.loss_and_grad(X, y, loss="cross_entropy")
    expected = flat(second.get_weights()) - 0.1 * flat_grads(grads)
    second.train_step(X, y, optimizer=opt)
    np.testing.assert_allclose(flat(second.get_weights()), expected, rtol=1e-12, atol=1e-14)
    opt.reset()
    assert opt.state == {}


# ------------------------------------------------------------------------------ against torch
TORCH_CONFIGS = {
    "plain": dict(lr=0.1),
    "momentum": dict(lr=0.05, momentum=0.9),
    "nesterov": dict(lr=0.05, momentum=0.9, nesterov=True),
    "dampening": dict(lr=0.05, momentum=0.9, dampening=0.2),
    "weight_decay": dict(lr=0.05, momentum=0.9, weight_decay=0.01),
    "nesterov_decay": dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
}


def torch_twin(torch, model):
    """torch nn.Sequential with the same weights (Linear.weight = W.T)."""
    nn = torch.nn
    modules = {"identity": nn.Identity, "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh,
               "gelu": nn.GELU, "leaky_relu": lambda: nn.LeakyReLU(NEGATIVE_SLOPE)}
    stack = []
    for layer in model.layers:
        linear = nn.Linear(layer.n_in, layer.n_out, dtype=torch.float32)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(layer.W.T.copy()))
            linear.bias.copy_(torch.from_numpy(layer.b.copy()))
        stack += [linear, modules[layer.activation]()]
    return nn.Sequential(*stack)


def torch_weights(net):
    out = []
    for module in net:
        if hasattr(module, "weight"):
            out += [module.weight.detach().numpy().T, module.bias.detach().numpy()]
    return out


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("config", list(TORCH_CONFIGS))
def test_twenty_train_steps_match_torch_sgd(config, loss):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    hyper = TORCH_CONFIGS[config]
    layers = [gd.Dense(6, 16, "tanh"), gd.Dense(16, 12, "gelu"), gd.Dense(12, 4)]
    model = gd.Sequential(layers, dtype="float32", seed=3)
    net = torch_twin(torch, model)
    torch_opt = torch.optim.SGD(net.parameters(), **hyper)
    opt = gd.optim.SGD(**hyper)
    X, y = data(loss, 160, 6, 4, seed=3)
    X = X.astype(np.float32)
    y = y.astype(np.float32) if loss == "mse" else y
    for step in range(20):
        rows = slice(8 * step, 8 * step + 8)
        ours = model.train_step(X[rows], y[rows], loss=loss, optimizer=opt)
        torch_opt.zero_grad()
        out = net(torch.from_numpy(X[rows]))
        target = torch.from_numpy(y[rows])
        theirs = F.cross_entropy(out, target) if loss == "cross_entropy" else F.mse_loss(out, target)
        theirs.backward()
        torch_opt.step()
        np.testing.assert_allclose(ours, theirs.item(), rtol=1e-5, err_msg=f"loss of step {step}")
    start = [layer.W for layer in gd.Sequential(
        [gd.Dense(6, 16, "tanh"), gd.Dense(16, 12, "gelu"), gd.Dense(12, 4)],
        dtype="float32", seed=3).layers]
    assert not np.allclose(model.layers[0].W, start[0])  # training moved the weights
    for k, (mine, theirs) in enumerate(zip(model.get_weights(), torch_weights(net))):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6, err_msg=f"weights[{k}]")


def test_momentum_turned_on_midway_starts_the_velocity_as_torch_does():
    """torch's SGD creates its momentum buffer on the first step that has momentum (v = g);
    gdcore's optimizer then starts its state afresh instead of failing for want of a buffer."""
    X, y = data("cross_entropy", 48, 4, 3, seed=5)
    model, twin = make_model(seed=5), make_model(seed=5)
    opt, plain = gd.optim.SGD(lr=0.1), gd.optim.SGD(lr=0.1)
    for step in range(3):
        rows = slice(8 * step, 8 * step + 8)
        model.train_step(X[rows], y[rows], optimizer=opt)
        twin.train_step(X[rows], y[rows], optimizer=plain)
    opt.momentum, opt.dampening = 0.9, 0.5
    fresh = gd.optim.SGD(lr=0.1, momentum=0.9, dampening=0.5)
    for step in range(3, 6):
        rows = slice(8 * step, 8 * step + 8)
        assert model.train_step(X[rows], y[rows], optimizer=opt) == \
            twin.train_step(X[rows], y[rows], optimizer=fresh)
    for mine, theirs in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    model.fit(X, y, optimizer=opt, epochs=1, batch_size=8, verbose=0)  # fit takes it too
    opt.momentum = 0.0  # and off again: the velocity stays, unused, as torch's buffer does
    velocity = opt.state["slots"][0].copy()
    model.train_step(X[:8], y[:8], optimizer=opt)
    np.testing.assert_array_equal(opt.state["slots"][0], velocity)


def test_momentum_turned_on_off_and_on_again_matches_torch():
    """torch creates the momentum buffer on the first step with momentum, leaves it alone while
    momentum is 0, and goes on with it when momentum returns (before: restarted at v = g)."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    layers = [gd.Dense(6, 16, "tanh"), gd.Dense(16, 4)]
    model = gd.Sequential(layers, dtype="float32", seed=3)
    net = torch_twin(torch, model)
    torch_opt = torch.optim.SGD(net.parameters(), lr=0.05)
    opt = gd.optim.SGD(lr=0.05)
    X, y = data("cross_entropy", 80, 6, 4, seed=3)
    X = X.astype(np.float32)
    settings = {4: (0.9, 0.3), 6: (0.0, 0.3), 8: (0.8, 0.0)}  # on, off, on again
    for step in range(10):
        if step in settings:
            opt.momentum, opt.dampening = settings[step]
            torch_opt.param_groups[0].update(momentum=opt.momentum, dampening=opt.dampening)
        rows = slice(8 * step, 8 * step + 8)
        model.train_step(X[rows], y[rows], optimizer=opt)
        torch_opt.zero_grad()
        F.cross_entropy(net(torch.from_numpy(X[rows])), torch.from_numpy(y[rows])).backward()
        torch_opt.step()
    for k, (mine, theirs) in enumerate(zip(model.get_weights(), torch_weights(net))):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6, err_msg=f"weights[{k}]")


@pytest.mark.parametrize("make, name, bad, error, match", [
    (lambda: gd.optim.SGD(lr=0.1), "lr", -1.0, ValueError, r"^lr must be (> 0|>= 0)"),
    (lambda: gd.optim.SGD(lr=0.1), "momentum", 1.0, ValueError, r"^momentum must be >= 0 and < 1"),
    (lambda: gd.optim.SGD(lr=0.1), "nesterov", "yes", TypeError, r"^nesterov must be a bool"),
    (lambda: gd.optim.Adam(), "betas", 0.9, ValueError, r"^betas must be a pair"),
    (lambda: gd.optim.Adam(), "betas", (1.5, 0.999), ValueError, r"^betas\[0\] must be"),
    (lambda: gd.optim.AdamW(), "weight_decay", float("nan"), ValueError, r"^weight_decay must be"),
    (lambda: gd.optim.RMSprop(), "alpha", 1.0, ValueError, r"^alpha must be"),
    (lambda: gd.optim.RMSprop(), "centered", 1, TypeError, r"^centered must be a bool"),
    (lambda: gd.optim.Adagrad(), "initial_accumulator_value", -1, ValueError,
     r"^initial_accumulator_value must be >= 0"),
])
def test_hyperparameters_assigned_later_are_checked_as_the_constructors(make, name, bad, error,
                                                                        match):
    optimizer = make()
    before = getattr(optimizer, name)
    with pytest.raises(error, match=match):
        setattr(optimizer, name, bad)
    assert getattr(optimizer, name) == before
    with pytest.raises(error, match=match):
        type(optimizer)(**{name: bad})


def test_nesterov_without_momentum_set_later_is_refused_before_a_step():
    X, y = data("cross_entropy", 16, 4, 3)
    model = make_model()
    before = model.get_weights()
    optimizer = gd.optim.SGD(lr=0.1, momentum=0.9, nesterov=True)
    optimizer.momentum = 0.0  # each attribute alone is fine; together they are not
    for call in (lambda: model.fit(X, y, optimizer=optimizer, epochs=1, verbose=0),
                 lambda: model.train_step(X, y, optimizer=optimizer)):
        with pytest.raises(ValueError, match="nesterov momentum requires momentum > 0"):
            call()
    for w, w0 in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, w0)


# ------------------------------------------------------------------------------ fit
def test_full_batch_fit_is_repeated_train_step():
    X, y = data("cross_entropy", 40, 4, 3, seed=4)
    hyper = dict(lr=0.2, momentum=0.9, nesterov=True)
    fitted, stepped = make_model(seed=4), make_model(seed=4)
    history = fitted.fit(X, y, loss="cross_entropy", optimizer=gd.optim.SGD(**hyper), epochs=5,
                         batch_size=len(X), shuffle=False, verbose=0)
    opt = gd.optim.SGD(**hyper)
    losses = [stepped.train_step(X, y, loss="cross_entropy", optimizer=opt) for _ in range(5)]
    for a, b in zip(fitted.get_weights(), stepped.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(history.history["loss"], losses, rtol=1e-13)
    assert losses[-1] < losses[0]


def test_batch_size_larger_than_n_samples_is_full_batch():
    X, y = data("mse", 10, 4, 3, seed=5)
    a, b = make_model(seed=5), make_model(seed=5)
    a.fit(X, y, loss="mse", optimizer="sgd", lr=0.1, epochs=2, batch_size=10, shuffle=False,
          verbose=0)
    b.fit(X, y, loss="mse", optimizer="sgd", lr=0.1, epochs=2, batch_size=1000, shuffle=False,
          verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


FIT_CASES = {
    # name: (loss, batch_size, SGD hyperparameters, l1, l2)
    "sgd_batch_1": ("cross_entropy", 1, dict(lr=0.05), 0.0, 0.0),
    "last_batch_smaller": ("cross_entropy", 7, dict(lr=0.1, momentum=0.9), 0.0, 0.0),
    "nesterov_mse": ("mse", 8, dict(lr=0.05, momentum=0.9, nesterov=True), 0.0, 0.0),
    "dampened_decay_huber": ("huber", 5, dict(lr=0.1, momentum=0.5, dampening=0.5,
                                               weight_decay=0.01), 0.0, 0.0),
    "penalties_hinge": ("hinge", 6, dict(lr=0.1, momentum=0.8), 0.001, 0.01),
    "bce_one_batch": ("binary_cross_entropy", 30, dict(lr=0.5), 0.0, 0.0),
}


@pytest.mark.parametrize("case", list(FIT_CASES))
def test_fit_matches_reference_train_epoch(case):
    loss, batch_size, hyper, l1, l2 = FIT_CASES[case]
    n_rows, seed = 30, 11
    model = make_model((5, 8, 3), activation="gelu", seed=6)
    reference = reference_of(model)
    X, y = data(loss, n_rows, 5, 3, seed=6)
    if loss == "binary_cross_entropy":
        y = (y > 0).astype(np.float64)
    history = model.fit(X, y, loss=loss, optimizer=gd.optim.SGD(**hyper), epochs=2,
                        batch_size=batch_size, seed=seed, l1=l1, l2=l2, verbose=0)
    ref_losses = []
    for epoch in range(2):
        perm = gd.epoch_permutation(n_rows, seed, epoch)
        assert sorted(perm) == list(range(n_rows))
        ref_losses.append(reference.train_epoch(X, y, perm, batch_size, loss, l1=l1, l2=l2,
                                                **hyper))
    np.testing.assert_allclose(history.history["loss"], ref_losses, rtol=1e-11)
    for k, (mine, theirs) in enumerate(zip(model.get_weights(), reference.get_weights())):
        np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-12, err_msg=f"weights[{k}]")
    assert not np.allclose(model.layers[0].W, make_model((5, 8, 3), activation="gelu",
                                                         seed=6).layers[0].W)


def test_shuffled_fit_differs_from_unshuffled_and_follows_epoch_permutation():
    X, y = data("cross_entropy", 20, 5, 3, seed=7)
    shuffled, ordered = make_model((5, 8, 3), seed=7), make_model((5, 8, 3), seed=7)
    shuffled.fit(X, y, optimizer=gd.optim.SGD(lr=0.1), epochs=1, batch_size=4, seed=3, verbose=0)
    ordered.fit(X, y, optimizer=gd.optim.SGD(lr=0.1), epochs=1, batch_size=4, shuffle=False,
                verbose=0)
    assert not np.allclose(shuffled.layers[0].W, ordered.layers[0].W)
    # shuffle=False is the identity permutation
    reference = reference_of(make_model((5, 8, 3), seed=7))
    reference.train_epoch(X, y, np.arange(20), 4, "cross_entropy", lr=0.1)
    np.testing.assert_allclose(ordered.layers[0].W, reference.params[0], rtol=1e-10, atol=1e-12)


def test_an_optimizer_object_keeps_its_momentum_across_fit_calls():
    X, y = data("mse", 12, 5, 3, seed=8)
    model = make_model((5, 8, 3), seed=8)
    reference = reference_of(model)
    opt = gd.optim.SGD(lr=0.05, momentum=0.9)
    for seed in (1, 2):
        model.fit(X, y, loss="mse", optimizer=opt, epochs=1, batch_size=5, seed=seed, verbose=0)
        reference.train_epoch(X, y, gd.epoch_permutation(12, seed, 0), 5, "mse", lr=0.05,
                              momentum=0.9)
    for mine, theirs in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-12)


def test_epoch_permutation_is_reproducible_and_differs_between_epochs():
    a = gd.epoch_permutation(50, 3, 0)
    np.testing.assert_array_equal(a, gd.epoch_permutation(50, 3, 0))
    assert a.dtype == np.int64 and sorted(a) == list(range(50))
    assert not np.array_equal(a, gd.epoch_permutation(50, 3, 1))
    assert not np.array_equal(a, gd.epoch_permutation(50, 4, 0))


# ------------------------------------------------------------------------------ validation
@pytest.mark.parametrize("kwargs, match", [
    (dict(lr=0.1, nesterov=True), "nesterov"),
    (dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "nesterov"),
    (dict(lr=-0.1), "lr"),
    (dict(lr=0.0), "lr"),
    (dict(lr=float("nan")), "lr"),
    (dict(lr=float("inf")), "lr"),
    (dict(lr="0.1"), "lr"),
    (dict(lr=True), "lr"),
    (dict(lr=0.1, momentum=-0.5), "momentum"),
    (dict(lr=0.1, momentum=1.0), "momentum"),
    (dict(lr=0.1, momentum=0.5, dampening=-0.1), "dampening"),
    (dict(lr=0.1, momentum=0.5, dampening=1.5), "dampening"),
    (dict(lr=0.1, weight_decay=-1e-3), "weight_decay"),
    (dict(lr=0.1, weight_decay=float("nan")), "weight_decay"),
])
def test_sgd_rejects_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gd.optim.SGD(**kwargs)


def test_sgd_nesterov_must_be_a_bool_and_hyperparameters_are_keyword_only():
    with pytest.raises(TypeError, match="nesterov"):
        gd.optim.SGD(lr=0.1, momentum=0.9, nesterov="yes")
    with pytest.raises(TypeError):
        gd.optim.SGD(0.1, 0.9)
    opt = gd.optim.SGD(0.1, momentum=0.9, nesterov=True)
    # (kind, lr, weight_decay, momentum, dampening, nesterov, ...): what the C core reads
    assert opt.spec()[:6] == (0, 0.1, 0.0, 0.9, 0.0, 1)


def test_unknown_optimizer_and_lr_with_an_object():
    with pytest.raises(ValueError, match="optimizer"):
        gd.optim.get("adamax")
    model = make_model()
    X, y = data("cross_entropy", 6, 4, 3)
    before = model.get_weights()
    with pytest.raises(ValueError, match="optimizer"):
        model.fit(X, y, optimizer="adamax", verbose=0)
    with pytest.raises(ValueError, match="optimizer"):
        model.train_step(X, y, optimizer="adamax")
    with pytest.raises(ValueError, match="lr"):
        model.fit(X, y, optimizer=gd.optim.SGD(lr=0.1), lr=0.5, verbose=0)
    with pytest.raises(ValueError, match="lr"):
        model.fit(X, y, optimizer="sgd", lr=-0.5, verbose=0)
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_fit_records_the_learning_rate():
    X, y = data("cross_entropy", 6, 4, 3)
    history = make_model().fit(X, y, optimizer="sgd", lr=0.25, epochs=2, verbose=0)
    assert history.history["lr"] == [0.25, 0.25]
    assert history.epoch == [0, 1]
