"""How `tokclf.publishing.hub.hub_errors` classifies what huggingface_hub raises, on the library's own
exception objects: responses turned into errors by `hf_raise_for_status` (as every HfApi call does),
the HTTP client's transport errors, and hf_hub_download's LocalEntryNotFoundError raised from a
failed request. No network: the end-to-end cases run against tests/hubfake.py in test_publish.py."""

from __future__ import annotations

import pytest

from tokclf.publishing.hub import (
    HubAuthError,
    HubError,
    HubTransientError,
    _http_library,
    hub_errors,
    is_retryable,
)

TOKEN = "hf_TOKCLF" "errorsDummy5Rt7Yu9Io1Pa3"  # split: the joined token is not in this file
REPO = "alice/tiny-ner"
URL = f"https://hub.example/api/models/{REPO}/commit/main"


def answered(status: int, message: str = "") -> Exception:
    """The exception huggingface_hub raises for a response with this status."""
    from huggingface_hub.utils import hf_raise_for_status

    http = _http_library()
    response = http.Response(status, request=http.Request("POST", URL),
                             headers={"X-Error-Message": message} if message else {})
    with pytest.raises(Exception) as caught:
        hf_raise_for_status(response)
    return caught.value


def translated(exc: BaseException) -> HubError:
    with pytest.raises(HubError) as caught, hub_errors(TOKEN, REPO, "uploading the model folder"):
        raise exc
    error = caught.value
    assert error.__cause__ is None and error.__suppress_context__  # no chained request (headers) kept
    return error


@pytest.mark.parametrize(("status", "kind", "fragment"), [
    (401, HubAuthError, "rejected the token (401 Unauthorized)"),
    (403, HubAuthError, f"may not write to {REPO} (403 Forbidden)"),
    (429, HubTransientError, "the Hub answered 429"),
    (500, HubTransientError, "the Hub answered 500"),
    (503, HubTransientError, "the Hub answered 503"),
    (400, HubError, "the Hub refused the request (400)"),
    (404, HubError, "the Hub refused the request (404)"),
])
def test_answered_requests_by_status(status, kind, fragment):
    error = translated(answered(status, "the server's own reason"))
    assert type(error) is kind and fragment in str(error)
    assert "the server's own reason" in str(error)  # HfHubHTTPError.server_message, not the raw text
    assert is_retryable(error) is (kind is HubTransientError)


def test_download_without_cache_is_classified_by_the_failed_request():
    from huggingface_hub.errors import LocalEntryNotFoundError

    for cause, kind in ((answered(502), HubTransientError), (answered(403), HubAuthError)):
        try:
            raise LocalEntryNotFoundError("cannot find the requested files in the local cache") from cause
        except LocalEntryNotFoundError as exc:
            error = translated(exc)
            assert type(error) is kind
    try:
        raise LocalEntryNotFoundError("cannot find the requested files") from _http_library().ConnectError("refused")
    except LocalEntryNotFoundError as exc:
        error = translated(exc)
        assert type(error) is HubTransientError and "cannot reach the Hub (ConnectError)" in str(error)


@pytest.mark.parametrize("make", [
    lambda http: http.ConnectError("[Errno 111] Connection refused"),
    lambda http: http.ReadTimeout("timed out"),
    lambda http: http.RemoteProtocolError("peer closed connection"),
    lambda http: ConnectionRefusedError(111, "Connection refused"),
    lambda http: TimeoutError("timed out"),
])
def test_no_answer_is_transient(make):
    error = translated(make(_http_library()))
    assert type(error) is HubTransientError and "cannot reach the Hub" in str(error)


def test_other_failures_are_not_retried():
    from huggingface_hub.errors import OfflineModeIsEnabled

    offline = translated(OfflineModeIsEnabled("offline"))
    assert type(offline) is HubError and "offline mode is on" in str(offline)
    metadata = translated(ValueError("Invalid metadata in README.md: model-index"))
    assert type(metadata) is HubError and "model card's metadata" in str(metadata)
    other = translated(RuntimeError("something else"))
    assert type(other) is HubError and "RuntimeError: something else" in str(other) and not is_retryable(other)


def test_token_redacted_from_the_servers_message():
    error = translated(answered(401, f"token {TOKEN} is invalid"))
    assert TOKEN not in str(error) and "hf_***" in str(error)
