"""The lab's curves on a log scale: drawn again and again, as training redraws them, without a crash;
the inside view's pictures, drawn as segments, cell for cell what half_blocks draws."""

import math

import numpy as np
import pytest
from rich.console import Console
from rich.text import Text
from textual.app import App, ComposeResult
from textual_plotext import PlotextPlot

from nnsim.tui.images import HalfBlockTiles, half_blocks
from nnsim.tui.live.lab_figures import LabFigures
from nnsim.tui.widgets.lab.views import draw_curves


class Plots(App):
    def compose(self) -> ComposeResult:
        yield PlotextPlot(id="loss")
        yield PlotextPlot(id="accuracy")


async def test_the_log_scale_survives_every_redraw_and_plots_log10_of_the_losses():
    losses = [2.0 * 0.9**step for step in range(60)]  # from 2 down to 0.004: both sides of 1
    figures = LabFigures(
        step=60,
        losses=losses,
        smoothed=losses,
        accuracies=[0.5] * 60,
        epochs_at=[30, 60],
        val_losses=[0.3, 0.02],
        val_accuracies=[0.8, 0.9],
    )
    app = Plots()
    async with app.run_test(size=(100, 40)) as pilot:
        loss, accuracy = app.query_one("#loss", PlotextPlot), app.query_one("#accuracy", PlotextPlot)
        for _ in range(4):  # each redraw of a running lab draws the whole figure again
            draw_curves(loss, accuracy, figures, log_scale=True)
            await pilot.pause()
            assert loss.plt.build()  # plotext lays out the figure here; a double log failed at this point
        drawn = [y for ys in loss.plt._active.monitor.y for y in ys]
        assert min(drawn) == math.log10(min(losses)) and max(drawn) == math.log10(max(losses))
        draw_curves(loss, accuracy, figures, log_scale=False)  # and back to plain numbers
        drawn = [y for ys in loss.plt._active.monitor.y for y in ys]
        assert min(drawn) == min(losses)


def cells(renderable, width: int = 80) -> list[list[tuple]]:
    """What a renderable puts in each cell: (character, colour, background), line by line."""
    console = Console(width=width, color_system="truecolor", force_terminal=True)
    lines = console.render_lines(renderable, console.options, pad=False)
    found = [
        [
            (char, s.style.color if s.style else None, s.style.bgcolor if s.style else None)
            for s in line
            for char in s.text
        ]
        for line in lines
    ]
    return [line for line in found if line]


def tiles_in_rows(tiles: list[Text], per_row: int, gap: str = " ") -> Text:
    """Images drawn with half_blocks (all the same size) side by side, `per_row` to a row, as Texts:
    how the app laid tiles out before HalfBlockTiles (the layout it must keep)."""
    text = Text()
    lines = [tile.split("\n") for tile in tiles]
    for first in range(0, len(lines), per_row):
        row = lines[first : first + per_row]
        for line in range(len(row[0])):
            for tile in row:
                text.append_text(tile[line])
                text.append(gap)
            text.append("\n")
    return text


@pytest.mark.parametrize("height", [28, 7])  # an odd height's last row of cells has no lower pixel
def test_the_inside_views_tiles_draw_the_cells_half_blocks_drew(height):
    rng = np.random.default_rng(height)
    images = [rng.random((height, 6, 3)) for _ in range(5)]
    images[0][:, :3] = 0.5  # neighbours of one colour
    expected = cells(tiles_in_rows([half_blocks(image) for image in images], 3, gap="  "))
    assert cells(HalfBlockTiles(images, 3, gap="  ")) == expected
