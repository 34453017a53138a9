"""Attention, one block per (sample, head) and one thread per token; and the ViT's token layout
(heads, patches, the CLS token, positions), one thread per number.
"""

from __future__ import annotations

from numba import cuda

from nnsim.engine.backends import rowmath
from nnsim.engine.backends.cuda.grid import F32, _unravel, _unravel3

MAX_TOKENS = 128  # attention keeps one row of scores per thread in registers/local memory
_attention_probs_row = cuda.jit(device=True)(rowmath.attention_probs_row)


@cuda.jit
def _attention_forward(q, k, v, scale, out, probs):
    """Block (sample, head), thread i: P_i = softmax(q_i Kᵀ · scale), out_i = P_i V."""
    n, h = cuda.blockIdx.x, cuda.blockIdx.y
    i = cuda.threadIdx.x
    tokens, d = q.shape[2], q.shape[3]
    if i >= tokens:
        return
    _attention_probs_row(q, k, n, h, i, scale, probs)
    for e in range(d):
        acc = F32(0.0)
        for j in range(tokens):
            acc += probs[n, h, i, j] * v[n, h, j, e]
        out[n, h, i, e] = acc


@cuda.jit
def _attention_backward(q, k, v, probs, dout, scale, dscores, dq, dk, dv):
    """Block (sample, head). Phase 1, thread i: dS_i = P_i ⊙ (dP_i − Σ_j dP_ij P_ij), dq_i.
    Phase 2, thread j: dk_j = Σ_i dS_ij q_i, dv_j = Σ_i P_ij dout_i."""
    n, h = cuda.blockIdx.x, cuda.blockIdx.y
    t = cuda.threadIdx.x
    tokens, d = q.shape[2], q.shape[3]
    if t < tokens:
        weighted = F32(0.0)
        for j in range(tokens):
            dp = F32(0.0)
            for e in range(d):
                dp += dout[n, h, t, e] * v[n, h, j, e]
            dscores[n, h, t, j] = dp
            weighted += dp * probs[n, h, t, j]
        for j in range(tokens):
            dscores[n, h, t, j] = probs[n, h, t, j] * (dscores[n, h, t, j] - weighted) * scale
        for e in range(d):
            acc = F32(0.0)
            for j in range(tokens):
                acc += dscores[n, h, t, j] * k[n, h, j, e]
            dq[n, h, t, e] = acc
    cuda.syncthreads()
    if t < tokens:
        for e in range(d):
            acc_k = F32(0.0)
            acc_v = F32(0.0)
            for i in range(tokens):
                acc_k += dscores[n, h, i, t] * q[n, h, i, e]
                acc_v += probs[n, h, i, t] * dout[n, h, i, e]
            dk[n, h, t, e] = acc_k
            dv[n, h, t, e] = acc_v


# ----------------------------------------------------------------------------------- token layout
@cuda.jit
def _split_heads(qkv, heads, q, k, v, backward):
    """(N, T, 3·D) ↔ q, k, v (N, heads, T, D/heads); one thread per number of q."""
    i = cuda.grid(1)
    if i >= q.size:
        return
    d_head = q.shape[3]
    n, h, t, e = _unravel(i, heads, q.shape[2], d_head)
    dim = heads * d_head
    column = h * d_head + e
    if backward:
        qkv[n, t, column] = q[n, h, t, e]
        qkv[n, t, dim + column] = k[n, h, t, e]
        qkv[n, t, 2 * dim + column] = v[n, h, t, e]
    else:
        q[n, h, t, e] = qkv[n, t, column]
        k[n, h, t, e] = qkv[n, t, dim + column]
        v[n, h, t, e] = qkv[n, t, 2 * dim + column]


@cuda.jit
def _merge_heads(x, out, backward):
    """(N, heads, T, d) ↔ (N, T, heads·d)."""
    i = cuda.grid(1)
    if i >= x.size:
        return
    d_head = x.shape[3]
    n, h, t, e = _unravel(i, x.shape[1], x.shape[2], d_head)
    if backward:
        x[n, h, t, e] = out[n, t, h * d_head + e]
    else:
        out[n, t, h * d_head + e] = x[n, h, t, e]


@cuda.jit
def _patchify(x, patch, patches, backward):
    """(N, C, H, W) ↔ (N, T, C·p·p), patches in reading order; pixels past the last patch are 0."""
    i = cuda.grid(1)
    if i >= x.size:
        return
    height, width = x.shape[2], x.shape[3]
    n, c, yy, xx = _unravel(i, x.shape[1], height, width)
    cols = width // patch
    row, col = yy // patch, xx // patch
    inside = row < height // patch and col < cols
    feature = (c * patch + yy % patch) * patch + xx % patch
    if backward:
        x[n, c, yy, xx] = patches[n, row * cols + col, feature] if inside else F32(0.0)
    elif inside:
        patches[n, row * cols + col, feature] = x[n, c, yy, xx]


@cuda.jit
def _add_tokens(tokens, cls, positions, out):
    """out[n] = [cls; tokens[n]] + positions."""
    i = cuda.grid(1)
    if i >= out.size:
        return
    n, t, f = _unravel3(i, out.shape[1], out.shape[2])
    value = cls[0, f] if t == 0 else tokens[n, t - 1, f]
    out[n, t, f] = value + positions[t, f]


@cuda.jit
def _token_sums(dy, dpositions):
    """dpositions[t, f] = Σ_n dy[n, t, f]."""
    i = cuda.grid(1)
    if i < dpositions.size:
        f = i % dy.shape[2]
        t = i // dy.shape[2]
        total = F32(0.0)
        for n in range(dy.shape[0]):
            total += dy[n, t, f]
        dpositions[t, f] = total


@cuda.jit
def _take_token(x, index, out, backward):
    """out[n] = x[n, index] (backward: x = 0 except x[n, index] = out[n])."""
    i = cuda.grid(1)
    if i >= x.size:
        return
    n, t, f = _unravel3(i, x.shape[1], x.shape[2])
    if backward:
        x[n, t, f] = out[n, f] if t == index else F32(0.0)
    elif t == index:
        out[n, f] = x[n, t, f]


@cuda.jit
def _copy_tokens(dy, dtokens):
    """dtokens[n, t] = dy[n, t + 1]: the gradient of the patch tokens, without the CLS row."""
    i = cuda.grid(1)
    if i < dtokens.size:
        n, t, f = _unravel3(i, dtokens.shape[1], dtokens.shape[2])
        dtokens[n, t, f] = dy[n, t + 1, f]
