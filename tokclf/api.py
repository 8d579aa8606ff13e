"""Python entry points besides `train`: check data without training, score a trained model."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("tokclf")


def validate(
    data_path: str,
    *,
    model: str | None = None,
    max_seq_length: int = 128,
    train_split: str = "train",
    valid_split: str | None = None,
    test_split: str | None = "test",
    repair_bio: bool = False,
    report_path: str | Path | None = None,
    **data_kwargs: Any,
) -> Any:
    """Read and validate data; returns the ValidationReport (hard errors are in `.errors`).

    With `model`, its tokenizer also counts the sentences longer than `max_seq_length`.
    """
    from tokclf.data.ingest import load_labelled_data
    from tokclf.data.validation import validate_data

    data = load_labelled_data(
        data_path, train_split=train_split, valid_split=valid_split, test_split=test_split, **data_kwargs
    )
    tokenizer = None
    if model is not None:
        from tokclf.core.resources import resolve_model_path
        from tokclf.text.tokenizer import load_tokenizer

        tokenizer = load_tokenizer(resolve_model_path(model))
    _, report = validate_data(
        data, train_split=train_split, valid_split=valid_split, test_split=test_split,
        repair_bio=repair_bio, tokenizer=tokenizer, max_seq_length=max_seq_length,
    )
    if report_path is not None:
        report.write_json(report_path)
    return report


def evaluate(
    model_dir: str | Path,
    data_path: str,
    *,
    split: str = "test",
    tokens_column: str = "tokens",
    tags_column: str = "tags",
    max_samples: int | None = None,
    batch_size: int = 64,
    mixed_precision: str | None = None,
    max_seq_length: int | None = None,
    stride: int | None = None,
    output: str | Path | None = None,
    **data_kwargs: Any,
) -> dict[str, Any]:
    """Score a trained model on one split of any data tokclf reads; word level, windows merged.

    String tags are mapped through the model's own label names, so a tag the model does not know
    is an error naming its place. `max_seq_length`/`stride` default to the training run's values.
    """
    from tokclf.data.ingest import load_labelled_data
    from tokclf.data.types import TAGS
    from tokclf.evaluation.scoring import load_trained, predict_words
    from tokclf.core.hardware import check_precision
    from tokclf.evaluation.metrics import compute_metrics
    from tokclf.core.fileio import write_json

    check_precision(mixed_precision)
    model, tokenizer, label_names, saved = load_trained(model_dir)
    data = load_labelled_data(
        data_path, tokens_column=tokens_column, tags_column=tags_column, train_split=split,
        valid_split=None, test_split=None, max_samples=max_samples, label_names=label_names, **data_kwargs,
    )
    sentences = data.splits[split]
    pred = predict_words(
        model, tokenizer, sentences,
        max_seq_length=max_seq_length or int(saved.get("max_seq_length", 128)),
        stride=stride if stride is not None else int(saved.get("stride", 32)),
        batch_size=batch_size, mixed_precision=mixed_precision,
    )
    metrics = compute_metrics(sentences[TAGS], pred, label_names)
    metrics["split"] = split
    metrics["source"] = data.sources.get(split, split)
    if output is not None:
        write_json(output, metrics)
    return metrics
