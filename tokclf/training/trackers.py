"""Experiment trackers (tensorboard, mlflow, wandb) write beside or inside the output and never
reach for the network. They are configured through environment variables, restored afterwards
so one run's settings do not leak into the next run in the same process."""

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
