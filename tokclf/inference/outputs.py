"""Writers of predictions: JSONL, CoNLL columns and a readable table, to a file (atomically) or stdout."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tokclf.core.fileio import atomic_file
from tokclf.data.conll import CONLL_DATA_SUFFIXES
from tokclf.inference.records import PredictionRecord

OUTPUT_FORMATS = ("auto", "jsonl", "conll", "table")


def output_format_for(path: str | None, fmt: str, *, count: int, tty: bool) -> str:
    """"auto": by the output file's extension (.conll/.tsv/.txt/.iob/.bio -> conll, else jsonl);
    on stdout a table for up to 20 records on a terminal, else jsonl."""
    if fmt != "auto":
        return fmt
    if path and path != "-":
        if Path(path).suffix.lower() == ".spacy":
            return "spacy"
        return "conll" if Path(path).suffix.lower() in CONLL_DATA_SUFFIXES else "jsonl"
    return "table" if tty and count <= 20 else "jsonl"


def write_jsonl(records: Iterable[PredictionRecord], fh: Any) -> None:
    for rec in records:
        fh.write(json.dumps(rec.to_dict(), ensure_ascii=False) + "\n")


def write_conll(records: Iterable[PredictionRecord], fh: Any) -> None:
    """`word TAB tag` per line, `word TAB gold TAB tag` when the input had gold tags (the
    conlleval column order: `tokclf evaluate`'s scoring or conlleval.pl read it), a blank line
    after each record, and -DOCSTART- lines where the input's documents change."""
    document = 0
    for rec in records:
        doc = rec.meta.get("document", 0)
        columns = 3 if rec.gold is not None else 2
        if doc != document:
            fh.write("\t".join(["-DOCSTART-"] + ["O"] * (columns - 1)) + "\n\n")
            document = doc
        for i, (word, tag) in enumerate(zip(rec.words, rec.tags)):
            word = word.replace("\t", " ")
            fh.write(f"{word}\t{rec.gold[i]}\t{tag}\n" if rec.gold is not None else f"{word}\t{tag}\n")
        fh.write("\n")


def write_table(records: Iterable[PredictionRecord], fh: Any) -> None:
    """A readable listing for a handful of texts: each text, then one line per entity (type,
    text, [start:end], score); for label sets without entities (POS) the word/TAG pairs."""
    for n, rec in enumerate(records, 1):
        fh.write(f"[{n}] {rec.text}\n")
        if rec.entities:
            width = max(len(e["type"]) for e in rec.entities)
            for e in rec.entities:
                fh.write(f"    {e['type']:<{width}}  {e['text']!r:<30} [{e['start']}:{e['end']}]  {e['score']:.2f}\n")
        elif rec.tags and not any(t != "O" for t in rec.tags):
            fh.write("    (no entities)\n")
        elif rec.tags and not any(t.startswith(("B-", "I-", "E-", "S-", "L-", "U-")) for t in rec.tags):
            fh.write("    " + " ".join(f"{w}/{t}" for w, t in zip(rec.words, rec.tags)) + "\n")
        else:
            fh.write("    (no entities)\n")
        fh.write("\n")


WRITERS = {"jsonl": write_jsonl, "conll": write_conll, "table": write_table}


def write_records(records: Iterable[PredictionRecord], output: str | Path | None, fmt: str) -> None:
    """Write records as `fmt` to `output` (atomically), or to stdout when output is None or "-"."""
    writer = WRITERS[fmt]
    if output is None or str(output) == "-":
        writer(records, sys.stdout)
        sys.stdout.flush()
        return
    with atomic_file(output) as fh:
        writer(records, fh)

