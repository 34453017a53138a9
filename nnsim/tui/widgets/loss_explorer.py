"""LossExplorer: cross-entropy and focal loss of one prediction, term by term, with their curves."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import Static
from textual_plotext import PlotextPlot

from nnsim.lessons.params import LossExplorerParams
from nnsim.tui.live.losses import loss_curve, loss_terms

GAMMAS = (0.0, 1.0, 2.0, 5.0)  # the curves drawn
GAMMA_COLOURS = {0.0: "gray", 1.0: "cyan", 2.0: "orange", 5.0: "magenta"}
ALPHAS = (0.25, 0.5, 1.0, 2.0)  # what `a` steps the true class's α through
P_AXIS = np.linspace(0.01, 1.0, 100)


@dataclass(frozen=True)
class LossState:
    probabilities: tuple[float, ...]
    true_class: int
    alpha: tuple[float, ...]
    gamma: float


class LossExplorer(Vertical, can_focus=True):
    """c picks the true class, e the other example, g γ, a the true class's α."""

    BINDINGS = [
        Binding("c", "true_class", "True class"),
        Binding("e", "example", "Other example"),
        Binding("g", "gamma", "γ"),
        Binding("a", "alpha", "α"),
    ]

    LISTENS_TO = ("probabilities",)  # a softmax in the same step sends its p
    probabilities: reactive[tuple[float, ...]] = reactive((), init=False)
    state: reactive[LossState] = reactive(LossState((), 0, (), 2.0), init=False)

    def __init__(self, params: LossExplorerParams, base: Path | None = None):
        super().__init__()
        self.params = params
        self.examples = [tuple(params.probabilities), tuple(params.other)]
        self.example = 0
        initial = LossState(self.examples[0], params.true_class, tuple(params.alpha), float(params.gamma))
        self.set_reactive(LossExplorer.state, initial)
        self.terms = loss_terms(initial.probabilities, initial.true_class, initial.alpha, initial.gamma)

    def compose(self) -> ComposeResult:
        yield Static("Loss: how wrong is this prediction?", classes="widget-title")
        yield Static(id="loss-prediction")
        yield Static(id="loss-terms")
        yield PlotextPlot(id="loss-curves")

    def on_mount(self) -> None:
        self.redraw()

    def watch_state(self) -> None:
        self.redraw()

    def watch_probabilities(self, probabilities: tuple[float, ...]) -> None:
        if len(probabilities) == len(self.params.classes):
            self.state = replace(self.state, probabilities=tuple(probabilities))

    def redraw(self) -> None:
        state, names = self.state, self.params.classes
        self.terms = terms = loss_terms(state.probabilities, state.true_class, state.alpha, state.gamma)
        true_name = names[state.true_class]
        prediction = Text("true class: ")
        prediction.append(true_name, style="bold reverse")
        prediction.append("  ·  predicted: ")
        for i, (name, p) in enumerate(zip(names, state.probabilities, strict=True)):
            prediction.append(f"{name} {p:.2f}", style="bold" if i == state.true_class else "")
            prediction.append("  ")
        self.query_one("#loss-prediction", Static).update(prediction)
        self.query_one("#loss-terms", Static).update(self._terms(true_name, terms))
        self._plot(terms.p_true)

    def _terms(self, name: str, t) -> Text:
        g, a = self.state.gamma, t.alpha
        text = Text("\nCross-entropy: only the true class counts\n", style="bold")
        text.append(f"  L = −log p({name}) = −log({t.p_true:.4f}) = −({t.log_p:.4f}) = ")
        text.append(f"{t.cross_entropy:.4f}", style="bold reverse")
        text.append(f"\nFocal loss (α = {a:g}, γ = {g:g}): CE scaled down when p is already high\n", style="bold")
        text.append(f"  L = −α (1 − p)^γ log p = −{a:g} × (1 − {t.p_true:.4f})^{g:g} × ({t.log_p:.4f})\n")
        text.append(f"    = −{a:g} × {t.modulator:.6f} × ({t.log_p:.4f}) = ")
        text.append(f"{t.focal:.6f}" if t.focal < 0.01 else f"{t.focal:.4f}", style="bold reverse")
        text.append(f"\nSquared error, for comparison: Σ (p − y)² = {t.squared_error:.4f}", style="dim")
        text.append(" (at most 2, however wrong: too gentle a signal)", style="dim")
        return text

    def _plot(self, p_true: float) -> None:
        plot = self.query_one(PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        for gamma in GAMMAS:
            label = "γ = 0 (cross-entropy)" if gamma == 0 else f"γ = {gamma:g}"
            plt.plot(P_AXIS.tolist(), loss_curve(P_AXIS, gamma).tolist(), label=label, color=GAMMA_COLOURS[gamma])
        plt.scatter([p_true], [float(loss_curve([p_true], self.state.gamma)[0])], color="white", marker="●")
        plt.xlabel("p(true class)")
        plt.ylim(0, 4.6)
        plt.xlim(0, 1)
        plot.refresh()

    def action_true_class(self) -> None:
        self.state = replace(self.state, true_class=(self.state.true_class + 1) % len(self.params.classes))

    def action_example(self) -> None:
        self.example = 1 - self.example
        self.state = replace(self.state, probabilities=self.examples[self.example])

    def action_gamma(self) -> None:
        choices = (0.0, 0.5, 1.0, 2.0, 5.0)
        later = [g for g in choices if g > self.state.gamma]
        self.state = replace(self.state, gamma=later[0] if later else choices[0])

    def action_alpha(self) -> None:
        state = self.state
        current = state.alpha[state.true_class]
        later = [a for a in ALPHAS if a > current]
        alpha = list(state.alpha)
        alpha[state.true_class] = later[0] if later else ALPHAS[0]
        self.state = replace(state, alpha=tuple(alpha))
