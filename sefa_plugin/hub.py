"""Hub I/O shared by models and direction files: resolving ids, atomic folder writes, safe pushes.

Every download goes through :func:`resolve_folder`, which accepts a local folder or a Hub repo id and
honours ``revision``, ``cache_dir``, ``token``, ``local_files_only`` and ``HF_HUB_OFFLINE``. Every push
goes through :func:`push_folder`, which uploads a whole folder as **one commit**, so a failed push leaves
the remote repository exactly as it was.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from huggingface_hub import HfApi, constants, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from .utils.files import default_file_mode

logger = logging.getLogger(__name__)

LIBRARY_NAME = "sefa_plugin"


def weights_sha256(module: torch.nn.Module) -> str:
    """A SHA-256 fingerprint of a module's parameters and buffers (names, shapes, dtypes and bytes).

    It identifies the weights independently of the file format, so direction files can record which
    generator they were computed on.
    """
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}|{list(t.shape)}|{t.dtype}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def warn_if_other_weights(
    recorded: str | None, module: torch.nn.Module, subject: str, consequence: str, stacklevel: int = 2
) -> None:
    """Warn when `module`'s :func:`weights_sha256` differs from the `recorded` one (nothing when none is recorded).

    The message reads ``"{subject} {recorded[:12]}…, not on this one ({actual[:12]}…). {consequence}"``;
    `stacklevel` counts from the caller of this function.
    """
    if not recorded:
        return
    actual = weights_sha256(module)
    if actual != recorded:
        warnings.warn(
            f"{subject} {recorded[:12]}…, not on this one ({actual[:12]}…). {consequence}", stacklevel=stacklevel + 1
        )


def file_sha256(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            h.update(chunk)
    return h.hexdigest()


def resolve_folder(
    name_or_path: str | os.PathLike,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    token: str | bool | None = None,
    local_files_only: bool | None = None,
    allow_patterns: list[str] | None = None,
    what: str = "pretrained_model_name_or_path",
) -> tuple[Path, dict]:
    """Return a local folder for a folder path or a Hub repo id, plus its provenance.

    Args:
        name_or_path: A local folder, or a Hub repo id such as ``"org/name"``.
        revision: Branch, tag or commit of the Hub repo (default ``main``).
        cache_dir: Hub cache folder (default ``HF_HUB_CACHE``).
        token: Hub token (default: the logged-in one).
        local_files_only: Use the local cache only (default: ``HF_HUB_OFFLINE``).
        allow_patterns: Only download files matching these patterns.
        what: Argument name used in error messages.

    Returns:
        ``(folder, provenance)`` where provenance has ``repo_id`` and ``revision`` (the resolved commit)
        for Hub repos, or ``path`` for local folders.

    Example:

    >>> folder, info = resolve_folder("org/model", local_files_only=True)  # doctest: +SKIP
    """
    path = Path(name_or_path)
    if path.is_dir():
        return path, {"path": str(path.resolve())}
    if path.exists():
        raise ValueError(f"`{what}` must be a folder or a Hub repo id, got the file {str(path)!r}.")
    name = str(name_or_path)
    if name.count("/") > 1 or name.startswith(("/", ".", "~")) or not name.strip():
        raise FileNotFoundError(f"`{what}` {name!r} is neither an existing folder nor a valid Hub repo id.")
    if local_files_only is None:
        local_files_only = constants.HF_HUB_OFFLINE
    try:
        folder = snapshot_download(
            repo_id=name,
            revision=revision,
            cache_dir=cache_dir,
            token=token,
            local_files_only=local_files_only,
            allow_patterns=allow_patterns,
        )
    except LocalEntryNotFoundError as err:
        raise OSError(
            f"`{what}` {name!r} (revision {revision or 'main'}) is not in the local Hub cache and "
            f"downloading is disabled (offline mode or `local_files_only=True`)."
        ) from err
    except RepositoryNotFoundError as err:
        raise OSError(f"`{what}` {name!r}: no such repository on the Hub, or no access to it.") from err
    except RevisionNotFoundError as err:
        raise OSError(f"`revision` {revision!r} does not exist in {name!r}.") from err
    return Path(folder), {"repo_id": name, "revision": Path(folder).name}


@contextmanager
def atomic_folder(save_directory: str | os.PathLike, what: str = "save_directory") -> Iterator[Path]:
    """Yield a temporary folder; on success its files replace those in `save_directory`.

    Files are written next to the target and moved in with ``os.replace`` only once everything was
    written, so an error never leaves a half-written file behind. Other files in the target are kept.
    """
    target = Path(save_directory)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"`{what}` {str(target)!r} exists and is not a folder.")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OSError(f"`{what}` {str(target)!r} cannot be created: {err}") from err
    if not os.access(target, os.W_OK):
        raise PermissionError(f"`{what}` {str(target)!r} is not writable.")
    tmp = Path(tempfile.mkdtemp(prefix=".sefa-tmp-", dir=target))
    try:
        yield tmp
        for src in sorted(tmp.rglob("*")):
            if src.is_file():
                dst = target / src.relative_to(tmp)
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(src, default_file_mode())
                os.replace(src, dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def push_folder(
    write: Callable[[Path], None],
    repo_id: str,
    *,
    token: str | None = None,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str = "Upload with sefa_plugin",
    create_pr: bool = False,
) -> str:
    """Write a folder with `write(tmp_dir)` and upload it to `repo_id` as a single commit.

    If the repository did not exist and the commit fails, the freshly created repository is deleted
    again, so a failed push leaves the Hub as it was.

    Returns:
        The URL of the commit.
    """
    if not isinstance(repo_id, str) or repo_id.count("/") > 1 or not repo_id.strip("/ "):
        raise ValueError(f"`repo_id` must look like 'name' or 'org/name', got {repo_id!r}.")
    api = HfApi(token=token)
    existed = api.repo_exists(repo_id)
    with tempfile.TemporaryDirectory(prefix="sefa-push-") as tmp:
        write(Path(tmp))
        repo_url = api.create_repo(repo_id, private=private, exist_ok=True)
        try:
            info = api.upload_folder(
                repo_id=repo_url.repo_id,
                folder_path=tmp,
                commit_message=commit_message,
                revision=revision,
                create_pr=create_pr,
            )
        except (HfHubHTTPError, EntryNotFoundError, OSError):
            if not existed:
                try:
                    api.delete_repo(repo_url.repo_id)
                except HfHubHTTPError as cleanup_err:  # pragma: no cover - depends on the server
                    logger.warning("Could not delete the empty repo %s after a failed push: %s", repo_id, cleanup_err)
            raise
    logger.info("Pushed %s: %s", repo_id, info.commit_url)
    return str(info.commit_url)
