"""How long ingest and validation take on CoNLL-2003 (train/valid/test, 20,776 sentences), against
the floor of any reader: the three files read and every line split in plain Python, in this script.

    python bench/data_speed.py [--repeats 5]

Times are the fastest of `--repeats` interleaved runs (the machine may be shared). The tests check
the behaviour that keeps these numbers low (one read and one Arrow conversion per split, one
tokenizer call per TOKENIZE_BATCH sentences: tests/test_ingest.py, tests/test_validation.py); this
script measures it. Writes bench/results/data_speed.json and a section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("TOKCLF_SHARED_DATA", REPO.parent / "shared" / "data")) / "conll2003"
DOC = REPO / "docs" / "benchmarks.md"
RESULT = REPO / "bench" / "results" / "data_speed.json"
BEGIN, END = "<!-- bench/data_speed.py: begin -->", "<!-- bench/data_speed.py: end -->"


def baseline() -> int:
    """Read every file and split every line: the work no reader can skip."""
    n = 0
    for name in ("train.txt", "valid.txt", "test.txt"):
        for line in (DATA / name).read_text(encoding="utf-8").split("\n"):
            n += len(line.split())
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if not (DATA / "train.txt").is_file():
        sys.exit(f"CoNLL-2003 not found at {DATA} (set TOKCLF_SHARED_DATA)")

    from tokclf.core.resources import resolve_model_path
    from tokclf.data.ingest import load_labelled_data
    from tokclf.data.validation import validate_data
    from tokclf.text.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(resolve_model_path("sentence-transformers/all-MiniLM-L6-v2"))
    data = load_labelled_data(str(DATA), valid_split="valid")  # warm-up (imports, page cache)
    steps = {
        "baseline: read + split lines": baseline,
        "load_labelled_data": lambda: load_labelled_data(str(DATA), valid_split="valid"),
        "validate_data (no tokenizer)": lambda: validate_data(data, valid_split="valid"),
        "validate_data (with tokenizer, max_seq_length=128)": lambda: validate_data(
            data, valid_split="valid", tokenizer=tokenizer, max_seq_length=128),
    }
    best = {name: float("inf") for name in steps}
    for _ in range(args.repeats):
        for name, step in steps.items():
            started = time.perf_counter()
            step()
            best[name] = min(best[name], time.perf_counter() - started)
    base = best["baseline: read + split lines"]
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
               "python": platform.python_version()}
    result = {"date": time.strftime("%Y-%m-%d"), "machine": machine, "repeats": args.repeats,
              "sentences": sum(len(s) for s in data.splits.values()),
              "seconds": {k: round(v, 4) for k, v in best.items()},
              "ratio_to_baseline": {k: round(v / base, 2) for k, v in best.items()}}
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    rows = "\n".join(f"| {name} | {best[name]:.3f} | {best[name] / base:.1f}x |" for name in steps)
    section = (f"{BEGIN}\nMeasured {result['date']} by `python bench/data_speed.py` on {machine['cores']} CPU cores "
               f"({machine['cpu']}, Python {machine['python']}), best of {args.repeats} interleaved runs on a "
               f"shared machine; CoNLL-2003 train+valid+test, {result['sentences']:,} sentences.\n\n"
               "| step | seconds | vs baseline |\n|---|---|---|\n" + rows + f"\n{END}")
    from docsection import write_section  # bench/ is sys.path[0] when this script runs

    write_section(DOC, BEGIN, END, section, heading="## Ingest and validation speed\n\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
