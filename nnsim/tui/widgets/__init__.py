"""Lesson widgets, one a file. `build_widget` makes the widget a lesson block asks for.

Which widgets exist is declared once, in nnsim.lessons.params: each params dataclass names its
widget and the class that draws it (in the file of the same name here), and `nnsim lessons check`
validates blocks against the same declaration. A widget that cannot show what it was given (a
missing image, say) shows the problem itself instead of failing the lesson.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from textual.widget import Widget

from nnsim.lessons.format import WidgetBlock
from nnsim.lessons.params import WIDGET_PARAMS


def widget_class(name: str) -> type[Widget]:
    """The widget class that draws blocks `widget = "name"`."""
    spec = WIDGET_PARAMS[name]
    return getattr(import_module(f"nnsim.tui.widgets.{name}"), spec.widget_class)


def build_widget(block: WidgetBlock, lesson_path: Path) -> Widget:
    return widget_class(block.widget)(block.params, base=Path(lesson_path).parent)
