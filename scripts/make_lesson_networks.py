"""Make the networks the lessons show, in nnsim/data/builtin:

- lesson-cnn.npz, the small CNN that lesson 1 shows classifying digits (4 epochs, channels 8/16);
- lesson-vit.npz, the small ViT that lesson 6 takes apart (7×7 patches, 32 features, 4 heads,
  2 blocks, 10 epochs).

Run from the repository root: python scripts/make_lesson_networks.py [cnn] [vit]
Trained by nnsim's own engine on the built-in mnist-mini, Adam, seed 0, on the cpu backend, so the
same command makes the same weights on the same machine. Only the weights are kept (a lesson
resumes no training).
"""

import sys
from pathlib import Path

from nnsim.engine.checkpoint import load_checkpoint, save_checkpoint
from nnsim.engine.config import TrainConfig
from nnsim.engine.events import DoneEvent
from nnsim.engine.trainer import Trainer

BUILTIN = Path("nnsim/data/builtin")
NETWORKS = {
    "cnn": (4, {"channels": [8, 16], "hidden": 32}),
    "vit": (10, {"patch": 7, "dim": 32, "heads": 4, "depth": 2, "mlp_dim": 64}),
}


def make(model: str) -> None:
    epochs, sizes = NETWORKS[model]
    out = BUILTIN / f"lesson-{model}.npz"
    config = TrainConfig(
        model=model,
        data="mnist-mini",
        epochs=epochs,
        optimizer="adam",
        backend="cpu",
        seed=0,
        checkpoint=str(out),
        sizes=sizes,
    )
    for event in Trainer(config).run():
        if isinstance(event, DoneEvent):
            print(f"{model}: test accuracy {event.test_accuracy:.2%} after {event.steps} steps")
    network, meta = load_checkpoint(out)
    save_checkpoint(out, network, meta)  # the weights alone, without the optimizer's state
    print(f"{out}: {out.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    for name in sys.argv[1:] or list(NETWORKS):
        make(name)
