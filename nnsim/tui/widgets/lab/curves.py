"""The lab's curves: the loss and accuracy of every step, their moving average and each epoch's
validation (tab 1), and a comparison's two runs drawn together beside a table of both (tab 3)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static
from textual_plotext import PlotextPlot

from nnsim.engine.config import TrainConfig
from nnsim.tui.live.lab_figures import LabFigures
from nnsim.tui.widgets.lab.views import draw_compare, draw_curves, summary_table

COMPARE_INTRO = (
    "Compare: choose a second setting (compare, above) and start: both runs train on the same data "
    "with the same seed, side by side, and their curves are drawn together here."
)


class Curves(Vertical):
    """The loss above, the accuracy below; `y` draws the loss on a log scale."""

    def __init__(self) -> None:
        super().__init__(id="lab-curves")

    def compose(self) -> ComposeResult:
        yield PlotextPlot(id="lab-loss")
        yield PlotextPlot(id="lab-accuracy")

    def show(self, figures: LabFigures, log_scale: bool) -> None:
        plots = (self.query_one("#lab-loss", PlotextPlot), self.query_one("#lab-accuracy", PlotextPlot))
        draw_curves(*plots, figures, log_scale)


class Comparison(Horizontal):
    """A comparison's two runs: their smoothed loss and validation accuracy, and the table of both."""

    def __init__(self) -> None:
        super().__init__(classes="lab-pane")

    def compose(self) -> ComposeResult:
        with Vertical(id="lab-compare-curves"):
            yield PlotextPlot(id="lab-compare-loss")
            yield PlotextPlot(id="lab-compare-accuracy")
        yield Static(COMPARE_INTRO, id="lab-summary")

    def show(self, runs: list[LabFigures], configs: list[TrainConfig], class_names: list[str]) -> None:
        plots = (self.query_one("#lab-compare-loss", PlotextPlot), self.query_one("#lab-compare-accuracy", PlotextPlot))
        draw_compare(*plots, runs, configs)
        self.query_one("#lab-summary", Static).update(summary_table(runs, configs, class_names))
