"""A braille canvas: lines drawn at 2×4 dots a terminal cell, each cell coloured by its strongest line."""

from __future__ import annotations

import numpy as np
from rich.style import Style
from rich.text import Text

# the bit of each dot (column dx, row dy) in a braille character, U+2800 + bits
DOT_BITS = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]], dtype=np.uint16)


class BrailleCanvas:
    def __init__(self, columns: int, rows: int):
        self.columns, self.rows = columns, rows
        self.bits = np.zeros((rows, columns), dtype=np.uint16)
        self.strength = np.full((rows, columns), -1.0)
        self.colours: dict[tuple[int, int], str] = {}
        self.labels: dict[tuple[int, int], tuple[str, Style | str]] = {}

    @property
    def width(self) -> int:  # in dots
        return 2 * self.columns

    @property
    def height(self) -> int:
        return 4 * self.rows

    def line(self, x0: float, y0: float, x1: float, y1: float, colour: str, strength: float) -> None:
        """A line between two dot positions; where lines cross, the stronger one gives the colour."""
        count = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
        xs = np.rint(np.linspace(x0, x1, count)).astype(int)
        ys = np.rint(np.linspace(y0, y1, count)).astype(int)
        inside = (xs >= 0) & (xs < self.width) & (ys >= 0) & (ys < self.height)
        for x, y in zip(xs[inside], ys[inside], strict=True):
            row, col = y // 4, x // 2
            self.bits[row, col] |= DOT_BITS[y % 4, x % 2]
            if strength > self.strength[row, col]:
                self.strength[row, col] = strength
                self.colours[row, col] = colour

    def label(self, column: int, row: int, text: str, style: Style | str = "") -> None:
        """Text placed over the dots, starting at a cell."""
        for offset, char in enumerate(text):
            if 0 <= column + offset < self.columns and 0 <= row < self.rows:
                self.labels[row, column + offset] = (char, style)

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="crop")
        for row in range(self.rows):
            for col in range(self.columns):
                if (row, col) in self.labels:
                    char, style = self.labels[row, col]
                    text.append(char, style)
                elif self.bits[row, col]:
                    text.append(chr(0x2800 + int(self.bits[row, col])), self.colours.get((row, col), ""))
                else:
                    text.append(" ")
            if row < self.rows - 1:
                text.append("\n")
        return text
