"""Loading the base checkpoint for fine-tuning (tokclf.training.model_init) on tiny random BERTs: one
tokclf line when only the classifier head is new, transformers' LOAD REPORT table when more is off."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from conftest import save_tiny_bert  # tests/ is on sys.path

from tokclf.training.model_init import (
    TRANSFORMERS_LOADING_LOGGER,
    head_keys,
    load_token_classifier,
)

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
ID2LABEL = dict(enumerate(LABELS))


class Records(logging.Handler):
    """Every record transformers' loading logger lets through (its handlers see the same)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def reports(self) -> list[str]:
        return [r.getMessage() for r in self.records if "LOAD REPORT" in r.getMessage()]


@pytest.fixture
def loading(caplog):
    """(transformers' loading records, tokclf's messages) of the loads in a test, at transformers'
    default verbosity (warnings shown; an earlier test in this process may have lowered it)."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_warning()
    handler = Records()
    logger = logging.getLogger(TRANSFORMERS_LOADING_LOGGER)
    logger.addHandler(handler)
    caplog.set_level(logging.INFO, logger="tokclf")
    try:
        yield handler, lambda: [r.getMessage() for r in caplog.records if r.name == "tokclf"]
    finally:
        logger.removeHandler(handler)
        hf_logging.set_verbosity(verbosity)


def _load(path: Path):
    import torch

    return load_token_classifier(str(path), id2label=ID2LABEL, dtype=torch.float32)


@pytest.fixture(scope="module")
def base_checkpoint(tokenizer_dir, tmp_path_factory) -> Path:
    """A tiny BertModel (encoder and pooler, no head): what a pretrained base checkpoint holds."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("base")
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(str(out))
    return out


def test_base_checkpoint_one_line_no_table(base_checkpoint, loading):
    records, tokclf_messages = loading
    model = _load(base_checkpoint)
    assert head_keys(model) == {"classifier.weight", "classifier.bias"}
    assert model.config.id2label == ID2LABEL and model.classifier.out_features == len(LABELS)
    assert records.reports() == []  # pooler weights unexpected, head missing: both expected
    assert tokclf_messages() == [f"classifier head: new ({len(LABELS)} labels)"]


def test_head_of_other_size_one_line(tokenizer_dir, tmp_path, loading):
    records, tokclf_messages = loading
    path = save_tiny_bert(tokenizer_dir, tmp_path / "m", seed=0)  # a 2-label token classifier
    model = _load(path)
    assert model.classifier.out_features == len(LABELS)
    assert records.reports() == []
    assert tokclf_messages() == [f"classifier head: new ({len(LABELS)} labels; the checkpoint's had 2)"]


def test_same_labels_head_kept(tokenizer_dir, tmp_path, loading):
    import torch
    from safetensors.torch import load_file

    records, tokclf_messages = loading
    path = save_tiny_bert(tokenizer_dir, tmp_path / "m", seed=0, labels=LABELS)
    model = _load(path)
    saved = load_file(str(path / "model.safetensors"))
    assert torch.equal(model.classifier.weight, saved["classifier.weight"])
    assert records.reports() == []
    assert tokclf_messages() == [f"classifier head: loaded from the checkpoint ({len(LABELS)} labels)"]


@pytest.mark.parametrize("change", ["drop-encoder-weight", "extra-encoder-layer"])
def test_anything_else_off_lets_the_table_through(base_checkpoint, tmp_path, loading, change):
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    records, tokclf_messages = loading
    path = tmp_path / "ckpt"
    shutil.copytree(base_checkpoint, path)
    weights = load_file(str(path / "model.safetensors"))
    if change == "drop-encoder-weight":
        key = next(k for k in weights if "encoder.layer.1.output.dense.weight" in k)
        del weights[key]
    else:
        weights["encoder.layer.7.output.dense.weight"] = torch.zeros(32, 64)
    save_file(weights, str(path / "model.safetensors"), metadata={"format": "pt"})
    _load(path)
    [report] = records.reports()
    assert records.records[0].levelno == logging.WARNING
    assert ("encoder.layer.1.output.dense.weight" if change == "drop-encoder-weight" else "encoder.layer.7") in report
    assert not any(m.startswith("classifier head:") for m in tokclf_messages())


def test_problems_still_said_when_transformers_warnings_are_off(base_checkpoint, tmp_path, loading):
    """`transformers` at error verbosity (as `tokclf predict` sets it) hides the table: tokclf still
    warns about encoder weights the checkpoint lacks, naming them."""
    import shutil

    from safetensors.torch import load_file, save_file
    from transformers.utils import logging as hf_logging

    records, tokclf_messages = loading
    path = tmp_path / "ckpt"
    shutil.copytree(base_checkpoint, path)
    weights = load_file(str(path / "model.safetensors"))
    del weights[next(k for k in weights if "encoder.layer.0.attention.self.key.weight" in k)]
    save_file(weights, str(path / "model.safetensors"), metadata={"format": "pt"})
    hf_logging.set_verbosity_error()
    _load(path)
    assert records.reports() == []
    [message] = tokclf_messages()
    assert message.startswith(f"loading {path}: missing from the checkpoint: ") and "layer.0.attention.self.key.weight" in message
