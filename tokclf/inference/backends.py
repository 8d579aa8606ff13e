"""The model behind a forward pass: a padded numpy batch in, label probabilities out.

Two backends with one interface (`input_names`, `name`, `precision`, `__call__`), so the batched
forward (`tokclf.inference.forward`) is written once for evaluation, `tokclf evaluate`, predict,
serve and ONNX models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tokclf.core.errors import TokclfError

# Columns a model forward accepts; everything else in the features (word maps, lengths) is ours.
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class TorchBackend:
    """A PyTorch model (train mode is the caller's business: `tokclf.evaluation.scoring` switches
    it to eval for the pass and back), run without gradients, autocast to `mixed_precision`."""

    name = "pytorch"
    input_names = MODEL_INPUTS

    def __init__(self, model: Any, mixed_precision: str | None) -> None:
        self.model = model
        self.device = next(model.parameters()).device
        self.mixed_precision = mixed_precision

    @property
    def precision(self) -> str:
        return self.mixed_precision or "fp32"

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """(rows, width, num_labels) float32 probabilities."""
        import torch

        from tokclf.core.hardware import autocast_dtype

        dtype = autocast_dtype(self.mixed_precision)
        inputs = {k: torch.from_numpy(v).to(self.device) for k, v in batch.items()}
        with torch.inference_mode(), torch.autocast(device_type=self.device.type, dtype=dtype, enabled=dtype is not None):
            logits = self.model(**inputs).logits
        return logits.float().softmax(-1).cpu().numpy()


class OnnxBackend:
    """An exported ONNX graph (`tokclf export`) on onnxruntime's CPU provider."""

    name = "onnx"

    def __init__(self, onnx_file: Path, precision: str) -> None:
        from tokclf.core.extras import require

        require("onnxruntime", feature="running an ONNX model")
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise TokclfError(f"onnxruntime cannot load {onnx_file}: {exc}", where=str(onnx_file),
                              fix="re-export the model with `tokclf export --format onnx`.", code="E3003") from None
        self.input_names = tuple(i.name for i in self.session.get_inputs())
        self.precision = precision

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """(rows, width, num_labels) float32 probabilities (a numerically stable softmax)."""
        feed = {k: v for k, v in batch.items() if k in self.input_names}
        logits = self.session.run(["logits"], feed)[0].astype(np.float32, copy=False)
        logits = logits - logits.max(-1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(-1, keepdims=True)
        return logits
