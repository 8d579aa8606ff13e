"""Where a short run's time goes: the whole `tokclf train` process against its own training time
(the Trainer's train_runtime), phase by phase, and `tokclf predict` on one text (time to first
result); the whole-process ratio against the padded baseline (bench/baseline_trainer.py, run as
its own process on the same sentences) in the same script.

    nice -n 10 python bench/overhead.py [--sentences 3000] [--no-baseline] [--runs 2]

Setting: the first N sentences of every CoNLL-2003 split (train, validation, test), MiniLM, 1 epoch,
batch 16, lr 1e-4, bf16, otherwise tokclf's defaults (an evaluation at the epoch's end, validation
and test scored at the end). Phases come from the timestamps the library writes when
TOKCLF_PHASE_LOG names a file (tokclf.core.phases): each phase is the time from the previous mark
to its own; "interpreter + imports" runs from the process launch to the CLI's first mark. Fixed
overhead = whole process - train_runtime. Results: bench/results/overhead.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TOKCLF_SHARED_DATA", "/work/shared/data")) / "conll2003"
MODEL = os.environ.get("TOKCLF_BENCH_MODEL", "sentence-transformers/all-MiniLM-L6-v2")
TEXT = "EU rejects German call to boycott British lamb ."
# What each mark ends (tokclf.core.phases.mark names, in the order a train run makes them).
TRAIN_PHASES = {
    "cli": "interpreter + imports + argument parsing", "tokenizer": "parameters, tokenizer load",
    "data": "data (read, labels)", "validate": "validation", "tokenize": "tokenize",
    "imports_training": "imports for training (torch, transformers Trainer)", "model_load": "model load",
    "trainer_setup": "Trainer setup", "training": "training (train_runtime, incl. the epoch's evaluation)",
    "scoring": "final scoring (validation + test)", "save": "save model + tokenizer",
    "card": "outputs: params, metrics, log, report, card", "done": "print summary",
}
PREDICT_PHASES = {"cli": "interpreter + imports + argument parsing", "model_load": "model load",
                  "predict": "predict + write the result"}


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, list[dict]]:
    """(launch time, exit time, phase marks) of one process."""
    log = cwd / f"phases-{time.monotonic_ns()}.jsonl"
    env = {**env, "TOKCLF_PHASE_LOG": str(log)}
    started = time.time()
    proc = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ended = time.time()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-3000:]}")
    marks = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()] if log.exists() else []
    return started, ended, marks


def breakdown(started: float, ended: float, marks: list[dict], names: dict[str, str]) -> list[dict]:
    rows, previous, cpu = [], started, 0.0
    for m in marks:
        rows.append({"phase": m["phase"], "what": names.get(m["phase"], m["phase"]), "s": round(m["t"] - previous, 3),
                     "cpu_s": round(m["cpu"] - cpu, 3)})
        previous, cpu = m["t"], m["cpu"]
    rows.append({"phase": "exit", "what": "interpreter exit", "s": round(ended - previous, 3)})
    return rows


def run_train(sentences: int, work: Path, env: dict[str, str]) -> dict:
    project = work / "model"
    cmd = [sys.executable, "-m", "tokclf.cli", "train", "--data-path", str(DATA), "--valid-split", "validation",
           "--test-split", "test", "--max-samples", str(sentences), "--model", MODEL, "--epochs", "1",
           "--batch-size", "16", "--lr", "1e-4", "--mixed-precision", "bf16", "--project-name", str(project),
           "--log", "none"]
    started, ended, marks = timed(cmd, env, work)
    metrics = json.loads((project / "metrics.json").read_text(encoding="utf-8"))
    runtime = float(metrics["train"]["runtime_s"])
    total = ended - started
    return {"whole_s": round(total, 2), "train_runtime_s": runtime, "fixed_s": round(total - runtime, 2),
            "phases": breakdown(started, ended, marks, TRAIN_PHASES), "valid_f1": metrics["validation"]["f1"],
            "model": str(project)}


def run_predict(model: str, work: Path, env: dict[str, str]) -> dict:
    cmd = [sys.executable, "-m", "tokclf.cli", "predict", "--model", model, TEXT]
    started, ended, marks = timed(cmd, env, work)
    first = next((m["t"] for m in marks if m["phase"] == "predict"), ended)
    return {"whole_s": round(ended - started, 2), "first_result_s": round(first - started, 2),
            "phases": breakdown(started, ended, marks, PREDICT_PHASES)}


def run_baseline(sentences: int, work: Path, env: dict[str, str]) -> dict:
    started = time.time()
    proc = subprocess.run([sys.executable, str(Path(__file__)), "--baseline-worker", str(sentences), str(work)],
                          env=env, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.decode(errors="replace")[-3000:])
    out = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    return {"whole_s": round(time.time() - started, 2), **out}


def baseline_worker(sentences: int, work: Path) -> None:
    """The baseline as a user runs it: one process that loads the data, trains, saves the model."""
    sys.path.insert(0, str(ROOT / "bench"))
    from baseline_trainer import train_baseline

    from tokclf.core.resources import resolve_model_path
    from tokclf.data.ingest import load_labelled_data

    data = load_labelled_data(str(DATA), valid_split="validation", test_split=None, max_samples=sentences)
    started = time.perf_counter()
    model, tokenizer, _ = train_baseline(data.splits["train"], resolve_model_path(MODEL), data.num_labels,
                                         str(work / "baseline-ckpt"), epochs=1, lr=1e-4, batch_size=16,
                                         max_length=128, seed=42)
    runtime = time.perf_counter() - started
    model.save_pretrained(str(work / "baseline-model"))
    tokenizer.save_pretrained(str(work / "baseline-model"))
    print(json.dumps({"train_s": round(runtime, 2)}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=1, help="tokclf train/predict runs (the fastest is reported)")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--predict-model", help="only time `tokclf predict` on this model folder (no training)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "overhead.json"))
    parser.add_argument("--baseline-worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_worker:
        baseline_worker(int(args.baseline_worker[0]), Path(args.baseline_worker[1]))
        return 0
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    if args.predict_model:
        with tempfile.TemporaryDirectory(prefix="tokclf-overhead-") as tmp:
            runs = [run_predict(args.predict_model, Path(tmp), env) for _ in range(args.runs)]
        for r in runs:
            print(f"tokclf predict, one text: first result after {r['first_result_s']:.2f} s (whole {r['whole_s']:.2f} s, "
                  f"load {os.getloadavg()[0]:.1f})")
            for row in r["phases"]:
                print(f"  {row['s']:7.2f} s wall {row.get('cpu_s', 0):6.2f} s CPU  {row['what']}")
        Path(args.out).write_text(json.dumps({"predict": runs, "load": os.getloadavg()}, indent=2), encoding="utf-8")
        return 0
    result: dict = {"sentences": args.sentences, "load_before": os.getloadavg(),
                    "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "train": [], "predict": []}
    with tempfile.TemporaryDirectory(prefix="tokclf-overhead-") as tmp:
        work = Path(tmp)
        for i in range(args.runs):
            run_dir = work / f"run{i}"
            run_dir.mkdir()
            result["train"].append(run_train(args.sentences, run_dir, env))
            result["predict"].append(run_predict(result["train"][-1]["model"], run_dir, env))
        if not args.no_baseline:
            result["baseline"] = run_baseline(args.sentences, work, env)
    result["load_after"] = os.getloadavg()
    best = min(result["train"], key=lambda r: r["fixed_s"])
    pred = min(result["predict"], key=lambda r: r["first_result_s"])
    print(f"tokclf train, {args.sentences} sentences: whole process {best['whole_s']:.1f} s, train_runtime "
          f"{best['train_runtime_s']:.1f} s, fixed overhead {best['fixed_s']:.1f} s (load {result['load_before'][0]:.1f})")
    for row in best["phases"]:
        print(f"  {row['s']:7.2f} s  {row['what']}")
    print(f"tokclf predict, one text: first result after {pred['first_result_s']:.2f} s (whole {pred['whole_s']:.2f} s)")
    for row in pred["phases"]:
        print(f"  {row['s']:7.2f} s  {row['what']}")
    if "baseline" in result:
        b = result["baseline"]
        result["whole_process_ratio"] = round(b["whole_s"] / best["whole_s"], 2)
        print(f"baseline whole process {b['whole_s']:.1f} s (training {b['train_s']:.1f} s): "
              f"{result['whole_process_ratio']:.2f}x the tokclf process")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for r in result["train"]:
        r.pop("model", None)
    out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
