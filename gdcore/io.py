"""Saving and loading models, with their optimizer's state, as one versioned ``.npz`` file.

A checkpoint is a zip archive that ``numpy.load(path, allow_pickle=False)`` reads, holding
uncompressed (stored) ``.npy`` members:

``meta``
    UTF-8 JSON as a uint8 array, human-readable (``unzip -p model.npz meta.npy`` shows it after
    the one-line .npy header): ``format`` (``"gdcore.checkpoint"``), ``format_version`` (an
    int), ``gdcore_version``, ``model`` (``Sequential.get_config()``), ``n_params``, ``rng`` (the
    state of the model's generator, from which ``fit(seed=None)`` draws its shuffling seed),
    ``loss`` (the loss of the last fit, or null) and ``optimizer`` (null, or its ``class``, its
    ``hyperparameters`` and its ``state``: ``step`` and ``n_slots``, or null when unused).
``params``
    The flat parameter buffer, little-endian (``<f4`` or ``<f8``) whatever the host.
``optimizer_slot_0`` ...
    The optimizer's state buffers (momentum, moments, ...), shaped and typed like ``params``.

Loading never runs code from the file: no pickle, no eval; the optimizer class is looked up in
an explicit allow-list of gdcore.optim classes and rebuilt through its validating constructor.
Every size is checked against the file before anything is read or allocated: members must be
stored uncompressed, so a member can never expand beyond the bytes the file holds (no zip
bombs), and the parameter count implied by the model's layers must match the ``params`` member
exactly. Any malformed file raises ValueError naming the file and the problem.

Saving is atomic: the archive is written to a temporary file in the target's directory, flushed
and fsync'ed, then renamed over the target; an error at any point removes the temporary file and
leaves a previous file at ``path`` untouched. A symlink at ``path`` stays a link (its target is
replaced), and a replaced file keeps its permission bits. Save runs load's checks before it writes
anything, so it never writes a file that load refuses.
"""
import contextlib
import errno
import inspect
import io
import json
import os
import secrets
import stat
import struct
import zipfile
import zlib

import numpy as np

from . import losses, optim
from .layers import ACTIVATIONS
from .models import _MAX_LAYERS, Sequential

#: Name written in, and required from, every checkpoint's ``meta["format"]``.
FORMAT = "gdcore.checkpoint"
#: Version of the layout written by this gdcore. Files with a larger version are refused; a
#: reader keeps loading every older version.
FORMAT_VERSION = 1

#: The only optimizer classes a checkpoint may name (looked up by exact class name).
OPTIMIZERS = {cls.__name__: cls for cls in (optim.SGD, optim.Adam, optim.AdamW, optim.RMSprop,
                                            optim.Adagrad)}

_META, _PARAMS, _SLOT = "meta", "params", "optimizer_slot_{}"
_MAX_META_BYTES = 1 << 20  # a 64-layer config with an optimizer is a few KiB
_MAX_NPY_HEADER = 10_000  # numpy's own default limit on a .npy header
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed: the same model gives the same bytes
_META_KEYS = {"format", "format_version", "gdcore_version", "model", "n_params", "rng", "loss",
              "optimizer"}
# The C core counts steps in an int64 and raises them to powers as doubles (bias corrections):
# 2**53 keeps both exact, and is far beyond any real training.
_MAX_STEP = 2**53

#: Names of each optimizer's state buffers (torch's names), in slot order.
_SLOT_NAMES = {"SGD": ["momentum_buffer"], "Adam": ["exp_avg", "exp_avg_sq"],
               "AdamW": ["exp_avg", "exp_avg_sq"],
               "RMSprop": ["square_avg", "momentum_buffer", "grad_avg"], "Adagrad": ["sum"]}
# The buffers that accumulate squared gradients. They are never negative, and +inf is a state
# training continues from: a g² that overflowed makes that parameter's update 0 from then on.
_SQUARES = {"exp_avg_sq", "square_avg", "sum"}

# What zipfile, json, ast and numpy raise on damaged input; turned into ValueError naming the
# file. MemoryError is deliberately absent: sizes are bounded by the file before any allocation.
_DAMAGE = (OSError, EOFError, KeyError, IndexError, TypeError, ValueError, OverflowError,
           struct.error, zlib.error, zipfile.BadZipFile, zipfile.LargeZipFile, RuntimeError,
           NotImplementedError, SyntaxError, UnicodeError)


class _Malformed(Exception):
    """A problem with the file's contents; load() re-raises it as ValueError naming the file."""


def _short(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


# ------------------------------------------------------------------------------------- saving
def save(model, path, optimizer=None):
    """Save ``model`` (and ``optimizer``'s hyperparameters and state) to one ``.npz`` file.

    The file is written exactly at ``path`` (no suffix is added) and replaces any file there
    atomically: a failed save leaves the previous file intact and no temporary file behind.

    Parameters
    ----------
    model : Sequential
        Its structure, parameters, generator state and the loss of its last fit are saved.
    path : str or os.PathLike
    optimizer : gdcore.optim.Optimizer, optional
        An SGD, Adam, AdamW, RMSprop or Adagrad whose state (step count, momentum and moment
        buffers) belongs to ``model`` or is still empty. ``gdcore.io.load(path,
        with_optimizer=True)`` gives it back, so training resumes with the same bits.

    Raises
    ------
    TypeError
        If ``model`` is not a Sequential or ``optimizer`` not one of the classes above.
    ValueError
        If the optimizer's state belongs to another model, or if the file would not load: NaN
        or infinite weights (set through a layer's ``W`` or ``b``), NaN or infinite optimizer
        state (only +inf is allowed, in the accumulators of squared gradients), or
        hyperparameters set to values the optimizer's constructor refuses. The message names
        the array or the hyperparameter.
    OSError
        If the file cannot be written (the previous file, if any, is then unchanged).
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a gdcore.Sequential, got {type(model).__name__}")
    name = os.fsdecode(os.fspath(path))
    # never a torn snapshot: waits for a fit running in another thread (the optimizer's lock
    # first, in the order fit takes them; see Optimizer._lock)
    with getattr(optimizer, "_lock", contextlib.nullcontext()), model._lock:
        meta, arrays = _snapshot(model, optimizer)
    try:
        blob = json.dumps(meta, indent=1, allow_nan=False).encode("utf-8")
        # load's own checks, before anything is written: save never writes a file that load
        # refuses, and a refused save leaves the previous file in place.
        _check_checkpoint(_parse_meta(blob), arrays[0][1], [array for _, array in arrays[1:]])
    except (_Malformed, ValueError) as exc:
        raise ValueError(f"cannot save {name}: {exc}") from None
    members = [(_META, np.frombuffer(blob, dtype=np.uint8))] + arrays
    _atomic_write(name, lambda file: _write_zip(file, members))


def _snapshot(model, optimizer):
    """(meta dict, [(member name, little-endian array)]) for model and optimizer."""
    from . import __version__  # here, not at import: gdcore/__init__ may import this module

    little = model.dtype.newbyteorder("<")
    arrays = [(_PARAMS, model._params.astype(little, copy=True))]
    loss = model.loss_
    loss_meta = None
    if loss is not None:
        # by the built-in loss the C core computes (its kind): a subclass with a name of its
        # own would write a file load refuses
        loss_meta = {"name": losses.name_of_kind(loss.kind)}
        if isinstance(loss, losses.Huber):
            loss_meta["delta"] = loss.delta
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "gdcore_version": __version__,
            "model": model.get_config(), "n_params": int(model.n_params),
            "rng": model._rng.bit_generator.state, "loss": loss_meta, "optimizer": None}
    if optimizer is not None:
        cls = type(optimizer)
        if OPTIMIZERS.get(cls.__name__) is not cls:
            raise TypeError(f"optimizer must be one of gdcore.optim.{', '.join(OPTIMIZERS)}, "
                            f"got {cls.__module__}.{cls.__qualname__}")
        hyper = {}
        for name in inspect.signature(cls).parameters:
            value = getattr(optimizer, name)
            hyper[name] = list(value) if isinstance(value, tuple) else value
        # Values valid only one by one (nesterov, then momentum = 0) or set without the checks
        # (an unpickled optimizer): refused here as load would, naming the hyperparameter.
        try:
            cls(**hyper)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"the optimizer's hyperparameters are not valid: {exc}") from None
        state_meta = None
        state = optimizer.state
        slots = state.get("slots", [])
        if state:
            fits = all(slot.shape == (model.n_params,) and slot.dtype == model.dtype
                       for slot in slots)
            # An unpickled optimizer has no owner yet; like Optimizer._state_for, it goes with
            # the first model it meets, if its buffers fit that model.
            if not (state.get("owner") is model or (state.get("owner") is None and fits)):
                raise ValueError("the optimizer's state belongs to another model; pass the "
                                 "optimizer that trains this model, or call optimizer.reset() "
                                 "to save it without state")
        # A changed hyperparameter can change which buffers the optimizer keeps (SGD's momentum
        # turned on for the first time): its next step starts the state afresh
        # (Optimizer._state_for), so buffers that no longer fit are saved as what they now are,
        # no state.
        if state and optimizer._slots_fit(len(slots)):
            state_meta = {"step": int(state["step"]), "n_slots": len(slots)}
            arrays += [(_SLOT.format(i), slot.astype(little, copy=True))
                       for i, slot in enumerate(slots)]
        meta["optimizer"] = {"class": cls.__name__, "hyperparameters": hyper,
                             "state": state_meta}
    return meta, arrays


def _write_zip(file, members):
    archive = zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
    member = None
    try:
        for name, array in members:
            info = zipfile.ZipInfo(name + ".npy", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, version=(1, 0), allow_pickle=False)
    except BaseException:
        # The file is thrown away (see _atomic_write), so the archive is detached, not closed:
        # after a Ctrl-C inside a member's close it still counts as writing, and close() (from a
        # with-block, or later from the garbage collector) raised ValueError in place of the
        # KeyboardInterrupt. Without its file, close() does nothing. The member interrupted in
        # its close is marked closed too (its base class's close skips the zip bookkeeping):
        # Python 3.13's finalizer would otherwise finish that close on the detached archive
        # and print "Exception ignored ... AttributeError".
        archive.fp = None
        if member is not None and not member.closed:
            io.BufferedIOBase.close(member)
        raise
    archive.close()


def _atomic_write(path, write):
    """Call ``write(file)`` on a temporary file beside ``path``, fsync it, rename it to
    ``path``; on any error remove the temporary file and re-raise."""
    # Through symlinks: a link to a checkpoint stays a link, and its target gets the new file.
    path = os.path.realpath(path)
    directory = os.path.dirname(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        pass
    else:  # the rename would put a regular file in place of /dev/null or a FIFO
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):  # a directory: rename's own error
            raise ValueError(f"cannot save {path}: not a regular file (a device, pipe or "
                             "socket); save replaces regular files only")
    # A short name of our own, not derived from path's: any name open() takes can be saved.
    temporary = os.path.join(directory, f".gdcore-{secrets.token_hex(8)}.tmp")
    try:
        # "x": O_CREAT | O_EXCL, never following or reusing someone else's file; the mode is
        # 0o666 less the umask. Opened inside the try, and owned by a file object from the
        # start: a Ctrl-C as the open returns (where Python raises a SIGINT that came during
        # it) left the temporary file and its descriptor behind.
        with open(temporary, "xb") as file:
            try:  # a file replaced keeps its permissions: a private checkpoint stays private
                previous = os.stat(path)
            except FileNotFoundError:
                pass
            else:
                if stat.S_ISREG(previous.st_mode):
                    fd = file.fileno()
                    os.chmod(fd if os.chmod in os.supports_fd else temporary,
                             stat.S_IMODE(previous.st_mode))
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except FileExistsError:  # from the open only: that file is not ours to remove
        raise
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable (POSIX); not possible on every platform
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


# ------------------------------------------------------------------------------------ loading
def load(path, *, with_optimizer=False):
    """Load a model saved by ``gdcore.io.save`` (``model.save``).

    Parameters
    ----------
    path : str or os.PathLike
    with_optimizer : bool, default=False
        Also return the saved optimizer, with its state bound to the returned model, so that
        ``model.fit(..., optimizer=optimizer)`` or ``train_step`` continues exactly where the
        saved training stopped.

    Returns
    -------
    model : Sequential
        The saved structure, parameters, generator state and last-fit loss. (A saved MLP comes
        back as a Sequential with the same layers.)
    (model, optimizer) : tuple
        With ``with_optimizer=True``; ``optimizer`` is None when none was saved.

    Raises
    ------
    FileNotFoundError, PermissionError, IsADirectoryError
        If ``path`` cannot be opened.
    ValueError
        If the file is not a regular file or not a gdcore checkpoint, is damaged or malformed
        (NaN or infinite weights, optimizer state that training cannot continue from), or was
        written by a newer gdcore (a larger ``format_version``). The message names the file.
    """
    if not isinstance(with_optimizer, (bool, np.bool_)):
        raise TypeError(f"with_optimizer must be a bool, got {with_optimizer!r}")
    name = os.fsdecode(os.fspath(path))
    # Before opening: reading a device (/dev/zero) never ends, and opening a FIFO waits for a
    # writer. os.stat raises FileNotFoundError and PermissionError as open() would.
    mode = os.stat(name).st_mode
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), name)
    if not stat.S_ISREG(mode):
        raise ValueError(f"{name}: not a gdcore checkpoint (not a regular file: a device, "
                         "pipe or socket)")
    with open(name, "rb") as file:
        try:
            model, optimizer = _read(file)
        except _Malformed as exc:
            raise ValueError(f"{name}: {exc}") from None
        except _DAMAGE as exc:
            raise ValueError(f"{name}: not a valid gdcore checkpoint "
                             f"({type(exc).__name__}: {exc})") from exc
    return (model, optimizer) if with_optimizer else model


def _read(file):
    file.seek(0, os.SEEK_END)
    file_size = file.tell()
    file.seek(0)
    if not zipfile.is_zipfile(file):
        raise _Malformed("not a gdcore checkpoint (not a zip/.npz archive)")
    file.seek(0)
    with zipfile.ZipFile(file) as archive:
        infos = archive.infolist()
        names = [info.filename for info in infos]
        if len(set(names)) != len(names):
            raise _Malformed(f"duplicate members in the archive: {_short(sorted(names))}")
        by_name = {info.filename: info for info in infos}

        meta_bytes = _read_member(archive, by_name, _META, np.dtype(np.uint8), None,
                                  _MAX_META_BYTES, file_size)
        meta = _parse_meta(meta_bytes)
        config = meta["model"]
        dtype = np.dtype(config["dtype"]).newbyteorder("<")
        n_params = meta["n_params"]
        opt_meta = meta["optimizer"]
        n_slots = 0
        if opt_meta is not None and opt_meta["state"] is not None:
            n_slots = opt_meta["state"]["n_slots"]
        expected = {_META, _PARAMS} | {_SLOT.format(i) for i in range(n_slots)}
        unexpected = sorted(set(names) - {member + ".npy" for member in expected})
        if unexpected:
            raise _Malformed(f"unexpected members {_short(unexpected)}")

        nbytes = n_params * dtype.itemsize
        params = _read_member(archive, by_name, _PARAMS, dtype, n_params, nbytes, file_size)
        slots = [_read_member(archive, by_name, _SLOT.format(i), dtype, n_params, nbytes,
                              file_size) for i in range(n_slots)]

    params = np.frombuffer(params, dtype=dtype)
    slots = [np.frombuffer(slot, dtype=dtype) for slot in slots]
    optimizer = _check_checkpoint(meta, params, slots)

    try:
        model = Sequential.from_config(config)
    except (ValueError, TypeError) as exc:
        raise _Malformed(f"meta['model'] does not describe a model: {exc}") from None
    if model.n_params != n_params:  # also checked in _parse_meta; a cheap layout assertion
        raise _Malformed(f"the model has {model.n_params} parameters, meta says {n_params}")
    model._params[...] = params
    try:
        model._rng.bit_generator.state = meta["rng"]
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise _Malformed(f"meta['rng'] is not a PCG64 state: {exc}") from None
    if meta["loss"] is not None:
        model.loss_ = _make_loss(meta["loss"])
    if optimizer is not None and opt_meta["state"] is not None:
        optimizer.state.update(owner=model, step=opt_meta["state"]["step"],
                               slots=[slot.astype(model.dtype) for slot in slots])
    return model, optimizer


def _check_checkpoint(meta, params, slots):
    """The checks of a parsed meta against its arrays that load makes, and save makes before it
    writes anything. Returns the optimizer meta['optimizer'] describes, without its state (or
    None)."""
    optimizer = None
    if meta["loss"] is not None:
        _make_loss(meta["loss"])
    if meta["optimizer"] is not None:
        optimizer = _make_optimizer(meta["optimizer"], len(slots))
    bad = np.flatnonzero(~np.isfinite(params))
    if bad.size:
        raise _Malformed(f"the parameters contain NaN or infinity (first at "
                         f"{_locate(meta['model'], int(bad[0]))})")
    for i, slot in enumerate(slots):
        slot_name = _SLOT_NAMES[type(optimizer).__name__][i]
        buffer = f"optimizer state buffer {i} ({type(optimizer).__name__}'s {slot_name})"
        if slot_name in _SQUARES:
            if np.isnan(slot).any():
                raise _Malformed(f"{buffer} contains NaN")
            if (slot < 0).any():
                raise _Malformed(f"{buffer} contains negative values; it accumulates squares")
        elif not np.isfinite(slot).all():
            raise _Malformed(f"{buffer} contains NaN or infinity")
    return optimizer


def _locate(config, index):
    """Where the flat parameter ``index`` lives, as ``layers[i].W[row, column]`` or
    ``layers[i].b[column]`` (the model's layers, Dropout included, as in ``model.layers``)."""
    for i, layer in enumerate(config["layers"]):
        if layer.get("type", "dense") != "dense":
            continue
        n_w = layer["n_in"] * layer["n_out"]
        if index < n_w:
            return f"layers[{i}].W[{index // layer['n_out']}, {index % layer['n_out']}]"
        if index < n_w + layer["n_out"]:
            return f"layers[{i}].b[{index - n_w}]"
        index -= n_w + layer["n_out"]
    raise AssertionError("index beyond the model's parameters")  # the sizes were checked


def _read_member(archive, by_name, member, dtype, length, max_data_bytes, file_size):
    """The data bytes of the 1-D .npy member ``member``, checked before anything is read:
    stored uncompressed, not encrypted, within the file, a .npy header declaring ``dtype``
    and ``length`` elements (any length up to ``max_data_bytes`` when None), and no byte more."""
    info = by_name.get(member + ".npy")
    if info is None:
        raise _Malformed(f"missing member {member!r}")
    if info.flag_bits & 0x1:
        raise _Malformed(f"member {member!r} is encrypted")
    if info.compress_type != zipfile.ZIP_STORED:
        raise _Malformed(f"member {member!r} is compressed (method {info.compress_type}); "
                         "gdcore checkpoints store their members uncompressed")
    if info.file_size != info.compress_size or info.file_size > file_size \
            or info.header_offset + info.compress_size > file_size:
        raise _Malformed(f"member {member!r} declares {info.file_size} bytes, which the "
                         f"{file_size}-byte file cannot hold")
    if info.file_size > 10 + _MAX_NPY_HEADER + max_data_bytes:
        raise _Malformed(f"member {member!r} declares {info.file_size} bytes, more than "
                         f"{max_data_bytes} bytes of data and a .npy header")
    with archive.open(info) as stream:
        prefix = _read_exactly(stream, 8, member, "the .npy magic")
        if prefix[:6] != _NPY_MAGIC:
            raise _Malformed(f"member {member!r} is not a .npy array")
        major = prefix[6]
        if major == 1:
            header_len = struct.unpack("<H", _read_exactly(stream, 2, member, "header"))[0]
        elif major in (2, 3):
            header_len = struct.unpack("<I", _read_exactly(stream, 4, member, "header"))[0]
        else:
            raise _Malformed(f"member {member!r} has unknown .npy version {major}")
        prefix_len = 8 + (2 if major == 1 else 4)
        if header_len > _MAX_NPY_HEADER or prefix_len + header_len > info.file_size:
            raise _Malformed(f"member {member!r} declares a {header_len}-byte .npy header")
        header = _read_exactly(stream, header_len, member, "header")
        shape = _parse_npy_header(header, major, member, dtype)
        n_items = shape[0]
        if length is not None and n_items != length:
            raise _Malformed(f"member {member!r} holds {n_items} values, expected {length}")
        n_bytes = n_items * dtype.itemsize
        if n_bytes > max_data_bytes or prefix_len + header_len + n_bytes != info.file_size:
            raise _Malformed(f"member {member!r}: its .npy header declares {n_items} values "
                             f"({n_bytes} bytes) but the member holds "
                             f"{info.file_size - prefix_len - header_len} data bytes")
        data = _read_exactly(stream, n_bytes, member, "data")
        if stream.read(1):  # also makes zipfile check the CRC, if not done yet
            raise _Malformed(f"member {member!r} has trailing bytes")
    return data


def _read_exactly(stream, n_bytes, member, what):
    data = stream.read(n_bytes)
    if len(data) != n_bytes:
        raise _Malformed(f"member {member!r} is truncated in {what}")
    return data


def _parse_npy_header(header, major, member, dtype):
    """The shape of a 1-D array of exactly ``dtype`` from a .npy header dict literal. Parsed
    with ast.literal_eval (literals only, never code), as numpy does."""
    import ast

    try:
        text = header.decode("utf-8" if major == 3 else "latin1")
        fields = ast.literal_eval(text)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError,
            UnicodeError) as exc:
        raise _Malformed(f"member {member!r} has an unreadable .npy header "
                         f"({type(exc).__name__})") from None
    if not isinstance(fields, dict) or set(fields) != {"descr", "fortran_order", "shape"}:
        raise _Malformed(f"member {member!r} has a malformed .npy header {_short(text)}")
    if not isinstance(fields["descr"], str) or fields["descr"] != dtype.str:
        raise _Malformed(f"member {member!r} has dtype {_short(fields['descr'])}, expected "
                         f"{dtype.str!r}")
    if not isinstance(fields["fortran_order"], bool):
        raise _Malformed(f"member {member!r} has a malformed .npy header {_short(text)}")
    shape = fields["shape"]
    if not (isinstance(shape, tuple) and len(shape) == 1 and type(shape[0]) is int
            and shape[0] >= 0):
        raise _Malformed(f"member {member!r} has shape {_short(shape)}, expected a 1-D shape")
    return shape


# ------------------------------------------------------------------------------- the metadata
def _reject_constant(name):
    raise _Malformed(f"meta holds the non-JSON constant {name}")


def _finite_float(text):
    value = float(text)
    if not np.isfinite(value):
        raise _Malformed(f"meta holds the out-of-range number {_short(text)}")
    return value


def _no_duplicates(pairs):
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise _Malformed(f"meta repeats a key in {_short(keys)}")
    return dict(pairs)


# JSON kinds by exact type: a bool is never an int or a number here.
_KINDS = {"int": (int,), "number": (int, float), "bool": (bool,), "str": (str,),
          "dict": (dict,), "list": (list,), "null": (type(None),)}


def _check(value, kinds, where):
    """``value`` if its type is one of the JSON ``kinds``, else raise."""
    if not any(type(value) in _KINDS[kind] for kind in kinds):
        raise _Malformed(f"{where} must be {' or '.join(kinds)}, got {_short(value)}")
    return value


def _keys(mapping, required, allowed, where):
    missing = sorted(set(required) - set(mapping))
    if missing:
        raise _Malformed(f"{where} has no {', '.join(map(repr, missing))}")
    unknown = sorted(set(mapping) - set(allowed))
    if unknown:
        raise _Malformed(f"{where} has unknown keys {_short(unknown)}")


def _parse_meta(blob):
    try:
        text = bytes(blob).decode("utf-8")
        meta = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float,
                          object_pairs_hook=_no_duplicates)
    except (UnicodeError, ValueError, RecursionError) as exc:
        raise _Malformed(f"meta is not valid UTF-8 JSON ({type(exc).__name__}: "
                         f"{str(exc)[:200]})") from None
    _check(meta, ["dict"], "meta")
    if meta.get("format") != FORMAT:
        raise _Malformed(f"not a gdcore checkpoint (meta['format'] is "
                         f"{_short(meta.get('format'))}, expected {FORMAT!r})")
    version = _check(meta.get("format_version"), ["int"], "meta['format_version']")
    if version > FORMAT_VERSION:
        from . import __version__

        raise _Malformed(f"written by a newer gdcore (checkpoint format_version {version}; "
                         f"gdcore {__version__} reads format_version {FORMAT_VERSION} and "
                         "older): upgrade gdcore to load it")
    if version < 1:
        raise _Malformed(f"meta['format_version'] must be >= 1, got {version}")
    _keys(meta, _META_KEYS, _META_KEYS, "meta")
    _check(meta["gdcore_version"], ["str"], "meta['gdcore_version']")
    n_params = _check_config(meta["model"])
    if _check(meta["n_params"], ["int"], "meta['n_params']") != n_params:
        raise _Malformed(f"meta['n_params'] is {meta['n_params']} but the layers of "
                         f"meta['model'] have {n_params} parameters")
    _check_rng(meta["rng"])
    loss = _check(meta["loss"], ["dict", "null"], "meta['loss']")
    if loss is not None:
        _keys(loss, ["name"], ["name", "delta"], "meta['loss']")
        _check(loss["name"], ["str"], "meta['loss']['name']")
        if "delta" in loss:
            _check(loss["delta"], ["number"], "meta['loss']['delta']")
    opt = _check(meta["optimizer"], ["dict", "null"], "meta['optimizer']")
    if opt is not None:
        _keys(opt, ["class", "hyperparameters", "state"],
              ["class", "hyperparameters", "state"], "meta['optimizer']")
        name = _check(opt["class"], ["str"], "meta['optimizer']['class']")
        if name not in OPTIMIZERS:
            raise _Malformed(f"meta['optimizer']['class'] is {_short(name)}; a checkpoint may "
                             f"name only {', '.join(OPTIMIZERS)}")
        _check(opt["hyperparameters"], ["dict"], "meta['optimizer']['hyperparameters']")
        state = _check(opt["state"], ["dict", "null"], "meta['optimizer']['state']")
        if state is not None:
            _keys(state, ["step", "n_slots"], ["step", "n_slots"], "meta['optimizer']['state']")
            step = _check(state["step"], ["int"], "meta['optimizer']['state']['step']")
            if not 0 <= step <= _MAX_STEP:
                raise _Malformed(f"meta['optimizer']['state']['step'] must be in "
                                 f"[0, 2**53], got {step}")
            n_slots = _check(state["n_slots"], ["int"], "meta['optimizer']['state']['n_slots']")
            if not 0 <= n_slots <= 3:
                raise _Malformed(f"meta['optimizer']['state']['n_slots'] must be in [0, 3], "
                                 f"got {n_slots}")
    return meta


def _check_config(config):
    """Validate what ``meta['model']`` says about sizes (types and ranges, before anything is
    allocated) and return its parameter count. The values of the other fields (activations,
    inits, penalties, dropout rates and placement) are validated by Sequential.from_config and
    the layers' constructors; a key get_config never writes is refused here (a misspelt "L2"
    would otherwise load as the default, silently)."""
    _check(config, ["dict"], "meta['model']")
    _keys(config, ["class", "dtype", "seed", "layers"], ["class", "dtype", "seed", "layers"],
          "meta['model']")
    _check(config["class"], ["str"], "meta['model']['class']")
    if config["dtype"] not in ("float32", "float64"):
        raise _Malformed(f"meta['model']['dtype'] must be 'float32' or 'float64', got "
                         f"{_short(config['dtype'])}")
    seed = _check(config["seed"], ["int"], "meta['model']['seed']")
    if seed < 0:
        raise _Malformed(f"meta['model']['seed'] must be >= 0, got {seed}")
    layers = _check(config["layers"], ["list"], "meta['model']['layers']")
    if not 1 <= len(layers) <= 2 * _MAX_LAYERS:  # Dense layers with a Dropout between each two
        raise _Malformed(f"meta['model']['layers'] must hold 1 to {2 * _MAX_LAYERS} layers, "
                         f"got {len(layers)}")
    n_params, previous = 0, None
    for i, layer in enumerate(layers):
        where = f"meta['model']['layers'][{i}]"
        _check(layer, ["dict"], where)
        kind = layer.get("type", "dense")
        if kind == "dropout":
            _keys(layer, ["rate"], ["type", "rate"], where)
            continue
        if kind != "dense":
            raise _Malformed(f"{where}['type'] must be 'dense' or 'dropout', got {_short(kind)}")
        _keys(layer, ["n_in", "n_out", "activation"],
              ["type", "n_in", "n_out", "activation", "init", "l1", "l2"], where)
        for key in ("n_in", "n_out"):
            if _check(layer[key], ["int"], f"{where}[{key!r}]") < 1:
                raise _Malformed(f"{where}[{key!r}] must be >= 1, got {layer[key]}")
        if type(layer["activation"]) is not str or layer["activation"] not in ACTIVATIONS:
            raise _Malformed(f"{where}['activation'] must be one of {sorted(ACTIVATIONS)}, got "
                             f"{_short(layer['activation'])}")  # get_config writes these names
        if previous is not None and layer["n_in"] != previous["n_out"]:
            raise _Malformed(f"{where} has n_in {layer['n_in']} but the Dense layer before has "
                             f"n_out {previous['n_out']}")
        n_params += (layer["n_in"] + 1) * layer["n_out"]
        previous = layer
    if previous is None:
        raise _Malformed("meta['model']['layers'] holds no Dense layer")
    return n_params


def _check_rng(rng):
    _check(rng, ["dict"], "meta['rng']")
    _keys(rng, ["bit_generator", "state", "has_uint32", "uinteger"],
          ["bit_generator", "state", "has_uint32", "uinteger"], "meta['rng']")
    if rng["bit_generator"] != "PCG64":
        raise _Malformed(f"meta['rng']['bit_generator'] must be 'PCG64', got "
                         f"{_short(rng['bit_generator'])}")
    state = _check(rng["state"], ["dict"], "meta['rng']['state']")
    _keys(state, ["state", "inc"], ["state", "inc"], "meta['rng']['state']")
    for key, limit in (("state", 2**128), ("inc", 2**128)):
        value = _check(state[key], ["int"], f"meta['rng']['state'][{key!r}]")
        if not 0 <= value < limit:
            raise _Malformed(f"meta['rng']['state'][{key!r}] is out of range")
    if _check(rng["has_uint32"], ["int"], "meta['rng']['has_uint32']") not in (0, 1):
        raise _Malformed("meta['rng']['has_uint32'] must be 0 or 1")
    if not 0 <= _check(rng["uinteger"], ["int"], "meta['rng']['uinteger']") < 2**32:
        raise _Malformed("meta['rng']['uinteger'] is out of range")


def _make_loss(loss_meta):
    try:
        loss = losses.get(loss_meta["name"])
        if isinstance(loss, losses.Huber):
            return losses.Huber(delta=loss_meta.get("delta", 1.0))
        if "delta" in loss_meta:
            raise ValueError(f"only the huber loss has a delta, not {loss.name}")
        return loss
    except (ValueError, TypeError) as exc:
        raise _Malformed(f"meta['loss'] is not a gdcore loss: {exc}") from None


def _make_optimizer(opt_meta, n_slots):
    """Rebuild the optimizer, without its state, through its validating constructor, and check
    that its hyperparameters keep the ``n_slots`` state buffers saved."""
    cls = OPTIMIZERS[opt_meta["class"]]
    hyper = opt_meta["hyperparameters"]
    allowed = set(inspect.signature(cls).parameters)
    unknown = sorted(set(hyper) - allowed)
    if unknown:  # a missing one takes its default: older files stay loadable
        raise _Malformed(f"meta['optimizer']['hyperparameters'] has unknown keys "
                         f"{_short(unknown)} for {cls.__name__}")
    for key, value in hyper.items():
        where = f"meta['optimizer']['hyperparameters'][{key!r}]"
        _check(value, ["number", "bool", "list"], where)
        if type(value) is list:
            for item in value:
                _check(item, ["number"], where + " items")
    try:
        optimizer = cls(**hyper)
    except (ValueError, TypeError) as exc:
        raise _Malformed(f"meta['optimizer'] does not describe a valid {cls.__name__}: "
                         f"{exc}") from None
    if opt_meta["state"] is not None and not optimizer._slots_fit(n_slots):
        raise _Malformed(f"the saved {cls.__name__} has {n_slots} state buffers, its "
                         f"hyperparameters need {len(optimizer._slot_init())}")
    return optimizer
