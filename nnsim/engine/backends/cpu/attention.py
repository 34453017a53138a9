"""Attention, forward and backward, with samples along the vector lanes; and the heads' layout.

Attention puts samples along the vector lanes: at the ViT's 17 tokens and 16 numbers a head,
loops over a (sample, head)'s own rows are too short for LLVM's vector loops, which want 64
iterations; copied into (tokens, d, lanes) blocks, every loop runs over 64 lanes. The copies
in and out are transposes (_transpose_flat): copied one number at a time they took half of
the forward's time.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from nnsim.engine.backends.cpu.conv_sample import _copy_run
from nnsim.engine.backends.cpu.jit import _JIT, F32
from nnsim.engine.backends.cpu.transpose import _transpose_flat

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
    at, start = (n0 * heads + h) * plane, np.int64(0)
    _transpose_flat(x.reshape(x.size), at, heads * plane, dst.reshape(dst.size), start, dst.shape[2], lanes, plane)


@njit(**_JIT)
def _from_lanes(src, n0, h, lanes, x):
    """x[n0 + l, h, t, e] = src[t, e, l] for the block's lanes: _to_lanes the other way."""
    heads, plane = x.shape[1], x.shape[2] * x.shape[3]
    at, start = (n0 * heads + h) * plane, np.int64(0)
    _transpose_flat(src.reshape(src.size), start, src.shape[2], x.reshape(x.size), at, heads * plane, plane, lanes)


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


@njit(**{**_JIT, "fastmath": False})
def _reciprocals(x):
    """x[i] = 1 / x[i], rounded once (fastmath's reciprocal estimate made a lone token's
    probability 0.99999994, not 1, and its exactly-zero gradients 1e-7 instead)."""
    for i in range(x.size):
        x[i] = F32(1.0) / x[i]


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
    _reciprocals(top)
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
