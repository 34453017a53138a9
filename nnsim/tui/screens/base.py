"""What every nnsim screen shares: a message instead of a broken layout in too small a terminal."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Static

MIN_WIDTH, MIN_HEIGHT = 64, 20


class NnsimScreen(Screen):
    """A screen that hides itself behind a size message when the terminal is smaller than MIN."""

    def compose_too_small(self) -> ComposeResult:
        yield Static(id="too-small")

    def on_mount(self) -> None:
        self._check_size(self.app.size.width, self.app.size.height)

    def on_resize(self, event: events.Resize) -> None:
        self._check_size(event.size.width, event.size.height)

    def _check_size(self, width: int, height: int) -> None:
        small = width < MIN_WIDTH or height < MIN_HEIGHT
        self.set_class(small, "-too-small")
        if small:
            self.query_one("#too-small", Static).update(
                f"nnsim needs a terminal of at least {MIN_WIDTH}×{MIN_HEIGHT};\n"
                f"this one is {width}×{height}.\n\nMake the window larger (q quits)."
            )
