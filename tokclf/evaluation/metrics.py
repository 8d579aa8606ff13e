"""Scores over words: entity-level (seqeval, conlleval-compatible) for BIO-style labels, token-level otherwise.

seqeval is imported inside the functions: the CLI starts without paying for it.
"""

from __future__ import annotations

import warnings
from collections import Counter
from typing import Any, Sequence

from tokclf.data.schemes import as_iobes, entity_types, is_bio

__all__ = ["compute_metrics", "is_bio"]


def compute_metrics(
    gold: Sequence[Sequence[int]], pred: Sequence[Sequence[int]], label_names: Sequence[str] | None
) -> dict[str, Any]:
    """Scores of predicted word labels against gold ones (label ids, one list per sentence).

    Returns a flat, JSON-serialisable dict:
        precision, recall, f1, accuracy (share of words whose label is right), scheme,
        per_type {TYPE: {precision, recall, f1, support}}, num_words, num_sentences, and `note`
        for token-level scores.

    scheme "entity" (labels pass `is_bio`): seqeval's default mode, the conlleval rules, on words.
        An entity counts when type and both boundaries match. As in conlleval, an I-X that does
        not continue an X entity (after O or another type) starts a new entity, so IOB1 data and
        sloppy predictions are scored the way CoNLL scores were always computed. L-/U- (BILOU)
        are read as E-/S-. per_type is by entity type; support = gold entities. Overall
        precision/recall/f1 are micro averages over entities.
    scheme "token" (other names, e.g. POS tags, or no names): every word is one decision.
        per_type is by tag (support = gold words with that tag); overall precision, recall and f1
        are micro averages over words, which for single-label tagging all equal accuracy.
        Without names the tags are the integer ids (as strings) and `note` says entity-level
        scores need label names.
    Empty input gives zeros, never a warning. gold/pred may be any iterables of sequences (a
    datasets Column, numpy arrays): they are read once into plain lists.
    """
    gold = [[int(v) for v in s] for s in gold]
    pred = [[int(v) for v in s] for s in pred]
    _check_shapes(gold, pred, label_names)
    num_words = sum(len(s) for s in gold)
    correct = sum(g == p for gs, ps in zip(gold, pred) for g, p in zip(gs, ps))
    base = {
        "accuracy": _ratio(correct, num_words),
        "num_words": num_words,
        "num_sentences": len(gold),
    }
    if label_names is not None and is_bio(label_names):
        return {**_entity_scores(gold, pred, label_names), **base, "scheme": "entity"}
    names = [str(i) for i in range(_num_ids(gold, pred))] if label_names is None else list(label_names)
    out = {**_token_scores(gold, pred, names), **base, "scheme": "token"}
    if label_names is None:
        out["note"] = "token-level scores over tag ids: entity-level metrics need label names (BIO tags)"
    else:
        out["note"] = "labels are not BIO: token-level scores; precision = recall = f1 = accuracy (micro average over words)"
    return out


def _entity_scores(gold: Sequence[Sequence[int]], pred: Sequence[Sequence[int]], names: Sequence[str]) -> dict[str, Any]:
    from seqeval.metrics.sequence_labeling import get_entities

    bio_names = [as_iobes(n) for n in names]
    with warnings.catch_warnings():
        # seqeval warns on tags it does not know; ours passed is_bio, so silence any noise.
        warnings.simplefilter("ignore")
        # A list of sentences is read as one sequence with "O" between sentences, so no entity
        # crosses a sentence boundary; offsets are positions in that joined sequence.
        gold_entities = set(get_entities([[bio_names[i] for i in s] for s in gold]))
        pred_entities = set(get_entities([[bio_names[i] for i in s] for s in pred]))
    hits = Counter(t for t, _, _ in gold_entities & pred_entities)
    gold_count = Counter(t for t, _, _ in gold_entities)
    pred_count = Counter(t for t, _, _ in pred_entities)

    types = entity_types(names)
    types += sorted((set(gold_count) | set(pred_count)) - set(types))
    per_type = {t: _prf(hits[t], pred_count[t], gold_count[t]) for t in types}
    overall = _prf(sum(hits.values()), len(pred_entities), len(gold_entities))
    overall.pop("support")
    return {**overall, "per_type": per_type}


def _token_scores(gold: Sequence[Sequence[int]], pred: Sequence[Sequence[int]], names: list[str]) -> dict[str, Any]:
    hits: Counter[int] = Counter()
    gold_count: Counter[int] = Counter()
    pred_count: Counter[int] = Counter()
    for gs, ps in zip(gold, pred):
        gold_count.update(gs)
        pred_count.update(ps)
        hits.update(g for g, p in zip(gs, ps) if g == p)
    per_type = {name: _prf(hits[i], pred_count[i], gold_count[i]) for i, name in enumerate(names)}
    total = sum(gold_count.values())
    micro = _ratio(sum(hits.values()), total)
    return {"precision": micro, "recall": micro, "f1": micro, "per_type": per_type}


def _prf(hits: int, predicted: int, actual: int) -> dict[str, Any]:
    precision = _ratio(hits, predicted)
    recall = _ratio(hits, actual)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1, "support": int(actual)}


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else 0.0



def _num_ids(gold: Sequence[Sequence[int]], pred: Sequence[Sequence[int]]) -> int:
    top = -1
    for seqs in (gold, pred):
        for s in seqs:
            if len(s):
                top = max(top, max(s))
    return top + 1


def _check_shapes(gold: Sequence[Sequence[int]], pred: Sequence[Sequence[int]], label_names: Sequence[str] | None) -> None:
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted ones")
    for i, (gs, ps) in enumerate(zip(gold, pred)):
        if len(gs) != len(ps):
            raise ValueError(f"sentence {i}: {len(gs)} gold labels but {len(ps)} predicted ones")
    limit = len(label_names) if label_names is not None else None
    for kind, seqs in (("gold", gold), ("predicted", pred)):
        for i, s in enumerate(seqs):
            for v in s:
                if v < 0 or (limit is not None and v >= limit):
                    allowed = f"0..{limit - 1}" if limit is not None else "non-negative ids"
                    raise ValueError(f"sentence {i}: {kind} label id {v} is not a label ({allowed})")
