"""Numbers as the lessons print them: a real minus sign, no "-0.00", brackets inside formulas."""

from __future__ import annotations


def number(value: float, places: int = 2) -> str:
    """A number with a proper minus sign, and never "-0.00"."""
    text = f"{value:.{places}f}"
    if float(text) == 0:
        text = text.lstrip("-")
    return text.replace("-", "−")


def signed(value: float, places: int = 2) -> str:
    """A number as it reads inside a formula: negative ones in brackets."""
    text = number(value, places)
    return f"({text})" if text.startswith("−") else text
