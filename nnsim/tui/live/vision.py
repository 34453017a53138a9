"""Lesson 6's figures: a convolution stepped through, the shipped CNN's feature maps, the shipped
ViT's patches, embeddings and attention, and the receptive field of a CNN output.

Convolutions are the reference backend's `conv2d_forward` (float64); the CNN and ViT are the
networks in nnsim/data/builtin, run forward by the engine on the learner's image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from nnsim.engine.backends.rowmath import conv_output_size
from nnsim.errors import NnsimError
from nnsim.resources import builtin_data_path
from nnsim.tui.live import SHIPPED_MODELS, reference
from nnsim.tui.live.classify import lesson_cnn

KERNELS = {  # the classic hand-made filters; "learned" ones come from the shipped CNN
    "edge": [[-1.0, -1.0, -1.0], [-1.0, 8.0, -1.0], [-1.0, -1.0, -1.0]],
    "blur": [[1 / 9] * 3] * 3,
    "sharpen": [[0.0, -1.0, 0.0], [-1.0, 5.0, -1.0], [0.0, -1.0, 0.0]],
}
VIT_CHECKPOINT = "lesson-vit.npz"  # made by scripts/make_lesson_networks.py vit


# ------------------------------------------------------------------------------- images
def digit_input(path: Path, model_meta: tuple) -> tuple[np.ndarray, list[str]]:
    """The image as a shipped network's input (1, 28, 28), as `nnsim predict` prepares it."""
    from nnsim.predict import prepare_image

    model, meta = model_meta
    return prepare_image(path, model.config.input_shape, meta.get("background"))


# ------------------------------------------------------------------------------- convolution
def output_size(size: int, kernel: int, stride: int, padding: int) -> tuple[int, str]:
    """⌊(size + 2p − k)/s⌋ + 1 with the formula filled in; NnsimError (explained) if nothing fits."""
    span = size + 2 * padding - kernel
    filled = f"⌊({size} + 2·{padding} − {kernel}) / {stride}⌋ + 1"
    if span < 0:
        raise NnsimError(
            f"a {kernel}×{kernel} kernel does not fit in {size} pixels with padding {padding}: "
            f"{size} + 2·{padding} − {kernel} = {span} < 0, so there is no position to put it"
        )
    n = conv_output_size(size, kernel, stride, padding)
    text = f"{filled} = ⌊{span}/{stride}⌋ + 1 = {n}"
    if span % stride:
        text += f"  ({span}/{stride} is not whole: the kernel never reaches the last {span % stride} pixel(s))"
    return n, text


@dataclass
class Convolution:
    image: np.ndarray  # (H, W), the input X
    kernel: np.ndarray  # (k, k), K
    stride: int
    padding: int
    output: np.ndarray  # (H', W'): the reference backend's conv2d_forward
    size_note: str  # the output-size formula, filled in

    def window(self, row: int, col: int) -> np.ndarray:
        """The k×k pixels under the kernel at output (row, col), zeros where it hangs over the padding."""
        k, s, p = len(self.kernel), self.stride, self.padding
        padded = np.pad(self.image, p)
        return padded[row * s : row * s + k, col * s : col * s + k]

    def terms(self, row: int, col: int) -> tuple[np.ndarray, float]:
        """The products K[m,n]·X[h·s+m−p, w·s+n−p] at (row, col), and their sum (= output[row, col])."""
        products = self.kernel * self.window(row, col)
        return products, float(products.sum())


def convolve(image: np.ndarray, kernel, stride: int = 1, padding: int = 0) -> Convolution:
    """Y = K ∗ X for one gray image and one kernel, by the reference backend."""
    image = np.asarray(image, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    output_size(image.shape[0], kernel.shape[0], stride, padding)  # explains a kernel that does not fit
    _, note = output_size(image.shape[1], kernel.shape[1], stride, padding)
    y = reference().conv2d_forward(image[None, None], kernel[None, None], np.zeros(1), stride, padding)
    return Convolution(image, kernel, stride, padding, y[0, 0], note)


def learned_kernels() -> np.ndarray:
    """The first layer's filters of the shipped CNN, (count, 3, 3): what training made of them."""
    model, _ = lesson_cnn()
    return np.asarray(model.conv_layers()[0].weight.value, dtype=np.float64)[:, 0]


def feature_maps(path: Path) -> tuple[np.ndarray, list[np.ndarray]]:
    """The CNN's input (28×28) and every conv block's maps for it, [(channels, h, w), …]."""
    model, meta = lesson_cnn()
    tensor, _ = digit_input(path, (model, meta))
    with SHIPPED_MODELS:
        model.forward(model.be.asarray(tensor[None].astype(np.float32)))
        return tensor[0], [np.array(layer.feature_map)[0] for layer in model.conv_layers()]


def receptive_field(depth: int, row: int, col: int, kernel: int = 3, pool: int = 2) -> tuple[int, int, int]:
    """(top, left, size) of the input pixels one output of conv block `depth` (1-based) can see:
    each block is a k×k convolution with padding k//2 and a pool×pool max-pool."""
    size, jump, start = 1, 1, 0.0
    for _ in range(depth):
        size += (kernel - 1) * jump  # the convolution widens the view by k − 1 steps
        start -= (kernel // 2) * jump  # padding k//2 centres it
        size += (pool - 1) * jump  # the pool covers pool positions
        jump *= pool
    return int(start + row * jump), int(start + col * jump), size


# ------------------------------------------------------------------------------- ViT
@cache
def lesson_vit():
    from nnsim.engine.checkpoint import load_checkpoint

    return load_checkpoint(builtin_data_path(VIT_CHECKPOINT), backend=reference())


@dataclass
class VitFigures:
    image: np.ndarray  # (28, 28) the input
    patch: int  # the ViT's patch size
    grid: tuple[int, int]  # patches per column and row
    patches: np.ndarray  # (T, p·p): each patch flattened, x_i
    projection: np.ndarray  # (p·p, D): E
    projection_bias: np.ndarray  # (D,): the projection's bias, folded into x E in the lesson's formula
    positions: np.ndarray  # (T + 1, D): p_0 (CLS) … p_T
    tokens: np.ndarray  # (T + 1, D): [CLS; x_i E] + p_i, the first layer's input
    attention: list[np.ndarray]  # per block: (heads, T + 1, T + 1)
    queries: np.ndarray  # first block, (heads, T + 1, d)
    keys: np.ndarray
    values: np.ndarray
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


def vit_figures(path: Path) -> VitFigures:
    """The shipped ViT's forward pass on one image, with what each stage produced."""
    from nnsim.engine.losses import softmax

    model, meta = lesson_vit()
    tensor, _ = digit_input(path, (model, meta))
    x = model.be.asarray(tensor[None].astype(np.float32))
    embed = model.layers[1]
    blocks = [layer for layer in model.layers if type(layer).__name__ == "TransformerBlock"]
    with SHIPPED_MODELS:  # copies of what the layers kept, taken before another forward pass
        logits = np.asarray(model.forward(x), dtype=np.float64)
        attention = [np.array(block.attn.attention)[0] for block in blocks]
        first = blocks[0].attn
        queries, keys, values = (np.array(a)[0] for a in (first.q, first.k, first.v))
        normalized = model.layers[0].forward(x)
        patches = np.asarray(model.be.patchify(normalized, embed.patch))[0]
        tokens = np.asarray(embed.forward(normalized))[0]
    return VitFigures(
        image=tensor[0],
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
        probabilities=softmax(logits)[0],
        class_names=meta.get("class_names") or [str(i) for i in range(len(logits[0]))],
    )


def occlusion(path: Path) -> np.ndarray:
    """For each patch: how much the predicted class's probability drops when that patch is blanked."""
    from nnsim.engine.losses import softmax

    model, meta = lesson_vit()
    tensor, _ = digit_input(path, (model, meta))
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
