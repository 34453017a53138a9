import numpy as np
import pytest

from nnsim.engine.backends import get_backend


@pytest.fixture
def ref():
    return get_backend("reference")


@pytest.fixture
def rng():
    return np.random.default_rng(0)
