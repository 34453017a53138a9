"""The CPU backend: Numba-compiled kernels, parallel over the cores, for float32 training.

Most of the arithmetic of our networks is one operation: a matrix product. Here it is one kernel,
``_gemm_nt``, C = A·Bᵀ with both operands contiguous along the summed axis, computed 4×4 outputs
at a time so that each loaded number is used four times; LLVM turns its inner loop into SIMD
instructions. Linear layers, convolutions (through im2col) and batched matmuls all call it.
Attention, layer norm, GELU, max-pool and the optimizer updates have fused kernels of their own.

Every kernel is proven equal to the reference backend by tests/engine/test_backend_parity.py.
Numba is imported when this backend is first asked for, never at app start.
"""

from __future__ import annotations

import ctypes
import math
import os
import subprocess
import sys
import time

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba._dispatcher import compute_fingerprint  # (what Numba's own dispatcher keys its overloads by)
from numba.core import cgutils
from numba.extending import intrinsic

from nnsim.engine.backends import rowmath
from nnsim.engine.backends.reference import ReferenceBackend
from nnsim.engine.backends.warm import cache_folder

F32 = np.float32
# error_model "numpy": x / 0 gives inf rather than raising, so a loop that divides has no check
# (and no branch) in it, and vectorises: GELU's rational tanh ran 13× faster for it. Cached where a
# folder for Numba's cache is writable (not so in some system-wide installs): in memory elsewhere.
_JIT = {"cache": cache_folder(__file__) is not None, "nogil": True, "fastmath": True, "error_model": "numpy"}
_BIAS_NONE, _BIAS_ROWS, _BIAS_COLS = 0, 1, 2


# ------------------------------------------------------------------------ parallel by address
@intrinsic
def _call_at(typingctx, address, *args):
    """Calls the compiled Numba function at `address` with `args`; it returns nothing."""
    packed = types.StarArgTuple.from_types(args)

    def codegen(context, builder, signature, values):
        callee = builder.inttoptr(values[0], context.call_conv.get_function_type(types.void, args).as_pointer())
        context.call_conv.call_function(builder, callee, types.void, args, cgutils.unpack_tuple(builder, values[1]))
        return context.get_dummy_value()

    return types.void(address, packed), codegen


@njit(parallel=True, **_JIT)
def _run_chunks(address, chunks, *args):
    for chunk in prange(chunks):
        _call_at(address, np.int64(chunk), *args)


class _Chunked:
    """A serial kernel, kernel(chunk, *args), run for every chunk = 0 … chunks − 1 on all cores.

    The parallel loop calls the kernel through its address. A loop that calls a kernel by name
    links the kernel's whole call tree into its own code, and LLVM optimises and compiles all of
    it again — twice for a parallel loop, for its body and for the function around it: for the
    convolutions that was 9 s of a 39 s cold start. Attention keeps its own parallel loops: Numba
    tells LLVM that a parallel loop body's arrays do not overlap, which a kernel compiled on its
    own is not told, and attention's inline loops ran 9–45 % slower without it.
    """

    def __init__(self, kernel):
        self.kernel = kernel
        self._addresses = {}  # one per kind of arguments (fingerprinted as Numba's dispatcher does)

    def __call__(self, chunks: int, *args) -> None:
        key = compute_fingerprint(args)
        address = self._addresses.get(key)
        if address is None:
            compiled = self.kernel.get_compile_result(types.void(types.int64, *map(numba.typeof, args)))
            address = self._addresses[key] = compiled.library.get_pointer_to_function(compiled.fndesc.llvm_func_name)
        _run_chunks(address, chunks, *args)


# ----------------------------------------------------------------------------------- matmul
@njit(**_JIT)
def _gemm_rows(a, b, c, i0, rows, accumulate):
    """Rows i0 … i0+rows of c = a·bᵀ (or c += a·bᵀ) for 2-D a (M,K), b (N,K), c (M,N).

    Four rows and four columns at a time: sixteen running sums stay in registers while k runs
    over both operands' contiguous rows, which LLVM turns into SIMD multiply-adds.
    """
    n_size = b.shape[0]
    k_size = a.shape[1]
    j0 = 0
    if rows == 4:
        while j0 + 4 <= n_size:
            if accumulate:
                c00 = c[i0, j0]
                c01 = c[i0, j0 + 1]
                c02 = c[i0, j0 + 2]
                c03 = c[i0, j0 + 3]
                c10 = c[i0 + 1, j0]
                c11 = c[i0 + 1, j0 + 1]
                c12 = c[i0 + 1, j0 + 2]
                c13 = c[i0 + 1, j0 + 3]
                c20 = c[i0 + 2, j0]
                c21 = c[i0 + 2, j0 + 1]
                c22 = c[i0 + 2, j0 + 2]
                c23 = c[i0 + 2, j0 + 3]
                c30 = c[i0 + 3, j0]
                c31 = c[i0 + 3, j0 + 1]
                c32 = c[i0 + 3, j0 + 2]
                c33 = c[i0 + 3, j0 + 3]
            else:
                c00 = c01 = c02 = c03 = F32(0.0)
                c10 = c11 = c12 = c13 = F32(0.0)
                c20 = c21 = c22 = c23 = F32(0.0)
                c30 = c31 = c32 = c33 = F32(0.0)
            for k in range(k_size):
                a0 = a[i0, k]
                a1 = a[i0 + 1, k]
                a2 = a[i0 + 2, k]
                a3 = a[i0 + 3, k]
                b0 = b[j0, k]
                b1 = b[j0 + 1, k]
                b2 = b[j0 + 2, k]
                b3 = b[j0 + 3, k]
                c00 += a0 * b0
                c01 += a0 * b1
                c02 += a0 * b2
                c03 += a0 * b3
                c10 += a1 * b0
                c11 += a1 * b1
                c12 += a1 * b2
                c13 += a1 * b3
                c20 += a2 * b0
                c21 += a2 * b1
                c22 += a2 * b2
                c23 += a2 * b3
                c30 += a3 * b0
                c31 += a3 * b1
                c32 += a3 * b2
                c33 += a3 * b3
            c[i0, j0] = c00
            c[i0, j0 + 1] = c01
            c[i0, j0 + 2] = c02
            c[i0, j0 + 3] = c03
            c[i0 + 1, j0] = c10
            c[i0 + 1, j0 + 1] = c11
            c[i0 + 1, j0 + 2] = c12
            c[i0 + 1, j0 + 3] = c13
            c[i0 + 2, j0] = c20
            c[i0 + 2, j0 + 1] = c21
            c[i0 + 2, j0 + 2] = c22
            c[i0 + 2, j0 + 3] = c23
            c[i0 + 3, j0] = c30
            c[i0 + 3, j0 + 1] = c31
            c[i0 + 3, j0 + 2] = c32
            c[i0 + 3, j0 + 3] = c33
            j0 += 4
    # the edges: fewer than four rows (1×4 blocks), then single dot products
    j_edge = j0 if rows == 4 else 0
    for i in range(i0, i0 + rows):
        j = j_edge
        while rows < 4 and j + 4 <= n_size:
            s0 = c[i, j] if accumulate else F32(0.0)
            s1 = c[i, j + 1] if accumulate else F32(0.0)
            s2 = c[i, j + 2] if accumulate else F32(0.0)
            s3 = c[i, j + 3] if accumulate else F32(0.0)
            for k in range(k_size):
                ai = a[i, k]
                s0 += ai * b[j, k]
                s1 += ai * b[j + 1, k]
                s2 += ai * b[j + 2, k]
                s3 += ai * b[j + 3, k]
            c[i, j] = s0
            c[i, j + 1] = s1
            c[i, j + 2] = s2
            c[i, j + 3] = s3
            j += 4
        for jj in range(j, n_size):
            total = c[i, jj] if accumulate else F32(0.0)
            for k in range(k_size):
                total += a[i, k] * b[jj, k]
            c[i, jj] = total


@njit(**_JIT)
def _bias_relu(c, bias, bias_mode, relu):
    """The epilogue of a product: add a bias per row or per column, then ReLU, in place."""
    rows, cols = c.shape
    for i in range(rows):
        for j in range(cols):
            value = c[i, j]
            if bias_mode == _BIAS_ROWS:
                value += bias[i]
            elif bias_mode == _BIAS_COLS:
                value += bias[j]
            if relu and value < 0:
                value = F32(0.0)
            c[i, j] = value


@njit(parallel=True, **_JIT)
def _gemm_nt(a, b, c, bias, bias_mode, relu):
    """c[z] = a[z] · b[z]ᵀ (+ bias, then ReLU) for a (Za,M,K), b (Zb,N,K), c (Z,M,N); Za, Zb ∈ {1, Z}.

    bias_mode: 0 none, 1 one bias per row m, 2 one bias per column n.
    """
    z_count, m_size, _ = c.shape
    row_blocks = (m_size + 3) // 4
    for task in prange(z_count * row_blocks):
        z = task // row_blocks
        i0 = (task % row_blocks) * 4
        rows = min(4, m_size - i0)
        cz = c[z]
        _gemm_rows(a[z if a.shape[0] > 1 else 0], b[z if b.shape[0] > 1 else 0], cz, i0, rows, False)
        if bias_mode != _BIAS_NONE or relu:
            _bias_relu(cz[i0 : i0 + rows], bias[i0 : i0 + rows] if bias_mode == _BIAS_ROWS else bias, bias_mode, relu)


_NO_BIAS = np.zeros(1, dtype=F32)


def gemm_nt(a: np.ndarray, b: np.ndarray, bias=None, bias_mode: int = _BIAS_NONE, relu: bool = False):
    """A·Bᵀ for 2-D (M,K)·(N,K) or 3-D (Z,M,K)·(Z,N,K) float32 arrays (either side may have Z = 1)."""
    squeeze = a.ndim == 2 and b.ndim == 2
    a3 = a.reshape(1, *a.shape) if a.ndim == 2 else a
    b3 = b.reshape(1, *b.shape) if b.ndim == 2 else b
    a3 = np.ascontiguousarray(a3, dtype=F32)
    b3 = np.ascontiguousarray(b3, dtype=F32)
    z = max(a3.shape[0], b3.shape[0])
    c = np.empty((z, a3.shape[1], b3.shape[1]), dtype=F32)
    _gemm_nt(a3, b3, c, _NO_BIAS if bias is None else np.ascontiguousarray(bias, dtype=F32), bias_mode, relu)
    return c[0] if squeeze else c


# The other form of the product, C = A·B with B's rows contiguous along C's columns, is what a
# layer's weight gradient dW = dYᵀ·X is (A = dYᵀ, summed over the batch) and its input gradient
# dX = dY·W. Each C row gets a sum of scaled B rows: long contiguous runs that vectorise without
# transposing anything, and no horizontal sums at the end of a short dot product.
_NN_COLS = 512  # columns of C per parallel task: four rows of C and of B stay in L1


@njit(**_JIT)
def _gemm_nn_block(a, b, c, i0, rows, j0, j1, trans_a):
    """c[i0:i0+rows, j0:j1] = A[i0:i0+rows] · b[:, j0:j1], where A = a (M,K), or aᵀ for a (K,M).

    Four rows of A and four rows of B at a time: sixteen A scalars stay in registers while j runs.
    Every loop over j is over a slice from 0, so that LLVM knows the index is never negative
    (no wraparound check) and vectorises it.
    """
    k_size = b.shape[0]
    for i in range(i0, i0 + rows):
        c[i, j0:j1] = 0.0
    k = 0
    while rows == 4 and k + 4 <= k_size:
        if trans_a:
            a00, a10, a20, a30 = a[k, i0], a[k, i0 + 1], a[k, i0 + 2], a[k, i0 + 3]
            a01, a11, a21, a31 = a[k + 1, i0], a[k + 1, i0 + 1], a[k + 1, i0 + 2], a[k + 1, i0 + 3]
            a02, a12, a22, a32 = a[k + 2, i0], a[k + 2, i0 + 1], a[k + 2, i0 + 2], a[k + 2, i0 + 3]
            a03, a13, a23, a33 = a[k + 3, i0], a[k + 3, i0 + 1], a[k + 3, i0 + 2], a[k + 3, i0 + 3]
        else:
            a00, a01, a02, a03 = a[i0, k], a[i0, k + 1], a[i0, k + 2], a[i0, k + 3]
            a10, a11, a12, a13 = a[i0 + 1, k], a[i0 + 1, k + 1], a[i0 + 1, k + 2], a[i0 + 1, k + 3]
            a20, a21, a22, a23 = a[i0 + 2, k], a[i0 + 2, k + 1], a[i0 + 2, k + 2], a[i0 + 2, k + 3]
            a30, a31, a32, a33 = a[i0 + 3, k], a[i0 + 3, k + 1], a[i0 + 3, k + 2], a[i0 + 3, k + 3]
        b0, b1, b2, b3 = b[k, j0:j1], b[k + 1, j0:j1], b[k + 2, j0:j1], b[k + 3, j0:j1]
        c0, c1, c2, c3 = c[i0, j0:j1], c[i0 + 1, j0:j1], c[i0 + 2, j0:j1], c[i0 + 3, j0:j1]
        for j in range(c0.size):
            x0, x1, x2, x3 = b0[j], b1[j], b2[j], b3[j]
            c0[j] += a00 * x0 + a01 * x1 + a02 * x2 + a03 * x3
            c1[j] += a10 * x0 + a11 * x1 + a12 * x2 + a13 * x3
            c2[j] += a20 * x0 + a21 * x1 + a22 * x2 + a23 * x3
            c3[j] += a30 * x0 + a31 * x1 + a32 * x2 + a33 * x3
        k += 4
    # the edges: the last k < 4, or fewer than four rows — one row of C and one of B at a time
    for kk in range(k, k_size):
        bk = b[kk, j0:j1]
        for i in range(i0, i0 + rows):
            scale = a[kk, i] if trans_a else a[i, kk]
            ci = c[i, j0:j1]
            for j in range(ci.size):
                ci[j] += scale * bk[j]


@njit(parallel=True, **_JIT)
def _gemm_nn(a, b, c, trans_a):
    """c = a·b (or aᵀ·b when trans_a) for 2-D C-contiguous arrays; blocks of 4 rows × _NN_COLS columns in parallel."""
    m_size, n_size = c.shape
    row_blocks = (m_size + 3) // 4
    col_blocks = (n_size + _NN_COLS - 1) // _NN_COLS
    for task in prange(row_blocks * col_blocks):
        i0 = (task // col_blocks) * 4
        j0 = (task % col_blocks) * _NN_COLS
        _gemm_nn_block(a, b, c, i0, min(4, m_size - i0), j0, min(n_size, j0 + _NN_COLS), trans_a)


def gemm_nn(a: np.ndarray, b: np.ndarray, trans_a: bool = False) -> np.ndarray:
    """A·B for 2-D float32 arrays (M,K)·(K,N), or Aᵀ·B for A given as (K,M) when trans_a."""
    a = np.ascontiguousarray(a, dtype=F32)
    b = np.ascontiguousarray(b, dtype=F32)
    c = np.empty((a.shape[1] if trans_a else a.shape[0], b.shape[1]), dtype=F32)
    _gemm_nn(a, b, c, trans_a)
    return c


TILE = 8  # a transpose tile's side: 8 floats are one AVX register (AVX-512 machines take them too)


@intrinsic
def _transpose_tile(typingctx, src, src_at, src_step, dst, dst_at, dst_step):
    """dst.flat[dst_at + c·dst_step + r] = src.flat[src_at + r·src_step + c] for r, c < TILE.

    TILE rows are loaded as vectors, pairs of rows exchange blocks of 1, 2, 4 … numbers (round
    b swaps bit b of the row and column numbers, so after all rounds every number has swapped
    its row for its column), and TILE vectors are stored: 3·TILE shuffles for TILE² numbers,
    where copying one at a time takes TILE² loads and stores. The arrays must be C-contiguous.
    """
    if not all(isinstance(a, types.Array) and a.layout == "C" and a.dtype == types.float32 for a in (src, dst)):
        return None

    def codegen(context, builder, signature, args):
        vector = ir.VectorType(ir.FloatType(), TILE)

        def mask(picks):
            return ir.Constant(ir.VectorType(ir.IntType(32), TILE), picks)

        src_data, dst_data = (context.make_array(signature.args[i])(context, builder, args[i]).data for i in (0, 3))

        def row(data, at, step, r):  # a pointer to TILE floats at data + at + r·step
            index = builder.add(at, builder.mul(step, ir.Constant(at.type, r)))
            return builder.bitcast(builder.gep(data, [index]), vector.as_pointer())

        rows = [builder.load(row(src_data, args[1], args[2], r), align=4) for r in range(TILE)]
        b = 1
        while b < TILE:  # element k of (a, c) concatenated is a[k], and c[k − TILE] past TILE
            low = mask([k if k & b == 0 else TILE + k - b for k in range(TILE)])
            high = mask([k + b if k & b == 0 else TILE + k for k in range(TILE)])
            for i in (i for i in range(TILE) if i & b == 0):
                a, c = rows[i], rows[i + b]
                rows[i], rows[i + b] = builder.shuffle_vector(a, c, low), builder.shuffle_vector(a, c, high)
            b *= 2
        for c in range(TILE):
            builder.store(rows[c], row(dst_data, args[4], args[5], c), align=4)
        return context.get_dummy_value()

    return types.void(src, types.int64, types.int64, dst, types.int64, types.int64), codegen


@njit(**_JIT)
def _transpose_flat(src, src_at, src_step, dst, dst_at, dst_step, rows, cols):
    """dst[dst_at + c·dst_step + r] = src[src_at + r·src_step + c] for r < rows and c < cols, on
    1-D arrays (flat views: one compiled kernel serves every caller), whole tiles in registers
    and the ragged edges one number at a time."""
    full_rows, full_cols = rows - rows % TILE, cols - cols % TILE
    for r in range(0, full_rows, TILE):
        for c in range(0, full_cols, TILE):
            _transpose_tile(src, src_at + r * src_step + c, src_step, dst, dst_at + c * dst_step + r, dst_step)
    for r in range(rows):
        for c in range(full_cols if r < full_rows else 0, cols):
            dst[dst_at + c * dst_step + r] = src[src_at + r * src_step + c]


TRANSPOSE_TASK_ROWS = 64  # rows per parallel task of _transpose


@njit(parallel=True, **_JIT)
def _transpose(src, dst):
    """dst[z] = src[z]ᵀ, TRANSPOSE_TASK_ROWS rows of src per parallel task."""
    z_count, rows, cols = src.shape
    flat_src, flat_dst = src.reshape(src.size), dst.reshape(dst.size)
    tasks = (rows + TRANSPOSE_TASK_ROWS - 1) // TRANSPOSE_TASK_ROWS
    for task in prange(z_count * tasks):
        z = task // tasks
        start = (task % tasks) * TRANSPOSE_TASK_ROWS
        at, count = z * rows * cols, min(rows - start, TRANSPOSE_TASK_ROWS)
        _transpose_flat(flat_src, at + start * cols, cols, flat_dst, at + start, rows, count, cols)


def _t(x: np.ndarray) -> np.ndarray:
    """The transpose of the last two axes, made contiguous."""
    src = np.ascontiguousarray(x, dtype=F32)
    src3 = src.reshape(-1, src.shape[-2], src.shape[-1])
    dst = np.empty((src3.shape[0], src3.shape[2], src3.shape[1]), dtype=F32)
    _transpose(src3, dst)
    return dst.reshape(*x.shape[:-2], x.shape[-1], x.shape[-2])


# ----------------------------------------------------------------------------------- convolution
# A convolution is a matrix product once the input is unrolled: row p of `cols` holds the pixels
# under the kernel when it sits at output position p (im2col). Unrolling a whole batch writes
# megabytes, so these kernels work one sample at a time in small scratch buffers that stay in
# cache; each of a fixed number of chunks of the batch has its own. Each sample is first copied
# into a zero-bordered buffer, so that unrolling needs no bounds checks.
#
# When the summed axis is tiny (the first layer: 1 channel × 3 × 3 = 9), dot products are too
# short to pay; `_conv_direct_sample` instead adds each kernel tap times a shifted row of the
# padded image onto the output, long contiguous runs that vectorise well.
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
            row[h * width : h * width + w_out] = gn[co, h * w_out : (h + 1) * w_out]
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
            _gemm_rows(w_hwc, cols, out, i0, min(4, c_out - i0), False)


@njit(inline="always", **_JIT)  # (one caller, _conv_backward_chunk: a level less to compile)
def _conv_backward_sample(xn, gn, w, plan, db, dw, dxn, xph, cols, cols_t, xp2, cols2, wide2, g_t, dcols, gwide, ready):
    """One sample's share of the gradients, from gn = dL/d(conv output) as (Co, Ho·Wo).

    db += Σ_p g;  dW[co, (m,k,ci)] += Σ_p g[co,p] · cols[p,(m,k,ci)];  and dxn (Ci, H, W) when asked:
    for stride 1 as the full correlation of g with the kernel turned 180° (plan[3] = 1), otherwise
    by unrolled gradients added back onto the pixels (plan[3] = 2). plan = (stride, padding,
    flipped-route direct?, dx mode); w holds the flipped kernel (Ci,Co,kh,kw) and its hwc form, or
    the plain kernel's transpose for mode 2.
    """
    stride, padding, flip_direct, dx_mode = plan[0], plan[1], plan[2] == 1, plan[3]  # plan[4]: direct dW
    c_out = gn.shape[0]
    kh, kw = w[0].shape[2], w[0].shape[3]
    h_out = _conv_output_size(xn.shape[1], kh, stride, padding)
    w_out = _conv_output_size(xn.shape[2], kw, stride, padding)
    plane = h_out * w_out
    if plan[4] == 1:  # stride 1: the direct route, on xph as (Ci, Hp, Wp)
        _pad_sample(xn, padding, xph)
        flat = xph.reshape(xph.shape[0], xph.shape[1] * xph.shape[2])
        _conv_weight_grad_direct(flat, xph.shape[2], kh, kw, gn, h_out, w_out, gwide, dw, db, ready)
    else:
        _pad_sample_hwc(xn, padding, xph)
        for co in range(c_out):
            total = F32(0.0)
            for p in range(plane):
                total += gn[co, p]
            db[co] += total
        _im2col_hwc(xph, kh, kw, stride, h_out, w_out, cols)
        rows, width = cols.shape
        _transpose_flat(cols.reshape(cols.size), 0, width, cols_t.reshape(cols_t.size), 0, rows, rows, width)
        for i0 in range(0, c_out, 4):
            _gemm_rows(gn, cols_t, dw, i0, min(4, c_out - i0), True)
    c_in = xn.shape[0]
    if dx_mode == 1:
        g3 = gn.reshape(c_out, h_out, w_out)
        # stride (1 here) and extract (true here) as run-time values: a literal argument would
        # make Numba compile another _conv_sample, seconds of a cold start
        _conv_sample(
            g3,
            w[0],
            w[1],
            stride,
            kh - 1 - padding,
            flip_direct,
            xp2,
            cols2,
            wide2,
            dxn.reshape(c_in, xn.shape[1] * xn.shape[2]),
            dx_mode == 1,
        )
    elif dx_mode == 2:
        for co in range(c_out):
            for p in range(plane):
                g_t[p, co] = gn[co, p]
        for i0 in range(0, plane, 4):
            _gemm_rows(g_t, w[2], dcols, i0, min(4, plane - i0), False)
        _col2im_sample(dcols, kh, kw, stride, padding, h_out, w_out, dxn)


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


@njit(**_JIT)
def _conv_forward_chunk(chunk, x, w, w_hwc, bias, stride, padding, relu, direct, y, xp, cols, wide):
    """y[n] = ReLU?(W ∗ x[n] + b) for a chunk's samples; x (N,Ci,H,W), w (Co,Ci,kh,kw), y (N,Co,Ho,Wo)."""
    n_size, c_out = x.shape[0], w.shape[0]
    chunks = xp.shape[0]
    for n in range(chunk * n_size // chunks, (chunk + 1) * n_size // chunks):
        yn = y[n].reshape(c_out, y.shape[2] * y.shape[3])
        _conv_sample(x[n], w, w_hwc, stride, padding, direct, xp[chunk], cols[chunk], wide[chunk], yn)
        _bias_relu(yn, bias, _BIAS_ROWS, relu)


_conv_forward = _Chunked(_conv_forward_chunk)


@njit(**_JIT)
def _conv_block_forward_chunk(
    chunk, x, w, w_hwc, bias, stride, padding, size, direct, pooled, argmax, xp, cols, wide, ybuf
):
    """Conv + bias + ReLU + max-pool per sample of a chunk: the full-size maps never leave the cache.

    Where every value of a window is ≤ −b the pooled value is 0 and its argmax may differ from the
    reference's; no gradient flows there, so the results agree.
    """
    n_size = x.shape[0]
    chunks = xp.shape[0]
    yn = ybuf[chunk]
    flat = yn.reshape(yn.shape[0], yn.shape[1] * yn.shape[2])
    for n in range(chunk * n_size // chunks, (chunk + 1) * n_size // chunks):
        # extract=False as `not direct` (the same here): a run-time value, see _conv_backward_sample
        _conv_sample(x[n], w, w_hwc, stride, padding, direct, xp[chunk], cols[chunk], wide[chunk], flat, not direct)
        if direct:
            _pool_bias_relu_sample(wide[chunk], xp.shape[3], size, bias, pooled[n], argmax[n])
        else:
            _pool_bias_relu_sample(flat, yn.shape[2], size, bias, pooled[n], argmax[n])


_conv_block_forward = _Chunked(_conv_block_forward_chunk)


@njit(**_JIT)
def _conv_backward_chunk(
    chunk,
    x,
    g,
    unpool,
    pooled,
    argmax,
    size,
    w_flip,
    w_flip_hwc,
    w_t,
    plan,
    dw_parts,
    db_parts,
    dx,
    gbuf,
    xph,
    cols,
    cols_t,
    xp2,
    cols2,
    wide2,
    g_t,
    dcols,
    gwide,
):
    """One chunk of samples' gradients, their dW and db summed into the chunk's parts.

    g is dL/d(conv output); or, with `unpool`, dL/d(pooled output) of a conv block, which is
    first spread back over each sample's windows (and through its ReLU) in cache.
    """
    w = (w_flip, w_flip_hwc, w_t)  # (a parallel loop passes arrays, not tuples of them)
    n_size = x.shape[0]
    chunks = xph.shape[0]
    dw_parts[chunk] = F32(0.0)
    db_parts[chunk] = F32(0.0)
    gb = gbuf[chunk % gbuf.shape[0]]  # (a placeholder of one when not unpooling)
    if plan[5] == 1:  # dW straight from the pooled gradient, gb holding the input's 16 planes
        xs = gb.reshape(16, gb.shape[1] * gb.shape[2])
        for n in range(chunk * n_size // chunks, (chunk + 1) * n_size // chunks):
            _pad_sample(x[n], plan[1], xph[chunk])
            _pooled_weight_grad(xph[chunk, 0], g[n], argmax[n], pooled[n], xs, dw_parts[chunk], db_parts[chunk])
        return
    # Unpooled gradients go straight into the direct weight-gradient route's wide rows when
    # nothing else needs them, else into gbuf. What no window covers is zeroed once here:
    # the columns past each wide row's end, or the rows and columns that pooling dropped.
    wide_rows = unpool and plan[4] == 1 and plan[3] == 0
    target = gwide[chunk] if wide_rows else gb.reshape(gb.shape[0], gb.shape[1] * gb.shape[2])
    if unpool:
        target[:] = F32(0.0)
    for n in range(chunk * n_size // chunks, (chunk + 1) * n_size // chunks):
        gn3 = gb if unpool else g[n]  # (on the wide-rows route gb is not read: g is in gwide)
        if unpool:
            _unpool_rows(g[n], argmax[n], size, pooled[n], True, target, xph.shape[3] if wide_rows else gb.shape[2])
        gn = gn3.reshape(gn3.shape[0], gn3.shape[1] * gn3.shape[2])
        _conv_backward_sample(
            x[n],
            gn,
            w,
            plan,
            db_parts[chunk],
            dw_parts[chunk],
            dx[min(n, dx.shape[0] - 1)],
            xph[chunk],
            cols[chunk],
            cols_t[chunk],
            xp2[chunk],
            cols2[chunk],
            wide2[chunk],
            g_t[chunk],
            dcols[chunk],
            gwide[chunk],
            wide_rows,
        )


_conv_backward = _Chunked(_conv_backward_chunk)


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


@njit(parallel=True, **_JIT)
def _relu_mask(dy, y, out):
    """out = dy where y > 0, else 0: the gradient through a fused ReLU."""
    flat_dy, flat_y, flat_out = dy.reshape(-1), y.reshape(-1), out.reshape(-1)
    for i in prange(flat_out.size):
        flat_out[i] = flat_dy[i] if flat_y[i] > 0 else F32(0.0)


_out_size = rowmath.conv_output_size  # the same formula, called from Python


_EMPTY3 = (1, 1, 1)


def _forward_scratch(chunks, c_in, height, width, c_out, kh, kw, stride, padding):
    """(direct?, padded sample, im2col rows, direct-route rows) buffers for one convolution."""
    direct = stride == 1 and c_in * kh * kw < DIRECT_BELOW
    hp, wp = height + 2 * padding, width + 2 * padding
    h_out, w_out = _out_size(height, kh, stride, padding), _out_size(width, kw, stride, padding)
    xp = np.empty((chunks, c_in, hp, wp) if direct else (chunks, hp, wp, c_in), dtype=F32)
    cols = np.empty((chunks, *_EMPTY3[1:]) if direct else (chunks, h_out * w_out, c_in * kh * kw), dtype=F32)
    wide = np.empty((chunks, c_out, (h_out - 1) * wp + w_out) if direct else (chunks, *_EMPTY3[1:]), dtype=F32)
    return direct, xp, cols, wide


def _backward_setup(x_shape, w, stride, padding, input_grad):
    """Plan, weights, per-chunk dW/db, dx and scratch buffers for a convolution's backward pass."""
    n, c_in, height, width = x_shape
    c_out, _, kh, kw = w.shape
    h_out, w_out = _out_size(height, kh, stride, padding), _out_size(width, kw, stride, padding)
    plane, k_size, chunks = h_out * w_out, c_in * kh * kw, _chunks(n)
    mode = 0 if not input_grad else (1 if stride == 1 and padding <= kh - 1 and kh == kw else 2)
    flipped = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    weights = (flipped, _weights_hwc(flipped), _t(w.reshape(c_out, k_size)))
    if mode == 1:  # dX = dY ∗ (the kernel turned 180°, channels swapped), padded by kh − 1 − p
        flip_direct, xp2, cols2, wide2 = _forward_scratch(
            chunks, c_out, h_out, w_out, c_in, kh, kw, 1, kh - 1 - padding
        )
    else:
        flip_direct = False
        xp2, cols2, wide2 = (np.empty((chunks, 1, 1, 1), dtype=F32), *(np.empty((chunks, 1, 1), dtype=F32),) * 2)
    g_t = np.empty((chunks, plane, c_out) if mode == 2 else (chunks, 1, 1), dtype=F32)
    dcols = np.empty((chunks, plane, k_size) if mode == 2 else (chunks, 1, 1), dtype=F32)
    parts = (np.empty((chunks, c_out, k_size), dtype=F32), np.empty((chunks, c_out), dtype=F32))
    direct_dw = stride == 1 and (c_in == 1 or kh == kw == 3)
    hp, wp = height + 2 * padding, width + 2 * padding
    gwide = np.empty((chunks, c_out, (h_out - 1) * wp + w_out) if direct_dw else (chunks, 1, 1), dtype=F32)
    dx = np.empty(x_shape if input_grad else (1, c_in, height, width), dtype=F32)
    scratch = (
        np.empty((chunks, c_in, hp, wp) if direct_dw else (chunks, hp, wp, c_in), dtype=F32),
        np.empty((chunks, 1, 1) if direct_dw else (chunks, plane, k_size), dtype=F32),  # im2col rows
        np.empty((chunks, 1, 1) if direct_dw else (chunks, k_size, plane), dtype=F32),
        xp2,
        cols2,
        wide2,
        g_t,
        dcols,
        gwide,
    )
    # (an array, see _Chunked; a conv block sets the last entry when it takes dW from the pooled gradient)
    plan = np.array((stride, padding, flip_direct, mode, direct_dw, 0), dtype=np.int64)
    return plan, weights, parts, dx, scratch


def _gradients(parts, w, dx, input_grad):
    """(dx, dW, db) from the per-chunk sums; dW's columns come back from (m, k, ci) to (ci, m, k)."""
    dw_parts, db_parts = parts
    c_out, c_in, kh, kw = w.shape
    dw = dw_parts.sum(axis=0).reshape(c_out, kh, kw, c_in).transpose(0, 3, 1, 2)
    return (dx if input_grad else None), np.ascontiguousarray(dw), db_parts.sum(axis=0)


def _weights_hwc(w: np.ndarray) -> np.ndarray:
    """(Co, Ci, kh, kw) -> (Co, kh·kw·Ci): the weights in the order _im2col_hwc unrolls pixels."""
    return np.ascontiguousarray(w.transpose(0, 2, 3, 1)).reshape(w.shape[0], -1)


def _chunks(batch: int) -> int:
    """How many pieces a batch is cut into: fixed by the batch and thread count, so results repeat."""
    return max(1, min(batch, numba.get_num_threads()))


# ----------------------------------------------------------------------------------- pooling
@njit(parallel=True, **_JIT)
def _maxpool_forward(x, size, y, argmax):
    for n in prange(x.shape[0]):
        _pool_sample(x[n], size, y[n], argmax[n])


@njit(parallel=True, **_JIT)
def _maxpool_backward(dy, argmax, size, dx):
    for n in prange(dy.shape[0]):
        _unpool_sample(dy[n], argmax[n], size, dy[n], False, dx[n])


# ----------------------------------------------------------------------------------- elementwise
_gelu_from_tanh_one = njit(inline="always", **_JIT)(rowmath.gelu_from_tanh)
_gelu_slope_from_tanh_one = njit(inline="always", **_JIT)(rowmath.gelu_slope_from_tanh)


_gelu_inner_one = njit(inline="always", **_JIT)(rowmath.gelu_inner)


@njit(inline="always", **_JIT)
def _tanh(x):
    """tanh(x) in float32 by a rational function (Eigen's fast tanh, |error| < 3e-7): plain
    arithmetic, so that loops calling it vectorise, where a call to libm's tanh would not."""
    c = min(max(x, F32(-7.90531110763549805)), F32(7.90531110763549805))
    x2 = c * c
    p = F32(-2.76076847742355e-16)
    p = p * x2 + F32(2.00018790482477e-13)
    p = p * x2 + F32(-8.60467152213735e-11)
    p = p * x2 + F32(5.12229709037114e-08)
    p = p * x2 + F32(1.48572235717979e-05)
    p = p * x2 + F32(6.37261928875436e-04)
    p = p * x2 + F32(4.89352455891786e-03)
    q = F32(1.19825839466702e-06)
    q = q * x2 + F32(1.18534705686654e-04)
    q = q * x2 + F32(2.26843463243900e-03)
    q = q * x2 + F32(4.89352518554385e-03)
    return c * p / q


ELEMENTWISE_CHUNK = 16384  # numbers per parallel task of an elementwise kernel


@njit(parallel=True, **_JIT)
def _gelu(z, y):
    """y = GELU(z) for flat arrays, in chunks (each a 0-based run, so that it vectorises)."""
    chunks = (z.size + ELEMENTWISE_CHUNK - 1) // ELEMENTWISE_CHUNK
    for chunk in prange(chunks):
        start = chunk * ELEMENTWISE_CHUNK
        zc, yc = z[start : start + ELEMENTWISE_CHUNK], y[start : start + ELEMENTWISE_CHUNK]
        for i in range(zc.size):
            yc[i] = _gelu_from_tanh_one(zc[i], _tanh(_gelu_inner_one(zc[i])))


@njit(parallel=True, **_JIT)
def _gelu_backward(z, dy, dz):
    """dz = dy · GELU′(z) for flat arrays, in chunks."""
    chunks = (z.size + ELEMENTWISE_CHUNK - 1) // ELEMENTWISE_CHUNK
    for chunk in prange(chunks):
        start = chunk * ELEMENTWISE_CHUNK
        zc = z[start : start + ELEMENTWISE_CHUNK]
        dyc, dzc = dy[start : start + ELEMENTWISE_CHUNK], dz[start : start + ELEMENTWISE_CHUNK]
        for i in range(zc.size):
            dzc[i] = dyc[i] * _gelu_slope_from_tanh_one(zc[i], _tanh(_gelu_inner_one(zc[i])))


@njit(inline="always", **_JIT)
def _relu_run(z, y):
    for i in range(y.size):
        y[i] = max(z[i], F32(0.0))


@njit(parallel=True, **_JIT)
def _relu(z, y):
    """y = max(z, 0) for flat arrays: one thread up to ELEMENTWISE_CHUNK numbers, else in chunks
    (a third of NumPy's time at a hidden layer's 256×128)."""
    if z.size <= ELEMENTWISE_CHUNK:
        _relu_run(z, y)
        return
    chunks = (z.size + ELEMENTWISE_CHUNK - 1) // ELEMENTWISE_CHUNK
    for chunk in prange(chunks):
        start = chunk * ELEMENTWISE_CHUNK
        stop = min(z.size, start + ELEMENTWISE_CHUNK)
        _relu_run(z[start:stop], y[start:stop])


@njit(inline="always", **_JIT)
def _relu_backward_run(z, dy, dz):
    for i in range(dz.size):
        dz[i] = dy[i] if z[i] > 0 else F32(0.0)


@njit(parallel=True, **_JIT)
def _relu_backward(z, dy, dz):
    """dz = dy where z > 0, else 0; in one thread below ELEMENTWISE_CHUNK numbers (starting
    threads would cost more than the work), else chunk by chunk in parallel."""
    if z.size <= ELEMENTWISE_CHUNK:
        _relu_backward_run(z, dy, dz)
        return
    chunks = (z.size + ELEMENTWISE_CHUNK - 1) // ELEMENTWISE_CHUNK
    for chunk in prange(chunks):
        start = chunk * ELEMENTWISE_CHUNK
        stop = min(z.size, start + ELEMENTWISE_CHUNK)
        _relu_backward_run(z[start:stop], dy[start:stop], dz[start:stop])


# ----------------------------------------------------------------------------------- loss, input
_loss_row = njit(inline="always", **_JIT)(rowmath.loss_row)


@njit(**_JIT)
def _classification_loss(logits, labels, focal, alpha, gamma, dlogits, row_loss, row_correct):
    """The batch's mean loss and count of right answers (dlogits filled in); −1 if a label is out of range.
    (In one thread: rows in parallel saved 6 µs at batch 256 but cost 1.7 s more of compiling.)"""
    batch, classes = logits.shape
    for n in range(batch):
        if labels[n] < 0 or labels[n] >= classes:
            return F32(0.0), -1
        _loss_row(logits, labels, n, focal, alpha, gamma, dlogits, row_loss, row_correct)
    return row_loss.sum() / batch, row_correct.sum()


@njit(inline="always", **_JIT)  # (called with a literal 0 too: inlined, not compiled twice)
def _normalize_samples(x, mean, std, out, start, stop):
    for n in range(start, stop):
        for c in range(x.shape[1]):
            shift, inv = mean[c], F32(1.0) / std[c]
            row, dst = x[n, c], out[n, c]
            for i in range(row.size):
                dst[i] = (row[i] - shift) * inv


@njit(parallel=True, **_JIT)
def _normalize(x, mean, std, out):
    """(x − mean) / std per channel, for x and out (N, C, H·W); batches of more than
    4 · ELEMENTWISE_CHUNK numbers in parallel chunks of samples."""
    n_size = x.shape[0]
    if x.size <= 4 * ELEMENTWISE_CHUNK:
        _normalize_samples(x, mean, std, out, 0, n_size)
        return
    per_chunk = max(1, ELEMENTWISE_CHUNK // (x.size // n_size))
    for chunk in prange((n_size + per_chunk - 1) // per_chunk):
        _normalize_samples(x, mean, std, out, chunk * per_chunk, min(n_size, (chunk + 1) * per_chunk))


# ----------------------------------------------------------------------------------- layer norm
_layernorm_row = njit(inline="always", **_JIT)(rowmath.layernorm_row)
_layernorm_backward_row = njit(inline="always", **_JIT)(rowmath.layernorm_backward_row)
# inlined, so that an update's loop is vectorised: Adam's ran 50× faster (sqrt and division were
# one number at a time in a function of their own), SGD's 2.5×
_sgd_one = njit(inline="always", **_JIT)(rowmath.sgd_one)
_adam_one = njit(inline="always", **_JIT)(rowmath.adam_one)


@njit(parallel=True, **_JIT)
def _layernorm_forward(x, gamma, beta, eps, y, xhat, rstd):
    for r in prange(x.shape[0]):
        _layernorm_row(x, r, gamma, beta, eps, y, xhat, rstd)


@njit(parallel=True, **_JIT)
def _layernorm_backward(dy, xhat, rstd, gamma, dx):
    for r in prange(dy.shape[0]):
        _layernorm_backward_row(dy, r, xhat, rstd, gamma, dx)


# ----------------------------------------------------------------------------------- attention
# Attention puts samples along the vector lanes: at the ViT's 17 tokens and 16 numbers a head,
# loops over a (sample, head)'s own rows are too short for LLVM's vector loops, which want 64
# iterations; copied into (tokens, d, lanes) blocks, every loop runs over 64 lanes. The copies
# in and out are transposes (_transpose_flat): copied one number at a time they took half of
# the forward's time.
ATTENTION_LANES = 64
ROWS_IN_REGISTERS = 8  # token rows summed in registers by _lane_weighted_sum before a store
_LOG2E, _LN2_HI, _LN2_LO = F32(1.4426950408889634), F32(0.693359375), F32(-2.12194440e-4)


@njit(**_JIT)  # (it and _from_lanes compiled once, not inlined at eight call sites: 1.9 s less)
def _to_lanes(x, n0, h, lanes, dst):
    """dst[t, e, l] = x[n0 + l, h, t, e] for the block's lanes (x: N, heads, T, e); lanes past
    them 0."""
    if lanes < dst.shape[2]:
        dst[:] = F32(0.0)
    heads, plane = x.shape[1], x.shape[2] * x.shape[3]
    _transpose_flat(
        x.reshape(x.size), (n0 * heads + h) * plane, heads * plane, dst.reshape(dst.size), 0, dst.shape[2], lanes, plane
    )


@njit(**_JIT)
def _from_lanes(src, n0, h, lanes, x):
    """x[n0 + l, h, t, e] = src[t, e, l] for the block's lanes: _to_lanes the other way."""
    heads, plane = x.shape[1], x.shape[2] * x.shape[3]
    _transpose_flat(
        src.reshape(src.size), 0, src.shape[2], x.reshape(x.size), (n0 * heads + h) * plane, heads * plane, plane, lanes
    )


@njit(inline="always", **_JIT)
def _lane_dots(a, b, dst):
    """dst[l] = Σ_e a[e, l]·b[e, l]. For d = 16 (the ViT's heads) the sum is a loop of constant
    length inside the loop over lanes: LLVM unrolls it, vectorises the lanes and keeps the sum in
    a register (2.2× the speed of adding into dst row by row, as other d do)."""
    d, width = a.shape
    if d == 16:
        for lane in range(width):
            total = F32(0.0)
            for e in range(16):
                total += a[e, lane] * b[e, lane]
            dst[lane] = total
        return
    for lane in range(width):
        dst[lane] = F32(0.0)
    for e in range(d):
        for lane in range(width):
            dst[lane] += a[e, lane] * b[e, lane]


@njit(inline="always", **_JIT)
def _lane_weighted_sum(weights, values, dst):
    """dst[e, l] = Σ_j weights[j, l]·values[j, e, l], ROWS_IN_REGISTERS rows j at a time summed
    in a register (the loop of constant length is unrolled, as in _lane_dots), the rest one by one."""
    tokens, d, width = values.shape
    full = tokens - tokens % ROWS_IN_REGISTERS
    dst[:] = F32(0.0)
    for j0 in range(0, full, ROWS_IN_REGISTERS):
        for e in range(d):
            out = dst[e]
            for lane in range(width):
                total = F32(0.0)
                for u in range(ROWS_IN_REGISTERS):
                    total += weights[j0 + u, lane] * values[j0 + u, e, lane]
                out[lane] += total
    for j in range(full, tokens):
        wj = weights[j]
        for e in range(d):
            out, ve = dst[e], values[j, e]
            for lane in range(width):
                out[lane] += wj[lane] * ve[lane]


@njit(inline="always", **_JIT)
def _softmax_lanes(s, top, bits):
    """Each lane's softmax over the rows of s (rows, lanes) in place, given the rows' maximum in
    top (which ends as 1 / the sum). exp is Cephes' expf (|rel. error| ≤ 3e-7; below −87 it
    gives e^−87, not 0), its 2ⁿ built in the exponent bits of `bits`, an int32 scratch of s's
    shape, so that the loops have no calls and vectorise."""
    scale = bits.view(F32)
    rows, width = s.shape
    for j in range(rows):
        sj, bj = s[j], bits[j]
        for lane in range(width):
            v = max(sj[lane] - top[lane], F32(-87.0))
            y = v * _LOG2E + F32(0.5)
            n_int = np.int32(y)
            n_int -= np.int32(F32(n_int) > y)  # floor
            n = F32(n_int)
            r = v - n * _LN2_HI - n * _LN2_LO
            p = F32(1.9875691500e-4)
            p = p * r + F32(1.3981999507e-3)
            p = p * r + F32(8.3334519073e-3)
            p = p * r + F32(4.1665795894e-2)
            p = p * r + F32(1.6666665459e-1)
            p = p * r + F32(5.0000001201e-1)
            sj[lane] = p * r * r + r + F32(1.0)
            bj[lane] = (n_int + np.int32(127)) << np.int32(23)
    top[:] = F32(0.0)  # now the sums
    for j in range(rows):
        sj, scale_j = s[j], scale[j]
        for lane in range(width):
            sj[lane] *= scale_j[lane]
            top[lane] += sj[lane]
    for lane in range(width):
        top[lane] = F32(1.0) / top[lane]
    for j in range(rows):
        sj = s[j]
        for lane in range(width):
            sj[lane] *= top[lane]


@njit(inline="always", **_JIT)
def _task_in_lanes(task, q, k, v):
    """A parallel attention task's head, first sample and sample count, and its q, k, v in lanes
    (inlined, so that the parallel loop still sees, and hoists, the allocations)."""
    n_size, heads, tokens, d = q.shape
    h, n0 = task % heads, (task // heads) * ATTENTION_LANES
    lanes = min(ATTENTION_LANES, n_size - n0)
    ql = np.empty((tokens, d, ATTENTION_LANES), dtype=F32)
    kl = np.empty((tokens, d, ATTENTION_LANES), dtype=F32)
    vl = np.empty((tokens, d, ATTENTION_LANES), dtype=F32)
    _to_lanes(q, n0, h, lanes, ql)
    _to_lanes(k, n0, h, lanes, kl)
    _to_lanes(v, n0, h, lanes, vl)
    return h, n0, lanes, ql, kl, vl


@njit(parallel=True, **_JIT)
def _attention_forward(q, k, v, scale, out, probs):
    """P = softmax(Q Kᵀ · scale) and out = P V per (sample, head), a head and a block of up to
    ATTENTION_LANES samples per task, samples along the lanes (see above). The loops run over all
    ATTENTION_LANES lanes even for a last, short block (its empty lanes hold zeros): a fixed
    count keeps them vectorised."""
    n_size, heads, tokens, d = q.shape
    width = ATTENTION_LANES
    for task in prange(heads * ((n_size + width - 1) // width)):
        h, n0, lanes, ql, kl, vl = _task_in_lanes(task, q, k, v)
        q_run = ql.reshape(ql.size)
        for x in range(q_run.size):  # Q · scale, so that the scores come scaled
            q_run[x] *= scale
        p = np.empty((tokens, tokens, width), dtype=F32)  # the scores, row by row made P
        o = np.empty((tokens, d, width), dtype=F32)
        bits = np.empty((tokens, width), dtype=np.int32)
        top = np.empty(width, dtype=F32)
        for i in range(tokens):
            s = p[i]
            for j in range(tokens):
                _lane_dots(ql[i], kl[j], s[j])
            top[:] = s[0]
            for j in range(1, tokens):
                sj = s[j]
                for lane in range(width):
                    top[lane] = max(top[lane], sj[lane])
            _softmax_lanes(s, top, bits)
            _lane_weighted_sum(s, vl, o[i])
        _from_lanes(p, n0, h, lanes, probs)
        _from_lanes(o, n0, h, lanes, out)


@njit(parallel=True, **_JIT)
def _attention_backward(q, k, v, probs, dout, scale, dq, dk, dv):
    """dP_ij = dout_i · v_j and dS_ij = P_ij (dP_ij − Σ_j dP_ij P_ij) · scale row by row, with
    dQ_i = Σ_j dS_ij K_j; then dK_j = Σ_i dS_ij Q_i and dV_j = Σ_i P_ij dout_i from dS and P
    kept transposed. Samples along the lanes, as in the forward."""
    n_size, heads, tokens, d = q.shape
    width = ATTENTION_LANES
    for task in prange(heads * ((n_size + width - 1) // width)):
        h, n0, lanes, ql, kl, vl = _task_in_lanes(task, q, k, v)
        dol = np.empty((tokens, d, width), dtype=F32)
        pl = np.empty((tokens, tokens, width), dtype=F32)
        _to_lanes(dout, n0, h, lanes, dol)
        _to_lanes(probs, n0, h, lanes, pl)
        ds = np.empty((tokens, tokens, width), dtype=F32)  # ds[i]: row i of dP, then of dS
        ds_t = np.empty((tokens, tokens, width), dtype=F32)  # ds_t[j, i] = dS_ij
        p_t = np.empty((tokens, tokens, width), dtype=F32)  # p_t[j, i] = P_ij
        weighted = np.empty(width, dtype=F32)
        for i in range(tokens):
            pi, dsi = pl[i], ds[i]
            for j in range(tokens):
                _lane_dots(dol[i], vl[j], dsi[j])
            weighted[:] = F32(0.0)
            for j in range(tokens):
                dsj, pj = dsi[j], pi[j]
                for lane in range(width):
                    weighted[lane] += dsj[lane] * pj[lane]
            for j in range(tokens):
                dsj, pj, ds_tj, p_tj = dsi[j], pi[j], ds_t[j, i], p_t[j, i]
                for lane in range(width):
                    g = pj[lane] * (dsj[lane] - weighted[lane]) * scale
                    dsj[lane] = g
                    ds_tj[lane] = g
                    p_tj[lane] = pj[lane]
        grad = np.empty((tokens, d, width), dtype=F32)
        for part in range(3):  # dQ = dS K, dK = dSᵀ Q, dV = Pᵀ dout (one call site each: less to compile)
            weights = ds if part == 0 else (ds_t if part == 1 else p_t)
            values = kl if part == 0 else (ql if part == 1 else dol)
            for r in range(tokens):
                _lane_weighted_sum(weights[r], values, grad[r])
            _from_lanes(grad, n0, h, lanes, dq if part == 0 else (dk if part == 1 else dv))


@njit(parallel=True, **_JIT)
def _to_heads(src, heads, parts, a, b, c):
    """(N, T, parts·heads·d) -> a, b, c (N, heads, T, d), the first `parts` of them: each head's
    runs of d numbers, copied. q, k, v from the qkv projection (3 parts); a gradient of the
    merged heads back to heads (1 part). One kernel for both: each costs a second to compile."""
    n_size, _, tokens, d_head = a.shape
    dim = heads * d_head
    for task in prange(n_size * heads):
        n, h = task // heads, task % heads
        for t in range(tokens):
            row = src[n, t]
            for part in range(parts):
                dst = a if part == 0 else (b if part == 1 else c)
                start = part * dim + h * d_head
                _copy_run(row[start : start + d_head], dst[n, h, t])


@njit(parallel=True, **_JIT)
def _from_heads(a, b, c, parts, dst):
    """_to_heads the other way: the first `parts` of a, b, c (N, heads, T, d) into (N, T, parts·heads·d)."""
    n_size, heads, tokens, d_head = a.shape
    dim = heads * d_head
    for n in prange(n_size):
        for t in range(tokens):
            row = dst[n, t]
            for part in range(parts):
                src = a if part == 0 else (b if part == 1 else c)
                for h in range(heads):
                    start = part * dim + h * d_head
                    _copy_run(src[n, h, t], row[start : start + d_head])


# ----------------------------------------------------------------------------------- optimizers
# Updates of more than PARALLEL_UPDATE weights run in UPDATE_CHUNKS parallel chunks. A vectorised
# update is bound by memory: serially, 100,352 weights (the MLP's first layer) took 14 µs, in
# parallel 29 µs (262,144: 63 against 85 µs); from 524,288 weights two cores win (180 against 167).
PARALLEL_UPDATE = 1 << 19
UPDATE_CHUNKS = 8


@njit(inline="always", **_JIT)  # (called with a literal 0 too: inlined, not compiled twice)
def _sgd_range(param, grad, velocity, start, stop, lr, momentum, weight_decay):
    for i in range(start, stop):
        _sgd_one(param, grad, velocity, i, lr, momentum, weight_decay)


@njit(parallel=True, **_JIT)
def _sgd_update(param, grad, velocity, lr, momentum, weight_decay):
    size = param.size
    if size < PARALLEL_UPDATE:
        _sgd_range(param, grad, velocity, 0, size, lr, momentum, weight_decay)
        return
    step = (size + UPDATE_CHUNKS - 1) // UPDATE_CHUNKS
    for chunk in prange(UPDATE_CHUNKS):
        _sgd_range(param, grad, velocity, chunk * step, min(size, (chunk + 1) * step), lr, momentum, weight_decay)


@njit(inline="always", **_JIT)  # (called with a literal 0 too: inlined, not compiled twice)
def _adam_range(param, grad, m, v, start, stop, lr, beta1, beta2, eps, weight_decay, correction1, correction2):
    for i in range(start, stop):
        _adam_one(param, grad, m, v, i, lr, beta1, beta2, eps, weight_decay, correction1, correction2)


@njit(parallel=True, **_JIT)
def _adam_update(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, correction1, correction2):
    size = param.size
    if size < PARALLEL_UPDATE:
        _adam_range(param, grad, m, v, 0, size, lr, beta1, beta2, eps, weight_decay, correction1, correction2)
        return
    step = (size + UPDATE_CHUNKS - 1) // UPDATE_CHUNKS
    for chunk in prange(UPDATE_CHUNKS):
        start, stop = chunk * step, min(size, (chunk + 1) * step)
        _adam_range(param, grad, m, v, start, stop, lr, beta1, beta2, eps, weight_decay, correction1, correction2)


def _compile_in_another_process(names) -> subprocess.Popen | None:
    """A Python process that runs the named warm-up steps: it compiles them into Numba's cache
    (the environment, and so the cache folder, is this process's). -P: not from the current
    folder, where another copy of nnsim may lie. None where no process can be started."""
    code = "import sys; from nnsim.engine.backends.cpu import CpuBackend; CpuBackend().compile_steps(sys.argv[1:])"
    quiet = subprocess.DEVNULL
    try:
        return subprocess.Popen([sys.executable, "-P", "-c", code, *names], stdin=quiet, stdout=quiet, stderr=quiet)
    except (OSError, ValueError, TypeError):  # no interpreter to run (embedded Python), no processes left
        return None


def _contiguous_f32(*arrays):
    """The arrays as C-contiguous float32 (copied only where they are not): the attention
    kernels index them flat."""
    return tuple(np.ascontiguousarray(a, dtype=F32) for a in arrays)


def _keep_freed_memory() -> None:
    """Ask glibc to keep freed blocks of up to 32 MB for reuse instead of unmapping them.

    A training step allocates the same few multi-megabyte arrays every time. By default glibc
    maps each one fresh from the kernel and unmaps it when freed, so every step pays a page fault
    per 4 KB on first touch: here that was a third of a CNN step. Reusing the heap removes it (the
    process keeps its peak memory, as every training framework's own allocator does).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(_M_TRIM_THRESHOLD, 512 << 20)
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


# dX = dY·W as sums of W's rows (gemm_nn) beats dot products with Wᵀ's rows (gemm_nt, after a
# transpose) from 256 input features, and for any layer with at least twice as many inputs as
# outputs: there the dot products run over a few outputs only (10 for a classifier head: 3× slower).
NN_INPUT_GRAD_FROM = 256
# dW = dYᵀ·X as sums of rows adds every row of the batch into the same float32 number in turn:
# over the ViT's 4,352 tokens that is a long running sum, and rounding builds up (a conv layer's
# weight gradient summed that way over 6,272 rows cost the full-MNIST CNN 0.8 points of accuracy).
NN_WEIGHT_GRAD_ROWS = 512


class CpuBackend(ReferenceBackend):
    """Numba kernels for the heavy ops; the light ones are inherited from the reference."""

    name = "cpu"

    def __init__(self):
        _keep_freed_memory()

    # Kernels no built-in model uses (a plain convolution, a separate max-pool: the models use
    # the fused conv block); they compile on first use instead, unless everything is asked for.
    LAZY_KERNELS = ("convolution forward", "convolution backward", "max-pool")

    # Compiled by a second process while this one compiles the rest, when the cache is cold:
    # the conv block alone takes 13 of the 31 s, and Numba compiles on one core.
    COMPILED_ALONGSIDE = ("conv block", *LAZY_KERNELS)
    COLD_FIRST_STEP_S = 1.0  # a first step this slow compiled (from the cache it loads in 0.1 s)

    def warm_up(self, report=None, everything: bool = False) -> None:
        """Compile the kernels the models use (or load them from Numba's cache) by running each
        once on tiny arrays; with `everything`, LAZY_KERNELS too.

        report(name, done, total) is called before each kernel, for a progress display, and
        again every tenth of a second while waiting on kernels compiled alongside: the first run
        on a machine compiles for 20 s or so, later runs load in well under a second. When the
        first kernel has to be compiled, COMPILED_ALONGSIDE are compiled by a second Python
        process into Numba's cache at the same time, and loaded from there at the end.
        """
        steps = [step for step in self._warm_up_steps() if everything or step[0] not in self.LAZY_KERNELS]
        total = len(steps)
        report = report or (lambda name, done, total: None)
        (first_name, first_run), rest = steps[0], steps[1:]
        report(first_name, 0, total)
        started = time.perf_counter()
        first_run()
        alongside = [step for step in rest if step[0] in self.COMPILED_ALONGSIDE]
        helper = None
        cold = time.perf_counter() - started > self.COLD_FIRST_STEP_S
        if alongside and cold and _JIT["cache"] and (os.cpu_count() or 1) > 1:  # (no cache: nothing to share)
            helper = _compile_in_another_process([name for name, _ in alongside])
        if helper is not None:
            rest = [step for step in rest if step not in alongside] + alongside
        try:
            for done, (name, run) in enumerate(rest, start=1):
                report(name, done, total)
                while helper is not None and (name, run) in alongside and helper.poll() is None:
                    time.sleep(0.1)
                    report(name, done, total)
                run()  # (loaded from the cache if the helper compiled it; compiled here if it failed)
        finally:
            if helper is not None and helper.poll() is None:
                helper.kill()
                helper.wait()
        report("ready", total, total)

    def compile_steps(self, names) -> None:
        """Run the warm-up steps of these names (what the helper process of warm_up does)."""
        for name, run in self._warm_up_steps():
            if name in names:
                run()

    def _warm_up_steps(self):
        rng = np.random.default_rng(0)

        def r(*shape):
            return rng.standard_normal(shape).astype(F32)

        x, w, b = r(2, 2, 6, 6), r(3, 2, 3, 3), r(3)
        q = r(2, 2, 5, 4)
        y = r(2, 3, 6, 6)
        return [
            ("matrix product", lambda: (self.matmul(r(5, 6), r(6, 7)), gemm_nn(r(5, 6), r(6, 7)))),
            ("transpose", lambda: _t(r(5, 6))),
            ("convolution forward", lambda: self.conv2d_forward(x, w, b, 1, 1, relu=True)),
            ("convolution backward", lambda: self.conv2d_backward(x, w, r(2, 3, 6, 6), 1, 1, relu_output=y)),
            (
                "conv block",
                lambda: self.conv_block_backward(x, w, r(2, 3, 3, 3), *self.conv_block_forward(x, w, b, 1, 1), 1, 1, 2),
            ),
            ("max-pool", lambda: self.maxpool2d_backward(r(2, 3, 3, 3), self.maxpool2d_forward(y, 2)[1], y.shape, 2)),
            (
                "activations",
                lambda: (
                    self.activation_forward("relu", x),
                    self.activation_backward("relu", x, x),
                    self.activation_backward("gelu", x, x),
                    self.activation_forward("gelu", x),
                ),
            ),
            (
                "loss and input",
                lambda: (
                    self.classification_loss(r(3, 4), np.array([0, 3, 1])),
                    self.classification_loss(r(3, 4), np.array([0, 3, 1]), "focal", 0.5, 2.0),
                    self.normalize(x, b[:2], b[:2] + 3),
                ),
            ),
            ("layer norm", lambda: self.layernorm_backward(x, *self.layernorm_forward(x, b[:1] + 1, b[:1])[1:], b[:1])),
            ("attention", lambda: self.attention_backward(q, q, q, self.attention_forward(q, q, q)[1], q)),
            (
                "attention heads",
                lambda: (
                    self.split_heads(r(2, 5, 12), 2),
                    self.split_heads_backward(q, q, q),
                    self.merge_heads(q),
                    self.merge_heads_backward(r(2, 5, 8), 2),
                ),
            ),
            (
                "optimizers",
                lambda: (
                    self.sgd_update(r(4), r(4), r(4), 0.1, 0.9, 0.0),
                    self.adam_update(r(4), r(4), r(4), np.abs(r(4)), 0.1, 0.9, 0.999, 1e-8, 0.0, 1),
                ),
            ),
        ]

    def asarray(self, array, dtype=None):
        return np.ascontiguousarray(array, dtype=dtype if dtype is not None else _float32_if_float(array))

    # matmul -----------------------------------------------------------------
    def matmul(self, a, b):
        return gemm_nt(a, _t(b))

    def linear_forward(self, x, weight, bias):
        x2 = x.reshape(-1, x.shape[-1])
        if bias is None:
            y = gemm_nt(x2, weight)
        else:
            y = gemm_nt(x2, weight, bias, _BIAS_COLS)
        return y.reshape(*x.shape[:-1], weight.shape[0])

    def linear_backward(self, x, weight, dy, has_bias=True, input_grad=True):
        x2 = x.reshape(-1, x.shape[-1])
        dy2 = np.ascontiguousarray(dy.reshape(-1, dy.shape[-1]))
        dx = None
        if input_grad:  # wide inputs: sums of weight rows; narrow ones: dot products with Wᵀ's rows
            features, outputs = x.shape[-1], dy.shape[-1]
            wide = features >= NN_INPUT_GRAD_FROM or features >= 2 * outputs
            dx = gemm_nn(dy2, weight) if wide else gemm_nt(dy2, _t(weight))
            dx = dx.reshape(x.shape)
        if x2.shape[0] > NN_WEIGHT_GRAD_ROWS:  # tall: dot products, whose 16 lanes keep float32 sums short
            dweight = gemm_nt(_t(dy2), _t(x2))
        else:
            dweight = gemm_nn(dy2, x2, trans_a=True)
        dbias = dy2.sum(axis=0) if has_bias else None
        return dx, dweight, dbias

    # convolution -------------------------------------------------------------
    def conv2d_forward(self, x, w, b, stride=1, padding=0, relu=False):
        x, w = np.ascontiguousarray(x, dtype=F32), np.ascontiguousarray(w, dtype=F32)
        n, c_in, height, width = x.shape
        c_out, _, kh, kw = w.shape
        h_out, w_out = _out_size(height, kh, stride, padding), _out_size(width, kw, stride, padding)
        y = np.empty((n, c_out, h_out, w_out), dtype=F32)
        direct, xp, cols, wide = _forward_scratch(_chunks(n), c_in, height, width, c_out, kh, kw, stride, padding)
        _conv_forward(
            len(xp),
            x,
            w,
            _weights_hwc(w),
            np.ascontiguousarray(b, dtype=F32),
            stride,
            padding,
            relu,
            direct,
            y,
            xp,
            cols,
            wide,
        )
        return y

    def conv2d_backward(self, x, w, dy, stride=1, padding=0, relu_output=None, input_grad=True):
        g = np.ascontiguousarray(dy, dtype=F32)
        if relu_output is not None:
            masked = np.empty_like(g)
            _relu_mask(g, relu_output, masked)
            g = masked
        x, w = np.ascontiguousarray(x, dtype=F32), np.ascontiguousarray(w, dtype=F32)
        plan, weights, parts, dx, scratch = _backward_setup(x.shape, w, stride, padding, input_grad)
        nothing = np.zeros((1, 1, 1, 1), dtype=F32)  # no pooling here: typed placeholders
        no_argmax = np.zeros((1, 1, 1, 1), dtype=np.int8)
        _conv_backward(len(parts[0]), x, g, False, nothing, no_argmax, 1, *weights, plan, *parts, dx, nothing, *scratch)
        return _gradients(parts, w, dx, input_grad)

    def conv_block_forward(self, x, w, b, stride=1, padding=0, pool=2):
        x, w = np.ascontiguousarray(x, dtype=F32), np.ascontiguousarray(w, dtype=F32)
        n, c_in, height, width = x.shape
        c_out, _, kh, kw = w.shape
        h_out, w_out = _out_size(height, kh, stride, padding), _out_size(width, kw, stride, padding)
        chunks = _chunks(n)
        pooled = np.empty((n, c_out, h_out // pool, w_out // pool), dtype=F32)
        argmax = np.empty(pooled.shape, dtype=np.int8)
        direct, xp, cols, wide = _forward_scratch(chunks, c_in, height, width, c_out, kh, kw, stride, padding)
        ybuf = np.empty((chunks, c_out, h_out, w_out), dtype=F32)
        _conv_block_forward(
            chunks,
            x,
            w,
            _weights_hwc(w),
            np.ascontiguousarray(b, dtype=F32),
            stride,
            padding,
            pool,
            direct,
            pooled,
            argmax,
            xp,
            cols,
            wide,
            ybuf,
        )
        return pooled, argmax

    def conv_block_backward(self, x, w, dpooled, pooled, argmax, stride=1, padding=0, pool=2, input_grad=True):
        x, w = np.ascontiguousarray(x, dtype=F32), np.ascontiguousarray(w, dtype=F32)
        n, c_in, height, width = x.shape
        c_out, _, kh, kw = w.shape
        h_out, w_out = _out_size(height, kh, stride, padding), _out_size(width, kw, stride, padding)
        plan, weights, parts, dx, scratch = _backward_setup(x.shape, w, stride, padding, input_grad)
        plan[5] = c_in == 1 and kh == kw == 3 and stride == 1 and pool == 2 and not input_grad
        # the unpooled gradients, or on that route the 16 planes of the input it reads
        gbuf = np.empty((_chunks(n), *((16, *pooled.shape[2:]) if plan[5] else (c_out, h_out, w_out))), dtype=F32)
        dpooled = np.ascontiguousarray(dpooled, dtype=F32)
        _conv_backward(
            len(parts[0]), x, dpooled, True, pooled, argmax, pool, *weights, plan, *parts, dx, gbuf, *scratch
        )
        return _gradients(parts, w, dx, input_grad)

    # pooling -----------------------------------------------------------------
    def maxpool2d_forward(self, x, size):
        n, c, height, width = x.shape
        y = np.empty((n, c, height // size, width // size), dtype=F32)
        argmax = np.empty(y.shape, dtype=np.int8)
        _maxpool_forward(np.ascontiguousarray(x), size, y, argmax)
        return y, argmax

    def maxpool2d_backward(self, dy, argmax, x_shape, size):
        dx = np.empty(x_shape, dtype=F32)
        _maxpool_backward(np.ascontiguousarray(dy), argmax, size, dx)
        return dx

    # activations ---------------------------------------------------------------
    def activation_forward(self, name, z):
        if name not in ("gelu", "relu"):
            return super().activation_forward(name, z)
        z = np.ascontiguousarray(z, dtype=F32)
        y = np.empty_like(z)
        (_gelu if name == "gelu" else _relu)(z.reshape(-1), y.reshape(-1))
        return y

    def activation_backward(self, name, z, dy):
        dz = np.empty_like(z)
        dy_flat = np.ascontiguousarray(dy).reshape(-1)
        if name == "gelu":
            _gelu_backward(np.ascontiguousarray(z, dtype=F32).reshape(-1), dy_flat, dz.reshape(-1))
        elif name == "relu":
            _relu_backward(z.reshape(-1), dy_flat, dz.reshape(-1))
        else:
            return super().activation_backward(name, z, dy)
        return dz

    # layer norm ----------------------------------------------------------------
    def layernorm_forward(self, x, gamma, beta, eps=1e-5):
        x2 = np.ascontiguousarray(x).reshape(-1, x.shape[-1])
        y, xhat = np.empty_like(x2), np.empty_like(x2)
        rstd = np.empty((x2.shape[0], 1), dtype=F32)
        _layernorm_forward(x2, gamma, beta, F32(eps), y, xhat, rstd)
        return y.reshape(x.shape), xhat.reshape(x.shape), rstd.reshape(*x.shape[:-1], 1)

    def layernorm_backward(self, dy, xhat, rstd, gamma):
        features = dy.shape[-1]
        dy2 = np.ascontiguousarray(dy).reshape(-1, features)
        dx = np.empty_like(dy2)
        _layernorm_backward(dy2, xhat.reshape(-1, features), rstd.reshape(-1, 1), gamma, dx)
        return dx.reshape(dy.shape), (dy2 * xhat.reshape(-1, features)).sum(axis=0), dy2.sum(axis=0)

    # attention -----------------------------------------------------------------
    def attention_forward(self, q, k, v):
        q, k, v = _contiguous_f32(q, k, v)
        n, heads, tokens, d = q.shape
        out = np.empty(q.shape, dtype=F32)
        probs = np.empty((n, heads, tokens, tokens), dtype=F32)
        _attention_forward(q, k, v, F32(1.0 / math.sqrt(d)), out, probs)
        return out, probs

    def attention_backward(self, q, k, v, probs, dout):
        q, k, v, probs, dout = _contiguous_f32(q, k, v, probs, dout)
        dq, dk, dv = (np.empty(q.shape, dtype=F32) for _ in range(3))
        _attention_backward(q, k, v, probs, dout, F32(1.0 / math.sqrt(q.shape[-1])), dq, dk, dv)
        return dq, dk, dv

    def split_heads(self, qkv, heads):
        n, tokens, three_d = qkv.shape
        shape = (n, heads, tokens, three_d // (3 * heads))
        q, k, v = (np.empty(shape, dtype=F32) for _ in range(3))
        _to_heads(np.ascontiguousarray(qkv), heads, 3, q, k, v)
        return q, k, v

    def split_heads_backward(self, dq, dk, dv):
        n, heads, tokens, d_head = dq.shape
        dqkv = np.empty((n, tokens, 3 * heads * d_head), dtype=F32)
        _from_heads(*(np.ascontiguousarray(g, dtype=F32) for g in (dq, dk, dv)), 3, dqkv)
        return dqkv

    def merge_heads(self, x):
        n, heads, tokens, d_head = x.shape
        out = np.empty((n, tokens, heads * d_head), dtype=F32)
        x = np.ascontiguousarray(x)
        _from_heads(x, x, x, 1, out)
        return out

    def merge_heads_backward(self, dy, heads):
        n, tokens, dim = dy.shape
        out = np.empty((n, heads, tokens, dim // heads), dtype=F32)
        _to_heads(np.ascontiguousarray(dy), heads, 1, out, out, out)
        return out

    # loss, input ---------------------------------------------------------------
    def classification_loss(self, logits, labels, kind="ce", alpha=1.0, gamma=2.0):
        """(loss, dlogits, correct) in one pass over the rows: for a small batch the NumPy
        version's dozen array operations cost more than the arithmetic."""
        logits = np.ascontiguousarray(logits, dtype=F32)
        labels = np.asarray(labels)
        if logits.ndim != 2 or labels.shape != (logits.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
            return super().classification_loss(logits, labels, kind, alpha, gamma)  # its clear errors
        batch, classes = logits.shape
        weights = np.atleast_1d(np.asarray(alpha, dtype=F32))
        if (weights.size > 1 and weights.shape != (classes,)) or (weights < 0).any() or gamma < 0 or batch == 0:
            return super().classification_loss(logits, labels, kind, alpha, gamma)
        dlogits = np.empty_like(logits)
        row_loss, row_correct = np.empty(batch, dtype=F32), np.empty(batch, dtype=np.int64)
        labels = labels.astype(np.int64, copy=False)
        focal = kind == "focal"
        loss, correct = _classification_loss(logits, labels, focal, weights, F32(gamma), dlogits, row_loss, row_correct)
        if correct < 0:
            return super().classification_loss(logits, labels, kind, alpha, gamma)  # raises: label out of range
        return float(loss), dlogits, int(correct)

    def normalize(self, x, mean, std):
        x = np.ascontiguousarray(x, dtype=F32)
        if x.ndim != 4 or np.ndim(mean) != 1 or np.ndim(std) != 1 or len(mean) != x.shape[1] or len(std) != x.shape[1]:
            return super().normalize(x, mean, std)
        out = np.empty_like(x)
        n, c = x.shape[:2]
        _normalize(x.reshape(n, c, -1), np.asarray(mean, dtype=F32), np.asarray(std, dtype=F32), out.reshape(n, c, -1))
        return out

    # optimizers ----------------------------------------------------------------
    def sgd_update(self, param, grad, velocity, lr, momentum, weight_decay):
        _sgd_update(
            param.reshape(-1),
            np.ascontiguousarray(grad).reshape(-1),
            velocity.reshape(-1),
            F32(lr),
            F32(momentum),
            F32(weight_decay),
        )

    def adam_update(self, param, grad, m, v, lr, beta1, beta2, eps, weight_decay, step):
        _adam_update(
            param.reshape(-1),
            np.ascontiguousarray(grad).reshape(-1),
            m.reshape(-1),
            v.reshape(-1),
            F32(lr),
            F32(beta1),
            F32(beta2),
            F32(eps),
            F32(weight_decay),
            F32(1 - beta1**step),
            F32(1 - beta2**step),
        )


def _float32_if_float(array):
    dtype = getattr(array, "dtype", None)
    if dtype is not None and np.issubdtype(dtype, np.floating):
        return F32
    return None
