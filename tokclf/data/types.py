"""The normalised form every reader produces, and that validation, tokenization and training use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tokclf.core.columns import TAGS


@dataclass
class LabelledData:
    """Sentences of words with integer tags, per split, plus what is known about the labels.

    splits: split name -> datasets.Dataset with columns TOKENS (list[str]), TAGS (list[int]),
        LINE (int), DOCUMENT (int).
    label_names: index -> name, or None when tags are integers with no names (token-level
        metrics only).
    sources: split name -> human-readable origin (file path, "hub:<id>[<split>]", ...), used in
        error messages as "<source>, line N" / "<source>, row N".
    unit: "line" or "row": how LINE is read in messages for each split.
    label_origin: how names were found: "classlabel", "strings", "user", "none".
    """

    splits: dict[str, Any]
    label_names: list[str] | None
    sources: dict[str, str]
    units: dict[str, str]
    label_origin: str = "none"
    notes: list[str] = field(default_factory=list)
    # Span sources: split -> alignment counts and issues (tokclf.data.spans.SpanStats.to_dict).
    annotations: dict[str, Any] = field(default_factory=dict)

    def where(self, split: str, line: int) -> str:
        return f"{self.sources.get(split, split)}, {self.units.get(split, 'row')} {line}"

    @property
    def num_labels(self) -> int:
        if self.label_names is not None:
            return len(self.label_names)
        import pyarrow.compute as pc

        from tokclf.core.arrowio import dataset_tables

        top = -1
        for ds in self.splits.values():
            for table in dataset_tables(ds.select_columns([TAGS])):  # batch by batch, in Arrow
                value = pc.max(pc.list_flatten(table.column(TAGS))).as_py()
                if value is not None:
                    top = max(top, value)
        return top + 1
