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

import numpy as np
import torch


def length_grouped_batches(
    lengths: Sequence[int] | np.ndarray, batch_size: int, *, mega_batch_mult: int = 50,
    generator: torch.Generator | None = None,
) -> list[list[int]]:
    """Indices in batches of `batch_size`: a random permutation cut into mega-batches of
    `mega_batch_mult` batches, each sorted by length and cut into batches; then the batches are
    shuffled, with the one holding the longest item moved to the front (among the full batches;
    the one short batch, if any, comes last)."""
    return [b.tolist() for b in _batches(np.asarray(lengths, dtype=np.int64), batch_size, mega_batch_mult, generator)]


def _batches(lengths: np.ndarray, batch_size: int, mega_batch_mult: int,
             generator: torch.Generator | None) -> list[np.ndarray]:
    """`length_grouped_batches` as arrays of indices: numpy throughout, so millions of rows cost
    8 bytes each (a Python list of lists would cost ~10x that)."""
    n = len(lengths)
    if n == 0:
        return []
    # As transformers does: at most 50 batches per mega-batch, at least 4 mega-batches when possible.
    mult = max(1, min(mega_batch_mult, n // (batch_size * 4)))
    order = torch.randperm(n, generator=generator).numpy()
    size = mult * batch_size
    batches: list[np.ndarray] = []
    for start in range(0, n, size):
        mega = order[start:start + size]
        # Longest first; a stable sort keeps equal lengths in permutation order (as sorted(reverse=True)).
        mega = mega[np.argsort(-lengths[mega], kind="stable")]
        batches.extend(mega[j:j + batch_size] for j in range(0, len(mega), batch_size))
    # The DataLoader cuts the flat index stream into batches of `batch_size` again, so the one
    # short batch (the end of the last mega-batch) must stay last or every later batch would shift.
    short = [b for b in batches if len(b) < batch_size]
    full = [b for b in batches if len(b) == batch_size]
    full = [full[i] for i in torch.randperm(len(full), generator=generator).tolist()]
    if full:
        longest = int(np.argmax([lengths[b[0]] for b in full]))
        full[0], full[longest] = full[longest], full[0]
    return full + short


class ShuffledLengthGroupedSampler(torch.utils.data.Sampler[int]):
    """Yields the indices of `length_grouped_batches`, batch after batch (the DataLoader cuts them
    back into the same batches since it uses the same batch size). `lengths` may be a numpy array
    (the features' length column read from Arrow).

    With `seed`, epoch e's order is drawn from a generator seeded with (seed, e) (`set_epoch`, which
    the Trainer calls before each epoch): the order of any epoch can be rebuilt without replaying
    the run, so a run resumed mid-epoch skips exactly the batches it had trained on. Without a seed
    the order comes from `generator` or torch's global generator."""

    def __init__(self, lengths: Sequence[int] | np.ndarray, batch_size: int,
                 generator: torch.Generator | None = None, seed: int | None = None,
                 mega_batch_mult: int = 50) -> None:
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size = batch_size
        self.mega_batch_mult = mega_batch_mult
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
        for batch in _batches(self.lengths, self.batch_size, self.mega_batch_mult, generator):
            yield from batch.tolist()
