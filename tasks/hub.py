"""Prefect's side of publishing: the Hub token from a Prefect Secret block, and the retry condition
of the publish task. The library (`tokclf.publishing.hub`) knows neither: it takes a token and
raises `HubTransientError` for what a retry may cure."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from tokclf.core.errors import TokclfError
from tokclf.core.params import TokenClassificationParams
from tokclf.publishing.hub import HubAuthError, is_retryable


def load_secret(block_name: str, *, where: str = "hub_token_secret", error: type[TokclfError] = HubAuthError,
                otherwise: str = "set HF_TOKEN for the worker") -> str:
    """The value of a Prefect Secret block (needs a reachable Prefect API). Never logged.
    where / error / otherwise: the parameter that named the block, the error to raise, and the
    alternative the message offers (the Label Studio token reuses this with its own)."""
    from prefect.blocks.system import Secret

    try:
        value = Secret.load(block_name).get()
    except Exception as exc:  # noqa: BLE001 - Prefect raises several kinds (missing block, no API)
        raise error(
            f"cannot read the Prefect Secret block {block_name!r}: {type(exc).__name__}",
            where=where,
            fix=f"create it (`prefect block create secret` or Secret(value=...).save(name)) and check the Prefect API "
                f"is reachable, or {otherwise}.",
        ) from None
    if not isinstance(value, str) or not value.strip():
        raise error(f"the Prefect Secret block {block_name!r} is empty", where=where,
                    fix="store the token (a string) in it.")
    return value.strip()


def with_secret_token(params: TokenClassificationParams, hub_token_secret: str | None) -> TokenClassificationParams:
    """`params` with the token of the named Secret block (in memory only: the copy is passed to the
    library inside a task, never returned, persisted or logged). Unchanged when no block is named,
    when the params already hold a token, or when nothing is pushed."""
    if not hub_token_secret or not params.push_to_hub or params.token is not None:
        return params
    return params.model_copy(update={"token": SecretStr(load_secret(hub_token_secret))})


def retry_transient_hub_errors(task: Any, task_run: Any, state: Any) -> bool:
    """`retry_condition_fn` of the publish task: retry transient Hub errors (5xx, 429, connection,
    failed verification) only; a refused token or a bad request fails at once."""
    try:
        exc = state.result(raise_on_failure=False)
    except Exception:  # noqa: BLE001 - a state we cannot read is not a transient Hub error
        return False
    return is_retryable(exc)
