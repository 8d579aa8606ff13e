"""brat standoff: a folder of `NAME.txt` (the text) + `NAME.ann` (the annotations) pairs, or one
`.ann` file (its `.txt` beside it).

`.ann` lines: `T<n>\\t<type> <start> <end>[;<start> <end>...]\\t<text>` are mentions; `N` (normalisations),
`R` (relations), `E` (events), `A`/`M` (attributes), `#` (notes) and `*` (equivalences) lines are
not entities and are skipped. Offsets are characters of the `.txt` as it is on disk (no newline
translation).

Discontinuous mentions (`0 5;9 14`): one span from the first fragment's start to the last
fragment's end, so the words between the fragments are inside it (IOB2 cannot tag a gap); each such
span is noted in the validation report as "expanded". The recorded text of a discontinuous span is
its fragments joined by spaces, which is what brat writes.

A document is one record (a title line and an abstract are one record), named
"<file>.ann, line N" in messages about its spans.
"""

from __future__ import annotations

from pathlib import Path

from tokclf.core.errors import DataError
from tokclf.data.spans import Span, SpanDoc
from tokclf.data.tabular import read_text

_SKIPPED = ("N", "R", "E", "A", "M", "#", "*")


def _pairs(path: Path) -> list[tuple[Path, Path]]:
    if path.is_file():
        if path.suffix.lower() != ".ann":
            raise DataError("a brat source is a folder of .txt/.ann pairs or one .ann file", where=str(path),
                            fix="point data_path at the folder (or the .ann file).", code="E2011")
        anns = [path]
    else:
        anns = sorted(path.glob("*.ann"))
        if not anns:
            raise DataError("no .ann files in this folder", where=str(path),
                            fix="a brat folder holds NAME.txt + NAME.ann for every document.", code="E2012")
    pairs = []
    for ann in anns:
        txt = ann.with_suffix(".txt")
        if not txt.is_file():
            raise DataError(f"{ann.name} has no text file beside it ({txt.name} is missing)", where=str(ann),
                            fix=f"put {txt.name} (the text the offsets point into) next to {ann.name}, or remove {ann.name}.", code="E2013")
        pairs.append((txt, ann))
    if path.is_dir():
        lonely = sorted(p.name for p in path.glob("*.txt") if not p.with_suffix(".ann").is_file())
        if lonely:
            # A .txt without .ann is an unannotated document: brat itself shows it with no mentions.
            pairs += [(path / name, path / (Path(name).stem + ".ann")) for name in lonely]
            pairs.sort()
    return pairs


def _parse_t(line: str, where: str) -> Span:
    parts = line.split("\t")
    if len(parts) < 2:
        raise DataError("a T line needs tab-separated ID, 'TYPE START END' and the text", where=where,
                        fix="write T1<TAB>Disease 10 17<TAB>cancers.", code="E2014")
    ident, body = parts[0], parts[1]
    recorded = parts[2] if len(parts) > 2 else None
    label, _, offsets = body.partition(" ")
    frags = []
    for frag in offsets.split(";"):
        bits = frag.split()
        if len(bits) != 2 or not all(b.lstrip("-").isdigit() for b in bits):
            raise DataError(f"{ident}: {frag.strip()!r} is not 'START END'", where=where,
                            fix="write character offsets as 'TYPE START END' (fragments separated by ';').", code="E2015")
        frags.append((int(bits[0]), int(bits[1])))
    if not label.strip():
        raise DataError(f"{ident} has no type", where=where, fix="write T1<TAB>TYPE START END<TAB>text.", code="E2016")
    start, end = frags[0][0], frags[-1][1]
    if len(frags) > 1 and recorded is not None:
        recorded = None  # checked per fragment by the caller
    return Span(start, end, label, recorded, ident)


def read(path: Path, *, all_records: bool = False) -> list[SpanDoc]:
    docs = []
    for index, (txt, ann) in enumerate(_pairs(path)):
        text = read_text(txt) if txt.stat().st_size else ""
        spans: list[Span] = []
        discontinuous: list[str] = []
        ann_text = read_text(ann) if ann.is_file() and ann.stat().st_size else ""
        for lineno, line in enumerate(ann_text.split("\n"), 1):
            line = line.rstrip("\r")
            if not line.strip() or line.startswith(_SKIPPED):
                continue
            where = f"{ann}, line {lineno}"
            if not line.startswith("T"):
                raise DataError(f"unknown annotation line {line[:40]!r}", where=where,
                                fix="brat lines start with T, N, R, E, A, M, # or *.", code="E2017")
            span = _parse_t(line, where)
            body = line.split("\t")
            if ";" in body[1]:
                frags = [tuple(map(int, f.split())) for f in body[1].partition(" ")[2].split(";")]
                for a, b in frags:
                    if a < 0 or b > len(text) or b <= a:
                        raise DataError(f"{span.ref}: fragment [{a}:{b}] is outside the text ({len(text)} characters) "
                                        "or ends before it starts", where=f"{where} ({txt.name})",
                                        fix="re-export the annotations against this exact .txt file.", code="E2018")
                if len(body) > 2 and body[2] != " ".join(text[a:b] for a, b in frags):
                    raise DataError(f"{span.ref}: the recorded text {body[2]!r} differs from the text at the fragments "
                                    f"{' '.join(text[a:b] for a, b in frags)!r}", where=f"{where} ({txt.name})",
                                    fix="the .txt was edited after annotating: re-export the annotations.", code="E2019")
                discontinuous.append(span.ref)
            widened = f"discontinuous fragments {body[1].partition(' ')[2]} taken as one span" if ";" in body[1] else ""
            spans.append(Span(span.start, span.end, span.label, span.recorded, f"{span.ref} ({ann.name} line {lineno})",
                              widened))
        meta = {"name": txt.stem, "discontinuous": discontinuous} if discontinuous else {"name": txt.stem}
        docs.append(SpanDoc(text, spans, f"{ann}", index + 1, meta=meta))
    return docs
