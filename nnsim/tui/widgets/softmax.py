"""SoftmaxBars: logits become probabilities, p_i = e^(z_i/T) / Σ_j e^(z_j/T), every number shown."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import Static

from nnsim.lessons.params import SoftmaxParams
from nnsim.tui.formatting import number, signed
from nnsim.tui.live.losses import softmax_steps
from nnsim.tui.messages import Publish

BAR_WIDTH = 10
LIMIT = 10.0
NEW_CLASS_NAMES = ("bird", "ship", "frog", "tree", "boat")


@dataclass(frozen=True)
class SoftmaxState:
    classes: tuple[str, ...]
    logits: tuple[float, ...]
    temperature: float
    picked: int


class SoftmaxBars(Vertical, can_focus=True):
    """↑/↓ pick a class, +/− change its logit, [ and ] the temperature, a adds a class, d removes one."""

    BINDINGS = [
        Binding("up", "pick(-1)", "Class ↑", show=False),
        Binding("down", "pick(1)", "Class ↓", show=False),
        Binding("plus,equals_sign", "nudge(1)", "Logit +", key_display="+"),
        Binding("minus,underscore", "nudge(-1)", "Logit −", key_display="−"),
        Binding("right_square_bracket", "temperature(1)", "T up", key_display="]"),
        Binding("left_square_bracket", "temperature(-1)", "T down", key_display="["),
        Binding("a", "add_class", "Add class"),
        Binding("d", "remove_class", "Remove class"),
    ]

    state: reactive[SoftmaxState] = reactive(SoftmaxState((), (), 1.0, 0), init=False)

    def __init__(self, params: SoftmaxParams, base: Path | None = None):
        super().__init__()
        self.params = params
        initial = SoftmaxState(tuple(params.classes), tuple(params.logits), float(params.temperature), 0)
        self.set_reactive(SoftmaxBars.state, initial)
        self.steps = softmax_steps(initial.logits, initial.temperature)
        self.notice = ""  # why a key did nothing (no class to add or remove)

    def compose(self) -> ComposeResult:
        yield Static("Softmax: scores (logits) to probabilities", classes="widget-title")
        yield Static(id="softmax-table")
        yield Static(id="softmax-sum")

    def on_mount(self) -> None:
        self.redraw()

    def watch_state(self) -> None:
        self.notice = ""
        self.redraw()

    @property
    def probabilities(self) -> list[float]:
        return [float(p) for p in self.steps.probs]

    def redraw(self) -> None:
        state = self.state
        self.steps = steps = softmax_steps(state.logits, state.temperature)
        top = tied_for_first(state.logits)
        t = state.temperature
        power = "e^(z/T)" if t != 1 else "e^z"  # T is not named until the learner changes it
        table = Table(show_edge=False, box=None, padding=(0, 1), pad_edge=False, header_style="bold")
        for column in ("class", "z", "z/T" if t != 1 else "", power, "÷ Σ", "p", ""):
            table.add_column(column, no_wrap=True)
        for i, name in enumerate(state.classes):
            filled = int(round(steps.probs[i] * BAR_WIDTH))
            bar = Text("█" * filled, style="green" if i in top else "blue")
            bar.append("░" * (BAR_WIDTH - filled), style="dim")
            table.add_row(
                Text(("▸ " if i == state.picked else "  ") + name, style="bold" if i == state.picked else ""),
                number(state.logits[i]),
                number(steps.scaled[i], 3) if t != 1 else "",
                compact(steps.exps[i]),
                f"÷ {compact(steps.total)}",
                Text(f"{steps.probs[i]:.4f}", style="bold reverse" if i in top else "bold"),
                bar,
            )
        self.query_one("#softmax-table", Static).update(table)
        summary = Text(f"Σ {power} = {compact(steps.total)}     Σ p = {steps.probs.sum():.4f}\n")
        summary.append_text(self._prediction(top))
        if t < 1:
            summary.append(f"\nT = {t:g} < 1 sharpens: the top class takes more", style="italic")
        elif t > 1:
            summary.append(f"\nT = {t:g} > 1 flattens: the classes even out", style="italic")
        summary.append_text(self._ratio(steps))
        if self.notice:
            summary.append(f"\n{self.notice}", style="italic")
        self.query_one("#softmax-sum", Static).update(summary)
        self.post_message(Publish(self, "prediction", (state.classes, tuple(self.probabilities))))

    def _prediction(self, top: list[int]) -> Text:
        """The class with the largest p; when several share it, a tie, and which one argmax takes."""
        names, share = [self.state.classes[i] for i in top], self.steps.probs[top[0]]
        if len(top) == 1:
            text = Text(f"predicted: {names[0]}", style="bold")
            text.append(f" (the largest p, {share:.1%})")
            return text
        text = Text("predicted: a tie", style="bold")
        text.append(f", {share:.1%} each: {', '.join(names)} (argmax takes {names[0]})")
        return text

    def _ratio(self, steps) -> Text:
        """The top two classes' probabilities divided: e to the power of their scores' difference (over T)."""
        state = self.state
        first, second = (int(i) for i in np.argsort(-steps.probs, kind="stable")[:2])
        z1, z2, t = state.logits[first], state.logits[second], state.temperature
        difference = f"{number(z1)} − {signed(z2)}"
        exponent = f"({difference}) / {t:g}" if t != 1 else difference
        ratio = steps.probs[first] / steps.probs[second]
        return Text(
            f"\np({state.classes[first]}) / p({state.classes[second]}) = {ratio:.3f}"
            f" = e^({exponent}) = {np.exp((z1 - z2) / t):.3f}"
        )

    def action_pick(self, direction: int) -> None:
        state = self.state
        self.state = replace(state, picked=(state.picked + direction) % len(state.logits))

    def action_nudge(self, direction: int) -> None:
        state = self.state
        logits = list(state.logits)
        logits[state.picked] = round(max(-LIMIT, min(LIMIT, logits[state.picked] + direction * self.params.step)), 6)
        self.state = replace(state, logits=tuple(logits))

    def action_temperature(self, direction: int) -> None:
        t = self.state.temperature * (2.0 if direction > 0 else 0.5)
        self.state = replace(self.state, temperature=max(0.125, min(8.0, t)))

    def action_add_class(self) -> None:
        state = self.state
        if len(state.logits) >= 8:
            self.notice = "8 classes is the most this widget shows: d removes one."
            self.redraw()
            return
        name = next((n for n in NEW_CLASS_NAMES if n not in state.classes), f"class {len(state.classes)}")
        self.state = replace(state, classes=(*state.classes, name), logits=(*state.logits, 0.0))

    def action_remove_class(self) -> None:
        state = self.state
        if len(state.logits) <= 2:
            self.notice = "Softmax needs at least 2 classes: a adds one."
            self.redraw()
            return
        keep = [i for i in range(len(state.logits)) if i != state.picked]
        self.state = SoftmaxState(
            tuple(state.classes[i] for i in keep),
            tuple(state.logits[i] for i in keep),
            state.temperature,
            min(state.picked, len(keep) - 1),
        )


def tied_for_first(logits) -> list[int]:
    """The classes with the largest score: the largest p, at any temperature."""
    best = max(logits)
    return [i for i, z in enumerate(logits) if z == best]


def compact(value: float) -> str:
    """e^(z/T) in at most 9 characters: 4 decimals, or powers of ten when very large or small."""
    return f"{value:.4f}" if 1e-3 <= value < 1e4 else f"{value:.3e}"
