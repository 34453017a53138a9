"""Lesson 6's CNN figures: a convolution stepped through (one gray channel, or the three channels
of a photo summed with a bias), the shipped CNN's feature maps, and the receptive field of one of its
outputs, computed from its layers.

Convolutions are the reference backend's `conv2d_forward` (float64); the CNN is the network in
nnsim/data/builtin, run forward by the engine on the learner's image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnsim.engine.backends.rowmath import conv_output_size
from nnsim.errors import NnsimError
from nnsim.tui.live import SHIPPED_MODELS, reference
from nnsim.tui.live.classify import lesson_cnn

KERNELS = {  # the classic hand-made filters; "learned" ones come from the shipped CNN
    "edge": [[-1.0, -1.0, -1.0], [-1.0, 8.0, -1.0], [-1.0, -1.0, -1.0]],
    "blur": [[1 / 9] * 3] * 3,
    "sharpen": [[0.0, -1.0, 0.0], [-1.0, 5.0, -1.0], [0.0, -1.0, 0.0]],
}
GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # how much R, G and B count in a gray pixel (ITU-R 601, as PIL)


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
    missed = span % stride  # the last rows (and columns) of the padded input that no window covers
    if missed:
        text += f"  ({span}/{stride} is not whole: {_never_reached(missed, padding)})"
    if stride > kernel:
        text += f"  (a stride longer than the kernel also skips {stride - kernel} row(s) and column(s) between windows)"
    return n, text


def _never_reached(missed: int, padding: int) -> str:
    """Which of the `missed` last rows and columns of the padded input are image, which padding."""
    pixels = max(missed - padding, 0)
    zeros = missed - pixels
    if not zeros:
        return f"the kernel never reaches the last {missed} row(s) and column(s) of the image"
    if not pixels:
        return f"the kernel never reaches the last {missed} row(s) and column(s), all padding zeros: no pixel is lost"
    return (
        f"the kernel never reaches the last {missed} row(s) and column(s): {zeros} of padding zeros "
        f"and {pixels} of the image"
    )


@dataclass
class Convolution:
    """One output channel cₒ of a convolution: Y[h, w] = b + Σ_cᵢ Σ_m Σ_n K[cᵢ, m, n] · X[cᵢ, …]."""

    image: np.ndarray  # (C, H, W), the input X (C = 1 for a gray image)
    kernel: np.ndarray  # (C, k, k): K[cₒ, cᵢ] for this output channel, one k×k kernel per input channel
    bias: float  # b[cₒ]
    stride: int
    padding: int
    output: np.ndarray  # (H', W'): the reference backend's conv2d_forward
    size_note: str  # the output-size formula, filled in

    def window(self, row: int, col: int) -> np.ndarray:
        """The (C, k, k) pixels under the kernel at output (row, col), zeros where it hangs over the padding."""
        k, s, p = self.kernel.shape[-1], self.stride, self.padding
        padded = np.pad(self.image, ((0, 0), (p, p), (p, p)))
        return padded[:, row * s : row * s + k, col * s : col * s + k]

    def terms(self, row: int, col: int) -> tuple[np.ndarray, float]:
        """The products K[cᵢ,m,n]·X[cᵢ, h·s+m−p, w·s+n−p] at (row, col), and b + their sum (= output[row, col])."""
        products = self.kernel * self.window(row, col)
        return products, float(products.sum() + self.bias)

    def channel_sums(self, row: int, col: int) -> np.ndarray:
        """Σ_m Σ_n K[cᵢ,m,n]·X[cᵢ, …] for each input channel cᵢ at (row, col)."""
        return (self.kernel * self.window(row, col)).sum(axis=(1, 2))


def convolve(image, kernel, stride: int = 1, padding: int = 0, bias: float = 0.0) -> Convolution:
    """Y = b + Σ_cᵢ K[cᵢ] ∗ X[cᵢ] for one output channel, by the reference backend.

    image: (H, W) gray or (C, H, W); kernel: (k, k) or (C, k, k), one per input channel."""
    image = np.asarray(image, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    image = image[None] if image.ndim == 2 else image
    kernel = kernel[None] if kernel.ndim == 2 else kernel
    output_size(image.shape[1], kernel.shape[1], stride, padding)  # explains a kernel that does not fit
    _, note = output_size(image.shape[2], kernel.shape[2], stride, padding)
    y = reference().conv2d_forward(image[None], kernel[None], np.array([bias]), stride, padding)
    return Convolution(image, kernel, float(bias), stride, padding, y[0, 0], note)


def colour_kernel(kernel) -> np.ndarray:
    """(3, k, k): the kernel once per colour channel, weighted as R, G and B weigh in a gray pixel,
    so that on a photo it finds what it finds on the photo's gray version."""
    return np.asarray(GRAY_WEIGHTS)[:, None, None] * np.asarray(kernel, dtype=np.float64)[None]


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


@dataclass(frozen=True)
class BlockShape:
    """What decides where one conv block's outputs look: its convolution's k, s, p and its pool."""

    kernel: int
    stride: int
    padding: int
    pool: int  # 1: no pooling


def cnn_blocks() -> list[BlockShape]:
    """The shipped CNN's conv blocks, as its layers are built."""
    model, _ = lesson_cnn()
    return [
        BlockShape(layer.kernel_size, layer.stride, layer.padding, getattr(layer, "pool", 1))
        for layer in model.conv_layers()
    ]


def block_grids(blocks: list[BlockShape], size: int) -> list[int]:
    """The side of each block's output map for a size×size input."""
    grids = []
    for block in blocks:
        size = conv_output_size(size, block.kernel, block.stride, block.padding) // block.pool
        grids.append(size)
    return grids


def receptive_field(blocks: list[BlockShape], row: int, col: int) -> tuple[int, int, int]:
    """(top, left, size) of the input pixels that output (row, col) of the last of `blocks` can see
    (top and left may lie in the padding, outside the image)."""
    size, jump, start = 1, 1, 0
    for block in blocks:
        size += (block.kernel - 1) * jump  # the kernel widens the view by k − 1 of its steps
        start -= block.padding * jump  # output 0's window starts p steps before the input
        jump *= block.stride
        size += (block.pool - 1) * jump  # the pool takes `pool` neighbouring outputs
        jump *= block.pool
    return start + row * jump, start + col * jump, size


def output_nearest(blocks: list[BlockShape], grid: int, pixel: tuple[int, int]) -> tuple[int, int]:
    """The output (row, col) of the last of `blocks` whose receptive field is centred nearest `pixel`."""
    top, left, size = receptive_field(blocks, 0, 0)
    jump = receptive_field(blocks, 1, 0)[0] - top
    centre = top + (size - 1) / 2

    def nearest(p: int) -> int:
        return int(np.clip(round((p - centre) / jump), 0, grid - 1))

    return nearest(pixel[0]), nearest(pixel[1])
