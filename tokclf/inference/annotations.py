"""Span annotations out: predictions (pre-annotations) and converted data as Label Studio, doccano,
Prodigy, brat and spaCy files.

Everything goes through `SpanRecord` (a text, its words' offsets, character spans): predictions
arrive as `PredictionRecord`s (their entities already are character spans), converted data as
words + IOB2 tags + offsets (`from_tags`, through `tokclf.inference.entities.tag_spans`, the rule
evaluation counts entities by). Spans keep the offsets into the original text, so a span export
read by `tokclf.data.formats` and written here gives back the same spans when they sit on word
boundaries.

Label Studio: `to_labelstudio_tasks` writes tasks with `predictions[]` (`model_version`, `score`
per task = the mean probability of the predicted tag over all words, `result[]` with a `score`
per span = the mean over its words, the entity score predict reports), ready for Label Studio's
import as pre-annotations; converted gold data goes under `annotations[]` instead.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokclf.core.errors import TokclfError
from tokclf.core.fileio import atomic_file, staged_dir
from tokclf.inference.entities import tag_spans
from tokclf.inference.records import PredictionRecord

ANNOTATION_FORMATS = ("labelstudio", "doccano", "prodigy", "brat", "spacy")
# Label Studio's default NER labeling config names its controls so (<Labels name="label" toName="text">).
LS_FROM_NAME = "label"
LS_TO_NAME = "text"
BRAT_CONF = "annotation.conf"


@dataclass
class SpanRecord:
    """One text with character spans: [{start, end, label, text, score?}] in text order."""

    text: str
    offsets: list[tuple[int, int]]
    spans: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)
    score: float | None = None  # per-record confidence (predictions only)


def from_prediction(rec: PredictionRecord) -> SpanRecord:
    spans = [{"start": e["start"], "end": e["end"], "label": e["type"], "text": e["text"], "score": e["score"],
              "words": e["words"]} for e in rec.entities]
    score = round(sum(rec.scores) / len(rec.scores), 4) if rec.scores else None
    return SpanRecord(rec.text, list(rec.spans), spans, dict(rec.meta), score)


def from_tags(text: str, offsets: Sequence[tuple[int, int]], tags: Sequence[str],
              meta: dict[str, Any] | None = None) -> SpanRecord:
    """Words (as offsets into `text`) with tags -> character spans, entities as evaluation counts them."""
    spans = []
    for label, first, last in tag_spans(list(tags)):
        start, end = offsets[first][0], offsets[last - 1][1]
        spans.append({"start": start, "end": end, "label": label, "text": text[start:end], "words": [first, last]})
    return SpanRecord(text, [tuple(o) for o in offsets], spans, dict(meta or {}))


# --- Label Studio -----------------------------------------------------------------------------------

def _ls_results(rec: SpanRecord, from_name: str, to_name: str, with_scores: bool) -> list[dict[str, Any]]:
    from tokclf.data.spans import index_to_utf16

    out = []
    for span in rec.spans:
        # Label Studio counts offsets in UTF-16 units (JavaScript strings).
        start, end = index_to_utf16(rec.text, span["start"]), index_to_utf16(rec.text, span["end"])
        item: dict[str, Any] = {
            "id": uuid.uuid4().hex[:10], "from_name": from_name, "to_name": to_name, "type": "labels",
            "value": {"start": start, "end": end, "text": span["text"], "labels": [span["label"]]},
        }
        if with_scores and span.get("score") is not None:
            item["score"] = span["score"]
        out.append(item)
    return out


def _ls_data(rec: SpanRecord, data_key: str) -> dict[str, Any]:
    """The task's data: a task read from Label Studio keeps its fields, its text under its own key."""
    data = dict(rec.meta.get("data") or {})
    key = next((k for k, v in data.items() if v == rec.text), data_key)
    data[key] = rec.text
    if rec.meta.get("name") is not None:
        data.setdefault("name", rec.meta["name"])  # a brat document's name survives the round trip
    return data


def to_labelstudio_tasks(
    records: Iterable[PredictionRecord | SpanRecord],
    *,
    model_version: str,
    from_name: str = LS_FROM_NAME,
    to_name: str = LS_TO_NAME,
    data_key: str = "text",
) -> list[dict[str, Any]]:
    """Label Studio tasks with `predictions[]` (pre-annotations) from predictions.

    Each task: `{"data": {data_key: text, ...}, "predictions": [{"model_version", "score", "result"}]}`,
    plus `"id"` when the input had one (a task read from a Label Studio export keeps its id and
    data fields, so the file can be imported into the same project). from_name/to_name must match
    the project's labeling config (`<Labels name=from_name toName=to_name>`, `<Text name=to_name
    value="$data_key">`).
    """
    tasks = []
    for item in records:
        rec = from_prediction(item) if isinstance(item, PredictionRecord) else item
        prediction: dict[str, Any] = {"model_version": model_version,
                                      "result": _ls_results(rec, from_name, to_name, with_scores=True)}
        if rec.score is not None:
            prediction["score"] = rec.score
        task: dict[str, Any] = {}
        if rec.meta.get("id") is not None:
            task["id"] = rec.meta["id"]
        task["data"] = _ls_data(rec, data_key)
        task["predictions"] = [prediction]
        tasks.append(task)
    return tasks


def labelstudio_annotated_tasks(records: Iterable[SpanRecord], *, from_name: str = LS_FROM_NAME,
                                to_name: str = LS_TO_NAME, data_key: str = "text") -> list[dict[str, Any]]:
    """Converted gold data as Label Studio tasks with one submitted annotation each."""
    tasks = []
    for rec in records:
        task: dict[str, Any] = {}
        if rec.meta.get("id") is not None:
            task["id"] = rec.meta["id"]
        task["data"] = _ls_data(rec, data_key)
        task["annotations"] = [{"result": _ls_results(rec, from_name, to_name, with_scores=False),
                                "was_cancelled": False}]
        tasks.append(task)
    return tasks


# --- doccano, Prodigy ------------------------------------------------------------------------------

def doccano_line(rec: SpanRecord) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if rec.meta.get("id") is not None:
        out["id"] = rec.meta["id"]
    out["text"] = rec.text
    out["label"] = [[s["start"], s["end"], s["label"]] for s in rec.spans]
    return out


def prodigy_line(rec: SpanRecord, *, answer: str | None = "accept") -> dict[str, Any]:
    """Prodigy's ner task: tokens (the words, so Prodigy and tokclf agree on them) and spans."""
    tokens = []
    for i, (start, end) in enumerate(rec.offsets):
        nxt = rec.offsets[i + 1][0] if i + 1 < len(rec.offsets) else len(rec.text)
        tokens.append({"text": rec.text[start:end], "start": start, "end": end, "id": i,
                       "ws": nxt > end and rec.text[end:end + 1].isspace()})
    word_of = {start: i for i, (start, _) in enumerate(rec.offsets)}
    ends = {end: i for i, (_, end) in enumerate(rec.offsets)}
    spans = []
    for s in rec.spans:
        span: dict[str, Any] = {"start": s["start"], "end": s["end"], "label": s["label"]}
        if s["start"] in word_of and s["end"] in ends:
            span["token_start"], span["token_end"] = word_of[s["start"]], ends[s["end"]]
        if s.get("score") is not None:
            span["score"] = s["score"]
        spans.append(span)
    out: dict[str, Any] = {"text": rec.text, "tokens": tokens, "spans": spans}
    if rec.meta.get("id") is not None:
        out["meta"] = {"id": rec.meta["id"]}
    if answer is not None:
        out["answer"] = answer
    return out


# --- brat -------------------------------------------------------------------------------------------

def brat_ann(rec: SpanRecord) -> str:
    """`T<n>\\t<type> <start> <end>\\t<text>` per span (a span's text never holds a newline in
    brat: such a span is written as fragments around the line breaks)."""
    lines = []
    for n, s in enumerate(rec.spans, 1):
        frags = _line_fragments(rec.text, s["start"], s["end"])
        where = ";".join(f"{a} {b}" for a, b in frags)
        text = " ".join(rec.text[a:b] for a, b in frags)
        lines.append(f"T{n}\t{s['label']} {where}\t{text}")
    return "".join(line + "\n" for line in lines)


def _line_fragments(text: str, start: int, end: int) -> list[tuple[int, int]]:
    frags, pos = [], start
    while True:
        nl = text.find("\n", pos, end)
        if nl == -1:
            frags.append((pos, end))
            return frags
        if nl > pos:
            frags.append((pos, nl))
        pos = nl + 1


def _brat_name(rec: SpanRecord, index: int) -> str:
    data = rec.meta.get("data") if isinstance(rec.meta.get("data"), dict) else {}
    ident = rec.meta.get("name") or data.get("name") or rec.meta.get("id")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(ident)) if ident is not None else ""
    return safe or f"doc-{index:05d}"


def write_brat(records: Iterable[SpanRecord], folder: str | Path) -> int:
    """One `<name>.txt` + `<name>.ann` per record into `folder` (replaced as a whole when complete)."""
    count = 0
    with staged_dir(folder, marker=BRAT_CONF, what="a brat folder written by tokclf") as tmp:
        types: set[str] = set()
        used: set[str] = set()
        for i, rec in enumerate(records, 1):
            name = _brat_name(rec, i)
            while name in used:
                name += "_"
            used.add(name)
            (tmp / f"{name}.txt").write_text(rec.text, encoding="utf-8", newline="")
            (tmp / f"{name}.ann").write_text(brat_ann(rec), encoding="utf-8", newline="")
            types.update(s["label"] for s in rec.spans)
            count += 1
        # brat's own config: the entity types, so the folder opens in brat as it is.
        conf = "[entities]\n" + "".join(f"{t}\n" for t in sorted(types)) + "[relations]\n[events]\n[attributes]\n"
        (tmp / BRAT_CONF).write_text(conf, encoding="utf-8")
    return count


# --- spaCy ------------------------------------------------------------------------------------------

def spacy_docbin_bytes(records: Iterable[SpanRecord]) -> bytes:
    """A DocBin of Docs whose tokens are the words (whitespace between them kept as spaCy keeps
    it: a trailing space flag, or a whitespace token), with the spans as `doc.ents`."""
    from tokclf.core.extras import require

    require("spacy", feature="the spaCy DocBin format")
    from spacy.tokens import Doc, DocBin
    from spacy.vocab import Vocab

    vocab = Vocab()
    docbin = DocBin(store_user_data=False)
    for rec in records:
        words: list[str] = []
        spaces: list[bool] = []
        pos = 0
        for start, end in rec.offsets:
            gap = rec.text[pos:start]
            if gap:
                if words and gap == " ":
                    spaces[-1] = True
                else:
                    words.append(gap)
                    spaces.append(False)
            words.append(rec.text[start:end])
            spaces.append(False)
            pos = end
        if rec.text[pos:]:
            if words and rec.text[pos:] == " ":
                spaces[-1] = True
            else:
                words.append(rec.text[pos:])
                spaces.append(False)
        doc = Doc(vocab, words=words, spaces=spaces)
        ents = []
        for s in rec.spans:
            ent = doc.char_span(s["start"], s["end"], label=s["label"])
            if ent is None:
                raise TokclfError(f"span [{s['start']}:{s['end']}] {s['text']!r} does not fall on the Doc's tokens",
                                  fix="report this: spans on word boundaries always do.", code="E3001")
            ents.append(ent)
        doc.ents = ents
        docbin.add(doc)
    return bytes(docbin.to_bytes())


# --- one entry point --------------------------------------------------------------------------------

def write_annotations(records: Iterable[SpanRecord], output: str | Path, fmt: str, *,
                      predictions: bool = False, model_version: str = "tokclf") -> int:
    """Write span records as `fmt` to `output` atomically (brat: a folder); returns the count.

    predictions=True: Label Studio tasks get `predictions[]` (pre-annotations) instead of
    `annotations[]`, and Prodigy lines no `answer` (they are suggestions, not accepted data).
    """
    items = list(records)
    if fmt == "brat":
        return write_brat(items, output)
    if fmt == "spacy":
        data = spacy_docbin_bytes(items)
        with atomic_file(output, "wb") as fh:
            fh.write(data)
        return len(items)
    with atomic_file(output) as fh:
        if fmt == "labelstudio":
            tasks = (to_labelstudio_tasks(items, model_version=model_version) if predictions
                     else labelstudio_annotated_tasks(items))
            json.dump(tasks, fh, ensure_ascii=False, indent=1)
            fh.write("\n")
        elif fmt in ("doccano", "prodigy"):
            for rec in items:
                line = doccano_line(rec) if fmt == "doccano" else prodigy_line(
                    rec, answer=None if predictions else "accept")
                fh.write(json.dumps(line, ensure_ascii=False) + "\n")
        else:
            raise TokclfError(f"unknown annotation format {fmt!r}", fix=f"use one of {', '.join(ANNOTATION_FORMATS)}.", code="E3002")
    return len(items)
