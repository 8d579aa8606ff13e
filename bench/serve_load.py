"""Load test for `tokclf serve`: requests/s and p50/p99 latency under concurrent clients.

    python bench/serve_load.py --model DIR [--requests 400] [--concurrency 16] [--texts-per-request 1]
    python bench/serve_load.py --url http://127.0.0.1:8000 ...   # a server that is already running

Without --url the script starts `tokclf serve --model DIR` in a subprocess on a free
127.0.0.1 port, waits for /health, runs the load, and stops it. Without --model it builds an
untrained all-MiniLM-L6-v2 token classifier (CoNLL-2003 labels) in a temporary folder: serving
speed does not depend on the weights. Texts are CoNLL-2003 test sentences (words joined with
spaces) when ../shared/data/conll2003 is there, else generated sentences. Each request is timed
from send to full response; the server's /health stats give how many requests shared a batch.
Writes bench/results/serve_load.json and the serving section of docs/inference.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("TOKCLF_SHARED_DATA", REPO.parent / "shared" / "data")) / "conll2003"
DOC = REPO / "docs" / "inference.md"
BEGIN, END = "<!-- bench/serve_load.py: begin -->", "<!-- bench/serve_load.py: end -->"
LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]


def load_texts(n: int) -> list[str]:
    if (DATA / "test.txt").is_file():
        from tokclf.data.conll import read_conll

        return [" ".join(w) for w in read_conll(DATA / "test.txt").tokens[:n]]
    rng = random.Random(0)
    words = ["the", "of", "Reuters", "said", "John", "Smith", "in", "Paris", "on", "Tuesday", "shares", "rose", "percent", "to", "market"]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(5, 30))) + " ." for _ in range(n)]


def untrained_model(folder: Path) -> Path:
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from tokclf.core.resources import resolve_model_path

    base = resolve_model_path("sentence-transformers/all-MiniLM-L6-v2")
    model = AutoModelForTokenClassification.from_pretrained(
        base, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)})
    model.save_pretrained(str(folder))
    AutoTokenizer.from_pretrained(base).save_pretrained(str(folder))
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: Path, port: int, extra: list[str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "tokclf.cli", "serve", "--model", str(model), "--host", "127.0.0.1", "--port", str(port), *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    import httpx

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise SystemExit("the server did not answer /health within 300 s")


async def run_load(url: str, bodies: list[dict], concurrency: int) -> tuple[list[float], float, int]:
    import httpx

    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        async def worker() -> None:
            nonlocal errors
            while not queue.empty():
                body = queue.get_nowait()
                start = time.perf_counter()
                r = await client.post("/predict", json=body)
                latencies.append(time.perf_counter() - start)
                errors += r.status_code != 200

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return latencies, wall, errors


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def write_doc(section: str) -> None:
    from docsection import write_section

    write_section(DOC, BEGIN, END, section)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model folder to serve (default: an untrained MiniLM classifier)")
    ap.add_argument("--url", help="load an already running server instead of starting one")
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--texts-per-request", type=int, default=1)
    ap.add_argument("--server-args", default="", help="extra `tokclf serve` flags, e.g. '--batch-wait-ms 10'")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "serve_load.json"))
    ap.add_argument("--no-doc", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import httpx

    texts = load_texts(args.requests * args.texts_per_request)
    k = args.texts_per_request
    bodies = [{"texts": texts[i * k:(i + 1) * k]} for i in range(args.requests)]
    proc = None
    with tempfile.TemporaryDirectory() as tmp:
        note = f"`{args.model}`" if args.model else "untrained all-MiniLM-L6-v2 classifier (9 CoNLL labels)"
        try:
            if args.url:
                url, note = args.url.rstrip("/"), f"server at {args.url}"
            else:
                model = Path(args.model) if args.model else untrained_model(Path(tmp) / "model")
                port = free_port()
                proc = start_server(model, port, args.server_args.split())
                url = f"http://127.0.0.1:{port}"
            asyncio.run(run_load(url, bodies[: min(32, len(bodies))], args.concurrency))  # warm-up
            before = httpx.get(f"{url}/health").json()
            latencies, wall, errors = asyncio.run(run_load(url, bodies, args.concurrency))
            after = httpx.get(f"{url}/health").json()
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)
    batches = after["stats"]["batches"] - before["stats"]["batches"]
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cores": os.cpu_count(), "load_average_at_end": os.getloadavg()},
        "model": note, "backend": after.get("backend"), "precision": after.get("precision"),
        "requests": len(latencies), "errors": errors, "concurrency": args.concurrency,
        "texts_per_request": k, "wall_s": round(wall, 2),
        "requests_per_s": round(len(latencies) / wall, 1), "texts_per_s": round(len(latencies) * k / wall, 1),
        "latency_ms": {"p50": round(percentile(latencies, 50) * 1000, 1), "p90": round(percentile(latencies, 90) * 1000, 1),
                       "p99": round(percentile(latencies, 99) * 1000, 1), "max": round(max(latencies) * 1000, 1)},
        "model_batches": batches, "requests_per_batch": round(len(latencies) / max(batches, 1), 1),
        "server_args": args.server_args,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    section = "\n".join([
        BEGIN,
        (f"Measured {result['date']} by `python bench/serve_load.py` ({result['machine']['cores']} CPU cores shared "
         f"with other jobs; client and server on the same machine): {note}, {result['backend']} {result['precision']}, "
         f"{result['requests']} requests of {k} CoNLL-2003 test sentence(s) from {args.concurrency} concurrent clients."),
        "",
        "| requests/s | sentences/s | p50 latency | p90 | p99 | requests per model batch | errors |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        (f"| {result['requests_per_s']} | {result['texts_per_s']} | {result['latency_ms']['p50']} ms | "
         f"{result['latency_ms']['p90']} ms | {result['latency_ms']['p99']} ms | {result['requests_per_batch']} | {errors} |"),
        END,
    ])
    if not args.no_doc:
        write_doc(section)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
