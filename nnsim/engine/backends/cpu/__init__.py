"""The CPU backend: Numba-compiled kernels, parallel over the cores, for float32 training.

Most of the arithmetic of our networks is one operation: a matrix product. Here it is one kernel,
``_gemm_nt``, C = A·Bᵀ with both operands contiguous along the summed axis, computed 4×4 outputs
at a time so that each loaded number is used four times; LLVM turns its inner loop into SIMD
instructions. Linear layers, convolutions (through im2col) and batched matmuls all call it.
Attention, layer norm, GELU, max-pool and the optimizer updates have fused kernels of their own.

One module a family, each importing only those below it:

    jit.py          how kernels are compiled (`_JIT`), and the parallel loop run by address
    matmul.py       C = A·Bᵀ and C = A·B            transpose.py   8×8 transposes in registers
    conv_sample.py  one sample's convolution         pool.py        max-pooling, fused and alone
    conv_plan.py    a convolution's plan and buffers, as NamedTuples
    conv.py         convolutions over a batch, in chunks
    attention.py    attention, samples along the vector lanes, and the heads' layout
    rows.py         activations, the loss, normalisation, layer norm, optimizer updates
    warm_up.py      compiling it all before a run needs it    backend.py   `CpuBackend`

Numba caches each compiled kernel by the file that defines it, and does not notice when a kernel
it inlined from another file changes: when any of these files (or rowmath.py) changes, all the
package's cached kernels are forgotten (jit._forget_stale_kernels).
Every kernel is proven equal to the reference backend by tests/engine/test_backend_parity.py.
Numba is imported when this backend is first asked for, never at app start.
"""

from nnsim.engine.backends.cpu.attention import _softmax_lanes
from nnsim.engine.backends.cpu.backend import CpuBackend
from nnsim.engine.backends.cpu.jit import _JIT, _Chunked
from nnsim.engine.backends.cpu.matmul import gemm_nn, gemm_nt
from nnsim.engine.backends.cpu.transpose import _t
from nnsim.engine.backends.cpu.warm_up import _compile_in_another_process

# (the underscored names are for the tests, which reach into the kernels)
__all__ = [
    "CpuBackend",
    "gemm_nn",
    "gemm_nt",
    "_JIT",
    "_Chunked",
    "_compile_in_another_process",
    "_softmax_lanes",
    "_t",
]
