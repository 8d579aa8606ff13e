"""Tags -> entities, exactly as evaluation counts them.

seqeval's `get_entities` (default, conlleval-compatible mode) is what `tokclf.evaluation.metrics`
scores with, so it is what predict, serve and the annotation writers use too: B-X starts an
entity; I-X continues an entity of type X and starts a new one otherwise (a stray I- after O or
another type is kept, not dropped); E-X ends one, S-X is a one-word entity; BILOU's L-/U- are read
as E-/S- (`tokclf.data.schemes.as_iobes`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from tokclf.data.schemes import as_iobes


def tag_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Entities of one tag sequence as (type, first word, last word + 1)."""
    from seqeval.metrics.sequence_labeling import get_entities

    with warnings.catch_warnings():
        # seqeval warns on tags it does not know (a label set that passed is_bio has none).
        warnings.simplefilter("ignore")
        return [(type_, first, last + 1) for type_, first, last in get_entities([as_iobes(t) for t in tags])]


def build_entities(
    tags: Sequence[str], scores: Sequence[float], text: str, spans: Sequence[tuple[int, int]]
) -> list[dict[str, Any]]:
    entities = []
    for type_, first, last in tag_spans(tags):
        start, end = spans[first][0], spans[last - 1][1]
        entities.append({
            "type": type_, "text": text[start:end], "start": start, "end": end,
            "score": round(float(np.mean(scores[first:last])), 4), "words": [first, last],
        })
    return entities

