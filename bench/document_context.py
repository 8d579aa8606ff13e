"""Document context (FLERT) against sentences alone: test F1 and training time, side by side.

    nice -n 10 python bench/document_context.py --datasets conll,ncbi --contexts 0,64 \
        --max-train-sentences 1000 --max-eval-sentences 500 --epochs 2 --seeds 1

Each arm is one `tokclf.training.run.train` call (what `tokclf train` runs) with the same model
(MiniLM), data, seed, epochs, lr and batch; only `document_context` differs. Data keep their
documents whole, which `bench/accuracy.py`'s random sentence subsets would not:
- `conll`: CoNLL-2003 (../shared/data/conll2003, -DOCSTART- documents): the first documents of
  each split up to the sentence caps, written back as CoNLL files with their -DOCSTART- lines.
- `ncbi`: NCBI Disease as brat standoff (../shared/data/ncbi_disease/standoff: one abstract per
  document), cut into sentences by tokclf (`span_records: sentence`); the first abstracts (file
  name order) up to the caps; its four mention types mapped to one `Disease` type, as in the
  corpus's CoNLL form.
Test F1 is tokclf's own word-level seqeval score of the saved model (metrics.json "test": the
best epoch on validation F1, Viterbi decoding). Time: training wall-clock and CPU seconds
(metrics.json "train"), and the ratio to the arm with context 0 in the same run.

Results: bench/results/document_context.json (rewritten after each arm).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("TOKCLF_SHARED_DATA", REPO.parent / "shared" / "data"))
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DATASETS = ("conll", "ncbi")


def _first_documents(documents: list[int], cap: int | None) -> int:
    """How many leading sentences make whole documents without passing `cap` (at least one document)."""
    if cap is None or cap >= len(documents):
        return len(documents)
    n = cap
    while n > 0 and documents[n] == documents[n - 1]:
        n -= 1
    if n == 0:  # the first document alone is longer than the cap
        n = next((i for i in range(1, len(documents)) if documents[i] != documents[0]), len(documents))
    return n


def prepare_conll(folder: Path, max_train: int | None, max_eval: int | None) -> dict[str, int]:
    from tokclf.core.columns import DOCUMENT, TAGS, TOKENS
    from tokclf.data.ingest import load_labelled_data

    data = load_labelled_data(str(SHARED / "conll2003"), valid_split="valid", test_split="test")
    names = data.label_names
    folder.mkdir(parents=True)
    counts = {}
    for split, ds in data.splits.items():
        n = _first_documents(ds[DOCUMENT][:], max_train if split == "train" else max_eval)
        part = ds.select(range(n))
        lines: list[str] = []
        previous = None
        for words, tags, doc in zip(part[TOKENS], part[TAGS], part[DOCUMENT]):
            if doc != previous:
                lines += ["-DOCSTART- O", ""]
                previous = doc
            lines += [f"{w} {names[t]}" for w, t in zip(words, tags)] + [""]
        (folder / f"{split}.txt").write_text("\n".join(lines), encoding="utf-8")
        counts[split] = n
    return counts


def prepare_ncbi(folder: Path, max_train: int | None, max_eval: int | None) -> dict[str, int]:
    from tokclf.core.columns import DOCUMENT
    from tokclf.data.ingest import load_labelled_data

    counts = {}
    for split in ("train", "devel", "test"):
        source = SHARED / "ncbi_disease" / "standoff" / split
        ds = load_labelled_data(str(source), test_split=None, span_records="sentence").splits["train"]
        documents = ds[DOCUMENT][:]
        n = _first_documents(documents, max_train if split == "train" else max_eval)
        keep = len(set(documents[:n]))
        target = folder / split
        target.mkdir(parents=True)
        for ann in sorted(source.glob("*.ann"))[:keep]:  # the brat reader's order (tokclf.data.formats.brat)
            shutil.copy(ann, target / ann.name)
            shutil.copy(ann.with_suffix(".txt"), target / ann.with_suffix(".txt").name)
        counts[split] = n
    return counts


def run_arm(folder: Path, dataset: str, context: int, seed: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from tokclf.core.params import TokenClassificationParams
    from tokclf.training.run import train

    settings: dict[str, Any] = dict(
        data_path=str(folder), model=MODEL, project_name=str(work / f"{dataset}-{context}-{seed}"),
        valid_split="valid" if dataset == "conll" else "devel", test_split="test", epochs=args.epochs, lr=args.lr,
        batch_size=args.batch_size, seed=seed, mixed_precision=args.precision, document_context=context,
        max_seq_length=args.max_seq_length, resume="never", early_stopping_patience=args.epochs,
        early_stopping_threshold=0.0,
    )
    if dataset == "ncbi":  # the four fine-grained types are one Disease type in the CoNLL form (as published)
        settings["label_map"] = "Modifier=Disease,SpecificDisease=Disease,DiseaseClass=Disease,CompositeMention=Disease"
    result = train(TokenClassificationParams(**settings))
    m = result.metrics
    return {"dataset": dataset, "document_context": context, "seed": seed, "test_f1": m["test"]["f1"],
            "test_precision": m["test"]["precision"], "test_recall": m["test"]["recall"],
            "validation_f1": m["validation"]["f1"], "train_s": m["train"]["runtime_s"], "train_cpu_s": m["train"]["cpu_s"],
            "steps": m["train"]["steps"], "sentences": m["train"]["sentences"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="conll,ncbi")
    parser.add_argument("--contexts", default="0,64", help="document_context values; the first is the baseline")
    parser.add_argument("--seeds", default="1")
    parser.add_argument("--max-train-sentences", type=int, default=1000)
    parser.add_argument("--max-eval-sentences", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-seq-length", type=int, default=256,
                        help="room for the sentence and the context (FLERT's 64 pieces a side need > 128)")
    parser.add_argument("--precision", default="bf16", help="bf16 or none")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "document_context.json"))
    args = parser.parse_args(argv)
    args.precision = None if args.precision in ("none", "fp32") else args.precision
    contexts = [int(c) for c in args.contexts.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    rows: list[dict[str, Any]] = []
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tokclf-docctx-") as tmp:
        work = Path(tmp)
        for dataset in args.datasets.split(","):
            if dataset not in DATASETS:
                raise SystemExit(f"unknown dataset {dataset!r}; choose from {', '.join(DATASETS)}")
            folder = work / f"data-{dataset}"
            prepare = prepare_conll if dataset == "conll" else prepare_ncbi
            counts = prepare(folder, args.max_train_sentences, args.max_eval_sentences)
            print(f"{dataset}: sentences {counts}", flush=True)
            for seed in seeds:
                base: dict[str, Any] | None = None
                for context in contexts:
                    row = run_arm(folder, dataset, context, seed, args, work)
                    row["split_sentences"] = counts
                    if base is None:
                        base = row
                    row["f1_minus_base"] = round(row["test_f1"] - base["test_f1"], 4)
                    row["train_time_ratio"] = round(row["train_s"] / max(base["train_s"], 1e-9), 2)
                    row["train_cpu_ratio"] = round(row["train_cpu_s"] / max(base["train_cpu_s"], 1e-9), 2)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                    out.write_text(json.dumps({"settings": vars(args), "machine": platform.processor() or platform.machine(),
                                               "cpus": os.cpu_count(), "load": os.getloadavg(), "rows": rows}, indent=1),
                                   encoding="utf-8")
    print(f"{'dataset':8} {'ctx':>4} {'seed':>4} {'test F1':>8} {'dF1':>7} {'train s':>8} {'ratio':>6}")
    for r in rows:
        print(f"{r['dataset']:8} {r['document_context']:>4} {r['seed']:>4} {r['test_f1']:>8.4f} {r['f1_minus_base']:>+7.4f} "
              f"{r['train_s']:>8.1f} {r['train_time_ratio']:>6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
