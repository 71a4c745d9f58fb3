"""Sample and class weights; Ctrl-C during fit."""
import copy
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

import gdcore as gd


def test_integer_sample_weights_equal_repeated_rows():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 4))
    y = rng.integers(0, 3, 12)
    w = rng.integers(0, 4, 12)
    w[0] = 2
    model = gd.MLP([4, 6, 3], activation="tanh", dtype="float64", seed=1)
    loss, grads = model.loss_and_grad(X, y, loss="cross_entropy", sample_weight=w)
    rows = np.repeat(np.arange(12), w)
    loss_rep, grads_rep = model.loss_and_grad(X[rows], y[rows], loss="cross_entropy")
    assert loss == pytest.approx(loss_rep, rel=1e-12)
    for (dW, db), (dW2, db2) in zip(grads, grads_rep):
        np.testing.assert_allclose(dW, dW2, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(db, db2, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("loss", ["mse", "huber", "mae"])
def test_sample_weights_of_real_targets_weight_each_row(loss):
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(5, 2)), rng.normal(size=(5, 3))
    w = np.array([1.0, 0.0, 2.0, 0.5, 1.5])
    model = gd.Sequential([gd.Dense(2, 3)], dtype="float64")
    out = model.predict(X)
    value, _ = model.loss_and_grad(X, y, loss=loss, sample_weight=w)
    from gdcore import reference as ref
    per_row = [ref.loss_forward_backward(loss, out[i:i + 1], y[i:i + 1])[0] for i in range(5)]
    assert value == pytest.approx(np.dot(w, per_row) / w.sum(), rel=1e-12)


def test_class_weight_matches_torch_weighted_cross_entropy():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    X = rng.normal(size=(20, 5))
    y = rng.integers(0, 3, 20)
    model = gd.Sequential([gd.Dense(5, 3)], dtype="float64", seed=0)
    class_weight = {0: 0.5, 1: 2.0, 2: 1.0}
    before = model.get_weights()
    model.fit(X, y, class_weight=class_weight, optimizer=gd.optim.SGD(lr=0.1), epochs=1,
              batch_size=20, shuffle=False, verbose=0)
    W = torch.tensor(before[0], requires_grad=True)
    b = torch.tensor(before[1], requires_grad=True)
    loss = torch.nn.functional.cross_entropy(torch.tensor(X) @ W + b, torch.tensor(y),
                                             weight=torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64))
    loss.backward()
    np.testing.assert_allclose(model.layers[0].W, before[0] - 0.1 * W.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(model.layers[0].b, before[1] - 0.1 * b.grad.numpy(), rtol=1e-12)


def test_balanced_class_weight_and_errors():
    X = np.zeros((4, 2))
    y = np.array([0, 0, 0, 1])
    model = gd.MLP([2, 2], seed=0)
    weights = model._sample_weights(None, "balanced", y, gd.losses.get("cross_entropy"), 4)
    # only their ratios matter: the largest is scaled (by a power of two) into [0.5, 1)
    np.testing.assert_allclose(weights / weights.max(), [1 / 3, 1 / 3, 1 / 3, 1.0], rtol=1e-6)
    before = model.get_weights()
    with pytest.raises(ValueError, match="sample_weight"):
        model.fit(X, y, sample_weight=[1, 1, -1, 1], verbose=0)
    with pytest.raises(ValueError, match="sample_weight"):
        model.fit(X, y, sample_weight=[1, 1, 1], verbose=0)
    with pytest.raises(ValueError, match="weight 0"):
        model.fit(X, y, sample_weight=np.zeros(4), verbose=0)
    with pytest.raises(ValueError, match="class_weight"):
        model.fit(X, y, class_weight={5: 1.0}, verbose=0)
    with pytest.raises(ValueError, match="class_weight"):
        model.fit(X, np.zeros((4, 2)), loss="mse", class_weight="balanced", verbose=0)
    with pytest.raises(TypeError, match="sample_weight"):
        model.fit(X, y, sample_weight=["a"] * 4, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sample_weights_of_any_scale_train_as_weights_of_one(dtype):
    """The loss is Σ w·l / Σ w: weights beyond float32's range (2^-160, 2^140, 1e-46, 1e39) must
    train as weights of 1 do, not underflow to a loss of 0 or overflow to inf. Weights a power
    of two apart give the same bits; others agree to rounding."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(24, 5)), rng.integers(0, 3, 24)

    def run(scale):
        model = gd.MLP([5, 7, 3], dtype=dtype, seed=0)
        history = model.fit(X, y, sample_weight=np.full(24, scale), optimizer=gd.optim.SGD(lr=0.1),
                            epochs=2, batch_size=8, verbose=0, seed=0)
        loss, _ = model.loss_and_grad(X, y, loss="cross_entropy", sample_weight=np.full(24, scale))
        return history.history["loss"] + [loss], model.get_weights()

    losses, weights = run(1.0)
    for scale in (2.0 ** -160, 2.0 ** 140):
        other_losses, other_weights = run(scale)
        assert other_losses == losses
        for w, w0 in zip(other_weights, weights):
            np.testing.assert_array_equal(w, w0)
    for scale in (1e-46, 1e39):
        other_losses, other_weights = run(scale)
        np.testing.assert_allclose(other_losses, losses, rtol=1e-5)
        for w, w0 in zip(other_weights, weights):
            np.testing.assert_allclose(w, w0, rtol=1e-4, atol=1e-6)


def test_weights_whose_products_overflow_are_refused():
    X, y = np.zeros((4, 2)), np.array([0, 1, 0, 1])
    model = gd.MLP([2, 2], seed=0)
    with pytest.raises(ValueError, match="too large"):
        model.fit(X, y, sample_weight=np.full(4, 1e300), class_weight={0: 1e300, 1: 1.0},
                  verbose=0)
    with pytest.raises(ValueError, match=r"^sample_weight must be a 1-D array of 4 numbers"):
        model.fit(X, y, sample_weight=[[1, 2], [3], 4, 5], verbose=0)
    with pytest.raises(ValueError, match=r"^class_weight\[1\] must be a finite number >= 0"):
        model.fit(X, y, class_weight={1: 10**400}, verbose=0)


INTERRUPT_SCRIPT = textwrap.dedent("""
    import os, signal, sys, threading, time
    import numpy as np
    import gdcore as gd
    rng = np.random.default_rng(0)
    X = rng.random((20000, 256), dtype=np.float32)
    y = rng.integers(0, 10, 20000)
    model = gd.MLP([256, 512, 512, 10], seed=0)
    sent = []
    def interrupt():
        time.sleep(1.0)
        sent.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)
    threading.Thread(target=interrupt, daemon=True).start()
    try:
        model.fit(X, y, epochs=1000, batch_size=64, verbose=0)
    except KeyboardInterrupt as exc:
        latency = time.perf_counter() - sent[0]
        weights = model.get_weights()
        assert all(np.isfinite(w).all() for w in weights), "weights not finite"
        # the model still works, and the Python handler is back
        model.predict(X[:5])
        handler = signal.getsignal(signal.SIGINT)
        assert handler is signal.default_int_handler, f"SIGINT handler after fit: {handler!r}"
        print(f"interrupted {latency:.3f} {len(model.history_.epoch)} {exc}")
        sys.exit(0)
    print("not interrupted")
    sys.exit(1)
""")


def interrupted_after(tmp_path, script_text, between_calls_too=False):
    """Run a script that sends itself SIGINT during fit; returns the seconds it printed after
    "interrupted" (asserting it was interrupted, and by fit at a batch boundary).

    between_calls_too: fit runs in many core calls, and between two of them Python's own
    handler is in place, which raises a bare KeyboardInterrupt there (also at a batch
    boundary). A signal lands there when the sending thread gets the GIL in that window:
    seen in 1 of 20 runs on a busy machine, as "interrupted 0.501" with no message."""
    script = tmp_path / "interrupt.py"
    script.write_text(script_text)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=120, cwd=Path(__file__).parent)
    assert result.returncode == 0, result.stdout + result.stderr
    words = result.stdout.split()
    # "after epoch": the signal came after an epoch's last batch, recorded before raising
    by_core = "fit interrupted at epoch" in result.stdout or "fit interrupted after epoch" in \
        result.stdout
    assert words[0] == "interrupted" and (by_core or (between_calls_too and len(words) == 2)), \
        result.stdout + result.stderr
    return float(words[1])


def test_ctrl_c_stops_fit_quickly_at_a_batch_boundary(tmp_path):
    assert interrupted_after(tmp_path, INTERRUPT_SCRIPT) < 0.5


LATE_INTERRUPT_SCRIPT = textwrap.dedent("""
    import os, signal, sys, threading, time
    import numpy as np
    import gdcore as gd
    rng = np.random.default_rng(0)
    X = rng.random((4000, 256), dtype=np.float32)
    y = rng.integers(0, 10, 4000)
    model = gd.MLP([256, 1024, 1024, 10], seed=0)
    # every C call is one long batch: a SIGINT almost always lands after that call's only
    # check of the stop flag, which the next call used to clear
    each_batch = gd.callbacks.LambdaCallback(on_batch_end=lambda batch, logs: None)
    def interrupt():
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGINT)
    threading.Thread(target=interrupt, daemon=True).start()
    start = time.perf_counter()
    try:
        model.fit(X, y, epochs=200, batch_size=2000, verbose=0, callbacks=[each_batch])
    except KeyboardInterrupt as exc:
        print(f"interrupted {time.perf_counter() - start:.3f} {exc}")
        sys.exit(0)
    print("not interrupted")
    sys.exit(1)
""")


def test_ctrl_c_during_the_last_batch_of_a_call_is_not_lost(tmp_path):
    # not all 200 epochs
    assert interrupted_after(tmp_path, LATE_INTERRUPT_SCRIPT, between_calls_too=True) < 5


def _stop_after_batch(stop_at):
    """A callback that does what the C SIGINT handler does, between the C calls of a fit that
    runs one batch per call."""
    from gdcore import _core
    return gd.callbacks.LambdaCallback(
        on_batch_end=lambda batch, logs: _core._request_stop() if batch == stop_at else None)


def test_a_stop_request_between_calls_stops_the_next_call():
    """A request that no call has reported yet (as after a batch refused and skipped) is not
    cleared by the next call: it stops at that call's first batch."""
    model = gd.MLP([4, 8, 3], seed=0)
    X, y = np.random.default_rng(0).random((64, 4)), np.arange(64) % 3
    with pytest.raises(KeyboardInterrupt, match="epoch 0, batch 3"):
        model.fit(X, y, epochs=3, batch_size=8, verbose=0, callbacks=[_stop_after_batch(2)])
    # reported once: the next fit runs to the end
    model.fit(X, y, epochs=2, batch_size=8, verbose=0)
    assert len(model.history_.epoch) == 2


def test_a_stale_stop_request_is_cleared_when_fit_starts_and_ignored_off_the_main_thread():
    from gdcore import _core
    model = gd.MLP([4, 8, 3], seed=0)
    X, y = np.random.default_rng(0).random((64, 4)), np.arange(64) % 3
    try:
        _core._request_stop()
        worker = threading.Thread(target=lambda: model.fit(X, y, epochs=2, verbose=0))
        worker.start()
        worker.join()
        assert len(model.history_.epoch) == 2  # a fit that cannot be interrupted ran through
        model.fit(X, y, epochs=2, verbose=0)  # main thread: the stale request is forgotten
        assert len(model.history_.epoch) == 2
    finally:
        _core.clear_stop_request()


HANDLER_FROM_CALLBACK_SCRIPT = textwrap.dedent("""
    import os, signal, threading
    import numpy as np
    import gdcore as gd
    rng = np.random.default_rng(0)
    X, y = rng.random((40000, 8), dtype=np.float32), rng.integers(0, 3, 40000)
    class GracefulStop(gd.callbacks.Callback):  # Ctrl-C ends training after the epoch
        def on_train_begin(self, logs=None):
            self.calls = 0
            def handler(signum, frame):
                self.calls += 1
                self.model.stop_training = True
            self.previous = signal.signal(signal.SIGINT, handler)
        def on_train_end(self, logs=None):
            signal.signal(signal.SIGINT, self.previous)
    stop = GracefulStop()
    threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
    history = gd.MLP([8, 16, 3], seed=0).fit(X, y, epochs=100, batch_size=4, verbose=0,
                                              n_threads=1, callbacks=[stop])
    print(stop.calls, len(history.epoch))
""")


def test_a_sigint_handler_a_callback_installs_is_kept(tmp_path):
    """fit decided once, before on_train_begin, to catch SIGINT itself: a "Ctrl-C stops
    gracefully" callback's handler was bypassed (KeyboardInterrupt, the handler never ran)."""
    script = tmp_path / "handler.py"
    script.write_text(HANDLER_FROM_CALLBACK_SCRIPT)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=120, cwd=Path(__file__).parent)
    assert result.returncode == 0, result.stdout + result.stderr
    calls, epochs = map(int, result.stdout.split())
    assert calls == 1 and epochs < 100


def test_fit_outside_the_main_thread_leaves_sigint_alone():
    model = gd.MLP([3, 4, 2], seed=0)
    X, y = np.zeros((10, 3)), np.zeros(10, dtype=int)
    before = signal.getsignal(signal.SIGINT)
    worker = threading.Thread(target=lambda: model.fit(X, y, epochs=2, verbose=0))
    worker.start()
    worker.join()
    assert signal.getsignal(signal.SIGINT) is before
    assert len(model.history_.epoch) == 2


def _diverging_setup():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3)).astype(np.float32)
    y = (X @ np.array([1.0, 2.0, 3.0], dtype=np.float32))[:, None] * 1e18
    model = gd.Sequential([gd.Dense(3, 1)], seed=0)
    return model, X, y


def test_divergence_raise_names_epoch_and_batch_and_keeps_finite_weights():
    model, X, y = _diverging_setup()
    with pytest.raises(gd.DivergenceError, match=r"epoch 0, batch \d+") as info:
        model.fit(X, y, loss="mse", optimizer=gd.optim.SGD(lr=1.0), epochs=5, batch_size=8,
                  shuffle=False, verbose=0)
    assert info.value.epoch == 0 and info.value.batch >= 0
    assert all(np.isfinite(w).all() for w in model.get_weights())
    # the weights are exactly those before the bad batch: replaying the good batches gives them
    replay, _, _ = _diverging_setup()
    for batch in range(info.value.batch):
        replay.train_step(X[batch * 8:(batch + 1) * 8], y[batch * 8:(batch + 1) * 8], loss="mse",
                          optimizer="sgd" if False else replay_opt(replay))
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), replay.get_weights()))


_REPLAY = {}


def replay_opt(model):
    return _REPLAY.setdefault(id(model), gd.optim.SGD(lr=1.0))


def test_divergence_stop_and_ignore():
    model, X, y = _diverging_setup()
    with pytest.warns(RuntimeWarning, match="stopped"):
        history = model.fit(X, y, loss="mse", optimizer=gd.optim.SGD(lr=1.0), epochs=5,
                            batch_size=8, verbose=0, on_divergence="stop")
    assert history.diverged is not None and history.diverged[0] == 0
    assert all(np.isfinite(w).all() for w in model.get_weights())
    model, X, y = _diverging_setup()
    history = model.fit(X, y, loss="mse", optimizer=gd.optim.SGD(lr=1.0), epochs=3, batch_size=8,
                        verbose=0, on_divergence="ignore")
    assert len(history.epoch) == 3 and sum(history.history["skipped_batches"]) > 0
    assert all(np.isfinite(w).all() for w in model.get_weights())
    with pytest.raises(ValueError, match="on_divergence"):
        model.fit(X, y, loss="mse", on_divergence="warn", verbose=0)


def run_script(tmp_path, text, timeout=120):
    """Run a script in a fresh Python; returns its stdout (asserting it exited with 0)."""
    script = tmp_path / "signals.py"
    script.write_text(textwrap.dedent(text))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=timeout, cwd=Path(__file__).parent)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.parametrize("handler", ["ignore", "custom"])
def test_fit_leaves_a_sigint_handler_other_than_pythons_alone(tmp_path, handler):
    """A process that ignores SIGINT (multiprocessing pool workers) or handles it itself keeps
    that during fit: the core catches SIGINT only in place of Python's default handler."""
    out = run_script(tmp_path, f"""
        import os, signal, threading, time
        import numpy as np
        import gdcore as gd
        calls = []
        signal.signal(signal.SIGINT, signal.SIG_IGN if {handler!r} == "ignore"
                      else lambda signum, frame: calls.append(signum))
        rng = np.random.default_rng(0)
        X, y = rng.random((2000, 32), dtype=np.float32), rng.integers(0, 10, 2000)
        threading.Thread(target=lambda: (time.sleep(0.3), os.kill(os.getpid(), signal.SIGINT)),
                         daemon=True).start()
        start = time.perf_counter()
        while time.perf_counter() - start < 1.5:  # fits that span the signal
            gd.MLP([32, 64, 10], seed=0).fit(X, y, epochs=2, batch_size=16, verbose=0)
        print("completed", calls)
    """)
    assert out.split()[0] == "completed"
    assert ("[]" in out) if handler == "ignore" else ("[2]" in out)


def test_blocking_reads_still_take_ctrl_c_after_a_fit(tmp_path):
    """Python's handler goes back with its own sigaction flags: put back with signal(), it had
    SA_RESTART, and a read blocked on a pipe was restarted by the kernel instead of raising
    KeyboardInterrupt until data came."""
    out = run_script(tmp_path, """
        import os, signal, threading, time
        import numpy as np
        import gdcore as gd
        gd.MLP([3, 4, 2]).fit(np.zeros((10, 3)), np.zeros(10, int), epochs=1, verbose=0)
        r, w = os.pipe()
        def kick():
            time.sleep(0.3)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
            os.write(w, b"x")
        threading.Thread(target=kick, daemon=True).start()
        start = time.perf_counter()
        try:
            os.read(r, 1)
            print("read", time.perf_counter() - start)
        except KeyboardInterrupt:
            print("interrupted", time.perf_counter() - start)
    """)
    words = out.split()
    assert words[0] == "interrupted" and float(words[1]) < 3, out


def test_a_sigint_caught_by_python_during_a_step_keeps_the_step_count_with_the_weights(tmp_path):
    """A SIGINT that Python's own handler takes while a core call runs (train_step catches none
    itself) raises KeyboardInterrupt as the call returns: the optimizer's step count must
    already match the weights that moved (the core call stores it), on both train_step paths."""
    out = run_script(tmp_path, """
        import os, signal, threading, time
        import numpy as np
        import gdcore as gd
        rng = np.random.default_rng(0)
        X, y = rng.random((4000, 256), dtype=np.float32), rng.integers(0, 10, 4000)
        model = gd.MLP([256, 512, 512, 10], seed=0)
        optimizer = gd.optim.Adam(lr=1e-3)
        results = []
        for attempt in range(6):  # the first calls take the general path, later ones the fast
            before = model.get_weights()
            step = optimizer.state.get("step", 0)
            threading.Thread(target=lambda: (time.sleep(0.03), os.kill(os.getpid(), signal.SIGINT)),
                             daemon=True).start()
            try:
                model.train_step(X, y, optimizer=optimizer)
                time.sleep(0.5)  # a signal after the call lands here
            except KeyboardInterrupt:
                pass
            moved = not all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
            results.append((moved, optimizer.state["step"] - step))
        print("ok" if all(int(moved) == steps for moved, steps in results) else "bad", results)
    """)
    assert out.startswith("ok"), out


@pytest.mark.parametrize("copy_of", [lambda m: m.get_weights(), pickle.dumps, copy.deepcopy])
def test_copies_of_the_weights_wait_for_a_fit_in_another_thread(copy_of):
    """fit updates the weights in place under the model's lock; get_weights, pickle and deepcopy
    took their copies without it and could see a half-applied update."""
    model = gd.MLP([3, 4, 2], seed=0)
    done = threading.Event()
    with model._lock:  # what a fit in another thread holds
        threading.Thread(target=lambda: (copy_of(model), done.set()), daemon=True).start()
        assert not done.wait(0.2)
    assert done.wait(10)


def test_two_models_sharing_an_optimizer_in_two_threads_take_turns():
    """One optimizer's state belongs to one model at a time: fits of two models with it in two
    threads run one after the other, each as it would alone (the second reset the state under
    the first, which went on with the other's step count)."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(4000, 8)), rng.integers(0, 3, 4000)
    first_epoch_done = threading.Event()
    signal_first_epoch = gd.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: first_epoch_done.set())

    def train(model, optimizer, epochs, callbacks=()):
        model.fit(X, y, optimizer=optimizer, epochs=epochs, batch_size=4, verbose=0, seed=0,
                  callbacks=list(callbacks))

    alone = [gd.MLP([8, 16, 3], seed=1), gd.MLP([8, 32, 3], seed=2)]
    for model, epochs in zip(alone, (6, 2)):
        train(model, gd.optim.Adam(lr=1e-3), epochs)
    shared = gd.optim.Adam(lr=1e-3)
    together = [gd.MLP([8, 16, 3], seed=1), gd.MLP([8, 32, 3], seed=2)]
    worker = threading.Thread(target=train, args=(together[0], shared, 6, [signal_first_epoch]))
    worker.start()
    assert first_epoch_done.wait(60)  # the first fit is under way
    train(together[1], shared, 2)
    worker.join()
    for model, reference in zip(together, alone):
        for w, w0 in zip(model.get_weights(), reference.get_weights()):
            np.testing.assert_array_equal(w, w0)
    assert shared.state["step"] == 2 * 1000 and shared.state["owner"] is together[1]
    copied = pickle.loads(pickle.dumps(shared))  # the lock is rebuilt, not pickled
    with copied._lock:
        assert copied.state["step"] == shared.state["step"]


@pytest.mark.parametrize("name", ["cross_entropy", "hinge"])
def test_class_weighted_losses_vs_torch(name):
    """Class weights give gdcore's weighted mean Σ w·l / Σ w: torch's cross_entropy(weight=)
    exactly, torch's multi_margin_loss(weight=) (a mean over the rows) × n / Σ w (as the
    README and Hinge's docstring say)."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(15)
    out, y = rng.normal(scale=1.5, size=(9, 3)), rng.integers(0, 3, 9)
    class_weight = np.array([1.0, 1.0, 3.0])
    model = gd.Sequential([gd.Dense(3, 3, init="zeros")], dtype="float64")
    model.layers[0].W = np.eye(3)  # the outputs are the inputs: out itself
    loss, grads = model.loss_and_grad(out, y, loss=name, sample_weight=class_weight[y])
    ot = torch.tensor(out, requires_grad=True)
    weight = torch.tensor(class_weight)
    lt = (F.cross_entropy(ot, torch.tensor(y), weight=weight) if name == "cross_entropy" else
          F.multi_margin_loss(ot, torch.tensor(y), weight=weight) * len(y) / class_weight[y].sum())
    (gt,) = torch.autograd.grad(lt, ot)
    np.testing.assert_allclose(loss, lt.item(), rtol=1e-12)
    np.testing.assert_allclose(grads[0][1], gt.numpy().sum(axis=0), rtol=1e-12, atol=1e-15)


def _dropout_model():
    return gd.Sequential([gd.Dense(6, 16, activation="relu"), gd.Dropout(0.5), gd.Dense(16, 3)],
                         seed=0)


@pytest.mark.parametrize("path", ["general", "fast"])
def test_a_ctrl_c_as_a_dropout_step_returns_keeps_the_generator_with_the_step(monkeypatch, path):
    """The C step is applied, then Python raises the KeyboardInterrupt of a SIGINT that came
    during it: train_step rewound the dropout generator as for a refused step, so the next
    step reused the same mask (the model matched no uninterrupted run)."""
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(20, 6)).astype(np.float32), rng.integers(0, 3, 20)
    model, opt = _dropout_model(), gd.optim.SGD(lr=0.1)
    model.train_step(X, y, optimizer=opt)  # binds the fast path
    if path == "general":
        real = gd.models._core.train

        def train_then_interrupt(*args, **kwargs):
            real(*args, **kwargs)
            raise KeyboardInterrupt

        monkeypatch.setattr(gd.models._core, "train", train_then_interrupt)
        step_X = X.tolist()  # a list takes the general path
    else:
        fast = model._fast_step

        class Interrupting:
            def step(self, *args):
                fast[5].step(*args)
                raise KeyboardInterrupt

        model._fast_step = fast[:5] + (Interrupting(),) + fast[6:]
        step_X = X
    with pytest.raises(KeyboardInterrupt):
        model.train_step(step_X, y, optimizer=opt)
    monkeypatch.undo()
    model._fast_step = None
    model.train_step(X, y, optimizer=opt)
    reference, ref_opt = _dropout_model(), gd.optim.SGD(lr=0.1)
    for _ in range(3):
        reference.train_step(X, y, optimizer=ref_opt)
    assert opt.state["step"] == 3
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_refused_dropout_step_still_leaves_the_generator_alone():
    model = _dropout_model()
    state = model._rng.bit_generator.state
    with pytest.raises(ValueError):
        model.train_step(np.ones((4, 6)), [0, 1, 2, 3], optimizer=gd.optim.SGD(lr=0.1))
    assert model._rng.bit_generator.state == state


def test_a_ctrl_c_while_fit_records_an_epoch_keeps_that_epoch_in_history(monkeypatch):
    """A SIGINT during the validation pass (after the epoch had trained, before its history
    entry) raised at once: history_ lacked an epoch the weights and optimizer had taken, so a
    resume at initial_epoch=len(history_.epoch) trained it twice."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(30, 6)), rng.integers(0, 3, 30)
    model, opt = gd.MLP([6, 8, 3], seed=0), gd.optim.SGD(lr=0.1)
    real, calls = model._forward, []

    def forward_then_sigint(*args, **kwargs):
        calls.append(1)
        out = real(*args, **kwargs)
        if len(calls) == 2:  # the first epoch's validation (the first call is fit's check)
            os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(model, "_forward", forward_then_sigint)
    with pytest.raises(KeyboardInterrupt, match="after epoch 0"):
        model.fit(X, y, optimizer=opt, epochs=3, batch_size=30, validation_data=(X, y),
                  verbose=0)
    assert model.history_.epoch == [0] and opt.state["step"] == 1
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_ctrl_c_after_an_epochs_last_batch_records_that_epoch(monkeypatch):
    """The core reports a SIGINT that came after the last batch's check as INTERRUPTED at
    batch n_batches: fit raised at once, the whole epoch trained but missing from history_
    (with full-batch training, on every Ctrl-C)."""
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(30, 6)), rng.integers(0, 3, 30)
    model, opt = gd.MLP([6, 8, 3], seed=0), gd.optim.SGD(lr=0.1)
    real = gd.models._core.train

    def train_then_report_a_late_sigint(*args, **kwargs):
        status, loss_sum, correct, step, bad_batch = real(*args, **kwargs)
        first, end = args[15], args[16]
        if first == 0 and status == gd.models._core.OK:
            return gd.models._core.INTERRUPTED, loss_sum, correct, step, end
        return status, loss_sum, correct, step, bad_batch

    monkeypatch.setattr(gd.models._core, "train", train_then_report_a_late_sigint)
    with pytest.raises(KeyboardInterrupt, match="after epoch 0"):
        model.fit(X, y, optimizer=opt, epochs=3, batch_size=30, verbose=0)
    assert model.history_.epoch == [0] and opt.state["step"] == 1
    assert np.isfinite(model.history_.history["loss"][0])
