"""Optimizers: the update step θ ← θ − η · (something made from ∇θ L).

SGD follows the workshop's rule, with momentum and weight decay as PyTorch defines them; Adam keeps
running averages of the gradient and its square. The arithmetic is the backend's, in place. The
learning rate, momentum and weight decay have no defaults here and are not checked here: a run's
settings are chosen and checked in one place, nnsim.engine.config.
"""

from __future__ import annotations

from nnsim.errors import NnsimError

OPTIMIZER_NAMES = ("sgd", "adam")


class Optimizer:
    def __init__(self, params, backend, *, lr: float, weight_decay: float):
        self.params = list(params)
        self.be = backend
        self.lr = lr
        self.weight_decay = weight_decay
        self.steps = 0

    def step(self) -> None:
        self.steps += 1
        for index, param in enumerate(self.params):
            if param.grad is not None:
                self.update(index, param)

    def update(self, index: int, param) -> None:
        raise NotImplementedError

    SLOTS: tuple[str, ...] = ()  # per-parameter buffers (lists of arrays) that a resume needs

    def state_dict(self) -> dict:
        """Everything the next update depends on besides the weights: the step count and the buffers."""
        buffers = {
            f"{slot}/{index}": self.be.to_numpy(value).copy()
            for slot in self.SLOTS
            for index, value in enumerate(getattr(self, slot))
            if value is not None
        }
        return {"steps": self.steps, "buffers": buffers}

    def load_state_dict(self, state: dict) -> None:
        self.steps = int(state["steps"])
        for key, value in state["buffers"].items():
            slot, index = key.split("/")
            if slot not in self.SLOTS or not 0 <= int(index) < len(self.params):
                raise NnsimError(f"optimizer state {key!r} does not belong to this {type(self).__name__}")
            if value.shape != self.be.to_numpy(self.params[int(index)].value).shape:
                raise NnsimError(f"optimizer state {key!r} has the wrong shape {value.shape}")
            getattr(self, slot)[int(index)] = self.be.asarray(value)


class SGD(Optimizer):
    """θ ← θ − η · v, with v ← μ · v + ∇θ L (+ λ θ)."""

    def __init__(self, params, backend, *, lr: float, momentum: float, weight_decay: float):
        super().__init__(params, backend, lr=lr, weight_decay=weight_decay)
        self.momentum = momentum
        self.velocity = [None] * len(self.params)

    SLOTS = ("velocity",)

    def update(self, index, param):
        be = self.be
        if self.velocity[index] is None:
            self.velocity[index] = be.zeros_like(param.value)
        be.sgd_update(param.value, param.grad, self.velocity[index], self.lr, self.momentum, self.weight_decay)


class Adam(Optimizer):
    """Adam (Kingma & Ba): steps scaled per weight by running gradient statistics."""

    def __init__(self, params, backend, *, lr: float, weight_decay: float, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(params, backend, lr=lr, weight_decay=weight_decay)
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.m = [None] * len(self.params)
        self.v = [None] * len(self.params)

    SLOTS = ("m", "v")

    def update(self, index, param):
        be = self.be
        if self.m[index] is None:
            self.m[index] = be.zeros_like(param.value)
            self.v[index] = be.zeros_like(param.value)
        be.adam_update(
            param.value,
            param.grad,
            self.m[index],
            self.v[index],
            self.lr,
            self.beta1,
            self.beta2,
            self.eps,
            self.weight_decay,
            self.steps,
        )


def make_optimizer(name: str, params, backend, *, lr: float, momentum: float, weight_decay: float) -> Optimizer:
    """The optimizer `name` (momentum is SGD's; Adam has its own running averages instead)."""
    if name == "sgd":
        return SGD(params, backend, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return Adam(params, backend, lr=lr, weight_decay=weight_decay)
    raise NnsimError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZER_NAMES)}")
