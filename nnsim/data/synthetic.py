"""Procedural colour shapes: a small RGB data set that needs no files and no network.

Each 32×32 image holds one shape of a random colour, size and place on a random background with a
little noise. ``imbalanced=True`` makes some classes rare, for the focal-loss lesson.
"""

from __future__ import annotations

import functools

import numpy as np

from nnsim.data.dataset import Dataset

SHAPE_CLASSES = ["circle", "square", "triangle", "cross", "ring"]
IMBALANCED_SHARES = [0.45, 0.30, 0.15, 0.07, 0.03]  # how often each class appears in training


def draw_shape(kind: str, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """One (3, size, size) float32 image of ``kind``."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    radius = rng.uniform(0.2, 0.38) * size
    cy, cx = rng.uniform(radius, size - radius, size=2)
    dy, dx = yy - cy, xx - cx
    if kind == "circle":
        mask = dx * dx + dy * dy <= radius * radius
    elif kind == "square":
        half = radius * 0.85
        mask = (np.abs(dx) <= half) & (np.abs(dy) <= half)
    elif kind == "triangle":
        # pointing up: inside when below the two slanted edges and above the base
        mask = (dy <= radius * 0.8) & (dy >= -radius) & (np.abs(dx) <= (dy + radius) * 0.6)
    elif kind == "cross":
        arm = radius * 0.3
        mask = ((np.abs(dx) <= arm) & (np.abs(dy) <= radius)) | ((np.abs(dy) <= arm) & (np.abs(dx) <= radius))
    elif kind == "ring":
        d2 = dx * dx + dy * dy
        mask = (d2 <= radius * radius) & (d2 >= (radius * 0.55) ** 2)
    else:
        raise ValueError(f"unknown shape {kind!r}")
    background = rng.uniform(0.0, 0.45, size=3).astype(np.float32)
    colour = rng.uniform(0.3, 1.0, size=3).astype(np.float32)
    colour[rng.integers(3)] = rng.uniform(0.8, 1.0)  # keep the shape bright against its background
    image = np.where(mask[None], colour[:, None, None], background[:, None, None])
    image += rng.normal(0, 0.04, size=image.shape).astype(np.float32)
    return np.clip(image, 0, 1).astype(np.float32)


def make_shapes(counts: list[int], rng: np.random.Generator, size: int = 32):
    labels = np.concatenate([np.full(n, label, dtype=np.int64) for label, n in enumerate(counts)])
    labels = labels[rng.permutation(len(labels))]
    images = np.stack([draw_shape(SHAPE_CLASSES[label], rng, size) for label in labels])
    return images, labels


def make_shapes_dataset(imbalanced: bool = False, train: int = 3000, test: int = 500, seed: int = 0) -> Dataset:
    x_train, y_train, x_test, y_test = (array.copy() for array in _shapes_arrays(imbalanced, train, test, seed))
    name = "shapes-imbalanced" if imbalanced else "shapes"
    return Dataset(name, x_train, y_train, x_test, y_test, list(SHAPE_CLASSES), source="procedural (nnsim)")


@functools.lru_cache(maxsize=2)
def _shapes_arrays(imbalanced: bool, train: int, test: int, seed: int) -> tuple[np.ndarray, ...]:
    """The images and labels, drawn once per process: drawing them takes most of a second (several
    while a lab trains beside it), copying them a few milliseconds; a lab restarts its run often."""
    rng = np.random.default_rng(1234 + seed)
    classes = len(SHAPE_CLASSES)
    shares = IMBALANCED_SHARES if imbalanced else [1 / classes] * classes
    train_counts = [max(1, int(round(train * share))) for share in shares]
    x_train, y_train = make_shapes(train_counts, rng)
    x_test, y_test = make_shapes([test // classes] * classes, rng)  # balanced, so rare classes are measured
    return x_train, y_train, x_test, y_test
