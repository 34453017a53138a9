"""Trainings that share the machine: a lock file each, cores ÷ trainings running threads each."""

import threading
import time

import numba
import numpy as np
import pytest

from nnsim.engine.backends import get_backend, sharing
from nnsim.engine.backends.sharing import CoreShare
from nnsim.engine.trainer import Trainer
from tests.engine.test_trainer import config, tiny_dataset


@pytest.fixture(autouse=True)
def count_every_time(monkeypatch):
    monkeypatch.setattr(sharing, "RECOUNT_S", 0.0)


def test_each_training_takes_the_cores_divided_by_the_trainings_running(tmp_path):
    first, second, third = (CoreShare(tmp_path, cores=4) for _ in range(3))
    first.join()
    assert first.threads() == 4
    second.join()
    assert (first.threads(), second.threads()) == (2, 2)
    third.join()
    assert first.threads() == 1  # never none
    second.leave()
    third.leave()
    assert first.threads() == 4 and first.running() == 1
    first.leave()
    assert not list(tmp_path.iterdir())  # each took its file with it


def test_a_dead_trainings_file_is_not_counted_and_is_removed(tmp_path):
    dead = tmp_path / "12345-1.training"
    dead.write_text("")  # nobody holds its lock: its process ended without tidying up
    being_made = tmp_path / ".12346-1.part"
    being_made.write_text("")
    share = CoreShare(tmp_path, cores=2)
    share.join()
    assert share.running() == 1 and share.threads() == 2
    assert not dead.exists() and being_made.exists()
    share.leave()


def test_no_folder_to_share_in_means_every_core(tmp_path):
    blocked = tmp_path / "a file"
    blocked.write_text("")
    share = CoreShare(blocked / "trainings", cores=2)
    share.join()
    assert not share.joined and share.threads() == 2


def test_a_cpu_training_steps_on_its_share_and_a_paused_one_leaves_the_cores(tmp_path, monkeypatch):
    monkeypatch.setattr(sharing, "default_folder", lambda: tmp_path)
    monkeypatch.setattr(sharing, "available_cores", lambda: 2)
    used = []
    backend = get_backend("cpu")
    monkeypatch.setattr(type(backend), "use_threads", lambda self, count: used.append(count))
    other = CoreShare(tmp_path, cores=2)
    other.join()
    trainer = Trainer(config(backend="cpu", epochs=1), tiny_dataset())
    run = trainer.run()
    next(run)
    assert used == [1] and other.running() == 2  # two trainings on two cores: a thread each
    trainer.pause()
    stepping = threading.Thread(target=next, args=(run,))
    stepping.start()
    deadline = time.monotonic() + 10
    while other.running() != 1 and time.monotonic() < deadline:  # the paused one lets its lock go
        stepping.join(0.01)
    assert other.running() == 1
    other.leave()
    trainer.resume()
    stepping.join()
    assert used[-1] == 2  # alone now: both cores
    list(run)
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="one thread only: nothing to share")
def test_a_convolutions_numbers_do_not_depend_on_the_threads_it_runs_on():
    backend = get_backend("cpu")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3, 10, 10)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    results = []
    for threads in (numba.config.NUMBA_NUM_THREADS, 1):
        backend.use_threads(threads)
        pooled, argmax = backend.conv_block_forward(x, w, b, 1, 1)
        dpooled = np.linspace(-1, 1, pooled.size, dtype=np.float32).reshape(pooled.shape)
        results.append((pooled, *backend.conv_block_backward(x, w, dpooled, pooled, argmax, 1, 1, 2)))
    backend.use_threads(numba.config.NUMBA_NUM_THREADS)
    for one, other in zip(*results, strict=True):
        np.testing.assert_array_equal(one, other)
