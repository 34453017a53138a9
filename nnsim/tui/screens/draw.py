"""Draw a digit (or bring an image) and watch a trained network read it: the steps that make it look
like an MNIST digit, the softmax bars, the first feature maps and which strokes the answer needs."""

from __future__ import annotations

import numpy as np
from rich.console import Group
from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Button, Footer, Header, Input, Static
from textual.worker import get_current_worker

from nnsim.errors import NnsimError
from nnsim.tui.images import HalfBlockTiles, heat, to_rgb
from nnsim.tui.live.draw import Canvas, Prepared, Reader, Reading, mnist_like
from nnsim.tui.screens.base import NnsimScreen

CANVAS_COLUMNS, CANVAS_ROWS = 40, 20  # 40 × 40 pixels: a cell holds two, one above the other
NARROW = 116  # columns below which the preprocessing steps are left out, so the answer keeps its room
BAR = 24  # the longest softmax bar, in cells (shorter where the column is narrower)


class DrawCanvas(Widget, can_focus=True):
    """Draw with the mouse (hold the button and move), or with the arrows: space lifts and lowers
    the pen, c clears."""

    BINDINGS = [
        Binding("up", "move(0, -1)", "Up", show=False),
        Binding("down", "move(0, 1)", "Down", show=False),
        Binding("left", "move(-1, 0)", "Left", show=False),
        Binding("right", "move(1, 0)", "Right", show=False),
        Binding("space", "pen", "Pen up/down"),
        Binding("c", "clear", "Clear"),
    ]
    ALLOW_SELECT = False  # a drag draws; it does not select text
    pen_down = reactive(False)

    class Changed(Message):
        """The drawing changed."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.canvas = Canvas(CANVAS_COLUMNS, 2 * CANVAS_ROWS)
        self.cursor = (CANVAS_COLUMNS // 2, CANVAS_ROWS // 2)
        self.dragging = False

    def render(self) -> HalfBlockTiles:
        # as segments, not a Text of 800 spans: it is redrawn at every move of the pen
        rgb = to_rgb(self.canvas.pixels)
        rgb = 0.12 + 0.88 * rgb  # the paper a little lighter than black, so its edge shows
        if self.has_focus:
            col, row = self.cursor
            rgb[2 * row : 2 * row + 2, col] = (0.9, 0.6, 0.1) if self.pen_down else (0.3, 0.5, 0.9)
        return HalfBlockTiles([rgb], 1, gap="")

    def _paint(self, col: float, row: float) -> None:
        self.canvas.draw_to(col + 0.5, 2 * row + 1.0)
        self.refresh()
        self.post_message(self.Changed())

    # --- mouse
    def on_mouse_down(self, event: events.MouseDown) -> None:
        self.dragging = True
        self.capture_mouse()
        self.canvas.pen_up()
        self._paint(event.x, event.y)

    def on_mouse_move(self, event: events.MouseMove) -> None:
        if self.dragging:
            self._paint(event.x, event.y)

    def on_mouse_up(self, event: events.MouseUp) -> None:
        if self.dragging:
            self.dragging = False
            self.release_mouse()
            self.canvas.pen_up()
            self.post_message(self.Changed())  # the stroke is done: read it whole, occlusion too

    # --- keys
    def action_move(self, dx: int, dy: int) -> None:
        col, row = self.cursor
        self.cursor = (min(max(col + dx, 0), CANVAS_COLUMNS - 1), min(max(row + dy, 0), CANVAS_ROWS - 1))
        if self.pen_down:
            self._paint(*self.cursor)
        self.refresh()

    def action_pen(self) -> None:
        self.pen_down = not self.pen_down
        self.canvas.pen_up()
        if self.pen_down:
            self._paint(*self.cursor)
        self.refresh()

    def action_clear(self) -> None:
        self.canvas.clear()
        self.refresh()
        self.post_message(self.Changed())


class DrawScreen(NnsimScreen):
    """Draw a digit, or type an image's path; the network reads it as you go. Escape: back."""

    BINDINGS = [Binding("escape", "back", "Back")]

    def __init__(self, reader: Reader | None = None):
        super().__init__()
        self.reader = reader
        self.prepared: Prepared | None = None
        self.reading: Reading | None = None
        self.notes: list[str] = []
        self._dirty = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="draw-body"):
            with Vertical(id="draw-left"):
                yield Static(
                    "Draw a digit: hold the mouse button and move (or arrows, space for the pen)",
                    classes="widget-title",
                )
                yield DrawCanvas(id="draw-canvas")
                with Horizontal(id="draw-buttons"):
                    yield Button("Clear", id="draw-clear", compact=True)
                yield Input(placeholder="…or an image file's path, then Enter", id="draw-path", compact=True)
            yield Static(id="draw-steps")
            with Vertical(id="draw-right"):
                yield Static(id="draw-bars")
                yield Static(id="draw-occlusion")
                yield Static(id="draw-maps")
        yield Footer()
        yield from self.compose_too_small()

    def on_mount(self) -> None:
        super().on_mount()
        self.title = "Draw a digit"
        if self.reader is None:
            self.reader = Reader.shipped()
        self.sub_title = f"read by {self.reader.source}"
        self.query_one(DrawCanvas).focus()
        self.query_one("#draw-bars", Static).update("Draw a digit: the network's guesses appear here.")
        self.set_interval(0.15, self._read_if_changed)

    def action_back(self) -> None:
        self.app.pop_screen()

    def _check_size(self, width: int, height: int) -> None:
        super()._check_size(width, height)
        self.set_class(width < NARROW, "-narrow")
        if self.reading is not None:  # the bars to the column's new width
            self.call_after_refresh(self._show, self.prepared, self.reading)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.query_one(DrawCanvas).action_clear()

    def on_draw_canvas_changed(self, message: DrawCanvas.Changed) -> None:
        self._dirty = True
        self.notes = []

    def _read_if_changed(self) -> None:
        if self._dirty:
            self._dirty = False
            canvas = self.query_one(DrawCanvas)
            # while the pen moves, only the answer; the occlusion map (49 more passes) once it lifts
            self.read(canvas.canvas.pixels.copy(), None, occlude=not canvas.dragging)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        from pathlib import Path

        from nnsim.predict import prepare_image
        from nnsim.tui.images import resolve_image

        text = event.value.strip()
        path = Path(text).expanduser()
        try:
            path = resolve_image(text)  # served: a name typed is looked up in the shared folder, as the data box does
            tensor, notes = prepare_image(path, (1, 28, 28), background=0.0)
        except NnsimError as error:
            self.query_one("#draw-steps", Static).update(Text(str(error), style="red"))
            return
        self.notes = [f"{path.name}: {note}" for note in notes] or [f"{path.name}: already 28×28 gray"]
        self._dirty = False  # the image, not the drawing, is what is read now
        self.read(None, tensor[0])

    @work(thread=True, exclusive=True, group="draw-read")
    def read(self, pixels: np.ndarray | None, image: np.ndarray | None, occlude: bool = True) -> None:
        prepared = (
            mnist_like(pixels) if pixels is not None else Prepared([("the image, as the network sees it", image)])
        )
        reading = self.reader.read(prepared.tensor, occlude) if prepared.tensor.any() else None
        if not get_current_worker().is_cancelled:  # a newer drawing's read replaced this one
            self.app.call_from_thread(self._show, prepared, reading)

    def _show(self, prepared: Prepared, reading: Reading | None) -> None:
        self.prepared, self.reading = prepared, reading
        self.query_one("#draw-steps", Static).update(_steps(prepared, self.notes))
        bars = self.query_one("#draw-bars", Static)
        if reading is None:
            bars.update("Draw a digit: the network's guesses appear here.")
            self.query_one("#draw-occlusion", Static).update("")
            self.query_one("#draw-maps", Static).update("")
            return
        bars.update(_bars(reading, bars.content_region.width))
        image = prepared.steps[-1][1]
        if reading.occlusion is not None:
            name = reading.class_names[reading.predicted]
            title = Text(
                f"which strokes it needs (occlusion): how much p({name}) drops when each 4×4 patch is blanked",
                style="bold",
            )
            picture = HalfBlockTiles([heat(image, np.clip(reading.occlusion, 0, None))], 1, gap="")
            self.query_one("#draw-occlusion", Static).update(Group(title, picture))
        else:
            self.query_one("#draw-occlusion", Static).update(Text("which strokes it needs: lift the pen to see", "dim"))
        if reading.feature_maps is not None:
            self.query_one("#draw-maps", Static).update(_maps(reading.feature_maps))


def _steps(prepared: Prepared, notes: list[str]) -> Group:
    """Each preprocessing step's image, with what was done, top to bottom (the drawing itself is left).
    The pictures as segments (HalfBlockTiles), as everything on this screen: it is redrawn as the pen moves."""
    parts: list = [Text("made to look like MNIST", style="bold")]
    parts += [Text(line, style="bold dim") for line in notes]
    for title, image in prepared.steps[1:] if len(prepared.steps) > 1 else prepared.steps:
        parts.append(Text(title, style="bold"))
        shown = image if max(image.shape) <= 28 else image[:: -(-max(image.shape) // 28), :: -(-max(image.shape) // 28)]
        parts.append(HalfBlockTiles([to_rgb(shown)], 1, gap=""))
    return Group(*parts)


def _bars(reading: Reading, width: int) -> Text:
    """The softmax as bars, each line at most `width` cells (the bars at most BAR; 0: not laid out yet)."""
    text = Text("softmax: p(class | drawing)\n", style="bold")
    best = reading.predicted
    longest = min(BAR, width - 16) if width else BAR  # 16: the name, the percentage and a space after each
    for index, (name, p) in enumerate(zip(reading.class_names, reading.probabilities, strict=True)):
        bar = "█" * int(round(p * max(longest, 1)))
        style = "bold green" if index == best else ""
        text.append(f"{name[:8]:>8} {p:6.1%} ", style=style)
        text.append(bar + "\n", style="green" if index == best else "cyan")
    text.append(f"→ it reads a {reading.class_names[best]}\n", style="bold")
    return text


def _maps(maps: np.ndarray) -> Group:
    """The first conv block's feature maps, each scaled to its own range, at half size."""
    tiles = []
    for fmap in maps[:8]:
        low, high = float(fmap.min()), float(fmap.max())
        scaled = (fmap - low) / (high - low) if high > low else np.zeros_like(fmap)
        tiles.append(to_rgb(scaled[::2, ::2], (1.0, 0.8, 0.3)))
    return Group(Text(f"first-layer feature maps ({len(maps)} filters)", style="bold"), HalfBlockTiles(tiles, 4))
