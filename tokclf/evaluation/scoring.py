"""Score a model on a split of normalised sentences: word level, all windows merged.

Predictions are taken at each word's first subword, in the window where the word sits farthest
from an edge, then scored with seqeval at the entity level (BIO labels) or per tag (POS-style
labels). Subword pieces are never scored.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from tokclf.data.types import TAGS

log = logging.getLogger("tokclf")


def predict_words(
    model: Any,
    tokenizer: Any,
    sentences: Any,
    *,
    max_seq_length: int,
    stride: int,
    batch_size: int = 64,
    mixed_precision: str | None = None,
    features: Any = None,
) -> list[list[int]]:
    """One predicted label id per word of every sentence."""
    from tokclf.text.features import merge_word_predictions, tokenize_split
    from tokclf.inference.forward import predict_token_ids

    if features is None:
        features = tokenize_split(
            sentences, tokenizer, max_seq_length=max_seq_length, stride=stride,
            strategy="first", label_names=None, with_labels=False,
        )
    token_ids = predict_token_ids(
        model, features, batch_size=batch_size, mixed_precision=mixed_precision,
        pad_token_id=tokenizer.pad_token_id or 0,
    )
    return merge_word_predictions(features, token_ids, len(sentences))


def score_sentences(
    model: Any,
    tokenizer: Any,
    sentences: Any,
    label_names: list[str] | None,
    **kwargs: Any,
) -> dict[str, Any]:
    from tokclf.evaluation.metrics import compute_metrics

    pred = predict_words(model, tokenizer, sentences, **kwargs)
    return compute_metrics(sentences[TAGS], pred, label_names)


def flat_scalars(metrics: dict[str, Any], prefix: str) -> dict[str, float]:
    """Scalars only (for Trainer logs / tensorboard): per-type F1 becomes `<prefix>_f1_<TYPE>`."""
    out: dict[str, float] = {}
    for key in ("precision", "recall", "f1", "accuracy"):
        if key in metrics:
            out[f"{prefix}_{key}"] = float(metrics[key])
    for name, row in (metrics.get("per_type") or {}).items():
        out[f"{prefix}_f1_{name}"] = float(row["f1"])
    return out


def load_trained(model_dir: str | Path) -> tuple[Any, Any, list[str] | None, dict[str, Any]]:
    """Model, tokenizer, label names and the run's saved params (if any) from a tokclf output."""
    from transformers import AutoModelForTokenClassification

    from tokclf.core.errors import TokclfError
    from tokclf.core.hardware import device
    from tokclf.core.resources import resolve_model_path
    from tokclf.text.tokenizer import load_tokenizer

    path = resolve_model_path(str(model_dir))
    try:
        model = AutoModelForTokenClassification.from_pretrained(path)
    except OSError as exc:
        raise TokclfError(
            f"cannot load a token-classification model from {model_dir!r}: {exc}",
            fix="pass the folder a `tokclf train` run wrote (its --project-name), or a Hub model id.",
        ) from None
    tokenizer = load_tokenizer(path)
    model.to(device())
    id2label = getattr(model.config, "id2label", None) or {}
    names = [id2label[i] for i in range(len(id2label))] if id2label else None
    # transformers fills LABEL_0.. when a model was saved without names: treat as unnamed.
    if names and all(n == f"LABEL_{i}" for i, n in enumerate(names)):
        names = None
    saved: dict[str, Any] = {}
    params_file = Path(path) / "training_params.json"
    if params_file.is_file():
        saved = json.loads(params_file.read_text(encoding="utf-8"))
    return model, tokenizer, names, saved
