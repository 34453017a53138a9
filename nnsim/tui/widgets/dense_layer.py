"""DenseLayer: y = f(Wx + b) with every matrix in colour and one neuron's dot product spelled out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static

from nnsim.engine.activations import ACTIVATIONS
from nnsim.lessons.params import DenseLayerParams
from nnsim.tui.colours import weight_colour
from nnsim.tui.formatting import number, signed
from nnsim.tui.live import dense_layer_init, layer_forward


def weight_style(value: float, scale: float) -> str:
    return f"white on {weight_colour(value, scale)}"


class MatrixRow(Static):
    """One neuron's row of the layer; clicking it spells out that neuron."""

    class Picked(Message):
        def __init__(self, neuron: int):
            super().__init__()
            self.neuron = neuron

    def __init__(self, neuron: int):
        super().__init__(classes="matrix-row")
        self.neuron = neuron

    def on_click(self, event: events.Click) -> None:
        self.post_message(self.Picked(self.neuron))


class DenseLayer(Vertical, can_focus=True):
    """↑/↓ (or a click) picks the neuron to spell out; x draws a new input."""

    BINDINGS = [
        Binding("up", "pick(-1)", "Neuron ↑"),
        Binding("down", "pick(1)", "Neuron ↓"),
        Binding("x", "new_input", "New input x"),
    ]

    highlight: reactive[int] = reactive(0, init=False)
    x: reactive[tuple[float, ...]] = reactive((), init=False)  # the input vector

    def __init__(self, params: DenseLayerParams, base: Path | None = None):
        super().__init__()
        self.params = params
        # the engine's own initialisation
        self.weights, self.bias, rng = dense_layer_init(params.inputs, params.neurons, params.seed)
        self.rng = rng
        self.set_reactive(DenseLayer.x, self._draw_input())
        self.set_reactive(DenseLayer.highlight, max(0, min(params.highlight, params.neurons - 1)))
        self.z = self.y = np.zeros(params.neurons)

    def compose(self) -> ComposeResult:
        name = ACTIVATIONS[self.params.activation].title
        yield Static(f"A dense layer: y = {name}(Wx + b)", classes="widget-title")
        yield Static(id="dense-input")
        yield Static(id="dense-header")
        for neuron in range(self.params.neurons):
            yield MatrixRow(neuron)
        yield Static(id="dense-spelled")

    def on_mount(self) -> None:
        self.recompute()

    def recompute(self) -> None:
        self.z, self.y = layer_forward(self.weights, self.bias, self.x, self.params.activation)
        scale = float(np.abs(self.weights).max())
        inputs = Text("x = [ ")
        for value in self.x:
            inputs.append(number(value), style="bold")
            inputs.append("  ")
        inputs.append("]ᵀ   the input, one number per feature")
        self.query_one("#dense-input", Static).update(inputs)
        width = 7 * self.params.inputs
        name = ACTIVATIONS[self.params.activation].title
        shape = f"W  ({self.params.neurons} × {self.params.inputs})"
        header = f"     {shape:<{width}}     b      Wx+b    y={name}"
        self.query_one("#dense-header", Static).update(Text(header, style="dim"))
        for row in self.query(MatrixRow):
            row.update(self._row(row.neuron, scale))
            row.set_class(row.neuron == self.highlight, "-picked")
        self.query_one("#dense-spelled", Static).update(self._spelled_out(self.highlight))

    def _row(self, neuron: int, scale: float) -> Text:
        text = Text(f"n{neuron + 1:<2} │", style="bold" if neuron == self.highlight else "")
        for value in self.weights[neuron]:
            text.append(f"{number(value):>6}", style=weight_style(value, scale))
            text.append(" ")
        text.append("│ + ")
        text.append(f"{number(self.bias[neuron]):>5}", style=weight_style(self.bias[neuron], scale))
        text.append(f"  = {number(self.z[neuron]):>5}  → ")
        text.append(f"{number(self.y[neuron]):>5}", style="bold")
        return text

    def _spelled_out(self, neuron: int) -> Text:
        terms = " + ".join(f"{signed(w)}·{number(x)}" for w, x in zip(self.weights[neuron], self.x, strict=True))
        name = ACTIVATIONS[self.params.activation].title
        text = Text(f"\nNeuron {neuron + 1}: row {neuron + 1} of W times x, plus its bias\n", style="bold")
        z, y = number(self.z[neuron], 3), number(self.y[neuron], 3)
        text.append(f"z = {terms} + {signed(self.bias[neuron])}\n  = {z}\n")
        text.append(f"y = {name}({z}) = ")
        text.append(y, style="bold reverse")
        text.append(f"\nAll {self.params.neurons} neurons do this at once: that is the matrix product Wx.", style="dim")
        return text

    def watch_highlight(self) -> None:
        self.recompute()

    def watch_x(self) -> None:
        self.recompute()

    def _draw_input(self) -> tuple[float, ...]:
        return tuple(np.round(self.rng.uniform(0.0, 1.0, self.params.inputs), 2))

    def action_pick(self, direction: int) -> None:
        self.highlight = (self.highlight + direction) % self.params.neurons

    def action_new_input(self) -> None:
        self.x = self._draw_input()

    def on_matrix_row_picked(self, message: MatrixRow.Picked) -> None:
        message.stop()
        self.focus()
        self.highlight = message.neuron
