"""scikit-learn estimators: scikit-learn's estimator checks, pipelines, grid search, clone and
pickle, the digits, parity with MLPClassifier/MLPRegressor's objective and stopping rule, the
chunked training loop, partial_fit, warm_start, early stopping, weights and errors."""
import copy
import inspect
import os
import math
import pickle
import re
import signal
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

pytest.importorskip("sklearn", minversion="1.6")

from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import (ConvergenceWarning, DataConversionWarning,  # noqa: E402
                                NotFittedError)
from sklearn.model_selection import (GridSearchCV, KFold, cross_val_score,  # noqa: E402
                                     train_test_split)
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.class_weight import compute_sample_weight  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402
from sklearn.utils.validation import check_is_fitted  # noqa: E402

import gdcore as gd  # noqa: E402
from gdcore.models import History, Sequential  # noqa: E402
from gdcore.sklearn import GDClassifier, GDRegressor  # noqa: E402

# Many fits below stop at max_iter on purpose; the warning itself is tested on its own.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def digits_split():
    X, y = gd.datasets.load_digits()
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def blobs(n_samples=120, n_features=6, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(n_classes, n_features))
    y = rng.integers(0, n_classes, size=n_samples)
    return centers[y] + rng.normal(size=(n_samples, n_features)), y


def regression(n_samples=150, n_features=5, n_targets=1, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features))
    Y = np.column_stack([np.sin(X @ rng.normal(size=n_features)) + 0.5 * X[:, k % n_features]
                         for k in range(n_targets)])
    return X, (Y[:, 0] if n_targets == 1 else Y)


def sklearn_stopping_epoch(loss_curve, tol, n_iter_no_change):
    """The epoch (1-based) at which scikit-learn's rule stops on this curve, or None."""
    best, count = np.inf, 0
    for epoch, loss in enumerate(loss_curve, start=1):
        count = count + 1 if loss > best - tol else 0
        best = min(best, loss)
        if count > n_iter_no_change:
            return epoch
    return None


# ------------------------------------------------------------------ scikit-learn's checks
# The default dtype=None computes in float64 for float64 data, as scikit-learn's MLP, and every
# check passes; max_iter=100 is what scikit-learn's own test suite gives its MLPs.
@parametrize_with_checks([GDClassifier(max_iter=100, n_threads=1),
                          GDRegressor(max_iter=100, n_threads=1)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_float32_agrees_with_float64_to_rounding():
    """dtype='float32' fails two of scikit-learn's checks only by float32 rounding (subset
    invariance of predict at atol 1e-7, sample-weight equivalence at rtol 1e-7); this is the
    bound that does hold."""
    X, y = regression()
    pred = {dtype: GDRegressor(hidden_layer_sizes=(16,), max_iter=20, random_state=0,
                               dtype=dtype, n_threads=1).fit(X, y).predict(X)
            for dtype in ("float32", "float64")}
    assert pred["float32"].dtype == np.float64
    assert_allclose(pred["float32"], pred["float64"], rtol=1e-4, atol=1e-5)
    rng = np.random.default_rng(1)
    weights = rng.integers(0, 4, size=len(y))
    model = GDRegressor(hidden_layer_sizes=(16,), max_iter=20, random_state=0, dtype="float32",
                        batch_size=len(y), n_threads=1)
    weighted = clone(model).fit(X, y, sample_weight=weights).predict(X)
    repeated = clone(model).set_params(batch_size=int(weights.sum())).fit(
        np.repeat(X, weights, axis=0), np.repeat(y, weights)).predict(X)
    assert_allclose(weighted, repeated, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ real use
@pytest.mark.parametrize("dtype", [None, "float32"])
def test_digits_pipeline_accuracy(dtype):
    X_train, X_test, y_train, y_test = digits_split()
    pipe = make_pipeline(StandardScaler(), GDClassifier(random_state=0, dtype=dtype, n_threads=1))
    pipe.fit(X_train, y_train)
    clf = pipe[-1]
    assert clf.model_.dtype == np.dtype(dtype or "float64")
    assert pipe.score(X_test, y_test) >= 0.95
    assert 1 <= clf.n_iter_ <= 200 and len(clf.loss_curve_) == clf.n_iter_
    assert clf.loss_curve_[-1] < 0.1 * clf.loss_curve_[0]


def test_grid_search_and_clone():
    X_train, X_test, y_train, y_test = digits_split()
    pipe = make_pipeline(StandardScaler(), GDClassifier(max_iter=60, learning_rate_init=0.01,
                                                        random_state=0, n_threads=1))
    grid = {"gdclassifier__alpha": [1e-4, 1e-1], "gdclassifier__hidden_layer_sizes": [(16,), (48,)]}
    search = GridSearchCV(pipe, grid, cv=2).fit(X_train[:600], y_train[:600])
    assert search.best_score_ > 0.9
    assert search.best_estimator_[-1].hidden_layer_sizes == search.best_params_[
        "gdclassifier__hidden_layer_sizes"]
    assert search.score(X_test, y_test) > 0.9
    twin = clone(search.best_estimator_[-1])
    assert twin.get_params() == search.best_estimator_[-1].get_params()
    assert not hasattr(twin, "model_")


def test_regression_multi_output():
    X, Y = regression(n_samples=300, n_targets=2)
    est = GDRegressor(hidden_layer_sizes=(32,), learning_rate_init=0.01, max_iter=300,
                      random_state=0, n_threads=1).fit(X, Y)
    pred = est.predict(X)
    assert pred.shape == Y.shape and pred.dtype == np.float64 and est.n_outputs_ == 2
    assert est.score(X, Y) > 0.9
    with pytest.warns(DataConversionWarning):
        est.fit(X, Y[:, :1])  # a column vector is a single target, as in scikit-learn
    assert est.predict(X).shape == (300,) and est.n_outputs_ == 1


# ------------------------------------------------------------------ parity with scikit-learn
def _sk_fit(estimator, X, y, sample_weight=None):
    """scikit-learn's MLP fit; sample_weight only where given (its MLPs take it from 1.7 on,
    and the [test] extra allows 1.6, which Python 3.9 gets)."""
    if sample_weight is None:
        return estimator.fit(X, y)
    if "sample_weight" not in inspect.signature(estimator.fit).parameters:
        pytest.skip("this scikit-learn's MLPs take no sample_weight (1.7 or later do)")
    return estimator.fit(X, y, sample_weight=sample_weight)


def _same_start(ours, theirs, X, y, sample_weight=None):
    """Fit both for one epoch with warm_start, then give scikit-learn our weights and our
    record of that epoch (warm_start carries the stopping rule's state over)."""
    ours.fit(X, y, sample_weight=sample_weight)
    _sk_fit(theirs, X, y, sample_weight)
    theirs.coefs_ = [W.copy() for W in ours.coefs_]
    theirs.intercepts_ = [b.copy() for b in ours.intercepts_]
    theirs.loss_curve_, theirs.best_loss_ = list(ours.loss_curve_), ours.best_loss_
    theirs._no_improvement_count = ours._no_improvement_count


PARITY_SOLVERS = [
    dict(solver="sgd", momentum=0.0, learning_rate_init=0.05),
    dict(solver="sgd", momentum=0.9, nesterovs_momentum=True, learning_rate_init=0.01),
    # momentum 0: torch's momentum buffer and scikit-learn's velocity (which holds lr) only
    # agree while lr is constant
    dict(solver="sgd", momentum=0.0, learning_rate_init=0.05, learning_rate="adaptive",
         tol=5e-3, n_iter_no_change=2),
]


@pytest.mark.parametrize("solver", PARITY_SOLVERS, ids=["sgd", "nesterov", "adaptive"])
@pytest.mark.parametrize("task", ["regression", "binary", "multiclass", "weighted"])
def test_sgd_matches_sklearn_mlp(task, solver):
    """Same start, same data order, float64: scikit-learn's SGD trajectory and stopping epoch,
    to rounding. This pins the objective (½·mse, alpha/batch), the binary logistic unit, the
    sample-weight convention, the momentum form and the "adaptive" rule."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(96, 5))
    if task == "regression":
        y = X @ rng.normal(size=5) + 0.1 * rng.normal(size=96)
    elif task == "binary":
        y = np.where(X[:, 0] + 0.3 * X[:, 1] > 0, "yes", "no")
    else:
        y = np.digitize(X[:, 1], [-0.5, 0.5])
    weights = rng.integers(1, 4, size=96).astype(float) if task == "weighted" else None
    Ours, Theirs = (GDRegressor, MLPRegressor) if task == "regression" else (GDClassifier,
                                                                             MLPClassifier)
    # with weights, scikit-learn divides a batch's penalty by the batch's sum of weights and
    # gdcore by batch_size·mean(weight): the same for full batches
    batch_size = 96 if task == "weighted" else 32
    common = dict(hidden_layer_sizes=(7, 6), activation="tanh", alpha=0.01, shuffle=False,
                  batch_size=batch_size, max_iter=1, warm_start=True, random_state=0, **solver)
    ours, theirs = Ours(dtype="float64", **common), Theirs(**common)
    _same_start(ours, theirs, X, y, weights)
    max_iter = 300 if solver.get("learning_rate") == "adaptive" else 8
    ours.set_params(max_iter=max_iter).fit(X, y, sample_weight=weights)
    _sk_fit(theirs.set_params(max_iter=max_iter), X, y, weights)
    assert ours.n_iter_ == theirs.n_iter_
    if max_iter == 300:
        assert ours.n_iter_ < max_iter  # the adaptive rule ran to its end: lr <= 1e-6
    assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert_allclose(a, b, rtol=1e-8, atol=1e-10)


def _sgd_curves(n_samples, batch_size, alpha, weighted=False):
    """Loss curves of GDClassifier and MLPClassifier from the same start (SGD, float64)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n_samples, 5))
    y = np.digitize(X[:, 1], [-0.5, 0.5])
    weights = rng.integers(1, 4, size=n_samples).astype(float) if weighted else None
    common = dict(hidden_layer_sizes=(7, 6), activation="tanh", alpha=alpha, shuffle=False,
                  batch_size=batch_size, max_iter=1, warm_start=True, random_state=0,
                  solver="sgd", momentum=0.0, learning_rate_init=0.05)
    ours, theirs = GDClassifier(dtype="float64", **common), MLPClassifier(**common)
    _same_start(ours, theirs, X, y, weights)
    ours.set_params(max_iter=8).fit(X, y, sample_weight=weights)
    _sk_fit(theirs.set_params(max_iter=8), X, y, weights)
    return np.array(ours.loss_curve_), np.array(theirs.loss_curve_)


@pytest.mark.parametrize("n_samples, batch_size, alpha, weighted, agree", [
    (96, 32, 0.01, False, True),    # every batch full
    (100, 32, 0.0, False, True),    # no penalty
    (96, 32, 0.0, True, True),
    (96, 96, 0.01, True, True),     # one batch: its weight sum is batch_size · mean weight
    (100, 32, 0.01, False, False),  # a short last batch (4 rows): its penalty differs
    (96, 32, 0.01, True, False),    # batches whose weight sums differ from the mean's
])
def test_sgd_parity_with_sklearn_holds_where_the_docstrings_say(n_samples, batch_size, alpha,
                                                                weighted, agree):
    """The docs said the SGD loss curve matches MLPClassifier's to 1e-10 for any alpha; with
    alpha > 0 scikit-learn divides each batch's penalty by that batch's own row count (or
    weight sum), gdcore by one constant: 1.4e-3 apart with a short last batch, 7e-7 with
    weighted mini-batches. The docstrings now say when it holds."""
    ours, theirs = _sgd_curves(n_samples, batch_size, alpha, weighted)
    if agree:
        assert_allclose(ours, theirs, rtol=1e-10)
    else:
        assert np.max(np.abs(ours / theirs - 1)) > 1e-7
    for estimator in (GDClassifier, GDRegressor):
        alpha_doc = estimator.__doc__.split("    alpha : ")[1].split("    batch_size : ")[0]
        notes = estimator.__doc__.split("Notes\n    -----")[1]
        for doc in (alpha_doc, notes):
            text = " ".join(doc.split())
            assert "alpha=0" in text and "multiple of ``batch_size``" in text \
                and "same sum of weights" in text, doc


@pytest.mark.parametrize("estimator", [GDClassifier, GDRegressor])
def test_partial_fit_documents_its_parameters(estimator):
    """GDRegressor.partial_fit had no Parameters section."""
    doc = estimator.partial_fit.__doc__
    assert "Parameters\n        ----------" in doc
    section = doc.split("----------")[1].split("Returns")[0]
    for name in inspect.signature(estimator.partial_fit).parameters:
        if name != "self":
            assert re.search(rf"^        {name} : ", section, re.M), name


def test_adam_matches_sklearn_mlp_up_to_epsilon_placement():
    """torch's Adam adds eps to √v/√(1−β2^t), scikit-learn's to √v: agreement to ~1e-5."""
    X, y = regression(n_samples=96)
    common = dict(hidden_layer_sizes=(8,), alpha=1e-3, shuffle=False, batch_size=32,
                  learning_rate_init=0.01, max_iter=1, warm_start=True, random_state=0)
    ours, theirs = GDRegressor(dtype="float64", **common), MLPRegressor(**common)
    _same_start(ours, theirs, X, y)
    ours.set_params(max_iter=10).fit(X, y)
    theirs.set_params(max_iter=10).fit(X, y)
    assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-4)


def test_multi_output_mse_is_the_mean_over_outputs():
    """scikit-learn reports the mean over outputs but descends their sum (its output delta is
    not divided by n_outputs); gdcore descends the mean. Without a penalty, scikit-learn's SGD
    at lr equals gdcore's at lr·n_outputs."""
    X, Y = regression(n_samples=96, n_targets=3)
    common = dict(hidden_layer_sizes=(8,), alpha=0.0, shuffle=False, batch_size=32,
                  solver="sgd", momentum=0.0, max_iter=1, warm_start=True, random_state=0)
    ours = GDRegressor(dtype="float64", learning_rate_init=0.03, **common)
    theirs = MLPRegressor(learning_rate_init=0.01, **common)
    _same_start(ours, theirs, X, Y)
    ours.set_params(max_iter=5).fit(X, Y)
    theirs.set_params(max_iter=5).fit(X, Y)
    assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)


# ------------------------------------------------------------------ the training loop
def test_fit_runs_chunks_of_epochs_in_c(monkeypatch):
    """One Sequential.fit call per n_iter_no_change + 1 epochs while the loss improves."""
    calls = []
    original = Sequential.fit

    def counting_fit(self, *args, **kwargs):
        calls.append(kwargs["epochs"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Sequential, "fit", counting_fit)
    X, y = blobs()
    est = GDClassifier(hidden_layer_sizes=(16,), max_iter=100, tol=0.0, n_iter_no_change=10,
                       random_state=0, n_threads=1).fit(X, y)
    assert sum(calls) == est.n_iter_ == len(est.loss_curve_)
    assert len(calls) <= math.ceil(est.n_iter_ / 11) + 3
    assert calls[0] == 11


def test_fit_stops_where_sklearn_rule_stops_and_equals_epoch_by_epoch_partial_fit():
    X, y = blobs()
    params = dict(hidden_layer_sizes=(16,), learning_rate_init=0.01, tol=1e-3, n_iter_no_change=3,
                  max_iter=500, shuffle=False, random_state=0, n_threads=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # it converges: no warning
        est = GDClassifier(**params).fit(X, y)
    assert est.n_iter_ < 500
    assert sklearn_stopping_epoch(est.loss_curve_, 1e-3, 3) == est.n_iter_
    # The same epochs one at a time: the chunks never ran past the stopping epoch.
    step = GDClassifier(**params)
    for _ in range(est.n_iter_):
        step.partial_fit(X, y, classes=np.unique(y))
    assert step.n_iter_ == est.n_iter_
    assert_allclose(step.loss_curve_, est.loss_curve_, rtol=0)
    for a, b in zip(step.model_.get_weights(), est.model_.get_weights()):
        assert_array_equal(a, b)


def test_convergence_warning_at_max_iter():
    X, y = blobs()
    with pytest.warns(ConvergenceWarning, match="maximum iterations \\(3\\)"):
        est = GDClassifier(max_iter=3, random_state=0, n_threads=1).fit(X, y)
    assert est.n_iter_ == 3 and est.t_ == 3 * len(y)


def test_early_stopping_keeps_the_best_epoch():
    X, y = blobs(n_samples=200, seed=3)
    params = dict(hidden_layer_sizes=(32,), learning_rate_init=0.02, early_stopping=True,
                  validation_fraction=0.2, random_state=0, n_threads=1)
    est = GDClassifier(max_iter=200, n_iter_no_change=5, **params).fit(X, y)
    assert len(est.validation_scores_) == est.n_iter_ < 200
    assert est.best_validation_score_ == max(est.validation_scores_) and est.best_loss_ is None
    best_epoch = int(np.argmax(est.validation_scores_)) + 1
    assert best_epoch < est.n_iter_  # it trained past the best epoch, then restored it
    # Training stopped at the best epoch: the same weights.
    short = GDClassifier(max_iter=best_epoch, n_iter_no_change=1000, **params).fit(X, y)
    assert_allclose(short.validation_scores_, est.validation_scores_[:best_epoch])
    assert_array_equal(short.decision_function(X), est.decision_function(X))
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        est.partial_fit(X, y)


def test_regressor_early_stopping_scores_are_r2():
    X, y = regression(n_samples=200)
    est = GDRegressor(hidden_layer_sizes=(16,), learning_rate_init=0.01, early_stopping=True,
                      max_iter=50, random_state=0, n_threads=1).fit(X, y)
    assert est.validation_scores_[-1] > 0.5 and est.best_validation_score_ <= 1.0


def test_early_stopping_stratifies_two_classes_only_as_mlpclassifier():
    """MLPClassifier stratifies the validation split for one output column (two classes) only:
    more classes with a one-sample class, or fewer validation samples than classes, fit (they
    raised train_test_split's errors). The errors left name early_stopping/validation_fraction."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 4))
    singleton = np.r_[np.zeros(30, int), np.ones(29, int), [2]]
    ten_classes = np.arange(50) % 10  # 5 validation samples for 10 classes
    for XX, yy in [(X, singleton), (X[:50], ten_classes)]:
        for make in (MLPClassifier, GDClassifier):
            est = make(hidden_layer_sizes=(5,), max_iter=5, early_stopping=True, random_state=0)
            assert len(est.fit(XX, yy).validation_scores_) == 5
    binary_singleton = np.r_[np.zeros(59, int), [1]]  # two classes: stratified, as sklearn
    for est, yy in [(GDClassifier(early_stopping=True, **SMALL), binary_singleton),
                    (GDRegressor(early_stopping=True, **SMALL), X[:1, 0])]:
        with pytest.raises(ValueError, match="early_stopping=True cannot hold out "
                                             "validation_fraction=0.1 of the"):
            est.fit(X[:len(yy)], yy)
        assert vars(est) == vars(clone(est))


def test_adaptive_learning_rate_divides_by_five_until_1e_6():
    X, y = blobs()
    est = GDClassifier(hidden_layer_sizes=(8,), solver="sgd", learning_rate="adaptive",
                       learning_rate_init=0.01, tol=1e-2, n_iter_no_change=2, max_iter=2000,
                       random_state=0, n_threads=1).fit(X, y)
    # replay the rule: each trigger divides lr by 5 while lr > 1e-6, the next one stops
    best, count, lr, epoch_stop = np.inf, 0, 0.01, None
    for epoch, loss in enumerate(est.loss_curve_, start=1):
        count = count + 1 if loss > best - 1e-2 else 0
        best = min(best, loss)
        if count > 2:
            if lr <= 1e-6:
                epoch_stop = epoch
                break
            lr, count = lr / 5, 0
    assert epoch_stop == est.n_iter_
    assert est._learning_rate == pytest.approx(0.01 / 5 ** 6)


@pytest.mark.parametrize("learning_rate", ["invscaling", "cosine",
                                           gd.schedules.ExponentialLR(gamma=0.9)])
def test_schedules_are_used_and_params_untouched(learning_rate):
    X, y = blobs()
    before = repr(learning_rate)
    est = GDClassifier(solver="sgd", learning_rate=learning_rate, max_iter=5, shuffle=False,
                       random_state=0, n_threads=1).fit(X, y)
    constant = GDClassifier(solver="sgd", max_iter=5, shuffle=False, random_state=0,
                            n_threads=1).fit(X, y)
    assert est.loss_curve_[0] == constant.loss_curve_[0]  # the same first epoch
    assert est.loss_curve_[-1] != constant.loss_curve_[-1]
    assert repr(est.learning_rate) == before and est.learning_rate is learning_rate
    if isinstance(learning_rate, gd.schedules.Schedule):
        assert learning_rate.epochs_done == 0  # the estimator ran a copy


def test_val_metric_schedule_needs_early_stopping():
    X, y = blobs()
    plateau = gd.schedules.ReduceLROnPlateau(monitor="val_loss", patience=1)
    with pytest.raises(ValueError, match="early_stopping=True"):
        GDClassifier(learning_rate=plateau, max_iter=3).fit(X, y)
    est = GDClassifier(learning_rate=plateau, early_stopping=True, max_iter=5, random_state=0,
                       n_threads=1).fit(X, y)
    assert est.n_iter_ == 5


def _record_lrs(monkeypatch):
    """The learning rate of every epoch Sequential.fit runs (as SGD gets it), in a list."""
    lrs, original = [], Sequential.fit

    def recording_fit(self, *args, **kwargs):
        history = original(self, *args, **kwargs)
        lrs.extend(history.history["lr"])
        return history

    monkeypatch.setattr(Sequential, "fit", recording_fit)
    return lrs


@pytest.mark.parametrize("early_stopping", [False, True])
@pytest.mark.parametrize("learning_rate, unit", [
    ("cosine", "epoch"), (gd.schedules.CosineAnnealingLR(unit="step"), "step"),
    (gd.schedules.LinearWarmup("cosine", warmup_epochs=1, start_factor=1.0), "epoch")])
def test_cosine_with_t_max_none_anneals_over_the_whole_fit(monkeypatch, learning_rate, unit,
                                                           early_stopping):
    """fit runs in chunks of Sequential.fit calls (11 epochs here, 1 with early stopping): the
    cosine anneals over max_iter epochs, not over the first chunk (it reached 0 at epoch 11,
    or alternated lr, 0, lr, 0 with early stopping). partial_fit, of unknown length, refuses
    it, naming learning_rate, and changes nothing."""
    lrs = _record_lrs(monkeypatch)
    X, y = X40, X40 @ [1.0, 2.0, -1.0]
    GDRegressor(hidden_layer_sizes=(4,), solver="sgd", learning_rate=learning_rate,
                learning_rate_init=0.01, batch_size=10, max_iter=30, tol=0.0,
                early_stopping=early_stopping, random_state=0, n_threads=1).fit(X, y)
    n_batches = 4 if unit == "epoch" else (36 if early_stopping else 40) // 10
    t = np.arange(30) * n_batches  # the first batch of each epoch
    expected = 0.01 * (1 + np.cos(np.pi * t / (30 * n_batches))) / 2
    assert_allclose(np.array(lrs) / 0.5, expected, rtol=1e-12, atol=1e-18)  # ½ of mse: s=0.5
    est = GDRegressor(solver="sgd", learning_rate=learning_rate, **SMALL)
    with pytest.raises(ValueError, match="learning_rate=.*T_max=None.*partial_fit.*T_max"):
        est.partial_fit(X, y)
    assert sorted(vars(est)) == sorted(vars(clone(est)))  # no fitted attribute set
    est.set_params(learning_rate=gd.schedules.CosineAnnealingLR(T_max=5)).partial_fit(X, y)
    # after a fit the running cosine has its length: partial_fit continues it
    fitted = GDRegressor(solver="sgd", learning_rate=learning_rate, **SMALL).fit(X, y)
    fitted.partial_fit(X, y)
    assert fitted.n_iter_ == SMALL["max_iter"] + 1


@pytest.mark.parametrize("learning_rate", ["adaptive", "invscaling", "cosine",
                                           gd.schedules.StepLR(2, gamma=0.1)])
def test_an_sgd_regressor_pickled_with_its_factor_in_the_lr_continues_as_before(learning_rate):
    """Estimators pickled before the factor s of scikit-learn's objective moved from SGD's lr
    into the schedule's output (_Scaled) are migrated on load: "adaptive" divides the rate
    keeping the factor (it dropped it, training at twice the rate), and a running schedule goes
    on where it was (the migration first reset it)."""
    X, y = X40, X40 @ [1.0, 2.0, -1.0]
    params = dict(hidden_layer_sizes=(4,), solver="sgd", learning_rate=learning_rate,
                  learning_rate_init=0.01, max_iter=5, n_iter_no_change=1, tol=1e9,
                  random_state=0, n_threads=1, dtype="float64")
    current = GDRegressor(**params).fit(X, y)
    old = pickle.loads(pickle.dumps(current))
    # the former layout: the factor in the optimizer's lr, the schedule unwrapped
    old._optimizer.lr, old._schedule = old._optimizer.lr * 0.5, old._schedule.schedule
    migrated = pickle.loads(pickle.dumps(old))
    assert type(migrated._schedule).__name__ == "_Scaled"
    for est in (current, migrated):
        for _ in range(3):
            est.partial_fit(X, y)
    assert_array_equal(migrated.loss_curve_, current.loss_curve_)
    assert migrated._optimizer.lr == current._optimizer.lr


def test_invscaling_counts_t_over_warm_started_fits_as_sklearn():
    """scikit-learn's "invscaling" keeps counting t_ (samples seen) over warm-started fits, each
    fit's fresh optimizer running its first epoch at learning_rate_init: the same losses to
    rounding (the clock restarted at t=0: 2e-2 off in the second fit)."""
    rng = np.random.RandomState(0)
    X = rng.randn(30, 3)
    y = X @ [1.0, 2.0, -1.0] + 0.1 * rng.randn(30)
    common = dict(hidden_layer_sizes=(4,), solver="sgd", learning_rate="invscaling",
                  learning_rate_init=0.05, power_t=0.5, momentum=0.0, batch_size=30,
                  shuffle=False, alpha=0.0, tol=0.0, n_iter_no_change=1000, warm_start=True,
                  random_state=0, max_iter=1)
    ours, theirs = GDRegressor(dtype="float64", n_threads=1, **common), MLPRegressor(**common)
    _same_start(ours, theirs, X, y)
    ours.t_ = theirs.t_ = 0
    ours.loss_curve_, theirs.loss_curve_ = [], []
    for _ in range(2):
        ours.set_params(max_iter=4).fit(X, y)
        theirs.set_params(max_iter=4).fit(X, y)
        assert ours.t_ == theirs.t_
    assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-14, atol=0)
    ours.partial_fit(X, y)  # continues the clock too
    theirs.partial_fit(X, y)
    assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-14, atol=0)


def test_sgd_schedule_values_are_learning_rates_of_sklearns_objective(monkeypatch):
    """The ½ of squared error is folded into SGD's learning rates after the schedule: the
    absolute values a schedule gives (PiecewiseLR's lrs, eta_min, min_lr) are learning rates in
    the user's units, as learning_rate_init (PiecewiseLR([0.01]) trained as constant 0.02)."""
    X, y = X40, X40 @ [1.0, 2.0, -1.0] + 0.1 * np.random.RandomState(0).randn(40)
    params = dict(hidden_layer_sizes=(4,), solver="sgd", momentum=0.0, batch_size=10,
                  shuffle=False, alpha=0.0, max_iter=5, tol=0.0, random_state=0,
                  dtype="float64", n_threads=1)

    def curve(**extra):
        return GDRegressor(**params, **extra).fit(X, y).loss_curve_

    constant = curve(learning_rate_init=0.01)
    assert curve(learning_rate=gd.schedules.PiecewiseLR([0.01])) == constant
    assert curve(learning_rate=gd.schedules.CosineAnnealingLR(5, eta_min=0.01),
                 learning_rate_init=0.01) == constant
    assert curve(learning_rate_init=0.02) != constant
    lrs = _record_lrs(monkeypatch)  # ReduceLROnPlateau halves 0.04 down to min_lr=0.01
    plateau = gd.schedules.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0,
                                             threshold=1.0, min_lr=0.01)
    curve(learning_rate=plateau, learning_rate_init=0.04)
    assert_allclose(np.array(lrs) / 0.5, [0.04, 0.02, 0.01, 0.01, 0.01], rtol=1e-15)


def test_learning_rate_names_are_lowercase_as_sklearns():
    """scikit-learn refuses "Invscaling"; gdcore gave gdcore's per-epoch InverseTimeLR for it
    (power_t ignored) but refused "Adaptive". Every name is lowercase now."""
    X, y = X40, X40[:, 0]
    with pytest.raises(ValueError, match="learning_rate"):
        MLPRegressor(learning_rate="Invscaling").fit(X, y)
    for name in ("Invscaling", "Adaptive", "CONSTANT", "Cosine"):
        est = GDRegressor(learning_rate=name, **SMALL)
        with pytest.raises(ValueError, match=f"learning_rate .*lowercase.*got '{name}'"):
            est.fit(X, y)
        assert vars(est) == vars(clone(est))


# ------------------------------------------------------------------ partial_fit, warm_start
def test_partial_fit_classes_and_counters():
    X, y = blobs()
    labels = np.array(["a", "b", "c"])[y]
    est = GDClassifier(hidden_layer_sizes=(8,), random_state=0, n_threads=1)
    with pytest.raises(ValueError, match="classes must be passed"):
        est.partial_fit(X, labels)
    est.partial_fit(X[:50], labels[:50], classes=["a", "b", "c", "d"])
    est.partial_fit(X[50:], labels[50:])
    assert_array_equal(est.classes_, ["a", "b", "c", "d"])
    assert est.n_iter_ == 2 and est.t_ == len(y) and est.n_outputs_ == 4
    with pytest.raises(ValueError, match="not in `self.classes_`"):
        est.partial_fit(X[:5], ["z"] * 5)
    with pytest.raises(ValueError, match="not the same"):
        est.partial_fit(X[:5], labels[:5], classes=["a", "b"])
    with pytest.raises(ValueError, match="features"):
        est.partial_fit(X[:, :3], labels)


def test_warm_start_continues_and_checks_classes():
    X, y = blobs()
    est = GDClassifier(hidden_layer_sizes=(8,), learning_rate_init=0.01, max_iter=20,
                       warm_start=True, random_state=0, n_threads=1).fit(X, y)
    first = list(est.loss_curve_)
    weights = est.model_.get_weights()
    est.fit(X, y)
    assert est.n_iter_ == 20 and est.loss_curve_[:20] == first and len(est.loss_curve_) == 40
    assert first[-1] < first[0] / 2
    assert est.loss_curve_[20] < 1.1 * first[-1]  # it started from the trained weights
    assert not np.array_equal(weights[0], est.model_.get_weights()[0])
    with pytest.raises(ValueError, match="same classes"):
        est.fit(X[y < 2], y[y < 2])
    with pytest.raises(ValueError, match="cannot change"):
        est.set_params(hidden_layer_sizes=(9,)).fit(X, y)
    cold = est.set_params(warm_start=False).fit(X, y)
    assert cold.n_iter_ == 20 and len(cold.loss_curve_) == 20


def test_pickle_keeps_optimizer_and_schedule_state():
    X, y = regression()
    est = GDRegressor(hidden_layer_sizes=(8,), solver="adam", random_state=0, n_threads=1,
                      learning_rate=gd.schedules.ExponentialLR(gamma=0.8))
    for _ in range(3):
        est.partial_fit(X, y)
    twin = pickle.loads(pickle.dumps(est))
    assert_array_equal(twin.predict(X), est.predict(X))
    est.partial_fit(X, y)
    twin.partial_fit(X, y)
    assert twin.loss_curve_ == est.loss_curve_  # same Adam moments and learning rate
    assert_array_equal(twin.predict(X), est.predict(X))


# ------------------------------------------------------------------ classifier outputs, weights
def test_probabilities_decision_and_hinge():
    X, y = blobs()
    multi = GDClassifier(max_iter=30, random_state=0, n_threads=1).fit(X, y)
    decision, proba = multi.decision_function(X), multi.predict_proba(X)
    expected = np.exp(decision - decision.max(axis=1, keepdims=True))
    assert_allclose(proba, expected / expected.sum(axis=1, keepdims=True), rtol=1e-12)
    assert_allclose(multi.predict_log_proba(X), np.log(proba), rtol=1e-12)
    assert_array_equal(multi.predict(X), multi.classes_[decision.argmax(axis=1)])
    binary = GDClassifier(max_iter=30, random_state=0, n_threads=1).fit(X[y < 2], y[y < 2])
    assert binary.n_outputs_ == 1
    d = binary.decision_function(X)
    assert d.shape == (len(X),)
    assert_allclose(binary.predict_proba(X)[:, 1], 1 / (1 + np.exp(-d)), rtol=1e-12)
    hinge = GDClassifier(loss="hinge", max_iter=50, random_state=0, n_threads=1).fit(X[y < 2],
                                                                                    y[y < 2])
    assert not hasattr(hinge, "predict_proba") and hinge.n_outputs_ == 2
    assert_array_equal(hinge.predict(X), (hinge.decision_function(X) > 0).astype(int))
    assert hinge.score(X[y < 2], y[y < 2]) > 0.95


def test_class_weight_is_a_per_class_sample_weight():
    X, y = blobs()
    labels = np.array(["ant", "bee", "cat"])[y]
    params = dict(hidden_layer_sizes=(8,), max_iter=10, random_state=0, n_threads=1)
    for class_weight in ({"ant": 3.0, "cat": 0.5}, "balanced"):
        by_class = GDClassifier(class_weight=class_weight, **params).fit(X, labels)
        by_sample = GDClassifier(**params).fit(
            X, labels, sample_weight=compute_sample_weight(class_weight, labels))
        assert_array_equal(by_class.decision_function(X), by_sample.decision_function(X))
    unweighted = GDClassifier(**params).fit(X, labels)
    assert not np.array_equal(unweighted.decision_function(X), by_class.decision_function(X))
    with pytest.raises(ValueError, match="balanced"):
        GDClassifier(class_weight="balanced").partial_fit(X, labels, classes=["ant", "bee", "cat"])


def test_class_weight_may_name_classes_absent_from_the_data():
    """compute_class_weight's rule: a key that is no class of the data is ignored when every
    class has a weight, so a cross-validation fold without a rare class fits (it failed)."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 3))
    y = np.r_[np.zeros(30, int), np.ones(28, int), [2, 2]]  # class 2 is rare
    params = dict(hidden_layer_sizes=(4,), max_iter=5, random_state=0, n_threads=1)
    extra = GDClassifier(class_weight={0: 1.0, 1: 3.0, 2: 10.0}, **params).fit(X[:58], y[:58])
    exact = GDClassifier(class_weight={0: 1.0, 1: 3.0}, **params).fit(X[:58], y[:58])
    assert_array_equal(extra.decision_function(X), exact.decision_function(X))
    scores = cross_val_score(GDClassifier(class_weight={0: 1.0, 1: 1.0, 2: 10.0}, **params),
                             X, y, cv=KFold(3), error_score="raise")
    assert np.isfinite(scores).all()
    with pytest.raises(ValueError, match=r"\[1\], are not in class_weight"):  # 1 lacks one
        GDClassifier(class_weight={0: 1.0, 2: 10.0}, **params).fit(X[:58], y[:58])
    with pytest.raises(ValueError, match=r"class_weight\[2\] must be >= 0"):  # checked all the same
        GDClassifier(class_weight={0: 1.0, 1: 1.0, 2: -1.0}, **params).fit(X[:58], y[:58])


def test_balanced_class_weight_counts_classes_with_sample_weight():
    """scikit-learn counts the classes of "balanced" with sample_weight (LogisticRegression,
    compute_class_weight(..., sample_weight=)): integer weights are repeated rows."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] > 0.3).astype(int)
    sw = np.where(y == 1, 3, 1).astype(float)
    params = dict(hidden_layer_sizes=(4,), solver="sgd", shuffle=False,  # full batches
                  max_iter=20, random_state=0, n_threads=1, class_weight="balanced")
    weighted = GDClassifier(**params).fit(X, y, sample_weight=sw).predict_proba(X)
    repeated = GDClassifier(**params).fit(np.repeat(X, 3 * y + 1 - y, axis=0),
                                          np.repeat(y, 3 * y + 1 - y)).predict_proba(X)
    assert_allclose(weighted, repeated, rtol=1e-9)  # 2e-2 apart when counted without weights
    # a class whose samples all weigh 0 adds nothing (no 0 · inf)
    zeroed = GDClassifier(**params).fit(X, y, sample_weight=np.where(y == 1, 0.0, 1.0))
    assert np.isfinite(zeroed.loss_curve_).all()


def test_results_do_not_depend_on_thread_count():
    X, y = blobs(n_samples=300, n_features=20)
    preds = [GDClassifier(hidden_layer_sizes=(64,), batch_size=100, max_iter=5, random_state=0,
                          n_threads=n).fit(X, y).decision_function(X) for n in (1, 2)]
    assert_array_equal(preds[0], preds[1])


def test_verbose_prints_sklearn_style(capsys):
    X, y = blobs()
    GDClassifier(max_iter=2, verbose=True, random_state=0, n_threads=1).fit(X, y)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Iteration 1, loss = ") and out[1].startswith("Iteration 2, loss = ")


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("params, match", [
    (dict(hidden_layer_sizes=(0,)), "hidden_layer_sizes"),
    (dict(activation="softmax"), "activation"),
    (dict(solver="lbfgs"), "solver"),
    (dict(alpha=-1.0), "alpha"),
    (dict(batch_size=0), "batch_size"),
    (dict(learning_rate="bogus"), "learning_rate"),
    (dict(learning_rate_init=0.0), "learning_rate_init"),
    (dict(max_iter=0), "max_iter"),
    (dict(validation_fraction=1.0), "validation_fraction"),
    (dict(momentum=1.0, solver="sgd"), "momentum"),
    (dict(dtype="int32"), "dtype"),
    (dict(loss="mse"), "loss"),
    (dict(n_threads=0), "n_threads"),
    (dict(class_weight="often"), "class_weight"),
])
def test_bad_parameters_raise_in_fit_not_init(params, match):
    X, y = blobs(n_samples=20)
    est = GDClassifier(**params)  # storing never raises
    with pytest.raises(ValueError, match=match):
        est.fit(X, y)


def test_regressor_bad_loss_and_divergence():
    X, y = regression(n_samples=50)
    with pytest.raises(ValueError, match="loss"):
        GDRegressor(loss="cross_entropy").fit(X, y)
    with pytest.raises(ValueError, match="diverged"):
        GDRegressor(solver="sgd", learning_rate_init=1e4, max_iter=50, random_state=0,
                    n_threads=1).fit(X * 1e3, y * 1e3)


def test_one_class_is_refused_with_sklearns_wording():
    with pytest.raises(ValueError, match="1 class"):
        GDClassifier().fit(np.ones((5, 2)), ["a"] * 5)


def fitted_state(est):
    """Copies of the fitted attributes (private ones included) and of the weights, and the
    network, optimizer and schedule objects themselves (a refused fit must not replace them)."""
    objects = ("model_", "_optimizer", "_schedule")
    attributes = {name: copy.deepcopy(value) for name, value in vars(est).items()
                  if (name.endswith("_") or name.startswith("_")) and name not in objects}
    return attributes, est.model_.get_weights(), [getattr(est, name) for name in objects]


SMALL = dict(hidden_layer_sizes=(4,), max_iter=5, random_state=0, n_threads=1)
X40 = np.random.default_rng(0).normal(size=(40, 3))
ABCD, XY, SIGN = np.array(list("abcd") * 10), np.array(list("xy") * 20), X40[:, 0] > 0
ZERO_BUT_6 = np.isin(np.arange(40), [5, 13, 18, 22, 24, 30]).astype(float)  # validation: all 0
Y_1E39 = np.where(np.arange(40) == 0, 1e39, X40[:, 0])  # finite, but inf in float32
REFUSED_REFITS = {  # name: (estimator, first fit's y, refit's (params, X, y, sample_weight))
    "too_many_layers": (GDClassifier, ABCD, (dict(hidden_layer_sizes=(1,) * 100), X40, XY,
                                             None)),
    "one_class": (GDClassifier, ABCD, ({}, X40[:, :2], XY[:1].repeat(40), None)),
    "negative_class_weight": (GDClassifier, ABCD, (dict(class_weight={"a": -0.5, "b": 1}), X40,
                                                   ABCD, None)),
    "unknown_class_weight": (GDClassifier, ABCD, (dict(class_weight={"z": 1.0}), X40, ABCD,
                                                  None)),
    "tiny_sample_weight": (GDClassifier, ABCD, ({}, X40, ABCD, np.full(40, 1e-320))),
    "zero_weight_validation": (GDClassifier, SIGN, (dict(early_stopping=True, random_state=1),
                                                    X40, SIGN, ZERO_BUT_6)),
    "features_and_weights": (GDRegressor, X40[:, 0], ({}, X40[:, :2], X40[:, 0], -np.ones(40))),
    "regressor_zero_weight_validation": (GDRegressor, X40[:, 0], (
        dict(early_stopping=True, random_state=1), X40, X40[:, 0], ZERO_BUT_6)),
    # y finite in float64 but beyond float32, the new network's dtype (dtype, or float32 X)
    "regressor_y_beyond_float32": (GDRegressor, X40[:, 0], (dict(dtype="float32"), X40,
                                                            Y_1E39, None)),
    "regressor_y_beyond_float32_X": (GDRegressor, X40[:, 0], ({}, X40.astype(np.float32),
                                                              Y_1E39, None)),
    # each weight finite, their sum not
    "weights_sum_overflows": (GDClassifier, ABCD, ({}, X40, ABCD, np.full(40, 1e308))),
    "regressor_weights_sum_overflows": (GDRegressor, X40[:, 0], ({}, X40, X40[:, 0],
                                                                 np.full(40, 1e308))),
    "learning_rate_not_lowercase": (GDRegressor, X40[:, 0], (dict(learning_rate="Invscaling"),
                                                              X40, X40[:, 0], None)),
    "binary_one_sample_class_split": (GDClassifier, SIGN, (dict(early_stopping=True), X40,
                                                           np.arange(40) == 0, None)),
    "regressor_monitors_accuracy": (GDRegressor, X40[:, 0], (
        dict(learning_rate=gd.schedules.ReduceLROnPlateau(monitor="accuracy")), X40, X40[:, 0],
        None)),
}


@pytest.mark.parametrize("case", list(REFUSED_REFITS))
def test_refused_fit_leaves_the_estimator_as_it_was(case):
    """Every check (data, labels, weights, building the network) runs before the estimator
    changes: a refused refit keeps n_features_in_, classes_, the counters and the network."""
    make, first_y, (params, X, y, sample_weight) = REFUSED_REFITS[case]
    est = make(**SMALL).fit(X40, first_y)
    before = fitted_state(est)
    prediction = est.predict(X40)
    with pytest.raises(ValueError):
        est.set_params(**params).fit(X, y, sample_weight=sample_weight)
    after = fitted_state(est)
    np.testing.assert_equal(after[:2], before[:2])
    assert all(a is b for a, b in zip(after[2], before[2]))
    assert_array_equal(est.predict(X40), prediction)


def test_refused_first_fit_and_partial_fit_change_nothing():
    X, y = blobs(n_samples=40, n_features=3)
    est = GDClassifier(**SMALL)
    with pytest.raises(ValueError, match="1 class"):
        est.fit(X, np.zeros(40))
    assert vars(est) == vars(GDClassifier(**SMALL))  # not even n_features_in_
    est.partial_fit(X, y, classes=[0, 1, 2])
    before = fitted_state(est)
    with pytest.raises(ValueError, match="class_weight"):
        est.set_params(class_weight={0: np.inf}).partial_fit(X, y)
    with pytest.raises(ValueError, match="features"):
        est.set_params(class_weight=None).partial_fit(X[:, :2], y)
    after = fitted_state(est)
    np.testing.assert_equal(after[:2], before[:2])
    assert all(a is b for a, b in zip(after[2], before[2]))


def test_class_weight_values_and_keys_are_checked_naming_class_weight():
    X, y = blobs(n_samples=40)
    labels = np.array(["ant", "bee", "cat"])[y]
    for class_weight, match in [({"ant": -0.5}, r"class_weight\['ant'\] must be >= 0"),
                                ({"ant": np.nan}, r"class_weight\['ant'\] must be a finite"),
                                ({"ant": "x"}, r"class_weight\['ant'\]"),
                                # no class has a weight and 'dog' is none (compute_class_weight)
                                ({"dog": 1.0}, r"'cat'\], are not in class_weight")]:
        with pytest.raises(ValueError, match=match):
            GDClassifier(class_weight=class_weight, **SMALL).fit(X, labels)
    zero = GDClassifier(class_weight={"ant": 0.0}, **SMALL).fit(X, labels)  # 0 is allowed
    assert zero.n_iter_ == SMALL["max_iter"]


@pytest.mark.parametrize("how", ["fit", "warm_start", "partial_fit"])
def test_refused_y_or_weights_leave_a_float32_network_as_it_was(how):
    """y beyond float32 and weights whose sum overflows are refused, naming y or sample_weight,
    before the estimator changes (Sequential.fit would refuse them only after the reset)."""
    for make, y in [(GDRegressor, X40[:, 0]), (GDClassifier, ABCD)]:
        est = make(**dict(SMALL, dtype="float32")).fit(X40, y)
        before, prediction = fitted_state(est), est.predict(X40)
        refit = est.partial_fit if how == "partial_fit" else \
            est.set_params(warm_start=how == "warm_start").fit
        refusals = [(dict(sample_weight=np.full(40, 1e308)), "sample_weight sums to infinity")]
        if make is GDRegressor:
            refusals.append(({}, r"y holds 1e\+39, beyond the range of float32"))
        for kwargs, match in refusals:
            with pytest.raises(ValueError, match=match):
                refit(X40, Y_1E39 if "sample_weight" not in kwargs else y, **kwargs)
            after = fitted_state(est)
            np.testing.assert_equal(after[:2], before[:2])
            assert all(a is b for a, b in zip(after[2], before[2]))
            assert_array_equal(est.predict(X40), prediction)


def test_refused_first_partial_fit_leaves_the_estimator_unfitted():
    """A first partial_fit refused for y beyond float32 or weights summing to infinity sets
    nothing: the estimator is not fitted (it used to predict with an untrained network)."""
    for est, y, kwargs in [
            (GDRegressor(**dict(SMALL, dtype="float32")), Y_1E39, {}),
            (GDRegressor(**SMALL), X40[:, 0], dict(sample_weight=np.full(40, 1e308))),
            (GDClassifier(**SMALL), ABCD, dict(classes=list("abcd"),
                                               sample_weight=np.full(40, 1e308)))]:
        with pytest.raises(ValueError, match="y holds|sample_weight sums"):
            est.partial_fit(X40, y, **kwargs)
        assert vars(est) == vars(clone(est))
        with pytest.raises(NotFittedError):
            check_is_fitted(est)


def test_schedule_monitoring_a_missing_log_is_refused_naming_learning_rate():
    plateau = gd.schedules.ReduceLROnPlateau
    for est, y, monitor in [(GDRegressor(**SMALL), X40[:, 0], "accuracy"),
                            (GDRegressor(**SMALL, early_stopping=True), X40[:, 0], "val_accuracy"),
                            (GDClassifier(**SMALL), ABCD, "val_loss_typo")]:
        with pytest.raises(ValueError, match=f"learning_rate monitors '{monitor}'"):
            est.set_params(learning_rate=plateau(monitor=monitor)).fit(X40, y)
        assert not hasattr(est, "model_")
    GDClassifier(**SMALL, learning_rate=plateau(monitor="accuracy")).fit(X40, ABCD)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_tiny_sample_weights_are_as_good_as_equal_ones(dtype):
    """The weighted mean loss does not depend on a common factor of the weights, however small
    (the model's dtype would flush them to zero); with alpha > 0, scikit-learn's penalty divided
    by their sum overflows and the fit is refused, naming sample_weight."""
    X, y = regression(n_samples=40)
    params = dict(SMALL, alpha=0.0, dtype=dtype)
    plain = GDRegressor(**params).fit(X, y)
    for weight in (1e-320, 1e-50, 1e300):
        tiny = GDRegressor(**params).fit(X, y, sample_weight=np.full(40, weight))
        assert_allclose(tiny.loss_curve_, plain.loss_curve_, rtol=1e-6 if dtype == "float32"
                        else 1e-12)
    with pytest.raises(ValueError, match="sample_weight is too small for alpha"):
        GDRegressor(**dict(params, alpha=1e-4)).fit(X, y, sample_weight=np.full(40, 1e-320))


def test_early_stopping_refuses_a_validation_split_of_zero_weights():
    """The validation score is weighted by sample_weight: with only zero weights in the split it
    is undefined (scikit-learn's r2_score raises; accuracy would be 0.0 every epoch)."""
    params = dict(SMALL, early_stopping=True, random_state=1, n_iter_no_change=3)
    for est, y in [(GDRegressor(**params), X40[:, 0]), (GDClassifier(**params), SIGN)]:
        with pytest.raises(ValueError, match="validation split weight zero.*validation_fraction"):
            est.fit(X40, y, sample_weight=ZERO_BUT_6)
        assert not hasattr(est, "model_")
        est.fit(X40, y, sample_weight=ZERO_BUT_6 + 0.5)  # the same split, now weighted
        assert len(est.validation_scores_) == est.n_iter_ >= 1


def test_import_gdcore_does_not_need_sklearn():
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "import gdcore\n"
            "assert 'gdcore.sklearn' not in sys.modules\n"
            "try:\n    import gdcore.sklearn\nexcept ImportError as exc:\n"
            "    assert 'scikit-learn' in str(exc), exc\nelse:\n    raise SystemExit('imported')\n")
    # not from the repository root, where the uncompiled source folder would shadow gdcore
    subprocess.run([sys.executable, "-c", code], check=True, cwd=os.path.dirname(__file__))


def test_equal_sample_weights_are_no_weights():
    """Equal weights leave each batch's weighted mean loss as the plain mean (to the bit); the
    penalty, divided by the batch's sum of weights as in scikit-learn, is what they change."""
    X, y = blobs()
    params = dict(hidden_layer_sizes=(16,), max_iter=10, random_state=0, dtype="float32",
                  n_threads=1)
    plain = GDClassifier(alpha=0.0, **params).fit(X, y).decision_function(X)
    threes = GDClassifier(alpha=0.0, **params).fit(X, y, sample_weight=np.full(len(y), 3.0))
    assert_array_equal(threes.decision_function(X), plain)
    heavy = GDClassifier(alpha=1.0, **params).fit(X, y, sample_weight=np.full(len(y), 3.0))
    light = GDClassifier(alpha=1.0 / 3.0, **params).fit(X, y)
    assert_allclose(heavy.decision_function(X), light.decision_function(X), rtol=1e-5)


@pytest.mark.parametrize("name, optimizer", [
    ("sgd", gd.optim.SGD(lr=0.02, momentum=0.9, nesterov=True)),
    ("adam", gd.optim.Adam(lr=0.01)),
    ("rmsprop", gd.optim.RMSprop(lr=0.01)),
    ("adagrad", gd.optim.Adagrad(lr=0.1, eps=1e-8)),
])
def test_optimizer_object_is_the_named_solver(name, optimizer):
    """An Optimizer object as solver gets the same treatment as the name (the ½ of mse folded
    into it) and is not changed by fit."""
    X, y = regression()
    params = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0, n_threads=1)
    lr = optimizer.lr
    by_object = GDRegressor(solver=optimizer, **params).fit(X, y)
    by_name = GDRegressor(solver=name, learning_rate_init=lr, **params).fit(X, y)
    assert by_object.loss_curve_ == by_name.loss_curve_
    assert optimizer.lr == lr and optimizer.state == {}


def test_ctrl_c_ends_training_like_sklearn(monkeypatch):
    """Ctrl-C during fit (gdcore raises KeyboardInterrupt between two batches, its history
    holding the finished epochs) ends training with a warning, as scikit-learn's MLP does."""
    original = Sequential.fit

    def interrupted_fit(self, *args, **kwargs):
        original(self, *args, **{**kwargs, "epochs": 2})
        raise KeyboardInterrupt

    X, y = blobs()
    monkeypatch.setattr(Sequential, "fit", interrupted_fit)
    with pytest.warns(UserWarning, match="interrupted"):
        est = GDClassifier(max_iter=50, random_state=0, n_threads=1).fit(X, y)
    assert est.n_iter_ == 2 and len(est.loss_curve_) == 2  # the epochs gdcore finished


def test_ctrl_c_in_the_first_epoch_of_a_chunk_ends_training_like_sklearn(monkeypatch):
    """Interrupted before any epoch of the call finished, the history is empty: fit read
    history["loss"] and raised KeyError instead of ending with scikit-learn's warning."""
    original = Sequential.fit
    calls = []

    def fit_then_interrupt_the_second_call(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            self.history_ = History()  # as fit leaves it when Ctrl-C comes in its first epoch
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    X, y = blobs()
    monkeypatch.setattr(Sequential, "fit", fit_then_interrupt_the_second_call)
    with pytest.warns(UserWarning, match="interrupted"):
        est = GDClassifier(max_iter=50, early_stopping=True, random_state=0, n_threads=1).fit(X, y)
    assert est.n_iter_ == 1 and len(est.loss_curve_) == len(est.validation_scores_) == 1


def test_ctrl_c_while_an_epoch_is_scored_records_it_whole(monkeypatch):
    """A SIGINT during early stopping's validation scoring (outside gdcore's fit) escaped as a
    bare KeyboardInterrupt, with n_iter_ counted but no validation score for that epoch."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    original = GDClassifier._update_no_improvement_count
    calls = []

    def score_then_sigint(self, *args):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, *args)

    X, y = blobs()
    monkeypatch.setattr(GDClassifier, "_update_no_improvement_count", score_then_sigint)
    with pytest.warns(UserWarning, match="interrupted"):
        est = GDClassifier(max_iter=50, early_stopping=True, random_state=0, n_threads=1).fit(X, y)
    assert est.n_iter_ == 2 and len(est.loss_curve_) == len(est.validation_scores_) == 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_before_a_chunks_fit_starts_does_not_record_the_last_chunk_again(monkeypatch):
    """Interrupted while fit still checked its input, history_ was the previous chunk's, and
    its epochs were recorded a second time (n_iter_ 8 for 4 epochs trained)."""
    original = Sequential.fit
    calls = []

    def fit_interrupted_while_checking_on_the_second_call(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # before fit replaced history_
        return original(self, *args, **kwargs)

    X, y = blobs()
    monkeypatch.setattr(Sequential, "fit", fit_interrupted_while_checking_on_the_second_call)
    with pytest.warns(UserWarning, match="interrupted"):
        est = GDClassifier(max_iter=50, n_iter_no_change=3, random_state=0, n_threads=1).fit(X, y)
    assert est.n_iter_ == 4 and len(est.loss_curve_) == 4  # the first chunk: n_iter_no_change + 1
