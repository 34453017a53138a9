"""The cpu kernels compiled once per machine, before anyone needs them.

Numba compiles a kernel the first time it runs and keeps the result in a cache folder; every later
process loads it from there in a fraction of a second. The first compile takes 20–30 s. So:

* the app starts a background process when it opens (`background_command`, `main`), at low
  priority, that fills the cache while the learner reads a lesson;
* whoever compiles holds a lock file in the cache folder and writes its progress beside it; any
  other process that needs the kernels meanwhile (a lab, another tab of `nnsim serve`,
  `nnsim train`) waits for the lock and shows that progress, then loads from the cache (`prepare`);
* once the kernels are in the cache a stamp file says so, and nobody takes the lock again until
  the kernels' source or Numba changes;
* where no cache folder is writable (a system-wide install), each process compiles in memory for
  itself, and says so once.

Numba itself is imported only by the processes that compile, never by the app that shows progress.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager, suppress
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: no lock; each process compiles for itself, as Numba does alone
    fcntl = None

POLL_S = 0.1  # how often a waiting process looks at the lock and the progress
NICENESS = 10  # the background compile gives way to what the learner does meanwhile
NO_CACHE = (
    "no writable folder for Numba's kernel cache (set NUMBA_CACHE_DIR to one): "
    "the kernels compile in memory, again in every run"
)
_said: list[str] = []  # what this process has told its user already


def cache_folder(source: str | os.PathLike) -> Path | None:
    """The folder Numba caches the kernels defined in `source` in, chosen by Numba's own rules
    (NUMBA_CACHE_DIR, else __pycache__ beside the file, else the user's cache folder); None when
    none of them is writable."""
    from numba.core.caching import CompileResultCacheImpl

    def probe():
        pass

    probe.__code__ = probe.__code__.replace(co_filename=str(source))
    try:
        locator = CompileResultCacheImpl(probe).locator
        locator.ensure_cache_path()
    except (RuntimeError, OSError):  # "no locator available": nowhere to write
        return None
    return Path(locator.get_cache_path())


def prepare(backend, report=None, say=None, keep: bool = True) -> None:
    """Compile or load `backend`'s kernels, once per machine (see the module's docstring).

    report(name, done, total) as for backend.warm_up, also while waiting for another process;
    say(text): a note for the user, given once a process. keep=False: only make the cache warm
    (the background process, which keeps nothing); then nothing is compiled where there is no cache.
    """
    report = report or (lambda name, done, total: None)
    source = sys.modules[type(backend).__module__].__file__
    folder = cache_folder(source) if backend.name == "cpu" else None
    if folder is None:
        if backend.name == "cpu":
            _say_once(say, NO_CACHE)
        if keep:
            backend.warm_up(report)
        return
    shared = SharedWarmUp(folder, backend.name, _stamp(source))
    if shared.ready():
        if keep:
            backend.warm_up(report)  # loads from the cache
        return
    with shared.held(report):
        if keep or not shared.ready():
            backend.warm_up(shared.reporting(report))
            shared.mark_ready()


class SharedWarmUp:
    """Three files in the cache folder: a lock the compiling process holds, its progress, and
    a stamp of the kernels' source once they are all in the cache."""

    def __init__(self, folder: Path, name: str, stamp: str):
        self.lock_path = folder / f"nnsim-{name}-warm-up.lock"
        self.progress_path = folder / f"nnsim-{name}-warm-up.progress"
        self.stamp_path = folder / f"nnsim-{name}-warm-up.ready"
        self.stamp = stamp

    def ready(self) -> bool:
        try:
            return self.stamp_path.read_text(encoding="utf-8") == self.stamp
        except (OSError, ValueError):  # none yet, or not one of ours
            return False

    def mark_ready(self) -> None:
        _write(self.stamp_path, self.stamp)

    @contextmanager
    def held(self, report):
        """The lock, once every other holder has let it go; meanwhile their progress is reported."""
        lock = _open_lock(self.lock_path)
        try:
            while lock is not None:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    report(*self.progress())
                    time.sleep(POLL_S)
            yield
        finally:
            if lock is not None:
                lock.close()  # (which lets the lock go)

    def progress(self) -> tuple[str, int, int]:
        """What the process holding the lock last reported (name, done, total)."""
        try:
            name, done, total = self.progress_path.read_text(encoding="utf-8").split("\t")
            return name, int(done), int(total)
        except (OSError, ValueError):
            return "another nnsim is compiling them", 0, 0

    def reporting(self, report):
        """`report`, also written to the progress file whenever it changes."""
        last = []

        def both(name, done, total):
            if last != [name, done, total]:
                last[:] = [name, done, total]
                _write(self.progress_path, f"{name}\t{done}\t{total}")
            report(name, done, total)

        return both


def _stamp(source: str) -> str:
    """What the cached kernels depend on: the sources beside `source` (the backend's package) and
    those of the backends folder (rowmath.py, compiled into them), Numba's and Python's versions."""
    import numba

    digest = hashlib.sha256(f"{numba.__version__} {sys.version}".encode())
    folders = {Path(source).parent, Path(__file__).parent}
    for path in sorted({path for folder in folders for path in folder.glob("*.py")}):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def _open_lock(path: Path):
    """The lock file, opened (made if need be); None where there is no locking or no such file
    can be had (a cache folder shared with other users, who made it theirs): then no lock."""
    if fcntl is None:
        return None
    for mode in ("a+b", "rb"):
        try:
            return open(path, mode)
        except OSError:
            continue
    return None


def _write(path: Path, text: str) -> None:
    """Whole or not at all: a reader never sees half a line. Progress and stamp are hints: one
    that cannot be written (another user's file) costs only a wait or a second compile."""
    partial = path.with_name(f"{path.name}.{os.getpid()}")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    except OSError:
        with suppress(OSError):
            partial.unlink()


def _say_once(say, text: str) -> None:
    if say is not None and text not in _said:
        _said.append(text)
        say(text)


# ------------------------------------------------------------------ the app's background process
def background_command() -> list[str]:
    """The command the app runs to warm the cpu kernels (-P: not from the current folder, where
    another copy of nnsim may lie)."""
    return [sys.executable, "-P", "-c", "from nnsim.engine.backends.warm import main; main()"]


def main() -> None:
    """The background warm-up: fill the cache, one line on stdout per change of progress
    ("progress", name, done, total), per note ("note", text), and "ready" at the end. It lowers its
    own priority, and ends (its helper too) when the app that started it closes its stdin."""
    from nnsim.engine.backends import get_backend
    from nnsim.errors import NnsimError

    _lower_priority()
    _end_with_parent()
    try:
        backend = get_backend("cpu")
    except NnsimError as error:
        _line("note", str(error))
        return

    def report(name, done, total):
        _line("progress", name, done, total)

    prepare(backend, report, lambda text: _line("note", text), keep=False)
    _line("ready")


def read_line(line: str) -> tuple:
    """One line of `main`'s output as a tuple: ("progress", name, done, total), ("note", text), ("ready",)."""
    kind, *fields = line.rstrip("\n").split("\t")
    if kind == "progress" and len(fields) == 3 and fields[1].isdigit() and fields[2].isdigit():
        return kind, fields[0], int(fields[1]), int(fields[2])
    return (kind, *fields)


_last_line: list[str] = []


def _line(*fields) -> None:
    text = "\t".join(map(str, fields))
    if _last_line != [text]:
        _last_line[:] = [text]
        print(text, flush=True)


def _lower_priority() -> None:
    try:
        os.nice(NICENESS)
    except (AttributeError, OSError):  # no nice here: run at the usual priority
        pass


def _end_with_parent() -> None:
    """Kill this process's group (it and its helper) when stdin, a pipe from the app, closes:
    the app has ended, however it ended."""
    import stat

    if not stat.S_ISFIFO(os.fstat(0).st_mode) or os.getpgrp() != os.getpid():
        return

    def wait_for_end_of_input():
        while os.read(0, 4096):
            pass
        os.killpg(os.getpgrp(), signal.SIGKILL)

    threading.Thread(target=wait_for_end_of_input, daemon=True).start()
