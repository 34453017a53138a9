"""The lab by keys: open it, start, pause, one step, resume, a new learning rate, stop."""

import asyncio
import time

from textual.widgets import Input, RichLog

from nnsim.engine.trainer import TrainConfig
from nnsim.tui.app import NnsimApp
from nnsim.tui.progress import ProgressStore
from nnsim.tui.screens.home import HomeScreen
from nnsim.tui.screens.lab import LabScreen
from tests.tui.conftest import make_app, shown


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
        assert isinstance(lab, LabScreen) and lab.state == "ready"
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
        assert "validation: true (rows)" in shown(lab.query_one("#lab-confusion"))
        assert "validation accuracy" in shown(lab.query_one("#lab-status"))
        lab.query_one("#lab-batch", Input).value = "many"
        await pilot.press("space")
        await pilot.pause(0.1)
        assert "the batch size must be a number" in shown(lab.query_one("#lab-status"))
        await asyncio.sleep(0)
