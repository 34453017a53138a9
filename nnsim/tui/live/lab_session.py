"""The lab's runs on their worker thread: a `LabSession` holds one run, or two trained side by side
for a comparison (the same data, the same seed, so the same first weights where the networks
match, one setting changed), steps them in turn and hands copies of their figures to the screen.
`run_control.py` owns the thread; this is what the thread does."""

from __future__ import annotations

import threading
import time

from nnsim.engine.experiment import changed_settings
from nnsim.tui.live.lab import LabRun
from nnsim.tui.live.lab_figures import LabFigures

MILESTONES = ("early_stop", "diverged", "done")  # drawn at once; the others wait for the next redraw


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
            run.pausing()
            if run.figures.state == "running":
                run.figures.state = "paused"

    def resume(self) -> None:
        with self._turn:
            self._paused, self._owed = False, set()
            self._turn.notify_all()
        for run in self.runs:
            run.stepping = False
            run.resuming()
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


def prepare_backend(name: str, report) -> None:
    """Compile (first run) or load a fast backend's kernels, reporting progress, before training."""
    from nnsim.engine.backends import get_backend
    from nnsim.engine.backends.warm import prepare

    backend = get_backend(name)
    if hasattr(backend, "warm_up"):  # (once a machine: another nnsim compiling them is waited for)
        prepare(
            backend, lambda what, done, total: report(f"preparing the {backend.name} kernels: {what} ({done}/{total})")
        )


def machine_backends() -> list[str]:
    """The backends this machine can run (cuda only with a usable GPU), for the lab's menu."""
    from nnsim.engine.backends import available_backends

    return list(available_backends())
