"""scikit-learn estimators: ``GDClassifier`` and ``GDRegressor``.

Multilayer perceptrons with the parameters, fitted attributes and behaviour of scikit-learn's
``MLPClassifier``/``MLPRegressor`` (stochastic solvers), trained by gdcore's C core. They pass
``sklearn.utils.estimator_checks`` and work in pipelines, grid searches, ``clone`` and pickle.

This module imports scikit-learn (>= 1.6); ``import gdcore`` does not import this module.

How training runs
-----------------
Every epoch runs in C through ``Sequential.fit``. The estimator calls it once per *chunk* of
epochs, not once per epoch: scikit-learn's stopping rule ("the loss did not improve by ``tol``
for ``n_iter_no_change`` consecutive epochs") can first fire ``n_iter_no_change + 1 - count``
epochs ahead, where ``count`` is the current number of epochs without improvement, so a chunk of
exactly that many epochs never runs past the epoch where scikit-learn would stop. The rule is
then applied to each epoch's loss from the chunk's history. The result is epoch-for-epoch what a
per-epoch loop gives, with typically one Python call per ``n_iter_no_change + 1`` epochs. With
``early_stopping=True`` the weights of the best validation epoch must be kept, so chunks are one
epoch long (one ``Sequential.fit`` call, about 50 microseconds of Python, plus the validation
forward pass per epoch).

The objective and scikit-learn's
--------------------------------
Each mini-batch minimizes ``s·loss + ½·alpha·‖W‖² / batch_weight`` where ``‖W‖²`` sums the
squared weights of every layer (not the biases), ``batch_weight`` is the number of rows in the
batch (the sum of their weights with ``sample_weight``/``class_weight``), and ``s`` is ½ for
``loss="mse"`` and 1 otherwise. This is scikit-learn's MLP objective: its squared-error loss is
``½·mean((y − ŷ)²)``, half of gdcore's (torch's) ``mse``, and its penalty is divided by the
batch's sample count (or sum of sample weights). gdcore's fit takes a constant ``l2`` per call,
so the estimator passes ``l2 = alpha / (s · batch_size · mean_weight)``: exact for a batch of
``batch_size`` rows whose weights sum to ``batch_size · mean_weight`` (every batch but a short
last one without weights; with weights, in general only the one batch of full-batch training),
and off by that batch's ratio for the others. The factor ``s`` is applied
exactly by scaling the solver instead of the loss: SGD's learning rates are multiplied by ``s``
as they leave the schedule (so ``learning_rate_init`` and a schedule's absolute values, such as
PiecewiseLR's rates or CosineAnnealingLR's ``eta_min``, are learning rates of scikit-learn's
objective) and the ``epsilon`` of the adaptive solvers is divided by it, which gives the same
updates as gradients scaled by ``s``. ``loss_curve_``/``loss_`` report ``s·loss`` plus the
penalty, as scikit-learn does. With the same start, data order and float64, SGD then follows
scikit-learn's trajectory to rounding (tested) wherever that penalty is exact: with alpha=0, or
when every batch is full and, with weights, has the same sum of weights (the estimators' Notes
say when). One more exception: for several regression targets
scikit-learn reports the mean over targets but descends their sum; here both are the mean.
"""
import copy
import numbers
import threading
import warnings
from types import SimpleNamespace

import numpy as np

from scipy.special import expit

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelEncoder
    from sklearn.utils import check_random_state, column_or_1d
    from sklearn.utils.class_weight import compute_class_weight
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.multiclass import check_classification_targets, unique_labels
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("gdcore.sklearn needs scikit-learn >= 1.6 (pip install 'scikit-learn>=1.6'): "
                      f"{exc}") from exc

from . import losses, optim, schedules
from .layers import check_activation
from ._threads import resolve_n_threads
from ._validation import check_real
from .models import MLP, DivergenceError, History, _DeferredSigint, epoch_log_keys

__all__ = ["GDClassifier", "GDRegressor"]

_SOLVERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
_SKLEARN_SCHEDULES = ("constant", "invscaling", "adaptive")
_MIN_ADAPTIVE_LR = 1e-6  # scikit-learn's "adaptive" stops dividing below this learning rate
_FEATURE_ATTRIBUTES = ("n_features_in_", "feature_names_in_")  # set by validate_data


# ---------------------------------------------------------------------------------- helpers
def _check_int(value, name, minimum):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) \
            or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def _nested(schedule):
    """``schedule`` and the schedules it wraps (LinearWarmup's, _Scaled's), at any depth."""
    pending = [schedule]
    while pending:
        obj = pending.pop()
        yield obj
        pending.extend(v for v in vars(obj).values() if isinstance(v, schedules.Schedule))


def _unsized_cosines(schedule):
    """The CosineAnnealingLR(T_max=None) in ``schedule``: they anneal over "the fit", which the
    estimator must size itself (it runs a fit in chunks of epochs, see _plan_whole_fit)."""
    return [obj for obj in _nested(schedule)
            if isinstance(obj, schedules.CosineAnnealingLR) and obj.T_max is None]


def _plan_whole_fit(schedule, epochs, n_batches):
    """Give each CosineAnnealingLR(T_max=None) of ``schedule`` (the estimator's own fresh copy)
    the length of the whole fit, ``epochs`` (times ``n_batches`` for unit="step"). Left to
    itself it would learn the length of the first Sequential.fit call, a chunk of epochs."""
    for cosine in _unsized_cosines(schedule):
        cosine.T_max = cosine.T_max_ = epochs * n_batches if cosine.unit == "step" else epochs


def _detached(schedule):
    """A deep copy of ``schedule`` that remembers no model (pickle cannot store the weak
    reference a schedule keeps to the model it runs on). The next fit on the estimator's model
    continues it: a schedule with no owner adopts the first model it is given."""
    schedule = copy.deepcopy(schedule)
    for obj in _nested(schedule):
        obj._owner = None
    return schedule


class _Scaled(schedules.Schedule):
    """The learning rates of ``schedule`` times ``factor``: SGD's share of the ``s`` of the
    module docstring. Scaling the schedule's output, not the optimizer's lr (which schedules
    take as their base), keeps every value a schedule gives (PiecewiseLR's lrs, eta_min,
    min_lr) a learning rate of scikit-learn's objective, in the user's units."""

    def __init__(self, schedule, factor):
        super().__init__()  # first: its reset() would also reset a wrapped running schedule
        self.schedule, self.factor = schedule, factor

    monitor = property(lambda self: self.schedule.monitor)
    per_step = property(lambda self: self.schedule.per_step)
    needs_n_samples = property(lambda self: self.schedule.needs_n_samples)

    def reset(self):
        super().reset()
        if hasattr(self, "schedule"):  # not yet set when __init__ resets
            self.schedule.reset()

    def begin_fit(self, owner=None, **kwargs):
        super().begin_fit(owner, **kwargs)
        self.schedule.begin_fit(owner, **kwargs)

    def _lrs(self, n_batches, base_lr, n_samples):
        return self.factor * self.schedule.batch_lrs(n_batches, base_lr, n_samples=n_samples)

    def _observe(self, logs):
        self.schedule.epoch_end(logs)

    def _params(self):
        return {"schedule": self.schedule, "factor": self.factor}


class _InvScaling(schedules.InverseTimeLR):
    """scikit-learn's "invscaling", warm_start included: each fit's fresh optimizer runs the
    fit's first epoch at ``base_lr``, then ``base_lr / (t + 1) ** power_t`` with ``t`` the
    samples seen by the estimator over all its fits (``t_``), i.e. ``samples_before`` (``t_``
    when the fit started) plus the samples of the fit's epochs done."""

    def __init__(self, power_t, samples_before):
        self.samples_before = samples_before
        super().__init__(power_t, unit="sample")

    def _lr(self, t, base_lr):
        return np.where(t == 0, base_lr, super()._lr(self.samples_before + t, base_lr))

    def _params(self):
        return {**super()._params(), "samples_before": self.samples_before}


def _writeable(array):
    """``array``, copied if it is read-only: gdcore's Cython boundary takes writable buffers
    only, even for the inputs it just reads (read-only memory maps, joblib's parallel jobs)."""
    return array if array.flags.writeable else array.copy()


# ---------------------------------------------------------------------------------- base class
class _BaseGD(BaseEstimator):
    """Shared machinery of GDClassifier and GDRegressor; see their docstrings."""

    def __init__(self, hidden_layer_sizes, activation, loss, solver, alpha, batch_size,
                 learning_rate, learning_rate_init, power_t, max_iter, shuffle, random_state, tol,
                 verbose, warm_start, momentum, nesterovs_momentum, early_stopping,
                 validation_fraction, beta_1, beta_2, epsilon, n_iter_no_change, weight_decay,
                 dtype, n_threads):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.loss = loss
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.weight_decay = weight_decay
        self.dtype = dtype
        self.n_threads = n_threads

    # ------------------------------------------------------------------ parameters
    def _settings(self):
        """Check every parameter (in fit, never in __init__, as scikit-learn asks) and resolve
        the names into gdcore objects. Raises ValueError naming the parameter."""
        st = SimpleNamespace()
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, (numbers.Integral, np.integer)) and not isinstance(sizes, bool):
            sizes = [sizes]
        try:
            sizes = list(sizes)
        except TypeError:
            raise ValueError("hidden_layer_sizes must be an int or a sequence of ints, "
                             f"got {self.hidden_layer_sizes!r}") from None
        st.hidden = [_check_int(size, "hidden_layer_sizes[i]", 1) for size in sizes]
        activation = "sigmoid" if self.activation == "logistic" else self.activation
        try:
            st.activation = check_activation(activation)
        except ValueError:
            raise ValueError("activation must be one of 'identity', 'logistic' (or 'sigmoid'), "
                             "'tanh', 'relu', 'leaky_relu', 'gelu', got "
                             f"{self.activation!r}") from None
        st.dtype = None  # None: decided by the data in _data_dtype
        if self.dtype is not None:
            try:
                st.dtype = np.dtype(self.dtype)
            except TypeError:
                st.dtype = np.dtype(object)
            if st.dtype not in (np.float32, np.float64):
                raise ValueError(f"dtype must be 'float32', 'float64' or None, got {self.dtype!r}")
        st.loss, st.scale = self._resolve_loss()
        st.alpha = check_real(self.alpha, "alpha", low=0)
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            _check_int(self.batch_size, "batch_size ('auto' or an int)", 1)
        st.learning_rate_init = check_real(self.learning_rate_init, "learning_rate_init",
                                            low=0, low_open=True)
        st.power_t = check_real(self.power_t, "power_t", low=0)
        st.max_iter = _check_int(self.max_iter, "max_iter", 1)
        st.shuffle = _check_bool(self.shuffle, "shuffle")
        st.tol = check_real(self.tol, "tol", low=0)
        st.verbose = _check_int(int(self.verbose) if isinstance(self.verbose, (bool, np.bool_))
                                else self.verbose, "verbose", 0)
        _check_bool(self.warm_start, "warm_start")
        st.early_stopping = _check_bool(self.early_stopping, "early_stopping")
        st.validation_fraction = check_real(self.validation_fraction, "validation_fraction",
                                             low=0, low_open=True, high=1, high_open=True)
        st.n_iter_no_change = _check_int(self.n_iter_no_change, "n_iter_no_change", 1)
        resolve_n_threads(self.n_threads)  # raises ValueError for 0, -2, 1.5, ...
        self._check_solver_params()
        st.schedule_spec = self.learning_rate
        try:  # gdcore's schedule names ("cosine", "step", ...) are accepted with their defaults
            monitor = self._new_schedule(st).monitor
        except ValueError:
            raise ValueError("learning_rate must be 'constant', 'invscaling', 'adaptive', a "
                             "gdcore.schedules name (all names are lowercase, as scikit-learn's) "
                             f"or a Schedule, got {self.learning_rate!r}") from None
        if monitor is not None and monitor.startswith("val_") and not st.early_stopping:
            raise ValueError(f"learning_rate monitors {monitor!r}, which needs the validation "
                             "split of early_stopping=True (or a schedule that monitors 'loss')")
        # Sequential.fit refuses a monitor its epoch logs lack ('accuracy' for a regressor), but
        # only after _fit has reset the estimator: refuse it here, with the logs fit will write
        keys = epoch_log_keys(isinstance(self, ClassifierMixin), st.early_stopping)
        if monitor is not None and monitor not in keys:
            raise ValueError(f"learning_rate monitors {monitor!r}, which is not in the epoch logs "
                             f"of {type(self).__name__}'s fit: they have {sorted(keys)}")
        return st

    def _check_solver_params(self):
        if isinstance(self.solver, optim.Optimizer):
            return
        if self.solver not in _SOLVERS:
            raise ValueError(f"solver must be one of {', '.join(map(repr, _SOLVERS))} or a "
                             f"gdcore.optim.Optimizer, got {self.solver!r}")
        check_real(self.momentum, "momentum", low=0, high=1, high_open=True)
        _check_bool(self.nesterovs_momentum, "nesterovs_momentum")
        check_real(self.beta_1, "beta_1", low=0, high=1, high_open=True)
        check_real(self.beta_2, "beta_2", low=0, high=1, high_open=True)
        check_real(self.epsilon, "epsilon", low=0)
        check_real(self.weight_decay, "weight_decay", low=0)

    def _data_dtype(self, st, first_pass):
        """The dtype X is converted to: the network's once there is one (warm_start and
        partial_fit convert later data to it); else ``dtype``; else, with dtype=None, X's own
        dtype when it is float32 or float64, float64 otherwise (scikit-learn's MLP rule)."""
        if not first_pass:
            return self.model_.dtype
        return st.dtype if st.dtype is not None else (np.float64, np.float32)

    def _new_optimizer(self, st):
        """A fresh gdcore optimizer for ``solver``, stepping on ``s·loss`` (see the module
        docstring) while gdcore's fit computes the gradient ``g`` of ``loss``: SGD's learning
        rates are multiplied by ``s`` on their way out of the schedule (_Scaled, in
        _prepare_fit), its ``lr`` stays the user's; the adaptive solvers are invariant to the
        scale of the gradient but for ``eps``, which becomes ``eps/s``; coupled weight decay
        becomes ``weight_decay/s`` (and Adagrad's initial accumulator ``value/s²``). Returns
        (optimizer, its learning rate, for ``_learning_rate``)."""
        if isinstance(self.solver, optim.Optimizer):
            opt = copy.deepcopy(self.solver)
            opt.reset()
        elif self.solver == "sgd":
            opt = optim.SGD(lr=st.learning_rate_init, momentum=self.momentum,
                            nesterov=bool(self.nesterovs_momentum and self.momentum > 0))
        else:
            make = {"adam": optim.Adam, "adamw": optim.AdamW, "rmsprop": optim.RMSprop,
                    "adagrad": optim.Adagrad}[self.solver]
            extra = {}
            if self.solver in ("adam", "adamw"):
                extra["betas"] = (self.beta_1, self.beta_2)
            if self.solver == "adamw":
                extra["weight_decay"] = self.weight_decay
            opt = make(lr=st.learning_rate_init, eps=self.epsilon, **extra)
        learning_rate = opt.lr
        s = st.scale
        if s != 1.0:
            if not isinstance(opt, optim.SGD):
                opt.eps /= s
            if not isinstance(opt, optim.AdamW):  # AdamW's decay does not touch the gradient
                opt.weight_decay /= s
            if isinstance(opt, optim.Adagrad):
                opt.initial_accumulator_value /= s * s
        return opt, learning_rate

    def _set_learning_rate(self, learning_rate):
        """Set the base learning rate of the running optimizer ("adaptive")."""
        self._learning_rate = self._optimizer.lr = learning_rate

    def _new_schedule(self, st, samples_before=0):
        """A fresh schedule for ``learning_rate``; ``samples_before`` is the ``t_`` that
        "invscaling" continues from (a warm-started fit's)."""
        spec = st.schedule_spec
        if not isinstance(spec, (str, schedules.Schedule)):
            raise ValueError(f"not a schedule: {spec!r}")
        if isinstance(spec, schedules.Schedule):
            schedule = _detached(spec)
            schedule.reset()
            return schedule
        # scikit-learn refuses "Invscaling" (its names are case-sensitive); schedules.get would
        # take it for gdcore's per-epoch "invscaling", silently ignoring power_t: refuse it
        if spec != spec.lower():
            raise ValueError(f"schedule names are lowercase, got {spec!r}")
        if spec in ("constant", "adaptive"):  # "adaptive" is applied between chunks, see _train
            return schedules.Constant()
        if spec == "invscaling":  # scikit-learn's: t counts the samples seen
            return _InvScaling(st.power_t, samples_before)
        return schedules.get(spec)

    # ------------------------------------------------------------------ fitting
    def _fit(self, X, y, sample_weight, *, incremental, classes=None):
        # validate_data(reset=True) sets n_features_in_ (and feature_names_in_) as it checks X:
        # a refused fit puts them back, so that it leaves the estimator exactly as it was
        saved = {name: self.__dict__[name] for name in _FEATURE_ATTRIBUTES
                 if name in self.__dict__}
        try:
            st, X, targets, weights, validation, rng = self._prepare_fit(
                X, y, sample_weight, incremental, classes)
        except BaseException:
            for name in _FEATURE_ATTRIBUTES:
                self.__dict__.pop(name, None)
            self.__dict__.update(saved)
            raise

        # Everything is checked and built: from here on the estimator changes.
        if st.classes is not None:
            self.classes_ = st.classes
        if st.model is not None:
            self._initialize(st.model, st)
        if st.optimizer is not None:
            self._optimizer, self._learning_rate = st.optimizer
            self._schedule = st.schedule
        if (self.validation_scores_ is None) == st.early_stopping:  # toggled for warm_start
            self._reset_scores(st.early_stopping)
        self._train(X, targets, weights, st, rng, incremental=incremental, validation=validation)
        return self

    def _prepare_fit(self, X, y, sample_weight, incremental, classes):
        """Check the parameters, data, labels and weights of a fit and build what it replaces
        (network, optimizer, schedule), changing nothing but n_features_in_ and
        feature_names_in_ (see _fit).

        Returns (st, X, targets, weights, validation, rng): the settings, with ``classes``,
        ``model`` (a new network, or None to continue the fitted one), ``optimizer`` (a pair
        (optimizer, learning rate), or None to continue the running one), ``schedule``,
        ``batch_size`` and ``l2``; the training data, its weights for gdcore (or None) and the
        validation split of early stopping (or None); the random state."""
        st = self._settings()
        if incremental and st.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        continuing = hasattr(self, "model_") and hasattr(self, "_optimizer")
        if incremental and not continuing and _unsized_cosines(self._new_schedule(st)):
            raise ValueError(
                f"learning_rate={self.learning_rate!r} holds a CosineAnnealingLR with "
                "T_max=None, which anneals over the whole fit, a length partial_fit (one epoch "
                "per call) does not know: give it T_max, e.g. "
                "learning_rate=gdcore.schedules.CosineAnnealingLR(T_max=...)")
        first_pass = not hasattr(self, "model_") or (not self.warm_start and not incremental)
        X, y = self._validate_Xy(X, y, self._data_dtype(st, first_pass), reset=first_pass)
        X = _writeable(X)
        st.dtype = X.dtype
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                                 ensure_non_negative=True)
        targets, weights, labels, n_outputs = self._targets(y, sample_weight, first_pass,
                                                            incremental, classes, st)
        # Sequential.fit refuses what follows too, but only after _fit has replaced the network:
        # each check runs here first, so that a refused fit changes nothing.
        if labels is None:  # regression targets, finite in float64, may overflow a float32
            with np.errstate(over="ignore"):  # network (fit's check_y converts them)
                overflows = ~np.isfinite(targets.astype(st.dtype, copy=False))
            if overflows.any():
                raise ValueError(f"y holds {targets[overflows][0]:g}, beyond the range of "
                                 f"{st.dtype.name}, the network's dtype: scale y down or use "
                                 "dtype='float64'")
        if weights is not None:  # each weight is finite, their sum may not be (fit's check)
            with np.errstate(over="ignore"):
                total = np.sum(weights)
            what = ("sample_weight times class_weight"
                    if getattr(self, "class_weight", None) is not None else "sample_weight")
            if not np.isfinite(total):
                raise ValueError(f"{what} sums to infinity (the sum overflows float64): scale "
                                 "the weights down, only their ratios matter")
            if not total > 0:
                raise ValueError("sample_weight and class_weight give every sample weight zero")
        if not first_pass:
            self._check_structure(X.shape[1], n_outputs, st)
        rng = check_random_state(self.random_state)
        model_seed = int(rng.randint(np.iinfo(np.int32).max)) if first_pass else None
        validation = None
        if st.early_stopping:
            X, targets, weights, validation = self._split(st, rng, X, targets, labels, weights,
                                                          sample_weight)
        st.batch_size = self._batch_size(X.shape[0])
        st.l2 = self._l2(st, weights)  # the model's fit scales weights beyond its dtype's range
        # Built now, not after the checks: building can fail too (at most 64 Dense layers)
        st.model = None
        if first_pass:
            sizes = [X.shape[1]] + st.hidden + [n_outputs]
            st.model = MLP(sizes, activation=st.activation, dtype=st.dtype, seed=model_seed)
        st.optimizer = st.schedule = None
        if first_pass or not incremental or not hasattr(self, "_optimizer"):
            st.optimizer = self._new_optimizer(st)
            st.schedule = self._new_schedule(st, samples_before=0 if first_pass else self.t_)
            if not incremental:  # a cosine with T_max=None anneals over all max_iter epochs
                _plan_whole_fit(st.schedule, st.max_iter, -(-X.shape[0] // st.batch_size))
            if isinstance(st.optimizer[0], optim.SGD) and st.scale != 1.0:
                st.schedule = _Scaled(st.schedule, st.scale)  # see _new_optimizer
        return st, X, targets, weights, validation, rng

    def _split(self, st, rng, X, targets, labels, weights, sample_weight):
        """The early-stopping split (scikit-learn's): returns the training part of X, targets
        and weights, and the validation split (X_val, targets_val, y_val, sample_weight_val)."""
        arrays = {"X": X, "targets": targets, "labels": labels, "weights": weights,
                  "sample_weight": sample_weight}
        keys = [key for key, value in arrays.items() if value is not None]
        # MLPClassifier stratifies for a single output column only, i.e. two classes: a
        # stratified split of more classes fails on a rare class or a small validation_fraction
        stratify = labels if st.classes is not None and len(st.classes) == 2 else None
        try:
            parts = train_test_split(*(arrays[key] for key in keys), random_state=rng,
                                     test_size=st.validation_fraction, stratify=stratify)
        except ValueError as exc:  # scikit-learn's message names neither parameter
            how = " stratified by class (two classes)" if stratify is not None else ""
            raise ValueError(
                f"early_stopping=True cannot hold out validation_fraction="
                f"{st.validation_fraction:g} of the {X.shape[0]} samples{how}: {exc}") from exc
        train, val = dict(zip(keys, parts[0::2])), dict(zip(keys, parts[1::2]))
        n_val = val["X"].shape[0]
        if n_val < 2:
            raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                             "or the size of your dataset.")
        # the score of each epoch is weighted by sample_weight: all zeros leave it undefined
        sw_val = val.get("sample_weight")
        if sw_val is not None and not np.sum(sw_val) > 0:
            raise ValueError(
                f"sample_weight gives all {n_val} samples of the early-stopping validation split "
                "weight zero, so the validation score is undefined: increase "
                f"validation_fraction (now {st.validation_fraction:g}) or give more samples a "
                "non-zero weight")
        weights = train.get("weights")
        if weights is not None and not np.sum(weights) > 0:
            raise ValueError(
                "sample_weight and class_weight give every sample of the early-stopping training "
                "split weight zero: decrease validation_fraction or give more samples a non-zero "
                "weight")
        if labels is not None:
            y_val = val["labels"]
        else:
            y_val = val["targets"][:, 0] if val["targets"].shape[1] == 1 else val["targets"]
        return train["X"], train["targets"], weights, (val["X"], val["targets"], y_val, sw_val)

    def _l2(self, st, weights):
        """gdcore's l2 for scikit-learn's penalty ``½·alpha·‖W‖² / batch_weight`` (module
        docstring), or ValueError where weights so small make it overflow the network's dtype
        (scikit-learn's loss is then infinite too)."""
        mean_weight = 1.0 if weights is None else float(np.mean(weights))
        with np.errstate(over="ignore"):
            l2 = st.alpha / (st.scale * st.batch_size * mean_weight)
        if not l2 <= np.finfo(st.dtype).max:
            raise ValueError(
                f"sample_weight is too small for alpha={st.alpha:g}: the L2 penalty is divided "
                "by the sum of each batch's weights (as in scikit-learn), which overflows "
                f"{st.dtype.name}. Scale sample_weight up: the weighted mean loss does not "
                "depend on its scale")
        return l2

    def _initialize(self, model, st):
        """Take a fresh network and fresh progress counters (scikit-learn's ``_initialize``)."""
        self.model_ = model
        self.n_outputs_ = model.n_outputs
        self.n_layers_ = len(st.hidden) + 2  # input and output layers included
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_ = []
        self._no_improvement_count = 0
        self._best_weights = None
        self._reset_scores(st.early_stopping)
        for name in ("_optimizer", "_schedule"):
            self.__dict__.pop(name, None)

    def _reset_scores(self, early_stopping):
        """What the stopping rule tracks, as scikit-learn: the validation scores with early
        stopping, the best training loss otherwise (the other attributes are None)."""
        if early_stopping:
            self.validation_scores_, self.best_validation_score_ = [], -np.inf
            self.best_loss_ = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = self.best_validation_score_ = None

    def _check_structure(self, n_features, n_outputs, st):
        """warm_start and partial_fit continue the fitted network: it must fit the settings."""
        sizes = [n_features] + st.hidden + [n_outputs]
        model = self.model_
        have = [model.n_inputs] + [layer.n_out for layer in model.layers]
        hidden_activation = model.layers[0].activation if len(model.layers) > 1 else st.activation
        if sizes != have or hidden_activation != st.activation or \
                (self.dtype is not None and model.dtype != np.dtype(self.dtype)):
            raise ValueError(
                f"the fitted network has layer sizes {have}, activation "
                f"{hidden_activation!r} and dtype {model.dtype.name}, but the parameters "
                f"and data ask for {sizes}, {st.activation!r} and {st.dtype.name}: warm_start and "
                "partial_fit continue the fitted network, so these cannot change (set "
                "warm_start=False and call fit to start afresh)")

    def _batch_size(self, n_samples):
        if self.batch_size == "auto":
            return min(200, n_samples)
        if self.batch_size > n_samples:
            warnings.warn("Got `batch_size` larger than sample size. It is going to be clipped",
                          UserWarning, stacklevel=5)
        return min(int(self.batch_size), n_samples)

    def _train(self, X, targets, weights, st, rng, *, incremental, validation):
        """Run epochs in C, a chunk at a time, applying scikit-learn's stopping rule per epoch.

        See the module docstring: a chunk is as long as it can be without passing the first
        epoch at which the rule could stop training (one epoch with early stopping)."""
        n_samples = X.shape[0]
        monitor = self._schedule.monitor
        validation_data = None
        if monitor is not None and monitor.startswith("val_"):  # _settings checked the split
            validation_data = validation[:2]
        if not incremental:
            self.n_iter_ = 0
        adaptive = isinstance(st.schedule_spec, str) and st.schedule_spec == "adaptive"
        stopped = interrupted = False
        epochs_left = 1 if incremental else st.max_iter
        while epochs_left > 0 and not (stopped or interrupted):
            if st.early_stopping or incremental:
                chunk = 1
            else:
                chunk = max(1, st.n_iter_no_change + 1 - self._no_improvement_count)
            chunk = min(chunk, epochs_left)
            previous = self.model_.history_
            try:
                history = self.model_.fit(
                    X, targets, loss=st.loss, optimizer=self._optimizer, epochs=chunk,
                    batch_size=st.batch_size, shuffle=st.shuffle,
                    seed=int(rng.randint(np.iinfo(np.int32).max)), n_threads=self.n_threads,
                    validation_data=validation_data, schedule=self._schedule,
                    sample_weight=weights, l2=st.l2, verbose=0)
            except KeyboardInterrupt:
                # As scikit-learn: Ctrl-C ends training, not the program. gdcore stopped between
                # two batches and its history holds the epochs it finished.
                warnings.warn("Training interrupted by user.", stacklevel=4)
                # interrupted before fit replaced history_ (while checking its input): no epoch
                # of this call ran, and the previous chunk's are recorded already
                history = self.model_.history_
                if history is previous or history is None:
                    history = History()
                interrupted = True
            except DivergenceError as exc:
                what = ("an update made a weight infinite or NaN at epoch {} (the weights are "
                        "those of that epoch's start)" if exc.update else "the loss became NaN "
                        "or infinite at epoch {} (the weights are those before that batch)")
                raise ValueError(
                    f"{type(self).__name__}: training diverged, "
                    f"{what.format(self.n_iter_ + exc.epoch + 1)}. The input data may contain "
                    "large values and need to be preprocessed, or learning_rate_init is too "
                    "large.") from exc
            epochs_left -= chunk
            try:  # a chunk's epochs are recorded whole (n_iter_, loss_curve_, scores)
                with _DeferredSigint(threading.current_thread() is threading.main_thread(),
                                     "Training interrupted by user."):
                    stopped = self._record_chunk(history, chunk, st, validation, adaptive,
                                                 n_samples, incremental)
            except KeyboardInterrupt:
                if not interrupted:
                    warnings.warn("Training interrupted by user.", stacklevel=4)
                interrupted = True
        if not incremental and not stopped and not interrupted:
            warnings.warn(f"{type(self).__name__}: maximum iterations ({st.max_iter}) reached and "
                          "the optimization hasn't converged yet.", ConvergenceWarning,
                          stacklevel=4)
        if st.early_stopping and self._best_weights is not None:
            self.model_.set_weights(self._best_weights)  # the best validation epoch's weights

    def _record_chunk(self, history, chunk, st, validation, adaptive, n_samples, incremental):
        """Record the epochs a fit call finished (none when Ctrl-C came in its first) and apply
        scikit-learn's stopping rule after each; returns whether training stops."""
        stopped = False
        for position, value in enumerate(history.history.get("loss", [])):
            value = st.scale * value
            self.n_iter_ += 1
            self.t_ += n_samples
            self.loss_ = value
            self.loss_curve_.append(value)
            if st.verbose:
                print(f"Iteration {self.n_iter_}, loss = {value:.8f}")
            self._update_no_improvement_count(st, validation)
            if self._no_improvement_count > st.n_iter_no_change:
                # by construction of the chunk length, only its last epoch can get here
                assert position == chunk - 1 or incremental
                what = "Validation score" if st.early_stopping else "Training loss"
                message = (f"{what} did not improve more than tol={st.tol:f} for "
                           f"{st.n_iter_no_change} consecutive epochs.")
                if adaptive and self._learning_rate > _MIN_ADAPTIVE_LR:
                    self._set_learning_rate(self._learning_rate / 5.0)
                    self._no_improvement_count = 0
                    if st.verbose:
                        print(f"{message} Setting learning rate to {self._learning_rate:f}")
                else:
                    if st.verbose:
                        print(f"{message} Stopping.")
                    stopped = not incremental
        return stopped

    def _update_no_improvement_count(self, st, validation):
        """scikit-learn's rule, after each epoch: on the training loss, or on the validation
        score with early stopping (whose best weights are kept)."""
        if st.early_stopping:
            X_val, _, y_val, sw_val = validation
            score = self._score_arrays(X_val, y_val, sw_val)
            self.validation_scores_.append(score)
            if st.verbose:
                print(f"Validation score: {score:f}")
            if score < self.best_validation_score_ + st.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_weights = self.model_.get_weights()
        else:
            loss = self.loss_curve_[-1]
            if loss > self.best_loss_ - st.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if loss < self.best_loss_:
                self.best_loss_ = loss

    # ------------------------------------------------------------------ inference
    def _validate_X(self, X):
        check_is_fitted(self)
        return _writeable(validate_data(self, X, reset=False, dtype=self.model_.dtype))

    def _outputs(self, X):
        """Network outputs of validated X, as float64 (scikit-learn's convention)."""
        out = self.model_.predict(X, n_threads=self.n_threads)
        return out.astype(np.float64, copy=False)

    @property
    def coefs_(self):
        """Weight matrices, ``coefs_[i]`` of shape (n_in, n_out) (scikit-learn's layout): views
        into ``model_``'s parameters, in its dtype."""
        check_is_fitted(self)
        return [layer.W for layer in self.model_.layers]

    @property
    def intercepts_(self):
        """Bias vectors, ``intercepts_[i]`` of shape (n_out,): views into ``model_``."""
        check_is_fitted(self)
        return [layer.b for layer in self.model_.layers]

    # ------------------------------------------------------------------ pickling
    def __getstate__(self):
        state = super().__getstate__()
        if "_schedule" in state:
            state = dict(state)
            state["_schedule"] = _detached(state["_schedule"])
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        # gdcore pickles an optimizer without the model its state belongs to; hand the state
        # back to the unpickled model, so partial_fit continues with the same moments (the
        # optimizer's own __setstate__ made its buffers writable after a memory-mapped load)
        opt, model = self.__dict__.get("_optimizer"), self.__dict__.get("model_")
        if opt is not None and model is not None and opt.state.get("slots") is not None:
            opt.state["owner"] = model
        # Pickled before SGD's factor s moved from its lr into _Scaled (see _new_optimizer):
        # move it, or "adaptive" would drop it at its next division (_set_learning_rate)
        schedule, lr = self.__dict__.get("_schedule"), self.__dict__.get("_learning_rate")
        if isinstance(opt, optim.SGD) and schedule is not None \
                and not isinstance(schedule, _Scaled) and lr and opt.lr != lr:
            self._schedule, opt.lr = _Scaled(schedule, opt.lr / lr), lr


_COMMON_PARAMETERS = """
    hidden_layer_sizes : int or sequence of int, default=(100,)
        Units of each hidden layer; ``()`` gives a linear model.
    activation : {{"relu", "identity", "logistic", "tanh", "leaky_relu", "gelu"}}, default="relu"
        Activation of the hidden layers ("logistic" is also accepted as "sigmoid").
{loss}
    solver : {{"adam", "sgd", "adamw", "rmsprop", "adagrad"}} or gdcore.optim.Optimizer, \
default="adam"
        The gdcore optimizer (PyTorch's update rules, see gdcore.optim): "sgd" uses
        ``momentum`` and ``nesterovs_momentum``; "adam" and "adamw" use ``beta_1``, ``beta_2``,
        ``epsilon`` ("adamw" also ``weight_decay``); "rmsprop" (smoothing 0.99) and "adagrad"
        use ``epsilon``. An Optimizer object is copied at each fit; its settings replace
        ``learning_rate_init`` and the settings above.
    alpha : float, default=0.0001
        L2 penalty: ``½·alpha·‖W‖²`` divided by a batch weight is added to each batch's loss.
        scikit-learn divides by each batch's own number of samples (or sum of sample weights);
        gdcore divides every batch by one constant, ``batch_size`` times the mean sample
        weight. The two are the same when alpha=0, or when every batch has ``batch_size`` rows
        (the training samples are a multiple of ``batch_size``) and, with ``sample_weight`` or
        ``class_weight``, the same sum of weights (as the one batch of full-batch training);
        otherwise the penalty of a short last batch, or of a batch heavier or lighter than the
        mean, differs from scikit-learn's (see the notes).
    batch_size : int or "auto", default="auto"
        Mini-batch size; "auto" is ``min(200, n_samples)``. Larger than n_samples is clipped
        (with a warning); 1 is stochastic and n_samples full-batch gradient descent.
    learning_rate : {{"constant", "invscaling", "adaptive"}}, gdcore schedule name or \
gdcore.schedules.Schedule, default="constant"
        Learning-rate schedule, for every solver (scikit-learn's only affects "sgd").
        "invscaling" is ``learning_rate_init / (t + 1) ** power_t`` with ``t`` the samples seen
        before the epoch (InverseTimeLR(unit="sample"), scikit-learn's formula); as in
        scikit-learn, each fit runs its first epoch at ``learning_rate_init`` and ``t`` counts
        on over warm-started fits (``t_``). "adaptive" divides the learning rate by 5 whenever
        the stopping criterion fires (``n_iter_no_change`` epochs without improvement by
        ``tol``), and stops only when it fires with the rate at or below 1e-6, exactly as
        scikit-learn. A gdcore Schedule (or name, e.g. "cosine") is copied at each fit and
        continued by partial_fit; one that monitors "val_*" metrics needs
        ``early_stopping=True``. A CosineAnnealingLR with ``T_max=None`` (as "cosine") anneals
        over ``max_iter`` epochs (times the batches per epoch with ``unit="step"``), whenever
        training stops; a partial_fit with no fit before it refuses one (give ``T_max``).
        Names are lowercase, as scikit-learn's ("Invscaling" is refused).
    learning_rate_init : float, default=0.001
        Initial learning rate.
    power_t : float, default=0.5
        Exponent of "invscaling".
    max_iter : int, default=200
        Maximum number of epochs of one fit call.
    shuffle : bool, default=True
        Shuffle the samples every epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds the weight initialization, the shuffling and the early-stopping split. With an
        int, results are bit-identical for any ``n_threads``.
    tol : float, default=1e-4
        Training stops when the loss (or the validation score with ``early_stopping``) has not
        improved by at least ``tol`` for ``n_iter_no_change`` consecutive epochs.
    verbose : bool or int, default=False
        Print the loss of every epoch (scikit-learn's format).
    warm_start : bool, default=False
        Let fit continue from the fitted weights (with a fresh optimizer, as scikit-learn).
    momentum : float, default=0.9
        SGD momentum, in [0, 1).
    nesterovs_momentum : bool, default=True
        Nesterov momentum for SGD (when momentum > 0).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data and stop when its score
        (:meth:`score`) stops improving; the weights of the best epoch are kept.
    validation_fraction : float, default=0.1
        Share of the training data held out for early stopping, in (0, 1).
    beta_1, beta_2 : float, default=0.9, 0.999
        Adam's moment decay rates, in [0, 1).
    epsilon : float, default=1e-8
        Numerical stability term of adam, adamw, rmsprop and adagrad.
    n_iter_no_change : int, default=10
        Epochs without improvement by ``tol`` before stopping.
    weight_decay : float, default=0.01
        Decoupled weight decay of "adamw" (ignored by the other solvers).
    dtype : {{"float32", "float64"}} or None, default=None
        Precision of the weights and of all computation. None follows the data, as
        scikit-learn's MLP: float32 for float32 X, float64 for any other X. float32 is
        gdcore's fast path (1.5-2x faster) and ample for training MLPs: pass float32
        X or ``dtype="float32"``. Later data (warm_start, partial_fit, predict) is converted
        to the fitted network's dtype; outputs are float64.
    n_threads : int or None, default=None
        Threads of the C core; None or -1: all usable cores. Results do not depend on it."""

_COMMON_ATTRIBUTES = """
    model_ : gdcore.Sequential
        The trained network.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features, when X had string column names.
    n_outputs_ : int
        Number of output units.
    n_layers_ : int
        Number of layers, input and output layers included (as scikit-learn).
    coefs_, intercepts_ : list of ndarray
        Views of the weights (n_in, n_out) and biases of each layer.
    loss_ : float
        Loss of the last epoch (penalty included, see the notes).
    loss_curve_ : list of float
        Loss of every epoch (continued by warm_start and partial_fit, as scikit-learn).
    best_loss_ : float or None
        Lowest loss so far; None with early stopping.
    validation_scores_ : list of float or None
        Validation score of every epoch with early stopping; None otherwise.
    best_validation_score_ : float or None
        Best validation score with early stopping (its weights are kept); None otherwise.
    n_iter_ : int
        Epochs run by the last fit call; partial_fit adds one per call.
    t_ : int
        Number of training samples seen (summed over epochs)."""

_NOTES = """
    Notes
    -----
    Training runs in gdcore's C core, a chunk of epochs per call (see the module docstring);
    the stopping rule, ``n_iter_``, ``loss_curve_`` and the ConvergenceWarning at ``max_iter``
    follow scikit-learn's stochastic MLP solvers epoch for epoch. The objective is
    scikit-learn's (module docstring, "The objective"): with ``solver="sgd"`` and the same
    initial weights, data order and float64, ``loss_curve_`` and the weights agree with
    ``MLP{kind}``'s to rounding (1e-10 relative, tested) when alpha=0, or when every
    batch has ``batch_size`` rows (the training samples, after the early-stopping split, are a
    multiple of ``batch_size``; the default "auto", ``min(200, n_samples)``, is one for up to
    200 samples) and, with ``sample_weight`` or ``class_weight``, the same sum of weights
    (full-batch training). Otherwise the L2 penalty of the other batches differs (``alpha``):
    e.g. 1e-3 relative for 100 samples in batches of 32 with alpha=0.01, 7e-7 for weighted
    batches of 32. Differences from scikit-learn: weights start from gdcore's initialization
    (He uniform for relu-like activations, Glorot uniform otherwise; biases zero); the
    optimizers follow PyTorch (SGD momentum is scikit-learn's while the learning rate is
    constant; Adam adds ``epsilon`` after the bias correction of √v); schedules apply to every
    solver and restart with each fit (warm_start included, but for "invscaling", whose ``t_``
    counts on as scikit-learn's); there is no "lbfgs" solver and no sparse input; multilabel
    targets are not supported; partial_fit increments ``n_iter_``
    (scikit-learn 1.9 sets it to 1).
"""


_CLASSIFIER_PARAMETERS = _COMMON_PARAMETERS.format(loss="""\
    loss : {"cross_entropy", "log_loss", "hinge"}, default="cross_entropy"
        "cross_entropy" (alias "log_loss"): softmax cross-entropy, or logistic (binary)
        cross-entropy for two classes. "hinge": multi-class margin loss (torch's
        MultiMarginLoss, one unit per class even for two classes); predict_proba and
        predict_log_proba are then not available.""")
_REGRESSOR_PARAMETERS = _COMMON_PARAMETERS.format(loss="""\
    loss : {"mse", "squared_error", "mae", "absolute_error", "huber"} or gdcore.losses.Loss, \
default="mse"
        "mse" (alias "squared_error"): scikit-learn's ``½·mean((y − ŷ)²)``, i.e. half of
        gdcore's mse (see the notes); "mae" (alias "absolute_error"): ``mean(|y − ŷ|)``;
        "huber": gdcore's Huber with delta 1 (pass ``gdcore.losses.Huber(delta=...)`` for
        another delta). Means run over samples and outputs.""")


class GDClassifier(ClassifierMixin, _BaseGD):
    __doc__ = f"""Multilayer perceptron classifier trained by gdcore's C core.

    A scikit-learn estimator with the parameters and behaviour of ``MLPClassifier``'s stochastic
    solvers. Classes can be any labels (``classes_``); two classes use one logistic output unit
    with ``loss="cross_entropy"`` (as scikit-learn), more use one unit per class and a softmax.

    Parameters
    ----------{_CLASSIFIER_PARAMETERS}
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, ``{{label: weight}}`` (finite, >= 0; a class missing from the
        dict weighs 1); as scikit-learn's compute_class_weight, keys that are no class of the
        data (a class absent from a cross-validation fold) are ignored when every class has a
        weight. "balanced" is ``n_samples / (n_classes · count(label))``, with n_samples and
        count the weighted counts when sample_weight is given (a sample of weight k counts as
        k samples, as in LogisticRegression). Multiplied into sample_weight. Not "balanced" in
        partial_fit (compute it on all the data and pass a dict).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.{_COMMON_ATTRIBUTES}
    {_NOTES.format(kind="Classifier")}
    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from gdcore.datasets import load_digits
    >>> from gdcore.sklearn import GDClassifier
    >>> X, y = load_digits()
    >>> clf = make_pipeline(StandardScaler(), GDClassifier(random_state=0)).fit(X, y)
    >>> clf.score(X, y) > 0.95
    True
    """

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, loss="cross_entropy",
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, weight_decay=0.01,
                 dtype=None, n_threads=None, class_weight=None):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, loss=loss,
            solver=solver, alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change,
            weight_decay=weight_decay, dtype=dtype, n_threads=n_threads)
        self.class_weight = class_weight

    def _resolve_loss(self):
        if self.loss in ("cross_entropy", "log_loss"):
            return None, 1.0  # logistic or softmax: chosen by the number of classes in _targets
        if self.loss == "hinge":
            return losses.Hinge(), 1.0
        raise ValueError(f"loss must be 'cross_entropy', 'log_loss' or 'hinge', got {self.loss!r}")

    def _validate_Xy(self, X, y, dtype, reset):
        X, y = validate_data(self, X, y, reset=reset, dtype=dtype)
        check_classification_targets(y)
        return X, y

    def _targets(self, y, sample_weight, first_pass, incremental, classes, st):
        """Encode the labels for gdcore; sets ``st.classes`` (for ``classes_``) and ``st.loss``.

        Returns (targets, weights, labels, n_outputs): class indices (int64), or 0/1 as floats
        for the logistic unit of two classes; sample_weight times the class weights, or None;
        the class indices; the number of output units."""
        seen = unique_labels(y)
        if incremental:
            if first_pass:
                if classes is None:
                    raise ValueError("classes must be passed on the first call to partial_fit.")
                all_classes = unique_labels(classes)
            else:
                all_classes = self.classes_
                if classes is not None and not np.array_equal(unique_labels(classes), all_classes):
                    raise ValueError(f"`classes={classes!r}` is not the same as on the first "
                                     f"call to partial_fit, where it was {all_classes!r}")
            unseen = np.setdiff1d(seen, all_classes)
            if len(unseen):
                raise ValueError(f"`y` has classes not in `self.classes_`: {unseen!r}; "
                                 f"`self.classes_` is {all_classes!r}")
        elif first_pass:
            all_classes = seen
        else:  # warm_start
            all_classes = self.classes_
            if set(seen) != set(all_classes):
                raise ValueError("warm_start can only be used where `y` has the same classes as "
                                 f"in the previous call to fit. Previously got {all_classes}, "
                                 f"`y` has {seen}")
        if len(all_classes) < 2:
            raise ValueError(f"{type(self).__name__} needs at least 2 classes; got 1 class: "
                             f"{all_classes!r}")
        weights = sample_weight
        if self.class_weight is not None:
            if isinstance(self.class_weight, str) and self.class_weight == "balanced":
                if incremental:
                    raise ValueError(
                        "class_weight='balanced' is not supported by partial_fit: compute it on "
                        "all the data (sklearn.utils.class_weight.compute_class_weight) and "
                        "pass it as a dict")
            elif isinstance(self.class_weight, dict):
                for label, value in self.class_weight.items():
                    check_real(value, f"class_weight[{label!r}]", low=0)
            else:
                raise ValueError("class_weight must be a dict, 'balanced' or None, got "
                                 f"{self.class_weight!r}")
        labels = LabelEncoder().fit(all_classes).transform(y)  # indices into classes_
        if isinstance(self.class_weight, str):  # "balanced": not partial_fit, every class in y
            per_class = self._balanced_weights(labels, sample_weight, len(all_classes))
        elif self.class_weight is not None:
            # scikit-learn's rule for the keys: a key that is no class (one missing from this
            # fit's data, a cross-validation fold's) is ignored when every class has a weight
            per_class = compute_class_weight(self.class_weight, classes=all_classes, y=y)
        if self.class_weight is not None:
            weights = per_class[labels] if weights is None else weights * per_class[labels]
        st.classes = all_classes
        if len(all_classes) == 2 and self.loss != "hinge":  # one logistic unit, as scikit-learn
            st.loss = losses.BinaryCrossEntropy()
            return labels.astype(np.float64), weights, labels, 1
        st.loss = losses.Hinge() if self.loss == "hinge" else losses.CrossEntropy()
        return labels.astype(np.int64), weights, labels, len(all_classes)

    @staticmethod
    def _balanced_weights(labels, sample_weight, n_classes):
        """scikit-learn's "balanced", ``n_samples / (n_classes · count(label))`` with the
        counts and n_samples weighted by sample_weight, as compute_class_weight(...,
        sample_weight=) of later scikit-learn (1.6 lacks that keyword) and LogisticRegression:
        a sample of weight k counts as k samples. A class whose samples all weigh 0 gets 0."""
        counts = np.bincount(labels, weights=sample_weight, minlength=n_classes)
        return np.divide(counts.sum(), n_classes * counts, out=np.zeros(n_classes),
                         where=counts > 0)

    def _score_arrays(self, X, y_labels_index, sample_weight):
        """Accuracy on validated X against encoded labels (early stopping)."""
        return accuracy_score(y_labels_index, self._predict_index(X), sample_weight=sample_weight)

    def _predict_index(self, X):
        out = self._outputs(X)
        if out.shape[1] == 1:
            return (out[:, 0] > 0).astype(np.intp)
        return out.argmax(axis=1)

    def fit(self, X, y, sample_weight=None):
        """Fit the network to the data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels (any hashable, sortable values: ints, strings, ...).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights: each batch's loss is their weighted mean.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y), continuing the fitted network and its optimizer state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
        classes : array-like of shape (n_classes,), default=None
            Every class of all the calls; required on the first call, as in scikit-learn.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def decision_function(self, X):
        """Network outputs (logits): shape (n_samples,) for two classes, positive for
        ``classes_[1]``; (n_samples, n_classes) otherwise.

        Returns
        -------
        ndarray of float64
        """
        out = self._outputs(self._validate_X(X))
        if out.shape[1] == 1:
            return out[:, 0]
        if len(self.classes_) == 2:  # hinge: two units, the margin of the second
            return out[:, 1] - out[:, 0]
        return out

    def predict(self, X):
        """Predicted class labels, shape (n_samples,)."""
        index = self._predict_index(self._validate_X(X))
        return self.classes_[index]

    def _has_proba(self):
        return self.loss != "hinge"

    @available_if(_has_proba)
    def predict_proba(self, X):
        """Class probabilities (softmax, or the logistic function for two classes), ordered as
        ``classes_``, shape (n_samples, n_classes), float64."""
        out = self._outputs(self._validate_X(X))
        if out.shape[1] == 1:
            p = expit(out[:, 0])
            return np.column_stack([1.0 - p, p])
        out -= out.max(axis=1, keepdims=True)
        np.exp(out, out=out)
        out /= out.sum(axis=1, keepdims=True)
        return out

    @available_if(_has_proba)
    def predict_log_proba(self, X):
        """``log(predict_proba(X))``."""
        proba = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(proba, out=proba)


class GDRegressor(RegressorMixin, _BaseGD):
    __doc__ = f"""Multilayer perceptron regressor trained by gdcore's C core.

    A scikit-learn estimator with the parameters and behaviour of ``MLPRegressor``'s stochastic
    solvers; identity output units, one per target (multi-output y is supported).

    Parameters
    ----------{_REGRESSOR_PARAMETERS}

    Attributes
    ----------{_COMMON_ATTRIBUTES}
    {_NOTES.format(kind="Regressor")}
    """

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, loss="mse",
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, weight_decay=0.01,
                 dtype=None, n_threads=None):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, loss=loss,
            solver=solver, alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change,
            weight_decay=weight_decay, dtype=dtype, n_threads=n_threads)

    _LOSSES = {"mse": (losses.MSE, 0.5), "squared_error": (losses.MSE, 0.5),
               "mae": (losses.MAE, 1.0), "absolute_error": (losses.MAE, 1.0),
               "huber": (losses.Huber, 1.0)}

    def _resolve_loss(self):
        if isinstance(self.loss, str) and self.loss in self._LOSSES:
            cls, scale = self._LOSSES[self.loss]
            return cls(), scale
        if isinstance(self.loss, (losses.MSE, losses.MAE, losses.Huber)):
            return copy.deepcopy(self.loss), 0.5 if isinstance(self.loss, losses.MSE) else 1.0
        raise ValueError("loss must be 'mse', 'squared_error', 'mae', 'absolute_error', 'huber' "
                         f"or a gdcore.losses MSE, MAE or Huber object, got {self.loss!r}")

    def _validate_Xy(self, X, y, dtype, reset):
        X, y = validate_data(self, X, y, reset=reset, dtype=dtype, multi_output=True,
                             y_numeric=True)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def _targets(self, y, sample_weight, first_pass, incremental, classes, st):
        targets = _writeable(y.reshape(-1, 1) if y.ndim == 1 else y)
        st.classes = None
        return targets, sample_weight, None, targets.shape[1]

    def _score_arrays(self, X, y, sample_weight):
        """R² on validated X (early stopping)."""
        return r2_score(y, self._predict_arrays(X), sample_weight=sample_weight)

    def _predict_arrays(self, X):
        out = self._outputs(X)
        return out[:, 0] if out.shape[1] == 1 else out

    def fit(self, X, y, sample_weight=None):
        """Fit the network to the data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights: each batch's loss is their weighted mean.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), continuing the fitted network and its optimizer state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            As many targets as in the first call.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights: each batch's loss is their weighted mean.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Predicted targets, float64, shape (n_samples,) or (n_samples, n_targets)."""
        return self._predict_arrays(self._validate_X(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
