"""The memory a run needs, estimated before it starts.

Training keeps every layer's output for backpropagation, so a batch costs about (what each layer
computes for one image) × (batch size), twice over while the gradients flow back. For a ViT the
attention scores dominate: heads × T² a block, with T = patches + 1, so doubling the side of the
images multiplies them by sixteen. A run that would not fit is refused with the figure and what to
change, rather than failing part way with the computer's own error.
"""

from __future__ import annotations

import os

import numpy as np

from nnsim.engine.models import DEFAULT_SIZES, ModelConfig
from nnsim.errors import NnsimError

HEADROOM = 0.8  # a run may use this share of the memory free now; the rest is the app's and the system's
GiB = 2**30


def bytes_per_image(config: ModelConfig, training: bool, itemsize: int = 4) -> int:
    """About what one image's pass keeps in memory (values; twice that while training)."""
    values = {"mlp": _mlp, "cnn": _cnn, "vit": _vit}[config.model](config)
    return int(values * itemsize * (2 if training else 1))


def _mlp(config: ModelConfig) -> int:
    hidden = config.sizes.get("hidden", DEFAULT_SIZES["mlp"]["hidden"])
    return int(np.prod(config.input_shape)) + 2 * sum(hidden) + config.classes


def _cnn(config: ModelConfig) -> int:
    sizes = {**DEFAULT_SIZES["cnn"], **config.sizes}
    channels, height, width = config.input_shape
    values = channels * height * width
    for out in sizes["channels"]:
        values += channels * sizes["kernel"] ** 2 * height * width  # each position's patch (im2col)
        values += 3 * out * height * width + out * (height // 2) * (width // 2)  # conv, ReLU, pool
        channels, height, width = out, height // 2, width // 2
    return values + 2 * sizes["hidden"] + config.classes


def _vit(config: ModelConfig) -> int:
    sizes = {**DEFAULT_SIZES["vit"], **config.sizes}
    channels, height, width = config.input_shape
    patch = sizes["patch"] or 8
    tokens = (height // patch) * (width // patch) + 1
    dim, heads = sizes["dim"], sizes["heads"]
    block = 10 * tokens * dim + 2 * tokens * sizes["mlp_dim"] + 2 * heads * tokens * tokens  # scores, softmax
    return 2 * channels * height * width + tokens * dim + sizes["depth"] * block + config.classes


def available_memory() -> int | None:
    """Bytes of memory free for a new run now, or None where the system does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_fits(config: ModelConfig, batch_size: int, eval_batch_size: int, images: int, precision="float32") -> int:
    """Refuse (NnsimError) a run whose training batch would not fit in memory; return the
    evaluation batch size that fits (at most `eval_batch_size`)."""
    available = available_memory()
    if available is None:
        return eval_batch_size
    budget = available * HEADROOM
    itemsize = np.dtype(precision).itemsize
    per_train = bytes_per_image(config, training=True, itemsize=itemsize)
    per_eval = bytes_per_image(config, training=False, itemsize=itemsize)
    batch = max(1, min(batch_size, images))
    need = batch * per_train
    if need > budget:
        raise NnsimError(_too_big(config, batch, need, available, int(budget // per_train)))
    return int(max(1, min(eval_batch_size, budget // per_eval)))


def _too_big(config: ModelConfig, batch: int, need: int, available: int, fits: int) -> str:
    shape = "×".join(str(v) for v in config.input_shape)
    change = ["smaller images (resize them)"]
    if config.model == "vit":
        change.append("a larger patch or a smaller ViT (size: small)")
    if fits >= 1:
        change.append(f"a smaller batch (--batch-size {fits} fits)")
    return (
        f"this run needs about {_size(need)} of memory at once (a {config.model.upper()} on {shape} images, "
        f"batch {batch}) but {_size(available)} is free; use " + ", or ".join(change)
    )


def _size(count: float) -> str:
    return f"{count / GiB:.1f} GiB" if count >= GiB else f"{count / 2**20:.0f} MiB"
