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
    assert get_backend("auto") is cpu  # this machine has no GPU, and the simulator is never picked


def test_warm_up_reports_every_kernel(cpu):
    seen = []
    cpu.warm_up(lambda name, done, total: seen.append((name, done, total)))
    assert seen[0][1] == 0 and seen[-1] == ("ready", seen[-1][2], seen[-1][2])
    assert {"matrix product", "conv block", "attention"} <= {name for name, _, _ in seen}
    assert not set(cpu.LAZY_KERNELS) & {name for name, _, _ in seen}  # no model uses them: compiled on first use
    seen.clear()
    cpu.warm_up(lambda name, done, total: seen.append((name, done, total)), everything=True)
    assert set(cpu.LAZY_KERNELS) <= {name for name, _, _ in seen}


def _main_thread_rate(work) -> float:
    """Loop turns per second the main thread makes while `work` runs in another thread."""
    import threading
    import time

    done = threading.Event()

    def run():
        work()
        done.set()

    worker = threading.Thread(target=run)
    ticks, t0 = 0, time.perf_counter()
    worker.start()
    while not done.is_set():
        ticks += 1
    elapsed = time.perf_counter() - t0
    worker.join()
    return ticks / max(elapsed, 1e-9)


def test_kernels_release_the_gil(cpu, rng):
    """The training worker runs kernels while the UI thread keeps running Python: the main thread
    makes many times the progress it makes beside a kernel that holds the GIL."""
    import numba

    @numba.njit(nogil=False)
    def holds_the_gil(a, b, reps):  # the control: native code that never lets go of the GIL
        total = 0.0
        for _ in range(reps):
            for i in range(a.shape[0]):
                for j in range(a.shape[1]):
                    total += a[i, j] * b[j, i]
        return total

    a, b = rand(rng, 700, 700), rand(rng, 700, 700)
    cpu.matmul(a, b)
    holds_the_gil(a, b, 1)  # compile first
    released = _main_thread_rate(lambda: [cpu.matmul(a, b) for _ in range(20)])
    held = _main_thread_rate(lambda: holds_the_gil(a, b, 400))  # about 0.1 s: many switch intervals
    assert released > 5 * max(held, 1.0), (released, held)


def test_weight_gradients_over_many_rows_keep_float32_precision(cpu):
    """Summing thousands of rows into each float32 weight gradient in turn lets rounding build
    up (that cost the full-MNIST CNN most of a point of accuracy once): against float64, the
    conv block's and a tall linear layer's dW stay within 1e-6 of their largest entry."""
    ref = get_backend("reference")
    rng = np.random.default_rng(0)

    def worst(a, exact):
        return float(np.abs(a - exact).max() / np.abs(exact).max())

    x = rng.random((64, 16, 14, 14), dtype=np.float32)
    w = rand(rng, 32, 16, 3, 3) * 0.1
    b = np.zeros(32, dtype=np.float32)
    dpooled = rand(rng, 64, 32, 7, 7) * 0.01
    pooled, argmax = cpu.conv_block_forward(x, w, b, 1, 1)
    _, dw, _ = cpu.conv_block_backward(x, w, dpooled, pooled, argmax, 1, 1, 2)
    x64, w64, b64, d64 = (v.astype(np.float64) for v in (x, w, b, dpooled))
    _, dw64, _ = ref.conv_block_backward(x64, w64, d64, *ref.conv_block_forward(x64, w64, b64, 1, 1), 1, 1, 2)
    assert worst(dw, dw64) < 1e-6

    tokens, dy = rng.random((4352, 128), dtype=np.float32), rand(rng, 4352, 64) * 0.01
    _, dweight, _ = cpu.linear_backward(tokens, rand(rng, 64, 128), dy)
    assert worst(dweight, dy.astype(np.float64).T @ tokens.astype(np.float64)) < 1e-6


@pytest.mark.parametrize("shape", [(1, 1), (16, 16), (15, 17), (17, 15), (48, 33), (2, 35, 16), (3, 16, 50), (130, 21)])
def test_transpose_in_tiles_and_edges(shape):
    """Matrix products transpose one operand in 8×8 tiles held in registers; rows and columns
    past the last whole tile take another path, a leading axis is a batch of matrices, and
    more than 64 rows are split among parallel tasks (the last one short)."""
    from nnsim.engine.backends.cpu import _t

    x = rand(np.random.default_rng(0), *shape)
    np.testing.assert_array_equal(_t(x), np.swapaxes(x, -1, -2))


class _StepsRecorded:
    """A cpu backend whose warm-up steps only record that they ran."""

    def __init__(self, monkeypatch, helper_exit=0, polls_before_exit=2):
        from nnsim.engine.backends.cpu import CpuBackend
        from nnsim.engine.backends.cpu import warm_up as cpu_module

        self.ran, self.reports, self.asked, self.killed, self.asked_after = [], [], [], [], []
        backend = CpuBackend()
        names = ("matrix product", "conv block", "attention", "max-pool", "optimizers")
        monkeypatch.setattr(
            backend, "_warm_up_steps", lambda: [(name, lambda name=name: self.ran.append(name)) for name in names]
        )
        monkeypatch.setattr(backend, "COLD_FIRST_STEP_S", -1.0)  # every first step counts as compiled
        monkeypatch.setattr(cpu_module.time, "sleep", lambda seconds: None)
        recorder = self

        class Helper:
            polls = 0
            returncode = None

            def poll(self):
                self.polls += 1
                if self.polls > polls_before_exit:
                    self.returncode = helper_exit
                return self.returncode

            def kill(self):
                recorder.killed.append(True)

            def wait(self):
                return self.returncode

        def start(names):
            self.asked.append(list(names))
            self.asked_after.append(len(self.ran))  # how many steps had run when the helper started
            return Helper()

        monkeypatch.setattr(cpu_module, "_compile_in_another_process", start)
        self.backend = backend

    def warm_up(self, report=None, **options):
        self.backend.warm_up(report or (lambda *args: self.reports.append(args)), **options)


def test_a_cold_warm_up_compiles_the_conv_block_in_a_second_process_meanwhile(monkeypatch):
    steps = _StepsRecorded(monkeypatch)
    steps.warm_up()
    assert steps.asked == [["conv block", "optimizers"]]  # the lazy max-pool is not needed, so not compiled
    assert steps.ran == ["matrix product", "attention", "conv block", "optimizers"]  # loaded last, from the cache
    waits = [done for name, done, _ in steps.reports if name == "conv block"]
    assert len(waits) == 3  # reported before each poll, the progress display stays alive
    assert [done for _, done, _ in steps.reports] == sorted(done for _, done, _ in steps.reports)
    assert steps.reports[-1] == ("ready", 4, 4) and not steps.killed


def test_an_empty_cache_starts_the_helper_before_the_first_kernel_compiles(monkeypatch):
    from nnsim.engine.backends.cpu import warm_up as cpu_module

    steps = _StepsRecorded(monkeypatch)
    monkeypatch.setattr(cpu_module, "_cached", lambda prefix: False)  # no conv kernel in the cache folder
    steps.warm_up()
    assert steps.asked_after == [0]  # at once, not after the first kernel showed the cache cold
    cached = _StepsRecorded(monkeypatch)
    monkeypatch.setattr(cpu_module, "_cached", lambda prefix: True)  # indexed, but for another Numba, say
    cached.warm_up()
    assert cached.asked_after == [1]  # after the first kernel, which compiled


def test_a_warm_up_with_a_failed_helper_compiles_everything_itself(monkeypatch):
    steps = _StepsRecorded(monkeypatch, helper_exit=1)
    steps.warm_up(everything=True)
    assert steps.asked == [["conv block", "max-pool", "optimizers"]]
    assert sorted(steps.ran) == sorted(["matrix product", "conv block", "attention", "max-pool", "optimizers"])


def test_a_warm_up_that_cannot_start_a_helper_compiles_in_order_itself(monkeypatch):
    from nnsim.engine.backends.cpu import warm_up as cpu_module

    steps = _StepsRecorded(monkeypatch)
    monkeypatch.setattr(cpu_module, "_compile_in_another_process", lambda names: None)
    steps.warm_up()
    assert steps.ran == ["matrix product", "conv block", "attention", "optimizers"]


def test_with_no_cache_to_share_through_no_helper_is_started(monkeypatch):
    from nnsim.engine.backends.cpu import warm_up as cpu_module

    steps = _StepsRecorded(monkeypatch)
    monkeypatch.setitem(cpu_module._JIT, "cache", False)  # (a helper's kernels would die with it)
    steps.warm_up()
    assert steps.asked == [] and steps.ran == ["matrix product", "conv block", "attention", "optimizers"]


def test_no_interpreter_to_run_means_no_helper(monkeypatch):
    from nnsim.engine.backends.cpu import warm_up as cpu_module

    monkeypatch.setattr(cpu_module.sys, "executable", "")
    assert cpu_module._compile_in_another_process(["transpose"]) is None


def test_ctrl_c_during_a_warm_up_stops_its_helper(monkeypatch):
    steps = _StepsRecorded(monkeypatch, polls_before_exit=100)

    def report(name, done, total):
        if name == "conv block":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        steps.warm_up(report)
    assert steps.killed == [True] and "conv block" not in steps.ran


def test_ctrl_c_during_the_first_kernel_stops_a_helper_started_at_once(monkeypatch):
    from nnsim.engine.backends.cpu import warm_up as cpu_module

    steps = _StepsRecorded(monkeypatch, polls_before_exit=100)
    monkeypatch.setattr(cpu_module, "_cached", lambda prefix: False)

    def report(name, done, total):
        if name == "matrix product":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        steps.warm_up(report)
    assert steps.asked_after == [0] and steps.killed == [True] and steps.ran == []


def test_a_warm_cache_starts_no_helper(monkeypatch, cpu):
    from nnsim.engine.backends.cpu import warm_up as cpu_module

    started = []
    monkeypatch.setattr(cpu_module, "_compile_in_another_process", lambda names: started.append(names))
    cpu.warm_up()  # every kernel is compiled in this process already: the first step takes microseconds
    assert started == []


def test_the_helper_process_compiles_into_the_cache(tmp_path, monkeypatch):
    from nnsim.engine.backends.cpu import _compile_in_another_process

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    helper = _compile_in_another_process(["transpose"])
    assert helper.wait(timeout=120) == 0
    cached = {path.name.split(".")[1].split("-")[0] for path in tmp_path.rglob("*.nbi")}
    assert "_transpose" in cached and "_gemm_nt" not in cached  # what it was asked for, no more


def test_the_attention_softmax_is_float32_accurate():
    """The attention softmax's own exp (a polynomial, so that its loop vectorises) against
    float64: each lane is a softmax of two scores, x ≤ 0 and 0, so that P = eˣ / (eˣ + 1)."""
    from nnsim.engine.backends.cpu import _softmax_lanes

    x = np.concatenate([np.linspace(-87.0, 0.0, 20001), -np.logspace(-8, 0, 200), [0.0]]).astype(np.float32)
    scores = np.stack([x, np.zeros_like(x)])  # (rows, lanes)
    _softmax_lanes(scores, np.zeros(x.size, dtype=np.float32), np.empty(scores.shape, dtype=np.int32))
    e = np.exp(x.astype(np.float64))
    exact = np.stack([e / (e + 1), 1 / (e + 1)])
    # NumPy's own float32 exp and division: 2.2e-7; this one 2.9e-7
    assert np.max(np.abs(scores - exact) / exact) < 4e-7


def test_chunked_kernels_run_every_chunk_once_for_each_kind_of_argument():
    """Conv kernels run on all cores as a serial kernel called through its address, one chunk per
    call: every chunk runs exactly once, and arguments of another type get their own compiled
    kernel (calling the first one's address with them would read the arrays wrongly)."""
    from numba import njit

    from nnsim.engine.backends.cpu import _Chunked

    @njit(nogil=True)
    def add_chunk(chunk, counts, scale, rows):
        counts[chunk] += 1
        rows[chunk, :] += scale * (chunk + 1)

    chunked = _Chunked(add_chunk)
    for dtype, scale in ((np.float32, 0.5), (np.float64, 2), (np.float32, 0.5)):
        counts = np.zeros(7, dtype=np.int64)
        rows = np.zeros((7, 3), dtype=dtype)
        chunked(7, counts, scale, rows)
        np.testing.assert_array_equal(counts, np.ones(7))
        np.testing.assert_array_equal(rows, scale * np.arange(1, 8)[:, None] * np.ones(3, dtype=dtype))
    assert len(chunked._addresses) == 2


def test_chunked_kernels_take_named_tuples_of_buffers():
    """Buffers that travel together go in as one NamedTuple (nested too): the parallel loop passes
    their fields one by one, and the kernel, compiled for the NamedTuples, reads them as named."""
    from typing import NamedTuple

    from numba import njit

    from nnsim.engine.backends.cpu import _Chunked

    class Plan(NamedTuple):
        scale: int
        shift: int

    class Inner(NamedTuple):
        rows: np.ndarray

    class Buffers(NamedTuple):
        counts: np.ndarray
        inner: Inner

    @njit(nogil=True)
    def add_chunk(chunk, buffers, plan, extra):
        buffers.counts[chunk] += 1
        buffers.inner.rows[chunk, :] += plan.scale * (chunk + 1) + plan.shift + extra

    chunked = _Chunked(add_chunk)
    buffers = Buffers(np.zeros(5, dtype=np.int64), Inner(np.zeros((5, 2), dtype=np.float32)))
    chunked(5, buffers, Plan(3, 1), np.float32(0.5))
    np.testing.assert_array_equal(buffers.counts, np.ones(5))
    expected = (3 * np.arange(1, 6) + 1.5)[:, None] * np.ones(2, dtype=np.float32)
    np.testing.assert_array_equal(buffers.inner.rows, expected)
    chunked(5, Buffers(np.zeros(5, dtype=np.int64), Inner(np.zeros((5, 2), dtype=np.float64))), Plan(1, 0), 0.5)
    assert len(chunked._addresses) == 2  # float64 rows: a kernel of their own


def test_a_changed_source_file_forgets_every_cached_kernel_of_the_package(tmp_path):
    """Numba would load conv.py's kernels as compiled with the old _gemm_rows after matmul.py
    changed: any change to the package's sources forgets all of its cached kernels."""
    from nnsim.engine.backends.cpu.jit import _forget_stale_kernels

    folder, sources = tmp_path / "cache", [tmp_path / "matmul.py", tmp_path / "conv.py"]
    folder.mkdir()
    for path in sources:
        path.write_text("x = 1\n")
    _forget_stale_kernels(folder, sources)
    indexes = [folder / "conv._conv_forward_chunk-40.py311.nbi", folder / "matmul._gemm_nt-130.py311.nbi"]
    for index in indexes:
        index.write_text("")
    data = folder / "conv._conv_forward_chunk-40.py311.0.nbc"
    data.write_text("")
    _forget_stale_kernels(folder, sources)  # nothing changed: all kept
    assert all(index.exists() for index in indexes)
    sources[0].write_text("x = 2\n")
    _forget_stale_kernels(folder, sources)
    assert not any(index.exists() for index in indexes) and data.exists()  # (Numba overwrites the data)
    indexes[0].write_text("")
    _forget_stale_kernels(folder, sources)  # compiled again after the change: kept
    assert indexes[0].exists()
