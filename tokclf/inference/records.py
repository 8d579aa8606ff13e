"""What goes into a prediction and what comes out: `PredictionInput` and `PredictionRecord`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class PredictionInput:
    """One input: raw `text`, or pre-split `words` (with optional `gold` tags, one per word)."""

    text: str | None = None
    words: list[str] | None = None
    gold: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    # A span export's document (tokclf.inference.inputs): tagged sentence by sentence when the
    # model was trained on sentence records (span_records), predictions on document offsets.
    document: bool = False


@dataclass
class PredictionRecord:
    """What the model says about one input.

    text: the raw text (for pre-split input: the words joined by single spaces).
    words, spans: the words and their [start, end) character offsets into `text`.
    tags, scores: one predicted tag and its probability per word.
    entities: [{type, text, start, end, score, words: [first, last + 1]}], in text order;
        `text[start:end] == entity["text"]` and `words[first:last + 1]` are its words.
    gold: the input's own tags, when it had them (CoNLL tag column, JSONL/dataset tags).
    pretokenized: True when the words were given (not split from raw text).
    meta: passed through from the input (id, line, document).
    sentences: [first, last) word ranges of the sentences the text was cut into (a model trained
        with document context reads a text as a document: `per_sentence` gives one record each);
        None when the text was tagged whole.
    """

    text: str
    words: list[str]
    spans: list[tuple[int, int]]
    tags: list[str]
    scores: list[float]
    entities: list[dict[str, Any]]
    gold: list[str] | None = None
    pretokenized: bool = False
    meta: dict[str, Any] = field(default_factory=dict)
    sentences: list[tuple[int, int]] | None = None

    def per_sentence(self) -> list[PredictionRecord]:
        """One record per sentence (the whole record when it was not cut): the sentence's text,
        words, tags, scores and entities, offsets into that text, meta "sentence" its place."""
        from tokclf.inference.entities import build_entities
        from tokclf.data.schemes import is_bio

        if not self.sentences:
            return [self]
        bio = bool(self.entities) or is_bio(sorted(set(self.tags)))
        out = []
        for k, (a, b) in enumerate(self.sentences):
            if a >= b:
                continue
            lo, hi = self.spans[a][0], self.spans[b - 1][1]
            spans = [(s - lo, e - lo) for s, e in self.spans[a:b]]
            text, tags, scores = self.text[lo:hi], self.tags[a:b], self.scores[a:b]
            out.append(PredictionRecord(
                text=text, words=self.words[a:b], spans=spans, tags=tags, scores=scores,
                entities=build_entities(tags, scores, text, spans) if bio else [],
                gold=None if self.gold is None else self.gold[a:b], pretokenized=self.pretokenized,
                meta=dict(self.meta) | {"sentence": k, "start": lo}))
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON form (one JSONL line): text, entities, words, tags, scores, and spans (raw text
        only), gold (when present) and the input's id/line/document (when present)."""
        out: dict[str, Any] = {}
        if "id" in self.meta:
            out["id"] = self.meta["id"]
        out["text"] = self.text
        out["entities"] = self.entities
        out["words"] = self.words
        if not self.pretokenized:
            out["spans"] = [list(s) for s in self.spans]
        out["tags"] = self.tags
        out["scores"] = [round(s, 4) for s in self.scores]
        if self.gold is not None:
            out["gold"] = self.gold
        for key in ("line", "document"):
            if key in self.meta:
                out[key] = self.meta[key]
        if self.sentences:
            out["sentences"] = [{"words": [a, b], "start": self.spans[a][0], "end": self.spans[b - 1][1]}
                                for a, b in self.sentences if a < b]
        return out

