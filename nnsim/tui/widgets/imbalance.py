"""ImbalanceDemo: cross-entropy, α-weighted cross-entropy and focal loss on imbalanced data, recall class by class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import ProgressBar, Static
from textual.worker import get_current_worker

from nnsim.lessons.params import ImbalanceParams
from nnsim.tui.live.losses import ImbalanceResult, compare_on_imbalance

BAR_WIDTH = 6
RUN_COLOURS = ("blue", "yellow", "green")
HEADERS = {"cross-entropy": "cross-\nentropy", "α-weighted CE": "α-weighted\nCE"}
GROUP = 2  # how many classes count as "common" and as "rare" in the summary rows


class ImbalanceDemo(Vertical):
    """Trains three networks when the step opens, then shows what each gets right."""

    def __init__(self, params: ImbalanceParams, base: Path | None = None):
        super().__init__()
        self.params = params
        self.result: ImbalanceResult | None = None

    def compose(self) -> ComposeResult:
        yield Static("Rare classes: three losses, the same network", classes="widget-title")
        yield Static(id="imbalance-status")
        yield ProgressBar(total=3, show_eta=False, id="imbalance-progress")
        yield Static(id="imbalance-table")

    def on_mount(self) -> None:
        self.train()

    @work(thread=True, exclusive=True)
    def train(self) -> None:
        worker = get_current_worker()
        p = self.params
        result = compare_on_imbalance(
            p.epochs,
            p.hidden,
            p.gamma,
            p.seed,
            cancelled=lambda: worker.is_cancelled,
            started=lambda i, name: self.app.call_from_thread(self._started, i, name),
        )
        if result is not None:
            self.app.call_from_thread(self._trained, result)

    def _started(self, index: int, name: str) -> None:
        if not self.is_mounted:  # the learner has moved on
            return
        self.query_one("#imbalance-progress", ProgressBar).update(progress=index)
        self.query_one("#imbalance-status", Static).update(
            f"Training network {index + 1} of 3 with {name} ({self.params.epochs} epochs, "
            "the same first weights and order of images as the others)…"
        )

    def _trained(self, result: ImbalanceResult) -> None:
        if not self.is_mounted:
            return
        self.result = result
        self.query_one("#imbalance-progress").display = False
        common, rare = groups(result.train_counts)
        names = result.class_names
        tested = sorted(set(result.test_counts))
        each = f"{tested[0]} each" if len(tested) == 1 else "per class: " + ", ".join(map(str, result.test_counts))
        self.query_one("#imbalance-status", Static).update(
            f"Recall: of the test images of a class ({each}), the share the network named right. "
            f"The last rows are means: over the common classes ({' and '.join(names[c] for c in common)}), "
            f"the rare ones ({' and '.join(names[c] for c in rare)}) and all."
        )
        self.query_one("#imbalance-table", Static).update(self._table(result, common, rare))

    def _table(self, result: ImbalanceResult, common: list[int], rare: list[int]) -> Table:
        table = Table(show_edge=False, box=None, padding=(0, 1), header_style="bold")
        table.add_column("class", no_wrap=True)
        table.add_column("train", justify="right", no_wrap=True)
        table.add_column("α", no_wrap=True)
        for run in result.runs:
            table.add_column(HEADERS.get(run.loss, run.loss.replace(" (", "\n(")), no_wrap=True)
        for i, name in enumerate(result.class_names):
            shares = [run.recall[i] for run in result.runs]
            table.add_row(name, f"{result.train_counts[i]:,}", f"{result.alpha[i]:.2f}", *_cells(shares))
        table.add_section()
        for label, classes in (("common", common), ("rare", rare)):
            shares = [float(np.mean([run.recall[c] for c in classes])) for run in result.runs]
            table.add_row(Text(label, style="italic"), "", "", *_cells(shares))
        table.add_row(Text("all", style="bold"), "", "", *_cells([run.mean_recall for run in result.runs]))
        return table


def groups(train_counts: list[int]) -> tuple[list[int], list[int]]:
    """The classes with the most and with the fewest training images (GROUP of each), most first."""
    order = [int(c) for c in np.argsort(train_counts, kind="stable")[::-1]]
    return order[:GROUP], order[-GROUP:]


def _cells(shares: list[float]) -> list[Text]:
    return [_bar(share, colour) for share, colour in zip(shares, RUN_COLOURS, strict=True)]


def _bar(share: float, colour: str) -> Text:
    filled = int(round(share * BAR_WIDTH))
    bar = Text("█" * filled, style=colour)
    bar.append("░" * (BAR_WIDTH - filled), style="dim")
    bar.append(f" {share:4.0%}")
    return bar
