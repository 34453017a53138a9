import os

# CUDA kernels are tested in Numba's simulator unless a run asks otherwise (NUMBA_ENABLE_CUDASIM=0 on
# a machine with a GPU). Set before anything imports numba.cuda.
os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import numpy as np
import pytest

from nnsim.engine.backends import get_backend


@pytest.fixture
def ref():
    return get_backend("reference")


@pytest.fixture
def rng():
    return np.random.default_rng(0)
