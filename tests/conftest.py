"""Shared pytest fixtures.

Hub fixtures (see ``tests/hub_server.py`` for the server itself):

* ``hub_server`` -- a local Hugging Face Hub-compatible server. One server runs for the whole
  session; the fixture wipes its repos, pending failures and request log before each test.
* ``hub_env`` -- points ``huggingface_hub`` (and ``diffusers``) at that server with a fresh
  per-test ``HF_HOME``/cache and the server's token, and can switch offline mode on and off::

      def test_roundtrip(hub_env):
          api = hub_env.api
          repo_id = api.create_repo("my-pipe").repo_id  # -> "tester/my-pipe"
          api.upload_folder(repo_id=repo_id, folder_path=some_dir)
          assert hub_env.server.repo_files(repo_id)["model_index.json"] == b"..."
          local = snapshot_download(repo_id)  # lands in hub_env.cache_dir
          hub_env.set_offline(True)  # HF_HUB_OFFLINE=1 semantics: cache only
          assert snapshot_download(repo_id) == local
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

_TESTS_DIR = str(Path(__file__).resolve().parent)
if _TESTS_DIR not in sys.path:  # make `import hub_server` work whatever pytest's import mode is
    sys.path.insert(0, _TESTS_DIR)

from hub_server import HubServer  # noqa: E402

if TYPE_CHECKING:
    from huggingface_hub import HfApi

# Modules whose import-time copies of `huggingface_hub.constants` values get patched too.
_PATCHED_PACKAGES = ("huggingface_hub", "diffusers", "transformers", "sefa_plugin")
# Other names under which modules copy the Hub endpoint (diffusers' `HUGGINGFACE_CO_RESOLVE_ENDPOINT =
# os.environ.get("HF_ENDPOINT", ...)`); `from huggingface_hub.constants import ENDPOINT` keeps the name.
_ENDPOINT_ALIASES = ("HUGGINGFACE_CO_RESOLVE_ENDPOINT", "HF_ENDPOINT")
# Environment variables that would leak the developer's own Hub setup into a test (or its subprocesses).
_CLEARED_ENV_VARS = (
    "HUGGINGFACE_HUB_CACHE",
    "HUGGINGFACE_ASSETS_CACHE",
    "HF_ASSETS_CACHE",
    "HF_XET_CACHE",
    "HF_TOKEN_PATH",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_OIDC_RESOURCE",
    "HUGGINGFACE_CO_STAGING",
    "TRANSFORMERS_OFFLINE",
    "HF_MODULES_CACHE",
)


def _modules_to_patch() -> list[ModuleType]:
    """Already-imported modules of the packages that may hold copies of hub constants."""
    return [
        module
        for name, module in list(sys.modules.items())
        if isinstance(module, ModuleType) and name.split(".")[0] in _PATCHED_PACKAGES
    ]


def _hub_constant_overrides(endpoint: str, hf_home: Path, cache_dir: Path) -> dict[str, Any]:
    """New values for every `huggingface_hub.constants` attribute derived from the env at import time."""
    from huggingface_hub import constants

    return {
        "ENDPOINT": endpoint,
        "HUGGINGFACE_CO_URL_TEMPLATE": endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_URL_HOSTS": constants.HF_URL_HOSTS | {"127.0.0.1"},
        "HF_HOME": str(hf_home),
        "HF_HUB_CACHE": str(cache_dir),
        "HUGGINGFACE_HUB_CACHE": str(cache_dir),
        "default_cache_path": str(cache_dir),
        "HF_ASSETS_CACHE": str(hf_home / "assets"),
        "HUGGINGFACE_ASSETS_CACHE": str(hf_home / "assets"),
        "default_assets_cache_path": str(hf_home / "assets"),
        "HF_XET_CACHE": str(hf_home / "xet"),
        "default_xet_cache_path": str(hf_home / "xet"),
        "HF_TOKEN_PATH": str(hf_home / "token"),
        "HF_STORED_TOKENS_PATH": str(hf_home / "stored_tokens"),
        "CHECK_FOR_UPDATE_DONE_PATH": str(hf_home / ".check_for_update_done"),
        "CHECK_FOR_SKILL_UPDATE_DONE_PATH": str(hf_home / ".check_for_skill_update_done"),
        "AGENT_HARNESSES_PATH": str(hf_home / ".agent_harnesses.json"),
        "HF_HUB_OFFLINE": False,
        "HF_HUB_DISABLE_TELEMETRY": True,
        "HF_HUB_DISABLE_UPDATE_CHECK": True,
    }


@dataclass
class HubEnv:
    """What ``hub_env`` returns: where ``huggingface_hub`` now points, and an offline switch."""

    server: HubServer
    endpoint: str
    token: str
    hf_home: Path
    cache_dir: Path
    _monkeypatch: pytest.MonkeyPatch
    _modules_at_setup: frozenset[str] = frozenset()
    _offline: bool = False

    @property
    def offline(self) -> bool:
        return self._offline

    @property
    def api(self) -> HfApi:
        """A fresh ``HfApi`` bound to the local server and its token."""
        from huggingface_hub import HfApi

        return HfApi(endpoint=self.endpoint, token=self.token)

    def set_offline(self, offline: bool) -> None:
        """Turn ``HF_HUB_OFFLINE`` on/off: in-process (constants and their copies) and for subprocesses.

        When on, every ``huggingface_hub`` HTTP call raises ``OfflineModeIsEnabled`` before leaving the
        process, so downloads are served from ``cache_dir`` only (exactly as with ``HF_HUB_OFFLINE=1``).
        """
        for module in _modules_to_patch():
            if not isinstance(vars(module).get("HF_HUB_OFFLINE"), bool):
                continue
            if module.__name__ in self._modules_at_setup:
                self._monkeypatch.setattr(module, "HF_HUB_OFFLINE", offline)
            else:
                # Imported during this test, so it copied a patched value: monkeypatch would "restore"
                # that one. The fixture's teardown resets such copies to the original value instead.
                module.HF_HUB_OFFLINE = offline
        self._monkeypatch.setenv("HF_HUB_OFFLINE", "1" if offline else "0")
        self._offline = offline


def _clear_hf_file_system_cache() -> None:
    """``HfFileSystem`` instances are cached by fsspec with the endpoint they were created with."""
    module = sys.modules.get("huggingface_hub.hf_file_system")
    if module is not None:
        module.HfFileSystem.clear_instance_cache()


def _patch_hub_constants(monkeypatch: pytest.MonkeyPatch, overrides: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Patch `huggingface_hub.constants` and every import-time copy of it.

    Returns ``{name: (original value, test value)}`` for every name a module may hold a copy under.
    """
    from huggingface_hub import constants
    from huggingface_hub.hf_api import HfApi
    from huggingface_hub.utils import _http

    copies = {name: (getattr(constants, name), value) for name, value in overrides.items()}
    old_endpoint, endpoint = copies["ENDPOINT"]
    copies |= {alias: (old_endpoint, endpoint) for alias in _ENDPOINT_ALIASES}
    old_home, home = copies["HF_HOME"]
    # diffusers: `HF_MODULES_CACHE = os.getenv("HF_MODULES_CACHE", os.path.join(HF_HOME, "modules"))`
    copies["HF_MODULES_CACHE"] = (os.path.join(old_home, "modules"), os.path.join(home, "modules"))

    for name, value in overrides.items():
        monkeypatch.setattr(constants, name, value)
    for module in _modules_to_patch():
        if module is constants:
            continue
        namespace = vars(module)
        for name, (old, new) in copies.items():
            if name in namespace and namespace[name] == old:
                monkeypatch.setattr(module, name, new)
        # Module-level clients such as `huggingface_hub.hf_api.api` (behind `huggingface_hub.model_info`,
        # `create_repo`, `upload_folder`, ...) read the endpoint once, when they are created.
        for value in list(namespace.values()):
            if isinstance(value, HfApi) and value.endpoint == old_endpoint:
                monkeypatch.setattr(value, "endpoint", endpoint)

    # Origins the client forwards auth to when following redirects (computed from ENDPOINT at import).
    if hasattr(_http, "_HUB_ORIGINS") and hasattr(_http, "_url_origin"):
        monkeypatch.setattr(_http, "_HUB_ORIGINS", _http._HUB_ORIGINS | {_http._url_origin(endpoint)})
    return copies


def _restore_leaked_copies(copies: dict[str, tuple[Any, Any]]) -> None:
    """Modules first imported during the test copied the test values: put the original values back."""
    for module in _modules_to_patch():
        namespace = vars(module)
        for name, (old, new) in copies.items():
            if name not in namespace:
                continue
            value = namespace[name]
            offline_flag = name == "HF_HUB_OFFLINE" and isinstance(value, bool)  # may have been toggled
            if offline_flag or (type(value) is type(new) and value == new):
                setattr(module, name, old)


@pytest.fixture(scope="session")
def hub_server_session() -> Iterator[HubServer]:
    """The one local Hub server of the test session (prefer ``hub_server``, which starts clean)."""
    server = HubServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def hub_server(hub_server_session: HubServer) -> HubServer:
    """The session's local Hub server, emptied of repos, pending failures and logged requests."""
    hub_server_session.reset()
    return hub_server_session


@pytest.fixture
def hub_env(hub_server: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubEnv]:
    """Point ``huggingface_hub`` at ``hub_server`` with an isolated per-test ``HF_HOME`` and token.

    ``huggingface_hub`` reads ``HF_ENDPOINT``, ``HF_HOME``, ``HF_HUB_CACHE``, ``HF_HUB_OFFLINE``... once,
    at import time, into ``huggingface_hub.constants`` (and other modules copy those values), so the
    constants and their already-imported copies are monkeypatched, and the environment variables are
    set as well for subprocesses and for code reading them lazily (the token is read from ``HF_TOKEN``
    on each request). Telemetry and update checks are disabled. Everything is undone after the test.
    """
    hf_home = tmp_path / "hf_home"
    cache_dir = hf_home / "hub"
    cache_dir.mkdir(parents=True)
    endpoint = hub_server.url

    for name in _CLEARED_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "HF_ENDPOINT": endpoint,
        "HF_HOME": str(hf_home),
        "HF_HUB_CACHE": str(cache_dir),
        "HF_TOKEN": hub_server.token,
        "HF_HUB_OFFLINE": "0",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_UPDATE_CHECK": "1",
    }.items():
        monkeypatch.setenv(name, value)

    copies = _patch_hub_constants(monkeypatch, _hub_constant_overrides(endpoint, hf_home, cache_dir))
    _clear_hf_file_system_cache()
    env = HubEnv(
        server=hub_server,
        endpoint=endpoint,
        token=hub_server.token,
        hf_home=hf_home,
        cache_dir=cache_dir,
        _monkeypatch=monkeypatch,
        _modules_at_setup=frozenset(sys.modules),
    )
    yield env
    _restore_leaked_copies(copies)
    _clear_hf_file_system_cache()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="slow: run with --runslow (make test-slow)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> Iterator[None]:
    """Tiny test models run fastest on one thread; two threads on a busy 2-core machine wait on each other."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
