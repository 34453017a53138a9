"""An experiment is a file: a run's settings in TOML, and the second run of a comparison.

    # an nnsim experiment: `nnsim train --config exp.toml`, `nnsim lab --config exp.toml`
    model = "cnn"
    data = "mnist-mini"
    lr = 0.001
    seed = 0

    [sizes]             # optional: the network's sizes (e.g. the lab's "small")
    channels = [8, 16]

    [compare]           # optional: the lab's second run, as the settings it changes
    model = "vit"

The keys are the settings of `nnsim train --help`, with underscores (`batch_size`). A key nnsim
does not know is an error, never ignored; so is a value of the wrong kind or out of range (the
settings' own check, TrainConfig.check, says which). Every problem is one line, `file:line:
problem`, as a lesson's are. The lab writes NAME.toml beside each run it saves, so that the run
can be repeated exactly: same settings, same seed, so the same first weights and data order.
"""

from __future__ import annotations

import difflib
import json
import tomllib
import types
import typing
from dataclasses import dataclass, field, replace
from pathlib import Path

from nnsim.engine.runfiles import EXPERIMENT_HEADER as HEADER  # how every file nnsim writes begins
from nnsim.errors import NnsimError, SettingError

COMPARE = "compare"
SIZES = "sizes"
NOT_COMPARED = ("checkpoint", "resume")  # the second run's files are named after the first's


@dataclass
class Experiment:
    """A run's settings as a file gives them, and the settings a comparison's second run changes."""

    settings: dict = field(default_factory=dict)  # TrainConfig field → value (absent: its default)
    compare: dict | None = None  # None: no comparison
    path: Path | None = None

    def config(self, **over):
        """The first run's TrainConfig: the file's settings, then `over` (flags given, say) on top."""
        from nnsim.engine.config import TrainConfig

        return TrainConfig(**{**self.settings, **over})

    def second(self, config):
        """The comparison's second run for the first run `config`, or None."""
        return None if self.compare is None else second_config(config, self.compare)


def second_config(config, changes: dict):
    """`config` with `changes`: what the second run of a comparison trains. A network changed brings
    its own sizes, an optimizer its own learning rate, unless `changes` gives them too; the files
    are the first run's, named NAME-B."""
    changed = replace(config, **changes, checkpoint=second_checkpoint(config.checkpoint), resume=None)
    if "model" in changes and SIZES not in changes:
        changed = replace(changed, sizes={})
    if "optimizer" in changes and "lr" not in changes:
        changed = replace(changed, lr=None)
    return changed


def changes_words(changes: dict) -> str:
    """What a comparison changes, in a few words: "model vit, lr 0.01"."""
    parts = []
    for name, value in changes.items():
        if name == SIZES:
            value = ", ".join(f"{k} {toml_value(v)}" for k, v in value.items())
        parts.append(f"{name} {value if isinstance(value, str) else toml_value(value)}")
    return ", ".join(parts)


def changed_settings(first, second) -> dict:
    """The settings (of those a file keeps, and the sizes) in which `second` differs from `first`."""
    ours, theirs = config_values(first), config_values(second)
    changed = {name: value for name, value in theirs.items() if ours.get(name) != value}
    if first.sizes != second.sizes:
        changed[SIZES] = dict(second.sizes)
    return changed


def second_checkpoint(checkpoint: str | None) -> str | None:
    """Where the second run of a comparison keeps its files: beside the first's, NAME-B.npz."""
    if not checkpoint:
        return None
    path = Path(checkpoint)
    return str(path.with_name(f"{path.stem}-B{path.suffix or '.npz'}"))


# ------------------------------------------------------------------------------ reading
def read_experiment(path) -> Experiment:
    """The experiment in a file; any problem is one NnsimError, `file:line: problem`."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NnsimError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise NnsimError(f"{path}: is a folder, not an experiment file (.toml)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise NnsimError(f"{path}: cannot read the file ({error})") from None
    return parse_experiment(text, path)


def parse_experiment(text: str, path) -> Experiment:
    lines = text.splitlines()
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        line, message = toml_error(error, lines)
        raise NnsimError(f"{path}:{line}: bad TOML: {message}") from None
    problems = experiment_problems(values)
    if problems:
        keys, message = problems[0]
        raise NnsimError(f"{path}:{key_line(lines, keys)}: {message}")
    compare = values.pop(COMPARE, None)
    return Experiment(settings=values, compare=compare, path=Path(path))


def toml_error(error: tomllib.TOMLDecodeError, lines: list[str]) -> tuple[int, str]:
    """tomllib's message says "(at line N, column M)": the line, and the message without it."""
    message = str(error)
    if message.endswith(" (at end of document)"):
        return max(1, len(lines)), message.removesuffix(" (at end of document)")
    if "(at line " not in message:
        return 1, message
    line = int(message.split("(at line ", 1)[1].split(",", 1)[0])
    return line, message.split(" (at line ", 1)[0]


def experiment_problems(values: dict) -> list[tuple[tuple[str, ...], str]]:
    """Every problem of an experiment's TOML values, as (the keys that lead to it, the message)."""
    found = _table_problems(values, (), allowed_tables=(SIZES, COMPARE))
    compare = values.get(COMPARE)
    if compare is not None and not isinstance(compare, dict):
        return found + [((COMPARE,), "'compare' must be a table ([compare]) of the settings the second run changes")]
    if compare is not None:
        found += _table_problems(compare, (COMPARE,), allowed_tables=(SIZES,))
        if not compare:
            found.append(((COMPARE,), "[compare] changes no setting: name what the second run changes"))
    if not found:
        found += _whole_problems(values)
    return found


def _table_problems(table: dict, where: tuple[str, ...], allowed_tables: tuple[str, ...]) -> list:
    from nnsim.engine.config import TrainConfig

    found, known, hints = [], file_settings(), typing.get_type_hints(TrainConfig)
    for key, value in table.items():
        keys = (*where, key)
        if key in allowed_tables:
            if key == SIZES:
                found += _sizes_problems(value, keys)
            continue
        if key not in known:
            found.append((keys, _unknown(key, known, where)))
        elif where and key in NOT_COMPARED:
            found.append((keys, f"the second run cannot set '{key}': its files are the first run's, named NAME-B"))
        elif not fits(value, hints[key]):
            found.append((keys, f"'{key}' must be {describe(hints[key])}, got {value!r}"))
        else:
            try:
                TrainConfig(**{key: value}).check()
            except SettingError as error:
                found.append((keys, str(error)))
    return found


def _whole_problems(values: dict) -> list:
    """What only the settings together can say (precision and backend, say): checked as one run,
    and the second run of a comparison as another."""
    from nnsim.engine.config import TrainConfig

    settings = {k: v for k, v in values.items() if k != COMPARE}
    found = []
    try:
        first = TrainConfig(**settings)
        first.check()
        if values.get(COMPARE):
            second_config(first, values[COMPARE]).check()
    except SettingError as error:
        where = (COMPARE, error.name) if error.name in values.get(COMPARE, {}) else (error.name,)
        found.append((where, str(error)))
    return found


def _unknown(key: str, known: tuple[str, ...], where: tuple[str, ...]) -> str:
    tables = "" if where else f", [{SIZES}], [{COMPARE}]"
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown setting '{key}'{hint} (the settings: {', '.join(known)}{tables})"


def _sizes_problems(sizes, keys: tuple[str, ...]) -> list:
    from nnsim.engine.models import DEFAULT_SIZES

    if not isinstance(sizes, dict):
        return [(keys, "'sizes' must be a table ([sizes]) of the network's sizes")]
    known = sorted({name for model in DEFAULT_SIZES.values() for name in model})
    found = []
    for name, value in sizes.items():
        if name not in known:
            found.append(((*keys, name), f"unknown size '{name}' (the sizes: {', '.join(known)})"))
        elif name == "activation":
            if not isinstance(value, str):
                found.append(((*keys, name), f"'{name}' must be text, got {value!r}"))
        elif not (fits(value, int) or fits(value, list[int])) or min(_as_list(value), default=0) < 1:
            found.append(((*keys, name), f"'{name}' must be a whole number >= 1, or a list of them, got {value!r}"))
    return found


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def file_settings() -> tuple[str, ...]:
    """The settings a file may give: those `nnsim train` has a flag for, in its order."""
    from nnsim.engine.config import flag_settings

    return tuple(flag_settings())


def fits(value, hint) -> bool:
    """Whether a TOML value is of a setting's type (a whole number is a number; None is never given)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(fits(value, arm) for arm in typing.get_args(hint) if arm is not type(None))
    if typing.get_origin(hint) is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and bool(value) and all(fits(v, item) for v in value)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def describe(hint) -> str:
    """A setting's type in words: "a number", "a whole number", "a number or a list of numbers"."""
    if typing.get_origin(hint) is list:
        return f"a list of {describe(typing.get_args(hint)[0]).removeprefix('a ')}s"
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    arms = [arm for arm in typing.get_args(hint) if arm is not type(None)] if union else [hint]
    words = {str: "text", int: "a whole number", float: "a number", bool: "true or false"}
    return " or ".join(words.get(arm) or describe(arm) for arm in arms)


def key_line(lines: list[str], keys: tuple[str, ...], first: int = 1) -> int:
    """The number of the line that sets keys (("lr",), ("compare", "model")): in its [table] or in an
    inline `table = {…}`; else the line of the table itself; else `first`."""
    *tables, key = keys
    table = ".".join(tables)
    current, table_line = "", None
    for index, line in enumerate(lines):
        text = line.strip()
        if text.startswith("[") and not text.startswith("[["):
            current = text.strip("[] \t").split("]")[0].strip()
            if current == ".".join(keys):  # the table itself
                return first + index
            if current == table:
                table_line = index
            continue
        name = text.split("=", 1)[0].strip().strip('"')
        if "=" in text and current == table and name == key:
            return first + index
        if "=" in text and tables and current == ".".join(tables[:-1]) and name == tables[-1]:
            table_line = index  # an inline table: the key is somewhere on this line
    return first + (table_line or 0)


# ------------------------------------------------------------------------------ writing
def write_experiment(path, config, compare: dict | None = None, notes: tuple[str, ...] = ()) -> None:
    """The settings of `config` (resolved: every default filled in) as an experiment file, and the
    settings the comparison's second run changes; written atomically. The run's own files
    (checkpoint, resume) are left out: a repeat trains afresh, into a name of its own."""
    from nnsim.atomic import write_atomically

    text = experiment_text(config, compare, notes)
    write_atomically(Path(path), lambda handle: handle.write(text.encode("utf-8")))


def experiment_text(config, compare: dict | None = None, notes: tuple[str, ...] = ()) -> str:
    lines = [f"{HEADER}: `nnsim train --config FILE` or `nnsim lab --config FILE` repeats this run"]
    lines += [f"# {note}" for note in notes]
    lines += _assignments(config_values(config))
    if config.sizes:
        lines += ["", f"[{SIZES}]", *_assignments(config.sizes)]
    if compare:
        flat = {k: v for k, v in compare.items() if k != SIZES}
        lines += ["", f"[{COMPARE}]", *_assignments(flat)]
        if compare.get(SIZES):
            lines += ["", f"[{COMPARE}.{SIZES}]", *_assignments(compare[SIZES])]
    return "\n".join(lines) + "\n"


def config_values(config) -> dict:
    """The settings of `config` a file keeps: every one with a flag, but the run's own files."""
    return {
        name: getattr(config, name)
        for name in file_settings()
        if name not in NOT_COMPARED and getattr(config, name) is not None
    }


def _assignments(values: dict) -> list[str]:
    return [f"{name} = {toml_value(value)}" for name, value in values.items() if value is not None]


def toml_value(value) -> str:
    """A flat value in TOML: text, a whole number, a number, true/false, or a list of them."""
    if hasattr(value, "item") and not isinstance(value, list | tuple):  # a NumPy number
        value = value.item()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON's string escapes are TOML's
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")  # a setting of another kind: a programming error
