"""Training loss under length-grouped batches: every labelled token weighs the same."""

from __future__ import annotations

import pytest
import torch

from tokclf.training.trainer import TokclfTrainer, mean_tokens_per_step


def test_mean_tokens_per_step_counts_labelled_tokens_only():
    labels = [[0, -100, 1], [2], [-100, -100], [3, 3, 3]]
    assert mean_tokens_per_step(labels, 2) == pytest.approx(6 / 2)
    assert mean_tokens_per_step(labels, 3) == pytest.approx(6 / 2)  # ceil(4 / 3) = 2 steps
    assert mean_tokens_per_step([[-100]], 16) == 1.0  # never divides by zero


def _trainer(model_dir, tmp_path, tokens_per_step):
    from transformers import AutoModelForTokenClassification, TrainingArguments

    model = AutoModelForTokenClassification.from_pretrained(str(model_dir))
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", per_device_train_batch_size=2)
    trainer = TokclfTrainer(model=model, args=args)
    trainer.tokens_per_step = tokens_per_step
    model.train()
    for module in model.modules():  # training mode (the weighting applies only there), no randomness
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return trainer, model


def test_loss_is_the_token_sum_over_the_epoch_constant(tiny_model_dir, tmp_path):
    """A batch with 2 labelled tokens and one with 6 contribute 2/C and 6/C of a token's loss
    (the stock mean would give both batches the same weight)."""
    trainer, model = _trainer(tiny_model_dir, tmp_path, tokens_per_step=4.0)
    torch.manual_seed(0)
    batch = {
        "input_ids": torch.randint(1000, 2000, (2, 5)),
        "attention_mask": torch.ones(2, 5, dtype=torch.long),
        "labels": torch.tensor([[-100, 1, 0, 1, -100], [-100, 0, -100, -100, -100]]),
    }
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        per_token = torch.nn.functional.cross_entropy(logits.reshape(-1, 2), batch["labels"].reshape(-1),
                                                      ignore_index=-100, reduction="none")
        loss = trainer.compute_loss(model, dict(batch))
    assert float(loss) == pytest.approx(float(per_token.sum()) / 4.0, rel=1e-5)
    stock, _ = _trainer(tiny_model_dir, tmp_path / "stock", tokens_per_step=None)
    with torch.no_grad():
        assert float(stock.compute_loss(model, dict(batch))) == pytest.approx(float(per_token.sum()) / 4, rel=1e-5)
        # ... the same here only because this batch has 4 labelled tokens; with 1 it differs:
        one = dict(batch, labels=torch.tensor([[-100, 1, -100, -100, -100], [-100] * 5]))
        assert float(trainer.compute_loss(model, dict(one))) == pytest.approx(float(stock.compute_loss(model, dict(one))) / 4, rel=1e-5)


def test_evaluation_mode_keeps_the_stock_loss(tiny_model_dir, tmp_path):
    trainer, model = _trainer(tiny_model_dir, tmp_path, tokens_per_step=1000.0)
    model.eval()
    batch = {"input_ids": torch.randint(1000, 2000, (1, 4)), "labels": torch.tensor([[0, 1, 0, 1]])}
    with torch.no_grad():
        assert float(trainer.compute_loss(model, dict(batch))) == pytest.approx(float(model(**batch).loss), rel=1e-5)


@pytest.mark.parametrize("per_token_loss, sampling, expected", [
    (True, "group_by_length", 3.0), (True, "random", 3.0), (False, "group_by_length", None), (False, "random", None)])
def test_loss_weighting_is_independent_of_the_batch_order(tiny_model_dir, tmp_path, per_token_loss, sampling, expected):
    """`loss_weighting` and `batch_order` are separate switches: the per-token constant is set for
    either batch order when asked for, and never for the stock mean loss."""
    import datasets
    from transformers import AutoModelForTokenClassification, TrainingArguments

    model = AutoModelForTokenClassification.from_pretrained(str(tiny_model_dir))
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", per_device_train_batch_size=2,
                             train_sampling_strategy=sampling, length_column_name="length")
    train = datasets.Dataset.from_dict({"input_ids": [[1, 2, 3], [1, 2], [1, 2, 3, 4]], "length": [3, 2, 4],
                                        "labels": [[-100, 0, 1], [0, -100], [0, 1, 1, -100]]})
    trainer = TokclfTrainer(model=model, args=args, train_dataset=train, per_token_loss=per_token_loss)
    # 6 labelled tokens over ceil(3 / 2) = 2 steps.
    assert trainer.tokens_per_step == (pytest.approx(expected) if expected else None)
