"""What a convolution's kernels are given: its plan and its buffers, named, made once a call.

A batch is cut into chunks (`_chunks`), one per thread, and every scratch buffer has one slice
per chunk along its first axis. Buffers a route does not use are placeholders of one number, so
that every call has the same types and the kernels compile once. The kernels take these
NamedTuples as they are (see jit._Chunked).
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from nnsim.engine.backends import rowmath
from nnsim.engine.backends.cpu.conv_sample import DIRECT_BELOW
from nnsim.engine.backends.cpu.jit import F32
from nnsim.engine.backends.cpu.transpose import _t

_out_size = rowmath.conv_output_size  # the formula the kernels compile, called from Python


class ForwardPlan(NamedTuple):
    stride: int
    padding: int
    direct: bool  # the direct route (stride 1, a short summed axis), else im2col


class ForwardWeights(NamedTuple):
    plain: np.ndarray  # (Co, Ci, kh, kw)
    hwc: np.ndarray  # (Co, kh·kw·Ci): the order _im2col_hwc unrolls pixels in
    bias: np.ndarray  # (Co,)


class ForwardScratch(NamedTuple):
    """One slice per chunk of each (unused ones are placeholders)."""

    xp: np.ndarray  # the padded sample: (Ci, Hp, Wp) on the direct route, (Hp, Wp, Ci) on im2col
    cols: np.ndarray  # im2col's rows (Ho·Wo, Ci·kh·kw)
    wide: np.ndarray  # the direct route's output rows, Wp long: (Co, (Ho − 1)·Wp + Wo)


class BackwardPlan(NamedTuple):
    """How a backward pass runs; all ints, so that it travels as one typed tuple."""

    stride: int
    padding: int
    flip_direct: int  # 1: dX by the direct route of the flipped kernel (dx_mode 1)
    dx_mode: int  # 0 no dX; 1 dY ∗ the kernel turned 180° (stride 1); 2 unrolled gradients onto pixels
    direct_dw: int  # 1: dW by the direct route (stride 1), else by im2col
    unpool: int  # 1: the gradient given is a conv block's, of its pooled output
    pooled_dw: int  # 1: a conv block's dW straight from the pooled gradient (see pool._pooled_weight_grad)


class FlippedWeights(NamedTuple):
    flipped: np.ndarray  # (Ci, Co, kh, kw): the kernel turned 180°, channels swapped
    flipped_hwc: np.ndarray  # (Ci, kh·kw·Co)
    transposed: np.ndarray  # (Ci·kh·kw, Co): the kernel as (Co, K), transposed, for dx_mode 2


class Pooling(NamedTuple):
    """A conv block's max-pool, for its backward pass (placeholders for a plain convolution)."""

    pooled: np.ndarray  # (N, Co, Ho/s, Wo/s)
    argmax: np.ndarray  # int8, where in its window each maximum was
    size: int


class GradientParts(NamedTuple):
    """Each chunk's sums, added up at the end in a fixed order (so results repeat)."""

    dw: np.ndarray  # (chunks, Co, kh·kw·Ci): columns (m, k, ci)
    db: np.ndarray  # (chunks, Co)


class BackwardScratch(NamedTuple):
    """One slice per chunk of each (unused ones are placeholders)."""

    xph: np.ndarray  # the padded sample: (Ci, Hp, Wp) for direct dW, else (Hp, Wp, Ci)
    cols: np.ndarray  # im2col's rows (Ho·Wo, K)
    cols_t: np.ndarray  # and transposed (K, Ho·Wo)
    flipped: ForwardScratch  # the flipped kernel's forward pass (dx_mode 1)
    g_t: np.ndarray  # the gradient transposed (Ho·Wo, Co), for dx_mode 2
    dcols: np.ndarray  # unrolled input gradients (Ho·Wo, K), for dx_mode 2
    gwide: np.ndarray  # the gradient in rows Wp long (Co, (Ho − 1)·Wp + Wo), for direct dW
    gbuf: np.ndarray  # a conv block's unpooled gradients (Co, Ho, Wo), or the input's 16 planes


_NO_POOLING = Pooling(np.zeros((1, 1, 1, 1), dtype=F32), np.zeros((1, 1, 1, 1), dtype=np.int8), 1)


def _chunks(batch: int) -> int:
    """How many pieces a batch is cut into (each piece's weight gradient is summed apart): fixed by
    the batch and the process's thread count, NUMBA_NUM_THREADS, so results repeat — not by the
    threads a training sharing the machine runs on now (backends/sharing.py), which come and go."""
    return max(1, min(batch, numba.config.NUMBA_NUM_THREADS))


def _placeholder(chunks: int, dims: int = 3) -> np.ndarray:
    return np.empty((chunks, *(1,) * (dims - 1)), dtype=F32)


def _forward_setup(chunks, c_in, height, width, c_out, kh, kw, stride, padding):
    """The plan and scratch buffers of one convolution's forward pass."""
    direct = stride == 1 and c_in * kh * kw < DIRECT_BELOW
    hp, wp = height + 2 * padding, width + 2 * padding
    h_out, w_out = _out_size(height, kh, stride, padding), _out_size(width, kw, stride, padding)
    xp = np.empty((chunks, c_in, hp, wp) if direct else (chunks, hp, wp, c_in), dtype=F32)
    cols = _placeholder(chunks) if direct else np.empty((chunks, h_out * w_out, c_in * kh * kw), dtype=F32)
    wide = np.empty((chunks, c_out, (h_out - 1) * wp + w_out), dtype=F32) if direct else _placeholder(chunks)
    return ForwardPlan(stride, padding, direct), ForwardScratch(xp, cols, wide)


def _forward_weights(w: np.ndarray, b) -> ForwardWeights:
    return ForwardWeights(w, _weights_hwc(w), np.ascontiguousarray(b, dtype=F32))


def _backward_setup(x_shape, w, stride, padding, input_grad, pooling=None):
    """Plan, weights, per-chunk dW/db, dx and scratch buffers for a convolution's backward pass;
    `pooling` for a conv block's (its pooled gradient then comes in, not the conv output's)."""
    n, c_in, height, width = x_shape
    c_out, _, kh, kw = w.shape
    h_out, w_out = _out_size(height, kh, stride, padding), _out_size(width, kw, stride, padding)
    plane, k_size, chunks = h_out * w_out, c_in * kh * kw, _chunks(n)
    mode = 0 if not input_grad else (1 if stride == 1 and padding <= kh - 1 and kh == kw else 2)
    direct_dw = stride == 1 and (c_in == 1 or kh == kw == 3)
    pooled_dw = pooling is not None and not input_grad and c_in == 1 and kh == kw == 3 and stride == 1
    pooled_dw = pooled_dw and pooling.size == 2
    flipped = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    weights = FlippedWeights(flipped, _weights_hwc(flipped), _t(w.reshape(c_out, k_size)))
    if mode == 1:  # dX = dY ∗ (the kernel turned 180°, channels swapped), padded by kh − 1 − p
        flip_plan, flip_scratch = _forward_setup(chunks, c_out, h_out, w_out, c_in, kh, kw, 1, kh - 1 - padding)
        flip_direct = flip_plan.direct
    else:
        flip_direct, flip_scratch = False, ForwardScratch(_placeholder(chunks, 4), *(_placeholder(chunks),) * 2)
    unpool = pooling is not None
    plan = BackwardPlan(stride, padding, int(flip_direct), mode, int(direct_dw), int(unpool), int(pooled_dw))
    parts = GradientParts(np.empty((chunks, c_out, k_size), dtype=F32), np.empty((chunks, c_out), dtype=F32))
    dx = np.empty(x_shape if input_grad else (1, c_in, height, width), dtype=F32)
    hp, wp = height + 2 * padding, width + 2 * padding
    if pooled_dw:  # the input's 16 planes (see pool._pooled_weight_grad)
        gbuf = np.empty((chunks, 16, *pooling.pooled.shape[2:]), dtype=F32)
    else:
        gbuf = np.empty((chunks, c_out, h_out, w_out), dtype=F32) if pooling is not None else _NO_POOLING.pooled
    scratch = BackwardScratch(
        np.empty((chunks, c_in, hp, wp) if direct_dw else (chunks, hp, wp, c_in), dtype=F32),
        _placeholder(chunks) if direct_dw else np.empty((chunks, plane, k_size), dtype=F32),
        _placeholder(chunks) if direct_dw else np.empty((chunks, k_size, plane), dtype=F32),
        flip_scratch,
        np.empty((chunks, plane, c_out), dtype=F32) if mode == 2 else _placeholder(chunks),
        np.empty((chunks, plane, k_size), dtype=F32) if mode == 2 else _placeholder(chunks),
        np.empty((chunks, c_out, (h_out - 1) * wp + w_out), dtype=F32) if direct_dw else _placeholder(chunks),
        gbuf,
    )
    return plan, weights, parts, dx, scratch


def _gradients(parts: GradientParts, w, dx, input_grad):
    """(dx, dW, db) from the per-chunk sums; dW's columns come back from (m, k, ci) to (ci, m, k)."""
    c_out, c_in, kh, kw = w.shape
    dw = parts.dw.sum(axis=0).reshape(c_out, kh, kw, c_in).transpose(0, 3, 1, 2)
    return (dx if input_grad else None), np.ascontiguousarray(dw), parts.db.sum(axis=0)


def _weights_hwc(w: np.ndarray) -> np.ndarray:
    """(Co, Ci, kh, kw) -> (Co, kh·kw·Ci): the weights in the order _im2col_hwc unrolls pixels."""
    return np.ascontiguousarray(w.transpose(0, 2, 3, 1)).reshape(w.shape[0], -1)
