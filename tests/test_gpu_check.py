"""benchmarks/gpu_check.sh, the one script for a GPU machine, run here in Numba's CUDA simulator (--sim).

On a GPU it measures; here it must run every part end to end with tiny shapes and write a whole
report, so that the GPU's minutes go to measuring and not to fixing the script.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("numba.cuda", reason="the cuda extra (numba-cuda) is not installed")
# the module's tests share one run of the script (see simulated_run), so they go to one worker
# (--dist loadgroup): another worker would sit waiting on the lock while the first one runs it
pytestmark = [pytest.mark.cuda_sim, pytest.mark.xdist_group("gpu_check_sim")]

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
PARTS = ["environment", "auto", "parity", "losses", "matmul", "steps", "mnist", "bench"]


def run_check(out: Path, *flags: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "OUT"}
    env["PYTHON"] = sys.executable
    return subprocess.run(["bash", str(SCRIPT), *flags, str(out)], env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def simulated_run(tmp_path_factory, worker_id):
    """One run of the script in the simulator (about 100 s), shared by the parallel workers: the first
    to need it runs it under a file lock, a worker that needs it too waits for it and reads it back."""
    import fcntl

    shared = tmp_path_factory.getbasetemp()
    if worker_id != "master":  # each xdist worker's temporary folder is inside this run's own
        shared = shared.parent
    out, record = shared / "gpu_check-sim", shared / "gpu_check-sim.json"
    with open(shared / "gpu_check-sim.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not record.exists():
            out.mkdir()
            done = run_check(out, "--sim")
            record.write_text(json.dumps({"returncode": done.returncode, "stdout": done.stdout, "stderr": done.stderr}))
    done = subprocess.CompletedProcess(["gpu_check.sh", "--sim"], **json.loads(record.read_text()))
    return done, out, json.loads((out / "gpu_check.json").read_text())


def test_every_part_runs_in_the_simulator(simulated_run):
    done, _, report = simulated_run
    statuses = {name: part["status"] for name, part in report["parts"].items()}
    assert list(statuses) == PARTS
    assert statuses.pop("bench").startswith("skipped: nnsim bench times full-size")
    assert statuses == dict.fromkeys(statuses, "ok"), done.stdout[-3000:]
    assert done.returncode == 0, done.stderr[-3000:]
    assert report["simulator"] is True


def test_each_part_keeps_its_figures(simulated_run):
    _, _, report = simulated_run
    data = {name: part["data"] for name, part in report["parts"].items()}
    assert data["environment"]["simulator"] is True and data["environment"]["packages"]["numpy"]
    assert data["auto"] == {**data["auto"], "picked": data["auto"]["expected"], "ok": True}
    assert data["parity"]["passed"] > 0 and data["parity"]["failed"] == 0
    assert [m["model"] for m in data["losses"]["models"]] == ["mlp", "cnn", "vit"]
    assert all(m["max_relative_error"] <= 1e-4 for m in data["losses"]["models"])
    assert [r["n"] for r in data["matmul"]["sizes"]] == [7, 17]
    assert all(r["max_relative_error"] < 1e-4 for r in data["matmul"]["sizes"])
    assert data["steps"]["rows"][0]["cuda_ms"] > 0 and data["steps"]["cnn_cpu_2_threads"]["cpu_ms"] > 0
    assert data["mnist"]["cuda"]["test_accuracy"] == data["mnist"]["cpu"]["test_accuracy"]


def test_the_report_has_a_verdict_on_each_acceptance_point(simulated_run):
    _, out, report = simulated_run
    verdicts = {point["point"]: point["verdict"] for point in report["acceptance"]}
    assert verdicts[1] == verdicts[4] == verdicts[5] == "pass"
    assert verdicts[2] == "fail"  # the simulator runs each GPU thread as Python: far slower than cpu
    matmul = report["acceptance"][2]
    if "cublas_gflops" not in report["parts"]["matmul"]["data"]["sizes"][-1]:  # no PyTorch with CUDA here
        assert matmul["verdict"] == "not measured" and "cuBLAS not measured" in matmul["evidence"]
    markdown = (out / "gpu_check.md").read_text()
    assert "Numba's CUDA simulator, tiny shapes: a test of the script, not evidence" in markdown
    assert "3 of 5 points pass." in markdown
    for name in PARTS:
        assert f"\n## {name}: " in markdown
    assert "| CNN | 2 |" in markdown and "| 17² |" in markdown
    log = (out / "gpu_check.log").read_text()
    assert "===== parity" in log and "passed" in log


def test_a_spent_budget_skips_the_parts_and_still_reports(tmp_path):
    done = run_check(tmp_path, "--sim", "--budget", "5")
    assert done.returncode == 1
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert {part["status"] for part in report["parts"].values()} == {"skipped: the budget of 5 s was spent"}
    assert {point["verdict"] for point in report["acceptance"]} == {"not measured"}
    assert "0 of 5 points pass." in (tmp_path / "gpu_check.md").read_text()


def test_a_timed_out_part_is_reported_with_what_it_measured(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import gpu_check

    work = tmp_path / "work"
    work.mkdir()
    # matmul measured 1024² and was stopped by `timeout` (exit 124) before 4096²
    row = {"n": 1024, "max_relative_error": 1e-7, "ours_gflops": 5e3, "cublas_gflops": 2e4, "percent_of_cublas": 25.0}
    (work / "matmul.status").write_text("124 90 90\n")
    (work / "matmul.json").write_text(json.dumps({"cublas": "PyTorch 2.11, TF32 off", "sizes": [row]}))
    (work / "auto.status").write_text("0 3 90\n")
    (work / "auto.json").write_text(json.dumps({"picked": "cpu", "expected": "cuda", "cuda": "usable", "ok": False}))
    report = gpu_check.summary(work, tmp_path / "out", sim=False, cpu_cnn512_ms=None)
    assert report["parts"]["matmul"]["status"] == "timed out after 90 s"
    assert report["parts"]["parity"]["status"] == "not run"
    assert [p["verdict"] for p in report["acceptance"]] == ["not measured"] * 4 + ["fail"]
    assert report["acceptance"][2]["evidence"] == "matmul: stopped before 4096² (timed out after 90 s)"
    markdown = (tmp_path / "out" / "gpu_check.md").read_text()
    assert "| 1024² | 5000 | 20000 | 25 % | 1.0e-07 |" in markdown  # what it measured before the timeout
    assert "| matmul | timed out after 90 s | 90 |" in markdown
