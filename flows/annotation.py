"""The annotation-loop flow `token-classification-annotation-loop` (deployment `annotation-loop`):

1. pull the Label Studio project's JSON export into the params' data_path (a .json file);
2. retrain only when the annotations changed since the last successful run of this flow (their
   content key, tokclf.pipeline.keys.annotations_key, against reports/annotation_loop.json): the
   training flow as a subflow (ingest -> ... -> evaluate -> publish behind the quality gate);
3. push fresh pre-annotations, from the model folder, to the tasks that still have no prediction
   (also when nothing was retrained: new tasks get predictions from the current model); not when
   the gate refused to publish the new model.

The Label Studio token comes from the environment variable `labelstudio_token_env` (default
LABEL_STUDIO_API_KEY) of the process that runs the flow, or from the Prefect Secret block named by
`labelstudio_token_secret`; only those names are flow parameters. See docs/annotation.md.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.states import Completed

from flows.training import resolve_run, training_flow
from tasks.labelstudio import preannotate_task, pull_export_task, record_loop_task
from tokclf.data.labelstudio_api import TOKEN_ENV
from tokclf.pipeline import annotation_loop

FLOW_NAME = "token-classification-annotation-loop"


@flow(name=FLOW_NAME, log_prints=True)
def annotation_loop_flow(
    labelstudio_url: str,
    project_id: int,
    config: str = "params.yaml",
    workdir: str = ".",
    labelstudio_token_env: str = TOKEN_ENV,
    labelstudio_token_secret: str | None = None,
    force: bool = False,
    record_with_dvc: bool = False,
    dvc_push: bool = False,
    hub_token_secret: str | None = None,
) -> Any:
    """Pull the annotations, retrain when they changed, pre-annotate the tasks that have no prediction.

    labelstudio_url / project_id: the server (e.g. http://localhost:8080) and the project's id.
    config: parameters file, relative to workdir; its data_path names the .json file the export goes to.
    labelstudio_token_env / labelstudio_token_secret: where the token is read (never a parameter itself).
    force: train even when the annotations are unchanged.
    record_with_dvc / dvc_push / hub_token_secret: see the training flow.
    """
    logger = get_run_logger()
    params, run_params, paths, _ = resolve_run(None, config, workdir)
    token = {"token_env": labelstudio_token_env, "token_secret": labelstudio_token_secret}
    pulled = pull_export_task(labelstudio_url, project_id, run_params.data_path, str(paths.root), **token)
    logger.info("pulled %d annotated tasks of project %d into %s", pulled["annotated"], project_id, pulled["path"])
    needed, reason = annotation_loop.loop_decision(pulled, paths)
    if force and pulled["annotated"] and not needed:
        needed, reason = True, "forced: " + reason
    trained: dict[str, Any] | None = None
    if needed:
        logger.info("retraining: %s", reason)
        trained = training_flow(config=config, workdir=str(paths.root), record_with_dvc=record_with_dvc,
                                dvc_push=dvc_push, hub_token_secret=hub_token_secret)
        record_loop_task(run_params, str(paths.root), pulled, trained["run_id"], trained["publish"])
    else:
        logger.info("retrain skipped: %s", reason)
    model, why = annotation_loop.preannotation_model(paths, trained["publish"] if trained else None,
                                                     run_params.push_to_hub)
    pushed = None
    if model is not None:
        pushed = preannotate_task(labelstudio_url, project_id, str(model), annotation_loop.model_version(paths),
                                  **token)
        logger.info("pre-annotated %d tasks that had no prediction (model version %s)", pushed["pushed"],
                    pushed["model_version"])
    else:
        logger.info(why)
    result = {"trained": trained is not None, "reason": reason, "annotated": pulled["annotated"],
              "annotations_key": pulled["key"], "preannotated": pushed, "preannotation": why,
              **({k: trained[k] for k in ("model", "metrics", "main_split", "run_id", "publish")} if trained else {})}
    if trained is None:
        return Completed(message=f"retrain skipped: {reason}", data=result)
    return result
