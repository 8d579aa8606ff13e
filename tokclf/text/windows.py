"""Cut a sentence that is too long for the model into overlapping windows of whole words.

Pure arithmetic on piece counts, so it can be property-tested without a tokenizer. The caller
re-tokenizes each window's words; the overlap gives words near a cut some context on both sides,
and `tokclf.text.features.word_pieces` keeps, for each word, the prediction from the window
where it sits farthest from a cut.
"""

from __future__ import annotations


def plan_windows(pieces_per_word: list[int], budget: int, stride: int) -> list[tuple[int, int]]:
    """Word ranges [start, end) covering every word, each within `budget` subword pieces.

    pieces_per_word: subword pieces of each word (special tokens not included).
    budget: pieces one window may hold (max_seq_length minus the tokenizer's special tokens).
    stride: wanted overlap, in pieces, between consecutive windows.

    Guarantees:
    - windows never split a word, start at word 0, end at the last word, and every word is in at
      least one window; a sentence that fits the budget is one window;
    - every window holds at most `budget` pieces, except a window made of one word that alone is
      longer than the budget: that word gets a window to itself (the features code truncates its
      pieces inside the word, keeping its first piece, which carries its label and prediction);
    - consecutive windows overlap by the longest run of trailing words whose pieces fit in
      `stride`, and by at least one word when stride > 0 (even if that word is longer than
      `stride`), as long as the overlap leaves room for the next word; each window starts and
      ends after the previous one (always progress).
    An empty sentence gets one empty window [(0, 0)] so that it still yields one feature.
    """
    if budget < 1:
        raise ValueError(f"budget must be at least 1 piece, got {budget}")
    if stride < 0:
        raise ValueError(f"stride must be >= 0, got {stride}")
    n = len(pieces_per_word)
    if n == 0:
        return [(0, 0)]
    total = sum(pieces_per_word)
    if total <= budget:
        return [(0, n)]

    windows: list[tuple[int, int]] = []
    start = 0
    while True:
        # Greedy: as many whole words as fit; an oversized word alone still makes a window.
        end, used = start, 0
        while end < n and used + pieces_per_word[end] <= budget:
            used += pieces_per_word[end]
            end += 1
        if end == start:
            end = start + 1
        windows.append((start, end))
        if end >= n:
            return windows
        start = _next_start(pieces_per_word, start, end, budget, stride)


def _next_start(pieces: list[int], start: int, end: int, budget: int, stride: int) -> int:
    """First word of the window after [start, end): step back from `end` to overlap ~`stride` pieces."""
    if stride == 0:
        return end
    nxt, overlap = end, 0
    # Trailing words that fit in the stride (never the window's first word: that would not progress).
    while nxt - 1 > start and overlap + pieces[nxt - 1] <= stride:
        nxt -= 1
        overlap += pieces[nxt]
    if nxt == end and end - 1 > start:
        # The last word alone is longer than the stride: overlap by that one word anyway, so the
        # word at the cut is seen once with context to its right.
        nxt = end - 1
        overlap = pieces[nxt]
    # The next window must reach past `end`, or it would repeat words without covering new ones.
    while nxt < end and overlap + pieces[end] > budget:
        overlap -= pieces[nxt]
        nxt += 1
    return nxt
