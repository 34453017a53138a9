"""How every cpu kernel is compiled, and the parallel loop the convolutions run in.

`_JIT` holds the options of every kernel of this package. `_Chunked` runs a serial kernel for
every chunk of a batch on all cores, calling it through its address (see its docstring).

A kernel that calls another with a constant passes it as a run-time value, `np.int64(0)` or
`np.bool_(True)`, and leaves no argument to its default: Numba compiles the callee again for each
literal value (tests/engine/test_cpu_kernels_compile_once.py reads the source for this).
"""

from __future__ import annotations

import hashlib
from contextlib import suppress
from pathlib import Path

import numba
import numpy as np
from numba import njit, prange, types
from numba._dispatcher import compute_fingerprint  # (what Numba's own dispatcher keys its overloads by)
from numba.core import cgutils
from numba.extending import intrinsic

from nnsim.engine.backends import rowmath
from nnsim.engine.backends.warm import _write, cache_folder

F32 = np.float32


def _sources() -> list[Path]:
    """The files the package's kernels are compiled from."""
    return [*sorted(Path(__file__).parent.glob("*.py")), Path(rowmath.__file__)]


def _forget_stale_kernels(folder: Path | None, sources: list[Path]) -> None:
    """Numba keys a cached kernel by its own file only, so a kernel that inlined another file's
    (conv.py's use _gemm_rows, from matmul.py) would load as compiled before that file changed.
    When any of `sources` changes, the kernels cached in `folder` are forgotten (their indexes
    removed), as when the package was one file; a stamp file beside them says what they are of."""
    if folder is None:
        return
    digest = hashlib.sha256(b"".join(path.name.encode() + path.read_bytes() for path in sources)).hexdigest()
    stamp = folder / "nnsim-cpu-sources"
    with suppress(OSError):
        if stamp.read_text(encoding="utf-8") == digest:
            return
    for index in folder.glob("*.nbi"):
        with suppress(OSError):  # (another process forgot it first)
            index.unlink()
    _write(stamp, digest)


_CACHE = cache_folder(__file__)
_forget_stale_kernels(_CACHE, _sources())
# error_model "numpy": x / 0 gives inf rather than raising, so a loop that divides has no check
# (and no branch) in it, and vectorises: GELU's rational tanh ran 13× faster for it. Cached where a
# folder for Numba's cache is writable (not so in some system-wide installs): in memory elsewhere.
_JIT = {"cache": _CACHE is not None, "nogil": True, "fastmath": True, "error_model": "numpy"}


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

    Arguments may be NamedTuples that name buffers travelling together. A parallel loop takes
    only arrays and numbers, so it is given their fields one by one; the kernel, compiled for the
    NamedTuples, receives the same machine arguments, since Numba passes a tuple to a compiled
    function as its fields in order.
    """

    def __init__(self, kernel):
        self.kernel = kernel
        self._addresses = {}  # one per kind of arguments (fingerprinted as Numba's dispatcher does)

    def __call__(self, chunks: int, *args) -> None:
        fields = _fields(args)
        key = (compute_fingerprint(fields), *(type(arg) for arg in args if isinstance(arg, tuple)))
        address = self._addresses.get(key)
        if address is None:
            compiled = self.kernel.get_compile_result(types.void(types.int64, *map(numba.typeof, args)))
            address = self._addresses[key] = compiled.library.get_pointer_to_function(compiled.fndesc.llvm_func_name)
        _run_chunks(address, chunks, *fields)


def _fields(args: tuple) -> tuple:
    """args with every tuple among them replaced by its fields, in order (recursively)."""
    if not any(isinstance(arg, tuple) for arg in args):
        return args
    return tuple(field for arg in args for field in (_fields(arg) if isinstance(arg, tuple) else (arg,)))
