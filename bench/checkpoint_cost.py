"""What a resumable checkpoint costs, to choose the default `checkpoint_minutes`.

Trains all-MiniLM-L6-v2 (the real packaged model; optimizer state includes the row-sparse
embedding moments) on a CoNLL-2003 subset twice through `tokclf.training.run.train`, in one
process: a baseline with checkpoints at epoch ends only, then with a checkpoint every
`--minutes` (a small value: many checkpoints). Every checkpoint write
(`TokclfTrainer._save_checkpoint`: weights, optimizer, scheduler, RNG, state, manifest, rename)
is timed. Prints: seconds per checkpoint, seconds per optimizer step, the measured slow-down of the
frequent run against the baseline, and the cost at several `checkpoint_minutes` values
(checkpoint seconds / interval).

    nice -n 10 python bench/checkpoint_cost.py --sentences 400
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sentences", type=int, default=400)
    ap.add_argument("--minutes", type=float, default=0.05, help="checkpoint interval of the frequent run")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "conll2003"))
    args = ap.parse_args()

    from tokclf.core.params import TokenClassificationParams
    from tokclf.core.resources import resolve_model_path
    from tokclf.training import trainer as trainer_module
    from tokclf.training.run import train

    saves: list[float] = []
    original = trainer_module.TokclfTrainer._save_checkpoint

    def timed(self, model, trial):  # the real write, timed
        start = time.perf_counter()
        original(self, model, trial)
        saves.append(time.perf_counter() - start)
        print(f"checkpoint at step {self.state.global_step}: {saves[-1]:.2f} s", file=sys.stderr, flush=True)

    trainer_module.TokclfTrainer._save_checkpoint = timed
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, minutes in (("baseline", 1e6), ("frequent", args.minutes)):
            saves.clear()
            params = TokenClassificationParams(
                data_path=args.data, model=resolve_model_path("sentence-transformers/all-MiniLM-L6-v2"),
                project_name=str(Path(tmp) / name), valid_split="valid", max_samples=args.sentences, epochs=1,
                batch_size=16, lr=1e-4, eval_strategy="no", test_split=None, checkpoint_minutes=minutes,
                early_stopping_patience=0,
            )
            result = train(params)
            t = result.metrics["train"]
            runs[name] = {"runtime_s": t["runtime_s"], "steps": t["steps"], "saves": len(saves),
                          "save_s": list(saves)}
    base, freq = runs["baseline"], runs["frequent"]
    save_s = statistics.median(base["save_s"] + freq["save_s"])
    step_s = (base["runtime_s"] - sum(base["save_s"])) / base["steps"]
    slow = (freq["runtime_s"] - base["runtime_s"]) / base["runtime_s"]
    out = {
        "load": os.getloadavg()[0],
        "checkpoint_s_median": round(save_s, 3),
        "step_s": round(step_s, 3),
        "baseline_runtime_s": base["runtime_s"], "frequent_runtime_s": freq["runtime_s"],
        "frequent_saves": freq["saves"], "frequent_vs_baseline": round(freq["runtime_s"] / base["runtime_s"], 3),
        "measured_cost_per_save_s": round((freq["runtime_s"] - base["runtime_s"]) / max(1, freq["saves"] - base["saves"]), 3),
        "cost_at_minutes": {m: f"{100 * save_s / (m * 60):.2f}%" for m in (1, 5, 15, 30, 60)},
        "slowdown_frequent": f"{100 * slow:.1f}%",
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
