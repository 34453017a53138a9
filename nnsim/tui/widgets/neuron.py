"""Neuron: z = w₁·x₁ + w₂·x₂ + b, every number adjustable, computed by the engine's Linear layer."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Button, Checkbox, Static

from nnsim.lessons.params import NeuronParams
from nnsim.tui.formatting import number, signed
from nnsim.tui.live import layer_forward
from nnsim.tui.messages import Publish

NAMES = ("x1", "x2", "w1", "w2", "b")
LABELS = {"x1": "input x₁", "x2": "input x₂", "w1": "weight w₁", "w2": "weight w₂", "b": "bias b"}
LIMIT = 5.0


SUBSCRIPT = {"x1": "x₁", "x2": "x₂", "w1": "w₁", "w2": "w₂", "b": "b"}


@dataclass(frozen=True)
class NeuronState:
    """Everything the learner can change: the five numbers, the bias switch, the picked row."""

    values: tuple[float, ...]  # in the order of NAMES
    use_bias: bool
    picked: int


class Neuron(Vertical, can_focus=True):
    """One neuron with two inputs. ↑/↓ pick a number, +/− change it, b switches the bias."""

    BINDINGS = [
        Binding("up", "pick(-1)", "Pick ↑", show=False),
        Binding("down", "pick(1)", "Pick ↓", show=False),
        Binding("plus,equals_sign", "nudge(1)", "More", key_display="+"),
        Binding("minus,underscore", "nudge(-1)", "Less", key_display="−"),
        Binding("b", "toggle_bias", "Bias on/off"),
    ]

    state: reactive[NeuronState] = reactive(NeuronState((0.0,) * len(NAMES), True, 2), init=False)

    def __init__(self, params: NeuronParams, base: Path | None = None):
        super().__init__()
        self.params = params
        values = tuple(float(getattr(params, name)) for name in NAMES)
        self.set_reactive(Neuron.state, NeuronState(values, params.bias, 2))
        self.z = 0.0

    @property
    def values(self) -> dict[str, float]:
        return dict(zip(NAMES, self.state.values, strict=True))

    @property
    def use_bias(self) -> bool:
        return self.state.use_bias

    @property
    def picked(self) -> int:
        return self.state.picked

    def watch_state(self) -> None:
        self.recompute()

    def compose(self) -> ComposeResult:
        yield Static("One neuron:  z = w₁·x₁ + w₂·x₂ + b", classes="widget-title")
        for name in NAMES:
            with Horizontal(classes="neuron-row", id=f"row-{name}"):
                yield Static(LABELS[name], classes="neuron-label")
                yield Button("−", id=f"less-{name}", classes="nudge", compact=True)
                yield Static(id=f"value-{name}", classes="neuron-value")
                yield Button("+", id=f"more-{name}", classes="nudge", compact=True)
        yield Checkbox("use the bias b", self.use_bias, id="use-bias", compact=True)
        yield Static(id="neuron-sum")

    def on_mount(self) -> None:
        self.recompute()

    def recompute(self) -> None:
        v = self.values
        bias = v["b"] if self.use_bias else 0.0
        z, _ = layer_forward([[v["w1"], v["w2"]]], [bias], [v["x1"], v["x2"]])
        z_at_zero, _ = layer_forward([[v["w1"], v["w2"]]], [bias], [0.0, 0.0])
        self.z = float(z[0])
        for index, name in enumerate(NAMES):
            shown = self.query_one(f"#value-{name}", Static)
            shown.update(f"{number(v[name]):>6}" if name != "b" or self.use_bias else "   off")
            self.query_one(f"#row-{name}").set_class(index == self.picked, "-picked")
        self.query_one("#neuron-sum", Static).update(self._spelled_out(bias, float(z_at_zero[0])))
        self.post_message(Publish(self, "z", self.z))

    def _spelled_out(self, bias: float, z_at_zero: float) -> Text:
        v = self.values
        text = Text()
        text.append("z = ")
        text.append(f"{signed(v['w1'])}·{signed(v['x1'])}", style="bold")
        text.append(" + ")
        text.append(f"{signed(v['w2'])}·{signed(v['x2'])}", style="bold")
        if self.use_bias:
            text.append(" + ")
            text.append(signed(bias), style="bold")
        text.append("\n  = ")
        text.append(f"{signed(v['w1'] * v['x1'])} + {signed(v['w2'] * v['x2'])}")
        if self.use_bias:
            text.append(f" + {signed(bias)}")
        text.append("\n  = ")
        text.append(number(self.z), style="bold reverse")
        text.append("\n\n")
        for w, x in (("w1", "x1"), ("w2", "x2")):
            if v[w] < 0:
                text.append(f"{SUBSCRIPT[w]} is negative: a larger {SUBSCRIPT[x]} lowers z.\n", style="italic")
        text.append(f"With every input 0, z = {number(z_at_zero)}", style="bold")
        if self.use_bias:
            text.append(f": the bias alone (b = {number(bias)}).")
        else:
            text.append(": without a bias, nothing can move it off 0.")
        return text

    def set_value(self, name: str, value: float) -> None:
        values = {**self.values, name: round(max(-LIMIT, min(LIMIT, value)), 6)}
        self.state = replace(self.state, values=tuple(values[n] for n in NAMES))

    def action_pick(self, direction: int) -> None:
        self.state = replace(self.state, picked=(self.picked + direction) % len(NAMES))

    def action_nudge(self, direction: int) -> None:
        self._nudge(NAMES[self.picked], direction)

    def _nudge(self, name: str, direction: int) -> None:
        if name == "b" and not self.use_bias:
            return
        self.set_value(name, self.values[name] + direction * self.params.step)

    def action_toggle_bias(self) -> None:
        self.query_one("#use-bias", Checkbox).value = not self.use_bias

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        self.state = replace(self.state, use_bias=event.value)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        direction, name = event.button.id.split("-", 1)
        self.state = replace(self.state, picked=NAMES.index(name))
        self._nudge(name, 1 if direction == "more" else -1)
