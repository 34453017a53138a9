"""The softmax and loss widgets' figures, by the engine's own softmax, cross-entropy and focal loss."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnsim.engine.losses import cross_entropy, focal_loss, softmax


@dataclass
class SoftmaxSteps:
    scaled: np.ndarray  # z / T
    exps: np.ndarray  # e^(z/T)
    total: float  # Σ e^(z/T)
    probs: np.ndarray  # the engine's softmax(z / T)


def softmax_steps(logits, temperature: float = 1.0) -> SoftmaxSteps:
    """p_i = e^(z_i/T) / Σ_j e^(z_j/T), with every intermediate number (float64)."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    exps = np.exp(scaled)
    return SoftmaxSteps(scaled, exps, float(exps.sum()), softmax(scaled[None])[0])


@dataclass
class LossTerms:
    p_true: float
    log_p: float  # log p(true)
    cross_entropy: float  # −log p(true)
    modulator: float  # (1 − p(true))^γ
    alpha: float  # α of the true class
    focal: float  # −α (1 − p)^γ log p
    squared_error: float  # Σ (p_i − y_i)², for comparison


def loss_terms(probabilities, true_class: int, alpha, gamma: float) -> LossTerms:
    """Both losses of one prediction, by the engine (from log-probabilities, whose softmax is p)."""
    p = np.asarray(probabilities, dtype=np.float64)
    logits = np.log(np.clip(p, 1e-300, None))[None]  # softmax(log p) = p when Σ p = 1
    label = np.array([true_class])
    ce, _ = cross_entropy(logits, label)
    focal, _ = focal_loss(logits, label, alpha=list(alpha), gamma=gamma)
    onehot = np.eye(len(p))[true_class]
    p_true = float(p[true_class])
    return LossTerms(
        p_true=p_true,
        log_p=float(np.log(p_true)),
        cross_entropy=float(ce),
        modulator=(1 - p_true) ** gamma,
        alpha=float(alpha[true_class]),
        focal=float(focal),
        squared_error=float(((p - onehot) ** 2).sum()),
    )


def loss_curve(p_true: np.ndarray, gamma: float, alpha: float = 1.0) -> np.ndarray:
    """Focal loss against p(true) (γ = 0 is cross-entropy), by the engine, for a two-class prediction."""
    p = np.clip(np.asarray(p_true, dtype=np.float64), 1e-6, 1 - 1e-6)
    logits = np.log(np.stack([p, 1 - p], axis=1))
    labels = np.zeros(len(p), dtype=np.int64)
    return np.array([focal_loss(logits[i : i + 1], labels[:1], alpha=alpha, gamma=gamma)[0] for i in range(len(p))])


@dataclass
class ImbalanceResult:
    class_names: list[str]
    train_counts: list[int]  # training images per class: the imbalance
    alpha: list[float]  # focal loss's α: inverse class frequency, mean 1
    recall_ce: list[float]  # per class, on the balanced test set
    recall_focal: list[float]


def compare_on_imbalance(epochs: int, hidden: int, gamma: float, seed: int, cancelled=lambda: False):
    """Train one MLP with cross-entropy and one with focal loss on shapes-imbalanced (reference
    backend, same seed, so the same first weights and data order); recall of each class on the test
    set, where every class is equally common. None if cancelled."""
    from nnsim.data.datasets import load_dataset
    from nnsim.engine.trainer import TrainConfig, Trainer

    data = load_dataset("shapes-imbalanced", seed=seed)
    counts = np.bincount(data.y_train, minlength=data.classes)
    alpha = (1.0 / counts) / (1.0 / counts).mean()
    recalls = []
    for loss in ("ce", "focal"):
        config = TrainConfig(
            model="mlp",
            data=data.name,
            epochs=epochs,
            backend="reference",
            seed=seed,
            loss=loss,
            alpha=[float(a) for a in alpha] if loss == "focal" else 1.0,
            gamma=gamma,
            val_fraction=0.0,
            sizes={"hidden": [hidden]},
        )
        trainer = Trainer(config, data)
        for _ in trainer.run():
            if cancelled():
                return None
        predicted = np.asarray(trainer.forward(data.x_test)).argmax(axis=1)
        recalls.append([float((predicted[data.y_test == c] == c).mean()) for c in range(data.classes)])
    return ImbalanceResult(data.class_names, [int(c) for c in counts], [float(a) for a in alpha], *recalls)
