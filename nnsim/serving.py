"""What changes when the app runs for a browser under `nnsim serve`.

`nnsim serve` sets NNSIM_SERVED in the environment its app processes inherit: one app process per
browser tab, on the teacher's machine. Such an app keeps its progress to itself (in memory: two
learners never see or overwrite each other's ticks), and a path a learner types may only lead
into the folder the teacher shared with `--files DIR` or to the files nnsim ships, never
elsewhere on the server, whether by an absolute path, `..` or a symbolic link.
"""

from __future__ import annotations

import os
from pathlib import Path

from nnsim.errors import NnsimError

SERVED = "NNSIM_SERVED"  # set to the shared folder, or to "" when none was shared


def served() -> bool:
    return SERVED in os.environ


def shared_folder() -> Path | None:
    value = os.environ.get(SERVED, "")
    return Path(value).resolve() if value else None


def allowed_roots() -> list[Path]:
    """The folders a served learner's paths may lead into: the shared one and what nnsim ships."""
    from nnsim.resources import shipped_path

    roots = [shipped_path("sample_images"), shipped_path("lessons")]
    if shared_folder() is not None:
        roots.insert(0, shared_folder())
    return [root.resolve() for root in roots]


def allows(path: Path, own_folder: Path | None = None) -> bool:
    """The one rule for a path a tab opens or writes. Unserved: every path. Served: only a path that
    (links followed) leads into the shared folder or what nnsim ships; for a run the tab keeps
    (`own_folder` given), only into the tab's own folder, not even the shared one."""
    if not served():
        return True
    roots = [own_folder.resolve()] if own_folder is not None else allowed_roots()
    real = Path(os.path.realpath(path))
    return any(real == root or root in real.parents for root in roots)


def check(path: Path, typed: str | None = None, own_folder: Path | None = None) -> None:
    """Raise the one-line refusal unless `allows(path, own_folder)`; `typed` is what the learner typed."""
    if not allows(path, own_folder):
        refuse(typed or str(path), own_folder)


def refuse(typed: str, own_folder: Path | None = None):
    """Raise the one message a served learner gets for a path outside the allowed folders."""
    if own_folder is not None:
        raise NnsimError(f"{typed}: a served nnsim keeps runs only in this tab's own folder, {own_folder.resolve()}")
    where = f"the folder this server shares ({shared_folder()})" if shared_folder() else "nnsim's sample images"
    raise NnsimError(f"{typed}: not available here; a served nnsim opens files only from {where}")
