"""One lab run: the engine's Trainer, its events recorded into `LabFigures` for the screen (curves,
confusion matrix, sample predictions, what the network looks like inside), the controls a learner
uses applied between steps (a new learning rate, patience, focal α and γ), and its files saved
beside the checkpoint. `lab_session.py` steps one or two of these from the worker thread.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from nnsim.atomic import write_atomically
from nnsim.engine.checkpoint import save_checkpoint
from nnsim.engine.config import TrainConfig, settings
from nnsim.engine.experiment import write_experiment
from nnsim.engine.losses import softmax
from nnsim.engine.runfiles import Saves, check_targets, run_files
from nnsim.engine.trainer import Trainer
from nnsim.tui.live.lab_figures import (
    SMOOTHING,
    Inside,
    LabFigures,
    best_path,
    explain,
    figure_paths,
    figures_json,
    restore_figures,
    steps_csv,
)

SAMPLES = 8  # validation images shown with their prediction
INSIDE_EVERY = 1.0  # seconds between looks inside the network (filters, attention, norms)


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
        self._paused_at: float | None = None  # when the learner paused (None: not paused)
        self._paused_for = 0.0  # seconds paused in all, before that
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

    def change(self, **values) -> None:
        """Settings the run may change mid-run (lr, patience, focal α and γ), from the next step on:
        the trainer checks them all first (a SettingError, and no change, if one is refused)."""
        self.trainer.change(**values)
        known = settings(type(self.trainer.config))
        for name, value in values.items():
            self._changed(_change_words(known[name][1].words, name, value, self.trainer.steps))

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
            figures.eta_s = max(left, 0) * self._training_seconds() / self._steps
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

    def pausing(self) -> None:
        """The learner paused: the time until resuming() is not training time (for the time left)."""
        if self._paused_at is None:
            self._paused_at = time.perf_counter()

    def resuming(self) -> None:
        if self._paused_at is not None:
            self._paused_for += time.perf_counter() - self._paused_at
            self._paused_at = None

    def _training_seconds(self) -> float:
        """Seconds since the run began, less those it spent paused (one step at a time counts as paused)."""
        now = time.perf_counter()
        paused = self._paused_for + (now - self._paused_at if self._paused_at is not None else 0.0)
        return max(now - self._started - paused, 0.0)

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
        text, rows = figures_json(figures, self.trainer.describing()), steps_csv(figures)
        self.saves.attempt(paths[0], lambda: write_atomically(paths[0], lambda handle: handle.write(text)))
        self.saves.attempt(paths[1], lambda: write_atomically(paths[1], lambda handle: handle.write(rows)))
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
        if restore_figures(self.figures, checkpoint):
            where = f"at step {self.trainer.steps}, epoch {self.trainer.epoch}"
            self.figures.log.append(f"resumed from {checkpoint} {where}")

    def snapshot(self) -> LabFigures:
        with self._lock:
            return self.figures.copy()


def _change_words(words: str, name: str, value, step: int) -> str:
    """What the log says of a setting changed mid-run (`words`: the setting's, "the learning rate")."""
    if name == "patience":
        return f"early stopping on: patience {value} epochs, at step {step}"
    shown = ",".join(f"{v:g}" for v in value) if isinstance(value, list) else f"{value:g}"
    return f"{words.removeprefix('the ')} set to {shown} at step {step}"
