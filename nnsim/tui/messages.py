"""Messages that widgets of one lesson step exchange, through the screen."""

from __future__ import annotations

from textual.message import Message


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
