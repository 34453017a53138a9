"""Where shipped files live: next to the code in a wheel, or at the top of a source checkout.

Code finds lessons, sample images and built-in data through here and never through the current
folder, so that `nnsim` works from any directory after `pip install`.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
_SHIPPED = PACKAGE_DIR / "_shipped"  # the wheel's copy (hatch force-include)
_CHECKOUT = PACKAGE_DIR.parent  # a source checkout or an editable install


def shipped_path(name: str) -> Path:
    """The folder ``name`` ("sample_images", "lessons"), from the wheel or the checkout."""
    for root in (_SHIPPED, _CHECKOUT):
        candidate = root / name
        if candidate.exists():
            return candidate
    return _SHIPPED / name


def builtin_data_path(name: str) -> Path:
    return PACKAGE_DIR / "data" / "builtin" / name


def sample_images() -> list[Path]:
    folder = shipped_path("sample_images")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in {".png", ".jpg", ".jpeg"})
