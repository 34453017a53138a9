"""NnsimApp: the school. Home lists the lessons; a lesson steps through prose and live widgets."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from functools import partial
from pathlib import Path

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from nnsim.tui.catalogue import Entry, own_lesson, shipped_lessons
from nnsim.tui.progress import ProgressStore

THEMES = {"dark": "textual-dark", "light": "textual-light"}


class NnsimApp(App):
    CSS_PATH = "nnsim.tcss"
    TITLE = "nnsim"
    SUB_TITLE = "how neural networks classify images"
    BINDINGS = [
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("t", "toggle_theme", "Light/dark"),
        Binding("l", "lab", "Lab"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        lesson: Path | None = None,
        progress: ProgressStore | None = None,
        lab=None,
        start=False,
        warm_up: list[str] | None = None,
        compare: dict | None = None,
    ):
        """lesson: open this lesson file (the learner's own or a shipped one) instead of home.
        lab: a TrainConfig to open the lab with (start: begin training at once; compare: the
        settings a comparison's second run changes, an experiment file's [compare]).
        warm_up: a command that compiles the cpu kernels in the background, started once the
        first screen has painted (nnsim.engine.backends.warm.background_command)."""
        super().__init__()
        self.lab_config, self.lab_start, self.lab_compare = lab, start, compare
        self.warm_up_command, self.warm_up_process = warm_up, None
        if progress is None:
            from nnsim import serving

            progress = ProgressStore(in_memory=serving.served())
        self.progress = progress
        self.entries: list[Entry] = [own_lesson(lesson)] if lesson is not None else shipped_lessons()
        self.start_in_lesson = lesson is not None

    def on_mount(self) -> None:
        self.theme = THEMES.get(self.progress.settings.get("theme", "dark"), THEMES["dark"])
        from nnsim.tui.screens.home import HomeScreen

        self.push_screen(HomeScreen(self.entries))
        if self.start_in_lesson:
            self.open_lesson(self.entries[0])
        elif self.lab_config is not None:
            self.action_lab()
        if self.warm_up_command:
            self.call_after_refresh(self.warm_up_kernels)

    @work(group="warm-up", exit_on_error=False)
    async def warm_up_kernels(self) -> None:
        from nnsim.tui.warm_up import warm_in_background

        if await warm_in_background(self, self.warm_up_command):
            from nnsim import serving

            if not serving.served():  # (a served tab loads them when its lab trains: memory)
                self.load_kernels()

    @work(thread=True, group="warm-up", exit_on_error=False)
    def load_kernels(self) -> None:
        """The cpu kernels, once the background warm-up has them in the cache, loaded into this
        process while the learner reads: otherwise the lab's first step waits for them (Numba's
        import, then every kernel from the cache: 1.2 s on the development machine)."""
        from nnsim.tui.live.lab_session import prepare_backend

        prepare_backend("cpu", lambda text: None)

    def action_lab(self) -> None:
        """The lab: from anywhere, one at a time."""
        from nnsim.tui.screens.lab import LabScreen

        if isinstance(self.screen, LabScreen):
            return
        if any(isinstance(screen, LabScreen) for screen in self.screen_stack):  # one lab, with its run
            while not isinstance(self.screen, LabScreen):
                self.pop_screen()
            return
        # --start and --resume are for the lab the app opened with; a lab opened again (escape, l)
        # keeps the settings but waits for space
        config, start = self.lab_config, self.lab_start
        if config is not None:
            self.lab_config, self.lab_start = replace(config, resume=None), False
        self.push_screen(LabScreen(config, start=start, compare=self.lab_compare))

    def open_lab(self, link) -> None:
        """The lab with a lesson's experiment (LabLinkParams) loaded, over the lesson: escape comes
        back to it. Not while another lab trains: one run at a time."""
        from nnsim.tui.live.run_control import ENDED
        from nnsim.tui.screens.lab import LabScreen

        if any(isinstance(screen, LabScreen) and screen.state not in ENDED for screen in self.screen_stack):
            self.notify("The lab is training a run: stop it there first (l goes to it).", severity="warning")
            return
        from nnsim.engine.experiment import Experiment

        config = Experiment(settings=dict(link.settings)).config()
        self.push_screen(LabScreen(config, start=link.start, compare=dict(link.compare) or None))

    async def action_quit(self) -> None:
        """Quit; a lab's run (under whatever screen) stops and saves first."""
        from nnsim.tui.screens.lab import LabScreen

        for screen in self.screen_stack:
            if isinstance(screen, LabScreen):
                await screen.leave()
        self.exit()

    def open_lesson(self, entry: Entry) -> None:
        from nnsim.tui.screens.lesson import LessonScreen

        progress = self.progress.get(entry.key)
        start = 0 if progress.done else progress.step
        while isinstance(self.screen, LessonScreen):
            self.pop_screen()
        self.push_screen(LessonScreen(entry, start))

    def next_entry(self, entry: Entry) -> Entry | None:
        """The lesson after `entry` in the list, if there is one."""
        keys = [e.key for e in self.entries]
        index = keys.index(entry.key) if entry.key in keys else len(keys)
        return self.entries[index + 1] if index + 1 < len(self.entries) else None

    def action_help(self) -> None:
        from nnsim.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_toggle_theme(self) -> None:
        dark = self.theme != THEMES["dark"]
        self.theme = THEMES["dark" if dark else "light"]
        self.progress.set_setting("theme", "dark" if dark else "light")

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Lab: train a network", "train a CNN, ViT or MLP and watch it learn", self.action_lab)
        for index, entry in enumerate(self.entries):
            number = entry.lesson.section or index + 1
            yield SystemCommand(
                f"Lesson {number}: {entry.title}", entry.lesson.summary, partial(self.open_lesson, entry)
            )
        yield SystemCommand("Help", "Keys, mouse and how lessons work", self.action_help)
        yield SystemCommand(
            "Light or dark theme", "Switch between the light and the dark theme", self.action_toggle_theme
        )
