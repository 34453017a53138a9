"""LabLink: "try it in the lab" — a lesson's experiment, opened in the lab with one key or a click."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Button, Static

from nnsim.engine.experiment import changes_words
from nnsim.lessons.params import LabLinkParams

KEY = "L"  # the lesson screen's key for a step's first lab link (l alone opens the lab as it is)


class LabLink(Vertical):
    """The settings, what to watch, and a button; L (on the lesson screen) or Enter presses it."""

    class Open(Message):
        """The learner asked for the lab with this link's settings; the lesson screen opens it."""

        def __init__(self, params: LabLinkParams) -> None:
            super().__init__()
            self.params = params

    def __init__(self, params: LabLinkParams, base: Path | None = None):
        super().__init__()
        self.params = params

    def compose(self) -> ComposeResult:
        params = self.params
        yield Static("Try it in the lab", classes="widget-title")
        what = Text("settings: ", style="bold")
        what.append(changes_words(params.settings) or "the lab's own")
        if params.compare:
            what.append("\ncompared with: ", style="bold")
            what.append(changes_words(params.compare))
        what.append("\n" + ("trains as the lab opens" if params.start else "press space in the lab to train"))
        yield Static(what, id="lab-link-settings")
        watch = Text("Watch: ", style="bold")
        watch.append(params.watch)
        yield Static(watch, id="lab-link-watch")
        yield Button(f"▶ Open the lab ({KEY})", id="lab-link-open", compact=True)
        yield Static("Escape in the lab comes back to this step.", classes="dim")

    def focus(self, scroll_visible: bool = True):
        return self.query_one(Button).focus(scroll_visible)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.open()

    def open(self) -> None:
        self.post_message(self.Open(self.params))
