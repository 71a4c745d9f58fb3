"""Property-based fuzzing of gdcore.io.load (issue #5, item 2).

Every case starts from a valid checkpoint (a float32 model with Adam state, a float64 model with
SGD momentum, or a model saved without optimizer) and damages or crafts it:

- bit flips, byte overwrites, insertions, deletions and duplicated chunks anywhere in the file;
- truncation at every kind of offset, and bytes appended;
- crafted JSON metadata: any value of the meta replaced by junk or by a plausible value of the
  wrong type or range, keys deleted or added, lists grown;
- crafted .npy members: dtypes (object/pickle, big-endian, structured, strings), shapes (huge,
  negative, 2-D, not a tuple), header lengths, format versions, data shorter or longer;
- crafted zip structure: every field of the central directory, the local headers and the end
  record set to small, huge or random values (declared sizes of up to 4 GiB in a small file,
  compression methods, encryption flags, offsets);
- pickled payloads in members and as the whole file, which would create a marker file if any
  code from the file ran.

The outcome must be either a model identical to the one saved (or, for crafted metadata,
exactly what the crafted metadata and members say), or ValueError naming the file (or
FileNotFoundError). Any other exception fails the test; crafted structures also run under
tracemalloc, and the peak allocation must stay within a small multiple of the file's size.
The nastiest files are loaded once more in a subprocess under an address-space limit, so a
crash or a huge allocation fails a test instead of pytest.

Each property asserts that it ran its whole budget (3,000 cases in all). Examples are
derandomized, so a run is reproducible; GDCORE_FUZZ_RANDOM=1 draws fresh ones and
GDCORE_FUZZ_SCALE=10 runs ten times as many.
"""
import atexit
import copy
import functools
import io as stdio
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import textwrap
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import gdcore as gd
from gdcore import io as gio

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _fuzzing import CaseBudgets  # noqa: E402
from test_io import npy, zip_bytes  # noqa: E402  (the archive writers of the I/O tests)

MIN_CASES_PER_RUN = 2_000
CASES = CaseBudgets()
fuzz = CASES.fuzz


# /dev/shm where there is one: rewriting a small file on some disks costs milliseconds
WORK = Path(tempfile.mkdtemp(prefix="gdcore-io-fuzz-",
                             dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
CASE = WORK / "case.npz"
MARKER = WORK / "marker-code-ran"


atexit.register(shutil.rmtree, WORK, ignore_errors=True)  # also when no test here runs


# ----------------------------------------------------------------------------- valid files
@functools.lru_cache(maxsize=None)
def base(index):
    """(file bytes, model, optimizer or None) of valid checkpoint ``index`` (0, 1 or 2)."""
    rng = np.random.default_rng(index)
    X, y = rng.normal(size=(40, 6)), rng.integers(0, 3, 40)
    if index == 0:
        model, opt = gd.MLP([6, 5, 3], activation="tanh", seed=1), gd.optim.Adam(lr=0.01)
    elif index == 1:
        model = gd.MLP([6, 4, 3], activation="relu", dtype="float64", seed=2)
        opt = gd.optim.SGD(lr=0.05, momentum=0.9, nesterov=True)
    else:
        model = gd.Sequential([gd.Dense(6, 4, activation="sigmoid"), gd.Dropout(0.25),
                               gd.Dense(4, 3, l2=0.01)], seed=3)
        opt = None
    model.fit(X, y, optimizer=opt if opt is not None else "sgd", epochs=2, batch_size=8,
              verbose=0)
    path = WORK / f"base{index}.npz"
    gio.save(model, path, optimizer=opt)
    return path.read_bytes(), model, opt


def members(index):
    """{member name: raw member bytes} and (a fresh copy of) the meta dict of valid checkpoint
    ``index``."""
    raw, text = _members(index)
    return dict(raw), json.loads(text)


@functools.lru_cache(maxsize=None)
def _members(index):
    with zipfile.ZipFile(stdio.BytesIO(base(index)[0])) as archive:
        raw = {info.filename: archive.read(info) for info in archive.infolist()}
    with np.load(stdio.BytesIO(base(index)[0]), allow_pickle=False) as archive:
        text = bytes(archive["meta"]).decode()
    return raw, text


# ------------------------------------------------------------------------------ the oracle
def attempt(content, track_memory=False):
    """Load ``content`` from a file: the (model, optimizer) pair, or None after a ValueError
    naming the file. Any other exception propagates and fails the test."""
    CASE.write_bytes(content)
    if track_memory:
        tracemalloc.start()
    try:
        result = gio.load(CASE, with_optimizer=True)
    except ValueError as exc:
        assert str(CASE) in str(exc), f"the error does not name the file: {exc}"
        result = None
    finally:
        if track_memory:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    if track_memory:
        assert peak <= 8 * len(content) + (2 << 20), f"load allocated {peak} bytes"
    assert not MARKER.exists(), "code from the file ran"
    return result


def assert_identical(result, index):
    """The loaded (model, optimizer) is exactly checkpoint ``index`` as saved."""
    _, model, opt = base(index)
    loaded, loaded_opt = result
    assert loaded.get_config()["layers"] == model.get_config()["layers"]
    assert loaded.dtype == model.dtype and loaded.seed == model.seed
    assert np.array_equal(loaded._params, model._params)
    assert loaded._rng.bit_generator.state == model._rng.bit_generator.state
    assert loaded.loss_ == model.loss_
    if opt is None:
        assert loaded_opt is None
        return
    assert type(loaded_opt) is type(opt) and loaded_opt.spec() == opt.spec()
    assert loaded_opt.state["step"] == opt.state["step"]
    assert loaded_opt.state["owner"] is loaded
    assert len(loaded_opt.state["slots"]) == len(opt.state["slots"])
    for a, b in zip(loaded_opt.state["slots"], opt.state["slots"]):
        assert np.array_equal(a, b)


def check_damaged(content, index, track_memory=False):
    result = attempt(content, track_memory)
    if result is not None:
        assert_identical(result, index)
    return result


BASES = st.sampled_from([0, 1, 2])


# ------------------------------------------------------------------------- damaged bytes
@fuzz(500)
@given(index=BASES, flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True),
                                             st.integers(0, 7)), min_size=1, max_size=4))
def test_bit_flips(index, flips):
    """Flipped bits anywhere: refused, or (a timestamp, an attribute) harmless."""
    content = bytearray(base(index)[0])
    for where, bit in flips:
        content[int(where * len(content))] ^= 1 << bit
    check_damaged(bytes(content), index)


RUN = st.binary(min_size=1, max_size=16)
EDIT = st.one_of(
    st.tuples(st.just("overwrite"), st.floats(0, 1, exclude_max=True), RUN),
    st.tuples(st.just("insert"), st.floats(0, 1), RUN),
    st.tuples(st.just("delete"), st.floats(0, 1, exclude_max=True), st.integers(1, 64)),
    st.tuples(st.just("repeat"), st.floats(0, 1, exclude_max=True), st.integers(1, 200)),
    st.tuples(st.just("ff"), st.floats(0, 1, exclude_max=True), st.integers(1, 8)),
)


@fuzz(350)
@given(index=BASES, edits=st.lists(EDIT, min_size=1, max_size=3))
def test_byte_edits(index, edits):
    """Runs of bytes overwritten (random or 0xFF), inserted, deleted or duplicated."""
    content = bytearray(base(index)[0])
    for kind, where, arg in edits:
        at = int(where * len(content))
        if kind == "overwrite":
            content[at:at + len(arg)] = arg
        elif kind == "insert":
            content[at:at] = arg
        elif kind == "delete":
            del content[at:at + arg]
        elif kind == "repeat":
            content[at:at] = content[at:at + arg]
        else:
            content[at:at + arg] = b"\xff" * arg
    check_damaged(bytes(content), index)


@fuzz(200)
@given(index=BASES, keep=st.one_of(st.floats(0, 1, exclude_max=True), st.integers(0, 70)),
       append=st.binary(max_size=40))
def test_truncated_and_extended(index, keep, append):
    """Cut at any offset: always refused (the end record is damaged). With bytes appended
    after the cut: refused, or (when they restore the end record) the same model."""
    content = base(index)[0]
    cut = int(keep * len(content)) if isinstance(keep, float) else len(content) - 1 - keep
    result = check_damaged(content[:max(cut, 0)] + append, index)
    if not append:
        assert result is None


@fuzz(100)
@given(index=BASES, append=st.binary(min_size=1, max_size=64))
def test_appended_bytes(index, append):
    """Bytes after the end record: refused, or ignored (a zip comment) -- never misread."""
    check_damaged(base(index)[0] + append, index)


# -------------------------------------------------------------------------- crafted meta
JUNK = st.one_of(
    st.sampled_from([None, True, False, 0, 1, -1, 2, 3, 65, 2**31, 2**63, 2**64, 2**128,
                     -2**63, 0.0, -0.0, 0.5, 1.0, 1e-300, 1e300, float("nan"), float("inf"),
                     "", "relu", "float64", "float16", "SGD", "Adam", "os.system",
                     "gdcore.checkpoint", "huber", "PCG64", [], {}, [1, 2], [0.9, 0.999],
                     {"n_in": 1}, [[[[]]]], "x" * 5000]),
    st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8),
    st.lists(st.integers(0, 3), max_size=3),
)


def _paths(value, prefix=()):
    """Every path into a JSON value (the root excluded), containers included."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield prefix + (key,)
            yield from _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield prefix + (i,)
            yield from _paths(item, prefix + (i,))


def _mutate(meta, data):
    paths = list(_paths(meta))
    path = paths[data.draw(st.integers(0, len(paths) - 1), label="path")]
    parent = meta
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    action = data.draw(st.sampled_from(["replace", "replace", "replace", "nudge", "delete",
                                        "add_key", "grow"]), label="action")
    value = parent[key]
    if action == "nudge" and type(value) in (int, float):
        parent[key] = value + data.draw(st.sampled_from([-1, 1, 2, -value, value]))
    elif action == "delete" and isinstance(parent, dict):
        del parent[key]
    elif action == "add_key" and isinstance(value, dict):
        value[data.draw(st.text(max_size=6), label="new key")] = \
            copy.deepcopy(data.draw(JUNK, label="value"))
    elif action == "grow" and isinstance(value, list) and value:
        value.append(json.loads(json.dumps(value[-1])))
    else:
        # a copy: JUNK's lists and dicts are shared between examples and "grow" appends
        parent[key] = copy.deepcopy(data.draw(JUNK, label="value"))
    return path, action


def _consistent_with(result, meta, index):
    """A crafted file that loaded: the model is what its meta and members say."""
    loaded, loaded_opt = result
    _, model, opt = base(index)
    config = loaded.get_config()
    assert config["dtype"] == meta["model"]["dtype"] and config["seed"] == meta["model"]["seed"]
    assert len(config["layers"]) == len(meta["model"]["layers"])
    for got, want in zip(config["layers"], meta["model"]["layers"]):
        assert got["type"] == want.get("type", "dense")
        for key in ("n_in", "n_out", "activation", "rate"):
            assert got.get(key) == want.get(key)
    assert np.array_equal(loaded._params, model._params)  # the members were not touched
    assert loaded._rng.bit_generator.state == meta["rng"]
    if meta["loss"] is None:
        assert loaded.loss_ is None
    else:
        assert loaded.loss_.name == gd.losses.get(meta["loss"]["name"]).name
    if meta["optimizer"] is None:
        assert loaded_opt is None
        return
    assert type(loaded_opt).__name__ == meta["optimizer"]["class"]
    for key, value in meta["optimizer"]["hyperparameters"].items():
        got = getattr(loaded_opt, key)
        assert (list(got) if isinstance(got, tuple) else got) == value
    state = meta["optimizer"]["state"]
    if state is None:
        assert loaded_opt.state == {}
    else:
        assert loaded_opt.state["step"] == state["step"]
        for a, b in zip(loaded_opt.state["slots"], opt.state["slots"]):
            assert np.array_equal(a, b)


@fuzz(450)
@given(index=BASES, data=st.data(), n_mutations=st.integers(1, 3))
def test_crafted_meta(index, data, n_mutations):
    """Any value of the JSON metadata replaced, nudged, deleted, extended or grown."""
    raw, meta = members(index)
    for _ in range(n_mutations):
        _mutate(meta, data)
    blob = json.dumps(meta, allow_nan=True).encode()
    crafted = dict(raw, **{"meta.npy": npy(np.frombuffer(blob, dtype=np.uint8))})
    result = attempt(zip_bytes(crafted.items()), track_memory=True)
    if result is not None:
        _consistent_with(result, meta, index)


# ---------------------------------------------------------------------- crafted members
DESCRS = ["<f4", "<f8", ">f4", ">f8", "|u1", "<u1", "<i4", "<f2", "|O", "O", "<U3", "|S4",
          "|b1", "<c8", "[('a', '<f4')]", "'<f4'", "None", "123", "b'<f4'", "('<f4', (2,))"]
SHAPES = ["(N,)", "(N+1,)", "(N-1,)", "(0,)", "()", "(N, 1)", "(1, N)", "(-N,)", "(N.0,)",
          "[N]", "N", "(10**12,)", "(1000000000000,)", "(4611686018427387904,)",
          "(18446744073709551616,)", "(-1,)", "('N',)", "(True,)", "None", "(N, N, N)"]


@fuzz(350)
@given(index=BASES, data=st.data())
def test_crafted_npy_members(index, data):
    """A member rewritten with a crafted .npy header (dtype, shape, order, version, length,
    extra keys) over the original data, shortened, lengthened or replaced."""
    raw, _ = members(index)
    name = data.draw(st.sampled_from(sorted(raw)), label="member")
    original = raw[name]
    version, header_len = original[6], struct.unpack_from("<H", original, 8)[0]
    payload = original[10 + header_len:]
    itemsize = {"meta.npy": 1}.get(name, 4 if index != 1 else 8)
    n = len(payload) // itemsize
    descr = data.draw(st.sampled_from(DESCRS + [None] * 6), label="descr")
    shape = data.draw(st.sampled_from(SHAPES + [None] * 6), label="shape")
    order = data.draw(st.sampled_from(["False", "True", "0", "1", "None", "'C'", None, None]),
                      label="fortran_order")
    descr = descr or ({"meta.npy": "|u1"}.get(name, "<f4" if index != 1 else "<f8"))
    descr = descr if descr.startswith(("[", "'", "(", "b")) or descr in ("None", "123") \
        else f"'{descr}'"
    shape = (shape or "(N,)").replace("N", str(n))
    fields = {"descr": descr, "fortran_order": order or "False", "shape": shape}
    extra = data.draw(st.sampled_from([None] * 6 + ["'x': 1", "'descr': '<f4'", "1: 2"]))
    text = "{" + ", ".join(f"'{k}': {v}" for k, v in fields.items()) \
        + (", " + extra if extra else "") + "}"
    text = data.draw(st.sampled_from([text] * 8 + [text[:-1], text + " junk", "[" * 500,
                                                    "{" + "(" * 500 + "}", ""]), label="text")
    header = text.encode("latin1") + b"\n"
    version = data.draw(st.sampled_from([1] * 4 + [2, 3, 0, 4, 255]), label="version")
    length = len(header) + data.draw(st.sampled_from([0] * 6 + [-1, 1, 2**15, 2**31]),
                                     label="length delta")
    prefix = struct.pack("<I", length % 2**32) if version in (2, 3) \
        else struct.pack("<H", length % 2**16)
    body = data.draw(st.sampled_from(["same"] * 5 + ["short", "long", "empty", "pickle",
                                                     "zeros"]), label="body")
    if body == "short":
        payload = payload[:-data.draw(st.integers(1, max(1, len(payload))))]
    elif body == "long":
        payload = payload + b"\x00" * data.draw(st.integers(1, 64))
    elif body == "empty":
        payload = b""
    elif body == "pickle":
        payload = pickle.dumps(np.array([Payload()], dtype=object), protocol=3)
    elif body == "zeros":
        payload = b"\x00" * len(payload)
    member = b"\x93NUMPY" + bytes([version, 0]) + prefix + header + payload
    crafted = dict(raw, **{name: member})
    result = attempt(zip_bytes(crafted.items()), track_memory=True)
    if result is not None:  # only a header numpy would write, over zeros at most
        if body == "zeros" and name != "meta.npy":
            loaded, loaded_opt = result
            arrays = [loaded._params] + (loaded_opt.state["slots"] if loaded_opt else [])
            assert any(not array.any() for array in arrays)
        else:
            assert_identical(result, index)


# ------------------------------------------------------------------- crafted zip structure
CD_FIELDS = [(4, "<H"), (6, "<H"), (8, "<H"), (10, "<H"), (12, "<H"), (14, "<H"), (16, "<I"),
             (20, "<I"), (24, "<I"), (28, "<H"), (30, "<H"), (32, "<H"), (34, "<H"), (36, "<H"),
             (38, "<I"), (42, "<I")]
LOCAL_FIELDS = [(4, "<H"), (6, "<H"), (8, "<H"), (14, "<I"), (18, "<I"), (22, "<I"),
                (26, "<H"), (28, "<H")]
END_FIELDS = [(4, "<H"), (6, "<H"), (8, "<H"), (10, "<H"), (12, "<I"), (16, "<I"),
              (20, "<H")]


def _structure(content):
    """Offsets of the end record, the central directory entries and the local headers."""
    end = len(content) - 22
    assert content[end:end + 4] == b"PK\x05\x06"
    n_entries, _, cd_offset = struct.unpack_from("<HII", content, end + 10)
    central, local, at = [], [], cd_offset
    for _ in range(n_entries):
        central.append(at)
        local.append(struct.unpack_from("<I", content, at + 42)[0])
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", content, at + 28)
        at += 46 + name_len + extra_len + comment_len
    return end, central, local


@fuzz(400)
@given(index=BASES, data=st.data(), n_patches=st.integers(1, 3))
def test_crafted_zip_structure(index, data, n_patches):
    """Fields of the central directory, local headers and end record set to small, huge or
    random values: declared sizes far beyond the file, other compression methods, encryption
    flags, wrong offsets and name lengths. Checked under tracemalloc."""
    content = bytearray(base(index)[0])
    end, central, local = _structure(content)
    for _ in range(n_patches):
        region = data.draw(st.sampled_from(["central"] * 3 + ["local", "end"]), label="region")
        if region == "central":
            start = central[data.draw(st.integers(0, len(central) - 1))]
            offset, fmt = data.draw(st.sampled_from(CD_FIELDS), label="field")
        elif region == "local":
            start = local[data.draw(st.integers(0, len(local) - 1))]
            offset, fmt = data.draw(st.sampled_from(LOCAL_FIELDS), label="field")
        else:
            start, (offset, fmt) = end, data.draw(st.sampled_from(END_FIELDS), label="field")
        limit = 2**16 - 1 if fmt == "<H" else 2**32 - 1
        old = struct.unpack_from(fmt, content, start + offset)[0]
        value = data.draw(st.one_of(
            st.sampled_from([0, 1, 8, 9, 12, 14, 93, 99, 0x0801, 2**15, limit, limit - 1,
                             2**31 - 1, 2**31, len(content), len(content) * 1000]),
            st.integers(0, limit), st.integers(-64, 64).map(lambda d: old + d)), label="value")
        struct.pack_into(fmt, content, start + offset, min(max(value, 0), limit))
    check_damaged(bytes(content), index, track_memory=True)


@fuzz(150)
@given(index=BASES, data=st.data())
def test_crafted_archives(index, data):
    """Archives assembled from the right members, some of them compressed with deflate, bzip2
    or lzma, duplicated, renamed, dropped, or joined by strangers."""
    raw, _ = members(index)
    items = list(raw.items())
    for _ in range(data.draw(st.integers(1, 3))):
        action = data.draw(st.sampled_from(["drop", "duplicate", "rename", "stranger",
                                            "reorder"]), label="action")
        i = data.draw(st.integers(0, len(items) - 1))
        if action == "drop" and len(items) > 1:
            items.pop(i)
        elif action == "duplicate":
            items.append(items[i])
        elif action == "rename":
            items[i] = (data.draw(st.sampled_from(["meta", "params.npy ", "PARAMS.npy",
                                                   "../params.npy", "optimizer_slot_9.npy",
                                                   "/meta.npy", "params.npz"])), items[i][1])
        elif action == "stranger":
            name = data.draw(st.text(st.characters(blacklist_categories=("Cs",),
                                                   blacklist_characters="\x00"),
                                     min_size=1, max_size=12), label="name")  # zipfile cuts at NUL
            items.append((name, data.draw(st.binary(), label="data")))
        else:
            items.reverse()
    compression = data.draw(st.sampled_from([zipfile.ZIP_STORED] * 3 + [
        zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]), label="compression")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names
        content = zip_bytes(items, compression)
    result = attempt(content, track_memory=True)
    if result is not None:
        assert compression == zipfile.ZIP_STORED
        assert sorted(name for name, _ in items) == sorted(raw)
        assert_identical(result, index)


# --------------------------------------------------------------------------------- pickles
class Payload:
    """Unpickling this creates MARKER: proof that code from the file ran."""

    def __reduce__(self):
        return (open, (str(MARKER), "w"))


def test_payload_is_live():
    """The payload really runs when unpickled (so the fuzz tests' marker check can fail)."""
    pickle.loads(pickle.dumps(Payload())).close()
    assert MARKER.exists()
    MARKER.unlink()


@fuzz(150)
@given(index=BASES, data=st.data())
def test_pickled_payloads(index, data):
    """Object-dtype arrays holding the payload (among other objects) in place of any member,
    as an extra member, as the whole file, or appended after the archive: refused (an appended
    pickle is ignored like any trailing bytes), and the marker never appears."""
    raw, _ = members(index)
    filler = data.draw(st.lists(st.one_of(st.integers(), st.floats(), st.text(max_size=4)),
                                max_size=4), label="filler")
    evil = npy(np.array([Payload()] + filler, dtype=object))
    where = data.draw(st.sampled_from(sorted(raw) + ["extra", "file", "appended", "numpy"]))
    if where == "file":
        content = pickle.dumps(Payload(), protocol=data.draw(st.integers(0, 5)))
    elif where == "appended":
        content = base(index)[0] + pickle.dumps(Payload())
    elif where == "numpy":  # a plain np.save'd object array instead of an archive
        content = evil
    elif where == "extra":
        content = zip_bytes(list(raw.items()) + [("evil.npy", evil)])
    else:
        content = zip_bytes(list(dict(raw, **{where: evil}).items()))
    result = attempt(content)
    if where == "appended" and result is not None:
        assert_identical(result, index)
    else:
        assert result is None


# ---------------------------------------------------------------------- in a subprocess
def _nasty_files():
    """Files declaring huge sizes in every place a size can be declared."""
    files = []
    raw, meta = members(0)
    big = json.loads(json.dumps(meta))
    big["model"]["layers"] = [{"n_in": 2**20, "n_out": 2**20, "activation": "relu",
                               "init": "auto"}]
    big["n_params"] = (2**20 + 1) * 2**20
    big["optimizer"] = None
    meta_big = npy(np.frombuffer(json.dumps(big).encode(), dtype=np.uint8))
    header = (f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({big['n_params']},), }}"
              .encode() + b"\n")
    params_big = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\0" * 64
    files.append(zip_bytes([("meta.npy", meta_big), ("params.npy", params_big)]))
    # the same with the params member deflated
    buffer = stdio.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("meta.npy", meta_big)
        archive.writestr("params.npy", params_big, compress_type=zipfile.ZIP_DEFLATED)
    files.append(buffer.getvalue())
    # a central directory declaring 4 GiB members
    content = bytearray(base(0)[0])
    _, central, _ = _structure(content)
    for at in central:
        struct.pack_into("<II", content, at + 20, 2**32 - 1, 2**32 - 1)
    files.append(bytes(content))
    # an end record declaring a 4 GiB central directory with 65535 entries
    content = bytearray(base(0)[0])
    struct.pack_into("<HHI", content, len(content) - 14, 65535, 65535, 2**32 - 1)
    files.append(bytes(content))
    # a meta member of 1 MiB + 1 of spaces (over the limit), and a 2 GiB .npy header
    files.append(zip_bytes([("meta.npy", npy(np.full(2**20 + 1, 32, dtype=np.uint8))),
                            ("params.npy", raw["params.npy"])]))
    files.append(zip_bytes([("meta.npy", b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**31)
                             + b"{" * 100)] + [(k, v) for k, v in raw.items()
                                               if k != "meta.npy"]))
    return files


def test_nasty_files_in_a_subprocess_under_a_memory_limit():
    """Huge declared sizes under a 2 GiB address-space limit in a fresh interpreter: each file
    is refused with ValueError; no crash, no MemoryError, no allocation of the declared size."""
    paths = []
    for i, content in enumerate(_nasty_files()):
        path = WORK / f"nasty{i}.npz"
        path.write_bytes(content)
        paths.append(str(path))
    code = textwrap.dedent(f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
        import gdcore.io
        for path in {paths!r}:
            try:
                gdcore.io.load(path, with_optimizer=True)
                print("LOADED", path)
            except ValueError as exc:
                print("REFUSED", path)
        print("DONE")
    """)
    env = dict(os.environ, OMP_NUM_THREADS="2", OPENBLAS_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, env=env, cwd=str(WORK))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("REFUSED") == len(paths) and "DONE" in result.stdout, \
        result.stdout + result.stderr[-3000:]


def test_case_budget():
    """The generated cases of one run add up to at least 2,000 (each property asserts that it
    ran its budget)."""
    assert sum(CASES.budgets.values()) >= MIN_CASES_PER_RUN
