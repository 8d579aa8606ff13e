"""Prefect tasks: each wraps one tokclf.pipeline.stages entry point; the logic stays in the library.

Caching (results persisted, by default under <workdir>/.tokclf-cache/prefect-results: see
`results_storage`):
- ingest, validate and tokenize are cached on *content*: the cache key is the stage's own key
  (tokclf.pipeline.keys.ingest_key / validate_key / tokenize_key: hashes of the source bytes, of the saved
  datasets, of the tokenizer files, and the parameters the stage reads) plus its output paths. A
  path whose content changed gives a new key, so a cached result is never stale the way an INPUTS
  policy over path strings would be. A Hub dataset id has no local bytes: ingest is not cached.
  The flows also refresh a cached result when the output folder no longer carries that key.
- train, evaluate and publish are never cached (a rerun means: do it again).

Retries: publish retries 3 times (exponential backoff 10 s, 20 s, 40 s with jitter), only on
transient Hub errors (tasks.hub.retry_transient_hub_errors). train runs the training in a child
process (tokclf.pipeline.train_process), so a crash of the training (killed by the out-of-memory
killer or `kill -9`, a traceback) is a failure of the task, not of the flow run; it retries twice
on those (`retry_crashed_training`: an exception that is not a TokclfError), each retry resuming
from the run's newest checkpoint (tokclf.training.checkpoints), so it costs the steps since then,
not the run. A tokclf error or an interruption (SIGTERM) of the training is not retried. A killed
flow process cannot retry itself (its training child dies with it): running the flow (or the
deployment) again resumes the same way. The other stages are deterministic, so a retry would fail
the same way.

The Hub token of a Prefect Secret block (`hub_token_secret`) is read inside the publish task
(tasks.hub), so it is never a task parameter, a result or a log line.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from tokclf.core.params import TokenClassificationParams
from tokclf.pipeline import keys, retrain, stages
from tasks.hub import retry_transient_hub_errors, with_secret_token

RESULTS_DIR = ".tokclf-cache/prefect-results"
PUBLISH_RETRIES = 3
PUBLISH_BACKOFF_S = 10
TRAIN_RETRIES = 2


def results_storage(workdir: str | Path) -> Path:
    """Where task results (and so cache records) are persisted for a project root."""
    return Path(workdir).expanduser().resolve() / RESULTS_DIR


def _with_outputs(key: str | None, *paths: Any) -> str | None:
    if key is None:
        return None
    where = "\0".join(str(Path(p).expanduser().resolve()) for p in paths)
    return f"{key}-{hashlib.sha256(where.encode()).hexdigest()[:12]}"


def ingest_cache_key(context: Any, parameters: dict[str, Any]) -> str | None:
    return _with_outputs(keys.ingest_key(parameters["params"]), parameters["raw_dir"], parameters["out_dir"])


def validate_cache_key(context: Any, parameters: dict[str, Any]) -> str | None:
    key = keys.validate_key(parameters["params"], parameters["data_dir"])
    return _with_outputs(key, parameters["out_dir"], parameters["report_path"])


def tokenize_cache_key(context: Any, parameters: dict[str, Any]) -> str | None:
    return _with_outputs(keys.tokenize_key(parameters["params"], parameters["data_dir"]), parameters["out_dir"])


@task(name="ingest", cache_key_fn=ingest_cache_key, persist_result=True, retries=0)
def ingest_task(params: TokenClassificationParams, raw_dir: str, out_dir: str,
                source_name: str | list[str] | None = None) -> dict[str, Any]:
    """Source -> raw copy + normalised dataset (tokclf.pipeline.stages.ingest)."""
    return stages.ingest(params, raw_dir=raw_dir, out_dir=out_dir, source_name=source_name)


@task(name="validate", cache_key_fn=validate_cache_key, persist_result=True, retries=0)
def validate_task(params: TokenClassificationParams, data_dir: str, out_dir: str, report_path: str) -> dict[str, Any]:
    """Report; hard errors raise ValidationFailed and stop the flow (tokclf.pipeline.stages.validate)."""
    return stages.validate(params, data_dir=data_dir, out_dir=out_dir, report_path=report_path)


@task(name="tokenize", cache_key_fn=tokenize_cache_key, persist_result=True, retries=0)
def tokenize_task(params: TokenClassificationParams, data_dir: str, out_dir: str) -> dict[str, Any]:
    """Aligned, windowed features of every split (tokclf.pipeline.stages.tokenize)."""
    return stages.tokenize(params, data_dir=data_dir, out_dir=out_dir)


def _run_logger() -> Any:
    """The task run's logger (lines reach the Prefect UI); tokclf's own outside a run (`.fn()`)."""
    import logging

    from prefect import get_run_logger
    from prefect.exceptions import MissingContextError

    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("tokclf")


def retry_crashed_training(task: Any, task_run: Any, state: Any) -> bool:
    """`retry_condition_fn` of the train task: retry a crash of the training (it resumes from its
    checkpoints), never a TokclfError (bad data, a refused resume, a signal: the same again)."""
    from tokclf.core.errors import TokclfError

    try:
        exc = state.result(raise_on_failure=False)
    except Exception:  # noqa: BLE001 - an unreadable state: do not guess
        return False
    return isinstance(exc, Exception) and not isinstance(exc, TokclfError)


@task(name="train", cache_policy=NO_CACHE, retries=TRAIN_RETRIES, retry_delay_seconds=5,
      retry_condition_fn=retry_crashed_training)
def train_task(params: TokenClassificationParams, data_dir: str, features_dir: str, report_path: str,
               out_dir: str) -> dict[str, Any]:
    """Fine-tune in a child process (`tokclf stage train`, tokclf.pipeline.train_process); writes the
    model folder. A retry resumes from the newest checkpoint (resume=auto)."""
    from prefect.runtime import task_run

    from tokclf.pipeline.train_process import train_in_child

    logger = _run_logger()
    attempt = int(task_run.run_count or 1)
    if attempt > 1:
        logger.info("train: attempt %d, resuming from the newest checkpoint of the run folder", attempt)
    return train_in_child(params, data_dir=data_dir, features_dir=features_dir, report_path=report_path,
                          out_dir=out_dir, resume="auto" if attempt > 1 else None, on_line=logger.info)


@task(name="evaluate", cache_policy=NO_CACHE, retries=0)
def evaluate_task(params: TokenClassificationParams, model_dir: str, data_dir: str, features_dir: str,
                  metrics_path: str, details_path: str, plots_dir: str) -> dict[str, Any]:
    """metrics.json, per-type scores, plot data and PNGs (tokclf.pipeline.stages.evaluate)."""
    return stages.evaluate(params, model_dir=model_dir, data_dir=data_dir, features_dir=features_dir,
                           metrics_path=metrics_path, details_path=details_path, plots_dir=plots_dir)


@task(
    name="publish", cache_policy=NO_CACHE, retries=PUBLISH_RETRIES,
    retry_delay_seconds=exponential_backoff(backoff_factor=PUBLISH_BACKOFF_S), retry_jitter_factor=0.2,
    retry_condition_fn=retry_transient_hub_errors,
)
def publish_task(params: TokenClassificationParams, model_dir: str, out_path: str,
                 hub_token_secret: str | None = None) -> dict[str, Any]:
    """Hub push when push_to_hub, else a recorded no-op (tokclf.pipeline.stages.publish); retried
    with backoff. hub_token_secret: name of a Prefect Secret block holding the token."""
    return stages.publish(with_secret_token(params, hub_token_secret), model_dir=model_dir, out_path=out_path)


@task(name="dvc-record", cache_policy=NO_CACHE, retries=0)
def dvc_record_task(root: str, push: bool = False) -> dict[str, Any]:
    """`dvc commit -f` (and `dvc push`) of what the flow wrote (tokclf.pipeline.retrain.dvc_record)."""
    return retrain.dvc_record(root, push=push)


__all__ = [
    "ingest_task", "validate_task", "tokenize_task", "train_task", "evaluate_task", "publish_task",
    "dvc_record_task", "results_storage", "ingest_cache_key", "validate_cache_key", "tokenize_cache_key",
]
