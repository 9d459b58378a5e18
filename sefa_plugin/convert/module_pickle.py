"""Read whole-module pickles (``torch.save(netG, "G.pth")``) as state dicts, never importing their classes.

``torch.load(weights_only=True)`` refuses such files: they name the module classes (``__main__.Generator``,
``torch.nn.modules.conv.ConvTranspose2d`` ...), which an ordinary unpickler imports and instantiates. Here
each class name becomes an inert :class:`ModuleRecord` type (made on the fly, never imported): the pickle's
``NEWOBJ`` creates an empty record and its ``BUILD`` hands the module's ``__dict__`` to
:meth:`ModuleRecord.__setstate__`, which keeps only ``_parameters``, ``_buffers``, ``_modules`` and plain
attributes. The tree is then flattened with :meth:`~.safe_unpickler.PersistentRecord.state_dict` (keys
``main.0.weight`` ...), and the key tables of the converters take it from there.

What a whole-module pickle may name, beyond :data:`~.safe_unpickler.ALLOWED_GLOBALS`:

* ``torch.nn.modules.<file>.<Class>`` where ``torch.nn.<Class>`` is a ``torch.nn.Module`` subclass;
* a class of the user's own code (``__main__.Generator``, ``models.dcgan.Generator``): any ``module.Class``
  whose top-level package is neither in the standard library nor ``torch``/``numpy`` (those hold functions
  such as ``os.system`` or ``builtins.eval``, refused with the name they needed).

A record may only be created the way ``torch.save`` creates modules (``NEWOBJ`` without arguments) and built
once; a class called with arguments, as a function would be (``REDUCE``), is refused, and so is a record
never given a module ``__dict__``.
"""

from __future__ import annotations

import logging
import sys
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, ClassVar

import torch

from .pickle_scan import CheckpointLimitError
from .safe_unpickler import PersistentRecord, Source, UnsafePickleError, module_state_fields, safe_load

__all__ = ["ModuleRecord", "is_module_pickle", "load_checkpoint_state", "load_module_pickle"]

logger = logging.getLogger(__name__)

#: Most distinct classes a whole-module pickle may name.
MAX_CLASSES = 1024
_REFUSED_PACKAGES = frozenset(sys.stdlib_module_names) | {"torch", "numpy", "torchvision", "dill", "cloudpickle"}
_TORCH_NN = "torch.nn.modules."


class ModuleRecord(PersistentRecord):
    """An inert record of one pickled ``torch.nn.Module``; each pickled class gets its own subclass."""

    pickled_class: ClassVar[str] = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> ModuleRecord:
        if args or kwargs:
            raise UnsafePickleError(
                cls.pickled_class,
                "a whole-module pickle may only create module objects (NEWOBJ without arguments); this pickle "
                "calls it with arguments, as it would call a function.",
            )
        record = object.__new__(cls)
        vars(record).update(vars(PersistentRecord(cls.pickled_class)))
        record._built = False
        return record

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # `cls()` via REDUCE: __new__ already checked
        pass

    def __setstate__(self, state: Any) -> None:
        if self._built:
            raise UnsafePickleError(f"BUILD on {self.class_name}", "a module record may be built only once.")
        if not isinstance(state, dict) or "_parameters" not in state or "_modules" not in state:
            raise UnsafePickleError(
                self.class_name, "it was given no torch.nn.Module state (`_parameters`, `_modules`): not a module."
            )
        vars(self).update(module_state_fields(self.class_name, state))
        self._built = True


class _RecordTypes:
    """``find_global`` for :func:`~.safe_unpickler.safe_load`: class names to :class:`ModuleRecord` types."""

    def __init__(self) -> None:
        self.types: dict[str, type[ModuleRecord]] = {}

    def __call__(self, module: str, name: str) -> type[ModuleRecord]:
        key = f"{module}.{name}"[:200]
        if module.startswith(_TORCH_NN):
            known = getattr(torch.nn, name, None)
            if not (isinstance(known, type) and issubclass(known, torch.nn.Module)):
                raise UnsafePickleError(key, f"it is not a torch.nn module class (torch.nn.{name}).")
        elif module.split(".")[0] in _REFUSED_PACKAGES or not name.isidentifier() or not name[:1].isupper():
            raise UnsafePickleError(
                key,
                "a whole-module pickle may name tensors, torch.nn module classes and classes of your own code; "
                "this one needs a function or class of the standard library, torch or numpy.",
            )
        if key not in self.types:
            if len(self.types) >= MAX_CLASSES:
                raise CheckpointLimitError(f"Whole-module pickle names more than {MAX_CLASSES} classes.")
            self.types[key] = type(f"{name}Record", (ModuleRecord,), {"pickled_class": key})
        return self.types[key]


def _flatten(obj: Any) -> Any:
    """Replace module records in `obj` (a record or a dict of them) by their state dicts."""
    if isinstance(obj, ModuleRecord):
        for name, record in obj.named_records():
            if isinstance(record, ModuleRecord) and not record._built:
                raise UnsafePickleError(record.class_name, f"module {name or '<root>'!r} was never given its state.")
        return obj.state_dict()
    if isinstance(obj, Mapping):
        return OrderedDict((k, _flatten(v) if isinstance(v, ModuleRecord) else v) for k, v in obj.items())
    return obj


def load_module_pickle(src: Source, *, read_data: bool = True) -> Any:
    """Load a whole-module pickle (or a dict holding modules) with every module replaced by its state dict.

    With ``read_data=False`` the tensor data of ``torch.save`` files is not read (tensors on ``meta``).

    Example:

    >>> import io, torch
    >>> from sefa_plugin.convert.module_pickle import load_module_pickle
    >>> buf = io.BytesIO()
    >>> torch.save(torch.nn.Sequential(torch.nn.Linear(2, 3)), buf)
    >>> {k: tuple(v.shape) for k, v in load_module_pickle(buf.getvalue()).items()}
    {'0.weight': (3, 2), '0.bias': (3,)}

    Raises:
        UnsafePickleError: The pickle needs a global that is neither allow-listed nor a module class (its
            name is in the message), or uses a record other than as a module.
    """
    return _flatten(safe_load(src, find_global=_RecordTypes(), read_data=read_data))


def is_module_pickle(strings: set[str]) -> bool:
    """Whether a pickle's strings (:func:`sefa_plugin.convert._pickle_strings`) show pickled modules."""
    return "_modules" in strings and "_parameters" in strings and any(s.startswith(_TORCH_NN) for s in strings)


def load_checkpoint_state(path: Source, *, read_data: bool = True) -> dict[str, Any]:
    """A ``torch.save`` checkpoint as a dict: whole-module pickles flattened to state dicts, others as saved.

    Both go through the restricted unpickler; nothing in the file is imported or executed.

    Raises:
        ValueError: The file does not hold a dict or a module.
    """
    data = load_module_pickle(path, read_data=read_data)
    if not isinstance(data, Mapping):
        raise ValueError(f"The checkpoint holds a {type(data).__name__}, not a state dict or a module.")
    return dict(data)
