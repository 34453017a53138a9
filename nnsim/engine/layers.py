"""Layers: each one a forward pass and its backward pass, side by side.

A layer keeps from ``forward`` what ``backward`` needs, and exposes what the app draws
(``Conv2d.feature_map``, ``MultiHeadSelfAttention.attention``). ``backward(dy)`` takes dL/d(output),
stores dL/d(parameter) in each parameter's ``grad`` and returns dL/d(input). The arithmetic is done
by a backend, so the same layer runs on NumPy, Numba or CUDA.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from nnsim.engine.activations import ACTIVATIONS


class Parameter:
    """A learned array (a weight or a bias) and its gradient."""

    def __init__(self, value):
        self.value = value
        self.grad = None


class Module:
    """Base class: finds parameters and sub-modules in its attributes, in definition order.

    ``needs_input_grad`` is False for the first layers of a network: nothing uses the gradient
    with respect to the image, so their ``backward`` skips it and returns None.
    """

    needs_input_grad = True

    def __init__(self, backend):
        self.be = backend

    def forward(self, x):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    def __call__(self, x):
        return self.forward(x)

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
            elif isinstance(value, Module):
                yield from value.named_parameters(f"{prefix}{name}.")
            elif isinstance(value, list) and value and isinstance(value[0], Module):
                for index, module in enumerate(value):
                    yield from module.named_parameters(f"{prefix}{name}.{index}.")

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def describe(self) -> str:
        return type(self).__name__


def _uniform(rng: np.random.Generator, shape: tuple, fan_in: int, dtype) -> np.ndarray:
    """PyTorch's default initialisation for Linear and Conv2d: U(−1/√fan_in, 1/√fan_in)."""
    bound = 1.0 / math.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


class Linear(Module):
    """y = x Wᵀ + b, a fully connected (dense) layer: every input reaches every output."""

    def __init__(self, backend, in_features: int, out_features: int, rng, dtype=np.float32):
        super().__init__(backend)
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(backend.asarray(_uniform(rng, (out_features, in_features), in_features, dtype)))
        self.bias = Parameter(backend.asarray(_uniform(rng, (out_features,), in_features, dtype)))

    def forward(self, x):
        self.x = x
        return self.be.linear_forward(x, self.weight.value, self.bias.value)

    def backward(self, dy):
        dx, self.weight.grad, self.bias.grad = self.be.linear_backward(
            self.x, self.weight.value, dy, input_grad=self.needs_input_grad
        )
        return dx

    def describe(self) -> str:
        return f"Linear({self.in_features}→{self.out_features})"


class Conv2d(Module):
    """Y[co,h,w] = b[co] + Σ_ci Σ_m Σ_n K[co,ci,m,n] · X[ci, h+m, w+n]: one small kernel slides.

    ``activation="relu"`` applies ReLU in the same pass (conv + bias + ReLU), so that the fast
    backends compute it in one kernel; ``feature_map`` is then the map after ReLU.
    """

    def __init__(
        self,
        backend,
        in_channels,
        out_channels,
        kernel_size,
        rng,
        stride=1,
        padding=0,
        dtype=np.float32,
        activation: str | None = None,
    ):
        super().__init__(backend)
        if activation not in (None, "relu"):
            raise ValueError(f"Conv2d fuses only ReLU, not {activation!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.activation = activation
        fan_in = in_channels * kernel_size * kernel_size
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.weight = Parameter(backend.asarray(_uniform(rng, shape, fan_in, dtype)))
        self.bias = Parameter(backend.asarray(_uniform(rng, (out_channels,), fan_in, dtype)))
        self.feature_map = None

    def forward(self, x):
        self.x = x
        self.feature_map = self.be.conv2d_forward(
            x, self.weight.value, self.bias.value, self.stride, self.padding, relu=self.activation == "relu"
        )
        return self.feature_map

    def backward(self, dy):
        dx, self.weight.grad, self.bias.grad = self.be.conv2d_backward(
            self.x,
            self.weight.value,
            dy,
            self.stride,
            self.padding,
            relu_output=self.feature_map if self.activation == "relu" else None,
            input_grad=self.needs_input_grad,
        )
        return dx

    def describe(self) -> str:
        k = self.kernel_size
        text = f"Conv2d({self.in_channels}→{self.out_channels}, {k}×{k}, stride {self.stride}, pad {self.padding})"
        return text + (" + ReLU" if self.activation == "relu" else "")


class ConvBlock(Conv2d):
    """Conv2d, then ReLU, then MaxPool2d: the repeating unit of a CNN, run as one step.

    It computes MaxPool(ReLU(K ∗ X + b)). Fused, the fast backends never write the full-size
    feature maps to memory; ``feature_map`` then holds the pooled maps.
    """

    def __init__(self, backend, in_channels, out_channels, kernel_size, rng, padding=0, pool=2, dtype=np.float32):
        super().__init__(backend, in_channels, out_channels, kernel_size, rng, 1, padding, dtype, activation="relu")
        self.pool = pool

    def forward(self, x):
        self.x = x
        self.feature_map, self.argmax = self.be.conv_block_forward(
            x, self.weight.value, self.bias.value, self.stride, self.padding, self.pool
        )
        return self.feature_map

    def backward(self, dy):
        dx, self.weight.grad, self.bias.grad = self.be.conv_block_backward(
            self.x,
            self.weight.value,
            dy,
            self.feature_map,
            self.argmax,
            self.stride,
            self.padding,
            self.pool,
            input_grad=self.needs_input_grad,
        )
        return dx

    def describe(self) -> str:
        return f"{super().describe()} + MaxPool2d({self.pool}×{self.pool})"


class MaxPool2d(Module):
    """Keeps the largest value of each size×size window: half the height and width for size 2."""

    def __init__(self, backend, size: int = 2):
        super().__init__(backend)
        self.size = size

    def forward(self, x):
        self.x_shape = x.shape
        y, self.argmax = self.be.maxpool2d_forward(x, self.size)
        return y

    def backward(self, dy):
        return self.be.maxpool2d_backward(dy, self.argmax, self.x_shape, self.size)

    def describe(self) -> str:
        return f"MaxPool2d({self.size}×{self.size})"


class Activation(Module):
    """y = f(z), applied to every number on its own. f is relu, sigmoid, tanh, linear or gelu."""

    def __init__(self, backend, name: str):
        super().__init__(backend)
        self.name = name

    def forward(self, z):
        self.z = z
        return self.be.activation_forward(self.name, z)

    def backward(self, dy):
        return self.be.activation_backward(self.name, self.z, dy)

    def describe(self) -> str:
        return ACTIVATIONS[self.name].title


def ReLU(backend):  # noqa: N802 - reads like the layer it builds
    return Activation(backend, "relu")


def Sigmoid(backend):  # noqa: N802
    return Activation(backend, "sigmoid")


def Tanh(backend):  # noqa: N802
    return Activation(backend, "tanh")


def Identity(backend):  # noqa: N802
    return Activation(backend, "linear")


def GELU(backend):  # noqa: N802
    return Activation(backend, "gelu")


class Flatten(Module):
    """(N, C, H, W) -> (N, C·H·W): the image becomes one long vector per sample."""

    def forward(self, x):
        self.x_shape = x.shape
        return self.be.reshape(x, (x.shape[0], -1))

    def backward(self, dy):
        return self.be.reshape(dy, self.x_shape)


class Normalize(Module):
    """(x − mean) / std per channel, with the training set's statistics (fixed, not learned)."""

    def __init__(self, backend, mean, std, dtype=np.float32):
        super().__init__(backend)
        self.mean = backend.asarray(np.asarray(mean, dtype=dtype))
        self.std = backend.asarray(np.asarray(std, dtype=dtype))
        self.no_shift = backend.asarray(np.zeros(len(std), dtype=dtype))

    def forward(self, x):
        return self.be.normalize(x, self.mean, self.std)

    def backward(self, dy):
        return self.be.normalize(dy, self.no_shift, self.std)  # dx = dy / std


class LayerNorm(Module):
    """y = (x − mean) / √(var + ε) · γ + β, over the features of each token."""

    def __init__(self, backend, features: int, dtype=np.float32, eps: float = 1e-5):
        super().__init__(backend)
        self.eps = eps
        self.weight = Parameter(backend.asarray(np.ones(features, dtype=dtype)))
        self.bias = Parameter(backend.asarray(np.zeros(features, dtype=dtype)))

    def forward(self, x):
        y, self.xhat, self.rstd = self.be.layernorm_forward(x, self.weight.value, self.bias.value, self.eps)
        return y

    def backward(self, dy):
        dx, self.weight.grad, self.bias.grad = self.be.layernorm_backward(dy, self.xhat, self.rstd, self.weight.value)
        return dx


class Sequential(Module):
    """Layers applied one after another; backward runs them in reverse."""

    def __init__(self, backend, layers: list[Module]):
        super().__init__(backend)
        self.layers = layers

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dy):
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
            if dy is None:  # the layers before need no gradient (see Module.needs_input_grad)
                return None
        return dy


class PatchEmbed(Module):
    """z_i = x_i E + p_i: cut the image into patches, project each, add its position; prepend CLS."""

    def __init__(self, backend, image_shape: tuple, patch: int, dim: int, rng, dtype=np.float32):
        super().__init__(backend)
        channels, height, width = image_shape
        self.patch = patch
        self.grid = (height // patch, width // patch)
        self.tokens = self.grid[0] * self.grid[1]
        self.projection = Linear(backend, channels * patch * patch, dim, rng, dtype)  # E
        self.cls = Parameter(backend.asarray((0.02 * rng.standard_normal((1, dim))).astype(dtype)))
        self.positions = Parameter(backend.asarray((0.02 * rng.standard_normal((self.tokens + 1, dim))).astype(dtype)))

    def forward(self, x):
        self.x_shape = x.shape
        patches = self.be.patchify(x, self.patch)  # x_i, flattened
        embedded = self.projection.forward(patches)  # x_i E
        return self.be.add_tokens(embedded, self.cls.value, self.positions.value)  # + p_i

    def backward(self, dy):
        dembedded, self.cls.grad, self.positions.grad = self.be.add_tokens_backward(dy)
        self.projection.needs_input_grad = self.needs_input_grad
        dpatches = self.projection.backward(dembedded)
        if dpatches is None:
            return None
        return self.be.patchify_backward(dpatches, self.x_shape, self.patch)

    def describe(self) -> str:
        return f"PatchEmbed({self.patch}×{self.patch} patches, {self.tokens}+CLS tokens)"


class MultiHeadSelfAttention(Module):
    """Every token looks at every token: softmax(Q Kᵀ / √d) V in each head, heads concatenated."""

    def __init__(self, backend, dim: int, heads: int, rng, dtype=np.float32):
        super().__init__(backend)
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.qkv = Linear(backend, dim, 3 * dim, rng, dtype)
        self.out = Linear(backend, dim, dim, rng, dtype)
        self.attention = None  # (N, heads, T, T): who attends to whom, for the app

    def forward(self, x):
        q, k, v = self.be.split_heads(self.qkv.forward(x), self.heads)
        self.q, self.k, self.v = q, k, v
        mixed, self.attention = self.be.attention_forward(q, k, v)
        return self.out.forward(self.be.merge_heads(mixed))

    def backward(self, dy):
        dmixed = self.be.merge_heads_backward(self.out.backward(dy), self.heads)
        dq, dk, dv = self.be.attention_backward(self.q, self.k, self.v, self.attention, dmixed)
        return self.qkv.backward(self.be.split_heads_backward(dq, dk, dv))


class TransformerBlock(Module):
    """Pre-LN block: x + Attention(LN(x)), then x + MLP(LN(x)) with MLP = Linear-GELU-Linear."""

    def __init__(self, backend, dim: int, heads: int, mlp_dim: int, rng, dtype=np.float32):
        super().__init__(backend)
        self.norm1 = LayerNorm(backend, dim, dtype)
        self.attn = MultiHeadSelfAttention(backend, dim, heads, rng, dtype)
        self.norm2 = LayerNorm(backend, dim, dtype)
        self.mlp = Sequential(
            backend,
            [Linear(backend, dim, mlp_dim, rng, dtype), GELU(backend), Linear(backend, mlp_dim, dim, rng, dtype)],
        )

    def forward(self, x):
        x = self.be.add(x, self.attn.forward(self.norm1.forward(x)))
        return self.be.add(x, self.mlp.forward(self.norm2.forward(x)))

    def backward(self, dy):
        # each residual passes the gradient straight through and adds the branch's gradient
        dy = self.be.add(dy, self.norm2.backward(self.mlp.backward(dy)))
        return self.be.add(dy, self.norm1.backward(self.attn.backward(dy)))

    def describe(self) -> str:
        return f"TransformerBlock({self.attn.heads} heads)"


class TakeToken(Module):
    """Keeps one token of each sequence: the CLS token, which summarises the image."""

    def __init__(self, backend, index: int = 0):
        super().__init__(backend)
        self.index = index

    def forward(self, x):
        self.x_shape = x.shape
        return self.be.take_token(x, self.index)

    def backward(self, dy):
        return self.be.take_token_backward(dy, self.x_shape, self.index)

    def describe(self) -> str:
        return "TakeToken(CLS)"
