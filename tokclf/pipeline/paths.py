"""Where the pipeline's stages read and write: one set of paths under a project root, the same that
dvc.yaml declares (tests/test_stages.py checks), so a Prefect flow and `dvc repro` fill the same
places and `dvc commit` can record what a flow produced."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokclf.core.params import TokenClassificationParams

STAGES = ("ingest", "validate", "tokenize", "train", "evaluate", "publish")


# Paths relative to the project root; dvc.yaml declares the same ones (tests/test_dvc.py checks).
RAW = "data/raw"


PREPARED = "data/prepared"


VALIDATED = "data/validated"


FEATURES = "data/features"


VALIDATION_REPORT = "reports/validation_report.json"


METRICS = "reports/metrics.json"


EVALUATION = "reports/evaluation.json"


PLOTS = "reports/plots"


PUBLISH = "reports/publish.json"


STAMP = ".tokclf_stage.json"        # hidden: split-file readers skip dot files


DATA_META = "tokclf_data.json"      # label names, sources, notes of a saved LabelledData


FEATURES_META = "tokclf_features.json"


RUN_RECORD = "pipeline_run.json"    # in the model folder: what the train stage was fed


# --- paths --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PipelinePaths:
    """Where each stage reads and writes, under one project root (dvc.yaml's paths)."""

    root: Path
    model: Path
    raw: Path
    prepared: Path
    validated: Path
    features: Path
    validation_report: Path
    metrics: Path
    evaluation: Path
    plots: Path
    publish: Path

    @classmethod
    def for_params(cls, params: TokenClassificationParams, root: str | Path = ".") -> PipelinePaths:
        base = Path(root).expanduser().resolve()
        model = Path(params.project_name).expanduser()
        return cls(
            root=base, model=model if model.is_absolute() else base / model,
            raw=base / RAW, prepared=base / PREPARED, validated=base / VALIDATED, features=base / FEATURES,
            validation_report=base / VALIDATION_REPORT, metrics=base / METRICS, evaluation=base / EVALUATION,
            plots=base / PLOTS, publish=base / PUBLISH,
        )


def params_for_root(params: TokenClassificationParams, root: str | Path) -> TokenClassificationParams:
    """`params` with relative local paths (data_path, model, project_name) made absolute under `root`,
    so a flow gives the same result whatever its working directory. Hub ids and package:// stay."""
    base = Path(root).expanduser().resolve()
    update: dict[str, Any] = {}
    def absolute(value: str) -> str:
        if "://" in value or Path(value).expanduser().is_absolute() or value.startswith("~"):
            return value
        return str(base / value) if (base / value).exists() else value

    for key in ("data_path", "model"):
        value = getattr(params, key)
        new = absolute(value) if isinstance(value, str) else [absolute(v) for v in value]
        if new != value:
            update[key] = new
    if not Path(params.project_name).expanduser().is_absolute():
        update["project_name"] = str(base / params.project_name)
    return params.model_copy(update=update) if update else params


def load_params(config: str | Path) -> TokenClassificationParams:
    """params.yaml (sections flattened) -> validated parameters."""
    from tokclf.core.params import load_config, params_from_mapping

    return params_from_mapping(load_config(config), source=str(config))

