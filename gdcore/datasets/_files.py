"""Readers for data sets stored in files: MNIST IDX files and .npz archives."""

import gzip
import math
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

# IDX magic number: two zero bytes, a type code (0x08 = unsigned byte) and
# the number of dimensions.
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801

# File name prefixes per kind. The official files use "-idx3-ubyte"; many
# mirrors use ".idx3-ubyte" instead. Either may be gzip-compressed.
MNIST_PREFIXES = {"train": "train", "test": "t10k"}

READ_CHUNK_BYTES = 1 << 20


def _candidate_names(prefix, part, ndim):
    names = [f"{prefix}-{part}-idx{ndim}-ubyte", f"{prefix}-{part}.idx{ndim}-ubyte"]
    return names + [name + ".gz" for name in names]


def _find_file(folder, names):
    for name in names:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"no MNIST file in folder {str(folder)!r}; looked for: {', '.join(names)}"
    )


def _read_exactly(stream, n_bytes, path, what):
    """Read exactly ``n_bytes`` from ``stream``, then require end of file.

    Reads in chunks so that a header declaring a huge size costs no more
    memory than the file actually holds.
    """
    buffer = bytearray()
    while len(buffer) < n_bytes:
        chunk = stream.read(min(READ_CHUNK_BYTES, n_bytes - len(buffer)))
        if not chunk:
            raise ValueError(
                f"{path}: truncated {what}: expected {n_bytes} bytes, "
                f"found {len(buffer)}"
            )
        buffer += chunk
    return buffer


def _read_idx(path, magic):
    """Read an IDX file of unsigned bytes and check its header and length.

    Parameters
    ----------
    path : Path
        File to read; a ``.gz`` suffix means gzip-compressed.
    magic : int
        Expected magic number, which fixes the number of dimensions.

    Returns
    -------
    ndarray of uint8
        The data, shaped as the header declares.
    """
    ndim = magic & 0xFF
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as stream:
            header = _read_exactly(stream, 4, path, "header")
            found_magic = int.from_bytes(header, "big")
            if found_magic != magic:
                raise ValueError(
                    f"{path}: bad magic number 0x{found_magic:08x}, expected "
                    f"0x{magic:08x} (unsigned bytes, {ndim} dimensions)"
                )
            dims_bytes = _read_exactly(stream, 4 * ndim, path, "header")
            dims = [
                int.from_bytes(dims_bytes[i : i + 4], "big") for i in range(0, 4 * ndim, 4)
            ]
            if 0 in dims:
                raise ValueError(f"{path}: header declares a zero dimension {dims}")
            n_data_bytes = math.prod(dims)
            data = _read_exactly(stream, n_data_bytes, path, f"data for shape {dims}")
            if stream.read(1):
                raise ValueError(
                    f"{path}: trailing bytes after the {n_data_bytes} data bytes "
                    f"declared by the header (shape {dims})"
                )
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise ValueError(f"{path}: not a valid gzip file ({error})") from error
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def load_mnist(path, kind="train"):
    """Load MNIST-format IDX files from a folder.

    Parameters
    ----------
    path : str or os.PathLike
        Folder holding the files, e.g. ``train-images-idx3-ubyte`` and
        ``train-labels-idx1-ubyte`` for ``kind="train"``, or ``t10k-...``
        for ``kind="test"``. The variant names ``train-images.idx3-ubyte``
        and gzip-compressed files with a ``.gz`` suffix are also found.
    kind : {"train", "test"}, default="train"
        Which split to load.

    Returns
    -------
    X : ndarray of float32, shape (n, rows * cols)
        One image per row, pixels in row-major order. Values are the raw
        bytes 0 to 255 and are **not scaled**; divide by 255 for [0, 1].
    y : ndarray of int64, shape (n,)
        The label of each image.

    Raises
    ------
    FileNotFoundError
        If the folder or either file is missing.
    ValueError
        If `kind` is unknown or a file is malformed: wrong magic number,
        truncated, trailing bytes, or image and label counts that differ.
    """
    if not isinstance(kind, str) or kind not in MNIST_PREFIXES:
        raise ValueError(f"kind must be 'train' or 'test', got {kind!r}")
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"MNIST folder {str(folder)!r} is not a directory")
    prefix = MNIST_PREFIXES[kind]
    images_path = _find_file(folder, _candidate_names(prefix, "images", 3))
    labels_path = _find_file(folder, _candidate_names(prefix, "labels", 1))

    images = _read_idx(images_path, IMAGES_MAGIC)
    labels = _read_idx(labels_path, LABELS_MAGIC)
    if len(images) != len(labels):
        raise ValueError(
            f"{images_path} holds {len(images)} images but {labels_path} "
            f"holds {len(labels)} labels"
        )
    X = images.reshape(len(images), -1).astype(np.float32)
    y = labels.astype(np.int64)
    return X, y


# Deflate cannot compress by more than about 1032:1, so a member that claims to inflate further
# lies about its size; and nothing here needs more than this many bytes per array.
_MAX_INFLATION = 1100
_MAX_MEMBER_BYTES = 1 << 36


def _read_npy_member(archive, member, path):
    """One .npy member, refusing object arrays, and checking every declared size against the
    archive before allocating anything (np.load trusts the header's shape)."""
    info = archive.getinfo(member)
    if info.file_size > _MAX_MEMBER_BYTES or \
            info.file_size > _MAX_INFLATION * max(info.compress_size, 1) + 4096:
        raise ValueError(f"{path}: {member} declares {info.file_size} bytes, more than its "
                         f"{info.compress_size} stored bytes can hold")
    with archive.open(member) as stream:
        try:
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
            else:
                shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream)
        except (ValueError, TypeError, SyntaxError) as exc:
            raise ValueError(f"{path}: {member} is not a .npy array ({exc})") from None
        if dtype.hasobject:  # unpickling a file can run arbitrary code
            raise ValueError(f"{path}: {member} holds Python objects (pickled); refused")
        n_bytes = math.prod(shape) * dtype.itemsize
        if n_bytes > info.file_size - stream.tell():  # trailing bytes are ignored, as np.load does
            raise ValueError(f"{path}: {member} declares shape {shape} ({n_bytes} bytes) but "
                             f"holds {info.file_size - stream.tell()} bytes of data")
        data = stream.read(n_bytes)
    if len(data) != n_bytes:
        raise ValueError(f"{path}: {member} is truncated")
    order = "F" if fortran_order else "C"
    return np.frombuffer(data, dtype=dtype).reshape(shape, order=order).copy(order="C")


def load_npz(path):
    """Load a data set saved with ``numpy.savez(path, X=X, y=y)``.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npz`` file. Pickled (object) arrays are refused.

    Returns
    -------
    X : ndarray, shape (n, ...)
        The inputs, with the stored dtype.
    y : ndarray, shape (n,)
        The targets, with the stored dtype.

    Raises
    ------
    ValueError
        If the file is not an .npz archive, lacks ``X`` or ``y``, holds
        object arrays, or ``X`` and ``y`` differ in length.
    """
    name = os.fsdecode(os.fspath(path))  # bytes paths too: zipfile takes only str
    if os.path.isdir(name):
        raise ValueError(f"{path}: is a folder, not an .npz file")
    try:
        with zipfile.ZipFile(name) as archive:
            members = archive.namelist()
            missing = [key for key in ("X", "y") if f"{key}.npy" not in members]
            if missing:
                found = [m[:-4] if m.endswith(".npy") else m for m in members]
                raise ValueError(f"{path}: missing array(s) {missing}; found {found}")
            X = _read_npy_member(archive, "X.npy", path)
            y = _read_npy_member(archive, "y.npy", path)
    except FileNotFoundError:
        raise
    except ValueError as exc:
        if str(exc).startswith(f"{path}:"):
            raise
        raise ValueError(f"{path}: not a readable .npz archive ({exc})") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError,
            struct.error) as exc:  # damaged, truncated, encrypted or exotic archives
        raise ValueError(f"{path}: not a readable .npz archive ({type(exc).__name__}: {exc})") from None
    if X.ndim < 1 or y.ndim != 1:
        raise ValueError(
            f"{path}: X must have at least 1 dimension and y exactly 1; "
            f"got shapes {X.shape} and {y.shape}"
        )
    if len(X) != len(y):
        raise ValueError(f"{path}: X has {len(X)} rows but y has {len(y)}")
    return X, y
