"""The datasets and reports stages hand to each other, on disk: normalised sentences (ingest,
validate), features (tokenize) and the validation report, written into folders that replace
their targets atomically."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from tokclf.core.errors import DataError, TokclfError
from tokclf.core.fileio import staged_dir, write_json
from tokclf.core.params import TokenClassificationParams
from tokclf.data.types import LabelledData
from tokclf.pipeline.keys import dataset_fingerprint, hash_files, tokenizer_fingerprint
from tokclf.pipeline.paths import DATA_META, FEATURES_META, STAMP


def replaced_dir(target: str | Path) -> contextlib.AbstractContextManager[Path]:
    """A temporary sibling folder that replaces `target` when the block succeeds (removed on error).
    A non-empty `target` without a stage stamp was not written by a stage and is never replaced."""
    return staged_dir(target, marker=STAMP, what="written by a tokclf stage")


def save_dataset_dict(splits: dict[str, Any], folder: Path) -> dict[str, int]:
    """Datasets (or, per split, a (tables, features) pair: Arrow tables made one batch at a time)
    written as a save_to_disk folder, batch by batch (`tokclf.core.arrowio`), with a
    content-derived `_fingerprint` in each split's state.json: the same data gives the same bytes
    in every run, so DVC sees an unchanged output and downstream stages stay skipped."""
    from tokclf.core.arrowio import dataset_tables, write_dataset_dict

    rows = write_dataset_dict(folder, {name: ds if isinstance(ds, tuple) else (dataset_tables(ds), ds.features)
                                       for name, ds in splits.items()})
    for name in splits:
        state_path = folder / name / "state.json"
        state = json.loads(state_path.read_text(encoding="utf-8"))
        arrow = sorted((folder / name).glob("*.arrow"))
        state["_fingerprint"] = hash_files(folder / name, arrow)[:16]
        state_path.write_text(json.dumps(state, indent=2, sort_keys=True), encoding="utf-8")
    return rows


def save_labelled(data: LabelledData, folder: Path) -> None:
    """A LabelledData as a save_to_disk DatasetDict plus tokclf_data.json (labels, sources, notes),
    written batch by batch (a carved split's indices are followed batch by batch too)."""
    save_dataset_dict(dict(data.splits), folder)
    write_json(folder / DATA_META, {
        "splits": list(data.splits), "label_names": data.label_names, "label_origin": data.label_origin,
        "sources": data.sources, "units": data.units, "notes": data.notes, "annotations": data.annotations,
    })


def load_labelled(folder: str | Path) -> LabelledData:
    """Read back what `save_labelled` wrote (the ingest and validate stages' outputs)."""
    from datasets import load_from_disk

    p = Path(folder)
    meta_path = p / DATA_META
    if not meta_path.is_file():
        raise DataError(f"no prepared dataset at {p} (missing {DATA_META})",
                        fix="run the ingest stage (`tokclf stage ingest`) first.", code="E7009")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    loaded = load_from_disk(str(p))
    splits = {name: loaded[name] for name in meta["splits"]}
    return LabelledData(splits=splits, label_names=meta["label_names"], sources=meta["sources"],
                        units=meta["units"], label_origin=meta.get("label_origin", "none"), notes=meta.get("notes", []),
                        annotations=meta.get("annotations", {}))


def load_features(folder: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The tokenize stage's features per split and their metadata (tokclf_features.json)."""
    from datasets import load_from_disk

    p = Path(folder)
    meta_path = p / FEATURES_META
    if not meta_path.is_file():
        raise DataError(f"no features at {p} (missing {FEATURES_META})", fix="run the tokenize stage first.", code="E7010")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    loaded = load_from_disk(str(p))
    return {name: loaded[name] for name in loaded}, meta


def load_report(path: str | Path) -> Any:
    """A ValidationReport read back from its JSON (the validate stage's report)."""
    from tokclf.data.validation import Problem, ValidationReport

    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    return ValidationReport(
        errors=[Problem(**p) for p in raw.get("errors", [])], warnings=[Problem(**p) for p in raw.get("warnings", [])],
        stats=raw.get("stats", {}), repaired=raw.get("repaired", 0),
    )


def check_features(params: TokenClassificationParams, meta: dict[str, Any], data_dir: str | Path, where: str) -> None:
    expected = {"max_seq_length": params.max_seq_length, "stride": params.stride,
                "subword_labels": params.subword_labels, "tokenizer": tokenizer_fingerprint(params.model),
                "data_fingerprint": dataset_fingerprint(data_dir)}
    stale = [k for k, v in expected.items() if meta.get(k) != v]
    if meta.get("document_context", 0) != params.document_context:  # features from before it existed: 0
        stale.append("document_context")
    if stale:
        raise TokclfError(
            f"the features were made for other settings or data ({', '.join(stale)} differ)", where=where,
            fix="rerun the tokenize stage (`dvc repro tokenize` or `tokclf stage tokenize`).", code="E7011",
        )

