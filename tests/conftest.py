import os

# CUDA kernels are tested in Numba's simulator unless a run asks otherwise (NUMBA_ENABLE_CUDASIM=0 on
# a machine with a GPU). Set before anything imports numba.cuda.
os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
# Threads that wait for work sleep instead of spinning (GNU OpenMP, Numba's threading layer here):
# the parallel workers, and the `nnsim` processes the tests start, share two cores, and a pool
# spinning on a core the other needs slowed both down many times over (two 40-step CNN trainings
# side by side: about 380 images/s each with spinning, 5,000–7,000 without). Set before Numba
# loads OpenMP; the processes the tests start inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import pytest

from nnsim.engine.backends import get_backend


def pytest_xdist_auto_num_workers(config):
    """`-n auto`: a worker more than the cores. Some tests spend seconds waiting (on a subprocess, the
    app's next event, the bench's pauses between timings), and a core idles while its only worker
    waits."""
    return (os.cpu_count() or 1) + 1


def pytest_sessionstart(session):
    """With parallel workers (pytest-xdist, `-n` in pyproject's addopts), compile the cpu kernels
    into Numba's cache once, here, before the workers start: they then load them from the cache
    instead of each compiling the same kernels at the same time (20–40 s each on an empty cache).
    On a warm cache this only loads them (a second or so)."""
    if os.environ.get("PYTEST_XDIST_WORKER") or not getattr(session.config.option, "numprocesses", None):
        return
    try:
        get_backend("cpu").warm_up(everything=True)
    except Exception:  # no Numba (its tests are skipped), or a kernel that fails: its tests say how
        pass


# The longest tests (1–2.5 minutes each on 2 busy cores), started first: with parallel workers the
# short ones then fill in around them, rather than one of these starting last while the other
# worker has nothing left to do. A name no longer collected is simply not moved.
LONGEST_FIRST = (
    "tests/tui/test_lab_run.py::test_500_random_keys_during_training_then_q_leaves_one_run_intact",
    "tests/test_gpu_check.py::test_every_part_runs_in_the_simulator",  # its module's run, shared
    "tests/tui/test_lab.py::test_digits_drawn_with_the_mouse_are_read_right",
    "tests/test_cli.py::test_bench_quick_json",
    "tests/engine/test_backend_parity.py::test_training_steps_give_the_reference_losses[cuda-vit 8px adam]",
    "tests/engine/test_backend_parity.py::test_training_steps_give_the_reference_losses[cuda-cnn 8px adam]",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid, len(rank)))  # stable: the rest keep their order


@pytest.fixture
def ref():
    return get_backend("reference")


@pytest.fixture
def rng():
    return np.random.default_rng(0)
