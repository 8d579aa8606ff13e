"""tokclf: fine-tune transformer models for token classification (NER, POS, chunking, slots).

The public API is imported lazily so that `tokclf --help` and `import tokclf` stay fast: torch and
transformers load only when a function that needs them runs. Where each piece lives:
docs/architecture.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "TokenClassificationParams",
    "train",
    "evaluate",
    "validate",
    "load_labelled_data",
    "predict",
    "Predictor",
    "TokclfError",
    "__version__",
]

_LAZY = {
    "TokenClassificationParams": ("tokclf.core.params", "TokenClassificationParams"),
    "train": ("tokclf.training.run", "train"),
    "evaluate": ("tokclf.evaluation.scoring", "evaluate"),
    "validate": ("tokclf.data.validation", "validate"),
    "load_labelled_data": ("tokclf.data.ingest", "load_labelled_data"),
    "predict": ("tokclf.inference.predictor", "predict"),
    "Predictor": ("tokclf.inference.predictor", "Predictor"),
    "TokclfError": ("tokclf.core.errors", "TokclfError"),
}

if TYPE_CHECKING:  # pragma: no cover
    from tokclf.core.errors import TokclfError
    from tokclf.core.params import TokenClassificationParams
    from tokclf.data.ingest import load_labelled_data
    from tokclf.data.validation import validate
    from tokclf.evaluation.scoring import evaluate
    from tokclf.inference.predictor import Predictor, predict
    from tokclf.training.run import train


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tokclf' has no attribute {name!r}")
