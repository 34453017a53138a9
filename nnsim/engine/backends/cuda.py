"""The CUDA backend: every op of a training step as a Numba CUDA kernel, arrays on the GPU.

Parameters, activations, gradients and optimizer state stay on the device for the whole run; a
step copies in the batch and copies out two numbers (the loss and the count of correct answers).
Layout and maths follow the reference backend, which tests hold it to (on a real GPU, or in
Numba's CUDA simulator with NUMBA_ENABLE_CUDASIM=1 on tiny shapes).

How the work is spread over threads, the idea the lessons show:
- matrix products: a 16×16 block of threads computes a 16×16 tile of the output, staging tiles of
  both operands in shared memory so that each number read from global memory is used 16 times;
- convolutions: the same tiled product, with the input tile gathered straight from the image
  (implicit GEMM: the unrolled im2col matrix is never written out);
- attention: one block per (sample, head), one thread per query token;
- everything elementwise: one thread per number.
"""

from __future__ import annotations

import math

import numpy as np

from nnsim.engine.backends import rowmath
from nnsim.engine.backends.rowmath import conv_output_size
from nnsim.errors import NnsimError

try:
    from numba import cuda
except ImportError as error:  # pragma: no cover - depends on the install
    raise ModuleNotFoundError("numba.cuda", name="numba.cuda") from error

F32 = np.float32
TILE = 16
THREADS = 256
MAX_TOKENS = 128  # attention keeps one row of scores per thread in registers/local memory
_BIAS_NONE, _BIAS_ROWS, _BIAS_COLS = 0, 1, 2
_ACTIVATIONS = {"relu": 0, "sigmoid": 1, "tanh": 2, "linear": 3, "gelu": 4}


def _blocks(count: int, threads: int = THREADS) -> int:
    return max(1, (count + threads - 1) // threads)


@cuda.jit(device=True)
def _unravel(i, d1, d2, d3):
    """Flat index i of a C-ordered (·, d1, d2, d3) array as its four coordinates."""
    return i // (d1 * d2 * d3), (i // (d2 * d3)) % d1, (i // d3) % d2, i % d3


@cuda.jit(device=True)
def _unravel3(i, d1, d2):
    """Flat index i of a C-ordered (·, d1, d2) array as its three coordinates."""
    return i // (d1 * d2), (i // d2) % d1, i % d2


def simulated() -> bool:
    from numba import config

    return bool(config.ENABLE_CUDASIM)


# ----------------------------------------------------------------------------------- matmul
@cuda.jit
def _gemm_nt(a, b, c, bias, bias_mode, relu):
    """c[z] = a[z] · b[z]ᵀ (+ bias per row or column, then ReLU); a (Za,M,K), b (Zb,N,K), c (Z,M,N).

    A 16×16 block computes a 16×16 tile of c; tiles of a and b pass through shared memory.
    """
    tile_a = cuda.shared.array((TILE, TILE), F32)
    tile_b = cuda.shared.array((TILE, TILE), F32)
    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
    z = cuda.blockIdx.z
    row = cuda.blockIdx.y * TILE + ty
    col = cuda.blockIdx.x * TILE + tx
    za = z if a.shape[0] > 1 else 0
    zb = z if b.shape[0] > 1 else 0
    m_size, k_size = a.shape[1], a.shape[2]
    n_size = b.shape[1]
    total = F32(0.0)
    for k0 in range(0, k_size, TILE):
        tile_a[ty, tx] = a[za, row, k0 + tx] if row < m_size and k0 + tx < k_size else F32(0.0)
        b_row = cuda.blockIdx.x * TILE + ty
        tile_b[ty, tx] = b[zb, b_row, k0 + tx] if b_row < n_size and k0 + tx < k_size else F32(0.0)
        cuda.syncthreads()
        for k in range(TILE):
            total += tile_a[ty, k] * tile_b[tx, k]
        cuda.syncthreads()
    if row < m_size and col < n_size:
        if bias_mode == _BIAS_ROWS:
            total += bias[row]
        elif bias_mode == _BIAS_COLS:
            total += bias[col]
        if relu and total < 0:
            total = F32(0.0)
        c[z, row, col] = total


@cuda.jit
def _transpose(src, dst):
    """dst[z] = src[z]ᵀ through a shared 16×16 tile, so reads and writes are both coalesced."""
    tile = cuda.shared.array((TILE, TILE + 1), F32)
    z = cuda.blockIdx.z
    x = cuda.blockIdx.x * TILE + cuda.threadIdx.x
    y = cuda.blockIdx.y * TILE + cuda.threadIdx.y
    if y < src.shape[1] and x < src.shape[2]:
        tile[cuda.threadIdx.y, cuda.threadIdx.x] = src[z, y, x]
    cuda.syncthreads()
    x = cuda.blockIdx.y * TILE + cuda.threadIdx.x
    y = cuda.blockIdx.x * TILE + cuda.threadIdx.y
    if y < dst.shape[1] and x < dst.shape[2]:
        dst[z, y, x] = tile[cuda.threadIdx.x, cuda.threadIdx.y]


@cuda.jit
def _column_sums(x, out):
    """out[j] = Σ_i x[i, j]: one thread per column (bias gradients)."""
    j = cuda.grid(1)
    if j < x.shape[1]:
        total = F32(0.0)
        for i in range(x.shape[0]):
            total += x[i, j]
        out[j] = total


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


_loss_row = cuda.jit(device=True)(rowmath.loss_row)
_gelu_inner = cuda.jit(device=True)(rowmath.gelu_inner)
_gelu_from_tanh = cuda.jit(device=True)(rowmath.gelu_from_tanh)
_gelu_slope_from_tanh = cuda.jit(device=True)(rowmath.gelu_slope_from_tanh)


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


# ----------------------------------------------------------------------------------- convolution
@cuda.jit(device=True)
def _pixel(x, n, col, p, kh, kw, stride, padding, w_out):
    """The im2col entry cols[n, p, col] = X[n, ci, h·s+m−pad, w·s+k−pad], computed, never stored."""
    ci = col // (kh * kw)
    m = (col // kw) % kh
    k = col % kw
    row = (p // w_out) * stride + m - padding
    column = (p % w_out) * stride + k - padding
    if 0 <= row < x.shape[2] and 0 <= column < x.shape[3]:
        return x[n, ci, row, column]
    return F32(0.0)


@cuda.jit
def _conv_forward(x, w2, bias, stride, padding, kh, kw, relu, y):
    """Implicit GEMM: y[n] (Co, P) = W (Co, K) · cols[n]ᵀ, the cols tile gathered from the image."""
    tile_w = cuda.shared.array((TILE, TILE), F32)
    tile_x = cuda.shared.array((TILE, TILE), F32)
    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
    n = cuda.blockIdx.z
    co = cuda.blockIdx.y * TILE + ty
    p = cuda.blockIdx.x * TILE + tx
    c_out, k_size = w2.shape
    h_out, w_out = y.shape[2], y.shape[3]
    plane = h_out * w_out
    total = F32(0.0)
    for k0 in range(0, k_size, TILE):
        tile_w[ty, tx] = w2[co, k0 + tx] if co < c_out and k0 + tx < k_size else F32(0.0)
        # thread (ty, tx) loads the pixel for output position p0 + tx and column k0 + ty
        p_load = cuda.blockIdx.x * TILE + tx
        col = k0 + ty
        tile_x[ty, tx] = (
            _pixel(x, n, col, p_load, kh, kw, stride, padding, w_out) if p_load < plane and col < k_size else F32(0.0)
        )
        cuda.syncthreads()
        for k in range(TILE):
            total += tile_w[ty, k] * tile_x[k, tx]
        cuda.syncthreads()
    if co < c_out and p < plane:
        total += bias[co]
        if relu and total < 0:
            total = F32(0.0)
        y[n, co, p // w_out, p % w_out] = total


@cuda.jit
def _conv_weight_grad(x, g, stride, padding, kh, kw, parts):
    """parts[s] (Co, K) = Σ over this block-column's share s of (n, p) of g[n,co,p] · cols[n,p,col].

    The sum over the whole batch is split across blocks (grid z); _sum_parts adds the shares in a
    fixed order, so results repeat exactly.
    """
    tile_g = cuda.shared.array((TILE, TILE), F32)
    tile_x = cuda.shared.array((TILE, TILE), F32)
    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
    share = cuda.blockIdx.z
    shares = cuda.gridDim.z
    co = cuda.blockIdx.y * TILE + ty
    col = cuda.blockIdx.x * TILE + tx
    c_out, k_size = parts.shape[1], parts.shape[2]
    h_out, w_out = g.shape[2], g.shape[3]
    plane = h_out * w_out
    total_rows = g.shape[0] * plane
    per_share = (total_rows + shares - 1) // shares
    start = share * per_share
    stop = min(start + per_share, total_rows)
    total = F32(0.0)
    for r0 in range(start, stop, TILE):
        r = r0 + tx
        tile_g[ty, tx] = g[r // plane, co, (r % plane) // w_out, r % w_out] if co < c_out and r < stop else F32(0.0)
        r = r0 + ty
        col_load = cuda.blockIdx.x * TILE + tx
        tile_x[ty, tx] = (
            _pixel(x, r // plane, col_load, r % plane, kh, kw, stride, padding, w_out)
            if r < stop and col_load < k_size
            else F32(0.0)
        )
        cuda.syncthreads()
        for k in range(TILE):
            total += tile_g[ty, k] * tile_x[k, tx]
        cuda.syncthreads()
    if co < c_out and col < k_size:
        parts[share, co, col] = total


@cuda.jit
def _sum_parts(parts, out):
    """out[i] = Σ_s parts[s, i] in order s = 0, 1, …: deterministic."""
    i = cuda.grid(1)
    if i < out.size:
        total = F32(0.0)
        for s in range(parts.shape[0]):
            total += parts[s, i]
        out[i] = total


@cuda.jit
def _conv_input_grad(g, w, stride, padding, dx):
    """dX[n,ci,yy,xx] = Σ_{co,m,k} W[co,ci,m,k] · g[n,co,h,w] over the (h, w) whose window covered
    (yy, xx): h·s + m − pad = yy. One thread per input pixel gathers, so no two threads write the
    same number."""
    i = cuda.grid(1)
    if i >= dx.size:
        return
    c_out, _, kh, kw = w.shape
    h_out, w_out = g.shape[2], g.shape[3]
    n, ci, yy, xx = _unravel(i, dx.shape[1], dx.shape[2], dx.shape[3])
    total = F32(0.0)
    for m in range(kh):
        hs = yy + padding - m
        if hs < 0 or hs % stride != 0 or hs // stride >= h_out:
            continue
        h = hs // stride
        for k in range(kw):
            ws = xx + padding - k
            if ws < 0 or ws % stride != 0 or ws // stride >= w_out:
                continue
            col = ws // stride
            for co in range(c_out):
                total += w[co, ci, m, k] * g[n, co, h, col]
    dx[n, ci, yy, xx] = total


@cuda.jit
def _channel_sums(g, out):
    """out[c] = Σ_{n,h,w} g[n, c, h, w] (conv bias gradient): one thread per channel."""
    c = cuda.grid(1)
    if c < g.shape[1]:
        total = F32(0.0)
        for n in range(g.shape[0]):
            for h in range(g.shape[2]):
                for w in range(g.shape[3]):
                    total += g[n, c, h, w]
        out[c] = total


@cuda.jit
def _relu_mask(dy, y, out):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = dy[i] if y[i] > 0 else F32(0.0)


# ----------------------------------------------------------------------------------- pooling
@cuda.jit
def _maxpool_forward(x, size, y, argmax):
    i = cuda.grid(1)
    if i >= y.size:
        return
    n, c, h, w = _unravel(i, y.shape[1], y.shape[2], y.shape[3])
    best = x[n, c, h * size, w * size]
    best_index = 0
    for m in range(size):
        for k in range(size):
            value = x[n, c, h * size + m, w * size + k]
            if value > best:
                best = value
                best_index = m * size + k
    y[n, c, h, w] = best
    argmax[n, c, h, w] = best_index


@cuda.jit
def _maxpool_backward(dy, argmax, pooled, masked, size, dx):
    """One thread per input pixel: it gets dy if it was its window's max (and, with `masked`, the
    max was > 0), else 0. Pixels past the last full window get 0."""
    i = cuda.grid(1)
    if i >= dx.size:
        return
    n, c, yy, xx = _unravel(i, dx.shape[1], dx.shape[2], dx.shape[3])
    h, w = yy // size, xx // size
    value = F32(0.0)
    if h < dy.shape[2] and w < dy.shape[3] and argmax[n, c, h, w] == (yy % size) * size + xx % size:
        if not masked or pooled[n, c, h, w] > 0:
            value = dy[n, c, h, w]
    dx[n, c, yy, xx] = value


# ----------------------------------------------------------------------------------- layer norm
_layernorm_row = cuda.jit(device=True)(rowmath.layernorm_row)
_layernorm_backward_row = cuda.jit(device=True)(rowmath.layernorm_backward_row)
_sgd_one = cuda.jit(device=True)(rowmath.sgd_one)
_adam_one = cuda.jit(device=True)(rowmath.adam_one)
_attention_probs_row = cuda.jit(device=True)(rowmath.attention_probs_row)


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


@cuda.jit
def _product_column_sums(a, b, out):
    """out[j] = Σ_i a[i, j] · b[i, j] (the layer-norm γ gradient)."""
    j = cuda.grid(1)
    if j < a.shape[1]:
        total = F32(0.0)
        for i in range(a.shape[0]):
            total += a[i, j] * b[i, j]
        out[j] = total


# ----------------------------------------------------------------------------------- attention
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


# ----------------------------------------------------------------------------------- the backend
class CudaBackend:
    """Every op of the Backend protocol (protocol.py), on the GPU."""

    name = "cuda"

    def __init__(self):
        self.simulated = simulated()  # Numba's CUDA simulator: for tests, never picked by "auto"
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
    def _gemm(self, a, b, bias=None, bias_mode=_BIAS_NONE, relu=False):
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
        y = self._gemm(x2, weight, bias, _BIAS_COLS if bias is not None else _BIAS_NONE)
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
        _activation_forward[_blocks(z.size), THREADS](_ACTIVATIONS[name], _flat(z), _flat(y))
        return y

    def activation_backward(self, name, z, dy):
        dz = cuda.device_array(z.shape, dtype=F32)
        _activation_backward[_blocks(z.size), THREADS](_ACTIVATIONS[name], _flat(z), _flat(dy), _flat(dz))
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
        _attention_forward[(n, heads), _warp_multiple(tokens)](q, k, v, F32(1.0 / math.sqrt(d)), out, probs)
        return out, probs

    def attention_backward(self, q, k, v, probs, dout):
        n, heads, tokens, d = q.shape
        dq, dk, dv = (cuda.device_array(q.shape, dtype=F32) for _ in range(3))
        dscores = cuda.device_array(probs.shape, dtype=F32)
        _attention_backward[(n, heads), _warp_multiple(tokens)](
            q, k, v, probs, dout, F32(1.0 / math.sqrt(d)), dscores, dq, dk, dv
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
            F32(1 - beta1**step),
            F32(1 - beta2**step),
        )


@cuda.jit
def _copy_tokens(dy, dtokens):
    """dtokens[n, t] = dy[n, t + 1]: the gradient of the patch tokens, without the CLS row."""
    i = cuda.grid(1)
    if i < dtokens.size:
        n, t, f = _unravel3(i, dtokens.shape[1], dtokens.shape[2])
        dtokens[n, t, f] = dy[n, t + 1, f]


def _flat(array):
    """A 1-D view of a contiguous device array."""
    return array.reshape(array.size)


def _on_device(array) -> bool:
    return hasattr(array, "copy_to_host")  # a Numba device array, real or simulated


def _tiles(count: int) -> int:
    return max(1, (count + TILE - 1) // TILE)


def _warp_multiple(count: int) -> int:
    return max(32, (count + 31) // 32 * 32)


def _resolve(shape, size: int) -> tuple:
    """Replace a -1 in a shape by what makes it hold `size` numbers (device arrays need it spelled out)."""
    shape = tuple(int(s) for s in shape)
    if -1 in shape:
        known = int(np.prod([s for s in shape if s != -1]))
        shape = tuple(size // known if s == -1 else s for s in shape)
    return shape
