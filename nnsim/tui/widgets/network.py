"""NetworkDiagram: a small MLP trained on real digits when the step opens, drawn layer by layer.

Edges are blue for positive weights and red for negative ones, brighter the larger they are; nodes
light up with their activation for the digit shown. Only the input pixels that matter most are
drawn: 784 would be a grey wall. With `compare`, a second network is trained alike and both scores
on the test digits are shown, one line each.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.style import Style
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import ProgressBar, Static
from textual.worker import get_current_worker

from nnsim.lessons.params import NetworkParams
from nnsim.tui.canvas import BrailleCanvas
from nnsim.tui.colours import weight_colour
from nnsim.tui.images import half_blocks, to_rgb
from nnsim.tui.live.network import TrainedMLP, train_mlp

SHOWN_INPUTS = 10
CANVAS_ROWS = 20
DIGIT_WIDTH = 30  # the digit beside the diagram, with its margin
LABEL_WIDTH = 6  # cells left of the input nodes for their (row, column) labels
OUTPUT_LABEL = 9  # cells right of the output nodes: "9 100%"
EDGE_SHARE = 0.3  # draw the strongest 30 % of each layer's edges; all of them are a grey wall


def layer_sizes(hidden) -> str:
    return " → ".join(str(n) for n in [784, *hidden, 10])


def sizes_of(network: TrainedMLP) -> str:
    """784 → 32 → 10, read from the trained weights themselves."""
    return " → ".join(str(n) for n in [network.weights[0].shape[1], *[w.shape[0] for w in network.weights]])


def node_style(activation: float, top: float) -> Style:
    level = int(60 + 195 * min(1.0, max(0.0, activation) / top)) if top > 0 else 60
    return Style(color=f"rgb({level},{level},{level // 3})", bold=True)


class NetworkDiagram(Vertical, can_focus=True):
    """↑/↓ (or a click on the digit) shows another test digit flowing through the network."""

    BINDINGS = [
        Binding("up", "pick(-1)", "Digit ↑"),
        Binding("down", "pick(1)", "Digit ↓"),
    ]

    sample: reactive[int] = reactive(0)

    def __init__(self, params: NetworkParams, base: Path | None = None):
        super().__init__()
        self.params = params
        self.trained: TrainedMLP | None = None  # the network drawn
        self.compared: TrainedMLP | None = None  # the second one, when the step compares two

    def compose(self) -> ComposeResult:
        yield Static(f"A fully connected network: {layer_sizes(self.params.hidden)}", classes="widget-title")
        yield Static(id="network-status")
        yield ProgressBar(total=None, show_eta=False, id="network-progress")
        with Horizontal(id="network-body"):
            yield Static(id="network-digit")
            yield Static(id="network-canvas")

    def on_mount(self) -> None:
        count = "two networks" if self.params.compare else "it"
        self.query_one("#network-status", Static).update(
            f"Training {count} now: {self.params.steps} steps on real handwritten digits (mnist-mini)…"
        )
        self.train()

    @work(thread=True, exclusive=True)
    def train(self) -> None:
        worker = get_current_worker()
        trained = []
        for hidden in [self.params.hidden, self.params.compare] if self.params.compare else [self.params.hidden]:
            network = train_mlp(tuple(hidden), self.params.steps, self.params.seed, lambda: worker.is_cancelled)
            if network is None:
                return
            trained.append(network)
        self.app.call_from_thread(self._trained, *trained)

    def _trained(self, trained: TrainedMLP, compared: TrainedMLP | None = None) -> None:
        self.trained, self.compared = trained, compared
        self.query_one("#network-progress").display = False
        self.query_one("#network-status", Static).update(self.scores())
        self.redraw()

    def scores(self) -> Text:
        """Each network's share of the test digits named right, one line each: the figures to compare."""
        networks = [self.trained] if self.compared is None else [self.trained, self.compared]
        text = Text(f"Trained by nnsim's engine (seed {self.params.seed}); the share of the ")
        text.append(f"{self.trained.test_digits:,} test digits, never seen in training, that it names right:\n")
        width = max(len(sizes_of(n)) for n in networks)
        for network in networks:
            drawn = "  (drawn below)" if network is self.trained and self.compared is not None else ""
            text.append(f"  {sizes_of(network):<{width}}  {network.steps} steps  ")
            text.append(f"{network.test_accuracy:.1%}", style="bold")
            text.append(f"{drawn}\n")
        text.append("Lines: the strongest weights, blue positive, red negative, brighter larger.", style="dim")
        return text

    @property
    def ready(self) -> bool:
        return self.trained is not None

    def on_resize(self) -> None:
        if self.trained is not None:
            self.redraw()

    def watch_sample(self) -> None:
        if self.trained is not None:
            self.redraw()

    def action_pick(self, direction: int) -> None:
        if self.trained is not None:
            self.sample = (self.sample + direction) % len(self.trained.labels)

    def on_click(self, event) -> None:
        if self.trained is not None and event.widget is self.query_one("#network-digit"):
            self.action_pick(1)

    def redraw(self) -> None:
        trained = self.trained
        image = trained.images[self.sample][0]
        probs = trained.probabilities[self.sample]
        digit = half_blocks(to_rgb(image))
        digit.append(f"\nthis digit: a {trained.labels[self.sample]}\n", style="bold")
        digit.append(f"network says {int(np.argmax(probs))} (share {probs.max():.0%})", style="dim")
        self.query_one("#network-digit", Static).update(digit)
        self.query_one("#network-canvas", Static).update(self.diagram())

    def diagram(self) -> Text:
        trained = self.trained
        acts = trained.activations[self.sample]
        first = trained.weights[0]
        inputs = np.sort(np.argsort(-np.abs(first).sum(axis=0))[:SHOWN_INPUTS])  # the pixels that matter most
        layer_nodes = [inputs, *[np.arange(len(b)) for b in trained.biases]]
        width = max(40, self.size.width - DIGIT_WIDTH - 2)
        canvas = BrailleCanvas(width, CANVAS_ROWS)
        columns = np.linspace(LABEL_WIDTH, width - OUTPUT_LABEL, len(layer_nodes)).astype(int)
        rows = [
            np.linspace(0, CANVAS_ROWS - 1, len(nodes)).astype(int) if len(nodes) > 1 else [CANVAS_ROWS // 2]
            for nodes in layer_nodes
        ]
        for layer, weights in enumerate(trained.weights):
            sub = weights[np.ix_(layer_nodes[layer + 1], layer_nodes[layer])]
            scale = float(np.abs(sub).max()) or 1.0
            threshold = np.quantile(np.abs(sub), 1.0 - EDGE_SHARE)
            for j, _ in enumerate(layer_nodes[layer + 1]):
                for i, _ in enumerate(layer_nodes[layer]):
                    w = sub[j, i]
                    if abs(w) < threshold:
                        continue
                    canvas.line(
                        2 * columns[layer] + 2,
                        4 * rows[layer][i] + 2,
                        2 * columns[layer + 1] - 1,
                        4 * rows[layer + 1][j] + 2,
                        weight_colour(w, scale),
                        abs(w),
                    )
        for layer, nodes in enumerate(layer_nodes):
            last = layer == len(layer_nodes) - 1
            values = trained.probabilities[self.sample] if last else acts[layer][nodes]
            top = float(values.max()) if len(values) else 1.0
            for k, node in enumerate(nodes):
                canvas.label(columns[layer], rows[layer][k], "●", node_style(values[k], top))
                if layer == 0:
                    r, c = divmod(int(node), 28)
                    canvas.label(0, rows[layer][k], f"{r:>2},{c:<2}", "dim")
        probs = trained.probabilities[self.sample]
        best = int(np.argmax(probs))
        for k in range(len(layer_nodes[-1])):
            canvas.label(columns[-1] + 2, rows[-1][k], f"{k} {probs[k]:>4.0%}", "bold reverse" if k == best else "")
        header = Text(no_wrap=True)
        header.append(f"{'pixels':<{columns[1] - 2}}", style="dim")
        for layer, hidden in enumerate(self.params.hidden, start=1):
            gap = (columns[layer + 1] - columns[layer]) if layer + 1 < len(columns) else 10
            name = f"hidden {hidden}"
            header.append(f"{name:<{max(gap, len(name) + 1)}}", style="dim")  # never run together
        header.append("digits", style="dim")
        header.append("\n")
        return header + canvas.render()
