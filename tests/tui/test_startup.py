"""Start-up stays light (`nnsim serve` end to end: tests/test_serve.py)."""

import os
import subprocess
import sys

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
