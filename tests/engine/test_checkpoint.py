"""Checkpoints: round trip, atomic writes, no pickle, refusing the wrong network."""

import json
import os

import numpy as np
import pytest

from nnsim.engine.checkpoint import load_checkpoint, load_weights, read_checkpoint, save_checkpoint
from nnsim.engine.models import build_model
from nnsim.errors import NnsimError


def test_round_trip(ref, tmp_path):
    model = build_model(
        "vit", (1, 14, 14), 4, backend=ref, seed=2, patch=7, dim=8, heads=2, depth=1, mlp_dim=8, mean=[0.3], std=[0.2]
    )
    path = save_checkpoint(tmp_path / "m.npz", model, {"class_names": list("abcd")})
    loaded, meta = load_checkpoint(path, backend=ref)
    assert meta["class_names"] == list("abcd")
    assert loaded.config == model.config
    x = np.random.default_rng(0).random((2, 1, 14, 14)).astype(np.float32)
    np.testing.assert_array_equal(loaded.forward(x), model.forward(x))
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask  # a normal file's mode, not mkstemp's 0600


def test_a_failed_write_keeps_the_old_file(ref, tmp_path, monkeypatch):
    model = build_model("mlp", (1, 4, 4), 2, backend=ref)
    path = save_checkpoint(tmp_path / "m.npz", model)
    before = path.read_bytes()

    def broken_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError):
        save_checkpoint(path, build_model("mlp", (1, 4, 4), 2, backend=ref, seed=9))
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]


def test_refuses_another_architecture(ref, tmp_path):
    path = save_checkpoint(tmp_path / "cnn.npz", build_model("cnn", backend=ref))
    with pytest.raises(NnsimError, match="different network"):
        load_weights(build_model("mlp", backend=ref), path)
    with pytest.raises(NnsimError, match="different network"):
        load_weights(build_model("cnn", backend=ref, channels=[8, 16]), path)


def test_refuses_pickles_and_junk(tmp_path):
    pickled = tmp_path / "evil.npz"
    np.savez(pickled, __header__=np.array([{"format": "x"}], dtype=object))
    with pytest.raises(NnsimError, match="pickled"):
        read_checkpoint(pickled)
    junk = tmp_path / "junk.npz"
    junk.write_text("not a zip")
    with pytest.raises(NnsimError, match="not a readable checkpoint"):
        read_checkpoint(junk)
    with pytest.raises(NnsimError, match="no such checkpoint"):
        read_checkpoint(tmp_path / "missing.npz")
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(NnsimError, match="not an nnsim checkpoint"):
        read_checkpoint(other)


def test_refuses_nan_weights(ref, tmp_path):
    model = build_model("mlp", (1, 4, 4), 2, backend=ref)
    model.parameters()[0].value[0, 0] = np.nan
    path = save_checkpoint(tmp_path / "nan.npz", model)
    with pytest.raises(NnsimError, match="NaN"):
        load_checkpoint(path)


def test_header_is_plain_json(ref, tmp_path):
    path = save_checkpoint(tmp_path / "m.npz", build_model("mlp", (1, 4, 4), 2, backend=ref), {"steps": 3})
    with np.load(path, allow_pickle=False) as archive:
        header = json.loads(str(archive["__header__"]))
    assert header["format"] == "nnsim-checkpoint-1"
    assert header["config"]["model"] == "mlp" and header["meta"]["steps"] == 3
