"""Document context (FLERT; issue 13 item 4): documents in the canonical records (CoNLL -DOCSTART-,
document_column, span exports cut into sentences), neighbouring pieces around each sentence with
label -100, within max_seq_length, and the same through training, evaluate and predict."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tokclf.core.columns import DOCUMENT, SENTENCE, TAGS, TOKENS
from tokclf.text.alignment import IGNORE


def _split(rows: list[tuple[list[str], list[int], int, int]]):
    """A normalised split from (words, tags, document, sentence place) rows."""
    from datasets import Dataset

    return Dataset.from_dict({TOKENS: [r[0] for r in rows], TAGS: [r[1] for r in rows],
                              DOCUMENT: [r[2] for r in rows], SENTENCE: [r[3] for r in rows]})


def _doc_rows() -> list[tuple[list[str], list[int], int, int]]:
    # Two documents of three sentences, then a sentence with no document.
    words = [["John", "Smith", "arrived", "."], ["He", "met", "Mary", "Jones", "."], ["They", "left", "Paris", "."],
             ["Reuters", "reported", "."], ["Berlin", "was", "calm", "."], ["Nothing", "else", "."],
             ["Alone", "here", "."]]
    tags = [[1, 2, 0, 0], [0, 0, 1, 2, 0], [0, 0, 1, 0], [1, 0, 0], [1, 0, 0, 0], [0, 0, 0], [0, 0, 0]]
    places = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (2, -1)]
    return [(w, t, d, s) for w, t, (d, s) in zip(words, tags, places)]


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir):
    from tokclf.text.tokenizer import load_tokenizer

    return load_tokenizer(str(tokenizer_dir))


def _features(tokenizer, rows, **kwargs):
    from tokclf.text.features import tokenize_split

    opts = dict(max_seq_length=64, stride=8, strategy="first", label_names=["O", "B-PER", "I-PER"])
    return tokenize_split(_split(rows), tokenizer, **(opts | kwargs))


def _pieces(tokenizer, words):
    return tokenizer(words, is_split_into_words=True, add_special_tokens=False)["input_ids"]


def test_context_pieces_get_label_ignore_and_the_sentence_keeps_its_labels(tokenizer):
    rows = _doc_rows()
    plain = _features(tokenizer, rows)
    ctx = _features(tokenizer, rows, document_context=6)
    assert len(plain) == len(ctx) == len(rows)
    for a, b in zip(plain, ctx):
        sentence = [k for k, w in enumerate(b["word_ids"]) if w >= 0]
        context = [k for k, w in enumerate(b["word_ids"]) if w < 0][1:-1]  # without [CLS] and [SEP]
        assert all(b["labels"][k] == IGNORE for k in context)
        # The sentence's pieces, word ids and labels are those of the sentence alone.
        assert [b["input_ids"][k] for k in sentence] == a["input_ids"][1:-1]
        assert [b["labels"][k] for k in sentence] == a["labels"][1:-1]
        assert [b["word_ids"][k] for k in sentence] == a["word_ids"][1:-1]
        assert b["length"] == len(b["input_ids"]) <= 64
    # The middle sentence of document 0 sees the end of sentence 0 on its left and the start of 2 on its right.
    middle = ctx[1]
    first_word = middle["word_ids"].index(0)
    assert middle["input_ids"][1:first_word] == _pieces(tokenizer, rows[0][0])[-6:]
    last_piece = max(k for k, w in enumerate(middle["word_ids"]) if w >= 0)
    assert middle["input_ids"][last_piece + 1:-1] == _pieces(tokenizer, rows[2][0])[:6]


def test_sentences_at_a_document_edge_get_one_sided_context_and_lone_sentences_none(tokenizer):
    rows = _doc_rows()
    ctx = _features(tokenizer, rows, document_context=6)
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    start, end, alone = ctx[3], ctx[2], ctx[6]  # first of document 1, last of document 0, no document
    assert start["word_ids"][1] == 0 and start["input_ids"][0] == cls  # nothing on the left
    assert start["input_ids"][-7:-1] == _pieces(tokenizer, rows[4][0] + rows[5][0])[:6]
    assert end["word_ids"][-2] >= 0 and end["input_ids"][-1] == sep  # nothing on the right
    assert end["input_ids"][1:end["word_ids"].index(0)] == _pieces(tokenizer, rows[0][0] + rows[1][0])[-6:]
    # Document 0's last sentence never borrows document 1's text; the lone sentence gets none.
    assert alone["input_ids"] == [cls] + _pieces(tokenizer, rows[6][0]) + [sep]


def test_max_seq_length_shrinks_the_context_never_the_sentence(tokenizer):
    rows = _doc_rows()
    sentence = len(_pieces(tokenizer, rows[1][0])) + 2
    for limit in (sentence, sentence + 1, sentence + 3):
        row = _features(tokenizer, rows, document_context=50, max_seq_length=limit, stride=2)[1]
        assert len(row["input_ids"]) == limit
        assert sorted({w for w in row["word_ids"] if w >= 0}) == list(range(len(rows[1][0])))
    # Room shared between the sides: 3 extra pieces -> one side gets 1, the other 2.
    row = _features(tokenizer, rows, document_context=50, max_seq_length=sentence + 3, stride=2)[1]
    first = row["word_ids"].index(0)
    assert (first - 1, len(row["input_ids"]) - 1 - (max(k for k, w in enumerate(row["word_ids"]) if w >= 0) + 1)) == (1, 2)


def test_context_only_joins_consecutive_places_and_crosses_shards(tokenizer):
    from datasets import concatenate_datasets

    from tokclf.text.features import feature_shards

    rows = _doc_rows()
    # Shuffled places (a carved split): row 1 is not sentence 0's successor, so no context joins them.
    shuffled = [rows[0], rows[2], rows[1]]
    ctx = _features(tokenizer, shuffled, document_context=6)
    assert ctx[0]["input_ids"] == [tokenizer.cls_token_id] + _pieces(tokenizer, rows[0][0]) + [tokenizer.sep_token_id]
    # Shards of 2 sentences give the same features as one shard: neighbours are read across shards.
    whole = _features(tokenizer, rows, document_context=6)
    import datasets
    import pyarrow as pa

    opts = dict(max_seq_length=64, stride=8, strategy="first", label_names=["O", "B-PER", "I-PER"], document_context=6)
    sharded = datasets.Dataset(pa.concat_tables(list(feature_shards(_split(rows), tokenizer, shard_sentences=2, **opts))))
    assert sharded["input_ids"] == whole["input_ids"] and sharded["labels"] == whole["labels"]
    assert concatenate_datasets([sharded]).num_rows == len(rows)


def test_documents_from_conll_docstart(tmp_path):
    from tokclf.data.ingest import load_labelled_data

    data = load_labelled_data(str(Path(__file__).parent / "fixtures" / "conll_docs.txt"), test_split=None)
    ds = data.splits["train"]
    assert ds[DOCUMENT][:] == [0, 0, 1, 2]
    assert ds[SENTENCE][:] == [0, 1, 0, 0]
    # Sentences before any -DOCSTART- have no known document.
    (tmp_path / "plain.txt").write_text("A O\n\nB O\n\n-DOCSTART- O\n\nC O\n\nD O\n", encoding="utf-8")
    ds = load_labelled_data(str(tmp_path / "plain.txt"), test_split=None).splits["train"]
    assert ds[SENTENCE][:] == [-1, -1, 0, 1]


def test_documents_from_a_document_column_csv(tmp_path):
    from tokclf.core.errors import DataError
    from tokclf.data.ingest import load_labelled_data

    csv = tmp_path / "train.csv"
    csv.write_text('tokens,tags,doc\n"[\'a\']","[\'O\']",x\n"[\'b\']","[\'O\']",y\n"[\'c\']","[\'O\']",x\n'
                   '"[\'d\']","[\'O\']",\n', encoding="utf-8")
    data = load_labelled_data(str(csv), test_split=None, document_column="doc")
    ds = data.splits["train"]
    # x's rows are grouped (row order kept within the document); the empty cell stands alone.
    assert ds[TOKENS][:] == [["a"], ["c"], ["b"], ["d"]]
    assert ds["line"][:] == [1, 3, 2, 4]
    assert ds[DOCUMENT][:] == [0, 0, 1, 2] and ds[SENTENCE][:] == [0, 1, 0, -1]
    assert any("grouped by document" in n for n in data.notes)
    # Without document_column, every row stands alone.
    assert load_labelled_data(str(csv), test_split=None).splits["train"][SENTENCE][:] == [-1] * 4
    with pytest.raises(DataError, match="'document'.*not found") as err:
        load_labelled_data(str(csv), test_split=None, document_column="document")
    assert "document ids" in str(err.value)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_document_column_through_the_streaming_ingest(tmp_path, suffix):
    """The pipeline's ingest reads tabular files in batches; with document_column the file comes
    as one batch, so a document's rows are grouped even when they are batches apart."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from tokclf.data.ingest import disk_sink, load_labelled_data

    rows = [(["a"], ["O"], "x"), (["b"], ["O"], "y"), (["c"], ["O"], "x"), (["d"], ["O"], "y")]
    path = tmp_path / f"train{suffix}"
    if suffix == ".csv":
        path.write_text("tokens,tags,doc\n" + "".join(f'"{t}","{g}",{d}\n' for t, g, d in rows), encoding="utf-8")
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps({"tokens": t, "tags": g, "doc": d}) + "\n" for t, g, d in rows),
                        encoding="utf-8")
    else:
        pq.write_table(pa.table({"tokens": [r[0] for r in rows], "tags": [r[1] for r in rows],
                                 "doc": [r[2] for r in rows]}), path)
    out = tmp_path / "prepared"
    out.mkdir()
    data = load_labelled_data(str(path), test_split=None, document_column="doc", sink=disk_sink(out),
                              batch_sentences=1)
    ds = data.splits["train"]
    assert ds[TOKENS][:] == [["a"], ["c"], ["b"], ["d"]]
    assert ds[DOCUMENT][:] == [0, 0, 1, 1] and ds[SENTENCE][:] == [0, 1, 0, 1]


def test_documents_from_brat_standoff_sentences(tmp_path):
    from tokclf.data.ingest import load_labelled_data

    folder = tmp_path / "brat"
    folder.mkdir()
    (folder / "a.txt").write_text("Colon cancer is common. It spreads. Screening helps.", encoding="utf-8")
    (folder / "a.ann").write_text("T1\tDisease 0 12\tColon cancer\n", encoding="utf-8")
    (folder / "b.txt").write_text("Asthma is chronic. Inhalers help.", encoding="utf-8")
    (folder / "b.ann").write_text("T1\tDisease 0 6\tAsthma\n", encoding="utf-8")
    ds = load_labelled_data(str(folder), test_split=None).splits["train"]
    assert len(ds) == 5
    assert ds[SENTENCE][:] == [0, 1, 2, 0, 1]
    assert len(set(ds[DOCUMENT][:3])) == 1 and ds[DOCUMENT][3] != ds[DOCUMENT][0]


def test_carved_validation_of_documented_data_keeps_source_order():
    from tokclf.data.ingest import load_labelled_data

    conll = Path(__file__).parent / "fixtures" / "conll_docs.txt"
    data = load_labelled_data(str(conll), test_split=None, validation_split_ratio=0.5, seed=3)
    for name in ("train", "validation"):
        lines = data.splits[name]["line"][:]
        assert lines == sorted(lines)


def _model(tokenizer_dir: Path, out: Path, context: int) -> Path:
    from conftest import save_tiny_bert

    folder = save_tiny_bert(tokenizer_dir, out, seed=0, labels=["O", "B-PER", "I-PER"])
    (folder / "training_params.json").write_text(json.dumps({"document_context": context, "max_seq_length": 64,
                                                             "stride": 8}), encoding="utf-8")
    return folder


def test_predictions_with_document_context_have_one_tag_per_word(tmp_path, tokenizer_dir):
    from tokclf.evaluation.scoring import predict_words
    from tokclf.inference.loading import load_trained
    from tokclf.inference.predictor import Predictor

    folder = _model(tokenizer_dir, tmp_path / "m", 6)
    rows = _doc_rows()
    model, tokenizer, names, saved = load_trained(folder)
    pred = predict_words(model, tokenizer, _split(rows), max_seq_length=64, stride=8, label_names=names,
                         document_context=6)
    assert [len(p) for p in pred] == [len(r[0]) for r in rows]
    predictor = Predictor(str(folder), mixed_precision=None)
    assert predictor.document_context == 6 and predictor.description["document_context"] == 6
    records = predictor.predict(Path(__file__).parent / "fixtures" / "conll_docs.txt")
    assert [len(r.tags) for r in records] == [len(r.words) for r in records] == [2, 2, 2, 2]
    # The context changes the input, so the model's word probabilities differ from sentence-alone ones.
    alone = Predictor(str(folder), mixed_precision=None, document_context=0)
    base = alone.predict(Path(__file__).parent / "fixtures" / "conll_docs.txt")
    assert [r.scores for r in records[:2]] != [r.scores for r in base[:2]]
    assert records[3].scores == pytest.approx(base[3].scores, abs=1e-4)  # a document of one sentence


def test_predict_on_a_document_returns_per_sentence_records(tmp_path, tokenizer_dir):
    from tokclf.inference.predictor import Predictor
    from tokclf.text.words import split_words

    folder = _model(tokenizer_dir, tmp_path / "m", 6)
    text = "John Smith arrived in Paris. He met Mary there.\nThey left on Monday."
    sentences = Predictor(str(folder), mixed_precision=None).predict_document(text)
    assert [s.text for s in sentences] == ["John Smith arrived in Paris.", "He met Mary there.", "They left on Monday."]
    for k, s in enumerate(sentences):
        assert s.words == split_words(s.text)[0] and len(s.tags) == len(s.words)
        assert s.meta["sentence"] == k and text[s.meta["start"]:].startswith(s.text)
    # The CLI: --document reads the file whole and writes one JSONL line per sentence.
    (tmp_path / "doc.txt").write_text(text, encoding="utf-8")
    res = subprocess.run([sys.executable, "-m", "tokclf.cli", "predict", "--model", str(folder), "--document",
                          "--input", str(tmp_path / "doc.txt"), "-o", str(tmp_path / "out.jsonl")],
                         capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    lines = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [x["text"] for x in lines] == [s.text for s in sentences]
    assert [x["tags"] for x in lines] == [s.tags for s in sentences]


def _conll_documents(folder: Path) -> Path:
    from conftest import make_ner_sentences

    folder.mkdir()
    for split, n, seed in (("train", 32, 1), ("valid", 8, 2), ("test", 8, 3)):
        lines = []
        for k, row in enumerate(make_ner_sentences(n, seed)):
            if k % 4 == 0:
                lines += ["-DOCSTART- O", ""]
            lines += [f"{w} {t}" for w, t in zip(row["tokens"], row["tags"])] + [""]
        (folder / f"{split}.txt").write_text("\n".join(lines), encoding="utf-8")
    return folder


@pytest.mark.slow
def test_train_evaluate_and_predict_with_document_context(tmp_path, tiny_model_dir):
    """`tokclf train` with document_context records it in training_params.json; `tokclf evaluate`
    and `tokclf predict` of the folder use it (word-level scores, one tag per word)."""
    data = _conll_documents(tmp_path / "data")
    out = tmp_path / "model"
    train = subprocess.run(
        [sys.executable, "-m", "tokclf.cli", "train", "--model", str(tiny_model_dir), "--data-path", str(data),
         "--project-name", str(out), "--valid-split", "valid", "--epochs", "1", "--batch-size", "8", "--lr", "5e-3",
         "--max-seq-length", "48", "--stride", "4", "--document-context", "8", "--log", "none"],
        capture_output=True, text=True, cwd=tmp_path)
    assert train.returncode == 0, train.stderr[-3000:]
    saved = json.loads((out / "training_params.json").read_text())
    assert saved["document_context"] == 8
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["test"]["f1"] <= 1
    evaluate = subprocess.run([sys.executable, "-m", "tokclf.cli", "evaluate", "--model", str(out), "--data-path",
                               str(data), "--split", "test"], capture_output=True, text=True, cwd=tmp_path)
    assert evaluate.returncode == 0, evaluate.stderr[-3000:]
    # The same model and data scored the same way as at the end of training (same context, same decoding).
    assert json.loads(evaluate.stdout)["f1"] == pytest.approx(metrics["test"]["f1"], abs=1e-9)
    predict = subprocess.run([sys.executable, "-m", "tokclf.cli", "predict", "--model", str(out), "--input",
                              str(data / "test.txt"), "-o", str(tmp_path / "pred.jsonl")],
                             capture_output=True, text=True, cwd=tmp_path)
    assert predict.returncode == 0, predict.stderr[-3000:]
    records = [json.loads(x) for x in (tmp_path / "pred.jsonl").read_text().splitlines()]
    assert len(records) == 8 and all(len(r["tags"]) == len(r["words"]) for r in records)


def test_document_context_travels_with_the_onnx_export(tmp_path, tokenizer_dir):
    pytest.importorskip("onnxruntime")
    from tokclf.inference.export import export_model
    from tokclf.inference.predictor import Predictor

    folder = _model(tokenizer_dir, tmp_path / "m", 6)
    manifest = export_model(folder, tmp_path / "onnx")
    assert manifest["document_context"] == 6
    onnx = Predictor(tmp_path / "onnx")
    assert onnx.document_context == 6
    conll = Path(__file__).parent / "fixtures" / "conll_docs.txt"
    torch_records = Predictor(str(folder), mixed_precision=None).predict(conll)
    onnx_records = onnx.predict(conll)
    assert [r.tags for r in onnx_records] == [r.tags for r in torch_records]
    for a, b in zip(onnx_records, torch_records):
        assert a.scores == pytest.approx(b.scores, abs=1e-3)
