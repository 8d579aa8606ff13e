"""BIO-valid decoding (tokclf.inference.decoding): hand-checked Viterbi cases per scheme."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tokclf.inference.decoding import argmax, decode, decoder, transitions, viterbi

IOB2 = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
IOBES = ["O", "B-PER", "I-PER", "E-PER", "S-PER"]
BILOU = ["O", "B-PER", "I-PER", "L-PER", "U-PER"]


def _probs(rows: list[dict[str, float]], names: list[str]) -> np.ndarray:
    """Rows of {label: prob}; the rest of each row's mass spread evenly over the other labels."""
    out = np.zeros((len(rows), len(names)))
    for i, row in enumerate(rows):
        rest = (1.0 - sum(row.values())) / max(1, len(names) - len(row))
        out[i] = [row.get(n, rest) for n in names]
    return out.astype(np.float32)


def _tags(ids: np.ndarray, names: list[str]) -> list[str]:
    return [names[i] for i in ids]


def _valid_iob2(tags: list[str]) -> bool:
    prev = "O"
    for t in tags:
        if t.startswith("I-") and prev[2:] != t[2:]:
            return False
        prev = t
    return True


def test_stray_inside_after_outside_becomes_a_begin():
    # argmax: O I-PER I-PER (invalid). Valid paths: O B-PER I-PER scores log(.3)+log(.6)
    # against O O O log(.1)+log(.1) and O I- is forbidden, so Viterbi picks O B-PER I-PER.
    probs = _probs([{"O": 0.9}, {"I-PER": 0.6, "B-PER": 0.3, "O": 0.1}, {"I-PER": 0.6, "O": 0.1}], IOB2)
    assert _tags(argmax(probs)[0], IOB2) == ["O", "I-PER", "I-PER"]
    ids, scores = decode(probs, IOB2, "viterbi")
    assert _tags(ids, IOB2) == ["O", "B-PER", "I-PER"]
    assert scores.tolist() == pytest.approx([0.9, 0.3, 0.6])


def test_viterbi_drops_a_weak_stray_inside_instead():
    # I-PER 0.4 vs O 0.35 and B-PER only 0.05: O O beats B-PER (0.05) and the forbidden I-PER.
    probs = _probs([{"O": 0.9}, {"I-PER": 0.4, "O": 0.35, "B-PER": 0.05}], IOB2)
    assert _tags(decode(probs, IOB2, "viterbi")[0], IOB2) == ["O", "O"]


def test_type_change_inside_is_forbidden():
    # B-PER then I-LOC: the best valid path is B-PER I-PER (log .8 + log .3) over
    # B-LOC I-LOC (log .1 + log .6) and B-PER B-LOC (log .8 + log .05).
    probs = _probs([{"B-PER": 0.8, "B-LOC": 0.1}, {"I-LOC": 0.6, "I-PER": 0.3, "B-LOC": 0.05}], IOB2)
    assert _tags(decode(probs, IOB2, "viterbi")[0], IOB2) == ["B-PER", "I-PER"]


def test_valid_argmax_path_is_kept_and_argmax_decoding_unchanged():
    probs = _probs([{"B-LOC": 0.7}, {"I-LOC": 0.8}, {"O": 0.9}, {"B-PER": 0.6}], IOB2)
    assert (decode(probs, IOB2, "viterbi")[0] == argmax(probs)[0]).all()
    stray = _probs([{"O": 0.9}, {"I-PER": 0.9}], IOB2)
    assert _tags(decode(stray, IOB2, "argmax")[0], IOB2) == ["O", "I-PER"]


def test_viterbi_is_the_best_valid_sequence_by_brute_force():
    rng = np.random.default_rng(0)
    for names, valid in ((IOB2, _valid_iob2),):
        trans = transitions(names)
        for _ in range(30):
            n = int(rng.integers(1, 5))
            probs = rng.dirichlet(np.ones(len(names)) * 0.5, size=n).astype(np.float32)
            ids, _ = viterbi(probs, trans)
            logp = np.log(np.maximum(probs, 1e-12))
            best = max(
                (seq for seq in itertools.product(range(len(names)), repeat=n) if valid(_tags(np.array(seq), names))),
                key=lambda seq: sum(logp[i, j] for i, j in enumerate(seq)),
            )
            assert _tags(ids, names) == _tags(np.array(best), names)


@pytest.mark.parametrize("names", [IOBES, BILOU])
def test_iobes_and_bilou_spans_are_closed(names):
    # argmax: B-PER O (an unclosed span). IOBES/BILOU: B must be followed by I/E (L); a lone word
    # is S (U). Best valid: S-PER O (log .35 + log .9) over B-PER E-PER (log .6 + log .02).
    begin, single, end = names[1], names[4], names[3]
    probs = _probs([{begin: 0.6, single: 0.35}, {"O": 0.9, end: 0.02}], names)
    assert _tags(decode(probs, names, "viterbi")[0], names) == [single, "O"]
    # A span may not end the sentence open: B-PER I-PER at the end becomes B-PER E-PER (L-PER).
    probs = _probs([{begin: 0.9}, {names[2]: 0.5, end: 0.4}], names)
    assert _tags(decode(probs, names, "viterbi")[0], names) == [begin, end]
    # E after O is forbidden (it continues a span): O E-PER -> O S-PER.
    probs = _probs([{"O": 0.9}, {end: 0.5, single: 0.3}], names)
    assert _tags(decode(probs, names, "viterbi")[0], names) == ["O", single]


def test_non_span_labels_decode_as_argmax():
    upos = ["NOUN", "VERB", "DET"]
    assert transitions(upos) is None
    assert decoder(upos, "viterbi") is argmax
    probs = np.array([[0.1, 0.2, 0.7], [0.6, 0.3, 0.1]], dtype=np.float32)
    assert decode(probs, upos, "viterbi")[0].tolist() == [2, 0]


def test_empty_sentence_and_unknown_decoding():
    ids, scores = decode(np.zeros((0, len(IOB2)), dtype=np.float32), IOB2, "viterbi")
    assert ids.shape == (0,) and scores.shape == (0,)
    with pytest.raises(ValueError, match="decoding"):
        decoder(IOB2, "crf")


@pytest.mark.parametrize("names", [IOB2, IOBES])
def test_batched_viterbi_equals_one_sentence_at_a_time(names):
    from tokclf.inference.decoding import decode_sentences, viterbi_batch

    rng = np.random.default_rng(1)
    trans = transitions(names)
    sentences = [rng.dirichlet(np.ones(len(names)) * 0.3, size=int(n)).astype(np.float32)
                 for n in rng.integers(0, 30, size=40)]
    batched = viterbi_batch(sentences, trans, chunk=7)  # several chunks of mixed lengths
    for p, (ids, scores) in zip(sentences, batched, strict=True):
        ref_ids, ref_scores = viterbi(p, trans)
        assert ids.tolist() == ref_ids.tolist() and scores.tolist() == pytest.approx(ref_scores.tolist())
    assert [i.tolist() for i, _ in decode_sentences(sentences, names, "argmax")] == [argmax(p)[0].tolist() for p in sentences]
