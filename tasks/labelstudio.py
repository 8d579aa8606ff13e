"""Prefect tasks of the annotation loop (flows/annotation.py): pull a Label Studio export, push
pre-annotations, record a successful loop run. The logic is in tokclf.pipeline.annotation_loop and
tokclf.inference.preannotate.

The Label Studio token is read inside each task, from the environment variable named by
`token_env` (default LABEL_STUDIO_API_KEY) or, when `token_secret` names one, from a Prefect Secret
block: task parameters, results and logs hold the variable's or the block's name, never the token.
None of these tasks is cached (the server's content is what they read) or retried (a refused token
or a bad project id would fail the same way again).
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.hub import load_secret
from tokclf.core.params import TokenClassificationParams
from tokclf.data.labelstudio_api import TOKEN_ENV, LabelStudioAuthError, LabelStudioClient, token_from_env
from tokclf.pipeline import annotation_loop
from tokclf.pipeline.paths import PipelinePaths


def labelstudio_client(url: str, token_env: str = TOKEN_ENV, token_secret: str | None = None) -> LabelStudioClient:
    """A client with the token of the Secret block `token_secret`, else of the variable `token_env`."""
    if token_secret:
        token = load_secret(token_secret, where="labelstudio_token_secret", error=LabelStudioAuthError,
                            otherwise=f"set {token_env} for the worker")
    else:
        token = token_from_env(token_env)
    return LabelStudioClient(url, token)


@task(name="labelstudio-export", cache_policy=NO_CACHE, retries=0)
def pull_export_task(url: str, project: int, data_path: str | list[str], root: str, token_env: str = TOKEN_ENV,
                     token_secret: str | None = None) -> dict[str, Any]:
    """The project's annotated tasks -> data_path under root (Label Studio JSON); counts and content key."""
    with labelstudio_client(url, token_env, token_secret) as client:
        return annotation_loop.pull_export(client, project, data_path, root)


@task(name="labelstudio-preannotate", cache_policy=NO_CACHE, retries=0)
def preannotate_task(url: str, project: int, model_dir: str, model_version: str, token_env: str = TOKEN_ENV,
                     token_secret: str | None = None) -> dict[str, Any]:
    """Predict the project's tasks that have no prediction and push the predictions to them."""
    from tokclf.inference.predictor import Predictor
    from tokclf.inference.preannotate import push_preannotations

    with labelstudio_client(url, token_env, token_secret) as client:
        todo = client.tasks_without_predictions(project)
        if not todo:
            return {"pushed": 0, "task_ids": [], "without_text": [], "model_version": model_version}
        return push_preannotations(client, project, Predictor(model_dir), model_version=model_version, tasks=todo)


@task(name="annotation-loop-record", cache_policy=NO_CACHE, retries=0)
def record_loop_task(params: TokenClassificationParams, root: str, pulled: dict[str, Any], run_id: str | None,
                     publish: dict[str, Any]) -> dict[str, Any]:
    """After a successful retrain: the export's key, so the next run knows what it was trained on."""
    return annotation_loop.record_loop_run(PipelinePaths.for_params(params, root), pulled, run_id, publish)


__all__ = ["labelstudio_client", "pull_export_task", "preannotate_task", "record_loop_task"]
