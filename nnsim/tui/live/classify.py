"""The classify widget's figures: the shipped CNN, and what it says of an image."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from nnsim.resources import builtin_data_path
from nnsim.tui.live import SHIPPED_MODELS, reference

CHECKPOINT = "lesson-cnn.npz"  # made by scripts/make_lesson_networks.py cnn


@cache
def lesson_cnn():
    """The shipped CNN on the reference backend, and its checkpoint's metadata."""
    from nnsim.engine.checkpoint import load_checkpoint

    return load_checkpoint(builtin_data_path(CHECKPOINT), backend=reference())


@dataclass
class Classification:
    picture: np.ndarray  # H×W: the first channel of the input the CNN saw
    input_shape: tuple[int, ...]  # C×H×W of that input
    notes: list[str]  # what was done to the image to make it fit
    top: list[tuple[str, float]]  # (class, probability), most likely first
    parameters: int  # the CNN's weights and biases, counted


def classify(path: Path, top: int) -> Classification:
    """What the shipped CNN says of the image at `path`: its top classes and what it saw."""
    from nnsim.predict import prepare_image, top_classes

    model, meta = lesson_cnn()
    tensor, notes = prepare_image(path, model.config.input_shape, meta.get("background"))
    with SHIPPED_MODELS:  # the shipped CNN is shared with the other widgets' workers
        top_k = top_classes(tensor, model, meta, top)
    return Classification(tensor[0], tuple(model.config.input_shape), notes, top_k, model.parameter_count())
