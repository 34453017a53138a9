"""Max-pooling: per sample, fused with a convolution's bias and ReLU, and as a layer of its own.

The fused conv block (conv.py) pools each sample's maps while they are still in cache, and its
backward pass spreads the pooled gradient back over each window, or for its first layer takes
the weight gradient straight from the pooled gradient (`_pooled_weight_grad`).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from nnsim.engine.backends.cpu.conv_sample import _add_nine
from nnsim.engine.backends.cpu.jit import _JIT, F32


@njit(**_JIT)
def _pool_sample(y, size, pooled, argmax):
    """Max over size×size windows of one sample's maps: y (C, H, W) -> pooled, argmax (C, H/s, W/s)."""
    channels, h_out, w_out = pooled.shape
    for c in range(channels):
        for h in range(h_out):
            for w in range(w_out):
                best = y[c, h * size, w * size]
                best_index = 0
                for m in range(size):
                    for k in range(size):
                        value = y[c, h * size + m, w * size + k]
                        if value > best:
                            best = value
                            best_index = m * size + k
                pooled[c, h, w] = best
                argmax[c, h, w] = best_index


@njit(**_JIT)
def _pool_bias_relu_sample(flat, row_stride, size, bias, pooled, argmax):
    """pooled = ReLU(max over each window + b) from raw conv sums in flat (C, rows·row_stride).

    max(ReLU(v + b)) = ReLU(max(v) + b), since both steps keep order: bias and ReLU are applied
    once per window instead of once per pixel. The 2×2 case is written without branches, which
    random data would mispredict half the time; ties keep the first maximum, as the reference does.
    """
    channels, h_out, w_out = pooled.shape
    for c in range(channels):
        bias_c = bias[c]
        for h in range(h_out):
            top = h * size * row_stride
            out, where = pooled[c, h], argmax[c, h]
            if size == 2:  # rows as 0-based slices: no index can be negative, so the loop vectorises
                r0 = flat[c, top : top + 2 * w_out]
                r1 = flat[c, top + row_stride : top + row_stride + 2 * w_out]
                for w in range(w_out):  # max of pairs, then of the pair maxima; ties keep the first
                    v0, v1, v2, v3 = r0[2 * w], r0[2 * w + 1], r1[2 * w], r1[2 * w + 1]
                    top01, top23 = max(v0, v1), max(v2, v3)
                    index01, index23 = np.int64(v1 > v0), 2 + np.int64(v3 > v2)
                    lower = np.int64(top23 > top01)
                    best = max(top01, top23) + bias_c
                    best_index = index01 + (index23 - index01) * lower
                    out[w] = max(best, F32(0.0))
                    where[w] = best_index
                continue
            for w in range(w_out):
                base = top + w * size
                best, best_index = flat[c, base], 0
                for m in range(size):
                    for k in range(size):
                        value = flat[c, base + m * row_stride + k]
                        if value > best:
                            best, best_index = value, m * size + k
                best += bias_c
                out[w] = best if best > 0 else F32(0.0)
                where[w] = best_index


@njit(**_JIT)
def _unpool_sample(dpooled, argmax, size, pooled, masked, dy):
    """The gradient of one sample's max-pool: each window's max gets it, the rest 0.

    With `masked`, a fused ReLU is undone too: where the max was ≤ 0, the ReLU passed nothing.
    Each window is written whole, so dy needs no clearing first (only rows and columns past the
    last full window, which pooling dropped).
    """
    channels, height, width = dy.shape
    if height != dpooled.shape[1] * size or width != dpooled.shape[2] * size:
        dy[:] = F32(0.0)
    _unpool_rows(dpooled, argmax, size, pooled, masked, dy.reshape(channels, height * width), width)


@njit(**_JIT)
def _unpool_rows(dpooled, argmax, size, pooled, masked, flat, row_stride):
    """Windows of the max-pool gradient into flat (C, rows·row_stride): row h·size+m, column w·size+k.

    The 2×2 case writes two output rows per pooled row from 0-based slices, with 0/1 factors
    instead of branches (which random gradients would mispredict half the time).
    """
    channels, h_out, w_out = dpooled.shape
    for c in range(channels):
        for h in range(h_out):
            top = h * size * row_stride
            values, where, kept = dpooled[c, h], argmax[c, h], pooled[c, h]
            if size == 2:
                r0 = flat[c, top : top + 2 * w_out]
                r1 = flat[c, top + row_stride : top + row_stride + 2 * w_out]
                for w in range(w_out):  # masks as numbers: branches here would be mispredicted half the time
                    value = values[w] * F32(kept[w] > 0) if masked else values[w]
                    index = where[w]
                    r0[2 * w] = value * F32(index == 0)
                    r0[2 * w + 1] = value * F32(index == 1)
                    r1[2 * w] = value * F32(index == 2)
                    r1[2 * w + 1] = value * F32(index == 3)
                continue
            for w in range(w_out):
                value = values[w]
                if masked and kept[w] <= 0:
                    value = F32(0.0)
                for m in range(size):
                    for k in range(size):
                        flat[c, top + m * row_stride + w * size + k] = value if m * size + k == where[w] else F32(0.0)


@njit(**_JIT)
def _pooled_weight_grad(xp, dpooled, argmax, pooled, xs, dw, db):
    """dW and db of a conv block with one input channel, a 3×3 kernel, stride 1 and a 2×2 max-pool,
    from the pooled gradient itself: no unpooling.

    The gradient of pooled pixel (h, w) reaches one conv output, (2h + a, 2w + b) with a·2 + b its
    argmax k, and tap (m, n) of the kernel saw Xp[2h + a + m, 2w + b + n] there. So with the 16
    planes xs[dy·4 + dx][h, w] = Xp[2h + dy, 2w + dx], every tap's sum runs over the pooled pixels
    in order, four masked gradients (one per k, three of them 0) times four planes: long loops
    that vectorise, where unpooling wrote four numbers a pixel one at a time (conv block 1's
    backward took 2.4× as long that way).
    """
    c_out, h_pool, w_pool = dpooled.shape
    size = h_pool * w_pool
    for dy in range(4):
        for dx in range(4):
            plane = xs[dy * 4 + dx]
            for h in range(h_pool):
                row = xp[2 * h + dy]
                for w in range(w_pool):
                    plane[h * w_pool + w] = row[2 * w + dx]
    x00, x01, x02, x03 = xs[0], xs[1], xs[2], xs[3]
    x10, x11, x12, x13 = xs[4], xs[5], xs[6], xs[7]
    x20, x21, x22, x23 = xs[8], xs[9], xs[10], xs[11]
    x30, x31, x32, x33 = xs[12], xs[13], xs[14], xs[15]
    for co in range(c_out):
        d = dpooled[co].reshape(size)
        where = argmax[co].reshape(size)
        kept = pooled[co].reshape(size)
        t0 = t1 = t2 = t3 = t4 = t5 = t6 = t7 = t8 = total = F32(0.0)
        for i in range(size):
            g = d[i] * F32(kept[i] > 0)  # through the ReLU: a pooled 0 passed nothing on
            k = where[i]
            g0, g1, g2, g3 = g * F32(k == 0), g * F32(k == 1), g * F32(k == 2), g * F32(k == 3)
            total += g
            t0 += g0 * x00[i] + g1 * x01[i] + g2 * x10[i] + g3 * x11[i]
            t1 += g0 * x01[i] + g1 * x02[i] + g2 * x11[i] + g3 * x12[i]
            t2 += g0 * x02[i] + g1 * x03[i] + g2 * x12[i] + g3 * x13[i]
            t3 += g0 * x10[i] + g1 * x11[i] + g2 * x20[i] + g3 * x21[i]
            t4 += g0 * x11[i] + g1 * x12[i] + g2 * x21[i] + g3 * x22[i]
            t5 += g0 * x12[i] + g1 * x13[i] + g2 * x22[i] + g3 * x23[i]
            t6 += g0 * x20[i] + g1 * x21[i] + g2 * x30[i] + g3 * x31[i]
            t7 += g0 * x21[i] + g1 * x22[i] + g2 * x31[i] + g3 * x32[i]
            t8 += g0 * x22[i] + g1 * x23[i] + g2 * x32[i] + g3 * x33[i]
        _add_nine(dw[co], t0, t1, t2, t3, t4, t5, t6, t7, t8)
        db[co] += total


# ------------------------------------------------------------------------ a plain max-pool layer
@njit(parallel=True, **_JIT)
def _maxpool_forward(x, size, y, argmax):
    for n in prange(x.shape[0]):
        _pool_sample(x[n], size, y[n], argmax[n])


@njit(parallel=True, **_JIT)
def _maxpool_backward(dy, argmax, size, dx):
    for n in prange(dy.shape[0]):
        _unpool_sample(dy[n], argmax[n], size, dy[n], np.bool_(False), dx[n])
