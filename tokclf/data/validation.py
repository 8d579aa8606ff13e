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
from collections.abc import Iterator
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
# Sentences per split whose subwords are counted: a split up to this size exactly, a larger one on
# a seeded random sample of about this many (each sentence kept with probability SAMPLE / size;
# random, not every k-th, which would alias with periodic data such as a corpus repeated to size).
# The subword statistics are warnings (long sentences are windowed, nothing is lost), the tokenize
# stage tokenizes every sentence anyway (and logs the exact count of words without a piece), and
# counting them over millions of sentences was most of validation's CPU, spent again by tokenize.
SUBWORD_SAMPLE = 100_000

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
            raise ValidationFailed([str(p) for p in self.errors], report_path=report_path, code="E2112")


class _Collector:
    """Problems with a cap per (severity, code, split); overflow becomes one summary problem.

    Splits are checked one streaming pass at a time, so problems arrive split by split; `phase`
    (rows, labels, BIO, subwords) restores the report's order: every split's row problems first,
    then label problems, and so on."""

    def __init__(self) -> None:
        self.report = ValidationReport()
        self._counts: Counter[tuple[str, str, str]] = Counter()
        self._phased: list[tuple[int, int, Problem]] = []

    def add(self, severity: str, code: str, split: str, where: str, message: str, phase: int = 0) -> None:
        key = (severity, code, split)
        self._counts[key] += 1
        if self._counts[key] <= MAX_PER_KIND:
            self._phased.append((phase, len(self._phased), Problem(severity, code, message, split, where)))

    def finish(self, sources: dict[str, str]) -> ValidationReport:
        for _, _, problem in sorted(self._phased, key=lambda item: item[:2]):
            (self.report.errors if problem.severity == "error" else self.report.warnings).append(problem)
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


# Report phases (see _Collector).
ROWS, LABELS, BIO, SUBWORDS = range(4)


def _batches(ds: Any) -> Iterator[Cols]:
    """A split as batches of (tokens, tags, lines) lists: one Arrow conversion per batch, and
    never more than one batch of Python objects at a time."""
    from tokclf.core.arrowio import dataset_tables

    for table in dataset_tables(ds.select_columns([TOKENS, TAGS, LINE])):
        yield table.column(TOKENS).to_pylist(), table.column(TAGS).to_pylist(), table.column(LINE).to_pylist()


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


def _per_source(ds: Any, names: list[str] | None) -> dict[str, Any]:
    """Sentences, words and labels per source of a split, in one more streaming pass (only when
    the data has several sources)."""
    from tokclf.core.arrowio import dataset_tables

    out: dict[str, Any] = {}
    for table in dataset_tables(ds.select_columns([SOURCE, TOKENS, TAGS])):
        for src, tokens, tags in zip(table.column(SOURCE).to_pylist(), table.column(TOKENS).to_pylist(),
                                     table.column(TAGS).to_pylist()):
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
                "ids must be 0..K-1 (set label_names to name every id, or renumber the tags)", phase=LABELS)


class _Unseen:
    """Labels an evaluation split has and train never had (the model cannot predict them):
    the first place of each, accumulated batch by batch."""

    def __init__(self, train_tags: set[int]) -> None:
        self.train_tags = train_tags
        self.first: dict[int, str] = {}

    def add(self, split: str, cols: Cols, data: LabelledData) -> None:
        for tags, line in zip(cols[1], cols[2]):
            for t in tags:
                if t not in self.train_tags and t not in self.first:
                    self.first[t] = data.where(split, line)

    def finish(self, split: str, train_split: str, data: LabelledData, out: _Collector) -> None:
        if self.first:
            listed = "; ".join(f"{_name(data.label_names, t)} (first at {w})" for t, w in sorted(self.first.items()))
            out.add("warning", "unseen-label", split, next(iter(self.first.values())),
                    f"{len(self.first)} label(s) never seen in {train_split!r}: {listed}; the model cannot learn them",
                    phase=LABELS)


class _Bio:
    """Stray I-X tags (IOB2 forbids an I-X that starts an entity), counted batch by batch; with
    repair, the B-X labels the repair needs are added to the names in the order first met."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.new_names = list(names)
        self.index = {n: i for i, n in enumerate(self.new_names)}

    def scan(self, split: str, cols: Cols, data: LabelledData, repair: bool, state: dict[str, Any]) -> None:
        for tokens, tags, line in zip(*cols):
            strings = [_name(self.names, t) for t in tags]
            bad = stray_inside(strings)
            if not bad:
                continue
            where = data.where(split, line)
            state["first_where"] = state["first_where"] or where
            for i in bad:
                state["count"] += 1
                if len(state["examples"]) < BIO_EXAMPLES:
                    before = strings[i - 1] if i > 0 else "sentence start"
                    word = tokens[i] if i < len(tokens) else "?"
                    state["examples"].append(f"{where}, word {i + 1} {word!r}: {strings[i]} after {before}")
                b = "B-" + strings[i][2:]
                if repair and b not in self.index:  # IOB1-style data may lack B-X: add it, keeping old ids
                    self.index[b] = len(self.new_names)
                    self.new_names.append(b)

    def repaired(self, tags: list[int]) -> list[int]:
        strings = [_name(self.names, t) for t in tags]
        bad = stray_inside(strings)
        if not bad:
            return tags
        tags = list(tags)
        for i in bad:
            tags[i] = self.index["B-" + strings[i][2:]]
        return tags

    def finish(self, split: str, state: dict[str, Any], repair: bool, out: _Collector) -> None:
        count = state["count"]
        out.report.stats.setdefault("splits", {}).setdefault(split, {})["bio_violations"] = count
        if count:
            action = "rewritten to B-X (repair_bio=True)" if repair else "set repair_bio=True to rewrite them to B-X"
            out.add("warning", "bio-stray-inside", split, state["first_where"],
                    f"{count} I-X tag(s) start an entity (at sentence start, after O or after another type), "
                    f"which IOB2 forbids; {action}. First: " + "; ".join(state["examples"]), phase=BIO)


def _with_repaired_tags(ds: Any, bio: _Bio) -> Any:
    """`ds` with its stray I-X tags rewritten to B-X, batch by batch (datasets.map: in memory for
    an in-memory split, to a temporary Arrow file for one on disk)."""
    def fix(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        return {TAGS: [bio.repaired(tags) for tags in batch[TAGS]]}

    from tokclf.core.arrowio import BATCH_ROWS

    return ds.map(fix, batched=True, batch_size=BATCH_ROWS, load_from_cache_file=False)


class _SubwordStats:
    """Sentences too long for one window, words plain truncation would cut, words with no subword:
    accumulated over batches of sentences."""

    def __init__(self, tokenizer: Any, max_seq_length: int, sentences: int) -> None:
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        self.special = int(tokenizer.num_special_tokens_to_add(pair=False))
        self.budget = max_seq_length - self.special
        self.over = self.cut = self.empty = self.longest = 0
        self.first_over = self.first_empty = ""
        self.empty_examples: list[str] = []
        # All sentences up to SUBWORD_SAMPLE, else each with probability SUBWORD_SAMPLE / sentences,
        # from a fixed seed: the same sample on every run, whatever the batch size.
        self.sentences = sentences
        self.rate = min(1.0, SUBWORD_SAMPLE / sentences) if sentences else 1.0
        import numpy as np

        self.rng = np.random.default_rng(0) if self.rate < 1.0 else None
        self.checked = 0

    def add(self, split: str, cols: Cols, data: LabelledData) -> None:
        tokens_col, _, lines = cols
        if self.rng is not None:
            picked = (self.rng.random(len(tokens_col)) < self.rate).nonzero()[0].tolist()
            tokens_col, lines = [tokens_col[i] for i in picked], [lines[i] for i in picked]
        self.checked += len(tokens_col)
        for start in range(0, len(tokens_col), TOKENIZE_BATCH):
            batch = tokens_col[start:start + TOKENIZE_BATCH]
            # One call per batch: the Rust tokenizer parallelises and the Python loop stays short.
            enc = self.tokenizer(batch, is_split_into_words=True, add_special_tokens=False, truncation=False,
                                 return_attention_mask=False, return_token_type_ids=False)
            for j, ids in enumerate(enc["input_ids"]):
                n = len(ids)
                self.longest = max(self.longest, n + self.special)
                words = batch[j]
                if not words:
                    continue
                word_ids = enc.word_ids(j)
                present = {w for w in word_ids if w is not None}
                if len(present) < len(words):
                    lost = [i for i in range(len(words)) if i not in present]
                    self.empty += len(lost)
                    where = data.where(split, lines[start + j])
                    self.first_empty = self.first_empty or where
                    for i in lost:
                        if len(self.empty_examples) < BIO_EXAMPLES:
                            self.empty_examples.append(f"{where}, word {i + 1} {words[i]!r}")
                if n > self.budget:
                    self.over += 1
                    self.first_over = self.first_over or data.where(split, lines[start + j])
                    self.cut += len({w for w in word_ids[self.budget:] if w is not None})

    def finish(self, split: str, out: _Collector) -> dict[str, Any]:
        sample = (f"in a random sample of {self.checked:,} of the {self.sentences:,} sentences, "
                  if self.rng is not None else "")
        if self.over:
            out.add("warning", "long-sentences", split, self.first_over,
                    f"{sample}{self.over} sentence(s) need more than max_seq_length={self.max_seq_length} subword tokens "
                    f"(incl. {self.special} special); plain truncation would cut {self.cut} word(s). tokclf covers "
                    "them with overlapping windows (stride), so nothing is lost", phase=SUBWORDS)
        if self.empty:
            out.add("warning", "words-without-subwords", split, self.first_empty,
                    f"{sample}{self.empty} word(s) produce no subword token with this tokenizer (they get no prediction and "
                    "count as missed at evaluation); e.g. " + "; ".join(self.empty_examples), phase=SUBWORDS)
        stats = {"sentences_over_max_seq_length": self.over, "words_cut_by_truncation": self.cut,
                 "words_without_subwords": self.empty, "longest_subword_length": self.longest,
                 "max_seq_length": self.max_seq_length, "special_tokens": self.special}
        if self.rng is not None:  # counts over the sample only
            stats.update(sampled_sentences=self.checked)
        return stats


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
    stats (every split present in `data` is checked). Each split is read in one streaming pass
    (`tokclf.core.arrowio.BATCH_ROWS` sentences at a time, train first so that unseen labels are
    known), every check accumulating over batches: memory holds one batch and the counts.
    """
    out = _Collector()
    stats = out.report.stats
    stats.update({"label_names": data.label_names, "label_origin": data.label_origin,
                  "num_labels": data.num_labels, "roles": {"train": train_split, "validation": valid_split,
                                                           "test": test_split}, "notes": list(data.notes)})
    per_split = stats.setdefault("splits", {})
    for split in data.splits:
        per_split[split] = {}
    fast = tokenizer is not None and getattr(tokenizer, "is_fast", False)
    if tokenizer is not None and not fast:
        out.add("warning", "slow-tokenizer", "*", type(tokenizer).__name__,
                "the tokenizer is not a fast (Rust) tokenizer: subword length checks skipped", phase=SUBWORDS)
    bio = _Bio(list(data.label_names)) if is_iob2(data.label_names) and data.label_names is not None else None
    counts: dict[str, Counter] = {}
    order = [train_split] * (train_split in data.splits) + [s for s in data.splits if s != train_split]
    to_repair: list[str] = []
    for split in order:
        c: Counter = Counter()
        tokens = 0
        unseen = _Unseen(set(counts[train_split])) if split != train_split and train_split in counts else None
        bio_state: dict[str, Any] = {"count": 0, "examples": [], "first_where": ""}
        subwords = _SubwordStats(tokenizer, max_seq_length, len(data.splits[split])) if fast else None
        for cols in _batches(data.splits[split]):
            _check_rows(split, cols, data, out)
            c.update(t for tags in cols[1] for t in tags)
            tokens += sum(len(t) for t in cols[0])
            if unseen is not None:
                unseen.add(split, cols, data)
            if bio is not None:
                bio.scan(split, cols, data, repair_bio, bio_state)
            if subwords is not None:
                subwords.add(split, cols, data)
        counts[split] = c
        per_split[split].update({
            "source": data.sources.get(split, split),
            "sentences": len(data.splits[split]),
            "tokens": tokens,
            "labels": {_name(data.label_names, t): n for t, n in sorted(c.items())},
        })
        if unseen is not None:
            unseen.finish(split, train_split, data, out)
        if bio is not None:
            bio.finish(split, bio_state, repair_bio, out)
            if repair_bio and bio_state["count"]:
                to_repair.append(split)
        if subwords is not None:
            per_split[split]["subwords"] = subwords.finish(split, out)
        if SOURCE in data.splits[split].column_names:  # several sources: the same counts per source
            per_split[split]["by_source"] = _per_source(data.splits[split], data.label_names)
    _report_alignment(data, out)
    _check_continuity(data, out, counts)
    repaired = 0
    if bio is not None and to_repair:
        repaired = sum(per_split[s]["bio_violations"] for s in to_repair)
        splits = {name: _with_repaired_tags(ds, bio) if name in to_repair else ds for name, ds in data.splits.items()}
        added = bio.new_names[len(bio.names):]
        notes = list(data.notes) + [f"repair_bio: {repaired} stray I-X tag(s) rewritten to B-X"
                                    + (f"; added label(s) {', '.join(added)}" if added else "")]
        data = replace(data, splits=splits, label_names=bio.new_names, notes=notes)
    out.report.repaired = repaired
    if repaired:
        stats["label_names"], stats["num_labels"] = data.label_names, data.num_labels
    # Keys in the order of the report before streaming (rows stats, then BIO, then subwords).
    # Keys added since (by_source, spans) follow them: reordering must never drop a statistic.
    order = ("source", "sentences", "tokens", "labels", "bio_violations", "subwords")
    for split in per_split:
        entry = per_split[split]
        per_split[split] = {k: entry[k] for k in order if k in entry} | {k: v for k, v in entry.items() if k not in order}
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
