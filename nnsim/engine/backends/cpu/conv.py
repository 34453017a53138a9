"""Convolutions over a batch: forward, the fused conv block (conv, bias, ReLU, max-pool), backward.

Each kernel here handles one chunk of the batch's samples with the chunk's own scratch buffers
(conv_plan.py), one sample at a time (conv_sample.py), and runs on all cores as a `_Chunked`.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from nnsim.engine.backends.cpu.conv_plan import (
    _NO_POOLING,
    Pooling,
    _backward_setup,
    _chunks,
    _forward_setup,
    _forward_weights,
    _gradients,
    _out_size,
)
from nnsim.engine.backends.cpu.conv_sample import (
    _col2im_sample,
    _conv_output_size,
    _conv_sample,
    _conv_weight_grad_direct,
    _im2col_hwc,
    _pad_sample,
    _pad_sample_hwc,
)
from nnsim.engine.backends.cpu.jit import _JIT, F32, _Chunked
from nnsim.engine.backends.cpu.matmul import _bias_relu, _gemm_rows
from nnsim.engine.backends.cpu.pool import _pool_bias_relu_sample, _pooled_weight_grad, _unpool_rows
from nnsim.engine.backends.cpu.transpose import _transpose_flat
from nnsim.engine.backends.rowmath import BIAS_ROWS


# ------------------------------------------------------------------------------------ forward
@njit(**_JIT)
def _conv_forward_chunk(chunk, x, weights, plan, relu, y, scratch):
    """y[n] = ReLU?(W ∗ x[n] + b) for a chunk's samples; x (N,Ci,H,W), W (Co,Ci,kh,kw), y (N,Co,Ho,Wo)."""
    n_size, c_out = x.shape[0], weights.plain.shape[0]
    chunks = scratch.xp.shape[0]
    xp, cols, wide = scratch.xp[chunk], scratch.cols[chunk], scratch.wide[chunk]
    stride, padding, direct, extract = plan.stride, plan.padding, plan.direct, np.bool_(True)
    for n in range(chunk * n_size // chunks, (chunk + 1) * n_size // chunks):
        yn = y[n].reshape(c_out, y.shape[2] * y.shape[3])
        _conv_sample(x[n], weights.plain, weights.hwc, stride, padding, direct, xp, cols, wide, yn, extract)
        _bias_relu(yn, weights.bias, np.int64(BIAS_ROWS), relu)


_conv_forward = _Chunked(_conv_forward_chunk)


@njit(**_JIT)
def _conv_block_forward_chunk(chunk, x, weights, plan, size, pooled, argmax, scratch, ybuf):
    """Conv + bias + ReLU + max-pool per sample of a chunk: the full-size maps never leave the cache.

    Where every value of a window is ≤ −b the pooled value is 0 and its argmax may differ from the
    reference's; no gradient flows there, so the results agree.
    """
    n_size = x.shape[0]
    chunks = scratch.xp.shape[0]
    xp, cols, wide = scratch.xp[chunk], scratch.cols[chunk], scratch.wide[chunk]
    yn = ybuf[chunk]
    flat = yn.reshape(yn.shape[0], yn.shape[1] * yn.shape[2])
    stride, padding, direct = plan
    for n in range(chunk * n_size // chunks, (chunk + 1) * n_size // chunks):
        # extract=False as `not direct` (the same here): a run-time value, see _input_grad_sample
        _conv_sample(x[n], weights.plain, weights.hwc, stride, padding, direct, xp, cols, wide, flat, not direct)
        if direct:
            _pool_bias_relu_sample(wide, xp.shape[2], size, weights.bias, pooled[n], argmax[n])
        else:
            _pool_bias_relu_sample(flat, yn.shape[2], size, weights.bias, pooled[n], argmax[n])


_conv_block_forward = _Chunked(_conv_block_forward_chunk)


# ------------------------------------------------------------------------------------ backward
@njit(inline="always", **_JIT)  # (one caller, _conv_backward_chunk: a level less to compile)
def _weight_grad_sample(xn, gn, kh, kw, plan, chunk, scratch, parts, ready):
    """db += Σ_p g;  dW[co, (m,k,ci)] += Σ_p g[co,p] · cols[p,(m,k,ci)] for one sample, from
    gn = dL/d(conv output) as (Co, Ho·Wo): by the direct route for stride 1, else by im2col."""
    c_out = gn.shape[0]
    dw, db, xph = parts.dw[chunk], parts.db[chunk], scratch.xph[chunk]
    h_out = _conv_output_size(xn.shape[1], kh, plan.stride, plan.padding)
    w_out = _conv_output_size(xn.shape[2], kw, plan.stride, plan.padding)
    if plan.direct_dw == 1:  # on xph as (Ci, Hp, Wp)
        _pad_sample(xn, plan.padding, xph)
        flat = xph.reshape(xph.shape[0], xph.shape[1] * xph.shape[2])
        _conv_weight_grad_direct(flat, xph.shape[2], kh, kw, gn, h_out, w_out, scratch.gwide[chunk], dw, db, ready)
        return
    _pad_sample_hwc(xn, plan.padding, xph)
    for co in range(c_out):
        total = F32(0.0)
        for p in range(h_out * w_out):
            total += gn[co, p]
        db[co] += total
    cols, cols_t = scratch.cols[chunk], scratch.cols_t[chunk]
    _im2col_hwc(xph, kh, kw, plan.stride, h_out, w_out, cols)
    rows, width = cols.shape
    zero = np.int64(0)
    _transpose_flat(cols.reshape(cols.size), zero, width, cols_t.reshape(cols_t.size), zero, rows, rows, width)
    for i0 in range(0, c_out, 4):
        _gemm_rows(gn, cols_t, dw, i0, min(4, c_out - i0), np.bool_(True))


@njit(inline="always", **_JIT)  # (one caller, _conv_backward_chunk: a level less to compile)
def _input_grad_sample(xn, gn, weights, plan, chunk, scratch, dxn):
    """dxn (Ci, H, W) from gn = dL/d(conv output) as (Co, Ho·Wo): for dx_mode 1 (stride 1) as the
    full correlation of g with the kernel turned 180°, for dx_mode 2 by unrolled gradients added
    back onto the pixels."""
    c_out, c_in = gn.shape[0], xn.shape[0]
    kh, kw = weights.flipped.shape[2], weights.flipped.shape[3]
    h_out = _conv_output_size(xn.shape[1], kh, plan.stride, plan.padding)
    w_out = _conv_output_size(xn.shape[2], kw, plan.stride, plan.padding)
    if plan.dx_mode == 1:
        g3 = gn.reshape(c_out, h_out, w_out)
        flip = scratch.flipped
        # stride (1 here) and extract (true here) as run-time values: a literal argument would
        # make Numba compile another _conv_sample, seconds of a cold start
        _conv_sample(
            g3,
            weights.flipped,
            weights.flipped_hwc,
            plan.stride,
            kh - 1 - plan.padding,
            plan.flip_direct == 1,
            flip.xp[chunk],
            flip.cols[chunk],
            flip.wide[chunk],
            dxn.reshape(c_in, xn.shape[1] * xn.shape[2]),
            plan.dx_mode == 1,
        )
    elif plan.dx_mode == 2:
        plane, g_t, dcols = h_out * w_out, scratch.g_t[chunk], scratch.dcols[chunk]
        for co in range(c_out):
            for p in range(plane):
                g_t[p, co] = gn[co, p]
        for i0 in range(0, plane, 4):
            _gemm_rows(g_t, weights.transposed, dcols, i0, min(4, plane - i0), np.bool_(False))
        _col2im_sample(dcols, kh, kw, plan.stride, plan.padding, h_out, w_out, dxn)


@njit(**_JIT)
def _conv_backward_chunk(chunk, x, g, pooling, weights, plan, parts, dx, scratch):
    """One chunk of samples' gradients, their dW and db summed into the chunk's parts.

    g is dL/d(conv output); or, with plan.unpool, dL/d(pooled output) of a conv block, which is
    first spread back over each sample's windows (and through its ReLU) in cache.
    """
    n_size = x.shape[0]
    chunks = scratch.xph.shape[0]
    first, stop = chunk * n_size // chunks, (chunk + 1) * n_size // chunks
    parts.dw[chunk] = F32(0.0)
    parts.db[chunk] = F32(0.0)
    gb = scratch.gbuf[chunk % scratch.gbuf.shape[0]]  # (a placeholder of one when not unpooling)
    if plan.pooled_dw == 1:  # dW straight from the pooled gradient, gb holding the input's 16 planes
        xs, xph = gb.reshape(16, gb.shape[1] * gb.shape[2]), scratch.xph[chunk]
        dw, db = parts.dw[chunk], parts.db[chunk]
        for n in range(first, stop):
            _pad_sample(x[n], plan.padding, xph)
            _pooled_weight_grad(xph[0], g[n], pooling.argmax[n], pooling.pooled[n], xs, dw, db)
        return
    # Unpooled gradients go straight into the direct weight-gradient route's wide rows when
    # nothing else needs them, else into gbuf. What no window covers is zeroed once here:
    # the columns past each wide row's end, or the rows and columns that pooling dropped.
    unpool = plan.unpool == 1
    wide_rows = unpool and plan.direct_dw == 1 and plan.dx_mode == 0
    target = scratch.gwide[chunk] if wide_rows else gb.reshape(gb.shape[0], gb.shape[1] * gb.shape[2])
    row_stride = scratch.xph.shape[3] if wide_rows else gb.shape[2]
    if unpool:
        target[:] = F32(0.0)
    kh, kw = weights.flipped.shape[2], weights.flipped.shape[3]
    for n in range(first, stop):
        gn3 = gb if unpool else g[n]  # (on the wide-rows route gb is not read: g is in gwide)
        if unpool:
            _unpool_rows(g[n], pooling.argmax[n], pooling.size, pooling.pooled[n], np.bool_(True), target, row_stride)
        gn = gn3.reshape(gn3.shape[0], gn3.shape[1] * gn3.shape[2])
        _weight_grad_sample(x[n], gn, kh, kw, plan, chunk, scratch, parts, wide_rows)
        _input_grad_sample(x[n], gn, weights, plan, chunk, scratch, dx[min(n, dx.shape[0] - 1)])


_conv_backward = _Chunked(_conv_backward_chunk)


@njit(parallel=True, **_JIT)
def _relu_mask(dy, y, out):
    """out = dy where y > 0, else 0: the gradient through a fused ReLU."""
    flat_dy, flat_y, flat_out = dy.reshape(-1), y.reshape(-1), out.reshape(-1)
    for i in prange(flat_out.size):
        flat_out[i] = flat_dy[i] if flat_y[i] > 0 else F32(0.0)


# ------------------------------------------------------------------------------------ from Python
def conv2d_forward(x, w, b, stride, padding, relu):
    """ReLU?(W ∗ x + b) for float32 x (N, Ci, H, W), w (Co, Ci, kh, kw), b (Co,)."""
    x, w = np.ascontiguousarray(x, dtype=F32), np.ascontiguousarray(w, dtype=F32)
    n, c_in, height, width = x.shape
    c_out, _, kh, kw = w.shape
    y = np.empty((n, c_out, _out_size(height, kh, stride, padding), _out_size(width, kw, stride, padding)), dtype=F32)
    plan, scratch = _forward_setup(_chunks(n), c_in, height, width, c_out, kh, kw, stride, padding)
    _conv_forward(len(scratch.xp), x, _forward_weights(w, b), plan, relu, y, scratch)
    return y


def conv2d_backward(x, w, dy, stride, padding, relu_output, input_grad):
    """(dx, dW, db) of a convolution, through its fused ReLU when relu_output is given."""
    g = np.ascontiguousarray(dy, dtype=F32)
    if relu_output is not None:
        masked = np.empty_like(g)
        _relu_mask(g, relu_output, masked)
        g = masked
    x, w = np.ascontiguousarray(x, dtype=F32), np.ascontiguousarray(w, dtype=F32)
    plan, weights, parts, dx, scratch = _backward_setup(x.shape, w, stride, padding, input_grad)
    _conv_backward(len(parts.dw), x, g, _NO_POOLING, weights, plan, parts, dx, scratch)
    return _gradients(parts, w, dx, input_grad)


def conv_block_forward(x, w, b, stride, padding, pool):
    """(pooled, argmax) of max-pool(ReLU(W ∗ x + b)), pool×pool windows."""
    x, w = np.ascontiguousarray(x, dtype=F32), np.ascontiguousarray(w, dtype=F32)
    n, c_in, height, width = x.shape
    c_out, _, kh, kw = w.shape
    h_out, w_out = _out_size(height, kh, stride, padding), _out_size(width, kw, stride, padding)
    chunks = _chunks(n)
    pooled = np.empty((n, c_out, h_out // pool, w_out // pool), dtype=F32)
    argmax = np.empty(pooled.shape, dtype=np.int8)
    plan, scratch = _forward_setup(chunks, c_in, height, width, c_out, kh, kw, stride, padding)
    ybuf = np.empty((chunks, c_out, h_out, w_out), dtype=F32)
    _conv_block_forward(chunks, x, _forward_weights(w, b), plan, pool, pooled, argmax, scratch, ybuf)
    return pooled, argmax


def conv_block_backward(x, w, dpooled, pooled, argmax, stride, padding, pool, input_grad):
    """(dx, dW, db) of a conv block, from the gradient of its pooled output."""
    x, w = np.ascontiguousarray(x, dtype=F32), np.ascontiguousarray(w, dtype=F32)
    pooling = Pooling(pooled, argmax, pool)
    plan, weights, parts, dx, scratch = _backward_setup(x.shape, w, stride, padding, input_grad, pooling)
    dpooled = np.ascontiguousarray(dpooled, dtype=F32)
    _conv_backward(len(parts.dw), x, dpooled, pooling, weights, plan, parts, dx, scratch)
    return _gradients(parts, w, dx, input_grad)
