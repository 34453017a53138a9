"""PredictFirst: a guess before the result. The learner answers, then the widget appears."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget

from nnsim.tui.widgets.quiz import Quiz


class PredictFirst(Vertical):
    """Holds a block's widget back behind its `predict` question until the learner has answered."""

    def __init__(self, question, reveal: Widget):
        super().__init__(classes="predict-first")
        self.question = question
        self.reveal = reveal  # built, not yet mounted
        self.revealed = False

    def compose(self) -> ComposeResult:
        quiz = Quiz(self.question)
        quiz.border_title = "Predict first"
        yield quiz

    def focus(self, scroll_visible: bool = True):
        return self.query_one(Quiz).focus(scroll_visible)

    async def on_quiz_answered(self, message: Quiz.Answered) -> None:
        message.stop()
        if not self.revealed:
            self.revealed = True
            await self.mount(self.reveal)
            # Focus without Textual's animated scroll, then bring the widget into view in one jump once
            # it is laid out: an animation made where the view stands depend on when it was looked at.
            self.reveal.focus(scroll_visible=False)
            self.call_after_refresh(self.screen.scroll_to_center, self.reveal, animate=False, origin_visible=True)
