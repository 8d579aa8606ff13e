"""The model card (README.md): Hub front matter equal to metrics.json, body sections, fingerprints,
widget from the user's validation data, no token. No training: real data, metrics from seqeval."""

from __future__ import annotations

import hashlib
import json

import pytest
import yaml

from tokclf.core.params import TokenClassificationParams
from tokclf.data.types import LabelledData
from tokclf.evaluation.metrics import compute_metrics
from tokclf.publishing.card import (
    card_metadata,
    data_fingerprints,
    fingerprint_split,
    is_hub_id,
    render_card,
)

DUMMY = "hf_TOKCLF" "cardDummy4Jt8Ws1Qe6Ry3Ux0"  # split: the joined token is not in this file


def _perturbed(tags: list[list[int]], every: int) -> list[list[int]]:
    """Predictions: the gold tags with every n-th word set to O (id 0), so scores are not all 1.0."""
    out, n = [], 0
    for sent in tags:
        row = []
        for t in sent:
            n += 1
            row.append(0 if n % every == 0 else t)
        out.append(row)
    return out


@pytest.fixture(scope="module")
def written(ner_jsonl_dir, tmp_path_factory):
    """write_outputs() on real data (read and validated by tokclf) and seqeval metrics."""
    from tokclf.publishing.folder import write_outputs
    from tokclf.training.run import prepare_data

    out = tmp_path_factory.mktemp("card") / "tiny-ner"
    out.mkdir()
    (out / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 512}))
    params = TokenClassificationParams(
        data_path=str(ner_jsonl_dir), model="sentence-transformers/all-MiniLM-L6-v2", project_name=str(out),
        valid_split="validation", push_to_hub=True, username="alice", token=DUMMY, max_seq_length=64, stride=8,
    )
    data, report = prepare_data(params)
    metrics = {"train": {"runtime_s": 1.0, "loss": 0.5, "epochs": 2.0, "steps": 12, "sentences": 48, "features": 48}}
    for role, every in (("validation", 7), ("test", 5)):
        tags = data.splits[role]["tags"]
        metrics[role] = {**compute_metrics(tags, _perturbed(tags, every), data.label_names), "split": role}
    write_outputs(out, params=params, data=data, report=report, metrics=metrics, model_path="/somewhere/minilm")
    return out, data, metrics


def test_front_matter_is_hub_yaml_and_equals_metrics(written, ner_jsonl_dir):
    out, _, _ = written
    text = (out / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    meta = card_metadata(text)
    assert meta == yaml.safe_load(text.split("---\n")[1])
    assert meta["library_name"] == "transformers" and meta["pipeline_tag"] == "token-classification"
    assert meta["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert "datasets" not in meta  # local data: no Hub dataset id to link
    assert {"token-classification", "tokclf", "ner"} <= set(meta["tags"])
    metrics = json.loads((out / "metrics.json").read_text())
    [entry] = meta["model-index"]
    assert entry["name"] == "tiny-ner"
    seen = set()
    for result in entry["results"]:
        assert result["task"]["type"] == "token-classification"
        split = result["dataset"]["split"]
        assert result["dataset"]["name"] == result["dataset"]["type"] == ner_jsonl_dir.name
        for m in result["metrics"]:
            assert m["value"] == metrics[split][m["type"]], (split, m)  # exact, not rounded
            seen.add((split, m["type"]))
    assert seen == {(s, k) for s in ("validation", "test") for k in ("precision", "recall", "f1", "accuracy")}
    assert 0 < metrics["validation"]["f1"] < 1  # the perturbation makes the check meaningful


def test_huggingface_hub_parses_the_card_and_its_eval_results_equal_metrics(written):
    """huggingface_hub's own parser (ModelCard, metadata errors raised) reads the README back: the
    model-index becomes EvalResults whose values are exactly metrics.json's."""
    from huggingface_hub import ModelCard

    out, _, _ = written
    card = ModelCard.load(out / "README.md", ignore_metadata_errors=False)
    metrics = json.loads((out / "metrics.json").read_text())
    results = {(r.dataset_split, r.metric_type): r.metric_value for r in card.data.eval_results}
    assert results == {(s, k): metrics[s][k] for s in ("validation", "test")
                       for k in ("precision", "recall", "f1", "accuracy")}
    assert {r.task_type for r in card.data.eval_results} == {"token-classification"}
    assert card.data.model_name == "tiny-ner" and card.data.pipeline_tag == "token-classification"
    assert card.text.startswith("\n# tiny-ner\n")
    assert str(card) == (out / "README.md").read_text(encoding="utf-8")  # parsing and writing agree


def test_template_is_package_data():
    """The card template ships in the wheel: pyproject's package-data names it."""
    from pathlib import Path

    from tokclf.publishing.card import TEMPLATE

    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

    config = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["tokclf.publishing"]
    package = Path(__import__("tokclf.publishing", fromlist=["_"]).__file__).parent
    assert TEMPLATE.is_file() and TEMPLATE in {p for pattern in patterns for p in package.glob(pattern)}


def test_warnings_listed_escaped_and_capped():
    names = ["O", "B-X", "I-X"]
    data = _tiny_data([["a", "b"]], [[1, 2]], names, source="t.jsonl")
    report = {"num_errors": 0, "num_warnings": 12, "repaired": 2,
              "warnings": [{"code": f"c{i % 3}", "split": "train", "message": f"bad | {i}\nnext"} for i in range(12)]}
    text = render_card(TokenClassificationParams(data_path="t.jsonl", project_name="p"), data, {}, report)
    assert "0 error(s), 12 warning(s), 2 tag(s) repaired" in text
    assert "Warnings by kind: `c0` 4, `c1` 4, `c2` 4." in text
    assert "- train: bad \\| 0 next\n" in text and "- train: bad \\| 9 next\n- ... and 2 more\n" in text
    assert "bad \\| 10" not in text


def test_fake_hub_accepts_the_metadata(written):
    from hubfake import _model_index_errors

    meta = card_metadata((written[0] / "README.md").read_text(encoding="utf-8"))
    assert _model_index_errors(meta["model-index"]) == []


def test_widget_is_a_validation_sentence(written, ner_jsonl_dir):
    meta = card_metadata((written[0] / "README.md").read_text(encoding="utf-8"))
    sentences = [" ".join(json.loads(line)["tokens"]) for line in (ner_jsonl_dir / "validation.jsonl").read_text().splitlines()]
    [widget] = meta["widget"]
    assert widget["text"] in sentences
    body = (written[0] / "README.md").read_text(encoding="utf-8")
    assert f'print(ner({json.dumps(widget["text"])}))' in body


def test_body_sections(written):
    out, data, metrics = written
    body = (out / "README.md").read_text(encoding="utf-8").split("\n---\n", 1)[1]
    for heading in ("## Evaluation", "### Validation (split `validation`", "### Test (split `test`", "## How to use",
                    "## Training", "## Data", "## Limitations"):
        assert heading in body, heading
    # what it tags and the label set
    assert "`LOC`, `ORG`, `PER`" in body and "0: `O`" in body
    # protocol stated
    assert "**entity level**" in body and "seqeval" in body and "default mode" in body and "**words**" in body
    # per-type rows with the metrics' values
    for role in ("validation", "test"):
        for name, row in metrics[role]["per_type"].items():
            assert f"| {name} | {row['precision']:.4f} | {row['recall']:.4f} | {row['f1']:.4f} | {row['support']} |" in body
    # usage
    assert 'pipeline("token-classification", model="alice/tiny-ner", aggregation_strategy="first")' in body
    # parameters, without the token; validation summary; limitations
    assert "| `lr` |" in body and "| `hub_private` | true |" in body
    assert "0 error(s)" in body and "validation_report.json" in body
    assert "model_max_length` (512 tokens)" in body and "Language and domain" in body
    # no local absolute paths of the trainer's machine
    assert "/somewhere" not in body and str(out.parent) not in body


def test_fingerprints_match_the_files(written, ner_jsonl_dir):
    out, data, _ = written
    body = (out / "README.md").read_text(encoding="utf-8")
    saved = json.loads((out / "training_params.json").read_text())["data"]
    for split in ("train", "validation", "test"):
        rows = [json.loads(line) for line in (ner_jsonl_dir / f"{split}.jsonl").read_text().splitlines()]
        expected = hashlib.sha256(b"".join(
            json.dumps({"tokens": r["tokens"], "tags": r["tags"]}, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
            for r in rows
        )).hexdigest()
        words = sum(len(r["tokens"]) for r in rows)
        assert saved[split]["sha256"] == expected
        assert f"| {split} | {split} | {split}.jsonl | {len(rows)} | {words} | `{expected}` |" in body


def test_token_never_in_outputs(written):
    out, _, _ = written
    for path in out.rglob("*"):
        if path.is_file():
            assert DUMMY.encode() not in path.read_bytes(), path


def _tiny_data(tokens, tags, names, source="hub:someone/pos-data"):
    from datasets import Dataset

    ds = Dataset.from_dict({"tokens": tokens, "tags": tags, "line": list(range(1, len(tokens) + 1)),
                            "document": [0] * len(tokens)})
    return LabelledData(splits={"train": ds, "validation": ds}, label_names=names,
                        sources={"train": source, "validation": source}, units={"train": "row", "validation": "row"},
                        label_origin="strings")


def test_pos_card_hub_dataset_local_base_model(tmp_path):
    names = ["DET", "NOUN", "VERB"]
    tokens, tags = [["the", "cat", "sat"], ["a", "dog", "ran"]], [[0, 1, 2], [0, 1, 2]]
    data = _tiny_data(tokens, tags, names)
    metrics = {"validation": {**compute_metrics(tags, [[0, 1, 1], [0, 1, 2]], names), "split": "validation"}}
    params = TokenClassificationParams(data_path="someone/pos-data", model=str(tmp_path), project_name="pos-model",
                                       valid_split="validation", token=DUMMY)
    text = render_card(params, data, metrics)
    meta = card_metadata(text)
    assert meta["datasets"] == ["someone/pos-data"]
    assert "base_model" not in meta  # a local checkpoint is not a Hub id
    assert "ner" not in meta["tags"]
    [entry] = meta["model-index"]
    assert entry["results"][0]["dataset"] == {"name": "someone/pos-data", "type": "someone/pos-data", "split": "validation"}
    assert "**per tag**" in text and "**tags**" in text
    assert meta["widget"] == [{"text": "the cat sat"}]
    assert DUMMY not in text


def test_card_without_scores_says_so():
    data = _tiny_data([["a"]], [[0]], ["O", "B-X", "I-X"], source="train.jsonl")
    params = TokenClassificationParams(data_path="d.jsonl", project_name="p")
    text = render_card(params, data, {"train": {"loss": 1.0}})
    meta = card_metadata(text)
    assert "model-index" not in meta and meta["pipeline_tag"] == "token-classification"
    assert "no reported scores" in text


def test_fingerprint_is_format_independent():
    a = _tiny_data([["x", "y"]], [[1, 0]], ["O", "B-X"])
    b = _tiny_data([["x", "y"]], [[0, 1]], ["B-X", "O"])  # other ids, same names
    assert fingerprint_split(a.splits["train"], a.label_names) == fingerprint_split(b.splits["train"], b.label_names)
    c = _tiny_data([["x", "z"]], [[1, 0]], ["O", "B-X"])
    assert data_fingerprints(a)["train"]["sha256"] != data_fingerprints(c)["train"]["sha256"]
    assert data_fingerprints(a)["train"]["tokens"] == 2


@pytest.mark.parametrize(("name", "expected"), [
    ("bert-base-uncased", True), ("sentence-transformers/all-MiniLM-L6-v2", True), ("./model", False),
    ("/abs/model", False), ("package://x/y", False), ("data.jsonl", False),
])
def test_is_hub_id(name, expected):
    assert is_hub_id(name) is expected


@pytest.mark.parametrize("subword_labels, recorded, expected", [
    ("all", None, "simple"), ("first", None, "first"), ("auto", "all", "simple"), ("auto", "first", "first"),
    ("auto", None, "first")])
def test_card_example_aggregates_as_the_model_was_trained(tmp_path, subword_labels, recorded, expected):
    """Continuation pieces of a first-piece model are untrained: its card shows "first" (the word
    labels tokclf scored); a model trained on every piece shows "simple" (whole words from pieces)."""
    from tokclf.publishing.card import pipeline_aggregation

    if recorded:
        (tmp_path / "training_params.json").write_text(json.dumps({"subword_labels_chosen": {"chosen": recorded}}))
    params = TokenClassificationParams(data_path="d", project_name="p", subword_labels=subword_labels)
    assert pipeline_aggregation(params, tmp_path) == expected
