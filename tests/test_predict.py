"""tokclf predict: word splitting with offsets, BIO grouping as evaluation scores it, windows,
inputs/outputs and the CLI, on a tiny BERT trained in seconds (MiniLM tokenizer)."""

from __future__ import annotations

import io
import json
import random
import unicodedata

import pytest

from tokclf.cli.main import main as cli_main
from tokclf.core.errors import DataError, TokclfError
from tokclf.evaluation.scoring import score_records
from tokclf.inference.entities import tag_spans
from tokclf.inference.inputs import read_inputs
from tokclf.inference.predictor import Predictor, predict
from tokclf.inference.records import PredictionInput
from tokclf.text.words import split_words

TRICKY = [
    "John  Smith   works at\tGoogle\n in   Paris .",           # runs of spaces, tab, newline
    "Apple Inc., (U.S.) said: \"hello\"!",                      # punctuation glued to words
    "Zoë Saltana visited Montréal — and São Paulo…",            # accents, dashes, ellipsis
    "cafe\u0301 naïve",                                         # combining accent stays in its word
    "東京 is in 日本; Köln am Rhein",                           # CJK ideographs are one word each
    "emoji 🙂 here, 👨\u200d👩\u200d👧 family",                  # astral characters, zero-width joiners
    "zero\u200bwidth soft\u00adhyphen \u200b lone",             # format characters inside/outside words
    "\u00a0 no-break\u00a0space \u3000ideographic\u2003em ",    # Unicode spaces
    "",
    "   ",
]


def check_round_trip(text: str) -> None:
    words, spans = split_words(text)
    assert len(words) == len(spans)
    last = 0
    for word, (start, end) in zip(words, spans):
        assert text[start:end] == word and start < end
        assert start >= last
        gap = text[last:start]
        assert all(c.isspace() or unicodedata.category(c) in ("Cc", "Cf") for c in gap), (text, gap)
        last = end
    assert all(c.isspace() or unicodedata.category(c) in ("Cc", "Cf") for c in text[last:])


@pytest.mark.parametrize("text", TRICKY)
def test_split_words_round_trips_offsets(text):
    check_round_trip(text)


def test_split_words_rule():
    assert split_words("Apple Inc., (U.S.)")[0] == ["Apple", "Inc", ".", ",", "(", "U", ".", "S", ".", ")"]
    assert split_words("John  Smith\t.")[1] == [(0, 4), (6, 11), (12, 13)]
    assert split_words("cafe\u0301 東京 €5 a+b")[0] == ["cafe\u0301", "東", "京", "€5", "a", "+", "b"]
    assert split_words("soft\u00adhyphen \u200b x\u200b")[0] == ["soft\u00adhyphen", "x"]


def test_split_words_random_text_round_trips():
    rng = random.Random(0)
    alphabet = "ab Z9 .,;-'\"()\t\n\u00a0\u200b\u00ad\u0301é東🙂$€"
    for _ in range(300):
        check_round_trip("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))))


# --- grouping words into entities ---------------------------------------------------------------


def test_tag_spans_matches_seqeval_default_mode():
    from seqeval.metrics.sequence_labeling import get_entities

    rng = random.Random(1)
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "E-PER", "S-LOC"]
    for _ in range(2000):
        seq = [rng.choice(tags) for _ in range(rng.randint(0, 12))]
        expected = [(t, b, e + 1) for t, b, e in get_entities(seq)]
        assert tag_spans(seq) == expected, seq


def test_get_entities_is_seqeval_on_every_short_sequence():
    """tokclf.inference.entities.get_entities (predict/serve, no seqeval.metrics import) against
    seqeval's (what evaluation scores with) on every sequence of up to 4 tags over both types and
    every prefix, plus tags seqeval only warns about."""
    import itertools
    import warnings

    from seqeval.metrics.sequence_labeling import get_entities as seqeval_entities

    from tokclf.inference.entities import get_entities

    tags = ["O"] + [f"{p}-{t}" for t in ("PER", "LOC") for p in "BIES"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n in range(5):
            for seq in itertools.product(tags, repeat=n):
                assert get_entities(list(seq)) == seqeval_entities(list(seq)), seq
        for seq in (["B", "I", "O", "I"], ["X-PER", "I-PER"], ["B-A-B", "I-A-B", "I-A"], ["I-PER", ".", "I-PER"]):
            assert get_entities(seq) == seqeval_entities(seq), seq


def test_stray_inside_tag_starts_an_entity():
    # After O, or after another type, I-X begins a new X entity (conlleval / seqeval default).
    assert tag_spans(["O", "I-PER", "I-PER", "O"]) == [("PER", 1, 3)]
    assert tag_spans(["B-ORG", "I-PER", "B-PER", "I-PER"]) == [("ORG", 0, 1), ("PER", 1, 2), ("PER", 2, 4)]
    # BILOU is read as IOBES, as tokclf.evaluation.metrics does.
    assert tag_spans(["U-LOC", "B-PER", "L-PER"]) == [("LOC", 0, 1), ("PER", 1, 3)]


def test_predicted_entities_score_like_evaluation():
    """Entities from tag_spans are the ones tokclf.evaluation.metrics counts: scoring the predicted tags
    against gold built from the same spans gives F1 = 1, and one changed span is counted."""
    from tokclf.evaluation.metrics import compute_metrics

    names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    pred = [["O", "I-PER", "I-PER", "B-LOC", "I-PER"]]
    gold = [["O"] * 5]
    for t, b, e in tag_spans(pred[0]):
        gold[0][b:e] = [f"B-{t}"] + [f"I-{t}"] * (e - b - 1)
    ids = {n: i for i, n in enumerate(names)}
    m = compute_metrics([[ids[t] for t in gold[0]]], [[ids[t] for t in pred[0]]], names)
    assert m["f1"] == 1.0 and sum(v["support"] for v in m["per_type"].values()) == 3


# --- a tiny trained model ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ner_model(tiny_model_dir, ner_jsonl_dir, tmp_path_factory):
    from tokclf import TokenClassificationParams, train

    out = tmp_path_factory.mktemp("predict") / "model"
    params = TokenClassificationParams(
        data_path=str(ner_jsonl_dir), model=str(tiny_model_dir), project_name=str(out), valid_split="validation",
        lr=5e-3, epochs=3, batch_size=8, max_seq_length=32, stride=4, seed=13, logging_steps=5,
    )
    return train(params).output_dir


@pytest.fixture(scope="module")
def predictor(ner_model):
    return Predictor(ner_model, mixed_precision=None)


def test_entities_point_into_the_original_text(predictor):
    records = predictor.predict(TRICKY + ["John Smith works at Google in Paris ."])
    assert len(records) == len(TRICKY) + 1
    for rec, text in zip(records, TRICKY + [None]):
        if text is not None:
            assert rec.text == text and rec.words == split_words(text)[0]
        assert len(rec.tags) == len(rec.words) == len(rec.scores) == len(rec.spans)
        assert all(0.0 <= s <= 1.0 for s in rec.scores)
        assert rec.entities == sorted(rec.entities, key=lambda e: e["start"])
        for e in rec.entities:
            assert rec.text[e["start"]:e["end"]] == e["text"]
            first, last = e["words"]
            assert (rec.spans[first][0], rec.spans[last - 1][1]) == (e["start"], e["end"])
            assert e["type"] in {"PER", "ORG", "LOC"} and 0.0 <= e["score"] <= 1.0
        assert [(e["type"], *e["words"]) for e in rec.entities] == tag_spans(rec.tags)
    assert {e["type"] for e in records[-1].entities} >= {"PER"}


def test_text_longer_than_the_window(predictor, ner_model):
    """max_seq_length is 32 here: a 150-word text is covered by overlapping windows, every word
    gets a tag, and tags are those of tokclf's own windowed word prediction."""
    import datasets

    from tokclf.evaluation.scoring import predict_words
    from tokclf.inference.loading import load_trained

    sentence = "John  Smith works at Google, in Paris ; Zoë Saltana visited Montréal . "
    text = sentence * 12
    rec = predictor.predict([text])[0]
    words = split_words(text)[0]
    assert len(rec.tags) == len(words) > 100
    model, tokenizer, names, _ = load_trained(ner_model)
    ds = datasets.Dataset.from_dict({"tokens": [words]})
    expected = predict_words(model, tokenizer, ds, max_seq_length=32, stride=4, label_names=names,
                             decoding=predictor.decoding)[0]
    assert rec.tags == [names[i] for i in expected]
    for e in rec.entities:
        assert text[e["start"]:e["end"]] == e["text"]


def test_pre_split_input_gets_one_tag_per_word_and_matches_raw_text(predictor):
    words = ["John", "Smith", "works", "at", "Google", "in", "Paris", "."]
    pre, raw = predictor.predict([words, " ".join(words)])
    assert pre.pretokenized and not raw.pretokenized
    assert pre.words == words and pre.tags == raw.tags
    assert pre.text == " ".join(words)
    assert [(e["type"], e["start"], e["end"]) for e in pre.entities] == [(e["type"], e["start"], e["end"]) for e in raw.entities]
    assert "spans" not in pre.to_dict() and "spans" in raw.to_dict()


def test_same_first_piece_predictions_as_transformers_pipeline(ner_model):
    """On the same raw text, each word's tag and score equal the pipeline's prediction for the
    word's first subword (same split, same pieces, same logits), with argmax decoding (the
    pipeline's; the run's Viterbi decoding may change a BIO-invalid tag)."""
    predictor = Predictor(ner_model, mixed_precision=None, decoding="argmax")
    from transformers import pipeline

    text = "Peter Blackburn, of Reuters, met   Anna Lee in New York (U.S.) on Tuesday."
    pipe = pipeline("token-classification", model=str(ner_model), aggregation_strategy="none", ignore_labels=[], device="cpu")
    by_start = {t["start"]: t for t in pipe(text)}
    rec = predictor.predict([text])[0]
    for (start, _), tag, score in zip(rec.spans, rec.tags, rec.scores):
        assert by_start[start]["entity"] == tag
        assert by_start[start]["score"] == pytest.approx(score, abs=1e-4)


def test_predict_function_and_inputs(ner_model):
    recs = predict(ner_model, "John Smith works at Google .", mixed_precision=None, token_budget=64, batch_size=2)
    assert len(recs) == 1
    many = predict(ner_model, [f"Mary Jones works at Reuters in Berlin {'.' * (i % 5)}" for i in range(9)],
                   mixed_precision="fp32", token_budget=64, batch_size=2)
    assert len(many) == 9 and all(r.words[0] == "Mary" for r in many)
    gold = predict(ner_model, [PredictionInput(words=["Anna", "Lee"], gold=["B-PER", "I-PER"])], mixed_precision=None)
    assert gold[0].gold == ["B-PER", "I-PER"] and gold[0].to_dict()["gold"] == ["B-PER", "I-PER"]
    with pytest.raises(TokclfError, match="input 0 is a int; expected a text"):
        predict(ner_model, [3], mixed_precision=None)
    import tokclf

    assert tokclf.predict(ner_model, "Anna Lee .", mixed_precision=None)[0].words == ["Anna", "Lee", "."]


def test_bf16_runs(ner_model):
    rec = predict(ner_model, ["John Smith works at Google in Paris ."], mixed_precision="bf16")[0]
    assert len(rec.tags) == 8


# --- files and the command line ----------------------------------------------------------------


def test_read_inputs_formats(tmp_path):
    txt = tmp_path / "texts.txt"
    txt.write_text("first text\n\nthird  text\r\n", encoding="utf-8")
    items = read_inputs(txt)
    assert [i.text for i in items] == ["first text", "", "third  text"]
    conll = tmp_path / "conll.txt"
    conll.write_text("-DOCSTART- O\n\nJohn B-PER\nSmith I-PER\n\nParis B-LOC\n", encoding="utf-8")
    items = read_inputs(conll)
    assert [i.words for i in items] == [["John", "Smith"], ["Paris"]] and items[0].gold == ["B-PER", "I-PER"]
    words_only = tmp_path / "words.conll"
    words_only.write_text("John\nSmith\n\nParis\n", encoding="utf-8")
    assert [(i.words, i.gold) for i in read_inputs(words_only)] == [(["John", "Smith"], None), (["Paris"], None)]
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text('{"id": 7, "text": "a b"}\n"just text"\n{"tokens": ["x"], "tags": ["O"]}\n', encoding="utf-8")
    items = read_inputs(jsonl)
    assert items[0].text == "a b" and items[0].meta["id"] == 7 and items[1].text == "just text"
    assert items[2].words == ["x"] and items[2].gold == ["O"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"words": 1}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.jsonl, line 2"):
        read_inputs(bad)


def test_cli_conll_output_scores_like_evaluate(ner_model, ner_jsonl_dir, tmp_path, capsys):
    from tokclf import evaluate

    out = tmp_path / "pred.conll"
    metrics_file = tmp_path / "metrics.json"
    code = cli_main(["predict", "--model", str(ner_model), "--input", str(ner_jsonl_dir / "test.jsonl"),
                     "--output", str(out), "--metrics", str(metrics_file), "--mixed-precision", "none"])
    assert code == 0
    blocks = [b for b in out.read_text(encoding="utf-8").split("\n\n") if b.strip()]
    assert len(blocks) == 12
    assert all(len(line.split("\t")) == 3 for line in blocks[0].splitlines())
    metrics = json.loads(metrics_file.read_text())
    expected = evaluate(ner_model, str(ner_jsonl_dir), split="test")
    assert metrics["f1"] == pytest.approx(expected["f1"])
    # Re-reading the file (word, gold, pred) and scoring the last column gives the same numbers.
    again = read_inputs(out, conll_tag_column=-1)
    gold = read_inputs(out, conll_tag_column=1)
    from tokclf.inference.records import PredictionRecord

    records = [PredictionRecord(text="", words=p.words, spans=[], tags=p.gold, scores=[], entities=[], gold=g.gold)
               for p, g in zip(again, gold)]
    assert score_records(records, ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"])["f1"] == pytest.approx(expected["f1"])
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_cli_stdin_jsonl_and_table(ner_model, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("John Smith works at Google .\n\nMary Jones  lives in Tokyo .\n"))
    assert cli_main(["predict", "--model", str(ner_model), "--output-format", "jsonl", "--mixed-precision", "none"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["text"] for x in lines] == ["John Smith works at Google .", "", "Mary Jones  lives in Tokyo ."]
    assert lines[2]["spans"][2] == [12, 17]
    assert cli_main(["predict", "--model", str(ner_model), "John Smith works at Google .", "--output-format", "table"]) == 0
    assert "[1] John Smith works at Google ." in capsys.readouterr().out


def test_cli_one_text_imports_no_data_stack(ner_model):
    """`tokclf predict` on one text, as a user runs it: its features are numpy arrays and its
    entities come from tokclf's own rule, so none of datasets, pyarrow, pandas, scikit-learn or
    seqeval is imported (they cost more CPU than tagging the text). PYTHONPROFILEIMPORTTIME is
    Python's own `-X importtime`: one stderr line per module the process imports."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    tokclf = str(Path(sys.executable).parent / "tokclf")
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    proc = subprocess.run([tokclf, "predict", "--model", str(ner_model), "--mixed-precision", "none",
                           "John Smith works at Google in Paris ."], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads(proc.stdout)
    assert len(record["tags"]) == 8 and [(e["type"], *e["words"]) for e in record["entities"]] == tag_spans(record["tags"])
    imported = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    top = {name.split(".")[0] for name in imported}
    assert {"torch", "transformers", "tokenizers"} <= top  # the probe does see the process's imports
    assert not top & {"datasets", "pyarrow", "pandas", "sklearn", "seqeval"}, sorted(top & {"datasets", "pyarrow", "pandas", "sklearn", "seqeval"})


def test_cli_errors_exit_non_zero(tmp_path, capsys):
    assert cli_main(["predict", "--model", str(tmp_path / "missing"), "some text"]) == 2
    assert "error:" in capsys.readouterr().err
    assert cli_main(["predict", "--model", str(tmp_path), "--input", str(tmp_path / "nope.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err
