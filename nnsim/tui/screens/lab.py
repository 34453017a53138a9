"""The lab: choose a network and data, press space, and watch it learn, live, on the real engine.

The screen composes the lab's widgets (`tui/widgets/lab/`) and hands them the figures; the run,
its worker thread and its state are `RunControl`'s (`tui/live/run_control.py`), which speaks to
the screen only through messages."""

from __future__ import annotations

import time
from dataclasses import replace

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Button, Footer, Header, TabbedContent, TabPane

from nnsim.engine.config import TrainConfig
from nnsim.tui.live.doctor import Hint, diagnose
from nnsim.tui.live.lab_figures import LabFigures
from nnsim.tui.live.lab_files import default_checkpoint, export_message, resume_problem, save_message
from nnsim.tui.live.lab_session import machine_backends, prepare_backend
from nnsim.tui.live.run_control import CLOSE_SECONDS, ENDED, FINISHED, PAUSED, RUNNING, Pace, RunControl, refusal
from nnsim.tui.messages import Progress, RunChanged, RunCrashed
from nnsim.tui.screens.base import NnsimScreen
from nnsim.tui.widgets.lab.controls import Controls
from nnsim.tui.widgets.lab.curves import Comparison, Curves
from nnsim.tui.widgets.lab.inside import InsideView
from nnsim.tui.widgets.lab.lines import DoctorLine, Line, Notice, RunLog, Status, progress_line
from nnsim.tui.widgets.lab.settings import LabSettings, text_of
from nnsim.tui.widgets.lab.tabs import LabTabs
from nnsim.tui.widgets.lab.validation import Validation

SAID_FOR = 3  # a refused key's reason stays over this many progress redraws (about 3 s)


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

    def __init__(self, config: TrainConfig | None = None, start: bool = False, compare: dict | None = None):
        super().__init__()
        self.config = config or TrainConfig()
        self.start_at_once = start
        self.compare_given = compare  # what a comparison's second run changes: a file's [compare]
        self.pace = Pace()  # publishing slows down when redrawing costs the training too much
        self.control = RunControl(
            # (called by the worker, whose session is the control's until its thread has ended)
            publish=lambda figures: self.post_message(Progress(figures, self.control.session)),
            changed=lambda *change: self.post_message(RunChanged(*change)),
            crashed=lambda error: self.post_message(RunCrashed(error)),
            every=self.pace.interval,
        )
        self.figures, self.compared = LabFigures(), []
        self.own_checkpoint = default_checkpoint(self.config)  # served: a folder of this tab's own

    def compose(self) -> ComposeResult:
        yield Header()
        shown = replace(self.config, checkpoint=self.config.checkpoint or str(self.own_checkpoint))
        self.form = LabSettings(shown, self.control, self.own_checkpoint.parent, self.compare_given)
        yield self.form
        yield Controls()
        yield Status(id="lab-status")
        yield Notice(id="lab-notice")
        yield DoctorLine(id="lab-doctor")
        with LabTabs():
            with TabPane("1 Curves", id="curves"), Horizontal(classes="lab-pane"):
                yield Curves()
                yield Validation()
            with TabPane("2 Inside", id="inside"):
                yield InsideView()
            with TabPane("3 Compare", id="compare"):
                yield Comparison()
            with TabPane("4 Log", id="log"):
                yield RunLog(id="lab-log")
        yield Footer()
        yield from self.compose_too_small()

    def on_mount(self) -> None:
        super().on_mount()
        self.title = "Lab: train a network and watch it learn"
        self._status("Choose, then press space (or ▶ Start). d draws a digit for the network to read.")
        self.query_one("#lab-start", Button).focus()
        self.query_one(Curves).show(self.figures, log_scale=False)
        self._find_backends()
        if self.start_at_once:  # `nnsim lab --start`, and `--resume PATH` goes on from that checkpoint
            self._start(resume=self.config.resume)

    @work(thread=True, group="lab-backends")
    def _find_backends(self) -> None:
        self.app.call_from_thread(self.form.set_choices, "backend", ["auto", *machine_backends()])

    def on_unmount(self) -> None:
        """However the app ends, the run stops and saves first (bounded: CLOSE_SECONDS)."""
        self.control.close()

    async def leave(self) -> None:
        """Stop the run, wait for it to save and end (at most CLOSE_SECONDS); then escape or q leaves."""
        if self.control.stop() is None:
            self._status("stopping: saving the run before leaving…")
        await self.control.stopped(CLOSE_SECONDS)

    @property
    def state(self) -> str:
        """idle, preparing, running, paused, stopping, finished or failed: the run's own word."""
        return self.control.state

    @property
    def session(self):
        return self.control.session

    @property
    def hints(self) -> list[Hint]:
        """The training doctor's hints for the figures last drawn, most urgent first."""
        return self.query_one(DoctorLine).hints

    def _refuse(self, why: str | None) -> bool:
        """Show why a request was refused (for a few seconds, over the progress line); True if it was."""
        if why:
            self.query_one(Status).say(why, error=True, hold=SAID_FOR)
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
        self.query_one(LabTabs).toggle_log_scale()

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    async def action_home(self) -> None:
        await self.leave()
        if self.app.screen is self:
            self.app.pop_screen()

    def action_fix(self) -> None:
        """Apply the training doctor's first fix: a new learning rate, or early stopping."""
        doctor = self.query_one(DoctorLine)
        if (fix := doctor.fix(self.control.lr(self.form.config))) is None:
            return self._status("the doctor has nothing to fix")
        name, value, words = fix
        if self.form.apply(name, text_of(value)):
            self._status(f"fixed: {words}")
            doctor.show([])

    def action_open_lesson(self) -> None:
        """The lesson that explains the doctor's first hint (escape comes back here)."""
        entries = [e for e in self.app.entries if self.hints and e.lesson.section == self.hints[0].lesson]
        if entries:
            self.app.open_lesson(entries[0])

    def action_draw(self) -> None:
        from nnsim.tui.live.draw import Reader
        from nnsim.tui.screens.draw import DrawScreen

        reader = self.control.reader()
        self.app.push_screen(DrawScreen(reader if reader is not None and reader.fits() else Reader.shipped()))

    def action_save_as(self) -> None:
        text, refused = save_message(self.control, self.form.checkpoint(), self.own_checkpoint.parent)
        self.query_one(Status).say(text, error=refused, hold=SAID_FOR if refused else 0)

    def action_resume_run(self) -> None:
        """Start from the checkpoint in "save to": its weights, optimizer and place in the data."""
        if self._refuse(refusal("start", self.state)):
            return
        path = self.form.checkpoint()
        if why := resume_problem(path, self.own_checkpoint.parent):
            return self._status(why, error=True)
        self._start(resume=str(path))

    def action_export(self) -> None:
        self._status(*export_message(self.form.checkpoint(), self.own_checkpoint))

    def on_lab_settings_said(self, message: LabSettings.Said) -> None:
        self.query_one(Status).say(message.text, message.error, hold=SAID_FOR if message.held else 0)

    def on_lab_settings_refusals(self, message: LabSettings.Refusals) -> None:
        self.query_one("#lab-refused", Line).text = message.text

    def _start(self, resume: str | None = None) -> None:
        if self._refuse(refusal("start", self.state)) or (configs := self.form.next_start(resume)) is None:
            return
        self.figures, self.compared = LabFigures(), []
        self.query_one(DoctorLine).show([])
        self.query_one(RunLog).restart()
        self.query_one(Notice).show("")
        self.control.start(configs, prepare_backend)

    def on_lab_screen_run_changed(self, message: RunChanged) -> None:
        self.query_one(Controls).show_state(message.state)
        if self.form.offer_free_name(message.failure):  # another network's checkpoint: a free name is offered
            return
        if message.text:
            self._status(message.text, error=message.error)
        elif message.state in (RUNNING, FINISHED) and self.figures.step:
            self._status(progress_line(self.figures, message.state))

    def on_lab_screen_run_crashed(self, message: RunCrashed) -> None:
        raise message.error

    def on_lab_screen_progress(self, message: Progress) -> None:
        if message.session is not self.control.session:  # the last run's, drawn after the next began
            return
        self.call_after_refresh(self.pace.redrawn, time.perf_counter())
        previous = self.figures
        self.figures = f = message.figures[0]
        self.compared = message.figures if len(message.figures) > 1 else []
        self.query_one(DoctorLine).show(diagnose(f, self.control.lr(self.form.config)))
        configs = self.control.configs() if self.compared else []
        new_validation = len(f.val_accuracies) != len(previous.val_accuracies) or f.state == "finished"
        self.query_one(LabTabs).show(f, self.compared, configs, self.control.classes(), self.hints, new_validation)
        self.query_one(RunLog).show(f)
        state = self.state
        self.query_one(Controls).show_state(state)
        self.query_one(Status).progress(progress_line(f, state))
        self.query_one(Notice).show("\n".join([f.save_problem, *f.notices]).strip())

    def _status(self, text: str, error: bool = False) -> None:
        self.query_one(Status).say(text, error)
