"""Make nnsim/data/builtin/mnist-mini.npz: a fixed, class-balanced subset of real MNIST.

Run from the repository root: python scripts/make_mnist_mini.py [../shared/datasets/mnist]
10,000 training and 2,000 test images, 1,000 and 200 per digit, chosen with a fixed seed.
"""

import sys
from pathlib import Path

import numpy as np

from nnsim.data.datasets import find_idx_files, read_idx


def balanced_pick(labels: np.ndarray, per_class: int, rng) -> np.ndarray:
    picks = [rng.choice(np.flatnonzero(labels == c), size=per_class, replace=False) for c in range(10)]
    return np.sort(np.concatenate(picks))


def main() -> None:
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/datasets/mnist")
    files = find_idx_files(source)
    arrays = {key: read_idx(path) for key, path in files.items()}
    rng = np.random.default_rng(20261125)
    train = balanced_pick(arrays["y_train"], 1000, rng)
    test = balanced_pick(arrays["y_test"], 200, rng)
    out = Path("nnsim/data/builtin/mnist-mini.npz")
    np.savez_compressed(
        out,
        x_train=arrays["x_train"][train],
        y_train=arrays["y_train"][train],
        x_test=arrays["x_test"][test],
        y_test=arrays["y_test"][test],
    )
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): {len(train)} train, {len(test)} test")


if __name__ == "__main__":
    main()
