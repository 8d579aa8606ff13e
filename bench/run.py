"""tokclf speed benchmark: one command, everything measured side by side in one run.

    python bench/run.py            # quick mode: a CoNLL-2003 subset, a few minutes
    python bench/run.py --full     # all 14,041 CoNLL-2003 training sentences, 1 epoch each (~30 min on 2 cores)

Sections (each prints its ratio against the baseline measured in the same run):
- peak: this machine's bf16 and fp32 matrix-product rate (GFLOP/s);
- train: tokclf vs the padded per-item fp32 baseline (bench/baseline_trainer.py) on the same
  sentences, model (all-MiniLM-L6-v2), epochs, lr and batch size: sentences/s, tokens/s, wall
  time, peak RSS, word-level F1 on the validation split; each in its own process (clean RSS);
- compute: tokclf's achieved training FLOP rate as a share of the measured bf16 peak;
- inference: `tokclf.inference.predictor` on 1,000 CoNLL test sentences (raw text) vs
  `transformers.pipeline("token-classification", aggregation_strategy="simple")` on the same
  trained model (the tokclf model of the train section, or --inference-model DIR): sentences/s
  and the share of sentences with the same entities (bench/inference.py's part 1);
- eval: time to score the whole CoNLL test split on words (as `tokclf evaluate` does);
- cli: `tokclf --help` wall time;
- tokenize: a cold tokenize stage vs a cached rerun (when the pipeline stages are installed).
Writes bench/results/bench-<mode>.json. Data: ../shared/data/conll2003 or $TOKCLF_SHARED_DATA.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("TOKCLF_SHARED_DATA", REPO.parent / "shared" / "data")) / "conll2003"
# A local copy can stand in for the Hub id (the GPU machine has no Hub and no PyPI).
MODEL = os.environ.get("TOKCLF_BENCH_MODEL", "sentence-transformers/all-MiniLM-L6-v2")


# --- machine peak --------------------------------------------------------------------------------
def matmul_peak(dtype_name: str, n: int = 2048, seconds: float = 3.0) -> float:
    """Sustained GFLOP/s of an n x n matrix product in `dtype` on this machine (all threads)."""
    import torch

    dtype = getattr(torch, dtype_name)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    a = torch.randn(n, n, device=dev).to(dtype)
    b = torch.randn(n, n, device=dev).to(dtype)
    for _ in range(3):
        a @ b
    if dev == "cuda":
        torch.cuda.synchronize()
    reps = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        reps += 1
    if dev == "cuda":
        torch.cuda.synchronize()
    return 2 * n**3 * reps / (time.perf_counter() - start) / 1e9


# --- workers (run in a subprocess each) -------------------------------------------------------------
def load_conll(max_samples: int | None) -> Any:
    from tokclf.data.ingest import load_labelled_data

    return load_labelled_data(str(DATA), valid_split="validation", test_split="test", max_samples=max_samples)


def worker_train(kind: str, cfg: dict[str, Any]) -> dict[str, Any]:
    import torch

    from tokclf.core.resources import resolve_model_path
    from tokclf.evaluation.scoring import score_sentences
    from tokclf.text.features import tokenize_split
    from tokclf.text.tokenizer import load_tokenizer

    model_path = resolve_model_path(MODEL)
    data = load_conll(cfg["train_sentences"])
    train_split = data.splits["train"]
    valid = data.splits["validation"]
    tokenizer = load_tokenizer(model_path)
    # Real (non-padding) subword tokens per epoch, the same count for both recipes.
    feats = tokenize_split(train_split, tokenizer, max_seq_length=128, stride=32, strategy="first", label_names=None, with_labels=False)
    real_tokens = int(sum(feats["length"]))

    from baseline_trainer import train_baseline

    from tokclf import TokenClassificationParams, train
    from tokclf.inference.loading import load_trained

    def run_recipe(sentences: int | None, workdir: str, project: str | None = None) -> tuple[Any, Any, float, float]:
        """One training run of this worker's recipe on the first `sentences` training sentences:
        (model, tokenizer, process CPU seconds, wall seconds of training)."""
        if kind == "baseline":
            split = train_split if sentences is None else train_split.select(range(min(sentences, len(train_split))))
            started = time.perf_counter()
            model, tok, cpu_s = train_baseline(split, model_path, data.num_labels, workdir, epochs=cfg["epochs"],
                                               lr=cfg["lr"], batch_size=cfg["batch_size"], max_length=128, seed=42)
            return model, tok, cpu_s, time.perf_counter() - started
        params = TokenClassificationParams(
            data_path=str(DATA), model=MODEL, project_name=project or str(Path(workdir) / "m"), valid_split=None,
            test_split=None, max_samples=sentences, epochs=cfg["epochs"], lr=cfg["lr"], batch_size=cfg["batch_size"],
            mixed_precision=cfg["precision"], eval_strategy="no", seed=42,
        )
        result = train(params)
        model, tok, _, _ = load_trained(result.output_dir)
        return model, tok, result.metrics["train"]["cpu_s"], result.metrics["train"]["runtime_s"]

    if cfg.get("warmup_sentences"):
        # A short untimed run of the same recipe first, in this process: on a GPU the first run
        # pays seconds of one-time CUDA start-up (context, cuBLAS, lazy kernel loading) that
        # would otherwise dominate a short timed run.
        with tempfile.TemporaryDirectory() as tmp:
            run_recipe(cfg["warmup_sentences"], tmp)
    with tempfile.TemporaryDirectory() as tmp:
        model, tok, cpu_s, train_s = run_recipe(cfg["train_sentences"], tmp, cfg.get("keep_model"))
        precision = cfg["precision"] if kind == "tokclf" else None
        eval_start = time.perf_counter()
        metrics = score_sentences(model, tok, valid, data.label_names, max_seq_length=128, stride=32,
                                  batch_size=64, mixed_precision=precision)
        eval_s = time.perf_counter() - eval_start
    n = len(train_split) * cfg["epochs"]
    return {
        "kind": kind,
        "train_s": round(train_s, 2),
        "sentences_per_s": round(n / train_s, 2),
        # Process CPU time (all threads) per sentence: the ratio of these is steadier than wall
        # clock on a shared VM, where the two recipes run minutes apart.
        "cpu_ms_per_sentence": round(cpu_s / n * 1000, 2),
        "tokens_per_s": round(real_tokens * cfg["epochs"] / train_s, 1),
        "valid_f1": round(metrics["f1"], 4),
        "valid_sentences": len(valid),
        "eval_s": round(eval_s, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "torch_threads": torch.get_num_threads(),
    }


def run_worker(kind: str, cfg: dict[str, Any]) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = fh.name
    cmd = [sys.executable, __file__, "--worker", kind, "--cfg", json.dumps(cfg), "--worker-out", out]
    subprocess.run(cmd, check=True)
    result = json.loads(Path(out).read_text())
    os.unlink(out)
    return result


# --- small sections --------------------------------------------------------------------------------
def model_flops_per_token(seq_len: float) -> float:
    """Training FLOPs per token: 6 x non-embedding parameters (forward + backward matmuls) plus the
    attention score/value products (12 x layers x hidden x seq_len), as in Kaplan et al. 2020."""
    from transformers import AutoConfig

    from tokclf.core.resources import resolve_model_path

    c = AutoConfig.from_pretrained(resolve_model_path(MODEL))
    per_layer = 4 * c.hidden_size**2 + 2 * c.hidden_size * c.intermediate_size
    return 6 * c.num_hidden_layers * per_layer + 12 * c.num_hidden_layers * c.hidden_size * seq_len


def cli_startup(repeats: int = 5) -> float:
    exe = Path(sys.executable).parent / "tokclf"
    # The installed console script; `python -m tokclf.cli` where tokclf is only on PYTHONPATH.
    cmd = [str(exe), "--help"] if exe.exists() else [sys.executable, "-m", "tokclf.cli", "--help"]
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        best = min(best, time.perf_counter() - start)
    return round(best, 3)


def inference_section(model_dir: Path, n: int) -> dict[str, Any]:
    """tokclf predict vs the simple pipeline on the same model and texts (bench/inference.py)."""
    from inference import part_raw_text

    from tokclf.data.conll import read_conll

    test = read_conll(DATA / "test.txt")
    texts = [" ".join(words) for words in test.tokens[:n]]
    return part_raw_text(model_dir, texts, repeats=2)


def eval_section(model_dir: Path) -> dict[str, Any]:
    """Wall time to score the whole CoNLL test split on words (bf16 where native; GPU when there is one)."""
    from tokclf.evaluation.scoring import score_sentences
    from tokclf.inference.loading import load_trained
    from tokclf.core.hardware import resolve_precision

    data = load_conll(None)
    model, tok, label_names, _ = load_trained(model_dir)
    precision = resolve_precision("auto")
    test = data.splits["test"]
    start = time.perf_counter()
    metrics = score_sentences(model, tok, test, label_names or data.label_names, max_seq_length=128, stride=32,
                              batch_size=64, mixed_precision=precision)
    seconds = time.perf_counter() - start
    return {"sentences": len(test), "seconds": round(seconds, 2), "sentences_per_s": round(len(test) / seconds, 1),
            "f1": round(metrics["f1"], 4), "precision": precision or "fp32"}


def tokenize_cache(max_samples: int | None) -> dict[str, Any]:
    """The pipeline's tokenize stage cold, then the cached rerun's decision: the flow skips the
    stage when the content key (data bytes, tokenizer files, max_seq_length/stride/subword_labels)
    equals the one stamped on the existing output (tokclf.pipeline.keys.tokenize_key / stamp_key)."""
    from tokclf import TokenClassificationParams
    from tokclf.pipeline import keys, stages

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        params = TokenClassificationParams(data_path=str(DATA), model=MODEL, project_name=str(root / "m"),
                                           valid_split="validation", max_samples=max_samples)
        stages.ingest(params, raw_dir=root / "raw", out_dir=root / "prepared")
        stages.validate(params, data_dir=root / "prepared", out_dir=root / "validated", report_path=root / "report.json")
        start = time.perf_counter()
        stages.tokenize(params, data_dir=root / "validated", out_dir=root / "features")
        cold = time.perf_counter() - start
        start = time.perf_counter()
        hit = keys.tokenize_key(params, root / "validated") == keys.stamp_key(root / "features")
        cached = time.perf_counter() - start
    return {"cold_s": round(cold, 3), "cached_check_s": round(cached, 3), "cache_hit": hit,
            "speedup": round(cold / max(cached, 1e-9), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="all of CoNLL-2003 (slow: the baseline alone takes ~20 min per epoch on 2 CPU cores)")
    ap.add_argument("--train-sentences", type=int, help="override the number of training sentences")
    ap.add_argument("--baseline-sentences", type=int, help="sentences for the (slow) baseline; same F1 protocol")
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--inference-model", help="a trained model folder for the inference and eval sections "
                    "(default: the model tokclf trains in the train section)")
    ap.add_argument("--inference-sentences", type=int, default=1000)
    ap.add_argument("--warmup-sentences", type=int, default=0,
                    help="an untimed training run on this many sentences before each recipe's timed run, in the "
                         "same process (both recipes alike): leaves one-time CUDA start-up out of the rate")
    ap.add_argument("--out", help="result file (default bench/results/bench-<mode>.json)")
    ap.add_argument("--worker")
    ap.add_argument("--cfg")
    ap.add_argument("--worker-out")
    args = ap.parse_args()

    if args.worker:
        cfg = json.loads(args.cfg)
        Path(args.worker_out).write_text(json.dumps(worker_train(args.worker, cfg)))
        return
    if not DATA.is_dir():
        raise SystemExit(f"CoNLL-2003 not found at {DATA}; set TOKCLF_SHARED_DATA")

    import torch
    import transformers

    mode = "full" if args.full else "quick"
    # 3,000 sentences: as in the measurement, and long enough that start-up (kernel
    # selection for each new batch shape) does not dominate (1,000 gave ~10 s of training).
    n_train = args.train_sentences or (None if args.full else 3000)
    cfg = {"train_sentences": n_train, "epochs": 1, "lr": 1e-4, "batch_size": 16, "precision": args.precision,
           "warmup_sentences": args.warmup_sentences}
    results: dict[str, Any] = {
        "mode": mode,
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cores": os.cpu_count(),
                    "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version()},
        "config": cfg,
    }

    print("== peak matrix-product rate", flush=True)
    results["peak_gflops"] = {"bf16": round(matmul_peak("bfloat16"), 1), "fp32": round(matmul_peak("float32"), 1)}
    print(results["peak_gflops"], flush=True)

    print("== training: tokclf", flush=True)
    workdir = tempfile.TemporaryDirectory()
    trained_model = Path(workdir.name) / "tokclf-model"
    ours = run_worker("tokclf", dict(cfg, keep_model=str(trained_model)))
    print(ours, flush=True)
    results["train_tokclf"] = ours
    if not args.skip_baseline:
        print("== training: baseline (padded per-item fp32)", flush=True)
        base_cfg = dict(cfg, train_sentences=args.baseline_sentences or n_train)
        base = run_worker("baseline", base_cfg)
        print(base, flush=True)
        results["train_baseline"] = base
        results["train_speedup"] = round(ours["sentences_per_s"] / base["sentences_per_s"], 2)
        results["train_speedup_cpu_time"] = round(base["cpu_ms_per_sentence"] / ours["cpu_ms_per_sentence"], 2)
        results["f1_difference"] = round(ours["valid_f1"] - base["valid_f1"], 4)
        print(f"training speed-up: {results['train_speedup']}x wall-clock, {results['train_speedup_cpu_time']}x "
              f"CPU time  (F1 tokclf {ours['valid_f1']} vs baseline {base['valid_f1']})")

    avg_len = ours["tokens_per_s"] / ours["sentences_per_s"]
    flops = model_flops_per_token(avg_len)
    achieved = flops * ours["tokens_per_s"] / 1e9
    results["compute"] = {
        "flops_per_token": round(flops), "achieved_gflops": round(achieved, 1),
        "share_of_bf16_peak": round(achieved / results["peak_gflops"]["bf16"], 3),
    }
    print("compute:", results["compute"], flush=True)

    model_dir = Path(args.inference_model) if args.inference_model else trained_model
    results["inference"] = inference_section(model_dir, args.inference_sentences)
    results["inference"]["model"] = str(args.inference_model) if args.inference_model else (
        f"the tokclf model of the train section ({n_train or 'all'} sentences, {cfg['epochs']} epoch)")
    print("inference:", json.dumps(results["inference"]), flush=True)
    results["eval_test"] = eval_section(model_dir)
    print("eval (CoNLL test):", results["eval_test"], flush=True)
    workdir.cleanup()

    results["cli_help_s"] = cli_startup()
    print("tokclf --help:", results["cli_help_s"], "s", flush=True)
    tok = tokenize_cache(n_train)
    if tok:
        results["tokenize_cache"] = tok
        print("tokenize cache:", tok, flush=True)

    out = Path(args.out) if args.out else REPO / "bench" / "results" / f"bench-{mode}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
