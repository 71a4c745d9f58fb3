"""Tests for gdcore.datasets: bundled digits, MNIST IDX files, .npz files."""
import gzip
import os
import re
import tracemalloc

import numpy as np
import pytest

from gdcore.datasets import load_digits, load_mnist, load_npz

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801


# ---------------------------------------------------------------- digits


def test_digits_shape_dtype_and_range():
    X, y = load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float64
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0 and X.max() == 16
    assert np.array_equal(X, np.round(X)), "pixels are integer counts"
    assert y.min() == 0 and y.max() == 9


def test_digits_class_counts():
    _, y = load_digits()
    counts = np.bincount(y, minlength=10)
    assert len(counts) == 10
    assert counts.sum() == 1797
    assert np.all((counts >= 170) & (counts <= 190)), counts


def test_digits_content_is_the_uci_test_set():
    # Fixed values of the shipped file catch a shifted label column or a
    # dropped row.
    X, y = load_digits()
    assert list(y[:10]) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert list(X[0, :8]) == [0, 0, 5, 13, 9, 1, 0, 0]
    assert X.sum() == 561718
    assert list(np.bincount(y)) == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def test_digits_deterministic_and_fresh_arrays():
    X1, y1 = load_digits()
    X1[:] = -1  # must not leak into the next call
    y1[:] = -1
    X2, y2 = load_digits()
    X3, y3 = load_digits()
    assert X2.min() == 0
    np.testing.assert_array_equal(X2, X3)
    np.testing.assert_array_equal(y2, y3)


# ----------------------------------------------------------------- MNIST


def idx_bytes(magic, array):
    """Encode a uint8 array as an IDX file (header, then the raw bytes)."""
    header = magic.to_bytes(4, "big")
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_file(path, content):
    if path.name.endswith(".gz"):
        content = gzip.compress(content)
    path.write_bytes(content)
    return path


def make_split(n, rows, cols, seed):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, rows, cols), dtype=np.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255  # both extremes present
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    return images, labels


def write_split(folder, prefix, images, labels, suffix="", dot=False):
    sep = "." if dot else "-"
    images_path = folder / f"{prefix}-images{sep}idx3-ubyte{suffix}"
    labels_path = folder / f"{prefix}-labels{sep}idx1-ubyte{suffix}"
    write_file(images_path, idx_bytes(IMAGES_MAGIC, images))
    write_file(labels_path, idx_bytes(LABELS_MAGIC, labels))
    return images_path, labels_path


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dot", [False, True], ids=["dash-names", "dot-names"])
def test_mnist_round_trip(tmp_path, suffix, dot):
    # Non-square images (rows != cols) catch a transposed reshape; distinct
    # train and test content catches loading the wrong split.
    train = make_split(7, 4, 3, seed=0)
    test = make_split(5, 4, 3, seed=1)
    write_split(tmp_path, "train", *train, suffix=suffix, dot=dot)
    write_split(tmp_path, "t10k", *test, suffix=suffix, dot=dot)

    for kind, (images, labels) in [("train", train), ("test", test)]:
        X, y = load_mnist(tmp_path, kind=kind)
        assert X.dtype == np.float32 and X.shape == (len(images), 12)
        assert y.dtype == np.int64 and y.shape == (len(images),)
        np.testing.assert_array_equal(X, images.reshape(len(images), -1))
        np.testing.assert_array_equal(y, labels)
        assert X.max() == 255, "values are raw bytes, not scaled"


def test_mnist_default_kind_is_train_and_accepts_str(tmp_path):
    images, labels = make_split(3, 2, 2, seed=2)
    write_split(tmp_path, "train", images, labels)
    X, y = load_mnist(str(tmp_path))
    np.testing.assert_array_equal(y, labels)


@pytest.mark.parametrize("loader", [load_digits, load_mnist, load_npz])
def test_loader_docstrings_state_the_defaults_of_the_signature(loader):
    """load_mnist's doc of ``kind`` said ``{"train", "test"}``, not that "train" is the
    default."""
    import inspect
    doc = inspect.getdoc(loader)
    for name, parameter in inspect.signature(loader).parameters.items():
        if parameter.default is not inspect.Parameter.empty:
            entry = re.search(rf"^{name} : (.*)$", doc, re.M)
            assert entry and f"default={parameter.default!r}".replace("'", '"') in entry[1]


def test_mnist_unknown_kind(tmp_path):
    with pytest.raises(ValueError, match="kind.*'validation'"):
        load_mnist(tmp_path, kind="validation")


def test_mnist_missing_folder(tmp_path):
    missing = tmp_path / "no_such_folder"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        load_mnist(missing)


def test_mnist_missing_files_names_folder_and_files(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_mnist(tmp_path, kind="test")
    message = str(info.value)
    assert str(tmp_path) in message
    assert "t10k-images-idx3-ubyte" in message
    assert "t10k-images-idx3-ubyte.gz" in message


def test_mnist_missing_labels_file(tmp_path):
    images, labels = make_split(3, 2, 2, seed=3)
    _, labels_path = write_split(tmp_path, "train", images, labels)
    labels_path.unlink()
    with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte"):
        load_mnist(tmp_path)


def write_valid_then_replace(folder, which, content, suffix=""):
    """Write a valid train split, then overwrite one file with ``content``."""
    images, labels = make_split(5, 4, 3, seed=4)
    images_path, labels_path = write_split(folder, "train", images, labels, suffix)
    target = images_path if which == "images" else labels_path
    write_file(target, content)
    return target


def valid_images():
    return idx_bytes(IMAGES_MAGIC, make_split(5, 4, 3, seed=4)[0])


MALFORMED_IMAGES = {
    "bad-magic": (
        (0x12345678).to_bytes(4, "big") + valid_images()[4:],
        "bad magic number 0x12345678",
    ),
    "labels-magic": (
        LABELS_MAGIC.to_bytes(4, "big") + valid_images()[4:],
        "bad magic number 0x00000801",
    ),
    "short-header": (valid_images()[:10], "truncated header"),
    "empty": (b"", "truncated header"),
    "truncated-data": (valid_images()[:-1], "truncated data.*expected 60 bytes, found 59"),
    "trailing-bytes": (valid_images() + b"\x00", "trailing bytes"),
    "zero-dim": (idx_bytes(IMAGES_MAGIC, np.zeros((0, 4, 3))), "zero dimension"),
}


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("case", MALFORMED_IMAGES)
def test_mnist_malformed_images(tmp_path, case, suffix):
    content, expected = MALFORMED_IMAGES[case]
    target = write_valid_then_replace(tmp_path, "images", content, suffix)
    with pytest.raises(ValueError, match=expected) as info:
        load_mnist(tmp_path)
    assert target.name in str(info.value)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_mnist_malformed_labels(tmp_path, suffix):
    labels = np.zeros(5, dtype=np.uint8)
    cases = {
        "bad magic number 0x00000803": IMAGES_MAGIC.to_bytes(4, "big")
        + idx_bytes(LABELS_MAGIC, labels)[4:],
        "truncated data": idx_bytes(LABELS_MAGIC, labels)[:-2],
        "trailing bytes": idx_bytes(LABELS_MAGIC, labels) + b"\x07",
    }
    for expected, content in cases.items():
        target = write_valid_then_replace(tmp_path, "labels", content, suffix)
        with pytest.raises(ValueError, match=expected) as info:
            load_mnist(tmp_path)
        assert target.name in str(info.value)


def test_mnist_count_mismatch(tmp_path):
    images, labels = make_split(5, 4, 3, seed=5)
    write_split(tmp_path, "train", images, labels[:4])
    with pytest.raises(ValueError, match="5 images.*4 labels"):
        load_mnist(tmp_path)


def test_mnist_not_gzip_despite_suffix(tmp_path):
    images, labels = make_split(5, 4, 3, seed=6)
    write_split(tmp_path, "train", images, labels, suffix=".gz")
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"plain bytes, not gzip")
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz.*gzip"):
        load_mnist(tmp_path)


def test_mnist_truncated_gzip_stream(tmp_path):
    images, labels = make_split(5, 4, 3, seed=7)
    images_path, _ = write_split(tmp_path, "train", images, labels, suffix=".gz")
    images_path.write_bytes(images_path.read_bytes()[:-12])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz.*gzip"):
        load_mnist(tmp_path)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_mnist_huge_declared_size_does_not_allocate(tmp_path, suffix):
    # The header claims 2e9 bytes of images; the file holds 100. Reading
    # must fail on the actual length without reserving the declared size.
    header = IMAGES_MAGIC.to_bytes(4, "big")
    header += b"".join(d.to_bytes(4, "big") for d in (2000, 1000, 1000))
    write_valid_then_replace(tmp_path, "images", header + bytes(100), suffix)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="truncated data.*found 100"):
            load_mnist(tmp_path)
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak_bytes < 64 * 2**20


# ------------------------------------------------------------------- npz


def test_npz_round_trip(tmp_path):
    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    y = np.array([0, 1, 1, 0], dtype=np.int64)
    path = tmp_path / "data.npz"
    np.savez(path, X=X, y=y)
    X_loaded, y_loaded = load_npz(path)
    assert X_loaded.dtype == X.dtype and y_loaded.dtype == y.dtype
    np.testing.assert_array_equal(X_loaded, X)
    np.testing.assert_array_equal(y_loaded, y)
    # A str path works too, and compressed archives load the same.
    np.savez_compressed(tmp_path / "c.npz", X=X, y=y)
    np.testing.assert_array_equal(load_npz(str(tmp_path / "c.npz"))[0], X)


@pytest.mark.parametrize("missing", ["X", "y"])
def test_npz_missing_key(tmp_path, missing):
    arrays = {"X": np.zeros((2, 2)), "y": np.zeros(2)}
    del arrays[missing]
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=f"missing.*'{missing}'"):
        load_npz(path)


def test_npz_length_mismatch(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, X=np.zeros((4, 2)), y=np.zeros(3))
    with pytest.raises(ValueError, match="X has 4 rows but y has 3"):
        load_npz(path)


def test_npz_y_must_be_1d(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, X=np.zeros((4, 2)), y=np.zeros((4, 1)))
    with pytest.raises(ValueError, match="y exactly 1"):
        load_npz(path)


def test_npz_refuses_pickled_arrays(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, X=np.array([{"a": 1}, None], dtype=object), y=np.zeros(2))
    with pytest.raises(ValueError, match="pickled"):
        load_npz(path)


def test_npz_rejects_npy_file(tmp_path):
    path = tmp_path / "data.npy"
    np.save(path, np.zeros(3))
    with pytest.raises(ValueError, match="not a readable .npz archive"):
        load_npz(path)


def test_load_npz_takes_a_bytes_path(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.zeros((3, 2)), y=np.arange(3))
    X, y = load_npz(os.fsencode(path))
    assert X.shape == (3, 2) and list(y) == [0, 1, 2]
