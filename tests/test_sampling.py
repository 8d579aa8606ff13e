"""Training batch order: grouped by length (little padding), batches shuffled (no length walk)."""

from __future__ import annotations

import random

import torch

from tokclf.training.sampling import (
    ShuffledLengthGroupedSampler,
    length_grouped_batches,
)


def _lengths(n: int = 1000, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(3, 120) for _ in range(n)]


def _padded_tokens(batches: list[list[int]], lengths: list[int]) -> int:
    return sum(max(lengths[i] for i in b) * len(b) for b in batches)


def test_every_index_once_in_full_batches_with_the_short_one_last():
    lengths = _lengths(1003)
    batches = length_grouped_batches(lengths, 16, generator=torch.Generator().manual_seed(0))
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(1003))
    assert all(len(b) == 16 for b in batches[:-1]) and len(batches[-1]) == 1003 % 16
    # The DataLoader re-cuts the flat stream by batch size: the same batches come out.
    assert [flat[i:i + 16] for i in range(0, len(flat), 16)] == batches


def test_padding_as_low_as_sorted_mega_batches_and_far_below_random():
    lengths = _lengths()
    ours = _padded_tokens(length_grouped_batches(lengths, 16, generator=torch.Generator().manual_seed(1)), lengths)
    order = torch.randperm(len(lengths), generator=torch.Generator().manual_seed(1)).tolist()
    random_batches = [order[i:i + 16] for i in range(0, len(order), 16)]
    assert ours < 0.75 * _padded_tokens(random_batches, lengths)
    assert ours < 1.10 * sum(lengths)  # within 10% of no padding at all


def test_batches_do_not_walk_down_the_length_order():
    """transformers' LengthGroupedSampler emits each mega-batch longest to shortest; here the
    batch maxima are in random order (many rises, not ~1 per 50 batches)."""
    lengths = _lengths(4000)
    batches = length_grouped_batches(lengths, 16, generator=torch.Generator().manual_seed(2))
    maxima = [max(lengths[i] for i in b) for b in batches]
    rises = sum(b > a for a, b in zip(maxima, maxima[1:]))
    assert rises > len(maxima) // 3
    assert maxima[0] == max(lengths)  # the longest batch first: memory errors show at step 1


def test_sampler_repeatable_under_the_global_seed_and_new_order_each_epoch():
    lengths = _lengths(200)
    sampler = ShuffledLengthGroupedSampler(lengths, 8)
    torch.manual_seed(5)
    first, second = list(sampler), list(sampler)
    torch.manual_seed(5)
    assert list(sampler) == first
    assert first != second and sorted(first) == sorted(second) == list(range(200))
    assert len(sampler) == 200


def test_tiny_and_empty_inputs():
    assert length_grouped_batches([], 16) == []
    assert length_grouped_batches([5, 3, 9], 16, generator=torch.Generator().manual_seed(0)) == [[2, 0, 1]]


def test_training_draws_its_batches_from_the_shuffled_sampler(tiny_model_dir, ner_jsonl_dir, tmp_path, monkeypatch):
    """`tokclf train` on one process uses this sampler (not transformers' walk down the lengths),
    and every training feature is seen once per epoch."""
    from tokclf import TokenClassificationParams, train
    from tokclf.training import sampling

    seen: list[list[int]] = []
    original = sampling._batches

    def recording(lengths, batch_size, *args):
        batches = original(lengths, batch_size, *args)
        seen.append(sorted(int(i) for b in batches for i in b))
        return batches

    monkeypatch.setattr(sampling, "_batches", recording)
    params = TokenClassificationParams(
        data_path=str(ner_jsonl_dir), model=str(tiny_model_dir), project_name=str(tmp_path / "m"),
        valid_split="validation", epochs=2, batch_size=4, max_seq_length=32, stride=4, seed=3,
    )
    result = train(params)
    assert len(seen) == 2  # one order per epoch
    assert seen[0] == list(range(len(seen[0]))) and len(seen[0]) == result.metrics["train"]["features"]


def test_length_grouping_trades_padding_for_variety():
    """Groups of fewer batches pad more but mix lengths more: 1 batch per group is random batches
    (as padded as the stock order), more batches per group pad less."""
    lengths = _lengths(4000)
    padded = {}
    spread = {}
    for mult in (1, 4, 50):
        batches = length_grouped_batches(lengths, 16, mega_batch_mult=mult, generator=torch.Generator().manual_seed(3))
        assert sorted(i for b in batches for i in b) == list(range(4000))
        padded[mult] = _padded_tokens(batches, lengths)
        spread[mult] = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    order = torch.randperm(4000, generator=torch.Generator().manual_seed(3)).tolist()
    random_padded = _padded_tokens([order[i:i + 16] for i in range(0, 4000, 16)], lengths)
    assert 0.9 * random_padded < padded[1] < 1.1 * random_padded
    assert padded[50] < padded[4] < 0.75 * padded[1]
    assert spread[1] > spread[4] > spread[50]
    sampler = ShuffledLengthGroupedSampler(lengths, 16, seed=1, mega_batch_mult=4)
    assert sorted(sampler) == list(range(4000))
