"""Tensors drawn as terminal cells, and lesson image names turned into files.

A cell holds two pixels: the upper half block "▀" takes the top pixel as its colour and the bottom
pixel as its background, so an H×W image needs W columns and ⌈H/2⌉ rows.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

from nnsim import serving
from nnsim.data.images import LoadedImage, load_image
from nnsim.errors import NnsimError
from nnsim.resources import shipped_path

CHANNEL_TINTS = {"R": (1.0, 0.0, 0.0), "G": (0.0, 1.0, 0.0), "B": (0.0, 0.4, 1.0)}
FRAME = np.array([1.0, 0.85, 0.0])  # the zoom window's outline: yellow, mixed into the pixels


def resolve_image(name: str, base: Path | None = None) -> Path:
    """A lesson's image name: an existing path, relative to the lesson file, or under sample_images/.

    Served to a browser (`nnsim serve`), relative names are looked up in the shared folder rather
    than the server's working folder, and the file found must lie in an allowed folder.
    """
    path = Path(name).expanduser()
    if path.is_absolute():
        candidates = [path]
    else:
        here = serving.shared_folder() if serving.served() else Path.cwd()
        candidates = [folder / path for folder in (base, here, shipped_path("sample_images")) if folder is not None]
    allowed = [c for c in candidates if serving.allows(c)]  # served: never look outside, not even to say so
    for candidate in allowed:
        if candidate.is_file():
            return candidate
    if len(allowed) < len(candidates) and not any(c.exists() for c in allowed):
        serving.refuse(name)
    raise NnsimError(f"{name}: no such image (looked beside the lesson and in nnsim's sample_images)")


def load_for_display(path: Path, largest_gray: int, largest_rgb: int) -> tuple[LoadedImage, np.ndarray]:
    """The file's own tensor, and the copy to draw: the same, or shrunk (keeping its shape) to fit."""
    loaded = load_image(path)
    largest = largest_rgb if loaded.tensor.ndim == 3 else largest_gray
    height, width = loaded.tensor.shape[-2:]
    if max(height, width) <= largest:
        return loaded, loaded.tensor
    scale = largest / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return loaded, load_image(path, size=size).tensor


def to_rgb(tensor: np.ndarray, tint: tuple[float, float, float] | None = None) -> np.ndarray:
    """(H,W) or (3,H,W) values in 0..1 as (H,W,3) colours; a 2-D tensor with a tint is one channel."""
    array = np.clip(np.asarray(tensor, dtype=np.float64), 0.0, 1.0)
    if array.ndim == 3:
        return array.transpose(1, 2, 0)
    return array[..., None] * np.asarray(tint if tint is not None else (1.0, 1.0, 1.0))


def frame_window(rgb: np.ndarray, row: int, col: int, size: int, width: int | None = None) -> np.ndarray:
    """A copy of rgb with the pixels just around the window [row:row+size, col:col+width] tinted."""
    framed = rgb.copy()
    height, image_width = rgb.shape[:2]
    top, left, bottom, right = row - 1, col - 1, row + size, col + (size if width is None else width)
    for r in range(max(top, 0), min(bottom, height - 1) + 1):
        for c in range(max(left, 0), min(right, image_width - 1) + 1):
            if r in (top, bottom) or c in (left, right):
                framed[r, c] = 0.25 * framed[r, c] + 0.75 * FRAME
    return framed


def half_blocks(rgb: np.ndarray) -> Text:
    """(H,W,3) colours in 0..1 as rows of "▀" cells, two pixels a cell."""
    pixels = (np.clip(rgb, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    height, width = pixels.shape[:2]
    text = Text(no_wrap=True, overflow="crop")
    for top in range(0, height, 2):
        for col in range(width):
            upper = _hex(pixels[top, col])
            lower = _hex(pixels[top + 1, col]) if top + 1 < height else None
            text.append("▀", Style(color=upper, bgcolor=lower))
        if top + 2 < height:
            text.append("\n")
    return text


class HalfBlockTiles:
    """Images (H,W,3 colours in 0..1) drawn as half_blocks draws them, side by side, `per_row` to a
    row (each row's cells followed by `gap`), as a Rich renderable made straight of segments, for
    pictures redrawn while a run trains: a Text with a span a cell (the lab's sixteen 28×28 weight
    images are 6,272 cells) took Textual about a second to lay out at every redraw."""

    def __init__(self, images: list[np.ndarray], per_row: int, gap: str = " "):
        self.tiles = [_cell_lines(image) for image in images]
        self.per_row, self.gap = max(1, per_row), Segment(gap)

    @property
    def tile_width(self) -> int:
        return sum(len(segment.text) for segment in self.tiles[0][0]) if self.tiles else 0

    def __rich_console__(self, console, options):
        for first in range(0, len(self.tiles), self.per_row):
            row = self.tiles[first : first + self.per_row]
            for line in range(len(row[0])):
                for tile in row:
                    yield from tile[line]
                    yield self.gap
                yield Segment.line()


def _cell_lines(rgb: np.ndarray) -> list[list[Segment]]:
    """half_blocks' cells as segments, line by line: one a cell, as half_blocks has one span a cell
    (a run of cells in one segment is drawn a little wider than its cells in some SVG viewers)."""
    pixels = (np.clip(rgb, 0.0, 1.0) * 255 + 0.5).astype(np.int64)
    codes = pixels[..., 0] << 16 | pixels[..., 1] << 8 | pixels[..., 2]  # 0xRRGGBB per pixel
    if len(codes) % 2:  # an odd last row: its cells have no lower colour
        codes = np.vstack([codes, np.full((1, codes.shape[1]), -1)])
    return [
        [Segment("▀", _cell_style(top, bottom)) for top, bottom in zip(upper, lower, strict=True)]
        for upper, lower in zip(codes[0::2].tolist(), codes[1::2].tolist(), strict=True)
    ]


@lru_cache(maxsize=8192)
def _cell_style(upper: int, lower: int) -> Style:
    """The colours of a cell's upper and lower pixel as 0xRRGGBB (lower −1: none)."""
    return Style(color=f"#{upper:06x}", bgcolor=f"#{lower:06x}" if lower >= 0 else None)


def _hex(pixel: np.ndarray) -> str:
    return f"#{int(pixel[0]):02x}{int(pixel[1]):02x}{int(pixel[2]):02x}"


def value_style(value: float, tint: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> Style:
    """A cell coloured like its pixel, with text that stays readable on it."""
    colour = (np.clip(value, 0.0, 1.0) * np.asarray(tint) * 255 + 0.5).astype(int)
    brightness = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
    return Style(bgcolor=_hex(colour), color="black" if brightness > 128 else "white")


def heat(image: np.ndarray, values: np.ndarray, colour=(1.0, 0.55, 0.1)) -> np.ndarray:
    """The image darkened, with each patch lit in `colour` by its value (0..max)."""
    rows, cols = values.shape
    p = image.shape[0] // rows
    scale = max(float(values.max()), 1e-12)
    weight = np.kron(np.clip(values / scale, 0, 1), np.ones((p, p)))
    rgb = to_rgb(image) * 0.45
    return np.clip(rgb + weight[..., None] * np.asarray(colour) * 0.8, 0, 1)


def checkerboard(image: np.ndarray, patch: int) -> np.ndarray:
    """The image with every other patch tinted, so that the cut into patches shows."""
    rgb = to_rgb(image)
    rows, cols = image.shape[0] // patch, image.shape[1] // patch
    for r in range(rows):
        for c in range(cols):
            if (r + c) % 2:
                block = rgb[r * patch : (r + 1) * patch, c * patch : (c + 1) * patch]
                block[:] = 0.6 * block + 0.4 * np.array([0.15, 0.35, 0.9])
    return rgb
