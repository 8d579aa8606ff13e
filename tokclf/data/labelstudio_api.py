"""A small HTTP client for a Label Studio server: the calls the annotate -> train -> pre-annotate loop
makes, and nothing else.

    client = LabelStudioClient("http://localhost:8080", token_from_env())
    project = client.create_project("diseases", label_config)      # -> project id
    ids = client.import_tasks(project, [{"data": {"text": "..."}}, ...])
    client.create_prediction(ids[0], result=[...], score=0.93, model_version="run-2026-12-03")
    export = client.export(project)                               # Label Studio JSON, annotated tasks
    todo = client.tasks_without_predictions(project)

It talks to the REST API with httpx (already installed through huggingface_hub), so tokclf needs
neither the `label-studio` server package (whose pins clash with ours) nor `label-studio-sdk`.

The token: a legacy API token ("Authorization: Token ...") or a personal access token (a JWT
refresh token, exchanged at /api/token/refresh/ for a short-lived access token sent as "Bearer";
exchanged again when the server answers 401). It is read from `LABEL_STUDIO_API_KEY` (the SDK's
variable) unless given, kept only in memory, and never appears in a message, a repr or a file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from tokclf.core.errors import TokclfError

TOKEN_ENV = "LABEL_STUDIO_API_KEY"
URL_ENV = "LABEL_STUDIO_URL"
PAGE_SIZE = 100
TIMEOUT_S = 60.0


class LabelStudioError(TokclfError):
    """Label Studio could not be reached, refused the token, or rejected a request."""


class LabelStudioAuthError(LabelStudioError):
    """The server refused the token (401/403) or no token was given."""


def token_from_env(name: str = TOKEN_ENV) -> str:
    """The API token from an environment variable (stripped); a clear error when unset."""
    value = (os.environ.get(name) or "").strip()
    if not value:
        raise LabelStudioAuthError(
            f"no Label Studio token: the environment variable {name} is not set", where=name,
            fix=f"copy a token from Label Studio (Account & Settings -> Access Token) into {name} for the process "
                "that runs the loop (or name a Prefect Secret block in the flow's labelstudio_token_secret).", code="E2064",
        )
    return value


def _is_jwt(token: str) -> bool:
    # Personal access tokens are JWTs (three base64url parts); legacy tokens are 40 hex characters.
    return token.count(".") == 2


def annotated_tasks(export: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tasks of a JSON export that carry at least one annotation that was not cancelled."""
    return [t for t in export if any(not a.get("was_cancelled") for a in t.get("annotations") or [])]


class LabelStudioClient:
    """One Label Studio server, one token. Every method raises `LabelStudioError` (naming the URL
    and the server's own message) instead of an httpx exception."""

    def __init__(self, url: str, token: str, *, timeout: float = TIMEOUT_S) -> None:
        import httpx

        if not url or not url.startswith(("http://", "https://")):
            raise LabelStudioError(f"not a Label Studio URL: {url!r}", where="labelstudio_url",
                                   fix="give the server's address, e.g. http://localhost:8080.", code="E2065")
        if not token or not token.strip():
            raise LabelStudioAuthError("empty Label Studio token", where=url,
                                       fix=f"set {TOKEN_ENV} to a token from Account & Settings -> Access Token.", code="E2066")
        self.url = url.rstrip("/")
        self.__token = token.strip()
        self._http = httpx.Client(base_url=self.url, timeout=timeout)
        self._auth: str | None = None

    def __repr__(self) -> str:  # never the token
        return f"LabelStudioClient({self.url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LabelStudioClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- transport ------------------------------------------------------------------------------

    def _authorization(self, refresh: bool = False) -> str:
        if self._auth is not None and not refresh:
            return self._auth
        if not _is_jwt(self.__token):
            self._auth = f"Token {self.__token}"
            return self._auth
        response = self._send("POST", "/api/token/refresh/", json={"refresh": self.__token}, auth=None)
        if response.status_code != 200 or "access" not in (body := response.json()):
            raise LabelStudioAuthError(
                f"Label Studio refused the personal access token (HTTP {response.status_code} from /api/token/refresh/)",
                where=self.url, fix="create a new personal access token (Account & Settings) and set it again.", code="E2067",
            )
        self._auth = f"Bearer {body['access']}"
        return self._auth

    def _send(self, method: str, path: str, *, auth: str | None, **kw: Any) -> Any:
        import httpx

        headers = {"Authorization": auth} if auth else {}
        try:
            return self._http.request(method, path, headers=headers, **kw)
        except httpx.HTTPError as exc:
            # The exception text names the URL, never the headers.
            raise LabelStudioError(
                f"cannot reach Label Studio ({type(exc).__name__}: {exc})", where=f"{self.url}{path}",
                fix="check that the server runs and the URL (scheme, host, port) is right.", code="E2068",
            ) from None

    def request(self, method: str, path: str, *, ok: tuple[int, ...] = (200, 201), **kw: Any) -> Any:
        """One API call; the decoded JSON body (None for an empty one)."""
        response = self._send(method, path, auth=self._authorization(), **kw)
        if response.status_code == 401 and _is_jwt(self.__token):  # the short-lived access token expired
            response = self._send(method, path, auth=self._authorization(refresh=True), **kw)
        if response.status_code in (401, 403):
            raise LabelStudioAuthError(
                f"Label Studio refused the token (HTTP {response.status_code}: {_detail(response)})",
                where=f"{self.url}{path}",
                fix=f"set {TOKEN_ENV} to a valid token of a user of this project (Account & Settings -> Access Token); "
                    "a legacy token needs legacy tokens enabled for the organization.", code="E2069",
            )
        if response.status_code == 404:
            raise LabelStudioError(f"not found (HTTP 404: {_detail(response)})", where=f"{self.url}{path}",
                                   fix="check the project / task id (the number in the project's URL).", code="E2070")
        if response.status_code not in ok:
            raise LabelStudioError(f"Label Studio answered HTTP {response.status_code}: {_detail(response)}",
                                   where=f"{method} {self.url}{path}",
                                   fix="see the server's message; check the labeling config and the payload.", code="E2071")
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise LabelStudioError(f"Label Studio answered with something that is not JSON: {response.text[:200]!r}",
                                   where=f"{self.url}{path}", fix="check the URL points at Label Studio itself.", code="E2072") from None

    # -- the calls of the loop ------------------------------------------------------------------

    def whoami(self) -> dict[str, Any]:
        """The token's user (a cheap call that checks URL and token)."""
        return self.request("GET", "/api/current-user/whoami")

    def create_project(self, title: str, label_config: str, **fields: Any) -> int:
        """A new project with this labeling config; its id."""
        body = self.request("POST", "/api/projects", json={"title": title, "label_config": label_config, **fields})
        return int(body["id"])

    def project(self, project: int) -> dict[str, Any]:
        return self.request("GET", f"/api/projects/{int(project)}")

    def import_tasks(self, project: int, tasks: list[dict[str, Any]]) -> list[int]:
        """Import tasks (Label Studio JSON: `data`, optionally `predictions[]` as pre-annotations and
        `annotations[]`); the new tasks' ids, in order."""
        if not tasks:
            return []
        body = self.request("POST", f"/api/projects/{int(project)}/import", params={"return_task_ids": "true"},
                            json=tasks)
        ids = [int(i) for i in body.get("task_ids") or []]
        if len(ids) != len(tasks):
            raise LabelStudioError(f"imported {body.get('task_count')} of {len(tasks)} tasks", where=self.url,
                                   fix="check every task has a `data` object with the config's text field.", code="E2073")
        return ids

    def create_prediction(self, task: int, *, result: list[dict[str, Any]], model_version: str,
                          score: float | None = None) -> int:
        """A prediction (pre-annotation) on an existing task; its id."""
        payload: dict[str, Any] = {"task": int(task), "result": result, "model_version": model_version}
        if score is not None:
            payload["score"] = float(score)
        return int(self.request("POST", "/api/predictions", json=payload)["id"])

    def predictions(self, task: int) -> list[dict[str, Any]]:
        return list(self.request("GET", "/api/predictions", params={"task": int(task)}) or [])

    def create_annotation(self, task: int, result: list[dict[str, Any]], **fields: Any) -> int:
        """A submitted annotation on a task, as the token's user (what an annotator's Submit does)."""
        return int(self.request("POST", f"/api/tasks/{int(task)}/annotations", json={"result": result, **fields})["id"])

    def tasks(self, project: int) -> list[dict[str, Any]]:
        """Every task of a project (id, data, total_annotations, total_predictions, ...), page by page."""
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            body = self.request("GET", "/api/tasks", params={"project": int(project), "page": page,
                                                              "page_size": PAGE_SIZE})
            batch = body.get("tasks") or []
            out.extend(batch)
            if not batch or len(out) >= int(body.get("total", len(out))):
                return out
            page += 1

    def tasks_without_predictions(self, project: int) -> list[dict[str, Any]]:
        """Tasks that have no prediction yet (the ones fresh pre-annotations go to)."""
        return [t for t in self.tasks(project) if not t.get("total_predictions")]

    def export(self, project: int, *, all_tasks: bool = False) -> list[dict[str, Any]]:
        """The project's JSON export (Label Studio's own format, what `data_format: labelstudio`
        reads): annotated tasks only, unless all_tasks."""
        params = {"exportType": "JSON", "download_all_tasks": "true" if all_tasks else "false"}
        body = self.request("GET", f"/api/projects/{int(project)}/export", params=params)
        if not isinstance(body, list):
            raise LabelStudioError("the export is not a list of tasks", where=f"{self.url}/api/projects/{project}/export",
                                   fix="check the URL points at Label Studio and the project id is right.", code="E2074")
        return body


def _detail(response: Any) -> str:
    """The server's own message, short (Label Studio puts it under detail / validation_errors)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, dict):
        parts = [str(body[k]) for k in ("detail", "validation_errors") if body.get(k)]
        if parts:
            return "; ".join(parts)[:500]
    return str(body)[:300]
