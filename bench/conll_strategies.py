"""Full CoNLL-2003 fine-tuning of all-MiniLM-L6-v2 with both subword label strategies.

Answers two questions from the core-trainer issue, measured on this machine in one script:
which strategy ("first" subword vs "all" subwords) gives the better word-level test F1, and how
long a full 3-epoch run takes. Usage:

    python bench/conll_strategies.py [--epochs 3] [--max-samples N] [--out bench/results/conll_strategies.json]

Reads ../shared/data/conll2003 (or $TOKCLF_SHARED_DATA/conll2003).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("TOKCLF_SHARED_DATA", REPO.parent / "shared" / "data")) / "conll2003"


def overrides(pairs: list[str]) -> dict:
    """--set KEY=VALUE pairs, typed by the parameter model (e.g. fast_dropout=false)."""
    from tokclf.core.params import TokenClassificationParams

    out: dict = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in TokenClassificationParams.model_fields:
            raise SystemExit(f"--set {pair}: unknown parameter {key!r}")
        out[key] = json.loads(value.lower()) if value.lower() in ("true", "false") or value.replace(".", "", 1).isdigit() else value
    return out


def run(strategy: str, lr: float, args: argparse.Namespace, workdir: Path) -> dict:
    from tokclf import TokenClassificationParams, train

    settings = dict(
        data_path=str(DATA), model=os.environ.get("TOKCLF_BENCH_MODEL", "sentence-transformers/all-MiniLM-L6-v2"),
        project_name=str(workdir / f"conll-{strategy}-{lr}"), valid_split="valid", test_split="test",
        lr=lr, epochs=args.epochs, batch_size=16, max_seq_length=128, mixed_precision=args.precision,
        subword_labels=strategy, early_stopping_patience=3, early_stopping_threshold=0.0,
        max_samples=args.max_samples, seed=42, weight_decay=0.01,
    )
    params = TokenClassificationParams(**{**settings, **overrides(args.set)})
    started = time.perf_counter()
    result = train(params)
    wall = time.perf_counter() - started
    m = result.metrics
    return {
        "strategy": strategy,
        "lr": lr,
        "set": args.set,
        "wall_s": round(wall, 1),
        "train_runtime_s": m["train"]["runtime_s"],
        "train_sentences_per_s": m["train"]["sentences_per_s"],
        "valid_f1": round(m["validation"]["f1"], 4),
        "test_f1": round(m["test"]["f1"], 4),
        "test_precision": round(m["test"]["precision"], 4),
        "test_recall": round(m["test"]["recall"], 4),
        "test_per_type_f1": {k: round(v["f1"], 4) for k, v in m["test"]["per_type"].items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lrs", default="1e-4", help="comma-separated learning rates to try")
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--max-samples", type=int)
    ap.add_argument("--strategies", default="first,all")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="any other tokclf parameter, e.g. --set freeze_word_embeddings=true (repeatable)")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "conll_strategies.json"))
    args = ap.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"CoNLL-2003 not found at {DATA}; set TOKCLF_SHARED_DATA")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for lr in (float(x) for x in args.lrs.split(",")):
            for strategy in args.strategies.split(","):
                results.append(run(strategy, lr, args, Path(tmp)))
                print(json.dumps(results[-1]), flush=True)
    import torch

    out = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "torch_threads": torch.get_num_threads()},
        "args": vars(args),
        "results": results,
    }
    for r in results:
        print(f"lr={r['lr']} {r['strategy']}: test F1 {r['test_f1']} (valid {r['valid_f1']}), {r['train_runtime_s']} s training")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
