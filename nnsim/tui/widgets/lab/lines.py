"""The lab's lines of words: the status (what the run is doing, or why a request was refused), the
notice (what holds all run long: a save failing, nothing saved, data skipped), the training
doctor's line, and the log. Each is handed its words or the figures by the screen."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import RichLog

from nnsim.engine.events import REASONS
from nnsim.tui.live.doctor import Hint
from nnsim.tui.live.lab_figures import LabFigures
from nnsim.tui.live.run_control import FAILED, FINISHED, STOPPING


class Line(Widget):
    """A line or two of text that changes often: redrawn in place, never a new layout."""

    text: reactive[str | Text] = reactive("", layout=False)

    def render(self) -> str | Text:
        return self.text

    @property
    def content(self) -> str | Text:
        return self.text


class Status(Line):
    """What the run is doing, or why the last request was refused (in red): a refusal stays over
    the progress line for a few of its redraws."""

    held = 0  # progress lines not shown yet, so that a refusal is read

    def say(self, text: str, error: bool = False, hold: int = 0) -> None:
        self.text = Text(text, style="red" if error else "")
        self.held = hold or self.held

    def progress(self, text: str) -> None:
        """The progress line, unless a refusal holds the line."""
        if self.held:
            self.held -= 1
        else:
            self.say(text)


class Notice(Line):
    """What the learner must know all run long: shown until it no longer holds, never replaced by
    the progress line."""

    def show(self, text: str) -> None:
        if str(self.text) != text:
            self.text = Text(text, style="red" if text.startswith("not saving") else "yellow")
            self.set_class(bool(text), "-shown")


class DoctorLine(Line):
    """The training doctor's first hint: shown only while it has something to say (it costs two rows)."""

    hints: list[Hint] = []  # every hint for the figures last shown, most urgent first

    def fix(self, lr: float) -> tuple[str, float | int, str] | None:
        """The first hint's fix as (setting, new value, its words), or None: lr a factor of `lr`."""
        if not self.hints:
            return None
        hint = self.hints[0]
        name, value = hint.change
        return name, lr * value if name == "lr" else int(value), hint.fix

    def show(self, hints: list[Hint]) -> None:
        self.hints = hints
        line: str | Text = ""
        if hints:
            first = hints[0]
            line = Text("⚕ ", style="yellow bold")
            line.append(f"{first.problem}: ", style="yellow bold")
            line.append(f"{first.why}. ")
            line.append(f"f: {first.fix} · o: lesson {first.lesson}", style="bold")
        if str(self.text) != str(line):
            self.text = line
            self.set_class(bool(str(line)), "-hint")


class RunLog(RichLog):
    """Every milestone of the run, in words: each line of the figures' log written once."""

    def __init__(self, **kwargs) -> None:
        super().__init__(wrap=True, markup=False, **kwargs)
        self.logged = 0

    def show(self, figures: LabFigures) -> None:
        for line in figures.log[self.logged :]:
            self.write(line)
        self.logged = len(figures.log)

    def restart(self) -> None:
        self.clear()
        self.logged = 0


def progress_line(f: LabFigures, state: str) -> str:
    """The status while a run trains (where it is, how fast), and once it has ended (why, how well)."""
    if state == STOPPING:
        return f"stopping at step {f.step}: saving the run…"
    if state in (FINISHED, FAILED) or f.reason:
        if f.val_accuracies:
            best = f"validation accuracy {f.val_accuracies[-1]:.2%} (best {f.best_accuracy:.2%}, epoch {f.best_epoch})"
        else:
            best = "no validation yet" if f.validation else "no validation split"
        why = REASONS.get(f.reason, f.reason or "finished")
        return f"{why} after {f.step} steps: {best}; space trains again, r resumes"
    eta = f", about {f.eta_s:.0f} s left" if f.eta_s is not None else ""
    where = f"epoch {f.epoch}/{f.epochs}, batch {f.batch}/{f.batches}"
    line = f"{state}: {where}, step {f.step} · {f.samples_per_s:,.0f} images/s{eta}"
    return line + (f"\n{f.last_update}" if state == "paused" and f.last_update else "")
