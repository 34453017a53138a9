"""A lesson: prose on the left, its live widgets on the right, a step bar above, keys below."""

from __future__ import annotations

import re

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Footer, Header, Markdown, Static
from textual.widgets.markdown import MarkdownFence

from nnsim.lessons.format import Step
from nnsim.tui.catalogue import Entry
from nnsim.tui.messages import Publish
from nnsim.tui.screens.base import NnsimScreen
from nnsim.tui.widgets import build_widget

WIDGET_MARK = re.compile(r"<!-- widget \d+ -->")
NARROW = 100  # columns below which the prose goes above the widgets


class Pane(VerticalScroll, inherit_bindings=False):
    """A scrolling pane that leaves left and right to the lesson (previous and next step)."""

    BINDINGS = [
        Binding("up", "scroll_up", "Scroll up", show=False),
        Binding("down", "scroll_down", "Scroll down", show=False),
        Binding("pageup", "page_up", show=False),
        Binding("pagedown", "page_down", show=False),
        Binding("home", "scroll_home", show=False),
        Binding("end", "scroll_end", show=False),
    ]


class PlainFence(MarkdownFence):
    """A code block in lesson prose is a formula or a table: plain text, never a guessed language
    (guessing one tries every Pygments lexer, which costs a tenth of a second per block)."""

    @classmethod
    def highlight(cls, code: str, language: str, ansi: bool = False, dark: bool = False):
        return super().highlight(code, language or "text", ansi, dark)


class Prose(Markdown):
    BLOCKS = {**Markdown.BLOCKS, "fence": PlainFence, "code_block": PlainFence}


class LessonScreen(NnsimScreen):
    BINDINGS = [
        Binding("right", "next", "Next", key_display="→"),
        Binding("n", "next", "Next", show=False),
        Binding("left", "previous", "Back", key_display="←"),
        Binding("p", "previous", "Back", show=False),
        Binding("escape", "home", "Lessons"),
        Binding("L", "lab_link", "Try it in the lab"),
    ]

    def __init__(self, entry: Entry, step: int = 0):
        super().__init__()
        self.entry = entry
        self.lesson = entry.lesson
        self.step_index = max(0, min(step, len(self.lesson.steps) - 1))
        self._shown = 0
        self._mounted = 0  # the call of show_step whose widgets are mounted

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="step-bar"):
            yield Button("◀ Back", id="previous", compact=True)
            yield Static(id="step-label")
            yield Button("Next ▶", id="next", compact=True)
        with Horizontal(id="step-body"):
            with Pane(id="prose"):
                yield Prose(id="prose-text")
            yield Pane(id="widgets")
        yield Footer()
        yield from self.compose_too_small()

    async def on_mount(self) -> None:
        super().on_mount()
        for button in self.query("#step-bar Button").results(Button):
            button.active_effect_duration = 0  # every click of Next counts, however quick
        self.title = f"Lesson {self.lesson.section}: {self.entry.title}" if self.lesson.section else self.entry.title
        await self.show_step(self.step_index)

    def _check_size(self, width: int, height: int) -> None:
        super()._check_size(width, height)
        self.set_class(width < NARROW, "-narrow")  # prose above the widgets instead of beside them

    @property
    def step(self) -> Step | None:
        steps = self.lesson.steps
        return steps[self.step_index] if steps else None

    async def show_step(self, index: int) -> None:
        self.step_index = index
        self._shown += 1  # which call of show_step the deferred widget mount belongs to
        step = self.step
        total = max(1, len(self.lesson.steps))
        self._update_step_bar(total)
        self.refresh_bindings()  # L (a lab link) is offered on this step or not
        widgets = self.query_one("#widgets", Pane)
        await widgets.remove_children()
        prose = self.query_one("#prose-text", Markdown)
        if step is None:
            await prose.update("")
            await widgets.mount(_error_panel(self.lesson.errors or ["this lesson has no steps"]))
            self._mounted = self._shown
            return
        await prose.update(WIDGET_MARK.sub("", step.markdown))
        self.query_one("#prose", Pane).scroll_home(animate=False)
        self.app.progress.visit(self.entry.key, index, len(self.lesson.steps))
        # The prose paints first; the widgets mount after that paint and compute in workers.
        self.call_after_refresh(self._mount_widgets, index, self._shown)

    async def _mount_widgets(self, index: int, shown: int) -> None:
        if shown != self._shown or not self.is_attached:  # the learner has moved on meanwhile
            return
        step, widgets = self.step, self.query_one("#widgets", Pane)
        errors = list(step.errors)
        if index == 0:  # problems of the file as a whole (its front matter) show on the first step
            in_steps = {error for each in self.lesson.steps for error in each.errors}
            errors = [error for error in self.lesson.errors if error not in in_steps] + errors
        if errors:
            await widgets.mount(_error_panel(errors))
        built = [self._built(block) for block in step.blocks]
        await widgets.mount_all(built)
        widgets.scroll_home(animate=False)
        if built:
            built[0].focus()  # its keys work at once; Tab moves on
        self._mounted = shown

    @property
    def widgets_pending(self) -> bool:
        """True from a change of step until that step's widgets are mounted (after the prose's paint)."""
        return self._mounted != self._shown

    def _update_step_bar(self, total: int) -> None:
        index = self.step_index
        dots = "".join("[b $accent]●[/]" if i == index else "●" if i < index else "○" for i in range(total))
        self.query_one("#step-label", Static).update(f"Step {index + 1}/{total}  {dots}")
        self.query_one("#previous", Button).disabled = index == 0
        last = index >= total - 1
        following = self.app.next_entry(self.entry) if last else None
        next_button = self.query_one("#next", Button)
        next_button.label = f"Lesson {following.lesson.section or ''}: {following.title} ▶" if following else "Next ▶"
        next_button.disabled = last and following is None

    async def action_next(self) -> None:
        if self.step_index < len(self.lesson.steps) - 1:
            await self.show_step(self.step_index + 1)
        elif (following := self.app.next_entry(self.entry)) is not None:
            self.app.open_lesson(following)  # this one is done: every step has been seen

    async def action_previous(self) -> None:
        if self.step_index > 0:
            await self.show_step(self.step_index - 1)

    def action_home(self) -> None:
        self.app.pop_screen()

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "next":
            event.stop()
            await self.action_next()
        elif event.button.id == "previous":
            event.stop()
            await self.action_previous()

    def on_publish(self, message: Publish) -> None:
        """A widget's figure goes to the other widgets of this step that listen for it."""
        message.stop()
        for widget in self.query_one("#widgets", Pane).children:
            if widget is not message.source and message.name in getattr(widget, "LISTENS_TO", ()):
                setattr(widget, message.name, message.value)

    def _built(self, block):
        widget = build_widget(block, self.lesson.path)
        if block.predict is None:
            return widget
        from nnsim.tui.widgets.predict_first import PredictFirst

        return PredictFirst(block.predict, widget)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """L (try it in the lab) is shown and works only on a step with a lab link."""
        if action == "lab_link":
            return self.step is not None and any(block.widget == "lab_link" for block in self.step.blocks)
        return True

    def action_lab_link(self) -> None:
        from nnsim.tui.widgets.lab_link import LabLink

        links = self.query(LabLink)
        if links:
            links.first().open()

    def on_lab_link_open(self, message) -> None:
        """A lab link: the lab, with its settings (and comparison); escape there comes back here."""
        message.stop()
        self.app.open_lab(message.params)

    def on_lesson_links_open_lesson(self, message) -> None:
        """A link to another lesson: open it (the shipped lesson with that section number)."""
        target = next((e for e in self.app.entries if e.lesson.section == message.section), None)
        if target is None:
            self.notify(f"Lesson {message.section} is not among the lessons here.", severity="warning")
        else:
            self.app.open_lesson(target)


def _error_panel(errors: list[str]) -> Static:
    text = Text("This step has problems, so it is not shown:\n\n", style="bold")
    for error in errors:
        text.append(f"• {error}\n", style="")
    text.append("\nnnsim lessons check FILE lists them too.", style="dim")
    return Static(text, classes="error-panel")
