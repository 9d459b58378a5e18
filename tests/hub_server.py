"""A local, in-memory Hugging Face Hub-compatible HTTP server for the test suite.

The test suite must never reach the real Hub (there is no network in CI), yet the plugin's
``push_to_hub`` / ``from_pretrained`` code paths go through ``huggingface_hub`` and ``diffusers``.
:class:`HubServer` answers the subset of the Hub HTTP API that ``huggingface_hub`` 2.x uses for
model (and, trivially, dataset/space) repositories, so those code paths can be exercised end to end
against ``127.0.0.1``.

What is implemented (``{type}`` is ``models``, ``datasets`` or ``spaces``):

* ``GET /api/whoami-v2`` -- the user ``tester`` when the bearer token equals :attr:`HubServer.token`.
* ``POST /api/repos/create``, ``DELETE /api/repos/delete`` -- 409 when the repo already exists; a Space
  needs an ``sdk`` (``gradio``, ``docker``, ``static``; 400 otherwise), which its repo info reports.
* ``GET /api/{type}/{repo_id}`` and ``GET /api/{type}/{repo_id}/revision/{rev}`` -- repo info
  (``id``, ``sha``, ``siblings``, ``private``, ...; ``?blobs=true`` adds sizes and blob ids).
* ``GET /api/{type}/{repo_id}/tree/{rev}[/{path}]`` (``?recursive=true``) and
  ``POST /api/{type}/{repo_id}/paths-info/{rev}``.
* ``GET /api/{type}/{repo_id}/refs``, ``GET /api/{type}/{repo_id}/commits/{rev}``,
  ``POST``/``DELETE /api/{type}/{repo_id}/branch/{branch}``.
* ``POST /api/{type}/{repo_id}/preupload/{rev}`` -- every file is ``"regular"`` (never LFS/Xet).
* ``POST /api/{type}/{repo_id}/commit/{rev}`` -- NDJSON commit (``file``, ``deletedFile``,
  ``deletedFolder``), validated fully and then applied atomically as one new commit; with
  ``?create_pr=1`` the commit lands on a new pull request instead.
* ``POST /api/{type}/{repo_id}/discussions`` (pull requests only) and
  ``GET /api/{type}/{repo_id}/discussions/{num}`` -- enough for ``create_pull_request`` and
  ``upload_folder(create_pr=True)``. Pull requests are never merged.
* ``HEAD``/``GET /[{type}/]{repo_id}/resolve/{rev}/{path}`` -- file download with ``X-Repo-Commit``,
  quoted ``ETag`` (the git blob oid), ``Content-Length`` and ``Range`` support.
* ``POST /api/validate-yaml`` (always valid), ``/api/telemetry/*`` (ignored),
  ``GET /api/agent-harnesses`` (404, quietly).

Errors carry the ``X-Error-Code`` header (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``)
that ``huggingface_hub`` maps onto its exception classes. A request with a wrong bearer token gets a
401 with ``X-Error-Message: Invalid credentials in Authorization header`` (as on the real Hub); write
endpoints without a token get a 401. Any route not listed above is answered with a 501 naming the
route, logged as a warning and recorded in :attr:`HubServer.unhandled`, so a missing endpoint is easy
to spot.

Revisions: branch names (``main`` and any branch created through the API), pull request refs
(``refs/pr/<num>``) and full 40-hex commit oids. Like the real Hub, a new repo starts with one
commit holding a ``.gitattributes`` file (pass ``gitattributes=None`` to start repos empty).

Test hooks: :attr:`HubServer.url`, :attr:`HubServer.token`, :meth:`HubServer.fail_next_commit`,
:meth:`HubServer.repo_files`, :meth:`HubServer.commits`, :meth:`HubServer.branches`,
:meth:`HubServer.pull_requests`, :meth:`HubServer.request_log`, :attr:`HubServer.unhandled`,
:meth:`HubServer.create_repo` / :meth:`HubServer.commit_files` (seed repos without HTTP),
:meth:`HubServer.reset` and :meth:`HubServer.stop`. Standard library only.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import itertools
import json
import logging
import re
import secrets
import socket
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import MappingProxyType
from typing import Any, ClassVar
from urllib.parse import parse_qs, quote, unquote, urlsplit

__all__ = ["DEFAULT_GITATTRIBUTES", "Commit", "HubServer", "PullRequest", "RequestRecord", "git_blob_oid"]

logger = logging.getLogger(__name__)

DEFAULT_BRANCH = "main"
USER_NAME = "tester"
INVALID_CREDENTIALS = "Invalid credentials in Authorization header"

# Plural URL segment -> repo type, and repo type -> prefix used in web/resolve URLs.
_API_REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
_URL_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}
# The SDKs a Space can be created with (the Hub refuses a Space without one).
_SPACE_SDKS = frozenset({"gradio", "docker", "static"})
# Segments that may follow a repo id in an API path: used to tell `name` from `namespace/name`.
_REPO_SUBPATHS = frozenset(
    {
        "revision",
        "tree",
        "paths-info",
        "preupload",
        "commit",
        "commits",
        "refs",
        "branch",
        "resolve",
        "discussions",
    }
)
_FULL_OID = re.compile(r"[0-9a-f]{40}")
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")

# What the real Hub commits when it creates a model repo (abridged: the same LFS patterns matter).
DEFAULT_GITATTRIBUTES = b"".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n".encode()
    for pattern in ("*.bin", "*.ckpt", "*.h5", "*.npy", "*.npz", "*.onnx", "*.pt", "*.pth", "*.safetensors")
)


def git_blob_oid(content: bytes) -> str:
    """Return the git blob oid of ``content`` (what the Hub uses as ETag/oid of a regular file)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content, usedforsecurity=False).hexdigest()


def _iso(moment: datetime) -> str:
    """Format a datetime the way the Hub does (``2024-01-31T12:00:00.000Z``)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Commit:
    """One commit of a repository: a full snapshot of the files (``path -> bytes``) plus metadata."""

    oid: str
    parent: str | None
    files: Mapping[str, bytes]
    summary: str
    description: str = ""
    created_at: datetime = field(default_factory=_now)


@dataclass(frozen=True)
class RequestRecord:
    """One request the server answered (for assertions such as "offline mode sent nothing")."""

    method: str
    path: str
    status: int


@dataclass
class PullRequest:
    """A (draft) pull request: its commits live on the ref ``refs/pr/<num>``."""

    num: int
    title: str
    description: str
    base: str  # the branch it targets
    created_at: datetime = field(default_factory=_now)
    commits: list[str] = field(default_factory=list)  # oids pushed to the PR, oldest first

    @property
    def ref(self) -> str:
        return f"refs/pr/{self.num}"


@dataclass
class _Repo:
    repo_type: str
    repo_id: str
    private: bool
    sdk: str | None = None  # spaces only
    created_at: datetime = field(default_factory=_now)
    commits: dict[str, Commit] = field(default_factory=dict)  # oid -> commit
    # Branch name (or "refs/pr/<num>" for pull requests) -> head oid.
    branches: dict[str, str] = field(default_factory=dict)
    pull_requests: dict[int, PullRequest] = field(default_factory=dict)
    object_id: str = field(default_factory=lambda: secrets.token_hex(12))


class HubError(Exception):
    """An error answered to the client as JSON ``{"error": message}`` with Hub-style headers."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_code: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = dict(extra or {})  # more fields of the JSON body
        self.headers = dict(headers or {})
        if error_code is not None:
            self.headers["X-Error-Code"] = error_code
        self.headers.setdefault("X-Error-Message", message.encode("ascii", "replace").decode())


def _repo_not_found(repo_id: str, status: int = HTTPStatus.NOT_FOUND) -> HubError:
    return HubError(status, f"Repository not found: {repo_id}", error_code="RepoNotFound")


@dataclass
class _Operation:
    """A parsed commit operation (``file`` / ``deletedFile`` / ``deletedFolder``)."""

    kind: str
    path: str
    content: bytes = b""


@dataclass
class _Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: Any, status: int = HTTPStatus.OK) -> _Response:
        return cls(status, json.dumps(payload).encode(), {"Content-Type": "application/json"})


def _validate_path(path: str) -> str:
    if not path or path.startswith("/") or any(part in ("", ".", "..") for part in path.split("/")):
        raise HubError(HTTPStatus.BAD_REQUEST, f"Invalid path in repo: {path!r}")
    return path


def _parse_commit_payload(body: bytes) -> tuple[dict[str, Any], list[_Operation]]:
    """Parse and validate an NDJSON commit payload; raise :class:`HubError` (400) on anything odd."""
    header: dict[str, Any] | None = None
    operations: list[_Operation] = []
    for line_number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            key, value = item["key"], item["value"]
        except (ValueError, KeyError, TypeError) as err:
            raise HubError(HTTPStatus.BAD_REQUEST, f"Malformed commit payload line {line_number}: {err}") from err
        if key == "header":
            if header is not None or operations:
                raise HubError(HTTPStatus.BAD_REQUEST, "The commit header must come first, once")
            header = value
        elif key == "file":
            if value.get("encoding", "base64") != "base64":
                raise HubError(HTTPStatus.BAD_REQUEST, f"Unsupported encoding {value.get('encoding')!r}")
            try:
                content = base64.b64decode(value["content"], validate=True)
            except (binascii.Error, KeyError, TypeError) as err:
                raise HubError(HTTPStatus.BAD_REQUEST, f"Invalid base64 content on line {line_number}") from err
            operations.append(_Operation("file", _validate_path(value.get("path", "")), content))
        elif key == "deletedFile":
            operations.append(_Operation("deletedFile", _validate_path(value.get("path", ""))))
        elif key == "deletedFolder":
            operations.append(_Operation("deletedFolder", _validate_path(value.get("path", "").rstrip("/"))))
        elif key == "lfsFile":
            raise HubError(
                HTTPStatus.BAD_REQUEST,
                "LFS files are not supported by the test hub server (preupload always answers 'regular')",
            )
        else:
            raise HubError(HTTPStatus.BAD_REQUEST, f"Unknown commit operation key {key!r}")
    if header is None:
        raise HubError(HTTPStatus.BAD_REQUEST, "The commit payload has no header line")
    if not header.get("summary"):
        raise HubError(HTTPStatus.BAD_REQUEST, "The commit summary must not be empty")
    return header, operations


def _apply_operations(files: Mapping[str, bytes], operations: Iterable[_Operation]) -> dict[str, bytes]:
    """Return a new file mapping with ``operations`` applied; raise before changing anything."""
    new_files = dict(files)
    for operation in operations:
        if operation.kind == "file":
            new_files[operation.path] = operation.content
        elif operation.kind == "deletedFile":
            if new_files.pop(operation.path, None) is None:
                raise HubError(HTTPStatus.NOT_FOUND, f"File not found: {operation.path}", error_code="EntryNotFound")
        else:  # deletedFolder
            prefix = operation.path + "/"
            doomed = [path for path in new_files if path.startswith(prefix)]
            if not doomed:
                raise HubError(HTTPStatus.NOT_FOUND, f"Folder not found: {operation.path}", error_code="EntryNotFound")
            for path in doomed:
                del new_files[path]
    return new_files


class _HubState:
    """The repositories and their histories, guarded by one lock. No HTTP in here."""

    def __init__(self, gitattributes: bytes | None) -> None:
        self._lock = threading.RLock()
        self._gitattributes = gitattributes
        self._repos: dict[tuple[str, str], _Repo] = {}
        self._sequence = itertools.count()

    def clear(self) -> None:
        with self._lock:
            self._repos.clear()

    def keys(self) -> list[tuple[str, str]]:
        with self._lock:
            return sorted(self._repos)

    # -- repositories ---------------------------------------------------------------------------

    def create_repo(self, repo_type: str, repo_id: str, *, private: bool, sdk: str | None = None) -> _Repo:
        with self._lock:
            if (repo_type, repo_id) in self._repos:
                raise HubError(HTTPStatus.CONFLICT, f"You already created this {repo_type} repo: {repo_id}")
            repo = _Repo(repo_type=repo_type, repo_id=repo_id, private=private, sdk=sdk)
            initial = {".gitattributes": self._gitattributes} if self._gitattributes is not None else {}
            self._add_commit(repo, DEFAULT_BRANCH, initial, summary="initial commit", parent=None)
            self._repos[(repo_type, repo_id)] = repo
            return repo

    def delete_repo(self, repo_type: str, repo_id: str) -> None:
        with self._lock:
            if self._repos.pop((repo_type, repo_id), None) is None:
                raise _repo_not_found(repo_id)

    def get_repo(self, repo_type: str, repo_id: str) -> _Repo:
        with self._lock:
            repo = self._repos.get((repo_type, repo_id))
        if repo is None:
            raise _repo_not_found(repo_id)
        return repo

    # -- revisions ------------------------------------------------------------------------------

    def resolve(self, repo: _Repo, revision: str) -> Commit:
        """Resolve a branch name or a full commit oid to a commit (404 ``RevisionNotFound`` otherwise)."""
        with self._lock:
            oid = repo.branches.get(revision)
            if oid is None and _FULL_OID.fullmatch(revision) and revision in repo.commits:
                oid = revision
            if oid is None:
                raise HubError(HTTPStatus.NOT_FOUND, f"Invalid rev id: {revision}", error_code="RevisionNotFound")
            return repo.commits[oid]

    def history(self, repo: _Repo, revision: str) -> list[Commit]:
        """Commits reachable from ``revision`` following parents, oldest first."""
        with self._lock:
            commit: Commit | None = self.resolve(repo, revision)
            chain: list[Commit] = []
            while commit is not None:
                chain.append(commit)
                commit = repo.commits[commit.parent] if commit.parent is not None else None
        return chain[::-1]

    def create_branch(self, repo: _Repo, branch: str, starting_point: str) -> None:
        with self._lock:
            if branch.startswith("refs/"):
                raise HubError(HTTPStatus.BAD_REQUEST, f"Invalid branch name: {branch}")
            if branch in repo.branches:
                raise HubError(HTTPStatus.CONFLICT, f"Branch already exists: {branch}")
            repo.branches[branch] = self.resolve(repo, starting_point).oid

    def delete_branch(self, repo: _Repo, branch: str) -> None:
        with self._lock:
            if branch == DEFAULT_BRANCH:
                raise HubError(HTTPStatus.FORBIDDEN, "Cannot delete the default branch")
            if repo.branches.pop(branch, None) is None:
                raise HubError(HTTPStatus.NOT_FOUND, f"Invalid rev id: {branch}", error_code="RevisionNotFound")

    # -- commits --------------------------------------------------------------------------------

    def open_pull_request(
        self, repo: _Repo, *, title: str, description: str = "", base: str = DEFAULT_BRANCH
    ) -> PullRequest:
        """Open a pull request against ``base``; its ref starts at the head of ``base``."""
        with self._lock:
            head = self._branch_head(repo, base)
            pull_request = PullRequest(num=len(repo.pull_requests) + 1, title=title, description=description, base=base)
            repo.pull_requests[pull_request.num] = pull_request
            repo.branches[pull_request.ref] = head.oid
            return pull_request

    def commit(
        self,
        repo: _Repo,
        branch: str,
        operations: Iterable[_Operation],
        *,
        summary: str,
        description: str = "",
        parent_commit: str | None = None,
        create_pr: bool = False,
    ) -> tuple[Commit, PullRequest | None]:
        """Apply ``operations`` on ``branch`` as one new commit, or change nothing at all.

        With ``create_pr``, the commit goes to a new pull request against ``branch`` (started from
        ``parent_commit`` when given) instead, and that pull request is returned too.
        """
        with self._lock:
            head = self._branch_head(repo, branch)
            if create_pr and parent_commit is not None:
                head = self._find_commit(repo, parent_commit)
            elif parent_commit is not None and not head.oid.startswith(parent_commit.lower()):
                raise HubError(
                    HTTPStatus.PRECONDITION_FAILED,
                    f"A commit has happened since {parent_commit}. Please refresh and try again.",
                )
            new_files = _apply_operations(head.files, operations)  # raises before any change
            pull_request = None
            if create_pr:
                pull_request = self.open_pull_request(repo, title=summary, description=description, base=branch)
                repo.branches[pull_request.ref] = head.oid
                branch = pull_request.ref
            commit = self._add_commit(
                repo, branch, new_files, summary=summary, description=description, parent=head.oid
            )
            if branch.startswith("refs/pr/"):
                pull_request = repo.pull_requests[int(branch.rsplit("/", 1)[1])]
                pull_request.commits.append(commit.oid)
            return commit, pull_request

    @staticmethod
    def _branch_head(repo: _Repo, branch: str) -> Commit:
        if branch not in repo.branches:
            raise HubError(HTTPStatus.NOT_FOUND, f"Invalid rev id: {branch}", error_code="RevisionNotFound")
        return repo.commits[repo.branches[branch]]

    @staticmethod
    def _find_commit(repo: _Repo, oid_prefix: str) -> Commit:
        matches = [commit for oid, commit in repo.commits.items() if oid.startswith(oid_prefix.lower())]
        if len(matches) != 1:
            raise HubError(HTTPStatus.NOT_FOUND, f"Invalid rev id: {oid_prefix}", error_code="RevisionNotFound")
        return matches[0]

    def _add_commit(
        self,
        repo: _Repo,
        branch: str,
        files: Mapping[str, bytes],
        *,
        summary: str,
        description: str = "",
        parent: str | None,
    ) -> Commit:
        created_at = _now()
        fingerprint = json.dumps(
            {
                "parent": parent,
                "tree": {path: git_blob_oid(content) for path, content in sorted(files.items())},
                "summary": summary,
                "description": description,
                "date": _iso(created_at),
                "sequence": next(self._sequence),
            }
        ).encode()
        oid = hashlib.sha1(fingerprint, usedforsecurity=False).hexdigest()
        commit = Commit(
            oid=oid,
            parent=parent,
            files=MappingProxyType(dict(files)),
            summary=summary,
            description=description,
            created_at=created_at,
        )
        repo.commits[oid] = commit
        repo.branches[branch] = oid
        return commit


@dataclass
class _PendingFailure:
    status: int
    message: str
    remaining: int


class _HubHTTPServer(ThreadingHTTPServer):
    """The socket server; ``hub`` gives handlers access to the state and hooks."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, hub: HubServer) -> None:
        self.hub = hub
        super().__init__(("127.0.0.1", 0), _HubRequestHandler)


class _HubRequestHandler(BaseHTTPRequestHandler):
    """Parses a request, routes it to a ``_route_*`` method and writes the response."""

    protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects from the Hub
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid delayed-ACK stalls
    server_version = "HubTestServer/1.0"
    server: _HubHTTPServer
    # Set per request by `_handle`:
    method: str
    query: dict[str, list[str]]
    raw_segments: list[str]
    body: bytes

    # -- plumbing -------------------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        self.server.hub._register_connection(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.hub._unregister_connection(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("hub_server: " + format, *args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # CRLF after each chunk
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self, method: str) -> None:
        hub = self.server.hub
        split = urlsplit(self.path)
        self.method = method
        self.query = parse_qs(split.query)
        self.raw_segments = [segment for segment in split.path.split("/") if segment]
        try:
            self.body = self._read_body()
            response = self._dispatch(method)
        except HubError as err:
            response = _Response.json({**err.extra, "error": err.message}, err.status)
            response.headers.update(err.headers)
        except Exception as err:
            logger.exception("hub_server: internal error on %s %s", method, self.path)
            response = _Response.json({"error": f"Internal test server error: {err!r}"}, 500)
        hub._record(RequestRecord(method, self.path, int(response.status)))
        logger.debug("hub_server: %s %s -> %d", method, self.path, response.status)
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", response.headers.get("Content-Length", str(len(response.body))))
        self.end_headers()
        if method != "HEAD" and response.body:
            self.wfile.write(response.body)

    # -- auth -----------------------------------------------------------------------------------

    def _authenticated(self, *, required: bool) -> bool:
        """Whether the request carries the accepted token; a wrong token is always a 401."""
        authorization = self.headers.get("Authorization")
        if authorization is None:
            if required:
                raise HubError(HTTPStatus.UNAUTHORIZED, "You must be authenticated to access this endpoint")
            return False
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip(), self.server.hub.token):
            raise HubError(HTTPStatus.UNAUTHORIZED, INVALID_CREDENTIALS)
        return True

    def _readable_repo(self, repo_type: str, repo_id: str) -> _Repo:
        authenticated = self._authenticated(required=False)
        repo = self.server.hub._state.get_repo(repo_type, repo_id)
        if repo.private and not authenticated:
            raise _repo_not_found(repo_id, HTTPStatus.UNAUTHORIZED)
        return repo

    def _writable_repo(self, repo_type: str, repo_id: str) -> _Repo:
        self._authenticated(required=True)
        return self.server.hub._state.get_repo(repo_type, repo_id)

    def _json_body(self) -> dict[str, Any]:
        try:
            payload = json.loads(self.body or b"{}")
        except ValueError as err:
            raise HubError(HTTPStatus.BAD_REQUEST, f"Invalid JSON body: {err}") from err
        if not isinstance(payload, dict):
            raise HubError(HTTPStatus.BAD_REQUEST, "The JSON body must be an object")
        return payload

    def _flag(self, name: str) -> bool:
        return self.query.get(name, ["false"])[-1].lower() in ("1", "true")

    # -- routing --------------------------------------------------------------------------------

    def _dispatch(self, method: str) -> _Response:
        segments = [unquote(segment) for segment in self.raw_segments]
        if segments[:1] == ["api"]:
            return self._dispatch_api(method, segments[1:])
        if "resolve" in segments[:4] and method in ("GET", "HEAD"):
            return self._route_resolve(segments)
        return self._unhandled(method)

    def _dispatch_api(self, method: str, segments: list[str]) -> _Response:
        route = (method, *segments[:2])
        if route == ("GET", "whoami-v2"):
            return self._route_whoami()
        if route == ("POST", "repos", "create"):
            return self._route_create_repo()
        if route == ("DELETE", "repos", "delete"):
            return self._route_delete_repo()
        if route == ("POST", "validate-yaml"):
            return _Response.json({"errors": [], "warnings": []})
        if segments[:1] == ["telemetry"]:
            return _Response.json({})
        if route == ("GET", "agent-harnesses"):
            return _Response.json({"error": "Not served by the test hub server"}, HTTPStatus.NOT_FOUND)
        if segments and segments[0] in _API_REPO_TYPES:
            return self._dispatch_repo(method, _API_REPO_TYPES[segments[0]], segments[1:])
        return self._unhandled(method)

    def _dispatch_repo(self, method: str, repo_type: str, segments: list[str]) -> _Response:
        if not segments:
            return self._unhandled(method)
        split_at = 2 if len(segments) >= 2 and segments[1] not in _REPO_SUBPATHS else 1
        repo_id, rest = "/".join(segments[:split_at]), segments[split_at:]
        action = rest[0] if rest else None
        if method == "GET" and action is None:
            return self._route_repo_info(repo_type, repo_id, DEFAULT_BRANCH)
        if method == "GET" and action == "revision" and len(rest) == 2:
            return self._route_repo_info(repo_type, repo_id, rest[1])
        if method == "GET" and action == "tree" and len(rest) >= 2:
            return self._route_tree(repo_type, repo_id, rest[1], "/".join(rest[2:]))
        if method == "POST" and action == "paths-info" and len(rest) == 2:
            return self._route_paths_info(repo_type, repo_id, rest[1])
        if method == "GET" and action == "refs" and len(rest) == 1:
            return self._route_refs(repo_type, repo_id)
        if method == "GET" and action == "commits" and len(rest) == 2:
            return self._route_commits(repo_type, repo_id, rest[1])
        if method in ("POST", "DELETE") and action == "branch" and len(rest) == 2:
            return self._route_branch(method, repo_type, repo_id, rest[1])
        if method == "POST" and action == "preupload" and len(rest) == 2:
            return self._route_preupload(repo_type, repo_id, rest[1])
        if method == "POST" and action == "commit" and len(rest) == 2:
            return self._route_commit(repo_type, repo_id, rest[1])
        if method == "POST" and action == "discussions" and len(rest) == 1:
            return self._route_open_pull_request(repo_type, repo_id)
        if method == "GET" and action == "discussions" and len(rest) == 2 and rest[1].isdigit():
            return self._route_pull_request(repo_type, repo_id, int(rest[1]))
        return self._unhandled(method)

    def _unhandled(self, method: str) -> _Response:
        message = f"Not implemented by the test hub server: {method} {self.path}"
        logger.warning("hub_server: %s", message)
        self.server.hub._record_unhandled(f"{method} {self.path}")
        response = _Response.json({"error": message}, HTTPStatus.NOT_IMPLEMENTED)
        response.headers["X-Error-Message"] = message
        return response

    # -- routes: account & repos ----------------------------------------------------------------

    def _route_whoami(self) -> _Response:
        if not self._authenticated(required=False):
            raise HubError(HTTPStatus.UNAUTHORIZED, INVALID_CREDENTIALS)
        return _Response.json(
            {
                "type": "user",
                "id": "0" * 24,
                "name": USER_NAME,
                "fullname": "Test User",
                "email": f"{USER_NAME}@example.com",
                "emailVerified": True,
                "isPro": False,
                "canPay": False,
                "avatarUrl": "",
                "orgs": [],
                "auth": {
                    "type": "access_token",
                    "accessToken": {"displayName": "test-token", "role": "write"},
                },
            }
        )

    def _repo_type_and_id(self, payload: Mapping[str, Any]) -> tuple[str, str]:
        name = payload.get("name")
        if not isinstance(name, str) or not name:
            raise HubError(HTTPStatus.BAD_REQUEST, "A repo 'name' is required")
        repo_type = payload.get("type") or "model"
        if repo_type not in _URL_PREFIXES:
            raise HubError(HTTPStatus.BAD_REQUEST, f"Unsupported repo type {repo_type!r}")
        namespace = payload.get("organization") or USER_NAME
        return repo_type, name if "/" in name else f"{namespace}/{name}"

    def _route_create_repo(self) -> _Response:
        self._authenticated(required=True)
        payload = self._json_body()
        repo_type, repo_id = self._repo_type_and_id(payload)
        private = payload.get("private") is True or payload.get("visibility") == "private"
        url = f"{self.server.hub.url}/{_URL_PREFIXES[repo_type]}{repo_id}"
        sdk = payload.get("sdk")
        if repo_type == "space" and sdk not in _SPACE_SDKS:
            raise HubError(HTTPStatus.BAD_REQUEST, f"A space needs an 'sdk' among {sorted(_SPACE_SDKS)}, got {sdk!r}")
        try:
            self.server.hub._state.create_repo(repo_type, repo_id, private=private, sdk=sdk)
        except HubError as err:
            err.extra["url"] = url  # the Hub's 409 names the existing repo: `exist_ok=True` reads it
            raise
        return _Response.json({"url": url, "name": repo_id, "id": repo_id})

    def _route_delete_repo(self) -> _Response:
        self._authenticated(required=True)
        repo_type, repo_id = self._repo_type_and_id(self._json_body())
        self.server.hub._state.delete_repo(repo_type, repo_id)
        return _Response.json({})

    def _route_repo_info(self, repo_type: str, repo_id: str, revision: str) -> _Response:
        repo = self._readable_repo(repo_type, repo_id)
        commit = self.server.hub._state.resolve(repo, revision)
        with_blobs = self._flag("blobs")
        siblings = []
        for path, content in sorted(commit.files.items()):
            sibling: dict[str, Any] = {"rfilename": path}
            if with_blobs:
                sibling |= {"size": len(content), "blobId": git_blob_oid(content)}
            siblings.append(sibling)
        info: dict[str, Any] = {
            "_id": repo.object_id,
            "id": repo_id,
            "author": repo_id.split("/")[0] if "/" in repo_id else None,
            "sha": commit.oid,
            "lastModified": _iso(commit.created_at),
            "createdAt": _iso(repo.created_at),
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
            "usedStorage": sum(len(content) for content in commit.files.values()),
        }
        if repo_type == "model":
            info |= {"modelId": repo_id, "spaces": []}
        elif repo_type == "space":
            info |= {"sdk": repo.sdk, "runtime": {"stage": "BUILDING"}}
        return _Response.json(info)

    # -- routes: listing ------------------------------------------------------------------------

    @staticmethod
    def _file_entry(path: str, content: bytes) -> dict[str, Any]:
        return {"type": "file", "oid": git_blob_oid(content), "size": len(content), "path": path}

    @staticmethod
    def _folder_entry(path: str, files: Mapping[str, bytes]) -> dict[str, Any]:
        prefix = path + "/"
        listing = "\n".join(f"{p} {git_blob_oid(c)}" for p, c in sorted(files.items()) if p.startswith(prefix))
        return {"type": "directory", "oid": git_blob_oid(listing.encode()), "size": 0, "path": path}

    @staticmethod
    def _folders(files: Iterable[str]) -> set[str]:
        return {path.rsplit("/", depth)[0] for path in files for depth in range(1, path.count("/") + 1)}

    def _route_tree(self, repo_type: str, repo_id: str, revision: str, path: str) -> _Response:
        repo = self._readable_repo(repo_type, repo_id)
        files = self.server.hub._state.resolve(repo, revision).files
        folders = self._folders(files)
        if path and path not in folders:
            raise HubError(HTTPStatus.NOT_FOUND, f"Folder not found: {path}", error_code="EntryNotFound")
        prefix = f"{path}/" if path else ""
        recursive = self._flag("recursive")

        def wanted(candidate: str) -> bool:
            return candidate.startswith(prefix) and (recursive or "/" not in candidate[len(prefix) :])

        entries = [self._folder_entry(p, files) for p in sorted(folders) if wanted(p)]
        entries += [self._file_entry(p, c) for p, c in sorted(files.items()) if wanted(p)]
        return _Response.json(entries)

    def _route_paths_info(self, repo_type: str, repo_id: str, revision: str) -> _Response:
        repo = self._readable_repo(repo_type, repo_id)
        files = self.server.hub._state.resolve(repo, revision).files
        if self.headers.get("Content-Type", "").startswith("application/json"):
            paths = self._json_body().get("paths", [])
        else:
            paths = parse_qs(self.body.decode()).get("paths", [])
        folders = self._folders(files)
        entries = []
        for path in paths:
            if path in files:
                entries.append(self._file_entry(path, files[path]))
            elif path.rstrip("/") in folders:
                entries.append(self._folder_entry(path.rstrip("/"), files))
        return _Response.json(entries)

    def _route_refs(self, repo_type: str, repo_id: str) -> _Response:
        repo = self._readable_repo(repo_type, repo_id)
        refs = sorted(dict(repo.branches).items())
        branches = [
            {"name": name, "ref": f"refs/heads/{name}", "targetCommit": oid}
            for name, oid in refs
            if not name.startswith("refs/")
        ]
        pull_requests = [
            {"name": name, "ref": name, "targetCommit": oid} for name, oid in refs if name.startswith("refs/pr/")
        ]
        return _Response.json({"branches": branches, "tags": [], "converts": [], "pullRequests": pull_requests})

    def _route_commits(self, repo_type: str, repo_id: str, revision: str) -> _Response:
        repo = self._readable_repo(repo_type, repo_id)
        commits = self.server.hub._state.history(repo, revision)
        return _Response.json(
            [
                {
                    "id": commit.oid,
                    "title": commit.summary,
                    "message": f"{commit.summary}\n\n{commit.description}" if commit.description else commit.summary,
                    "authors": [{"user": USER_NAME, "avatar": ""}],
                    "date": _iso(commit.created_at),
                }
                for commit in reversed(commits)
            ]
        )

    def _route_branch(self, method: str, repo_type: str, repo_id: str, branch: str) -> _Response:
        repo = self._writable_repo(repo_type, repo_id)
        state = self.server.hub._state
        if method == "DELETE":
            state.delete_branch(repo, branch)
        else:
            state.create_branch(repo, branch, self._json_body().get("startingPoint") or DEFAULT_BRANCH)
        return _Response.json({})

    # -- routes: upload -------------------------------------------------------------------------

    def _route_preupload(self, repo_type: str, repo_id: str, revision: str) -> _Response:
        repo = self._writable_repo(repo_type, repo_id)
        head = self.server.hub._state.resolve(repo, revision)
        requested = self._json_body().get("files", [])
        files = []
        for item in requested:
            path = item.get("path") if isinstance(item, dict) else None
            if not isinstance(path, str):
                raise HubError(HTTPStatus.BAD_REQUEST, f"Invalid preupload entry: {item!r}")
            existing = head.files.get(path)
            files.append(
                {
                    "path": path,
                    "uploadMode": "regular",
                    "shouldIgnore": False,
                    "oid": git_blob_oid(existing) if existing is not None else None,
                }
            )
        return _Response.json({"files": files, "commitOid": head.oid})

    def _route_commit(self, repo_type: str, repo_id: str, revision: str) -> _Response:
        hub = self.server.hub
        failure = hub._pop_commit_failure()
        if failure is not None:
            logger.info("hub_server: failing commit to %s with %d as requested", repo_id, failure.status)
            raise HubError(failure.status, failure.message)
        repo = self._writable_repo(repo_type, repo_id)
        header, operations = _parse_commit_payload(self.body)
        commit, pull_request = hub._state.commit(
            repo,
            revision,
            operations,
            summary=str(header["summary"]),
            description=str(header.get("description") or ""),
            parent_commit=header.get("parentCommit"),
            create_pr=self._flag("create_pr"),
        )
        repo_url = f"{hub.url}/{_URL_PREFIXES[repo_type]}{repo_id}"
        payload: dict[str, Any] = {
            "success": True,
            "commitOid": commit.oid,
            "commitUrl": f"{repo_url}/commit/{commit.oid}",
            "hookOutput": "",
        }
        if pull_request is not None:
            payload["pullRequestUrl"] = f"{repo_url}/discussions/{pull_request.num}"
        return _Response.json(payload)

    def _route_open_pull_request(self, repo_type: str, repo_id: str) -> _Response:
        repo = self._writable_repo(repo_type, repo_id)
        payload = self._json_body()
        if not payload.get("pullRequest"):
            raise HubError(HTTPStatus.NOT_IMPLEMENTED, "Only pull requests are supported, not discussions")
        pull_request = self.server.hub._state.open_pull_request(
            repo, title=str(payload.get("title") or ""), description=str(payload.get("description") or "")
        )
        url = f"{self.server.hub.url}/{_URL_PREFIXES[repo_type]}{repo_id}/discussions/{pull_request.num}"
        return _Response.json({"num": pull_request.num, "url": url, "pullRequest": True})

    def _route_pull_request(self, repo_type: str, repo_id: str, num: int) -> _Response:
        repo = self._readable_repo(repo_type, repo_id)
        pull_request = repo.pull_requests.get(num)
        if pull_request is None:
            raise HubError(HTTPStatus.NOT_FOUND, f"Discussion not found: {num}")
        author = {"name": USER_NAME}
        events = []
        for oid in list(pull_request.commits):
            commit = repo.commits[oid]
            events.append(
                {
                    "id": oid[:24],
                    "type": "commit",
                    "createdAt": _iso(commit.created_at),
                    "author": author,
                    "data": {"subject": commit.summary, "oid": oid},
                }
            )
        return _Response.json(
            {
                "num": num,
                "title": pull_request.title,
                "status": "draft",
                "isPullRequest": True,
                "author": author,
                "createdAt": _iso(pull_request.created_at),
                "repo": {"name": repo_id, "type": repo_type},
                "events": events,
                "changes": {"base": f"refs/heads/{pull_request.base}"},
                "filesWithConflicts": [],
                "diff": "",
            }
        )

    # -- routes: download -----------------------------------------------------------------------

    def _route_resolve(self, segments: list[str]) -> _Response:
        repo_type = "model"
        if segments[0] in ("datasets", "spaces"):
            repo_type, segments = _API_REPO_TYPES[segments[0]], segments[1:]
        index = segments.index("resolve") if "resolve" in segments[:3] else -1
        if index not in (1, 2) or len(segments) < index + 3:
            return self._unhandled(self.method)
        repo_id, revision, path = (
            "/".join(segments[:index]),
            segments[index + 1],
            "/".join(segments[index + 2 :]),
        )
        repo = self._readable_repo(repo_type, repo_id)
        commit = self.server.hub._state.resolve(repo, revision)
        if path not in commit.files:
            raise HubError(
                HTTPStatus.NOT_FOUND,
                f"Entry not found: {path}",
                error_code="EntryNotFound",
                headers={"X-Repo-Commit": commit.oid},
            )
        content = commit.files[path]
        headers = {
            "Content-Type": "application/octet-stream",
            "X-Repo-Commit": commit.oid,
            "ETag": f'"{git_blob_oid(content)}"',
            "Accept-Ranges": "bytes",
            "Content-Disposition": f'inline; filename="{quote(path.rsplit("/", 1)[-1])}"',  # latin-1 safe
        }
        requested_range = self.headers.get("Range")
        if requested_range is None:
            return _Response(HTTPStatus.OK, content, headers)
        start, end = self._parse_range(requested_range, len(content))
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(content)}"
        return _Response(HTTPStatus.PARTIAL_CONTENT, content[start:end], headers)

    @staticmethod
    def _parse_range(value: str, size: int) -> tuple[int, int]:
        """Parse a single ``bytes=a-b`` range into a half-open ``[start, end)`` interval."""
        match = _RANGE.fullmatch(value.strip())
        if match is None or match.groups() == ("", ""):
            raise HubError(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, f"Unsupported Range header {value!r}")
        first, last = match.groups()
        if first == "":  # suffix range: the last N bytes
            start, end = max(size - int(last), 0), size
        else:
            start, end = int(first), min(int(last) + 1, size) if last else size
        if start >= size or start >= end:
            raise HubError(
                HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
                f"Range {value!r} not satisfiable for {size} bytes",
                headers={"Content-Range": f"bytes */{size}"},
            )
        return start, end


class HubServer:
    """A Hub-compatible HTTP server on ``127.0.0.1:<free port>``, served from a daemon thread.

    Example::

        with HubServer() as server:
            os.environ["HF_ENDPOINT"] = server.url  # or use the ``hub_env`` pytest fixture
            ...
            assert server.repo_files("tester/my-model")["config.json"] == b"{}"

    Args:
        token: The bearer token accepted for authenticated requests (random if not given).
        gitattributes: Content of the ``.gitattributes`` file of the initial commit of new repos,
            or ``None`` to start repos with an empty initial commit.
    """

    user: ClassVar[str] = USER_NAME

    def __init__(self, token: str | None = None, *, gitattributes: bytes | None = DEFAULT_GITATTRIBUTES) -> None:
        self.token: str = token or f"hf_test_{secrets.token_hex(16)}"
        self._state = _HubState(gitattributes)
        self._hooks_lock = threading.Lock()
        self._commit_failure: _PendingFailure | None = None
        self._requests: list[RequestRecord] = []
        self._unhandled: list[str] = []
        self._connections: dict[socket.socket, threading.Thread] = {}  # open connection -> its thread
        self._httpd = _HubHTTPServer(self)
        host, port = self._httpd.server_address[:2]
        self.url: str = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="hub-test-server",
            daemon=True,
        )
        self._thread.start()
        self._stopped = False
        logger.info("hub_server: serving on %s", self.url)

    # -- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> HubServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop serving, close every open (keep-alive) connection and join all the server's threads."""
        if self._stopped:
            return
        self._stopped = True
        self._httpd.shutdown()
        with self._hooks_lock:
            connections = dict(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)
        for handler_thread in connections.values():
            handler_thread.join(timeout=10)
        self._httpd.server_close()
        self._thread.join()
        logger.info("hub_server: stopped %s", self.url)

    def reset(self) -> None:
        """Forget every repo, pending failure and recorded request (used between tests)."""
        self._state.clear()
        with self._hooks_lock:
            self._commit_failure = None
            self._requests.clear()
            self._unhandled.clear()

    # -- hooks for tests ------------------------------------------------------------------------

    def fail_next_commit(self, status: int = 500, *, count: int = 1, message: str | None = None) -> None:
        """Make the next ``count`` commit requests fail with ``status`` without changing anything.

        Note: ``create_commit``/``upload_file`` do not retry, but ``upload_folder`` (with ``hf_xet``
        installed) retries commits on 408/429/5xx with exponential backoff: use a 4xx status such as
        422, or a ``count`` above its retries, to make such an upload fail.
        """
        with self._hooks_lock:
            self._commit_failure = _PendingFailure(
                status=status, message=message or f"Commit failed on purpose (HTTP {status})", remaining=count
            )

    def repo_files(self, repo_id: str, revision: str = DEFAULT_BRANCH, *, repo_type: str = "model") -> dict[str, bytes]:
        """The files of ``repo_id`` at ``revision`` (branch or commit oid) as ``{path: content}``."""
        repo = self._state.get_repo(repo_type, repo_id)
        return dict(self._state.resolve(repo, revision).files)

    def commits(self, repo_id: str, revision: str = DEFAULT_BRANCH, *, repo_type: str = "model") -> list[Commit]:
        """The history of ``revision``, oldest first (``[0]`` is the repo's initial commit)."""
        return self._state.history(self._state.get_repo(repo_type, repo_id), revision)

    def branches(self, repo_id: str, *, repo_type: str = "model") -> dict[str, str]:
        """``{ref: head commit oid}`` of ``repo_id``: branch names, and ``refs/pr/<num>`` of pull requests."""
        return dict(self._state.get_repo(repo_type, repo_id).branches)

    def pull_requests(self, repo_id: str, *, repo_type: str = "model") -> list[PullRequest]:
        """The pull requests of ``repo_id`` (their files: ``repo_files(repo_id, pr.ref)``)."""
        repo = self._state.get_repo(repo_type, repo_id)
        return [repo.pull_requests[num] for num in sorted(repo.pull_requests)]

    def repos(self) -> list[tuple[str, str]]:
        """``(repo_type, repo_id)`` of every repo currently stored."""
        return self._state.keys()

    def has_repo(self, repo_id: str, *, repo_type: str = "model") -> bool:
        try:
            self._state.get_repo(repo_type, repo_id)
        except HubError:
            return False
        return True

    def create_repo(
        self,
        repo_id: str,
        files: Mapping[str, bytes] | None = None,
        *,
        repo_type: str = "model",
        private: bool = False,
        sdk: str | None = None,
    ) -> str:
        """Create ``repo_id`` without HTTP, optionally committing ``files``; return the head oid."""
        if repo_type == "space" and sdk is None:
            sdk = "gradio"
        repo = self._state.create_repo(repo_type, repo_id, private=private, sdk=sdk)
        if files:
            return self.commit_files(repo_id, files, repo_type=repo_type)
        return repo.branches[DEFAULT_BRANCH]

    def commit_files(
        self,
        repo_id: str,
        files: Mapping[str, bytes] | None = None,
        *,
        delete: Iterable[str] = (),
        message: str = "Commit from test",
        branch: str = DEFAULT_BRANCH,
        repo_type: str = "model",
    ) -> str:
        """Commit ``files`` (added/overwritten) and ``delete`` (removed) without HTTP; return the oid."""
        operations = [_Operation("file", _validate_path(path), content) for path, content in (files or {}).items()]
        operations += [_Operation("deletedFile", _validate_path(path)) for path in delete]
        repo = self._state.get_repo(repo_type, repo_id)
        return self._state.commit(repo, branch, operations, summary=message)[0].oid

    def request_log(self) -> list[RequestRecord]:
        """Every request answered since the last :meth:`reset`, in order."""
        with self._hooks_lock:
            return list(self._requests)

    @property
    def unhandled(self) -> list[str]:
        """``"METHOD /path"`` of every request that hit no route (answered with a 501)."""
        with self._hooks_lock:
            return list(self._unhandled)

    # -- internals used by the request handler --------------------------------------------------

    def _pop_commit_failure(self) -> _PendingFailure | None:
        with self._hooks_lock:
            failure = self._commit_failure
            if failure is None:
                return None
            failure.remaining -= 1
            if failure.remaining <= 0:
                self._commit_failure = None
            return failure

    def _record(self, record: RequestRecord) -> None:
        with self._hooks_lock:
            self._requests.append(record)

    def _record_unhandled(self, route: str) -> None:
        with self._hooks_lock:
            self._unhandled.append(route)

    def _register_connection(self, connection: socket.socket) -> None:
        with self._hooks_lock:
            self._connections[connection] = threading.current_thread()

    def _unregister_connection(self, connection: socket.socket) -> None:
        with self._hooks_lock:
            self._connections.pop(connection, None)
