"""A convolution of one sample, and its weight gradient, by the im2col or the direct route.

A convolution is a matrix product once the input is unrolled: row p of `cols` holds the pixels
under the kernel when it sits at output position p (im2col). Unrolling a whole batch writes
megabytes, so these kernels work one sample at a time in small scratch buffers that stay in
cache; each of a fixed number of chunks of the batch has its own. Each sample is first copied
into a zero-bordered buffer, so that unrolling needs no bounds checks.

When the summed axis is tiny (the first layer: 1 channel × 3 × 3 = 9), dot products are too
short to pay; `_conv_direct_sample` instead adds each kernel tap times a shifted row of the
padded image onto the output, long contiguous runs that vectorise well.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from nnsim.engine.backends import rowmath
from nnsim.engine.backends.cpu.jit import _JIT, F32
from nnsim.engine.backends.cpu.matmul import _gemm_rows

DIRECT_BELOW = 32  # Ci·kh·kw under which the direct kernel wins (measured by `nnsim bench`)
_conv_output_size = njit(**_JIT)(rowmath.conv_output_size)


@njit(inline="always", **_JIT)
def _copy_run(src, dst):
    """dst[:] = src for two 1-D runs of the same length (0-based, so that the copy vectorises)."""
    for i in range(dst.size):
        dst[i] = src[i]


@njit(inline="always", **_JIT)
def _nine_taps(row, width, length):
    """The nine runs of `length` numbers under a 3×3 kernel's taps in a flattened padded image
    `width` wide: tap (m, k) starts at m·width + k."""
    return (
        row[0:length],
        row[1 : 1 + length],
        row[2 : 2 + length],
        row[width : width + length],
        row[width + 1 : width + 1 + length],
        row[width + 2 : width + 2 + length],
        row[2 * width : 2 * width + length],
        row[2 * width + 1 : 2 * width + 1 + length],
        row[2 * width + 2 : 2 * width + 2 + length],
    )


@njit(**_JIT)
def _pad_sample(x, padding, xp):
    """xp = x with a border of `padding` zeros; x (C, H, W), xp (C, H+2p, W+2p)."""
    channels, height, width = x.shape
    if padding > 0:  # only the border needs zeros: the inside is written below
        xp[:, :padding] = F32(0.0)
        xp[:, height + padding :] = F32(0.0)
        xp[:, :, :padding] = F32(0.0)
        xp[:, :, width + padding :] = F32(0.0)
    for c in range(channels):
        for h in range(height):
            _copy_run(x[c, h], xp[c, h + padding, padding : padding + width])


@njit(**_JIT)
def _pad_sample_hwc(x, padding, xph):
    """xph = x with a border of `padding` zeros, channels last: x (C, H, W), xph (H+2p, W+2p, C)."""
    channels, height, width = x.shape
    if padding > 0:  # only the border needs zeros: the inside is written below
        xph[:padding] = F32(0.0)
        xph[height + padding :] = F32(0.0)
        xph[:, :padding] = F32(0.0)
        xph[:, width + padding :] = F32(0.0)
    if channels == 1:  # one channel: whole rows are contiguous on both sides
        plane = xph.reshape(xph.shape[0], xph.shape[1])
        for h in range(height):
            _copy_run(x[0, h], plane[h + padding, padding : padding + width])
        return
    for h in range(height):  # each output run (one pixel's channels) written contiguously
        for w in range(width):
            pixel = xph[h + padding, w + padding]
            for c in range(channels):
                pixel[c] = x[c, h, w]


@njit(**_JIT)
def _im2col_hwc(xph, kh, kw, stride, h_out, w_out, cols):
    """cols[p, (m,k,ci)] = Xp[h·s+m, w·s+k, ci] for p = h·w_out + w.

    Channels last, the kw·C numbers under one kernel row are one contiguous run: a plain copy.
    """
    channels = xph.shape[2]
    run = kw * channels
    rows = xph.reshape(xph.shape[0], -1)
    for h in range(h_out):
        for w in range(w_out):
            start = w * stride * channels
            target = cols[h * w_out + w]
            for m in range(kh):
                source = rows[h * stride + m, start : start + run]
                piece = target[m * run : (m + 1) * run]
                for i in range(run):
                    piece[i] = source[i]


@njit(**_JIT)
def _conv_direct_sample(xp, w, wide):
    """Stride-1 convolution as shifted rows: wide[co, h·Wp + w] = Σ W[co,ci,m,k] · Xp[ci, h+m, w+k].

    Rows are Wp (the padded width) long, so every tap reads one contiguous run of the flattened
    padded image; the last kw−1 columns of each output row are junk and are dropped by the caller.
    """
    c_out, c_in, kh, kw = w.shape
    width = xp.shape[2]
    flat = xp.reshape(c_in, -1)
    length = wide.shape[1]
    for co in range(c_out):
        out = wide[co]
        out[:] = F32(0.0)
        for ci in range(c_in):
            if kh == 3 and kw == 3:
                s0, s1, s2, s3, s4, s5, s6, s7, s8 = _nine_taps(flat[ci], width, length)
                a0, a1, a2 = w[co, ci, 0, 0], w[co, ci, 0, 1], w[co, ci, 0, 2]
                b0, b1, b2 = w[co, ci, 1, 0], w[co, ci, 1, 1], w[co, ci, 1, 2]
                c0, c1, c2 = w[co, ci, 2, 0], w[co, ci, 2, 1], w[co, ci, 2, 2]
                for q in range(length):
                    out[q] += (
                        a0 * s0[q]
                        + a1 * s1[q]
                        + a2 * s2[q]
                        + b0 * s3[q]
                        + b1 * s4[q]
                        + b2 * s5[q]
                        + c0 * s6[q]
                        + c1 * s7[q]
                        + c2 * s8[q]
                    )
                continue
            for m in range(kh):
                k = 0
                while k + 3 <= kw:  # three taps of a kernel row per pass over the output
                    w0, w1, w2 = w[co, ci, m, k], w[co, ci, m, k + 1], w[co, ci, m, k + 2]
                    start = m * width + k
                    s0 = flat[ci, start : start + length]
                    s1 = flat[ci, start + 1 : start + 1 + length]
                    s2 = flat[ci, start + 2 : start + 2 + length]
                    for q in range(length):
                        out[q] += w0 * s0[q] + w1 * s1[q] + w2 * s2[q]
                    k += 3
                for tap in range(k, kw):
                    weight = w[co, ci, m, tap]
                    source = flat[ci, m * width + tap : m * width + tap + length]
                    for q in range(length):
                        out[q] += weight * source[q]


@njit(inline="always", **_JIT)
def _weight_grad_four_rows(flat, width, gwide, co, dw):
    """dW[co:co+4, (m, k, ci)] += Σ_q g[co+r, q] · Xp[ci, m·width + k + q] for a 3×3 kernel: each
    pass reads one kernel row's three shifted runs and four rows of g for twelve sums, which
    keeps the loads per multiply-add near a blocked matrix product's."""
    c_in, length = flat.shape[0], gwide.shape[1]
    g0, g1, g2, g3 = gwide[co], gwide[co + 1], gwide[co + 2], gwide[co + 3]
    for ci in range(c_in):
        for m in range(3):
            start = m * width
            x0 = flat[ci, start : start + length]
            x1 = flat[ci, start + 1 : start + 1 + length]
            x2 = flat[ci, start + 2 : start + 2 + length]
            a0 = a1 = a2 = b0 = b1 = b2 = c0 = c1 = c2 = d0 = d1 = d2 = F32(0.0)
            for q in range(length):
                u0, u1, u2 = x0[q], x1[q], x2[q]
                h = g0[q]
                a0 += h * u0
                a1 += h * u1
                a2 += h * u2
                h = g1[q]
                b0 += h * u0
                b1 += h * u1
                b2 += h * u2
                h = g2[q]
                c0 += h * u0
                c1 += h * u1
                c2 += h * u2
                h = g3[q]
                d0 += h * u0
                d1 += h * u1
                d2 += h * u2
            col = 3 * m * c_in + ci  # tap (m, k) of channel ci is column (3m + k)·Ci + ci
            dw[co, col] += a0
            dw[co, col + c_in] += a1
            dw[co, col + 2 * c_in] += a2
            dw[co + 1, col] += b0
            dw[co + 1, col + c_in] += b1
            dw[co + 1, col + 2 * c_in] += b2
            dw[co + 2, col] += c0
            dw[co + 2, col + c_in] += c1
            dw[co + 2, col + 2 * c_in] += c2
            dw[co + 3, col] += d0
            dw[co + 3, col + c_in] += d1
            dw[co + 3, col + 2 * c_in] += d2


@njit(inline="always", **_JIT)
def _add_nine(taps, t0, t1, t2, t3, t4, t5, t6, t7, t8):
    """taps[0…8] += the nine running sums of a 3×3 kernel's taps (kept as scalars while summing)."""
    taps[0] += t0
    taps[1] += t1
    taps[2] += t2
    taps[3] += t3
    taps[4] += t4
    taps[5] += t5
    taps[6] += t6
    taps[7] += t7
    taps[8] += t8


@njit(**_JIT)
def _conv_weight_grad_direct(flat, width, kh, kw, gn, h_out, w_out, gwide, dw, db, ready):
    """dW += Σ_p g[co,p] · Xp[ci, h+m, w+k] and db += Σ_p g[co,p] for one sample, stride 1.

    The direct route's transpose: g is laid out in rows as wide as the padded image (the extra
    columns 0), so each tap's sum is one dot product of two contiguous runs; all nine taps of a
    3×3 kernel (and the bias) come from one pass per input channel. flat is Xp as (Ci, Hp·Wp);
    dW's columns are (m, k, ci), as the im2col route's.
    """
    c_out, length = gwide.shape
    c_in = flat.shape[0]
    for co in range(0 if ready else c_out):  # unless the caller wrote g there already
        row = gwide[co]
        row[:] = F32(0.0)
        for h in range(h_out):
            _copy_run(gn[co, h * w_out : (h + 1) * w_out], row[h * width : h * width + w_out])
    first = 0
    if c_in > 1 and kh == 3 and kw == 3:  # four output channels at a time: 12 sums per pass
        first = c_out - c_out % 4
        for co in range(first):
            total = F32(0.0)
            for q in range(length):
                total += gwide[co, q]
            db[co] += total
        for co in range(0, first, 4):
            _weight_grad_four_rows(flat, width, gwide, co, dw)
    for co in range(first, c_out):
        g = gwide[co]
        for ci in range(c_in):
            if kh == 3 and kw == 3:
                s0, s1, s2, s3, s4, s5, s6, s7, s8 = _nine_taps(flat[ci], width, length)
                t0 = t1 = t2 = t3 = t4 = t5 = t6 = t7 = t8 = total = F32(0.0)
                for q in range(length):
                    gq = g[q]
                    total += gq
                    t0 += gq * s0[q]
                    t1 += gq * s1[q]
                    t2 += gq * s2[q]
                    t3 += gq * s3[q]
                    t4 += gq * s4[q]
                    t5 += gq * s5[q]
                    t6 += gq * s6[q]
                    t7 += gq * s7[q]
                    t8 += gq * s8[q]
                _add_nine(dw[co, ci::c_in], t0, t1, t2, t3, t4, t5, t6, t7, t8)
                if ci == 0:  # every channel's pass sums g too; one of them is kept
                    db[co] += total
                continue
            if ci == 0:
                total = F32(0.0)
                for q in range(length):
                    total += g[q]
                db[co] += total
            for m in range(kh):
                for k in range(kw):
                    source = flat[ci, m * width + k : m * width + k + length]
                    total = F32(0.0)
                    for q in range(length):
                        total += g[q] * source[q]
                    dw[co, (m * kw + k) * c_in + ci] += total


@njit(**_JIT)
def _conv_sample(xn, w, w_hwc, stride, padding, direct, xp, cols, wide, out, extract=True):
    """out (Co, Ho·Wo) = W ∗ xn for one sample, without bias, by the direct or the im2col route.

    With extract=False the direct route leaves its result in `wide` (rows Wp long) instead.
    """
    c_out, _, kh, kw = w.shape
    h_out = _conv_output_size(xn.shape[1], kh, stride, padding)
    w_out = _conv_output_size(xn.shape[2], kw, stride, padding)
    if direct:
        _pad_sample(xn, padding, xp)
        _conv_direct_sample(xp, w, wide)
        if not extract:
            return
        width = xp.shape[2]
        for co in range(c_out):
            for h in range(h_out):
                for col in range(w_out):
                    out[co, h * w_out + col] = wide[co, h * width + col]
    else:
        _pad_sample_hwc(xn, padding, xp)
        _im2col_hwc(xp, kh, kw, stride, h_out, w_out, cols)
        for i0 in range(0, c_out, 4):
            _gemm_rows(w_hwc, cols, out, i0, min(4, c_out - i0), np.bool_(False))


@njit(**_JIT)
def _col2im_sample(dcols, kh, kw, stride, padding, h_out, w_out, dx):
    """Adds each unrolled gradient back onto the input pixel it was copied from."""
    c_in, height, width = dx.shape
    dx[:] = F32(0.0)
    for h in range(h_out):
        for w in range(w_out):
            p = h * w_out + w
            col = 0
            for ci in range(c_in):
                for m in range(kh):
                    row = h * stride + m - padding
                    for k in range(kw):
                        column = w * stride + k - padding
                        if 0 <= row < height and 0 <= column < width:
                            dx[ci, row, column] += dcols[p, col]
                        col += 1
