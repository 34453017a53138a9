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
