"""Prodigy ner / ner_manual datasets (`prodigy db-out` JSON Lines).

`{"text", "tokens": [{"text", "start", "end", "id", "ws"}], "spans": [{"start", "end", "label",
"token_start", "token_end"}], "answer": "accept" | "reject" | "ignore"}`. Only `answer: accept`
is training data (a line without `answer` counts as accepted: a file of suggestions tokclf or
another tool wrote). When `tokens` are present they are the words (Prodigy's annotators saw and
snapped to them); otherwise tokclf's word splitter decides. A span's `text`, when present, is
checked against the text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tokclf.core.errors import DataError
from tokclf.data.formats.jsonrecords import offset, read_records, require_dict, require_text
from tokclf.data.spans import Span, SpanDoc

_EXAMPLE = '{"text": "John lives here.", "spans": [{"start": 0, "end": 4, "label": "PER"}], "answer": "accept"}'


def _tokens(rec: dict[str, Any], text: str, where: str) -> list[tuple[int, int]] | None:
    tokens = rec.get("tokens")
    if not tokens:
        return None
    out = []
    for n, tok in enumerate(tokens, 1):
        here = f"{where}, token {n}"
        if not isinstance(tok, dict) or "start" not in tok or "end" not in tok:
            raise DataError("a token needs start and end", where=here, fix='write {"text": "John", "start": 0, "end": 4, "id": 0}.', code="E2035")
        start, end = offset(tok["start"], "start", here), offset(tok["end"], "end", here)
        if not 0 <= start < end <= len(text):
            raise DataError(f"token [{start}:{end}] is outside the text ({len(text)} characters) or empty", where=here,
                            fix="export the tokens with the text they were made from.", code="E2036")
        if text[start:end].isspace():
            continue  # spaCy-style whitespace tokens are no words
        out.append((start, end))
    return out


def read(path: Path, *, all_records: bool = False) -> list[SpanDoc]:
    records, unit = read_records(path)
    docs = []
    skipped = 0
    for place, rec in records:
        where = f"{path}, {unit} {place}"
        rec = require_dict(rec, where, _EXAMPLE)
        if rec.get("answer", "accept") != "accept" and not all_records:
            skipped += 1
            continue
        text = require_text(rec, "text", where, f"give every line its text: {_EXAMPLE}.")
        spans = []
        raw_spans = rec.get("spans") or []
        if not isinstance(raw_spans, list):
            raise DataError("`spans` must be a list", where=where, fix=f"write {_EXAMPLE}.", code="E2037")
        for n, sp in enumerate(raw_spans, 1):
            here = f"{where}, span {n}"
            if not isinstance(sp, dict) or "start" not in sp or "end" not in sp:
                raise DataError("a span needs start, end and label", where=here, fix=f"write {_EXAMPLE}.", code="E2038")
            spans.append(Span(offset(sp["start"], "start", here), offset(sp["end"], "end", here),
                              str(sp.get("label") or ""), sp.get("text") if isinstance(sp.get("text"), str) else None,
                              f"span {n}"))
        meta = rec.get("meta") if isinstance(rec.get("meta"), dict) else {}
        docs.append(SpanDoc(text, spans, where, place, words=_tokens(rec, text, where),
                            meta={"id": meta.get("id", rec.get("id"))}))
    if not docs:
        raise DataError(f"no accepted records ({skipped} rejected or ignored)", where=str(path),
                        fix="accept some examples in Prodigy, then `prodigy db-out DATASET > file.jsonl`.", code="E2039")
    return docs
