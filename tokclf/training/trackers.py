"""Experiment trackers (tensorboard, mlflow, wandb) write beside or inside the output and never
reach for the network. They are configured through environment variables, restored afterwards
so one run's settings do not leak into the next run in the same process. A resumed run logs to the
same tracker run: tensorboard appends to `OUT/runs` (the run folder is the same), MLflow continues
the recorded run id."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from tokclf.core.params import TokenClassificationParams


@contextlib.contextmanager
def tracker_env(params: TokenClassificationParams, out: Path) -> Iterator[None]:
    env: dict[str, str] = {}
    if params.log == "tensorboard":
        env["TENSORBOARD_LOGGING_DIR"] = str(out / "runs")
    elif params.log == "mlflow":
        # One SQLite store beside the output folders, so runs of several projects compare in
        # `mlflow ui --backend-store-uri sqlite:///<that file>` (MLflow's file store is deprecated).
        target = Path(params.project_name).expanduser().resolve()
        env["MLFLOW_TRACKING_URI"] = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{target.parent / 'mlflow.db'}"
        env["MLFLOW_EXPERIMENT_NAME"] = os.environ.get("MLFLOW_EXPERIMENT_NAME") or "tokclf"
        # A resumed run continues the interrupted run's MLflow run (recorded by
        # tokclf.training.trainer.RecordTrackerRun in the run folder) rather than starting another.
        from tokclf.training.checkpoints import read_run_file

        run_id = read_run_file(out).get("mlflow_run_id")
        if run_id and not os.environ.get("MLFLOW_RUN_ID"):
            env["MLFLOW_RUN_ID"] = run_id
    elif params.log == "wandb":
        env["WANDB_MODE"] = os.environ.get("WANDB_MODE") or "offline"
        env["WANDB_DIR"] = os.environ.get("WANDB_DIR") or str(out)
        env["WANDB_SILENT"] = "true"
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
