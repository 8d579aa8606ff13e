"""plan_windows: properties checked on many random sentences, plus hand-made cases."""

from __future__ import annotations

import random

import pytest

from tokclf.text.windows import plan_windows


def _check(pieces: list[int], budget: int, stride: int) -> list[tuple[int, int]]:
    windows = plan_windows(pieces, budget, stride)
    n = len(pieces)
    if n == 0:
        assert windows == [(0, 0)]
        return windows
    # Coverage: starts at the first word, ends at the last, no gaps.
    assert windows[0][0] == 0
    assert windows[-1][1] == n
    for (s0, e0), (s1, e1) in zip(windows, windows[1:]):
        assert s1 <= e0, f"gap between {(s0, e0)} and {(s1, e1)}"
        # Progress: both edges move right.
        assert s1 > s0 and e1 > e0
    for s, e in windows:
        assert 0 <= s < e <= n
        size = sum(pieces[s:e])
        # Budget, or a lone oversized word.
        assert size <= budget or (e - s == 1 and pieces[s] > budget), (s, e, size)
    if sum(pieces) <= budget:
        assert windows == [(0, n)]
    return windows


def _overlap_ok(pieces: list[int], budget: int, stride: int, windows: list[tuple[int, int]]) -> None:
    for (s0, e0), (s1, e1) in zip(windows, windows[1:]):
        shared = sum(pieces[s1:e0])
        if stride == 0:
            assert s1 == e0, "no overlap wanted with stride 0"
            continue
        if e0 - s1 > 1:
            # More than one word shared only when they fit in the stride.
            assert shared <= stride, (s0, e0, s1, e1)
        # At least one word of overlap, unless the previous window is a single word or the next
        # word would not fit next to the overlap.
        if s1 == e0:
            assert e0 - s0 == 1 or pieces[e0 - 1] + pieces[e0] > budget, (s0, e0, s1, e1)


@pytest.mark.parametrize("seed", range(40))
def test_random_sentences(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(50):
        n = rng.randint(0, 60)
        budget = rng.randint(1, 30)
        stride = rng.randint(0, max(0, budget // 2))
        pieces = [rng.choice([0, 1, 1, 1, 2, 2, 3, 5, budget + rng.randint(0, 3)]) for _ in range(n)]
        windows = _check(pieces, budget, stride)
        if n:
            _overlap_ok(pieces, budget, stride, windows)


def test_fits_in_one_window() -> None:
    assert plan_windows([1, 2, 3], budget=6, stride=2) == [(0, 3)]
    assert plan_windows([4], budget=4, stride=0) == [(0, 1)]


def test_hand_made_windows_with_stride() -> None:
    # 10 one-piece words, 4 per window, overlap 2 words.
    assert plan_windows([1] * 10, budget=4, stride=2) == [(0, 4), (2, 6), (4, 8), (6, 10)]


def test_no_stride_means_adjacent_windows() -> None:
    assert plan_windows([1] * 10, budget=4, stride=0) == [(0, 4), (4, 8), (8, 10)]


def test_overlap_of_one_word_even_when_longer_than_stride() -> None:
    # The last word of the first window has 3 pieces > stride 1: it is still shared.
    assert plan_windows([1, 1, 3, 1, 1], budget=5, stride=1) == [(0, 3), (2, 5)]


def test_oversized_word_gets_its_own_window() -> None:
    windows = plan_windows([1, 1, 9, 1, 1], budget=4, stride=1)
    assert (2, 3) in windows
    assert windows[0] == (0, 2) and windows[-1][1] == 5


def test_empty_sentence() -> None:
    assert plan_windows([], budget=4, stride=1) == [(0, 0)]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        plan_windows([1], budget=0, stride=0)
    with pytest.raises(ValueError):
        plan_windows([1], budget=3, stride=-1)
