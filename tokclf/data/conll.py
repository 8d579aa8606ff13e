"""Readers for one-word-per-line files: CoNLL column files (CoNLL-2003, WNUT, ...) and CoNLL-U.

Plain line parsing (no pandas): CoNLL-2003 train (220k lines) reads in a fraction of a second.
LINE is the 1-based line of a sentence's first word; blank (or whitespace-only) lines end
sentences; -DOCSTART- lines / `# newdoc` comments start a new document (DOCUMENT column), and
each sentence after the first such marker gets its place in the document (SENTENCE column, for
document context); sentences before any marker have no known document (-1).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from tokclf.core.errors import DataError
from tokclf.data.labels import RawSplit

DOCSTART = "-DOCSTART-"
# File suffixes that always hold CoNLL columns. A ".txt" file is CoNLL too when it is training data
# (`CONLL_DATA_SUFFIXES`); predict looks inside a .txt to tell columns from raw text lines.
CONLL_SUFFIXES = frozenset({".conll", ".iob", ".iob2", ".bio", ".tsv"})
CONLL_DATA_SUFFIXES = CONLL_SUFFIXES | {".txt"}
CONLLU_COLUMNS = ("ID", "FORM", "LEMMA", "UPOS", "XPOS", "FEATS", "HEAD", "DEPREL", "DEPS", "MISC")
CONLLU_TAG_INDEX = {"upos": 3, "xpos": 4}


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line without its newline), read one line at a time (a corpus of
    millions of sentences is never held as one string); non-UTF-8 bytes and an empty file are
    the errors `tokclf.data.tabular.read_text` raises, naming the place."""
    from tokclf.data.tabular import read_text

    blank = True
    try:
        # newline="\n": lines end at "\n" only, as str.split("\n") cut them; "\r" stays in the line.
        with open(path, encoding="utf-8-sig", newline="\n") as fh:
            for lineno, line in enumerate(fh, 1):
                blank = blank and line.isspace()
                yield lineno, line[:-1] if line.endswith("\n") else line
    except UnicodeDecodeError:
        read_text(path)  # raises the error with the byte offset and line
        raise
    except OSError as exc:
        raise DataError(f"cannot read file: {exc.strerror or exc}", where=str(path), code="E2001") from None
    if blank:
        read_text(path)  # raises "the file is empty"


class _Sentences:
    """Collects words into sentences and sentences into documents, for both line formats."""

    def __init__(self, out: RawSplit) -> None:
        self.out = out
        self.words: list[str] = []
        self.tags: list[str] = []
        self.start = 0
        self.doc = 0
        self.doc_has_sentences = False
        self.count = 0
        # Place of the next sentence in its document; None until a document marker was seen.
        self.position: int | None = None

    def add(self, lineno: int, word: str, tag: str) -> None:
        if not self.words:
            self.start = lineno
        self.words.append(word)
        self.tags.append(tag)

    def end_sentence(self) -> None:
        if self.words:
            self.out.tokens.append(self.words)
            self.out.tags.append(self.tags)
            self.out.lines.append(self.start)
            self.out.documents.append(self.doc)
            if self.out.positions is None:
                self.out.positions = []
            self.out.positions.append(-1 if self.position is None else self.position)
            if self.position is not None:
                self.position += 1
            self.doc_has_sentences = True
            self.count += 1
            self.words, self.tags = [], []

    def new_document(self) -> None:
        self.end_sentence()
        if self.doc_has_sentences:
            self.doc += 1
            self.doc_has_sentences = False
        self.position = 0


def _column_index(index: int, ncols: int) -> int | None:
    """A 0-based or negative (from the end) column index -> 0-based, or None if out of range."""
    resolved = index if index >= 0 else ncols + index
    return resolved if 0 <= resolved < ncols else None


def _batches(sentences: _Sentences, batch_sentences: int | None) -> Iterator[RawSplit]:
    """Hand over the sentences collected so far when a batch is full (never with None)."""
    if batch_sentences is not None and len(sentences.out) >= batch_sentences:
        full = sentences.out
        sentences.out = RawSplit([], [], [], [], full.source, full.unit, positions=[])
        yield full


def _concat(parts: Iterator[RawSplit]) -> RawSplit:
    return next(parts)  # with batch_sentences=None the reader yields exactly one RawSplit


def read_conll(path: Path, *, token_column: int = 0, tag_column: int = -1) -> RawSplit:
    """CoNLL column file: columns split on tabs when the file uses tabs (words may then hold
    spaces), else on any whitespace. Every word line must have the same number of columns."""
    return _concat(iter_conll(path, token_column=token_column, tag_column=tag_column))


def iter_conll(path: Path, *, token_column: int = 0, tag_column: int = -1,
               batch_sentences: int | None = None) -> Iterator[RawSplit]:
    """`read_conll` in batches of `batch_sentences` sentences (None: one batch of all)."""
    out = RawSplit([], [], [], [], str(path), "line")
    sentences = _Sentences(out)
    ncols = 0
    first_line = 0
    tok_i = tag_i = 0
    sep: str | None = None

    for lineno, line in iter_lines(path):
        if not line or line.isspace():
            sentences.end_sentence()
            yield from _batches(sentences, batch_sentences)
            continue
        if ncols == 0:
            # First word line decides the separator and the column count for the whole file.
            sep = "\t" if "\t" in line.strip() else None
        fields = [f.strip() for f in line.strip().split("\t")] if sep else line.split()
        if fields[0] == DOCSTART:
            sentences.new_document()
            continue
        if ncols == 0:
            ncols, first_line = len(fields), lineno
            t, g = _column_index(token_column, ncols), _column_index(tag_column, ncols)
            if t is None or g is None:
                bad = "conll_token_column" if t is None else "conll_tag_column"
                raise DataError(
                    f"this line has {ncols} column(s), too few for {bad}={token_column if t is None else tag_column}",
                    where=f"{path}, line {lineno}",
                    fix=f"choose columns 0..{ncols - 1} (or -1 for the last); columns are separated by "
                    f"{'tabs' if sep else 'spaces or tabs'}.", code="E2002",
                )
            tok_i, tag_i = t, g
        elif len(fields) != ncols:
            raise DataError(
                f"this line has {len(fields)} column(s) but the file's first word line (line {first_line}) has {ncols}",
                where=f"{path}, line {lineno}",
                fix="give every word line the same columns (a word containing a space? use tabs between columns).", code="E2003",
            )
        sentences.add(lineno, fields[tok_i], fields[tag_i])
    sentences.end_sentence()
    if not sentences.count:
        raise DataError("no sentences found (only blank or -DOCSTART- lines)", where=str(path),
                        fix="write one word per line with its tag, and a blank line between sentences.", code="E2004")
    if len(sentences.out):
        yield sentences.out


def read_conllu(path: Path, *, tag: str = "upos") -> RawSplit:
    """CoNLL-U: 10 tab-separated columns; comments, multiword ranges (3-4) and empty nodes (5.1)
    are skipped, so words are the syntactic words that carry UPOS/XPOS."""
    return _concat(iter_conllu(path, tag=tag))


def iter_conllu(path: Path, *, tag: str = "upos", batch_sentences: int | None = None) -> Iterator[RawSplit]:
    """`read_conllu` in batches of `batch_sentences` sentences (None: one batch of all). The
    whole-file checks (no sentences, no tags at all) raise after the last batch."""
    if tag not in CONLLU_TAG_INDEX:
        raise DataError(f"conllu_tag={tag!r} is not supported", fix="use 'upos' or 'xpos'.", code="E2005")
    col = CONLLU_TAG_INDEX[tag]
    out = RawSplit([], [], [], [], str(path), "line")
    sentences = _Sentences(out)
    all_blank_tags = True

    for lineno, line in iter_lines(path):
        line = line.rstrip("\r")
        if not line or line.isspace():
            sentences.end_sentence()
            yield from _batches(sentences, batch_sentences)
            continue
        if line.startswith("#"):
            if line[1:].lstrip().startswith("newdoc"):
                sentences.new_document()
            continue
        fields = line.split("\t")
        if len(fields) != 10:
            raise DataError(
                f"this line has {len(fields)} tab-separated column(s); CoNLL-U needs 10 ({' '.join(CONLLU_COLUMNS)})",
                where=f"{path}, line {lineno}",
                fix="separate the 10 columns with tabs (not spaces); use '_' for an empty field.", code="E2006",
            )
        ident = fields[0]
        if "-" in ident or "." in ident:
            continue  # multiword token range or empty node: not a tagged word
        value = fields[col]
        all_blank_tags = all_blank_tags and value == "_"
        sentences.add(lineno, fields[1], value)
    sentences.end_sentence()
    if not sentences.count:
        raise DataError("no sentences found (no word lines)", where=str(path),
                        fix="CoNLL-U needs word lines of 10 tab-separated columns, a blank line after each sentence.", code="E2007")
    if all_blank_tags:
        raise DataError(f"the {tag.upper()} column is '_' on every word: this file has no {tag.upper()} tags",
                        where=str(path), fix=f"use conllu_tag={'upos' if tag == 'xpos' else 'xpos'}.", code="E2008")
    if len(sentences.out):
        yield sentences.out
