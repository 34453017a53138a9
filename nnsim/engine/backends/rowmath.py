"""Per-row and per-number formulas shared by the Numba CPU and CUDA backends.

Plain Python on arrays and indices, compiled twice: with ``njit`` by the cpu package and as CUDA
device functions by the cuda package. Each backend only decides how rows are spread over threads. The few
numbers both compute on the host before a launch (Adam's bias corrections, attention's scale)
are here too, so that each formula is written once.
"""

import math

import numpy as np

F32 = np.float32
# How a matrix product's epilogue adds a bias: none, one per row of the output, one per column.
BIAS_NONE, BIAS_ROWS, BIAS_COLS = 0, 1, 2


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


def adam_corrections(beta1, beta2, step):
    """Adam's bias corrections (1 − β₁ᵗ, 1 − β₂ᵗ) at step t (from 1), as float32, for adam_one."""
    return F32(1 - beta1**step), F32(1 - beta2**step)


def attention_scale(d):
    """1/√d, by which attention scales its scores for heads d numbers wide, as float32."""
    return F32(1.0 / math.sqrt(d))


def loss_row(logits, labels, n, focal, alpha, gamma, dlogits, row_loss, row_correct):
    """Row n of a classification loss: softmax, the loss (cross-entropy, or focal with α and γ),
    its gradient / batch into dlogits[n], and whether the argmax is the label (1 or 0).

    alpha holds one weight, or one per class. dL/dz_j = g · (onehot_j − p_j), with g = −1 for
    cross-entropy and g = α (γ (1−p)^(γ−1) p log p − (1−p)^γ) for focal loss.
    """
    batch, classes = logits.shape
    top = logits[n, 0]
    best = 0
    for j in range(1, classes):
        if logits[n, j] > top:
            top = logits[n, j]
            best = j
    total = F32(0.0)
    for j in range(classes):  # dlogits[n] holds exp(z_j − max) until the gradient replaces it
        e = math.exp(logits[n, j] - top)
        dlogits[n, j] = e
        total += e
    inv_total = F32(1.0) / total
    y = labels[n]
    logpt = logits[n, y] - top - math.log(total)
    pt = dlogits[n, y] * inv_total
    weight = alpha[y] if alpha.size > 1 else alpha[0]
    if focal:
        one_minus = -math.expm1(logpt)  # 1 − p_y, accurate when p_y is close to 1
        modulator = one_minus**gamma if one_minus > 0 else F32(0.0)
        focusing = gamma * modulator * pt * logpt / one_minus if one_minus > 0 else F32(0.0)
        row_loss[n] = -weight * modulator * logpt
        g = weight * (focusing - modulator)
    else:
        row_loss[n] = -logpt
        g = F32(-1.0)
    g /= batch
    for j in range(classes):
        onehot = F32(1.0) if j == y else F32(0.0)
        dlogits[n, j] = g * (onehot - dlogits[n, j] * inv_total)
    row_correct[n] = 1 if best == y else 0


def conv_output_size(size, kernel, stride, padding):
    """⌊(size + 2·padding − kernel) / stride⌋ + 1: how many places a kernel fits along one axis."""
    return (size + 2 * padding - kernel) // stride + 1


GELU_C = F32(math.sqrt(2.0 / math.pi))
GELU_K = F32(0.044715)


def gelu_inner(z):
    """√(2/π)(z + 0.044715 z³), the argument of GELU's tanh (a number or an array)."""
    return GELU_C * (z + GELU_K * z * z * z)


def gelu_from_tanh(z, t):
    """GELU(z) = ½ z (1 + t), with t = tanh(gelu_inner(z))."""
    return F32(0.5) * z * (F32(1.0) + t)


def gelu_slope_from_tanh(z, t):
    """GELU′(z) = ½(1 + t) + ½ z (1 − t²) √(2/π)(1 + 3·0.044715 z²), with t = tanh(gelu_inner(z))."""
    return F32(0.5) * (F32(1.0) + t) + F32(0.5) * z * (F32(1.0) - t * t) * GELU_C * (
        F32(1.0) + F32(3.0) * GELU_K * z * z
    )


def attention_probs_row(q, k, n, h, i, scale, probs):
    """Row i of P = softmax(Q Kᵀ · scale) for (sample n, head h), written to probs[n, h, i, :]."""
    tokens, d = k.shape[2], k.shape[3]
    top = F32(-3.0e38)
    for j in range(tokens):
        s = F32(0.0)
        for e in range(d):
            s += q[n, h, i, e] * k[n, h, j, e]
        s *= scale
        probs[n, h, i, j] = s
        if s > top:
            top = s
    total = F32(0.0)
    for j in range(tokens):
        p = math.exp(probs[n, h, i, j] - top)
        probs[n, h, i, j] = p
        total += p
    inv = F32(1.0) / total
    for j in range(tokens):
        probs[n, h, i, j] *= inv
