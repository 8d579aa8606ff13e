"""CPU seconds of `tokclf predict` on one text, this checkout against a baseline checkout
(`--baseline-root`), runs interleaved in one script: CPU at the end of the model load, at the
first result (the `predict` phase mark, after the JSON is written) and at the end of the process.

    nice -n 10 python bench/predict_cpu.py --model DIR --baseline-root /work/main --runs 3

CPU seconds (not wall) are what to compare on a shared machine: the process's own time, read from
the phase marks (`tokclf.core.phases`, TOKCLF_PHASE_LOG) and from the kernel's rusage of the
child. The load average is printed with every run. Results: bench/results/predict_cpu.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEXT = "EU rejects German call to boycott British lamb ."


def run(model: str, code_root: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "phases.jsonl"
        env = {**os.environ, "PYTHONPATH": str(code_root), "TOKCLF_PHASE_LOG": str(log)}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        # cwd: a neutral folder, since `python -m` puts the current folder before PYTHONPATH.
        proc = subprocess.run([sys.executable, "-m", "tokclf.cli", "predict", "--model", model, TEXT], env=env,
                              cwd=tmp, capture_output=True, text=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise RuntimeError(f"tokclf predict failed in {code_root}: {proc.stderr[-2000:]}")
        marks = {m["phase"]: m for m in map(json.loads, log.read_text(encoding="utf-8").splitlines())}
    whole = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"model_load_cpu_s": marks["model_load"]["cpu"], "first_result_cpu_s": marks["predict"]["cpu"],
            "process_cpu_s": round(whole, 3), "load": round(os.getloadavg()[0], 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a `tokclf train` model folder")
    parser.add_argument("--baseline-root", required=True, help="the checkout to compare with")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "predict_cpu.json"))
    args = parser.parse_args()
    roots = {"this": ROOT, "baseline": Path(args.baseline_root).resolve()}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in roots}
    for i in range(args.runs):
        for name, root in roots.items():  # interleaved: both see the same load
            results[name].append(run(args.model, root))
            print(f"run {i + 1} {name}: {results[name][-1]}", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"model": args.model, "roots": {k: str(v) for k, v in roots.items()},
                                          "runs": results}, indent=2), encoding="utf-8")
    best = {name: min(rows, key=lambda r: r["first_result_cpu_s"]) for name, rows in results.items()}
    for key in ("model_load_cpu_s", "first_result_cpu_s", "process_cpu_s"):
        print(f"{key}: this {best['this'][key]:.2f} s, baseline {best['baseline'][key]:.2f} s "
              f"({best['this'][key] / best['baseline'][key]:.2f}x)")
    for name, row in best.items():
        print(f"{name}: predict {row['first_result_cpu_s'] - row['model_load_cpu_s']:.2f} CPU s, "
              f"exit {row['process_cpu_s'] - row['first_result_cpu_s']:.2f} CPU s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
