"""The one entry point for data: any supported source -> `LabelledData`.

data_path may be:
- a file: it is the train split (csv, json, jsonl, parquet, conllu, or a CoNLL column file:
  txt/conll/iob/iob2/bio/tsv);
- a folder written by `save_to_disk` (a Dataset is the train split; a DatasetDict has splits);
- a folder of split files, the file stem naming the split (train.txt, valid.txt, test.txt, or
  `*-train.*`, `*-dev.*`, `*-test.*` such as en_ewt-ud-dev.conllu -> "dev");
- `package://module/path` (a file or folder inside an installed package);
- a span annotation export (Label Studio, doccano, Prodigy, a brat folder, a spaCy .spacy file),
  told apart by content (`tokclf.data.formats`) or named by data_format; spans become IOB2 word
  tags (`tokclf.data.spans`); label_map renames types of span and tag data alike;
- anything else that looks like a Hub id: datasets.load_dataset(data_path).

Splits are stored under the names asked for (train_split, valid_split, test_split); a request
for "validation" finds a split called valid/dev/val and vice versa. test_split is optional:
when the data has no such split it is left out (with a note). With validation_split_ratio and
no validation split, a seeded share of train becomes the "validation" split. max_samples keeps
the first N sentences of every split read (before any validation share is carved from train).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from tokclf.core.columns import DOCUMENT, LINE, SENTENCE, TAGS, TOKENS
from tokclf.core.errors import DataError
from tokclf.core.params import CARVED_VALIDATION_SPLIT
from tokclf.core.resources import is_hub_id, resolve_data_path
from tokclf.data import conll, formats, hf, spans, tabular
from tokclf.data.labels import RawSplit, label_ids, parse_label_names, plan_labels, tag_kind
from tokclf.data.spans import SpanOptions, map_split_tags
from tokclf.data.types import LabelledData

# Where a split's Arrow tables go: (split name, tables, features) -> datasets.Dataset. The default
# keeps them in memory (`tokclf train`); the ingest stage writes them to disk batch by batch.
Sink = Callable[[str, Iterable[Any], Any], Any]

CONLL_EXTENSIONS = conll.CONLL_DATA_SUFFIXES
TABULAR_READERS: dict[str, Callable[..., RawSplit]] = {
    ".csv": tabular.read_csv,
    ".json": tabular.read_json,
    ".jsonl": tabular.read_jsonl,
    ".ndjson": tabular.read_jsonl,
    ".parquet": tabular.read_parquet,
}
# The tabular formats read in batches (`tokclf.data.tabular`); a .json document is read whole.
# TAGS_ONLY: those whose first pass can skip the words (CSV cells and Parquet columns are parsed
# separately; a JSON line is parsed whole either way).
TAGS_ONLY = frozenset({".csv", ".parquet"})
TABULAR_STREAMS: dict[str, Callable[..., Iterator[RawSplit]]] = {
    ".csv": tabular.iter_csv,
    ".jsonl": tabular.iter_jsonl,
    ".ndjson": tabular.iter_jsonl,
    ".parquet": tabular.iter_parquet,
}
SUPPORTED = sorted(CONLL_EXTENSIONS | set(TABULAR_READERS) | {".conllu"} | formats.SPAN_SUFFIXES - {".ann"})

# Names that mean the same split; a request for one finds any other present.
ALIASES: tuple[tuple[str, ...], ...] = (
    ("train", "training"),
    ("validation", "valid", "dev", "val", "eval", "development"),
    ("test", "testing"),
)
_SUFFIX = re.compile(r"[-_.](" + "|".join(n for group in ALIASES for n in group) + r")$", re.IGNORECASE)
# Hub ids: "name" or "owner/name" (letters, digits, -, _, .), not a path with a file extension.


def split_name_for(path: Path) -> str:
    """File -> split name: the stem, or its trailing -train/-dev/-test part (en_ewt-ud-dev -> dev)."""
    stem = path.stem.lower()
    if any(stem in group for group in ALIASES):
        return stem
    match = _SUFFIX.search(stem)
    return match.group(1).lower() if match else stem


def find_split_files(folder: Path) -> dict[str, Path]:
    """Supported data files in a folder, by split name; two files for one split is an error."""
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        # A brat split is a sub-folder of .txt/.ann pairs (standoff/train, standoff/test, ...).
        brat_split = path.is_dir() and any(path.glob("*.ann"))
        if not brat_split and (not path.is_file() or path.name.startswith(".") or path.suffix.lower() not in SUPPORTED):
            continue
        name = split_name_for(path)
        if name in found:
            raise DataError(
                f"two files give split {name!r}: {found[name].name} and {path.name}", where=str(folder),
                fix="keep one file per split (or point data_path at the file you mean).", code="E2045",
            )
        found[name] = path
    if not found:
        present = ", ".join(sorted(p.name for p in folder.iterdir())[:20]) or "(nothing)"
        raise DataError(
            f"no data files found; the folder holds: {present}", where=str(folder),
            fix=f"name split files like train.txt / valid.txt / test.txt (extensions: {', '.join(SUPPORTED)}), "
            "or point data_path at one file or a save_to_disk folder.", code="E2046",
        )
    return found


def resolve_split(requested: str, available: Iterable[str], *, where: str) -> str | None:
    """The available split matching `requested`: exact, then case-insensitive, then an alias."""
    names = list(available)
    if requested in names:
        return requested
    lowered = {n.lower(): n for n in names}
    if requested.lower() in lowered:
        return lowered[requested.lower()]
    group = next((g for g in ALIASES if requested.lower() in g), ())
    matches = [lowered[a] for a in group if a in lowered]
    if len(matches) > 1:
        raise DataError(
            f"split {requested!r} is ambiguous: the data has {', '.join(matches)}", where=where,
            fix=f"name the one you mean exactly (e.g. valid_split={matches[0]!r}).", code="E2047",
        )
    return matches[0] if matches else None


def read_file(path: Path, *, tokens_column: str, tags_column: str, conll_token_column: int,
              conll_tag_column: int, conllu_tag: str, data_format: str = "auto",
              span_options: SpanOptions | None = None, document_column: str | None = None) -> RawSplit:
    fmt = formats.detect_format(path) if data_format == "auto" else data_format
    if fmt in formats.SPAN_FORMATS:
        return formats.read_span_split(path, fmt, span_options or SpanOptions())
    suffix = path.suffix.lower()
    if suffix in TABULAR_READERS:
        return TABULAR_READERS[suffix](path, tokens_column=tokens_column, tags_column=tags_column,
                                       document_column=document_column)
    if suffix == ".conllu":
        return conll.read_conllu(path, tag=conllu_tag)
    if suffix in CONLL_EXTENSIONS:
        return conll.read_conll(path, token_column=conll_token_column, tag_column=conll_tag_column)
    raise DataError(f"unsupported file type {suffix or '(no extension)'!r}", where=str(path),
                    fix=f"use one of: {', '.join(SUPPORTED)}.", code="E2048")


def _sources(data_path: str, train_split: str) -> tuple[dict[str, Any], str]:
    """Split name -> Path or datasets.Dataset (read later, only for the splits asked for)."""
    path = Path(data_path).expanduser()
    if path.is_file():
        return {train_split: path}, str(path)
    if path.is_dir():
        if any(path.glob("*.ann")):  # a brat folder: the train split
            return {train_split: path}, str(path)
        if hf.is_saved_dataset(path):
            loaded = hf.load_saved(path)
            return (loaded if isinstance(loaded, dict) else {train_split: loaded}), str(path)
        return dict(find_split_files(path)), str(path)
    if not is_hub_id(data_path, file_suffixes=SUPPORTED):
        raise DataError(f"no such file or folder: {data_path}", fix="check the path (relative to the current folder).", code="E2049")
    return hf.load_hub(data_path), f"hub:{data_path}"


def _features() -> Any:
    from datasets import Features, List, Value

    # Explicit types: inference would give an empty sentence the null type.
    return Features({TOKENS: List(Value("string")), TAGS: List(Value("int64")), LINE: Value("int64"),
                     DOCUMENT: Value("int64"), SENTENCE: Value("int64")})


def to_table(raw: RawSplit, tags: list[list[int]]) -> Any:
    """One batch of sentences as an Arrow table of the normalised columns (one conversion)."""
    import pyarrow as pa

    schema = _features().arrow_schema
    positions = raw.positions if raw.positions is not None else [-1] * len(raw)
    return pa.table({TOKENS: raw.tokens, TAGS: tags, LINE: raw.lines, DOCUMENT: raw.documents, SENTENCE: positions},
                    schema=schema)


def to_dataset(raw: RawSplit, tags: list[list[int]]) -> Any:
    from datasets import Dataset

    return Dataset(to_table(raw, tags))


def memory_sink(name: str, tables: Iterable[Any], features: Any) -> Any:
    from tokclf.core.arrowio import in_memory_dataset

    return in_memory_dataset(tables, features)


def disk_sink(folder: Path) -> Sink:
    """Each split written to `folder/<split>` as it is read, then memory-mapped (datasets.load_from_disk)."""
    def sink(name: str, tables: Iterable[Any], features: Any) -> Any:
        from datasets import load_from_disk

        from tokclf.core.arrowio import write_split

        write_split(folder / name, tables, features)
        return load_from_disk(str(folder / name))

    return sink


def _head(parts: Iterable[RawSplit], n: int | None) -> Iterator[RawSplit]:
    """The first n sentences of a stream of batches (all with None)."""
    left = n
    for part in parts:
        if left is None:
            yield part
            continue
        if left <= 0:
            return
        part = part.head(left)
        left -= len(part)
        yield part


def _streamed(path: Path, *, data_format: str, tokens_column: str, tags_column: str, conll_token_column: int,
              conll_tag_column: int, conllu_tag: str, batch_sentences: int,
              document_column: str | None = None) -> Callable[..., Iterator[RawSplit]] | None:
    """A re-startable batched reader for the formats read record by record (CoNLL, CoNLL-U, CSV,
    JSON Lines, Parquet); None for the others (a .json document, span exports), read whole. The
    reader's `tags_only=True` lets the formats in TAGS_ONLY skip the words (label planning). A
    tabular file with `document_column` comes as one batch (its documents are grouped whole)."""
    if data_format in formats.SPAN_FORMATS:
        return None
    suffix = path.suffix.lower()
    if suffix in TABULAR_STREAMS:
        # A JSON Lines file may be a span export (Label Studio, doccano, Prodigy): told by content.
        if data_format == "auto" and formats.detect_format(path) != "tags":
            return None
        stream = TABULAR_STREAMS[suffix]
        if suffix in TAGS_ONLY:
            return lambda tags_only=False: stream(path, tokens_column=tokens_column, tags_column=tags_column,
                                                  batch_sentences=batch_sentences, tags_only=tags_only,
                                                  document_column=document_column)
        return lambda tags_only=False: stream(path, tokens_column=tokens_column, tags_column=tags_column,
                                              batch_sentences=batch_sentences, document_column=document_column)
    if suffix == ".conllu":
        return lambda tags_only=False: conll.iter_conllu(path, tag=conllu_tag, batch_sentences=batch_sentences)
    if suffix in CONLL_EXTENSIONS:
        return lambda tags_only=False: conll.iter_conll(path, token_column=conll_token_column,
                                                        tag_column=conll_tag_column, batch_sentences=batch_sentences)
    return None


class _Digest:
    """What label planning needs from a split read in batches: for every distinct tag the first
    sentence that has it (so errors name that sentence), the split's tag kind, and its size."""

    def __init__(self) -> None:
        self.raw: RawSplit | None = None
        self.seen: set[Any] = set()
        self.kind = "none"
        self.count = 0

    def add(self, part: RawSplit) -> None:
        if self.raw is None:
            self.raw = RawSplit([], [], [], [], part.source, part.unit, part.label_names, list(part.notes))
        kind = tag_kind(part)
        if kind != "none" and self.kind != "none" and kind != self.kind:
            # Two batches of different kinds: show the first sentence of each to tag_kind's message.
            i = next(i for i, tags in enumerate(part.tags) if tags)
            self.raw.tokens.append(part.tokens[i])
            self.raw.tags.append(part.tags[i])
            self.raw.lines.append(part.lines[i])
            self.raw.documents.append(part.documents[i])
            tag_kind(self.raw)
        self.kind = kind if self.kind == "none" else self.kind
        for i, tags in enumerate(part.tags):
            new = [t for t in tags if t not in self.seen]
            if new:
                self.seen.update(new)
                self.raw.tokens.append(part.tokens[i])
                self.raw.tags.append(part.tags[i])
                self.raw.lines.append(part.lines[i])
                self.raw.documents.append(part.documents[i])
        self.count += len(part)


def load_labelled_data(
    data_path: str | list[str],
    *,
    tokens_column: str = "tokens",
    tags_column: str = "tags",
    train_split: str = "train",
    valid_split: str | None = None,
    test_split: str | None = "test",
    max_samples: int | None = None,
    label_names: list[str] | str | None = None,
    conll_token_column: int = 0,
    conll_tag_column: int = -1,
    conllu_tag: str = "upos",
    validation_split_ratio: float | None = None,
    seed: int = 42,
    data_format: str = "auto",
    span_alignment: str = "expand",
    overlapping: str = "error",
    label_map: str | dict[str, str] | None = None,
    span_records: str = "sentence",
    document_column: str | None = None,
    sink: Sink | None = None,
    batch_sentences: int | None = None,
    source_names: dict[str, str] | None = None,
) -> LabelledData:
    """Read every requested split of `data_path` into sentences with integer tags (see module doc).

    sink: where each split's Arrow tables go (default: in memory). With a sink, CoNLL, CoNLL-U,
    CSV, JSON Lines and Parquet files are read in batches of `batch_sentences` (default
    `tokclf.core.arrowio.BATCH_ROWS`), twice (labels, then ids), so memory holds one batch whatever
    the file's size, and so are save_to_disk and Hub datasets (from their Arrow data); the other
    formats (a .json document, span exports) are read whole, once. Several sources are written one
    after another into the sink (`tokclf.data.sources`); `source_names` maps a source's path to the
    name its sentences carry in their SOURCE column (default: the path as given)."""
    from tokclf.core.arrowio import BATCH_ROWS

    if not isinstance(data_path, str):  # several sources: tokclf.data.sources
        paths = [str(p) for p in data_path]
        if len(paths) != 1:
            from tokclf.data.sources import load_sources

            return load_sources(
                paths, load_labelled_data, lambda p: list(_sources(resolve_data_path(p), train_split)[0]),
                train_split=train_split, valid_split=valid_split, test_split=test_split, label_names=label_names,
                tokens_column=tokens_column, tags_column=tags_column, max_samples=max_samples,
                conll_token_column=conll_token_column, conll_tag_column=conll_tag_column, conllu_tag=conllu_tag,
                validation_split_ratio=validation_split_ratio, seed=seed, data_format=data_format,
                span_alignment=span_alignment, overlapping=overlapping, label_map=label_map,
                span_records=span_records, sink=sink, batch_sentences=batch_sentences, source_names=source_names,
                document_column=document_column)
        data_path = paths[0]
    batch_sentences = batch_sentences or BATCH_ROWS
    resolved = resolve_data_path(data_path)
    available, origin = _sources(resolved, train_split)
    user_names = parse_label_names(label_names)
    span_options = spans.span_options(span_alignment, overlapping, label_map, user_names, span_records)
    mapping = span_options.label_map
    notes: list[str] = []

    wanted: dict[str, str] = {}  # our name -> name in the source
    for requested, kind, required in ((train_split, "train_split", True), (valid_split, "valid_split", True),
                                      (test_split, "test_split", False)):
        if requested is None:
            continue
        found = resolve_split(requested, available, where=origin)
        if found is None:
            if required:
                raise DataError(
                    f"{kind}={requested!r} not found; the data has split(s): {', '.join(available)}",
                    where=origin, fix=f"set {kind} to one of those names"
                    + (" (a single file is the train split only)." if len(available) == 1 else "."), code="E2050",
                )
            notes.append(f"no {requested!r} split in the data: nothing to test on after training.")
            continue
        if found in wanted.values() and requested not in wanted:
            other = next(k for k, v in wanted.items() if v == found)
            raise DataError(f"{kind}={requested!r} and split {other!r} are the same data ({found!r})", where=origin,
                            fix="choose different splits for train, validation and test.", code="E2051")
        wanted[requested] = found

    readers: dict[str, Callable[[], Iterator[RawSplit]]] = {}
    streamed: set[str] = set()  # read as batches, twice; the others are read whole, once
    opts: dict[str, Any] = dict(tokens_column=tokens_column, tags_column=tags_column, document_column=document_column)
    for ours, theirs in wanted.items():
        src = available[theirs]
        stream = None
        if isinstance(src, Path) and src.is_file() and (sink is not None or max_samples is not None):
            # With max_samples and no sink: one batch of exactly max_samples sentences, so the
            # rest of the file is never parsed (a 3,000-sentence try on a large corpus reads 3,000).
            stream = _streamed(src, data_format=data_format, conll_token_column=conll_token_column,
                               conll_tag_column=conll_tag_column, conllu_tag=conllu_tag,
                               batch_sentences=batch_sentences if sink is not None else max_samples, **opts)
        elif not isinstance(src, Path) and sink is not None and document_column is None:
            # A save_to_disk / Hub split: its Arrow data, batch by batch (with document_column,
            # whole: a document's rows are grouped, wherever they are).
            stream = (lambda tags_only=False, src=src, label=f"{origin}[{theirs}]": hf.iter_dataset(
                src, source=label, batch_sentences=batch_sentences, tokens_column=tokens_column,
                tags_column=tags_column))
        if stream is not None and sink is not None:
            readers[ours] = (lambda tags_only=False, stream=stream: (
                map_split_tags(part, mapping) for part in _head(stream(tags_only), max_samples)))
            streamed.add(ours)
            continue
        if stream is not None:
            first = next(_head(stream(), max_samples), None)
            if first is None:
                raise DataError(f"split {ours!r} has no sentences", where=str(src), fix="add data or choose another split.", code="E2052")
            first = map_split_tags(first, mapping)
            readers[ours] = (lambda raw=first: iter([raw]))
            continue
        if isinstance(src, Path):
            raw = read_file(src, conll_token_column=conll_token_column, conll_tag_column=conll_tag_column,
                            conllu_tag=conllu_tag, data_format=data_format, span_options=span_options,
                            **opts).head(max_samples)
        else:
            label = f"{origin}[{theirs}]"
            raw = hf.raw_from_dataset(src, source=label, max_samples=max_samples, **opts)
        raw = raw if raw.annotations is not None else map_split_tags(raw, mapping)
        readers[ours] = (lambda raw=raw: iter([raw]))

    # Pass 1: which labels occur (a batched split is read once here and once more to write it; a
    # split read whole is planned on as it is, so every message is the one it always was).
    planned: dict[str, RawSplit] = {}
    for ours, reader in readers.items():
        if ours in streamed:
            digest = _Digest()
            for part in reader(tags_only=True):  # the labels need only the tags
                digest.add(part)
            raw, count = digest.raw, digest.count
        else:
            raw = next(reader())
            count = len(raw)
        if count == 0 or raw is None:
            raise DataError(f"split {ours!r} has no sentences", where=raw.source if raw is not None else origin,
                            fix="add data or choose another split.", code="E2053")
        planned[ours] = raw
    plan = plan_labels(planned, train_split, user_names)
    for ours in (s for s in plan.order if s in streamed):
        label_ids(planned[ours], plan)  # a tag outside the label names fails here, naming its sentence

    # Pass 2: ids, Arrow tables, one batch at a time, into the sink.
    write = sink or memory_sink
    features = _features()
    splits: dict[str, Any] = {}
    for ours in plan.order:
        parts_iter = readers[ours]() if ours in streamed else iter([planned[ours]])
        splits[ours] = write(ours, (to_table(part, label_ids(part, plan)) for part in parts_iter), features)
    sources = {name: planned[name].source for name in readers}
    units = {name: planned[name].unit for name in readers}
    splits = {name: splits[name] for name in readers}

    if validation_split_ratio is not None:
        if valid_split is not None:
            notes.append(f"validation_split_ratio ignored: the data has the {valid_split!r} split.")
        else:
            splits[train_split], splits[CARVED_VALIDATION_SPLIT] = _carve(
                splits[train_split], validation_split_ratio, seed, sources[train_split])
            sources[CARVED_VALIDATION_SPLIT] = sources[train_split]
            units[CARVED_VALIDATION_SPLIT] = units[train_split]
            notes.append(f"validation: {len(splits[CARVED_VALIDATION_SPLIT])} sentences carved from {train_split!r} "
                         f"(ratio {validation_split_ratio}, seed {seed}).")

    annotations = {name: raw.annotations for name, raw in planned.items() if raw.annotations is not None}
    return LabelledData(splits=splits, label_names=plan.names, sources=sources, units=units,
                        label_origin=plan.origin, notes=notes + plan.notes + [n for r in planned.values() for n in r.notes],
                        annotations=annotations)


def _carve(train: Any, ratio: float, seed: int, source: str) -> tuple[Any, Any]:
    if not 0 < ratio < 1:
        raise DataError(f"validation_split_ratio={ratio} must be between 0 and 1", fix="use e.g. 0.1.", code="E2054")
    try:
        parts = train.train_test_split(test_size=ratio, seed=seed)
    except ValueError as exc:
        raise DataError(f"cannot carve a validation split: {exc}", where=source,
                        fix="use a larger train split or a larger validation_split_ratio.", code="E2055") from None
    if _has_documents(train):
        # Same sentences in each part, back in source order: document context finds a sentence's
        # neighbours as adjacent rows, which a shuffled part would scatter (data without documents
        # keeps the shuffled order it always had). The carve depends only on the size and the seed,
        # so carving the row numbers gives each part's rows.
        import numpy as np
        from datasets import Dataset

        rows = Dataset.from_dict({"row": np.arange(len(train))}).train_test_split(test_size=ratio, seed=seed)
        return (train.select(np.sort(np.asarray(rows["train"]["row"]))),
                train.select(np.sort(np.asarray(rows["test"]["row"]))))
    return parts["train"], parts["test"]


def _has_documents(ds: Any) -> bool:
    """True when some sentence of `ds` has a place in a document (SENTENCE >= 0)."""
    import pyarrow.compute as pc

    from tokclf.core.arrowio import dataset_tables

    if SENTENCE not in ds.column_names:
        return False
    return any(t.num_rows and pc.max(t.column(SENTENCE)).as_py() >= 0
               for t in dataset_tables(ds.select_columns([SENTENCE])))


def load_from_params(params: Any, *, data_path: str | list[str] | None = None, sink: Sink | None = None,
                     source_names: dict[str, str] | None = None) -> LabelledData:
    """load_labelled_data with the data fields of a TokenClassificationParams; `data_path` (default
    params.data_path), `sink` and `source_names` let the ingest stage read its snapshot, write to
    disk and name the sources as the user gave them."""
    return load_labelled_data(
        params.data_path if data_path is None else data_path,
        tokens_column=params.tokens_column,
        tags_column=params.tags_column,
        train_split=params.train_split,
        valid_split=params.valid_split,
        test_split=params.test_split,
        max_samples=params.max_samples,
        label_names=params.label_names,
        conll_token_column=params.conll_token_column,
        conll_tag_column=params.conll_tag_column,
        conllu_tag=params.conllu_tag,
        validation_split_ratio=params.validation_split_ratio,
        seed=params.seed,
        data_format=params.data_format,
        span_alignment=params.span_alignment,
        overlapping=params.overlapping,
        label_map=params.label_map,
        span_records=params.span_records,
        document_column=params.document_column,
        sink=sink,
        source_names=source_names,
    )
