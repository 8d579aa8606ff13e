"""Word label distributions -> one label per word.

The one place where a word's label is chosen from the model's probabilities, for evaluation
(during training too), `tokclf evaluate`, predict, serve and ONNX predict.

Two decodings (`TokenClassificationParams.decoding`):
- "argmax": each word's most probable label, independently. A span label set can then come out
  invalid (`I-X` after `O`), which scoring and entity building read by conlleval's rule (the stray
  `I-X` starts an entity).
- "viterbi": the most probable *valid* sequence: a Viterbi pass over the words' log-probabilities
  in which every transition the tagging scheme forbids costs -inf and every allowed one costs 0.
  So the path maximises the sum of per-word log-probabilities subject to validity; where argmax
  is already valid it is the argmax path. Span schemes: IOB2 (an `I-X` continues a `B-X`/`I-X`),
  IOBES and BILOU (`B`/`I` continue into `I`/`E` of the same type; `E`/`S`/`O` before a new
  start; no sequence ends on `B`/`I`). Label sets that are not spans (POS tags) have no
  constraints, and viterbi is argmax. The model stays a plain token classifier (no CRF layer):
  `transformers.pipeline()` loads it unchanged; only tokclf's decoding adds the constraint.

A word's score is the probability of the label it got.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from tokclf.data.schemes import OUTSIDE, as_iobes, is_bio

DECODINGS = ("viterbi", "argmax")
# What a model folder that does not record a decoding is run with: the decoding it was scored with
# when it was trained (tokclf folders from before `decoding` existed, models from elsewhere).
LEGACY_DECODING = "argmax"
# log(0) would be -inf and make a forced label (after a forbidden-only context) unreachable.
_LOG_FLOOR = 1e-12

Decoder = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Transitions:
    """Additive log-scores of a tagging scheme: 0 = allowed, -inf = forbidden."""

    start: np.ndarray  # (k,) first word's label
    step: np.ndarray  # (k, k) previous label -> next label
    end: np.ndarray  # (k,) last word's label


def _parts(name: str) -> tuple[str, str]:
    """(prefix, type) in IOBES letters: ("O", "") for O, BILOU's L/U read as E/S."""
    if name == OUTSIDE:
        return OUTSIDE, ""
    tag = as_iobes(name)
    return tag[0], tag[2:]


def transitions(label_names: Sequence[str] | None) -> Transitions | None:
    """The scheme's constraints for `label_names`; None when the labels are not a span scheme."""
    if not is_bio(label_names):
        return None
    assert label_names is not None
    parts = [_parts(n) for n in label_names]
    k = len(parts)
    # A continuation (I, E) must follow a B or I of its own type; everything else may follow any
    # label that closes its span (O, E, S; in IOB2, which has no E, also B and I of any type).
    iobes = any(prefix in ("E", "S") for prefix, _ in parts)
    start = np.zeros(k)
    end = np.zeros(k)
    step = np.zeros((k, k))
    for j, (pj, tj) in enumerate(parts):
        if pj in ("I", "E"):
            start[j] = -np.inf
        if iobes and pj in ("B", "I"):
            end[j] = -np.inf  # an IOBES span must be closed by E
        for i, (pi, ti) in enumerate(parts):
            opens = pi in ("B", "I")  # the previous word leaves a span open
            if pj in ("I", "E"):
                ok = opens and ti == tj
            else:
                ok = not (iobes and opens)
            if not ok:
                step[i, j] = -np.inf
    return Transitions(start, step, end)


def argmax(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(label id, its probability) for every word of a (num_words, num_labels) array."""
    if probs.size == 0:
        return np.zeros(len(probs), dtype=np.int64), np.zeros(len(probs), dtype=np.float32)
    ids = probs.argmax(-1)
    return ids, probs[np.arange(len(ids)), ids]


def viterbi(probs: np.ndarray, trans: Transitions) -> tuple[np.ndarray, np.ndarray]:
    """The most probable sequence of one sentence that `trans` allows, and each word's probability
    of its label. Falls back to argmax when no valid sequence exists (a label set without O and
    without the labels that could open a span)."""
    n = len(probs)
    if probs.size == 0:
        return argmax(probs)
    logp = np.log(np.maximum(probs.astype(np.float64), _LOG_FLOOR))
    score = trans.start + logp[0]
    back = np.zeros((n, probs.shape[1]), dtype=np.int64)
    for t in range(1, n):
        cand = score[:, None] + trans.step  # (prev, next)
        back[t] = cand.argmax(0)
        score = cand[back[t], np.arange(len(score))] + logp[t]
    score = score + trans.end
    if not np.isfinite(score.max()):
        return argmax(probs)
    ids = np.empty(n, dtype=np.int64)
    ids[-1] = int(score.argmax())
    for t in range(n - 1, 0, -1):
        ids[t - 1] = back[t, ids[t]]
    return ids, probs[np.arange(n), ids]


def viterbi_batch(sentences: Sequence[np.ndarray], trans: Transitions,
                  chunk: int = 512) -> list[tuple[np.ndarray, np.ndarray]]:
    """`viterbi` of many sentences at once: sentences sorted by length and stacked into padded
    (sentences, words, labels) blocks, so the loop runs over word positions (at most the longest
    sentence), not over every word of the split. Same paths as `viterbi`, one sentence at a time."""
    out: list[tuple[np.ndarray, np.ndarray]] = [argmax(p) for p in sentences]  # empty ones stay so
    order = sorted((i for i, p in enumerate(sentences) if len(p)), key=lambda i: len(sentences[i]))
    for lo in range(0, len(order), chunk):
        idx = order[lo:lo + chunk]
        lens = np.array([len(sentences[i]) for i in idx])
        width, k = int(lens.max()), sentences[idx[0]].shape[1]
        logp = np.zeros((len(idx), width, k))
        for row, i in enumerate(idx):
            logp[row, :lens[row]] = np.log(np.maximum(sentences[i].astype(np.float64), _LOG_FLOOR))
        score = trans.start + logp[:, 0]
        back = np.zeros((len(idx), width, k), dtype=np.int64)
        for t in range(1, width):
            cand = score[:, :, None] + trans.step[None]  # (sentence, prev, next)
            best = cand.argmax(1)
            stepped = np.take_along_axis(cand, best[:, None, :], 1)[:, 0] + logp[:, t]
            active = (t < lens)[:, None]
            score = np.where(active, stepped, score)  # finished sentences keep their final scores
            back[:, t] = best
        final = score + trans.end
        cur = final.argmax(1)
        ids = np.zeros((len(idx), width), dtype=np.int64)
        rows = np.arange(len(idx))
        for t in range(width - 1, -1, -1):
            active = t < lens
            ids[active, t] = cur[active]
            if t:
                cur = np.where(active, back[rows, t, cur], cur)
        feasible = np.isfinite(final.max(1))
        for row, i in enumerate(idx):
            if feasible[row]:
                path = ids[row, :lens[row]]
                out[i] = (path, sentences[i][np.arange(lens[row]), path])
    return out


def decode_sentences(sentences: Sequence[np.ndarray], label_names: Sequence[str] | None,
                     decoding: str = LEGACY_DECODING) -> list[tuple[np.ndarray, np.ndarray]]:
    """(label ids, their probabilities) of every sentence, as `decoding` chooses: what evaluation
    and prediction call (Viterbi batched over the sentences)."""
    if decoding not in DECODINGS:
        raise ValueError(f"decoding must be one of {DECODINGS}, not {decoding!r}")
    trans = transitions(label_names) if decoding == "viterbi" else None
    if trans is None:
        return [argmax(p) for p in sentences]
    return viterbi_batch(sentences, trans)


def decoder(label_names: Sequence[str] | None, decoding: str = LEGACY_DECODING) -> Decoder:
    """probs of one sentence -> (label ids, their probabilities), as `decoding` chooses."""
    if decoding not in DECODINGS:
        raise ValueError(f"decoding must be one of {DECODINGS}, not {decoding!r}")
    trans = transitions(label_names) if decoding == "viterbi" else None
    if trans is None:
        return argmax
    return lambda probs: viterbi(probs, trans)


def decode(probs: np.ndarray, label_names: Sequence[str] | None = None,
           decoding: str = LEGACY_DECODING) -> tuple[np.ndarray, np.ndarray]:
    """One sentence's (label ids, their probabilities); see `decoder` to decode many sentences."""
    return decoder(label_names, decoding)(probs)
