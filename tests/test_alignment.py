"""Subword label alignment against hand-written word_ids (as transformers' run_ner.py does it)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from tokclf.text.alignment import (
    IGNORE,
    align_labels,
    align_labels_flat,
    build_continuation_map,
)

NAMES = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-MISC"]  # MISC has no I-: no continuation
O, BPER, IPER, BLOC, ILOC, BMISC = range(6)
X = IGNORE


def test_continuation_map() -> None:
    assert build_continuation_map(NAMES) == {BPER: IPER, BLOC: ILOC}
    assert build_continuation_map(None) == {}
    assert build_continuation_map(["NOUN", "VERB"]) == {}


# "[CLS] Jo ##hn lives in New Yo ##rk [SEP]": words John, lives, in, New, York.
WORD_IDS = [None, 0, 0, 1, 2, 3, 4, 4, None]
TAGS = [BPER, O, O, BLOC, ILOC]


def test_first_subword_strategy() -> None:
    assert align_labels(WORD_IDS, TAGS, "first", build_continuation_map(NAMES)) == [X, BPER, X, O, O, BLOC, ILOC, X, X]


def test_all_subwords_strategy_turns_b_continuations_into_i() -> None:
    cont = build_continuation_map(NAMES)
    assert align_labels(WORD_IDS, TAGS, "all", cont) == [X, BPER, IPER, O, O, BLOC, ILOC, ILOC, X]


def test_all_subwords_without_i_label_keeps_tag() -> None:
    cont = build_continuation_map(NAMES)
    assert align_labels([None, 0, 0, None], [BMISC], "all", cont) == [X, BMISC, BMISC, X]


def test_all_without_names_copies_tags() -> None:
    assert align_labels([None, 0, 0, 1, None], [3, 1], "all", {}) == [X, 3, 3, 1, X]


def test_negative_word_id_is_special_and_restarts_word() -> None:
    # Global word ids with -1 for specials, as features store them; a window starting at word 3.
    assert align_labels([-1, 3, 3, 4, -1], [O, O, O, BPER, IPER], "first", {}) == [X, BPER, X, IPER, X]


def test_unknown_strategy() -> None:
    with pytest.raises(ValueError, match="strategy"):
        align_labels(WORD_IDS, TAGS, "last", {})


@pytest.mark.parametrize("strategy", ["first", "all"])
def test_flat_version_agrees_with_reference(strategy: str) -> None:
    rng = random.Random(7)
    cont = build_continuation_map(NAMES)
    seq_word_ids, seq_tags = [], []
    for _ in range(200):
        n_words = rng.randint(0, 6)
        tags = [rng.randrange(len(NAMES)) for _ in range(n_words)]
        wids: list[int | None] = [None]
        for w in range(n_words):
            wids += [w] * rng.randint(1, 3)
        if rng.random() < 0.5:
            wids.append(None)
        seq_word_ids.append(wids)
        seq_tags.append(tags)
    expected = [align_labels(w, t, strategy, cont) for w, t in zip(seq_word_ids, seq_tags)]

    flat_wids = np.array([-1 if w is None else w for wids in seq_word_ids for w in wids])
    flat_tags = np.array([-100 if w is None else t[w] for wids, t in zip(seq_word_ids, seq_tags) for w in wids])
    starts = np.zeros(len(flat_wids), dtype=bool)
    pos = 0
    for wids in seq_word_ids:
        starts[pos] = True
        pos += len(wids)
    got = align_labels_flat(flat_wids, flat_tags, starts, strategy, cont).tolist()
    assert got == [label for seq in expected for label in seq]


def test_flat_version_restarts_at_sequence_boundary_without_specials() -> None:
    # Two windows without special tokens (GPT-2-like), the same word 2 ending one and starting the next.
    wids = np.array([1, 2, 2, 2, 3])
    tags = np.array([O, BPER, BPER, BPER, IPER])
    starts = np.array([True, False, False, True, False])
    cont = build_continuation_map(NAMES)
    assert align_labels_flat(wids, tags, starts, "first", cont).tolist() == [O, BPER, X, BPER, IPER]
    assert align_labels_flat(wids, tags, starts, "all", cont).tolist() == [O, BPER, IPER, BPER, IPER]


def test_auto_subword_labels_decide_from_the_share_of_multi_piece_words(tokenizer_dir):
    from transformers import AutoTokenizer

    from tokclf.text.alignment import AUTO_MULTI_PIECE_SHARE, choose_strategy, multi_piece_share

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    plain = [["the", "cat", "sat", "on", "the", "mat", "."]] * 3
    noisy = [["@paulwalk", "lolz", "#nyc", "omgggg", "the", "cat"]] * 3
    assert multi_piece_share(tok, plain) == 0.0
    share = multi_piece_share(tok, noisy)
    assert share > AUTO_MULTI_PIECE_SHARE
    assert choose_strategy("auto", tok, plain) == ("all", 0.0)
    assert choose_strategy("auto", tok, noisy) == ("first", round(share, 4))
    assert choose_strategy("first", tok, plain) == ("first", None)
    assert choose_strategy("all", tok, noisy) == ("all", None)
