"""ImbalanceDemo: cross-entropy against focal loss on imbalanced data, recall class by class."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import ProgressBar, Static
from textual.worker import get_current_worker

from nnsim.lessons.params import ImbalanceParams
from nnsim.tui.live.losses import ImbalanceResult, compare_on_imbalance

BAR_WIDTH = 12


class ImbalanceDemo(Vertical):
    """Trains two networks when the step opens, then shows what each gets right."""

    def __init__(self, params: ImbalanceParams, base: Path | None = None):
        super().__init__()
        self.params = params
        self.result: ImbalanceResult | None = None

    def compose(self) -> ComposeResult:
        yield Static("Rare classes: cross-entropy against focal loss", classes="widget-title")
        yield Static(id="imbalance-status")
        yield ProgressBar(total=None, show_eta=False, id="imbalance-progress")
        yield Static(id="imbalance-table")

    def on_mount(self) -> None:
        p = self.params
        self.query_one("#imbalance-status", Static).update(
            f"Training two networks now ({p.epochs} epochs each, the same seed): one with cross-entropy, "
            f"one with focal loss (γ = {p.gamma:g}, α = inverse class frequency)…"
        )
        self.train()

    @work(thread=True, exclusive=True)
    def train(self) -> None:
        worker = get_current_worker()
        p = self.params
        result = compare_on_imbalance(p.epochs, p.hidden, p.gamma, p.seed, cancelled=lambda: worker.is_cancelled)
        if result is not None:
            self.app.call_from_thread(self._trained, result)

    def _trained(self, result: ImbalanceResult) -> None:
        self.result = result
        self.query_one("#imbalance-progress").display = False
        self.query_one("#imbalance-status", Static).update(
            "Recall: of the test images of each class (100 each), the share the network named right."
        )
        table = Table(show_edge=False, box=None, padding=(0, 1), header_style="bold")
        for column in ("class", "train images", "α", "cross-entropy", "", "focal loss", ""):
            table.add_column(column, no_wrap=True)
        for i, name in enumerate(result.class_names):
            table.add_row(
                name,
                f"{result.train_counts[i]:,}",
                f"{result.alpha[i]:.2f}",
                _bar(result.recall_ce[i], "blue"),
                f"{result.recall_ce[i]:.0%}",
                _bar(result.recall_focal[i], "green"),
                f"{result.recall_focal[i]:.0%}",
            )
        self.query_one("#imbalance-table", Static).update(table)


def _bar(share: float, colour: str) -> Text:
    filled = int(round(share * BAR_WIDTH))
    bar = Text("█" * filled, style=colour)
    bar.append("░" * (BAR_WIDTH - filled), style="dim")
    return bar
