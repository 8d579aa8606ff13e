"""Score a model on a split of normalised sentences: word level, all windows merged.

Predictions come from the inference room's one batched forward pass (`tokclf.inference.forward`:
each word's first subword, in the window where the word sits farthest from an edge) and its one
decoder (`tokclf.inference.decoding`), then are scored with seqeval at the entity level (BIO
labels) or per tag (POS-style labels). Subword pieces are never scored.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tokclf.core.columns import SOURCE, TAGS
from tokclf.inference.decoding import LEGACY_DECODING
from tokclf.inference.forward import DEFAULT_MAX_BATCH, DEFAULT_TOKEN_BUDGET

log = logging.getLogger("tokclf")


def predict_words(
    model: Any,
    tokenizer: Any,
    sentences: Any,
    *,
    max_seq_length: int,
    stride: int,
    batch_size: int = DEFAULT_MAX_BATCH,
    token_budget: int = DEFAULT_TOKEN_BUDGET,
    mixed_precision: str | None = None,
    features: Any = None,
    label_names: Sequence[str] | None = None,
    decoding: str = LEGACY_DECODING,
    document_context: int = 0,
) -> list[list[int]]:
    """One predicted label id per word of every sentence (a PyTorch model, in eval mode for the
    pass and back to its previous mode afterwards). `features`: the split already tokenized with
    the same settings (the pipeline's tokenize stage, or the run's validation features).
    `decoding` (`tokclf.inference.decoding`) uses `label_names` for the tagging scheme;
    `document_context`: pieces of neighbouring text around each sentence (tokclf.text.context)."""
    from tokclf.inference.backends import TorchBackend
    from tokclf.inference.decoding import decode_sentences
    from tokclf.inference.forward import word_probabilities
    from tokclf.text.features import tokenize_split

    if features is None:
        features = tokenize_split(
            sentences, tokenizer, max_seq_length=max_seq_length, stride=stride,
            strategy="first", label_names=None, with_labels=False, document_context=document_context,
        )
    was_training = model.training
    model.eval()
    try:
        chosen, probs = word_probabilities(
            TorchBackend(model, mixed_precision), features, len(sentences), token_budget=token_budget,
            max_batch=batch_size, pad_token_id=tokenizer.pad_token_id or 0,
        )
    finally:
        model.train(was_training)
    return [ids.tolist() for ids, _ in decode_sentences(chosen.split(probs), label_names, decoding)]


# Sentences per chunk when a split is scored: the forward pass's inputs and word probabilities
# and the predicted labels are held for one chunk at a time, never for the whole split.
SCORE_CHUNK = 8192


def score_sentences(
    model: Any,
    tokenizer: Any,
    sentences: Any,
    label_names: list[str] | None,
    *,
    features: Any = None,
    chunk_sentences: int = SCORE_CHUNK,
    **kwargs: Any,
) -> dict[str, Any]:
    """`compute_metrics` of `predict_words` against the split's gold tags, streamed: the split is
    predicted `chunk_sentences` at a time and each chunk's words go into the metric's counts
    (`tokclf.evaluation.metrics.WordScores`), so evaluating a large split during training holds
    one chunk's probabilities, never all of them."""
    import numpy as np

    from tokclf.evaluation.metrics import WordScores

    scores = WordScores(label_names)
    n = len(sentences)
    if features is None and kwargs.get("document_context") and n > chunk_sentences:
        # Chunks cut documents: tokenize the split once, with each sentence's neighbours, then
        # stream the forward pass over its features chunk by chunk.
        from tokclf.text.features import tokenize_split

        features = tokenize_split(sentences, tokenizer, max_seq_length=kwargs["max_seq_length"], stride=kwargs["stride"],
                                  strategy="first", label_names=None, with_labels=False,
                                  document_context=kwargs["document_context"])
    gold = sentences.select_columns([TAGS]).with_format("arrow")
    if features is not None:
        examples = features.select_columns(["example"]).with_format("arrow")[:].column("example").to_numpy()
        bounds = np.searchsorted(examples, np.arange(0, n + chunk_sentences, chunk_sentences).clip(max=n))
    for c, lo in enumerate(range(0, n, chunk_sentences)):
        hi = min(n, lo + chunk_sentences)
        part = sentences if (lo, hi) == (0, n) else sentences.select(range(lo, hi))
        part_features = None if features is None else _rebased(features, int(bounds[c]), int(bounds[c + 1]), lo)
        pred = predict_words(model, tokenizer, part, features=part_features, label_names=label_names, **kwargs)
        scores.add(gold[lo:hi].column(TAGS).to_pylist(), pred)
    metrics = scores.result()
    metrics["decoding"] = kwargs.get("decoding", LEGACY_DECODING)
    return metrics


def _rebased(features: Any, start: int, end: int, first_example: int) -> Any:
    """Feature rows [start, end) as a Dataset whose `example` counts from that chunk's first sentence."""
    import pyarrow.compute as pc
    from datasets import Dataset

    if (start, end) == (0, len(features)) and first_example == 0:
        return features
    table = features.with_format("arrow")[start:end]
    column = table.schema.get_field_index("example")
    return Dataset(table.set_column(column, "example", pc.subtract(table.column("example"), first_example)))


def flat_scalars(metrics: dict[str, Any], prefix: str) -> dict[str, float]:
    """Scalars only (for Trainer logs / tensorboard): per-type F1 becomes `<prefix>_f1_<TYPE>`."""
    out: dict[str, float] = {}
    for key in ("precision", "recall", "f1", "accuracy"):
        if key in metrics:
            out[f"{prefix}_{key}"] = float(metrics[key])
    for name, row in (metrics.get("per_type") or {}).items():
        out[f"{prefix}_f1_{name}"] = float(row["f1"])
    return out


def score_records(records: Sequence[Any], label_names: Sequence[str]) -> dict[str, Any] | None:
    """`compute_metrics` of predicted vs gold tags of prediction records (those that have gold),
    the way `tokclf evaluate` scores; None when no record has gold tags."""
    from tokclf.evaluation.metrics import compute_metrics

    with_gold = [r for r in records if r.gold is not None]
    if not with_gold:
        return None
    names = list(label_names)
    extra = sorted({t for r in with_gold for t in r.gold or []} - set(names))
    names += extra
    index = {n: i for i, n in enumerate(names)}
    gold = [[index[t] for t in r.gold or []] for r in with_gold]
    pred = [[index[t] for t in r.tags] for r in with_gold]
    metrics = compute_metrics(gold, pred, names)
    if extra:
        metrics["note_gold_tags"] = f"gold tags the model does not have: {', '.join(extra)}"
    return metrics


def evaluate(
    model_dir: str | Path,
    data_path: str | list[str],
    *,
    split: str = "test",
    tokens_column: str = "tokens",
    tags_column: str = "tags",
    max_samples: int | None = None,
    batch_size: int = DEFAULT_MAX_BATCH,
    mixed_precision: str | None = None,
    max_seq_length: int | None = None,
    stride: int | None = None,
    output: str | Path | None = None,
    decoding: str | None = None,
    document_context: int | None = None,
    **data_kwargs: Any,
) -> dict[str, Any]:
    """Score a trained model on one split of any data tokclf reads; word level, windows merged.

    String tags are mapped through the model's own label names, so a tag the model does not know
    is an error naming its place. `max_seq_length`/`stride` default to the training run's values;
    `batch_size` caps the rows of a batch (the forward pass also caps its tokens). `decoding`
    defaults to the training run's (`tokclf.inference.loading.decoding_setting`), and so does
    `document_context` (`context_setting`; documents as the data's reader finds them).
    """
    from tokclf.core.fileio import write_json
    from tokclf.core.hardware import check_precision
    from tokclf.data.ingest import load_labelled_data
    from tokclf.evaluation.metrics import compute_metrics
    from tokclf.inference.loading import context_setting, decoding_setting, load_trained, window_settings

    check_precision(mixed_precision)
    model, tokenizer, label_names, saved = load_trained(model_dir)
    # Span documents are scored in the record unit the model was trained on, unless told otherwise
    # (entities are never cut, so both units score the same mentions).
    if data_kwargs.get("span_records") is None:
        data_kwargs["span_records"] = saved.get("span_records", "sentence")
    context = context_setting(saved, document_context)
    if data_kwargs.get("document_column") is None and context:
        # Documents of tabular data are found as in training, unless told otherwise.
        data_kwargs["document_column"] = saved.get("document_column")
    data = load_labelled_data(
        data_path, tokens_column=tokens_column, tags_column=tags_column, train_split=split,
        valid_split=None, test_split=None, max_samples=max_samples, label_names=label_names, **data_kwargs,
    )
    sentences = data.splits[split]
    length, overlap = window_settings(saved, max_seq_length, stride)
    pred = predict_words(model, tokenizer, sentences, max_seq_length=length, stride=overlap,
                         batch_size=batch_size, mixed_precision=mixed_precision, label_names=label_names,
                         decoding=decoding_setting(saved, decoding),
                         document_context=context)
    metrics = compute_metrics(sentences[TAGS], pred, label_names)
    metrics["decoding"] = decoding_setting(saved, decoding)
    if SOURCE in sentences.column_names:
        # Several sources (tokclf.data.sources): the same scores for each source's sentences.
        row_sources, gold = sentences[SOURCE][:], sentences[TAGS][:]
        metrics["per_source"] = {}
        for src in dict.fromkeys(row_sources):
            rows = [i for i, s in enumerate(row_sources) if s == src]
            scores = compute_metrics([gold[i] for i in rows], [pred[i] for i in rows], label_names)
            metrics["per_source"][src] = {k: scores[k] for k in ("precision", "recall", "f1", "accuracy") if k in scores}
    metrics["split"] = split
    metrics["source"] = data.sources.get(split, split)
    if output is not None:
        write_json(output, metrics)
    return metrics
