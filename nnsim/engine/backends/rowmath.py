"""Per-row and per-number formulas shared by the Numba CPU and CUDA backends.

Plain Python on arrays and indices, compiled twice: with ``njit`` by cpu.py and as CUDA device
functions by cuda.py. Each backend only decides how rows are spread over threads.
"""

import math

import numpy as np

F32 = np.float32


def layernorm_row(x, r, gamma, beta, eps, y, xhat, rstd):
    """Row r of y = (x − mean) / √(var + eps) · γ + β, keeping x̂ and 1/√(var + eps)."""
    features = x.shape[1]
    mean = F32(0.0)
    for f in range(features):
        mean += x[r, f]
    mean /= features
    var = F32(0.0)
    for f in range(features):
        d = x[r, f] - mean
        var += d * d
    var /= features
    inv = F32(1.0) / math.sqrt(var + eps)
    rstd[r, 0] = inv
    for f in range(features):
        normed = (x[r, f] - mean) * inv
        xhat[r, f] = normed
        y[r, f] = normed * gamma[f] + beta[f]


def layernorm_backward_row(dy, r, xhat, rstd, gamma, dx):
    """Row r of dx = rstd · (dx̂ − mean(dx̂) − x̂ · mean(dx̂ ⊙ x̂)), with dx̂ = dy ⊙ γ."""
    features = dy.shape[1]
    mean_d = F32(0.0)
    mean_dx = F32(0.0)
    for f in range(features):
        d = dy[r, f] * gamma[f]
        mean_d += d
        mean_dx += d * xhat[r, f]
    mean_d /= features
    mean_dx /= features
    for f in range(features):
        dx[r, f] = rstd[r, 0] * (dy[r, f] * gamma[f] - mean_d - xhat[r, f] * mean_dx)


def sgd_one(param, grad, velocity, i, lr, momentum, weight_decay):
    """v ← μ·v + (g + λ·θ);  θ ← θ − η·v, for number i."""
    g = grad[i] + weight_decay * param[i]
    if momentum != 0:
        velocity[i] = momentum * velocity[i] + g
        g = velocity[i]
    param[i] -= lr * g


def adam_one(param, grad, m, v, i, lr, beta1, beta2, eps, weight_decay, correction1, correction2):
    """Adam with bias correction, for number i."""
    g = grad[i] + weight_decay * param[i]
    m[i] = beta1 * m[i] + (F32(1.0) - beta1) * g
    v[i] = beta2 * v[i] + (F32(1.0) - beta2) * g * g
    param[i] -= lr * (m[i] / correction1) / (math.sqrt(v[i] / correction2) + eps)
