"""Kernels that go number by number or row by row: GELU, ReLU, the loss, input normalisation,
layer norm and the optimizer updates. Their formulas are rowmath.py's, compiled inline here.
"""

from __future__ import annotations

from numba import njit, prange

from nnsim.engine.backends import rowmath
from nnsim.engine.backends.cpu.jit import _JIT, F32

# ----------------------------------------------------------------------------------- elementwise
_gelu_from_tanh_one = njit(inline="always", **_JIT)(rowmath.gelu_from_tanh)
_gelu_slope_from_tanh_one = njit(inline="always", **_JIT)(rowmath.gelu_slope_from_tanh)


_gelu_inner_one = njit(inline="always", **_JIT)(rowmath.gelu_inner)


@njit(inline="always", **_JIT)
def _tanh(x):
    """tanh(x) in float32 by a rational function (Eigen's fast tanh, |error| < 3e-7): plain
    arithmetic, so that loops calling it vectorise, where a call to libm's tanh would not."""
    c = min(max(x, F32(-7.90531110763549805)), F32(7.90531110763549805))
    x2 = c * c
    p = F32(-2.76076847742355e-16)
    p = p * x2 + F32(2.00018790482477e-13)
    p = p * x2 + F32(-8.60467152213735e-11)
    p = p * x2 + F32(5.12229709037114e-08)
    p = p * x2 + F32(1.48572235717979e-05)
    p = p * x2 + F32(6.37261928875436e-04)
    p = p * x2 + F32(4.89352455891786e-03)
    q = F32(1.19825839466702e-06)
    q = q * x2 + F32(1.18534705686654e-04)
    q = q * x2 + F32(2.26843463243900e-03)
    q = q * x2 + F32(4.89352518554385e-03)
    return c * p / q


ELEMENTWISE_CHUNK = 16384  # numbers per parallel task of an elementwise kernel


@njit(parallel=True, **_JIT)
def _gelu(z, y):
    """y = GELU(z) for flat arrays, in chunks (each a 0-based run, so that it vectorises)."""
    chunks = (z.size + ELEMENTWISE_CHUNK - 1) // ELEMENTWISE_CHUNK
    for chunk in prange(chunks):
        start = chunk * ELEMENTWISE_CHUNK
        zc, yc = z[start : start + ELEMENTWISE_CHUNK], y[start : start + ELEMENTWISE_CHUNK]
        for i in range(zc.size):
            yc[i] = _gelu_from_tanh_one(zc[i], _tanh(_gelu_inner_one(zc[i])))


@njit(parallel=True, **_JIT)
def _gelu_backward(z, dy, dz):
    """dz = dy · GELU′(z) for flat arrays, in chunks."""
    chunks = (z.size + ELEMENTWISE_CHUNK - 1) // ELEMENTWISE_CHUNK
    for chunk in prange(chunks):
        start = chunk * ELEMENTWISE_CHUNK
        zc = z[start : start + ELEMENTWISE_CHUNK]
        dyc, dzc = dy[start : start + ELEMENTWISE_CHUNK], dz[start : start + ELEMENTWISE_CHUNK]
        for i in range(zc.size):
            dzc[i] = dyc[i] * _gelu_slope_from_tanh_one(zc[i], _tanh(_gelu_inner_one(zc[i])))


@njit(inline="always", **_JIT)
def _relu_run(z, y):
    for i in range(y.size):
        y[i] = max(z[i], F32(0.0))


@njit(parallel=True, **_JIT)
def _relu(z, y):
    """y = max(z, 0) for flat arrays: one thread up to ELEMENTWISE_CHUNK numbers, else in chunks
    (a third of NumPy's time at a hidden layer's 256×128)."""
    if z.size <= ELEMENTWISE_CHUNK:
        _relu_run(z, y)
        return
    chunks = (z.size + ELEMENTWISE_CHUNK - 1) // ELEMENTWISE_CHUNK
    for chunk in prange(chunks):
        start = chunk * ELEMENTWISE_CHUNK
        stop = min(z.size, start + ELEMENTWISE_CHUNK)
        _relu_run(z[start:stop], y[start:stop])


@njit(inline="always", **_JIT)
def _relu_backward_run(z, dy, dz):
    for i in range(dz.size):
        dz[i] = dy[i] if z[i] > 0 else F32(0.0)


@njit(parallel=True, **_JIT)
def _relu_backward(z, dy, dz):
    """dz = dy where z > 0, else 0; in one thread below ELEMENTWISE_CHUNK numbers (starting
    threads would cost more than the work), else chunk by chunk in parallel."""
    if z.size <= ELEMENTWISE_CHUNK:
        _relu_backward_run(z, dy, dz)
        return
    chunks = (z.size + ELEMENTWISE_CHUNK - 1) // ELEMENTWISE_CHUNK
    for chunk in prange(chunks):
        start = chunk * ELEMENTWISE_CHUNK
        stop = min(z.size, start + ELEMENTWISE_CHUNK)
        _relu_backward_run(z[start:stop], dy[start:stop], dz[start:stop])


# ----------------------------------------------------------------------------------- loss, input
_loss_row = njit(inline="always", **_JIT)(rowmath.loss_row)


@njit(**_JIT)
def _classification_loss(logits, labels, focal, alpha, gamma, dlogits, row_loss, row_correct):
    """The batch's mean loss and count of right answers (dlogits filled in); −1 if a label is out of range.
    (In one thread: rows in parallel saved 6 µs at batch 256 but cost 1.7 s more of compiling.)"""
    batch, classes = logits.shape
    for n in range(batch):
        if labels[n] < 0 or labels[n] >= classes:
            return F32(0.0), -1
        _loss_row(logits, labels, n, focal, alpha, gamma, dlogits, row_loss, row_correct)
    return row_loss.sum() / batch, row_correct.sum()


@njit(inline="always", **_JIT)  # (called with a literal 0 too: inlined, not compiled twice)
def _normalize_samples(x, mean, std, out, start, stop):
    for n in range(start, stop):
        for c in range(x.shape[1]):
            shift, inv = mean[c], F32(1.0) / std[c]
            row, dst = x[n, c], out[n, c]
            for i in range(row.size):
                dst[i] = (row[i] - shift) * inv


@njit(parallel=True, **_JIT)
def _normalize(x, mean, std, out):
    """(x − mean) / std per channel, for x and out (N, C, H·W); batches of more than
    4 · ELEMENTWISE_CHUNK numbers in parallel chunks of samples."""
    n_size = x.shape[0]
    if x.size <= 4 * ELEMENTWISE_CHUNK:
        _normalize_samples(x, mean, std, out, 0, n_size)
        return
    per_chunk = max(1, ELEMENTWISE_CHUNK // (x.size // n_size))
    for chunk in prange((n_size + per_chunk - 1) // per_chunk):
        _normalize_samples(x, mean, std, out, chunk * per_chunk, min(n_size, (chunk + 1) * per_chunk))


# ----------------------------------------------------------------------------------- layer norm
_layernorm_row = njit(inline="always", **_JIT)(rowmath.layernorm_row)
_layernorm_backward_row = njit(inline="always", **_JIT)(rowmath.layernorm_backward_row)
# inlined, so that an update's loop is vectorised: Adam's ran 50× faster (sqrt and division were
# one number at a time in a function of their own), SGD's 2.5×
_sgd_one = njit(inline="always", **_JIT)(rowmath.sgd_one)
_adam_one = njit(inline="always", **_JIT)(rowmath.adam_one)


@njit(parallel=True, **_JIT)
def _layernorm_forward(x, gamma, beta, eps, y, xhat, rstd):
    for r in prange(x.shape[0]):
        _layernorm_row(x, r, gamma, beta, eps, y, xhat, rstd)


@njit(parallel=True, **_JIT)
def _layernorm_backward(dy, xhat, rstd, gamma, dx):
    for r in prange(dy.shape[0]):
        _layernorm_backward_row(dy, r, xhat, rstd, gamma, dx)


# ----------------------------------------------------------------------------------- optimizers
# Updates of more than PARALLEL_UPDATE weights run in UPDATE_CHUNKS parallel chunks. A vectorised
# update is bound by memory: serially, 100,352 weights (the MLP's first layer) took 14 µs, in
# parallel 29 µs (262,144: 63 against 85 µs); from 524,288 weights two cores win (180 against 167).
PARALLEL_UPDATE = 1 << 19
UPDATE_CHUNKS = 8


@njit(inline="always", **_JIT)  # (called with a literal 0 too: inlined, not compiled twice)
def _sgd_range(param, grad, velocity, start, stop, lr, momentum, weight_decay):
    for i in range(start, stop):
        _sgd_one(param, grad, velocity, i, lr, momentum, weight_decay)


@njit(parallel=True, **_JIT)
def _sgd_update(param, grad, velocity, lr, momentum, weight_decay):
    size = param.size
    if size < PARALLEL_UPDATE:
        _sgd_range(param, grad, velocity, 0, size, lr, momentum, weight_decay)
        return
    step = (size + UPDATE_CHUNKS - 1) // UPDATE_CHUNKS
    for chunk in prange(UPDATE_CHUNKS):
        _sgd_range(param, grad, velocity, chunk * step, min(size, (chunk + 1) * step), lr, momentum, weight_decay)


@njit(inline="always", **_JIT)  # (called with a literal 0 too: inlined, not compiled twice)
def _adam_range(param, grad, m, v, start, stop, lr, beta1, beta2, eps, weight_decay, correction1, correction2):
    for i in range(start, stop):
        _adam_one(param, grad, m, v, i, lr, beta1, beta2, eps, weight_decay, correction1, correction2)


@njit(parallel=True, **_JIT)
def _adam_update(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, correction1, correction2):
    size = param.size
    if size < PARALLEL_UPDATE:
        _adam_range(param, grad, m, v, 0, size, lr, beta1, beta2, eps, weight_decay, correction1, correction2)
        return
    step = (size + UPDATE_CHUNKS - 1) // UPDATE_CHUNKS
    for chunk in prange(UPDATE_CHUNKS):
        start, stop = chunk * step, min(size, (chunk + 1) * step)
        _adam_range(param, grad, m, v, start, stop, lr, beta1, beta2, eps, weight_decay, correction1, correction2)
