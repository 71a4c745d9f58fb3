"""Callbacks, validation_split, initial_epoch, training accuracy, progress output,
check_gradients."""
import io
import re
import sys

import numpy as np
import pytest

import gdcore as gd
from gdcore.models import _Progress


def blobs(n=200, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = rng.normal(size=(n, 4)) + 3.0 * np.eye(3, 4)[y]
    return X, y


def test_history_holds_training_accuracy_from_the_c_loop():
    X, y = blobs()
    model = gd.MLP([4, 16, 3], seed=0)
    history = model.fit(X, y, optimizer=gd.optim.SGD(lr=0.1), epochs=5, batch_size=200,
                        shuffle=False, verbose=0)
    # full batch: the accuracy of epoch k is that of the weights before its single update
    model2 = gd.MLP([4, 16, 3], seed=0)
    for k in range(5):
        expected = model2.evaluate(X, y, loss="cross_entropy")["accuracy"]
        assert history.history["accuracy"][k] == pytest.approx(expected)
        model2.train_step(X, y, optimizer=_SAME.setdefault("opt", gd.optim.SGD(lr=0.1)))
    assert "accuracy" not in gd.MLP([4, 2], seed=0).fit(X, X[:, :2], loss="mse", epochs=1,
                                                        verbose=0).history


_SAME = {}


def test_early_stopping_restores_the_best_weights():
    X, y = blobs()
    model = gd.MLP([4, 32, 3], seed=0)
    seen = []
    record = gd.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(
        (logs["val_loss"], model.get_weights())))
    stop = gd.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    history = model.fit(X, y, optimizer=gd.optim.SGD(lr=2.0), epochs=60, validation_split=0.25,
                        callbacks=[record, stop], verbose=0)
    assert stop.stopped_epoch is not None and len(history.epoch) < 60
    assert len(history.epoch) == stop.stopped_epoch + 1
    best = int(np.argmin([v for v, _ in seen]))
    assert stop.best_epoch == best
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), seen[best][1]))


def test_early_stopping_validation():
    with pytest.raises(ValueError, match="patience"):
        gd.callbacks.EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match="mode"):
        gd.callbacks.EarlyStopping(mode="up")
    X, y = blobs()
    with pytest.raises(ValueError, match="val_loss"):
        gd.MLP([4, 3]).fit(X, y, callbacks=[gd.callbacks.EarlyStopping()], verbose=0)
    with pytest.raises(TypeError, match="callbacks"):
        gd.MLP([4, 3]).fit(X, y, callbacks=[print], verbose=0)


def _checkpoint(path, **kwargs):
    return gd.callbacks.ModelCheckpoint(path, **kwargs)


@pytest.mark.parametrize("loss, validated, callbacks, schedule, match", [
    ("cross_entropy", False, lambda tmp: [gd.callbacks.EarlyStopping()], None,
     r"EarlyStopping monitors 'val_loss'.*pass validation_data"),
    ("cross_entropy", True, lambda tmp: [gd.callbacks.EarlyStopping("los")], None,
     r"EarlyStopping monitors 'los', but fit's epoch logs will have only \['accuracy', 'loss'"),
    ("mse", True, lambda tmp: [gd.callbacks.EarlyStopping("val_accuracy")], None,
     r"monitors 'val_accuracy'"),
    ("mse", True, lambda tmp: [], gd.schedules.ReduceLROnPlateau("val_accuracy"),
     r"schedule monitors 'val_accuracy'"),
    ("cross_entropy", False, lambda tmp: [_checkpoint(tmp / "m.npz", save_best_only=True)],
     None, r"ModelCheckpoint monitors 'val_loss'"),
    ("cross_entropy", False, lambda tmp: [_checkpoint(tmp / "ck-{val_loss:.3f}.npz")], None,
     r"ModelCheckpoint path .* KeyError: 'val_loss'"),
    ("cross_entropy", True, lambda tmp: [_checkpoint(tmp / "ck-{0}.npz")], None,
     r"ModelCheckpoint path .* IndexError"),
])
def test_a_monitor_the_logs_will_not_have_is_refused_before_training(
        tmp_path, loss, validated, callbacks, schedule, match):
    X, y = blobs(60)
    target = y if loss == "cross_entropy" else X[:, :3]
    model = gd.MLP([4, 8, 3], seed=0)
    optimizer = gd.optim.SGD(lr=0.1, momentum=0.9)
    before = model.get_weights()
    kwargs = {"validation_data": (X[:10], target[:10])} if validated else {}
    if schedule is not None:
        kwargs["schedule"] = schedule
    with pytest.raises(ValueError, match=match):
        model.fit(X, target, loss=loss, optimizer=optimizer, epochs=2, verbose=0,
                  callbacks=callbacks(tmp_path), **kwargs)
    assert optimizer.state.get("step", 0) == 0 and not list(tmp_path.iterdir())
    for w, w0 in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, w0)


def test_monitors_the_logs_will_have_are_accepted(tmp_path):
    X, y = blobs(60)
    callbacks = [gd.callbacks.EarlyStopping("accuracy", patience=5),
                 _checkpoint(tmp_path / "ck-{epoch}-{val_accuracy:.2f}-{skipped_batches}.npz",
                             monitor="val_loss", save_best_only=True)]
    history = gd.MLP([4, 8, 3], seed=0).fit(
        X, y, epochs=2, verbose=0, callbacks=callbacks, validation_data=(X[:10], y[:10]),
        on_divergence="ignore", schedule=gd.schedules.ReduceLROnPlateau("val_accuracy"))
    assert len(history.epoch) == 2 and len(list(tmp_path.iterdir())) >= 1


def test_callback_arguments_of_the_wrong_type():
    X, y = blobs(20)
    with pytest.raises(TypeError, match=r"^callbacks must be a list .* got int"):
        gd.MLP([4, 3]).fit(X, y, callbacks=5, verbose=0)
    with pytest.raises(TypeError, match=r"^monitor must be a metric name"):
        gd.callbacks.ModelCheckpoint("x.npz", monitor=5)
    with pytest.raises(TypeError, match=r"^monitor must be a metric name"):
        gd.callbacks.EarlyStopping(monitor=None)


def test_batch_callbacks_see_every_nth_batch_and_results_do_not_change():
    X, y = blobs()
    batches = []
    cb = gd.callbacks.LambdaCallback(on_batch_end=lambda b, logs: batches.append(b),
                                     batch_frequency=3)
    with_cb = gd.MLP([4, 8, 3], seed=1)
    with_cb.fit(X, y, batch_size=20, epochs=2, seed=3, callbacks=[cb], verbose=0)
    assert batches == [2, 5, 8, 9] * 2
    plain = gd.MLP([4, 8, 3], seed=1)
    plain.fit(X, y, batch_size=20, epochs=2, seed=3, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(with_cb.get_weights(), plain.get_weights()))


def test_the_epoch_loss_has_the_same_bits_however_the_epoch_is_sliced():
    """A batch callback runs the epoch in slices of C calls; the epoch loss was the sum of the
    slices' sums, a float64 order of its own (1.1735614625178221 vs ...822): logs, and so
    EarlyStopping on the training loss, changed with a callback or a progress bar."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(301, 12)), rng.normal(size=(301, 2))

    def history(callbacks):
        model = gd.MLP([12, 20, 2], activation="tanh", dtype="float64", seed=0)
        return model.fit(X, y, loss="mse", optimizer=gd.optim.SGD(lr=0.01), epochs=2,
                         batch_size=1, seed=1, verbose=0, callbacks=callbacks).history["loss"]

    sliced = [gd.callbacks.LambdaCallback(on_batch_end=lambda b, logs: None, batch_frequency=k)
              for k in (2, 7)]
    assert history([]) == history(sliced[:1]) == history(sliced)


def test_fit_for_ever_until_early_stopping_and_a_patience_without_end_are_taken():
    """epochs=sys.maxsize (train until a callback stops it) and patience=sys.maxsize were
    refused for a while, after fit had started changing the model."""
    X, y = blobs()
    model = gd.MLP([4, 8, 3], seed=0)
    history = model.fit(X, y, epochs=sys.maxsize, verbose=0, seed=0,
                        callbacks=[gd.callbacks.EarlyStopping(monitor="loss", patience=0,
                                                              min_delta=1e9)])
    assert len(history.epoch) == 2  # the first sets the best, the second fails to beat it
    gd.schedules.ReduceLROnPlateau(monitor="loss", patience=sys.maxsize)


def test_model_checkpoint_keeps_its_best_over_fit_calls(tmp_path):
    """A resumed fit reset the best to inf and overwrote the best file with a worse model."""
    X, y = blobs()
    best = gd.callbacks.ModelCheckpoint(tmp_path / "best.npz", monitor="loss",
                                        save_best_only=True)
    model = gd.MLP([4, 8, 3], seed=0)
    model.fit(X, y, epochs=3, verbose=0, seed=0, callbacks=[best])
    saved = (tmp_path / "best.npz").read_bytes()
    model.fit(X, y, epochs=5, initial_epoch=3, verbose=0, seed=0, callbacks=[best],
              optimizer=gd.optim.SGD(lr=50.0), on_divergence="stop")  # only worse from here
    assert (tmp_path / "best.npz").read_bytes() == saved
    # nor does a fit of the model loaded from it to resume (another object, the same training)
    resumed = gd.load(tmp_path / "best.npz")
    resumed.fit(X, y, epochs=5, initial_epoch=3, verbose=0, seed=0, callbacks=[best],
                optimizer=gd.optim.SGD(lr=50.0), on_divergence="stop")
    assert (tmp_path / "best.npz").read_bytes() == saved
    best.best = None  # starts afresh: the next epoch is saved
    gd.MLP([4, 8, 3], seed=5).fit(X, y, epochs=1, verbose=0, seed=0, callbacks=[best])
    assert (tmp_path / "best.npz").read_bytes() != saved


@pytest.mark.parametrize("frequency", [-1, 2.5, "2", True])
@pytest.mark.parametrize("late", [False, True])
def test_a_callback_subclass_batch_frequency_is_checked(frequency, late):
    """A subclass sets batch_frequency itself, as a class attribute or in a hook: -1 reached
    the C core ("a gdcore bug"), 2.5 gave batch index 1.5, "2" a TypeError from inside fit.
    0 means no batch calls, as None."""
    class Every(gd.callbacks.Callback):
        batch_frequency = None if late else frequency

        def on_train_begin(self, logs=None):
            self.batch_frequency = frequency

    X, y = blobs()
    model = gd.MLP([4, 8, 3], seed=0)
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"^callbacks\[0\]\.batch_frequency must be None, 0 "
                                         r"or a positive int"):
        model.fit(X, y, verbose=0, callbacks=[Every()])
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    Every.batch_frequency, Every.on_train_begin = 0, gd.callbacks.Callback.on_train_begin
    model.fit(X, y, epochs=1, verbose=0, callbacks=[Every()])


@pytest.mark.parametrize("bad", [1, 2, 4])
def test_a_skipped_batch_that_ends_a_slice_still_calls_on_batch_end(bad):
    """With on_divergence="ignore", a skipped batch on which on_batch_end was due (a multiple
    of batch_frequency, or the epoch's last) dropped that call."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4)).astype(np.float32)
    y = np.zeros((40, 2), np.float32)
    y[bad * 8] = 1e20  # batch `bad`'s loss is inf
    seen = []
    every_two = gd.callbacks.LambdaCallback(on_batch_end=lambda b, logs: seen.append(b),
                                            batch_frequency=2)
    gd.MLP([4, 3, 2], seed=0).fit(X, y, loss="mse", epochs=1, batch_size=8, shuffle=False,
                                  verbose=0, on_divergence="ignore", callbacks=[every_two])
    assert seen == [1, 3, 4]


@pytest.mark.parametrize("when", ["on_epoch_end", "on_batch_end"])
def test_an_optimizer_reset_from_a_callback_starts_it_afresh_at_the_next_epoch(when):
    """reset() cleared the state fit held: KeyError 'slots' or 'step' from inside fit."""
    X, y = blobs()
    opt, calls = gd.optim.Adam(lr=0.01), []

    def reset_once(i, logs):  # in the first epoch only
        calls.append(i)
        if len(calls) == 1:
            opt.reset()

    reset = gd.callbacks.LambdaCallback(**{when: reset_once})
    model = gd.MLP([4, 8, 3], seed=0)
    model.fit(X, y, optimizer=opt, epochs=2, batch_size=50, seed=0, verbose=0,
              callbacks=[reset])
    assert opt.state["step"] == 4  # the second epoch's 4 batches, from a fresh state
    twin_opt = gd.optim.Adam(lr=0.01)
    twin = gd.MLP([4, 8, 3], seed=0)
    twin.fit(X, y, optimizer=twin_opt, epochs=1, batch_size=50, seed=0, verbose=0)
    twin.fit(X, y, optimizer=gd.optim.Adam(lr=0.01), epochs=2, initial_epoch=1, batch_size=50,
             seed=0, verbose=0)
    np.testing.assert_array_equal(model._params, twin._params)


def test_a_fit_that_stops_mid_epoch_ends_the_progress_bar_line():
    """The plain bar was left mid-line: what was printed next was glued to it."""
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    progress = _Progress(1, 2, 4, stream=stream)
    progress._tqdm = None  # the plain bar
    progress.update(0, 2)
    progress.close()
    assert stream.getvalue().endswith("2/4\n")
    progress.close()  # once only
    assert stream.getvalue().count("\n") == 1


def test_a_batch_frequency_changed_within_an_epoch_applies_from_the_next():
    """The batch loop read the live attribute: 0 set in on_batch_end divided by zero."""
    class Until(gd.callbacks.Callback):
        batch_frequency = 1

        def on_batch_end(self, batch, logs=None):
            seen.append(batch)
            self.batch_frequency = 0  # no batch calls from the next epoch on

    seen = []
    X, y = blobs()
    gd.MLP([4, 8, 3], seed=0).fit(X, y, epochs=2, batch_size=50, verbose=0,
                                  callbacks=[Until()])
    assert seen == [0, 1, 2, 3]


def test_a_stale_stop_request_is_cleared_even_when_fit_starts_under_another_handler():
    """A fit that started under a handler of the caller's and got Python's default back from a
    callback was interrupted by a request left over from before it started."""
    import signal
    from gdcore import _core
    X, y = blobs()
    previous = signal.signal(signal.SIGINT, lambda signum, frame: None)
    try:
        _core._request_stop()
        back = gd.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: signal.signal(
            signal.SIGINT, signal.default_int_handler))
        history = gd.MLP([4, 8, 3], seed=0).fit(X, y, epochs=3, verbose=0, callbacks=[back])
        assert history.epoch == [0, 1, 2]
    finally:
        signal.signal(signal.SIGINT, previous)
        _core.clear_stop_request()


def test_lambda_callback_checks_batch_frequency_even_without_on_batch_end():
    with pytest.raises(ValueError, match="batch_frequency must be a positive int, got 0"):
        gd.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: None, batch_frequency=0)
    # a frequency for a function that was not given would silently do nothing
    with pytest.raises(ValueError, match="batch_frequency=3 sets how often on_batch_end"):
        gd.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: None, batch_frequency=3)
    gd.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: None)  # the default is fine
    # None, the base class's "no batch calls", too
    assert gd.callbacks.LambdaCallback(on_epoch_end=print, batch_frequency=None).batch_frequency \
        is None


def test_initial_epoch_resumes_with_the_same_bits():
    X, y = blobs()
    whole = gd.MLP([4, 8, 3], seed=2)
    whole.fit(X, y, optimizer=gd.optim.Adam(lr=0.01), epochs=4, seed=7, batch_size=16, verbose=0)
    parts = gd.MLP([4, 8, 3], seed=2)
    opt = gd.optim.Adam(lr=0.01)
    parts.fit(X, y, optimizer=opt, epochs=2, seed=7, batch_size=16, verbose=0)
    history = parts.fit(X, y, optimizer=opt, epochs=4, initial_epoch=2, seed=7, batch_size=16,
                        verbose=0)
    assert history.epoch == [2, 3]
    assert all(np.array_equal(a, b) for a, b in zip(whole.get_weights(), parts.get_weights()))
    with pytest.raises(ValueError, match="initial_epoch"):
        parts.fit(X, y, epochs=2, initial_epoch=2, verbose=0)


def test_validation_split_holds_out_the_last_rows():
    X, y = blobs(100)
    a, b = gd.MLP([4, 5, 3], seed=0), gd.MLP([4, 5, 3], seed=0)
    h1 = a.fit(X, y, validation_split=0.2, epochs=2, seed=1, verbose=0)
    h2 = b.fit(X[:80], y[:80], validation_data=(X[80:], y[80:]), epochs=2, seed=1, verbose=0)
    assert h1.history["val_loss"] == h2.history["val_loss"]
    with pytest.raises(ValueError, match="validation_split"):
        a.fit(X, y, validation_split=1.5, verbose=0)
    with pytest.raises(ValueError, match="not both"):
        a.fit(X, y, validation_split=0.1, validation_data=(X, y), verbose=0)


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_output_modes():
    values = {"loss": 0.5, "accuracy": 0.75, "seconds": 0.01, "lr": 0.1}
    quiet = io.StringIO()
    p = _Progress(0, 3, 10, stream=quiet)
    p.update(0, 5)
    p.end_epoch(0, values)
    assert quiet.getvalue() == ""
    piped = io.StringIO()  # not a terminal: one line per epoch, no redraws
    p = _Progress(1, 3, 10, stream=piped)
    assert p.batches_per_update() == 10
    p.update(0, 10)
    p.end_epoch(0, values)
    assert piped.getvalue().startswith("Epoch 1/3 - loss 0.5 - accuracy 0.75") and "\r" not in piped.getvalue()
    term = FakeTerminal()  # a terminal: a live bar (tqdm when installed), metrics at the end
    p = _Progress(1, 3, 400, stream=term)
    assert p.batches_per_update() == 10
    for done in range(10, 401, 10):
        p.update(0, done)
    p.end_epoch(0, values)
    text = term.getvalue()
    assert "400/400" in text and "loss 0.5" in text and "\r" in text


def test_check_gradients_is_small_for_the_core_and_large_for_a_wrong_gradient(monkeypatch):
    X, y = blobs(30)
    model = gd.MLP([4, 6, 3], activation="tanh", seed=0)
    assert gd.check_gradients(model, X, y, "cross_entropy", l2=0.01) < 1e-6
    original = gd.Sequential.loss_and_grad

    def wrong(self, *args, **kwargs):
        value, grads = original(self, *args, **kwargs)
        return value, [(2 * dW, db) for dW, db in grads]

    monkeypatch.setattr(gd.Sequential, "loss_and_grad", wrong)
    assert gd.check_gradients(model, X, y, "cross_entropy") > 0.1
    with pytest.raises(TypeError, match="model"):
        gd.check_gradients("model", X, y)


def test_check_gradients_judges_an_exactly_zero_gradient_against_the_gradients_scale():
    """Two output biases of this mae model have a gradient of exactly 0 (their signs balance):
    central differences give ±1e-10 of rounding there, which the fixed 1e-8 floor read as an
    error of 1e-2 for a correct backprop."""
    rng = np.random.default_rng(0)
    X, _, y = rng.standard_normal((12, 4)), rng.integers(0, 3, 12), rng.standard_normal((12, 3))
    model = gd.MLP([4, 5, 3], activation="tanh", dtype="float64", seed=2)
    assert gd.check_gradients(model, X, y, loss="mae") < 1e-7
    assert gd.check_gradients(model, X, y, loss="mae", eps=np.float32(1e-4), seed=1) < 1e-5
    for bad, name in ((-1, "seed"), (0.0, "eps"), ("1e-6", "eps")):
        with pytest.raises(ValueError, match=f"^{name} must be"):
            gd.check_gradients(model, X, y, loss="mae", **{name: bad})


def test_batch_callbacks_of_frequencies_that_do_not_divide_each_other_see_all_their_batches():
    X, y = blobs(40)
    calls = {2: [], 3: []}
    callbacks = [gd.callbacks.LambdaCallback(
        on_batch_end=lambda batch, logs, k=k: calls[k].append(batch), batch_frequency=k)
        for k in (2, 3)]
    gd.MLP([4, 3], seed=0).fit(X, y, epochs=1, batch_size=4, callbacks=callbacks, verbose=0)
    assert calls == {2: [1, 3, 5, 7, 9], 3: [2, 5, 8, 9]}  # every multiple, and the last batch


def test_batch_callbacks_after_a_skipped_batch_keep_their_grid_and_the_loss_of_rows_trained():
    X, y = blobs(40)
    X = X.astype(np.float32)
    X[:8] = 3e38  # batch 0 overflows and is skipped
    seen = []
    history = gd.MLP([4, 3], seed=1).fit(
        X, y, epochs=1, batch_size=8, shuffle=False, on_divergence="ignore", verbose=0,
        callbacks=[gd.callbacks.LambdaCallback(on_batch_end=lambda b, logs: seen.append(
            (b, logs["loss"])), batch_frequency=2)])
    assert [b for b, _ in seen] == [1, 3, 4]
    assert seen[-1][1] == pytest.approx(history.history["loss"][0])  # the epoch's rows, not 40


@pytest.mark.parametrize("path, match", [
    ("ck-{accuracy:d}.npz", "Unknown format code 'd'"),  # log values are floats
    ("ck-{epoch[0]}.npz", "TypeError"),
    ("ck-{loss.foo}.npz", "AttributeError"),
    ("nodir/ck-{epoch}.npz", "does not exist"),
])
def test_checkpoint_paths_that_cannot_be_written_are_refused_before_training(tmp_path, path,
                                                                             match):
    X, y = blobs(20)
    model = gd.MLP([4, 3], seed=0)
    before = model.get_weights()
    with pytest.raises(ValueError, match=match):
        model.fit(X, y, epochs=1, verbose=0,
                  callbacks=[gd.callbacks.ModelCheckpoint(str(tmp_path / path))])
    for w, w0 in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, w0)


# ------------------------------------------------------------ constructor arguments are checked
@pytest.mark.parametrize("path", [None, 5, b"ck.npz", ["ck.npz"]])
def test_a_checkpoint_path_that_is_no_path_is_refused_naming_path(path):
    """ModelCheckpoint(None) took str(None) and saved every epoch to a file named "None"."""
    with pytest.raises(TypeError, match=r"^path must be a str or os\.PathLike"):
        gd.callbacks.ModelCheckpoint(path)


def test_an_empty_checkpoint_path_is_refused_and_a_pathlike_is_taken(tmp_path):
    with pytest.raises(ValueError, match=r"^path must not be empty"):
        gd.callbacks.ModelCheckpoint("")
    checkpoint = gd.callbacks.ModelCheckpoint(tmp_path / "ck-{epoch}.npz", monitor="loss")
    assert checkpoint.path == str(tmp_path / "ck-{epoch}.npz")
    X, y = blobs(20)
    gd.MLP([4, 3], seed=0).fit(X, y, epochs=2, verbose=0, callbacks=[checkpoint])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck-0.npz", "ck-1.npz"]


_FLAGS = [(gd.callbacks.EarlyStopping, "restore_best_weights"),
          (gd.callbacks.ModelCheckpoint, "save_best_only"),
          (gd.callbacks.ModelCheckpoint, "save_optimizer")]


def _flagged(cls, name, value):
    args = ("ck.npz",) if cls is gd.callbacks.ModelCheckpoint else ()
    return cls(*args, **{name: value})


@pytest.mark.parametrize("cls, name", _FLAGS)
@pytest.mark.parametrize("value", ["no", "False", 0, 1, None, np.float64(1.0)])
def test_callback_flags_must_be_bools(cls, name, value):
    """bool() made restore_best_weights="no" and save_best_only="False" True."""
    with pytest.raises(TypeError, match=f"^{name} must be a bool, got {re.escape(repr(value))}$"):
        _flagged(cls, name, value)


@pytest.mark.parametrize("cls, name", _FLAGS)
def test_callback_flags_take_python_and_numpy_bools_and_are_checked_when_set(cls, name):
    for value in (True, False, np.True_, np.False_):
        callback = _flagged(cls, name, value)
        assert getattr(callback, name) is bool(value)
    with pytest.raises(TypeError, match=f"^{name} must be a bool, got 'no'"):
        setattr(callback, name, "no")
    assert getattr(callback, name) is False
    setattr(callback, name, np.True_)
    assert getattr(callback, name) is True


def test_callback_settings_assigned_later_are_checked_as_the_constructors():
    stop = gd.callbacks.EarlyStopping(patience=2)
    with pytest.raises(ValueError, match="^patience must be an int >= 0"):
        stop.patience = -1
    with pytest.raises(ValueError, match="^min_delta must be (a finite number|>= 0)"):
        stop.min_delta = float("nan")
    assert (stop.patience, stop.min_delta) == (2, 0.0)
    checkpoint = gd.callbacks.ModelCheckpoint("a.npz")
    with pytest.raises(TypeError, match=r"^path must be a str or os\.PathLike"):
        checkpoint.path = None
    assert checkpoint.path == "a.npz"


# ------------------------------------------------------------------- the batch calls, as documented
def test_the_documented_batch_calls_are_fits():
    """The docstrings said "every batch_frequency batches"; fit also calls on_batch_end after
    an epoch's last batch when that is not a multiple. The LambdaCallback example (frequency 7
    over 32 batches: 6, 13, 20, 27, 31) runs as a doctest, and the hooks say the same."""
    import doctest
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in finder.find(gd.callbacks.LambdaCallback, "LambdaCallback", globs={}):
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.attempted > 0 and results.failed == 0
    for doc in (gd.callbacks.Callback.__doc__, gd.callbacks.Callback.on_batch_end.__doc__,
                gd.callbacks.LambdaCallback.__doc__):
        assert "last batch" in doc and "6, 13, 20, 27, 31" in doc
