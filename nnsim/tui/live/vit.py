"""Lesson 6's ViT figures: the shipped Vision Transformer's forward pass on one image, kept stage by
stage (normalised pixels, patches, embeddings, queries, keys, values, attention, the heads' output
projection), and an occlusion map.

The ViT is the network in nnsim/data/builtin, run forward by the engine's reference backend on the
learner's image; every number the ViT view shows is read from that pass or recomputed from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from nnsim.resources import builtin_data_path
from nnsim.tui.live import SHIPPED_MODELS, reference

VIT_CHECKPOINT = "lesson-vit.npz"  # made by scripts/make_lesson_networks.py vit


@cache
def lesson_vit():
    from nnsim.engine.checkpoint import load_checkpoint

    return load_checkpoint(builtin_data_path(VIT_CHECKPOINT), backend=reference())


def vit_input(path: Path) -> np.ndarray:
    """The image at `path` as the ViT's input (1, 28, 28), prepared as `nnsim predict` prepares it."""
    from nnsim.predict import prepare_image

    model, meta = lesson_vit()
    tensor, _ = prepare_image(path, model.config.input_shape, meta.get("background"))
    return tensor


@dataclass
class Projections:
    """Block 1's attention for every token: u = LayerNorm(z), then q, k, v = u W + b, per head."""

    normed: np.ndarray  # (T + 1, D): u, the LayerNorm of each token, what the projections read
    weights: np.ndarray  # (D, 3·D): [W_Q | W_K | W_V] (u @ weights)
    bias: np.ndarray  # (3·D,): [b_Q | b_K | b_V]
    heads: int
    merged: np.ndarray  # (T + 1, D): the heads' outputs side by side, concatenated
    out_weights: np.ndarray  # (D, D): W_O
    out_bias: np.ndarray  # (D,): b_O

    @property
    def head_size(self) -> int:
        """d: the length of one head's query, key and value (D / heads)."""
        return self.weights.shape[0] // self.heads

    def qkv(self, token: int) -> np.ndarray:
        """(3, D): q, k and v of one token, u W + b (each cut into heads of d numbers)."""
        return (self.normed[token] @ self.weights + self.bias).reshape(3, -1)

    def output(self, token: int) -> np.ndarray:
        """concat(head_0 … head_h) W_O + b_O: what block 1's attention adds to the token."""
        return self.merged[token] @ self.out_weights + self.out_bias


@dataclass
class VitFigures:
    image: np.ndarray  # (28, 28) the input, 0..1
    mean: float  # Normalize: each pixel becomes (x − mean) / std before anything else
    std: float
    patch: int  # the ViT's patch size
    grid: tuple[int, int]  # patches per column and row
    patches: np.ndarray  # (T, p·p): each normalised patch flattened, x_i
    projection: np.ndarray  # (p·p, D): E
    projection_bias: np.ndarray  # (D,): E's bias b (a linear layer's), the same for every patch
    positions: np.ndarray  # (T + 1, D): p_0 (CLS) … p_T
    tokens: np.ndarray  # (T + 1, D): [CLS; x_i E + b] + p_i, the first block's input
    attention: list[np.ndarray]  # per block: (heads, T + 1, T + 1)
    queries: np.ndarray  # block 1, (heads, T + 1, d)
    keys: np.ndarray
    values: np.ndarray
    projections: Projections  # block 1: how q, k, v were made and the heads put back together
    probabilities: np.ndarray  # (classes,)
    class_names: list[str]

    @property
    def predicted(self) -> int:
        return int(np.argmax(self.probabilities))

    def cls_attention(self, block: int = 0, head: int | None = None) -> np.ndarray:
        """How much the CLS token attends to each patch, as the patch grid (averaged over heads if None)."""
        rows = self.attention[block][:, 0, 1:] if head is None else self.attention[block][head : head + 1, 0, 1:]
        return rows.mean(axis=0).reshape(self.grid)

    def cls_output(self, head: int) -> np.ndarray:
        """The CLS token's attention output in one head of block 1: Σ_j softmax_j · v_j."""
        return self.cls_query(head)[1] @ self.values[head]

    def cls_query(self, head: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores q_CLS·k_j/√d for every token j, and their softmax (block 1, one head)."""
        q, k = self.queries[head, 0], self.keys[head]
        scores = k @ q / math.sqrt(len(q))
        exps = np.exp(scores - scores.max())
        return scores, exps / exps.sum()

    def ink(self) -> np.ndarray:
        """Each patch's mean pixel value (0..1), as the patch grid: where the strokes are."""
        rows, cols = self.grid
        p = self.patch
        return self.image[: rows * p, : cols * p].reshape(rows, p, cols, p).mean(axis=(1, 3))


def vit_figures(tensor: np.ndarray) -> VitFigures:
    """The shipped ViT's forward pass on one input (1, 28, 28), with what each stage produced."""
    from nnsim.engine.losses import softmax

    model, meta = lesson_vit()
    x = model.be.asarray(np.asarray(tensor, dtype=np.float32)[None])
    normalize, embed = model.layers[0], model.layers[1]
    blocks = [layer for layer in model.layers if type(layer).__name__ == "TransformerBlock"]
    first = blocks[0].attn
    with SHIPPED_MODELS:  # copies of what the layers kept, taken before another forward pass
        logits = np.asarray(model.forward(x), dtype=np.float64)
        attention = [np.array(block.attn.attention)[0] for block in blocks]
        queries, keys, values = (np.array(a)[0] for a in (first.q, first.k, first.v))
        projections = Projections(
            normed=np.array(first.qkv.x)[0],
            weights=np.asarray(first.qkv.weight.value).T.copy(),
            bias=np.asarray(first.qkv.bias.value).copy(),
            heads=first.heads,
            merged=np.array(first.out.x)[0],
            out_weights=np.asarray(first.out.weight.value).T.copy(),
            out_bias=np.asarray(first.out.bias.value).copy(),
        )
        normalized = normalize.forward(x)
        patches = np.asarray(model.be.patchify(normalized, embed.patch))[0]
        tokens = np.asarray(embed.forward(normalized))[0]
    return VitFigures(
        image=np.asarray(tensor)[0],
        mean=float(np.asarray(normalize.mean)[0]),
        std=float(np.asarray(normalize.std)[0]),
        patch=embed.patch,
        grid=embed.grid,
        patches=patches,
        projection=np.asarray(embed.projection.weight.value).T,
        projection_bias=np.asarray(embed.projection.bias.value),
        positions=np.asarray(embed.positions.value),
        tokens=tokens,
        attention=attention,
        queries=queries,
        keys=keys,
        values=values,
        projections=projections,
        probabilities=softmax(logits)[0],
        class_names=meta.get("class_names") or [str(i) for i in range(len(logits[0]))],
    )


def occlusion(tensor: np.ndarray) -> np.ndarray:
    """For each patch: how much the predicted class's probability drops when that patch is blanked
    (set to the training images' background)."""
    from nnsim.engine.losses import softmax

    model, meta = lesson_vit()
    tensor = np.asarray(tensor, dtype=np.float32)
    embed = model.layers[1]
    p, (rows, cols) = embed.patch, embed.grid
    with SHIPPED_MODELS:
        base = softmax(np.asarray(model.forward(model.be.asarray(tensor[None])), dtype=np.float64))[0]
    best = int(np.argmax(base))
    hidden = np.repeat(tensor[None], rows * cols, axis=0)
    for index in range(rows * cols):
        r, c = divmod(index, cols)
        hidden[index, :, r * p : (r + 1) * p, c * p : (c + 1) * p] = meta.get("background", 0.0)
    with SHIPPED_MODELS:
        probs = softmax(np.asarray(model.forward(model.be.asarray(hidden)), dtype=np.float64))
    return (base[best] - probs[:, best]).reshape(rows, cols)


def strongest(grid: np.ndarray) -> tuple[int, int]:
    """(row, col) of a patch map's largest value: the most attended, or the most needed, patch."""
    row, col = np.unravel_index(int(np.argmax(grid)), grid.shape)
    return int(row), int(col)
