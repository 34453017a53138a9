"""Every backend provides every op of the Backend protocol, with the protocol's parameters."""

import inspect

import pytest

from nnsim.engine.backends import protocol
from nnsim.engine.backends.protocol import Backend

BACKEND_CLASSES = {
    "reference": ("nnsim.engine.backends.reference", "ReferenceBackend"),
    "cpu": ("nnsim.engine.backends.cpu", "CpuBackend"),
    "cuda": ("nnsim.engine.backends.cuda", "CudaBackend"),
}


def backend_class(name):
    module_name, class_name = BACKEND_CLASSES[name]
    module = pytest.importorskip(module_name)
    return getattr(module, class_name)


def test_the_protocol_lists_every_op_a_training_step_uses():
    ops = set(protocol.operations())
    contract = {"matmul", "conv2d_forward", "conv2d_backward", "attention_forward", "attention_backward"}
    others = {"linear_forward", "activation_forward", "maxpool2d_forward", "layernorm_forward"}
    others |= {"classification_loss", "sgd_update", "adam_update", "copy", "zeros_like", "asarray", "to_numpy"}
    assert contract | others <= ops
    assert len(ops) == 36


@pytest.mark.parametrize("name", list(BACKEND_CLASSES))
def test_backend_provides_every_op(name):
    cls = backend_class(name)
    for op in protocol.operations():
        mine = getattr(cls, op, None)
        assert callable(mine), f"{name} has no {op}"
        wanted = inspect.signature(getattr(Backend, op)).parameters
        given = inspect.signature(mine).parameters
        assert list(given) == list(wanted), f"{name}.{op}{tuple(given)} is not {op}{tuple(wanted)}"
        for param, spec in wanted.items():
            assert given[param].default == spec.default, f"{name}.{op}: default of {param}"
    assert isinstance(cls.name, str)


def test_a_backend_instance_is_a_backend(ref):
    assert isinstance(ref, Backend)

    class Partial:
        name = "partial"

        def matmul(self, a, b):
            return a @ b

    assert not isinstance(Partial(), Backend)


def test_the_check_finds_a_missing_op(monkeypatch):
    cls = backend_class("reference")
    monkeypatch.delattr(cls, "take_token_backward")
    with pytest.raises(AssertionError, match="take_token_backward"):
        test_backend_provides_every_op("reference")
