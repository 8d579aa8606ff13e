"""How the data stages scale: `tokclf stage ingest|validate|tokenize` (as dvc.yaml runs them) on
CoNLL-2003's train split repeated up to millions of sentences: wall time and peak memory per stage
and size, against the same stages of a baseline checkout (`--baseline-root`, e.g. the main branch
before bounded memory) at the smallest size, in the same run.

    nice -n 10 python bench/scale.py --sizes 250000,1000000,5000000 --baseline-root /work/main

Each size gets a temporary folder (removed afterwards, also on failure): train.txt holds the first
N sentences of CoNLL-2003 train repeated, valid.txt and test.txt are the real ones. Memory per
stage process: peak RSS (the kernel's ru_maxrss of the child, which counts the file pages of
memory-mapped Arrow data it touched) and peak anonymous memory (RssAnon sampled from
/proc every 50 ms: the heap, what cannot be paged out). The load average is recorded with every
stage. Results: bench/results/scale.json, the plot docs/scale.png (matplotlib, `tokclf[plots]`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONLL = Path(os.environ.get("TOKCLF_SHARED_DATA", "/work/shared/data")) / "conll2003"
STAGES = ("ingest", "validate", "tokenize")


def sentence_blocks(path: Path) -> list[str]:
    """The sentences of a CoNLL file as text blocks (without -DOCSTART- lines)."""
    blocks = []
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        lines = [ln for ln in block.split("\n") if ln.strip() and not ln.startswith("-DOCSTART-")]
        if lines:
            blocks.append("\n".join(lines) + "\n\n")
    return blocks


def make_corpus(folder: Path, sentences: int) -> None:
    blocks = sentence_blocks(CONLL / "train.txt")
    with open(folder / "train.txt", "w", encoding="utf-8") as fh:
        written = 0
        while written < sentences:
            take = blocks[: sentences - written]
            fh.write("".join(take))
            written += len(take)
    for name in ("valid.txt", "test.txt"):
        shutil.copy(CONLL / name, folder / name)


def write_params(folder: Path, data: Path) -> Path:
    path = folder / "params.yaml"
    path.write_text(
        f"data_path: {data}\nvalid_split: validation\ntest_split: test\nmodel: sentence-transformers/all-MiniLM-L6-v2\n"
        "max_seq_length: 128\nstride: 32\nsubword_labels: all\nproject_name: model\n",
        encoding="utf-8")
    return path


def _anon_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_stage(stage: str, work: Path, code_root: Path) -> dict[str, float]:
    args = {"ingest": ["--raw", "raw", "--out", "prepared"],
            "validate": ["--data", "prepared", "--out", "validated", "--report", "report.json"],
            "tokenize": ["--data", "validated", "--out", "features"]}[stage]
    env = {**os.environ, "PYTHONPATH": str(code_root)}
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "tokclf.cli", "stage", stage, "--config", "params.yaml", *args],
                            cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak_anon = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak_anon
        while not done.is_set():
            peak_anon = max(peak_anon, _anon_kb(proc.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stderr = proc.stderr.read() if proc.stderr else b""
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"stage {stage} failed ({proc.returncode}): {stderr.decode(errors='replace')[-2000:]}")
    return {"seconds": round(seconds, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "peak_anon_mb": round(peak_anon / 1024, 1),
            "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2)}


def run_size(sentences: int, code_root: Path, tmp_root: Path | None) -> dict[str, dict[str, float]]:
    work = Path(tempfile.mkdtemp(prefix=f"tokclf-scale-{sentences}-", dir=tmp_root))
    try:
        data = work / "source"
        data.mkdir()
        made = time.perf_counter()
        make_corpus(data, sentences)
        print(f"[{sentences:,} sentences] corpus written in {time.perf_counter() - made:.0f} s "
              f"({(data / 'train.txt').stat().st_size / 2**20:.0f} MiB)", flush=True)
        write_params(work, data)
        out = {}
        for stage in STAGES:
            out[stage] = run_stage(stage, work, code_root)
            print(f"[{sentences:,} sentences, {code_root}] {stage}: {out[stage]}", flush=True)
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def from_logs(paths: list[str], baseline_root: str | None) -> dict:
    """Results rebuilt from the progress lines of earlier runs' logs (a run stopped part-way still
    gives the stages it finished): "[N sentences, ROOT] stage: {...}"."""
    import ast
    import re

    results: dict = {"tokclf": {}, "baseline": {}, "from_logs": paths}
    pattern = re.compile(r"^\[([\d,]+) sentences, (.+?)\] (\w+): (\{.*\})$")
    for path in paths:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            m = pattern.match(line.strip())
            if m:
                size, root, stage, values = m.group(1).replace(",", ""), m.group(2), m.group(3), ast.literal_eval(m.group(4))
                kind = "baseline" if baseline_root and root == baseline_root else "tokclf"
                results[kind].setdefault(size, {})[stage] = values
    return results


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
    for stage in STAGES:
        sizes = sorted(int(s) for s, v in results["tokclf"].items() if stage in v)  # a stopped run: what finished
        rows = [results["tokclf"][str(s)][stage] for s in sizes]
        wall, = ax_t.plot(sizes, [r["seconds"] for r in rows], marker="o", label=f"{stage} wall")
        ax_t.plot(sizes, [r["cpu_s"] for r in rows], marker="x", linestyle="--", color=wall.get_color(),
                  label=f"{stage} CPU")
        line, = ax_m.plot(sizes, [r["peak_rss_mb"] for r in rows], marker="o", label=f"{stage} peak RSS")
        ax_m.plot(sizes, [r["peak_anon_mb"] for r in rows], marker="x", linestyle="--", color=line.get_color(),
                  label=f"{stage} anonymous")
    for name, base in results.get("baseline", {}).items():
        ax_m.scatter([int(name)] * len(base), [b["peak_rss_mb"] for b in base.values()], marker="s", color="grey",
                     label="baseline (before), each stage")
    for ax, label in ((ax_t, "seconds"), (ax_m, "memory (MB)")):
        ax.set_xscale("log")
        if ax is ax_t:
            ax.set_yscale("log")
        ax.set_xlabel("sentences")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    ax_t.set_title("time per stage")
    ax_m.set_title("peak memory per stage process")
    fig.suptitle("tokclf stage ingest / validate / tokenize on CoNLL-2003 repeated (2 shared CPU cores)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def report(results: dict) -> None:
    """A Markdown table: per stage and size wall time, CPU time, peak RSS (anonymous); ratios of the
    largest finished size to the smallest; the baseline against tokclf at its size."""
    sizes = sorted(int(s) for s in results["tokclf"])
    print("\n| stage | " + " | ".join(f"{s:,} sentences" for s in sizes) + " | peak RSS largest / smallest |")
    print("|---|" + "---:|" * (len(sizes) + 1))
    for stage in STAGES:
        done = [s for s in sizes if stage in results["tokclf"][str(s)]]
        cells = []
        for s in sizes:
            r = results["tokclf"][str(s)].get(stage)
            cells.append(f"{r['seconds']:,.0f} s wall, {r['cpu_s']:,.0f} s CPU, {r['peak_rss_mb']:,.0f} MB "
                         f"({r['peak_anon_mb']:,.0f} anon)" if r else "not finished")
        ratio = (results["tokclf"][str(done[-1])][stage]["peak_rss_mb"] / results["tokclf"][str(done[0])][stage]["peak_rss_mb"]
                 if len(done) > 1 else float("nan"))
        print(f"| {stage} | " + " | ".join(cells) + f" | {ratio:.2f}x ({done[-1] // done[0] if done else 0}x the sentences) |")
    for size, base in results["baseline"].items():
        for stage in STAGES:
            ours = results["tokclf"].get(size, {}).get(stage)
            if ours and stage in base:
                print(f"baseline {int(size):,} {stage}: {base[stage]['cpu_s']:.1f} s CPU, {base[stage]['peak_rss_mb']:,.0f} MB "
                      f"-> tokclf {ours['cpu_s']:.1f} s CPU ({ours['cpu_s'] / base[stage]['cpu_s']:.2f}x), "
                      f"{ours['peak_rss_mb']:,.0f} MB ({ours['peak_rss_mb'] / base[stage]['peak_rss_mb']:.2f}x)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="250000,1000000,5000000", help="comma-separated sentence counts")
    parser.add_argument("--baseline-root", help="a checkout whose stages run at the smallest size as the baseline")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "scale.json"))
    parser.add_argument("--plot", default=str(ROOT / "docs" / "scale.png"))
    parser.add_argument("--tmp", help="folder for the temporary corpora (default: the system's)")
    parser.add_argument("--from-logs", nargs="+", help="rebuild the results, table and plot from earlier runs' logs")
    args = parser.parse_args()
    if args.from_logs:
        results = from_logs(args.from_logs, args.baseline_root)
        Path(args.out).write_text(json.dumps(results, indent=2), encoding="utf-8")
        report(results)
        plot(results, Path(args.plot))
        print(f"plot: {args.plot}")
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    tmp_root = Path(args.tmp) if args.tmp else None
    results: dict = {"machine": f"{os.cpu_count()} CPUs", "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                     "tokclf": {}, "baseline": {}}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.baseline_root:
        results["baseline"][str(sizes[0])] = run_size(sizes[0], Path(args.baseline_root), tmp_root)
    for size in sizes:
        results["tokclf"][str(size)] = run_size(size, ROOT, tmp_root)
        out.write_text(json.dumps(results, indent=2), encoding="utf-8")  # partial results survive a stop
    results["finished"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    out.write_text(json.dumps(results, indent=2), encoding="utf-8")

    report(results)
    try:
        plot(results, Path(args.plot))
        print(f"plot: {args.plot}")
    except ImportError:
        print("matplotlib missing (pip install 'tokclf[plots]'): no plot")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
