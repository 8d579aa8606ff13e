"""Validation F1 of one tokclf epoch on all of CoNLL-2003, for one precision / seed / batch order.

Why: in `bench/run.py --full` (1 epoch) tokclf scored a few tenths of a point below the padded fp32
baseline while it scored above it in the quick mode; this script separates the suspects (bf16 vs
fp32, length-grouped vs random batches, the seed) with everything else as `bench/run.py` sets it
(MiniLM, lr 1e-4, batch 16, no evaluation during training). Scoring is always fp32 on the 3,250
validation sentences, words only, as `tokclf evaluate` does.

    python bench/one_epoch_f1.py --precision bf16 --seed 42 --sampler tokclf
    python bench/one_epoch_f1.py --precision fp32 --seed 42 --sampler transformers
    python bench/one_epoch_f1.py --sampler random          # batches in random order, padded per batch

tokclf has no parameter for the batch order (it always groups by length: most of its speed on a
CPU); `--sampler transformers` and `--sampler random` patch, for this measurement only, the
trainer class tokclf builds and the `train_sampling_strategy` of its TrainingArguments. Prints one
JSON line; --out appends it to a JSON-lines file.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--sampler", choices=["tokclf", "transformers", "random"], default="tokclf",
                    help="tokclf: length-grouped batches in shuffled order (tokclf.training.sampling, the default); "
                         "transformers: transformers' LengthGroupedSampler (mega-batches emitted longest to "
                         "shortest; tokclf's sampler before 2026-11-27); random: random order, padded per batch")
    ap.add_argument("--loss", choices=["tokens", "batch_mean"], default="tokens",
                    help="tokens: summed loss over the epoch's mean labelled tokens per step (tokclf's default); "
                         "batch_mean: the mean over each batch's own tokens (the stock loss, tokclf before 2026-11-27)")
    ap.add_argument("--mega-batch-mult", type=int, default=50,
                    help="batches per length-sorted mega-batch in tokclf's sampler (fewer: more mixed lengths "
                         "in a batch, more padding)")
    ap.add_argument("--out", help="append the result line to this JSON-lines file")
    args = ap.parse_args()

    import run as bench_run  # bench/run.py: the same data location and model

    import tokclf.training.run as trainer
    from tokclf import TokenClassificationParams, train
    from tokclf.evaluation.scoring import score_sentences
    from tokclf.inference.loading import load_trained

    if args.sampler == "transformers":
        make = trainer._make_trainer_class

        def stock_sampler_class():
            cls = make()
            cls._get_train_sampler = cls.__mro__[1]._get_train_sampler  # transformers.Trainer's own
            return cls

        trainer._make_trainer_class = stock_sampler_class
    if args.mega_batch_mult != 50:
        import functools

        from tokclf.training import sampling

        sampling.length_grouped_batches = functools.partial(sampling.length_grouped_batches,
                                                            mega_batch_mult=args.mega_batch_mult)
    if args.loss == "batch_mean":
        trainer.mean_tokens_per_step = lambda labels, step_size: None
    if args.sampler == "random":
        build = trainer.training_arguments

        def with_sampler(*a, **k):
            training_args = build(*a, **k)
            training_args.train_sampling_strategy = args.sampler
            return training_args

        trainer.training_arguments = with_sampler
    data = bench_run.load_conll(None)
    with tempfile.TemporaryDirectory() as tmp:
        params = TokenClassificationParams(
            data_path=str(bench_run.DATA), model=bench_run.MODEL, project_name=str(Path(tmp) / "m"), valid_split=None,
            test_split=None, epochs=1, lr=1e-4, batch_size=16, eval_strategy="no", seed=args.seed,
            mixed_precision=None if args.precision == "fp32" else args.precision,
        )
        result = train(params)
        model, tok, _, _ = load_trained(result.output_dir)
        metrics = score_sentences(model, tok, data.splits["validation"], data.label_names, max_seq_length=128,
                                  stride=32, batch_size=64, mixed_precision=None)
    line = json.dumps({"precision": args.precision, "seed": args.seed, "sampler": args.sampler, "loss": args.loss,
                       "mega_batch_mult": args.mega_batch_mult if args.sampler == "tokclf" else None,
                       "train_s": result.metrics["train"]["runtime_s"], "valid_f1": round(metrics["f1"], 4)})
    print(line)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


if __name__ == "__main__":
    main()
