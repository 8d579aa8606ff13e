"""Row-sparse ("lazy") AdamW updates of the word-embedding matrix, for training on CPUs.

Why: MiniLM's vocabulary matrix (30,522 x 384) is half of the model's parameters, but a batch of
16 sentences touches a few hundred of its rows. With a dense gradient every step pays for a 47 MB
zero-fill and scatter, a gradient-norm pass over it, and a fused AdamW update of all 11.7M values:
about 15% of a CPU step in the profile (docs/benchmarks.md). Here the embedding produces a sparse
gradient (`nn.Embedding(sparse=True)`) and only the rows in the batch are updated.

Semantics, as TensorFlow's LazyAdam and torch's SparseAdam: a row's moments are updated (and
decay) only on steps where the row occurs; bias correction uses the global step; decoupled weight
decay applies to the updated rows. Every other parameter gets torch's AdamW unchanged (the fused
kernel). Gradient clipping sees the true total norm: the sparse gradient is coalesced (duplicate
token ids summed) before its norm is taken.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


class RowSparseAdamW(torch.optim.AdamW):
    """torch.optim.AdamW for dense gradients; lazy row-wise AdamW for sparse ones."""

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        sparse: list[tuple[dict[str, Any], torch.Tensor, torch.Tensor]] = []
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None and p.grad.is_sparse:
                    sparse.append((group, p, p.grad))
                    p.grad = None  # AdamW (fused or not) skips parameters without a gradient
        try:
            super().step()
        finally:
            for _, p, grad in sparse:
                p.grad = grad
        for group, p, grad in sparse:
            self._lazy_update(group, p, grad)
        return loss

    def _lazy_update(self, group: dict[str, Any], p: torch.Tensor, grad: torch.Tensor) -> None:
        if group.get("amsgrad") or group.get("maximize"):
            raise NotImplementedError("row-sparse AdamW supports neither amsgrad nor maximize")
        state = self.state[p]
        if not state:
            state["step"] = torch.tensor(0.0)
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        state["step"] += 1
        t = float(state["step"])
        grad = grad.coalesce()
        rows = grad.indices()[0]
        values = grad.values().to(p.dtype)
        lr = float(group["lr"])
        beta1, beta2 = group["betas"]
        m = state["exp_avg"].index_select(0, rows).mul_(beta1).add_(values, alpha=1 - beta1)
        v = state["exp_avg_sq"].index_select(0, rows).mul_(beta2).addcmul_(values, values, value=1 - beta2)
        state["exp_avg"].index_copy_(0, rows, m)
        state["exp_avg_sq"].index_copy_(0, rows, v)
        weights = p.index_select(0, rows)
        if group["weight_decay"]:
            weights.mul_(1 - lr * group["weight_decay"])
        # Same arithmetic as torch's AdamW: denom = sqrt(v) / sqrt(1 - beta2^t) + eps.
        denom = v.sqrt().div_((1 - beta2**t) ** 0.5).add_(group["eps"])
        weights.addcdiv_(m, denom, value=-lr / (1 - beta1**t))
        p.index_copy_(0, rows, weights)


def total_grad_norm(params: Iterable[torch.Tensor]) -> torch.Tensor:
    """L2 norm over all gradients, dense and sparse (sparse ones coalesced in place first)."""
    norms = []
    for p in params:
        if p.grad is None:
            continue
        if p.grad.is_sparse:
            p.grad = p.grad.coalesce()
            norms.append(torch.linalg.vector_norm(p.grad.values().float(), 2))
        else:
            norms.append(torch.linalg.vector_norm(p.grad.float(), 2))
    if not norms:
        return torch.tensor(0.0)
    return torch.linalg.vector_norm(torch.stack(norms), 2)


def clip_grad_norm(params: Iterable[torch.Tensor], max_norm: float) -> torch.Tensor:
    """`torch.nn.utils.clip_grad_norm_` for a mix of dense and sparse gradients (torch's has no
    sparse norm kernel); returns the norm before clipping."""
    params = [p for p in params if p.grad is not None]
    total = total_grad_norm(params)
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    dense = [p.grad for p in params if not p.grad.is_sparse]
    if dense:
        torch._foreach_mul_(dense, coef)
    for p in params:
        if p.grad.is_sparse:
            p.grad = p.grad * coef
    return total


def has_sparse_grads(params: Iterable[torch.Tensor]) -> bool:
    return any(p.grad is not None and p.grad.is_sparse for p in params)


def enable(model: torch.nn.Module) -> bool:
    """Make the input embedding produce sparse gradients; False where it is not an nn.Embedding."""
    emb = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    if not isinstance(emb, torch.nn.Embedding) or not emb.weight.requires_grad:
        return False
    emb.sparse = True
    return True


def disable(model: torch.nn.Module) -> None:
    emb = model.get_input_embeddings()
    if isinstance(emb, torch.nn.Embedding):
        emb.sparse = False
