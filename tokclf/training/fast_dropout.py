"""Dropout with a counter-based random generator, for training on CPUs.

Why: on a CPU, torch's dropout draws every mask element from one sequential Mersenne-Twister
generator. For MiniLM at batch 16 that was 11% of a training step (profiled: `aten::bernoulli_`,
~0.75 ms per call, 20 calls per step), more than the attention products. Here the mask comes from
SplitMix64 (a counter hash that passes BigCrush) evaluated with vectorised integer tensor ops:
one 64-bit hash yields four 16-bit uniforms, ~3x faster than `F.dropout` per call (measured with
bench/step_variants.py; docs/benchmarks.md). Each call draws its seed from torch's default generator, so
`torch.manual_seed`/`set_seed` still make runs reproducible.

The keep probability is quantised to 1/65536 (p=0.1 keeps 58982/65536 = 0.899997), and surviving
activations are scaled by 1/(1-p) as in `torch.nn.Dropout`. On CUDA (whose generator is fast and
runs in parallel) and in evaluation the model's own dropout runs untouched.

Two places are patched on the model object only (no global monkey-patching):
- every `nn.Dropout` module's forward (hidden, embedding and classifier dropout);
- the attention function, through transformers' `AttentionInterface` ("tokclf_cpu": the eager
  attention with this dropout on the attention probabilities). It is switched back to the model's
  original implementation before saving, so the published config names a stock implementation.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

# SplitMix64 constants as signed 64-bit integers (torch has no full uint64 arithmetic on CPU).
_GAMMA = 0x9E3779B97F4A7C15 - (1 << 64)
_MIX1 = 0xBF58476D1CE4E5B9 - (1 << 64)
_MIX2 = 0x94D049BB133111EB - (1 << 64)
ATTENTION_NAME = "tokclf_cpu"


def _shift_right(z: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 (torch's >> is arithmetic on signed integers)."""
    return (z >> k) & ((1 << (64 - k)) - 1)


def uniform16(n: int, seed: int) -> torch.Tensor:
    """`n` int16 values uniform over [-32768, 32767]: SplitMix64 of counters `seed + i*gamma`,
    each 64-bit output split into four 16-bit values. Integer products wrap modulo 2**64."""
    m = (n + 3) // 4
    z = torch.arange(m, dtype=torch.int64).mul_(_GAMMA).add_(seed)
    z = (z ^ _shift_right(z, 30)).mul_(_MIX1)
    z = (z ^ _shift_right(z, 27)).mul_(_MIX2)
    z = z ^ _shift_right(z, 31)
    return z.view(torch.int16)[:n]


def keep_mask(shape: torch.Size, p: float) -> torch.Tensor:
    """Boolean mask, True with probability 1-p (to 1/65536), seeded from torch's generator."""
    seed = int(torch.randint(-(2**62), 2**62, (), dtype=torch.int64))
    threshold = round(p * 65536) - 32768
    return (uniform16(math.prod(shape), seed) >= threshold).view(shape)


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Same contract as `torch.nn.functional.dropout`; counter-hash mask on CPU tensors."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p >= 1.0:
        return nn.functional.dropout(x, p=p, training=training)
    # One multiply by a pre-scaled mask in x's dtype: its backward is one multiply too (measured
    # 1.4x faster forward+backward than torch.where).
    return x * keep_mask(x.shape, p).to(x.dtype).mul_(1.0 / (1.0 - p))


def _dropout_forward(self: nn.Dropout, x: torch.Tensor) -> torch.Tensor:
    if self.inplace:  # rare; keep torch's semantics rather than emulate in-place
        return nn.functional.dropout(x, self.p, self.training, self.inplace)
    return dropout(x, self.p, self.training)


def attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
              attention_mask: torch.Tensor | None, scaling: float | None = None, dropout_p: float = 0.0,
              **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """transformers' eager attention (query/key/value [batch, heads, seq, dim]) with this dropout.
    Eager rather than SDPA: with dropout on, torch's CPU SDPA takes its unfused math path anyway."""
    p = kwargs.pop("dropout", dropout_p)
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:  # True = attend (sdpa-style masks)
            weights = weights.masked_fill(~attention_mask, torch.finfo(weights.dtype).min)
        else:
            weights = weights + attention_mask
    weights = nn.functional.softmax(weights, dim=-1)
    weights = dropout(weights, p, module.training)
    out = torch.matmul(weights, value).transpose(1, 2).contiguous()
    return out, weights


def _register_attention() -> bool:
    try:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface, eager_mask
    except ImportError:  # older transformers: the dropout modules alone are still patched
        return False
    AttentionInterface.register(ATTENTION_NAME, attention)
    # Without a registered mask builder transformers passes *no* padding mask to a custom
    # attention function; the eager builder gives the additive float mask this function expects.
    AttentionMaskInterface.register(ATTENTION_NAME, eager_mask)
    return True


def enable(model: nn.Module, attention: bool = True) -> dict[str, Any]:
    """Patch `model` in place for CPU training; returns what `disable` needs to undo it.
    Models without the attention interface keep their attention (only nn.Dropout is patched)."""
    patched = 0
    for m in model.modules():
        if isinstance(m, nn.Dropout) and "forward" not in m.__dict__:
            m.forward = _dropout_forward.__get__(m, type(m))  # type: ignore[method-assign]
            patched += 1
    state: dict[str, Any] = {"modules": patched, "attention": None}
    config = getattr(model, "config", None)
    original = getattr(config, "_attn_implementation", None)
    if attention and original in ("eager", "sdpa") and hasattr(model, "set_attn_implementation") and _register_attention():
        try:
            model.set_attn_implementation(ATTENTION_NAME)
            state["attention"] = original
        except (ValueError, NotImplementedError, AttributeError):
            pass  # this architecture does not dispatch through AttentionInterface
    return state


def disable(model: nn.Module, state: dict[str, Any]) -> None:
    """Undo `enable`: the saved/published model then uses only stock transformers code."""
    for m in model.modules():
        if isinstance(m, nn.Dropout) and "forward" in m.__dict__:
            del m.forward
    if state.get("attention"):
        model.set_attn_implementation(state["attention"])
