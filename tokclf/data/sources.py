"""Several data sources at once (`data_path` as a list): each is read as a single source would be
(`tokclf.data.ingest.load_labelled_data`, any format, span exports included), then the splits of
the same name are concatenated.

- Labels are unified by name, after each source's label map: the train splits' labels first (in
  the order of the sources), then labels only other splits have, "O" first, then sorted, as for
  one source (`tokclf.data.labels.order_labels`). Integer tags without names cannot be matched by
  name and are an error.
- A split is read from every source that has it; the train split must be in every source, the
  validation split in at least one (test stays optional); validation_split_ratio carves its share
  from each source's train split, so every source is represented in validation.
- Every sentence keeps its source in the SOURCE column (the source as given), which the
  validation report counts per source and `tokclf evaluate` breaks its scores down by.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tokclf.core.columns import SOURCE, TAGS
from tokclf.core.errors import DataError
from tokclf.data.labels import order_labels
from tokclf.data.types import LabelledData


def _with_source(ds: Any, tags: list[list[int]], source: str) -> Any:
    from datasets import Dataset, Value

    columns = {name: (tags if name == TAGS else ds[name][:]) for name in ds.column_names if name != SOURCE}
    features = ds.features.copy()
    features.pop(SOURCE, None)
    features[SOURCE] = Value("string")
    columns[SOURCE] = [source] * len(ds)
    return Dataset.from_dict(columns, features=features)


def load_sources(
    data_paths: Sequence[str],
    load: Callable[..., LabelledData],
    available: Callable[[str], list[str]],
    *,
    train_split: str,
    valid_split: str | None,
    test_split: str | None,
    label_names: Any,
    **kwargs: Any,
) -> LabelledData:
    """`load` (load_labelled_data) on every source, merged (see the module docstring);
    `available(path)` lists a source's split names (without reading them)."""
    from datasets import concatenate_datasets

    from tokclf.data.ingest import resolve_split

    if not data_paths:
        raise DataError("data_path is an empty list", fix="give at least one data source.", code="E2075")
    parts: list[tuple[str, LabelledData]] = []
    for path in data_paths:
        splits = available(path)
        has_valid = valid_split is not None and resolve_split(valid_split, splits, where=path) is not None
        data = load(path, train_split=train_split, valid_split=valid_split if has_valid else None,
                    test_split=test_split, label_names=label_names, **kwargs)
        if data.label_names is None:
            raise DataError("integer tags without label names cannot be merged with other sources by name", where=path,
                            fix="set label_names, or convert the tags to names.", code="E2076")
        parts.append((path, data))
    if valid_split is not None and not any(valid_split in d.splits for _, d in parts):
        raise DataError(f"valid_split={valid_split!r} is in none of the sources", where=", ".join(data_paths),
                        fix="give one source with that split, or use validation_split_ratio.", code="E2077")

    names: list[str] = []
    order = [train_split] + sorted({s for _, d in parts for s in d.splits} - {train_split})
    for split in order:
        for _, d in parts:
            if split in d.splits:
                assert d.label_names is not None
                seen = {d.label_names[t] for tags in d.splits[split][TAGS] for t in tags}
                names += order_labels(seen - set(names))
    if label_names is not None:
        from tokclf.data.labels import parse_label_names

        names = parse_label_names(label_names) or names
    index = {n: i for i, n in enumerate(names)}

    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    units: dict[str, str] = {}
    annotations: dict[str, Any] = {}
    for split in order:
        pieces, shown, kinds = [], [], set()
        for path, d in parts:
            if split not in d.splits:
                continue
            assert d.label_names is not None
            table = [index[n] for n in d.label_names]
            tags = [[table[t] for t in row] for row in d.splits[split][TAGS]]
            pieces.append(_with_source(d.splits[split], tags, path))
            shown.append(d.sources.get(split, path))
            kinds.add(d.units.get(split, "row"))
            if split in d.annotations:
                annotations.setdefault(split, {})[path] = d.annotations[split]
        merged[split] = concatenate_datasets(pieces)
        sources[split] = " + ".join(shown)
        units[split] = kinds.pop() if len(kinds) == 1 else "record"
    # Alignment counts summed over the sources (issues kept, each names its own file).
    summed: dict[str, Any] = {}
    for split, per_source in annotations.items():
        total: dict[str, Any] = {"issues": [], "by_source": {}}
        for path, ann in per_source.items():
            for key, value in ann.items():
                if key == "issues":
                    total["issues"] += value
                else:
                    total[key] = total.get(key, 0) + value
            total["by_source"][path] = {k: v for k, v in ann.items() if k != "issues"}
        summed[split] = total
    notes = [f"{len(parts)} sources: " + ", ".join(f"{p} ({', '.join(f'{s} {len(ds)}' for s, ds in d.splits.items())})"
                                                   for p, d in parts)]
    for path, d in parts:
        notes += [f"{path}: {n}" for n in d.notes]
    return LabelledData(splits=merged, label_names=names, sources=sources, units=units, label_origin="strings",
                        notes=notes, annotations=summed)
