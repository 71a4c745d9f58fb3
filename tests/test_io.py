"""Saving and loading (issue #4): gdcore.io.save / gdcore.io.load, pickling, exact resume.

Round trips in both dtypes and every activation, optimizer state of every optimizer, training
resumed from a checkpoint giving the same bits (in this process and in a fresh one), the file
being a plain .npz with human-readable JSON, atomic saves, and every kind of malformed file
refused with a ValueError naming the file. tests/test_io_fuzz.py fuzzes the loader.
"""
import gc
import io as stdio
import json
import os
import pickle
import stat
import struct
import subprocess
import sys
import textwrap
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

import gdcore as gd
from gdcore import io as gio
from gdcore.layers import ACTIVATIONS


@pytest.fixture(scope="module")
def digits():
    X, y = gd.datasets.load_digits()
    return (X[:240] / 16.0), y[:240]


def trained(dtype="float32", optimizer=None, epochs=2, loss="cross_entropy", seed=3):
    X, y = gd.datasets.load_digits()
    X, y = X[:160] / 16.0, y[:160]
    model = gd.MLP([64, 12, 10], activation="tanh", dtype=dtype, seed=seed)
    optimizer = optimizer if optimizer is not None else gd.optim.SGD(lr=0.05, momentum=0.9)
    model.fit(X, y, loss=loss, optimizer=optimizer, epochs=epochs, batch_size=32, seed=1,
              verbose=0)
    return model, optimizer


def optimizer_state(optimizer):
    return optimizer.state["step"], [slot.copy() for slot in optimizer.state["slots"]]


def assert_same_optimizer(a, b):
    assert type(a) is type(b)
    assert a.lr == b.lr and a._fields() == b._fields() and a.spec() == b.spec()


# ------------------------------------------------------------------------------ round trips
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_round_trip_every_activation_and_dtype(tmp_path, dtype, activation):
    rng = np.random.default_rng(1)
    model = gd.Sequential([gd.Dense(5, 7, activation=activation),
                           gd.Dense(7, 4, activation=activation), gd.Dense(4, 3)],
                          dtype=dtype, seed=11)
    model.set_weights([w + rng.normal(scale=0.1, size=w.shape) for w in model.get_weights()])
    path = tmp_path / "model.npz"
    gio.save(model, path)
    loaded = gio.load(path)
    assert type(loaded) is gd.Sequential and loaded is not model
    assert loaded.dtype == np.dtype(dtype)
    assert loaded.get_config()["layers"] == model.get_config()["layers"]
    assert [layer.activation for layer in loaded.layers] == [activation, activation, "identity"]
    for old, new in zip(model.get_weights(), loaded.get_weights()):
        assert new.dtype == old.dtype and np.array_equal(new, old)
    X = rng.normal(size=(9, 5))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    # the loaded layers are views into the loaded model's own buffer
    loaded.layers[0].W[0, 0] += 1.0
    assert not np.array_equal(loaded.predict(X), model.predict(X))


def dropout_model(dtype="float32", seed=4):
    return gd.Sequential([gd.Dense(64, 24, activation="relu", init="he_normal", l2=1e-3),
                          gd.Dropout(0.3),
                          gd.Dense(24, 16, activation="gelu", init="glorot_normal", l1=1e-4),
                          gd.Dropout(0.1), gd.Dense(16, 10)], dtype=dtype, seed=seed)


def test_round_trip_dropout_and_per_layer_penalties(tmp_path, digits):
    X, y = digits
    model = dropout_model("float64")
    model.fit(X, y, optimizer=gd.optim.SGD(lr=0.05), epochs=1, verbose=0)
    gio.save(model, tmp_path / "m.npz")
    loaded = gio.load(tmp_path / "m.npz")
    assert loaded.get_config()["layers"] == model.get_config()["layers"]
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    assert loaded.layers[1].rate == 0.3 and loaded.layers[0].l2 == 1e-3
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    # the penalties are part of the restored model: the same loss and gradient
    loss, grads = loaded.loss_and_grad(X, y, loss="cross_entropy")
    loss0, grads0 = model.loss_and_grad(X, y, loss="cross_entropy")
    assert loss == loss0
    for (dW, db), (dW0, db0) in zip(grads, grads0):
        assert np.array_equal(dW, dW0) and np.array_equal(db, db0)


def test_resume_with_dropout_gives_the_same_bits(tmp_path, digits):
    """Dropout masks depend on (seed, epoch): a resumed fit draws the same ones."""
    X, y = digits
    straight = dropout_model()
    _fit(straight, gd.optim.AdamW(lr=0.003), X, y, epochs=3, seed=5)
    first = dropout_model()
    opt = gd.optim.AdamW(lr=0.003)
    _fit(first, opt, X, y, epochs=1, seed=5)
    gio.save(first, tmp_path / "ckpt.npz", optimizer=opt)
    resumed, opt = gio.load(tmp_path / "ckpt.npz", with_optimizer=True)
    _fit(resumed, opt, X, y, epochs=3, initial_epoch=1, seed=5)
    assert np.array_equal(resumed._params, straight._params)


def test_round_trip_keeps_loss_rng_and_seed(tmp_path, digits):
    X, y = digits
    Xr = X[:, :6]
    yr = np.stack([Xr.sum(axis=1), Xr[:, 0] - Xr[:, 1]], axis=1)
    model = gd.MLP([6, 8, 2], activation="gelu", dtype="float64", seed=5)
    model.fit(Xr, yr, loss=gd.losses.Huber(delta=0.25), optimizer=gd.optim.SGD(lr=0.05),
              epochs=2, verbose=0)
    gio.save(model, tmp_path / "m.npz")
    loaded = gio.load(tmp_path / "m.npz")
    assert loaded.loss_ == gd.losses.Huber(delta=0.25)
    assert loaded.evaluate(Xr, yr) == model.evaluate(Xr, yr)
    assert loaded.seed == model.seed == 5
    assert loaded._rng.bit_generator.state == model._rng.bit_generator.state
    # the next seed fit(seed=None) draws is the same
    assert loaded._rng.integers(2**63) == model._rng.integers(2**63)

    bce = gd.MLP([64, 1], dtype="float32", seed=2)
    bce.fit(X, (y == 3).astype(float), loss="binary_cross_entropy", epochs=1, verbose=0)
    gio.save(bce, tmp_path / "bce.npz")
    clone = gio.load(tmp_path / "bce.npz")
    assert clone.loss_.name == "binary_cross_entropy"
    np.testing.assert_array_equal(clone.predict_proba(X), bce.predict_proba(X))

    fresh = gd.MLP([3, 2], seed=0)  # never fit: no loss saved
    gio.save(fresh, tmp_path / "fresh.npz")
    assert gio.load(tmp_path / "fresh.npz").loss_ is None


def test_file_is_a_plain_npz_with_readable_json(tmp_path):
    model, opt = trained("float64", gd.optim.Adam(lr=0.01))
    path = tmp_path / "model.npz"
    gio.save(model, path, optimizer=opt)
    with np.load(path, allow_pickle=False) as archive:
        assert archive.files == ["meta", "params", "optimizer_slot_0", "optimizer_slot_1"]
        params = archive["params"]
        assert params.dtype.str == "<f8" and params.shape == (model.n_params,)
        assert np.array_equal(params, model._params)
        assert archive["optimizer_slot_1"].dtype.str == "<f8"
        meta = json.loads(bytes(archive["meta"]).decode("utf-8"))
    assert meta["format"] == "gdcore.checkpoint" and meta["format_version"] == 1
    assert isinstance(meta["format_version"], int)
    assert meta["gdcore_version"] == gd.__version__
    assert meta["model"] == model.get_config() and meta["n_params"] == model.n_params
    assert meta["optimizer"]["class"] == "Adam"
    assert meta["optimizer"]["hyperparameters"]["betas"] == [0.9, 0.999]
    assert meta["optimizer"]["state"] == {"step": opt.state["step"], "n_slots": 2}
    with zipfile.ZipFile(path) as archive:
        assert all(info.compress_type == zipfile.ZIP_STORED for info in archive.infolist())
        raw_meta = archive.read("meta.npy")
    # human-readable straight out of the zip: indented JSON after a one-line .npy header
    assert b'"format": "gdcore.checkpoint"' in raw_meta and b'\n  "dtype": "float64"' in raw_meta
    # the same model saved twice gives the same bytes (fixed zip timestamps)
    gio.save(model, tmp_path / "again.npz", optimizer=opt)
    assert (tmp_path / "again.npz").read_bytes() == path.read_bytes()
    # float32 parameters are stored as '<f4'
    small, _ = trained("float32")
    gio.save(small, tmp_path / "f4.npz")
    with np.load(tmp_path / "f4.npz", allow_pickle=False) as archive:
        assert archive["params"].dtype.str == "<f4"


def test_path_is_used_as_given_and_overwritten(tmp_path):
    model, _ = trained()
    path = tmp_path / "checkpoint"  # no suffix added
    gio.save(model, str(path))
    assert os.listdir(tmp_path) == ["checkpoint"]
    other = gd.MLP([64, 12, 10], activation="tanh", seed=99)
    gio.save(other, path)
    assert np.array_equal(gio.load(str(path))._params, other._params)
    assert os.listdir(tmp_path) == ["checkpoint"]
    with pytest.raises(FileNotFoundError):
        gio.load(tmp_path / "missing.npz")
    with pytest.raises(TypeError, match="Sequential"):
        gio.save(object(), tmp_path / "x.npz")
    with pytest.raises(TypeError, match="with_optimizer"):
        gio.load(path, with_optimizer="yes")


# ----------------------------------------------------------------------- optimizer state
OPTIMIZERS = {
    "sgd": lambda: gd.optim.SGD(lr=0.05),
    "sgd_momentum": lambda: gd.optim.SGD(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-3),
    "sgd_nesterov": lambda: gd.optim.SGD(lr=0.05, momentum=0.8, nesterov=True),
    "adam": lambda: gd.optim.Adam(lr=0.01, betas=(0.8, 0.95), eps=1e-7, weight_decay=1e-3),
    "adamw": lambda: gd.optim.AdamW(lr=0.01, weight_decay=0.05),
    "rmsprop": lambda: gd.optim.RMSprop(lr=0.01, alpha=0.9, momentum=0.5, centered=True),
    "rmsprop_plain": lambda: gd.optim.RMSprop(lr=0.01),
    "adagrad": lambda: gd.optim.Adagrad(lr=0.05, lr_decay=0.01, initial_accumulator_value=0.1),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_state_round_trip_continues_identically(tmp_path, digits, name, dtype):
    X, y = digits
    model = gd.MLP([64, 16, 10], activation="relu", dtype=dtype, seed=4)
    opt = OPTIMIZERS[name]()
    batches = [(X[i:i + 24], y[i:i + 24]) for i in range(0, 240, 24)]
    for xb, yb in batches[:5]:
        model.train_step(xb, yb, optimizer=opt)
    path = tmp_path / "ckpt.npz"
    gio.save(model, path, optimizer=opt)
    loaded, loaded_opt = gio.load(path, with_optimizer=True)
    assert_same_optimizer(loaded_opt, opt)
    step, slots = optimizer_state(opt)
    assert loaded_opt.state["owner"] is loaded and loaded_opt.state["step"] == step == 5
    assert len(loaded_opt.state["slots"]) == len(slots)
    for a, b in zip(loaded_opt.state["slots"], slots):
        assert a.dtype == model.dtype and a.flags.writeable and np.array_equal(a, b)

    for xb, yb in batches[5:]:  # continue both: with and without the save/load in between
        model.train_step(xb, yb, optimizer=opt)
        loaded.train_step(xb, yb, optimizer=loaded_opt)
    assert np.array_equal(loaded._params, model._params)
    assert loaded_opt.state["step"] == opt.state["step"] == 10
    for a, b in zip(loaded_opt.state["slots"], opt.state["slots"]):
        assert np.array_equal(a, b)

    if slots:  # the state matters: continuing with a fresh optimizer gives other weights
        again = gio.load(path)
        fresh = OPTIMIZERS[name]()
        for xb, yb in batches[5:]:
            again.train_step(xb, yb, optimizer=fresh)
        assert not np.array_equal(again._params, model._params)


def test_unused_optimizer_and_no_optimizer(tmp_path):
    model, _ = trained()
    unused = gd.optim.RMSprop(lr=0.02, centered=True)
    gio.save(model, tmp_path / "a.npz", optimizer=unused)
    loaded, opt = gio.load(tmp_path / "a.npz", with_optimizer=True)
    assert_same_optimizer(opt, unused) and opt.state == {}
    assert isinstance(opt, gd.optim.RMSprop) and opt.centered is True
    gio.save(model, tmp_path / "b.npz")
    loaded, opt = gio.load(tmp_path / "b.npz", with_optimizer=True)
    assert opt is None and np.array_equal(loaded._params, model._params)
    assert isinstance(gio.load(tmp_path / "a.npz"), gd.Sequential)  # model only by default


def test_save_refuses_foreign_optimizers(tmp_path):
    model, opt = trained()

    class MySGD(gd.optim.SGD):
        pass

    with pytest.raises(TypeError, match="optimizer must be one of"):
        gio.save(model, tmp_path / "x.npz", optimizer=MySGD(lr=0.1))
    other, _ = trained(seed=8)
    with pytest.raises(ValueError, match="belongs to another model"):
        gio.save(other, tmp_path / "x.npz", optimizer=opt)
    assert not os.listdir(tmp_path)


# ------------------------------------------------- save writes only what load accepts
def test_adagrad_accumulator_overflowed_to_inf_saves_loads_and_resumes(tmp_path):
    """float32 Adagrad on huge inputs: g² overflows the accumulator to +inf while the weights
    stay finite (those updates become 0). Training goes on from that state, so must a reload."""
    X = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32) * 1e18
    y = np.array([0, 1] * 32)
    model = gd.Sequential([gd.Dense(3, 2)], dtype="float32")
    opt = gd.optim.Adagrad(lr=0.01)
    model.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=50, batch_size=1, verbose=0)
    assert np.isposinf(opt.state["slots"][0]).any() and np.isfinite(model._params).all()
    path = tmp_path / "a.npz"
    model.save(path, optimizer=opt)
    loaded, loaded_opt = gio.load(path, with_optimizer=True)
    assert np.array_equal(loaded_opt.state["slots"][0], opt.state["slots"][0])
    for m, o in ((model, opt), (loaded, loaded_opt)):
        m.fit(X, y, loss="cross_entropy", optimizer=o, epochs=3, batch_size=1, shuffle=False,
              verbose=0)
    assert np.isfinite(loaded._params).all()
    assert np.array_equal(loaded._params, model._params)


# (optimizer, state buffer, whether it accumulates squares: +inf allowed, negatives not)
STATE_BUFFERS = [("sgd_momentum", 0, False), ("adam", 0, False), ("adam", 1, True),
                 ("adamw", 1, True), ("rmsprop", 0, True), ("rmsprop", 1, False),
                 ("rmsprop", 2, False), ("adagrad", 0, True)]


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan, "negated"])
@pytest.mark.parametrize("name, slot, squares", STATE_BUFFERS)
def test_save_and_load_agree_on_optimizer_state(tmp_path, digits, name, slot, squares, value):
    """One rule for each state buffer, applied by save and by load alike: save refuses exactly
    the states that load refuses (with the same message), and what it writes loads and trains."""
    X, y = digits
    model, opt = trained(optimizer=OPTIMIZERS[name]())
    buffer = opt.state["slots"][slot]
    if value == "negated":  # of the last bias, which every batch moves: a value above 0
        value = buffer[-1] = -abs(buffer[-1])  # (RMSprop's centered variance is unchanged)
        assert value < 0
    else:
        buffer[-1] = value
    path = tmp_path / "ckpt.npz"
    gio.save(model, path)
    before = path.read_bytes()
    meta, arrays = gio._snapshot(model, opt)  # the file save would write, written without it
    crafted = zip_bytes([("meta.npy", meta_bytes(meta))]
                        + [(member + ".npy", npy(array)) for member, array in arrays])
    if value == np.inf if squares else np.isfinite(value):
        gio.save(model, path, optimizer=opt)
        loaded, loaded_opt = gio.load(path, with_optimizer=True)
        np.testing.assert_array_equal(loaded_opt.state["slots"][slot], opt.state["slots"][slot])
        model.train_step(X[:32], y[:32], optimizer=opt)
        loaded.train_step(X[:32], y[:32], optimizer=loaded_opt)
        assert np.isfinite(loaded._params).all()
        assert np.array_equal(loaded._params, model._params)
        return
    what = "NaN" if squares and np.isnan(value) else "negative values" if squares \
        else "NaN or infinity"
    load_message = str(load_error(tmp_path, crafted, f"state buffer {slot} .* contains {what}"))
    with pytest.raises(ValueError) as info:
        gio.save(model, path, optimizer=opt)
    assert str(info.value) == f"cannot save {path}: " + load_message[len(f"{tmp_path}/bad.npz: "):]
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["bad.npz", "ckpt.npz"]


def test_save_and_load_agree_on_the_step_count(tmp_path):
    model, opt = trained(optimizer=gd.optim.Adam())
    path = tmp_path / "m.npz"
    opt.state["step"] = 2**53  # the bound: the C core's bias corrections are exact up to it
    gio.save(model, path, optimizer=opt)
    assert gio.load(path, with_optimizer=True)[1].state["step"] == 2**53
    before = path.read_bytes()
    opt.state["step"] = 2**53 + 1
    with pytest.raises(ValueError, match=r"cannot save .*\['step'\] must be in \[0, 2\*\*53\]"):
        gio.save(model, path, optimizer=opt)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.npz"]


@pytest.mark.parametrize("before, after", [(0.9, 0.0), (0.0, 0.9)])
def test_sgd_momentum_changed_after_training_saves_what_the_next_step_uses(tmp_path, digits,
                                                                          before, after):
    """Momentum turned on for the first time starts the velocity afresh (saved as no state);
    momentum set to 0 keeps the velocity, unused until momentum returns, as torch's buffer
    (saved). Either way the file loads and training continues exactly as without the save,
    momentum back on included."""
    X, y = digits
    model = gd.MLP([64, 12, 10], seed=3)
    opt = gd.optim.SGD(lr=0.05, momentum=before)
    for i in range(0, 72, 24):
        model.train_step(X[i:i + 24], y[i:i + 24], optimizer=opt)
    opt.momentum = after
    path = tmp_path / "m.npz"
    model.save(path, optimizer=opt)
    loaded, loaded_opt = gio.load(path, with_optimizer=True)
    assert loaded_opt.momentum == after
    assert (len(loaded_opt.state["slots"]) == 1) if before else loaded_opt.state == {}
    for i in range(72, 240, 24):
        if i == 168:
            opt.momentum = loaded_opt.momentum = 0.9
        model.train_step(X[i:i + 24], y[i:i + 24], optimizer=opt)
        loaded.train_step(X[i:i + 24], y[i:i + 24], optimizer=loaded_opt)
    assert np.array_equal(loaded._params, model._params)
    assert loaded_opt.state["step"] == opt.state["step"] == (10 if before else 7)


def test_save_refuses_non_finite_weights_set_through_a_layer(tmp_path):
    model = gd.Sequential([gd.Dense(4, 3, activation="relu"), gd.Dropout(0.5), gd.Dense(3, 2)],
                          seed=1)
    path = tmp_path / "m.npz"
    model.save(path)
    before = path.read_bytes()
    for layer, array, index, value, where in [(0, "W", (0, 0), np.nan, "layers[0].W[0, 0]"),
                                              (2, "W", (2, 1), -np.inf, "layers[2].W[2, 1]"),
                                              (2, "b", (1,), np.inf, "layers[2].b[1]")]:
        getattr(model.layers[layer], array)[index] = value
        with pytest.raises(ValueError, match="NaN or infinity") as info:
            model.save(path)
        assert str(path) in str(info.value) and where in str(info.value)
        assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.npz"]
        getattr(model.layers[layer], array)[index] = 0.0
    model.save(path)
    assert np.array_equal(gio.load(path)._params, model._params)


def test_save_refuses_hyperparameters_that_load_refuses(tmp_path):
    """Values each valid alone but not together, or set without the checks (as unpickling
    sets them), are refused by save as load would refuse them, naming the hyperparameter."""
    model, _ = trained()
    opt = gd.optim.SGD(lr=0.05, momentum=0.9, nesterov=True)
    path = tmp_path / "m.npz"
    model.save(path, optimizer=opt)
    before = path.read_bytes()
    opt.momentum = 0.0
    with pytest.raises(ValueError, match="nesterov momentum requires momentum > 0"):
        model.save(path, optimizer=opt)
    opt.momentum = 0.9
    opt.__dict__["lr"] = float("nan")
    with pytest.raises(ValueError, match="lr must be a finite number"):
        model.save(path, optimizer=opt)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.npz"]


# ----------------------------------------------------------------------- exact resume
RESUME_OPTIMIZERS = {"sgd_momentum": lambda: gd.optim.SGD(lr=0.05, momentum=0.9, nesterov=True),
                     "adam": lambda: gd.optim.Adam(lr=0.005)}


def _fit(model, opt, X, y, **kwargs):
    model.fit(X, y, optimizer=opt, batch_size=16, verbose=0, n_threads=1, **kwargs)


@pytest.mark.parametrize("name", sorted(RESUME_OPTIMIZERS))
def test_resume_with_initial_epoch_gives_the_same_bits(tmp_path, digits, name):
    """fit 4 epochs == fit 2, save, load into new objects, fit(epochs=4, initial_epoch=2)."""
    X, y = digits
    straight = gd.MLP([64, 16, 10], seed=2)
    _fit(straight, RESUME_OPTIMIZERS[name](), X, y, epochs=4, seed=7)

    first = gd.MLP([64, 16, 10], seed=2)
    opt = RESUME_OPTIMIZERS[name]()
    _fit(first, opt, X, y, epochs=2, seed=7)
    gio.save(first, tmp_path / "ckpt.npz", optimizer=opt)
    del first, opt
    resumed, opt = gio.load(tmp_path / "ckpt.npz", with_optimizer=True)
    _fit(resumed, opt, X, y, epochs=4, initial_epoch=2, seed=7)
    assert np.array_equal(resumed._params, straight._params)

    # the shuffling of epochs 2, 3 matters: without initial_epoch the bits differ
    again, opt = gio.load(tmp_path / "ckpt.npz", with_optimizer=True)
    _fit(again, opt, X, y, epochs=2, seed=7)
    assert not np.array_equal(again._params, straight._params)


@pytest.mark.parametrize("name", sorted(RESUME_OPTIMIZERS))
def test_resume_without_shuffling_gives_the_same_bits(tmp_path, digits, name):
    """fit 4 epochs == fit 2 + save/load + fit 2, with shuffle=False (needs no initial_epoch)."""
    X, y = digits
    straight = gd.MLP([64, 16, 10], dtype="float64", seed=2)
    _fit(straight, RESUME_OPTIMIZERS[name](), X, y, epochs=4, shuffle=False)

    first = gd.MLP([64, 16, 10], dtype="float64", seed=2)
    opt = RESUME_OPTIMIZERS[name]()
    _fit(first, opt, X, y, epochs=2, shuffle=False)
    gio.save(first, tmp_path / "ckpt.npz", optimizer=opt)
    resumed, opt = gio.load(tmp_path / "ckpt.npz", with_optimizer=True)
    _fit(resumed, opt, X, y, epochs=2, shuffle=False)
    assert np.array_equal(resumed._params, straight._params)

    fresh = gio.load(tmp_path / "ckpt.npz")  # without the optimizer state: other bits
    _fit(fresh, RESUME_OPTIMIZERS[name](), X, y, epochs=2, shuffle=False)
    assert not np.array_equal(fresh._params, straight._params)


def test_resume_with_seeds_drawn_from_the_model(tmp_path, digits):
    """fit(seed=None) draws its seed from the model's generator, which the file keeps: the same
    sequence of fit calls gives the same bits with or without a save/load between them."""
    X, y = digits
    straight = gd.MLP([64, 16, 10], seed=6)
    opt = gd.optim.Adam(lr=0.005)
    _fit(straight, opt, X, y, epochs=2)
    _fit(straight, opt, X, y, epochs=2)

    first = gd.MLP([64, 16, 10], seed=6)
    opt = gd.optim.Adam(lr=0.005)
    _fit(first, opt, X, y, epochs=2)
    gio.save(first, tmp_path / "ckpt.npz", optimizer=opt)
    resumed, opt = gio.load(tmp_path / "ckpt.npz", with_optimizer=True)
    _fit(resumed, opt, X, y, epochs=2)
    assert np.array_equal(resumed._params, straight._params)

    # a model rebuilt from its config and weights alone has a fresh generator: other bits
    rebuilt = gd.Sequential.from_config(first.get_config())
    rebuilt.set_weights(first.get_weights())
    opt2 = gio.load(tmp_path / "ckpt.npz", with_optimizer=True)[1]
    opt2.state["owner"] = rebuilt
    _fit(rebuilt, opt2, X, y, epochs=2)
    assert not np.array_equal(rebuilt._params, straight._params)


def test_resume_in_a_new_process(tmp_path, digits):
    X, y = digits
    np.savez(tmp_path / "data.npz", X=X, y=y)
    straight = gd.MLP([64, 16, 10], seed=2)
    _fit(straight, gd.optim.Adam(lr=0.005), X, y, epochs=4, seed=7)
    first = gd.MLP([64, 16, 10], seed=2)
    opt = gd.optim.Adam(lr=0.005)
    _fit(first, opt, X, y, epochs=2, seed=7)
    gio.save(first, tmp_path / "ckpt.npz", optimizer=opt)
    code = textwrap.dedent("""
        import sys
        import numpy as np
        import gdcore.io
        data = np.load("data.npz")
        model, opt = gdcore.io.load("ckpt.npz", with_optimizer=True)
        model.fit(data["X"], data["y"], optimizer=opt, batch_size=16, verbose=0, n_threads=1,
                  epochs=4, initial_epoch=2, seed=7)
        gdcore.io.save(model, "resumed.npz", optimizer=opt)
    """)
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    resumed, opt = gio.load(tmp_path / "resumed.npz", with_optimizer=True)
    assert np.array_equal(resumed._params, straight._params)
    assert opt.state["step"] == 4 * 15


def test_model_save_gd_load_and_model_checkpoint(tmp_path, digits):
    """The public spelling (DESIGN.md): model.save(path, optimizer=...) and gd.load(path), which
    ModelCheckpoint uses; resuming from the checkpoint of epoch 1 gives the same bits."""
    assert gd.load is gio.load
    X, y = digits
    straight = gd.MLP([64, 16, 10], seed=2)
    _fit(straight, gd.optim.Adam(lr=0.005), X, y, epochs=4, seed=7)
    model = gd.MLP([64, 16, 10], seed=2)
    checkpoint = gd.callbacks.ModelCheckpoint(str(tmp_path / "ckpt-{epoch}.npz"))
    _fit(model, gd.optim.Adam(lr=0.005), X, y, epochs=2, seed=7, callbacks=[checkpoint])
    assert sorted(os.listdir(tmp_path)) == ["ckpt-0.npz", "ckpt-1.npz"]
    resumed, opt = gd.load(tmp_path / "ckpt-1.npz", with_optimizer=True)
    assert np.array_equal(resumed._params, model._params)
    _fit(resumed, opt, X, y, epochs=4, initial_epoch=2, seed=7)
    assert np.array_equal(resumed._params, straight._params)
    model.save(tmp_path / "plain.npz")
    assert np.array_equal(gd.load(tmp_path / "plain.npz")._params, model._params)


# ------------------------------------------------------------------------------- pickle
def test_pickle_round_trip_of_model_and_optimizer(tmp_path, digits):
    X, y = digits
    model, opt = trained("float64", gd.optim.Adam(lr=0.01))
    clone = pickle.loads(pickle.dumps(model))
    assert clone.get_config() == model.get_config() and clone.loss_ == model.loss_
    assert np.array_equal(clone._params, model._params)
    assert clone._rng.bit_generator.state == model._rng.bit_generator.state
    np.testing.assert_array_equal(clone.predict(X), model.predict(X))

    opt_clone = pickle.loads(pickle.dumps(opt))
    assert_same_optimizer(opt_clone, opt)
    assert "owner" not in opt_clone.state  # the model is not dragged into the pickle
    assert opt_clone.state["step"] == opt.state["step"] > 0
    for a, b in zip(opt_clone.state["slots"], opt.state["slots"]):
        assert np.array_equal(a, b)
    # bound to the unpickled model, it continues exactly like the original
    opt_clone.state["owner"] = clone
    clone.train_step(X[:32], y[:32], optimizer=opt_clone)
    model.train_step(X[:32], y[:32], optimizer=opt)
    assert np.array_equal(clone._params, model._params)
    # an unpickled optimizer goes with the model it is saved with, if its buffers fit
    unpickled = pickle.loads(pickle.dumps(opt))
    gio.save(model, tmp_path / "m.npz", optimizer=unpickled)
    _, reloaded = gio.load(tmp_path / "m.npz", with_optimizer=True)
    assert reloaded.state["step"] == opt.state["step"]
    small = gd.MLP([64, 3, 10], dtype="float64")
    with pytest.raises(ValueError, match="another model"):
        gio.save(small, tmp_path / "never.npz", optimizer=unpickled)
    assert os.listdir(tmp_path) == ["m.npz"]


# ------------------------------------------------------------------------ atomic saves
class DiskFull(OSError):
    pass


@pytest.mark.parametrize("where", ["write_array", "fsync", "replace", "interrupt"])
def test_failed_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, where):
    old, _ = trained(seed=1)
    path = tmp_path / "model.npz"
    gio.save(old, path)
    before = path.read_bytes()
    new, opt = trained(seed=2)
    calls = []
    if where in ("write_array", "interrupt"):
        real = np.lib.format.write_array

        def failing(fp, array, *args, **kwargs):
            calls.append(array.size)
            if len(calls) == 2:  # the params member, half written
                fp.write(b"\x00" * 100)
                raise DiskFull("No space left on device") if where == "write_array" \
                    else KeyboardInterrupt()
            return real(fp, array, *args, **kwargs)

        monkeypatch.setattr(np.lib.format, "write_array", failing)
    elif where == "fsync":
        def failing(fd):
            calls.append(fd)
            raise DiskFull("fsync failed")

        monkeypatch.setattr(os, "fsync", failing)
    else:
        def failing(src, dst):
            calls.append(src)
            assert os.path.getsize(src) > 1000  # the temporary file was complete
            raise DiskFull("rename failed")

        monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(KeyboardInterrupt if where == "interrupt" else DiskFull):
        gio.save(new, path, optimizer=opt)
    assert calls, "the failure was never injected"
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["model.npz"]
    assert path.read_bytes() == before
    assert np.array_equal(gio.load(path)._params, old._params)
    # a failed save to a new path leaves nothing at all
    def no_fsync(fd):
        raise DiskFull("fsync failed")

    monkeypatch.setattr(os, "fsync", no_fsync)
    with pytest.raises(DiskFull):
        gio.save(new, tmp_path / "other.npz")
    assert os.listdir(tmp_path) == ["model.npz"]


def test_save_into_a_missing_directory_or_onto_a_directory(tmp_path):
    model, _ = trained()
    with pytest.raises(FileNotFoundError):
        gio.save(model, tmp_path / "no" / "such" / "dir.npz")
    (tmp_path / "adir").mkdir()
    with pytest.raises(OSError):
        gio.save(model, tmp_path / "adir")
    assert sorted(os.listdir(tmp_path)) == ["adir"] and not os.listdir(tmp_path / "adir")


@pytest.mark.skipif(os.name != "posix", reason="symlinks and POSIX permission bits")
def test_save_through_a_symlink_keeps_the_link_and_the_permissions(tmp_path):
    model, _ = trained()
    other = gd.MLP([64, 12, 10], activation="tanh", seed=99)
    (tmp_path / "runs").mkdir()
    target = tmp_path / "runs" / "model.npz"
    model.save(target)
    os.chmod(target, 0o600)  # a private checkpoint
    link = tmp_path / "latest.npz"
    os.symlink(os.path.join("runs", "model.npz"), link)
    other.save(link)
    assert os.readlink(link) == os.path.join("runs", "model.npz")  # still the same link
    assert np.array_equal(gio.load(target)._params, other._params)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600  # and still private
    assert sorted(os.listdir(tmp_path)) == ["latest.npz", "runs"]
    assert os.listdir(tmp_path / "runs") == ["model.npz"]
    # a dangling link: its target is created
    os.symlink("made.npz", tmp_path / "dangling.npz")
    model.save(tmp_path / "dangling.npz")
    assert os.path.islink(tmp_path / "dangling.npz") and (tmp_path / "made.npz").is_file()
    # a new file gets the mode open() would give it: 0o666 less the umask
    umask = os.umask(0o027)
    try:
        model.save(tmp_path / "new.npz")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(os.stat(tmp_path / "new.npz").st_mode) == 0o640


@pytest.mark.skipif(not hasattr(os, "pathconf"), reason="needs os.pathconf")
def test_the_longest_file_name_open_takes_can_be_saved(tmp_path):
    model, _ = trained()
    name = "m" * (os.pathconf(tmp_path, "PC_NAME_MAX") - 4) + ".npz"
    with open(tmp_path / name, "wb"):  # open() takes it
        pass
    model.save(tmp_path / name)
    assert os.listdir(tmp_path) == [name]
    assert np.array_equal(gio.load(tmp_path / name)._params, model._params)


@pytest.mark.skipif(not (os.path.exists("/dev/zero") and hasattr(os, "mkfifo")),
                    reason="needs /dev/zero and FIFOs")
def test_load_refuses_devices_and_pipes_without_reading_them(tmp_path):
    """Reading /dev/zero never ends and opening a FIFO waits for a writer: both are refused
    before they are opened (in a child process, so a regression fails instead of hanging)."""
    fifo = str(tmp_path / "pipe.npz")
    os.mkfifo(fifo)
    script = textwrap.dedent(f"""
        import resource
        import gdcore as gd
        # a regression reading /dev/zero fails on memory, not the machine: 1 GiB more address
        # space than the imports took (OpenBLAS and OpenMP reserve much of it, more in some
        # environments than others, so no fixed limit)
        with open("/proc/self/statm") as statm:
            used = int(statm.read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (used + (1 << 30), used + (1 << 30)))
        for path in ("/dev/zero", {fifo!r}):
            try:
                gd.load(path)
            except ValueError as exc:
                print(exc)
    """)
    # run from tests/: from the repository root, -c would import the source tree's gdcore,
    # which has no compiled core (CI runs pytest there)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60, cwd=Path(__file__).parent)
    assert result.stdout.splitlines() == [
        f"{path}: not a gdcore checkpoint (not a regular file: a device, pipe or socket)"
        for path in ("/dev/zero", fifo)], result.stderr
    with pytest.raises(IsADirectoryError):
        gio.load(tmp_path)


# -------------------------------------------------------------------- malformed files
def npy(array):
    buffer = stdio.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(array), version=(1, 0), allow_pickle=True)
    return buffer.getvalue()


def npy_raw(header, data=b"", version=1):
    """A .npy member with a hand-written header dict literal."""
    text = header.encode("latin1") + b"\n"
    size = struct.pack("<H", len(text)) if version == 1 else struct.pack("<I", len(text))
    return b"\x93NUMPY" + bytes([version, 0]) + size + text + data


def zip_bytes(members, compression=zipfile.ZIP_STORED):
    buffer = stdio.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def meta_bytes(meta):
    return npy(np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))


@pytest.fixture(scope="module")
def good():
    """(members dict name -> bytes, meta dict, model, optimizer) of a valid checkpoint."""
    model, opt = trained("float32", gd.optim.Adam(lr=0.01))
    meta, arrays = gio._snapshot(model, opt)
    members = {"meta.npy": meta_bytes(meta)}
    members.update({name + ".npy": npy(array) for name, array in arrays})
    return members, meta, model, opt


def with_meta(good, change):
    members, meta, _, _ = good
    meta = json.loads(json.dumps(meta))
    change(meta)
    return zip_bytes(list({**members, "meta.npy": meta_bytes(meta)}.items()))


def with_member(good, name, data):
    members = dict(good[0])
    if data is None:
        del members[name]
    else:
        members[name] = data
    return zip_bytes(list(members.items()))


def load_error(tmp_path, content, match):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match) as info:
        gio.load(path, with_optimizer=True)
    assert str(path) in str(info.value)  # names the file
    return info.value


def load_error_peak(tmp_path, content, match):
    """load_error under tracemalloc: the peak bytes allocated while the file is refused."""
    tracemalloc.start()
    try:
        load_error(tmp_path, content, match)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_assembled_archive_loads(tmp_path, good):
    members, meta, model, opt = good
    path = tmp_path / "ok.npz"
    path.write_bytes(zip_bytes(list(members.items())))
    loaded, loaded_opt = gio.load(path, with_optimizer=True)
    assert np.array_equal(loaded._params, model._params)
    assert loaded_opt.state["step"] == opt.state["step"]


def _set(path, value):
    def change(meta):
        target = meta
        for key in path[:-1]:
            target = target[key]
        if value is DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value
    return change


DELETE = object()
N_PARAMS = (64 + 1) * 12 + (12 + 1) * 10
META_CASES = {
    "newer_version": (("format_version",), 2, "written by a newer gdcore"),
    "much_newer_version": (("format_version",), 10**30, "written by a newer gdcore"),
    "version_zero": (("format_version",), 0, "format_version"),
    "version_float": (("format_version",), 1.0, "format_version"),
    "version_string": (("format_version",), "1", "format_version"),
    "version_bool": (("format_version",), True, "format_version"),
    "other_format": (("format",), "keras", "not a gdcore checkpoint"),
    "no_format": (("format",), DELETE, "not a gdcore checkpoint"),
    "unknown_key": (("surprise",), 1, "unknown keys"),
    "no_model": (("model",), DELETE, "has no 'model'"),
    "model_list": (("model",), [], "meta\\['model'\\] must be dict"),
    "layers_empty": (("model", "layers"), [], "1 to 128 layers"),
    "only_dropout": (("model", "layers"), [{"type": "dropout", "rate": 0.5}], "no Dense layer"),
    "layers_129": (("model", "layers"), [{"n_in": 1, "n_out": 1, "activation": "relu"}] * 129,
                   "1 to 128 layers"),
    "type_unknown": (("model", "layers", 0, "type"), "conv2d", "'dense' or 'dropout'"),
    "type_list": (("model", "layers", 0, "type"), ["dense"], "'dense' or 'dropout'"),
    "n_in_string": (("model", "layers", 0, "n_in"), "64", "must be int"),
    "n_in_bool": (("model", "layers", 0, "n_in"), True, "must be int"),
    "n_in_float": (("model", "layers", 0, "n_in"), 64.0, "must be int"),
    "n_in_zero": (("model", "layers", 0, "n_in"), 0, ">= 1"),
    "n_out_negative": (("model", "layers", 1, "n_out"), -10, ">= 1"),
    "layers_disagree": (("model", "layers", 1, "n_in"), 13, "layer before"),
    "activation_unknown": (("model", "layers", 0, "activation"), "softmax", "activation"),
    "activation_list": (("model", "layers", 0, "activation"), ["relu"], "activation"),
    "init_unknown": (("model", "layers", 0, "init"), "evil", "does not describe a model"),
    "dtype_float16": (("model", "dtype"), "float16", "float32"),
    "dtype_object": (("model", "dtype"), "object", "float32"),
    "seed_negative": (("model", "seed"), -1, ">= 0"),
    "n_params_wrong": (("n_params",), N_PARAMS + 1, "n_params"),
    "n_params_string": (("n_params",), str(N_PARAMS), "n_params"),
    "rng_other": (("rng", "bit_generator"), "MT19937", "PCG64"),
    "rng_huge": (("rng", "state", "state"), 2**130, "out of range"),
    "rng_missing": (("rng", "state"), DELETE, "has no 'state'"),
    "loss_unknown": (("loss",), {"name": "__import__('os')"}, "not a gdcore loss"),
    "loss_delta_elsewhere": (("loss",), {"name": "mse", "delta": 2.0}, "only the huber"),
    "loss_bad_delta": (("loss",), {"name": "huber", "delta": -1.0}, "not a gdcore loss"),
    "optimizer_class": (("optimizer", "class"), "os.system", "may name only"),
    "optimizer_not_allowed": (("optimizer", "class"), "Optimizer", "may name only"),
    "optimizer_class_type": (("optimizer", "class"), ["SGD"], "must be str"),
    "optimizer_lr": (("optimizer", "hyperparameters", "lr"), -0.1, "valid Adam"),
    "optimizer_betas": (("optimizer", "hyperparameters", "betas"), [0.9], "valid Adam"),
    "optimizer_beta_string": (("optimizer", "hyperparameters", "betas"), ["0.9", 0.99],
                              "must be number"),
    "optimizer_key": (("optimizer", "hyperparameters", "__class__"), 1, "unknown keys"),
    "optimizer_hyper_dict": (("optimizer", "hyperparameters", "eps"), {"a": 1}, "eps"),
    "step_negative": (("optimizer", "state", "step"), -1, "step"),
    "step_huge": (("optimizer", "state", "step"), 2**64, "step"),
    "step_float": (("optimizer", "state", "step"), 3.5, "step"),
    "step_int64_max": (("optimizer", "state", "step"), 2**63 - 1, "step'\\] must be in"),
    "step_beyond_2_53": (("optimizer", "state", "step"), 2**53 + 1, "2\\*\\*53"),
    "n_slots_more": (("optimizer", "state", "n_slots"), 3, "missing member 'optimizer_slot_2'"),
    "n_slots_fewer": (("optimizer", "state", "n_slots"), 1, "unexpected members"),
    "n_slots_huge": (("optimizer", "state", "n_slots"), 10**9, "n_slots"),
}


@pytest.mark.parametrize("case", sorted(META_CASES))
def test_malformed_meta_is_refused(tmp_path, good, case):
    path, value, match = META_CASES[case]
    load_error(tmp_path, with_meta(good, _set(path, value)), match)


def test_config_agreeing_with_n_params_but_not_with_the_params_member(tmp_path, good):
    def smaller(meta):
        meta["model"]["layers"][1]["n_out"] = 9
        meta["n_params"] = (64 + 1) * 12 + (12 + 1) * 9
    load_error(tmp_path, with_meta(good, smaller), "holds 910 values, expected 897")


def test_slot_count_must_match_the_hyperparameters(tmp_path, good):
    def to_sgd(meta):
        meta["optimizer"]["class"] = "SGD"
        meta["optimizer"]["hyperparameters"] = {"lr": 0.1, "momentum": 0.9}
    load_error(tmp_path, with_meta(good, to_sgd), "has 2 state buffers, its hyperparameters "
                                                  "need 1")


def test_missing_hyperparameters_take_their_defaults(tmp_path, good):
    """Forward compatibility: an optimizer argument added later is absent from older files."""
    def drop_eps(meta):
        del meta["optimizer"]["hyperparameters"]["eps"]
    path = tmp_path / "old.npz"
    path.write_bytes(with_meta(good, drop_eps))
    model, opt = gio.load(path, with_optimizer=True)
    assert opt.eps == gd.optim.Adam().eps and opt.lr == 0.01


META_BLOBS = {
    "not_utf8": (b"\xff\xfe{}", "not valid UTF-8 JSON"),
    "not_json": (b"{'format': 1}", "not valid UTF-8 JSON"),
    "json_list": (b"[1, 2]", "meta must be dict"),
    "empty": (b"", "not valid UTF-8 JSON"),
    "nan": (b'{"format": "gdcore.checkpoint", "format_version": NaN}', "non-JSON constant"),
    "overflow_float": (b'{"format": "gdcore.checkpoint", "format_version": 1e999}',
                       "out-of-range number"),
    "duplicate_keys": (b'{"format": "gdcore.checkpoint", "format": "gdcore.checkpoint"}',
                       "repeats a key"),
    "deep_nesting": (b"[" * 100_000 + b"]" * 100_000, "not valid UTF-8 JSON"),
    "huge_int": (b'{"format": "gdcore.checkpoint", "format_version": 1' + b"0" * 5000 + b"}",
                 "not valid UTF-8 JSON|newer gdcore"),  # Python < 3.11 parses any int
}


@pytest.mark.parametrize("case", sorted(META_BLOBS))
def test_meta_that_is_not_json_is_refused(tmp_path, good, case):
    blob, match = META_BLOBS[case]
    load_error(tmp_path, with_member(good, "meta.npy",
                                     npy(np.frombuffer(blob, dtype=np.uint8))), match)


def _params(good):
    return good[2]._params


MEMBER_CASES = {
    "params_missing": ("params.npy", None, "missing member 'params'"),
    "meta_missing": ("meta.npy", None, "missing member 'meta'"),
    "slot_missing": ("optimizer_slot_1.npy", None, "missing member 'optimizer_slot_1'"),
    "extra_member": ("notes.txt", b"hello", "unexpected members"),
    "params_float64": ("params.npy", lambda p: npy(p.astype("<f8")), "dtype '<f8', expected '<f4'"),
    "params_big_endian": ("params.npy", lambda p: npy(p.astype(">f4")), "dtype '>f4'"),
    "params_int": ("params.npy", lambda p: npy(p.astype(np.int32)), "dtype '<i4'"),
    "params_2d": ("params.npy", lambda p: npy(p.reshape(1, -1)), "1-D shape"),
    "params_short": ("params.npy", lambda p: npy(p[:-1]), "holds 909 values, expected 910"),
    "params_long": ("params.npy", lambda p: npy(np.append(p, p[:1])), "values, expected 910"),
    "params_nan": ("params.npy", lambda p: npy(np.where(np.arange(p.size) == 7, np.nan, p)
                                               .astype(p.dtype)),
                   "NaN or infinity \\(first at layers\\[0\\]\\.W\\[0, 7\\]\\)"),
    "params_inf": ("params.npy", lambda p: npy(np.full_like(p, np.inf)), "NaN or infinity"),
    "slot_nan": ("optimizer_slot_0.npy", lambda p: npy(np.full_like(p, np.nan)),
                 "state buffer 0 \\(Adam's exp_avg\\) contains NaN"),
    "slot_float64": ("optimizer_slot_1.npy", lambda p: npy(p.astype("<f8")), "dtype '<f8'"),
    "params_object": ("params.npy", lambda p: npy(np.array([1.0, None], dtype=object)),
                      "dtype '\\|O'"),
    "params_structured": ("params.npy", lambda p: npy(np.zeros(910, dtype=[("a", "<f4")])),
                          "dtype"),
    "meta_float": ("meta.npy", lambda p: npy(np.zeros(10, dtype="<f4")), "dtype '<f4'"),
    "params_not_npy": ("params.npy", b"just some bytes, not an array", "not a .npy array"),
    "params_empty": ("params.npy", b"", "truncated"),
    "npy_version_9": ("params.npy", npy_raw("{'descr': '<f4', 'fortran_order': False, "
                                            "'shape': (910,), }", version=1)
                      .replace(b"NUMPY\x01", b"NUMPY\x09"), "unknown .npy version 9"),
    "header_code": ("params.npy", npy_raw("__import__('os').system('touch pwned')"),
                    "unreadable .npy header"),
    "header_not_dict": ("params.npy", npy_raw("[1, 2, 3]"), "malformed .npy header"),
    "header_extra_key": ("params.npy", npy_raw("{'descr': '<f4', 'fortran_order': False, "
                                               "'shape': (910,), 'x': 1}"),
                         "malformed .npy header"),
    "header_shape_float": ("params.npy", npy_raw("{'descr': '<f4', 'fortran_order': False, "
                                                 "'shape': (910.0,)}"), "1-D shape"),
    "header_shape_negative": ("params.npy", npy_raw("{'descr': '<f4', 'fortran_order': False, "
                                                    "'shape': (-910,)}"), "1-D shape"),
    "header_fortran_int": ("params.npy", npy_raw("{'descr': '<f4', 'fortran_order': 0, "
                                                 "'shape': (910,)}"), "malformed .npy header"),
    "header_nested": ("params.npy", npy_raw("(" * 3000 + ")" * 3000), "unreadable .npy header"),
    "header_huge_length": ("params.npy", b"\x93NUMPY\x02\x00\xff\xff\xff\x7f{", "header"),
    "header_says_huge_shape": ("params.npy", npy_raw("{'descr': '<f4', 'fortran_order': False, "
                                                     "'shape': (1000000000000,)}", b"\x00" * 64),
                               "holds 1000000000000 values, expected 910"),
    "data_truncated": ("params.npy", lambda p: npy(p)[:-5], "declares 910 values|truncated"),
    "data_trailing": ("params.npy", lambda p: npy(p) + b"\x00" * 4, "data bytes"),
}


@pytest.mark.parametrize("case", sorted(MEMBER_CASES))
def test_malformed_members_are_refused(tmp_path, good, case):
    name, data, match = MEMBER_CASES[case]
    if callable(data):
        data = data(_params(good))
    load_error(tmp_path, with_member(good, name, data), match)
    assert not os.path.exists("pwned")


NOT_ARCHIVES = {
    "empty": b"",
    "text": b"hello world\n" * 10,
    "npy": None,  # a bare .npy file, not an archive
    "pickle": pickle.dumps({"format": "gdcore.checkpoint"}),
    "zip_signature_only": b"PK\x05\x06" + b"\x00" * 18,
}


@pytest.mark.parametrize("case", sorted(NOT_ARCHIVES))
def test_files_that_are_not_archives_are_refused(tmp_path, good, case):
    content = NOT_ARCHIVES[case] if case != "npy" else good[0]["params.npy"]
    load_error(tmp_path, content, "not a gdcore checkpoint|missing member")


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.999])
def test_truncated_files_are_refused(tmp_path, keep):
    model, opt = trained(optimizer=gd.optim.Adam())
    gio.save(model, tmp_path / "ok.npz", optimizer=opt)
    content = (tmp_path / "ok.npz").read_bytes()
    load_error(tmp_path, content[:int(len(content) * keep)], "not a gdcore checkpoint")


def test_duplicate_members_are_refused(tmp_path, good):
    members = list(good[0].items())
    with pytest.warns(UserWarning, match="Duplicate name"):
        content = zip_bytes(members + [("params.npy", members[1][1])])
    load_error(tmp_path, content, "duplicate members")


def test_compressed_and_encrypted_members_are_refused(tmp_path, good):
    load_error(tmp_path, zip_bytes(list(good[0].items()), zipfile.ZIP_DEFLATED),
               "compressed \\(method 8\\)")
    content = bytearray(zip_bytes(list(good[0].items())))
    at = content.rfind(b"PK\x01\x02")  # central directory entry of the last member
    content[at + 8] |= 0x1  # general purpose flag bit 0: encrypted
    load_error(tmp_path, bytes(content), "encrypted|not a valid gdcore")


def _central_entries(content):
    at = content.find(b"PK\x01\x02")
    while at != -1:
        yield at
        at = content.find(b"PK\x01\x02", at + 4)


@pytest.mark.parametrize("declared", [2**31 - 1, 2**32 - 2, 10**9])
def test_huge_declared_member_sizes_allocate_nothing(tmp_path, good, declared):
    """A central directory declaring a huge member is refused from the ZipInfo alone."""
    content = bytearray(zip_bytes(list(good[0].items())))
    for at in _central_entries(content):
        name_len = struct.unpack_from("<H", content, at + 28)[0]
        if content[at + 46:at + 46 + name_len] == b"params.npy":
            struct.pack_into("<II", content, at + 20, declared, declared)
    peak = load_error_peak(tmp_path, bytes(content), "cannot hold|declares")
    assert peak < 4 * len(content) + (1 << 20)


def test_zip_bomb_is_refused_before_decompressing(tmp_path, good):
    """A deflated member that would expand to 64 MiB (a config that agrees with it) is refused
    without decompressing it."""
    members, meta, _, _ = good
    n_params = (2**14 + 1) * 1024  # 64 MiB of float32
    meta = json.loads(json.dumps(meta))
    meta["model"]["layers"] = [{"n_in": 2**14, "n_out": 1024, "activation": "relu",
                                "init": "auto"}]
    meta["n_params"] = n_params
    meta["optimizer"] = None
    bomb = npy(np.zeros(n_params, dtype="<f4"))
    buffer = stdio.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("meta.npy", meta_bytes(meta))
        archive.writestr("params.npy", bomb, compress_type=zipfile.ZIP_DEFLATED)
    content = buffer.getvalue()
    del bomb
    assert len(content) < 2**20  # a tiny file
    peak = load_error_peak(tmp_path, content, "compressed")
    assert peak < 8 << 20


def test_huge_config_with_a_small_file_allocates_nothing(tmp_path, good):
    """Layers declaring 10^12 parameters, n_params agreeing, a params member declaring them in
    its header: refused by comparing with the member's real size, before building the model."""
    members, meta, _, _ = good
    meta = json.loads(json.dumps(meta))
    meta["model"]["layers"] = [{"n_in": 10**6, "n_out": 10**6 - 1, "activation": "relu",
                                "init": "auto"}]
    meta["n_params"] = (10**6 + 1) * (10**6 - 1)
    meta["optimizer"] = None
    params = npy_raw(f"{{'descr': '<f4', 'fortran_order': False, "
                     f"'shape': ({meta['n_params']},), }}", b"\x00" * 64)
    content = zip_bytes([("meta.npy", meta_bytes(meta)), ("params.npy", params)])
    peak = load_error_peak(tmp_path, content, "declares|holds")
    assert peak < 4 << 20


def test_pickled_payloads_never_run(tmp_path, good, monkeypatch):
    """Object-dtype members holding a pickle whose loading would create a marker file: the
    payload is live (np.load with allow_pickle=True runs it), gdcore never runs it."""
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "marker"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = np.array([Payload(), 1.0], dtype=object)
    for name in ("meta.npy", "params.npy", "optimizer_slot_0.npy"):
        content = with_member(good, name, npy(evil))
        load_error(tmp_path, content, "dtype '\\|O'")
        assert not marker.exists()
    load_error(tmp_path, pickle.dumps(Payload()), "not a gdcore checkpoint")
    assert not marker.exists()
    # proof that the payload is live
    (tmp_path / "bad.npz").write_bytes(with_member(good, "params.npy", npy(evil)))
    with np.load(tmp_path / "bad.npz", allow_pickle=True) as archive:
        archive["params"]
    assert marker.exists()


def test_an_interrupt_inside_a_members_close_is_raised_as_itself(tmp_path, monkeypatch):
    """A Ctrl-C that lands in zipfile's member close leaves the archive "writing": closing it
    then raised ValueError, which hid the KeyboardInterrupt, and the garbage collector's close
    raised it again as an unraisable error."""
    model = gd.MLP([3, 4, 2], seed=0)
    model.save(tmp_path / "m.npz")
    before = (tmp_path / "m.npz").read_bytes()
    real_close = zipfile._ZipWriteFile.close
    interrupted = []

    def close_interrupted(member):
        if not interrupted:
            interrupted.append(True)  # not the member: the archive must be collectable
            raise KeyboardInterrupt  # as a SIGINT raised on entry would
        real_close(member)

    monkeypatch.setattr(zipfile._ZipWriteFile, "close", close_interrupted)
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    with pytest.raises(KeyboardInterrupt):
        gd.MLP([3, 4, 2], seed=1).save(tmp_path / "m.npz")
    gc.collect()
    monkeypatch.undo()
    assert interrupted and not unraisable
    assert os.listdir(tmp_path) == ["m.npz"]
    assert (tmp_path / "m.npz").read_bytes() == before


def test_an_interrupt_as_the_temporary_file_opens_leaves_nothing_behind(tmp_path, monkeypatch):
    """Python raises a SIGINT that came during a call as the call returns: the temporary file
    just created, and its descriptor, must not be left behind."""
    model = gd.MLP([3, 4, 2], seed=0)
    model.save(tmp_path / "m.npz")
    before = sorted(tmp_path.iterdir())
    fds = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None

    def open_then_interrupt(*args, **kwargs):
        open(*args, **kwargs)  # created; the file object is dropped as the interrupt unwinds
        raise KeyboardInterrupt

    monkeypatch.setattr(gio, "open", open_then_interrupt, raising=False)
    with pytest.raises(KeyboardInterrupt):
        model.save(tmp_path / "m.npz")
    monkeypatch.undo()
    assert sorted(tmp_path.iterdir()) == before
    if fds is not None:
        assert len(os.listdir("/proc/self/fd")) == fds
    for w, w0 in zip(gd.load(tmp_path / "m.npz").get_weights(), model.get_weights()):
        np.testing.assert_array_equal(w, w0)


# ----------------------------------------------------- session 9 review: save/load corners
@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_save_refuses_to_replace_a_device_or_fifo(tmp_path, kind):
    """A save over /dev/null (or a FIFO) put a regular file in its place for every process."""
    target = tmp_path / kind
    if kind == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs here")
        os.mkfifo(target)
    else:
        try:  # a private copy of /dev/null (needs CAP_MKNOD, as root in a container)
            os.mknod(target, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        except (PermissionError, AttributeError, OSError):
            pytest.skip("cannot create a device node here")
    with pytest.raises(ValueError, match="not a regular file"):
        gd.MLP([3, 2]).save(target)
    mode = os.lstat(target).st_mode
    assert stat.S_ISFIFO(mode) if kind == "fifo" else stat.S_ISCHR(mode)
    assert sorted(os.listdir(tmp_path)) == [kind]  # no temporary file left


def test_save_of_a_loss_subclass_loads(tmp_path, digits):
    """A subclass of a built-in loss with its own name was saved under that name, which load
    refused: every checkpoint of such a run was unloadable."""
    X, y = digits

    class TaggedCE(gd.losses.CrossEntropy):
        name = "tagged_ce"

    model = gd.MLP([64, 5, 10], seed=0)
    model.fit(X, y, loss=TaggedCE(), epochs=1, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = gd.load(tmp_path / "m.npz")
    assert type(loaded.loss_) is gd.losses.CrossEntropy
    assert np.array_equal(loaded.predict_proba(X), model.predict_proba(X))


@pytest.mark.parametrize("bad", [-1.0, 0.0, float("nan"), "2"])
def test_huber_delta_is_checked_on_assignment(bad):
    """delta = -1 assigned after construction trained on a negative loss and wrote a
    checkpoint load refused."""
    huber = gd.losses.Huber(2.0)
    with pytest.raises(ValueError, match="delta must be a positive finite number"):
        huber.delta = bad
    assert huber.delta == 2.0


def test_huber_pickled_before_delta_was_a_property_loads():
    huber = gd.losses.Huber.__new__(gd.losses.Huber)
    huber.__setstate__({"delta": 0.5})  # what an older pickle's state holds
    assert huber.delta == 0.5 and huber == gd.losses.Huber(0.5)
    assert pickle.loads(pickle.dumps(gd.losses.Huber(3.0))).delta == 3.0


def test_save_refuses_a_loss_load_would_refuse(tmp_path, monkeypatch):
    model = gd.MLP([3, 1])
    model.loss_ = gd.losses.Huber()
    monkeypatch.setattr(model.loss_, "_delta", -1.0)  # past the setter's check
    (tmp_path / "m.npz").write_bytes(b"previous")
    with pytest.raises(ValueError, match="cannot save .*delta"):
        model.save(tmp_path / "m.npz")
    assert (tmp_path / "m.npz").read_bytes() == b"previous"


@pytest.mark.parametrize("where, key", [(("model", "layers", 0), "L2"),
                                        (("model", "layers", 0), "use_bias"),
                                        (("model",), "extra")])
def test_load_refuses_unknown_model_keys(tmp_path, good, where, key):
    """A misspelt "L2" loaded as l2 = 0, silently."""
    def change(meta):
        target = meta
        for step in where:
            target = target[step]
        target[key] = 0.5
    load_error(tmp_path, with_meta(good, change), f"unknown keys.*{key}")


def test_checkpoint_path_may_format_skipped_batches_as_an_int(tmp_path, digits):
    X, y = digits
    checkpoint = gd.callbacks.ModelCheckpoint(str(tmp_path / "ck-{epoch}-{skipped_batches:d}.npz"))
    gd.MLP([64, 5, 10]).fit(X, y, epochs=1, verbose=0, on_divergence="ignore",
                            callbacks=[checkpoint])
    assert os.path.basename(checkpoint.saved[0]) == "ck-0-0.npz"
