"""LessonLinks: points of the course, each opening the lesson that teaches it."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from nnsim.lessons.params import LessonLinksParams


class LessonLinks(Vertical):
    """↑/↓ and Enter (or a click) open the lesson of a point."""

    class OpenLesson(Message):
        """The learner asked for lesson `section`; the lesson screen opens it."""

        def __init__(self, section: int) -> None:
            super().__init__()
            self.section = section

    def __init__(self, params: LessonLinksParams, base: Path | None = None):
        super().__init__()
        self.params = params

    def compose(self) -> ComposeResult:
        yield Static(self.params.title, classes="widget-title")
        options = []
        for section, point in zip(self.params.lessons, self.params.points, strict=True):
            prompt = Text(f"{section:>2}  ", style="bold")
            prompt.append(point)
            options.append(Option(prompt, id=f"lesson-{section}-{len(options)}"))
        yield OptionList(*options, id="lesson-links")
        yield Static("Enter or a click opens that lesson.", classes="dim")

    def focus(self, scroll_visible: bool = True):
        return self.query_one(OptionList).focus(scroll_visible)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.post_message(self.OpenLesson(self.params.lessons[event.option_index]))
