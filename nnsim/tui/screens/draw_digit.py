"""A digit drawn for a lesson widget: a canvas over the lesson; Enter hands the drawing back."""

from __future__ import annotations

import numpy as np
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from nnsim.tui.screens.draw import DrawCanvas


class DrawDigitScreen(ModalScreen[np.ndarray | None]):
    """Draw with the mouse or the arrows (space: pen up/down, c: clear); Enter: use it; Escape: cancel."""

    BINDINGS = [Binding("enter", "use", "Use this drawing"), Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="draw-digit"):
            yield Static("Draw a digit (drag the mouse, or arrows and space; c clears)", classes="widget-title")
            yield DrawCanvas(id="draw-digit-canvas")
            yield Static("Enter: show it to the network · Escape: cancel", id="draw-digit-keys")

    def on_mount(self) -> None:
        self.query_one(DrawCanvas).focus()

    def action_use(self) -> None:
        pixels = self.query_one(DrawCanvas).canvas.pixels
        self.dismiss(pixels.copy() if pixels.any() else None)

    def action_cancel(self) -> None:
        self.dismiss(None)
