"""How many browser tabs one machine serves: N tabs at once each draw home, then open a lesson.

    python benchmarks/serve_tabs.py [--tabs 1 5 10 20]

Starts `nnsim serve` on a free loopback port (and only there), opens N web sockets at once as
browser tabs do (`/ws?width=120&height=40`), and for each tab times how long until the home screen
is drawn and, after Enter, the first lesson step. Reports the median and slowest tab, and the
memory (RSS) of the app processes, per tab. Every wait is bounded; the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402

from tests.test_serve import Tab, free_port  # noqa: E402  (the same tab the end-to-end test drives)

LIMIT = 120.0  # seconds one measurement may take in all


async def one_tab(session, port: int, start: float) -> tuple[float, float]:
    websocket = await session.ws_connect(f"ws://127.0.0.1:{port}/ws?width=120&height=40")
    tab = Tab(websocket)
    await tab.until("Why it matters")
    home = time.perf_counter() - start
    await tab.press("\r")
    await tab.until("Step 1/")
    lesson = time.perf_counter() - start
    return home, lesson, websocket


def descendants(pid: int) -> list[str]:
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return children + [grandchild for child in children for grandchild in descendants(int(child))]


def app_memory_mib(server_pid: int) -> list[float]:
    """RSS of each app process (python -m nnsim) the server started for a tab, in MiB."""
    sizes = []
    for pid in descendants(server_pid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_text(errors="replace").split("\0")
        except OSError:
            continue
        if not (Path(argv[0]).name.startswith("python") and argv[1:3] == ["-m", "nnsim"]):
            continue  # the shell textual-serve starts it through, or something else
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        rss = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
        sizes.append(int(rss.split()[1]) / 1024)
    return sizes


async def measure(port: int, server_pid: int, tabs: int):
    async with aiohttp.ClientSession() as session:
        start = time.perf_counter()
        results = await asyncio.wait_for(asyncio.gather(*(one_tab(session, port, start) for _ in range(tabs))), LIMIT)
        memory = app_memory_mib(server_pid)
        for _, _, websocket in results:
            await websocket.close()
    return [r[0] for r in results], [r[1] for r in results], memory


def start_server(port: int, env: dict) -> subprocess.Popen:
    """`nnsim serve` on loopback at `port`, quiet, with `env`."""
    return subprocess.Popen(
        [sys.executable, "-m", "nnsim", "serve", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tabs", type=int, nargs="+", default=[1, 5, 10])
    args = parser.parse_args()
    print("| tabs at once | home drawn: median / slowest | lesson step: median / slowest | memory per tab |")
    print("|---|---|---|---|")
    for tabs in args.tabs:
        port = free_port()
        with tempfile.TemporaryDirectory() as home:
            server = start_server(port, {**os.environ, "NNSIM_HOME": home})
            try:
                time.sleep(1.5)
                homes, lessons, memory = asyncio.run(measure(port, server.pid, tabs))
            finally:
                server.terminate()
                server.wait(timeout=10)
        per_tab = f"{statistics.median(memory):.0f} MiB" if memory else "–"
        print(
            f"| {tabs} | {statistics.median(homes):.2f} s / {max(homes):.2f} s "
            f"| {statistics.median(lessons):.2f} s / {max(lessons):.2f} s | {per_tab} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
