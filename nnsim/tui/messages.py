"""Messages that widgets of one lesson step exchange, through the screen; and those the lab's run
sends its screen from the training worker (the only way the worker speaks to it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from nnsim.tui.live.lab_figures import LabFigures


class Publish(Message):
    """A widget's figure for the other widgets of its step: a neuron's z for the activation plot.

    The lesson screen sets ``name`` on every other widget of the step that lists it in its
    ``LISTENS_TO`` (a reactive of that name, so the widget's own watcher redraws). A pair of
    widgets that work together needs no handler of its own.
    """

    def __init__(self, source, name: str, value) -> None:
        super().__init__()
        self.source = source  # the widget that published it
        self.name = name
        self.value = value


class Progress(Message, namespace="lab_screen"):
    """New figures from the lab's training worker; a newer one replaces one not yet drawn.

    ``session`` is the run that sent them: one still queued when the next run starts is not drawn.
    """

    def __init__(self, figures: list[LabFigures], session: object) -> None:
        super().__init__()
        self.figures, self.session = figures, session

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, Progress)


class RunChanged(Message, namespace="lab_screen"):
    """The lab's run moved to a new state, or has something to say (what it prepares, why it failed)."""

    def __init__(self, state: str, text: str, error: bool, failure: Exception | None = None) -> None:
        super().__init__()
        self.state, self.text, self.error, self.failure = state, text, error, failure


class RunCrashed(Message, namespace="lab_screen"):
    """The lab's worker met a bug (not the learner's doing): the app reports it and ends non-zero."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error
