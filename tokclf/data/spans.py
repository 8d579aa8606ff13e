"""Character spans over raw text -> words with IOB2 tags, keeping every word's character offsets.

Every span annotation reader (`tokclf.data.formats`) produces `SpanDoc`s: a text, its spans
(start, end, label, the text the tool recorded) and, when the export has its own tokens, the
words as character offsets. `align_doc` turns one into words and IOB2 tags:

- words: the export's own tokens where it has them (Prodigy `tokens[]`, spaCy `Doc` tokens),
  otherwise `tokclf.text.words.split_words` (the splitter predict uses on raw text);
- first the span is checked: offsets inside the text, end after start, a label, and the recorded
  text equal to `text[start:end]` — each failure a `DataError` naming file, record, offsets and
  the fix (nothing is written by a caller that lets it propagate);
- a span edge inside a word (`span_alignment`): "expand" grows the span to whole words, "contract"
  shrinks it to the words wholly inside it (dropped when none is), "strict" is an error; every
  expanded/contracted/dropped span is an `AlignmentIssue` for the validation report;
- overlapping or nested spans (after alignment, on words): an error naming both spans, or with
  `overlapping="longest"` the longer one is kept (the earlier on a tie), with "first" the one that
  starts first (the longer on a tie); each dropped span is reported;
- the label map renames types before tagging (so two merged types that touch become two B- runs).

Lossless for spans on word boundaries: `tokclf.inference.annotations` turns the tags back into the
same character spans through the kept offsets.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from tokclf.core.errors import DataError
from tokclf.data.labels import RawSplit
from tokclf.data.schemes import OUTSIDE

ALIGNMENTS = ("expand", "contract", "strict")
RECORDS = ("sentence", "document")
OVERLAPPING = ("error", "longest", "first")
# Issues kept per split with their text; the counts always cover all of them.
MAX_ISSUES = 200


@dataclass(frozen=True)
class Span:
    """One annotated mention: [start, end) character offsets into its document's text.

    recorded: the mention's text as the tool stored it (None when it stores none); ref: how the
    source names it (brat "T3", Label Studio result id), for messages.
    """

    start: int
    end: int
    label: str
    recorded: str | None = None
    ref: str = ""
    # Why the reader already widened the span (a discontinuous brat mention), for the report.
    widened: str = ""


@dataclass
class SpanDoc:
    """One record of a span export: a task, a JSONL line, a brat document, a spaCy Doc.

    where: "<file>, <unit> <n>" for messages; line: the 1-based record number (LINE column);
    words: the export's own tokens as (start, end) offsets, or None (tokclf's splitter decides).
    """

    text: str
    spans: list[Span]
    where: str
    line: int
    document: int = 0
    words: list[tuple[int, int]] | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class SpanOptions:
    alignment: str = "expand"
    overlapping: str = "error"
    label_map: dict[str, str] | None = None
    # Known span types (from label_names); with alignment="strict" any other type is an error.
    known_types: set[str] | None = None
    # The training record: one per sentence (split_sentences) or one per document.
    records: str = "sentence"


def span_options(alignment: str = "expand", overlapping: str = "error", label_map: str | dict[str, str] | None = None,
                 label_names: Sequence[str] | None = None, records: str = "sentence") -> SpanOptions:
    """The options from parameters. Known types (what strict checks labels against): the types of
    label_names' B-/I- tags when given, else the label map's targets (and names it leaves alone)."""
    if alignment not in ALIGNMENTS or overlapping not in OVERLAPPING:
        raise DataError(f"span_alignment={alignment!r} / overlapping={overlapping!r} is not an option",
                        fix=f"span_alignment: {', '.join(ALIGNMENTS)}; overlapping: {', '.join(OVERLAPPING)}.", code="E2078")
    mapping = parse_label_map(label_map)
    known = {n[2:] for n in label_names if n[:2] in ("B-", "I-")} if label_names else None
    if known is None and mapping and alignment == "strict":
        known = set(mapping.values())
    if records not in RECORDS:
        raise DataError(f"span_records={records!r} is not an option", fix=f"span_records: {', '.join(RECORDS)}.", code="E2113")
    return SpanOptions(alignment, overlapping, mapping, known, records)


@dataclass
class AlignmentIssue:
    """A span tokclf changed or dropped: where, its offsets, text and label, and what was done."""

    where: str
    start: int
    end: int
    text: str
    label: str
    action: str  # "expanded" | "contracted" | "dropped" | "overlap-dropped"
    detail: str

    def message(self) -> str:
        return f"span [{self.start}:{self.end}] {self.text!r} ({self.label}) {self.action}: {self.detail}"


@dataclass
class AlignedDoc:
    """A SpanDoc as words with IOB2 tags; `offsets[i]` is word i's [start, end) in `text`."""

    text: str
    words: list[str]
    offsets: list[tuple[int, int]]
    tags: list[str]
    line: int
    document: int
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class SpanStats:
    """Counts for the validation report (one per split)."""

    records: int = 0
    spans: int = 0
    kept: int = 0
    expanded: int = 0
    contracted: int = 0
    dropped: int = 0
    overlap_dropped: int = 0
    issues: list[AlignmentIssue] = field(default_factory=list)

    def add(self, issue: AlignmentIssue) -> None:
        key = issue.action.replace("-", "_")
        setattr(self, key, getattr(self, key) + 1)
        if len(self.issues) < MAX_ISSUES:
            self.issues.append(issue)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["issues"] = [asdict(i) | {"message": i.message()} for i in self.issues]
        return out


# --- UTF-16 offsets (Label Studio counts in JavaScript string units) ---------------------------------

def utf16_to_index(text: str) -> dict[int, int] | None:
    """UTF-16 code unit offset -> Python string index, or None when they are the same (no character
    outside the Basic Multilingual Plane, e.g. no emoji)."""
    if all(ord(c) <= 0xFFFF for c in text):
        return None
    table, unit = {}, 0
    for i, ch in enumerate(text):
        table[unit] = i
        unit += 2 if ord(ch) > 0xFFFF else 1
    table[unit] = len(text)
    return table


def index_to_utf16(text: str, index: int) -> int:
    return index + sum(1 for c in text[:index] if ord(c) > 0xFFFF)


# --- the label map ------------------------------------------------------------------------------

def parse_label_map(value: str | dict[str, str] | None) -> dict[str, str] | None:
    """`A=B,C=B`, a mapping, or a YAML/JSON file of `old: new` -> {old: new}."""
    if value is None:
        return None
    if isinstance(value, dict):
        pairs, source = {str(k): str(v) for k, v in value.items()}, "label_map"
    else:
        path = Path(value).expanduser()
        if path.is_file():
            pairs, source = _label_map_file(path), str(path)
        elif "=" in value:
            pairs, source = {}, "label_map"
            for part in (p.strip() for p in value.split(",")):
                if not part:
                    continue
                old, sep, new = part.partition("=")
                if not sep or not old.strip() or not new.strip():
                    raise DataError(f"label_map entry {part!r} is not OLD=NEW", where="label_map",
                                    fix="write e.g. 'Modifier=Disease,SpecificDisease=Disease'.", code="E2079")
                pairs[old.strip()] = new.strip()
        else:
            raise DataError(f"label_map={value!r} is neither an existing file nor OLD=NEW pairs", where="label_map",
                            fix="write 'Modifier=Disease,SpecificDisease=Disease' or give a YAML/JSON file of old: new.", code="E2080")
    for old, new in pairs.items():
        if old.startswith(("B-", "I-")) or new.startswith(("B-", "I-")) or OUTSIDE in (old, new) and old != new:
            raise DataError(f"label_map maps {old!r} to {new!r}: it maps entity types, not tags", where=source,
                            fix="name types without B-/I- prefixes (Modifier=Disease), and leave 'O' out.", code="E2081")
    return pairs or None


def _label_map_file(path: Path) -> dict[str, str]:
    import yaml

    from tokclf.data.tabular import read_text

    text = read_text(path)
    try:
        raw = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise DataError(f"label map file is not valid {path.suffix.lstrip('.').upper() or 'YAML'}: {exc}",
                        where=str(path), fix="write one `old: new` pair per line (YAML) or a JSON object.", code="E2082") from None
    if not isinstance(raw, dict) or not all(isinstance(v, (str, int)) for v in raw.values()):
        raise DataError("label map file must hold a mapping of old type -> new type", where=str(path),
                        fix="write one `old: new` pair per line (YAML) or a JSON object.", code="E2083")
    return {str(k): str(v) for k, v in raw.items()}


def map_type(label: str, label_map: dict[str, str] | None) -> str:
    return label_map.get(label, label) if label_map else label


def map_tag(tag: Any, label_map: dict[str, str] | None) -> Any:
    """B-X/I-X/E-X/S-X/L-X/U-X with X renamed; other tags (O, POS tags, ids) as they are... unless
    the whole tag is a key of the map (tag data without prefixes, e.g. POS)."""
    if not label_map or not isinstance(tag, str):
        return tag
    if len(tag) > 2 and tag[1] == "-" and tag[0] in "BIESLU":
        return tag[:2] + label_map.get(tag[2:], tag[2:])
    return label_map.get(tag, tag)


def map_split_tags(raw: RawSplit, label_map: dict[str, str] | None) -> RawSplit:
    """The label map applied to a tag split (string tags; ids and ClassLabel data are left alone)."""
    if not label_map:
        return raw
    raw.tags = [[map_tag(t, label_map) for t in tags] for tags in raw.tags]
    return raw


# --- checking and aligning one document ---------------------------------------------------------

def _span_where(doc: SpanDoc, span: Span) -> str:
    ref = f" {span.ref}" if span.ref else ""
    return f"{doc.where}, span{ref} [{span.start}:{span.end}]"


def check_span(doc: SpanDoc, span: Span, options: SpanOptions) -> None:
    """The located errors of one span: offsets, label, recorded text, unknown type under strict."""
    n = len(doc.text)
    where = _span_where(doc, span)
    if not isinstance(span.start, int) or not isinstance(span.end, int) or isinstance(span.start, bool):
        raise DataError(f"offsets must be integers, got {span.start!r} and {span.end!r}", where=where,
                        fix="export character offsets as integers.", code="E2084")
    if span.start < 0 or span.end > n:
        raise DataError(f"offsets are outside the text, which has {n} characters", where=where,
                        fix="re-export the annotations against this exact text (offsets count characters "
                        "from 0; an edited text shifts them).", code="E2085")
    if span.end <= span.start:
        raise DataError(f"the span ends ({span.end}) {'before' if span.end < span.start else 'where'} it starts "
                        f"({span.start})", where=where, fix="give every span end > start (end is exclusive).", code="E2086")
    if not span.label or not str(span.label).strip():
        raise DataError("the span has no label", where=where, fix="give every span a label, or delete it.", code="E2087")
    actual = doc.text[span.start:span.end]
    if span.recorded is not None and span.recorded != actual and " ".join(span.recorded.split()) != " ".join(actual.split()):
        raise DataError(f"the recorded span text {span.recorded!r} differs from the text at these offsets "
                        f"{actual!r}", where=where,
                        fix="the text was edited after annotating, or the offsets count something else "
                        "(bytes, UTF-16 units): re-export the annotations from the same text.", code="E2088")
    if options.alignment == "strict" and options.known_types is not None:
        label = map_type(span.label, options.label_map)
        if label not in options.known_types:
            raise DataError(f"label {span.label!r} is not a known type ({', '.join(sorted(options.known_types))})",
                            where=where, fix="add it to label_names / label_map, correct the label, or use "
                            "span_alignment=expand to accept the labels as they come.", code="E2089")


def _word_range(offsets: Sequence[tuple[int, int]], start: int, end: int, mode: str) -> tuple[int, int]:
    """Words [first, last) the span covers: any overlap (expand) or whole words only (contract)."""
    if mode == "contract":
        inside = [i for i, (s, e) in enumerate(offsets) if s >= start and e <= end]
    else:
        inside = [i for i, (s, e) in enumerate(offsets) if s < end and e > start]
    return (inside[0], inside[-1] + 1) if inside else (0, 0)


def _words_of(doc: SpanDoc) -> tuple[list[str], list[tuple[int, int]]]:
    if doc.words is not None:
        offsets = [(int(s), int(e)) for s, e in doc.words]
        return [doc.text[s:e] for s, e in offsets], offsets
    from tokclf.text.words import split_words

    return split_words(doc.text)


def align_doc(doc: SpanDoc, options: SpanOptions, stats: SpanStats) -> AlignedDoc:
    """Words, offsets and IOB2 tags of one document (see the module docstring)."""
    words, offsets = _words_of(doc)
    stats.records += 1
    placed: list[tuple[int, int, Span]] = []  # word range + original span
    for span in doc.spans:
        stats.spans += 1
        check_span(doc, span, options)
        text = doc.text[span.start:span.end]
        label = map_type(span.label, options.label_map)
        here = f"{doc.where}, {span.ref}" if span.ref else doc.where
        first, last = _word_range(offsets, span.start, span.end, options.alignment)
        if first == last:
            stats.add(AlignmentIssue(here, span.start, span.end, text, label, "dropped",
                                     "it covers no whole word" if options.alignment == "contract"
                                     else "it covers only spaces or characters that are no word"))
            continue
        ws, we = offsets[first][0], offsets[last - 1][1]
        if (ws, we) != (span.start, span.end) and doc.text[span.start:span.end].strip() != doc.text[ws:we]:
            if options.alignment == "strict":
                raise DataError(
                    f"span {text!r} ({span.label}) has an edge inside a word: the words there are "
                    f"[{ws}:{we}] {doc.text[ws:we]!r}", where=_span_where(doc, span),
                    fix="correct the span to whole words, or use span_alignment=expand (grow to whole words) "
                    "or contract (shrink to the words inside).", code="E2090")
            action = "expanded" if options.alignment == "expand" else "contracted"
            stats.add(AlignmentIssue(here, span.start, span.end, text, label, action,
                                     f"now [{ws}:{we}] {doc.text[ws:we]!r}"))
        elif span.widened:
            stats.add(AlignmentIssue(here, span.start, span.end, text, label, "expanded", span.widened))
        placed.append((first, last, Span(span.start, span.end, label, text, span.ref)))
    kept = _resolve_overlaps(doc, placed, options, stats)
    tags = [OUTSIDE] * len(words)
    for first, last, span in kept:
        tags[first] = "B-" + span.label
        for i in range(first + 1, last):
            tags[i] = "I-" + span.label
    stats.kept += len(kept)
    return AlignedDoc(doc.text, words, offsets, tags, doc.line, doc.document, dict(doc.meta))


def _resolve_overlaps(doc: SpanDoc, placed: list[tuple[int, int, Span]], options: SpanOptions,
                      stats: SpanStats) -> list[tuple[int, int, Span]]:
    # Longest first or earliest first decides which of two overlapping spans survives.
    if options.overlapping == "longest":
        order = sorted(placed, key=lambda p: (-(p[1] - p[0]), p[0]))
    else:
        order = sorted(placed, key=lambda p: (p[0], -(p[1] - p[0])))
    kept: list[tuple[int, int, Span]] = []
    for first, last, span in order:
        clash = next((k for k in kept if first < k[1] and k[0] < last), None)
        if clash is None:
            kept.append((first, last, span))
            continue
        other = clash[2]
        if (first, last, span.label) == (clash[0], clash[1], other.label):
            continue  # the same mention twice (two identical results): one is enough
        if options.overlapping == "error":
            raise DataError(
                f"spans overlap: [{other.start}:{other.end}] {other.recorded!r} ({other.label}) and "
                f"[{span.start}:{span.end}] {span.recorded!r} ({span.label})",
                where=doc.where,
                fix="delete one of them, or set overlapping=longest (keep the longer) or overlapping=first "
                "(keep the one starting first); IOB2 tags cannot hold nested spans.", code="E2091")
        stats.add(AlignmentIssue(doc.where, span.start, span.end, span.recorded or "", span.label, "overlap-dropped",
                                 f"overlaps [{other.start}:{other.end}] {other.recorded!r} ({other.label}), "
                                 f"kept by overlapping={options.overlapping}"))
    return sorted(kept, key=lambda k: k[0])


def align_docs(docs: Iterable[SpanDoc], options: SpanOptions) -> tuple[list[AlignedDoc], SpanStats]:
    stats = SpanStats()
    return [align_doc(d, options, stats) for d in docs], stats


# --- sentence records ----------------------------------------------------------------------------

def split_sentences(doc: AlignedDoc) -> list[AlignedDoc]:
    """One AlignedDoc per sentence of `doc` (tokclf.text.sentences), never cutting an entity: a
    boundary before an I- tag is dropped. Each piece keeps the whole `text` and offsets into it, and
    `meta["sentence"]` its number, so `join_sentences` gives back `doc` exactly (and the writers the
    same character spans)."""
    from tokclf.text.sentences import sentence_starts

    starts = [i for i in sentence_starts(doc.text, doc.offsets) if not doc.tags[i].startswith("I-")]
    bounds = list(zip(starts, starts[1:] + [len(doc.words)]))
    return [AlignedDoc(doc.text, doc.words[a:b], doc.offsets[a:b], doc.tags[a:b], doc.line, doc.document,
                       dict(doc.meta) | {"sentence": k}) for k, (a, b) in enumerate(bounds)] or [doc]


def join_sentences(pieces: Sequence[AlignedDoc]) -> AlignedDoc:
    """The document `split_sentences` cut into `pieces` (in order)."""
    first = pieces[0]
    meta = {k: v for k, v in first.meta.items() if k != "sentence"}
    return AlignedDoc(first.text, [w for p in pieces for w in p.words], [o for p in pieces for o in p.offsets],
                      [t for p in pieces for t in p.tags], first.line, first.document, meta)


def to_records(aligned: list[AlignedDoc], records: str) -> list[AlignedDoc]:
    """The training records of aligned documents: sentences (split_sentences) or the documents.
    Sentences carry their document's number (1-based, its place in the split) in `document`, as
    CoNLL sentences carry their -DOCSTART- document's."""
    if records != "sentence":
        return aligned
    out = []
    for k, doc in enumerate(aligned, 1):
        out.extend(replace(piece, document=k) for piece in split_sentences(doc))
    return out


def to_raw_split(aligned: list[AlignedDoc], stats: SpanStats, *, source: str, unit: str) -> RawSplit:
    """Aligned documents -> the RawSplit every reader returns (tags as IOB2 strings)."""
    if not aligned:
        raise DataError("no annotated records found", where=source,
                        fix="export at least one annotated task/document (cancelled and rejected ones are skipped).", code="E2092")
    # A sentence record's place in its document (split_sentences' meta["sentence"]); a whole
    # document record is sentence 0 of its own document.
    raw = RawSplit([d.words for d in aligned], [d.tags for d in aligned], [d.line for d in aligned],
                   [d.document for d in aligned], source, unit,
                   positions=[int(d.meta.get("sentence", 0)) for d in aligned])
    raw.annotations = stats.to_dict()
    changed = stats.expanded + stats.contracted + stats.dropped + stats.overlap_dropped
    if changed:
        raw.notes.append(f"{source}: {stats.spans} span(s), {stats.expanded} expanded, {stats.contracted} contracted, "
                         f"{stats.dropped} dropped, {stats.overlap_dropped} dropped as overlapping")
    return raw
