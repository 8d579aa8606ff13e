"""The retraining flow `token-classification-retrain` (the scheduled deployment runs it).

It reads the data again (ingest and validate, cached on content), then trains only when the
validated data or the training parameters differ from those of the last successful run
(tokclf.pipeline.stages.retrain_decision: the model folder's pipeline_run.json, confirmed by the evaluate
stage's report). Otherwise it logs why it skipped and ends Completed with that message. When it
trains, it runs the training flow as a subflow and, by default, records the outputs with DVC
(`dvc commit`, and `dvc push` when dvc_push), so every scheduled retrain leaves a versioned model
and metrics behind.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from prefect import flow, get_run_logger  # noqa: E402
from prefect.states import Completed  # noqa: E402

from flows.training import prepare_data, resolve_run, training_flow  # noqa: E402
from tasks import results_storage  # noqa: E402
from tokclf.pipeline import stages  # noqa: E402

FLOW_NAME = "token-classification-retrain"


@flow(name=FLOW_NAME, log_prints=True)
def retraining_flow(
    config: str = "params.yaml",
    workdir: str = ".",
    force: bool = False,
    record_with_dvc: bool = True,
    dvc_push: bool = False,
) -> Any:
    """Retrain when the data (or the parameters) changed since the last successful run.

    config: parameters file, relative to workdir (read at every run, so edits apply to the next one).
    force: train even when nothing changed.
    record_with_dvc / dvc_push: see the training flow.
    """
    logger = get_run_logger()
    params, run_params, paths, _ = resolve_run(None, config, workdir)
    prepare_data(run_params, paths, results_storage(paths.root), source_name=params.data_path)
    needed, reason = stages.retrain_decision(run_params, paths)
    if not needed and not force:
        logger.info("retrain skipped: %s", reason)
        return Completed(message=f"retrain skipped: {reason}",
                         data={"trained": False, "reason": reason, "metrics_path": str(paths.metrics)})
    if not needed:
        reason = "forced: " + reason
    logger.info("retraining: %s", reason)
    result = training_flow(config=config, workdir=str(paths.root), record_with_dvc=record_with_dvc, dvc_push=dvc_push)
    return {"trained": True, "reason": reason, **result}
