"""The CUDA backend beyond parity (which test_backend_parity.py checks, in Numba's simulator here)."""

import pytest

from nnsim.errors import NnsimError

cuda = pytest.importorskip("numba.cuda", reason="the cuda extra (numba-cuda) is not installed")
pytestmark = pytest.mark.cuda_sim


@pytest.fixture(scope="module")
def gpu():
    from nnsim.engine.backends import get_backend

    try:
        return get_backend("cuda")
    except NnsimError as error:
        pytest.skip(str(error))


def test_the_simulators_shared_arrays_are_one_per_line_however_threads_interleave(gpu):
    """Two threads of a block ask for the same shared array; the first is held between its look-up
    and its store (as a thread switch there would hold it). Both get one array, not one each."""
    import threading

    import numpy as np
    from numba.cuda.simulator import kernelapi

    if not gpu.simulated:
        pytest.skip("Numba's simulator only")
    looked_up, go_on = threading.Event(), threading.Event()

    class HeldAfterTheFirstLookUp(dict):
        def get(self, key, default=None):
            found = super().get(key, default)
            if threading.current_thread().name == "first":
                looked_up.set()
                go_on.wait(0.5)  # the second thread asks meanwhile (or waits on the lock: 0.5 s)
            return found

    shared = kernelapi.FakeCUDAShared(0)
    shared._allocations = HeldAfterTheFirstLookUp()
    got = {}

    def ask(name):  # the same line for both threads: one shared array
        got[name] = shared.array((4,), np.float32)

    first = threading.Thread(target=ask, args=("first",), name="first")
    first.start()
    looked_up.wait(5)
    second = threading.Thread(target=ask, args=("second",), name="second")
    second.start()
    second.join(0.2)
    go_on.set()
    first.join(5)
    second.join(5)
    assert got["first"] is got["second"]
    a = shared.array((2,), np.float32)
    b = shared.array((2,), np.float32)
    assert a is not b  # two lines: two arrays


def test_simulator_is_never_picked_by_auto(gpu):
    from nnsim.engine.backends import get_backend

    if gpu.simulated:
        assert get_backend("auto").name != "cuda"


def test_attention_beyond_the_token_limit_is_one_clear_error(gpu):
    import numpy as np

    from nnsim.engine.backends.cuda import MAX_TOKENS

    q = gpu.asarray(np.zeros((1, 1, MAX_TOKENS + 1, 2), np.float32))
    with pytest.raises(NnsimError, match=f"up to {MAX_TOKENS} tokens, got {MAX_TOKENS + 1}"):
        gpu.attention_forward(q, q, q)


def test_auto_picks_cuda_where_a_gpu_runs_kernels_and_cpu_elsewhere(gpu, monkeypatch):
    from nnsim.engine import backends
    from nnsim.engine.backends.cuda import backend as cuda_module

    fallback = "cpu" if "cpu" in backends.available_backends() else "reference"
    uncached = backends.get_backend.__wrapped__
    monkeypatch.setattr(backends, "get_backend", uncached)  # fresh look-ups; the shared cache is left alone
    monkeypatch.setattr(cuda_module, "simulated", lambda: False)  # kernels run as on a machine with a GPU
    assert uncached("auto").name == "cuda"
    monkeypatch.setattr(cuda_module.cuda, "is_available", lambda: False)  # no GPU, or no driver
    assert uncached("auto").name == fallback
