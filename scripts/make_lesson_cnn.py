"""Make nnsim/data/builtin/lesson-cnn.npz: the small CNN that lesson 1 shows classifying digits.

Run from the repository root: python scripts/make_lesson_cnn.py
Trained by nnsim's own engine on the built-in mnist-mini, with a fixed seed, so the same command
makes the same weights on the same backend.
"""

from pathlib import Path

from nnsim.engine.trainer import CheckpointEvent, DoneEvent, TrainConfig, Trainer

OUT = Path("nnsim/data/builtin/lesson-cnn.npz")


def main() -> None:
    config = TrainConfig(
        model="cnn",
        data="mnist-mini",
        epochs=4,
        optimizer="adam",
        backend="cpu",
        seed=0,
        checkpoint=str(OUT),
        sizes={"channels": [8, 16], "hidden": 32},
    )
    for event in Trainer(config).run():
        if isinstance(event, CheckpointEvent):
            print(f"wrote {event.path}")
        if isinstance(event, DoneEvent):
            print(f"test accuracy {event.test_accuracy:.2%} after {event.steps} steps")
    print(f"{OUT}: {OUT.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
