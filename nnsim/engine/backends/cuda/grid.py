"""How the CUDA kernels' work is laid out over threads: block sizes, launch grids, flat indices,
and the device arrays' shapes."""

from __future__ import annotations

import threading

import numpy as np
from numba import cuda

F32 = np.float32
TILE = 16  # a tiled kernel's block is TILE × TILE threads
THREADS = 256  # threads a block of a kernel with one thread per number


def _blocks(count: int, threads: int = THREADS) -> int:
    return max(1, (count + threads - 1) // threads)


@cuda.jit(device=True)
def _unravel(i, d1, d2, d3):
    """Flat index i of a C-ordered (·, d1, d2, d3) array as its four coordinates."""
    return i // (d1 * d2 * d3), (i // (d2 * d3)) % d1, (i // d3) % d2, i % d3


@cuda.jit(device=True)
def _unravel3(i, d1, d2):
    """Flat index i of a C-ordered (·, d1, d2) array as its three coordinates."""
    return i // (d1 * d2), (i // d2) % d1, i % d2


def simulated() -> bool:
    from numba import config

    return bool(config.ENABLE_CUDASIM)


def allocate_shared_arrays_under_a_lock() -> None:
    """Numba's simulator makes a block's shared array on the first thread's call: it looks the array
    up by the calling line and, when none is there, makes one and stores it. Two threads between the
    look-up and the store make two arrays, and each writes into its own: a tiled kernel's sums came
    out wrong (a parity test's relative error 0.23; 1 run in 12 on a busy machine with Python
    switching threads every 0.5 ms, rarer at its usual 5 ms). Here the look-up and the store are
    one step under a lock (the simulator only; once per process)."""
    import sys

    from numba.core import types
    from numba.cuda.simulator import kernelapi
    from numba.np import numpy_support

    make = kernelapi.FakeCUDAShared.array
    if getattr(make, "under_a_lock", False):
        return
    lock = threading.Lock()

    def array(self, shape, dtype, alignment=None):
        if shape == 0 or alignment is not None:  # dynamic shared memory (one buffer), or refused
            return make(self, shape, dtype, alignment)
        dtype = numpy_support.as_dtype(dtype) if isinstance(dtype, types.Type) else dtype
        kernel = sys._getframe(1)
        caller = (kernel.f_code.co_filename, kernel.f_lineno)  # the simulator's own key: file and line
        with lock:
            found = self._allocations.get(caller)
            if found is None:
                found = self._allocations[caller] = np.empty(shape, dtype)
        return found

    array.under_a_lock = True
    kernelapi.FakeCUDAShared.array = array


def _flat(array):
    """A 1-D view of a contiguous device array."""
    return array.reshape(array.size)


def _on_device(array) -> bool:
    return hasattr(array, "copy_to_host")  # a Numba device array, real or simulated


def _tiles(count: int) -> int:
    return max(1, (count + TILE - 1) // TILE)


def _warp_multiple(count: int) -> int:
    return max(32, (count + 31) // 32 * 32)


def _resolve(shape, size: int) -> tuple:
    """Replace a -1 in a shape by what makes it hold `size` numbers (device arrays need it spelled out)."""
    shape = tuple(int(s) for s in shape)
    if -1 in shape:
        known = int(np.prod([s for s in shape if s != -1]))
        shape = tuple(size // known if s == -1 else s for s in shape)
    return shape
