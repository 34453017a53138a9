"""Beside the curves: the last validation's confusion matrix, and validation images with what the
network predicts for each."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from nnsim.tui.live.lab_figures import LabFigures
from nnsim.tui.widgets.lab.views import confusion_table, sample_tiles


class Validation(VerticalScroll):
    """The confusion matrix above the validation images; drawn once each validation."""

    def __init__(self) -> None:
        super().__init__(id="lab-side")

    def compose(self) -> ComposeResult:
        yield Static(id="lab-confusion")
        yield Static(id="lab-samples")

    def show(self, figures: LabFigures, class_names: list[str]) -> None:
        if figures.confusion is not None:
            self.query_one("#lab-confusion", Static).update(confusion_table(figures.confusion, class_names))
        if figures.samples:
            samples = self.query_one("#lab-samples", Static)
            samples.update(sample_tiles(figures.samples, class_names, samples.size.width))
