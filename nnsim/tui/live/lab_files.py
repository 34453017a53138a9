"""Where the lab keeps a run, and what it may write: the default name (one a lab, never another
lab's), a served tab's own folder (removed when its app ends), a save and a PyTorch export the
learner asks for."""

from __future__ import annotations

import atexit
import os
import shutil
from dataclasses import replace
from pathlib import Path

from nnsim.engine.runfiles import OtherNetworkError, check_targets, claim, free_name, run_files
from nnsim.errors import NnsimError

_served_folder: Path | None = None  # a served tab's own folder: one a process, removed when it ends


def default_checkpoint(config) -> Path:
    """Where the lab keeps a run: $NNSIM_HOME/lab/, else the user's data folder; a temporary folder
    for a browser tab of `nnsim serve` (one tab never overwrites another's). A name another lab
    (another process) is writing to is never given: the next free one is (NAME-2.npz, …)."""
    from nnsim import serving

    if serving.served():
        folder = _tab_folder()
    elif os.environ.get("NNSIM_HOME"):
        folder = Path(os.environ["NNSIM_HOME"]).expanduser() / "lab"
    else:
        from platformdirs import user_data_dir

        folder = Path(user_data_dir("nnsim")) / "lab"
    name = Path(config.data).stem if ("/" in config.data or os.sep in config.data) else config.data
    path = folder / f"{config.model}-{name}.npz"
    return path if serving.served() or claim(path) else free_name(path)


def _tab_folder() -> Path:
    global _served_folder
    if _served_folder is None:
        import tempfile

        _served_folder = Path(tempfile.mkdtemp(prefix="nnsim-lab-"))
        atexit.register(shutil.rmtree, _served_folder, ignore_errors=True)  # a classroom never fills the disk
    return _served_folder


def save_as(session, path: Path, own_folder: Path) -> None:
    """Run A's weights, optimizer state and position, to a file of the learner's choosing (and its
    settings beside it, NAME.toml): never
    over the data set, a file no run wrote, or a checkpoint of another network."""
    from nnsim import serving

    serving.check(path, own_folder=own_folder)
    trainer = session.runs[0].trainer
    settings = run_files(path).experiment
    check_targets([path, settings], trainer.config.data, trainer.model.config.to_dict(), trainer.config.resume)
    trainer.save(path)
    session.runs[0].save_settings(settings)


def allowed(config, own_folder: Path):
    """The settings with the paths a served tab may use: the checkpoint in the tab's own folder, the
    data in the shared one (an NnsimError says why not); unchanged when not served."""
    from nnsim import serving

    if config.checkpoint:
        serving.check(Path(config.checkpoint).expanduser(), own_folder=own_folder)
    return replace(config, data=data_allowed(config.data))


def resume_problem(path: Path, own_folder: Path) -> str | None:
    """Why a run cannot resume from the checkpoint at `path`, or None if it can."""
    from nnsim import serving

    try:
        serving.check(path, own_folder=own_folder)
    except NnsimError as error:
        return str(error)
    if not path.is_file():
        return f"no checkpoint at {path} yet: train (space) and stop, or type a path"
    return None


def save_message(control, path: Path, own_folder: Path) -> tuple[str, bool]:
    """Save run A to `path` (s) between two steps: what the lab says, and whether it is a refusal."""
    try:
        why = control.save_as(lambda: save_as(control.session, path, own_folder))
    except (NnsimError, OSError) as error:
        return f"could not save: {error}", True
    return (why, True) if why else (f"saved the weights, optimizer state and position to {path}", False)


def free_checkpoint(failure: Exception | None) -> Path | None:
    """For a run refused because its checkpoint holds another network: the next free name beside it."""
    return free_name(failure.path) if isinstance(failure, OtherNetworkError) else None


def data_allowed(data: str) -> str:
    """A data set name, or a path; served to a browser, a path must stay in the shared folder."""
    from nnsim import serving
    from nnsim.data.datasets import BUILTIN_NAMES, FINDABLE_NAMES

    if data in BUILTIN_NAMES + FINDABLE_NAMES or not serving.served():
        return data
    path = Path(data).expanduser()
    if not path.is_absolute() and serving.shared_folder() is not None:
        path = serving.shared_folder() / path
    serving.check(path, data)
    return str(path)


def export_to_pytorch(checkpoint: Path, own_folder: Path) -> Path:
    """The run's checkpoint as PyTorch files (`nnsim export --to pytorch`), in a new folder beside
    it: NAME-pytorch, or NAME-pytorch-2, … where that one holds files already (never overwritten)."""
    from nnsim import serving
    from nnsim.export import export_pytorch

    serving.check(checkpoint, own_folder=own_folder)
    if not checkpoint.is_file():
        raise NnsimError(f"no checkpoint at {checkpoint} yet: train (space) and stop, or type a path")
    folder = checkpoint.with_name(f"{checkpoint.stem}-pytorch")
    for number in range(2, 10_000):
        if not folder.exists():
            break
        folder = checkpoint.with_name(f"{checkpoint.stem}-pytorch-{number}")
    export_pytorch(checkpoint, folder)
    return folder


EXPORT_TIP = "e: the checkpoint in save to as PyTorch files (model.py, weights, example.py) beside it"


def export_message(checkpoint: Path, own_checkpoint: Path) -> tuple[str, bool]:
    """What the lab says when asked to export: where the PyTorch files went, or why none were written."""
    if str(checkpoint) in ("", "."):
        return "type the run's checkpoint into save to, then export it", True
    try:
        folder = export_to_pytorch(checkpoint.expanduser(), own_checkpoint.parent)
    except (NnsimError, OSError) as error:
        return f"could not export: {error}", True
    return f"exported to PyTorch: {folder.name}/ beside the checkpoint (model.py, example.py; pip install torch)", False
