"""The lab's files: a failed save keeps the run going and says where nothing is written, no file a
run should not touch is overwritten, and the figures stay honest without a validation split."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from textual.widgets import Input, RichLog

from nnsim.engine.checkpoint import load_checkpoint, save_checkpoint
from nnsim.engine.config import TrainConfig
from nnsim.engine.models import build_model
from nnsim.serving import SERVED
from nnsim.tui.app import NnsimApp
from nnsim.tui.live.lab import LabRun
from nnsim.tui.live.lab_figures import figure_paths
from nnsim.tui.live.lab_session import LabSession
from nnsim.tui.progress import ProgressStore
from tests.engine.test_runfiles import ERRORS, FailingSaves, _victim
from tests.tui.conftest import settle, shown
from tests.tui.test_lab import lab_app, until

ROOT = Path(__file__).resolve().parents[2]
SMALL = dict(model="mlp", data="shapes", backend="reference", sizes={"hidden": [8]})


@pytest.mark.parametrize("error", ERRORS, ids=list(ERRORS))
def test_a_save_that_fails_mid_run_keeps_training_says_where_and_retries(tmp_path, monkeypatch, error):
    checkpoint = tmp_path / "run.npz"
    failing = FailingSaves(monkeypatch, ERRORS[error])
    failing.failing = False
    run = LabRun(TrainConfig(**SMALL, epochs=4, checkpoint=str(checkpoint)))
    problems = []
    for event in run.events():
        if event.event == "epoch":
            failing.failing = event.epoch in (2, 3)  # the saves after epochs 2 and 3 fail
        problems.append((run.trainer.epoch, run.figures.save_problem))
    assert run.figures.reason == "finished" and run.figures.step == 4 * 43 and failing.count >= 2
    failed = [problem for epoch, problem in problems if epoch == 3 and problem]
    assert failed and str(checkpoint) in failed[-1] and "training goes on" in failed[-1]
    assert run.figures.save_problem == ""  # the last save worked: the message is gone
    assert load_checkpoint(checkpoint)[1]["epoch"] == 4


async def test_the_lab_shows_a_failed_save_until_a_save_works_and_keeps_training(tmp_path, monkeypatch):
    checkpoint = tmp_path / "rw" / "run.npz"
    failing = FailingSaves(monkeypatch, ERRORS["permission"])
    app = lab_app(checkpoint=str(checkpoint))
    async with app.run_test(size=(120, 40)) as pilot:
        lab = app.screen
        await pilot.press("space")
        await until(pilot, lambda: "not saving" in shown(lab.query_one("#lab-notice")))
        assert "rw/run" in shown(lab.query_one("#lab-notice"))
        epoch = lab.session.runs[0].figures.epoch
        await until(pilot, lambda: lab.session.runs[0].figures.epoch >= epoch + 2)  # training goes on
        assert lab.state == "running" and "not saving" in shown(lab.query_one("#lab-notice"))
        failing.failing = False
        await until(pilot, lambda: shown(lab.query_one("#lab-notice")).strip() == "")
        await pilot.press("x")
        await until(pilot, lambda: lab.state == "finished")
    assert load_checkpoint(checkpoint)[1]["epoch"] >= epoch + 2


async def test_the_lab_refuses_to_save_its_checkpoint_over_its_data_set(tmp_path):
    victim = tmp_path / "d" / "victim.npz"
    victim.parent.mkdir()
    before = _victim(victim)
    app = lab_app(data=str(victim), checkpoint=str(victim), epochs=2)
    async with app.run_test(size=(120, 40)) as pilot:
        lab = app.screen
        await pilot.press("space")
        await until(pilot, lambda: "data set" in shown(lab.query_one("#lab-status")))
        await settle(pilot)
        assert lab.session is None
    assert victim.read_bytes() == before


async def test_s_onto_a_text_file_is_refused(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    app = lab_app(checkpoint=str(tmp_path / "run.npz"))
    async with app.run_test(size=(120, 40)) as pilot:
        lab = app.screen
        await pilot.press("space")
        await until(pilot, lambda: lab.session is not None and lab.session.runs[0].figures.step >= 3)
        await pilot.press("space")
        lab.query_one("#lab-checkpoint", Input).value = str(notes)
        await pilot.press("s")
        assert "not an nnsim checkpoint" in shown(lab.query_one("#lab-status"))
        await pilot.press("x")
        await until(pilot, lambda: lab.state == "finished")
    assert notes.read_text() == "my notes\n"


async def test_a_run_onto_a_checkpoint_of_another_network_is_refused_and_a_free_name_offered(tmp_path):
    theirs = tmp_path / "run.npz"
    save_checkpoint(theirs, build_model("vit", (3, 32, 32), 5, dim=16, heads=2, depth=1, mlp_dim=16))
    before = theirs.read_bytes()
    app = lab_app(checkpoint=str(theirs), epochs=1)
    async with app.run_test(size=(120, 40)) as pilot:
        lab = app.screen
        await pilot.press("space")
        await until(pilot, lambda: "holds a different network" in shown(lab.query_one("#lab-status")))
        await settle(pilot)
        offered = lab.query_one("#lab-checkpoint", Input).value
        assert offered == str(tmp_path / "run-2.npz") and offered in shown(lab.query_one("#lab-status"))
        await pilot.press("space")  # again: into the free name
        await until(pilot, lambda: lab.figures.reason == "finished")
    assert theirs.read_bytes() == before and (tmp_path / "run-2.npz").is_file()


async def test_an_emptied_save_to_says_that_nothing_will_be_saved(tmp_path):
    app = lab_app(epochs=1)
    async with app.run_test(size=(120, 40)) as pilot:
        lab = app.screen
        lab.query_one("#lab-checkpoint", Input).value = ""
        await pilot.press("space")
        await until(pilot, lambda: lab.figures.reason == "finished")
        assert "nothing will be saved" in shown(lab.query_one("#lab-notice"))
        await pilot.press("4")
        await pilot.pause(0.2)
        lines = [str(line.text) for line in lab.query_one("#lab-log", RichLog).lines]
        assert not any("checkpoint holds" in line or "saved to" in line for line in lines)
        assert any("nothing was saved" in line for line in lines)


def test_no_validation_split_keeps_each_step_in_its_own_epoch(tmp_path):
    checkpoint = tmp_path / "run.npz"
    config = TrainConfig(**SMALL, epochs=2, val_fraction=0.0, checkpoint=str(checkpoint))
    session = LabSession([LabRun(config)])
    session.run(lambda figures: None, every=0.0)
    with figure_paths(checkpoint)[1].open() as handle:
        epochs = [int(row["epoch"]) for row in csv.DictReader(handle)]
    per_epoch = 47  # shapes: all 3,000 training images in batches of 64, none held out
    assert epochs == [1] * per_epoch + [2] * per_epoch
    figures = session.runs[0].figures
    assert figures.val_accuracies == [] and "no validation split" in " ".join(figures.log)


def _image_folder(root: Path) -> Path:
    for name, value in (("dark", 20), ("light", 230)):
        (root / name).mkdir(parents=True)
        for i in range(6):
            Image.new("L", (8, 8), value + i).save(root / name / f"{i}.png")
    (root / "light" / "bad.png").write_bytes(b"garbage")
    (root / "empty").mkdir()
    return root


async def test_the_lab_reports_skipped_images_and_empty_classes(tmp_path):
    folder = _image_folder(tmp_path / "set")
    app = lab_app(data=str(folder), batch_size=4, epochs=1)
    async with app.run_test(size=(120, 40)) as pilot:
        lab = app.screen
        await pilot.press("space")
        await until(pilot, lambda: lab.figures.reason == "finished")
        notice = shown(lab.query_one("#lab-notice"))
        assert "skipped 1 image" in notice and "empty" in notice
        await pilot.press("4")
        await pilot.pause(0.2)
        lines = " ".join(str(line.text) for line in lab.query_one("#lab-log", RichLog).lines)
        assert "bad.png" in lines and "'empty' has no images" in lines


# ------------------------------------------------------------------------------- served
@pytest.fixture
def shared(tmp_path, monkeypatch):
    folder = tmp_path / "shared"
    folder.mkdir()
    (folder / "seven.png").write_bytes((ROOT / "sample_images" / "digits" / "7.png").read_bytes())
    monkeypatch.setenv(SERVED, str(folder))
    monkeypatch.chdir(tmp_path)  # the server's own folder is not the shared one
    return folder


async def test_served_a_drawn_image_typed_by_its_name_in_the_shared_folder_is_read(shared):
    from nnsim.tui.screens.draw import DrawScreen

    app = NnsimApp(progress=ProgressStore(), lab=TrainConfig(**SMALL))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("d")
        screen = app.screen
        assert isinstance(screen, DrawScreen)
        field = screen.query_one("#draw-path", Input)
        field.value = "seven.png"
        field.focus()
        await pilot.press("enter")
        await settle(pilot)
        assert "not available here" not in shown(screen.query_one("#draw-steps"))
        assert "seven.png" in shown(screen.query_one("#draw-steps")) and screen.reading is not None


def test_served_each_tabs_lab_folder_is_removed_when_its_app_exits(tmp_path):
    script = (
        "from nnsim.engine.config import TrainConfig\n"
        "from nnsim.tui.live.lab_files import default_checkpoint\n"
        "a = default_checkpoint(TrainConfig()); b = default_checkpoint(TrainConfig(model='vit'))\n"
        "assert a.parent == b.parent and a.parent.is_dir()\n"
        "print(a.parent)\n"
    )
    env = {**os.environ, SERVED: str(tmp_path), "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    folder = Path(result.stdout.strip())
    assert folder.name.startswith("nnsim-lab-") and not folder.exists()


@pytest.mark.parametrize("case", ["device", "fifo", "too-big"])
async def test_data_the_lab_cannot_train_on_is_one_message(tmp_path, monkeypatch, case):
    from nnsim.engine import memory

    data = {"device": "/dev/zero", "fifo": str(tmp_path / "pipe.npz"), "too-big": "shapes"}[case]
    if case == "fifo":
        os.mkfifo(data)
    if case == "too-big":
        monkeypatch.setattr(memory, "available_memory", lambda: 2**20)  # a machine with 1 MiB free
    expected = {"device": "a device or a pipe", "fifo": "a device or a pipe", "too-big": "MiB"}[case]
    app = lab_app(data=data)
    async with app.run_test(size=(120, 40)) as pilot:
        lab = app.screen
        await pilot.press("space")
        await until(pilot, lambda: lab.query_one("#lab-start").label.plain == "▶ Start")
        status = shown(lab.query_one("#lab-status"))
        assert lab.session is None and expected in status and "Traceback" not in status, status
        if case == "too-big":
            assert "needs about" in status and "--batch-size" in status
