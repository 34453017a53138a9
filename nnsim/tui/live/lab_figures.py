"""A lab run's figures, as plain numbers: what the screen draws (`LabFigures`, a look `Inside` the
network), the words for each event, and the files that keep them beside a checkpoint
(NAME.figures.json, NAME.steps.csv), read back on a resume. No trainer and no thread here:
`lab.py` records a run's events into these, `lab_session.py` hands copies to the screen."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from nnsim.engine.runfiles import run_files

SMOOTHING = 0.9  # the smoothed loss curve is an exponential moving average: s ← 0.9·s + 0.1·loss
FIGURE_COLUMNS = ("step", "epoch", "loss", "smoothed_loss", "accuracy")
# the curves NAME.figures.json keeps, and a resume draws again
CURVES = (
    "losses",
    "smoothed",
    "accuracies",
    "epochs_at",
    "epoch_ends",
    "val_losses",
    "val_accuracies",
    "train_accuracies",
)


@dataclass
class Inside:
    """A look inside the network at one moment: what the first layer learned, the norms of every
    weight and its gradient, and the signs the training doctor reads."""

    step: int = 0
    filters: np.ndarray | None = None  # CNN: the first conv layer's kernels (out, in, k, k)
    attention: np.ndarray | None = None  # ViT: CLS attention of the last block over the patch grid
    attention_image: np.ndarray | None = None  # the validation image it attends over
    attention_peak: float = 0.0  # the largest share of CLS attention on one patch, mean over heads
    attention_heads: np.ndarray | None = None  # (heads, rows, cols): each head's CLS attention
    norms: list[tuple[str, float, float]] = field(default_factory=list)  # (parameter, ‖θ‖, ‖∇θ L‖)
    dead: list[tuple[str, float]] = field(default_factory=list)  # (ReLU layer, share of units never active)


@dataclass
class LabFigures:
    """Everything the lab screen draws, as plain numbers (a copy, safe to hand to the UI thread)."""

    step: int = 0
    epoch: int = 0
    epochs: int = 0
    batch: int = 0
    batches: int = 0
    losses: list[float] = field(default_factory=list)  # every step's training loss
    smoothed: list[float] = field(default_factory=list)  # their moving average
    accuracies: list[float] = field(default_factory=list)  # every step's training accuracy
    epochs_at: list[int] = field(default_factory=list)  # the step at which each validation ran
    val_losses: list[float] = field(default_factory=list)  # per epoch
    val_accuracies: list[float] = field(default_factory=list)
    train_accuracies: list[float] = field(default_factory=list)  # per epoch, for the doctor
    grad_norms: list[float] = field(default_factory=list)  # ‖∇θ L‖ of every step
    samples_per_s: float = 0.0
    seconds: float = 0.0
    eta_s: float | None = None
    confusion: np.ndarray | None = None  # (classes, classes): rows true, columns predicted
    samples: list[tuple[np.ndarray, int, int, float]] = field(default_factory=list)  # image, true, predicted, p
    inside: Inside | None = None
    log: list[str] = field(default_factory=list)  # every milestone's words (Event.describe)
    state: str = "ready"  # ready, running, paused, finished
    reason: str = ""  # why it finished: finished, early_stop, diverged, stopped, max_steps
    last_update: str = ""  # the one-step view: what the last step changed
    label: str = "A"
    parameters: int = 0
    best_accuracy: float | None = None
    best_epoch: int = 0
    epoch_ends: list[int] = field(default_factory=list)  # the step at which each epoch ended
    validation: bool = True  # False: the run holds no images out (validation fraction 0)
    save_problem: str = ""  # while a save fails: which files are not being written, and why
    notices: list[str] = field(default_factory=list)  # what the learner must know all run long

    def copy(self) -> LabFigures:
        lists = {name: list(value) for name, value in vars(self).items() if isinstance(value, list)}
        confusion = None if self.confusion is None else self.confusion.copy()
        return replace(self, **lists, confusion=confusion)

    def to_json(self) -> dict:
        """The run's figures, for a learner to plot elsewhere (and for a resume to draw again)."""
        return {
            "steps": self.step,
            "epoch": self.epoch,
            **{name: getattr(self, name) for name in CURVES},
            "confusion": None if self.confusion is None else self.confusion.tolist(),
            "best_accuracy": self.best_accuracy,
            "best_epoch": self.best_epoch,
            "seconds": self.seconds,
            "reason": self.reason,
            "log": self.log,
        }


def epoch_of(step: int, figures: LabFigures) -> int:
    """The epoch a step belongs to, by where each epoch ended (not by validations: there may be none)."""
    for epoch, end in enumerate(figures.epoch_ends, start=1):
        if step <= end:
            return epoch
    return len(figures.epoch_ends) + 1


def best_path(checkpoint: Path) -> Path:
    return run_files(checkpoint).best


def figure_paths(checkpoint: Path) -> tuple[Path, Path]:
    files = run_files(checkpoint)
    return files.figures, files.steps


def explain(event, saved: bool = True) -> str:
    """The event's line, and for the ones that end or change a run, why, in words."""
    line = event.describe()
    kind = event.event
    if kind == "early_stop":
        return (
            f"{line}. Why: the validation loss had not improved for {event.epoch - event.best_epoch} "
            "epochs (patience), so more training was fitting the training images, not digits in general."
        )
    if kind == "diverged":
        return (
            f"{line} Why: each update moved the weights so far that the loss overflowed; a smaller "
            "learning rate takes smaller steps (lesson 9)."
        )
    if kind == "done":
        why = {
            "finished": "all epochs ran",
            "stopped": "you stopped it; the checkpoint holds where it was, and Resume goes on from there",
            "early_stop": "early stopping ended it",
            "diverged": "the loss became NaN",
            "max_steps": "it reached its step limit",
        }.get(event.reason, event.reason)
        if not event.checkpoint and event.reason == "stopped":
            why = "you stopped it"
        where = f"; saved to {event.checkpoint}" if event.checkpoint else "; nothing was saved ('save to' is empty)"
        if event.checkpoint and not saved:
            where = f"; its last save to {event.checkpoint} failed (see above)"
        return f"{line}. Finished because {why}{where}."
    return line


def steps_csv(figures: LabFigures) -> bytes:
    """NAME.steps.csv: every step's loss, its moving average and accuracy, with its epoch."""
    rows = zip(
        range(figures.step - len(figures.losses) + 1, figures.step + 1),
        figures.losses,
        figures.smoothed,
        figures.accuracies,
        strict=False,
    )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(FIGURE_COLUMNS)
    for step, loss, smooth, accuracy in rows:
        writer.writerow((step, epoch_of(step, figures), f"{loss:.6g}", f"{smooth:.6g}", f"{accuracy:.6g}"))
    return out.getvalue().encode()


def figures_json(figures: LabFigures, meta: dict) -> bytes:
    """NAME.figures.json: everything, and what the checkpoint says about the run."""
    return json.dumps({**figures.to_json(), "meta": meta}).encode()


def restore_figures(figures: LabFigures, checkpoint: Path) -> bool:
    """After a resume: the curves so far, from the figures saved beside the checkpoint (False if none)."""
    path = figure_paths(checkpoint)[0]
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    f = figures
    for name in CURVES:
        setattr(f, name, [float(v) for v in saved.get(name, [])])
    f.epochs_at = [int(v) for v in f.epochs_at]
    f.epoch_ends = [int(v) for v in f.epoch_ends] if "epoch_ends" in saved else list(f.epochs_at)
    f.step, f.epoch = int(saved.get("steps", 0)), int(saved.get("epoch", 0))
    f.best_accuracy, f.best_epoch = saved.get("best_accuracy"), int(saved.get("best_epoch", 0))
    if saved.get("confusion") is not None:
        f.confusion = np.asarray(saved["confusion"], dtype=np.int64)
    return True
