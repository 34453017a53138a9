"""Trainings that share one machine's cores.

A thread pool that has finished a parallel loop spins on its cores for a while before it sleeps
(OpenMP's, under Numba's kernels, about 300,000 turns): alone, that keeps the next short kernel of
the step quick; beside another training it burns the cores the other needs. Two CNN trainings on
a 2-core machine did 37 % of the work of one alone, four did 27 % (docs/benchmarks.md). So every
training that runs holds a lock file in one folder per machine, and each uses cores ÷ (trainings
running) threads, at least one: two trainings on two cores then do more together than one alone.

The count is of locks held, not of files: a training that ended without tidying up (killed, say)
leaves its file unlocked, and the next count removes it. A paused training lets its lock go. Where
the folder cannot be used, each training runs as if it were alone, as before.
"""

from __future__ import annotations

import os
import tempfile
import time
from contextlib import suppress
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: no locks, so no count; every training uses every core
    fcntl = None

RECOUNT_S = 0.5  # how often a training counts the others (a count is a listing and a lock each)
SUFFIX = ".training"


def default_folder() -> Path:
    """One folder per machine, for every user: sticky and writable by all, like /tmp itself."""
    return Path(tempfile.gettempdir()) / "nnsim-trainings"


def available_cores() -> int:
    with suppress(AttributeError, OSError):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class CoreShare:
    """This process's training among those running on the machine: `threads()` says how many
    threads it should use now; `join()` while it steps, `leave()` when it pauses or ends."""

    def __init__(self, folder: Path | None = None, cores: int | None = None):
        self.folder = folder if folder is not None else default_folder()
        self.cores = cores or available_cores()
        self._fd: int | None = None  # the open, locked file while this training counts
        self._path: Path | None = None
        self._threads = self.cores
        self._counted_at = -RECOUNT_S

    @property
    def joined(self) -> bool:
        return self._fd is not None

    def join(self) -> None:
        """Hold a lock file in the folder. It is made and locked under a name the count skips,
        then renamed, so that no count ever sees it unlocked and takes it for a dead training's."""
        if self._fd is not None or fcntl is None:
            return
        with suppress(OSError):
            self._make_folder()
            hidden = self.folder / f".{os.getpid()}-{id(self)}.part"
            fd = os.open(hidden, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                path = hidden.with_name(hidden.name.removeprefix(".").removesuffix(".part") + SUFFIX)
                os.replace(hidden, path)
            except OSError:
                os.close(fd)
                with suppress(OSError):
                    hidden.unlink()
                raise
            self._fd, self._path = fd, path
            self._counted_at = -RECOUNT_S  # count again at once: the others now share with one more

    def leave(self) -> None:
        if self._fd is None:
            return
        with suppress(OSError):
            self._path.unlink()
        os.close(self._fd)  # (closing lets the lock go)
        self._fd = self._path = None
        self._counted_at = -RECOUNT_S

    def threads(self) -> int:
        """cores ÷ trainings running (this one included), at least 1; counted again every RECOUNT_S."""
        now = time.monotonic()
        if now - self._counted_at >= RECOUNT_S:
            self._counted_at = now
            self._threads = max(1, self.cores // max(1, self.running()))
        return self._threads

    def running(self) -> int:
        """How many trainings hold their lock now (this one included, when joined)."""
        if fcntl is None:
            return 1
        try:
            paths = [path for path in self.folder.iterdir() if path.name.endswith(SUFFIX)]
        except OSError:
            return int(self.joined)
        return sum(path == self._path or _held(path) for path in paths)

    def _make_folder(self) -> None:
        try:
            self.folder.mkdir()
        except FileExistsError:
            return
        os.chmod(self.folder, 0o1777)  # every user's trainings share it; each removes only its own


def _held(path: Path) -> bool:
    """Whether a training holds `path`'s lock; a file nobody holds is a dead training's, removed."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # gone meanwhile
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    with suppress(OSError):  # (another user's, in the sticky folder: left where it is)
        path.unlink()
    return False
