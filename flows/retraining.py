"""The retraining flow `token-classification-retrain` (the scheduled deployment runs it).

It reads the data again (ingest and validate, cached on content), then trains only when the
validated data or the training parameters differ from those of the last successful run
(tokclf.pipeline.retrain.retrain_decision: the model folder's pipeline_run.json, confirmed by the evaluate
stage's report). Otherwise it logs why it skipped and ends Completed with that message. When it
trains, it runs the training flow as a subflow and, by default, records the outputs with DVC
(`dvc commit`, and `dvc push` when dvc_push), so every scheduled retrain leaves a versioned model
and metrics behind.
"""

from __future__ import annotations

from typing import Any


from prefect import flow, get_run_logger
from prefect.states import Completed

from flows.training import prepare_data, resolve_run, training_flow
from tasks import results_storage
from tokclf.pipeline import retrain

FLOW_NAME = "token-classification-retrain"


@flow(name=FLOW_NAME, log_prints=True)
def retraining_flow(
    config: str = "params.yaml",
    workdir: str = ".",
    force: bool = False,
    record_with_dvc: bool = True,
    dvc_push: bool = False,
    hub_token_secret: str | None = None,
) -> Any:
    """Retrain when the data (or the parameters) changed since the last successful run.

    config: parameters file, relative to workdir (read at every run, so edits apply to the next one).
    force: train even when nothing changed.
    record_with_dvc / dvc_push / hub_token_secret: see the training flow.
    """
    logger = get_run_logger()
    params, run_params, paths, _ = resolve_run(None, config, workdir)
    prepare_data(run_params, paths, results_storage(paths.root), source_name=params.data_path)
    needed, reason = retrain.retrain_decision(run_params, paths)
    if not needed and not force:
        logger.info("retrain skipped: %s", reason)
        return Completed(message=f"retrain skipped: {reason}",
                         data={"trained": False, "reason": reason, "metrics_path": str(paths.metrics)})
    if not needed:
        reason = "forced: " + reason
    logger.info("retraining: %s", reason)
    result = training_flow(config=config, workdir=str(paths.root), record_with_dvc=record_with_dvc, dvc_push=dvc_push,
                           hub_token_secret=hub_token_secret)
    return {"trained": True, "reason": reason, **result}
