"""Try `nnsim serve` in a real browser: Chromium (Debian's) driven by Playwright, loopback only.

    pip install playwright && python scripts/browser_check.py [--out docs/screenshots/serve.png]

Starts `nnsim serve` on a free loopback port, opens the page, lets the app draw its home screen
in the page's terminal (saved as OUT-home.png), clicks into it, opens the first lesson with Enter,
moves to its second step with →, and saves that screen as OUT; then opens the lab with l, trains
the default CNN with space and saves the finished run as OUT-lab.png. Not part of the test suite (it needs a browser);
tests/test_serve.py checks the same path over the web socket in CI.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.test_serve import free_port  # noqa: E402


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots" / "serve.png")
    parser.add_argument("--browser", default="/usr/bin/chromium")
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as home:
        server = subprocess.Popen(
            [sys.executable, "-m", "nnsim", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env={**os.environ, "NNSIM_HOME": home},
        )
        try:
            time.sleep(2)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=args.browser, args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(f"http://127.0.0.1:{port}/", timeout=30_000)
                # The terminal draws on a canvas: there is no text in the page to wait for, so wait,
                # and look at the screenshots (home, then the lesson).
                time.sleep(4)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out.with_name(args.out.stem + "-home.png")))
                page.mouse.click(640, 400)
                page.keyboard.press("Enter")
                time.sleep(3)
                page.keyboard.press("ArrowRight")
                time.sleep(3)
                page.screenshot(path=str(args.out))
                page.keyboard.press("l")
                time.sleep(2)
                page.keyboard.press(" ")
                time.sleep(40)  # the kernels' first compile, then five epochs
                page.screenshot(path=str(args.out.with_name(args.out.stem + "-lab.png")))
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
