"""`nnsim serve` end to end: what a browser tab does, over the same web socket, on loopback only.

The page's script opens ws://HOST:PORT/ws?width=W&height=H, receives what the app draws (terminal
output in binary frames) and sends keys as ["stdin", text]. These tests do the same with aiohttp.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

aiohttp = pytest.importorskip("aiohttp")

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>]|\x1b\][^\x07]*\x07")
TIMEOUT = 30.0  # seconds any one thing may take before the test fails instead of hanging


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(tmp_path: Path, *flags: str):
    """`nnsim serve` on a free loopback port, stopped afterwards; yields the port."""
    port = free_port()
    env = {**os.environ, "NNSIM_HOME": str(tmp_path / "home"), "NUMBA_ENABLE_CUDASIM": "0"}
    server = subprocess.Popen(
        [sys.executable, "-m", "nnsim", "serve", "--host", "127.0.0.1", "--port", str(port), *flags],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        else:
            pytest.fail("nnsim serve did not start listening")
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


class Tab:
    """One browser tab: a web socket to the app, and the text it has drawn so far."""

    def __init__(self, websocket):
        self.websocket = websocket
        self.drawn = ""

    async def until(self, words: str, seconds: float = TIMEOUT) -> None:
        """Read what the app draws until `words` appear on its screen."""
        deadline = time.monotonic() + seconds
        while words not in self.screen():
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"the app never drew {words!r}; last drawn: {self.screen()[-400:]!r}")
            try:
                message = await asyncio.wait_for(self.websocket.receive(), left)
            except TimeoutError:
                continue
            if message.type == aiohttp.WSMsgType.BINARY:
                self.drawn += message.data.decode("utf-8", "replace")
            elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                pytest.fail(f"the app closed its web socket; it drew: {self.screen()[-400:]!r}")

    def screen(self) -> str:
        return " ".join(ANSI.sub(" ", self.drawn).split())

    async def press(self, keys: str) -> None:
        self.drawn = ""
        await self.websocket.send_json(["stdin", keys])


async def open_tab(session, port: int) -> Tab:
    websocket = await session.ws_connect(f"ws://127.0.0.1:{port}/ws?width=120&height=40")
    return Tab(websocket)


def test_the_page_loads_and_the_app_runs_in_it(tmp_path):
    """Home is drawn over the web socket; Enter opens the first lesson at its first step; l the lab."""

    async def browse(port):
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/") as page:
                assert "/ws" in await page.text()
            tab = await open_tab(session, port)
            await tab.until("Why it matters")
            await tab.press("\r")
            await tab.until("Step 1/")
            await tab.until("image classifier")
            await tab.press("l")  # the lab, in the browser too
            await tab.until("Lab: train a network")
            await tab.press(" ")  # and it trains there: in the tab's own folder, not the server's
            await tab.until("running: epoch", 3 * TIMEOUT)
            await tab.press("x")
            await tab.until("stopped after", 3 * TIMEOUT)
            await tab.websocket.close()

    with serving(tmp_path) as port:
        run(browse(port), 8 * TIMEOUT)


def run(coroutine, seconds: float = 3 * TIMEOUT):
    """Run a browsing coroutine, failing (never hanging) if it takes longer than `seconds`."""
    try:
        asyncio.run(asyncio.wait_for(coroutine, seconds))
    except TimeoutError:
        pytest.fail(f"browsing took longer than {seconds:.0f} s")


def test_the_server_compiles_the_kernels_once_for_all_its_tabs_and_its_tabs_start_no_warm_up(monkeypatch):
    import argparse

    import textual_serve.server

    from nnsim import cli
    from nnsim.engine.backends import warm
    from nnsim.serving import SERVED
    from nnsim.tui import app as app_module

    waits_for_its_input = [sys.executable, "-c", "import sys; sys.stdin.read()"]
    monkeypatch.setattr(warm, "background_command", lambda: waits_for_its_input)
    monkeypatch.setenv(SERVED, "")  # (so that what cmd_serve sets is undone after the test)
    seen = {}

    class Server:
        def __init__(self, command, **options):
            pass

        def serve(self):  # while the server serves: one warm-up running, and a tab's app starts none
            seen["warm-ups"] = [line for line in _processes() if "sys.stdin.read()" in line]
            monkeypatch.setenv("TEXTUAL_DRIVER", "textual.drivers.headless_driver:HeadlessDriver")
            cli._run_app(lesson=None)

    class App:
        def __init__(self, **options):
            seen["tab's warm-up"] = options["warm_up"]
            self.return_code = 0

        def run(self):
            pass

    monkeypatch.setattr(textual_serve.server, "Server", Server)
    monkeypatch.setattr(app_module, "NnsimApp", App)
    cli.cmd_serve(argparse.Namespace(files=None, host="127.0.0.1", port=free_port()))
    assert len(seen["warm-ups"]) == 1 and seen["tab's warm-up"] is None
    assert not [line for line in _processes() if "sys.stdin.read()" in line]  # ended with the server


def _processes() -> list[str]:
    """The command lines of this process's children."""
    children = subprocess.run(["pgrep", "-P", str(os.getpid())], capture_output=True, text=True).stdout.split()
    lines = []
    for pid in children:
        try:
            lines.append(Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " "))
        except OSError:
            pass
    return lines
