"""Word tags -> subword labels, the way transformers' run_ner.py `tokenize_and_align_labels` does.

`align_labels` is the readable per-sequence rule (and the reference in tests);
`align_labels_flat` is the same rule on numpy arrays for a whole split at once, used by
`tokclf.text.features` because a Python loop per piece is the slow part of tokenizing large corpora.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

# Label id the loss ignores (torch.nn.CrossEntropyLoss ignore_index, transformers' collators pad with it).
IGNORE = -100

STRATEGIES = ("first", "all")
# subword_labels="auto" (tokclf.core.params): "first" when more than this share of the training
# words split into several pieces, else "all". Set between the corpora measured with MiniLM's
# WordPiece vocabulary (docs/accuracy.md): WNUT-16 tweets, 0.182, where "all" cost recall and
# "first" beat it and the plain recipe (the issue-13 measurement at full size), above; CoNLL-2003
# (0.131) and NCBI Disease (0.155-0.164), where "all" beat "first" by 10+ F1 points in
# bench/accuracy.py, below. Four corpora fix a range (0.164-0.182), not a precise value.
AUTO_MULTI_PIECE_SHARE = 0.17
# Words looked at to estimate the share (the first ones of the split: enough for two decimals).
_SHARE_SAMPLE_WORDS = 50_000


def build_continuation_map(label_names: Sequence[str] | None) -> dict[int, int]:
    """B-X id -> I-X id for every type that has both; empty without names.

    With strategy "all", a word tagged B-X that splits into several pieces must not label its
    later pieces B-X too: that would teach the model to start a new entity inside a word.
    """
    if not label_names:
        return {}
    index = {name: i for i, name in enumerate(label_names)}
    out: dict[int, int] = {}
    for name, i in index.items():
        if name.startswith("B-"):
            inside = index.get("I-" + name[2:])
            if inside is not None:
                out[i] = inside
    return out


def align_labels(
    word_ids: Sequence[int | None], word_tags: Sequence[int], strategy: str, continuation: dict[int, int]
) -> list[int]:
    """One label per piece: `word_ids[j]` is the word of piece j (None or a negative id for special tokens).

    "first": the first piece of each word carries the word's tag, later pieces IGNORE.
    "all": every piece carries its word's tag, except that the later pieces of a B-X word get
    `continuation[B-X]` (I-X) so the entity stays one entity.
    Special tokens always get IGNORE. A word is "continued" when the previous piece has the same
    word id, so a word cut by a window edge starts afresh in the next window.
    """
    _check_strategy(strategy)
    labels: list[int] = []
    previous: int | None = None
    for wid in word_ids:
        if wid is None or wid < 0:
            labels.append(IGNORE)
            previous = None
            continue
        tag = word_tags[wid]
        if wid != previous:
            labels.append(tag)
        elif strategy == "first":
            labels.append(IGNORE)
        else:
            labels.append(continuation.get(tag, tag))
        previous = wid
    return labels


def align_labels_flat(
    word_ids: np.ndarray,
    piece_tags: np.ndarray,
    sequence_start: np.ndarray,
    strategy: str,
    continuation: dict[int, int],
) -> np.ndarray:
    """`align_labels` over many sequences concatenated, vectorised.

    word_ids: word of each piece (-1 for special tokens), all sequences one after the other.
    piece_tags: the tag of each piece's word (any value where word_ids is -1).
    sequence_start: True where a new sequence begins (so a word id repeated across the boundary
        of two sequences is a first piece again).
    Returns int64 labels, same length.
    """
    _check_strategy(strategy)
    word_ids = np.asarray(word_ids)
    labels = np.asarray(piece_tags, dtype=np.int64).copy()
    special = word_ids < 0
    previous = np.empty_like(word_ids)
    previous[0:1] = -1
    previous[1:] = word_ids[:-1]
    later = (word_ids == previous) & ~np.asarray(sequence_start, dtype=bool) & ~special
    if strategy == "first":
        labels[later] = IGNORE
    elif continuation:
        # Lookup table id -> id (identity except B-X -> I-X); tags outside it are left alone.
        lut = np.arange(max(continuation) + 1, dtype=np.int64)
        for b, i in continuation.items():
            lut[b] = i
        idx = np.flatnonzero(later)
        tags = labels[idx]
        mapped = (tags >= 0) & (tags < lut.size)
        labels[idx[mapped]] = lut[tags[mapped]]
    labels[special] = IGNORE
    return labels


def multi_piece_share(tokenizer: Any, sentences: Sequence[Sequence[str]]) -> float:
    """Share of the words (up to the first 50,000) that `tokenizer` splits into more than one piece."""
    words: list[str] = []
    for sentence in sentences:
        words.extend(sentence)
        if len(words) >= _SHARE_SAMPLE_WORDS:
            break
    if not words:
        return 0.0
    pieces = tokenizer(words[:_SHARE_SAMPLE_WORDS], add_special_tokens=False)["input_ids"]
    return sum(len(p) > 1 for p in pieces) / len(pieces)


def choose_strategy(strategy: str, tokenizer: Any, sentences: Sequence[Sequence[str]]) -> tuple[str, float | None]:
    """(the strategy to align with, the multi-piece share it was decided on or None): "auto" picks
    "first" on text where many words split (noisy or technical text, where labelling every piece
    cost recall), "all" elsewhere; "first"/"all" are kept."""
    if strategy != "auto":
        _check_strategy(strategy)
        return strategy, None
    share = multi_piece_share(tokenizer, sentences)
    return ("first" if share > AUTO_MULTI_PIECE_SHARE else "all"), round(share, 4)


def strategy_record(strategy: str, tokenizer: Any, sentences: Sequence[Sequence[str]]) -> dict[str, Any]:
    """{"param", "chosen", "multi_piece_share"}: `choose_strategy` as runs log and record it
    (training_params.json `subword_labels_chosen`, the tokenize stage's features meta)."""
    chosen, share = choose_strategy(strategy, tokenizer, sentences)
    return {"param": strategy, "chosen": chosen, "multi_piece_share": share}


# "auto" decides on at most this many training sentences: the share of multi-piece words is a
# proportion, which this many sentences estimate to well under a point, and reading a whole
# split of millions of sentences as Python lists would defeat the bounded-memory pipeline.
AUTO_SAMPLE_SENTENCES = 20_000


def split_strategy_record(strategy: str, tokenizer: Any, train: Any) -> dict[str, Any]:
    """`strategy_record` on the first AUTO_SAMPLE_SENTENCES sentences of a train split (a
    datasets.Dataset with a tokens column, or None)."""
    from tokclf.core.columns import TOKENS

    if train is None or strategy != "auto":
        return strategy_record(strategy, tokenizer, [])
    sample = train.select(range(min(len(train), AUTO_SAMPLE_SENTENCES)))[TOKENS]
    return strategy_record(strategy, tokenizer, sample)


def _check_strategy(strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise ValueError(f"subword label strategy must be one of {STRATEGIES}, got {strategy!r}")
