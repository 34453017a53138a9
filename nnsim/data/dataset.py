"""A data set in memory: train and test images with their labels, and the validation split."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nnsim.errors import NnsimError

STATS_CHUNK = 512  # images at a time in channel_stats


@dataclass
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    source: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(v) for v in self.x_train.shape[1:])

    @property
    def classes(self) -> int:
        return len(self.class_names)

    def channel_stats(self) -> tuple[list[float], list[float]]:
        """Per-channel mean and standard deviation of the training images (for normalisation)."""
        x = self.x_train.reshape(*self.x_train.shape[:2], -1)  # (N, C, H·W)
        count = max(1, x.shape[0] * x.shape[2])
        mean = x.sum(axis=(0, 2), dtype=np.float64) / count
        # the squared deviations a few hundred images at a time: NumPy's std makes a float64 copy
        # of the whole set, and touching its fresh pages took 0.4 s of the lab's first step
        squares = np.zeros_like(mean)
        for start in range(0, x.shape[0], STATS_CHUNK):
            deviation = x[start : start + STATS_CHUNK].astype(np.float64) - mean[:, None]
            squares += np.einsum("nci,nci->c", deviation, deviation)
        std = np.sqrt(squares / count)
        return [float(v) for v in mean], [float(max(v, 1e-3)) for v in std]

    def check(self) -> None:
        """Refuse what would train to a meaningless score: one class only."""
        present = np.unique(self.y_train)
        if len(present) < 2:
            found = f"only class {present[0]}" if len(present) else "no labels"
            raise NnsimError(
                f"{self.source or self.name}: y_train has {found}; a classifier needs at least two classes to learn"
            )

    def summary(self) -> str:
        c, h, w = self.input_shape
        return (
            f"{self.name}: {len(self.x_train):,} train / {len(self.x_test):,} test images, "
            f"{c}×{h}×{w}, {self.classes} classes"
        )


def split_validation(x: np.ndarray, y: np.ndarray, fraction: float, seed: int = 0):
    """Carve a validation set from the training set: (x_train, y_train, x_val, y_val).

    The split depends only on the seed, so the same seed always holds out the same images.
    """
    if not 0 <= fraction < 1:
        raise NnsimError(f"the validation fraction must be in [0, 1), got {fraction}")
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = int(round(len(x) * fraction))
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], x[val], y[val]
