"""Quiz: a question, its choices, and the explanation once the learner has answered."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.markup import escape
from textual.message import Message
from textual.widgets import Button, Static

from nnsim.lessons.params import QuizParams


class Quiz(Vertical, can_focus=True):
    """Answer with the number keys or by clicking a choice."""

    BINDINGS = [Binding(str(n), f"answer({n - 1})", str(n), show=False) for n in range(1, 10)]

    class Answered(Message):
        def __init__(self, quiz: Quiz, choice: int, correct: bool):
            super().__init__()
            self.quiz, self.choice, self.correct = quiz, choice, correct

    def __init__(self, params: QuizParams, base: Path | None = None):
        super().__init__()
        self.params = params
        self.chosen: int | None = None

    def compose(self) -> ComposeResult:
        yield Static("Quiz", classes="widget-title")
        yield Static(self.params.question, id="question", markup=False)
        for index, choice in enumerate(self.params.choices):
            yield Button(Content(f"{index + 1}  {choice}"), id=f"choice-{index}", classes="choice", compact=True)
        yield Static(f"Press 1–{len(self.params.choices)} or click a choice.", id="verdict", classes="dim")
        yield Static(id="explanation", markup=False)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_answer(int(event.button.id.removeprefix("choice-")))

    def action_answer(self, choice: int) -> None:
        if not 0 <= choice < len(self.params.choices):
            return
        self.chosen = choice
        correct = choice == self.params.answer
        for index, button in enumerate(self.query(".choice").results(Button)):
            button.set_class(index == self.params.answer, "-right")
            button.set_class(index == choice and not correct, "-wrong")
        right = self.params.choices[self.params.answer]
        verdict = "[b $success]Right.[/]" if correct else f"[b $error]Not quite.[/] The answer is {escape(right)}."
        self.query_one("#verdict", Static).update(verdict)
        self.query_one("#explanation", Static).update(self.params.explanation)
        self.post_message(self.Answered(self, choice, correct))
