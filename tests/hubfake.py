"""A local stand-in for the Hugging Face Hub: the subset of its HTTP API that tokclf's publishing
uses through huggingface_hub (the only fake in the project).

Point huggingface_hub at it with `HF_ENDPOINT=<hub.url>` (read at import, so in a fresh process)
or `HfApi(endpoint=hub.url)`, and `HF_HUB_DISABLE_XET=1` (the documented switch: with hf_xet
installed, uploads otherwise go to a Xet CAS server, which this fake does not speak).

Endpoints, as huggingface_hub 1.x/2.x calls them (hf_api.py, _commit_api.py, lfs.py, file_download.py):
    GET  /api/whoami-v2                                   whoami()
    POST /api/repos/create                                create_repo()  (409 when it exists)
    GET  /api/models/{repo}[/revision/{rev}]              repo_info()/model_info()
    GET  /api/models/{repo}/tree/{rev}[/{path}]           list_repo_tree()/list_repo_files()
    POST /api/validate-yaml                               README.md metadata check before a commit
    POST /api/models/{repo}/preupload/{rev}               upload mode per file ("regular" | "lfs")
    POST /{repo}.git/info/lfs/objects/batch               LFS batch API (basic transfer)
    PUT  /_lfs_upload/{id}                                the "presigned" upload URL (no auth, like S3)
    POST /{repo}.git/info/lfs/objects/verify              LFS verify action
    POST /api/models/{repo}/commit/{rev}                  ndjson commit (header, file, lfsFile, deletedFile, deletedFolder)
    HEAD/GET /{repo}/resolve/{rev}/{path}                 hf_hub_download()

Auth as on the Hub: `Authorization: Bearer <token>`; an unknown token gets 401 with the Hub's
"Invalid credentials in Authorization header"; a private repo is invisible (404 RepoNotFound) to
anyone but its namespace's members; writing to another namespace gets 403. Errors carry the Hub's
headers (X-Error-Code, X-Error-Message) so huggingface_hub raises the same exception classes.

What it stores stays in memory (repos, commits, LFS objects); tokens are never stored or logged
(requests are recorded with the user name only). `fail(...)` makes matching requests answer an
error status (a 5xx on demand).
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

# The .gitattributes a new Hub repo starts with (abridged to the patterns that matter here).
GITATTRIBUTES = b"""*.7z filter=lfs diff=lfs merge=lfs -text
*.bin filter=lfs diff=lfs merge=lfs -text
*.ckpt filter=lfs diff=lfs merge=lfs -text
*.h5 filter=lfs diff=lfs merge=lfs -text
*.msgpack filter=lfs diff=lfs merge=lfs -text
*.onnx filter=lfs diff=lfs merge=lfs -text
*.pt filter=lfs diff=lfs merge=lfs -text
*.pth filter=lfs diff=lfs merge=lfs -text
*.safetensors filter=lfs diff=lfs merge=lfs -text
*.zip filter=lfs diff=lfs merge=lfs -text
*tfevents* filter=lfs diff=lfs merge=lfs -text
"""
LFS_PATTERNS = [line.split()[0].decode() for line in GITATTRIBUTES.splitlines() if line.strip()]
REGULAR_MAX_SIZE = 10 * 1024 * 1024  # larger files must go through LFS


def git_blob_oid(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclass
class User:
    name: str
    orgs: list[str] = field(default_factory=list)
    role: str = "write"  # "write" | "read"


@dataclass
class StoredFile:
    content: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    def tree_entry(self, path: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": "file", "path": path, "size": len(self.content)}
        if self.lfs:
            pointer = lfs_pointer(self.sha256, len(self.content))
            entry["oid"] = git_blob_oid(pointer)
            entry["lfs"] = {"oid": self.sha256, "size": len(self.content), "pointerSize": len(pointer)}
        else:
            entry["oid"] = git_blob_oid(self.content)
        return entry


@dataclass
class Commit:
    oid: str
    summary: str
    description: str
    files: dict[str, StoredFile]
    author: str


@dataclass
class Repo:
    repo_id: str
    private: bool
    commits: list[Commit] = field(default_factory=list)

    @property
    def head(self) -> Commit:
        return self.commits[-1]

    def at(self, revision: str) -> Commit | None:
        if revision in ("main", "refs/heads/main"):
            return self.head
        return next((c for c in self.commits if c.oid == revision), None)


@dataclass
class Failure:
    method: str
    pattern: str
    status: int
    times: int


class FakeHub:
    """Run with `with FakeHub(users) as hub:` (or start()/stop()); `hub.url` is the endpoint."""

    def __init__(self, users: dict[str, User] | None = None) -> None:
        self._users = dict(users or {})
        self.repos: dict[str, Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self._pending_uploads: dict[str, tuple[str, int]] = {}
        self.requests: list[dict[str, Any]] = []
        self._failures: list[Failure] = []
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> FakeHub:
        hub = self

        class Handler(_Handler):
            fake = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake hub first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- test controls -------------------------------------------------------------------------------
    def fail(self, method: str, pattern: str, status: int = 503, times: int = 1) -> None:
        """The next `times` requests whose method matches and whose path matches the regex `pattern`
        answer `status` (e.g. 503) instead of being served."""
        with self._lock:
            self._failures.append(Failure(method.upper(), pattern, status, times))

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """path -> content of the repo at a revision (what a clone would hold)."""
        with self._lock:
            commit = self.repos[repo_id].at(revision)
            assert commit is not None
            return {path: f.content for path, f in commit.files.items()}

    def count(self, method: str | None = None, path_regex: str = ".*", user: str | None = None) -> int:
        with self._lock:
            return sum(
                1 for r in self.requests
                if (method is None or r["method"] == method) and re.search(path_regex, r["path"])
                and (user is None or r["user"] == user)
            )

    # --- internals -----------------------------------------------------------------------------------
    def _user(self, headers: Any) -> tuple[User | None, bool]:
        """(user, credentials_given). An invalid token is (None, True)."""
        auth = headers.get("Authorization") or ""
        if not auth.lower().startswith("bearer "):
            return None, False
        return self._users.get(auth[7:].strip()), True

    def _take_failure(self, method: str, path: str) -> int | None:
        with self._lock:
            for f in self._failures:
                if f.times > 0 and f.method in (method, "*") and re.search(f.pattern, path):
                    f.times -= 1
                    return f.status
        return None


class HubResponse(Exception):
    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def _error(status: int, message: str, code: str | None = None) -> HubResponse:
    headers = {"X-Error-Message": message}
    if code:
        headers["X-Error-Code"] = code
    return HubResponse(status, {"error": message}, headers)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeHub
    protocol_version = "HTTP/1.1"
    server_version = "FakeHub/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # quiet: nothing (and certainly no header) is printed

    # --- plumbing -----------------------------------------------------------------------------------
    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None, head: bool = False) -> None:
        if isinstance(body, (bytes, bytearray)):
            data, ctype = bytes(body), "application/octet-stream"
        elif body is None:
            data, ctype = b"", "text/plain"
        else:
            data, ctype = json.dumps(body).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def _dispatch(self, method: str) -> None:
        fake = self.fake
        split = urlsplit(self.path)
        path = unquote(split.path)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        body = self._body() if method in ("POST", "PUT") else b""
        user, given = fake._user(self.headers)
        record = {"method": method, "path": path, "user": user.name if user else ("<invalid>" if given else None),
                  "status": None, "time": time.time()}
        try:
            status = fake._take_failure(method, path)
            if status is not None:
                raise HubResponse(status, {"error": "Internal Error - We're working hard to fix this as soon as possible!"})
            if given and user is None and not path.startswith("/_lfs_upload/"):
                raise _error(401, "Invalid credentials in Authorization header")
            status, out, headers = self._route(method, path, query, body, user)
        except HubResponse as r:
            status, out, headers = r.status, r.body, r.headers
        record["status"] = status
        with fake._lock:
            fake.requests.append(record)
        self._send(status, out, headers, head=method == "HEAD")

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    # --- routes -------------------------------------------------------------------------------------
    REPO = r"(?P<repo>[^/]+/[^/]+)"

    def _route(self, method: str, path: str, query: dict[str, str], body: bytes, user: User | None):
        m = re.fullmatch
        if method == "GET" and path == "/api/whoami-v2":
            return self._whoami(user)
        if method == "POST" and path == "/api/repos/create":
            return self._create_repo(json.loads(body or b"{}"), user)
        if method == "POST" and path == "/api/validate-yaml":
            return self._validate_yaml(json.loads(body or b"{}"))
        if method == "GET" and (g := m(rf"/api/models/{self.REPO}/tree/(?P<rev>[^/]+)(?:/(?P<sub>.*))?", path)):
            return self._tree(g["repo"], g["rev"], g["sub"] or "", query, user)
        if method == "GET" and (g := m(rf"/api/models/{self.REPO}(?:/revision/(?P<rev>[^/]+))?", path)):
            return self._info(g["repo"], g["rev"] or "main", user)
        if method == "POST" and (g := m(rf"/api/models/{self.REPO}/preupload/(?P<rev>[^/]+)", path)):
            return self._preupload(g["repo"], g["rev"], json.loads(body or b"{}"), user)
        if method == "POST" and (g := m(rf"/api/models/{self.REPO}/commit/(?P<rev>[^/]+)", path)):
            return self._commit(g["repo"], g["rev"], body, user)
        if method == "POST" and (g := m(rf"/{self.REPO}\.git/info/lfs/objects/batch", path)):
            return self._lfs_batch(g["repo"], json.loads(body or b"{}"), user)
        if method == "POST" and (g := m(rf"/{self.REPO}\.git/info/lfs/objects/verify", path)):
            return self._lfs_verify(g["repo"], json.loads(body or b"{}"), user)
        if method == "PUT" and (g := m(r"/_lfs_upload/(?P<id>[0-9a-f]+)", path)):
            return self._lfs_put(g["id"], body)
        if method in ("GET", "HEAD") and (g := m(rf"/{self.REPO}/resolve/(?P<rev>[^/]+)/(?P<file>.+)", path)):
            return self._resolve(g["repo"], g["rev"], g["file"], user)
        raise _error(404, f"no route for {method} {path} in the fake Hub")

    # --- access control -----------------------------------------------------------------------------
    @staticmethod
    def _member(user: User | None, namespace: str) -> bool:
        return user is not None and (user.name == namespace or namespace in user.orgs)

    def _readable(self, repo_id: str, user: User | None) -> Repo:
        repo = self.fake.repos.get(repo_id)
        if repo is None or (repo.private and not self._member(user, repo_id.split("/")[0])):
            raise _error(404, "Repository not found", "RepoNotFound")
        return repo

    def _writable(self, repo_id: str, user: User | None) -> Repo:
        if user is None:
            raise _error(401, "You must be authenticated to write")
        repo = self._readable(repo_id, user)
        if not self._member(user, repo_id.split("/")[0]) or user.role != "write":
            raise _error(403, f"You don't have the rights to write to {repo_id}")
        return repo

    # --- handlers -----------------------------------------------------------------------------------
    def _whoami(self, user: User | None):
        if user is None:
            raise _error(401, "Invalid credentials in Authorization header")
        return 200, {
            "type": "user", "id": uuid.uuid5(uuid.NAMESPACE_DNS, user.name).hex[:24], "name": user.name,
            "fullname": user.name, "orgs": [{"type": "org", "name": o, "roleInOrg": "write"} for o in user.orgs],
            "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": user.role}},
        }, {}

    def _create_repo(self, payload: dict[str, Any], user: User | None):
        if user is None:
            raise _error(401, "You must be authenticated to create a repo")
        if payload.get("type", "model") not in (None, "model"):
            raise _error(400, "the fake Hub only holds model repos")
        namespace = payload.get("organization") or user.name
        repo_id = f"{namespace}/{payload['name']}"
        if not self._member(user, namespace) or user.role != "write":
            raise _error(403, f'You don\'t have the rights to create a model under the namespace "{namespace}"')
        url = f"{self.fake.url}/{repo_id}"
        with self.fake._lock:
            if repo_id in self.fake.repos:
                raise HubResponse(409, {"error": "You already created this model repo", "url": url},
                                  {"X-Error-Message": "You already created this model repo"})
            private = payload.get("visibility", "private" if payload.get("private") else "public") == "private"
            repo = Repo(repo_id, private)
            repo.commits.append(Commit(uuid.uuid4().hex + "00000000", "initial commit", "",
                                       {".gitattributes": StoredFile(GITATTRIBUTES, lfs=False)}, user.name))
            self.fake.repos[repo_id] = repo
        return 200, {"url": url, "name": repo_id, "id": uuid.uuid4().hex[:24]}, {}

    def _validate_yaml(self, payload: dict[str, Any]):
        content = payload.get("content") or ""
        errors = []
        match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", content, flags=re.S)
        if match:
            try:
                meta = yaml.safe_load(match.group(1))
            except yaml.YAMLError as exc:
                meta, errors = None, [f"YAML: {exc}"]
            if meta is not None and not isinstance(meta, dict):
                errors.append("metadata must be a mapping")
            elif isinstance(meta, dict):
                errors += _model_index_errors(meta.get("model-index"))
                for key in ("library_name", "pipeline_tag"):
                    if key in meta and not isinstance(meta[key], str):
                        errors.append(f'"{key}" must be a string')
        if errors:
            raise HubResponse(400, {"errors": [{"message": e} for e in errors], "warnings": []})
        return 200, {"errors": [], "warnings": []}, {}

    def _tree(self, repo_id: str, rev: str, sub: str, query: dict[str, str], user: User | None):
        repo = self._readable(repo_id, user)
        commit = repo.at(rev)
        if commit is None:
            raise _error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        recursive = query.get("recursive", "false").lower() in ("true", "1")
        prefix = sub.strip("/") + "/" if sub else ""
        entries: dict[str, dict[str, Any]] = {}
        for path, stored in sorted(commit.files.items()):
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix):]
            parts = rest.split("/")
            for i in range(1, len(parts)):
                folder = prefix + "/".join(parts[:i])
                if recursive or i == 1:
                    entries.setdefault(folder, {"type": "directory", "path": folder, "oid": git_blob_oid(folder.encode()), "size": 0})
            if recursive or len(parts) == 1:
                entries[path] = stored.tree_entry(path)
        if sub and not entries:
            raise _error(404, f"{sub} does not exist", "EntryNotFound")
        return 200, list(entries.values()), {}

    def _info(self, repo_id: str, rev: str, user: User | None):
        repo = self._readable(repo_id, user)
        commit = repo.at(rev)
        if commit is None:
            raise _error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return 200, {"_id": uuid.uuid5(uuid.NAMESPACE_URL, repo_id).hex[:24], "id": repo_id, "modelId": repo_id,
                     "sha": commit.oid, "private": repo.private, "disabled": False, "gated": False,
                     "siblings": [{"rfilename": p} for p in sorted(commit.files)], "tags": []}, {}

    def _preupload(self, repo_id: str, rev: str, payload: dict[str, Any], user: User | None):
        repo = self._writable(repo_id, user)
        commit = repo.at(unquote(rev))
        if commit is None:
            raise _error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        files = []
        for f in payload.get("files", []):
            sample = base64.b64decode(f.get("sample", ""))
            path = f["path"]
            is_lfs = (int(f.get("size", 0)) >= REGULAR_MAX_SIZE or b"\0" in sample
                      or any(fnmatch.fnmatch(path.rsplit("/", 1)[-1], pat) for pat in LFS_PATTERNS))
            existing = commit.files.get(path)
            oid = None
            if existing is not None:
                oid = existing.sha256 if existing.lfs else git_blob_oid(existing.content)
            files.append({"path": path, "uploadMode": "lfs" if is_lfs else "regular", "shouldIgnore": False, "oid": oid})
        return 200, {"files": files, "commitOid": commit.oid}, {}

    def _lfs_batch(self, repo_id: str, payload: dict[str, Any], user: User | None):
        self._writable(repo_id, user)
        if payload.get("operation") != "upload" or "basic" not in (payload.get("transfers") or ["basic"]):
            raise _error(400, "the fake Hub only accepts basic LFS uploads")
        objects = []
        for obj in payload.get("objects", []):
            oid, size = obj["oid"], int(obj["size"])
            entry: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if oid not in self.fake.lfs_objects:
                upload_id = uuid.uuid4().hex
                with self.fake._lock:
                    self.fake._pending_uploads[upload_id] = (oid, size)
                entry["actions"] = {
                    "upload": {"href": f"{self.fake.url}/_lfs_upload/{upload_id}", "expires_at": "2100-01-01T00:00:00Z"},
                    "verify": {"href": f"{self.fake.url}/{repo_id}.git/info/lfs/objects/verify"},
                }
            objects.append(entry)
        return 200, {"transfer": "basic", "objects": objects}, {}

    def _lfs_put(self, upload_id: str, body: bytes):
        with self.fake._lock:
            pending = self.fake._pending_uploads.pop(upload_id, None)
        if pending is None:
            raise HubResponse(403, b"<Error><Code>AccessDenied</Code></Error>")
        oid, size = pending
        if len(body) != size or hashlib.sha256(body).hexdigest() != oid:
            raise HubResponse(400, b"<Error><Code>BadDigest</Code></Error>")
        with self.fake._lock:
            self.fake.lfs_objects[oid] = body
        return 200, None, {"ETag": f'"{hashlib.md5(body).hexdigest()}"'}  # noqa: S324 - S3's ETag is an MD5

    def _lfs_verify(self, repo_id: str, payload: dict[str, Any], user: User | None):
        self._writable(repo_id, user)
        stored = self.fake.lfs_objects.get(payload.get("oid", ""))
        if stored is None or len(stored) != int(payload.get("size", -1)):
            raise _error(404, "LFS object not found")
        return 200, {}, {}

    def _commit(self, repo_id: str, rev: str, body: bytes, user: User | None):
        repo = self._writable(repo_id, user)
        rev = unquote(rev)
        base = repo.at(rev)
        if base is None:
            raise _error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubResponse(400, {"error": "the commit payload must start with a header line"})
        header = lines[0]["value"]
        if header.get("parentCommit") and header["parentCommit"] != repo.head.oid:
            raise HubResponse(412, {"error": "A commit has happened since. Please refresh and try again."})
        files = dict(base.files)
        for item in lines[1:]:
            key, value = item.get("key"), item.get("value") or {}
            path = value.get("path", "")
            if key == "file":
                if value.get("encoding") != "base64":
                    raise HubResponse(400, {"error": f"unsupported encoding for {path}"})
                files[path] = StoredFile(base64.b64decode(value["content"]), lfs=False)
            elif key == "lfsFile":
                content = self.fake.lfs_objects.get(value.get("oid", ""))
                if content is None:
                    raise HubResponse(422, {"error": f"Your push was rejected because an LFS pointer pointed to a file "
                                                     f"that does not exist ({path})"})
                files[path] = StoredFile(content, lfs=True)
            elif key == "deletedFile":
                if path not in files:
                    raise _error(404, "A file with this name doesn't exist", "EntryNotFound")
                del files[path]
            elif key == "deletedFolder":
                prefix = path.rstrip("/") + "/"
                for p in [p for p in files if p.startswith(prefix)]:
                    del files[p]
            else:
                raise HubResponse(400, {"error": f"unknown commit operation {key!r}"})
        oid = hashlib.sha1(json.dumps([header, sorted(files), time.time(), uuid.uuid4().hex]).encode()).hexdigest()
        with self.fake._lock:
            repo.commits.append(Commit(oid, header.get("summary", ""), header.get("description", ""), files, user.name))
        return 200, {"success": True, "commitOid": oid, "commitUrl": f"{self.fake.url}/{repo_id}/commit/{oid}",
                     "pullRequestUrl": None}, {}

    def _resolve(self, repo_id: str, rev: str, file: str, user: User | None):
        repo = self._readable(repo_id, user)
        commit = repo.at(unquote(rev))
        if commit is None:
            raise _error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        stored = commit.files.get(file)
        headers = {"X-Repo-Commit": commit.oid}
        if stored is None:
            raise HubResponse(404, {"error": "Entry not found"}, {**headers, "X-Error-Code": "EntryNotFound",
                                                                  "X-Error-Message": "Entry not found"})
        if stored.lfs:
            headers.update({"ETag": f'"{stored.sha256}"', "X-Linked-Etag": f'"{stored.sha256}"',
                            "X-Linked-Size": str(len(stored.content))})
        else:
            headers["ETag"] = f'"{git_blob_oid(stored.content)}"'
        return 200, stored.content, headers


def _model_index_errors(model_index: Any) -> list[str]:
    """The Hub's model-index schema, as far as tokclf's cards use it."""
    if model_index is None:
        return []
    if not isinstance(model_index, list):
        return ['"model-index" must be an array']
    errors = []
    for entry in model_index:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            errors.append('"model-index[].name" is required')
            continue
        for result in entry.get("results") or []:
            task, dataset = (result or {}).get("task") or {}, (result or {}).get("dataset") or {}
            if not isinstance(task.get("type"), str):
                errors.append('"model-index[].results[].task.type" is required')
            if not isinstance(dataset.get("type"), str) or not isinstance(dataset.get("name"), str):
                errors.append('"model-index[].results[].dataset" needs "type" and "name"')
            for metric in (result or {}).get("metrics") or []:
                if not isinstance(metric, dict) or not isinstance(metric.get("type"), str) or "value" not in metric:
                    errors.append('"model-index[].results[].metrics[]" needs "type" and "value"')
    return errors
