"""`tokclf convert`: between token/tag data (CoNLL, JSONL) and span annotation exports (Label
Studio, doccano, Prodigy, brat, spaCy).

Every input becomes `SpanRecord`s (text, word offsets, character spans): span exports are read by
`tokclf.data.formats` and aligned to words (`tokclf.data.spans`, the same rules as training, so
`convert` shows what training will see); CoNLL and JSONL words are joined by single spaces into a
text unless the JSONL line carries its own `text` and word `offsets` (which tokclf's JSONL output
does, so span -> jsonl -> span keeps the original text and offsets). Spans on word boundaries come
back unchanged from any round trip through these formats; a span tokclf had to expand/contract
comes back on word edges.

Output format from --to, else from OUTPUT: `.spacy` spacy, `.json` labelstudio, `.jsonl` jsonl
(tokens/tags), `.conll/.tsv/.txt/.iob/.bio` conll, a name without suffix a brat folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokclf.core.errors import DataError, TokclfError
from tokclf.core.fileio import atomic_file
from tokclf.data import formats
from tokclf.data.conll import CONLL_DATA_SUFFIXES
from tokclf.data.spans import SpanOptions, SpanStats, align_docs, map_tag, span_options
from tokclf.inference.annotations import ANNOTATION_FORMATS, SpanRecord, from_tags, write_annotations
from tokclf.text.words import join_words

TAG_FORMATS = ("conll", "jsonl")
CONVERT_FORMATS = TAG_FORMATS + ANNOTATION_FORMATS


@dataclass
class Converted:
    records: int
    source_format: str
    target_format: str
    stats: dict[str, Any] = field(default_factory=dict)


def input_format(path: Path, given: str | None) -> str:
    if given:
        return given
    span = formats.detect_format(path) if path.exists() else "tags"
    if span != "tags":
        return span
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in CONLL_DATA_SUFFIXES:
        return "conll"
    raise DataError(f"cannot tell the format of {path.name}", where=str(path),
                    fix=f"name it with --from ({', '.join(CONVERT_FORMATS)}).", code="E3004")


def output_format(path: Path, given: str | None) -> str:
    if given:
        return given
    suffix = path.suffix.lower()
    by_suffix = {".spacy": "spacy", ".json": "labelstudio", ".jsonl": "jsonl", ".ndjson": "jsonl"}
    if suffix in by_suffix:
        return by_suffix[suffix]
    if suffix in CONLL_DATA_SUFFIXES:
        return "conll"
    if not suffix:
        return "brat"
    raise TokclfError(f"cannot tell the output format from {path.name!r}",
                      fix=f"name it with --to ({', '.join(CONVERT_FORMATS)}).", code="E3005")


def _tag_records(path: Path, fmt: str, label_map: dict[str, str] | None) -> list[SpanRecord]:
    if fmt == "conll":
        from tokclf.data.conll import read_conll

        raw = read_conll(path)
        lines = [{"tokens": w, "tags": t, "line": ln} for w, t, ln in zip(raw.tokens, raw.tags, raw.lines)]
    else:
        from tokclf.data.formats.jsonrecords import read_records

        records, unit = read_records(path)
        lines = []
        for place, rec in records:
            where = f"{path}, {unit} {place}"
            if not isinstance(rec, dict) or not isinstance(rec.get("tokens"), list) or not isinstance(rec.get("tags"), list):
                raise DataError("expected an object with `tokens` and `tags` lists", where=where,
                                fix='write {"tokens": ["John", "lives"], "tags": ["B-PER", "O"]} per line.', code="E3006")
            if len(rec["tokens"]) != len(rec["tags"]):
                raise DataError(f"{len(rec['tokens'])} tokens but {len(rec['tags'])} tags", where=where,
                                fix="give every word exactly one tag.", code="E3007")
            lines.append({**rec, "line": place})
    out = []
    for rec in lines:
        words = [str(w) for w in rec["tokens"]]
        tags = [str(map_tag(t, label_map)) for t in rec["tags"]]
        text, offsets = rec.get("text"), rec.get("offsets")
        if not (isinstance(text, str) and isinstance(offsets, list) and len(offsets) == len(words)
                and all(text[a:b] == w for (a, b), w in zip(offsets, words))):
            text, offsets = join_words(words)
        meta = {k: rec[k] for k in ("id",) if k in rec}
        out.append(from_tags(text, [tuple(o) for o in offsets], tags, meta))
    return out


def read_records(path: Path, fmt: str, options: SpanOptions) -> tuple[list[SpanRecord], SpanStats | None]:
    """Any convertible input -> span records (span exports aligned as training aligns them)."""
    if fmt in TAG_FORMATS:
        return _tag_records(path, fmt, options.label_map), None
    aligned, stats = align_docs(formats.read_span_docs(path, fmt), options)
    return [from_tags(d.text, d.offsets, d.tags, d.meta) for d in aligned], stats


def _tags_of(rec: SpanRecord) -> list[str]:
    tags = ["O"] * len(rec.offsets)
    for span in rec.spans:
        first, last = span["words"]
        tags[first] = "B-" + span["label"]
        for i in range(first + 1, last):
            tags[i] = "I-" + span["label"]
    return tags


def write_tag_records(records: list[SpanRecord], output: Path, fmt: str) -> None:
    with atomic_file(output) as fh:
        for rec in records:
            words = [rec.text[a:b] for a, b in rec.offsets]
            tags = _tags_of(rec)
            if fmt == "conll":
                fh.write("".join(f"{w}\t{t}\n" for w, t in zip(words, tags)) + "\n")
            else:
                line: dict[str, Any] = {"id": rec.meta["id"]} if rec.meta.get("id") is not None else {}
                line.update({"tokens": words, "tags": tags, "text": rec.text, "offsets": [list(o) for o in rec.offsets]})
                fh.write(json.dumps(line, ensure_ascii=False) + "\n")


def convert(source: str | Path, target: str | Path, *, from_format: str | None = None, to_format: str | None = None,
            label_map: str | dict[str, str] | None = None, span_alignment: str = "expand",
            overlapping: str = "error") -> Converted:
    """Read `source` in one format and write `target` in another (see the module docstring);
    nothing is written when reading fails."""
    src, dst = Path(source).expanduser(), Path(target).expanduser()
    if not src.exists():
        raise DataError(f"no such file or folder: {src}", fix="check the input path.", code="E3008")
    if src.resolve() == dst.resolve():
        raise TokclfError("input and output are the same path", where=str(src), fix="write to another file.", code="E3009")
    fin, fout = input_format(src, from_format), output_format(dst, to_format)
    for name, fmt in (("--from", fin), ("--to", fout)):
        if fmt not in CONVERT_FORMATS:
            raise TokclfError(f"{name} {fmt!r} is not a format", fix=f"use one of {', '.join(CONVERT_FORMATS)}.", code="E3010")
    options = span_options(span_alignment, overlapping, label_map)
    records, stats = read_records(src, fin, options)
    if fout in TAG_FORMATS:
        write_tag_records(records, dst, fout)
    else:
        write_annotations(records, dst, fout)
    counts = {k: v for k, v in stats.to_dict().items() if k != "issues"} if stats else {}
    return Converted(len(records), fin, fout, counts)
