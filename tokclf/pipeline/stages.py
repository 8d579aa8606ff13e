"""The pipeline's stages: one library entry point per step, each with explicit input and output paths.

    ingest    data_path (CSV/JSON/Parquet/CoNLL/CoNLL-U/HF disk/Hub id)
              -> data/raw (byte copy of the source, versioned by DVC) + data/prepared (normalised)
    validate  data/prepared -> data/validated (+ BIO repair when asked) + reports/validation_report.json;
              hard errors write the report, then raise ValidationFailed (the pipeline stops)
    tokenize  data/validated -> data/features (aligned, windowed features of every split)
    train     data/validated + data/features -> the model folder (project_name)
    evaluate  model + data -> reports/metrics.json, reports/evaluation.json (per type), reports/plots/
    publish   model -> the Hub (tokclf.publishing.hub, quality-gated), or a no-op when push_to_hub is false;
              reports/publish.json says which

`dvc.yaml` runs each through `tokclf stage <name>` (tokclf.cli.pipeline) and `tasks/` wraps each
in a Prefect task: both call these functions, which is where all logic lives. The default paths
(`PipelinePaths`) are the ones dvc.yaml declares, so a Prefect run and `dvc repro` fill the same
places and `dvc commit` can record what a flow produced.

Folders a stage writes are replaced atomically (written beside, renamed into place) and carry a
hidden stamp `.tokclf_stage.json` holding the stage's cache key: a hash of the *content* it was
made from (dataset fingerprints, tokenizer file hashes) and of the parameters it read. Prefect's
cache uses the same keys (`ingest_key`, `validate_key`, `tokenize_key`), and a flow only reuses a
cached result when the folder on disk still carries the key (`stamp_key`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokclf.data.types import TAGS, LabelledData
from tokclf.core.errors import DataError, TokclfError
from tokclf.core.params import TokenClassificationParams

log = logging.getLogger("tokclf")

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
KEY_VERSION = 1                     # bump when a stage's output format changes

# Parameters each stage reads (dvc.yaml lists the same under each stage's `params:`).
INGEST_KEYS = (  # data_path enters as the content hash of what it names, not as a string
    "tokens_column", "tags_column", "train_split", "valid_split", "test_split", "max_samples",
    "label_names", "conll_token_column", "conll_tag_column", "conllu_tag", "validation_split_ratio", "seed",
)
# (The model enters the keys below through its tokenizer files' hash, not its path.)
VALIDATE_KEYS = ("train_split", "valid_split", "test_split", "validation_split_ratio", "repair_bio", "max_seq_length")
TOKENIZE_KEYS = ("train_split", "max_seq_length", "stride", "subword_labels")
# Keys that do not change the trained model (left out of its parameter hash).
NOT_TRAINING_KEYS = frozenset({
    "project_name", "push_to_hub", "username", "token", "log", "hub_private", "publish_tolerance",
    "force_publish", "hub_token_secret",
})
# Files that define a tokenizer (hashed for the tokenize cache key).
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.txt",
    "vocab.json", "merges.txt", "spiece.model", "sentencepiece.bpe.model", "tokenizer.model",
)
_SKIP_NAMES = frozenset({"__pycache__", ".git", STAMP})


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
    for key in ("data_path", "model"):
        value = getattr(params, key)
        if "://" in value or Path(value).expanduser().is_absolute() or value.startswith("~"):
            continue
        if (base / value).exists():
            update[key] = str(base / value)
    if not Path(params.project_name).expanduser().is_absolute():
        update["project_name"] = str(base / params.project_name)
    return params.model_copy(update=update) if update else params


def load_params(config: str | Path) -> TokenClassificationParams:
    """params.yaml (sections flattened) -> validated parameters."""
    from tokclf.core.params import load_config, params_from_mapping

    return params_from_mapping(load_config(config), source=str(config))


# --- fingerprints and keys --------------------------------------------------------------------------
def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    out = []
    for p in sorted(path.rglob("*")):
        if p.is_file() and not any(part in _SKIP_NAMES for part in p.relative_to(path).parts):
            out.append(p)
    return out


def _hash_files(base: Path, files: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for f in files:
        rel = f.name if f == base else f.relative_to(base).as_posix()
        digest.update(rel.encode("utf-8") + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def path_fingerprint(path: str | Path) -> str:
    """sha256 over the names and bytes of a file or of every file in a folder (stamps and
    __pycache__ left out)."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"no such file or folder: {p}")
    return _hash_files(p, _files(p))


def source_fingerprint(data_path: str) -> str | None:
    """Content hash of a local or packaged data source; None for a Hub dataset id (no local bytes)."""
    from tokclf.core.resources import resolve_data_path

    resolved = Path(resolve_data_path(data_path)).expanduser()
    return path_fingerprint(resolved) if resolved.exists() else None


def dataset_fingerprint(folder: str | Path) -> str:
    """Content hash of a folder written by save_to_disk (+ tokclf metadata): its Arrow data, split
    list and features, not its state.json (which holds a fingerprint of how it was made)."""
    p = Path(folder)
    if not p.is_dir():
        raise DataError(f"no dataset folder at {p}", fix="run the stage that writes it first.")
    return _hash_files(p, [f for f in _files(p) if f.name != "state.json"])


def tokenizer_fingerprint(model: str) -> str:
    """Hash of the tokenizer files of `model` (a folder, a packaged model); `hub:<id>` for a Hub id
    that is not available locally."""
    from tokclf.core.resources import resolve_model_path

    path = Path(resolve_model_path(model)).expanduser()
    if not path.is_dir():
        return f"hub:{model}"
    files = [path / name for name in TOKENIZER_FILES if (path / name).is_file()]
    return _hash_files(path, files) if files else f"dir:{path}"


def _key(stage: str, payload: dict[str, Any]) -> str:
    text = json.dumps({"stage": stage, "version": KEY_VERSION, **payload}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _subset(params: TokenClassificationParams, keys: Iterable[str]) -> dict[str, Any]:
    dumped = params.model_dump(mode="json")
    return {k: dumped.get(k) for k in keys}


def ingest_key(params: TokenClassificationParams) -> str | None:
    """Source content + data parameters; None (never cached) for a Hub dataset, whose content is
    only known after downloading it."""
    source = source_fingerprint(params.data_path)
    if source is None:
        return None
    payload: dict[str, Any] = {"source": source, "params": _subset(params, INGEST_KEYS)}
    if isinstance(params.label_names, str) and Path(params.label_names).expanduser().is_file():
        payload["label_file"] = path_fingerprint(Path(params.label_names).expanduser())  # its content
    return _key("ingest", payload)


def validate_key(params: TokenClassificationParams, prepared: str | Path) -> str:
    return _key("validate", {
        "data": dataset_fingerprint(prepared), "tokenizer": tokenizer_fingerprint(params.model),
        "params": _subset(params, VALIDATE_KEYS),
    })


def tokenize_key(params: TokenClassificationParams, validated: str | Path) -> str:
    """Normalised data content + tokenizer files + max_seq_length, stride, subword_labels."""
    return _key("tokenize", {
        "data": dataset_fingerprint(validated), "tokenizer": tokenizer_fingerprint(params.model),
        "params": _subset(params, TOKENIZE_KEYS),
    })


def training_params_hash(params: TokenClassificationParams) -> str:
    """Hash of the parameters that shape the model (paths, logging and publishing left out)."""
    dumped = {k: v for k, v in params.model_dump(mode="json").items() if k not in NOT_TRAINING_KEYS}
    dumped.pop("data_path", None)  # the data is compared by content (dataset_fingerprint)
    return _key("train", dumped)


def stamp(folder: str | Path) -> dict[str, Any]:
    p = Path(folder) / STAMP
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def stamp_key(folder: str | Path) -> str | None:
    """The cache key a stage left in its output folder (None when absent)."""
    return stamp(folder).get("key")


# --- writing folders ------------------------------------------------------------------------------------
def _write_json(path: Path, data: Any) -> None:
    from tokclf.core.fileio import write_json

    write_json(path, data)


def replaced_dir(target: str | Path) -> contextlib.AbstractContextManager[Path]:
    """A temporary sibling folder that replaces `target` when the block succeeds (removed on error).
    A non-empty `target` without a stage stamp was not written by a stage and is never replaced."""
    from tokclf.core.fileio import staged_dir

    return staged_dir(target, marker=STAMP, what="written by a tokclf stage")


def _write_stamp(folder: Path, stage: str, key: str | None, **extra: Any) -> None:
    _write_json(folder / STAMP, {"stage": stage, "key": key, **extra})


def _stage(fn: Any) -> Any:
    """Run a stage with datasets' progress bars off and its cache off: no cache files may appear
    next to a stage's *input* Arrow files (they would change a folder that DVC hashed as another
    stage's output). Both settings are restored afterwards."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import datasets
        from datasets.utils import logging as datasets_logging

        bars, caching = datasets_logging.is_progress_bar_enabled(), datasets.is_caching_enabled()
        datasets_logging.disable_progress_bar()
        datasets.disable_caching()
        try:
            return fn(*args, **kwargs)
        finally:
            if bars:
                datasets_logging.enable_progress_bar()
            if caching:
                datasets.enable_caching()

    return wrapper


def save_dataset_dict(splits: dict[str, Any], folder: Path) -> None:
    """save_to_disk with a content-derived `_fingerprint` in each split's state.json: the same data
    gives the same bytes in every run (datasets makes random fingerprints when caching is off),
    so DVC sees an unchanged output and downstream stages stay skipped."""
    from datasets import DatasetDict

    DatasetDict(splits).save_to_disk(str(folder))
    for name in splits:
        state_path = folder / name / "state.json"
        state = json.loads(state_path.read_text(encoding="utf-8"))
        arrow = sorted((folder / name).glob("*.arrow"))
        state["_fingerprint"] = _hash_files(folder / name, arrow)[:16]
        state_path.write_text(json.dumps(state, indent=2, sort_keys=True), encoding="utf-8")


def save_labelled(data: LabelledData, folder: Path) -> None:
    """A LabelledData as a save_to_disk DatasetDict plus tokclf_data.json (labels, sources, notes)."""
    splits = {name: ds.flatten_indices(keep_in_memory=True) if ds._indices is not None else ds
              for name, ds in data.splits.items()}
    save_dataset_dict(splits, folder)
    _write_json(folder / DATA_META, {
        "splits": list(data.splits), "label_names": data.label_names, "label_origin": data.label_origin,
        "sources": data.sources, "units": data.units, "notes": data.notes,
    })


def load_labelled(folder: str | Path) -> LabelledData:
    """Read back what `save_labelled` wrote (the ingest and validate stages' outputs)."""
    from datasets import load_from_disk

    p = Path(folder)
    meta_path = p / DATA_META
    if not meta_path.is_file():
        raise DataError(f"no prepared dataset at {p} (missing {DATA_META})",
                        fix="run the ingest stage (`tokclf stage ingest`) first.")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    loaded = load_from_disk(str(p))
    splits = {name: loaded[name] for name in meta["splits"]}
    return LabelledData(splits=splits, label_names=meta["label_names"], sources=meta["sources"],
                        units=meta["units"], label_origin=meta.get("label_origin", "none"), notes=meta.get("notes", []))


def load_features(folder: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The tokenize stage's features per split and their metadata (tokclf_features.json)."""
    from datasets import load_from_disk

    p = Path(folder)
    meta_path = p / FEATURES_META
    if not meta_path.is_file():
        raise DataError(f"no features at {p} (missing {FEATURES_META})", fix="run the tokenize stage first.")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    loaded = load_from_disk(str(p))
    return {name: loaded[name] for name in loaded}, meta


def _valid_split_name(params: TokenClassificationParams) -> str | None:
    if params.valid_split is not None:
        return params.valid_split
    return "validation" if params.validation_split_ratio is not None else None


# --- ingest -------------------------------------------------------------------------------------------
def snapshot_source(data_path: str, raw_dir: Path) -> Path:
    """Copy the data source as it is into `raw_dir` (a Hub dataset is saved with save_to_disk);
    returns the path inside `raw_dir` to read it from."""
    from tokclf.data import hf
    from tokclf.core.resources import resolve_data_path

    resolved = Path(resolve_data_path(data_path)).expanduser()
    if resolved.is_file():
        target = raw_dir / resolved.name
        shutil.copy2(resolved, target)
        return target
    if resolved.is_dir():
        shutil.copytree(resolved, raw_dir, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".git", "__pycache__", STAMP))
        return raw_dir
    save_dataset_dict(hf.load_hub(data_path), raw_dir)
    return raw_dir


@_stage
def ingest(params: TokenClassificationParams, *, raw_dir: str | Path, out_dir: str | Path,
           source_name: str | None = None) -> dict[str, Any]:
    """Source -> `raw_dir` (a byte copy: what DVC versions) and `out_dir` (normalised sentences with
    integer tags per split, label names, sources). Reads the copy, so the prepared data is exactly
    what was versioned; messages name the source as `source_name` (default: data_path as given),
    so the outputs do not depend on where the project folder is."""
    from tokclf.data.ingest import load_labelled_data
    from tokclf.core.resources import resolve_data_path

    raw_target = Path(raw_dir).expanduser().resolve()
    resolved = Path(resolve_data_path(params.data_path)).expanduser()
    if resolved.exists() and (resolved.resolve() == raw_target or raw_target in resolved.resolve().parents):
        raise DataError(f"data_path {params.data_path!r} is inside {raw_target}, which the ingest stage rewrites",
                        where="data_path", fix="keep source data outside data/raw (e.g. data/source/).")
    key = ingest_key(params)
    shown = source_name or params.data_path
    with replaced_dir(raw_target) as raw_tmp:
        read_from = snapshot_source(params.data_path, raw_tmp)
        _write_stamp(raw_tmp, "ingest", key, source=shown)
        with replaced_dir(out_dir) as out:
            data = load_labelled_data(
                str(read_from), tokens_column=params.tokens_column, tags_column=params.tags_column,
                train_split=params.train_split, valid_split=params.valid_split, test_split=params.test_split,
                max_samples=params.max_samples, label_names=params.label_names,
                conll_token_column=params.conll_token_column, conll_tag_column=params.conll_tag_column,
                conllu_tag=params.conllu_tag, validation_split_ratio=params.validation_split_ratio, seed=params.seed,
            )
            # Messages name the user's source, not the snapshot.
            data.sources = {k: v.replace(str(read_from), shown) for k, v in data.sources.items()}
            save_labelled(data, out)
            _write_stamp(out, "ingest", key)
    splits = {name: len(ds) for name, ds in data.splits.items()}
    log.info("ingest: %s -> %s %s", params.data_path, out_dir, splits)
    return {"stage": "ingest", "raw": str(raw_target), "data": str(Path(out_dir).resolve()), "key": key,
            "splits": splits, "labels": data.label_names}


# --- validate -----------------------------------------------------------------------------------------
def load_report(path: str | Path) -> Any:
    """A ValidationReport read back from its JSON (the validate stage's report)."""
    from tokclf.data.validation import Problem, ValidationReport

    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    return ValidationReport(
        errors=[Problem(**p) for p in raw.get("errors", [])], warnings=[Problem(**p) for p in raw.get("warnings", [])],
        stats=raw.get("stats", {}), repaired=raw.get("repaired", 0),
    )


@_stage
def validate(params: TokenClassificationParams, *, data_dir: str | Path, out_dir: str | Path,
             report_path: str | Path) -> dict[str, Any]:
    """Check the prepared data (tokclf.data.validation): the report is always written; hard errors then
    raise ValidationFailed and nothing else is written; otherwise the data (BIO-repaired when
    repair_bio) goes to `out_dir` for tokenize, train and evaluate."""
    from tokclf.core.resources import resolve_model_path
    from tokclf.text.tokenizer import load_tokenizer
    from tokclf.data.validation import validate_data

    key = validate_key(params, data_dir)
    data = load_labelled(data_dir)
    tokenizer = load_tokenizer(resolve_model_path(params.model))
    data, report = validate_data(
        data, train_split=params.train_split, valid_split=_valid_split_name(params), test_split=params.test_split,
        repair_bio=params.repair_bio, tokenizer=tokenizer, max_seq_length=params.max_seq_length,
    )
    report.write_json(report_path)
    report.raise_for_errors(str(report_path))
    with replaced_dir(out_dir) as out:
        save_labelled(data, out)
        _write_stamp(out, "validate", key)
    log.info("validate: %d warning(s), report %s", len(report.warnings), report_path)
    return {"stage": "validate", "data": str(Path(out_dir).resolve()), "report": str(Path(report_path).resolve()),
            "key": key, "warnings": len(report.warnings), "repaired": report.repaired,
            "data_fingerprint": dataset_fingerprint(out_dir)}


# --- tokenize -----------------------------------------------------------------------------------------
@_stage
def tokenize(params: TokenClassificationParams, *, data_dir: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """Validated sentences -> model features of every split (tokclf.text.features.tokenize_split: windows
    for long sentences, labels aligned on the train split), saved with save_to_disk."""
    from tokclf.text.features import tokenize_split
    from tokclf.core.resources import resolve_model_path
    from tokclf.text.tokenizer import load_tokenizer

    key = tokenize_key(params, data_dir)
    data = load_labelled(data_dir)
    tokenizer = load_tokenizer(resolve_model_path(params.model))
    features = {}
    for name, ds in data.splits.items():
        features[name] = tokenize_split(
            ds, tokenizer, max_seq_length=params.max_seq_length, stride=params.stride, strategy=params.subword_labels,
            label_names=data.label_names, with_labels=name == params.train_split,
        )
    with replaced_dir(out_dir) as out:
        save_dataset_dict(features, out)
        _write_json(out / FEATURES_META, {
            "key": key, "tokenizer": tokenizer_fingerprint(params.model),
            "max_seq_length": params.max_seq_length, "stride": params.stride, "subword_labels": params.subword_labels,
            "train_split": params.train_split, "data_fingerprint": dataset_fingerprint(data_dir),
            "splits": {n: {"sentences": len(data.splits[n]), "features": len(f)} for n, f in features.items()},
        })
        _write_stamp(out, "tokenize", key)
    log.info("tokenize: %s", {n: len(f) for n, f in features.items()})
    return {"stage": "tokenize", "features": str(Path(out_dir).resolve()), "key": key,
            "splits": {n: len(f) for n, f in features.items()}}


def _check_features(params: TokenClassificationParams, meta: dict[str, Any], data_dir: str | Path, where: str) -> None:
    expected = {"max_seq_length": params.max_seq_length, "stride": params.stride,
                "subword_labels": params.subword_labels, "tokenizer": tokenizer_fingerprint(params.model),
                "data_fingerprint": dataset_fingerprint(data_dir)}
    stale = [k for k, v in expected.items() if meta.get(k) != v]
    if stale:
        raise TokclfError(
            f"the features were made for other settings or data ({', '.join(stale)} differ)", where=where,
            fix="rerun the tokenize stage (`dvc repro tokenize` or `tokclf stage tokenize`).",
        )


# --- train --------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _training_dir(target: Path) -> Iterator[tuple[Path, bool]]:
    """(folder to train in, whether this process writes the outputs).

    One process: tokclf.core.fileio.staged_dir (a private sibling folder, moved into place on success).
    Several (torchrun, `accelerate launch`): every rank must see the same checkpoint folder, so
    it is named after the launch (MASTER_ADDR/PORT, TORCHELASTIC_RUN_ID); only rank 0 writes the
    outputs and moves the folder into place."""
    from tokclf.core.hardware import distributed_rank
    from tokclf.core.fileio import staged_dir

    rank, world = distributed_rank()
    if world == 1:
        with staged_dir(target) as out:
            yield out, True
        return
    launch = "-".join(os.environ.get(k, "") for k in ("MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID"))
    shared = target.parent / f".{target.name}.tmp-dist-{hashlib.sha256(launch.encode()).hexdigest()[:12]}"
    shared.mkdir(parents=True, exist_ok=True)
    try:
        yield shared, rank == 0
    except BaseException:
        if rank == 0:
            shutil.rmtree(shared, ignore_errors=True)
        raise
    if rank == 0:
        from tokclf.core.fileio import swap_into_place

        swap_into_place(shared, target)


@_stage
def train(params: TokenClassificationParams, *, data_dir: str | Path, features_dir: str | Path,
          report_path: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """Fine-tune on the tokenize stage's features (tokclf.training.run.fit) and write the model folder
    `out_dir` as `tokclf train` does (model, tokenizer, training_params.json, metrics.json with train
    and validation scores, training_log.json, validation_report.json, model card), plus
    pipeline_run.json (what it was trained on). Test scores are the evaluate stage's job; pushing
    is the publish stage's. Under torchrun / `accelerate launch` every rank trains (DDP) and rank 0
    alone scores and writes."""
    from tokclf.evaluation.scoring import score_sentences
    from tokclf.core.hardware import distributed_rank
    from tokclf.core.resources import resolve_model_path
    from tokclf.core.fileio import check_target, write_json
    from tokclf.text.tokenizer import load_tokenizer
    from tokclf.training.run import _tracker_env, check_runnable, eval_kwargs_for, fit, save_run, split_names

    target = Path(out_dir).expanduser().resolve()
    params = params.model_copy(update={"project_name": str(target)})
    check_runnable(params.model_copy(update={"push_to_hub": False}))
    check_target(target)
    data = load_labelled(data_dir)
    features, meta = load_features(features_dir)
    _check_features(params, meta, data_dir, str(features_dir))
    report = load_report(report_path)
    model_path = resolve_model_path(params.model)
    tokenizer = load_tokenizer(model_path)
    train_name, valid_name, _ = split_names(params, data)
    if valid_name is None:
        log.warning("no validation split: training without evaluation or early stopping")
    valid_features = features.get(valid_name) if valid_name else None
    record: dict[str, Any] = {}
    with _training_dir(target) as (out, writes), _tracker_env(params, out):
        fitted = fit(params, data=data, tokenizer=tokenizer, model_path=model_path, train_name=train_name,
                     valid_name=valid_name, train_features=features[train_name], valid_features=valid_features, out=out)
        metrics = fitted.metrics
        if writes:
            if valid_name:
                metrics["validation"] = score_sentences(fitted.model, tokenizer, data.splits[valid_name],
                                                        data.label_names, features=valid_features,
                                                        **eval_kwargs_for(params))
                metrics["validation"]["split"] = valid_name
            save_run(out, fitted, tokenizer=tokenizer, params=params, data=data, report=report, metrics=metrics,
                     model_path=model_path)
            record = {
                "run_id": uuid.uuid4().hex, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "data_fingerprint": dataset_fingerprint(data_dir), "features_key": meta.get("key"),
                "params_hash": training_params_hash(params),
            }
            write_json(out / RUN_RECORD, record)
    if not writes:
        return {"stage": "train", "model": str(target), "run_id": None, "rank": distributed_rank()[0]}
    log.info("train: model written to %s", target)
    return {"stage": "train", "model": str(target), "run_id": record["run_id"], "metrics": metrics}


# --- evaluate -----------------------------------------------------------------------------------------
SUMMARY_KEYS = ("f1", "precision", "recall", "accuracy")


def _summary(m: dict[str, Any]) -> dict[str, Any]:
    out = {k: round(float(m[k]), 6) for k in SUMMARY_KEYS if k in m}
    out["sentences"] = int(m.get("num_sentences", 0))
    out["words"] = int(m.get("num_words", 0))
    return out


@_stage
def evaluate(params: TokenClassificationParams, *, model_dir: str | Path, data_dir: str | Path,
             metrics_path: str | Path, details_path: str | Path, plots_dir: str | Path,
             features_dir: str | Path | None = None) -> dict[str, Any]:
    """Score the model on the validation and test splits (word level, windows merged) and write:
    metrics_path (metrics.json: F1/P/R/accuracy of the main split - test when there is one - at the
    top, then per split, then training figures: what `dvc metrics`/`dvc exp show` compare),
    details_path (full scores with per-type P/R/F1/support, which split is which, the model run),
    plots_dir (training curves per step, per-type F1, word-level confusion pairs, and PNGs of them)."""
    from tokclf.evaluation.scoring import load_trained, predict_words
    from tokclf.evaluation.metrics import compute_metrics
    from tokclf.evaluation.plots import confusion_rows, render_pngs, training_curves
    from tokclf.training.run import split_names

    model_dir = Path(model_dir).expanduser().resolve()
    model, tokenizer, model_labels, saved = load_trained(model_dir)
    data = load_labelled(data_dir)
    if model_labels is not None and data.label_names is not None and list(model_labels) != list(data.label_names):
        raise TokclfError(
            f"the model's labels ({len(model_labels)}) are not the data's ({len(data.label_names)}) in the same order",
            where=str(model_dir), fix="evaluate a model trained on this data (rerun the train stage).",
        )
    features: dict[str, Any] = {}
    if features_dir is not None and Path(features_dir, FEATURES_META).is_file():
        loaded, meta = load_features(features_dir)
        try:
            _check_features(params, meta, data_dir, str(features_dir))
            features = loaded
        except TokclfError:
            log.info("evaluate: features in %s do not match; tokenizing again", features_dir)
    _, valid_name, test_name = split_names(params, data)
    roles = [(role, name) for role, name in (("validation", valid_name), ("test", test_name)) if name]
    if not roles:
        raise TokclfError("nothing to evaluate: the data has neither a validation nor a test split",
                          fix="set valid_split / validation_split_ratio or provide a test split.")
    scores: dict[str, dict[str, Any]] = {}
    predictions: dict[str, list[list[int]]] = {}
    for role, name in roles:
        sentences = data.splits[name]
        pred = predict_words(model, tokenizer, sentences, max_seq_length=params.max_seq_length, stride=params.stride,
                             batch_size=max(params.batch_size, 32), mixed_precision=params.mixed_precision,
                             features=features.get(name))
        scores[role] = {**compute_metrics(sentences[TAGS], pred, data.label_names), "split": name}
        predictions[role] = pred
    main = "test" if "test" in scores else "validation"
    trained = json.loads((model_dir / "metrics.json").read_text(encoding="utf-8")) if (model_dir / "metrics.json").is_file() else {}
    run = json.loads((model_dir / RUN_RECORD).read_text(encoding="utf-8")) if (model_dir / RUN_RECORD).is_file() else {}
    metrics: dict[str, Any] = {**_summary(scores[main])}
    for role in scores:
        metrics[role] = _summary(scores[role])
    if trained.get("train"):
        t = trained["train"]
        metrics["train"] = {k: t[k] for k in ("loss", "epochs", "steps", "runtime_s") if k in t}
    details = {
        "main_split": main, "splits": {role: s["split"] for role, s in scores.items()},
        "label_names": data.label_names, "scores": scores,
        "model": {"path": str(model_dir), "run_id": run.get("run_id"), "base_model": saved.get("model", params.model),
                  "data_fingerprint": run.get("data_fingerprint"), "params_hash": run.get("params_hash")},
    }
    from tokclf.core.fileio import write_json

    plots = Path(plots_dir).expanduser().resolve()
    with replaced_dir(plots) as tmp:
        log_history = []
        if (model_dir / "training_log.json").is_file():
            log_history = json.loads((model_dir / "training_log.json").read_text(encoding="utf-8"))
        loss_rows, eval_rows = training_curves(log_history)
        write_json(tmp / "train_loss.json", loss_rows)
        write_json(tmp / "eval_f1.json", eval_rows)
        per_type = [{"type": t, **{k: round(float(v), 6) for k, v in row.items()}}
                    for t, row in (scores[main].get("per_type") or {}).items()]
        write_json(tmp / "per_type_f1.json", per_type)
        gold = data.splits[scores[main]["split"]][TAGS]
        rows = confusion_rows(gold, predictions[main], data.label_names)
        with open(tmp / "confusion.csv", "w", encoding="utf-8", newline="") as fh:
            fh.write("actual,predicted\n")
            fh.writelines(f"{a},{p}\n" for a, p in rows)
        render_pngs(tmp, title_suffix=f"{main} split ({scores[main]['split']})")
        _write_stamp(tmp, "evaluate", run.get("run_id"))
    write_json(details_path, details)
    write_json(metrics_path, metrics)
    log.info("evaluate: %s F1 %.4f (%s)", main, metrics["f1"], metrics_path)
    return {"stage": "evaluate", "metrics": metrics, "main_split": main, "metrics_path": str(Path(metrics_path).resolve()),
            "plots": str(plots), "run_id": run.get("run_id")}


# --- publish ------------------------------------------------------------------------------------------
def publish(params: TokenClassificationParams, *, model_dir: str | Path, out_path: str | Path,
            retries: int = 0) -> dict[str, Any]:
    """Push the model folder to the Hub (tokclf.publishing.hub: quality gate, verified upload, the token
    never written) when push_to_hub is true; otherwise a no-op. Either way `out_path` records what
    happened (no token in it). Transient Hub errors raise tokclf.publishing.hub.HubTransientError, which
    the Prefect task retries with backoff; `retries` retries in-process (the CLI)."""
    from tokclf.core.fileio import write_json

    if not params.push_to_hub:
        record: dict[str, Any] = {"status": "skipped", "reason": "push_to_hub is false: nothing published",
                                  "repo_id": None}
    else:
        from tokclf.publishing.hub import publish_from_params

        record = publish_from_params(Path(model_dir).expanduser().resolve(), params, retries=retries).to_dict()
    write_json(out_path, record)
    log.info("publish: %s (%s)", record["status"], record["reason"])
    return {"stage": "publish", **record}


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
                          fix="run the flow with workdir set to the repository root.")
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    done = []
    commands = [["commit", "-f", "-q"]] + ([["push", "-q"]] if push else [])
    for args in commands:
        proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=base, env=env, capture_output=True,
                              text=True, timeout=timeout_s)
        if proc.returncode != 0:
            raise TokclfError(f"`dvc {' '.join(args)}` failed: {(proc.stderr or proc.stdout).strip()[-2000:]}",
                              where=str(base), fix="run the command by hand to see the details.")
        done.append("dvc " + " ".join(args))
    return {"root": str(base), "commands": done, "lock": str(base / "dvc.lock")}
