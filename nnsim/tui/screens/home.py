"""Home: the lessons in order, each with how far the learner got, and what each one teaches."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Header, OptionList, Static
from textual.widgets.option_list import Option

from nnsim.tui.catalogue import Entry
from nnsim.tui.screens.base import NnsimScreen

WELCOME = (
    "nnsim teaches how a neural network turns the pixels of an image into a guess, one idea a "
    "lesson. Every number you see is computed live by nnsim's own engine; change a weight and "
    "watch what follows."
)


class HomeScreen(NnsimScreen):
    BINDINGS = [Binding("enter", "open", "Open lesson", show=True, priority=False)]

    def __init__(self, entries: list[Entry]):
        super().__init__()
        self.entries = entries

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="home"):
            with Vertical(id="lesson-pane"):
                yield Static("Lessons", classes="pane-title")
                yield OptionList(*self._options(), id="lessons")
            with Vertical(id="lesson-info"):
                yield Static(WELCOME, id="welcome")
                yield Static(id="lesson-summary")
        yield Footer()
        yield from self.compose_too_small()

    def on_mount(self) -> None:
        super().on_mount()
        lessons = self.query_one("#lessons", OptionList)
        progress = self.app.progress
        unfinished = [i for i, e in enumerate(self.entries) if not progress.get(e.key).done]
        lessons.highlighted = unfinished[0] if unfinished else 0
        lessons.focus()

    def on_screen_resume(self) -> None:
        lessons = self.query_one("#lessons", OptionList)
        highlighted = lessons.highlighted
        lessons.clear_options()
        lessons.add_options(self._options())
        lessons.highlighted = highlighted
        self._describe(highlighted)

    def _options(self) -> list[Option]:
        return [Option(self._label(index, entry), id=str(index)) for index, entry in enumerate(self.entries)]

    def _label(self, index: int, entry: Entry) -> Text:
        mark = self.app.progress.get(entry.key).mark()
        number = entry.lesson.section or index + 1
        label = Text(f"{mark:>5}  ", style="bold green" if mark == "✓" else "dim")
        label.append(f"{number:>2}  ", style="dim")
        label.append(entry.title)
        if not entry.lesson.ok:
            label.append("  (has problems)", style="bold red")
        return label

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._describe(event.option_index)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.app.open_lesson(self.entries[event.option_index])

    def action_open(self) -> None:
        highlighted = self.query_one("#lessons", OptionList).highlighted
        if highlighted is not None:
            self.app.open_lesson(self.entries[highlighted])

    def _describe(self, index: int | None) -> None:
        summary = self.query_one("#lesson-summary", Static)
        if index is None or not self.entries:
            summary.update("")
            return
        entry = self.entries[index]
        progress = self.app.progress.get(entry.key)
        steps = len(entry.lesson.steps)
        text = Text()
        text.append(f"{entry.title}\n", style="bold")
        text.append(f"{entry.lesson.summary}\n\n")
        if progress.done:
            text.append(f"Finished: all {steps} steps seen.", style="green")
        elif progress.seen:
            text.append(f"Reached step {progress.seen} of {steps}; Enter goes back to step {progress.step + 1}.")
        else:
            text.append(f"{steps} steps. Enter (or a click) opens it.", style="dim")
        summary.update(text)
