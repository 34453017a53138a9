"""Accuracy runs of the foundation issue: train each default network and print a Markdown table.

    python benchmarks/accuracy.py [--backend reference] [--full-mnist ../shared/datasets/mnist]

Each row is one `Trainer` run with the CLI's defaults (the full-MNIST row uses SGD lr 0.05,
momentum 0.9, batch 64, 2 epochs, as the issue asks).
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import date
from pathlib import Path

from nnsim.engine.config import TrainConfig
from nnsim.engine.trainer import Trainer


def run(label: str, config: TrainConfig) -> str:
    started = time.perf_counter()
    trainer = Trainer(config)
    done = None
    for event in trainer.run():
        if event.event == "validation":
            print(f"  {label}: epoch {event.epoch} val {event.val_accuracy:.2%}", flush=True)
        done = event
    seconds = time.perf_counter() - started
    return (
        f"| {label} | {config.backend} | {done.epochs} | {done.test_accuracy:.2%} | {done.val_accuracy:.2%} | "
        f"{done.samples_per_s:,.0f} | {seconds:.0f} s |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="reference")
    parser.add_argument("--full-mnist", type=Path, default=None, help="folder of the MNIST IDX files")
    args = parser.parse_args()
    rows = [
        run("CNN, mnist-mini", TrainConfig(model="cnn", backend=args.backend)),
        run("MLP, mnist-mini", TrainConfig(model="mlp", backend=args.backend)),
        run("ViT, mnist-mini", TrainConfig(model="vit", backend=args.backend)),
    ]
    if args.full_mnist:
        rows.append(
            run(
                "CNN, full MNIST, SGD 0.05/0.9",
                TrainConfig(
                    model="cnn",
                    data=str(args.full_mnist),
                    epochs=2,
                    optimizer="sgd",
                    lr=0.05,
                    momentum=0.9,
                    batch_size=64,
                    backend=args.backend,
                ),
            )
        )
    print(f"\n{date.today()}, {platform.machine()}, {platform.processor() or platform.system()}\n")
    print("| run | backend | epochs | test accuracy | validation | training images/s | wall time |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
