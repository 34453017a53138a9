"""The app by keys and by mouse: home, every step of every lesson, help, palette, size, progress."""

from pathlib import Path

import pytest
from textual.command import CommandList, CommandPalette
from textual.widgets import Button, OptionList

from nnsim.lessons.format import lesson_files, parse_lesson
from nnsim.lessons.params import WIDGET_PARAMS
from nnsim.tui.progress import ProgressStore
from nnsim.tui.screens.help import HelpScreen
from nnsim.tui.screens.home import HomeScreen
from nnsim.tui.screens.lesson import LessonScreen
from nnsim.tui.widgets import widget_class
from tests.tui.conftest import LESSONS, make_app, settle, shown, until

LESSON_FILES = lesson_files(LESSONS)


def test_every_declared_widget_has_a_widget():
    from textual.widget import Widget

    for name in WIDGET_PARAMS:
        assert issubclass(widget_class(name), Widget), name


def test_the_first_five_lessons_are_shipped_and_clean():
    names = [p.name for p in LESSON_FILES]
    assert names[:5] == [
        "01-why-it-matters.md",
        "02-picture-to-numbers.md",
        "03-weights-and-biases.md",
        "04-activation-functions.md",
        "05-building-a-network.md",
    ]
    for path in LESSON_FILES:
        lesson = parse_lesson(path)
        assert lesson.ok, lesson.errors
        assert len(lesson.steps) >= 3
        assert any(b.widget == "quiz" for s in lesson.steps for b in s.blocks), path
        assert any(b.widget != "quiz" for s in lesson.steps for b in s.blocks), path


async def test_home_lists_the_lessons_and_enter_opens_one():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        assert isinstance(app.screen, HomeScreen)
        lessons = app.screen.query_one(OptionList)
        assert lessons.option_count == len(LESSON_FILES)
        assert lessons.highlighted == 0
        await pilot.press("down", "enter")
        await settle(pilot)
        assert isinstance(app.screen, LessonScreen)
        assert app.screen.lesson.path.name == LESSON_FILES[1].name
        await pilot.press("escape")
        assert isinstance(app.screen, HomeScreen)
        await pilot.press("up", "enter")
        await settle(pilot)
        assert app.screen.lesson.path.name == LESSON_FILES[0].name


def _shown(screen: LessonScreen) -> list[str]:
    return [type(w).__name__ for w in screen.query_one("#widgets").children]


@pytest.mark.parametrize("path", LESSON_FILES, ids=lambda p: p.stem)
async def test_every_step_by_keys_forward_and_back(path):
    app = make_app(path)
    lesson = parse_lesson(path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, LessonScreen)
        for index, step in enumerate(lesson.steps):
            assert screen.step_index == index
            assert not screen.query(".error-panel")
            assert len(screen.query_one("#widgets").children) == len(step.blocks)
            assert f"Step {index + 1}/{len(lesson.steps)}" in shown(screen.query_one("#step-label"))
            await pilot.press("right" if index % 2 == 0 else "n")
            await settle(pilot)
        assert screen.step_index == len(lesson.steps) - 1  # right on the last step stays there
        for index in reversed(range(len(lesson.steps) - 1)):
            await pilot.press("left" if index % 2 == 0 else "p")
            await settle(pilot)
            assert screen.step_index == index
            assert not screen.query(".error-panel")
        await pilot.press("left")
        assert screen.step_index == 0
        await pilot.press("escape")
        assert isinstance(app.screen, HomeScreen)


@pytest.mark.parametrize("path", LESSON_FILES, ids=lambda p: p.stem)
async def test_every_step_by_mouse(path):
    app = make_app()
    lesson = parse_lesson(path)
    async with app.run_test(size=(120, 40)) as pilot:
        row = LESSON_FILES.index(path)
        await pilot.click(OptionList, offset=(4, row))
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, LessonScreen) and screen.lesson.path.name == path.name
        assert screen.query_one("#previous", Button).disabled
        for index in range(1, len(lesson.steps)):
            await pilot.click("#next")
            await settle(pilot)
            assert screen.step_index == index
            assert not screen.query(".error-panel")
        last_lesson = path == LESSON_FILES[-1]
        next_button = screen.query_one("#next", Button)
        assert next_button.disabled == last_lesson  # the last step offers the next lesson
        if not last_lesson:
            following = parse_lesson(LESSON_FILES[row + 1])
            assert f"Lesson {following.section}: {following.title}" in str(next_button.label)
        for index in reversed(range(len(lesson.steps) - 1)):
            await pilot.click("#previous")
            await settle(pilot)
            assert screen.step_index == index


async def test_progress_is_saved_and_shown(own_progress):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("enter")
        await settle(pilot)
        steps = len(app.screen.lesson.steps)
        for _ in range(steps - 1):
            await pilot.press("right")
            await settle(pilot)
        await pilot.press("escape", "down", "enter", "right", "escape")
        await settle(pilot)
        labels = [str(o.prompt) for o in app.screen.query_one(OptionList).options]
        assert labels[0].strip().startswith("✓")
        assert labels[1].strip().startswith(f"2/{len(parse_lesson(LESSON_FILES[1]).steps)}")
    stored = ProgressStore(own_progress)
    assert stored.get(LESSON_FILES[0].name).done
    assert stored.get(LESSON_FILES[1].name).step == 1
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.screen.query_one(OptionList).highlighted == 1  # the first unfinished lesson
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen.step_index == 1  # where the learner left it


async def test_damaged_progress_file_starts_afresh(own_progress):
    own_progress.parent.mkdir(parents=True)
    own_progress.write_text("{not json")
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, LessonScreen)
    assert ProgressStore(own_progress).get(LESSON_FILES[0].name).seen == 1


async def test_help_palette_theme_and_quit():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, HomeScreen)
        theme = app.theme
        await pilot.press("t")
        assert app.theme != theme
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"Lesson 4")
        palette = app.screen
        found = palette.query_one(CommandList)

        def searched() -> bool:  # the search for what was typed has ended, its best match on top
            group = CommandPalette._GATHER_COMMANDS_GROUP
            searching = any(w.group == group and not w.is_finished for w in app.workers)
            return not searching and found.option_count > 0 and "Lesson 4" in str(found.get_option_at_index(0).prompt)

        await until(pilot, searched, what="the palette found no Lesson 4")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, LessonScreen)
        assert app.screen.lesson.section == 4
        await pilot.press("q")
    assert app.return_code == 0


@pytest.mark.parametrize("size", [(40, 12), (63, 24)])
async def test_too_small_a_terminal_says_what_is_needed(size):
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        assert app.screen.has_class("-too-small")
        message = shown(app.screen.query_one("#too-small"))
        assert "64×20" in message and f"{size[0]}×{size[1]}" in message
        assert not app.screen.query_one("#lessons").display or not app.screen.query_one("#home").display


async def test_80_by_24_is_usable():
    app = make_app(LESSON_FILES[1])
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert not app.screen.has_class("-too-small")
        assert app.screen.has_class("-narrow")  # prose above, widgets below, each full width
        assert app.screen.query_one("#widgets").region.width >= 70
        await pilot.press("right")
        await settle(pilot)
        assert app.screen.step_index == 1
        await pilot.resize_terminal(40, 12)
        await pilot.pause()
        assert app.screen.has_class("-too-small")
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        assert not app.screen.has_class("-too-small")


async def test_a_broken_lesson_shows_error_panels_not_a_crash():
    broken = Path(__file__).resolve().parents[1] / "lessons" / "broken"
    for path in sorted(broken.glob("*.md")):
        app = make_app(path)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, LessonScreen)
            panels = list(screen.query(".error-panel"))
            for _ in range(len(screen.lesson.steps)):
                await pilot.press("right")
                await settle(pilot)
                panels += list(screen.query(".error-panel"))
            assert panels, path.name
            assert any(f"{path.name}:" in shown(p) for p in panels), path.name


async def test_q_quits_while_a_widget_trains_in_a_worker(tmp_path, monkeypatch):
    """Quitting mid-training does not wait for the training to finish, nor raise."""
    import time

    lesson = tmp_path / "01-net.md"
    lesson.write_text(
        '+++\ntitle = "T"\nsection = 1\nsummary = "s"\n+++\nProse.\n\n```nnsim\nwidget = "network"\n'
        "hidden = [512]\nsteps = 100000\nseed = 11\n```\n",
        encoding="utf-8",
    )
    import threading

    from nnsim.tui.live import network

    began, returned, train = threading.Event(), threading.Event(), network._train

    def watched(*args):
        began.set()
        try:
            return train(*args)
        finally:
            returned.set()

    monkeypatch.setattr(network, "_train", watched)
    app = make_app(lesson)
    start = time.perf_counter()
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, began.is_set, what="the widget's training never began")
        assert any(worker.is_running for worker in app.workers)  # training has begun
        await pilot.press("q")
    assert time.perf_counter() - start < 10  # its 14,000 steps (100 epochs) take minutes
    assert app.return_code in (0, None)
    assert returned.wait(timeout=10)  # the training itself stopped too, between two steps


async def test_the_last_step_leads_to_the_next_lesson(own_progress):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("enter")
        await settle(pilot)
        first = app.screen
        for _ in range(len(first.lesson.steps)):
            await pilot.press("right")
            await settle(pilot)
        assert isinstance(app.screen, LessonScreen) and app.screen is not first
        assert app.screen.lesson.path.name == LESSON_FILES[1].name and app.screen.step_index == 0
        assert app.progress.get(LESSON_FILES[0].name).done
        await pilot.press("escape")
        assert isinstance(app.screen, HomeScreen)  # one lesson screen at a time


async def test_takeaways_link_back_to_their_lessons():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        takeaways = next(i for i, p in enumerate(LESSON_FILES) if p.name.startswith("10-"))
        await pilot.press(*["down"] * takeaways, "enter")
        await settle(pilot)
        assert app.screen.lesson.section == 10
        await pilot.press("down", "down", "down", "down", "enter")  # the fifth point: softmax
        await settle(pilot)
        assert isinstance(app.screen, LessonScreen) and app.screen.lesson.section == 7
        assert app.screen.step_index == 0


@pytest.mark.parametrize("path", LESSON_FILES, ids=lambda p: p.stem)
async def test_every_step_of_every_lesson_at_80_by_24(path):
    """Every lesson at the smallest laid-out size: every step by keys, no error panel, no crash."""
    app = make_app(path)
    lesson = parse_lesson(path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        for index in range(len(lesson.steps)):
            assert app.screen.step_index == index
            assert not app.screen.query(".error-panel")
            await pilot.press("s", "1", "right")  # poke the focused widget's keys, then move on
            await settle(pilot)
        assert isinstance(app.screen, LessonScreen)
