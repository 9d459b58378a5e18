"""End-to-end checks of the local Hub test server through ``huggingface_hub``'s public API only.

These pin down that ``tests/hub_server.py`` + the ``hub_env`` fixture behave like the real Hub for
everything the plugin relies on: repo creation, uploads (commits), repo info, listings, downloads
into the cache (by branch and by commit oid), offline mode, failures and authentication errors.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import huggingface_hub
import pytest
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    HfApi,
    get_session,
    hf_hub_download,
    snapshot_download,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

if TYPE_CHECKING:
    from conftest import HubEnv
    from hub_server import HubServer

BINARY = bytes(range(256)) * 40 + b"\x00\xff\x00"
FILES: dict[str, bytes] = {
    "model_index.json": b'{"_class_name": "SeFaPipeline"}',
    "README.md": b"---\nlicense: apache-2.0\ntags:\n- sefa\n---\n# A test model\n",
    "generator/config.json": b'{"resolution": 16}',
    "generator/weights.bin": BINARY,
    "directions/sefa.json": b'{"k": 3}',
}


def _write_folder(root: Path, files: dict[str, bytes]) -> Path:
    for path, content in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return root


def _read_snapshot(folder: str | Path) -> dict[str, bytes]:
    root = Path(folder)
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def uploaded(hub_env: HubEnv, tmp_path: Path) -> tuple[str, str]:
    """A repo created and filled through the public API: ``(repo_id, commit oid)``."""
    repo_url = huggingface_hub.create_repo("sefa-test")
    info = huggingface_hub.upload_folder(
        repo_id=repo_url.repo_id, folder_path=_write_folder(tmp_path / "upload", FILES)
    )
    return repo_url.repo_id, info.oid


def test_environment_points_at_local_server(hub_env: HubEnv) -> None:
    assert hub_env.endpoint.startswith("http://127.0.0.1:")
    assert hub_env.endpoint == huggingface_hub.constants.ENDPOINT
    assert str(hub_env.cache_dir) == huggingface_hub.constants.HF_HUB_CACHE
    assert os.environ["HF_ENDPOINT"] == hub_env.endpoint
    assert os.environ["HF_TOKEN"] == hub_env.token
    assert huggingface_hub.whoami()["name"] == "tester"


def test_create_and_upload_folder(hub_env: HubEnv, uploaded: tuple[str, str]) -> None:
    repo_id, oid = uploaded
    server = hub_env.server
    assert repo_id == "tester/sefa-test"
    assert re.fullmatch(r"[0-9a-f]{40}", oid)

    files = server.repo_files(repo_id)
    assert {path: files[path] for path in FILES} == FILES
    assert set(files) == {*FILES, ".gitattributes"}  # like the Hub, repos start with .gitattributes
    history = server.commits(repo_id)
    assert history[-1].oid == oid
    assert history[-1].parent == history[0].oid
    assert server.unhandled == []


def test_commit_info_url(hub_env: HubEnv, tmp_path: Path) -> None:
    api = hub_env.api
    repo_id = api.create_repo("commit-url").repo_id
    info = api.upload_folder(repo_id=repo_id, folder_path=_write_folder(tmp_path / "up", {"a.txt": b"a"}))
    assert info.commit_url == f"{hub_env.endpoint}/{repo_id}/commit/{info.oid}"
    assert info.repo_url.repo_id == repo_id
    assert info.repo_url.endpoint == hub_env.endpoint


def test_model_info_and_listing(hub_env: HubEnv, uploaded: tuple[str, str]) -> None:
    repo_id, oid = uploaded
    api = HfApi()
    info = api.model_info(repo_id)
    assert info.id == repo_id
    assert info.sha == oid
    assert info.private is False
    assert {sibling.rfilename for sibling in info.siblings or []} == {*FILES, ".gitattributes"}
    assert api.model_info(repo_id, revision=oid).sha == oid
    detailed = api.model_info(repo_id, files_metadata=True)
    sizes = {sibling.rfilename: sibling.size for sibling in detailed.siblings or []}
    assert sizes["generator/weights.bin"] == len(BINARY)

    assert sorted(api.list_repo_files(repo_id)) == sorted({*FILES, ".gitattributes"})
    top_level = {entry.path for entry in api.list_repo_tree(repo_id)}
    assert top_level == {".gitattributes", "README.md", "model_index.json", "generator", "directions"}
    nested = {entry.path for entry in api.list_repo_tree(repo_id, path_in_repo="generator")}
    assert nested == {"generator/config.json", "generator/weights.bin"}
    assert api.file_exists(repo_id, "generator/weights.bin")
    assert not api.file_exists(repo_id, "missing.bin")
    assert api.repo_exists(repo_id)
    assert next(commit.commit_id for commit in api.list_repo_commits(repo_id)) == oid


def test_hf_hub_download(hub_env: HubEnv, uploaded: tuple[str, str]) -> None:
    repo_id, oid = uploaded
    path = Path(hf_hub_download(repo_id, "generator/weights.bin"))
    assert path.read_bytes() == BINARY
    assert hub_env.cache_dir in path.parents
    assert oid in path.parts  # stored under snapshots/<commit oid>/
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo_id, "nope.json")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(repo_id, "model_index.json", revision="no-such-branch")


def test_snapshot_download_by_branch_and_oid(hub_env: HubEnv, uploaded: tuple[str, str]) -> None:
    repo_id, oid = uploaded
    by_branch = snapshot_download(repo_id, revision="main")
    assert Path(by_branch) == hub_env.cache_dir / "models--tester--sefa-test" / "snapshots" / oid
    snapshot = _read_snapshot(by_branch)
    assert {path: snapshot[path] for path in FILES} == FILES
    by_oid = snapshot_download(repo_id, revision=oid)
    assert by_oid == by_branch


def test_offline_mode_uses_cache_only(hub_env: HubEnv, uploaded: tuple[str, str]) -> None:
    repo_id, _ = uploaded
    online_snapshot = snapshot_download(repo_id)
    online_file = hf_hub_download(repo_id, "model_index.json")
    requests_before = len(hub_env.server.request_log())

    hub_env.set_offline(True)
    assert huggingface_hub.constants.HF_HUB_OFFLINE is True
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert snapshot_download(repo_id) == online_snapshot
    assert hf_hub_download(repo_id, "model_index.json") == online_file
    with pytest.raises(LocalEntryNotFoundError):
        snapshot_download("tester/never-downloaded")
    with pytest.raises(LocalEntryNotFoundError):
        hf_hub_download("tester/never-downloaded", "model_index.json")
    assert len(hub_env.server.request_log()) == requests_before  # nothing left the process

    hub_env.set_offline(False)
    assert huggingface_hub.model_info(repo_id).id == repo_id


def test_second_commit_changes_one_file(hub_env: HubEnv, uploaded: tuple[str, str]) -> None:
    repo_id, first_oid = uploaded
    api = hub_env.api
    info = api.upload_file(path_or_fileobj=b'{"k": 5}', path_in_repo="directions/sefa.json", repo_id=repo_id)
    assert info.oid != first_oid
    history = hub_env.server.commits(repo_id)
    assert [commit.oid for commit in history[-2:]] == [first_oid, info.oid]
    assert history[-1].parent == first_oid

    files = hub_env.server.repo_files(repo_id)
    assert files["directions/sefa.json"] == b'{"k": 5}'
    assert {path: content for path, content in files.items() if path != "directions/sefa.json"} == {
        path: content
        for path, content in hub_env.server.repo_files(repo_id, first_oid).items()
        if path != "directions/sefa.json"
    }
    assert api.model_info(repo_id).sha == info.oid
    new = Path(hf_hub_download(repo_id, "directions/sefa.json")).read_bytes()
    old = Path(hf_hub_download(repo_id, "directions/sefa.json", revision=first_oid)).read_bytes()
    assert (old, new) == (b'{"k": 3}', b'{"k": 5}')


def test_failed_commit_changes_nothing(hub_env: HubEnv, uploaded: tuple[str, str], tmp_path: Path) -> None:
    repo_id, oid = uploaded
    server = hub_env.server
    before = server.repo_files(repo_id)

    server.fail_next_commit(500)
    with pytest.raises(HfHubHTTPError) as excinfo:
        hub_env.api.upload_file(path_or_fileobj=b"new", path_in_repo="new.txt", repo_id=repo_id)
    assert excinfo.value.response.status_code == 500

    # `upload_folder` retries 5xx commits: a 4xx is the way to make it fail right away.
    server.fail_next_commit(422)
    with pytest.raises(HfHubHTTPError) as excinfo:
        hub_env.api.upload_folder(repo_id=repo_id, folder_path=_write_folder(tmp_path / "x", {"x.txt": b"x"}))
    assert excinfo.value.response.status_code == 422

    assert server.repo_files(repo_id) == before
    assert server.commits(repo_id)[-1].oid == oid
    assert hub_env.api.model_info(repo_id).sha == oid

    # Failures are one-shot: the next commit goes through.
    info = hub_env.api.upload_file(path_or_fileobj=b"new", path_in_repo="new.txt", repo_id=repo_id)
    assert server.repo_files(repo_id)["new.txt"] == b"new"
    assert server.commits(repo_id)[-1].oid == info.oid


def test_commit_is_atomic(hub_env: HubEnv, uploaded: tuple[str, str]) -> None:
    repo_id, oid = uploaded
    before = hub_env.server.repo_files(repo_id)
    operations = [
        CommitOperationAdd(path_in_repo="added.txt", path_or_fileobj=b"added"),
        CommitOperationDelete(path_in_repo="does-not-exist.txt"),
    ]
    with pytest.raises(EntryNotFoundError):
        hub_env.api.create_commit(repo_id, operations, commit_message="half-broken")
    assert hub_env.server.repo_files(repo_id) == before

    info = hub_env.api.create_commit(
        repo_id,
        [
            CommitOperationAdd(path_in_repo="added.txt", path_or_fileobj=b"added"),
            CommitOperationDelete(path_in_repo="directions/"),
        ],
        commit_message="add and delete",
        parent_commit=oid,
    )
    files = hub_env.server.repo_files(repo_id)
    assert files["added.txt"] == b"added"
    assert not any(path.startswith("directions/") for path in files)
    assert hub_env.server.commits(repo_id)[-1].summary == "add and delete"
    with pytest.raises(HfHubHTTPError) as excinfo:  # stale parent commit
        hub_env.api.create_commit(
            repo_id,
            [CommitOperationAdd(path_in_repo="late.txt", path_or_fileobj=b"late")],
            commit_message="late",
            parent_commit=oid,
        )
    assert excinfo.value.response.status_code == 412
    assert hub_env.server.commits(repo_id)[-1].oid == info.oid


def test_wrong_or_missing_token_is_rejected(hub_env: HubEnv, uploaded: tuple[str, str]) -> None:
    repo_id, _ = uploaded
    with pytest.raises(HfHubHTTPError) as excinfo:
        huggingface_hub.whoami(token="hf_wrong")
    assert excinfo.value.response.status_code == 401
    wrong = HfApi(endpoint=hub_env.endpoint, token="hf_wrong")
    with pytest.raises(HfHubHTTPError) as excinfo:
        wrong.create_repo("other")
    assert excinfo.value.response.status_code == 401
    with pytest.raises(HfHubHTTPError) as excinfo:
        wrong.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id)
    assert excinfo.value.response.status_code == 401
    anonymous = HfApi(endpoint=hub_env.endpoint, token=False)
    with pytest.raises(HfHubHTTPError) as excinfo:
        anonymous.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id)
    assert excinfo.value.response.status_code == 401
    assert anonymous.model_info(repo_id).id == repo_id  # public repos are readable anonymously
    assert not hub_env.server.has_repo("tester/other")


def test_missing_repo(hub_env: HubEnv) -> None:
    with pytest.raises(RepositoryNotFoundError):
        huggingface_hub.model_info("tester/missing")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("tester/missing", "config.json")
    with pytest.raises(RepositoryNotFoundError):
        snapshot_download("tester/missing")
    assert not hub_env.api.repo_exists("tester/missing")


def test_create_repo_conflict_and_private(hub_env: HubEnv) -> None:
    api = hub_env.api
    api.create_repo("dup")
    with pytest.raises(HfHubHTTPError) as excinfo:
        api.create_repo("dup")
    assert excinfo.value.response.status_code == 409
    assert api.create_repo("dup", exist_ok=True).repo_id == "tester/dup"

    api.create_repo("secret", private=True)
    assert api.model_info("tester/secret").private is True
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=hub_env.endpoint, token=False).model_info("tester/secret")


def test_seeding_hooks_and_unknown_routes(hub_env: HubEnv, hub_server: HubServer) -> None:
    oid = hub_server.create_repo("tester/seeded", {"config.json": b"{}"})
    assert huggingface_hub.model_info("tester/seeded").sha == oid
    assert Path(hf_hub_download("tester/seeded", "config.json")).read_bytes() == b"{}"

    response = get_session().get(f"{hub_env.endpoint}/api/not-a-route")
    assert response.status_code == 501
    assert "/api/not-a-route" in response.json()["error"]
    assert hub_server.unhandled == ["GET /api/not-a-route"]


def test_pull_requests(hub_env: HubEnv, uploaded: tuple[str, str], tmp_path: Path) -> None:
    repo_id, oid = uploaded
    api = hub_env.api
    server = hub_env.server
    info = api.upload_file(path_or_fileobj=b"pr", path_in_repo="pr.txt", repo_id=repo_id, create_pr=True)
    assert info.pr_num == 1
    assert info.pr_revision == "refs/pr/1"
    assert server.repo_files(repo_id, "refs/pr/1")["pr.txt"] == b"pr"
    assert "pr.txt" not in server.repo_files(repo_id)  # main is untouched
    assert Path(hf_hub_download(repo_id, "pr.txt", revision="refs/pr/1")).read_bytes() == b"pr"

    folder = _write_folder(tmp_path / "pr2", {"model_index.json": b"{}"})
    info = api.upload_folder(repo_id=repo_id, folder_path=folder, create_pr=True)
    assert info.pr_revision == "refs/pr/2"
    assert server.repo_files(repo_id, "refs/pr/2")["model_index.json"] == b"{}"
    assert [pr.num for pr in server.pull_requests(repo_id)] == [1, 2]
    refs = api.list_repo_refs(repo_id, include_pull_requests=True)
    assert [ref.ref for ref in refs.pull_requests or []] == ["refs/pr/1", "refs/pr/2"]
    assert [branch.target_commit for branch in refs.branches] == [oid]


def test_delete_repo(hub_env: HubEnv, uploaded: tuple[str, str]) -> None:
    repo_id, _ = uploaded
    hub_env.api.delete_repo(repo_id)
    assert not hub_env.server.has_repo(repo_id)
    with pytest.raises(RepositoryNotFoundError):
        hub_env.api.delete_repo(repo_id)
    hub_env.api.delete_repo(repo_id, missing_ok=True)


def test_space_repos(hub_env: HubEnv, hub_server: HubServer, tmp_path: Path) -> None:
    api = hub_env.api
    url = api.create_repo("editor", repo_type="space", space_sdk="gradio")
    assert url.repo_id == "tester/editor" and "/spaces/tester/editor" in str(url)
    assert api.space_info("tester/editor").sdk == "gradio"
    assert not hub_server.has_repo("tester/editor")  # a space, not a model
    folder = _write_folder(tmp_path / "space", {"app.py": b"print('hi')\n", "pkg/mod.py": b"X = 1\n"})
    api.upload_folder(repo_id="tester/editor", repo_type="space", folder_path=folder)
    assert hub_server.repo_files("tester/editor", repo_type="space")["pkg/mod.py"] == b"X = 1\n"
    # delete_patterns removes what the folder no longer has, in the same commit.
    (folder / "pkg" / "mod.py").unlink()
    api.upload_folder(repo_id="tester/editor", repo_type="space", folder_path=folder, delete_patterns=["*"])
    files = hub_server.repo_files("tester/editor", repo_type="space")
    assert sorted(files) == [".gitattributes", "app.py"]
    assert len(hub_server.commits("tester/editor", repo_type="space")) == 3
    # The Hub refuses a Space without an SDK (huggingface_hub checks it first; the raw request gets a 400).
    response = get_session().post(
        f"{hub_env.endpoint}/api/repos/create",
        json={"name": "no-sdk", "type": "space"},
        headers={"authorization": f"Bearer {hub_env.token}"},
    )
    assert response.status_code == 400 and "sdk" in response.json()["error"]
    assert not hub_server.has_repo("tester/no-sdk", repo_type="space")
