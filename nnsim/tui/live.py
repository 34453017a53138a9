"""The engine, as the lesson widgets call it: every figure a widget shows is computed here.

Widgets use the reference backend (NumPy, float64 for exact small figures), as DESIGN.md asks:
the fast backends, and Numba with them, are for training, never imported by a lesson.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from nnsim.engine import layers as L


@cache
def reference():
    from nnsim.engine.backends import get_backend

    return get_backend("reference")


def dense_layer(weights: np.ndarray, bias: np.ndarray, activation: str) -> L.Sequential:
    """A Linear layer holding exactly `weights` (neurons × inputs) and `bias`, then f."""
    be = reference()
    neurons, inputs = np.shape(weights)
    linear = L.Linear(be, inputs, neurons, np.random.default_rng(0), dtype=np.float64)
    linear.weight.value = be.asarray(np.asarray(weights, dtype=np.float64))
    linear.bias.value = be.asarray(np.asarray(bias, dtype=np.float64))
    return L.Sequential(be, [linear, L.Activation(be, activation)])


def layer_forward(weights, bias, x, activation: str = "linear") -> tuple[np.ndarray, np.ndarray]:
    """z = Wx + b and y = f(z) for one input vector x, through the engine's own layers."""
    layer = dense_layer(weights, bias, activation)
    batch = np.asarray(x, dtype=np.float64)[None, :]
    linear, act = layer.layers
    z = linear.forward(batch)
    return z[0], act.forward(z)[0]


def activate(name: str, z) -> np.ndarray:
    """f(z) for every value of z, by the engine's activation layer."""
    return np.asarray(L.Activation(reference(), name).forward(np.asarray(z, dtype=np.float64)))
