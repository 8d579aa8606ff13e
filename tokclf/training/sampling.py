"""Training batch order: sentences of similar length batched together, batches in random order.

Why not transformers' `LengthGroupedSampler` as is: it sorts each mega-batch (50 batches) by
length and emits its batches in that order, so every run of 50 optimizer steps walks from the
longest sentences to the shortest (in CoNLL-2003 the shortest are mostly headlines and score
lines). Here the batches are formed the same way (the same padding) and then shuffled as whole
batches, so consecutive steps no longer follow the length order (1-2% slower steps in interleaved
A/Bs: a new shape every step; docs/benchmarks.md). The batch with
the longest sentence still comes first (out-of-memory errors show at step 1, not hours in).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch


def length_grouped_batches(
    lengths: Sequence[int], batch_size: int, *, mega_batch_mult: int = 50, generator: torch.Generator | None = None
) -> list[list[int]]:
    """Indices in batches of `batch_size`: a random permutation cut into mega-batches of
    `mega_batch_mult` batches, each sorted by length and cut into batches; then the batches are
    shuffled, with the one holding the longest item moved to the front (among the full batches;
    the one short batch, if any, comes last)."""
    n = len(lengths)
    if n == 0:
        return []
    # As transformers does: at most 50 batches per mega-batch, at least 4 mega-batches when possible.
    mult = max(1, min(mega_batch_mult, n // (batch_size * 4)))
    order = torch.randperm(n, generator=generator).tolist()
    size = mult * batch_size
    batches: list[list[int]] = []
    for start in range(0, n, size):
        mega = sorted(order[start:start + size], key=lambda i: lengths[i], reverse=True)
        batches.extend(mega[j:j + batch_size] for j in range(0, len(mega), batch_size))
    # The DataLoader cuts the flat index stream into batches of `batch_size` again, so the one
    # short batch (the end of the last mega-batch) must stay last or every later batch would shift.
    short = [b for b in batches if len(b) < batch_size]
    full = [b for b in batches if len(b) == batch_size]
    full = [full[i] for i in torch.randperm(len(full), generator=generator).tolist()]
    if full:
        longest = max(range(len(full)), key=lambda b: lengths[full[b][0]])
        full[0], full[longest] = full[longest], full[0]
    return full + short


class ShuffledLengthGroupedSampler(torch.utils.data.Sampler[int]):
    """Yields the indices of `length_grouped_batches`, batch after batch (the DataLoader cuts them
    back into the same batches since it uses the same batch size).

    With `seed`, epoch e's order is drawn from a generator seeded with (seed, e) (`set_epoch`, which
    the Trainer calls before each epoch): the order of any epoch can be rebuilt without replaying
    the run, so a run resumed mid-epoch skips exactly the batches it had trained on. Without a seed
    the order comes from `generator` or torch's global generator."""

    def __init__(self, lengths: Sequence[int], batch_size: int, generator: torch.Generator | None = None,
                 seed: int | None = None) -> None:
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.generator = generator
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        generator = self.generator
        if self.seed is not None:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        for batch in length_grouped_batches(self.lengths, self.batch_size, generator=generator):
            yield from batch
