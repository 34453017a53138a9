"""The memory a run needs, estimated before it starts: a run that would not fit is refused with
the figure and what to change (tested with shapes and a machine that are made up, never allocated)."""

import numpy as np
import pytest

from nnsim.data.dataset import Dataset
from nnsim.engine import memory
from nnsim.engine.config import TrainConfig
from nnsim.engine.models import ModelConfig
from nnsim.engine.trainer import Trainer
from nnsim.errors import NnsimError

GiB = 2**30


def vit(side: int, channels: int = 1) -> ModelConfig:
    sizes = {"patch": 8, "dim": 64, "heads": 4, "depth": 2, "mlp_dim": 128}
    return ModelConfig("vit", (channels, side, side), 10, sizes, [0.0] * channels, [1.0] * channels)


def test_a_vit_on_512_pixel_images_needs_far_more_than_on_28():
    small = memory.bytes_per_image(vit(32), training=True)
    large = memory.bytes_per_image(vit(512), training=True)
    assert large > 1000 * small  # attention grows with the square of the patches: 4,097² against 17²
    # one training image's attention alone: 2 blocks × 4 heads × 4,097² scores, kept in float32
    assert large > 2 * 4 * 4097**2 * 4


def test_a_run_that_cannot_fit_is_refused_with_the_figure_and_what_to_change(monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda: 16 * GiB)
    with pytest.raises(NnsimError) as refused:
        memory.check_fits(vit(512), batch_size=64, eval_batch_size=500, images=1000)
    message = str(refused.value)
    assert "GiB" in message and "16.0 GiB" in message and "--batch-size" in message
    assert "smaller images" in message
    memory.check_fits(vit(32), batch_size=64, eval_batch_size=500, images=1000)  # a 28×28 ViT fits


def test_the_trainer_refuses_before_the_first_step(monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda: 1 * GiB)
    x = np.zeros((4, 1, 512, 512), np.float32)  # four images: small in memory, large in attention
    y = np.array([0, 1, 0, 1])
    dataset = Dataset("big", x, y, x[:2], y[:2], ["a", "b"])
    with pytest.raises(NnsimError, match="needs about .* GiB"):
        Trainer(TrainConfig(model="vit", backend="reference", val_fraction=0.5), dataset=dataset)
