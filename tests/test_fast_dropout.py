"""The counter-hash CPU dropout: distribution, reproducibility, and that the patched model is the
same model (eval outputs unchanged) and is handed back with stock attention before saving."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from tokclf.training import fast_dropout


def test_uniform16_is_uniform_and_seeded():
    a = fast_dropout.uniform16(400_000, seed=7)
    assert a.dtype == torch.int16 and a.numel() == 400_000
    assert torch.equal(a, fast_dropout.uniform16(400_000, seed=7))
    assert not torch.equal(a, fast_dropout.uniform16(400_000, seed=8))
    bits = a.to(torch.int32) & 0xFFFF
    for k in range(16):  # every bit fair to within ~6 standard deviations
        assert abs(((bits >> k) & 1).float().mean().item() - 0.5) < 0.005, k
    # neighbours (inside and across the 64-bit words) uncorrelated
    f = a.float()
    assert abs(torch.corrcoef(torch.stack([f[:-1], f[1:]]))[0, 1].item()) < 0.01
    assert abs(torch.corrcoef(torch.stack([f[:-4], f[4:]]))[0, 1].item()) < 0.01


@pytest.mark.parametrize("p", [0.1, 0.5, 0.02])
def test_dropout_rate_and_scale(p):
    x = torch.ones(500, 400)
    y = fast_dropout.dropout(x, p, training=True)
    kept = (y != 0).float().mean().item()
    assert kept == pytest.approx(1 - p, abs=0.005)
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / (1 - p)))
    assert y.mean().item() == pytest.approx(1.0, abs=0.02)  # expectation preserved


def test_dropout_identity_when_off_and_follows_torch_seed():
    x = torch.randn(8, 16, requires_grad=True)
    assert fast_dropout.dropout(x, 0.1, training=False) is x
    assert fast_dropout.dropout(x, 0.0, training=True) is x
    torch.manual_seed(3)
    a = fast_dropout.dropout(x, 0.3)
    torch.manual_seed(3)
    b = fast_dropout.dropout(x, 0.3)
    assert torch.equal(a, b)
    a.sum().backward()  # gradient flows through kept units only, scaled like torch's dropout
    assert torch.equal(x.grad != 0, a != 0)


def test_bf16_input_keeps_dtype():
    x = torch.randn(4, 8, dtype=torch.bfloat16)
    assert fast_dropout.dropout(x, 0.1).dtype == torch.bfloat16


def _tiny_bert(tiny_model_dir):
    from transformers import AutoModelForTokenClassification

    return AutoModelForTokenClassification.from_pretrained(str(tiny_model_dir))


def test_enable_keeps_eval_outputs_and_disable_restores(tiny_model_dir):
    model = _tiny_bert(tiny_model_dir).eval()
    ids = torch.randint(1000, 2000, (3, 11))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    with torch.no_grad():
        before = model(input_ids=ids, attention_mask=mask).logits
    original = model.config._attn_implementation
    state = fast_dropout.enable(model)
    assert state["modules"] >= 5 and state["attention"] == original
    assert model.config._attn_implementation == fast_dropout.ATTENTION_NAME
    with torch.no_grad():
        patched = model(input_ids=ids, attention_mask=mask).logits
    diff = (before[mask.bool()] - patched[mask.bool()]).abs().max().item()
    assert diff < 1e-5, diff

    model.train()
    torch.manual_seed(0)
    out1 = model(input_ids=ids, attention_mask=mask).logits
    torch.manual_seed(0)
    out2 = model(input_ids=ids, attention_mask=mask).logits
    torch.manual_seed(1)
    out3 = model(input_ids=ids, attention_mask=mask).logits
    assert torch.equal(out1, out2) and not torch.equal(out1, out3)  # dropout active and seeded
    out1.sum().backward()
    assert model.bert.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0  # gradients flow through

    fast_dropout.disable(model, state)
    assert model.config._attn_implementation == original
    assert not any("forward" in m.__dict__ for m in model.modules() if isinstance(m, nn.Dropout))


def test_trained_model_config_names_stock_attention(tiny_model_dir, ner_jsonl_dir, tmp_path):
    """Training on CPU uses the patched model; the saved one must load anywhere without tokclf."""
    from tokclf import TokenClassificationParams, train

    params = TokenClassificationParams(
        data_path=str(ner_jsonl_dir), model=str(tiny_model_dir), project_name=str(tmp_path / "m"),
        valid_split="validation", epochs=1, batch_size=8, max_seq_length=32, stride=4, seed=1,
    )
    assert params.fast_dropout  # the default on CPU
    result = train(params)
    text = (result.output_dir / "config.json").read_text()
    assert fast_dropout.ATTENTION_NAME not in text
    assert json.loads(text).get("_attn_implementation_autoset") in (None, False, True)
