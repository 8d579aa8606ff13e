"""JSON and JSON Lines records with their places, for the span export readers.

A truncated or broken file is a `DataError` naming the line and column where parsing stopped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tokclf.core.errors import DataError
from tokclf.data.tabular import json_lines, read_text


def _broken(path: Path, exc: json.JSONDecodeError, line_offset: int = 0) -> DataError:
    # Parsing stopped at the very end, or inside a string never closed: the file was cut off.
    truncated = exc.pos >= len(exc.doc.rstrip()) - 1 or exc.msg.startswith("Unterminated")
    return DataError(
        f"not valid JSON: {exc.msg} (column {exc.colno})" + (" — the file looks truncated" if truncated else ""),
        where=f"{path}, line {exc.lineno + line_offset}",
        fix="export the file again from the annotation tool (a JSON array of tasks, or one JSON object per line).", code="E2024",
    )


def read_records(path: Path) -> tuple[list[tuple[int, Any]], str]:
    """(place, record) pairs and how a place is counted: a JSON array -> ("task"/record index,
    1-based), JSON Lines -> physical line numbers ("line")."""
    text = read_text(path)
    if text.lstrip().startswith("["):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _broken(path, exc) from None
        return list(enumerate(doc, 1)), "record"
    return json_lines(text, lambda exc, offset: _broken(path, exc, offset)), "line"


def require_dict(rec: Any, where: str, example: str) -> dict[str, Any]:
    if not isinstance(rec, dict):
        raise DataError(f"expected a JSON object, got {type(rec).__name__}", where=where, fix=f"write records like {example}.", code="E2025")
    return rec


def require_text(rec: dict[str, Any], key: str, where: str, fix: str) -> str:
    text = rec.get(key)
    if not isinstance(text, str):
        got = "no" if text is None else f"a {type(text).__name__} as"
        raise DataError(f"the record has {got} {key!r} (the text its spans point into)", where=where, fix=fix, code="E2026")
    return text


def offset(value: Any, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise DataError(f"{name} must be an integer character offset, got {value!r}", where=where,
                        fix="export character offsets as integers.", code="E2027")
    return value
