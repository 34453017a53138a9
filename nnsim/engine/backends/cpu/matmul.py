"""Matrix products: C = A·Bᵀ (`gemm_nt`) and C = A·B (`gemm_nn`), 4×4 or 4-row blocks in registers.

Most of the arithmetic of our networks is one of these: linear layers, convolutions (through
im2col) and batched matmuls all call them.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from nnsim.engine.backends.cpu.jit import _JIT, F32
from nnsim.engine.backends.rowmath import BIAS_COLS, BIAS_NONE, BIAS_ROWS


# (long: the 4×4 block's sixteen sums written out one by one, so that LLVM keeps them in registers)
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
            if bias_mode == BIAS_ROWS:
                value += bias[i]
            elif bias_mode == BIAS_COLS:
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
        _gemm_rows(a[z if a.shape[0] > 1 else 0], b[z if b.shape[0] > 1 else 0], cz, i0, rows, np.bool_(False))
        if bias_mode != BIAS_NONE or relu:
            _bias_relu(cz[i0 : i0 + rows], bias[i0 : i0 + rows] if bias_mode == BIAS_ROWS else bias, bias_mode, relu)


_NO_BIAS = np.zeros(1, dtype=F32)


def gemm_nt(a: np.ndarray, b: np.ndarray, bias=None, bias_mode: int = BIAS_NONE, relu: bool = False):
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
