"""Transposes in 8×8 tiles held in registers: for the matrix products and attention's lanes."""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from nnsim.engine.backends.cpu.jit import _JIT, F32

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
