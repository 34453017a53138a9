"""The CUDA backend: every op of a training step as a Numba CUDA kernel, arrays on the GPU.

Parameters, activations, gradients and optimizer state stay on the device for the whole run; a
step copies in the batch and copies out two numbers (the loss and the count of correct answers).
Layout and maths follow the reference backend, which tests hold it to (on a real GPU, or in
Numba's CUDA simulator with NUMBA_ENABLE_CUDASIM=1 on tiny shapes).

How the work is spread over threads, the idea the lessons show:
- matrix products: a 16×16 block of threads computes a 16×16 tile of the output, staging tiles of
  both operands in shared memory so that each number read from global memory is used 16 times;
- convolutions: the same tiled product, with the input tile gathered straight from the image
  (implicit GEMM: the unrolled im2col matrix is never written out);
- attention: one block per (sample, head), one thread per query token;
- everything elementwise: one thread per number.

One module a family: grid.py (threads, blocks, flat indices), matmul.py, conv.py (and pooling),
attention.py (and the token layout), rows.py (elementwise, loss, optimizers, layer norm), and
backend.py (`CudaBackend`).
"""

try:
    from numba import cuda  # noqa: F401  (first: without numba-cuda, one clear ModuleNotFoundError)
except ImportError as error:  # pragma: no cover - depends on the install
    raise ModuleNotFoundError("numba.cuda", name="numba.cuda") from error

from nnsim.engine.backends.cuda.attention import MAX_TOKENS
from nnsim.engine.backends.cuda.backend import CudaBackend
from nnsim.engine.backends.cuda.grid import simulated

__all__ = ["MAX_TOKENS", "CudaBackend", "simulated"]
