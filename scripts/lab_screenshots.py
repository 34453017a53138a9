"""The README's pictures of the lab, drawn by the app itself (SVG, 120×40).

    python scripts/lab_screenshots.py [--out docs/screenshots] [--only export|link]

Trains the default CNN on mnist-mini in the lab (and a ViT beside it for the comparison), then
saves: the curves, inside the network, the comparison, and a digit drawn with the mouse. Then a
run exported to PyTorch from the lab's files (`e`). Then lesson 8's "Try it in the lab" step, and the
lab its link opens (cross-entropy against focal loss), compared once both runs have finished.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


async def shoot(out: Path) -> None:
    from textual.widgets import Select

    from nnsim.engine.config import TrainConfig
    from nnsim.tui.app import NnsimApp
    from nnsim.tui.progress import ProgressStore
    from tests.tui.conftest import settle
    from tests.tui.strokes import DIGITS
    from tests.tui.test_lab import draw

    app = NnsimApp(progress=ProgressStore(in_memory=True), lab=TrainConfig(model="cnn", data="mnist-mini"))
    async with app.run_test(size=(120, 40)) as pilot:
        lab = app.screen
        lab.query_one("#lab-compare", Select).value = "model-vit"
        await pilot.press("space")
        while lab.session is None or lab.session.state != "finished" or not all(f.reason for f in lab.compared):
            await pilot.pause(0.2)
        await pilot.pause(0.5)
        app.save_screenshot(str(out / "lab-curves.svg"))
        for key, name in (("2", "lab-inside"), ("3", "lab-compare")):
            await pilot.press(key)
            await pilot.pause(0.5)
            app.save_screenshot(str(out / f"{name}.svg"))
        await pilot.press("1", "d")
        await draw(pilot, DIGITS[3])
        await pilot.pause(0.3)
        await settle(pilot)
        app.save_screenshot(str(out / "lab-draw.svg"))


async def shoot_export(out: Path) -> None:
    from nnsim.engine.trainer import TrainConfig
    from nnsim.tui.app import NnsimApp
    from nnsim.tui.progress import ProgressStore

    app = NnsimApp(progress=ProgressStore(in_memory=True), lab=TrainConfig(model="cnn", data="mnist-mini", epochs=2))
    async with app.run_test(size=(120, 40)) as pilot:
        lab = app.screen
        await pilot.press("space")
        while lab.session is None or lab.session.state != "finished":
            await pilot.pause(0.2)
        await pilot.click("#lab-export")
        await pilot.pause(0.5)
        app.save_screenshot(str(out / "lab-export.svg"))


async def shoot_link(out: Path) -> None:
    from nnsim.tui.app import NnsimApp
    from nnsim.tui.progress import ProgressStore
    from nnsim.tui.screens.lab import LabScreen
    from tests.tui.conftest import LESSONS, settle
    from tests.tui.test_lab_links import lab_links

    (step, _), *_ = lab_links("08")
    app = NnsimApp(progress=ProgressStore(in_memory=True), lesson=next(LESSONS.glob("08-*.md")))
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(step):
            await pilot.press("right")
        await settle(pilot)
        app.save_screenshot(str(out / "lesson-lab-link.svg"))
        await pilot.press("L")
        while not isinstance(app.screen, LabScreen):
            await pilot.pause(0.2)
        lab = app.screen
        while lab.session is None or lab.session.state != "finished" or not all(f.reason for f in lab.compared):
            await pilot.pause(0.2)
        await pilot.press("3")
        await pilot.pause(0.5)
        app.save_screenshot(str(out / "lab-from-lesson.svg"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--only", choices=("export", "link"), help="take only these pictures")
    args = parser.parse_args()
    os.environ.setdefault("NNSIM_HOME", tempfile.mkdtemp(prefix="nnsim-shots-"))
    if args.only is None:
        asyncio.run(shoot(args.out.resolve()))
    if args.only in (None, "export"):
        asyncio.run(shoot_export(args.out.resolve()))
    if args.only in (None, "link"):
        asyncio.run(shoot_link(args.out.resolve()))


if __name__ == "__main__":
    main()
