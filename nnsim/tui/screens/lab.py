"""The lab: choose a network and data, press space, and watch it learn, live, on the real engine."""

from __future__ import annotations

import numpy as np
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Footer, Header, Input, RichLog, Select, Static
from textual_plotext import PlotextPlot

from nnsim.errors import NnsimError
from nnsim.tui.images import half_blocks, to_rgb
from nnsim.tui.live.lab import SMOOTHING, LabFigures, LabRun
from nnsim.tui.screens.base import NnsimScreen

MODELS = [("CNN", "cnn"), ("ViT", "vit"), ("MLP", "mlp")]
OPTIMIZERS = [("Adam", "adam"), ("SGD + momentum", "sgd")]
LOSSES = [("cross-entropy", "ce"), ("focal", "focal")]


class LabScreen(NnsimScreen):
    """space starts, pauses and resumes; . runs one step while paused; x stops; y log scale."""

    BINDINGS = [
        Binding("space", "toggle", "Start/pause", key_display="space", priority=True),
        Binding("full_stop", "one_step", "One step", key_display="."),
        Binding("x", "stop", "Stop"),
        Binding("y", "log_scale", "Log scale"),
        Binding("escape", "home", "Home"),
    ]

    class Progress(Message):
        """New figures from the training worker; a newer one replaces one not yet drawn."""

        def __init__(self, figures: LabFigures) -> None:
            super().__init__()
            self.figures = figures

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, LabScreen.Progress)

    def __init__(self, config=None, start: bool = False):
        from nnsim.engine.trainer import TrainConfig

        super().__init__()
        self.config = config or TrainConfig()
        self.start_at_once = start
        self.session: LabRun | None = None
        self.figures = LabFigures()
        self.log_scale = False
        self.class_names: list[str] = []
        self._logged = 0

    def compose(self) -> ComposeResult:
        c = self.config
        yield Header()
        with Horizontal(id="lab-settings"):
            yield Select(MODELS, value=c.model, allow_blank=False, id="lab-model", compact=True)
            yield Input(c.data, id="lab-data", placeholder="data: name or path", compact=True)
            yield Select(LOSSES, value=c.loss, allow_blank=False, id="lab-lossfn", compact=True)
            yield Select(OPTIMIZERS, value=c.optimizer, allow_blank=False, id="lab-optimizer", compact=True)
            yield Input(_text(c.lr), id="lab-lr", placeholder="lr (default)", compact=True)
            yield Input(str(c.batch_size), id="lab-batch", placeholder="batch", compact=True)
            yield Input(_text(c.epochs), id="lab-epochs", placeholder="epochs", compact=True)
        with Horizontal(id="lab-controls"):
            yield Button("▶ Start", id="lab-start", compact=True)
            yield Button("· One step", id="lab-step", compact=True)
            yield Button("■ Stop", id="lab-stop", compact=True)
            yield Static(id="lab-status")
        with Horizontal(id="lab-body"):
            with Vertical(id="lab-curves"):
                yield PlotextPlot(id="lab-loss")
                yield PlotextPlot(id="lab-accuracy")
            with Vertical(id="lab-side"):
                yield Static(id="lab-confusion")
                yield Static(id="lab-samples")
                yield RichLog(id="lab-log", wrap=True, markup=False)
        yield Footer()
        yield from self.compose_too_small()

    def on_mount(self) -> None:
        super().on_mount()
        self.title = "Lab: train a network and watch it learn"
        self.query_one("#lab-status", Static).update("Choose, then press space (or ▶ Start).")
        self.query_one("#lab-start", Button).focus()
        self._draw_curves()
        if self.start_at_once:
            self.action_toggle()

    # --- controls -----------------------------------------------------------------------------
    @property
    def state(self) -> str:
        """ready, running, paused or finished: the run's own word, not the last one drawn."""
        return self.session.figures.state if self.session is not None else self.figures.state

    def action_toggle(self) -> None:
        if self.session is None:
            if self.state != "running":  # not while the data loads or the kernels compile
                self._start()
        elif self.state == "running":
            self.session.pause()
            self.query_one("#lab-start", Button).label = "▶ Resume"
            self._status("paused: space resumes, . runs one step, x stops")
        elif self.state == "paused":
            self.session.resume()
            self.query_one("#lab-start", Button).label = "❚❚ Pause"

    def action_one_step(self) -> None:
        if self.session is not None and self.state == "paused":
            self.session.step_once()

    def action_stop(self) -> None:
        if self.session is not None and self.state in ("running", "paused"):
            self.session.stop()

    def action_log_scale(self) -> None:
        self.log_scale = not self.log_scale
        self._draw_curves()

    def action_home(self) -> None:
        if self.session is not None and self.state in ("running", "paused"):
            self.session.stop()
        self.app.pop_screen()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        {"lab-start": self.action_toggle, "lab-step": self.action_one_step, "lab-stop": self.action_stop}[
            event.button.id
        ]()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "lab-lr" and self.session is not None:  # a new learning rate mid-run
            try:
                lr = float(event.value)
                if not lr > 0:
                    raise ValueError
            except ValueError:
                self._status(f"not a learning rate: {event.value!r} (a number > 0)", error=True)
                return
            self.session.set_lr(lr)

    def _settings(self):
        from dataclasses import replace

        def number(widget_id: str, kind, name: str):
            text = self.query_one(widget_id, Input).value.strip()
            if not text:
                return None
            try:
                return kind(text)
            except ValueError:
                raise NnsimError(f"{name} must be a number, got {text!r}") from None

        return replace(
            self.config,
            model=self.query_one("#lab-model", Select).value,
            data=_data_allowed(self.query_one("#lab-data", Input).value.strip() or "mnist-mini"),
            loss=self.query_one("#lab-lossfn", Select).value,
            optimizer=self.query_one("#lab-optimizer", Select).value,
            lr=number("#lab-lr", float, "the learning rate"),
            batch_size=number("#lab-batch", int, "the batch size") or 64,
            epochs=number("#lab-epochs", int, "epochs"),
        )

    def _start(self) -> None:
        try:
            config = self._settings().resolved()
        except NnsimError as error:
            self._status(str(error), error=True)
            return
        self.config = config
        self.figures = LabFigures(state="running")
        self._logged = 0
        self.query_one("#lab-log", RichLog).clear()
        self.query_one("#lab-start", Button).label = "❚❚ Pause"
        self._status("loading the data and building the network…")
        self.train(config)

    @work(thread=True, exclusive=True, group="lab")
    def train(self, config) -> None:
        try:
            _prepare_backend(config.backend, lambda text: self.post_message(LabStatus(text)))
            run = LabRun(config)
        except NnsimError as error:
            self.post_message(LabStatus(str(error), error=True))
            return
        self.class_names = run.classes
        self.session = run
        run.run(lambda figures: self.post_message(self.Progress(figures)))

    def on_lab_status(self, message: LabStatus) -> None:
        self._status(message.text, error=message.error)
        if message.error:
            self.query_one("#lab-start", Button).label = "▶ Start"
            self.figures = LabFigures()

    # --- drawing ------------------------------------------------------------------------------
    def on_lab_screen_progress(self, message: Progress) -> None:
        self.figures = f = message.figures
        self._draw_curves()
        if f.confusion is not None:
            self.query_one("#lab-confusion", Static).update(_confusion(f.confusion, self.class_names))
        if f.samples:
            self.query_one("#lab-samples", Static).update(
                _samples(f.samples, self.class_names, self.query_one("#lab-samples").size.width)
            )
        log = self.query_one("#lab-log", RichLog)
        for line in f.log[self._logged :]:
            log.write(line)
        self._logged = len(f.log)
        button = self.query_one("#lab-start", Button)
        button.label = {"running": "❚❚ Pause", "paused": "▶ Resume", "finished": "▶ Start again"}[f.state]
        if f.state == "finished":
            self.session = None
        self._status(self._progress_line(f))

    def _progress_line(self, f: LabFigures) -> str:
        if f.state == "finished":
            best = f"validation accuracy {f.val_accuracies[-1]:.2%}" if f.val_accuracies else "no validation"
            return f"finished after {f.step} steps: {best}; press space to train again"
        eta = f", about {f.eta_s:.0f} s left" if f.eta_s is not None else ""
        where = f"epoch {f.epoch}/{f.epochs}, batch {f.batch}/{f.batches}"
        line = f"{f.state}: {where}, step {f.step} · {f.samples_per_s:,.0f} images/s{eta}"
        return line + (f"\n{f.last_update}" if f.state == "paused" and f.last_update else "")

    def _status(self, text: str, error: bool = False) -> None:
        self.query_one("#lab-status", Static).update(Text(text, style="red" if error else ""))

    def _draw_curves(self) -> None:
        f = self.figures
        for widget_id, raw, smooth, val, title in (
            ("#lab-loss", f.losses, f.smoothed, f.val_losses, "loss"),
            ("#lab-accuracy", f.accuracies, None, f.val_accuracies, "accuracy"),
        ):
            plot = self.query_one(widget_id, PlotextPlot)
            plt = plot.plt
            plt.clear_data()
            plt.clear_figure()
            steps = list(range(1, len(raw) + 1))
            if raw:
                plt.plot(steps, raw, color="gray", marker="braille", label=f"train {title}, each step")
            if smooth:
                plt.plot(steps, smooth, color="cyan", marker="braille", label=f"moving average ({SMOOTHING})")
            if val and f.batches:
                epochs_at = [f.batches * (i + 1) for i in range(len(val))]
                plt.plot(epochs_at, val, color="orange", marker="dot", label=f"validation {title}, each epoch")
            if self.log_scale and title == "loss" and raw and min(raw) > 0:
                plt.yscale("log")
            plt.title(title + (" (log scale)" if self.log_scale and title == "loss" else ""))
            plt.xlabel("step")
            plot.refresh()


class LabStatus(Message):
    def __init__(self, text: str, error: bool = False) -> None:
        super().__init__()
        self.text, self.error = text, error


def _prepare_backend(name: str, report) -> None:
    """Compile (first run) or load a fast backend's kernels, reporting progress, before training."""
    from nnsim.engine.backends import get_backend

    backend = get_backend(name)
    if hasattr(backend, "warm_up"):
        backend.warm_up(
            lambda what, done, total: report(f"preparing the {backend.name} kernels: {what} ({done}/{total})")
        )


def _data_allowed(data: str) -> str:
    """A data set name, or a path; served to a browser, a path must stay in the shared folder."""
    from pathlib import Path

    from nnsim import serving
    from nnsim.data.datasets import BUILTIN_NAMES, FINDABLE_NAMES

    if data in BUILTIN_NAMES + FINDABLE_NAMES or not serving.served():
        return data
    path = Path(data).expanduser()
    if not path.is_absolute() and serving.shared_folder() is not None:
        path = serving.shared_folder() / path
    if not serving.allows(path):
        serving.refuse(data)
    return str(path)


def _text(value) -> str:
    return "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _confusion(matrix: np.ndarray, names: list[str]) -> Table:
    table = Table(title="validation: true (rows) × predicted", title_justify="left", box=None, padding=(0, 0))
    table.add_column("")
    for name in names:
        table.add_column(name[:3], justify="right", min_width=4)
    top = max(int(matrix.max()), 1)
    for i, name in enumerate(names):
        cells = []
        for j, count in enumerate(matrix[i]):
            level = int(40 + 180 * count / top)
            colour = f"rgb(40,{level},60)" if i == j else f"rgb({level},40,40)"
            cells.append(Text(f"{count:>4}", style=f"on {colour}" if count else "dim"))
        table.add_row(name[:6], *cells)
    return table


def _samples(samples, names: list[str], width: int) -> Text:
    """The validation images, shrunk to about 10 pixels a side, with the class predicted and its p."""
    text = Text("validation images, predicted\n", style="bold")
    tiles = []
    for image, true, predicted, p in samples:
        gray = np.asarray(image).mean(axis=0) if np.ndim(image) == 3 else np.asarray(image)
        stride = max(1, -(-gray.shape[0] // 10))
        tiles.append((half_blocks(to_rgb(gray[::stride, ::stride])).split("\n"), true, predicted, p))
    if not tiles:
        return text
    tile_width = len(tiles[0][0][0]) + 1
    per_row = max(1, width // max(tile_width, 8))
    for first in range(0, len(tiles), per_row):
        row = tiles[first : first + per_row]
        for line in range(len(row[0][0])):
            for tile, *_ in row:
                text.append_text(tile[line])
                text.append(" " * (max(tile_width, 8) - len(tile[line])))
            text.append("\n")
        for _, true, predicted, p in row:
            label = f"{names[predicted][:3]} {p:.0%}"
            text.append(label.ljust(max(tile_width, 8)), style="green" if predicted == true else "red bold")
        text.append("\n")
    return text
