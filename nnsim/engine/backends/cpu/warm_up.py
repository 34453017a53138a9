"""Compiling the cpu kernels before a run needs them: each run once on tiny arrays, in order, and
the slowest to compile (the conv block) by a second Python process at the same time.

Numba compiles a kernel the first time it runs and keeps the result in its cache folder (see
backends/warm.py for how processes share that work); `warm_up` is what one process does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np

from nnsim.engine.backends.cpu.jit import _CACHE, _JIT, F32
from nnsim.engine.backends.cpu.matmul import gemm_nn
from nnsim.engine.backends.cpu.transpose import _t


def warm_up(backend, report=None, everything: bool = False) -> None:
    """backend.warm_up (see CpuBackend.warm_up for what it promises)."""
    steps = [step for step in backend._warm_up_steps() if everything or step[0] not in backend.LAZY_KERNELS]
    total = len(steps)
    report = report or (lambda name, done, total: None)
    (first_name, first_run), rest = steps[0], steps[1:]
    alongside = [step for step in rest if step[0] in backend.COMPILED_ALONGSIDE]
    shared = bool(alongside) and _JIT["cache"] and (os.cpu_count() or 1) > 1  # (no cache: nothing to share)
    helper = None
    try:
        if shared and not _cached(backend.ALONGSIDE_FILES):  # plainly cold: the helper starts at once
            helper = _compile_in_another_process([name for name, _ in alongside])
        report(first_name, 0, total)
        started = time.perf_counter()
        first_run()
        cold = time.perf_counter() - started > backend.COLD_FIRST_STEP_S
        if shared and helper is None and cold:  # cached, but not for this Numba or this machine
            helper = _compile_in_another_process([name for name, _ in alongside])
        if helper is not None:
            rest = [step for step in rest if step not in alongside] + alongside
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


def _cached(prefix: str) -> bool:
    """Whether Numba's cache folder holds a kernel index of a source file whose name starts with
    `prefix` (none there: those kernels will be compiled)."""
    return _CACHE is not None and any(_CACHE.glob(f"{prefix}*.nbi"))


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


def warm_up_steps(backend):
    """(name, run) for each kernel family of `backend`, in the order a warm-up runs them."""
    rng = np.random.default_rng(0)

    def r(*shape):
        return rng.standard_normal(shape).astype(F32)

    x, w, b, q, y = r(2, 2, 6, 6), r(3, 2, 3, 3), r(3), r(2, 2, 5, 4), r(2, 3, 6, 6)
    return [
        ("matrix product", lambda: (backend.matmul(r(5, 6), r(6, 7)), gemm_nn(r(5, 6), r(6, 7)))),
        ("transpose", lambda: _t(r(5, 6))),
        ("convolution forward", lambda: backend.conv2d_forward(x, w, b, 1, 1, relu=True)),
        ("convolution backward", lambda: backend.conv2d_backward(x, w, r(2, 3, 6, 6), 1, 1, relu_output=y)),
        (
            "conv block",
            lambda: backend.conv_block_backward(
                x, w, r(2, 3, 3, 3), *backend.conv_block_forward(x, w, b, 1, 1), 1, 1, 2
            ),
        ),
        ("max-pool", lambda: backend.maxpool2d_backward(r(2, 3, 3, 3), backend.maxpool2d_forward(y, 2)[1], y.shape, 2)),
        (
            "activations",
            lambda: (
                backend.activation_forward("relu", x),
                backend.activation_backward("relu", x, x),
                backend.activation_backward("gelu", x, x),
                backend.activation_forward("gelu", x),
            ),
        ),
        (
            "loss and input",
            lambda: (
                backend.classification_loss(r(3, 4), np.array([0, 3, 1])),
                backend.classification_loss(r(3, 4), np.array([0, 3, 1]), "focal", 0.5, 2.0),
                backend.normalize(x, b[:2], b[:2] + 3),
            ),
        ),
        (
            "layer norm",
            lambda: backend.layernorm_backward(x, *backend.layernorm_forward(x, b[:1] + 1, b[:1])[1:], b[:1]),
        ),
        ("attention", lambda: backend.attention_backward(q, q, q, backend.attention_forward(q, q, q)[1], q)),
        (
            "attention heads",
            lambda: (
                backend.split_heads(r(2, 5, 12), 2),
                backend.split_heads_backward(q, q, q),
                backend.merge_heads(q),
                backend.merge_heads_backward(r(2, 5, 8), 2),
            ),
        ),
        (
            "optimizers",
            lambda: (
                backend.sgd_update(r(4), r(4), r(4), 0.1, 0.9, 0.0),
                backend.adam_update(r(4), r(4), r(4), np.abs(r(4)), 0.1, 0.9, 0.999, 1e-8, 0.0, 1),
            ),
        ),
    ]
