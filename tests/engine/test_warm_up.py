"""The kernels compiled once per machine (nnsim/engine/backends/warm.py): a lock beside Numba's
cache, progress for whoever waits, a stamp once ready, in memory where nothing is writable."""

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

from nnsim.engine.backends import warm

pytest.importorskip("numba")
pytestmark = pytest.mark.skipif(warm.fcntl is None, reason="the lock needs POSIX file locks")

# A backend whose "compile" writes a file per kernel into the cache folder and whose "load"
# finds it there. Its second kernel is compiled only once the file named by argv[1] exists: the
# test creates it when the other process shows that it is waiting.
STAND_IN = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from nnsim.engine.backends.warm import cache_folder, prepare

    KERNELS = ["matrix product", "conv block", "attention"]

    class Backend:
        name = "cpu"

        def warm_up(self, report):
            folder = cache_folder(__file__)
            for done, kernel in enumerate(KERNELS):
                report(kernel, done, len(KERNELS))
                cached = folder / (kernel + ".nbi")
                if cached.exists():
                    print("loaded", kernel, flush=True)
                    continue
                while done == 1 and not Path(sys.argv[1]).exists():
                    time.sleep(0.02)
                cached.write_text("compiled")
                print("compiled", kernel, flush=True)
            report("ready", len(KERNELS), len(KERNELS))

    prepare(Backend(), lambda name, done, total: print("progress", name, done, total, flush=True))
    """
)


class Lines:
    """A process's stdout lines, read as they come; `wait_for` fails rather than hang."""

    def __init__(self, process):
        self.process, self.seen, self._queue = process, [], queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self._queue.put(line.strip())
        self._queue.put(None)

    def wait_for(self, wanted: str, seconds: float = 120) -> None:
        while wanted not in self.seen:
            line = self._queue.get(timeout=seconds)
            assert line is not None, f"ended before {wanted!r}: {self.seen}"
            self.seen.append(line)

    def rest(self) -> list[str]:
        assert self.process.wait(timeout=120) == 0
        while (line := self._queue.get(timeout=10)) is not None:
            self.seen.append(line)
        return self.seen


def test_two_processes_compile_once_the_second_waits_showing_the_first_ones_progress(tmp_path):
    script, flag = tmp_path / "stand_in.py", tmp_path / "second-is-waiting"
    script.write_text(STAND_IN)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}

    def start():
        command = [sys.executable, str(script), str(flag)]
        return Lines(subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env))

    first = start()
    first.wait_for("progress matrix product 0 3")  # it holds the lock
    second = start()
    second.wait_for("progress conv block 1 3")  # the first one's progress, read from beside the lock
    flag.touch()
    assert [line for line in first.rest() if not line.startswith("progress")] == [
        "compiled matrix product",
        "compiled conv block",
        "compiled attention",
    ]
    after_waiting = second.rest()[second.seen.index("progress conv block 1 3") :]
    assert [line for line in after_waiting if not line.startswith("progress")] == [
        "loaded matrix product",
        "loaded conv block",
        "loaded attention",
    ]


class Recorded:
    """A stand-in backend that records its warm-ups."""

    name = "cpu"

    def __init__(self):
        self.warm_ups = 0

    def warm_up(self, report):
        self.warm_ups += 1
        report("matrix product", 0, 1)
        report("ready", 1, 1)


def test_with_no_writable_cache_it_says_so_once_and_compiles_in_memory(monkeypatch):
    monkeypatch.setattr(warm, "cache_folder", lambda source: None)
    monkeypatch.setattr(warm, "_said", [])
    backend, said = Recorded(), []
    warm.prepare(backend, say=said.append)
    warm.prepare(backend, say=said.append)
    assert said == [warm.NO_CACHE]
    assert backend.warm_ups == 2  # each in this process, where the kernels then stay
    warm.prepare(backend, say=said.append, keep=False)
    assert backend.warm_ups == 2  # a background process keeps nothing: no use compiling there


def test_the_cpu_backend_loads_with_no_writable_cache_and_keeps_its_kernels_in_memory(tmp_path):
    """A system-wide install: Numba would refuse every cached kernel ("no locator available")."""
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("")
    env = {
        **os.environ,
        "NUMBA_CACHE_LOCATOR_CLASSES": "UserProvidedCacheLocator",  # the only place Numba may look
        "NUMBA_CACHE_DIR": str(not_a_folder / "cache"),
    }
    code = "from nnsim.engine.backends import cpu; print(cpu._JIT['cache'])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False"]


def test_the_cache_folder_is_numbas(tmp_path, monkeypatch):
    from numba.core import config

    monkeypatch.setattr(config, "CACHE_DIR", str(tmp_path))
    folder = warm.cache_folder(warm.__file__)
    assert folder.parent == tmp_path and folder.name.startswith("backends_") and folder.is_dir()


def test_a_waiting_process_reports_the_progress_of_the_one_holding_the_lock(tmp_path, monkeypatch):
    monkeypatch.setattr(warm, "cache_folder", lambda source: tmp_path)
    monkeypatch.setattr(warm, "POLL_S", 0.001)
    holder = warm.SharedWarmUp(tmp_path, "cpu", warm._stamp(warm.__file__))
    seen = []

    def report(name, done, total):
        seen.append((name, done, total))
        if len(seen) == 3:
            raise KeyboardInterrupt  # (Ctrl+C while waiting)

    with holder.held(lambda *progress: None):
        holder.reporting(lambda *progress: None)("attention", 5, 9)
        with pytest.raises(KeyboardInterrupt):
            warm.prepare(Recorded(), report)
    assert seen == [("attention", 5, 9)] * 3


def test_once_the_kernels_are_ready_nobody_waits_for_the_lock(tmp_path, monkeypatch):
    monkeypatch.setattr(warm, "cache_folder", lambda source: tmp_path)
    backend = Recorded()
    warm.prepare(backend)  # compiles, under the lock, then stamps
    holder = warm.SharedWarmUp(tmp_path, "cpu", warm._stamp(sys.modules[Recorded.__module__].__file__))
    assert holder.ready()
    waited = []

    def report(name, done, total):
        if name == "the holder's":  # only a process waiting for the lock reads the holder's progress
            waited.append(name)
            raise TimeoutError

    with holder.held(lambda *progress: None):  # someone holds it, e.g. a stale helper
        holder.reporting(lambda *progress: None)("the holder's", 5, 9)
        warm.prepare(backend, report)
    assert backend.warm_ups == 2 and waited == []


def test_the_background_process_ends_with_its_group_when_its_input_closes(tmp_path):
    """The app's end closes the pipe: the background process kills itself and its helper."""
    code = textwrap.dedent(
        """
        import subprocess, sys
        from nnsim.engine.backends.warm import _end_with_parent
        helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        _end_with_parent()
        print(helper.pid, flush=True)
        helper.wait()
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    helper = int(process.stdout.readline())
    process.stdin.close()
    assert process.wait(timeout=60) == -signal.SIGKILL
    wait_until_gone(helper)


def wait_until_gone(pid: int, seconds: float = 60) -> None:
    """Until `pid` has ended (a zombie waiting for its parent counts as ended)."""
    import time

    deadline = time.monotonic() + seconds
    while alive(pid):
        assert time.monotonic() < deadline, f"process {pid} still runs"
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone before the open, or between the open and the read
        return False


def test_progress_lines_read_back():
    assert warm.read_line("progress\tconv block\t4\t9\n") == ("progress", "conv block", 4, 9)
    assert warm.read_line("note\tno cache\n") == ("note", "no cache")
    assert warm.read_line("ready\n") == ("ready",)


def test_nnsim_train_says_once_that_the_kernels_compile_in_memory(monkeypatch, capsys):
    from nnsim.cli import warm_up_kernels

    monkeypatch.setattr(warm, "cache_folder", lambda source: None)
    monkeypatch.setattr(warm, "_said", [])
    backend = Recorded()
    warm_up_kernels(backend)
    warm_up_kernels(backend)
    assert capsys.readouterr().err.count("compile in memory") == 1 and backend.warm_ups == 2


def test_nnsim_train_started_while_another_nnsim_compiles_waits_showing_its_progress(tmp_path, monkeypatch):
    """As the app's background warm-up holds the lock: train waits, with its progress, and a
    Ctrl+C while waiting ends it in one line."""
    import pty

    from numba.core import config

    from nnsim.engine.backends import cpu

    monkeypatch.setattr(config, "CACHE_DIR", str(tmp_path / "cache"))  # where the command's Numba looks
    holder = warm.SharedWarmUp(warm.cache_folder(cpu.__file__), "cpu", warm._stamp(cpu.__file__))
    terminal, its_end = pty.openpty()  # a terminal, so that the progress bar is drawn
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"), "NUMBA_ENABLE_CUDASIM": "0"}
    command = [sys.executable, "-m", "nnsim", "train", "--backend", "cpu", "--max-steps", "1"]
    with holder.held(lambda *progress: None):
        holder.reporting(lambda *progress: None)("layer norm", 4, 9)
        process = subprocess.Popen(command, cwd=tmp_path, stderr=its_end, stdout=subprocess.DEVNULL, env=env)
        os.close(its_end)
        try:
            shown = b""
            while b"layer norm" not in shown or b"4/9" not in shown:
                shown += os.read(terminal, 4096)
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=120) == 130
        finally:
            process.kill()
    rest = b""
    while True:
        try:
            chunk = os.read(terminal, 4096)
        except OSError:  # the command has closed its end
            break
        if not chunk:
            break
        rest += chunk
    os.close(terminal)
    assert b"Traceback" not in rest and rest.endswith(b"nnsim: interrupted\r\n")


def test_a_lock_and_progress_that_cannot_be_had_cost_only_the_sharing(tmp_path, monkeypatch):
    """Another user's files in a shared cache folder (here: folders where the files would be)."""
    monkeypatch.setattr(warm, "cache_folder", lambda source: tmp_path)
    for name in ("lock", "progress", "ready"):
        (tmp_path / f"nnsim-cpu-warm-up.{name}").mkdir()
    backend, seen = Recorded(), []
    warm.prepare(backend, lambda *progress: seen.append(progress))
    assert backend.warm_ups == 1 and seen == [("matrix product", 0, 1), ("ready", 1, 1)]
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "nnsim-cpu-warm-up.lock",
        "nnsim-cpu-warm-up.progress",
        "nnsim-cpu-warm-up.ready",
    ]  # no half-written file left behind
