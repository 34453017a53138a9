"""Lesson files: Markdown with TOML front matter, steps, and live widget blocks.

    +++
    title = "Picture to numbers"
    section = 2
    summary = "Every image is a tensor of pixel values."
    +++
    Prose of the first step …

    ```nnsim
    widget = "pixel_grid"
    image = "digits/7.png"
    ```
    ---
    The second step …

`parse_lesson` turns a file into a `Lesson`, collecting every problem as `file:line: problem`
instead of stopping at the first, so that `nnsim lessons check` can list them all and the app can
show a broken step as an error panel.
"""

from __future__ import annotations

import tomllib
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path

from nnsim.engine.experiment import key_line
from nnsim.lessons.params import WIDGET_PARAMS, QuizParams

FRONT_MATTER = "+++"
STEP_BREAK = "---"
FENCE = "```"
REQUIRED = {"title": str, "section": int, "summary": str}


@dataclass
class WidgetBlock:
    widget: str
    params: object  # an instance of the widget's params dataclass (nnsim.lessons.params)
    line: int  # the line of the opening ```nnsim
    predict: QuizParams | None = None  # ask the learner to guess before the widget shows its result


PREDICT_KEYS = {"predict": str, "predict_choices": list[str], "predict_answer": int}


@dataclass
class Step:
    markdown: str  # the prose, widget blocks removed
    blocks: list[WidgetBlock]
    line: int  # the step's first line
    errors: list[str] = field(default_factory=list)  # problems inside this step


@dataclass
class Lesson:
    path: Path
    title: str = ""
    section: int = 0
    summary: str = ""
    steps: list[Step] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # every problem, as "file:line: problem"

    @property
    def ok(self) -> bool:
        return not self.errors


def parse_lesson(path: Path) -> Lesson:
    path = Path(path)
    lesson = Lesson(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        lesson.errors.append(f"{path}:1: cannot read the file ({error})")
        return lesson
    lines = text.splitlines()
    body_start = _front_matter(lesson, lines)
    if body_start is None:
        return lesson
    for start, chunk in _split_steps(lines, body_start):
        step = _parse_step(lesson.path, chunk, start)
        lesson.steps.append(step)
        lesson.errors.extend(step.errors)
    if not any(line.strip() for line in lines[body_start:]):
        lesson.errors.append(f"{path}:{body_start + 1}: the lesson has no steps")
    return lesson


def _front_matter(lesson: Lesson, lines: list[str]) -> int | None:
    """Reads the +++ block into the lesson; returns the index of the first body line, or None."""
    path = lesson.path
    if not lines or lines[0].strip() != FRONT_MATTER:
        lesson.errors.append(f"{path}:1: missing front matter: the file must start with a line '+++'")
        return None
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == FRONT_MATTER)
    except StopIteration:
        lesson.errors.append(f"{path}:1: the front matter is not closed by a second '+++' line")
        return None
    meta = _toml(path, lines[1:end], first_line=2, errors=lesson.errors)
    if meta is None:
        return end + 1
    for key, kind in REQUIRED.items():
        if key not in meta:
            lesson.errors.append(f"{path}:1: front matter needs '{key}'")
        elif not isinstance(meta[key], kind) or isinstance(meta[key], bool):
            lesson.errors.append(f"{path}:{_key_line(lines, key, 1, end)}: '{key}' must be {_kind(kind)}")
        else:
            setattr(lesson, key, meta[key])
    for key in sorted(set(meta) - set(REQUIRED)):
        lesson.errors.append(f"{path}:{_key_line(lines, key, 1, end)}: unknown front matter key '{key}'")
    return end + 1


def _split_steps(lines: list[str], start: int):
    """(first line number, lines) of each step: breaks are '---' lines outside code fences."""
    chunk, chunk_start, fenced = [], start + 1, False
    for index in range(start, len(lines)):
        line = lines[index]
        if line.strip().startswith(FENCE):
            fenced = not fenced
        if line.strip() == STEP_BREAK and not fenced:
            yield chunk_start, chunk
            chunk, chunk_start = [], index + 2
            continue
        chunk.append(line)
    yield chunk_start, chunk


def _parse_step(path: Path, lines: list[str], first: int) -> Step:
    step = Step("", [], first)
    prose, index = [], 0
    while index < len(lines):
        line = lines[index]
        if line.strip().startswith(FENCE) and line.strip()[3:].strip() == "nnsim":
            try:
                end = next(j for j in range(index + 1, len(lines)) if lines[j].strip() == FENCE)
            except StopIteration:
                step.errors.append(f"{path}:{first + index}: the ```nnsim block is not closed")
                break
            block = _widget_block(path, lines[index + 1 : end], first + index, step.errors)
            if block is not None:
                step.blocks.append(block)
            prose.append(f"<!-- widget {len(step.blocks) - 1} -->" if block else "")
            index = end + 1
            continue
        prose.append(line)
        index += 1
    step.markdown = "\n".join(prose).strip()
    return step


def _widget_block(path: Path, lines: list[str], line: int, errors: list[str]) -> WidgetBlock | None:
    values = _toml(path, lines, first_line=line + 1, errors=errors)
    if values is None:
        return None
    name = values.pop("widget", None)
    if name is None:
        errors.append(f'{path}:{line}: the block does not say which widget (widget = "…")')
        return None
    if name not in WIDGET_PARAMS:
        known = ", ".join(sorted(WIDGET_PARAMS))
        errors.append(f"{path}:{line + 1}: unknown widget '{name}' (known: {known})")
        return None
    predict = _predict(path, lines, line, values, errors)
    spec = WIDGET_PARAMS[name]
    declared = {f.name: f for f in fields(spec)}
    hints = typing.get_type_hints(spec)
    accepted = {}
    for key, value in values.items():
        where = f"{path}:{_key_line(lines, key, 0, len(lines)) + line}"
        if key not in declared:
            errors.append(f"{where}: widget '{name}' has no parameter '{key}' (it has: {', '.join(declared)})")
        elif not _fits(value, hints[key]):
            errors.append(f"{where}: '{key}' must be {_describe(hints[key])}, got {value!r}")
        else:
            accepted[key] = float(value) if hints[key] is float else value
    before = len(errors)
    params = spec(**accepted)
    for problem in params.problems():  # a message, or (the keys it is about, the message)
        keys, problem = problem if isinstance(problem, tuple) else ((), problem)
        errors.append(f"{path}:{key_line(lines, keys, first=line + 1) if keys else line}: {problem}")
    return WidgetBlock(name, params, line, predict) if len(errors) == before else None


def _predict(path: Path, lines: list[str], line: int, values: dict, errors: list[str]) -> QuizParams | None:
    """predict = "…", predict_choices = […], predict_answer = N: a guess asked before the widget shows."""
    given = {key: values.pop(key) for key in list(values) if key in PREDICT_KEYS}
    if not given:
        return None
    where = f"{path}:{line}"
    for key, value in given.items():
        if not _fits(value, PREDICT_KEYS[key]):
            errors.append(f"{where}: '{key}' must be {_describe(PREDICT_KEYS[key])}, got {value!r}")
            return None
    quiz = QuizParams(
        question=given.get("predict", ""),
        choices=given.get("predict_choices", []),
        answer=given.get("predict_answer", 0),
        explanation="Now see what the engine computes.",
    )
    errors.extend(f"{where}: predict first: {problem}" for problem in quiz.problems())
    return quiz


def _toml(path: Path, lines: list[str], first_line: int, errors: list[str]) -> dict | None:
    try:
        return tomllib.loads("\n".join(lines))
    except tomllib.TOMLDecodeError as error:
        # tomllib says "(at line N, column M)"; N counts from the block's first line
        message = str(error)
        line = first_line
        if "(at line " in message:
            line += int(message.split("(at line ", 1)[1].split(",", 1)[0]) - 1
            message = message.split(" (at line ", 1)[0]
        errors.append(f"{path}:{line}: bad TOML: {message}")
        return None


def _key_line(lines: list[str], key: str, start: int, end: int) -> int:
    """The 1-based number of the line (within lines[start:end]) that sets `key`, else start + 1."""
    for index in range(start, end):
        if lines[index].split("=", 1)[0].strip() == key:
            return index + 1
    return start + 1


def _fits(value, hint) -> bool:
    origin = typing.get_origin(hint)
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_fits(v, item) for v in value)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _describe(hint) -> str:
    if typing.get_origin(hint) is list:
        return f"a list of {_describe(typing.get_args(hint)[0])}s"
    return _kind(hint)


def _kind(kind) -> str:
    words = {str: "text", int: "a whole number", float: "a number", bool: "true or false", dict: "a table"}
    return words.get(kind, kind.__name__)


def lesson_files(folder: Path) -> list[Path]:
    """The lesson files of a folder, in order (NN-slug.md)."""
    return sorted(p for p in Path(folder).glob("*.md") if p.name[:2].isdigit())
