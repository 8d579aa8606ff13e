"""Parameters: spec defaults, unknown keys, impossible combinations, YAML config, token secrecy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tokclf.core.errors import ParamsError
from tokclf.core.params import (
    TokenClassificationParams,
    load_config,
    params_from_mapping,
)

SPEC_DEFAULTS = {
    "model": "bert-base-uncased", "tokens_column": "tokens", "tags_column": "tags", "train_split": "train",
    "valid_split": None, "max_samples": None, "lr": 5e-5, "epochs": 3, "batch_size": 8, "max_seq_length": 128,
    "gradient_accumulation": 1, "optimizer": "adamw_torch", "scheduler": "linear",
    "weight_decay": 0.0, "max_grad_norm": 1.0, "seed": 42, "mixed_precision": None, "auto_find_batch_size": False,
    "logging_steps": -1, "eval_strategy": "epoch", "early_stopping_patience": 5, "early_stopping_threshold": 0.01,
    "push_to_hub": False, "username": None, "token": None, "save_total_limit": 1, "log": "none",
}


# Where tokclf's default departs from the spec, on the evidence of bench/accuracy.py (docs/accuracy.md).
DEPARTURES = {"warmup_ratio": (0.1, 0.0)}


def base(**kw):
    return {"data_path": "d", "project_name": "p", **kw}


def test_spec_defaults():
    p = TokenClassificationParams(**base())
    for key, value in SPEC_DEFAULTS.items():
        assert getattr(p, key) == value, key


def test_departures_from_the_spec_are_the_documented_ones():
    p = TokenClassificationParams(**base())
    accuracy_doc = (Path(__file__).resolve().parent.parent / "docs" / "accuracy.md").read_text(encoding="utf-8")
    for key, (spec, ours) in DEPARTURES.items():
        assert getattr(p, key) == ours != spec, key
        assert f"`{key}={ours:g}`" in accuracy_doc, f"docs/accuracy.md gives no evidence for the {key} default"
    assert TokenClassificationParams(**base(warmup_ratio=0.1)).warmup_ratio == 0.1  # the spec's value still works


def test_unknown_key_is_named():
    with pytest.raises(ParamsError) as exc:
        params_from_mapping(base(learning_rate=1e-4))
    assert "learning_rate: unknown parameter" in str(exc.value)


def test_required_keys_named():
    with pytest.raises(ParamsError) as exc:
        params_from_mapping({"model": "m"})
    assert "data_path: required" in str(exc.value) and "project_name: required" in str(exc.value)


@pytest.mark.parametrize(
    "kw, fragment",
    [
        ({"optimizer": "adamw_fancy"}, "optimizer"),
        ({"scheduler": "step"}, "scheduler"),
        ({"mixed_precision": "fp8"}, "mixed_precision"),
        ({"eval_strategy": "sometimes"}, "eval_strategy"),
        ({"log": "comet"}, "log"),
        ({"lr": 0}, "lr"),
        ({"epochs": 0}, "epochs"),
        ({"warmup_ratio": 1.5}, "warmup_ratio"),
        ({"length_grouping": 0}, "length_grouping"),
        ({"loss_weighting": "mean"}, "loss_weighting"),
        ({"logging_steps": 0}, "logging_steps"),
        ({"valid_split": "train"}, "valid_split and train_split"),
        ({"stride": 64, "max_seq_length": 128}, "stride=64"),
        ({"eval_strategy": "no", "early_stopping_patience": 3}, "early_stopping_patience needs evaluation"),
        ({"push_to_hub": True}, "needs username"),
        ({"valid_split": "dev", "validation_split_ratio": 0.1}, "validation_split_ratio"),
    ],
)
def test_impossible_values_rejected(kw, fragment):
    with pytest.raises(ParamsError) as exc:
        params_from_mapping(base(**kw))
    assert fragment in str(exc.value)


def test_eval_no_with_default_patience_is_fine():
    # The spec's default patience (5) must not make eval_strategy="no" unusable.
    assert params_from_mapping(base(eval_strategy="no")).eval_strategy == "no"


def test_mixed_precision_none_strings():
    for v in ("none", "None", "no", "fp32"):
        assert params_from_mapping(base(mixed_precision=v)).mixed_precision is None


def test_label_names_comma_string():
    assert params_from_mapping(base(label_names="O, B-X ,I-X")).label_names == ["O", "B-X", "I-X"]


def test_token_is_never_in_public_dict_or_repr():
    p = params_from_mapping(base(token="hf_SECRET_dummy_123", push_to_hub=True, username="me"))
    assert p.token_value() == "hf_SECRET_dummy_123"
    dumped = json.dumps(p.public_dict())
    assert "hf_SECRET" not in dumped and "token" not in p.public_dict()
    assert "hf_SECRET" not in repr(p) and "hf_SECRET" not in str(p)


def test_advanced_example_constructs():
    # The spec's "Advanced Training with All Options" parameters, verbatim.
    p = TokenClassificationParams(
        data_path="./medical_ner_data", model="microsoft/BiomedNLP-PubMedBERT-base-uncased-abstract",
        project_name="./biomedical-ner", tokens_column="tokens", tags_column="entity_tags",
        train_split="train", valid_split="validation", lr=3e-5, epochs=10, batch_size=8, max_seq_length=256,
        warmup_ratio=0.1, gradient_accumulation=2, optimizer="adamw_torch", scheduler="cosine",
        weight_decay=0.01, max_grad_norm=1.0, mixed_precision="fp16", auto_find_batch_size=False,
        eval_strategy="epoch", logging_steps=50, save_total_limit=2, early_stopping_patience=3,
        early_stopping_threshold=0.001, seed=42, push_to_hub=True, username="my-org", token="hf_xxxxx",
        log="tensorboard",
    )
    assert p.scheduler == "cosine" and p.token_value() == "hf_xxxxx"


def test_yaml_sections_flatten(tmp_path):
    cfg = tmp_path / "params.yaml"
    cfg.write_text("data:\n  data_path: d\ntrain:\n  project_name: p\n  lr: 1.0e-4\nseed: 7\n")
    p = params_from_mapping(load_config(cfg))
    assert (p.data_path, p.project_name, p.lr, p.seed) == ("d", "p", 1e-4, 7)


def test_yaml_duplicate_key_named(tmp_path):
    cfg = tmp_path / "params.yaml"
    cfg.write_text("data:\n  lr: 1\ntrain:\n  lr: 2\n")
    with pytest.raises(ParamsError) as exc:
        load_config(cfg)
    assert "'lr' is set twice" in str(exc.value) and str(cfg) in str(exc.value)


def test_yaml_syntax_error_names_line(tmp_path):
    cfg = tmp_path / "params.yaml"
    cfg.write_text("data_path: d\nlr: [1, 2\n")
    with pytest.raises(ParamsError) as exc:
        load_config(cfg)
    assert f"{cfg}, line" in str(exc.value)


def test_yaml_unknown_key_in_section(tmp_path):
    cfg = tmp_path / "params.yaml"
    cfg.write_text("data:\n  data_path: d\n  project_name: p\ntrain:\n  epoch: 3\n")
    with pytest.raises(ParamsError) as exc:
        params_from_mapping(load_config(cfg), source=str(cfg))
    assert "epoch: unknown parameter" in str(exc.value)


def test_repo_params_yaml_is_valid():
    from pathlib import Path

    p = params_from_mapping(load_config(Path(__file__).parent.parent / "params.yaml"))
    assert p.model == "sentence-transformers/all-MiniLM-L6-v2"
