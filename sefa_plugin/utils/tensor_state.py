"""Cheap change detection for a module's tensors, so values derived from weights can be cached safely.

A :class:`TensorsSnapshot` records, for every tensor of a state dict (taken with ``keep_vars=True``, so
the module's own parameter and buffer objects): the tensor object itself (weakly), its storage (weakly),
its data pointer, dtype, device, shape and stride, and its **version counter** (``tensor._version``),
which PyTorch bumps on every in-place write through the tensor or any view of it (``copy_``, ``add_``,
``load_state_dict``, optimizer steps). A later state dict *matches* the snapshot only if every entry is
still the same object on the same live storage at the same version; replacing a parameter, moving or
casting the module (``.to()``, ``.half()``, which swap ``param.data``) or writing to it in place all
break the match, and nothing is kept alive by the snapshot.

Not seen (documented limits of version counters): in-place writes through ``param.data`` or through a
NumPy array sharing the memory. Code that writes weights that way must drop derived caches itself (see
:func:`sefa_plugin.hub.forget_weights_sha256`).
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping

import torch
from torch.multiprocessing.reductions import StorageWeakRef

__all__ = ["TensorsSnapshot"]


def _entry(name: str, t: torch.Tensor) -> tuple:
    storage = t.untyped_storage()
    return (
        name,
        weakref.ref(t),
        StorageWeakRef(storage),
        t.data_ptr(),
        t._version,
        t.dtype,
        t.device,
        tuple(t.shape),
        t.stride(),
    )


class TensorsSnapshot:
    """Identity and version of every tensor in a mapping; see the module docstring.

    Example:

    >>> import torch
    >>> layer = torch.nn.Linear(2, 2)
    >>> snap = TensorsSnapshot.of(layer.state_dict(keep_vars=True))
    >>> snap.matches(layer.state_dict(keep_vars=True))
    True
    >>> with torch.no_grad():
    ...     _ = layer.weight.mul_(2)
    >>> snap.matches(layer.state_dict(keep_vars=True))
    False
    """

    __slots__ = ("_entries",)

    def __init__(self, entries: list[tuple]) -> None:
        self._entries = entries

    @classmethod
    def of(cls, tensors: Mapping[str, torch.Tensor]) -> TensorsSnapshot | None:
        """Snapshot `tensors`, or None where a change could not be detected (inference or meta tensors)."""
        try:
            entries = [_entry(name, t) for name, t in tensors.items() if not t.is_inference()]
        except (RuntimeError, NotImplementedError):  # e.g. tensors without storage
            return None
        if len(entries) != len(tensors):  # inference tensors have no version counter
            return None
        return cls(entries)

    def matches(self, tensors: Mapping[str, torch.Tensor]) -> bool:
        """True if `tensors` are the snapshot's tensor objects, on the same storage, unchanged since."""
        if len(tensors) != len(self._entries):
            return False
        for (name, ref, storage_ref, ptr, version, dtype, device, shape, stride), (key, t) in zip(
            self._entries, tensors.items(), strict=True
        ):
            if key != name or ref() is not t or t._version != version or t.data_ptr() != ptr:
                return False
            if t.dtype != dtype or t.device != device or tuple(t.shape) != shape or t.stride() != stride:
                return False
            if storage_ref.expired() or storage_ref.cdata != t.untyped_storage()._cdata:
                return False
        return True
