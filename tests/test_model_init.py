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


# --- warm starts: a checkpoint with a token-classification head, mapped by label name ----------

def _head(model):
    return model.classifier.weight.detach().clone(), model.classifier.bias.detach().clone()


def _warm(tokenizer_dir, tmp_path, old, new):
    import torch

    from tokclf.training.model_init import load_for_labels

    base = save_tiny_bert(tokenizer_dir, tmp_path / "ner-base", seed=5, labels=old)
    from transformers import AutoModelForTokenClassification

    reference = AutoModelForTokenClassification.from_pretrained(str(base))
    with torch.no_grad():  # a recognisable bias per old label
        reference.classifier.bias.copy_(torch.arange(len(old), dtype=torch.float32) + 1)
    reference.save_pretrained(str(base))
    weight, bias = _head(reference)
    model, choice = load_for_labels(str(base), id2label=dict(enumerate(new)), dtype=torch.float32)
    return model, choice, {n: (weight[i], bias[i]) for i, n in enumerate(old)}


def test_warm_start_same_set_other_order_reorders_rows(tokenizer_dir, tmp_path, loading):
    _, messages = loading
    old = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    new = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    model, choice, rows = _warm(tokenizer_dir, tmp_path, old, new)
    assert choice.case == "reordered" and set(choice.kept) == set(new)
    weight, bias = _head(model)
    for j, name in enumerate(new):
        assert bias[j].item() == rows[name][1].item()
        assert (weight[j] == rows[name][0]).all()
    assert model.config.id2label == dict(enumerate(new))
    assert [m for m in messages() if m.startswith("classifier head")] == [
        "classifier head: loaded from the checkpoint, rows reordered to this data's label order (5 labels)"]


def test_warm_start_overlap_keeps_shared_rows_and_initialises_new(tokenizer_dir, tmp_path, loading):
    _, messages = loading
    old = ["O", "B-PER", "I-PER", "B-MISC", "I-MISC"]
    new = ["O", "B-PER", "I-PER", "B-DIS", "I-DIS", "B-CHEM", "I-CHEM"]
    model, choice, rows = _warm(tokenizer_dir, tmp_path, old, new)
    assert choice.case == "overlap"
    assert choice.kept == ("O", "B-PER", "I-PER") and choice.new == ("B-DIS", "I-DIS", "B-CHEM", "I-CHEM")
    assert choice.dropped == ("B-MISC", "I-MISC")
    weight, bias = _head(model)
    assert weight.shape[0] == 7 and model.num_labels == 7 and model.config.num_labels == 7
    for j, name in enumerate(new):
        if name in rows:
            assert (weight[j] == rows[name][0]).all() and bias[j].item() == rows[name][1].item()
        else:
            assert bias[j].item() == 0.0  # initialised as transformers initialises a head
            assert not any((weight[j] == w).all() for w, _ in rows.values())
    line = next(m for m in messages() if m.startswith("classifier head"))
    assert line.startswith("classifier head: 3 of 7 labels' rows kept from the checkpoint, 4 new")
    # The model trains and predicts with the new size (loss reshapes with num_labels).
    import torch

    out = model(input_ids=torch.tensor([[101, 2000, 102]]), labels=torch.tensor([[-100, 6, -100]]))
    assert out.logits.shape[-1] == 7 and torch.isfinite(out.loss)


def test_warm_start_disjoint_same_size_gets_a_new_head(tokenizer_dir, tmp_path, loading):
    # transformers alone would keep these rows under new names (the sizes match).
    _, messages = loading
    old = ["O", "B-PER", "I-PER"]
    new = ["B-NP", "I-NP", "B-VP"]
    model, choice, rows = _warm(tokenizer_dir, tmp_path, old, new)
    assert choice.case == "new" and choice.dropped == tuple(old)
    weight, bias = _head(model)
    assert (bias == 0).all()
    assert not any((weight[j] == rows[n][0]).all() for j in range(3) for n in old)
    assert "classifier head: new (3 labels; none shared with the checkpoint's 3)" in messages()


def test_warm_start_same_labels_same_order_loads_the_head(tokenizer_dir, tmp_path):
    old = ["O", "B-PER", "I-PER"]
    model, choice, rows = _warm(tokenizer_dir, tmp_path, old, list(old))
    assert choice.case == "same"
    weight, bias = _head(model)
    assert [bias[j].item() for j in range(3)] == [rows[n][1].item() for n in old]


def test_warm_start_case_recorded_in_training_params(tokenizer_dir, ner_jsonl_dir, tmp_path):
    import json

    from tokclf import TokenClassificationParams, train

    base = save_tiny_bert(tokenizer_dir, tmp_path / "ner-base", seed=5,
                          labels=["O", "B-LOC", "I-LOC", "B-PER", "I-PER", "B-MISC", "I-MISC"])
    result = train(TokenClassificationParams(
        data_path=str(ner_jsonl_dir), model=str(base), project_name=str(tmp_path / "out"), valid_split="validation",
        epochs=1, batch_size=8, max_seq_length=32, stride=4, seed=13,
    ))
    saved = json.loads((result.output_dir / "training_params.json").read_text())
    assert saved["classifier_head"]["case"] == "overlap"
    assert set(saved["classifier_head"]["new"]) == {"B-ORG", "I-ORG"}
    assert saved["classifier_head"]["dropped"] == ["B-MISC", "I-MISC"]
    assert saved["decoding"] == "viterbi"
