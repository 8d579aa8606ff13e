"""Datasets written and read in batches: what keeps memory bounded from ingest to training.

A split on disk is a `save_to_disk` folder (`load_from_disk` memory-maps it, so training and
evaluation page in only the rows they touch). `write_split` builds that folder from an iterator
of Arrow tables, one batch at a time, and `iter_tables` reads a split back batch by batch:
from the folder's Arrow stream through an ordinary file handle when it can (a memory map would
keep every page it touched resident and counted in the process's RSS), otherwise through
datasets' own batched Arrow access (a split with an indices mapping, e.g. a carved validation
share). Either way a stage holds one batch of rows as Python objects, never a whole split.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

# Rows per batch for the streaming passes (ingest, validate) and per Arrow record batch written.
# Sentences are ~1 KB as Python objects, so a batch costs ~10 MB whatever the split's size.
BATCH_ROWS = 10_000
ARROW_FILE = "data-00000-of-00001.arrow"


def write_split(folder: Path, tables: Iterable[Any], features: Any = None) -> int:
    """Write Arrow tables (all with the columns of `features`; None: those of the first table) as
    one `save_to_disk` split folder; returns the number of rows. `_fingerprint` is set by the
    caller (content-derived)."""
    import itertools

    import pyarrow as pa

    folder.mkdir(parents=True, exist_ok=True)
    if features is None:
        from datasets import Features

        tables = iter(tables)
        head = next(tables)
        features = Features.from_arrow_schema(head.schema)
        tables = itertools.chain([head], tables)
    schema = features.arrow_schema
    rows = 0
    with pa.OSFile(str(folder / ARROW_FILE), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        for table in tables:
            table = table.select(schema.names).cast(schema)
            for batch in table.to_batches(max_chunksize=BATCH_ROWS):
                writer.write_batch(batch)
            rows += table.num_rows
    state = {"_data_files": [{"filename": ARROW_FILE}], "_fingerprint": "", "_format_columns": None,
             "_format_kwargs": {}, "_format_type": None, "_output_all_columns": False, "_split": None}
    (folder / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True), encoding="utf-8")
    info = {"citation": "", "description": "", "features": features.to_dict(), "homepage": "", "license": ""}
    (folder / "dataset_info.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    return rows


def write_dataset_dict(folder: Path, splits: dict[str, tuple[Iterable[Any], Any]]) -> dict[str, int]:
    """Split name -> (tables, features), written as a `save_to_disk` DatasetDict folder."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = {name: write_split(folder / name, tables, features) for name, (tables, features) in splits.items()}
    (folder / "dataset_dict.json").write_text(json.dumps({"splits": list(splits)}), encoding="utf-8")
    return rows


def dataset_tables(dataset: Any, batch_rows: int | None = None) -> Iterator[Any]:
    """A datasets.Dataset as Arrow tables of at most `batch_rows` (default BATCH_ROWS) rows, in row order."""
    batch_rows = batch_rows or BATCH_ROWS
    columns = list(dataset.column_names)
    files = [Path(f["filename"]) for f in getattr(dataset, "cache_files", [])]
    own_stream = (dataset._indices is None and len(files) == 1 and files[0].is_file()
                  and dataset.data.num_rows == dataset.num_rows)
    if own_stream:
        import pyarrow as pa

        with pa.OSFile(str(files[0]), "rb") as source:
            try:
                reader = pa.ipc.open_stream(source)
            except pa.ArrowInvalid:
                reader = None  # not an Arrow stream (another tool's Arrow file): read as below
            if reader is not None and set(columns) <= set(reader.schema.names):
                for batch in reader:
                    table = pa.Table.from_batches([batch]).select(columns)
                    for lo in range(0, table.num_rows, batch_rows):
                        yield table.slice(lo, batch_rows)
                return
    arrow = dataset.with_format("arrow")
    for lo in range(0, dataset.num_rows, batch_rows):
        yield arrow[lo:lo + batch_rows]


def in_memory_dataset(tables: Iterable[Any], features: Any) -> Any:
    """The tables as one in-memory datasets.Dataset (the `tokclf train` path: no files)."""
    import pyarrow as pa
    from datasets import Dataset

    schema = features.arrow_schema
    parts = [t.select(schema.names).cast(schema) for t in tables]
    table = pa.concat_tables(parts) if parts else schema.empty_table()
    return Dataset(table)
