"""A lesson's lab link: L (or its button) opens the lab with the link's settings, and its
comparison, training at once as the link says; escape in the lab comes back to the same step.
Lessons 6, 8 and 9 have links; `nnsim lessons check` checks a link's settings like an experiment
file's, each problem at its own line."""

import pytest
from textual.widgets import Select

from nnsim.lessons.format import parse_lesson
from nnsim.tui.live.lab_settings import GIVEN
from nnsim.tui.screens.lab import LabScreen
from nnsim.tui.screens.lesson import LessonScreen
from tests.tui.conftest import LESSONS, make_app
from tests.tui.test_lab import until


def lab_links(lesson: str) -> list[tuple[int, object]]:
    """(step index, LabLinkParams) of every lab link in a shipped lesson."""
    parsed = parse_lesson(next(LESSONS.glob(f"{lesson}-*.md")))
    return [(i, b.params) for i, step in enumerate(parsed.steps) for b in step.blocks if b.widget == "lab_link"]


LINKS = [(lesson, step, link) for lesson in ("06", "08", "09") for step, link in lab_links(lesson)]


def test_lessons_6_8_and_9_have_lab_links_and_6_and_8_compare():
    lessons = [lesson for lesson, *_ in LINKS]
    assert {"06", "08", "09"} <= set(lessons)
    assert all(link.compare for lesson, _, link in LINKS if lesson in ("06", "08"))
    assert {"model": "vit"} == next(link.compare for lesson, _, link in LINKS if lesson == "06")
    assert next(link.compare for lesson, _, link in LINKS if lesson == "08")["loss"] == "focal"


@pytest.mark.parametrize(("lesson", "step", "link"), LINKS, ids=[f"{lesson}-step{step}" for lesson, step, _ in LINKS])
async def test_L_opens_the_lab_with_the_links_settings_and_escape_returns_to_the_step(lesson, step, link):
    app = make_app(next(LESSONS.glob(f"{lesson}-*.md")))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, LessonScreen)
        for _ in range(step):
            await pilot.press("right")
        await until(pilot, lambda: not screen.widgets_pending)
        await pilot.press("L")
        await until(pilot, lambda: isinstance(app.screen, LabScreen))
        lab = app.screen
        compare = lab.query_one("#lab-compare", Select).value
        assert compare == (GIVEN if link.compare else "none")
        assert link.start
        await until(pilot, lambda: lab.session is not None, seconds=120)  # started: the runs are built
        runs = [run.trainer.config for run in lab.session.runs]
        assert len(runs) == (2 if link.compare else 1)
        for name, value in link.settings.items():
            assert getattr(runs[0], name) == value, name
        for name, value in link.compare.items():
            assert getattr(runs[1], name) == value, name
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        assert screen.step_index == step


async def test_L_does_nothing_on_a_step_without_a_link():
    app = make_app(next(LESSONS.glob("09-*.md")))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("L")
        await pilot.pause()
        assert isinstance(app.screen, LessonScreen) and app.screen.step_index == 0


def test_a_links_settings_are_checked_at_their_own_lines(tmp_path):
    path = tmp_path / "mine.md"
    path.write_text(
        '+++\ntitle = "t"\nsection = 1\nsummary = "s"\n+++\nProse.\n\n```nnsim\nwidget = "lab_link"\n'
        'watch = "the loss"\n\n[settings]\nmodel = "mlp"\nlrate = 0.1\nseed = -1\n\n[compare]\nmodle = "vit"\n```\n',
        encoding="utf-8",
    )
    errors = parse_lesson(path).errors
    assert [error.split(": ", 1)[0] for error in errors] == [f"{path}:14", f"{path}:15", f"{path}:18"]
    assert "unknown setting 'lrate'" in errors[0]
    assert "the seed must be a whole number >= 0" in errors[1]
    assert "did you mean 'model'?" in errors[2]
