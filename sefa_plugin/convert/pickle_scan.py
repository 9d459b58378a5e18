"""Walk a pickle program's opcodes without building anything: bound its sizes, collect its strings.

Python's C unpickler trusts the sizes a file declares: a ``BINBYTES8`` opcode claiming 2⁴⁰ bytes allocates
them before reading, a ``LONG_BINPUT`` with index 2³⁰ grows the memo to gigabytes, a ``FRAME`` claiming more
than the file asks the stream for it at once, and a chain of a million ``TUPLE1`` opcodes builds a tuple whose
``hash`` (taken when it becomes a dict key or a set member) overflows the C stack. :func:`scan_pickle` runs
first, over the same bytes, and refuses such programs with :class:`CheckpointLimitError`, so that the
unpickler only ever sees programs whose every length fits in the file, whose memo indices are sequential
and whose containers nest at most :data:`MAX_NESTING` deep (tracked on a shadow stack of depths; the
estimate errs on the deep side). Format detection uses the same walk to read the strings it needs,
seeking over byte blobs (tensor data) instead of reading them.
"""

from __future__ import annotations

import os
import pickle
import pickletools
import struct
from typing import IO

__all__ = ["MAX_NESTING", "CheckpointLimitError", "NotAPickleError", "scan_pickle", "stream_end"]

#: Deepest container nesting a checkpoint may have (real ones stay under ~60).
MAX_NESTING = 200
#: Longest text line (protocol-0 opcodes) and longest string collected for format detection.
MAX_LINE = 1 << 16

_LENGTH_PREFIX = {  # pickletools' variable-length argument kinds -> (struct format, byte count)
    pickletools.TAKEN_FROM_ARGUMENT1: ("<B", 1),
    pickletools.TAKEN_FROM_ARGUMENT4: ("<i", 4),
    pickletools.TAKEN_FROM_ARGUMENT4U: ("<I", 4),
    pickletools.TAKEN_FROM_ARGUMENT8U: ("<Q", 8),
}
_TEXT_STRINGS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "SHORT_BINSTRING", "BINSTRING"}
_MEMO_PUT = {"PUT", "BINPUT", "LONG_BINPUT"}
_MEMO_GET = {"GET", "BINGET", "LONG_BINGET"}
_NEW_FROM_MARK = {"TUPLE", "LIST", "DICT", "FROZENSET", "INST", "OBJ"}
_UPDATE_FROM_MARK = {"APPENDS", "SETITEMS", "ADDITEMS"}
_MARK = object()


class CheckpointLimitError(pickle.UnpicklingError, ValueError):
    """A checkpoint declares a size, index or nesting beyond what it can hold; nothing was allocated for it."""


class NotAPickleError(CheckpointLimitError):
    """The bytes are not a pickle program at all (unknown opcode)."""


def stream_end(file: IO[bytes]) -> int:
    """The size of a seekable stream (its position is kept)."""
    pos = file.tell()
    end = file.seek(0, os.SEEK_END)
    file.seek(pos)
    return end


def _read(file: IO[bytes], n: int, what: str) -> bytes:
    data = file.read(n)
    if len(data) != n:
        raise CheckpointLimitError(f"Pickle is truncated inside {what}.")
    return data


def _line(file: IO[bytes], what: str) -> bytes:
    line = file.readline(MAX_LINE)
    if not line.endswith(b"\n"):
        raise CheckpointLimitError(f"Pickle {what} argument is not a line of at most {MAX_LINE} bytes.")
    return line[:-1]


class _Shadow:
    """The unpickler's stack and memo, holding only nesting depths.

    Each object is a cell ``[depth]`` (``[depth, 1]`` for a global), shared by reference between the stack
    and the memo, so that a container filled after it was memoised is seen at its final depth.
    """

    def __init__(self) -> None:
        self.stack: list = []
        self.marks: list[list] = []
        self.memo: dict[int, list[int]] = {}

    def pop(self, n: int = 1) -> list[list[int]]:
        if n > len(self.stack) or any(item is _MARK for item in self.stack[len(self.stack) - n :]):
            raise CheckpointLimitError("Malformed pickle: stack underflow.")
        items, self.stack[len(self.stack) - n :] = self.stack[len(self.stack) - n :], []
        return items

    def pop_mark(self) -> list[list[int]]:
        if not self.marks:
            raise CheckpointLimitError("Malformed pickle: no MARK to pop to.")
        items, self.stack = self.stack, self.marks.pop()
        return items

    def top(self) -> list[int]:
        if not self.stack or self.stack[-1] is _MARK:
            raise CheckpointLimitError("Malformed pickle: stack underflow.")
        return self.stack[-1]

    @staticmethod
    def nest(cell: list[int], items: list[list[int]]) -> list[int]:
        cell[0] = max(cell[0], 1 + max((c[0] for c in items), default=-1))
        if cell[0] > MAX_NESTING:
            raise CheckpointLimitError(f"Pickle nests containers deeper than {MAX_NESTING} levels (or in a cycle).")
        return cell


def _step(name: str, arg: object, shadow: _Shadow) -> None:  # noqa: C901  (one branch per opcode family)
    s = shadow
    if name in ("PROTO", "FRAME", "READONLY_BUFFER"):
        return
    if name == "MARK":
        s.marks.append(s.stack)
        s.stack = []
    elif name == "POP":
        s.pop_mark() if not s.stack and s.marks else s.pop()
    elif name == "POP_MARK":
        s.pop_mark()
    elif name == "DUP":
        s.stack.append(s.top())
    elif name in _MEMO_PUT or name == "MEMOIZE":
        index = len(s.memo) if name == "MEMOIZE" else int(arg)  # type: ignore[call-overload]
        if not 0 <= index <= len(s.memo):
            raise CheckpointLimitError(f"Pickle memo index {index} skips ahead of the {len(s.memo)} entries stored.")
        s.memo[index] = s.top()
    elif name in _MEMO_GET:
        if int(arg) not in s.memo:  # type: ignore[call-overload]
            raise CheckpointLimitError(f"Pickle reads memo entry {arg}, which was never stored.")
        s.stack.append(s.memo[int(arg)])  # type: ignore[call-overload]
    elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
        s.stack.append(s.nest([0], s.pop(int(name[-1]))))
    elif name in _NEW_FROM_MARK:
        cell = s.nest([0], s.pop_mark())  # pop first: `pop_mark` replaces `s.stack`
        s.stack.append(cell)
    elif name in _UPDATE_FROM_MARK:
        items = s.pop_mark()
        s.nest(s.top(), items)
    elif name == "BUILD":
        state = s.pop(1)
        if len(s.top()) > 1:  # BUILD on a global would set attributes on a function or class of this process
            raise CheckpointLimitError("Pickle applies BUILD to a global (a class or function), not to an object.")
        s.nest(s.top(), state)
    elif name == "APPEND":
        s.nest(s.top(), s.pop(1))
    elif name == "SETITEM":
        s.nest(s.top(), s.pop(2))
    elif name in ("REDUCE", "NEWOBJ", "NEWOBJ_EX"):
        popped = s.pop({"REDUCE": 2, "NEWOBJ": 2, "NEWOBJ_EX": 3}[name])
        s.stack.append([max(c[0] for c in popped)])
    elif name == "STACK_GLOBAL":
        s.pop(2)
        s.stack.append([0, 1])
    elif name == "BINPERSID":
        s.pop(1)
        s.stack.append([0])
    elif name in ("GLOBAL", "EXT1", "EXT2", "EXT4"):
        s.stack.append([0, 1])  # `[depth, is_global]`
    else:  # every other opcode pushes one new atom or empty container
        s.stack.append([0])


def scan_pickle(file: IO[bytes], end: int | None = None, strings: set[str] | None = None) -> None:
    """Walk one pickle from `file`'s position to its ``STOP``, leaving `file` just after it.

    Args:
        file: A seekable binary stream positioned at a pickle.
        end: Where the data ends (default: the end of `file`); every declared length must fit before it.
        strings: If given, every string constant and global name (``"module.name"``) of at most
            :data:`MAX_LINE` characters is added to it (byte blobs are skipped, never read).

    Raises:
        CheckpointLimitError: A declared length passes `end`, a memo index skips ahead, containers nest
            deeper than :data:`MAX_NESTING`, or the program is malformed or truncated.

    Example:

    >>> import io, pickle
    >>> found = set()
    >>> scan_pickle(io.BytesIO(pickle.dumps({"g_ema": [1, 2]})), strings=found)
    >>> sorted(found)
    ['g_ema']
    """
    end = stream_end(file) if end is None else end
    shadow = _Shadow()
    while True:
        code = file.read(1)
        if not code:
            raise CheckpointLimitError("Pickle is truncated: it ends before its STOP opcode.")
        op = pickletools.code2op.get(code.decode("latin-1"))
        if op is None:
            raise NotAPickleError(f"Not a pickle: unknown opcode {code!r} at byte {file.tell() - 1}.")
        arg: object = None
        kind = op.arg.n if op.arg is not None else 0
        if kind in _LENGTH_PREFIX:
            fmt, size = _LENGTH_PREFIX[kind]
            length = struct.unpack(fmt, _read(file, size, op.name))[0]
            if length < 0 or length > end - file.tell():
                raise CheckpointLimitError(
                    f"Pickle opcode {op.name} at byte {file.tell() - size - 1} declares {length} bytes, but only "
                    f"{end - file.tell()} remain in the file."
                )
            if strings is not None and op.name in _TEXT_STRINGS and length <= MAX_LINE:
                strings.add(_read(file, length, op.name).decode("utf-8", "replace"))
            else:
                file.seek(length, os.SEEK_CUR)
        elif kind == pickletools.UP_TO_NEWLINE:
            text = _line(file, op.name).decode("latin-1")
            if op.name in ("GLOBAL", "INST"):
                text = f"{text}.{_line(file, op.name).decode('latin-1')}"
            if strings is not None and op.name in ("GLOBAL", "INST", "UNICODE", "STRING"):
                strings.add(text.strip("'\""))
            arg = text
        elif kind > 0:
            arg = int.from_bytes(_read(file, kind, op.name), "little")  # only memo indices and FRAME use it
            if op.name == "FRAME" and arg > end - file.tell():  # type: ignore[operator]
                raise CheckpointLimitError(f"Pickle FRAME declares {arg} bytes, but only {end - file.tell()} remain.")
        if op.name == "STOP":
            shadow.pop(1)
            return
        _step(op.name, arg, shadow)
