"""`nnsim data download NAME`: fetch MNIST or Fashion-MNIST once, verified, written atomically.

Each file is checked against known checksums before it is moved into place; a failed or
interrupted download leaves nothing behind but the files that were already complete.
"""

from __future__ import annotations

import gzip
import hashlib
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nnsim.atomic import write_atomically
from nnsim.data.datasets import data_home
from nnsim.errors import NnsimError


@dataclass(frozen=True)
class RemoteFile:
    name: str
    # any one of these must match: "md5:…"/"sha256:…" of the file as downloaded, or
    # "raw-sha256:…" of its decompressed bytes (so a re-compressed copy of the same data passes)
    checksums: tuple[str, ...]


MNIST_FILES = (
    RemoteFile(
        "train-images-idx3-ubyte.gz",
        (
            "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "raw-sha256:ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        ),
    ),
    RemoteFile(
        "train-labels-idx1-ubyte.gz",
        (
            "md5:d53e105ee54ea40749a09fcbcd1e9432",
            "raw-sha256:65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        ),
    ),
    RemoteFile(
        "t10k-images-idx3-ubyte.gz",
        (
            "md5:9fb629c4189551a2d022fa330f9573f3",
            "raw-sha256:0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        ),
    ),
    RemoteFile(
        "t10k-labels-idx1-ubyte.gz",
        (
            "md5:ec29112dd5afa0611ce80d1b7f02629c",
            "raw-sha256:ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ),
    ),
)
FASHION_FILES = (
    RemoteFile("train-images-idx3-ubyte.gz", ("md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d",)),
    RemoteFile("train-labels-idx1-ubyte.gz", ("md5:25c81989df183df01b3e8a0aad5dffbe",)),
    RemoteFile("t10k-images-idx3-ubyte.gz", ("md5:bef4ecab320f06d8554ea6380940ec79",)),
    RemoteFile("t10k-labels-idx1-ubyte.gz", ("md5:bb300cfdad3c16e7a12a480ee83cd310",)),
)

SOURCES = {
    "mnist": (
        ("https://storage.googleapis.com/cvdf-datasets/mnist/", "https://ossci-datasets.s3.amazonaws.com/mnist/"),
        MNIST_FILES,
    ),
    "fashion-mnist": (("https://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",), FASHION_FILES),
}

Progress = Callable[[str, int, int | None], None]  # (file name, bytes so far, total or None)


def verify(data: bytes, checksums: tuple[str, ...]) -> bool:
    for checksum in checksums:
        kind, _, expected = checksum.partition(":")
        if kind == "raw-sha256":
            try:
                payload = gzip.decompress(data)
            except (OSError, EOFError):
                continue
            actual = hashlib.sha256(payload).hexdigest()
        else:
            actual = hashlib.new(kind, data).hexdigest()
        if actual == expected:
            return True
    return False


def download_dataset(
    name: str,
    dest: Path | None = None,
    mirrors: tuple[str, ...] | None = None,
    files: tuple[RemoteFile, ...] | None = None,
    progress: Progress | None = None,
    timeout: float = 30.0,
) -> Path:
    """Download ``name`` into ``dest`` (default: the data folder) and return the folder."""
    if name not in SOURCES:
        raise NnsimError(f"cannot download {name!r}; nnsim downloads {', '.join(SOURCES)}")
    default_mirrors, default_files = SOURCES[name]
    mirrors = mirrors or default_mirrors
    files = files or default_files
    folder = Path(dest) if dest is not None else data_home() / name
    folder.mkdir(parents=True, exist_ok=True)
    for remote in files:
        target = folder / remote.name
        if target.exists() and verify(target.read_bytes(), remote.checksums):
            if progress:
                progress(remote.name, target.stat().st_size, target.stat().st_size)
            continue
        errors = []
        for mirror in mirrors:
            try:
                data = _fetch(mirror.rstrip("/") + "/" + remote.name, remote.name, progress, timeout)
            except (urllib.error.URLError, OSError, TimeoutError) as error:
                errors.append(f"{mirror}: {getattr(error, 'reason', error)}")
                continue
            if not verify(data, remote.checksums):
                errors.append(f"{mirror}: checksum mismatch")
                continue
            write_atomically(target, lambda handle, data=data: handle.write(data))
            break
        else:
            raise NnsimError(f"could not download {remote.name} ({'; '.join(errors)})")
    return folder


def _fetch(url: str, label: str, progress: Progress | None, timeout: float) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "nnsim"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        total = response.headers.get("Content-Length")
        total = int(total) if total and total.isdigit() else None
        chunks, received = [], 0
        while chunk := response.read(1 << 16):
            chunks.append(chunk)
            received += len(chunk)
            if progress:
                progress(label, received, total)
    data = b"".join(chunks)
    if total is not None and len(data) != total:
        raise OSError(f"connection closed after {len(data)} of {total} bytes")
    return data
