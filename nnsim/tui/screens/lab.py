"""The lab: choose a network and data, press space, and watch it learn, live, on the real engine."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
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

from nnsim import serving
from nnsim.engine.events import REASONS
from nnsim.errors import NnsimError, SettingError
from nnsim.tui.lab_views import (
    confusion_table,
    draw_compare,
    draw_curves,
    hints_text,
    inside_view,
    norms_table,
    sample_tiles,
    summary_table,
)
from nnsim.tui.live.doctor import Hint, diagnose
from nnsim.tui.live.lab import GIVEN, SIZES, LabFigures, comparison_options
from nnsim.tui.live.lab_files import EXPORT_TIP, data_allowed, default_checkpoint, export_message, save_as
from nnsim.tui.live.lab_settings import BOXES, LIVE_SETTINGS, SETTING_WORDS, parse
from nnsim.tui.live.run_control import (
    CLOSE_SECONDS,
    ENDED,
    FAILED,
    FINISHED,
    PAUSED,
    RUNNING,
    STOPPING,
    RunControl,
    refusal,
)
from nnsim.tui.screens.base import NnsimScreen

MODELS = [("CNN", "cnn"), ("ViT", "vit"), ("MLP", "mlp")]
OPTIMIZERS = [("Adam", "adam"), ("SGD + momentum", "sgd")]
LOSSES = [("cross-entropy", "ce"), ("focal", "focal")]
BACKENDS = [("auto", "auto"), ("reference", "reference")]
# While training, the screen is redrawn at most every PUBLISH_EVERY seconds, and less often when a
# redraw costs more than REDRAW_SHARE of the time between them: the drawing shares two cores with
# the training it shows, and must not slow it much.
PUBLISH_EVERY = 1.0
REDRAW_SHARE = 0.04
SAID_FOR = 3  # a refused key's reason stays over this many progress redraws (about 3 s)
LABELS = {  # the start button's label in each state of the run
    "idle": "▶ Start",
    "preparing": "… Preparing",
    "running": "❚❚ Pause",
    "paused": "▶ Resume",
    "stopping": "■ Stopping",
    "finished": "▶ Start again",
    "failed": "▶ Start",
}


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
        Binding("e", "export", "PyTorch", show=False),
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

    class RunChanged(Message):
        """The run moved to a new state, or has something to say (what it prepares, why it failed)."""

        def __init__(self, state: str, text: str, error: bool, failure: Exception | None = None) -> None:
            super().__init__()
            self.state, self.text, self.error, self.failure = state, text, error, failure

    class RunCrashed(Message):
        """The worker met a bug (not the learner's doing): the app reports it and ends non-zero."""

        def __init__(self, error: Exception) -> None:
            super().__init__()
            self.error = error

    def __init__(self, config=None, start: bool = False, compare: dict | None = None):
        from nnsim.engine.config import TrainConfig

        super().__init__()
        self.config = config or TrainConfig()
        self.start_at_once = start
        self.compare_given = compare  # what a comparison's second run changes: a file's [compare]
        self.control = RunControl(
            publish=lambda figures: self.post_message(self.Progress(figures)),
            changed=lambda *change: self.post_message(self.RunChanged(*change)),
            crashed=lambda error: self.post_message(self.RunCrashed(error)),
            every=self.publish_interval,
        )
        self._said_for = 0  # a refusal shows over the progress line for this many more redraws
        self.refused: dict[str, str] = {}  # box id → why its last value was refused
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
                    comparison_options(self.compare_given),
                    value=GIVEN if self.compare_given else "none",
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
            yield Button("Torch", id="lab-export", compact=True, action="screen.export", tooltip=EXPORT_TIP)
            yield Button("Draw", id="lab-draw", compact=True)
            yield Line(id="lab-refused")
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
        if self.start_at_once:  # `nnsim lab --start`, and `--resume PATH` goes on from that checkpoint
            self._start(resume=self.config.resume)

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
        """However the app ends, the run stops and saves first (bounded: CLOSE_SECONDS)."""
        self.control.close()

    async def leave(self) -> None:
        """Stop the run, wait for it to save and end (at most CLOSE_SECONDS); then escape or q leaves."""
        if self.control.stop() is None:
            self._status("stopping: saving the run before leaving…")
        deadline = time.monotonic() + CLOSE_SECONDS
        while not self.control.ended and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    # --- controls: each a request the run's state accepts or refuses, saying why ---------------
    @property
    def state(self) -> str:
        """idle, preparing, running, paused, stopping, finished or failed: the run's own word."""
        return self.control.state

    @property
    def session(self):
        return self.control.session

    def _refuse(self, why: str | None) -> bool:
        """Show why a request was refused (for a few seconds, over the progress line); True if it was."""
        if why:
            self._status(why, error=True)
            self._said_for = SAID_FOR
        return bool(why)

    def action_toggle(self) -> None:
        state = self.state
        if state in ENDED:
            self._start()
        elif state == PAUSED:
            self._refuse(self.control.resume())
        elif not self._refuse(self.control.pause()):
            self._status("paused: space resumes, . runs one step, x stops, s saves")

    def action_one_step(self) -> None:
        self._refuse(self.control.step_once())

    def action_stop(self) -> None:
        self._refuse(self.control.stop())

    def action_log_scale(self) -> None:
        self.log_scale = not self.log_scale
        self._draw_curves()

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    async def action_home(self) -> None:
        await self.leave()
        if self.app.screen is self:
            self.app.pop_screen()

    def action_fix(self) -> None:
        """Apply the training doctor's first fix: a new learning rate, or early stopping."""
        if not self.hints:
            self._status("the doctor has nothing to fix", error=False)
            return
        hint = self.hints[0]
        name, value = hint.change
        value = self._lr() * value if name == "lr" else int(value)
        self.query_one(f"#{BOXES[name]}", Input).value = _text(value)
        if not self._apply(name, _text(value)):
            return
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

        reader = self.control.reader()
        self.app.push_screen(DrawScreen(reader if reader is not None and reader.fits() else Reader.shipped()))

    def action_save_as(self) -> None:
        path = Path(self.query_one("#lab-checkpoint", Input).value.strip()).expanduser()
        try:
            why = self.control.save_as(lambda: save_as(self.session, path, self.own_checkpoint.parent))
        except (NnsimError, OSError) as error:
            self._status(f"could not save: {error}", error=True)
            return
        if not self._refuse(why):
            self._status(f"saved the weights, optimizer state and position to {path}")

    def action_resume_run(self) -> None:
        """Start from the checkpoint in "save to": its weights, optimizer and place in the data."""
        if self._refuse(refusal("start", self.state)):
            return
        path = Path(self.query_one("#lab-checkpoint", Input).value.strip()).expanduser()
        try:
            serving.check(path, own_folder=self.own_checkpoint.parent)
        except NnsimError as error:
            self._status(str(error), error=True)
            return
        if not path.is_file():
            self._status(f"no checkpoint at {path} yet: train (space) and stop, or type a path", error=True)
            return
        self._start(resume=str(path))

    def action_export(self) -> None:
        self._status(*export_message(Path(self.query_one("#lab-checkpoint", Input).value.strip()), self.own_checkpoint))

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
        """Enter in a box: mid-run, the learning rate, patience and focal α, γ take effect at the
        next step; any other value is checked now and used at the next start."""
        event.stop()
        name = next((name for name, box in BOXES.items() if box == event.input.id), None)
        if name is not None and self.state in (RUNNING, PAUSED) and name in LIVE_SETTINGS:
            if self._apply(name, event.value):
                self._status(f"{SETTING_WORDS[name]} set to {event.value.strip()} from the next step")
            return
        try:
            self._settings().resolved()
        except SettingError as error:
            self._refuse_setting(error)
            return
        except NnsimError:
            pass  # a data set or path: said when the run starts
        self._accepted(*BOXES.values())

    def _apply(self, name: str, text: str) -> bool:
        """One setting changed: for the run under way if it has one (checked by the settings'
        check()), else for the next start. False, and why beside the box, if refused."""
        try:
            value = parse(name, text)
            if self.state in (RUNNING, PAUSED):
                if value is None or self._refuse(self.control.change(**{name: value})):
                    self.query_one(f"#{BOXES[name]}", Input).value = _text(self._in_force(name))
                    return False
            else:
                changed = replace(self.config, **{name: value})
                changed.resolved()
                self.config = changed
        except SettingError as error:
            self._refuse_setting(error, text)
            return False
        self._accepted(BOXES[name])
        return True

    def _refuse_setting(self, error: SettingError, text: str | None = None) -> None:
        """Why beside the box (it stays until a value is accepted there), and the value in force."""
        box_id = BOXES.get(error.name)
        if box_id is None:
            self._status(str(error), error=True)
            return
        box = self.query_one(f"#{box_id}", Input)
        text = box.value if text is None else text
        box.value = _text(self._in_force(error.name))
        self.refused[box_id] = f"✗ {text.strip()!r} refused: {error}"
        self._status(str(error), error=True)
        self.query_one(f"#{box_id}-label", Label).set_class(True, "-refused")
        self._show_refused()

    def _accepted(self, *box_ids: str) -> None:
        for box_id in box_ids:
            if self.refused.pop(box_id, None) is not None:
                self.query_one(f"#{box_id}-label", Label).set_class(False, "-refused")
        self._show_refused()

    def _show_refused(self) -> None:
        self.query_one("#lab-refused", Line).text = Text(" · ".join(self.refused.values()), style="red")

    def _in_force(self, name: str):
        """A setting's value as the run under way uses it, else as the next start would."""
        if self.session is not None and self.state in (RUNNING, PAUSED):
            trainer = self.session.runs[0].trainer
            return trainer.optimizer.lr if name == "lr" else getattr(trainer.config, name)
        return getattr(self.config, name)

    def _settings(self, resume: str | None = None):
        from nnsim.engine.config import TrainConfig

        default = TrainConfig()  # what an emptied box falls back to

        def number(name: str):
            return parse(name, self.query_one(f"#{BOXES[name]}", Input).value)

        def select(widget_id: str):
            return self.query_one(widget_id, Select).value

        size = select("#lab-size")
        model = select("#lab-model")
        sizes = (
            self.config.sizes if size == "given" and model == self.config.model else SIZES.get(size, {}).get(model, {})
        )
        checkpoint = self.query_one("#lab-checkpoint", Input).value.strip()
        if checkpoint:
            serving.check(Path(checkpoint).expanduser(), own_folder=self.own_checkpoint.parent)
        return replace(
            self.config,
            model=model,
            sizes=dict(sizes),
            data=data_allowed(self.query_one("#lab-data", Input).value.strip() or default.data),
            loss=select("#lab-lossfn"),
            optimizer=select("#lab-optimizer"),
            backend=select("#lab-backend"),
            lr=number("lr"),
            batch_size=_or(number("batch_size"), default.batch_size),
            epochs=number("epochs"),
            patience=number("patience"),
            seed=_or(number("seed"), default.seed),
            gamma=_or(number("gamma"), default.gamma),
            alpha=_or(number("alpha"), default.alpha),
            checkpoint=checkpoint or None,
            resume=resume,
        )

    def _start(self, resume: str | None = None) -> None:
        from nnsim.tui.live.lab import compared

        if self._refuse(refusal("start", self.state)):
            return
        try:
            config = self._settings(resume).resolved()
            other = compared(config, self.query_one("#lab-compare", Select).value, self.compare_given)
        except SettingError as error:
            self._refuse_setting(error)
            return
        except NnsimError as error:
            self._status(str(error), error=True)
            return
        self._accepted(*BOXES.values())
        self.config = config
        self.figures = LabFigures()
        self.compared = []
        self.hints = []
        self._logged = 0
        self._doctor("")
        self.query_one("#lab-log", RichLog).clear()
        self._notice("")
        self.control.start([config] + ([other] if other is not None else []), _prepare_backend)

    def on_lab_screen_run_changed(self, message: RunChanged) -> None:
        from nnsim.engine.runfiles import OtherNetworkError

        self._label(LABELS[message.state])
        if isinstance(message.failure, OtherNetworkError):  # a free name is offered: space trains into it
            self._offer_free_name(message.failure)
        elif message.text:
            self._status(message.text, error=message.error)
        elif message.state in (RUNNING, FINISHED) and self.figures.step:
            self._status(self._progress_line(self.figures, message.state))

    def on_lab_screen_run_crashed(self, message: RunCrashed) -> None:
        raise message.error

    # --- drawing ------------------------------------------------------------------------------
    def on_lab_screen_progress(self, message: Progress) -> None:
        started = time.perf_counter()
        self.call_after_refresh(self._redrawn, started)
        previous = self.figures
        self.figures = f = message.figures[0]
        if self.session is not None:
            self.class_names = self.session.runs[0].classes
        self.compared = message.figures if len(message.figures) > 1 else []
        self._draw_tab(new_validation=len(f.val_accuracies) != len(previous.val_accuracies) or f.state == "finished")
        self._diagnose(f)
        log = self.query_one("#lab-log", RichLog)
        for line in f.log[self._logged :]:
            log.write(line)
        self._logged = len(f.log)
        state = self.state
        self._label(LABELS[state])
        if self._said_for:
            self._said_for -= 1
        else:
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
        self._status(f"{error} 'save to' now holds {free}: space trains into it", error=True)

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
        if state == STOPPING:
            return f"stopping at step {f.step}: saving the run…"
        if state in (FINISHED, FAILED) or f.reason:
            if f.val_accuracies:
                best = (
                    f"validation accuracy {f.val_accuracies[-1]:.2%} (best {f.best_accuracy:.2%}, epoch {f.best_epoch})"
                )
            else:
                best = "no validation yet" if f.validation else "no validation split"
            why = REASONS.get(f.reason, f.reason or "finished")
            return f"{why} after {f.step} steps: {best}; space trains again, r resumes"
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
        plots = (self.query_one("#lab-loss", PlotextPlot), self.query_one("#lab-accuracy", PlotextPlot))
        draw_curves(*plots, self.figures, self.log_scale)

    def _draw_compare(self) -> None:
        plots = (self.query_one("#lab-compare-loss", PlotextPlot), self.query_one("#lab-compare-accuracy", PlotextPlot))
        draw_compare(*plots, self.compared, self._configs())
        self.query_one("#lab-summary", Static).update(summary_table(self.compared, self._configs(), self.class_names))

    def _configs(self) -> list:
        return [run.trainer.config for run in self.session.runs] if self.session is not None else []


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
    yield Label(label, id=f"{widget.id}-label", classes="lab-label")
    yield widget


def _or(value, default):
    return default if value is None else value


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
