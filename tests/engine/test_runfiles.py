"""The files a run writes: checked before training, never over a data set or another network's
checkpoint, a failed save that warns and goes on, stale temporary files cleaned, one claim per name,
and the same metadata in every file (so that `predict` answers the same from each)."""

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnsim.atomic import write_atomically
from nnsim.cli import main
from nnsim.engine.checkpoint import read_checkpoint, save_checkpoint
from nnsim.engine.config import TrainConfig
from nnsim.engine.models import build_model
from nnsim.engine.trainer import Trainer
from nnsim.errors import NnsimError

ROOT = Path(__file__).resolve().parents[2]
SMALL = dict(model="mlp", data="shapes", backend="reference", sizes={"hidden": [8]})


class FailingSaves:
    """Saves whose final rename fails (as a full disk, a folder made read-only, or a folder where the
    file should be make it fail), while `failing`; tests run as root, so modes would not stop them."""

    def __init__(self, monkeypatch, error: OSError, names=("",)):
        self.error, self.names, self.failing, self.count = error, names, True, 0
        real = os.replace

        def replace(source, target, *args, **kwargs):
            if self.failing and any(name in str(target) for name in self.names) and ".part" in str(source):
                self.count += 1
                raise self.error
            return real(source, target, *args, **kwargs)

        monkeypatch.setattr(os, "replace", replace)


ERRORS = {
    "permission": PermissionError(errno.EACCES, "Permission denied"),
    "disk-full": OSError(errno.ENOSPC, "No space left on device"),
    "a-folder": IsADirectoryError(errno.EISDIR, "Is a directory"),
}


def _victim(path: Path) -> bytes:
    rng = np.random.default_rng(0)
    x, y = (rng.random((40, 8, 8)) * 255).astype(np.uint8), np.arange(40) % 2
    np.savez(path, x_train=x, y_train=y, x_test=x[:10], y_test=y[:10])
    return path.read_bytes()


# ------------------------------------------------------------------------------- nnsim train
def test_train_refuses_a_checkpoint_onto_its_own_data_set(tmp_path, capsys):
    victim = tmp_path / "d" / "victim.npz"
    victim.parent.mkdir()
    before = _victim(victim)
    code = main(
        ["train", "--model", "mlp", "--data", str(victim), "--checkpoint", str(victim), "--backend", "reference"]
    )
    err = capsys.readouterr().err
    assert code != 0 and len(err.strip().splitlines()) == 1 and "data set" in err
    assert victim.read_bytes() == before


@pytest.mark.parametrize("name", ["notes.txt", "notes.npz"])
def test_train_refuses_to_overwrite_a_file_that_is_not_a_checkpoint(tmp_path, capsys, name):
    other = tmp_path / name
    other.write_text("my notes\n")
    code = main(["train", *_flags(), "--checkpoint", str(other)])
    err = capsys.readouterr().err
    assert code != 0 and len(err.strip().splitlines()) == 1 and "not an nnsim checkpoint" in err
    assert other.read_text() == "my notes\n"


def test_train_refuses_to_overwrite_a_checkpoint_of_another_network(tmp_path, capsys):
    theirs = tmp_path / "vit.npz"
    save_checkpoint(theirs, build_model("vit", (3, 32, 32), 5, dim=16, heads=2, depth=1, mlp_dim=16))
    before = theirs.read_bytes()
    code = main(["train", *_flags(), "--checkpoint", str(theirs)])
    err = capsys.readouterr().err
    assert code != 0 and len(err.strip().splitlines()) == 1 and "holds a different network" in err
    assert theirs.read_bytes() == before


def test_train_warns_and_goes_on_when_a_save_fails_mid_run(tmp_path, capsys, monkeypatch):
    checkpoint = tmp_path / "run.npz"
    failing = FailingSaves(monkeypatch, ERRORS["disk-full"])
    real = Trainer.save

    def save(trainer, path, **figures):  # the first epoch's save fails; the later ones work
        failing.failing = trainer.epoch == 1
        return real(trainer, path, **figures)

    monkeypatch.setattr(Trainer, "save", save)
    code = main(["train", *_flags(epochs=3), "--checkpoint", str(checkpoint), "--json"])
    out, err = capsys.readouterr()
    assert code == 0 and failing.count == 1
    assert "could not save" in err and "training goes on" in err and "Traceback" not in err
    done = json.loads(out.strip().splitlines()[-1])
    assert done["event"] == "done" and done["epochs"] == 3
    assert read_checkpoint(checkpoint)[0]["meta"]["epoch"] == 3


def test_train_ends_non_zero_when_its_last_save_fails(tmp_path, capsys, monkeypatch):
    checkpoint = tmp_path / "run.npz"
    FailingSaves(monkeypatch, ERRORS["permission"])
    code = main(["train", *_flags(epochs=2), "--checkpoint", str(checkpoint), "--json"])
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("nnsim: error:") and str(checkpoint) in err


def _flags(epochs=1):
    return ["--model", "mlp", "--data", "shapes", "--backend", "reference", "--epochs", str(epochs)]


# ------------------------------------------------------------------------------- before training
def test_a_checkpoint_of_the_same_network_is_overwritten_and_said(tmp_path):
    checkpoint = tmp_path / "run.npz"
    Trainer(TrainConfig(**SMALL, checkpoint=str(checkpoint))).save(checkpoint)
    trainer = Trainer(TrainConfig(**SMALL, checkpoint=str(checkpoint)))
    assert any("replaces the run saved" in warning for warning in trainer.warnings)


def test_stale_part_files_of_the_same_name_are_removed_on_the_next_save(tmp_path):
    stale = [tmp_path / ".run.npz.k3j2l1.part", tmp_path / ".run.npz.zz.part"]
    for path in stale:
        path.write_bytes(b"")  # a save killed half way
    other = tmp_path / ".other.npz.k3j2l1.part"
    other.write_bytes(b"")
    write_atomically(tmp_path / "run.npz", lambda handle: handle.write(b"new"))
    assert (tmp_path / "run.npz").read_bytes() == b"new"
    assert not any(path.exists() for path in stale) and other.exists()


def test_two_processes_never_claim_the_same_name(tmp_path, monkeypatch):
    from nnsim.engine.runfiles import claim
    from nnsim.tui.live.lab_files import default_checkpoint

    path = tmp_path / "lab" / "cnn-mnist-mini.npz"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from nnsim.engine.runfiles import claim; claim({str(path)!r}); print('held', flush=True); input()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert not claim(path)  # another process writes there
        monkeypatch.setenv("NNSIM_HOME", str(tmp_path))  # the lab's default: tmp/lab/cnn-mnist-mini.npz
        assert default_checkpoint(TrainConfig()) == path.with_name("cnn-mnist-mini-2.npz")  # a lab's own name
        assert claim(path.with_name("cnn-mnist-mini-2.npz"))
        assert claim(path.with_name("cnn-mnist-mini-2.npz"))  # this process's own claim, again
    finally:
        holder.communicate("\n", timeout=30)
    assert claim(path)  # free once the other process has ended


# ------------------------------------------------------------------------------- metadata and predict
def test_every_file_a_run_writes_carries_the_same_metadata_and_predicts_the_same(tmp_path, capsys):
    from nnsim.tui.live.lab import LabRun
    from nnsim.tui.live.lab_figures import best_path, figure_paths
    from nnsim.tui.live.lab_session import LabSession

    checkpoint = tmp_path / "run.npz"
    config = TrainConfig(
        model="mlp", data="mnist-mini", backend="reference", epochs=1, max_steps=30, checkpoint=str(checkpoint)
    )
    LabSession([LabRun(config)]).run(lambda figures: None, every=0.0)
    run_meta = read_checkpoint(checkpoint)[0]["meta"]
    best_meta = read_checkpoint(best_path(checkpoint))[0]["meta"]
    figures_meta = json.loads(figure_paths(checkpoint)[0].read_text())["meta"]
    for key in ("class_names", "data", "background"):
        assert best_meta[key] == run_meta[key] == figures_meta[key], key
    assert read_checkpoint(best_path(checkpoint))[1].keys() == read_checkpoint(checkpoint)[1].keys()
    for name, weights in read_checkpoint(checkpoint)[1].items():
        assert np.array_equal(weights, read_checkpoint(best_path(checkpoint))[1][name])  # the last epoch was best
    image = ROOT / "sample_images" / "digits" / "7-on-paper.png"
    answers = []
    for path in (checkpoint, best_path(checkpoint)):
        assert main(["predict", str(image), "--checkpoint", str(path), "--json"]) == 0
        answers.append(json.loads(capsys.readouterr().out))
    assert answers[0]["top"] == answers[1]["top"] and answers[0]["notes"] == answers[1]["notes"]


def test_the_lab_refuses_every_file_it_cannot_write_before_training(tmp_path):
    from nnsim.engine.runfiles import run_files
    from nnsim.tui.live.lab import LabRun

    checkpoint = tmp_path / "bd.npz"
    for path in run_files(checkpoint).all:
        path.mkdir()
        with pytest.raises(NnsimError, match=f"{path.name}: is a folder"):
            LabRun(TrainConfig(**SMALL, epochs=1, checkpoint=str(checkpoint)))
        path.rmdir()
