"""ConvStepper: a kernel slides over an image; each position's sum spelled out, the output filling in."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Input, Static

from nnsim.data.images import load_image
from nnsim.errors import NnsimError
from nnsim.lessons.params import KERNEL_NAMES, ConvStepperParams
from nnsim.tui.formatting import number, signed
from nnsim.tui.images import HalfBlockTiles, frame_window, resolve_image, to_rgb
from nnsim.tui.live.vision import (
    KERNELS,
    Convolution,
    cnn_blocks,
    colour_kernel,
    convolve,
    feature_maps,
    learned_kernels,
)

STRIDES = (1, 2, 3)
PADDINGS = (0, 1, 2)


@dataclass(frozen=True)
class ConvState:
    kernel: str
    filter: int
    stride: int
    padding: int
    done: int  # output positions computed so far
    maps: bool  # the view of every feature map instead of the stepper


class ConvStepper(Vertical, can_focus=True):
    """s steps, r runs to the end, 0 starts again; k the kernel, z the stride, b the padding, f the maps."""

    BINDINGS = [
        Binding("s", "step", "Step"),
        Binding("r", "run", "Run"),
        Binding("0", "restart", "Again"),
        Binding("k", "kernel", "Kernel"),
        Binding("z", "stride", "Stride"),
        Binding("b", "padding", "Padding (border)"),
        Binding("f", "maps", "Feature maps"),
        Binding("o", "open_file", "Your image"),
    ]

    state: reactive[ConvState] = reactive(ConvState("edge", 0, 1, 0, 1, False), init=False)

    def __init__(self, params: ConvStepperParams, base: Path | None = None):
        super().__init__()
        self.params = params
        self.base = base
        self.conv: Convolution | None = None
        self.image, self.maps, self.problem = None, [], ""
        try:
            self._open(params.image)
        except NnsimError as error:
            self.problem = str(error)
        p = params
        self.set_reactive(ConvStepper.state, ConvState(p.kernel, p.filter, p.stride, p.padding, 1, p.maps))

    def _open(self, name: str) -> None:
        """The image X (28×28: gray, one colour channel, or all three) and the shipped CNN's maps for it."""
        path = resolve_image(name, self.base)
        gray, maps = feature_maps(path)
        image = gray
        if self.params.channel >= 0 or self.params.rgb:
            colour = load_image(path, mode="RGB", size=gray.shape[::-1]).tensor.astype(np.float64)
            image = colour if self.params.rgb else colour[self.params.channel]
        self.image, self.maps, self.image_name = image, maps, name

    def compose(self) -> ComposeResult:
        yield Static(id="conv-title", classes="widget-title")
        with Horizontal(id="conv-pictures"):
            yield Static(id="conv-input")
            yield Static(id="conv-output")
        yield Static(id="conv-sum")
        yield Static(id="conv-size")
        yield Input(placeholder="your own image: type a path, then Enter", id="conv-path")
        yield Static(id="conv-problem", classes="problem")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        name = event.value.strip()
        if not name:
            return
        try:
            self._open(name)
        except NnsimError as error:
            self.query_one("#conv-problem", Static).update(str(error))
            return
        self.query_one("#conv-problem", Static).update("")
        self.problem = ""
        self.state = replace(self.state, done=1, maps=False)
        self.redraw()

    def action_open_file(self) -> None:
        self.query_one("#conv-path", Input).focus()

    def on_mount(self) -> None:
        self.redraw()

    def on_resize(self) -> None:
        if self.state.maps:
            self.redraw()

    def watch_state(self) -> None:
        self.redraw()

    @property
    def kernel(self) -> np.ndarray:
        state = self.state
        if state.kernel == "learned":
            filters = learned_kernels()
            return filters[state.filter % len(filters)]
        if self.params.rgb:
            return colour_kernel(KERNELS[state.kernel])
        return np.asarray(KERNELS[state.kernel])

    @property
    def bias(self) -> float:
        return self.params.bias if self.params.rgb else 0.0

    # --- drawing ------------------------------------------------------------------------------
    def redraw(self) -> None:
        self.query_one("#conv-input", Static).display = True
        if self.image is None:
            self.query_one("#conv-title", Static).update(Text(self.problem, style="red"))
            return
        state = self.state
        if state.maps:
            self._draw_maps()
            return
        try:
            self.conv = convolve(self.image, self.kernel, state.stride, state.padding, self.bias)
        except NnsimError as error:  # a combination where the kernel does not fit: say why
            self.conv = None
            self.query_one("#conv-size", Static).update(Text(str(error), style="yellow"))
            return
        conv = self.conv
        total = conv.output.size
        done = min(state.done, total)
        row, col = divmod(done - 1, conv.output.shape[1])
        name = f"{state.kernel} kernel"
        if state.kernel == "learned":
            name = f"the CNN's learned filter {state.filter % len(learned_kernels())}"
        where = ["R", "G", "B"][self.params.channel] + " channel of " if self.params.channel >= 0 else ""
        where = "the R, G and B channels of " if self.params.rgb else where
        title = (
            f"Convolution of {where}{self.image_name}: {name}, stride {state.stride}, "
            f"padding {state.padding}, position {done}/{total}"
        )
        self.query_one("#conv-title", Static).update(title)
        k, p = conv.kernel.shape[-1], state.padding
        padded = np.pad(conv.image, ((0, 0), (p, p), (p, p)))
        padded = padded if self.params.rgb else padded[0]
        framed = frame_window(to_rgb(padded), row * state.stride, col * state.stride, k)
        # the pictures as segments (HalfBlockTiles), not Texts of a span a cell: redrawn at every step
        caption = f"X: {'3 × ' if self.params.rgb else ''}{padded.shape[-2]}×{padded.shape[-1]}"
        caption += " (padded)" if state.padding else ""
        self.query_one("#conv-input", Static).update(
            Group(HalfBlockTiles([framed], 1, gap=""), Text(caption, style="dim"))
        )
        shown = np.zeros_like(conv.output)
        flat = shown.reshape(-1)
        flat[:done] = conv.output.reshape(-1)[:done]
        scale = max(float(np.abs(conv.output).max()), 1e-9)
        caption = f"Y: {conv.output.shape[0]}×{conv.output.shape[1]}, |value| as brightness"
        self.query_one("#conv-output", Static).update(
            Group(HalfBlockTiles([to_rgb(np.abs(shown) / scale)], 1, gap=""), Text(caption, style="dim"))
        )
        spelled = self._spelled_channels if self.params.rgb else self._spelled
        self.query_one("#conv-sum", Static).update(spelled(row, col))
        self.query_one("#conv-size", Static).update(f"output size: {conv.size_note}")

    def _spelled(self, row: int, col: int) -> Table:
        conv = self.conv
        _, total = conv.terms(row, col)
        window, kernel = conv.window(row, col)[0], conv.kernel[0]
        grid = Table.grid(padding=(0, 2))
        kernel_text, window_text = (
            Text().append("K\n", style="bold"),
            Text().append(f"X window at ({row}, {col})\n", style="bold"),
        )
        for m in range(len(kernel)):
            kernel_text.append(" ".join(f"{number(v):>6}" for v in kernel[m]) + "\n")
            window_text.append(" ".join(f"{number(v):>5}" for v in window[m]) + "\n")
        terms = _products(kernel, window)
        s, p = conv.stride, conv.padding
        formula = Text(f"Y[{row}, {col}] = Σ K[m,n]·X[{row}·{s}+m−{p}, {col}·{s}+n−{p}]\n")
        formula.append(f"  = {terms}\n", style="dim")
        formula.append("  = ")
        formula.append(f"{total:.4f}", style="bold reverse")
        grid.add_row(kernel_text, window_text)
        outer = Table.grid()
        outer.add_row(grid)
        outer.add_row(formula)
        return outer

    def _spelled_channels(self, row: int, col: int) -> Text:
        """Y[cₒ, h, w] = b[cₒ] + Σ over the input channels of each channel's own k×k sum."""
        conv = self.conv
        _, total = conv.terms(row, col)
        window, sums = conv.window(row, col), conv.channel_sums(row, col)
        s, p = conv.stride, conv.padding
        text = Text(f"Y[0, {row}, {col}] = b[0] + Σ_cᵢ Σ K[0,cᵢ,m,n]·X[cᵢ, {row}·{s}+m−{p}, {col}·{s}+n−{p}]\n")
        for c, name in enumerate("RGB"):
            text.append(f"  {name}: {number(sums[c], 4)}", style="bold")
            text.append(f" = {_products(conv.kernel[c], window[c])}\n", style="dim")
        text.append("  Y = R + G + B + b[0] = " + " + ".join(signed(v, 4) for v in sums) + f" + {signed(conv.bias)}\n")
        text.append("    = ")
        text.append(number(total, 4), style="bold reverse")
        return text

    def _draw_maps(self) -> None:
        self.query_one("#conv-title", Static).update(
            "Every feature map of the shipped CNN for this image (f: back to the stepper)"
        )
        self.query_one("#conv-input", Static).display = False  # the maps take the whole width
        parts: list = []
        for depth, (maps, block) in enumerate(zip(self.maps, cnn_blocks(), strict=True), start=1):
            channels, h, w = maps.shape
            pooled = f"{block.pool}×{block.pool} max-pool"
            parts.append(Text(f"block {depth}: {channels} maps of {h}×{w} (after ReLU and {pooled})", style="bold"))
            per_row = max(1, (self.size.width - 2) // (w + 1))
            parts.append(HalfBlockTiles([to_rgb(m / max(float(m.max()), 1e-9)) for m in maps], per_row))
        self.query_one("#conv-output", Static).update(Group(*parts))
        self.query_one("#conv-sum", Static).update("")
        self.query_one("#conv-size", Static).update("")

    # --- actions ------------------------------------------------------------------------------
    def _total(self) -> int:
        return self.conv.output.size if self.conv is not None else 1

    def action_step(self) -> None:
        self.state = replace(self.state, done=min(self.state.done + 1, self._total()), maps=False)

    def action_run(self) -> None:
        self.state = replace(self.state, done=self._total(), maps=False)

    def action_restart(self) -> None:
        self.state = replace(self.state, done=1, maps=False)

    def action_kernel(self) -> None:
        state = self.state
        if state.kernel == "learned" and state.filter + 1 < len(learned_kernels()):
            self.state = replace(state, filter=state.filter + 1, done=1)
            return
        names = [k for k in KERNEL_NAMES if k != "learned"] if self.params.rgb else KERNEL_NAMES
        following = names[(names.index(state.kernel) + 1) % len(names)]
        self.state = replace(state, kernel=following, filter=0, done=1)

    def action_stride(self) -> None:
        self.state = replace(
            self.state,
            stride=STRIDES[(STRIDES.index(self.state.stride) + 1) % 3] if self.state.stride in STRIDES else 1,
            done=1,
        )

    def action_padding(self) -> None:
        self.state = replace(
            self.state,
            padding=PADDINGS[(PADDINGS.index(self.state.padding) + 1) % 3] if self.state.padding in PADDINGS else 0,
            done=1,
        )

    def action_maps(self) -> None:
        self.state = replace(self.state, maps=not self.state.maps)


def _products(kernel: np.ndarray, window: np.ndarray) -> str:
    """K[m,n]·X[…] for every kernel position, joined by +."""
    return " + ".join(f"{number(kv)}·{number(xv)}" for kv, xv in zip(kernel.ravel(), window.ravel(), strict=True))
