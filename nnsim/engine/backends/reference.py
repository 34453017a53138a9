"""The reference backend: every op of a training step in plain NumPy.

This file is the definition of truth. It is written to be read next to the lessons: each op is
the formula from the workshop, forward and backward side by side. The fast backends must give the
same numbers (tests check them against this one). It runs in float32 for training and in float64
for gradient checks: every op keeps the dtype of its inputs.
"""

from __future__ import annotations

import math

import numpy as np

from nnsim.engine import losses
from nnsim.engine.backends.rowmath import conv_output_size

Array = np.ndarray


class ReferenceBackend:
    """Every op of the Backend protocol (protocol.py), in NumPy."""

    name = "reference"

    # ------------------------------------------------------------------ arrays
    def asarray(self, array, dtype=None) -> Array:
        return np.ascontiguousarray(array, dtype=dtype)

    def to_numpy(self, array) -> np.ndarray:
        return np.asarray(array)

    def zeros_like(self, array: Array) -> Array:
        return np.zeros_like(array)

    def copy(self, array: Array) -> Array:
        return array.copy()

    def synchronize(self) -> None:
        """Wait for queued work to finish (GPU backends queue it; here every op has finished)."""

    # ------------------------------------------------------------------ matmul
    def matmul(self, a: Array, b: Array) -> Array:
        """(M,K)@(K,N) -> (M,N); batched (B,M,K)@(B,K,N) -> (B,M,N)."""
        return np.matmul(a, b)

    # ------------------------------------------------------------------ linear: y = x Wᵀ + b
    def linear_forward(self, x: Array, weight: Array, bias: Array | None) -> Array:
        """y = x Wᵀ + b for x (..., in), W (out, in), b (out,)."""
        y = self.matmul(x.reshape(-1, x.shape[-1]), weight.T).reshape(*x.shape[:-1], -1)
        return y if bias is None else y + bias

    def linear_backward(self, x: Array, weight: Array, dy: Array, has_bias: bool = True, input_grad: bool = True):
        """dx = dy W, dW = dyᵀ x, db = Σ dy (over every row). dx is None when not input_grad."""
        x2 = x.reshape(-1, x.shape[-1])
        dy2 = dy.reshape(-1, dy.shape[-1])
        dx = self.matmul(dy2, weight).reshape(x.shape) if input_grad else None
        dweight = self.matmul(dy2.T, x2)
        dbias = dy2.sum(axis=0) if has_bias else None
        return dx, dweight, dbias

    # ------------------------------------------------------------------ convolution
    def conv2d_forward(self, x: Array, w: Array, b: Array, stride: int = 1, padding: int = 0, relu: bool = False):
        """Y[n,co,h,w] = b[co] + Σ_ci Σ_m Σ_n K[co,ci,m,n] · X[n,ci,h·s+m,w·s+n], then ReLU if asked.

        The double sum over kernel offsets (m, n) is the loop; the sum over input channels is one
        matrix product per offset, on the whole batch at once.
        """
        n, c_in, height, width = x.shape
        c_out, _, kh, kw = w.shape
        h_out = conv_output_size(height, kh, stride, padding)
        w_out = conv_output_size(width, kw, stride, padding)
        xp = _pad(x, padding)
        y = np.zeros((n, h_out, w_out, c_out), dtype=x.dtype)
        for m in range(kh):
            for k in range(kw):
                window = xp[:, :, m : m + stride * h_out : stride, k : k + stride * w_out : stride]
                # (N,Ci,Ho,Wo) · (Co,Ci) summed over Ci -> (N,Ho,Wo,Co)
                y += np.tensordot(window, w[:, :, m, k], axes=([1], [1]))
        y = np.ascontiguousarray(y.transpose(0, 3, 1, 2)) + b[None, :, None, None]
        return np.maximum(y, 0) if relu else y

    def conv2d_backward(
        self,
        x: Array,
        w: Array,
        dy: Array,
        stride: int = 1,
        padding: int = 0,
        relu_output: Array | None = None,
        input_grad: bool = True,
    ):
        """Gradients of the convolution: (dx, dw, db), each the same shape as x, w and b.

        relu_output: the forward output when ReLU was fused in; the gradient passes where it is > 0.
        input_grad: False skips dx (None), for the first layer, whose input is the image.
        """
        if relu_output is not None:
            dy = dy * (relu_output > 0)
        c_out, c_in, kh, kw = w.shape
        h_out, w_out = dy.shape[2], dy.shape[3]
        xp = _pad(x, padding)
        dxp = np.zeros_like(xp)
        dw = np.zeros_like(w)
        for m in range(kh):
            for k in range(kw):
                rows = slice(m, m + stride * h_out, stride)
                cols = slice(k, k + stride * w_out, stride)
                window = xp[:, :, rows, cols]
                # dK[co,ci,m,k] = Σ_n,h,w dY[n,co,h,w] · X[n,ci,h·s+m,w·s+k]
                dw[:, :, m, k] = np.tensordot(dy, window, axes=([0, 2, 3], [0, 2, 3]))
                # dX[n,ci,h·s+m,w·s+k] += Σ_co dY[n,co,h,w] · K[co,ci,m,k]
                if input_grad:
                    dxp[:, :, rows, cols] += np.tensordot(dy, w[:, :, m, k], axes=([1], [0])).transpose(0, 3, 1, 2)
        db = dy.sum(axis=(0, 2, 3))
        if not input_grad:
            return None, dw, db
        dx = dxp[:, :, padding : padding + x.shape[2], padding : padding + x.shape[3]]
        return np.ascontiguousarray(dx), dw, db

    def conv_block_forward(self, x: Array, w: Array, b: Array, stride: int = 1, padding: int = 0, pool: int = 2):
        """The CNN's building block: MaxPool(ReLU(conv(x) + b)); returns (pooled, argmax)."""
        return self.maxpool2d_forward(self.conv2d_forward(x, w, b, stride, padding, relu=True), pool)

    def conv_block_backward(
        self,
        x: Array,
        w: Array,
        dpooled: Array,
        pooled: Array,
        argmax: Array,
        stride: int = 1,
        padding: int = 0,
        pool: int = 2,
        input_grad: bool = True,
    ):
        """(dx, dw, db) of the block. Only each window's maximum gets a gradient, and through the
        ReLU only where that maximum was > 0, so the pooled values are all the mask needs."""
        n, _, height, width = x.shape
        c_out, _, kh, kw = w.shape
        conv_shape = (
            n,
            c_out,
            conv_output_size(height, kh, stride, padding),
            conv_output_size(width, kw, stride, padding),
        )
        dy = self.maxpool2d_backward(dpooled * (pooled > 0), argmax, conv_shape, pool)
        return self.conv2d_backward(x, w, dy, stride, padding, input_grad=input_grad)

    # ------------------------------------------------------------------ pooling
    def maxpool2d_forward(self, x: Array, size: int):
        """Largest value in each size×size window (stride = size); returns (y, argmax)."""
        n, c, height, width = x.shape
        h_out, w_out = height // size, width // size
        windows = (
            x[:, :, : h_out * size, : w_out * size]
            .reshape(n, c, h_out, size, w_out, size)
            .transpose(0, 1, 2, 4, 3, 5)
            .reshape(n, c, h_out, w_out, size * size)
        )
        argmax = windows.argmax(axis=-1)
        y = np.take_along_axis(windows, argmax[..., None], axis=-1)[..., 0]
        return np.ascontiguousarray(y), argmax

    def maxpool2d_backward(self, dy: Array, argmax: Array, x_shape: tuple, size: int) -> Array:
        """The gradient flows only to the input that was the maximum of its window."""
        n, c, height, width = x_shape
        h_out, w_out = dy.shape[2], dy.shape[3]
        dwindows = np.zeros((n, c, h_out, w_out, size * size), dtype=dy.dtype)
        np.put_along_axis(dwindows, argmax[..., None], dy[..., None], axis=-1)
        dx = np.zeros(x_shape, dtype=dy.dtype)
        dx[:, :, : h_out * size, : w_out * size] = (
            dwindows.reshape(n, c, h_out, w_out, size, size)
            .transpose(0, 1, 2, 4, 3, 5)
            .reshape(n, c, h_out * size, w_out * size)
        )
        return dx

    # ------------------------------------------------------------------ activations
    def activation_forward(self, name: str, z: Array) -> Array:
        """f(z) for ReLU max(0,z), Sigmoid 1/(1+e^−z), Tanh, Linear z, GELU (tanh form)."""
        return ACTIVATIONS[name][0](z)

    def activation_backward(self, name: str, z: Array, dy: Array) -> Array:
        """dL/dz = dL/dy · f′(z)."""
        return dy * ACTIVATIONS[name][1](z)

    # ------------------------------------------------------------------ layer norm
    def layernorm_forward(self, x: Array, gamma: Array, beta: Array, eps: float = 1e-5):
        """y = (x − mean) / √(var + eps) · γ + β over the last axis; returns (y, xhat, rstd)."""
        mean = x.mean(axis=-1, keepdims=True)
        var = x.var(axis=-1, keepdims=True)
        rstd = 1.0 / np.sqrt(var + x.dtype.type(eps))
        xhat = (x - mean) * rstd
        return xhat * gamma + beta, xhat, rstd

    def layernorm_backward(self, dy: Array, xhat: Array, rstd: Array, gamma: Array):
        """Returns (dx, dgamma, dbeta)."""
        dxhat = dy * gamma
        dx = rstd * (dxhat - dxhat.mean(axis=-1, keepdims=True) - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True))
        axes = tuple(range(dy.ndim - 1))
        return dx, (dy * xhat).sum(axis=axes), dy.sum(axis=axes)

    # ------------------------------------------------------------------ attention
    def attention_forward(self, q: Array, k: Array, v: Array):
        """out = softmax(Q Kᵀ / √d) V for (N, heads, T, d); returns (out, probs)."""
        scale = q.dtype.type(1.0 / math.sqrt(q.shape[-1]))
        scores = self.matmul(q, np.swapaxes(k, -1, -2)) * scale
        probs = losses.softmax(scores)
        return self.matmul(probs, v), probs

    def attention_backward(self, q: Array, k: Array, v: Array, probs: Array, dout: Array):
        """Returns (dq, dk, dv) of softmax(Q Kᵀ / √d) V."""
        scale = q.dtype.type(1.0 / math.sqrt(q.shape[-1]))
        dv = self.matmul(np.swapaxes(probs, -1, -2), dout)
        dprobs = self.matmul(dout, np.swapaxes(v, -1, -2))
        # softmax backward: dS = P ⊙ (dP − Σ_j dP_j P_j)
        dscores = probs * (dprobs - (dprobs * probs).sum(axis=-1, keepdims=True)) * scale
        dq = self.matmul(dscores, k)
        dk = self.matmul(np.swapaxes(dscores, -1, -2), q)
        return dq, dk, dv

    def split_heads(self, qkv: Array, heads: int):
        """(N, T, 3·D) -> q, k, v each (N, heads, T, D/heads)."""
        n, t, three_d = qkv.shape
        d_head = three_d // (3 * heads)
        parts = qkv.reshape(n, t, 3, heads, d_head).transpose(2, 0, 3, 1, 4)
        return tuple(np.ascontiguousarray(p) for p in parts)

    def split_heads_backward(self, dq: Array, dk: Array, dv: Array) -> Array:
        n, heads, t, d_head = dq.shape
        stacked = np.stack([dq, dk, dv])  # (3, N, heads, T, d)
        return np.ascontiguousarray(stacked.transpose(1, 3, 0, 2, 4).reshape(n, t, 3 * heads * d_head))

    def merge_heads(self, x: Array) -> Array:
        """(N, heads, T, d) -> (N, T, heads·d)."""
        n, heads, t, d_head = x.shape
        return np.ascontiguousarray(x.transpose(0, 2, 1, 3).reshape(n, t, heads * d_head))

    def merge_heads_backward(self, dy: Array, heads: int) -> Array:
        n, t, d = dy.shape
        return np.ascontiguousarray(dy.reshape(n, t, heads, d // heads).transpose(0, 2, 1, 3))

    # ------------------------------------------------------------------ patches and tokens
    def patchify(self, x: Array, patch: int) -> Array:
        """(N, C, H, W) -> (N, T, C·p·p): each patch flattened, patches in reading order."""
        n, c, height, width = x.shape
        rows, cols = height // patch, width // patch
        x = x[:, :, : rows * patch, : cols * patch]
        patches = x.reshape(n, c, rows, patch, cols, patch).transpose(0, 2, 4, 1, 3, 5)
        return np.ascontiguousarray(patches.reshape(n, rows * cols, c * patch * patch))

    def patchify_backward(self, dpatches: Array, x_shape: tuple, patch: int) -> Array:
        n, c, height, width = x_shape
        rows, cols = height // patch, width // patch
        dx = np.zeros(x_shape, dtype=dpatches.dtype)
        dx[:, :, : rows * patch, : cols * patch] = (
            dpatches.reshape(n, rows, cols, c, patch, patch)
            .transpose(0, 3, 1, 4, 2, 5)
            .reshape(n, c, rows * patch, cols * patch)
        )
        return dx

    def add_tokens(self, tokens: Array, cls: Array, positions: Array) -> Array:
        """[CLS; z_1 … z_T] + p: prepend the class token, then add the learned positions."""
        n = tokens.shape[0]
        cls_rows = np.broadcast_to(cls, (n, 1, cls.shape[-1]))
        return np.concatenate([cls_rows, tokens], axis=1) + positions

    def add_tokens_backward(self, dy: Array):
        """Returns (dtokens, dcls, dpositions)."""
        return np.ascontiguousarray(dy[:, 1:]), dy[:, :1].sum(axis=0), dy.sum(axis=0)

    def take_token(self, x: Array, index: int = 0) -> Array:
        return np.ascontiguousarray(x[:, index])

    def take_token_backward(self, dy: Array, x_shape: tuple, index: int = 0) -> Array:
        dx = np.zeros(x_shape, dtype=dy.dtype)
        dx[:, index] = dy
        return dx

    # ------------------------------------------------------------------ elementwise
    def add(self, a: Array, b: Array) -> Array:
        return a + b

    def normalize(self, x: Array, mean: Array, std: Array) -> Array:
        """(x − mean) / std per channel."""
        return (x - mean[None, :, None, None]) / std[None, :, None, None]

    def reshape(self, x: Array, shape: tuple) -> Array:
        return np.reshape(x, shape)

    # ------------------------------------------------------------------ loss
    def classification_loss(self, logits: Array, labels, kind: str = "ce", alpha=1.0, gamma=2.0):
        """Loss from logits with its gradient and the count of correct predictions.

        Returns (loss: float, dlogits, correct: int) so that a device backend copies back only
        the two numbers.
        """
        logits_np = np.asarray(logits)
        labels_np = np.asarray(labels)
        if kind == "focal":
            loss, dlogits = losses.focal_loss(logits_np, labels_np, alpha=alpha, gamma=gamma)
        else:
            loss, dlogits = losses.cross_entropy(logits_np, labels_np)
        correct = int((logits_np.argmax(axis=-1) == labels_np).sum())
        return float(loss), dlogits.astype(logits_np.dtype, copy=False), correct

    # ------------------------------------------------------------------ optimizers
    def sgd_update(self, param, grad, velocity, lr, momentum, weight_decay):
        """v ← μ·v + (g + λ·θ);  θ ← θ − η·v  (in place, PyTorch's convention)."""
        g = grad + weight_decay * param if weight_decay else grad
        if momentum:
            velocity *= momentum
            velocity += g
            g = velocity
        param -= lr * g

    def adam_update(self, param, grad, m, v, lr, beta1, beta2, eps, weight_decay, step):
        """Adam with bias correction (in place)."""
        g = grad + weight_decay * param if weight_decay else grad
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * g * g
        m_hat = m / (1 - beta1**step)
        v_hat = v / (1 - beta2**step)
        param -= lr * m_hat / (np.sqrt(v_hat) + eps)


def _pad(x: Array, padding: int) -> Array:
    if padding == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))


# --------------------------------------------------------------------- activation formulas
_GELU_C = math.sqrt(2.0 / math.pi)


def _relu(z):
    return np.maximum(z, 0)


def _relu_grad(z):
    return (z > 0).astype(z.dtype)


def _sigmoid(z):
    # two branches so that exp never overflows
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def _sigmoid_grad(z):
    s = _sigmoid(z)
    return s * (1 - s)


def _tanh_grad(z):
    return 1 - np.tanh(z) ** 2


def _gelu(z):
    """GELU, tanh form: ½ z (1 + tanh(√(2/π)(z + 0.044715 z³)))."""
    return 0.5 * z * (1 + np.tanh(_GELU_C * (z + 0.044715 * z**3)))


def _gelu_grad(z):
    inner = _GELU_C * (z + 0.044715 * z**3)
    t = np.tanh(inner)
    return 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * _GELU_C * (1 + 3 * 0.044715 * z * z)


ACTIVATIONS = {
    "relu": (_relu, _relu_grad),
    "sigmoid": (_sigmoid, _sigmoid_grad),
    "tanh": (np.tanh, _tanh_grad),
    "linear": (lambda z: z.copy(), np.ones_like),
    "gelu": (_gelu, _gelu_grad),
}
