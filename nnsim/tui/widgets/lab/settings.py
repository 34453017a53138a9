"""The lab's settings form, generated from `TrainConfig`'s field metadata (`form_settings()`): a
menu for each choice, a box for each other setting, in the order and with the labels, defaults,
placeholders and help the metadata gives; then the lab's own two choices, the comparison (before
'save to') and the network's size. A field added to TrainConfig shows here with no edit.

The form holds the settings of the next start (`config`). Enter in a box checks its value with
TrainConfig's own check(); mid-run, a setting whose metadata says `live` goes to the run under
way (`RunControl.change`, which the trainer checks) from its next step. A refused value goes
back to the value in force, and why stays beside it until a value is accepted there. What the
form has to say goes to the screen as messages (`Said`, `Refusals`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid
from textual.message import Message
from textual.widgets import Input, Label, Select

from nnsim.engine.config import FormSetting, TrainConfig, form_settings, read_setting, settings
from nnsim.errors import NnsimError, SettingError
from nnsim.tui.live.lab_files import allowed, free_checkpoint
from nnsim.tui.live.lab_settings import GIVEN, SIZES, compared, comparison_options, sizes_tip
from nnsim.tui.live.run_control import PAUSED, RUNNING, RunControl

# A box's id is lab-NAME, but for two kept from before the form was generated (#lab-loss is the
# loss curve's plot).
IDS = {"loss": "lab-lossfn", "batch_size": "lab-batch"}
BEFORE = "checkpoint"  # the comparison's menu comes before this setting (at the end if none)


def box_id(name: str) -> str:
    """The id of the box or menu that holds a setting."""
    return IDS.get(name, "lab-" + name.replace("_", "-"))


def text_of(value: Any) -> str:
    """A setting's value as its box shows it ("" for None: the default)."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(f"{v:g}" for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


class LabSettings(Grid):
    """The form: its boxes hold text until read() reads them as the settings of the next start."""

    class Said(Message):
        """Words for the status line; `held`: a refused request's, kept over the progress line a while."""

        def __init__(self, text: str, error: bool = False, held: bool = False) -> None:
            super().__init__()
            self.text, self.error, self.held = text, error, held

    class Refusals(Message):
        """Why each refused value was refused, in one red line (empty when none is)."""

        def __init__(self, text: Text) -> None:
            super().__init__()
            self.text = text

    def __init__(self, config: TrainConfig, control: RunControl, own_folder: Path, compare: dict | None = None):
        super().__init__(id="lab-settings")
        self.config = config  # the settings of the next start (the boxes show them at first)
        self.control = control  # the run: its state, a live setting's value in force, changes to it
        self.own_folder = own_folder  # served: the folder of this tab's own runs
        self.compare_given = compare  # a file's or a lesson's [compare]: offered as "given"
        self.shown = form_settings(type(config))
        self.refused: dict[str, str] = {}  # setting → why its last value was refused

    def compose(self) -> ComposeResult:
        for setting in self.shown:
            if setting.name == BEFORE:
                yield from self._compare()
            yield Label(setting.label, id=f"{box_id(setting.name)}-label", classes="lab-label")
            yield self._widget(setting)
        if BEFORE not in (setting.name for setting in self.shown):
            yield from self._compare()
        sizes = [(size, size) for size in SIZES] + ([("as given", "given")] if self.config.sizes else [])
        value = "given" if self.config.sizes else "default"
        yield Label("size", id="lab-size-label", classes="lab-label")
        size = Select(sizes, value=value, allow_blank=False, id="lab-size", compact=True)
        size.tooltip = sizes_tip()
        yield size

    def _compare(self) -> ComposeResult:
        value = GIVEN if self.compare_given else "none"
        options = comparison_options(self.compare_given)
        yield Label("compare", id="lab-compare-label", classes="lab-label")
        yield Select(options, value=value, allow_blank=False, id="lab-compare", compact=True)

    def _widget(self, setting: FormSetting) -> Input | Select:
        value = getattr(self.config, setting.name)
        if setting.kind == "choice":
            options = list(setting.menu)
            options += [] if value in (v for _, v in options) else [(str(value), value)]
            return Select(options, value=value, allow_blank=False, id=box_id(setting.name), compact=True)
        box = Input(text_of(value), id=box_id(setting.name), placeholder=setting.placeholder, compact=True)
        box.tooltip = setting.help
        return box

    # ------------------------------------------------------------------ what the form holds
    def read(self, resume: str | None = None) -> TrainConfig:
        """The next start's settings: every box read (an empty box: the field's default, or None
        where the default depends on another setting), and the paths a served tab may use. A
        SettingError for text that is no value, an NnsimError for a path the tab may not use."""
        defaults, values = settings(type(self.config)), {}
        for setting in self.shown:
            widget = self.query_one(f"#{box_id(setting.name)}")
            if isinstance(widget, Select):
                values[setting.name] = widget.value
                continue
            value = read_setting(setting.name, widget.value, type(self.config))
            values[setting.name] = defaults[setting.name][0] if value is None else value
        sizes = self.sizes(values.get("model", self.config.model))
        return allowed(replace(self.config, **values, sizes=sizes, resume=resume), self.own_folder)

    def next_start(self, resume: str | None = None) -> list[TrainConfig] | None:
        """The settings of the next start, resolved (and the comparison's second run's), which the
        form then holds; None, having said why, if a value is refused."""
        try:
            config = self.read(resume).resolved()
            other = compared(config, self.comparison, self.compare_given)
        except SettingError as error:
            self.refuse(error)
            return None
        except NnsimError as error:
            self.post_message(self.Said(str(error), error=True))
            return None
        self.accept()
        self.config = config
        return [config] + ([other] if other is not None else [])

    def sizes(self, model: str) -> dict:
        """The network's sizes the size menu chooses for `model` ("as given": the settings' own)."""
        size = self.query_one("#lab-size", Select).value
        if size == "given" and model == self.config.model:
            return dict(self.config.sizes)
        return dict(SIZES.get(size, {}).get(model, {}))

    @property
    def comparison(self) -> str:
        return self.query_one("#lab-compare", Select).value

    def name_of(self, widget_id: str | None) -> str | None:
        """The setting a box of the form holds (None for another widget)."""
        return next((s.name for s in self.shown if box_id(s.name) == widget_id), None)

    def text(self, name: str) -> str:
        """What a setting's box holds, as typed."""
        return self.query_one(f"#{box_id(name)}", Input).value

    def checkpoint(self) -> Path:
        """The path in 'save to', as the learner typed it (~ expanded)."""
        return Path(self.text("checkpoint").strip()).expanduser()

    def offer_free_name(self, failure: Exception | None) -> bool:
        """A run refused because 'save to' holds another network's checkpoint: the next free name
        there instead, and why (space then trains into it). False for any other failure."""
        free = free_checkpoint(failure)
        if free is not None:
            self.set_text("checkpoint", free)
            self.post_message(self.Said(f"{failure} 'save to' now holds {free}: space trains into it", error=True))
        return free is not None

    def set_text(self, name: str, value: Any) -> None:
        self.query_one(f"#{box_id(name)}", Input).value = text_of(value)

    def set_choices(self, name: str, choices: list[str]) -> None:
        """The options of a choice's menu (the backends found on this machine); its value kept if offered."""
        select = self.query_one(f"#{box_id(name)}", Select)
        value = select.value
        select.set_options([(choice, choice) for choice in choices])
        select.value = value if value in choices else choices[0]

    # ------------------------------------------------------------------ a value changed
    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in a box: mid-run, a live setting (the learning rate, patience, focal α, γ) takes
        effect at the next step; any other value is checked now and used at the next start."""
        event.stop()
        name = self.name_of(event.input.id)
        setting = settings(type(self.config))[name][1] if name is not None else None
        if setting is not None and setting.live and self.control.state in (RUNNING, PAUSED):
            if self.apply(name, event.value):
                self.post_message(self.Said(f"{setting.words} set to {event.value.strip()} from the next step"))
            return
        try:
            self.read().resolved()
        except SettingError as error:
            self.refuse(error)
            return
        except NnsimError:
            pass  # a data set or path: said when the run starts
        self.accept()

    def apply(self, name: str, text: str) -> bool:
        """One setting changed: for the run under way if it has one (checked by the trainer), else
        for the next start. False, and why beside the box, if refused."""
        self.query_one(f"#{box_id(name)}", Input).value = text
        try:
            value = read_setting(name, text, type(self.config))
            if self.control.state in (RUNNING, PAUSED):
                why = "" if value is None else self.control.change(**{name: value})
                if why is not None:  # an emptied box mid-run, or the run refused: the value in force back
                    if why:
                        self.post_message(self.Said(why, error=True, held=True))
                    self.set_text(name, self.control.in_force(self.config, name))
                    return False
            else:
                changed = replace(self.config, **{name: value})
                changed.resolved()
                self.config = changed
        except SettingError as error:
            self.refuse(error, text)
            return False
        self.accept(name)
        return True

    def refuse(self, error: SettingError, text: str | None = None) -> None:
        """Why, on the status line and beside the box (it stays until a value is accepted there),
        and the value in force back in the box."""
        self.post_message(self.Said(str(error), error=True))
        name = error.name
        if name not in (s.name for s in self.shown) or isinstance(self.query_one(f"#{box_id(name)}"), Select):
            return
        text = self.text(name) if text is None else text
        self.set_text(name, self.control.in_force(self.config, name))
        self.refused[name] = f"✗ {text.strip()!r} refused: {error}"
        self.query_one(f"#{box_id(name)}-label", Label).set_class(True, "-refused")
        self.post_message(self.Refusals(self.refusals()))

    def accept(self, *names: str) -> None:
        """These settings' boxes hold accepted values again (all of them when none is named)."""
        for name in names or list(self.refused):
            if self.refused.pop(name, None) is not None:
                self.query_one(f"#{box_id(name)}-label", Label).set_class(False, "-refused")
        self.post_message(self.Refusals(self.refusals()))

    def refusals(self) -> Text:
        """Every box's refusal, in one red line."""
        return Text(" · ".join(self.refused.values()), style="red")
