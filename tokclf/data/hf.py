"""Hugging Face datasets: folders written by `save_to_disk` and Hub dataset ids.

A tags column typed Sequence(ClassLabel) carries the label names; they are kept (see labels.py).
Places are "row N", the 1-based record index inside the split.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tokclf.core.errors import DataError
from tokclf.data.labels import RawSplit
from tokclf.data.tabular import check_record, missing_column, set_documents

# Files `save_to_disk` writes: a DatasetDict has dataset_dict.json, a Dataset has the other two.
SAVED_MARKERS = ("dataset_dict.json", "dataset_info.json", "state.json")


def is_saved_dataset(path: Path) -> bool:
    return path.is_dir() and any((path / m).is_file() for m in SAVED_MARKERS)


def load_saved(path: Path) -> dict[str, Any] | Any:
    """A save_to_disk folder -> {split: Dataset} for a DatasetDict, or the Dataset itself."""
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:  # noqa: BLE001 - datasets raises many kinds; the user needs one message
        raise DataError(f"cannot load the saved dataset: {type(exc).__name__}: {exc}", where=str(path),
                        fix="point data_path at a folder written by Dataset.save_to_disk / DatasetDict.save_to_disk.", code="E2043") from None
    if isinstance(loaded, datasets.DatasetDict):
        return dict(loaded)
    return loaded


def load_hub(name: str) -> dict[str, Any]:
    """A Hub dataset id -> {split: Dataset}. Offline or unknown ids become one clear DataError."""
    import datasets

    try:
        loaded = datasets.load_dataset(name)
    except Exception as exc:  # noqa: BLE001 - network, auth, missing repo, offline mode, bad script...
        raise DataError(
            f"{name!r} is not a local file or folder, and loading it as a Hugging Face Hub dataset failed: "
            f"{type(exc).__name__}: {str(exc)[:300]}",
            where=name,
            fix="check the path (relative paths start from the current folder), or, for a Hub dataset, "
            "check the id and your network; with HF_HUB_OFFLINE=1 / HF_DATASETS_OFFLINE=1 only cached "
            "datasets load, so give a local path (file, folder or save_to_disk folder) instead.", code="E2044",
        ) from None
    if isinstance(loaded, datasets.DatasetDict):
        return dict(loaded)
    return {"train": loaded}


def classlabel_names(feature: Any) -> list[str] | None:
    """Names of a Sequence(ClassLabel)/List(ClassLabel) feature, else None."""
    from datasets import ClassLabel

    inner = getattr(feature, "feature", None)
    if isinstance(inner, ClassLabel):
        return list(inner.names)
    return None


def raw_from_dataset(
    ds: Any, *, source: str, tokens_column: str = "tokens", tags_column: str = "tags", max_samples: int | None = None,
    document_column: str | None = None,
) -> RawSplit:
    """One datasets.Dataset -> RawSplit (tags as stored; ClassLabel names kept; documents from
    `document_column`, `tokclf.data.tabular.set_documents`, which needs the whole split)."""
    if document_column is not None and document_column not in ds.column_names:
        raise missing_column(document_column, "document_column", list(ds.column_names), source)
    if max_samples is not None and max_samples < len(ds) and tokens_column in ds.column_names \
            and tags_column in ds.column_names:
        ds = ds.select(range(max_samples))
    out: RawSplit | None = None
    for part in iter_dataset(ds, source=source, tokens_column=tokens_column, tags_column=tags_column):
        if out is None:
            out = part
            continue
        out.tokens += part.tokens
        out.tags += part.tags
        out.lines += part.lines
        out.documents += part.documents
    if out is None:
        return RawSplit([], [], [], [], source, "row", label_names=classlabel_names(ds.features[tags_column]))
    if document_column is not None:
        set_documents(out, ds.select_columns([document_column]).to_dict()[document_column], document_column)
    return out


def iter_dataset(ds: Any, *, source: str, tokens_column: str = "tokens", tags_column: str = "tags",
                 batch_sentences: int | None = None) -> Iterator[RawSplit]:
    """A datasets.Dataset as RawSplits of at most `batch_sentences` rows (default
    `tokclf.core.arrowio.BATCH_ROWS`), read from its Arrow data batch by batch (a save_to_disk
    folder is memory-mapped, so only the batch in hand becomes Python objects)."""
    from tokclf.core.arrowio import dataset_tables

    columns = list(ds.column_names)
    for name, which in ((tokens_column, "tokens_column"), (tags_column, "tags_column")):
        if name not in columns:
            raise missing_column(name, which, columns, source)
    names = classlabel_names(ds.features[tags_column])
    place = 0
    for table in dataset_tables(ds.select_columns([tokens_column, tags_column]), batch_sentences):
        out = RawSplit([], [], [], [], source, "row", label_names=names)
        for tokens, tags in zip(table.column(tokens_column).to_pylist(), table.column(tags_column).to_pylist()):
            place += 1
            tokens, tags = check_record(tokens, tags, tokens_column=tokens_column, tags_column=tags_column,
                                        where=f"{source}, row {place}")
            out.tokens.append(tokens)
            out.tags.append(tags)
            out.lines.append(place)
            out.documents.append(0)
        yield out
