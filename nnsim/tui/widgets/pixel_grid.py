"""PixelGrid: an image as the tensor a network sees, with a zoom window onto its 0..1 values.

The table always reads the file's own tensor X, at X's own indices. A large image is drawn from a
copy shrunk to fit the screen; the frame then marks the shown pixels the window lies in.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.table import Table
from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Input, Static

from nnsim.errors import NnsimError
from nnsim.lessons.params import PixelGridParams
from nnsim.tui.formatting import number
from nnsim.tui.images import (
    CHANNEL_TINTS,
    frame_window,
    half_blocks,
    load_for_display,
    resolve_image,
    to_rgb,
    value_style,
)
from nnsim.tui.live.pixels import Normalisation, cnn_normalisation, normalise

LARGEST_GRAY = 48  # pixels along the longer side; larger images are shrunk to fit the screen
LARGEST_RGB = 20  # an RGB image is drawn four times (colour and three channels)


class ImageCells(Static):
    """One picture of cells; a click reports the pixel under the mouse."""

    class Clicked(Message):
        def __init__(self, cells: ImageCells, row: int, col: int):
            super().__init__()
            self.cells, self.row, self.col = cells, row, col

    def __init__(self, channel: int | None, **kwargs):
        super().__init__(**kwargs)
        self.channel = channel  # None: the whole image; 0, 1, 2: one colour channel

    def on_click(self, event: events.Click) -> None:
        self.post_message(self.Clicked(self, row=2 * event.y, col=event.x))


class PixelGrid(Vertical, can_focus=True):
    """X ∈ ℝ^(H×W) or ℝ^(3×H×W): the image, its channels, its shape, and a window of its values."""

    BINDINGS = [
        Binding("w", "move(-1, 0)", "Move zoom", key_display="wasd"),
        Binding("s", "move(1, 0)", "Zoom ↓", show=False),
        Binding("a", "move(0, -1)", "Zoom ←", show=False),
        Binding("d", "move(0, 1)", "Zoom →", show=False),
        Binding("c", "next_channel", "Channel"),
        Binding("o", "open_file", "Open image", show=False),
    ]

    def __init__(self, params: PixelGridParams, base: Path | None = None):
        super().__init__()
        self.params = params
        self.base = base
        self.tensor: np.ndarray | None = None  # (H,W) or (3,H,W), exactly what load_image gave
        self.picture: np.ndarray | None = None  # the copy drawn on screen: the tensor, or shrunk to fit
        self.normalisation: Normalisation | None = None  # the shipped CNN's, once loaded (normalize = true)
        self.name_shown = params.image
        self.notes: list[str] = []
        self.problem: str | None = None
        self.zoom_row = self.zoom_col = self.channel = 0  # the window's top-left pixel; the channel it reads
        self.zoom_size = params.zoom_size
        self._load(params.image)

    def compose(self) -> ComposeResult:
        yield Static(id="pixel-title", classes="widget-title")
        with Horizontal(id="pixel-top"):
            yield Horizontal(id="pixel-main")
            with Vertical(id="zoom-tables"):
                yield Static(id="zoom-values")
                yield Static(id="zoom-normalised")
        yield Horizontal(id="pixel-channels")
        if self.params.open_file:
            yield Input(placeholder="your own image: type a path, then Enter", id="image-path")
        yield Static(id="pixel-problem", classes="problem")

    def on_mount(self) -> None:
        self._rebuild()
        if self.params.normalize:
            self.load_normalisation()

    @work(thread=True, exclusive=True, group="normalisation")
    def load_normalisation(self) -> None:
        """The shipped CNN is read off the UI thread; its first layer's figures are drawn then."""
        normalisation = cnn_normalisation()
        self.app.call_from_thread(self._normalisation_loaded, normalisation)

    def _normalisation_loaded(self, normalisation: Normalisation) -> None:
        self.normalisation = normalisation
        self._redraw()

    # --- state -------------------------------------------------------------------------------

    def _load(self, name: str) -> bool:
        try:
            path = resolve_image(name, self.base)
            loaded, picture = load_for_display(path, LARGEST_GRAY, LARGEST_RGB)
        except NnsimError as error:
            self.problem = str(error)
            return False
        self.tensor, self.picture, self.notes, self.problem = loaded.tensor, picture, loaded.notes, None
        self.name_shown = name
        height, width = self.spatial
        size = self.params.zoom_size
        self.zoom_size = max(1, min(size, height, width))
        self.channel = 0
        self._place_zoom(*self.params.zoom)
        return True

    def _place_zoom(self, row: int, col: int) -> None:
        """Put the window's top-left pixel at (row, col), kept inside the image."""
        height, width = self.spatial
        self.zoom_row = _clamp(row, height - self.zoom_size)
        self.zoom_col = _clamp(col, width - self.zoom_size)

    @property
    def spatial(self) -> tuple[int, int]:
        return self.tensor.shape[-2:] if self.tensor is not None else (0, 0)

    @property
    def shown_spatial(self) -> tuple[int, int]:
        return self.picture.shape[-2:] if self.picture is not None else (0, 0)

    def shown_pixel(self, row: int, col: int) -> tuple[int, int]:
        """The pixel of the drawn copy that the tensor's pixel (row, col) falls in."""
        (height, width), (shown_h, shown_w) = self.spatial, self.shown_spatial
        return row * shown_h // height, col * shown_w // width

    def tensor_pixel(self, shown_row: int, shown_col: int) -> tuple[int, int]:
        """The first pixel of the tensor that falls in the drawn copy's pixel (shown_row, shown_col)."""
        (height, width), (shown_h, shown_w) = self.spatial, self.shown_spatial
        return -(-shown_row * height // shown_h), -(-shown_col * width // shown_w)

    @property
    def is_rgb(self) -> bool:
        return self.tensor is not None and self.tensor.ndim == 3

    def zoomed_values(self) -> np.ndarray:
        """The window of the file's tensor the table shows: X[r:r+k, c:c+k] (of the chosen channel)."""
        r, c, k = self.zoom_row, self.zoom_col, self.zoom_size
        plane = self.tensor[self.channel] if self.is_rgb else self.tensor
        return plane[r : r + k, c : c + k]

    # --- drawing -----------------------------------------------------------------------------

    def _rebuild(self) -> None:
        problem = self.query_one("#pixel-problem", Static)
        problem.update(self.problem or "")
        problem.display = bool(self.problem)
        main, channels = self.query_one("#pixel-main", Horizontal), self.query_one("#pixel-channels", Horizontal)
        main.remove_children()
        channels.remove_children()
        if self.tensor is None:
            self.query_one("#pixel-title", Static).update("")
            self.query_one("#zoom-values", Static).update("")
            return
        self.query_one("#pixel-title", Static).update(self._title())
        main.mount(ImageCells(None, classes="image-cells"))
        if self.is_rgb and self.params.channels:
            channels.mount_all([ImageCells(i, classes="image-cells") for i in range(3)])
        channels.display = self.is_rgb and self.params.channels
        self.refresh_bindings()
        self._redraw()

    def _title(self) -> Text:
        height, width = self.spatial
        shown_h, shown_w = self.shown_spatial
        channels = "3 × " if self.is_rgb else ""
        text = Text()
        text.append(f"{self.name_shown}", style="bold")
        if self.is_rgb:
            text.append(f"  →  X ∈ ℝ^(3×{height}×{width}),  shape C × H × W = 3 × {height} × {width}")
        else:
            text.append(f"  →  X ∈ ℝ^({height}×{width}),  shape H × W = {height} × {width}")
        text.append(f"\n{self.tensor.size:,} numbers in 0..1", style="dim")
        if (shown_h, shown_w) != (height, width):
            text.append(
                f"; the pictures are a copy shrunk to fit: {channels}{shown_h} × {shown_w}; the table reads X itself",
                style="dim",
            )
        if self.notes:
            text.append(f" · {'; '.join(self.notes)}", style="dim")
        return text

    def _redraw(self) -> None:
        if self.tensor is None:
            return
        k = self.zoom_size
        top, left = self.shown_pixel(self.zoom_row, self.zoom_col)
        bottom, right = self.shown_pixel(self.zoom_row + k - 1, self.zoom_col + k - 1)
        for cells in self.query(ImageCells):
            if cells.channel is None:
                rgb = to_rgb(self.picture)
                label = "colour" if self.is_rgb else "gray"
            else:
                name = "RGB"[cells.channel]
                rgb = to_rgb(self.picture[cells.channel], CHANNEL_TINTS[name])
                label = f"{name}  X[{cells.channel}]"
            if cells.channel == (self.channel if self.is_rgb else None) or (not self.params.channels):
                rgb = frame_window(rgb, top, left, bottom - top + 1, right - left + 1)
            picture = half_blocks(rgb)
            picture.append(f"\n{label}", style="bold" if cells.channel == self.channel else "dim")
            cells.update(picture)
        self.query_one("#zoom-values", Static).update(self._zoom_table())
        normalised = self.query_one("#zoom-normalised", Static)
        normalised.display = self.params.normalize
        if self.params.normalize:
            normalised.update(self._normalised_table())

    def _zoom_table(self) -> Table:
        if self.is_rgb:
            name = "RGB"[self.channel]
            return self._table(f"X[{self.channel}, {self._window()}]  ({name} channel)", CHANNEL_TINTS[name])
        return self._table(f"X[{self._window()}]", (1.0, 1.0, 1.0))

    def _window(self) -> str:
        r, c, k = self.zoom_row, self.zoom_col, self.zoom_size
        return f"{r}:{r + k}, {c}:{c + k}"

    def _table(self, title: str, tint, values: np.ndarray | None = None) -> Table:
        """The window's values (X's own, unless others are given), each on its pixel's colour."""
        pixels = self.zoomed_values()
        shown = pixels if values is None else values
        table = Table(title=title, title_justify="left", show_edge=False, padding=(0, 1), box=None)
        table.add_column("", style="dim", justify="right")
        for j in range(shown.shape[1]):
            table.add_column(str(self.zoom_col + j), justify="right", style="dim")
        for i, row in enumerate(shown):
            cells = [Text(number(v), style=value_style(p, tint)) for v, p in zip(row, pixels[i], strict=True)]
            table.add_row(str(self.zoom_row + i), *cells)
        return table

    def normalised_values(self) -> np.ndarray | None:
        """The window after the shipped CNN's first layer, (X − mean) / std; None until it is loaded."""
        if self.normalisation is None or self.is_rgb:
            return None
        return normalise(self.zoomed_values())

    def _normalised_table(self) -> Table | Text:
        if self.is_rgb:
            return Text("The shipped CNN takes gray images: no normalisation is shown for colour.", style="dim")
        values = self.normalised_values()
        if values is None:
            return Text("reading the shipped CNN's first layer…", style="dim italic")
        mean, std = number(self.normalisation.mean, 4), number(self.normalisation.std, 4)
        title = f"\n(X − {mean}) / {std}: the digit CNN's first layer"
        return self._table(title, (1.0, 1.0, 1.0), values)

    # --- input -------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple) -> bool:
        return action != "next_channel" or self.is_rgb  # a gray image has no channel to switch to

    def action_move(self, rows: int, cols: int) -> None:
        """One shown pixel on: one pixel of X, or as many as a pixel of the shrunk copy stands for."""
        if self.tensor is not None:
            shown_row, shown_col = self.shown_pixel(self.zoom_row, self.zoom_col)
            row, col = self.tensor_pixel(shown_row + rows, shown_col + cols)
            self._place_zoom(row if rows else self.zoom_row, col if cols else self.zoom_col)  # the other axis stays
            self._redraw()

    def action_next_channel(self) -> None:
        if self.is_rgb:
            self.channel = (self.channel + 1) % 3
            self._redraw()

    def action_open_file(self) -> None:
        if self.params.open_file:
            self.query_one("#image-path", Input).focus()

    def on_image_cells_clicked(self, message: ImageCells.Clicked) -> None:
        message.stop()
        self.focus()
        if message.cells.channel is not None:
            self.channel = message.cells.channel
        half = self.zoom_size // 2
        (height, width), (shown_h, shown_w) = self.spatial, self.shown_spatial
        row = int((message.row + 0.5) * height / shown_h)  # the tensor's pixel at the clicked one's centre
        col = int((message.col + 0.5) * width / shown_w)
        self._place_zoom(row - half, col - half)
        self._redraw()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        name = event.value.strip()
        if not name:
            return
        if self._load(name):
            self.focus()
        self._rebuild()  # the new image, or the old one with the problem under it


def _clamp(value: int, top: int) -> int:
    return max(0, min(int(value), max(0, top)))
