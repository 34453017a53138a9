"""The lab's buttons, with the refused values beside them; the start button says what space does."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button

from nnsim.tui.live.lab_files import EXPORT_TIP
from nnsim.tui.widgets.lab.lines import Line

LABELS = {  # the start button's label in each state of the run
    "idle": "▶ Start",
    "preparing": "… Preparing",
    "running": "❚❚ Pause",
    "paused": "▶ Resume",
    "stopping": "■ Stopping",
    "finished": "▶ Start again",
    "failed": "▶ Start",
}


class Controls(Horizontal):
    """Start/pause, one step, stop, save, resume, export, draw (each runs the screen's action of the
    key that does the same); then why a value was refused."""

    def __init__(self) -> None:
        super().__init__(id="lab-controls")

    def compose(self) -> ComposeResult:
        yield Button("▶ Start", id="lab-start", compact=True, action="screen.toggle")
        yield Button("· Step", id="lab-step", compact=True, action="screen.one_step")
        yield Button("■ Stop", id="lab-stop", compact=True, action="screen.stop")
        yield Button("Save", id="lab-save", compact=True, action="screen.save_as")
        yield Button("Resume", id="lab-resume", compact=True, action="screen.resume_run")
        yield Button("Torch", id="lab-export", compact=True, action="screen.export", tooltip=EXPORT_TIP)
        yield Button("Draw", id="lab-draw", compact=True, action="screen.draw")
        yield Line(id="lab-refused")

    def show_state(self, state: str) -> None:
        button = self.query_one("#lab-start", Button)
        if str(button.label) != LABELS[state]:
            button.label = LABELS[state]
