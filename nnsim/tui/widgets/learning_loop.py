"""LearningLoopStepper: forward → loss → backward → update, one phase at a time, then epochs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Static
from textual_plotext import PlotextPlot

from nnsim.lessons.params import LearningLoopParams
from nnsim.tui.formatting import number
from nnsim.tui.live.learning_loop import PHASES, STEP_H, LearningLoop

SHOWN = 2  # numbers of each parameter shown: one line a parameter at 70 columns
MAP_COLUMNS, MAP_ROWS = 26, 13  # the map of what the network says where, in cells
CLASS_COLOURS = ("rgb(110,170,255)", "rgb(255,100,100)")  # blue, red: the points


class LearningLoopStepper(Vertical, can_focus=True):
    """s runs the next phase, e one epoch, r ten epochs, + and − double or halve η, 0 starts afresh."""

    BINDINGS = [
        Binding("s", "phase", "Next phase"),
        Binding("e", "epochs(1)", "1 epoch"),
        Binding("r", "epochs(10)", "10 epochs"),
        Binding("plus,equals_sign", "rate(2)", "η ×2", key_display="+"),
        Binding("minus,underscore", "rate(0.5)", "η ÷2", key_display="−"),
        Binding("0", "reset", "Afresh"),
    ]

    shown: reactive[int] = reactive(0, init=False)  # bumped after every change: one watcher draws

    def __init__(self, params: LearningLoopParams, base: Path | None = None):
        super().__init__()
        self.params = params
        self.loop = self._new_loop(params.lr)
        self.last = ""  # the phase that ran last

    def _new_loop(self, lr: float) -> LearningLoop:
        p = self.params
        return LearningLoop(lr=lr, hidden=p.hidden, points=p.points, seed=p.seed, patience=p.patience)

    def compose(self) -> ComposeResult:
        yield Static(id="loop-phases", classes="widget-title")
        yield Static(id="loop-detail")
        yield Static(id="loop-status")
        with Horizontal(id="loop-bottom"):
            yield Static(id="loop-map")
            yield PlotextPlot(id="loop-curves")

    def on_mount(self) -> None:
        self.redraw()

    def watch_shown(self) -> None:
        self.redraw()

    # --- actions ------------------------------------------------------------------------------
    def action_phase(self) -> None:
        self.last = self.loop.step()
        self.shown += 1

    def action_epochs(self, count: int) -> None:
        for _ in range(count):
            if self.loop.epoch() is None:
                break
        self.last = "epochs"
        self.shown += 1

    def action_rate(self, factor: float) -> None:
        self.loop.lr = min(512.0, max(1 / 512, self.loop.lr * factor))
        self.shown += 1

    def action_reset(self) -> None:
        self.loop, self.last = self._new_loop(self.loop.lr), ""
        self.shown += 1

    # --- drawing ------------------------------------------------------------------------------
    def redraw(self) -> None:
        state = self.loop.state
        phases = Text("Loop: ")
        for index, name in enumerate(PHASES):
            style = "bold reverse" if index == state.phase else ("bold" if name == self.last else "dim")
            phases.append(f"{index + 1} {name}", style=style)
            phases.append(" → " if index < len(PHASES) - 1 else "  ↺")
        self.query_one("#loop-phases", Static).update(phases)
        detail = {
            "forward": self._forward,
            "loss": self._loss,
            "backward": self._backward,
            "update": self._update,
        }.get(self.last, self._intro)()
        self.query_one("#loop-detail", Static).update(detail)
        updates = self.loop.trainer.steps  # by epochs, and by pressing s through an update phase
        status = Text(f"η = {self.loop.lr:g}   epochs: {len(state.epochs)}   updates: {updates}", style="bold")
        if state.epochs:
            last, n_train, n_val = state.epochs[-1], len(self.loop.y), len(self.loop.trainer.y_val)
            status.append(f"   last epoch: train loss {last.train_loss:.4f} ({last.train_right}/{n_train} right)")
            status.append(f"   validation loss {last.val_loss:.4f} ({last.val_right}/{n_val} right)")
        if 0 < state.best_epoch < len(state.epochs):
            so_far = "" if state.stopped else " so far"
            status.append(f"\nlowest validation loss{so_far}: epoch {state.best_epoch} (the green line)", style="green")
        if state.stopped:
            status.append(f"\n{state.stopped}", style="yellow")
        self.query_one("#loop-status", Static).update(status)
        self.query_one("#loop-map", Static).update(self._map())
        self._plot()

    def _intro(self) -> Text:
        n, n_val = len(self.loop.y), len(self.loop.trainer.y_val)
        return Text(
            f"2 inputs → {self.params.hidden} ReLU neurons → 2 classes; {n} training and {n_val} validation points "
            f"from two overlapping clouds. The inputs are first standardised with one mean and one std over all "
            f"{n + n_val} points (fixed, not learned).\nPress s to run the next phase on all training points, e for "
            "a whole epoch.",
            style="dim",
        )

    def _forward(self) -> Table:
        state = self.loop.state
        table = Table(
            "x₁",
            "x₂",
            "class",
            "logits",
            "p(red)",
            title="1. Forward: each point through the layers",
            title_justify="left",
            box=None,
            padding=(0, 1),
        )
        for x, y, z, p in zip(self.loop.x[:, 0, 0], self.loop.y, state.logits, state.probabilities, strict=True):
            table.add_row(
                number(x[0]), number(x[1]), "red" if y else "blue", f"{number(z[0])}, {number(z[1])}", f"{p[1]:.3f}"
            )
        return table

    def _loss(self) -> Text:
        state = self.loop.state
        text = Text("2. Loss: how wrong, on average\n", style="bold")
        p_true = state.probabilities[np.arange(len(self.loop.y)), self.loop.y]
        terms = " + ".join(f"{-np.log(p):.3f}" for p in p_true[:4])
        text.append(f"L = mean of −log p(true class) = ({terms}{' + …' if len(p_true) > 4 else ''}) / {len(p_true)}\n")
        text.append(f"  = {state.loss:.6f}", style="bold reverse")
        text.append("\nand dL/dlogits = (p − one-hot) / N, the start of backpropagation:\n")
        text.append(", ".join(f"({number(a, 3)}, {number(b, 3)})" for a, b in state.dlogits[:4]) + " …", style="dim")
        return text

    def _backward(self) -> Group:
        table = Table(
            "parameter",
            "∇θ L, backprop",
            "finite diff.",
            "rel. error",
            title="3. Backward: the gradient of every parameter, checked",
            title_justify="left",
            box=None,
            padding=(0, 1),
        )
        for g in self.loop.state.gradients:
            flat_a, flat_n = g.analytic.reshape(-1), g.numeric.reshape(-1)
            more = " …" if flat_a.size > SHOWN else ""
            table.add_row(
                g.name,
                " ".join(f"{v:+.5f}" for v in flat_a[:SHOWN]) + more,
                " ".join(f"{v:+.5f}" for v in flat_n[:SHOWN]) + more,
                Text(f"{g.error:.1e}", style="green" if g.error < 1e-6 else "red"),
            )
        eps = np.finfo(np.float64).eps
        note = Text(
            "Why not 0: the finite difference subtracts two losses that agree in their first digits, and float64 "
            f"keeps only about 16 (ε = {eps:.1e}); dividing that difference by 2h, with h = {STEP_H:g}, magnifies its "
            "rounding 1/(2h) times. Backprop has no h: the leftover is almost all the finite difference's.",
            style="dim",
        )
        return Group(table, note)

    def _update(self) -> Text:
        state, lr = self.loop.state, self.loop.lr
        text = Text(f"4. Update: θ ← θ − η ∇θ L, with η = {lr:g}\n", style="bold")
        gradients = {g.name: g.analytic for g in state.gradients}
        shown = list(state.after)[-2:]  # the output layer: few enough numbers to show
        for name in shown:
            before, after, grad = (a.reshape(-1)[:4] for a in (state.before[name], state.after[name], gradients[name]))
            parts = [
                f"{number(b, 4)} − {lr:g}×({number(g, 4)}) = {number(a, 4)}"
                for b, a, g in zip(before, after, grad, strict=True)
            ]
            more = " …" if state.after[name].size > len(parts) else ""
            text.append(f"{name}: " + ";  ".join(parts) + more + "\n")
        others = [name for name in state.after if name not in shown]
        text.append(
            f"({', '.join(others)} change the same way.) Then the loop starts again with the new weights (press s).",
            style="dim",
        )
        return text

    def _map(self) -> Text:
        """Each cell coloured by the class the network gives its centre (brighter: surer), the
        training points as ● and the validation points as ○ in their own class's colour."""
        loop = self.loop
        red = loop.red_map(MAP_COLUMNS, MAP_ROWS)
        marks: dict[tuple[int, int], tuple[str, int]] = {}
        x1_from, x1_to, x2_from, x2_to = loop.map_extent()
        for points, labels, mark in ((loop.trainer.x_val, loop.trainer.y_val, "○"), (loop.x, loop.y, "●")):
            for (x1, x2), label in zip(points[:, 0, 0], labels, strict=True):
                column = min(MAP_COLUMNS - 1, int((x1 - x1_from) / (x1_to - x1_from) * MAP_COLUMNS))
                row = min(MAP_ROWS - 1, int((x2_to - x2) / (x2_to - x2_from) * MAP_ROWS))
                marks[row, column] = (mark, int(label))
        text = Text("what the network says where\n", style="bold")
        for row in range(MAP_ROWS):
            for column in range(MAP_COLUMNS):
                mark, label = marks.get((row, column), (" ", 0))
                text.append(mark, style=f"bold {CLASS_COLOURS[label]} on {_region_colour(red[row, column])}")
            text.append("\n")
        text.append("● training  ○ validation\nx₁ →, x₂ ↑; brighter: surer", style="dim")
        return text

    def _plot(self) -> None:
        plot = self.query_one(PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        state = self.loop.state
        history = state.history
        plot.display = bool(history)  # no empty frame before the first epoch
        if history:
            epochs = list(range(1, len(history) + 1))
            finite = [(t if np.isfinite(t) else 10.0, v if np.isfinite(v) else 10.0) for t, v in history]
            plt.plot(epochs, [t for t, _ in finite], label="train loss", color="cyan", marker="braille")
            plt.plot(epochs, [v for _, v in finite], label="validation loss", color="orange", marker="braille")
            if 0 < state.best_epoch < len(history):  # the best epoch is behind: mark it
                plt.vline(state.best_epoch, color="green")
            plt.xticks(_epoch_ticks(len(history)))
        plt.xlabel("epoch")
        plot.refresh()


def _epoch_ticks(epochs: int) -> list[int]:
    """Whole epochs to label on the x axis: 1, then every 1, 2 or 5 × 10^k, six or fewer."""
    step = next(s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10**9) if epochs / s <= 6)
    return [1, *range(step, epochs + 1, step)] if step > 1 else list(range(1, epochs + 1))


def _region_colour(p_red: float) -> str:
    """Dark blue where the network says blue, dark red where it says red, grey where it is unsure."""
    strength = min(1.0, abs(p_red - 0.5) * 2)
    grey = 45
    if p_red >= 0.5:
        return f"rgb({int(grey + 75 * strength)},{int(grey - 15 * strength)},{int(grey - 10 * strength)})"
    return f"rgb({int(grey - 15 * strength)},{int(grey + 5 * strength)},{int(grey + 75 * strength)})"
