"""Hub I/O shared by models and direction files: resolving ids, atomic folder writes, safe pushes.

Every download goes through :func:`resolve_folder`, which accepts a local folder or a Hub repo id and
honours ``revision``, ``cache_dir``, ``token``, ``local_files_only`` and ``HF_HUB_OFFLINE``. Every push
goes through :func:`push_folder`, which uploads a whole folder as **one commit**, so a failed push leaves
the remote repository exactly as it was.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
import shutil
import tempfile
import time
import warnings
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import torch
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, constants, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import HFValidationError, validate_repo_id

from .utils.files import (  # noqa: F401  (file_sha256: re-exported)
    check_output_folder,
    default_file_mode,
    file_sha256,
    stale_temporaries,
    temporary_name,
)
from .utils.tensor_state import TensorsSnapshot

logger = logging.getLogger(__name__)

LIBRARY_NAME = "sefa_plugin"

# module -> (snapshot of its tensors, fingerprint); weak keys, so a cached module can still be freed.
_WEIGHTS_SHA256: weakref.WeakKeyDictionary[torch.nn.Module, tuple[TensorsSnapshot, str]] = weakref.WeakKeyDictionary()


def weights_sha256(module: torch.nn.Module) -> str:
    """A SHA-256 fingerprint of a module's parameters and buffers (names, shapes, dtypes and bytes).

    It identifies the weights independently of the file format, so direction files can record which
    generator they were computed on. It always describes the tensors in memory: it is computed once and
    then reused for as long as every tensor of the module is the same object on the same storage with
    the same version counter (:class:`~sefa_plugin.utils.tensor_state.TensorsSnapshot`), so any
    in-place write (``copy_``, ``load_state_dict``, an optimizer step), replaced parameter, ``.to()`` or
    ``.half()`` makes the next call hash again. Writes that bypass version counters (through
    ``param.data`` or a NumPy view) are not seen: call :func:`forget_weights_sha256` after those.
    """
    state = module.state_dict(keep_vars=True)
    cached = _WEIGHTS_SHA256.get(module)
    if cached is not None and cached[0].matches(state):
        return cached[1]
    snapshot = TensorsSnapshot.of(state)  # taken before hashing: the digest is of exactly this state
    h = hashlib.sha256()
    for name, tensor in sorted(state.items()):
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}|{list(t.shape)}|{t.dtype}|".encode())
        if t.numel():
            h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))  # the tensor's bytes, not copied
    digest = h.hexdigest()
    if snapshot is not None:
        _WEIGHTS_SHA256[module] = (snapshot, digest)
    return digest


def forget_weights_sha256(module: torch.nn.Module) -> None:
    """Drop the cached :func:`weights_sha256` of `module` (after writing its weights through ``.data``)."""
    _WEIGHTS_SHA256.pop(module, None)


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


def resolve_folder(
    name_or_path: str | os.PathLike,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    token: str | bool | None = None,
    local_files_only: bool | None = None,
    allow_patterns: list[str] | None = None,
    what: str = "pretrained_model_name_or_path",
    allow_local: bool = True,
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
        allow_local: Look for a local folder first. A hosted app turns this off: the name is then a Hub id
            only, and the server's files are never looked at (so errors do not reveal which paths exist).

    Returns:
        ``(folder, provenance)`` where provenance has ``repo_id`` and ``revision`` (the resolved commit)
        for Hub repos, or ``path`` for local folders.

    Example:

    >>> folder, info = resolve_folder("org/model", local_files_only=True)  # doctest: +SKIP
    """
    path = Path(name_or_path)
    if allow_local and path.is_dir():
        return path, {"path": str(path.resolve())}
    if allow_local and path.exists():
        raise ValueError(f"`{what}` must be a folder or a Hub repo id, got the file {str(path)!r}.")
    name = str(name_or_path)
    try:
        check_repo_id(name, what)
    except ValueError:
        if not allow_local:
            raise ValueError(
                f"`{what}` must be a Hub repo id like 'org/name' (local paths are disabled), got {name[:100]!r}."
            ) from None
        shown = repr(name) if len(name) <= 100 else repr(name[:97] + "...")
        raise FileNotFoundError(f"`{what}` {shown} is neither an existing folder nor a valid Hub repo id.") from None
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
        where = f"`{what}` {name!r} (revision {revision or 'main'}) is not in the local Hub cache"
        if local_files_only:
            why = (
                "offline mode is on (`HF_HUB_OFFLINE=1`)"
                if constants.HF_HUB_OFFLINE
                else "`local_files_only=True` was given"
            )
            raise OSError(f"{where} and downloading is disabled: {why}.") from err
        cause = err.__cause__ or err.__context__
        detail = f"{type(cause).__name__}: {cause}" if cause is not None else str(err).splitlines()[0]
        raise OSError(
            f"{where} and the Hub ({constants.ENDPOINT}) could not be reached ({detail}). Check the network "
            f"connection, or download it once while online."
        ) from err
    except RepositoryNotFoundError as err:
        raise OSError(f"`{what}` {name!r}: no such repository on the Hub, or no access to it.") from err
    except RevisionNotFoundError as err:
        raise OSError(f"`revision` {revision!r} does not exist in {name!r}.") from err
    return Path(folder), {"repo_id": name, "revision": Path(folder).name}


#: Files that mark a folder as written by sefa_plugin (a pipeline, directions, latents, a report, a model).
OWN_MARKERS = (
    "model_index.json",
    "directions.safetensors",
    "latents.safetensors",
    "report.md",
    "diffusion_pytorch_model.safetensors",
    "diffusion_pytorch_model.safetensors.index.json",
)

# Temporary folders live beside the target: ".<name>.sefa-tmp-<pid>-<random>" (the new content) and
# ".<name>.sefa-old-<pid>-<random>" (the entries being replaced). A killed save leaves them behind; the
# next save into the same target removes those whose process is gone.
_TEMP_KINDS = ("sefa-tmp", "sefa-old")


def _remove_stale_temporaries(target: Path) -> None:
    """Clean up after saves into `target` whose process died (killed part-way)."""
    homes = [target.parent, target] if target.is_dir() else [target.parent]
    for kind in _TEMP_KINDS:
        for stale in [p for home in homes for p in stale_temporaries(home, target, kind) if p.is_dir()]:
            if kind == "sefa-old" and target.is_dir():
                # Killed between moving an old entry aside and placing its replacement: put it back.
                for entry in stale.iterdir():
                    if not (target / entry.name).exists():
                        os.rename(entry, target / entry.name)
            logger.info("Removing %s, left behind by an interrupted save.", stale)
            shutil.rmtree(stale, ignore_errors=True)
    # Earlier versions wrote ".sefa-tmp-*" inside the target; those carry no process id, so go by age.
    if target.is_dir():
        for stale in target.glob(".sefa-tmp-*"):
            if stale.is_dir() and time.time() - stale.stat().st_mtime > 3600:
                logger.info("Removing %s, left behind by an interrupted save.", stale)
                shutil.rmtree(stale, ignore_errors=True)


def _replace_entries(tmp: Path, target: Path, old: Path) -> None:
    """Move every top-level entry of `tmp` into `target`, the entries it replaces into `old`; undo on error."""
    moved_aside: list[str] = []
    placed: list[str] = []
    try:
        for src in sorted(tmp.iterdir()):
            dst = target / src.name
            if dst.exists() or dst.is_symlink():
                os.rename(dst, old / src.name)
                moved_aside.append(src.name)
            os.rename(src, dst)
            placed.append(src.name)
    except BaseException:
        for name in reversed(placed):  # the new entries go back into the temporary folder ...
            os.rename(target / name, tmp / name)
        for name in reversed(moved_aside):  # ... and the old ones back where they were
            os.rename(old / name, target / name)
        raise


def _make_temporaries(target: Path) -> tuple[Path, Path]:
    """Create the temporary folder beside `target`, or inside it when only the target is writable (a mounted
    volume); return it and the path that will hold the entries being replaced."""
    name = temporary_name(target, "sefa-tmp")

    def paths(home: Path) -> tuple[Path, Path]:
        return home / name, home / name.replace(".sefa-tmp-", ".sefa-old-")

    tmp, old = paths(target.parent)
    try:
        tmp.mkdir()
    except OSError:
        if not target.is_dir():
            raise
        tmp, old = paths(target)
        tmp.mkdir()
    return tmp, old


@contextmanager
def atomic_folder(save_directory: str | os.PathLike, what: str = "save_directory") -> Iterator[Path]:
    """Yield a temporary folder; on success its entries replace those of the same name in `save_directory`.

    Rules (so that a folder on disk is always one consistent save):

    * Everything is written into a temporary folder beside the target first; an error while writing
      leaves the target untouched.
    * Each top-level entry written replaces the old entry of that name **as a whole**: a new
      ``generator/`` replaces the old folder, so the shards of an older save never stay beside new
      weights. Entries the new save does not write (e.g. a training ``checkpoint/``) are kept.
    * If moving the entries in fails part-way, the entries already moved are put back: the old folder
      stays whole.
    * A non-empty target is only overwritten if it is one of ours (holds one of :data:`OWN_MARKERS`);
      otherwise, if the save would replace any of its files, a :class:`FileExistsError` names `what`.
    * Temporary folders are named ``.<target>.sefa-tmp-<pid>-…`` beside the target; those left by a killed
      process are removed by the next save into the same target.

    Args:
        save_directory: The target folder (created with its parents if needed).
        what: The argument name used in errors (``"--out"``).

    Example:

    >>> with atomic_folder("/tmp/my-save") as tmp:  # doctest: +SKIP
    ...     (tmp / "model_index.json").write_text("{}")
    """
    # Resolved: "." and "x/.." get a name and a parent, and a symlinked target gets its temporaries on
    # its own file system (a rename cannot cross file systems).
    target = Path(os.path.realpath(save_directory))
    if not target.name:
        raise ValueError(f"`{what}` {str(save_directory)!r} cannot be replaced: give a named folder.")
    check_output_folder(target, what)
    created = [p for p in (target, *target.parents) if not p.exists()]
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OSError(f"`{what}` {str(target)!r} cannot be created: {err}") from err
    _remove_stale_temporaries(target)
    committed = False
    tmp, old = _make_temporaries(target)
    try:
        yield tmp
        for src in tmp.rglob("*"):
            if src.is_file():
                os.chmod(src, default_file_mode())
        target.mkdir(exist_ok=True)
        existing = {p.name for p in target.iterdir()}
        clashes = sorted(existing & {p.name for p in tmp.iterdir()})
        if clashes and not existing & set(OWN_MARKERS):
            raise FileExistsError(
                f"`{what}` {str(target)!r} holds files sefa_plugin did not write ({', '.join(clashes[:5])}); "
                f"refusing to overwrite them: choose an empty or new folder."
            )
        old.mkdir()
        _replace_entries(tmp, target, old)
        committed = True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if committed or not old.exists() or not any(old.iterdir()):
            shutil.rmtree(old, ignore_errors=True)
        else:  # the undo itself failed: keep the old entries; a later process saving into `target` restores them
            logger.error("Could not restore %s; its previous entries are kept in %s.", target, old)
        if not committed:
            for path in created:  # folders this call created (deepest first), if they stayed empty
                with suppress(OSError):
                    path.rmdir()


def check_repo_id(repo_id: object, what: str = "repo_id") -> str:
    """Validate a Hub repo id (``"name"`` or ``"org/name"``) with huggingface_hub's own rules.

    Raises:
        ValueError: naming `what`, for anything else (a newline, quotes, ``..``, a path, a non-string).

    Example:

    >>> check_repo_id("someone/my-gan")
    'someone/my-gan'
    >>> check_repo_id("../etc")
    Traceback (most recent call last):
    ...
    ValueError: `repo_id` must be a Hub repo id like 'name' or 'org/name' (letters, digits, '-_.'), got '../etc'.
    """
    try:
        if not isinstance(repo_id, str):
            raise HFValidationError("not a string")
        validate_repo_id(repo_id)
    except HFValidationError:
        shown = repr(repo_id) if len(repr(repo_id)) <= 100 else repr(repo_id)[:97] + "..."
        raise ValueError(
            f"`{what}` must be a Hub repo id like 'name' or 'org/name' (letters, digits, '-_.'), got {shown}."
        ) from None
    return repo_id


def push_folder(
    write: Callable[[Path], None],
    repo_id: str,
    *,
    token: str | None = None,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str = "Upload with sefa_plugin",
    create_pr: bool = False,
    repo_type: str | None = None,
    space_sdk: str | None = None,
    delete_patterns: list[str] | None = None,
) -> str:
    """Write a folder with `write(tmp_dir)` and upload it to `repo_id` as a single commit.

    The files go in one ``create_commit`` (``upload_folder`` may split a large folder, or a failed commit,
    into several commits). If the repository did not exist and the commit fails, the freshly created
    repository is deleted again, so a failed push leaves the Hub as it was. `repo_type` and `space_sdk`
    (``"space"``, ``"gradio"``) push a Space; remote files matching `delete_patterns` (``fnmatch``
    patterns; ``.gitattributes`` is kept) that the folder does not have are deleted in the same commit.

    Returns:
        The URL of the commit.
    """
    check_repo_id(repo_id)
    api = HfApi(token=token)
    existed = api.repo_exists(repo_id, repo_type=repo_type)
    with tempfile.TemporaryDirectory(prefix="sefa-push-") as tmp:
        write(Path(tmp))
        repo_url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type=repo_type, space_sdk=space_sdk)
        try:
            operations: list = [
                CommitOperationAdd(path_in_repo=path.relative_to(tmp).as_posix(), path_or_fileobj=str(path))
                for path in sorted(Path(tmp).rglob("*"))
                if path.is_file()
            ]
            if delete_patterns and existed:
                added = {op.path_in_repo for op in operations}
                remote = api.list_repo_files(repo_url.repo_id, repo_type=repo_type, revision=revision)
                operations += [
                    CommitOperationDelete(path_in_repo=path)
                    for path in remote
                    if path != ".gitattributes"
                    and path not in added
                    and any(fnmatch.fnmatch(path, pattern) for pattern in delete_patterns)
                ]
            info = api.create_commit(
                repo_id=repo_url.repo_id,
                operations=operations,
                commit_message=commit_message,
                revision=revision,
                create_pr=create_pr,
                repo_type=repo_type,
            )
        except (HfHubHTTPError, EntryNotFoundError, OSError):
            if not existed:
                try:
                    api.delete_repo(repo_url.repo_id, repo_type=repo_type)
                except HfHubHTTPError as cleanup_err:  # pragma: no cover - depends on the server
                    logger.warning("Could not delete the empty repo %s after a failed push: %s", repo_id, cleanup_err)
            raise
    logger.info("Pushed %s: %s", repo_id, info.commit_url)
    return str(info.commit_url)
