"""Sentence records for span documents: the rule-based splitter (tokclf.text.sentences), entities
never cut, offsets into the document, exact round trips, ingest and predict in sentence units."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tokclf.data.formats import read_span_docs
from tokclf.data.ingest import load_labelled_data
from tokclf.data.spans import (Span, SpanDoc, SpanOptions, SpanStats, align_doc, align_docs, join_sentences,
                               split_sentences, to_records)
from tokclf.inference.annotations import from_tags
from tokclf.text.sentences import sentence_ranges
from tokclf.text.words import split_words


def sentences(text: str) -> list[str]:
    offsets = split_words(text)[1]
    return [text[offsets[a][0]:offsets[b - 1][1]] for a, b in sentence_ranges(text, offsets)]


@pytest.mark.parametrize("text, expected", [
    ("One. Two! Three? Four", ["One.", "Two!", "Three?", "Four"]),
    ("Dr. Smith met Prof. Jones. They talked.", ["Dr. Smith met Prof. Jones.", "They talked."]),
    ("Use e.g. Python or i.e. Rust. Then stop.", ["Use e.g. Python or i.e. Rust.", "Then stop."]),
    ("Smith et al. Showed it. Fig. 2 shows it.", ["Smith et al. Showed it.", "Fig. 2 shows it."]),
    ("J. R. R. Tolkien wrote it. He died.", ["J. R. R. Tolkien wrote it.", "He died."]),
    ("It grew 3.5 percent. A v2.0.1 fix.", ["It grew 3.5 percent.", "A v2.0.1 fix."]),
    ("p < 0. 01 in males. Done.", ["p < 0. 01 in males.", "Done."]),
    ("It was approx. three. ok. Next", ["It was approx. three. ok.", "Next"]),
    ('He said "Stop." Then (see below.) Next... Done?! Yes', ['He said "Stop."', "Then (see below.)", "Next...",
                                                           "Done?!", "Yes"]),
    ("Title without stop\nThe body. 12 cases were seen.", ["Title without stop", "The body.", "12 cases were seen."]),
    ("中文句子。日本語です！最後", ["中文句子。", "日本語です！", "最後"]),
    ("no terminal at all", ["no terminal at all"]),
    ("", []),
])
def test_splitter_rules(text, expected):
    assert sentences(text) == expected


def test_ranges_cover_every_word_once_in_order():
    text = "A first one. A second one.\n\nA third. "
    offsets = split_words(text)[1]
    ranges = sentence_ranges(text, offsets)
    assert ranges[0][0] == 0 and ranges[-1][1] == len(offsets)
    assert all(b == c for (_, b), (c, _) in zip(ranges, ranges[1:])) and all(a < b for a, b in ranges)


def _doc(text: str, spans: list[tuple[int, int, str]]) -> SpanDoc:
    return SpanDoc(text, [Span(s, e, lab, text[s:e]) for s, e, lab in spans], where="t.ann", line=1)


def test_sentences_keep_document_offsets_and_never_cut_an_entity():
    text = "Mutations cause ataxia. Telangiectasia is rare. Breast cancer. It is common."
    # "ataxia. Telangiectasia" is one (odd) mention across a sentence boundary: it must stay whole.
    doc = align_doc(_doc(text, [(16, 38, "Disease"), (48, 61, "Disease")]), SpanOptions(), SpanStats())
    pieces = split_sentences(doc)
    assert [" ".join(p.words) for p in pieces] == [
        "Mutations cause ataxia . Telangiectasia is rare .", "Breast cancer .", "It is common ."]
    for p in pieces:
        assert p.text == text and all(text[a:b] == w for (a, b), w in zip(p.offsets, p.words))
        assert not p.tags[0].startswith("I-")
    assert [p.meta["sentence"] for p in pieces] == [0, 1, 2]


def test_round_trip_sentences_back_to_the_same_documents_and_spans(tmp_path):
    folder = tmp_path / "brat"
    folder.mkdir()
    texts = {"a": "Dr. Smith saw colon cancer. It spread to the liver.\nA second paragraph on APC mutations.",
             "b": "No entity here. None at all"}
    anns = {"a": "T1\tDisease 14 26\tcolon cancer\nT2\tDisease 45 50\tliver\n", "b": ""}
    for name in texts:
        (folder / f"{name}.txt").write_text(texts[name], encoding="utf-8")
        (folder / f"{name}.ann").write_text(anns[name], encoding="utf-8")
    docs, _ = align_docs(read_span_docs(folder, "brat"), SpanOptions())
    pieces = to_records(docs, "sentence")
    assert len(pieces) == 5 and to_records(docs, "document") == docs
    assert [p.document for p in pieces] == [1, 1, 1, 2, 2]
    for k, doc in enumerate(docs, 1):
        mine = [p for p in pieces if p.document == k]
        joined = join_sentences(mine)
        assert (joined.text, joined.words, joined.offsets, joined.tags, joined.line, joined.meta) == \
            (doc.text, doc.words, doc.offsets, doc.tags, doc.line, doc.meta)
        whole = from_tags(doc.text, doc.offsets, doc.tags, {}).spans
        parts = [s for p in mine for s in from_tags(p.text, p.offsets, p.tags, {}).spans]
        assert [(s["start"], s["end"], s["label"]) for s in parts] == [(s["start"], s["end"], s["label"]) for s in whole]
    # and ingest gives the same words and tags in either unit, cut differently
    by_sentence = load_labelled_data(str(folder), test_split=None)
    by_document = load_labelled_data(str(folder), test_split=None, span_records="document")
    assert len(by_sentence.splits["train"]) == 5 and len(by_document.splits["train"]) == 2
    flat = lambda d, col: [x for row in d.splits["train"][col] for x in row]  # noqa: E731
    assert flat(by_sentence, "tokens") == flat(by_document, "tokens")
    assert [by_sentence.label_names[t] for t in flat(by_sentence, "tags")] == \
        [by_document.label_names[t] for t in flat(by_document, "tags")]


def test_span_records_is_validated():
    from tokclf.core.errors import DataError
    from tokclf.data.spans import span_options

    with pytest.raises(DataError, match="span_records"):
        span_options(records="paragraph")


def test_predict_on_span_documents_goes_sentence_by_sentence(tmp_path, tokenizer_dir):
    """A span document is tagged sentence by sentence (as the model was trained) and comes back on
    the document's own words and offsets: its tags equal those of each sentence tagged alone."""
    from conftest import save_tiny_bert

    from tokclf.inference.predictor import Predictor
    from tokclf.inference.records import PredictionInput

    model = save_tiny_bert(tokenizer_dir, tmp_path / "m", seed=0, labels=["O", "B-PER", "I-PER"])
    text = "Dr. Smith met John Jones in Paris. They talked about Mary.\nThen they left."
    task = [{"id": 1, "data": {"text": text}, "annotations": []}]
    (tmp_path / "tasks.json").write_text(json.dumps(task), encoding="utf-8")
    predictor = Predictor(str(model))
    [doc] = predictor.predict(Path(tmp_path / "tasks.json"))
    words, offsets = split_words(text)
    assert doc.words == words and doc.spans == offsets and doc.text == text
    alone = [predictor.predict([PredictionInput(words=words[a:b])])[0].tags for a, b in sentence_ranges(text, offsets)]
    assert len(alone) == 3 and doc.tags == [t for tags in alone for t in tags]
    for ent in doc.entities:
        assert text[ent["start"]:ent["end"]] == ent["text"]
    # a model trained on whole documents tags the whole document at once
    predictor.span_records = "document"
    [whole] = predictor.predict(Path(tmp_path / "tasks.json"))
    assert whole.tags == predictor.predict([PredictionInput(words=words)])[0].tags


def test_cli_validate_counts_sentence_or_document_records(tmp_path):
    import subprocess
    import sys

    folder = tmp_path / "brat"
    folder.mkdir()
    (folder / "a.txt").write_text("Dr. Smith saw colon cancer. It spread.\nA second line.", encoding="utf-8")
    (folder / "a.ann").write_text("T1\tDisease 14 26\tcolon cancer\n", encoding="utf-8")
    counts = {}
    for unit in ("sentence", "document"):
        res = subprocess.run([sys.executable, "-m", "tokclf.cli", "validate", "--data-path", str(folder),
                              "--test-split", "none", "--span-records", unit], capture_output=True, text=True, cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        counts[unit] = res.stdout + res.stderr
    assert "'sentences': 3" in counts["sentence"] and "'sentences': 1" in counts["document"]
    assert "'kept': 1" in counts["sentence"] and "'kept': 1" in counts["document"]
