"""Training end to end: bit-identical results for any thread count, learning XOR, the digits and
a regression, validation history, probabilities, the GIL released during fit, weight access."""
import copy
import math
import pickle
import threading
import time

import numpy as np
import pytest

import gdcore as gd


def digits_split(seed=0):
    X, y = gd.datasets.load_digits()
    X = X / 16.0
    perm = np.random.default_rng(seed).permutation(len(X))
    cut = int(0.8 * len(X))
    return X[perm[:cut]], y[perm[:cut]], X[perm[cut:]], y[perm[cut:]]


# ------------------------------------------------------------------------------ determinism
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("sizes, batch_size", [
    ([64, 256, 256, 10], 256),  # 3 batches of 256 and a last one of 232
    ([64, 600, 300, 10], 200),  # 256-column tiles of layers 512+ wide, a ragged 88-column one
    ([64, 520, 10], 600),       # large-batch tiles: 256×256 with ragged edges (600 rows, 520 wide)
    ([300, 96, 10], 64),        # layer 0 in two halves of its 300 inputs; a last batch of 40
    ([520, 300, 10], 600),      # the same with large-batch tiles
])
def test_same_seed_gives_identical_bits_for_any_thread_count(dtype, sizes, batch_size):
    """The core cuts each batch into tiles of the forward, input-gradient and dW GEMMs and runs
    them on several threads, and the bits must not depend on how many."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, sizes[0]))
    y = rng.integers(0, 10, size=1000)
    results = {}
    for n_threads in (1, 2, 3, 4):
        model = gd.MLP(sizes, activation="relu", dtype=dtype, seed=0)
        history = model.fit(X, y, loss="cross_entropy", epochs=2, batch_size=batch_size, seed=1,
                            optimizer=gd.optim.SGD(lr=0.05, momentum=0.9, nesterov=True),
                            l2=1e-4, n_threads=n_threads, verbose=0)
        value, grads = model.loss_and_grad(X[:300], y[:300], loss="cross_entropy", l1=1e-4,
                                           n_threads=n_threads)
        results[n_threads] = (model.get_weights(), history.history["loss"], value, grads,
                              model.predict(X, n_threads=n_threads))
    weights_1, losses_1, value_1, grads_1, pred_1 = results[1]
    initial = gd.MLP(sizes, dtype=dtype, seed=0).get_weights()
    assert not np.array_equal(weights_1[0], initial[0])  # it trained
    for n_threads in (2, 3, 4):
        weights, losses, value, grads, pred = results[n_threads]
        for k, (a, b) in enumerate(zip(weights_1, weights)):
            assert np.array_equal(a, b), f"weights[{k}] differ with n_threads={n_threads}"
        assert losses == losses_1
        assert value == value_1
        for (dW1, db1), (dW, db) in zip(grads_1, grads):
            assert np.array_equal(dW1, dW) and np.array_equal(db1, db)
        assert np.array_equal(pred_1, pred)


@pytest.fixture
def set_blas_small_mnk():
    """Set the core's small-matrix bound (which sizes the tiles) for one test, then restore it."""
    saved = gd._core.blas_small_mnk()
    yield gd._core.set_blas_small_mnk
    gd._core.set_blas_small_mnk(saved)


@pytest.mark.parametrize("small_mnk", [0, 100 ** 3])
def test_tiles_sized_for_the_small_matrix_path_keep_the_bits_and_the_gradients(
        set_blas_small_mnk, small_mnk):
    """600 inputs run in halves of 300; at batch 64 a 64-column forward tile is 1.2M
    multiply-adds and a 32-column one 0.6M, so with a BLAS bound of 100³ the forward runs in
    32-column tiles, without one in 64-column tiles. Either way: the same bits for any thread
    count, and the gradients of float64 NumPy."""
    set_blas_small_mnk(small_mnk)
    sizes, B = [600, 96, 10], 64
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, sizes[0])).astype(np.float32)
    y = rng.integers(0, 10, size=500)
    weights = {}
    for n_threads in (1, 2, 3):
        model = gd.MLP(sizes, activation="relu", seed=0)
        model.fit(X, y, epochs=1, batch_size=B, seed=1, n_threads=n_threads, verbose=0,
                  optimizer=gd.optim.SGD(lr=0.05, momentum=0.9))
        weights[n_threads] = model.get_weights()
    for n_threads in (2, 3):
        for k, (a, b) in enumerate(zip(weights[1], weights[n_threads])):
            assert np.array_equal(a, b), f"weights[{k}] differ with n_threads={n_threads}"

    model = gd.MLP(sizes, activation="relu", seed=0)
    _, grads = model.loss_and_grad(X[:B], y[:B], loss="cross_entropy", n_threads=2)
    W0, b0, W1, b1 = (w.astype(np.float64) for w in model.get_weights())
    X64 = X[:B].astype(np.float64)
    Z0 = X64 @ W0 + b0
    A0 = np.maximum(Z0, 0)
    Z1 = A0 @ W1 + b1
    D1 = np.exp(Z1 - Z1.max(axis=1, keepdims=True))
    D1 /= D1.sum(axis=1, keepdims=True)
    D1[np.arange(B), y[:B]] -= 1
    D1 /= B
    D0 = (D1 @ W1.T) * (Z0 > 0)
    for got, want in [(grads[0][0], X64.T @ D0), (grads[0][1], D0.sum(axis=0)),
                      (grads[1][0], A0.T @ D1), (grads[1][1], D1.sum(axis=0))]:
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6 * np.abs(want).max())


def test_split_first_layer_refuses_a_sum_that_overflows_only_when_the_halves_meet():
    # each half of the 300 inputs sums to 3e38 (finite in float32), the two together to inf
    model = gd.MLP([300, 4, 2], seed=0)
    W0 = np.full((300, 4), 2e36, dtype=np.float32)
    model.set_weights([W0, np.zeros(4), np.zeros((4, 2)), np.zeros(2)])
    before = model.get_weights()
    X, y = np.ones((8, 300), dtype=np.float32), np.zeros(8, dtype=np.int64)
    for threads in (1, 2):
        with pytest.raises(gd.DivergenceError):
            model.fit(X, y, optimizer="sgd", epochs=1, batch_size=8, n_threads=threads, verbose=0)
        for old, new in zip(before, model.get_weights()):
            np.testing.assert_array_equal(old, new)


def test_same_seed_same_result_and_different_seed_different_result():
    X, y, _, _ = digits_split()
    X, y = X[:300], y[:300]

    def run(seed):
        model = gd.MLP([64, 16, 10], seed=0)
        model.fit(X, y, optimizer="sgd", lr=0.1, epochs=2, batch_size=16, seed=seed, verbose=0)
        return model.get_weights()

    a, b, c = run(5), run(5), run(6)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert not np.array_equal(a[0], c[0])


def test_fit_without_seed_is_reproducible_from_the_model_seed():
    X, y, _, _ = digits_split()
    X, y = X[:200], y[:200]
    weights = []
    for _ in range(2):
        model = gd.MLP([64, 16, 10], seed=3)
        model.fit(X, y, optimizer="sgd", lr=0.1, epochs=2, verbose=0)
        weights.append(model.get_weights())
    assert all(np.array_equal(u, v) for u, v in zip(*weights))


# ------------------------------------------------------------------------------ learning
def test_learns_xor():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    y = np.array([0, 1, 1, 0])
    model = gd.MLP([2, 8, 2], activation="tanh", seed=0)
    history = model.fit(X, y, loss="cross_entropy", epochs=300, batch_size=4,
                        optimizer=gd.optim.SGD(lr=0.5, momentum=0.9), verbose=0)
    np.testing.assert_array_equal(model.predict_classes(X), y)
    assert model.evaluate(X, y)["accuracy"] == 1.0
    assert history.history["loss"][-1] < 0.05 < history.history["loss"][0]


def test_learns_the_digits():
    X_train, y_train, X_test, y_test = digits_split(seed=0)
    model = gd.MLP([64, 64, 10], activation="relu", seed=0)
    start = time.perf_counter()
    history = model.fit(X_train, y_train, loss="cross_entropy", epochs=20, batch_size=32,
                        optimizer=gd.optim.SGD(lr=0.1, momentum=0.9), verbose=0,
                        validation_data=(X_test, y_test))
    assert time.perf_counter() - start < 10.0
    scores = model.evaluate(X_test, y_test)
    assert scores["accuracy"] >= 0.95
    assert np.mean(model.predict_classes(X_test) == y_test) == scores["accuracy"]
    assert history.history["val_accuracy"][-1] == scores["accuracy"]
    assert history.history["loss"][-1] < 0.2 * history.history["loss"][0]


def test_regression_reduces_the_loss():
    rng = np.random.default_rng(1)
    X = rng.uniform(-2, 2, size=(400, 3))
    y = np.column_stack([np.sin(X[:, 0]) + 0.5 * X[:, 1], X[:, 2] ** 2 - 1])
    model = gd.MLP([3, 32, 2], activation="tanh", dtype="float64", seed=1)
    before = model.evaluate(X, y, loss="mse")["loss"]
    history = model.fit(X, y, loss="mse", epochs=60, batch_size=16,
                        optimizer=gd.optim.SGD(lr=0.05, momentum=0.9), verbose=0)
    after = model.evaluate(X, y)["loss"]  # the loss of the last fit is the default
    assert "accuracy" not in model.evaluate(X, y)
    assert after < 0.1 * before
    assert after < 0.05
    losses = history.history["loss"]
    assert len(losses) == 60 and losses[-1] < 0.1 * losses[0]


def test_binary_cross_entropy_single_output():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(float)  # the quadrants: not linearly separable
    model = gd.MLP([2, 16, 1], activation="tanh", seed=2)
    model.fit(X, y, loss="binary_cross_entropy", epochs=150, batch_size=16,
              optimizer=gd.optim.SGD(lr=0.2, momentum=0.9), verbose=0)
    proba = model.predict_proba(X)
    assert proba.shape == (300, 1) and ((proba >= 0) & (proba <= 1)).all()
    np.testing.assert_allclose(proba[:, 0], 1 / (1 + np.exp(-model.predict(X)[:, 0])), rtol=1e-5,
                               atol=1e-7)
    np.testing.assert_array_equal(model.predict_classes(X), (proba[:, 0] > 0.5).astype(np.int64))
    assert model.evaluate(X, y)["accuracy"] >= 0.9


def test_divergence_raises_and_skips_the_bad_update():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(64, 4)) * 100
    y = rng.normal(size=(64, 1)) * 1e6
    model = gd.MLP([4, 16, 1], activation="relu", seed=3)
    with pytest.raises(gd.DivergenceError, match="NaN or infinite") as info:
        model.fit(X, y, loss="mse", optimizer="sgd", lr=10.0, epochs=50, batch_size=8,
                  verbose=0)
    assert isinstance(info.value, FloatingPointError)
    assert info.value.epoch is not None and info.value.batch is not None
    assert all(np.isfinite(w).all() for w in model.get_weights())


# ------------------------------------------------------------------------------ outputs
def test_validation_data_fills_the_history():
    X_train, y_train, X_test, y_test = digits_split(seed=1)
    model = gd.MLP([64, 32, 10], seed=1)
    history = model.fit(X_train, y_train, epochs=3, batch_size=64, optimizer="sgd", lr=0.1,
                        validation_data=(X_test, y_test), verbose=0)
    for key in ("loss", "val_loss", "val_accuracy", "seconds", "lr"):
        assert len(history.history[key]) == 3, key
    assert history.epoch == [0, 1, 2]
    assert all(s >= 0 for s in history.history["seconds"])
    scores = model.evaluate(X_test, y_test)
    np.testing.assert_allclose(history.history["val_loss"][-1], scores["loss"], rtol=1e-6)
    assert history.history["val_accuracy"][-1] == scores["accuracy"]
    assert history.history["val_accuracy"][-1] > history.history["val_accuracy"][0] - 0.05
    assert 0 < history.history["val_loss"][-1] < history.history["val_loss"][0]

    rng = np.random.default_rng(1)
    Xr, yr = rng.normal(size=(50, 3)), rng.normal(size=(50, 2))
    regression = gd.MLP([3, 4, 2], seed=1).fit(Xr, yr, loss="mse", epochs=2, verbose=0,
                                               validation_data=(Xr[:10], yr[:10]))
    assert len(regression.history["val_loss"]) == 2
    assert "val_accuracy" not in regression.history


def test_predict_proba_rows_sum_to_one():
    X_train, y_train, X_test, _ = digits_split(seed=2)
    model = gd.MLP([64, 32, 10], seed=2)
    model.fit(X_train, y_train, epochs=2, optimizer="sgd", lr=0.1, verbose=0)
    proba = model.predict_proba(X_test)
    assert proba.shape == (len(X_test), 10)
    assert ((proba >= 0) & (proba <= 1)).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    logits = model.predict(X_test).astype(np.float64)
    softmax = np.exp(logits - logits.max(axis=1, keepdims=True))
    softmax /= softmax.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(proba, softmax, rtol=1e-4, atol=1e-7)
    np.testing.assert_array_equal(model.predict_classes(X_test), logits.argmax(axis=1))
    # huge logits stay finite
    model.layers[-1].b[...] = [1e4, -1e4] + [0.0] * 8
    proba = model.predict_proba(X_test)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


def test_predict_matches_reference_forward_for_many_rows():
    """More rows than one forward chunk (128), with threads: the same numbers as NumPy."""
    from gdcore import reference as ref
    rng = np.random.default_rng(4)
    model = gd.Sequential([gd.Dense(10, 20, "gelu"), gd.Dense(20, 7, "sigmoid"),
                           gd.Dense(7, 3)], dtype="float64", seed=4)
    X = rng.normal(size=(517, 10))
    expected = ref.ReferenceMLP(model.get_weights(), ["gelu", "sigmoid", "identity"]).forward(X)
    for n_threads in (1, 2, 3):
        np.testing.assert_allclose(model.predict(X, n_threads=n_threads), expected,
                                   rtol=1e-12, atol=1e-13)


# ------------------------------------------------------------------------------ the GIL
def test_fit_releases_the_gil():
    """A Python thread keeps counting while fit runs: the epoch runs in C without the GIL."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(2048, 64)).astype(np.float32)
    y = rng.integers(0, 10, size=2048)
    model = gd.MLP([64, 256, 256, 10], seed=5)
    kwargs = dict(optimizer="sgd", lr=0.01, batch_size=256, n_threads=1, verbose=0)

    start = time.perf_counter()
    model.fit(X, y, epochs=1, **kwargs)
    per_epoch = time.perf_counter() - start
    epochs = max(2, min(200, math.ceil(0.4 / max(per_epoch, 1e-4))))

    running = [True]
    counter = [0]

    def count():
        while running[0]:
            counter[0] += 1

    # How fast the counter runs alone (the main thread sleeping, so not holding the GIL).
    thread = threading.Thread(target=count, daemon=True)
    thread.start()
    time.sleep(0.05)
    c0, t0 = counter[0], time.perf_counter()
    time.sleep(0.2)
    rate = (counter[0] - c0) / (time.perf_counter() - t0)

    c0, t0 = counter[0], time.perf_counter()
    model.fit(X, y, epochs=epochs, **kwargs)
    fit_seconds = time.perf_counter() - t0
    during_fit = counter[0] - c0
    running[0] = False
    thread.join()

    assert fit_seconds > 0.25, "the workload was too short to tell"
    assert rate > 0
    # With the GIL held during the C epochs the counter would barely move (only between epochs).
    assert during_fit > 0.3 * rate * fit_seconds, (
        f"counter advanced {during_fit} in {fit_seconds:.2f}s of fit; alone it runs {rate:.0f}/s")


# ------------------------------------------------------------------------------ weights
def test_get_and_set_weights_round_trip():
    source = gd.MLP([5, 7, 3], seed=1, dtype="float64")
    target = gd.MLP([5, 7, 3], seed=2, dtype="float64")
    X = np.random.default_rng(6).normal(size=(9, 5))
    assert not np.allclose(source.predict(X), target.predict(X))
    weights = source.get_weights()
    assert [w.shape for w in weights] == [(5, 7), (7,), (7, 3), (3,)]
    target.set_weights(weights)
    for a, b in zip(weights, target.get_weights()):
        assert np.array_equal(a, b)
    np.testing.assert_array_equal(target.predict(X), source.predict(X))
    # get_weights returns copies
    weights[0][...] = 0
    assert not np.array_equal(source.layers[0].W, weights[0])
    # other dtypes and nested lists are converted
    target.set_weights([w.astype(np.float32).tolist() for w in source.get_weights()])
    np.testing.assert_allclose(target.layers[0].W, source.layers[0].W, rtol=1e-7)
    assert target.layers[0].W.dtype == np.float64


def test_layer_parameters_are_views_into_the_model():
    model = gd.MLP([5, 7, 3], seed=1)
    X = np.random.default_rng(7).normal(size=(4, 5)).astype(np.float32)
    W, b = model.layers[1].W, model.layers[1].b
    before = model.predict(X)
    W[0, 0] += 1.0
    assert not np.array_equal(model.predict(X), before)
    W[0, 0] -= 1.0
    np.testing.assert_array_equal(model.predict(X), before)
    b[...] = [10.0, 0.0, -10.0]
    np.testing.assert_array_equal(model.predict_classes(X), 0)
    assert model.get_weights()[3].tolist() == [10.0, 0.0, -10.0]
    # training updates the same arrays in place
    old_W = W.copy()
    model.fit(X, [0, 1, 2, 1], epochs=1, optimizer="sgd", lr=0.1, verbose=0)
    assert model.layers[1].W is W and not np.array_equal(W, old_W)
    assert model.n_params == 5 * 7 + 7 + 7 * 3 + 3
    assert not np.shares_memory(model.layers[0].W, model.layers[1].W)
    assert np.shares_memory(model.layers[0].W, model.layers[1].W.base)


def test_pickle_round_trip_keeps_structure_weights_and_loss():
    import pickle
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 4)), rng.integers(0, 3, 30)
    model = gd.MLP([4, 7, 3], activation="gelu", dtype="float64", seed=3)
    model.fit(X, y, epochs=2, verbose=0)
    clone = pickle.loads(pickle.dumps(model))
    assert type(clone) is type(model) and clone.get_config() == model.get_config()
    np.testing.assert_array_equal(clone.predict(X), model.predict(X))
    assert clone.loss_ == model.loss_
    clone.layers[0].W[0, 0] += 1.0  # views into the clone's own buffer
    assert not np.array_equal(clone.predict(X), model.predict(X))
    with pytest.raises(ValueError, match="config"):
        gd.Sequential.from_config({"layers": [{"n_in": 2}]})


@pytest.mark.parametrize("copy_model", [lambda m: pickle.loads(pickle.dumps(m)), copy.deepcopy,
                                        copy.copy], ids=["pickle", "deepcopy", "copy"])
@pytest.mark.parametrize("name", ["adam", "rmsprop", "adagrad"])
def test_a_copied_model_steps_on_with_train_steps_optimizer_given_by_name(copy_model, name):
    """train_step keeps an optimizer given by name per model; a copy started it afresh (step 0,
    zero moments) where the original went on. copy.copy must not share it: two models stepping
    one optimizer reset each other's state."""
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(64, 8)).astype(np.float32), rng.integers(0, 3, 64)
    model = gd.MLP([8, 16, 3], seed=0)
    for i in range(4):
        model.train_step(X[8 * i:8 * i + 8], y[8 * i:8 * i + 8], optimizer=name)
    clone = copy_model(model)
    for i in range(4, 8):
        rows = slice(8 * i, 8 * i + 8)
        assert clone.train_step(X[rows], y[rows], optimizer=name) == \
            model.train_step(X[rows], y[rows], optimizer=name)
    np.testing.assert_array_equal(clone._params, model._params)


def test_a_memory_mapped_load_steps_on_with_train_steps_optimizer_given_by_name(tmp_path):
    """joblib (and loky's workers) load large arrays as read-only memory maps: the optimizer's
    state buffers must become writable again, as the model's parameters do."""
    joblib = pytest.importorskip("joblib")
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 20)).astype(np.float32), rng.integers(0, 3, 64)
    model = gd.MLP([20, 64, 3], seed=0)
    model.train_step(X, y, optimizer="adam")
    joblib.dump(model, tmp_path / "m.joblib")
    loaded = joblib.load(tmp_path / "m.joblib", mmap_mode="r")
    assert loaded.train_step(X, y, optimizer="adam") == model.train_step(X, y, optimizer="adam")
    np.testing.assert_array_equal(loaded._params, model._params)


def test_read_only_inputs_train_and_predict():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), rng.integers(0, 2, 40)
    X.flags.writeable = False
    y.flags.writeable = False
    model = gd.MLP([3, 4, 2], dtype="float64", seed=0)
    model.fit(X, y, epochs=1, verbose=0)
    assert np.isfinite(model.predict(X)).all()
    model.loss_and_grad(X, y, loss="cross_entropy")


def test_an_unpickled_optimizer_continues_where_it_stopped():
    import pickle
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(40, 3)), rng.integers(0, 2, 40)
    a, b = gd.MLP([3, 4, 2], dtype="float64", seed=0), gd.MLP([3, 4, 2], dtype="float64", seed=0)
    opt_a, opt_b = gd.optim.Adam(lr=0.01), gd.optim.Adam(lr=0.01)
    a.fit(X, y, optimizer=opt_a, epochs=2, seed=0, verbose=0)
    b.fit(X, y, optimizer=opt_b, epochs=1, seed=0, verbose=0)
    b, opt_b = pickle.loads(pickle.dumps((b, opt_b)))
    b.fit(X, y, optimizer=opt_b, epochs=2, initial_epoch=1, seed=0, verbose=0)
    assert opt_b.state["step"] == opt_a.state["step"]
    assert all(np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights()))


def _model_state(model):
    return (model._params.copy(), model.loss_, model.history_,
            model._rng.bit_generator.state)


def _assert_same_state(model, state):
    params, loss, history, rng = state
    np.testing.assert_array_equal(model._params, params)
    assert model.loss_ is loss and model.history_ is history
    assert model._rng.bit_generator.state == rng


def test_a_fit_refused_for_its_workspace_or_validation_data_leaves_the_model_as_it_was():
    """Both were found after the model's loss_, history_ and generator had changed (and the
    validation data's overflow only after a whole epoch had trained)."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 4)).astype(np.float32), rng.integers(0, 3, 40)
    model = gd.MLP([4, 8, 3], seed=0)
    model.fit(X, y, epochs=1, verbose=0)
    before = _model_state(model)
    wide = gd.MLP([1, 50000, 1], seed=0)
    wide_before = _model_state(wide)
    with pytest.raises(MemoryError, match="batch_size"):
        wide.fit(np.zeros((200000, 1), np.float32), np.zeros(200000), loss="mae",
                 batch_size=200000, verbose=0)
    _assert_same_state(wide, wide_before)
    with pytest.raises(ValueError, match=r"^validation_data\[0\]: the network's output overflows"):
        model.fit(X, y, epochs=2, verbose=0,
                  validation_data=(np.full((4, 4), 3e38, np.float32), y[:4]))
    _assert_same_state(model, before)


@pytest.mark.parametrize("n_weights", [9, 7])
def test_sample_weight_is_checked_against_x_before_validation_split(n_weights):
    """With validation_split it was compared with the training rows: 9 weights for 12 rows
    were taken, and a wrong count was told to be 9."""
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(12, 3)), rng.integers(0, 2, 12)
    with pytest.raises(ValueError, match=fr"^sample_weight must have shape \(12,\), got "
                                         fr"\({n_weights},\)"):
        gd.MLP([3, 4, 2], seed=0).fit(X, y, validation_split=0.25, verbose=0,
                                      sample_weight=np.ones(n_weights))
    weighted = gd.MLP([3, 4, 2], seed=0)
    weighted.fit(X, y, validation_split=0.25, verbose=0, epochs=2, sample_weight=np.ones(12))
    plain = gd.MLP([3, 4, 2], seed=0)
    plain.fit(X, y, validation_split=0.25, verbose=0, epochs=2)
    np.testing.assert_array_equal(weighted._params, plain._params)


def test_hyperparameters_a_callback_changes_take_effect_from_the_next_epoch():
    """fit read the optimizer once: weight_decay, momentum or dampening set by a callback were
    ignored for the rest of the fit. Now each epoch reads them, as two fits would."""
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(64, 5)), rng.integers(0, 3, 64)
    for name, value in [("weight_decay", 0.5), ("momentum", 0.9), ("dampening", 0.5),
                        ("lr", 0.5)]:
        opt = gd.optim.SGD(lr=0.1, momentum=0.5)
        changed = gd.MLP([5, 6, 3], dtype="float64", seed=0)
        change = gd.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: setattr(opt, name, value) if epoch == 0 else None)
        changed.fit(X, y, optimizer=opt, epochs=3, seed=4, verbose=0, callbacks=[change])
        twice_opt = gd.optim.SGD(lr=0.1, momentum=0.5)
        twice = gd.MLP([5, 6, 3], dtype="float64", seed=0)
        twice.fit(X, y, optimizer=twice_opt, epochs=1, seed=4, verbose=0)
        setattr(twice_opt, name, value)
        twice.fit(X, y, optimizer=twice_opt, epochs=3, initial_epoch=1, seed=4, verbose=0)
        np.testing.assert_array_equal(changed._params, twice._params, err_msg=name)


@pytest.mark.parametrize("on_divergence", ["raise", "stop", "ignore"])
def test_an_update_that_overflows_is_reported_as_such_and_undone_to_the_epoch_start(
        on_divergence):
    """The warning said the loss had become NaN and that the weights were those before the
    batch; the loss was finite and the weights go back to the start of the epoch."""
    # batch 0 steps W and b to 2e38 with a finite loss; batch 1's step takes b past float32
    X, y = np.array([[1.0], [-1.0]], np.float32), np.array([[1.0], [3e38]], np.float32)
    model = gd.Sequential([gd.Dense(1, 1, init="zeros")], seed=0)
    start = model._params.copy()
    fit = lambda: model.fit(X, y, loss="mae", optimizer=gd.optim.SGD(lr=2e38), batch_size=1,
                            epochs=2, shuffle=False, verbose=0, on_divergence=on_divergence)
    expected = (r"the update of epoch 0, batch 1 made a weight infinite or NaN \(a step beyond "
                r"the range of float32, or 0/0 as with eps=0\); the weights are restored to "
                r"the start of epoch 0")
    if on_divergence == "raise":
        with pytest.raises(gd.DivergenceError, match="^fit: " + expected) as info:
            fit()
        assert (info.value.epoch, info.value.batch, info.value.update) == (0, 1, True)
    else:
        with pytest.warns(RuntimeWarning, match="^fit stopped: " + expected):
            history = fit()
        assert history.diverged == (0, 1)
    np.testing.assert_array_equal(model._params, start)
