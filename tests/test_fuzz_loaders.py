"""Property-based fuzzing of the file loaders (issue #5, item 2).

gdcore.datasets.load_mnist (IDX files, raw or gzip) and load_npz get valid files of random
shapes, and files that are truncated, bit-flipped, padded with trailing bytes, given a wrong
magic number, headers declaring huge sizes, damaged gzip or zip streams, .npz archives without
X or y, with crafted member headers, or holding pickled object arrays whose unpickling would
create a marker file. The outcome must be the right arrays (as an independent IDX parser, or
NumPy's own reader, sees the file) or a clear ValueError / FileNotFoundError; never another
exception type, never a pickle executed, never a crash, and never memory out of proportion to
the file (tracemalloc peak; a subprocess under an address-space limit for the huge headers).

Each fuzz test asserts that it ran its budget of generated cases; examples are derandomized
(GDCORE_FUZZ_RANDOM=1 draws fresh ones, GDCORE_FUZZ_SCALE=10 runs ten times as many).
"""
import gzip
import io
import itertools
import json
import math
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
import time
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from gdcore.datasets import load_mnist, load_npz

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _fuzzing import NO_SHRINK, CaseBudgets, hang_guard_fixture  # noqa: E402

IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801

# ----------------------------------------------------------------------------------- budgets
CASES = CaseBudgets(phases=NO_SHRINK)
fuzz = CASES.fuzz
hang_guard = hang_guard_fixture(300)  # a loader that hangs must fail the run, not stall CI
report_case_count = CASES.report_fixture()


WORK = None  # a scratch folder for this module (set by the work_dir fixture)
_FOLDERS = itertools.count()


@pytest.fixture(autouse=True, scope="module")
def work_dir(tmp_path_factory):
    global WORK
    WORK = tmp_path_factory.mktemp("fuzz-loaders")
    yield WORK


def fresh_folder():
    folder = WORK / f"case{next(_FOLDERS)}"
    folder.mkdir()
    return folder


SEEDS = st.integers(0, 2**32 - 1)


def call(loader, *args, **kwargs):
    """("ok", result) or ("error", exception) for ValueError/FileNotFoundError, timed; any other
    exception propagates and fails the test."""
    start = time.perf_counter()
    try:
        outcome = "ok", loader(*args, **kwargs)
    except (ValueError, FileNotFoundError) as exc:
        outcome = "error", exc
    elapsed = time.perf_counter() - start
    assert elapsed < 10, f"{loader.__name__} took {elapsed:.1f} s on a file of a few kB"
    return outcome


def call_traced(loader, *args, **kwargs):
    """call(loader, ...) under tracemalloc: (outcome, peak bytes allocated during the call)."""
    tracemalloc.start()
    try:
        outcome = call(loader, *args, **kwargs)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return outcome, peak


# ----------------------------------------------------------------------------------- IDX files
def idx_bytes(magic, array):
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def parse_idx(content, magic):
    """An independent reading of an IDX file of unsigned bytes: the array, or None if invalid."""
    ndim = magic & 0xFF
    if len(content) < 4 + 4 * ndim or int.from_bytes(content[:4], "big") != magic:
        return None
    dims = [int.from_bytes(content[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    body = content[4 + 4 * ndim:]
    if 0 in dims or len(body) != math.prod(dims):
        return None
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def gunzip(content):
    """What gzip.open reads from ``content`` (the loader's own library), or None."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(content)) as stream:
            return stream.read()
    except Exception:  # noqa: BLE001 - any failure means "not readable"
        return None


NAMES = {"dash": ("{p}-images-idx3-ubyte", "{p}-labels-idx1-ubyte"),
         "dot": ("{p}-images.idx3-ubyte", "{p}-labels.idx1-ubyte")}


def write_split(folder, kind, images_content, labels_content, naming, gz):
    """Write the two files of a split; ``*_content`` are the uncompressed bytes, or
    ("raw", bytes) for bytes to write as they are (already gzip-compressed or damaged)."""
    prefix = {"train": "train", "test": "t10k"}[kind]
    paths = []
    for template, content in zip(NAMES[naming], (images_content, labels_content)):
        path = folder / (template.format(p=prefix) + (".gz" if gz else ""))
        if isinstance(content, tuple):
            data = content[1]
        else:
            data = gzip.compress(content, mtime=0) if gz else content
        path.write_bytes(data)
        paths.append(path)
    return paths


@st.composite
def mnist_splits(draw):
    """A valid split: n images of rows x cols bytes and n labels."""
    rng = np.random.default_rng(draw(SEEDS))
    n, rows, cols = draw(st.integers(1, 12)), draw(st.integers(1, 6)), draw(st.integers(1, 6))
    images = rng.integers(0, 256, size=(n, rows, cols), dtype=np.uint8)
    labels = rng.integers(0, 256 if draw(st.booleans()) else 10, size=n, dtype=np.uint8)
    return images, labels


@fuzz(300)
@given(split=mnist_splits(), kind=st.sampled_from(("train", "test")),
       naming=st.sampled_from(("dash", "dot")), gz=st.booleans(), as_str=st.booleans())
def test_fuzz_mnist_round_trip(split, kind, naming, gz, as_str):
    """Valid IDX files of any shape, raw or gzip, either file naming: exactly their contents."""
    images, labels = split
    folder = fresh_folder()
    write_split(folder, kind, idx_bytes(IMAGES_MAGIC, images), idx_bytes(LABELS_MAGIC, labels),
                naming, gz)
    outcome = call(load_mnist, str(folder) if as_str else folder, kind=kind)
    assert outcome[0] == "ok", f"a valid split was refused: {outcome[1]}"
    X, y = outcome[1]
    assert X.dtype == np.float32 and X.shape == (len(images), images[0].size)
    assert y.dtype == np.int64 and y.shape == (len(labels),)
    np.testing.assert_array_equal(X, images.reshape(len(images), -1))
    np.testing.assert_array_equal(y, labels)
    shutil.rmtree(folder)


MUTATIONS = ("truncate", "append", "flip", "magic", "dims", "count_mismatch", "gz_flip",
             "gz_truncate", "gz_append", "not_gzip")


def mutate(rng, content, mutation, magic):
    """Damage an uncompressed IDX file; returns uncompressed bytes (or ("raw", bytes) for
    damage done to the gzip stream itself)."""
    ndim = magic & 0xFF
    data = bytearray(content)
    if mutation == "truncate":
        return bytes(data[:rng.integers(0, len(data))])
    if mutation == "append":
        return bytes(data) + rng.bytes(int(rng.integers(1, 9)))
    if mutation == "flip":
        for _ in range(int(rng.integers(1, 4))):
            # the header is small: aim there half of the time
            end = 4 + 4 * ndim if rng.random() < 0.5 else len(data)
            at = int(rng.integers(0, end))
            data[at] ^= 1 << int(rng.integers(0, 8))
        return bytes(data)
    if mutation == "magic":
        options = [b"\x00\x00\x08\x01", b"\x00\x00\x08\x03", b"\x00\x00\x0d\x03",
                   b"\x00\x00\x08\x04", b"\xff\xff\xff\xff", rng.bytes(4)]
        data[:4] = options[rng.integers(len(options))]
        return bytes(data)
    if mutation == "dims":  # any 32-bit size, huge ones included; the body stays as it is
        at = 4 + 4 * int(rng.integers(0, ndim))
        value = int(rng.choice([0, 1, 2**31, 2**32 - 1, int(rng.integers(0, 2**32)),
                                int.from_bytes(data[at:at + 4], "big") + 1]))
        data[at:at + 4] = (value % 2**32).to_bytes(4, "big")
        return bytes(data)
    if mutation == "count_mismatch":
        data[4:8] = (int.from_bytes(data[4:8], "big") + 1).to_bytes(4, "big")
        return bytes(data) + bytes(int(np.prod([int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big")
                                                for i in range(1, ndim)])))
    compressed = bytearray(gzip.compress(bytes(data), mtime=0))
    if mutation == "gz_flip":
        for _ in range(int(rng.integers(1, 4))):
            compressed[int(rng.integers(0, len(compressed)))] ^= 1 << int(rng.integers(0, 8))
    elif mutation == "gz_truncate":
        compressed = compressed[:rng.integers(0, len(compressed))]
    elif mutation == "gz_append":
        options = [b"\x00" * 4, rng.bytes(int(rng.integers(1, 30))), gzip.compress(b"\x07", mtime=0)]
        compressed += options[rng.integers(len(options))]
    elif mutation == "not_gzip":
        compressed = bytearray(data)  # raw bytes under a .gz name
    return "raw", bytes(compressed)


def expected_split(images_written, labels_written, gz):
    """What load_mnist should return for the written files, or None if it must refuse."""
    arrays = []
    for written, magic in ((images_written, IMAGES_MAGIC), (labels_written, LABELS_MAGIC)):
        if isinstance(written, tuple):
            content = gunzip(written[1]) if gz else written[1]
        else:
            content = written
        arrays.append(None if content is None else parse_idx(content, magic))
    images, labels = arrays
    if images is None or labels is None or len(images) != len(labels):
        return None
    return images.reshape(len(images), -1).astype(np.float32), labels.astype(np.int64)


@fuzz(900)
@given(split=mnist_splits(), which=st.sampled_from(("images", "labels", "both")),
       mutation=st.sampled_from(MUTATIONS), seed=SEEDS, gz=st.booleans())
def test_fuzz_mnist_damaged_files(split, which, mutation, seed, gz):
    """Truncated, padded, bit-flipped files, wrong magic numbers, any declared sizes, image and
    label counts that differ, damaged gzip streams: exactly what an independent parser reads,
    or a ValueError naming the damaged file; bounded time and memory."""
    images, labels = split
    rng = np.random.default_rng(seed)
    gz = gz or mutation.startswith(("gz_", "not_gzip"))
    contents = {"images": idx_bytes(IMAGES_MAGIC, images), "labels": idx_bytes(LABELS_MAGIC, labels)}
    for part, magic in (("images", IMAGES_MAGIC), ("labels", LABELS_MAGIC)):
        if which in (part, "both"):
            contents[part] = mutate(rng, contents[part], mutation, magic)
    folder = fresh_folder()
    paths = write_split(folder, "train", contents["images"], contents["labels"], "dash", gz)
    expected = expected_split(contents["images"], contents["labels"], gz)
    note(f"expected: {'refusal' if expected is None else [a.shape for a in expected]}")
    outcome, peak = call_traced(load_mnist, folder)
    size = sum(path.stat().st_size for path in paths)
    assert peak < 4 * 2**20 + 64 * size, f"load_mnist peaked at {peak} bytes for {size} bytes of files"
    if expected is None:
        assert outcome[0] == "error", f"a damaged split was accepted: {[a.shape for a in outcome[1]]}"
        assert isinstance(outcome[1], ValueError), outcome[1]
        assert any(path.name in str(outcome[1]) for path in paths), (
            f"the error does not name the file: {outcome[1]}")
    else:
        assert outcome[0] == "ok", f"a readable split was refused: {outcome[1]}"
        for got, want in zip(outcome[1], expected):
            assert got.dtype == want.dtype and np.array_equal(got, want)
    shutil.rmtree(folder)


@fuzz(150)
@given(ndim_dims=st.lists(st.integers(2**20, 2**32 - 1), min_size=3, max_size=3),
       body=st.integers(0, 4096), which=st.sampled_from(("images", "labels")), gz=st.booleans())
def test_fuzz_mnist_huge_declared_sizes_cost_only_what_the_file_holds(ndim_dims, body, which, gz):
    """A header declaring up to (2**32-1)**3 bytes over a body of a few kB is refused as
    truncated, quickly, with memory in proportion to the file, not to the declaration."""
    magic = IMAGES_MAGIC if which == "images" else LABELS_MAGIC
    ndim = magic & 0xFF
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in ndim_dims[:ndim])
    content = header + bytes(body)
    valid = idx_bytes(LABELS_MAGIC if which == "images" else IMAGES_MAGIC,
                      np.zeros(3 if which == "images" else (3, 2, 2), dtype=np.uint8))
    folder = fresh_folder()
    images, labels = (content, valid) if which == "images" else (valid, content)
    write_split(folder, "train", images, labels, "dash", gz)
    outcome, peak = call_traced(load_mnist, folder)
    assert outcome[0] == "error" and "truncated" in str(outcome[1]), outcome
    assert peak < 4 * 2**20, f"load_mnist peaked at {peak} bytes for a {len(content)}-byte file"
    shutil.rmtree(folder)


@pytest.mark.parametrize("kind", ["validation", "", None, 3, ["train"], ("test",), b"train"])
def test_mnist_bad_kind_is_a_clear_value_error(tmp_path, kind):
    """Any kind other than "train" or "test", hashable or not, is a ValueError naming kind."""
    with pytest.raises(ValueError, match="kind"):
        load_mnist(tmp_path, kind=kind)


def test_mnist_missing_things_are_file_not_found(tmp_path):
    (tmp_path / "a_file").write_bytes(b"")
    for folder in (tmp_path / "missing", tmp_path / "a_file", tmp_path):
        with pytest.raises(FileNotFoundError):
            load_mnist(folder)


# ----------------------------------------------------------------------------------- npz files
NPZ_DTYPES = ("float64", "float32", "float16", "int8", "int64", "uint16", "bool", "complex64",
              "<U3", "S2", "datetime64[s]", ">f8", "<i2")


def npz_bytes(arrays, compressed=False):
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


def random_array(rng, shape, dtype):
    values = rng.integers(-50, 50, size=shape)
    with np.errstate(all="ignore"):
        return values.astype(dtype)


@st.composite
def npz_contents(draw):
    """Arrays for an .npz: X of shape (n, ...), y of shape (n,), maybe more keys."""
    rng = np.random.default_rng(draw(SEEDS))
    n = draw(st.integers(1, 10))
    feature_shape = tuple(draw(st.lists(st.integers(1, 4), max_size=3)))
    arrays = {"X": random_array(rng, (n,) + feature_shape, draw(st.sampled_from(NPZ_DTYPES))),
              "y": random_array(rng, (n,), draw(st.sampled_from(NPZ_DTYPES)))}
    if draw(st.booleans()):
        arrays["extra"] = random_array(rng, (2, 2), "float64")
    if draw(st.booleans()):
        arrays["X"] = np.asfortranarray(arrays["X"])
    return arrays


def write(content, suffix=".npz"):
    path = fresh_folder() / f"data{suffix}"
    path.write_bytes(content)
    return path


@fuzz(300)
@given(arrays=npz_contents(), compressed=st.booleans(), as_str=st.booleans())
def test_fuzz_npz_round_trip(arrays, compressed, as_str):
    """X and y as stored: every dtype NumPy saves without pickling, any feature shape."""
    path = write(npz_bytes(arrays, compressed))
    outcome = call(load_npz, str(path) if as_str else path)
    assert outcome[0] == "ok", f"a valid .npz was refused: {outcome[1]}"
    X, y = outcome[1]
    for got, want in ((X, arrays["X"]), (y, arrays["y"])):
        assert got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want)


def npy_member(shape, descr="<f8", fortran_order=False, data=None, header=None, version=b"\x01\x00"):
    """The bytes of a .npy file with a hand-made header."""
    if header is None:
        header = "{'descr': %r, 'fortran_order': %r, 'shape': %r, }" % (descr, fortran_order, shape)
    header = header + " " * ((63 - (10 + len(header)) % 64) % 64) + "\n"
    if data is None:
        count = math.prod(shape) if isinstance(shape, tuple) and all(
            isinstance(s, int) and s >= 0 for s in shape) else 1
        data = bytes(min(count, 4096) * 8)
    return b"\x93NUMPY" + version + len(header).to_bytes(2, "little") + header.encode("latin1") + data


def zip_of(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def npy_of(array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


STRUCTURE_DEFECTS = ("missing_X", "missing_y", "missing_both", "lowercase_keys", "y_2d", "y_0d",
                     "X_0d", "length_mismatch", "npy_file", "pickle_file", "text_file",
                     "random_bytes", "gzip_of_npz", "member_header", "member_version",
                     "member_short_data", "member_long_data", "member_descr", "member_fortran",
                     "missing_file")
# Left to other tests: an empty file (test_fuzz_npz_damaged_bytes truncates to any length) and a
# member that is not a .npy (test_fuzz_npz_member_not_npy).
MEMBER_SHAPES = [(), (3,), (3, 2), (-1,), (3, -2), ("a",), (2.5,), None, (2, 2, 2)]
MEMBER_DESCRS = ["<f8", "<i8", "|u1", "<U4", "|b1", ">c16", "|O", "nonsense", "<f3", "V8",
                 [("a", "<f8"), ("b", "|O")], [("a", "<i4")]]


@st.composite
def damaged_npz(draw):
    """(path, how it was damaged): an .npz whose structure or members are wrong."""
    rng = np.random.default_rng(draw(SEEDS))
    defect = draw(st.sampled_from(STRUCTURE_DEFECTS))
    n = int(rng.integers(1, 6))
    X, y = rng.normal(size=(n, 2)), rng.integers(0, 3, size=n)
    members = {"X.npy": npy_of(X), "y.npy": npy_of(y)}
    suffix = ".npz"
    if defect == "missing_X":
        del members["X.npy"]
    elif defect == "missing_y":
        del members["y.npy"]
    elif defect == "missing_both":
        members = {"a.npy": npy_of(X)}
    elif defect == "lowercase_keys":
        members = {"x.npy": npy_of(X), "Y.npy": npy_of(y)}
    elif defect == "y_2d":
        members["y.npy"] = npy_of(y.reshape(n, 1))
    elif defect == "y_0d":
        members["y.npy"] = npy_of(np.int64(1))
    elif defect == "X_0d":
        members["X.npy"] = npy_of(np.float64(1))
    elif defect == "length_mismatch":
        members["y.npy"] = npy_of(np.arange(n + 1))
    elif defect.startswith("member_"):
        target = draw(st.sampled_from(("X.npy", "y.npy")))
        shape = draw(st.sampled_from(MEMBER_SHAPES))
        if defect == "member_header":
            content = npy_member(shape)
        elif defect == "member_version":
            content = npy_member((n,), version=draw(st.sampled_from((b"\x00\x00", b"\x09\x09",
                                                                     b"\x02\x00", b"\x03\x00"))))
        elif defect == "member_short_data":
            content = npy_member((n, 2), data=bytes(int(rng.integers(0, 16 * n))))
        elif defect == "member_long_data":
            content = npy_member((n,), data=bytes(8 * n + int(rng.integers(1, 64))))
        elif defect == "member_descr":
            content = npy_member((n,), descr=draw(st.sampled_from(MEMBER_DESCRS)))
        elif defect == "member_fortran":
            content = npy_member((n, 2), fortran_order=draw(st.sampled_from(("yes", 1, None, True))))
        members[target] = content
    if defect in ("npy_file", "pickle_file", "text_file", "random_bytes", "gzip_of_npz"):
        content = {"npy_file": lambda: npy_of(X), "pickle_file": lambda: pickle.dumps({"X": [1]}),
                   "text_file": lambda: b"X,y\n1,2\n",
                   "random_bytes": lambda: rng.bytes(int(rng.integers(1, 300))),
                   "gzip_of_npz": lambda: gzip.compress(zip_of(members))}[defect]()
    else:
        content = zip_of(members)
    path = write(content, suffix)
    if defect == "missing_file":
        path.unlink()
    return path, defect


def numpy_reading(path):
    """What NumPy itself reads from the file (no pickles): (X, y) if both are there and valid
    for load_npz, else None."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            X, y = archive["X"], archive["y"]
    except Exception:  # noqa: BLE001 - anything NumPy cannot read must be refused
        return None
    if not (isinstance(X, np.ndarray) and isinstance(y, np.ndarray)):
        return None  # NpzFile hands back the raw bytes of a member that is not a .npy
    if X.ndim < 1 or y.ndim != 1 or len(X) != len(y):
        return None
    return X, y


@fuzz(600)
@given(case=damaged_npz())
def test_fuzz_npz_damaged_structure(case):
    """Missing or misnamed keys, wrong dimensions or lengths, files that are not .npz archives,
    crafted member headers (odd shapes, dtypes, versions, fortran flags, short or long data):
    what NumPy reads (when it holds a valid X and y) or a ValueError / FileNotFoundError."""
    path, defect = case
    expected = numpy_reading(path) if path.is_file() else None
    outcome = call(load_npz, path)
    if expected is None:
        assert outcome[0] == "error", f"{defect}: accepted {outcome[1]}"
    else:
        assert outcome[0] == "ok", f"{defect}: refused a file NumPy reads: {outcome[1]}"
        for got, want in zip(outcome[1], expected):
            assert got.dtype == want.dtype
            assert np.array_equal(got, want, equal_nan=got.dtype.kind in "fc")


BYTE_DAMAGE = ("truncate", "flip", "append", "flip_compressed")


@fuzz(400)
@given(arrays=npz_contents(), damage=st.sampled_from(BYTE_DAMAGE), seed=SEEDS)
def test_fuzz_npz_damaged_bytes(arrays, damage, seed):
    """A truncated, bit-flipped or padded .npz (the zip container, its CRCs, its deflate
    streams): what NumPy reads when that is a valid X and y, else a ValueError -- never
    zipfile.BadZipFile, zlib.error, EOFError or another exception type leaking out."""
    rng = np.random.default_rng(seed)
    content = bytearray(npz_bytes(arrays, compressed=damage == "flip_compressed"))
    if damage == "truncate":
        content = content[:rng.integers(0, len(content))]
    elif damage == "append":
        content += rng.bytes(int(rng.integers(1, 100)))
    else:
        for _ in range(int(rng.integers(1, 4))):
            content[int(rng.integers(0, len(content)))] ^= 1 << int(rng.integers(0, 8))
    path = write(bytes(content))
    expected = numpy_reading(path)
    outcome = call(load_npz, path)
    if expected is None:
        assert outcome[0] == "error", f"{damage}: accepted a file NumPy cannot read"
    else:
        assert outcome[0] == "ok", f"{damage}: refused a file NumPy reads: {outcome[1]}"


def test_npz_paths_that_are_not_files(tmp_path):
    """A missing path is a FileNotFoundError; a folder named like an archive is a clear
    ValueError or FileNotFoundError too, as load_mnist does for a folder that is a file."""
    with pytest.raises(FileNotFoundError):
        load_npz(tmp_path / "missing.npz")
    (tmp_path / "folder.npz").mkdir()
    with pytest.raises((ValueError, FileNotFoundError)):
        load_npz(tmp_path / "folder.npz")


@fuzz(100)
@given(target=st.sampled_from(("X.npy", "y.npy")), seed=SEEDS,
       kind=st.sampled_from(("random", "empty", "text", "truncated_magic")))
def test_fuzz_npz_member_not_npy(target, seed, kind):
    """A member X.npy or y.npy that is not a .npy file (NumPy's NpzFile then hands back its raw
    bytes instead of an array) is a ValueError, not an AttributeError from bytes.ndim."""
    rng = np.random.default_rng(seed)
    members = {"X.npy": npy_of(np.ones((3, 2))), "y.npy": npy_of(np.arange(3))}
    members[target] = {"random": lambda: rng.bytes(int(rng.integers(1, 200))), "empty": lambda: b"",
                       "text": lambda: b"1,2,3\n", "truncated_magic": lambda: b"\x93NUM"}[kind]()
    outcome = call(load_npz, write(zip_of(members)))
    assert outcome[0] == "error", f"accepted a {kind} {target}: {outcome[1]!r}"


class _CreatesMarker:
    """Unpickling this calls open(marker, "w"): proof that a pickle ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@fuzz(100)
@given(where=st.sampled_from(("X", "y", "both", "extra", "raw_pickle", "npy")),
       compressed=st.booleans(), n=st.integers(1, 64))
def test_fuzz_npz_pickles_are_never_run(where, compressed, n):
    """Object arrays are refused with a ValueError and nothing is unpickled: an object whose
    unpickling would create a marker file, stored as X, y, both, an extra key (never read), a
    whole pickle file, or a lone .npy, leaves no marker."""
    folder = fresh_folder()
    marker = folder / "MARKER"
    evil = np.empty(n, dtype=object)
    for i in range(n):
        evil[i] = _CreatesMarker(marker)
    arrays = {"X": np.ones((n, 2)), "y": np.arange(n)}
    if where in ("X", "both"):
        arrays["X"] = evil
    if where in ("y", "both"):
        arrays["y"] = evil
    if where == "extra":
        arrays["extra"] = evil
    path = folder / "data.npz"
    if where == "raw_pickle":
        path.write_bytes(pickle.dumps(evil))
    elif where == "npy":
        np.save(folder / "data.npy", evil, allow_pickle=True)
        (folder / "data.npy").rename(path)
    else:
        (np.savez_compressed if compressed else np.savez)(path, allow_pickle=True, **arrays)
    assert not marker.exists()
    outcome = call(load_npz, path)
    assert not marker.exists(), "load_npz unpickled an object: the marker file appeared"
    if where == "extra":
        assert outcome[0] == "ok", outcome[1]
        np.testing.assert_array_equal(outcome[1][0], arrays["X"])
    else:
        assert outcome[0] == "error", f"pickled {where} accepted"
    shutil.rmtree(folder)


HUGE_SHAPES_PROBE = r"""
import io, json, zipfile
import numpy as np
from gdcore.datasets import load_npz
def member(shape):
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': %r, }" % (shape,)
    header = header + " " * ((63 - (10 + len(header)) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + bytes(64)
results = {}
for shape in SHAPES:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("X.npy", member(shape))
        archive.writestr("y.npy", member((3,)))
    with open("huge.npz", "wb") as f:
        f.write(buffer.getvalue())
    try:
        load_npz("huge.npz"); results[repr(shape)] = "accepted"
    except (ValueError, FileNotFoundError) as exc:
        results[repr(shape)] = "ok: " + str(exc)[:120]
    except BaseException as exc:
        results[repr(shape)] = f"{type(exc).__name__}: {exc}"[:200]
print("RESULTS " + json.dumps(results))
"""


def test_npz_huge_declared_shapes_are_refused_without_allocating_them(tmp_path):
    """A member .npy whose header declares a huge shape over 64 bytes of data is a ValueError,
    without first allocating the declared size (NumPy's reader of zip members allocates the
    whole array before reading): checked in a subprocess under a 2 GiB address-space limit,
    where such an allocation becomes a MemoryError."""
    shapes = [(2**20,), (2**27,), (2**31,), (2**28, 4), (2**40,), (2**62, 4), (2**64,)]
    limit = 2 << 30
    code = (f"import resource\nresource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))\n"
            + textwrap.dedent(HUGE_SHAPES_PROBE).replace("SHAPES", repr(shapes)))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path)
    assert result.returncode == 0, f"signal/exit {result.returncode}: {result.stderr[-2000:]}"
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULTS ")]
    outcomes = json.loads(lines[-1][len("RESULTS "):])
    wrong = {shape: outcome for shape, outcome in outcomes.items() if not outcome.startswith("ok: ")}
    assert not wrong, f"huge declared shapes: {json.dumps(wrong, indent=1)}"


def test_loader_case_budget():
    assert sum(CASES.budgets.values()) >= 2000, CASES.budgets
