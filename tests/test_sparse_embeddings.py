"""Row-sparse AdamW for the word embeddings: exact where it must be, lazy where it says so."""

from __future__ import annotations

import json

import pytest
import torch

from tokclf.training import sparse_embeddings as se


def _pair(rows: int = 12, dim: int = 4):
    torch.manual_seed(0)
    dense = torch.nn.Embedding(rows, dim)
    sparse = torch.nn.Embedding(rows, dim, sparse=True)
    sparse.weight.data.copy_(dense.weight.data)
    return dense, sparse


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_rows_seen_every_step_match_dense_adamw(weight_decay):
    """When the same rows occur in every batch, lazy AdamW is AdamW on those rows, and the other
    rows never move (with weight decay 0 dense AdamW leaves them alone too)."""
    dense, sparse = _pair()
    opt_d = torch.optim.AdamW(dense.parameters(), lr=0.05, weight_decay=weight_decay)
    opt_s = se.RowSparseAdamW(sparse.parameters(), lr=0.05, weight_decay=weight_decay)
    ids = torch.tensor([[1, 3, 3, 7]])
    for step in range(5):
        target = torch.randn(1, 4, 4, generator=torch.Generator().manual_seed(step))
        for emb, opt in ((dense, opt_d), (sparse, opt_s)):
            opt.zero_grad()
            ((emb(ids) - target) ** 2).sum().backward()
            opt.step()
    used = torch.tensor([1, 3, 7])
    assert torch.allclose(dense.weight[used], sparse.weight[used], atol=1e-6)
    unused = torch.tensor([0, 2, 4, 5, 6, 8, 9, 10, 11])
    _, before = _pair()
    assert torch.equal(sparse.weight[unused], before.weight[unused])


def test_lazy_rows_keep_their_moments_between_occurrences():
    _, sparse = _pair()
    opt = se.RowSparseAdamW(sparse.parameters(), lr=0.1)
    sparse(torch.tensor([2])).sum().backward()
    opt.step()
    after_first = sparse.weight[2].clone()
    opt.zero_grad()
    sparse(torch.tensor([5])).sum().backward()
    opt.step()
    assert torch.equal(sparse.weight[2], after_first)  # row 2 absent: no momentum drift (lazy)
    assert float(opt.state[sparse.weight]["step"]) == 2  # bias correction uses the global step


def test_clip_norm_counts_duplicate_ids_once_summed():
    dense, sparse = _pair()
    lin_d, lin_s = torch.nn.Linear(4, 1), torch.nn.Linear(4, 1)
    lin_s.load_state_dict(lin_d.state_dict())
    ids = torch.tensor([[4, 4, 9]])
    lin_d(dense(ids)).sum().backward()
    lin_s(sparse(ids)).sum().backward()
    params_d = list(dense.parameters()) + list(lin_d.parameters())
    params_s = list(sparse.parameters()) + list(lin_s.parameters())
    assert se.has_sparse_grads(params_s) and not se.has_sparse_grads(params_d)
    expected = torch.nn.utils.clip_grad_norm_(params_d, 0.1)
    got = se.clip_grad_norm(params_s, 0.1)
    assert torch.allclose(expected, got)
    assert torch.allclose(dense.weight.grad, sparse.weight.grad.to_dense(), atol=1e-7)
    assert torch.allclose(lin_d.weight.grad, lin_s.weight.grad)


def test_training_with_lazy_embedding_updates(tiny_model_dir, ner_jsonl_dir, tmp_path):
    from safetensors.torch import load_file

    from tokclf import TokenClassificationParams, train

    params = TokenClassificationParams(
        data_path=str(ner_jsonl_dir), model=str(tiny_model_dir), project_name=str(tmp_path / "m"),
        valid_split="validation", epochs=2, batch_size=8, max_seq_length=32, stride=4, seed=3, lr=5e-3,
        lazy_embedding_updates=True, logging_steps=1,
    )
    result = train(params)
    base = load_file(str(tiny_model_dir / "model.safetensors"))
    tuned = load_file(str(result.output_dir / "model.safetensors"))
    key = next(k for k in tuned if k.endswith("word_embeddings.weight"))
    changed = (base[key] != tuned[key]).any(dim=1)
    # Only rows of tokens in the training data moved (a few dozen of ~30k), but those did.
    assert 0 < int(changed.sum()) < 1000
    assert "grad_norm" in json.dumps(json.loads((result.output_dir / "training_log.json").read_text()))
    config = json.loads((result.output_dir / "config.json").read_text())
    assert config["model_type"] == "bert"


def test_lazy_updates_only_where_they_apply(monkeypatch, tmp_path):
    from tokclf import TokenClassificationParams
    from tokclf.training.arguments import (
        uses_lazy_embedding_updates as use_lazy_embedding_updates,
    )

    def params(**kw):
        return TokenClassificationParams(data_path="d", project_name=str(tmp_path / "m"), **kw)

    assert params().lazy_embedding_updates  # the default
    assert use_lazy_embedding_updates(params())
    assert not use_lazy_embedding_updates(params(lazy_embedding_updates=False))
    assert not use_lazy_embedding_updates(params(optimizer="sgd"))  # AdamW only
    assert not use_lazy_embedding_updates(params(freeze_word_embeddings=True))
    monkeypatch.setenv("WORLD_SIZE", "2")  # DDP reduces dense gradients only
    assert not use_lazy_embedding_updates(params())
