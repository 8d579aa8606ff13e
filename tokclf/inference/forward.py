"""Run a token-classification model over tokenized features, fast: no gradients, length-sorted
batches padded per batch, and autocast when a reduced precision is asked for."""

from __future__ import annotations

from typing import Any

import numpy as np

# Columns a model forward accepts; everything else in the features (word maps, lengths) is ours.
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def model_input_columns(features: Any) -> list[str]:
    return [c for c in MODEL_INPUTS if c in features.column_names]


def predict_token_ids(
    model: Any,
    features: Any,
    *,
    batch_size: int = 64,
    mixed_precision: str | None = None,
    pad_token_id: int = 0,
) -> np.ndarray:
    """Predicted label id for every piece of every feature, as an (n_features, max_len) array in
    the features' own order (positions past a feature's length hold -1)."""
    import torch

    from tokclf.core.hardware import autocast_dtype

    n = len(features)
    if n == 0:
        return np.zeros((0, 0), dtype=np.int64)
    columns = model_input_columns(features)
    data = {c: features[c] for c in columns}
    lengths = np.array([len(ids) for ids in data["input_ids"]])
    out = np.full((n, int(lengths.max())), -1, dtype=np.int64)
    # Sorting by length keeps padding inside a batch minimal: most of the speed of batched inference.
    order = np.argsort(-lengths, kind="stable")
    dev = next(model.parameters()).device
    dtype = autocast_dtype(mixed_precision)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), torch.autocast(device_type=dev.type, dtype=dtype, enabled=dtype is not None):
            for start in range(0, n, batch_size):
                idx = order[start:start + batch_size]
                width = int(lengths[idx].max())
                batch = {}
                for c in columns:
                    fill = pad_token_id if c == "input_ids" else 0
                    arr = np.full((len(idx), width), fill, dtype=np.int64)
                    for row, i in enumerate(idx):
                        seq = data[c][i]
                        arr[row, : len(seq)] = seq
                    batch[c] = torch.from_numpy(arr).to(dev)
                logits = model(**batch).logits
                pred = logits.argmax(-1).cpu().numpy()
                for row, i in enumerate(idx):
                    out[i, : lengths[i]] = pred[row, : lengths[i]]
    finally:
        model.train(was_training)
    return out
