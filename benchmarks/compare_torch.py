"""Speed against PyTorch: kernels and training steps, as the Markdown of docs/benchmarks.md.

    pip install -e ".[torch]"
    python benchmarks/compare_torch.py [--backend cpu|cuda] [--quick]

The measuring is `nnsim.bench.run_bench` (also `nnsim bench --compare torch`): PyTorch runs the
same architectures (nnsim/torch_models.py) in a child process, timed in blocks alternating with
ours, and each ratio is the median of per-round ratios.
"""

from __future__ import annotations

import argparse
import sys

from nnsim.bench import markdown, run_bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="cpu")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    result = run_bench(
        args.backend, compare="torch", quick=args.quick, report=lambda message: print(message, file=sys.stderr)
    )
    print(markdown(result))


if __name__ == "__main__":
    main()
