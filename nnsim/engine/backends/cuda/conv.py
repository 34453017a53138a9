"""Convolutions as implicit GEMM (the im2col matrix gathered tile by tile, never written out),
their gradients, and max-pooling with one thread per number.
"""

from __future__ import annotations

from numba import cuda

from nnsim.engine.backends.cuda.grid import F32, TILE, _unravel


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
