"""Classify: a small CNN, trained by nnsim's engine and shipped with it, names what it sees."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Button, Input, Static

from nnsim.errors import NnsimError
from nnsim.lessons.params import ClassifyParams
from nnsim.tui.images import half_blocks, resolve_image, to_rgb
from nnsim.tui.live.classify import Classification, classify

BAR_WIDTH = 24


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
        self.results: dict[str, Classification] = {}

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
        self.query_one("#classify-guesses", Static).update(Text("computing…", style="dim italic"))
        self.compute(self.names[self.chosen])

    def result_for(self, name: str) -> Classification | NnsimError:
        """The CNN's answer for one image (computed once, then kept); a problem comes back as the error."""
        if name not in self.results:
            try:
                self.results[name] = classify(resolve_image(name, self.base), self.params.top)
            except NnsimError as error:
                return error
        return self.results[name]

    @work(thread=True, exclusive=True, group="classify")
    def compute(self, name: str, new: bool = False) -> None:
        """Classify off the UI thread (the first call loads the CNN), then draw."""
        result = self.result_for(name)
        self.app.call_from_thread(self._computed, name, result, new)

    def _computed(self, name: str, result, new: bool) -> None:
        if isinstance(result, NnsimError) and new:  # the learner's own path: say why, keep the picture
            self.query_one("#classify-problem", Static).update(str(result))
            return
        if new and name not in self.names:
            self.names.append(name)
            button = Button(Path(name).stem, id=f"image-{len(self.names) - 1}", compact=True, classes="image-choice")
            self.query_one("#classify-choices").mount(button)
        if new:
            self.chosen = self.names.index(name)
        if name == self.names[self.chosen]:
            self.redraw(result)

    def redraw(self, result) -> None:
        for index, button in enumerate(self.query(".image-choice").results(Button)):
            button.set_class(index == self.chosen, "-chosen")
        problem = self.query_one("#classify-problem", Static)
        if isinstance(result, NnsimError):
            problem.update(str(result))
            self.query_one("#classify-picture", Static).update("")
            self.query_one("#classify-guesses", Static).update("")
            return
        problem.update("")
        picture = half_blocks(to_rgb(result.picture))
        shape = "×".join(str(n) for n in result.input_shape)
        picture.append(f"\nwhat the CNN sees: {shape}", style="dim")
        picture.append(f"\nthe CNN: {result.parameters:,} weights and biases", style="dim")
        self.query_one("#classify-picture", Static).update(picture)
        self.query_one("#classify-guesses", Static).update(self._guesses(self.names[self.chosen], result))

    def _guesses(self, name: str, result: Classification) -> Text:
        notes, top = result.notes, result.top
        text = Text()
        text.append(f"{name}\n", style="bold")
        best, p_best = top[0]
        text.append("It says: ")
        text.append(f"{best}", style="bold reverse")
        text.append(f"  (its share: {p_best:.1%})\n\n")  # a softmax share, not a measured confidence
        for label, p in top:
            filled = int(round(p * BAR_WIDTH))
            text.append(f"{label:>3} ")
            text.append("█" * filled, style="green" if label == best else "blue")
            text.append("░" * (BAR_WIDTH - filled), style="dim")
            text.append(f" {p:6.1%}\n")
        for note in notes:
            text.append(f"\n· {note}", style="dim")
        return text

    def watch_chosen(self, chosen: int) -> None:
        if self.is_mounted:
            self.compute(self.names[chosen])

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
        if name:
            self.compute(name, new=True)
