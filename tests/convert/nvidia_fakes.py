"""Helpers that write NVIDIA-style network pickles with the test's own code (no NVIDIA code involved).

NVIDIA's ``torch_utils.persistence`` reduces each network object to
``torch_utils.persistence._reconstruct_persistent_obj(meta)``. ``pickle`` names a global by the callable's
``__module__``/``__qualname__`` and checks that ``sys.modules[module].<name>`` is that very object, so
:func:`nvidia_pickle_bytes` registers throw-away ``torch_utils.persistence`` and ``dnnlib.util`` modules
while it pickles, and removes them again: the loader under test never finds them in ``sys.modules``.
"""

from __future__ import annotations

import pickle
import sys
import types
from collections import OrderedDict
from typing import Any

import torch
from torch import nn


def _reconstruct_placeholder(meta: dict) -> Any:  # pickled by name only; never called
    raise AssertionError("the fake reconstruct hook must not run")


_reconstruct_placeholder.__module__ = "torch_utils.persistence"
_reconstruct_placeholder.__qualname__ = _reconstruct_placeholder.__name__ = "_reconstruct_persistent_obj"


class EasyDict(dict):
    """Pickles as ``dnnlib.util.EasyDict``, like NVIDIA's ``init_kwargs`` containers."""


EasyDict.__module__ = "dnnlib.util"


class Persistent:
    """An object that pickles exactly like a ``torch_utils.persistence`` instance."""

    def __init__(self, class_name: str, state: dict, module_src: str = "# network source\n") -> None:
        self.meta = dict(type="class", version=6, module_src=module_src, class_name=class_name, state=state)

    def __reduce__(self) -> tuple:
        return (_reconstruct_placeholder, (self.meta,), None)


def module_state(
    parameters: dict[str, torch.Tensor | None] | None = None,
    buffers: dict[str, torch.Tensor] | None = None,
    modules: dict[str, Persistent | None] | None = None,
    init_kwargs: dict | None = None,
    **attributes: Any,
) -> dict:
    """The ``__dict__`` of a ``torch.nn.Module`` as NVIDIA's networks carry it."""
    state = {
        "training": False,
        "_parameters": OrderedDict(
            (k, None if v is None else nn.Parameter(v.detach().clone(), requires_grad=False))
            for k, v in (parameters or {}).items()
        ),
        "_buffers": OrderedDict((k, v.detach().clone()) for k, v in (buffers or {}).items()),
        "_non_persistent_buffers_set": set(),
        "_backward_hooks": OrderedDict(),
        "_forward_hooks": OrderedDict(),
        "_forward_pre_hooks": OrderedDict(),
        "_state_dict_hooks": OrderedDict(),
        "_load_state_dict_pre_hooks": OrderedDict(),
        "_modules": OrderedDict(modules or {}),
        "_init_args": (),
        "_init_kwargs": init_kwargs or {},
    }
    state.update(attributes)
    return state


def nvidia_pickle_bytes(obj: Any, protocol: int = 4) -> bytes:
    """``pickle.dumps(obj)`` with NVIDIA's global names for the persistence hook and ``EasyDict``."""
    fakes = {
        "torch_utils": types.ModuleType("torch_utils"),
        "torch_utils.persistence": types.ModuleType("torch_utils.persistence"),
        "dnnlib": types.ModuleType("dnnlib"),
        "dnnlib.util": types.ModuleType("dnnlib.util"),
    }
    fakes["torch_utils.persistence"]._reconstruct_persistent_obj = _reconstruct_placeholder
    fakes["dnnlib.util"].EasyDict = EasyDict
    clashing = [name for name in fakes if name in sys.modules]
    assert not clashing, f"real modules {clashing} are imported; the fixture would shadow them"
    sys.modules.update(fakes)
    try:
        return pickle.dumps(obj, protocol=protocol)
    finally:
        for name in fakes:
            sys.modules.pop(name, None)
