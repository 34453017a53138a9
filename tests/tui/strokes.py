"""Ten digits as pen strokes, the way a person draws them: (x, y) points as fractions of the
canvas, x to the right and y down. Drawn by the tests, never taken from MNIST."""

import math


def arc(cx, cy, rx, ry, start, end, points=24):
    """Points on an ellipse from angle `start` to `end` (degrees, 0 = right, 90 = down)."""
    return [
        (
            cx + rx * math.cos(math.radians(start + (end - start) * i / points)),
            cy + ry * math.sin(math.radians(start + (end - start) * i / points)),
        )
        for i in range(points + 1)
    ]


DIGITS = {
    0: [arc(0.5, 0.5, 0.22, 0.32, -90, 270)],
    1: [[(0.42, 0.25), (0.52, 0.15), (0.52, 0.85)]],
    2: [arc(0.5, 0.32, 0.2, 0.17, 190, 380) + [(0.3, 0.83), (0.72, 0.83)]],
    3: [arc(0.48, 0.32, 0.2, 0.16, 200, 450) + arc(0.48, 0.65, 0.22, 0.18, 270, 520)],
    4: [[(0.58, 0.15), (0.25, 0.6), (0.75, 0.6)], [(0.6, 0.35), (0.6, 0.88)]],
    5: [[(0.7, 0.15), (0.35, 0.15), (0.32, 0.45)] + arc(0.5, 0.62, 0.22, 0.2, 220, 500)],
    6: [[(0.62, 0.12)] + arc(0.5, 0.65, 0.2, 0.2, 200, 560)],
    7: [[(0.28, 0.18), (0.72, 0.18), (0.42, 0.88)]],
    8: [arc(0.5, 0.32, 0.17, 0.16, 90, 450) + arc(0.5, 0.67, 0.21, 0.19, -90, 270)],
    9: [arc(0.5, 0.33, 0.2, 0.17, 0, 360) + [(0.7, 0.33), (0.64, 0.88)]],
}
