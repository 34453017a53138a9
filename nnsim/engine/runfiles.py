"""The files a run writes, and the rules for writing them.

A run is named by its checkpoint, NAME.npz. The lab writes four more files beside it: NAME.best.npz
(the best weights so far), NAME.figures.json and NAME.steps.csv (its curves), and NAME.toml (its
settings, an experiment file that repeats it: nnsim.engine.experiment). Before training, each
is checked: it can be written, it is not the data set the run trains on, and it is not a file that
no run wrote or a checkpoint of another network (those are never overwritten without a new name).
While training, a save that fails never ends the run: `Saves` remembers it and says where nothing
is being written, and the next save tries again. `claim` keeps two processes from writing runs to
the same name at once.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nnsim.atomic import check_writable
from nnsim.errors import NnsimError

STEP_COLUMNS = "step,epoch,loss,smoothed_loss,accuracy"  # the first line of NAME.steps.csv
EXPERIMENT_HEADER = "# nnsim experiment"  # how NAME.toml begins (nnsim.engine.experiment)
NETWORK_KEYS = ("model", "input_shape", "classes", "sizes")  # what makes two checkpoints the same network


class OtherNetworkError(NnsimError):
    """The run would overwrite a checkpoint of a different network (`path`)."""

    def __init__(self, message: str, path: Path):
        super().__init__(message)
        self.path = path


@dataclass(frozen=True)
class RunFiles:
    """Every file a run named by `checkpoint` writes."""

    checkpoint: Path

    @property
    def best(self) -> Path:
        return self._beside(".best.npz")

    @property
    def figures(self) -> Path:
        return self._beside(".figures.json")

    @property
    def steps(self) -> Path:
        return self._beside(".steps.csv")

    @property
    def experiment(self) -> Path:
        return self._beside(".toml")

    @property
    def all(self) -> tuple[Path, ...]:
        return self.checkpoint, self.best, self.figures, self.steps, self.experiment

    def _beside(self, suffix: str) -> Path:
        return self.checkpoint.with_name(self.checkpoint.stem + suffix)


def run_files(checkpoint) -> RunFiles:
    return RunFiles(Path(checkpoint))


# ------------------------------------------------------------------------------ before training
def check_targets(paths, data: str, network: dict, resume: str | None = None) -> list[str]:
    """Refuse (NnsimError) any path a run must not write; return notes for what it will replace.

    `network` is the model config of the run (`ModelConfig.to_dict()`); `resume` the checkpoint
    it continues, which it may of course overwrite."""
    notes = []
    for path in map(Path, paths):
        if _same_file(path, data):
            raise NnsimError(f"{path}: is the data set this run trains on; choose another name to save to")
        check_writable(path)
        if not claim(path):
            raise NnsimError(f"{path}: another nnsim is writing a run there now; choose another name to save to")
        if not path.exists() or (resume and _same_file(path, resume)):
            continue
        earlier = _written_by_a_run(path, network)
        if earlier:
            notes.append(f"this run replaces the run saved in {path} ({earlier})")
    return notes


def _written_by_a_run(path: Path, network: dict) -> str:
    """What a run left at `path` (in words), or NnsimError when no run of this network wrote it."""
    if path.name.endswith(".steps.csv"):
        written = _first_line(path) == STEP_COLUMNS
    elif path.name.endswith(".figures.json"):
        written = _is_figures(path)
    elif path.suffix == ".toml":
        written = _first_line(path).startswith(EXPERIMENT_HEADER)
    else:
        return _same_network(path, network)
    if not written:
        raise NnsimError(f"{path}: not a file an nnsim run wrote; nnsim will not overwrite it (choose another name)")
    return "its settings" if path.suffix == ".toml" else "its figures"


def _same_network(path: Path, network: dict) -> str:
    from nnsim.engine.checkpoint import read_checkpoint

    try:
        header, _ = read_checkpoint(path)
    except NnsimError:
        raise NnsimError(
            f"{path}: not an nnsim checkpoint; nnsim will not overwrite it (choose another name)"
        ) from None
    theirs = header.get("config", {})
    if any(theirs.get(key) != network.get(key) for key in NETWORK_KEYS):
        raise OtherNetworkError(
            f"{path}: holds a different network ({_network_words(theirs)}, this run trains "
            f"{_network_words(network)}); choose another name to save to, or delete it",
            path,
        )
    steps = header.get("meta", {}).get("steps")
    return f"the same network, {steps} steps" if steps is not None else "the same network"


def _network_words(config: dict) -> str:
    shape = "×".join(str(v) for v in config.get("input_shape", [])) or "?"
    return f"a {str(config.get('model', '?')).upper()} on {shape} images, {config.get('classes', '?')} classes"


def _first_line(path: Path) -> str:
    try:
        with path.open(encoding="utf-8") as handle:
            return handle.readline().strip()
    except (OSError, UnicodeDecodeError):
        return ""


def _is_figures(path: Path) -> bool:
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(saved, dict) and "steps" in saved and "losses" in saved


def _same_file(path: Path, other: str | None) -> bool:
    if not other:
        return False
    other_path = Path(other).expanduser()
    try:
        if path.exists() and other_path.exists():
            return os.path.samefile(path, other_path)
    except OSError:
        return False
    return path.resolve() == other_path.resolve()


def free_name(path: Path) -> Path:
    """NAME-2.npz, NAME-3.npz, …: the first name whose run files are all absent and unclaimed."""
    path = Path(path)
    stem = path.stem
    for number in range(2, 10_000):
        candidate = path.with_name(f"{stem}-{number}{path.suffix}")
        if not any(p.exists() for p in run_files(candidate).all) and claim(candidate):
            return candidate
    raise NnsimError(f"{path}: no free name beside it")


# ------------------------------------------------------------------------------ while training
def save_failure(error: BaseException) -> str:
    """Why a save failed, in a few words."""
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return "no space left on the disk"
    if isinstance(error, OSError):
        return error.strerror or str(error)
    text = str(error).split(": ", 1)[-1]  # without the path, which the message names anyway
    return text.replace("cannot write here (", "cannot write here: ").rstrip(")") if "here (" in text else text


class Saves:
    """What a run's saves did: each file that failed and why, until a save of it works again."""

    def __init__(self) -> None:
        self.failed: dict[Path, str] = {}

    def attempt(self, path, write: Callable[[], object]) -> bool:
        """Call write() to save `path`; a failure is remembered (never raised), a success forgets it."""
        try:
            write()
        except (NnsimError, OSError) as error:
            self.failed[Path(path)] = save_failure(error)
            return False
        self.failed.pop(Path(path), None)
        return True

    def problem(self) -> str:
        """One line for the learner while any save fails; empty when every last save worked."""
        if not self.failed:
            return ""
        paths = ", ".join(str(path) for path in self.failed)
        reason = next(iter(self.failed.values()))
        return f"not saving: {paths} ({reason}); training goes on, and the next epoch tries again"


# ------------------------------------------------------------------------------ one writer a name
_claims: dict[str, int] = {}


def claim(path) -> bool:
    """Claim the run name `path` for this process (until it ends); False if another process holds it.

    A lock the operating system lets go of when the process ends, however it ends: a lab killed
    mid-run leaves no stale claim behind."""
    try:
        import fcntl
    except ImportError:  # no such locks here (Windows): every name is free
        return True
    key = str(Path(path).expanduser().resolve())
    if key in _claims:
        return True
    folder = Path(tempfile.gettempdir()) / f"nnsim-claims-{os.getuid()}"
    folder.mkdir(exist_ok=True)
    handle = os.open(folder / (hashlib.sha1(key.encode()).hexdigest()[:20] + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(handle)
        return False
    _claims[key] = handle
    return True
