"""Inputs to predict: raw texts, pre-split words, files (text, JSONL, CoNLL, CoNLL-U, any data
tokclf reads), stdin, dicts and datasets, all normalised to `PredictionInput`."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from tokclf.core.errors import DataError, TokclfError
from tokclf.data.conll import CONLL_SUFFIXES
from tokclf.inference.records import PredictionInput


def as_inputs(inputs: Any) -> list[PredictionInput]:
    """Normalise anything `predict` accepts into a list of PredictionInput."""
    if isinstance(inputs, str):
        return [PredictionInput(text=inputs)]
    if isinstance(inputs, Path):
        return read_inputs(inputs)
    if hasattr(inputs, "column_names") and hasattr(inputs, "features"):  # a datasets.Dataset
        return _from_dataset(inputs, None)
    out = []
    for i, item in enumerate(inputs):
        if isinstance(item, PredictionInput):
            out.append(item)
        elif isinstance(item, str):
            out.append(PredictionInput(text=item))
        elif isinstance(item, dict):
            out.append(_from_mapping(item, where=f"input {i}"))
        elif isinstance(item, (list, tuple)) and all(isinstance(w, str) for w in item):
            out.append(PredictionInput(words=list(item)))
        else:
            raise TokclfError(
                f"input {i} is a {type(item).__name__}; expected a text (str), a list of words, "
                "or a dict with 'text' or 'tokens'", where="inputs",
                fix="pass texts as strings and pre-split sentences as lists of strings.", code="E3015",
            )
    return out


def _from_mapping(record: dict[str, Any], *, where: str, text_column: str = "text", tokens_column: str = "tokens",
                  tags_column: str = "tags") -> PredictionInput:
    meta = {"id": record["id"]} if "id" in record else {}
    if tokens_column in record:
        words = record[tokens_column]
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise DataError(f"{tokens_column!r} must be a list of strings", where=where,
                            fix=f'write {{"{tokens_column}": ["John", "lives", "here"]}}.', code="E3016")
        gold = record.get(tags_column)
        if gold is not None:
            if not isinstance(gold, list) or len(gold) != len(words):
                raise DataError(f"{tags_column!r} must be a list with one tag per word ({len(words)})", where=where,
                                fix=f"give every word a tag, or leave {tags_column!r} out.", code="E3017")
            gold = [str(t) for t in gold]
        return PredictionInput(words=list(words), gold=gold, meta=meta)
    if text_column in record:
        if not isinstance(record[text_column], str):
            raise DataError(f"{text_column!r} must be a string", where=where, fix=f'write {{"{text_column}": "some text"}}.', code="E3018")
        return PredictionInput(text=record[text_column], meta=meta)
    raise DataError(f"the record has neither {text_column!r} nor {tokens_column!r}; its keys: {', '.join(record)}",
                    where=where, fix="use --text-column / --tokens-column to name the field holding the text or words.", code="E3019")


def _from_dataset(ds: Any, names: list[str] | None, tokens_column: str = "tokens",
                  tags_column: str = "tags") -> list[PredictionInput]:
    from tokclf.core.columns import DOCUMENT, LINE, SENTENCE

    columns = ds.column_names
    if tokens_column not in columns:
        raise DataError(f"the dataset has no {tokens_column!r} column; its columns: {', '.join(columns)}",
                        fix="name the words column with --tokens-column.", code="E3020")
    data = ds.to_dict()
    if names is None and tags_column in columns:
        feature = getattr(ds.features[tags_column], "feature", None)
        names = list(getattr(feature, "names", None) or []) or None
    out = []
    for i, words in enumerate(data[tokens_column]):
        gold = None
        if tags_column in data:
            gold = [names[t] if names is not None and isinstance(t, int) and 0 <= t < len(names) else str(t)
                    for t in data[tags_column][i]]
        meta = {k: data[c][i] for k, c in (("line", LINE), ("document", DOCUMENT), ("sentence", SENTENCE)) if c in data}
        out.append(PredictionInput(words=list(words), gold=gold, meta=meta))
    return out


SPAN_INPUT_FORMATS = ("labelstudio", "doccano", "prodigy", "brat", "spacy")
INPUT_FORMATS = ("auto", "text", "conll", "conllu", "jsonl", "data", *SPAN_INPUT_FORMATS)




_DATA_SUFFIXES = {".csv", ".json", ".parquet"}


def detect_format(path: Path) -> str:
    """Input format from the name, and for .txt from the contents: a .txt file is CoNLL when it
    starts with -DOCSTART- or its lines are columns ending in a tag (O, B-X, I-X...); otherwise it
    holds one raw text per line."""
    from tokclf.data import formats

    suffix = path.suffix.lower()
    if path.exists() and (span := formats.detect_format(path)) != "tags":
        return span
    if path.is_dir():
        return "data"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".conllu":
        return "conllu"
    if suffix in CONLL_SUFFIXES:
        return "conll"
    if suffix in _DATA_SUFFIXES:
        return "data"
    if suffix == ".txt" or not path.exists():
        return _sniff_txt(path) if path.is_file() else "data"
    return "text"


def _sniff_txt(path: Path) -> str:
    import re

    tag = re.compile(r"^(O|[BIESLU]-\S+)$")
    lines = []
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        for line in fh:
            if line.strip():
                lines.append(line.split())
            if len(lines) >= 200:
                break
    if not lines:
        return "text"
    if lines[0][0] == "-DOCSTART-":
        return "conll"
    tagged = sum(1 for f in lines if len(f) >= 2 and tag.match(f[-1]))
    return "conll" if tagged >= 0.9 * len(lines) else "text"


def read_inputs(
    path: str | Path,
    *,
    input_format: str = "auto",
    text_column: str = "text",
    tokens_column: str = "tokens",
    tags_column: str = "tags",
    split: str = "test",
    conll_token_column: int = 0,
    conll_tag_column: int = -1,
    conllu_tag: str = "upos",
    max_samples: int | None = None,
) -> list[PredictionInput]:
    """Read inputs from a file, "-" (stdin), a data folder or a Hub dataset id.

    Formats ("auto" picks by name, see `detect_format`):
      text   one raw text per line (a trailing newline is not part of the text; empty lines
             give empty records, so output lines match input lines);
      jsonl  one JSON object per line with a text field ("text") or a words field ("tokens",
             with optional "tags" kept as gold), or a bare JSON string (a text); "id" is kept;
      conll  one word per line (first column), blank line between sentences; with two or more
             columns the tag column (last by default) is kept as gold;
      conllu CoNLL-U, the UPOS (or XPOS) column kept as gold;
      labelstudio, doccano, prodigy, brat, spacy
             span annotation exports (auto-detected by content): each record's raw text,
             annotated or not; ids and Label Studio task data are kept for the writers;
      data   anything `tokclf.data.ingest.load_labelled_data` reads (CSV, JSON, Parquet, a
             save_to_disk folder, a folder of split files, a Hub id): the words of `split`,
             tags kept as gold.
    """
    if input_format not in INPUT_FORMATS:
        raise TokclfError(f"input format {input_format!r} is not one of {', '.join(INPUT_FORMATS)}",
                          fix="use --input-format " + "|".join(INPUT_FORMATS) + ".", code="E3021")
    if str(path) == "-":
        return _read_stdin(input_format, text_column=text_column, tokens_column=tokens_column, tags_column=tags_column,
                           conll_token_column=conll_token_column, conll_tag_column=conll_tag_column,
                           conllu_tag=conllu_tag, max_samples=max_samples)
    from tokclf.core.resources import resolve_data_path

    path = Path(resolve_data_path(str(path))).expanduser()
    fmt = detect_format(path) if input_format == "auto" else input_format
    if fmt in ("text", "jsonl", "conll", "conllu") and not path.is_file():
        raise DataError(f"no such file: {path}", fix="check the path (relative to the current folder).", code="E3022")
    if fmt in SPAN_INPUT_FORMATS:
        items = _read_span_texts(path, fmt)
    elif fmt == "text":
        items = _read_text_lines(path)
    elif fmt == "jsonl":
        items = _read_jsonl(path, text_column=text_column, tokens_column=tokens_column, tags_column=tags_column)
    elif fmt == "conll":
        items = _read_conll(path, conll_token_column, conll_tag_column)
    elif fmt == "conllu":
        from tokclf.data.conll import read_conllu

        raw = read_conllu(path, tag=conllu_tag)
        items = [PredictionInput(words=w, gold=[str(t) for t in g], meta={"line": ln, "document": d, "sentence": s})
                 for w, g, ln, d, s in zip(raw.tokens, raw.tags, raw.lines, raw.documents, _positions(raw))]
    else:
        from tokclf.data.ingest import load_labelled_data

        data = load_labelled_data(str(path), tokens_column=tokens_column, tags_column=tags_column, train_split=split,
                                  valid_split=None, test_split=None, max_samples=max_samples)
        items = _from_dataset(data.splits[split], data.label_names)
    return items[:max_samples] if max_samples is not None else items


def _read_span_texts(path: Path, fmt: str) -> list[PredictionInput]:
    """Every record's raw text (annotated or not), its id and task data kept for the writers, so
    predictions on a Label Studio export go back to the same tasks (tokclf.inference.annotations)."""
    from tokclf.data.formats import read_span_docs

    out = []
    for doc in read_span_docs(path, fmt, all_records=True):
        meta = {k: v for k, v in doc.meta.items() if v is not None}
        meta["line"] = doc.line
        out.append(PredictionInput(text=doc.text, meta=meta, document=True))
    return out


def _read_text_lines(path: Path) -> list[PredictionInput]:
    from tokclf.data.tabular import read_text

    try:
        text = read_text(path)
    except DataError as exc:
        if "empty" in exc.what:
            return []
        raise
    return _text_items(text)


def _text_items(text: str) -> list[PredictionInput]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [PredictionInput(text=line.removesuffix("\r"), meta={"line": i})
            for i, line in enumerate(lines, 1)]


def _read_jsonl(path: Path, **columns: str) -> list[PredictionInput]:
    from tokclf.data.tabular import read_text

    return _jsonl_items(read_text(path), str(path), **columns)


def _jsonl_items(text: str, source: str, **columns: str) -> list[PredictionInput]:
    out = []
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        where = f"{source}, line {lineno}"
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"not valid JSON: {exc.msg} (column {exc.colno})", where=where,
                            fix="write one JSON object per line.", code="E3023") from None
        if isinstance(value, str):
            item = PredictionInput(text=value)
        elif isinstance(value, dict):
            item = _from_mapping(value, where=where, **columns)
        else:
            raise DataError(f"a JSON {type(value).__name__} is not an input", where=where,
                            fix='write {"text": "..."} or {"tokens": [...]} on each line.', code="E3024")
        item.meta.setdefault("line", lineno)
        out.append(item)
    return out


def _read_conll(path: Path, token_column: int, tag_column: int) -> list[PredictionInput]:
    from tokclf.data.conll import DOCSTART, read_conll

    ncols = 0
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        for line in fh:
            fields = line.strip().split("\t") if "\t" in line.strip() else line.split()
            if fields and fields[0] != DOCSTART:
                ncols = len(fields)
                break
    if ncols == 1:
        raw = read_conll(path, token_column=0, tag_column=0)
        return [PredictionInput(words=w, meta={"line": ln, "document": d, "sentence": s})
                for w, ln, d, s in zip(raw.tokens, raw.lines, raw.documents, _positions(raw))]
    raw = read_conll(path, token_column=token_column, tag_column=tag_column)
    return [PredictionInput(words=w, gold=[str(t) for t in g], meta={"line": ln, "document": d, "sentence": s})
            for w, g, ln, d, s in zip(raw.tokens, raw.tags, raw.lines, raw.documents, _positions(raw))]


def _positions(raw: Any) -> list[int]:
    """Each sentence's place in its document (-1: no document marker seen), for document context."""
    return list(raw.positions) if raw.positions is not None else [-1] * len(raw)


def _read_stdin(input_format: str, **kwargs: Any) -> list[PredictionInput]:
    text = sys.stdin.read()
    fmt = "text" if input_format == "auto" else input_format
    if fmt == "text":
        return _text_items(text)
    if fmt == "jsonl":
        return _jsonl_items(text, "<stdin>", text_column=kwargs["text_column"], tokens_column=kwargs["tokens_column"],
                            tags_column=kwargs["tags_column"])
    if fmt in ("conll", "conllu"):
        # The CoNLL readers take a path: spool stdin to a temporary file.
        with tempfile.TemporaryDirectory() as tmp:
            file = Path(tmp) / f"stdin.{fmt}"
            file.write_text(text, encoding="utf-8")
            return read_inputs(file, input_format=fmt, conll_token_column=kwargs["conll_token_column"],
                               conll_tag_column=kwargs["conll_tag_column"], conllu_tag=kwargs["conllu_tag"])
    raise TokclfError("--input-format data cannot read stdin", fix="pass the data path with --input.", code="E3025")

