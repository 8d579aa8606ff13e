"""Several data sources at once (`data_path` as a list): each is read as a single source would be
(`tokclf.data.ingest.load_labelled_data`, any format, span exports included, into the same sink),
then the splits of the same name are written one source after another into the sink, batch by
batch with their tag ids renumbered in Arrow (never concatenated as Python objects).

- Labels are unified by name, after each source's label map: the train splits' labels first (in
  the order of the sources), then labels only other splits have, "O" first, then sorted, as for
  one source (`tokclf.data.labels.order_labels`). Integer tags without names cannot be matched by
  name and are an error.
- A split is read from every source that has it; the train split must be in every source, the
  validation split in at least one (test stays optional); validation_split_ratio carves its share
  from each source's train split, so every source is represented in validation.
- Every sentence keeps its source in the SOURCE column (the source as given, or as
  `source_names` names it), which the validation report counts per source and `tokclf evaluate`
  breaks its scores down by.
- With a disk sink each source's splits are written first under `<split>.source-<i>` (the
  sink's scratch folder, as for one source), then the merged split under `<split>`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from tokclf.core.columns import SOURCE, TAGS
from tokclf.core.errors import DataError
from tokclf.data.labels import order_labels
from tokclf.data.types import LabelledData

# (split name, Arrow tables, features) -> datasets.Dataset: `tokclf.data.ingest.Sink`.
Sink = Callable[[str, Any, Any], Any]


def _tag_ids(ds: Any) -> set[int]:
    """The tag ids a split uses, read in Arrow batches."""
    import pyarrow.compute as pc

    from tokclf.core.arrowio import dataset_tables

    seen: set[int] = set()
    for table in dataset_tables(ds.select_columns([TAGS])):
        seen.update(np.unique(pc.list_flatten(table.column(TAGS)).to_numpy()).tolist())
    return seen


def _renumbered(ds: Any, lookup: np.ndarray, source: str) -> Iterator[Any]:
    """A source's split as Arrow tables with its tag ids mapped through `lookup` (old id -> merged
    id) and the SOURCE column set, one batch at a time."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from tokclf.core.arrowio import dataset_tables

    columns = [c for c in ds.column_names if c != SOURCE]
    for table in dataset_tables(ds.select_columns(columns)):
        tags = table.column(TAGS)
        lengths = pc.list_value_length(tags).to_numpy(zero_copy_only=False).astype(np.int64)
        offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
        np.cumsum(lengths, out=offsets[1:])
        flat = pc.list_flatten(tags).to_numpy().astype(np.int64)
        renumbered = pa.ListArray.from_arrays(pa.array(offsets), pa.array(lookup[flat]))
        table = table.set_column(table.schema.get_field_index(TAGS), TAGS, renumbered)
        yield table.append_column(SOURCE, pa.array([source] * table.num_rows, pa.string()))


def load_sources(
    data_paths: Sequence[str],
    load: Callable[..., LabelledData],
    available: Callable[[str], list[str]],
    *,
    train_split: str,
    valid_split: str | None,
    test_split: str | None,
    label_names: Any,
    sink: Sink | None = None,
    source_names: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> LabelledData:
    """`load` (load_labelled_data) on every source, merged (see the module docstring);
    `available(path)` lists a source's split names (without reading them); `sink` as for
    load_labelled_data (default: in memory); `source_names`: path -> the name its sentences get
    in the SOURCE column (default: the path)."""
    from datasets import Value

    from tokclf.data.ingest import memory_sink, resolve_split

    if not data_paths:
        raise DataError("data_path is an empty list", fix="give at least one data source.", code="E2075")
    write = sink or memory_sink
    named = dict(source_names or {})
    parts: list[tuple[str, LabelledData]] = []
    for i, path in enumerate(data_paths):
        splits = available(path)
        has_valid = valid_split is not None and resolve_split(valid_split, splits, where=path) is not None
        # Each source's splits go to the sink under their own names; the merge below reads them
        # back in batches. Without a sink they stay in memory as Arrow, read as one source would be.
        part_sink = None if sink is None else (
            lambda name, tables, features, i=i: sink(f"{name}.source-{i}", tables, features))
        data = load(path, train_split=train_split, valid_split=valid_split if has_valid else None,
                    test_split=test_split, label_names=label_names, sink=part_sink, **kwargs)
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
                seen = {d.label_names[t] for t in _tag_ids(d.splits[split])}
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
            lookup = np.array([index[n] for n in d.label_names], dtype=np.int64)
            pieces.append((d.splits[split], lookup, named.get(path, path)))
            shown.append(d.sources.get(split, path))
            kinds.add(d.units.get(split, "row"))
            if split in d.annotations:
                annotations.setdefault(split, {})[path] = d.annotations[split]
        features = pieces[0][0].features.copy()
        features.pop(SOURCE, None)
        features[SOURCE] = Value("string")
        merged[split] = write(split, (t for ds, lookup, source in pieces for t in _renumbered(ds, lookup, source)),
                              features)
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
