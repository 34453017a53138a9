"""Draw a digit: the canvas's pixels, made to look like an MNIST digit the way MNIST's own were
made, then classified by a trained network (the lab's, or the CNN nnsim ships).

MNIST's digits were cropped to their ink, scaled to fit a 20×20 box (keeping their shape, with
anti-aliasing), and placed in a 28×28 image so that their centre of mass sits at the centre. A
drawing that skips those steps sits in the wrong place at the wrong size, and a network that never
saw such images guesses badly; `mnist_like` does the same three steps and keeps each for the screen.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image

from nnsim.engine.losses import softmax

BOX = 20  # MNIST digits fit in 20×20 …
SIZE = 28  # … centred by mass in 28×28
BRUSH = 1.6  # the pen's radius, in canvas pixels


class Canvas:
    """A grid of ink values in 0..1 (row 0 at the top) that strokes are drawn on."""

    def __init__(self, width: int = 40, height: int = 40):
        self.pixels = np.zeros((height, width), dtype=np.float64)
        self.last: tuple[float, float] | None = None

    def clear(self) -> None:
        self.pixels[:] = 0.0
        self.last = None

    def pen_up(self) -> None:
        self.last = None

    def draw_to(self, x: float, y: float) -> None:
        """Ink from the pen's last point to (x, y) (a dot if the pen was up), in canvas pixels."""
        x0, y0 = self.last if self.last is not None else (x, y)
        steps = max(1, int(np.ceil(np.hypot(x - x0, y - y0) * 2)))
        for t in np.linspace(0.0, 1.0, steps + 1):
            self._dab(x0 + (x - x0) * t, y0 + (y - y0) * t)
        self.last = (x, y)

    def _dab(self, x: float, y: float) -> None:
        height, width = self.pixels.shape
        rows, cols = np.ogrid[:height, :width]
        distance = np.hypot(cols + 0.5 - x, rows + 0.5 - y)
        ink = np.clip(BRUSH + 0.5 - distance, 0.0, 1.0)  # a solid core with a soft edge
        np.maximum(self.pixels, ink, out=self.pixels)

    def stroke(self, points) -> None:
        """A whole stroke through (x, y) points given as fractions of the canvas."""
        height, width = self.pixels.shape
        for fx, fy in points:
            self.draw_to(fx * width, fy * height)
        self.pen_up()

    @property
    def empty(self) -> bool:
        return not self.pixels.any()


@dataclass
class Prepared:
    steps: list[tuple[str, np.ndarray]]  # (what was done, the image after it)

    @property
    def tensor(self) -> np.ndarray:
        """The network's input: (1, 28, 28) float32."""
        return self.steps[-1][1][None].astype(np.float32)


def mnist_like(pixels: np.ndarray) -> Prepared:
    """Crop to the ink, fit into 20×20 keeping the shape, centre by mass in 28×28."""
    pixels = np.clip(np.asarray(pixels, dtype=np.float64), 0.0, 1.0)
    steps = [("drawn", pixels)]
    rows, cols = np.nonzero(pixels > 0.05)
    if not len(rows):
        steps.append(("nothing drawn yet", np.zeros((SIZE, SIZE))))
        return Prepared(steps)
    crop = pixels[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    steps.append((f"cropped to the ink ({crop.shape[1]}×{crop.shape[0]})", crop))
    scale = BOX / max(crop.shape)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    image = Image.fromarray(np.uint8(np.round(crop * 255)), mode="L").resize(size, Image.LANCZOS)
    fitted = np.asarray(image, dtype=np.float64) / 255.0
    steps.append((f"fitted into {BOX}×{BOX} ({size[0]}×{size[1]})", fitted))
    placed = np.zeros((SIZE, SIZE))
    mass = fitted.sum()
    ys, xs = np.indices(fitted.shape)
    cy, cx = (ys * fitted).sum() / max(mass, 1e-9), (xs * fitted).sum() / max(mass, 1e-9)
    top = int(np.clip(round(SIZE / 2 - cy), 0, SIZE - fitted.shape[0]))
    left = int(np.clip(round(SIZE / 2 - cx), 0, SIZE - fitted.shape[1]))
    placed[top : top + fitted.shape[0], left : left + fitted.shape[1]] = fitted
    steps.append((f"centred by mass in {SIZE}×{SIZE}", placed))
    return Prepared(steps)


@dataclass
class Reading:
    """What a network makes of one input."""

    probabilities: np.ndarray  # (classes,)
    class_names: list[str]
    feature_maps: np.ndarray | None  # CNN: the first block's maps (channels, h, w)
    occlusion: np.ndarray | None  # per 4×4 patch: how much the answer's probability drops without it

    @property
    def predicted(self) -> int:
        return int(np.argmax(self.probabilities))


class Reader:
    """A trained network that reads drawings: the lab's latest, else the CNN nnsim ships."""

    def __init__(self, model, class_names: list[str], lock: threading.Lock | None = None, source: str = ""):
        self.model, self.class_names, self.source = model, class_names, source
        self._lock = lock or threading.Lock()

    @classmethod
    def shipped(cls) -> Reader:
        from nnsim.tui.live import SHIPPED_MODELS
        from nnsim.tui.live.classify import lesson_cnn

        model, meta = lesson_cnn()
        names = meta.get("class_names") or [str(i) for i in range(10)]
        return cls(model, names, SHIPPED_MODELS, "the CNN nnsim ships (trained on mnist-mini)")

    def fits(self) -> bool:
        return tuple(self.model.config.input_shape) == (1, SIZE, SIZE)

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        be = self.model.be
        return np.asarray(be.to_numpy(self.model.forward(be.asarray(batch.astype(np.float32)))), dtype=np.float64)

    def read(self, tensor: np.ndarray, occlude: bool = True) -> Reading:
        """Probabilities for one (1, 28, 28) input, the first feature maps, and an occlusion map."""
        with self._lock:
            probs = softmax(self._forward(tensor[None]))[0]
            convs = self.model.conv_layers()
            maps = np.array(self.model.be.to_numpy(convs[0].feature_map))[0] if convs else None
            occlusion = None
            if occlude:
                best, patch = int(np.argmax(probs)), 4
                grid = SIZE // patch
                hidden = np.repeat(tensor[None], grid * grid, axis=0)
                for index in range(grid * grid):
                    r, c = divmod(index, grid)
                    hidden[index, :, r * patch : (r + 1) * patch, c * patch : (c + 1) * patch] = 0.0
                occluded = softmax(self._forward(hidden))[:, best]
                occlusion = (probs[best] - occluded).reshape(grid, grid)
        return Reading(probs, self.class_names, maps, occlusion)
