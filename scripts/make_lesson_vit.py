"""Make nnsim/data/builtin/lesson-vit.npz: the small ViT that lesson 6 takes apart (patches, embeddings, attention).

Run from the repository root: python scripts/make_lesson_vit.py
Trained by nnsim's own engine on the built-in mnist-mini, with a fixed seed, so the same command
makes the same weights on the same backend.
"""

from pathlib import Path

from nnsim.engine.checkpoint import load_checkpoint, save_checkpoint
from nnsim.engine.trainer import CheckpointEvent, DoneEvent, TrainConfig, Trainer

OUT = Path("nnsim/data/builtin/lesson-vit.npz")


def main() -> None:
    config = TrainConfig(
        model="vit",
        data="mnist-mini",
        epochs=10,
        optimizer="adam",
        backend="cpu",
        seed=0,
        checkpoint=str(OUT),
        sizes={"patch": 7, "dim": 32, "heads": 4, "depth": 2, "mlp_dim": 64},
    )
    for event in Trainer(config).run():
        if isinstance(event, CheckpointEvent):
            print(f"wrote {event.path}")
        if isinstance(event, DoneEvent):
            print(f"test accuracy {event.test_accuracy:.2%} after {event.steps} steps")
    model, meta = load_checkpoint(OUT)
    save_checkpoint(OUT, model, meta)  # the weights alone: a lesson resumes no training
    print(f"{OUT}: {OUT.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
