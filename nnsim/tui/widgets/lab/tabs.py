"""The lab's four tabs (1 curves, 2 inside, 3 compare, 4 log): handed the figures at each redraw,
they draw the visible tab only; the others are drawn when they are looked at."""

from __future__ import annotations

from textual.widgets import TabbedContent

from nnsim.engine.config import TrainConfig
from nnsim.tui.live.doctor import Hint
from nnsim.tui.live.lab_figures import LabFigures
from nnsim.tui.widgets.lab.curves import Comparison, Curves
from nnsim.tui.widgets.lab.inside import InsideView
from nnsim.tui.widgets.lab.validation import Validation


class LabTabs(TabbedContent):
    """The screen composes the panes; this draws them from what show() was last handed."""

    def __init__(self) -> None:
        super().__init__(id="lab-tabs", initial="curves")
        self.figures = LabFigures()
        self.runs: list[LabFigures] = []  # a comparison's two runs ([] for one)
        self.configs: list[TrainConfig] = []  # their settings
        self.class_names: list[str] = []
        self.hints: list[Hint] = []
        self.log_scale = False

    def show(
        self,
        figures: LabFigures,
        runs: list[LabFigures],
        configs: list[TrainConfig],
        class_names: list[str],
        hints: list[Hint],
        new_validation: bool,
    ) -> None:
        self.figures, self.runs, self.configs = figures, runs, configs
        self.class_names, self.hints = class_names, hints
        self.draw(new_validation)

    def toggle_log_scale(self) -> None:
        self.log_scale = not self.log_scale
        self.query_one(Curves).show(self.figures, self.log_scale)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self.draw(new_validation=True)

    def draw(self, new_validation: bool) -> None:
        """Draw what the visible tab shows."""
        f, tab = self.figures, self.active
        if tab == "curves":
            self.query_one(Curves).show(f, self.log_scale)
            if new_validation:
                self.query_one(Validation).show(f, self.class_names)
        elif tab == "inside":
            self.query_one(InsideView).show(f, self.hints)
        elif tab == "compare" and self.runs:
            self.query_one(Comparison).show(self.runs, self.configs, self.class_names)
