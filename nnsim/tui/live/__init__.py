"""The engine, as the lesson widgets call it: every figure a widget shows is computed here.

Widgets only draw: they call these functions (in a worker when the work takes a while) and show
the plain results, which tests check without the app. Lessons use the reference backend (NumPy,
float64 for exact small figures); the fast backends, and Numba with them, are for training and
are never imported by a lesson. One module per widget that needs more than a line or two.
"""

from __future__ import annotations

import threading
from functools import cache

import numpy as np

from nnsim.engine import layers as L

# The shipped networks are shared by every widget, and a forward pass leaves its values in the
# layers (feature maps, attention): one widget's worker at a time may run one and read them.
SHIPPED_MODELS = threading.Lock()


@cache
def reference():
    from nnsim.engine.backends import get_backend

    return get_backend("reference")


def layer_forward(weights, bias, x, activation: str = "linear") -> tuple[np.ndarray, np.ndarray]:
    """z = Wx + b and y = f(z) for one input vector x, through the engine's own Linear and activation.

    weights: (neurons, inputs), exactly the numbers the widget shows; bias: (neurons,).
    """
    be = reference()
    neurons, inputs = np.shape(weights)
    linear = L.Linear(be, inputs, neurons, np.random.default_rng(0), dtype=np.float64)
    linear.weight.value = be.asarray(np.asarray(weights, dtype=np.float64))
    linear.bias.value = be.asarray(np.asarray(bias, dtype=np.float64))
    z = linear.forward(np.asarray(x, dtype=np.float64)[None, :])
    return z[0], L.Activation(be, activation).forward(z)[0]


def dense_layer_init(inputs: int, neurons: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
    """(W, b) as the engine's Linear layer initialises them, and the generator for what comes next."""
    rng = np.random.default_rng(seed)
    linear = L.Linear(reference(), inputs, neurons, rng, dtype=np.float64)
    return np.asarray(linear.weight.value), np.asarray(linear.bias.value), rng


def activate(name: str, z) -> np.ndarray:
    """f(z) for every value of z, by the engine's activation layer."""
    return np.asarray(L.Activation(reference(), name).forward(np.asarray(z, dtype=np.float64)))
