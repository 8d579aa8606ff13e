"""Normalised sentences -> model features (one row per sentence, or per window of a long one), and back.

`tokenize_split` tokenizes a whole split with the Rust backend in large batches, without
truncation, so most sentences are used exactly as tokenized; only sentences longer than
`max_seq_length` are cut into overlapping windows of whole words (`tokclf.text.windows.plan_windows`)
and those windows are tokenized again. Nothing is padded: the collator pads per batch.
`tokenize_words` runs the same code on word lists and returns the columns as flat numpy arrays
(`FlatFeatures`), for predict and serve, which then need neither datasets nor pyarrow.

Feature columns (one row per window; a sentence that fits is one window):
    input_ids, attention_mask, token_type_ids (only when the tokenizer uses them): model inputs.
    labels: one per piece (`tokclf.text.alignment`), -100 on special tokens (and on non-first pieces
        with strategy "first"); only with `with_labels=True`.
    example: index of the sentence in the split.
    word_ids: for every piece, the index of its word in the *sentence* (not in the window),
        -1 on special tokens. A piece is a word's first piece when its word id differs from the
        previous piece's.
    window_start, window_end: the sentence's words [start, end) this row holds.
    length: number of pieces (specials included), for grouping batches by length.
With `document_context` > 0, a row that holds a whole sentence also holds up to that many pieces of
the neighbouring sentences of its document on each side (`tokclf.text.context`), word id -1 and
label -100 there, within max_seq_length.
Rows come in split order: example 0's windows first, left to right, then example 1's...

`word_pieces` says which piece's model output each word takes (`tokclf.inference.forward` gathers
exactly those); `merge_word_predictions` / `merge_word_probabilities` apply the same choice to
whole per-piece arrays.
"""

from __future__ import annotations

import functools
import logging
import sys
import weakref
from dataclasses import dataclass
from itertools import chain
from collections.abc import Callable, Iterator
from typing import Any, Sequence

import numpy as np

from tokclf.core.columns import TAGS, TOKENS
from tokclf.text.alignment import align_labels_flat, build_continuation_map
from tokclf.text.context import add_context, context_columns, continues, neighbour_pieces, with_neighbours
from tokclf.text.windows import plan_windows

logger = logging.getLogger(__name__)

# Sentences per call to the Rust backend: large enough that per-call overhead vanishes, small
# enough for a progress bar that moves.
_CHUNK = 4096
_PROGRESS_MIN_SENTENCES = 10_000

# Bookkeeping columns: needed to merge predictions back to words, never fed to the model (the
# collator must drop them; `length` is also what TrainingArguments.group_by_length reads by default).
BOOKKEEPING_COLUMNS = ("example", "word_ids", "window_start", "window_end", "length")


# Sentences per shard of features: a shard's Python rows (~7.5 KB per sentence) are the most a
# split ever holds at once, whatever its size.
SHARD_SENTENCES = 20_000


def tokenize_split(
    dataset: Any,
    tokenizer: Any,
    *,
    max_seq_length: int,
    stride: int,
    strategy: str,
    label_names: Sequence[str] | None,
    with_labels: bool = True,
    document_context: int = 0,
) -> Any:
    """Turn a normalised split (columns tokens, tags) into unpadded model features (see module doc),
    as one in-memory datasets.Dataset of the shards of `feature_shards`.

    max_seq_length: pieces per row including special tokens; longer sentences are windowed.
    stride: overlap between windows, in pieces (`plan_windows`).
    strategy: "first" or "all" (`tokclf.text.alignment.align_labels`).
    label_names: used to map B-X -> I-X on continuation pieces with strategy "all".
    A word the tokenizer turns into no piece at all (e.g. "\\u200b" for BERT) is fed as the
    unknown token so every word has a first piece to carry its label and prediction.
    document_context: pieces of neighbouring text of the same document on each side (0: none;
        needs the DOCUMENT and SENTENCE columns, `tokclf.text.context`).
    """
    import datasets
    import pyarrow as pa

    shards = list(feature_shards(dataset, tokenizer, max_seq_length=max_seq_length, stride=stride,
                                 strategy=strategy, label_names=label_names, with_labels=with_labels,
                                 document_context=document_context))
    return datasets.Dataset(shards[0] if len(shards) == 1 else pa.concat_tables(shards))


def feature_shards(
    dataset: Any,
    tokenizer: Any,
    *,
    max_seq_length: int,
    stride: int,
    strategy: str,
    label_names: Sequence[str] | None,
    with_labels: bool = True,
    shard_sentences: int | None = None,
    document_context: int = 0,
) -> Iterator[Any]:
    """`tokenize_split`'s features as Arrow tables of `shard_sentences` sentences each, in split
    order (`example` counts from the split's start): the tokenize stage writes them one by one."""
    from tokclf.core.arrowio import dataset_tables

    budget = _word_budget(tokenizer, max_seq_length)
    if with_labels and TAGS not in dataset.column_names:
        raise ValueError(f"with_labels=True but the dataset has no {TAGS!r} column")
    encoder = _backend_copy(tokenizer)
    n = len(dataset)
    show = n > _PROGRESS_MIN_SENTENCES or sys.stderr.isatty()
    progress = _progress(n, show)
    continuation = build_continuation_map(label_names) if with_labels else {}
    document = context_columns(dataset.column_names) if document_context > 0 else []
    columns = dataset.select_columns([TOKENS, TAGS] + document if with_labels else [TOKENS] + document)
    tables = dataset_tables(columns, shard_sentences or SHARD_SENTENCES) if n else iter([columns.with_format("arrow")[:]])
    # With document context each shard also sees the rows next to it (bounded: tokclf.text.context).
    shards = with_neighbours(tables, document_context) if document else ((t, None, None) for t in tables)
    first = 0
    # Straight from Arrow, a shard at a time (in the dataset's row order, even after select/shuffle):
    # much faster than datasets' row-by-row Column access, and bounded whatever the split's size.
    for table, before, after in shards:
        yield _shard(table, first, encoder, tokenizer, max_seq_length=max_seq_length, budget=budget, stride=stride,
                     strategy=strategy, continuation=continuation, with_labels=with_labels, progress=progress,
                     document_context=document_context if document else 0, before=before, after=after)
        first += table.num_rows
    progress.close()


def tokenize_words(
    sentences: Sequence[Sequence[str]],
    tokenizer: Any,
    *,
    max_seq_length: int,
    stride: int,
) -> "FlatFeatures":
    """`tokenize_split(..., with_labels=False)` for sentences given as word lists, as flat numpy
    arrays (`FlatFeatures`) instead of a datasets.Dataset: what predict and serve feed to the
    forward pass. The same tokenizing and windowing code as training (`_piece_arrays`), without
    importing datasets, pyarrow or pandas, which cost more CPU than tagging one text."""
    budget = _word_budget(tokenizer, max_seq_length)
    # Copies: _piece_arrays stands the unknown token in for words without a piece, in place.
    words = [list(s) for s in sentences]
    return _piece_arrays(words, None, _backend_copy(tokenizer), tokenizer, max_seq_length=max_seq_length,
                         budget=budget, stride=stride, strategy="first", continuation={}, progress=None)


@dataclass(frozen=True)
class FlatFeatures:
    """Features as flat numpy arrays: `pieces` holds the per-piece columns (input_ids,
    attention_mask, token_type_ids, labels, word_ids) of all rows concatenated, row r owning
    [offsets[r], offsets[r + 1]); `rows` the per-row columns (example, window_start, window_end,
    length). The same columns as `tokenize_split`'s (module doc); `_to_arrow` turns it into those."""

    offsets: np.ndarray
    pieces: dict[str, np.ndarray]
    rows: dict[str, np.ndarray]

    @property
    def column_names(self) -> list[str]:
        return [*self.pieces, *self.rows]

    def __len__(self) -> int:
        return len(self.offsets) - 1


def piece_columns(features: Any, names: Sequence[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(row offsets, flat int64 values) of per-piece columns `names`, from `FlatFeatures` or from
    Arrow-backed features (a datasets.Dataset of `tokenize_split`): the forward pass and
    `word_pieces` read both forms through here."""
    if isinstance(features, FlatFeatures):
        return features.offsets, {c: features.pieces[c].astype(np.int64, copy=False) for c in names}
    import pyarrow.compute as pc

    table = features.select_columns(list(names)).with_format("arrow")[:]
    lengths = pc.list_value_length(table.column(names[0])).to_numpy().astype(np.int64)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets, {c: pc.list_flatten(table.column(c)).to_numpy().astype(np.int64) for c in names}


def row_columns(features: Any, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Per-row int64 columns `names` of `FlatFeatures` or Arrow-backed features."""
    if isinstance(features, FlatFeatures):
        return {c: features.rows[c].astype(np.int64, copy=False) for c in names}
    table = features.select_columns(list(names)).with_format("arrow")[:]
    return {c: table.column(c).to_numpy().astype(np.int64) for c in names}


def _word_budget(tokenizer: Any, max_seq_length: int) -> int:
    """Pieces of words a row holds: max_seq_length less the tokenizer's special tokens."""
    budget = max_seq_length - tokenizer.num_special_tokens_to_add(pair=False)
    if budget < 1:
        raise ValueError(f"max_seq_length={max_seq_length} leaves no room for words after the special tokens")
    return budget


def _shard(table: Any, first: int, encoder: Any, tokenizer: Any, *, max_seq_length: int, budget: int, stride: int,
           strategy: str, continuation: dict[int, int], with_labels: bool, progress: Any,
           document_context: int = 0, before: Any = None, after: Any = None) -> Any:
    """Features of one shard of sentences (an Arrow table; `first`: the split index of its first);
    `before`/`after`: the rows next to the shard, read for document context only."""
    context = None
    if document_context:
        context = functools.partial(_with_document_context, table=table, before=before, after=after, encoder=encoder,
                                    size=document_context, max_seq_length=max_seq_length)
    flat = _piece_arrays(table.column(TOKENS).to_pylist(), table.column(TAGS) if with_labels else None, encoder,
                         tokenizer, max_seq_length=max_seq_length, budget=budget, stride=stride, strategy=strategy,
                         continuation=continuation, progress=progress, context=context)
    return _to_arrow(flat, first)


def _piece_arrays(sentences: list[list[str]], tags: Any, encoder: Any, tokenizer: Any, *, max_seq_length: int,
                  budget: int, stride: int, strategy: str, continuation: dict[int, int], progress: Any,
                  context: Callable[[list[Any], list[list[int]]], list[Any]] | None = None) -> FlatFeatures:
    """Features of `sentences` (modified in place where a word has no piece) as flat arrays;
    `tags`: their Arrow column of tag-id lists to align labels from, or None for no labels;
    `context(rows, own_pieces)`: the rows with document context added (`_with_document_context`)."""
    n = len(sentences)
    unk = tokenizer.unk_token
    # Per feature: (example, window_start, window_end, ids, type_ids, word_ids with None).
    rows: list[tuple[int, int, int, list[int], list[int], list[int | None]]] = []
    pending: list[tuple[int, int, int]] = []  # windows still to tokenize: (row index, start, end)
    own_pieces: list[list[int]] = []  # each sentence's pieces without specials (document context)
    replaced = 0
    for lo in range(0, n, _CHUNK):
        chunk = sentences[lo:lo + _CHUNK]
        encodings = encoder.encode_batch(chunk, is_pretokenized=True, add_special_tokens=True)
        for offset, enc in enumerate(encodings):
            i = lo + offset
            words = chunk[offset]
            word_ids = enc.word_ids
            if len(set(word_ids) - {None}) < len(words) and unk is not None:
                # Some word produced no piece: stand the unknown token in for it and redo the sentence.
                words, count = _fill_empty_words(words, word_ids, unk)
                replaced += count
                sentences[i] = words
                enc = encoder.encode(words, is_pretokenized=True, add_special_tokens=True)
                word_ids = enc.word_ids
            if context is not None:
                own_pieces.append([t for t, w in zip(enc.ids, word_ids) if w is not None])
            if len(enc.ids) <= max_seq_length:
                rows.append((i, 0, len(words), enc.ids, enc.type_ids, word_ids))
                continue
            pieces = np.bincount([w for w in word_ids if w is not None], minlength=len(words)).tolist()
            for start, end in plan_windows(pieces, budget, stride):
                pending.append((len(rows), start, end))
                rows.append((i, start, end, [], [], []))
        if progress is not None:
            progress.update(len(chunk))
    if replaced:
        logger.warning("%d word(s) produce no subword token with this tokenizer; they are fed as %s", replaced, unk)

    if pending:
        # Windows of long sentences, re-tokenized with truncation on: only a window made of one
        # word longer than the budget is cut (inside that word; its first piece stays).
        # The copy is cached per tokenizer, so truncation is switched off again afterwards.
        encoder.enable_truncation(max_length=max_seq_length)
        try:
            window_words = [sentences[rows[r][0]][s:e] for r, s, e in pending]
            for lo in range(0, len(window_words), _CHUNK):
                encodings = encoder.encode_batch(window_words[lo:lo + _CHUNK], is_pretokenized=True, add_special_tokens=True)
                for (r, start, end), enc in zip(pending[lo:lo + _CHUNK], encodings):
                    local = enc.word_ids
                    rows[r] = (rows[r][0], start, end, enc.ids, enc.type_ids,
                               [None if w is None else w + start for w in local])
        finally:
            encoder.no_truncation()
    logger.debug("%d sentences -> %d features (%d windows of long sentences)", n, len(rows), len(pending))
    if context is not None:
        rows = context(rows, own_pieces)

    lengths = np.fromiter((len(r[3]) for r in rows), dtype=np.int64, count=len(rows))
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    total = int(offsets[-1])
    examples = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    word_ids = np.fromiter(
        (-1 if w is None else w for w in chain.from_iterable(r[5] for r in rows)), dtype=np.int64, count=total
    )
    columns: dict[str, Any] = {
        "input_ids": np.fromiter(chain.from_iterable(r[3] for r in rows), dtype=np.int64, count=total),
        "attention_mask": np.ones(total, dtype=np.int64),
    }
    if "token_type_ids" in tokenizer.model_input_names:
        columns["token_type_ids"] = np.fromiter(chain.from_iterable(r[4] for r in rows), dtype=np.int64, count=total)
    if tags is not None:
        columns["labels"] = _labels(tags, sentences, examples, lengths, offsets, word_ids,
                                    strategy, continuation)
    columns["word_ids"] = word_ids

    per_row = {
        "example": examples,
        "window_start": np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows)),
        "window_end": np.fromiter((r[2] for r in rows), dtype=np.int64, count=len(rows)),
        "length": lengths,
    }
    return FlatFeatures(offsets=offsets, pieces=columns, rows=per_row)


def _to_arrow(flat: FlatFeatures, first: int) -> Any:
    """`FlatFeatures` as the Arrow table of a feature shard, `example` counted from `first`."""
    import pyarrow as pa

    # Build the Arrow lists straight from flat arrays + row offsets: no per-row Python objects.
    arrow_offsets = pa.array(flat.offsets.astype(np.int32))
    out = {name: pa.ListArray.from_arrays(arrow_offsets, pa.array(values)) for name, values in flat.pieces.items()}
    out["example"] = pa.array(flat.rows["example"] + first)
    for name in ("window_start", "window_end", "length"):
        out[name] = pa.array(flat.rows[name])
    return pa.table(out)


def _with_document_context(rows: list[Any], own: list[list[int]], *, table: Any, before: Any, after: Any, encoder: Any,
                           size: int, max_seq_length: int) -> list[Any]:
    """`rows` with context pieces around every row that holds a whole sentence (tokclf.text.context)."""
    import pyarrow as pa

    def pieces_of(part: Any) -> list[list[int]]:
        if part is None or part.num_rows == 0:
            return []
        encodings = encoder.encode_batch(part.column(TOKENS).to_pylist(), is_pretokenized=True, add_special_tokens=False)
        return [enc.ids for enc in encodings]

    names = context_columns(table.column_names)
    parts = [p.select(names) for p in (before, table, after) if p is not None and p.num_rows]
    link = continues(pa.concat_tables(parts)) if len(parts) > 1 else continues(table.select(names))
    head = pieces_of(before)
    pieces = head + own + pieces_of(after)
    lefts, rights = neighbour_pieces(pieces, link, size, range(len(head), len(head) + len(own)))
    windows = np.bincount([row[0] for row in rows], minlength=len(own))
    out = []
    for i, start, end, ids, type_ids, word_ids in rows:
        if windows[i] == 1:  # a sentence cut into windows already fills max_seq_length: no context
            ids, type_ids, word_ids = add_context(ids, type_ids, word_ids, lefts[i], rights[i], max_seq_length)
        out.append((i, start, end, ids, type_ids, word_ids))
    return out


def _labels(
    tags: Any,
    sentences: list[list[str]],
    examples: np.ndarray,
    lengths: np.ndarray,
    offsets: np.ndarray,
    word_ids: np.ndarray,
    strategy: str,
    continuation: dict[int, int],
) -> np.ndarray:
    """Labels of every piece of every row, concatenated (vectorised `align_labels`).

    tags: the Arrow column of per-sentence tag lists.
    """
    import pyarrow.compute as pc

    tag_counts = pc.list_value_length(tags).to_numpy(zero_copy_only=False).astype(np.int64)
    word_counts = np.fromiter((len(s) for s in sentences), dtype=np.int64, count=len(sentences))
    if not np.array_equal(tag_counts, word_counts):
        bad = int(np.flatnonzero(tag_counts != word_counts)[0])
        raise ValueError(f"sentence {bad} has {word_counts[bad]} words but {tag_counts[bad]} tags")
    tag_offsets = np.zeros(len(tag_counts), dtype=np.int64)
    np.cumsum(tag_counts[:-1], out=tag_offsets[1:])
    all_tags = pc.list_flatten(tags).to_numpy().astype(np.int64)
    piece_example = np.repeat(examples, lengths)
    real = word_ids >= 0
    piece_tags = np.full(word_ids.shape, -100, dtype=np.int64)
    piece_tags[real] = all_tags[tag_offsets[piece_example[real]] + word_ids[real]]
    sequence_start = np.zeros(word_ids.shape, dtype=bool)
    sequence_start[offsets[:-1][lengths > 0]] = True
    return align_labels_flat(word_ids, piece_tags, sequence_start, strategy, continuation)


_BACKEND_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _backend_copy(tokenizer: Any) -> Any:
    """A private copy of the Rust tokenizer with truncation and padding off, made once per
    tokenizer (rebuilding it costs ~27 ms, which caps a server's request rate).

    Saved tokenizer.json files often carry truncation/padding settings (MiniLM's pads to 128),
    and the transformers wrapper changes them on every call; a copy keeps both sides independent.
    """
    try:
        return _BACKEND_COPIES[tokenizer]
    except (KeyError, TypeError):
        pass
    copy = _make_backend_copy(tokenizer)
    try:
        _BACKEND_COPIES[tokenizer] = copy
    except TypeError:  # not weak-referenceable: no caching
        pass
    return copy


def _make_backend_copy(tokenizer: Any) -> Any:
    from tokenizers import Tokenizer

    backend = tokenizer.backend_tokenizer
    copy = Tokenizer.from_str(backend.to_str())
    copy.no_truncation()
    copy.no_padding()
    copy.encode_special_tokens = backend.encode_special_tokens
    return copy


def _fill_empty_words(words: list[str], word_ids: list[int | None], unk: str) -> tuple[list[str], int]:
    seen = set(word_ids)
    filled = [w if i in seen else unk for i, w in enumerate(words)]
    return filled, sum(1 for i in range(len(words)) if i not in seen)


def _progress(total: int, show: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, disable=not show, desc="Tokenizing", unit=" sentences", leave=False)


# ------------------------------------------------------------------------------------------------
# Back from pieces to words
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WordPieces:
    """For every word of every sentence that has a piece: the (row, position) of the piece whose
    model output is the word's (see `word_pieces`).

    n_words: words per example; rows, positions, flat_word: aligned arrays, one entry per word that
    has a piece (flat_word indexes all sentences' words concatenated)."""

    n_words: np.ndarray
    rows: np.ndarray
    positions: np.ndarray
    flat_word: np.ndarray

    @property
    def total_words(self) -> int:
        return int(self.n_words.sum())

    def split(self, values: np.ndarray) -> list[np.ndarray]:
        """Per-word values (all sentences concatenated) -> one array per example."""
        bounds = np.cumsum(self.n_words)[:-1]
        return np.split(values, bounds) if len(self.n_words) else []


def merge_word_predictions(
    features: Any, token_predictions: Any, num_examples: int, *, fill: int = 0
) -> list[list[int]]:
    """One predicted label id per word of every sentence, from per-piece predictions.

    token_predictions: (num_features, padded_len) label ids, rows in the order of `features`
        (padding positions are never read). The piece each word reads is `word_pieces`'s.
    Returns lists indexed by example (0..num_examples-1); a word with no piece at all (a
    tokenizer without an unknown token) gets `fill`.
    """
    preds = np.asarray(token_predictions)
    chosen = word_pieces(features, num_examples)
    _check_shape(chosen, len(features), preds.shape)
    out = np.full(chosen.total_words, fill, dtype=np.int64)
    out[chosen.flat_word] = preds[chosen.rows, chosen.positions]
    return [part.tolist() for part in chosen.split(out)]


def merge_word_probabilities(features: Any, token_probs: Any, num_examples: int) -> list[np.ndarray]:
    """Like `merge_word_predictions` for scores: token_probs (num_features, padded_len, K) ->
    one (num_words, K) array per sentence (rows of words without any piece are uniform 1/K)."""
    probs = np.asarray(token_probs)
    if probs.ndim != 3:
        raise ValueError(f"token_probs must be (num_features, padded_len, num_labels), got shape {probs.shape}")
    chosen = word_pieces(features, num_examples)
    _check_shape(chosen, len(features), probs.shape[:2])
    k = probs.shape[2]
    out = np.full((chosen.total_words, k), 1.0 / k if k else 0.0, dtype=probs.dtype if probs.dtype.kind == "f" else np.float32)
    out[chosen.flat_word] = probs[chosen.rows, chosen.positions]
    return chosen.split(out)


def _check_shape(chosen: WordPieces, num_rows: int, pred_shape: tuple[int, ...]) -> None:
    if len(pred_shape) < 2 or pred_shape[0] != num_rows:
        raise ValueError(f"predictions have shape {pred_shape}, expected ({num_rows}, padded_len) for {num_rows} features")
    if chosen.positions.size and chosen.positions.max() >= pred_shape[1]:
        raise ValueError(f"a feature has {chosen.positions.max() + 1}+ pieces but predictions only {pred_shape[1]} positions")


def word_pieces(features: Any, num_examples: int) -> WordPieces:
    """Which piece's output each word takes: its first piece, and for a word held by several
    windows, the window where the word is farthest from a cut: the score is
    min(word - window_start, window_end - 1 - word), where a window side that is the sentence's
    own start or end counts as no cut (infinitely far), since nothing is missing on that side.
    Ties go to the earlier window.
    """
    per_row = row_columns(features, ["example", "window_start", "window_end"])
    example, start, end = per_row["example"], per_row["window_start"], per_row["window_end"]
    row_first, flat = piece_columns(features, ["word_ids"])
    word = flat["word_ids"]
    num_rows = len(example)
    lengths = np.diff(row_first)
    if num_rows and (example.min() < 0 or example.max() >= num_examples):
        raise ValueError(f"features name examples up to {example.max()}, but num_examples={num_examples}")

    n_words = np.zeros(num_examples, dtype=np.int64)
    np.maximum.at(n_words, example, end)

    row = np.repeat(np.arange(num_rows), lengths)
    position = np.arange(word.size) - row_first[row]
    previous = np.concatenate(([-1], word[:-1]))
    first = (word >= 0) & ((position == 0) | (word != previous))
    row, position, word = row[first], position[first], word[first]

    ex, ws, we = example[row], start[row], end[row]
    far = np.iinfo(np.int64).max
    left = np.where(ws > 0, word - ws, far)
    right = np.where(we < n_words[ex], we - 1 - word, far)
    context = np.minimum(left, right)

    word_offset = np.zeros(num_examples, dtype=np.int64)
    np.cumsum(n_words[:-1], out=word_offset[1:])
    flat_word = word_offset[ex] + word
    # Sort by word, then best context first, then earlier row; keep the first entry of each word.
    order = np.lexsort((row, -context, flat_word))
    flat_sorted = flat_word[order]
    keep = order[np.concatenate(([True], flat_sorted[1:] != flat_sorted[:-1]))] if order.size else order
    return WordPieces(n_words=n_words, rows=row[keep], positions=position[keep], flat_word=flat_word[keep])
