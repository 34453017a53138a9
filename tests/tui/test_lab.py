"""The lab by keys: open it, start, pause, one step, resume, a new learning rate, stop."""

import asyncio
import sys
import time

import numpy as np
import pytest
from textual.widgets import Input, RichLog

from nnsim.engine.config import TrainConfig
from nnsim.tui.app import NnsimApp
from nnsim.tui.progress import ProgressStore
from nnsim.tui.screens.home import HomeScreen
from nnsim.tui.screens.lab import LabScreen
from tests.tui.conftest import make_app, settle, shown


async def until(pilot, condition, seconds: float = 60.0) -> None:
    """Let the app run until condition() holds; fail (never hang) after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the lab did not get there in time"
        await pilot.pause(0.05)


def lab_app(**settings) -> NnsimApp:
    # an MLP's steps take milliseconds, so pausing is seen at once; 400 epochs outlast every test
    base = dict(model="mlp", data="shapes", epochs=400, backend="reference", sizes={"hidden": [16]})
    return NnsimApp(progress=ProgressStore(), lab=TrainConfig(**{**base, **settings}))


async def test_l_opens_the_lab_from_home_and_escape_returns():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("l")
        assert isinstance(app.screen, LabScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, HomeScreen)


async def test_start_pause_one_step_resume_and_stop():
    app = lab_app()
    async with app.run_test(size=(120, 40)) as pilot:
        lab = app.screen
        assert isinstance(lab, LabScreen) and lab.state == "idle"  # the name for it (was "ready")
        await pilot.press("space")
        await until(pilot, lambda: lab.session is not None and lab.session.runs[0].figures.step >= 3)
        await pilot.press("space")
        assert lab.state == "paused"
        await pilot.pause(0.3)  # a step already under way may finish; then nothing moves
        steps = lab.session.runs[0].figures.step
        await pilot.pause(0.5)
        assert lab.session.runs[0].figures.step == steps
        await pilot.press("full_stop")
        await until(pilot, lambda: lab.session.runs[0].figures.step == steps + 1)
        await pilot.pause(0.3)
        assert lab.session.runs[0].figures.step == steps + 1 and lab.state == "paused"
        lr = lab.query_one("#lab-lr", Input)
        lr.value = "0.0005"
        lr.focus()
        await pilot.press("enter")
        assert lab.session.runs[0].trainer.optimizer.lr == 0.0005
        lab.query_one("#lab-start").focus()
        await pilot.press("space")
        await until(pilot, lambda: lab.session.runs[0].figures.step > steps + 2)
        await pilot.press("x")
        await until(pilot, lambda: lab.state == "finished")
        await until(pilot, lambda: lab.figures.reason == "stopped")  # the figures drawn last
        assert lab.figures.step > steps + 2
        await pilot.press("4")  # the log's tab
        await pilot.pause(0.2)
        lines = [str(line.text) for line in lab.query_one("#lab-log", RichLog).lines]
        assert any("learning rate set to 0.0005" in line for line in lines)
        assert "stopped after" in shown(lab.query_one("#lab-status"))


async def test_a_finished_run_shows_its_figures_and_a_bad_setting_is_one_line():
    app = lab_app(epochs=1)
    async with app.run_test(size=(120, 40)) as pilot:
        lab = app.screen
        await pilot.press("space")
        await until(pilot, lambda: lab.figures.state == "finished")
        figures = lab.figures
        assert figures.confusion.sum() == 300 and len(figures.samples) == 8  # 10 % of shapes' 3,000
        await settle(pilot)  # the worker has ended: Python's GIL switching is back to its usual pace
        assert sys.getswitchinterval() == pytest.approx(0.005)
        assert "validation: true (rows)" in shown(lab.query_one("#lab-confusion"))
        assert "validation accuracy" in shown(lab.query_one("#lab-status"))
        lab.query_one("#lab-batch", Input).value = "many"
        await pilot.press("space")
        await pilot.pause(0.1)
        assert "the batch size must be a whole number" in shown(lab.query_one("#lab-status"))
        await asyncio.sleep(0)


# ------------------------------------------------------------------------------- draw a digit
async def draw(pilot, strokes, columns: int = 40, rows: int = 20) -> None:
    """Draw with the mouse, as a learner does: press, move through the points, release."""
    for stroke in strokes:
        cells = []
        for x, y in stroke:  # each point as the cell under it; a cell once, however many points it holds
            cell = (min(int(x * columns), columns - 1), min(int(y * 2 * rows) // 2, rows - 1))
            if not cells or cells[-1] != cell:
                cells.append(cell)
        await pilot.mouse_down("#draw-canvas", offset=cells[0])
        for cell in cells[1:]:
            await pilot.hover("#draw-canvas", offset=cell)
        await pilot.mouse_up("#draw-canvas", offset=cells[-1])


async def read(pilot, screen) -> None:
    """Wait until the drawing screen has read the latest drawing (it reads every 0.15 s, in a worker)."""

    await until(pilot, lambda: not screen._dirty)
    await settle(pilot)
    assert screen.reading is not None


async def test_digits_drawn_with_the_mouse_are_read_right():
    from nnsim.tui.screens.draw import DrawScreen
    from tests.tui.strokes import DIGITS

    app = lab_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("d")
        screen = app.screen
        assert isinstance(screen, DrawScreen)
        right = []
        for digit, strokes in DIGITS.items():
            await pilot.click("#draw-clear")
            await draw(pilot, strokes)
            await read(pilot, screen)
            reading = screen.reading
            right.append(reading.predicted == digit)
            assert f"it reads a {reading.class_names[reading.predicted]}" in shown(screen.query_one("#draw-bars"))
        assert sum(right) >= 8, right
        assert "centred by mass in 28×28" in shown(screen.query_one("#draw-steps"))
        assert "occlusion" in shown(screen.query_one("#draw-occlusion"))
        await pilot.press("escape")
        assert isinstance(app.screen, LabScreen)


async def test_the_softmax_bars_fit_their_column_at_every_size_and_the_steps_give_way_when_narrow():
    app = lab_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("d")
        screen = app.screen
        await pilot.press("space", *["down"] * 8, "space")  # a vertical line: a reading to show
        await read(pilot, screen)
        steps, bars = screen.query_one("#draw-steps"), screen.query_one("#draw-bars")
        for size in [(120, 40), (80, 24), (64, 20), (120, 40)]:
            await pilot.resize_terminal(*size)
            await settle(pilot)
            await pilot.pause()
            assert steps.display == (size[0] >= 116), size  # the preprocessing pictures only where there is room
            lines = shown(bars).rstrip("\n").splitlines()
            classes = lines[1:-1]  # a line a class: none may wrap (the title may, at the smallest size)
            assert "→ it reads a" in lines[-1] and max(map(len, classes)) <= bars.content_region.width, size
            longest = min(24, bars.content_region.width - 16)  # the longest bar the column holds
            best = max(line.count("█") for line in classes)
            assert best == round(screen.reading.probabilities.max() * longest) > 0, size


async def test_the_keys_draw_too_and_an_image_file_is_read(tmp_path):
    from PIL import Image

    app = lab_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("d")
        screen = app.screen
        await pilot.press("space", *["down"] * 8, "space")  # the pen down, a vertical line, the pen up
        await read(pilot, screen)
        assert screen.query_one("#draw-canvas").canvas.pixels.sum() > 0 and screen.reading is not None
        await pilot.press("c")
        assert screen.query_one("#draw-canvas").canvas.empty
        image = np.full((56, 56), 255, dtype=np.uint8)  # black ink on white paper, twice MNIST's size
        image[8:48, 26:30] = 0
        Image.fromarray(image).save(tmp_path / "one.png")
        field = screen.query_one("#draw-path", Input)
        field.value = str(tmp_path / "one.png")
        field.focus()
        await pilot.press("enter")
        await settle(pilot)
        steps = shown(screen.query_one("#draw-steps"))
        assert "inverted" in steps and "one.png" in steps
        assert screen.reading.class_names[screen.reading.predicted] == "1"
        field.value = str(tmp_path / "missing.png")
        await pilot.press("enter")
        await settle(pilot)
        assert "missing.png" in shown(screen.query_one("#draw-steps"))


# ------------------------------------------------------------------------------- compare, doctor, files
async def test_compare_trains_a_cnn_and_a_vit_to_the_end_with_both_curves_and_a_summary():
    from textual.widgets import Select

    app = NnsimApp(progress=ProgressStore(), lab=TrainConfig(model="cnn", data="mnist-mini", epochs=1, backend="cpu"))
    async with app.run_test(size=(120, 40)) as pilot:
        lab = app.screen
        lab.query_one("#lab-compare", Select).value = "model-vit"
        await pilot.press("space")
        await until(pilot, lambda: lab.session is not None and lab.session.state == "finished", 300)
        await until(pilot, lambda: len(lab.compared) == 2 and all(f.reason for f in lab.compared))
        cnn, vit = lab.compared
        assert cnn.val_accuracies and vit.val_accuracies and cnn.step == vit.step == 141
        await pilot.press("3")
        await pilot.pause(0.2)
        summary = shown(lab.query_one("#lab-summary"))
        assert "model" in summary and "cnn" in summary and "vit" in summary
        assert f"{cnn.best_accuracy:.2%}" in summary and f"{vit.best_accuracy:.2%}" in summary
        plot = lab.query_one("#lab-compare-loss").plt
        assert len(plot._active.monitor.y) == 2  # both runs' loss curves, overlaid


async def test_the_doctor_sees_a_diverging_run_and_f_lowers_the_learning_rate():
    app = lab_app(optimizer="sgd", lr=200.0)
    async with app.run_test(size=(120, 40)) as pilot:
        lab = app.screen
        await pilot.press("space")
        await until(pilot, lambda: lab.hints)
        assert lab.hints[0].problem == "learning rate too high"
        assert "learning rate too high" in shown(lab.query_one("#lab-doctor"))
        await pilot.press("x")
        await until(pilot, lambda: lab.state == "finished")
        await pilot.press("f")
        assert lab.query_one("#lab-lr", Input).value == "20"


async def test_quitting_mid_epoch_saves_and_r_resumes_from_there(tmp_path):
    checkpoint = tmp_path / "mine.npz"
    app = lab_app(checkpoint=str(checkpoint))
    async with app.run_test(size=(120, 40)) as pilot:
        lab = app.screen
        await pilot.press("space")
        await until(pilot, lambda: lab.session is not None and lab.session.runs[0].figures.step >= 50)
        await pilot.press("space")  # paused, somewhere in an epoch
        run = lab.session.runs[0]
        await pilot.press("q")
    assert run.figures.reason == "stopped" and checkpoint.is_file()
    steps, losses = run.figures.step, run.figures.losses
    app = lab_app(checkpoint=str(checkpoint))
    async with app.run_test(size=(120, 40)) as pilot:
        lab = app.screen
        await pilot.press("r")
        await until(pilot, lambda: lab.session is not None and lab.session.runs[0].figures.step > steps)
        await pilot.press("x")
        resumed = lab.session.runs[0].figures
        assert resumed.losses[:steps] == losses  # the curve so far, then more of it
        assert any(line.startswith("resumed from") for line in resumed.log)


async def test_l_from_a_lesson_opened_from_the_lab_returns_to_the_same_lab():
    app = lab_app()
    async with app.run_test(size=(120, 40)) as pilot:
        lab = app.screen
        app.open_lesson(app.entries[8])  # as the doctor's o does
        await pilot.pause()
        assert not isinstance(app.screen, LabScreen)
        await pilot.press("l")
        assert app.screen is lab and sum(isinstance(s, LabScreen) for s in app.screen_stack) == 1
