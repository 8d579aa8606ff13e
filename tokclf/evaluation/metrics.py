"""Scores over words: entity-level (seqeval, conlleval-compatible) for BIO-style labels, token-level otherwise.

seqeval is imported inside the functions: the CLI starts without paying for it.
"""

from __future__ import annotations

import warnings
from collections import Counter
from typing import Any, Sequence

from tokclf.data.schemes import as_iobes, entity_types, is_bio

__all__ = ["WordScores", "compute_metrics", "is_bio"]


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
    scores = WordScores(label_names)
    scores.add(gold, pred)
    return scores.result()


class WordScores:
    """`compute_metrics` accumulated over chunks of sentences: `add` each chunk's gold and
    predicted labels, then `result()` gives exactly what one call on all of them would (entities
    never cross sentences, and every count is a sum), while memory holds one chunk and the counts
    (evaluation of a large split streams its predictions in here)."""

    def __init__(self, label_names: Sequence[str] | None) -> None:
        self.label_names = None if label_names is None else list(label_names)
        self.entity = self.label_names is not None and is_bio(self.label_names)
        self.bio_names = [as_iobes(n) for n in self.label_names] if self.entity and self.label_names else []
        self.num_words = self.num_sentences = self.correct = self.top = 0
        self.hits: Counter = Counter()
        self.gold_count: Counter = Counter()
        self.pred_count: Counter = Counter()
        self.gold_total = self.pred_total = 0

    def add(self, gold: Sequence[Sequence[int]], pred: Sequence[Sequence[int]]) -> None:
        gold = [[int(v) for v in s] for s in gold]
        pred = [[int(v) for v in s] for s in pred]
        _check_shapes(gold, pred, self.label_names, first=self.num_sentences)
        self.num_words += sum(len(s) for s in gold)
        self.num_sentences += len(gold)
        self.correct += sum(g == p for gs, ps in zip(gold, pred) for g, p in zip(gs, ps))
        self.top = max(self.top, _num_ids(gold, pred))
        if self.entity:
            self._add_entities(gold, pred)
            return
        for gs, ps in zip(gold, pred):
            self.gold_count.update(gs)
            self.pred_count.update(ps)
            self.hits.update(g for g, p in zip(gs, ps) if g == p)

    def _add_entities(self, gold: list[list[int]], pred: list[list[int]]) -> None:
        from seqeval.metrics.sequence_labeling import get_entities

        with warnings.catch_warnings():
            # seqeval warns on tags it does not know; ours passed is_bio, so silence any noise.
            warnings.simplefilter("ignore")
            # A list of sentences is read as one sequence with "O" between sentences, so no entity
            # crosses a sentence boundary; offsets are positions in that joined sequence.
            gold_entities = set(get_entities([[self.bio_names[i] for i in s] for s in gold]))
            pred_entities = set(get_entities([[self.bio_names[i] for i in s] for s in pred]))
        self.hits.update(t for t, _, _ in gold_entities & pred_entities)
        self.gold_count.update(t for t, _, _ in gold_entities)
        self.pred_count.update(t for t, _, _ in pred_entities)
        self.gold_total += len(gold_entities)
        self.pred_total += len(pred_entities)

    def result(self) -> dict[str, Any]:
        base = {"accuracy": _ratio(self.correct, self.num_words), "num_words": self.num_words,
                "num_sentences": self.num_sentences}
        if self.entity:
            assert self.label_names is not None
            types = entity_types(self.label_names)
            types += sorted((set(self.gold_count) | set(self.pred_count)) - set(types))
            per_type = {t: _prf(self.hits[t], self.pred_count[t], self.gold_count[t]) for t in types}
            overall = _prf(sum(self.hits.values()), self.pred_total, self.gold_total)
            overall.pop("support")
            return {**overall, "per_type": per_type, **base, "scheme": "entity"}
        names = [str(i) for i in range(self.top)] if self.label_names is None else self.label_names
        per_type = {name: _prf(self.hits[i], self.pred_count[i], self.gold_count[i]) for i, name in enumerate(names)}
        micro = _ratio(sum(self.hits.values()), sum(self.gold_count.values()))
        out = {"precision": micro, "recall": micro, "f1": micro, "per_type": per_type, **base, "scheme": "token"}
        if self.label_names is None:
            out["note"] = "token-level scores over tag ids: entity-level metrics need label names (BIO tags)"
        else:
            out["note"] = "labels are not BIO: token-level scores; precision = recall = f1 = accuracy (micro average over words)"
        return out


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


def _check_shapes(gold: Sequence[Sequence[int]], pred: Sequence[Sequence[int]], label_names: Sequence[str] | None,
                  first: int = 0) -> None:
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted ones")
    for i, (gs, ps) in enumerate(zip(gold, pred), first):
        if len(gs) != len(ps):
            raise ValueError(f"sentence {i}: {len(gs)} gold labels but {len(ps)} predicted ones")
    limit = len(label_names) if label_names is not None else None
    for kind, seqs in (("gold", gold), ("predicted", pred)):
        for i, s in enumerate(seqs, first):
            for v in s:
                if v < 0 or (limit is not None and v >= limit):
                    allowed = f"0..{limit - 1}" if limit is not None else "non-negative ids"
                    raise ValueError(f"sentence {i}: {kind} label id {v} is not a label ({allowed})")
