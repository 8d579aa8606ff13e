"""Load what a model folder holds: a `tokclf train` folder (PyTorch) or a `tokclf export` folder /
.onnx file (ONNX), with its tokenizer, label names and the run's saved parameters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tokclf.core.errors import TokclfError
from tokclf.core.params import DEFAULT_MAX_SEQ_LENGTH, DEFAULT_STRIDE
from tokclf.inference.decoding import DECODINGS, LEGACY_DECODING

# Written by `tokclf export` beside the .onnx files: which file holds which precision, labels, windows.
ONNX_MANIFEST = "tokclf_export.json"


def load_trained(model_dir: str | Path) -> tuple[Any, Any, list[str] | None, dict[str, Any]]:
    """Model, tokenizer, label names and the run's saved params (if any) from a tokclf output."""
    from transformers import AutoModelForTokenClassification

    from tokclf.core.hardware import device
    from tokclf.core.resources import resolve_model_path
    from tokclf.text.tokenizer import load_tokenizer

    path = resolve_model_path(str(model_dir))
    try:
        model = AutoModelForTokenClassification.from_pretrained(path)
    except OSError as exc:
        raise TokclfError(
            f"cannot load a token-classification model from {model_dir!r}: {exc}",
            fix="pass the folder a `tokclf train` run wrote (its --project-name), or a Hub model id.", code="E3026",
        ) from None
    tokenizer = load_tokenizer(path)
    model.to(device())
    id2label = getattr(model.config, "id2label", None) or {}
    names = [id2label[i] for i in range(len(id2label))] if id2label else None
    # transformers fills LABEL_0.. when a model was saved without names: treat as unnamed.
    if names and all(n == f"LABEL_{i}" for i, n in enumerate(names)):
        names = None
    saved: dict[str, Any] = {}
    params_file = Path(path) / "training_params.json"
    if params_file.is_file():
        saved = json.loads(params_file.read_text(encoding="utf-8"))
    return model, tokenizer, names, saved



def find_onnx(path: Path) -> tuple[Path, Path, str] | None:
    """(export folder, .onnx file, precision) when `path` is an ONNX export or a .onnx file."""
    if path.is_file() and path.suffix == ".onnx":
        folder = path.parent
        manifest = read_manifest(folder)
        precision = next((p for p, f in manifest.get("files", {}).items() if f == path.name), "fp32")
        return folder, path, precision
    if path.is_dir():
        manifest = read_manifest(path)
        if manifest:
            precision = manifest.get("default", "fp32")
            return path, path / manifest["files"][precision], precision
        if (path / "model.onnx").is_file():
            return path, path / "model.onnx", "fp32"
    return None


def read_manifest(folder: Path) -> dict[str, Any]:
    file = folder / ONNX_MANIFEST
    if not file.is_file():
        return {}
    return json.loads(file.read_text(encoding="utf-8"))


def window_settings(saved: dict[str, Any], max_seq_length: int | None = None,
                    stride: int | None = None) -> tuple[int, int]:
    """(max_seq_length, stride) for running a model: the caller's, else the training run's (its
    training_params.json or ONNX manifest), else tokclf's defaults; the stride is clamped below
    half a window (a shorter window than the run's needs a smaller overlap)."""
    length = int(max_seq_length or saved.get("max_seq_length", DEFAULT_MAX_SEQ_LENGTH))
    overlap = int(stride if stride is not None else saved.get("stride", DEFAULT_STRIDE))
    if overlap * 2 >= length - 2:
        overlap = max(0, (length - 3) // 2)
    return length, overlap


def context_setting(saved: dict[str, Any], document_context: int | None = None) -> int:
    """Pieces of document context to run a model with (tokclf.text.context): the caller's, else
    the training run's (training_params.json or the ONNX manifest), else 0 (a model trained
    without it, or elsewhere)."""
    chosen = document_context if document_context is not None else saved.get("document_context", 0)
    if not isinstance(chosen, int) or isinstance(chosen, bool) or chosen < 0:
        raise TokclfError(f"document_context must be a whole number >= 0, got {chosen!r}", where="document_context",
                          fix="use 0 (off) or a number of subword pieces, e.g. 64.", code="E3031")
    return chosen


def decoding_setting(saved: dict[str, Any], decoding: str | None = None) -> str:
    """The decoding to run a model with: the caller's, else the training run's (training_params.json
    or the ONNX manifest record `decoding`), else LEGACY_DECODING (argmax: what a folder from before
    the setting existed, or a model trained elsewhere, was scored with)."""
    chosen = decoding or saved.get("decoding") or LEGACY_DECODING
    if chosen not in DECODINGS:
        raise TokclfError(f"unknown decoding {chosen!r}", where="decoding",
                          fix=f"use one of: {', '.join(DECODINGS)}.", code="E3027")
    return str(chosen)
