"""Write a file so that it is either the old one or the whole new one, never half of either."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from glob import escape as glob_escape
from pathlib import Path
from typing import BinaryIO

from nnsim.errors import NnsimError


def write_atomically(path: Path, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(handle)`` on a temporary file beside ``path``, flush it to disk, rename it over
    ``path``. If anything fails (or Ctrl+C arrives), the temporary file is removed and ``path``
    keeps what it held. A save that works also removes what an earlier, killed one left."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o666 & ~_umask())  # mkstemp makes 0600; give it a normal file's mode
        try:
            os.replace(tmp_name, path)
        except OSError as error:
            raise NnsimError(f"{path}: cannot write here ({error.strerror or error})") from None
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _remove_stale_parts(path)
    return path


def _remove_stale_parts(path: Path) -> None:
    """Temporary files of `path` left by a save that was killed half way (ours is renamed by now)."""
    for stale in path.parent.glob(f".{glob_escape(path.name)}.*.part"):
        stale.unlink(missing_ok=True)


def check_writable(path: Path) -> None:
    """Raise NnsimError now, before any work, if `path` could not be written later."""
    fd, tmp_name = _temporary_beside(Path(path))
    os.close(fd)
    Path(tmp_name).unlink(missing_ok=True)


def _temporary_beside(path: Path) -> tuple[int, str]:
    if path.is_dir():
        raise NnsimError(f"{path}: is a folder; give a file name (e.g. {path / 'model.npz'})")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as error:
        raise NnsimError(f"{path}: cannot write here ({error.strerror or error})") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
