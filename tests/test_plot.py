"""gdcore.plot: the loss curve and the loss landscape, rendered to PNG files and read back."""
import importlib
import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
import matplotlib.figure  # noqa: E402
import matplotlib.image  # noqa: E402

import gdcore as gd  # noqa: E402
from gdcore import plot  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MISSING = "gdcore.plot needs matplotlib: pip install 'gdcore[plot]'"


def check_png(path, min_width=300, min_height=200):
    """The file is a PNG of sensible size with something drawn on it; returns its pixels."""
    assert path.exists()
    assert path.read_bytes()[:8] == PNG_MAGIC
    pixels = matplotlib.image.imread(path)
    height, width = pixels.shape[:2]
    assert min_width <= width <= 4000 and min_height <= height <= 4000
    rgb = pixels[..., :3]
    assert rgb.std() > 0.01
    assert np.mean(rgb.min(axis=-1) < 0.9) > 0.02  # more than a few stray non-white pixels
    return pixels


@pytest.fixture(scope="module")
def trained():
    """A small classifier trained for a few epochs: (model, X, y, history)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 0.5)
    model = gd.MLP([4, 8, 3], activation="tanh", seed=1)
    history = model.fit(X[:90], y[:90], loss="cross_entropy",
                        optimizer=gd.optim.SGD(lr=0.2, momentum=0.9), epochs=12, batch_size=16,
                        seed=0, schedule=gd.schedules.ExponentialLR(gamma=0.7),
                        validation_data=(X[90:], y[90:]), verbose=0)
    return model, X[:90], y[:90], history


def reference_direction(model, seed):
    """Li et al.'s filter-normalized direction, written out independently of gdcore.plot."""
    rng = np.random.default_rng(seed)
    direction = []
    for W, b in zip(model.get_weights()[::2], model.get_weights()[1::2]):
        W = W.astype(np.float64)
        D = rng.standard_normal(W.shape)
        for j in range(W.shape[1]):  # a filter of a dense layer: one output neuron, column j
            D[:, j] *= np.linalg.norm(W[:, j]) / np.linalg.norm(D[:, j])
        direction += [D, np.zeros_like(b, dtype=np.float64)]
    return direction


# ---------------------------------------------------------------------- loss curve
def test_loss_curve_from_history_writes_a_png_with_lr_on_a_second_axis(trained, tmp_path):
    _, _, _, history = trained
    figure = plot.loss_curve(history, tmp_path / "curve.png")
    check_png(tmp_path / "curve.png")
    assert isinstance(figure, matplotlib.figure.Figure)
    main, lr_axis = figure.axes  # the twin axis holds the learning rate
    assert [line.get_label() for line in main.get_lines()] == ["training loss", "validation loss"]
    np.testing.assert_allclose(main.get_lines()[0].get_ydata(), history.history["loss"])
    np.testing.assert_allclose(lr_axis.get_lines()[0].get_ydata(), history.history["lr"])
    assert lr_axis.get_yscale() == "log"  # 0.7**11: the rate spans a factor of 50
    assert main.get_xlabel() == "epoch" and main.get_ylabel() == "loss" and main.get_title()
    assert main.get_legend() is not None


def test_loss_curve_accepts_a_plain_dict(tmp_path):
    figure = plot.loss_curve({"loss": [2.0, 1.0, 0.7, 0.6]}, path=tmp_path / "dict.png")
    check_png(tmp_path / "dict.png")
    (ax,) = figure.axes  # no lr: no second axis
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), [1, 2, 3, 4])
    assert ax.get_yscale() == "linear"
    figure = plot.loss_curve({"loss": [100.0, 1.0, 0.01], "lr": [0.1, 0.1, 0.1]})
    assert figure.axes[0].get_yscale() == "log"
    assert figure.axes[1].get_yscale() == "linear"


def test_loss_curve_draws_into_a_given_axes(tmp_path):
    figure = plot._new_figure((8, 3))
    left, right = figure.subplots(1, 2)
    assert plot.loss_curve({"loss": [1.0, 0.5]}, ax=right, path=tmp_path / "ax.png") is figure
    assert len(right.get_lines()) == 1 and len(left.get_lines()) == 0
    check_png(tmp_path / "ax.png")


def test_loss_curve_rejects_a_history_without_losses():
    with pytest.raises(ValueError, match="no 'loss'"):
        plot.loss_curve({"val_loss": [1.0]})
    with pytest.raises(TypeError, match="History or a dict"):
        plot.loss_curve([1.0, 0.5])


@pytest.mark.parametrize("history, exc, match", [
    ({"loss": ["a", "b"]}, TypeError, r"^history\['loss'\] must be numeric"),
    ({"loss": [1.0, 0.5], "val_loss": ["a", "b"]}, TypeError, r"^history\['val_loss'\]"),
    ({"loss": [1.0, 0.5], "lr": [0.1j, 0.1]}, TypeError, r"^history\['lr'\] must be real"),
    ({"loss": [[1.0, 0.5], [1.0]]}, ValueError, r"^history\['loss'\] cannot be read"),
    ({"loss": [2**1100]}, ValueError, r"^history\['loss'\] holds a number too large"),
    ({"loss": [1.0, 0.5], "lr": 0.1}, ValueError, r"^history\['lr'\] must be a list of numbers"),
])
def test_loss_curve_refuses_non_numeric_history_values_naming_the_key(history, exc, match):
    """These raised NumPy's "could not convert string to float" (or len() of a float), not
    naming history."""
    with pytest.raises(exc, match=match):
        plot.loss_curve(history)


def test_training_report_refuses_a_non_numeric_history(trained, tmp_path):
    model, X, y, _ = trained
    with pytest.raises(TypeError, match=r"^history\['loss'\] must be numeric"):
        plot.training_report({"loss": ["a"]}, model, X, y, tmp_path / "r.png", steps=3)
    assert not (tmp_path / "r.png").exists()


# ---------------------------------------------------------------------- loss landscape
def test_filter_normalized_directions_match_li_et_al(trained):
    model = trained[0]
    for seed in ([0, 0], [0, 1], 7):
        got = plot.filter_normalized_direction(model, seed)
        want = reference_direction(model, seed)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=0)
    d1, d2 = (plot.filter_normalized_direction(model, [0, k]) for k in (0, 1))
    assert not np.allclose(d1[0], d2[0])  # independent draws


def test_landscape_grid_equals_direct_evaluations(trained, tmp_path):
    model, X, y, _ = trained
    before = model.get_weights()
    result = plot.loss_landscape(model, X, y, steps=9, span=0.8, seed=3,
                                 path=tmp_path / "landscape.png")
    check_png(tmp_path / "landscape.png")

    # The model is left exactly as it was.
    for a, b in zip(model.get_weights(), before):
        assert a.dtype == b.dtype and np.array_equal(a, b)

    alphas, betas, losses, center_loss, directions, figure = result
    np.testing.assert_allclose(alphas, np.linspace(-0.8, 0.8, 9), atol=1e-15)
    assert alphas[4] == 0.0 and np.array_equal(alphas, betas)
    assert losses.shape == (9, 9) and np.isfinite(losses).all()
    assert center_loss == model.evaluate(X, y)["loss"]
    assert losses[4, 4] == center_loss
    assert losses.min() == center_loss  # a trained point of a convex-ish small problem
    # Directions: reproduced from the documented seeded draw, bias directions zero.
    for got, want in zip(directions, (reference_direction(model, [3, 0]),
                                      reference_direction(model, [3, 1]))):
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=0)
        assert not any(d.any() for d in got[1::2])

    # Every point checked against its own evaluation on a clone with θ + α·d1 + β·d2.
    d1, d2 = reference_direction(model, [3, 0]), reference_direction(model, [3, 1])
    clone = gd.Sequential.from_config(model.get_config())
    for i, j in [(0, 0), (0, 8), (8, 8), (2, 6), (4, 7), (7, 1)]:
        clone.set_weights([w.astype(np.float64) + alphas[i] * u + betas[j] * v
                           for w, u, v in zip(before, d1, d2)])
        direct = clone.evaluate(X, y, loss="cross_entropy")["loss"]
        np.testing.assert_allclose(losses[i, j], direct, rtol=1e-6)
        assert losses[i, j] > center_loss
    # losses[i, j] is (α_i, β_j): the transpose would differ on this random plane.
    assert not np.allclose(losses, losses.T)

    ax = figure.axes[0]
    assert "α" in ax.get_xlabel() and "β" in ax.get_ylabel() and ax.get_title()
    assert len(figure.axes) == 2  # the plot and its colorbar
    assert ax.get_legend() is not None


def test_landscape_float64_regression_and_the_fit_loss(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 3))
    y = X @ np.array([1.0, -1.0, 0.5]) + 0.3
    model = gd.MLP([3, 6, 1], activation="relu", dtype="float64", seed=0)
    model.fit(X, y, loss="mse", optimizer="sgd", lr=0.05, epochs=20, verbose=0)
    before = model.get_weights()
    result = plot.loss_landscape(model, X, y, steps=8, span=0.5, seed=0, path=tmp_path / "mse.png")
    check_png(tmp_path / "mse.png")
    assert result.losses.shape == (8, 8) and 0.0 not in result.alphas  # even: no centre point
    assert result.center_loss == model.evaluate(X, y, loss="mse")["loss"]
    d1, d2 = result.directions
    clone = gd.Sequential.from_config(model.get_config())
    clone.set_weights([w + result.alphas[5] * u + result.betas[2] * v
                       for w, u, v in zip(before, d1, d2)])
    np.testing.assert_allclose(result.losses[5, 2], clone.evaluate(X, y, loss="mse")["loss"],
                               rtol=1e-12)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))


def test_landscape_restores_the_weights_when_evaluation_fails(trained, monkeypatch):
    model, X, y, _ = trained
    before = model.get_weights()
    calls = []
    real_evaluate = model.evaluate

    def failing_evaluate(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:  # midway through the sweep, the weights moved
            raise RuntimeError("boom")
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(model, "evaluate", failing_evaluate)
    with pytest.raises(RuntimeError, match="boom"):
        plot.loss_landscape(model, X, y, steps=9)
    assert len(calls) == 5
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))


@pytest.mark.parametrize("kwargs, match", [({"steps": 1}, "steps"), ({"steps": 2.5}, "steps"),
                                           ({"span": 0.0}, "span"), ({"span": np.inf}, "span"),
                                           ({"seed": -1}, "seed")])
def test_landscape_rejects_bad_arguments(trained, kwargs, match):
    model, X, y, _ = trained
    with pytest.raises(ValueError, match=match):
        plot.loss_landscape(model, X, y, **kwargs)


def test_landscape_rejects_bad_data_before_moving_the_weights(trained):
    model, X, y, _ = trained
    before = model.get_weights()
    with pytest.raises(ValueError, match="features"):
        plot.loss_landscape(model, X[:, :3], y, steps=3)
    with pytest.raises(ValueError, match="class indices"):
        plot.loss_landscape(model, X, y + 5, steps=3)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))


# ---------------------------------------------------------------------- report
def test_training_report_writes_both_panels_into_one_png(trained, tmp_path):
    model, X, y, history = trained
    before = model.get_weights()
    result = plot.training_report(history, model, X, y, tmp_path / "report.png", steps=9,
                                  max_samples=None)
    pixels = check_png(tmp_path / "report.png", min_width=1000)
    assert pixels.shape[1] > 1.8 * pixels.shape[0]  # two panels side by side
    titles = [ax.get_title() for ax in result.figure.axes]
    assert "Loss per epoch" in titles
    assert any(title.startswith("Loss landscape") for title in titles)
    assert result.center_loss == model.evaluate(X, y)["loss"]
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))


def test_training_report_subsamples_large_data(trained, tmp_path):
    model, X, y, history = trained
    result = plot.training_report(history, model, X, y, tmp_path / "sub.png", steps=3,
                                  max_samples=30)
    (title,) = [ax.get_title() for ax in result.figure.axes if "landscape" in ax.get_title()]
    assert "on 30 samples" in title
    check_png(tmp_path / "sub.png", min_width=1000)


# ---------------------------------------------------------------------- backend, optional import
def test_plots_leave_the_global_backend_alone(trained, tmp_path):
    # The raw rcParams entry: reading rcParams["backend"] would itself resolve a backend.
    backend = dict.__getitem__(matplotlib.rcParams, "backend")
    had_pyplot = "matplotlib.pyplot" in sys.modules
    plot.check_matplotlib()
    plot.loss_curve({"loss": [1.0, 0.5]}, tmp_path / "b.png")
    model, X, y, _ = trained
    plot.loss_landscape(model, X, y, steps=3, path=tmp_path / "c.png")
    from gdcore import bench  # its chart too (it switched the process to Agg)
    bench.plot_rows([{"framework": "gdcore", "label": "gdcore", "shape": "small", "threads": 1,
                      "samples": 64, "all_cores": False, "seconds": 1.0, "ratio": 1.0}],
                    tmp_path / "d.png")
    assert dict.__getitem__(matplotlib.rcParams, "backend") == backend
    if not had_pyplot:
        assert "matplotlib.pyplot" not in sys.modules


def test_missing_matplotlib_raises_a_clear_import_error(trained, monkeypatch):
    model, X, y, history = trained
    for name in [name for name in sys.modules if name == "matplotlib" or name.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)  # `import matplotlib...` now fails
    # gdcore.plot itself imports without matplotlib.
    monkeypatch.delitem(sys.modules, "gdcore.plot")
    monkeypatch.setattr(gd, "plot", plot, raising=False)
    fresh = importlib.import_module("gdcore.plot")
    assert fresh is not plot
    before = model.get_weights()
    for module in (fresh, plot):
        with pytest.raises(ImportError, match="gdcore.plot needs matplotlib"):
            module.check_matplotlib()
        with pytest.raises(ImportError, match=r"^gdcore\.plot needs matplotlib: pip install 'gdcore\[plot\]'$"):
            module.loss_curve({"loss": [1.0]})
        with pytest.raises(ImportError) as info:
            module.loss_landscape(model, X, y, steps=3)
        assert str(info.value) == MISSING
        with pytest.raises(ImportError, match="gdcore.plot needs matplotlib"):
            module.training_report(history, model, X, y, "never.png")
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))


def test_landscape_points_beyond_the_dtypes_range_are_nan_gaps(trained):
    """Far from the trained point the weights, the output or the loss overflow: those points
    are NaN (drawn as gaps), the rest of the sweep goes on, the weights come back."""
    model, X, y, _ = trained
    model32 = gd.MLP([4, 8, 3], activation="relu", dtype="float32", seed=1)
    model32.set_weights(model.get_weights())
    before = model32.get_weights()
    for span in (1e25, 1e39):
        result = plot.loss_landscape(model32, X, y, loss="cross_entropy", steps=5, span=span)
        assert np.isnan(result.losses).any() and np.isfinite(result.losses[2, 2])
        assert not np.isinf(result.losses).any()
    regression = gd.MLP([4, 8, 2], dtype="float64", seed=1)
    result = plot.loss_landscape(regression, X, X[:, :2], loss="mse", steps=5, span=1e160)
    assert np.isnan(result.losses).any() and not np.isinf(result.losses).any()
    assert all(np.array_equal(a, b) for a, b in zip(model32.get_weights(), before))
    with pytest.raises(ValueError, match="span"):
        plot.loss_landscape(model32, X, y, span=10**400)


def test_training_report_checks_the_data_before_subsampling(trained, tmp_path):
    model, X, y, history = trained
    with pytest.raises(ValueError, match="y"):
        plot.training_report(history, model, X, y[:20], tmp_path / "r.png", max_samples=30)
    with pytest.raises((ValueError, TypeError), match="y"):
        plot.training_report(history, model, X, None, tmp_path / "r.png", max_samples=10)
    assert not (tmp_path / "r.png").exists()


def test_landscape_of_a_plateau_a_few_ulps_deep_is_drawn_flat():
    """Saturated sigmoid outputs: losses a few ulps apart gave repeated contour levels and
    matplotlib's 'Contour levels must be increasing' after all the evaluations."""
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(50, 5)), np.eye(3)[rng.integers(0, 3, 50)]
    model = gd.Sequential([gd.Dense(5, 8, activation="sigmoid"),
                           gd.Dense(8, 3, activation="sigmoid")], seed=1, dtype="float64")
    model.layers[1].b[...] = 34.0
    result = plot.loss_landscape(model, X, Y, loss="mse", steps=7)
    assert np.ptp(result.losses) < 1e-12
    assert any("flat" in text.get_text() for text in result.figure.axes[0].texts)


def test_landscape_refuses_a_span_matplotlib_cannot_draw(trained):
    """span=1e308 passed the check, then its grid linspace(-span, span) overflowed to NaN and
    matplotlib refused NaN axis limits after every evaluation."""
    model, X, y, _ = trained
    with pytest.raises(ValueError, match="span must be a number in"):
        plot.loss_landscape(model, X, y, steps=3, span=1e308)
    result = plot.loss_landscape(model, X, y, steps=3, span=1e300)
    assert np.isfinite(result.alphas).all() and result.alphas[1] == 0.0


@pytest.mark.parametrize("seed", [None, -1, 1.5])
def test_training_report_checks_its_seed_before_subsampling(trained, tmp_path, seed):
    model, X, y, history = trained
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        plot.training_report(history, model, X, y, tmp_path / "r.png", steps=3,
                             seed=seed, max_samples=5)
