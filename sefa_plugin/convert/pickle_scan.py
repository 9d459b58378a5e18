"""Walk a pickle program's opcodes without building anything: bound its sizes, collect its strings.

Python's C unpickler trusts the sizes a file declares: a ``BINBYTES8`` opcode claiming 2⁴⁰ bytes allocates
them before reading, a ``LONG_BINPUT`` with index 2³⁰ grows the memo to gigabytes, a ``FRAME`` claiming more
than the file asks the stream for it at once, and a chain of a million ``TUPLE1`` opcodes builds a tuple whose
``hash`` (taken when it becomes a dict key or a set member) overflows the C stack. :func:`scan_pickle` runs
first, over the same bytes, and refuses such programs with :class:`CheckpointLimitError`, so that the
unpickler only ever sees programs whose every length fits in the file, whose memo indices are sequential,
whose containers nest at most :data:`MAX_NESTING` deep (tracked on a shadow stack of depths; the estimate
errs on the deep side) and whose stack stays under :data:`MAX_STACK` objects. Format detection uses the same
walk to read the strings it needs, seeking over byte blobs (tensor data) instead of reading them.
"""

from __future__ import annotations

import gc
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
#: Most objects the unpickler's stack may hold at once (``pickle`` batches list and dict items by 1000).
MAX_STACK = 100_000

_LENGTH_PREFIX = {  # pickletools' variable-length argument kinds -> (struct format, byte count)
    pickletools.TAKEN_FROM_ARGUMENT1: ("<B", 1),
    pickletools.TAKEN_FROM_ARGUMENT4: ("<i", 4),
    pickletools.TAKEN_FROM_ARGUMENT4U: ("<I", 4),
    pickletools.TAKEN_FROM_ARGUMENT8U: ("<Q", 8),
}
_TEXT_STRINGS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "SHORT_BINSTRING", "BINSTRING"}

# What each opcode does to the stack (everything not listed pushes one new atom or empty container).
_ATOM, _NOTHING, _MARK_OP, _POP, _POP_MARK, _DUP, _PUT, _MEMOIZE, _GET = range(9)
_TUPLE_N, _FROM_MARK, _INTO_FROM_MARK, _INTO, _BUILD, _CALL, _GLOBAL, _STACK_GLOBAL, _PERSID, _STOP = range(9, 19)
_EFFECTS = {
    "PROTO": _NOTHING, "FRAME": _NOTHING, "READONLY_BUFFER": _NOTHING, "MARK": _MARK_OP, "POP": _POP,
    "POP_MARK": _POP_MARK, "DUP": _DUP, "PUT": _PUT, "BINPUT": _PUT, "LONG_BINPUT": _PUT, "MEMOIZE": _MEMOIZE,
    "GET": _GET, "BINGET": _GET, "LONG_BINGET": _GET, "TUPLE1": _TUPLE_N, "TUPLE2": _TUPLE_N, "TUPLE3": _TUPLE_N,
    "TUPLE": _FROM_MARK, "LIST": _FROM_MARK, "DICT": _FROM_MARK, "FROZENSET": _FROM_MARK, "INST": _FROM_MARK,
    "OBJ": _FROM_MARK, "APPENDS": _INTO_FROM_MARK, "SETITEMS": _INTO_FROM_MARK, "ADDITEMS": _INTO_FROM_MARK,
    "APPEND": _INTO, "SETITEM": _INTO, "BUILD": _BUILD, "REDUCE": _CALL, "NEWOBJ": _CALL, "NEWOBJ_EX": _CALL,
    "GLOBAL": _GLOBAL, "EXT1": _GLOBAL, "EXT2": _GLOBAL, "EXT4": _GLOBAL, "STACK_GLOBAL": _STACK_GLOBAL,
    "BINPERSID": _PERSID, "STOP": _STOP,
}  # fmt: skip
_POPPED = {"TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3, "APPEND": 1, "SETITEM": 2, "REDUCE": 2, "NEWOBJ": 2, "NEWOBJ_EX": 3}
# How many objects above the last MARK an opcode needs (to apply, or to pop).
_NEEDS = {_POP: 1, _DUP: 1, _PUT: 1, _MEMOIZE: 1, _INTO: 1, _BUILD: 2, _STACK_GLOBAL: 2, _PERSID: 1, _STOP: 1}
#: Opcode byte -> (name, argument kind, stack effect, items popped, items needed).
_OPS = {
    op.code.encode("latin-1")[0]: (
        op.name,
        op.arg.n if op.arg is not None else 0,
        _EFFECTS.get(op.name, _ATOM),
        _POPPED.get(op.name, 0),
        _POPPED.get(op.name, 0) + (op.name in ("APPEND", "SETITEM")) or _NEEDS.get(_EFFECTS.get(op.name, _ATOM), 0),
    )
    for op in pickletools.opcodes
}


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


def _underflow() -> CheckpointLimitError:
    return CheckpointLimitError("Malformed pickle: stack underflow.")


def _nest(cell: list[int], items: list[list[int]]) -> list[int]:
    """Record that `items` now sit inside the container `cell`; refuse past :data:`MAX_NESTING`."""
    for item in items:
        if item[0] >= cell[0]:
            cell[0] = item[0] + 1
    if cell[0] > MAX_NESTING:
        raise CheckpointLimitError(f"Pickle nests containers deeper than {MAX_NESTING} levels (or in a cycle).")
    return cell


def _argument(file: IO[bytes], name: str, kind: int, end: int, strings: set[str] | None) -> object:
    """Read (or skip) one opcode's argument after checking its declared length; return it when it matters."""
    if kind in _LENGTH_PREFIX:
        fmt, size = _LENGTH_PREFIX[kind]
        length = struct.unpack(fmt, _read(file, size, name))[0]
        if length < 0 or length > end - file.tell():
            raise CheckpointLimitError(
                f"Pickle opcode {name} at byte {file.tell() - size - 1} declares {length} bytes, but only "
                f"{end - file.tell()} remain in the file."
            )
        if strings is not None and name in _TEXT_STRINGS and length <= MAX_LINE:
            strings.add(_read(file, length, name).decode("utf-8", "replace"))
        else:
            file.seek(length, os.SEEK_CUR)
        return None
    if kind == pickletools.UP_TO_NEWLINE:
        text = _line(file, name).decode("latin-1")
        if name in ("GLOBAL", "INST"):
            text = f"{text}.{_line(file, name).decode('latin-1')}"
        if strings is not None and name in ("GLOBAL", "INST", "UNICODE", "STRING"):
            strings.add(text.strip("'\""))
        return text
    value = int.from_bytes(_read(file, kind, name), "little")  # only memo indices and FRAME use it
    if name == "FRAME" and value > end - file.tell():
        raise CheckpointLimitError(f"Pickle FRAME declares {value} bytes, but only {end - file.tell()} remain.")
    return value


def scan_pickle(file: IO[bytes], end: int | None = None, strings: set[str] | None = None) -> None:
    """Walk one pickle from `file`'s position to its ``STOP``, leaving `file` just after it.

    The walk keeps a shadow of the unpickler's stack and memo in which each object is only a cell
    ``[depth]`` (``[depth, 1]`` for a global), shared by reference, so that a container filled after it
    was memoised is seen at its final depth.

    Args:
        file: A seekable binary stream positioned at a pickle.
        end: Where the data ends (default: the end of `file`); every declared length must fit before it.
        strings: If given, every string constant and global name (``"module.name"``) of at most
            :data:`MAX_LINE` characters is added to it (byte blobs are skipped, never read).

    Raises:
        CheckpointLimitError: A declared length passes `end`, a memo index skips ahead, containers nest
            deeper than :data:`MAX_NESTING`, the stack outgrows :data:`MAX_STACK`, a BUILD targets a
            global, or the program is malformed or truncated.

    Example:

    >>> import io, pickle
    >>> found = set()
    >>> scan_pickle(io.BytesIO(pickle.dumps({"g_ema": [1, 2]})), strings=found)
    >>> sorted(found)
    ['g_ema']
    """
    end = stream_end(file) if end is None else end
    if end - file.tell() < 1 << 16:  # short programs (headers, nested storage blobs) make few objects
        _walk(file, end, strings)
        return
    enabled = gc.isenabled()
    gc.disable()  # the walk makes up to MAX_STACK small lists and no cycles: spare it the collector's passes
    try:
        _walk(file, end, strings)
    finally:
        if enabled:
            gc.enable()


def _walk(file: IO[bytes], end: int, strings: set[str] | None) -> None:
    stack: list[list[int]] = []
    marks: list[int] = []  # stack lengths at each MARK
    memo: dict[int, list[int]] = {}
    read = file.read
    while True:
        code = read(1)
        if not code:
            raise CheckpointLimitError("Pickle is truncated: it ends before its STOP opcode.")
        entry = _OPS.get(code[0])
        if entry is None:
            raise NotAPickleError(f"Not a pickle: unknown opcode {code!r} at byte {file.tell() - 1}.")
        name, kind, effect, npop, need = entry
        if kind > 0:
            data = read(kind)
            if len(data) != kind:
                raise CheckpointLimitError(f"Pickle is truncated inside {name}.")
            if effect == _ATOM:  # BININT & co.: the value does not matter
                stack.append([0])
                continue
            arg: object = int.from_bytes(data, "little")
            if name == "FRAME" and arg > end - file.tell():  # type: ignore[operator]
                raise CheckpointLimitError(f"Pickle FRAME declares {arg} bytes, but only {end - file.tell()} remain.")
        elif kind:
            arg = _argument(file, name, kind, end, strings)
        if effect == _ATOM:
            stack.append([0])
            if len(stack) > MAX_STACK:
                raise CheckpointLimitError(f"Pickle stacks more than {MAX_STACK} objects at once.")
            continue
        floor = marks[-1] if marks else 0
        if effect in (_FROM_MARK, _INTO_FROM_MARK, _POP_MARK) or (effect == _POP and len(stack) == floor and marks):
            if not marks:
                raise CheckpointLimitError("Malformed pickle: no MARK to pop to.")
            mark = marks.pop()
            items, stack[mark:] = stack[mark:], []
            if effect == _FROM_MARK:
                stack.append(_nest([0], items))
            elif effect == _INTO_FROM_MARK:
                if len(stack) <= (marks[-1] if marks else 0):
                    raise _underflow()
                _nest(stack[-1], items)
            continue
        if len(stack) - need < floor:
            raise _underflow()
        if effect == _NOTHING:
            continue
        if effect == _MARK_OP:
            marks.append(len(stack))
        elif effect == _POP:
            stack.pop()
        elif effect == _DUP:
            stack.append(stack[-1])
        elif effect in (_PUT, _MEMOIZE):
            index = len(memo) if effect == _MEMOIZE else int(arg)  # type: ignore[call-overload]
            if not 0 <= index <= len(memo):
                raise CheckpointLimitError(f"Pickle memo index {index} skips ahead of the {len(memo)} entries stored.")
            memo[index] = stack[-1]
        elif effect == _GET:
            cell = memo.get(int(arg))  # type: ignore[call-overload]
            if cell is None:
                raise CheckpointLimitError(f"Pickle reads memo entry {arg}, which was never stored.")
            stack.append(cell)
        elif effect == _TUPLE_N:
            items, stack[-npop:] = stack[-npop:], []
            stack.append(_nest([0], items))
        elif effect == _INTO:
            items, stack[-npop:] = stack[-npop:], []
            _nest(stack[-1], items)
        elif effect == _BUILD:
            if len(stack[-2]) > 1:  # BUILD on a global would set attributes on a function or class of ours
                raise CheckpointLimitError("Pickle applies BUILD to a global (a class or function), not to an object.")
            _nest(stack[-2], [stack.pop()])
        elif effect == _CALL:
            items, stack[-npop:] = stack[-npop:], []
            stack.append([max(cell[0] for cell in items)])
        elif effect in (_GLOBAL, _STACK_GLOBAL):
            if effect == _STACK_GLOBAL:
                del stack[-2:]
            stack.append([0, 1])
        elif effect == _PERSID:
            stack[-1] = [0]
        elif effect == _STOP:
            return
