"""Losses. Each has mean reduction and the semantics of the torch.nn.functional loss it names.

The C core computes the value and the gradient with respect to the network output in one fused
pass (for cross-entropy: softmax and NLL together, dZ = softmax(z) − onehot(y)).
"""
from ._validation import finite_float


class Loss:
    """Base class: a loss the C core knows by its ``kind`` code (csrc/gd_types.h)."""

    name = None
    kind = None
    #: "index" for class-index targets, "real" for real-valued targets
    targets = "real"

    def spec(self, l1=0.0, l2=0.0):
        """The (kind, delta, l1, l2) tuple the C core takes."""
        return (self.kind, float(getattr(self, "delta", 1.0)), float(l1), float(l2))

    def __repr__(self):
        return f"{type(self).__name__}()"

    def __eq__(self, other):
        return type(self) is type(other) and self.__dict__ == other.__dict__

    def __hash__(self):
        return hash((type(self), tuple(sorted(self.__dict__.items()))))


class CrossEntropy(Loss):
    """Softmax cross-entropy over logits: ``mean_i(logsumexp(z_i) − z_i[y_i])``.

    As ``torch.nn.functional.cross_entropy``. Targets: class indices in ``[0, n_outputs)``.
    Computed with the log-sum-exp shift, finite for logits of ±1e4.
    """

    name, kind, targets = "cross_entropy", 0, "index"


class BinaryCrossEntropy(Loss):
    """Binary cross-entropy with logits: ``mean(max(z, 0) − z·y + log(1 + exp(−|z|)))``.

    As ``torch.nn.functional.binary_cross_entropy_with_logits``. Targets in [0, 1], shape
    (n_samples,) for one output or (n_samples, n_outputs).
    """

    name, kind = "binary_cross_entropy", 1


class MSE(Loss):
    """Mean squared error ``mean((z − y)²)``, as ``torch.nn.functional.mse_loss``."""

    name, kind = "mse", 2


class MAE(Loss):
    """Mean absolute error (L1) ``mean(|z − y|)``, as ``torch.nn.functional.l1_loss``."""

    name, kind = "mae", 3


class Huber(Loss):
    """Huber loss, as ``torch.nn.functional.huber_loss``: with ``d = z − y``,
    ``½d²`` where ``|d| < delta``, else ``delta·(|d| − ½delta)``; mean over all elements."""

    name, kind = "huber", 4

    def __init__(self, delta=1.0):
        self.delta = delta

    @property
    def delta(self):
        """Where the loss turns from quadratic to linear (> 0, finite; checked on assignment)."""
        return self._delta

    @delta.setter
    def delta(self, delta):  # checked on every assignment: fit trusts it
        value = finite_float(delta)
        if value is None or value <= 0:
            raise ValueError(f"delta must be a positive finite number, got {delta!r}")
        self._delta = value

    def __setstate__(self, state):  # pickles from before delta was a property
        if "delta" in state:
            state["_delta"] = state.pop("delta")
        self.__dict__.update(state)

    def __repr__(self):
        return f"Huber(delta={self.delta})"


class Hinge(Loss):
    """Multi-class hinge (margin) loss, as ``torch.nn.MultiMarginLoss(p=1, margin=1)``:
    ``mean_i Σ_{j≠y_i} max(0, 1 − z_i[y_i] + z_i[j]) / n_classes``. Targets: class indices.

    With sample or class weights the mean is ``Σ w_i·l_i / Σ w_i``, as for every gdcore loss;
    torch's ``MultiMarginLoss(weight=...)`` divides by the row count instead (its result is
    gdcore's × Σ w_i / n)."""

    name, kind, targets = "hinge", 5, "index"


_BY_NAME = {cls.name: cls for cls in (CrossEntropy, BinaryCrossEntropy, MSE, MAE, Huber, Hinge)}
_ALIASES = {"l1": "mae", "bce": "binary_cross_entropy", "log_loss": "cross_entropy",
            "squared_error": "mse", "multi_margin": "hinge"}
#: Names accepted by :func:`get`.
NAMES = tuple(sorted(set(_BY_NAME) | set(_ALIASES)))


def name_of_kind(kind):
    """The name of the built-in loss the C core computes for ``kind`` (what a subclass of it
    computes too)."""
    for cls in _BY_NAME.values():
        if cls.kind == kind:
            return cls.name
    raise ValueError(f"no gdcore loss has kind {kind!r}")


def get(loss):
    """Return a Loss from a name (``"cross_entropy"``, ``"mse"``, ``"l1"``, ...) or a Loss object."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str):
        name = _ALIASES.get(loss.lower(), loss.lower())
        if name in _BY_NAME:
            return _BY_NAME[name]()
    raise ValueError(f"loss must be a gdcore.losses.Loss or one of {list(NAMES)}, got {loss!r}")
