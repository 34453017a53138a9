"""The backend contract: every op a training step uses, with its shapes.

A backend is one class that provides all of these (reference.py, the cpu/ and cuda/ packages). Layers,
losses, optimizers and the trainer call nothing else, so a new backend that implements this
protocol trains every model. `tests/engine/test_backend_protocol.py` checks each backend against
it, parameter by parameter; `tests/engine/test_backend_parity.py` checks their numbers against the
reference backend.

Arrays are the backend's own (NumPy arrays, or device arrays on CUDA); shapes use N for the batch,
C for channels, T for tokens, D for features. Every op keeps its inputs' dtype. Ops that return a
gradient return None for one that was not asked for (``input_grad=False``, ``has_bias=False``).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

Array = Any  # numpy.ndarray, or the backend's device array


@runtime_checkable
class Backend(Protocol):
    name: str

    # ---------------------------------------------------------------- arrays
    def asarray(self, array, dtype=None) -> Array:
        """A NumPy array (or anything array-like) as this backend's array, contiguous."""

    def to_numpy(self, array) -> Any:
        """This backend's array as a NumPy array (a copy from the device on CUDA)."""

    def zeros_like(self, array: Array) -> Array:
        """Zeros of the same shape and dtype."""

    def copy(self, array: Array) -> Array:
        """A copy that later in-place updates of ``array`` leave alone."""

    def synchronize(self) -> None:
        """Wait until queued work has finished (timers need it on a GPU)."""

    def reshape(self, x: Array, shape: tuple) -> Array:
        """The same numbers in another shape."""

    def add(self, a: Array, b: Array) -> Array:
        """a + b, same shapes (a residual connection)."""

    def normalize(self, x: Array, mean: Array, std: Array) -> Array:
        """(x − mean) / std per channel: x (N, C, H, W), mean and std (C,)."""

    # ---------------------------------------------------------------- matrix products
    def matmul(self, a: Array, b: Array) -> Array:
        """(M, K) @ (K, N) -> (M, N); batched (B, M, K) @ (B, K, N) -> (B, M, N)."""

    def linear_forward(self, x: Array, weight: Array, bias: Array | None) -> Array:
        """y = x Wᵀ + b: x (..., in), W (out, in), b (out,) or None -> (..., out)."""

    def linear_backward(self, x: Array, weight: Array, dy: Array, has_bias: bool = True, input_grad: bool = True):
        """(dx (..., in) or None, dW (out, in), db (out,) or None) of y = x Wᵀ + b."""

    # ---------------------------------------------------------------- convolution and pooling
    def conv2d_forward(self, x: Array, w: Array, b: Array, stride: int = 1, padding: int = 0, relu: bool = False):
        """Y = K ∗ X + b (then ReLU if asked): x (N, Ci, H, W), w (Co, Ci, kh, kw), b (Co,) -> (N, Co, H', W')."""

    def conv2d_backward(
        self, x: Array, w: Array, dy: Array, stride: int = 1, padding: int = 0, relu_output=None, input_grad=True
    ):
        """(dx or None, dw, db); relu_output is the forward's output when it applied ReLU."""

    def conv_block_forward(self, x: Array, w: Array, b: Array, stride: int = 1, padding: int = 0, pool: int = 2):
        """MaxPool(ReLU(K ∗ X + b)) -> (pooled (N, Co, H'/pool, W'/pool), argmax: where each max came from)."""

    def conv_block_backward(
        self, x, w, dpooled, pooled, argmax, stride: int = 1, padding: int = 0, pool: int = 2, input_grad=True
    ):
        """(dx or None, dw, db) of conv_block_forward, from the gradient of its pooled output."""

    def maxpool2d_forward(self, x: Array, size: int):
        """(N, C, H, W) -> (largest of each size×size window (N, C, H/size, W/size), argmax)."""

    def maxpool2d_backward(self, dy: Array, argmax: Array, x_shape: tuple, size: int) -> Array:
        """dx (x_shape): each window's gradient goes to the place its maximum came from."""

    # ---------------------------------------------------------------- elementwise and normalisation
    def activation_forward(self, name: str, z: Array) -> Array:
        """f(z) for name in relu, sigmoid, tanh, linear, gelu (nnsim.engine.activations)."""

    def activation_backward(self, name: str, z: Array, dy: Array) -> Array:
        """dL/dz = dL/dy · f′(z)."""

    def layernorm_forward(self, x: Array, gamma: Array, beta: Array, eps: float = 1e-5):
        """(y, xhat, rstd): y = (x − mean)/√(var + eps)·γ + β over the last axis (D,)."""

    def layernorm_backward(self, dy: Array, xhat: Array, rstd: Array, gamma: Array):
        """(dx, dgamma (D,), dbeta (D,))."""

    # ---------------------------------------------------------------- attention and tokens
    def attention_forward(self, q: Array, k: Array, v: Array):
        """(out, probs): out = softmax(Q Kᵀ/√d) V; q, k, v, out (N, heads, T, d), probs (N, heads, T, T)."""

    def attention_backward(self, q: Array, k: Array, v: Array, probs: Array, dout: Array):
        """(dq, dk, dv) of attention_forward."""

    def split_heads(self, qkv: Array, heads: int):
        """(N, T, 3·D) -> (q, k, v), each (N, heads, T, D/heads)."""

    def split_heads_backward(self, dq: Array, dk: Array, dv: Array) -> Array:
        """(N, heads, T, d) ×3 -> (N, T, 3·heads·d)."""

    def merge_heads(self, x: Array) -> Array:
        """(N, heads, T, d) -> (N, T, heads·d)."""

    def merge_heads_backward(self, dy: Array, heads: int) -> Array:
        """(N, T, heads·d) -> (N, heads, T, d)."""

    def patchify(self, x: Array, patch: int) -> Array:
        """(N, C, H, W) -> (N, T, C·p·p): each p×p patch flattened, patches in reading order."""

    def patchify_backward(self, dpatches: Array, x_shape: tuple, patch: int) -> Array:
        """dx (x_shape) from (N, T, C·p·p); pixels in no whole patch get 0."""

    def add_tokens(self, tokens: Array, cls: Array, positions: Array) -> Array:
        """[CLS; tokens] + positions: tokens (N, T, D), cls (1, D), positions (T+1, D) -> (N, T+1, D)."""

    def add_tokens_backward(self, dy: Array):
        """(dtokens (N, T, D), dcls (1, D), dpositions (T+1, D))."""

    def take_token(self, x: Array, index: int = 0) -> Array:
        """(N, T, D) -> (N, D): one token (the CLS token for index 0)."""

    def take_token_backward(self, dy: Array, x_shape: tuple, index: int = 0) -> Array:
        """dx (x_shape), zero except at that token."""

    # ---------------------------------------------------------------- loss and optimizers
    def classification_loss(self, logits: Array, labels, kind: str = "ce", alpha=1.0, gamma=2.0):
        """(loss: float, dlogits (N, classes), correct: int) for cross-entropy or focal loss, from logits."""

    def sgd_update(self, param, grad, velocity, lr, momentum, weight_decay) -> None:
        """In place: v ← μ·v + (g + λ·θ); θ ← θ − η·v."""

    def adam_update(self, param, grad, m, v, lr, beta1, beta2, eps, weight_decay, step) -> None:
        """In place: Adam with bias correction; step counts from 1."""


def operations() -> list[str]:
    """The names of the protocol's ops, in the order written above."""
    return [name for name in Backend.__dict__ if not name.startswith("_") and callable(Backend.__dict__[name])]
