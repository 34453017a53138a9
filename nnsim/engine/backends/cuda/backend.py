"""The cuda backend's class: the kernel API (protocol.py) on Numba CUDA kernels, arrays on the GPU.

Each method allocates its outputs on the device and launches kernels of this package on grids
laid out as grid.py says.
"""

from __future__ import annotations

import numpy as np
from numba import cuda

from nnsim.engine.backends.cuda.attention import (
    MAX_TOKENS,
    _add_tokens,
    _attention_backward,
    _attention_forward,
    _copy_tokens,
    _merge_heads,
    _patchify,
    _split_heads,
    _take_token,
    _token_sums,
)
from nnsim.engine.backends.cuda.conv import (
    _channel_sums,
    _conv_forward,
    _conv_input_grad,
    _conv_weight_grad,
    _maxpool_backward,
    _maxpool_forward,
    _relu_mask,
    _sum_parts,
)
from nnsim.engine.backends.cuda.grid import (
    F32,
    THREADS,
    TILE,
    _blocks,
    _flat,
    _on_device,
    _resolve,
    _tiles,
    _warp_multiple,
    allocate_shared_arrays_under_a_lock,
    simulated,
)
from nnsim.engine.backends.cuda.matmul import _column_sums, _gemm_nt, _product_column_sums, _transpose
from nnsim.engine.backends.cuda.rows import (
    ACTIVATIONS,
    _activation_backward,
    _activation_forward,
    _adam,
    _add,
    _copy,
    _fill,
    _layernorm_backward,
    _layernorm_forward,
    _loss_rows,
    _normalize,
    _sgd,
    _sum_two,
)
from nnsim.engine.backends.rowmath import BIAS_COLS, BIAS_NONE, adam_corrections, attention_scale, conv_output_size
from nnsim.errors import NnsimError


class CudaBackend:
    """Every op of the Backend protocol (protocol.py), on the GPU."""

    name = "cuda"

    def __init__(self):
        self.simulated = simulated()  # Numba's CUDA simulator: for tests, never picked by "auto"
        if self.simulated:
            allocate_shared_arrays_under_a_lock()
        self._no_bias = cuda.to_device(np.zeros(1, dtype=F32))

    @staticmethod
    def is_usable() -> None:
        """Raises NnsimError unless a CUDA GPU (or, explicitly, the simulator) can run kernels."""
        try:
            available = cuda.is_available()
        except Exception as error:  # the driver's own errors come in many types
            raise NnsimError(f"the cuda backend cannot start: {error}") from None
        if not available:
            raise NnsimError("the cuda backend needs an NVIDIA GPU with a working driver; none was found")
        try:  # a GPU is there: can kernels be compiled and run on it?
            probe = cuda.device_array(1, dtype=F32)
            _fill[1, 32](probe, 1)
            cuda.synchronize()
        except Exception as error:
            raise NnsimError(f"the cuda backend found a GPU but cannot run kernels on it: {error}") from None

    # arrays ------------------------------------------------------------------
    def asarray(self, array, dtype=None):
        if _on_device(array):
            return array
        host = np.asarray(array)
        if dtype is None and np.issubdtype(host.dtype, np.floating):
            dtype = F32
        return cuda.to_device(np.ascontiguousarray(host, dtype=dtype))

    def to_numpy(self, array) -> np.ndarray:
        return array.copy_to_host() if _on_device(array) else np.asarray(array)

    def zeros_like(self, array):
        out = cuda.device_array(array.shape, dtype=array.dtype)
        flat = _flat(out)
        _fill[_blocks(flat.size), THREADS](flat, 0)
        return out

    def copy(self, array):
        out = cuda.device_array(array.shape, dtype=array.dtype)
        _copy[_blocks(array.size), THREADS](_flat(array), _flat(out))
        return out

    def synchronize(self) -> None:
        cuda.synchronize()

    def reshape(self, x, shape):
        return x.reshape(*_resolve(shape, x.size))

    def add(self, a, b):
        out = cuda.device_array(a.shape, dtype=F32)
        _add[_blocks(out.size), THREADS](_flat(a), _flat(b), _flat(out))
        return out

    def normalize(self, x, mean, std):
        out = cuda.device_array(x.shape, dtype=F32)
        _normalize[_blocks(out.size), THREADS](_flat(x), mean, std, x.shape[2] * x.shape[3], _flat(out))
        return out

    # matmul ------------------------------------------------------------------
    def _gemm(self, a, b, bias=None, bias_mode=BIAS_NONE, relu=False):
        """A·Bᵀ for (M,K)·(N,K) or (Z,M,K)·(Z,N,K) device arrays (either Z may be 1)."""
        squeeze = len(a.shape) == 2 and len(b.shape) == 2
        a3 = a.reshape(1, *a.shape) if len(a.shape) == 2 else a
        b3 = b.reshape(1, *b.shape) if len(b.shape) == 2 else b
        z = max(a3.shape[0], b3.shape[0])
        c = cuda.device_array((z, a3.shape[1], b3.shape[1]), dtype=F32)
        grid = (_tiles(b3.shape[1]), _tiles(a3.shape[1]), z)
        _gemm_nt[grid, (TILE, TILE)](a3, b3, c, bias if bias is not None else self._no_bias, bias_mode, relu)
        return c.reshape(c.shape[1], c.shape[2]) if squeeze else c

    def _t(self, x):
        """Transpose of the last two axes (a new contiguous array)."""
        shape = tuple(x.shape)
        x3 = x.reshape(x.size // (shape[-2] * shape[-1]), shape[-2], shape[-1])
        out = cuda.device_array((x3.shape[0], x3.shape[2], x3.shape[1]), dtype=F32)
        _transpose[(_tiles(x3.shape[2]), _tiles(x3.shape[1]), x3.shape[0]), (TILE, TILE)](x3, out)
        return out.reshape(*shape[:-2], shape[-1], shape[-2])

    def matmul(self, a, b):
        a, b = self.asarray(a), self.asarray(b)
        return self._gemm(a, self._t(b))

    def linear_forward(self, x, weight, bias):
        shape = tuple(x.shape)
        x2 = x.reshape(x.size // shape[-1], shape[-1])
        y = self._gemm(x2, weight, bias, BIAS_COLS if bias is not None else BIAS_NONE)
        return y.reshape(*shape[:-1], weight.shape[0])

    def linear_backward(self, x, weight, dy, has_bias=True, input_grad=True):
        shape, out = tuple(x.shape), weight.shape[0]
        x2 = x.reshape(x.size // shape[-1], shape[-1])
        dy2 = dy.reshape(dy.size // out, out)
        dx = self._gemm(dy2, self._t(weight)).reshape(*shape) if input_grad else None
        dweight = self._gemm(self._t(dy2), self._t(x2))
        dbias = None
        if has_bias:
            dbias = cuda.device_array(dy2.shape[1], dtype=F32)
            _column_sums[_blocks(dy2.shape[1]), THREADS](dy2, dbias)
        return dx, dweight, dbias

    # convolution ---------------------------------------------------------------
    def conv2d_forward(self, x, w, b, stride=1, padding=0, relu=False):
        n, _, height, width = x.shape
        c_out, c_in, kh, kw = w.shape
        h_out = conv_output_size(height, kh, stride, padding)
        w_out = conv_output_size(width, kw, stride, padding)
        y = cuda.device_array((n, c_out, h_out, w_out), dtype=F32)
        grid = (_tiles(h_out * w_out), _tiles(c_out), n)
        _conv_forward[grid, (TILE, TILE)](x, w.reshape(c_out, c_in * kh * kw), b, stride, padding, kh, kw, relu, y)
        return y

    def conv2d_backward(self, x, w, dy, stride=1, padding=0, relu_output=None, input_grad=True):
        if relu_output is not None:
            masked = cuda.device_array(dy.shape, dtype=F32)
            _relu_mask[_blocks(masked.size), THREADS](_flat(dy), _flat(relu_output), _flat(masked))
            dy = masked
        c_out, c_in, kh, kw = w.shape
        k_size = c_in * kh * kw
        rows = dy.shape[0] * dy.shape[2] * dy.shape[3]
        shares = max(1, min(64, rows // 256))
        parts = cuda.device_array((shares, c_out, k_size), dtype=F32)
        _conv_weight_grad[(_tiles(k_size), _tiles(c_out), shares), (TILE, TILE)](x, dy, stride, padding, kh, kw, parts)
        dw = cuda.device_array(w.shape, dtype=F32)
        _sum_parts[_blocks(dw.size), THREADS](parts.reshape(shares, c_out * k_size), _flat(dw))
        db = cuda.device_array(c_out, dtype=F32)
        _channel_sums[_blocks(c_out), THREADS](dy, db)
        dx = None
        if input_grad:
            dx = cuda.device_array(x.shape, dtype=F32)
            _conv_input_grad[_blocks(dx.size), THREADS](dy, w, stride, padding, dx)
        return dx, dw, db

    def conv_block_forward(self, x, w, b, stride=1, padding=0, pool=2):
        return self.maxpool2d_forward(self.conv2d_forward(x, w, b, stride, padding, relu=True), pool)

    def conv_block_backward(self, x, w, dpooled, pooled, argmax, stride=1, padding=0, pool=2, input_grad=True):
        n, _, height, width = x.shape
        c_out, _, kh, kw = w.shape
        shape = (n, c_out, conv_output_size(height, kh, stride, padding), conv_output_size(width, kw, stride, padding))
        dy = cuda.device_array(shape, dtype=F32)
        _maxpool_backward[_blocks(dy.size), THREADS](dpooled, argmax, pooled, True, pool, dy)
        return self.conv2d_backward(x, w, dy, stride, padding, input_grad=input_grad)

    # pooling -------------------------------------------------------------------
    def maxpool2d_forward(self, x, size):
        n, c, height, width = x.shape
        y = cuda.device_array((n, c, height // size, width // size), dtype=F32)
        argmax = cuda.device_array(y.shape, dtype=np.int8)
        _maxpool_forward[_blocks(y.size), THREADS](x, size, y, argmax)
        return y, argmax

    def maxpool2d_backward(self, dy, argmax, x_shape, size):
        dx = cuda.device_array(x_shape, dtype=F32)
        _maxpool_backward[_blocks(dx.size), THREADS](dy, argmax, dy, False, size, dx)
        return dx

    # activations ---------------------------------------------------------------
    def activation_forward(self, name, z):
        y = cuda.device_array(z.shape, dtype=F32)
        _activation_forward[_blocks(z.size), THREADS](ACTIVATIONS[name], _flat(z), _flat(y))
        return y

    def activation_backward(self, name, z, dy):
        dz = cuda.device_array(z.shape, dtype=F32)
        _activation_backward[_blocks(z.size), THREADS](ACTIVATIONS[name], _flat(z), _flat(dy), _flat(dz))
        return dz

    # layer norm ----------------------------------------------------------------
    def layernorm_forward(self, x, gamma, beta, eps=1e-5):
        shape = tuple(x.shape)
        x2 = x.reshape(x.size // shape[-1], shape[-1])
        y, xhat = (cuda.device_array(x2.shape, dtype=F32) for _ in range(2))
        rstd = cuda.device_array((x2.shape[0], 1), dtype=F32)
        _layernorm_forward[_blocks(x2.shape[0]), THREADS](x2, gamma, beta, F32(eps), y, xhat, rstd)
        return y.reshape(*shape), xhat.reshape(*shape), rstd.reshape(*shape[:-1], 1)

    def layernorm_backward(self, dy, xhat, rstd, gamma):
        shape = tuple(dy.shape)
        features = shape[-1]
        dy2, xhat2 = dy.reshape(dy.size // features, features), xhat.reshape(dy.size // features, features)
        dx = cuda.device_array(dy2.shape, dtype=F32)
        _layernorm_backward[_blocks(dy2.shape[0]), THREADS](dy2, xhat2, rstd.reshape(dy2.shape[0], 1), gamma, dx)
        dgamma, dbeta = (cuda.device_array(features, dtype=F32) for _ in range(2))
        _product_column_sums[_blocks(features), THREADS](dy2, xhat2, dgamma)
        _column_sums[_blocks(features), THREADS](dy2, dbeta)
        return dx.reshape(*shape), dgamma, dbeta

    # attention -----------------------------------------------------------------
    def attention_forward(self, q, k, v):
        n, heads, tokens, d = q.shape
        if tokens > MAX_TOKENS:
            raise NnsimError(f"the cuda attention kernel handles up to {MAX_TOKENS} tokens, got {tokens}")
        out = cuda.device_array(q.shape, dtype=F32)
        probs = cuda.device_array((n, heads, tokens, tokens), dtype=F32)
        _attention_forward[(n, heads), _warp_multiple(tokens)](q, k, v, attention_scale(d), out, probs)
        return out, probs

    def attention_backward(self, q, k, v, probs, dout):
        n, heads, tokens, d = q.shape
        dq, dk, dv = (cuda.device_array(q.shape, dtype=F32) for _ in range(3))
        dscores = cuda.device_array(probs.shape, dtype=F32)
        _attention_backward[(n, heads), _warp_multiple(tokens)](
            q, k, v, probs, dout, attention_scale(d), dscores, dq, dk, dv
        )
        return dq, dk, dv

    def split_heads(self, qkv, heads):
        n, tokens, three_d = qkv.shape
        q, k, v = (cuda.device_array((n, heads, tokens, three_d // (3 * heads)), dtype=F32) for _ in range(3))
        _split_heads[_blocks(q.size), THREADS](qkv, heads, q, k, v, False)
        return q, k, v

    def split_heads_backward(self, dq, dk, dv):
        n, heads, tokens, d_head = dq.shape
        dqkv = cuda.device_array((n, tokens, 3 * heads * d_head), dtype=F32)
        _split_heads[_blocks(dq.size), THREADS](dqkv, heads, dq, dk, dv, True)
        return dqkv

    def merge_heads(self, x):
        n, heads, tokens, d_head = x.shape
        out = cuda.device_array((n, tokens, heads * d_head), dtype=F32)
        _merge_heads[_blocks(x.size), THREADS](x, out, False)
        return out

    def merge_heads_backward(self, dy, heads):
        n, tokens, dim = dy.shape
        out = cuda.device_array((n, heads, tokens, dim // heads), dtype=F32)
        _merge_heads[_blocks(out.size), THREADS](out, dy, True)
        return out

    # patches and tokens --------------------------------------------------------
    def patchify(self, x, patch):
        n, c, height, width = x.shape
        patches = cuda.device_array((n, (height // patch) * (width // patch), c * patch * patch), dtype=F32)
        _patchify[_blocks(x.size), THREADS](x, patch, patches, False)
        return patches

    def patchify_backward(self, dpatches, x_shape, patch):
        dx = cuda.device_array(x_shape, dtype=F32)
        _patchify[_blocks(dx.size), THREADS](dx, patch, dpatches, True)
        return dx

    def add_tokens(self, tokens, cls, positions):
        n, count, dim = tokens.shape
        out = cuda.device_array((n, count + 1, dim), dtype=F32)
        _add_tokens[_blocks(out.size), THREADS](tokens, cls, positions, out)
        return out

    def add_tokens_backward(self, dy):
        n, count, dim = dy.shape
        dtokens = cuda.device_array((n, count - 1, dim), dtype=F32)
        _copy_tokens[_blocks(dtokens.size), THREADS](dy, dtokens)
        dpositions = cuda.device_array((count, dim), dtype=F32)
        _token_sums[_blocks(dpositions.size), THREADS](dy, dpositions)
        dcls = cuda.device_array((1, dim), dtype=F32)
        _copy[_blocks(dim), THREADS](dpositions[0], _flat(dcls))  # Σ_n dy[n, 0] is row 0 of it
        return dtokens, dcls, dpositions

    def take_token(self, x, index=0):
        out = cuda.device_array((x.shape[0], x.shape[2]), dtype=F32)
        _take_token[_blocks(x.size), THREADS](x, index, out, False)
        return out

    def take_token_backward(self, dy, x_shape, index=0):
        dx = cuda.device_array(x_shape, dtype=F32)
        _take_token[_blocks(dx.size), THREADS](dx, index, dy, True)
        return dx

    # loss ----------------------------------------------------------------------
    def classification_loss(self, logits, labels, kind="ce", alpha=1.0, gamma=2.0):
        """(loss, dlogits, correct): only the two numbers come back to the host."""
        batch, classes = logits.shape
        labels = self.asarray(np.asarray(labels, dtype=np.int64)) if not _on_device(labels) else labels
        alpha_host = np.atleast_1d(np.asarray(alpha, dtype=F32))
        if alpha_host.size > 1 and alpha_host.size != classes:
            raise NnsimError(f"alpha needs one weight per class ({classes}), got {alpha_host.size}")
        if gamma < 0:
            raise NnsimError(f"focal loss needs gamma >= 0, got {gamma}")
        dlogits = cuda.device_array((batch, classes), dtype=F32)
        row_loss, row_correct = (cuda.device_array(batch, dtype=F32) for _ in range(2))
        _loss_rows[_blocks(batch), THREADS](
            logits, labels, kind == "focal", cuda.to_device(alpha_host), F32(gamma), dlogits, row_loss, row_correct
        )
        sums = cuda.device_array(2, dtype=F32)
        _sum_two[1, THREADS](row_loss, row_correct, sums)
        total, correct = sums.copy_to_host()
        if correct < 0:
            raise NnsimError(f"labels must lie in 0..{classes - 1}")
        return float(total) / batch, dlogits, int(round(float(correct)))

    # optimizers ----------------------------------------------------------------
    def sgd_update(self, param, grad, velocity, lr, momentum, weight_decay):
        flat = _flat(param)
        _sgd[_blocks(flat.size), THREADS](flat, _flat(grad), _flat(velocity), F32(lr), F32(momentum), F32(weight_decay))

    def adam_update(self, param, grad, m, v, lr, beta1, beta2, eps, weight_decay, step):
        flat = _flat(param)
        _adam[_blocks(flat.size), THREADS](
            flat,
            _flat(grad),
            _flat(m),
            _flat(v),
            F32(lr),
            F32(beta1),
            F32(beta2),
            F32(eps),
            F32(weight_decay),
            *adam_corrections(beta1, beta2, step),
        )
