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
from nnsim.tui.images import frame_window, half_blocks, heat, resolve_image, to_rgb
from nnsim.tui.live.vision import block_grids, cnn_blocks, output_nearest, receptive_field
from nnsim.tui.live.vit import VitFigures, vit_figures, vit_input

FIELD = np.array([0.1, 0.5, 0.9])  # the receptive field's tint
EARLIER = np.array([1.0, 0.85, 0.0])  # the previous block's field, framed inside it


class CnnVsVit(Vertical, can_focus=True):
    """d looks one CNN block deeper (back to block 1 after the last)."""

    BINDINGS = [Binding("d", "depth", "CNN depth")]

    depth: reactive[int] = reactive(1, init=False)

    def __init__(self, params: CnnVsVitParams, base: Path | None = None):
        super().__init__()
        self.params = params
        self.base = base
        self.figures: VitFigures | None = None
        self.blocks = cnn_blocks()  # the shipped CNN's conv blocks: the geometry comes from them

    def compose(self) -> ComposeResult:
        yield Static("What one output sees: a CNN beside a ViT, on the same spot", classes="widget-title")
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
            figures = vit_figures(vit_input(resolve_image(self.params.image, self.base)))
        except NnsimError as error:
            self.app.call_from_thread(self.query_one("#versus-note", Static).update, Text(str(error), style="red"))
            return
        self.app.call_from_thread(self._computed, figures)

    def _computed(self, figures: VitFigures) -> None:
        self.figures = figures
        self.redraw()

    def watch_depth(self) -> None:
        self.redraw()

    @property
    def patch(self) -> tuple[int, int]:
        """The ViT patch looked at, (row, col) in its grid."""
        rows, cols = self.figures.grid
        return min(self.params.row, rows - 1), min(self.params.col, cols - 1)

    @property
    def spot(self) -> tuple[int, int]:
        """The pixel both look at: the centre of the ViT patch."""
        p = self.figures.patch
        return self.patch[0] * p + p // 2, self.patch[1] * p + p // 2

    def field(self, depth: int) -> tuple[int, int, int, int, tuple[int, int]]:
        """(top, bottom, left, right) of the pixels the block-`depth` output nearest the spot sees
        (clipped to the image), and that output's (row, col)."""
        blocks = self.blocks[:depth]
        grid = block_grids(blocks, self.figures.image.shape[0])[-1]
        row, col = output_nearest(blocks, grid, self.spot)
        top, left, size = receptive_field(blocks, row, col)
        height, width = self.figures.image.shape
        return max(top, 0), min(top + size, height), max(left, 0), min(left + size, width), (row, col)

    def redraw(self) -> None:
        f = self.figures
        if f is None:
            return
        self.query_one("#versus-cnn", Static).update(self._cnn())
        cells = f.grid[0] * f.grid[1]
        token = 1 + self.patch[0] * f.grid[1] + self.patch[1]
        weights = f.attention[0][:, token, 1:].mean(axis=0).reshape(f.grid)
        p = f.patch
        vit = half_blocks(frame_window(heat(f.image, weights), self.patch[0] * p, self.patch[1] * p, p))
        vit.append(f"\nViT block 1, patch {token - 1}'s attention", style="bold")
        vit.append("\n(the patch framed in yellow)", style="dim")
        reach = int((weights > 1e-3).sum())
        vit.append(f"\nreaches {reach} of {cells} patches at once", style="dim")
        self.query_one("#versus-vit", Static).update(vit)
        self.query_one("#versus-note", Static).update(
            "A convolution sees only its kernel's neighbourhood; stacking blocks (d) widens the view step by "
            "step around the same spot (the earlier block's view framed in yellow). A ViT token weighs every "
            "patch already in its first block: global context from the start, at the cost of comparing every "
            "pair of tokens."
        )

    def field_picture(self) -> np.ndarray:
        """The image dimmed, the current block's field lit in blue, the previous block's outlined in yellow."""
        rgb = to_rgb(self.figures.image) * 0.45
        t, b, lft, r, _ = self.field(self.depth)
        rgb[t:b, lft:r] = np.clip(rgb[t:b, lft:r] + FIELD * 0.6, 0, 1)
        if self.depth > 1:  # the previous block's field, outlined inside this one
            pt, pb, pl, pr, _ = self.field(self.depth - 1)
            rgb[pt:pb, [pl, pr - 1]] = EARLIER
            rgb[[pt, pb - 1], pl:pr] = EARLIER
        return rgb

    def _cnn(self) -> Text:
        image = self.figures.image
        t, b, lft, r, (row, col) = self.field(self.depth)
        cnn = half_blocks(self.field_picture())
        shapes = {(block.kernel, block.pool) for block in self.blocks[: self.depth]}
        each = "; ".join(f"{k}×{k} conv, {p}×{p} max-pool" for k, p in sorted(shapes))
        cnn.append(f"\nCNN block {self.depth} of {len(self.blocks)}, output ({row}, {col})", style="bold")
        cnn.append(f"\nsees {b - t}×{r - lft} pixels: {(b - t) * (r - lft) / image.size:.0%} of the image", style="dim")
        cnn.append(f"\neach block: {each}", style="dim")
        return cnn

    def action_depth(self) -> None:
        self.depth = self.depth % len(self.blocks) + 1
