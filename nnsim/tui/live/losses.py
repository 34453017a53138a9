"""The softmax and loss widgets' figures, by the engine's own softmax, cross-entropy and focal loss."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnsim.engine.losses import cross_entropy, focal_loss, softmax, squared_error


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
    pull_ce: float  # dL/dz of the true class's logit under cross-entropy: p − 1
    pull_se: float  # the same under squared error (through softmax)


def loss_terms(probabilities, true_class: int, alpha, gamma: float) -> LossTerms:
    """Both losses of one prediction, and squared error beside them, by the engine (from
    log-probabilities, whose softmax is p), with each one's gradient on the true class's logit."""
    p = np.asarray(probabilities, dtype=np.float64)
    logits = np.log(np.clip(p, 1e-300, None))[None]  # softmax(log p) = p when Σ p = 1
    label = np.array([true_class])
    ce, ce_grad = cross_entropy(logits, label)
    focal, _ = focal_loss(logits, label, alpha=list(alpha), gamma=gamma)
    se, se_grad = squared_error(logits, label)
    p_true = float(p[true_class])
    return LossTerms(
        p_true=p_true,
        log_p=float(np.log(p_true)),
        cross_entropy=float(ce),
        modulator=(1 - p_true) ** gamma,
        alpha=float(alpha[true_class]),
        focal=float(focal),
        squared_error=float(se),
        pull_ce=float(ce_grad[0, true_class]),
        pull_se=float(se_grad[0, true_class]),
    )


def pulls_as_p_falls(p_true) -> tuple[np.ndarray, np.ndarray]:
    """dL/dz of the true class's logit under cross-entropy and under squared error, for each
    p(true), the rest on one wrong class: by the engine. Cross-entropy's stays near −1 as p → 0;
    squared error's fades to 0."""
    p = np.asarray(p_true, dtype=np.float64)
    logits = np.log(np.stack([p, 1 - p], axis=1))
    labels = np.zeros(1, dtype=np.int64)
    ce = [cross_entropy(logits[i : i + 1], labels)[1][0, 0] for i in range(len(p))]
    se = [squared_error(logits[i : i + 1], labels)[1][0, 0] for i in range(len(p))]
    return np.array(ce), np.array(se)


def loss_curve(p_true: np.ndarray, gamma: float, alpha: float) -> np.ndarray:
    """Focal loss against p(true) (γ = 0 is cross-entropy), by the engine, for a two-class prediction."""
    p = np.clip(np.asarray(p_true, dtype=np.float64), 1e-6, 1 - 1e-6)
    logits = np.log(np.stack([p, 1 - p], axis=1))
    labels = np.zeros(len(p), dtype=np.int64)
    return np.array([focal_loss(logits[i : i + 1], labels[:1], alpha=alpha, gamma=gamma)[0] for i in range(len(p))])


@dataclass
class ImbalanceRun:
    loss: str  # what the learner reads: "cross-entropy", "α-weighted CE", "focal (α, γ = 2)"
    recall: list[float]  # per class, on the balanced test set

    @property
    def mean_recall(self) -> float:
        """The mean of the classes' recalls: the accuracy on a test set where every class is equally common."""
        return float(np.mean(self.recall))


@dataclass
class ImbalanceResult:
    class_names: list[str]
    train_counts: list[int]  # training images per class: the imbalance
    test_counts: list[int]  # test images per class: the same for every class
    alpha: list[float]  # the weighted losses' α: inverse class frequency, mean 1
    runs: list[ImbalanceRun]  # cross-entropy, α-weighted cross-entropy, focal loss (α and γ)


def imbalance_runs(data, epochs: int, hidden: int, gamma: float, seed: int) -> list[tuple[str, object]]:
    """The three runs compared, (name, TrainConfig), alike but for the loss: cross-entropy;
    α-weighted cross-entropy (the engine's focal loss with γ = 0, α = inverse class frequency, mean
    1); focal loss with the same α and γ. The same seed gives each the same first weights and the
    same order of images (reference backend)."""
    from nnsim.engine.config import TrainConfig

    counts = np.bincount(data.y_train, minlength=data.classes)
    alpha = [float(a) for a in (1.0 / counts) / (1.0 / counts).mean()]
    losses = [
        ("cross-entropy", {"loss": "ce"}),
        ("α-weighted CE", {"loss": "focal", "alpha": alpha, "gamma": 0.0}),
        (f"focal (α, γ = {gamma:g})", {"loss": "focal", "alpha": alpha, "gamma": gamma}),
    ]
    common = {"model": "mlp", "data": data.name, "epochs": epochs, "backend": "reference", "seed": seed}
    return [
        (name, TrainConfig(**common, val_fraction=0.0, sizes={"hidden": [hidden]}, **loss)) for name, loss in losses
    ]


def compare_on_imbalance(epochs: int, hidden: int, gamma: float, seed: int, cancelled=lambda: False, started=None):
    """Train the same MLP three times on shapes-imbalanced (see imbalance_runs) and measure the
    recall of each class on the test set, where every class is equally common. `started(i, name)`
    is told as run i begins. None if cancelled."""
    from nnsim.data.datasets import load_dataset
    from nnsim.engine.trainer import Trainer

    data = load_dataset("shapes-imbalanced", seed=seed)
    runs = []
    configs = imbalance_runs(data, epochs, hidden, gamma, seed)
    for i, (name, config) in enumerate(configs):
        if cancelled():
            return None
        if started is not None:
            started(i, name)
        trainer = Trainer(config, data)
        for _ in trainer.run():
            if cancelled():
                return None
        predicted = np.asarray(trainer.forward(data.x_test)).argmax(axis=1)
        runs.append(ImbalanceRun(name, [float((predicted[data.y_test == c] == c).mean()) for c in range(data.classes)]))
    counts = [int(c) for c in np.bincount(data.y_train, minlength=data.classes)]
    test_counts = [int(c) for c in np.bincount(data.y_test, minlength=data.classes)]
    return ImbalanceResult(data.class_names, counts, test_counts, list(configs[1][1].alpha), runs)
