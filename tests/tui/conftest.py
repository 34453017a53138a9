import time
from pathlib import Path

import pytest
import textual._wait

from nnsim.tui.app import NnsimApp
from nnsim.tui.progress import ProgressStore

LESSONS = Path(__file__).resolve().parents[2] / "lessons"

# Textual's pilot waits after each key and mouse event until "the process" is idle, judged by its
# CPU time; a training or reading worker keeps the process busy, so each wait ran to its 1 s cap (a
# lab test pressing 500 keys during training waited 1,000 s). The app handles events on the thread
# that waits, so idle is judged by that thread's CPU time: the same wait as in a quiet process.
textual._wait.process_time = time.thread_time


@pytest.fixture(autouse=True)
def own_progress(tmp_path, monkeypatch):
    """Every test starts with no progress, kept in its own folder (never the user's)."""
    monkeypatch.setenv("NNSIM_HOME", str(tmp_path / "home"))
    return tmp_path / "home" / "progress.json"


def make_app(lesson: Path | None = None) -> NnsimApp:
    return NnsimApp(lesson=lesson, progress=ProgressStore())


async def settle(pilot, seconds: float = 60.0) -> None:
    """Wait until a lesson step's widgets are mounted (after the prose's paint), every worker has
    finished (widgets compute in workers) and the screen has painted what they drew.

    Each wait is for the event itself, never a guess at how long it takes (a busy machine delays
    them all); fails, rather than going on with a half-drawn screen, after `seconds`.
    """
    import asyncio
    import time

    deadline = time.monotonic() + seconds
    await pilot.pause()
    while getattr(pilot.app.screen, "widgets_pending", False):
        assert time.monotonic() < deadline, "the step's widgets were never mounted"
        await painted(pilot.app, deadline - time.monotonic())
    await asyncio.wait_for(finished(list(pilot.app.workers)), max(0.0, deadline - time.monotonic()))
    await painted(pilot.app, deadline - time.monotonic())
    await pilot.pause()


async def until(pilot, condition, seconds: float = 60.0, what: str = "the app did not get there") -> None:
    """Let the app run until condition() holds, looking again after each refresh; fail (never hang)
    after `seconds`: a wait for an event, not a guess at how long it takes."""
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what} in {seconds:g} s"
        await pilot.pause(0.02)


async def finished(workers) -> None:
    """Wait for each worker to end; one cancelled (its widget left with the step before) has ended too."""
    from textual.worker import WorkerCancelled

    for worker in workers:
        try:
            await worker.wait()
        except WorkerCancelled:
            pass


async def painted(app, seconds: float) -> None:
    """Wait until the app has handled the messages sent so far and refreshed its screen."""
    import asyncio

    done = asyncio.Event()
    app.call_after_refresh(done.set)
    await asyncio.wait_for(done.wait(), max(0.0, seconds))


def shown(widget) -> str:
    """The plain text a Static shows (its text, or a Rich table as printed)."""
    import io

    from rich.console import Console

    content = widget.content
    if isinstance(content, str):
        return content
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(content)
    return console.file.getvalue()
