"""Python threads and processes around the OpenMP core: no interference, no hang."""
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest

import gdcore as gd

RNG = np.random.default_rng(0)
X = RNG.random((1500, 40)).astype(np.float32)
Y = RNG.integers(0, 4, 1500)


def train(seed, n_threads=2, model=None, epochs=2):
    model = model or gd.MLP([40, 256, 4], seed=seed)
    model.fit(X, Y, epochs=epochs, batch_size=128, seed=seed, n_threads=n_threads, verbose=0)
    return model.get_weights()


def same(a, b):
    return all(np.array_equal(u, v) for u, v in zip(a, b))


def test_two_models_in_two_threads_equal_sequential_training():
    expected = [train(1), train(2)]
    results = {}
    workers = [threading.Thread(target=lambda s=s: results.__setitem__(s, train(s))) for s in (1, 2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert same(results[1], expected[0]) and same(results[2], expected[1])


def test_one_model_used_by_two_threads_serializes():
    sequential = gd.MLP([40, 256, 4], seed=3)
    train(5, model=sequential)
    expected = train(5, model=sequential)  # two identical fits, one after the other
    shared = gd.MLP([40, 256, 4], seed=3)
    errors = []

    def work():
        try:
            train(5, model=shared)
        except Exception as exc:  # noqa: BLE001 - the test reports any failure
            errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors
    assert same(shared.get_weights(), expected)


def _child_train(seed):
    return train(seed)


def test_forked_children_train_after_the_parent_used_openmp():
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    parent = train(7)  # the parent runs a multi-threaded team first
    context = multiprocessing.get_context("fork")
    with context.Pool(2) as pool:
        children = pool.map_async(_child_train, [7, 8]).get(timeout=120)  # a hang fails here
    # the children run on one thread (GNU OpenMP cannot start threads after fork), and the
    # results are bit-identical to the parent's multi-threaded ones
    assert same(children[0], parent)
    assert same(children[1], train(8))


def test_a_fit_waiting_for_a_shared_optimizer_uses_its_hyperparameters_after_the_wait():
    """fit read the optimizer's hyperparameters before waiting for its lock (held by another
    fit): a change made meanwhile was ignored for the whole fit."""
    x, y = X[:200], Y[:200]
    opt = gd.optim.SGD(lr=0.05)
    model = gd.MLP([40, 8, 4], seed=1)
    with opt._lock:  # as another fit in another thread holds it
        worker = threading.Thread(target=lambda: model.fit(x, y, optimizer=opt, epochs=1,
                                                           seed=0, verbose=0))
        worker.start()
        time.sleep(0.3)  # the worker waits for the lock
        opt.weight_decay = 0.5
    worker.join()
    expected = gd.MLP([40, 8, 4], seed=1)
    expected.fit(x, y, optimizer=gd.optim.SGD(lr=0.05, weight_decay=0.5), epochs=1, seed=0,
                 verbose=0)
    np.testing.assert_array_equal(model._params, expected._params)


def _fork_and_report(child):
    """Fork; in the child run child() and send back what it returns (or its exception's text);
    in the parent return that text, failing after 60 s rather than hanging with the child."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns to pytest
        try:
            os.close(read_end)
            try:
                message = str(child())
            except BaseException as exc:  # noqa: BLE001 - sent to the parent
                message = f"{type(exc).__name__}: {exc}"
            os.write(write_end, message.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    deadline = time.monotonic() + 60
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung")
        time.sleep(0.01)
    with os.fdopen(read_end) as pipe:
        return pipe.read()


def test_a_fork_while_another_thread_trains_refuses_that_model_in_the_child_instead_of_hanging():
    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    x, y = X[:200], Y[:200]
    busy, other = gd.MLP([40, 8, 4], seed=1), gd.MLP([40, 8, 4], seed=2)
    shared_optimizer = gd.optim.Adam(lr=0.01)
    inside_fit, may_finish = threading.Event(), threading.Event()

    def hold(epoch, logs):  # fit holds the model's and the optimizer's locks around callbacks
        inside_fit.set()
        may_finish.wait(60)

    trainer = threading.Thread(target=lambda: busy.fit(
        x, y, optimizer=shared_optimizer, epochs=1, verbose=0,
        callbacks=[gd.callbacks.LambdaCallback(on_epoch_end=hold)]))
    trainer.start()
    try:
        assert inside_fit.wait(60)
        expected = other.predict(x[:5])
        with warnings.catch_warnings():  # Python 3.12+ (and JAX, when a test imported it)
            warnings.filterwarnings("ignore", message=".*fork")  # warn about forking threads
            held = _fork_and_report(lambda: busy.predict(x[:5]))
            held_optimizer = _fork_and_report(lambda: gd.MLP([40, 8, 4], seed=3).fit(
                x, y, optimizer=shared_optimizer, epochs=1, verbose=0))
            free = _fork_and_report(lambda: np.array_equal(other.predict(x[:5]), expected))
    finally:
        may_finish.set()
        trainer.join()
    assert held.startswith("RuntimeError: this MLP was in use by another thread"), held
    assert "Load or build it again in this process" in held
    assert held_optimizer.startswith("RuntimeError: this Adam was in use by another thread"), \
        held_optimizer
    assert free == "True"  # a model no thread held works in the child
    assert busy.predict(x[:5]).shape == (5, 4)  # the parent's model is untouched by all this


def test_small_matrix_bound_follows_the_openblas_core():
    """The tiles are sized for OpenBLAS's packing-free small-matrix kernels only where the
    core running has them (its AVX-512 Skylake-family kernels)."""
    from types import SimpleNamespace
    from gdcore import _threads
    for core, expected in [("SkylakeX", 100 ** 3), ("SapphireRapids", 100 ** 3),
                           ("Cooperlake", 100 ** 3), ("Haswell", 0), ("Zen", 0), (None, 0)]:
        assert _threads._small_gemm_mnk(SimpleNamespace(architecture=core)) == expected, core
    assert _threads._small_gemm_mnk(None) == 0
    with pytest.raises(ValueError, match="limit"):
        gd._core.set_blas_small_mnk(-1)


def test_config_says_whether_tiles_are_sized_for_a_small_matrix_path(capsys):
    gd.show_config()
    text = capsys.readouterr().out
    if gd._core.blas_small_mnk():
        assert f"up to M·N·K = {gd._core.blas_small_mnk():,}" in text
    else:
        assert "small-matrix path without packing: none known" in text


FORK_AFTER_TORCH = """
import multiprocessing, numpy as np, torch, gdcore as gd
def job(_):
    X = np.random.default_rng(0).random((600, 300), dtype=np.float32)
    model = gd.MLP([300, 64, 3], seed=0)
    model.fit(X, np.arange(600) % 3, epochs=1, verbose=0, n_threads=2)
    return gd._core.fork_limited()
if __name__ == "__main__":
    a = torch.randn(600, 600)
    torch.set_num_threads(2)
    (a @ a).sum()  # PyTorch runs an OpenMP team in the parent (its libgomp is gdcore's)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        print("limited" if pool.apply_async(job, (0,)).get(timeout=60) else "free")
"""


def test_a_child_forked_after_pytorch_ran_openmp_threads_does_not_hang(tmp_path):
    """The fork guard knew only gdcore's own teams: after PyTorch ran a parallel op in the
    parent, the child's first gdcore region waited for ever at a libgomp barrier."""
    pytest.importorskip("torch")
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    script = tmp_path / "fork_after_torch.py"
    script.write_text(FORK_AFTER_TORCH)
    try:
        result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                                timeout=120, cwd=os.path.dirname(__file__))
    except subprocess.TimeoutExpired:
        pytest.fail("the forked child hung")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "limited"


def test_pickling_an_optimizer_waits_for_a_fit_using_it():
    """Optimizer.__getstate__ took no lock: a pickle made while a fit ran in another thread
    paired the step count of the epoch's start with moments from the middle of it."""
    import pickle

    opt = gd.optim.Adam(lr=0.01)
    holding, release = threading.Event(), threading.Event()

    def hold():
        with opt._lock:  # as a fit in another thread holds it
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(10)
    pickled = []
    reader = threading.Thread(target=lambda: pickled.append(pickle.dumps(opt)))
    reader.start()
    reader.join(0.3)
    assert reader.is_alive() and not pickled  # waits for the fit
    release.set()
    reader.join(10)
    holder.join(10)
    assert isinstance(pickle.loads(pickled[0]), gd.optim.Adam)


def test_omp_thread_limit_caps_the_default_thread_count():
    """show_config and n_threads=None said 2 under OMP_THREAD_LIMIT=1 (libgomp ran one)."""
    code = "import gdcore as gd; print(gd._threads.resolve_n_threads(None))"
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    env.pop("OMP_NUM_THREADS", None)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=120, cwd=os.path.dirname(__file__))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"


def test_omp_proc_bind_does_not_shrink_the_default_thread_count():
    """With OMP_PROC_BIND, libgomp binds the main thread to one place when gdcore loads, and
    n_threads=None read that thread's one-CPU affinity: 1 thread on a 2-core machine."""
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no affinity masks here")
    code = "import gdcore as gd; print(gd._threads.resolve_n_threads(None))"

    def default_threads(**settings):
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                env={**os.environ, **settings}, timeout=120,
                                cwd=os.path.dirname(__file__))
        assert result.returncode == 0, result.stderr
        return int(result.stdout)

    assert default_threads(OMP_PROC_BIND="true", OMP_PLACES="cores") == default_threads()
    # and places narrower than the process: every OpenMP thread runs on CPU 0 (omp_get_num_procs
    # still counted 2, and two threads spun against each other on one CPU: fit 75x slower)
    assert default_threads(OMP_PLACES="{0}") == 1
    # binding that puts the whole team on the primary thread's place, or places that repeat
    # a CPU: the places' CPUs are two, the team's one (asked of the team's threads)
    assert default_threads(OMP_PROC_BIND="primary") == 1
    assert default_threads(OMP_PLACES="{0},{0},{1}") == 1
