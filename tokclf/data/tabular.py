"""Readers for one-sentence-per-record files: CSV, JSON, JSON Lines, Parquet.

Each record holds a list of words and a list of tags (ids or names), under `tokens_column` /
`tags_column`. CSV cells are list literals as the spec shows them ("['John', 'Smith']",
"[1, 1, 0]"); they are parsed with json first (fast) and ast.literal_eval second (Python quotes).

Places: CSV rows are counted 1-based over data rows (the header is not counted, blank lines are
skipped), so "row 1" is the first sentence, as pandas and spreadsheets number them; parse errors
also give the physical line. JSON arrays and Parquet: "row N" is the 1-based record index.
JSON Lines: "line N" is the physical line.

Streaming: CSV, JSON Lines and Parquet are read in batches (`iter_csv`, `iter_jsonl`,
`iter_parquet`: the CSV and JSON Lines file line by line, Parquet by record batches), so the
ingest stage holds one batch of sentences whatever the file's size; `read_*` are the same readers
with one batch of everything. A `.json` file (one JSON document: an array, {"data": [...]}, or
columns) is parsed whole: a JSON document cannot be read record by record without a streaming
JSON parser; write large data as JSON Lines (.jsonl) or Parquet.

Documents (for document context): with `document_column`, rows that share its value form one
document, their sentences in row order (`set_documents`); without it every row stands alone.
A file with `document_column` is read in one batch: the rows of a document may be far apart, and
they are grouped before the sentences are written.
"""

from __future__ import annotations

import ast
import csv
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from tokclf.core.errors import DataError
from tokclf.data.labels import RawSplit

LIST_FIX = "write each cell as a list literal, e.g. \"['John', 'Smith']\" and \"[1, 0]\" (or \"['B-PER', 'O']\")."


def read_text(path: Path) -> str:
    """File contents as text; non-UTF-8 bytes and empty files are errors naming the place."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read file: {exc.strerror or exc}", where=str(path), code="E2093") from None
    try:
        text = data.decode("utf-8-sig")  # a BOM (Excel's CSV export) is not part of the header
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"not valid UTF-8: byte {exc.start} (0x{data[exc.start]:02x}) cannot be decoded ({exc.reason})",
            where=f"{path}, line {line}",
            fix="save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8 in > out`).", code="E2094",
        ) from None
    if not text.strip():
        raise DataError("the file is empty", where=str(path), fix="point data_path at a file with sentences.", code="E2095")
    return text


def missing_column(name: str, which: str, columns: list[str], where: str) -> DataError:
    return DataError(
        f"column {name!r} not found; the columns are: {', '.join(map(repr, columns)) or '(none)'}",
        where=where,
        fix=f"set {which} to the column holding the "
        f"{ {'tokens_column': 'words', 'document_column': 'document ids'}.get(which, 'tags') }.", code="E2096",
    )


def parse_list_cell(cell: str, *, column: str, where: str) -> list[Any]:
    """A CSV cell holding a JSON or Python list literal -> the list."""
    text = cell.strip()
    try:
        value = json.loads(text)
    except ValueError:
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            shown = text if len(text) <= 60 else text[:57] + "..."
            raise DataError(f"column {column!r}: {shown!r} is not a list literal", where=where, fix=LIST_FIX, code="E2097") from None
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, list):
        raise DataError(f"column {column!r}: expected a list, got {type(value).__name__} {text[:40]!r}",
                        where=where, fix=LIST_FIX, code="E2098")
    return value


def check_record(tokens: Any, tags: Any, *, tokens_column: str, tags_column: str, where: str) -> tuple[list[str], list[Any]]:
    """Words must be strings and tags ints or strings; lengths may differ (validation reports it)."""
    for name, value in ((tokens_column, tokens), (tags_column, tags)):
        if value is None:
            raise DataError(f"column {name!r} is missing (null) in this record", where=where,
                            fix="give every record a list, [] for none.", code="E2099")
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise DataError(f"column {name!r} holds {type(value).__name__} {str(value)[:40]!r}, not a list",
                            where=where, fix="store one list of words and one list of tags per sentence.", code="E2100")
    tokens, tags = list(tokens), list(tags)
    for i, tok in enumerate(tokens, 1):
        if not isinstance(tok, str):
            raise DataError(f"word {i} in {tokens_column!r} is {type(tok).__name__} {tok!r}, not a string",
                            where=where, fix="quote every word (\"1996\", not 1996).", code="E2101")
    for i, tag in enumerate(tags, 1):
        if isinstance(tag, bool) or not isinstance(tag, (int, str)):
            raise DataError(f"tag {i} in {tags_column!r} is {type(tag).__name__} {tag!r}; tags must be integer ids or names",
                            where=where, fix="write tags as ids (0, 1, ...) or names ('O', 'B-PER', ...).", code="E2102")
    return tokens, tags


def _document_key(value: Any) -> Any:
    """A document id cell as a dict key (lists and objects by their JSON text); None: no document."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def set_documents(out: RawSplit, values: Sequence[Any], column: str) -> RawSplit:
    """Rows whose `values` (the document_column cells, one per sentence) are equal form one
    document, its sentences in row order: DOCUMENT numbers the documents by first appearance,
    SENTENCE counts each one's rows from 0. A document whose rows are not next to each other is
    moved together (a stable regrouping, noted), because document context finds a sentence's
    neighbours as adjacent rows. An empty (null) cell leaves its row alone (SENTENCE -1)."""
    ids: dict[Any, int] = {}
    docs: list[int] = []
    alone: list[bool] = []
    for value in values:
        key = _document_key(value)
        alone.append(key is None)
        docs.append(len(ids) + len(docs) if key is None else ids.setdefault(key, len(ids)))
    seen: Counter[int] = Counter()
    positions = []
    for d, lone in zip(docs, alone):
        positions.append(-1 if lone else seen[d])
        seen[d] += 1
    # Documents numbered 0.. by first appearance (lone rows take the next free number).
    renumber = {d: k for k, d in enumerate(dict.fromkeys(docs))}
    docs = [renumber[d] for d in docs]
    order = sorted(range(len(docs)), key=docs.__getitem__)
    if order != list(range(len(docs))):
        out.tokens = [out.tokens[i] for i in order]
        out.tags = [out.tags[i] for i in order]
        out.lines = [out.lines[i] for i in order]
        out.notes.append(f"{out.source}: rows of the same {column!r} value were not next to each other; "
                         "they were grouped by document (in row order within each).")
    out.documents = [docs[i] for i in order]
    out.positions = [positions[i] for i in order]
    return out


def _records_split(records: list[tuple[int, Any]], path: Path, unit: str, tokens_column: str, tags_column: str,
                   document_column: str | None = None) -> RawSplit:
    """(place, record dict) pairs -> RawSplit, checking keys and types."""
    return next(batched_records(records, path, unit, tokens_column, tags_column, document_column=document_column))


def batched_records(records: Iterable[tuple[int, Any]], path: Path, unit: str, tokens_column: str, tags_column: str,
                    batch_sentences: int | None = None, label_names: list[str] | None = None,
                    document_column: str | None = None) -> Iterator[RawSplit]:
    """(place, record dict) pairs -> RawSplits of at most `batch_sentences` records (None: one of
    all), checking keys and types record by record; no record at all is an error. With
    `document_column`, one batch of all (`set_documents` groups a document's rows, wherever they are)."""
    def empty() -> RawSplit:
        return RawSplit([], [], [], [], str(path), unit, label_names)

    if document_column is not None:
        batch_sentences = None
    out, seen = empty(), False
    document_values: list[Any] = []
    for place, rec in records:
        seen = True
        where = f"{path}, {unit} {place}"
        if not isinstance(rec, dict):
            raise DataError(f"expected an object with {tokens_column!r} and {tags_column!r}, got {type(rec).__name__}",
                            where=where, fix='write one object per sentence: {"tokens": [...], "tags": [...]}.', code="E2104")
        for name, which in ((tokens_column, "tokens_column"), (tags_column, "tags_column")):
            if name not in rec:
                raise missing_column(name, which, list(rec), where)
        tokens, tags = check_record(rec[tokens_column], rec[tags_column], tokens_column=tokens_column,
                                    tags_column=tags_column, where=where)
        if document_column is not None:
            if document_column not in rec:
                raise missing_column(document_column, "document_column", list(rec), where)
            document_values.append(rec[document_column])
        out.tokens.append(tokens)
        out.tags.append(tags)
        out.lines.append(place)
        out.documents.append(0)
        if batch_sentences is not None and len(out) >= batch_sentences:
            yield out
            out = empty()
    if not seen:
        raise DataError("no records found", where=str(path), fix="add one record per sentence.", code="E2103")
    if document_column is not None:
        set_documents(out, document_values, document_column)
    if len(out) or batch_sentences is None:
        yield out


def read_csv(path: Path, *, tokens_column: str = "tokens", tags_column: str = "tags",
             document_column: str | None = None) -> RawSplit:
    return next(iter_csv(path, tokens_column=tokens_column, tags_column=tags_column, document_column=document_column))


def iter_csv(path: Path, *, tokens_column: str = "tokens", tags_column: str = "tags",
             batch_sentences: int | None = None, tags_only: bool = False,
             document_column: str | None = None) -> Iterator[RawSplit]:
    """`read_csv` in batches of `batch_sentences` rows (None: one batch of all), reading the file
    through the csv module row by row (it keeps the physical line of every row for messages).
    tags_only: leave every sentence's words empty without parsing their cell (ingest's first
    pass plans labels from the tags alone; the words are parsed and checked in the second).
    With `document_column`, one batch of all (`set_documents`)."""
    if document_column is not None:
        batch_sentences = None
    document_values: list[str | None] = []
    try:
        # newline="": the csv module sees quoted line breaks; utf-8-sig: a BOM (Excel's CSV
        # export) is not part of the header.
        fh = open(path, encoding="utf-8-sig", newline="")
    except OSError:
        read_text(path)  # raises "cannot read file", naming it
        raise
    with fh:
        # strict: a stray quote is an error instead of silently gluing rows together.
        reader = csv.reader(fh, strict=True)
        out = RawSplit([], [], [], [], str(path), "row")
        header: list[str] | None = None
        row_no = 0
        last_line = 0
        while True:
            start_line = last_line + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            except UnicodeDecodeError:
                read_text(path)  # raises the error with the byte offset and line
                raise
            except csv.Error as exc:
                place = f"row {row_no + 1} (starting at line {start_line})" if header is not None else f"line {start_line}"
                raise DataError(f"broken CSV quoting: {exc}", where=f"{path}, {place}",
                                fix="wrap every cell in double quotes and double any quote inside a cell (\"\").", code="E2105") from None
            last_line = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if header is None:
                header = [c.strip() for c in row]
                idx = {}
                for name, which in ((tokens_column, "tokens_column"), (tags_column, "tags_column")):
                    if name not in header:
                        raise missing_column(name, which, header, f"{path}, line {start_line} (header)")
                    idx[name] = header.index(name)
                if document_column is not None:
                    if document_column not in header:
                        raise missing_column(document_column, "document_column", header,
                                             f"{path}, line {start_line} (header)")
                    idx[document_column] = header.index(document_column)
                continue
            row_no += 1
            where = f"{path}, row {row_no} (line {start_line})"
            if len(row) != len(header):
                raise DataError(
                    f"{len(row)} fields but the header has {len(header)} ({', '.join(header)})", where=where,
                    fix="quote cells that contain commas: \"['a', 'b']\".", code="E2106",
                )
            tokens = [] if tags_only else parse_list_cell(row[idx[tokens_column]], column=tokens_column, where=where)
            tags = parse_list_cell(row[idx[tags_column]], column=tags_column, where=where)
            tokens, tags = check_record(tokens, tags, tokens_column=tokens_column, tags_column=tags_column, where=where)
            out.tokens.append(tokens)
            out.tags.append(tags)
            out.lines.append(row_no)
            out.documents.append(0)
            if document_column is not None:
                document_values.append(row[idx[document_column]].strip() or None)
            if batch_sentences is not None and len(out) >= batch_sentences:
                yield out
                out = RawSplit([], [], [], [], str(path), "row")
    if header is None or not row_no:
        if header is None:
            read_text(path)  # a blank file: "the file is empty" (E2095), as for every reader
        raise DataError("no data rows (only a header)" if header else "the file is empty", where=str(path),
                        fix="add one row per sentence under the header 'tokens,tags'.", code="E2107")
    if document_column is not None:
        set_documents(out, document_values, document_column)
    if len(out) or batch_sentences is None:
        yield out


def _json_error(path: Path, exc: json.JSONDecodeError, line_offset: int = 0) -> DataError:
    return DataError(f"not valid JSON: {exc.msg} (column {exc.colno})", where=f"{path}, line {exc.lineno + line_offset}",
                     fix="fix the JSON syntax (a JSON array of objects, or one object per line).", code="E2108")


def json_lines(text: str, error: Callable[[json.JSONDecodeError, int], Exception]) -> list[tuple[int, Any]]:
    """(line number, object) of every non-blank line of JSON Lines text; a broken line raises
    `error(exc, line offset)`, the caller's located DataError (tag files and span exports word
    their fixes differently)."""
    return list(iter_json_lines(enumerate(text.split("\n"), 1), error))


def iter_json_lines(lines: Iterable[tuple[int, str]],
                    error: Callable[[json.JSONDecodeError, int], Exception]) -> Iterator[tuple[int, Any]]:
    """`json_lines` over (line number, line) pairs, one line at a time."""
    for lineno, line in lines:
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as exc:
            raise error(exc, lineno - 1) from None


def _jsonl_records(path: Path, text: str) -> list[tuple[int, Any]]:
    return json_lines(text, lambda exc, offset: _json_error(path, exc, offset))


def read_jsonl(path: Path, *, tokens_column: str = "tokens", tags_column: str = "tags",
               document_column: str | None = None) -> RawSplit:
    return next(iter_jsonl(path, tokens_column=tokens_column, tags_column=tags_column, document_column=document_column))


def iter_jsonl(path: Path, *, tokens_column: str = "tokens", tags_column: str = "tags",
               batch_sentences: int | None = None, document_column: str | None = None) -> Iterator[RawSplit]:
    """`read_jsonl` in batches of `batch_sentences` lines (None: one batch of all), reading the
    file one line at a time."""
    from tokclf.data.conll import iter_lines  # conll imports this module

    records = iter_json_lines(iter_lines(path), lambda exc, offset: _json_error(path, exc, offset))
    return batched_records(records, path, "line", tokens_column, tags_column, batch_sentences,
                           document_column=document_column)


def read_json(path: Path, *, tokens_column: str = "tokens", tags_column: str = "tags",
              document_column: str | None = None) -> RawSplit:
    """A JSON array of records, {"<key>": [records]}, columns {"tokens": [...], "tags": [...]}, or JSON lines."""
    text = read_text(path)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # several top-level values: JSON Lines saved as .json
            return _records_split(_jsonl_records(path, text), path, "line", tokens_column, tags_column,
                                  document_column)
        raise _json_error(path, exc) from None
    if isinstance(doc, dict):
        if tokens_column in doc and isinstance(doc[tokens_column], list):
            # Columnar: {"tokens": [[...], ...], "tags": [[...], ...]} (pandas orient="list").
            if tags_column not in doc:
                raise missing_column(tags_column, "tags_column", list(doc), str(path))
            toks, tags = doc[tokens_column], doc[tags_column]
            if not isinstance(tags, list) or len(tags) != len(toks):
                raise DataError(f"columns {tokens_column!r} and {tags_column!r} hold different numbers of sentences",
                                where=str(path), fix="give both columns one entry per sentence.", code="E2109")
            docs = doc.get(document_column) if document_column is not None else None
            if document_column is not None and not isinstance(docs, list):
                raise missing_column(document_column, "document_column", list(doc), str(path))
            doc = [{tokens_column: a, tags_column: b} | ({document_column: docs[i]} if docs is not None else {})
                   for i, (a, b) in enumerate(zip(toks, tags))]
        else:
            lists = [v for v in doc.values() if isinstance(v, list)]
            if len(lists) != 1:
                raise missing_column(tokens_column, "tokens_column", list(doc), str(path))
            doc = lists[0]  # {"data": [records]}
    if not isinstance(doc, list):
        raise DataError(f"expected a JSON array of records, got {type(doc).__name__}", where=str(path),
                        fix='write [{"tokens": [...], "tags": [...]}, ...] or one object per line.', code="E2110")
    return _records_split(list(enumerate(doc, 1)), path, "row", tokens_column, tags_column, document_column)


def read_parquet(path: Path, *, tokens_column: str = "tokens", tags_column: str = "tags",
                 document_column: str | None = None) -> RawSplit:
    return next(iter_parquet(path, tokens_column=tokens_column, tags_column=tags_column,
                             document_column=document_column))


# Rows per Parquet record batch read when the caller asks for no batches (read_parquet).
_PARQUET_READ_ROWS = 65_536


def iter_parquet(path: Path, *, tokens_column: str = "tokens", tags_column: str = "tags",
                 batch_sentences: int | None = None, tags_only: bool = False,
                 document_column: str | None = None) -> Iterator[RawSplit]:
    """`read_parquet` in batches of `batch_sentences` rows (None: one batch of all), read with
    `ParquetFile.iter_batches` (only the two columns, one record batch at a time; with
    `tags_only`, as `iter_csv`, only the tags column and empty word lists)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def unreadable(exc: Exception) -> DataError:
        return DataError(f"not a readable Parquet file: {exc}", where=str(path),
                         fix="write it with pandas.DataFrame.to_parquet or pyarrow.parquet.write_table.", code="E2111")

    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
    except (pa.ArrowException, OSError) as exc:
        raise unreadable(exc) from None
    names = schema.names
    wanted = ((tokens_column, "tokens_column"), (tags_column, "tags_column")) + (
        ((document_column, "document_column"),) if document_column is not None else ())
    for name, which in wanted:
        if name not in names:
            raise missing_column(name, which, names, str(path))
    if document_column is not None:
        batch_sentences = None  # one batch of all (set_documents)

    def records() -> Iterator[tuple[int, Any]]:
        place = 0
        read = ([tags_column] if tags_only else [tokens_column, tags_column]) + (
            [document_column] if document_column is not None else [])
        batches = parquet.iter_batches(batch_size=batch_sentences or _PARQUET_READ_ROWS, columns=read)
        with parquet:
            while True:
                try:
                    batch = next(batches)
                except StopIteration:
                    return
                except (pa.ArrowException, OSError) as exc:
                    raise unreadable(exc) from None
                tags_col = batch.column(tags_column).to_pylist()
                words = [[]] * len(tags_col) if tags_only else batch.column(tokens_column).to_pylist()
                docs = batch.column(document_column).to_pylist() if document_column is not None else None
                for k, (tokens, tags) in enumerate(zip(words, tags_col)):
                    place += 1
                    rec = {tokens_column: tokens, tags_column: tags}
                    if docs is not None:
                        rec[document_column] = docs[k]
                    yield place, rec

    return batched_records(records(), path, "row", tokens_column, tags_column, batch_sentences,
                           label_names=_parquet_classlabel(schema, tags_column), document_column=document_column)


def _parquet_classlabel(schema: Any, tags_column: str) -> list[str] | None:
    """Label names a `Dataset.to_parquet` file keeps in its "huggingface" schema metadata."""
    if not schema.metadata or b"huggingface" not in schema.metadata:
        return None
    try:
        from datasets import Features

        from tokclf.data.hf import classlabel_names

        return classlabel_names(Features.from_arrow_schema(schema)[tags_column])
    except Exception:  # noqa: BLE001 - metadata from another datasets version: names are optional
        return None
