"""Tags -> entities, exactly as evaluation counts them.

`tokclf.evaluation.metrics` scores with seqeval's `get_entities` (default, conlleval-compatible
mode); `get_entities` here is the same rule, written out so that predict and serve do not import
`seqeval.metrics`, whose package imports scikit-learn (~0.5 CPU s for a one-text predict).
tests/test_predict.py checks it against seqeval's on every short tag sequence of a small label set.
The rule: B-X starts an entity; I-X continues an entity of type X and starts a new one otherwise
(a stray I- after O or another type is kept, not dropped); E-X ends one, S-X is a one-word entity;
BILOU's L-/U- are read as E-/S- (`tokclf.data.schemes.as_iobes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tokclf.data.schemes import as_iobes

# seqeval's chunk boundaries, as (previous prefix, prefix) pairs; any change of type inside a
# chunk also ends it / starts a new one (seqeval's end_of_chunk / start_of_chunk).
_ENDS_AFTER = {"E", "S"}
_ENDS = {("B", "B"), ("B", "S"), ("B", "O"), ("I", "B"), ("I", "S"), ("I", "O")}
_STARTS = {"B", "S"}
_STARTS_AFTER = {("E", "E"), ("E", "I"), ("S", "E"), ("S", "I"), ("O", "E"), ("O", "I")}


def get_entities(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Entities of one tag sequence as (type, first word, last word), inclusive, like seqeval's
    `get_entities(seq)` on a flat list (unknown tags are read the same way, without its warning)."""
    prev_tag, prev_type, begin = "O", "", 0
    chunks: list[tuple[str, int, int]] = []
    for i, chunk in enumerate([*tags, "O"]):
        tag = chunk[0]
        type_ = chunk[1:].split("-", maxsplit=1)[-1] or "_"
        changed = prev_type != type_
        if prev_tag in _ENDS_AFTER or (prev_tag, tag) in _ENDS or (prev_tag not in ("O", ".") and changed):
            chunks.append((prev_type, begin, i - 1))
        if tag in _STARTS or (prev_tag, tag) in _STARTS_AFTER or (tag not in ("O", ".") and changed):
            begin = i
        prev_tag, prev_type = tag, type_
    return chunks


def tag_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Entities of one tag sequence as (type, first word, last word + 1)."""
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
