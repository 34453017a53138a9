"""The parts of benchmarks/gpu_check.sh written in Python, and its report.

    python benchmarks/gpu_check.py environment FILE     what is installed (one quick look)
    python benchmarks/gpu_check.py auto FILE            the backend that --backend auto picks
    python benchmarks/gpu_check.py bench FILE [--sim]   nnsim bench --backend cuda (--compare torch)
    python benchmarks/gpu_check.py summary WORK OUT     gpu_check.json, .md and .log from the parts

Each part writes its figures to FILE as JSON. The summary reads every part's figures, exit status
and log from WORK and writes three files to OUT, with a verdict on each of issue 29's five
acceptance points; gpu_check.sh calls it after every part, so that a run cut short still reports.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import cuda_bench

# name, what it shows: in the order gpu_check.sh runs them, the most important first
PARTS = (
    ("environment", "what is installed"),
    ("auto", "the backend --backend auto picks"),
    ("parity", "the cuda parity tests, simulator off"),
    ("losses", "three training steps against the reference's losses"),
    ("matmul", "matmul against cuBLAS FP32, TF32 off"),
    ("steps", "CNN and ViT training steps against cpu and PyTorch CUDA"),
    ("mnist", "one CNN epoch on cuda and on cpu"),
    ("bench", "nnsim bench --backend cuda --compare torch"),
)
LOG_LINES = 150  # of each part's log, in gpu_check.log


def write(path: str, data: dict) -> None:
    Path(path).write_text(json.dumps(data, indent=1))


# ------------------------------------------------------------------------------------ parts
def environment(path: str) -> None:
    from nnsim.bench import _cpu_name

    data = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": f"{_cpu_name()}, {os.cpu_count()} cores",
        "simulator": os.environ.get("NUMBA_ENABLE_CUDASIM") == "1",
        "packages": {name: _version(name) for name in ("numpy", "numba", "numba-cuda", "torch", "pytest")},
    }
    if shutil.which("nvidia-smi"):
        query = ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"]
        data["nvidia_smi"] = subprocess.run(query, capture_output=True, text=True, timeout=20).stdout.strip()
    data["numba_cuda"] = _numba_device()
    data["torch_cuda"] = _torch_device()
    write(path, data)


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _numba_device() -> str:
    try:
        from numba import cuda

        if not cuda.is_available():
            return "no GPU found"
        device = cuda.get_current_device()
        name = device.name.decode() if isinstance(device.name, bytes) else device.name
        return f"{name}, compute capability {'.'.join(map(str, device.compute_capability))}"
    except Exception as error:  # a missing package or a driver's error: reported, not raised
        return f"unusable: {type(error).__name__}: {error}"


def _torch_device() -> str:
    torch = cuda_bench.cuda_torch()
    if torch is None:
        return "not installed" if _version("torch") is None else "installed, sees no GPU"
    return f"{torch.cuda.get_device_name(0)}, CUDA {torch.version.cuda}"


def auto(path: str) -> None:
    """Which backend "auto" picks, and which it should: cuda where a real GPU runs kernels, else cpu."""
    from nnsim.engine.backends import get_backend
    from nnsim.errors import NnsimError

    try:
        gpu, why = get_backend("cuda"), None
    except NnsimError as error:
        gpu, why = None, str(error)
    real_gpu = gpu is not None and not gpu.simulated
    try:
        fallback = get_backend("cpu").name
    except NnsimError:
        fallback = "reference"
    picked, expected = get_backend("auto").name, "cuda" if real_gpu else fallback
    write(
        path,
        {
            "picked": picked,
            "expected": expected,
            "cuda": "usable" if real_gpu else ("the simulator (never picked)" if gpu else why),
            "ok": picked == expected,
        },
    )
    if picked != expected:
        raise SystemExit(f"auto picked {picked}, expected {expected}")


def bench(path: str, sim: bool, quick: bool) -> None:
    """`nnsim bench --backend cuda --compare torch --json` (without --compare when PyTorch or its CUDA is missing)."""
    from nnsim.bench import markdown

    if sim:
        write(path, {"skipped": "nnsim bench times full-size kernels and nets, too many threads for the simulator"})
        return
    torch = cuda_bench.cuda_torch() is not None  # PyTorch that sees the GPU
    command = [sys.executable, "-m", "nnsim", "bench", "--backend", "cuda", "--json"]
    command += ["--compare", "torch"] if torch else []
    command += ["--quick"] if quick else []
    shown = " ".join(["nnsim", *command[3:]])
    write(path, {"command": shown, "torch": torch})
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True)  # stderr goes to the part's log
    if done.returncode != 0:
        raise SystemExit(f"{shown} failed (exit {done.returncode})")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    write(path, {"command": shown, "torch": torch, "result": result, "markdown": markdown(result)})


# ------------------------------------------------------------------------------------ summary
def summary(work: Path, out: Path, sim: bool, cpu_cnn512_ms: float | None) -> dict:
    parts = {name: _part(work, name) for name, _ in PARTS}
    parity = _junit(work / "parity.xml")
    if parity:
        parts["parity"]["data"] = parity
    environment = parts["environment"]["data"]
    report = {
        "written": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "simulator": sim,
        "gpu": environment.get("nvidia_smi") or environment.get("numba_cuda") or "?",
        "acceptance": acceptance(parts, sim, cpu_cnn512_ms),
        "parts": parts,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=1))
    (out / "gpu_check.md").write_text("\n".join(report_markdown(report)) + "\n")
    (out / "gpu_check.log").write_text("\n".join(_logs(work)) + "\n")
    return report


def _part(work: Path, name: str) -> dict:
    """A part's status (ok, failed, timed out, skipped, not run), seconds and figures."""
    figures = work / f"{name}.json"
    try:
        data = json.loads(figures.read_text()) if figures.exists() else {}
    except json.JSONDecodeError:
        data = {}
    status_file = work / f"{name}.status"
    if not status_file.exists():
        return {"status": "not run", "data": data}
    text = status_file.read_text().strip()
    if text.startswith("skipped"):
        return {"status": f"skipped: {text.removeprefix('skipped').strip()}", "data": data}
    fields = text.split()
    rc, seconds, limit = int(fields[0]), float(fields[1]), int(fields[2])
    if rc in (124, 137):
        status = f"timed out after {limit} s"
    elif rc != 0:
        status = f"failed (exit {rc})"
    else:
        status = f"skipped: {data['skipped']}" if "skipped" in data else "ok"
    return {"status": status, "seconds": seconds, "data": data}


def _junit(path: Path) -> dict | None:
    """Counts and failed test ids from pytest's --junitxml file."""
    if not path.exists():
        return None
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError:
        return None
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    failures = []
    for case in root.iter("testcase"):
        outcome = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
        if outcome in ("failure", "error"):
            counts["failed"] += 1
            message = case.find(outcome).get("message", "").splitlines()
            failures.append(f"{case.get('name')}: {message[0] if message else outcome}")
        else:
            counts[outcome] += 1
    return {**counts, "failures": failures}


def _logs(work: Path) -> list[str]:
    lines = []
    for name, what in PARTS:
        log = work / f"{name}.log"
        if log.exists():
            text = log.read_text(errors="replace").splitlines()
            lines += [f"===== {name}: {what} (last {LOG_LINES} lines)", *text[-LOG_LINES:], ""]
    return lines


# ------------------------------------------------------------------------------------ verdicts
class MissingFigureError(Exception):
    """A figure a verdict needs was not measured (the part failed, timed out or did not run)."""


def acceptance(parts: dict, sim: bool, cpu_cnn512_ms: float | None) -> list[dict]:
    """Issue 29's five points, each pass, fail or not measured, with the figures behind it."""
    checks = (
        _parity_and_losses,
        lambda p: _speedup(p, 2 if sim else 512, cpu_cnn512_ms),
        lambda p: _matmul_share(p, 17 if sim else 4096),
        _mnist_accuracy,
        _auto,
    )
    points = []
    for number, check in enumerate(checks, start=1):
        try:
            verdict, evidence = check(parts)
        except MissingFigureError as missing:
            verdict, evidence = "not measured", str(missing)
        points.append({"point": number, "verdict": verdict, "evidence": evidence})
    return points


def _figures(parts: dict, name: str, *keys: str):
    """The part's figures, which must hold ``keys``; else MissingFigureError, with the part's status."""
    data = parts[name]["data"]
    if not data or any(key not in data for key in keys):
        raise MissingFigureError(f"{name}: {parts[name]['status']}")
    return data


def _parity_and_losses(parts):
    parity = _figures(parts, "parity", "passed")
    models = _figures(parts, "losses", "models")["models"]
    worst = max(m["max_relative_error"] for m in models)
    evidence = (
        f"parity tests: {parity['passed']} passed, {parity['failed']} failed, {parity['skipped']} skipped "
        f"({parts['parity']['status']}); losses of {', '.join(m['model'] for m in models)}: worst relative "
        f"error {worst:.1e} (limit 1e-4)"
    )
    if parity["failed"] or not all(m["ok"] for m in models):
        return "fail", evidence
    if parts["parity"]["status"] != "ok" or parity["passed"] == 0 or len(models) < 3:
        return "not measured", evidence
    return "pass", evidence


def _speedup(parts, batch: int, cpu_cnn512_ms: float | None):
    data = _figures(parts, "steps", "rows")
    row = next((r for r in data["rows"] if r["model"] == "cnn" and r["batch"] == batch), None)
    if row is None:
        raise MissingFigureError(f"steps: no CNN step at batch {batch} ({parts['steps']['status']})")
    if cpu_cnn512_ms:
        baseline, source = cpu_cnn512_ms, "the 2-core machine's figure given with --cpu-cnn512-ms"
    else:
        two = _figures(parts, "steps", "cnn_cpu_2_threads")["cnn_cpu_2_threads"]
        baseline = two["cpu_ms"]
        source = f"the cpu backend on {two['threads']} threads of this machine's {two['cpu_name']}"
    ratio = baseline / row["cuda_ms"]
    evidence = (
        f"CNN step at batch {batch}: cuda {row['cuda_ms']:.2f} ms, cpu {baseline:.2f} ms ({source}): "
        f"{ratio:.1f}× (target 10×)"
    )
    return ("pass" if ratio >= 10 else "fail"), evidence


def _matmul_share(parts, n: int):
    data = _figures(parts, "matmul", "sizes")
    row = next((r for r in data["sizes"] if r["n"] == n), None)
    if row is None:
        raise MissingFigureError(f"matmul: stopped before {n}² ({parts['matmul']['status']})")
    if "percent_of_cublas" not in row:
        return "not measured", f"matmul {n}²: {row['ours_gflops']:.0f} GFLOP/s; cuBLAS {data['cublas']}"
    evidence = (
        f"matmul {n}² float32: {row['ours_gflops']:.0f} GFLOP/s, cuBLAS {row['cublas_gflops']:.0f} "
        f"({data['cublas']}): {row['percent_of_cublas']:.0f} % (target 30 %)"
    )
    return ("pass" if row["percent_of_cublas"] >= 30 else "fail"), evidence


def _mnist_accuracy(parts):
    data = _figures(parts, "mnist", "cuda", "cpu", "difference_points")
    cuda, cpu = data["cuda"], data["cpu"]
    evidence = (
        f"one CNN epoch on {data['data']}: cuda {cuda['seconds']:.1f} s, test accuracy {cuda['test_accuracy']:.2%}; "
        f"cpu {cpu['test_accuracy']:.2%}; {data['difference_points']:.2f} points apart (limit 0.5)"
    )
    return ("pass" if data["difference_points"] <= 0.5 else "fail"), evidence


def _auto(parts):
    data = _figures(parts, "auto", "picked", "expected")
    evidence = f"--backend auto picked {data['picked']}, expected {data['expected']} (cuda: {data['cuda']})"
    return ("pass" if data["picked"] == data["expected"] else "fail"), evidence


# ------------------------------------------------------------------------------------ Markdown
POINTS = (
    "cuda parity tests pass (simulator off); 3 steps of MLP, CNN, ViT give the reference's losses to 1e-4",
    "CNN training step at batch 512 ≥ 10× the cpu backend's (2 cores)",
    "matmul 4096² float32 ≥ 30 % of cuBLAS FP32 (TF32 off)",
    "one MNIST CNN epoch: test accuracy within 0.5 points of the cpu backend's",
    "--backend auto picks cuda on a GPU machine, cpu elsewhere",
)


def report_markdown(report: dict) -> list[str]:
    passed = sum(p["verdict"] == "pass" for p in report["acceptance"])
    lines = [f"# GPU check, {report['written']}", "", f"GPU: {report['gpu']}", ""]
    if report["simulator"]:
        lines += ["**Numba's CUDA simulator, tiny shapes: a test of the script, not evidence.**", ""]
    lines += [*acceptance_markdown(report), "", f"{passed} of 5 points pass.", ""]
    lines += ["| part | status | seconds |", "|---|---|---|"]
    for name, part in report["parts"].items():
        seconds = f"{part['seconds']:.0f}" if "seconds" in part else "–"
        lines.append(f"| {name} | {part['status']} | {seconds} |")
    for name, what in PARTS:
        part = report["parts"][name]
        lines += ["", f"## {name}: {what}", "", *_part_markdown(name, part)]
    return lines


def acceptance_markdown(report: dict) -> list[str]:
    lines = ["| # | acceptance point | verdict | figures |", "|---|---|---|---|"]
    for point, text in zip(report["acceptance"], POINTS, strict=True):
        lines.append(f"| {point['point']} | {text} | {point['verdict']} | {point['evidence']} |")
    return lines


def _part_markdown(name: str, part: dict) -> list[str]:
    data = part["data"]
    if not data:
        return [f"No figures ({part['status']})."]
    if "skipped" in data:
        return [f"Skipped: {data['skipped']}."]
    try:
        if name in cuda_bench.MARKDOWN:
            return cuda_bench.MARKDOWN[name](data)
        if name == "parity":
            return [f"{data['passed']} passed, {data['failed']} failed, {data['skipped']} skipped", *data["failures"]]
        if name == "bench":
            return [f"`{data['command']}`", "", data.get("markdown", "(no result)")]
    except (KeyError, TypeError, ValueError) as error:  # figures cut short by a timeout
        return [f"Figures cut short ({type(error).__name__}: {error}):", "", f"`{json.dumps(data)}`"]
    return [f"- {key}: {value}" for key, value in data.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=("environment", "auto", "bench", "summary"))
    parser.add_argument("paths", nargs="+", help="FILE for a part; WORK OUT for the summary")
    parser.add_argument("--sim", action="store_true", help="Numba's CUDA simulator, tiny shapes")
    parser.add_argument("--quick", action="store_true", help="nnsim bench --quick")
    parser.add_argument("--cpu-cnn512-ms", type=float, default=None, help="the 2-core cpu figure, for point 2")
    parser.add_argument("--print", action="store_true", help="summary: print the acceptance table")
    args = parser.parse_args()
    if args.part == "summary":
        report = summary(Path(args.paths[0]), Path(args.paths[1]), args.sim, args.cpu_cnn512_ms)
        if args.print:
            print("\n".join(acceptance_markdown(report)))
    elif args.part == "bench":
        bench(args.paths[0], args.sim, args.quick)
    else:
        {"environment": environment, "auto": auto}[args.part](args.paths[0])


if __name__ == "__main__":
    main()
