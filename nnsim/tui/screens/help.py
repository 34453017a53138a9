"""Help: the keys, the mouse, and how a lesson works."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Header, Markdown

from nnsim.tui.screens.base import NnsimScreen

HELP = """\
# Using nnsim

## Keys

| where | key | what it does |
|---|---|---|
| lesson list | ↑ ↓, Enter | choose a lesson, open it |
| lesson | → or n | next step |
| lesson | ← or p | previous step |
| lesson | Esc | back to the lesson list |
| lesson | Tab, Shift+Tab | move between the widgets of a step |
| lesson, last step | → | the next lesson |
| anywhere | l | the lab: train a network and watch it learn |
| lab | space | start, pause, resume training |
| lab | . | one step, while paused (the status shows that step's loss and update) |
| lab | x | stop (the checkpoint in "save to" keeps where it was) |
| lab | r | resume from the checkpoint in "save to" |
| lab | s | save the paused or finished run to "save to" |
| lab | e | the checkpoint in "save to" as PyTorch files, in a new folder beside it (Torch) |
| lab | y | loss curve on a log scale |
| lab | f, o | apply the training doctor's fix; open the lesson that explains it |
| lab | d | draw a digit (or type an image's path) for the network to read |
| lab | 1 2 3 4 | curves, inside the network, the comparison, the log |
| draw | mouse drag, or arrows + space | draw; c clears; Esc back to the lab |
| anywhere | ? | this help |
| anywhere | Ctrl+P | command palette: open any lesson or the lab, switch theme |
| anywhere | t | light or dark theme |
| anywhere | q | quit (your progress is saved) |

Each widget lists its own keys in the footer while it has the focus (click it, or Tab to it):
the pixel grid moves its zoom window with w a s d and switches channel with c; a neuron picks a
number with ↑ ↓ and changes it with + and −; a quiz takes the number of a choice; the
convolution stepper steps with s and runs with r; the learning loop runs one phase with s.

## Mouse

Everything works by mouse too: click a lesson to open it, the ◀ Back and Next ▶ buttons to
step, a pixel to zoom there, − and + beside a number to change it, a choice to answer a quiz.
The wheel scrolls.

## Lessons

Every number a lesson shows is computed while you watch, by nnsim's own engine: the pixel
values come from the image file, a neuron's z from a real dense layer, the network diagram from a
small network trained when the step opens. Change something and what depends on it follows.

Your progress is kept between runs (in your user data folder); the lesson list marks finished
lessons with ✓ and shows how far you got in the others.

Teachers can write their own lessons as Markdown files: see docs/lesson-format.md, check one
with `nnsim lessons check FILE` and open it with `nnsim lessons open FILE`.
"""


class HelpScreen(NnsimScreen):
    BINDINGS = [Binding("escape", "close", "Close")]

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="help"):
            yield Markdown(HELP)
        yield Footer()
        yield from self.compose_too_small()

    def action_close(self) -> None:
        self.app.pop_screen()
