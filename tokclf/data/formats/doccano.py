"""doccano sequence-labeling exports (JSON Lines, or a JSON array of the same objects).

Two shapes, both read: `{"text": ..., "label": [[start, end, "TYPE"], ...]}` (doccano >= 1.6
"JSONL") and `{"text": ..., "entities": [{"id", "label", "start_offset", "end_offset"}, ...]}`
(the export with relations). Offsets are Python string indices; doccano records no span text, so
the check against the text is on offsets only. Every line is a record (doccano has no cancelled
state; an unannotated line gives a sentence of O tags, which is what it means there).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tokclf.core.errors import DataError
from tokclf.data.formats.jsonrecords import offset, read_records, require_dict, require_text
from tokclf.data.spans import Span, SpanDoc

_EXAMPLE = '{"text": "John lives in Paris.", "label": [[0, 4, "PER"], [14, 19, "LOC"]]}'


def _spans(rec: dict[str, Any], where: str) -> list[Span]:
    spans = []
    if isinstance(rec.get("entities"), list):
        for n, ent in enumerate(rec["entities"], 1):
            here = f"{where}, entity {ent.get('id', n) if isinstance(ent, dict) else n}"
            if not isinstance(ent, dict) or "start_offset" not in ent or "end_offset" not in ent:
                raise DataError("an entity needs start_offset, end_offset and label", where=here,
                                fix='write {"label": "PER", "start_offset": 0, "end_offset": 4}.', code="E2020")
            spans.append(Span(offset(ent["start_offset"], "start_offset", here), offset(ent["end_offset"], "end_offset", here),
                              str(ent.get("label") or ""), None, f"entity {ent.get('id', n)}"))
        return spans
    labels = rec.get("label", rec.get("labels", []))
    if not isinstance(labels, list):
        raise DataError(f"`label` must be a list of [start, end, type], got {type(labels).__name__}", where=where,
                        fix=f"write {_EXAMPLE}.", code="E2021")
    for n, item in enumerate(labels, 1):
        here = f"{where}, label {n}"
        if not isinstance(item, (list, tuple)) or len(item) not in (2, 3):
            raise DataError(f"label {n} is {item!r}, not [start, end, type]", where=here, fix=f"write {_EXAMPLE}.", code="E2022")
        start, end = offset(item[0], "start", here), offset(item[1], "end", here)
        spans.append(Span(start, end, str(item[2]) if len(item) == 3 and item[2] is not None else "", None, f"label {n}"))
    return spans


def read(path: Path, *, all_records: bool = False) -> list[SpanDoc]:
    records, unit = read_records(path)
    docs = []
    for place, rec in records:
        where = f"{path}, {unit} {place}"
        rec = require_dict(rec, where, _EXAMPLE)
        text = require_text(rec, "text", where, f"give every line its text: {_EXAMPLE}.")
        docs.append(SpanDoc(text, _spans(rec, where), where, place, meta={"id": rec.get("id")}))
    if not docs:
        raise DataError("no records", where=str(path), fix=f"write one object per line: {_EXAMPLE}.", code="E2023")
    return docs
