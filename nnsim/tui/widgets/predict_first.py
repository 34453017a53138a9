"""PredictFirst: a guess before the result. The learner answers, then the widget appears."""

from __future__ import annotations

from textual import events
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
        self.following = False  # the view follows the revealed widget as it grows, until the learner acts

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
            # Focus without Textual's animated scroll: where an animation stands depends on when it is looked at.
            self.reveal.focus(scroll_visible=False)
            self.following = True
            self.call_after_refresh(self.bring_into_view)

    # The revealed widget grows as its workers fill it in, and the view can scroll only as far as what is
    # drawn so far: the jump is made again each time this widget changes size, until the learner acts here.
    def on_resize(self, event: events.Resize) -> None:
        if self.following:
            self.call_after_refresh(self.bring_into_view)

    def on_key(self, event: events.Key) -> None:
        self.following = False

    def on_mouse_down(self, event: events.MouseDown) -> None:
        self.following = False

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        self.following = False

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self.following = False

    def bring_into_view(self) -> None:
        """Scroll so the quiz's verdict heads the view, the revealed widget below it (as far as the view
        scrolls): a place that depends on the question alone, never on how much has been drawn."""
        if not self.following or not self.is_attached:
            return
        view = next((node for node in self.ancestors if isinstance(node, Widget) and node.is_scrollable), None)
        if view is None:
            return
        verdict = self.query_one(Quiz).query_one("#verdict")
        place = verdict.region.y - view.scrollable_content_region.y + view.scroll_y
        view.scroll_to(y=place, animate=False, immediate=True)
