"""Inside the network (tab 2): what the first layer learned (CNN filters, MLP weights) or where the
CLS token attends (ViT), dead ReLUs; beside it the training doctor's hints and each parameter's norms."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Static

from nnsim.tui.live.doctor import Hint
from nnsim.tui.live.lab_figures import LabFigures
from nnsim.tui.widgets.lab.views import hints_text, inside_view, norms_table


class InsideView(Horizontal):
    """Filters or attention on the left; hints and norms on the right."""

    def __init__(self) -> None:
        super().__init__(classes="lab-pane")

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="lab-inside-main"):
            yield Static(id="lab-filters")
        with VerticalScroll(id="lab-inside-side"):
            yield Static(id="lab-hints")
            yield Static(id="lab-norms")

    def show(self, figures: LabFigures, hints: list[Hint]) -> None:
        if figures.inside is None:
            return
        self.query_one("#lab-hints", Static).update(hints_text(hints))
        filters = self.query_one("#lab-filters", Static)
        filters.update(inside_view(figures, filters.size.width or 56))
        self.query_one("#lab-norms", Static).update(norms_table(figures))
