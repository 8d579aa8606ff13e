"""Peak memory of `tokclf stage ingest` on tabular sources (JSON Lines, Parquet, CSV) against
corpus size, this checkout against a baseline checkout (`--baseline-root`, e.g. the main branch
before tabular streaming) in the same run.

    nice -n 10 python bench/tabular_ingest.py --sizes 20000,160000 --baseline-root /work/main

Each format and size gets a temporary folder (removed afterwards): train.<ext> holds the first N
sentences of CoNLL-2003 train repeated, validation.<ext> the real validation split, one
{"tokens": [...], "tags": [...]} record per sentence (CSV: list literals in quoted cells, the
AutoTrain layout; Parquet: list columns, row groups of 10,000). The stage process is measured as
bench/scale.py measures it (peak RSS from the kernel, peak anonymous memory sampled every 50 ms,
CPU seconds, the load average). Results: bench/results/tabular_ingest.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from scale import CONLL, run_stage  # noqa: E402

FORMATS = ("jsonl", "parquet", "csv")


def conll_records(path: Path) -> list[tuple[list[str], list[str]]]:
    from tokclf.data.conll import read_conll

    raw = read_conll(path)
    return [(t, g) for t, g in zip(raw.tokens, raw.tags) if t]


def write_records(path: Path, records: list[tuple[list[str], list[str]]], n: int) -> None:
    """The first n records, repeated as often as needed, as `path` (format from the suffix)."""
    def rows():
        for i in range(n):
            yield records[i % len(records)]

    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema([("tokens", pa.list_(pa.string())), ("tags", pa.list_(pa.string()))])
        with pq.ParquetWriter(path, schema) as writer:
            chunk: list[tuple[list[str], list[str]]] = []
            for row in rows():
                chunk.append(row)
                if len(chunk) == 10_000:
                    writer.write_table(pa.table({"tokens": [r[0] for r in chunk], "tags": [r[1] for r in chunk]}, schema))
                    chunk = []
            if chunk:
                writer.write_table(pa.table({"tokens": [r[0] for r in chunk], "tags": [r[1] for r in chunk]}, schema))
    elif path.suffix == ".csv":
        with open(path, "w", encoding="utf-8", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(["tokens", "tags"])
            out.writerows([json.dumps(t), json.dumps(g)] for t, g in rows())
    else:
        with open(path, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps({"tokens": t, "tags": g}) + "\n" for t, g in rows())


def run_one(fmt: str, sentences: int, code_roots: list[Path], train: list, valid: list) -> dict[str, dict]:
    work = Path(tempfile.mkdtemp(prefix=f"tokclf-tabular-{fmt}-{sentences}-"))
    try:
        data = work / "source"
        data.mkdir()
        write_records(data / f"train.{fmt}", train, sentences)
        write_records(data / f"validation.{fmt}", valid, len(valid))
        (work / "params.yaml").write_text(
            f"data_path: {data}\nvalid_split: validation\ntest_split: null\nproject_name: model\n", encoding="utf-8")
        out = {}
        for root in code_roots:
            for folder in ("raw", "prepared"):
                shutil.rmtree(work / folder, ignore_errors=True)
            out[str(root)] = run_stage("ingest", work, root)
            print(f"[{fmt}, {sentences:,} sentences, {root}] ingest: {out[str(root)]}", flush=True)
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="20000,160000", help="comma-separated train sentence counts")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--baseline-root", help="a checkout whose ingest stage runs on the same files as the baseline")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "tabular_ingest.json"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    roots = [ROOT] + ([Path(args.baseline_root).resolve()] if args.baseline_root else [])
    train, valid = conll_records(CONLL / "train.txt"), conll_records(CONLL / "valid.txt")
    results: dict = {"sizes": sizes, "roots": [str(r) for r in roots], "runs": {}}
    for fmt in args.formats.split(","):
        results["runs"][fmt] = {str(n): run_one(fmt, n, roots, train, valid) for n in sizes}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2), encoding="utf-8")

    print("\n| format | checkout | " + " | ".join(f"{n:,} sentences: CPU s, peak RSS MB (anon)" for n in sizes)
          + " | peak RSS largest / smallest |")
    print("|---|---|" + "---:|" * (len(sizes) + 1))
    for fmt, per_size in results["runs"].items():
        for root in roots:
            rows = [per_size[str(n)][str(root)] for n in sizes]
            cells = [f"{r['cpu_s']:.1f} s, {r['peak_rss_mb']:,.0f} ({r['peak_anon_mb']:,.0f})" for r in rows]
            name = "this" if root == ROOT else "baseline"
            print(f"| {fmt} | {name} | " + " | ".join(cells) + f" | {rows[-1]['peak_rss_mb'] / rows[0]['peak_rss_mb']:.2f}x |")
        if len(roots) > 1:
            big = str(sizes[-1])
            ours, base = per_size[big][str(ROOT)], per_size[big][str(roots[1])]
            print(f"{fmt} at {sizes[-1]:,}: peak RSS {ours['peak_rss_mb'] / base['peak_rss_mb']:.2f}x the baseline, "
                  f"CPU {ours['cpu_s'] / base['cpu_s']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
