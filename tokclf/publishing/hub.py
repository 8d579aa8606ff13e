"""Publish a model folder to the Hugging Face Hub, behind a quality gate, without leaking the token.

    publish(model_dir, repo_id=..., token=...)   -> PublishResult(status="published" | "skipped", ...)
    publish_from_params(model_dir, params)       -> the same, with repo id, token and options from params
    check_publish_ready(params)                  -> fail before training when a push could not work

Steps (all through huggingface_hub's HfApi, whose endpoint is `HF_ENDPOINT` or `endpoint=`):
1. the local folder is checked (a model, metrics.json, no token inside any file);
2. quality gate (champion/challenger): metrics.json of the model now in the repo is read (its
   README's model-index when there is no metrics.json); the new model is published only when its
   validation F1 >= the published F1 - tolerance, unless `force`; otherwise status "skipped" with
   the reason "not published: F1 x < y ...";
3. `create_repo(private=..., exist_ok=True)` and one `upload_folder` commit (remote files the
   folder no longer has are deleted in the same commit, .gitattributes kept);
4. the upload is verified by reading the repo's file list back at the new commit and comparing
   every file's git/LFS hash with the local file (`verify_repo_checksums`).

Errors: `HubAuthError` (401/403, a missing token: not retryable), `HubTransientError` (5xx, 429,
connection errors, a failed verification: retryable, e.g. by the pipeline's publish task retries),
`HubError` (other refusals: bad request, offline mode). The local folder is never modified. The
token is never logged, never written, and removed from every error message.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tokclf.core.errors import TokclfError

log = logging.getLogger("tokclf")

# Files a folder must hold to be published (a model a stranger can load and a record of its scores).
REQUIRED_FILES = ("config.json", "metrics.json", "README.md")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
REDACTED = "hf_***"
# F1 comparisons: metrics.json floats round-trip exactly; this only absorbs float noise.
_EPS = 1e-12


# --- errors -------------------------------------------------------------------------------------------
class HubError(TokclfError):
    """The Hub refused the push for a reason a retry will not change (bad request, offline mode)."""

    retryable = False


class HubAuthError(HubError):
    """401/403 or no token: the token is missing, invalid, read-only or not allowed in the namespace."""


class HubTransientError(HubError):
    """5xx, 429, connection errors or a failed upload verification: worth retrying with backoff."""

    retryable = True


def is_retryable(exc: BaseException | None) -> bool:
    """True for errors a retry may cure (HubTransientError)."""
    return isinstance(exc, HubTransientError)




# --- result -------------------------------------------------------------------------------------------
@dataclass
class PublishResult:
    status: str  # "published" | "skipped"
    reason: str
    repo_id: str
    commit: str | None = None
    url: str | None = None
    files: list[str] = field(default_factory=list)
    private: bool | None = None
    new_f1: float | None = None
    published_f1: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def published(self) -> bool:
        return self.status == "published"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- token --------------------------------------------------------------------------------------------
def redact(text: str, token: str | None) -> str:
    """`text` with every occurrence of the token replaced (also its URL-quoted form)."""
    if not token or not text:
        return text
    from urllib.parse import quote

    for form in {token, quote(token, safe="")}:
        text = text.replace(form, REDACTED)
    return text



def resolve_token(explicit: str | None = None) -> str | None:
    """The Hub token, first found: `explicit` (--token / params.token; the Prefect flows pass a
    Secret block's value here), the HF_TOKEN environment variable, then huggingface_hub's saved
    login (`hf auth login`)."""
    if explicit and explicit.strip():
        return explicit.strip()
    env = os.environ.get("HF_TOKEN", "").strip()
    if env:
        return env
    try:
        from huggingface_hub import get_token

        return get_token() or None
    except Exception:  # noqa: BLE001 - a broken token file is the same as no token here
        return None


def _require_token(token: str | None) -> str:
    if not token:
        raise HubAuthError(
            "no Hugging Face token: pushing needs a token with write access",
            where="token",
            fix="pass --token, set HF_TOKEN or run `hf auth login` (Prefect flows: the hub_token_secret parameter).", code="E5001",
        )
    return token


# --- repo id and environment --------------------------------------------------------------------------
def hub_repo_id(params: Any) -> str:
    """`username/<last part of project_name>` (the spec's push target)."""
    from tokclf.core.params import hub_repo_id_problem

    if not params.username:
        raise HubError("push_to_hub needs username (the Hub user or organisation to push to)", where="username",
                       fix="set username (or --username).", code="E5002")
    name = Path(params.project_name).expanduser().name
    problem = hub_repo_id_problem(params.username, name)
    if problem:
        raise HubError(problem, where="username/project_name", code="E5003")
    return f"{params.username}/{name}"


def check_online() -> None:
    """huggingface_hub refuses every request in offline mode (read once, at import)."""
    from huggingface_hub import constants

    if constants.is_offline_mode():
        raise HubError(
            "offline mode is on (HF_HUB_OFFLINE=1 or TRANSFORMERS_OFFLINE=1; scripts/env.sh sets it by default), "
            "so the Hub cannot be reached",
            where="push_to_hub",
            fix="run with HF_HUB_OFFLINE=0 TRANSFORMERS_OFFLINE=0 (e.g. `HF_HUB_OFFLINE=0 TRANSFORMERS_OFFLINE=0 "
                "tokclf ...`), or drop push_to_hub and publish later with `tokclf publish`.", code="E5004",
        )


def _api(token: str, endpoint: str | None) -> Any:
    from huggingface_hub import HfApi

    from tokclf import __version__

    return HfApi(endpoint=endpoint, token=token, library_name="tokclf", library_version=__version__)


# --- error translation --------------------------------------------------------------------------------
def _http_library() -> Any:
    """The HTTP client huggingface_hub is built on (httpx under huggingface_hub 1.x, httpx2 under 2.x):
    `huggingface_hub.errors.HTTPError` is that library's base error, so its exceptions are the ones
    huggingface_hub lets through."""
    import importlib

    from huggingface_hub.errors import HTTPError

    return importlib.import_module(HTTPError.__module__.partition(".")[0])


def _failure(exc: BaseException) -> BaseException:
    """The failed request behind `exc`: `exc` itself, except that hf_hub_download raises
    LocalEntryNotFoundError *from* the failed request (a 5xx, a refused connection) when it has no
    cached copy to fall back on; then its cause."""
    from huggingface_hub.errors import LocalEntryNotFoundError

    if isinstance(exc, LocalEntryNotFoundError) and exc.__cause__ is not None:
        return exc.__cause__
    return exc


def _status_of(failure: BaseException) -> int | None:
    """The HTTP status of an answered request: huggingface_hub's HfHubHTTPError (every error status
    it raises on) or the HTTP library's own HTTPStatusError."""
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(failure, (HfHubHTTPError, _http_library().HTTPStatusError)):
        status = getattr(failure.response, "status_code", None)
        return status if isinstance(status, int) else None
    return None


def _is_connection_error(failure: BaseException) -> bool:
    """No answer at all: the HTTP library's TransportError (connect/read/write errors, timeouts,
    proxy and protocol errors) or the OS's own connection and timeout errors."""
    return isinstance(failure, (_http_library().TransportError, ConnectionError, TimeoutError))


def _server_message(exc: BaseException, failure: BaseException) -> str:
    """The Hub's own reason when it gave one (HfHubHTTPError.server_message), else the exception's
    message, on one line and capped."""
    from huggingface_hub.errors import HfHubHTTPError

    server = failure.server_message if isinstance(failure, HfHubHTTPError) else None
    text = " ".join((server if server and server.strip() else str(exc)).split())
    return text[:400] + ("..." if len(text) > 400 else "")


@contextlib.contextmanager
def hub_errors(token: str | None, repo_id: str, action: str) -> Iterator[None]:
    """Translate what huggingface_hub/httpx raise into HubAuthError / HubTransientError / HubError,
    with the token redacted and no chained exception (which would carry the request headers)."""
    try:
        yield
    except HubError as exc:
        # ours: re-raise with the message redacted (a defensive no-op in practice)
        if token and token in str(exc):
            raise type(exc)(redact(exc.what, token), where=exc.where, fix=exc.fix) from None
        raise
    except Exception as exc:  # noqa: BLE001 - every other failure is translated below
        from huggingface_hub.errors import OfflineModeIsEnabled

        failure = _failure(exc)
        message = redact(_server_message(exc, failure), token)
        status = _status_of(failure)
        namespace = repo_id.split("/")[0]
        if isinstance(failure, OfflineModeIsEnabled):
            error: HubError = HubError(f"{action}: offline mode is on", where=repo_id,
                                       fix="run with HF_HUB_OFFLINE=0 TRANSFORMERS_OFFLINE=0.", code="E5005")
        elif status == 401:
            error = HubAuthError(
                f"{action}: the Hub rejected the token (401 Unauthorized): {message}",
                where=repo_id,
                fix="check the token (--token, HF_TOKEN or `hf auth login`): it must be a "
                    "valid Hugging Face access token with write access.", code="E5006",
            )
        elif status == 403:
            error = HubAuthError(
                f"{action}: the token may not write to {repo_id} (403 Forbidden): {message}",
                where=repo_id,
                fix=f"use a token with write permission for {namespace!r} (a write token, or a fine-grained token "
                    f"allowed to write there), or push to a namespace you belong to (--username).", code="E5007",
            )
        elif status is not None and (status >= 500 or status == 429):
            error = HubTransientError(f"{action}: the Hub answered {status}: {message}", where=repo_id,
                                      fix="retry later (`tokclf publish --retries N`, or the pipeline's publish task retries); the local model folder is unchanged.", code="E5008")
        elif status is not None:
            error = HubError(f"{action}: the Hub refused the request ({status}): {message}", where=repo_id,
                             fix="see the Hub's message above.", code="E5009")
        elif _is_connection_error(failure):
            error = HubTransientError(f"{action}: cannot reach the Hub ({type(failure).__name__}): {message}",
                                      where=repo_id, fix="check the network / HF_ENDPOINT and retry.", code="E5010")
        elif isinstance(exc, ValueError) and "metadata" in str(exc).lower():
            error = HubError(f"{action}: the Hub rejected the model card's metadata: {message}", where=repo_id,
                             fix="fix the README.md front matter (see the message).", code="E5011")
        else:
            error = HubError(f"{action}: {type(exc).__name__}: {message}", where=repo_id, code="E5012")
        raise error from None


# --- local folder -------------------------------------------------------------------------------------
def local_files(model_dir: Path) -> list[Path]:
    """Files upload_folder sends (everything but .git and huggingface_hub's .cache metadata)."""
    from huggingface_hub.utils import filter_repo_objects
    from huggingface_hub.utils._paths import DEFAULT_IGNORE_PATTERNS

    files = {p.relative_to(model_dir).as_posix(): p for p in sorted(model_dir.rglob("*")) if p.is_file()}
    return [files[k] for k in filter_repo_objects(list(files), ignore_patterns=DEFAULT_IGNORE_PATTERNS)]


def check_model_dir(model_dir: Path) -> None:
    if not model_dir.is_dir():
        raise HubError(f"model folder not found: {model_dir}", fix="pass the folder a `tokclf train` run wrote.", code="E5013")
    missing = [n for n in REQUIRED_FILES if not (model_dir / n).is_file()]
    if not any((model_dir / n).is_file() for n in WEIGHT_FILES):
        missing.append("model.safetensors")
    if missing:
        raise HubError(f"{model_dir} is not a complete tokclf model folder: missing {', '.join(missing)}",
                       where=str(model_dir), fix="publish the folder a finished `tokclf train` run wrote.", code="E5014")


def scan_for_token(model_dir: Path, token: str) -> None:
    """Refuse to upload a folder where the token appears in any file (last line of defence)."""
    needle = token.encode("utf-8")
    chunk = 1 << 20
    for path in local_files(model_dir):
        with open(path, "rb") as fh:
            tail = b""
            while block := fh.read(chunk):
                if needle in tail + block:
                    raise HubError(
                        f"the Hub token appears in {path.relative_to(model_dir)}; refusing to upload it",
                        where=str(model_dir), fix="remove the token from that file (and revoke the token).", code="E5015",
                    )
                tail = block[-(len(needle) - 1):] if len(needle) > 1 else b""


def read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def validation_f1(metrics: dict[str, Any]) -> float | None:
    value = (metrics.get("validation") or {}).get("f1")
    return float(value) if isinstance(value, (int, float)) else None


def _validation_sha(training_params: dict[str, Any], metrics: dict[str, Any]) -> str | None:
    split = (metrics.get("validation") or {}).get("split")
    return ((training_params.get("data") or {}).get(split) or {}).get("sha256") if split else None


# --- champion (the model now in the repo) -------------------------------------------------------------
@dataclass
class Champion:
    exists: bool
    f1: float | None = None
    source: str | None = None  # "metrics.json" | "README.md model-index"
    validation_sha256: str | None = None
    commit: str | None = None


def _f1_from_card(readme: str) -> float | None:
    from tokclf.publishing.card import card_metadata

    meta = card_metadata(readme)
    candidates: list[tuple[int, float]] = []
    for entry in meta.get("model-index") or []:
        for result in (entry or {}).get("results") or []:
            split = str(((result or {}).get("dataset") or {}).get("split") or "")
            for metric in (result or {}).get("metrics") or []:
                if str((metric or {}).get("type", "")).lower() in ("f1", "overall_f1") and isinstance(metric.get("value"), (int, float)):
                    rank = 0 if split.lower() in ("validation", "valid", "dev", "val") else 1
                    candidates.append((rank, float(metric["value"])))
    return min(candidates)[1] if candidates else None


def read_published(api: Any, repo_id: str) -> Champion:
    """The validation F1 of the model now in `repo_id` (exists=False when there is no such repo)."""
    import tempfile

    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    try:
        # model_info (one GET, no built-in retries: retrying is the caller's policy) lists the files
        info = api.model_info(repo_id)
    except (RepositoryNotFoundError, RevisionNotFoundError):
        return Champion(exists=False)
    files = {s.rfilename for s in (info.siblings or [])}
    if not files & {"metrics.json", "README.md"}:
        return Champion(exists=True)
    with tempfile.TemporaryDirectory(prefix="tokclf-champion-") as tmp:
        def fetch(name: str) -> Path | None:
            if name not in files:
                return None
            return Path(api.hf_hub_download(repo_id, name, cache_dir=tmp))

        metrics_path = fetch("metrics.json")
        if metrics_path is not None:
            metrics = read_json(metrics_path)
            params_path = fetch("training_params.json")
            sha = _validation_sha(read_json(params_path), metrics) if params_path else None
            f1 = validation_f1(metrics)
            if f1 is not None:
                return Champion(exists=True, f1=f1, source="metrics.json", validation_sha256=sha)
        readme = fetch("README.md")
        if readme is not None:
            f1 = _f1_from_card(readme.read_text(encoding="utf-8", errors="replace"))
            if f1 is not None:
                return Champion(exists=True, f1=f1, source="README.md model-index")
    return Champion(exists=True)


# --- the gate -----------------------------------------------------------------------------------------
@dataclass
class GateDecision:
    publish: bool
    reason: str


def gate(new_f1: float | None, published_f1: float | None, *, tolerance: float = 0.0, force: bool = False,
         repo_exists: bool = True) -> GateDecision:
    """Champion/challenger: publish when new F1 >= published F1 - tolerance (F1 on the 0-1 scale)."""
    if tolerance < 0:
        raise ValueError("tolerance must be >= 0")
    if not repo_exists:
        return GateDecision(True, "new repo: nothing published before")
    if published_f1 is None:
        return GateDecision(True, "the published model has no validation F1 to compare with")
    if new_f1 is None:
        if force:
            return GateDecision(True, f"forced: the new model has no validation F1 (published F1 {published_f1:.4f})")
        return GateDecision(False, f"not published: the new model has no validation F1, the published one has "
                                   f"{published_f1:.4f} (train with a validation split, or force the push)")
    floor = published_f1 - tolerance
    basis = (f"(published validation F1 {published_f1:.4f} - tolerance {tolerance:g})" if tolerance
             else "(the published model's validation F1)")
    if new_f1 + _EPS >= floor:
        return GateDecision(True, f"F1 {new_f1:.4f} >= {floor:.4f} {basis}")
    if force:
        return GateDecision(True, f"forced: F1 {new_f1:.4f} < {floor:.4f} {basis}")
    return GateDecision(False, f"not published: F1 {new_f1:.4f} < {floor:.4f} {basis}")


# --- publish ------------------------------------------------------------------------------------------
def publish(
    model_dir: str | Path,
    *,
    repo_id: str,
    token: str | None,
    private: bool = True,
    tolerance: float = 0.0,
    force: bool = False,
    endpoint: str | None = None,
    commit_message: str | None = None,
    retries: int = 0,
    backoff_s: float = 2.0,
) -> PublishResult:
    """Push `model_dir` to `repo_id` if it passes the quality gate; see the module docstring.

    `retries` > 0 retries HubTransientError in-process with exponential backoff (for the CLI);
    leave it at 0 inside an orchestrator's task whose own retries do the same.
    """
    attempt = 0
    while True:
        try:
            return _publish_once(Path(model_dir).expanduser().resolve(), repo_id=repo_id, token=token,
                                 private=private, tolerance=tolerance, force=force, endpoint=endpoint,
                                 commit_message=commit_message)
        except HubTransientError as exc:
            if attempt >= retries:
                raise
            wait = backoff_s * (2 ** attempt)
            attempt += 1
            log.warning("publish to %s failed (%s); retry %d/%d in %.0fs", repo_id, exc.what, attempt, retries, wait)
            time.sleep(wait)


def _publish_once(model_dir: Path, *, repo_id: str, token: str | None, private: bool, tolerance: float,
                  force: bool, endpoint: str | None, commit_message: str | None) -> PublishResult:
    token = _require_token(token)
    check_model_dir(model_dir)
    check_online()
    scan_for_token(model_dir, token)
    metrics = read_json(model_dir / "metrics.json")
    new_f1 = validation_f1(metrics)
    api = _api(token, endpoint)
    notes: list[str] = []

    with hub_errors(token, repo_id, "reading the published model"):
        champion = read_published(api, repo_id)
    decision = gate(new_f1, champion.f1, tolerance=tolerance, force=force, repo_exists=champion.exists)
    new_sha = _validation_sha(read_json(model_dir / "training_params.json"), metrics)
    if champion.f1 is not None and champion.validation_sha256 and new_sha and champion.validation_sha256 != new_sha:
        notes.append("the published model was scored on different validation data (sha256 differs): "
                     "the F1 comparison is between different test sets")
    if champion.source == "README.md model-index":
        notes.append("published F1 read from the repo's README model-index (no metrics.json there)")
    if not decision.publish:
        log.warning("%s: %s", repo_id, decision.reason)
        return PublishResult(status="skipped", reason=decision.reason, repo_id=repo_id, new_f1=new_f1,
                             published_f1=champion.f1, notes=notes)

    message = commit_message or (
        f"tokclf: validation F1 {new_f1:.4f}" if new_f1 is not None else "tokclf: upload model"
    )
    log.info("publishing %s to %s (%s; %s)", model_dir, repo_id, "private" if private else "public", decision.reason)
    with hub_errors(token, repo_id, "creating the repo"):
        repo_url = api.create_repo(repo_id, private=private, exist_ok=True)
    with hub_errors(token, repo_id, "uploading the model folder"):
        info = api.upload_folder(
            repo_id=repo_id, folder_path=str(model_dir), commit_message=message,
            commit_description=decision.reason, delete_patterns="*",
        )
    commit = getattr(info, "oid", None)
    with hub_errors(token, repo_id, "verifying the upload"):
        check = api.verify_repo_checksums(repo_id, local_dir=str(model_dir), revision=commit)
    uploaded = sorted(p.relative_to(model_dir).as_posix() for p in local_files(model_dir))
    problems = []
    if check.extra_paths:
        problems.append("missing in the repo: " + ", ".join(check.extra_paths[:10]))
    if check.mismatches:
        problems.append("content differs: " + ", ".join(str(getattr(m, "path", m)) for m in check.mismatches[:10]))
    if problems:
        raise HubTransientError(f"the upload to {repo_id} did not verify ({'; '.join(problems)})", where=repo_id,
                                fix="retry the push; the local model folder is unchanged.", code="E5016")
    log.info("published %s at commit %s (%d files verified)", repo_id, commit, check.checked_count)
    return PublishResult(
        status="published", reason=decision.reason, repo_id=repo_id, commit=commit,
        url=str(repo_url) if repo_url is not None else None, files=uploaded, private=private,
        new_f1=new_f1, published_f1=champion.f1, notes=notes,
    )


# --- from params (training runs, the flow) ------------------------------------------------------------
def check_publish_ready(params: Any, *, verify_token: bool = True, endpoint: str | None = None) -> None:
    """Everything that would make the push fail, checked before training starts: repo id, offline
    mode, a token, and (verify_token) that the Hub accepts it and it may write to the namespace."""
    if not params.push_to_hub:
        return
    repo_id = hub_repo_id(params)
    check_online()
    token = _require_token(resolve_token(params.token_value()))
    if not verify_token:
        return
    namespace = repo_id.split("/")[0]
    with hub_errors(token, repo_id, "checking the token"):
        who = _api(token, endpoint).whoami()
    names = {who.get("name")} | {o.get("name") for o in who.get("orgs") or [] if isinstance(o, dict)}
    access = ((who.get("auth") or {}).get("accessToken") or {})
    if access.get("role") == "read":
        raise HubAuthError(f"the token is read-only; pushing to {repo_id} needs write access", where="token",
                           fix="create a token with the write role (or a fine-grained one that may write there).", code="E5017")
    if namespace not in names:
        raise HubAuthError(
            f"the token belongs to {who.get('name')!r}, who is not {namespace!r} nor a member of it",
            where="username", fix="set username to your user or one of your organisations, or use that account's token.", code="E5018",
        )


def publish_from_params(
    model_dir: str | Path, params: Any, *, endpoint: str | None = None, retries: int = 0,
    token: str | None = None,
) -> PublishResult:
    """Publish a finished run as `params` say: repo `username/<project_name>`, private=hub_private,
    tolerance=publish_tolerance, force=force_publish; token from `token`, params.token, HF_TOKEN or
    the saved login (first found)."""
    if not params.push_to_hub:
        return PublishResult(status="skipped", reason="push_to_hub is off", repo_id="")
    repo_id = hub_repo_id(params)
    resolved = resolve_token(token or params.token_value())
    return publish(
        model_dir, repo_id=repo_id, token=resolved, private=params.hub_private,
        tolerance=params.publish_tolerance, force=params.force_publish, endpoint=endpoint, retries=retries,
    )
