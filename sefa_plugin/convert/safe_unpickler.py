"""Load PyTorch checkpoints and NVIDIA network pickles without executing anything they contain.

A pickle is a small program: every ``GLOBAL`` it names is imported and may be called with arguments the
file chooses (``os.system``, ``builtins.eval``, ...). :func:`safe_load` runs that program in a
:class:`pickle.Unpickler` whose :meth:`~RestrictedUnpickler.find_class` resolves only an explicit
allow-list (:data:`ALLOWED_GLOBALS`) of inert constructors: tensors, parameters, storages, ``OrderedDict``,
sets, numpy arrays/scalars of non-object dtypes. Any other global raises :class:`UnsafePickleError`
*before* it is imported or called.

Supported containers (detected from the bytes, never from the file name):

* **zip** ``torch.save`` files (PyTorch >= 1.6): ``<archive>/data.pkl`` is unpickled with the
  restricted unpickler; tensor storages are pickled as *persistent ids*
  ``("storage", storage_type, key, location, numel)`` and read from ``<archive>/data/<key>``, exactly as
  ``torch.serialization`` does, but through our own ``persistent_load``.
* **legacy** ``torch.save`` files (``_use_new_zipfile_serialization=False``): a magic number, a protocol
  version, a ``sys_info`` dict, the object pickle (same persistent ids, with a trailing ``view_metadata``
  that must be ``None``), the list of storage keys, then per key an int64 element count and raw bytes.
* **plain pickles** such as NVIDIA's ``network-snapshot-*.pkl`` (stylegan2-ada-pytorch / stylegan3),
  written with ``pickle.dump``. There, each tensor storage is reduced to
  ``torch.storage._load_from_bytes(<legacy torch.save bytes>)``, which we map to our legacy reader.

NVIDIA's networks are pickled through ``torch_utils.persistence``: every network object is reduced to
``torch_utils.persistence._reconstruct_persistent_obj(meta)``, where ``meta`` holds ``type``
(``"class"``), ``version``, ``module_src`` (the *source code* of the module defining the class, which
NVIDIA's loader ``exec``-utes), ``class_name`` and ``state`` (the object's ``__dict__``: ``_parameters``,
``_buffers``, ``_modules``, ``_init_args``, ``_init_kwargs``, plain attributes). We map that global to
:func:`_reconstruct_persistent_record`, which returns an inert :class:`PersistentRecord` and only ever
hashes ``module_src``. ``dnnlib.EasyDict`` (used in NVIDIA's ``init_kwargs``) maps to :class:`AttrDict`.

Why not ``torch.load(weights_only=True)``? It handles the zip and legacy formats, but NVIDIA's files are
plain pickles that ``torch.load`` cannot open at all, and the nested ``_load_from_bytes`` blobs plus the
persistence hook would need process-wide ``add_safe_globals`` registrations. One restricted unpickler
with one allow-list covers all three containers, and never reaches ``torch.load``'s TorchScript dispatch
or its legacy "container source" checks. (The rosinality converter, whose files are ordinary
``torch.save`` checkpoints, does use ``torch.load(weights_only=True)``.)

Example:

>>> import io, pickle, torch
>>> from sefa_plugin.convert.safe_unpickler import safe_load
>>> safe_load(io.BytesIO(pickle.dumps({"w": torch.ones(2)})))["w"]
tensor([1., 1.])
"""

from __future__ import annotations

import _compat_pickle
import hashlib
import io
import math
import os
import pickle
import reprlib
import struct
import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np
import torch

from .pickle_scan import CheckpointLimitError, scan_pickle, stream_end

__all__ = [
    "ALLOWED_GLOBALS",
    "NVIDIA_PERSISTENT_GLOBAL",
    "AttrDict",
    "CheckpointLimitError",
    "PersistentRecord",
    "RestrictedUnpickler",
    "UnsafePickleError",
    "safe_load",
]

#: ``torch.save``'s legacy-format magic number (``torch.serialization.MAGIC_NUMBER``).
LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
#: ``torch.save``'s legacy-format protocol version.
LEGACY_PROTOCOL_VERSION = 1001
ZIP_MAGIC = b"PK\x03\x04"
#: The global NVIDIA's ``torch_utils.persistence`` reduces every persistent network object to.
NVIDIA_PERSISTENT_GLOBAL = "torch_utils.persistence._reconstruct_persistent_obj"
#: Most records a module tree may hold, and how deep it may nest.
MAX_RECORDS = 100_000
MAX_RECORD_DEPTH = 64
#: Most dimensions of a rebuilt tensor.
MAX_TENSOR_DIMS = 32
# `state` entries of a torch.nn.Module that are bookkeeping, not weights or configuration.
_MODULE_BOOKKEEPING = ("training", "_non_persistent_buffers_set", "_is_full_backward_hook")

Source = str | os.PathLike | bytes | IO[bytes]


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle names a global outside the allow-list; nothing from it was imported or called.

    Attributes:
        global_name: The refused global, as ``"module.name"``.
    """

    def __init__(self, global_name: str, reason: str | None = None) -> None:
        self.global_name = global_name
        message = f"Refusing to load global {global_name!r}: " + (
            reason
            or "it is not on the allow-list of sefa_plugin.convert.safe_unpickler (only tensors, "
            "parameters, storages, OrderedDicts, primitive containers and numpy arrays/scalars are rebuilt)."
        )
        super().__init__(message)


class AttrDict(dict):
    """Inert stand-in for NVIDIA's ``dnnlib.EasyDict``: a dict whose keys are also attributes."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # never let a pickled key answer for `__setstate__` & co. (BUILD looks it up)
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


@dataclass(repr=False)
class PersistentRecord:
    """Inert description of one NVIDIA ``torch_utils.persistence`` object (nothing is instantiated).

    Attributes:
        class_name: ``meta["class_name"]``, e.g. ``"Generator"`` or ``"SynthesisLayer"``.
        version: ``meta["version"]`` of NVIDIA's persistence format.
        module_src_sha256: SHA-256 of the pickled module source (the source itself is dropped unread).
        init_args: Positional constructor arguments recorded by the persistence decorator.
        init_kwargs: Keyword constructor arguments recorded by the persistence decorator.
        parameters: ``_parameters`` (name to tensor, or None for an absent bias).
        buffers: ``_buffers`` (name to tensor, or None).
        non_persistent_buffers: Buffer names excluded from :meth:`state_dict`.
        modules: ``_modules``: child records (or None).
        attributes: The other plain attributes of the object's ``__dict__`` (hooks and bookkeeping omitted).
    """

    class_name: str
    version: int | None = None
    module_src_sha256: str | None = None
    init_args: tuple = ()
    init_kwargs: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, torch.Tensor | None] = field(default_factory=dict)
    buffers: dict[str, torch.Tensor | None] = field(default_factory=dict)
    non_persistent_buffers: frozenset[str] = frozenset()
    modules: dict[str, PersistentRecord | None] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)

    def named_records(self, prefix: str = "") -> Iterator[tuple[str, PersistentRecord]]:
        """Yield ``(dotted_name, record)`` for this record and every descendant, parents first.

        Raises:
            CheckpointLimitError: The tree nests deeper than ``MAX_RECORD_DEPTH`` (a cycle does too) or holds
                more than ``MAX_RECORDS`` records.
        """
        pending: list[tuple[str, PersistentRecord, int]] = [(prefix, self, 0)]
        count = 0
        while pending:
            name, record, depth = pending.pop()
            count += 1
            if depth > MAX_RECORD_DEPTH or count > MAX_RECORDS:
                raise CheckpointLimitError(
                    f"Module tree of {self.class_name!r} nests deeper than {MAX_RECORD_DEPTH} levels or holds more "
                    f"than {MAX_RECORDS} modules (at {name!r}); it may be cyclic."
                )
            yield name, record
            children = [(f"{name}.{k}" if name else str(k), c, depth + 1) for k, c in record.modules.items() if c]
            pending.extend(reversed(children))

    def __setstate__(self, state: Any) -> None:
        raise UnsafePickleError(
            f"BUILD on {self.class_name}", "a pickle may not overwrite the fields of a rebuilt module record."
        )

    def __repr__(self) -> str:  # shallow: a record tree may be large (or, if crafted, deep)
        return (
            f"{type(self).__name__}({self.class_name!r}, {len(self.parameters)} parameters, "
            f"{len(self.buffers)} buffers, {len(self.modules)} modules)"
        )

    def get(self, path: str) -> PersistentRecord:
        """The descendant at dotted `path` (``""`` is this record).

        Raises:
            KeyError: naming the first missing component.
        """
        record = self
        for part in filter(None, path.split(".")):
            child = record.modules.get(part)
            if child is None:
                raise KeyError(f"{record.class_name} record has no child module {part!r} (path {path!r}).")
            record = child
        return record

    def state_dict(self) -> OrderedDict[str, torch.Tensor]:
        """Parameters and persistent buffers of the whole tree, keyed like ``nn.Module.state_dict``."""
        out: OrderedDict[str, torch.Tensor] = OrderedDict()
        for prefix, record in self.named_records():
            dot = f"{prefix}." if prefix else ""
            for name, tensor in record.parameters.items():
                if tensor is not None:
                    out[dot + name] = tensor.detach()
            for name, tensor in record.buffers.items():
                if tensor is not None and name not in record.non_persistent_buffers:
                    out[dot + name] = tensor
        return out


# ----------------------------------------------------------------------------------------- rebuilders
def _refuse_build(self: Any, state: Any) -> None:
    """``__setstate__`` of objects the unpickler rebuilds whole: a pickle's BUILD may not overwrite them."""
    raise UnsafePickleError(f"BUILD on {type(self).__name__}", "a pickle may not overwrite a rebuilt object.")


@dataclass(frozen=True)
class _StorageType:
    """What a storage class global (``torch.FloatStorage`` ...) resolves to: just its dtype."""

    name: str
    dtype: torch.dtype

    __setstate__ = _refuse_build


@dataclass(eq=False)
class _LoadedStorage:
    """A storage read from a checkpoint: an untyped byte storage plus the dtype it holds."""

    untyped: torch.UntypedStorage
    dtype: torch.dtype

    __setstate__ = _refuse_build


_STORAGE_DTYPES: dict[str, torch.dtype] = {
    "DoubleStorage": torch.float64,
    "FloatStorage": torch.float32,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "ComplexFloatStorage": torch.complex64,
    "ComplexDoubleStorage": torch.complex128,
    "UntypedStorage": torch.uint8,
}


_DTYPE_NAMES = (
    "float16", "float32", "float64", "bfloat16", "half", "float", "double", "complex64", "complex128",
    "cfloat", "cdouble", "uint8", "int8", "int16", "int32", "int64", "short", "int", "long", "bool",
)  # fmt: skip


def _element_size(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def _check_hooks(hooks: Any, where: str) -> None:
    if hooks:  # an OrderedDict of callables; real checkpoints always have none
        raise UnsafePickleError(f"torch._utils.{where}", "tensors with backward hooks are not rebuilt.")


def _rebuild_tensor(storage: Any, storage_offset: int, size: Any, stride: Any) -> torch.Tensor:
    if not isinstance(storage, _LoadedStorage):
        raise pickle.UnpicklingError(f"Tensor storage must come from the checkpoint, got {type(storage)}.")
    if not isinstance(size, tuple | list) or not isinstance(stride, tuple | list) or len(size) > MAX_TENSOR_DIMS:
        raise CheckpointLimitError(f"Tensor `size`/`stride` must be sequences of at most {MAX_TENSOR_DIMS} ints.")
    size, stride = tuple(size), tuple(stride)
    values = (storage_offset, *size, *stride)
    if len(size) != len(stride) or not all(type(v) is int and 0 <= v < 1 << 62 for v in values):
        raise CheckpointLimitError(
            f"Invalid tensor geometry: `storage_offset` {storage_offset!r}, `size` and `stride` must be "
            f"non-negative ints of equal length (got {len(size)} sizes, {len(stride)} strides)."
        )
    # `Tensor.set_` does not check the geometry against the storage: an out-of-bounds view would read
    # (or later write) foreign memory, and a stride-0 view of one element could claim 10^12 elements that
    # any later copy materialises. So a tensor must fit its storage and claim no more elements than it holds.
    numel = math.prod(size)
    available = storage.untyped.nbytes() // _element_size(storage.dtype)
    if numel and numel > available:
        raise CheckpointLimitError(
            f"Tensor `size` {list(size)} claims {numel} elements, which does not fit its storage of {available}."
        )
    if numel:
        last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
        if last + 1 > available:
            raise CheckpointLimitError(
                f"Tensor of `size` {list(size)}, `stride` {list(stride)}, `storage_offset` {storage_offset} "
                f"does not fit its storage of {available} elements."
            )
    empty = torch.empty((0,), dtype=storage.dtype, device=storage.untyped.device)  # "meta" when data is not read
    return empty.set_(storage.untyped, storage_offset, size, stride)


def _rebuild_tensor_v1(storage: Any, storage_offset: int, size: Any, stride: Any) -> torch.Tensor:
    return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v2(
    storage: Any,
    storage_offset: int,
    size: Any,
    stride: Any,
    requires_grad: bool,
    backward_hooks: Any,
    metadata: Any = None,
) -> torch.Tensor:
    _check_hooks(backward_hooks, "_rebuild_tensor_v2")
    tensor = _rebuild_tensor(storage, storage_offset, size, stride)
    if requires_grad and tensor.is_floating_point():
        tensor.requires_grad_(True)
    return tensor


def _rebuild_tensor_v3(
    storage: Any,
    storage_offset: int,
    size: Any,
    stride: Any,
    requires_grad: bool,
    backward_hooks: Any,
    dtype: Any,
    metadata: Any = None,
) -> torch.Tensor:
    if not isinstance(dtype, torch.dtype) or not isinstance(storage, _LoadedStorage):
        raise pickle.UnpicklingError("_rebuild_tensor_v3 needs a checkpoint storage and a torch.dtype.")
    storage = _LoadedStorage(storage.untyped, dtype)
    return _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks)


def _rebuild_parameter(data: Any, requires_grad: bool, backward_hooks: Any) -> torch.nn.Parameter:
    _check_hooks(backward_hooks, "_rebuild_parameter")
    if not isinstance(data, torch.Tensor):
        raise pickle.UnpicklingError(f"Parameter data must be a tensor, got {type(data)}.")
    return torch.nn.Parameter(data.detach(), requires_grad=bool(requires_grad))


def _rebuild_parameter_with_state(
    data: Any, requires_grad: bool, backward_hooks: Any, state: Any
) -> torch.nn.Parameter:
    if state:
        raise UnsafePickleError(
            "torch._utils._rebuild_parameter_with_state", "parameters carrying extra Python state are not rebuilt."
        )
    return _rebuild_parameter(data, requires_grad, backward_hooks)


def _bytearray(data: Any = b"", encoding: str | None = None) -> bytearray:
    """``builtins.bytearray`` for pickled byte arrays only: never ``bytearray(n)``, which allocates n bytes."""
    if isinstance(data, str) and encoding in ("latin1", "latin-1"):
        return bytearray(data, encoding)
    if not isinstance(data, bytes | bytearray) or encoding is not None:
        raise CheckpointLimitError("`builtins.bytearray` may only copy bytes (a pickled bytearray), not allocate.")
    return bytearray(data)


def _codecs_encode(obj: Any, encoding: str = "utf-8") -> bytes:
    """Protocol-2 pickles store ``bytes`` as ``_codecs.encode(str, "latin1")``."""
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError("_codecs.encode", "only the latin-1 bytes encoding of protocol-2 pickles is allowed.")
    return obj.encode("latin1")


def _numpy_dtype(obj: Any, align: bool = False, copy: bool = False) -> np.dtype:
    dtype = np.dtype(obj, align=bool(align), copy=bool(copy))
    if dtype.hasobject:
        raise UnsafePickleError("numpy.dtype", "numpy object dtypes are not rebuilt.")
    return dtype


class _NdarrayType:
    """What the global ``numpy.ndarray`` resolves to: a marker for ``_reconstruct``, never callable."""

    __slots__ = ()


_NDARRAY = _NdarrayType()


def _numpy_reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    """``numpy.core.multiarray._reconstruct``: an empty ndarray that the following BUILD fills."""
    if subtype is not _NDARRAY:
        raise UnsafePickleError("numpy.core.multiarray._reconstruct", "only plain numpy.ndarray is rebuilt.")
    # numpy always pickles `_reconstruct(ndarray, (0,), b"b")`; the data comes by BUILD.
    if type(shape) not in (tuple, list) or len(shape) != 1 or type(shape[0]) is not int or shape[0] != 0:
        raise CheckpointLimitError("numpy `_reconstruct` `shape` must be (0,): the array's data comes by BUILD.")
    return np.ndarray((0,), dtype=_numpy_dtype(dtype))


def _numpy_frombuffer(buffer: Any, dtype: Any, shape: Any, order: str = "C") -> np.ndarray:
    """``numpy._core.numeric._frombuffer``: how numpy pickles arrays with protocol 5."""
    dtype = _numpy_dtype(dtype)
    if not isinstance(buffer, bytes | bytearray | pickle.PickleBuffer) or order not in ("C", "F"):
        raise UnsafePickleError("numpy._core.numeric._frombuffer", "only in-band byte buffers are rebuilt.")
    return np.frombuffer(bytes(buffer), dtype=dtype).reshape(tuple(shape), order=order).copy()


def _numpy_scalar(dtype: Any, data: Any = None) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise UnsafePickleError("numpy.core.multiarray.scalar", "only non-object numpy scalars are rebuilt.")
    if len(data) != dtype.itemsize:
        raise pickle.UnpicklingError(f"numpy scalar of {dtype} needs {dtype.itemsize} bytes, got {len(data)}.")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _load_from_bytes(data: Any) -> _LoadedStorage:
    """``torch.storage._load_from_bytes``: a storage serialised as a nested legacy ``torch.save`` blob."""
    if not isinstance(data, bytes | bytearray):
        raise pickle.UnpicklingError(f"torch.storage._load_from_bytes expects bytes, got {type(data)}.")
    result = _load_legacy(io.BytesIO(data), backing=data)
    if not isinstance(result, _LoadedStorage):
        raise pickle.UnpicklingError("A nested torch.storage._load_from_bytes blob did not hold a storage.")
    return result


def _reconstruct_persistent_record(meta: Any) -> PersistentRecord:
    """Stand-in for NVIDIA's ``_reconstruct_persistent_obj``: describe the object, never build it.

    ``meta["module_src"]`` is hashed, not executed, imported or otherwise interpreted.
    """
    if not isinstance(meta, dict):
        raise pickle.UnpicklingError(f"{NVIDIA_PERSISTENT_GLOBAL} expects a meta dict, got {type(meta)}.")
    if meta.get("type") != "class" or not isinstance(meta.get("class_name"), str):
        raise pickle.UnpicklingError(
            f"{NVIDIA_PERSISTENT_GLOBAL}: unsupported meta (type={meta.get('type')!r}, "
            f"class_name={meta.get('class_name')!r})."
        )
    src = meta.get("module_src")
    digest = hashlib.sha256(src.encode("utf-8")).hexdigest() if isinstance(src, str) else None
    state = meta.get("state")
    if not isinstance(state, dict):
        raise pickle.UnpicklingError(f"{NVIDIA_PERSISTENT_GLOBAL}: `state` of {meta['class_name']} is not a dict.")
    return PersistentRecord(
        version=meta.get("version"), module_src_sha256=digest, **module_state_fields(meta["class_name"], state)
    )


def module_state_fields(class_name: str, state: dict) -> dict[str, Any]:
    """:class:`PersistentRecord` fields from a pickled ``torch.nn.Module``'s ``__dict__`` (`state`).

    Raises:
        pickle.UnpicklingError: ``_parameters``/``_buffers`` hold non-tensors or ``_modules`` non-records.
    """
    state = dict(state)

    def pop_mapping(key: str, allowed: tuple[type, ...]) -> dict[str, Any]:
        value = state.pop(key, None) or {}
        if not isinstance(value, dict) or not all(v is None or isinstance(v, allowed) for v in value.values()):
            raise pickle.UnpicklingError(f"{class_name}.{key} holds unexpected values.")
        return {str(k): v for k, v in value.items()}

    parameters = pop_mapping("_parameters", (torch.Tensor,))
    buffers = pop_mapping("_buffers", (torch.Tensor,))
    modules = pop_mapping("_modules", (PersistentRecord,))
    non_persistent = state.get("_non_persistent_buffers_set") or ()
    if not isinstance(non_persistent, set | frozenset | list | tuple):
        raise pickle.UnpicklingError(f"{class_name}._non_persistent_buffers_set is not a set.")
    init_args = state.pop("_init_args", ()) or ()
    init_kwargs = state.pop("_init_kwargs", {}) or {}
    if not isinstance(init_args, tuple | list) or not isinstance(init_kwargs, dict):
        raise pickle.UnpicklingError(f"{class_name}._init_args/_init_kwargs are not a tuple and a dict.")
    attributes = {
        k: v for k, v in state.items() if k not in _MODULE_BOOKKEEPING and not (k.startswith("_") and "hooks" in k)
    }
    return {
        "class_name": class_name,
        "init_args": tuple(init_args),
        "init_kwargs": dict(init_kwargs),
        "parameters": parameters,
        "buffers": buffers,
        "non_persistent_buffers": frozenset(non_persistent),
        "modules": modules,
        "attributes": attributes,
    }


def _build_allowed_globals() -> dict[str, Any]:
    allowed: dict[str, Any] = {
        "collections.OrderedDict": OrderedDict,
        "builtins.set": set,
        "builtins.frozenset": frozenset,
        "builtins.bytearray": _bytearray,
        "builtins.complex": complex,
        "_codecs.encode": _codecs_encode,
        "torch.Size": torch.Size,
        "torch.device": torch.device,
        "torch._utils._rebuild_tensor": _rebuild_tensor_v1,
        "torch._utils._rebuild_tensor_v2": _rebuild_tensor_v2,
        "torch._utils._rebuild_tensor_v3": _rebuild_tensor_v3,
        "torch._utils._rebuild_parameter": _rebuild_parameter,
        "torch._utils._rebuild_parameter_with_state": _rebuild_parameter_with_state,
        "torch.storage._load_from_bytes": _load_from_bytes,
        "numpy.ndarray": _NDARRAY,
        "numpy.dtype": _numpy_dtype,
        NVIDIA_PERSISTENT_GLOBAL: _reconstruct_persistent_record,
        "dnnlib.EasyDict": AttrDict,
        "dnnlib.util.EasyDict": AttrDict,
    }
    for module in ("numpy.core", "numpy._core"):
        allowed[f"{module}.multiarray._reconstruct"] = _numpy_reconstruct
        allowed[f"{module}.multiarray.scalar"] = _numpy_scalar
        allowed[f"{module}.numeric._frombuffer"] = _numpy_frombuffer
    for name, dtype in _STORAGE_DTYPES.items():
        for module in ("torch", "torch.cuda", "torch.storage"):
            allowed[f"{module}.{name}"] = _StorageType(name, dtype)
    for name in _DTYPE_NAMES:  # dtypes pickle as plain globals, e.g. `torch.float16`
        if isinstance(getattr(torch, name, None), torch.dtype):
            allowed[f"torch.{name}"] = getattr(torch, name)
    return allowed


#: Every global a checkpoint may name, as ``"module.name"``, and the inert object it resolves to.
ALLOWED_GLOBALS: dict[str, Any] = _build_allowed_globals()
_TENSOR_REBUILDERS = (
    _rebuild_tensor_v1, _rebuild_tensor_v2, _rebuild_tensor_v3, _rebuild_parameter, _rebuild_parameter_with_state
)  # fmt: skip


class RestrictedUnpickler(pickle.Unpickler):
    """:class:`pickle.Unpickler` that resolves globals only from :data:`ALLOWED_GLOBALS`.

    Before unpickling, :func:`~.pickle_scan.scan_pickle` checks the program's declared sizes, memo indices
    and nesting against the stream (the stream must be seekable). Tensors it rebuilds refuse ``BUILD``
    while it runs (``Tensor.__setstate__`` would ``set_`` them to any geometry).

    Args:
        file: Seekable binary stream positioned at a pickle.
        persistent_load: Callable resolving persistent ids (tensor storages); None refuses them.
        find_global: Called as ``find_global(module, name)`` for globals outside the allow-list (e.g. the
            inert module records of :mod:`.module_pickle`); None refuses them.
    """

    def __init__(
        self,
        file: IO[bytes],
        persistent_load: Callable[[Any], Any] | None = None,
        find_global: Callable[[str, str], Any] | None = None,
    ) -> None:
        super().__init__(file)
        self._file = file
        self._persistent_load = persistent_load
        self._find_global = find_global
        self._rebuilt: list[torch.Tensor] = []

    def load(self) -> Any:
        start = self._file.tell()
        scan_pickle(self._file)
        self._file.seek(start)
        try:
            return super().load()
        except (pickle.UnpicklingError, ValueError):
            raise
        except (
            RecursionError, MemoryError, OverflowError, AttributeError, TypeError, KeyError, IndexError, EOFError,
            RuntimeError,
        ) as err:  # fmt: skip
            raise pickle.UnpicklingError(f"Malformed pickle ({type(err).__name__}: {str(err)[:200]}).") from None
        finally:
            for tensor in self._rebuilt:
                vars(tensor).pop("__setstate__", None)

    def _tracked(self, rebuild: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        def wrapper(*args: Any) -> torch.Tensor:
            tensor = rebuild(*args)
            tensor.__setstate__ = _refuse_build.__get__(tensor)  # shadows Tensor.__setstate__ during this load
            self._rebuilt.append(tensor)
            return tensor

        return wrapper

    def find_class(self, module: str, name: str) -> Any:
        # Python-2 era names (protocol <= 2 pickles), e.g. `__builtin__.set` -> `builtins.set`.
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if not isinstance(module, str) or not isinstance(name, str):
            raise UnsafePickleError(f"{str(module)[:100]}.{str(name)[:100]}")
        key = f"{module}.{name}"
        if key in ALLOWED_GLOBALS:
            value = ALLOWED_GLOBALS[key]
            return self._tracked(value) if value in _TENSOR_REBUILDERS else value
        if self._find_global is not None:
            return self._find_global(module, name)
        raise UnsafePickleError(key[:200])

    def persistent_load(self, pid: Any) -> Any:
        if self._persistent_load is None:
            raise pickle.UnpicklingError(f"Unexpected persistent id {reprlib.repr(pid)} in a plain pickle.")
        return self._persistent_load(pid)


# ----------------------------------------------------------------------------------------- containers
def _storage_from_pid(pid: Any, expected_len: int) -> tuple[str, torch.dtype, int]:
    """Validate a ``("storage", storage_type, key, location, numel[, view_metadata])`` persistent id."""
    if not isinstance(pid, tuple) or len(pid) != expected_len:
        raise pickle.UnpicklingError(f"Unsupported persistent id {reprlib.repr(pid)}.")
    typename = pid[0].decode("ascii") if isinstance(pid[0], bytes) else pid[0]
    if typename != "storage":
        raise UnsafePickleError(f"persistent id {typename!r}", "only tensor storages may be persistent ids.")
    storage_type, key, _location, numel = pid[1:5]
    if not isinstance(storage_type, _StorageType):
        raise pickle.UnpicklingError(f"Persistent storage id names {reprlib.repr(storage_type)}, not a storage type.")
    if not isinstance(numel, int) or numel < 0:
        raise pickle.UnpicklingError(f"Invalid storage size {reprlib.repr(numel)} for storage {reprlib.repr(key)}.")
    return str(key), storage_type.dtype, numel


def _readonly_view(data: bytes, offset: int, nbytes: int) -> torch.UntypedStorage:
    """A storage over ``data[offset:offset + nbytes]`` without copying (it keeps `data` alive)."""
    with warnings.catch_warnings():  # "non-writable buffer": the converters only read these tensors
        warnings.simplefilter("ignore", UserWarning)
        return torch.frombuffer(data, dtype=torch.uint8, count=nbytes, offset=offset).untyped_storage()


def read_zip_member(
    archive: zipfile.ZipFile, name: str, archive_size: int, expected: int | None = None, read: bool = True
) -> bytes:
    """Read one member of a zip archive after checking its declared size (before anything is inflated).

    A member may not declare more bytes than the whole archive holds (``torch.save`` stores members
    uncompressed, so a larger one is a decompression bomb), nor other than `expected` bytes when given.

    Raises:
        CheckpointLimitError: naming the member and both sizes.
    """
    declared = archive.getinfo(name).file_size
    if declared > archive_size:
        raise CheckpointLimitError(
            f"Zip member {name!r} declares {declared} bytes, more than the whole archive ({archive_size} bytes): "
            f"it would inflate past the file (torch.save stores members uncompressed)."
        )
    if expected is not None and declared != expected:
        raise CheckpointLimitError(f"Zip member {name!r} declares {declared} bytes, expected {expected}.")
    return archive.read(name) if read else b""


def torch_zip_pickle(archive: zipfile.ZipFile) -> str:
    """The ``<archive>/data.pkl`` member of a ``torch.save`` zip archive."""
    pkl = [n for n in archive.namelist() if n.endswith("data.pkl") and n.count("/") == 1]
    if len(pkl) != 1:
        raise ValueError(f"Not a torch.save zip archive (found {len(pkl)} '<archive>/data.pkl' records).")
    return pkl[0]


def _load_zip(file: IO[bytes], find_global: Callable[[str, str], Any] | None = None, read_data: bool = True) -> Any:
    size = stream_end(file)
    with zipfile.ZipFile(file) as archive:
        names = set(archive.namelist())
        pkl = torch_zip_pickle(archive)
        prefix = pkl[: -len("data.pkl")]
        if f"{prefix}constants.pkl" in names:
            raise ValueError("This zip archive is a TorchScript module (it holds code); it is not loaded.")
        byteorder = f"{prefix}byteorder"
        if byteorder in names and read_zip_member(archive, byteorder, 16) != b"little":
            raise ValueError("Big-endian torch.save archives are not supported.")
        cache: dict[str, _LoadedStorage] = {}

        def persistent_load(pid: Any) -> _LoadedStorage:
            key, dtype, numel = _storage_from_pid(pid, 5)
            if key not in cache:
                record = f"{prefix}data/{key}"
                if record not in names:
                    raise pickle.UnpicklingError(f"Storage record {record!r} is missing from the archive.")
                nbytes = numel * _element_size(dtype)
                if not read_data:  # sizes checked, data left unread: a meta storage of the declared size
                    read_zip_member(archive, record, size, nbytes, read=False)
                    cache[key] = _LoadedStorage(torch.UntypedStorage(nbytes, device="meta"), dtype)
                    return cache[key]
                raw = read_zip_member(archive, record, size, nbytes)
                cache[key] = _LoadedStorage(_readonly_view(raw, 0, len(raw)) if raw else torch.UntypedStorage(0), dtype)
            return cache[key]

        program = io.BytesIO(read_zip_member(archive, pkl, size))
        return RestrictedUnpickler(program, persistent_load, find_global).load()


def _load_legacy(
    file: IO[bytes],
    magic_checked: bool = False,
    backing: bytes | None = None,
    find_global: Callable[[str, str], Any] | None = None,
    read_data: bool = True,
) -> Any:
    """Read the legacy (non-zip) ``torch.save`` layout from `file`.

    `backing`, when given, is the ``bytes`` object that `file` reads (a nested ``_load_from_bytes`` blob):
    storages then become views of its raw data instead of copies, so a pickle's tensor data is held in
    memory once (the unpickler keeps those ``bytes`` objects alive until it finishes anyway). Only the
    storage records are views; a tensor that a nested blob builds itself (real blobs build none) would
    see an empty placeholder and fail the bounds check.
    """
    if not magic_checked and RestrictedUnpickler(file).load() != LEGACY_MAGIC_NUMBER:
        raise pickle.UnpicklingError("Invalid magic number: not a legacy torch.save stream.")
    protocol = RestrictedUnpickler(file).load()
    if protocol != LEGACY_PROTOCOL_VERSION:
        raise pickle.UnpicklingError(f"Unsupported legacy torch.save protocol version {protocol!r}.")
    sys_info = RestrictedUnpickler(file).load()
    if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
        raise ValueError("Big-endian legacy torch.save files are not supported.")
    storages: dict[str, _LoadedStorage] = {}
    pending: dict[str, tuple[torch.dtype, int]] = {}
    end = stream_end(file)

    def persistent_load(pid: Any) -> Any:
        # A legacy whole-module save replaces each module class by ("module", class, file, source): the class
        # was resolved to an inert record type by `find_global`; the source is never read.
        module_class = isinstance(pid, tuple) and len(pid) == 4 and pid[0] == "module" and find_global is not None
        if module_class and isinstance(pid[1], type) and issubclass(pid[1], PersistentRecord):
            return pid[1]
        key, dtype, numel = _storage_from_pid(pid, 6)
        if pid[5] is not None:
            raise pickle.UnpicklingError("Storage views (files from PyTorch < 1.0) are not supported.")
        if key not in storages:
            nbytes = 0 if backing is not None else numel * _element_size(dtype)
            if nbytes > end - file.tell():  # checked before allocating: the data must follow in this file
                raise CheckpointLimitError(
                    f"Storage {key!r} declares {numel} elements ({nbytes} bytes), more than the "
                    f"{end - file.tell()} bytes left in the file."
                )
            storages[key] = _LoadedStorage(torch.UntypedStorage(nbytes, device="cpu" if read_data else "meta"), dtype)
            pending[key] = (dtype, numel)
        return storages[key]

    result = RestrictedUnpickler(file, persistent_load, find_global).load()
    if not read_data:  # sizes checked against the file, data left unread (meta storages)
        return result
    keys = RestrictedUnpickler(file).load()
    if not isinstance(keys, list):
        raise pickle.UnpicklingError("Malformed legacy torch.save stream: storage key list missing.")
    for key in keys:
        if key not in pending:
            raise pickle.UnpicklingError(f"Legacy torch.save stream lists unknown storage key {key!r}.")
        dtype, numel = pending.pop(key)
        header = file.read(8)
        if len(header) != 8 or struct.unpack("<q", header)[0] != numel:
            raise pickle.UnpicklingError(f"Storage {key!r}: size header does not match {numel} elements.")
        nbytes = numel * _element_size(dtype)
        if backing is not None:
            offset = file.tell()
            if offset + nbytes > len(backing):
                raise pickle.UnpicklingError(
                    f"Storage {key!r} is truncated ({len(backing) - offset} of {nbytes} bytes)."
                )
            file.seek(offset + nbytes)
            if nbytes:
                storages[key].untyped = _readonly_view(backing, offset, nbytes)
            continue
        target = torch.empty((0,), dtype=torch.uint8).set_(storages[key].untyped)
        if file.readinto(target.numpy()) != nbytes:  # straight into the storage, no intermediate copy
            raise pickle.UnpicklingError(f"Storage {key!r} is truncated (fewer than {nbytes} bytes).")
    if pending:
        raise pickle.UnpicklingError(f"Legacy torch.save stream has no data for storages {sorted(pending)}.")
    return result


def safe_load(src: Source, find_global: Callable[[str, str], Any] | None = None, *, read_data: bool = True) -> Any:
    """Load a ``torch.save`` file (zip or legacy) or a plain pickle, allowing only inert globals.

    Tensors are rebuilt on the CPU. NVIDIA persistent objects come back as :class:`PersistentRecord`,
    ``dnnlib.EasyDict`` as :class:`AttrDict`.

    Args:
        src: A path, the file's bytes, or a seekable binary stream.
        find_global: Resolves globals outside :data:`ALLOWED_GLOBALS` in the checkpoint's object pickle
            (see :class:`RestrictedUnpickler`); None refuses them.
        read_data: False leaves the tensor data of ``torch.save`` files unread: tensors come back on the
            ``meta`` device with their shapes (for format detection). Plain pickles hold their data inline.

    Raises:
        UnsafePickleError: The file names a global outside :data:`ALLOWED_GLOBALS` (nothing was run).
        CheckpointLimitError: A declared size, index, geometry or nesting exceeds what the file holds.
        pickle.UnpicklingError: The file is malformed.
        ValueError: The container is unsupported (TorchScript archive, big-endian data).
    """
    if isinstance(src, bytes | bytearray):
        return _safe_load_stream(io.BytesIO(src), find_global, read_data)
    if isinstance(src, str | os.PathLike):
        with open(src, "rb") as handle:  # streamed: the whole file is never held in memory
            return _safe_load_stream(handle, find_global, read_data)
    return _safe_load_stream(src, find_global, read_data)


def _safe_load_stream(file: IO[bytes], find_global: Callable[[str, str], Any] | None, read_data: bool) -> Any:
    start = file.tell()
    head = file.read(4)
    file.seek(start)
    if head == ZIP_MAGIC:
        return _load_zip(file, find_global, read_data)
    first = RestrictedUnpickler(file, find_global=find_global).load()
    if isinstance(first, int) and not isinstance(first, bool) and first == LEGACY_MAGIC_NUMBER:
        return _load_legacy(file, magic_checked=True, find_global=find_global, read_data=read_data)
    return first
