"""Plots of training: the loss curve, and the loss landscape around the trained weights.

matplotlib is an optional dependency (``pip install 'gdcore[plot]'``), imported only when a
function here runs. Figures are built on ``matplotlib.figure.Figure`` with the Agg canvas, not
through pyplot: no display is needed and the user's chosen backend is left alone.
"""
import math
from typing import Any, List, NamedTuple

import numpy as np

from ._validation import _as_real_array, check_positive_int, check_seed, check_X, finite_float

_MATPLOTLIB_MISSING = "gdcore.plot needs matplotlib: pip install 'gdcore[plot]'"
_LOG_SCALE_RATIO = 30.0  # max/min above which loss axes and contour levels go logarithmic
_DPI = 120


def _new_figure(figsize, layout="constrained"):
    """A Figure on an Agg canvas (no pyplot, no display, no global backend change)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(_MATPLOTLIB_MISSING) from exc
    figure = Figure(figsize=figsize, layout=layout)
    FigureCanvasAgg(figure)
    return figure


def check_matplotlib():
    """Raise ImportError with the install hint when matplotlib is missing (for callers such as
    ``gdcore train --plot`` that want to fail before training, not after)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(_MATPLOTLIB_MISSING) from exc


def _save(figure, path):
    if path is not None:
        figure.savefig(path, format="png", dpi=_DPI)


def _wide_range(values):
    """True when the finite values are all positive and span more than _LOG_SCALE_RATIO."""
    finite = values[np.isfinite(values)]
    return finite.size > 0 and finite.min() > 0 and finite.max() / finite.min() > _LOG_SCALE_RATIO


def _log_axis(axis):
    """Label a log-scaled axis at 1-2-5 steps in plain numbers (0.05, not 5×10⁻²)."""
    from matplotlib import ticker

    axis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(ticker.FormatStrFormatter("%.3g"))
    axis.set_minor_locator(ticker.NullLocator())


# ---------------------------------------------------------------------- loss curve
def _history_series(values, key):
    """``values[key]`` as a 1-D float64 array (None when absent); refuses non-numbers, naming
    history and the key."""
    if values.get(key) is None:
        return None
    name = f"history[{key!r}]"
    series = _as_real_array(values[key], name)
    if series.ndim != 1:
        raise ValueError(f"{name} must be a list of numbers, one per epoch, got shape "
                         f"{series.shape}")
    return series.astype(np.float64)


def loss_curve(history, path=None, ax=None):
    """Training (and validation) loss per epoch, with the learning rate on a second axis.

    Parameters
    ----------
    history : gdcore.History or dict
        ``fit``'s History, or a plain dict of per-epoch lists with at least ``"loss"``
        (``"val_loss"`` and ``"lr"`` are drawn when present).
    path : str or path-like, optional
        Write the figure there as a PNG.
    ax : matplotlib Axes, optional
        Draw into this Axes (its figure is returned and saved); by default a new Figure.

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    The loss axis is logarithmic when the losses span more than a factor of 30. Epochs are
    numbered from 1 (``History.epoch`` + 1, so a resumed fit keeps its epoch numbers).
    """
    check_matplotlib()
    from matplotlib import ticker

    values = history.history if hasattr(history, "history") else history
    if not isinstance(values, dict):
        raise TypeError(f"history must be a gdcore.History or a dict, got {type(history).__name__}")
    loss = _history_series(values, "loss")
    if loss is None or loss.size == 0:
        raise ValueError("history has no 'loss' values to plot")
    n_epochs = loss.size
    epoch_index = getattr(history, "epoch", None)
    if epoch_index is not None and len(epoch_index) == n_epochs:
        epochs = np.asarray(epoch_index, dtype=np.int64) + 1
    else:
        epochs = np.arange(1, n_epochs + 1)

    if ax is None:
        figure = _new_figure((7.0, 4.5))
        ax = figure.add_subplot()
    else:
        figure = ax.figure
    marker = "o" if n_epochs <= 40 else None
    handles = [ax.plot(epochs, loss, color="C0", marker=marker, markersize=3.5, lw=1.8,
                       label="training loss")[0]]
    curves = [loss]
    val_loss = _history_series(values, "val_loss")
    if val_loss is not None and val_loss.size == n_epochs:
        handles += ax.plot(epochs, val_loss, color="C1", marker=marker, markersize=3.5, lw=1.8,
                           label="validation loss")
        curves.append(val_loss)
        finite = np.where(np.isfinite(val_loss), val_loss, np.inf)
        if n_epochs > 1 and np.isfinite(finite).any():
            best = int(np.argmin(finite))
            ha = "right" if best == n_epochs - 1 else "left" if best == 0 else "center"
            ax.annotate(f"best {val_loss[best]:.4g}", (epochs[best], val_loss[best]),
                        textcoords="offset points", xytext=(0, 10), ha=ha, fontsize=8,
                        color="C1")
    if _wide_range(np.concatenate(curves)):
        ax.set_yscale("log")
        _log_axis(ax.yaxis)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("Loss per epoch")
    ax.grid(True, which="major", alpha=0.3)
    if n_epochs == 1:
        ax.set_xlim(epochs[0] - 0.5, epochs[0] + 0.5)
    else:
        ax.set_xlim(epochs[0], epochs[-1])
    ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))

    lr = _history_series(values, "lr")
    if lr is not None and lr.size == n_epochs:
        lr_ax = ax.twinx()
        handles += lr_ax.plot(epochs, lr, color="0.45", ls="--", lw=1.3, marker=marker,
                              markersize=2.5, label="learning rate (right axis)")
        if _wide_range(lr):
            lr_ax.set_yscale("log")
            _log_axis(lr_ax.yaxis)
        else:
            top = np.nanmax(lr) if np.isfinite(lr).any() else 1.0
            lr_ax.set_ylim(0, 1.15 * top if top > 0 else 1.0)
        lr_ax.set_ylabel("learning rate", color="0.35")
        lr_ax.tick_params(axis="y", colors="0.35")
    ax.legend(handles=handles, loc="best", framealpha=0.9)
    _save(figure, path)
    return figure


# ---------------------------------------------------------------------- loss landscape
class Landscape(NamedTuple):
    """The loss over a plane of weights: ``loss(θ + α·d1 + β·d2)``.

    Attributes
    ----------
    alphas : ndarray of shape (steps,)
        Coordinates along ``directions[0]``.
    betas : ndarray of shape (steps,)
        Coordinates along ``directions[1]``.
    losses : ndarray of shape (steps, steps)
        ``losses[i, j]`` is the loss at ``α = alphas[i], β = betas[j]`` (NaN where the loss is
        not finite: its weights, the network's output or the loss overflowed).
    center_loss : float
        The loss at the trained weights (α = β = 0), as ``model.evaluate`` gives it.
    directions : list of two lists of ndarray
        d1 and d2 in the layout of ``get_weights()`` ([W_0, b_0, W_1, b_1, ...], float64; the
        bias directions are zero).
    figure : matplotlib.figure.Figure
        The figure the landscape was drawn on.
    """
    alphas: np.ndarray
    betas: np.ndarray
    losses: np.ndarray
    center_loss: float
    directions: List[List[np.ndarray]]
    figure: Any


def filter_normalized_direction(model, seed):
    """A random direction in weight space, filter-normalized as Li et al. (2018).

    For each Dense layer, ``D ~ N(0, 1)`` with the shape of W (n_in, n_out); each filter (one
    output neuron: the column ``D[:, j]``) is rescaled to the norm of the trained column:
    ``D[:, j] ← D[:, j] / ‖D[:, j]‖ · ‖W[:, j]‖``. Bias directions are zero, as the paper does
    for biases. Drawn from ``np.random.default_rng(seed)`` layer by layer, in float64.

    Returns
    -------
    list of ndarray
        ``[D_0, zeros_like(b_0), D_1, zeros_like(b_1), ...]``, the layout of ``get_weights()``.
    """
    rng = np.random.default_rng(seed)
    direction = []
    for layer in model._dense:
        W = np.asarray(layer.W, dtype=np.float64)
        D = rng.standard_normal(W.shape)
        d_norm = np.linalg.norm(D, axis=0)
        scale = np.divide(np.linalg.norm(W, axis=0), d_norm, out=np.zeros_like(d_norm),
                          where=d_norm > 0)
        direction += [D * scale, np.zeros(layer.b.shape, dtype=np.float64)]
    return direction


#: the largest span: matplotlib computes axis ranges as hi - lo, which overflows near 1.8e308
_MAX_SPAN = 1e300


def _grid(steps, span):
    coords = span * np.linspace(-1.0, 1.0, steps)  # not linspace(-span, span): 2·span overflows
    if steps % 2 == 1:
        coords[steps // 2] = 0.0  # the trained point exactly, not 1e-17 off it
    return coords


def loss_landscape(model, X, y, loss=None, *, steps=25, span=1.0, seed=0, n_threads=None,
                   path=None, ax=None):
    """The loss on a 2-D plane of weights through the trained point: the surface that gradient
    descent walks down, after Li et al. (2018), "Visualizing the Loss Landscape of Neural Nets".

    Evaluates ``loss(θ + α·d1 + β·d2)`` on a steps × steps grid, α and β in [−span, span],
    through the C core (``set_weights`` then ``evaluate``), where θ are the trained weights and
    d1, d2 are filter-normalized Gaussian directions (see ``filter_normalized_direction``) drawn
    with seeds ``[seed, 0]`` and ``[seed, 1]``. Each point's weights are formed in float64 as
    ``W + α·D1 + β·D2`` and then rounded to the model's dtype by ``set_weights``. The model's
    weights are restored afterwards, bit for bit, also when an exception interrupts the sweep.

    Parameters
    ----------
    model : gdcore.Sequential
    X : array-like of shape (n_samples, n_inputs)
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
    loss : str or Loss, optional
        Defaults to the loss of the model's last fit. The mean data loss, without penalties
        (as ``evaluate``).
    steps : int, default=25
        Grid points per axis (at least 2; an odd number puts the trained point on the grid).
    span : float, default=1.0
        Half-width of the grid in units of the directions (1.0 moves every filter by its own
        norm); at most 1e300 (matplotlib's axes overflow near the float maximum).
    seed : int, default=0
        Seed of the two directions.
    n_threads : int, optional
        Threads for each evaluation, as ``evaluate``.
    path : str or path-like, optional
        Write the figure there as a PNG.
    ax : matplotlib Axes, optional
        Draw into this Axes; by default a new Figure.

    Returns
    -------
    Landscape
        ``(alphas, betas, losses, center_loss, directions, figure)``.

    Notes
    -----
    Costs steps² forward passes over X: pass a subsample for large data sets.
    """
    from .models import DivergenceError
    check_matplotlib()
    steps = check_positive_int(steps, "steps")
    if steps < 2:
        raise ValueError(f"steps must be at least 2, got {steps}")
    if finite_float(span) is None or not 0 < span <= _MAX_SPAN:
        raise ValueError(f"span must be a number in (0, {_MAX_SPAN:g}], got {span!r}")
    check_seed(seed)
    loss = model._resolve_loss(loss)
    # Validated and converted once; every evaluate below then takes the no-copy path.
    X = check_X(X, model.n_inputs, model.dtype)

    directions = [filter_normalized_direction(model, [seed, k]) for k in (0, 1)]
    alphas, betas = _grid(steps, float(span)), _grid(steps, float(span))
    losses = np.full((steps, steps), np.nan)
    with model._lock:  # no other thread sees the moved weights
        original = model.get_weights()
        center_loss = model.evaluate(X, y, loss=loss, n_threads=n_threads)["loss"]
        theta = [w.astype(np.float64) for w in original]
        try:
            for i, alpha in enumerate(alphas):
                for j, beta in enumerate(betas):
                    with np.errstate(over="ignore"):
                        point = [(t + alpha * d1 + beta * d2).astype(model.dtype)
                                 for t, d1, d2 in zip(theta, *directions)]
                    if not all(np.isfinite(w).all() for w in point):
                        continue  # weights beyond the dtype's range: NaN, drawn as a gap
                    model.set_weights(point)
                    try:
                        value = model.evaluate(X, y, loss=loss, n_threads=n_threads)["loss"]
                    except (DivergenceError, ValueError):
                        # X and y passed the centre's evaluate: a ValueError here is the
                        # network's output overflowing at these weights. NaN, a gap.
                        continue
                    losses[i, j] = value if math.isfinite(value) else np.nan
        finally:
            model.set_weights(original)

    figure = _draw_landscape(alphas, betas, losses, center_loss, loss.name, X.shape[0], ax)
    _save(figure, path)
    return Landscape(alphas, betas, losses, center_loss, directions, figure)


def _draw_landscape(alphas, betas, losses, center_loss, loss_name, n_samples, ax):
    from matplotlib import colors, ticker

    if ax is None:
        figure = _new_figure((6.4, 5.4))
        ax = figure.add_subplot()
    else:
        figure = ax.figure
    Z = np.ma.masked_invalid(losses.T)  # contour wants Z[row = β, column = α]
    finite = losses[np.isfinite(losses)]
    cmap = "viridis"
    # Flat also when the losses differ by a few ulps only (a saturated plateau): contour levels
    # spread over such a range repeat, which matplotlib refuses.
    if finite.size == 0 or len(np.unique(np.linspace(finite.min(), finite.max(), 32))) < 32:
        # A flat (or entirely non-finite) plane: nothing to contour, show the value.
        value = finite[0] if finite.size else float("nan")
        ax.imshow(np.full((2, 2), 0.0), extent=(alphas[0], alphas[-1], betas[0], betas[-1]),
                  origin="lower", cmap=cmap, aspect="auto")
        ax.text(0.5, 0.9, f"flat: loss = {value:.4g} everywhere", transform=ax.transAxes,
                ha="center", color="white")
    else:
        lo, hi = finite.min(), finite.max()
        if _wide_range(finite):
            fill_levels = np.geomspace(lo, hi, 32)
            line_levels = np.geomspace(lo, hi, 12)
            norm = colors.LogNorm(vmin=lo, vmax=hi)
        else:
            fill_levels = np.linspace(lo, hi, 32)
            line_levels = np.linspace(lo, hi, 12)
            norm = colors.Normalize(vmin=lo, vmax=hi)
        filled = ax.contourf(alphas, betas, Z, levels=fill_levels, norm=norm, cmap=cmap,
                             extend="neither")
        lines = ax.contour(alphas, betas, Z, levels=line_levels, colors="white",
                           linewidths=0.6, alpha=0.75)
        ax.clabel(lines, lines.levels[::2], inline=True, fontsize=7, fmt="%.3g")
        colorbar = figure.colorbar(filled, ax=ax, shrink=0.92)
        colorbar.set_label(f"{loss_name} loss")
        if isinstance(norm, colors.LogNorm):
            _log_axis(colorbar.ax.yaxis)
        else:  # round numbers, not the 32 level boundaries
            colorbar.ax.yaxis.set_major_locator(ticker.MaxNLocator(8))
            colorbar.ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%.3g"))
    ax.plot([0], [0], marker="*", markersize=15, color="#ff3b30", markeredgecolor="white",
            markeredgewidth=1.0, ls="none", label=f"trained weights (loss {center_loss:.4g})")
    ax.axhline(0, color="white", lw=0.5, alpha=0.4)
    ax.axvline(0, color="white", lw=0.5, alpha=0.4)
    ax.set_xlabel("α  (filter-normalized direction 1)")
    ax.set_ylabel("β  (filter-normalized direction 2)")
    ax.set_title(f"Loss landscape around the trained weights\n"
                 f"{loss_name} on {n_samples:,} samples, random plane after Li et al. (2018)",
                 fontsize=10)
    ax.set_aspect("equal")
    ax.legend(loc="lower left", fontsize=8, framealpha=0.85)
    return figure


# ---------------------------------------------------------------------- both
def training_report(history, model, X, y, path, *, loss=None, steps=25, span=1.0, seed=0,
                    max_samples=5000, n_threads=None):
    """The loss curve and the loss landscape side by side in one PNG at ``path``.

    Parameters
    ----------
    history : gdcore.History or dict
    model : gdcore.Sequential
        The trained model (left unchanged).
    X, y : arrays
        Data for the landscape (the training data shows the surface that was descended).
    path : str or path-like
        Where to write the PNG.
    loss, steps, span, seed, n_threads
        As ``loss_landscape``.
    max_samples : int or None, default=5000
        The landscape uses a seeded random subset of at most this many rows (steps² forward
        passes over all of MNIST would take minutes); None uses every row.

    Returns
    -------
    Landscape
        Its ``figure`` is the two-panel report figure.
    """
    check_matplotlib()
    check_seed(seed)  # before the subsample draws from it
    if max_samples is not None:
        max_samples = check_positive_int(max_samples, "max_samples")
        # checked before the subsample, which indexes them (y shorter than X: an IndexError)
        X = check_X(X, model.n_inputs, model.dtype)
        y_real, y_index = model._targets(y, model._resolve_loss(loss), X.shape[0])
        y = y_index if y_index is not None else y_real
        n_samples = X.shape[0]
        if n_samples > max_samples:
            rows = np.sort(np.random.default_rng([seed, 2]).choice(n_samples, max_samples,
                                                                    replace=False))
            X, y = X[rows], y[rows]
    figure = _new_figure((13.0, 5.4))
    curve_ax, landscape_ax = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1.0, 1.05]})
    loss_curve(history, ax=curve_ax)
    result = loss_landscape(model, X, y, loss, steps=steps, span=span, seed=seed,
                            n_threads=n_threads, ax=landscape_ax)
    _save(figure, path)
    return result
