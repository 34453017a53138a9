"""Read a .npz file without pickle, turning every way it can be broken into one NnsimError."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from nnsim.errors import NnsimError

_ZIP_MAGIC = b"PK\x03\x04"


def read_npz(path, what: str = ".npz file") -> dict[str, np.ndarray]:
    """All arrays of ``path``; a file with pickled objects is refused, never unpickled."""
    path = Path(path)
    if not path.is_file():
        raise NnsimError(f"{path}: no such {what}")
    with path.open("rb") as handle:
        if handle.read(4) != _ZIP_MAGIC:
            raise NnsimError(f"{path}: not a readable {what} (it is not a .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except ValueError as error:
        if "pickle" in str(error) or "Object arrays" in str(error):
            raise NnsimError(f"{path}: holds pickled Python objects; nnsim refuses to load them") from None
        raise NnsimError(f"{path}: not a readable {what} ({error})") from None
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise NnsimError(f"{path}: not a readable {what} ({error})") from None
