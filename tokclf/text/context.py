"""Document context (FLERT, Schweter & Akbik 2020): a sentence is fed to the model with subword
pieces of the neighbouring sentences of its document on each side, labels only on the sentence.

    [CLS] <left context pieces> <sentence pieces> <right context pieces> [SEP]

One plain concatenation in one segment, not a text pair: the pair template gives the context
its own segment only on one side (a left context would make the sentence segment B), BERT-style
models saw segment B only for next-sentence prediction, and several models (RoBERTa, DeBERTa,
MiniLM exports) have one segment type; a single run of text is also what the model saw in
pre-training and what `pipeline("token-classification")` feeds a published model. Context
pieces carry word id -1, like special tokens, so `tokclf.text.alignment` gives them label -100
and `tokclf.text.features.word_pieces` never reads a prediction from them: training, evaluation
and prediction score the sentence's words only.

Neighbours are adjacent rows of the split: row r continues row r-1 when both have the same
DOCUMENT (and SOURCE) and SENTENCE goes up by exactly one (`continues`), so shuffled or
carved rows never borrow another document's text. The split is read a shard at a time; each
shard sees at most `size` rows of the shard before it and after it (`with_neighbours`), which
is enough for `size` pieces of context from sentences of at least one piece, and keeps memory
bounded whatever the split's size.

`max_seq_length` counts the context: the sentence is never cut for context; the room left
beside it is shared between both sides (`add_context`), and a sentence that needs windows gets
none (its windows already fill the length).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from tokclf.core.columns import DOCUMENT, SENTENCE, SOURCE


def context_columns(column_names: Sequence[str]) -> list[str]:
    """The columns `continues` reads that a split has (none: no documents, no context)."""
    if DOCUMENT not in column_names or SENTENCE not in column_names:
        return []
    return [DOCUMENT, SENTENCE] + ([SOURCE] if SOURCE in column_names else [])


def continues(table: Any) -> np.ndarray:
    """link[r]: row r is the sentence right after row r-1 in the same document (link[0] False).
    A table without the document columns links nothing."""
    n = table.num_rows
    link = np.zeros(n, dtype=bool)
    if n < 2 or not context_columns(table.column_names):
        return link
    doc = table.column(DOCUMENT).to_numpy(zero_copy_only=False)
    pos = table.column(SENTENCE).to_numpy(zero_copy_only=False)
    link[1:] = (doc[1:] == doc[:-1]) & (pos[1:] == pos[:-1] + 1) & (pos[:-1] >= 0)
    if SOURCE in table.column_names:
        src = np.asarray(table.column(SOURCE).to_pylist(), dtype=object)
        link[1:] &= src[1:] == src[:-1]
    return link


def neighbour_pieces(pieces: Sequence[Sequence[int]], link: np.ndarray, size: int,
                     rows: Iterable[int]) -> tuple[list[list[int]], list[list[int]]]:
    """For each row in `rows`: (the last `size` pieces of the sentences before it in its document,
    the first `size` pieces of those after it), nearest text kept. `pieces[r]`: row r's pieces
    without special tokens; `link`: `continues` of the same rows."""
    n = len(pieces)
    lefts: list[list[int]] = []
    rights: list[list[int]] = []
    for r in rows:
        left: list[int] = []
        j = r
        while len(left) < size and j > 0 and link[j]:
            j -= 1
            left = list(pieces[j]) + left
        right: list[int] = []
        j = r
        while len(right) < size and j + 1 < n and link[j + 1]:
            j += 1
            right.extend(pieces[j])
        lefts.append(left[len(left) - size:] if len(left) > size else left)
        rights.append(right[:size])
    return lefts, rights


def add_context(ids: list[int], type_ids: list[int], word_ids: list[int | None], left: Sequence[int],
                right: Sequence[int], max_seq_length: int) -> tuple[list[int], list[int], list[int | None]]:
    """One model input with context: `left` before the sentence's first piece and `right` after its
    last (inside the special tokens, whatever the tokenizer's template), word id None on context.
    Only the room up to `max_seq_length` is used, shared evenly (a side with less context leaves
    its share to the other); the sentence is never shortened."""
    room = max_seq_length - len(ids)
    real = [k for k, w in enumerate(word_ids) if w is not None]
    if room <= 0 or not real or not (left or right):
        return ids, type_ids, word_ids
    n_left = min(len(left), max(room // 2, room - len(right)))
    n_right = min(len(right), room - n_left)
    lc, rc = list(left[len(left) - n_left:]) if n_left else [], list(right[:n_right])
    p, q = real[0], real[-1] + 1
    segment = type_ids[p] if type_ids else 0
    new_ids = ids[:p] + lc + ids[p:q] + rc + ids[q:]
    new_types = (type_ids[:p] + [segment] * len(lc) + type_ids[p:q] + [segment] * len(rc) + type_ids[q:]) if type_ids else []
    new_words = word_ids[:p] + [None] * len(lc) + word_ids[p:q] + [None] * len(rc) + word_ids[q:]
    return new_ids, new_types, new_words


def with_neighbours(tables: Iterable[Any], size: int) -> Iterator[tuple[Any, Any, Any]]:
    """(table, up to `size` rows before it, up to `size` rows after it) for each table of a split
    read in order; the neighbours are None at the split's ends. One table of look-ahead."""
    import pyarrow as pa

    it = iter(tables)
    current = next(it, None)
    tail = None
    while current is not None:
        following = next(it, None)
        after = following.slice(0, size) if following is not None else None
        yield current, tail, after
        kept = current if tail is None else pa.concat_tables([tail, current])
        tail = kept.slice(max(0, kept.num_rows - size))
        current = following
