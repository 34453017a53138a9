"""The lesson format: a good lesson parses into steps and widgets; each broken one gets file:line."""

import subprocess
import sys
from pathlib import Path

import pytest

from nnsim.lessons import parse_lesson
from nnsim.lessons.params import ActivationPlotParams, NeuronParams, QuizParams, SoftmaxParams

HERE = Path(__file__).parent
BROKEN = HERE / "broken"


def test_a_good_lesson():
    lesson = parse_lesson(HERE / "good.md")
    assert lesson.ok, lesson.errors
    assert (lesson.title, lesson.section) == ("A neuron", 3)
    assert len(lesson.steps) == 3  # the '---' inside a ```text fence is not a break
    neuron = lesson.steps[0].blocks[0]
    assert neuron.widget == "neuron" and neuron.line == 8
    assert neuron.params == NeuronParams(x1=1.0, w1=0.5, bias=False)
    assert isinstance(neuron.params.x1, float)  # an int in TOML becomes the declared float
    assert lesson.steps[1].blocks[0].params == ActivationPlotParams(functions=["relu", "tanh"])
    assert "inside it, which is not a step break" in lesson.steps[1].markdown
    assert isinstance(lesson.steps[2].blocks[0].params, QuizParams)
    assert "```nnsim" not in lesson.steps[0].markdown


@pytest.mark.parametrize(
    "name,line,fragment",
    [
        ("no-front-matter.md", 1, "missing front matter"),
        ("unclosed-front-matter.md", 1, "not closed"),
        ("bad-front-toml.md", 2, "bad TOML"),
        ("missing-keys.md", 1, "front matter needs 'summary'"),
        ("missing-keys.md", 3, "'section' must be a whole number"),
        ("unknown-widget.md", 9, "unknown widget 'hologram'"),
        ("bad-values.md", 6, "'activation' must be one of relu, sigmoid, tanh, linear, gelu, got 'softplus'"),
        ("bad-values.md", 6, "'highlight' must be a neuron, 0 to 2, got 7"),
        ("bad-values.md", 13, "'functions' must be one of relu, sigmoid, tanh, linear, gelu, got 'swish'"),
        ("bad-values.md", 13, "'range' must be > 0, got 0.0"),
        ("unknown-parameter.md", 11, "widget 'neuron' has no parameter 'weight'"),
        ("mistyped-parameter.md", 10, "'x1' must be a number, got 'one'"),
        ("mistyped-parameter.md", 11, "'bias' must be true or false, got 1"),
        ("bad-block-toml.md", 12, "bad TOML"),
        ("bad-quiz.md", 6, "answer 5 is not the index of a choice"),
    ],
)
def test_each_broken_lesson_gets_its_line(name, line, fragment):
    errors = parse_lesson(BROKEN / name).errors
    expected = f"{BROKEN / name}:{line}: "
    assert any(e.startswith(expected) and fragment in e for e in errors), errors


def test_one_problem_is_reported_once():
    assert len(parse_lesson(BROKEN / "bad-quiz.md").errors) == 1


def run_check(*paths):
    return subprocess.run(
        [sys.executable, "-m", "nnsim", "lessons", "check", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_command_exit_codes():
    good = run_check(HERE / "good.md")
    assert good.returncode == 0 and good.stdout == ""
    broken = run_check(BROKEN)
    assert broken.returncode == 1
    lines = broken.stdout.strip().splitlines()
    assert len(lines) >= len(list(BROKEN.glob("*.md")))
    assert all(":" in line and line.split(":")[1].isdigit() for line in lines)
    assert "Traceback" not in broken.stderr
    missing = run_check(HERE / "nope.md")
    assert missing.returncode == 1 and "no such file" in missing.stderr


def test_the_format_doc_lists_every_widget_parameter():
    from dataclasses import fields

    from nnsim.lessons.params import WIDGET_PARAMS

    doc = (HERE.parents[1] / "docs" / "lesson-format.md").read_text()
    for name, spec in WIDGET_PARAMS.items():
        assert f"### `{name}`" in doc
        for f in fields(spec):
            assert f"| `{f.name}` |" in doc, (name, f.name)


def test_a_block_can_ask_for_a_prediction_first(tmp_path):
    path = tmp_path / "p.md"
    path.write_text(
        '+++\ntitle = "P"\nsection = 1\nsummary = "s"\n+++\n```nnsim\nwidget = "softmax"\n'
        'predict = "Guess?"\npredict_choices = ["a", "b"]\npredict_answer = 1\n```\n'
        '---\n```nnsim\nwidget = "softmax"\npredict = "Guess?"\npredict_choices = ["a"]\n```\n',
        encoding="utf-8",
    )
    lesson = parse_lesson(path)
    block = lesson.steps[0].blocks[0]
    assert block.params == SoftmaxParams() and block.predict == QuizParams(
        "Guess?", ["a", "b"], 1, "Now see what the engine computes."
    )
    assert any("predict first: a quiz needs at least two choices" in e for e in lesson.errors)
