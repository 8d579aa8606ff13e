"""NCBI Disease trained from its brat standoff form (label map -> Disease) vs its CoNLL form.

The issue's acceptance check for the span readers: the same annotation read from character spans
over whole abstracts (brat `.txt` + `.ann`, four fine-grained types mapped to `Disease`) and from
the CoNLL sentences must give test F1 within 0.01, with MiniLM and the same settings. Both models
are also scored on the other form's test split, which separates "the labels differ" from "the
records differ" (abstracts vs sentences). Usage:

    nice -n 10 python bench/ncbi_standoff_vs_conll.py [--epochs 3] [--out bench/results/ncbi_standoff_vs_conll.json]

Reads ../shared/data/ncbi_disease (or $TOKCLF_SHARED_DATA/ncbi_disease). The ratio printed is
standoff test F1 / CoNLL test F1 (the CoNLL run is the baseline).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("TOKCLF_SHARED_DATA", REPO.parent / "shared" / "data")) / "ncbi_disease"
LABEL_MAP = "SpecificDisease=Disease,DiseaseClass=Disease,Modifier=Disease,CompositeMention=Disease"


def matching_sentences(docs: int) -> int:
    """CoNLL sentences holding the first `docs` standoff abstracts: both forms list the same words in
    the same order (checked by the word counts), so the first N sentences are those documents."""
    from tokclf.data.ingest import load_labelled_data

    words = sum(len(t) for t in load_labelled_data(str(DATA / "standoff" / "train"), test_split=None,
                                                   max_samples=docs).splits["train"]["tokens"])
    total = 0
    for n, tokens in enumerate(load_labelled_data(str(DATA / "conll" / "train.tsv"), test_split=None)
                               .splits["train"]["tokens"], 1):
        total += len(tokens)
        if total >= words:
            if total != words:
                raise SystemExit(f"the first {docs} abstracts do not end on a sentence boundary ({words} vs {total})")
            return n
    raise SystemExit("fewer CoNLL words than standoff words")


def run(form: str, args: argparse.Namespace, workdir: Path) -> dict:
    from tokclf import TokenClassificationParams, train
    from tokclf.evaluation.scoring import evaluate

    source = DATA / ("standoff" if form == "standoff" else "conll")
    settings = dict(
        data_path=str(source), model=os.environ.get("TOKCLF_BENCH_MODEL", "sentence-transformers/all-MiniLM-L6-v2"),
        project_name=str(workdir / f"ncbi-{form}"), valid_split="devel", test_split="test",
        lr=args.lr, epochs=args.standoff_epochs if form == "standoff" and args.standoff_epochs else args.epochs, batch_size=16, max_seq_length=128, mixed_precision="bf16",
        early_stopping_patience=3, early_stopping_threshold=0.0, seed=42, weight_decay=0.01,
        label_map=LABEL_MAP if form == "standoff" else None, span_records=args.standoff_records,
        max_samples=None if not args.max_docs else args.max_docs if form == "standoff" else matching_sentences(args.max_docs),
    )
    params = TokenClassificationParams(**settings)
    started = time.perf_counter()
    result = train(params)
    wall = time.perf_counter() - started
    m = result.metrics
    other = DATA / ("conll" if form == "standoff" else "standoff")
    cross = evaluate(result.output_dir, str(other), split="test", label_map=LABEL_MAP)
    report = json.loads((Path(result.output_dir) / "validation_report.json").read_text())
    spans = {split: s.get("spans") for split, s in report["stats"]["splits"].items() if s.get("spans")}
    return {
        "form": form, "wall_s": round(wall, 1), "train_runtime_s": m["train"]["runtime_s"],
        "train_records": report["stats"]["splits"]["train"]["sentences"],
        "valid_f1": round(m["validation"]["f1"], 4), "test_f1": round(m["test"]["f1"], 4),
        "test_precision": round(m["test"]["precision"], 4), "test_recall": round(m["test"]["recall"], 4),
        f"test_f1_on_{'conll' if form == 'standoff' else 'standoff'}_test": round(cross["f1"], 4),
        "alignment": spans,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--standoff-epochs", type=int,
                    help="epochs for the standoff run (default --epochs); 3x gives it about the CoNLL run's optimizer "
                    "steps, since 16 windows of whole abstracts hold ~3x the words of 16 sentences")
    ap.add_argument("--max-docs", type=int,
                    help="train on the first N abstracts only (standoff: N documents; CoNLL: the sentences of those N)")
    ap.add_argument("--standoff-records", choices=("sentence", "document"), default="sentence",
                    help="span_records of the standoff run: one record per sentence (default) or per abstract")
    ap.add_argument("--forms", default="conll,standoff", help="which runs (the ratio needs both)")
    ap.add_argument("--baseline", help="take the CoNLL run from this earlier results file (same settings and "
                    "seed; its `args` are checked) instead of training it again, e.g. with --forms standoff")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "ncbi_standoff_vs_conll.json"))
    args = ap.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"NCBI Disease not found at {DATA}; set TOKCLF_SHARED_DATA")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for form in args.forms.split(","):
            results[form] = run(form, args, Path(tmp))
            print(json.dumps(results[form]), flush=True)
    if args.baseline and "conll" not in results:
        earlier = json.loads(Path(args.baseline).read_text())
        same = ("epochs", "lr", "max_docs")
        if any(earlier["args"].get(k) != vars(args).get(k) for k in same):
            raise SystemExit(f"{args.baseline} was run with other settings ({', '.join(same)} differ)")
        results = {"conll": earlier["results"]["conll"] | {"from": args.baseline}, **results}
    if len(results) < 2:
        Path(args.out).write_text(json.dumps({"args": vars(args), "results": results}, indent=2) + "\n")
        return
    ratio = results["standoff"]["test_f1"] / results["conll"]["test_f1"]
    diff = results["standoff"]["test_f1"] - results["conll"]["test_f1"]
    print(f"standoff / conll test F1: {ratio:.4f} (difference {diff:+.4f}; target |difference| <= 0.01)")
    out = {"machine": {"cores": os.cpu_count(), "load": os.getloadavg()}, "args": vars(args),
           "results": results, "ratio": round(ratio, 4), "difference": round(diff, 4)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
