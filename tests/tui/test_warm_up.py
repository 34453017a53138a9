"""The app warms the cpu kernels in the background (nnsim/tui/warm_up.py): once, after the home
screen has painted, with its progress in the header, and never outliving the app."""

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nnsim.tui.app
from nnsim import serving
from nnsim.tui.app import NnsimApp
from nnsim.tui.live import lab_session
from nnsim.tui.progress import ProgressStore
from nnsim.tui.screens.home import HomeScreen
from nnsim.tui.screens.lab import LabScreen
from tests.engine.test_warm_up import alive, wait_until_gone


def stand_in(tmp_path, then: str = "time.sleep(600)") -> list[str]:
    """A background warm-up that notes its pid and its helper's, reports 4/9, then does `then`
    (by default it runs on, ignoring its input, as a compiler busy in LLVM would)."""
    code = textwrap.dedent(
        f"""
        import os, subprocess, sys, time
        helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        with open({str(tmp_path / "started")!r}, "a") as started:
            started.write(f"{{os.getpid()}} {{helper.pid}}\\n")
        print("progress\\tlayer norm\\t4\\t9", flush=True)
        {then}
        """
    )
    return [sys.executable, "-c", code]


async def until(pilot, condition, seconds: float = 60) -> None:
    """Wait, letting the app run, until `condition()` holds; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "waited in vain"
        await pilot.pause(0.02)


class Recording(NnsimApp):
    """Notes what was on the screen when the warm-up began, and every note shown."""

    CSS_PATH = Path(nnsim.tui.app.__file__).with_name(NnsimApp.CSS_PATH)

    def warm_up_kernels(self):
        lessons = self.screen.query_one("#lessons")
        self.screen_at_start = (type(self.screen), lessons.region.height > 0)
        return super().warm_up_kernels()

    def notify(self, message, **options):
        self.notes = [*getattr(self, "notes", []), message]
        return super().notify(message, **options)


async def test_one_warm_up_starts_after_home_paints_shows_its_progress_and_ends_with_the_app(tmp_path):
    app = Recording(progress=ProgressStore(), warm_up=stand_in(tmp_path))
    usual = app.sub_title
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: "preparing kernels 4/9" in app.sub_title)
        assert app.sub_title == f"{usual} · preparing kernels 4/9"
        assert app.screen_at_start == (HomeScreen, True)
        await pilot.press("l")  # the lab, and back: nothing more is started
        await until(pilot, lambda: isinstance(app.screen, LabScreen))
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, HomeScreen))
        await pilot.press("enter")  # a lesson
        await pilot.pause()
        started = (tmp_path / "started").read_text().split("\n")[:-1]
        assert len(started) == 1
        pids = [int(pid) for pid in started[0].split()]
        assert all(alive(pid) for pid in pids)
    for pid in pids:  # the app has ended: its warm-up and the helper with it
        wait_until_gone(pid)


async def test_a_note_is_shown_once_and_the_header_is_restored_when_ready(tmp_path):
    then = 'print("note\\tthe kernels compile in memory", flush=True); print("ready", flush=True)'
    app = Recording(progress=ProgressStore(), warm_up=stand_in(tmp_path, then))
    usual = app.sub_title
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.warm_up_process is not None and app.warm_up_process.returncode is not None)
        await until(pilot, lambda: app.sub_title == usual)
        assert app.notes == ["the kernels compile in memory"]


async def test_once_the_kernels_are_ready_the_app_loads_them_while_the_learner_reads(tmp_path, monkeypatch):
    loaded = []
    monkeypatch.setattr(lab_session, "prepare_backend", lambda name, report: loaded.append(name))
    app = Recording(progress=ProgressStore(), warm_up=stand_in(tmp_path, 'print("ready", flush=True)'))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: loaded == ["cpu"])


async def test_a_served_tab_leaves_the_kernels_to_its_lab(tmp_path, monkeypatch):
    loaded = []
    monkeypatch.setattr(lab_session, "prepare_backend", lambda name, report: loaded.append(name))
    monkeypatch.setattr(serving, "served", lambda: True)
    app = Recording(progress=ProgressStore(), warm_up=stand_in(tmp_path, 'print("ready", flush=True)'))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.warm_up_process is not None and app.warm_up_process.returncode is not None)
        await until(pilot, lambda: not any(worker.is_running for worker in app.workers))
        assert loaded == []


async def test_no_command_no_warm_up(tmp_path):
    app = NnsimApp(progress=ProgressStore())
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.warm_up_process is None and not app.workers


PAINT_WITHOUT_NUMBA = """
import asyncio, sys
from nnsim.tui.app import NnsimApp
from nnsim.tui.progress import ProgressStore

SHOWS_4_OF_9 = "import time; print('progress\\tx\\t4\\t9', flush=True); time.sleep(600)"

async def main():
    app = NnsimApp(progress=ProgressStore(), warm_up=[sys.executable, "-c", SHOWS_4_OF_9])
    async with app.run_test(size=(120, 40)) as pilot:
        while "4/9" not in app.sub_title:
            await pilot.pause(0.02)
        print("numba" in sys.modules)

asyncio.run(main())
"""


def test_the_app_shows_the_warm_up_without_importing_numba(tmp_path):
    env = {**os.environ, "NNSIM_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", PAINT_WITHOUT_NUMBA], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False"]


def test_the_stand_in_speaks_the_background_process_protocol():
    from nnsim.engine.backends.warm import read_line

    assert read_line("progress\tlayer norm\t4\t9\n") == ("progress", "layer norm", 4, 9)
    assert asyncio.iscoroutinefunction(NnsimApp.warm_up_kernels.__wrapped__)
