"""The lessons the app offers: the shipped ones in order, or one file the learner opened."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nnsim.lessons.format import Lesson, lesson_files, parse_lesson
from nnsim.resources import shipped_path


@dataclass
class Entry:
    key: str  # where progress is kept: the file name for shipped lessons, the full path otherwise
    lesson: Lesson

    @property
    def title(self) -> str:
        return self.lesson.title or self.lesson.path.stem


def shipped_lessons() -> list[Entry]:
    return [Entry(path.name, parse_lesson(path)) for path in lesson_files(shipped_path("lessons"))]


def own_lesson(path: Path) -> Entry:
    path = Path(path).expanduser().resolve()
    return Entry(str(path), parse_lesson(path))
