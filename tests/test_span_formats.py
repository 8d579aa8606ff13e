"""Span annotation formats: the readers (Label Studio, doccano, Prodigy, brat, spaCy), spans -> IOB2
word tags (alignment, overlaps, label map), the writers, `tokclf convert` round trips, and
`tokclf predict --output-format labelstudio` pre-annotations."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tokclf.core.errors import DataError
from tokclf.data.formats import detect_format, read_span_docs
from tokclf.data.ingest import load_labelled_data
from tokclf.data.spans import Span, SpanDoc, SpanOptions, SpanStats, align_doc, parse_label_map

TEXT1 = "John Smith lives in New York."
TEXT2 = "Mary works at Google in Paris."


def ls_task(task_id: int, text: str, spans: list[tuple[int, int, str]], **ann: object) -> dict:
    result = [{"id": f"r{i}", "type": "labels", "from_name": "label", "to_name": "text",
               "value": {"start": s, "end": e, "text": text[s:e], "labels": [lab]}} for i, (s, e, lab) in enumerate(spans)]
    return {"id": task_id, "data": {"text": text}, "annotations": [{"id": task_id * 10, "result": result, **ann}]}


@pytest.fixture()
def ls_file(tmp_path: Path) -> Path:
    tasks = [ls_task(1, TEXT1, [(0, 10, "PER"), (20, 28, "LOC")]), ls_task(2, TEXT2, [(0, 4, "PER"), (14, 20, "ORG"),
                                                                                     (24, 29, "LOC")])]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(tasks), encoding="utf-8")
    return path


def spans_of(tags: list[str], words: list[str]) -> list[tuple[str, str]]:
    out, cur = [], None
    for w, t in zip(words, tags):
        if t.startswith("B-"):
            cur = [t[2:], w]
            out.append(cur)
        elif t.startswith("I-") and cur:
            cur[1] += " " + w
        else:
            cur = None
    return [tuple(x) for x in out]


def test_labelstudio_export_trains_as_iob2(ls_file):
    data = load_labelled_data(str(ls_file), test_split=None)
    ds = data.splits["train"]
    assert ds["tokens"][0] == ["John", "Smith", "lives", "in", "New", "York", "."]
    assert ds["tags"][0] == [data.label_names.index(t) for t in ["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC", "O"]]
    assert data.annotations["train"]["spans"] == 5 and data.annotations["train"]["kept"] == 5
    assert detect_format(ls_file) == "labelstudio"


def test_labelstudio_latest_non_cancelled_annotation_wins(tmp_path):
    task = {"id": 7, "data": {"text": TEXT1}, "annotations": [
        {"id": 1, "updated_at": "2026-01-02T00:00:00", "result": [
            {"type": "labels", "value": {"start": 0, "end": 4, "text": "John", "labels": ["PER"]}}]},
        {"id": 2, "updated_at": "2026-01-03T00:00:00", "result": [
            {"type": "labels", "value": {"start": 0, "end": 10, "text": "John Smith", "labels": ["PER"]}}]},
        {"id": 3, "updated_at": "2026-01-09T00:00:00", "was_cancelled": True, "result": []},
    ]}
    unannotated = {"id": 8, "data": {"text": TEXT2}, "annotations": []}
    path = tmp_path / "ls.json"
    path.write_text(json.dumps([task, unannotated]))
    docs = read_span_docs(path, "labelstudio")
    assert len(docs) == 1 and [(s.start, s.end) for s in docs[0].spans] == [(0, 10)]
    assert len(read_span_docs(path, "labelstudio", all_records=True)) == 2


def test_labelstudio_json_min(tmp_path):
    rows = [{"id": 1, "text": TEXT1, "label": [{"start": 0, "end": 10, "text": "John Smith", "labels": ["PER"]}],
             "annotator": 1, "updated_at": "2026-01-01"},
            {"id": 1, "text": TEXT1, "label": [{"start": 20, "end": 28, "text": "New York", "labels": ["LOC"]}],
             "annotator": 2, "updated_at": "2026-01-05"}]
    path = tmp_path / "min.json"
    path.write_text(json.dumps(rows))
    assert detect_format(path) == "labelstudio"
    docs = read_span_docs(path, "labelstudio")
    assert len(docs) == 1 and docs[0].spans[0].label == "LOC"


def test_doccano_both_shapes(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"text": TEXT1, "label": [[0, 10, "PER"]]}) + "\n"
                    + json.dumps({"text": TEXT2, "entities": [{"id": 4, "label": "ORG", "start_offset": 14,
                                                                "end_offset": 20}]}) + "\n")
    assert detect_format(path) == "doccano"
    data = load_labelled_data(str(path), test_split=None)
    words, tags = data.splits["train"]["tokens"], data.splits["train"]["tags"]
    names = data.label_names
    assert spans_of([names[t] for t in tags[0]], words[0]) == [("PER", "John Smith")]
    assert spans_of([names[t] for t in tags[1]], words[1]) == [("ORG", "Google")]


def test_prodigy_tokens_define_words_and_only_accept(tmp_path):
    text = "New-York rocks"
    tokens = [{"text": "New-York", "start": 0, "end": 8, "id": 0, "ws": True},
              {"text": "rocks", "start": 9, "end": 14, "id": 1, "ws": False}]
    lines = [{"text": text, "tokens": tokens, "spans": [{"start": 0, "end": 8, "label": "LOC"}], "answer": "accept"},
             {"text": TEXT1, "spans": [{"start": 0, "end": 4, "label": "PER"}], "answer": "reject"}]
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert detect_format(path) == "prodigy"
    data = load_labelled_data(str(path), test_split=None)
    assert data.splits["train"]["tokens"] == [["New-York", "rocks"]]  # not the splitter's New - York


def test_brat_folder_label_map_and_discontinuous(tmp_path):
    folder = tmp_path / "brat"
    folder.mkdir()
    (folder / "a.txt").write_text("Breast and ovarian cancer are common.\nSecond line here.", encoding="utf-8")
    (folder / "a.ann").write_text("T1\tModifier 0 6;19 25\tBreast cancer\nN1\tReference T1 MeSH:D001943\n"
                                  "#1\tAnnotatorNotes T1\tnote\nT2\tSpecificDisease 11 25\tovarian cancer\n",
                                  encoding="utf-8")
    assert detect_format(folder) == "brat"
    with pytest.raises(DataError, match="spans overlap"):
        load_labelled_data(str(folder), test_split=None, label_map="Modifier=Disease,SpecificDisease=Disease")
    data = load_labelled_data(str(folder), test_split=None, overlapping="longest",
                              label_map="Modifier=Disease,SpecificDisease=Disease")
    names = data.label_names
    tags = [names[t] for t in data.splits["train"]["tags"][0]]
    assert tags[:4] == ["B-Disease", "I-Disease", "I-Disease", "I-Disease"]
    assert set(names) == {"O", "B-Disease", "I-Disease"}
    assert data.annotations["train"]["overlap_dropped"] == 1
    widened = [i for i in data.annotations["train"]["issues"] if i["action"] == "expanded"]
    assert len(widened) == 1 and "discontinuous fragments 0 6;19 25" in widened[0]["message"]
    assert "a.ann line 1" in widened[0]["where"]


def test_alignment_modes():
    stats = SpanStats()
    expanded = align_doc(SpanDoc("the G6PDgene", [Span(4, 8, "GENE", "G6PD")], "mem", 1), SpanOptions(), stats)
    assert expanded.tags == ["O", "B-GENE"] and stats.expanded == 1
    assert (stats.issues[0].start, stats.issues[0].end, stats.issues[0].text) == (4, 8, "G6PD")
    stats = SpanStats()
    contracted = align_doc(SpanDoc("the G6PDgene x", [Span(6, 14, "GENE")], "mem", 1), SpanOptions("contract"), stats)
    assert contracted.tags == ["O", "O", "B-GENE"] and stats.contracted == 1
    stats = SpanStats()
    dropped = align_doc(SpanDoc("the G6PDgene", [Span(4, 8, "GENE")], "mem", 1), SpanOptions("contract"), stats)
    assert dropped.tags == ["O", "O"] and stats.dropped == 1
    with pytest.raises(DataError, match="edge inside a word") as err:
        align_doc(SpanDoc("the G6PDgene", [Span(4, 8, "GENE", "G6PD")], "mem, record 1", 1), SpanOptions("strict"),
                  SpanStats())
    assert "mem, record 1" in str(err.value) and "[4:8]" in str(err.value) and "How to fix" in str(err.value)
    # punctuation is a word of its own for tokclf's splitter; the export's tokens, when given, win
    plain = align_doc(SpanDoc("the G6PD; gene", [Span(4, 8, "GENE", "G6PD")], "m", 1), SpanOptions(), SpanStats())
    assert plain.words == ["the", "G6PD", ";", "gene"] and plain.tags == ["O", "B-GENE", "O", "O"]
    own = align_doc(SpanDoc("the G6PD; gene", [Span(4, 9, "GENE")], "m", 1, words=[(0, 3), (4, 9), (10, 14)]),
                    SpanOptions(), SpanStats())
    assert own.words == ["the", "G6PD;", "gene"] and own.tags == ["O", "B-GENE", "O"]


def test_overlap_first_and_identical_duplicates():
    doc = SpanDoc(TEXT1, [Span(0, 4, "PER"), Span(0, 10, "PER"), Span(20, 28, "LOC"), Span(20, 28, "LOC")], "m", 1)
    first = align_doc(doc, SpanOptions(overlapping="first"), SpanStats())
    assert first.tags[:2] == ["B-PER", "I-PER"]  # the first-starting, longer on a tie
    stats = SpanStats()
    longest = align_doc(SpanDoc(TEXT1, [Span(0, 4, "PER"), Span(0, 10, "ORG")], "m", 1),
                        SpanOptions(overlapping="longest"), stats)
    assert longest.tags[:2] == ["B-ORG", "I-ORG"] and stats.overlap_dropped == 1


def test_label_map_forms_and_tag_data(tmp_path, ner_jsonl_dir):
    assert parse_label_map("A=B, C=B") == {"A": "B", "C": "B"}
    (tmp_path / "m.yaml").write_text("PER: Person\nLOC: Place\n")
    assert parse_label_map(str(tmp_path / "m.yaml")) == {"PER": "Person", "LOC": "Place"}
    (tmp_path / "m.json").write_text('{"ORG": "Company"}')
    assert parse_label_map(str(tmp_path / "m.json")) == {"ORG": "Company"}
    with pytest.raises(DataError, match="OLD=NEW"):
        parse_label_map("A=,B")
    data = load_labelled_data(str(ner_jsonl_dir), valid_split="validation", label_map=str(tmp_path / "m.yaml"))
    assert "B-Person" in data.label_names and "B-PER" not in data.label_names and "B-ORG" in data.label_names


def test_validation_report_lists_alignment_issues(tmp_path):
    from tokclf.data.validation import validate

    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"text": "Mary works at Googleplex.", "label": [[0, 3, "PER"], [14, 20, "ORG"]]}) + "\n")
    report = validate(str(path), test_split=None)
    assert report.stats["splits"]["train"]["spans"]["expanded"] == 2
    messages = [w for w in report.warnings if w.code == "span-expanded"]
    assert len(messages) == 2 and "d.jsonl, line 1" in messages[0].where
    assert "[0:3] 'Mar'" in messages[0].message and "'Mary'" in messages[0].message


def tokclf(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tokclf.cli", *args], capture_output=True, text=True, cwd=cwd)


def _ls_spans(path: Path) -> list[list[tuple[int, int, str, str]]]:
    tasks = json.loads(path.read_text())
    return [[(r["value"]["start"], r["value"]["end"], r["value"]["labels"][0], r["value"]["text"])
             for r in t["annotations"][0]["result"]] for t in tasks]


@pytest.mark.slow
def test_convert_round_trips_spans_exactly(tmp_path, ls_file):
    """labelstudio -> every format -> labelstudio gives back the same spans, offsets and text."""
    pytest.importorskip("spacy")
    original = _ls_spans(ls_file)
    chain = [("a.jsonl", None), ("b.json", None), ("brat", None), ("c.jsonl", "doccano"), ("d.jsonl", "prodigy"),
             ("e.spacy", None), ("f.json", None)]
    src = ls_file
    for name, to in chain:
        out = tmp_path / name
        res = tokclf("convert", str(src), str(out), *(["--to", to] if to else []))
        assert res.returncode == 0, res.stderr
        src = out
    assert _ls_spans(src) == original
    assert json.loads(src.read_text())[0]["data"]["text"] == TEXT1
    # through CoNLL the text is the words joined by spaces: the same words and labels come back
    assert tokclf("convert", str(ls_file), str(tmp_path / "g.conll")).returncode == 0
    assert tokclf("convert", str(tmp_path / "g.conll"), str(tmp_path / "h.json")).returncode == 0
    assert [[(lab, txt) for _, _, lab, txt in t] for t in _ls_spans(tmp_path / "h.json")] == \
        [[(lab, txt) for _, _, lab, txt in t] for t in original]


def test_brat_round_trip_on_shared_ncbi(tmp_path):
    """The real NCBI standoff devel split: brat -> labelstudio -> brat keeps every mention that sits
    on word boundaries (all but the few the report lists as expanded)."""
    from conftest import shared_data

    src = shared_data("ncbi_disease", "standoff", "devel")
    res = tokclf("convert", str(src), str(tmp_path / "ncbi.json"))
    assert res.returncode == 0, res.stderr
    assert tokclf("convert", str(tmp_path / "ncbi.json"), str(tmp_path / "brat")).returncode == 0
    def mentions(folder: Path) -> set[tuple[str, str, str]]:
        return {(p.stem, ln.split("\t")[1], ln.split("\t")[2]) for p in folder.glob("*.ann")
                for ln in p.read_text(encoding="utf-8").splitlines() if ln.startswith("T")}

    before, after = mentions(src), mentions(tmp_path / "brat")
    assert len(before) > 700 and after == before


@pytest.mark.slow
def test_predict_writes_labelstudio_preannotations(tmp_path, ls_file, tokenizer_dir):
    from conftest import save_tiny_bert

    model = save_tiny_bert(tokenizer_dir, tmp_path / "m", seed=0, labels=["O", "B-PER", "I-PER", "B-LOC", "I-LOC"])
    out = tmp_path / "pre.json"
    res = tokclf("predict", "--model", str(model), "-i", str(ls_file), "-o", str(out), "--output-format", "labelstudio",
                 "--model-version", "v1")
    assert res.returncode == 0, res.stderr
    tasks = json.loads(out.read_text())
    assert [t["id"] for t in tasks] == [1, 2] and tasks[0]["data"]["text"] == TEXT1
    pred = tasks[0]["predictions"][0]
    assert pred["model_version"] == "v1" and 0 < pred["score"] <= 1
    for r in pred["result"]:
        v = r["value"]
        assert TEXT1[v["start"]:v["end"]] == v["text"] and 0 < r["score"] <= 1 and r["type"] == "labels"
        assert r["from_name"] == "label" and r["to_name"] == "text"
    # the pre-annotations read back as a Label Studio file (no annotations yet: no training data)
    assert len(read_span_docs(out, "labelstudio", all_records=True)) == 2


def test_to_labelstudio_tasks_from_records():
    from tokclf.inference.annotations import to_labelstudio_tasks
    from tokclf.inference.records import PredictionRecord

    rec = PredictionRecord(text=TEXT1, words=["John", "Smith", "lives"], spans=[(0, 4), (5, 10), (11, 16)],
                           tags=["B-PER", "I-PER", "O"], scores=[0.9, 0.8, 0.7],
                           entities=[{"type": "PER", "text": "John Smith", "start": 0, "end": 10, "score": 0.85,
                                      "words": [0, 2]}], meta={"id": 5})
    (task,) = to_labelstudio_tasks([rec], model_version="m1")
    assert task["id"] == 5 and task["predictions"][0]["score"] == 0.8
    assert task["predictions"][0]["result"][0]["value"] == {"start": 0, "end": 10, "text": "John Smith", "labels": ["PER"]}
    assert task["predictions"][0]["result"][0]["score"] == 0.85


@pytest.mark.parametrize("fmt", ["labelstudio", "doccano", "prodigy", "brat", "spacy"])
def test_prediction_writers_read_back(fmt, tmp_path):
    """Pre-annotations in every format read back (tokclf's own readers) as the predicted spans."""
    if fmt == "spacy":
        pytest.importorskip("spacy")
    from tokclf.inference.annotations import from_prediction, write_annotations
    from tokclf.inference.records import PredictionRecord
    from tokclf.text.words import split_words

    words, offsets = split_words(TEXT1)
    tags = ["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC", "O"]
    rec = PredictionRecord(text=TEXT1, words=words, spans=offsets, tags=tags, scores=[0.9] * 7, meta={"id": 3},
                           entities=[{"type": "PER", "text": "John Smith", "start": 0, "end": 10, "score": 0.9,
                                      "words": [0, 2]},
                                     {"type": "LOC", "text": "New York", "start": 20, "end": 28, "score": 0.9,
                                      "words": [4, 6]}])
    out = tmp_path / {"labelstudio": "p.json", "doccano": "p.jsonl", "prodigy": "p.jsonl", "brat": "p",
                      "spacy": "p.spacy"}[fmt]
    assert write_annotations([from_prediction(rec)], out, fmt, predictions=True, model_version="v") == 1
    assert detect_format(out) == fmt
    (doc,) = read_span_docs(out, fmt, all_records=True)
    if fmt == "labelstudio":  # predictions are not annotations: the spans sit in predictions[]
        result = json.loads(out.read_text())[0]["predictions"][0]["result"]
        got = [(r["value"]["start"], r["value"]["end"], r["value"]["labels"][0]) for r in result]
    else:
        got = [(s.start, s.end, s.label) for s in doc.spans]
    assert doc.text == TEXT1 and got == [(0, 10, "PER"), (20, 28, "LOC")]


def test_labelstudio_offsets_are_utf16_units(tmp_path):
    """Label Studio counts offsets in JavaScript string units: an emoji is two of them."""
    from tokclf.inference.annotations import SpanRecord, labelstudio_annotated_tasks

    text = "I \U0001F600 love Paris"
    task = {"id": 1, "data": {"text": text}, "annotations": [{"result": [
        {"type": "labels", "value": {"start": 10, "end": 15, "text": "Paris", "labels": ["LOC"]}}]}]}
    path = tmp_path / "emoji.json"
    path.write_text(json.dumps([task]))
    (doc,) = read_span_docs(path, "labelstudio")
    assert (doc.spans[0].start, doc.spans[0].end) == (9, 14) and text[9:14] == "Paris"
    (back,) = labelstudio_annotated_tasks([SpanRecord(text, [], [{"start": 9, "end": 14, "label": "LOC", "text": "Paris"}])])
    assert back["annotations"][0]["result"][0]["value"]["start"] == 10
