"""Readers of span annotation exports, one module per tool, and the choice between them.

Each reader returns `SpanDoc`s (tokclf.data.spans), which `read_span_split` aligns to words with
IOB2 tags and returns as the `RawSplit` every tokclf reader produces, so span data goes through the
same label resolution, validation, tokenization and training as token/tag data.

Detection (`detect_format`, data_format="auto"): by the file's content, not its name alone:
- `.spacy` file -> spacy (DocBin); a folder holding `.ann` files, or a `.ann` file -> brat;
- JSON / JSON Lines: the first record decides: `data` + `annotations`/`predictions` -> Label Studio
  (JSON export); `text` + a list of `{start, end, labels}` objects -> Label Studio JSON-MIN;
  `text` + `spans` -> Prodigy; `text` + `label` (`[[start, end, type]]`) or `entities` with
  `start_offset` -> doccano; anything else -> "tags" (tokens/tags records, tokclf.data.tabular).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tokclf.core.errors import DataError
from tokclf.data.labels import RawSplit
from tokclf.data.spans import SpanDoc, SpanOptions, align_docs, to_raw_split, to_records

SPAN_FORMATS = ("labelstudio", "doccano", "prodigy", "brat", "spacy")
DATA_FORMATS = ("auto", "tags", *SPAN_FORMATS)
# Suffixes a span export may have (a folder of split files lists these too).
# How a record is named in messages ("<file>, task 3").
UNITS = {"labelstudio": "task", "doccano": "line", "prodigy": "line", "brat": "document", "spacy": "doc"}
SPAN_SUFFIXES = frozenset({".json", ".jsonl", ".ndjson", ".spacy", ".ann"})


def _first_record(path: Path) -> Any:
    """The first JSON record of a .json (array, or JSON Lines saved as .json) or .jsonl file, read
    from the head of the file only; None when it cannot be told (the reader then reports why)."""
    with open(path, "rb") as fh:
        head = fh.read(1 << 20).decode("utf-8-sig", errors="replace")
    stripped = head.lstrip()
    if stripped.startswith("["):
        decoder = json.JSONDecoder()
        try:
            value, _ = decoder.raw_decode(stripped[1:].lstrip())
        except ValueError:
            return None
        return value
    line = next((ln for ln in head.split("\n") if ln.strip()), "")
    try:
        return json.loads(line)
    except ValueError:
        return None


def record_format(rec: Any) -> str:
    """Which export one JSON record looks like ("tags" when none)."""
    if not isinstance(rec, dict):
        return "tags"
    if isinstance(rec.get("data"), dict) and ("annotations" in rec or "predictions" in rec):
        return "labelstudio"
    if "text" in rec:
        spans, tokens = rec.get("spans"), rec.get("tokens")
        # Prodigy spans are objects; tokclf's predict JSONL has "spans" too, as [start, end] pairs.
        if "answer" in rec or (isinstance(spans, list) and spans and all(isinstance(x, dict) for x in spans)) or (
                isinstance(spans, list) and isinstance(tokens, list) and tokens and isinstance(tokens[0], dict)):
            return "prodigy"
        if isinstance(rec.get("entities"), list) or (
                isinstance(rec.get("label"), list) and all(isinstance(x, list) for x in rec["label"])):
            return "doccano"
        from tokclf.data.formats.labelstudio import min_label_key

        if min_label_key(rec) is not None:
            return "labelstudio"
    return "tags"


def detect_format(path: Path) -> str:
    """"tags" or one of SPAN_FORMATS, from the content of `path` (a file or a folder)."""
    if path.is_dir():
        return "brat" if any(path.glob("*.ann")) else "tags"
    suffix = path.suffix.lower()
    if suffix == ".spacy":
        return "spacy"
    if suffix == ".ann":
        return "brat"
    if suffix in (".json", ".jsonl", ".ndjson"):
        return record_format(_first_record(path))
    return "tags"


MODULES = {"labelstudio": "labelstudio", "doccano": "doccano", "prodigy": "prodigy", "brat": "brat",
           "spacy": "spacy_docbin"}


def reader(fmt: str) -> Callable[..., list[SpanDoc]]:
    """The `read(path, *, all_records=False) -> list[SpanDoc]` of one format (imported when used:
    spaCy is heavy). all_records: also the records that are no training data (Label Studio tasks
    without an annotation, Prodigy answers other than accept), for predicting on them."""
    import importlib

    if fmt not in SPAN_FORMATS:
        raise DataError(f"data_format={fmt!r} is not a span format", fix=f"use one of {', '.join(SPAN_FORMATS)}.", code="E2009")
    return importlib.import_module(f"tokclf.data.formats.{MODULES[fmt]}").read  # type: ignore[no-any-return]


def read_span_docs(path: Path, fmt: str, *, all_records: bool = False) -> list[SpanDoc]:
    if not path.exists():
        raise DataError(f"no such file or folder: {path}", fix="check the path.", code="E2010")
    return reader(fmt)(path, all_records=all_records)


def read_span_split(path: Path, fmt: str, options: SpanOptions) -> RawSplit:
    """One split of a span export -> words with IOB2 tags (see tokclf.data.spans), one record per
    sentence or per document (options.records)."""
    docs = read_span_docs(path, fmt)
    aligned, stats = align_docs(docs, options)
    return to_raw_split(to_records(aligned, options.records), stats, source=str(path), unit=UNITS[fmt])
