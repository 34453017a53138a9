"""How far the learner got in each lesson, kept in the user's data folder between runs.

The file is small JSON, written atomically, so a crash mid-write never loses what was saved.
A file that cannot be read (damaged, or from a newer nnsim) starts progress afresh rather than
stopping the app.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from nnsim.atomic import write_atomically
from nnsim.errors import NnsimError


def default_progress_path() -> Path:
    """$NNSIM_HOME/progress.json, else progress.json in the user's data folder (platformdirs)."""
    if os.environ.get("NNSIM_HOME"):
        return Path(os.environ["NNSIM_HOME"]).expanduser() / "progress.json"
    from platformdirs import user_data_dir

    return Path(user_data_dir("nnsim")) / "progress.json"


@dataclass
class LessonProgress:
    step: int = 0  # the step the learner was last on (0-based)
    seen: int = 0  # how many steps they have reached, counting from the first
    steps: int = 0  # how many steps the lesson has

    @property
    def done(self) -> bool:
        return self.steps > 0 and self.seen >= self.steps

    def mark(self) -> str:
        if self.done:
            return "✓"
        if self.seen:
            return f"{self.seen}/{self.steps}"
        return "·"


class ProgressStore:
    """Progress by lesson key, and the app's settings, saved on every change.

    ``in_memory=True`` keeps them for this run only: a tab of `nnsim serve` must neither see nor
    overwrite another learner's progress on the same server.
    """

    def __init__(self, path: Path | None = None, in_memory: bool = False):
        self.path = None if in_memory else Path(path) if path is not None else default_progress_path()
        self.lessons: dict[str, LessonProgress] = {}
        self.settings: dict[str, str] = {}
        if self.path is not None:
            self._load()

    def get(self, key: str) -> LessonProgress:
        return self.lessons.get(key, LessonProgress())

    def visit(self, key: str, step: int, steps: int) -> LessonProgress:
        """The learner is on `step` of a lesson of `steps` steps; remembers it and saves."""
        old = self.get(key)
        self.lessons[key] = LessonProgress(step=step, seen=max(old.seen, step + 1), steps=steps)
        self.save()
        return self.lessons[key]

    def set_setting(self, name: str, value: str) -> None:
        self.settings[name] = value
        self.save()

    def save(self) -> None:
        if self.path is None:
            return
        data = {
            "version": 1,
            "lessons": {key: vars(p) for key, p in self.lessons.items()},
            "settings": self.settings,
        }
        payload = json.dumps(data, indent=1, sort_keys=True).encode()
        try:
            write_atomically(self.path, lambda handle: handle.write(payload))
        except (OSError, NnsimError):
            pass  # a read-only home must not stop a lesson; progress is then kept for this run only

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self.lessons = {
                str(key): LessonProgress(int(p["step"]), int(p["seen"]), int(p["steps"]))
                for key, p in data.get("lessons", {}).items()
            }
            self.settings = {str(k): str(v) for k, v in data.get("settings", {}).items()}
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            self.lessons, self.settings = {}, {}
