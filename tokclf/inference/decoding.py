"""Word label distributions -> one label per word.

The one place where a word's label is chosen from the model's probabilities, for evaluation
(during training too), `tokclf evaluate`, predict, serve and ONNX predict.
"""

from __future__ import annotations

import numpy as np

DECODINGS = ("argmax",)


def decode(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(label id, its probability) for every word of a (num_words, num_labels) array."""
    if probs.size == 0:
        return np.zeros(len(probs), dtype=np.int64), np.zeros(len(probs), dtype=np.float32)
    ids = probs.argmax(-1)
    return ids, probs[np.arange(len(ids)), ids]
