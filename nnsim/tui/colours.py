"""Colour scales the widgets share, so that a weight looks the same on every screen."""

from __future__ import annotations


def weight_colour(value: float, scale: float) -> str:
    """Blue for positive, red for negative, brighter the larger |value| is against `scale`."""
    strength = min(1.0, abs(value) / scale) if scale else 0.0
    level = int(60 + 160 * strength)
    return f"rgb(40,{level // 2 + 40},{level})" if value >= 0 else f"rgb({level},40,50)"
