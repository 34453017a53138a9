"""Matrix products in 16×16 tiles through shared memory, transposes, and sums over rows."""

from __future__ import annotations

from numba import cuda

from nnsim.engine.backends.cuda.grid import F32, TILE
from nnsim.engine.backends.rowmath import BIAS_COLS, BIAS_ROWS


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
        if bias_mode == BIAS_ROWS:
            total += bias[row]
        elif bias_mode == BIAS_COLS:
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


@cuda.jit
def _product_column_sums(a, b, out):
    """out[j] = Σ_i a[i, j] · b[i, j] (the layer-norm γ gradient)."""
    j = cuda.grid(1)
    if j < a.shape[1]:
        total = F32(0.0)
        for i in range(a.shape[0]):
            total += a[i, j] * b[i, j]
        out[j] = total
