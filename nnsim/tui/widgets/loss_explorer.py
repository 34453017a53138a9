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
from nnsim.tui.formatting import number, signed
from nnsim.tui.live.losses import LossTerms, loss_curve, loss_terms, pulls_as_p_falls

GAMMAS = (0.0, 1.0, 2.0, 5.0)  # the curves drawn (and the current γ's, if it is another)
GAMMA_COLOURS = {0.0: "gray", 0.5: "blue", 1.0: "cyan", 2.0: "orange", 5.0: "magenta"}
GAMMA_CHOICES = (0.0, 0.5, 1.0, 2.0, 5.0)  # what `g` steps through
ALPHAS = (0.25, 0.5, 1.0, 2.0)  # what `a` steps the true class's α through
P_AXIS = np.linspace(0.01, 1.0, 100)
FALLING_P = (0.5, 0.1, 0.01)  # where the squared-error comparison shows both gradients


@dataclass(frozen=True)
class LossState:
    classes: tuple[str, ...]
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

    LISTENS_TO = ("prediction",)  # a softmax in the same step sends its (classes, p)
    prediction: reactive[tuple] = reactive((), init=False)
    state: reactive[LossState] = reactive(LossState((), (), 0, (), 2.0), init=False)

    def __init__(self, params: LossExplorerParams, base: Path | None = None):
        super().__init__()
        self.params = params
        self.examples = [tuple(params.probabilities), tuple(params.other)]
        self.example = 0
        self.follows_softmax = False  # once a softmax has sent its prediction, that is what is scored
        self.note = ""
        self.drawn = False  # on_mount draws; until then a new state is only kept
        self.marker: tuple[float, float] = (0.0, 0.0)  # where the curve's dot is drawn
        initial = LossState(
            tuple(params.classes), self.examples[0], params.true_class, tuple(params.alpha), float(params.gamma)
        )
        self.set_reactive(LossExplorer.state, initial)
        self.terms = loss_terms(initial.probabilities, initial.true_class, initial.alpha, initial.gamma)

    def compose(self) -> ComposeResult:
        yield Static("Loss: how wrong is this prediction?", classes="widget-title")
        yield Static(id="loss-prediction")
        yield Static(id="loss-note")
        yield Static(id="loss-terms")
        yield PlotextPlot(id="loss-curves")

    def on_mount(self) -> None:
        self.drawn = True
        self.redraw()

    def watch_state(self) -> None:
        # A softmax may send its prediction before this widget's parts exist, or as they are taken
        # down (the learner has moved on): then there is nothing to draw on (`_pruning`, as Textual's
        # own recompose checks).
        if self.drawn and not self._pruning:
            self.redraw()

    def watch_prediction(self, prediction: tuple) -> None:
        """A softmax's classes and probabilities; classes it added or removed are followed here."""
        classes, probabilities = (tuple(part) for part in prediction)
        state = self.state
        self.follows_softmax = True
        self.note = ""
        alpha = dict(zip(state.classes, state.alpha, strict=True))
        true_name = state.classes[state.true_class]
        true_class = classes.index(true_name) if true_name in classes else 0
        if true_name not in classes:
            self.note = f"{true_name} was removed in the softmax: the true class is now {classes[0]} (c changes it)."
        added = [name for name in classes if name not in alpha]
        if added:
            self.note = f"{', '.join(added)} added in the softmax, with α = 1."
        self.state = LossState(
            classes, probabilities, true_class, tuple(alpha.get(name, 1.0) for name in classes), state.gamma
        )

    def redraw(self) -> None:
        state = self.state
        self.terms = terms = loss_terms(state.probabilities, state.true_class, state.alpha, state.gamma)
        true_name = state.classes[state.true_class]
        prediction = Text("true class: ")
        prediction.append(true_name, style="bold reverse")
        prediction.append("  ·  predicted: ")
        for i, (name, p) in enumerate(zip(state.classes, state.probabilities, strict=True)):
            prediction.append(f"{name} {p:.2f}", style="bold" if i == state.true_class else "")
            prediction.append("  ")
        self.query_one("#loss-prediction", Static).update(prediction)
        note = self.query_one("#loss-note", Static)
        note.update(Text(self.note, style="italic"))
        note.display = bool(self.note)
        self.query_one("#loss-terms", Static).update(self._terms(true_name, terms))
        self._plot(terms)

    def _terms(self, name: str, t: LossTerms) -> Text:
        g, a = self.state.gamma, t.alpha
        text = Text("\nCross-entropy: only the true class counts\n", style="bold")
        text.append(f"  L = −log p({name}) = −log({t.p_true:.4f}) = −{signed(t.log_p, 4)} = ")
        text.append(f"{t.cross_entropy:.4f}", style="bold reverse")
        if g == 0:
            heading = f"\nFocal loss (α = {a:g}, γ = 0): (1 − p)^0 = 1, so it is α × cross-entropy\n"
        elif a == 1:
            heading = f"\nFocal loss (α = 1, γ = {g:g}): CE scaled down the more, the higher p is\n"
        else:  # α > 1 can make it more than cross-entropy: no "scaled down" then
            heading = f"\nFocal loss (α = {a:g}, γ = {g:g}): α × CE × (1 − p)^γ\n"
        text.append(heading, style="bold")
        text.append(f"  L = −α (1 − p)^γ log p = −{a:g} × (1 − {t.p_true:.4f})^{g:g} × {signed(t.log_p, 4)}\n")
        text.append(f"    = −{a:g} × {t.modulator:.6f} × {signed(t.log_p, 4)} = ")
        text.append(f"{t.focal:.6f}" if t.focal < 0.01 else f"{t.focal:.4f}", style="bold reverse")
        if self.params.squared_error:
            text.append_text(self._squared_error(name, t))
        return text

    def _squared_error(self, name: str, t: LossTerms) -> Text:
        """Squared error beside cross-entropy, and the gradient each gives the true class's score."""
        text = Text(f"\nSquared error Σ (p − y)² = {t.squared_error:.4f}\n", style="bold")
        text.append(f"dL/dz({name}), the gradient training follows:\n")
        ce, se = pulls_as_p_falls(FALLING_P)
        rows = [(f"p({name}) =", "now", [f"{p:g}" for p in FALLING_P])]
        rows += [("cross-entropy", number(t.pull_ce, 4), [number(v) for v in ce])]
        rows += [("squared error", number(t.pull_se, 4), [number(v) for v in se])]
        for label, now, falling in rows:
            text.append(f"  {label:<15}{now:<9}" + "".join(f"{v:<7}" for v in falling) + "\n")
        text.append(f"  (at {', '.join(f'{p:g}' for p in FALLING_P)} the rest is on one wrong class)", style="dim")
        text.rstrip()
        return text

    def _plot(self, terms: LossTerms) -> None:
        plot = self.query_one(PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        alpha, gamma = terms.alpha, self.state.gamma
        for g in sorted({*GAMMAS, gamma}):
            label = ("γ = 0 (cross-entropy)" if g == 0 else f"γ = {g:g}") + (f", α = {alpha:g}" if alpha != 1 else "")
            plt.plot(
                P_AXIS.tolist(), loss_curve(P_AXIS, g, alpha).tolist(), label=label, color=GAMMA_COLOURS.get(g, "green")
            )
        self.marker = (terms.p_true, float(loss_curve([terms.p_true], gamma, alpha)[0]))
        plt.scatter([self.marker[0]], [self.marker[1]], color="white", marker="●")
        plt.xlabel("p(true class)")
        plt.ylim(0, 4.6 * max(alpha, 1.0))
        plt.xlim(0, 1)
        plot.refresh()

    def action_true_class(self) -> None:
        state = self.state
        self.note = ""
        self.state = replace(state, true_class=(state.true_class + 1) % len(state.classes))

    def action_example(self) -> None:
        if self.follows_softmax:
            self.note = "Here the prediction comes from the softmax: change its scores there (Tab)."
            self.redraw()
            return
        self.example = 1 - self.example
        self.state = replace(self.state, probabilities=self.examples[self.example])

    def action_gamma(self) -> None:
        later = [g for g in GAMMA_CHOICES if g > self.state.gamma]
        self.state = replace(self.state, gamma=later[0] if later else GAMMA_CHOICES[0])

    def action_alpha(self) -> None:
        state = self.state
        current = state.alpha[state.true_class]
        later = [a for a in ALPHAS if a > current]
        alpha = list(state.alpha)
        alpha[state.true_class] = later[0] if later else ALPHAS[0]
        self.state = replace(state, alpha=tuple(alpha))
