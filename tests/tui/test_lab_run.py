"""The life of a lab run, by keys pressed as fast as the test can: one run at a time, every key a
request the run's state accepts or refuses, and q or escape stop, wait, save and only then leave."""

import csv
import os
import random
import sys
import threading
import time

import numpy as np
import pytest
from textual.widgets import Input, Select

from nnsim.engine.checkpoint import load_checkpoint
from nnsim.engine.config import TrainConfig
from nnsim.engine.runfiles import run_files
from nnsim.engine.trainer import Trainer
from nnsim.tui.app import NnsimApp
from nnsim.tui.live.lab import LabRun
from nnsim.tui.live.lab_figures import best_path, figure_paths
from nnsim.tui.progress import ProgressStore
from nnsim.tui.screens.home import HomeScreen
from nnsim.tui.screens.lab import LabScreen
from tests.tui.conftest import shown
from tests.tui.test_lab import lab_app, until

PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__import__("nnsim").__file__)))


def training_threads() -> list[threading.Thread]:
    """The threads (other than this one) with the engine or the lab on their stack: the runs alive."""
    frames = sys._current_frames()
    found = []
    for thread in threading.enumerate():
        if thread is threading.current_thread():
            continue
        frame = frames.get(thread.ident)
        while frame is not None:
            name = frame.f_code.co_filename
            if name.startswith(PACKAGE) and (os.sep + "live" + os.sep in name or os.sep + "engine" + os.sep in name):
                found.append(thread)
                break
            frame = frame.f_back
    return found


def wait_for_no_runs(seconds: float = 5.0) -> None:
    """Every run has ended within `seconds` (none trains on behind a closed app)."""
    deadline = time.monotonic() + seconds
    while training_threads():
        assert time.monotonic() < deadline, f"{len(training_threads())} run(s) still training after the app closed"
        time.sleep(0.02)


def steps_of(checkpoint) -> list[int]:
    with open(figure_paths(checkpoint)[1], newline="") as handle:
        return [int(row["step"]) for row in csv.DictReader(handle)]


def assert_one_run_on_disk(checkpoint) -> None:
    """The run's files, each loadable, its steps strictly increasing, and nothing else in the folder."""
    names = {path.name for path in run_files(checkpoint).all}
    assert {path.name for path in checkpoint.parent.iterdir()} <= names
    _, meta = load_checkpoint(checkpoint)
    steps = steps_of(checkpoint)
    assert steps == sorted(set(steps)) and steps[-1] == meta["steps"]
    if best_path(checkpoint).exists():
        load_checkpoint(best_path(checkpoint))


@pytest.fixture
def gate(monkeypatch):
    """A run is built only when the test lets it (gate.set()): a start stays in its preparation, as a
    CNN's does while its data loads and its kernels compile, for as long as the test needs."""
    gate = threading.Event()
    gate.set()
    build = LabRun.__init__

    def built_when_let(self, *args, **kwargs):
        assert gate.wait(30)
        build(self, *args, **kwargs)

    monkeypatch.setattr(LabRun, "__init__", built_when_let)
    return gate


def status(lab) -> str:
    return shown(lab.query_one("#lab-status"))


async def stopped(pilot, lab) -> None:
    await until(pilot, lambda: lab.state == "finished")


async def test_space_x_space_space_trains_one_run_and_q_ends_it(tmp_path, gate):
    """The issue's first sequence: after x, two quick spaces started two runs into the same files."""
    checkpoint = tmp_path / "dup.npz"
    app = lab_app(checkpoint=str(checkpoint))
    async with app.run_test(size=(120, 40)) as pilot:
        lab = app.screen
        await pilot.press("space")
        await until(pilot, lambda: lab.figures.step >= 5)
        await pilot.press("x")
        await stopped(pilot, lab)
        gate.clear()
        await pilot.press("space", "space")  # a start, then a second space while it prepares
        gate.set()
        await until(pilot, lambda: lab.state == "running" and lab.figures.step >= 5)
        assert len(training_threads()) == 1
        await pilot.press("x")
        await stopped(pilot, lab)
        await pilot.press("space", "space", "space", "q")
    wait_for_no_runs()
    assert_one_run_on_disk(checkpoint)


async def test_x_then_space_and_r_at_once_trains_one_run(tmp_path, gate):
    """The issue's second sequence: x, then space and r within 0.2 s trained two runs; q left one going."""
    checkpoint = tmp_path / "run.npz"
    app = lab_app(checkpoint=str(checkpoint))
    async with app.run_test(size=(120, 40)) as pilot:
        lab = app.screen
        await pilot.press("space")
        await until(pilot, lambda: lab.figures.step >= 5)
        await pilot.press("x")
        await stopped(pilot, lab)
        gate.clear()
        await pilot.press("space", "r")
        gate.set()
        await until(pilot, lambda: lab.state == "running" and lab.figures.step >= 5)
        assert len(training_threads()) == 1
        await pilot.press("q")
    wait_for_no_runs()
    assert_one_run_on_disk(checkpoint)


async def test_figures_the_last_run_sent_before_a_new_start_are_not_drawn(tmp_path, gate):
    """A message with the last run's figures, still queued when the next run starts, drew them with no
    class names yet (the new run's data still loading): the validation samples' labels then raised
    IndexError, and the app crashed. It is now dropped: the screen draws only the run under way."""
    from nnsim.tui.messages import Progress

    app = lab_app(checkpoint=str(tmp_path / "run.npz"))
    sent = []
    async with app.run_test(size=(120, 40)) as pilot:
        lab = app.screen
        publish = lab.control._publish
        lab.control._publish = lambda figures: (sent.append((figures, lab.control.session)), publish(figures))
        await pilot.press("space")
        await until(pilot, lambda: lab.figures.samples)  # validated once: samples with predicted classes
        await pilot.press("x")
        await stopped(pilot, lab)
        gate.clear()
        await pilot.press("space")  # preparing: no classes yet
        lab.post_message(Progress(*sent[-1]))  # as if sent just before the end and drawn only now
        await pilot.press("2", "1")  # the curves tab drawn again, with its samples
        assert lab.state == "preparing" and not lab.figures.samples and lab.figures.step == 0
        gate.set()
        await until(pilot, lambda: lab.state == "running" and lab.figures.samples)
        await pilot.press("2", "1", "q")
    wait_for_no_runs()


async def test_q_during_a_comparison_saves_both_runs(tmp_path):
    checkpoint = tmp_path / "a.npz"
    app = lab_app(checkpoint=str(checkpoint))
    async with app.run_test(size=(120, 40)) as pilot:
        lab = app.screen
        lab.query_one("#lab-compare", Select).value = "lr-down"
        await pilot.press("space")
        await until(pilot, lambda: len(lab.compared) == 2 and min(f.step for f in lab.compared) >= 5)
        runs = lab.session.runs
        await pilot.press("q")
    wait_for_no_runs()
    assert [run.figures.reason for run in runs] == ["stopped", "stopped"]
    for run in runs:
        _, meta = load_checkpoint(run.checkpoint)
        assert meta["steps"] == run.figures.step
    assert runs[1].checkpoint != runs[0].checkpoint and runs[1].checkpoint.parent == tmp_path


async def test_escape_stops_waits_for_the_save_and_then_leaves(tmp_path):
    checkpoint = tmp_path / "run.npz"
    app = lab_app(checkpoint=str(checkpoint))
    async with app.run_test(size=(120, 40)) as pilot:
        lab = app.screen
        await pilot.press("space")
        await until(pilot, lambda: lab.figures.step >= 5)
        await pilot.press("escape")
        assert isinstance(app.screen, HomeScreen)
        assert not training_threads()  # stopped and saved before the screen went
        run = lab.session.runs[0]
        _, meta = load_checkpoint(checkpoint)
        assert meta["steps"] == run.figures.step and run.figures.reason == "stopped"


async def test_keys_the_state_refuses_say_why(tmp_path):
    app = lab_app(checkpoint=str(tmp_path / "run.npz"))
    async with app.run_test(size=(120, 40)) as pilot:
        lab = app.screen
        await pilot.press("x")
        assert "no run to stop" in status(lab)
        await pilot.press("full_stop")
        assert "one step runs while paused" in status(lab)
        await pilot.press("space")
        await until(pilot, lambda: lab.state == "running")
        await pilot.press("full_stop")
        assert "one step runs while paused" in status(lab)
        await pilot.press("r")
        assert "stop this run first" in status(lab)
        await pilot.press("s")
        assert "pause the run" in status(lab)
        await pilot.press("x", "x")
        await stopped(pilot, lab)


# ------------------------------------------------------------------------------- settings
@pytest.mark.parametrize("text", ["inf", "1e400", "nan", "abc", "-1", "0"])
async def test_a_refused_learning_rate_mid_run_stays_said_and_the_box_shows_the_rate_in_force(tmp_path, text):
    app = lab_app(checkpoint=str(tmp_path / "run.npz"), lr=0.002)
    async with app.run_test(size=(120, 40)) as pilot:
        lab = app.screen
        await pilot.press("space")
        await until(pilot, lambda: lab.state == "running" and lab.figures.step >= 2)
        box = lab.query_one("#lab-lr", Input)
        box.value = text
        box.focus()
        await pilot.press("enter")
        trainer = lab.session.runs[0].trainer
        assert trainer.optimizer.lr == 0.002 and box.value == "0.002"
        steps = lab.figures.step
        await until(pilot, lambda: lab.figures.step >= steps + 20)  # many progress lines later
        refused = shown(lab.query_one("#lab-refused"))
        assert "learning rate" in refused and repr(text) in refused
        assert "inf" not in shown(lab.query_one("#lab-doctor"))
        box.value = "0.0005"
        await pilot.press("enter")
        assert trainer.optimizer.lr == 0.0005 and not shown(lab.query_one("#lab-refused")).strip()
        await pilot.press("q")


@pytest.mark.parametrize(
    "box, text, words",
    [
        ("#lab-seed", "-1", "seed"),
        ("#lab-alpha", "nan", "focal α"),
        ("#lab-alpha", "inf", "focal α"),
        ("#lab-gamma", "inf", "focal γ"),
        ("#lab-lr", "1e400", "learning rate"),
        ("#lab-patience", "0", "patience"),
    ],
)
async def test_a_refused_setting_does_not_start_and_says_so_beside_its_box(tmp_path, box, text, words):
    app = lab_app(checkpoint=str(tmp_path / "run.npz"), loss="focal")
    async with app.run_test(size=(120, 40)) as pilot:
        lab = app.screen
        before = lab.query_one(box, Input).value
        lab.query_one(box, Input).value = text
        await pilot.press("space")
        await pilot.pause(0.2)
        assert lab.state in ("idle", "failed") and not training_threads()
        refused = shown(lab.query_one("#lab-refused"))
        assert words in refused and repr(text) in refused
        assert lab.query_one(box, Input).value == before  # the value in force
    assert app.return_code in (None, 0)


def test_the_settings_check_refuses_what_is_not_finite_or_in_range():
    from nnsim.errors import SettingError

    bad = [
        ("lr", float("inf")),
        ("lr", float("nan")),
        ("lr", -1.0),
        ("lr", 0.0),
        ("seed", -1),
        ("gamma", float("inf")),
        ("gamma", float("nan")),
        ("alpha", float("nan")),
        ("alpha", float("inf")),
        ("alpha", [1.0, float("nan")]),
        ("momentum", float("nan")),
        ("weight_decay", float("inf")),
        ("weight_decay", -0.1),
        ("val_fraction", float("nan")),
        ("patience", 0),
    ]
    for name, value in bad:
        with pytest.raises(SettingError) as refused:
            TrainConfig(**{name: value}).resolved()
        assert refused.value.name == name
    TrainConfig(seed=0, lr=1e-3, gamma=0.0, alpha=[0.5, 2.0], weight_decay=0.0).resolved()


# ------------------------------------------------------------------------------- resume, restarts, words
def small_checkpoint(path, model="mlp", steps=7) -> None:
    sizes = {"mlp": {"hidden": [16]}, "cnn": {"channels": [4, 8], "hidden": 16}}[model]
    trainer = Trainer(
        TrainConfig(model=model, data="shapes", backend="reference", max_steps=steps, sizes=sizes, checkpoint=str(path))
    )
    for _ in trainer.run():
        pass


async def test_lab_resume_goes_on_from_the_checkpoints_step(tmp_path):
    saved = tmp_path / "saved.npz"
    small_checkpoint(saved)
    app = NnsimApp(
        progress=ProgressStore(),
        lab=TrainConfig(
            model="mlp",
            data="shapes",
            epochs=400,
            backend="reference",
            sizes={"hidden": [16]},
            resume=str(saved),
            checkpoint=str(tmp_path / "on.npz"),
        ),
        start=True,
    )
    async with app.run_test(size=(120, 40)) as pilot:
        lab = app.screen
        await until(pilot, lambda: lab.session is not None and lab.session.runs[0].figures.step >= 8)
        run = lab.session.runs[0]
        assert run.figures.step - len(run.figures.losses) == 7  # its first step was the checkpoint's 8th
        await pilot.press("q")
    assert steps_of(tmp_path / "on.npz")[0] == 8
    assert load_checkpoint(tmp_path / "on.npz")[1]["steps"] > 7


async def test_lab_resume_of_another_network_is_refused_with_the_clis_words(tmp_path):
    saved = tmp_path / "mlp.npz"
    small_checkpoint(saved)
    config = TrainConfig(model="cnn", data="shapes", backend="reference", resume=str(saved))
    with pytest.raises(Exception) as cli:
        Trainer(config)
    app = NnsimApp(progress=ProgressStore(), lab=config, start=True)
    async with app.run_test(size=(120, 40)) as pilot:
        lab = app.screen
        await until(pilot, lambda: lab.state == "failed" and str(cli.value) in status(lab))
        assert not (tmp_path / "cnn-shapes.npz").exists()


async def test_l_after_escape_from_a_lab_started_at_once_opens_one_that_waits(tmp_path):
    app = lab_app(checkpoint=str(tmp_path / "run.npz"))
    app.lab_start = True
    async with app.run_test(size=(120, 40)) as pilot:
        lab = app.screen
        await until(pilot, lambda: lab.state == "running")
        await pilot.press("escape")
        await pilot.press("l")
        again = app.screen
        assert isinstance(again, LabScreen) and again is not lab
        await pilot.pause(0.3)
        assert again.state == "idle" and not training_threads()


async def test_a_run_that_reaches_its_step_limit_says_so_in_words(tmp_path):
    app = lab_app(checkpoint=str(tmp_path / "run.npz"), max_steps=5)
    async with app.run_test(size=(120, 40)) as pilot:
        lab = app.screen
        await pilot.press("space")
        await stopped(pilot, lab)
        await until(pilot, lambda: lab.figures.reason == "max_steps")
        assert "max_steps" not in status(lab) and "step limit" in status(lab)
        await pilot.press("4")
        await pilot.pause(0.2)
        assert not any("max_steps" in str(line.text) for line in lab.query_one("#lab-log").lines)


def test_images_per_second_count_the_images_a_huge_batch_really_holds():
    from nnsim.tui.live.lab import LabRun

    run = LabRun(
        TrainConfig(
            model="mlp", data="shapes", backend="reference", batch_size=10**7, max_steps=3, sizes={"hidden": [8]}
        )
    )
    images = len(run.trainer.x_train)  # a step's batch holds the whole training set, not 10⁷ images
    seconds = 0.0
    for event in run.events():
        if event.event == "step":
            seconds += images / event.samples_per_s  # the time this step took
            assert run.figures.samples_per_s == pytest.approx(images * event.step / seconds, rel=1e-6)
        if event.event == "done":
            assert run.figures.samples_per_s == pytest.approx(event.samples_per_s, rel=1e-6)


# ------------------------------------------------------------------------------- the stress test
LAB_KEYS = ["space", "full_stop", "x", "y", "f", "s", "r", "1", "2", "3", "4", "d", "o"]


async def test_500_random_keys_during_training_then_q_leaves_one_run_intact(tmp_path):
    (tmp_path / "runs").mkdir()
    checkpoint = tmp_path / "runs" / "run.npz"
    app = lab_app(checkpoint=str(checkpoint), batch_size=256)
    keys = random.Random(26).choices(LAB_KEYS, k=500)
    async with app.run_test(size=(120, 40)) as pilot:
        lab = app.screen
        await pilot.press("space")
        await until(pilot, lambda: lab.state == "running")
        for key in keys:
            await pilot.press(key)
            if app.screen is not lab:  # d draws, o opens a lesson: escape comes back
                await pilot.press("escape")
            assert len(training_threads()) <= 1
        started = time.monotonic()
        await pilot.press("q")
    wait_for_no_runs(max(0.0, 5.0 - (time.monotonic() - started)))
    assert time.monotonic() - started < 5.0
    assert_one_run_on_disk(checkpoint)
    assert np.isfinite(load_checkpoint(checkpoint)[1]["steps"])


# ------------------------------------------------------------------------------- the command line
def test_a_negative_seed_is_refused_in_one_line_before_the_app_opens():
    from tests.test_cli import assert_one_line_error, nnsim

    refused = "argument --seed: the seed must be a whole number >= 0, got -1"
    assert_one_line_error(nnsim("lab", "--seed", "-1", "--start"), refused, code=2)
    assert_one_line_error(nnsim("train", "--seed", "-1"), refused, code=2)


def test_the_app_ending_on_an_error_ends_the_command_non_zero(monkeypatch):
    from nnsim import cli

    def broken(self):
        raise RuntimeError("a bug")

    monkeypatch.setenv("TEXTUAL_DRIVER", "textual.drivers.headless_driver:HeadlessDriver")
    monkeypatch.setattr(NnsimApp, "on_mount", broken)
    assert cli._run_app(lesson=None) == 1
