"""A run's settings: each written once, checked once, in words, and seen by the CLI and the lab alike."""

import argparse
from dataclasses import dataclass, replace

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
    assert by_name["optimizer"].menu == (("Adam", "adam"), ("SGD + momentum", "sgd"))
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
