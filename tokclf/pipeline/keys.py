"""Content keys of the pipeline's stages: hashes of what a stage's output was made *from* (source
bytes, saved datasets, tokenizer files) and of the parameters it read.

A folder a stage writes carries its key in a hidden stamp (`STAMP`); Prefect's cache uses the same
keys (`ingest_key`, `validate_key`, `tokenize_key`), and a flow only reuses a cached result when
the folder on disk still carries the key (`stamp_key`).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tokclf.core.errors import DataError
from tokclf.core.fileio import write_json
from tokclf.core.params import NOT_TRAINING_KEYS, TokenClassificationParams
from tokclf.pipeline.paths import STAMP

KEY_VERSION = 1                     # bump when a stage's output format changes


# Parameters each stage reads (dvc.yaml lists the same under each stage's `params:`).
INGEST_KEYS = (  # data_path enters as the content hash of what it names, not as a string
    "tokens_column", "tags_column", "train_split", "valid_split", "test_split", "max_samples",
    "label_names", "conll_token_column", "conll_tag_column", "conllu_tag", "validation_split_ratio", "seed",
    "data_format", "span_alignment", "overlapping", "label_map", "span_records",  # span annotation formats
    "document_column",  # document context (issue 13)
)


# (The model enters the keys below through its tokenizer files' hash, not its path.)
VALIDATE_KEYS = ("train_split", "valid_split", "test_split", "validation_split_ratio", "repair_bio", "max_seq_length")


TOKENIZE_KEYS = ("train_split", "max_seq_length", "stride", "subword_labels", "document_context")




# Files that define a tokenizer (hashed for the tokenize cache key).
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.txt",
    "vocab.json", "merges.txt", "spiece.model", "sentencepiece.bpe.model", "tokenizer.model",
)


_SKIP_NAMES = frozenset({"__pycache__", ".git", STAMP})


# --- fingerprints and keys --------------------------------------------------------------------------
def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    out = []
    for p in sorted(path.rglob("*")):
        if p.is_file() and not any(part in _SKIP_NAMES for part in p.relative_to(path).parts):
            out.append(p)
    return out


# Content hashes already computed in this process, by the files' stat signatures: a flow run asks
# for the same fingerprints several times (the cache check, the task's cache key, the stage's own
# key and run record), and hashing a large corpus once is enough. A file counts as unchanged while
# its size, mtime (ns) and inode are (the rule DVC's own state cache uses).
_HASHES: OrderedDict[tuple[Any, ...], str] = OrderedDict()
_HASHES_LOCK = threading.Lock()
_HASHES_MAX = 256


def hash_files(base: Path, files: Iterable[Path]) -> str:
    """sha256 over each file's name (relative to `base`) and bytes, in the given order."""
    named = [(f, f.name if f == base else f.relative_to(base).as_posix()) for f in files]
    signature = (str(base), *((rel, *_stat(f)) for f, rel in named))
    with _HASHES_LOCK:
        if signature in _HASHES:
            _HASHES.move_to_end(signature)
            return _HASHES[signature]
    digest = hashlib.sha256()
    for f, rel in named:
        digest.update(rel.encode("utf-8") + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    value = digest.hexdigest()
    with _HASHES_LOCK:
        _HASHES[signature] = value
        while len(_HASHES) > _HASHES_MAX:
            _HASHES.popitem(last=False)
    return value


def _stat(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns, st.st_ino


def path_fingerprint(path: str | Path) -> str:
    """sha256 over the names and bytes of a file or of every file in a folder (stamps and
    __pycache__ left out)."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"no such file or folder: {p}", code="E7002")
    return hash_files(p, _files(p))


def source_fingerprint(data_path: str | list[str]) -> str | None:
    """Content hash of a local or packaged data source; None for a Hub dataset id (no local bytes).
    Several sources: one hash over theirs, in order (None when any is a Hub dataset)."""
    from tokclf.core.resources import resolve_data_path

    if not isinstance(data_path, str):
        parts = [source_fingerprint(p) for p in data_path]
        if any(p is None for p in parts):
            return None
        return hashlib.sha256("\n".join(str(p) for p in parts).encode()).hexdigest()

    resolved = Path(resolve_data_path(data_path)).expanduser()
    return path_fingerprint(resolved) if resolved.exists() else None


def dataset_fingerprint(folder: str | Path) -> str:
    """Content hash of a folder written by save_to_disk (+ tokclf metadata): its Arrow data, split
    list and features, not its state.json (which holds a fingerprint of how it was made)."""
    p = Path(folder)
    if not p.is_dir():
        raise DataError(f"no dataset folder at {p}", fix="run the stage that writes it first.", code="E7003")
    return hash_files(p, [f for f in _files(p) if f.name != "state.json"])


def tokenizer_fingerprint(model: str) -> str:
    """Hash of the tokenizer files of `model` (a folder, a packaged model); `hub:<id>` for a Hub id
    that is not available locally."""
    from tokclf.core.resources import resolve_model_path

    path = Path(resolve_model_path(model)).expanduser()
    if not path.is_dir():
        return f"hub:{model}"
    files = [path / name for name in TOKENIZER_FILES if (path / name).is_file()]
    return hash_files(path, files) if files else f"dir:{path}"


def _key(stage: str, payload: dict[str, Any]) -> str:
    text = json.dumps({"stage": stage, "version": KEY_VERSION, **payload}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _subset(params: TokenClassificationParams, keys: Iterable[str]) -> dict[str, Any]:
    dumped = params.model_dump(mode="json")
    return {k: dumped.get(k) for k in keys}


def ingest_key(params: TokenClassificationParams) -> str | None:
    """Source content + data parameters; None (never cached) for a Hub dataset, whose content is
    only known after downloading it."""
    source = source_fingerprint(params.data_path)
    if source is None:
        return None
    payload: dict[str, Any] = {"source": source, "params": _subset(params, INGEST_KEYS)}
    if isinstance(params.label_names, str) and Path(params.label_names).expanduser().is_file():
        payload["label_file"] = path_fingerprint(Path(params.label_names).expanduser())  # its content
    if isinstance(params.label_map, str) and Path(params.label_map).expanduser().is_file():
        payload["label_map_file"] = path_fingerprint(Path(params.label_map).expanduser())
    return _key("ingest", payload)


def validate_key(params: TokenClassificationParams, prepared: str | Path) -> str:
    return _key("validate", {
        "data": dataset_fingerprint(prepared), "tokenizer": tokenizer_fingerprint(params.model),
        "params": _subset(params, VALIDATE_KEYS),
    })


def tokenize_key(params: TokenClassificationParams, validated: str | Path) -> str:
    """Normalised data content + tokenizer files + max_seq_length, stride, subword_labels."""
    return _key("tokenize", {
        "data": dataset_fingerprint(validated), "tokenizer": tokenizer_fingerprint(params.model),
        "params": _subset(params, TOKENIZE_KEYS),
    })


def training_params_hash(params: TokenClassificationParams) -> str:
    """Hash of the parameters that shape the model (paths, logging and publishing left out)."""
    dumped = {k: v for k, v in params.model_dump(mode="json").items() if k not in NOT_TRAINING_KEYS}
    dumped.pop("data_path", None)  # the data is compared by content (dataset_fingerprint)
    return _key("train", dumped)


def stamp(folder: str | Path) -> dict[str, Any]:
    p = Path(folder) / STAMP
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def stamp_key(folder: str | Path) -> str | None:
    """The cache key a stage left in its output folder (None when absent)."""
    return stamp(folder).get("key")


def write_stamp(folder: Path, stage: str, key: str | None, **extra: Any) -> None:
    write_json(folder / STAMP, {"stage": stage, "key": key, **extra})



def annotations_key(tasks: Iterable[dict[str, Any]]) -> str:
    """Content key of a Label Studio export as training sees it: each task's id and data, and each
    annotation's id, result and cancelled flag. Timestamps, counters and predictions are left out,
    so pushing pre-annotations (or a server that rewrites `updated_at`) does not change it, while a
    new, edited, cancelled or deleted annotation does."""
    canonical = []
    for task in sorted(tasks, key=lambda t: int(t.get("id") or 0)):
        annotations = sorted(task.get("annotations") or [], key=lambda a: int(a.get("id") or 0))
        canonical.append({
            "id": task.get("id"), "data": task.get("data"),
            "annotations": [{"id": a.get("id"), "result": a.get("result"), "was_cancelled": bool(a.get("was_cancelled"))}
                            for a in annotations],
        })
    return _key("annotations", {"tasks": canonical})
