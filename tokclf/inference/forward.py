"""The one batched forward pass: tokenized features in, one label distribution per word out.

Evaluation during training, `tokclf evaluate`, the pipeline's evaluate stage, predict, serve and
ONNX predict all run `word_probabilities`, so batching is decided (and sped up) in one place:
- rows are sorted by length (longest first) and packed into batches of at most `max_batch` rows
  and `token_budget` tokens (rows x padded width; a row longer than the budget runs alone);
- a batch is padded to its longest row rounded up to `pad_multiple` (fewer distinct shapes, so
  oneDNN reuses its kernels for bf16 on CPU);
- no gradients; the backend (`tokclf.inference.backends`) autocasts when asked to;
- from each batch only the pieces that carry a word's output (`tokclf.text.features.word_pieces`:
  a word's first piece, in the window where it sits farthest from a cut) are kept, so memory holds
  words x labels, never pieces x labels of the whole split.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tokclf.text.features import WordPieces, piece_columns, word_pieces

# Rows x padded length per batch. On CPU throughput is flat from ~2k to ~8k tokens; larger
# budgets only cost memory (see docs/inference.md).
DEFAULT_TOKEN_BUDGET = 4096
DEFAULT_MAX_BATCH = 256
# Batch widths are padded up to a multiple of this.
PAD_MULTIPLE = 8


def word_probabilities(
    backend: Any,
    features: Any,
    num_examples: int,
    *,
    token_budget: int = DEFAULT_TOKEN_BUDGET,
    max_batch: int = DEFAULT_MAX_BATCH,
    pad_token_id: int = 0,
    pad_multiple: int = PAD_MULTIPLE,
) -> tuple[WordPieces, np.ndarray]:
    """Run `backend` over `features` (`tokclf.text.features.tokenize_split`, or `tokenize_words`'s
    numpy `FlatFeatures`).

    Returns (the word -> piece choice, probabilities): a (total_words, num_labels) float32 array,
    all sentences' words concatenated in order (`WordPieces.split` cuts it per sentence). A word
    with no piece at all (a tokenizer without an unknown token) gets a uniform distribution.
    """
    chosen = word_pieces(features, num_examples)
    n = len(features)
    if n == 0 or chosen.total_words == 0:
        return chosen, np.zeros((chosen.total_words, 0), dtype=np.float32)
    # input_ids first: its row lengths are every column's.
    columns = ["input_ids", *(c for c in backend.input_names if c != "input_ids" and c in features.column_names)]
    offsets, flat = piece_columns(features, columns)
    lengths = np.diff(offsets)

    # Words grouped by the row they read from (CSR), so a batch gathers only its own words.
    by_row = np.argsort(chosen.rows, kind="stable")
    row_ptr = np.searchsorted(chosen.rows[by_row], np.arange(n + 1))
    out: np.ndarray | None = None

    order = np.argsort(-lengths, kind="stable")
    multiple = max(1, pad_multiple)
    start = 0
    while start < n:
        longest = int(lengths[order[start]])
        width = -(-longest // multiple) * multiple
        rows = max(1, min(max_batch, token_budget // width))
        idx = order[start:start + rows]
        start += len(idx)
        cols = np.arange(width)
        valid = cols[None, :] < lengths[idx][:, None]
        source = (offsets[idx][:, None] + cols[None, :])[valid]
        batch = {}
        for c in columns:
            arr = np.full((len(idx), width), pad_token_id if c == "input_ids" else 0, dtype=np.int64)
            arr[valid] = flat[c][source]
            batch[c] = arr
        probs = backend(batch)
        if out is None:
            k = probs.shape[-1]
            out = np.full((chosen.total_words, k), 1.0 / k, dtype=np.float32)
        counts = row_ptr[idx + 1] - row_ptr[idx]
        if not counts.sum():
            continue
        local_row = np.repeat(np.arange(len(idx)), counts)
        firsts = np.repeat(row_ptr[idx] - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
        sel = by_row[firsts + np.arange(int(counts.sum()))]
        out[chosen.flat_word[sel]] = probs[local_row, chosen.positions[sel]]
    assert out is not None
    return chosen, out
