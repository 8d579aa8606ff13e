"""Speed cost of Viterbi decoding against argmax (tokclf.inference.decoding), per word.

    nice -n 10 python bench/decoding_speed.py

Input: the sentence lengths of CoNLL-2003 test (3,453 sentences, 46,435 words; ../shared/data or
$TOKCLF_SHARED_DATA) with random softmax distributions over its 9 labels, and over a 17-label
IOBES set; each decoding runs `--repeat` times, best time kept. bench/accuracy.py reports the same
decode times next to the model's forward pass on real predictions.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("TOKCLF_SHARED_DATA", REPO.parent / "shared" / "data"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from tokclf.data.ingest import load_labelled_data
    from tokclf.inference.decoding import decode_sentences, decoder

    data = load_labelled_data(str(SHARED / "conll2003"), train_split="test", valid_split=None, test_split=None)
    lengths = [len(t) for t in data.splits["test"]["tokens"]]
    iobes = ["O"] + [f"{p}-{t}" for t in ("PER", "ORG", "LOC", "MISC") for p in "BIES"]
    rng = np.random.default_rng(0)
    out = {"sentences": len(lengths), "words": int(sum(lengths)), "load_1m": os.getloadavg()[0]}
    for name, labels in (("conll_iob2_9", data.label_names), ("iobes_17", iobes)):
        sentences = [rng.dirichlet(np.ones(len(labels)), size=n).astype(np.float32) for n in lengths]
        row = {}
        # "viterbi_per_sentence": the one-sentence reference loop; "viterbi": what tokclf runs
        # (batched over sentences, tokclf.inference.decoding.decode_sentences).
        runs = {
            "argmax": lambda: decode_sentences(sentences, labels, "argmax"),
            "viterbi": lambda: decode_sentences(sentences, labels, "viterbi"),
            "viterbi_per_sentence": lambda: [one(p) for p in sentences],
        }
        one = decoder(labels, "viterbi")
        for decoding, fn in runs.items():
            best = float("inf")
            for _ in range(args.repeat):
                start = time.perf_counter()
                fn()
                best = min(best, time.perf_counter() - start)
            row[f"{decoding}_s"] = round(best, 4)
            row[f"{decoding}_us_per_word"] = round(1e6 * best / out["words"], 2)
        row["viterbi_over_argmax"] = round(row["viterbi_s"] / row["argmax_s"], 2)
        out[name] = row
    print(json.dumps(out, indent=1))
    (REPO / "bench" / "results").mkdir(exist_ok=True)
    (REPO / "bench" / "results" / "decoding_speed.json").write_text(json.dumps(out, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
