"""CnnVsVit: what one CNN output can see (local, growing with depth) beside one ViT token (global)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Static

from nnsim.errors import NnsimError
from nnsim.lessons.params import CnnVsVitParams
from nnsim.tui.images import half_blocks, heat, resolve_image, to_rgb
from nnsim.tui.live.vision import VitFigures, receptive_field, vit_figures


class CnnVsVit(Vertical, can_focus=True):
    """d switches the CNN's depth (block 1 or 2)."""

    BINDINGS = [Binding("d", "depth", "CNN depth")]

    depth: reactive[int] = reactive(1, init=False)

    def __init__(self, params: CnnVsVitParams, base: Path | None = None):
        super().__init__()
        self.params = params
        self.base = base
        self.figures: VitFigures | None = None

    def compose(self) -> ComposeResult:
        yield Static("What one output sees: a CNN beside a ViT, on the same image", classes="widget-title")
        with Horizontal(id="versus-body"):
            yield Static(id="versus-cnn")
            yield Static(id="versus-vit")
        yield Static(id="versus-note")

    def on_mount(self) -> None:
        self.query_one("#versus-note", Static).update("computing…")
        self.compute()

    @work(thread=True, exclusive=True)
    def compute(self) -> None:
        try:
            figures = vit_figures(resolve_image(self.params.image, self.base))
        except NnsimError as error:
            self.app.call_from_thread(self.query_one("#versus-note", Static).update, Text(str(error), style="red"))
            return
        self.app.call_from_thread(self._computed, figures)

    def _computed(self, figures: VitFigures) -> None:
        self.figures = figures
        self.redraw()

    def watch_depth(self) -> None:
        self.redraw()

    def redraw(self) -> None:
        f = self.figures
        if f is None:
            return
        image = f.image
        grid = 14 // (2 ** (self.depth - 1))  # block d's output grid (28 halved per block)
        row, col = min(self.params.row, grid - 1), min(self.params.col, grid - 1)
        top, left, size = receptive_field(self.depth, row, col)
        rgb = to_rgb(image) * 0.45
        t, b = max(top, 0), min(top + size, image.shape[0])
        lft, r = max(left, 0), min(left + size, image.shape[1])
        rgb[t:b, lft:r] = np.clip(rgb[t:b, lft:r] + np.array([0.1, 0.5, 0.9]) * 0.6, 0, 1)
        seen = (b - t) * (r - lft)
        cnn = half_blocks(rgb)
        cnn.append(f"\nCNN block {self.depth}, output ({row}, {col})", style="bold")
        cnn.append(f"\nsees {b - t}×{r - lft} pixels: {seen / image.size:.0%} of the image", style="dim")
        self.query_one("#versus-cnn", Static).update(cnn)
        cells = f.grid[0] * f.grid[1]
        token = 1 + min(self.params.row, f.grid[0] - 1) * f.grid[1] + min(self.params.col, f.grid[1] - 1)
        weights = f.attention[0][:, token, 1:].mean(axis=0).reshape(f.grid)
        vit = half_blocks(heat(image, weights))
        vit.append(f"\nViT block 1, patch {token - 1}'s attention", style="bold")
        reach = int((weights > 1e-3).sum())
        vit.append(f"\nreaches {reach} of {cells} patches at once", style="dim")
        self.query_one("#versus-vit", Static).update(vit)
        self.query_one("#versus-note", Static).update(
            "A convolution sees only its kernel's neighbourhood; stacking blocks (d) widens the view step by "
            "step. A ViT token weighs every patch already in its first block: global context from the start, "
            "at the cost of comparing every pair of tokens."
        )

    def action_depth(self) -> None:
        self.depth = 2 if self.depth == 1 else 1
