"""The pixel grid's figures: a window of a digit as the shipped CNN's first layer, Normalize, sees it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnsim.tui.live import SHIPPED_MODELS


@dataclass(frozen=True)
class Normalisation:
    mean: float  # of the pixels of the CNN's training digits, stored in its first layer
    std: float


def cnn_normalisation() -> Normalisation:
    """The mean and std with which the shipped CNN's first layer normalises its one gray channel."""
    from nnsim.tui.live.classify import lesson_cnn

    model, _ = lesson_cnn()
    return Normalisation(float(model.config.mean[0]), float(model.config.std[0]))


def normalise(window: np.ndarray) -> np.ndarray:
    """(x − mean) / std of a window of a gray image, by the shipped CNN's own first layer."""
    from nnsim.engine import layers as L
    from nnsim.tui.live.classify import lesson_cnn

    model, _ = lesson_cnn()
    first = model.layers[0]
    assert isinstance(first, L.Normalize), "the shipped networks begin with Normalize"
    with SHIPPED_MODELS:
        out = first.forward(model.be.asarray(np.asarray(window, dtype=np.float32)[None, None]))
    return np.asarray(model.be.to_numpy(out), dtype=np.float64)[0, 0]
