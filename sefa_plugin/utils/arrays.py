"""Reading ``.npy``/``.npz`` files from users with every size checked before the data is read.

``numpy.load`` trusts a file's header: a 128-byte ``.npy`` can claim a shape of 10¹² elements, and a
kilobyte ``.npz`` member can inflate to gigabytes. :func:`load_array_file` reads each header (and, for
``.npz``, each zip member's declared size) first and refuses anything above `max_bytes`, anything whose
data the file cannot hold, and object arrays (which need pickle), before numpy allocates.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = ["MAX_ARRAY_BYTES", "MAX_NPZ_MEMBERS", "HeaderCheck", "load_array_file"]

#: Default bound on the data of one array file (all members of an ``.npz`` together): 1 GiB.
MAX_ARRAY_BYTES = 1 << 30

#: The most members an ``.npz`` may have.
MAX_NPZ_MEMBERS = 256

#: A caller's own check of one array's header, before its data is read: ``(member key or None for .npy,
#: shape, dtype)``; it raises ValueError to refuse.
HeaderCheck = Callable[[str | None, tuple[int, ...], np.dtype], None]


def _read_header(fh: IO[bytes], label: str) -> tuple[tuple[int, ...], np.dtype]:
    """Read an npy header from `fh` (positioned at its start); return ``(shape, dtype)`` without reading data."""
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version in ((2, 0), (3, 0)):
            shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except (ValueError, OSError, EOFError, SyntaxError, TypeError) as err:
        raise ValueError(f"{label} is not a readable .npy array: {err}") from None
    if dtype.hasobject:
        raise ValueError(f"{label} holds Python objects (it needs pickle, refused).")
    return tuple(int(n) for n in shape), dtype


def _data_bytes(shape: tuple[int, ...], dtype: np.dtype, label: str, max_bytes: int) -> int:
    count = 1
    for n in shape:
        count *= n  # Python ints: no overflow, however large the claimed shape
    size = count * dtype.itemsize
    if size > max_bytes:
        raise ValueError(
            f"{label} claims an array of shape {list(shape)} ({size:,} bytes), more than the limit of "
            f"{max_bytes:,} bytes."
        )
    return size


def _check_npy(path: Path, label: str, max_bytes: int, check_header: HeaderCheck | None) -> None:
    file_size = path.stat().st_size
    with open(path, "rb") as fh:
        shape, dtype = _read_header(fh, label)
        header_end = fh.tell()
    if check_header is not None:
        check_header(None, shape, dtype)
    size = _data_bytes(shape, dtype, label, max_bytes)
    if header_end + size > file_size:
        raise ValueError(
            f"{label} claims an array of shape {list(shape)} ({size:,} bytes) but holds only "
            f"{file_size - header_end:,} bytes of data (truncated or forged header)."
        )


def _check_npz(path: Path, label: str, max_bytes: int, check_header: HeaderCheck | None) -> None:
    try:
        with zipfile.ZipFile(path) as zf:
            members = zf.infolist()
            if len(members) > MAX_NPZ_MEMBERS:
                raise ValueError(f"{label} has {len(members)} members, more than the limit of {MAX_NPZ_MEMBERS}.")
            total = 0
            for info in members:
                member = f"{label} member {info.filename!r}"
                # The declared size bounds what zipfile will inflate: a member cannot grow past it.
                if info.file_size > max_bytes:
                    raise ValueError(
                        f"{member} inflates to {info.file_size:,} bytes, more than the limit of {max_bytes:,} bytes."
                    )
                with zf.open(info) as fh:
                    shape, dtype = _read_header(fh, member)
                    header_end = fh.tell()
                if check_header is not None:
                    check_header(info.filename.removesuffix(".npy"), shape, dtype)
                size = _data_bytes(shape, dtype, member, max_bytes)
                if header_end + size > info.file_size:
                    raise ValueError(
                        f"{member} claims an array of shape {list(shape)} ({size:,} bytes) but holds only "
                        f"{max(info.file_size - header_end, 0):,} bytes of data."
                    )
                total += size
                if total > max_bytes:
                    raise ValueError(f"{label} holds more than the limit of {max_bytes:,} bytes of arrays.")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as err:
        raise ValueError(f"{label} is not a readable .npz archive: {err}") from None


def load_array_file(
    path: str | os.PathLike,
    what: str = "path",
    *,
    max_bytes: int = MAX_ARRAY_BYTES,
    check_header: HeaderCheck | None = None,
) -> np.ndarray | dict[str, np.ndarray]:
    """Load a ``.npy`` array or the arrays of a ``.npz`` archive, bounded and without pickle.

    Args:
        path: The file (``.npy`` or ``.npz``, recognised by content).
        what: The argument name used in errors (e.g. ``"--scores"``).
        max_bytes: The most bytes of array data the file may hold.
        check_header: Called with every array's ``(member key or None, shape, dtype)`` before any data is
            read (e.g. to check the shape a caller needs); it raises ValueError to refuse the file.

    Returns:
        The array (``.npy``) or a dict of arrays by member name (``.npz``).

    Raises:
        ValueError: naming `what`, for a header claiming more than `max_bytes` or more than the file holds,
            an object array, or a file that is neither format.
        FileNotFoundError: The file does not exist.

    Example:

    >>> import numpy as np
    >>> np.save("/tmp/a.npy", np.arange(3.0))
    >>> load_array_file("/tmp/a.npy")
    array([0., 1., 2.])
    """
    path = Path(path)
    label = f"`{what}` {str(path)!r}"
    if not path.is_file():
        raise FileNotFoundError(f"{label} is not a file.")
    with open(path, "rb") as fh:
        head = fh.read(6)
    if head.startswith(b"PK"):
        _check_npz(path, label, max_bytes, check_header)
    elif head == b"\x93NUMPY":
        _check_npy(path, label, max_bytes, check_header)
    else:
        raise ValueError(f"{label} is neither a .npy nor a .npz file.")
    try:
        loaded: Any = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                return {name: loaded[name] for name in loaded.files}
        return loaded
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{label} is not a readable array file: {err}") from None
