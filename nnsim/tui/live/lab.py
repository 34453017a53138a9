"""The lab's training runs: the engine's Trainer driven from a worker thread, its figures gathered
for the screen (curves, confusion matrix, sample predictions, what the network looks like inside),
and the controls a learner uses (pause, one step, stop, a new learning rate) applied between steps.

A `LabSession` holds one run, or two trained side by side for a comparison: the same data, the
same seed (so the same first weights where the networks match), one setting changed.
"""

from __future__ import annotations

import csv
import json
import math
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from nnsim.atomic import write_atomically
from nnsim.engine.checkpoint import save_checkpoint
from nnsim.engine.config import TrainConfig
from nnsim.engine.experiment import changed_settings, changes_words, second_config, write_experiment
from nnsim.engine.losses import softmax
from nnsim.engine.runfiles import Saves, check_targets, run_files
from nnsim.engine.trainer import Trainer
from nnsim.tui.live.lab_files import default_checkpoint  # noqa: F401  (where the lab keeps a run)

SMOOTHING = 0.9  # the smoothed loss curve is an exponential moving average: s ← 0.9·s + 0.1·loss
SAMPLES = 8  # validation images shown with their prediction
INSIDE_EVERY = 1.0  # seconds between looks inside the network (filters, attention, norms)
MILESTONES = ("early_stop", "diverged", "done")  # drawn at once; the others wait for the next redraw
FIGURE_COLUMNS = ("step", "epoch", "loss", "smoothed_loss", "accuracy")
# the curves NAME.figures.json keeps, and a resume draws again
CURVES = (
    "losses", "smoothed", "accuracies", "epochs_at", "epoch_ends", "val_losses", "val_accuracies", "train_accuracies",
)

# The main sizes of each network, by name ("default" is the engine's DEFAULT_SIZES).
SIZES = {
    "small": {
        "mlp": {"hidden": [32]},
        "cnn": {"channels": [8, 16], "hidden": 32},
        "vit": {"dim": 32, "heads": 2, "depth": 1, "mlp_dim": 64},
    },
    "default": {"mlp": {}, "cnn": {}, "vit": {}},
    "large": {
        "mlp": {"hidden": [256, 128]},
        "cnn": {"channels": [32, 64], "hidden": 128},
        "vit": {"dim": 128, "heads": 4, "depth": 4, "mlp_dim": 256},
    },
}

# One setting changed for a comparison: (label, the field, its new value or a function of the old).
COMPARISONS = {
    "none": ("no comparison", None, None),
    "model-cnn": ("vs a CNN", "model", "cnn"),
    "model-vit": ("vs a ViT", "model", "vit"),
    "model-mlp": ("vs an MLP", "model", "mlp"),
    "loss-focal": ("vs focal loss", "loss", "focal"),
    "loss-ce": ("vs cross-entropy", "loss", "ce"),
    "optimizer-sgd": ("vs SGD + momentum", "optimizer", "sgd"),
    "optimizer-adam": ("vs Adam", "optimizer", "adam"),
    "lr-up": ("vs learning rate × 10", "lr", lambda lr: lr * 10),
    "lr-down": ("vs learning rate ÷ 10", "lr", lambda lr: lr / 10),
}
GIVEN = "given"  # the comparison an experiment file or a lesson's lab link gives


def compared(config: TrainConfig, key: str, given: dict | None = None) -> TrainConfig | None:
    """The second configuration of a comparison: `config` (resolved) with one setting changed, or
    with the changes an experiment file's [compare] gives (`key` "given")."""
    return None if key == "none" else second_config(config, comparison(config, key, given)).resolved()


def comparison_options(given: dict | None = None) -> list[tuple[str, str]]:
    """The lab's comparisons, (label, key), and the one it was opened with (a file's, a lesson's)."""
    options = [(label, key) for key, (label, *_) in COMPARISONS.items()]
    return options + ([(f"vs {changes_words(given)}", GIVEN)] if given else [])


def comparison(config: TrainConfig, key: str, given: dict | None = None) -> dict:
    """The settings the second run of comparison `key` changes, and their values."""
    if key == GIVEN:
        return dict(given or {})
    _, name, value = COMPARISONS[key]
    return {name: value(getattr(config, name)) if callable(value) else value}


def differences(a: TrainConfig, b: TrainConfig) -> list[tuple[str, str, str]]:
    """(setting, A's value, B's value) for every setting the two runs do not share."""
    names = ("model", "loss", "optimizer", "lr", "epochs", "batch_size", "alpha", "gamma", "sizes")
    return [(n, _value(getattr(a, n)), _value(getattr(b, n))) for n in names if getattr(a, n) != getattr(b, n)]


def _value(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


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


class LabRun:
    """One training run for the lab. Build it (loads the data, builds the network); a LabSession
    drives it from a worker thread."""

    def __init__(self, config: TrainConfig, label: str = "A"):
        self.trainer = Trainer(config)
        trainer = self.trainer
        self.began_with = replace(trainer.config)  # the settings it starts with, for NAME.toml
        self.compare: dict | None = None  # what the comparison's second run changes (LabSession)
        self.changed: list[str] = []  # settings changed mid-run: NAME.toml says so
        self.saves = Saves()
        self._unsaved_best: SimpleNamespace | None = None  # best weights whose save failed, tried again
        notes = self._check_files()
        self.figures = LabFigures(epochs=trainer.config.epochs, label=label, parameters=trainer.model.parameter_count())
        self.figures.log.extend(trainer.describe())
        self.figures.log.extend(
            f"note: {warning}" for warning in [*trainer.warnings, *notes, *trainer.dataset.warnings]
        )
        self.figures.validation = len(trainer.x_val) > 0
        self.figures.notices = self._notices(label)
        if trainer.config.resume:
            self._restore_figures(Path(trainer.config.resume))
        self._lock = threading.Lock()
        self.stepping = False  # one step at a time (paused): look inside after each
        self._steps = 0  # steps taken in this session (a resumed run's curve holds earlier ones too)
        self._started = 0.0
        self._last_inside = -math.inf
        rng = np.random.default_rng(0)
        count = min(SAMPLES, len(trainer.x_val))
        self._sample_index = np.sort(rng.choice(len(trainer.x_val), size=count, replace=False))

    def _check_files(self) -> list[str]:
        """Before training: every file the run writes beside its checkpoint (the trainer checked
        the checkpoint) can be written and holds nothing the run must not replace."""
        if self.checkpoint is None:
            return []
        cfg = self.trainer.config
        return check_targets(
            run_files(self.checkpoint).all[1:], cfg.data, self.trainer.model.config.to_dict(), cfg.resume
        )

    def _notices(self, label: str) -> list[str]:
        notices = []
        if self.checkpoint is None and label == "A":
            notices.append("nothing will be saved: the 'save to' box is empty")
        warnings = self.trainer.dataset.warnings
        skipped = sum(warning.startswith("skipped") for warning in warnings)
        parts = [f"skipped {skipped} image{'s' * (skipped > 1)} it could not read"] if skipped else []
        parts += [warning for warning in warnings if not warning.startswith("skipped")]
        if parts:
            notices.append("data: " + "; ".join(parts) + " (4 Log lists them)")
        if not self.figures.validation:
            self.figures.log.append(
                "note: no validation split (validation fraction 0): no validation curve, no best epoch"
            )
        return notices

    @property
    def classes(self) -> list[str]:
        return self.trainer.dataset.class_names

    @property
    def checkpoint(self) -> Path | None:
        return Path(self.trainer.config.checkpoint) if self.trainer.config.checkpoint else None

    def reader(self):
        """A copy of the network as it is now, on the reference backend, to read drawings with."""
        from nnsim.engine.models import model_from_config
        from nnsim.tui.live import reference
        from nnsim.tui.live.draw import Reader

        model = model_from_config(self.trainer.model.config, backend=reference())
        model.load_state_dict(self.trainer.model.state_dict())
        source = f"the lab's {self.trainer.config.model.upper()} after {self.trainer.steps} steps"
        return Reader(model, self.classes, source=source)

    def set_lr(self, lr: float) -> None:
        """A new learning rate from the next step on."""
        self.trainer.set_lr(lr)
        self._changed(f"learning rate set to {lr:g} at step {self.trainer.steps}")

    def set_patience(self, patience: int) -> None:
        """Early stopping from the next validation on (keeps the best epoch's weights)."""
        self.trainer.set_patience(patience)
        self._changed(f"early stopping on: patience {patience} epochs, at step {self.trainer.steps}")

    def change(self, lr=None, patience=None, **loss) -> None:
        """Settings checked already (TrainConfig.check), from the next step on: the learning rate,
        patience, focal loss's α and γ."""
        if lr is not None:
            self.set_lr(lr)
        if patience is not None:
            self.set_patience(patience)
        for name, value in loss.items():
            setattr(self.trainer.config, name, value)
            symbol = "α" if name == "alpha" else "γ"
            self._changed(f"focal {symbol} set to {_value(value)} at step {self.trainer.steps}")

    def _changed(self, what: str) -> None:
        with self._lock:
            self.figures.log.append(what)
            self.changed.append(what)

    # ---------------------------------------------------------------- the run (worker thread)
    def events(self):
        """The trainer's events, each recorded into the figures first."""
        self._started = time.perf_counter()
        self.figures.state = "running"
        for event in self.trainer.run():
            with self._lock:
                self._record(event)
            yield event
        with self._lock:
            self.figures.state = "finished"
            if self.figures.inside is None or self.figures.inside.step != self.trainer.steps:
                self.figures.inside = self.look_inside()  # a run stopped between looks

    def _record(self, event) -> None:
        figures, kind = self.figures, event.event
        figures.seconds = time.perf_counter() - self._started
        if kind == "step":
            figures.step, figures.epoch, figures.batch, figures.batches = (
                event.step,
                event.epoch,
                event.batch,
                event.batches,
            )
            figures.losses.append(event.loss)
            previous = figures.smoothed[-1] if figures.smoothed else event.loss
            figures.smoothed.append(SMOOTHING * previous + (1 - SMOOTHING) * event.loss)
            figures.accuracies.append(event.accuracy)
            figures.grad_norms.append(self._grad_norm())
            self._steps += 1
            figures.samples_per_s = self.trainer.images_per_s()
            left = figures.epochs * event.batches - event.step
            if self.trainer.config.max_steps is not None:
                left = min(left, self.trainer.config.max_steps - event.step)
            figures.eta_s = max(left, 0) * figures.seconds / self._steps
            figures.last_update = (
                f"step {event.step}: loss {event.loss:.4f}, ‖∇θ L‖ = {figures.grad_norms[-1]:.4f}, "
                f"θ ← θ − {self.trainer.optimizer.lr:g}·(update)"
            )
            if time.perf_counter() - self._last_inside >= INSIDE_EVERY or self.stepping:
                figures.inside = self.look_inside()
            return
        if kind == "epoch":
            figures.train_accuracies.append(event.train_accuracy)
            figures.epoch_ends.append(figures.step)
        elif kind == "validation":
            figures.epochs_at.append(figures.step)
            figures.val_losses.append(event.val_loss)
            figures.val_accuracies.append(event.val_accuracy)
            figures.confusion, figures.samples = self._validation_figures()
            figures.inside = self.look_inside()
            if figures.best_accuracy is None or event.improved:
                figures.best_accuracy, figures.best_epoch = event.val_accuracy, event.epoch
                self._save_best()
        elif kind == "checkpoint":
            self.saves.failed.pop(Path(event.path), None)
            if self._unsaved_best is not None:
                self._save_best(self._unsaved_best)
            self._export()
        elif kind == "save_failed":
            self.saves.failed[Path(event.path)] = event.reason
            self._export()  # the figures may still be written; either way the problem is said
        elif kind == "done":
            figures.reason = event.reason
            figures.log.append(explain(event, saved=not self.saves.failed))
            self._export()
            return
        figures.log.append(explain(event))

    def _grad_norm(self) -> float:
        to_numpy = self.trainer.be.to_numpy
        grads = [to_numpy(p.grad).ravel() for p in self.trainer.model.parameters() if p.grad is not None]
        return math.sqrt(sum(float(np.dot(g, g)) for g in grads))

    def _validation_figures(self):
        trainer = self.trainer
        classes = trainer.dataset.classes
        confusion = np.zeros((classes, classes), dtype=np.int64)
        np.add.at(confusion, (trainer.y_val, trainer.last_predictions), 1)  # from the validation just run
        probs = softmax(self.logits(trainer.x_val[self._sample_index]))
        samples = [
            (trainer.x_val[i], int(trainer.y_val[i]), int(p.argmax()), float(p.max()))
            for i, p in zip(self._sample_index, probs, strict=True)
        ]
        return confusion, samples

    def logits(self, images: np.ndarray) -> np.ndarray:
        """The network's scores for images (N, C, H, W), in evaluation batches, as float64."""
        trainer, out = self.trainer, []
        batch = trainer.config.eval_batch_size
        for start in range(0, len(images), batch):
            out.append(np.asarray(trainer.be.to_numpy(trainer.forward(images[start : start + batch])), np.float64))
        return np.concatenate(out) if out else np.zeros((0, trainer.dataset.classes))

    def look_inside(self) -> Inside:
        """First-layer filters (CNN) or CLS attention (ViT), norms, dead ReLUs, on validation images."""
        self._last_inside = time.perf_counter()
        model, be = self.trainer.model, self.trainer.be
        inside = Inside(step=self.trainer.steps)
        for index, layer in enumerate(model.layers):
            for name, param in layer.named_parameters():
                grad = 0.0 if param.grad is None else float(np.linalg.norm(be.to_numpy(param.grad)))
                label = f"{index} {type(layer).__name__} {name}"
                inside.norms.append((label, float(np.linalg.norm(be.to_numpy(param.value))), grad))
        if not len(self.trainer.x_val):
            return inside
        probe = self.trainer.x_val[:64]
        self.trainer.forward(probe)
        for index, layer in enumerate(model.layers):
            kind = type(layer).__name__
            if kind == "ConvBlock" or (kind in ("Activation", "ReLU") and getattr(layer, "name", "relu") == "relu"):
                values = be.to_numpy(layer.feature_map if kind == "ConvBlock" else layer.z)
                values = np.asarray(values).reshape(len(probe), values.shape[1], -1).max(axis=2)
                inside.dead.append((f"{index} {kind}", float(np.mean(values.max(axis=0) <= 0))))
        convs = model.conv_layers()
        if convs:
            inside.filters = np.array(be.to_numpy(convs[0].weight.value), dtype=np.float64)
        elif model.config.model == "mlp":  # each first-layer neuron's weights, as the image they weigh
            weight = np.asarray(be.to_numpy(model.layers[2].weight.value), dtype=np.float64)[:16]
            inside.filters = weight.reshape(len(weight), *model.config.input_shape)
        attentions = model.attention_layers()
        if attentions:
            embed = model.layers[1]
            maps = np.asarray(be.to_numpy(attentions[-1].attention), dtype=np.float64)[0]  # (heads, T, T)
            cls = maps[:, 0, 1:]
            inside.attention = cls.mean(axis=0).reshape(embed.grid)
            inside.attention_heads = cls.reshape(len(cls), *embed.grid)
            inside.attention_image = np.asarray(probe[0]).mean(axis=0)
            inside.attention_peak = float(cls.max(axis=1).mean())
        return inside

    # ---------------------------------------------------------------- files
    def _save_best(self, kept: SimpleNamespace | None = None) -> None:
        """The best weights so far, saved atomically beside the checkpoint (for nnsim predict, draw),
        with what the checkpoint says about the run. A failed save keeps those weights in memory
        and is tried again at the next save."""
        if self.checkpoint is None:
            return
        model = self.trainer.model
        best = kept or SimpleNamespace(
            config=model.config,
            weights=model.state_dict(),
            meta={**self.trainer.describing(), "val_accuracy": self.figures.best_accuracy},
        )
        best.state_dict = lambda: best.weights
        path = best_path(self.checkpoint)
        saved = self.saves.attempt(path, lambda: save_checkpoint(path, best, best.meta))
        self._unsaved_best = None if saved else best
        self.figures.save_problem = self.saves.problem()

    def _export(self) -> None:
        """The figures beside the checkpoint: name.figures.json (everything) and name.steps.csv (per step)."""
        if self.checkpoint is None:
            return
        figures = self.figures
        paths = figure_paths(self.checkpoint)
        text = json.dumps({**figures.to_json(), "meta": self.trainer.describing()})
        self.saves.attempt(paths[0], lambda: write_atomically(paths[0], lambda handle: handle.write(text.encode())))
        rows = zip(
            range(figures.step - len(figures.losses) + 1, figures.step + 1),
            figures.losses,
            figures.smoothed,
            figures.accuracies,
            strict=False,
        )

        def write(handle):
            import io

            out = io.StringIO()
            writer = csv.writer(out)
            writer.writerow(FIGURE_COLUMNS)
            for step, loss, smooth, accuracy in rows:
                writer.writerow((step, _epoch_of(step, figures), f"{loss:.6g}", f"{smooth:.6g}", f"{accuracy:.6g}"))
            handle.write(out.getvalue().encode())

        self.saves.attempt(paths[1], lambda: write_atomically(paths[1], write))
        self.save_settings(run_files(self.checkpoint).experiment)
        figures.save_problem = self.saves.problem()

    def save_settings(self, path: Path) -> None:
        """NAME.toml: the settings the run began with (and its comparison's), to repeat it exactly;
        settings changed mid-run are named in it, as comments (a repeat begins without them)."""
        notes = [f"changed mid-run (not repeated): {what}" for what in self.changed]
        if self.trainer.config.resume:
            notes.append(f"resumed from {self.trainer.config.resume}: a repeat starts from new weights")
        self.saves.attempt(path, lambda: write_experiment(path, self.began_with, self.compare, tuple(notes)))

    def _restore_figures(self, checkpoint: Path) -> None:
        """After a resume: the curves so far, from the figures saved beside the checkpoint."""
        path = figure_paths(checkpoint)[0]
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        f = self.figures
        for name in CURVES:
            setattr(f, name, [float(v) for v in saved.get(name, [])])
        f.epochs_at = [int(v) for v in f.epochs_at]
        f.epoch_ends = [int(v) for v in f.epoch_ends] if "epoch_ends" in saved else list(f.epochs_at)
        f.step, f.epoch = int(saved.get("steps", 0)), int(saved.get("epoch", 0))
        f.best_accuracy, f.best_epoch = saved.get("best_accuracy"), int(saved.get("best_epoch", 0))
        if saved.get("confusion") is not None:
            f.confusion = np.asarray(saved["confusion"], dtype=np.int64)
        f.log.append(f"resumed from {checkpoint} at step {self.trainer.steps}, epoch {self.trainer.epoch}")

    def snapshot(self) -> LabFigures:
        with self._lock:
            return self.figures.copy()


def _epoch_of(step: int, figures: LabFigures) -> int:
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


class LabSession:
    """One run, or two side by side (a comparison), driven from one worker thread (RunControl's).

    The runs take turns, one step each, so both see the same machine at the same time. Pausing
    holds the worker between steps, never inside one: a save or a look at the weights from
    another thread waits for the step under way (`busy`) and sees whole steps only."""

    def __init__(self, runs: list[LabRun]):
        self.runs = runs
        if len(runs) == 2:  # A's NAME.toml keeps the comparison: what B changes
            runs[0].compare = changed_settings(runs[0].began_with, runs[1].began_with)
        self.busy = threading.Lock()  # held while the worker steps
        self._turn = threading.Condition()
        self._paused = False
        self._owed: set[int] = set()  # runs (by index) that owe one step while paused

    @property
    def state(self) -> str:
        """The runs' own word: running while one runs, finished once all have ended."""
        states = {run.figures.state for run in self.runs}
        return "running" if "running" in states else states.pop() if len(states) == 1 else "finished"

    def pause(self) -> None:
        with self._turn:
            self._paused = True
        for run in self.runs:
            if run.figures.state == "running":
                run.figures.state = "paused"

    def resume(self) -> None:
        with self._turn:
            self._paused, self._owed = False, set()
            self._turn.notify_all()
        for run in self.runs:
            run.stepping = False
            if run.figures.state == "paused":
                run.figures.state = "running"

    def step_once(self) -> None:
        """Run exactly one more step of each run, then stay paused."""
        with self._turn:
            self._owed = set(range(len(self.runs)))
            self._turn.notify_all()
        for run in self.runs:
            run.stepping = True

    def stop(self) -> None:
        for run in self.runs:
            run.trainer.stop()
        with self._turn:
            self._paused = False
            self._turn.notify_all()

    def set_lr(self, lr: float) -> None:
        self.runs[0].set_lr(lr)

    def snapshot(self) -> list[LabFigures]:
        return [run.snapshot() for run in self.runs]

    def _wait_turn(self, index: int) -> None:
        with self._turn:
            while self._paused and index not in self._owed:
                self._turn.wait()

    def run(self, publish, every=0.1) -> None:
        """Train to the end, calling publish(figures of every run) at most every `every` seconds (a
        number, or a function that says how many now) and at milestones."""
        interval = every if callable(every) else (lambda: every)
        live = [(index, run, run.events()) for index, run in enumerate(self.runs)]
        last = 0.0
        while live:
            for item in list(live):
                index, run, events = item
                self._wait_turn(index)
                with self.busy:
                    event = next(events, None)
                if event is None:
                    live.remove(item)
                    publish(self.snapshot())
                    continue
                if event.event == "step" and index in self._owed:
                    with self._turn:
                        self._owed.discard(index)
                    publish(self.snapshot())
                    continue
                now = time.perf_counter()
                if event.event in MILESTONES or now - last >= interval():
                    publish(self.snapshot())
                    last = now
        publish(self.snapshot())

    def reader(self):
        """Run A's network as it is between two steps, to read drawings with."""
        with self.busy:
            return self.runs[0].reader()
