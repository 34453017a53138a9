"""Start-up stays light, and `nnsim serve` answers a browser."""

import os
import socket
import subprocess
import sys
import time
import urllib.request

PAINT_WITHOUT_NUMBA = """
import asyncio, sys
from nnsim.tui.app import NnsimApp
from nnsim.tui.progress import ProgressStore

async def main():
    app = NnsimApp(progress=ProgressStore())
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.screen.query_one("#lessons").option_count >= 5
        print("numba" in sys.modules, "nnsim.engine.backends.cpu" in sys.modules)

asyncio.run(main())
"""


def test_home_paints_before_numba_is_imported(tmp_path):
    env = {**os.environ, "NNSIM_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", PAINT_WITHOUT_NUMBA], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_serve_answers_a_browser(tmp_path):
    port = _free_port()
    env = {**os.environ, "NNSIM_HOME": str(tmp_path)}
    server = subprocess.Popen(
        [sys.executable, "-m", "nnsim", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        page = None
        for _ in range(100):
            try:
                page = urllib.request.urlopen(f"http://localhost:{port}/", timeout=2).read().decode()
                break
            except OSError:
                time.sleep(0.2)
        assert page is not None, "nnsim serve did not answer"
        assert "nnsim" in page and "ws" in page  # the page that opens the app over a web socket
    finally:
        server.terminate()
        server.wait(timeout=10)
