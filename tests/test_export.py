"""tokclf export --format onnx [--quantize int8]: files written, onnxruntime runs them, and
`tokclf predict` on the export gives the PyTorch model's outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import save_tiny_bert  # tests/ is on sys.path

from tokclf.cli.main import main as cli_main
from tokclf.inference.predictor import Predictor

LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
TEXTS = [
    "John  Smith works at Google, in Paris.",
    "Zoë Saltana visited Montréal — and 東京 🙂 today!",
    "Peter Blackburn of Reuters . " * 15,  # longer than the 32-token window: several windows
    "",
]


@pytest.fixture(scope="module")
def bio_model(tokenizer_dir: Path, tmp_path_factory) -> Path:
    """A tiny random BERT with BIO label names and a short window (as a tokclf run saves it)."""
    out = save_tiny_bert(tokenizer_dir, tmp_path_factory.mktemp("bio-tiny"), seed=3, labels=LABELS)
    (out / "training_params.json").write_text(json.dumps({"max_seq_length": 32, "stride": 4}))
    return out


@pytest.fixture(scope="module")
def exported(bio_model, tmp_path_factory) -> tuple[Path, dict]:
    from tokclf.inference.export import export_model

    out = tmp_path_factory.mktemp("export") / "onnx"
    return out, export_model(bio_model, out, quantize="int8")


def test_export_writes_model_tokenizer_and_labels(exported):
    out, manifest = exported
    for name in ("model.onnx", "model_quantized.onnx", "labels.json", "config.json", "tokenizer.json", "tokclf_export.json"):
        assert (out / name).is_file(), name
    labels = json.loads((out / "labels.json").read_text())
    assert [labels["id2label"][str(i)] for i in range(len(LABELS))] == LABELS
    assert manifest["files"] == {"fp32": "model.onnx", "int8": "model_quantized.onnx"} and manifest["default"] == "int8"
    assert manifest["max_seq_length"] == 32 and manifest["stride"] == 4
    assert manifest["check"]["fp32"]["max_abs_diff"] < 1e-4
    assert json.loads((out / "tokclf_export.json").read_text())["inputs"][:2] == ["input_ids", "attention_mask"]
    assert (out / "model_quantized.onnx").stat().st_size < (out / "model.onnx").stat().st_size
    assert [p.name for p in out.parent.iterdir()] == ["onnx"]  # no staging folder left behind


def test_onnx_predictions_match_pytorch(bio_model, exported):
    out, _ = exported
    torch_records = Predictor(bio_model, mixed_precision=None).predict(TEXTS)
    onnx_pred = Predictor(out / "model.onnx")
    assert (onnx_pred.backend.name, onnx_pred.backend.precision) == ("onnx", "fp32")
    assert (onnx_pred.max_seq_length, onnx_pred.stride) == (32, 4)
    onnx_records = onnx_pred.predict(TEXTS)
    assert len(onnx_records) == len(torch_records) == len(TEXTS)
    assert any(r.entities for r in torch_records)  # the comparison covers entities, not only O tags
    for a, b in zip(torch_records, onnx_records, strict=True):
        assert a.words == b.words and a.tags == b.tags
        key = [(e["type"], e["text"], e["start"], e["end"], e["words"]) for e in a.entities]
        assert key == [(e["type"], e["text"], e["start"], e["end"], e["words"]) for e in b.entities]
        assert a.scores == pytest.approx(b.scores, abs=1e-4)


def test_int8_is_the_default_of_a_quantized_export(exported):
    out, _ = exported
    pred = Predictor(out)
    assert pred.backend.precision == "int8"
    records = pred.predict(TEXTS)
    assert [len(r.tags) for r in records] == [len(r.words) for r in records]
    assert len(records[2].tags) > 60


def test_cli_export_then_predict(bio_model, tmp_path, capsys):
    out = tmp_path / "exp"
    assert cli_main(["export", "--model", str(bio_model), "--output", str(out), "--format", "onnx"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["files"] == {"fp32": "model.onnx"} and summary["default"] == "fp32"
    # Exporting again over a tokclf export replaces it.
    assert cli_main(["export", "--model", str(bio_model), "--output", str(out)]) == 0
    capsys.readouterr()
    assert cli_main(["predict", "--model", str(out), "--output-format", "jsonl", "John Smith works at Google ."]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["words"] == ["John", "Smith", "works", "at", "Google", "."]


def test_export_refuses_a_foreign_folder(bio_model, tmp_path, capsys):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    assert cli_main(["export", "--model", str(bio_model), "--output", str(target)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (target / "notes.txt").read_text() == "keep me"


def _valid_iob2(tags: list[str]) -> bool:
    return all(not t.startswith("I-") or (p != "O" and p[2:] == t[2:]) for p, t in zip(["O"] + tags, tags))


def test_decoding_travels_with_the_folder_and_the_export(bio_model, tmp_path):
    """A run's `decoding` (training_params.json) is what predict uses on its folder and on its ONNX
    export (the manifest records it); --decoding overrides it."""
    import shutil

    from tokclf.inference.export import export_model

    viterbi_model = tmp_path / "viterbi-model"
    shutil.copytree(bio_model, viterbi_model)
    (viterbi_model / "training_params.json").write_text(
        json.dumps({"max_seq_length": 32, "stride": 4, "decoding": "viterbi"}))
    texts = [t for t in TEXTS if t] * 3
    legacy = Predictor(bio_model, mixed_precision=None)
    assert legacy.decoding == "argmax"  # a folder that records no decoding was scored with argmax
    argmax_tags = [r.tags for r in legacy.predict(texts)]
    # The random head gives BIO-invalid argmax sequences: the comparison is not vacuous.
    assert not all(_valid_iob2(t) for t in argmax_tags)
    viterbi = Predictor(viterbi_model, mixed_precision=None)
    assert viterbi.decoding == "viterbi" and viterbi.description["decoding"] == "viterbi"
    viterbi_tags = [r.tags for r in viterbi.predict(texts)]
    assert all(_valid_iob2(t) for t in viterbi_tags) and viterbi_tags != argmax_tags
    assert [r.tags for r in Predictor(viterbi_model, mixed_precision=None, decoding="argmax").predict(texts)] == argmax_tags

    manifest = export_model(viterbi_model, tmp_path / "onnx")
    assert manifest["decoding"] == "viterbi"
    onnx = Predictor(tmp_path / "onnx")
    assert onnx.decoding == "viterbi"
    assert [r.tags for r in onnx.predict(texts)] == viterbi_tags


def test_cli_predict_decoding_flag(bio_model, tmp_path, capsys):
    out_a, out_v = tmp_path / "a.jsonl", tmp_path / "v.jsonl"
    text = "Peter Blackburn of Reuters visited Paris and Google . " * 3
    assert cli_main(["predict", "--model", str(bio_model), "--mixed-precision", "none", "-o", str(out_a), text]) == 0
    assert cli_main(["predict", "--model", str(bio_model), "--mixed-precision", "none", "--decoding", "viterbi",
                     "-o", str(out_v), text]) == 0
    tags_a = json.loads(out_a.read_text().splitlines()[0])["tags"]
    tags_v = json.loads(out_v.read_text().splitlines()[0])["tags"]
    assert _valid_iob2(tags_v) and len(tags_a) == len(tags_v)
