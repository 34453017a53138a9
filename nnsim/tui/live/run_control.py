"""The life of a lab run, as one state machine owned by one object:

    idle → preparing → running ⇄ paused → stopping → finished | failed

Every control a learner uses is a request the current state accepts or refuses, with a few words
why. A run has exactly one worker thread; a new run can start only once the last one's thread has
ended, so two runs never train at once into the same files. Closing (q, escape) stops the run and
waits for its worker to save and end before the screen goes.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from nnsim.engine.config import TrainConfig
from nnsim.errors import NnsimError
from nnsim.tui.live.lab import LabRun
from nnsim.tui.live.lab_session import LabSession

IDLE, PREPARING, RUNNING, PAUSED, STOPPING, FINISHED, FAILED = (
    "idle",
    "preparing",
    "running",
    "paused",
    "stopping",
    "finished",
    "failed",
)
ENDED = (IDLE, FINISHED, FAILED)  # no worker: a new run may start
SWITCH_INTERVAL = 0.0005  # seconds: how often Python lets another thread take the GIL (default 0.005)
CLOSE_SECONDS = 15.0  # how long closing waits for the run to stop and save
# While training, the screen is redrawn at most every PUBLISH_EVERY seconds, and less often when a
# redraw costs more than REDRAW_SHARE of the time between them: the drawing shares two cores with
# the training it shows, and must not slow it much.
PUBLISH_EVERY = 1.0
REDRAW_SHARE = 0.04

# Which states accept each request; the others refuse it with the words below.
ACCEPTS = {
    "start": ENDED,
    "pause": (RUNNING,),
    "resume": (PAUSED,),
    "step": (PAUSED,),
    "stop": (PREPARING, RUNNING, PAUSED),
    "save": (PAUSED, FINISHED),
    "change": (RUNNING, PAUSED),
}
REFUSALS = {
    ("start", PREPARING): "the run is still being prepared (data, network, kernels): x cancels it",
    ("start", RUNNING): "a run is training: stop this run first (x)",
    ("start", PAUSED): "a run is paused: stop this run first (x), or space resumes it",
    ("start", STOPPING): "the run is stopping and saving: wait a moment",
    ("pause", PREPARING): "the run is still being prepared: it starts in a moment (x cancels it)",
    ("pause", STOPPING): "the run is stopping and saving: wait a moment",
    ("step", RUNNING): "one step runs while paused: space pauses first",
    ("stop", STOPPING): "the run is already stopping",
    ("save", RUNNING): "pause the run (space) or let it finish, then save",
    ("save", PREPARING): "nothing to save yet: the run is being prepared",
    ("save", STOPPING): "the run is stopping and saves itself",
}
IDLE_REFUSALS = {
    "pause": "no run is training: space starts one",
    "resume": "no run is paused: space starts one",
    "step": "one step runs while paused: space starts a run, space again pauses it",
    "stop": "no run to stop",
    "save": "no run to save yet: train one (space) first",
    "change": "no run is training: the new value is used when one starts",
}


def refusal(request: str, state: str) -> str | None:
    """None if `state` accepts `request`, else why not, in a few words."""
    if state in ACCEPTS[request]:
        return None
    if (request, state) in REFUSALS:
        return REFUSALS[request, state]
    if state in ENDED or request in ("step", "resume"):
        return IDLE_REFUSALS.get(request, f"not now: the run is {state}")
    return f"not now: the run is {state}"


class Pace:
    """How often the worker hands the screen new figures, from what a redraw costs the UI thread."""

    def __init__(self) -> None:
        self.redraw_seconds = 0.0  # a moving average of what one redraw costs

    def interval(self) -> float:
        return max(PUBLISH_EVERY, self.redraw_seconds / REDRAW_SHARE)

    def redrawn(self, started: float) -> None:
        """A redraw that began at `started` (time.perf_counter()) has been painted."""
        cost = time.perf_counter() - started
        self.redraw_seconds = cost if not self.redraw_seconds else 0.8 * self.redraw_seconds + 0.2 * cost


class RunControl:
    """Owns the lab's run: its state, its one worker thread and its LabSession.

    publish(figures) is called from the worker with every run's figures; changed(state, text,
    error, failure) from any thread when the state changes or there is something to say (failure:
    the exception a run failed with, for the screen to act on); crashed(error)
    with an exception that is a bug, not the learner's doing, for the app to report."""

    def __init__(self, publish: Callable, changed: Callable, crashed: Callable, every: Callable[[], float]):
        self.state = IDLE
        self.session: LabSession | None = None
        self._publish, self._changed, self._crashed, self._every = publish, changed, crashed, every
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._cancelled = False

    def _move(self, state: str, text: str = "") -> None:
        self.state = state
        self._changed(state, text, False, None)

    # ---------------------------------------------------------------- requests (UI thread)
    def start(self, configs: list[TrainConfig], prepare: Callable) -> str | None:
        """A new run (two for a comparison) in a new worker; prepare(backend, report) runs first."""
        with self._lock:
            why = refusal("start", self.state)
            if why:
                return why
            if self._thread is not None:
                self._thread.join()  # it said it ended as its last act: this returns at once
            self.session, self._cancelled = None, False
            self._move(PREPARING, "loading the data and building the network…")
            self._thread = threading.Thread(
                target=self._work, args=(configs, prepare), name="nnsim-lab-run", daemon=True
            )
            self._thread.start()
        return None

    def pause(self) -> str | None:
        with self._lock:
            why = refusal("pause", self.state)
            if not why:
                self.session.pause()
                self._move(PAUSED)
            return why

    def resume(self) -> str | None:
        with self._lock:
            why = refusal("resume", self.state)
            if not why:
                self.session.resume()
                self._move(RUNNING)
            return why

    def step_once(self) -> str | None:
        with self._lock:
            why = refusal("step", self.state)
            if not why:
                self.session.step_once()
            return why

    def stop(self) -> str | None:
        with self._lock:
            why = refusal("stop", self.state)
            if why:
                return why
            self._cancelled = True
            if self.session is not None:
                self.session.stop()
            self._move(STOPPING, "stopping: saving the run…")
            return None

    def change(self, **values) -> str | None:
        """New settings for run A from its next step on (learning rate, patience, focal α and γ),
        checked by the trainer against the settings' own check(); raises SettingError if one is refused."""
        with self._lock:
            why = refusal("change", self.state)
            if not why:
                self.session.runs[0].change(**values)
            return why

    def in_force(self, config: TrainConfig, name: str):
        """A setting's value as the run under way uses it (run A's), else as `config` says (the next start)."""
        with self._lock:
            if self.session is not None and self.state in (RUNNING, PAUSED):
                return getattr(self.session.runs[0].trainer.config, name)
        return getattr(config, name)

    def configs(self) -> list[TrainConfig]:
        """The settings of each run of the session (copies: the learning rate as it is now), or []."""
        session = self.session
        return [replace(run.trainer.config) for run in session.runs] if session is not None else []

    def lr(self, config: TrainConfig) -> float:
        """The learning rate run A uses now, or that `config` would start with."""
        session = self.session
        return session.runs[0].trainer.config.lr if session is not None else config.resolved().lr

    def classes(self) -> list[str]:
        """The class names of the session's data (run A's), or [] before a run exists."""
        session = self.session
        return list(session.runs[0].classes) if session is not None else []

    def save_as(self, save: Callable[[], None]) -> str | None:
        """save() (run A's files, where the learner chose) between two steps; raises what it raises."""
        with self._lock:
            why = refusal("save", self.state) or (None if self.session else IDLE_REFUSALS["save"])
            if not why:
                with self.session.busy:
                    save()
            return why

    def reader(self):
        """A copy of run A's network as it is now (None while it trains or before it exists)."""
        with self._lock:
            if self.state not in (PAUSED, FINISHED) or self.session is None:
                return None
            return self.session.reader()

    @property
    def ended(self) -> bool:
        """No worker: never started, or its thread has ended (after its last word)."""
        return self._thread is None or not self._thread.is_alive()

    async def stopped(self, seconds: float = CLOSE_SECONDS) -> None:
        """Wait (in the UI's event loop, at most `seconds`) for the worker, asked to stop, to save and end."""
        deadline = time.monotonic() + seconds
        while not self.ended and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    def close(self, seconds: float = CLOSE_SECONDS) -> bool:
        """Stop the run and wait (at most `seconds`) for its worker to save and end. True if it did."""
        self.stop()
        thread = self._thread
        if thread is not None:
            thread.join(seconds)
        return thread is None or not thread.is_alive()

    # ---------------------------------------------------------------- the worker
    def _work(self, configs: list[TrainConfig], prepare: Callable) -> None:
        # The training thread needs the GIL for a moment between kernels; while the screen is being
        # drawn it would wait up to the default 5 ms each time. Switching more often keeps it busy
        # (for the run only: the rest of the app keeps Python's default).
        usual = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)
        try:
            state, text, failure = self._train(configs, prepare)
        except Exception as error:  # a bug: the app reports it (and ends with a non-zero status)
            state, text, failure = FAILED, f"the run failed: {type(error).__name__}: {error}", None
            self._crashed(error)
        finally:
            sys.setswitchinterval(usual)
        with self._lock:
            self.state = state
            self._changed(state, text, state == FAILED, failure)

    def _train(self, configs: list[TrainConfig], prepare: Callable) -> tuple[str, str, Exception | None]:
        try:
            prepare(configs[0].backend, lambda text: self._changed(PREPARING, text, False, None))
            runs = [LabRun(config, label) for config, label in zip(configs, "AB", strict=False)]
        except (NnsimError, OSError, MemoryError) as error:
            return FAILED, str(error), error
        with self._lock:
            if self._cancelled:
                return IDLE, "stopped before training began", None
            self.session = LabSession(runs)
            self._move(RUNNING)
        try:
            self.session.run(self._publish, every=self._every)
        except (NnsimError, OSError, MemoryError) as error:
            return FAILED, f"the run stopped: {error}", error
        return FINISHED, "", None
