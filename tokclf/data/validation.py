"""Data validation: what is wrong (errors), what is suspicious (warnings), and what the data holds
(stats), before any model is loaded.

Errors stop training (`raise_for_errors`): words and tags of different lengths, empty sentences
or words, label ids with gaps (no names) or beyond the names. Warnings do not: labels that only
validation/test have, stray I- tags in BIO data (repairable with repair_bio=True), sentences
longer than max_seq_length (covered by overlapping windows), words the tokenizer drops.

Every problem names its place as "<source>, line N" / "<source>, row N" (LabelledData.where),
plus the word number (1-based) when it concerns one word.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from tokclf.core.columns import LINE, SOURCE, TAGS, TOKENS
from tokclf.core.errors import ValidationFailed
from tokclf.core.params import DEFAULT_MAX_SEQ_LENGTH
from tokclf.data.schemes import is_iob2
from tokclf.data.types import LabelledData

# Problems of one kind in one split kept individually; the rest are counted in a summary line,
# so a file with a systematic defect gives a readable report, not 100k lines.
MAX_PER_KIND = 50
BIO_EXAMPLES = 5
TOKENIZE_BATCH = 1000

# (tokens, tags, lines) of one split as Python lists; BIO repair changes tags only, so the
# words used for the subword check stay valid.
Cols = tuple[list[list[str]], list[list[int]], list[int]]


@dataclass
class Problem:
    severity: str  # "error" | "warning"
    code: str
    message: str
    split: str
    where: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class ValidationReport:
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    repaired: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "num_errors": len(self.errors),
            "num_warnings": len(self.warnings),
            "errors": [asdict(p) for p in self.errors],
            "warnings": [asdict(p) for p in self.warnings],
            "repaired": self.repaired,
            "stats": self.stats,
        }

    def write_json(self, path: str | Path) -> None:
        """Atomic: a reader never sees half a report."""
        from tokclf.core.fileio import write_json

        write_json(path, self.to_dict())

    def raise_for_errors(self, report_path: str | None = None) -> None:
        if self.errors:
            raise ValidationFailed([str(p) for p in self.errors], report_path=report_path)


class _Collector:
    """Problems with a cap per (severity, code, split); overflow becomes one summary problem."""

    def __init__(self) -> None:
        self.report = ValidationReport()
        self._counts: Counter[tuple[str, str, str]] = Counter()
        self._first_where: dict[tuple[str, str, str], str] = {}

    def add(self, severity: str, code: str, split: str, where: str, message: str) -> None:
        key = (severity, code, split)
        self._counts[key] += 1
        if self._counts[key] <= MAX_PER_KIND:
            target = self.report.errors if severity == "error" else self.report.warnings
            target.append(Problem(severity, code, message, split, where))

    def finish(self, sources: dict[str, str]) -> ValidationReport:
        for (severity, code, split), n in self._counts.items():
            if n > MAX_PER_KIND:
                target = self.report.errors if severity == "error" else self.report.warnings
                target.append(Problem(severity, code, f"... and {n - MAX_PER_KIND} more {code} problem(s) "
                                      f"({n} in all)", split, sources.get(split, split)))
        return self.report



def stray_inside(tags: list[str]) -> list[int]:
    """Positions of I-X tags that start an entity: at sentence start, after O, after another type."""
    out = []
    prev = "O"
    for i, tag in enumerate(tags):
        if tag.startswith("I-") and (prev == "O" or prev[2:] != tag[2:]):
            out.append(i)
        prev = tag
    return out


def _name(label_names: list[str] | None, tag: int) -> str:
    if label_names is not None and 0 <= tag < len(label_names):
        return label_names[tag]
    return str(tag)


def _columns(ds: Any) -> Cols:
    """Whole columns as Python lists: one Arrow conversion instead of one per row."""
    return ds[TOKENS][:], ds[TAGS][:], ds[LINE][:]


def _check_rows(split: str, cols: Cols, data: LabelledData, out: _Collector) -> None:
    """Per sentence: lengths, empty sentences, empty words, ids beyond the label names."""
    names = data.label_names
    k = len(names) if names is not None else None
    for tokens, tags, line in zip(*cols):
        where = data.where(split, line)
        if not tokens:
            out.add("error", "empty-sentence", split, where, "empty sentence (no words)")
        if len(tokens) != len(tags):
            out.add("error", "length-mismatch", split, where,
                    f"{len(tokens)} words but {len(tags)} tags: each word needs exactly one tag")
        for i, tok in enumerate(tokens, 1):
            if not tok or tok.isspace():
                out.add("error", "empty-word", split, where, f"word {i} is empty or only whitespace ({tok!r})")
        for i, tag in enumerate(tags, 1):
            if tag < 0 or (k is not None and tag >= k):
                rng = f"0..{k - 1} (the {k} label names)" if k is not None else "0 or more"
                out.add("error", "label-out-of-range", split, where, f"tag {i} is id {tag}, outside {rng}")


def _per_source(row_sources: list[str], cols: Cols, names: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for src, tokens, tags in zip(row_sources, cols[0], cols[1]):
        entry = out.setdefault(src, {"sentences": 0, "tokens": 0, "labels": Counter()})
        entry["sentences"] += 1
        entry["tokens"] += len(tokens)
        entry["labels"].update(_name(names, t) for t in tags)
    for entry in out.values():
        entry["labels"] = dict(sorted(entry["labels"].items()))
    return out


def _report_alignment(data: LabelledData, out: _Collector) -> None:
    """Span sources: the alignment counts per split, and each span tokclf changed as a warning
    (file, record, offsets, text: tokclf.data.spans)."""
    for split, ann in data.annotations.items():
        counts = {k: v for k, v in ann.items() if k != "issues"}
        out.report.stats.setdefault("splits", {}).setdefault(split, {})["spans"] = counts
        for issue in ann.get("issues", []):
            out.add("warning", f"span-{issue['action']}", split, issue["where"], issue["message"])


def _check_continuity(data: LabelledData, out: _Collector, counts: dict[str, Counter]) -> None:
    """Without names, ids are the only truth: they must be 0..K-1 or the model gets dead classes."""
    if data.label_names is not None:
        return
    seen = set().union(*(set(c) for c in counts.values())) if counts else set()
    seen = {t for t in seen if t >= 0}
    if not seen:
        return
    gaps = sorted(set(range(max(seen) + 1)) - seen)
    if gaps:
        shown = ", ".join(map(str, gaps[:20])) + (" ..." if len(gaps) > 20 else "")
        out.add("error", "label-gap", "*", ", ".join(sorted(set(data.sources.values()))),
                f"tag ids are not contiguous: {shown} never occur(s) between 0 and {max(seen)}; without label names "
                "ids must be 0..K-1 (set label_names to name every id, or renumber the tags)")


def _check_unseen(data: LabelledData, cols: dict[str, Cols], train_split: str, out: _Collector) -> None:
    """Labels an evaluation split has and train never had: the model cannot predict them."""
    if train_split not in cols:
        return
    train_tags = {t for tags in cols[train_split][1] for t in tags}
    for split, (_, split_tags, split_lines) in cols.items():
        if split == train_split:
            continue
        first: dict[int, str] = {}
        for tags, line in zip(split_tags, split_lines):
            for t in tags:
                if t not in train_tags and t not in first:
                    first[t] = data.where(split, line)
        if first:
            listed = "; ".join(f"{_name(data.label_names, t)} (first at {w})" for t, w in sorted(first.items()))
            out.add("warning", "unseen-label", split, next(iter(first.values())),
                    f"{len(first)} label(s) never seen in {train_split!r}: {listed}; the model cannot learn them")


def _check_bio(data: LabelledData, cols: dict[str, Cols], repair: bool, out: _Collector) -> tuple[LabelledData, int]:
    names = data.label_names
    if not is_iob2(names):
        return data, 0
    assert names is not None
    new_names = list(names)
    index = {n: i for i, n in enumerate(new_names)}
    new_splits = dict(data.splits)
    repaired = 0
    for split, ds in data.splits.items():
        count = 0
        examples: list[str] = []
        first_where = ""
        fixed_tags: list[list[int]] | None = [] if repair else None
        for tokens, tags, line in zip(*cols[split]):
            strings = [_name(names, t) for t in tags]
            bad = stray_inside(strings)
            if bad:
                where = data.where(split, line)
                first_where = first_where or where
                for i in bad:
                    count += 1
                    if len(examples) < BIO_EXAMPLES:
                        before = strings[i - 1] if i > 0 else "sentence start"
                        word = tokens[i] if i < len(tokens) else "?"
                        examples.append(f"{where}, word {i + 1} {word!r}: {strings[i]} after {before}")
            if fixed_tags is not None:
                if bad:
                    tags = list(tags)
                    for i in bad:
                        b = "B-" + strings[i][2:]
                        if b not in index:  # IOB1-style data may lack B-X: add it, keeping old ids
                            index[b] = len(new_names)
                            new_names.append(b)
                        tags[i] = index[b]
                fixed_tags.append(tags)
        out.report.stats.setdefault("splits", {}).setdefault(split, {})["bio_violations"] = count
        if count:
            action = "rewritten to B-X (repair_bio=True)" if repair else "set repair_bio=True to rewrite them to B-X"
            out.add("warning", "bio-stray-inside", split, first_where,
                    f"{count} I-X tag(s) start an entity (at sentence start, after O or after another type), "
                    f"which IOB2 forbids; {action}. First: " + "; ".join(examples))
        if repair and count and fixed_tags is not None:
            new_splits[split] = _with_tags(ds, fixed_tags)
            repaired += count
    if not repaired:
        return data, 0
    added = new_names[len(names):]
    notes = list(data.notes) + [f"repair_bio: {repaired} stray I-X tag(s) rewritten to B-X"
                                + (f"; added label(s) {', '.join(added)}" if added else "")]
    return replace(data, splits=new_splits, label_names=new_names, notes=notes), repaired


def _with_tags(ds: Any, tags: list[list[int]]) -> Any:
    """A copy of `ds` with new tags. Rebuilt from lists (not add_column): a carved split has an
    indices mapping that add_column would flatten with a progress bar, and this is as fast."""
    from datasets import Dataset

    columns = {name: (tags if name == TAGS else ds[name][:]) for name in ds.column_names}
    return Dataset.from_dict(columns, features=ds.features)


def _subword_stats(split: str, cols: Cols, data: LabelledData, tokenizer: Any, max_seq_length: int,
                   out: _Collector) -> dict[str, Any]:
    """Sentences too long for one window, words plain truncation would cut, words with no subword."""
    special = int(tokenizer.num_special_tokens_to_add(pair=False))
    budget = max_seq_length - special
    over = cut = empty = longest = 0
    first_over = first_empty = ""
    empty_examples: list[str] = []
    tokens_col, _, lines = cols
    for start in range(0, len(tokens_col), TOKENIZE_BATCH):
        batch = tokens_col[start:start + TOKENIZE_BATCH]
        # One call per batch: the Rust tokenizer parallelises and the Python loop stays short.
        enc = tokenizer(batch, is_split_into_words=True, add_special_tokens=False, truncation=False,
                        return_attention_mask=False, return_token_type_ids=False)
        for j, ids in enumerate(enc["input_ids"]):
            n = len(ids)
            longest = max(longest, n + special)
            words = batch[j]
            if not words:
                continue
            word_ids = enc.word_ids(j)
            present = {w for w in word_ids if w is not None}
            if len(present) < len(words):
                lost = [i for i in range(len(words)) if i not in present]
                empty += len(lost)
                where = data.where(split, lines[start + j])
                first_empty = first_empty or where
                for i in lost:
                    if len(empty_examples) < BIO_EXAMPLES:
                        empty_examples.append(f"{where}, word {i + 1} {words[i]!r}")
            if n > budget:
                over += 1
                first_over = first_over or data.where(split, lines[start + j])
                cut += len({w for w in word_ids[budget:] if w is not None})
    if over:
        out.add("warning", "long-sentences", split, first_over,
                f"{over} sentence(s) need more than max_seq_length={max_seq_length} subword tokens "
                f"(incl. {special} special); plain truncation would cut {cut} word(s). tokclf covers them with "
                "overlapping windows (stride), so nothing is lost")
    if empty:
        out.add("warning", "words-without-subwords", split, first_empty,
                f"{empty} word(s) produce no subword token with this tokenizer (they get no prediction and "
                "count as missed at evaluation); e.g. " + "; ".join(empty_examples))
    return {"sentences_over_max_seq_length": over, "words_cut_by_truncation": cut,
            "words_without_subwords": empty, "longest_subword_length": longest,
            "max_seq_length": max_seq_length, "special_tokens": special}


def validate_data(
    data: LabelledData,
    *,
    train_split: str = "train",
    valid_split: str | None = None,
    test_split: str | None = "test",
    repair_bio: bool = False,
    tokenizer: Any = None,
    max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH,
) -> tuple[LabelledData, ValidationReport]:
    """Check every split of `data`; returns the (BIO-repaired, when asked) data and the report.

    train_split is the reference for unseen labels; valid_split/test_split are recorded in the
    stats (every split present in `data` is checked).
    """
    out = _Collector()
    stats = out.report.stats
    stats.update({"label_names": data.label_names, "label_origin": data.label_origin,
                  "num_labels": data.num_labels, "roles": {"train": train_split, "validation": valid_split,
                                                           "test": test_split}, "notes": list(data.notes)})
    per_split = stats.setdefault("splits", {})
    counts: dict[str, Counter] = {}
    cols = {split: _columns(ds) for split, ds in data.splits.items()}
    for split, ds in data.splits.items():
        _check_rows(split, cols[split], data, out)
        c: Counter = Counter(t for tags in cols[split][1] for t in tags)
        counts[split] = c
        per_split.setdefault(split, {}).update({
            "source": data.sources.get(split, split),
            "sentences": len(ds),
            "tokens": sum(len(t) for t in cols[split][0]),
            "labels": {_name(data.label_names, t): n for t, n in sorted(c.items())},
        })
        if SOURCE in ds.column_names:  # several sources: the same counts per source
            per_split[split]["by_source"] = _per_source(ds[SOURCE][:], cols[split], data.label_names)
    _report_alignment(data, out)
    _check_continuity(data, out, counts)
    _check_unseen(data, cols, train_split, out)
    data, repaired = _check_bio(data, cols, repair_bio, out)
    out.report.repaired = repaired
    if repaired:
        stats["label_names"], stats["num_labels"] = data.label_names, data.num_labels
    if tokenizer is not None:
        if not getattr(tokenizer, "is_fast", False):
            out.add("warning", "slow-tokenizer", "*", type(tokenizer).__name__,
                    "the tokenizer is not a fast (Rust) tokenizer: subword length checks skipped")
        else:
            for split in data.splits:
                per_split[split]["subwords"] = _subword_stats(split, cols[split], data, tokenizer, max_seq_length, out)
    return data, out.finish(data.sources)


def validate(
    data_path: str,
    *,
    model: str | None = None,
    max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH,
    train_split: str = "train",
    valid_split: str | None = None,
    test_split: str | None = "test",
    repair_bio: bool = False,
    report_path: str | Path | None = None,
    **data_kwargs: Any,
) -> Any:
    """Read and validate data; returns the ValidationReport (hard errors are in `.errors`).

    With `model`, its tokenizer also counts the sentences longer than `max_seq_length`.
    """
    from tokclf.data.ingest import load_labelled_data

    data = load_labelled_data(
        data_path, train_split=train_split, valid_split=valid_split, test_split=test_split, **data_kwargs
    )
    tokenizer = None
    if model is not None:
        from tokclf.core.resources import resolve_model_path
        from tokclf.text.tokenizer import load_tokenizer

        tokenizer = load_tokenizer(resolve_model_path(model))
    _, report = validate_data(
        data, train_split=train_split, valid_split=valid_split, test_split=test_split,
        repair_bio=repair_bio, tokenizer=tokenizer, max_seq_length=max_seq_length,
    )
    if report_path is not None:
        report.write_json(report_path)
    return report
