"""Schedules inside fit: the C core really uses each batch's learning rate."""
import numpy as np
import pytest

import gdcore as gd


def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(40, 5)), rng.integers(0, 3, 40)


@pytest.mark.parametrize("schedule", [
    gd.schedules.LinearWarmup("constant", warmup_steps=7, start_factor=0.1),
    gd.schedules.StepLR(1, gamma=0.5),
    gd.schedules.CosineAnnealingLR(T_max=9, unit="step"),
])
def test_fit_follows_the_schedule_batch_by_batch(schedule):
    X, y = data()
    model = gd.MLP([5, 8, 3], dtype="float64", seed=1)
    manual = gd.MLP([5, 8, 3], dtype="float64", seed=1)
    lrs = [np.ravel(v)[0] for v in schedule.values(3, 0.2, n_batches=4)]  # first batch of each epoch
    history = model.fit(X, y, optimizer=gd.optim.SGD(lr=0.2, momentum=0.5), schedule=schedule,
                        epochs=3, batch_size=10, shuffle=False, verbose=0)
    assert history.history["lr"] == pytest.approx(lrs)
    # replay: every batch with the rate the schedule gives it
    replay = gd.schedules.get(type(schedule)(**_params(schedule)))
    replay.begin_fit(manual, epochs=3, n_batches=4)
    opt = gd.optim.SGD(lr=0.2, momentum=0.5)
    for _ in range(3):
        for batch, lr in enumerate(replay.batch_lrs(4, 0.2)):
            opt.lr = float(lr)
            manual.train_step(X[batch * 10:(batch + 1) * 10], y[batch * 10:(batch + 1) * 10],
                              optimizer=opt)
        replay.epoch_end({})
    for a, b in zip(model.get_weights(), manual.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def _params(schedule):
    if isinstance(schedule, gd.schedules.LinearWarmup):
        return dict(schedule="constant", warmup_steps=7, start_factor=0.1)
    if isinstance(schedule, gd.schedules.StepLR):
        return dict(step_size=1, gamma=0.5)
    return dict(T_max=9, unit="step")


def test_plateau_needs_validation_data_and_reduces_the_rate():
    X, y = data()
    model = gd.MLP([5, 8, 3], seed=0)
    with pytest.raises(ValueError, match="validation_data"):
        model.fit(X, y, schedule="plateau", verbose=0)
    plateau = gd.schedules.ReduceLROnPlateau(monitor="loss", patience=0, factor=0.5, threshold=10.0)
    history = model.fit(X, y, optimizer=gd.optim.SGD(lr=0.1), schedule=plateau, epochs=4,
                        verbose=0)
    # a relative threshold of 1000% is never met: the rate halves after every epoch but the first
    assert history.history["lr"] == pytest.approx([0.1, 0.05, 0.025, 0.0125])


def test_a_schedule_continues_across_fit_calls():
    X, y = data()
    once, twice = gd.MLP([5, 4, 3], seed=2), gd.MLP([5, 4, 3], seed=2)
    opt1, opt2 = gd.optim.SGD(lr=0.1), gd.optim.SGD(lr=0.1)
    s1, s2 = gd.schedules.ExponentialLR(0.5), gd.schedules.ExponentialLR(0.5)
    h1 = once.fit(X, y, optimizer=opt1, schedule=s1, epochs=4, seed=0, verbose=0)
    h2 = twice.fit(X, y, optimizer=opt2, schedule=s2, epochs=2, seed=0, verbose=0)
    h3 = twice.fit(X, y, optimizer=opt2, schedule=s2, epochs=2, seed=0, verbose=0)
    assert h1.history["lr"] == pytest.approx(h2.history["lr"] + h3.history["lr"])


def _resumed(tmp_path, X, y, optimizer, schedule, k, epochs):
    """Train MLP([5, 8, 3], seed=1) for k epochs, checkpoint it, load it and train it on to
    ``epochs`` with the same schedule object: (the loaded model, the history of the rest)."""
    first = gd.MLP([5, 8, 3], seed=1)
    first.fit(X, y, optimizer=optimizer, epochs=k, seed=3, schedule=schedule, verbose=0)
    first.save(tmp_path / "ck.npz", optimizer=optimizer)
    resumed, optimizer = gd.load(tmp_path / "ck.npz", with_optimizer=True)
    rest = resumed.fit(X, y, optimizer=optimizer, epochs=epochs, initial_epoch=k, seed=3,
                       schedule=schedule, verbose=0)
    return resumed, rest


def test_a_fresh_schedule_resuming_at_initial_epoch_starts_there(tmp_path):
    """Training resumed from a checkpoint (a loaded model is a new model, so the schedule
    restarts) must follow the schedule from epoch k, as one fit would have."""
    X, y = data()
    one = gd.MLP([5, 8, 3], seed=1)
    whole = one.fit(X, y, optimizer=gd.optim.SGD(lr=0.1, momentum=0.9), epochs=4, seed=3,
                    schedule=gd.schedules.StepLR(1, gamma=0.5), verbose=0)
    resumed, rest = _resumed(tmp_path, X, y, gd.optim.SGD(lr=0.1, momentum=0.9),
                             gd.schedules.StepLR(1, gamma=0.5), 2, 4)
    assert rest.history["lr"] == whole.history["lr"][2:]
    for a, b in zip(resumed.get_weights(), one.get_weights()):
        np.testing.assert_array_equal(a, b)
    # a cosine learned from the fit's length spans all the epochs, the skipped ones too
    lrs = gd.MLP([5, 8, 3], seed=1).fit(X, y, epochs=4, initial_epoch=2, schedule="cosine",
                                        optimizer=gd.optim.SGD(lr=0.1), verbose=0).history["lr"]
    assert lrs == pytest.approx([0.05, 0.1 * (1 + np.cos(np.pi * 3 / 4)) / 2])


def plateau():
    return gd.schedules.ReduceLROnPlateau("loss", patience=0, factor=0.5, threshold=0.5)


def test_plateau_resumes_from_a_checkpoint_with_its_schedule_object(tmp_path):
    """The schedule object of the interrupted fit, given to the loaded model, was reset (a new
    owner) and skipped to epoch k without its reductions: the rate jumped back to base_lr."""
    X, y = data()
    whole = gd.MLP([5, 8, 3], seed=1).fit(X, y, optimizer=gd.optim.SGD(lr=0.05), epochs=6,
                                          seed=3, schedule=plateau(), verbose=0)
    assert len(set(whole.history["lr"][3:])) > 1 or whole.history["lr"][3] < 0.05  # it reduces
    _, rest = _resumed(tmp_path, X, y, gd.optim.SGD(lr=0.05), plateau(), 3, 6)
    assert rest.history["lr"] == whole.history["lr"][3:]
    assert rest.history["loss"] == whole.history["loss"][3:]


@pytest.mark.parametrize("wrap", [lambda s: s, lambda s: gd.schedules.LinearWarmup(s, warmup_epochs=2)])
def test_a_fresh_plateau_at_initial_epoch_warns_once(wrap):
    X, y = data()
    model = gd.MLP([5, 8, 3], seed=1)
    with pytest.warns(RuntimeWarning, match="starts afresh at initial_epoch=2") as caught:
        model.fit(X, y, epochs=3, initial_epoch=2, schedule=wrap(plateau()), verbose=0)
    assert len([w for w in caught if "starts afresh" in str(w.message)]) == 1
    assert caught[0].filename == __file__  # points at the fit call


def test_a_schedule_handed_to_another_model_still_restarts():
    X, y = data()
    schedule = gd.schedules.ExponentialLR(0.5)
    gd.MLP([5, 4, 3]).fit(X, y, schedule=schedule, epochs=3, verbose=0)
    lrs = gd.MLP([5, 4, 3]).fit(X, y, schedule=schedule, epochs=2, verbose=0).history["lr"]
    assert lrs == pytest.approx([0.01, 0.005])
    # initial_epoch other than the epochs it ran: another training, restarted and skipped
    lrs = gd.MLP([5, 4, 3]).fit(X, y, schedule=schedule, epochs=3, initial_epoch=1,
                                verbose=0).history["lr"]
    assert lrs == pytest.approx([0.005, 0.0025])
