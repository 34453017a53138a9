"""A run's settings: each written once, checked once, in words, and seen by the CLI and the lab alike."""

import argparse
import ast
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from nnsim.engine import config as config_module
from nnsim.engine.config import (
    DEFAULT_EPOCHS,
    DEFAULT_LR,
    TrainConfig,
    flag_settings,
    form_settings,
    read_setting,
    setting_field,
    settings,
)
from nnsim.errors import SettingError

BAD = [
    ("model", "rnn"),
    ("optimizer", "rmsprop"),
    ("loss", "hinge"),
    ("backend", "tpu"),
    ("precision", "float16"),
    ("epochs", 0),
    ("epochs", 1.5),
    ("max_steps", 0),
    ("batch_size", 0),
    ("batch_size", None),
    ("lr", 0.0),
    ("lr", -1.0),
    ("lr", float("inf")),
    ("lr", float("nan")),
    ("momentum", 1.0),
    ("momentum", -0.1),
    ("weight_decay", -0.1),
    ("alpha", -1.0),
    ("alpha", []),
    ("alpha", [1.0, float("nan")]),
    ("gamma", -0.5),
    ("seed", -1),
    ("seed", True),
    ("patience", 0),
    ("val_fraction", 1.0),
    ("eval_batch_size", 0),
    ("data", 3),
]


@pytest.mark.parametrize("name,value", BAD)
def test_each_bad_value_is_refused_in_words_that_name_the_setting_not_a_flag(name, value):
    with pytest.raises(SettingError) as refused:
        TrainConfig(**{name: value}).check()
    message = str(refused.value)
    assert refused.value.name == name
    assert "--" not in message
    assert repr(value) in message or str(value) in message
    words = settings()[name][1].words.removeprefix("the ")
    assert words in message


def test_the_lowest_and_highest_values_in_range_are_accepted():
    TrainConfig(lr=1e-12, momentum=0.0, weight_decay=0.0, gamma=0.0, alpha=[0.0, 2.0], seed=0, patience=1).check()
    TrainConfig(momentum=0.999, val_fraction=0.0, batch_size=1, epochs=1, max_steps=1).check()


def test_float64_runs_on_the_reference_backend_only():
    with pytest.raises(SettingError, match="reference backend"):
        TrainConfig(precision="float64", backend="cpu").check()
    TrainConfig(precision="float64", backend="reference").check()


def test_resolved_fills_the_defaults_that_depend_on_another_setting():
    for model, epochs in DEFAULT_EPOCHS.items():
        assert TrainConfig(model=model).resolved().epochs == epochs
    for optimizer, lr in DEFAULT_LR.items():
        assert TrainConfig(optimizer=optimizer).resolved().lr == lr
    assert TrainConfig(model="vit", epochs=2, lr=0.3).resolved().epochs == 2
    assert TrainConfig(patience=None).resolved().patience is None  # None here means off


def test_a_config_is_checked_once_however_often_it_is_resolved(monkeypatch):
    checks = []
    real = TrainConfig.check
    monkeypatch.setattr(TrainConfig, "check", lambda self: (checks.append(self), real(self)))
    resolved = TrainConfig(model="mlp").resolved()
    again = resolved.resolved()
    assert len(checks) == 1 and again == resolved and again is not resolved  # a copy: the run's own
    assert replace(resolved, lr=-1.0) != resolved
    with pytest.raises(SettingError):  # a changed copy is a new config: checked again
        replace(resolved, lr=-1.0).resolved()
    assert len(checks) == 2


def test_the_per_class_focal_weights_must_match_the_classes():
    config = TrainConfig(loss="focal", alpha=[1.0, 2.0, 3.0])
    config.check_classes(3, "shapes")
    with pytest.raises(SettingError, match="3 weights but shapes has 2 classes") as refused:
        config.check_classes(2, "shapes")
    assert refused.value.name == "alpha" and "--" not in str(refused.value)


def test_text_is_read_as_its_settings_kind():
    assert read_setting("lr", " 0.5 ") == 0.5
    assert read_setting("epochs", "3") == 3
    assert read_setting("alpha", "1,2") == [1.0, 2.0] and read_setting("alpha", "2") == 2.0
    assert read_setting("lr", "  ") is None  # an empty box: the default
    for name, text in [("epochs", "2.5"), ("lr", "fast"), ("alpha", ","), ("seed", "x")]:
        with pytest.raises(SettingError) as refused:
            read_setting(name, text)
        assert refused.value.name == name and repr(text) in str(refused.value)


def test_the_labs_form_shows_its_settings_in_order_with_their_defaults():
    form = form_settings()
    assert [f.name for f in form] == list(config_module.FORM_ORDER)
    by_name = {f.name: f for f in form}
    assert by_name["lr"].label == "learn rate" and by_name["lr"].placeholder == "default"
    assert by_name["patience"].placeholder == "off" and by_name["batch_size"].default == 64
    assert {f.name for f in form if f.live} == {"lr", "patience", "gamma", "alpha"}
    assert by_name["model"].menu == (("CNN", "cnn"), ("ViT", "vit"), ("MLP", "mlp"))
    assert by_name["optimizer"].menu == (("Adam", "adam"), ("SGD", "sgd"))
    assert "0.001 for adam, 0.05 for sgd" in by_name["lr"].help


def test_the_labs_form_and_train_help_list_the_same_settings_with_the_same_defaults():
    from nnsim.cli import build_parser

    train = build_parser()._subparsers._group_actions[0].choices["train"]
    flags = {action.dest: action for action in train._actions if action.option_strings}
    for shown in form_settings():
        assert shown.name in flags, shown.name
        assert flags[shown.name].default == shown.default, shown.name
        assert flags[shown.name].help == shown.help, shown.name


@dataclass
class WithWarmUp(TrainConfig):
    warm_up: int = setting_field(
        10, words="the warm-up", help="steps of rising learning rate", kind="whole", at_least=0, metavar="W"
    )


def test_a_new_setting_is_a_flag_a_box_of_the_form_and_checked_with_no_other_edit():
    from nnsim.cli import add_train_flags, train_config

    parser = argparse.ArgumentParser(prog="nnsim train")
    add_train_flags(parser, WithWarmUp)
    assert "--warm-up W" in parser.format_help() and "steps of rising learning rate" in parser.format_help()
    args = parser.parse_args(["--warm-up", "3", "--lr", "0.5"])
    config = train_config(args, WithWarmUp)
    assert isinstance(config, WithWarmUp) and config.warm_up == 3 and config.lr == 0.5
    assert train_config(parser.parse_args([]), WithWarmUp).warm_up == 10
    assert [f.name for f in form_settings(WithWarmUp)][-1] == "warm_up"
    assert "warm_up" in flag_settings(WithWarmUp) and "warm_up" not in flag_settings()
    with pytest.raises(SettingError, match="the warm-up must be a whole number >= 0, got -1"):
        WithWarmUp(warm_up=-1).resolved()


# ------------------------------------------------------------------ each default and range written once
PACKAGE = Path(__file__).resolve().parents[2] / "nnsim"
# Where a run's settings are used: the optimizers, the trainer, the CLI, the lab (its screen and
# widgets) and the live figures.
SCANNED = [
    *(PACKAGE / "engine" / name for name in ("optim.py", "trainer.py", "events.py", "runfiles.py")),
    PACKAGE / "cli.py",
    *sorted((PACKAGE / "tui" / "live").glob("*.py")),
    PACKAGE / "tui" / "screens" / "lab.py",
    *sorted((PACKAGE / "tui" / "widgets" / "lab").glob("*.py")),
]
# The learning-loop lesson's tiny network takes the lesson's own values, declared in lessons/params.py.
OWN_VALUES = {("learning_loop.py", "__init__")}


def _named(node) -> str | None:
    """`lr`, `self.lr`, `config.lr`: the name a value goes by."""
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else None


def _literal(node) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    return isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool)


def written_settings(tree: ast.AST, names: set[str], filename: str) -> list[str]:
    """Where a setting's default or range is written: a parameter named for a setting with a
    number as its default, a number as the fallback of a setting (`lr or 0.01`, `x if lr is None
    else 0.01`, `DEFAULTS.get(optimizer, 1e-3)`), or a setting compared with a number (`lr > 0`)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and (filename, node.name) not in OWN_VALUES:
            args = node.args
            positional = args.posonlyargs + args.args
            pairs = list(zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True))
            pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None]
            found += [f"{node.name}({a.arg}=…)" for a, d in pairs if a.arg in names and _literal(d)]
        elif isinstance(node, ast.Compare) and len(node.comparators) == 1:
            sides = (node.left, node.comparators[0])
            if any(_named(side) in names for side in sides) and any(_literal(side) for side in sides):
                found.append(f"{ast.unparse(node)}")
        elif isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
            if any(_named(v) in names for v in node.values) and any(_literal(v) for v in node.values):
                found.append(ast.unparse(node))
        elif isinstance(node, ast.IfExp) and isinstance(node.test, ast.Compare):
            if _named(node.test.left) in names and (_literal(node.body) or _literal(node.orelse)):
                found.append(ast.unparse(node))
        elif isinstance(node, ast.Call) and _named(node.func) == "get" and len(node.args) == 2:
            if _named(node.args[0]) in names and _literal(node.args[1]):
                found.append(ast.unparse(node))
    return found


def test_no_default_or_range_of_a_training_setting_is_written_outside_config():
    names = set(settings())
    written = {
        path.relative_to(PACKAGE.parent).as_posix(): where
        for path in SCANNED
        if path.name != "config.py"
        and (where := written_settings(ast.parse(path.read_text(encoding="utf-8")), names, path.name))
    }
    assert written == {}


@pytest.mark.parametrize(
    "source",
    [
        "class SGD:\n    def __init__(self, params, lr: float = 0.01, momentum=0.0): ...",
        "def make(name, *, lr, weight_decay=0.0): ...",
        "if not lr > 0:\n    raise ValueError",
        "ok = 0 <= config.momentum",
        "lr = config.lr or 1e-3",
        "epochs = DEFAULT_EPOCHS.get(self.model, 5)",
        "lr = 1e-3 if cfg.lr is None else cfg.lr",
    ],
)
def test_the_scan_finds_a_default_or_a_range_written_again(source):
    assert written_settings(ast.parse(source), set(settings()), "optim.py")


def test_a_training_run_from_the_command_line_checks_its_settings_once(monkeypatch, capsys):
    from nnsim.cli import main

    checks = []
    real = TrainConfig.check
    monkeypatch.setattr(TrainConfig, "check", lambda self: (checks.append(self), real(self)))
    flags = ["--model", "mlp", "--data", "shapes", "--backend", "reference", "--max-steps", "1", "--json"]
    assert main(["train", *flags]) == 0
    assert len(checks) == 1
    assert '"event": "done"' in capsys.readouterr().out
