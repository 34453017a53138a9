"""Softmax and the two losses of the workshop, from logits, with their gradients; and squared error
on the probabilities, which the lessons set beside them to show why classifiers do not train on it.

All of them work on the last axis and average over the batch. They start from logits rather than
probabilities so that they stay finite when a probability underflows to 0 (log-sum-exp).
"""

from __future__ import annotations

import numpy as np

from nnsim.errors import NnsimError


def softmax(logits) -> np.ndarray:
    """p_i = exp(z_i) / Σ_j exp(z_j) over the last axis (shifted by the max for stability)."""
    z = np.asarray(logits)
    if not np.issubdtype(z.dtype, np.floating):
        z = z.astype(np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(logits) -> np.ndarray:
    """log p_i = z_i − log Σ_j exp(z_j), without forming p first."""
    z = np.asarray(logits)
    if not np.issubdtype(z.dtype, np.floating):
        z = z.astype(np.float64)
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def cross_entropy(logits, labels):
    """L = −(1/N) Σ_n log p[n, y_n]; returns (loss, dL/dlogits = (p − onehot) / N)."""
    logp, labels = _checked(logits, labels)
    n = logp.shape[0]
    rows = np.arange(n)
    loss = -logp[rows, labels].mean()
    dlogits = np.exp(logp)
    dlogits[rows, labels] -= 1
    return loss, dlogits / n


def focal_loss(logits, labels, alpha=1.0, gamma: float = 2.0):
    """L = −(1/N) Σ_n α_y (1 − p_y)^γ log p_y, with y = labels[n]; returns (loss, dlogits).

    alpha is one number or one weight per class. With γ = 0 and α = 1 it is cross-entropy.
    """
    logp, labels = _checked(logits, labels)
    n, classes = logp.shape
    if gamma < 0:
        raise NnsimError(f"focal loss needs gamma >= 0, got {gamma}")
    alpha_y = _alpha_per_sample(alpha, labels, classes, logp.dtype)
    rows = np.arange(n)
    logpt = logp[rows, labels]
    pt = np.exp(logpt)
    one_minus = -np.expm1(logpt)  # 1 − p_y, accurate when p_y is close to 1
    modulator = one_minus**gamma
    loss = -(alpha_y * modulator * logpt).mean()
    # dL/dz_j = g · (onehot_j − p_j) with g = α (γ (1−p)^(γ−1) p log p − (1−p)^γ);
    # (1−p)^(γ−1) is written as (1−p)^γ / (1−p) so that it is 0, not nan, at p = 1.
    safe = np.where(one_minus > 0, one_minus, 1)
    focusing = np.where(one_minus > 0, gamma * modulator * pt * logpt / safe, 0)
    g = alpha_y * (focusing - modulator)
    onehot_minus_p = -np.exp(logp)
    onehot_minus_p[rows, labels] += 1
    return loss, g[:, None] * onehot_minus_p / n


def squared_error(logits, labels):
    """L = (1/N) Σ_n Σ_i (p[n, i] − y[n, i])² with p = softmax(logits) and y one-hot; returns (loss, dlogits).

    The gradient goes back through softmax: with g = 2 (p − y), dL/dz_j = p_j (g_j − Σ_i g_i p_i) / N.
    Softmax's slope p_j (δ_ij − p_i) is flat when one class has almost all the probability, so this
    gradient fades when the network is confidently wrong, where cross-entropy's p − y does not.
    """
    logp, labels = _checked(logits, labels)
    n = logp.shape[0]
    p = np.exp(logp)
    diff = p.copy()
    diff[np.arange(n), labels] -= 1
    g = 2 * diff
    dlogits = p * (g - (g * p).sum(axis=-1, keepdims=True))
    return (diff**2).sum(axis=-1).mean(), dlogits / n


def _checked(logits, labels):
    logits = np.asarray(logits)
    labels = np.asarray(labels)
    if logits.ndim != 2:
        raise NnsimError(f"logits must be (batch, classes), got shape {logits.shape}")
    if labels.shape != (logits.shape[0],):
        raise NnsimError(f"need one label per row of logits, got {labels.shape} for {logits.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise NnsimError(f"labels must lie in 0..{logits.shape[1] - 1}")
    return log_softmax(logits), labels.astype(np.int64)


def _alpha_per_sample(alpha, labels, classes: int, dtype) -> np.ndarray:
    weights = np.asarray(alpha, dtype=dtype)
    if weights.ndim == 0:
        return np.full(labels.shape, weights, dtype=dtype)
    if weights.shape != (classes,):
        raise NnsimError(f"alpha needs one weight per class ({classes}), got {weights.size}")
    if (weights < 0).any():
        raise NnsimError("alpha weights must be >= 0")
    return weights[labels]
