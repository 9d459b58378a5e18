"""File-system helpers: file modes and output paths checked before any work is done."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "MAX_CONFIG_BYTES",
    "atomic_file",
    "check_output_folder",
    "check_output_path",
    "default_file_mode",
    "file_sha256",
    "read_json_config",
    "stale_temporaries",
    "temporary_name",
]

#: The largest JSON config read (``config.json``, ``model_index.json``; real ones are under 4 kB).
MAX_CONFIG_BYTES = 1 << 20


def default_file_mode() -> int:
    """The mode a newly created file gets under the current umask (temporary files start as 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _nearest_existing(path: Path) -> Path:
    """`path` or its closest ancestor that exists."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def _probe_writable(folder: Path, what: str, shown: Path) -> None:
    """Create and delete a file in `folder`: the only check that also holds for root, /proc and read-only mounts."""
    if not folder.is_dir():
        raise NotADirectoryError(f"`{what}` {str(shown)!r}: {str(folder)!r} exists and is not a folder.")
    try:
        fd, probe = tempfile.mkstemp(prefix=".sefa-probe-", dir=folder)
    except OSError as err:
        raise PermissionError(f"`{what}` {str(shown)!r} cannot be written: {err.strerror or err}.") from None
    os.close(fd)
    os.unlink(probe)


def check_output_path(path: str | os.PathLike, what: str = "path", suffixes: Sequence[str] | None = None) -> Path:
    """Check, before any work, that a file can be written at `path` (its folder may still have to be created).

    Front ends call this for every output argument up front, so that a bad path fails in a second with the
    argument's name instead of after rendering.

    Args:
        path: The output file.
        what: The argument name used in errors (``"--gif"``).
        suffixes: Allowed extensions (lower case, with the dot), or None for any.

    Raises:
        ValueError: `path` has an extension not in `suffixes`.
        IsADirectoryError: `path` is an existing folder.
        NotADirectoryError: a component of its folder is a file.
        PermissionError: its folder (or the closest existing ancestor) cannot be written.

    Example:

    >>> check_output_path("/tmp/walk.gif", "--gif", suffixes=[".gif"])
    PosixPath('/tmp/walk.gif')
    """
    path = Path(path)
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise ValueError(
            f"`{what}` {str(path)!r} has an unsupported extension: it must end with one of {sorted(suffixes)}."
        )
    if path.is_dir():
        raise IsADirectoryError(f"`{what}` {str(path)!r} is a folder; give a file name.")
    _probe_writable(_nearest_existing(path.parent), what, path)
    return path


def check_output_folder(path: str | os.PathLike, what: str = "save_directory") -> Path:
    """Check, before any work, that `path` is (or can be created as) a writable folder.

    Example:

    >>> check_output_folder("/tmp/my-directions", "--out")
    PosixPath('/tmp/my-directions')
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"`{what}` {str(path)!r} exists and is not a folder.")
    _probe_writable(_nearest_existing(path), what, path)
    return path


def read_json_config(path: str | os.PathLike, what: str = "config") -> dict:
    """Read a JSON object from a user's file, bounded in size; never a ``RecursionError`` or a huge read.

    Raises:
        ValueError: naming `what` and the file, if it is larger than :data:`MAX_CONFIG_BYTES`, not UTF-8 JSON,
            nested too deeply for the parser, or not a JSON object.

    Example:

    >>> from pathlib import Path
    >>> _ = Path("/tmp/c.json").write_text('{"z_dim": 512}')
    >>> read_json_config("/tmp/c.json")
    {'z_dim': 512}
    """
    path = Path(path)
    label = f"`{what}` {str(path)!r}"
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ValueError(f"{label} is larger than {MAX_CONFIG_BYTES:,} bytes; it is not a model config.")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{label} is not valid JSON: {err}") from None
    except RecursionError:
        raise ValueError(f"{label} nests too deeply to be a model config.") from None
    if not isinstance(value, dict):
        raise ValueError(f"{label} must hold a JSON object, got {type(value).__name__}.")
    return value


# Temporaries beside an output are named ".<output name>.<kind>-<pid>-<random>", so that the next write to the
# same output can tell the leftovers of a killed process (its pid is gone) from those of a running one.
def temporary_name(target: str | os.PathLike, kind: str = "sefa-tmp") -> str:
    """A recognisable name for a temporary beside `target`: ``.<name>.<kind>-<pid>-<random>``."""
    return f".{Path(target).name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}"


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # another call of this process may be writing it right now (our failures clean up)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - another user's live process
        return True
    return True


def stale_temporaries(folder: str | os.PathLike, target: str | os.PathLike, kind: str = "sefa-tmp") -> Iterator[Path]:
    """The temporaries for `target` in `folder` whose writing process has died (see :func:`temporary_name`)."""
    pattern = re.compile(rf"\.{re.escape(Path(target).name)}\.{re.escape(kind)}-(\d+)-[0-9a-f]+")
    folder = Path(folder)
    if not folder.is_dir():
        return
    for path in sorted(folder.iterdir()):
        match = pattern.fullmatch(path.name)
        if match and not _process_alive(int(match.group(1))):
            yield path


def file_sha256(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            h.update(chunk)
    return h.hexdigest()


@contextmanager
def atomic_file(path: str | os.PathLike, what: str = "path") -> Iterator[Path]:
    """Yield a temporary file beside `path`; when the block succeeds it replaces `path` in one rename.

    The output path is checked first (:func:`check_output_path`), its folder created, and temporaries left
    by a killed earlier save of the same file removed. Whatever happens in the block, no partial file is left
    at `path` and the temporary is gone afterwards; the file gets the umask's default mode.

    Example:

    >>> with atomic_file("/tmp/sefa-note.txt") as tmp:
    ...     _ = tmp.write_text("done")
    >>> Path("/tmp/sefa-note.txt").read_text()
    'done'
    """
    path = check_output_path(path, what)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OSError(f"Cannot create the folder for `{what}` {str(path)!r}: {err}") from err
    for stale in stale_temporaries(path.parent, path):  # left by a killed earlier save of this file
        stale.unlink(missing_ok=True)
    tmp = path.parent / temporary_name(path)
    tmp.touch(mode=0o600, exist_ok=False)
    try:
        yield tmp
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
