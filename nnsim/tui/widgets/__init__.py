"""Lesson widgets, one a file. `build_widget` makes the widget a lesson block asks for.

Each widget takes its parameters as the dataclass declared in nnsim.lessons.params, the same
declaration `nnsim lessons check` validates blocks against. A widget that cannot show what it was
given (a missing image, say) shows the problem itself instead of failing the lesson.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from textual.widget import Widget

from nnsim.lessons.format import WidgetBlock

WIDGETS = {
    "pixel_grid": ("pixel_grid", "PixelGrid"),
    "neuron": ("neuron", "Neuron"),
    "activation_plot": ("activation_plot", "ActivationPlot"),
    "dense_layer": ("dense_layer", "DenseLayer"),
    "network": ("network", "NetworkDiagram"),
    "classify": ("classify", "Classify"),
    "quiz": ("quiz", "Quiz"),
}


def build_widget(block: WidgetBlock, lesson_path: Path) -> Widget:
    module_name, class_name = WIDGETS[block.widget]
    widget_class = getattr(import_module(f"nnsim.tui.widgets.{module_name}"), class_name)
    return widget_class(block.params, base=Path(lesson_path).parent)
