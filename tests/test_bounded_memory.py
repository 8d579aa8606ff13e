"""Bounded memory from ingest to training: the stages read, check, tokenize and write a split in
batches (never the whole split as Python objects), the results are the same as the in-memory path
of `tokclf train`, and scoring streams a split through the metric chunk by chunk."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from tokclf.core import arrowio
from tokclf.core.params import TokenClassificationParams
from tokclf.data import ingest, validation
from tokclf.data.ingest import load_labelled_data
from tokclf.evaluation.metrics import WordScores, compute_metrics
from tokclf.pipeline import stages, store
from tokclf.text import features as feats

from conftest import make_ner_sentences

pytestmark = pytest.mark.timeout(600)

BATCH = 64
SHARD = 100


def write_conll(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("-DOCSTART- O\n\n")
        for row in rows:
            fh.writelines(f"{w} {t}\n" for w, t in zip(row["tokens"], row["tags"]))
            fh.write("\n")


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """1,000 train sentences (a few too long for one window, one stray I- tag), 150 validation, 60 test."""
    rng = random.Random(7)
    train = make_ner_sentences(1000, 1)
    for i in rng.sample(range(1000), 5):  # long sentences: windows across a shard
        train[i] = {"tokens": train[i]["tokens"] * 6, "tags": train[i]["tags"] * 6}
    train[500] = {"tokens": ["Paris", "again"], "tags": ["I-LOC", "O"]}
    folder = tmp_path / "source"
    folder.mkdir()
    write_conll(folder / "train.txt", train)
    write_conll(folder / "valid.txt", make_ner_sentences(150, 2))
    write_conll(folder / "test.txt", make_ner_sentences(60, 3))
    return folder


def test_stages_hold_one_batch_at_a_time_and_match_the_in_memory_path(corpus, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(arrowio, "BATCH_ROWS", BATCH)
    monkeypatch.setattr(feats, "SHARD_SENTENCES", SHARD)
    converted: list[int] = []  # sentences per RawSplit -> Arrow conversion (ingest)
    real_table = ingest.to_table
    monkeypatch.setattr(ingest, "to_table", lambda raw, tags: converted.append(len(raw)) or real_table(raw, tags))
    checked: list[int] = []  # sentences per validation batch (Arrow -> Python lists)
    real_batches = validation._batches

    def batches(ds):
        for cols in real_batches(ds):
            checked.append(len(cols[0]))
            yield cols

    monkeypatch.setattr(validation, "_batches", batches)
    sharded: list[int] = []  # sentences per feature shard (tokenize)
    real_shard = feats._shard
    monkeypatch.setattr(feats, "_shard", lambda table, *a, **kw: sharded.append(table.num_rows) or real_shard(table, *a, **kw))

    params = TokenClassificationParams(
        data_path=str(corpus), model=str(tiny_model_dir), project_name=str(tmp_path / "m"), valid_split="validation",
        max_seq_length=32, stride=4, repair_bio=True,
    )
    stages.ingest(params, raw_dir=tmp_path / "raw", out_dir=tmp_path / "prepared")
    total = 1000 + 150 + 60
    # Every sentence went through a batched conversion, twice (labels, then ids), none in a batch
    # larger than BATCH: the whole split never existed as Python objects.
    assert sum(converted) == total and max(converted) <= BATCH and len(converted) >= total // BATCH
    stages.validate(params, data_dir=tmp_path / "prepared", out_dir=tmp_path / "validated",
                    report_path=tmp_path / "report.json")
    assert sum(checked) == total and max(checked) <= BATCH
    stages.tokenize(params, data_dir=tmp_path / "validated", out_dir=tmp_path / "features")
    assert sum(sharded) == total and max(sharded) <= SHARD and len(sharded) >= 1000 // SHARD

    # Same data and features as `tokclf train` builds in memory (ids, BIO repair, windows, example
    # indices across shards).
    monkeypatch.setattr(feats, "SHARD_SENTENCES", 10**6)
    report = store.load_report(tmp_path / "report.json")
    assert report.repaired == 1
    in_memory = load_labelled_data(str(corpus), valid_split="validation")
    in_memory, _ = validation.validate_data(in_memory, valid_split="validation", repair_bio=True)
    written = store.load_labelled(tmp_path / "validated")
    assert written.label_names == in_memory.label_names
    for name in ("train", "validation", "test"):
        for column in ("tokens", "tags", "line", "document"):
            assert written.splits[name][column][:] == in_memory.splits[name][column][:], (name, column)
    from transformers import AutoTokenizer

    features, meta = store.load_features(tmp_path / "features")
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    expected = feats.tokenize_split(in_memory.splits["train"], tokenizer, max_seq_length=32, stride=4,
                                    strategy=params.subword_labels, label_names=in_memory.label_names)
    assert len(features["train"]) == len(expected) > 1000  # the long sentences became several windows
    for column in ("input_ids", "labels", "word_ids", "example", "window_start", "window_end", "length"):
        assert features["train"][column][:] == expected[column][:], column
    assert meta["splits"]["train"] == {"sentences": 1000, "features": len(expected)}


def test_streamed_ingest_reports_a_tag_outside_the_label_names_at_its_line(corpus, tmp_path, monkeypatch):
    from tokclf.core.errors import DataError

    monkeypatch.setattr(arrowio, "BATCH_ROWS", BATCH)
    word = make_ner_sentences(1000, 1)[0]["tags"].index("B-LOC") + 1  # first sentence, after -DOCSTART-
    with pytest.raises(DataError, match=rf"train\.txt, line 3: tag 'B-LOC' \(word {word}\) is not one of the label names"):
        load_labelled_data(str(corpus), valid_split="validation", label_names="O,B-PER,I-PER,B-ORG,I-ORG,I-LOC",
                           sink=ingest.disk_sink(tmp_path / "parts"))


def test_scoring_streams_chunks_into_the_metric_with_the_same_scores(tiny_model_dir):
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from tokclf.evaluation.scoring import score_sentences

    data = load_labelled_data(str(_jsonl(tiny_model_dir)), train_split="train", test_split=None)
    sentences = data.splits["train"]
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    model = AutoModelForTokenClassification.from_pretrained(str(tiny_model_dir), num_labels=len(data.label_names),
                                                            ignore_mismatched_sizes=True)
    features = feats.tokenize_split(sentences, tokenizer, max_seq_length=16, stride=4, strategy="first",
                                    label_names=None, with_labels=False)
    whole = score_sentences(model, tokenizer, sentences, data.label_names, max_seq_length=16, stride=4,
                            features=features, chunk_sentences=10**6)
    for chunk in (1, 7, 25):
        assert score_sentences(model, tokenizer, sentences, data.label_names, max_seq_length=16, stride=4,
                               features=features, chunk_sentences=chunk) == whole
    assert score_sentences(model, tokenizer, sentences, data.label_names, max_seq_length=16, stride=4,
                           chunk_sentences=7) == whole
    assert whole["num_sentences"] == len(sentences)


def _jsonl(root: Path) -> Path:
    import json

    path = root.parent / "bounded-memory-train.jsonl"
    if not path.exists():
        rows = make_ner_sentences(60, 5)
        for row in rows[::9]:  # long enough for windows at max_seq_length=16
            row["tokens"], row["tags"] = row["tokens"] * 3, row["tags"] * 3
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_word_scores_over_chunks_equal_one_call():
    rng = random.Random(3)
    for names in (["O", "B-PER", "I-PER", "B-LOC", "I-LOC"], ["NOUN", "VERB", "DET"], None):
        k = len(names) if names else 4
        gold = [[rng.randrange(k) for _ in range(rng.randint(1, 9))] for _ in range(200)]
        pred = [[g if rng.random() < 0.7 else rng.randrange(k) for g in s] for s in gold]
        scores = WordScores(names)
        for lo in range(0, 200, 13):
            scores.add(gold[lo:lo + 13], pred[lo:lo + 13])
        assert scores.result() == compute_metrics(gold, pred, names)


def test_sampler_takes_a_numpy_length_column():
    from tokclf.training.sampling import ShuffledLengthGroupedSampler, length_grouped_batches

    lengths = np.random.default_rng(0).integers(3, 100, size=5000)
    batches = length_grouped_batches(lengths.tolist(), 16, generator=torch.Generator().manual_seed(4))
    sampler = ShuffledLengthGroupedSampler(lengths, 16, generator=torch.Generator().manual_seed(4))
    assert list(sampler) == [i for b in batches for i in b]


def test_train_scores_the_validation_split_once_per_evaluation(tiny_model_dir, ner_jsonl_dir, tmp_path, monkeypatch):
    """The final validation scores are the evaluation of the model training ended with (the best
    checkpoint), not a second pass over the split; test is scored once."""
    from tokclf import TokenClassificationParams, train
    from tokclf.evaluation import scoring

    calls: list[int] = []
    real = scoring.score_sentences
    monkeypatch.setattr(scoring, "score_sentences",
                        lambda model, tokenizer, sentences, *a, **kw: calls.append(len(sentences)) or real(
                            model, tokenizer, sentences, *a, **kw))
    params = TokenClassificationParams(
        data_path=str(ner_jsonl_dir), model=str(tiny_model_dir), project_name=str(tmp_path / "m"),
        valid_split="validation", epochs=2, batch_size=8, max_seq_length=32, stride=4, lr=5e-3, seed=3,
        early_stopping_patience=0,
    )
    result = train(params)
    assert calls == [12, 12, 12]  # two epoch-end evaluations of validation, then test once
    history = [e for e in result_log(result) if "eval_f1" in e]
    best = max(history, key=lambda e: e["eval_f1"])
    assert result.metrics["validation"]["f1"] == pytest.approx(best["eval_f1"])


def result_log(result) -> list[dict]:
    import json

    return json.loads((result.output_dir / "training_log.json").read_text(encoding="utf-8"))


# --- tabular sources and several sources: read in batches as CoNLL is ----------------------------------


def write_tabular(path: Path, rows: list[dict]) -> None:
    """`rows` as Parquet (small row groups, so the file has several), CSV (list literals in
    quoted cells, the spec's layout) or JSON Lines, by the suffix."""
    import csv
    import json

    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"tokens": [r["tokens"] for r in rows], "tags": [r["tags"] for r in rows]}), path,
                       row_group_size=50)
    elif path.suffix == ".csv":
        with open(path, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["tokens", "tags"])
            writer.writerows([json.dumps(r["tokens"]), json.dumps(r["tags"])] for r in rows)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _count_conversions(monkeypatch) -> list[int]:
    """Sentences per RawSplit -> Arrow conversion in ingest (what a reader handed over at once)."""
    converted: list[int] = []
    real_table = ingest.to_table
    monkeypatch.setattr(ingest, "to_table", lambda raw, tags: converted.append(len(raw)) or real_table(raw, tags))
    return converted


def _same_splits(written, expected, columns=("tokens", "tags", "line", "document")) -> None:
    assert written.label_names == expected.label_names
    assert list(written.splits) == list(expected.splits)
    for name in expected.splits:
        for column in columns:
            assert written.splits[name][column][:] == expected.splits[name][column][:], (name, column)


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl", "save_to_disk"])
def test_tabular_files_are_ingested_in_batches(suffix, tmp_path, monkeypatch):
    monkeypatch.setattr(arrowio, "BATCH_ROWS", BATCH)
    folder = tmp_path / "source"
    sizes = (("train", 1000, 1), ("validation", 150, 2), ("test", 60, 3))
    if suffix == "save_to_disk":  # a DatasetDict folder (memory-mapped Arrow)
        from datasets import Dataset, DatasetDict

        DatasetDict({split: Dataset.from_list(make_ner_sentences(n, seed)) for split, n, seed in sizes}).save_to_disk(
            str(folder))
    else:
        folder.mkdir()
        for split, n, seed in sizes:
            write_tabular(folder / f"{split}{suffix}", make_ner_sentences(n, seed))
    converted = _count_conversions(monkeypatch)
    from tokclf.data import tabular

    cells: list[str] = []  # CSV cells parsed: the label-planning pass parses only the tags cell
    real_parse = tabular.parse_list_cell
    monkeypatch.setattr(tabular, "parse_list_cell", lambda cell, **kw: cells.append(kw["column"]) or real_parse(cell, **kw))
    params = TokenClassificationParams(data_path=str(folder), project_name=str(tmp_path / "m"), valid_split="validation")
    stages.ingest(params, raw_dir=tmp_path / "raw", out_dir=tmp_path / "prepared")
    total = 1000 + 150 + 60
    if suffix == ".csv":
        assert cells.count("tags") == 2 * total and cells.count("tokens") == total
    # Every sentence went through a batched conversion, none in a batch larger than BATCH: the
    # reader handed the split over batch by batch, never whole.
    assert sum(converted) == total and max(converted) <= BATCH and len(converted) >= total // BATCH
    written = store.load_labelled(tmp_path / "prepared")
    assert written.splits["train"]["line"][:] == list(range(1, 1001))  # row / line numbers run on across batches
    converted.clear()
    _same_splits(written, load_labelled_data(str(folder), valid_split="validation"))
    assert converted == [1000, 150, 60]  # the in-memory path (tokclf train) still reads each split whole


def test_several_sources_are_written_one_after_another(tmp_path, monkeypatch):
    """data_path as a list: each source is read in batches and the merged split is written from
    the sources' Arrow batches (tags renumbered, SOURCE added), never concatenated as Python rows."""
    from tokclf.data import sources

    monkeypatch.setattr(arrowio, "BATCH_ROWS", BATCH)
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    write_tabular(a / "train.parquet", make_ner_sentences(300, 1))
    write_tabular(a / "validation.parquet", make_ner_sentences(80, 2))
    # Source b has no LOC in train and one extra label, so ids differ between the sources.
    rows = [{"tokens": r["tokens"], "tags": ["O" if t.endswith("LOC") else t for t in r["tags"]]}
            for r in make_ner_sentences(250, 3)]
    rows[7] = {"tokens": ["Acme", "rocks"], "tags": ["B-MISC", "O"]}
    write_tabular(b / "train.jsonl", rows)
    c = tmp_path / "c.csv"
    write_tabular(c, make_ner_sentences(120, 4))
    paths = [str(a), str(b), str(c)]
    converted = _count_conversions(monkeypatch)
    merged_batches: list[int] = []
    real_renumbered = sources._renumbered

    def renumbered(ds, lookup, source):
        for table in real_renumbered(ds, lookup, source):
            merged_batches.append(table.num_rows)
            yield table

    monkeypatch.setattr(sources, "_renumbered", renumbered)
    params = TokenClassificationParams(data_path=paths, project_name=str(tmp_path / "m"), valid_split="validation",
                                       test_split=None)
    stages.ingest(params, raw_dir=tmp_path / "raw", out_dir=tmp_path / "prepared")
    total = 300 + 80 + 250 + 120
    assert sum(converted) == total and max(converted) <= BATCH
    assert sum(merged_batches) == total and max(merged_batches) <= BATCH
    written = store.load_labelled(tmp_path / "prepared")
    assert not list((tmp_path / "prepared").glob("*.source-*"))  # the per-source parts were scratch
    converted.clear()
    expected = load_labelled_data(paths, valid_split="validation", test_split=None)
    _same_splits(written, expected, columns=("tokens", "tags", "line", "document", "source"))
    assert written.splits["train"]["source"][:] == [str(a)] * 300 + [str(b)] * 250 + [str(c)] * 120
    assert "B-MISC" in written.label_names and "B-LOC" in written.label_names
