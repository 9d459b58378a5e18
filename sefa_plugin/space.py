"""A self-contained Hugging Face Space of the editor: write it to a folder, push it to the Hub.

The package is not on PyPI, so a Space cannot ``pip install`` it: :func:`write_space` copies it into the
Space folder instead (with its embedded model, factor predictor and card templates), next to the editor
(``gradio_app/app.py`` of the repository checkout), its ``README.md`` (the Space's front matter: ``sdk:
gradio``, ``app_file``) and a ``requirements.txt`` that installs only the dependencies, with the CPU build of
torch. The Space runs ``python app.py`` in that folder, which imports the copied ``sefa_plugin``.
:func:`push_space` uploads such a folder as one commit to a Space repo (``repo_type="space"``,
``space_sdk="gradio"``), so a failed push leaves the Space as it was.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
from importlib import resources
from pathlib import Path

from packaging.requirements import Requirement

from .hub import atomic_folder, push_folder

logger = logging.getLogger(__name__)

__all__ = ["CHECKOUT_APP_FOLDER", "PACKAGE_NAME", "push_space", "space_requirements", "write_space"]

PACKAGE_NAME = "sefa_plugin"
#: The editor and its Space files in the repository checkout (not part of the installed package).
CHECKOUT_APP_FOLDER = Path(__file__).resolve().parents[1] / "gradio_app"
#: The CPU wheels of torch: without this index a bare ``torch`` pulls gigabytes of CUDA packages.
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
_SKIPPED_DIRS = {"__pycache__"}
_SKIPPED_SUFFIXES = {".pyc", ".pyo"}


def _package_files() -> dict[str, bytes]:
    """The package's files (sources and assets) as ``{path in the Space folder: bytes}``."""
    root = Path(__file__).resolve().parent
    files: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file() or any(p in _SKIPPED_DIRS or p.startswith(".") for p in rel.parts):
            continue
        if path.suffix in _SKIPPED_SUFFIXES:
            continue
        files[f"{PACKAGE_NAME}/{rel.as_posix()}"] = path.read_bytes()
    # The card templates live in the checkout's top-level hub_cards/ and are installed as
    # sefa_plugin.hub_cards: read them wherever they are, and put them where the import finds them.
    cards = resources.files(f"{PACKAGE_NAME}.hub_cards")
    for entry in cards.iterdir():
        if entry.is_file() and entry.name.endswith((".md", ".py")):
            files[f"{PACKAGE_NAME}/hub_cards/{entry.name}"] = entry.read_bytes()
    if f"{PACKAGE_NAME}/hub_cards/__init__.py" not in files:
        files[f"{PACKAGE_NAME}/hub_cards/__init__.py"] = b'"""Card templates."""\n'
    return files


def _app_files(app_folder: Path) -> tuple[bytes, str, dict]:
    """``app.py`` and ``README.md`` of the editor, and the README's front matter (checked)."""
    from huggingface_hub.repocard import metadata_load

    app_file, readme = app_folder / "app.py", app_folder / "README.md"
    for path in (app_file, readme):
        if not path.is_file():
            raise FileNotFoundError(
                f"The Space is built from the editor in the repository checkout; {str(path)!r} is missing "
                f"(run `sefa space` from a checkout of sefa_plugin)."
            )
    front = metadata_load(readme) or {}
    if front.get("sdk") != "gradio" or front.get("app_file") != "app.py":
        raise ValueError(
            f"{str(readme)!r} must start with Space front matter with `sdk: gradio` and `app_file: app.py`, got "
            f"sdk={front.get('sdk')!r}, app_file={front.get('app_file')!r}."
        )
    return app_file.read_bytes(), readme.read_text(encoding="utf-8"), front


def space_requirements(gradio_version: str | None = None) -> str:
    """The Space's ``requirements.txt``: the package's dependencies at the versions installed here.

    The package itself is not listed (it is copied into the Space folder). torch is pinned to the installed
    release from the CPU wheel index; every other dependency is pinned to the version these tests ran with,
    so a rebuilt Space gets the same set.

    Args:
        gradio_version: The Space's ``sdk_version``: ``gradio[oauth]`` is pinned to it (the sign-in button).

    Example:

    >>> text = space_requirements("6.31.0")
    >>> "gradio[oauth]==6.31.0" in text and "git+" not in text
    True
    """
    try:
        declared = importlib.metadata.requires(PACKAGE_NAME) or []
    except importlib.metadata.PackageNotFoundError as err:
        raise OSError(f"{PACKAGE_NAME} is not installed: install it (pip install -e .) before `sefa space`.") from err
    lines = [
        f"# Requirements of this Space, written by `sefa space`: {PACKAGE_NAME} itself is copied into",
        f"# {PACKAGE_NAME}/ next to app.py, so only its dependencies are installed, at the tested versions.",
        "# The CPU build of torch: without the extra index a bare `torch` pulls gigabytes of CUDA packages.",
        f"--extra-index-url {TORCH_CPU_INDEX}",
    ]
    for text in declared:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue  # an extra (app, dev) or another platform's
        name = requirement.name
        version = importlib.metadata.version(name).split("+")[0]  # 2.13.0+cpu -> 2.13.0
        lines.append(f"{name}=={version}")
    if gradio_version:
        lines.append(f"gradio[oauth]=={gradio_version}")
    return "\n".join(lines) + "\n"


def write_space(folder: str | os.PathLike, *, app_folder: str | os.PathLike | None = None) -> Path:
    """Write a self-contained Space of the editor to `folder`, atomically.

    The folder gets ``app.py`` (the editor), ``README.md`` (its Space front matter), ``requirements.txt``
    (see :func:`space_requirements`) and ``sefa_plugin/`` (the package, with the embedded model, the factor
    predictor and ``sefa_plugin/hub_cards``): nothing outside the folder is needed. Every file is written
    next to its target and moved in once all are written; other files in `folder` are kept.

    Args:
        folder: Where to write the Space (created if needed).
        app_folder: The editor's folder (default: ``gradio_app/`` of the repository checkout).

    Returns:
        The folder.

    Example:

    >>> from sefa_plugin.space import write_space
    >>> write_space("my-space")  # doctest: +SKIP
    >>> # cd my-space && python app.py   runs the editor with the copied package only
    """
    app_bytes, readme, front = _app_files(Path(app_folder) if app_folder is not None else CHECKOUT_APP_FOLDER)
    files = _package_files()
    files["app.py"] = app_bytes
    files["README.md"] = readme.encode("utf-8")
    sdk_version = front.get("sdk_version")
    files["requirements.txt"] = space_requirements(str(sdk_version) if sdk_version else None).encode()
    with atomic_folder(folder, what="folder") as tmp:
        for rel, content in files.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
    logger.info("wrote a Space of %d files to %s", len(files), folder)
    return Path(folder)


def _check_space_folder(folder: Path) -> None:
    missing = [name for name in ("app.py", "README.md", "requirements.txt", f"{PACKAGE_NAME}/__init__.py")
               if not (folder / name).is_file()]  # fmt: skip
    if missing:
        raise FileNotFoundError(
            f"`folder` {str(folder)!r} is not a Space folder written by `sefa space` (missing: {', '.join(missing)})."
        )


def push_space(
    folder: str | os.PathLike,
    space_id: str,
    *,
    token: str | None = None,
    private: bool | None = None,
    commit_message: str = "Upload the sefa_plugin editor",
) -> str:
    """Push a Space folder written by :func:`write_space` to the Hub Space `space_id`, in one commit.

    Creates the Space (``repo_type="space"``, ``space_sdk="gradio"``) if needed. The commit makes the Space's
    files exactly the folder's (older files it no longer has are deleted in the same commit; caches such
    as ``__pycache__`` are not uploaded). A failed push leaves the Space as it was (a Space created for it is
    deleted again).

    Returns:
        The URL of the commit.

    Example:

    >>> push_space("my-space", "your-name/sefa-editor")  # doctest: +SKIP
    """
    import shutil

    source = Path(folder)
    _check_space_folder(source)

    def write(tmp: Path) -> None:
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".*")
        shutil.copytree(source, tmp, ignore=ignore, dirs_exist_ok=True)

    return push_folder(
        write,
        space_id,
        token=token,
        private=private,
        commit_message=commit_message,
        repo_type="space",
        space_sdk="gradio",
        delete_patterns=["*"],
    )
