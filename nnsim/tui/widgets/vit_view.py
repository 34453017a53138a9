"""VitView: the shipped Vision Transformer on one image: patches, an embedding, attention, occlusion."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Static

from nnsim.errors import NnsimError
from nnsim.lessons.params import VitViewParams
from nnsim.tui.formatting import number
from nnsim.tui.images import checkerboard, half_blocks, heat, resolve_image
from nnsim.tui.live.vision import VitFigures, occlusion, vit_figures

VIEWS = ("patches", "embedding", "attention", "occlusion")
GRIDS = (2, 4, 7, 14)
SHOWN = 6  # numbers of a long vector shown


@dataclass(frozen=True)
class VitState:
    view: str
    grid: int  # patch size of the drawn grid
    head: int  # −1: the average of the heads
    patch: int  # the patch whose embedding is spelled out


class VitView(Vertical, can_focus=True):
    """v the next view, g the patch grid, h the head, i the patch spelled out."""

    BINDINGS = [
        Binding("v", "view", "Next view"),
        Binding("g", "grid", "Patch size"),
        Binding("h", "head", "Head"),
        Binding("i", "patch", "Patch"),
    ]

    state: reactive[VitState] = reactive(VitState("patches", 7, -1, 5), init=False)

    def __init__(self, params: VitViewParams, base: Path | None = None):
        super().__init__()
        self.params = params
        self.base = base
        self.figures: VitFigures | None = None
        self.occluded: np.ndarray | None = None
        self.set_reactive(VitView.state, VitState(params.view, params.patch, params.head, params.patch_index))

    def compose(self) -> ComposeResult:
        yield Static(id="vit-title", classes="widget-title")
        with Horizontal(id="vit-body"):
            yield Static(id="vit-picture")
            yield Static(id="vit-detail")
        yield Static(id="vit-note")

    def on_mount(self) -> None:
        self.query_one("#vit-title", Static).update("A Vision Transformer reads the image: computing…")
        self.compute()

    @work(thread=True, exclusive=True)
    def compute(self) -> None:
        try:
            path = resolve_image(self.params.image, self.base)
            figures, occluded = vit_figures(path), occlusion(path)
        except NnsimError as error:
            self.app.call_from_thread(self.query_one("#vit-title", Static).update, Text(str(error), style="red"))
            return
        self.app.call_from_thread(self._computed, figures, occluded)

    def _computed(self, figures: VitFigures, occluded: np.ndarray) -> None:
        self.figures, self.occluded = figures, occluded
        self.redraw()

    def watch_state(self) -> None:
        self.redraw()

    # --- drawing ------------------------------------------------------------------------------
    def redraw(self) -> None:
        f = self.figures
        if f is None:
            return
        label = f.class_names[f.predicted]
        title = (
            f"ViT ({f.patch}×{f.patch} patches, {len(f.attention)} blocks) says {label}, {f.probabilities.max():.1%}"
        )
        self.query_one("#vit-title", Static).update(f"{title}  ·  view: {self.state.view}")
        draw = {"patches": self._patches, "embedding": self._embedding, "attention": self._attention}
        picture, detail, note = draw.get(self.state.view, self._occlusion)()
        self.query_one("#vit-picture", Static).update(picture)
        self.query_one("#vit-detail", Static).update(detail)
        self.query_one("#vit-note", Static).update(note)

    def _patches(self):
        f, size = self.figures, self.state.grid
        rows = f.image.shape[0] // size
        picture = half_blocks(checkerboard(f.image, size))
        picture.append(f"\n{size}×{size} patches: {rows} × {rows} = {rows * rows}", style="dim")
        detail = Text("Cut into patches\n", style="bold")
        detail.append(
            f"A {f.image.shape[0]}×{f.image.shape[1]} image in {size}×{size} patches makes {rows * rows} tokens, each "
            f"{size * size} numbers long. Smaller patches: more tokens, finer detail, and attention over "
            f"(tokens)² pairs costs more. This ViT was trained with {f.patch}×{f.patch} patches: "
            f"{f.grid[0] * f.grid[1]} tokens, plus one CLS token.\n\ng: another patch size"
        )
        return picture, detail, ""

    def _embedding(self):
        f, i = self.figures, self.state.patch % (self.figures.grid[0] * self.figures.grid[1])
        r, c = divmod(i, f.grid[1])
        marked = np.zeros(f.grid)
        marked[r, c] = 1.0
        picture = half_blocks(heat(f.image, marked, colour=(0.9, 0.8, 0.1)))
        picture.append(f"\npatch {i} (row {r}, column {c})", style="dim")
        x = f.patches[i]
        xe = x @ f.projection + f.projection_bias  # a linear layer: E's bias is part of x E
        z = xe + f.positions[i + 1]
        detail = Text(f"Patch {i} flattened: x_{i} ({len(x)} numbers, normalised)\n", style="bold")
        detail.append(_vector(x) + "\n\n")
        detail.append(
            f"z_{i} = x_{i} E + p_{i}   (E: {f.projection.shape[0]}×{f.projection.shape[1]}, learned)\n", style="bold"
        )
        table = Table("", "x E", "+ p", "= z", box=None, padding=(0, 1), show_edge=False)
        for d in range(SHOWN):
            table.add_row(f"[{d}]", number(xe[d], 3), number(f.positions[i + 1][d], 3), number(z[d], 3))
        after = Text(
            f"… {len(z)} features in all (the engine's token {i + 1} starts {number(f.tokens[i + 1][0], 3)}).\n"
        )
        after.append("\nThe CLS token (learned, not from any patch) goes first: the transformer's output there ")
        after.append(
            f"is what the classifier reads. Sequence: CLS + {len(f.patches)} patches = {len(f.tokens)} tokens."
        )
        after.append("\n\ni: another patch", style="dim")
        return picture, Group(detail, table, after), ""

    def _attention(self):
        f, head = self.figures, self.state.head
        grid = f.cls_attention(0, None if head < 0 else head)
        who = "averaged over the heads" if head < 0 else f"head {head}"
        picture = half_blocks(heat(f.image, grid))
        picture.append(f"\nCLS → patches, block 1, {who}", style="dim")
        h = max(head, 0)
        scores, probs = f.cls_query(h)
        top = np.argsort(-probs)[:4]
        detail = Text(f"softmax(q_CLS · k_j / √d) for head {h} of block 1\n", style="bold")
        table = Table("token j", "q·k/√d", "softmax", box=None, padding=(0, 1), show_edge=False)
        for j in top:
            table.add_row("CLS" if j == 0 else f"patch {j - 1}", number(scores[j], 3), f"{probs[j]:.3f}")
        out = f.cls_output(h)
        after = Text(f"… {len(probs)} tokens; the weights add up to {probs.sum():.3f}.\n")
        after.append(f"× V: the CLS output = Σ_j weight_j · v_j = {_vector(out)}\n")
        matches = np.allclose(probs, f.attention[0][h, 0], atol=1e-5)
        after.append(f"The same row as the forward pass kept: {'yes' if matches else 'no'}.\n", style="dim")
        after.append("\nEvery token attends to every other from the first block: the whole image at once.")
        after.append("\nh: another head (−1: their average)", style="dim")
        return picture, Group(detail, table, after), ""

    def _occlusion(self):
        f, drop = self.figures, self.occluded
        picture = half_blocks(heat(f.image, np.clip(drop, 0, None), colour=(0.2, 0.8, 1.0)))
        picture.append("\nprobability lost when a patch is blanked", style="dim")
        attention = f.cls_attention(0)
        look, need = np.unravel_index(attention.argmax(), attention.shape), np.unravel_index(drop.argmax(), drop.shape)
        detail = Text("Occlusion: blank one patch, see the answer change\n", style="bold")
        detail.append(
            f"Blanking patch (row {need[0]}, col {need[1]}) costs the most: p({f.class_names[f.predicted]}) "
            f"falls by {drop.max():.1%}. The CLS token attends most to (row {look[0]}, col {look[1]}).\n\n"
        )
        if look == need:
            detail.append("Here they agree. ", style="green")
        else:
            detail.append("Here they disagree. ", style="yellow")
        detail.append(
            "Attention says where information flowed in one block, not what the answer depends on: it can "
            "be high on patches that change nothing, and later blocks mix tokens again. Occlusion asks the "
            "network itself."
        )
        return picture, detail, ""

    # --- actions ------------------------------------------------------------------------------
    def action_view(self) -> None:
        self.state = replace(self.state, view=VIEWS[(VIEWS.index(self.state.view) + 1) % len(VIEWS)])

    def action_grid(self) -> None:
        grid = self.state.grid
        self.state = replace(
            self.state, view="patches", grid=GRIDS[(GRIDS.index(grid) + 1) % len(GRIDS)] if grid in GRIDS else 7
        )

    def action_head(self) -> None:
        self.state = replace(self.state, view="attention", head=-1 if self.state.head >= 3 else self.state.head + 1)

    def action_patch(self) -> None:
        self.state = replace(self.state, view="embedding", patch=(self.state.patch + 1) % 16)


def _vector(values: np.ndarray) -> str:
    return "[" + ", ".join(number(v) for v in values[:SHOWN]) + f", … {len(values)} in all]"
