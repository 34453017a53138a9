"""Image files to tensors: the first step of every lesson, pixels become numbers in 0..1.

A grayscale image becomes X ∈ ℝ^(H×W) and a colour one X ∈ ℝ^(3×H×W). Whatever Pillow can read
is accepted: EXIF rotation is applied, palettes and alpha are flattened, CMYK becomes RGB, 16-bit
and float images are scaled to 0..1, and an animation gives its first frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nnsim.errors import NnsimError


@dataclass
class LoadedImage:
    """The tensor and what was done to get it, in words (for `nnsim predict` and the app)."""

    tensor: np.ndarray  # (H, W) or (3, H, W), float32 in 0..1
    original_size: tuple[int, int]  # (width, height) as stored in the file
    original_mode: str
    notes: list[str] = field(default_factory=list)


def _open(path: Path):
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise NnsimError(f"{path}: no such file")
    if path.is_dir():
        raise NnsimError(f"{path}: is a folder, not an image")
    try:
        image = Image.open(path)
        image.load()
    except UnidentifiedImageError:
        raise NnsimError(f"{path}: not an image file Pillow can read") from None
    except (OSError, ValueError, SyntaxError) as error:
        raise NnsimError(f"{path}: the image is damaged or truncated ({error})") from None
    except Image.DecompressionBombError as error:
        raise NnsimError(f"{path}: {error}") from None
    return image


def load_image(path, mode: str | None = None, size: tuple[int, int] | None = None) -> LoadedImage:
    """Read an image file as a float32 tensor in 0..1.

    mode: "L" (gray, H×W) or "RGB" (3×H×W); None keeps gray images gray and makes others RGB.
    size: (width, height) to resize to, or None to keep the file's size.
    """
    from PIL import ImageOps

    image = _open(path)
    notes: list[str] = []
    original_size, original_mode = image.size, image.mode
    if getattr(image, "n_frames", 1) > 1:
        image.seek(0)
        notes.append(f"used the first of {image.n_frames} frames")
    if image.getexif().get(0x0112, 1) not in (0, 1):  # 0x0112: the EXIF orientation tag
        image = ImageOps.exif_transpose(image)
        notes.append("turned upright as its EXIF orientation says")
    gray = _to_gray_or_rgb(image, notes)
    kind = "RGB" if gray.mode == "RGB" else "L"  # "F" (high bit depth) is gray too
    if mode is not None and mode != kind:
        notes.append("converted colour to grayscale" if mode == "L" else "converted grayscale to RGB")
        gray = gray.convert("L").convert(mode) if gray.mode == "F" else gray.convert(mode)
    image = gray
    if size is not None and image.size != tuple(size):
        from PIL import Image

        notes.append(f"resized {image.size[0]}×{image.size[1]} to {size[0]}×{size[1]}")
        image = image.resize(
            tuple(size), Image.Resampling.LANCZOS if max(image.size) > max(size) else Image.Resampling.BILINEAR
        )
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    tensor = pixels if image.mode in ("L", "F") else np.ascontiguousarray(pixels.transpose(2, 0, 1))
    return LoadedImage(np.clip(tensor, 0.0, 1.0), original_size, original_mode, notes)


def _to_gray_or_rgb(image, notes: list[str]):
    """Any Pillow mode to 8-bit "L" or "RGB", scaling high bit depths and flattening alpha on white."""
    mode = image.mode
    if mode in ("L", "RGB"):
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or values.max() > 255 else 255.0
        if mode == "F" and values.max() <= 1.0:
            top = 1.0
        notes.append(f"scaled {mode} pixels to 0..1 (every level kept)")
        from PIL import Image

        # a float image ("F") on the 0..255 scale of the others: no level is lost to 8 bits
        return Image.fromarray(np.clip(values / top * 255.0, 0, 255).astype(np.float32), mode="F")
    if mode == "1":
        return image.convert("L")
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        notes.append("expanded the palette")
        mode = image.mode
    if mode in ("LA", "RGBA", "La", "RGBa", "PA"):
        from PIL import Image

        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        notes.append("flattened transparency onto white")
        flat = Image.alpha_composite(background, rgba).convert("RGB")
        return flat.convert("L") if mode in ("LA", "La") else flat
    if mode == "CMYK":
        notes.append("converted CMYK to RGB")
    return image.convert("RGB")


def image_to_pixels(tensor: np.ndarray) -> np.ndarray:
    """A (H,W) or (C,H,W) tensor in 0..1 back to 8-bit pixels (H,W) or (H,W,3) for saving."""
    array = np.asarray(tensor)
    if array.ndim == 3:
        array = array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0)
    return (np.clip(array, 0, 1) * 255 + 0.5).astype(np.uint8)


def save_image(tensor: np.ndarray, path) -> None:
    from PIL import Image

    Image.fromarray(image_to_pixels(tensor)).save(path)
