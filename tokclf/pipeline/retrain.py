"""Retraining and DVC records: whether the data or the parameters changed since the last
successful pipeline run, and recording a flow's outputs with DVC."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tokclf.core.errors import TokclfError
from tokclf.core.params import TokenClassificationParams
from tokclf.pipeline.keys import dataset_fingerprint, training_params_hash
from tokclf.pipeline.paths import RUN_RECORD, PipelinePaths


# --- retraining and DVC records -------------------------------------------------------------------------
def last_successful_run(paths: PipelinePaths) -> dict[str, Any] | None:
    """The model folder's run record when the evaluate stage finished on that same run (the pipeline
    got through train and evaluate); None otherwise."""
    try:
        run = json.loads((paths.model / RUN_RECORD).read_text(encoding="utf-8"))
        details = json.loads(paths.evaluation.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not paths.metrics.is_file() or details.get("model", {}).get("run_id") != run.get("run_id"):
        return None
    return run


def retrain_decision(params: TokenClassificationParams, paths: PipelinePaths) -> tuple[bool, str]:
    """(train?, why): training is needed unless the last successful run used the same validated
    data (content fingerprint) and the same training parameters."""
    current = dataset_fingerprint(paths.validated)
    last = last_successful_run(paths)
    if last is None:
        return True, f"no successful run recorded in {paths.model}: training"
    if last.get("data_fingerprint") != current:
        return True, (f"data changed since the last successful run of {last.get('finished_at')} "
                      f"(sha256 {str(last.get('data_fingerprint'))[:12]} -> {current[:12]}): training")
    if last.get("params_hash") != training_params_hash(params):
        return True, "training parameters changed since the last successful run: training"
    return False, (f"data unchanged since the last successful run of {last.get('finished_at')} "
                   f"(sha256 {current[:12]}), same parameters: training skipped")


def dvc_record(root: str | Path, *, push: bool = False, timeout_s: float = 600) -> dict[str, Any]:
    """Record the outputs in place with DVC: `dvc commit -f` (hashes into dvc.lock, files into the
    cache) and, with push, `dvc push` to the default remote. Run after a flow filled the paths that
    dvc.yaml declares with the parameters of params.yaml."""
    base = Path(root).expanduser().resolve()
    if not (base / "dvc.yaml").is_file() or not (base / ".dvc").is_dir():
        raise TokclfError(f"{base} is not a DVC project (no dvc.yaml or .dvc/)",
                          fix="run the flow with workdir set to the repository root.", code="E7004")
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    done = []
    commands = [["commit", "-f", "-q"]] + ([["push", "-q"]] if push else [])
    for args in commands:
        proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=base, env=env, capture_output=True,
                              text=True, timeout=timeout_s)
        if proc.returncode != 0:
            raise TokclfError(f"`dvc {' '.join(args)}` failed: {(proc.stderr or proc.stdout).strip()[-2000:]}",
                              where=str(base), fix="run the command by hand to see the details.", code="E7005")
        done.append("dvc " + " ".join(args))
    return {"root": str(base), "commands": done, "lock": str(base / "dvc.lock")}

