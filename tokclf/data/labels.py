"""Tags as read (`RawSplit`), and how they become integer ids plus label names.

Every reader returns a `RawSplit`: plain Python lists, tags still as the source wrote them
(ints, strings, or ints with ClassLabel names). `resolve_labels` then decides the label names
once, over all splits, so ids mean the same thing in train, validation and test:

1. A ClassLabel feature (Sequence(ClassLabel) in a HF dataset) wins: its names are the truth.
2. String tags: the user's `label_names` if given (order = ids), else the set seen in the data,
   "O" first then sorted, train's labels first and labels only other splits have appended after
   them (so adding a test file never renumbers train's labels).
3. Integer tags: the user's `label_names` if given, else no names (token-level metrics only).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokclf.core.errors import DataError
from tokclf.data.schemes import OUTSIDE


@dataclass
class RawSplit:
    """One split as read: sentences of words with their tags, before ids are assigned.

    lines: 1-based line/row where each sentence starts (see `unit`); documents: 0-based index.
    label_names: names from a ClassLabel feature, when the source had one.
    """

    tokens: list[list[str]]
    tags: list[list[Any]]
    lines: list[int]
    documents: list[int]
    source: str
    unit: str
    label_names: list[str] | None = None
    notes: list[str] = field(default_factory=list)
    # Span sources only: the alignment counts and issues (tokclf.data.spans.SpanStats.to_dict).
    annotations: dict[str, Any] | None = None
    # 0-based place of each sentence in its document (tokclf.core.columns.SENTENCE), or None when
    # the reader knows no documents (every sentence then stands alone: -1).
    positions: list[int] | None = None

    def __len__(self) -> int:
        return len(self.tokens)

    def where(self, index: int) -> str:
        return f"{self.source}, {self.unit} {self.lines[index]}"

    def head(self, n: int | None) -> RawSplit:
        """The first n sentences (all of them when n is None)."""
        if n is None or n >= len(self.tokens):
            return self
        return RawSplit(
            self.tokens[:n], self.tags[:n], self.lines[:n], self.documents[:n],
            self.source, self.unit, self.label_names, list(self.notes), self.annotations,
            None if self.positions is None else self.positions[:n],
        )


@dataclass
class LabelPlan:
    names: list[str] | None
    origin: str  # "classlabel" | "strings" | "user" | "none"
    notes: list[str] = field(default_factory=list)
    order: list[str] = field(default_factory=list)  # train split first
    # String tags are mapped to ids through `names`; errors say where the names came from.
    mapped_from: str = ""


def parse_label_names(value: list[str] | str | None) -> list[str] | None:
    """User label names: a list, a comma-separated string, or a file with one name per line."""
    if value is None:
        return None
    if isinstance(value, str):
        path = Path(value).expanduser()
        if path.is_file():
            try:
                text = path.read_text(encoding="utf-8-sig")
            except UnicodeDecodeError as exc:
                raise DataError(f"label names file is not UTF-8 text (byte {exc.start})", where=str(path),
                                fix="save the file as UTF-8.", code="E2056") from None
            names = [line.strip() for line in text.splitlines() if line.strip()]
            source = str(path)
        elif "," in value:
            names = [part.strip() for part in value.split(",") if part.strip()]
            source = "label_names"
        else:
            raise DataError(
                f"label_names={value!r} is neither an existing file nor a comma-separated list",
                fix="pass a list of names, a string like 'O,B-PER,I-PER', or the path of a file with one name per line.", code="E2057",
            )
    else:
        names = [str(n).strip() for n in value]
        source = "label_names"
    if not names:
        raise DataError("label_names is empty", where=source, fix="give one name per tag id, in id order.", code="E2058")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DataError(f"label_names lists {', '.join(dupes)} more than once", where=source,
                        fix="each name must appear once; its position is its id.", code="E2059")
    return names


def order_labels(labels: Iterable[str]) -> list[str]:
    """Deterministic label order: "O" first (id 0, as most NER datasets have it), then sorted."""
    unique = set(labels)
    head = [OUTSIDE] if OUTSIDE in unique else []
    return head + sorted(unique - {OUTSIDE})


def tag_kind(split: RawSplit) -> str:
    """"int", "str" or "none" (no tags at all); a split mixing both is an error naming the place."""
    kind: str | None = None
    for i, tags in enumerate(split.tags):
        for tag in tags:
            this = "str" if isinstance(tag, str) else "int"
            if kind is None:
                kind, first = this, i
            elif this != kind:
                said = {"str": "string", "int": "integer"}
                raise DataError(
                    f"tags mix integers and strings: {split.unit} {split.lines[first]} has {said[kind]} tags, "
                    f"this sentence has {said[this]} tags",
                    where=split.where(i), fix="use one kind of tag throughout (all names like 'B-PER', or all ids).", code="E2060",
                )
    return kind or "none"


def _map_strings(split: RawSplit, index: dict[str, int], names_from: str) -> list[list[int]]:
    try:
        return [[index[t] for t in tags] for tags in split.tags]
    except KeyError:
        pass  # find the place only on the slow path
    for i, tags in enumerate(split.tags):
        for w, tag in enumerate(tags, 1):
            if tag not in index:
                raise DataError(
                    f"tag {tag!r} (word {w}) is not one of the label names from {names_from} ({', '.join(index)})",
                    where=split.where(i), fix="add it to label_names, or correct the tag.", code="E2061",
                )
    raise AssertionError("unreachable")


def _remap_ids(split: RawSplit, names: list[str]) -> list[list[int]]:
    """Ids under this split's own ClassLabel names -> ids under `names` (matched by name)."""
    assert split.label_names is not None
    index = {n: i for i, n in enumerate(names)}
    missing = [n for n in split.label_names if n not in index]
    if missing:
        raise DataError(
            f"its ClassLabel names include {', '.join(missing)}, which the train split's ClassLabel does not have",
            where=split.source, fix="give every split the same ClassLabel feature (cast_column).", code="E2062",
        )
    table = [index[n] for n in split.label_names]
    return [[table[t] if 0 <= t < len(table) else t for t in tags] for tags in split.tags]


def resolve_labels(
    raws: dict[str, RawSplit], train_split: str, user_names: list[str] | None
) -> tuple[dict[str, list[list[int]]], LabelPlan]:
    """Integer tags for every split, and the names behind them (see module docstring)."""
    plan = plan_labels(raws, train_split, user_names)
    return {s: label_ids(raws[s], plan) for s in plan.order}, plan


def plan_labels(raws: dict[str, RawSplit], train_split: str, user_names: list[str] | None) -> LabelPlan:
    """The label names of all splits (see module docstring). `raws` may be whole splits or, for a
    streaming read, one sentence per distinct tag (the first that has it): only which tags occur,
    and where first, matters here."""
    kinds = {name: tag_kind(raw) for name, raw in raws.items()}
    order = [train_split] + [s for s in raws if s != train_split]
    notes: list[str] = []

    with_classlabel = [s for s in order if raws[s].label_names is not None]
    if with_classlabel:
        names = list(raws[with_classlabel[0]].label_names or [])
        if user_names is not None and user_names != names:
            notes.append("label_names ignored: the dataset's ClassLabel feature names its labels.")
        return LabelPlan(names, "classlabel", notes, order=order, mapped_from="the ClassLabel feature")

    str_splits = [s for s in order if kinds[s] == "str"]
    int_splits = [s for s in order if kinds[s] == "int"]
    if str_splits and int_splits:
        raise DataError(
            f"split {str_splits[0]!r} has string tags but split {int_splits[0]!r} has integer ids",
            where=f"{raws[str_splits[0]].source} / {raws[int_splits[0]].source}",
            fix="use the same kind of tag in every split.", code="E2063",
        )

    if str_splits:
        if user_names is not None:
            names, origin, source = list(user_names), "user", "label_names"
        else:
            names = []
            for s in order:  # train first: its ids never depend on what the other splits hold
                seen = {t for tags in raws[s].tags for t in tags}
                names += order_labels(seen - set(names))
            origin, source = "strings", "the data"
        return LabelPlan(names, origin, notes, order=order, mapped_from=source)

    if user_names is not None:
        return LabelPlan(list(user_names), "user", notes, order=order)
    notes.append(
        "integer tags without label names: training works, but only token-level metrics are possible; "
        "entity-level (seqeval) metrics need label names (set label_names, e.g. 'O,B-PER,I-PER')."
    )
    return LabelPlan(None, "none", notes, order=order)


def label_ids(raw: RawSplit, plan: LabelPlan) -> list[list[int]]:
    """The integer tags of `raw` (a whole split or one batch of it) under `plan`'s names."""
    kind = tag_kind(raw)
    if plan.mapped_from and kind == "str":
        assert plan.names is not None
        return _map_strings(raw, {n: i for i, n in enumerate(plan.names)}, plan.mapped_from)
    if plan.origin == "classlabel" and raw.label_names is not None and raw.label_names != plan.names:
        assert plan.names is not None
        return _remap_ids(raw, plan.names)
    return [list(t) for t in raw.tags]
