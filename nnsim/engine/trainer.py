"""The learning loop, as a generator of events.

Each step is the workshop's five steps: forward pass, loss, backpropagation, update; repeat. The
trainer yields an event after every step and at every milestone, so that the CLI can print them
and the app can draw them, and it checks between steps whether it was asked to pause or stop.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from nnsim.atomic import check_writable
from nnsim.data.dataset import Dataset, split_validation
from nnsim.data.datasets import load_dataset
from nnsim.engine.backends import get_backend
from nnsim.engine.backends.sharing import CoreShare
from nnsim.engine.checkpoint import load_weights, read_extra, save_checkpoint
from nnsim.engine.config import TrainConfig, settings
from nnsim.engine.events import (
    CheckpointEvent,
    DivergedEvent,
    DoneEvent,
    EarlyStopEvent,
    EpochEvent,
    Event,
    SaveFailedEvent,
    StepEvent,
    ValidationEvent,
)
from nnsim.engine.memory import check_fits
from nnsim.engine.models import build_model
from nnsim.engine.optim import make_optimizer
from nnsim.engine.runfiles import check_targets, save_failure
from nnsim.errors import NnsimError, SettingError


@dataclass
class _Position:
    """Where a run is in its data: the epoch in progress, the batches done in it, and the state of
    the generator that shuffles the training set as it was when that epoch began."""

    epoch: int
    batch: int
    order_state: dict


@dataclass
class _Progress:
    """The figures a run carries from epoch to epoch."""

    start: float
    train_seconds: float = 0.0
    samples_seen: int = 0
    train_loss: float | None = None
    val_accuracy: float | None = None
    best_loss: float = math.inf
    best_epoch: int = 0
    best_state: dict | None = None
    waited: int = 0


# ------------------------------------------------------------------------------------ trainer
class Trainer:
    """Trains one model on one data set. ``run()`` yields events; ``stop()``/``pause()`` between steps."""

    def __init__(self, config: TrainConfig, dataset: Dataset | None = None):
        self.config = config.resolved()
        cfg = self.config
        self.dataset = dataset if dataset is not None else load_dataset(cfg.data, seed=cfg.seed)
        cfg.check_classes(self.dataset.classes, self.dataset.name)
        if cfg.checkpoint:
            check_writable(Path(cfg.checkpoint))  # before training, not after it
        self.be = get_backend(cfg.backend)
        # the machine's cores, shared with the other trainings running (a backend with threads)
        self._share = CoreShare() if hasattr(self.be, "use_threads") else None
        self.x_train, self.y_train, self.x_val, self.y_val = split_validation(
            self.dataset.x_train, self.dataset.y_train, cfg.val_fraction, seed=cfg.seed
        )
        mean, std = self.dataset.channel_stats()
        self.model = build_model(
            cfg.model,
            self.dataset.input_shape,
            self.dataset.classes,
            backend=self.be,
            seed=cfg.seed,
            mean=mean,
            std=std,
            dtype=np.dtype(cfg.precision),
            **cfg.sizes,
        )
        self.optimizer = make_optimizer(
            cfg.optimizer,
            self.model.parameters(),
            self.be,
            lr=cfg.lr,
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
        )
        self.steps = 0
        self.epoch = 0
        self.warnings: list[str] = []
        self.save_failed: SaveFailedEvent | None = None  # the last save of the checkpoint, while it failed
        if cfg.checkpoint:  # never over the data set, a file no run wrote, or another network
            self.warnings += check_targets([cfg.checkpoint], cfg.data, self.model.config.to_dict(), cfg.resume)
        cfg.eval_batch_size = check_fits(  # a run too large for memory is refused now, not part way
            self.model.config, cfg.batch_size, cfg.eval_batch_size, len(self.x_train), cfg.precision
        )
        self._optimizer_dropped = False
        self._progress = _Progress(start=time.perf_counter())
        self._order_rng = np.random.default_rng(cfg.seed)  # the order of the training images, epoch by epoch
        self._position = _Position(1, 0, self._order_rng.bit_generator.state)
        if cfg.resume:
            self._resume(cfg.resume)
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._last_good: list | None = None
        self.last_predictions = np.zeros(0, dtype=np.int64)

    def describe(self) -> tuple[str, str]:
        """Two lines: the data and its split; the network, backend and settings."""
        cfg = self.config
        data = f"{self.dataset.summary()}  ({len(self.x_train):,} train, {len(self.x_val):,} validation)"
        model = (
            f"{cfg.model.upper()} with {self.model.parameter_count():,} weights and biases · backend "
            f"{self.be.name} · {cfg.optimizer} lr {cfg.lr:g} · batch {cfg.batch_size} · {cfg.epochs} epochs"
            + (f" (at most {cfg.max_steps} steps)" if cfg.max_steps else "")
        )
        return data, model

    # ---------------------------------------------------------------- control (any thread)
    def stop(self) -> None:
        self._stop.set()
        self._running.set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def set_lr(self, lr: float) -> None:
        """A new learning rate η from the next step on; a SettingError, and no change, if out of range."""
        self._change(lr=lr)
        self.optimizer.lr = lr

    def set_patience(self, patience: int | None) -> None:
        """Early stopping from the next validation on (None: off). Turned on mid-run, the best epoch
        so far counts from the next validation: earlier epochs' weights were not kept."""
        self._change(patience=patience)
        self._count_from_kept_weights()

    def _count_from_kept_weights(self) -> None:
        """With patience on, the best epoch is one whose weights were kept: without them (patience was
        off when it passed, here or in the run a checkpoint came from) counting starts afresh."""
        if self.config.patience and self._progress.best_state is None:
            self._progress.best_loss, self._progress.waited = math.inf, 0

    def change(self, **values) -> None:
        """Settings whose Setting is `live` (the learning rate, patience, focal α and γ), from the next
        step on; all checked first (the settings' check(), α against the data's classes): a
        SettingError, and no change at all, if one is refused."""
        known = settings(type(self.config))
        for name in values:
            if name not in known or not known[name][1].live:
                words = known[name][1].words if name in known else name
                raise SettingError(name, f"{words} cannot change during a run: it is used when the next one starts")
        changed = replace(self.config, **values)
        changed.check()
        changed.check_classes(self.dataset.classes, self.dataset.name)
        if "lr" in values:
            self.set_lr(values["lr"])
        if "patience" in values:
            self.set_patience(values["patience"])
        self._change(**{name: value for name, value in values.items() if name not in ("lr", "patience")})

    def _change(self, **values) -> None:
        """Settings changed mid-run, checked first by the settings' own check()."""
        replace(self.config, **values).check()
        for name, value in values.items():
            setattr(self.config, name, value)

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def _should_stop(self) -> bool:
        if not self._running.is_set() and self._share is not None:
            self._share.leave()  # a paused training leaves the cores to the others
        self._running.wait()
        return self._stop.is_set()

    def _take_share(self) -> None:
        """This step's threads: the cores ÷ the trainings running now (backends/sharing.py)."""
        if self._share is not None:
            self._share.join()
            self.be.use_threads(self._share.threads())

    # ---------------------------------------------------------------- the loop
    def run(self) -> Iterator[Event]:
        """Train for the configured epochs (or steps), yielding an event at every step and milestone."""
        cfg = self.config
        self._progress.start = time.perf_counter()
        reason = "finished"
        try:
            for epoch in range(self._position.epoch, cfg.epochs + 1):
                reason = yield from self.run_epoch(epoch)
                if reason != "finished":
                    break
                if cfg.checkpoint and epoch < cfg.epochs:
                    yield self._save_during_run(cfg.checkpoint)
            yield from self.finish(reason)
        finally:
            if self._share is not None:
                self._share.leave()

    def run_epoch(self, epoch: int) -> Iterator[Event]:
        """One pass over the training set, then validation. Returns why it ended ("finished" if it ran out)."""
        cfg, progress = self.config, self._progress
        self.epoch = epoch
        epoch_start = time.perf_counter()
        loss_sum, correct_sum, seen = 0.0, 0, 0
        position = self._position
        if position.epoch != epoch:
            position = self._position = _Position(epoch, 0, self._order_rng.bit_generator.state)
        self._order_rng.bit_generator.state = position.order_state  # the same order after a resume
        order = self._order_rng.permutation(len(self.x_train))
        batches = math.ceil(len(self.x_train) / cfg.batch_size)
        for batch in range(position.batch, batches):
            if self._should_stop():
                return "stopped"
            index = order[batch * cfg.batch_size : (batch + 1) * cfg.batch_size]
            self._take_share()
            t0 = time.perf_counter()
            with np.errstate(over="ignore", invalid="ignore"):  # a diverging run is reported, not warned
                loss, correct = self.train_step(self.x_train[index], self.y_train[index])
            elapsed = time.perf_counter() - t0
            if not math.isfinite(loss):
                yield from self._diverged(loss)
                return "diverged"
            position.batch = batch + 1
            progress.train_seconds += elapsed
            progress.samples_seen += len(index)
            loss_sum += loss * len(index)
            correct_sum += correct
            seen += len(index)
            yield StepEvent(
                self.steps, epoch, batch + 1, batches, loss, correct / len(index), len(index) / max(elapsed, 1e-9)
            )
            if cfg.max_steps is not None and self.steps >= cfg.max_steps:
                break
        if position.batch == batches:  # the next epoch starts with the next permutation
            self._position = _Position(epoch + 1, 0, self._order_rng.bit_generator.state)
        progress.train_loss = loss_sum / max(seen, 1)
        yield EpochEvent(
            epoch, cfg.epochs, progress.train_loss, correct_sum / max(seen, 1), time.perf_counter() - epoch_start
        )
        early_stop = yield from self._validate(epoch)
        if early_stop:
            return "early_stop"
        return "max_steps" if cfg.max_steps is not None and self.steps >= cfg.max_steps else "finished"

    def _validate(self, epoch: int) -> Iterator[Event]:
        """Validation loss and accuracy; keeps the best weights for early stopping. Returns True to stop."""
        cfg, progress = self.config, self._progress
        if not len(self.x_val):
            return False
        val_loss, progress.val_accuracy = self.evaluate(self.x_val, self.y_val)
        improved = val_loss < progress.best_loss
        if improved:
            progress.best_loss, progress.best_epoch, progress.waited = val_loss, epoch, 0
            progress.best_state = self.model.state_dict() if cfg.patience else None
        else:
            progress.waited += 1
        yield ValidationEvent(epoch, val_loss, progress.val_accuracy, improved)
        if not (cfg.patience and progress.waited >= cfg.patience):
            return False
        self.model.load_state_dict(progress.best_state)
        _, progress.val_accuracy = self.evaluate(self.x_val, self.y_val)
        yield EarlyStopEvent(epoch, progress.best_epoch, progress.best_loss)
        return True

    def finish(self, reason: str) -> Iterator[Event]:
        """The end of a run: the last checkpoint, the test set (unless stopped), and the done event."""
        cfg, progress = self.config, self._progress
        if reason in ("diverged", "stopped") and cfg.checkpoint:
            yield self._save_during_run(cfg.checkpoint, final=True)
        test_loss = test_accuracy = None
        if len(self.dataset.x_test) and reason != "stopped":
            test_loss, test_accuracy = self.evaluate(self.dataset.x_test, self.dataset.y_test)
        if cfg.checkpoint and reason not in ("diverged", "stopped"):
            yield self._save_during_run(cfg.checkpoint, final=True, test_accuracy=test_accuracy)
        yield DoneEvent(
            train_loss=progress.train_loss,
            val_accuracy=progress.val_accuracy,
            test_accuracy=test_accuracy,
            test_loss=test_loss,
            steps=self.steps,
            epochs=self.epoch,
            samples_per_s=self.images_per_s(),
            seconds=time.perf_counter() - progress.start,
            checkpoint=cfg.checkpoint,
            backend=self.be.name,
            reason=reason,
        )

    def images_per_s(self) -> float:
        """Training images this session has really stepped through, per second of stepping (a
        batch larger than the training set holds only the training set)."""
        return self._progress.samples_seen / max(self._progress.train_seconds, 1e-9)

    # ---------------------------------------------------------------- one step, phase by phase
    def train_step(self, images: np.ndarray, labels: np.ndarray) -> tuple[float, int]:
        """Forward, loss, backward, update. Returns (loss, correct) of this batch."""
        logits = self.forward(images)
        loss, dlogits, correct = self.loss(logits, labels)
        if not math.isfinite(loss):
            return loss, correct
        self.backward(dlogits)
        self.update()
        return loss, correct

    def forward(self, images: np.ndarray):
        """1. Forward pass: the logits; every layer keeps what it computed (feature maps, attention)."""
        return self.model.forward(self.be.asarray(images, dtype=self.config.precision))

    def loss(self, logits, labels: np.ndarray) -> tuple[float, object, int]:
        """2. Loss: (mean loss, dL/dlogits, how many of the batch were right)."""
        cfg = self.config
        return self.be.classification_loss(logits, self.be.asarray(labels), cfg.loss, cfg.alpha, cfg.gamma)

    def backward(self, dlogits) -> dict[str, object]:
        """3. Backpropagation: ∇θ L for every θ, by name (each parameter's .grad)."""
        self.model.backward(dlogits)
        return {name: param.grad for name, param in self.model.named_parameters()}

    def update(self) -> None:
        """4. Update: θ ← θ − η ∇θ L, by the optimizer; the weights before it are kept in case the next loss is NaN."""
        self._keep_last_good()
        self.optimizer.step()
        self.steps += 1

    def _keep_last_good(self) -> None:
        """A copy of every weight before the update, into the same buffers step after step (NumPy
        backends): no new arrays each step, which for a small network costs as much as its math."""
        params, kept = self.model.parameters(), self._last_good
        reusable = kept is not None and all(
            isinstance(k, np.ndarray) and isinstance(p.value, np.ndarray) and k.shape == p.value.shape
            for k, p in zip(kept, params, strict=True)
        )
        if not reusable:
            self._last_good = [self.be.copy(p.value) for p in params]
            return
        for buffer, param in zip(kept, params, strict=True):
            np.copyto(buffer, param.value)

    def _diverged(self, loss: float) -> Iterator[Event]:
        failed_at = self.steps + 1
        if self._last_good is not None:
            # The weights before the last update: the last ones whose loss was finite. The update
            # that made them diverge is undone; its optimizer state is dropped rather than kept.
            for param, value in zip(self.model.parameters(), self._last_good, strict=True):
                param.value = value
            self._last_good = None  # those buffers are the weights now: the next step copies afresh
            self.steps -= 1
            self._optimizer_dropped = True
        lr = self.config.lr
        yield DivergedEvent(
            self.steps,
            float(loss),
            f"the loss became {loss} at step {failed_at}; the last good weights were kept. "
            f"Try a smaller learning rate (e.g. {lr / 10:g}).",
        )

    def evaluate(self, images: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
        """Mean loss and accuracy over a whole set, in batches, without changing the weights."""
        cfg = self.config
        loss_sum, correct_sum, predicted = 0.0, 0, []
        for start in range(0, len(images), cfg.eval_batch_size):
            x = images[start : start + cfg.eval_batch_size]
            y = labels[start : start + cfg.eval_batch_size]
            logits = self.model.forward(self.be.asarray(x, dtype=cfg.precision))
            loss, _, correct = self.be.classification_loss(logits, self.be.asarray(y), cfg.loss, cfg.alpha, cfg.gamma)
            predicted.append(np.argmax(self.be.to_numpy(logits), axis=1))
            loss_sum += loss * len(x)
            correct_sum += correct
        self.last_predictions = np.concatenate(predicted)  # the class each image was given (the lab's confusion matrix)
        return loss_sum / len(images), correct_sum / len(images)

    def _save_during_run(self, path, final: bool = False, **figures) -> Event:
        """A save that never ends the run: a failure is an event that says so (the next epoch tries again)."""
        try:
            event, self.save_failed = self.save(path, **figures), None
        except (NnsimError, OSError) as error:
            event = self.save_failed = SaveFailedEvent(str(path), save_failure(error), self.steps, final)
        return event

    def describing(self) -> dict:
        """What every file of this run carries, so that each is read the same way (`predict`, the lab's draw)."""
        return {
            "class_names": self.dataset.class_names,
            "data": self.dataset.name,
            "background": float(_border_mean(self.dataset.x_train)),
            "steps": self.steps,
            "epoch": self.epoch,
        }

    def save(self, path, **figures) -> CheckpointEvent:
        """Weights, optimizer state and position in the data, so that a resume continues exactly."""
        progress, position = self._progress, self._position
        meta = {
            **self.describing(),
            "optimizer": {"name": self.config.optimizer, "steps": self.optimizer.steps},
            "position": {"epoch": position.epoch, "batch": position.batch, "order_state": position.order_state},
            "progress": {
                "train_loss": progress.train_loss,
                "val_accuracy": progress.val_accuracy,
                "best_loss": progress.best_loss if math.isfinite(progress.best_loss) else None,
                "best_epoch": progress.best_epoch,
                "waited": progress.waited,
            },
            **figures,
        }
        extra = {}
        if self._optimizer_dropped:
            del meta["optimizer"]  # a resume starts the optimizer afresh, at the weights kept
        else:
            extra = {f"optimizer/{key}": value for key, value in self.optimizer.state_dict()["buffers"].items()}
        extra.update({f"best/{name}": value for name, value in (progress.best_state or {}).items()})
        save_checkpoint(Path(path), self.model, meta, extra)
        return CheckpointEvent(str(path), self.steps, self.epoch)

    def _resume(self, path) -> None:
        """Continue from a checkpoint: its weights and, when it has them, optimizer state and position."""
        meta = load_weights(self.model, path)
        self.steps = int(meta.get("steps", 0))
        self.epoch = int(meta.get("epoch", 0))
        extra = read_extra(path)
        saved = meta.get("optimizer", {})
        if saved.get("name") == self.config.optimizer:
            buffers = {key.split("/", 1)[1]: value for key, value in extra.items() if key.startswith("optimizer/")}
            self.optimizer.load_state_dict({"steps": saved["steps"], "buffers": buffers})
        elif saved:
            self.warnings.append(
                f"{path} was trained with {saved.get('name')}; {self.config.optimizer} starts with fresh state"
            )
        if "position" in meta:
            where = meta["position"]
            self._position = _Position(int(where["epoch"]), int(where["batch"]), where["order_state"])
            figures = meta.get("progress", {})
            best = {key.split("/", 1)[1]: value for key, value in extra.items() if key.startswith("best/")}
            self._progress = _Progress(
                start=time.perf_counter(),
                train_loss=figures.get("train_loss"),
                val_accuracy=figures.get("val_accuracy"),
                best_loss=figures["best_loss"] if figures.get("best_loss") is not None else math.inf,
                best_epoch=int(figures.get("best_epoch", 0)),
                best_state=best or None,
                waited=int(figures.get("waited", 0)),
            )
            self._count_from_kept_weights()


def _border_mean(images: np.ndarray) -> float:
    """Mean brightness of the outermost pixels: about 0 for MNIST's white-on-black digits."""
    sample = images[:500]
    border = np.concatenate(
        [sample[:, :, 0].ravel(), sample[:, :, -1].ravel(), sample[:, :, :, 0].ravel(), sample[:, :, :, -1].ravel()]
    )
    return float(border.mean()) if border.size else 0.0
