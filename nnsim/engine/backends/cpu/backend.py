"""The cpu backend's class: the kernel API (protocol.py) on Numba kernels, for float32 training.

Each method checks and lays out its arrays, allocates the outputs and calls a kernel of this
package; ops with no kernel of their own are inherited from the reference backend.
"""

from __future__ import annotations

import ctypes

import numba
import numpy as np

from nnsim.engine.backends.cpu import conv, warm_up
from nnsim.engine.backends.cpu.attention import _attention_backward, _attention_forward, _from_heads, _to_heads
from nnsim.engine.backends.cpu.jit import F32
from nnsim.engine.backends.cpu.matmul import gemm_nn, gemm_nt
from nnsim.engine.backends.cpu.pool import _maxpool_backward, _maxpool_forward
from nnsim.engine.backends.cpu.rows import (
    _adam_update,
    _classification_loss,
    _gelu,
    _gelu_backward,
    _layernorm_backward,
    _layernorm_forward,
    _normalize,
    _relu,
    _relu_backward,
    _sgd_update,
)
from nnsim.engine.backends.cpu.transpose import _t
from nnsim.engine.backends.reference import ReferenceBackend
from nnsim.engine.backends.rowmath import BIAS_COLS, adam_corrections, attention_scale


def _contiguous_f32(*arrays):
    """The arrays as C-contiguous float32 (copied only where they are not): the attention
    kernels index them flat."""
    return tuple(np.ascontiguousarray(a, dtype=F32) for a in arrays)


def _keep_freed_memory() -> None:
    """Ask glibc to keep freed blocks of up to 32 MB for reuse instead of unmapping them.

    A training step allocates the same few multi-megabyte arrays every time. By default glibc
    maps each one fresh from the kernel and unmaps it when freed, so every step pays a page fault
    per 4 KB on first touch: here that was a third of a CNN step. Reusing the heap removes it (the
    process keeps its peak memory, as every training framework's own allocator does).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(_M_TRIM_THRESHOLD, 512 << 20)
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


# dX = dY·W as sums of W's rows (gemm_nn) beats dot products with Wᵀ's rows (gemm_nt, after a
# transpose) from 256 input features, and for any layer with at least twice as many inputs as
# outputs: there the dot products run over a few outputs only (10 for a classifier head: 3× slower).
NN_INPUT_GRAD_FROM = 256
# dW = dYᵀ·X as sums of rows adds every row of the batch into the same float32 number in turn:
# over the ViT's 4,352 tokens that is a long running sum, and rounding builds up (a conv layer's
# weight gradient summed that way over 6,272 rows cost the full-MNIST CNN 0.8 points of accuracy).
NN_WEIGHT_GRAD_ROWS = 512


class CpuBackend(ReferenceBackend):
    """Numba kernels for the heavy ops; the light ones are inherited from the reference."""

    name = "cpu"

    def __init__(self):
        _keep_freed_memory()

    # Kernels no built-in model uses (a plain convolution, a separate max-pool: the models use
    # the fused conv block); they compile on first use instead, unless everything is asked for.
    LAZY_KERNELS = ("convolution forward", "convolution backward", "max-pool")

    # Compiled by a second process while this one compiles the rest, when the cache is cold:
    # Numba compiles on one core, and the conv block alone takes about half of it. The optimizers,
    # layer norm and the attention heads with it even out the two processes (this process keeps
    # the products, activations, losses and attention): 27.6–29.0 s in all against 29.7–30.3 s
    # with the optimizers only, three alternated pairs on a slow day.
    COMPILED_ALONGSIDE = ("conv block", "optimizers", "layer norm", "attention heads", *LAZY_KERNELS)
    # Numba's index files of their source files start so (conv.py, conv_sample.py): with none in
    # the cache folder, the second process starts before this one compiles its first kernel
    ALONGSIDE_FILES = "conv"
    COLD_FIRST_STEP_S = 1.0  # a first step this slow compiled (from the cache it loads in 0.1 s)

    def warm_up(self, report=None, everything: bool = False) -> None:
        """Compile the kernels the models use (or load them from Numba's cache) by running each
        once on tiny arrays; with `everything`, LAZY_KERNELS too.

        report(name, done, total) is called before each kernel, for a progress display, and
        again every tenth of a second while waiting on kernels compiled alongside: the first run
        on a machine compiles for 20 s or so, later runs load in well under a second. When the
        first kernel has to be compiled, COMPILED_ALONGSIDE are compiled by a second Python
        process into Numba's cache at the same time, and loaded from there at the end.
        """
        warm_up.warm_up(self, report, everything)

    def use_threads(self, count: int) -> None:
        """Run this thread's parallel kernels on `count` threads (at most NUMBA_NUM_THREADS): a
        training sharing the machine with others takes its share (see backends/sharing.py)."""
        count = max(1, min(count, numba.config.NUMBA_NUM_THREADS))
        if numba.get_num_threads() != count:  # (a setting of the calling thread)
            numba.set_num_threads(count)

    def compile_steps(self, names) -> None:
        """Run the warm-up steps of these names (what the helper process of warm_up does)."""
        for name, run in self._warm_up_steps():
            if name in names:
                run()

    def _warm_up_steps(self):
        return warm_up.warm_up_steps(self)

    def asarray(self, array, dtype=None):
        return np.ascontiguousarray(array, dtype=dtype if dtype is not None else _float32_if_float(array))

    # matmul -----------------------------------------------------------------
    def matmul(self, a, b):
        return gemm_nt(a, _t(b))

    def linear_forward(self, x, weight, bias):
        x2 = x.reshape(-1, x.shape[-1])
        if bias is None:
            y = gemm_nt(x2, weight)
        else:
            y = gemm_nt(x2, weight, bias, BIAS_COLS)
        return y.reshape(*x.shape[:-1], weight.shape[0])

    def linear_backward(self, x, weight, dy, has_bias=True, input_grad=True):
        x2 = x.reshape(-1, x.shape[-1])
        dy2 = np.ascontiguousarray(dy.reshape(-1, dy.shape[-1]))
        dx = None
        if input_grad:  # wide inputs: sums of weight rows; narrow ones: dot products with Wᵀ's rows
            features, outputs = x.shape[-1], dy.shape[-1]
            wide = features >= NN_INPUT_GRAD_FROM or features >= 2 * outputs
            dx = gemm_nn(dy2, weight) if wide else gemm_nt(dy2, _t(weight))
            dx = dx.reshape(x.shape)
        if x2.shape[0] > NN_WEIGHT_GRAD_ROWS:  # tall: dot products, whose 16 lanes keep float32 sums short
            dweight = gemm_nt(_t(dy2), _t(x2))
        else:
            dweight = gemm_nn(dy2, x2, trans_a=True)
        dbias = dy2.sum(axis=0) if has_bias else None
        return dx, dweight, dbias

    # convolution -------------------------------------------------------------
    def conv2d_forward(self, x, w, b, stride=1, padding=0, relu=False):
        return conv.conv2d_forward(x, w, b, stride, padding, relu)

    def conv2d_backward(self, x, w, dy, stride=1, padding=0, relu_output=None, input_grad=True):
        return conv.conv2d_backward(x, w, dy, stride, padding, relu_output, input_grad)

    def conv_block_forward(self, x, w, b, stride=1, padding=0, pool=2):
        return conv.conv_block_forward(x, w, b, stride, padding, pool)

    def conv_block_backward(self, x, w, dpooled, pooled, argmax, stride=1, padding=0, pool=2, input_grad=True):
        return conv.conv_block_backward(x, w, dpooled, pooled, argmax, stride, padding, pool, input_grad)

    # pooling -----------------------------------------------------------------
    def maxpool2d_forward(self, x, size):
        n, c, height, width = x.shape
        y = np.empty((n, c, height // size, width // size), dtype=F32)
        argmax = np.empty(y.shape, dtype=np.int8)
        _maxpool_forward(np.ascontiguousarray(x), size, y, argmax)
        return y, argmax

    def maxpool2d_backward(self, dy, argmax, x_shape, size):
        dx = np.empty(x_shape, dtype=F32)
        _maxpool_backward(np.ascontiguousarray(dy), argmax, size, dx)
        return dx

    # activations ---------------------------------------------------------------
    def activation_forward(self, name, z):
        if name not in ("gelu", "relu"):
            return super().activation_forward(name, z)
        z = np.ascontiguousarray(z, dtype=F32)
        y = np.empty_like(z)
        (_gelu if name == "gelu" else _relu)(z.reshape(-1), y.reshape(-1))
        return y

    def activation_backward(self, name, z, dy):
        dz = np.empty_like(z)
        dy_flat = np.ascontiguousarray(dy).reshape(-1)
        if name == "gelu":
            _gelu_backward(np.ascontiguousarray(z, dtype=F32).reshape(-1), dy_flat, dz.reshape(-1))
        elif name == "relu":
            _relu_backward(z.reshape(-1), dy_flat, dz.reshape(-1))
        else:
            return super().activation_backward(name, z, dy)
        return dz

    # layer norm ----------------------------------------------------------------
    def layernorm_forward(self, x, gamma, beta, eps=1e-5):
        x2 = np.ascontiguousarray(x).reshape(-1, x.shape[-1])
        y, xhat = np.empty_like(x2), np.empty_like(x2)
        rstd = np.empty((x2.shape[0], 1), dtype=F32)
        _layernorm_forward(x2, gamma, beta, F32(eps), y, xhat, rstd)
        return y.reshape(x.shape), xhat.reshape(x.shape), rstd.reshape(*x.shape[:-1], 1)

    def layernorm_backward(self, dy, xhat, rstd, gamma):
        features = dy.shape[-1]
        dy2 = np.ascontiguousarray(dy).reshape(-1, features)
        dx = np.empty_like(dy2)
        _layernorm_backward(dy2, xhat.reshape(-1, features), rstd.reshape(-1, 1), gamma, dx)
        return dx.reshape(dy.shape), (dy2 * xhat.reshape(-1, features)).sum(axis=0), dy2.sum(axis=0)

    # attention -----------------------------------------------------------------
    def attention_forward(self, q, k, v):
        q, k, v = _contiguous_f32(q, k, v)
        n, heads, tokens, d = q.shape
        out = np.empty(q.shape, dtype=F32)
        probs = np.empty((n, heads, tokens, tokens), dtype=F32)
        _attention_forward(q, k, v, attention_scale(d), out, probs)
        return out, probs

    def attention_backward(self, q, k, v, probs, dout):
        q, k, v, probs, dout = _contiguous_f32(q, k, v, probs, dout)
        dq, dk, dv = (np.empty(q.shape, dtype=F32) for _ in range(3))
        _attention_backward(q, k, v, probs, dout, attention_scale(q.shape[-1]), dq, dk, dv)
        return dq, dk, dv

    def split_heads(self, qkv, heads):
        n, tokens, three_d = qkv.shape
        shape = (n, heads, tokens, three_d // (3 * heads))
        q, k, v = (np.empty(shape, dtype=F32) for _ in range(3))
        _to_heads(np.ascontiguousarray(qkv), heads, 3, q, k, v)
        return q, k, v

    def split_heads_backward(self, dq, dk, dv):
        n, heads, tokens, d_head = dq.shape
        dqkv = np.empty((n, tokens, 3 * heads * d_head), dtype=F32)
        _from_heads(*(np.ascontiguousarray(g, dtype=F32) for g in (dq, dk, dv)), 3, dqkv)
        return dqkv

    def merge_heads(self, x):
        n, heads, tokens, d_head = x.shape
        out = np.empty((n, tokens, heads * d_head), dtype=F32)
        x = np.ascontiguousarray(x)
        _from_heads(x, x, x, 1, out)
        return out

    def merge_heads_backward(self, dy, heads):
        n, tokens, dim = dy.shape
        out = np.empty((n, heads, tokens, dim // heads), dtype=F32)
        _to_heads(np.ascontiguousarray(dy), heads, 1, out, out, out)
        return out

    # loss, input ---------------------------------------------------------------
    def classification_loss(self, logits, labels, kind="ce", alpha=1.0, gamma=2.0):
        """(loss, dlogits, correct) in one pass over the rows: for a small batch the NumPy
        version's dozen array operations cost more than the arithmetic."""
        logits = np.ascontiguousarray(logits, dtype=F32)
        labels = np.asarray(labels)
        if logits.ndim != 2 or labels.shape != (logits.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
            return super().classification_loss(logits, labels, kind, alpha, gamma)  # its clear errors
        batch, classes = logits.shape
        weights = np.atleast_1d(np.asarray(alpha, dtype=F32))
        if (weights.size > 1 and weights.shape != (classes,)) or (weights < 0).any() or gamma < 0 or batch == 0:
            return super().classification_loss(logits, labels, kind, alpha, gamma)
        dlogits = np.empty_like(logits)
        row_loss, row_correct = np.empty(batch, dtype=F32), np.empty(batch, dtype=np.int64)
        labels = labels.astype(np.int64, copy=False)
        focal = kind == "focal"
        loss, correct = _classification_loss(logits, labels, focal, weights, F32(gamma), dlogits, row_loss, row_correct)
        if correct < 0:
            return super().classification_loss(logits, labels, kind, alpha, gamma)  # raises: label out of range
        return float(loss), dlogits, int(correct)

    def normalize(self, x, mean, std):
        x = np.ascontiguousarray(x, dtype=F32)
        if x.ndim != 4 or np.ndim(mean) != 1 or np.ndim(std) != 1 or len(mean) != x.shape[1] or len(std) != x.shape[1]:
            return super().normalize(x, mean, std)
        out = np.empty_like(x)
        n, c = x.shape[:2]
        _normalize(x.reshape(n, c, -1), np.asarray(mean, dtype=F32), np.asarray(std, dtype=F32), out.reshape(n, c, -1))
        return out

    # optimizers ----------------------------------------------------------------
    def sgd_update(self, param, grad, velocity, lr, momentum, weight_decay):
        _sgd_update(
            param.reshape(-1),
            np.ascontiguousarray(grad).reshape(-1),
            velocity.reshape(-1),
            F32(lr),
            F32(momentum),
            F32(weight_decay),
        )

    def adam_update(self, param, grad, m, v, lr, beta1, beta2, eps, weight_decay, step):
        _adam_update(
            param.reshape(-1),
            np.ascontiguousarray(grad).reshape(-1),
            m.reshape(-1),
            v.reshape(-1),
            F32(lr),
            F32(beta1),
            F32(beta2),
            F32(eps),
            F32(weight_decay),
            *adam_corrections(beta1, beta2, step),
        )


def _float32_if_float(array):
    dtype = getattr(array, "dtype", None)
    if dtype is not None and np.issubdtype(dtype, np.floating):
        return F32
    return None
