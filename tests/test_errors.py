"""Bad input raises ValueError or TypeError with a message that names the argument, and leaves the
model's weights exactly as they were."""
from fractions import Fraction

import warnings

import numpy as np
import pytest

import gdcore as gd

N_IN, N_OUT, N_ROWS = 4, 3, 6
X_METHODS = ("fit", "train_step", "evaluate", "loss_and_grad", "predict", "predict_proba",
             "predict_classes")
XY_METHODS = ("fit", "train_step", "evaluate", "loss_and_grad")


@pytest.fixture
def model():
    return gd.MLP([N_IN, 5, N_OUT], seed=0)


@pytest.fixture
def good():
    rng = np.random.default_rng(0)
    return rng.normal(size=(N_ROWS, N_IN)), np.array([0, 1, 2, 0, 1, 2])


def call(model, method, X, y=None, *, loss="cross_entropy", **kwargs):
    if method == "fit":
        return model.fit(X, y, loss=loss, verbose=0, epochs=1, **kwargs)
    if method in ("train_step", "evaluate", "loss_and_grad"):
        return getattr(model, method)(X, y, loss=loss, **kwargs)
    return getattr(model, method)(X, **kwargs)


def assert_rejected(model, exc, match, fn, *args, **kwargs):
    """fn(*args, **kwargs) raises exc matching ``match`` and the weights did not move."""
    before = model.get_weights()
    with pytest.raises(exc, match=match):
        fn(*args, **kwargs)
    after = model.get_weights()
    assert len(after) == len(before)
    for old, new in zip(before, after):
        np.testing.assert_array_equal(old, new)


def real_targets(n_rows=N_ROWS):
    return np.random.default_rng(1).uniform(0, 1, size=(n_rows, N_OUT))


# ------------------------------------------------------------------------------ X
BAD_X = {
    "one_d": (np.zeros(N_IN), ValueError, r"^X must be 2-D"),
    "three_d": (np.zeros((N_ROWS, N_IN, 1)), ValueError, r"^X must be 2-D"),
    "wrong_n_features": (np.zeros((N_ROWS, N_IN + 1)), ValueError, r"^X has 5 features.*expects 4"),
    "empty": (np.zeros((0, N_IN)), ValueError, r"^X is empty"),
    "complex": (np.zeros((N_ROWS, N_IN), dtype=complex), TypeError, r"^X must be real"),
    "strings": (np.full((N_ROWS, N_IN), "a"), TypeError, r"^X must be numeric"),
    "objects": (np.array([[1.0, {}, 2.0, 3.0]] * N_ROWS, dtype=object), TypeError,
                r"^X must be numeric"),
    "none_inside": (np.array([[1.0, None, 2.0, 3.0]] * N_ROWS, dtype=object), ValueError,
                    r"^X contains NaN"),
    "ragged": ([[1.0, 2.0, 3.0, 4.0], [1.0]] * 3, ValueError, r"^X cannot be read"),
    "none": (None, TypeError, r"^X must be an array"),
    "nan": ("nan", ValueError, r"^X contains NaN or infinity"),
    "inf": ("inf", ValueError, r"^X contains NaN or infinity"),
    "overflows_float32": ("1e39", ValueError, r"^X contains NaN or infinity \(after conversion"),
}


def bad_X(case, good_X):
    X, exc, match = BAD_X[case]
    if isinstance(X, str):  # a value planted in otherwise good data
        value, X = float(X), good_X.copy()
        X[2, 1] = value
    return X, exc, match


@pytest.mark.parametrize("case", list(BAD_X))
@pytest.mark.parametrize("method", X_METHODS)
def test_bad_X_is_rejected(model, good, method, case):
    X, exc, match = bad_X(case, good[0])
    with np.errstate(over="ignore"):
        assert_rejected(model, exc, match, call, model, method, X, good[1])


def test_set_weights_beyond_float32_says_so_without_a_numpy_warning(model):
    weights = [w.astype(np.float64) for w in model.get_weights()]
    weights[0][0, 0] = 1e39
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NumPy's "overflow encountered in cast" leaked
        assert_rejected(model, ValueError, r"^weights\[0\] contains NaN or infinity \(after "
                        r"conversion to float32\)$", model.set_weights, weights)
    weights[0][0, 0] = np.nan  # there before any conversion: not blamed on it
    assert_rejected(model, ValueError, r"^weights\[0\] contains NaN or infinity$",
                    model.set_weights, weights)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("method", X_METHODS)
def test_nan_in_float32_x_is_not_blamed_on_a_conversion(model, good, method, dtype):
    """A NaN already in the data: no "(after conversion to float32)", whatever its dtype."""
    X = good[0].astype(dtype)
    X[2, 1] = np.nan
    assert model.dtype == np.float32
    assert_rejected(model, ValueError, r"^X contains NaN or infinity$", call, model, method, X,
                    good[1])


def test_bad_validation_data_is_rejected(model, good):
    X, y = good
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    assert_rejected(model, ValueError, r"^validation_data\[0\] contains NaN", call, model, "fit",
                    X, y, validation_data=(X_nan, y))
    assert_rejected(model, ValueError, r"^validation_data\[0\] has 2 features", call, model, "fit",
                    X, y, validation_data=(X[:, :2], y))
    assert_rejected(model, ValueError, r"^validation_data\[1\] holds class indices", call, model,
                    "fit", X, y, validation_data=(X, y + 1))
    assert_rejected(model, ValueError, r"^validation_data\[1\] has 5 samples but "
                    r"validation_data\[0\] has 6$", call, model, "fit", X, y,
                    validation_data=(X, y[:5]))
    assert_rejected(model, ValueError, r"^validation_data must be a pair", call, model, "fit",
                    X, y, validation_data=(X, y, y))
    assert_rejected(model, ValueError, r"^validation_data must be a pair", call, model, "fit",
                    X, y, validation_data=X)


# ------------------------------------------------------------------------------ y
BAD_LABELS = {
    "too_short": (np.array([0, 1, 2, 0, 1]), r"^y has 5 samples but X has 6"),
    "too_long": (np.zeros(N_ROWS + 1, dtype=int), r"^y has 7 samples but X has 6"),
    "scalar": (np.int64(1), r"^y has 0 samples but X has 6"),
    "out_of_range": (np.array([0, 1, 3, 0, 1, 2]), r"^y holds class indices outside \[0, 3\)"),
    "negative": (np.array([0, -1, 2, 0, 1, 2]), r"^y holds class indices outside"),
    "non_integer_floats": (np.array([0, 1.5, 2, 0, 1, 2]), r"^y must hold integer class indices"),
    "nan": (np.array([0, np.nan, 2, 0, 1, 2]), r"^y contains NaN or infinity"),
    "inf": (np.array([0, np.inf, 2, 0, 1, 2]), r"^y contains NaN or infinity"),
    "two_d": (np.zeros((N_ROWS, N_OUT), dtype=int), r"^y must be 1-D class indices"),
}


@pytest.mark.parametrize("loss", ["cross_entropy", "hinge"])
@pytest.mark.parametrize("case", list(BAD_LABELS))
@pytest.mark.parametrize("method", XY_METHODS)
def test_bad_class_labels_are_rejected(model, good, method, case, loss):
    y, match = BAD_LABELS[case]
    assert_rejected(model, ValueError, match, call, model, method, good[0], y, loss=loss)


BAD_TYPES = {
    "none": (None, r"^y must be an array"),
    "complex": (np.zeros(N_ROWS, dtype=complex), r"^y must be real"),
    "strings": (np.array(["a", "b", "c", "a", "b", "c"]), r"^y must be numeric"),
    "objects": (np.array([0, {}, 1, 2, 0, 1], dtype=object), r"^y must be numeric"),
}


@pytest.mark.parametrize("case", list(BAD_TYPES))
@pytest.mark.parametrize("method", XY_METHODS)
def test_y_of_a_bad_type_is_rejected(model, good, method, case):
    y, match = BAD_TYPES[case]
    assert_rejected(model, TypeError, match, call, model, method, good[0], y)


@pytest.mark.parametrize("method", XY_METHODS)
def test_bad_real_targets_are_rejected(model, good, method):
    X = good[0]
    y = real_targets()
    assert_rejected(model, ValueError, r"^y must have shape \(6, 3\) for mse", call, model,
                    method, X, y[:, :2], loss="mse")
    assert_rejected(model, ValueError, r"^y must have shape \(6, 3\)", call, model, method,
                    X, y[:, 0], loss="mse")
    assert_rejected(model, ValueError, r"^y has 5 samples", call, model, method, X, y[:5],
                    loss="huber")
    for bad in (np.nan, np.inf, -np.inf):
        y_bad = y.copy()
        y_bad[3, 2] = bad
        assert_rejected(model, ValueError, r"^y contains NaN or infinity", call, model, method,
                        X, y_bad, loss="mae")
    with np.errstate(over="ignore"):  # finite, but not in float32: the message says why
        assert_rejected(model, ValueError, r"^y contains NaN or infinity \(after conversion to "
                        r"float32\)$", call, model, method, X, np.full((N_ROWS, N_OUT), 1e39),
                        loss="mse")


@pytest.mark.parametrize("bad", [-0.1, 1.5, 2.0])
@pytest.mark.parametrize("method", XY_METHODS)
def test_bce_targets_outside_0_1_are_rejected(model, good, method, bad):
    y = real_targets()
    y[1, 1] = bad
    assert_rejected(model, ValueError, r"^y must be in \[0, 1\] for binary_cross_entropy", call,
                    model, method, good[0], y, loss="binary_cross_entropy")


# ------------------------------------------------------------------------------ arguments
@pytest.mark.parametrize("value", [0, -1, 2.5, "32", True, None])
def test_bad_batch_size(model, good, value):
    assert_rejected(model, ValueError, r"^batch_size must be a positive int", call, model, "fit",
                    *good, batch_size=value)


@pytest.mark.parametrize("value", [0, -3, 1.0, "2", False])
def test_bad_epochs(model, good, value):
    X, y = good
    assert_rejected(model, ValueError, r"^epochs must be a positive int", model.fit, X, y,
                    epochs=value, verbose=0)


@pytest.mark.parametrize("value", [0, -2, 1.5, "2", True])
@pytest.mark.parametrize("method", X_METHODS)
def test_bad_n_threads(model, good, method, value):
    assert_rejected(model, ValueError, r"^n_threads must be None, -1 or an int in \[1, 4096\]", call,
                    model, method, *good, n_threads=value)


@pytest.mark.parametrize("method", ["fit", "train_step", "loss_and_grad"])
@pytest.mark.parametrize("name", ["l1", "l2"])
@pytest.mark.parametrize("value", [-0.1, float("nan"), float("inf"), "0.1", True])
def test_bad_penalty(model, good, method, name, value):
    assert_rejected(model, ValueError, rf"^{name} must be a finite number >= 0", call, model,
                    method, *good, **{name: value})


def test_bad_fit_flags(model, good):
    X, y = good
    assert_rejected(model, TypeError, r"^shuffle must be a bool", model.fit, X, y, shuffle="yes",
                    verbose=0)
    assert_rejected(model, ValueError, r"^verbose must be 0, 1 or 2", model.fit, X, y, verbose=3)
    for seed in (-1, 1.5, "1", True):
        assert_rejected(model, ValueError, r"^seed must be a non-negative int", model.fit, X, y,
                        seed=seed, verbose=0)


@pytest.mark.parametrize("method", XY_METHODS)
def test_unknown_loss(model, good, method):
    assert_rejected(model, ValueError, r"^loss must be a gdcore.losses.Loss or one of", call,
                    model, method, *good, loss="cross_entropyy")
    assert_rejected(model, ValueError, r"^loss must be", call, model, method, *good, loss=3)


def test_evaluate_needs_a_loss_before_fit(model, good):
    assert_rejected(model, ValueError, r"^loss is required", model.evaluate, *good)


@pytest.mark.parametrize("method", ["fit", "train_step"])
def test_unknown_optimizer(model, good, method):
    for optimizer in ("adamax", None, 0.1):
        assert_rejected(model, ValueError, r"^optimizer must be a gdcore.optim.Optimizer", call,
                        model, method, *good, optimizer=optimizer)


def test_unknown_activation():
    for bad in ("swish", 3, "reLU6", "softmax"):
        with pytest.raises(ValueError, match=r"^activation must be one of"):
            gd.Dense(2, 3, activation=bad)
    with pytest.raises(ValueError, match=r"^activation must be one of"):
        gd.MLP([2, 3, 1], activation="swish")
    with pytest.raises(ValueError, match=r"^output_activation must be one of"):
        gd.MLP([2, 3, 1], output_activation="softmax")
    # the aliases that are allowed
    assert gd.Dense(2, 3, activation=None).activation == "identity"
    assert gd.Dense(2, 3, activation="ReLU").activation == "relu"


def test_bad_loss_parameters():
    for delta in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"^delta must be a positive finite number"):
            gd.losses.Huber(delta=delta)


# ------------------------------------------------------------------------------ construction
def test_layers_with_mismatched_sizes():
    with pytest.raises(ValueError, match=r"^layers\[0\] has 5 outputs but layers\[1\] expects 6"):
        gd.Sequential([gd.Dense(4, 5), gd.Dense(6, 3)])
    with pytest.raises(ValueError, match=r"^layers\[1\] has 3 outputs but layers\[2\] expects 2"):
        gd.Sequential([gd.Dense(4, 5), gd.Dense(5, 3), gd.Dense(2, 1)])


def test_bad_layers():
    with pytest.raises(ValueError, match=r"^layers must hold at least one"):
        gd.Sequential([])
    with pytest.raises(TypeError, match=r"^layers\[1\] must be a gdcore.Dense"):
        gd.Sequential([gd.Dense(4, 5), "dense"])
    shared = gd.Dense(4, 3)
    gd.Sequential([shared])
    with pytest.raises(ValueError, match=r"^layers\[0\] already belongs to a model"):
        gd.Sequential([shared])
    twice = gd.Dense(3, 3)
    with pytest.raises(ValueError, match=r"^layers\[2\] is the same Dense as layers\[0\]"):
        gd.Sequential([twice, gd.Dropout(0.5), twice])
    assert twice.W is None  # refused before it became a view of any model
    dropout = gd.Dropout(0.5)  # a Dropout holds no parameters: listing one twice is fine
    gd.Sequential([gd.Dense(3, 3), dropout, gd.Dense(3, 3), dropout, gd.Dense(3, 2)])
    with pytest.raises(ValueError, match=r"^layers: at most 64"):
        gd.Sequential([gd.Dense(2, 2) for _ in range(65)])
    for bad in (0, -1, 2.5, True, "3"):
        with pytest.raises(ValueError, match=r"^n_in must be a positive int"):
            gd.Dense(bad, 3)
        with pytest.raises(ValueError, match=r"^n_out must be a positive int"):
            gd.Dense(3, bad)
    with pytest.raises(ValueError, match=r"^init must be"):
        gd.Dense(3, 3, init="ones")
    with pytest.raises(ValueError, match=r"^sizes must list at least"):
        gd.MLP([3])


@pytest.mark.parametrize("dtype", ["int32", "float16", "complex128", "nonsense", np.int64,
                                   "object", "float128"])
def test_bad_dtype_for_sequential(dtype):
    with pytest.raises(ValueError, match=r"^dtype must be 'float32' or 'float64'"):
        gd.Sequential([gd.Dense(2, 3)], dtype=dtype)
    with pytest.raises(ValueError, match=r"^dtype must be"):
        gd.MLP([2, 3], dtype=dtype)


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True, None])
def test_bad_model_seed(seed):
    with pytest.raises(ValueError, match=r"^seed must be a non-negative int"):
        gd.MLP([2, 3], seed=seed)


# ------------------------------------------------------------------------------ set_weights
def test_set_weights_rejects_bad_lists_without_writing_anything(model):
    good = [w + 1.0 for w in model.get_weights()]  # a valid new set
    shapes = [w.shape for w in good]
    assert_rejected(model, ValueError, r"^weights must hold 4 arrays", model.set_weights, good[:3])
    assert_rejected(model, ValueError, r"^weights must hold 4 arrays", model.set_weights,
                    good + [good[0]])
    # the first arrays are fine; a later one is bad; nothing may be written
    cases = [
        (2, np.zeros((shapes[2][1], shapes[2][0])), ValueError, r"^weights\[2\] must have shape"),
        (3, np.zeros(shapes[3][0] + 1), ValueError, r"^weights\[3\] must have shape"),
        (1, np.zeros(shapes[1], dtype=complex), TypeError, r"^weights\[1\] must be real"),
        (2, np.full(shapes[2], "x"), TypeError, r"^weights\[2\] must be real"),
        (3, np.array([None] * shapes[3][0]), TypeError, r"^weights\[3\] must be real"),
        (3, np.full(shapes[3], np.nan), ValueError, r"^weights\[3\] contains NaN"),
        (2, np.full(shapes[2], np.inf), ValueError, r"^weights\[2\] contains NaN"),
        (3, np.full(shapes[3], 1e39), ValueError, r"^weights\[3\] contains NaN"),  # float32 overflow
    ]
    for index, bad, exc, match in cases:
        weights = list(good)
        weights[index] = bad
        with np.errstate(over="ignore"):
            assert_rejected(model, exc, match, model.set_weights, weights)
    model.set_weights(good)  # and the valid set does go in
    for new, now in zip(good, model.get_weights()):
        np.testing.assert_array_equal(now, new.astype(np.float32))


# ------------------------------------------------------------------------------ what is allowed
def test_reasonable_inputs_are_accepted(model, good):
    """The checks are not too strict: lists, ints, float class indices, bools for bce."""
    X, y = good
    model.fit(X.tolist(), y.tolist(), epochs=1, verbose=0)
    model.fit(X.astype(np.int32), y.astype(np.float64), epochs=1, verbose=0)
    model.fit(np.asfortranarray(X), y.astype(np.uint8), epochs=1, verbose=0)
    model.fit(X[::-1], y[::-1], epochs=1, batch_size=np.int64(2), n_threads=-1, verbose=0)
    model.train_step(X, (real_targets() > 0.5), loss="binary_cross_entropy")
    one_output = gd.MLP([N_IN, 1], seed=0)
    one_output.fit(X, np.linspace(-1, 1, N_ROWS), loss="mse", epochs=1, verbose=0)
    assert one_output.predict(X).shape == (N_ROWS, 1)
    single_feature = gd.MLP([1, 2], seed=0)
    assert single_feature.predict(np.arange(3.0)).shape == (3, 2)  # 1-D X for one feature


def test_empty_activation_name_and_none_dtype_are_refused():
    with pytest.raises(ValueError, match="activation"):
        gd.Dense(3, 2, activation="")
    with pytest.raises(ValueError, match="dtype"):
        gd.Sequential([gd.Dense(3, 2)], dtype=None)


def test_predict_proba_of_one_output_keeps_tiny_probabilities_exact():
    model = gd.Sequential([gd.Dense(1, 1)], dtype="float32")
    model.set_weights([np.ones((1, 1)), np.zeros(1)])
    z = np.array([[-17.3], [-40.0], [0.0], [30.0]], dtype=np.float32)
    expected = 1 / (1 + np.exp(-z.astype(np.float64)))
    np.testing.assert_allclose(model.predict_proba(z), expected, rtol=1e-6)


@pytest.mark.parametrize("value", [10**400, np.longdouble("1e4000"), float("nan"), "0.1", True])
def test_estimator_and_schedule_numbers_refuse_the_same_values(value):
    """One check_real serves the schedules and the estimators: out-of-range ints and long doubles
    are refused with a ValueError naming the argument, not a NumPy TypeError or an inf."""
    pytest.importorskip("sklearn", minversion="1.6")
    from gdcore.sklearn import GDRegressor
    with pytest.raises(ValueError, match="gamma must be a finite number"):
        gd.schedules.ExponentialLR(gamma=value)
    with pytest.raises(ValueError, match="alpha must be a finite number"):
        GDRegressor(alpha=value).fit(np.zeros((4, 2)), np.zeros(4))


@pytest.mark.filterwarnings("ignore:GDRegressor. maximum iterations")  # 50 iterations suffice here
def test_fraction_is_a_number_for_estimators_too():
    pytest.importorskip("sklearn", minversion="1.6")
    from gdcore.sklearn import GDRegressor
    model = GDRegressor(alpha=Fraction(1, 1000), max_iter=50, tol=1e-3).fit(np.ones((8, 2)),
                                                                           np.ones(8))
    assert model.alpha == Fraction(1, 1000) and np.isfinite(model.loss_)


@pytest.mark.parametrize("bad", [10**400, -10**400, Fraction(-1, 3), float("nan"), "0.1", [1.0]])
def test_number_arguments_beyond_float_or_of_other_types_name_the_argument(bad):
    """np.isfinite cannot take Fractions or ints beyond float's range; every check names its
    argument instead of leaking NumPy's ufunc error."""
    X, y = np.zeros((4, 3)), np.array([0, 1, 0, 1])
    model = gd.MLP([3, 2], seed=0)
    for call, name in ((lambda: model.fit(X, y, l1=bad, verbose=0), "l1"),
                       (lambda: model.loss_and_grad(X, y, loss="cross_entropy", l2=bad), "l2"),
                       (lambda: gd.Dense(3, 2, l2=bad), "l2"),
                       (lambda: gd.optim.Adam(lr=bad), "lr"),
                       (lambda: gd.optim.SGD(lr=0.1, momentum=bad), "momentum"),
                       (lambda: gd.losses.Huber(bad), "delta"),
                       (lambda: gd.callbacks.EarlyStopping(min_delta=bad), "min_delta"),
                       (lambda: model.fit(X, y, validation_split=bad, verbose=0),
                        "validation_split")):
        with pytest.raises(ValueError, match=f"^{name} must be"):
            call()


def test_exact_numbers_of_other_types_are_taken():
    X, y = np.zeros((8, 3)), np.array([0, 1] * 4)
    model = gd.MLP([3, 2], seed=0)
    model.fit(X, y, l2=Fraction(1, 10), validation_split=np.float32(0.25), epochs=1, verbose=0)
    assert model.history_.history["val_loss"]
    assert gd.losses.Huber(Fraction(1, 2)).delta == 0.5
    assert gd.optim.Adam(lr=Fraction(1, 100)).lr == 0.01


def test_a_layers_settings_are_fixed_in_a_model_and_its_arrays_are_copied_into():
    """A model builds its network from its layers: a later change of activation or penalty was
    silently ignored, and ``layer.W = array`` rebound the attribute, so that the model trained
    weights that get_weights no longer showed."""
    X, y = np.random.default_rng(0).normal(size=(12, 3)), np.arange(12) % 2
    model = gd.MLP([3, 4, 2], seed=0)
    layer = model.layers[0]
    for name, value in (("activation", "tanh"), ("l2", 0.1), ("n_out", 5), ("init", "zeros")):
        with pytest.raises(AttributeError, match=f"^{name} is fixed once the layer is in a model"):
            setattr(layer, name, value)
    layer.W = np.ones((3, 4))  # copied into the model's parameters
    assert np.shares_memory(layer.W, model._params) and model.get_weights()[0].sum() == 12
    before = model.get_weights()
    for name, value, match in (("W", np.ones((3, 5)), "shape"), ("b", [np.nan] * 4, "NaN"),
                               ("b", ["a"] * 4, "numeric")):
        with pytest.raises(ValueError, match=f"^{name} .*{match}"):
            setattr(layer, name, value)
    for w, w0 in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, w0)
    model.fit(X, y, epochs=1, verbose=0)
    assert not np.array_equal(model.get_weights()[0], before[0])  # the weights shown are trained
    loose = gd.Dense(3, 2)  # not in a model: settings can change, checked as the constructor's
    loose.l2 = 0.5
    with pytest.raises(ValueError, match="^l2 must be"):
        loose.l2 = -1
    with pytest.raises(ValueError, match="^init must be"):
        loose.init = ["zeros"]
    assert loose.l2 == 0.5


def test_a_dropout_rate_is_fixed():
    dropout = gd.Dropout(0.25)
    model = gd.Sequential([gd.Dense(3, 4), dropout, gd.Dense(4, 2)])
    with pytest.raises(AttributeError, match="Dropout's rate is fixed"):
        dropout.rate = 0.9  # the model would train with 0.25 and save 0.9
    assert model.get_config()["layers"][1]["rate"] == 0.25
    assert gd.Dropout(np.float32(0.5)).rate == 0.5
    with pytest.raises(ValueError, match=r"^rate must be a number in \[0, 1\)"):
        gd.Dropout(10**400)


# ----------------------------------------------------------- session 9 review: messages
def test_nan_written_into_a_weight_view_is_named_not_blamed_on_x(model, good):
    """predict said "X: the network's output overflows ... for these finite inputs", and the
    training calls "the loss is NaN ... Try a smaller learning rate"."""
    X, y = good
    model.layers[1].b[1] = np.nan
    for method in X_METHODS:
        with pytest.raises(ValueError, match=r"weights contain NaN or infinity \(first at "
                                             r"layers\[1\]\.b\[1\]\)"):
            call(model, method, X, y)


def test_a_finite_loss_with_an_overflowing_gradient_says_gradient():
    model = gd.Sequential([gd.Dense(1, 1), gd.Dense(1, 2)])
    model.layers[0].W[...] = 1e-20
    model.layers[0].b[...] = 0
    model.layers[1].W[...] = [[1e30, -1e30]]
    model.layers[1].b[...] = 0
    X = np.array([[1e10]], dtype=np.float32)
    assert np.isfinite(model.evaluate(X, [1], loss="cross_entropy")["loss"])
    with pytest.raises(gd.DivergenceError, match="the loss or a gradient is NaN or infinite"):
        model.loss_and_grad(X, [1], loss="cross_entropy")


@pytest.mark.parametrize("make, name", [
    (lambda: gd.optim.Adam(eps=1e39), "eps"),
    (lambda: gd.optim.RMSprop(eps=1e39), "eps"),
    (lambda: gd.optim.Adagrad(initial_accumulator_value=1e39), "initial_accumulator_value"),
    (lambda: gd.optim.SGD(lr=1e39), "lr"),
])
def test_hyperparameters_beyond_float32_are_refused_before_anything_changes(model, good, make,
                                                                             name):
    """eps=1e39 became inf in the float32 core and froze every weight, silently."""
    X, y = good
    before = model.get_weights()
    for method in ("fit", "train_step"):
        with pytest.raises(ValueError, match=f"{name}=1e\\+39 is beyond the range of this float32"):
            call(model, method, X, y, optimizer=make())
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert model.history_ is None
    gd.MLP([N_IN, 5, N_OUT], dtype="float64").fit(X, y, optimizer=make(), epochs=1, verbose=0)


def test_a_learning_rate_set_to_zero_freezes_the_weights(model, good):
    """opt.lr = 0 is documented as allowed (as a schedule's may be), but fit refused it with
    "base_lr must be > 0" after it had taken over the optimizer's state."""
    X, y = good
    opt = gd.optim.SGD(lr=0.1, momentum=0.9)
    model.fit(X, y, optimizer=opt, epochs=1, verbose=0)
    opt.lr = 0
    before = model.get_weights()
    model.fit(X, y, optimizer=opt, epochs=2, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


@pytest.mark.parametrize("X, dtype", [([[10**39, 0]], "float32"),
                                      (np.array([[np.longdouble(10) ** 400, 0]]), "float64")])
def test_conversion_note_for_ints_and_long_doubles(X, dtype):
    if np.finfo(np.longdouble).max < 1e400 and dtype == "float64":
        pytest.skip("long double is float64 here")
    with pytest.raises(ValueError, match=f"after conversion to {dtype}"):
        gd.MLP([2, 2], dtype=dtype).predict(X)


def test_a_callback_setting_a_hyperparameter_beyond_float32_is_refused(model, good):
    """The range check ran at fit's start only: eps=1e39 set by a callback froze the weights
    for the rest of the fit, silently."""
    X, y = good
    opt = gd.optim.Adam(lr=0.01)
    callback = gd.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: setattr(opt, "eps", 1e39) if epoch == 0 else None)
    with pytest.raises(ValueError, match=r"eps=1e\+39 is beyond the range"):
        model.fit(X, y, optimizer=opt, epochs=3, verbose=0, callbacks=[callback])
    assert model.history_.epoch == [0]
