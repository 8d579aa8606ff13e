"""Several data sources at once (data_path as a list) and span exports through the pipeline's
ingest stage: labels unified by name after the label map, a per-source column, counts per source in
the validation report, scores per source from `tokclf evaluate`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tokclf.core.columns import SOURCE
from tokclf.core.params import TokenClassificationParams
from tokclf.data.ingest import load_labelled_data

TEXT = "John Smith lives in New York."


@pytest.fixture()
def two_sources(tmp_path: Path) -> tuple[Path, Path]:
    ls = tmp_path / "ls.json"
    ls.write_text(json.dumps([{"id": 1, "data": {"text": TEXT}, "annotations": [{"result": [
        {"type": "labels", "value": {"start": 0, "end": 10, "text": "John Smith", "labels": ["PER"]}},
        {"type": "labels", "value": {"start": 20, "end": 28, "text": "New York", "labels": ["City"]}}]}]}]))
    conll = tmp_path / "more.conll"
    conll.write_text("Mary\tB-PER\nvisited\tO\nParis\tB-LOC\n.\tO\n\nBob\tB-PER\nleft\tO\n")
    return ls, conll


def test_sources_unified_by_name_with_source_column(two_sources):
    ls, conll = two_sources
    data = load_labelled_data([str(ls), str(conll)], test_split=None, label_map="City=LOC")
    assert data.label_names == ["O", "B-LOC", "B-PER", "I-LOC", "I-PER"]
    ds = data.splits["train"]
    assert ds[SOURCE] == [str(ls), str(conll), str(conll)]
    names = [[data.label_names[t] for t in row] for row in ds["tags"]]
    assert names[0] == ["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC", "O"] and names[1][2] == "B-LOC"
    assert data.sources["train"] == f"{ls} + {conll}"


def test_params_take_a_list_and_one_item_is_a_string(two_sources):
    ls, conll = two_sources
    p = TokenClassificationParams(data_path=[str(ls)], project_name="x")
    assert p.data_path == str(ls)
    p = TokenClassificationParams(data_path=[str(ls), str(conll)], project_name="x")
    assert p.data_path == [str(ls), str(conll)]


def test_validate_cli_counts_per_source(two_sources, tmp_path):
    ls, conll = two_sources
    report = tmp_path / "report.json"
    res = subprocess.run([sys.executable, "-m", "tokclf.cli", "validate", "--data-path", str(ls), "--data-path", str(conll),
                          "--test-split", "none", "--label-map", "City=LOC", "--output", str(report)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    train = json.loads(report.read_text())["stats"]["splits"]["train"]
    assert train["by_source"][str(ls)]["sentences"] == 1 and train["by_source"][str(conll)]["sentences"] == 2
    assert train["by_source"][str(conll)]["labels"]["B-LOC"] == 1
    assert train["spans"]["spans"] == 2 and train["spans"]["by_source"][str(ls)]["kept"] == 2


def test_ingest_stage_reads_brat_and_several_sources(two_sources, tmp_path):
    from tokclf.pipeline import stages
    from tokclf.pipeline.store import load_labelled

    ls, conll = two_sources
    brat = tmp_path / "brat"
    brat.mkdir()
    (brat / "d1.txt").write_text("Ovarian cancer is rare.")
    (brat / "d1.ann").write_text("T1\tModifier 0 14\tOvarian cancer\nN1\tReference T1 MeSH:D010051\n")
    params = TokenClassificationParams(data_path=[str(brat), str(ls), str(conll)], project_name=str(tmp_path / "m"),
                                       test_split=None, label_map="Modifier=Disease,City=LOC")
    stages.ingest(params, raw_dir=tmp_path / "raw", out_dir=tmp_path / "prepared")
    data = load_labelled(tmp_path / "prepared")
    assert "B-Disease" in data.label_names and "B-LOC" in data.label_names
    assert data.splits["train"][SOURCE] == [str(brat), str(ls), str(conll), str(conll)]
    assert data.annotations["train"]["spans"] == 3
    assert sorted(p.name for p in (tmp_path / "raw").iterdir() if p.is_dir()) == ["source-0", "source-1", "source-2"]


@pytest.mark.slow
def test_evaluate_breaks_scores_down_by_source(two_sources, tmp_path, tokenizer_dir):
    from conftest import save_tiny_bert

    ls, conll = two_sources
    model = save_tiny_bert(tokenizer_dir, tmp_path / "m", seed=0, labels=["O", "B-LOC", "B-PER", "I-LOC", "I-PER"])
    res = subprocess.run([sys.executable, "-m", "tokclf.cli", "evaluate", "--model", str(model), "--data-path", str(ls),
                          "--data-path", str(conll), "--split", "train", "--label-map", "City=LOC"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert set(out["per_source"]) == {str(ls), str(conll)}
    assert all(0 <= v["f1"] <= 1 for v in out["per_source"].values())
