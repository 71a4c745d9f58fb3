"""Learning-rate schedules: hand-worked values, parity with torch.optim.lr_scheduler (and
scikit-learn's invscaling), the fit protocol (batch_lrs / epoch_end / begin_fit) and errors."""
import math
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from gdcore import schedules as S

SQRT2 = math.sqrt(2.0)


def run_epochs(schedule, n_epochs, base_lr, n_batches=1, logs=None, n_samples=None):
    """Drive ``schedule`` as fit does; returns the (n_epochs, n_batches) learning rates."""
    rows = []
    for epoch in range(n_epochs):
        rows.append(schedule.batch_lrs(n_batches, base_lr, n_samples=n_samples))
        schedule.epoch_end(None if logs is None else logs[epoch])
    return np.array(rows)


class Owner:
    """Stands for a model in begin_fit."""


# ------------------------------------------------------------------ hand-worked values
def test_constant():
    lrs = S.Constant().batch_lrs(5, 0.3)
    assert lrs.dtype == np.float64 and lrs.shape == (5,) and lrs.flags.c_contiguous
    assert_array_equal(lrs, np.full(5, 0.3))
    assert_array_equal(S.Constant().values(4, 0.3), [0.3] * 4)


def test_step_lr_per_epoch():
    assert_allclose(S.StepLR(3, gamma=0.5).values(8, 0.1),
                    [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025], rtol=1e-15)
    # torch's default gamma is 0.1
    assert_allclose(S.StepLR(2).values(5, 1.0), [1, 1, 0.1, 0.1, 0.01], rtol=1e-15)


def test_step_lr_per_step_crosses_epochs():
    # positions 0..8 over three epochs of three batches; the decay comes every 4 batches
    lrs = S.StepLR(4, gamma=0.5, unit="step").values(3, 1.0, n_batches=3)
    assert_array_equal(lrs, [[1, 1, 1], [1, 0.5, 0.5], [0.5, 0.5, 0.25]])


def test_multistep_lr():
    assert_allclose(S.MultiStepLR([2, 5], gamma=0.1).values(7, 2.0),
                    [2, 2, 0.2, 0.2, 0.2, 0.02, 0.02], rtol=1e-15)


def test_exponential_lr():
    assert_array_equal(S.ExponentialLR(0.5).values(4, 1.0), [1, 0.5, 0.25, 0.125])
    assert_array_equal(S.ExponentialLR(2.0).values(4, 0.25), [0.25, 0.5, 1, 2])  # growth allowed


def test_inverse_time_per_epoch():
    assert_allclose(S.InverseTimeLR(power_t=1.0).values(4, 0.6), [0.6, 0.3, 0.2, 0.15], rtol=1e-15)
    assert_allclose(S.InverseTimeLR().values(4, 0.4),
                    [0.4, 0.4 / SQRT2, 0.4 / math.sqrt(3), 0.2], rtol=1e-15)
    assert_array_equal(S.InverseTimeLR(power_t=0).values(3, 0.7), [0.7] * 3)


def test_inverse_time_per_step_and_per_sample():
    # per step: batch s of training runs at base / (s + 1) ** p, across epoch boundaries
    assert_allclose(S.InverseTimeLR(power_t=1.0, unit="step").values(2, 1.0, n_batches=3),
                    [[1, 1 / 2, 1 / 3], [1 / 4, 1 / 5, 1 / 6]], rtol=1e-15)
    # per sample: constant in an epoch, t = samples seen in earlier epochs
    sched = S.InverseTimeLR(power_t=0.5, unit="sample")
    assert_allclose(sched.values(3, 1.0, n_batches=2, n_samples=10),
                    [[1, 1], [1 / math.sqrt(11)] * 2, [1 / math.sqrt(21)] * 2], rtol=1e-15)


def test_inverse_time_sample_unit_matches_sklearn_invscaling():
    pytest.importorskip("sklearn")
    try:
        from sklearn.neural_network._stochastic_optimizers import SGDOptimizer
    except ImportError:
        pytest.skip("scikit-learn's private SGDOptimizer moved")
    n_samples, base_lr, power_t = 37, 0.2, 0.25
    ref = SGDOptimizer([np.zeros(1)], learning_rate_init=base_lr, lr_schedule="invscaling",
                       power_t=power_t)
    expected, t = [], 0
    for _ in range(12):  # MLPClassifier's loop: train an epoch, t_ += n_samples, iteration_ends
        expected.append(ref.learning_rate)
        t += n_samples
        ref.iteration_ends(t)
    got = S.InverseTimeLR(power_t, unit="sample").values(12, base_lr, n_samples=n_samples)
    assert_allclose(got, expected, rtol=1e-14, atol=0)


def test_cosine_annealing_periodic_like_torch():
    c = (1 - 1 / SQRT2) / 2  # (1 + cos(3π/4)) / 2
    expected = [0.11, 0.01 + 0.1 * (1 - c), 0.06, 0.01 + 0.1 * c, 0.01,  # descent
                0.01 + 0.1 * c, 0.06, 0.01 + 0.1 * (1 - c), 0.11]        # and back up
    assert_allclose(S.CosineAnnealingLR(4, eta_min=0.01).values(9, 0.11), expected, rtol=1e-14)


def test_cosine_t_max_none_anneals_over_the_fit():
    sched = S.get("cosine")
    assert sched.T_max is None
    assert_allclose(sched.values(10, 0.5), S.CosineAnnealingLR(10).values(10, 0.5), rtol=1e-15)
    with pytest.raises(ValueError, match="T_max"):
        S.CosineAnnealingLR().batch_lrs(3, 0.1)  # nobody said how long the fit is
    step_sched = S.CosineAnnealingLR(unit="step")
    step_sched.begin_fit(Owner(), epochs=3, n_batches=4)
    assert step_sched.T_max_ == 12
    # a continued fit keeps the half period of the fit that started the schedule
    owner = Owner()
    sched.begin_fit(owner, epochs=4, n_batches=2)
    run_epochs(sched, 4, 1.0, 2)
    sched.begin_fit(owner, epochs=100, n_batches=2)
    assert sched.T_max_ == 4
    assert_allclose(sched.batch_lrs(2, 1.0), [(1 + math.cos(math.pi * 4 / 4)) / 2] * 2, atol=1e-15)
    # a new model restarts it, and it learns the new length
    sched.begin_fit(Owner(), epochs=6, n_batches=2)
    assert sched.T_max_ == 6 and sched.epochs_done == 0


def test_piecewise_holds_last_value_and_ignores_base_lr():
    assert_array_equal(S.PiecewiseLR([0.5, 0.2, 0.1]).values(6, 123.0),
                       [0.5, 0.2, 0.1, 0.1, 0.1, 0.1])
    assert_array_equal(S.PiecewiseLR([3, 2, 1], unit="step").values(2, 1.0, n_batches=2),
                       [[3, 2], [1, 1]])


def test_linear_warmup_per_epoch():
    assert_allclose(S.LinearWarmup(warmup_epochs=4, start_factor=0.2).values(6, 1.0),
                    [0.2, 0.4, 0.6, 0.8, 1.0, 1.0], rtol=1e-15)
    # torch's default start_factor: 1/3
    assert_allclose(S.LinearWarmup(warmup_epochs=2).values(3, 0.3), [0.1, 0.2, 0.3], rtol=1e-15)


def test_linear_warmup_per_step_ramp_crosses_epochs():
    sched = S.LinearWarmup("constant", warmup_steps=5, start_factor=0.0)
    assert sched.per_step
    assert_allclose(sched.values(3, 2.0, n_batches=3),
                    [[0, 0.4, 0.8], [1.2, 1.6, 2.0], [2.0, 2.0, 2.0]], rtol=1e-15)


def test_linear_warmup_multiplies_step_schedule():
    inner = S.StepLR(2, gamma=0.5)
    sched = S.LinearWarmup(inner, warmup_epochs=3, start_factor=0.25)
    assert sched.schedule is inner
    assert_allclose(sched.values(7, 1.0),
                    [0.25, 0.5, 0.75 * 0.5, 0.5, 0.25, 0.25, 0.125], rtol=1e-15)
    # after the warmup, exactly the wrapped schedule
    assert_array_equal(sched.values(20, 0.1)[3:], inner.values(20, 0.1)[3:])


def test_linear_warmup_multiplies_cosine_per_step():
    inner = S.CosineAnnealingLR(6, eta_min=0.01)
    sched = S.LinearWarmup(inner, warmup_steps=4, start_factor=0.5)
    lrs = sched.values(8, 0.1, n_batches=3)
    inner_lrs = inner.values(8, 0.1)
    ramp = 0.5 + 0.5 * np.minimum(np.arange(24).reshape(8, 3), 4) / 4
    assert_allclose(lrs, inner_lrs[:, None] * ramp, rtol=1e-15)
    assert_array_equal(lrs[2:], np.repeat(inner_lrs[2:, None], 3, axis=1))
    epoch1 = 0.01 + 0.09 * (1 + math.cos(math.pi / 6)) / 2
    assert_allclose([lrs[0, 0], lrs[0, 1], lrs[1, 0], lrs[1, 1]],
                    [0.05, 0.0625, 0.875 * epoch1, epoch1], rtol=1e-15)


def test_linear_warmup_forwards_metrics_to_plateau():
    sched = S.LinearWarmup(S.ReduceLROnPlateau("loss", patience=0, factor=0.5),
                           warmup_epochs=2, start_factor=0.5)
    assert sched.monitor == "loss"
    # epoch 1 does not improve: the plateau halves the lr from epoch 2 on
    assert_allclose(sched.values(4, 1.0, logs=[1.0, 2.0, 0.5, 0.4]), [0.5, 0.75, 0.5, 0.5],
                    rtol=1e-15)


# ------------------------------------------------------------------ ReduceLROnPlateau by hand
@pytest.mark.parametrize("cooldown, expected", [
    (0, [1, 1, 1, 1, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125]),
    (2, [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25]),
])
def test_plateau_patience_and_cooldown(cooldown, expected):
    sched = S.ReduceLROnPlateau("loss", patience=1, factor=0.5, cooldown=cooldown)
    assert_array_equal(sched.values(10, 1.0, logs=[5, 4] + [4] * 8), expected)


def test_plateau_threshold_modes():
    rel = S.ReduceLROnPlateau("loss", threshold=0.1, threshold_mode="rel")
    rel.epoch_end({"loss": 1.0})
    rel.epoch_end({"loss": 0.95})  # needs < 0.9
    assert (rel.best, rel.num_bad_epochs) == (1.0, 1)
    absolute = S.ReduceLROnPlateau("loss", threshold=0.01, threshold_mode="abs")
    absolute.epoch_end({"loss": 1.0})
    absolute.epoch_end({"loss": 0.95})  # needs < 0.99
    assert (absolute.best, absolute.num_bad_epochs) == (0.95, 0)
    rel_max = S.ReduceLROnPlateau("acc", mode="max", threshold=0.1, threshold_mode="rel")
    rel_max.epoch_end({"acc": 10.0})
    rel_max.epoch_end({"acc": 10.5})  # needs > 11
    assert (rel_max.best, rel_max.num_bad_epochs) == (10.0, 1)
    abs_max = S.ReduceLROnPlateau("acc", mode="max", threshold=0.1, threshold_mode="abs")
    abs_max.epoch_end({"acc": 10.0})
    abs_max.epoch_end({"acc": 10.05})  # needs > 10.1
    abs_max.epoch_end({"acc": 10.5})
    assert (abs_max.best, abs_max.num_bad_epochs) == (10.5, 0)


def test_plateau_max_mode_min_lr_and_nan():
    sched = S.ReduceLROnPlateau("val_accuracy", mode="max", patience=0, factor=0.1, min_lr=0.3)
    # 0.8 improves, 0.7 does not (reduce to max(0.1, 0.3)), nan is a bad epoch (but 0.3 is the
    # floor), 0.9 improves
    assert_array_equal(sched.values(5, 1.0, logs=[0.8, 0.7, float("nan"), 0.9, 0.95]),
                       [1, 1, 0.3, 0.3, 0.3])
    assert sched.n_reductions == 0  # values() worked on a copy


def test_plateau_eps_skips_tiny_reductions():
    sched = S.ReduceLROnPlateau("loss", patience=0, factor=0.5, eps=0.2)
    # 1 -> 0.5 (change 0.5), 0.5 -> 0.25 (0.25), 0.25 -> 0.125 is only 0.125 <= eps: skipped
    assert_array_equal(sched.values(6, 1.0, logs=[1, 2, 3, 4, 5, 6]), [1, 1, 0.5, 0.25, 0.25, 0.25])


def test_plateau_needs_its_metric():
    sched = S.ReduceLROnPlateau()
    with pytest.raises(ValueError, match="'val_loss'.*validation_data"):
        sched.epoch_end({"loss": 1.0})
    assert sched.epochs_done == 0
    with pytest.raises(ValueError, match="'loss'"):
        S.ReduceLROnPlateau("loss").epoch_end(None)
    with pytest.raises(TypeError, match="logs"):
        S.ReduceLROnPlateau("loss").epoch_end([1.0])


# ------------------------------------------------------------------ the fit protocol
def test_batch_lrs_does_not_move_and_epoch_end_does():
    sched = S.LinearWarmup(warmup_steps=10, start_factor=0.0)
    first = sched.batch_lrs(4, 1.0, n_samples=30)
    assert_array_equal(first, sched.batch_lrs(4, 1.0, n_samples=30))
    assert (sched.epochs_done, sched.steps_done, sched.samples_done) == (0, 0, 0)
    sched.epoch_end({"loss": 1.0})
    assert (sched.epochs_done, sched.steps_done, sched.samples_done) == (1, 4, 30)
    # a later fit on other data may have fewer batches: the ramp goes on from batch 4
    assert_allclose(sched.batch_lrs(3, 1.0), [0.4, 0.5, 0.6], rtol=1e-15)
    first[:] = -1  # the caller owns the array
    sched.reset()
    assert_allclose(sched.batch_lrs(4, 1.0), [0, 0.1, 0.2, 0.3], rtol=1e-15)


@pytest.mark.parametrize("make", [
    lambda: S.StepLR(2, gamma=0.5),
    lambda: S.LinearWarmup(S.ExponentialLR(0.9), warmup_steps=7, start_factor=0.1),
    lambda: S.CosineAnnealingLR(5, unit="step"),
    lambda: S.InverseTimeLR(unit="sample"),
])
def test_fit_in_chunks_continues_the_schedule(make):
    whole = make().values(7, 0.1, n_batches=3, n_samples=20)
    sched, owner = make(), Owner()
    sched.begin_fit(owner, epochs=3, n_batches=3)
    first = run_epochs(sched, 3, 0.1, 3, n_samples=20)
    sched.begin_fit(owner, epochs=4, n_batches=3)  # the same model again: continue
    second = run_epochs(sched, 4, 0.1, 3, n_samples=20)
    assert_allclose(np.vstack([first, second]), whole, rtol=1e-15)
    assert not np.allclose(second, whole[:4])  # so a restart would have been caught


def test_a_new_model_or_reset_restarts_the_schedule():
    sched = S.LinearWarmup(S.ReduceLROnPlateau("loss", patience=0), warmup_epochs=2)
    owner = Owner()
    sched.begin_fit(owner, epochs=3, n_batches=1)
    run_epochs(sched, 3, 1.0, logs=[{"loss": 1.0}, {"loss": 2.0}, {"loss": 3.0}])
    assert sched.schedule.n_reductions == 2
    sched.begin_fit(owner, epochs=1, n_batches=1)
    assert sched.epochs_done == 3 and sched.schedule.n_reductions == 2
    sched.begin_fit(Owner(), epochs=1, n_batches=1)
    assert sched.epochs_done == 0 and sched.schedule.n_reductions == 0
    assert sched.schedule.best == math.inf
    assert_allclose(sched.batch_lrs(1, 1.0), [1 / 3], rtol=1e-15)
    run_epochs(sched, 2, 1.0, logs=[{"loss": 1.0}, {"loss": 2.0}])
    sched.reset()
    assert (sched.epochs_done, sched.steps_done, sched.schedule.n_reductions) == (0, 0, 0)


def test_values_leaves_the_schedule_alone():
    sched = S.ExponentialLR(0.5)
    run_epochs(sched, 3, 1.0)
    assert_array_equal(sched.values(3, 1.0), [1, 0.5, 0.25])  # from epoch 0
    assert sched.epochs_done == 3
    assert_array_equal(sched.batch_lrs(2, 1.0), [0.125, 0.125])


def test_values_arguments():
    with pytest.raises(ValueError, match="n_batches"):
        S.LinearWarmup(warmup_steps=3).values(4)
    with pytest.raises(ValueError, match="n_samples"):
        S.InverseTimeLR(unit="sample").values(4)
    with pytest.raises(ValueError, match="logs holds 2 epochs"):
        S.ReduceLROnPlateau("loss").values(3, logs=[1.0, 2.0])
    with pytest.raises(ValueError, match="n_epochs"):
        S.Constant().values(0)


def test_non_finite_learning_rate_is_refused():
    sched = S.ExponentialLR(1e10)
    with pytest.raises(ValueError, match="non-finite learning rate at epoch 31"):
        sched.values(40, 1.0)


@pytest.mark.parametrize("kwargs, match", [
    ({"n_batches": 0, "base_lr": 0.1}, "n_batches must be a positive int"),
    ({"n_batches": 2.0, "base_lr": 0.1}, "n_batches must be a positive int"),
    ({"n_batches": 2, "base_lr": -0.1}, "base_lr must be >= 0"),
    ({"n_batches": 2, "base_lr": float("nan")}, "base_lr must be a finite number"),
    ({"n_batches": 2, "base_lr": 0.1, "n_samples": 0}, "n_samples must be a positive int"),
])
def test_batch_lrs_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        S.Constant().batch_lrs(**kwargs)


# ------------------------------------------------------------------ get
def test_get_names_and_defaults():
    assert isinstance(S.get(None), S.Constant) and isinstance(S.get("constant"), S.Constant)
    step = S.get("STEP")
    assert (type(step), step.step_size, step.gamma) == (S.StepLR, 10, 0.1)
    assert S.get("step", step_size=3).step_size == 3
    assert S.get("exponential").gamma == 0.95
    inv = S.get("invscaling")
    assert (type(inv), inv.power_t, inv.unit) == (S.InverseTimeLR, 0.5, "epoch")
    assert type(S.get("inverse_time")) is S.InverseTimeLR
    cos = S.get("cosine")
    assert (type(cos), cos.T_max, cos.eta_min) == (S.CosineAnnealingLR, None, 0.0)
    assert S.get("multistep", milestones=[3]).milestones == [3]
    assert S.get("piecewise", lrs=[0.1]).lrs == [0.1]
    warm = S.get("warmup")
    assert (warm.warmup_epochs, type(warm.schedule)) == (5, S.Constant)
    # warmup's other documented forms (the default warmup_epochs clashed with warmup_steps,
    # and get's own first parameter with LinearWarmup's schedule)
    warm = S.get("warmup", warmup_steps=100)
    assert (warm.warmup_epochs, warm.warmup_steps) == (None, 100)
    warm = S.get("warmup", schedule="cosine", warmup_epochs=3)
    assert (warm.warmup_epochs, type(warm.schedule)) == (3, S.CosineAnnealingLR)
    # the name as a keyword still works
    assert type(S.get(schedule="cosine")) is S.CosineAnnealingLR
    assert S.get(schedule="step", step_size=3).step_size == 3
    assert type(S.get(schedule=None)) is S.Constant
    cosine = S.CosineAnnealingLR(T_max=5)
    assert S.get(schedule=cosine) is cosine
    with pytest.raises(ValueError, match="keyword arguments are for a schedule given by name"):
        S.get(schedule=cosine, eta_min=0.1)
    plateau = S.get("plateau")
    assert (plateau.monitor, plateau.factor, plateau.patience) == ("val_loss", 0.1, 10)
    assert S.get("step") is not S.get("step")  # a name makes a new object every time
    obj = S.StepLR(4)
    assert S.get(obj) is obj


def test_get_errors():
    with pytest.raises(ValueError, match="one of .*'cosine'.* got 'linear'"):
        S.get("linear")
    with pytest.raises(ValueError, match="needs milestones"):
        S.get("multistep")
    with pytest.raises(ValueError, match="needs lrs"):
        S.get("piecewise")
    with pytest.raises(ValueError, match="keyword arguments"):
        S.get(S.StepLR(2), gamma=0.5)
    with pytest.raises(ValueError, match="got 3"):
        S.get(3)
    # arguments a name's class does not take, or arguments without a name, are named
    with pytest.raises(TypeError, match=r"'constant' \(Constant\) takes no argument foo"):
        S.get("constant", foo=1)
    with pytest.raises(TypeError, match="no argument gama; it takes step_size, gamma, unit"):
        S.get("step", gama=0.5)
    with pytest.raises(ValueError, match=r"keyword arguments \['gamma'\] .* schedule is None"):
        S.get(None, gamma=0.5)


def test_repr():
    assert repr(S.StepLR(3, gamma=0.5)) == "StepLR(step_size=3, gamma=0.5, unit='epoch')"
    assert repr(S.LinearWarmup("cosine", warmup_steps=10, start_factor=0.5)) == (
        "LinearWarmup(schedule=CosineAnnealingLR(T_max=None, eta_min=0.0, unit='epoch'), "
        "warmup_steps=10, start_factor=0.5)")


# ------------------------------------------------------------------ hyperparameter errors
@pytest.mark.parametrize("make, match", [
    (lambda: S.StepLR(0), "step_size must be a positive int, got 0"),
    (lambda: S.StepLR(2.5), "step_size must be a positive int"),
    (lambda: S.StepLR(True), "step_size must be a positive int"),
    (lambda: S.StepLR(2, gamma=0), "gamma must be > 0, got 0"),
    (lambda: S.StepLR(2, gamma=float("inf")), "gamma must be a finite number"),
    (lambda: S.StepLR(2, unit="batch"), "unit must be one of 'epoch', 'step', got 'batch'"),
    (lambda: S.MultiStepLR([]), "milestones must hold at least one"),
    (lambda: S.MultiStepLR(5), "milestones must be a sequence"),
    (lambda: S.MultiStepLR([5, 3]), "milestones must be strictly increasing"),
    (lambda: S.MultiStepLR([3, 3]), "milestones must be strictly increasing"),
    (lambda: S.MultiStepLR([0, 3]), r"milestones\[0\] must be a positive int"),
    (lambda: S.MultiStepLR([2], gamma=-0.5), "gamma must be > 0"),
    (lambda: S.ExponentialLR(0.0), "gamma must be > 0"),
    (lambda: S.ExponentialLR("0.9"), "gamma must be a finite number"),
    (lambda: S.InverseTimeLR(-0.5), "power_t must be >= 0"),
    (lambda: S.InverseTimeLR(unit="samples"), "unit must be one of 'epoch', 'step', 'sample'"),
    (lambda: S.StepLR(2, unit="sample"), "unit must be one of 'epoch', 'step', got 'sample'"),
    (lambda: S.CosineAnnealingLR(0), "T_max must be a positive int"),
    (lambda: S.CosineAnnealingLR(10, eta_min=-1e-3), "eta_min must be >= 0"),
    (lambda: S.PiecewiseLR([]), "lrs must be a non-empty sequence"),
    (lambda: S.PiecewiseLR(0.1), "lrs must be a non-empty sequence"),
    (lambda: S.PiecewiseLR([0.1, 0.0]), r"lrs\[1\] must be > 0"),
    (lambda: S.LinearWarmup(), "exactly one of warmup_epochs and warmup_steps"),
    (lambda: S.LinearWarmup(warmup_epochs=2, warmup_steps=5), "exactly one of"),
    (lambda: S.LinearWarmup(warmup_epochs=0), "warmup_epochs must be a positive int"),
    (lambda: S.LinearWarmup(warmup_steps=-1), "warmup_steps must be a positive int"),
    (lambda: S.LinearWarmup(warmup_epochs=2, start_factor=1.5),
     "start_factor must be >= 0 and <= 1"),
    (lambda: S.LinearWarmup("nope", warmup_epochs=2), "schedule must be"),
    (lambda: S.ReduceLROnPlateau(monitor=""), "monitor must be the name of a metric"),
    (lambda: S.ReduceLROnPlateau(mode="minimum"), "mode must be one of 'min', 'max'"),
    (lambda: S.ReduceLROnPlateau(factor=1.0), "factor must be > 0 and < 1, got 1.0"),
    (lambda: S.ReduceLROnPlateau(factor=0), "factor must be > 0 and < 1"),
    (lambda: S.ReduceLROnPlateau(patience=-1), "patience must be an int >= 0"),
    (lambda: S.ReduceLROnPlateau(threshold=-1e-4), "threshold must be >= 0"),
    (lambda: S.ReduceLROnPlateau(threshold_mode="relative"), "threshold_mode must be one of"),
    (lambda: S.ReduceLROnPlateau(cooldown=1.5), "cooldown must be an int >= 0"),
    (lambda: S.ReduceLROnPlateau(min_lr=-1), "min_lr must be >= 0"),
    (lambda: S.ReduceLROnPlateau(eps=float("nan")), "eps must be a finite number"),
])
def test_hyperparameter_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# ------------------------------------------------------------------ parity with torch
def torch_lrs(make_scheduler, n_steps, base_lr, metrics=None):
    """What ``get_last_lr()`` says before each of ``n_steps`` steps, stepping once per step."""
    torch = pytest.importorskip("torch")
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=base_lr)
    scheduler = make_scheduler(torch.optim.lr_scheduler, optimizer)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(n_steps):
            out.append(optimizer.param_groups[0]["lr"] if metrics is not None
                       else scheduler.get_last_lr()[0])
            optimizer.step()
            if metrics is None:
                scheduler.step()
            else:
                scheduler.step(metrics[i])
    return np.array(out)


PER_EPOCH_CASES = [
    (lambda: S.StepLR(1, gamma=0.9), lambda T, o: T.StepLR(o, 1, gamma=0.9)),
    (lambda: S.StepLR(3, gamma=0.1), lambda T, o: T.StepLR(o, 3, gamma=0.1)),
    (lambda: S.StepLR(7, gamma=0.5), lambda T, o: T.StepLR(o, 7, gamma=0.5)),
    (lambda: S.StepLR(4, gamma=1.3), lambda T, o: T.StepLR(o, 4, gamma=1.3)),
    (lambda: S.MultiStepLR([3, 10, 25, 40], gamma=0.3),
     lambda T, o: T.MultiStepLR(o, [3, 10, 25, 40], gamma=0.3)),
    (lambda: S.ExponentialLR(0.9), lambda T, o: T.ExponentialLR(o, 0.9)),
    (lambda: S.ExponentialLR(0.95), lambda T, o: T.ExponentialLR(o, 0.95)),
    (lambda: S.ExponentialLR(1.05), lambda T, o: T.ExponentialLR(o, 1.05)),
    (lambda: S.CosineAnnealingLR(50), lambda T, o: T.CosineAnnealingLR(o, 50)),
    (lambda: S.CosineAnnealingLR(10), lambda T, o: T.CosineAnnealingLR(o, 10)),
    (lambda: S.CosineAnnealingLR(7, eta_min=0.02), lambda T, o: T.CosineAnnealingLR(o, 7, 0.02)),
    (lambda: S.CosineAnnealingLR(20, eta_min=1e-3), lambda T, o: T.CosineAnnealingLR(o, 20, 1e-3)),
    (lambda: S.CosineAnnealingLR(3), lambda T, o: T.CosineAnnealingLR(o, 3)),
    (lambda: S.LinearWarmup(warmup_epochs=5), lambda T, o: T.LinearLR(o, total_iters=5)),
    (lambda: S.LinearWarmup(warmup_epochs=13, start_factor=0.01),
     lambda T, o: T.LinearLR(o, start_factor=0.01, total_iters=13)),
    (lambda: S.LinearWarmup(S.StepLR(2, gamma=0.5), warmup_epochs=5, start_factor=0.25),
     lambda T, o: T.ChainedScheduler([T.LinearLR(o, 0.25, total_iters=5), T.StepLR(o, 2, 0.5)])),
    (lambda: S.LinearWarmup(S.CosineAnnealingLR(20), warmup_epochs=5, start_factor=0.1),
     lambda T, o: T.ChainedScheduler([T.LinearLR(o, 0.1, total_iters=5),
                                      T.CosineAnnealingLR(o, 20)])),
]


@pytest.mark.parametrize("ours, theirs", PER_EPOCH_CASES)
def test_per_epoch_values_match_torch(ours, theirs):
    expected = torch_lrs(theirs, 50, 0.37)
    assert len(np.unique(expected)) > 2  # the schedule does change over the 50 epochs
    assert_allclose(ours().values(50, 0.37), expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("ours, theirs", [
    (lambda: S.LinearWarmup(warmup_steps=23, start_factor=0.1),
     lambda T, o: T.LinearLR(o, start_factor=0.1, total_iters=23)),
    (lambda: S.CosineAnnealingLR(30, eta_min=0.01, unit="step"),
     lambda T, o: T.CosineAnnealingLR(o, 30, 0.01)),
    (lambda: S.StepLR(5, gamma=0.5, unit="step"), lambda T, o: T.StepLR(o, 5, 0.5)),
])
def test_per_batch_values_match_torch_stepped_per_batch(ours, theirs):
    n_epochs, n_batches = 8, 7
    expected = torch_lrs(theirs, n_epochs * n_batches, 0.2).reshape(n_epochs, n_batches)
    got = ours().values(n_epochs, 0.2, n_batches=n_batches)
    assert_allclose(got, expected, rtol=1e-12, atol=0)
    assert len(np.unique(got[1])) > 1 or len(np.unique(got[0])) > 1  # it does move in an epoch


# a metric that falls, stalls, creeps down by less than a relative 1e-2 (but more than an
# absolute 1e-3), rises, has a NaN, and falls again, so that patience, cooldown, both threshold
# modes, min_lr and eps all decide something
_LOSSES = [1.0, 0.8, 0.7, 0.7, 0.705, 0.698, 0.696, 0.694, 0.692, 0.69, float("nan"), 0.69,
           0.5, 0.499, 0.4985, 0.498, 0.51, 0.52, 0.3, 0.3, 0.3, 0.2995, 0.299, 0.3, 0.31,
           0.2, 0.2, 0.199, 0.21, 0.22, 0.23, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]


@pytest.mark.parametrize("mode", ["min", "max"])
@pytest.mark.parametrize("kwargs, base_lr", [
    ({}, 0.1),
    ({"patience": 0, "factor": 0.5}, 0.1),
    ({"patience": 2, "factor": 0.5, "cooldown": 2}, 0.1),
    ({"patience": 1, "factor": 0.5, "threshold": 1e-2, "threshold_mode": "rel"}, 0.1),
    ({"patience": 1, "factor": 0.5, "threshold": 1e-3, "threshold_mode": "abs"}, 0.1),
    ({"patience": 0, "factor": 0.5, "min_lr": 0.02, "cooldown": 1}, 0.1),
    ({"patience": 0, "factor": 0.5}, 1e-7),  # eps stops the reductions
    ({"patience": 0, "factor": 0.3, "eps": 1e-3}, 0.1),
])
def test_plateau_matches_torch(mode, kwargs, base_lr):
    metrics = _LOSSES if mode == "min" else [2.0 - x for x in _LOSSES]  # mirrored, positive
    expected = torch_lrs(lambda T, o: T.ReduceLROnPlateau(o, mode=mode, **kwargs),
                         len(metrics), base_lr, metrics=metrics)
    ours = S.ReduceLROnPlateau("loss", mode=mode, **kwargs)
    got = ours.values(len(metrics), base_lr, logs=metrics)
    assert_array_equal(got, expected)  # the same float operations in the same order
    if kwargs:
        assert len(np.unique(expected)) >= 3


def test_plateau_configurations_differ():
    """The torch cases above would not catch a schedule that ignored one of its knobs."""
    def lrs(**kwargs):
        return S.ReduceLROnPlateau("loss", patience=1, factor=0.5, **kwargs).values(
            len(_LOSSES), 0.1, logs=_LOSSES)
    base = lrs()
    for kwargs in ({"cooldown": 2}, {"threshold": 1e-2},
                   {"threshold": 1e-3, "threshold_mode": "abs"}, {"min_lr": 0.02}, {"eps": 0.02}):
        assert not np.array_equal(lrs(**kwargs), base), kwargs


@pytest.mark.parametrize("make, name", [
    (lambda: S.StepLR(10**20), "step_size"),
    (lambda: S.MultiStepLR([5, 10**20]), r"milestones\[1\]"),
    (lambda: S.LinearWarmup(warmup_steps=2**64), "warmup_steps"),
])
def test_counts_beyond_int64_are_refused_naming_the_argument(make, name):
    """They were taken, then fit failed with NumPy's OverflowError after history_ changed."""
    with pytest.raises(ValueError, match=f"^{name} must be a positive int \\(at most 2\\*\\*62\\)"):
        make()
    S.StepLR(2**62).values(3)  # the largest taken works


def test_piecewise_refuses_a_dict_and_values_refuses_a_missing_epoch_of_logs():
    with pytest.raises(ValueError, match="^lrs must be a non-empty sequence"):
        S.PiecewiseLR({0: 0.1})  # was read as lrs [0] and refused as "lrs[0] must be > 0"
    plateau = S.ReduceLROnPlateau(monitor="loss")
    with pytest.raises(TypeError, match=r"^logs\[1\] must be a dict of metrics or a number, "
                                        r"got None"):
        plateau.values(3, logs=[1.0, None, 2.0])
    assert plateau.values(3, logs=[1.0, float("nan"), {"loss": 2.0}]).shape == (3,)


def test_values_refuses_a_batch_count_of_zero_and_logs_that_are_not_a_list():
    schedule = S.StepLR(1, gamma=0.5)
    with pytest.raises(ValueError, match="n_batches"):
        schedule.values(3, n_batches=0)
    with pytest.raises(TypeError, match="^logs must be a list"):
        S.ReduceLROnPlateau("loss").values(3, logs=5)
