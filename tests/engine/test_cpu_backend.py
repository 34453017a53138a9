"""The Numba CPU backend beyond parity (which test_backend_parity.py checks): auto, warm-up, the GIL."""

import numpy as np
import pytest

from nnsim.engine.backends import get_backend

pytest.importorskip("numba")


@pytest.fixture(scope="module")
def cpu():
    return get_backend("cpu")


def rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def test_auto_picks_cpu_without_a_gpu(cpu):
    assert get_backend("auto").name in ("cpu", "cuda")
    if get_backend("auto").name == "cpu":
        assert get_backend("auto") is cpu


def test_warm_up_reports_every_kernel(cpu):
    seen = []
    cpu.warm_up(lambda name, done, total: seen.append((name, done, total)))
    assert seen[0][1] == 0 and seen[-1] == ("ready", seen[-1][2], seen[-1][2])
    assert {"matrix product", "conv block", "attention"} <= {name for name, _, _ in seen}


def test_kernels_release_the_gil(cpu, rng):
    """The training worker runs kernels while the UI thread keeps running Python."""
    import threading

    a, b = rand(rng, 700, 700), rand(rng, 700, 700)
    cpu.matmul(a, b)
    done = threading.Event()
    ticks = 0

    def work():
        for _ in range(20):
            cpu.matmul(a, b)
        done.set()

    worker = threading.Thread(target=work)
    worker.start()
    while not done.is_set():
        ticks += 1
    worker.join()
    assert ticks > 1000  # the main thread ran thousands of loop turns meanwhile
