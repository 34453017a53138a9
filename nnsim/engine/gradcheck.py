"""Finite differences: the slow, obviously-correct way to get a gradient, to check backward.

dL/dθ ≈ (L(θ + h) − L(θ − h)) / 2h, one number at a time, in float64. Used by the tests for every
layer, loss and model, and by the learning-loop lesson to show that backprop is not magic.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def numerical_gradient(
    f: Callable[[], float],
    array: np.ndarray,
    h: float = 1e-6,
    max_entries: int | None = None,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Central differences of ``f()`` with respect to ``array`` (changed in place and restored).

    Returns (indices, gradient values) for up to ``max_entries`` entries picked at random (all of
    them when None), so that large weight matrices stay quick to check.
    """
    flat = array.reshape(-1)
    indices = np.arange(flat.size)
    if max_entries is not None and flat.size > max_entries:
        rng = rng or np.random.default_rng(0)
        indices = np.sort(rng.choice(flat.size, size=max_entries, replace=False))
    grads = np.empty(len(indices))
    for out, i in enumerate(indices):
        original = flat[i]
        flat[i] = original + h
        plus = f()
        flat[i] = original - h
        minus = f()
        flat[i] = original
        grads[out] = (plus - minus) / (2 * h)
    return indices, grads


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """‖a − n‖ / (‖a‖ + ‖n‖) over the checked entries: below 1e-6 means backward is right.

    Taken over the whole vector rather than entry by entry, so that a gradient that is truly 0
    (a dead ReLU) is not judged on finite-difference noise alone.
    """
    analytic = np.asarray(analytic, dtype=np.float64).reshape(-1)
    numeric = np.asarray(numeric, dtype=np.float64).reshape(-1)
    denominator = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    if denominator == 0:
        return 0.0
    return float(np.linalg.norm(analytic - numeric) / denominator)


def check_module(
    module, x: np.ndarray, rng: np.random.Generator | None = None, max_entries: int = 40
) -> dict[str, float]:
    """Relative errors of a module's backward against finite differences, for its input and each
    parameter, with the loss L = Σ r ⊙ module(x) for a fixed random r."""
    rng = rng or np.random.default_rng(0)
    r = rng.standard_normal(np.shape(module.forward(x)))

    def loss() -> float:
        return float(np.sum(r * module.forward(x)))

    module.forward(x)
    dx = module.backward(r.astype(x.dtype))
    errors = {}
    idx, numeric = numerical_gradient(loss, x, max_entries=max_entries, rng=rng)
    errors["input"] = relative_error(np.asarray(dx).reshape(-1)[idx], numeric)
    analytic = {name: np.array(p.grad, copy=True) for name, p in module.named_parameters()}
    for name, param in module.named_parameters():
        idx, numeric = numerical_gradient(loss, param.value, max_entries=max_entries, rng=rng)
        errors[name] = relative_error(analytic[name].reshape(-1)[idx], numeric)
    return errors
