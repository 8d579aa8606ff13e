"""Integration: the real all-MiniLM-L6-v2 on small subsets of CoNLL-2003 (NER) and UD EWT (POS)."""

from __future__ import annotations

import json

import pytest
from conftest import shared_data

from tokclf import TokenClassificationParams, evaluate, train
from tokclf.cli.main import main as cli_main

# Each test trains MiniLM on real data (a minute or two on 2 cores).
pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def conll_model(tmp_path_factory):
    data = shared_data("conll2003")
    out = tmp_path_factory.mktemp("conll") / "minilm-conll"
    params = TokenClassificationParams(
        data_path=str(data), model="sentence-transformers/all-MiniLM-L6-v2", project_name=str(out),
        valid_split="validation", max_samples=600, epochs=1, lr=2e-4, batch_size=16, max_seq_length=64,
        stride=16, mixed_precision="bf16", seed=42,
    )
    return data, train(params)


def test_conll_subset_learns_entities(conll_model):
    _, result = conll_model
    test = result.metrics["test"]
    assert test["scheme"] == "entity"
    assert set(test["per_type"]) == {"PER", "ORG", "LOC", "MISC"}
    # 600 sentences, one epoch: far from converged, but far above chance (an untrained head is ~0).
    assert test["f1"] > 0.3, test
    assert result.metrics["validation"]["num_sentences"] == 600
    report = json.loads((result.output_dir / "validation_report.json").read_text())
    assert "splits" in report["stats"]


def test_conll_pipeline_reload(conll_model):
    from transformers import pipeline

    _, result = conll_model
    ner = pipeline("token-classification", model=str(result.output_dir), aggregation_strategy="simple")
    entities = ner("Peter Blackburn visited the European Commission in Brussels on Monday .")
    assert entities and all(e["entity_group"] in {"PER", "ORG", "LOC", "MISC"} for e in entities)
    for e in entities:
        assert 0 <= e["start"] < e["end"] and 0.0 <= float(e["score"]) <= 1.0


def test_cli_evaluate_on_test_split(conll_model, tmp_path, capsys):
    data, result = conll_model
    out = tmp_path / "m.json"
    rc = cli_main(["evaluate", "--model", str(result.output_dir), "--data-path", str(data), "--split", "test",
                   "--max-samples", "600", "--output", str(out)])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads(out.read_text())
    assert printed["f1"] == pytest.approx(saved["f1"])
    # the same split and model, scored twice (training run vs evaluate command), agree
    assert saved["f1"] == pytest.approx(result.metrics["test"]["f1"], abs=0.02)


def test_ud_ewt_upos(tmp_path):
    data = shared_data("ud_english_ewt")
    params = TokenClassificationParams(
        data_path=str(data), model="sentence-transformers/all-MiniLM-L6-v2", project_name=str(tmp_path / "pos"),
        train_split="dev", valid_split=None, test_split="test", max_samples=400, epochs=1, lr=3e-4,
        batch_size=16, max_seq_length=64, stride=16, mixed_precision="bf16", conllu_tag="upos",
    )
    result = train(params)
    test = result.metrics["test"]
    assert test["scheme"] == "token"
    assert test["accuracy"] > 0.5, test
    assert "NOUN" in test["per_type"] and "VERB" in test["per_type"]
    m = evaluate(result.output_dir, str(data), split="test", max_samples=400)
    assert m["accuracy"] == pytest.approx(test["accuracy"], abs=0.01)
