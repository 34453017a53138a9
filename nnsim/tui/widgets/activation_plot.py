"""ActivationPlot: ReLU, Sigmoid, Tanh and Linear drawn by the engine, with the current z marked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import Static
from textual_plotext import PlotextPlot

from nnsim.engine.activations import ACTIVATIONS, LESSON_ACTIVATIONS
from nnsim.lessons.params import ActivationPlotParams
from nnsim.tui.live import activate

COLOURS = {"relu": "orange", "sigmoid": "cyan", "tanh": "magenta", "linear": "gray", "gelu": "green"}
POINTS = 161


class ActivationPlot(Vertical, can_focus=True):
    """f(z) for each chosen function; + and − move z (a neuron in the same step moves it too)."""

    BINDINGS = [
        Binding("plus,equals_sign", "nudge(1)", "z up", key_display="+"),
        Binding("minus,underscore", "nudge(-1)", "z down", key_display="−"),
    ]

    LISTENS_TO = ("z",)  # a neuron in the same step publishes its z
    z: reactive[float] = reactive(0.0)

    def __init__(self, params: ActivationPlotParams, base: Path | None = None):
        super().__init__()
        self.params = params
        self.functions = [name for name in params.functions if name in ACTIVATIONS] or list(LESSON_ACTIVATIONS)
        self.set_reactive(ActivationPlot.z, float(params.z))

    def compose(self) -> ComposeResult:
        yield Static(id="activation-title", classes="widget-title")
        yield PlotextPlot(id="activation-curves")
        yield Static(id="activation-table")

    def on_mount(self) -> None:
        self.redraw()

    def watch_z(self) -> None:
        if self.is_mounted:
            self.redraw()

    def outputs(self) -> dict[str, float]:
        """f(z) for the current z, per function, from the engine."""
        return {name: float(activate(name, [self.z])[0]) for name in self.functions}

    def redraw(self) -> None:
        limit = self.params.range
        z_axis = np.linspace(-limit, limit, POINTS)
        outputs = self.outputs()
        plot = self.query_one(PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        for name in sorted(self.functions, key=lambda n: n != "linear"):  # linear first: ReLU draws over it
            color = COLOURS[name]
            plt.plot(
                z_axis.tolist(),
                activate(name, z_axis).tolist(),
                label=ACTIVATIONS[name].title,
                color=color,
                marker="braille",
            )
            if abs(self.z) <= limit:
                plt.scatter([self.z], [outputs[name]], color=color, marker="●")
        if abs(self.z) <= limit:
            plt.vline(self.z, "white")
        plt.ylim(-1.5, max(1.5, 0.75 * limit))
        plt.xlim(-limit, limit)
        plt.xlabel("z")
        plot.refresh()
        self.query_one("#activation-title", Static).update(f"Activation functions at z = {self.z:.2f}")
        self.query_one("#activation-table", Static).update(self._table(outputs))

    def _table(self, outputs: dict[str, float]) -> Table:
        table = Table(show_edge=False, box=None, padding=(0, 1), header_style="bold")
        for column in ("name", "f(z)", f"f({self.z:.2f})", "output", "what it does"):
            table.add_column(column, no_wrap=column != "what it does")
        for name in self.functions:
            facts = ACTIVATIONS[name]
            table.add_row(
                f"[{COLOURS[name]}]{facts.title}[/]",
                facts.formula,
                f"{outputs[name]:.3f}",
                facts.output_range,
                facts.description,
            )
        return table

    def action_nudge(self, direction: int) -> None:
        self.z = round(self.z + 0.25 * direction, 6)
