"""Backends: one implementation of the kernel API per file, chosen by name.

``get_backend("reference" | "cpu" | "cuda" | "auto")``. Fast backends are imported only when asked
for, so that importing the engine (or painting the app) never pulls in Numba.
"""

from __future__ import annotations

import importlib
from functools import cache

from nnsim.errors import NnsimError

# name -> (module, class, what is needed to use it)
_BACKENDS = {
    "reference": ("nnsim.engine.backends.reference", "ReferenceBackend", "NumPy"),
    "cpu": ("nnsim.engine.backends.cpu", "CpuBackend", "Numba (pip install numba)"),
    "cuda": ("nnsim.engine.backends.cuda", "CudaBackend", "an NVIDIA GPU and nnsim[cuda]"),
}
BACKEND_NAMES = ("auto", *_BACKENDS)


def _load(name: str):
    module_name, class_name, _ = _BACKENDS[name]
    module = importlib.import_module(module_name)
    backend_class = getattr(module, class_name)
    usable = getattr(backend_class, "is_usable", None)
    if usable is not None:
        usable()  # raises NnsimError with the reason when it cannot run here
    return backend_class()


@cache
def get_backend(name: str = "auto"):
    """The backend called ``name``; "auto" is cuda when usable, else cpu, else reference."""
    if name == "auto":
        for candidate in ("cuda", "cpu"):
            try:
                backend = get_backend(candidate)
            except NnsimError:
                continue
            if not getattr(backend, "simulated", False):  # the CUDA simulator is for tests only
                return backend
        return get_backend("reference")
    if name not in _BACKENDS:
        raise NnsimError(f"unknown backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}")
    try:
        return _load(name)
    except ModuleNotFoundError as error:
        if error.name and error.name.startswith("nnsim."):
            raise NnsimError(f"the {name} backend is not part of this version of nnsim") from None
        raise NnsimError(f"the {name} backend needs {_BACKENDS[name][2]}") from None


def available_backends() -> list[str]:
    """Names of the backends that load on this machine, fastest last."""
    names = []
    for name in _BACKENDS:
        try:
            get_backend(name)
        except NnsimError:
            continue
        names.append(name)
    return names
