"""Kernels with one thread per number or per row: fills and copies, activations, the input's
normalisation, the loss, the optimizer updates and layer norm; their formulas are rowmath.py's,
compiled as device functions.
"""

from __future__ import annotations

import math

from numba import cuda

from nnsim.engine.backends import rowmath
from nnsim.engine.backends.cuda.grid import F32, THREADS

ACTIVATIONS = {"relu": 0, "sigmoid": 1, "tanh": 2, "linear": 3, "gelu": 4}  # the kernels' codes
_loss_row = cuda.jit(device=True)(rowmath.loss_row)
_gelu_inner = cuda.jit(device=True)(rowmath.gelu_inner)
_gelu_from_tanh = cuda.jit(device=True)(rowmath.gelu_from_tanh)
_gelu_slope_from_tanh = cuda.jit(device=True)(rowmath.gelu_slope_from_tanh)
_layernorm_row = cuda.jit(device=True)(rowmath.layernorm_row)
_layernorm_backward_row = cuda.jit(device=True)(rowmath.layernorm_backward_row)
_sgd_one = cuda.jit(device=True)(rowmath.sgd_one)
_adam_one = cuda.jit(device=True)(rowmath.adam_one)


# ----------------------------------------------------------------------------------- elementwise
@cuda.jit
def _fill(x, value):
    i = cuda.grid(1)
    if i < x.size:
        x[i] = value


@cuda.jit
def _copy(src, dst):
    i = cuda.grid(1)
    if i < src.size:
        dst[i] = src[i]


@cuda.jit
def _add(a, b, out):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = a[i] + b[i]


@cuda.jit(device=True)
def _activate(kind, z):
    if kind == 0:
        return z if z > 0 else F32(0.0)
    if kind == 1:
        return F32(1.0) / (F32(1.0) + math.exp(-z)) if z >= 0 else math.exp(z) / (F32(1.0) + math.exp(z))
    if kind == 2:
        return math.tanh(z)
    if kind == 3:
        return z
    return _gelu_from_tanh(z, math.tanh(_gelu_inner(z)))


@cuda.jit(device=True)
def _slope(kind, z):
    if kind == 0:
        return F32(1.0) if z > 0 else F32(0.0)
    if kind == 1:
        s = _activate(1, z)
        return s * (F32(1.0) - s)
    if kind == 2:
        t = math.tanh(z)
        return F32(1.0) - t * t
    if kind == 3:
        return F32(1.0)
    return _gelu_slope_from_tanh(z, math.tanh(_gelu_inner(z)))


@cuda.jit
def _activation_forward(kind, z, y):
    i = cuda.grid(1)
    if i < z.size:
        y[i] = _activate(kind, z[i])


@cuda.jit
def _activation_backward(kind, z, dy, dz):
    i = cuda.grid(1)
    if i < z.size:
        dz[i] = dy[i] * _slope(kind, z[i])


@cuda.jit
def _normalize(x, mean, std, plane, out):
    """(x − mean) / std per channel; x and out flat views of (N, C, H, W), plane = H·W."""
    i = cuda.grid(1)
    if i < out.size:
        c = (i // plane) % mean.size
        out[i] = (x[i] - mean[c]) / std[c]


# ----------------------------------------------------------------------------------- loss
@cuda.jit
def _loss_rows(logits, labels, focal, alpha, gamma, dlogits, row_loss, row_correct):
    """Per row: softmax, the loss (cross-entropy or focal), its gradient / N, and whether argmax = label."""
    n = cuda.grid(1)
    batch, classes = logits.shape
    if n >= batch:
        return
    if labels[n] < 0 or labels[n] >= classes:
        row_correct[n] = -batch - 1  # makes the count negative: the host says which labels are wrong
        return
    _loss_row(logits, labels, n, focal, alpha, gamma, dlogits, row_loss, row_correct)


@cuda.jit
def _sum_two(values, flags, out):
    """out = (Σ values, Σ flags) with one block of THREADS threads (a tree in shared memory)."""
    partial = cuda.shared.array(THREADS, F32)
    count = cuda.shared.array(THREADS, F32)
    t = cuda.threadIdx.x
    s, c = F32(0.0), F32(0.0)
    for i in range(t, values.size, THREADS):
        s += values[i]
        c += flags[i]
    partial[t], count[t] = s, c
    cuda.syncthreads()
    step = THREADS // 2
    while step > 0:
        if t < step:
            partial[t] += partial[t + step]
            count[t] += count[t + step]
        cuda.syncthreads()
        step //= 2
    if t == 0:
        out[0], out[1] = partial[0], count[0]


# ----------------------------------------------------------------------------------- optimizers
@cuda.jit
def _sgd(param, grad, velocity, lr, momentum, weight_decay):
    i = cuda.grid(1)
    if i < param.size:
        _sgd_one(param, grad, velocity, i, lr, momentum, weight_decay)


@cuda.jit
def _adam(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, correction1, correction2):
    i = cuda.grid(1)
    if i < param.size:
        _adam_one(param, grad, m, v, i, lr, beta1, beta2, eps, weight_decay, correction1, correction2)


# ----------------------------------------------------------------------------------- layer norm


@cuda.jit
def _layernorm_forward(x, gamma, beta, eps, y, xhat, rstd):
    r = cuda.grid(1)
    if r < x.shape[0]:
        _layernorm_row(x, r, gamma, beta, eps, y, xhat, rstd)


@cuda.jit
def _layernorm_backward(dy, xhat, rstd, gamma, dx):
    r = cuda.grid(1)
    if r < dy.shape[0]:
        _layernorm_backward_row(dy, r, xhat, rstd, gamma, dx)
