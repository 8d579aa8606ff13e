"""The pipeline's stages: one library entry point per step, each with explicit input and output paths.

    ingest    data_path (CSV/JSON/Parquet/CoNLL/CoNLL-U/HF disk/Hub id)
              -> data/raw (byte copy of the source, versioned by DVC) + data/prepared (normalised)
    validate  data/prepared -> data/validated (+ BIO repair when asked) + reports/validation_report.json;
              hard errors write the report, then raise ValidationFailed (the pipeline stops)
    tokenize  data/validated -> data/features (aligned, windowed features of every split)
    train     data/validated + data/features -> the model folder (project_name)
    evaluate  model + data -> reports/metrics.json, reports/evaluation.json (per type), reports/plots/
    publish   model -> the Hub (tokclf.publishing.hub, quality-gated), or a no-op when push_to_hub
              is false; reports/publish.json says which

`dvc.yaml` runs each through `tokclf stage <name>` (tokclf.cli.pipeline) and `tasks/` wraps each
in a Prefect task: both call these functions, which is where all logic lives. Paths:
`tokclf.pipeline.paths`; content keys and stamps: `tokclf.pipeline.keys`; the datasets stages hand
to each other: `tokclf.pipeline.store`. Folders a stage writes are replaced atomically (written
beside, renamed into place) and carry a hidden stamp holding the stage's cache key.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from tokclf.core.columns import TAGS
from tokclf.core.errors import DataError, TokclfError
from tokclf.core.fileio import write_json
from tokclf.core.params import TokenClassificationParams
from tokclf.pipeline.keys import (
    dataset_fingerprint,
    ingest_key,
    tokenize_key,
    tokenizer_fingerprint,
    training_params_hash,
    validate_key,
    write_stamp,
)
from tokclf.pipeline.paths import FEATURES_META, RUN_RECORD, STAMP
from tokclf.pipeline.store import (
    check_features,
    load_features,
    load_labelled,
    load_report,
    replaced_dir,
    save_dataset_dict,
    save_labelled,
)

log = logging.getLogger("tokclf")


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


# --- ingest -------------------------------------------------------------------------------------------
def snapshot_source(data_path: str, raw_dir: Path) -> Path:
    """Copy the data source as it is into `raw_dir` (a Hub dataset is saved with save_to_disk);
    returns the path inside `raw_dir` to read it from."""
    from tokclf.core.resources import resolve_data_path
    from tokclf.data import hf

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


def _name_sources(data: Any, names: dict[str, str]) -> Any:
    """Snapshot paths -> the sources as the user named them, in sources and the alignment report
    (longest path first: a snapshot folder is a prefix of its files). The SOURCE column is written
    with the user's names by the reader (`source_names`), not rewritten here: that would copy
    every split in memory."""
    order = sorted(names, key=len, reverse=True)

    def rename(text: str) -> str:
        for snap in order:
            text = text.replace(snap, names[snap])
        return text

    data.sources = {k: rename(v) for k, v in data.sources.items()}
    data.annotations = json.loads(rename(json.dumps(data.annotations)))
    return data


@_stage
def ingest(params: TokenClassificationParams, *, raw_dir: str | Path, out_dir: str | Path,
           source_name: str | list[str] | None = None) -> dict[str, Any]:
    """Source -> `raw_dir` (a byte copy: what DVC versions) and `out_dir` (normalised sentences with
    integer tags per split, label names, sources). Reads the copy, so the prepared data is exactly
    what was versioned; messages name the source as `source_name` (default: data_path as given),
    so the outputs do not depend on where the project folder is."""
    from tokclf.core.resources import resolve_data_path
    from tokclf.data.ingest import disk_sink, load_from_params

    raw_target = Path(raw_dir).expanduser().resolve()
    paths = [params.data_path] if isinstance(params.data_path, str) else list(params.data_path)
    for path in paths:
        resolved = Path(resolve_data_path(path)).expanduser()
        if resolved.exists() and (resolved.resolve() == raw_target or raw_target in resolved.resolve().parents):
            raise DataError(f"data_path {path!r} is inside {raw_target}, which the ingest stage rewrites",
                            where="data_path", fix="keep source data outside data/raw (e.g. data/source/).", code="E7006")
    key = ingest_key(params)
    given = source_name or params.data_path
    shown_list = [given] if isinstance(given, str) else list(given)
    with replaced_dir(raw_target) as raw_tmp:
        if len(paths) == 1:
            read_list = [snapshot_source(paths[0], raw_tmp)]
        else:  # several sources: one sub-folder each, in order
            read_list = []
            for i, path in enumerate(paths):
                (raw_tmp / f"source-{i}").mkdir()
                read_list.append(snapshot_source(path, raw_tmp / f"source-{i}"))
        read_from = read_list[0]
        write_stamp(raw_tmp, "ingest", key, source=given if isinstance(given, str) else " + ".join(shown_list))
        with replaced_dir(out_dir) as out:
            # Splits are written batch by batch to a scratch folder as they are read, then into
            # place (through a carved split's indices when there is one); memory holds a batch.
            scratch = out / ".ingest-parts"
            shown = dict(zip(map(str, read_list), map(str, shown_list)))
            data = load_from_params(
                params, data_path=str(read_from) if len(read_list) == 1 else [str(p) for p in read_list],
                sink=disk_sink(scratch), source_names=shown,
            )
            # Messages name the user's source, not the snapshot (the SOURCE column already does).
            data = _name_sources(data, shown)
            save_labelled(data, out)
            shutil.rmtree(scratch, ignore_errors=True)
            write_stamp(out, "ingest", key)
    splits = {name: len(ds) for name, ds in data.splits.items()}
    log.info("ingest: %s -> %s %s", params.data_path, out_dir, splits)
    return {"stage": "ingest", "raw": str(raw_target), "data": str(Path(out_dir).resolve()), "key": key,
            "splits": splits, "labels": data.label_names}


@_stage
def validate(params: TokenClassificationParams, *, data_dir: str | Path, out_dir: str | Path,
             report_path: str | Path) -> dict[str, Any]:
    """Check the prepared data (tokclf.data.validation): the report is always written; hard errors then
    raise ValidationFailed and nothing else is written; otherwise the data (BIO-repaired when
    repair_bio) goes to `out_dir` for tokenize, train and evaluate."""
    from tokclf.core.resources import resolve_model_path
    from tokclf.data.validation import validate_data
    from tokclf.text.tokenizer import load_tokenizer

    key = validate_key(params, data_dir)
    data = load_labelled(data_dir)
    tokenizer = load_tokenizer(resolve_model_path(params.model))
    data, report = validate_data(
        data, train_split=params.train_split, valid_split=params.validation_split(), test_split=params.test_split,
        repair_bio=params.repair_bio, tokenizer=tokenizer, max_seq_length=params.max_seq_length,
    )
    report.write_json(report_path)
    report.raise_for_errors(str(report_path))
    with replaced_dir(out_dir) as out:
        save_labelled(data, out)
        write_stamp(out, "validate", key)
    log.info("validate: %d warning(s), report %s", len(report.warnings), report_path)
    return {"stage": "validate", "data": str(Path(out_dir).resolve()), "report": str(Path(report_path).resolve()),
            "key": key, "warnings": len(report.warnings), "repaired": report.repaired,
            "data_fingerprint": dataset_fingerprint(out_dir)}


# --- tokenize -----------------------------------------------------------------------------------------
@_stage
def tokenize(params: TokenClassificationParams, *, data_dir: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """Validated sentences -> model features of every split (tokclf.text.features.tokenize_split: windows
    for long sentences, labels aligned on the train split), saved with save_to_disk."""
    from tokclf.core.resources import resolve_model_path
    from tokclf.text.features import feature_shards
    from tokclf.text.tokenizer import load_tokenizer

    key = tokenize_key(params, data_dir)
    data = load_labelled(data_dir)
    tokenizer = load_tokenizer(resolve_model_path(params.model))
    from tokclf.text.alignment import split_strategy_record

    strategy = split_strategy_record(params.subword_labels, tokenizer, data.splits.get(params.train_split))
    # Each split's features are made and written a shard at a time (tokclf.text.features.feature_shards):
    # memory holds one shard, whatever the split's size.
    shards = {
        name: (feature_shards(
            ds, tokenizer, max_seq_length=params.max_seq_length, stride=params.stride, strategy=strategy["chosen"],
            label_names=data.label_names, with_labels=name == params.train_split,
            document_context=params.document_context,
        ), None)
        for name, ds in data.splits.items()
    }
    with replaced_dir(out_dir) as out:
        features = save_dataset_dict(shards, out)
        write_json(out / FEATURES_META, {
            "key": key, "tokenizer": tokenizer_fingerprint(params.model),
            "max_seq_length": params.max_seq_length, "stride": params.stride, "subword_labels": params.subword_labels,
            "document_context": params.document_context,
            "subword_labels_chosen": strategy,
            "train_split": params.train_split, "data_fingerprint": dataset_fingerprint(data_dir),
            "splits": {n: {"sentences": len(data.splits[n]), "features": f} for n, f in features.items()},
        })
        write_stamp(out, "tokenize", key)
    log.info("tokenize: %s", features)
    return {"stage": "tokenize", "features": str(Path(out_dir).resolve()), "key": key, "splits": features}



# --- train --------------------------------------------------------------------------------------------
@_stage
def train(params: TokenClassificationParams, *, data_dir: str | Path, features_dir: str | Path,
          report_path: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """Fine-tune on the tokenize stage's features through the one training path
    (`tokclf.training.run.run_training`) and write the model folder `out_dir` as `tokclf train`
    does, plus pipeline_run.json (what it was trained on). Test scores are the evaluate stage's
    job; pushing is the publish stage's. Under torchrun / `accelerate launch` every rank trains
    (DDP) and rank 0 alone scores and writes."""
    from tokclf.core.fileio import check_target
    from tokclf.core.hardware import distributed_rank
    from tokclf.core.resources import resolve_model_path
    from tokclf.text.tokenizer import load_tokenizer
    from tokclf.training.run import check_runnable, run_training

    target = Path(out_dir).expanduser().resolve()
    params = params.model_copy(update={"project_name": str(target)})
    check_runnable(params.model_copy(update={"push_to_hub": False}))
    check_target(target)
    data = load_labelled(data_dir)
    features, meta = load_features(features_dir)
    check_features(params, meta, data_dir, str(features_dir))
    report = load_report(report_path)
    model_path = resolve_model_path(params.model)
    tokenizer = load_tokenizer(model_path)
    record: dict[str, Any] = {
        "run_id": uuid.uuid4().hex, "data_fingerprint": dataset_fingerprint(data_dir), "features_key": meta.get("key"),
        "params_hash": training_params_hash(params),
    }

    def write_record(folder: Path, metrics: dict[str, Any]) -> None:
        record["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        write_json(folder / RUN_RECORD, record)

    # How the tokenize stage aligned the labels (its features meta), recorded with the model.
    result = run_training(params, data=data, report=report, tokenizer=tokenizer, model_path=model_path,
                          features=features, subword_labels_chosen=meta.get("subword_labels_chosen"), target=target,
                          score_test=False, on_saved=write_record)
    if not result.wrote:
        return {"stage": "train", "model": str(target), "run_id": None, "rank": distributed_rank()[0]}
    log.info("train: model written to %s", target)
    return {"stage": "train", "model": str(target), "run_id": record["run_id"], "metrics": result.metrics}


# --- evaluate -----------------------------------------------------------------------------------------
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
    from tokclf.evaluation.metrics import compute_metrics
    from tokclf.evaluation.plots import confusion_rows, render_pngs, training_curves
    from tokclf.evaluation.scoring import predict_words
    from tokclf.inference.loading import load_trained

    model_dir = Path(model_dir).expanduser().resolve()
    model, tokenizer, model_labels, saved = load_trained(model_dir)
    data = load_labelled(data_dir)
    if model_labels is not None and data.label_names is not None and list(model_labels) != list(data.label_names):
        raise TokclfError(
            f"the model's labels ({len(model_labels)}) are not the data's ({len(data.label_names)}) in the same order",
            where=str(model_dir), fix="evaluate a model trained on this data (rerun the train stage).", code="E7007",
        )
    features: dict[str, Any] = {}
    if features_dir is not None and Path(features_dir, FEATURES_META).is_file():
        loaded, meta = load_features(features_dir)
        try:
            check_features(params, meta, data_dir, str(features_dir))
            features = loaded
        except TokclfError:
            log.info("evaluate: features in %s do not match; tokenizing again", features_dir)
    _, valid_name, test_name = params.split_roles(data.splits)
    roles = [(role, name) for role, name in (("validation", valid_name), ("test", test_name)) if name]
    if not roles:
        raise TokclfError("nothing to evaluate: the data has neither a validation nor a test split",
                          fix="set valid_split / validation_split_ratio or provide a test split.", code="E7008")
    scores: dict[str, dict[str, Any]] = {}
    predictions: dict[str, list[list[int]]] = {}
    for role, name in roles:
        sentences = data.splits[name]
        pred = predict_words(model, tokenizer, sentences, max_seq_length=params.max_seq_length, stride=params.stride,
                             mixed_precision=params.mixed_precision,
                             features=features.get(name), label_names=data.label_names, decoding=params.decoding,
                             document_context=params.document_context)
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
        write_stamp(tmp, "evaluate", run.get("run_id"))
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
    if not params.push_to_hub:
        record: dict[str, Any] = {"status": "skipped", "reason": "push_to_hub is false: nothing published",
                                  "repo_id": None}
    else:
        from tokclf.publishing.hub import publish_from_params

        record = publish_from_params(Path(model_dir).expanduser().resolve(), params, retries=retries).to_dict()
    write_json(out_path, record)
    log.info("publish: %s (%s)", record["status"], record["reason"])
    return {"stage": "publish", **record}

