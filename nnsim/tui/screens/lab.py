"""The lab: choose a network and data, press space, and watch it learn, live, on the real engine."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Button, Footer, Header, Input, Label, RichLog, Select, Static, TabbedContent, TabPane
from textual_plotext import PlotextPlot

from nnsim.engine.runfiles import OtherNetworkError
from nnsim.errors import NnsimError
from nnsim.tui.lab_views import confusion_table, hints_text, inside_view, norms_table, sample_tiles, summary_table, thin
from nnsim.tui.live.doctor import Hint, diagnose
from nnsim.tui.live.lab import COMPARISONS, SIZES, SMOOTHING, LabFigures
from nnsim.tui.live.lab_files import data_allowed, default_checkpoint, path_allowed, save_as
from nnsim.tui.screens.base import NnsimScreen

MODELS = [("CNN", "cnn"), ("ViT", "vit"), ("MLP", "mlp")]
OPTIMIZERS = [("Adam", "adam"), ("SGD + momentum", "sgd")]
LOSSES = [("cross-entropy", "ce"), ("focal", "focal")]
BACKENDS = [("auto", "auto"), ("reference", "reference")]
RUN_COLOURS = ("cyan", "magenta")
SHORT_PLOT = 12  # rows: a plot this short or shorter draws no title and no axis label
POINT = "•"  # a validation point: one cell wide in every terminal font (● is two in some)
# While training, the screen is redrawn at most every PUBLISH_EVERY seconds, and less often when a
# redraw costs more than REDRAW_SHARE of the time between them: the drawing shares two cores with
# the training it shows, and must not slow it much.
PUBLISH_EVERY = 1.0
REDRAW_SHARE = 0.04
SWITCH_INTERVAL = 0.0005  # seconds: how often Python lets another thread take the GIL (default 0.005)


class LabScreen(NnsimScreen):
    """space starts, pauses and resumes; . runs one step while paused; x stops; y log scale;
    f applies the doctor's fix; o opens its lesson; d draws a digit; s saves; r resumes."""

    BINDINGS = [
        Binding("space", "toggle", "Start/pause", key_display="space", priority=True),
        Binding("full_stop", "one_step", "One step", key_display="."),
        Binding("x", "stop", "Stop"),
        Binding("y", "log_scale", "Log scale"),
        Binding("f", "fix", "Fix"),
        Binding("o", "open_lesson", "Lesson", show=False),
        Binding("d", "draw", "Draw"),
        Binding("s", "save_as", "Save", show=False),
        Binding("r", "resume_run", "Resume", show=False),
        Binding("1", "tab('curves')", "Curves", show=False),
        Binding("2", "tab('inside')", "Inside", show=False),
        Binding("3", "tab('compare')", "Compare", show=False),
        Binding("4", "tab('log')", "Log", show=False),
        Binding("escape", "home", "Home"),
    ]

    class Progress(Message):
        """New figures from the training worker; a newer one replaces one not yet drawn."""

        def __init__(self, figures: list[LabFigures]) -> None:
            super().__init__()
            self.figures = figures

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, LabScreen.Progress)

    def __init__(self, config=None, start: bool = False):
        from nnsim.engine.trainer import TrainConfig

        super().__init__()
        self.config = config or TrainConfig()
        self.start_at_once = start
        self.session = None
        self.figures = LabFigures()
        self.compared: list[LabFigures] = []
        self.log_scale = False
        self.class_names: list[str] = []
        self.hints: list[Hint] = []
        self._logged = 0
        self.redraw_seconds = 0.0  # a moving average of what one redraw costs the UI thread
        self.own_checkpoint = default_checkpoint(self.config)  # served: a folder of this tab's own

    def publish_interval(self) -> float:
        return max(PUBLISH_EVERY, self.redraw_seconds / REDRAW_SHARE)

    def compose(self) -> ComposeResult:
        c = self.config
        yield Header()
        with Grid(id="lab-settings"):
            yield from _setting("model", Select(MODELS, value=c.model, allow_blank=False, id="lab-model", compact=True))
            data = Input(c.data, id="lab-data", placeholder="name or path", compact=True)
            data.tooltip = (
                "built in: mnist-mini, shapes, shapes-imbalanced; found on disk: mnist, fashion-mnist; "
                "or a path: a Keras .npz, a folder of MNIST IDX files, an ImageFolder (a folder per class)"
            )
            yield from _setting("data", data)
            yield from _setting("loss", Select(LOSSES, value=c.loss, allow_blank=False, id="lab-lossfn", compact=True))
            yield from _setting("focal γ", Input(_text(c.gamma), id="lab-gamma", compact=True))
            yield from _setting(
                "optimizer", Select(OPTIMIZERS, value=c.optimizer, allow_blank=False, id="lab-optimizer", compact=True)
            )
            yield from _setting("learn rate", Input(_text(c.lr), id="lab-lr", placeholder="default", compact=True))
            yield from _setting("batch", Input(str(c.batch_size), id="lab-batch", compact=True))
            yield from _setting("epochs", Input(_text(c.epochs), id="lab-epochs", placeholder="default", compact=True))
            yield from _setting(
                "patience", Input(_text(c.patience), id="lab-patience", placeholder="off", compact=True)
            )
            yield from _setting(
                "backend",
                Select(_backend_options(c.backend), value=c.backend, allow_blank=False, id="lab-backend", compact=True),
            )
            yield from _setting("seed", Input(str(c.seed), id="lab-seed", compact=True))
            yield from _setting("focal α", Input(_text(c.alpha), id="lab-alpha", compact=True))
            yield from _setting(
                "compare",
                Select(
                    [(label, key) for key, (label, *_) in COMPARISONS.items()],
                    value="none",
                    allow_blank=False,
                    id="lab-compare",
                    compact=True,
                ),
            )
            checkpoint = c.checkpoint or str(self.own_checkpoint)
            yield from _setting("save to", Input(checkpoint, id="lab-checkpoint", compact=True))
            sizes = [("small", "small"), ("default", "default"), ("large", "large")]
            sizes += [("as given", "given")] if c.sizes else []
            size = Select(
                sizes, value="given" if c.sizes else "default", allow_blank=False, id="lab-size", compact=True
            )
            size.tooltip = _sizes_tip()
            yield from _setting("size", size)
        with Horizontal(id="lab-controls"):
            yield Button("▶ Start", id="lab-start", compact=True)
            yield Button("· Step", id="lab-step", compact=True)
            yield Button("■ Stop", id="lab-stop", compact=True)
            yield Button("Save", id="lab-save", compact=True)
            yield Button("Resume", id="lab-resume", compact=True)
            yield Button("Draw", id="lab-draw", compact=True)
        yield Line(id="lab-status")
        yield Line(id="lab-notice")
        yield Line(id="lab-doctor")
        with TabbedContent(id="lab-tabs", initial="curves"):
            with TabPane("1 Curves", id="curves"), Horizontal(classes="lab-pane"):
                with Vertical(id="lab-curves"):
                    yield PlotextPlot(id="lab-loss")
                    yield PlotextPlot(id="lab-accuracy")
                with VerticalScroll(id="lab-side"):
                    yield Static(id="lab-confusion")
                    yield Static(id="lab-samples")
            with TabPane("2 Inside", id="inside"), Horizontal(classes="lab-pane"):
                with VerticalScroll(id="lab-inside-main"):
                    yield Static(id="lab-filters")
                with VerticalScroll(id="lab-inside-side"):
                    yield Static(id="lab-hints")
                    yield Static(id="lab-norms")
            with TabPane("3 Compare", id="compare"), Horizontal(classes="lab-pane"):
                with Vertical(id="lab-compare-curves"):
                    yield PlotextPlot(id="lab-compare-loss")
                    yield PlotextPlot(id="lab-compare-accuracy")
                yield Static(id="lab-summary")
            with TabPane("4 Log", id="log"):
                yield RichLog(id="lab-log", wrap=True, markup=False)
        yield Footer()
        yield from self.compose_too_small()

    def on_mount(self) -> None:
        super().on_mount()
        self.title = "Lab: train a network and watch it learn"
        self._status("Choose, then press space (or ▶ Start). d draws a digit for the network to read.")
        self.query_one("#lab-start", Button).focus()
        self.query_one("#lab-summary", Static).update(
            "Compare: choose a second setting (compare, above) and start: both runs train on the same data "
            "with the same seed, side by side, and their curves are drawn together here."
        )
        self._draw_curves()
        self._find_backends()
        if self.start_at_once:
            self.action_toggle()

    @work(thread=True, group="lab-backends")
    def _find_backends(self) -> None:
        from nnsim.engine.backends import available_backends

        names = available_backends()
        self.app.call_from_thread(self._set_backends, names)

    def _set_backends(self, names: list[str]) -> None:
        select = self.query_one("#lab-backend", Select)
        value = select.value
        select.set_options([("auto", "auto")] + [(name, name) for name in names])
        select.value = value if value in ("auto", *names) else "auto"

    def on_unmount(self) -> None:
        """Quitting mid-run loses nothing: the run stops and saves its checkpoint first."""
        if self.session is not None and self.session.state in ("running", "paused"):
            self.session.stop()
            deadline = time.monotonic() + 30
            while self.session.state != "finished" and time.monotonic() < deadline:
                time.sleep(0.02)

    # --- controls -----------------------------------------------------------------------------
    @property
    def state(self) -> str:
        """ready, running, paused or finished: the run's own word, not the last one drawn."""
        return self.session.state if self.session is not None else self.figures.state

    def action_toggle(self) -> None:
        if self.session is None or self.state == "finished":
            if self.session is not None or self.state != "running":  # not while the data loads or kernels compile
                self._start()
        elif self.state == "running":
            self.session.pause()
            self._label("▶ Resume")
            self._status("paused: space resumes, . runs one step, x stops, s saves")
        elif self.state == "paused":
            self.session.resume()
            self._label("❚❚ Pause")

    def action_one_step(self) -> None:
        if self.session is not None and self.state == "paused":
            self.session.step_once()

    def action_stop(self) -> None:
        if self.session is not None and self.state in ("running", "paused"):
            self.session.stop()

    def action_log_scale(self) -> None:
        self.log_scale = not self.log_scale
        self._draw_curves()

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def action_home(self) -> None:
        if self.session is not None and self.state in ("running", "paused"):
            self.session.stop()
        self.app.pop_screen()

    def action_fix(self) -> None:
        """Apply the training doctor's first fix: a new learning rate, or early stopping."""
        if not self.hints:
            self._status("the doctor has nothing to fix", error=False)
            return
        hint = self.hints[0]
        name, value = hint.change
        if name == "lr":
            lr = self._lr() * value
            self.query_one("#lab-lr", Input).value = f"{lr:g}"
            if self.session is not None and self.state in ("running", "paused"):
                self.session.set_lr(lr)
            self.config.lr = lr
        else:
            self.query_one("#lab-patience", Input).value = str(int(value))
            if self.session is not None and self.state in ("running", "paused"):
                self.session.runs[0].set_patience(int(value))
        self._status(f"fixed: {hint.fix}")
        self.hints = []
        self._doctor("")

    def action_open_lesson(self) -> None:
        """The lesson that explains the doctor's first hint (escape comes back here)."""
        if not self.hints:
            return
        entries = [e for e in self.app.entries if e.lesson.section == self.hints[0].lesson]
        if entries:
            self.app.open_lesson(entries[0])

    def action_draw(self) -> None:
        from nnsim.tui.live.draw import Reader
        from nnsim.tui.screens.draw import DrawScreen

        reader = None
        if self.session is not None and self.state != "running":
            reader = self.session.runs[0].reader()
        self.app.push_screen(DrawScreen(reader if reader is not None and reader.fits() else Reader.shipped()))

    def action_save_as(self) -> None:
        if self.session is None or self.state == "running":
            self._status("pause the run (space) or let it finish, then save", error=True)
            return
        path = Path(self.query_one("#lab-checkpoint", Input).value.strip()).expanduser()
        try:
            save_as(self.session, path, self.own_checkpoint.parent)
        except (NnsimError, OSError) as error:
            self._status(f"could not save: {error}", error=True)
            return
        self._status(f"saved the weights, optimizer state and position to {path}")

    def _path_allowed(self, path: Path) -> None:
        path_allowed(path, self.own_checkpoint.parent)

    def action_resume_run(self) -> None:
        """Start from the checkpoint in "save to": its weights, optimizer and place in the data."""
        if self.session is not None and self.state in ("running", "paused"):
            self._status("stop this run first (x)", error=True)
            return
        path = Path(self.query_one("#lab-checkpoint", Input).value.strip()).expanduser()
        try:
            self._path_allowed(path)
        except NnsimError as error:
            self._status(str(error), error=True)
            return
        if not path.is_file():
            self._status(f"no checkpoint at {path} yet: train (space) and stop, or type a path", error=True)
            return
        self.session = None
        self._start(resume=str(path))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        {
            "lab-start": self.action_toggle,
            "lab-step": self.action_one_step,
            "lab-stop": self.action_stop,
            "lab-save": self.action_save_as,
            "lab-resume": self.action_resume_run,
            "lab-draw": self.action_draw,
        }[event.button.id]()

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

    def _settings(self, resume: str | None = None):
        from dataclasses import replace

        from nnsim.engine.trainer import TrainConfig

        default = TrainConfig()  # what an emptied box falls back to

        def number(widget_id: str, kind, name: str):
            text = self.query_one(widget_id, Input).value.strip()
            if not text:
                return None
            try:
                return kind(text)
            except ValueError:
                raise NnsimError(f"{name} must be a number, got {text!r}") from None

        def select(widget_id: str):
            return self.query_one(widget_id, Select).value

        alpha_text = self.query_one("#lab-alpha", Input).value.strip()
        try:
            alpha = (
                [float(v) for v in alpha_text.split(",")] if "," in alpha_text else float(alpha_text or default.alpha)
            )
        except ValueError:
            raise NnsimError(f"focal α must be a number or one per class, got {alpha_text!r}") from None
        size = select("#lab-size")
        model = select("#lab-model")
        sizes = (
            self.config.sizes if size == "given" and model == self.config.model else SIZES.get(size, {}).get(model, {})
        )
        checkpoint = self.query_one("#lab-checkpoint", Input).value.strip()
        if checkpoint:
            self._path_allowed(Path(checkpoint).expanduser())
        return replace(
            self.config,
            model=model,
            sizes=dict(sizes),
            data=data_allowed(self.query_one("#lab-data", Input).value.strip() or default.data),
            loss=select("#lab-lossfn"),
            optimizer=select("#lab-optimizer"),
            backend=select("#lab-backend"),
            lr=number("#lab-lr", float, "the learning rate"),
            batch_size=_or(number("#lab-batch", int, "the batch size"), default.batch_size),
            epochs=number("#lab-epochs", int, "epochs"),
            patience=number("#lab-patience", int, "patience"),
            seed=_or(number("#lab-seed", int, "the seed"), default.seed),
            gamma=_or(number("#lab-gamma", float, "focal γ"), default.gamma),
            alpha=alpha,
            checkpoint=checkpoint or None,
            resume=resume,
        )

    def _start(self, resume: str | None = None) -> None:
        from nnsim.tui.live.lab import compared

        try:
            config = self._settings(resume).resolved()
            other = compared(config, self.query_one("#lab-compare", Select).value)
        except NnsimError as error:
            self._status(str(error), error=True)
            return
        self.config = config
        self.figures = LabFigures(state="running")
        self.compared = []
        self.hints = []
        self._logged = 0
        self._doctor("")
        self.query_one("#lab-log", RichLog).clear()
        self._notice("")
        self._label("❚❚ Pause")
        self._status("loading the data and building the network…")
        self.train(config, other)

    @work(thread=True, exclusive=True, group="lab")
    def train(self, config, other=None) -> None:
        # The training thread needs the GIL for a moment between kernels; while the screen is being
        # drawn it would wait up to the default 5 ms each time. Switching more often keeps it busy
        # (for the run only: the rest of the app keeps Python's default).
        usual = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)
        try:
            self._train(config, other)
        finally:
            sys.setswitchinterval(usual)

    def _train(self, config, other) -> None:
        from nnsim.tui.live.lab import LabRun, LabSession

        try:
            _prepare_backend(config.backend, lambda text: self.post_message(LabStatus(text)))
            runs = [LabRun(config, "A")]
            if other is not None:
                runs.append(LabRun(other, "B"))
        except OtherNetworkError as error:  # a free name is offered: space again trains into it
            self.app.call_from_thread(self._offer_free_name, error)
            return
        except NnsimError as error:
            self.post_message(LabStatus(str(error), error=True))
            return
        self.class_names = runs[0].classes
        session = self.session = LabSession(runs)
        session.run(lambda figures: self.post_message(self.Progress(figures)), every=self.publish_interval)

    def on_lab_status(self, message: LabStatus) -> None:
        self._status(message.text, error=message.error)
        if message.error:
            self._label("▶ Start")
            self.figures = LabFigures()

    # --- drawing ------------------------------------------------------------------------------
    def on_lab_screen_progress(self, message: Progress) -> None:
        started = time.perf_counter()
        self.call_after_refresh(self._redrawn, started)
        previous = self.figures
        self.figures = f = message.figures[0]
        self.compared = message.figures if len(message.figures) > 1 else []
        self._draw_tab(new_validation=len(f.val_accuracies) != len(previous.val_accuracies) or f.state == "finished")
        self._diagnose(f)
        log = self.query_one("#lab-log", RichLog)
        for line in f.log[self._logged :]:
            log.write(line)
        self._logged = len(f.log)
        state = self.state if self.session is not None else f.state
        if all(figures.state == "finished" for figures in message.figures):
            state = "finished"
        self._label({"running": "❚❚ Pause", "paused": "▶ Resume", "finished": "▶ Start again"}.get(state, "▶ Start"))
        self._status(self._progress_line(f, state))
        self._notice("\n".join([f.save_problem, *f.notices]).strip())

    def _notice(self, text: str) -> None:
        """What the learner must know all run long (a save failing, nothing saved, data skipped):
        shown until it no longer holds, never replaced by the progress line."""
        notice = self.query_one("#lab-notice", Line)
        if str(notice.text) != text:
            notice.text = Text(text, style="red" if text.startswith("not saving") else "yellow")
            notice.set_class(bool(text), "-shown")

    def _offer_free_name(self, error) -> None:
        from nnsim.engine.runfiles import free_name

        free = free_name(error.path)
        self.query_one("#lab-checkpoint", Input).value = str(free)
        self.on_lab_status(LabStatus(f"{error} 'save to' now holds {free}: space trains into it", error=True))

    def _redrawn(self, started: float) -> None:
        cost = time.perf_counter() - started
        self.redraw_seconds = cost if not self.redraw_seconds else 0.8 * self.redraw_seconds + 0.2 * cost

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self._draw_tab(new_validation=True)

    def _draw_tab(self, new_validation: bool) -> None:
        """Draw what the visible tab shows (the others wait until they are looked at)."""
        f, tab = self.figures, self.query_one(TabbedContent).active
        if tab == "curves":
            self._draw_curves()
            if new_validation and f.confusion is not None:
                self.query_one("#lab-confusion", Static).update(confusion_table(f.confusion, self.class_names))
            if new_validation and f.samples:
                width = self.query_one("#lab-samples").size.width
                self.query_one("#lab-samples", Static).update(sample_tiles(f.samples, self.class_names, width))
        elif tab == "inside" and f.inside is not None:
            self.query_one("#lab-hints", Static).update(hints_text(self.hints))
            filters = self.query_one("#lab-filters", Static)
            filters.update(inside_view(f, filters.size.width or 56))
            self.query_one("#lab-norms", Static).update(norms_table(f))
        elif tab == "compare" and self.compared:
            self._draw_compare()

    def _lr(self) -> float:
        """The learning rate in use (or that a start would use)."""
        if self.session is not None:
            return self.session.runs[0].trainer.optimizer.lr
        return self.config.resolved().lr

    def _diagnose(self, f: LabFigures) -> None:
        self.hints = diagnose(f, self._lr())
        if not self.hints:
            self._doctor("")
            return
        first = self.hints[0]
        line = Text("⚕ ", style="yellow bold")
        line.append(f"{first.problem}: ", style="yellow bold")
        line.append(f"{first.why}. ")
        line.append(f"f: {first.fix} · o: lesson {first.lesson}", style="bold")
        self._doctor(line)

    def _progress_line(self, f: LabFigures, state: str) -> str:
        if state == "finished":
            if f.val_accuracies:
                best = (
                    f"validation accuracy {f.val_accuracies[-1]:.2%} (best {f.best_accuracy:.2%}, epoch {f.best_epoch})"
                )
            else:
                best = "no validation yet" if f.validation else "no validation split"
            return f"{f.reason or 'finished'} after {f.step} steps: {best}; space trains again, r resumes"
        eta = f", about {f.eta_s:.0f} s left" if f.eta_s is not None else ""
        where = f"epoch {f.epoch}/{f.epochs}, batch {f.batch}/{f.batches}"
        line = f"{state}: {where}, step {f.step} · {f.samples_per_s:,.0f} images/s{eta}"
        return line + (f"\n{f.last_update}" if state == "paused" and f.last_update else "")

    def _doctor(self, line: str | Text) -> None:
        """The doctor's line: shown only while it has something to say (it costs two rows)."""
        doctor = self.query_one("#lab-doctor", Line)
        if str(doctor.text) != str(line):
            doctor.text = line
            doctor.set_class(bool(str(line)), "-hint")

    def _status(self, text: str, error: bool = False) -> None:
        self.query_one("#lab-status", Line).text = Text(text, style="red" if error else "")

    def _label(self, label: str) -> None:
        button = self.query_one("#lab-start", Button)
        if str(button.label) != label:
            button.label = label

    def _draw_curves(self) -> None:
        f = self.figures
        for widget_id, raw, smooth, val, title in (
            ("#lab-loss", f.losses, f.smoothed, f.val_losses, "loss"),
            ("#lab-accuracy", f.accuracies, None, f.val_accuracies, "accuracy"),
        ):
            plot = self.query_one(widget_id, PlotextPlot)
            plt = _clear(plot)
            first = f.step - len(raw) + 1
            at = f.epochs_at[: len(val)]
            if val:  # the validation line first, so that the training curves show over it
                plt.plot(at, val, color="orange", marker="braille")
            if raw:
                plt.plot(*thin(first, raw), color="gray", marker="braille", label=f"train {title}, each step")
            if smooth:
                plt.plot(*thin(first, smooth), color="cyan", marker="braille", label=f"moving average ({SMOOTHING})")
            if val:
                plt.scatter(at, val, color="orange", marker=POINT, label=f"validation {title}, each epoch")
            if raw:  # a margin on the right: the last validation point is drawn whole, not on the frame
                plt.xlim(first - 0.5, f.step + max(1.0, 0.03 * len(raw)))
            logged = self.log_scale and title == "loss" and raw and min(raw) > 0
            if logged:
                plt.yscale("log")
            if plot.size.height >= SHORT_PLOT:  # a short plot keeps its rows for the curves
                plt.title(title + (" (log scale: y toggles)" if logged else ""))
                plt.xlabel("step")
            plot.refresh()

    def _draw_compare(self) -> None:
        runs = self.compared
        for widget_id, title in (
            ("#lab-compare-loss", "loss (moving average)"),
            ("#lab-compare-accuracy", "validation accuracy"),
        ):
            plot = self.query_one(widget_id, PlotextPlot)
            plt = _clear(plot)
            for figures, colour, config in zip(runs, RUN_COLOURS, self._configs(), strict=False):
                label = f"{figures.label}: {config.model}, {config.loss}, {config.optimizer} {config.lr:g}"
                if title.startswith("loss") and figures.smoothed:
                    first = figures.step - len(figures.smoothed) + 1
                    plt.plot(*thin(first, figures.smoothed), color=colour, marker="braille", label=label)
                elif figures.val_accuracies:
                    at = figures.epochs_at[: len(figures.val_accuracies)]
                    plt.plot(at, figures.val_accuracies, color=colour, marker="braille")
                    plt.scatter(at, figures.val_accuracies, color=colour, marker=POINT, label=label)
            last = max(figures.step for figures in runs)
            if last:
                plt.xlim(0.5, last + max(1.0, 0.03 * last))
            if plot.size.height >= SHORT_PLOT:
                plt.title(title)
                plt.xlabel("step")
            plot.refresh()
        self.query_one("#lab-summary", Static).update(summary_table(runs, self._configs()))

    def _configs(self) -> list:
        return [run.trainer.config for run in self.session.runs] if self.session is not None else []


class LabStatus(Message):
    def __init__(self, text: str, error: bool = False) -> None:
        super().__init__()
        self.text, self.error = text, error


class Line(Widget):
    """A line or two of text that changes often: redrawn in place, never a new layout."""

    text: reactive[str | Text] = reactive("", layout=False)

    def render(self) -> str | Text:
        return self.text

    @property
    def content(self) -> str | Text:
        return self.text


def _sizes_tip() -> str:
    lines = []
    for size, models in SIZES.items():
        parts = [
            f"{model.upper()} {', '.join(f'{k} {v}' for k, v in sizes.items()) or 'as built in'}"
            for model, sizes in models.items()
        ]
        lines.append(f"{size}: " + "; ".join(parts))
    return "\n".join(lines)


def _setting(label: str, widget):
    yield Label(label, classes="lab-label")
    yield widget


def _or(value, default):
    return default if value is None else value


def _clear(plot: PlotextPlot):
    plt = plot.plt
    plt.clear_data()
    plt.clear_figure()
    return plt


def _backend_options(current: str) -> list[tuple[str, str]]:
    return BACKENDS + ([(current, current)] if current not in ("auto", "reference") else [])


def _prepare_backend(name: str, report) -> None:
    """Compile (first run) or load a fast backend's kernels, reporting progress, before training."""
    from nnsim.engine.backends import get_backend
    from nnsim.engine.backends.warm import prepare

    backend = get_backend(name)
    if hasattr(backend, "warm_up"):  # (once a machine: another nnsim compiling them is waited for)
        prepare(
            backend, lambda what, done, total: report(f"preparing the {backend.name} kernels: {what} ({done}/{total})")
        )


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(f"{v:g}" for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)
