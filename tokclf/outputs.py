"""Files a run leaves next to the model: params (never the token), metrics, validation report,
training log and a short README. All are written inside the staging folder (see tokclf.staging)."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

from tokclf.data.types import TOKENS, LabelledData
from tokclf.params import TokenClassificationParams
from tokclf.staging import write_json


def versions() -> dict[str, str]:
    import datasets
    import torch
    import transformers

    import tokclf

    return {
        "tokclf": tokclf.__version__,
        "transformers": transformers.__version__,
        "datasets": datasets.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def data_summary(data: LabelledData) -> dict[str, Any]:
    return {
        name: {
            "source": data.sources.get(name, name),
            "sentences": len(ds),
            "words": int(sum(len(t) for t in ds[TOKENS])),
        }
        for name, ds in data.splits.items()
    }


def write_outputs(
    out: Path,
    *,
    params: TokenClassificationParams,
    data: LabelledData,
    report: Any,
    metrics: dict[str, Any],
    model_path: str,
    log_history: list[dict[str, Any]] | None = None,
) -> None:
    write_json(out / "training_params.json", {
        **params.public_dict(),
        "resolved_model_path": model_path,
        "label_names": data.label_names,
        "label_origin": data.label_origin,
        "data": data_summary(data),
        "versions": versions(),
    })
    write_json(out / "metrics.json", metrics)
    report.write_json(out / "validation_report.json")
    if log_history:
        write_json(out / "training_log.json", log_history)
    (out / "README.md").write_text(render_readme(params, data, metrics), encoding="utf-8")


def _table(metrics: dict[str, Any]) -> str:
    rows = ["| type | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for name, row in sorted((metrics.get("per_type") or {}).items()):
        rows.append(f"| {name} | {row['precision']:.4f} | {row['recall']:.4f} | {row['f1']:.4f} | {row['support']} |")
    rows.append(
        f"| **overall** | {metrics['precision']:.4f} | {metrics['recall']:.4f} | {metrics['f1']:.4f} | |"
    )
    return "\n".join(rows)


def render_readme(params: TokenClassificationParams, data: LabelledData, metrics: dict[str, Any]) -> str:
    name = Path(params.project_name).name
    labels = ", ".join(data.label_names) if data.label_names else f"{data.num_labels} unnamed integer tags"
    parts = [
        f"# {name}\n",
        f"Token classification model fine-tuned with tokclf from `{params.model}`.\n",
        f"Labels: {labels}\n",
    ]
    for split_key in ("validation", "test"):
        m = metrics.get(split_key)
        if m:
            scheme = "entity level (seqeval, on words)" if m.get("scheme") == "entity" else "per tag, on words"
            parts.append(f"## {split_key} ({m.get('split', split_key)}): {scheme}\n\n{_table(m)}\n\nToken accuracy: {m['accuracy']:.4f}\n")
    parts.append(
        "## Usage\n\n```python\nfrom transformers import pipeline\n\n"
        f'ner = pipeline("token-classification", model="{name}", aggregation_strategy="simple")\n'
        'print(ner("Your text here"))\n```\n'
    )
    return "\n".join(parts)
