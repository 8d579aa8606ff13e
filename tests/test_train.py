"""End-to-end training on a tiny random BERT: outputs, reproducibility, pipeline loading, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tokclf import TokenClassificationParams, train
from tokclf.cli.main import main as cli_main
from tokclf.core.errors import EnvironmentProblem, ValidationFailed


def tiny_params(tiny_model_dir: Path, data: Path, out: Path, **kw) -> TokenClassificationParams:
    base = dict(
        data_path=str(data), model=str(tiny_model_dir), project_name=str(out), valid_split="validation",
        lr=5e-3, epochs=2, batch_size=8, max_seq_length=32, stride=4, logging_steps=2, seed=13,
    )
    base.update(kw)
    return TokenClassificationParams(**base)


@pytest.fixture(scope="module")
def trained(tiny_model_dir, ner_jsonl_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "model"
    result = train(tiny_params(tiny_model_dir, ner_jsonl_dir, out, token=None))
    return result


def test_outputs_complete(trained):
    out = trained.output_dir
    for name in ("model.safetensors", "config.json", "tokenizer.json", "training_params.json",
                 "metrics.json", "validation_report.json", "README.md"):
        assert (out / name).is_file(), name
    assert not (out / "checkpoints").exists()
    config = json.loads((out / "config.json").read_text())
    assert set(config["id2label"].values()) == {"O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"}
    assert {int(v) for v in config["label2id"].values()} == set(range(7))
    metrics = json.loads((out / "metrics.json").read_text())
    for split in ("validation", "test"):
        m = metrics[split]
        assert m["scheme"] == "entity"
        assert set(m["per_type"]) == {"PER", "ORG", "LOC"}
        assert 0.0 <= m["f1"] <= 1.0 and m["num_sentences"] == 12
    assert metrics == trained.metrics
    # nothing left beside the output folder (staging is cleaned up)
    assert [p.name for p in out.parent.iterdir()] == ["model"]


def test_metrics_report_the_chosen_and_the_last_epoch(trained):
    """Honest early stopping: metrics.json says which evaluation the model comes from and what the
    last one scored; the chosen one is the validation score of the saved model."""
    out = trained.output_dir
    metrics = json.loads((out / "metrics.json").read_text())
    stop = metrics["early_stopping"]
    log = json.loads((out / "training_log.json").read_text())
    evals = [e for e in log if "eval_f1" in e]
    assert len(evals) == 2 and stop["last"]["validation_f1"] == evals[-1]["eval_f1"]
    assert stop["chosen"]["validation_f1"] == max(e["eval_f1"] for e in evals)
    assert stop["chosen"]["validation_f1"] == pytest.approx(metrics["validation"]["f1"])
    assert stop["chose_last"] == (stop["chosen"]["step"] == stop["last"]["step"])
    assert stop["validation_f1_gain"] == pytest.approx(stop["chosen"]["validation_f1"] - stop["last"]["validation_f1"])
    assert metrics["validation"]["decoding"] == "viterbi"
    params = json.loads((out / "training_params.json").read_text())
    assert params["decoding"] == "viterbi" and params["classifier_head"]["case"] == "new"
    # The default labels first pieces (docs/accuracy.md); only "auto" measures the data for it.
    assert params["subword_labels"] == "first"
    assert params["subword_labels_chosen"] == {"param": "first", "chosen": "first", "multi_piece_share": None}


def test_pipeline_loads_output(trained):
    from transformers import AutoTokenizer, pipeline

    text = "John Smith works at Google in Paris ."
    # Every subword piece with its label (ignore_labels=[] keeps the O ones too): the folder's
    # tokenizer, config and weights load as a stock token classifier.
    every = pipeline("token-classification", model=str(trained.output_dir), ignore_labels=[])(text)
    assert [p["word"] for p in every] == AutoTokenizer.from_pretrained(str(trained.output_dir)).tokenize(text)
    labels = {"O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"}
    assert {p["entity"] for p in every} <= labels
    assert all(0.0 < p["score"] <= 1.0 for p in every)
    grouped = pipeline("token-classification", model=str(trained.output_dir), aggregation_strategy="simple")(text)
    for e in grouped:
        assert e["entity_group"] in {"PER", "ORG", "LOC"}
        assert text[e["start"]:e["end"]].lower() == e["word"]  # the MiniLM tokenizer is uncased
    # The grouped entities are the runs of the per-piece labels (a B- or a new type starts one).
    starts = [p for i, p in enumerate(every) if p["entity"] != "O" and (
        p["entity"].startswith("B-") or i == 0 or every[i - 1]["entity"][2:] != p["entity"][2:])]
    assert [e["entity_group"] for e in grouped] == [p["entity"][2:] for p in starts]


def test_same_seed_same_metrics(trained, tiny_model_dir, ner_jsonl_dir, tmp_path):
    again = train(tiny_params(tiny_model_dir, ner_jsonl_dir, tmp_path / "again"))
    for split in ("validation", "test"):
        a, b = trained.metrics[split], again.metrics[split]
        assert (a["precision"], a["recall"], a["f1"], a["accuracy"]) == (b["precision"], b["recall"], b["f1"], b["accuracy"])
    assert trained.metrics["train"]["loss"] == again.metrics["train"]["loss"]


def test_evaluate_matches_training_metrics(trained, ner_jsonl_dir):
    from tokclf import evaluate

    m = evaluate(trained.output_dir, str(ner_jsonl_dir), split="test")
    assert m["f1"] == pytest.approx(trained.metrics["test"]["f1"])


def test_cli_evaluate_uses_the_runs_decoding_unless_told(trained, ner_jsonl_dir, tmp_path, capsys):
    out = tmp_path / "m.json"
    args = ["evaluate", "--model", str(trained.output_dir), "--data-path", str(ner_jsonl_dir), "--split", "test"]
    assert cli_main(args + ["--output", str(out)]) == 0
    assert json.loads(out.read_text())["decoding"] == "viterbi"
    assert json.loads(out.read_text())["f1"] == pytest.approx(trained.metrics["test"]["f1"])
    assert cli_main(args + ["--decoding", "argmax", "--output", str(out)]) == 0
    assert json.loads(out.read_text())["decoding"] == "argmax"
    capsys.readouterr()


def test_fp16_without_gpu_is_clear_and_writes_nothing(tiny_model_dir, ner_jsonl_dir, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: fp16 is allowed")
    with pytest.raises(EnvironmentProblem) as exc:
        train(tiny_params(tiny_model_dir, ner_jsonl_dir, tmp_path / "out", mixed_precision="fp16"))
    assert "needs a CUDA GPU" in str(exc.value) and "bf16" in str(exc.value)
    assert not (tmp_path / "out").exists()


def test_push_to_hub_offline_refused_before_training(tiny_model_dir, ner_jsonl_dir, tmp_path, monkeypatch):
    from tokclf.publishing.hub import HubError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubError) as exc:
        train(tiny_params(tiny_model_dir, ner_jsonl_dir, tmp_path / "out", push_to_hub=True, username="me",
                          token="hf_dummy_offline_123"))
    assert "offline" in str(exc.value)
    assert "hf_dummy_offline_123" not in str(exc.value)
    assert not (tmp_path / "out").exists()


def test_bad_data_stops_before_writing(tiny_model_dir, tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"tokens": ["a", "b"], "tags": ["O"]}\n{"tokens": ["c"], "tags": ["O"]}\n')
    with pytest.raises(ValidationFailed) as exc:
        train(tiny_params(tiny_model_dir, data, tmp_path / "out", valid_split=None))
    assert "bad.jsonl" in str(exc.value) and "line 1" in str(exc.value)
    assert not (tmp_path / "out").exists()


def test_cli_train_bad_data_exit_code(tiny_model_dir, tmp_path, capsys):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"tokens": ["a", "b"], "tags": ["O"]}\n')
    rc = cli_main(["train", "--model", str(tiny_model_dir), "--data-path", str(data), "--project-name", str(tmp_path / "o")])
    assert rc != 0
    assert "bad.jsonl" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_advanced_example_runs(tiny_model_dir, ner_jsonl_dir, tmp_path):
    """The spec's "Advanced Training with All Options", push_to_hub=False, on local model and data.
    fp16 needs a GPU; on a CPU the same run uses bf16 (fp16 itself is checked to fail clearly above)."""
    import shutil

    import torch

    data = tmp_path / "medical_ner_data"
    data.mkdir()
    for split in ("train", "validation"):
        rows = [json.loads(x) for x in (ner_jsonl_dir / f"{split}.jsonl").read_text().splitlines()]
        with open(data / f"{split}.jsonl", "w") as fh:
            for r in rows:
                fh.write(json.dumps({"tokens": r["tokens"], "entity_tags": r["tags"]}) + "\n")
    params = TokenClassificationParams(
        data_path=str(data), model=str(tiny_model_dir), project_name=str(tmp_path / "biomedical-ner"),
        tokens_column="tokens", tags_column="entity_tags", train_split="train", valid_split="validation",
        lr=3e-5, epochs=2, batch_size=8, max_seq_length=256, warmup_ratio=0.1, gradient_accumulation=2,
        optimizer="adamw_torch", scheduler="cosine", weight_decay=0.01, max_grad_norm=1.0,
        mixed_precision="fp16" if torch.cuda.is_available() else "bf16", auto_find_batch_size=False,
        eval_strategy="epoch", logging_steps=50, save_total_limit=2, early_stopping_patience=3,
        early_stopping_threshold=0.001, seed=42, push_to_hub=False, username="my-org", token="hf_xxxxx_dummy",
        log="tensorboard",
    )
    result = train(params)
    out = result.output_dir
    assert (out / "runs").is_dir() and any((out / "runs").rglob("events.out.tfevents*"))
    # the token is in no file the run wrote
    for path in out.rglob("*"):
        if path.is_file():
            assert b"hf_xxxxx_dummy" not in path.read_bytes(), path
    shutil.rmtree(out)


@pytest.mark.parametrize("optimizer", ["adamw_hf", "sgd", "adafactor"])
def test_optimizers_and_schedulers(tiny_model_dir, ner_jsonl_dir, tmp_path, optimizer):
    scheduler = {"adamw_hf": "polynomial", "sgd": "constant", "adafactor": "cosine"}[optimizer]
    r = train(tiny_params(tiny_model_dir, ner_jsonl_dir, tmp_path / "o", optimizer=optimizer, scheduler=scheduler,
                          epochs=1, test_split=None))
    assert "validation" in r.metrics and "test" not in r.metrics


def test_mlflow_logs_offline_to_output(tiny_model_dir, ner_jsonl_dir, tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    train(tiny_params(tiny_model_dir, ner_jsonl_dir, tmp_path / "o", log="mlflow", epochs=1, test_split=None))
    db = tmp_path / "mlflow.db"
    assert db.is_file(), "no mlflow store beside the output folder"
    client = mlflow.tracking.MlflowClient(tracking_uri=f"sqlite:///{db}")
    exp = client.get_experiment_by_name("tokclf")
    runs = client.search_runs([exp.experiment_id])
    assert runs and "eval_f1" in runs[0].data.metrics


def test_wandb_logs_offline_to_output(tiny_model_dir, ner_jsonl_dir, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    # Nothing set by the caller: tokclf itself must keep wandb offline.
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_DIR", raising=False)
    r = train(tiny_params(tiny_model_dir, ner_jsonl_dir, tmp_path / "o", log="wandb", epochs=1, test_split=None))
    assert list((r.output_dir / "wandb").glob("offline-run-*")), "no offline wandb run in OUT/wandb"


def test_training_arguments_mapping(tmp_path):
    from tokclf.training.arguments import training_arguments

    p = TokenClassificationParams(data_path="d", project_name="p", optimizer="adamw_hf", warmup_ratio=0.25,
                                  gradient_accumulation=3, scheduler="polynomial", valid_split="v")
    args = training_arguments(p, tmp_path, num_train_features=800, has_eval=True)
    assert args.optim.value.startswith("adamw_torch")
    assert args.warmup_steps == 0.25 and args.get_warmup_steps(1000) == 250
    assert args.gradient_accumulation_steps == 3 and args.lr_scheduler_type.value == "polynomial"
    assert args.metric_for_best_model == "f1" and args.load_best_model_at_end
    assert args.logging_steps == 800 // (8 * 3) // 5
    no_eval = training_arguments(p, tmp_path, num_train_features=800, has_eval=False)
    assert no_eval.eval_strategy.value == "no" and not no_eval.load_best_model_at_end


def test_spec_csv_int_tags_without_names(tiny_model_dir, tmp_path, caplog):
    """The spec's CSV example (integer tags, no names): trains, token-level metrics, says why."""
    csv = tmp_path / "train.csv"
    rows = ["tokens,tags", "\"['John', 'Smith', 'works', 'at', 'Google']\",\"[1, 1, 0, 0, 3]\"",
            "\"['Mary', 'visited', 'Paris', 'last', 'year']\",\"[1, 0, 2, 0, 0]\""] * 1
    csv.write_text("\n".join(rows * 1) + "\n")
    (tmp_path / "data").mkdir()
    for split in ("train", "validation"):
        (tmp_path / "data" / f"{split}.csv").write_text(csv.read_text())
    r = train(tiny_params(tiny_model_dir, tmp_path / "data", tmp_path / "o", epochs=1))
    m = r.metrics["validation"]
    assert m["scheme"] == "token" and "label names" in m["note"]
    config = json.loads((r.output_dir / "config.json").read_text())
    assert config["id2label"] == {"0": "LABEL_0", "1": "LABEL_1", "2": "LABEL_2", "3": "LABEL_3"}
    report = json.loads((r.output_dir / "validation_report.json").read_text())
    assert any("label names" in n for n in report["stats"]["notes"])


def test_string_tags_with_user_label_names_order(tiny_model_dir, ner_jsonl_dir, tmp_path):
    names = ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    r = train(tiny_params(tiny_model_dir, ner_jsonl_dir, tmp_path / "o", epochs=1, label_names=names, test_split=None))
    config = json.loads((r.output_dir / "config.json").read_text())
    assert [config["id2label"][str(i)] for i in range(7)] == names


def test_freeze_word_embeddings_keeps_them_and_trains_the_rest(tiny_model_dir, ner_jsonl_dir, tmp_path):
    from safetensors.torch import load_file

    r = train(tiny_params(tiny_model_dir, ner_jsonl_dir, tmp_path / "f", freeze_word_embeddings=True, epochs=1,
                          test_split=None))
    base = load_file(str(tiny_model_dir / "model.safetensors"))
    tuned = load_file(str(r.output_dir / "model.safetensors"))
    key = next(k for k in tuned if k.endswith("word_embeddings.weight"))
    assert (base[key] == tuned[key]).all()
    layer = next(k for k in tuned if k.endswith("layer.0.attention.self.query.weight"))
    assert not (base[layer] == tuned[layer]).all()
    assert json.loads((r.output_dir / "training_params.json").read_text())["freeze_word_embeddings"] is True
