from pathlib import Path

import pytest

from nnsim.tui.app import NnsimApp
from nnsim.tui.progress import ProgressStore

LESSONS = Path(__file__).resolve().parents[2] / "lessons"


@pytest.fixture(autouse=True)
def own_progress(tmp_path, monkeypatch):
    """Every test starts with no progress, kept in its own folder (never the user's)."""
    monkeypatch.setenv("NNSIM_HOME", str(tmp_path / "home"))
    return tmp_path / "home" / "progress.json"


def make_app(lesson: Path | None = None) -> NnsimApp:
    return NnsimApp(lesson=lesson, progress=ProgressStore())


async def settle(pilot, seconds: float = 60.0) -> None:
    """Wait until every worker has finished (widgets compute in workers) and what they drew is shown.

    Fails, rather than going on with a half-drawn screen, if that takes longer than `seconds`.
    """
    import asyncio

    await pilot.pause()
    await asyncio.wait_for(pilot.app.workers.wait_for_complete(), seconds)
    await pilot.pause()


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
