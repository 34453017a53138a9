"""The lab's settings form is generated from TrainConfig's field metadata, the same source as
`nnsim train --help`: a setting added to a TrainConfig subclass is a flag there and a box here,
with the same default, and the form reads it back, with no edit to either."""

import argparse
from dataclasses import dataclass

from textual.app import App, ComposeResult
from textual.widgets import Input, Label

from nnsim.engine.config import TrainConfig, form_settings, setting_field
from nnsim.tui.live.run_control import RunControl
from nnsim.tui.widgets.lab.settings import LabSettings, box_id


@dataclass
class WithWarmUp(TrainConfig):
    warm_up: int = setting_field(
        10, words="the warm-up", help="steps of rising learning rate", kind="whole", at_least=0, metavar="W"
    )


class FormApp(App):
    def __init__(self, config: TrainConfig, folder):
        super().__init__()
        self.config, self.folder = config, folder

    def compose(self) -> ComposeResult:
        control = RunControl(publish=print, changed=print, crashed=print, every=lambda: 1.0)
        yield LabSettings(self.config, control, self.folder)


def as_typed(default) -> str:
    """A flag's default as a box shows it: nothing for None (the box's placeholder says what)."""
    if default is None:
        return ""
    return f"{default:g}" if isinstance(default, float) else str(default)


def train_flags(config: type[TrainConfig]) -> tuple[dict[str, argparse.Action], str]:
    from nnsim.cli import add_train_flags

    parser = argparse.ArgumentParser(prog="nnsim train")
    add_train_flags(parser, config)
    return {action.dest: action for action in parser._actions if action.option_strings}, parser.format_help()


async def test_a_field_added_to_train_config_is_in_train_help_and_in_the_labs_form_with_one_default(tmp_path):
    flags, help_text = train_flags(WithWarmUp)
    assert "--warm-up W" in help_text and flags["warm_up"].default == 10
    app = FormApp(WithWarmUp(), tmp_path)
    async with app.run_test(size=(120, 30)) as pilot:
        form = app.query_one(LabSettings)
        labels = [str(label.render()) for label in form.query(Label)]
        assert "warm-up" in labels
        box = form.query_one(f"#{box_id('warm_up')}", Input)
        assert box.value == str(flags["warm_up"].default) and box.tooltip == flags["warm_up"].help
        assert form.read().warm_up == 10
        box.value = "3"
        await pilot.pause()
        assert isinstance(form.read(), WithWarmUp) and form.read().warm_up == 3
        box.value = ""  # an emptied box: the field's default
        assert form.read().warm_up == 10
        box.value = "-1"
        box.focus()
        await pilot.press("enter")
        assert "warm-up" in str(form.refusals()) and box.value == "10"  # refused by check(); the value in force


async def test_every_setting_the_form_shows_is_a_flag_of_train_with_the_same_default(tmp_path):
    flags, _ = train_flags(TrainConfig)
    app = FormApp(TrainConfig(), tmp_path)
    async with app.run_test(size=(120, 30)):
        form = app.query_one(LabSettings)
        for shown in form_settings():
            widget = form.query_one(f"#{box_id(shown.name)}")
            value = widget.value if isinstance(widget, Input) else str(widget.value)
            assert value == as_typed(flags[shown.name].default), shown.name


@dataclass
class WithTwoMore(WithWarmUp):
    cool_down: int = setting_field(
        0, words="the cool-down", help="steps of falling learning rate at the end", kind="whole", at_least=0
    )


async def test_the_lab_screen_gives_new_settings_boxes_the_rows_they_need(tmp_path, monkeypatch):
    from nnsim.tui.app import NnsimApp
    from nnsim.tui.progress import ProgressStore

    monkeypatch.setenv("NNSIM_HOME", str(tmp_path))
    app = NnsimApp(progress=ProgressStore(), lab=WithTwoMore(model="mlp", data="shapes", backend="reference"))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        form = app.screen.query_one(LabSettings)
        assert form.region.height == 5  # 17 settings with their labels, four a row
        for name in ("warm_up", "cool_down"):
            box = form.query_one(f"#{box_id(name)}", Input)
            assert form.region.contains_region(box.region) and box.region.height == 1, name
