"""Classify: a small CNN, trained by nnsim's engine and shipped with it, names what it sees."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Button, Input, Static

from nnsim.errors import NnsimError
from nnsim.lessons.params import ClassifyParams
from nnsim.resources import builtin_data_path
from nnsim.tui.images import half_blocks, resolve_image, to_rgb

CHECKPOINT = "lesson-cnn.npz"  # made by scripts/make_lesson_cnn.py
BAR_WIDTH = 24


@cache
def lesson_cnn():
    """The shipped CNN on the reference backend, and its checkpoint's metadata."""
    from nnsim.engine.checkpoint import load_checkpoint
    from nnsim.tui.live import reference

    return load_checkpoint(builtin_data_path(CHECKPOINT), backend=reference())


def classify(path: Path, top: int):
    """(the input the CNN saw (H×W), what was done to the image, [(class, probability)…])."""
    from nnsim.predict import prepare_image, top_classes

    model, meta = lesson_cnn()
    tensor, notes = prepare_image(path, model.config.input_shape, meta.get("background"))
    return tensor[0], notes, top_classes(tensor, model, meta, top)


class Classify(Vertical, can_focus=True):
    """↑/↓ or a click picks an image; the input below classifies the learner's own."""

    BINDINGS = [
        Binding("up", "pick(-1)", "Image ↑"),
        Binding("down", "pick(1)", "Image ↓"),
        Binding("o", "open_file", "Your image"),
    ]

    chosen: reactive[int] = reactive(0)

    def __init__(self, params: ClassifyParams, base: Path | None = None):
        super().__init__()
        self.params = params
        self.base = base
        self.names = list(params.images)
        self.results: dict[str, tuple] = {}

    def compose(self) -> ComposeResult:
        yield Static("A trained CNN looks at an image", classes="widget-title")
        with Horizontal(id="classify-choices"):
            for index, name in enumerate(self.names):
                yield Button(Path(name).stem, id=f"image-{index}", compact=True, classes="image-choice")
        with Horizontal(id="classify-body"):
            yield Static(id="classify-picture")
            yield Static(id="classify-guesses")
        yield Input(placeholder="your own image: type a path, then Enter", id="classify-path")
        yield Static(id="classify-problem", classes="problem")

    def on_mount(self) -> None:
        self.redraw()

    def result_for(self, name: str):
        if name not in self.results:
            try:
                self.results[name] = classify(resolve_image(name, self.base), self.params.top)
            except NnsimError as error:
                self.results[name] = error
        return self.results[name]

    def redraw(self) -> None:
        name = self.names[self.chosen]
        for index, button in enumerate(self.query(".image-choice").results(Button)):
            button.set_class(index == self.chosen, "-chosen")
        result = self.result_for(name)
        problem = self.query_one("#classify-problem", Static)
        if isinstance(result, NnsimError):
            problem.update(str(result))
            self.query_one("#classify-picture", Static).update("")
            self.query_one("#classify-guesses", Static).update("")
            return
        problem.update("")
        tensor, notes, top = result
        picture = half_blocks(to_rgb(tensor))
        shape = "×".join(str(n) for n in lesson_cnn()[0].config.input_shape)
        picture.append(f"\nwhat the CNN sees: {shape}", style="dim")
        self.query_one("#classify-picture", Static).update(picture)
        self.query_one("#classify-guesses", Static).update(self._guesses(name, notes, top))

    def _guesses(self, name: str, notes: list[str], top: list[tuple[str, float]]) -> Text:
        text = Text()
        text.append(f"{name}\n", style="bold")
        best, p_best = top[0]
        text.append("It says: ")
        text.append(f"{best}", style="bold reverse")
        text.append(f"  ({p_best:.1%} sure)\n\n")
        for label, p in top:
            filled = int(round(p * BAR_WIDTH))
            text.append(f"{label:>3} ")
            text.append("█" * filled, style="green" if label == best else "blue")
            text.append("░" * (BAR_WIDTH - filled), style="dim")
            text.append(f" {p:6.1%}\n")
        for note in notes:
            text.append(f"\n· {note}", style="dim")
        return text

    def watch_chosen(self) -> None:
        if self.is_mounted:
            self.redraw()

    def action_pick(self, direction: int) -> None:
        self.chosen = (self.chosen + direction) % len(self.names)

    def action_open_file(self) -> None:
        self.query_one("#classify-path", Input).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.chosen = int(event.button.id.removeprefix("image-"))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        name = event.value.strip()
        if not name:
            return
        result = self.result_for(name)
        if isinstance(result, NnsimError):
            self.query_one("#classify-problem", Static).update(str(result))
            del self.results[name]
            return
        if name not in self.names:
            self.names.append(name)
            button = Button(Path(name).stem, id=f"image-{len(self.names) - 1}", compact=True, classes="image-choice")
            self.query_one("#classify-choices").mount(button)
        self.chosen = self.names.index(name)
        self.redraw()
