"""VitView: the shipped Vision Transformer on one image: patches, an embedding, queries, keys and
values, attention, occlusion; on the lesson's digits, an image of the learner's, or a drawn digit."""

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
from textual.widgets import Input, Static

from nnsim.errors import NnsimError
from nnsim.lessons.params import VitViewParams
from nnsim.tui.formatting import number
from nnsim.tui.images import checkerboard, half_blocks, heat, resolve_image
from nnsim.tui.live.vit import VitFigures, occlusion, strongest, vit_figures, vit_input

VIEWS = ("patches", "embedding", "qkv", "attention", "occlusion")
GRIDS = (2, 4, 7, 14)
SHOWN = 6  # numbers of a long vector shown
DIGITS = tuple(f"digits/{d}.png" for d in range(10))  # the lesson's images, in the order n shows them
DRAWN = "your drawing"


@dataclass(frozen=True)
class VitState:
    view: str
    grid: int  # patch size of the drawn grid
    head: int  # −1: the average of the heads
    patch: int  # the patch whose embedding is spelled out


class VitView(Vertical, can_focus=True):
    """v the next view, g the patch grid, h the head, i the patch; d the next digit, o an image of
    your own, w draw a digit."""

    BINDINGS = [
        Binding("v", "view", "Next view"),
        Binding("g", "grid", "Patch size"),
        Binding("h", "head", "Head"),
        Binding("i", "patch", "Patch"),
        Binding("d", "next_image", "Next digit"),  # not n: n is the lesson's next step (DESIGN contract)
        Binding("o", "open_file", "Your image"),
        Binding("w", "draw", "Draw a digit"),
    ]

    state: reactive[VitState] = reactive(VitState("patches", 7, -1, 5), init=False)

    def __init__(self, params: VitViewParams, base: Path | None = None):
        super().__init__()
        self.params = params
        self.base = base
        self.source = params.image  # what the ViT reads: an image's name, or DRAWN
        self.figures: VitFigures | None = None
        self.occluded: np.ndarray | None = None
        self.set_reactive(VitView.state, VitState(params.view, params.patch, params.head, params.patch_index))

    def compose(self) -> ComposeResult:
        yield Static(id="vit-title", classes="widget-title")
        with Horizontal(id="vit-body"):
            yield Static(id="vit-picture")
            yield Static(id="vit-detail")
        yield Static(id="vit-note")
        yield Input(placeholder="another image: type a path, then Enter", id="vit-path", compact=True)
        yield Static(id="vit-problem")

    def on_mount(self) -> None:
        self.query_one("#vit-title", Static).update("A Vision Transformer reads the image: computing…")
        self.show(self.source)

    # --- what the ViT reads -------------------------------------------------------------------
    def show(self, name: str, drawn: np.ndarray | None = None) -> None:
        """Read the image `name` (a lesson image or a path), or a drawing's pixels, and redraw."""
        self.query_one("#vit-problem", Static).update("")
        self.compute(name, drawn)

    @work(thread=True, exclusive=True)
    def compute(self, name: str, drawn: np.ndarray | None) -> None:
        from nnsim.tui.live.draw import mnist_like

        try:
            tensor = mnist_like(drawn).tensor if drawn is not None else vit_input(resolve_image(name, self.base))
            figures, occluded = vit_figures(tensor), occlusion(tensor)
        except NnsimError as error:
            self.app.call_from_thread(self.query_one("#vit-problem", Static).update, Text(str(error), style="red"))
            return
        self.app.call_from_thread(self._computed, name, figures, occluded)

    def _computed(self, name: str, figures: VitFigures, occluded: np.ndarray) -> None:
        self.source, self.figures, self.occluded = name, figures, occluded
        self.redraw()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value.strip():
            self.show(event.value.strip())

    def watch_state(self) -> None:
        self.redraw()

    # --- drawing ------------------------------------------------------------------------------
    def redraw(self) -> None:
        f = self.figures
        if f is None:
            return
        label = f.class_names[f.predicted]
        view = self.state.view
        self.query_one("#vit-title", Static).update(
            f"ViT on {self.source}: says {label}, {f.probabilities.max():.1%}  ·  view {VIEWS.index(view) + 1}/"
            f"{len(VIEWS)}: {view}"
        )
        draw = {
            "patches": self._patches,
            "embedding": self._embedding,
            "qkv": self._qkv,
            "attention": self._attention,
            "occlusion": self._occlusion,
        }
        picture, detail = draw[view]()
        self.query_one("#vit-picture", Static).update(picture)
        self.query_one("#vit-detail", Static).update(detail)
        self.query_one("#vit-note", Static).update(
            Text("v: next view · d: next digit · o: your image · w: draw a digit", style="dim")
        )

    def _patches(self):
        f, size = self.figures, self.state.grid
        rows = f.image.shape[0] // size
        picture = half_blocks(checkerboard(f.image, size))
        picture.append(f"\n{size}×{size} patches: {rows} × {rows} = {rows * rows}", style="dim")
        detail = Text().append("Cut into patches\n", style="bold")
        detail.append(
            f"A {f.image.shape[0]}×{f.image.shape[1]} image in {size}×{size} patches makes {rows * rows} tokens, each "
            f"{size * size} numbers long. Smaller patches: more tokens, finer detail, and attention over "
            f"(tokens)² pairs costs more. This ViT was built and trained with {f.patch}×{f.patch} patches: "
            f"{f.grid[0] * f.grid[1]} tokens, plus one CLS token; the other sizes are only drawn.\n\n"
            "g: another patch size"
        )
        return picture, detail

    def _embedding(self):
        f = self.figures
        i = self.state.patch % (f.grid[0] * f.grid[1])
        r, c = divmod(i, f.grid[1])
        marked = np.zeros(f.grid)
        marked[r, c] = 1.0
        picture = half_blocks(heat(f.image, marked, colour=(0.9, 0.8, 0.1)))
        picture.append(f"\npatch {i} (row {r}, column {c})", style="dim")
        x = f.patches[i]
        xe = x @ f.projection
        z = xe + f.projection_bias + f.positions[i + 1]
        blank, ink = (0.0 - f.mean) / f.std, (1.0 - f.mean) / f.std
        detail = Text().append(f"Patch {i} flattened: x_{i} ({len(x)} numbers)\n", style="bold")
        detail.append(_vector(x) + "\n")
        detail.append(
            f"Why negative: the network begins with Normalize, (pixel − {f.mean:.3f}) / {f.std:.3f}, the "
            f"training digits' mean and spread; blank paper becomes {number(blank)}, full ink {number(ink)}.\n\n",
            style="dim",
        )
        detail.append(
            f"z_{i} = x_{i} E + b + p_{i}   (E: {f.projection.shape[0]}×{f.projection.shape[1]}; b: E's bias, "
            "the same for every patch; both learned)\n",
            style="bold",
        )
        table = Table("", "x E", "+ b", "+ p", "= z", box=None, padding=(0, 1), show_edge=False)
        for d in range(SHOWN):
            table.add_row(f"[{d}]", *(number(v[d]) for v in (xe, f.projection_bias, f.positions[i + 1], z)))
        after = Text(
            f"… {len(z)} features in all (the engine's token {i + 1} starts {number(f.tokens[i + 1][0], 3)}).\n"
        )
        after.append("\nThe CLS token (learned, not from any patch) goes first: the transformer's output there ")
        after.append(
            f"is what the classifier reads. Sequence: CLS + {len(f.patches)} patches = {len(f.tokens)} tokens."
        )
        after.append("\n\ni: another patch", style="dim")
        return picture, Group(detail, table, after)

    def _qkv(self):
        f = self.figures
        pr = f.projections
        width, heads, d = pr.weights.shape[0], pr.heads, pr.head_size
        h = max(self.state.head, 0)
        picture = Text().append("Block 1's attention, for every token\n\n", style="bold")
        picture.append(
            f"z ({width}) → LayerNorm → u\n"
            f"u W_Q + b_Q = q ({width} = {heads}×{d})\n"
            f"u W_K + b_K = k ({width} = {heads}×{d})\n"
            f"u W_V + b_V = v ({width} = {heads}×{d})\n"
            f"each head: softmax(q kᵀ/√{d}) v\n"
            f"  → {d} numbers a token\n"
            f"concat {heads} heads → {heads * d}\n"
            f"× W_O + b_O → out ({width})\n"
            "z + out: on to the block's MLP"
        )
        q, k, v = pr.qkv(0)
        cut = slice(h * d, (h + 1) * d)
        detail = Text().append("The CLS token's query, key and value\n", style="bold")
        detail.append(f"u = LayerNorm(z_CLS) = {_vector(pr.normed[0])}\n")
        detail.append(
            f"W_Q, W_K, W_V: {width}×{width} each, learned, the same for every token. Cut into {heads} heads "
            f"of d = {d}; head {h}:\n"
        )
        for name, vector in (("q", q), ("k", k), ("v", v)):
            detail.append(f" {name} = [{', '.join(number(x) for x in vector[cut])}]\n")
        kept = np.allclose(q.reshape(heads, d), f.queries[:, 0], atol=1e-5)
        detail.append(f"The forward pass's own q: {'yes' if kept else 'no'}.\n", style="dim")
        out = pr.output(0)
        detail.append(
            f"\nAfter attention the {heads} heads' {d} numbers are concatenated ({heads} × {d} = {heads * d}) and "
            f"mixed by W_O ({width}×{width}, learned): out = {_vector(out)}\n"
        )
        detail.append("\nh: another head", style="dim")
        return picture, detail

    def _attention(self):
        f, head = self.figures, self.state.head
        grid = f.cls_attention(0, None if head < 0 else head)
        who = "averaged over the heads" if head < 0 else f"head {head}"
        picture = half_blocks(heat(f.image, grid))
        picture.append(f"\nCLS → patches, block 1, {who}", style="dim")
        top3 = np.argsort(-grid.ravel())[:3]
        ink = f.ink().ravel()
        picture.append(
            f"\nmost attended: patches {', '.join(str(j) for j in top3)}; their mean ink {ink[top3].mean():.2f}, "
            f"all patches' {ink.mean():.2f}",
            style="dim",
        )
        h = max(head, 0)
        scores, probs = f.cls_query(h)
        d = f.queries.shape[-1]
        top = np.argsort(-probs)[:4]
        detail = Text().append(f"softmax(q_CLS · k_j / √d) for head {h} of block 1, d = {d}\n", style="bold")
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
        return picture, Group(detail, table, after)

    def _occlusion(self):
        f, drop = self.figures, self.occluded
        picture = half_blocks(heat(f.image, np.clip(drop, 0, None), colour=(0.2, 0.8, 1.0)))
        picture.append("\nprobability lost when a patch is blanked", style="dim")
        look, need = self.most_attended(), self.most_needed()
        detail = Text().append("Occlusion: blank one patch, see the answer change\n", style="bold")
        cols = f.grid[1]
        detail.append(
            f"Blanking patch {need[0] * cols + need[1]} (row {need[0]}, col {need[1]}) costs the most: "
            f"p({f.class_names[f.predicted]}) falls by {drop.max():.1%}. The CLS token attends most to patch "
            f"{look[0] * cols + look[1]} (row {look[0]}, col {look[1]}) in block 1, its heads averaged.\n\n"
        )
        if look == need:
            detail.append("Here they agree. ", style="green")
        else:
            detail.append("Here they disagree. ", style="yellow")
        detail.append(
            "Attention says where information flowed in one block, not what the answer depends on. "
            "Occlusion is a heuristic too: a blanked patch makes an image unlike any it was trained on, "
            "and near p = 1 the softmax saturates, so small drops say little."
        )
        return picture, detail

    def most_attended(self) -> tuple[int, int]:
        """The patch the CLS token attends to most in block 1 (averaged over the heads)."""
        return strongest(self.figures.cls_attention(0))

    def most_needed(self) -> tuple[int, int]:
        """The patch whose blanking lowers the answer's probability most."""
        return strongest(self.occluded)

    # --- actions ------------------------------------------------------------------------------
    def action_view(self) -> None:
        self.state = replace(self.state, view=VIEWS[(VIEWS.index(self.state.view) + 1) % len(VIEWS)])

    def action_grid(self) -> None:
        grid = self.state.grid
        self.state = replace(
            self.state, view="patches", grid=GRIDS[(GRIDS.index(grid) + 1) % len(GRIDS)] if grid in GRIDS else 7
        )

    def action_head(self) -> None:
        """The next head; the attention view also offers their average (−1), which the q, k, v view,
        one head's numbers, does not have: there h goes from the head shown to the next one."""
        heads = self.figures.projections.heads if self.figures else 1
        view = self.state.view if self.state.view in ("qkv", "attention") else "attention"
        if view == "qkv":
            head = (max(self.state.head, 0) + 1) % heads
        else:
            head = -1 if self.state.head >= heads - 1 else self.state.head + 1
        self.state = replace(self.state, view=view, head=head)

    def action_patch(self) -> None:
        count = self.figures.grid[0] * self.figures.grid[1] if self.figures else 16
        self.state = replace(self.state, view="embedding", patch=(self.state.patch + 1) % count)

    def action_next_image(self) -> None:
        following = DIGITS[(DIGITS.index(self.source) + 1) % len(DIGITS)] if self.source in DIGITS else DIGITS[0]
        self.show(following)

    def action_open_file(self) -> None:
        self.query_one("#vit-path", Input).focus()

    def action_draw(self) -> None:
        from nnsim.tui.screens.draw_digit import DrawDigitScreen

        def drawn(pixels: np.ndarray | None) -> None:
            if pixels is not None:
                self.show(DRAWN, pixels)
            self.focus()

        self.app.push_screen(DrawDigitScreen(), drawn)


def _vector(values: np.ndarray) -> str:
    return "[" + ", ".join(number(v) for v in values[:SHOWN]) + f", … {len(values)} in all]"
